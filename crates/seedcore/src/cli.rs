//! The command line: `serve`, `worker`, `db init`, `db import-legacy`, `db adopt`,
//! `db backup` and `token`, and what each does on start and stop; the client commands
//! (`task`, `fact`, `queue`, `schedule`, `workflow`, `worker list`) are handed to
//! [`crate::client`], `completions` prints shell completions.
//!
//! `serve` and `db init` work on either store; `worker` needs PostgreSQL, since the embedded
//! SQLite file belongs to the one process that serves it.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, CommandFactory, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, ApiSettings, AppState},
    auth::{self, TokenCommand},
    client::{
        self, ClientArgs, FactCommand, QueueCommand, ScheduleCommand, TaskCommand,
        WorkerClientCommand, WorkflowCommand,
    },
    config::{
        AuthConfig, DatabaseConfig, EngineConfig, LimitsConfig, LogConfig, MetricsConfig,
        ServerConfig, parse_queue_limits, parse_queues,
    },
    engine::{Engine, EngineHandle, EngineSettings, HandlerRouter, remote::RemoteExecutors},
    import::{self, ImportError, ImportOptions},
    legacy::RunningTasks,
    server::{Listener, ListenerSettings},
    store::{self, Cause, DatabaseTarget, DynStore, OpenError, StoreError},
    telemetry,
};

/// seedcore: a durable task service. Clients submit tasks over HTTP, workers run them, every
/// state change is stored in the database.
#[derive(Parser, Debug)]
#[command(name = "seedcore", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of the `seedcore` binary.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API and the workers in one process (migrates the database first).
    // Boxed: the settings are large beside the other commands'.
    Serve(Box<ServeArgs>),
    /// Run workers only, to add capacity beside `serve` (any number, on any machine); or,
    /// with `list`, list the worker processes of a running server.
    Worker(Box<WorkerCommandArgs>),
    /// Database administration.
    #[command(subcommand)]
    Db(DbCommand),
    /// API tokens: create, list, revoke (database settings from the environment, or as flags
    /// before the subcommand: `seedcore token --pg-dsn URL list`).
    Token(TokenArgs),
    /// Tasks on a running server: create, list, get, events, watch, run, cancel, delete.
    Task(ClientArgs<TaskCommand>),
    /// Facts on a running server: add, list, search, get, update, delete, import, export.
    Fact(ClientArgs<FactCommand>),
    /// Queues on a running server: list, pause, resume.
    Queue(ClientArgs<QueueCommand>),
    /// Cron schedules on a running server: list, create, pause, resume, delete.
    Schedule(ClientArgs<ScheduleCommand>),
    /// Workflows on a running server: create, list, get, cancel.
    Workflow(ClientArgs<WorkflowCommand>),
    /// Print the completion script of a shell (bash, zsh, fish, ...) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `seedcore worker`: with no subcommand it runs workers with these flags.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerCommandArgs {
    /// A client subcommand instead of running workers.
    #[command(subcommand)]
    pub client: Option<WorkerClientCommand>,
    /// The settings of the workers.
    #[command(flatten)]
    pub run: WorkerArgs,
}

/// The settings of `seedcore token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// What to do with tokens.
    #[command(subcommand)]
    pub command: TokenCommand,
    /// The database the tokens live in (the one `serve` uses).
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// How verbose the logs are.
    #[command(flatten)]
    pub log: LogConfig,
}

/// The settings of `seedcore serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where and how the HTTP API listens.
    #[command(flatten)]
    pub server: ServerConfig,
    /// How the workers of this process run tasks.
    #[command(flatten)]
    pub engine: EngineConfig,
    /// The sizes of what clients send.
    #[command(flatten)]
    pub limits: LimitsConfig,
    /// Which database to use.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// How verbose the logs are.
    #[command(flatten)]
    pub log: LogConfig,
    /// Who may call the API.
    #[command(flatten)]
    pub auth: AuthConfig,
    /// Prometheus metrics.
    #[command(flatten)]
    pub metrics: MetricsConfig,
}

/// The settings of `seedcore worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// How the workers of this process run tasks.
    #[command(flatten)]
    pub engine: EngineConfig,
    /// The sizes of what the built-in handlers take.
    #[command(flatten)]
    pub limits: LimitsConfig,
    /// Which database to use; PostgreSQL, shared with `serve`.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// How verbose the logs are.
    #[command(flatten)]
    pub log: LogConfig,
    /// Prometheus metrics.
    #[command(flatten)]
    pub metrics: MetricsConfig,
}

