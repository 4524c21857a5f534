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
//! [`trace`] is that middleware on its own; the API's router does the same through [`Traced`]
//! inside its single per-request layer (`api::layer`).
//!
//! Invariants: every response that passes through [`trace`] or [`Traced`] carries exactly one
//! `x-request-id`, and it is the id the span logged; a client's id is never logged or echoed
//! unless it passed [`usable_id`], so it cannot forge log lines or headers.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::{Instrument, Level, Span, field::Empty};
use uuid::{Builder, Uuid};

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
        .unwrap_or_else(fresh_id)
}

/// A new UUID v7 as a header value, written through a stack buffer (one copy, not two). Its
/// random bits come from the thread's generator (seeded by the system once), not from a
/// system call per request as `Uuid::now_v7` makes; ids of one millisecond need not sort.
fn fresh_id() -> HeaderValue {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let id = Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid();
    let mut buffer = Uuid::encode_buffer();
    let text = id.hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).expect("a UUID is a header value")
}

/// A request being handled: its id, its span and when it began.
pub(crate) struct Traced {
    id: HeaderValue,
    span: Span,
    started: Instant,
}

impl Traced {
    /// Gives `request` its id (handlers and the layers inside see the id the response will
    /// carry) and opens its span.
    pub(crate) fn begin(request: &mut Request) -> Traced {
        let id = request_id(request);
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or_default(),
            method = %request.method(),
            route = %route,
            status = Empty,
            duration_ms = Empty,
        );
        request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
        Traced {
            id,
            span,
            started: Instant::now(),
        }
    }

    /// The span the request is handled in.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// When the request began.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Writes the request's last line, if one is due at the level in force, and puts the id
    /// on the response.
    pub(crate) fn finish(self, response: &mut Response) {
        let status = response.status().as_u16();
        // The status and duration only show in that line: a request that writes none (a
        // success below DEBUG) skips formatting them.
        let failed = status >= 500;
        if failed || tracing::enabled!(target: "seedcore::request", Level::DEBUG) {
            self.span.record("status", status);
            let took = self.started.elapsed().as_secs_f64() * 1000.0;
            self.span.record("duration_ms", took);
            self.span.in_scope(|| {
                if failed {
                    tracing::warn!(target: "seedcore::request", "request failed");
                } else {
                    tracing::debug!(target: "seedcore::request", "request finished");
                }
            });
        }
        response.headers_mut().insert(REQUEST_ID.clone(), self.id);
    }
}

/// Middleware: handles the request inside its span and returns its id in the response.
pub async fn trace(mut request: Request, next: Next) -> Response {
    let traced = Traced::begin(&mut request);
    let mut response = next.run(request).instrument(traced.span().clone()).await;
    traced.finish(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_id_is_a_distinct_uuid_v7_of_the_current_millisecond() {
        let before = SystemTime::now();
        let ids: Vec<Uuid> = (0..1_000)
            .map(|_| Uuid::parse_str(fresh_id().to_str().unwrap()).unwrap())
            .collect();
        let after = SystemTime::now();
        let millis = |at: SystemTime| at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
            let at = seconds * 1_000 + u64::from(nanos) / 1_000_000;
            assert!(
                (millis(before)..=millis(after)).contains(&at),
                "{id} at {at}"
            );
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

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
