//! seedcore: a durable task service.
//!
//! Clients submit tasks over HTTP, workers claim them from the database and run them through a
//! router of handlers, and every state change is stored before it is acknowledged. Beside tasks
//! the service keeps *facts*: texts with tags and metadata that tasks and people store and search.
//!
//! The crate is both the `seedcore` binary and a library:
//! - [`config`] holds every setting (environment variables and command-line flags);
//! - [`store`] is the storage trait and its implementations, PostgreSQL and embedded SQLite;
//! - [`engine`] runs the workers: claiming, leases, retries and the handler router;
//! - [`api`] is the HTTP API (axum) with its OpenAPI document;
//! - [`model`] holds the task and fact types and the task state machine.

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod import;
pub mod legacy;
pub mod model;
pub mod store;
pub mod telemetry;
pub mod validate;

/// The version reported by `/health`, `/` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
