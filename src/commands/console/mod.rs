//! `conveyor console`: the operator console, a web application for the
//! people who run fulfillment (docs/console.md).
//!
//! Server-rendered pages on the same axum stack as the status API, read
//! from the operational store (through the status API: [`api`]) and from
//! the topics (a failed record's original, the replay jobs), with live
//! regions that refresh themselves (the exceptions queue, health):
//!
//! - orders: search by channel order number, email, SKU or tracking
//!   number; an order's page with its timeline, lines, shipments and
//!   documents ([`pages`]);
//! - the exceptions queue and its actions: retry (after editing the
//!   address), cancel, mark resolved ([`exceptions`]); each action is an
//!   `OperatorAction` on `operator.actions`, with who, when and why;
//! - inventory levels, low-stock alerts and movements ([`pages`]);
//! - pipeline health from the processes' `/metrics`, and replay jobs
//!   ([`health`]);
//! - access ([`auth`]): users and roles from `[console]`, argon2, expiring
//!   sessions, CSRF tokens; personal data for operators and admins only.

mod api;
mod auth;
mod exceptions;
mod health;
pub(crate) mod html;
pub(crate) mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use conveyor_runtime::config::Config;
use conveyor_runtime::console::Role;
use conveyor_runtime::kafka::Producer;
use conveyor_runtime::service::Service;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::Codec;
use serde::Deserialize;

use auth::{Auth, LoginError, Session};
use html::{esc, Viewer};

/// Everything a request handler needs.
pub struct Console {
    pub config: Config,
    pub auth: Auth,
    pub api: api::StatusApi,
    pub producer: Producer,
    pub codec: Codec,
    pub topology: Topology,
    pub board: health::Board,
    /// Actions already carried out by this process (id -> what was done):
    /// a form submitted twice is answered, not acted on twice.
    pub done: exceptions::Done,
}

type Shared = State<Arc<Console>>;

/// The logged-in user of a request; pages without one redirect to the
/// login page, live fragments answer 401.
pub struct Who(pub Session);

impl Who {
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            user: &self.0.user,
            role: self.0.role,
            csrf: &self.0.csrf,
        }
    }
    pub fn role(&self) -> Role {
        self.0.role
    }
}

pub enum Rejection {
    Login,
    Unauthorized,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Login => Redirect::to("/login").into_response(),
            Rejection::Unauthorized => (StatusCode::UNAUTHORIZED, "log in again").into_response(),
        }
    }
}

impl FromRequestParts<Arc<Console>> for Who {
    type Rejection = Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let live = parts.headers.contains_key("x-requested-with");
        let session = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(auth::token_of)
            .and_then(|t| console.auth.session(t, !live));
        match session {
            Some(s) => Ok(Who(s)),
            None if live => Err(Rejection::Unauthorized),
            None => Err(Rejection::Login),
        }
    }
}

/// A page or an error page; never a panic, never a blank.
pub enum Page {
    Html(String),
    Error(StatusCode, String),
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let headers = [
            (CACHE_CONTROL, "no-store"),
            (X_FRAME_OPTIONS, "DENY"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "same-origin"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'",
            ),
        ];
        match self {
            Page::Html(h) => (headers, Html(h)).into_response(),
            Page::Error(code, message) => (
                code,
                headers,
                Html(html::page(
                    "Error",
                    "",
                    None,
                    &format!(
                        "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/orders\">Back to the console</a></p>",
                        code.as_u16(),
                        esc(&message)
                    ),
                )),
            )
                .into_response(),
        }
    }
}

impl From<api::ReadError> for Page {
    fn from(e: api::ReadError) -> Page {
        match e {
            api::ReadError::NotFound => Page::Error(StatusCode::NOT_FOUND, "not found".into()),
            api::ReadError::Invalid(m) => Page::Error(StatusCode::BAD_REQUEST, m),
            api::ReadError::Unavailable(..) => {
                tracing::warn!(error = %e, "console: store read failed");
                Page::Error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

/// Refuses a state-changing request from another site: its `Origin` (when
/// the browser sends one) must be this console's host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    // Behind a reverse proxy the browser's host is the forwarded one.
    let hosts = ["x-forwarded-host", "host"].map(|h| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    });
    origin.split_once("://").is_some_and(|(_, rest)| {
        let rest = rest.trim_end_matches('/');
        hosts.iter().any(|h| !h.is_empty() && h == rest)
    })
}

/// The console's routes over `console`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/orders") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .route("/orders", get(pages::orders))
        .route("/order", get(pages::order))
        .route("/document", get(pages::document))
        .route("/inventory", get(pages::inventory))
        .route("/sku", get(pages::sku))
        .route("/audit", get(pages::audit))
        .route("/exceptions", get(exceptions::queue))
        .route("/exceptions/live", get(exceptions::queue_live))
        .route("/exception", get(exceptions::detail))
        .route("/exception/action", post(exceptions::act))
        .route("/health", get(health::page))
        .route("/health/live", get(health::board_live))
        .with_state(console)
}

async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        html::CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        html::JS,
    )
}

