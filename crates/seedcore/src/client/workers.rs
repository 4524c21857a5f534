//! `seedcore worker list`: the worker processes registered with the server's database.

use clap::Subcommand;

use super::{
    ClientError, Ctx, Exit, Remote,
    output::{self, field},
};

/// The client subcommands of `seedcore worker` (without one, `seedcore worker` runs workers).
#[derive(Subcommand, Debug)]
pub enum WorkerClientCommand {
    /// List the worker processes: active, stopped or lost.
    List(Remote),
}

pub async fn run(ctx: Ctx, command: WorkerClientCommand) -> Result<Exit, ClientError> {
    let WorkerClientCommand::List(_) = command;
    let list = ctx.api.get("/api/v1/workers").await?;
    if ctx.json {
        output::json(&list);
        return Ok(Exit::Ok);
    }
    let rows = output::items(&list)
        .iter()
        .map(|worker| {
            vec![
                field(worker, "id"),
                field(worker, "state"),
                field(worker, "concurrency"),
                field(worker, "version"),
                field(worker, "started_at"),
                field(worker, "last_seen_at"),
            ]
        })
        .collect();
    output::table(
        &[
            "WORKER",
            "STATE",
            "CONCURRENCY",
            "VERSION",
            "STARTED",
            "LAST SEEN",
        ],
        rows,
    );
    Ok(Exit::Ok)
}
