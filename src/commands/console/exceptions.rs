//! The exceptions queue and what an operator does about an exception.
//!
//! The queue lists the exceptions of the last `console.exception_days`
//! days (label refusals, sync-back refusals: whatever a stage raised on
//! `exceptions`; and every dead letter on the DLQ, `dlq:<event id>`: a raw
//! order normalize could not read, a record a stage failed on), open ones
//! first, and refreshes itself. An exception's
//! page shows the record that failed, read from its source topic at the
//! coordinates the exception carries, and three actions:
//!
//! - **retry**: re-publishes that record to its topic, for a shipment
//!   plan with the ship-to address as the operator corrected it. The
//!   stage processes it as new input: the label stage buys the label
//!   (under the shipment's idempotency key, so a retry of a shipment that
//!   got its label meanwhile buys nothing: G2);
//! - **cancel**: the shipment is not to be made; the exception leaves the
//!   queue. The order's stock stays reserved until the channel cancels the
//!   order (conveyor follows the channel: cancel it there);
//! - **mark resolved**: it was dealt with outside conveyor.
//!
//! Each action is an `OperatorAction` on `operator.actions` (key = order
//! id) with who, their role, when, why and what was done; the sink applies
//! it to the store (the exception's state, the order's timeline, the audit
//! log). An action is identified by its form: the page mints an id, so a
//! form submitted twice (a double click, a retried POST) is answered from
//! [`Done`] in this process and applied once by the store in any case.
//! A retry publishes the record first and the action after: an action on
//! the topic always describes something that happened.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use conveyor_runtime::kafka::{Consumer, InRecord, OutRecord};
use conveyor_schemas::codec::Source;
use conveyor_schemas::records::{ActionKind, Address, OperatorAction, PlannedShipment};
use conveyor_sinks::ops::model::day_of;
use serde::Deserialize;

use super::api::Exception;
use super::auth::{random_hex, same_token};
use super::html::{self, badge, esc, live, table, time, url};
use super::pages::{now_ms, timed};
use super::{same_origin, Console, Page, Shared, Who};

