//! W1, drain throughput: tasks enqueued in bulk, drained by a `seedcore worker` with its
//! default settings, against the raw-SQL limit on the same server in the same run.

use crate::{
    db::with_database,
    error::Result,
    process::db_init,
    report::{Better, Measure, RunOutcome},
    workloads::{Context, Table, drain, progress, vacuum_analyze},
};

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    let mut runs = Vec::new();
    for run in 1..=ctx.plan.runs {
        progress(format_args!("w1 run {run}/{}", ctx.plan.runs));
        runs.push(with_database(&ctx.admin, async |db| one_run(ctx, db).await).await?);
    }
    Ok(runs)
}

/// One run on a fresh database: seedcore's drain first, then the raw drain in a table of its
/// own once the worker has stopped, so the two never compete; then seedcore's drain once more
/// with the table vacuumed and analyzed after the enqueue.
async fn one_run(ctx: &Context, db: &crate::db::BenchDb) -> Result<RunOutcome> {
    let count = ctx.plan.drain_tasks;
    db_init(&ctx.seedcore, &db.url).await?;
    let pool = db.pool(ctx.plan.raw_drain_connections as u32).await?;
    let enqueue_rate = drain::enqueue(&pool, count, "w1").await?;
    let drain_rate = drain::drain_with_worker(ctx, &db.url, &pool, count, "w1").await?;
    let raw_rate = drain::raw_sql_drain(&pool, count, ctx.plan.raw_drain_connections).await?;
    // A freshly filled table has no statistics until (auto)analyze sees it, which changes the
    // claim's plan: this second drain shows the queue once the statistics caught up.
    drain::enqueue(&pool, count, "w1-analyzed").await?;
    vacuum_analyze(&pool, Table::Tasks).await?;
    let analyzed_rate = drain::drain_with_worker(ctx, &db.url, &pool, count, "w1-analyzed").await?;
    pool.close().await;

    let mut outcome = RunOutcome::default();
    outcome.push(
        Measure::new("drain", "drain", "tasks/s", Better::Higher, drain_rate).against(
            "raw_sql_drain",
            "raw SQL drain",
            raw_rate,
        ),
    );
    outcome.push(
        Measure::new(
            "drain_analyzed",
            "drain, table analyzed",
            "tasks/s",
            Better::Higher,
            analyzed_rate,
        )
        .against("raw_sql_drain", "raw SQL drain", raw_rate),
    );
    outcome.push(Measure::new(
        "enqueue",
        "bulk enqueue",
        "tasks/s",
        Better::Higher,
        enqueue_rate,
    ));
    outcome.note(format!(
        "{count} noop tasks enqueued by one insert … select; `seedcore worker` with default \
         settings (32 workers, pool of 20); rate = tasks / (max(finished_at) − min(started_at)). \
         `drain` starts right after the enqueue, before any statistics exist on the new rows; \
         `drain, table analyzed` is a second batch drained after `vacuum (analyze) tasks`"
    ));
    outcome.note(format!(
        "raw SQL: {} connections, each `update … where id = (select … for update skip locked \
         limit 1) returning id` then `update … set status = 'completed'`, on a plain copy of \
         tasks (same indexes, no triggers)",
        ctx.plan.raw_drain_connections
    ));
    Ok(outcome)
}
