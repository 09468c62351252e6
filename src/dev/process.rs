//! Background processes owned by `conveyor dev`: started detached (own
//! process group, output to a log file), tracked by PID files, stopped with
//! SIGTERM then SIGKILL. A PID file records the process's start time (from
//! /proc) next to its PID; it only counts when a live process has that PID,
//! that start time and a command line naming the expected program, so a
//! reused PID is never signalled.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub struct Managed {
    pub name: &'static str,
    /// A string the process's command line must contain.
    pub marker: String,
    pub pidfile: PathBuf,
    pub log: PathBuf,
}

impl Managed {
    pub fn new(name: &'static str, marker: impl Into<String>, state_dir: &Path) -> Self {
        Self {
            name,
            marker: marker.into(),
            pidfile: state_dir.join(format!("{name}.pid")),
            log: state_dir.join(format!("{name}.log")),
        }
    }

    /// The PID of the running process started by us, if any.
    pub fn running(&self) -> Option<i32> {
        let text = fs::read_to_string(&self.pidfile).ok()?;
        let mut parts = text.split_whitespace();
        let pid: i32 = parts.next()?.parse().ok()?;
        let started: u64 = parts.next()?.parse().ok()?;
        (alive_with(pid, &self.marker) && start_time(pid) == Some(started)).then_some(pid)
    }

    /// Starts `cmd` detached and records its PID.
    pub fn spawn(&self, mut cmd: Command) -> anyhow::Result<i32> {
        if let Some(dir) = self.pidfile.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open log {}", self.log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}: {:?}", self.name, cmd.get_program()))?;
        let pid = child.id() as i32;
        let started = start_time(pid)
            .with_context(|| format!("{} exited at once; see {}", self.name, self.log.display()))?;
        fs::write(&self.pidfile, format!("{pid} {started}\n"))
            .with_context(|| format!("cannot write {}", self.pidfile.display()))?;
        Ok(pid)
    }

    /// Whether the process we started has exited (used while waiting for
    /// readiness, to fail fast instead of timing out).
    pub fn exited(&self, pid: i32) -> bool {
        // Reap it if it is our child and dead; ignore errors (not our child).
        unsafe {
            let mut status = 0;
            libc::waitpid(pid, &mut status, libc::WNOHANG);
        }
        !alive(pid)
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace`) and removes
    /// the PID file. Returns whether something was running.
    pub fn stop(&self, grace: Duration) -> bool {
        let Some(pid) = self.running() else {
            let _ = fs::remove_file(&self.pidfile);
            return false;
        };
        // Signal the whole process group: launchers may have children.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if alive(pid) {
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = fs::remove_file(&self.pidfile);
        true
    }

    /// The last `n` lines of the log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Start time of a process in clock ticks since boot (/proc/PID/stat
/// field 22): with the PID, it identifies one process for good.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); check /proc for its state too.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    let exists = unsafe { libc::kill(pid, 0) == 0 };
    exists && !zombie
}

fn alive_with(pid: i32, marker: &str) -> bool {
    if !alive(pid) {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline)
        .replace('\0', " ")
        .contains(marker)
}