/// What this process knows of the forms it was sent, each under its one
/// lock.
#[derive(Default)]
pub struct Done {
    /// Forms carried out: what was done (newest last, at most [`Done::KEEP`]).
    done: Mutex<(HashMap<String, String>, VecDeque<String>)>,
    /// Forms whose effect happened but whose record could not be written
    /// yet: a re-submission writes that same record, same time.
    pending: Mutex<HashMap<String, OperatorAction>>,
    /// Forms being carried out now.
    claimed: Mutex<HashSet<String>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Done {
    const KEEP: usize = 10_000;

    fn get(&self, id: &str) -> Option<String> {
        locked(&self.done).0.get(id).cloned()
    }

    fn put(&self, id: &str, what: &str) {
        let mut g = locked(&self.done);
        let (map, order) = &mut *g;
        if map.insert(id.to_string(), what.to_string()).is_none() {
            order.push_back(id.to_string());
        }
        while order.len() > Self::KEEP {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    fn pending(&self, id: &str) -> Option<OperatorAction> {
        locked(&self.pending).get(id).cloned()
    }

    fn set_pending(&self, a: &OperatorAction) {
        let mut g = locked(&self.pending);
        if g.len() >= Self::KEEP {
            // The oldest unrecorded actions give way (their forms were
            // abandoned long ago).
            let mut by_age: Vec<(i64, String)> =
                g.values().map(|x| (x.at, x.action_id.clone())).collect();
            by_age.sort();
            for (_, id) in by_age.into_iter().take(Self::KEEP / 10) {
                g.remove(&id);
            }
        }
        g.insert(a.action_id.clone(), a.clone());
    }

    fn clear_pending(&self, id: &str) {
        locked(&self.pending).remove(id);
    }

    /// Claims `id` for this request; false while another request carries
    /// the same form out (a double click).
    fn claim(&self, id: &str) -> bool {
        locked(&self.claimed).insert(id.to_string())
    }

    fn release(&self, id: &str) {
        locked(&self.claimed).remove(id);
    }
}

/// Whether an exception still needs someone: raised again since the last
/// action (or never acted on), or retried and not yet cleared.
fn is_open(e: &Exception) -> bool {
    e.open || retried(e)
}

fn retried(e: &Exception) -> bool {
    e.state.as_ref().is_some_and(|s| s.state == "RETRIED")
}

fn state_badge(e: &Exception, labeled: Option<&str>) -> String {
    match (&e.state, labeled) {
        _ if e.open => badge("OPEN"),
        (Some(s), Some(l)) if s.state == "RETRIED" => {
            format!("{} {}", badge("RETRIED"), badge(l))
        }
        (Some(s), _) => badge(&s.state),
        (None, _) => badge("OPEN"),
    }
}

/// The exceptions of the last days, newest first, with the label status
/// of retried shipments (has the retry worked?).
async fn load(c: &Console) -> Result<Vec<(Exception, Option<String>)>, Page> {
    let now = now_ms();
    let days: Vec<String> = (0..i64::from(c.config.console.exception_days))
        .map(|d| day_of(now - d * 86_400_000))
        .collect();
    let per_day =
        futures::future::try_join_all(days.iter().map(|d| c.api.exceptions_on(d))).await?;
    let mut all: Vec<Exception> = per_day.into_iter().flatten().collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.row.raised_at));
    // One row per exception id: the newest raising.
    let mut seen = HashSet::new();
    all.retain(|e| seen.insert(e.row.exception_id.clone()));
    // Has each retry worked? (Only retried shipments ask the store.)
    let labeled = futures::future::join_all(all.iter().map(|e| labeled_after_retry(c, e))).await;
    Ok(all.into_iter().zip(labeled).collect())
}

fn queue_table(rows: &[(Exception, Option<String>)]) -> String {
    // A shipment's retry stays open until the shipment is labeled; another
    // record's (a dead letter re-published) is done: a new failure is a
    // new dead letter.
    let (open, closed): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|(e, l)| e.open || (retried(e) && e.row.shipment_id.is_some() && l.is_none()));
    let render = |rows: &[&(Exception, Option<String>)]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|(e, l)| {
                let r = &e.row;
                vec![
                    time(r.raised_at),
                    esc(&r.stage),
                    format!("<code>{}</code>", esc(&r.code)),
                    esc(&r.reason),
                    format!(
                        "<a href=\"/order?id={}\">{}</a>",
                        url(&r.order_id),
                        esc(&r.order_id)
                    ),
                    state_badge(e, l.as_deref()),
                    format!(
                        "<a class=\"open-exception\" href=\"/exception?id={}\">Open</a>",
                        url(&r.exception_id)
                    ),
                ]
            })
            .collect()
    };
    let head = [
        "Raised (UTC)",
        "Stage",
        "Code",
        "Reason",
        "Order",
        "State",
        "",
    ];
    let mut out = format!(
        "<p class=\"muted\">{} open · {} closed · updated {}</p>",
        open.len(),
        closed.len(),
        time(now_ms())
    );
    out.push_str(&table(
        "open-exceptions",
        &head,
        &render(&open),
        "Nothing needs you.",
    ));
    if !closed.is_empty() {
        out.push_str("<h2>Closed</h2>");
        out.push_str(&table("closed-exceptions", &head, &render(&closed), ""));
    }
    out
}

/// `GET /exceptions`.
pub async fn queue(State(c): Shared, who: Who) -> Page {
    let started = Instant::now();
    let rows = match load(&c).await {
        Ok(r) => r,
        Err(p) => return p,
    };
    let body = format!(
        "<h1>Exceptions</h1>{}",
        live("queue", "/exceptions/live", 3000, &queue_table(&rows))
    );
    timed("exceptions", started);
    Page::Html(html::page(
        "Exceptions",
        "exceptions",
        Some(&who.viewer()),
        &body,
    ))
}

/// `GET /exceptions/live`: the queue's table alone, for the live region.
pub async fn queue_live(State(c): Shared, _who: Who) -> Response {
    match load(&c).await {
        Ok(rows) => Html(queue_table(&rows)).into_response(),
        Err(p) => p.into_response(),
    }
}

