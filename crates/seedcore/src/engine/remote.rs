//! Remote executors: a task type mapped to an HTTP(S) endpoint that runs it, in any language.
//!
//! The worker POSTs `{id, type, params, domain, drift_score, attempt, parents}` and expects
//! `{success, result, error}` (plus an optional `retryable` for failures). A connection error
//! and a 5xx are retryable; a 4xx or `success: false` is final unless the answer says
//! `retryable: true`. The task's timeout bounds the call; cancelling the task drops it.
//!
//! An executor that wants to report progress answers `application/x-ndjson` instead: lines of
//! `{"progress": 0.4}` while it works, then the answer as the line holding `success`. Progress
//! is written as the attempt's (fenced by its lease, at most every [`PROGRESS_INTERVAL`]); an
//! attempt that lost its task stops reading, which closes the connection. A stream that ends
//! without its answer line is retryable, as a dropped connection is. No answer is read past
//! the result cap plus [`ANSWER_ROOM`] (per line, for a stream), so an executor cannot fill
//! the process's memory.
//!
//! All executors of a process share one HTTP client, so connections are kept alive and reused.
//! An `https://` executor's certificate is verified against the built-in public roots plus any
//! configured root certificate; a failure says so in the task's error. An executor with a
//! secret gets every request signed: [`TIMESTAMP_HEADER`] holds the Unix time in seconds and
//! [`SIGNATURE_HEADER`] holds `v1=` and the lowercase hex HMAC-SHA256, keyed by the secret, of
//! the timestamp, a `.`, and the exact body bytes (see [`sign`]). Each attempt is signed anew.
//! A task created with a W3C `traceparent` is sent with [`TRACEPARENT_HEADER`]: the same trace
//! id and flags, a new parent id per call. The call runs in the task's span, so its log lines
//! name the task.

use std::{path::Path, sync::Arc, time::Duration};

use axum::body::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::validate::limits::{DEFAULT_RESULT_BYTES, thousands};

use super::handler::{Handler, HandlerError, HandlerResult, HandlerRouter, TaskContext};

/// The header that carries the time a request was signed, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-seedcore-timestamp";
/// The header that carries the request's signature, `v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "x-seedcore-signature";
/// The W3C trace context header: a child of the task's `traceparent`, when it has one.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The fewest characters an executor secret may have.
pub const MIN_SECRET_CHARS: usize = 32;
/// The media types of an answer streamed as JSON lines.
pub const NDJSON_TYPES: [&str; 2] = ["application/x-ndjson", "application/jsonl"];
/// How often a streamed answer's progress is written at most.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// What an answer may hold beyond the largest result (its error, its envelope), in bytes.
pub const ANSWER_ROOM: usize = 1_048_576;

