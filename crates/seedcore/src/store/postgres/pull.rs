//! Pull workers on PostgreSQL: registration (a `workers` row and a `pull_workers` row, one
//! transaction), their heartbeat and the state an operator sets, and attempts finished with
//! the lease remembered so a repeated completion is recognised.

use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{PgStore, claims};
use crate::model::{PullWorker, TaskStatus, Worker, WorkerCommand};
use crate::store::{Lease, Outcome, StoreError, StoreResult};

type PullRow = (
    String,
    String,
    Option<Vec<String>>,
    Option<Vec<String>>,
    Json<Map<String, Value>>,
    String,
    String,
    i32,
    String,
);

const SELECT: &str = r"select p.id, p.name, p.queues, p.types, p.labels, p.client_name,
                              p.client_version, w.concurrency, p.state
                       from pull_workers p join workers w on w.id = p.id
                       where p.id = $1";

pub(super) async fn register(
    store: &PgStore,
    worker: &Worker,
    pull: &PullWorker,
) -> StoreResult<()> {
    let mut tx = store.pool.begin().await?;
    sqlx::query(
        r"insert into workers (id, host, pid, version, concurrency, escalated_concurrency,
                               lease_seconds, started_at, last_seen_at)
          values ($1, $2, $3, $4, $5, $6, $7, now(), now())",
    )
    .bind(&worker.id)
    .bind(&worker.host)
    .bind(worker.pid)
    .bind(&worker.version)
    .bind(worker.concurrency)
    .bind(worker.escalated_concurrency)
    .bind(worker.lease_seconds)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        r"insert into pull_workers (id, name, queues, types, labels, client_name, client_version,
                                    state)
          values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&pull.id)
    .bind(&pull.name)
    .bind(&pull.queues)
    .bind(&pull.types)
    .bind(Json(&pull.labels))
    .bind(&pull.client_name)
    .bind(&pull.client_version)
    .bind(pull.state.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(store: &PgStore, id: &str) -> StoreResult<PullWorker> {
    let row: Option<PullRow> = sqlx::query_as(SELECT)
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    row.ok_or(StoreError::NotFound).and_then(into_pull_worker)
}

pub(super) async fn seen(store: &PgStore, id: &str) -> StoreResult<WorkerCommand> {
    let state: Option<String> = sqlx::query_scalar(
        r"with seen as (
              update workers set last_seen_at = now() where id = $1 returning id
          )
          select p.state from pull_workers p join seen on seen.id = p.id",
    )
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    let state = state.ok_or(StoreError::NotFound)?;
    sqlx::query("delete from finished_leases where finished_at < now() - interval '1 day'")
        .execute(&store.pool)
        .await?;
    command(&state)
}

pub(super) async fn set_state(
    store: &PgStore,
    id: &str,
    state: WorkerCommand,
) -> StoreResult<PullWorker> {
    let changed = sqlx::query("update pull_workers set state = $2 where id = $1")
        .bind(id)
        .bind(state.as_str())
        .execute(&store.pool)
        .await?;
    if changed.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    get(store, id).await
}

pub(super) async fn finish_remembered(
    store: &PgStore,
    batch: &[(Lease, Outcome)],
) -> StoreResult<Vec<Lease>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.pool.begin().await?;
    let recorded = claims::finish_on(&mut *tx, batch).await?;
    if recorded.is_empty() {
        return Ok(recorded);
    }
    let (mut tokens, mut ids, mut outcomes) = (Vec::new(), Vec::new(), Vec::new());
    for (lease, outcome) in batch.iter().filter(|(l, _)| recorded.contains(l)) {
        tokens.push(lease.token);
        ids.push(lease.task_id);
        outcomes.push(outcome.status().as_str());
    }
    sqlx::query(
        r"insert into finished_leases (lease_token, task_id, outcome)
          select * from unnest($1::uuid[], $2::uuid[], $3::text[])",
    )
    .bind(&tokens)
    .bind(&ids)
    .bind(&outcomes)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(recorded)
}

pub(super) async fn finished_lease(
    store: &PgStore,
    lease: Lease,
) -> StoreResult<Option<TaskStatus>> {
    let outcome: Option<String> = sqlx::query_scalar(
        "select outcome from finished_leases where lease_token = $1 and task_id = $2",
    )
    .bind(lease.token)
    .bind::<Uuid>(lease.task_id)
    .fetch_optional(&store.pool)
    .await?;
    outcome
        .map(|o| TaskStatus::parse(&o).ok_or_else(|| StoreError::Corrupt(format!("outcome {o}"))))
        .transpose()
}

pub(super) async fn running_by_queue(
    store: &PgStore,
    worker_id: &str,
    queues: &[String],
) -> StoreResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        r"select queue, count(*) from tasks
          where status = 'running' and worker_id = $1 and queue = any($2)
          group by queue",
    )
    .bind(worker_id)
    .bind(queues)
    .fetch_all(&store.pool)
    .await?)
}

fn command(state: &str) -> StoreResult<WorkerCommand> {
    WorkerCommand::parse(state).ok_or_else(|| StoreError::Corrupt(format!("worker state {state}")))
}

fn into_pull_worker(row: PullRow) -> StoreResult<PullWorker> {
    let (id, name, queues, types, Json(labels), client_name, client_version, concurrency, state) =
        row;
    Ok(PullWorker {
        id,
        name,
        queues,
        types,
        labels,
        client_name,
        client_version,
        concurrency,
        state: command(&state)?,
    })
}
