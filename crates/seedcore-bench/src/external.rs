//! Programs the tool runs beside seedcore (node, npm, pgbench): found on PATH, run with a time
//! bound and a clean way out. Nothing here decides what a missing program means; the callers
//! skip their baseline with a note when a program is absent.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::error::{Context as _, Error, Result};

/// The first `name` on PATH that is a file.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `command` to completion, killing it after `limit`; fails on a non-zero exit with the
/// end of its stderr. Blocking: call it from `spawn_blocking`.
fn run_blocking(mut command: Command, what: &str, limit: Duration) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context(format_args!("start {what}"))?;
    // Readers on their own threads, so a chatty child never blocks on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context(format_args!("wait for {what}"))? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(format!(
                "{what} ran longer than {limit:?} and was killed"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        return Err(Error::new(format!(
            "{what} exited with {}: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    Ok(output)
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// `run_blocking` off the async runtime.
pub async fn run(command: Command, what: &str, limit: Duration) -> Result<Output> {
    let what_owned = what.to_string();
    tokio::task::spawn_blocking(move || run_blocking(command, &what_owned, limit))
        .await
        .context(format_args!("wait for {what}"))?
}

/// A command for `program` in `dir` with the tool's environment.
pub fn command_in(program: &Path, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir);
    command
}
