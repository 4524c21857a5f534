//! The real `seedcore` binary as a child process, for tests of the command line, signals and
//! several processes sharing one database.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_seedcore");

/// Settings the tests' environment may hold that would change which database a child uses.
const DATABASE_VARS: [&str; 8] = [
    "PG_DSN",
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "SEEDCORE_DATA_DIR",
];

/// `seedcore ARGS` with a clean database environment plus `env`.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for var in DATABASE_VARS {
        command.env_remove(var);
    }
    command.env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// A running child whose stderr lines are collected in the background.
pub struct Process {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Process {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Process {
        Process::from_command(command(args, env))
    }

    /// `seedcore serve` on the database at `database_url`, on a free loopback port, with `env`
    /// added.
    pub fn serve(database_url: &str, env: &[(&str, &str)]) -> Process {
        let mut all = vec![
            ("DATABASE_URL", database_url),
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
        ];
        all.extend_from_slice(env);
        Process::spawn(&["serve"], &all)
    }

    /// Starts a prepared command (see [`command`]), collecting its stderr.
    pub fn from_command(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seedcore");
        let stderr = child.stderr.take().expect("stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// For `serve`: the base URL from the "listening on" line.
    pub fn wait_for_address(&mut self) -> String {
        let line = self.wait_for_line("listening on http://", Duration::from_secs(30));
        let start = line.find("http://").expect("an address");
        line[start..]
            .split_whitespace()
            .next()
            .expect("address")
            .to_string()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Sends SIGTERM and asserts a clean exit within 15 s.
    pub fn stop(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(15));
        assert!(
            status.success(),
            "exit {status:?}; log:\n{}",
            self.log.join("\n")
        );
    }

    /// Waits up to 30 s for a process that must refuse to run, asserts it failed, and returns
    /// its log.
    pub fn refusal(&mut self) -> String {
        let status = self.wait_exit(Duration::from_secs(30));
        let log = self.log.join("\n");
        assert!(!status.success(), "it ran ({status:?}); log:\n{log}");
        log
    }

    /// Waits for the process to exit, failing the test after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The reader may not have passed on the last lines yet; it ends at the pipe's
                // end, which closes the channel.
                let drained = Instant::now() + Duration::from_secs(5);
                while let Ok(line) = self
                    .lines
                    .recv_timeout(drained.saturating_duration_since(Instant::now()))
                {
                    self.log.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