/// Runs tasks by POSTing them to `url`.
pub struct RemoteExecutor {
    url: String,
    client: reqwest::Client,
    secret: Option<ExecutorSecret>,
    answer_limit: usize,
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
            secret: None,
            answer_limit: answer_limit(DEFAULT_RESULT_BYTES),
        }
    }

    /// The same executor, reading answers as large as a result of `max_result_bytes` allows
    /// (the cap the engine applies to the result; the default is [`DEFAULT_RESULT_BYTES`]).
    pub fn with_max_result_bytes(mut self, max_result_bytes: usize) -> RemoteExecutor {
        self.answer_limit = answer_limit(max_result_bytes);
        self
    }

    /// The same executor, with every request signed by `secret`.
    pub fn signed_with(mut self, secret: ExecutorSecret) -> RemoteExecutor {
        self.secret = Some(secret);
        self
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
        let body = serde_json::to_vec(&body)
            .map_err(|err| HandlerError::Permanent(format!("task cannot be sent: {err}")))?;
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(parent) = &task.traceparent {
            request = request.header(TRACEPARENT_HEADER, parent.child().to_string());
        }
        if let Some(secret) = &self.secret {
            let timestamp = chrono::Utc::now().timestamp();
            request = request
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, sign(secret.bytes(), timestamp, &body));
        }
        tracing::debug!(url = %self.url, "calling the remote executor");
        let response = request.body(body).send().await.map_err(|err| {
            HandlerError::Retryable(format!("executor unreachable: {}", chain(&err)))
        })?;
        let status = response.status();
        tracing::debug!(status = status.as_u16(), "the remote executor answered");
        if status.is_success() && is_ndjson(&response) {
            return self.read_stream(response, task).await?.into_outcome();
        }
        let text = self.read_whole(response).await?;
        let text = String::from_utf8_lossy(&text);
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
        answer.into_outcome()
    }

    /// The whole body of an answer, refused once it passes the answer limit.
    async fn read_whole(&self, mut response: reqwest::Response) -> Result<Vec<u8>, HandlerError> {
        let mut body = Vec::new();
        while let Some(chunk) = next_chunk(&mut response).await? {
            body.extend_from_slice(&chunk);
            self.check_size(body.len())?;
        }
        Ok(body)
    }

    /// Reads an `application/x-ndjson` answer line by line: `{"progress": f}` lines are
    /// reported as the attempt's progress (see [`ProgressWriter`]) until the line that holds
    /// `success`, which is the answer; whatever follows it is not read.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        task: &TaskContext,
    ) -> Result<Answer, HandlerError> {
        let mut pending = Vec::new();
        // How much of `pending` holds no line break: a long line arriving in many pieces is
        // searched once, not again with every piece.
        let mut searched = 0;
        let mut line_number = 0;
        let mut progress = ProgressWriter::new(task);
        loop {
            let chunk = tokio::select! {
                chunk = next_chunk(&mut response) => chunk?,
                () = progress.due() => {
                    progress.write().await?;
                    continue;
                }
            };
            let Some(chunk) = chunk else {
                return Err(HandlerError::Retryable(
                    "executor stream ended before its answer line".into(),
                ));
            };
            pending.extend_from_slice(&chunk);
            while let Some(at) = pending[searched..].iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=searched + at).collect();
                searched = 0;
                line_number += 1;
                match parse_line(&line, line_number)? {
                    Line::Blank => {}
                    Line::Progress(fraction) => progress.offer(fraction).await?,
                    Line::Answer(answer) => return Ok(answer),
                }
            }
            searched = pending.len();
            self.check_size(pending.len())?;
        }
    }

    fn check_size(&self, bytes: usize) -> Result<(), HandlerError> {
        if bytes > self.answer_limit {
            return Err(HandlerError::Permanent(format!(
                "executor answer is over {} bytes (the result cap, SEEDCORE_MAX_RESULT_BYTES, and \
                 {} more); it was not read further",
                thousands(self.answer_limit),
                thousands(ANSWER_ROOM)
            )));
        }
        Ok(())
    }
}

impl Answer {
    fn into_outcome(self) -> HandlerResult {
        if self.success {
            return Ok(self.result);
        }
        let error = self
            .error
            .unwrap_or_else(|| "executor reported failure".into());
        Err(if self.retryable {
            HandlerError::Retryable(error)
        } else {
            HandlerError::Permanent(error)
        })
    }
}

/// The most an answer is read: a larger one would fail the result cap anyway, and reading
/// it whole first would let one executor fill the process's memory.
fn answer_limit(max_result_bytes: usize) -> usize {
    max_result_bytes.saturating_add(ANSWER_ROOM)
}

/// Whether the answer is a stream of JSON lines rather than one JSON document.
fn is_ndjson(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| {
            let media = media.trim();
            NDJSON_TYPES
                .iter()
                .any(|known| media.eq_ignore_ascii_case(known))
        })
}

async fn next_chunk(response: &mut reqwest::Response) -> Result<Option<Bytes>, HandlerError> {
    response.chunk().await.map_err(|err| {
        HandlerError::Retryable(format!(
            "executor answer could not be read: {}",
            chain(&err)
        ))
    })
}

/// One line of a streamed answer.
enum Line {
    Blank,
    Progress(f64),
    Answer(Answer),
}

