//! Sender adapters: email platforms post their own webhook shapes, which become leadscore
//! events.
//!
//! - `POST /hooks/sendgrid`: SendGrid's Event Webhook (a JSON array), verified with its
//!   Signed Event Webhook (ECDSA P-256 over `timestamp + body`, headers
//!   `X-Twilio-Email-Event-Webhook-Signature` / `-Timestamp`) against the configured public
//!   key. `open`, `click`, `unsubscribe` / `group_unsubscribe`, `bounce` and `spamreport`
//!   become `email.opened`, `email.clicked` (prop `url`), `email.unsubscribed`,
//!   `email.bounced` and `email.spam_reported`; `sg_event_id` is the idempotency key;
//!   delivery bookkeeping (`processed`, `delivered`, ...) is skipped.
//! - `POST /hooks/sendgrid/inbound?key=KEY`: SendGrid's Inbound Parse (the replies to
//!   your mail, as `multipart/form-data`) becomes `email.replied` for the sender (prop
//!   `subject`); the idempotency key is a hash of the message's `Message-ID`. Read as a
//!   stream: attachments are skipped, not held, so a reply with a 20 MB catalogue counts
//!   too. Inbound Parse does not sign: the URL carries a key.
//! - `POST /hooks/mailchimp?key=KEY`: Mailchimp's urlencoded list webhook (`type=subscribe`
//!   and so on, `data[email]`, `data[merges][...]`), and the `GET` Mailchimp sends to
//!   validate the URL. Mailchimp does not sign, so the URL carries a key (compared in
//!   constant time). The idempotency key is a hash of the body.
//!
//! An adapter without its key configured answers 404: nothing reaches the store unverified.

use super::{read_body, ApiError, App, MAX_EVENTS_BODY};
use crate::openapi::ErrorBody;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use leadscore_runtime::time;
use leadscore_service::parse_events;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

fn not_configured(what: &str, env: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not configured",
        format!("the {what} adapter is off: set {env}"),
    )
}

fn unauthorized(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", reason)
}

/// Checks SendGrid's signature: ECDSA P-256 / SHA-256 over the timestamp header followed
/// by the raw body, the signature base64 DER, the key base64 DER (SubjectPublicKeyInfo).
pub fn verify_sendgrid(public_key: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(public_key.trim())
        .ok()
        .and_then(|der| ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "misconfigured",
                "the SendGrid public key is not a base64 P-256 public key",
            )
        })?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized(format!("missing {name}")))
    };
    let signature = header("x-twilio-email-event-webhook-signature")?;
    let timestamp = header("x-twilio-email-event-webhook-timestamp")?;
    let signature = b64
        .decode(signature.trim())
        .map_err(|_| unauthorized("the signature is not base64"))?;
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    // A signature that is not DER fails here too: either way it signs nothing of ours.
    key.verify_sig(&signed, &signature)
        .map_err(|_| unauthorized("the signature does not match"))
}

/// One SendGrid event as a leadscore event, or `None` for events that say nothing about
/// the lead's interest.
fn from_sendgrid(e: &Value) -> Option<Value> {
    let kind = e.get("event")?.as_str()?;
    // Without these an event cannot be stored once and only once: skipped, not refused,
    // so one odd event does not hold back the batch SendGrid would resend.
    let id = e.get("sg_event_id")?.as_str()?;
    let email = e.get("email")?.as_str()?;
    let seconds = e.get("timestamp")?.as_i64()?;
    let event_type = match kind {
        "open" => "email.opened",
        "click" => "email.clicked",
        "unsubscribe" | "group_unsubscribe" => "email.unsubscribed",
        "bounce" => "email.bounced",
        "spamreport" => "email.spam_reported",
        _ => return None,
    };
    let mut props = Map::new();
    for k in ["url", "category", "sg_message_id"] {
        if let Some(v) = e.get(k).filter(|v| v.is_string()) {
            props.insert(k.to_string(), v.clone());
        }
    }
    Some(json!({
        "id": format!("sendgrid:{id}"),
        "lead": email,
        "type": event_type,
        "at": time::format(seconds.saturating_mul(1_000_000)),
        "props": props,
    }))
}