/// The subcommands of `seedcore db`.
#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Check connectivity, apply migrations, verify the tables; print what was done.
    Init(DbArgs),
    /// Import the file-based system's tasks.json and facts.json (ids kept; running it again
    /// imports nothing new).
    ImportLegacy(ImportArgs),
    /// Take over the original service's PostgreSQL database in place: print every change,
    /// then make them all in one transaction (running it again changes nothing).
    Adopt(AdoptArgs),
    /// Copy the embedded database to a new file, safely while the server runs (PostgreSQL:
    /// use pg_dump, see the README).
    Backup(BackupArgs),
}

/// The settings of `seedcore db import-legacy`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The old tasks.json ({"tasks": [...]}).
    #[arg(long)]
    pub tasks: Option<PathBuf>,
    /// The old facts.json ({"facts": [...]}).
    #[arg(long)]
    pub facts: Option<PathBuf>,
    /// Read and check everything, write nothing; say what would be imported.
    #[arg(long)]
    pub dry_run: bool,
    /// Import nothing if any record is malformed (default: skip malformed records).
    #[arg(long)]
    pub strict: bool,
    /// Queue tasks that were running when the old system stopped (default: mark them failed
    /// as interrupted).
    #[arg(long)]
    pub requeue_running: bool,
    /// The database to import into.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// How verbose the logs are.
    #[command(flatten)]
    pub log: LogConfig,
}

/// The settings of `seedcore db adopt`.
#[derive(Args, Debug)]
pub struct AdoptArgs {
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Queue the tasks that were running in the original service (default: they keep
    /// running under a lease, and the reaper requeues them once it expires).
    #[arg(long)]
    pub requeue_running: bool,
    /// The lease, from its lock time, of a running task that has no lease of its own.
    #[arg(long, env = "SEEDCORE_LEASE_SECONDS", default_value_t = 30)]
    pub lease_seconds: u64,
    /// The original service's database (PostgreSQL).
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// How verbose the logs are.
    #[command(flatten)]
    pub log: LogConfig,
}

/// The settings of `seedcore db backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The file to write; it must not exist yet.
    pub path: PathBuf,
    /// The database to copy (the embedded one).
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// How verbose the logs are.
    #[command(flatten)]
    pub log: LogConfig,
}

/// The settings of `seedcore db init`.
#[derive(Args, Debug)]
pub struct DbArgs {
    /// The database to initialize.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// How verbose the logs are.
    #[command(flatten)]
    pub log: LogConfig,
}

/// A failure that ends the command, with the message the user sees.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(String);

const WORKER_NEEDS_POSTGRES: &str = "it serves one process, and `seedcore serve` runs its own \
    workers. To add worker processes, give serve and every worker the same PostgreSQL: PG_DSN \
    (or DATABASE_URL) set to a postgresql:// URL, or POSTGRES_HOST with POSTGRES_PORT, \
    POSTGRES_DB, POSTGRES_USER and POSTGRES_PASSWORD (or the matching --flags; see --help)";

