//! The command-line client: `seedcore task|fact|queue|schedule|workflow …` and
//! `seedcore worker list|quiet|terminate`, talking HTTP to a running server (`--url`, `--token`).
//!
//! Each resource has its module; [`http`] holds the one way requests are sent and errors
//! read, [`output`] the one way results are printed. Exit codes are fixed ([`Exit`]): 0 ok,
//! 1 error, 2 usage, 3 not found, 4 a watched task failed or was cancelled.

mod actions;
mod events;
mod facts;
mod http;
mod import;
mod output;
mod queues;
mod schedules;
mod tasks;
mod workers;
mod workflows;

use std::{io::Read, path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use reqwest::StatusCode;
use serde_json::Value;

pub use facts::FactCommand;
pub use queues::QueueCommand;
pub use schedules::ScheduleCommand;
pub use tasks::TaskCommand;
pub use workers::WorkerClientCommand;
pub use workflows::WorkflowCommand;

use http::Api;

/// Where the server is and how to print: given to every client command.
#[derive(Args, Clone, Debug)]
pub struct Remote {
    /// The seedcore server to talk to.
    #[arg(
        long,
        env = "SEEDCORE_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    pub url: String,
    /// An API token, sent as `Authorization: Bearer` (needed once the server has tokens).
    #[arg(long, env = "SEEDCORE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print JSON (the server's objects) instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client command with its connection settings.
#[derive(Args, Debug)]
pub struct ClientArgs<C: Subcommand> {
    /// What to do.
    #[command(subcommand)]
    pub command: C,
    /// The server and the output mode.
    #[command(flatten)]
    pub remote: Remote,
}

/// The exit codes of client commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    NotFound = 3,
    /// The watched task ended failed or cancelled.
    TaskFailed = 4,
}

/// A failure that ends a client command: what to tell the user and how to exit.
#[derive(Debug)]
pub(crate) struct ClientError {
    pub exit: Exit,
    pub message: String,
    /// The HTTP status, when the server refused.
    pub status: Option<StatusCode>,
    /// The server's error body, when it had one.
    pub detail: Option<Value>,
}

impl ClientError {
    pub(crate) fn failure(message: impl Into<String>) -> ClientError {
        ClientError::with(Exit::Failure, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> ClientError {
        ClientError::with(Exit::Usage, message)
    }

    pub(crate) fn with(exit: Exit, message: impl Into<String>) -> ClientError {
        ClientError {
            exit,
            message: message.into(),
            status: None,
            detail: None,
        }
    }
}

/// A client command, ready to run.
#[derive(Debug)]
pub enum Request {
    /// `seedcore task …`
    Task(ClientArgs<TaskCommand>),
    /// `seedcore fact …`
    Fact(ClientArgs<FactCommand>),
    /// `seedcore queue …`
    Queue(ClientArgs<QueueCommand>),
    /// `seedcore schedule …`
    Schedule(ClientArgs<ScheduleCommand>),
    /// `seedcore workflow …`
    Workflow(ClientArgs<WorkflowCommand>),
    /// `seedcore worker list|quiet|terminate`
    Worker(WorkerClientCommand),
}

/// Runs a client command on a small runtime of its own and turns the outcome into the exit
/// code; an error is printed on stderr as `seedcore: <message>`.
pub fn run(request: Request) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("seedcore: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(dispatch(request));
    match outcome {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(exit) => ExitCode::from(exit as u8),
        Err(err) => {
            for line in err.message.lines() {
                eprintln!("seedcore: {line}");
            }
            ExitCode::from(err.exit as u8)
        }
    }
}

async fn dispatch(request: Request) -> Result<Exit, ClientError> {
    match request {
        Request::Task(args) => tasks::run(connect(&args.remote)?, args.command).await,
        Request::Fact(args) => facts::run(connect(&args.remote)?, args.command).await,
        Request::Queue(args) => queues::run(connect(&args.remote)?, args.command).await,
        Request::Schedule(args) => schedules::run(connect(&args.remote)?, args.command).await,
        Request::Workflow(args) => workflows::run(connect(&args.remote)?, args.command).await,
        Request::Worker(command) => workers::run(connect(command.remote())?, command).await,
    }
}

/// What every client command gets: the server and the output mode.
pub(crate) struct Ctx {
    pub api: Api,
    pub json: bool,
}

fn connect(remote: &Remote) -> Result<Ctx, ClientError> {
    Ok(Ctx {
        api: Api::new(&remote.url, remote.token.clone())?,
        json: remote.json,
    })
}

/// Reads a whole file, or stdin for `-`.
pub(crate) fn read_input(path: &PathBuf) -> Result<String, ClientError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| ClientError::failure(format!("cannot read stdin: {err}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|err| ClientError::failure(format!("cannot read {}: {err}", path.display())))
}

/// Parses a JSON argument such as `--params '{"a": 1}'`, naming the flag when it is not JSON.
pub(crate) fn json_arg(flag: &str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text)
        .map_err(|err| ClientError::usage(format!("{flag} is not valid JSON: {err}")))
}

/// JSON objects from text holding one object, an array of them, a list answer
/// (`{"items": [...]}`) or JSON lines: what `--json` output of this client looks like.
pub(crate) fn json_objects(text: &str) -> Result<Vec<Value>, ClientError> {
    let whole = serde_json::from_str::<Value>(text);
    let values = match whole {
        Ok(Value::Array(items)) => items,
        Ok(Value::Object(map)) if map.get("items").is_some_and(Value::is_array) => {
            map["items"].as_array().cloned().unwrap_or_default()
        }
        Ok(value) => vec![value],
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|err| {
                    ClientError::usage(format!("line {}: not valid JSON: {err}", i + 1))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if let Some(bad) = values.iter().position(|v| !v.is_object()) {
        return Err(ClientError::usage(format!(
            "item {} is not a JSON object",
            bad + 1
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::json_objects;

    #[test]
    fn json_input_may_be_an_object_an_array_a_list_answer_or_json_lines() {
        let one = json!({"type": "echo"});
        for text in [
            one.to_string(),
            json!([one]).to_string(),
            json!({"total": 1, "items": [one]}).to_string(),
            format!("{one}\n\n"),
        ] {
            assert_eq!(json_objects(&text).unwrap(), vec![one.clone()], "{text}");
        }
        assert_eq!(json_objects(&format!("{one}\n{one}\n")).unwrap().len(), 2);
        let bad = json_objects(&format!("{one}\n{{cut\n")).unwrap_err();
        assert!(
            bad.message.starts_with("line 2: not valid JSON"),
            "{}",
            bad.message
        );
        assert!(json_objects("[1]").is_err());
    }
}
