//! Configuration: an optional TOML file, `RUNWAY_*` environment overrides, flags, and defaults
//! that work with no file at all. Parsed into raw structs, then validated into a [`Config`] of
//! ready values (durations, compiled schemas, known queues). Every error names its source (the
//! file or the variable) and the key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::job::{ChildFailure, TreePolicy};

mod triggers;
pub use triggers::{
    DEFAULT_DEBOUNCE, Missed, ScheduleTrigger, Secret, Signature, TriggerConfig, TriggerSource,
    WatchTrigger, WebhookTrigger, parse_cron,
};

/// Where runway listens unless told otherwise: loopback only, so nothing is exposed by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7869";
pub const DEFAULT_DATA_DIR: &str = "./runway-data";
pub const DEFAULT_QUEUE: &str = "default";
pub const SHELL_TYPE: &str = "shell";
const MAX_CONCURRENCY: u32 = 10_000;
const MAX_ATTEMPTS: u32 = 100;

/// A configuration error: where (file or variable), which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source_name, self.message)
        } else {
            write!(
                f,
                "{}, key `{}`: {}",
                self.source_name, self.key, self.message
            )
        }
    }
}

/// Validated configuration, ready to use.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (`config file PATH`), for errors found after loading.
    pub source: String,
    pub server: ServerConfig,
    pub queues: BTreeMap<String, QueueConfig>,
    pub types: BTreeMap<String, JobTypeConfig>,
    pub triggers: BTreeMap<String, TriggerConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// A PostgreSQL URL: the state lives there, shared with every server given the same one.
    /// `None`: SQLite in the data directory.
    pub database: Option<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Log bytes kept per job; the rest is dropped with a note.
    pub log_limit: u64,
    /// How long a claim holds a job without renewal before it is rescued.
    pub lease: Duration,
    /// How often expired leases and due scheduled jobs are swept.
    pub sweep_interval: Duration,
    /// Time between SIGTERM and SIGKILL when a command is stopped.
    pub kill_grace: Duration,
    /// How long shutdown lets running jobs finish before handing them back.
    pub shutdown_grace: Duration,
    /// Fsync every commit, not only what users are told is done (`durability = "every_commit"`).
    pub sync_every_commit: bool,
    /// Origins (`scheme://host[:port]`) besides the server's own that may open WebSockets.
    pub allowed_origins: Vec<String>,
    /// Events older than this are deleted (clients resuming from before get `resync`).
    pub events_max_age: Duration,
    /// At most this many events are kept.
    pub events_max_count: u64,
    /// How long a browser session (cookie) lasts after sign-in.
    pub web_session_ttl: Duration,
    /// How long a sign-in code (the link `runway serve` and `runway dashboard` print) may be
    /// used; once used, it is spent.
    pub signin_code_ttl: Duration,
    /// Most TCP connections held at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Most WebSockets (live feeds and sessions) open at once; more get 503.
    pub max_websockets: usize,
    /// Changes one token may make per second (submits, cancels, …), and how many at once.
    pub writes_per_second: u32,
    pub write_burst: u32,
    /// How long a connection may take to send a request's headers, and may stay idle between
    /// requests.
    pub idle_timeout: Duration,
    /// Live clients receive changes in frames at most this often (per subscription): under
    /// load, one frame carries every change of a tick.
    pub live_tick: Duration,
    /// How long a write to a live client may wait for it to read before it is cut off (it
    /// resumes with `since`).
    pub live_send_timeout: Duration,
    /// How long an idempotency key answers with the job it made.
    pub idempotency_window: Duration,
    /// Deepest job tree: a root's children are at depth 1.
    pub max_tree_depth: u32,
    /// Most children one job may have.
    pub max_children: u32,
    /// What one job may keep as artifacts, and all jobs together.
    pub artifact_limits: ArtifactLimits,
    /// Finished trees (and jobs) older than this are deleted by the sweep, with their
    /// artifacts; `None` keeps them until they are deleted.
    pub retention: Option<Duration>,
}

/// Quotas on the files jobs keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactLimits {
    /// Most files one attempt may leave.
    pub max_files: u64,
    /// Most bytes of artifacts one job may keep.
    pub max_job_bytes: u64,
    /// Most bytes of artifacts all jobs together may keep.
    pub max_total_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most jobs of the queue running at once, over every server sharing the store.
    pub concurrency: u32,
    /// Most of them one server runs at once (its own capacity: a GPU per machine); at most
    /// `concurrency`, which it is by default.
    pub server_concurrency: u32,
}

impl QueueConfig {
    pub fn new(concurrency: u32) -> QueueConfig {
        QueueConfig {
            concurrency,
            server_concurrency: concurrency,
        }
    }
}

/// How a job type runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRun {
    /// An argv run directly, no shell; input on stdin and in `RUNWAY_INPUT`.
    Command {
        argv: Vec<String>,
        cwd: Option<PathBuf>,
        env: BTreeMap<String, String>,
    },
    /// The built-in `shell` type: input `{"command": LINE}` run with `sh -c`.
    Shell,
    /// A handler registered in-process by name.
    Handler { name: String },
}

