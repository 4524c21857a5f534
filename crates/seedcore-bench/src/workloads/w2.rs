//! W2, pickup latency: with `seedcore serve` idle, tasks enqueued one at a time through the API
//! at a steady rate; the figure is how long each waited between the commit of its enqueue and
//! its handler starting. The tool stamps the commit when the `200` answering the enqueue arrives
//! (the server answers after committing). Two paths, each on a database and a `serve` of its
//! own, in every run: the in-process `noop` handler, whose start the engine stamps in its debug
//! log ("handler started"); and a remote executor, the tool's own on loopback ([`Executor`]),
//! which stamps each call as it arrives. All stamps are the same machine's wall clock.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    executor::Executor,
    load::{expect_ok, http_client},
    peer::{self, Peer},
    process::Seedcore,
    report::{Better, Measure, RunOutcome},
    stats::Latencies,
    workloads::{Context, SETTLE, progress},
};

const TASK: &str = r#"{"type":"noop","run_immediately":true}"#;
/// The remote path's task type, which `serve` maps to the tool's executor.
const REMOTE_TYPE: &str = "w2.remote";
const REMOTE_TASK: &str = r#"{"type":"w2.remote","run_immediately":true}"#;

/// The engine's log line for a handler starting, at the level W2 turns on.
const STARTED: &str = "handler started";
const LOG_FILTER: &str = "info,seedcore::engine=debug";
/// The remote path's: the executor client's own debug lines stay off, so the call is not
/// preceded by a log write the in-process path does not make, and the kept log tail holds
/// every task's start.
const REMOTE_LOG_FILTER: &str = "info,seedcore::engine=debug,seedcore::engine::remote=info";

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    let peer = Peer::prepare(ctx.peers_dir.as_deref(), ctx.plan.smoke).await;
    let mut runs = Vec::new();
    for run in 1..=ctx.plan.runs {
        progress(format_args!(
            "w2 run {run}/{}: in-process handler",
            ctx.plan.runs
        ));
        let mut outcome = with_database(&ctx.admin, async |db| one_run(ctx, db).await).await?;
        progress(format_args!(
            "w2 run {run}/{}: remote executor",
            ctx.plan.runs
        ));
        let remote = with_database(&ctx.admin, async |db| remote_run(ctx, db).await).await?;
        outcome.measures.extend(remote.measures);
        outcome.notes.extend(remote.notes);
        peer_run(ctx, &peer, &mut outcome).await;
        runs.push(outcome);
    }
    Ok(runs)
}

/// The peer's W2 on the same server after seedcore's: its p50 and p99 become the baselines of
/// seedcore's pickup p50 and p99, on both paths. A peer that is skipped or fails leaves a note.
async fn peer_run(ctx: &Context, peer: &Peer, outcome: &mut RunOutcome) {
    let latencies = match peer {
        Peer::Skipped(reason) => Err(reason.clone()),
        Peer::Ready { .. } => {
            progress("w2: Graphile Worker peer");
            match peer.run("w2", ctx.admin.url()).await {
                Ok(report) => peer::w2_latencies(&report).map_err(|err| err.to_string()),
                Err(err) => Err(format!("Graphile Worker peer failed: {err}")),
            }
        }
    };
    let (p50, p99) = match latencies {
        Ok(latencies) => latencies,
        Err(reason) => return outcome.note(reason),
    };
    for measure in &mut outcome.measures {
        let baseline = match measure.key {
            "pickup_p50_ms" | "remote_pickup_p50_ms" => {
                ("graphile_tuned_p50_ms", "Graphile Worker p50", p50)
            }
            "pickup_p99_ms" | "remote_pickup_p99_ms" => {
                ("graphile_tuned_p99_ms", "Graphile Worker p99", p99)
            }
            _ => continue,
        };
        *measure = measure.clone().against(baseline.0, baseline.1, baseline.2);
    }
    outcome.note(
        "Graphile Worker, tuned: `node graphile.js w2 --tuned` on the same server, an idle runner \
         in process, 500 jobs added one at a time at 50/s; latency = handler start − addJob \
         resolved; the baseline of both seedcore paths",
    );
}

