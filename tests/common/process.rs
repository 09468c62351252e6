//! The `conveyor` binary as a child process of a test (for crash and
//! restart tests): stdout piped, stderr to a log file.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Killed (SIGKILL) when dropped while still running, so a failing test
/// leaves no process behind.
pub struct Process {
    child: Option<Child>,
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Process {
    pub fn spawn<V: AsRef<OsStr>>(args: &[&str], env: &[(&str, V)], log: &Path) -> Process {
        let log = std::fs::File::create(log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
        cmd.args(args).stdout(Stdio::piped()).stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Process {
            child: Some(cmd.spawn().unwrap()),
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            c.wait().unwrap();
        }
    }

    /// SIGTERM, wait for the graceful exit (asserted); returns its stdout.
    pub fn stop(mut self) -> Vec<u8> {
        self.signal(libc::SIGTERM);
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "graceful stop failed: {:?}",
            out.status
        );
        out.stdout
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling our own child.
        if let Some(c) = &self.child {
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }
}