#[derive(Clone)]
pub struct JobTypeConfig {
    pub name: String,
    pub queue: String,
    pub run: JobRun,
    pub timeout: Option<Duration>,
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub schema: Option<InputSchema>,
    /// What its jobs do with their children.
    pub tree: TreePolicy,
}

impl fmt::Debug for JobTypeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobTypeConfig")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("run", &self.run)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("tree", &self.tree)
            .field(
                "schema",
                &self.schema.as_ref().map(|schema| &schema.document),
            )
            .finish()
    }
}

/// A type's input schema, compiled once at load.
#[derive(Clone)]
pub struct InputSchema {
    pub document: Value,
    pub validator: Arc<jsonschema::Validator>,
}

/// One way an input fails its type's schema; the path lets a form point at the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// A JSON Pointer into the input; empty for the input itself.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(formatter, "at {path}: {}", self.message)
    }
}

impl InputSchema {
    /// `format` is asserted (`email`, `uri`, `date-time`, …), as the dashboard's form promises,
    /// not only noted as JSON Schema's later drafts leave it by default.
    pub fn compile(document: Value) -> Result<InputSchema, String> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&document)
            .map_err(|error| error.to_string())?;
        Ok(InputSchema {
            document,
            validator: Arc::new(validator),
        })
    }

    /// Every violation, at most `limit` of them.
    pub fn violations(&self, input: &Value, limit: usize) -> Vec<Violation> {
        self.validator
            .iter_errors(input)
            .take(limit)
            .map(|error| Violation {
                path: error.instance_path.to_string(),
                message: violation_message(&error),
            })
            .collect()
    }
}

/// What a violation says; an enum's lists every value it allows (the validator's own message
/// names three and counts the rest), so a person can pick one.
fn violation_message(error: &jsonschema::ValidationError) -> String {
    match &error.kind {
        jsonschema::error::ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|values| values.iter().map(Value::to_string).collect())
                .unwrap_or_default();
            format!("{} is not one of {}", error.instance, allowed.join(", "))
        }
        _ => error.to_string(),
    }
}

/// Exponential backoff between failed attempts: `initial * 2^(attempt-1)`, capped at `max`,
/// with jitter so retries of many jobs do not arrive together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The un-jittered delay after the given failed attempt (1-based).
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        self.initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay to wait: uniformly in `[base/2, base]` for `unit` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt);
        let half = base / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Values given on the command line; they win over the environment and the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    queues: BTreeMap<String, RawQueue>,
    #[serde(default)]
    types: BTreeMap<String, RawType>,
    #[serde(default)]
    triggers: BTreeMap<String, triggers::RawTrigger>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    data: Option<PathBuf>,
    database: Option<String>,
    body_limit: Option<u64>,
    log_limit: Option<u64>,
    lease: Option<String>,
    sweep_interval: Option<String>,
    kill_grace: Option<String>,
    shutdown_grace: Option<String>,
    shell_type: Option<bool>,
    durability: Option<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    events_max_age: Option<String>,
    events_max_count: Option<u64>,
    web_session_ttl: Option<String>,
    signin_code_ttl: Option<String>,
    max_connections: Option<u64>,
    max_websockets: Option<u64>,
    writes_per_second: Option<u64>,
    write_burst: Option<u64>,
    idle_timeout: Option<String>,
    live_tick: Option<String>,
    live_send_timeout: Option<String>,
    idempotency_window: Option<String>,
    max_tree_depth: Option<u64>,
    max_children: Option<u64>,
    artifacts_max_files: Option<u64>,
    artifacts_max_job_bytes: Option<u64>,
    artifacts_max_total_bytes: Option<u64>,
    retention: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    concurrency: u32,
    server_concurrency: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    command: Option<Vec<String>>,
    handler: Option<String>,
    cwd: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    queue: Option<String>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    backoff_initial: Option<String>,
    backoff_max: Option<String>,
    schema: Option<toml::Value>,
    schema_file: Option<PathBuf>,
    join: Option<bool>,
    on_child_failure: Option<String>,
}

/// Where a value came from, for error messages.
struct Origin<'a> {
    file: &'a str,
}

