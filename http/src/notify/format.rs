//! A notification as each receiver wants it: the request (URL, headers, body) for the
//! channel's kind, in the vendor's documented shape, signed the vendor's way.
//!
//! | kind | body | signature |
//! |---|---|---|
//! | `webhook` | the notification itself (docs/notifications.md) | `X-Leadscore-Signature: v1=HMAC-SHA256(secret, "<ts>.<body>")` |
//! | `slack` | `{"text", "blocks": [header, section, fields, context]}` | none (the URL is the secret) |
//! | `feishu` | `{"msg_type": "post", "content": {"post": {"zh_cn": {title, content}}}}` (+ `timestamp`, `sign`) | `base64(HMAC-SHA256(key = "<ts>\n<secret>", ""))` |
//! | `dingtalk` | `{"msgtype": "markdown", "markdown": {title, text}}` | `&timestamp=<ms>&sign=urlencode(base64(HMAC-SHA256(secret, "<ms>\n<secret>")))` |
//! | `wecom` | `{"msgtype": "markdown", "markdown": {content}}` | none (the URL is the secret) |
//! | `http` | the configuration's template, `{{placeholders}}` filled | as the template's headers say |

use base64::Engine as _;
use hmac::{Hmac, Mac};
use leadscore_service::config::HttpTemplate;
use serde_json::{json, Value as Json};
use sha2::Sha256;
use std::collections::BTreeMap;

/// A request to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether a 2xx answer must also carry the vendor's `errcode`/`code` 0.
    pub vendor_code: bool,
}

/// Why a notification cannot be sent at all (no retry helps): a missing secret or
/// template, a template that does not fill.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsendable(pub String);

/// Where secrets come from: the configuration's `[secrets]`, then
/// `LEADSCORE_SECRET_<NAME>` through `env`.
pub struct Secrets<'a> {
    pub table: &'a BTreeMap<String, String>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Secrets<'_> {
    pub fn get(&self, name: &str) -> Result<String, Unsendable> {
        self.table
            .get(name)
            .cloned()
            .or_else(|| (self.env)(&format!("LEADSCORE_SECRET_{name}")))
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string())
            .ok_or_else(|| {
                Unsendable(format!(
                    "secret `{name}` is not set (LEADSCORE_SECRET_{name}, or [secrets] in the configuration)"
                ))
            })
    }
}

fn text(v: &Json) -> &str {
    v.as_str().unwrap_or("")
}