#[utoipa::path(post, path = "/hooks/sendgrid", tag = "hooks", responses((status = 200, description = "events taken"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("sendgrid_signature" = [])))]
pub(crate) async fn sendgrid(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(key) = app.config.hooks.sendgrid_public_key.as_deref() else {
        return Err(not_configured("SendGrid", "LEADSCORE_SENDGRID_PUBLIC_KEY"));
    };
    let body = read_body(body, MAX_EVENTS_BODY).await?;
    verify_sendgrid(key, &headers, &body)?;
    let items: Vec<Value> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid JSON",
            format!("SendGrid posts an array of events: {e}"),
        )
    })?;
    let events: Vec<Value> = items.iter().filter_map(from_sendgrid).collect();
    let skipped = items.len() - events.len();
    ingest(&app, events, skipped).await
}

/// Stores mapped events (all or nothing, as `POST /events`) and answers with what happened.
async fn ingest(app: &App, events: Vec<Value>, skipped: usize) -> Result<Response, ApiError> {
    if events.is_empty() {
        return Ok(
            Json(json!({"accepted": 0, "duplicates": [], "skipped": skipped})).into_response(),
        );
    }
    let incoming = parse_events(&Value::Array(events), app.service.now())?;
    let out = app.service.ingest(incoming).await?;
    let mut answer = out.to_json();
    answer["skipped"] = json!(skipped);
    answer.as_object_mut().map(|o| o.remove("leads"));
    Ok(Json(answer).into_response())
}

/// The largest Inbound Parse post (SendGrid's own limit on a message is 30 MB).
pub const MAX_INBOUND_BODY: usize = 32 * 1024 * 1024;
/// The most of one Inbound Parse text field read (headers, addresses, subject).
const MAX_INBOUND_FIELD: usize = 64 * 1024;

fn check_key(
    configured: Option<&str>,
    what: &str,
    env: &str,
    query: &HashMap<String, String>,
) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let Some(want) = configured else {
        return Err(not_configured(what, env));
    };
    let given = query.get("key").map(String::as_str).unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
        Ok(())
    } else {
        Err(unauthorized("the key in the URL is missing or wrong"))
    }
}

fn mailchimp_key(app: &App, query: &HashMap<String, String>) -> Result<(), ApiError> {
    check_key(
        app.config.hooks.mailchimp_key.as_deref(),
        "Mailchimp",
        "LEADSCORE_MAILCHIMP_KEY",
        query,
    )
}

/// The address in a `From:`-style value (`Ann Lee <ann@acme.de>` or `ann@acme.de`).
fn address(from: &str) -> Option<String> {
    let inner = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from,
    };
    let inner = inner.trim();
    (inner.contains('@') && !inner.contains(char::is_whitespace)).then(|| inner.to_string())
}

