//! Authentication against the real app and the real binary: the 401/403 matrix of every
//! route × role generated from the route table, revocation, expiry, rate limits, the open
//! routes, the `token` commands and the secure defaults of `serve`.

mod common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use chrono::{TimeDelta, Utc};
use common::{process::*, *};
use reqwest::{Method, StatusCode, header};
use seedcore::{
    api::{self, ApiSettings, AppState, ROUTE_ACCESS, route_access},
    auth::{Access, AuthMode, AuthSettings, NewToken, RateLimit, Role, Scope, Secret},
    store::DynStore,
};
use serde_json::{Value, json};

/// The app on a free port with chosen auth settings, and a client that may show a token.
struct AuthApp {
    base: String,
    client: reqwest::Client,
    store: DynStore,
    _db: TestDb,
}

impl AuthApp {
    async fn start(settings: AuthSettings) -> AuthApp {
        let db = TestDb::create().await;
        let store = db.store().await.into_dyn();
        let state = AppState::new(store.clone(), ApiSettings::default()).with_auth(settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(listener, api::app(state)).await.expect("serve");
        });
        AuthApp {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            store,
            _db: db,
        }
    }

    /// Stores a token of `role` (expiring at `expires_at`) and returns its text.
    async fn mint(&self, name: &str, role: Role, expires_in: Option<TimeDelta>) -> String {
        let secret = Secret::generate();
        self.store
            .create_token(NewToken {
                id: secret.id.clone(),
                name: name.into(),
                role,
                scopes: role.scopes(),
                secret_hash: secret.hash(),
                expires_at: expires_in.map(|span| Utc::now() + span),
            })
            .await
            .expect("store a token");
        secret.text
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, header::HeaderMap, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if method == Method::POST || method == Method::PATCH {
            request = request.json(&json!({}));
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        // An event stream stays open: its answer is in the status and headers.
        let streaming = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|kind| kind == "text/event-stream");
        let text = if streaming {
            String::new()
        } else {
            response.text().await.expect("body")
        };
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, header::HeaderMap, Value) {
        self.call(Method::GET, path, token).await
    }
}

/// Every route closed, no rate limit: what the matrix needs.
fn all_closed() -> AuthSettings {
    AuthSettings {
        open_routes: Vec::new(),
        rate: None,
        ..AuthSettings::default()
    }
}

/// A request path for a route template: ids, a queue name, a docs file.
fn concrete(template: &str) -> String {
    template
        .replace("{task_id}", "0191e0c4-6f1a-7c3e-9d2b-2b7c1f0a9e11")
        .replace("{fact_id}", "0191e0c4-6f1a-7c3e-9d2b-2b7c1f0a9e12")
        .replace("{schedule_id}", "0191e0c4-6f1a-7c3e-9d2b-2b7c1f0a9e13")
        .replace("{id}", "0191e0c4-6f1a-7c3e-9d2b-2b7c1f0a9e14")
        .replace("{name}", "default")
        .replace("{*file}", "index.css")
}

fn method(name: &str) -> Method {
    name.to_ascii_uppercase().parse().expect("a method")
}

#[test]
fn every_documented_operation_has_an_entry_in_the_route_table() {
    let doc = serde_json::to_value(api::openapi()).expect("the document as JSON");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for name in item.as_object().expect("a path item").keys() {
            operations += 1;
            assert!(
                route_access(&method(name), path).is_some(),
                "{} {path} has no entry in api::ROUTE_ACCESS: say who may call it",
                name.to_uppercase()
            );
        }
    }
    assert!(operations >= 30, "only {operations} operations documented");
    // And the table names no route that is gone (the docs page and the dashboard are not
    // in the document).
    for (name, path, _) in ROUTE_ACCESS {
        if path.starts_with("/docs") || *path == "/openapi.json" || path.starts_with("/ui") {
            continue;
        }
        assert!(
            doc["paths"][path][name].is_object(),
            "ROUTE_ACCESS names {name} {path}, which the API does not have"
        );
    }
}

