//! Every setting seedcore reads, from the environment or the command line (flags win).
//!
//! The names of the database, logging and listening settings are the original service's
//! (`PG_DSN`, `POSTGRES_*`, `DATABASE_URL`, `LOG_LEVEL`, `HOST`, `PORT`); seedcore's own settings
//! start with `SEEDCORE_`. The doc comments below are the `--help` text. Secrets never appear in
//! `Debug` output or logs.
//!
//! The database is chosen once, here: a `postgresql://` URL or `POSTGRES_HOST` means
//! PostgreSQL; a `sqlite:` URL, or no database setting at all, means the embedded SQLite file
//! (by default `seedcore.db` in the data folder).

use std::{fmt, net::IpAddr, path::PathBuf, time::Duration};

use clap::Args;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The database a process was configured for (defined by the store, which opens it).
pub use crate::store::DatabaseTarget;
use crate::{
    maintenance::Keeping,
    validate::limits::{DEFAULT_LIMITS, DEFAULT_RESULT_BYTES, Limits},
};

/// Where the data lives and how many connections to keep.
#[derive(Args, Clone)]
pub struct DatabaseConfig {
    /// PostgreSQL URL, e.g. postgresql://user:pass@host:5432/db. Takes precedence over the rest.
    /// A sqlite: URL (sqlite:///abs/path.db, sqlite://relative.db) picks the embedded store;
    /// its file and folder are created if missing.
    #[arg(long, env = "PG_DSN", hide_env_values = true)]
    pub pg_dsn: Option<String>,

    /// Database URL (postgresql:// or sqlite:), accepted as an alternative to PG_DSN.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// PostgreSQL host; used (with the other POSTGRES_* settings) when no URL is given.
    #[arg(long, env = "POSTGRES_HOST")]
    pub postgres_host: Option<String>,

    /// PostgreSQL port.
    #[arg(long, env = "POSTGRES_PORT", default_value_t = 5432)]
    pub postgres_port: u16,

    /// PostgreSQL database name.
    #[arg(long, env = "POSTGRES_DB", default_value = "postgres")]
    pub postgres_db: String,

    /// PostgreSQL user.
    #[arg(long, env = "POSTGRES_USER", default_value = "postgres")]
    pub postgres_user: String,

    /// PostgreSQL password.
    #[arg(long, env = "POSTGRES_PASSWORD", hide_env_values = true)]
    pub postgres_password: Option<String>,

    /// Most connections the process keeps open to the database.
    #[arg(long, env = "POSTGRES_POOL_SIZE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub postgres_pool_size: u32,

    /// Seconds to wait for a free connection before a request fails with 503.
    #[arg(long, env = "POSTGRES_POOL_TIMEOUT", default_value_t = 30.0)]
    pub postgres_pool_timeout: f64,

    /// Folder of the embedded database file (seedcore.db), used when no PostgreSQL setting
    /// is given; created if missing.
    #[arg(long, env = "SEEDCORE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Language of full-text fact search (a PostgreSQL text search configuration such as
    /// english, german, simple); changing it rebuilds the search index on start. The embedded
    /// store searches in English only.
    #[arg(long, env = "SEEDCORE_SEARCH_LANGUAGE", default_value = "english")]
    pub search_language: String,

    /// PostgreSQL TLS: disable, allow, prefer, require, verify-ca or verify-full (libpq's
    /// sslmode). An sslmode in the URL wins; without either, PGSSLMODE, else prefer.
    #[arg(long, env = "POSTGRES_SSLMODE", value_parser = crate::store::parse_ssl_mode)]
    pub postgres_sslmode: Option<PgSslMode>,

    /// PEM file of the certificate authorities that sign the PostgreSQL server's certificate
    /// (libpq's sslrootcert); with it, require verifies like verify-ca. An sslrootcert in the
    /// URL wins; without either, PGSSLROOTCERT, else the built-in public roots.
    #[arg(long, env = "POSTGRES_SSLROOTCERT")]
    pub postgres_sslrootcert: Option<PathBuf>,
}

/// The embedded database's file name inside the data folder.
pub const SQLITE_FILE: &str = "seedcore.db";

