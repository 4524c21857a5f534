//! Request ids and the span every request is handled in.
//!
//! Each request gets an id: the client's `x-request-id` when it is usable (1 to
//! [`MAX_ID_LEN`] visible ASCII characters), else a new UUID v7. The id is returned in the
//! response's `x-request-id` and is a field of the request's span, so every log line written
//! while the request is handled carries it, with the method and route template. When the
//! response is ready the span gets its status and duration and one line says so: at DEBUG, or
//! WARN for a 5xx (target `seedcore::request`, so `LOG_LEVEL=info,seedcore::request=debug`
//! gives an access log without the rest of DEBUG).
//!
//! Invariants: every response that passes through [`trace`] carries exactly one
//! `x-request-id`, and it is the id the span logged; a client's id is never logged or echoed
//! unless it passed [`usable_id`], so it cannot forge log lines or headers.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::{Instrument, field::Empty};
use uuid::Uuid;

/// The header that carries a request's id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client.
pub const MAX_ID_LEN: usize = 128;

/// Whether a client's `x-request-id` is kept: 1 to [`MAX_ID_LEN`] characters, each visible
/// ASCII (`!` to `~`), so it is safe in a header, a log line and a JSON string alike.
pub fn usable_id(id: &[u8]) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The request's id: the client's if usable, else a fresh UUID v7 (time-ordered, so ids sort
/// roughly as requests arrived).
fn request_id(request: &Request) -> HeaderValue {
    request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| usable_id(value.as_bytes()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&Uuid::now_v7().to_string()).expect("a UUID is a header value")
        })
}

/// Middleware: handles the request inside its span and returns its id in the response.
pub async fn trace(mut request: Request, next: Next) -> Response {
    let id = request_id(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %request.method(),
        route = %route,
        status = Empty,
        duration_ms = Empty,
    );
    // Handlers and the layers inside see the id the response will carry.
    request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(target: "seedcore::request", "request failed");
        } else {
            tracing::debug!(target: "seedcore::request", "request finished");
        }
    });
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_kept_only_when_short_and_visible_ascii() {
        assert!(usable_id(b"abc-123_XYZ.~!"));
        assert!(usable_id(&[b'a'; MAX_ID_LEN]));
        assert!(!usable_id(&[b'a'; MAX_ID_LEN + 1]));
        assert!(!usable_id(b""));
        assert!(!usable_id(b"has space"));
        assert!(!usable_id(b"line\nbreak"));
        assert!(!usable_id("caf\u{e9}".as_bytes()));
    }
}
