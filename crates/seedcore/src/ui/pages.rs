//! The two HTML documents the server writes: the page shell (with what the page needs to
//! start: base path, assets' version, the visitor's scopes and CSRF token) and the login
//! page, which works without JavaScript.
//!
//! Invariants: neither is cached (the shell carries the session's CSRF token); whatever is
//! put into them is escaped for its place (JSON with `<` escaped inside the shell's data
//! block, HTML text in the login page); both forbid scripts and styles from anywhere but
//! the server itself, inline ones included.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::assets;
use crate::auth::{Scope, Visitor};

const SHELL: &str = include_str!("assets/index.html");
const LOGIN: &str = include_str!("assets/login.html");

const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The shell for a visitor who may see the dashboard.
pub fn shell(base: &str, visitor: &Visitor) -> Response {
    let boot = match visitor {
        Visitor::Session { name, scopes, csrf } => {
            json!({"base": base, "auth": "session", "name": name, "scopes": scopes, "csrf": csrf})
        }
        _ => {
            let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            json!({"base": base, "auth": "open", "name": null, "scopes": scopes, "csrf": null})
        }
    };
    let boot = boot.to_string().replace('<', "\\u003c");
    let html = fill(SHELL, base).replace("{{boot}}", &boot);
    document(StatusCode::OK, html)
}

/// The login page, with a message when a login failed.
pub fn login(base: &str, status: StatusCode, error: Option<&str>) -> Response {
    let error = error.map_or(String::new(), |message| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))
    });
    document(status, fill(LOGIN, base).replace("{{error}}", &error))
}

/// A template with its base path and assets' version filled in. The base path holds only
/// characters that need no escaping (see `ui::base_path`).
fn fill(template: &str, base: &str) -> String {
    template
        .replace("{{base}}", base)
        .replace("{{version}}", assets::version())
}

fn document(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        html,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
