//! TikTok Shop signatures: the `sign` of Open API requests and the
//! `Authorization` signature of webhooks. Both are the lowercase hex
//! HMAC-SHA256 under the app secret; only the signed message differs.
//!
//! **API requests** (Partner Center, "Sign your API request",
//! `docv2/page/sign-your-api-request`):
//! 1. take every query parameter except `sign` and `access_token`, keys in
//!    alphabetical order;
//! 2. concatenate them as `{key}{value}` (decoded values);
//! 3. prepend the request path (`/order/202309/orders`);
//! 4. unless the content type is `multipart/form-data`, append the request
//!    body as sent (a GET has none);
//! 5. wrap the result in the app secret: `secret + string + secret`;
//! 6. `sign` = hex(HMAC-SHA256(key = app secret, message = step 5)).
//!
//! The access token travels in the `x-tts-access-token` header (202309 and
//! later) and is never signed.
//!
//! **Webhooks** (Partner Center, "Webhooks overview",
//! `docv2/page/tts-webhooks-overview`): the `Authorization` request header
//! (no `Bearer` prefix) is hex(HMAC-SHA256(key = app secret, message =
//! app_key + raw body)). It is checked against the raw body bytes exactly as
//! received, in constant time, under every configured secret (two during a
//! rotation).
//!
//! Both documented examples are known-answer tests below.

use conveyor_runtime::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Query parameters never signed.
pub const UNSIGNED_PARAMS: &[&str] = &["sign", "access_token"];

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// The string an API request's `sign` is the HMAC of (step 5: already wrapped
/// in the secret). `params` are the decoded query parameters in any order;
/// `sign` and `access_token` are left out here.
pub fn api_base_string<'a, I>(secret: &str, path: &str, params: I, body: &[u8]) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut kv: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, _)| !UNSIGNED_PARAMS.contains(k))
        .collect();
    // Byte order of the keys, as the reference implementations sort (Go's
    // `keys[i] < keys[j]`, Java's `Collections.sort`): keys are ASCII.
    kv.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(b.1)));
    let mut out = Vec::with_capacity(2 * secret.len() + path.len() + body.len() + 64);
    out.extend_from_slice(secret.as_bytes());
    out.extend_from_slice(path.as_bytes());
    for (k, v) in kv {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(body);
    out.extend_from_slice(secret.as_bytes());
    out
}

/// The `sign` query parameter of an API request (lowercase hex).
pub fn api_sign<'a, I>(secret: &str, path: &str, params: I, body: &[u8]) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut m = mac(secret.as_bytes());
    m.update(&api_base_string(secret, path, params, body));
    hex(&m.finalize().into_bytes())
}

/// True when `given` (hex, either case) is the `sign` of the request under
/// `secret`; compared in constant time. What the simulator checks.
pub fn verify_api_sign<'a, I>(secret: &str, path: &str, params: I, body: &[u8], given: &str) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let Some(given) = unhex(given.trim()) else {
        return false;
    };
    let mut m = mac(secret.as_bytes());
    m.update(&api_base_string(secret, path, params, body));
    m.verify_slice(&given).is_ok()
}

/// The webhook `Authorization` value for `body` (lowercase hex).
pub fn webhook_sign(app_key: &str, secret: &str, body: &[u8]) -> String {
    let mut m = mac(secret.as_bytes());
    m.update(app_key.as_bytes());
    m.update(body);
    hex(&m.finalize().into_bytes())
}

