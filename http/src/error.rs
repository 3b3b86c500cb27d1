//! Error answers: `{"error": …, "detail": …}` with a status, and how each service and
//! store error becomes one (a rules problem is never reported as a store failure).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use leadscore_service::ServiceError;
use leadscore_store::StoreError;
use serde_json::json;

/// An error answer: `{"error": …, "detail": …}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": self.error, "detail": self.detail})),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<leadscore_service::Invalid> for ApiError {
    fn from(e: leadscore_service::Invalid) -> ApiError {
        if e.too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "event too large",
                e.to_string(),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid event", e.to_string())
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Store(e) => e.into(),
            ServiceError::Corrupt { .. } => {
                tracing::error!(error = e.logged(), "stored data unreadable");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored data unreadable",
                    e.to_string(),
                )
            }
            ServiceError::Engine { .. }
            | ServiceError::Hops { .. }
            | ServiceError::Invariant(_) => {
                tracing::error!(error = e.logged(), "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                    e.to_string(),
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let kind = match e {
            StoreError::Conflict => "conflict",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::TooLarge(_) => "too_large",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Backend(_) => "backend",
        };
        if kind != "too_large" {
            metrics::counter!(leadscore_service::metrics::STORE_ERRORS, "kind" => kind)
                .increment(1);
        }
        match e {
            StoreError::Conflict | StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "answered 503");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store unavailable",
                    format!("{e}; nothing was lost, retry the request"),
                )
            }
            StoreError::TooLarge(reason) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "lead too large", reason)
            }
            StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "stored data unreadable");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored data unreadable",
                    e.to_string(),
                )
            }
            StoreError::Backend(_) => {
                tracing::error!(error = %e, "store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store failure",
                    e.to_string(),
                )
            }
        }
    }
}

/// Error answers always carry `{error, detail}`: the framework's own rejections (a query
/// that does not parse, a body over its limit, a method a route lacks) come as plain text,
/// and are rewritten here with the text as the detail. HTML answers (the console's pages)
/// and JSON ones pass untouched.
pub(crate) async fn as_json(r: Response) -> Response {
    let status = r.status();
    let typed = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || typed {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = match String::from_utf8_lossy(&text).trim() {
        "" if status == StatusCode::METHOD_NOT_ALLOWED => {
            "this endpoint does not answer that method; see docs/http-api.md".to_string()
        }
        "" => "see docs/http-api.md".to_string(),
        t => t.to_string(),
    };
    let error = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let mut out = (status, Json(json!({"error": error, "detail": detail}))).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
