//! Request authentication: HMAC-SHA256 webhook signatures and bearer tokens, both
//! compared in constant time, each with two values active during a rotation.
//!
//! A signed request carries `X-Leadscore-Timestamp: <unix seconds>` and
//! `X-Leadscore-Signature: v2=<hex of HMAC-SHA256(secret,
//! "<timestamp>.<METHOD>.<path and query>.<body>")>`, which binds what the request does
//! as well as its body; it is accepted within 5 minutes of the timestamp. `POST /events`
//! also accepts the older `v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`: a
//! replayed event only repeats idempotent ids. Every other signed endpoint requires `v2`.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use leadscore_service::signing::mac;
pub use leadscore_service::signing::{
    sign, sign_v2, Target, REPLAY_WINDOW_SECS, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a signed request to `target`; `v1` says whether a body-only signature is
/// accepted too (`POST /events`). `Err` is the reason for a 401.
pub fn verify(
    secrets: &[String],
    headers: &HeaderMap,
    target: Target<'_>,
    body: &[u8],
    v1: bool,
    now_secs: i64,
) -> Result<(), String> {
    if secrets.is_empty() {
        return Ok(());
    }
    let ts = header(headers, TIMESTAMP_HEADER)
        .ok_or_else(|| format!("missing {TIMESTAMP_HEADER} header"))?;
    let ts: i64 = ts
        .trim()
        .parse()
        .map_err(|_| format!("{TIMESTAMP_HEADER} must be unix seconds"))?;
    if (now_secs - ts).abs() > REPLAY_WINDOW_SECS {
        return Err(format!(
            "{TIMESTAMP_HEADER} is more than {REPLAY_WINDOW_SECS} s from the server's clock (replayed or clock skew)"
        ));
    }
    let sig = header(headers, SIGNATURE_HEADER)
        .ok_or_else(|| format!("missing {SIGNATURE_HEADER} header"))?;
    let parts = |scheme: &str| -> Vec<Vec<u8>> {
        sig.split(',')
            .filter_map(|p| p.trim().strip_prefix(scheme))
            .filter_map(|h| hex::decode(h).ok())
            .collect()
    };
    let (given_v2, given_v1) = (parts("v2="), if v1 { parts("v1=") } else { Vec::new() });
    if given_v2.is_empty() && given_v1.is_empty() {
        return Err(if v1 {
            format!("{SIGNATURE_HEADER} must be v2=<hex HMAC-SHA256> (or v1=)")
        } else {
            format!(
                "{SIGNATURE_HEADER} must be v2=<hex HMAC-SHA256 of timestamp.METHOD.path.body>: this endpoint does not take v1"
            )
        });
    }
    let matches = |given: &[Vec<u8>], target: Option<Target<'_>>| {
        secrets.iter().any(|s| {
            let want = mac(s, ts, target, body);
            given.iter().any(|g| bool::from(g.as_slice().ct_eq(&want)))
        })
    };
    if matches(&given_v2, Some(target)) || matches(&given_v1, None) {
        Ok(())
    } else {
        Err("signature does not match the timestamp, method, path and body".into())
    }
}

