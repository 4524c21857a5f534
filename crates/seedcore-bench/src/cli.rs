//! The command line, and the plan it turns into: how many tasks, facts, requests and seconds
//! each workload uses, full size or `--smoke`.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

/// Measures seedcore on workloads W1–W4 and F1 (docs/benchmarks.md), each beside a baseline
/// measured in the same run. Creates (and drops) its own databases and starts the seedcore
/// processes it measures.
#[derive(Parser, Debug)]
#[command(name = "seedcore-bench", version)]
pub struct Args {
    /// Admin URL of the PostgreSQL server to create the benchmark databases on.
    #[arg(
        long,
        env = "SEEDCORE_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub dsn: String,

    /// The seedcore binary to measure (default: `seedcore` next to this executable).
    #[arg(long)]
    pub seedcore: Option<PathBuf>,

    /// Times each workload runs; figures are reported as median, min and max.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// One JSON object per workload on stdout instead of the human table.
    #[arg(long)]
    pub json: bool,

    /// Tiny sizes and one run: checks that every workload works, measures nothing meaningful.
    #[arg(long)]
    pub smoke: bool,

    /// The folder holding the peers' scripts (`graphile/` with graphile.js); default: the
    /// `shared/peers` folder found in an ancestor of the repository or the current folder.
    #[arg(long, env = "SEEDCORE_BENCH_PEERS_DIR")]
    pub peers_dir: Option<PathBuf>,

    /// Concurrent connections of W3's and F1's load and of their SQL baselines (default 64, as
    /// the workloads are defined; 8 with --smoke). Fewer fit a server shared with other
    /// clients; figures from such a run are not comparable with the defined workload.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: Option<u32>,

    /// Finished tasks W4 loads before its second measurement (default 10,000,000; 10,000 with
    /// --smoke).
    #[arg(long)]
    pub w4_rows: Option<u64>,

    /// Finished tasks M1 and D1 load into the history before their second measurement
    /// (default 10,000,000; 10,000 with --smoke).
    #[arg(long)]
    pub m1_rows: Option<u64>,

    /// The workload to run (`all` runs W1–W4 and F1; W5, M1, M2 and D1 run when named).
    #[arg(value_enum)]
    pub workload: Selection,
}

/// A workload, or all of them in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Selection {
    W1,
    W2,
    W3,
    W4,
    W5,
    F1,
    M1,
    M2,
    D1,
    All,
}

/// One workload of docs/benchmarks.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    W1,
    W2,
    W3,
    W4,
    W5,
    F1,
    M1,
    M2,
    D1,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::F1,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
            Workload::W3 => "w3",
            Workload::W4 => "w4",
            Workload::W5 => "w5",
            Workload::F1 => "f1",
            Workload::M1 => "m1",
            Workload::M2 => "m2",
            Workload::D1 => "d1",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Workload::W1 => "drain throughput",
            Workload::W2 => "pickup latency",
            Workload::W3 => "API throughput",
            Workload::W4 => "scale",
            Workload::W5 => "pull API, Python client",
            Workload::F1 => "fact search",
            Workload::M1 => "metrics scrape",
            Workload::M2 => "metrics cost",
            Workload::D1 => "dashboard task list",
        }
    }
}

impl Selection {
    pub fn workloads(self) -> Vec<Workload> {
        match self {
            Selection::W1 => vec![Workload::W1],
            Selection::W2 => vec![Workload::W2],
            Selection::W3 => vec![Workload::W3],
            Selection::W4 => vec![Workload::W4],
            Selection::W5 => vec![Workload::W5],
            Selection::F1 => vec![Workload::F1],
            Selection::M1 => vec![Workload::M1],
            Selection::M2 => vec![Workload::M2],
            Selection::D1 => vec![Workload::D1],
            Selection::All => Workload::ALL.to_vec(),
        }
    }
}

/// Sizes and durations of every workload.
#[derive(Clone, Debug)]
pub struct Plan {
    pub smoke: bool,
    pub runs: u32,
    /// Tasks enqueued and drained by W1 and each W4 drain.
    pub drain_tasks: i64,
    /// W2: tasks enqueued one at a time, and how many per second.
    pub pickup_tasks: usize,
    pub pickup_rate: f64,
    /// W3 and F1 create throughput: concurrent connections and how long each phase lasts.
    pub connections: usize,
    pub api_duration: Duration,
    pub fact_create_duration: Duration,
    /// W4: finished tasks loaded, and list requests per measurement.
    pub w4_rows: i64,
    pub list_requests: usize,
    /// F1: facts loaded, API search requests per query, and seq-scan baseline samples per query.
    pub facts: i64,
    pub search_requests: usize,
    pub seqscan_samples: usize,
    /// M1: finished tasks loaded into the history, ready tasks waiting, and scrapes per
    /// measurement.
    pub m1_rows: i64,
    pub m1_ready: i64,
    pub scrape_requests: usize,
}

