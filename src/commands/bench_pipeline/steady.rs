//! The steady state of the fixed-rate phase, which is the soak when it is
//! run long (`--latency-seconds 600`): does any process's memory grow, does
//! lag stay bounded, did anything fail.
//!
//! The window is the phase's offered load: from its start to when the load
//! generator finished (the drain after it would flatten any trend). Memory
//! is judged for the pipeline's own processes; the dev services' (broker,
//! ClickHouse, registry) and the carrier simulator's are shown for
//! information (an in-memory broker and the simulator keep what they are
//! sent, by design). It is judged after a warm-up (the phase's first minute, or its first
//! fifth when shorter): caches, connection pools and allocator arenas fill
//! then. A process is flat when the least-squares trend over the rest, taken
//! over the whole window, adds less than 5% of its mean (or 4 MiB, so that
//! small processes are not judged on allocator noise). Lag is bounded when
//! its trend over the same window adds less than [`LAG_GROWTH`] records
//! (about a second of work at the rates this machine sustains): a queue
//! that keeps growing is a rate the pipeline does not sustain.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::Sample;

/// What is allowed to look like growth: the larger of this share of the
/// mean and [`NOISE_MIB`], over the judged window.
const GROWTH_SHARE: f64 = 0.05;
const NOISE_MIB: f64 = 4.0;
/// Lag growth over the judged window still called bounded, records.
pub const LAG_GROWTH: f64 = 1000.0;
/// Shortest judged window that gets a verdict: trends over less are noise
/// (a default 20 s latency phase is not a soak).
pub const MIN_JUDGED_S: f64 = 120.0;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Steady {
    /// Seconds of samples judged (after the warm-up).
    pub judged_seconds: f64,
    pub warmup_seconds: f64,
    /// Total lag (records not yet committed, all stages), max and at the
    /// phase's last sample.
    pub max_lag: i64,
    pub last_lag: i64,
    /// Least-squares trend of the total lag over the judged window.
    pub lag_per_min: f64,
    pub lag_bounded: bool,
    pub rss: BTreeMap<String, Trend>,
    /// Every judged process flat (and there were some).
    pub rss_flat: bool,
    /// ERROR lines in each process's log over the whole run (only
    /// processes that have some).
    pub error_lines: BTreeMap<String, u64>,
    /// Events the load generator could not get acknowledged.
    pub failed_sends: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Trend {
    pub first_mib: f64,
    pub last_mib: f64,
    pub max_mib: f64,
    /// Least-squares slope over the judged window.
    pub mib_per_min: f64,
    pub flat: bool,
    /// Judged (a conveyor process), or shown for information.
    pub judged: bool,
}

impl Steady {
    /// The phase's samples are those from `from` to `until` (seconds on
    /// the timeline's clock); memory is judged for the processes named in
    /// `judge`.
    pub fn of(timeline: &[Sample], from: f64, until: f64, judge: &[String]) -> Steady {
        let phase: Vec<&Sample> = timeline
            .iter()
            .filter(|s| s.t >= from && s.t <= until)
            .collect();
        let (Some(first), Some(last)) = (phase.first(), phase.last()) else {
            return Steady::default();
        };
        let span = last.t - first.t;
        let warmup = (span / 5.0).min(60.0);
        let judged: Vec<&Sample> = phase
            .iter()
            .copied()
            .filter(|s| s.t >= first.t + warmup)
            .collect();
        let lag = |s: &Sample| s.lag.values().sum::<i64>();
        let mut names: Vec<&String> = judged.iter().flat_map(|s| s.rss_mib.keys()).collect();
        names.sort();
        names.dedup();
        let mut rss = BTreeMap::new();
        for name in names {
            let points: Vec<(f64, f64)> = judged
                .iter()
                .filter_map(|s| s.rss_mib.get(name).map(|m| (s.t, *m)))
                .collect();
            if let Some(mut t) = Trend::of(&points) {
                t.judged = judge.contains(name);
                rss.insert(name.clone(), t);
            }
        }
        let lag_points: Vec<(f64, f64)> = judged.iter().map(|s| (s.t, lag(s) as f64)).collect();
        let (lag_slope, lag_span) = slope(&lag_points);
        Steady {
            lag_per_min: lag_slope * 60.0,
            lag_bounded: lag_slope * lag_span < LAG_GROWTH,
            judged_seconds: judged
                .last()
                .zip(judged.first())
                .map_or(0.0, |(l, f)| l.t - f.t),
            warmup_seconds: warmup,
            max_lag: phase.iter().map(|s| lag(s)).max().unwrap_or(0),
            last_lag: lag(last),
            rss_flat: rss.values().any(|t| t.judged)
                && rss.values().filter(|t| t.judged).all(|t| t.flat),
            rss,
            error_lines: BTreeMap::new(),
            failed_sends: 0,
        }
    }

    /// Long enough to judge trends ([`MIN_JUDGED_S`]).
    pub fn judged(&self) -> bool {
        self.judged_seconds >= MIN_JUDGED_S
    }

    /// Judged, memory flat, lag bounded, nothing failed.
    pub fn clean(&self) -> bool {
        self.judged()
            && self.rss_flat
            && self.lag_bounded
            && self.failed_sends == 0
            && self.error_lines.values().all(|n| *n == 0)
    }
}

impl Trend {
    /// `points` are (seconds, MiB); none when fewer than two.
    fn of(points: &[(f64, f64)]) -> Option<Trend> {
        if points.len() < 2 {
            return None;
        }
        let mm = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
        let (slope_per_s, span) = slope(points);
        let growth = slope_per_s * span;
        Some(Trend {
            first_mib: points[0].1,
            last_mib: points[points.len() - 1].1,
            max_mib: points.iter().map(|p| p.1).fold(0.0, f64::max),
            mib_per_min: slope_per_s * 60.0,
            flat: growth < (mm * GROWTH_SHARE).max(NOISE_MIB),
            judged: false,
        })
    }
}

/// Least-squares slope of (x, y) points per unit of x, and the x span.
fn slope(points: &[(f64, f64)]) -> (f64, f64) {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return (0.0, 0.0);
    };
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let var: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let cov: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (if var > 0.0 { cov / var } else { 0.0 }, last.0 - first.0)
}

