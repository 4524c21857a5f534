//! `seedcore task …`: create, list, get, events, watch, run, cancel and delete tasks; `run`,
//! `cancel` and `delete` with `--all` and filters go through the server's bulk actions.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::{
    ClientError, Ctx, Exit, actions, events,
    http::segment,
    json_arg, json_objects,
    output::{self, field},
    read_input,
};

/// The subcommands of `seedcore task`.
#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Create a task of TYPE, or every task read from --from (one JSON object, an array, a
    /// `task list --json` answer or JSON lines).
    Create(CreateArgs),
    /// List tasks, newest first.
    List(ListArgs),
    /// Show one task (by id or a unique prefix of at least 4 characters).
    Get(IdArg),
    /// Show a task's audit trail, oldest first.
    Events(IdArg),
    /// Follow a task until it ends; print its result (exit 0) or error (exit 4).
    Watch(IdArg),
    /// Queue a created, failed or cancelled task again (or, with --all, every matching one).
    Run(TargetArgs),
    /// Cancel a task that has not finished (or, with --all, every matching one).
    Cancel(TargetArgs),
    /// Delete a finished task (or, with --all, every matching finished one).
    Delete(TargetArgs),
}

/// A task id argument.
#[derive(Args, Debug)]
pub struct IdArg {
    /// The task's id, or a unique prefix of it.
    pub id: String,
}

/// One task by id, or every task matching filters with `--all`.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// The task's id, or a unique prefix of it.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Act on every task that matches --status, --type, --queue and --domain, on the server,
    /// with a progress bar.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// The filters of a bulk action.
#[derive(Args, Debug, Default)]
pub struct FilterArgs {
    /// Only tasks in this status.
    #[arg(long, requires = "all")]
    pub status: Option<String>,
    /// Only tasks of this type.
    #[arg(long = "type", requires = "all")]
    pub task_type: Option<String>,
    /// Only tasks in this queue.
    #[arg(long, requires = "all")]
    pub queue: Option<String>,
    /// Only tasks in this domain.
    #[arg(long, requires = "all")]
    pub domain: Option<String>,
}

/// The settings of `seedcore task create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The task's type (e.g. echo, sleep, fail, or one of your handlers').
    #[arg(required_unless_present = "from")]
    pub task_type: Option<String>,
    /// Read the task(s) to create from this file, or stdin with `-`; flags given beside it
    /// override the fields of each.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// The parameters, a JSON object.
    #[arg(long)]
    pub params: Option<String>,
    /// A description for people.
    #[arg(long)]
    pub description: Option<String>,
    /// The task's domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// The queue (default `default`).
    #[arg(long)]
    pub queue: Option<String>,
    /// Higher runs first.
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// At or above the escalation threshold the task takes the escalated path.
    #[arg(long)]
    pub drift_score: Option<f64>,
    /// Attempts before it fails for good.
    #[arg(long)]
    pub max_attempts: Option<i64>,
    /// Seconds an attempt may take.
    #[arg(long)]
    pub timeout_seconds: Option<f64>,
    /// Queue it this many seconds from now.
    #[arg(long)]
    pub delay_seconds: Option<f64>,
    /// A key that makes a repeated create return the first task.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// A task that must complete first (repeat for several).
    #[arg(long = "depends-on", value_name = "ID")]
    pub depends_on: Vec<String>,
    /// Queue it at once (otherwise it waits in `created` for `task run`).
    #[arg(long)]
    pub run: bool,
}

/// The settings of `seedcore task list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only tasks in this status.
    #[arg(long)]
    pub status: Option<String>,
    /// Only tasks of this type.
    #[arg(long = "type")]
    pub task_type: Option<String>,
    /// Only tasks in this domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// How many to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

/// The keys a task shows with `task get`, in this order.
const TASK_KEYS: &[&str] = &[
    "id",
    "type",
    "status",
    "queue",
    "priority",
    "description",
    "domain",
    "params",
    "result",
    "error",
    "attempts",
    "max_attempts",
    "created_at",
    "updated_at",
    "run_at",
    "started_at",
    "finished_at",
    "worker_id",
    "depends_on",
    "workflow_id",
    "workflow_key",
];

/// The fields of a stored task that a create takes again; its identity and history
/// (`id`, `status`, `run_at`, `idempotency_key`, ...) stay behind, so a copy is a new task.
const COPIED_KEYS: &[&str] = &[
    "type",
    "params",
    "description",
    "domain",
    "drift_score",
    "max_attempts",
    "timeout_seconds",
    "queue",
    "priority",
    "attached_fact_ids",
    "depends_on",
    "run_on_failure",
];

pub async fn run(ctx: Ctx, command: TaskCommand) -> Result<Exit, ClientError> {
    match command {
        TaskCommand::Create(args) => create(&ctx, args).await,
        TaskCommand::List(args) => list(&ctx, args).await,
        TaskCommand::Get(IdArg { id }) => {
            let task = ctx.api.get(&task_path(&id)).await?;
            show(&ctx, &task);
            Ok(Exit::Ok)
        }
        TaskCommand::Events(IdArg { id }) => show_events(&ctx, &id).await,
        TaskCommand::Watch(IdArg { id }) => events::watch(&ctx, &id).await,
        TaskCommand::Run(target) => act(&ctx, "run", target).await,
        TaskCommand::Cancel(target) => act(&ctx, "cancel", target).await,
        TaskCommand::Delete(target) => act(&ctx, "delete", target).await,
    }
}

