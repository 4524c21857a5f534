//! `seedcore queue list|pause|resume`.

use clap::Subcommand;
use serde_json::Value;

use super::{
    ClientError, Ctx, Exit,
    http::segment,
    output::{self, field},
};

/// The subcommands of `seedcore queue`.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Queues with their tasks per status.
    List,
    /// Stop every worker from claiming this queue's tasks (new ones are still accepted).
    Pause {
        /// The queue's name.
        name: String,
    },
    /// Let workers claim this queue's tasks again.
    Resume {
        /// The queue's name.
        name: String,
    },
}

pub async fn run(ctx: Ctx, command: QueueCommand) -> Result<Exit, ClientError> {
    let (name, action) = match command {
        QueueCommand::List => {
            let list = ctx.api.get("/api/v1/queues").await?;
            if ctx.json {
                output::json(&list);
            } else {
                print_queues(output::items(&list));
            }
            return Ok(Exit::Ok);
        }
        QueueCommand::Pause { name } => (name, "pause"),
        QueueCommand::Resume { name } => (name, "resume"),
    };
    let queue = ctx
        .api
        .post_empty(&format!("/api/v1/queues/{}/{action}", segment(&name)))
        .await?;
    if ctx.json {
        output::json(&queue);
    } else {
        print_queues(std::slice::from_ref(&queue));
    }
    Ok(Exit::Ok)
}

fn print_queues(queues: &[Value]) {
    let rows = queues
        .iter()
        .map(|queue| {
            let paused = if queue["paused"] == true {
                "paused"
            } else {
                "active"
            };
            vec![
                field(queue, "name"),
                paused.to_string(),
                output::counts(&queue["counts"]),
            ]
        })
        .collect();
    output::table(&["QUEUE", "STATE", "TASKS"], rows);
}
