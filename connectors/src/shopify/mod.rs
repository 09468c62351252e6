//! Shopify: the webhook receiver ([`webhook`]) and the Admin REST poller
//! ([`poller`]), run together by [`run`] (`conveyor connect shopify`).

pub mod poller;
pub mod webhook;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use conveyor_runtime::config::Config;
use conveyor_schemas::codec::Codec;
use tokio_util::sync::CancellationToken;

use crate::publish::RawPublisher;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("channels.shopify.webhook_secrets is empty: the receiver cannot verify webhooks (set CONVEYOR_CHANNELS__SHOPIFY__WEBHOOK_SECRETS='[\"<secret>\"]')")]
    NoSecret,
    #[error("cannot listen for webhooks on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

/// Serves webhooks on `bind` (and polls when `poll_interval_ms` > 0) until
/// `shutdown`; in-flight webhooks finish, then the producer is flushed.
pub async fn run(
    config: &Config,
    codec: Arc<Codec>,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), ConnectError> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| ConnectError::Bind(bind, e))?;
    serve(config, codec, listener, shutdown).await
}

/// [`run`] on a listener the caller bound (port 0 in the demo and tests).
pub async fn serve(
    config: &Config,
    codec: Arc<Codec>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ConnectError> {
    let sc = &config.channels.shopify;
    if sc.webhook_secrets.is_empty() {
        return Err(ConnectError::NoSecret);
    }
    let publisher = RawPublisher::new(config, codec, "shopify", "connect-shopify")?;
    let state = webhook::WebhookState {
        secrets: Arc::new(sc.webhook_secrets.clone()),
        publisher: publisher.clone(),
        ack_timeout: Duration::from_millis(sc.ack_timeout_ms),
        recent: Arc::new(webhook::RecentIds::new(100_000)),
    };
    let addr = listener
        .local_addr()
        .map_err(|e| ConnectError::Bind(([0, 0, 0, 0], 0).into(), e))?;
    tracing::info!(%addr, topic = publisher.topic(), "shopify webhooks: POST /webhooks/shopify");
    println!("shopify webhooks listening on http://{addr}/webhooks/shopify");
    let poll = (sc.poll_interval_ms > 0).then(|| {
        let poller =
            poller::Poller::new(sc.clone(), publisher.clone(), Path::new(&config.state.dir));
        let token = shutdown.clone();
        tokio::spawn(async move { poller.run(token).await })
    });
    let stop = shutdown.clone();
    let served = axum::serve(listener, webhook::router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Some(p) = poll {
        p.abort();
    }
    publisher.flush();
    served.map_err(|e| ConnectError::Bind(addr, e))
}
