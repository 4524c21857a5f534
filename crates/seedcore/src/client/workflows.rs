//! `seedcore workflow create|list|get|cancel`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{
    ClientError, Ctx, Exit,
    http::segment,
    output::{self, field},
    read_input,
};

/// The subcommands of `seedcore workflow`.
#[derive(Subcommand, Debug)]
pub enum WorkflowCommand {
    /// Create a workflow from a JSON file (or `-` for stdin):
    /// `{"name": ..., "tasks": [{"key": ..., "type": ..., "depends_on": [keys]}, ...]}`.
    Create {
        /// The file holding the workflow.
        file: PathBuf,
    },
    /// List workflows, newest first.
    List(ListArgs),
    /// Show a workflow with its tasks (by its full id).
    Get {
        /// The workflow's id.
        id: String,
    },
    /// Cancel every task of the workflow that has not finished.
    Cancel {
        /// The workflow's id.
        id: String,
    },
}

/// The settings of `seedcore workflow list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// How many to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

pub async fn run(ctx: Ctx, command: WorkflowCommand) -> Result<Exit, ClientError> {
    let workflow = match command {
        WorkflowCommand::Create { file } => {
            let body: Value = serde_json::from_str(&read_input(&file)?).map_err(|err| {
                ClientError::usage(format!("{} is not valid JSON: {err}", file.display()))
            })?;
            ctx.api.post("/api/v1/workflows", &body).await?
        }
        WorkflowCommand::List(args) => {
            let query = [
                ("limit", args.limit.to_string()),
                ("offset", args.offset.to_string()),
            ];
            let list = ctx.api.get_query("/api/v1/workflows", &query).await?;
            if ctx.json {
                output::json(&list);
            } else {
                print_workflows(output::items(&list));
            }
            return Ok(Exit::Ok);
        }
        WorkflowCommand::Get { id } => ctx.api.get(&workflow_path(&id)).await?,
        WorkflowCommand::Cancel { id } => {
            ctx.api
                .post_empty(&format!("{}/cancel", workflow_path(&id)))
                .await?
        }
    };
    show(&ctx, &workflow);
    Ok(Exit::Ok)
}

fn workflow_path(id: &str) -> String {
    format!("/api/v1/workflows/{}", segment(id))
}

fn show(ctx: &Ctx, workflow: &Value) {
    if ctx.json {
        output::json(workflow);
        return;
    }
    print_workflows(std::slice::from_ref(workflow));
    if let Some(tasks) = workflow["tasks"].as_array() {
        let rows = tasks
            .iter()
            .map(|task| {
                vec![
                    field(task, "workflow_key"),
                    field(task, "id"),
                    field(task, "type"),
                    field(task, "status"),
                    field(task, "error"),
                ]
            })
            .collect();
        output::table(&["KEY", "TASK", "TYPE", "STATUS", "ERROR"], rows);
    }
}

fn print_workflows(workflows: &[Value]) {
    let rows = workflows
        .iter()
        .map(|workflow| {
            vec![
                field(workflow, "id"),
                field(workflow, "name"),
                field(workflow, "status"),
                output::counts(&workflow["counts"]),
                field(workflow, "created_at"),
            ]
        })
        .collect();
    output::table(&["WORKFLOW", "NAME", "STATUS", "TASKS", "CREATED"], rows);
}
