//! The read-only pages: orders (search, an order's page, its documents),
//! inventory (levels, alerts, a SKU's movements) and the audit log.
//!
//! Personal data (the customer's name and email, the ship-to address,
//! documents, which print the address) goes through [`html::pii`]: a
//! viewer sees "hidden", and cannot search by email or open a document.

use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conveyor_runtime::console::Role;
use conveyor_sinks::ops::model::LevelRow;
use conveyor_sinks::ops::views::{OrderSummary, OrderView};
use serde::Deserialize;

use super::html::{self, badge, esc, opt_time, pii, table, time, url};
use super::{Page, Shared, Who};

/// Records how long a page took (`conveyor_console_page_seconds{page}`).
pub fn timed(page: &'static str, started: Instant) {
    metrics::histogram!("conveyor_console_page_seconds", "page" => page)
        .record(started.elapsed().as_secs_f64());
}

pub fn now_ms() -> i64 {
    conveyor_connectors::publish::now_ms()
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    q: String,
}

const SEARCH_FIELDS: &[(&str, &str)] = &[
    ("tracking", "Tracking number"),
    ("number", "Channel order number"),
    ("email", "Customer email"),
    ("sku", "SKU"),
];

fn order_link(id: &str, text: &str) -> String {
    format!("<a href=\"/order?id={}\">{}</a>", url(id), esc(text))
}

fn summary_rows(orders: &[OrderSummary]) -> Vec<Vec<String>> {
    orders
        .iter()
        .map(|o| {
            vec![
                order_link(
                    &o.order_id,
                    o.external_number.as_deref().unwrap_or(&o.order_id),
                ),
                esc(&o.channel),
                o.status.as_deref().map(badge).unwrap_or_default(),
                format!(
                    "{} {}",
                    esc(o.total.as_deref().unwrap_or("")),
                    esc(o.currency.as_deref().unwrap_or(""))
                ),
                time(o.created_at),
            ]
        })
        .collect()
}

