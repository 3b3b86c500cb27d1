//! `POST /forms/{form}`: what a website's `<form>` posts, as urlencoded, multipart or JSON.
//! Public, so bounded: origin allow-list, size and field limits, a rate per client
//! address and a honeypot field.

use super::{client_ip, read_body, ApiError, App};
use crate::event::Event;
use crate::service::Incoming;
use crate::time;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

pub(crate) type Limiter = Option<DefaultKeyedRateLimiter<IpAddr>>;

pub(crate) fn limiter(per_minute: u32) -> Limiter {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid form", detail)
}

/// The posted fields, in order, text only (file inputs are ignored).
async fn fields(app: &App, req: Request) -> Result<Vec<(String, String)>, ApiError> {
    let limits = &app.config.forms;
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let too_many = || bad(format!("more than {} fields", limits.max_fields));
    let out: Vec<(String, String)> = if ctype.starts_with("application/x-www-form-urlencoded") {
        let body = read_body(req.into_body(), limits.max_bytes).await?;
        serde_urlencoded::from_bytes(&body).map_err(|e| bad(e.to_string()))?
    } else if ctype.starts_with("multipart/form-data") {
        let (parts, body) = req.into_parts();
        let body = read_body(body, limits.max_bytes).await?;
        let req = Request::from_parts(parts, axum::body::Body::from(body));
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad(e.body_text()))?;
        let mut out = Vec::new();
        while let Some(field) = mp.next_field().await.map_err(|e| bad(e.body_text()))? {
            if out.len() >= limits.max_fields {
                return Err(too_many());
            }
            let name = field.name().unwrap_or("").to_string();
            if field.file_name().is_some() {
                continue;
            }
            let value = field.text().await.map_err(|e| bad(e.body_text()))?;
            out.push((name, value));
        }
        out
    } else if ctype.starts_with("application/json") {
        let body = read_body(req.into_body(), limits.max_bytes).await?;
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(bad("a JSON form must be an object of fields"));
        };
        obj.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                Value::Bool(b) => Ok((k, b.to_string())),
                Value::Null => Ok((k, String::new())),
                _ => Err(bad(format!(
                    "field `{k}` must be text, a number or a boolean"
                ))),
            })
            .collect::<Result<_, _>>()?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported form encoding",
            "send application/x-www-form-urlencoded, multipart/form-data or application/json",
        ));
    };
    if out.len() > limits.max_fields {
        return Err(too_many());
    }
    Ok(out)
}

pub(crate) async fn post_form(
    State(app): State<Arc<App>>,
    Path(form): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let limits = &app.config.forms;
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        if !limits.allowed_origins.is_empty() && !limits.allowed_origins.iter().any(|o| o == origin)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin not allowed",
                format!("{origin} may not post forms here"),
            ));
        }
    }
    if let (Some(l), Some(ip)) = (&app.limiter, client_ip(&req)) {
        if l.check_key(&ip).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
                format!(
                    "at most {} form posts a minute from one address",
                    limits.rate_per_minute
                ),
            ));
        }
    }
    let settings = app.config.form.get(&form).cloned().unwrap_or_default();
    let posted = fields(&app, req).await?;
    let done = |accepted: Value| -> Response {
        match &settings.redirect {
            Some(url) => Redirect::to(url).into_response(),
            None => Json(accepted).into_response(),
        }
    };
    if posted
        .iter()
        .any(|(k, v)| *k == limits.honeypot && !v.trim().is_empty())
    {
        tracing::info!(form, "honeypot filled: post dropped");
        return Ok(done(json!({"accepted": 0, "duplicates": [], "leads": []})));
    }
    let mut attributes = Map::new();
    for (k, v) in posted {
        if k.starts_with('_') || k == limits.honeypot || v.trim().is_empty() {
            continue;
        }
        let name = settings.fields.get(&k).cloned().unwrap_or(k);
        attributes.insert(name, Value::String(v));
    }
    let lead = attributes
        .get(&limits.lead_field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            bad(format!(
                "field `{}` is required: it names the lead",
                limits.lead_field
            ))
        })?;
    let now = app.service.now();
    let v = json!({
        "id": format!("form:{}", uuid::Uuid::new_v4()),
        "lead": lead,
        "type": "form.submitted",
        "at": time::format(now),
        "attributes": attributes,
        "props": {"form": form},
    });
    let event = Event::from_json(&v).map_err(|e| bad(e.to_string()))?;
    let outcome = app
        .service
        .ingest(vec![Incoming { event, json: v }])
        .await?;
    Ok(done(outcome.to_json()))
}
