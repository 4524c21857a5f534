//! Service endpoints against the HTTP contract: health, readiness (with the database up and
//! down), the welcome document, the docs page, the OpenAPI document and unknown routes.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use common::*;
use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use seedcore::{
    api::{self, ApiSettings, AppState},
    store::PgStore,
};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::task::JoinHandle;

/// The app on a free port with a store whose database is down (nothing listens on port 1).
struct DownApp {
    base: String,
    client: reqwest::Client,
    server: JoinHandle<()>,
}

impl DownApp {
    async fn start() -> DownApp {
        let nowhere = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(1)
            .username("postgres")
            .database("postgres");
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy_with(nowhere);
        let state = AppState::new(Arc::new(PgStore::from_pool(pool)), ApiSettings::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, api::app(state)).await.expect("serve");
        });
        DownApp {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            server,
        }
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for DownApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `major.minor.patch`, with an optional pre-release and build suffix.
fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn assert_detail_is_a_message(body: &Value) {
    let object = body.as_object().expect("a JSON object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["detail"], "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

/// Fetches a page as text, with its status and content type.
async fn fetch_text(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, response.text().await.expect("body"))
}

// ---- health and readiness ------------------------------------------------------------------

both_backends!(health_reports_the_service_name_and_a_semver_version);
async fn health_reports_the_service_name_and_a_semver_version() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let version = body["version"].as_str().expect("a version string");
    assert!(is_semver(version), "{version}");
    assert_eq!(version, seedcore::VERSION);
    assert_eq!(
        body,
        json!({"status": "healthy", "service": "seedcore-api", "version": version})
    );
}

both_backends!(readiness_is_ready_when_the_database_answers);
async fn readiness_is_ready_when_the_database_answers() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"status": "ready", "deps": {"db": "ok"}}));
}

both_backends!(readiness_is_a_503_naming_the_error_when_the_database_is_down);
async fn readiness_is_a_503_naming_the_error_when_the_database_is_down() {
    let app = DownApp::start().await;
    let (status, body) = app.request(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready", "{body}");
    let object = body.as_object().expect("an object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["status", "deps"],
        "{body}"
    );
    let deps = body["deps"].as_object().expect("deps");
    assert_eq!(deps.keys().collect::<Vec<_>>(), ["db"], "{body}");
    let db = body["deps"]["db"].as_str().expect("a db string");
    assert!(db.starts_with("error: "), "{db}");
    assert!(db.len() > "error: ".len(), "the error says why: {db}");
}

both_backends!(health_stays_up_while_the_database_is_down);
async fn health_stays_up_while_the_database_is_down() {
    let app = DownApp::start().await;
    let (status, body) = app.request(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "healthy");
}

both_backends!(a_task_create_is_a_503_not_a_500_while_the_database_is_down);
async fn a_task_create_is_a_503_not_a_500_while_the_database_is_down() {
    let app = DownApp::start().await;
    let (status, body) = app
        .request(Method::POST, "/api/v1/tasks", Some(json!({"type": "echo"})))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_detail_is_a_message(&body);
}

both_backends!(fact_requests_are_503s_not_500s_while_the_database_is_down);
async fn fact_requests_are_503s_not_500s_while_the_database_is_down() {
    let app = DownApp::start().await;
    let requests = [
        (Method::POST, "/api/v1/facts", Some(json!({"text": "t"}))),
        (Method::GET, "/api/v1/facts", None),
        (Method::GET, "/api/v1/facts/abcd1234", None),
    ];
    for (method, path, body) in requests {
        let (status, answer) = app.request(method.clone(), path, body).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {answer}"
        );
        assert_detail_is_a_message(&answer);
    }
}

