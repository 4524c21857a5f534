//! Remote executors: a task type served by an HTTP endpoint (here a small axum app on port 0).

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    http::{StatusCode, header},
    routing::post,
};
use common::*;
use futures::{StreamExt, stream::BoxStream};
use seedcore::{api::ApiSettings, engine::HandlerRouter, model::TaskStatus};
use serde_json::{Value, json};

/// Starts an executor that records what it receives and answers with `answer`.
async fn executor(
    answer: impl Fn(&Value) -> (StatusCode, Value) + Send + Sync + Clone + 'static,
) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/run",
        post(move |Json(body): Json<Value>| {
            let answer = answer.clone();
            let record = record.clone();
            async move {
                record.lock().unwrap().push(body.clone());
                if body["params"]["delay"].is_number() {
                    let delay = body["params"]["delay"].as_f64().unwrap();
                    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                }
                let (status, json) = answer(&body);
                (status, Json(json))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/run"), seen)
}

async fn app_with_executor(url: &str) -> TestApp {
    let router =
        HandlerRouter::with_builtins().with_executors(&[("analysis_task".into(), url.into())]);
    let db = Arc::new(TestDb::create().await);
    TestApp::with_router(db, Some(fast_engine()), ApiSettings::default(), router).await
}

async fn run(app: &TestApp, body: Value) -> seedcore::model::Task {
    let mut body = body;
    body["type"] = json!("analysis_task");
    app.run_to_the_end(body).await
}

both_backends!(a_remote_executor_receives_the_task_and_its_result_is_stored);
async fn a_remote_executor_receives_the_task_and_its_result_is_stored() {
    let (url, seen) = executor(|body| {
        (
            StatusCode::OK,
            json!({"success": true, "result": {"rows": body["params"]["rows"]}, "error": null}),
        )
    })
    .await;
    let app = app_with_executor(&url).await;
    let task = run(
        &app,
        json!({"params": {"rows": 7}, "domain": "science", "drift_score": 0.2}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(
        task.result.unwrap(),
        json!({"success": true, "path": "fast", "handler": "remote:analysis_task", "result": {"rows": 7}})
    );
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["id"], json!(task.id));
    assert_eq!(sent["type"], "analysis_task");
    assert_eq!(sent["params"], json!({"rows": 7}));
    assert_eq!(sent["domain"], "science");
    assert_eq!(sent["drift_score"], 0.2);
    assert_eq!(sent["attempt"], 1);
}

both_backends!(a_remote_failure_fails_the_task_without_retrying);
async fn a_remote_failure_fails_the_task_without_retrying() {
    let (url, seen) = executor(|_| {
        (
            StatusCode::OK,
            json!({"success": false, "result": null, "error": "bad input file"}),
        )
    })
    .await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.as_deref(), Some("bad input file"));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

both_backends!(a_remote_5xx_is_retried_until_attempts_run_out);
async fn a_remote_5xx_is_retried_until_attempts_run_out() {
    let (url, seen) =
        executor(|_| (StatusCode::SERVICE_UNAVAILABLE, json!({"detail": "busy"}))).await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 3);
    assert!(task.error.unwrap().contains("503"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

both_backends!(a_remote_4xx_is_final);
async fn a_remote_4xx_is_final() {
    let (url, seen) = executor(|_| (StatusCode::BAD_REQUEST, json!({"detail": "no"}))).await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

both_backends!(a_remote_retry_then_success_completes_on_the_second_attempt);
async fn a_remote_retry_then_success_completes_on_the_second_attempt() {
    let (url, _seen) = executor(|body| {
        if body["attempt"] == 1 {
            (
                StatusCode::OK,
                json!({"success": false, "error": "warming up", "retryable": true}),
            )
        } else {
            (StatusCode::OK, json!({"success": true, "result": "done"}))
        }
    })
    .await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.attempts, 2);
    assert_eq!(task.result.unwrap()["result"], "done");
}

both_backends!(an_unreachable_executor_is_retried_then_fails);
async fn an_unreachable_executor_is_retried_then_fails() {
    // Nothing listens on port 1 of this loopback address. (A port freed by this test could be
    // taken at once by another test's server running in parallel.)
    let app = app_with_executor("http://127.0.0.2:1/run").await;
    let task = run(&app, json!({"max_attempts": 2})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 2);
    assert!(task.error.unwrap().contains("executor unreachable"));
}

both_backends!(a_slow_executor_times_out_as_retryable);
async fn a_slow_executor_times_out_as_retryable() {
    let (url, seen) = executor(|_| (StatusCode::OK, json!({"success": true, "result": 1}))).await;
    let app = app_with_executor(&url).await;
    let task = run(
        &app,
        json!({"params": {"delay": 5}, "timeout_seconds": 0.3, "max_attempts": 2}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 2);
    assert!(task.error.unwrap().contains("timed out"));
    assert_eq!(seen.lock().unwrap().len(), 2);
}

both_backends!(a_worker_registers_itself_and_is_listed_as_active);
async fn a_worker_registers_itself_and_is_listed_as_active() {
    let app = TestApp::start().await;
    let (status, workers) = app.get("/api/v1/workers").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let items = workers["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let worker = &items[0];
    assert_eq!(worker["state"], "active");
    assert_eq!(worker["pid"], std::process::id());
    assert_eq!(worker["concurrency"], 8);
    assert!(
        worker["id"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}:", std::process::id()))
    );

    let db = app.stop().await;
    let app = TestApp::on(db, None, ApiSettings::default()).await;
    let (_, workers) = app.get("/api/v1/workers").await;
    assert_eq!(workers["items"][0]["state"], "stopped");
}

// Remote executors over HTTPS, with signed requests: the executor below is served with a
// certificate from an authority the test makes, and checks every request's signature the way
// the README tells an executor to.

mod certs;

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::{body::Bytes, http::HeaderMap};
use hmac::{Hmac, KeyInit, Mac};
use seedcore::engine::remote::{RemoteExecutors, SIGNATURE_HEADER, TIMESTAMP_HEADER};

const SECRET: &str = "4f0c1e9a7b2d6e8f3a5c7d9e1b3f5a7c";

/// A request's body and what the signature check made of it.
type Checked = (Value, Result<(), String>);

/// An HTTPS executor: its address, what it made of each request, and its TCP connections.
struct HttpsExecutor {
    url: String,
    seen: Arc<Mutex<Vec<Checked>>>,
    connections: Arc<AtomicUsize>,
    root: TempFolder,
}

impl HttpsExecutor {
    /// The file holding the authority that signed the executor's certificate.
    fn root_cert(&self) -> std::path::PathBuf {
        self.root.0.join("executor-ca.pem")
    }
}

/// An executor over HTTPS for `localhost` that completes the task when the request is signed
/// with `secret` no more than five minutes ago, and answers 401 otherwise.
async fn https_executor(secret: &'static str) -> HttpsExecutor {
    let pki = certs::issue(&["localhost"]);
    let root = TempFolder::new();
    std::fs::write(root.0.join("executor-ca.pem"), &pki.ca_pem).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/run",
        post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                let verdict = check_signature(secret.as_bytes(), &headers, &body);
                let task: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                record.lock().unwrap().push((task.clone(), verdict.clone()));
                match verdict {
                    Ok(()) => (
                        StatusCode::OK,
                        Json(json!({"success": true, "result": {"attempt": task["attempt"]}})),
                    ),
                    Err(why) => (StatusCode::UNAUTHORIZED, Json(json!({"detail": why}))),
                }
            }
        }),
    );
    let connections = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls_acceptor(&pki);
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    HttpsExecutor {
        url: format!("https://localhost:{port}/run"),
        seen,
        connections,
        root,
    }
}

fn tls_acceptor(pki: &certs::Pki) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    // ring is the only crypto provider built in, so it is the default.
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// What an executor does with a request: a timestamp within five minutes of now, and
/// `v1=` + hex HMAC-SHA256(secret, "{timestamp}.{body}"), compared in constant time.
fn check_signature(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or(format!("no {name} header"))
    };
    let timestamp = header(TIMESTAMP_HEADER)?;
    let sent: i64 = timestamp.parse().map_err(|_| "bad timestamp".to_string())?;
    if (chrono::Utc::now().timestamp() - sent).abs() > 300 {
        return Err("stale timestamp".into());
    }
    let signature = header(SIGNATURE_HEADER)?
        .strip_prefix("v1=")
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or("malformed signature")?;
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| "signature does not match".to_string())
}

/// An app whose `analysis_task` runs on `executor`, configured as the binary configures it.
async fn app_with_https_executor(
    executor: &HttpsExecutor,
    secret: Option<&str>,
    trust_its_root: bool,
) -> TestApp {
    let secrets = secret.map_or(String::new(), |s| format!("analysis_task={s}"));
    let root = trust_its_root.then(|| executor.root_cert());
    let executors = RemoteExecutors::configure(
        &format!("analysis_task={}", executor.url),
        &secrets,
        root.as_deref(),
    )
    .unwrap();
    let router = executors.register(HandlerRouter::with_builtins());
    let db = Arc::new(TestDb::create().await);
    TestApp::with_router(db, Some(fast_engine()), ApiSettings::default(), router).await
}

both_backends!(an_https_executor_with_a_private_root_receives_signed_tasks);
async fn an_https_executor_with_a_private_root_receives_signed_tasks() {
    let executor = https_executor(SECRET).await;
    let app = app_with_https_executor(&executor, Some(SECRET), true).await;
    let task = run(&app, json!({"params": {"rows": 3}})).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(task.result.unwrap()["result"], json!({"attempt": 1}));
    let seen = executor.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, Ok(()));
    assert_eq!(seen[0].0["id"], json!(task.id));
    assert_eq!(seen[0].0["params"], json!({"rows": 3}));
}

