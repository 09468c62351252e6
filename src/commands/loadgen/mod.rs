//! `conveyor loadgen`: seeded, realistic order traffic for every channel in
//! its raw format, at a target rate or as fast as the pipeline takes it.
//!
//! The traffic ([`Traffic`]) is a deterministic function of the seed: new
//! orders over a channel mix, one to three SKUs each drawn from a skewed
//! popularity (weight `1 / (rank + 10)`, as the allocation workload), real
//! US destinations, 5% of Amazon orders fulfilled by Amazon, and a share
//! of updates (to recent orders), cancellations and payloads normalize
//! must refuse (truncated JSON, an order without lines). The same seed and
//! `--first` send the same orders with the same ids again, so a second run
//! is a replay the pipeline must absorb as duplicates.
//!
//! Where it goes ([`Target`]): straight into `orders.raw.<channel>` in the
//! envelope the connectors publish, or through the real Shopify webhook
//! receiver over HTTP (signed with the configured secret); the other
//! channels' connectors are pollers that fetch from the channel, so in
//! that mode their orders still go to the raw topics. An order counts as
//! acknowledged when the broker (raw) or the receiver (HTTP 2xx, which
//! only comes after the broker's ack, G1) says so; that instant is what
//! the end-to-end benchmark measures latency from.

pub mod render;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_connectors::publish::{now_ms, RawPublisher};
use conveyor_runtime::config::Config;
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{
    CatalogSku, InventoryEvent, InventoryEventKind, RawOrder, RawSource,
};
use tokio::sync::{mpsc, Semaphore};

pub use render::{Bad, Version};

/// Destinations: the allocation workload's ZIPs with their states.
pub const PLACES: &[(&str, &str)] = &[
    ("10001", "NY"),
    ("11201", "NY"),
    ("02108", "MA"),
    ("19103", "PA"),
    ("20001", "DC"),
    ("21201", "MD"),
    ("30303", "GA"),
    ("33101", "FL"),
    ("28202", "NC"),
    ("27601", "NC"),
    ("37203", "TN"),
    ("60601", "IL"),
    ("48226", "MI"),
    ("44113", "OH"),
    ("43215", "OH"),
    ("46204", "IN"),
    ("53202", "WI"),
    ("55401", "MN"),
    ("63101", "MO"),
    ("64105", "MO"),
    ("68102", "NE"),
    ("70112", "LA"),
    ("75201", "TX"),
    ("77002", "TX"),
    ("78701", "TX"),
    ("73102", "OK"),
    ("80202", "CO"),
    ("84101", "UT"),
    ("85004", "AZ"),
    ("87102", "NM"),
    ("89101", "NV"),
    ("90012", "CA"),
    ("92101", "CA"),
    ("94103", "CA"),
    ("95814", "CA"),
    ("97205", "OR"),
    ("98101", "WA"),
    ("99501", "AK"),
    ("96813", "HI"),
    ("83702", "ID"),
];

/// What traffic to make.
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    /// New orders to send (updates, cancellations and bad payloads come on
    /// top); 0 = no bound (use a duration).
    pub orders: u64,
    /// Distinct SKUs (`SKU-0000`...), most popular first.
    pub skus: usize,
    /// Channel -> weight.
    pub mix: Vec<(String, u32)>,
    /// Shares of all events.
    pub updates: f64,
    pub cancels: f64,
    pub bad: f64,
    /// Share of Amazon orders fulfilled by Amazon.
    pub fba: f64,
    /// Example number of the first order (ids derive from it).
    pub first: u64,
}

impl Spec {
    pub fn new(seed: u64, orders: u64) -> Spec {
        Spec {
            seed,
            orders,
            skus: 500,
            mix: [
                ("shopify", 45),
                ("amazon", 25),
                ("tiktok", 15),
                ("ebay", 10),
                ("csv", 5),
            ]
            .iter()
            .map(|(c, w)| (c.to_string(), *w))
            .collect(),
            updates: 0.05,
            cancels: 0.02,
            bad: 0.01,
            fba: 0.05,
            first: 1_000_000,
        }
    }

