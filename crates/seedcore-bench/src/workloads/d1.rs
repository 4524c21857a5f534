//! D1, the dashboard's task list at history scale: the Tasks page and each request for its data
//! (the default page, a status, a type, a parameter's value, a search in errors, the next page),
//! sent one after another to `serve`, first with only a recent hot set of tasks, then after N
//! finished tasks were loaded into the history. The figure is each request's p50/p99 with the
//! history loaded, beside the same request without it. The target is under 300 ms with 10
//! million rows in the history.

use serde_json::Value;
use sqlx::PgPool;

use crate::{
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    load::{expect_ok, http_client, sequential},
    report::{Better, Measure, RunOutcome},
    stats::Latencies,
    workloads::{Context, history},
};

/// Unmeasured requests of each kind before a measurement (the pool opens its connections).
const WARM_UP: usize = 10;
/// Tasks in the hot table, finished a moment ago, both with and without the history.
const HOT_TASKS: i64 = 1_000;
/// Rows per page, as the dashboard asks.
const PAGE: usize = 50;

/// One request the dashboard makes, and its figures' keys and labels.
struct Request {
    /// Key, label and baseline key of each figure.
    p50: (&'static str, &'static str, &'static str),
    p99: (&'static str, &'static str, &'static str),
    /// The path and query, after the base URL; `{cursor}` is the default page's next cursor.
    path: &'static str,
}

/// A [`Request`] with keys `<key>_p50`, `<key>_p99` (the baselines add `_hot`).
macro_rules! request {
    ($key:literal, $label:literal, $path:expr) => {
        Request {
            p50: (
                concat!($key, "_p50"),
                concat!($label, " p50"),
                concat!($key, "_p50_hot"),
            ),
            p99: (
                concat!($key, "_p99"),
                concat!($label, " p99"),
                concat!($key, "_p99_hot"),
            ),
            path: $path,
        }
    };
}

const REQUESTS: [Request; 7] = [
    request!("page", "Tasks page", "/ui/tasks"),
    request!(
        "list",
        "default list",
        "/api/v1/tasks?limit=50&count=estimate"
    ),
    request!(
        "next",
        "next page",
        "/api/v1/tasks?limit=50&count=estimate&cursor={cursor}"
    ),
    request!(
        "status",
        "status=failed",
        "/api/v1/tasks?limit=50&count=estimate&status=failed"
    ),
    request!(
        "type",
        "type=report",
        "/api/v1/tasks?limit=50&count=estimate&type=report"
    ),
    request!(
        "param",
        "params.customer_id=42",
        "/api/v1/tasks?limit=50&count=estimate&params.customer_id=42"
    ),
    request!(
        "search",
        "q=gateway (errors)",
        "/api/v1/tasks?limit=50&count=estimate&q=gateway"
    ),
];

/// Finished tasks shaped as a dashboard sees them: four types, one in twenty failed with an
/// error naming a gateway, parameters with a customer among 100,000 and an order number,
/// finished over the past weeks (rows `$1..=$2`).
const HISTORY_ROWS: &str = r#"insert into task_history (id, type, status, queue, params, result, error,
                                 attempts, created_at, updated_at, run_at, started_at,
                                 finished_at, worker_id)
       select gen_random_uuid(), (array['email', 'report', 'sync', 'noop'])[g % 4 + 1],
              case when g % 20 = 0 then 'failed' else 'completed' end,
              'd1-' || (g % 5),
              jsonb_build_object('customer_id', g % 100000, 'order', g),
              case when g % 20 = 0 then null else '{"success": true}'::jsonb end,
              case when g % 20 = 0 then 'gateway timeout after 30 s (order ' || g || ')' end,
              1, ts, ts, ts, ts, ts, 'bench-history'
       from (select g, now() - interval '10 minutes' - g * interval '250 ms' as ts
             from generate_series($1::bigint, $2::bigint) g) s"#;

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    with_database(&ctx.admin, async |db| all_runs(ctx, db).await).await
}

async fn all_runs(ctx: &Context, db: &BenchDb) -> Result<Vec<RunOutcome>> {
    let runs = history::before_and_after(
        ctx,
        db,
        "d1",
        HISTORY_ROWS,
        async |pool| insert_hot(pool).await,
        async |base| measure_all(ctx, base).await,
    )
    .await?;
    let note = notes(ctx, runs.triggers_skipped);
    Ok(runs
        .pairs()
        .map(|(hot, loaded)| outcome(hot, loaded, &note))
        .collect())
}

