//! `/docs` (Swagger UI, served from files compiled into the binary: it works offline) and
//! `/openapi.json`.
//!
//! The UI's page refers to its assets by relative paths; `/docs` itself is served with a
//! `<base href="/docs/">` so that it works without a redirect to `/docs/`.
//!
//! The document is kept as its JSON text (about 160 KiB), written once when the routes are
//! made: the structure it is written from would keep over 2 MiB of heap for the life of the
//! process.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::Path,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::Config;

const SPEC_URL: &str = "/openapi.json";

pub fn routes<S: Clone + Send + Sync + 'static>(openapi: OpenApi) -> Router<S> {
    // Boxed to its length: the writer's spare capacity would be kept too.
    let document = serde_json::to_vec(&openapi)
        .map(|json| Bytes::from(json.into_boxed_slice()))
        .map_err(|err| err.to_string());
    drop(openapi);
    let config = Arc::new(Config::from(SPEC_URL));
    let index = config.clone();
    let index_page = get(move || async move { index_page(&index) });
    Router::new()
        .route(
            SPEC_URL,
            get(move || async move { document_response(&document) }),
        )
        .route("/docs", index_page.clone())
        .route("/docs/", index_page)
        .route(
            "/docs/{*file}",
            get(move |Path(file): Path<String>| async move { asset(&file, &config).await }),
        )
}

/// The document as `Json` would answer it (same bytes, same content type), or the usual 500.
fn document_response(document: &Result<Bytes, String>) -> Response {
    match document {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response(),
        Err(err) => failure(Some(err.clone())),
    }
}

fn index_page(config: &Arc<Config<'static>>) -> Response {
    match load("index.html", config) {
        Ok(Some((_, bytes))) => {
            let html = String::from_utf8_lossy(&bytes).replacen(
                "<head>",
                "<head><base href=\"/docs/\">",
                1,
            );
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
        other => failure(other.err()),
    }
}

async fn asset(file: &str, config: &Arc<Config<'static>>) -> Response {
    match load(file, config) {
        Ok(Some((content_type, bytes))) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        // The same answer as any unknown route, so clients see one 404 shape.
        Ok(None) => super::not_found().await,
        Err(err) => failure(Some(err)),
    }
}

/// A Swagger UI file (an empty name is the index page) and its content type.
fn load(file: &str, config: &Arc<Config<'static>>) -> Result<Option<(String, Vec<u8>)>, String> {
    utoipa_swagger_ui::serve(file, config.clone())
        .map(|found| found.map(|f| (f.content_type, f.bytes.into_owned())))
        .map_err(|err| err.to_string())
}

fn failure(err: Option<String>) -> Response {
    tracing::error!(error = ?err, "cannot serve the docs page");
    // The API's usual 500 body: the cause goes to the log, not to the client.
    super::internal_error()
}