/// A line of a streamed answer: the answer when it has `success`, else a progress report. A
/// line that is neither is the executor's mistake, and running it again would repeat it.
fn parse_line(line: &[u8], number: usize) -> Result<Line, HandlerError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Line::Blank);
    }
    let not_a_line = |why: String| {
        HandlerError::Permanent(format!(
            "executor answer line {number} is not {{\"progress\": 0..1}} or {{success, result, \
             error}}: {why}"
        ))
    };
    let value: Value = serde_json::from_slice(line).map_err(|err| not_a_line(err.to_string()))?;
    if value.get("success").is_some() {
        let answer = Answer::deserialize(value).map_err(|err| not_a_line(err.to_string()))?;
        return Ok(Line::Answer(answer));
    }
    match value.get("progress").and_then(Value::as_f64) {
        Some(fraction) if (0.0..=1.0).contains(&fraction) => Ok(Line::Progress(fraction)),
        Some(fraction) => Err(not_a_line(format!(
            "progress {fraction} is not from 0 to 1"
        ))),
        None => Err(not_a_line("it has neither `progress` nor `success`".into())),
    }
}

/// Writes a streamed answer's progress as the attempt's, at most once per
/// [`PROGRESS_INTERVAL`]: an executor may send a line per item it works through, and each
/// write is a database write. The latest value not yet written is written when the interval
/// has passed, whether or not another line comes.
struct ProgressWriter<'a> {
    task: &'a TaskContext,
    unwritten: Option<f64>,
    next_write: tokio::time::Instant,
}

impl<'a> ProgressWriter<'a> {
    fn new(task: &'a TaskContext) -> ProgressWriter<'a> {
        ProgressWriter {
            task,
            unwritten: None,
            next_write: tokio::time::Instant::now(),
        }
    }

    async fn offer(&mut self, fraction: f64) -> Result<(), HandlerError> {
        self.unwritten = Some(fraction);
        if tokio::time::Instant::now() >= self.next_write {
            self.write().await?;
        }
        Ok(())
    }

    /// Resolves when a value waits and its interval has passed; never otherwise.
    async fn due(&self) {
        match self.unwritten {
            Some(_) => tokio::time::sleep_until(self.next_write).await,
            None => std::future::pending().await,
        }
    }

    /// Writes the waiting value. A store that fails is logged and not retried: progress is
    /// shown, not relied on, and the attempt's lease is renewed by the engine either way. An
    /// attempt that no longer holds its task stops reading: nothing it returns is recorded.
    async fn write(&mut self) -> Result<(), HandlerError> {
        let Some(fraction) = self.unwritten.take() else {
            return Ok(());
        };
        self.next_write = tokio::time::Instant::now() + PROGRESS_INTERVAL;
        match self.task.progress.report(fraction).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(HandlerError::Retryable(
                "the attempt no longer holds its task".into(),
            )),
            Err(err) => {
                tracing::warn!(error = %err, "the executor's progress could not be recorded");
                Ok(())
            }
        }
    }
}

/// `v1=` and the lowercase hex HMAC-SHA256 of `{timestamp}.{body}` keyed by `secret`: the value
/// of [`SIGNATURE_HEADER`] for a request sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// An error with its causes, which for a TLS failure is where the reason is.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A key that signs an executor's requests; never shown in `Debug` output.
#[derive(Clone)]
pub struct ExecutorSecret(Arc<[u8]>);

impl ExecutorSecret {
    /// A secret of at least [`MIN_SECRET_CHARS`] characters (e.g. `openssl rand -hex 32`).
    pub fn new(secret: &str) -> Result<ExecutorSecret, String> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "is shorter than {MIN_SECRET_CHARS} characters (make one with `openssl rand -hex 32`)"
            ));
        }
        Ok(ExecutorSecret(secret.as_bytes().into()))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ExecutorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecutorSecret(<redacted>)")
    }
}

/// The `SEEDCORE_EXECUTOR_SECRETS` setting as given: `type=secret` pairs, never shown in `Debug`.
#[derive(Clone, Default)]
pub struct ExecutorSecrets(pub String);

impl std::str::FromStr for ExecutorSecrets {
    type Err = std::convert::Infallible;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        Ok(ExecutorSecrets(spec.to_string()))
    }
}

impl std::fmt::Debug for ExecutorSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecutorSecrets(<redacted>)")
    }
}

/// One configured remote executor.
#[derive(Debug)]
pub struct ExecutorSpec {
    /// The task type it runs.
    pub task_type: String,
    /// Where its tasks are POSTed.
    pub url: String,
    /// The key its requests are signed with, if any.
    pub secret: Option<ExecutorSecret>,
}

