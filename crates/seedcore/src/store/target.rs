//! Which database a process uses: a PostgreSQL server or the embedded SQLite file, read from
//! a URL (`postgresql://…`, `postgres://…`, `sqlite:…`), and named for logs without secrets.

use std::path::{Path, PathBuf};

use sqlx::postgres::PgConnectOptions;

/// The database a process was configured for.
pub enum DatabaseTarget {
    /// A PostgreSQL server, with the options to connect to it.
    Postgres(Box<PgConnectOptions>),
    /// The embedded store's file: from a sqlite: URL, or the data folder's default.
    Sqlite(PathBuf),
}

/// A database URL that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

impl DatabaseTarget {
    /// The target a URL names: `postgresql://…`/`postgres://…`, or `sqlite:` with a file path.
    pub fn from_url(url: &str) -> Result<DatabaseTarget, TargetError> {
        match parse_sqlite_url(url)? {
            Some(path) => Ok(DatabaseTarget::Sqlite(path)),
            None => parse_postgres_url(url).map(|o| DatabaseTarget::Postgres(Box::new(o))),
        }
    }

    /// `postgresql://user@host:port/db` without the password, or `sqlite:///absolute/path`.
    pub fn describe(&self) -> String {
        match self {
            DatabaseTarget::Postgres(options) => format!(
                "postgresql://{}@{}:{}/{}",
                options.get_username(),
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or(options.get_username())
            ),
            DatabaseTarget::Sqlite(path) => sqlite_url(path),
        }
    }
}

fn sqlite_url(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
    format!("sqlite://{}", absolute.display())
}

/// The file a `sqlite:` URL names, None for a URL of another scheme. `sqlite:///abs/x.db` and
/// `sqlite:/abs/x.db` are absolute, `sqlite://x.db` and `sqlite:x.db` relative to the current
/// folder; a `?query` is ignored. An in-memory database is refused: the store opens the file
/// from several connections, which would each see a database of their own.
fn parse_sqlite_url(url: &str) -> Result<Option<PathBuf>, TargetError> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(None);
    };
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if path.is_empty() || path == ":memory:" {
        return Err(TargetError(
            "the sqlite: URL must name a database file, e.g. sqlite:///var/lib/seedcore/seedcore.db"
                .into(),
        ));
    }
    Ok(Some(PathBuf::from(path)))
}

fn parse_postgres_url(url: &str) -> Result<PgConnectOptions, TargetError> {
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !scheme_ok {
        return Err(TargetError(
            "the database URL must start with postgresql://, postgres:// or sqlite:".into(),
        ));
    }
    url.parse::<PgConnectOptions>()
        .map(|options| options.application_name("seedcore"))
        .map_err(|err| TargetError(format!("the database URL is not valid: {err}")))
}