    /// Checks shares and channels; the message says what to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, v) in [
            ("--updates", self.updates),
            ("--cancels", self.cancels),
            ("--bad", self.bad),
            ("--fba", self.fba),
        ] {
            if !(0.0..=1.0).contains(&v) {
                anyhow::bail!("{name} is a share between 0 and 1, not {v}");
            }
        }
        if self.updates + self.cancels + self.bad >= 0.9 {
            anyhow::bail!(
                "--updates + --cancels + --bad must leave room for new orders (below 0.9)"
            );
        }
        if self.skus == 0 {
            anyhow::bail!("--skus must be at least 1");
        }
        if self.mix.iter().all(|(_, w)| *w == 0) {
            anyhow::bail!("the channel mix gives every channel weight 0");
        }
        for (c, _) in &self.mix {
            if !render::CHANNELS.contains(&c.as_str()) {
                anyhow::bail!(
                    "unknown channel `{c}` in the mix (known: {})",
                    render::CHANNELS.join(", ")
                );
            }
        }
        Ok(())
    }

    /// The SKU names, most popular first.
    pub fn sku_names(&self) -> Vec<String> {
        (0..self.skus).map(|i| format!("SKU-{i:04}")).collect()
    }

    /// Catalog entries for the SKUs (dimensions, weights, bins, hazmat as
    /// the allocation workload's catalog).
    pub fn catalog(&self) -> Vec<CatalogSku> {
        let w = conveyor_processors::allocate::workload::Workload {
            skus: self.sku_names(),
            stock: Vec::new(),
            orders: Vec::new(),
        };
        conveyor_processors::allocate::workload::catalog(&w)
    }

    /// Restocks giving each SKU `ratio` of its expected demand over
    /// `orders` new orders (about four units an order), spread evenly over
    /// `warehouses`.
    pub fn stock(&self, warehouses: &[String], ratio: f64) -> Vec<InventoryEvent> {
        let popularity = Popularity::new(self.skus);
        let orders = self.orders.max(1) as f64;
        let mut out = Vec::new();
        for (i, sku) in self.sku_names().iter().enumerate() {
            let units = (orders * 4.0 * popularity.share(i) * ratio).ceil() as i64;
            let per = (units + warehouses.len() as i64 - 1) / (warehouses.len().max(1) as i64);
            for w in warehouses {
                out.push(InventoryEvent {
                    event_id: format!("loadgen:{}:stock:{sku}:{w}", self.seed),
                    sku: sku.clone(),
                    warehouse_id: w.clone(),
                    kind: InventoryEventKind::Restock,
                    quantity: per.clamp(1, i64::from(i32::MAX)) as i32,
                    to_warehouse_id: None,
                    reason: Some("load generator receipt".into()),
                    reference: Some(format!("PO-LOADGEN-{}", self.seed)),
                    occurred_at: 1,
                });
            }
        }
        out
    }
}

/// Skewed SKU popularity: rank `i` has weight `1 / (i + 10)`.
#[derive(Debug, Clone)]
struct Popularity {
    cumulative: Vec<f64>,
}

impl Popularity {
    fn new(skus: usize) -> Popularity {
        let mut acc = 0.0;
        let cumulative = (0..skus.max(1))
            .map(|i| {
                acc += 1.0 / (i as f64 + 10.0);
                acc
            })
            .collect();
        Popularity { cumulative }
    }

    fn share(&self, i: usize) -> f64 {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let prev = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative[i] - prev) / total
    }

    fn pick(&self, rng: &mut fastrand::Rng) -> usize {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let x = rng.f64() * total;
        self.cumulative
            .partition_point(|c| *c < x)
            .min(self.cumulative.len() - 1)
    }
}

/// One thing to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub channel: String,
    /// Example number of the order.
    pub n: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Order(Version),
    Bad(Bad),
}