/// The remote executors of a process, sharing one HTTP client (and its kept-alive connections).
pub struct RemoteExecutors {
    specs: Vec<ExecutorSpec>,
    client: reqwest::Client,
    max_result_bytes: usize,
}

impl RemoteExecutors {
    /// From `SEEDCORE_EXECUTORS`, `SEEDCORE_EXECUTOR_SECRETS` and the root certificate file of
    /// `SEEDCORE_EXECUTOR_ROOT_CERT`; the error names the setting at fault.
    pub fn configure(
        executors: &str,
        secrets: &str,
        root_cert: Option<&Path>,
    ) -> Result<RemoteExecutors, String> {
        let pairs =
            parse_executors(executors).map_err(|err| format!("SEEDCORE_EXECUTORS: {err}"))?;
        let mut secrets = parse_executor_secrets(secrets)
            .map_err(|err| format!("SEEDCORE_EXECUTOR_SECRETS: {err}"))?;
        if let Some((task_type, _)) = secrets
            .iter()
            .find(|(task_type, _)| !pairs.iter().any(|(t, _)| t == task_type))
        {
            return Err(format!(
                "SEEDCORE_EXECUTOR_SECRETS: '{task_type}' is not a task type of SEEDCORE_EXECUTORS"
            ));
        }
        let root_pem = match root_cert {
            Some(path) => Some(std::fs::read(path).map_err(|err| {
                format!(
                    "SEEDCORE_EXECUTOR_ROOT_CERT: cannot read {}: {err}",
                    path.display()
                )
            })?),
            None => None,
        };
        let client = executor_client(root_pem.as_deref())
            .map_err(|err| format!("SEEDCORE_EXECUTOR_ROOT_CERT: {err}"))?;
        let specs = pairs
            .into_iter()
            .map(|(task_type, url)| {
                let secret = secrets
                    .iter()
                    .position(|(t, _)| *t == task_type)
                    .map(|at| secrets.swap_remove(at).1);
                ExecutorSpec {
                    task_type,
                    url,
                    secret,
                }
            })
            .collect();
        Ok(RemoteExecutors {
            specs,
            client,
            max_result_bytes: DEFAULT_RESULT_BYTES,
        })
    }

    /// The same executors, their answers read up to what a result of `max_result_bytes`
    /// needs (`SEEDCORE_MAX_RESULT_BYTES`).
    pub fn with_max_result_bytes(mut self, max_result_bytes: usize) -> RemoteExecutors {
        self.max_result_bytes = max_result_bytes;
        self
    }

    /// The executors, in the order configured.
    pub fn specs(&self) -> &[ExecutorSpec] {
        &self.specs
    }

    /// Sends each executor's tasks to it (replacing a built-in of the same type).
    pub fn register(&self, mut router: HandlerRouter) -> HandlerRouter {
        for spec in &self.specs {
            let mut executor = RemoteExecutor::new(&spec.url, self.client.clone())
                .with_max_result_bytes(self.max_result_bytes);
            if let Some(secret) = &spec.secret {
                executor = executor.signed_with(secret.clone());
            }
            let name = format!("remote:{}", spec.task_type);
            router.register_named(&spec.task_type, &name, executor);
        }
        router
    }
}