/// [`HOT_TASKS`] tasks of the history's shape, finished within the last minute.
async fn insert_hot(pool: &PgPool) -> Result<()> {
    sqlx::query(
        r#"insert into tasks (id, type, status, queue, params, error, attempts, created_at,
                              updated_at, run_at, started_at, finished_at)
           select gen_random_uuid(), (array['email', 'report', 'sync', 'noop'])[g % 4 + 1],
                  case when g % 20 = 0 then 'failed' else 'completed' end, 'd1-' || (g % 5),
                  jsonb_build_object('customer_id', g % 100000, 'order', g),
                  case when g % 20 = 0 then 'gateway timeout after 30 s' end,
                  1, ts, ts, ts, ts, ts
           from (select g, now() - g * interval '50 ms' as ts
                 from generate_series(1, $1::bigint) g) s"#,
    )
    .bind(HOT_TASKS)
    .execute(pool)
    .await
    .context("insert the hot tasks")?;
    Ok(())
}

/// Every request of [`REQUESTS`], measured in turn.
async fn measure_all(ctx: &Context, base: &str) -> Result<Vec<Latencies>> {
    let client = http_client()?;
    let cursor = next_cursor(&client, base).await?;
    let mut all = Vec::with_capacity(REQUESTS.len());
    for request in &REQUESTS {
        let url = format!("{base}{}", request.path.replace("{cursor}", &cursor));
        all.push(measure(&client, &url, ctx.plan.list_requests).await?);
    }
    Ok(all)
}

/// The default page's `next_cursor`: the "next page" request continues from it.
async fn next_cursor(client: &reqwest::Client, base: &str) -> Result<String> {
    let url = format!("{base}{}", REQUESTS[1].path);
    let body = expect_ok(client.get(&url))
        .await
        .map_err(|err| Error::new(format!("GET {url}: {err}")))?;
    let page: Value = serde_json::from_slice(&body).context("read the task list")?;
    let items = page["items"].as_array().map_or(0, Vec::len);
    match page["next_cursor"].as_str() {
        Some(cursor) if items == PAGE => Ok(cursor.to_owned()),
        _ => Err(Error::new(format!(
            "GET {url}: a full page with a next_cursor expected, got {items} items"
        ))),
    }
}

async fn measure(client: &reqwest::Client, url: &str, count: usize) -> Result<Latencies> {
    for _ in 0..WARM_UP {
        get(client, url).await?;
    }
    sequential(count, |_| get(client, url)).await
}

async fn get(client: &reqwest::Client, url: &str) -> Result<()> {
    expect_ok(client.get(url))
        .await
        .map(drop)
        .map_err(|err| Error::new(format!("GET {url}: {err}")))
}

fn outcome(hot: &[Latencies], loaded: &[Latencies], note: &str) -> RunOutcome {
    let mut out = RunOutcome::default();
    for ((request, hot), loaded) in REQUESTS.iter().zip(hot).zip(loaded) {
        let (p50, p99) = (request.p50, request.p99);
        out.push(
            Measure::new(p50.0, p50.1, "ms", Better::Lower, loaded.p50()).against(
                p50.2,
                "hot tasks only",
                hot.p50(),
            ),
        );
        out.push(
            Measure::new(p99.0, p99.1, "ms", Better::Lower, loaded.p99()).against(
                p99.2,
                "hot tasks only",
                hot.p99(),
            ),
        );
    }
    out.note(note);
    out
}

fn notes(ctx: &Context, triggers_skipped: bool) -> String {
    let plan = &ctx.plan;
    format!(
        "{} sequential requests of each kind (after {WARM_UP} unmeasured) to `serve` \
         (SEEDCORE_WORKER_CONCURRENCY=0, no tokens); hot = {HOT_TASKS} finished tasks in the \
         hot table only; loaded = after {} finished tasks (one in 20 failed) were inserted \
         into task_history ({}) and `vacuum (analyze)`; target: under 300 ms at 10,000,000 \
         rows; ratio = loaded / hot",
        plan.list_requests,
        plan.m1_rows,
        history::how_loaded(triggers_skipped),
    )
}