/// The seeded event stream (an iterator: unbounded traffic is not held in
/// memory).
pub struct Traffic {
    spec: Spec,
    rng: fastrand::Rng,
    popularity: Popularity,
    weights: Vec<(String, u32)>,
    /// Recent orders open to updates and cancellation: (channel, n, updates so far).
    recent: VecDeque<(String, u64, u32)>,
    created: u64,
    seq: u64,
}

impl Traffic {
    pub fn new(spec: &Spec) -> Traffic {
        Traffic {
            rng: fastrand::Rng::with_seed(spec.seed),
            popularity: Popularity::new(spec.skus),
            weights: spec.mix.iter().filter(|(_, w)| *w > 0).cloned().collect(),
            spec: spec.clone(),
            recent: VecDeque::new(),
            created: 0,
            seq: 0,
        }
    }

    fn channel(&mut self) -> String {
        let total: u32 = self.weights.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.u32(..total.max(1));
        for (c, w) in &self.weights {
            if roll < *w {
                return c.clone();
            }
            roll -= w;
        }
        self.weights[0].0.clone()
    }

    /// The shape of order `n`: its SKUs, destination and FBA flag, the
    /// same for every version of the order.
    pub fn shape(&self, channel: &str, n: u64) -> (Vec<String>, usize, bool) {
        let mut rng =
            fastrand::Rng::with_seed(self.spec.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut picked: Vec<usize> = Vec::with_capacity(3);
        let mut tries = 0;
        while picked.len() < 3.min(self.spec.skus) && tries < 64 {
            tries += 1;
            let s = self.popularity.pick(&mut rng);
            if !picked.contains(&s) {
                picked.push(s);
            }
        }
        let place = rng.usize(..PLACES.len());
        let fba = channel == "amazon" && rng.f64() < self.spec.fba;
        (
            picked.iter().map(|i| format!("SKU-{i:04}")).collect(),
            place,
            fba,
        )
    }

    /// The raw payload of an event.
    pub fn render(&self, e: &Event) -> Option<render::Rendered> {
        match e.kind {
            Kind::Bad(b) => render::bad(&e.channel, e.n, b),
            Kind::Order(v) => {
                let (skus, place, fba) = self.shape(&e.channel, e.n);
                let (zip, state) = PLACES[place];
                let shape = render::Shape {
                    skus: &skus,
                    zip,
                    state,
                    fba,
                };
                render::order(&e.channel, e.n, &shape, v)
            }
        }
    }
}

impl Iterator for Traffic {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.spec.orders > 0 && self.created >= self.spec.orders {
            return None;
        }
        let seq = self.seq;
        self.seq += 1;
        let roll = self.rng.f64();
        let (bad, cancels, updates, first) = (
            self.spec.bad,
            self.spec.cancels,
            self.spec.updates,
            self.spec.first,
        );
        let kind_and_order = if roll < bad {
            let channel = self.channel();
            let kind = if self.rng.bool() {
                Bad::Truncated
            } else {
                Bad::NoLines
            };
            // Bad payloads take example numbers of their own, far from the orders'.
            let n = first + 500_000_000 + seq;
            Some((channel, n, Kind::Bad(kind)))
        } else if roll < bad + cancels && !self.recent.is_empty() {
            let i = self.rng.usize(..self.recent.len());
            self.recent
                .remove(i)
                .map(|(c, n, _)| (c, n, Kind::Order(Version::Cancel)))
        } else if roll < bad + cancels + updates && !self.recent.is_empty() {
            let i = self.rng.usize(..self.recent.len());
            let entry = &mut self.recent[i];
            entry.2 += 1;
            Some((
                entry.0.clone(),
                entry.1,
                Kind::Order(Version::Update(entry.2)),
            ))
        } else {
            None
        };
        let (channel, n, kind) = match kind_and_order {
            Some(x) => x,
            None => {
                let channel = self.channel();
                let n = self.spec.first + self.created;
                self.created += 1;
                self.recent.push_back((channel.clone(), n, 0));
                if self.recent.len() > 2_000 {
                    self.recent.pop_front();
                }
                (channel, n, Kind::Order(Version::Create))
            }
        };
        Some(Event {
            seq,
            channel,
            n,
            kind,
        })
    }
}