/// `/api/v1/tasks/<id>`.
pub fn task_path(id: &str) -> String {
    format!("/api/v1/tasks/{}", segment(id))
}

/// Prints a task: its fields, or its JSON.
pub fn show(ctx: &Ctx, task: &Value) {
    if ctx.json {
        output::json(task);
    } else {
        output::record(task, TASK_KEYS);
    }
}

async fn create(ctx: &Ctx, args: CreateArgs) -> Result<Exit, ClientError> {
    let mut bodies = match &args.from {
        Some(path) => json_objects(&read_input(path)?)?
            .into_iter()
            .map(copyable)
            .collect(),
        None => vec![Map::new()],
    };
    if bodies.is_empty() {
        return Err(ClientError::usage("--from holds no task"));
    }
    let overrides = overrides(&args)?;
    let mut created = Vec::with_capacity(bodies.len());
    for body in &mut bodies {
        body.extend(overrides.clone());
        created.push(
            ctx.api
                .post("/api/v1/tasks", &Value::Object(body.clone()))
                .await?,
        );
    }
    match created.as_slice() {
        [one] => show(ctx, one),
        many if ctx.json => output::json(&Value::Array(many.to_vec())),
        many => print_tasks(many),
    }
    Ok(Exit::Ok)
}

/// A task read from a file as a create body: a stored task keeps only [`COPIED_KEYS`].
fn copyable(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        return Map::new();
    };
    if !map.contains_key("id") {
        return map;
    }
    map.into_iter()
        .filter(|(key, value)| COPIED_KEYS.contains(&key.as_str()) && !value.is_null())
        .collect()
}

/// The fields the flags of `task create` set.
fn overrides(args: &CreateArgs) -> Result<Map<String, Value>, ClientError> {
    let mut body = Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.to_string(), value);
        }
    };
    set("type", args.task_type.clone().map(Value::from));
    let params = args
        .params
        .as_deref()
        .map(|text| json_arg("--params", text))
        .transpose()?;
    set("params", params);
    set("description", args.description.clone().map(Value::from));
    set("domain", args.domain.clone().map(Value::from));
    set("queue", args.queue.clone().map(Value::from));
    set("priority", args.priority.map(Value::from));
    set("drift_score", args.drift_score.map(Value::from));
    set("max_attempts", args.max_attempts.map(Value::from));
    set("timeout_seconds", args.timeout_seconds.map(Value::from));
    set("delay_seconds", args.delay_seconds.map(Value::from));
    set(
        "idempotency_key",
        args.idempotency_key.clone().map(Value::from),
    );
    if !args.depends_on.is_empty() {
        set("depends_on", Some(json!(args.depends_on)));
    }
    if args.run {
        set("run_immediately", Some(Value::Bool(true)));
    }
    Ok(body)
}

async fn list(ctx: &Ctx, args: ListArgs) -> Result<Exit, ClientError> {
    let mut query = vec![
        ("limit", args.limit.to_string()),
        ("offset", args.offset.to_string()),
    ];
    let filters = [
        ("status", args.status),
        ("type", args.task_type),
        ("domain", args.domain),
    ];
    query.extend(
        filters
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v))),
    );
    let page = ctx.api.get_query("/api/v1/tasks", &query).await?;
    if ctx.json {
        output::json(&page);
        return Ok(Exit::Ok);
    }
    print_tasks(output::items(&page));
    eprintln!(
        "{} of {} task(s)",
        output::items(&page).len(),
        field(&page, "total")
    );
    Ok(Exit::Ok)
}

/// Tasks as a table, one per row.
pub fn print_tasks(tasks: &[Value]) {
    let rows = tasks
        .iter()
        .map(|task| {
            vec![
                field(task, "id"),
                field(task, "type"),
                field(task, "status"),
                field(task, "queue"),
                field(task, "attempts"),
                field(task, "created_at"),
            ]
        })
        .collect();
    output::table(
        &["ID", "TYPE", "STATUS", "QUEUE", "ATTEMPTS", "CREATED"],
        rows,
    );
}

async fn show_events(ctx: &Ctx, id: &str) -> Result<Exit, ClientError> {
    let trail = ctx.api.get(&format!("{}/events", task_path(id))).await?;
    if ctx.json {
        output::json(&trail);
        return Ok(Exit::Ok);
    }
    let rows = output::items(&trail)
        .iter()
        .map(|event| {
            vec![
                field(event, "seq"),
                field(event, "at"),
                field(event, "kind"),
                format!(
                    "{} -> {}",
                    field(event, "from_status"),
                    field(event, "to_status")
                ),
                field(event, "attempt"),
                field(event, "worker_id"),
                field(event, "actor"),
                field(event, "error"),
            ]
        })
        .collect();
    output::table(
        &[
            "SEQ", "AT", "KIND", "STATUS", "ATTEMPT", "WORKER", "ACTOR", "ERROR",
        ],
        rows,
    );
    Ok(Exit::Ok)
}

async fn act(ctx: &Ctx, action: &str, target: TargetArgs) -> Result<Exit, ClientError> {
    let Some(id) = target.id else {
        return actions::run_all(ctx, action, &target.filter).await;
    };
    let path = task_path(&id);
    if action == "delete" {
        ctx.api.delete(&path).await?;
        if ctx.json {
            output::json(&json!({"deleted": id}));
        } else {
            println!("deleted task {id}");
        }
        return Ok(Exit::Ok);
    }
    let task = ctx.api.post_empty(&format!("{path}/{action}")).await?;
    show(ctx, &task);
    Ok(Exit::Ok)
}