/// True when `signature` (the `Authorization` header: hex, either case) is
/// the webhook signature of `body` under one of `secrets`. Every secret is
/// tried (no early exit), each comparison in constant time; a value that is
/// not hex of the right length (`Bearer ...`, empty) is simply false.
pub fn verify_webhook(app_key: &str, secrets: &[Secret], body: &[u8], signature: &str) -> bool {
    let Some(given) = unhex(signature.trim()) else {
        return false;
    };
    let mut ok = false;
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        let mut m = mac(s.expose().as_bytes());
        m.update(app_key.as_bytes());
        m.update(body);
        ok |= m.verify_slice(&given).is_ok();
    }
    ok
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Hex (either case) to bytes; `None` for anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Sign your API request", step-by-step example: Get Authorized Shops
    /// with app_key `29a39d`, timestamp `1623812664`, app secret
    /// `e59af819cc`; the page prints the wrapped string and this sign.
    #[test]
    fn api_sign_matches_the_documented_example() {
        let params = [("timestamp", "1623812664"), ("app_key", "29a39d")];
        assert_eq!(
            api_base_string("e59af819cc", "/authorization/202309/shops", params, b""),
            b"e59af819cc/authorization/202309/shopsapp_key29a39dtimestamp1623812664e59af819cc"
        );
        let sign = api_sign("e59af819cc", "/authorization/202309/shops", params, b"");
        assert_eq!(
            sign,
            "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"
        );
        // `sign` and `access_token` are not signed.
        let with = [
            ("app_key", "29a39d"),
            ("sign", "anything"),
            ("access_token", "TTP_x"),
            ("timestamp", "1623812664"),
        ];
        assert_eq!(
            api_sign("e59af819cc", "/authorization/202309/shops", with, b""),
            sign
        );
        assert!(verify_api_sign(
            "e59af819cc",
            "/authorization/202309/shops",
            params,
            b"",
            &sign.to_uppercase()
        ));
        assert!(!verify_api_sign(
            "e59af819cd",
            "/authorization/202309/shops",
            params,
            b"",
            &sign
        ));
    }

    /// The same page's Update Shop Webhook example shows where the body and
    /// `shop_cipher` go (it prints the string, no digest).
    #[test]
    fn body_and_cipher_are_placed_as_documented() {
        let body = br#"{    "address":"https://partner.tiktokshop.com",    "event_type": "PACKAGE_UPDATE"}"#;
        let params = [
            ("timestamp", "1696909648"),
            ("shop_cipher", "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"),
            ("app_key", "68xu9ks5p4i8"),
        ];
        let s = api_base_string("S", "/event/202309/webhooks", params, body);
        let expected = [
            &b"S/event/202309/webhooksapp_key68xu9ks5p4i8shop_cipherROW_xkMbgAAAeVAQra0eZWebFQq5aIKtimestamp1696909648"[..],
            body,
            b"S",
        ]
        .concat();
        assert_eq!(s, expected);
        // The body is signed byte for byte.
        let a = api_sign("S", "/p", [("a", "1")], b"{}");
        assert_ne!(a, api_sign("S", "/p", [("a", "1")], b"{ }"));
        assert_ne!(a, api_sign("S", "/p", [("a", "2")], b"{}"));
        assert_ne!(a, api_sign("S", "/q", [("a", "1")], b"{}"));
    }

    const DOC_BODY: &str = r#"{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507","timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178","order_status":"UNPAID","update_time":1718305585}}"#;
    const DOC_SIG: &str = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05";

    /// "Webhooks overview": app key `abcdef`, app secret `123`, this body.
    #[test]
    fn webhook_signature_matches_the_documented_example() {
        assert_eq!(webhook_sign("abcdef", "123", DOC_BODY.as_bytes()), DOC_SIG);
        let secrets = [Secret::new("123")];
        assert!(verify_webhook(
            "abcdef",
            &secrets,
            DOC_BODY.as_bytes(),
            DOC_SIG
        ));
        assert!(verify_webhook(
            "abcdef",
            &secrets,
            DOC_BODY.as_bytes(),
            &format!(" {} ", DOC_SIG.to_uppercase())
        ));
    }

    #[test]
    fn webhook_rotation_and_tampering() {
        let (old, new) = (Secret::new("old-secret"), Secret::new("new-secret"));
        let body = DOC_BODY.as_bytes();
        let sig = webhook_sign("abcdef", "old-secret", body);
        let both = [new.clone(), old.clone()];
        assert!(verify_webhook("abcdef", &both, body, &sig), "either secret");
        assert!(verify_webhook(
            "abcdef",
            &both,
            body,
            &webhook_sign("abcdef", "new-secret", body)
        ));
        assert!(!verify_webhook(
            "abcdef",
            std::slice::from_ref(&new),
            body,
            &sig
        ));
        // A changed body, app key, or signature.
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert!(!verify_webhook("abcdef", &both, &tampered, &sig));
        assert!(!verify_webhook("abcdeg", &both, body, &sig));
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!verify_webhook(
            "abcdef",
            &both,
            body,
            std::str::from_utf8(&flipped).unwrap()
        ));
        // Not the hex HMAC: wrong shapes are false, not errors.
        for bad in [
            "",
            "Bearer ",
            &format!("Bearer {sig}"),
            &sig[..62],
            "zz",
            &sig[1..],
        ] {
            assert!(!verify_webhook("abcdef", &both, body, bad), "{bad:?}");
        }
        // Re-serialized JSON is another message.
        let v: serde_json::Value = serde_json::from_str(DOC_BODY).unwrap();
        let again = serde_json::to_vec_pretty(&v).unwrap();
        assert!(!verify_webhook(
            "abcdef",
            &[Secret::new("123")],
            &again,
            DOC_SIG
        ));
        // No secrets (or only empty ones): nothing verifies.
        assert!(!verify_webhook("abcdef", &[], body, &sig));
        assert!(!verify_webhook(
            "abcdef",
            &[Secret::new("")],
            body,
            &webhook_sign("abcdef", "", body)
        ));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(unhex("0001ABff"), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("gg"), None);
        assert_eq!(unhex(""), None);
    }
}
