//! The one layer every routed request of the API passes through, outermost first: its id and
//! span (`telemetry::request`), the panic guard, its metrics (`metrics::http`) and the token
//! check (`auth::require`).
//!
//! They were four layers; as one, a request pays for one clone of the route's service and one
//! boxed future instead of four, and the route template is looked up once.
//!
//! Invariants: every response carries the request's `x-request-id`; a panic anywhere inside
//! (token check included) is answered 500 in the contract's shape and counted under its
//! route, never reaching hyper; refusals of the token check (401, 403, 429) are counted and
//! logged like any other answer.

use std::{panic::AssertUnwindSafe, sync::Arc};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use futures::FutureExt;
use tracing::Instrument;

use crate::{auth::Auth, telemetry::request::Traced};

/// Middleware: the request's span, panic guard, metrics and token check, in that order.
pub async fn per_request(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let traced = Traced::begin(&mut request);
    let metered = crate::metrics::enabled().then(|| {
        let method = crate::metrics::http::method_label(request.method());
        let route = request.extensions().get::<MatchedPath>().cloned();
        (method, route)
    });
    let checked = crate::auth::require(State(auth), request, next);
    let mut response = AssertUnwindSafe(checked)
        .catch_unwind()
        .instrument(traced.span().clone())
        .await
        .unwrap_or_else(|_| super::internal_error());
    if let Some((method, route)) = metered {
        crate::metrics::request_answered(
            method,
            route.as_ref().map(MatchedPath::as_str),
            response.status().as_u16(),
            traced.started().elapsed(),
        );
    }
    traced.finish(&mut response);
    response
}