impl DatabaseConfig {
    /// Resolves the settings into one target: PG_DSN, then DATABASE_URL, then POSTGRES_HOST,
    /// and with none of them the embedded file in the data folder.
    pub fn target(&self) -> Result<DatabaseTarget, ConfigError> {
        if let Some(url) = self.pg_dsn.as_deref().or(self.database_url.as_deref()) {
            return Ok(DatabaseTarget::from_url_with(url, &self.tls())?);
        }
        let Some(host) = &self.postgres_host else {
            return Ok(DatabaseTarget::Sqlite(self.data_dir.join(SQLITE_FILE)));
        };
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(host)
            .port(self.postgres_port)
            .username(&self.postgres_user)
            .database(&self.postgres_db)
            .application_name("seedcore");
        if let Some(password) = &self.postgres_password {
            options = options.password(password);
        }
        Ok(DatabaseTarget::postgres(options, &self.tls())?)
    }

    /// The TLS settings given beside the URL.
    pub fn tls(&self) -> crate::store::PgTls {
        crate::store::PgTls {
            mode: self.postgres_sslmode,
            root_cert: self.postgres_sslrootcert.clone(),
        }
    }

    /// How long to wait for a free connection (at least 1 ms).
    pub fn pool_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.postgres_pool_timeout.max(0.001))
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("DatabaseConfig")
            .field("pg_dsn", &redacted(&self.pg_dsn))
            .field("database_url", &redacted(&self.database_url))
            .field("postgres_host", &self.postgres_host)
            .field("postgres_port", &self.postgres_port)
            .field("postgres_db", &self.postgres_db)
            .field("postgres_user", &self.postgres_user)
            .field("postgres_password", &redacted(&self.postgres_password))
            .field("postgres_pool_size", &self.postgres_pool_size)
            .field("postgres_pool_timeout", &self.postgres_pool_timeout)
            .field("data_dir", &self.data_dir)
            .field("search_language", &self.search_language)
            .field("postgres_sslmode", &self.postgres_sslmode)
            .field("postgres_sslrootcert", &self.postgres_sslrootcert)
            .finish()
    }
}

/// How verbose the logs are.
#[derive(Args, Clone, Debug)]
pub struct LogConfig {
    /// Log level: DEBUG, INFO, WARNING, ERROR (any case), or a tracing filter such as
    /// `seedcore=debug,sqlx=warn`. RUST_LOG, when set, wins.
    #[arg(long, env = "LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,

    /// Log format: `text` (lines for people) or `json` (one object per line, for log
    /// collectors). Text unless asked for, whether or not stderr is a terminal.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        ignore_case = true,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per event for people: time, level, spans with their fields, message, fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's fields,
    /// and the current span's fields under `span`.
    Json,
}

/// Prometheus metrics (see the README's "Metrics").
#[derive(Args, Clone, Debug)]
pub struct MetricsConfig {
    /// Also serve `GET /metrics` on this address (e.g. 127.0.0.1:9464), over plain HTTP and
    /// behind the same token check as the API; `/metrics` stays on the API's port too. With
    /// `seedcore worker`, the only way to scrape that process.
    #[arg(long, env = "SEEDCORE_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// Count and serve metrics; `false` records nothing and answers `/metrics` with 404.
    #[arg(long, env = "SEEDCORE_METRICS_ENABLED", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_enabled: bool,
}

