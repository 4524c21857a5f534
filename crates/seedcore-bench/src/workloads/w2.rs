//! W2, pickup latency: with `seedcore serve` idle, tasks enqueued one at a time through the API
//! at a steady rate; the figure is how long each waited between its insert and its claim, both
//! stamped by the database server's clock (`started_at − created_at`).

use std::time::Duration;

use sqlx::PgPool;

use crate::{
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    load::{expect_ok, http_client},
    process::Seedcore,
    report::{Better, Measure, RunOutcome},
    stats::Latencies,
    workloads::{Context, SETTLE, progress},
};

const TASK: &str = r#"{"type":"noop","run_immediately":true}"#;

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    let mut runs = Vec::new();
    for run in 1..=ctx.plan.runs {
        progress(format_args!("w2 run {run}/{}", ctx.plan.runs));
        runs.push(with_database(&ctx.admin, async |db| one_run(ctx, db).await).await?);
    }
    Ok(runs)
}

async fn one_run(ctx: &Context, db: &BenchDb) -> Result<RunOutcome> {
    let count = ctx.plan.pickup_tasks;
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &[])?;
    let base = serve.wait_for_address().await?;
    // Let the workers make their first (empty) claim and go idle on their wake-ups.
    tokio::time::sleep(SETTLE).await;
    let pool = db.pool(2).await?;
    enqueue_steadily(&base, count, ctx.plan.pickup_rate).await?;
    wait_until_started(&pool, count, &mut serve).await?;
    let waits = pickup_waits(&pool).await?;
    pool.close().await;
    drop(serve);

    let mut outcome = RunOutcome::default();
    outcome.push(Measure::new(
        "pickup_p50_ms",
        "pickup p50",
        "ms",
        Better::Lower,
        waits.p50(),
    ));
    outcome.push(Measure::new(
        "pickup_p99_ms",
        "pickup p99",
        "ms",
        Better::Lower,
        waits.p99(),
    ));
    outcome.push(Measure::new(
        "pickup_max_ms",
        "pickup max",
        "ms",
        Better::Lower,
        waits.max(),
    ));
    outcome.note(format!(
        "{count} noop tasks, one POST /api/v1/tasks (run_immediately) at a time at ~{} per \
         second, to `seedcore serve` with default settings; pickup = started_at − created_at, \
         both from the database server's clock (created_at is the insert's transaction time, \
         just before its commit). No baseline: the figure is compared with its target",
        ctx.plan.pickup_rate
    ));
    Ok(outcome)
}

/// Sends the tasks one after another, one every 1/rate seconds.
async fn enqueue_steadily(base: &str, count: usize, rate: f64) -> Result<()> {
    let client = http_client()?;
    let url = format!("{base}/api/v1/tasks");
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..count {
        ticks.tick().await;
        let request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(TASK);
        expect_ok(request)
            .await
            .map_err(|err| Error::new(format!("POST /api/v1/tasks failed: {err}")))?;
    }
    Ok(())
}

/// Waits until every task has been claimed.
async fn wait_until_started(pool: &PgPool, count: usize, serve: &mut Seedcore) -> Result<()> {
    for _ in 0..600 {
        let started: i64 =
            sqlx::query_scalar("select count(*) from tasks where started_at is not null")
                .fetch_one(pool)
                .await
                .context("count the started tasks")?;
        if started as usize >= count {
            return Ok(());
        }
        serve.ensure_running()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::new(format!(
        "not all {count} tasks started within 60 s; serve log:\n{}",
        serve.log_tail(30)
    )))
}

async fn pickup_waits(pool: &PgPool) -> Result<Latencies> {
    let waits: Vec<f64> = sqlx::query_scalar(
        r"select (extract(epoch from started_at - created_at) * 1000)::float8
          from tasks where started_at is not null",
    )
    .fetch_all(pool)
    .await
    .context("read the pickup times")?;
    Ok(Latencies::new(waits))
}