/// Runs the parsed command on a new tokio runtime; a failure is printed to stderr and ends
/// in a failure exit code.
pub fn run(cli: Cli) -> ExitCode {
    let command = match run_client(cli.command) {
        Ok(exit) => return exit,
        Err(command) => *command,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("seedcore: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve(args) => serve(*args).await,
            Command::Worker(args) => worker(args.run).await,
            Command::Db(DbCommand::Init(args)) => db_init(args).await,
            Command::Db(DbCommand::ImportLegacy(args)) => import_legacy(args).await,
            Command::Db(DbCommand::Backup(args)) => backup(args).await,
            Command::Db(DbCommand::Adopt(args)) => adopt(args).await,
            Command::Token(args) => token(args).await,
            // Handed to the client before the runtime starts.
            client => Err(CliError(format!("not a server command: {client:?}"))),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("seedcore: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command, or prints completions; any other command comes back to be run here.
fn run_client(command: Command) -> Result<ExitCode, Box<Command>> {
    let request = match command {
        Command::Task(args) => client::Request::Task(args),
        Command::Fact(args) => client::Request::Fact(args),
        Command::Queue(args) => client::Request::Queue(args),
        Command::Schedule(args) => client::Request::Schedule(args),
        Command::Workflow(args) => client::Request::Workflow(args),
        Command::Worker(mut args) => match args.client.take() {
            Some(command) => client::Request::Worker(command),
            None => return Err(Box::new(Command::Worker(args))),
        },
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "seedcore", &mut script);
            // A closed pipe (`| head`) is not worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            return Ok(ExitCode::SUCCESS);
        }
        other => return Err(Box::new(other)),
    };
    Ok(client::run(request))
}

async fn serve(args: ServeArgs) -> Result<(), CliError> {
    telemetry::init(&args.log);
    crate::validate::limits::install(args.limits.limits());
    let store = open_store(&args.database, args.database.pool_timeout()).await?;
    migrate(&store, &args.database).await?;
    let auth = secure(&store, &args.auth, args.server.host).await?;
    crate::metrics::set_enabled(args.metrics.metrics_enabled);
    // Bound before the workers start, so a busy address stops nothing half-started.
    let metrics_listener = bind_metrics(&args.metrics).await?;
    let engine = start_engine(&store, &args.engine).await?;
    // Without workers the engine's housekeeping does not run: this process does it.
    let housekeeping = CancellationToken::new();
    let engine_settings = EngineSettings::from(&args.engine);
    if engine.is_none() {
        let keeping = args.engine.keeping();
        crate::maintenance::spawn(store.clone(), keeping, housekeeping.clone());
        // Pull workers' leases expire here too.
        let lease = engine_settings.lease;
        crate::maintenance::spawn_reaper(store.clone(), lease, housekeeping.clone());
    }
    let settings = ApiSettings {
        max_body_bytes: args.server.max_body_bytes,
        default_max_attempts: args.engine.max_attempts,
        max_bulk_body_bytes: args.server.max_bulk_body_bytes,
        events: api::EventSettings {
            heartbeat: crate::config::seconds(args.server.events_heartbeat_seconds),
            buffer: args.server.events_buffer as usize,
            poll: crate::config::seconds(args.server.events_poll_seconds),
            ..api::EventSettings::default()
        },
        actions: api::ActionSettings {
            batch: args.server.action_batch_size.into(),
            lease: crate::config::seconds(args.server.action_lease_seconds),
        },
    };
    let pull = api::PullSettings {
        default_lease: engine_settings.lease,
        retry: engine_settings.retry,
        ..api::PullSettings::default()
    };
    let state = AppState::new(store.clone(), settings)
        .with_auth(auth)
        .with_pull(pull)
        .with_ui(crate::ui::UiSettings {
            base_path: args.server.base_path.clone(),
            tls: args.server.tls_cert.is_some(),
        });
    state
        .auth
        .prime()
        .await
        .map_err(|err| explain(&err, "look for API tokens"))?;
    let events = state.events.clone();
    let stop = shutdown_signal();
    serve_metrics(metrics_listener, state.clone(), stop.clone());
    // Event streams never end on their own: end them as the server stops.
    let stopping = stop.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        events.close();
    });
    let app = api::app(state);
    let address = (args.server.host, args.server.port).into();
    let settings =
        ListenerSettings::from_config(&args.server).map_err(|err| CliError(err.to_string()))?;
    let listener = Listener::bind(address, settings)
        .await
        .map_err(|err| CliError(err.to_string()))?;
    // Startup is over: what migrating and building the API freed would stay resident.
    crate::allocator::release_free_memory();
    crate::allocator::log_settings();
    listener.serve(app, stop).await;
    if let Some(engine) = engine {
        engine.shutdown().await;
    }
    housekeeping.cancel();
    store.close().await;
    tracing::info!("seedcore stopped");
    Ok(())
}

/// The listener of SEEDCORE_METRICS_ADDR, when set.
async fn bind_metrics(config: &MetricsConfig) -> Result<Option<TcpListener>, CliError> {
    let Some(address) = config.metrics_addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|err| CliError(format!("cannot listen for metrics on {address}: {err}")))?;
    Ok(Some(listener))
}

/// Serves `/metrics` on `listener`, when there is one, until `stop` is cancelled.
fn serve_metrics(listener: Option<TcpListener>, state: AppState, stop: CancellationToken) {
    let Some(listener) = listener else {
        return;
    };
    let bound = listener
        .local_addr()
        .map_or_else(|_| "?".into(), |address| address.to_string());
    tracing::info!(address = %bound, "metrics served on http://{bound}/metrics");
    let app = crate::metrics::metrics_router(state);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
    });
}

