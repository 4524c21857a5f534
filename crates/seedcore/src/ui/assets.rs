//! The dashboard's files, compiled into the binary, and how they are served.
//!
//! Invariants: every file is addressed as `/ui/assets/<version>/<name>`, where the version is
//! a digest of all the files together, so a URL of the current version always names the same
//! bytes and is cached for a year (`immutable`). A request naming another version (a page
//! loaded before an upgrade) gets the current bytes with `no-cache`. The ETag is the version
//! (with `-gzip` for the compressed form). Modules import each other by relative paths, so
//! they stay within one version. A client that accepts gzip gets each file compressed once,
//! on its first request, and kept for the life of the process.

use std::{io::Write, sync::OnceLock};

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use flate2::{Compression, write::GzEncoder};
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
    let Some(index) = FILES.iter().position(|(file, _, _)| *file == name) else {
        return not_found();
    };
    let (_, content_type, plain) = FILES[index];
    let gzip = accepts_gzip(headers);
    let (bytes, etag) = if gzip {
        (compressed(index), format!("\"{}-gzip\"", self::version()))
    } else {
        (plain, format!("\"{}\"", self::version()))
    };
    let cache = if version == self::version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|sent| sent.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    let head = response.headers_mut();
    head.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    head.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    head.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    head.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        head.insert(header::ETAG, etag);
    }
    if gzip {
        head.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` lists gzip (without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("gzip"))
                && parts.all(|param| param.replace(' ', "") != "q=0")
        })
}

/// The file at `index` of [`FILES`], gzipped once.
fn compressed(index: usize) -> &'static [u8] {
    static GZIPPED: [OnceLock<Vec<u8>>; FILES.len()] = [const { OnceLock::new() }; FILES.len()];
    GZIPPED[index].get_or_init(|| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(FILES[index].2);
        encoder.finish().unwrap_or_default()
    })
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"detail": "Not Found"})),
    )
        .into_response()
}