/// Where and how the HTTP API listens.
#[derive(Args, Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on. Any address but a loopback one needs an API token (or
    /// SEEDCORE_AUTH=off).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "SEEDCORE_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// Largest body of a bulk request (up to 10,000 items), in bytes.
    #[arg(long, env = "SEEDCORE_MAX_BULK_BODY_BYTES", default_value_t = 64 * 1_048_576)]
    pub max_bulk_body_bytes: usize,

    /// Most connections open at once; a connection beyond them is answered 503 with
    /// Retry-After and closed.
    #[arg(long, env = "SEEDCORE_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Most requests handled at once; a request beyond them is answered 503 with Retry-After
    /// (`/health` is always answered).
    #[arg(long, env = "SEEDCORE_MAX_IN_FLIGHT", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_in_flight: u32,

    /// Seconds a request may take from its headers to its response; then it is answered 503.
    #[arg(long, env = "SEEDCORE_REQUEST_TIMEOUT_SECONDS", default_value_t = 60.0,
          value_parser = positive_seconds)]
    pub request_timeout_seconds: f64,

    /// Seconds a client has to send a request's headers, from their first byte; then the
    /// connection is closed.
    #[arg(long, env = "SEEDCORE_HEADER_TIMEOUT_SECONDS", default_value_t = 10.0,
          value_parser = positive_seconds)]
    pub header_timeout_seconds: f64,

    /// Seconds a connection may stay open with no request on it (a new connection before its
    /// first byte, a kept-alive one between requests, or a response its client stopped
    /// reading); then it is closed.
    #[arg(long, env = "SEEDCORE_IDLE_TIMEOUT_SECONDS", default_value_t = 75.0,
          value_parser = positive_seconds)]
    pub idle_timeout_seconds: f64,

    /// Seconds between heartbeat comments on an idle event stream (`GET /api/v1/events`).
    #[arg(long, env = "SEEDCORE_EVENTS_HEARTBEAT_SECONDS", default_value_t = 15.0,
          value_parser = positive_seconds)]
    pub events_heartbeat_seconds: f64,

    /// Events held for an event-stream client that has not read them; a client further
    /// behind is disconnected (it may resume with Last-Event-ID).
    #[arg(long, env = "SEEDCORE_EVENTS_BUFFER", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub events_buffer: u32,

    /// Seconds between reads of the audit trail for the event stream when nothing woke it
    /// (only while a client is connected).
    #[arg(long, env = "SEEDCORE_EVENTS_POLL_SECONDS", default_value_t = 0.25,
          value_parser = positive_seconds)]
    pub events_poll_seconds: f64,

    /// Tasks a bulk action changes per transaction.
    #[arg(long, env = "SEEDCORE_ACTION_BATCH_SIZE", default_value_t = 250,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub action_batch_size: u32,

    /// Seconds a running bulk action stays with a process that stopped renewing it, before
    /// another serving process takes it over.
    #[arg(long, env = "SEEDCORE_ACTION_LEASE_SECONDS", default_value_t = 30.0,
          value_parser = positive_seconds)]
    pub action_lease_seconds: f64,

    /// PEM file with the certificate chain to serve HTTPS with (with SEEDCORE_TLS_KEY); without
    /// both, the API is served over plain HTTP.
    #[arg(long, env = "SEEDCORE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key of SEEDCORE_TLS_CERT (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SEEDCORE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// The path prefix under which a reverse proxy publishes the server (e.g. /seedcore),
    /// which it strips before passing requests on: the dashboard at /ui builds its links and
    /// its session cookie's path from it. Empty when served at the root.
    #[arg(long, env = "SEEDCORE_BASE_PATH", default_value = "",
          value_parser = crate::ui::base_path)]
    pub base_path: String,
}

/// A number of seconds that must be above zero (and at most a year): a timeout of zero or
/// less would refuse everything.
fn positive_seconds(value: &str) -> Result<f64, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number of seconds"))?;
    if seconds > 0.0 && seconds <= 31_536_000.0 {
        Ok(seconds)
    } else {
        Err(format!(
            "{value} is out of range: give more than 0 and at most 31536000 seconds"
        ))
    }
}

/// Who may call the API (see the README's "Authentication and limits").
#[derive(Args, Clone)]
pub struct AuthConfig {
    /// `auto`: once an API token exists, every call but the open routes needs one; `off`: no
    /// authentication at all (also allows a non-loopback HOST with no token, with a warning).
    #[arg(long, env = "SEEDCORE_AUTH", default_value = "auto", value_parser = ["auto", "off"])]
    pub auth: String,

    /// A token (`sc_…`, made by `seedcore token generate`) stored on start as an admin token
    /// named `bootstrap`, for automated deployments.
    #[arg(long, env = "SEEDCORE_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,

