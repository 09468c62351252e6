//! Graceful shutdown: SIGTERM and SIGINT cancel one [`Shutdown`] token that
//! every task of a process watches. Tasks finish their in-flight work, flush
//! and commit, then return; a second signal exits at once.

use tokio_util::sync::CancellationToken;

/// A cloneable shutdown token.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    pub fn new() -> Self {
        Self(CancellationToken::new())
    }

    /// Cancels on the first SIGTERM/SIGINT; exits the process (code 130) on a
    /// second one.
    pub fn on_signals() -> Self {
        let s = Self::new();
        let token = s.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested; finishing in-flight work (signal again to force)");
            token.trigger();
            wait_for_signal().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
        s
    }

    pub fn trigger(&self) {
        self.0.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// The underlying token, for tasks that take a `CancellationToken`.
    pub fn token(&self) -> CancellationToken {
        self.0.clone()
    }

    /// Resolves once shutdown was requested.
    pub async fn wait(&self) {
        self.0.cancelled().await
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Cannot install handlers (no signal support): fall back to ctrl-c.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