/// Checks a read's bearer token; `Err` is the reason for a 401.
/// A read's bearer token against the shared tokens and the readers' own (token, owner):
/// the reader's owner e-mail when it is one of theirs. Open when there are no tokens at
/// all.
pub fn reader(
    tokens: &[String],
    readers: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<Option<String>, String> {
    if tokens.is_empty() && readers.is_empty() {
        return Ok(None);
    }
    let token = given_bearer(headers)?;
    // Every token is compared, so the time taken says nothing about which one is near.
    let mut owner = None;
    for (t, o) in readers {
        if bool::from(t.as_bytes().ct_eq(token.as_bytes())) {
            owner = Some(o.to_lowercase());
        }
    }
    let shared = tokens.iter().fold(false, |ok, t| {
        ok | bool::from(t.as_bytes().ct_eq(token.as_bytes()))
    });
    match (owner, shared) {
        (Some(o), _) => Ok(Some(o)),
        (None, true) => Ok(None),
        (None, false) => Err("the bearer token is not valid".into()),
    }
}

fn given_bearer(headers: &HeaderMap) -> Result<&str, String> {
    let given = header(headers, "authorization")
        .ok_or("missing Authorization: Bearer <token> header")?
        .trim();
    Ok(given
        .strip_prefix("Bearer ")
        .or_else(|| given.strip_prefix("bearer "))
        .ok_or("Authorization must be Bearer <token>")?
        .trim())
}

pub fn bearer(tokens: &[String], headers: &HeaderMap) -> Result<(), String> {
    if tokens.is_empty() {
        return Ok(());
    }
    let given = header(headers, "authorization")
        .ok_or("missing Authorization: Bearer <token> header")?
        .trim();
    let token = given
        .strip_prefix("Bearer ")
        .or_else(|| given.strip_prefix("bearer "))
        .ok_or("Authorization must be Bearer <token>")?
        .trim();
    // Every token is compared, so the time taken says nothing about which one is near.
    let ok = tokens.iter().fold(false, |ok, t| {
        ok | bool::from(t.as_bytes().ct_eq(token.as_bytes()))
    });
    if ok {
        Ok(())
    } else {
        Err("the bearer token is not valid".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h
    }

    const EVENTS: Target<'static> = Target {
        method: "POST",
        path_and_query: "/events",
    };

    fn verify(
        secrets: &[String],
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), String> {
        super::verify(secrets, headers, EVENTS, body, true, now)
    }

    #[test]
    fn v2_binds_method_path_and_query_and_v1_is_for_events_only() {
        let secrets = vec!["s".to_string()];
        let erase_a = Target {
            method: "DELETE",
            path_and_query: "/leads/a",
        };
        let h = headers(1000, &sign_v2("s", 1000, erase_a, b""));
        assert_eq!(
            super::verify(&secrets, &h, erase_a, b"", false, 1000),
            Ok(())
        );
        for other in [
            Target {
                method: "DELETE",
                path_and_query: "/leads/b",
            },
            Target {
                method: "POST",
                path_and_query: "/leads/a",
            },
            Target {
                method: "DELETE",
                path_and_query: "/leads/a?x=1",
            },
            Target {
                method: "POST",
                path_and_query: "/admin/rescore",
            },
        ] {
            assert!(
                super::verify(&secrets, &h, other, b"", false, 1000).is_err(),
                "{other:?}"
            );
        }
        // v1 binds the body only: refused where v2 is required, accepted for events.
        let v1 = headers(1000, &sign("s", 1000, b""));
        let e = super::verify(&secrets, &v1, erase_a, b"", false, 1000).unwrap_err();
        assert!(e.contains("does not take v1"), "{e}");
        assert_eq!(
            super::verify(&secrets, &v1, EVENTS, b"", true, 1000),
            Ok(())
        );
        let v2 = headers(1000, &sign_v2("s", 1000, EVENTS, b"{}"));
        assert_eq!(
            super::verify(&secrets, &v2, EVENTS, b"{}", true, 1000),
            Ok(())
        );
    }

    #[test]
    fn signatures_verify_with_either_secret_and_only_in_the_window() {
        let secrets = vec!["new".to_string(), "old".to_string()];
        let body = br#"{"id":"1"}"#;
        for s in ["new", "old"] {
            assert_eq!(
                verify(&secrets, &headers(1000, &sign(s, 1000, body)), body, 1100),
                Ok(())
            );
        }
        assert!(verify(
            &secrets,
            &headers(1000, &sign("other", 1000, body)),
            body,
            1000
        )
        .is_err());
        assert!(verify(
            &secrets,
            &headers(1000, &sign("new", 1000, body)),
            b"{}",
            1000
        )
        .is_err());
        let late = verify(
            &secrets,
            &headers(1000, &sign("new", 1000, body)),
            body,
            1301,
        );
        assert!(late.unwrap_err().contains("replayed"));
        assert!(verify(&secrets, &HeaderMap::new(), body, 1000)
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn bearer_tokens() {
        let tokens = vec!["a".to_string(), "b".to_string()];
        let mut h = HeaderMap::new();
        assert!(bearer(&tokens, &h).is_err());
        h.insert("authorization", "Bearer b".parse().unwrap());
        assert_eq!(bearer(&tokens, &h), Ok(()));
        h.insert("authorization", "Bearer c".parse().unwrap());
        assert!(bearer(&tokens, &h).is_err());
        assert_eq!(bearer(&[], &HeaderMap::new()), Ok(()));
    }
}
