//! Pipeline health: per stage, its lag, throughput and error rate, from
//! the `/metrics` of the process `console.metrics` names for it; and the
//! replay jobs recorded on `conveyor.replays` that have not finished, with
//! their progress. A background task scrapes every
//! `console.scrape_interval_ms` (the replays at most every 15 s); rates are
//! the difference between two scrapes. The page's live region shows the latest [`Board`].
//!
//! - lag: `conveyor_processor_lag_records` summed over partitions (the
//!   stream processors report it; sinks do not);
//! - throughput: records in per second (`conveyor_processor_records_total`
//!   or, for sinks, `conveyor_sink_records_total`);
//! - errors per second: dead letters, exceptions, batch retries and sink
//!   write errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use conveyor_runtime::shutdown::Shutdown;

use super::html::{self, badge, esc, live, table, time};
use super::pages::{now_ms, timed};
use super::{Console, Page, Shared, Who};

/// What one scrape of a process's metrics says (sums over labels).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub lag: Option<f64>,
    pub records: f64,
    pub errors: f64,
    pub ready: Option<bool>,
}

/// Sums the metrics the health page needs from Prometheus text.
pub fn parse(text: &str) -> Sample {
    let mut s = Sample::default();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        if !v.is_finite() {
            continue;
        }
        let name = series.split('{').next().unwrap_or(series);
        match name {
            "conveyor_processor_lag_records" => *s.lag.get_or_insert(0.0) += v,
            "conveyor_processor_records_total" | "conveyor_sink_records_total" => s.records += v,
            "conveyor_dlq_total"
            | "conveyor_exceptions_total"
            | "conveyor_processor_batch_retries_total"
            | "conveyor_sink_write_errors_total" => s.errors += v,
            "conveyor_ready" => s.ready = Some(v >= 1.0),
            _ => {}
        }
    }
    s
}

#[derive(Debug, Clone, Default)]
pub struct StageHealth {
    pub url: String,
    pub last: Option<(Instant, Sample)>,
    pub records_per_sec: Option<f64>,
    pub errors_per_sec: Option<f64>,
    pub error: Option<String>,
    pub scraped_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ReplayRow {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub done: i64,
    pub total: i64,
    pub status: String,
}

#[derive(Default)]
struct Inner {
    stages: BTreeMap<String, StageHealth>,
    replays: Vec<ReplayRow>,
    replays_error: Option<String>,
}

/// The latest health of every stage and replay.
pub struct Board(Mutex<Inner>);

impl Board {
    pub fn new(targets: &BTreeMap<String, String>) -> Board {
        let stages = targets
            .iter()
            .map(|(k, url)| {
                (
                    k.clone(),
                    StageHealth {
                        url: url.clone(),
                        ..StageHealth::default()
                    },
                )
            })
            .collect();
        Board(Mutex::new(Inner {
            stages,
            ..Inner::default()
        }))
    }

    fn record(&self, stage: &str, at: Instant, result: Result<Sample, String>) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(h) = g.stages.get_mut(stage) else {
            return;
        };
        match result {
            Ok(s) => {
                if let Some((t0, s0)) = &h.last {
                    let dt = at.duration_since(*t0).as_secs_f64();
                    if dt > 0.0 {
                        // A restarted process starts its counters over.
                        h.records_per_sec = Some(((s.records - s0.records) / dt).max(0.0));
                        h.errors_per_sec = Some(((s.errors - s0.errors) / dt).max(0.0));
                    }
                }
                h.last = Some((at, s));
                h.error = None;
                h.scraped_at = Some(now_ms());
            }
            Err(e) => h.error = Some(e),
        }
    }
}

