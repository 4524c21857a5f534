//! The one layer that checks every request's token against its route's scope.
//!
//! It runs after routing (`Router::layer` wraps each route), so it knows the route's template
//! ([`MatchedPath`]) and looks its access up in the route table. A request that matched no
//! route passes on to the 404 fallback; one whose method has no entry in the table (a 405 to
//! be) needs a valid token but no particular scope, so a route missing from the table is
//! never open by mistake.

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

use super::{Access, ApiToken, Auth, Caller, Scope, public_id};
use crate::api::{ApiError, route_access};

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
    let token = match verify(&auth, request.headers()).await {
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

/// The token the request shows, if it is one we made, unrevoked and unexpired.
async fn verify(auth: &Auth, headers: &HeaderMap) -> Result<ApiToken, Response> {
    let Some(presented) = bearer(headers) else {
        return Err(unauthorized(
            "Not authenticated: send Authorization: Bearer <token>",
            None,
        ));
    };
    let invalid = || unauthorized("Invalid token", Some("invalid_token"));
    let id = public_id(presented).ok_or_else(invalid)?;
    let stored = match auth.lookup(id).await {
        Ok(Some(stored)) if stored.matches(presented) => stored,
        Ok(_) => return Err(invalid()),
        Err(err) => return Err(ApiError::from_store(err, String::new).into_response()),
    };
    let token = stored.token;
    if token.revoked_at.is_some() {
        return Err(unauthorized("Token revoked", Some("invalid_token")));
    }
    if !token.usable_at(Utc::now()) {
        return Err(unauthorized("Token expired", Some("invalid_token")));
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