/// Bytes in `log` so far (where the phase's part of it starts).
pub fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// ERROR-level lines in a log written by conveyor's tracing subscriber in
/// plain format (the benchmark sets it), past byte `from`.
pub fn error_lines(log: &Path, from: u64) -> u64 {
    let Ok(bytes) = std::fs::read(log) else {
        return 0;
    };
    let tail = bytes.get(from as usize..).unwrap_or_default();
    String::from_utf8_lossy(tail)
        .lines()
        .filter(|l| l.contains(" ERROR "))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge() -> Vec<String> {
        vec!["route".to_string()]
    }

    fn at(t: f64, rss: f64, lag: i64) -> Sample {
        Sample {
            t,
            sent: 0,
            labeled: 0,
            lag: [("route".to_string(), lag)].into(),
            rss_mib: [("route".to_string(), rss)].into(),
            cpu_s: BTreeMap::new(),
            records: BTreeMap::new(),
        }
    }

    #[test]
    fn a_leak_is_not_flat_and_noise_is() {
        // 100 MiB growing 1 MiB a minute for ten minutes: 10 MiB > 5%.
        let leak: Vec<Sample> = (0..600)
            .map(|i| at(i as f64, 100.0 + i as f64 / 60.0, 5))
            .collect();
        let s = Steady::of(&leak, 0.0, f64::MAX, &judge());
        let t = &s.rss["route"];
        assert!(!t.flat && !s.rss_flat && !s.clean());
        assert!((t.mib_per_min - 1.0).abs() < 0.01, "{}", t.mib_per_min);
        assert_eq!(s.warmup_seconds, 60.0);
        // Alternating +-3 MiB around 100: flat.
        let noisy: Vec<Sample> = (0..600)
            .map(|i| at(i as f64, if i % 2 == 0 { 97.0 } else { 103.0 }, 5))
            .collect();
        let s = Steady::of(&noisy, 0.0, f64::MAX, &judge());
        assert!(s.rss_flat && s.clean(), "{:?}", s.rss);
    }

    #[test]
    fn only_the_phase_is_judged_after_its_warmup() {
        // A burst before the phase (t < 100) and a warm-up climb in the
        // phase's first minute, then flat.
        let mut tl: Vec<Sample> = (0..100)
            .map(|i| at(i as f64, 50.0 + i as f64, 90_000))
            .collect();
        tl.extend((100..700).map(|i| {
            let rss = if i < 160 {
                150.0 + (i - 100) as f64
            } else {
                210.0
            };
            at(i as f64, rss, if i == 300 { 40 } else { 3 })
        }));
        let s = Steady::of(&tl, 100.0, 700.0, &judge());
        assert!(s.rss_flat, "{:?}", s.rss);
        assert_eq!(s.max_lag, 40);
        assert_eq!(s.last_lag, 3);
        assert!(
            (s.judged_seconds - 539.0).abs() < 1.0,
            "{}",
            s.judged_seconds
        );
    }

    #[test]
    fn the_drain_and_the_services_are_not_judged() {
        // A queue growing while the load is on (to t = 400), drained
        // after: judged on the load alone, growing.
        let tl: Vec<Sample> = (0..800)
            .map(|i| {
                at(
                    i as f64,
                    80.0,
                    if i < 400 { 20 * i } else { 20 * (800 - i) },
                )
            })
            .collect();
        let s = Steady::of(&tl, 0.0, 400.0, &judge());
        assert!(!s.lag_bounded, "{}", s.lag_per_min);
        // A growing broker next to a flat route: flat (the broker shown).
        let mut tl: Vec<Sample> = (0..300).map(|i| at(i as f64, 80.0, 0)).collect();
        for (i, s) in tl.iter_mut().enumerate() {
            s.rss_mib.insert("broker (memory)".into(), 100.0 + i as f64);
        }
        let s = Steady::of(&tl, 0.0, f64::MAX, &judge());
        assert!(s.rss_flat && s.clean());
        assert!(!s.rss["broker (memory)"].flat && !s.rss["broker (memory)"].judged);
        // Nothing judged (no samples of conveyor's processes): not flat.
        let s = Steady::of(&tl, 0.0, f64::MAX, &[]);
        assert!(!s.rss_flat && !s.clean());
    }

    #[test]
    fn failures_make_it_unclean() {
        let flat: Vec<Sample> = (0..300).map(|i| at(i as f64, 80.0, 0)).collect();
        let mut s = Steady::of(&flat, 0.0, f64::MAX, &judge());
        assert!(s.clean());
        // Too short to judge: no verdict.
        let short = Steady::of(&flat[..100], 0.0, f64::MAX, &judge());
        assert!(short.rss_flat && !short.judged() && !short.clean());
        // A queue that keeps growing: 10 records a second.
        let growing: Vec<Sample> = (0..300).map(|i| at(i as f64, 80.0, 10 * i)).collect();
        let g = Steady::of(&growing, 0.0, f64::MAX, &judge());
        assert!(!g.lag_bounded && !g.clean());
        assert!((g.lag_per_min - 600.0).abs() < 1.0, "{}", g.lag_per_min);
        s.error_lines.insert("label".into(), 2);
        assert!(!s.clean());
        s.error_lines.clear();
        s.failed_sends = 1;
        assert!(!s.clean());
    }
}
