//! M1, scrape latency: sequential `GET /metrics` to `serve` with a backlog of ready tasks in a
//! few queues, measured with an empty history and again after N finished tasks were loaded
//! into it; the figure is the loaded p50/p99 and its ratio to the empty one. The target is a
//! scrape under 50 ms with 10 million rows in the history.

use sqlx::PgPool;

use crate::{
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    load::{expect_ok, http_client, sequential},
    report::{Better, Measure, RunOutcome},
    stats::Latencies,
    workloads::{Context, history},
};

/// Unmeasured scrapes before each measurement. Back-to-back statements outrun the pool's
/// return of connections, so the first few dozen scrapes after a start open new connections
/// (about 100 ms each here) until the pool holds enough: a start-up cost, not a scrape's.
const WARM_UP: usize = 50;
/// Queues the ready backlog is spread over, so the per-queue gauges have several series.
const QUEUES: i64 = 10;

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    with_database(&ctx.admin, async |db| all_runs(ctx, db).await).await
}

async fn all_runs(ctx: &Context, db: &BenchDb) -> Result<Vec<RunOutcome>> {
    // `serve` runs no workers: the backlog stays ready, as a queue that is behind.
    let runs = history::before_and_after(
        ctx,
        db,
        "m1",
        HISTORY_ROWS,
        async |pool| enqueue_backlog(pool, ctx.plan.m1_ready).await,
        async |base| scrapes(ctx, base).await,
    )
    .await?;
    let note = notes(ctx, runs.triggers_skipped);
    Ok(runs
        .pairs()
        .map(|(empty, loaded)| outcome(empty, loaded, &note))
        .collect())
}

/// `plan.scrape_requests` scrapes one after another, after [`WARM_UP`] unmeasured ones; each
/// must answer 200 with the families.
async fn scrapes(ctx: &Context, base: &str) -> Result<Latencies> {
    let client = http_client()?;
    let url = format!("{base}/metrics");
    for _ in 0..WARM_UP {
        expect_ok(client.get(&url))
            .await
            .map_err(|err| Error::new(format!("GET /metrics: {err}")))?;
    }
    sequential(ctx.plan.scrape_requests, |_| {
        let request = client.get(&url);
        async move {
            let body = expect_ok(request)
                .await
                .map_err(|err| Error::new(format!("GET /metrics: {err}")))?;
            if !String::from_utf8_lossy(&body).contains("seedcore_tasks{") {
                return Err(Error::new("GET /metrics: no seedcore_tasks series"));
            }
            Ok(())
        }
    })
    .await
}

/// `count` queued noop tasks over [`QUEUES`] queues, due a minute ago.
async fn enqueue_backlog(pool: &PgPool, count: i64) -> Result<()> {
    sqlx::query(
        r"insert into tasks (id, type, status, queue, run_at)
          select gen_random_uuid(), 'noop', 'queued', 'm1-' || (g % $2),
                 now() - interval '1 minute'
          from generate_series(1, $1::bigint) g",
    )
    .bind(count)
    .bind(QUEUES)
    .execute(pool)
    .await
    .context("enqueue the ready backlog")?;
    Ok(())
}

/// Rows `$1..=$2`, spread over the [`QUEUES`] queues of the backlog, finished over the past
/// weeks.
const HISTORY_ROWS: &str = r#"insert into task_history (id, type, status, queue, result, attempts, created_at,
                                 updated_at, run_at, started_at, finished_at, worker_id)
       select gen_random_uuid(), 'noop', 'completed', 'm1-' || (g % 10),
              '{"success": true, "path": "fast", "handler": "noop", "result": {}}',
              1, ts, ts, ts, ts, ts, 'bench-history'
       from (select g, now() - interval '10 minutes' - g * interval '250 ms' as ts
             from generate_series($1::bigint, $2::bigint) g) s"#;

fn outcome(empty: &Latencies, loaded: &Latencies, note: &str) -> RunOutcome {
    let mut out = RunOutcome::default();
    out.push(
        Measure::new(
            "scrape_p50_loaded",
            "scrape p50, loaded",
            "ms",
            Better::Lower,
            loaded.p50(),
        )
        .against("scrape_p50_empty", "scrape p50, empty", empty.p50()),
    );
    out.push(
        Measure::new(
            "scrape_p99_loaded",
            "scrape p99, loaded",
            "ms",
            Better::Lower,
            loaded.p99(),
        )
        .against("scrape_p99_empty", "scrape p99, empty", empty.p99()),
    );
    out.note(note);
    out
}

fn notes(ctx: &Context, triggers_skipped: bool) -> String {
    let plan = &ctx.plan;
    format!(
        "{} sequential GET /metrics (after {WARM_UP} unmeasured) to `serve` (SEEDCORE_WORKER_CONCURRENCY=0) with {} ready \
         tasks over {QUEUES} queues; empty = no history; loaded = after {} completed tasks \
         were inserted into task_history ({}) and `vacuum (analyze)`; target: p99 under 50 ms \
         at 10,000,000 rows; ratio = loaded / empty",
        plan.scrape_requests,
        plan.m1_ready,
        plan.m1_rows,
        history::how_loaded(triggers_skipped),
    )
}
