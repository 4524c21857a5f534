//! The dashboard at `/ui`: a page shell, its files compiled into the binary, the login and
//! logout of browser sessions, and the reads the API does not offer (the overview, a cron
//! preview).
//!
//! Invariants:
//! - nothing is fetched at run time and nothing needs building besides `cargo build`: the
//!   files under `src/ui/assets/` are plain ES modules and CSS, embedded by `include_bytes!`;
//! - every URL the page uses is built from the base path injected into the shell
//!   ([`UiSettings::base_path`], `SEEDCORE_BASE_PATH`). The server itself always serves at
//!   `/`: a reverse proxy that publishes it under a prefix strips the prefix before passing
//!   requests on, and the base path tells the page (and the session cookie's `Path`) what
//!   the browser sees;
//! - the pages check the session themselves (their routes are `Always` in the route table):
//!   they answer a visitor without one with the login page rather than a 401, while the
//!   reads under `/ui/api/` (the overview, the cron preview), like every API route, go
//!   through the token check.

mod assets;
mod cron;
mod pages;

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, AppState};
use crate::auth::{Visitor, session};

/// How the dashboard is published.
#[derive(Clone, Debug, Default)]
pub struct UiSettings {
    /// The path prefix the browser sees before `/ui` and `/api` (`/seedcore`), empty when
    /// served at the root. Starts with `/` and does not end with one (see [`base_path`]).
    pub base_path: String,
    /// Marks the session cookie `Secure` (the server speaks TLS itself).
    pub tls: bool,
}

/// A base path as `SEEDCORE_BASE_PATH` gives it: empty or `/`, or `/` followed by segments
/// of letters, digits and `-._~`; a trailing `/` is dropped.
pub fn base_path(value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.starts_with('/')
        && trimmed[1..].split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        });
    if valid {
        Ok(trimmed.to_string())
    } else {
        Err(format!(
            "'{value}' is not a base path: give / followed by segments of letters, digits and -._~ (e.g. /seedcore)"
        ))
    }
}

/// The dashboard's routes, to merge into the API's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(shell))
        .route("/ui/", get(shell))
        .route("/ui/{*page}", get(shell))
        .route("/ui/assets/{*file}", get(asset))
        .route("/ui/login", get(login_page).post(log_in))
        .route("/ui/logout", axum::routing::post(log_out))
        .route("/ui/api/overview", get(overview))
        .route("/ui/api/cron", get(cron::preview))
}

/// The page shell for any path under `/ui` (the page routes in the browser), or the login
/// page's address when a token is needed and the visitor has no session.
async fn shell(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = &state.ui.base_path;
    match state.auth.visitor(&headers).await {
        Visitor::Anonymous => see_other(&format!("{base}/ui/login")),
        visitor => pages::shell(base, &visitor),
    }
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    assets::serve(&file, &headers)
}

async fn login_page(State(state): State<AppState>) -> Response {
    let base = &state.ui.base_path;
    if !state.auth.needs_token().await {
        return see_other(&format!("{base}/ui/"));
    }
    pages::login(base, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// Opens a session for the token of the login form and sets its cookie.
async fn log_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let base = &state.ui.base_path;
    if cross_site(&headers) {
        return pages::login(base, StatusCode::FORBIDDEN, Some("Log in from this page."));
    }
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return pages::login(
            base,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Paste a token."),
        );
    };
    match state.auth.log_in(&form.token).await {
        Ok(id) => {
            let mut response = see_other(&format!("{base}/ui/"));
            set_cookie(&mut response, &cookie(&state, &headers, &id, false));
            response
        }
        Err(refusal) => pages::login(base, StatusCode::UNAUTHORIZED, Some(refusal.detail())),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// Closes the session (the form carries its CSRF token) and clears the cookie.
async fn log_out(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let base = &state.ui.base_path;
    let csrf = serde_urlencoded::from_bytes::<LogoutForm>(&body).map(|form| form.csrf);
    if !csrf.is_ok_and(|csrf| state.auth.log_out(&headers, &csrf)) {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({"detail": "CSRF token missing or invalid"})),
        )
            .into_response();
    }
    let mut response = see_other(&format!("{base}/ui/login"));
    set_cookie(&mut response, &cookie(&state, &headers, "", true));
    response
}

/// A queue as the overview shows it.
#[derive(Serialize)]
struct QueueOverview {
    name: String,
    paused: bool,
    counts: BTreeMap<String, i64>,
    /// When its oldest ready task became due; null when none waits.
    oldest_ready_at: Option<DateTime<Utc>>,
}

/// Every queue with its tasks per status, whether paused, and its oldest waiting task.
async fn overview(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store_error = |err| ApiError::from_store(err, String::new);
    let queues = state.store.list_queues().await.map_err(store_error)?;
    let names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    let oldest: BTreeMap<String, DateTime<Utc>> = state
        .store
        .oldest_ready(&names)
        .await
        .map_err(store_error)?
        .into_iter()
        .collect();
    let queues: Vec<QueueOverview> = queues
        .into_iter()
        .map(|q| QueueOverview {
            oldest_ready_at: oldest.get(&q.name).copied(),
            name: q.name,
            paused: q.paused,
            counts: q.counts,
        })
        .collect();
    Ok(Json(
        serde_json::json!({"now": Utc::now(), "queues": queues}),
    ))
}

/// Whether the browser says the request comes from another site (`Sec-Fetch-Site`), which a
/// login or logout never legitimately does.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() == b"cross-site")
}

/// The session cookie: HttpOnly, SameSite=Strict, scoped to the base path, Secure over TLS
/// (the server's own or a proxy's that says so in `X-Forwarded-Proto`).
fn cookie(state: &AppState, headers: &HeaderMap, value: &str, clear: bool) -> String {
    let path = format!("{}/", state.ui.base_path);
    let forwarded_tls = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if state.ui.tls || forwarded_tls {
        "; Secure"
    } else {
        ""
    };
    let expiry = if clear { "; Max-Age=0" } else { "" };
    format!(
        "{}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}{expiry}",
        session::COOKIE
    )
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::base_path;

    #[test]
    fn a_base_path_is_a_slash_and_plain_segments() {
        assert_eq!(base_path(""), Ok(String::new()));
        assert_eq!(base_path("/"), Ok(String::new()));
        assert_eq!(base_path("/seedcore/"), Ok("/seedcore".into()));
        assert_eq!(base_path("/a/b-c"), Ok("/a/b-c".into()));
        assert!(base_path("seedcore").is_err());
        assert!(base_path("/a//b").is_err());
        assert!(base_path("/a\"><script>").is_err());
    }
}
