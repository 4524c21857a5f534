//! W3, API throughput: `POST /api/v1/tasks` and then `GET /api/v1/tasks/{id}` from 64
//! keep-alive connections for a fixed time (each a worker's own, see [`crate::http1`]),
//! against single-row SQL straight into PostgreSQL over as many connections (each the
//! client's own, statements prepared: the strongest per-row client); plus the server's idle
//! and peak memory.
//!
//! `serve` runs its workers with their defaults, so the tasks created are also run while the
//! load lasts; the run fails unless every accepted task completed, and reports how long after
//! the last accepted create the last one finished (as the database recorded both).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hyper::body::Bytes;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    http1::{self, HttpConn},
    load::{LoadResult, closed_loop_owning},
    process::{RssSampler, Seedcore},
    report::{Better, Measure, RunOutcome},
    workloads::{Context, SETTLE, drain, progress},
};

const TASK: &str = r#"{"type":"noop","run_immediately":true}"#;

/// Ids the GET phases pick from.
const ID_SAMPLE: i64 = 10_000;

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    let mut runs = Vec::new();
    for run in 1..=ctx.plan.runs {
        progress(format_args!("w3 run {run}/{}", ctx.plan.runs));
        runs.push(with_database(&ctx.admin, async |db| one_run(ctx, db).await).await?);
    }
    Ok(runs)
}

/// What the seedcore half of a run measured.
struct ApiPhases {
    idle_rss_kib: u64,
    post: LoadResult,
    post_peak_kib: u64,
    /// Seconds from the last create to the last completion.
    drained_after_s: f64,
    get: LoadResult,
    get_peak_kib: u64,
    hwm_kib: u64,
}

/// The SQL half of a run.
struct SqlPhases {
    insert: LoadResult,
    select: LoadResult,
}

async fn one_run(ctx: &Context, db: &BenchDb) -> Result<RunOutcome> {
    let pool = db.pool(ctx.plan.connections as u32).await?;
    let api = api_phases(ctx, db, &pool).await?;
    // seedcore has stopped: the baseline gets the machine to itself, as seedcore had.
    let sql = sql_phases(ctx, db, &pool).await?;
    pool.close().await;
    Ok(outcome(ctx, api, sql))
}

async fn api_phases(ctx: &Context, db: &BenchDb, pool: &PgPool) -> Result<ApiPhases> {
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &[])?;
    let base = serve.wait_for_address().await?;
    tokio::time::sleep(SETTLE).await;
    let idle_rss_kib = serve.memory()?.rss_kib;
    let sampler = RssSampler::start(serve.pid());
    let post = post_tasks(&base, ctx.plan.connections, ctx.plan.api_duration)
        .await?
        .require_success("POST /api/v1/tasks")?;
    let post_peak_kib = sampler.stop();
    let drained_after_s = drained_after(pool, &mut serve).await?;

    let ids = sample_ids(pool, "select id from tasks limit $1").await?;
    let sampler = RssSampler::start(serve.pid());
    let get = get_tasks(&base, ids, ctx.plan.connections, ctx.plan.api_duration)
        .await?
        .require_success("GET /api/v1/tasks/{id}")?;
    let get_peak_kib = sampler.stop();
    let hwm_kib = serve.memory()?.hwm_kib;
    serve.ensure_running()?;
    Ok(ApiPhases {
        idle_rss_kib,
        post,
        post_peak_kib,
        drained_after_s,
        get,
        get_peak_kib,
        hwm_kib,
    })
}

async fn post_tasks(base: &str, connections: usize, duration: Duration) -> Result<LoadResult> {
    let path = http1::path("/api/v1/tasks")?;
    let conns = HttpConn::open_many(base, connections).await?;
    let body = Bytes::from_static(TASK.as_bytes());
    Ok(closed_loop_owning(conns, duration, move |mut conn, _, _| {
        let (path, body) = (path.clone(), body.clone());
        async move {
            let done = conn.post_json(&path, body).await;
            (conn, done)
        }
    })
    .await)
}

