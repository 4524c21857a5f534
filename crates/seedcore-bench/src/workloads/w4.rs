//! W4, scale: W1's drain and `GET /api/v1/tasks?limit=50` measured on a (nearly) empty table,
//! then again after N finished tasks were loaded; the figure is the ratio loaded / empty.

use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool};

use crate::{
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    load::{expect_ok, http_client, sequential},
    process::{Seedcore, db_init},
    report::{Better, Measure, RunOutcome},
    stats::Latencies,
    workloads::{Context, SETTLE, Table, drain, progress, vacuum_analyze},
};

/// History rows per insert statement: big enough to be a bulk load, small enough to show
/// progress and keep each transaction's transition tables modest.
const LOAD_CHUNK: i64 = 1_000_000;

/// One state's measurements.
struct Phase {
    drain_rate: f64,
    list: Latencies,
}

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    with_database(&ctx.admin, async |db| all_runs(ctx, db).await).await
}

/// Both states share one database: the empty measurements first, then the load, then the
/// loaded ones, each `runs` times.
async fn all_runs(ctx: &Context, db: &BenchDb) -> Result<Vec<RunOutcome>> {
    let plan = &ctx.plan;
    db_init(&ctx.seedcore, &db.url).await?;
    let pool = db.pool(4).await?;
    // API only: a worker inside `serve` would join the drains and muddle them.
    let env = [("SEEDCORE_WORKER_CONCURRENCY", "0")];
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &env)?;
    let base = serve.wait_for_address().await?;
    tokio::time::sleep(SETTLE).await;

    let mut empty = Vec::new();
    for run in 1..=plan.runs {
        progress(format_args!("w4 empty table, run {run}/{}", plan.runs));
        empty.push(phase(ctx, db, &pool, &base, &format!("w4-empty-{run}")).await?);
    }
    progress(format_args!("w4 loading {} finished tasks", plan.w4_rows));
    let mut load = load_history(db, plan.w4_rows).await?;
    load.moved = catch_up(&pool).await?;
    vacuum_analyze(&pool, Table::Tasks).await?;
    // The load and the vacuum dirtied gigabytes; without a checkpoint their write-back falls
    // into the loaded measurements. Best effort: the role may lack the right.
    load.checkpointed = sqlx::raw_sql("checkpoint").execute(&pool).await.is_ok();
    let mut loaded = Vec::new();
    for run in 1..=plan.runs {
        progress(format_args!("w4 loaded table, run {run}/{}", plan.runs));
        loaded.push(phase(ctx, db, &pool, &base, &format!("w4-loaded-{run}")).await?);
    }
    serve.ensure_running()?;
    drop(serve);
    pool.close().await;
    Ok(outcomes(ctx, empty, loaded, load))
}

/// A drain of `plan.drain_tasks` by a fresh `seedcore worker`, then the list latency.
async fn phase(
    ctx: &Context,
    db: &BenchDb,
    pool: &PgPool,
    base: &str,
    batch: &str,
) -> Result<Phase> {
    let count = ctx.plan.drain_tasks;
    drain::enqueue(pool, count, batch).await?;
    let drain_rate = drain::drain_with_worker(ctx, &db.url, pool, count, batch).await?;
    let client = http_client()?;
    let url = format!("{base}/api/v1/tasks?limit=50");
    let list = sequential(ctx.plan.list_requests, |_| {
        let request = client.get(&url);
        async move {
            expect_ok(request)
                .await
                .map(drop)
                .map_err(|err| Error::new(format!("GET /api/v1/tasks?limit=50: {err}")))
        }
    })
    .await?;
    Ok(Phase { drain_rate, list })
}

/// What the history load did.
struct Load {
    rows: i64,
    rate: f64,
    triggers_skipped: bool,
    /// The empty phase's tasks moved to the history after the load: how many, and per second.
    moved: (i64, f64),
    /// Whether a checkpoint wrote the load back before the loaded measurements.
    checkpointed: bool,
}

/// Moves every task finished so far (the empty phase's) into the history at once, as
/// housekeeping does five minutes after they finish, and times it. Left to housekeeping, the
/// move would fall into a loaded measurement or not depending on how long the load took.
async fn catch_up(pool: &PgPool) -> Result<(i64, f64)> {
    let started = Instant::now();
    let moved: i64 = sqlx::query_scalar("select seedcore_archive(now(), 1000000000)")
        .fetch_one(pool)
        .await
        .context("move the finished tasks to the history")?;
    Ok((moved, moved as f64 / started.elapsed().as_secs_f64()))
}