/// The record that failed, read from its topic at its coordinates.
async fn source_record(c: &Console, e: &Exception) -> Result<InRecord, String> {
    let (topic, p, offset) = (
        &e.row.source_topic,
        e.row.source_partition,
        e.row.source_offset,
    );
    let consumer = Consumer::new(&c.config.kafka, "console", "conveyor-console-reader")
        .map_err(|e| e.to_string())?;
    let t = Duration::from_secs(5);
    // A blocking broker call: off the async workers' hands.
    let (low, high) = tokio::task::block_in_place(|| consumer.watermarks(topic, p, t))
        .map_err(|e| format!("{topic}[{p}]: {e}"))?;
    if offset < low || offset >= high {
        return Err(format!(
            "the failed record {topic}[{p}]@{offset} is no longer on the topic (retention); \
             re-run the stage over it with `conveyor replay live` instead"
        ));
    }
    consumer
        .assign(&[(topic.as_str(), p, Some(offset))])
        .map_err(|e| e.to_string())?;
    let rec = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .map_err(|_| format!("reading {topic}[{p}]@{offset} timed out"))?
        .map_err(|e| e.to_string())?;
    if rec.offset != offset {
        return Err(format!(
            "{topic}[{p}]@{offset} is gone (compacted); the next record is @{}",
            rec.offset
        ));
    }
    Ok(rec)
}

async fn decode_plan(c: &Console, rec: &InRecord) -> Result<PlannedShipment, String> {
    c.codec
        .decode::<PlannedShipment>(
            rec.payload.as_deref(),
            Source {
                topic: &rec.topic,
                partition: rec.partition,
                offset: rec.offset,
            },
        )
        .await
        .map_err(|e| e.to_string())
}

/// Whether the failed record is a shipment plan the label stage refused
/// (its address can be edited before a retry).
fn is_label_plan(c: &Console, e: &Exception) -> bool {
    e.row.stage == "label"
        && !e.row.exception_id.starts_with("dlq:")
        && c.topology.topic_name("shipments_planned") == Some(e.row.source_topic.as_str())
}

#[derive(Deserialize)]
pub struct DetailQuery {
    id: String,
    done: Option<String>,
}