/// The message people read: a title and lines.
pub fn message(n: &Json) -> (String, Vec<String>) {
    let lead = text(&n["lead"]);
    let grade = text(&n["grade"]);
    let title = match (&n["transition"], &n["crossing"]) {
        (t, _) if t.is_object() => {
            let to = text(&t["to"]);
            match t["from"].as_str() {
                Some(from) if text(&n["rule"]["text"]).contains(" leaves ") => {
                    format!("{lead} left {from}: now {to}")
                }
                Some(from) => format!("{lead} is now {to} (was {from})"),
                None => format!("{lead} arrived as {to}"),
            }
        }
        (_, c) if c.is_object() => format!(
            "{lead}: {} crossed {} (now {})",
            text(&c["score"]),
            c["threshold"],
            c["to"]
        ),
        _ if n["owner_change"].is_object() => {
            let c = &n["owner_change"];
            match (c["to_owner"].as_str(), c["cause"].as_str()) {
                (Some(to), Some("recycle")) => {
                    format!("{lead} ({grade}) recycled to {to}: no follow-up in time")
                }
                (Some(to), _) => format!("{lead} ({grade}) is assigned to {to}"),
                (None, _) => format!("{lead} ({grade}) is back in the pool"),
            }
        }
        _ if n["overdue"].is_object() => format!(
            "{lead} ({grade}): no follow-up by {} (owner {})",
            text(&n["overdue"]["deadline"]),
            n["overdue"]["owner"].as_str().unwrap_or("nobody")
        ),
        _ if n["task"].is_object() => format!(
            "{lead} ({grade}): {} due {} for {}",
            text(&n["task"]["kind"]),
            text(&n["task"]["due"]),
            n["task"]["owner"].as_str().unwrap_or("nobody")
        ),
        _ => format!("{lead}: {grade}"),
    };
    let mut lines = Vec::new();
    let scores: Vec<String> = n["scores"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
        .unwrap_or_default();
    lines.push(format!(
        "Score {} ({}), grade {grade}",
        n["score"],
        scores.join(", ")
    ));
    let tags: Vec<&str> = n["tags"]
        .as_array()
        .map(|t| t.iter().map(text).collect())
        .unwrap_or_default();
    if !tags.is_empty() {
        lines.push(format!("Tags: {}", tags.join(", ")));
    }
    if let Some(o) = n["owner"].as_str() {
        lines.push(format!("Owner: {o}"));
    }
    let t = &n["transition"];
    match text(&t["cause"]) {
        "event" => lines.push(format!("Because of event {}", text(&t["event"]))),
        "time" => lines.push("Because of time (inactivity or an expiry)".into()),
        _ => {}
    }
    let mut reasons: Vec<&Json> = n["explanation"]
        .as_array()
        .map(|e| e.iter().collect())
        .unwrap_or_default();
    reasons.sort_by_key(|c| -c["points"].as_i64().unwrap_or(0).abs());
    for c in reasons.iter().take(5) {
        let p = c["points"].as_i64().unwrap_or(0);
        lines.push(format!("{p:+} {} (line {})", text(&c["rule"]), c["line"]));
    }
    lines.push(format!(
        "Rules {} · {}",
        text(&n["ruleset"]),
        text(&n["rule"]["text"])
    ));
    (title, lines)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Everything but RFC 3986's unreserved characters, percent-encoded (a query value).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Feishu / Lark's signature: the key is `"<seconds>\n<secret>"`, the message empty.
pub fn feishu_sign(secret: &str, seconds: i64) -> String {
    b64(&hmac(format!("{seconds}\n{secret}").as_bytes(), b""))
}

/// DingTalk's signature (URL-encoded): HMAC-SHA256 with the secret over
/// `"<milliseconds>\n<secret>"`.
pub fn dingtalk_sign(secret: &str, millis: i64) -> String {
    urlencode(&b64(&hmac(
        secret.as_bytes(),
        format!("{millis}\n{secret}").as_bytes(),
    )))
}

/// The request for notification `n` (as stored in the outbox), at `now_secs`.
pub fn render(
    n: &Json,
    secrets: &Secrets<'_>,
    templates: &BTreeMap<String, HttpTemplate>,
    now_millis: i64,
) -> Result<Outgoing, Unsendable> {
    let ch = &n["channel"];
    let kind = text(&ch["kind"]);
    let url = match (ch["url"].as_str(), ch["secret"].as_str()) {
        (Some(u), _) => u.to_string(),
        (None, Some(name)) => secrets.get(name)?,
        (None, None) => String::new(),
    };
    let signing = match ch["signed"].as_str() {
        Some(name) => Some(secrets.get(name)?),
        None => None,
    };
    let id = text(&n["id"]).to_string();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-leadscore-notification".to_string(), id.clone()),
    ];
    let (title, lines) = message(n);
    let json_body = |v: Json| v.to_string().into_bytes();
    let out = |url: String, headers, body, vendor_code| Outgoing {
        method: "POST".into(),
        url,
        headers,
        body,
        vendor_code,
    };
    Ok(match kind {
        "webhook" => {
            let body = n.to_string().into_bytes();
            headers.push(("idempotency-key".into(), id));
            if let Some(secret) = signing {
                let ts = now_millis.div_euclid(1000);
                headers.push((
                    leadscore_service::signing::TIMESTAMP_HEADER.into(),
                    ts.to_string(),
                ));
                // v2: the receiver's path and query are bound too, so a captured
                // notification cannot be replayed to another of its endpoints.
                let uri: Option<axum::http::Uri> = url.parse().ok();
                let path_and_query = uri
                    .as_ref()
                    .and_then(|u| u.path_and_query())
                    .map_or("/", |p| p.as_str());
                let target = leadscore_service::signing::Target {
                    method: "POST",
                    path_and_query,
                };
                headers.push((
                    leadscore_service::signing::SIGNATURE_HEADER.into(),
                    leadscore_service::signing::sign_v2(&secret, ts, target, &body),
                ));
            }
            out(url, headers, body, false)
        }
        "slack" => {
            let fields: Vec<Json> = lines
                .iter()
                .take(2)
                .map(|l| json!({"type": "mrkdwn", "text": l}))
                .collect();
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
                json!({"type": "section", "fields": fields}),
            ];
            if lines.len() > 2 {
                blocks.push(json!({"type": "section",
                                   "text": {"type": "mrkdwn", "text": lines[2..].join("\n")}}));
            }
            blocks.push(json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("leadscore · {}", text(&n["ruleset"]))}]}));
            let body = json!({
                "text": format!("{title}\n{}", lines.join("\n")),
                "blocks": blocks,
            });
            out(url, headers, json_body(body), false)
        }
        "feishu" => {
            let content: Vec<Json> = lines
                .iter()
                .map(|l| json!([{"tag": "text", "text": l}]))
                .collect();
            let mut body = json!({
                "msg_type": "post",
                "content": {"post": {"zh_cn": {"title": title, "content": content}}},
            });
            if let Some(secret) = signing {
                let ts = now_millis.div_euclid(1000);
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(feishu_sign(&secret, ts));
            }
            out(url, headers, json_body(body), true)
        }
        "dingtalk" => {
            let mut url = url;
            if let Some(secret) = signing {
                let sep = if url.contains('?') { '&' } else { '?' };
                url = format!(
                    "{url}{sep}timestamp={now_millis}&sign={}",
                    dingtalk_sign(&secret, now_millis)
                );
            }
            let body = json!({
                "msgtype": "markdown",
                "markdown": {"title": title,
                             "text": format!("### {title}\n\n{}", lines.join("\n\n"))},
            });
            out(url, headers, json_body(body), true)
        }
        "wecom" => {
            let body = json!({
                "msgtype": "markdown",
                "markdown": {"content": format!("**{title}**\n{}", lines.join("\n"))},
            });
            out(url, headers, json_body(body), true)
        }
        "http" => {
            let name = text(&ch["template"]);
            let t = templates.get(name).ok_or_else(|| {
                Unsendable(format!(
                    "the configuration has no [http.{name}] for channel `{}`",
                    text(&ch["name"])
                ))
            })?;
            let url = fill(&t.url, n, secrets, Fill::Url)?;
            for (k, v) in &t.headers {
                let v = fill(v, n, secrets, Fill::Raw)?;
                headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
                headers.push((k.to_ascii_lowercase(), v));
            }
            let body = match &t.body {
                Some(b) => {
                    let filled = fill(b, n, secrets, Fill::Json)?;
                    serde_json::from_str::<Json>(&filled).map_err(|e| {
                        Unsendable(format!("[http.{name}] body is not JSON once filled: {e}"))
                    })?;
                    filled.into_bytes()
                }
                None => Vec::new(),
            };
            Outgoing {
                method: t.method.to_ascii_uppercase(),
                url,
                headers,
                body,
                vendor_code: false,
            }
        }
        other => return Err(Unsendable(format!("unknown channel kind `{other}`"))),
    })
}

