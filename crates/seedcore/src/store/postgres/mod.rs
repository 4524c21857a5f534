//! The PostgreSQL store: production storage and the way to scale out.
//!
//! Claims use `for update skip locked` on a partial index of ready tasks; wake-ups travel by
//! LISTEN/NOTIFY (sent by the triggers in the migrations, so every code path signals); every
//! write that finishes an attempt is fenced by `id` and `lease_token`. Live tasks are in
//! `tasks`, finished ones move to `task_history` (see the task_history migration): anything
//! that may read a finished task reads the view `all_tasks`, anything that changes a live one
//! writes `tasks`.
//!
//! This file holds the store's handle and how it opens; `impl Store` (written with
//! `impl_store!` of `store/forward.rs`) forwards each method to the module that holds its logic,
//! each module with its SQL in `sql/` beside it.

use std::{
    path::Path,
    sync::{Arc, OnceLock, RwLock, Weak},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Claim, ClaimedTask, FactPage, FactQuery, Firing, Lease, LocalStarter, MigrationReport,
    NewAction, Outcome, Page, PoolStats, RecordKind, Rescued, ScheduleFire, SignalSink, Store,
    StoreError, StoreResult, TagCount, TaskAction, TaskChange, TaskPage, TaskQuery,
    coalesce::Coalescer, forward::impl_store, watchers::Watchers,
};
use crate::auth::{ApiToken, NewToken, StoredToken};
use crate::legacy::LegacyTask;
use crate::model::{
    Actor, Fact, FactPatch, IdRef, NewFact, NewSchedule, NewTask, QueueInfo, Schedule,
    SchedulePatch, Task, TaskEvent, Worker, Workflow, WorkflowPlan, WorkflowSummary,
};
use held::HeldConnection;

/// The batch loop of reads by id.
type Reads = Coalescer<Uuid, StoreResult<Option<TaskRow>>, HeldConnection>;

mod actions;
mod batched;
mod claims;
mod counting;
pub(crate) mod errors;
mod events;
mod fact_search;
mod facts;
mod held;
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
mod tokens;
mod workers;
mod workflows;

use rows::{EventRow, FactRow, ScheduleRow, TaskRow, WorkerRow};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Rows per insert statement of an import (PostgreSQL allows 65,535 bind parameters).
const IMPORT_CHUNK: usize = 1000;

/// A pooled connection idle longer than this is pinged (one round trip) before it is handed
/// out; one used more recently goes straight to work. Pinging on every acquire, the pool's
/// default, cost a round trip per statement under load. A connection that broke within the
/// window fails its statement as unavailable, which every caller already handles.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The PostgreSQL store: a connection pool shared by every clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// This process's watchers, told of new work without waiting for NOTIFY's round trip.
    watchers: Arc<Watchers>,
    announcer: Arc<signals::Announcer>,
    /// Single creates without parents, written in batches (started on first use).
    creates: Arc<OnceLock<Coalescer<batched::Create, StoreResult<Option<TaskRow>>>>>,
    /// Reads of one task by id, made in batches (started on first use), each slot keeping
    /// its connection while reads keep coming.
    reads: Arc<OnceLock<Reads>>,
    /// Single fact creates, written in batches (started on first use).
    fact_creates: Arc<OnceLock<Coalescer<NewFact, StoreResult<FactRow>>>>,
    /// This process's worker, offered to take ready tasks at their creation.
    starter: Arc<RwLock<Option<Weak<dyn LocalStarter>>>>,
}