/// `GET /exception?id=`: the exception, the failed record and the actions.
pub async fn detail(State(c): Shared, who: Who, Query(q): Query<DetailQuery>) -> Page {
    let started = Instant::now();
    let e = match c.api.exception(&q.id).await {
        Ok(Some(e)) => e,
        Ok(None) => return Page::Error(StatusCode::NOT_FOUND, format!("no exception `{}`", q.id)),
        Err(e) => return e.into(),
    };
    let r = &e.row;
    let role = who.role();
    let mut b = format!("<h1>Exception {}</h1>", esc(&r.exception_id));
    // What this console did for the form just submitted (by its id: the
    // page never echoes text from the address bar).
    if let Some(done) = q.done.as_deref().and_then(|id| c.done.get(id)) {
        let _ = write!(b, "<p class=\"notice\" id=\"done\">{}</p>", esc(&done));
    }
    let labeled = labeled_after_retry(&c, &e).await;
    let _ = write!(
        b,
        "<div class=\"grid\"><dl class=\"card\"><dt>State</dt><dd id=\"state\">{}</dd><dt>Raised</dt><dd>{} by {}</dd>\
         <dt>Code</dt><dd><code>{}</code></dd><dt>Reason</dt><dd id=\"reason\">{}</dd><dt>What to do</dt><dd>{}</dd></dl>\
         <dl class=\"card\"><dt>Order</dt><dd><a href=\"/order?id={}\">{}</a></dd><dt>Shipment</dt><dd>{}</dd>\
         <dt>Failed record</dt><dd><code>{}[{}]@{}</code></dd>{}</dl></div>",
        state_badge(&e, labeled.as_deref()),
        time(r.raised_at),
        esc(&r.stage),
        esc(&r.code),
        esc(&r.reason),
        esc(&r.action),
        url(&r.order_id),
        esc(&r.order_id),
        esc(r.shipment_id.as_deref().unwrap_or("")),
        esc(&r.source_topic),
        r.source_partition,
        r.source_offset,
        e.state
            .as_ref()
            .map(|s| format!(
                "<dt>Last action</dt><dd>{} by {} at {}: {}</dd>",
                esc(&s.state),
                esc(&s.actor),
                time(s.at),
                html::pii(role, &s.reason)
            ))
            .unwrap_or_default()
    );
    // The plan that failed, for a label exception: what will be re-published.
    let mut address: Option<Address> = None;
    if is_label_plan(&c, &e) {
        match source_record(&c, &e).await {
            Ok(rec) => match decode_plan(&c, &rec).await {
                Ok(plan) => {
                    let _ = write!(
                        b,
                        "<h2>Shipment plan</h2><p>{} · {} {} · {} line(s)</p>",
                        esc(&plan.warehouse_id),
                        esc(&plan.carrier),
                        esc(&plan.service),
                        plan.lines.len()
                    );
                    address = Some(plan.ship_to);
                }
                Err(m) => {
                    let _ = write!(
                        b,
                        "<p class=\"error\">The failed record cannot be read: {}</p>",
                        esc(&m)
                    );
                }
            },
            Err(m) => {
                let _ = write!(b, "<p class=\"error\">{}</p>", esc(&m));
            }
        }
    }
    if !role.acts() {
        b.push_str("<p class=\"muted\" id=\"read-only\">Viewers cannot act on exceptions.</p>");
    } else if !is_open(&e) || labeled.is_some() {
        b.push_str("<p class=\"muted\">This exception is closed.</p>");
    } else {
        let _ = write!(
            b,
            "<h2>Act</h2><form method=\"post\" action=\"/exception/action\" id=\"act\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"action_id\" value=\"{}\">\
             <input type=\"hidden\" name=\"exception_id\" value=\"{}\">",
            esc(&who.0.csrf),
            random_hex(16),
            esc(&r.exception_id)
        );
        if let Some(a) = &address {
            let field = |name: &str, label: &str, value: &str| {
                format!(
                    "<p><label for=\"{name}\">{label}</label><input id=\"{name}\" name=\"{name}\" value=\"{}\" size=\"40\"></p>",
                    esc(value)
                )
            };
            b.push_str("<fieldset><legend>Ship-to address (sent with a retry)</legend>");
            b.push_str(&field("name", "Name", &a.name));
            b.push_str(&field("line1", "Street", &a.line1));
            b.push_str(&field(
                "line2",
                "Street 2",
                a.line2.as_deref().unwrap_or(""),
            ));
            b.push_str(&field("city", "City", &a.city));
            b.push_str(&field(
                "region",
                "State/region",
                a.region.as_deref().unwrap_or(""),
            ));
            b.push_str(&field("postal_code", "Postal code", &a.postal_code));
            b.push_str(&field("country", "Country", &a.country));
            b.push_str("</fieldset>");
        }
        b.push_str(
            "<p><label for=\"why\">Why</label> <input id=\"why\" name=\"reason\" required maxlength=\"500\" size=\"60\" placeholder=\"e.g. street confirmed with the customer\"></p>\
             <p><button type=\"submit\" name=\"kind\" value=\"RETRY\" id=\"retry\">Retry</button> \
             <button type=\"submit\" name=\"kind\" value=\"CANCEL\" class=\"plain\" id=\"cancel\" formnovalidate>Cancel shipment</button> \
             <button type=\"submit\" name=\"kind\" value=\"RESOLVE\" class=\"plain\" id=\"resolve\">Mark resolved</button></p></form>",
        );
    }
    timed("exception", started);
    Page::Html(html::page(
        "Exception",
        "exceptions",
        Some(&who.viewer()),
        &b,
    ))
}