#[test]
fn the_openapi_document_declares_the_bearer_scheme_and_each_operations_scope() {
    let doc = serde_json::to_value(api::openapi()).expect("the document as JSON");
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    // The scopes a token create may name are exactly the scopes there are.
    let documented = &doc["components"]["schemas"]["ScopeName"]["enum"];
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(documented, &json!(scopes));
    for (name, path, access) in ROUTE_ACCESS {
        let Some(operation) = doc["paths"][path].get(name) else {
            continue;
        };
        let declared = operation["security"].to_string();
        match access {
            Access::Always => assert!(operation.get("security").is_none(), "{name} {path}"),
            Access::Token(scope) | Access::Strict(scope) => assert!(
                declared.contains(&format!("\"{scope}\"")),
                "{name} {path} should declare {scope}: {declared}"
            ),
        }
    }
}

both_backends!(every_route_answers_each_role_by_its_scope);
async fn every_route_answers_each_role_by_its_scope() {
    let app = AuthApp::start(all_closed()).await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, app.mint(role.as_str(), role, None).await));
    }
    let mut checked = 0;
    // The dashboard's open routes answer with pages, redirects and forms: tests/ui.rs.
    let routes: Vec<_> = ROUTE_ACCESS
        .iter()
        .filter(|(_, path, access)| !(path.starts_with("/ui") && *access == Access::Always))
        .collect();
    for (name, template, access) in &routes {
        let path = concrete(template);
        let method = method(name);
        let (Access::Token(scope) | Access::Strict(scope)) = access else {
            let (status, _, body) = app.call(method, &path, None).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{name} {path} is always open: {body}"
            );
            continue;
        };
        let (status, headers, body) = app.call(method.clone(), &path, None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{name} {path} without a token: {body}"
        );
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{name} {path}: {headers:?}"
        );
        for (role, token) in &tokens {
            let (status, _, body) = app.call(method.clone(), &path, Some(token)).await;
            if role.scopes().contains(scope) {
                assert!(
                    ![401, 403, 429, 500].contains(&status.as_u16()),
                    "{role} may {name} {path} ({scope}), but got {status}: {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} lacks {scope} for {name} {path}: {body}"
                );
                let detail = body["detail"].as_str().unwrap_or_default();
                assert!(detail.contains(scope.as_str()), "{detail}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * (routes.len() - 1));
}

both_backends!(with_no_token_stored_every_route_answers_as_the_contract_says);
async fn with_no_token_stored_every_route_answers_as_the_contract_says() {
    let app = AuthApp::start(all_closed()).await;
    for path in [
        "/api/v1/tasks",
        "/api/v1/facts",
        "/",
        "/readyz",
        "/openapi.json",
    ] {
        let (status, _, body) = app.get(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // A token shown to a server that has none asks for nothing either.
    let (status, _, _) = app.get("/api/v1/tasks", Some("sc_whatever")).await;
    assert_eq!(status, StatusCode::OK);
}

both_backends!(the_token_routes_need_an_admin_token_even_before_any_exists);
async fn the_token_routes_need_an_admin_token_even_before_any_exists() {
    let open = AuthApp::start(AuthSettings {
        open_routes: vec!["/api/v1/tokens".into()],
        ..AuthSettings::default()
    })
    .await;
    let off = AuthApp::start(AuthSettings {
        mode: AuthMode::Off,
        ..AuthSettings::default()
    })
    .await;
    for app in [&open, &off] {
        let (status, _, body) = app.call(Method::POST, "/api/v1/tokens", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let (status, _, body) = app.get("/api/v1/tokens", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        // The rest stays open while no token exists (or auth is off).
        let (status, _, _) = app.get("/api/v1/tasks", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let admin = off.mint("admin", Role::Admin, None).await;
    let (status, _, body) = off.get("/api/v1/tokens", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = off.get("/api/v1/tasks", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "auth off asks for nothing elsewhere"
    );
}

both_backends!(an_admin_manages_tokens_over_http);
async fn an_admin_manages_tokens_over_http() {
    let app = AuthApp::start(all_closed()).await;
    let admin = app.mint("admin", Role::Admin, None).await;
    let post = |body: Value| {
        app.client
            .post(format!("{}/api/v1/tokens", app.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let response = post(json!({"name": "reader", "role": "viewer", "expires_in": "7d"}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    let reader = created["token"].as_str().unwrap().to_string();
    assert_eq!(created["role"], "viewer");
    assert_eq!(
        created["scopes"],
        json!(["tasks:read", "facts:read", "metrics:read"])
    );
    assert!(created["expires_at"].is_string());

    let (status, _, _) = app.get("/api/v1/tasks", Some(&reader)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = app.call(Method::POST, "/api/v1/tasks", Some(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = app.get("/api/v1/tokens", Some(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let narrow = post(json!({"name": "pusher", "role": "operator", "scopes": ["tasks:write"]}))
        .await
        .unwrap();
    let narrow: Value = narrow.json().await.unwrap();
    assert_eq!(narrow["scopes"], json!(["tasks:write"]));

    let (status, _, listed) = app.get("/api/v1/tokens", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "reader", "pusher"]);
    assert!(
        !listed.to_string().contains(&reader[16..]),
        "a secret was listed"
    );

    for (body, field) in [
        (json!({"role": "viewer"}), "name"),
        (json!({"name": "x"}), "role"),
        (json!({"name": "x", "role": "root"}), "role"),
        (
            json!({"name": "x", "role": "viewer", "scopes": ["everything"]}),
            "scopes",
        ),
        (
            json!({"name": "x", "role": "viewer", "scopes": []}),
            "scopes",
        ),
        (
            json!({"name": "x", "role": "viewer", "expires_in": "forever"}),
            "expires_in",
        ),
        (json!({"name": "", "role": "viewer"}), "name"),
    ] {
        let response = post(body.clone()).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let errors: Value = response.json().await.unwrap();
        assert_eq!(
            errors["detail"][0]["loc"],
            json!(["body", field]),
            "{body}: {errors}"
        );
    }
    let taken = post(json!({"name": "reader", "role": "viewer"}))
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::CONFLICT);

    let (status, _, body) = app
        .call(Method::DELETE, "/api/v1/tokens/nobody", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, revoked) = app
        .call(Method::DELETE, "/api/v1/tokens/reader", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _, body) = app.get("/api/v1/tasks", Some(&reader)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "Token revoked");
}

both_backends!(once_a_token_exists_calls_without_one_are_refused_within_a_second);
async fn once_a_token_exists_calls_without_one_are_refused_within_a_second() {
    let app = AuthApp::start(AuthSettings::default()).await;
    let (status, _, _) = app.get("/api/v1/tasks", None).await;
    assert_eq!(status, StatusCode::OK);
    app.mint("first", Role::Viewer, None).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _, body) = app.get("/api/v1/tasks", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("Bearer"),
        "{body}"
    );
}

both_backends!(health_is_always_open_and_the_open_routes_are_settable);
async fn health_is_always_open_and_the_open_routes_are_settable() {
    let app = AuthApp::start(AuthSettings::default()).await;
    app.mint("someone", Role::Admin, None).await;
    for path in [
        "/health",
        "/",
        "/readyz",
        "/openapi.json",
        "/docs",
        "/docs/index.css",
    ] {
        let (status, _, body) = app.get(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path} is open by default: {body}");
    }
    let (status, _, _) = app.get("/api/v1/tasks", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let closed = AuthApp::start(all_closed()).await;
    closed.mint("someone", Role::Admin, None).await;
    let (status, _, _) = closed.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/readyz", "/openapi.json", "/docs"] {
        let (status, _, body) = closed.get(path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} closed: {body}");
    }
}

both_backends!(unknown_malformed_and_foreign_tokens_get_401);
async fn unknown_malformed_and_foreign_tokens_get_401() {
    let app = AuthApp::start(all_closed()).await;
    let real = app.mint("real", Role::Admin, None).await;
    let unknown = Secret::generate().text;
    // The right id with another secret.
    let forged = format!("{}{}", &real[..16], &unknown[16..]);
    for token in [unknown.as_str(), forged.as_str(), "sc_short", "not a token"] {
        let (status, headers, body) = app.get("/api/v1/tasks", Some(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(body["detail"], "Invalid token");
    }
    let basic = app
        .client
        .get(format!("{}/api/v1/tasks", app.base))
        .header(header::AUTHORIZATION, format!("Basic {real}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let (status, _, _) = app.get("/api/v1/tasks", Some(&real)).await;
    assert_eq!(status, StatusCode::OK);
}

both_backends!(a_revoked_token_stops_working_within_two_seconds);
async fn a_revoked_token_stops_working_within_two_seconds() {
    let app = AuthApp::start(all_closed()).await;
    let token = app.mint("leaked", Role::Operator, None).await;
    let (status, _, _) = app.get("/api/v1/tasks", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    // Revoked by its public id, as a scanner that found the token would.
    let id = seedcore::auth::public_id(&token).unwrap().to_string();
    let revoked = app.store.revoke_token(&id).await.expect("revoke");
    assert!(revoked.revoked_at.is_some());
    let started = Instant::now();
    loop {
        let (status, _, body) = app.get("/api/v1/tasks", Some(&token)).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["detail"], "Token revoked");
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(2), "still accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(an_expired_token_is_refused);
async fn an_expired_token_is_refused() {
    let app = AuthApp::start(all_closed()).await;
    let expired = app
        .mint("old", Role::Admin, Some(TimeDelta::seconds(-1)))
        .await;
    let fresh = app.mint("new", Role::Admin, Some(TimeDelta::days(1))).await;
    let (status, headers, body) = app.get("/api/v1/tasks", Some(&expired)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "Token expired");
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    let (status, _, _) = app.get("/api/v1/tasks", Some(&fresh)).await;
    assert_eq!(status, StatusCode::OK);
}

both_backends!(a_token_over_its_rate_limit_gets_429_with_retry_after);
async fn a_token_over_its_rate_limit_gets_429_with_retry_after() {
    let app = AuthApp::start(AuthSettings {
        rate: Some(RateLimit {
            per_second: 1.0,
            burst: 3.0,
        }),
        ..all_closed()
    })
    .await;
    let busy = app.mint("busy", Role::Viewer, None).await;
    let calm = app.mint("calm", Role::Viewer, None).await;
    for _ in 0..3 {
        let (status, _, body) = app.get("/api/v1/tasks", Some(&busy)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = app.get("/api/v1/tasks", Some(&busy)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert!(
        body["detail"].as_str().unwrap().contains("Rate limit"),
        "{body}"
    );
    // Another token has its own budget.
    let (status, _, _) = app.get("/api/v1/tasks", Some(&calm)).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (status, _, _) = app.get("/api/v1/tasks", Some(&busy)).await;
    assert_eq!(status, StatusCode::OK);
}

both_backends!(a_used_token_records_when_it_was_last_used);
async fn a_used_token_records_when_it_was_last_used() {
    let app = AuthApp::start(all_closed()).await;
    let token = app.mint("used", Role::Viewer, None).await;
    let unused = app.mint("unused", Role::Viewer, None).await;
    assert!(!unused.is_empty());
    let before = Utc::now() - TimeDelta::seconds(1);
    let (status, _, _) = app.get("/api/v1/facts", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tokens = app.store.list_tokens().await.unwrap();
        let used = tokens.iter().find(|t| t.name == "used").unwrap();
        let unused = tokens.iter().find(|t| t.name == "unused").unwrap();
        assert_eq!(unused.last_used_at, None);
        if let Some(at) = used.last_used_at {
            assert!(at >= before, "{at}");
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(a_token_name_is_unique);
async fn a_token_name_is_unique() {
    let app = AuthApp::start(all_closed()).await;
    app.mint("ci", Role::Viewer, None).await;
    let secret = Secret::generate();
    let err = app
        .store
        .create_token(NewToken {
            id: secret.id.clone(),
            name: "ci".into(),
            role: Role::Viewer,
            scopes: vec![Scope::TasksRead],
            secret_hash: secret.hash(),
            expires_at: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'ci' already exists"), "{err}");
}

// The command line, through the real binary.

fn run(args: &[&str], url: &str) -> (bool, String, String) {
    let output = command(args, &[("DATABASE_URL", url)])
        .output()
        .expect("run seedcore");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

both_backends!(token_commands_create_list_and_revoke_through_the_binary);
async fn token_commands_create_list_and_revoke_through_the_binary() {
    let db = TestDb::create().await;
    let url = db.url();
    let (ok, token, err) = run(
        &[
            "token",
            "create",
            "--name",
            "ci-reader",
            "--role",
            "viewer",
            "--expires-in",
            "90d",
        ],
        &url,
    );
    assert!(ok, "{err}");
    let shape = regex::Regex::new("^sc_[0-9a-f]{12}_[0-9a-f]{64}$").unwrap();
    assert!(shape.is_match(&token), "{token}");
    let (ok, custom, err) = run(
        &[
            "token",
            "create",
            "--name",
            "pusher",
            "--role",
            "operator",
            "--scopes",
            "tasks:write",
        ],
        &url,
    );
    assert!(ok, "{err}");

    let (ok, listed, err) = run(&["token", "list"], &url);
    assert!(ok, "{err}");
    assert!(
        listed.contains("ci-reader") && listed.contains("viewer"),
        "{listed}"
    );
    assert!(
        listed.contains("tasks:read,facts:read,metrics:read"),
        "{listed}"
    );
    assert!(
        listed.contains("pusher") && listed.contains("tasks:write"),
        "{listed}"
    );
    assert!(
        !listed.contains(&token[16..]) && !listed.contains(&custom[16..]),
        "{listed}"
    );
    assert_eq!(listed.matches("active").count(), 2, "{listed}");

    // What is stored is the hash, and it checks the printed token.
    let store = db.store().await;
    let id = seedcore::auth::public_id(&token).unwrap();
    let stored = store.find_token(id).await.unwrap().expect("stored");
    assert!(stored.matches(&token));
    assert!(stored.token.expires_at.unwrap() > Utc::now() + TimeDelta::days(89));

    let (ok, said, err) = run(&["token", "revoke", "ci-reader"], &url);
    assert!(ok, "{err}");
    assert!(said.contains(id), "{said}");
    let (_, listed, _) = run(&["token", "list"], &url);
    assert_eq!(listed.matches("revoked").count(), 1, "{listed}");

    for (args, why) in [
        (
            vec!["token", "create", "--name", "x", "--role", "root"],
            "unknown role",
        ),
        (
            vec![
                "token", "create", "--name", "y", "--role", "viewer", "--scopes", "all",
            ],
            "unknown scope",
        ),
        (
            vec![
                "token",
                "create",
                "--name",
                "z",
                "--role",
                "viewer",
                "--expires-in",
                "soon",
            ],
            "not a lifetime",
        ),
        (
            vec!["token", "create", "--name", "pusher", "--role", "viewer"],
            "already exists",
        ),
        (vec!["token", "revoke", "nobody"], "no token has"),
    ] {
        let (ok, _, err) = run(&args, &url);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

both_backends!(serve_refuses_an_exposed_address_without_a_token);
async fn serve_refuses_an_exposed_address_without_a_token() {
    let db = TestDb::create().await;
    let url = db.url();
    let mut serve = Process::spawn(
        &["serve"],
        &[("DATABASE_URL", &url), ("HOST", "0.0.0.0"), ("PORT", "0")],
    );
    let log = serve.refusal();
    assert!(log.contains("refusing to listen on 0.0.0.0"), "{log}");
    assert!(log.contains("seedcore token create"), "{log}");
}

both_backends!(serve_with_auth_off_listens_anywhere_and_warns);
async fn serve_with_auth_off_listens_anywhere_and_warns() {
    let db = TestDb::create().await;
    let url = db.url();
    let mut serve = Process::spawn(
        &["serve"],
        &[
            ("DATABASE_URL", &url),
            ("HOST", "0.0.0.0"),
            ("PORT", "0"),
            ("SEEDCORE_AUTH", "off"),
        ],
    );
    serve.wait_for_line("SEEDCORE_AUTH=off", Duration::from_secs(30));
    let base = serve.wait_for_address().replace("0.0.0.0", "127.0.0.1");
    let response = reqwest::get(format!("{base}/api/v1/tasks")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    serve.stop();
}

both_backends!(a_bootstrap_token_lets_serve_listen_anywhere_and_admits_its_holder);
async fn a_bootstrap_token_lets_serve_listen_anywhere_and_admits_its_holder() {
    let db = TestDb::create().await;
    let url = db.url();
    let (ok, token, err) = run(&["token", "generate"], &url);
    assert!(ok, "{err}");
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("HOST", "0.0.0.0"),
        ("PORT", "0"),
        ("SEEDCORE_BOOTSTRAP_TOKEN", token.as_str()),
    ];
    for _restart in 0..2 {
        let mut serve = Process::spawn(&["serve"], &env);
        let base = serve.wait_for_address().replace("0.0.0.0", "127.0.0.1");
        let client = reqwest::Client::new();
        let without = client
            .get(format!("{base}/api/v1/tasks"))
            .send()
            .await
            .unwrap();
        assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
        let with = client
            .get(format!("{base}/api/v1/tasks"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(with.status(), StatusCode::OK);
        assert!(
            !serve.log.join("\n").contains(&token[16..]),
            "the secret was logged"
        );
        serve.stop();
    }
    let (_, listed, _) = run(&["token", "list"], &url);
    assert_eq!(listed.matches("bootstrap").count(), 1, "{listed}");
    assert!(listed.contains("tokens:admin"), "{listed}");
}

both_backends!(a_malformed_bootstrap_token_stops_serve_with_a_clear_message);
async fn a_malformed_bootstrap_token_stops_serve_with_a_clear_message() {
    let db = TestDb::create().await;
    let url = db.url();
    let mut serve = Process::spawn(
        &["serve"],
        &[
            ("DATABASE_URL", &url),
            ("PORT", "0"),
            ("SEEDCORE_BOOTSTRAP_TOKEN", "hunter2"),
        ],
    );
    let log = serve.refusal();
    assert!(
        log.contains("SEEDCORE_BOOTSTRAP_TOKEN") && log.contains("token generate"),
        "{log}"
    );
    assert!(!log.contains("hunter2"), "{log}");
}

both_backends!(a_host_app_mounting_the_v1_router_gets_the_same_checks);
async fn a_host_app_mounting_the_v1_router_gets_the_same_checks() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let state = AppState::new(store.clone(), ApiSettings::default());
    let host = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .nest("/api/v1", api::v1_router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, host).await.expect("serve") });
    let client = reqwest::Client::new();
    let status = |response: reqwest::Response| response.status();

    let open = client
        .get(format!("{base}/api/v1/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(open), StatusCode::OK, "no token stored: open");

    let secret = Secret::generate();
    store
        .create_token(NewToken {
            id: secret.id.clone(),
            name: "viewer".into(),
            role: Role::Viewer,
            scopes: Role::Viewer.scopes(),
            secret_hash: secret.hash(),
            expires_at: None,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let without = client
        .get(format!("{base}/api/v1/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(without), StatusCode::UNAUTHORIZED);
    let read = client
        .get(format!("{base}/api/v1/tasks"))
        .bearer_auth(&secret.text)
        .send()
        .await
        .unwrap();
    assert_eq!(status(read), StatusCode::OK);
    let write = client
        .post(format!("{base}/api/v1/tasks"))
        .bearer_auth(&secret.text)
        .json(&json!({"type": "echo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(write), StatusCode::FORBIDDEN);
    // The host's own routes are its business.
    let hello = client.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(status(hello), StatusCode::OK);
}

#[test]
fn serve_help_explains_the_auth_settings() {
    let output = command(&["serve", "--help"], &[]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "SEEDCORE_AUTH",
        "SEEDCORE_BOOTSTRAP_TOKEN",
        "SEEDCORE_OPEN_ROUTES",
        "SEEDCORE_RATE_LIMIT_PER_SECOND",
        "SEEDCORE_RATE_LIMIT_BURST",
    ] {
        assert!(help.contains(&format!("[env: {name}")), "{name} missing");
    }
    assert!(help.contains("[default: 127.0.0.1]"), "{help}");
}

both_backends!(an_open_route_that_is_no_route_stops_serve);
async fn an_open_route_that_is_no_route_stops_serve() {
    let db = TestDb::create().await;
    let url = db.url();
    let mut serve = Process::spawn(
        &["serve"],
        &[
            ("DATABASE_URL", &url),
            ("PORT", "0"),
            ("SEEDCORE_OPEN_ROUTES", "/readyz,/api/v1/nothing"),
        ],
    );
    let log = serve.refusal();
    assert!(
        log.contains("SEEDCORE_OPEN_ROUTES: '/api/v1/nothing' is not a route"),
        "{log}"
    );
}
