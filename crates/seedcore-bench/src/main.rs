//! `seedcore-bench`: measures seedcore on the workloads of docs/benchmarks.md, each beside a
//! baseline measured in the same run. This file only wires the pieces together:
//! - `cli`: arguments and the sizes they imply;
//! - `db`: the benchmark's own databases, created and always dropped;
//! - `process`: the seedcore processes under test, started and always killed;
//! - `load`: the load generator (closed loops over HTTP or SQL);
//! - `stats`: percentiles and median/min/max;
//! - `peer`: the peer seedcore is judged against (Graphile Worker), run by its own script;
//! - `external`: the other programs the tool runs (node, npm, pgbench), bounded in time;
//! - `executor`: the loopback remote executor of W2's remote path;
//! - `corpus`: the synthetic facts' words and tags;
//! - `workloads`: one module per workload;
//! - `report`: the human table and the JSON objects.

mod cli;
mod corpus;
mod db;
mod error;
mod executor;
mod external;
mod http1;
mod load;
mod peer;
mod process;
mod python;
mod report;
mod stats;
mod workloads;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    cli::{Args, Plan},
    db::Admin,
    error::{Error, Result},
    workloads::Context,
};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("seedcore-bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("seedcore-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let ctx = Context {
        admin: Admin::new(&args.dsn)?,
        seedcore: process::locate(args.seedcore.as_deref())?,
        plan: Plan::new(&args),
        peers_dir: args.peers_dir.clone(),
    };
    let outcome = tokio::select! {
        outcome = run_workloads(&ctx, &args) => outcome,
        signal = interrupted() => Err(Error::new(format!("interrupted by {signal}"))),
    };
    // After an interrupt the workload's future was dropped mid-way: its processes are killed
    // by then, its database is still there.
    db::drop_all_live(&ctx.admin).await;
    outcome
}

async fn run_workloads(ctx: &Context, args: &Args) -> Result<()> {
    workloads::progress(format_args!(
        "seedcore {} on {}",
        ctx.seedcore.display(),
        ctx.admin.redacted()
    ));
    let workloads = args.workload.workloads();
    if let Some(needed) = ctx.plan.peak_connections(&workloads) {
        ctx.admin.ensure_connections(needed).await?;
    }
    for workload in workloads {
        let report = workloads::run(workload, ctx)
            .await
            .map_err(|err| Error::new(format!("{} failed: {err}", workload.key())))?;
        if args.json {
            println!("{}", report.to_json());
        } else {
            println!("{}", report.to_table());
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, with the signal's name.
async fn interrupted() -> &'static str {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}