#[derive(Deserialize)]
pub struct ActForm {
    csrf: String,
    action_id: String,
    exception_id: String,
    kind: String,
    #[serde(default)]
    reason: String,
    name: Option<String>,
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

/// The operator's address edits applied to `a`; the names of the fields
/// that changed (never their values: they are personal data).
fn edit_address(a: &mut Address, f: &ActForm) -> Result<Vec<&'static str>, String> {
    let mut changed = Vec::new();
    let clean = |v: &str, field: &str| -> Result<String, String> {
        let v = v.trim();
        if v.chars().count() > 200 || v.chars().any(char::is_control) {
            return Err(format!(
                "{field}: at most 200 characters, no control characters"
            ));
        }
        Ok(v.to_string())
    };
    let mut set =
        |slot: &mut String, v: &Option<String>, field: &'static str| -> Result<(), String> {
            if let Some(v) = v {
                let v = clean(v, field)?;
                if *slot != v {
                    *slot = v;
                    changed.push(field);
                }
            }
            Ok(())
        };
    set(&mut a.name, &f.name, "name")?;
    set(&mut a.line1, &f.line1, "street")?;
    set(&mut a.city, &f.city, "city")?;
    set(&mut a.postal_code, &f.postal_code, "postal_code")?;
    if let Some(c) = &f.country {
        let c = c.trim().to_ascii_uppercase();
        if c.len() != 2 || !c.chars().all(|x| x.is_ascii_uppercase()) {
            return Err("country: an ISO 3166-1 alpha-2 code such as US".into());
        }
        if a.country != c {
            a.country = c;
            changed.push("country");
        }
    }
    let mut opt = |slot: &mut Option<String>,
                   v: &Option<String>,
                   field: &'static str|
     -> Result<(), String> {
        if let Some(v) = v {
            let v = clean(v, field)?;
            let v = (!v.is_empty()).then_some(v);
            if *slot != v {
                *slot = v;
                changed.push(field);
            }
        }
        Ok(())
    };
    opt(&mut a.line2, &f.line2, "street2")?;
    opt(&mut a.region, &f.region, "region")?;
    Ok(changed)
}

/// Back to the exception's page, which shows what was done for the form
/// `action_id`.
fn redirect(id: &str, action_id: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            format!("/exception?id={}&done={}", url(id), url(action_id)),
        )],
    )
        .into_response()
}

/// `POST /exception/action`: retry, cancel or resolve.
pub async fn act(
    State(c): Shared,
    headers: HeaderMap,
    who: Who,
    Form(f): Form<ActForm>,
) -> Response {
    if !same_origin(&headers) || !same_token(&f.csrf, &who.0.csrf) {
        return Page::Error(
            StatusCode::FORBIDDEN,
            "stale or cross-site form: reload the page".into(),
        )
        .into_response();
    }
    if !who.role().acts() {
        return Page::Error(
            StatusCode::FORBIDDEN,
            "viewers cannot act on exceptions".into(),
        )
        .into_response();
    }
    let kind = match f.kind.as_str() {
        "RETRY" => ActionKind::Retry,
        "CANCEL" => ActionKind::Cancel,
        "RESOLVE" => ActionKind::Resolve,
        k => {
            return Page::Error(StatusCode::BAD_REQUEST, format!("unknown action `{k}`"))
                .into_response()
        }
    };
    if f.action_id.len() != 32 || !f.action_id.chars().all(|ch| ch.is_ascii_hexdigit()) {
        return Page::Error(
            StatusCode::BAD_REQUEST,
            "malformed form: reload the page".into(),
        )
        .into_response();
    }
    let reason = f.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Page::Error(
            StatusCode::BAD_REQUEST,
            "say why (1 to 500 characters): it goes into the audit log".into(),
        )
        .into_response();
    }
    if c.done.get(&f.action_id).is_some() {
        return redirect(&f.exception_id, &f.action_id);
    }
    if !c.done.claim(&f.action_id) {
        return Page::Error(
            StatusCode::CONFLICT,
            "this form is being carried out already".into(),
        )
        .into_response();
    }
    let r = act_once(&c, &who, &f, kind, reason).await;
    c.done.release(&f.action_id);
    r
}