/// How a placeholder's value is written where it stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// In a URL: percent-encoded text.
    Url,
    /// In a header: the text.
    Raw,
    /// In a JSON body: a JSON value.
    Json,
}

/// The value a placeholder names: `lead`, `id`, `grade`, `score`, `scores.NAME`, `from`,
/// `to`, `at`, `cause`, `event`, `tags`, `program`, `ruleset`, `secret.NAME`, and the
/// desk's `owner`, `from_owner`, `to_owner`, `deadline` (docs/desk.md; `null` where the
/// notification has none).
fn lookup(name: &str, n: &Json, secrets: &Secrets<'_>) -> Result<Json, Unsendable> {
    let t = &n["transition"];
    Ok(match name {
        "lead" | "id" | "grade" | "score" | "tags" | "program" | "ruleset" | "at" => {
            n[name].clone()
        }
        "from" | "to" | "cause" | "event" => t[name].clone(),
        "owner" => n["owner"].clone(),
        "from_owner" | "to_owner" => n["owner_change"][name].clone(),
        "deadline" => n["overdue"]["deadline"].clone(),
        _ => {
            if let Some(s) = name.strip_prefix("scores.") {
                match n["scores"].get(s) {
                    Some(v) => v.clone(),
                    None => return Err(Unsendable(format!("no score `{s}` for {{{{{name}}}}}"))),
                }
            } else if let Some(s) = name.strip_prefix("secret.") {
                Json::String(secrets.get(s)?)
            } else {
                return Err(Unsendable(format!("unknown placeholder {{{{{name}}}}}")));
            }
        }
    })
}

