//! The one layer that checks every request's token against its route's scope.
//!
//! It runs after routing (`Router::layer` wraps each route), so it knows the route's template
//! ([`MatchedPath`]) and looks its access up in the route table. A request that matched no
//! route passes on to the 404 fallback; one whose method has no entry in the table (a 405 to
//! be) needs a valid token but no particular scope, so a route missing from the table is
//! never open by mistake.
//!
//! A browser shows its token through a session cookie instead (`session`): the request is
//! checked as if it had sent the session's token, and a change made that way must carry the
//! session's CSRF token, else it is refused with 403 before its route runs.

use std::{sync::Arc, time::Instant};

use axum::{
    Json,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde_json::json;

use super::{Access, ApiToken, Auth, Caller, Scope, public_id, session};
use crate::api::{ApiError, route_access};
use crate::store::StoreError;

/// Lets the request through when its route is open or its token holds the route's scope;
/// answers 401, 403 or 429 otherwise (see the module docs of `auth`).
pub async fn require(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    let route = route.as_str();
    let access = route_access(method_of(request.method()), route);
    let strict = matches!(access, Some(Access::Strict(_)));
    if !strict {
        if access == Some(Access::Always) || auth.is_open(route) {
            return next.run(request).await;
        }
        if !auth.enforcing().await {
            return next.run(request).await;
        }
    }
    let token = match verify(&auth, request.method(), request.headers()).await {
        Ok(token) => token,
        Err(refusal) => return refusal,
    };
    if let Some(scope) = access.and_then(Access::scope)
        && !token.allows(scope)
    {
        return forbidden(scope);
    }
    if let Some(limiter) = &auth.limiter
        && let Err(wait) = limiter.take(&token.id, Instant::now())
    {
        return too_many(wait.as_secs_f64().ceil().max(1.0) as u64);
    }
    auth.touch(&token.id);
    request.extensions_mut().insert(Caller { name: token.name });
    next.run(request).await
}

/// HEAD is answered by the GET route of the same path.
fn method_of(method: &Method) -> &Method {
    if method == Method::HEAD {
        &Method::GET
    } else {
        method
    }
}

/// The token the request shows, by its `Authorization` header or its session cookie, if it
/// is one we made, unrevoked and unexpired; a change made with a session cookie also needs
/// the session's CSRF token.
async fn verify(auth: &Auth, method: &Method, headers: &HeaderMap) -> Result<ApiToken, Response> {
    if let Some(presented) = bearer(headers) {
        return check(auth, presented).await.map_err(Refusal::into_response);
    }
    let Some(open) = session::session_id(headers).and_then(|id| auth.sessions.get(id)) else {
        return Err(unauthorized(
            "Not authenticated: send Authorization: Bearer <token>",
            None,
        ));
    };
    let token = check(auth, &open.token)
        .await
        .map_err(Refusal::into_response)?;
    if session::is_change(method) && !session::csrf_matches(headers, &open) {
        return Err((
            StatusCode::FORBIDDEN,
            Json(json!({"detail": "CSRF token missing or invalid: send the session's token in X-CSRF-Token"})),
        )
            .into_response());
    }
    Ok(token)
}

/// Why a presented token was not accepted.
#[derive(Debug)]
pub enum Refusal {
    /// Not a token of ours, or its secret does not match.
    Invalid,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
    /// The database could not be asked.
    Store(StoreError),
}

impl Refusal {
    /// What the caller is told.
    pub fn detail(&self) -> &'static str {
        match self {
            Refusal::Invalid => "Invalid token",
            Refusal::Revoked => "Token revoked",
            Refusal::Expired => "Token expired",
            Refusal::Store(_) => "The database is unavailable; try again shortly",
        }
    }

    /// The API's answer: 401 with the bearer challenge, or the store's error.
    pub fn into_response(self) -> Response {
        match self {
            Refusal::Store(err) => ApiError::from_store(err, String::new).into_response(),
            other => unauthorized(other.detail(), Some("invalid_token")),
        }
    }
}

/// The token `presented` stands for, if it is one we made, unrevoked and unexpired.
pub(super) async fn check(auth: &Auth, presented: &str) -> Result<ApiToken, Refusal> {
    let id = public_id(presented).ok_or(Refusal::Invalid)?;
    let stored = match auth.lookup(id).await {
        Ok(Some(stored)) if stored.matches(presented) => stored,
        Ok(_) => return Err(Refusal::Invalid),
        Err(err) => return Err(Refusal::Store(err)),
    };
    let token = stored.token;
    if token.revoked_at.is_some() {
        return Err(Refusal::Revoked);
    }
    if !token.usable_at(Utc::now()) {
        return Err(Refusal::Expired);
    }
    Ok(token)
}

/// The credentials of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
        .filter(|credentials| !credentials.is_empty())
}

fn unauthorized(detail: &str, error: Option<&str>) -> Response {
    let challenge = match error {
        Some(error) => format!("Bearer error=\"{error}\""),
        None => "Bearer".to_string(),
    };
    refusal(
        StatusCode::UNAUTHORIZED,
        detail,
        header::WWW_AUTHENTICATE,
        challenge,
    )
}

fn forbidden(scope: Scope) -> Response {
    refusal(
        StatusCode::FORBIDDEN,
        &format!("This token lacks the scope '{scope}' that this route needs"),
        header::WWW_AUTHENTICATE,
        format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
    )
}

fn too_many(retry_after: u64) -> Response {
    refusal(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Rate limit of this token exceeded: retry in {retry_after} s"),
        header::RETRY_AFTER,
        retry_after.to_string(),
    )
}

/// An error in the API's envelope with one header beside it.
fn refusal(status: StatusCode, detail: &str, name: header::HeaderName, value: String) -> Response {
    let mut response = (status, Json(json!({ "detail": detail }))).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
    response
}
