//! Remote executors: a task type mapped to an HTTP endpoint that runs it, in any language.
//!
//! The worker POSTs `{id, type, params, domain, drift_score, attempt}` and expects
//! `{success, result, error}` (plus an optional `retryable` for failures). A connection error
//! and a 5xx are retryable; a 4xx or `success: false` is final unless the answer says
//! `retryable: true`. The task's timeout bounds the call; cancelling the task drops it.

use serde::Deserialize;
use serde_json::{Value, json};

use super::handler::{Handler, HandlerError, HandlerResult, TaskContext};

/// Runs tasks by POSTing them to `url`.
pub struct RemoteExecutor {
    url: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    success: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    retryable: bool,
}

impl RemoteExecutor {
    /// An executor at `url`, calling it through `client` (clone one client to share connections).
    pub fn new(url: impl Into<String>, client: reqwest::Client) -> RemoteExecutor {
        RemoteExecutor {
            url: url.into(),
            client,
        }
    }

    async fn call(&self, task: &TaskContext) -> HandlerResult {
        let body = json!({
            "id": task.id,
            "type": task.task_type,
            "params": task.params,
            "domain": task.domain,
            "drift_score": task.drift_score,
            "attempt": task.attempt,
            "parents": task.parents,
        });
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|err| HandlerError::Retryable(format!("executor unreachable: {err}")))?;
        let status = response.status();
        let text = response.text().await.map_err(|err| {
            HandlerError::Retryable(format!("executor answer could not be read: {err}"))
        })?;
        if status.is_server_error() {
            return Err(HandlerError::Retryable(format!(
                "executor answered {status}: {}",
                clip(&text)
            )));
        }
        if !status.is_success() {
            return Err(HandlerError::Permanent(format!(
                "executor answered {status}: {}",
                clip(&text)
            )));
        }
        let answer: Answer = serde_json::from_str(&text).map_err(|err| {
            HandlerError::Permanent(format!(
                "executor answer is not {{success, result, error}}: {err}"
            ))
        })?;
        if answer.success {
            return Ok(answer.result);
        }
        let error = answer
            .error
            .unwrap_or_else(|| "executor reported failure".into());
        Err(if answer.retryable {
            HandlerError::Retryable(error)
        } else {
            HandlerError::Permanent(error)
        })
    }
}

#[async_trait::async_trait]
impl Handler for RemoteExecutor {
    async fn run(&self, task: TaskContext) -> HandlerResult {
        tokio::select! {
            result = self.call(&task) => result,
            _ = task.cancel.cancelled() => Err(HandlerError::Retryable("cancelled".into())),
        }
    }
}

/// The start of an error body, enough to recognise it in a task's error.
fn clip(text: &str) -> &str {
    let end = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// Parses `type=url,type=url` into pairs; only http:// URLs are accepted.
pub fn parse_executors(spec: &str) -> Result<Vec<(String, String)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (task_type, url) = entry
                .split_once('=')
                .ok_or_else(|| format!("'{entry}' should be type=url"))?;
            let (task_type, url) = (task_type.trim(), url.trim());
            if task_type.is_empty() {
                return Err(format!("'{entry}' has no task type"));
            }
            if !url.starts_with("http://") || url.len() <= "http://".len() {
                return Err(format!(
                    "'{url}' for type '{task_type}' must be an http:// URL"
                ));
            }
            Ok((task_type.to_string(), url.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executors_parse_from_comma_separated_pairs() {
        assert_eq!(
            parse_executors("analysis_task=http://127.0.0.1:9000/run, report = http://h/r")
                .unwrap(),
            vec![
                (
                    "analysis_task".to_string(),
                    "http://127.0.0.1:9000/run".to_string()
                ),
                ("report".to_string(), "http://h/r".to_string())
            ]
        );
        assert!(parse_executors("").unwrap().is_empty());
    }

    #[test]
    fn malformed_executor_entries_are_refused_with_the_entry_named() {
        assert!(parse_executors("nourl").unwrap_err().contains("'nourl'"));
        assert!(
            parse_executors("t=ftp://x")
                .unwrap_err()
                .contains("http://")
        );
        assert!(
            parse_executors("=http://x")
                .unwrap_err()
                .contains("no task type")
        );
    }

    #[test]
    fn long_error_bodies_are_clipped_on_a_character_boundary() {
        let text = "é".repeat(400);
        assert_eq!(clip(&text).chars().count(), 300);
    }
}