/// Where the traffic goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// `orders.raw.<channel>`, as the connectors publish.
    Raw,
    /// Shopify through its webhook receiver at this URL; the rest raw.
    Webhooks { shopify: String },
}

/// How one event went.
#[derive(Debug, Clone)]
pub struct Sent {
    pub event: Event,
    /// `channel:external_id`: the order id normalize gives it.
    pub order_id: String,
    /// 2xx from the receiver or the broker's ack.
    pub accepted: bool,
    /// Refused at the edge with a 4xx (bad payloads over HTTP).
    pub refused: Option<String>,
    /// Transport or broker failure after retries.
    pub failed: Option<String>,
    pub started: Instant,
    pub acked: Instant,
}

/// Counts and latencies of a run.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// (channel, what) -> count; `what` is created, updated, cancelled, bad.
    pub sent: BTreeMap<(String, &'static str), u64>,
    pub accepted: u64,
    pub refused: u64,
    pub failed: u64,
    /// Acknowledgement latency of every event, microseconds, sorted.
    pub ack_us: Vec<u64>,
    /// The same for accepted new orders only, sorted.
    pub create_ack_us: Vec<u64>,
    /// Each accepted new order's id and when it was acknowledged.
    pub creates: Vec<(String, Instant)>,
    pub first_failure: Option<String>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn events(&self) -> u64 {
        self.sent.values().sum()
    }

    pub fn ack_percentile(&self, p: f64) -> Duration {
        percentile(&self.ack_us, p).map_or(Duration::ZERO, Duration::from_micros)
    }
}

/// The `p`-th percentile (0-100) of sorted values, nearest rank.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// How to drive.
#[derive(Debug, Clone)]
pub struct Drive {
    /// Events per second offered; 0 = as fast as acknowledgements allow.
    pub rate: f64,
    /// Stop after this long (and after `spec.orders` new orders).
    pub duration: Option<Duration>,
    /// Events in flight at most.
    pub concurrency: usize,
    /// Print a line a second.
    pub progress: bool,
    /// Told each accepted new order's id and acknowledgement as it happens.
    pub tap: Option<mpsc::UnboundedSender<(String, Instant)>>,
}

