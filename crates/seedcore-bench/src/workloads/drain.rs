//! Draining a queue of `noop` tasks, shared by W1 and W4: bulk enqueue, a real `seedcore worker`
//! draining it, and the raw-SQL limit it is compared with.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

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
    let started = Instant::now();
    sqlx::query(
        r"insert into tasks (id, type, status, domain)
          select gen_random_uuid(), 'noop', 'queued', $2 from generate_series(1, $1)",
    )
    .bind(count)
    .bind(batch)
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

/// Polls the ready and running counts (each served by its partial index, so this stays cheap
/// on a large table) until both are zero.
async fn wait_until_drained(pool: &PgPool, worker: &mut Seedcore) -> Result<()> {
    let mut last = i64::MAX;
    let mut progressed = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(
            r"select (select count(*) from tasks where status in ('queued', 'retry'))
                   + (select count(*) from tasks where status = 'running')",
        )
        .fetch_one(pool)
        .await
        .context("count the tasks left")?;
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

/// The raw-SQL limit: `count` rows in a plain copy of `tasks` (same columns and indexes, no
/// triggers) drained by `connections` concurrent loops of claim-one then complete-one.
pub async fn raw_sql_drain(pool: &PgPool, count: i64, connections: usize) -> Result<f64> {
    sqlx::raw_sql("create table bench_raw_tasks (like tasks including all)")
        .execute(pool)
        .await
        .context("create the raw-SQL queue table")?;
    sqlx::query(
        r"insert into bench_raw_tasks (id, type, status)
          select gen_random_uuid(), 'noop', 'queued' from generate_series(1, $1)",
    )
    .bind(count)
    .execute(pool)
    .await
    .context("fill the raw-SQL queue")?;
    crate::workloads::warm(pool, connections).await?;
    let loops: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(raw_drain_loop(pool.clone())))
        .collect();
    for handle in loops {
        handle.await.context("join a raw-SQL drain loop")??;
    }
    let (completed, seconds): (i64, Option<f64>) = sqlx::query_as(
        r"select count(*), extract(epoch from max(finished_at) - min(started_at))::float8
          from bench_raw_tasks where status = 'completed'",
    )
    .fetch_one(pool)
    .await
    .context("read the raw drain's timestamps")?;
    if completed != count {
        return Err(Error::new(format!(
            "the raw-SQL drain completed {completed} of {count} rows"
        )));
    }
    rate(count, seconds)
}

/// One connection's worth of the raw drain: claim one row, complete it, until none is left.
/// Rows are taken in seedcore's claim order, which its ready index serves.
async fn raw_drain_loop(pool: PgPool) -> Result<()> {
    loop {
        let claimed: Option<Uuid> = sqlx::query_scalar(
            r"update bench_raw_tasks
              set status = 'running', attempts = attempts + 1, started_at = now(),
                  updated_at = now()
              where id = (select id from bench_raw_tasks
                          where status in ('queued', 'retry') and run_at <= now()
                          order by priority desc, run_at, seq
                          limit 1
                          for update skip locked)
              returning id",
        )
        .fetch_optional(&pool)
        .await
        .context("claim a row")?;
        let Some(id) = claimed else {
            return Ok(());
        };
        sqlx::query(
            r"update bench_raw_tasks
              set status = 'completed', result = '{}', finished_at = now(), updated_at = now()
              where id = $1",
        )
        .bind(id)
        .execute(&pool)
        .await
        .context("complete a row")?;
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