async fn get_tasks(
    base: &str,
    ids: Vec<Uuid>,
    connections: usize,
    duration: Duration,
) -> Result<LoadResult> {
    let paths = ids
        .iter()
        .map(|id| http1::path(&format!("/api/v1/tasks/{id}")))
        .collect::<Result<Vec<_>>>()?;
    let paths = Arc::new(paths);
    let conns = HttpConn::open_many(base, connections).await?;
    Ok(
        closed_loop_owning(conns, duration, move |mut conn, worker, i| {
            let paths = paths.clone();
            async move {
                let done = conn.get(&paths[spread(worker, i, paths.len())]).await;
                (conn, done)
            }
        })
        .await,
    )
}

/// An index into `len` items that differs between workers and iterations.
fn spread(worker: usize, iteration: u64, len: usize) -> usize {
    ((worker as u64 * 7_919 + iteration * 104_729) % len as u64) as usize
}

/// Longest wait for the tasks created to be run once the load has ended.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// Waits until nothing created is left to run, then returns the seconds from the last create
/// to the last completion; fails unless every task completed.
async fn drained_after(pool: &PgPool, serve: &mut Seedcore) -> Result<f64> {
    let started = Instant::now();
    loop {
        // Each count is served by a partial index, so polling stays cheap.
        let left = drain::tasks_left(pool).await?;
        if left == 0 {
            break;
        }
        if started.elapsed() > DRAIN_LIMIT {
            return Err(Error::new(format!(
                "{left} tasks still to run {DRAIN_LIMIT:?} after the load; serve log:\n{}",
                serve.log_tail(30)
            )));
        }
        serve.ensure_running()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (unfinished, seconds): (i64, Option<f64>) = sqlx::query_as(
        r"select count(*) filter (where status <> 'completed'),
                 extract(epoch from max(finished_at) - max(created_at))::float8
          from all_tasks",
    )
    .fetch_one(pool)
    .await
    .context("read the last create and completion")?;
    match (unfinished, seconds) {
        (0, Some(seconds)) => Ok(seconds.max(0.0)),
        _ => Err(Error::new(format!(
            "{unfinished} tasks created under load did not complete"
        ))),
    }
}

/// Up to ID_SAMPLE ids read by `sql` (`select id from … limit $1`).
async fn sample_ids(pool: &PgPool, sql: &'static str) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(ID_SAMPLE)
        .fetch_all(pool)
        .await
        .context(format_args!("read ids ({sql})"))?;
    if ids.is_empty() {
        return Err(Error::new(format!("no rows to read back ({sql})")));
    }
    Ok(ids)
}

/// Single-row inserts into a plain copy of `tasks` (same columns and indexes, no triggers),
/// then primary-key reads of those rows, over the same number of connections, each a
/// connection of its own with its statements prepared.
async fn sql_phases(ctx: &Context, db: &BenchDb, pool: &PgPool) -> Result<SqlPhases> {
    sqlx::raw_sql("create table bench_plain_tasks (like tasks including all)")
        .execute(pool)
        .await
        .context("create the plain tasks table")?;
    let conns = db.connections(ctx.plan.connections).await?;
    let insert = closed_loop_owning(conns, ctx.plan.api_duration, |mut conn, _, _| async {
        let done = sqlx::query(
            r"insert into bench_plain_tasks (id, type, status) values ($1, 'noop', 'queued')",
        )
        .bind(Uuid::new_v4())
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(|err| err.to_string());
        (conn, done)
    })
    .await
    .require_success("insert into the plain table")?;

    let ids = Arc::new(sample_ids(pool, "select id from bench_plain_tasks limit $1").await?);
    let conns = db.connections(ctx.plan.connections).await?;
    let select = closed_loop_owning(
        conns,
        ctx.plan.api_duration,
        move |mut conn: PgConnection, worker, i| {
            let id = ids[spread(worker, i, ids.len())];
            async move {
                let done = sqlx::query("select * from bench_plain_tasks where id = $1")
                    .bind(id)
                    .fetch_one(&mut conn)
                    .await
                    .map(drop)
                    .map_err(|err| err.to_string());
                (conn, done)
            }
        },
    )
    .await
    .require_success("select from the plain table")?;
    Ok(SqlPhases { insert, select })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn outcome(ctx: &Context, api: ApiPhases, sql: SqlPhases) -> RunOutcome {
    let mut out = RunOutcome::default();
    let (post, get, insert, select) = (&api.post, &api.get, &sql.insert, &sql.select);
    out.push(
        Measure::new(
            "post_rps",
            "POST /tasks",
            "req/s",
            Better::Higher,
            post.rate(),
        )
        .against("sql_insert_rps", "SQL insert", insert.rate()),
    );
    out.push(
        Measure::new(
            "post_p50_ms",
            "POST p50",
            "ms",
            Better::Lower,
            post.latencies.p50(),
        )
        .against(
            "sql_insert_p50_ms",
            "SQL insert p50",
            insert.latencies.p50(),
        ),
    );
    out.push(
        Measure::new(
            "post_p99_ms",
            "POST p99",
            "ms",
            Better::Lower,
            post.latencies.p99(),
        )
        .against(
            "sql_insert_p99_ms",
            "SQL insert p99",
            insert.latencies.p99(),
        ),
    );
    out.push(Measure::new(
        "drained_after_s",
        "last completion after the last create",
        "s",
        Better::Lower,
        api.drained_after_s,
    ));
    out.push(
        Measure::new(
            "get_rps",
            "GET /tasks/{id}",
            "req/s",
            Better::Higher,
            get.rate(),
        )
        .against("sql_select_rps", "SQL select by id", select.rate()),
    );
    out.push(
        Measure::new(
            "get_p50_ms",
            "GET p50",
            "ms",
            Better::Lower,
            get.latencies.p50(),
        )
        .against(
            "sql_select_p50_ms",
            "SQL select p50",
            select.latencies.p50(),
        ),
    );
    out.push(
        Measure::new(
            "get_p99_ms",
            "GET p99",
            "ms",
            Better::Lower,
            get.latencies.p99(),
        )
        .against(
            "sql_select_p99_ms",
            "SQL select p99",
            select.latencies.p99(),
        ),
    );
    let memory = [
        ("rss_idle_mib", "serve RSS idle", api.idle_rss_kib),
        (
            "rss_peak_post_mib",
            "serve RSS peak, POST",
            api.post_peak_kib,
        ),
        ("rss_peak_get_mib", "serve RSS peak, GET", api.get_peak_kib),
        // VmHWM is kept lazily by the kernel and can lag a sample taken between its updates.
        (
            "rss_peak_mib",
            "serve RSS peak",
            api.hwm_kib.max(api.post_peak_kib).max(api.get_peak_kib),
        ),
    ];
    for (key, label, kib) in memory {
        out.push(Measure::new(key, label, "MiB", Better::Lower, mib(kib)));
    }
    out.note(format!(
        "{} connections for {:?} per phase, each a keep-alive HTTP/1.1 connection of the load \
         generator's own (no client pool); `seedcore serve` ran with its default workers, \
         which run the tasks while they are created; the load generator shares the machine \
         with the server and PostgreSQL",
        ctx.plan.connections, ctx.plan.api_duration
    ));
    out.note(
        "baseline: single-row `insert` (one statement each) and primary-key `select *` on a \
         plain copy of tasks (same indexes, no triggers) straight into PostgreSQL over as many \
         connections, each a prepared client's own (no pool), after seedcore stopped",
    );
    let notes = [
        post.error_note("POST"),
        get.error_note("GET"),
        insert.error_note("SQL insert"),
        select.error_note("SQL select"),
    ];
    for note in notes.into_iter().flatten() {
        out.note(note);
    }
    out
}