impl Origin<'_> {
    fn error(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            source_name: self.file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Loads the file (if any), applies `RUNWAY_*` variables from `env` and then `overrides`.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let (raw, file_name, base_dir) = match file {
            Some(path) => {
                let name = format!("config file {}", path.display());
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
                    source_name: name.clone(),
                    key: String::new(),
                    message: format!("cannot read it: {error}"),
                })?;
                let raw = parse_raw(&text, &name)?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (raw, name, base)
            }
            None => (
                RawConfig::default(),
                "default config".to_string(),
                PathBuf::new(),
            ),
        };
        validate(raw, &file_name, &base_dir, env, overrides)
    }

    /// Parses TOML text as a config file (for tests and embedding programs).
    pub fn from_toml(text: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let name = "config text";
        let raw = parse_raw(text, name)?;
        validate(raw, name, Path::new(""), env, &Overrides::default())
    }

    pub fn job_type(&self, name: &str) -> Option<&JobTypeConfig> {
        self.types.get(name)
    }

    /// Refuses a type whose handler is not among `registered`: its jobs could never run.
    pub fn check_handlers<'a>(
        &self,
        registered: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ConfigError> {
        let mut registered: Vec<&str> = registered.into_iter().collect();
        registered.sort_unstable();
        for job_type in self.types.values() {
            if let JobRun::Handler { name } = &job_type.run
                && !registered.contains(&name.as_str())
            {
                return Err(ConfigError {
                    source_name: self.source.clone(),
                    key: format!("types.{}.handler", job_type.name),
                    message: format!(
                        "no handler named `{name}` is registered; registered handlers: {}",
                        registered.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

fn parse_raw(text: &str, name: &str) -> Result<RawConfig, ConfigError> {
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| ConfigError {
        source_name: name.to_string(),
        key: String::new(),
        message: format!("not valid TOML: {}", error.to_string().trim()),
    })?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let key = error.path().to_string();
        ConfigError {
            source_name: name.to_string(),
            key: if key == "." { String::new() } else { key },
            message: error
                .into_inner()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    })
}

fn parse_duration(origin: &Origin, key: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text).map_err(|error| {
        origin.error(
            key,
            format!("`{text}` is not a duration ({error}); write for example \"30s\", \"5m\" or \"1h 30m\""),
        )
    })
}

/// A duration between `range`'s ends, or `default` when the key is absent. Every duration has
/// an upper bound: an absurd one (`lease = "300000y"`) would overflow the clock's arithmetic.
fn optional_duration(
    origin: &Origin,
    key: &str,
    text: Option<&str>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
) -> Result<Duration, ConfigError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let duration = parse_duration(origin, key, text)?;
    if !range.contains(&duration) {
        return Err(origin.error(
            key,
            format!(
                "`{text}` is out of range; use {} to {}",
                humantime::format_duration(*range.start()),
                humantime::format_duration(*range.end())
            ),
        ));
    }
    Ok(duration)
}

/// A number between `range`'s ends, or `default`; `unit` follows the range in the message.
fn bounded_number(
    origin: &Origin,
    key: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    if !range.contains(&value) {
        return Err(origin.error(
            key,
            format!(
                "{value} is out of range; use {} to {}{unit}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);
const GIB: u64 = 1024 * 1024 * 1024;

/// The PostgreSQL URL from `--database`, `RUNWAY_DATABASE` or `server.database`, checked to
/// be one; an empty value means none (SQLite).
fn database_url(
    overrides: &Overrides,
    env: &HashMap<String, String>,
    raw: &RawServer,
    file_name: &str,
) -> Result<Option<String>, ConfigError> {
    let (url, source_name, key) = if let Some(url) = &overrides.database {
        (url, "command line flag --database".to_string(), "")
    } else if let Some(url) = env.get("RUNWAY_DATABASE") {
        (url, "environment variable RUNWAY_DATABASE".to_string(), "")
    } else if let Some(url) = &raw.database {
        (url, file_name.to_string(), "server.database")
    } else {
        return Ok(None);
    };
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConfigError {
            source_name,
            key: key.to_string(),
            message: "the database must be a PostgreSQL URL: \
                      postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (leave it out for SQLite \
                      in the data directory)"
                .to_string(),
        });
    }
    Ok(Some(url.to_string()))
}

fn env_number(env: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ConfigError> {
    match env.get(name) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ConfigError {
                source_name: format!("environment variable {name}"),
                key: String::new(),
                message: format!("`{text}` is not a whole number of bytes"),
            }),
    }
}

fn validate(
    raw: RawConfig,
    file_name: &str,
    base_dir: &Path,
    env: &HashMap<String, String>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let origin = Origin { file: file_name };

    let (listen_text, listen_source, listen_key) = if let Some(listen) = &overrides.listen {
        (listen.clone(), "command line flag --listen".to_string(), "")
    } else if let Some(listen) = env.get("RUNWAY_LISTEN") {
        (
            listen.clone(),
            "environment variable RUNWAY_LISTEN".to_string(),
            "",
        )
    } else if let Some(listen) = &raw.server.listen {
        (listen.clone(), file_name.to_string(), "server.listen")
    } else {
        (
            DEFAULT_LISTEN.to_string(),
            file_name.to_string(),
            "server.listen",
        )
    };
    let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError {
        source_name: listen_source,
        key: listen_key.to_string(),
        message: format!("`{listen_text}` is not an address; write IP:PORT, e.g. 127.0.0.1:7869"),
    })?;

    let data_dir = overrides
        .data_dir
        .clone()
        .or_else(|| env.get("RUNWAY_DATA").map(PathBuf::from))
        .or_else(|| raw.server.data.as_ref().map(|dir| base_dir.join(dir)))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let database = database_url(overrides, env, &raw.server, file_name)?;

    let body_limit = bounded_number(
        &origin,
        "server.body_limit",
        env_number(env, "RUNWAY_BODY_LIMIT")?.or(raw.server.body_limit),
        1024 * 1024,
        1..=GIB,
        " bytes",
    )? as usize;
    let log_limit = bounded_number(
        &origin,
        "server.log_limit",
        env_number(env, "RUNWAY_LOG_LIMIT")?.or(raw.server.log_limit),
        4 * 1024 * 1024,
        1..=1024 * GIB,
        " bytes",
    )?;
    let duration = |key: &str, text: &Option<String>, default, range| {
        optional_duration(&origin, key, text.as_deref(), default, range)
    };
    let lease = duration("server.lease", &raw.server.lease, 30 * SECOND, SECOND..=DAY)?;
    let sweep_interval = duration(
        "server.sweep_interval",
        &raw.server.sweep_interval,
        5 * SECOND,
        Duration::from_millis(10)..=HOUR,
    )?;
    let kill_grace = duration(
        "server.kill_grace",
        &raw.server.kill_grace,
        5 * SECOND,
        Duration::ZERO..=HOUR,
    )?;
    let shutdown_grace = duration(
        "server.shutdown_grace",
        &raw.server.shutdown_grace,
        10 * SECOND,
        Duration::ZERO..=DAY,
    )?;
    let events_max_age = duration(
        "server.events_max_age",
        &raw.server.events_max_age,
        7 * DAY,
        60 * SECOND..=10 * YEAR,
    )?;
    let web_session_ttl = duration(
        "server.web_session_ttl",
        &raw.server.web_session_ttl,
        7 * DAY,
        60 * SECOND..=YEAR,
    )?;
    let signin_code_ttl = duration(
        "server.signin_code_ttl",
        &raw.server.signin_code_ttl,
        10 * 60 * SECOND,
        10 * SECOND..=DAY,
    )?;
    let idle_timeout = duration(
        "server.idle_timeout",
        &raw.server.idle_timeout,
        15 * SECOND,
        SECOND..=HOUR,
    )?;
    let live_tick = duration(
        "server.live_tick",
        &raw.server.live_tick,
        Duration::from_millis(50),
        Duration::ZERO..=SECOND,
    )?;
    let live_send_timeout = duration(
        "server.live_send_timeout",
        &raw.server.live_send_timeout,
        10 * SECOND,
        SECOND..=HOUR,
    )?;
    let idempotency_window = duration(
        "server.idempotency_window",
        &raw.server.idempotency_window,
        DAY,
        60 * SECOND..=30 * DAY,
    )?;
    let max_tree_depth = bounded_number(
        &origin,
        "server.max_tree_depth",
        raw.server.max_tree_depth,
        8,
        1..=64,
        "",
    )? as u32;
    let max_children = bounded_number(
        &origin,
        "server.max_children",
        raw.server.max_children,
        100_000,
        1..=10_000_000,
        "",
    )? as u32;
    let artifact_limits = ArtifactLimits {
        max_files: bounded_number(
            &origin,
            "server.artifacts_max_files",
            raw.server.artifacts_max_files,
            1000,
            1..=1_000_000,
            "",
        )?,
        max_job_bytes: bounded_number(
            &origin,
            "server.artifacts_max_job_bytes",
            raw.server.artifacts_max_job_bytes,
            GIB,
            1..=1024 * 1024 * GIB,
            " bytes",
        )?,
        max_total_bytes: bounded_number(
            &origin,
            "server.artifacts_max_total_bytes",
            raw.server.artifacts_max_total_bytes,
            100 * GIB,
            1..=1024 * 1024 * GIB,
            " bytes",
        )?,
    };
    // Unset, nothing is pruned: a server that kept its history keeps it until told otherwise.
    let retention = match raw.server.retention.as_deref() {
        None => None,
        Some(_) => Some(duration(
            "server.retention",
            &raw.server.retention,
            30 * DAY,
            60 * SECOND..=100 * YEAR,
        )?),
    };
    let max_connections = bounded_number(
        &origin,
        "server.max_connections",
        raw.server.max_connections,
        4096,
        1..=1_000_000,
        "",
    )? as usize;
    // Unset, it is 1024 or the connection cap, whichever is lower.
    let writes_per_second = bounded_number(
        &origin,
        "server.writes_per_second",
        raw.server.writes_per_second,
        1000,
        1..=1_000_000,
        " per second",
    )? as u32;
    let write_burst = bounded_number(
        &origin,
        "server.write_burst",
        raw.server.write_burst,
        u64::from(writes_per_second),
        1..=1_000_000,
        "",
    )? as u32;
    let max_websockets = bounded_number(
        &origin,
        "server.max_websockets",
        raw.server.max_websockets,
        1024.min(max_connections as u64),
        1..=1_000_000,
        "",
    )? as usize;
    if max_websockets > max_connections {
        return Err(origin.error(
            "server.max_websockets",
            format!(
                "{max_websockets} is out of range: more than server.max_connections ({max_connections}), and each WebSocket holds a connection"
            ),
        ));
    }
    let events_max_count = raw.server.events_max_count.unwrap_or(1_000_000);
    if !(1000..=1_000_000_000).contains(&events_max_count) {
        return Err(origin.error(
            "server.events_max_count",
            format!("{events_max_count} is out of range; keep 1000 to 1000000000"),
        ));
    }
    let sync_every_commit = match raw.server.durability.as_deref() {
        None | Some("acknowledged") => false,
        Some("every_commit") => true,
        Some(other) => {
            return Err(origin.error(
                "server.durability",
                format!("`{other}` is not a durability; use \"acknowledged\" or \"every_commit\""),
            ));
        }
    };

    for (index, origin_text) in raw.server.allowed_origins.iter().enumerate() {
        let valid = (origin_text.starts_with("http://") || origin_text.starts_with("https://"))
            && !origin_text.ends_with('/')
            && origin_text
                .split("://")
                .nth(1)
                .is_some_and(|host| !host.is_empty() && !host.contains('/'));
        if !valid {
            return Err(origin.error(
                format!("server.allowed_origins[{index}]"),
                format!("`{origin_text}` is not an origin; write scheme://host[:port], e.g. \"https://jobs.example.com\""),
            ));
        }
    }

    let mut queues = BTreeMap::new();
    for (name, queue) in raw.queues {
        let key = format!("queues.{name}.concurrency");
        check_name(&origin, &format!("queues.{name}"), &name)?;
        if queue.concurrency == 0 || queue.concurrency > MAX_CONCURRENCY {
            return Err(origin.error(
                key,
                format!(
                    "{} is out of range; use 1..={MAX_CONCURRENCY}",
                    queue.concurrency
                ),
            ));
        }
        let server_concurrency = queue.server_concurrency.unwrap_or(queue.concurrency);
        if server_concurrency == 0 || server_concurrency > queue.concurrency {
            return Err(origin.error(
                format!("queues.{name}.server_concurrency"),
                format!(
                    "{server_concurrency} is out of range; use 1..={} (the queue's concurrency, \
                     which counts the jobs of every server)",
                    queue.concurrency
                ),
            ));
        }
        queues.insert(
            name,
            QueueConfig {
                concurrency: queue.concurrency,
                server_concurrency,
            },
        );
    }
    if let Some(concurrency) = env_number(env, "RUNWAY_CONCURRENCY")? {
        if concurrency == 0 || concurrency > u64::from(MAX_CONCURRENCY) {
            return Err(ConfigError {
                source_name: "environment variable RUNWAY_CONCURRENCY".into(),
                key: String::new(),
                message: format!("{concurrency} is out of range; use 1..={MAX_CONCURRENCY}"),
            });
        }
        queues.insert(
            DEFAULT_QUEUE.to_string(),
            QueueConfig::new(concurrency as u32),
        );
    }
    queues
        .entry(DEFAULT_QUEUE.to_string())
        .or_insert(QueueConfig::new(8));

    let mut types = BTreeMap::new();
    if raw.server.shell_type.unwrap_or(true) && !raw.types.contains_key(SHELL_TYPE) {
        types.insert(SHELL_TYPE.to_string(), shell_type());
    }
    for (name, raw_type) in raw.types {
        let job_type = validate_type(&origin, base_dir, &name, raw_type, &queues)?;
        types.insert(name, job_type);
    }
    let triggers = triggers::validate_triggers(&origin, base_dir, env, raw.triggers, &types)?;

    Ok(Config {
        source: file_name.to_string(),
        server: ServerConfig {
            listen,
            data_dir,
            database,
            body_limit,
            log_limit,
            lease,
            sweep_interval,
            kill_grace,
            shutdown_grace,
            sync_every_commit,
            allowed_origins: raw.server.allowed_origins,
            events_max_age,
            events_max_count,
            web_session_ttl,
            signin_code_ttl,
            max_connections,
            max_websockets,
            writes_per_second,
            write_burst,
            idle_timeout,
            live_tick,
            live_send_timeout,
            idempotency_window,
            max_tree_depth,
            max_children,
            artifact_limits,
            retention,
        },
        queues,
        types,
        triggers,
    })
}

fn check_name(origin: &Origin, key: &str, name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(origin.error(
            key,
            format!("`{name}` is not a valid name; use 1 to 64 of a-z, A-Z, 0-9, `-`, `_`, `.`"),
        ))
    }
}

/// The built-in `shell` type: runs the submitter's command line with `sh -c`.
pub fn shell_type() -> JobTypeConfig {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"command": {"type": "string", "minLength": 1, "pattern": "^[^\\x00]*$"}},
        "required": ["command"],
        "additionalProperties": false
    });
    JobTypeConfig {
        name: SHELL_TYPE.to_string(),
        queue: DEFAULT_QUEUE.to_string(),
        run: JobRun::Shell,
        timeout: None,
        max_attempts: 1,
        backoff: Backoff::default(),
        schema: Some(InputSchema::compile(schema).expect("the shell type's schema is valid")),
        tree: TreePolicy::default(),
    }
}

