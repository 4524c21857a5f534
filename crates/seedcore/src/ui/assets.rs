//! The dashboard's files, compiled into the binary, and how they are served.
//!
//! Invariants: every file is addressed as `/ui/assets/<version>/<name>`, where the version is
//! a digest of all the files together, so a URL of the current version always names the same
//! bytes and is cached for a year (`immutable`). A request naming another version (a page
//! loaded before an upgrade) gets the current bytes with `no-cache`. The ETag is the version.
//! Modules import each other by relative paths, so they stay within one version.

use std::sync::OnceLock;

use axum::{
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file: its name under `assets/`, content type and bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("style.css", CSS, include_bytes!("assets/style.css")),
    ("icon.svg", SVG, include_bytes!("assets/icon.svg")),
    ("app.js", JS, include_bytes!("assets/app.js")),
    ("api.js", JS, include_bytes!("assets/api.js")),
    ("dom.js", JS, include_bytes!("assets/dom.js")),
    ("live.js", JS, include_bytes!("assets/live.js")),
    ("overview.js", JS, include_bytes!("assets/overview.js")),
    ("tasks.js", JS, include_bytes!("assets/tasks.js")),
    ("task.js", JS, include_bytes!("assets/task.js")),
    ("queues.js", JS, include_bytes!("assets/queues.js")),
    ("workers.js", JS, include_bytes!("assets/workers.js")),
    ("workflows.js", JS, include_bytes!("assets/workflows.js")),
    ("facts.js", JS, include_bytes!("assets/facts.js")),
    ("schedules.js", JS, include_bytes!("assets/schedules.js")),
];

/// The digest of all the files, 16 hex digits.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut digest = Sha256::new();
        for (name, _, bytes) in FILES {
            digest.update(name.as_bytes());
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        }
        digest.finalize()[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    })
}

/// Answers `GET /ui/assets/<version>/<name>`.
pub fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((version, name)) = path.split_once('/') else {
        return not_found();
    };
    let Some((_, content_type, bytes)) = FILES.iter().find(|(file, _, _)| *file == name) else {
        return not_found();
    };
    let current = version == self::version();
    let etag = format!("\"{}\"", self::version());
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|sent| sent.as_bytes() == etag.as_bytes());
    let head = [
        (header::CONTENT_TYPE, *content_type),
        (header::CACHE_CONTROL, cache),
        (header::ETAG, etag.as_str()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, head).into_response();
    }
    (head, *bytes).into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"detail": "Not Found"})),
    )
        .into_response()
}
