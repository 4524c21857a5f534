//! The seedcore processes a workload measures: started from the real binary with a clean
//! environment, their address read from the log, their memory read from /proc, killed when
//! dropped (also when the workload fails or the tool is interrupted).

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::error::{Context, Error, Result};

/// Log lines kept per process, for waiting on a line and for error messages.
const LOG_TAIL: usize = 2_000;

/// Settings from the tool's own environment that would change what a child measures; the
/// child gets none of them, so it runs with seedcore's defaults plus what a workload sets.
fn withheld(name: &str) -> bool {
    const EXACT: [&str; 8] = [
        "PG_DSN",
        "DATABASE_URL",
        "HOST",
        "PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "RUST_LOG",
        "NO_COLOR",
    ];
    EXACT.contains(&name)
        || name.starts_with("SEEDCORE_")
        || name.starts_with("POSTGRES_")
        || name.starts_with("OCPS_")
}

/// The binary to run: `--seedcore`, else `seedcore` beside this executable.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let me = std::env::current_exe().context("find this executable's path")?;
            me.with_file_name(format!("seedcore{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        return Err(Error::new(format!(
            "no seedcore binary at {} (build it with `cargo build --release -p seedcore`, or \
             pass --seedcore PATH)",
            path.display()
        )));
    }
    Ok(path)
}

fn command(bin: &Path, args: &[&str], dsn: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin);
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(withheld) {
            command.env_remove(&name);
        }
    }
    // Plain log lines where the subscriber honours NO_COLOR; `parse_address` copes with
    // colour codes either way.
    command.env("NO_COLOR", "1").env("PG_DSN", dsn);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// `seedcore db init`: applies the migrations before anything is loaded.
pub async fn db_init(bin: &Path, dsn: &str) -> Result<()> {
    let mut command = command(bin, &["db", "init"], dsn, &[]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("wait for `seedcore db init`")?
        .context("run `seedcore db init`")?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "`seedcore db init` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// A running seedcore process.
pub struct Seedcore {
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
    what: String,
}

impl Seedcore {
    /// Starts `seedcore ARGS` on the database at `dsn`, listening (for `serve`) on a free
    /// loopback port.
    pub fn spawn(bin: &Path, args: &[&str], dsn: &str, env: &[(&str, &str)]) -> Result<Seedcore> {
        let what = format!("seedcore {}", args.join(" "));
        let mut command = command(bin, args, dsn, env);
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context(format_args!("start {what}"))?;
        let stderr = child.stderr.take().context("read the child's stderr")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let sink = log.clone();
        // The pipe must be drained all the time, or a chatty child would block on its log.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("log");
                if log.len() == LOG_TAIL {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
        Ok(Seedcore { child, log, what })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails, with the last log lines, if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::new(format!(
                "{} exited ({status}); log:\n{}",
                self.what,
                self.log_tail(30)
            ))),
            _ => Ok(()),
        }
    }

    /// Waits for a log line containing `needle`; fails if the process exits first.
    pub async fn wait_for_line(&mut self, needle: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.find_line(needle) {
                return Ok(line);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the reader thread a moment to collect the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(Error::new(format!(
                    "{} exited ({status}) before logging {needle:?}; log:\n{}",
                    self.what,
                    self.log_tail(30)
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "{} logged no {needle:?} within {within:?}; log:\n{}",
                    self.what,
                    self.log_tail(30)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn find_line(&self, needle: &str) -> Option<String> {
        let log = self.log.lock().expect("log");
        log.iter().find(|line| line.contains(needle)).cloned()
    }

    /// The kept log lines that contain `needle`, oldest first.
    pub fn lines_containing(&self, needle: &str) -> Vec<String> {
        let log = self.log.lock().expect("log");
        log.iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    /// For `serve`: the base URL from its "listening on http://..." line.
    pub async fn wait_for_address(&mut self) -> Result<String> {
        let line = self
            .wait_for_line("listening on http://", Duration::from_secs(60))
            .await?;
        parse_address(&line).context(format_args!("find the address in {line:?}"))
    }

    /// The last `n` log lines, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().expect("log");
        let skip = log.len().saturating_sub(n);
        log.iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Resident and peak resident memory now.
    pub fn memory(&self) -> Result<Memory> {
        Memory::of(self.pid())
    }
}

impl Drop for Seedcore {
    fn drop(&mut self) {
        // SIGKILL: a benchmark process has nothing to finish, and its database is dropped next.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http://HOST:PORT` out of a log line, whatever follows it.
fn parse_address(line: &str) -> Option<String> {
    let start = line.find("http://")?;
    let address: String = line[start + "http://".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    (!address.is_empty()).then(|| format!("http://{address}"))
}

/// A process's memory, from /proc/PID/status.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: the most it was ever resident.
    pub hwm_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context(format_args!("read /proc/{pid}/status"))?;
        Ok(Memory {
            rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0),
            hwm_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
        })
    }
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Samples a process's resident memory in the background and keeps the highest value seen:
/// the peak of one phase, which VmHWM (the peak since start) cannot give.
pub struct RssSampler {
    peak_kib: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let peak_kib = Arc::new(Mutex::new(0));
        let peak = peak_kib.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(memory) = Memory::of(pid) {
                    let mut peak = peak.lock().expect("peak");
                    *peak = (*peak).max(memory.rss_kib);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        RssSampler { peak_kib, task }
    }

    /// Stops sampling; the highest resident size seen, in KiB.
    pub fn stop(self) -> u64 {
        self.task.abort();
        *self.peak_kib.lock().expect("peak")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_cut_at_the_first_foreign_character() {
        let line = "2026-01-01T00:00:00Z  INFO seedcore::cli: seedcore listening on \
                    http://127.0.0.1:43210 address=127.0.0.1:43210";
        assert_eq!(parse_address(line).unwrap(), "http://127.0.0.1:43210");
        assert_eq!(
            parse_address("listening on http://127.0.0.1:5\u{1b}[3m").unwrap(),
            "http://127.0.0.1:5"
        );
        assert!(parse_address("no address").is_none());
    }

    #[test]
    fn memory_of_this_process_is_readable() {
        let memory = Memory::of(std::process::id()).unwrap();
        assert!(memory.rss_kib > 0 && memory.hwm_kib >= memory.rss_kib);
    }

    #[test]
    fn only_settings_that_change_the_child_are_withheld() {
        assert!(withheld("SEEDCORE_WORKER_CONCURRENCY"));
        assert!(withheld("POSTGRES_POOL_SIZE"));
        assert!(withheld("PORT"));
        assert!(!withheld("PATH"));
    }
}