    /// Routes open without a token, comma-separated; `/health` is always open. Empty closes
    /// them all.
    #[arg(
        long,
        env = "SEEDCORE_OPEN_ROUTES",
        default_value = "/,/readyz,/docs,/openapi.json"
    )]
    pub open_routes: String,

    /// Requests per second each token may make on average; 0 for no limit.
    #[arg(long, env = "SEEDCORE_RATE_LIMIT_PER_SECOND", default_value_t = 50.0)]
    pub rate_limit_per_second: f64,

    /// Requests each token may make at once after a quiet spell.
    #[arg(long, env = "SEEDCORE_RATE_LIMIT_BURST", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
}

impl AuthConfig {
    /// Whether tokens are asked for.
    pub fn mode(&self) -> crate::auth::AuthMode {
        match self.auth.as_str() {
            "off" => crate::auth::AuthMode::Off,
            _ => crate::auth::AuthMode::Auto,
        }
    }

    /// The settings of the API's auth layer; an open route that is no route is refused.
    pub fn settings(&self) -> Result<crate::auth::AuthSettings, ConfigError> {
        let open_routes: Vec<String> = self
            .open_routes
            .split(',')
            .map(str::trim)
            .filter(|route| !route.is_empty())
            .map(str::to_string)
            .collect();
        let known = |route: &str| crate::api::ROUTE_ACCESS.iter().any(|(_, p, _)| *p == route);
        if let Some(bad) = open_routes.iter().find(|route| !known(route)) {
            return Err(ConfigError(format!(
                "SEEDCORE_OPEN_ROUTES: '{bad}' is not a route (e.g. /readyz, /api/v1/tasks)"
            )));
        }
        let per_second = self.rate_limit_per_second;
        if !per_second.is_finite() || per_second < 0.0 {
            return Err(ConfigError(
                "SEEDCORE_RATE_LIMIT_PER_SECOND must be a number, 0 or more".into(),
            ));
        }
        Ok(crate::auth::AuthSettings {
            mode: self.mode(),
            open_routes,
            rate: (per_second > 0.0).then_some(crate::auth::RateLimit {
                per_second,
                burst: f64::from(self.rate_limit_burst),
            }),
        })
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("auth", &self.auth)
            .field(
                "bootstrap_token",
                &self.bootstrap_token.as_ref().map(|_| "<redacted>"),
            )
            .field("open_routes", &self.open_routes)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .finish()
    }
}

/// How the workers of this process run tasks.
#[derive(Args, Clone, Debug)]
pub struct EngineConfig {
    /// Tasks this process runs at once on the normal path; 0 runs no workers.
    #[arg(long, env = "SEEDCORE_WORKER_CONCURRENCY", default_value_t = 32)]
    pub worker_concurrency: usize,

    /// Tasks this process runs at once on the escalated path (drift at or above the threshold).
    #[arg(long, env = "SEEDCORE_ESCALATED_CONCURRENCY", default_value_t = 4)]
    pub escalated_concurrency: usize,

    /// Drift score at or above which a task takes the escalated path.
    #[arg(long, env = "OCPS_DRIFT_THRESHOLD", default_value_t = 0.5)]
    pub drift_threshold: f64,

    /// Seconds a claimed task's lease lasts; renewed while its handler runs.
    #[arg(long, env = "SEEDCORE_LEASE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(2..=86_400))]
    pub lease_seconds: u64,

    /// Milliseconds between polls for work when no wake-up arrives.
    #[arg(long, env = "SEEDCORE_POLL_INTERVAL_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub poll_interval_ms: u64,

    /// Attempts a task gets unless it says otherwise (1 means no retries).
    #[arg(long, env = "SEEDCORE_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub max_attempts: i32,

    /// Seconds a normal-path handler may run before its attempt fails (retryable).
    #[arg(long, env = "SEEDCORE_TASK_TIMEOUT_SECONDS", default_value_t = 300.0)]
    pub task_timeout_seconds: f64,

