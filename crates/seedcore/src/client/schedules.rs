//! `seedcore schedule list|create|pause|resume|delete`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::{
    ClientError, Ctx, Exit,
    http::segment,
    json_arg,
    output::{self, field},
    read_input,
};

/// The subcommands of `seedcore schedule`.
#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Schedules by name, with their next fire time.
    List(ListArgs),
    /// Create a schedule from flags, or from a JSON file (`-` for stdin) with --from.
    Create(CreateArgs),
    /// Stop a schedule from firing (by its full id).
    Pause(IdArg),
    /// Let a paused schedule fire again, from its first fire after now.
    Resume(IdArg),
    /// Delete a schedule; the tasks it created stay.
    Delete(IdArg),
}

/// A schedule id argument.
#[derive(Args, Debug)]
pub struct IdArg {
    /// The schedule's full id.
    pub id: String,
}

/// The settings of `seedcore schedule list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// How many to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

/// The settings of `seedcore schedule create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Read the schedule from this JSON file (`-` for stdin); flags given beside it override
    /// its fields.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// A unique name.
    #[arg(long, required_unless_present = "from")]
    pub name: Option<String>,
    /// The cron expression (5 fields, or 6 with seconds first), e.g. "0 3 * * *".
    #[arg(long, required_unless_present = "from")]
    pub cron: Option<String>,
    /// The type of the tasks it creates.
    #[arg(long = "type", required_unless_present = "from")]
    pub task_type: Option<String>,
    /// The tasks' parameters, a JSON object.
    #[arg(long)]
    pub params: Option<String>,
    /// The tasks' queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// The tasks' priority.
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// An IANA time zone for the cron expression (default UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    /// `run_once` (the default) or `skip`: what missed fires do.
    #[arg(long)]
    pub misfire_policy: Option<String>,
    /// Create it paused.
    #[arg(long)]
    pub paused: bool,
}

pub async fn run(ctx: Ctx, command: ScheduleCommand) -> Result<Exit, ClientError> {
    let schedule = match command {
        ScheduleCommand::List(args) => {
            let query = [
                ("limit", args.limit.to_string()),
                ("offset", args.offset.to_string()),
            ];
            let list = ctx.api.get_query("/api/v1/schedules", &query).await?;
            if ctx.json {
                output::json(&list);
            } else {
                print_schedules(output::items(&list));
            }
            return Ok(Exit::Ok);
        }
        ScheduleCommand::Create(args) => {
            ctx.api
                .post("/api/v1/schedules", &create_body(&args)?)
                .await?
        }
        ScheduleCommand::Pause(IdArg { id }) => {
            ctx.api
                .patch(&schedule_path(&id), &json!({"enabled": false}))
                .await?
        }
        ScheduleCommand::Resume(IdArg { id }) => {
            ctx.api
                .patch(&schedule_path(&id), &json!({"enabled": true}))
                .await?
        }
        ScheduleCommand::Delete(IdArg { id }) => {
            ctx.api.delete(&schedule_path(&id)).await?;
            if ctx.json {
                output::json(&json!({"deleted": id}));
            } else {
                println!("deleted schedule {id}");
            }
            return Ok(Exit::Ok);
        }
    };
    if ctx.json {
        output::json(&schedule);
    } else {
        print_schedules(std::slice::from_ref(&schedule));
    }
    Ok(Exit::Ok)
}

fn schedule_path(id: &str) -> String {
    format!("/api/v1/schedules/{}", segment(id))
}

/// The body of a create: the file's object (a listed schedule's own fields left out), then
/// the flags.
fn create_body(args: &CreateArgs) -> Result<Value, ClientError> {
    let mut body = match &args.from {
        Some(path) => match json_arg(&path.display().to_string(), &read_input(path)?)? {
            Value::Object(map) => map,
            _ => return Err(ClientError::usage("--from must hold a JSON object")),
        },
        None => Map::new(),
    };
    for stored in [
        "id",
        "next_fire_at",
        "last_fire_at",
        "last_task_id",
        "created_at",
        "updated_at",
        "next_fire_times",
    ] {
        body.remove(stored);
    }
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.into(), value);
        }
    };
    set("name", args.name.clone().map(Value::from));
    set("cron", args.cron.clone().map(Value::from));
    set("timezone", args.timezone.clone().map(Value::from));
    set(
        "misfire_policy",
        args.misfire_policy.clone().map(Value::from),
    );
    if args.paused {
        set("enabled", Some(Value::Bool(false)));
    }
    let mut task = match body.remove("task") {
        Some(Value::Object(task)) => task,
        _ => Map::new(),
    };
    if let Some(task_type) = &args.task_type {
        task.insert("type".into(), json!(task_type));
    }
    if let Some(params) = &args.params {
        task.insert("params".into(), json_arg("--params", params)?);
    }
    if let Some(queue) = &args.queue {
        task.insert("queue".into(), json!(queue));
    }
    if let Some(priority) = args.priority {
        task.insert("priority".into(), json!(priority));
    }
    body.insert("task".into(), Value::Object(task));
    Ok(Value::Object(body))
}

fn print_schedules(schedules: &[Value]) {
    let rows = schedules
        .iter()
        .map(|schedule| {
            let state = if schedule["enabled"] == true {
                "active"
            } else {
                "paused"
            };
            vec![
                field(schedule, "id"),
                field(schedule, "name"),
                field(schedule, "cron"),
                field(schedule, "timezone"),
                field(&schedule["task"], "type"),
                state.to_string(),
                field(schedule, "next_fire_at"),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "NAME",
            "CRON",
            "TIMEZONE",
            "TYPE",
            "STATE",
            "NEXT FIRE",
        ],
        rows,
    );
}
