//! `runway serve`: load the configuration, open the store, recover, serve the API and run jobs
//! until SIGINT or SIGTERM, then shut down gracefully.

use std::collections::HashMap;
use std::sync::Arc;

use runway_core::bus::Bus;
use runway_core::config::{Config, Overrides};
use runway_core::data_dir::DataDirLock;
use runway_core::{App, Clock, Store, SystemClock};
use runway_postgres::Database;
use runway_server::ServerState;
use runway_sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{LogFormat, ServeArgs};
use crate::credentials::{self, Server};
use crate::exit::{self, CliError};
use crate::output;

/// The store the config names, the clock its servers share, and what holds them open.
struct OpenedStore {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Where the state is, for the start-up line.
    described: String,
    /// PostgreSQL's store leaves the data directory to the server: held for its life.
    _lock: Option<DataDirLock>,
}

/// SQLite in the data directory, or the PostgreSQL database `server.database` names.
async fn open_store(config: &Config, bus: Bus) -> Result<OpenedStore, CliError> {
    let data_dir = &config.server.data_dir;
    let Some(url) = &config.server.database else {
        let options = SqliteOptions {
            sync_every_commit: config.server.sync_every_commit,
        };
        let store = SqliteStore::open_with(data_dir, options, bus)
            .map_err(|error| CliError::new(exit::FAILED, error.to_string()))?;
        return Ok(OpenedStore {
            store: Arc::new(store),
            clock: Arc::new(SystemClock),
            described: format!("data in {}", data_dir.display()),
            _lock: None,
        });
    };
    let failed = |error: &dyn std::fmt::Display| CliError::new(exit::FAILED, error.to_string());
    let lock = runway_core::data_dir::lock(data_dir).map_err(|error| failed(&error))?;
    let database = Database::connect(url)
        .await
        .map_err(|error| failed(&error))?;
    let store = database.store(bus).await.map_err(|error| failed(&error))?;
    let clock = database.clock().await.map_err(|error| failed(&error))?;
    Ok(OpenedStore {
        store: Arc::new(store),
        clock,
        described: format!(
            "state in PostgreSQL at {}, files in {}",
            database.target(),
            data_dir.display()
        ),
        _lock: Some(lock),
    })
}

pub async fn run(args: ServeArgs) -> Result<u8, CliError> {
    init_logging(args.log_format);
    // The config reads `RUNWAY_*` and the variables a trigger's `secret_env` names; one that
    // is not UTF-8 is left out (and reported as unset if the config wants it).
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data,
        database: args.database,
    };
    let config = Config::load(args.config.as_deref(), &env, &overrides)
        .map_err(|error| CliError::new(exit::CONFIG, error.to_string()))?;
    // Before anything is created: a type whose handler does not exist could never run.
    let handlers = runway_core::handler::builtin_handlers();
    config
        .check_handlers(handlers.iter().map(|(name, _)| name.as_str()))
        .map_err(|error| CliError::new(exit::CONFIG, error.to_string()))?;
    let given_token = admin_token(args.admin_token_file.as_deref(), &env)?;
    // Before the engine starts, so its first jobs are measured too.
    runway_server::metrics::install();
    let config = Arc::new(config);
    raise_open_file_limit(config.server.max_connections);

    // The bus belongs to the app; the store publishes what it commits on it.
    let bus = Bus::default();
    let opened = open_store(&config, bus.clone()).await?;
    let store = Arc::clone(&opened.store);
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|error| {
            CliError::new(
                exit::FAILED,
                format!(
                    "cannot listen on {}: {error}; choose another address with --listen",
                    config.server.listen
                ),
            )
        })?;
    let address = listener.local_addr()?;
    let host = if address.ip().is_unspecified() {
        format!("127.0.0.1:{}", address.port())
    } else {
        address.to_string()
    };
    let url = format!("http://{host}");

    // Named after the server, so that a restart finds the attempts it left running itself.
    let server_id = runway_core::data_dir::server_id(&config.server.data_dir)
        .map_err(|error| CliError::new(exit::FAILED, error.to_string()))?;
    let worker = format!(
        "{server_id}-{}-{}",
        std::process::id(),
        &runway_server::auth::generate_token()[4..16]
    );
    let app = App::new(
        Arc::clone(&store),
        bus,
        Arc::clone(&config),
        Arc::clone(&opened.clock),
        Vec::new(),
        worker,
    )
    .map_err(|error| CliError::new(exit::CONFIG, error.to_string()))?;
    app.set_url(url.clone());
    let first_token = runway_server::auth::ensure_admin_token(&app, given_token.as_deref())
        .await
        .map_err(|error| CliError::new(exit::FAILED, error.to_string()))?;
    app.start().await.map_err(|error| {
        CliError::new(exit::FAILED, format!("cannot start the engine: {error}"))
    })?;

    match first_token {
        // The operator's own token is theirs to keep: never printed.
        Some(token) if given_token.is_some() => {
            output::print_line("runway: first start: the admin token is the one you gave")?;
            save_credentials(&url, &token)?;
        }
        Some(token) => {
            output::print_line(
                "runway: first start: created the admin token (shown only this once):",
            )?;
            output::print_line(&format!("  {token}"))?;
            save_credentials(&url, &token)?;
        }
        None => {}
    }
    output::print_line(&format!("runway listening on {url} ({})", opened.described))?;
    // Never a token in a link: a start's output often ends up in a log. A sign-in code is
    // spent by its first use and expires in minutes.
    let admin = app
        .first_admin()
        .await
        .map_err(|error| CliError::new(exit::FAILED, error.to_string()))?;
    if let Some(admin) = admin {
        let (code, _) = runway_server::auth::signin_code(&app, &admin)
            .await
            .map_err(|error| CliError::new(exit::FAILED, error.to_string()))?;
        output::print_line(&format!(
            "runway: dashboard (signs you in): {url}/#code={code}"
        ))?;
        output::print_line(&format!(
            "runway: the link signs in as `{}` once, within {}; `runway dashboard` prints a new one",
            admin.name,
            humantime::format_duration(config.server.signin_code_ttl)
        ))?;
    }

    let state = ServerState::start(app.clone()).await.map_err(|error| {
        CliError::new(
            exit::FAILED,
            format!("cannot start the live layer: {error}"),
        )
    })?;
    // Handled from here on: a SIGTERM right after readiness is a graceful stop too.
    let signals = shutdown_signals();
    let stop = {
        let app = app.clone();
        async move {
            tokio::select! {
                () = signals => {}
                _ = app.failed() => {}
            }
            notify_systemd(sd_notify::NotifyState::Stopping);
        }
    };
    // Listening, jobs running, the live layer up: a systemd unit of Type=notify is started.
    notify_systemd(sd_notify::NotifyState::Ready);
    let result = runway_server::serve(listener, state, stop).await;
    tracing::info!("shutting down: letting running jobs finish");
    app.shutdown().await;
    result.map_err(|error| CliError::new(exit::FAILED, format!("the server failed: {error}")))?;
    if let Some(why) = app.failure() {
        return Err(CliError::new(
            exit::FAILED,
            format!("{why}; the server stopped (see its log)"),
        ));
    }
    Ok(exit::OK)
}

