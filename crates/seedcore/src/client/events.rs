//! `task watch ID`: follows a task through the server's event stream
//! (`GET /api/v1/events?task_id=…`, Server-Sent Events) until it ends, then prints its result
//! (exit 0) or its error (exit 4).
//!
//! Invariants: no change is missed: the stream starts after the last change in the task's
//! audit trail, read once the task is known not to have ended, and a stream cut midway is
//! resumed with `Last-Event-ID`. A server without the stream is followed by polling the task
//! instead.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, Response, StatusCode, header::ACCEPT};
use serde_json::{Value, json};

use super::{
    ClientError, Ctx, Exit,
    http::error_of,
    output,
    tasks::{self, task_path},
};

/// How many times in a row the stream may fail to open, or close having carried nothing,
/// before the watch gives up.
const MAX_RETRIES: u32 = 10;
/// The wait before reconnecting.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// The poll interval against a server without the event stream.
const POLL: Duration = Duration::from_millis(500);

pub async fn watch(ctx: &Ctx, id: &str) -> Result<Exit, ClientError> {
    let task = ctx.api.get(&task_path(id)).await?;
    if is_final(&task) {
        return finish(ctx, &task);
    }
    let full_id = task["id"].as_str().unwrap_or(id).to_string();
    if !ctx.json {
        eprintln!(
            "{}  {}",
            output::field(&task, "updated_at"),
            describe(&task)
        );
    }
    // The stream resumes after the last change the trail holds, so nothing that happens
    // from here on is missed, however long the stream takes to open.
    let (mut last_event, ended) = latest_change(ctx, &full_id).await?;
    if ended {
        let task = ctx.api.get(&task_path(&full_id)).await?;
        return finish(ctx, &task);
    }
    let mut retries = 0;
    loop {
        let response = match open(ctx, &full_id, last_event.as_deref()).await {
            Ok(response) => response,
            Err(Opened::NoStream) => return poll(ctx, &full_id).await,
            Err(Opened::Refused(err)) => return Err(err),
            Err(Opened::Unreachable(why)) => {
                retries += 1;
                if retries > MAX_RETRIES {
                    return Err(ClientError::failure(format!(
                        "lost the event stream and could not open it again: {why}"
                    )));
                }
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        match follow(ctx, response, &mut last_event).await {
            Followed::Ended => {
                let task = ctx.api.get(&task_path(&full_id)).await?;
                return finish(ctx, &task);
            }
            // A stream that carried something was healthy: only cuts in a row count.
            Followed::Cut { heard: true } => retries = 1,
            Followed::Cut { heard: false } => retries += 1,
        }
        if retries > MAX_RETRIES {
            return Err(ClientError::failure(
                "the event stream kept closing before the task ended",
            ));
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// The sequence number of the task's latest change in its audit trail, and whether that
/// change ended it (it may have, since the task was read).
async fn latest_change(ctx: &Ctx, task_id: &str) -> Result<(Option<String>, bool), ClientError> {
    let trail = ctx
        .api
        .get(&format!("{}/events", task_path(task_id)))
        .await?;
    let latest = output::items(&trail)
        .iter()
        .max_by_key(|event| event["seq"].as_i64().unwrap_or(i64::MIN));
    Ok(match latest {
        Some(event) => (
            event["seq"].as_i64().map(|seq| seq.to_string()),
            is_final(&json!({"status": event["to_status"]})),
        ),
        None => (None, false),
    })
}

enum Opened {
    /// The server has no event stream (404 on the route).
    NoStream,
    Refused(ClientError),
    Unreachable(String),
}

async fn open(ctx: &Ctx, task_id: &str, last_event: Option<&str>) -> Result<Response, Opened> {
    let mut request = ctx
        .api
        .request(Method::GET, "/api/v1/events")
        .query(&[("task_id", task_id)])
        .header(ACCEPT, "text/event-stream");
    if let Some(last) = last_event {
        request = request.header("Last-Event-ID", last);
    }
    let response = request
        .send()
        .await
        .map_err(|err| Opened::Unreachable(err.to_string()))?;
    match response.status() {
        status if status.is_success() => Ok(response),
        StatusCode::NOT_FOUND => Err(Opened::NoStream),
        status if status.is_server_error() => Err(Opened::Unreachable(status.to_string())),
        _ => Err(Opened::Refused(error_of(response).await)),
    }
}

/// How reading a stream ended.
enum Followed {
    /// The task reached a final status.
    Ended,
    /// The stream closed first; `heard` when it had carried anything (events, keep-alives).
    Cut { heard: bool },
}

/// Reads the stream until the task reaches a final status or the stream ends.
async fn follow(ctx: &Ctx, response: Response, last_event: &mut Option<String>) -> Followed {
    let mut stream = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut heard = false;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Followed::Cut { heard };
        };
        heard |= !chunk.is_empty();
        for event in parser.push(&chunk) {
            if let Some(id) = event.id {
                *last_event = Some(id);
            }
            let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            if !ctx.json {
                eprintln!("{}  {}", output::field(&data, "at"), describe(&data));
            }
            if is_final(&data) {
                return Followed::Ended;
            }
        }
    }
    Followed::Cut { heard }
}

/// Follows the task by reading it every [`POLL`], for servers without the event stream.
async fn poll(ctx: &Ctx, task_id: &str) -> Result<Exit, ClientError> {
    let mut seen = String::new();
    loop {
        let task = ctx.api.get(&task_path(task_id)).await?;
        let now = describe(&task);
        if now != seen && !ctx.json {
            eprintln!("{}  {now}", output::field(&task, "updated_at"));
        }
        if is_final(&task) {
            return finish(ctx, &task);
        }
        seen = now;
        tokio::time::sleep(POLL).await;
    }
}

/// `running (claimed), attempt 1`: the status, and what led to it when that has another
/// name (an event's `kind`).
fn describe(value: &Value) -> String {
    let attempt = value
        .get("attempt")
        .or_else(|| value.get("attempts"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut status = output::field(value, "status");
    if let Some(kind) = value["kind"].as_str().filter(|kind| *kind != status) {
        status = format!("{status} ({kind})");
    }
    match value["error"].as_str() {
        Some(error) => format!("{status}, attempt {attempt}: {error}"),
        None => format!("{status}, attempt {attempt}"),
    }
}

fn is_final(value: &Value) -> bool {
    matches!(
        value["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Prints how the task ended: its result, or its error with exit 4.
fn finish(ctx: &Ctx, task: &Value) -> Result<Exit, ClientError> {
    let completed = task["status"] == "completed";
    if ctx.json {
        tasks::show(ctx, task);
    } else if completed {
        output::json(&task["result"]);
    } else {
        println!(
            "task {} {}: {}",
            output::field(task, "id"),
            output::field(task, "status"),
            output::field(task, "error")
        );
    }
    Ok(if completed {
        Exit::Ok
    } else {
        Exit::TaskFailed
    })
}

/// One Server-Sent Event: its `id:` and its `data:` lines joined.
#[derive(Debug, Default, PartialEq)]
struct SseEvent {
    id: Option<String>,
    data: String,
}

/// Splits a byte stream into events (lines ending in LF or CRLF, events ending at a blank
/// line; comments and other fields ignored).
#[derive(Default)]
struct SseParser {
    pending: Vec<u8>,
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    events.push(std::mem::take(&mut self.current));
                }
                self.current = SseEvent::default();
                self.has_data = false;
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match name {
                "id" => self.current.id = Some(value.to_string()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_across_chunks_and_comments_are_skipped() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b": keep-alive\n\nid: 7\r\nevent: ta")
                .is_empty()
        );
        let events = parser.push(b"sk\ndata: {\"a\":\ndata: 1}\n\n");
        assert_eq!(
            events,
            vec![SseEvent {
                id: Some("7".into()),
                data: "{\"a\":\n1}".into()
            }]
        );
    }
}