both_backends!(an_https_executor_whose_certificate_does_not_verify_never_gets_the_task);
async fn an_https_executor_whose_certificate_does_not_verify_never_gets_the_task() {
    let executor = https_executor(SECRET).await;
    let app = app_with_https_executor(&executor, Some(SECRET), false).await;
    let task = run(&app, json!({"max_attempts": 2})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 2);
    let error = task.error.unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert!(executor.seen.lock().unwrap().is_empty());
    assert!(executor.connections.load(Ordering::SeqCst) >= 1);
}

both_backends!(an_executor_refuses_requests_signed_with_another_secret_or_unsigned);
async fn an_executor_refuses_requests_signed_with_another_secret_or_unsigned() {
    let executor = https_executor(SECRET).await;
    let other = "0000000000000000000000000000000000000000";
    let app = app_with_https_executor(&executor, Some(other), true).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 1);
    assert!(task.error.unwrap().contains("401"));
    let db = app.stop().await;
    drop(db);

    let app = app_with_https_executor(&executor, None, true).await;
    let task = run(&app, json!({})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    let seen = executor.seen.lock().unwrap();
    let verdicts: Vec<_> = seen.iter().map(|(_, verdict)| verdict.clone()).collect();
    assert_eq!(
        verdicts,
        vec![
            Err("signature does not match".to_string()),
            Err(format!("no {TIMESTAMP_HEADER} header"))
        ]
    );
}

