//! Pull workers on SQLite: registration (a `workers` row and a `pull_workers` row, one
//! transaction), their heartbeat and the state an operator sets, and attempts finished with
//! the lease remembered so a repeated completion is recognised. Times come from this
//! process's clock; queues, types and labels are JSON text.

use chrono::{TimeDelta, Utc};
use serde_json::{Map, Value};

use super::{
    SqliteStore,
    claims::Finish,
    rows::{json_text, parse_json, stamp},
};
use crate::model::{PullWorker, TaskStatus, Worker, WorkerCommand};
use crate::store::{Lease, Outcome, Signal, StoreError, StoreResult};

type PullRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    i32,
    String,
);

const SELECT: &str = r"select p.id, p.name, p.queues, p.types, p.labels, p.client_name,
                              p.client_version, w.concurrency, p.state
                       from pull_workers p join workers w on w.id = p.id
                       where p.id = ?1";

pub(super) async fn register(
    store: &SqliteStore,
    worker: &Worker,
    pull: &PullWorker,
) -> StoreResult<()> {
    let mut tx = store.writer.begin_with("begin immediate").await?;
    sqlx::query(
        r"insert into workers (id, host, pid, version, concurrency, escalated_concurrency,
                               lease_seconds, started_at, last_seen_at)
          values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )
    .bind(&worker.id)
    .bind(&worker.host)
    .bind(worker.pid)
    .bind(&worker.version)
    .bind(worker.concurrency)
    .bind(worker.escalated_concurrency)
    .bind(worker.lease_seconds)
    .bind(stamp(Utc::now()))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        r"insert into pull_workers (id, name, queues, types, labels, client_name, client_version,
                                    state)
          values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(&pull.id)
    .bind(&pull.name)
    .bind(pull.queues.as_ref().map(json_text).transpose()?)
    .bind(pull.types.as_ref().map(json_text).transpose()?)
    .bind(json_text(&pull.labels)?)
    .bind(&pull.client_name)
    .bind(&pull.client_version)
    .bind(pull.state.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(store: &SqliteStore, id: &str) -> StoreResult<PullWorker> {
    let row: Option<PullRow> = sqlx::query_as(SELECT)
        .bind(id)
        .fetch_optional(&store.reader)
        .await?;
    row.ok_or(StoreError::NotFound).and_then(into_pull_worker)
}

pub(super) async fn seen(store: &SqliteStore, id: &str) -> StoreResult<WorkerCommand> {
    let now = Utc::now();
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let touched = sqlx::query("update workers set last_seen_at = ?2 where id = ?1")
        .bind(id)
        .bind(stamp(now))
        .execute(&mut *tx)
        .await?;
    let state: Option<String> = sqlx::query_scalar("select state from pull_workers where id = ?1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query("delete from finished_leases where finished_at < ?1")
        .bind(stamp(now - TimeDelta::days(1)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    match state {
        Some(state) if touched.rows_affected() > 0 => command(&state),
        _ => Err(StoreError::NotFound),
    }
}

pub(super) async fn set_state(
    store: &SqliteStore,
    id: &str,
    state: WorkerCommand,
) -> StoreResult<PullWorker> {
    let changed = sqlx::query("update pull_workers set state = ?2 where id = ?1")
        .bind(id)
        .bind(state.as_str())
        .execute(&store.writer)
        .await?;
    if changed.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    get(store, id).await
}

pub(super) async fn finish_remembered(
    store: &SqliteStore,
    batch: &[(Lease, Outcome)],
) -> StoreResult<Vec<Lease>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let finishes = batch
        .iter()
        .map(|(lease, outcome)| Ok((*lease, outcome.status(), Finish::of(outcome)?)))
        .collect::<StoreResult<Vec<_>>>()?;
    let now = stamp(Utc::now());
    let mut recorded = Vec::new();
    let (mut retried, mut ended) = (false, false);
    let mut tx = store.writer.begin_with("begin immediate").await?;
    for (lease, status, finish) in finishes {
        let done = sqlx::query(include_str!("sql/finish.sql"))
            .bind(finish.status)
            .bind(finish.result)
            .bind(finish.error)
            .bind(finish.run_at)
            .bind(&now)
            .bind(lease.task_id.to_string())
            .bind(lease.token.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            continue;
        }
        sqlx::query(
            r"insert into finished_leases (lease_token, task_id, outcome, finished_at)
              values (?1, ?2, ?3, ?4)",
        )
        .bind(lease.token.to_string())
        .bind(lease.task_id.to_string())
        .bind(status.as_str())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        retried |= status == TaskStatus::Retry;
        ended |= status != TaskStatus::Retry;
        recorded.push(lease);
    }
    tx.commit().await?;
    // The same signals as `claims::finish` sends after its commit.
    if retried {
        store.watchers.send(Signal::TasksReady);
    }
    if ended {
        store.settled();
    }
    Ok(recorded)
}

pub(super) async fn running_by_queue(
    store: &SqliteStore,
    worker_id: &str,
    queues: &[String],
) -> StoreResult<Vec<(String, i64)>> {
    let mut counts = Vec::new();
    for queue in queues {
        let running: i64 = sqlx::query_scalar(
            "select count(*) from tasks where status = 'running' and worker_id = ?1 and queue = ?2",
        )
        .bind(worker_id)
        .bind(queue)
        .fetch_one(&store.reader)
        .await?;
        if running > 0 {
            counts.push((queue.clone(), running));
        }
    }
    Ok(counts)
}

pub(super) async fn finished_lease(
    store: &SqliteStore,
    lease: Lease,
) -> StoreResult<Option<TaskStatus>> {
    let outcome: Option<String> = sqlx::query_scalar(
        "select outcome from finished_leases where lease_token = ?1 and task_id = ?2",
    )
    .bind(lease.token.to_string())
    .bind(lease.task_id.to_string())
    .fetch_optional(&store.reader)
    .await?;
    outcome
        .map(|o| TaskStatus::parse(&o).ok_or_else(|| StoreError::Corrupt(format!("outcome {o}"))))
        .transpose()
}

fn command(state: &str) -> StoreResult<WorkerCommand> {
    WorkerCommand::parse(state).ok_or_else(|| StoreError::Corrupt(format!("worker state {state}")))
}

fn into_pull_worker(row: PullRow) -> StoreResult<PullWorker> {
    let (id, name, queues, types, labels, client_name, client_version, concurrency, state) = row;
    let list = |text: Option<String>| text.map(|t| parse_json::<Vec<String>>(&t)).transpose();
    Ok(PullWorker {
        id,
        name,
        queues: list(queues)?,
        types: list(types)?,
        labels: parse_json::<Map<String, Value>>(&labels)?,
        client_name,
        client_version,
        concurrency,
        state: command(&state)?,
    })
}
