//! seedcore: a durable task service.
//!
//! Clients submit tasks over HTTP, workers claim them from the database and run them through a
//! router of handlers, and every state change is stored before it is acknowledged. Beside tasks
//! the service keeps *facts*: texts with tags and metadata that tasks and people store and search.
//!
//! The crate is both the `seedcore` binary and a library to embed in an existing tokio/axum
//! application: open a store, register Rust handlers for your task types, start the workers
//! with your application, and mount the API into your router.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use seedcore::{
//!     api::{self, ApiSettings, AppState},
//!     engine::{Engine, EngineSettings, HandlerError, HandlerRouter, TaskContext, handler_fn},
//!     store,
//! };
//! use serde_json::{Value, json};
//!
//! async fn greet(task: TaskContext) -> Result<Value, HandlerError> {
//!     let name = task.params["name"].as_str().unwrap_or("world");
//!     Ok(json!({ "greeting": format!("Hello, {name}!") }))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // `postgresql://…` in production; a SQLite file to try things out.
//! let store = store::open("sqlite://data/app.db", 10).await?;
//! store.migrate().await?;
//!
//! let mut handlers = HandlerRouter::with_builtins();
//! handlers.register("greet", handler_fn(greet));
//! let workers = Engine::new(store.clone(), handlers, EngineSettings::default()).start().await;
//!
//! let app = Router::new()
//!     .route("/hello", get(|| async { "hello" }))
//!     .nest("/api/v1", api::v1_router(AppState::new(store, ApiSettings::default())));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//!
//! workers.shutdown().await; // running tasks finish within the grace period, the rest requeue
//! # Ok(())
//! # }
//! ```
//!
//! `examples/host_app.rs` is the same as a runnable program. The modules:
//! - [`config`] holds every setting of the binary (environment variables and flags);
//! - [`store`] is the storage trait and its implementations, PostgreSQL and embedded SQLite;
//! - [`engine`] runs the workers: claiming, leases, retries and the handler router;
//! - [`api`] is the HTTP API (axum) with its OpenAPI document;
//! - [`ui`] is the dashboard at `/ui`, its files compiled into the binary;
//! - [`server`] is the HTTP listener of `seedcore serve`: connection and request limits, HTTPS;
//! - [`model`] holds the task and fact types and the task state machine;
//! - [`metrics`] counts what the process does and answers Prometheus scrapes (`/metrics`);
//! - [`maintenance`] is the housekeeping every process runs (counter folding);
//! - [`legacy`] and [`import`] bring over the file-based system's data;
//! - [`adopt`] takes over the original service's PostgreSQL database in place.

#![warn(missing_docs)]

pub mod adopt;
mod allocator;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod engine;
pub mod import;
pub mod legacy;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod validate;

/// The version reported by `/health`, `/` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