    /// Seconds an escalated-path handler may run before its attempt fails (retryable).
    #[arg(
        long,
        env = "SEEDCORE_ESCALATED_TIMEOUT_SECONDS",
        default_value_t = 900.0
    )]
    pub escalated_timeout_seconds: f64,

    /// First retry delay in seconds; doubled each attempt, with jitter, up to the maximum.
    #[arg(long, env = "SEEDCORE_RETRY_BASE_SECONDS", default_value_t = 1.0)]
    pub retry_base_seconds: f64,

    /// Longest retry delay in seconds.
    #[arg(long, env = "SEEDCORE_RETRY_MAX_SECONDS", default_value_t = 3600.0)]
    pub retry_max_seconds: f64,

    /// Task types run by remote HTTP executors: `type=http://host:port/path`, comma-separated
    /// (`https://` URLs have their certificates verified).
    #[arg(long, env = "SEEDCORE_EXECUTORS", default_value = "")]
    pub executors: String,

    /// Secrets that sign the requests to remote executors: `type=secret`, comma-separated, one
    /// per task type of SEEDCORE_EXECUTORS, at least 32 characters each (see the README).
    /// Executors without one get unsigned requests.
    #[arg(
        long,
        env = "SEEDCORE_EXECUTOR_SECRETS",
        hide_env_values = true,
        default_value = ""
    )]
    pub executor_secrets: crate::engine::remote::ExecutorSecrets,

    /// PEM file of certificate authorities to trust for https:// executors, besides the
    /// built-in public roots (for executors whose certificates a private authority signs).
    #[arg(long, env = "SEEDCORE_EXECUTOR_ROOT_CERT")]
    pub executor_root_cert: Option<PathBuf>,

    /// Seconds in-flight tasks get to finish on SIGTERM/SIGINT before they are released.
    #[arg(long, env = "SEEDCORE_SHUTDOWN_GRACE_SECONDS", default_value_t = 30.0)]
    pub shutdown_grace_seconds: f64,

    /// Also escalate tasks below the threshold when this process sees drift creeping up: a
    /// one-sided CUSUM over the drift of the tasks it runs (see the README).
    #[arg(long, env = "SEEDCORE_DRIFT_CUSUM", default_value_t = false)]
    pub drift_cusum: bool,

    /// Start a ready task created through this process at once, in a worker lane of this
    /// process that waits for work, without a claim, unless a ready task of its queue comes
    /// first (`false`: every task waits for a claim).
    #[arg(long, env = "SEEDCORE_START_AT_CREATION", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub start_at_creation: bool,

    /// Queues this process serves, comma-separated; empty serves every queue.
    #[arg(long, env = "SEEDCORE_QUEUES", default_value = "")]
    pub queues: String,

    /// Per-queue concurrency limits in this process: `queue=n`, comma-separated (e.g.
    /// `emails=4,reports=1`). Each limited queue runs on slots of its own.
    #[arg(long, env = "SEEDCORE_QUEUE_CONCURRENCY", default_value = "")]
    pub queue_concurrency: String,

    /// Hours a finished task (completed, failed or cancelled) is kept, with its events, after it
    /// finished; older ones are deleted by every process's housekeeping. 0 keeps them forever.
    #[arg(long, env = "SEEDCORE_RETENTION_HOURS", default_value_t = 0.0)]
    pub retention_hours: f64,

    /// Seconds a finished task stays in the table of live tasks before housekeeping moves it to
    /// the history table (PostgreSQL), where the API still finds it. Claims and completions
    /// then stay fast however much history there is.
    #[arg(long, env = "SEEDCORE_ARCHIVE_AFTER_SECONDS", default_value_t = 300.0)]
    pub archive_after_seconds: f64,

    /// Drift per task that the CUSUM lets pass without adding to its sum.
    #[arg(long, env = "SEEDCORE_DRIFT_CUSUM_SLACK", default_value_t = 0.1)]
    pub drift_cusum_slack: f64,

    /// CUSUM sum above which a task is escalated (the sum then starts again).
    #[arg(long, env = "SEEDCORE_DRIFT_CUSUM_LIMIT", default_value_t = 5.0)]
    pub drift_cusum_limit: f64,

    /// Largest result a handler may return, in bytes of compact JSON; a larger one fails the
    /// attempt (not retried) instead of being stored.
    #[arg(long, env = "SEEDCORE_MAX_RESULT_BYTES", default_value_t = DEFAULT_RESULT_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..))]
    pub max_result_bytes: usize,
}