/// Sends `spec`'s traffic to `target`; returns once every event sent has
/// an answer.
pub async fn drive(
    config: &Config,
    spec: &Spec,
    target: &Target,
    how: &Drive,
) -> anyhow::Result<Outcome> {
    spec.validate()?;
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let mut publishers: BTreeMap<String, RawPublisher> = BTreeMap::new();
    for (c, _) in &spec.mix {
        let p = RawPublisher::new(config, codec.clone(), c, "loadgen")
            .with_context(|| format!("channel {c}: is it in channels.enabled?"))?;
        publishers.insert(c.clone(), p);
    }
    let secret = config
        .channels
        .shopify
        .webhook_secrets
        .first()
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    if matches!(target, Target::Webhooks { .. }) && secret.is_empty() {
        anyhow::bail!("channels.shopify.webhook_secrets is empty: webhooks cannot be signed");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(how.concurrency.max(1))
        .timeout(Duration::from_secs(30))
        .build()?;
    let traffic = Traffic::new(spec);
    // Tasks render their own event's payload with a renderer of their own.
    let shared = Arc::new((Traffic::new(spec), publishers, http, secret, target.clone()));
    let slots = Arc::new(Semaphore::new(how.concurrency.max(1)));
    let (tx, mut rx) = mpsc::unbounded_channel::<Sent>();
    let started = Instant::now();
    let deadline = how.duration.map(|d| started + d);
    let progress = how.progress;
    let tap = how.tap.clone();
    let collector = tokio::spawn(async move {
        let mut out = Outcome::default();
        let mut last = Instant::now();
        let mut since = 0u64;
        while let Some(s) = rx.recv().await {
            let what = match s.event.kind {
                Kind::Order(Version::Create) => "created",
                Kind::Order(Version::Update(_)) => "updated",
                Kind::Order(Version::Cancel) => "cancelled",
                Kind::Bad(_) => "bad",
            };
            *out.sent.entry((s.event.channel.clone(), what)).or_default() += 1;
            let ack_us = s.acked.duration_since(s.started).as_micros() as u64;
            out.ack_us.push(ack_us);
            if s.accepted {
                out.accepted += 1;
                if what == "created" {
                    if let Some(t) = &tap {
                        let _ = t.send((s.order_id.clone(), s.acked));
                    }
                    out.creates.push((s.order_id.clone(), s.acked));
                    out.create_ack_us.push(ack_us);
                }
            } else if s.refused.is_some() {
                out.refused += 1;
            } else {
                out.failed += 1;
                if out.first_failure.is_none() {
                    out.first_failure = s.failed;
                }
            }
            since += 1;
            if progress && last.elapsed() >= Duration::from_secs(1) {
                println!(
                    "  loadgen: {:>8} answered, {:>7.0}/s in the last second, {} failed",
                    out.accepted + out.refused + out.failed,
                    since as f64 / last.elapsed().as_secs_f64(),
                    out.failed
                );
                last = Instant::now();
                since = 0;
            }
        }
        out
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (k, event) in traffic.enumerate() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // Latency counts from when the event was due (or generated), so a
        // wait for a free slot is part of it, as it is for a real sender.
        let due = if how.rate > 0.0 {
            let due = started + Duration::from_secs_f64(k as f64 / how.rate);
            tokio::time::sleep_until(due.into()).await;
            due
        } else {
            Instant::now()
        };
        let permit = slots.clone().acquire_owned().await?;
        let shared = shared.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            let (renderer, publishers, http, secret, target) = &*shared;
            let sent = send(renderer, publishers, http, secret, target, event, due).await;
            let _ = tx.send(sent);
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    drop(tx);
    let mut out = collector.await?;
    for p in shared.1.values() {
        p.flush();
    }
    out.elapsed = started.elapsed();
    out.ack_us.sort_unstable();
    out.create_ack_us.sort_unstable();
    Ok(out)
}

async fn send(
    renderer: &Traffic,
    publishers: &BTreeMap<String, RawPublisher>,
    http: &reqwest::Client,
    secret: &str,
    target: &Target,
    event: Event,
    started: Instant,
) -> Sent {
    let Some(r) = renderer.render(&event) else {
        return finish(
            event,
            String::new(),
            started,
            Err(Failure::Failed("no renderer for the channel".into())),
        );
    };
    let order_id = r.order_id.clone();
    let result = match target {
        Target::Webhooks { shopify } if event.channel == "shopify" => {
            webhook(http, shopify, secret, &event, r.payload).await
        }
        _ => {
            let raw = envelope(&event, r);
            match publishers.get(&event.channel) {
                Some(p) => p
                    .publish(&raw)
                    .await
                    .map_err(|e| Failure::Failed(e.to_string())),
                None => Err(Failure::Failed(format!(
                    "channel {} not in the mix",
                    event.channel
                ))),
            }
        }
    };
    finish(event, order_id, started, result)
}

enum Failure {
    Refused(String),
    Failed(String),
}

fn finish(event: Event, order_id: String, started: Instant, r: Result<(), Failure>) -> Sent {
    let (accepted, refused, failed) = match r {
        Ok(()) => (true, None, None),
        Err(Failure::Refused(m)) => (false, Some(m), None),
        Err(Failure::Failed(m)) => (false, None, Some(m)),
    };
    Sent {
        event,
        order_id,
        accepted,
        refused,
        failed,
        started,
        acked: Instant::now(),
    }
}

/// The raw envelope a connector would publish for the event.
fn envelope(e: &Event, r: render::Rendered) -> RawOrder {
    let (source, hint) = match e.channel.as_str() {
        "shopify" => (RawSource::Webhook, Some(shopify_topic(e.kind).to_string())),
        "tiktok" => (RawSource::Webhook, None),
        "csv" => (
            RawSource::Import,
            Some(conveyor_processors::normalize::csv::FORMAT.to_string()),
        ),
        _ => (RawSource::Poller, None),
    };
    RawOrder {
        event_id: format!("{}:loadgen:{}:{}", e.channel, r.external_id, e.seq),
        channel: e.channel.clone(),
        external_order_id: r.external_id,
        external_order_number: None,
        source,
        topic_hint: hint,
        received_at: now_ms(),
        content_type: "application/json".into(),
        payload: r.payload,
        source_headers: BTreeMap::new(),
    }
}

fn shopify_topic(kind: Kind) -> &'static str {
    match kind {
        Kind::Order(Version::Update(_)) => "orders/updated",
        Kind::Order(Version::Cancel) => "orders/cancelled",
        _ => "orders/create",
    }
}

/// One signed Shopify webhook; 5xx and transport errors are retried (the
/// receiver answers 503 while the broker does not acknowledge), 4xx is the
/// receiver refusing the payload.
async fn webhook(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    e: &Event,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let sig = conveyor_connectors::signature::sign_base64(secret.as_bytes(), &body);
    let mut last = String::new();
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .header("x-shopify-topic", shopify_topic(e.kind))
            .header("x-shopify-hmac-sha256", &sig)
            .header("x-shopify-shop-domain", "conveyor-loadgen.myshopify.com")
            .header("x-shopify-webhook-id", format!("loadgen-{}-{}", e.n, e.seq))
            .header("x-shopify-api-version", "2025-01")
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if resp.status().is_client_error() => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                return Err(Failure::Refused(format!("{status}: {text}")));
            }
            Ok(resp) => last = format!("HTTP {}", resp.status()),
            Err(err) => last = err.to_string(),
        }
    }
    Err(Failure::Failed(format!(
        "webhook not accepted after 5 attempts: {last}"
    )))
}

