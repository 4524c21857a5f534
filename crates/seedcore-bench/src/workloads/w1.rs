//! W1, drain throughput: tasks enqueued in bulk, drained by a `seedcore worker` with its
//! default settings, beside the peer (Graphile Worker, tuned) and the per-row SQL limit, all on
//! the same server in the same run. The peer ratio is the headline.

use crate::{
    db::{BenchDb, with_database},
    error::Result,
    peer::{self, Peer},
    process::db_init,
    report::{Better, Measure, RunOutcome},
    workloads::{Context, Table, checkpoint, drain, per_row, progress, vacuum_analyze},
};

const PEER_KEY: &str = "graphile_tuned_drain";
const PEER_LABEL: &str = "Graphile Worker, tuned";

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    let peer = Peer::prepare(ctx.peers_dir.as_deref(), ctx.plan.smoke).await;
    let mut runs = Vec::new();
    for run in 1..=ctx.plan.runs {
        progress(format_args!("w1 run {run}/{}", ctx.plan.runs));
        let mut outcome = with_database(&ctx.admin, async |db| one_run(ctx, db).await).await?;
        peer_run(ctx, &peer, &mut outcome).await;
        runs.push(outcome);
    }
    Ok(runs)
}

/// Seedcore's drains and the per-row limit on a fresh database, one after another so none
/// competes with another: seedcore's drain right after the enqueue, the per-row clients, then
/// seedcore's drain once more with the table vacuumed and analyzed after the enqueue. Each
/// drain starts after a `checkpoint`, as the peer's does.
async fn one_run(ctx: &Context, db: &BenchDb) -> Result<RunOutcome> {
    let count = ctx.plan.drain_tasks;
    db_init(&ctx.seedcore, &db.url).await?;
    let pool = db.pool(4).await?;
    let enqueue_rate = drain::enqueue(&pool, count, "w1").await?;
    checkpoint(&pool).await?;
    let drain_rate = drain::drain_with_worker(ctx, &db.url, &pool, count, "w1").await?;
    let best = per_row::best_client_drain(db, &pool, count).await?;
    let pgbench = per_row::pgbench_drain(db, &pool, count).await?;
    // A freshly filled table has no statistics until (auto)analyze sees it, which changes the
    // claim's plan: this second drain shows the queue once the statistics caught up.
    drain::enqueue(&pool, count, "w1-analyzed").await?;
    vacuum_analyze(&pool, Table::Tasks).await?;
    checkpoint(&pool).await?;
    let analyzed_rate = drain::drain_with_worker(ctx, &db.url, &pool, count, "w1-analyzed").await?;
    pool.close().await;

    let mut outcome = RunOutcome::default();
    outcome.push(Measure::new(
        "drain",
        "drain",
        "tasks/s",
        Better::Higher,
        drain_rate,
    ));
    outcome.push(Measure::new(
        "drain_analyzed",
        "drain, table analyzed",
        "tasks/s",
        Better::Higher,
        analyzed_rate,
    ));
    outcome.push(
        Measure::new(
            "drain_vs_per_row",
            "drain",
            "tasks/s",
            Better::Higher,
            drain_rate,
        )
        .against("per_row_sql_drain", "per-row SQL limit", best.rate),
    );
    if let Some(pgbench) = pgbench {
        outcome.push(
            Measure::new(
                "drain_vs_pgbench",
                "drain",
                "tasks/s",
                Better::Higher,
                drain_rate,
            )
            .against("pgbench_drain", "pgbench per-row", pgbench),
        );
    } else {
        outcome.note("pgbench skipped: no `pgbench` on PATH");
    }
    outcome.push(Measure::new(
        "enqueue",
        "bulk enqueue",
        "tasks/s",
        Better::Higher,
        enqueue_rate,
    ));
    outcome.note(format!(
        "{count} noop tasks enqueued by one insert … select; `seedcore worker` with default \
         settings; rate = tasks / (max(finished_at) − min(started_at)). `drain` starts right \
         after the enqueue and a `checkpoint` (as the peer's drain does), before any \
         statistics exist on the new rows; `drain, table analyzed` is a second batch drained \
         after `vacuum (analyze) tasks` and a `checkpoint`"
    ));
    outcome.note(format!(
        "per-row SQL limit: a minimal table (id, status, payload, claimed_at; a partial index \
         on the queued rows), {count} rows, one `update … where id = (select … for update skip \
         locked limit 1) returning id` and one `update … set status = 'completed'` per row, \
         prepared, one connection per loop; the best of {:?} connections ({} in this run: {})",
        per_row::CONNECTIONS,
        best.connections,
        best.tries
            .iter()
            .map(|(c, rate)| format!("{c} → {}", crate::report::number(*rate)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if pgbench.is_some() {
        outcome.note(format!(
            "pgbench per-row: the same two statements in a script file, `-M prepared -c {}`, \
             rows completed per second of pgbench's clock (without connection time)",
            per_row::PGBENCH_CLIENTS
        ));
    }
    Ok(outcome)
}

/// The peer's W1 on the same server, after seedcore's run: the headline ratio of the drain
/// (and of the analyzed drain) to it. A peer that is skipped or fails leaves a note.
async fn peer_run(ctx: &Context, peer: &Peer, outcome: &mut RunOutcome) {
    let rate = match peer {
        Peer::Skipped(reason) => Err(reason.clone()),
        Peer::Ready { .. } => {
            progress("w1: Graphile Worker peer");
            match peer.run("w1", ctx.admin.url()).await {
                Ok(report) => peer::w1_rate(&report).map_err(|err| err.to_string()),
                Err(err) => Err(format!("Graphile Worker peer failed: {err}")),
            }
        }
    };
    match rate {
        Ok(rate) => {
            for measure in &mut outcome.measures {
                if measure.key == "drain" || measure.key == "drain_analyzed" {
                    *measure = measure.clone().against(PEER_KEY, PEER_LABEL, rate);
                }
            }
            outcome.note(
                "Graphile Worker, tuned: `node graphile.js w1 --tuned` (shared/peers/graphile; \
                 20,000 no-op jobs, concurrency 16, local queue 64, batched completion) on the \
                 same server; ratio = seedcore / Graphile, the ratio the project is judged on",
            );
        }
        Err(reason) => outcome.note(reason),
    }
}
