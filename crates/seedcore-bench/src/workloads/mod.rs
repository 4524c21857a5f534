//! The workloads of docs/benchmarks.md, one module each, and what they share: the context they run
//! in and the progress lines they print on stderr.

mod d1;
mod drain;
mod f1;
mod history;
mod m1;
mod m2;
mod per_row;
mod w1;
mod w2;
mod w3;
mod w4;
mod w5;

use std::{path::PathBuf, time::Duration};

use sqlx::PgPool;

use crate::{
    cli::{Plan, Workload},
    db::Admin,
    error::{Context as _, Result},
    report::Report,
};

/// What every workload needs: where to create databases, what to start, how big to go.
pub struct Context {
    pub admin: Admin,
    pub seedcore: PathBuf,
    pub plan: Plan,
    /// Where the peers' scripts are, when not found beside the repository.
    pub peers_dir: Option<PathBuf>,
}

/// Runs one workload `plan.runs` times and summarises the runs.
pub async fn run(workload: Workload, ctx: &Context) -> Result<Report> {
    let runs = match workload {
        Workload::W1 => w1::run(ctx).await?,
        Workload::W2 => w2::run(ctx).await?,
        Workload::W3 => w3::run(ctx).await?,
        Workload::W4 => w4::run(ctx).await?,
        Workload::W5 => w5::run(ctx).await?,
        Workload::F1 => f1::run(ctx).await?,
        Workload::M1 => m1::run(ctx).await?,
        Workload::M2 => m2::run(ctx).await?,
        Workload::D1 => d1::run(ctx).await?,
    };
    Ok(Report::from_runs(workload, ctx.plan.smoke, runs))
}

/// A progress line on stderr, so a long run shows where it is (stdout is for results).
pub fn progress(message: impl std::fmt::Display) {
    eprintln!("seedcore-bench: {message}");
}

/// `vacuum (analyze)` of a freshly loaded table: its statistics and visibility map as a
/// database with autovacuum would have them (the server may run with autovacuum off).
pub async fn vacuum_analyze(pool: &PgPool, table: Table) -> Result<()> {
    let sql = match table {
        Table::Tasks => "vacuum (analyze) tasks, task_history",
        Table::Facts => "vacuum (analyze) facts",
    };
    sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .context(format_args!("{sql}"))?;
    Ok(())
}

/// `checkpoint`: the dirty pages a fill left behind are written out before a timed drain, so
/// no drain pays for a checkpoint that an earlier phase started. The peer's W1 script
/// checkpoints between its enqueue and its drain; every drain W1 reports does the same.
pub async fn checkpoint(pool: &PgPool) -> Result<()> {
    sqlx::raw_sql("checkpoint")
        .execute(pool)
        .await
        .context("checkpoint before a drain")?;
    Ok(())
}

#[derive(Clone, Copy)]
pub enum Table {
    Tasks,
    Facts,
}

/// How long a freshly started `serve` gets to settle (first claims, listener) before a
/// workload measures it.
pub const SETTLE: Duration = Duration::from_secs(1);