/// `GET /orders?by=&q=`: the search form and its results (without a query:
/// the last hour's orders).
pub async fn orders(State(c): Shared, who: Who, Query(q): Query<SearchQuery>) -> Page {
    let started = Instant::now();
    let role = who.role();
    let by = if q.by.is_empty() {
        "tracking"
    } else {
        q.by.as_str()
    };
    let term = q.q.trim();
    let mut body = String::from("<h1>Orders</h1><form class=\"search\" method=\"get\" action=\"/orders\"><select name=\"by\" id=\"by\">");
    for (value, label) in SEARCH_FIELDS {
        if *value == "email" && !role.sees_pii() {
            continue;
        }
        let sel = if *value == by { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{value}\"{sel}>{label}</option>");
    }
    let _ = write!(
        body,
        "</select><input type=\"text\" id=\"q\" name=\"q\" value=\"{}\" placeholder=\"1Z…, #1001, ana@example.com, SKU\" autofocus>\
         <button type=\"submit\">Search</button></form>",
        esc(term)
    );
    let head = ["Order", "Channel", "Status", "Total", "Created (UTC)"];
    if term.is_empty() {
        let since = now_ms() - 3_600_000;
        let page = match c.api.recent(since, 50).await {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        let _ = write!(body, "<h2>Orders of the last hour</h2>");
        body.push_str(&table(
            "orders",
            &head,
            &summary_rows(&page.orders),
            "No orders in the last hour.",
        ));
    } else {
        if !SEARCH_FIELDS.iter().any(|(v, _)| *v == by) {
            return Page::Error(StatusCode::BAD_REQUEST, format!("cannot search by `{by}`"));
        }
        if by == "email" && !role.sees_pii() {
            return Page::Error(
                StatusCode::FORBIDDEN,
                "searching by email is for operators".into(),
            );
        }
        let found = match c.api.search(by, term, 50).await {
            Ok(f) => f,
            Err(e) => return e.into(),
        };
        // One answer: straight to the order.
        if found.len() == 1 && by != "sku" {
            timed("search", started);
            return match order_page(&c, &who, &found[0].order_id).await {
                Ok(h) => Page::Html(h),
                Err(p) => p,
            };
        }
        let _ = write!(body, "<h2>{} found</h2>", found.len());
        body.push_str(&table(
            "orders",
            &head,
            &summary_rows(&found),
            "No order matches.",
        ));
    }
    timed("orders", started);
    Page::Html(html::page("Orders", "orders", Some(&who.viewer()), &body))
}

#[derive(Deserialize)]
pub struct IdQuery {
    id: String,
}

/// `GET /order?id=`: the order's page.
pub async fn order(State(c): Shared, who: Who, Query(q): Query<IdQuery>) -> Page {
    let started = Instant::now();
    let page = match order_page(&c, &who, &q.id).await {
        Ok(h) => Page::Html(h),
        Err(p) => p,
    };
    timed("order", started);
    page
}

async fn order_page(c: &super::Console, who: &Who, id: &str) -> Result<String, Page> {
    let Some(o) = c.api.order(id).await? else {
        return Err(Page::Error(
            StatusCode::NOT_FOUND,
            format!("no order `{id}`"),
        ));
    };
    Ok(html::page(
        &format!("Order {}", title_of(&o)),
        "orders",
        Some(&who.viewer()),
        &render_order(&o, who.role()),
    ))
}

fn title_of(o: &OrderView) -> String {
    o.details
        .as_ref()
        .and_then(|d| d.external_number.clone())
        .unwrap_or_else(|| o.order_id.clone())
}

fn render_order(o: &OrderView, role: Role) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Order {} {}</h1><p class=\"muted\">{} · status since {}</p>",
        esc(&title_of(o)),
        o.status.as_deref().map(badge).unwrap_or_default(),
        esc(&o.order_id),
        opt_time(o.status_at)
    );
    b.push_str("<div class=\"grid\">");
    match &o.details {
        Some(d) => {
            let _ = write!(
                b,
                "<dl class=\"card\" id=\"customer\"><dt>Customer</dt><dd>{}</dd><dt>Email</dt><dd>{}</dd>\
                 <dt>Ship to</dt><dd>{}</dd></dl>",
                pii(role, &d.customer_name),
                pii(role, d.customer_email.as_deref().unwrap_or("")),
                if role.sees_pii() {
                    esc(&format!(
                        "{} {} {} {}",
                        d.ship_city,
                        d.ship_region.as_deref().unwrap_or(""),
                        d.ship_postal_code,
                        d.ship_country
                    ))
                } else {
                    format!("{} · {}", html::HIDDEN, esc(&d.ship_country))
                }
            );
            let _ = write!(
                b,
                "<dl class=\"card\"><dt>Channel</dt><dd>{} · {}</dd><dt>Total</dt><dd>{} {} (shipping {}, tax {})</dd>\
                 <dt>Priority</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd></dl>",
                esc(&d.channel),
                esc(&d.external_id),
                esc(&d.total),
                esc(&d.currency),
                esc(&d.shipping),
                esc(&d.tax),
                esc(&d.priority),
                time(d.created_at)
            );
        }
        None => b.push_str(
            "<p class=\"card muted\">The order's own event has not reached the store yet.</p>",
        ),
    }
    b.push_str("</div>");

    b.push_str("<h2>Lines</h2>");
    let lines: Vec<Vec<String>> = o
        .lines
        .iter()
        .map(|l| {
            vec![
                format!("<a href=\"/sku?sku={}\">{}</a>", url(&l.sku), esc(&l.sku)),
                esc(&l.name),
                format!("<span class=\"num\">{}</span>", l.quantity),
                esc(&l.unit_price),
                esc(&l.total),
            ]
        })
        .collect();
    b.push_str(&table(
        "lines",
        &["SKU", "Item", "Qty", "Unit price", "Total"],
        &lines,
        "No lines.",
    ));

    b.push_str("<h2>Shipments</h2>");
    let shipments: Vec<Vec<String>> = o
        .shipments
        .iter()
        .map(|s| {
            let plan = s.plan.as_ref();
            let label = s.label.as_ref();
            let docs = match label {
                Some(l) if role.sees_pii() && !l.label_uri.is_empty() => {
                    let link = |kind: &str, text: &str| {
                        format!(
                            "<a href=\"/document?order={}&amp;shipment={}&amp;kind={kind}\" target=\"_blank\" class=\"doc-{kind}\">{text}</a>",
                            url(&o.order_id),
                            url(&s.shipment_id)
                        )
                    };
                    format!("{} · {}", link("label", "Label"), link("slip", "Packing slip"))
                }
                Some(_) if !role.sees_pii() => html::HIDDEN.to_string(),
                _ => String::new(),
            };
            vec![
                esc(&s.shipment_id),
                plan.map(|p| {
                    format!(
                        "{} · {} {} · {} {}{}",
                        esc(&p.warehouse_id),
                        esc(&p.carrier),
                        esc(&p.service),
                        esc(&p.rate),
                        esc(&p.currency),
                        p.zone.as_deref().map(|z| format!(" · zone {}", esc(z))).unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
                plan.map(|p| badge(&p.plan_status)).unwrap_or_default(),
                label
                    .map(|l| format!("<span class=\"tracking\">{}</span> {}", esc(&l.tracking_number), badge(&l.label_status)))
                    .unwrap_or_default(),
                s.sync
                    .as_ref()
                    .map(|x| badge(&x.sync_outcome))
                    .unwrap_or_default(),
                docs,
            ]
        })
        .collect();
    b.push_str(&table(
        "shipments",
        &[
            "Shipment",
            "Plan (warehouse · carrier service · rate)",
            "Plan",
            "Label",
            "Sync-back",
            "Documents",
        ],
        &shipments,
        "Not routed yet.",
    ));

    if !o.reservations.is_empty() {
        b.push_str("<h2>Stock reserved</h2>");
        let rows: Vec<Vec<String>> = o
            .reservations
            .iter()
            .map(|r| vec![esc(&r.sku), esc(&r.warehouse_id), r.quantity.to_string()])
            .collect();
        b.push_str(&table(
            "reservations",
            &["SKU", "Warehouse", "Qty"],
            &rows,
            "",
        ));
    }

    b.push_str("<h2>Timeline</h2><ul class=\"timeline\" id=\"timeline\">");
    for h in &o.history {
        let _ = write!(
            b,
            "<li><span class=\"at\">{}</span><b>{}</b> {} <span class=\"muted\">{}</span></li>",
            time(h.at),
            esc(&h.stage),
            badge(&h.status),
            // An operator's reason is free text: it may name the customer.
            if h.stage == "console" {
                pii(role, &h.detail)
            } else {
                esc(&h.detail)
            }
        );
    }
    b.push_str("</ul>");
    b
}

#[derive(Deserialize)]
pub struct DocQuery {
    order: String,
    shipment: String,
    kind: String,
}

/// `GET /document?order=&shipment=&kind=label|slip`: the PDF, from the
/// document store the label stage wrote it to (operators and admins: it
/// prints the address).
pub async fn document(State(c): Shared, who: Who, Query(q): Query<DocQuery>) -> Response {
    if !who.role().sees_pii() {
        return Page::Error(StatusCode::FORBIDDEN, "documents are for operators".into())
            .into_response();
    }
    let o = match c.api.order(&q.order).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Page::Error(StatusCode::NOT_FOUND, "no such order".into()).into_response()
        }
        Err(e) => return Page::from(e).into_response(),
    };
    let Some(label) = o
        .shipments
        .iter()
        .find(|s| s.shipment_id == q.shipment)
        .and_then(|s| s.label.as_ref())
    else {
        return Page::Error(
            StatusCode::NOT_FOUND,
            "that shipment has no documents".into(),
        )
        .into_response();
    };
    let uri = match q.kind.as_str() {
        "label" => &label.label_uri,
        "slip" => &label.packing_slip_uri,
        k => {
            return Page::Error(StatusCode::BAD_REQUEST, format!("no document kind `{k}`"))
                .into_response()
        }
    };
    match fetch_document(&c.config.label.documents, uri).await {
        Ok(bytes) => (
            [
                (CONTENT_TYPE, "application/pdf".to_string()),
                (CACHE_CONTROL, "private, no-store".to_string()),
                (
                    CONTENT_DISPOSITION,
                    format!("inline; filename=\"{}.pdf\"", q.kind),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "console: document unavailable");
            Page::Error(StatusCode::BAD_GATEWAY, e).into_response()
        }
    }
}

/// The bytes at `uri`: a file under the document store `root` (nothing
/// outside it), or an HTTP(S) object.
async fn fetch_document(root: &str, uri: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = uri.strip_prefix("file://") {
        let root = root.strip_prefix("file://").unwrap_or(root);
        let root =
            std::fs::canonicalize(root).map_err(|e| format!("document store {root}: {e}"))?;
        let file = std::fs::canonicalize(path).map_err(|e| format!("document {path}: {e}"))?;
        if !file.starts_with(&root) {
            return Err("the document is outside the document store".into());
        }
        return tokio::fs::read(&file)
            .await
            .map_err(|e| format!("document {}: {e}", file.display()));
    }
    if uri.starts_with("http://") || uri.starts_with("https://") {
        let resp = reqwest::get(uri)
            .await
            .map_err(|e| format!("GET document: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "the document store answered HTTP {}",
                resp.status().as_u16()
            ));
        }
        return resp
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("GET document: {e}"));
    }
    Err("unknown document location".into())
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    after: Option<String>,
}

