//! The benchmark's result: one table on the terminal, the same as JSON (to
//! track over time) and an SVG plot of throughput and lag over time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::steady::Steady;
use super::{Args, Sample, HOPS};
use crate::commands::loadgen::{percentile, Outcome};

/// The issue's throughput target on this machine, orders/s.
pub const TARGET_ORDERS_PER_S: f64 = 5_000.0;
/// ... or this share of the broker's ceiling, whichever is lower.
pub const TARGET_CEILING_SHARE: f64 = 0.6;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stage {
    pub name: String,
    /// Records the process handled during the throughput phase (its own counters).
    pub records: f64,
    pub records_per_s: f64,
    /// CPU seconds during the throughput phase.
    pub cpu_s: f64,
    /// CPU milliseconds per order offered.
    pub cpu_ms_per_order: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(mut us: Vec<u64>) -> Percentiles {
        us.sort_unstable();
        let ms = |p: f64| percentile(&us, p).unwrap_or(0) as f64 / 1e3;
        Percentiles {
            count: us.len(),
            p50_ms: ms(50.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub offered_orders_per_s: f64,
    pub seconds: u64,
    pub orders: usize,
    /// Webhook (Shopify) or broker (other channels) acknowledgement of the
    /// new orders, from when each was due.
    pub ack: Percentiles,
    /// Acknowledgement to the order's first label on shipments.labeled.
    pub to_labeled: Percentiles,
    /// Acknowledgement to the order's first label row in ClickHouse.
    pub to_clickhouse: Percentiles,
    /// Orders whose label was never seen (backordered, cancelled, refused).
    pub never_labeled: usize,
    /// ClickHouse polls that failed (their orders were looked for again).
    pub clickhouse_poll_errors: u64,
    /// Memory, lag and failures over the phase (the soak's verdict).
    pub steady: Option<Steady>,
}

impl Latency {
    pub fn from(
        rate: f64,
        seconds: u64,
        out: &Outcome,
        labeled: &HashMap<String, Instant>,
        clickhouse: &HashMap<String, Instant>,
    ) -> Latency {
        let between = |seen: &HashMap<String, Instant>| -> Vec<u64> {
            out.creates
                .iter()
                .filter_map(|(id, acked)| {
                    seen.get(id)
                        .map(|t| t.saturating_duration_since(*acked).as_micros() as u64)
                })
                .collect()
        };
        let to_labeled = between(labeled);
        Latency {
            offered_orders_per_s: rate,
            seconds,
            orders: out.creates.len(),
            ack: Percentiles::of(out.create_ack_us.clone()),
            never_labeled: out.creates.len() - to_labeled.len(),
            clickhouse_poll_errors: 0,
            steady: None,
            to_labeled: Percentiles::of(to_labeled),
            to_clickhouse: Percentiles::of(between(clickhouse)),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub at: String,
    pub revision: String,
    pub build: &'static str,
    pub cores: usize,
    pub load_before: [f64; 3],
    pub orders: u64,
    pub partitions: i32,
    /// "dev" (the dev broker, SQLite storage) or "memory" (`--memory-broker`).
    pub broker: &'static str,
    pub carrier_latency_ms: u64,
    pub hops: usize,
    /// The broker's raw consume+produce rate through `hops` topics at once.
    pub ceiling_per_s: f64,
    /// New orders acknowledged in the throughput phase.
    pub offered_orders: u64,
    pub offered_events: u64,
    pub offered_seconds: f64,
    /// First send until everything was at rest.
    pub seconds_to_rest: f64,
    pub sustained_orders_per_s: f64,
    pub target_orders_per_s: f64,
    pub target_bound: String,
    pub met: bool,
    /// Processes per processor stage.
    pub instances: usize,
    /// Every acknowledged order in ClickHouse once and none labeled beyond
    /// its allocation.
    pub exact: bool,
    pub stages: Vec<Stage>,
    pub counts: BTreeMap<String, u64>,
    pub latency: Option<Latency>,
    pub peak_rss_mib: BTreeMap<String, f64>,
    pub notes: Vec<String>,
    pub timeline: Vec<Sample>,
}

impl Report {
    pub fn new(a: &Args, load_before: [f64; 3]) -> Report {
        Report {
            at: stamp(),
            revision: revision(),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            cores: cores(),
            load_before,
            orders: a.orders,
            partitions: a.partitions,
            broker: if a.memory_broker { "memory" } else { "dev" },
            carrier_latency_ms: a.carrier_latency_ms,
            hops: HOPS,
            instances: a.instances.max(1),
            ..Report::default()
        }
    }

    pub fn note(&mut self, n: String) {
        println!("  note: {n}");
        self.notes.push(n);
    }

    /// Fills the throughput phase's numbers.
    pub fn throughput(
        &mut self,
        offered: &Outcome,
        took: Duration,
        before: &Sample,
        after: &Sample,
        procs: &[String],
    ) {
        self.offered_orders = offered.creates.len() as u64;
        self.offered_events = offered.events();
        self.offered_seconds = offered.elapsed.as_secs_f64();
        self.seconds_to_rest = took.as_secs_f64();
        self.sustained_orders_per_s = self.offered_orders as f64 / self.seconds_to_rest.max(1e-9);
        let share = self.ceiling_per_s * TARGET_CEILING_SHARE;
        (self.target_orders_per_s, self.target_bound) = if share < TARGET_ORDERS_PER_S {
            (
                share,
                format!("{:.0}% of the broker ceiling", TARGET_CEILING_SHARE * 100.0),
            )
        } else {
            (TARGET_ORDERS_PER_S, "5,000 orders/s".to_string())
        };
        self.met = self.sustained_orders_per_s >= self.target_orders_per_s;
        let secs = self.seconds_to_rest.max(1e-9);
        for name in procs {
            let d = |m: &BTreeMap<String, f64>| m.get(name).copied().unwrap_or(0.0);
            let records = d(&after.records) - d(&before.records);
            let cpu = d(&after.cpu_s) - d(&before.cpu_s);
            self.stages.push(Stage {
                name: name.clone(),
                records,
                records_per_s: records / secs,
                cpu_s: cpu,
                cpu_ms_per_order: cpu * 1e3 / (self.offered_orders.max(1) as f64),
            });
        }
    }

    /// The table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pipeline benchmark, {} build, {} cores, load before {:.2}/{:.2}/{:.2}, {} partitions, {} broker, carrier latency {} ms",
            self.build,
            self.cores,
            self.load_before[0],
            self.load_before[1],
            self.load_before[2],
            self.partitions,
            if self.broker == "memory" { "in-memory" } else { "dev (SQLite)" },
            self.carrier_latency_ms
        );
        let _ = writeln!(
            s,
            "  broker ceiling (raw consume+produce through {} hops at once)   {:>9.0} records/s",
            self.hops, self.ceiling_per_s
        );
        let _ = writeln!(
            s,
            "  sustained end to end (raw -> labeled -> both sinks at rest)       {:>9.0} orders/s  ({} orders offered in {:.1} s, at rest after {:.1} s)",
            self.sustained_orders_per_s, self.offered_orders, self.offered_seconds, self.seconds_to_rest
        );
        let _ = writeln!(
            s,
            "  target: {:.0} orders/s ({}): {}",
            self.target_orders_per_s,
            self.target_bound,
            if self.met { "met" } else { "NOT met" }
        );
        let _ = writeln!(
            s,
            "\n  stage               records   records/s   CPU s   CPU ms/order   peak RSS MiB"
        );
        for st in &self.stages {
            let _ = writeln!(
                s,
                "  {:<16} {:>10.0} {:>11.0} {:>7.1} {:>14.2} {:>14.1}",
                st.name,
                st.records,
                st.records_per_s,
                st.cpu_s,
                st.cpu_ms_per_order,
                self.peak_rss_mib.get(&st.name).copied().unwrap_or(0.0)
            );
        }
        if !self.counts.is_empty() {
            let _ = writeln!(
                s,
                "\n  totals ({} instance(s) per processor): {}",
                self.instances,
                if self.exact {
                    "exact (every acknowledged order in ClickHouse once, none labeled beyond its allocation, one purchase per labeled shipment)"
                } else {
                    "NOT exact (see the notes)"
                }
            );
            for (k, v) in &self.counts {
                let _ = writeln!(s, "  {k}: {v}");
            }
        }
        if let Some(l) = &self.latency {
            let _ = writeln!(
                s,
                "\n  latency at {:.0} orders/s offered for {} s ({} orders, {} never labeled):",
                l.offered_orders_per_s, l.seconds, l.orders, l.never_labeled
            );
            let _ = writeln!(
                s,
                "                                   count      p50 ms      p99 ms      max ms"
            );
            for (name, p) in [
                ("ack (webhook / broker)", &l.ack),
                ("ack -> labeled", &l.to_labeled),
                ("ack -> visible in ClickHouse", &l.to_clickhouse),
            ] {
                let _ = writeln!(
                    s,
                    "  {name:<30} {:>7} {:>11.1} {:>11.1} {:>11.1}",
                    p.count, p.p50_ms, p.p99_ms, p.max_ms
                );
            }
            if let Some(st) = &l.steady {
                render_steady(&mut s, st);
            }
        }
        let max_lag = self
            .timeline
            .iter()
            .map(|x| x.lag.values().sum::<i64>())
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "\n  lag over time: max {max_lag} records (per second in the JSON and the plot)"
        );
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }

    /// Throughput (orders sent and labels written per second) and total
    /// lag over time, two panels sharing the time axis.
    pub fn svg(&self) -> String {
        let (w, h, pad) = (900.0, 560.0, 60.0);
        let panel = (h - 3.0 * pad) / 2.0;
        let tl = &self.timeline;
        let tmax = tl.iter().map(|x| x.t).fold(1.0, f64::max);
        let rate = |get: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
            tl.windows(2)
                .map(|p| {
                    let dt = (p[1].t - p[0].t).max(1e-3);
                    (p[1].t, ((get(&p[1]) - get(&p[0])) / dt).max(0.0))
                })
                .collect()
        };
        let sent = rate(&|x| x.sent as f64);
        let labeled = rate(&|x| x.labeled as f64);
        let lag: Vec<(f64, f64)> = tl
            .iter()
            .map(|x| (x.t, x.lag.values().sum::<i64>() as f64))
            .collect();
        let ymax1 = sent.iter().chain(&labeled).map(|p| p.1).fold(1.0, f64::max);
        let ymax2 = lag.iter().map(|p| p.1).fold(1.0, f64::max);
        let line = |pts: &[(f64, f64)], top: f64, ymax: f64, color: &str| -> String {
            let coords: Vec<String> = pts
                .iter()
                .map(|(t, y)| {
                    format!(
                        "{:.1},{:.1}",
                        pad + t / tmax * (w - 2.0 * pad),
                        top + panel - y / ymax * panel
                    )
                })
                .collect();
            format!(
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                coords.join(" ")
            )
        };
        let axes = |top: f64, ymax: f64, label: &str| -> String {
            format!(
                r##"<rect x="{pad}" y="{top}" width="{}" height="{panel}" fill="none" stroke="#999"/><text x="{pad}" y="{}" font-size="13">{label}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{ymax:.0}</text><text x="{}" y="{}" font-size="11" text-anchor="end">0</text>"##,
                w - 2.0 * pad,
                top - 8.0,
                pad - 4.0,
                top + 10.0,
                pad - 4.0,
                top + panel
            )
        };
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#
        );
        s.push_str(&format!(
            r#"<text x="{pad}" y="24" font-size="15">conveyor pipeline benchmark {}: {:.0} orders/s sustained, ceiling {:.0}/s ({} build, {} cores)</text>"#,
            self.at, self.sustained_orders_per_s, self.ceiling_per_s, self.build, self.cores
        ));
        let top1 = pad;
        let top2 = 2.0 * pad + panel;
        s.push_str(&axes(
            top1,
            ymax1,
            "per second: orders acknowledged (blue), labels written (green)",
        ));
        s.push_str(&line(&sent, top1, ymax1, "#1f77b4"));
        s.push_str(&line(&labeled, top1, ymax1, "#2ca02c"));
        s.push_str(&axes(top2, ymax2, "consumer lag, all groups (records)"));
        s.push_str(&line(&lag, top2, ymax2, "#d62728"));
        s.push_str(&format!(
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{tmax:.0} s</text></svg>"#,
            w - pad,
            top2 + panel + 16.0
        ));
        s
    }
}

