//! The API's one error type and how it becomes a response in the contract's shape:
//! `{"detail": "<message>"}`, or for validation errors (422) `{"detail": [{loc, msg, type}]}`.
//! A 5xx is logged with its cause; the client sees an opaque message, never SQL or a trace.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{store::StoreError, validate::FieldError};

/// The body of every error but a validation error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub detail: String,
}

/// The body of a validation error (422): everything wrong with the input.
#[derive(Serialize, ToSchema)]
pub struct ValidationErrors {
    /// Each problem, located in the path, query or body.
    pub detail: Vec<FieldError>,
}

/// Every way a request can fail; each variant is one status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: no such row; the message names what was looked for.
    #[error("{0}")]
    NotFound(String),
    /// 409: e.g. an id prefix that matches several rows.
    #[error("{0}")]
    Conflict(String),
    /// 422: everything wrong with the input, at once.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// 413: the body is over the limit, given in bytes.
    #[error("Request body too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    /// 503: the database cannot be reached now; trying again later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// The configured store cannot do this (e.g. a query the embedded backend lacks).
    #[error("{0}")]
    NotImplemented(String),
    /// 500: logged with its cause; the client sees only "Internal Server Error".
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    /// One validation error at `loc`.
    pub fn invalid(loc: &[&str], kind: &'static str, msg: impl Into<String>) -> ApiError {
        let loc = loc.iter().map(|p| json!(p)).collect();
        ApiError::Validation(vec![FieldError::new(loc, kind, msg)])
    }

    /// Maps a store error for a row of the given kind ("Task", "Fact").
    pub fn from_store(err: StoreError, not_found: impl FnOnce() -> String) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::NotFound(not_found()),
            StoreError::AmbiguousPrefix(prefix) => {
                ApiError::Conflict(format!("Ambiguous id prefix '{prefix}'"))
            }
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::Unavailable(err.unavailable_detail().into())
            }
            StoreError::Unsupported(what) => ApiError::NotImplemented(what),
            StoreError::Conflict(what) => ApiError::Conflict(what),
            other => ApiError::Internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, detail) = match self {
            ApiError::NotFound(detail) => (StatusCode::NOT_FOUND, json!(detail)),
            ApiError::Conflict(detail) => (StatusCode::CONFLICT, json!(detail)),
            ApiError::Validation(errors) => (StatusCode::UNPROCESSABLE_ENTITY, json!(errors)),
            err @ ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, json!(err.to_string()))
            }
            ApiError::Unavailable(detail) => (StatusCode::SERVICE_UNAVAILABLE, json!(detail)),
            ApiError::NotImplemented(detail) => (StatusCode::NOT_IMPLEMENTED, json!(detail)),
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, cause = %err, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!("Internal Server Error"),
                )
            }
        };
        (status, Json(json!({ "detail": detail }))).into_response()
    }
}