/// Seeds the bootstrap token, refuses an exposed address with no token, and returns the
/// settings of the API's auth layer.
async fn secure(
    store: &DynStore,
    config: &AuthConfig,
    host: std::net::IpAddr,
) -> Result<auth::AuthSettings, CliError> {
    let settings = config.settings().map_err(|err| CliError(err.0))?;
    if let Some(token) = &config.bootstrap_token {
        auth::bootstrap(store, token).await.map_err(CliError)?;
    }
    auth::check_exposure(store, host, settings.mode)
        .await
        .map_err(CliError)?;
    Ok(settings)
}

async fn token(args: TokenArgs) -> Result<(), CliError> {
    telemetry::init(&args.log);
    if let TokenCommand::Generate = args.command {
        println!("{}", auth::Secret::generate().text);
        return Ok(());
    }
    let store = open_store(&args.database, args.database.pool_timeout()).await?;
    migrate(&store, &args.database).await?;
    let done = auth::run_command(&store, args.command).await;
    store.close().await;
    println!("{}", done.map_err(CliError)?);
    Ok(())
}

async fn worker(args: WorkerArgs) -> Result<(), CliError> {
    telemetry::init(&args.log);
    crate::validate::limits::install(args.limits.limits());
    let target = target(&args.database)?;
    if let DatabaseTarget::Sqlite(_) = target {
        return Err(CliError(format!(
            "seedcore worker needs PostgreSQL, but the database is the embedded SQLite file {}: \
             {WORKER_NEEDS_POSTGRES}",
            target.describe()
        )));
    }
    let store = open_store(&args.database, args.database.pool_timeout()).await?;
    migrate(&store, &args.database).await?;
    crate::metrics::set_enabled(args.metrics.metrics_enabled);
    let metrics_listener = bind_metrics(&args.metrics).await?;
    // Before the engine announces itself, so a stop sent on seeing that line is a clean one.
    let stop = shutdown_signal();
    let Some(engine) = start_engine(&store, &args.engine).await? else {
        return Err(CliError(
            "SEEDCORE_WORKER_CONCURRENCY is 0: a worker process with no workers has nothing to do"
                .into(),
        ));
    };
    crate::allocator::log_settings();
    let state = AppState::new(store.clone(), ApiSettings::default());
    serve_metrics(metrics_listener, state, stop.clone());
    stop.cancelled().await;
    engine.shutdown().await;
    Ok(())
}

async fn db_init(args: DbArgs) -> Result<(), CliError> {
    telemetry::init(&args.log);
    let timeout = args.database.pool_timeout().min(Duration::from_secs(10));
    let store = &open_store(&args.database, timeout).await?;
    println!(
        "connected: {} ({})",
        target(&args.database)?.describe(),
        store.backend()
    );
    let report = store
        .migrate()
        .await
        .map_err(|err| explain(&err, "apply migrations"))?;
    for migration in &report.applied {
        println!("applied migration {migration}");
    }
    println!(
        "migrations: {} applied now, {} already applied",
        report.applied.len(),
        report.already_applied
    );
    set_search_language(store, &args.database).await?;
    println!("fact search language: {}", args.database.search_language);
    let missing = store
        .verify()
        .await
        .map_err(|err| explain(&err, "verify the tables"))?;
    if !missing.is_empty() {
        return Err(CliError(format!(
            "tables missing after migration: {}",
            missing.join(", ")
        )));
    }
    println!(
        "verified: tables tasks, task_events, facts, workers, workflows and schedules are present"
    );
    store.close().await;
    Ok(())
}

async fn adopt(args: AdoptArgs) -> Result<(), CliError> {
    telemetry::init(&args.log);
    let target = target(&args.database)?;
    let DatabaseTarget::Postgres(options) = &target else {
        return Err(CliError(
            "db adopt takes over the original service's PostgreSQL database: give its PG_DSN \
             (or DATABASE_URL, or POSTGRES_HOST and the rest)"
                .into(),
        ));
    };
    let name = target.describe();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(args.database.pool_timeout())
        // Each step reports its own time; sqlx's slow-statement warnings would repeat them.
        .connect_with(sqlx::ConnectOptions::disable_statement_logging(
            (**options).clone(),
        ))
        .await
        .map_err(|err| explain(&err.into(), &format!("connect to {name}")))?;
    let options = crate::adopt::AdoptOptions {
        requeue_running: args.requeue_running,
        lease_seconds: args.lease_seconds as f64,
        fail_before_step: None,
    };
    let adopted = crate::adopt::command::run(&pool, &options, args.dry_run).await;
    pool.close().await;
    adopted.map_err(|err| CliError(err.to_string()))
}