async fn act_once(c: &Console, who: &Who, f: &ActForm, kind: ActionKind, reason: &str) -> Response {
    let e = match c.api.exception(&f.exception_id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Page::Error(
                StatusCode::NOT_FOUND,
                format!("no exception `{}`", f.exception_id),
            )
            .into_response()
        }
        Err(e) => return Page::from(e).into_response(),
    };
    // This very form was recorded already (a re-submission after a
    // restart of the console).
    if e.state.as_ref().is_some_and(|s| s.action_id == f.action_id) {
        c.done
            .put(&f.action_id, "this action was carried out already");
        return redirect(&e.row.exception_id, &f.action_id);
    }
    let action = match c.done.pending(&f.action_id) {
        // Done before, not recorded: record it now, as it was.
        Some(a) => a,
        None => {
            let labeled = labeled_after_retry(c, &e).await;
            if !is_open(&e) || labeled.is_some() {
                let s = labeled.unwrap_or_else(|| {
                    e.state
                        .as_ref()
                        .map(|s| s.state.clone())
                        .unwrap_or_default()
                });
                return Page::Error(
                    StatusCode::CONFLICT,
                    format!("this exception is closed: {}", s.to_ascii_lowercase()),
                )
                .into_response();
            }
            match carry_out(c, &e, f, kind, who, reason).await {
                Ok(a) => a,
                Err((code, m)) => return Page::Error(code, m).into_response(),
            }
        }
    };
    if let Err(m) = publish_action(c, &action).await {
        c.done.set_pending(&action);
        return Page::Error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{}, but the action could not be recorded ({m}): submit the form again",
                action.detail
            ),
        )
        .into_response();
    }
    c.done.clear_pending(&f.action_id);
    tracing::info!(
        user = %who.0.user,
        action = %f.kind,
        exception_id = %e.row.exception_id,
        action_id = %f.action_id,
        "console: operator action"
    );
    metrics::counter!("conveyor_console_actions_total", "kind" => f.kind.clone()).increment(1);
    let done = format!("{}: {}", f.kind.to_ascii_lowercase(), action.detail);
    c.done.put(&f.action_id, &done);
    redirect(&e.row.exception_id, &f.action_id)
}

/// Does what the action says (a retry re-publishes); the action's record.
async fn carry_out(
    c: &Console,
    e: &Exception,
    f: &ActForm,
    kind: ActionKind,
    who: &Who,
    reason: &str,
) -> Result<OperatorAction, (StatusCode, String)> {
    // Taken before the re-publication, whose timestamp is later: a retry
    // that fails again raises the exception after this action, so it shows
    // as open again.
    let at = now_ms();
    let detail = match kind {
        ActionKind::Retry => republish(c, e, f, at + 1).await?,
        ActionKind::Cancel => "shipment cancelled: it will not be labeled; cancel the order in its channel to release its stock".into(),
        ActionKind::Resolve => "marked resolved".into(),
    };
    Ok(OperatorAction {
        event_id: f.action_id.clone(),
        action_id: f.action_id.clone(),
        exception_id: e.row.exception_id.clone(),
        order_id: e.row.order_id.clone(),
        shipment_id: e.row.shipment_id.clone(),
        kind,
        actor: who.0.user.clone(),
        role: who.role().as_str().to_string(),
        reason: reason.to_string(),
        detail,
        at,
    })
}

