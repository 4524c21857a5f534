//! Many `seedcore serve` nodes on one PostgreSQL, one of them cut off from the database in the
//! middle of a run: it fences itself (stops the handlers whose lease it can no longer vouch
//! for), reports not-ready, stops claiming, and its tasks move to the other nodes; nothing runs
//! twice at the same time; once reconnected it is ready again and runs tasks again.
//!
//! Topology (PostgreSQL only; needs root for `ip netns`):
//!
//! ```text
//!            root namespace (the test process)                 namespace scn-<pid>-<i>
//!  PostgreSQL 127.0.0.1:5432 <── forwarder 10.231.b.1 ══ db link ══ 10.231.b.2  seedcore
//!  executor   0.0.0.0:<port>  <───────────  10.231.b.5 ══ api link ═ 10.231.b.6  serve :<port>
//! ```
//!
//! Three namespaces, each with its own pair of veth links (a /30 each, from a /27 of
//! 10.231.0.0/16 free on this machine). PostgreSQL listens on loopback only, so the test
//! forwards each node's database connections from the root end of its database link. Tasks
//! run on an executor served by the test process, which records each call's start and end per
//! task and per node (by the caller's address on its API link): a handler a node stops drops
//! its call, which the executor sees as a closed connection. Cutting a node off is bringing
//! the root end of its database link down: a silent cut (packets dropped, no reset), as a
//! failed switch or a partition makes; reconnecting is bringing it up. Namespaces (and their
//! links) are removed when the test ends, panic or not, and those a crashed earlier run left
//! are removed when the next starts (see `nodes/netns.rs`).
//!
//! With the 3 s lease used here, a cut-off node's handlers stop 2.2 to 2.5 s after the cut (at
//! most a sixth of the lease before the lease can expire), `/readyz` answers 503 after its 3 s
//! timeout, and answers 200 again 0.65 to 0.95 s after the link comes back (as after a cut of
//! a minute); the test prints what it measured.

mod common;
#[path = "nodes/executor.rs"]
mod executor;
#[path = "nodes/forward.rs"]
mod forward;
#[path = "nodes/netns.rs"]
mod netns;

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use common::{TestDb, eventually, postgres_only, process::Process};
use executor::{Call, Executor};
use forward::Forwarder;
use netns::Netns;
use reqwest::StatusCode;
use seedcore::{
    model::NewTask,
    store::{PgStore, Store},
};
use serde_json::json;
use uuid::Uuid;

/// The nodes' lease: short, so that the test is.
const LEASE: Duration = Duration::from_secs(3);
/// Tasks each node runs at once.
const CONCURRENCY: usize = 2;
/// How long a node waits for a pooled connection before answering 503.
const POOL_TIMEOUT_SECONDS: &str = "2";
/// Longer than any answer of a node may take (readiness waits 3 s for the database).
const HANG: Duration = Duration::from_secs(6);

/// One `seedcore serve` in a namespace of its own, with its database forwarder; dropped in
/// that order (the process killed before its namespace is removed).
struct Node {
    process: Process,
    _forwarder: Forwarder,
    netns: Netns,
    base: String,
}