both_backends!(tasks_sent_to_one_executor_share_a_kept_alive_connection);
async fn tasks_sent_to_one_executor_share_a_kept_alive_connection() {
    let executor = https_executor(SECRET).await;
    let app = app_with_https_executor(&executor, Some(SECRET), true).await;
    for _ in 0..3 {
        let task = run(&app, json!({})).await;
        assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    }
    assert_eq!(executor.seen.lock().unwrap().len(), 3);
    assert_eq!(executor.connections.load(Ordering::SeqCst), 1);
}

sqlite_only!(serve_refuses_a_short_executor_secret_without_printing_it);
async fn serve_refuses_a_short_executor_secret_without_printing_it() {
    let data = TempFolder::new();
    let data_dir = data.0.display().to_string();
    let output = process::command(
        &["serve"],
        &[
            ("SEEDCORE_DATA_DIR", data_dir.as_str()),
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            (
                "SEEDCORE_EXECUTORS",
                "analysis_task=https://localhost:9/run",
            ),
            (
                "SEEDCORE_EXECUTOR_SECRETS",
                "analysis_task=hunter2-too-short",
            ),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("SEEDCORE_EXECUTOR_SECRETS: the secret for type 'analysis_task'"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Starts an executor whose every answer is the stream `answer` makes, sent as `content_type`.
async fn streaming_executor(
    content_type: &'static str,
    answer: impl Fn() -> BoxStream<'static, String> + Send + Sync + Clone + 'static,
) -> String {
    let app = Router::new().route(
        "/run",
        post(move || {
            let answer = answer.clone();
            async move {
                let body = Body::from_stream(answer().map(Ok::<_, std::convert::Infallible>));
                ([(header::CONTENT_TYPE, content_type)], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/run")
}

/// An answer of these lines, each sent as it is given to the returned sender; the answer ends
/// when the sender is dropped. One answer only: the test drives one attempt.
fn live_lines() -> (
    tokio::sync::mpsc::UnboundedSender<String>,
    impl Fn() -> BoxStream<'static, String> + Send + Sync + Clone + 'static,
) {
    let (lines, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let answer = move || {
        let mut receiver = receiver.lock().unwrap().take().expect("one answer");
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed()
    };
    (lines, answer)
}

/// An answer of these lines, the same for every attempt.
fn fixed_lines(
    lines: &'static [&'static str],
) -> impl Fn() -> BoxStream<'static, String> + Send + Sync + Clone + 'static {
    move || futures::stream::iter(lines.iter().map(|line| format!("{line}\n"))).boxed()
}

async fn progress_of(app: &TestApp, id: &str, progress: f64) -> seedcore::model::Task {
    app.wait_for(id, Duration::from_secs(10), |task| {
        task.progress == Some(progress)
    })
    .await
}

/// A task running on an executor whose answer's lines the test sends as it goes.
async fn live_task(
    content_type: &'static str,
) -> (TestApp, String, tokio::sync::mpsc::UnboundedSender<String>) {
    let (lines, answer) = live_lines();
    let url = streaming_executor(content_type, answer).await;
    let app = app_with_executor(&url).await;
    let task = app
        .create_task(json!({"type": "analysis_task", "run_immediately": true}))
        .await;
    let id = id_of(&task);
    (app, id, lines)
}

both_backends!(a_streaming_executor_reports_its_progress_while_it_works);
async fn a_streaming_executor_reports_its_progress_while_it_works() {
    let (app, id, lines) = live_task("application/x-ndjson").await;
    lines.send("{\"progress\": 0.25}\n".into()).unwrap();
    let running = progress_of(&app, &id, 0.25).await;
    assert_eq!(running.status, TaskStatus::Running);
    lines.send("{\"progress\": 0.75}\n".into()).unwrap();
    progress_of(&app, &id, 0.75).await;
    // The answer may come in pieces, as any stream may.
    lines.send("{\"success\": true, \"res".into()).unwrap();
    lines.send("ult\": {\"rows\": 3}}\n".into()).unwrap();
    let done = app.finished(&id).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result.unwrap()["result"], json!({"rows": 3}));
}

both_backends!(the_last_progress_of_a_quick_burst_is_written_though_no_line_follows);
async fn the_last_progress_of_a_quick_burst_is_written_though_no_line_follows() {
    let (app, id, lines) = live_task("application/x-ndjson; charset=utf-8").await;
    // All in one piece: the first is written at once, the rest within the write interval.
    let burst: String = (1..=9)
        .map(|n| format!("{{\"progress\": 0.{n}}}\n"))
        .collect();
    lines.send(burst).unwrap();
    let running = progress_of(&app, &id, 0.9).await;
    assert_eq!(running.status, TaskStatus::Running);
    lines
        .send("{\"success\": false, \"error\": \"gave up\"}\n".into())
        .unwrap();
    let done = app.finished(&id).await;
    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("gave up"));
}

both_backends!(a_streamed_progress_outside_zero_to_one_fails_the_task_naming_its_line);
async fn a_streamed_progress_outside_zero_to_one_fails_the_task_naming_its_line() {
    let lines = &["{\"progress\": 0.5}", "", "{\"progress\": 1.5}"];
    let url = streaming_executor("application/x-ndjson", fixed_lines(lines)).await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 3})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 1);
    let error = task.error.unwrap();
    assert!(error.contains("line 3"), "{error}");
    assert!(error.contains("progress 1.5 is not from 0 to 1"), "{error}");
}

both_backends!(a_stream_that_ends_before_its_answer_is_retried_like_a_dropped_connection);
async fn a_stream_that_ends_before_its_answer_is_retried_like_a_dropped_connection() {
    let url = streaming_executor(
        "application/jsonl",
        fixed_lines(&["{\"progress\": 0.1}", "{\"progress\": 0.2}"]),
    )
    .await;
    let app = app_with_executor(&url).await;
    let task = run(&app, json!({"max_attempts": 2})).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 2);
    assert!(
        task.error.unwrap().contains("ended before its answer line"),
        "the error says why"
    );
}

/// An answer that never ends: 64 KiB pieces of a JSON string, no line break.
fn endless_answer() -> BoxStream<'static, String> {
    let piece = "x".repeat(65_536);
    futures::stream::once(async { "{\"success\": true, \"result\": \"".to_string() })
        .chain(futures::stream::repeat(piece))
        .boxed()
}

both_backends!(an_endless_answer_fails_the_task_once_it_passes_the_result_cap);
async fn an_endless_answer_fails_the_task_once_it_passes_the_result_cap() {
    for content_type in ["application/json", "application/x-ndjson"] {
        let url = streaming_executor(content_type, endless_answer).await;
        let app = app_with_executor(&url).await;
        let task = run(&app, json!({"max_attempts": 3})).await;
        assert_eq!(task.status, TaskStatus::Failed, "{content_type}");
        assert_eq!(task.attempts, 1, "{content_type}");
        let error = task.error.unwrap();
        assert!(
            error.contains("executor answer is over 3,145,728 bytes"),
            "{content_type}: {error}"
        );
    }
}

both_backends!(cancelling_a_streaming_task_closes_its_executors_connection);
async fn cancelling_a_streaming_task_closes_its_executors_connection() {
    let (app, id, lines) = live_task("application/x-ndjson").await;
    lines.send("{\"progress\": 0.5}\n".into()).unwrap();
    progress_of(&app, &id, 0.5).await;
    let (status, _) = app.post_empty(&format!("/api/v1/tasks/{id}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    // The executor learns it by its next writes failing: the answer's stream is dropped.
    eventually(
        Duration::from_secs(10),
        "the executor's answer dropped",
        || {
            let sent = lines.send("{\"progress\": 0.6}\n".into());
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                sent.is_err().then_some(())
            }
        },
    )
    .await;
    let cancelled = app.task(&id).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(
        cancelled.progress,
        Some(0.5),
        "nothing after the cancel is written"
    );
}
