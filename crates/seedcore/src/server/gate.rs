//! The request gate: a cap on requests handled at once and a time limit on each, both
//! answered 503 in the contract's `{"detail": …}` shape.
//!
//! Invariants: a request over the cap is refused at once with `Retry-After`, never queued,
//! so a saturated server answers quickly instead of piling up work; a request that outlives
//! the timeout is dropped (its transaction, if open, rolls back) and answered 503. `/health`
//! passes the cap, so a busy server still says it is alive. The event stream
//! (`/api/v1/events`) is under the cap while it starts but not under the timeout: it is
//! meant to stay open (the connection's clock still closes it when its client stops reading).
//! A claim's long poll may wait up to [`MAX_CLAIM_WAIT`] before its work begins, so its time
//! limit is the timeout plus that wait.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tokio::sync::Semaphore;

use super::ListenerSettings;
use crate::api::MAX_CLAIM_WAIT;

/// The route of the pull API's long poll, as the server mounts it.
const LONG_POLL: &str = "/api/v1/tasks/claim";

/// What a refused client is told to wait, in seconds, before trying again.
const RETRY_AFTER_SECONDS: &str = "1";

/// The one route that answers with a stream meant to stay open.
const EVENT_STREAM: &str = "/api/v1/events";

struct Gate {
    in_flight: Arc<Semaphore>,
    limit: u32,
    timeout: Duration,
}

/// `app` behind the in-flight cap and the request timeout of `settings`.
pub fn guard(app: Router, settings: &ListenerSettings) -> Router {
    let gate = Arc::new(Gate {
        in_flight: Arc::new(Semaphore::new(settings.max_in_flight as usize)),
        limit: settings.max_in_flight,
        timeout: settings.request_timeout,
    });
    app.layer(middleware::from_fn_with_state(gate, admit))
}

async fn admit(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let Ok(_permit) = gate.in_flight.clone().try_acquire_owned() else {
        return busy(gate.limit);
    };
    // Both clones share their bytes; the log line is only written on a timeout.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    if uri.path() == EVENT_STREAM {
        return next.run(request).await;
    }
    let limit = if uri.path() == LONG_POLL {
        gate.timeout + MAX_CLAIM_WAIT
    } else {
        gate.timeout
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => timed_out(limit, &format!("{method} {}", uri.path())),
    }
}

fn busy(limit: u32) -> Response {
    let detail = format!("Server busy: {limit} requests in flight; retry shortly");
    let mut response = unavailable(detail);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    response
}

fn timed_out(timeout: Duration, what: &str) -> Response {
    tracing::warn!(?timeout, request = what, "request timed out");
    unavailable(format!(
        "Request timed out after {} s; it may or may not have taken effect",
        timeout.as_secs_f64()
    ))
}

fn unavailable(detail: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "detail": detail })),
    )
        .into_response()
}