fn login_form(error: Option<&str>) -> Page {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    Page::Html(html::page(
        "Log in",
        "",
        None,
        &format!(
            "<form class=\"login\" method=\"post\" action=\"/login\"><h1>conveyor console</h1>{error}\
             <label for=\"user\">User</label><input id=\"user\" name=\"user\" autocomplete=\"username\" required autofocus>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <p><button type=\"submit\">Log in</button></p></form>"
        ),
    ))
}

async fn login_page() -> Page {
    login_form(None)
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

async fn login(State(c): Shared, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    if !same_origin(&headers) {
        return Page::Error(StatusCode::FORBIDDEN, "cross-site request refused".into())
            .into_response();
    }
    match c.auth.login(&f.user, &f.password).await {
        Ok(token) => (
            StatusCode::SEE_OTHER,
            [
                (SET_COOKIE, c.auth.cookie(&token)),
                (LOCATION, "/orders".to_string()),
            ],
        )
            .into_response(),
        Err(LoginError::Refused) => {
            let mut r = login_form(Some("Wrong user or password.")).into_response();
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Err(LoginError::Locked) => {
            let mut r = login_form(Some("Too many failed attempts: try again in a minute."))
                .into_response();
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(c): Shared,
    headers: HeaderMap,
    who: Who,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !auth::same_token(&f.csrf, &who.0.csrf) {
        return Page::Error(StatusCode::FORBIDDEN, "stale form: reload the page".into())
            .into_response();
    }
    if let Some(t) = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(auth::token_of)
    {
        c.auth.logout(t);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, c.auth.clear_cookie()),
            (LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}

/// Options of `conveyor console`.
pub struct Options {
    pub bind: Option<SocketAddr>,
    pub observability_bind: Option<SocketAddr>,
    /// Add viewer, operator and admin users with random passwords, printed
    /// once (local runs and the demo only: refused off loopback).
    pub dev_users: bool,
}

/// Logs `user` in at the console at `base` as a browser would; the
/// session's `Cookie` header value (the demo and the benchmark use it).
pub async fn login_cookie(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let r = http
        .post(format!("{base}/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "user={}&password={}",
            html::url(user),
            html::url(password)
        ))
        .send()
        .await?;
    r.headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("console login failed: HTTP {}", r.status()))
}

/// Builds the console's state (and the passwords of `--dev-users`).
pub async fn build(
    config: &Config,
    dev_users: bool,
) -> anyhow::Result<(Arc<Console>, Vec<(String, Role, String)>)> {
    let mut auth = Auth::new(&config.console)?;
    let mut created = Vec::new();
    if dev_users {
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            let name = format!("dev-{}", role.as_str());
            let password = auth::random_hex(8);
            auth.add_user(&name, role, &password)?;
            created.push((name, role, password));
        }
    }
    if !auth.has_users() {
        anyhow::bail!(
            "no console users: add [[console.users]] (name, role, password_hash from \
             `conveyor console hash-password`) to the config, or pass --dev-users on a local run"
        );
    }
    let console = Console {
        config: config.clone(),
        auth,
        api: api::StatusApi::new(&config.console.status_api)?,
        producer: Producer::new(&config.kafka, "console")?,
        codec: Codec::new(&config.schema_registry.url)?,
        topology: Topology::resolve(config),
        board: health::Board::new(&config.console.metrics),
        done: exceptions::Done::default(),
    };
    Ok((Arc::new(console), created))
}

pub async fn run(config: &Config, opts: Options) -> anyhow::Result<()> {
    let bind = opts.bind.unwrap_or(config.console.bind);
    if opts.dev_users && !bind.ip().is_loopback() {
        anyhow::bail!("--dev-users is for local runs: bind the console to 127.0.0.1");
    }
    let (console, created) = build(config, opts.dev_users).await?;
    super::stage::ensure_topics(config, &["operator_actions"]).await?;
    let shutdown = Shutdown::on_signals();
    let service = Service::start(
        "console",
        config.clone(),
        opts.observability_bind
            .unwrap_or(config.http.observability_bind),
        Router::new(),
        &[],
        shutdown.clone(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (console.bind)"))?;
    let addr = listener.local_addr()?;
    println!(
        "console: http://{addr}/  (reading {})",
        config.console.status_api
    );
    for (name, role, password) in &created {
        println!("  {:<8} user {name:<14} password {password}", role.as_str());
    }
    tokio::spawn(health::scrape(console.clone(), shutdown.clone()));
    let stop = shutdown.clone();
    axum::serve(listener, router(console))
        .with_graceful_shutdown(async move { stop.wait().await })
        .await?;
    service.finish().await;
    Ok(())
}

/// `conveyor console hash-password`: reads a password on stdin, prints its
/// argon2id hash for `[[console.users]] password_hash`.
pub fn hash_password_cmd() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.len() < 8 {
        anyhow::bail!("a console password needs at least 8 characters");
    }
    println!("{}", auth::hash_password(password)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_posts_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:8070".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("origin", "http://127.0.0.1:8070".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("origin", "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
