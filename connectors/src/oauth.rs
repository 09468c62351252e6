//! Access tokens from a refresh token (Amazon's Login with Amazon, eBay's
//! OAuth): `POST <token_url>` with `grant_type=refresh_token`, cached until
//! a minute before `expires_in`, refreshed once on a 401. Tokens never reach
//! logs or topics.

use std::time::{Duration, Instant};

use conveyor_runtime::config::Secret;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token endpoint {url}: {message}")]
    Refresh { url: String, message: String },
}

pub struct RefreshingToken {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Extra form fields (eBay's `scope`).
    pub extra: Vec<(String, String)>,
    /// Client id and secret as HTTP basic auth (eBay) instead of form
    /// fields (Amazon LWA).
    pub basic_auth: bool,
    cached: Mutex<Option<(String, Instant)>>,
}

impl RefreshingToken {
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: Secret,
        refresh_token: Secret,
        basic_auth: bool,
    ) -> RefreshingToken {
        RefreshingToken {
            token_url: token_url.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            refresh_token,
            extra: Vec::new(),
            basic_auth,
            cached: Mutex::new(None),
        }
    }

    /// A valid access token, refreshing it when it is about to expire.
    pub async fn get(&self, http: &reqwest::Client) -> Result<String, TokenError> {
        let mut c = self.cached.lock().await;
        if let Some((token, until)) = c.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let (token, expires_in) = self.refresh(http).await?;
        let margin = Duration::from_secs(60).min(expires_in / 2);
        *c = Some((token.clone(), Instant::now() + expires_in - margin));
        metrics::counter!("conveyor_connector_token_refreshes_total").increment(1);
        Ok(token)
    }

    /// Forget the cached token (the API answered 401 with it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn refresh(&self, http: &reqwest::Client) -> Result<(String, Duration), TokenError> {
        let err = |message: String| TokenError::Refresh {
            url: self.token_url.clone(),
            message,
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", self.refresh_token.expose()),
        ];
        if !self.basic_auth {
            form.push(("client_id", &self.client_id));
            form.push(("client_secret", self.client_secret.expose()));
        }
        for (k, v) in &self.extra {
            form.push((k, v));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = http
            .post(&self.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if self.basic_auth {
            req = req.basic_auth(&self.client_id, Some(self.client_secret.expose()));
        }
        let resp = req.send().await.map_err(|e| err(e.to_string()))?;
        let status = resp.status();
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| err(format!("HTTP {status}: {e}")))?;
        if !status.is_success() {
            // The error fields only: never echo the request.
            let what = v
                .get("error_description")
                .or_else(|| v.get("error"))
                .and_then(|x| x.as_str())
                .unwrap_or("refused");
            return Err(err(format!(
                "HTTP {status}: {what}; check the client id, secret and refresh token"
            )));
        }
        let token = v
            .get("access_token")
            .and_then(|x| x.as_str())
            .ok_or_else(|| err("no access_token in the answer".into()))?;
        let secs = v.get("expires_in").and_then(|x| x.as_u64()).unwrap_or(3600);
        Ok((token.to_string(), Duration::from_secs(secs.max(60))))
    }
}

/// `application/x-www-form-urlencoded` escaping.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
