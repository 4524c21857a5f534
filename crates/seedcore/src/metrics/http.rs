//! The HTTP side of metrics: `GET /metrics`, the layer that counts and times every request by
//! its route template, and the router of the separate metrics listener.
//!
//! Requests are labelled by the template they matched (`/api/v1/tasks/{task_id}`), never by
//! their raw path, and by a method from a fixed list, so no client can make a new series per
//! request.

use std::time::Instant;

use axum::{
    Json, Router,
    extract::{MatchedPath, Request, State},
    http::{Method, StatusCode, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use super::labels::OTHER;
use crate::api::{ApiError, AppState};

/// Answers a scrape: this process's counts and the gauges read from the store now, in the
/// Prometheus text format; 404 while metrics are switched off.
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "metrics",
    responses(
        (status = 200, description = "Metrics in the Prometheus text format (version 0.0.4)", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are switched off (SEEDCORE_METRICS_ENABLED=false)", body = crate::api::error::ErrorBody),
        (status = 503, description = "The database is unavailable; try again shortly", body = crate::api::error::ErrorBody),
    ))]
pub async fn metrics_route(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !super::enabled() {
        return Ok((StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response());
    }
    let text = super::scrape::render(&state.store)
        .await
        .map_err(|err| ApiError::from_store(err, || "Not Found".into()))?;
    Ok(([(header::CONTENT_TYPE, super::scrape::CONTENT_TYPE)], text).into_response())
}

/// Counts and times the request under its route template (see the module docs). Added with
/// `Router::layer`, so that the route is known when it runs.
pub async fn track_requests(request: Request, next: Next) -> Response {
    if !super::enabled() {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    super::request_answered(
        method,
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The method as a label: one of the standard methods, else `other`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 7] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or(OTHER, |known| known.as_str())
}

/// Only `GET /metrics`, behind the same token check as the API, for a listener of its own
/// (`SEEDCORE_METRICS_ADDR`); every other path is 404.
pub fn router(state: AppState) -> Router {
    let guard = from_fn_with_state(state.auth.clone(), crate::auth::require);
    Router::new()
        .route("/metrics", get(metrics_route))
        .layer(guard)
        .layer(from_fn(track_requests))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))) })
        .with_state(state)
}