impl Node {
    async fn start(netns: Netns, db: &TestDb, executor: &Executor) -> Node {
        let postgres: SocketAddr = postgres_address(db);
        let listen = SocketAddr::new(IpAddr::V4(netns.db_root), 0);
        let forwarder = Forwarder::start(listen, postgres).await;
        let mut url = url::Url::parse(&db.url()).expect("the test database's URL");
        url.set_host(Some(&netns.db_root.to_string()))
            .expect("host");
        url.set_port(Some(forwarder.address.port())).expect("port");
        let executor_url = format!("work=http://{}:{}/run", netns.api_root, executor.port);
        let lease = LEASE.as_secs().to_string();
        let concurrency = CONCURRENCY.to_string();
        let host = netns.api_node.to_string();
        let mut command = netns.command(common::process::BIN);
        command.arg("serve");
        for var in [
            "PG_DSN",
            "POSTGRES_HOST",
            "POSTGRES_PORT",
            "POSTGRES_DB",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command.envs([
            ("DATABASE_URL", url.as_str()),
            ("HOST", &host),
            ("PORT", "0"),
            ("LOG_LEVEL", "INFO"),
            ("SEEDCORE_AUTH", "off"),
            ("SEEDCORE_EXECUTORS", &executor_url),
            ("SEEDCORE_LEASE_SECONDS", &lease),
            ("SEEDCORE_WORKER_CONCURRENCY", &concurrency),
            ("SEEDCORE_ESCALATED_CONCURRENCY", "0"),
            ("SEEDCORE_POLL_INTERVAL_MS", "200"),
            ("SEEDCORE_RETRY_BASE_SECONDS", "0.2"),
            ("SEEDCORE_SHUTDOWN_GRACE_SECONDS", "1"),
            ("POSTGRES_POOL_TIMEOUT", POOL_TIMEOUT_SECONDS),
        ]);
        let mut process = Process::from_command(command);
        let base = tokio::task::block_in_place(|| process.wait_for_address());
        Node {
            process,
            _forwarder: forwarder,
            netns,
            base,
        }
    }

    /// The node's address on its API link: how the executor tells its calls apart.
    fn address(&self) -> IpAddr {
        IpAddr::V4(self.netns.api_node)
    }

    /// `/readyz`'s status; a transport error or no answer within [`HANG`] fails the test.
    async fn readiness(&self, client: &reqwest::Client) -> StatusCode {
        let url = format!("{}/readyz", self.base);
        match client.get(&url).send().await {
            Ok(response) => response.status(),
            Err(err) => panic!("{url} did not answer: {err}"),
        }
    }

    /// Waits until `/readyz` answers `status`, failing after `within`; how long it took.
    async fn wait_readiness(
        &self,
        client: &reqwest::Client,
        status: StatusCode,
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        let what = format!("{} answering {status} on /readyz", self.base);
        eventually(within, &what, || async {
            (self.readiness(client).await == status).then_some(())
        })
        .await;
        started.elapsed()
    }
}

/// Where the test's PostgreSQL listens.
fn postgres_address(db: &TestDb) -> SocketAddr {
    let url = url::Url::parse(&db.url()).expect("the test database's URL");
    let host = url.host_str().expect("a host");
    let port = url.port().unwrap_or(5432);
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().expect("the test PostgreSQL by IP address")
    };
    SocketAddr::new(ip, port)
}

/// `count` tasks for the executor, with `params` (see `nodes/executor.rs`).
async fn enqueue(store: &PgStore, count: usize, params: serde_json::Value) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let mut task = NewTask::of_type("work");
        task.params = params.as_object().cloned().expect("params");
        task.max_attempts = 5;
        task.run_immediately = true;
        ids.push(store.create_task(task).await.expect("enqueue").id);
    }
    ids
}

async fn completed(store: &PgStore, ids: &[Uuid]) -> usize {
    let found = store.get_tasks(ids).await.expect("read the tasks");
    found
        .iter()
        .filter(|t| t.status == seedcore::model::TaskStatus::Completed)
        .count()
}

async fn wait_all_completed(store: &PgStore, ids: &[Uuid], within: Duration) {
    let what = format!("all {} tasks completed", ids.len());
    eventually(within, &what, || async {
        (completed(store, ids).await == ids.len()).then_some(())
    })
    .await;
}

/// Two calls of one task that were running at the same moment, if any.
fn overlapping(calls: &[Call]) -> Option<(Call, Call)> {
    let mut sorted = calls.to_vec();
    sorted.sort_by_key(|c| (c.task, c.start));
    sorted.windows(2).find_map(|pair| {
        let (first, second) = (&pair[0], &pair[1]);
        let first_end = first.end.unwrap_or_else(Instant::now);
        (first.task == second.task && second.start < first_end)
            .then(|| (first.clone(), second.clone()))
    })
}

