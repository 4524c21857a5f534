//! The dashboard at `/ui` over HTTP against the real app: its shell and files (content
//! types, caching, the base path, the first page's size), the overview's data, and browser
//! sessions (login, logout, the cookie's attributes, CSRF on every change, scopes).
//! What the pages do in a browser is tested in `ui-tests/`.

mod common;

use std::{collections::BTreeSet, net::SocketAddr};

use common::*;
use regex::Regex;
use reqwest::{Method, StatusCode, header, redirect::Policy};
use seedcore::{
    api::{self, ApiSettings, AppState},
    auth::{AuthSettings, NewToken, Role, Secret},
    store::DynStore,
    ui::UiSettings,
};
use serde_json::{Value, json};

/// The app on a free port, and a client that follows no redirect and keeps no cookie, so
/// every test says what it sends.
struct UiApp {
    base: String,
    client: reqwest::Client,
    store: DynStore,
    _db: TestDb,
}

/// An answer: status, headers and body text.
struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    text: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl UiApp {
    async fn start(ui: UiSettings) -> UiApp {
        let db = TestDb::create().await;
        let store = db.store().await.into_dyn();
        let auth = AuthSettings {
            rate: None,
            ..AuthSettings::default()
        };
        let state = AppState::new(store.clone(), ApiSettings::default())
            .with_auth(auth)
            .with_ui(ui);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(listener, api::app(state)).await.expect("serve");
        });
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client");
        UiApp {
            base: format!("http://{address}"),
            client,
            store,
            _db: db,
        }
    }

    /// Stores a token of `role` and returns its text.
    async fn mint(&self, name: &str, role: Role) -> String {
        let secret = Secret::generate();
        self.store
            .create_token(NewToken {
                id: secret.id.clone(),
                name: name.into(),
                role,
                scopes: role.scopes(),
                secret_hash: secret.hash(),
                expires_at: None,
            })
            .await
            .expect("token stored");
        secret.text
    }

    /// Sends a request with these headers (and a body, with its content type).
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((kind, body)) = body {
            request = request.header(header::CONTENT_TYPE, kind).body(body);
        }
        let response = request.send().await.expect("request");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(Method::GET, path, headers, None).await
    }

    /// Logs in with `token` and returns the session's cookie (`name=value`).
    async fn log_in(&self, token: &str) -> String {
        let form = serde_urlencoded::to_string([("token", token)]).expect("form");
        let answer = self
            .send(Method::POST, "/ui/login", &[], Some(FORM(form)))
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
        let cookie = answer.header(header::SET_COOKIE);
        cookie.split(';').next().expect("a cookie").to_string()
    }
}

#[allow(non_snake_case)]
fn FORM(body: String) -> (&'static str, String) {
    ("application/x-www-form-urlencoded", body)
}

fn json_body(value: Value) -> Option<(&'static str, String)> {
    Some(("application/json", value.to_string()))
}

