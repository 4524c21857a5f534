//! W5, the pull API through the Python client (`clients/python`): 20,000 no-op tasks drained by
//! two worker processes of the client (batched long-poll claims, one completion per task)
//! against the built-in worker draining as many in the same run; and the long-poll pickup, a
//! task enqueued through the API at a steady rate while one client process waits in its claim.

use std::{collections::HashMap, path::Path, time::Instant};

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    process::{Seedcore, db_init},
    python::{PythonClient, WorkerProcess},
    report::{Better, Measure, RunOutcome},
    stats::Latencies,
    workloads::{
        Context, SETTLE, drain, progress,
        w2::{Waits, enqueue_steadily},
    },
};

const PULL_TYPE: &str = "w5.noop";
const PULL_TASK: &str = r#"{"type":"w5.noop","run_immediately":true}"#;
const PROCESSES: usize = 2;
/// Handler threads per client process while draining.
const DRAIN_CONCURRENCY: usize = 32;
/// Longest a drain may make no progress.
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    let client = PythonClient::prepare().await;
    if let PythonClient::Skipped(reason) = &client {
        let mut outcome = RunOutcome::default();
        outcome.note(reason.clone());
        return Ok(vec![outcome]);
    }
    let mut runs = Vec::new();
    for run in 1..=ctx.plan.runs {
        progress(format_args!("w5 run {run}/{}", ctx.plan.runs));
        runs.push(with_database(&ctx.admin, async |db| one_run(ctx, db, &client).await).await?);
    }
    Ok(runs)
}

async fn one_run(ctx: &Context, db: &BenchDb, client: &PythonClient) -> Result<RunOutcome> {
    let count = ctx.plan.drain_tasks;
    db_init(&ctx.seedcore, &db.url).await?;
    let pool = db.pool(4).await?;
    drain::enqueue(&pool, count, "w5-builtin").await?;
    let builtin = drain::drain_with_worker(ctx, &db.url, &pool, count, "w5-builtin").await?;

    let env = [("SEEDCORE_WORKER_CONCURRENCY", "0")];
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &env)?;
    let base = serve.wait_for_address().await?;
    drain::enqueue_of_type(&pool, count, PULL_TYPE, "w5-pull").await?;
    let mut workers = (0..PROCESSES)
        .map(|_| client.spawn_worker(&base, PULL_TYPE, DRAIN_CONCURRENCY, None))
        .collect::<Result<Vec<_>>>()?;
    wait_until_done(&pool, &mut serve, &mut workers).await?;
    drop(workers);
    let pulled = drain::drained_rate(&pool, count, "w5-pull").await?;

    let waits = pickup(ctx, &base, client, &pool, &mut serve).await?;
    pool.close().await;
    drop(serve);
    Ok(outcome(ctx, builtin, pulled, &waits))
}

/// One idle client process waiting in its long-poll claim; tasks enqueued one at a time
/// through the API; each task's wait from the enqueue's answer to its handler's start.
async fn pickup(
    ctx: &Context,
    base: &str,
    client: &PythonClient,
    pool: &PgPool,
    serve: &mut Seedcore,
) -> Result<Waits> {
    let count = ctx.plan.pickup_tasks;
    let dir = std::env::temp_dir().join(format!("seedcore-bench-w5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("create a folder for the handler starts")?;
    let starts = dir.join("starts.txt");
    let _ = std::fs::remove_file(&starts);
    let mut worker = vec![client.spawn_worker(base, PULL_TYPE, 4, Some(&starts))?];
    tokio::time::sleep(SETTLE * 2).await;
    let enqueued = enqueue_steadily(base, count, ctx.plan.pickup_rate, PULL_TASK).await?;
    wait_until_done(pool, serve, &mut worker).await?;
    drop(worker);
    let started = read_starts(&starts)?;
    let _ = std::fs::remove_dir_all(&dir);
    Waits::of(&enqueued, &started)
}

/// Polls until no task is ready or running, failing if a process exits or nothing moves.
async fn wait_until_done(
    pool: &PgPool,
    serve: &mut Seedcore,
    workers: &mut [WorkerProcess],
) -> Result<()> {
    let mut last = i64::MAX;
    let mut progressed = Instant::now();
    loop {
        let left = drain::tasks_left(pool).await?;
        if left == 0 {
            return Ok(());
        }
        if left < last {
            last = left;
            progressed = Instant::now();
        }
        if progressed.elapsed() > STALL {
            return Err(Error::new(format!(
                "no progress for {STALL:?} with {left} tasks left; server log:\n{}",
                serve.log_tail(30)
            )));
        }
        serve.ensure_running()?;
        for worker in workers.iter_mut() {
            worker.ensure_running()?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The "<task id> <unix seconds>" lines the worker wrote, by task.
fn read_starts(path: &Path) -> Result<HashMap<Uuid, DateTime<Utc>>> {
    let text = std::fs::read_to_string(path).context("read the handler starts")?;
    text.lines()
        .map(|line| parse_start(line).context(format_args!("read the handler start line {line:?}")))
        .collect()
}

fn parse_start(line: &str) -> Option<(Uuid, DateTime<Utc>)> {
    let (id, seconds) = line.split_once(' ')?;
    let seconds: f64 = seconds.trim().parse().ok()?;
    let micros = (seconds * 1_000_000.0).round() as i64;
    Some((id.parse().ok()?, Utc.timestamp_micros(micros).single()?))
}

fn outcome(ctx: &Context, builtin: f64, pulled: f64, waits: &Waits) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    outcome.push(
        Measure::new(
            "pull_drain",
            "drain through the pull API, Python client",
            "tasks/s",
            Better::Higher,
            pulled,
        )
        .against("builtin_drain", "built-in worker", builtin),
    );
    let since_answer = Latencies::new(waits.since_answer.clone());
    for (key, label, value) in [
        ("pickup_p50_ms", "long-poll pickup p50", since_answer.p50()),
        ("pickup_p99_ms", "long-poll pickup p99", since_answer.p99()),
        ("pickup_max_ms", "long-poll pickup max", since_answer.max()),
    ] {
        outcome.push(Measure::new(key, label, "ms", Better::Lower, value));
    }
    outcome.note(format!(
        "{} no-op tasks enqueued by one insert … select for each drain, in one database: first \
         `seedcore worker` with its defaults; then `seedcore serve` without workers and \
         {PROCESSES} processes of the Python client (clients/python, installed into a virtual \
         environment from the checkout), {DRAIN_CONCURRENCY} handler threads each; rate = \
         tasks / (max(finished_at) − min(started_at)); ratio = pull / built-in",
        ctx.plan.drain_tasks
    ));
    outcome.note(format!(
        "long-poll pickup: one idle client process (4 threads) waiting in its claim; {} tasks \
         POSTed one at a time at ~{}/s; pickup = the handler's start in Python (time.time()) − \
         the arrival of the enqueue's answer; {} of them started before the answer arrived",
        ctx.plan.pickup_tasks,
        ctx.plan.pickup_rate,
        waits.since_answer.iter().filter(|ms| **ms < 0.0).count()
    ));
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_line_gives_its_task_and_moment() {
        let (id, at) =
            parse_start("0b6f4d0e-52f4-4c55-9a1e-8d1d3f3c2a10 1764892800.250000").expect("parsed");
        assert_eq!(id.to_string(), "0b6f4d0e-52f4-4c55-9a1e-8d1d3f3c2a10");
        assert_eq!(at.timestamp_micros(), 1_764_892_800_250_000);
        assert!(parse_start("not a line").is_none());
    }
}
