//! The load generator: a fixed number of concurrent workers, each sending its next request as
//! soon as the previous one answered (a closed loop), for a fixed time. Used for HTTP requests
//! to seedcore and for SQL statements of the baselines alike.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use crate::{
    error::{Error, Result},
    stats::Latencies,
};

/// What one closed-loop phase did.
#[derive(Debug)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Fails when nothing succeeded: a figure of 0 would hide a broken setup.
    pub fn require_success(self, what: &str) -> Result<LoadResult> {
        if self.ok == 0 {
            return Err(Error::new(format!(
                "{what}: no request succeeded ({} failed; first error: {})",
                self.errors,
                self.first_error.as_deref().unwrap_or("none")
            )));
        }
        Ok(self)
    }

    /// A note for the report when some requests failed.
    pub fn error_note(&self, what: &str) -> Option<String> {
        (self.errors > 0).then(|| {
            format!(
                "{what}: {} of {} requests failed (first: {})",
                self.errors,
                self.errors + self.ok,
                self.first_error.as_deref().unwrap_or("?")
            )
        })
    }
}

/// Per-worker tallies, merged at the end so workers share nothing while they run.
#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_ms: Vec<f64>,
    last_done: Option<Instant>,
}

/// Runs `op(worker, iteration)` from `concurrency` workers until `duration` has passed. A
/// request in flight at the deadline is allowed to finish and counts.
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, op: F) -> LoadResult
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let states = (0..concurrency).map(|_| ()).collect();
    closed_loop_owning(states, duration, move |(), worker, iteration| {
        let done = op(worker, iteration);
        async move { ((), done.await) }
    })
    .await
}

/// A closed loop whose workers each own one of `states` (a database connection of its own,
/// say): `op` gets the worker's state and hands it back with the outcome. One worker per
/// state.
pub async fn closed_loop_owning<S, F, Fut>(states: Vec<S>, duration: Duration, op: F) -> LoadResult
where
    S: Send + 'static,
    F: Fn(S, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (S, Result<(), String>)> + Send,
{
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = states
        .into_iter()
        .enumerate()
        .map(|(worker, mut state)| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut iteration = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let (returned, outcome) = op(state, worker, iteration).await;
                    state = returned;
                    let done = Instant::now();
                    iteration += 1;
                    tally.last_done = Some(done);
                    match outcome {
                        Ok(()) => {
                            tally.ok += 1;
                            tally.latencies_ms.push(ms(done - sent));
                        }
                        Err(err) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert(err);
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut merged = Tally::default();
    for worker in workers {
        let tally = match worker.await {
            Ok(tally) => tally,
            Err(err) => Tally {
                errors: 1,
                first_error: Some(format!("load worker panicked: {err}")),
                ..Tally::default()
            },
        };
        merged.ok += tally.ok;
        merged.errors += tally.errors;
        merged.first_error = merged.first_error.or(tally.first_error);
        merged.latencies_ms.extend(tally.latencies_ms);
        merged.last_done = merged.last_done.max(tally.last_done);
    }
    LoadResult {
        ok: merged.ok,
        errors: merged.errors,
        first_error: merged.first_error,
        elapsed: merged.last_done.unwrap_or(deadline) - start,
        latencies: Latencies::new(merged.latencies_ms),
    }
}

/// Sends `op` `count` times one after another, returning each latency in ms.
pub async fn sequential<F, Fut>(count: usize, mut op: F) -> Result<Latencies>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let sent = Instant::now();
        op(i).await?;
        samples.push(ms(sent.elapsed()));
    }
    Ok(Latencies::new(samples))
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// An HTTP/1.1 client that keeps a connection per concurrent worker alive.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|err| Error::new(format!("cannot build the HTTP client: {err}")))
}

/// Sends a request and reads the whole body; any status but 200 is an error.
pub async fn expect_ok(request: reqwest::RequestBuilder) -> Result<Vec<u8>, String> {
    let response = request.send().await.map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| err.to_string())?;
    if status != reqwest::StatusCode::OK {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    Ok(body.to_vec())
}