/// Inserts `rows` completed `noop` tasks, created over the past weeks, by `insert … select
/// generate_series` in chunks, into the history table, where housekeeping keeps every task
/// that finished more than a few minutes ago. The load skips the statement triggers where the
/// role may (the counters are rebuilt once after it).
async fn load_history(db: &BenchDb, rows: i64) -> Result<Load> {
    let mut conn = db.connect().await?;
    let triggers_skipped = sqlx::raw_sql("set session_replication_role = replica")
        .execute(&mut conn)
        .await
        .is_ok();
    let started = Instant::now();
    let mut first = 1;
    while first <= rows {
        let last = (first + LOAD_CHUNK - 1).min(rows);
        insert_history(&mut conn, rows, first, last).await?;
        progress(format_args!("w4 loaded {last} of {rows}"));
        first = last + 1;
    }
    if triggers_skipped {
        // The statement triggers keep seedcore's counters; rows loaded without them are
        // counted in once, as an operator would after such a load.
        sqlx::query("select seedcore_recount()")
            .execute(&mut conn)
            .await
            .context("recount the loaded tasks")?;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    conn.close().await.ok();
    Ok(Load {
        rows,
        rate,
        triggers_skipped,
        moved: (0, 0.0),
        checkpointed: false,
    })
}

/// Rows `first..=last` of `total`, 250 ms apart, the newest ten minutes old (older than the
/// default `SEEDCORE_ARCHIVE_AFTER_SECONDS`).
async fn insert_history(conn: &mut PgConnection, total: i64, first: i64, last: i64) -> Result<()> {
    sqlx::query(
        r#"insert into task_history (id, type, status, result, attempts, created_at, updated_at,
                                     run_at, started_at, finished_at, worker_id, domain)
           select gen_random_uuid(), 'noop', 'completed',
                  '{"success": true, "path": "fast", "handler": "noop", "result": {}}',
                  1, ts, ts + interval '3 ms', ts, ts + interval '1 ms', ts + interval '3 ms',
                  'bench-history', 'w4-history'
           from (select now() - interval '10 minutes' - ($1 - g) * interval '250 ms' as ts
                 from generate_series($2::bigint, $3::bigint) g) s"#,
    )
    .bind(total)
    .bind(first)
    .bind(last)
    .execute(conn)
    .await
    .context("load finished tasks")?;
    Ok(())
}

fn outcomes(ctx: &Context, empty: Vec<Phase>, loaded: Vec<Phase>, load: Load) -> Vec<RunOutcome> {
    let mut runs = Vec::new();
    for (i, (empty, loaded)) in empty.iter().zip(&loaded).enumerate() {
        let mut out = RunOutcome::default();
        out.push(
            Measure::new(
                "drain_loaded",
                "drain, loaded",
                "tasks/s",
                Better::Higher,
                loaded.drain_rate,
            )
            .against("drain_empty", "drain, empty", empty.drain_rate),
        );
        out.push(
            Measure::new(
                "list_p50_loaded",
                "list p50, loaded",
                "ms",
                Better::Lower,
                loaded.list.p50(),
            )
            .against("list_p50_empty", "list p50, empty", empty.list.p50()),
        );
        out.push(
            Measure::new(
                "list_p99_loaded",
                "list p99, loaded",
                "ms",
                Better::Lower,
                loaded.list.p99(),
            )
            .against("list_p99_empty", "list p99, empty", empty.list.p99()),
        );
        if i == 0 {
            out.push(Measure::new(
                "history_load",
                "history load",
                "rows/s",
                Better::Higher,
                load.rate,
            ));
            out.push(Measure::new(
                "history_move",
                "move to history",
                "tasks/s",
                Better::Higher,
                load.moved.1,
            ));
        }
        out.note(notes(ctx, &load));
        runs.push(out);
    }
    runs
}

fn notes(ctx: &Context, load: &Load) -> String {
    let plan = &ctx.plan;
    format!(
        "drain: {} noop tasks by a fresh `seedcore worker` (default settings); list: {} \
         sequential GET /api/v1/tasks?limit=50 to `serve` (SEEDCORE_WORKER_CONCURRENCY=0). \
         empty = the tables hold only the drained batches ({} per run so far); loaded = after \
         {} completed tasks were inserted into task_history, where housekeeping keeps tasks \
         finished over 5 minutes ago ({}), the empty phase's {} tasks moved there as \
         housekeeping would (`move to history`), `vacuum (analyze)` and {}; ratio = loaded / \
         empty",
        plan.drain_tasks,
        plan.list_requests,
        plan.drain_tasks,
        load.rows,
        if load.triggers_skipped {
            "triggers skipped for the load (counters rebuilt with seedcore_recount() after it)"
        } else {
            "with the statement triggers"
        },
        load.moved.0,
        match load.checkpointed {
            true => "a checkpoint",
            false => "no checkpoint (not allowed to this role)",
        },
    )
}
