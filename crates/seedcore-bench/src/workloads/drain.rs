//! Draining a queue of `noop` tasks, shared by W1 and W4: bulk enqueue and a real
//! `seedcore worker` draining it.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::{
    error::{Context as _, Error, Result},
    process::Seedcore,
    workloads::Context,
};

/// Longest time a drain may make no progress before it is declared stuck.
const STALL: Duration = Duration::from_secs(120);

/// Enqueues `count` queued `noop` tasks tagged with `batch` (in `domain`) in one statement;
/// returns tasks per second. The statement-level trigger fires once, as for any bulk insert.
pub async fn enqueue(pool: &PgPool, count: i64, batch: &str) -> Result<f64> {
    enqueue_of_type(pool, count, "noop", batch).await
}

/// [`enqueue`] with tasks of `task_type`.
pub async fn enqueue_of_type(
    pool: &PgPool,
    count: i64,
    task_type: &str,
    batch: &str,
) -> Result<f64> {
    let started = Instant::now();
    sqlx::query(
        r"insert into tasks (id, type, status, domain)
          select gen_random_uuid(), $3, 'queued', $2 from generate_series(1, $1)",
    )
    .bind(count)
    .bind(batch)
    .bind(task_type)
    .execute(pool)
    .await
    .context("enqueue the tasks")?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Starts `seedcore worker` with its default settings, waits until nothing is left to run and
/// returns tasks per second from the first claim to the last completion of `batch`, as the
/// database recorded them (`min(started_at)`, `max(finished_at)`).
pub async fn drain_with_worker(
    ctx: &Context,
    dsn: &str,
    pool: &PgPool,
    count: i64,
    batch: &str,
) -> Result<f64> {
    let mut worker = Seedcore::spawn(&ctx.seedcore, &["worker"], dsn, &[])?;
    wait_until_drained(pool, &mut worker).await?;
    drop(worker);
    drained_rate(pool, count, batch).await
}

/// Tasks per second of `batch` from its first claim to its last completion, as the database
/// recorded them; fails unless all `count` of them completed.
pub async fn drained_rate(pool: &PgPool, count: i64, batch: &str) -> Result<f64> {
    let (completed, total, seconds): (i64, i64, Option<f64>) = sqlx::query_as(
        r"select count(*) filter (where status = 'completed'), count(*),
                 extract(epoch from max(finished_at) - min(started_at))::float8
          from tasks where domain = $1",
    )
    .bind(batch)
    .fetch_one(pool)
    .await
    .context("read the drain's timestamps")?;
    if completed != count || total != count {
        return Err(Error::new(format!(
            "of {count} tasks enqueued, {total} found and {completed} completed"
        )));
    }
    rate(count, seconds)
}

/// Tasks still to run: ready or running, each count served by its partial index, so polling
/// stays cheap on a large table.
pub async fn tasks_left(pool: &PgPool) -> Result<i64> {
    sqlx::query_scalar(
        r"select (select count(*) from tasks where status in ('queued', 'retry'))
               + (select count(*) from tasks where status = 'running')",
    )
    .fetch_one(pool)
    .await
    .context("count the tasks left")
}

/// Polls the ready and running counts (each served by its partial index, so this stays cheap
/// on a large table) until both are zero.
async fn wait_until_drained(pool: &PgPool, worker: &mut Seedcore) -> Result<()> {
    let mut last = i64::MAX;
    let mut progressed = Instant::now();
    loop {
        let left = tasks_left(pool).await?;
        if left == 0 {
            return Ok(());
        }
        if left < last {
            last = left;
            progressed = Instant::now();
        }
        if progressed.elapsed() > STALL {
            return Err(Error::new(format!(
                "the drain made no progress for {STALL:?} with {left} tasks left; worker log:\n{}",
                worker.log_tail(30)
            )));
        }
        worker.ensure_running()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rate(count: i64, seconds: Option<f64>) -> Result<f64> {
    match seconds {
        Some(seconds) if seconds > 0.0 => Ok(count as f64 / seconds),
        _ => Err(Error::new(format!(
            "no usable first-claim/last-completion span ({seconds:?}) for {count} tasks"
        ))),
    }
}