/// `conveyor loadgen`: drives the configured namespace and prints what it
/// sent and how fast it was acknowledged.
pub async fn run(config: &Config, spec: Spec, target: Target, how: Drive) -> anyhow::Result<()> {
    spec.validate()?;
    if spec.orders == 0 && how.duration.is_none() {
        anyhow::bail!("give --orders or --seconds (or both): unbounded traffic needs an end");
    }
    println!(
        "loadgen: seed {}, {} new orders{}, {} SKUs, mix {}, updates {:.0}%, cancels {:.0}%, bad {:.0}%, {} into {}",
        spec.seed,
        if spec.orders == 0 { "unbounded".to_string() } else { spec.orders.to_string() },
        how.duration.map(|d| format!(" / {} s", d.as_secs())).unwrap_or_default(),
        spec.skus,
        spec.mix.iter().map(|(c, w)| format!("{c}={w}")).collect::<Vec<_>>().join(","),
        spec.updates * 100.0,
        spec.cancels * 100.0,
        spec.bad * 100.0,
        if how.rate > 0.0 { format!("{:.0} events/s", how.rate) } else { "as fast as acknowledged".into() },
        match &target {
            Target::Raw => "the raw topics".to_string(),
            Target::Webhooks { shopify } => format!("{shopify} (Shopify) and the raw topics"),
        }
    );
    let out = drive(config, &spec, &target, &how).await?;
    print!("{}", report(&out));
    if out.failed > 0 {
        anyhow::bail!(
            "{} events were not acknowledged; first: {}",
            out.failed,
            out.first_failure.unwrap_or_default()
        );
    }
    Ok(())
}

/// Puts the traffic's catalog on `catalog.skus` and restocks every SKU in
/// every configured warehouse for `ratio` of its expected demand (what
/// normalize, allocate and route need before the orders arrive).
pub async fn prepare(config: &Config, spec: &Spec, ratio: f64) -> anyhow::Result<(usize, usize)> {
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let catalog = spec.catalog();
    conveyor_connectors::catalog_load::publish(config, codec.clone(), &catalog)
        .await
        .map_err(|e| anyhow::anyhow!("catalog: {e}"))?;
    let warehouses: Vec<String> = config.warehouses.iter().map(|w| w.id.clone()).collect();
    let stock = spec.stock(&warehouses, ratio);
    let topic = conveyor_runtime::topology::Topology::resolve(config)
        .topic_name("inventory_events")
        .context("no inventory.events topic in the topology")?
        .to_string();
    let producer = conveyor_runtime::kafka::Producer::new(&config.kafka, "loadgen")?;
    let mut recs = Vec::with_capacity(stock.len());
    for e in &stock {
        let b = codec.encode(&topic, e).await?;
        recs.push(
            conveyor_runtime::kafka::OutRecord::new(topic.clone())
                .key(e.sku.as_bytes().to_vec())
                .payload(b),
        );
    }
    for r in producer.send_batch(&recs).await {
        r.context("restock not acknowledged")?;
    }
    Ok((catalog.len(), stock.len()))
}