/// Scrapes every target, and the replay jobs, until shutdown.
pub async fn scrape(c: Arc<Console>, shutdown: Shutdown) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "console: no HTTP client for scraping");
            return;
        }
    };
    let every = Duration::from_millis(c.config.console.scrape_interval_ms);
    // Replays move slowly and reading them opens a consumer and reads the
    // replays topic: at most every 15 s.
    let replays_every = every.max(Duration::from_secs(15));
    let mut replays_read: Option<Instant> = None;
    loop {
        let targets: Vec<(String, String)> = c
            .config
            .console
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let results = futures::future::join_all(targets.iter().map(|(_, u)| {
            let http = http.clone();
            async move {
                let r = http.get(u).send().await.map_err(|e| e.to_string())?;
                if !r.status().is_success() {
                    return Err(format!("HTTP {}", r.status().as_u16()));
                }
                r.text().await.map(|t| parse(&t)).map_err(|e| e.to_string())
            }
        }))
        .await;
        let at = Instant::now();
        for ((stage, _), r) in targets.iter().zip(results) {
            c.board.record(stage, at, r);
        }
        if replays_read.is_none_or(|t| t.elapsed() >= replays_every) {
            replays_read = Some(Instant::now());
            let replays = replay_rows(&c).await;
            let mut g = c.board.0.lock().unwrap_or_else(|e| e.into_inner());
            match replays {
                Ok(r) => {
                    g.replays = r;
                    g.replays_error = None;
                }
                Err(e) => g.replays_error = Some(e.to_string()),
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn replay_rows(c: &Console) -> anyhow::Result<Vec<ReplayRow>> {
    use super::super::replay::record::{self, Status};
    let jobs = record::load(&c.config).await?;
    let mut rows = Vec::new();
    for j in jobs.iter().filter(|j| j.status != Status::Done) {
        let done = super::super::replay::progress_of(&c.config, j).unwrap_or(0);
        rows.push(ReplayRow {
            id: j.id.clone(),
            kind: format!("{:?}", j.kind).to_ascii_lowercase(),
            target: j.target.clone(),
            done,
            total: j.total_messages(),
            status: format!("{:?}", j.status).to_ascii_lowercase(),
        });
    }
    Ok(rows)
}

fn fmt_rate(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.1}")).unwrap_or_else(|| "…".into())
}

fn board_html(c: &Console) -> String {
    let g = c.board.0.lock().unwrap_or_else(|e| e.into_inner());
    let rows: Vec<Vec<String>> = g
        .stages
        .iter()
        .map(|(stage, h)| {
            let state = match (&h.error, &h.last) {
                (Some(_), _) => badge("stale"),
                (None, Some((_, s))) if s.ready == Some(false) => badge("not ready"),
                (None, Some(_)) if h.errors_per_sec.is_some_and(|e| e > 0.0) => badge("failing"),
                (None, Some(_)) => badge("ok"),
                (None, None) => badge("waiting"),
            };
            vec![
                format!("<b title=\"{}\">{}</b>", esc(&h.url), esc(stage)),
                state,
                h.last
                    .as_ref()
                    .and_then(|(_, s)| s.lag)
                    .map(|l| format!("{l:.0}"))
                    .unwrap_or_else(|| "—".into()),
                fmt_rate(h.records_per_sec),
                fmt_rate(h.errors_per_sec),
                match &h.error {
                    Some(e) => format!("<span class=\"error\">{}</span>", esc(e)),
                    None => h.scraped_at.map(time).unwrap_or_default(),
                },
            ]
        })
        .collect();
    let mut out = table(
        "stages",
        &[
            "Stage",
            "State",
            "Lag (records)",
            "Records/s",
            "Errors/s",
            "Scraped (UTC)",
        ],
        &rows,
        "No stages configured: list them under [console.metrics].",
    );
    out.push_str("<h2>Replays in progress</h2>");
    if let Some(e) = &g.replays_error {
        let _ = write!(out, "<p class=\"error\">{}</p>", esc(e));
    }
    let rows: Vec<Vec<String>> = g
        .replays
        .iter()
        .map(|r| {
            let pct = if r.total > 0 {
                (r.done as f64 * 100.0 / r.total as f64).clamp(0.0, 100.0)
            } else {
                0.0
            };
            vec![
                esc(&r.id),
                esc(&r.kind),
                esc(&r.target),
                esc(&r.status),
                format!(
                    "<progress max=\"100\" value=\"{pct:.1}\"></progress> {}/{} ({pct:.0}%)",
                    r.done, r.total
                ),
            ]
        })
        .collect();
    out.push_str(&table(
        "replays",
        &["Replay", "Kind", "Target", "Status", "Progress"],
        &rows,
        "No replay is running.",
    ));
    out
}

/// `GET /health`.
pub async fn page(State(c): Shared, who: Who) -> Page {
    let started = Instant::now();
    let body = format!(
        "<h1>Pipeline health</h1>{}",
        live(
            "board",
            "/health/live",
            c.config.console.scrape_interval_ms.max(1000),
            &board_html(&c)
        )
    );
    timed("health", started);
    Page::Html(html::page("Health", "health", Some(&who.viewer()), &body))
}

/// `GET /health/live`: the board alone, for the live region.
pub async fn board_live(State(c): Shared, _who: Who) -> Response {
    Html(board_html(&c)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_series_it_needs() {
        let text = "# HELP x\n\
            conveyor_processor_lag_records{processor=\"route\",topic=\"a\",partition=\"0\"} 12\n\
            conveyor_processor_lag_records{processor=\"route\",topic=\"a\",partition=\"1\"} 30\n\
            conveyor_processor_records_total{processor=\"route\"} 1000\n\
            conveyor_dlq_total{stage=\"route\"} 2\n\
            conveyor_exceptions_total{stage=\"label\",code=\"address_invalid\"} 1\n\
            conveyor_ready 1\n\
            other_metric 5\n";
        let s = parse(text);
        assert_eq!(s.lag, Some(42.0));
        assert_eq!(s.records, 1000.0);
        assert_eq!(s.errors, 3.0);
        assert_eq!(s.ready, Some(true));
    }

    #[test]
    fn rates_come_from_two_scrapes() {
        let mut m = BTreeMap::new();
        m.insert("route".to_string(), "http://x/metrics".to_string());
        let b = Board::new(&m);
        let t0 = Instant::now();
        let s = |records: f64| Sample {
            records,
            ..Sample::default()
        };
        b.record("route", t0, Ok(s(100.0)));
        b.record("route", t0 + Duration::from_secs(2), Ok(s(300.0)));
        let g = b.0.lock().unwrap();
        assert_eq!(g.stages["route"].records_per_sec, Some(100.0));
    }
}
