//! Webhook signatures: HMAC-SHA256 over the raw body, compared in constant
//! time (the `hmac` crate's `verify_slice`), against every configured
//! secret so that a secret can be rotated without dropping webhooks.

use base64::Engine as _;
use conveyor_runtime::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The base64 HMAC-SHA256 of `body` under `secret` (what Shopify sends in
/// `X-Shopify-Hmac-Sha256`).
pub fn sign_base64(secret: &[u8], body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(secret, body))
}

fn mac(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// True when `signature_b64` is the HMAC of `body` under one of `secrets`.
/// A signature that is not base64 or has the wrong length is simply false.
pub fn verify_base64(secrets: &[Secret], body: &[u8], signature_b64: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    // Every secret is tried (no early exit on the first), so timing does not
    // tell which one matched.
    let mut ok = false;
    for s in secrets {
        let Ok(mut m) = HmacSha256::new_from_slice(s.expose().as_bytes()) else {
            continue;
        };
        m.update(body);
        ok |= m.verify_slice(&given).is_ok();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_under_either_secret_of_a_rotation() {
        let old = Secret::new("old-secret");
        let new = Secret::new("new-secret");
        let body = br#"{"id":1}"#;
        let sig = sign_base64(b"old-secret", body);
        assert!(verify_base64(&[new.clone(), old.clone()], body, &sig));
        assert!(!verify_base64(std::slice::from_ref(&new), body, &sig));
        assert!(!verify_base64(
            &[new.clone(), old.clone()],
            b"{\"id\":2}",
            &sig
        ));
        assert!(!verify_base64(
            std::slice::from_ref(&old),
            body,
            "not base64!"
        ));
        assert!(!verify_base64(std::slice::from_ref(&old), body, ""));
        assert!(!verify_base64(&[], body, &sig));
    }
}