/// `conveyor loadgen` from its command line.
pub async fn command(config: &Config, a: crate::cli::LoadgenArgs) -> anyhow::Result<()> {
    let mut spec = Spec::new(a.seed, a.orders);
    spec.skus = a.skus;
    spec.mix = parse_mix(&a.mix).map_err(|e| crate::usage(format!("--mix: {e:#}")))?;
    spec.updates = a.updates;
    spec.cancels = a.cancels;
    spec.bad = a.bad;
    spec.first = a.first;
    spec.validate().map_err(|e| crate::usage(e.to_string()))?;
    if a.rate < 0.0 || !a.rate.is_finite() {
        return Err(crate::usage(
            "--rate must be 0 (as fast as possible) or positive".into(),
        ));
    }
    if spec.orders == 0 && a.seconds.is_none() {
        return Err(crate::usage(
            "give --orders or --seconds (or both): unbounded traffic needs an end".into(),
        ));
    }
    // The namespace's topics (idempotent; a fresh namespace gets them all).
    let topo = conveyor_runtime::topology::Topology::resolve(config);
    conveyor_runtime::kafka::Admin::new(&config.kafka)?
        .ensure_topics(&topo.topics)
        .await
        .map_err(|e| {
            anyhow::anyhow!("creating the topics: {e} (is the broker up? `conveyor dev up`)")
        })?;
    if a.stock > 0.0 {
        let (skus, restocks) = prepare(config, &spec, a.stock).await?;
        println!("loadgen: catalog of {skus} SKUs and {restocks} restocks ({:.0}% of expected demand) published", a.stock * 100.0);
    }
    let target = match a.shopify_webhooks {
        Some(url) => Target::Webhooks { shopify: url },
        None => Target::Raw,
    };
    let how = Drive {
        rate: a.rate,
        duration: a.seconds.map(Duration::from_secs),
        concurrency: a.concurrency.max(1),
        progress: true,
        tap: None,
    };
    run(config, spec, target, how).await
}

/// The table `conveyor loadgen` prints.
pub fn report(out: &Outcome) -> String {
    let mut s = String::new();
    s.push_str("channel    created  updated  cancelled      bad\n");
    let channels: std::collections::BTreeSet<&String> = out.sent.keys().map(|(c, _)| c).collect();
    for c in channels {
        let g = |w: &'static str| out.sent.get(&(c.clone(), w)).copied().unwrap_or(0);
        s.push_str(&format!(
            "{c:<9} {:>8} {:>8} {:>10} {:>8}\n",
            g("created"),
            g("updated"),
            g("cancelled"),
            g("bad")
        ));
    }
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    s.push_str(&format!(
        "{} events in {:.1} s ({:.0}/s): {} accepted, {} refused at the edge (4xx), {} failed; ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
        out.events(),
        secs,
        out.events() as f64 / secs,
        out.accepted,
        out.refused,
        out.failed,
        out.ack_percentile(50.0).as_secs_f64() * 1e3,
        out.ack_percentile(99.0).as_secs_f64() * 1e3,
        out.ack_percentile(100.0).as_secs_f64() * 1e3,
    ));
    s
}