async fn one_run(ctx: &Context, db: &BenchDb) -> Result<RunOutcome> {
    let count = ctx.plan.pickup_tasks;
    let env = [("RUST_LOG", LOG_FILTER)];
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &env)?;
    let base = serve.wait_for_address().await?;
    // Let the workers make their first (empty) claim and go idle on their wake-ups.
    tokio::time::sleep(SETTLE).await;
    let pool = db.pool(2).await?;
    let enqueued = enqueue_steadily(&base, count, ctx.plan.pickup_rate, TASK).await?;
    wait_until_started(&pool, count, &mut serve).await?;
    let committed = commit_times(&pool).await?;
    let started = handler_starts(&mut serve, &enqueued).await?;
    drop(serve);
    let floor = commit_floor(&pool).await?;
    pool.close().await;

    let waits = Waits::of(&enqueued, &started)?;
    let mut outcome = RunOutcome::default();
    let since_answer = Latencies::new(waits.since_answer.clone());
    let since_request = Latencies::new(waits.since_request);
    outcome.push(Measure::new(
        "pickup_p50_ms",
        "in-process: pickup p50",
        "ms",
        Better::Lower,
        since_answer.p50(),
    ));
    outcome.push(Measure::new(
        "pickup_p99_ms",
        "in-process: pickup p99",
        "ms",
        Better::Lower,
        since_answer.p99(),
    ));
    outcome.push(Measure::new(
        "pickup_max_ms",
        "in-process: pickup max",
        "ms",
        Better::Lower,
        since_answer.max(),
    ));
    outcome.push(Measure::new(
        "request_to_start_p50_ms",
        "enqueue request → handler p50",
        "ms",
        Better::Lower,
        since_request.p50(),
    ));
    outcome.push(Measure::new(
        "request_to_start_p99_ms",
        "enqueue request → handler p99",
        "ms",
        Better::Lower,
        since_request.p99(),
    ));
    if let Some(committed) = committed {
        push_since_commit(&mut outcome, &enqueued, &started, &committed)?;
    }
    floor.push_to(&mut outcome);
    outcome.note(format!(
        "{count} noop tasks, one POST /api/v1/tasks (run_immediately) at a time at ~{} per \
         second, to `seedcore serve` with default settings (log filter {LOG_FILTER}); pickup = \
         handler start (the engine's \"{STARTED}\" log line) − arrival of the enqueue's answer, \
         which the server sends after its commit; both by this machine's wall clock. A \
         negative pickup is a handler that started before the answer arrived: the task was \
         started at its creation (README, \"Started at creation\"), and a ratio of it means \
         nothing. `enqueue request → handler` counts from the moment the request was sent, so \
         it includes the enqueue itself",
        ctx.plan.pickup_rate,
    ));
    outcome.note(format!(
        "handlers that started before their enqueue's answer arrived: {} of {count} in one run",
        waits.since_answer.iter().filter(|ms| **ms < 0.0).count()
    ));
    Ok(outcome)
}

/// The remote path: `serve` sends the tasks to the tool's executor, whose stamp of each call's
/// arrival is the handler's start. Beside the pickup: the engine's dispatch ("handler started")
/// → the call's arrival, which is the executor client's own share.
async fn remote_run(ctx: &Context, db: &BenchDb) -> Result<RunOutcome> {
    let count = ctx.plan.pickup_tasks;
    let executor = Executor::start().await?;
    let executors = format!("{REMOTE_TYPE}={}", executor.url());
    let env = [
        ("RUST_LOG", REMOTE_LOG_FILTER),
        ("SEEDCORE_EXECUTORS", &executors),
    ];
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &env)?;
    let base = serve.wait_for_address().await?;
    tokio::time::sleep(SETTLE).await;
    let pool = db.pool(2).await?;
    let enqueued = enqueue_steadily(&base, count, ctx.plan.pickup_rate, REMOTE_TASK).await?;
    wait_until_started(&pool, count, &mut serve).await?;
    pool.close().await;
    let called = executor_calls(&executor, &enqueued, &serve).await?;
    let dispatched = handler_starts(&mut serve, &enqueued).await?;
    drop(serve);

    let waits = Waits::of(&enqueued, &called)?;
    let mut outcome = RunOutcome::default();
    let pickup = Latencies::new(waits.since_answer.clone());
    outcome.push(Measure::new(
        "remote_pickup_p50_ms",
        "remote executor: pickup p50",
        "ms",
        Better::Lower,
        pickup.p50(),
    ));
    outcome.push(Measure::new(
        "remote_pickup_p99_ms",
        "remote executor: pickup p99",
        "ms",
        Better::Lower,
        pickup.p99(),
    ));
    outcome.push(Measure::new(
        "remote_pickup_max_ms",
        "remote executor: pickup max",
        "ms",
        Better::Lower,
        pickup.max(),
    ));
    let client = Latencies::new(dispatch_to_call(&enqueued, &dispatched, &called)?);
    outcome.push(Measure::new(
        "remote_dispatch_to_call_p50_ms",
        "remote executor: handler started → call arrived p50",
        "ms",
        Better::Lower,
        client.p50(),
    ));
    outcome.push(Measure::new(
        "remote_dispatch_to_call_p99_ms",
        "remote executor: handler started → call arrived p99",
        "ms",
        Better::Lower,
        client.p99(),
    ));
    outcome.note(format!(
        "remote executor: the same {count} enqueues of type {REMOTE_TYPE} to a `serve` started \
         with SEEDCORE_EXECUTORS={REMOTE_TYPE}=<the tool's executor>, an HTTP/1.1 server on \
         loopback that answers {{\"success\": true}} at once (log filter \
         {REMOTE_LOG_FILTER}); pickup = the call's arrival at \
         the executor (its whole body read) − arrival of the enqueue's answer; the calls came on \
         {} connection(s)",
        executor.connections()
    ));
    Ok(outcome)
}

