//! The peer seedcore is judged against: Graphile Worker, run by its own script from
//! `shared/peers/graphile` (BENCHMARKS.md). The script's folder is read-only, so it is copied
//! beside this executable's target folder and `npm install`ed there on first use; each call
//! prints one JSON object, parsed here. Without `node` (or `npm`) the peer is skipped with a
//! reason, never failed: the seedcore figures still stand, only their peer ratio is missing.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use crate::{
    error::{Context as _, Error, Result},
    external,
};

/// The peer's folder inside the peers folder, and the files copied out of it.
const PEER: &str = "graphile";
const FILES: [&str; 2] = ["graphile.js", "package.json"];
const INSTALL_LIMIT: Duration = Duration::from_secs(600);
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// A peer ready to run, or why it is not.
pub enum Peer {
    Ready { node: PathBuf, dir: PathBuf },
    Skipped(String),
}

impl Peer {
    /// Finds node, npm and the peer's script, copies it to a writable folder and installs its
    /// packages if they are not there yet. In smoke runs the peer is skipped: its script has
    /// fixed full sizes, and a smoke run measures nothing anyway.
    pub async fn prepare(peers_dir: Option<&Path>, smoke: bool) -> Peer {
        if smoke {
            return Peer::Skipped("Graphile Worker peer skipped: smoke sizes".into());
        }
        match prepare(peers_dir).await {
            Ok(peer) => peer,
            Err(err) => Peer::Skipped(format!("Graphile Worker peer skipped: {err}")),
        }
    }

    /// `node graphile.js <workload> --tuned` against the server of `admin_url`; its JSON object.
    pub async fn run(&self, workload: &str, admin_url: &str) -> Result<Value> {
        let Peer::Ready { node, dir } = self else {
            return Err(Error::new("the peer is not prepared"));
        };
        let mut command = external::command_in(node, dir);
        command
            .args(["graphile.js", workload, "--tuned"])
            .env("PEER_DSN", admin_url);
        let what = format!("`node graphile.js {workload} --tuned`");
        let output = external::run(command, &what, RUN_LIMIT).await?;
        last_json_line(&String::from_utf8_lossy(&output.stdout))
            .context(format_args!("read the JSON object {what} printed"))
    }
}

async fn prepare(peers_dir: Option<&Path>) -> Result<Peer> {
    let Some(node) = external::on_path("node") else {
        return Ok(Peer::Skipped(
            "Graphile Worker peer skipped: no `node` on PATH (Debian: nodejs, npm)".into(),
        ));
    };
    let source = match peers_dir {
        Some(dir) => dir.join(PEER),
        None => find_peers_dir().context("find shared/peers/graphile (pass --peers-dir)")?,
    };
    let dir = work_dir()?;
    copy_if_changed(&source, &dir)?;
    if !dir.join("node_modules/graphile-worker").is_dir() {
        let npm = external::on_path("npm").context("find `npm` on PATH")?;
        let mut command = external::command_in(&npm, &dir);
        command.args(["install", "--no-audit", "--no-fund"]);
        external::run(command, "`npm install` for the peer", INSTALL_LIMIT).await?;
    }
    Ok(Peer::Ready { node, dir })
}

/// `shared/peers/graphile` in an ancestor of the repository this tool was built from, or of
/// the current folder (a worktree sits beside or below the checkout that has `shared/`).
fn find_peers_dir() -> Option<PathBuf> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let here = std::env::current_dir().ok();
    [Some(built_from), here]
        .into_iter()
        .flatten()
        .flat_map(|start| {
            start
                .ancestors()
                .map(|dir| dir.join("shared/peers").join(PEER))
                .collect::<Vec<_>>()
        })
        .find(|dir| dir.join(FILES[0]).is_file())
}

/// `peer-graphile` in the target folder this executable was built into.
fn work_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("find this executable's path")?;
    let profile_dir = exe.parent().context("find this executable's folder")?;
    let target = profile_dir.parent().unwrap_or(profile_dir);
    Ok(target.join(format!("peer-{PEER}")))
}

fn copy_if_changed(source: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).context(format_args!("create {}", dir.display()))?;
    for file in FILES {
        let from = source.join(file);
        let to = dir.join(file);
        let wanted = std::fs::read(&from).context(format_args!("read {}", from.display()))?;
        if std::fs::read(&to).ok().as_deref() != Some(wanted.as_slice()) {
            std::fs::write(&to, wanted).context(format_args!("write {}", to.display()))?;
        }
    }
    Ok(())
}

/// The last line of `stdout` that is a JSON object (the script prints exactly one).
fn last_json_line(stdout: &str) -> Option<Value> {
    stdout
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .find(Value::is_object)
}

/// W1's figure: jobs per second, from a report whose every job ran.
pub fn w1_rate(report: &Value) -> Result<f64> {
    let jobs = number(report, "jobs")?;
    let calls = number(report, "handler_calls")?;
    if calls < jobs {
        return Err(Error::new(format!(
            "the peer ran {calls} of its {jobs} jobs"
        )));
    }
    positive(report, "jobs_per_s")
}

/// W2's figures: pickup p50 and p99 in ms, from a report that saw every job start.
pub fn w2_latencies(report: &Value) -> Result<(f64, f64)> {
    let jobs = number(report, "jobs")?;
    let received = number(report, "received")?;
    if received < jobs {
        return Err(Error::new(format!(
            "the peer saw {received} of its {jobs} jobs start"
        )));
    }
    Ok((positive(report, "p50_ms")?, positive(report, "p99_ms")?))
}

fn number(report: &Value, key: &str) -> Result<f64> {
    report[key]
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Error::new(format!("the peer's report has no number `{key}`: {report}")))
}

fn positive(report: &Value, key: &str) -> Result<f64> {
    let value = number(report, key)?;
    if value <= 0.0 {
        return Err(Error::new(format!("the peer reported {key} = {value}")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W1: &str = r#"{"system":"graphile-worker","workload":"w1","tuned":true,"jobs":20000,"handler_calls":20000,"jobs_per_s":9982,"enqueue_jobs_per_s":31000}"#;
    const W2: &str = r#"{"system":"graphile-worker","workload":"w2","tuned":true,"jobs":500,"received":500,"p50_ms":0.81,"p99_ms":4.47,"max_ms":9.1}"#;

    #[test]
    fn the_w1_rate_is_read_from_the_last_json_line() {
        let stdout = format!("some npm chatter\n{{\"not\": \"this\"}}\n{W1}\n");
        let report = last_json_line(&stdout).unwrap();
        assert_eq!(w1_rate(&report).unwrap(), 9982.0);
    }

    #[test]
    fn w2_latencies_are_read() {
        let report = last_json_line(W2).unwrap();
        assert_eq!(w2_latencies(&report).unwrap(), (0.81, 4.47));
    }

    #[test]
    fn a_report_with_missing_jobs_or_figures_is_refused() {
        let short: Value =
            serde_json::from_str(r#"{"jobs":20000,"handler_calls":19999,"jobs_per_s":9982}"#)
                .unwrap();
        assert!(w1_rate(&short).unwrap_err().to_string().contains("19999"));
        let zero: Value =
            serde_json::from_str(r#"{"jobs":1,"handler_calls":1,"jobs_per_s":0}"#).unwrap();
        assert!(w1_rate(&zero).is_err());
        let lost: Value =
            serde_json::from_str(r#"{"jobs":500,"received":499,"p50_ms":1,"p99_ms":2}"#).unwrap();
        assert!(w2_latencies(&lost).is_err());
        assert!(last_json_line("no json here\n[1,2]\n").is_none());
    }
}