/// The client all executors share: rustls, the built-in public roots, and the certificates of
/// `root_pem` (a PEM bundle) for executors whose certificates a private authority signs.
pub fn executor_client(root_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(pem) = root_pem {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|err| format!("not a PEM certificate file: {}", chain(&err)))?;
        if roots.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder
        .build()
        .map_err(|err| format!("cannot set up the HTTP client: {}", chain(&err)))
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

/// Parses `type=url,type=url` into pairs; http:// and https:// URLs are accepted.
pub fn parse_executors(spec: &str) -> Result<Vec<(String, String)>, String> {
    pairs(spec, "url")?
        .into_iter()
        .map(|(task_type, url)| {
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if host.is_none_or(str::is_empty) {
                return Err(format!(
                    "'{url}' for type '{task_type}' must be an http:// or https:// URL"
                ));
            }
            Ok((task_type, url))
        })
        .collect()
}

/// Parses `type=secret,type=secret`; the error names the type, never the secret.
pub fn parse_executor_secrets(spec: &str) -> Result<Vec<(String, ExecutorSecret)>, String> {
    let mut seen: Vec<(String, ExecutorSecret)> = Vec::new();
    for (task_type, secret) in pairs(spec, "secret")? {
        if seen.iter().any(|(t, _)| *t == task_type) {
            return Err(format!("type '{task_type}' has more than one secret"));
        }
        let secret = ExecutorSecret::new(&secret)
            .map_err(|why| format!("the secret for type '{task_type}' {why}"))?;
        seen.push((task_type, secret));
    }
    Ok(seen)
}

/// `type=value` entries, comma-separated; empty entries are skipped. Errors quote the entry
/// only up to its `=`, since a value may be secret.
fn pairs(spec: &str, what: &str) -> Result<Vec<(String, String)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let Some((task_type, value)) = entry.split_once('=') else {
                return Err(if what == "url" {
                    format!("'{entry}' should be type={what}")
                } else {
                    format!("an entry should be type={what}")
                });
            };
            let (task_type, value) = (task_type.trim(), value.trim());
            if task_type.is_empty() {
                return Err(format!("an entry has no task type (type={what})"));
            }
            Ok((task_type.to_string(), value.to_string()))
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
    fn https_executors_are_accepted_beside_http_ones() {
        assert_eq!(
            parse_executors("a=https://exec.example/run").unwrap(),
            vec![("a".to_string(), "https://exec.example/run".to_string())]
        );
        assert!(parse_executors("a=https://").is_err());
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_is_the_hmac_sha256_of_the_timestamp_a_dot_and_the_body() {
        // Computed independently: Python's hmac.new(secret, b"1700000000." + body, sha256).
        assert_eq!(
            sign(SECRET.as_bytes(), 1_700_000_000, br#"{"id":"x"}"#),
            "v1=1d3a1a80c8ad0d56d3cc81d488b5779dbdd6367281fd813d1d9b8d7a5cd0204b"
        );
    }

    #[test]
    fn secrets_parse_per_type_and_a_bad_one_is_refused_without_being_shown() {
        let secrets = parse_executor_secrets(&format!("a={SECRET}, b = {SECRET}x")).unwrap();
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[1].0, "b");
        assert_eq!(secrets[1].1.bytes(), format!("{SECRET}x").as_bytes());

        let err = parse_executor_secrets("a=short-secret").unwrap_err();
        assert!(err.contains("type 'a'") && err.contains("32"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
        let err = parse_executor_secrets("justasecretvalue").unwrap_err();
        assert!(!err.contains("justasecretvalue"), "{err}");
        let err = parse_executor_secrets(&format!("a={SECRET},a={SECRET}")).unwrap_err();
        assert!(err.contains("more than one"), "{err}");
    }

    #[test]
    fn a_secret_for_a_type_without_an_executor_is_refused() {
        let err = RemoteExecutors::configure("a=http://h/run", &format!("b={SECRET}"), None)
            .err()
            .unwrap();
        assert!(err.contains("'b' is not a task type"), "{err}");
    }

    #[test]
    fn executors_without_secrets_stay_valid_and_secrets_pair_with_their_type() {
        let executors = RemoteExecutors::configure(
            "a=http://h/run,b=https://h/run",
            &format!("b={SECRET}"),
            None,
        )
        .unwrap();
        let specs = executors.specs();
        assert!(specs[0].secret.is_none());
        assert_eq!(specs[1].task_type, "b");
        assert!(specs[1].secret.is_some());
        assert!(!format!("{specs:?}").contains(SECRET));
        assert!(!format!("{:?}", ExecutorSecrets(SECRET.into())).contains(SECRET));
    }

    #[test]
    fn a_root_certificate_file_that_is_missing_or_not_pem_is_refused() {
        let err = RemoteExecutors::configure("", "", Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(
            err.starts_with("SEEDCORE_EXECUTOR_ROOT_CERT: cannot read"),
            "{err}"
        );
        assert!(executor_client(Some(b"not a certificate")).is_err());
    }

    #[test]
    fn long_error_bodies_are_clipped_on_a_character_boundary() {
        let text = "é".repeat(400);
        assert_eq!(clip(&text).chars().count(), 300);
    }
}