/// The boot data the shell hands the page.
fn boot(shell: &str) -> Value {
    let found = Regex::new(r#"<script type="application/json" id="boot">(.*?)</script>"#)
        .expect("regex")
        .captures(shell)
        .expect("the shell carries its boot data");
    serde_json::from_str(&found[1]).expect("boot data is JSON")
}

/// The asset paths a document or module refers to: the shell's `/ui/assets/…` URLs, a
/// module's relative imports.
fn references(base: &str, text: &str) -> Vec<String> {
    let absolute = Regex::new(r#"(/ui/assets/[0-9a-f]+/[A-Za-z0-9_.-]+)"#).expect("regex");
    let relative = Regex::new(r#"from "\./([A-Za-z0-9_.-]+)""#).expect("regex");
    let mut found: Vec<String> = absolute
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect();
    found.extend(
        relative
            .captures_iter(text)
            .map(|c| format!("{base}{}", &c[1])),
    );
    found
}

both_backends!(the_shell_and_its_files_are_served_with_their_types_and_caching);
async fn the_shell_and_its_files_are_served_with_their_types_and_caching() {
    let app = UiApp::start(UiSettings::default()).await;
    let shell = app.get("/ui", &[]).await;
    assert_eq!(shell.status, StatusCode::OK, "{}", shell.text);
    assert_eq!(
        shell.header(header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(shell.header(header::CACHE_CONTROL), "no-store");
    assert!(
        shell
            .header(header::CONTENT_SECURITY_POLICY)
            .contains("script-src 'self'")
    );
    let assets = references("", &shell.text);
    let of = |suffix: &str| assets.iter().find(|a| a.ends_with(suffix)).expect(suffix);
    for (path, kind) in [
        (of("/app.js"), "text/javascript; charset=utf-8"),
        (of("/style.css"), "text/css; charset=utf-8"),
        (of("/icon.svg"), "image/svg+xml"),
    ] {
        let answer = app.get(path, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.header(header::CONTENT_TYPE), kind, "{path}");
        assert_eq!(
            answer.header(header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        let etag = answer.header(header::ETAG).to_string();
        let again = app.get(path, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.text.is_empty());
    }
    // A page loaded before an upgrade asks for the old version: it gets today's file, uncached.
    let old = app.get("/ui/assets/0000000000000000/app.js", &[]).await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(old.header(header::CACHE_CONTROL), "no-cache");
    let missing = app.get("/ui/assets/0000000000000000/nope.js", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json(), json!({"detail": "Not Found"}));
}

both_backends!(the_first_page_with_everything_it_loads_is_under_300_kb);
async fn the_first_page_with_everything_it_loads_is_under_300_kb() {
    let app = UiApp::start(UiSettings::default()).await;
    let shell = app.get("/ui/", &[]).await;
    let mut total = shell.text.len();
    let mut seen = BTreeSet::new();
    let mut todo = references("", &shell.text);
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let answer = app.get(&path, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        total += answer.text.len();
        let folder = &path[..=path.rfind('/').expect("a folder")];
        todo.extend(references(folder, &answer.text));
    }
    assert!(seen.len() >= 8, "the page loads only {seen:?}");
    assert!(total < 300_000, "the first page transfers {total} bytes");
}

both_backends!(deep_links_get_the_shell_whose_urls_carry_the_base_path);
async fn deep_links_get_the_shell_whose_urls_carry_the_base_path() {
    let app = UiApp::start(UiSettings {
        base_path: "/sc".into(),
        tls: false,
    })
    .await;
    let shell = app.get("/ui/tasks/0191e0c4", &[]).await;
    assert_eq!(shell.status, StatusCode::OK);
    assert_eq!(boot(&shell.text)["base"], "/sc");
    let assets = references("", &shell.text);
    assert!(!assets.is_empty());
    assert!(shell.text.contains("\"/sc/ui/assets/"), "{}", shell.text);
    assert!(
        !shell.text.contains("\"/ui/"),
        "a URL without the base: {}",
        shell.text
    );
    // The proxy strips the prefix: the files are served at the root.
    let file = app.get(&assets[0], &[]).await;
    assert_eq!(file.status, StatusCode::OK);
}

both_backends!(without_tokens_the_dashboard_opens_directly_with_every_control);
async fn without_tokens_the_dashboard_opens_directly_with_every_control() {
    let app = UiApp::start(UiSettings::default()).await;
    let shell = app.get("/ui", &[]).await;
    let boot = boot(&shell.text);
    assert_eq!(boot["auth"], "open");
    assert!(
        boot["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("tasks:admin"))
    );
    let login = app.get("/ui/login", &[]).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.header(header::LOCATION), "/ui/");
}

both_backends!(the_overview_counts_each_queues_tasks_and_dates_its_oldest_waiting_one);
async fn the_overview_counts_each_queues_tasks_and_dates_its_oldest_waiting_one() {
    let app = UiApp::start(UiSettings::default()).await;
    let create = |queue: &'static str| {
        json_body(json!({"type": "echo", "queue": queue, "run_immediately": true}))
    };
    app.send(Method::POST, "/api/v1/tasks", &[], create("mail"))
        .await;
    app.send(Method::POST, "/api/v1/tasks", &[], create("mail"))
        .await;
    app.send(Method::POST, "/api/v1/queues/idle/pause", &[], None)
        .await;
    let overview = app.get("/ui/api/overview", &[]).await.json();
    let queues = overview["queues"].as_array().expect("queues");
    let mail = queues.iter().find(|q| q["name"] == "mail").expect("mail");
    assert_eq!(mail["counts"]["queued"], 2);
    assert_eq!(mail["paused"], false);
    assert!(mail["oldest_ready_at"].is_string(), "{mail}");
    let idle = queues.iter().find(|q| q["name"] == "idle").expect("idle");
    assert_eq!(idle["paused"], true);
    assert!(idle["oldest_ready_at"].is_null());
}

both_backends!(a_session_needs_a_valid_token_and_its_cookie_is_httponly_and_strict);
async fn a_session_needs_a_valid_token_and_its_cookie_is_httponly_and_strict() {
    let app = UiApp::start(UiSettings {
        base_path: "/sc".into(),
        tls: true,
    })
    .await;
    let admin = app.mint("admin", Role::Admin).await;
    let anonymous = app.get("/ui/tasks", &[]).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header(header::LOCATION), "/sc/ui/login");
    let page = app.get("/ui/login", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("action=\"/sc/ui/login\""));
    let wrong = FORM("token=sc_000000000000_nope".into());
    let refused = app.send(Method::POST, "/ui/login", &[], Some(wrong)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text.contains("Invalid token"));
    assert!(refused.headers.get(header::SET_COOKIE).is_none());
    let form = serde_urlencoded::to_string([("token", &admin)]).unwrap();
    let cross = app
        .send(
            Method::POST,
            "/ui/login",
            &[("sec-fetch-site", "cross-site")],
            Some(FORM(form.clone())),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let accepted = app
        .send(Method::POST, "/ui/login", &[], Some(FORM(form)))
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    assert_eq!(accepted.header(header::LOCATION), "/sc/ui/");
    let cookie = accepted.header(header::SET_COOKIE);
    for part in [
        "seedcore_session=",
        "Path=/sc/",
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
    ] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    assert!(
        !cookie.contains(&admin),
        "the cookie must not carry the token"
    );
}

both_backends!(a_change_made_with_a_session_needs_its_csrf_token_and_a_bearer_one_does_not);
async fn a_change_made_with_a_session_needs_its_csrf_token_and_a_bearer_one_does_not() {
    let app = UiApp::start(UiSettings::default()).await;
    let admin = app.mint("admin", Role::Admin).await;
    let cookie = app.log_in(&admin).await;
    let shell = app.get("/ui/", &[("cookie", &cookie)]).await;
    assert_eq!(shell.status, StatusCode::OK);
    let boot = boot(&shell.text);
    assert_eq!(boot["auth"], "session");
    assert_eq!(boot["name"], "admin");
    let csrf = boot["csrf"].as_str().expect("a CSRF token").to_string();
    let read = app.get("/api/v1/tasks", &[("cookie", &cookie)]).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let task = || json_body(json!({"type": "echo"}));
    let forged = app
        .send(
            Method::POST,
            "/api/v1/tasks",
            &[("cookie", &cookie)],
            task(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.json()["detail"].as_str().unwrap().contains("CSRF"));
    let wrong = [("cookie", cookie.as_str()), ("x-csrf-token", "0000")];
    let guessed = app
        .send(Method::POST, "/api/v1/tasks", &wrong, task())
        .await;
    assert_eq!(guessed.status, StatusCode::FORBIDDEN);
    let right = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let made = app
        .send(Method::POST, "/api/v1/tasks", &right, task())
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    let bearer = format!("Bearer {admin}");
    let plain = app
        .send(
            Method::POST,
            "/api/v1/tasks",
            &[("authorization", &bearer)],
            task(),
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text);
    assert_eq!(
        app.get("/api/v1/tasks", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

both_backends!(logging_out_needs_the_csrf_token_and_ends_the_session);
async fn logging_out_needs_the_csrf_token_and_ends_the_session() {
    let app = UiApp::start(UiSettings::default()).await;
    let admin = app.mint("admin", Role::Admin).await;
    let cookie = app.log_in(&admin).await;
    let csrf = boot(&app.get("/ui/", &[("cookie", &cookie)]).await.text)["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let cookies = [("cookie", cookie.as_str())];
    let forged = app
        .send(
            Method::POST,
            "/ui/logout",
            &cookies,
            Some(FORM("csrf=nope".into())),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/v1/tasks", &cookies).await.status,
        StatusCode::OK
    );
    let out = app
        .send(
            Method::POST,
            "/ui/logout",
            &cookies,
            Some(FORM(format!("csrf={csrf}"))),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header(header::LOCATION), "/ui/login");
    assert!(out.header(header::SET_COOKIE).contains("Max-Age=0"));
    let after = app.get("/api/v1/tasks", &cookies).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/ui/", &cookies).await.status,
        StatusCode::SEE_OTHER
    );
}

both_backends!(a_viewers_session_shows_its_scopes_and_is_refused_what_they_lack);
async fn a_viewers_session_shows_its_scopes_and_is_refused_what_they_lack() {
    let app = UiApp::start(UiSettings::default()).await;
    app.mint("admin", Role::Admin).await;
    let viewer = app.mint("viewer", Role::Viewer).await;
    let cookie = app.log_in(&viewer).await;
    let boot = boot(&app.get("/ui/", &[("cookie", &cookie)]).await.text);
    let scopes = boot["scopes"].as_array().unwrap();
    assert!(scopes.contains(&json!("tasks:read")));
    assert!(!scopes.contains(&json!("tasks:admin")));
    let csrf = boot["csrf"].as_str().unwrap();
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf)];
    let path = "/api/v1/tasks/0191e0c4-6f1a-7c3e-9d2b-2b7c1f0a9e11/cancel";
    let refused = app.send(Method::POST, path, &headers, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("tasks:admin")
    );
}

both_backends!(the_cron_preview_lists_the_next_five_fires_or_names_the_bad_parameter);
async fn the_cron_preview_lists_the_next_five_fires_or_names_the_bad_parameter() {
    let app = UiApp::start(UiSettings::default()).await;
    let good = app
        .get("/ui/api/cron?cron=*/5+*+*+*+*&timezone=Europe/Zurich", &[])
        .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    let times = good.json()["next_fire_times"].as_array().unwrap().clone();
    assert_eq!(times.len(), 5);
    for time in &times {
        let at: chrono::DateTime<chrono::Utc> = time.as_str().unwrap().parse().unwrap();
        assert_eq!(chrono::Timelike::minute(&at) % 5, 0, "{at}");
    }
    for (query, field) in [
        ("cron=61+*+*+*+*", "cron"),
        ("cron=0+0+30+2+*", "cron"),
        ("cron=*+*+*+*+*&timezone=Mars/Base", "timezone"),
        ("timezone=UTC", "cron"),
    ] {
        let bad = app.get(&format!("/ui/api/cron?{query}"), &[]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(
            bad.json()["detail"][0]["loc"],
            json!(["query", field]),
            "{query}"
        );
    }
}

both_backends!(a_client_that_accepts_gzip_gets_the_same_files_compressed);
async fn a_client_that_accepts_gzip_gets_the_same_files_compressed() {
    let app = UiApp::start(UiSettings::default()).await;
    let shell = app.get("/ui", &[]).await;
    let path = references("", &shell.text)
        .into_iter()
        .find(|a| a.ends_with("/app.js"))
        .expect("app.js");
    let plain = app.get(&path, &[]).await;
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    let url = format!("{}{path}", app.base);
    let response = app
        .client
        .get(&url)
        .header(header::ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(response.headers()[header::VARY], "accept-encoding");
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(etag, plain.header(header::ETAG));
    let body = response.bytes().await.expect("body");
    assert!(
        body.len() < plain.text.len(),
        "{} bytes gzipped",
        body.len()
    );
    let mut unpacked = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut unpacked)
        .expect("gzip");
    assert_eq!(unpacked, plain.text);
    let again = app
        .get(
            &path,
            &[("accept-encoding", "gzip"), ("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let refused = app.get(&path, &[("accept-encoding", "gzip;q=0")]).await;
    assert!(refused.headers.get(header::CONTENT_ENCODING).is_none());
}
