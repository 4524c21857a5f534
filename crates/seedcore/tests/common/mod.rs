//! Test harness: a fresh database per test, the app on port 0, a real HTTP client.
//!
//! Every behavioural test runs on both stores from one `cargo test`: `both_backends!(name)`
//! above `async fn name()` makes `name::postgres` and `name::sqlite` ([`backends`] has the
//! rules, and `postgres_only!`/`sqlite_only!` for what one store alone has). Inside a variant,
//! [`TestDb::create`] makes its database on that variant's backend.
//!
//! Switches, all optional:
//! - `SEEDCORE_TEST_DATABASE_URL`: the PostgreSQL server, an admin URL that may create
//!   databases; else the local default `postgres://postgres@127.0.0.1:5432/postgres`. When
//!   nothing answers there, the PostgreSQL tests print `SKIPPED (…)` and pass, and each test
//!   binary says so once on stderr.
//! - `SEEDCORE_TEST_REQUIRE_POSTGRES=1`: a missing server fails the PostgreSQL tests instead
//!   (`scripts/test.sh` sets it, after giving them a server).
//! - `SEEDCORE_TEST_BACKEND=postgres|sqlite`: run one half only; the other half's tests pass
//!   at once. It also picks the store of a test declared without those macros (PostgreSQL when
//!   unset). A name filter does the same job: `cargo test -- ::sqlite`.
//!
//! With PostgreSQL each test gets a database of its own on the server; with SQLite a database
//! file in a temporary folder of its own. Both are removed when the [`TestDb`] is dropped.
#![allow(dead_code)]

pub mod backends;
pub mod process;
pub mod schedules;

// Each test binary uses some.
#[allow(unused_imports)]
pub(crate) use backends::{both_backends, postgres_only, run_on, sqlite_only};

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use seedcore::{
    api::{self, ApiSettings, AppState},
    engine::{Engine, EngineHandle, EngineSettings, HandlerRouter, RetryPolicy},
    maintenance::Keeping,
    model::{Task, TaskStatus},
    store::{DynStore, PgStore, SqliteStore, Store},
};
use serde_json::Value;
use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection, PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    types::Json,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The store a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The one half `SEEDCORE_TEST_BACKEND` asks for; `None` (both) when unset or empty.
    pub fn only() -> Option<Backend> {
        match std::env::var("SEEDCORE_TEST_BACKEND").as_deref() {
            Err(_) | Ok("") => None,
            Ok("postgres" | "postgresql") => Some(Backend::Postgres),
            Ok("sqlite") => Some(Backend::Sqlite),
            Ok(other) => panic!("SEEDCORE_TEST_BACKEND must be postgres or sqlite, not {other:?}"),
        }
    }

    /// The store of a test declared without `both_backends!` and its kin: the half
    /// `SEEDCORE_TEST_BACKEND` names, else PostgreSQL.
    pub fn from_env() -> Backend {
        Backend::only().unwrap_or(Backend::Postgres)
    }
}