async fn start_engine(
    store: &DynStore,
    config: &EngineConfig,
) -> Result<Option<EngineHandle>, CliError> {
    let executors = RemoteExecutors::configure(
        &config.executors,
        &config.executor_secrets.0,
        config.executor_root_cert.as_deref(),
    )
    .map_err(CliError)?
    .with_max_result_bytes(config.max_result_bytes);
    if config.worker_concurrency == 0 {
        tracing::info!("SEEDCORE_WORKER_CONCURRENCY is 0: serving the API without workers");
        return Ok(None);
    }
    let mut settings = EngineSettings::from(config);
    settings.queues = parse_queues(&config.queues).map_err(|err| CliError(err.0))?;
    settings.queue_limits =
        parse_queue_limits(&config.queue_concurrency).map_err(|err| CliError(err.0))?;
    warn_about_unsigned(&executors);
    let router = executors.register(HandlerRouter::with_builtins());
    let engine = Engine::new(store.clone(), router, settings);
    Ok(Some(engine.start().await))
}

/// An executor that cannot tell seedcore's requests from anyone's is worth a line in the log.
fn warn_about_unsigned(executors: &RemoteExecutors) {
    for spec in executors
        .specs()
        .iter()
        .filter(|spec| spec.secret.is_none())
    {
        tracing::warn!(
            task_type = %spec.task_type,
            "the remote executor for '{}' has no secret in SEEDCORE_EXECUTOR_SECRETS: its \
             requests are not signed",
            spec.task_type
        );
    }
}

async fn import_legacy(args: ImportArgs) -> Result<(), CliError> {
    telemetry::init(&args.log);
    if args.tasks.is_none() && args.facts.is_none() {
        return Err(CliError(
            "nothing to import: give --tasks FILE and/or --facts FILE".into(),
        ));
    }
    let store = open_store(&args.database, args.database.pool_timeout()).await?;
    migrate(&store, &args.database).await?;
    let options = ImportOptions {
        tasks: args.tasks,
        facts: args.facts,
        dry_run: args.dry_run,
        strict: args.strict,
        running: if args.requeue_running {
            RunningTasks::Requeue
        } else {
            RunningTasks::Fail
        },
        progress: std::io::stderr().is_terminal(),
    };
    let result = import::import(&store, &options).await;
    store.close().await;
    let summary = match result {
        Ok(summary) => summary,
        Err(ImportError::Strict(rejected)) => {
            for why in rejected.iter().take(50) {
                eprintln!("  {why}");
            }
            return Err(CliError(ImportError::Strict(rejected).to_string()));
        }
        Err(ImportError::Store(err)) => return Err(explain(&err, "import")),
        Err(err) => return Err(CliError(err.to_string())),
    };
    let kinds = [("facts", &summary.facts), ("tasks", &summary.tasks)];
    for (kind, counts) in kinds {
        if let Some(counts) = counts {
            println!("{}", counts.describe(kind, options.dry_run, 50));
        }
    }
    if options.dry_run {
        println!("dry run: nothing was written");
    }
    Ok(())
}

async fn backup(args: BackupArgs) -> Result<(), CliError> {
    telemetry::init(&args.log);
    if args.path.exists() {
        return Err(CliError(format!(
            "{} exists already: choose a new file",
            args.path.display()
        )));
    }
    let store = open_store(&args.database, args.database.pool_timeout()).await?;
    let result = store.backup(&args.path).await;
    store.close().await;
    match result {
        Ok(()) => {}
        Err(StoreError::Unsupported(why)) => return Err(CliError(why)),
        Err(err) => return Err(explain(&err, &format!("write {}", args.path.display()))),
    }
    println!("backed up to {}", args.path.display());
    Ok(())
}