impl PgStore {
    /// Opens a pool; fails when the server cannot be reached within the acquire timeout.
    pub async fn connect(
        options: PgConnectOptions,
        pool_size: u32,
        acquire_timeout: Duration,
    ) -> StoreResult<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    // Its prepared statements may return the old schema's columns.
                    if errors::predates_schema_change(meta.age) {
                        return Ok(false);
                    }
                    if meta.idle_for > PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(crate::store::open::statement_logging(options))
            .await?;
        Ok(PgStore::from_pool(pool))
    }

    /// A store over an existing pool (for a host application that has one already).
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore {
            pool,
            watchers: Arc::default(),
            announcer: Arc::default(),
            creates: Arc::default(),
            reads: Arc::default(),
            fact_creates: Arc::default(),
            starter: Arc::default(),
        }
    }

    /// The worker offered to take tasks at their creation, while it runs.
    fn local_starter(&self) -> Option<Arc<dyn LocalStarter>> {
        let starter = self.starter.read().unwrap_or_else(|held| held.into_inner());
        starter.as_ref().and_then(Weak::upgrade)
    }

    fn batched_creates(&self) -> &Coalescer<batched::Create, StoreResult<Option<TaskRow>>> {
        self.started(&self.creates, |pool, creates| async move {
            batched::insert(&pool, creates).await
        })
    }

    fn batched_reads(&self) -> &Reads {
        self.reads.get_or_init(|| {
            let pool = self.pool.clone();
            Coalescer::spawn_holding(batched::MAX_BATCH, batched::IN_FLIGHT, move |held, ids| {
                batched::get(pool.clone(), held, ids)
            })
        })
    }

    fn batched_fact_creates(&self) -> &Coalescer<NewFact, StoreResult<FactRow>> {
        self.started(&self.fact_creates, |pool, facts| async move {
            batched::insert_facts(&pool, facts).await
        })
    }

    /// The coalescer in `cell`, its loop started on first use with `run` over this pool.
    fn started<'a, In, Out, Fut>(
        &self,
        cell: &'a OnceLock<Coalescer<In, Out>>,
        run: impl Fn(PgPool, Vec<In>) -> Fut + Send + Sync + 'static,
    ) -> &'a Coalescer<In, Out>
    where
        In: Send + 'static,
        Out: Send + 'static,
        Fut: std::future::Future<Output = Vec<Out>> + Send + 'static,
    {
        cell.get_or_init(|| {
            let pool = self.pool.clone();
            Coalescer::spawn(batched::MAX_BATCH, batched::IN_FLIGHT, move |inputs| {
                run(pool.clone(), inputs)
            })
        })
    }

    /// The pool underneath, for queries of the host application or tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The one id `id` names, read with `by_range` (ids between $1 and $2, at most two).
    async fn resolve(&self, id: &IdRef, by_range: &'static str) -> StoreResult<Uuid> {
        super::ids::resolve(id, |low, high| async move {
            Ok(sqlx::query_scalar(by_range)
                .bind(low)
                .bind(high)
                .fetch_all(&self.pool)
                .await?)
        })
        .await
    }

    /// Runs `delete` (of the row whose id is $1); NotFound when it deleted nothing.
    async fn delete_by_id(&self, delete: &'static str, id: Uuid) -> StoreResult<()> {
        let deleted = match sqlx::query(delete).bind(id).execute(&self.pool).await {
            Ok(deleted) => deleted,
            // Tables of other software may point at seedcore's rows (an adopted database).
            Err(sqlx::Error::Database(err)) if err.is_foreign_key_violation() => {
                return Err(StoreError::Conflict(format!(
                    "'{id}' cannot be deleted: other rows still refer to it ({})",
                    err.table().unwrap_or("another table")
                )));
            }
            Err(err) => return Err(err.into()),
        };
        match deleted.rows_affected() {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

impl_store!(PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn start_here(&self, starter: Weak<dyn LocalStarter>) {
        *self.starter.write().unwrap_or_else(|held| held.into_inner()) = Some(starter);
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats::of("main", &self.pool)]
    }

    /// Names the tasks table (reading no row), so a database that answers but lost its
    /// schema (dropped and created again) is not ready either.
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1 from tasks limit 0")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn watch(&self, sink: SignalSink, stop: CancellationToken) -> JoinHandle<()> {
        signals::watch(self, sink, stop)
    }

    /// The pool's connections close as the last clone of the store is dropped; there is no
    /// file to tidy.
    async fn close(&self) {}

    async fn backup(&self, _target: &Path) -> StoreResult<()> {
        Err(StoreError::Unsupported(
            "the database is PostgreSQL: back it up with pg_dump, e.g. \
             pg_dump --format=custom --file=seedcore.dump \"$PG_DSN\", and restore with \
             pg_restore --clean --dbname=\"$PG_DSN\" seedcore.dump"
                .into(),
        ))
    }

    async fn set_search_language(&self, language: &str) -> StoreResult<bool> {
        facts::set_search_language(self, language).await
    }

    async fn archive_finished(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        retention::archive(self, cutoff, limit).await
    }

    async fn fold_counters(&self) -> StoreResult<u64> {
        retention::fold_counters(self).await
    }
});