/// A field's text, at most `MAX_INBOUND_FIELD` bytes of it.
async fn capped_text(field: &mut axum::extract::multipart::Field<'_>) -> Result<String, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid form", e.body_text()))?
    {
        let room = MAX_INBOUND_FIELD.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `POST /hooks/sendgrid/inbound`: a reply, parsed by SendGrid, becomes `email.replied`.
#[utoipa::path(post, path = "/hooks/sendgrid/inbound", tag = "hooks", responses((status = 200, description = "the reply was taken"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("url_key" = [])))]
pub(crate) async fn sendgrid_inbound(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    use axum::extract::FromRequest;
    use sha2::{Digest, Sha256};
    check_key(
        app.config.hooks.sendgrid_inbound_key.as_deref(),
        "SendGrid Inbound Parse",
        "LEADSCORE_SENDGRID_INBOUND_KEY",
        &query,
    )?;
    let mut form = axum::extract::Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid form", e.body_text()))?;
    let mut fields: HashMap<String, String> = HashMap::new();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid form", e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_string();
        // Bodies and attachments are skipped (drained as the next field is read).
        if field.file_name().is_some()
            || !matches!(
                name.as_str(),
                "from" | "to" | "subject" | "headers" | "envelope"
            )
        {
            continue;
        }
        let text = capped_text(&mut field).await?;
        fields.insert(name, text);
    }
    let envelope_from = fields
        .get("envelope")
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .and_then(|e| e.get("from").and_then(Value::as_str).map(str::to_string));
    let Some(sender) = fields
        .get("from")
        .and_then(|f| address(f))
        .or_else(|| envelope_from.as_deref().and_then(address))
    else {
        // Nothing to score; a 2xx stops SendGrid from sending it again.
        return ingest(&app, Vec::new(), 1).await;
    };
    let message_id = fields.get("headers").and_then(|h| {
        h.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("message-id")
                .then(|| v.trim().to_string())
        })
    });
    let identity = match &message_id {
        Some(id) => id.clone(),
        None => format!(
            "{sender}\n{}\n{}",
            fields.get("subject").map_or("", String::as_str),
            fields.get("headers").map_or("", String::as_str)
        ),
    };
    let digest: String = Sha256::digest(identity.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut props = Map::new();
    if let Some(subject) = fields.get("subject") {
        props.insert(
            "subject".into(),
            json!(subject.chars().take(1000).collect::<String>()),
        );
    }
    let event = json!({
        "id": format!("sendgrid-inbound:{digest}"),
        "lead": sender,
        "type": "email.replied",
        "at": time::format(app.service.now()),
        "props": props,
    });
    ingest(&app, vec![event], 0).await
}

/// Mailchimp checks a webhook URL with a `GET` before it saves it.
#[utoipa::path(get, path = "/hooks/mailchimp", tag = "hooks", responses((status = 200, description = "Mailchimp's validation request"), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("url_key" = [])))]
pub(crate) async fn mailchimp_ping(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    mailchimp_key(&app, &query)?;
    Ok(Json(json!({"status": "ok"})).into_response())
}

#[utoipa::path(post, path = "/hooks/mailchimp", tag = "hooks", responses((status = 200, description = "events taken"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("url_key" = [])))]
pub(crate) async fn mailchimp(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    use sha2::{Digest, Sha256};
    mailchimp_key(&app, &query)?;
    let body = read_body(body, app.config.forms.max_bytes).await?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid form", e.to_string()))?;
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    let event_type = match get("type").unwrap_or("") {
        "subscribe" => "list.subscribed",
        "unsubscribe" => "email.unsubscribed",
        "profile" => "lead.updated",
        "cleaned" => "email.bounced",
        _ => return ingest(&app, Vec::new(), 1).await,
    };
    // `fired_at` is "YYYY-MM-DD HH:MM:SS" in UTC.
    let at = get("fired_at")
        .and_then(|t| time::parse(&format!("{}Z", t.trim().replacen(' ', "T", 1))))
        .unwrap_or_else(|| app.service.now());
    let at = time::format(at);
    let attributes: Map<String, Value> = fields
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("data[merges][")?.strip_suffix(']')?;
            (!name.contains('[')).then(|| (name.to_lowercase(), json!(v)))
        })
        .collect();
    let digest: String = Sha256::digest(&body)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut props = Map::new();
    if let Some(list) = get("data[list_id]") {
        props.insert("list".into(), json!(list));
    }
    let event = json!({
        "id": format!("mailchimp:{digest}"),
        "lead": get("data[email]"),
        "type": event_type,
        "at": at,
        "attributes": attributes,
        "props": props,
    });
    ingest(&app, vec![event], 0).await
}
