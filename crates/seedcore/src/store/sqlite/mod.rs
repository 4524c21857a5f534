//! The SQLite store: the embedded default, one file for one process.
//!
//! Invariants it keeps beside those of [`Store`]:
//! - writes go through a pool of one connection, so they queue in order inside the process
//!   instead of sleeping in SQLite's busy handler; reads use a small pool of their own and run
//!   in parallel under WAL. A write that takes several statements is one `begin immediate`
//!   transaction; a single `update … returning` is atomic by itself, and its rows are read
//!   to the end (`fetch_all`): SQLite commits a lone statement as it finishes, and reading
//!   only the first row would reset it instead, dropping the commit's error (a full disk)
//!   and answering success for a write that was rolled back;
//! - a claim is one statement under SQLite's single writer, so no task is claimed twice;
//!   every write that finishes an attempt is fenced by `id`, `lease_token` and `running`;
//! - ids are stored as canonical lowercase hyphenated text and timestamps as fixed-width UTC
//!   text from this process's clock ([`TIME_FORMAT`]), so text order is id order and time
//!   order; JSON is stored as serde_json's text (see `rows`);
//! - the event trail is written by row-level triggers (see the migrations); wake-ups have no
//!   NOTIFY here: the store signals the watchers registered in this process after each write
//!   that made a task ready or cancelled a running one (or, once tasks with parents exist,
//!   that finished a task: its children may have been queued by the settle trigger, which
//!   needs recursive triggers, turned on for every connection);
//! - what PostgreSQL's jsonb refuses (a NUL character) is refused here too, so that both
//!   backends store the same things.
//!
//! This file holds the store's handle and how it opens; `impl Store` (written with
//! `impl_store!` of `store/forward.rs`) forwards each method to the module that holds its logic,
//! each module with its SQL in `sql/` beside it.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Claim, ClaimedTask, FactPage, FactQuery, Firing, Lease, MigrationReport, NewAction, Outcome,
    Page, PoolStats, RecordKind, Rescued, ScheduleFire, SignalSink, Store, StoreError, StoreResult,
    TagCount, TaskAction, TaskChange, TaskPage, TaskQuery, forward::impl_store, watchers::Watchers,
};
use crate::auth::{ApiToken, NewToken, StoredToken};
use crate::legacy::LegacyTask;
use crate::model::{
    Actor, Fact, FactPatch, IdRef, NewFact, NewSchedule, NewTask, QueueInfo, Schedule,
    SchedulePatch, Task, TaskEvent, Worker, Workflow, WorkflowPlan, WorkflowSummary,
};

mod actions;
mod claims;
mod counting;
pub(crate) mod errors;
mod events;
mod fact_search;
mod facts;
mod fts;
mod import;
mod pull;
mod queues;
mod retention;
mod rows;
mod schedules;
mod schema;
mod signals;
mod stats;
mod task_filters;
mod tasks;
#[cfg(test)]
mod tests;
mod tokens;
mod workers;
mod workflows;

pub use rows::TIME_FORMAT;
use rows::{EventRow, FactRow, ScheduleRow, TaskRow, WorkerRow};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for another process (say `db init`) to release the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a connection before it fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections that read in parallel.
const READERS: u32 = 4;

/// The embedded store: one SQLite file, written through a single connection and read through
/// a few more; clones share them.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    /// The only connection that writes.
    writer: SqlitePool,
    reader: SqlitePool,
    watchers: Arc<Watchers>,
    /// Set once tasks with parents may exist: from then on a finished task may have queued
    /// children, so finishing one wakes the workers.
    dependents: Arc<AtomicBool>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // A child cancelled by the settle trigger settles its own children in turn.
            .pragma("recursive_triggers", "on");
        let options = crate::store::open::statement_logging(options);
        // The writer first: it creates the file and switches it to WAL before any reader opens.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            reader,
            watchers: Arc::default(),
            dependents: Arc::default(),
        })
    }

    /// Writes a consistent copy of the database to `target` (which must not exist), while
    /// the store stays in use: `vacuum into` reads one snapshot, as any reader does under WAL,
    /// so writers are not held up.
    pub async fn backup_to(&self, target: &Path) -> StoreResult<()> {
        let target = target.to_str().ok_or_else(|| {
            StoreError::Unsupported(format!("{} is not a UTF-8 path", target.display()))
        })?;
        sqlx::query("vacuum into ?1")
            .bind(target)
            .execute(&self.reader)
            .await?;
        Ok(())
    }

    /// Closes both pools once their statements in flight are done. The last connection to
    /// close folds the write-ahead log into the database file and removes it.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writing connection's pool, for tools and tests that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// The one id `id` names, read with `by_range` (ids between ?1 and ?2, at most two).
    async fn resolve(&self, id: &IdRef, by_range: &'static str) -> StoreResult<Uuid> {
        super::ids::resolve(id, |low, high| async move {
            let ids: Vec<String> = sqlx::query_scalar(by_range)
                .bind(low.to_string())
                .bind(high.to_string())
                .fetch_all(&self.reader)
                .await?;
            ids.iter().map(|id| rows::parse_id(id)).collect()
        })
        .await
    }

    /// Runs `delete` (of the row whose id is ?1); NotFound when it deleted nothing.
    async fn delete_by_id(&self, delete: &'static str, id: Uuid) -> StoreResult<()> {
        let deleted = sqlx::query(delete)
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        match deleted.rows_affected() {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

impl_store!(SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![
            PoolStats::of("writer", &self.writer),
            PoolStats::of("reader", &self.reader),
        ]
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.reader).await?;
        Ok(())
    }

    fn watch(&self, sink: SignalSink, stop: CancellationToken) -> JoinHandle<()> {
        signals::watch(self, sink, stop)
    }

    async fn close(&self) {
        SqliteStore::close(self).await
    }

    async fn backup(&self, target: &Path) -> StoreResult<()> {
        self.backup_to(target).await
    }
});
