//! Which backend a test runs on, and whether it runs at all.
//!
//! A test is an `async fn` with no arguments, declared by one line above it:
//! - [`both_backends!`]`(name)` makes two tests, `name::postgres` and `name::sqlite`;
//! - [`postgres_only!`]`(name)` makes `name::postgres`, for what only PostgreSQL has (several
//!   processes on one database, raw PostgreSQL SQL, LISTEN/NOTIFY, scale-out);
//! - [`sqlite_only!`]`(name)` makes `name::sqlite`, for what only the embedded file has.
//!
//! Each passes tokio's test flavor on (`both_backends!(name, flavor = "multi_thread")`). Each
//! variant runs the function through [`run_on`], which decides whether it runs and sets the
//! backend [`TestDb::create`](super::TestDb::create) reads for the test's own task.
//!
//! Invariants:
//! - A PostgreSQL variant never fails for want of a server unless one is required: when nothing
//!   answers at the test server's URL (probed once per test binary) it prints `SKIPPED (…)` and
//!   passes, and the binary says so once on stderr, where libtest does not capture it. With
//!   `SEEDCORE_TEST_REQUIRE_POSTGRES=1` (as `scripts/test.sh` sets) it fails instead. A server
//!   that answers but refuses us (a bad password, a missing database) always fails: that is a
//!   setting to fix, not a machine without PostgreSQL.
//! - `SEEDCORE_TEST_BACKEND=postgres|sqlite` runs one half: the other half's variants pass at
//!   once, quietly.
//! - The backend is a task-local: a task the test spawns does not see it and would get the
//!   default (PostgreSQL), so databases are created in the test's own task.

use std::{future::Future, io::Write, time::Duration};

use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};
use tokio::sync::OnceCell;

use super::{Backend, admin_url};

/// How long the probe waits for the test PostgreSQL before calling it absent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    static BACKEND: Backend;
}

/// The backend of the variant running in this task, if any.
pub fn current() -> Option<Backend> {
    BACKEND.try_with(|backend| *backend).ok()
}

/// Runs one variant of a test on `backend`, or passes at once when that half is not wanted
/// or (unless required) there is no PostgreSQL.
pub async fn run_on(backend: Backend, test: impl Future<Output = ()>) {
    if Backend::only().is_some_and(|only| only != backend) {
        return;
    }
    if backend == Backend::Postgres {
        match postgres().await {
            Probe::Ready => {}
            Probe::Absent(why) if !postgres_required() => {
                eprintln!("SKIPPED ({why})");
                return;
            }
            Probe::Absent(why) => {
                panic!("SEEDCORE_TEST_REQUIRE_POSTGRES is set, but: {why}")
            }
            Probe::Refused(why) => panic!("{why}"),
        }
    }
    BACKEND.scope(backend, test).await
}

fn postgres_required() -> bool {
    matches!(
        std::env::var("SEEDCORE_TEST_REQUIRE_POSTGRES").as_deref(),
        Ok("1" | "true" | "yes")
    )
}

#[derive(Clone)]
enum Probe {
    Ready,
    /// Nothing answered: a machine without PostgreSQL.
    Absent(String),
    /// A server answered and refused: a setting to fix.
    Refused(String),
}

static PROBE: OnceCell<Probe> = OnceCell::const_new();

/// Whether the test PostgreSQL answers, asked once per test binary.
async fn postgres() -> Probe {
    PROBE
        .get_or_init(|| async {
            let probe = probe().await;
            if let Probe::Absent(why) = &probe
                && !postgres_required()
            {
                announce_skip(why);
            }
            probe
        })
        .await
        .clone()
}

async fn probe() -> Probe {
    let url = admin_url();
    let shown = redacted(&url);
    let options: PgConnectOptions = match url.parse() {
        Ok(options) => options,
        Err(err) => return Probe::Refused(format!("SEEDCORE_TEST_DATABASE_URL {shown}: {err}")),
    };
    let hint = "set SEEDCORE_TEST_DATABASE_URL or run scripts/test.sh";
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            conn.close().await.ok();
            Probe::Ready
        }
        Ok(Err(sqlx::Error::Io(err))) => {
            Probe::Absent(format!("no PostgreSQL at {shown}: {err}; {hint}"))
        }
        Err(_) => Probe::Absent(format!(
            "no PostgreSQL at {shown}: no answer within {PROBE_TIMEOUT:?}; {hint}"
        )),
        Ok(Err(err)) => Probe::Refused(format!(
            "the test PostgreSQL at {shown} answered but refused the connection: {err}; fix \
             SEEDCORE_TEST_DATABASE_URL or run scripts/test.sh"
        )),
    }
}

/// Says once per test binary, on the real stderr (libtest captures only `eprint!`), that its
/// PostgreSQL tests pass without running.
fn announce_skip(why: &str) {
    let binary = std::env::args()
        .next()
        .and_then(|path| {
            let name = std::path::Path::new(&path)
                .file_name()?
                .to_str()?
                .to_string();
            // Cargo names test binaries `<target>-<hash>`.
            Some(
                name.rsplit_once('-')
                    .map_or(name.clone(), |(n, _)| n.to_string()),
            )
        })
        .unwrap_or_default();
    let line = format!("\nSKIPPED: the PostgreSQL tests of {binary} ({why})\n\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The URL with any password masked, for messages.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// `both_backends!(name)` above `async fn name()`: the tests `name::postgres` and
/// `name::sqlite`, each running the function on its backend. Arguments after the name go to
/// `#[tokio::test(…)]`.
#[allow(unused_macros)] // each test binary uses some
macro_rules! both_backends {
    ($name:ident $(, $($flavor:tt)*)?) => {
        mod $name {
            #[tokio::test $(($($flavor)*))?]
            async fn postgres() {
                crate::common::run_on(crate::common::Backend::Postgres, super::$name()).await
            }

            #[tokio::test $(($($flavor)*))?]
            async fn sqlite() {
                crate::common::run_on(crate::common::Backend::Sqlite, super::$name()).await
            }
        }
    };
}

/// `postgres_only!(name)` above `async fn name()`: the test `name::postgres`.
#[allow(unused_macros)] // each test binary uses some
macro_rules! postgres_only {
    ($name:ident $(, $($flavor:tt)*)?) => {
        mod $name {
            #[tokio::test $(($($flavor)*))?]
            async fn postgres() {
                crate::common::run_on(crate::common::Backend::Postgres, super::$name()).await
            }
        }
    };
}

/// `sqlite_only!(name)` above `async fn name()`: the test `name::sqlite`.
#[allow(unused_macros)] // each test binary uses some
macro_rules! sqlite_only {
    ($name:ident $(, $($flavor:tt)*)?) => {
        mod $name {
            #[tokio::test $(($($flavor)*))?]
            async fn sqlite() {
                crate::common::run_on(crate::common::Backend::Sqlite, super::$name()).await
            }
        }
    };
}

#[allow(unused_imports)]
pub(crate) use {both_backends, postgres_only, sqlite_only};
