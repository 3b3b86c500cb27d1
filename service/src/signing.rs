//! Request signatures: what a signed request or notification carries, and how its HMAC is
//! computed. Shared by the HTTP edge, which verifies them (`leadscore_http::auth`), and
//! the notifier, which signs what it sends (`leadscore_http::notify`) — neither reaches
//! into the other.
//!
//! `X-Leadscore-Timestamp: <unix seconds>` and `X-Leadscore-Signature: v2=<hex of
//! HMAC-SHA256(secret, "<timestamp>.<METHOD>.<path and query>.<body>")>`, or the older
//! `v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>` that binds the body only.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-leadscore-timestamp";
pub const SIGNATURE_HEADER: &str = "x-leadscore-signature";
/// How far a signature's timestamp may be from the server's clock, either way.
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// What a `v2` signature binds besides the body: the method and the path with its query,
/// as sent (`/leads/ann%40acme.de/merge`, `/admin/rescore?x=1`).
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
}

/// The `v1` `X-Leadscore-Signature` value for a body sent at `timestamp` (unix seconds):
/// it binds the body only, and only `POST /events` accepts it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, None, body)))
}

/// The `v2` `X-Leadscore-Signature` value: the body, the method and the path and query.
pub fn sign_v2(secret: &str, timestamp: i64, target: Target<'_>, body: &[u8]) -> String {
    format!(
        "v2={}",
        hex::encode(mac(secret, timestamp, Some(target), body))
    )
}

pub fn mac(secret: &str, timestamp: i64, target: Option<Target<'_>>, body: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    if let Some(t) = target {
        m.update(t.method.to_ascii_uppercase().as_bytes());
        m.update(b".");
        m.update(t.path_and_query.as_bytes());
        m.update(b".");
    }
    m.update(body);
    m.finalize().into_bytes().to_vec()
}
