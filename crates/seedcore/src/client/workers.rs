//! `seedcore worker list|quiet|terminate`: the workers registered with the server's database,
//! and the orders an operator gives a pull worker (finish what it holds and claim nothing more;
//! or stop).

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{
    ClientError, Ctx, Exit, Remote,
    http::segment,
    output::{self, field},
};

/// The client subcommands of `seedcore worker` (without one, `seedcore worker` runs workers).
#[derive(Subcommand, Debug)]
pub enum WorkerClientCommand {
    /// List the worker processes: active, stopped or lost.
    List(Remote),
    /// Tell a pull worker to finish the tasks it holds and claim nothing more.
    Quiet(WorkerOrder),
    /// Tell a pull worker to stop: it releases what it holds and exits.
    Terminate(WorkerOrder),
}

/// Which pull worker an order is for, and the server to give it through.
#[derive(Args, Debug)]
pub struct WorkerOrder {
    /// The worker's id (`pull:<uuid>`, as `seedcore worker list` shows it).
    pub id: String,
    /// The server.
    #[command(flatten)]
    pub remote: Remote,
}

impl WorkerClientCommand {
    /// The server the command talks to.
    pub fn remote(&self) -> &Remote {
        match self {
            WorkerClientCommand::List(remote) => remote,
            WorkerClientCommand::Quiet(order) | WorkerClientCommand::Terminate(order) => {
                &order.remote
            }
        }
    }
}

pub async fn run(ctx: Ctx, command: WorkerClientCommand) -> Result<Exit, ClientError> {
    let (order, action) = match command {
        WorkerClientCommand::List(_) => return list(ctx).await,
        WorkerClientCommand::Quiet(order) => (order, "quiet"),
        WorkerClientCommand::Terminate(order) => (order, "terminate"),
    };
    let path = format!("/api/v1/workers/{}/{action}", segment(&order.id));
    let worker = ctx.api.post_empty(&path).await?;
    if ctx.json {
        output::json(&worker);
    } else {
        print_pull_worker(&worker);
    }
    Ok(Exit::Ok)
}

async fn list(ctx: Ctx) -> Result<Exit, ClientError> {
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

fn print_pull_worker(worker: &Value) {
    let row = vec![
        field(worker, "id"),
        field(worker, "name"),
        field(worker, "state"),
    ];
    output::table(&["WORKER", "NAME", "ORDER"], vec![row]);
}
