//! Keeps the benchmark tool from rotting: runs the built `seedcore-bench --smoke --json all`
//! (and the workloads `all` leaves out, M1, D1 and W5, the last through the Python client)
//! against the test PostgreSQL (`SEEDCORE_TEST_DATABASE_URL`, else the local default) and the
//! seedcore binary of this workspace, and checks that every workload printed its figures and,
//! where it has one, a positive baseline. Timings are never asserted. Like seedcore's own
//! PostgreSQL tests, it prints `SKIPPED (…)` and passes when nothing answers at that URL, unless
//! `SEEDCORE_TEST_REQUIRE_POSTGRES=1` (as `scripts/test.sh` sets) makes that a failure.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};

/// The whole smoke run takes well under a minute; this only stops a hung run.
const DEADLINE: Duration = Duration::from_secs(600);

fn admin_url() -> String {
    std::env::var("SEEDCORE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Why the test PostgreSQL is absent, when nothing answers at its URL. A server that answers
/// and refuses us is not absent: the run then fails with the tool's own message.
fn postgres_absent() -> Option<String> {
    let options: PgConnectOptions = admin_url().parse().ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
            Ok(Ok(conn)) => {
                conn.close().await.ok();
                None
            }
            Ok(Err(sqlx::Error::Io(err))) => Some(err.to_string()),
            Ok(Err(_)) => None,
            Err(_) => Some("no answer within 5 s".into()),
        }
    })
}

fn postgres_required() -> bool {
    matches!(
        std::env::var("SEEDCORE_TEST_REQUIRE_POSTGRES").as_deref(),
        Ok("1" | "true" | "yes")
    )
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// `CARGO_BIN_EXE_seedcore` exists only inside the seedcore package, so build its binary.
fn seedcore_binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "seedcore", "--bin", "seedcore"])
        .current_dir(workspace_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p seedcore failed");
    let binary = target_dir()
        .join("debug")
        .join(format!("seedcore{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "no seedcore binary at {}",
        binary.display()
    );
    binary
}

/// Runs the tool on `workload` and returns its stdout, failing the test on a non-zero exit or
/// a hang.
fn run_bench(seedcore: &Path, workload: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seedcore-bench"))
        .args(["--smoke", "--json", workload, "--seedcore"])
        .arg(seedcore)
        .args(["--dsn", &admin_url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start seedcore-bench");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for seedcore-bench") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("seedcore-bench still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().expect("stdout reader").expect("read stdout");
    let stderr = err.join().expect("stderr reader").expect("read stderr");
    assert!(
        status.success(),
        "seedcore-bench failed ({status}); stderr:\n{stderr}\nstdout:\n{stdout}"
    );
    stdout
}

fn positive(value: &Value) -> bool {
    value.as_f64().is_some_and(|v| v.is_finite() && v > 0.0)
}

/// Every figure has a finite median; every baseline a positive one and a ratio.
fn check_figures(report: &Value) -> usize {
    let name = report["workload"].as_str().unwrap_or("?");
    let figures = report["figures"].as_array().expect("figures");
    assert!(!figures.is_empty(), "{name}: no figures");
    let mut baselines = 0;
    for figure in figures {
        let key = figure["key"].as_str().unwrap_or("?");
        assert!(
            figure["median"].as_f64().is_some_and(f64::is_finite),
            "{name}.{key}: no median in {figure}"
        );
        if let Some(baseline) = figure.get("baseline") {
            assert!(
                positive(&baseline["median"]),
                "{name}.{key}: baseline {baseline}"
            );
            assert!(
                positive(&figure["ratio"]["median"]),
                "{name}.{key}: ratio {figure}"
            );
            baselines += 1;
        }
    }
    baselines
}

/// Whether the test must skip: no PostgreSQL answers (and none is required).
fn skip_without_postgres() -> bool {
    let Some(why) = postgres_absent() else {
        return false;
    };
    let line = format!(
        "no PostgreSQL at {}: {why}; set SEEDCORE_TEST_DATABASE_URL or run scripts/test.sh",
        admin_url()
    );
    assert!(
        !postgres_required(),
        "SEEDCORE_TEST_REQUIRE_POSTGRES is set, but: {line}"
    );
    // Straight to stderr: libtest would capture eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED: seedcore-bench's smoke run ({line})\n"
    );
    true
}

/// The JSON reports the tool printed, one per line.
fn reports(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn every_workload_reports_figures_and_a_baseline() {
    if skip_without_postgres() {
        return;
    }
    let stdout = run_bench(&seedcore_binary(), "all");
    let reports = reports(&stdout);
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["workload"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(names, ["w1", "w2", "w3", "w4", "f1"], "stdout:\n{stdout}");
    for report in &reports {
        assert_eq!(report["smoke"], true);
        let baselines = check_figures(report);
        // W2 has targets, not a same-run baseline (docs/benchmarks.md); every other has one.
        if report["workload"] != "w2" {
            assert!(baselines > 0, "no baseline in {report}");
        }
    }
    let w2 = &reports[1];
    for key in [
        "pickup_p99_ms",
        "remote_pickup_p99_ms",
        "floor_commit_p50_ms",
    ] {
        assert!(figure_keys(w2).contains(&key), "w2 printed no {key}: {w2}");
    }
}

fn figure_keys(report: &Value) -> Vec<&str> {
    report["figures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|figure| figure["key"].as_str())
        .collect()
}

#[test]
fn the_workloads_run_only_when_named_report_figures_against_their_baselines() {
    if skip_without_postgres() {
        return;
    }
    let seedcore = seedcore_binary();
    for workload in ["m1", "d1", "w5"] {
        let stdout = run_bench(&seedcore, workload);
        let reports = reports(&stdout);
        assert_eq!(reports.len(), 1, "stdout:\n{stdout}");
        let report = &reports[0];
        assert_eq!(report["workload"], workload);
        if workload == "w5" && python_absent() {
            assert!(skipped_for_python(report), "w5 without python3: {report}");
            continue;
        }
        assert!(check_figures(report) > 0, "no baseline in {report}");
    }
}

/// W5 runs the Python client, and skips (with a note) only where there is no `python3`.
fn python_absent() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    !std::env::split_paths(&path).any(|dir| dir.join("python3").is_file())
}

fn skipped_for_python(report: &Value) -> bool {
    report["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|note| note.starts_with("Python client skipped"))
}
