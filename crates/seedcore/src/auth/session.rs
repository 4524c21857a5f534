//! Browser sessions: a cookie that stands for an API token, and the CSRF token that goes
//! with it.
//!
//! Invariants:
//! - a session is opened only by showing a valid token; it holds that token and the request
//!   is checked as if the token had been sent, so a revoke or an expiry ends the session's
//!   access as it ends the token's (within [`super::TOKEN_CACHE`]);
//! - sessions live in this process's memory: a restart, or another process behind the same
//!   address, asks people to log in again. The token never leaves the server again after the
//!   login, and the cookie's value is a random id worth nothing once the session is closed;
//! - a change (any method but GET, HEAD, OPTIONS) made with a session cookie must carry the
//!   session's CSRF token in [`CSRF_HEADER`]; a request with `Authorization: Bearer` is
//!   never asked for one, since no browser sends that header on its own;
//! - a session unused for [`IDLE`] is gone; at most [`MAX_SESSIONS`] are kept, the least
//!   recently used making way for a new one.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, Method, header};
use subtle::ConstantTimeEq;

/// The cookie that names a session.
pub const COOKIE: &str = "seedcore_session";
/// The header a change made with a session cookie carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session may go unused.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once.
pub const MAX_SESSIONS: usize = 10_000;

/// An open session.
#[derive(Clone)]
pub struct Session {
    /// The token it was opened with, checked on every request.
    pub token: String,
    /// The token every change must carry in [`CSRF_HEADER`].
    pub csrf: String,
    last_used: Instant,
}

/// The open sessions of this process.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `token` (already verified) and returns its id and session.
    pub fn open(&self, token: &str) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            token: token.to_string(),
            csrf: random_hex(),
            last_used: Instant::now(),
        };
        let mut open = super::lock(&self.open);
        let now = Instant::now();
        open.retain(|_, s| now.duration_since(s.last_used) < IDLE);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| id.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The session with this id, if it is open and was used within [`IDLE`]; using it
    /// counts as use.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut open = super::lock(&self.open);
        let now = Instant::now();
        let session = open.get_mut(id)?;
        if now.duration_since(session.last_used) >= IDLE {
            open.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Closes the session with this id (nothing happens when there is none).
    pub fn close(&self, id: &str) {
        super::lock(&self.open).remove(id);
    }
}

/// The session id of the request's cookie, if it sends one.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether a request with this method changes something, and so needs the CSRF token.
pub fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request carries the session's CSRF token (compared in constant time).
pub fn csrf_matches(headers: &HeaderMap, session: &Session) -> bool {
    headers
        .get(CSRF_HEADER)
        .is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// 256 random bits as hex.
fn random_hex() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_closed_session_is_gone_and_ids_differ() {
        let sessions = Sessions::default();
        let (first, session) = sessions.open("sc_x");
        let (second, _) = sessions.open("sc_x");
        assert_ne!(first, second);
        assert_eq!(sessions.get(&first).map(|s| s.csrf), Some(session.csrf));
        sessions.close(&first);
        assert!(sessions.get(&first).is_none());
        assert!(sessions.get(&second).is_some());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; seedcore_session=abc ; b=2"),
        );
        assert_eq!(session_id(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("seedcore_session="),
        );
        assert_eq!(session_id(&headers), None);
    }

    #[test]
    fn only_the_sessions_own_csrf_token_matches() {
        let sessions = Sessions::default();
        let (_, session) = sessions.open("sc_x");
        let mut headers = HeaderMap::new();
        assert!(!csrf_matches(&headers, &session));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("forged"));
        assert!(!csrf_matches(&headers, &session));
        headers.insert(CSRF_HEADER, session.csrf.parse().unwrap());
        assert!(csrf_matches(&headers, &session));
        assert!(is_change(&Method::POST) && !is_change(&Method::GET));
    }
}