/// The sizes of what clients send (beyond the body size), checked by the API and by the
/// built-in handlers alike; see `validate::limits` for the caps that are fixed.
#[derive(Args, Clone, Debug)]
pub struct LimitsConfig {
    /// Largest `params` of a task, in bytes of compact JSON; larger ones get 422.
    #[arg(long, env = "SEEDCORE_MAX_PARAMS_BYTES", default_value_t = DEFAULT_LIMITS.params_bytes,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_params_bytes: usize,

    /// Largest `meta_data` of a fact, in bytes of compact JSON; larger ones get 422.
    #[arg(long, env = "SEEDCORE_MAX_META_DATA_BYTES", default_value_t = DEFAULT_LIMITS.meta_data_bytes,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..))]
    pub max_meta_data_bytes: usize,

    /// Longest text of a fact, in characters; longer ones get 422.
    #[arg(long, env = "SEEDCORE_MAX_FACT_TEXT_CHARS", default_value_t = DEFAULT_LIMITS.fact_text_chars,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_fact_text_chars: usize,
}

impl LimitsConfig {
    /// The sizes, as the validators read them.
    pub fn limits(&self) -> Limits {
        Limits {
            params_bytes: self.max_params_bytes,
            meta_data_bytes: self.max_meta_data_bytes,
            fact_text_chars: self.max_fact_text_chars,
        }
    }
}

impl EngineConfig {
    /// How long a claimed task's lease lasts.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// How long an idle lane waits between polls for work.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// How long in-flight tasks get to finish on shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        seconds(self.shutdown_grace_seconds)
    }

    /// Where finished tasks are kept and for how long; a retention of 0 keeps them forever.
    pub fn keeping(&self) -> Keeping {
        Keeping {
            archive_after: seconds(self.archive_after_seconds),
            retention: Some(seconds(self.retention_hours * 3600.0)).filter(|kept| !kept.is_zero()),
        }
    }
}

/// `SEEDCORE_QUEUES`: None (every queue) when empty.
pub fn parse_queues(spec: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let queues: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = queues
        .iter()
        .find(|q| !crate::model::task::valid_queue_name(q))
    {
        return Err(ConfigError(format!(
            "SEEDCORE_QUEUES: '{bad}' is not a queue name"
        )));
    }
    Ok((!queues.is_empty()).then_some(queues))
}

/// `SEEDCORE_QUEUE_CONCURRENCY`: `queue=n` pairs.
pub fn parse_queue_limits(spec: &str) -> Result<Vec<(String, usize)>, ConfigError> {
    let error = |entry: &str| {
        ConfigError(format!(
            "SEEDCORE_QUEUE_CONCURRENCY: '{entry}' should be queue=n with n a positive number"
        ))
    };
    spec.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (queue, limit) = entry.split_once('=').ok_or_else(|| error(entry))?;
            let limit: usize = limit.trim().parse().map_err(|_| error(entry))?;
            let queue = queue.trim();
            if limit == 0 || !crate::model::task::valid_queue_name(queue) {
                return Err(error(entry));
            }
            Ok((queue.to_string(), limit))
        })
        .collect()
}

/// A duration from a possibly negative or NaN number of seconds, clamped to something usable.
pub fn seconds(value: f64) -> Duration {
    if value.is_finite() && value > 0.0 {
        Duration::from_secs_f64(value.min(1e9))
    } else {
        Duration::ZERO
    }
}

