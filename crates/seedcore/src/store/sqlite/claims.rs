//! The workers' side on SQLite: claiming ready tasks, recording how attempts ended, renewing
//! and releasing leases, and rescuing tasks whose lease expired.
//!
//! A claim is one statement (`sql/claim.sql`) under SQLite's single writer, so no task is
//! claimed twice and its count of a limited queue's running tasks is exact. Everything else is fenced by `id`, `lease_token` and `running`: a write whose
//! token is no longer current changes nothing and its lease is left out of the answer.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{
    SqliteStore, TaskRow,
    rows::{after, json_text, stamp},
};
use crate::store::{Claim, ClaimedTask, Lease, Outcome, Rescued, Signal, StoreResult};

pub(super) async fn claim(store: &SqliteStore, claim: &Claim) -> StoreResult<Vec<ClaimedTask>> {
    let now = Utc::now();
    let rows: Vec<TaskRow> = sqlx::query_as(include_str!("sql/claim.sql"))
        .bind(&claim.worker_id)
        .bind(Uuid::new_v4().to_string())
        .bind(stamp(after(now, claim.lease)))
        .bind(stamp(now))
        .bind(claim.drift.at_least)
        .bind(claim.drift.below)
        .bind(claim.limit)
        .bind(claim.queues.as_ref().map(json_text).transpose()?)
        .bind(json_text(&claim.exclude_queues)?)
        .bind(claim.types.as_ref().map(json_text).transpose()?)
        .fetch_all(&store.writer)
        .await?;
    rows.into_iter().map(TaskRow::into_claimed).collect()
}

/// One attempt's outcome as the columns `finish.sql` writes.
pub(super) struct Finish {
    pub(super) status: &'static str,
    pub(super) result: Option<String>,
    pub(super) error: Option<String>,
    pub(super) run_at: Option<String>,
}

impl Finish {
    pub(super) fn of(outcome: &Outcome) -> StoreResult<Finish> {
        Ok(match outcome {
            Outcome::Completed(result) => Finish {
                status: "completed",
                result: Some(json_text(result)?),
                error: None,
                run_at: None,
            },
            Outcome::Retry { error, run_at } => Finish {
                status: "retry",
                result: None,
                error: Some(error.clone()),
                run_at: Some(stamp(*run_at)),
            },
            Outcome::Failed(error) => Finish {
                status: "failed",
                result: None,
                error: Some(error.clone()),
                run_at: None,
            },
        })
    }
}

pub(super) async fn finish(
    store: &SqliteStore,
    batch: &[(Lease, Outcome)],
) -> StoreResult<Vec<Lease>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    // Encoded before the transaction: one outcome that cannot be stored refuses the batch,
    // as the single statement does on PostgreSQL.
    let columns = batch
        .iter()
        .map(|(_, outcome)| Finish::of(outcome))
        .collect::<StoreResult<Vec<_>>>()?;
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let now = stamp(Utc::now());
    let mut recorded = Vec::with_capacity(batch.len());
    let (mut retrying, mut ended) = (false, false);
    for ((lease, _), finish) in batch.iter().zip(columns) {
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
        if done.rows_affected() > 0 {
            recorded.push(*lease);
            retrying |= finish.status == "retry";
            ended |= finish.status != "retry";
        }
    }
    tx.commit().await?;
    if retrying {
        store.watchers.send(Signal::TasksReady);
    }
    if ended {
        store.settled();
    }
    Ok(recorded)
}

pub(super) async fn renew(
    store: &SqliteStore,
    held: &[Lease],
    lease: Duration,
) -> StoreResult<Vec<Lease>> {
    let expires = stamp(after(Utc::now(), lease));
    fenced(store, include_str!("sql/renew_lease.sql"), expires, held).await
}

pub(super) async fn renew_reporting(
    store: &SqliteStore,
    held: Lease,
    lease: Duration,
    progress: f64,
) -> StoreResult<bool> {
    let now = Utc::now();
    let renewed = sqlx::query(
        "update tasks set lease_expires_at = ?1, progress = ?2, updated_at = ?3
         where id = ?4 and lease_token = ?5 and status = 'running'",
    )
    .bind(stamp(after(now, lease)))
    .bind(progress)
    .bind(stamp(now))
    .bind(held.task_id.to_string())
    .bind(held.token.to_string())
    .execute(&store.writer)
    .await?;
    Ok(renewed.rows_affected() > 0)
}

pub(super) async fn release(store: &SqliteStore, held: &[Lease]) -> StoreResult<u64> {
    let now = stamp(Utc::now());
    let released = fenced(store, include_str!("sql/release.sql"), now, held).await?;
    if !released.is_empty() {
        store.watchers.send(Signal::TasksReady);
    }
    Ok(released.len() as u64)
}

pub(super) async fn rescue_expired(store: &SqliteStore) -> StoreResult<Vec<Rescued>> {
    let rescued: Vec<(String, String, String)> =
        sqlx::query_as(include_str!("sql/rescue_expired.sql"))
            .bind(stamp(Utc::now()))
            .fetch_all(&store.writer)
            .await?;
    if rescued.iter().any(|(status, ..)| status == "queued") {
        store.watchers.send(Signal::TasksReady);
    }
    if rescued.iter().any(|(status, ..)| status == "failed") {
        store.settled();
    }
    Ok(rescued
        .into_iter()
        .map(|(_, queue, task_type)| Rescued { queue, task_type })
        .collect())
}

/// Applies `statement` to each lease in one transaction, bound to `value`, the task id and
/// the lease token; returns the leases whose row it changed (the rest were lost).
async fn fenced(
    store: &SqliteStore,
    statement: &'static str,
    value: String,
    held: &[Lease],
) -> StoreResult<Vec<Lease>> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let mut changed = Vec::with_capacity(held.len());
    for lease in held {
        let done = sqlx::query(statement)
            .bind(&value)
            .bind(lease.task_id.to_string())
            .bind(lease.token.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            changed.push(*lease);
        }
    }
    tx.commit().await?;
    Ok(changed)
}