/// `GET /inventory?after=`: alerts, then levels per SKU x warehouse.
pub async fn inventory(State(c): Shared, who: Who, Query(q): Query<PageQuery>) -> Page {
    let started = Instant::now();
    let (alerts, levels) =
        match futures::try_join!(c.api.alerts(), c.api.levels(q.after.as_deref(), 100)) {
            Ok(x) => x,
            Err(e) => return e.into(),
        };
    let mut b = String::from("<h1>Inventory</h1><form class=\"search\" method=\"get\" action=\"/sku\"><input type=\"text\" name=\"sku\" placeholder=\"SKU\"><button type=\"submit\">Open SKU</button></form>");
    b.push_str("<h2>Low-stock alerts</h2>");
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                format!("<a href=\"/sku?sku={}\">{}</a>", url(&a.sku), esc(&a.sku)),
                esc(&a.warehouse_id),
                badge(&a.kind),
                a.available.to_string(),
                a.reorder_point.to_string(),
                time(a.occurred_at),
            ]
        })
        .collect();
    b.push_str(&table(
        "alerts",
        &[
            "SKU",
            "Warehouse",
            "Alert",
            "Available",
            "Reorder point",
            "Since",
        ],
        &rows,
        "No SKU is below its reorder point.",
    ));
    b.push_str("<h2>Levels</h2>");
    let rows: Vec<Vec<String>> = levels
        .levels
        .iter()
        .map(|l| {
            let mut row = vec![format!(
                "<a href=\"/sku?sku={}\">{}</a>",
                url(&l.sku),
                esc(&l.sku)
            )];
            row.extend(level_cells(l));
            row
        })
        .collect();
    b.push_str(&table(
        "levels",
        &[
            "SKU",
            "Warehouse",
            "On hand",
            "Reserved",
            "Held",
            "Available",
            "As of",
        ],
        &rows,
        "No inventory yet.",
    ));
    if let Some(next) = &levels.next {
        let _ = write!(
            b,
            "<p><a href=\"/inventory?after={}\">Next page →</a></p>",
            url(next)
        );
    }
    timed("inventory", started);
    Page::Html(html::page(
        "Inventory",
        "inventory",
        Some(&who.viewer()),
        &b,
    ))
}