pub fn admin_url() -> String {
    std::env::var("SEEDCORE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// An empty temporary folder of its own, removed when dropped.
pub struct TempFolder(pub PathBuf);

impl TempFolder {
    pub fn new() -> TempFolder {
        let path = std::env::temp_dir().join(format!("seedcore-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        // Children report their working folder with symlinks resolved.
        TempFolder(path.canonicalize().expect("canonical folder"))
    }

    /// Writes `value` as JSON to `name` in the folder and returns its path.
    pub fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, serde_json::to_vec(value).expect("JSON")).expect("write");
        path
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    /// PostgreSQL connection options for this database. Under SQLite they name a database that
    /// was never created, so raw PostgreSQL setup in a test fails at once rather than quietly.
    pub options: PgConnectOptions,
    pub backend: Backend,
    /// Under SQLite, the temporary folder that holds the database file.
    folder: Option<PathBuf>,
}

impl TestDb {
    /// A fresh database on the running variant's backend (see [`backends`]), else on the one
    /// [`Backend::from_env`] picks.
    pub async fn create() -> TestDb {
        match backends::current().unwrap_or_else(Backend::from_env) {
            Backend::Postgres => TestDb::postgres().await,
            Backend::Sqlite => TestDb::sqlite(),
        }
    }

    /// A fresh PostgreSQL database, whatever `SEEDCORE_TEST_BACKEND` says; a test that needs
    /// one is declared with `postgres_only!`.
    pub async fn postgres() -> TestDb {
        assert_ne!(
            backends::current(),
            Some(Backend::Sqlite),
            "a SQLite variant asked for PostgreSQL: declare this test with postgres_only!"
        );
        let admin: PgConnectOptions = admin_url().parse().expect("SEEDCORE_TEST_DATABASE_URL");
        let name = format!("seedcore_test_{}", Uuid::new_v4().simple());
        let mut conn = admin.connect().await.unwrap_or_else(|err| {
            panic!(
                "cannot reach the test PostgreSQL at {}: {err} (declared with postgres_only! or \
                 both_backends!, a test skips instead when there is no server)",
                admin_url()
            )
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
            backend: Backend::Postgres,
            folder: None,
        }
    }

    /// A fresh SQLite database file in a temporary folder of its own (created on first open).
    pub fn sqlite() -> TestDb {
        let name = format!("seedcore_test_{}", Uuid::new_v4().simple());
        let folder = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&folder).expect("create the test folder");
        let admin: PgConnectOptions = admin_url().parse().expect("SEEDCORE_TEST_DATABASE_URL");
        TestDb {
            options: admin.database(&name),
            name,
            backend: Backend::Sqlite,
            folder: Some(folder),
        }
    }

    /// The SQLite database file, under SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.folder.as_ref().map(|f| f.join("seedcore.db"))
    }

    /// A URL for this database, for processes started by the test: `postgres://…` or
    /// `sqlite:///…`.
    pub fn url(&self) -> String {
        if let Some(path) = self.sqlite_path() {
            return format!("sqlite://{}", path.display());
        }
        let base = admin_url();
        let (prefix, _) = base.rsplit_once('/').expect("a URL with a database");
        let query = base
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        format!("{prefix}/{}{query}", self.name)
    }

    /// A new store on this database, migrated.
    pub async fn store(&self) -> TestStore {
        let store = match self.sqlite_path() {
            Some(path) => TestStore::Sqlite(
                SqliteStore::open(&path)
                    .await
                    .expect("open the test database"),
            ),
            None => TestStore::Postgres(self.pg_store_unmigrated().await),
        };
        store.migrate().await.expect("migrate the test database");
        store
    }

    /// A new PostgreSQL store on this database, migrated; panics under SQLite.
    pub async fn pg_store(&self) -> PgStore {
        assert_eq!(
            self.backend,
            Backend::Postgres,
            "this test needs PostgreSQL: create its database with TestDb::postgres()"
        );
        let store = self.pg_store_unmigrated().await;
        store.migrate().await.expect("migrate the test database");
        store
    }

    async fn pg_store_unmigrated(&self) -> PgStore {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(self.options.clone())
            .await
            .expect("connect to the test database");
        PgStore::from_pool(pool)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(folder) = &self.folder {
            let _ = std::fs::remove_dir_all(folder);
            return;
        }
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

impl TestDb {
    /// Direct access to the rows, for setups the API cannot make.
    pub async fn raw(&self) -> RawDb {
        match self.backend {
            Backend::Postgres => RawDb::Postgres(
                PgPool::connect_with(self.options.clone())
                    .await
                    .expect("connect to the test database"),
            ),
            Backend::Sqlite => match self.store().await {
                TestStore::Sqlite(store) => RawDb::Sqlite(store.pool().clone()),
                TestStore::Postgres(_) => unreachable!("a SQLite TestDb opens a SQLite store"),
            },
        }
    }
}

/// Row writes for states the API cannot produce (chosen ids and creation times, states only
/// workers reach), in each backend's SQL, so tests that need them run on both.
pub enum RawDb {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl RawDb {
    /// Inserts a task row with a chosen id and creation time (the API chooses neither).
    pub async fn insert_task(&self, id: &str, task_type: &str, created_at: DateTime<Utc>) {
        let id = Uuid::parse_str(id).expect("a uuid");
        let done = match self {
            RawDb::Postgres(pool) => sqlx::query(
                "insert into tasks (id, type, created_at, updated_at, run_at)
                 values ($1, $2, $3, $3, $3)",
            )
            .bind(id)
            .bind(task_type)
            .bind(created_at)
            .execute(pool)
            .await
            .map(drop),
            RawDb::Sqlite(pool) => sqlx::query(
                "insert into tasks (id, type, created_at, updated_at, run_at)
                 values (?1, ?2, ?3, ?3, ?3)",
            )
            .bind(id.to_string())
            .bind(task_type)
            .bind(sqlite_time(created_at))
            .execute(pool)
            .await
            .map(drop),
        };
        done.expect("insert a task");
    }

    /// Moves a task to a state only workers reach, as a worker would leave it.
    pub async fn force_state(
        &self,
        id: &str,
        status: TaskStatus,
        result: Option<Value>,
        error: Option<&str>,
    ) {
        let id = Uuid::parse_str(id).expect("a uuid");
        let done = match self {
            RawDb::Postgres(pool) => sqlx::query(
                "update tasks set status = $2, result = $3, error = $4, updated_at = now()
                 where id = $1",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(result.map(Json))
            .bind(error)
            .execute(pool)
            .await
            .map(drop),
            RawDb::Sqlite(pool) => sqlx::query(
                "update tasks set status = ?2, result = ?3, error = ?4, updated_at = ?5
                 where id = ?1",
            )
            .bind(id.to_string())
            .bind(status.as_str())
            .bind(result.map(|r| r.to_string()))
            .bind(error)
            .bind(sqlite_time(Utc::now()))
            .execute(pool)
            .await
            .map(drop),
        };
        done.expect("set the task's state");
    }

    /// Inserts a fact row (no tags, empty metadata) with a chosen id and creation time.
    pub async fn insert_fact(&self, id: &str, text: &str, created_at: DateTime<Utc>) {
        let id = Uuid::parse_str(id).expect("a uuid");
        let done = match self {
            RawDb::Postgres(pool) => sqlx::query(
                "insert into facts (id, text, created_at, updated_at) values ($1, $2, $3, $3)",
            )
            .bind(id)
            .bind(text)
            .bind(created_at)
            .execute(pool)
            .await
            .map(drop),
            RawDb::Sqlite(pool) => sqlx::query(
                "insert into facts (id, text, created_at, updated_at) values (?1, ?2, ?3, ?3)",
            )
            .bind(id.to_string())
            .bind(text)
            .bind(sqlite_time(created_at))
            .execute(pool)
            .await
            .map(drop),
        };
        done.expect("insert a fact");
    }
}

fn sqlite_time(at: DateTime<Utc>) -> String {
    at.format(seedcore::store::sqlite::TIME_FORMAT).to_string()
}

/// The store of a [`TestDb`], on either backend; it dereferences to the backend's own [`Store`].
#[derive(Clone)]
pub enum TestStore {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl TestStore {
    /// The backend's own store, for the app and the engine.
    pub fn into_dyn(self) -> DynStore {
        match self {
            TestStore::Postgres(store) => Arc::new(store),
            TestStore::Sqlite(store) => Arc::new(store),
        }
    }

    /// The PostgreSQL pool, for raw SQL in a PostgreSQL-only test; panics under SQLite.
    pub fn pool(&self) -> &PgPool {
        match self {
            TestStore::Postgres(store) => store.pool(),
            TestStore::Sqlite(_) => {
                panic!("raw PostgreSQL SQL on a SQLite store: use TestDb::postgres() for this test")
            }
        }
    }

    /// The SQLite writer pool, for raw SQL in a SQLite-only test; panics under PostgreSQL.
    pub fn sqlite_pool(&self) -> &SqlitePool {
        match self {
            TestStore::Sqlite(store) => store.pool(),
            TestStore::Postgres(_) => panic!("raw SQLite SQL on a PostgreSQL store"),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            TestStore::Sqlite(store) => Some(store.path()),
            TestStore::Postgres(_) => None,
        }
    }
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;

    /// Every `Store` method, run by the backend's own implementation.
    fn deref(&self) -> &(dyn Store + 'static) {
        match self {
            TestStore::Postgres(store) => store,
            TestStore::Sqlite(store) => store,
        }
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
        cusum: None,
        queues: None,
        queue_limits: Vec::new(),
        keeping: Keeping::default(),
        ..EngineSettings::default()
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
        let store = db.store().await.into_dyn();
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

    /// Creates a task to run at once and waits until it is final.
    pub async fn run_to_the_end(&self, mut body: Value) -> Task {
        body["run_immediately"] = serde_json::json!(true);
        let task = self.create_task(body).await;
        self.finished(&id_of(&task)).await
    }

    /// The kinds of the task's events, oldest first.
    pub async fn event_kinds(&self, id: &str) -> Vec<String> {
        let (status, events) = self.get(&format!("/api/v1/tasks/{id}/events")).await;
        assert_eq!(status, StatusCode::OK, "events {id}: {events}");
        events["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["kind"].as_str().expect("kind").to_string())
            .collect()
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