postgres_only!(
    a_node_cut_off_from_the_database_fences_itself_and_its_tasks_move_to_the_others,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn a_node_cut_off_from_the_database_fences_itself_and_its_tasks_move_to_the_others() {
    netns::require_root();
    netns::remove_stale();
    let db = TestDb::postgres().await;
    let store = db.pg_store().await;
    let executor = Executor::start().await;
    let block = netns::free_block();
    let mut nodes = Vec::new();
    for index in 0..3 {
        nodes.push(Node::start(Netns::create(block, index), &db, &executor).await);
    }
    let client = reqwest::Client::builder()
        .timeout(HANG)
        .no_proxy()
        .build()
        .expect("an HTTP client");
    for node in &nodes {
        node.wait_readiness(&client, StatusCode::OK, Duration::from_secs(20))
            .await;
    }
    let cut_node = &nodes[0];
    let cut_address = cut_node.address();

    // On the node to be cut off tasks run far longer than the lease: a handler still running
    // when its node is cut off outlives its lease, and only fencing stops it before the task
    // runs elsewhere (where it is quick, so the others have room for it at once).
    let slow = json!({"seconds": 1.0, "slow_on": cut_address.to_string(), "slow_seconds": 8.0});
    let first = enqueue(&store, 12, slow).await;
    eventually(
        Duration::from_secs(20),
        "the node to be cut off runs a task",
        || async {
            let calls = executor.calls();
            calls
                .iter()
                .any(|c| c.node == cut_address && c.end.is_none())
                .then_some(())
        },
    )
    .await;
    cut_node.netns.cut();
    let cut_at = Instant::now();

    // Not ready within its readiness timeout (3 s) and a little more, and not ready throughout.
    let not_ready_after = cut_node
        .wait_readiness(
            &client,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(6),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while completed(&store, &first).await < first.len() {
        assert_eq!(
            cut_node.readiness(&client).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "the cut-off node said it was ready while cut off"
        );
        assert!(
            Instant::now() < deadline,
            "the other nodes did not complete the first tasks within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    cut_node.netns.reconnect();
    let reconnected_at = Instant::now();
    // Measured well under a second, after a cut of 12 s as here or of a minute.
    let ready_after = cut_node
        .wait_readiness(&client, StatusCode::OK, Duration::from_secs(10))
        .await;
    let second = enqueue(&store, 12, json!({"seconds": 1.0})).await;
    wait_all_completed(&store, &second, Duration::from_secs(30)).await;
    eventually(
        Duration::from_secs(20),
        "the reconnected node runs tasks again",
        || async {
            executor
                .calls()
                .iter()
                .any(|c| c.node == cut_address && c.start > reconnected_at && c.answered)
                .then_some(())
        },
    )
    .await;

    let calls = executor.calls();
    if let Some((a, b)) = overlapping(&calls) {
        panic!("a task ran twice at the same time: {a:?} and {b:?}");
    }
    let in_flight_at_cut: Vec<&Call> = calls
        .iter()
        .filter(|c| c.node == cut_address && c.start <= cut_at)
        .filter(|c| c.end.is_none_or(|end| end > cut_at))
        .collect();
    assert!(
        !in_flight_at_cut.is_empty(),
        "nothing ran on the node when it was cut off"
    );
    let fenced: Vec<Duration> = in_flight_at_cut
        .iter()
        .map(|c| c.end.expect("a call of the cut-off node never ended") - cut_at)
        .collect();
    for (call, after) in in_flight_at_cut.iter().zip(&fenced) {
        assert!(
            *after <= LEASE,
            "a handler of the cut-off node ran {after:?} past the cut, beyond its lease: {call:?}"
        );
    }
    assert!(
        in_flight_at_cut.iter().any(|c| !c.answered),
        "no handler of the cut-off node was stopped (each outran its lease?): {in_flight_at_cut:?}"
    );
    for call in in_flight_at_cut.iter().filter(|c| !c.answered) {
        assert!(
            calls
                .iter()
                .any(|c| c.task == call.task && c.node != cut_address && c.answered),
            "the stopped task {} was not completed by another node",
            call.task
        );
    }
    let started_while_cut: Vec<&Call> = calls
        .iter()
        .filter(|c| c.node == cut_address && c.start > cut_at && c.start < reconnected_at)
        .collect();
    assert!(
        started_while_cut.is_empty(),
        "the cut-off node started work while cut off: {started_while_cut:?}"
    );
    // The node says why its tasks stopped.
    let cut_node = &mut nodes[0];
    tokio::task::block_in_place(|| {
        cut_node.process.wait_for_line(
            "stopped tasks whose lease could not be renewed in time",
            Duration::from_secs(5),
        )
    });
    let all: Vec<Uuid> = first.iter().chain(&second).copied().collect();
    assert_eq!(completed(&store, &all).await, all.len());
    eprintln!(
        "handlers stopped {:?} after the cut; not ready {not_ready_after:?} after it; ready \
         again {ready_after:?} after reconnecting",
        fenced
    );
    drop(nodes);
}
