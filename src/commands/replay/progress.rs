//! Progress of a long replay or rebuild: a bar with messages done/total,
//! rate and ETA on a terminal; a line every few seconds otherwise (logs,
//! CI), and a summary at the end either way.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    label: String,
    total: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:32}] {human_pos}/{human_len} {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b
        });
        Progress {
            label: label.to_string(),
            total,
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Reports `done` messages so far.
    pub fn set(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done.min(self.total));
            return;
        }
        if self.last_line.elapsed() >= Duration::from_secs(3) {
            self.last_line = Instant::now();
            eprintln!("{}", self.line(done));
        }
    }

    fn line(&self, done: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "?".into()
        };
        let pct = if self.total == 0 {
            100.0
        } else {
            100.0 * done as f64 / self.total as f64
        };
        format!(
            "{}: {done}/{} messages ({pct:.0}%), {rate:.0}/s, ETA {eta}",
            self.label, self.total
        )
    }

    /// Ends the bar; returns (elapsed, messages/s).
    pub fn finish(self, done: u64) -> (Duration, f64) {
        let elapsed = self.started.elapsed();
        if let Some(b) = &self.bar {
            b.set_position(done.min(self.total));
            b.finish();
        }
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
        (elapsed, rate)
    }
}

/// Polls `counters` into `progress` every 200 ms until `until` resolves;
/// returns its output and the final count.
pub async fn track<T>(
    progress: &mut Progress,
    counters: &[Arc<AtomicU64>],
    until: impl std::future::Future<Output = T>,
) -> (T, u64) {
    let sum = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    tokio::pin!(until);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            out = &mut until => return (out, sum()),
            _ = tick.tick() => progress.set(sum()),
        }
    }
}
