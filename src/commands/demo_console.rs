//! The demo's look at the operator console: served over the status API the
//! sinks step just started, with a user of each role; an operator and a
//! viewer open the same order (the viewer without personal data), the
//! exceptions queue and the health page, as a browser would.

use std::time::Instant;

use conveyor_runtime::config::Config;
use conveyor_runtime::console::Role;

use super::console::{self, html::url};

async fn page(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
) -> anyhow::Result<(String, f64)> {
    let started = Instant::now();
    let r = http
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "GET {path}: HTTP {}", r.status());
    let body = r.text().await?;
    Ok((body, started.elapsed().as_secs_f64() * 1000.0))
}

/// Serves the console over the status API at `api`, and visits `order_id`.
pub async fn run(
    config: &Config,
    api: &str,
    order_id: &str,
    email: Option<&str>,
) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.console.status_api = api.to_string();
    let (state, users) = console::build(&config, true).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, console::router(state)).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    println!("  operator console on {base} (users of each role, for this run):");
    let mut cookies = Vec::new();
    for (name, role, password) in &users {
        cookies.push((
            *role,
            console::login_cookie(&http, &base, name, password).await?,
        ));
        println!("    {:<8} {name:<13} password {password}", role.as_str());
    }
    let cookie = |r: Role| {
        cookies
            .iter()
            .find(|(role, _)| *role == r)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    let path = format!("/order?id={}", url(order_id));
    let (op, ms) = page(&http, &base, &cookie(Role::Operator), &path).await?;
    let (viewer, _) = page(&http, &base, &cookie(Role::Viewer), &path).await?;
    let shows = |html: &str| email.is_some_and(|e| html.contains(e));
    println!(
        "    {path}: {ms:.0} ms; the operator sees the customer's email: {}; the viewer: {} (shown \"hidden\")",
        if shows(&op) { "yes" } else { "no" },
        if shows(&viewer) { "yes" } else { "no" },
    );
    let (queue, ms) = page(&http, &base, &cookie(Role::Operator), "/exceptions").await?;
    let open = queue.split("id=\"open-exceptions\"").nth(1).map_or(0, |t| {
        t.split("</table>")
            .next()
            .unwrap_or("")
            .matches("class=\"open-exception\"")
            .count()
    });
    println!("    /exceptions: {ms:.0} ms; {open} open exception(s) to retry, cancel or resolve");
    let (_, ms) = page(&http, &base, &cookie(Role::Admin), "/inventory").await?;
    println!("    /inventory: {ms:.0} ms; keep a console running with `conveyor console --dev-users` (docs/console.md)");
    server.abort();
    let _ = server.await;
    Ok(())
}