impl Plan {
    pub fn new(args: &Args) -> Plan {
        let smoke = args.smoke;
        Plan {
            smoke,
            runs: if smoke { 1 } else { args.runs },
            drain_tasks: pick(smoke, 20_000, 200),
            pickup_tasks: pick(smoke, 500, 25),
            pickup_rate: 50.0,
            // Small in smoke runs: its test runs beside another on a cluster that may have
            // PostgreSQL's default 100 connections, shared with each run's `serve`.
            connections: args.connections.map_or(pick(smoke, 64, 8), |n| n as usize),
            api_duration: Duration::from_secs(pick(smoke, 20, 1)),
            fact_create_duration: Duration::from_secs(pick(smoke, 5, 1)),
            w4_rows: args.w4_rows.map_or(pick(smoke, 10_000_000, 10_000), |n| {
                n.min(i64::MAX as u64) as i64
            }),
            list_requests: pick(smoke, 100, 20),
            facts: pick(smoke, 1_000_000, 1_000),
            search_requests: pick(smoke, 100, 10),
            seqscan_samples: pick(smoke, 10, 2),
            m1_rows: args.m1_rows.map_or(pick(smoke, 10_000_000, 10_000), |n| {
                n.min(i64::MAX as u64) as i64
            }),
            m1_ready: pick(smoke, 10_000, 100),
            scrape_requests: pick(smoke, 100, 10),
        }
    }
}

/// `serve`'s connections at most: seedcore's default `POSTGRES_POOL_SIZE`, which the tool
/// leaves as it is (see `process::withheld`).
const SERVE_POOL: usize = 20;

/// The tool's own connections beside a baseline's: its admin and bookkeeping pools.
const TOOL_CONNECTIONS: usize = 4;

impl Plan {
    /// The most connections `workloads` open at once, when one of them opens a baseline's
    /// [`Plan::connections`] (W3 and F1, whose create baseline runs while `serve` still holds
    /// its pool); `None` when none does.
    pub fn peak_connections(&self, workloads: &[Workload]) -> Option<usize> {
        workloads
            .iter()
            .any(|w| matches!(w, Workload::W3 | Workload::F1))
            .then_some(self.connections + SERVE_POOL + TOOL_CONNECTIONS)
    }
}

/// The full-size value, or the tiny one in smoke mode.
fn pick<T>(smoke: bool, full: T, tiny: T) -> T {
    if smoke { tiny } else { full }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_shrinks_everything_and_runs_once() {
        let args = Args::parse_from(["seedcore-bench", "--smoke", "--runs", "5", "all"]);
        let plan = Plan::new(&args);
        assert_eq!(plan.runs, 1);
        assert!(plan.drain_tasks <= 1_000 && plan.facts <= 10_000 && plan.w4_rows <= 100_000);
        assert!(plan.connections <= 8, "{} connections", plan.connections);
        assert_eq!(args.workload.workloads().len(), 5);
    }

    #[test]
    fn connections_given_replace_the_default_in_full_and_smoke_runs() {
        for smoke in [None, Some("--smoke")] {
            let argv = ["seedcore-bench", "--connections", "16", "w3"];
            let args = Args::parse_from(argv.into_iter().chain(smoke));
            let plan = Plan::new(&args);
            assert_eq!(plan.connections, 16);
            assert_eq!(plan.peak_connections(&[Workload::W3]), Some(16 + 20 + 4));
        }
        let default = Plan::new(&Args::parse_from(["seedcore-bench", "w3"]));
        assert_eq!(default.connections, 64);
        let none = Args::try_parse_from(["seedcore-bench", "--connections", "0", "w3"]);
        assert!(none.is_err(), "a run without connections measures nothing");
    }

    #[test]
    fn only_the_workloads_with_many_connections_ask_for_room() {
        let plan = Plan::new(&Args::parse_from(["seedcore-bench", "all"]));
        assert_eq!(plan.peak_connections(&[Workload::W1, Workload::W2]), None);
        assert_eq!(plan.peak_connections(&[Workload::F1]), Some(64 + 20 + 4));
        assert_eq!(plan.peak_connections(&Workload::ALL), Some(88));
    }

    #[test]
    fn w4_rows_overrides_the_default() {
        let args = Args::parse_from(["seedcore-bench", "--w4-rows", "1234", "w4"]);
        assert_eq!(Plan::new(&args).w4_rows, 1234);
        assert_eq!(Plan::new(&args).runs, 3);
    }
}
