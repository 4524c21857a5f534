//! `task run|cancel|delete --all`: a bulk action started on the server
//! (`POST /api/v1/tasks/actions`) and followed (`GET /api/v1/actions/{id}`) until it is
//! `completed` or `failed`, with a progress bar of done and skipped over matched.

use std::{io::IsTerminal, time::Duration};

use indicatif::ProgressBar;
use serde_json::{Map, Value, json};

use super::{ClientError, Ctx, Exit, http::segment, output, tasks::FilterArgs};

/// How often a running action is asked how far it got.
const POLL: Duration = Duration::from_millis(250);

pub async fn run_all(ctx: &Ctx, action: &str, filter: &FilterArgs) -> Result<Exit, ClientError> {
    let filter = filter_body(filter)?;
    let started = ctx
        .api
        .post(
            "/api/v1/tasks/actions",
            &json!({"action": action, "filter": filter}),
        )
        .await?;
    let id = started["id"]
        .as_str()
        .ok_or_else(|| ClientError::failure("the server's answer has no action id"))?
        .to_string();
    let bar = progress_bar(action, ctx.json);
    let mut state = started;
    loop {
        show_progress(&bar, &state);
        if matches!(state["state"].as_str(), Some("completed" | "failed")) {
            break;
        }
        tokio::time::sleep(POLL).await;
        state = ctx
            .api
            .get(&format!("/api/v1/actions/{}", segment(&id)))
            .await?;
    }
    bar.finish_and_clear();
    report(ctx, action, &state)
}

/// The filter as the server takes it; at least one is needed, so that `--all` alone never
/// acts on every task by accident.
fn filter_body(filter: &FilterArgs) -> Result<Map<String, Value>, ClientError> {
    let mut body = Map::new();
    let given = [
        ("status", &filter.status),
        ("type", &filter.task_type),
        ("queue", &filter.queue),
        ("domain", &filter.domain),
    ];
    for (key, value) in given {
        if let Some(value) = value {
            body.insert(key.into(), Value::from(value.as_str()));
        }
    }
    if body.is_empty() {
        return Err(ClientError::usage(
            "--all needs at least one of --status, --type, --queue and --domain",
        ));
    }
    Ok(body)
}

fn progress_bar(action: &str, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let template = format!("{action:>6} [{{bar:40}}] {{pos}}/{{len}} ({{rate}}, {{eta}} left)");
    bar.set_style(output::progress_style(&template, "tasks"));
    bar
}

fn show_progress(bar: &ProgressBar, state: &Value) {
    let count = |key: &str| state[key].as_u64().unwrap_or(0);
    bar.set_length(count("matched"));
    bar.set_position(count("done") + count("skipped"));
}

fn report(ctx: &Ctx, action: &str, state: &Value) -> Result<Exit, ClientError> {
    if ctx.json {
        output::json(state);
    } else {
        println!(
            "{action}: {} matched, {} done, {} skipped ({})",
            output::field(state, "matched"),
            output::field(state, "done"),
            output::field(state, "skipped"),
            output::field(state, "state"),
        );
    }
    if state["state"] == "failed" {
        let error = state["error"].as_str().unwrap_or("no reason given");
        return Err(ClientError::failure(format!(
            "the {action} failed: {error}"
        )));
    }
    Ok(Exit::Ok)
}