/// Parses `shopify=45,amazon=25`.
pub fn parse_mix(text: &str) -> anyhow::Result<Vec<(String, u32)>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (c, w) = p
                .split_once('=')
                .with_context(|| format!("mix entry `{p}` is not CHANNEL=WEIGHT"))?;
            let w: u32 = w
                .trim()
                .parse()
                .with_context(|| format!("mix entry `{p}`: weight is not a whole number"))?;
            Ok((c.trim().to_string(), w))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_a_function_of_the_seed() {
        let spec = Spec::new(7, 2_000);
        let a: Vec<Event> = Traffic::new(&spec).collect();
        let b: Vec<Event> = Traffic::new(&spec).collect();
        assert_eq!(a, b);
        let c: Vec<Event> = Traffic::new(&Spec::new(8, 2_000)).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn traffic_has_the_asked_shape() {
        let spec = Spec::new(1, 20_000);
        let events: Vec<Event> = Traffic::new(&spec).collect();
        let count = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count() as f64;
        let total = events.len() as f64;
        assert_eq!(
            count(&|e| e.kind == Kind::Order(Version::Create)) as u64,
            20_000
        );
        let bad = count(&|e| matches!(e.kind, Kind::Bad(_))) / total;
        let cancels = count(&|e| e.kind == Kind::Order(Version::Cancel)) / total;
        let updates = count(&|e| matches!(e.kind, Kind::Order(Version::Update(_)))) / total;
        assert!((0.007..0.013).contains(&bad), "bad share {bad}");
        assert!((0.015..0.025).contains(&cancels), "cancel share {cancels}");
        assert!((0.04..0.06).contains(&updates), "update share {updates}");
        // Every update and cancellation is of an order created before it,
        // and nothing follows a cancellation.
        let mut open = std::collections::HashSet::new();
        for e in &events {
            match e.kind {
                Kind::Order(Version::Create) => assert!(open.insert(e.n)),
                Kind::Order(Version::Update(_)) => {
                    assert!(open.contains(&e.n), "update of {}", e.n)
                }
                Kind::Order(Version::Cancel) => assert!(open.remove(&e.n), "cancel of {}", e.n),
                Kind::Bad(_) => {}
            }
        }
        let shopify = count(&|e| e.channel == "shopify" && e.kind == Kind::Order(Version::Create));
        assert!(
            (0.42..0.48).contains(&(shopify / 20_000.0)),
            "shopify share"
        );
    }

    #[test]
    fn popular_skus_are_picked_more_and_every_version_has_the_same_lines() {
        let spec = Spec::new(3, 10);
        let t = Traffic::new(&spec);
        let mut first = 0usize;
        let mut tail = 0usize;
        for n in 0..5_000u64 {
            let (skus, _, _) = t.shape("shopify", n);
            assert_eq!(skus, t.shape("shopify", n).0);
            let mut d = skus.clone();
            d.dedup();
            assert_eq!(d.len(), skus.len());
            first += skus.iter().filter(|s| *s == "SKU-0000").count();
            tail += skus.iter().filter(|s| *s == "SKU-0499").count();
        }
        assert!(
            first > 5 * tail.max(1),
            "rank 0 picked {first}, rank 499 {tail}"
        );
    }

    #[test]
    fn stock_covers_the_ratio_of_expected_demand() {
        let spec = Spec::new(1, 10_000);
        let wh = vec!["a".to_string(), "b".to_string()];
        let stock = spec.stock(&wh, 1.0);
        let units: i64 = stock.iter().map(|e| i64::from(e.quantity)).sum();
        assert!((40_000..41_500).contains(&units), "{units}");
        assert_eq!(stock.len(), 1_000);
    }

    #[test]
    fn mixes_parse_and_bad_specs_are_refused() {
        assert_eq!(
            parse_mix("shopify=3, csv=1").unwrap(),
            vec![("shopify".into(), 3), ("csv".into(), 1)]
        );
        assert!(parse_mix("shopify").is_err());
        let mut s = Spec::new(1, 1);
        s.mix = vec![("etsy".into(), 1)];
        assert!(s.validate().unwrap_err().to_string().contains("etsy"));
        let mut s = Spec::new(1, 1);
        s.bad = 1.5;
        assert!(s.validate().is_err());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