/// When each enqueued task's call reached the executor (a call may still be on its way when
/// the last claim is visible in the database).
async fn executor_calls(
    executor: &Executor,
    enqueued: &[Enqueued],
    serve: &Seedcore,
) -> Result<HashMap<Uuid, DateTime<Utc>>> {
    let mut calls = HashMap::new();
    for _ in 0..100 {
        calls = executor.arrivals();
        if enqueued.iter().all(|task| calls.contains_key(&task.id)) {
            return Ok(calls);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::new(format!(
        "the executor got {} calls for {} tasks; serve log:\n{}",
        calls.len(),
        enqueued.len(),
        serve.log_tail(30)
    )))
}

/// Milliseconds from the engine's dispatch of each task to its call's arrival.
fn dispatch_to_call(
    enqueued: &[Enqueued],
    dispatched: &HashMap<Uuid, DateTime<Utc>>,
    called: &HashMap<Uuid, DateTime<Utc>>,
) -> Result<Vec<f64>> {
    enqueued
        .iter()
        .map(
            |task| match (dispatched.get(&task.id), called.get(&task.id)) {
                (Some(start), Some(call)) => Ok(millis(*call - *start)),
                _ => Err(Error::new(format!(
                    "cannot find the dispatch and call of task {}",
                    task.id
                ))),
            },
        )
        .collect()
}

/// Statements timed on an otherwise idle server, after `serve` has stopped: the floor under
/// any pickup. A claim is a committed write, so its answer waits for its WAL flush as a
/// committed one-row update does; `select 1` is the bare round trip.
struct Floor {
    commit: Latencies,
    select: Latencies,
}

const FLOOR_SAMPLES: usize = 200;

async fn commit_floor(pool: &PgPool) -> Result<Floor> {
    let setup = "create table w2_floor (id int primary key, n int not null); \
                 insert into w2_floor values (1, 0)";
    sqlx::raw_sql(setup)
        .execute(pool)
        .await
        .context("create the floor's table")?;
    let mut conn = pool.acquire().await.context("a connection for the floor")?;
    let mut commit = Vec::with_capacity(FLOOR_SAMPLES);
    let mut select = Vec::with_capacity(FLOOR_SAMPLES);
    for _ in 0..FLOOR_SAMPLES {
        let started = std::time::Instant::now();
        sqlx::query("update w2_floor set n = n + 1 where id = 1")
            .execute(&mut *conn)
            .await
            .context("a committed one-row update")?;
        commit.push(started.elapsed().as_secs_f64() * 1_000.0);
        let started = std::time::Instant::now();
        sqlx::query("select 1")
            .execute(&mut *conn)
            .await
            .context("select 1")?;
        select.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    Ok(Floor {
        commit: Latencies::new(commit),
        select: Latencies::new(select),
    })
}

impl Floor {
    fn push_to(&self, outcome: &mut RunOutcome) {
        let figures = [
            (
                "floor_commit_p50_ms",
                "floor: committed update p50",
                self.commit.p50(),
            ),
            (
                "floor_commit_p99_ms",
                "floor: committed update p99",
                self.commit.p99(),
            ),
            (
                "floor_select_p50_ms",
                "floor: select 1 p50",
                self.select.p50(),
            ),
        ];
        for (key, label, value) in figures {
            outcome.push(Measure::new(key, label, "ms", Better::Lower, value));
        }
        outcome.note(format!(
            "floor: after `serve` stopped, {FLOOR_SAMPLES} times in turn on one connection, a \
             committed `update` of one row (its answer waits for the WAL flush, as a claim's \
             does) and `select 1`; prepared statements, round trips timed by the tool"
        ));
    }
}

/// Each task's commit time, where the server records commit timestamps
/// (`track_commit_timestamp = on`): the commit of the transaction that wrote its `created`
/// event, which is the enqueue's.
async fn commit_times(pool: &PgPool) -> Result<Option<HashMap<Uuid, DateTime<Utc>>>> {
    let recorded: String = sqlx::query_scalar("show track_commit_timestamp")
        .fetch_one(pool)
        .await
        .context("read track_commit_timestamp")?;
    if recorded != "on" {
        return Ok(None);
    }
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        r"select task_id, pg_xact_commit_timestamp(xmin)
          from task_events where kind = 'created'",
    )
    .fetch_all(pool)
    .await
    .context("read the enqueues' commit timestamps")?;
    Ok(Some(rows.into_iter().collect()))
}

/// The stricter figure, from the commit timestamps: commit timestamp → handler start. It
/// overstates the wait by the commit's own flush, since PostgreSQL takes the timestamp first.
fn push_since_commit(
    outcome: &mut RunOutcome,
    enqueued: &[Enqueued],
    started: &HashMap<Uuid, DateTime<Utc>>,
    committed: &HashMap<Uuid, DateTime<Utc>>,
) -> Result<()> {
    let mut waits = Vec::with_capacity(enqueued.len());
    for task in enqueued {
        let (Some(start), Some(commit)) = (started.get(&task.id), committed.get(&task.id)) else {
            return Err(Error::new(format!(
                "cannot find the commit and handler start of task {}",
                task.id
            )));
        };
        waits.push(millis(*start - *commit));
    }
    let waits = Latencies::new(waits);
    outcome.push(Measure::new(
        "commit_to_start_p50_ms",
        "commit timestamp → handler p50",
        "ms",
        Better::Lower,
        waits.p50(),
    ));
    outcome.push(Measure::new(
        "commit_to_start_p99_ms",
        "commit timestamp → handler p99",
        "ms",
        Better::Lower,
        waits.p99(),
    ));
    outcome.note(
        "commit timestamp → handler: from the enqueue's commit timestamp (the server has \
         track_commit_timestamp on; PostgreSQL takes the timestamp as the commit begins, before \
         it flushes the commit to the WAL and makes it visible) to the handler's start",
    );
    Ok(())
}

/// One enqueue as the tool saw it.
pub(super) struct Enqueued {
    pub id: Uuid,
    pub sent: DateTime<Utc>,
    pub answered: DateTime<Utc>,
}

/// Sends `task` (a create body) `count` times, one after another, one every 1/rate seconds.
pub(super) async fn enqueue_steadily(
    base: &str,
    count: usize,
    rate: f64,
    task: &'static str,
) -> Result<Vec<Enqueued>> {
    let client = http_client()?;
    let url = format!("{base}/api/v1/tasks");
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut enqueued = Vec::with_capacity(count);
    for _ in 0..count {
        ticks.tick().await;
        let request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(task);
        let sent = Utc::now();
        let body = expect_ok(request)
            .await
            .map_err(|err| Error::new(format!("POST /api/v1/tasks failed: {err}")))?;
        let answered = Utc::now();
        enqueued.push(Enqueued {
            id: task_id(&body)?,
            sent,
            answered,
        });
    }
    Ok(enqueued)
}

fn task_id(body: &[u8]) -> Result<Uuid> {
    let task: serde_json::Value = serde_json::from_slice(body).context("read the created task")?;
    task["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .context(format_args!("read the task id in {task}"))
}

/// Waits until every task has been claimed.
async fn wait_until_started(pool: &PgPool, count: usize, serve: &mut Seedcore) -> Result<()> {
    for _ in 0..600 {
        let started: i64 =
            sqlx::query_scalar("select count(*) from tasks where started_at is not null")
                .fetch_one(pool)
                .await
                .context("count the started tasks")?;
        if started as usize >= count {
            return Ok(());
        }
        serve.ensure_running()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::new(format!(
        "not all {count} tasks started within 60 s; serve log:\n{}",
        serve.log_tail(30)
    )))
}

/// When each enqueued task's handler started, from serve's log (which its reader may still be
/// catching up on when the last claim is visible in the database).
async fn handler_starts(
    serve: &mut Seedcore,
    enqueued: &[Enqueued],
) -> Result<HashMap<Uuid, DateTime<Utc>>> {
    let mut starts = HashMap::new();
    for _ in 0..100 {
        starts = serve
            .lines_containing(STARTED)
            .iter()
            .filter_map(|line| started_at(line))
            .collect();
        if enqueued.iter().all(|task| starts.contains_key(&task.id)) {
            return Ok(starts);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::new(format!(
        "serve logged {} \"{STARTED}\" lines for {} tasks; log:\n{}",
        starts.len(),
        enqueued.len(),
        serve.log_tail(30)
    )))
}

/// Reads `2026-11-29T01:19:42.798147Z DEBUG seedcore::engine: handler started task_id=… …`.
fn started_at(line: &str) -> Option<(Uuid, DateTime<Utc>)> {
    let stamp = line.split_whitespace().next()?;
    let at = DateTime::parse_from_rfc3339(stamp)
        .ok()?
        .with_timezone(&Utc);
    let id = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("task_id="))?
        .parse()
        .ok()?;
    Some((id, at))
}

/// Milliseconds from each enqueue's answer, and from its request, to its handler's start.
pub(super) struct Waits {
    pub since_answer: Vec<f64>,
    pub since_request: Vec<f64>,
}

impl Waits {
    pub(super) fn of(
        enqueued: &[Enqueued],
        started: &HashMap<Uuid, DateTime<Utc>>,
    ) -> Result<Waits> {
        let mut waits = Waits {
            since_answer: Vec::with_capacity(enqueued.len()),
            since_request: Vec::with_capacity(enqueued.len()),
        };
        for task in enqueued {
            let start = started
                .get(&task.id)
                .context(format_args!("find the handler start of task {}", task.id))?;
            waits.since_answer.push(millis(*start - task.answered));
            waits.since_request.push(millis(*start - task.sent));
        }
        Ok(waits)
    }
}

fn millis(delta: chrono::TimeDelta) -> f64 {
    delta.num_microseconds().unwrap_or(i64::MAX) as f64 / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_start_line_gives_its_task_and_moment() {
        let line = "2026-11-29T01:19:42.798147Z DEBUG seedcore::engine: handler started \
                    task_id=0b6f4d0e-52f4-4c55-9a1e-8d1d3f3c2a10 attempt=1";
        let (id, at) = started_at(line).expect("parsed");
        assert_eq!(id.to_string(), "0b6f4d0e-52f4-4c55-9a1e-8d1d3f3c2a10");
        assert_eq!(at.timestamp_subsec_micros(), 798_147);
    }

    #[test]
    fn a_handler_start_line_inside_the_task_span_gives_its_task_and_moment() {
        let line = "2026-11-29T01:19:42.798147Z DEBUG task{task_id=0b6f4d0e-52f4-4c55-9a1e-8d1d3f3c2a10 \
                    attempt=1 worker=\"h:1:ab\" queue=default type=echo}: seedcore::engine: \
                    handler started task_id=0b6f4d0e-52f4-4c55-9a1e-8d1d3f3c2a10 attempt=1";
        let (id, at) = started_at(line).expect("parsed");
        assert_eq!(id.to_string(), "0b6f4d0e-52f4-4c55-9a1e-8d1d3f3c2a10");
        assert_eq!(at.timestamp_subsec_micros(), 798_147);
    }

    #[test]
    fn other_lines_are_not_handler_starts() {
        assert!(started_at("2026-11-29T01:19:42.798147Z  INFO seedcore::cli: listening").is_none());
        assert!(started_at("handler started task_id=not-a-uuid").is_none());
    }
}