/// A setting that cannot be used as given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<crate::store::TargetError> for ConfigError {
    fn from(err: crate::store::TargetError) -> Self {
        ConfigError(err.0)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Settings as if given on the command line only, whatever the environment holds.
    fn probe(args: &[&str]) -> DatabaseConfig {
        let mut db = DatabaseConfig {
            pg_dsn: None,
            database_url: None,
            postgres_host: None,
            postgres_port: 5432,
            postgres_db: "postgres".into(),
            postgres_user: "postgres".into(),
            postgres_password: None,
            postgres_pool_size: 20,
            postgres_pool_timeout: 30.0,
            data_dir: PathBuf::from("./data"),
            search_language: "english".into(),
            postgres_sslmode: None,
            postgres_sslrootcert: None,
        };
        for pair in args.chunks(2) {
            let value = Some(pair[1].to_string());
            match pair[0] {
                "--pg-dsn" => db.pg_dsn = value,
                "--postgres-host" => db.postgres_host = value,
                "--postgres-db" => db.postgres_db = pair[1].into(),
                "--postgres-password" => db.postgres_password = value,
                "--database-url" => db.database_url = value,
                "--data-dir" => db.data_dir = pair[1].into(),
                other => panic!("unknown flag {other}"),
            }
        }
        db
    }

    #[test]
    fn a_dsn_flag_wins_over_host_parts() {
        let db = probe(&[
            "--pg-dsn",
            "postgresql://u:p@db.example:6543/app",
            "--postgres-host",
            "other",
        ]);
        let DatabaseTarget::Postgres(options) = db.target().unwrap() else {
            panic!("expected a postgres target")
        };
        assert_eq!(options.get_host(), "db.example");
        assert_eq!(options.get_port(), 6543);
        assert_eq!(options.get_database(), Some("app"));
    }

    #[test]
    fn host_parts_build_a_target_when_no_url_is_given() {
        let db = probe(&["--postgres-host", "h", "--postgres-db", "d"]);
        let DatabaseTarget::Postgres(options) = db.target().unwrap() else {
            panic!("expected a postgres target")
        };
        assert_eq!(options.get_host(), "h");
        assert_eq!(options.get_database(), Some("d"));
    }

    fn sqlite_path(db: DatabaseConfig) -> PathBuf {
        match db.target().unwrap() {
            DatabaseTarget::Sqlite(path) => path,
            DatabaseTarget::Postgres(_) => panic!("expected a sqlite target"),
        }
    }

    #[test]
    fn no_database_setting_means_the_embedded_file_in_the_data_folder() {
        assert_eq!(sqlite_path(probe(&[])), Path::new("./data/seedcore.db"));
        assert_eq!(
            sqlite_path(probe(&["--data-dir", "/srv/seedcore"])),
            Path::new("/srv/seedcore/seedcore.db")
        );
    }

    #[test]
    fn a_sqlite_url_names_the_file_absolute_or_relative() {
        for (url, path) in [
            ("sqlite:///var/lib/s.db", "/var/lib/s.db"),
            ("sqlite:/var/lib/s.db?mode=rwc", "/var/lib/s.db"),
            ("sqlite://s.db", "s.db"),
            ("sqlite:data/s.db", "data/s.db"),
        ] {
            assert_eq!(
                sqlite_path(probe(&["--database-url", url])),
                Path::new(path)
            );
        }
        assert_eq!(
            sqlite_path(probe(&[
                "--pg-dsn",
                "sqlite:///x.db",
                "--postgres-host",
                "h"
            ])),
            Path::new("/x.db")
        );
    }

    #[test]
    fn an_in_memory_or_empty_sqlite_url_is_refused() {
        for url in ["sqlite::memory:", "sqlite://", "sqlite:"] {
            assert!(probe(&["--database-url", url]).target().is_err(), "{url}");
        }
    }

    #[test]
    fn queue_settings_parse_and_refuse_what_is_malformed() {
        assert_eq!(parse_queues(" ").unwrap(), None);
        assert_eq!(
            parse_queues("default, emails").unwrap(),
            Some(vec!["default".into(), "emails".into()])
        );
        assert!(parse_queues("bad name").is_err());
        assert_eq!(
            parse_queue_limits("emails=4, reports=1").unwrap(),
            vec![("emails".into(), 4), ("reports".into(), 1)]
        );
        for bad in ["emails", "emails=0", "emails=x", "=3"] {
            assert!(parse_queue_limits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_url_of_another_scheme_is_refused() {
        assert!(probe(&["--pg-dsn", "mysql://x"]).target().is_err());
    }

    #[test]
    fn debug_output_hides_passwords() {
        let db = probe(&[
            "--pg-dsn",
            "postgresql://u:secret@h/d",
            "--postgres-password",
            "secret",
        ]);
        assert!(!format!("{db:?}").contains("secret"));
    }
}
