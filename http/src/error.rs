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
                tracing::error!(error = %e, "stored data unreadable");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored data unreadable",
                    e.to_string(),
                )
            }
            ServiceError::Engine { .. }
            | ServiceError::Hops { .. }
            | ServiceError::Invariant(_) => {
                tracing::error!(error = %e, "internal error");
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
