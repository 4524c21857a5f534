//! The workloads measured at history scale (M1, D1): the same measurement against `serve`
//! before and after millions of finished tasks are loaded into `task_history`, which is done
//! quickly by `insert … select generate_series` in chunks, with the statement triggers skipped
//! where the role may (the per-status counters are then rebuilt once).

use sqlx::{Connection, PgConnection, PgPool};

use crate::{
    db::BenchDb,
    error::{Context as _, Result},
    process::{Seedcore, db_init},
    workloads::{Context, SETTLE, Table, progress, vacuum_analyze},
};

/// One measurement per run before the history was loaded, and one per run after.
pub struct BeforeAndAfter<T> {
    pub before: Vec<T>,
    pub after: Vec<T>,
    /// Whether the load skipped the triggers (see [`how_loaded`]).
    pub triggers_skipped: bool,
}

impl<T> BeforeAndAfter<T> {
    /// Each run's measurement before the load beside the same run's after it.
    pub fn pairs(&self) -> impl Iterator<Item = (&T, &T)> {
        self.before.iter().zip(&self.after)
    }
}

/// A fresh database seeded by `prepare`, `serve` on it with no workers (so what `prepare` left
/// stays as it is), `measure` run `plan.runs` times against its base URL; then `plan.m1_rows`
/// history rows loaded by `insert`, `vacuum (analyze)`, and `measure` as many times again.
pub async fn before_and_after<T>(
    ctx: &Context,
    db: &BenchDb,
    label: &str,
    insert: &'static str,
    prepare: impl AsyncFnOnce(&PgPool) -> Result<()>,
    measure: impl AsyncFn(&str) -> Result<T>,
) -> Result<BeforeAndAfter<T>> {
    let plan = &ctx.plan;
    db_init(&ctx.seedcore, &db.url).await?;
    let pool = db.pool(4).await?;
    prepare(&pool).await?;
    let env = [("SEEDCORE_WORKER_CONCURRENCY", "0")];
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &env)?;
    let base = serve.wait_for_address().await?;
    tokio::time::sleep(SETTLE).await;
    let mut before = Vec::new();
    for run in 1..=plan.runs {
        progress(format_args!(
            "{label} before the history, run {run}/{}",
            plan.runs
        ));
        before.push(measure(&base).await?);
    }
    progress(format_args!(
        "{label} loading {} finished tasks",
        plan.m1_rows
    ));
    let triggers_skipped = load(db, plan.m1_rows, insert, label).await?;
    vacuum_analyze(&pool, Table::Tasks).await?;
    let mut after = Vec::new();
    for run in 1..=plan.runs {
        progress(format_args!(
            "{label} history loaded, run {run}/{}",
            plan.runs
        ));
        after.push(measure(&base).await?);
    }
    serve.ensure_running()?;
    drop(serve);
    pool.close().await;
    Ok(BeforeAndAfter {
        before,
        after,
        triggers_skipped,
    })
}

/// History rows per insert statement.
const LOAD_CHUNK: i64 = 1_000_000;

/// Runs `insert` (an `insert into task_history … select … from generate_series($1, $2)`) over
/// rows `1..=rows` in chunks. Returns whether the triggers were skipped.
pub async fn load(db: &BenchDb, rows: i64, insert: &'static str, label: &str) -> Result<bool> {
    let mut conn = db.connect().await?;
    let triggers_skipped = sqlx::raw_sql("set session_replication_role = replica")
        .execute(&mut conn)
        .await
        .is_ok();
    let mut first = 1;
    while first <= rows {
        let last = (first + LOAD_CHUNK - 1).min(rows);
        insert_chunk(&mut conn, insert, first, last).await?;
        progress(format_args!("{label} loaded {last} of {rows}"));
        first = last + 1;
    }
    if triggers_skipped {
        sqlx::query("select seedcore_recount()")
            .execute(&mut conn)
            .await
            .context("recount the loaded tasks")?;
    }
    conn.close().await.ok();
    Ok(triggers_skipped)
}

async fn insert_chunk(
    conn: &mut PgConnection,
    insert: &'static str,
    first: i64,
    last: i64,
) -> Result<()> {
    sqlx::query(insert)
        .bind(first)
        .bind(last)
        .execute(conn)
        .await
        .context("load finished tasks")?;
    Ok(())
}

/// How a note names the way the rows were loaded.
pub fn how_loaded(triggers_skipped: bool) -> &'static str {
    if triggers_skipped {
        "triggers skipped, counters rebuilt with seedcore_recount()"
    } else {
        "with the statement triggers"
    }
}