both_backends!(bad_input_is_still_a_422_while_the_database_is_down);
async fn bad_input_is_still_a_422_while_the_database_is_down() {
    let app = DownApp::start().await;
    let (status, body) = app
        .request(Method::POST, "/api/v1/facts", Some(json!({"text": 1})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"].is_array(), "{body}");
}

// ---- welcome -------------------------------------------------------------------------------

both_backends!(the_root_welcomes_and_points_at_the_docs_and_health);
async fn the_root_welcomes_and_points_at_the_docs_and_health() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.get("/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let version = body["version"].as_str().expect("a version string");
    assert!(is_semver(version), "{version}");
    assert_eq!(
        body,
        json!({
            "message": "Welcome to SeedCore API",
            "version": version,
            "docs": "/docs",
            "health": "/health",
        })
    );
}

// ---- docs and OpenAPI ----------------------------------------------------------------------

both_backends!(the_docs_page_is_the_swagger_ui);
async fn the_docs_page_is_the_swagger_ui() {
    let app = TestApp::without_workers().await;
    for path in ["/docs", "/docs/"] {
        let (status, content_type, html) = fetch_text(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert!(html.contains("id=\"swagger-ui\""), "{path}: {html}");
        assert!(html.contains("swagger-ui-bundle.js"), "{path}: {html}");
    }
}

both_backends!(the_docs_assets_are_served);
async fn the_docs_assets_are_served() {
    let app = TestApp::without_workers().await;
    for (asset, kind) in [
        ("/docs/swagger-ui.css", "css"),
        ("/docs/swagger-ui-bundle.js", "javascript"),
        ("/docs/swagger-initializer.js", "javascript"),
    ] {
        let (status, content_type, body) = fetch_text(&app, asset).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(content_type.contains(kind), "{asset}: {content_type}");
        assert!(!body.is_empty(), "{asset} is empty");
    }
}

both_backends!(the_docs_initializer_loads_the_openapi_document);
async fn the_docs_initializer_loads_the_openapi_document() {
    let app = TestApp::without_workers().await;
    let (status, _, script) = fetch_text(&app, "/docs/swagger-initializer.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(script.contains("\"/openapi.json\""), "{script}");
    assert!(!script.contains("petstore"), "{script}");
}

both_backends!(an_unknown_docs_asset_is_a_json_404);
async fn an_unknown_docs_asset_is_a_json_404() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.get("/docs/no-such-file.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body, json!({"detail": "Not Found"}));
}

both_backends!(the_openapi_document_lists_every_contract_path);
async fn the_openapi_document_lists_every_contract_path() {
    let app = TestApp::without_workers().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert_eq!(doc["info"]["title"], "seedcore");
    let paths = doc["paths"].as_object().expect("paths");
    let expected: [(&str, &[&str]); 10] = [
        ("/api/v1/tasks", &["get", "post"]),
        ("/api/v1/tasks/{task_id}", &["get"]),
        ("/api/v1/tasks/{task_id}/run", &["post"]),
        ("/api/v1/tasks/{task_id}/cancel", &["post"]),
        ("/api/v1/tasks/{task_id}/status", &["get"]),
        ("/api/v1/facts", &["get", "post"]),
        ("/api/v1/facts/{fact_id}", &["get", "patch", "delete"]),
        ("/health", &["get"]),
        ("/readyz", &["get"]),
        ("/", &["get"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing from {:?}", paths.keys()));
        for method in methods {
            assert!(item.get(*method).is_some(), "{method} {path} is missing");
        }
    }
}

both_backends!(the_openapi_document_names_the_fact_fields_as_the_contract_does);
async fn the_openapi_document_names_the_fact_fields_as_the_contract_does() {
    let app = TestApp::without_workers().await;
    let (_, doc) = app.get("/openapi.json").await;
    let fact = &doc["components"]["schemas"]["Fact"]["properties"];
    let names: Vec<&str> = fact
        .as_object()
        .expect("Fact properties")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names[..6],
        [
            "id",
            "text",
            "tags",
            "meta_data",
            "created_at",
            "updated_at"
        ]
    );
}

// ---- unknown routes and methods ------------------------------------------------------------

both_backends!(an_unknown_route_is_a_json_404);
async fn an_unknown_route_is_a_json_404() {
    let app = TestApp::without_workers().await;
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/api/v1/nope"),
        (Method::POST, "/api/v2/tasks"),
        (Method::GET, "/api/v1/tasks/x/y/z"),
    ] {
        let (status, body) = app.request(method.clone(), path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body, json!({"detail": "Not Found"}), "{method} {path}");
    }
}

both_backends!(a_wrong_method_is_a_json_405);
async fn a_wrong_method_is_a_json_405() {
    let app = TestApp::without_workers().await;
    for (method, path) in [
        (Method::PUT, "/api/v1/tasks"),
        (Method::DELETE, "/api/v1/tasks"),
        (Method::PUT, "/api/v1/facts"),
        (Method::POST, "/health"),
        (Method::GET, "/api/v1/tasks/abcd1234/run"),
    ] {
        let (status, body) = app.request(method.clone(), path, None).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert_eq!(
            body,
            json!({"detail": "Method Not Allowed"}),
            "{method} {path}"
        );
    }
}