/// A level's cells: warehouse, on hand, reserved, held, available (none
/// left in bold), as of.
fn level_cells(l: &LevelRow) -> Vec<String> {
    vec![
        esc(&l.warehouse_id),
        l.on_hand.to_string(),
        l.reserved.to_string(),
        l.held.to_string(),
        if l.available <= 0 {
            format!("<b class=\"error\">{}</b>", l.available)
        } else {
            l.available.to_string()
        },
        time(l.as_of),
    ]
}

#[derive(Deserialize)]
pub struct SkuQuery {
    sku: String,
}

/// `GET /sku?sku=`: a SKU's levels and its latest movements.
pub async fn sku(State(c): Shared, who: Who, Query(q): Query<SkuQuery>) -> Page {
    let started = Instant::now();
    let sku = q.sku.trim();
    let Some(v) = (match c.api.inventory(sku).await {
        Ok(v) => v,
        Err(e) => return e.into(),
    }) else {
        return Page::Error(
            StatusCode::NOT_FOUND,
            format!("no inventory for SKU `{sku}`"),
        );
    };
    let mut b = format!(
        "<h1>SKU {}</h1><p>On hand {} · reserved {} · <b>available {}</b></p><h2>Per warehouse</h2>",
        esc(&v.sku),
        v.on_hand,
        v.reserved,
        v.available
    );
    let rows: Vec<Vec<String>> = v.warehouses.iter().map(level_cells).collect();
    b.push_str(&table(
        "levels",
        &[
            "Warehouse",
            "On hand",
            "Reserved",
            "Held",
            "Available",
            "As of",
        ],
        &rows,
        "",
    ));
    b.push_str("<h2>Recent movements</h2>");
    let rows: Vec<Vec<String>> = v
        .movements
        .iter()
        .map(|m| {
            vec![
                time(m.occurred_at),
                esc(&m.warehouse_id),
                esc(&m.kind),
                m.quantity.to_string(),
                m.available.to_string(),
                m.order_id
                    .as_deref()
                    .map(|o| order_link(o, o))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    b.push_str(&table(
        "movements",
        &[
            "At",
            "Warehouse",
            "Movement",
            "Qty",
            "Available after",
            "Order",
        ],
        &rows,
        "No movements.",
    ));
    timed("sku", started);
    Page::Html(html::page(
        &format!("SKU {sku}"),
        "inventory",
        Some(&who.viewer()),
        &b,
    ))
}

#[derive(Deserialize, Default)]
pub struct DayQuery {
    day: Option<String>,
}

/// `GET /audit?day=`: every operator action of a day (admins).
pub async fn audit(State(c): Shared, who: Who, Query(q): Query<DayQuery>) -> Page {
    if who.role() < Role::Admin {
        return Page::Error(StatusCode::FORBIDDEN, "the audit log is for admins".into());
    }
    let day = q
        .day
        .unwrap_or_else(|| conveyor_sinks::ops::model::day_of(now_ms()));
    let actions = match c.api.actions_on(&day).await {
        Ok(a) => a,
        Err(e) => return e.into(),
    };
    let rows: Vec<Vec<String>> = actions
        .iter()
        .map(|a| {
            vec![
                time(a.at),
                esc(&a.actor),
                esc(&a.role),
                badge(&a.kind),
                format!(
                    "<a href=\"/exception?id={}\">{}</a>",
                    url(&a.exception_id),
                    esc(&a.exception_id)
                ),
                order_link(&a.order_id, &a.order_id),
                esc(&a.reason),
                esc(&a.detail),
            ]
        })
        .collect();
    let mut b = format!(
        "<h1>Audit log</h1><form class=\"search\" method=\"get\" action=\"/audit\"><input type=\"date\" name=\"day\" value=\"{}\"><button type=\"submit\">Show</button></form>",
        esc(&day)
    );
    b.push_str(&table(
        "audit",
        &[
            "At (UTC)",
            "Who",
            "Role",
            "Action",
            "Exception",
            "Order",
            "Why",
            "What was done",
        ],
        &rows,
        "No actions that day.",
    ));
    Page::Html(html::page("Audit log", "audit", Some(&who.viewer()), &b))
}
