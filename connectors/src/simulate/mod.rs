//! Local simulators of the channel APIs, in their documented shapes, for
//! the demo and the tests. Shared here: serving a simulator's router
//! ([`serve_router`]), the token bucket the rate-limited ones answer 429
//! from ([`Bucket`]), and delivering a burst of signed webhooks with
//! retries ([`deliver`]).

pub mod amazon;
pub mod carrier;
pub mod ebay;
pub mod ledger;
pub mod shopify;
pub mod tiktok;

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use tokio_util::sync::CancellationToken;

/// Order `n` of `channel`'s simulator as normalize maps it (the channel
/// line ids the pipeline carries), for tests and benchmarks that build
/// parcels for the simulators' orders.
pub fn example_order(
    channel: &str,
    n: u64,
    catalog: &conveyor_processors::catalog::Catalog,
) -> Result<conveyor_schemas::records::Order, String> {
    use conveyor_processors::normalize;
    let raw = normalize::example_raw(channel, n)
        .filter(|_| channel != "csv")
        .ok_or_else(|| format!("no simulator for channel `{channel}`"))?;
    normalize::normalize(&raw, catalog)
        .map(|n| n.order)
        .map_err(|e| format!("{channel} example {n}: {e}"))
}

/// Serves `router` on `bind` until `shutdown`; returns the bound address
/// (port 0 picks a free one) and the server task.
pub async fn serve_router(
    router: Router,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok((addr, task))
}

/// A token bucket: `burst` calls at once, refilled at `rate` per second.
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub(crate) fn new(rate: f64, burst: f64) -> Bucket {
        let burst = burst.max(1.0);
        Bucket {
            rate: rate.max(1e-6),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token if one is there.
    pub(crate) fn take(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(self.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a webhook burst achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FireStats {
    /// Webhooks answered 2xx (the receiver acknowledged them).
    pub acked: u64,
    /// Deliveries answered otherwise or not answered, then retried.
    pub retries: u64,
    /// Webhooks never acknowledged within the attempts.
    pub failed: u64,
}

/// A webhook request: body and headers.
pub type Request = (Vec<u8>, Vec<(&'static str, String)>);

/// POSTs `request(n)` for every `n` in `range` to `url`, `concurrency` at
/// a time, retrying each (up to `attempts`, 200 ms apart and growing to
/// 1 s) until it is answered 2xx, as the channels do.
pub async fn deliver(
    url: &str,
    range: Range<u64>,
    concurrency: usize,
    attempts: u32,
    request: impl Fn(u64) -> Request + Send + Sync + 'static,
) -> FireStats {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let next = Arc::new(AtomicU64::new(range.start));
    let stats = Arc::new(Mutex::new(FireStats::default()));
    let request = Arc::new(request);
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, next, stats, request) =
            (client.clone(), next.clone(), stats.clone(), request.clone());
        let (url, end) = (url.to_string(), range.end);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    break;
                }
                let (body, headers) = request(n);
                let mut ok = false;
                for attempt in 0..attempts.max(1) {
                    let mut req = client.post(&url).body(body.clone());
                    for (k, v) in &headers {
                        req = req.header(*k, v);
                    }
                    if matches!(req.send().await, Ok(r) if r.status().is_success()) {
                        ok = true;
                        break;
                    }
                    stats.lock().unwrap_or_else(|e| e.into_inner()).retries += 1;
                    let wait = 200 * (u64::from(attempt) + 1).min(5);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
                if ok {
                    s.acked += 1;
                } else {
                    s.failed += 1;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let s = *stats.lock().unwrap_or_else(|e| e.into_inner());
    s
}