fn validate_type(
    origin: &Origin,
    base_dir: &Path,
    name: &str,
    raw: RawType,
    queues: &BTreeMap<String, QueueConfig>,
) -> Result<JobTypeConfig, ConfigError> {
    let key = |field: &str| format!("types.{name}.{field}");
    check_name(origin, &format!("types.{name}"), name)?;
    let run = match (raw.command, raw.handler) {
        (Some(argv), None) => {
            if argv.is_empty() || argv[0].is_empty() {
                return Err(origin.error(
                    key("command"),
                    "must name a program: write command = [\"program\", \"arg\", …]",
                ));
            }
            for variable in raw.env.keys() {
                if variable.is_empty() || variable.contains('=') || variable.contains('\0') {
                    return Err(origin.error(
                        format!("types.{name}.env.{variable}"),
                        "is not a valid environment variable name",
                    ));
                }
            }
            JobRun::Command {
                argv,
                cwd: raw.cwd.map(|dir| base_dir.join(dir)),
                env: raw.env,
            }
        }
        (None, Some(handler)) => JobRun::Handler { name: handler },
        (Some(_), Some(_)) => {
            return Err(origin.error(
                format!("types.{name}"),
                "has both `command` and `handler`; keep one",
            ));
        }
        (None, None) => {
            return Err(origin.error(
                format!("types.{name}"),
                "says neither how to run: add command = [\"program\", …] or handler = \"name\"",
            ));
        }
    };
    let queue = raw.queue.unwrap_or_else(|| DEFAULT_QUEUE.to_string());
    if !queues.contains_key(&queue) {
        return Err(origin.error(
            key("queue"),
            format!("names queue `{queue}`, which is not declared; add [queues.{queue}] with a concurrency"),
        ));
    }
    let timeout = match raw.timeout.as_deref() {
        Some(text) => Some(optional_duration(
            origin,
            &key("timeout"),
            Some(text),
            Duration::ZERO,
            Duration::from_millis(1)..=YEAR,
        )?),
        None => None,
    };
    let max_attempts = raw.max_attempts.unwrap_or(3);
    if max_attempts == 0 || max_attempts > MAX_ATTEMPTS {
        return Err(origin.error(
            key("max_attempts"),
            format!("{max_attempts} is out of range; use 1..={MAX_ATTEMPTS}"),
        ));
    }
    let defaults = Backoff::default();
    let backoff = Backoff {
        initial: optional_duration(
            origin,
            &key("backoff_initial"),
            raw.backoff_initial.as_deref(),
            defaults.initial,
            Duration::ZERO..=30 * DAY,
        )?,
        max: optional_duration(
            origin,
            &key("backoff_max"),
            raw.backoff_max.as_deref(),
            defaults.max,
            Duration::ZERO..=30 * DAY,
        )?,
    };
    if backoff.max < backoff.initial {
        return Err(origin.error(
            key("backoff_max"),
            "must not be shorter than backoff_initial",
        ));
    }
    let schema_document = match (raw.schema, raw.schema_file) {
        (Some(_), Some(_)) => {
            return Err(origin.error(
                format!("types.{name}"),
                "has both `schema` and `schema_file`; keep one",
            ));
        }
        (Some(schema), None) => Some(serde_json::to_value(schema).map_err(|error| {
            origin.error(key("schema"), format!("cannot be read as JSON: {error}"))
        })?),
        (None, Some(file)) => {
            let path = base_dir.join(&file);
            let text = std::fs::read_to_string(&path).map_err(|error| {
                origin.error(
                    key("schema_file"),
                    format!("cannot read {}: {error}", path.display()),
                )
            })?;
            Some(serde_json::from_str(&text).map_err(|error| {
                origin.error(
                    key("schema_file"),
                    format!("{} is not valid JSON: {error}", path.display()),
                )
            })?)
        }
        (None, None) => None,
    };
    let schema = match schema_document {
        Some(document) => Some(InputSchema::compile(document).map_err(|error| {
            origin.error(
                key("schema"),
                format!("is not a valid JSON Schema: {error}"),
            )
        })?),
        None => None,
    };
    let on_child_failure = match raw.on_child_failure.as_deref() {
        None => ChildFailure::default(),
        Some(text) => text
            .parse()
            .map_err(|message: String| origin.error(key("on_child_failure"), message))?,
    };
    Ok(JobTypeConfig {
        name: name.to_string(),
        queue,
        run,
        timeout,
        max_attempts,
        backoff,
        schema,
        tree: TreePolicy {
            join: raw.join.unwrap_or(false),
            on_child_failure,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, &HashMap::new())
    }

    #[test]
    fn an_enum_violation_lists_every_allowed_value() {
        let schema = InputSchema::compile(serde_json::json!({
            "enum": ["red", "green", "blue", "cyan", "magenta"]
        }))
        .unwrap();
        let violations = schema.violations(&serde_json::json!("pink"), 10);
        assert_eq!(
            violations[0].message,
            r#""pink" is not one of "red", "green", "blue", "cyan", "magenta""#
        );
    }

    #[test]
    fn an_input_schemas_formats_are_checked() {
        let schema = InputSchema::compile(serde_json::json!({
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "when": {"type": "string", "format": "date-time"}
            }
        }))
        .unwrap();
        let good = serde_json::json!({"email": "ada@example.com", "when": "2026-11-29T10:00:00Z"});
        assert!(schema.violations(&good, 10).is_empty());
        let bad = serde_json::json!({"email": "not an address", "when": "tomorrow"});
        let paths: Vec<String> = schema
            .violations(&bad, 10)
            .into_iter()
            .map(|violation| violation.path)
            .collect();
        assert_eq!(paths, ["/email", "/when"]);
    }

    #[test]
    fn no_file_gives_the_default_queue_and_the_shell_type() {
        let config = Config::load(None, &HashMap::new(), &Overrides::default()).unwrap();
        assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.server.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.queues[DEFAULT_QUEUE].concurrency, 8);
        assert_eq!(config.types[SHELL_TYPE].run, JobRun::Shell);
    }

    #[test]
    fn a_full_type_is_read_with_its_durations_and_schema() {
        let config = load(
            r#"
            [queues.gpu]
            concurrency = 1
            [types.render]
            command = ["render", "--fast"]
            queue = "gpu"
            timeout = "10m"
            max_attempts = 5
            backoff_initial = "2s"
            backoff_max = "1m"
            schema = { type = "object", required = ["text"] }
            "#,
        )
        .unwrap();
        let render = &config.types["render"];
        assert_eq!(render.queue, "gpu");
        assert_eq!(render.timeout, Some(Duration::from_secs(600)));
        assert_eq!(render.max_attempts, 5);
        assert_eq!(render.backoff.initial, Duration::from_secs(2));
        let schema = render.schema.as_ref().unwrap();
        assert!(
            schema
                .violations(&serde_json::json!({"text": "hi"}), 5)
                .is_empty()
        );
        assert_eq!(schema.violations(&serde_json::json!({}), 5).len(), 1);
    }

    #[test]
    fn errors_name_the_key_and_what_is_wrong() {
        let cases = [
            (
                "[types.a]\ncommand = [\"x\"]\ntimeout = \"10x\"",
                "types.a.timeout",
                "duration",
            ),
            (
                "[types.a]\ncommand = [\"x\"]\nqueue = \"gpu\"",
                "types.a.queue",
                "not declared",
            ),
            ("[types.a]\ncommand = []", "types.a.command", "program"),
            ("[types.a]\nqueue = \"default\"", "types.a", "neither"),
            (
                "[queues.q]\nconcurrency = 0",
                "queues.q.concurrency",
                "out of range",
            ),
            (
                "[queues.q]\nconcurrency = 2\nserver_concurrency = 3",
                "queues.q.server_concurrency",
                "use 1..=2",
            ),
            (
                "[server]\nlisten = \"nowhere\"",
                "server.listen",
                "not an address",
            ),
            (
                "[types.a]\ncommand = [\"x\"]\ncolour = 1",
                "types.a.colour",
                "unknown field `colour`",
            ),
            (
                "[types.a]\ncommand = [\"x\"]\nmax_attempts = \"3\"",
                "types.a.max_attempts",
                "invalid type",
            ),
            (
                "[types.a]\ncommand = [\"x\"]\nschema = { type = 7 }",
                "types.a.schema",
                "JSON Schema",
            ),
        ];
        for (text, key, message) in cases {
            let error = load(text).expect_err(text);
            assert_eq!(error.key, key, "{text}: {error}");
            assert!(error.message.contains(message), "{text}: {error}");
            assert!(error.to_string().starts_with("config text"), "{error}");
        }
    }

    #[test]
    fn every_duration_and_size_has_an_upper_bound() {
        let cases = [
            ("[server]\nlease = \"300000y\"", "server.lease"),
            ("[server]\nsweep_interval = \"2h\"", "server.sweep_interval"),
            ("[server]\nkill_grace = \"2h\"", "server.kill_grace"),
            ("[server]\nlive_tick = \"2s\"", "server.live_tick"),
            (
                "[server]\nlive_send_timeout = \"2h\"",
                "server.live_send_timeout",
            ),
            (
                "[server]\nshutdown_grace = \"2days\"",
                "server.shutdown_grace",
            ),
            (
                "[server]\nevents_max_age = \"20y\"",
                "server.events_max_age",
            ),
            (
                "[server]\nweb_session_ttl = \"2y\"",
                "server.web_session_ttl",
            ),
            (
                "[server]\nsignin_code_ttl = \"2d\"",
                "server.signin_code_ttl",
            ),
            ("[server]\nbody_limit = 2000000000", "server.body_limit"),
            ("[server]\nlog_limit = 0", "server.log_limit"),
            ("[server]\nevents_max_count = 10", "server.events_max_count"),
            (
                "[server]\nmax_connections = 10\nmax_websockets = 20",
                "server.max_websockets",
            ),
            (
                "[types.a]\ncommand = [\"x\"]\ntimeout = \"400days\"",
                "types.a.timeout",
            ),
            (
                "[types.a]\ncommand = [\"x\"]\nbackoff_max = \"1y\"",
                "types.a.backoff_max",
            ),
        ];
        for (text, key) in cases {
            let error = load(text).expect_err(text);
            assert_eq!(error.key, key, "{text}: {error}");
            assert!(error.message.contains("out of range"), "{text}: {error}");
        }
        let small = load("[server]\nmax_connections = 10").unwrap();
        assert_eq!(
            small.server.max_websockets, 10,
            "unset, it follows the connection cap"
        );
        let error = load("[server]\nlease = \"300000y\"").unwrap_err();
        assert!(error.message.contains("use 1s to 1day"), "{error}");
    }

    #[test]
    fn broken_toml_is_reported_with_its_position() {
        let error = load("[types.a\ncommand = 1").unwrap_err();
        assert!(error.message.contains("not valid TOML"), "{error}");
        assert!(error.message.contains("line 1"), "{error}");
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        let env = HashMap::from([
            ("RUNWAY_LISTEN".to_string(), "127.0.0.1:9000".to_string()),
            ("RUNWAY_CONCURRENCY".to_string(), "3".to_string()),
        ]);
        let raw = parse_raw("[server]\nlisten = \"127.0.0.1:8000\"", "f").unwrap();
        let config = validate(raw, "f", Path::new(""), &env, &Overrides::default()).unwrap();
        assert_eq!(config.server.listen.port(), 9000);
        assert_eq!(config.queues[DEFAULT_QUEUE].concurrency, 3);
        let flags = Overrides {
            listen: Some("127.0.0.1:9100".into()),
            data_dir: Some("/srv/runway".into()),
            database: None,
        };
        let raw = parse_raw("", "f").unwrap();
        let config = validate(raw, "f", Path::new(""), &env, &flags).unwrap();
        assert_eq!(config.server.listen.port(), 9100);
        assert_eq!(config.server.data_dir, PathBuf::from("/srv/runway"));

        let bad = HashMap::from([("RUNWAY_BODY_LIMIT".to_string(), "lots".to_string())]);
        let error = validate(
            parse_raw("", "f").unwrap(),
            "f",
            Path::new(""),
            &bad,
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("RUNWAY_BODY_LIMIT"), "{error}");
    }

    #[test]
    fn the_database_comes_from_the_flag_the_environment_or_the_file() {
        let file = "[server]\ndatabase = \"postgres://file@db/runway\"";
        let database = |env: &[(&str, &str)], flag: Option<&str>| {
            let env: HashMap<String, String> = env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            let flags = Overrides {
                database: flag.map(str::to_string),
                ..Overrides::default()
            };
            validate(
                parse_raw(file, "f").unwrap(),
                "f",
                Path::new(""),
                &env,
                &flags,
            )
            .map(|config| config.server.database)
        };
        assert_eq!(
            database(&[], None).unwrap().as_deref(),
            Some("postgres://file@db/runway")
        );
        let env = [("RUNWAY_DATABASE", "postgresql://env@db/runway")];
        assert_eq!(
            database(&env, None).unwrap().as_deref(),
            Some("postgresql://env@db/runway")
        );
        assert_eq!(
            database(&env, Some("postgres://flag@db/runway"))
                .unwrap()
                .as_deref(),
            Some("postgres://flag@db/runway")
        );
        // An empty value chooses SQLite, as leaving it out does.
        assert_eq!(database(&[("RUNWAY_DATABASE", "")], None).unwrap(), None);
        let error = database(&[("RUNWAY_DATABASE", "mysql://db/runway")], None).unwrap_err();
        assert!(error.to_string().contains("RUNWAY_DATABASE"), "{error}");
        assert!(error.to_string().contains("postgres://USER"), "{error}");
    }

    #[test]
    fn backoff_grows_exponentially_is_capped_and_jittered_within_bounds() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        assert_eq!(backoff.base_delay(1), Duration::from_secs(1));
        assert_eq!(backoff.base_delay(2), Duration::from_secs(2));
        assert_eq!(backoff.base_delay(4), Duration::from_secs(8));
        assert_eq!(backoff.base_delay(5), Duration::from_secs(10));
        assert_eq!(backoff.base_delay(90), Duration::from_secs(10));
        assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(backoff.delay(3, 1.0), Duration::from_secs(4));
        let middle = backoff.delay(3, 0.5);
        assert!(middle > Duration::from_secs(2) && middle < Duration::from_secs(4));
    }
}