/// The fixed-rate phase's steady state: memory trend per process, lag,
/// failures.
fn render_steady(s: &mut String, st: &Steady) {
    let _ = writeln!(
        s,
        "\n  steady state over the phase ({:.0} s judged after {:.0} s of warm-up): {}",
        st.judged_seconds,
        st.warmup_seconds,
        if !st.judged() {
            "too short to judge trends (a soak needs --latency-seconds 600)"
        } else if st.clean() {
            "clean"
        } else {
            "NOT clean"
        }
    );
    let _ = writeln!(
        s,
        "  lag: max {} records, {} at the end, trend {:+.0} records/min ({})",
        st.max_lag,
        st.last_lag,
        st.lag_per_min,
        if st.lag_bounded { "bounded" } else { "growing" }
    );
    let _ = writeln!(
        s,
        "  failures: {} events not acknowledged, {} ERROR log lines{}",
        st.failed_sends,
        st.error_lines.values().sum::<u64>(),
        if st.error_lines.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                st.error_lines
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let _ = writeln!(
        s,
        "  RSS MiB             first      last       max   MiB/min   verdict"
    );
    for (name, t) in &st.rss {
        let _ = writeln!(
            s,
            "  {:<16} {:>8.1} {:>9.1} {:>9.1} {:>9.2}   {}",
            name,
            t.first_mib,
            t.last_mib,
            t.max_mib,
            t.mib_per_min,
            match (st.judged(), t.judged, t.flat) {
                (false, _, _) => "-",
                (true, false, _) => "(not judged)",
                (true, true, true) => "flat",
                (true, true, false) => "GROWING",
            }
        );
    }
}

/// The load average (1, 5, 15 minutes).
pub fn loadavg() -> [f64; 3] {
    let t = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = t
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    [
        v.first().copied().unwrap_or(0.0),
        v.get(1).copied().unwrap_or(0.0),
        v.get(2).copied().unwrap_or(0.0),
    ]
}

/// The checkout's commit, when run from one.
fn revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// UTC time as `YYYYmmddTHHMMSSZ`.
pub fn stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, sent: u64, labeled: i64, lag: i64) -> Sample {
        Sample {
            t,
            sent,
            labeled,
            lag: [("allocate".to_string(), lag)].into_iter().collect(),
            rss_mib: BTreeMap::new(),
            cpu_s: BTreeMap::new(),
            records: BTreeMap::new(),
        }
    }

    #[test]
    fn the_bound_is_the_lower_of_the_two_targets() {
        let mut r = Report {
            ceiling_per_s: 2_000.0,
            ..Report::default()
        };
        let out = Outcome {
            creates: vec![("shopify:1".into(), Instant::now()); 1_300],
            ..Outcome::default()
        };
        let s = sample(0.0, 0, 0, 0);
        r.throughput(&out, Duration::from_secs(1), &s, &s, &[]);
        assert_eq!(r.target_orders_per_s, 1_200.0);
        assert!(r.target_bound.contains("ceiling"));
        assert!(r.met);
        r.ceiling_per_s = 100_000.0;
        r.throughput(&out, Duration::from_secs(1), &s, &s, &[]);
        assert_eq!(r.target_orders_per_s, 5_000.0);
        assert!(!r.met);
    }

    #[test]
    fn latency_pairs_acks_with_sightings() {
        let t0 = Instant::now();
        let out = Outcome {
            creates: vec![("a".into(), t0), ("b".into(), t0), ("c".into(), t0)],
            ack_us: vec![1_000, 2_000, 3_000, 9_000],
            create_ack_us: vec![1_000, 2_000, 3_000],
            ..Outcome::default()
        };
        let labeled: HashMap<String, Instant> = [
            ("a".to_string(), t0 + Duration::from_millis(40)),
            ("b".to_string(), t0 + Duration::from_millis(90)),
        ]
        .into_iter()
        .collect();
        let l = Latency::from(1_000.0, 1, &out, &labeled, &HashMap::new());
        assert_eq!(l.to_labeled.count, 2);
        assert_eq!(l.never_labeled, 1);
        assert_eq!(l.to_labeled.p50_ms, 40.0);
        assert_eq!(l.to_labeled.max_ms, 90.0);
        assert_eq!(l.ack.p99_ms, 3.0);
        assert_eq!(l.to_clickhouse.count, 0);
    }

    #[test]
    fn the_plot_has_both_panels() {
        let r = Report {
            timeline: vec![
                sample(0.0, 0, 0, 0),
                sample(1.0, 100, 10, 90),
                sample(2.0, 100, 100, 0),
            ],
            ..Report::default()
        };
        let svg = r.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("consumer lag"));
    }
}
