//! A private PostgreSQL cluster for one test, which the test may stop, start and drop
//! databases on: Debian's server binaries (`/usr/lib/postgresql/*/bin`), run as the `postgres`
//! user when the tests run as root (initdb and postgres refuse root), on a free port, in a
//! folder of its own. The shared test server is never touched.
//!
//! Invariant: dropping the [`Cluster`] stops its server (immediate mode) and removes its
//! folder, so a failing test leaves nothing running.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use sqlx::{AssertSqlSafe, ConnectOptions, Connection, postgres::PgConnectOptions};
use uuid::Uuid;

/// A PostgreSQL server of the test's own.
pub struct Cluster {
    bin: PathBuf,
    folder: PathBuf,
    port: u16,
    owner: Option<&'static str>,
}

impl Cluster {
    /// Creates and starts a cluster; panics, saying what is missing, when it cannot.
    pub fn start() -> Cluster {
        let bin = server_binaries().unwrap_or_else(|| {
            panic!(
                "these tests start a PostgreSQL server of their own and need its binaries \
                 (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH: install the \
                 Debian package `postgresql` (scripts/test.sh does when they are missing)"
            )
        });
        let owner = is_root().then_some("postgres");
        let folder = PathBuf::from(format!("/tmp/seedcore-faults-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).expect("create the cluster folder");
        let cluster = Cluster {
            bin,
            port: free_port(),
            folder,
            owner,
        };
        if let Some(owner) = owner {
            let chown = Command::new("chown")
                .arg(owner)
                .arg(&cluster.folder)
                .status();
            assert!(
                chown.is_ok_and(|s| s.success()),
                "cannot give {} to the `{owner}` user (as root the server runs as that user, \
                 which the Debian package creates)",
                cluster.folder.display()
            );
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-locale",
            ],
        );
        cluster.resume();
        cluster
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.folder.display()
        );
        let log = self.folder.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stops the server the way an administrator does (fast: sessions are ended, then it
    /// shuts down cleanly), waiting until it has.
    pub fn halt(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// An admin URL for database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` on the `postgres` database (for create and drop database).
    pub async fn admin(&self, sql: &str) {
        let options: PgConnectOptions = self.url("postgres").parse().expect("a URL");
        let mut conn = options
            .connect()
            .await
            .expect("connect to the private cluster");
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
        conn.close().await.ok();
    }

    /// A pool on database `name`, for checking rows behind the server's back.
    pub async fn pool(&self, name: &str) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.url(name))
            .await
            .expect("connect to the private cluster")
    }

    fn data(&self) -> String {
        self.folder.join("data").display().to_string()
    }

    /// Runs one of the server's programs as the cluster's owner, panicking with its output
    /// and the server log when it fails.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let output = self
            .command(program, args)
            .output()
            .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
        if !output.status.success() {
            let log = std::fs::read_to_string(self.folder.join("log")).unwrap_or_default();
            panic!(
                "{program} {args:?} failed: {}{}\nserver log:\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        output
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.owner {
            Some(owner) => {
                let mut command = Command::new("runuser");
                command.args(["-u", owner, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        };
        // The owner may not be able to enter the test's working folder.
        command.args(args).current_dir(&self.folder);
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.folder.join("data/postmaster.pid").exists() {
            let _ = self
                .command(
                    "pg_ctl",
                    &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
                )
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The newest server install's bin folder under /usr/lib/postgresql (Debian keeps them off
/// PATH), else the folder of an `initdb` on PATH.
fn server_binaries() -> Option<PathBuf> {
    debian_binaries().or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).find(|dir| has_server(dir))
    })
}

fn debian_binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn has_server(bin: &Path) -> bool {
    bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A port nothing listens on now (the kernel's pick for port 0).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}