/// Tells systemd (a unit of `Type=notify`) how the server stands; nothing without systemd.
fn notify_systemd(state: sd_notify::NotifyState) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(error) = sd_notify::notify(&[state])
    {
        tracing::warn!(%error, "cannot tell systemd how the server stands");
    }
}

/// SIGTERM or SIGINT, handled from the moment this is called (not from the first poll).
fn shutdown_signals() -> impl std::future::Future<Output = ()> {
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT can be handled");
    async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Raises the soft limit on open files toward the hard one, so `server.max_connections`
/// connections (plus the database, pipes and logs) fit; the usual soft default of 1024 would
/// make accepts fail first. Says so when the hard limit is too low.
fn raise_open_file_limit(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let wanted = max_connections as u64 + 256;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= wanted {
        return;
    }
    let raised = wanted.min(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_err() || raised < wanted {
        tracing::warn!(
            soft,
            hard,
            wanted,
            "the open-file limit is below server.max_connections plus room for jobs; raise it (ulimit -n) or lower server.max_connections"
        );
    }
}

/// Adds this server to the CLI's credentials file, saying under which name.
fn save_credentials(url: &str, token: &str) -> Result<(), CliError> {
    match credentials::add(Server {
        url: url.to_string(),
        token: token.to_string(),
    }) {
        Ok((path, name, default)) if name == default => output::print_line(&format!(
            "runway: saved the URL and token to {} as server `{name}`, the CLI's default",
            path.display()
        ))?,
        Ok((path, name, default)) => output::print_line(&format!(
            "runway: saved the URL and token to {} as server `{name}`; the CLI's default stays \
             `{default}`: use `runway --server {name} …`",
            path.display()
        ))?,
        Err(message) => eprintln!("runway: could not save credentials: {message}"),
    }
    Ok(())
}

/// The operator's first admin token, from `--admin-token-file` or `RUNWAY_ADMIN_TOKEN`, checked
/// before anything is created.
fn admin_token(
    file: Option<&std::path::Path>,
    env: &HashMap<String, String>,
) -> Result<Option<String>, CliError> {
    let (token, source) = match (file, env.get("RUNWAY_ADMIN_TOKEN")) {
        (Some(_), Some(_)) => {
            return Err(CliError::new(
                exit::CONFIG,
                "both --admin-token-file and RUNWAY_ADMIN_TOKEN are given; keep one",
            ));
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                CliError::new(
                    exit::CONFIG,
                    format!(
                        "cannot read the admin token file {}: {error}",
                        path.display()
                    ),
                )
            })?;
            (
                text.trim().to_string(),
                format!("the admin token file {}", path.display()),
            )
        }
        (None, Some(token)) => (
            token.trim().to_string(),
            "environment variable RUNWAY_ADMIN_TOKEN".to_string(),
        ),
        (None, None) => return Ok(None),
    };
    if !runway_server::auth::is_api_token(&token) {
        return Err(CliError::new(
            exit::CONFIG,
            format!(
                "{source} does not hold an API token: it must be `rwy_` and 64 hex digits; \
                 make one with: printf 'rwy_%s\\n' \"$(openssl rand -hex 32)\""
            ),
        ));
    }
    Ok(Some(token))
}