async fn publish_action(c: &Console, a: &OperatorAction) -> Result<(), String> {
    let topic = c
        .topology
        .topic_name("operator_actions")
        .ok_or("the topology has no operator.actions topic")?
        .to_string();
    let payload = c.codec.encode(&topic, a).await.map_err(|e| e.to_string())?;
    c.producer
        .send(
            &OutRecord::new(topic)
                .key(a.order_id.clone())
                .payload(payload)
                .timestamp_ms(a.at),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Re-publishes the failed record (a plan with the edited address) to its
/// topic; says what it did.
async fn republish(
    c: &Console,
    e: &Exception,
    f: &ActForm,
    at: i64,
) -> Result<String, (StatusCode, String)> {
    let unavailable = |m: String| (StatusCode::SERVICE_UNAVAILABLE, m);
    let rec = source_record(c, e).await.map_err(unavailable)?;
    let mut note = String::new();
    let payload = if is_label_plan(c, e) {
        let mut plan = decode_plan(c, &rec).await.map_err(unavailable)?;
        still_wanted(c, &plan).await?;
        let changed =
            edit_address(&mut plan.ship_to, f).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
        if !changed.is_empty() {
            note = format!("; ship-to edited ({})", changed.join(", "));
        }
        c.codec
            .encode(&rec.topic, &plan)
            .await
            .map_err(|e| unavailable(e.to_string()))?
    } else {
        rec.payload.clone().unwrap_or_default()
    };
    let mut out = OutRecord::new(rec.topic.clone())
        .payload(payload)
        .timestamp_ms(at);
    if let Some(k) = &rec.key {
        out = out.key(k.clone());
    }
    // The stage's own dedup marks are left behind: this is new input.
    for (k, v) in &rec.headers {
        if k != conveyor_stream::dedup::SOURCE_HEADER {
            out = out.header(k.clone(), v.clone());
        }
    }
    out = out.header("conveyor.action", f.action_id.clone());
    let d = c
        .producer
        .send(&out)
        .await
        .map_err(|e| unavailable(format!("re-publishing to {}: {e}", rec.topic)))?;
    Ok(format!(
        "re-published {}[{}]@{} as @{}{note}",
        rec.topic, rec.partition, rec.offset, d.offset
    ))
}

/// Refuses to re-publish a plan that is no longer the shipment's: the
/// order was cancelled, or route cancelled or re-planned the shipment
/// since (the label stage would buy a label for a parcel nobody ships).
async fn still_wanted(c: &Console, plan: &PlannedShipment) -> Result<(), (StatusCode, String)> {
    let conflict = |m: String| Err((StatusCode::CONFLICT, m));
    let order = c
        .api
        .order(&plan.order_id)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let Some(order) = order else {
        return Ok(());
    };
    if order.status.as_deref() == Some("CANCELLED") {
        return conflict("the order was cancelled since: nothing to retry".into());
    }
    let current = order
        .shipments
        .iter()
        .find(|s| s.shipment_id == plan.shipment_id);
    if let Some(s) = current {
        if let Some(l) = s.label.as_ref().filter(|l| l.label_status == "LABELED") {
            return conflict(format!(
                "the shipment has its label already ({}): nothing to retry",
                l.tracking_number
            ));
        }
        if let Some(p) = &s.plan {
            if p.plan_status != "PLANNED" {
                return conflict(format!(
                    "the shipment's plan is {} since: nothing to retry",
                    p.plan_status.to_ascii_lowercase()
                ));
            }
            if p.planned_at != plan.planned_at {
                return conflict(
                    "the shipment was planned again since: retry from its newer exception, if any"
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// The label status of a retried exception's shipment (has the retry
/// worked?); `None` when it is not retried or has no label.
async fn labeled_after_retry(c: &Console, e: &Exception) -> Option<String> {
    if e.open || !retried(e) {
        return None;
    }
    let o = c.api.order(&e.row.order_id).await.ok().flatten()?;
    o.shipments
        .into_iter()
        .find(|s| Some(&s.shipment_id) == e.row.shipment_id.as_ref())
        .and_then(|s| s.label)
        .map(|l| l.label_status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(line1: &str, country: &str) -> ActForm {
        ActForm {
            csrf: String::new(),
            action_id: String::new(),
            exception_id: String::new(),
            kind: "RETRY".into(),
            reason: "fixed".into(),
            name: Some("Ana Lima".into()),
            line1: Some(line1.into()),
            line2: Some(String::new()),
            city: Some("Austin".into()),
            region: Some("TX".into()),
            postal_code: Some("78701".into()),
            country: Some(country.into()),
        }
    }

    fn address() -> Address {
        Address {
            name: "Ana Lima".into(),
            company: None,
            line1: String::new(),
            line2: None,
            city: "Austin".into(),
            region: Some("TX".into()),
            postal_code: "78701".into(),
            country: "US".into(),
            phone: None,
        }
    }

    #[test]
    fn edits_name_the_fields_that_changed_not_their_values() {
        let mut a = address();
        let changed = edit_address(&mut a, &form(" 500 Congress Ave ", "us")).unwrap();
        assert_eq!(changed, vec!["street"]);
        assert_eq!(a.line1, "500 Congress Ave");
        assert_eq!(a.country, "US");
        let mut a = address();
        assert!(edit_address(&mut a, &form("x", "USA")).is_err());
        assert!(edit_address(&mut a, &form("a\u{0}b", "US")).is_err());
    }

    #[test]
    fn a_form_is_carried_out_once() {
        let d = Done::default();
        assert!(d.get("a").is_none());
        d.put("a", "retry: re-published");
        assert_eq!(d.get("a").as_deref(), Some("retry: re-published"));
    }
}
