//! The pipeline's components as child processes of the benchmark (one per
//! component, as the compose stack and Kubernetes run them), and what the
//! benchmark reads off each: CPU seconds and resident memory from
//! `/proc/<pid>`, counters and lag gauges from its `/metrics`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running component; stopped (SIGTERM, then SIGKILL after 10 s) on drop.
pub struct Proc {
    pub name: String,
    /// Its observability port (0: none).
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// `program <args>` (conveyor's components: `current_exe`), logging
    /// to `<logs>/<name>.log`.
    pub fn spawn(
        program: &Path,
        name: &str,
        args: &[String],
        env: &[(String, OsString)],
        logs: &Path,
        port: u16,
    ) -> anyhow::Result<Proc> {
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("CONVEYOR_LOG", "warn,rdkafka=error,librdkafka=error")
            // Plain lines: the steady-state check counts ERROR lines.
            .env("CONVEYOR_LOG_FORMAT", "plain")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        // The child gets SIGTERM when the benchmark dies, however it dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Proc {
            name: name.to_string(),
            port,
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log.
    pub fn tail(&self, lines: usize) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let v: Vec<&str> = t.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        // SAFETY: a plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops every process: SIGTERM to all at once, then up to 15 s for all
/// of them together to finish, then SIGKILL for what is left.
pub fn stop_all(procs: &mut Vec<Proc>) {
    for p in procs.iter_mut() {
        if p.alive() {
            // SAFETY: a plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(p.child.id() as i32, libc::SIGTERM);
            }
        }
    }
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until && procs.iter_mut().any(|p| p.alive()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in procs.iter_mut() {
        if p.alive() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
    procs.clear();
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU and memory of a process from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    /// User + system CPU seconds so far.
    pub cpu_s: f64,
    pub rss_bytes: u64,
    /// Peak resident set (VmHWM).
    pub peak_rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; None once it is gone.
pub fn stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5): 11 and 12 here.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Some(ProcStat {
        cpu_s: ticks / hz,
        rss_bytes: kb("VmRSS:"),
        peak_rss_bytes: kb("VmHWM:"),
    })
}

/// The sum of a metric's samples in a Prometheus text exposition, over the
/// samples whose labels contain every `label="value"` of `with`.
pub fn metric_sum(text: &str, name: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `/metrics` of each process that answers, by name.
pub async fn scrape(http: &reqwest::Client, procs: &[Proc]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in procs.iter().filter(|p| p.port != 0) {
        let url = format!("http://127.0.0.1:{}/metrics", p.port);
        if let Ok(r) = http.get(&url).timeout(Duration::from_secs(2)).send().await {
            if let Ok(t) = r.text().await {
                out.insert(p.name.clone(), t);
            }
        }
    }
    out
}

/// Waits until every process with a port answers /readyz with 200.
pub async fn wait_ready(
    http: &reqwest::Client,
    procs: &mut [Proc],
    within: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    loop {
        let mut waiting = Vec::new();
        for p in procs.iter_mut().filter(|p| p.port != 0) {
            if !p.alive() {
                anyhow::bail!("{} exited while starting:\n{}", p.name, p.tail(15));
            }
            let ok = http
                .get(format!("http://127.0.0.1:{}/readyz", p.port))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ok {
                waiting.push(p.name.clone());
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() > until {
            anyhow::bail!(
                "not ready after {} s: {}",
                within.as_secs(),
                waiting.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = stat(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0 && s.peak_rss_bytes >= s.rss_bytes);
        assert!(s.cpu_s >= 0.0);
        assert!(stat(u32::MAX).is_none());
    }

    #[test]
    fn sums_matching_samples() {
        let text = "# HELP x\nconveyor_processor_records_total{job=\"a\"} 3\nconveyor_processor_records_total{job=\"b\"} 4.5\nconveyor_processor_records_totalx 9\nother 1\n";
        assert_eq!(
            metric_sum(text, "conveyor_processor_records_total", &[]),
            7.5
        );
        assert_eq!(
            metric_sum(text, "conveyor_processor_records_total", &["job=\"b\""]),
            4.5
        );
        assert_eq!(metric_sum(text, "missing", &[]), 0.0);
    }
}