/// Fills `{{placeholders}}` in a template.
fn fill(template: &str, n: &Json, secrets: &Secrets<'_>, how: Fill) -> Result<String, Unsendable> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(Unsendable(format!("an unclosed {{{{ in `{template}`")));
        };
        let v = lookup(after[..end].trim(), n, secrets)?;
        let plain = match &v {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            other => other.to_string(),
        };
        out.push_str(&match how {
            Fill::Json => v.to_string(),
            Fill::Url => urlencode(&plain),
            Fill::Raw => plain,
        });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_signatures_match_their_documented_computation() {
        // Feishu: HMAC-SHA256 keyed by "timestamp\nsecret" over nothing, base64.
        let mut m = <Hmac<Sha256>>::new_from_slice(b"1599360473\nsecret").unwrap();
        m.update(b"");
        assert_eq!(
            feishu_sign("secret", 1599360473),
            b64(&m.finalize().into_bytes())
        );
        // DingTalk: HMAC-SHA256 keyed by the secret over "millis\nsecret", base64, URL-encoded.
        let s = dingtalk_sign("SEC123", 1577262236757);
        assert!(
            !s.contains('+') && !s.contains('/') && !s.contains('='),
            "{s}"
        );
        let mut m = <Hmac<Sha256>>::new_from_slice(b"SEC123").unwrap();
        m.update(b"1577262236757\nSEC123");
        assert_eq!(s, urlencode(&b64(&m.finalize().into_bytes())));
    }

    #[test]
    fn templates_fill_json_values_urls_and_secrets() {
        let n = json!({"id": "n1", "lead": "ann+x@acme.de", "grade": "A", "score": 95,
                       "scores": {"fit": 60}, "transition": {"from": null, "to": "A"}});
        let table = BTreeMap::from([("TOKEN".to_string(), "t0k".to_string())]);
        let env = |_: &str| None;
        let secrets = Secrets {
            table: &table,
            env: &env,
        };
        assert_eq!(
            fill(
                r#"{"score": {{score}}, "g": {{grade}}, "fit": {{scores.fit}}, "was": {{from}}}"#,
                &n,
                &secrets,
                Fill::Json
            )
            .unwrap(),
            r#"{"score": 95, "g": "A", "fit": 60, "was": null}"#
        );
        assert_eq!(
            fill(
                "https://x/c/{{lead}}?k={{secret.TOKEN}}",
                &n,
                &secrets,
                Fill::Url
            )
            .unwrap(),
            "https://x/c/ann%2Bx%40acme.de?k=t0k"
        );
        // The desk's placeholders: an owner change written back to the CRM.
        let moved = json!({"lead": "ann@acme.de", "owner": "amy@firm.example",
                           "owner_change": {"from_owner": null, "to_owner": "amy@firm.example"}});
        assert_eq!(
            fill(
                r#"{"Owner": {{owner}}, "was": {{from_owner}}, "now": {{to_owner}}, "due": {{deadline}}}"#,
                &moved,
                &secrets,
                Fill::Json
            )
            .unwrap(),
            r#"{"Owner": "amy@firm.example", "was": null, "now": "amy@firm.example", "due": null}"#
        );
        assert!(fill("{{nope}}", &n, &secrets, Fill::Raw)
            .unwrap_err()
            .0
            .contains("unknown placeholder"));
        assert!(fill("{{secret.MISSING}}", &n, &secrets, Fill::Raw)
            .unwrap_err()
            .0
            .contains("LEADSCORE_SECRET_MISSING"));
    }
}
