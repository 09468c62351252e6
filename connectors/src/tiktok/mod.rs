//! TikTok Shop: the ORDER_STATUS_CHANGE webhook receiver ([`webhook`]),
//! which fetches each notified order with the signed Get Order Detail call
//! ([`client`]) and publishes it once the broker acknowledged; run by
//! [`run`] (`conveyor connect tiktok`). Signatures are in [`sign`].

pub mod client;
pub mod sign;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conveyor_runtime::config::Config;
use conveyor_schemas::codec::Codec;
use tokio_util::sync::CancellationToken;

use crate::publish::RawPublisher;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("channels.tiktok.app_key is empty: webhooks cannot be verified nor orders fetched (set CONVEYOR_CHANNELS__TIKTOK__APP_KEY to the app key from Partner Center)")]
    NoAppKey,
    #[error("channels.tiktok.app_secrets is empty: the receiver cannot verify webhooks nor sign API calls (set CONVEYOR_CHANNELS__TIKTOK__APP_SECRETS='[\"<app secret>\"]')")]
    NoSecret,
    #[error("cannot listen for webhooks on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

/// Checks what the receiver cannot work without.
pub fn check(config: &Config) -> Result<(), ConnectError> {
    let tc = &config.channels.tiktok;
    if tc.app_key.trim().is_empty() {
        return Err(ConnectError::NoAppKey);
    }
    if tc.app_secrets.iter().all(|s| s.is_empty()) {
        return Err(ConnectError::NoSecret);
    }
    Ok(())
}

/// Serves webhooks on `bind` until `shutdown`; in-flight webhooks finish,
/// then the producer is flushed.
pub async fn run(
    config: &Config,
    codec: Arc<Codec>,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), ConnectError> {
    check(config)?;
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
    check(config)?;
    let tc = &config.channels.tiktok;
    if tc.access_token.is_empty() {
        tracing::warn!("channels.tiktok.access_token is empty: every Get Order Detail call will be refused and webhooks answered 503");
    }
    let publisher = RawPublisher::new(config, codec, "tiktok", "connect-tiktok")?;
    let client = Arc::new(client::ApiClient::new(tc));
    let state = webhook::WebhookState {
        app_key: tc.app_key.trim().into(),
        secrets: Arc::new(tc.app_secrets.clone()),
        fetcher: client::OrderFetcher::spawn(client),
        publisher: publisher.clone(),
        ack_timeout: Duration::from_millis(tc.ack_timeout_ms.max(1)),
        recent: Arc::new(webhook::RecentIds::new(100_000)),
    };
    let addr = listener
        .local_addr()
        .map_err(|e| ConnectError::Bind(([0, 0, 0, 0], 0).into(), e))?;
    tracing::info!(%addr, topic = publisher.topic(), api = %tc.api_url, "tiktok webhooks: POST /webhooks/tiktok");
    println!("tiktok webhooks listening on http://{addr}/webhooks/tiktok");
    let stop = shutdown.clone();
    let served = axum::serve(listener, webhook::router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    publisher.flush();
    served.map_err(|e| ConnectError::Bind(addr, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_runtime::config::Secret;

    #[tokio::test]
    async fn refuses_to_start_without_app_key_or_secrets() {
        let codec = Arc::new(Codec::new("http://127.0.0.1:1").unwrap());
        let mut config = Config::default();
        let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
        let e = run(&config, codec.clone(), bind, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::NoAppKey), "{e}");
        assert!(e.to_string().contains("channels.tiktok.app_key"));
        config.channels.tiktok.app_key = "key".into();
        config.channels.tiktok.app_secrets = vec![Secret::new("")];
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let e = serve(&config, codec, listener, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::NoSecret), "{e}");
        assert!(e.to_string().contains("app_secrets"));
    }
}