/// Opens the configured store. Commands close it when they end, which lets SQLite fold its
/// write-ahead log back into the database file, so that the file alone holds everything.
async fn open_store(config: &DatabaseConfig, timeout: Duration) -> Result<DynStore, CliError> {
    let target = target(config)?;
    let name = target.describe();
    let doing = match target {
        DatabaseTarget::Postgres(_) => format!("connect to {name}"),
        DatabaseTarget::Sqlite(_) => format!("open {name}"),
    };
    let store = store::open_target(target, config.postgres_pool_size, timeout)
        .await
        .map_err(|err| match err {
            OpenError::Store(err) => explain(&err, &doing),
            OpenError::NoAnswer(_) | OpenError::Tls(_) => {
                CliError(format!("cannot {doing}: {err}"))
            }
            OpenError::Url(_) | OpenError::Folder { .. } => CliError(err.to_string()),
        })?;
    tracing::info!(database = %name, backend = store.backend(), "database opened");
    Ok(store)
}

fn target(config: &DatabaseConfig) -> Result<DatabaseTarget, CliError> {
    config.target().map_err(|err| CliError(err.to_string()))
}

async fn migrate(store: &DynStore, config: &DatabaseConfig) -> Result<(), CliError> {
    let report = store
        .migrate()
        .await
        .map_err(|err| explain(&err, "apply migrations"))?;
    if !report.applied.is_empty() {
        tracing::info!(applied = ?report.applied, "database migrated");
    }
    set_search_language(store, config).await
}

async fn set_search_language(store: &DynStore, config: &DatabaseConfig) -> Result<(), CliError> {
    let language = &config.search_language;
    let changed = store
        .set_search_language(language)
        .await
        .map_err(|err| explain(&err, &format!("use search language '{language}'")))?;
    if changed {
        tracing::info!(language, "fact search index rebuilt for the new language");
    }
    Ok(())
}

/// A store error as a sentence that says what to check.
fn explain(err: &StoreError, doing: &str) -> CliError {
    let hint = match err.diagnose() {
        Some(Cause::FileBusy) => {
            " (another process holds the database file; try again when it is done)"
        }
        Some(Cause::ReadOnly) => " (the database file or its folder is read-only)",
        Some(Cause::CannotOpen) => " (check the path, and that its folder exists and is writable)",
        Some(Cause::NotADatabase) => " (the file is not a SQLite database)",
        Some(Cause::PermissionDenied) => {
            " (the database user lacks a permission: it needs CREATE on the database and schema)"
        }
        Some(Cause::BadCredentials) => " (check the user name and password)",
        Some(Cause::NoSuchDatabase) => " (the database does not exist: create it first)",
        Some(Cause::Unreachable) => {
            " (is the server running and reachable, and are the host and port right?)"
        }
        Some(Cause::SchemaMissing) => " (the tables are missing: run `seedcore db init`)",
        Some(Cause::DiskFull) => " (the disk that holds the database file is full)",
        Some(Cause::DiskError) => " (the database file cannot be read or written)",
        None => "",
    };
    CliError(format!("cannot {doing}: {err}{hint}"))
}

/// Cancelled on SIGINT or SIGTERM.
///
/// The handlers are registered before this returns, not when the spawned task first runs: a
/// signal that arrives in between would otherwise meet the default action and end the process
/// without a clean stop.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    let received = signals();
    tokio::spawn(async move {
        let name = received.await;
        tracing::info!("{name} received: shutting down");
        fired.cancel();
    });
    token
}

/// Registers SIGINT and SIGTERM now; the future names the first one to arrive.
#[cfg(unix)]
fn signals() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let next = |registered: std::io::Result<tokio::signal::unix::Signal>| async move {
            match registered {
                Ok(mut signal) => signal.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = next(interrupt) => "SIGINT",
            _ = next(terminate) => "SIGTERM",
        }
    }
}

#[cfg(not(unix))]
fn signals() -> impl std::future::Future<Output = &'static str> {
    async {
        // Without a handler there is nothing to wait for: run until killed.
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    /// On a one-thread runtime the spawned waiter cannot run before the signal is sent, so this
    /// only passes when the handler is in place by the time `shutdown_signal` returns; otherwise
    /// SIGTERM's default action ends the whole test process.
    #[test]
    fn a_sigterm_sent_right_after_registering_stops_cleanly() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let stop = super::shutdown_signal();
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &std::process::id().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success());
            tokio::time::timeout(Duration::from_secs(10), stop.cancelled())
                .await
                .expect("the token is cancelled by the signal");
        });
    }
}
