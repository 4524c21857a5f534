//! Test harness: a fresh PostgreSQL database per test, the app on port 0, a real HTTP client.
//!
//! The server comes from `SEEDCORE_TEST_DATABASE_URL` (an admin URL that may create databases;
//! `scripts/test.sh` sets it up), else the local default `postgres://postgres@127.0.0.1:5432/postgres`.
#![allow(dead_code)]

pub mod process;

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use seedcore::{
    api::{self, ApiSettings, AppState},
    engine::{Engine, EngineHandle, EngineSettings, HandlerRouter, RetryPolicy},
    model::Task,
    store::{DynStore, PgStore, Store},
};
use serde_json::Value;
use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn admin_url() -> String {
    std::env::var("SEEDCORE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A small pool on the admin database, for what a test does to the server itself.
pub async fn admin_pool() -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&admin_url())
        .await
        .expect("connect to the admin database")
}

/// A database of its own for one test, dropped when the value is.
pub struct TestDb {
    pub name: String,
    pub options: PgConnectOptions,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let admin: PgConnectOptions = admin_url().parse().expect("SEEDCORE_TEST_DATABASE_URL");
        let name = format!("seedcore_test_{}", Uuid::new_v4().simple());
        let mut conn = admin.connect().await.unwrap_or_else(|err| {
            panic!("cannot reach the test PostgreSQL at {}: {err}", admin_url())
        });
        // The name is ours (a UUID's hex digits); database names cannot be bind parameters.
        sqlx::raw_sql(AssertSqlSafe(format!("create database {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        TestDb {
            options: admin.database(&name),
            name,
        }
    }

    /// A PostgreSQL URL for this database, for processes started by the test.
    pub fn url(&self) -> String {
        let base = admin_url();
        let (prefix, _) = base.rsplit_once('/').expect("a URL with a database");
        let query = base
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        format!("{prefix}/{}{query}", self.name)
    }

    pub async fn store(&self) -> PgStore {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(self.options.clone())
            .await
            .expect("connect to the test database");
        let store = PgStore::from_pool(pool);
        store.migrate().await.expect("migrate the test database");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime we could borrow: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    let admin: PgConnectOptions = admin_url().parse().expect("admin url");
                    if let Ok(mut conn) = admin.connect().await {
                        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                            "drop database if exists {name} with (force)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            }
        })
        .join();
    }
}

/// Engine settings for tests: quick polls, short leases, tiny retry delays.
pub fn fast_engine() -> EngineSettings {
    EngineSettings {
        concurrency: 8,
        escalated_concurrency: 2,
        drift_threshold: 0.5,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(200),
        task_timeout: Duration::from_secs(60),
        escalated_timeout: Duration::from_secs(60),
        retry: RetryPolicy {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        shutdown_grace: Duration::from_secs(5),
    }
}

/// The app on a free port, with or without workers.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: DynStore,
    pub db: Arc<TestDb>,
    engine: Option<EngineHandle>,
    stop: CancellationToken,
    server: JoinHandle<()>,
}

impl TestApp {
    /// A fresh database and the app with workers.
    pub async fn start() -> TestApp {
        TestApp::on(
            Arc::new(TestDb::create().await),
            Some(fast_engine()),
            ApiSettings::default(),
        )
        .await
    }

    /// A fresh database and the app without workers: tasks stay where the API puts them.
    pub async fn without_workers() -> TestApp {
        TestApp::on(
            Arc::new(TestDb::create().await),
            None,
            ApiSettings::default(),
        )
        .await
    }

    pub async fn on(
        db: Arc<TestDb>,
        engine: Option<EngineSettings>,
        settings: ApiSettings,
    ) -> TestApp {
        TestApp::with_router(db, engine, settings, HandlerRouter::with_builtins()).await
    }

    pub async fn with_router(
        db: Arc<TestDb>,
        engine: Option<EngineSettings>,
        settings: ApiSettings,
        router: HandlerRouter,
    ) -> TestApp {
        let store: DynStore = Arc::new(db.store().await);
        let engine = match engine {
            Some(settings) => Some(Engine::new(store.clone(), router, settings).start().await),
            None => None,
        };
        let app = api::app(AppState::new(store.clone(), settings));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await
                .expect("serve");
        });
        TestApp {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            store,
            db,
            engine,
            stop,
            server,
        }
    }

    /// Stops the server and the workers (gracefully), keeping the database.
    pub async fn stop(mut self) -> Arc<TestDb> {
        self.stop.cancel();
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
        let _ = (&mut self.server).await;
        self.db.clone()
    }

    pub async fn request(
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
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::POST, path, None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a task and returns its JSON.
    pub async fn create_task(&self, body: Value) -> Value {
        let (status, task) = self.post("/api/v1/tasks", body).await;
        assert_eq!(status, StatusCode::OK, "create task: {task}");
        task
    }

    pub async fn task(&self, id: &str) -> Task {
        let (status, task) = self.get(&format!("/api/v1/tasks/{id}")).await;
        assert_eq!(status, StatusCode::OK, "get task {id}: {task}");
        serde_json::from_value(task).expect("a task")
    }

    /// Polls the task until `done` holds, failing the test after `within`.
    pub async fn wait_for(&self, id: &str, within: Duration, done: impl Fn(&Task) -> bool) -> Task {
        let deadline = Instant::now() + within;
        loop {
            let task = self.task(id).await;
            if done(&task) {
                return task;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} did not get there in {within:?}: {task:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the task reaches a final status (completed, failed, cancelled).
    pub async fn finished(&self, id: &str) -> Task {
        self.wait_for(id, Duration::from_secs(20), |t| t.status.is_final())
            .await
    }
}

/// Polls `check` until it returns Some, failing after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_string()
}
