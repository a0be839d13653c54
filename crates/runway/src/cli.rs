//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "runway",
    version,
    about = "runway: a self-hosted job server",
    after_help = "Exit codes: 0 ok, 1 a job failed, 2 usage or invalid request, 3 a job was cancelled, \
4 not found, 5 authentication, 6 conflict with the job's state, 7 wait timed out, \
69 server unreachable, 70 server error, 78 bad configuration."
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the server is and how to authenticate; flags win over the environment, which wins
/// over the credentials file `runway serve` wrote.
#[derive(Debug, Args)]
pub struct Connection {
    /// Server URL [default: from the credentials file, else http://127.0.0.1:7869]
    #[arg(long, env = "RUNWAY_URL", global = true)]
    pub url: Option<String>,
    /// API token [default: from the credentials file]
    #[arg(long, env = "RUNWAY_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Server of the credentials file to use [default: its default]
    #[arg(long, env = "RUNWAY_SERVER", global = true)]
    pub server: Option<String>,
}

/// The connection flags of a command that talks to no server. Declared here, they take the
/// place of the global ones (clap copies a global flag only into commands without one of the
/// same name), so the command's help leaves them out, and giving one is an error, not a flag
/// silently ignored.
#[derive(Debug, Args)]
pub struct NoConnection {
    #[arg(long, hide = true, value_parser = no_server_here)]
    url: Option<String>,
    #[arg(long, hide = true, value_parser = no_server_here)]
    token: Option<String>,
    #[arg(long, hide = true, value_parser = no_server_here)]
    server: Option<String>,
}

fn no_server_here(_: &str) -> Result<String, String> {
    Err(
        "this command talks to no server: --url, --token and --server are for the commands \
         that do (give them before the command's name to set them for the CLI)"
            .into(),
    )
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTP API and job runners) on this machine.
    Serve(ServeArgs),
    /// Submit a job: `runway add -- CMD ARGS…` for the shell type, or `--type T --input JSON`.
    Add(AddArgs),
    /// List jobs, newest first.
    Ls(LsArgs),
    /// Show one job.
    Show(ShowArgs),
    /// Print a job's log.
    Logs(LogsArgs),
    /// Show a job's progress and log live until it ends; exit with its result.
    Follow(FollowArgs),
    /// Wait until jobs finish; exit 0 only if all succeeded.
    Wait(WaitArgs),
    /// Cancel jobs: queued ones at once, running ones are stopped.
    Cancel(IdsArgs),
    /// Run finished jobs again as new jobs; prints the new ids.
    Retry(IdsArgs),
    /// List a job's artifacts, or download one (`artifacts get ID NAME`).
    Artifacts(ArtifactsArgs),
    /// Delete finished jobs (a tree from its root) with their logs and artifacts.
    Rm(IdsArgs),
    /// List, pause or resume queues.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// List the declared job types.
    Types(OutputArgs),
    /// Copy the server's database to FILE, consistently, while it runs.
    Backup(BackupArgs),
    /// Save a server's URL and token to the credentials file and make it the default.
    Login(LoginArgs),
    /// Print a link that signs a browser in to the dashboard as you: once, within minutes.
    Dashboard,
    /// A live terminal dashboard: queues, jobs, a job's progress and log; keys to cancel,
    /// retry, pause and resume (`?` lists them).
    Top,
    /// List, show, fire, pause or resume the triggers of the server's config.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Add, list or remove users (admins only).
    #[command(subcommand)]
    User(UserCommand),
    /// Create, list or revoke API tokens: your own, or (an admin) anyone's.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run a command whenever files in a directory change, in the foreground, without a server.
    Watch(WatchArgs),
    /// Print the completion script for a shell: `runway completions bash > ~/.local/share/bash-completion/completions/runway`.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff): `runway man > ~/.local/share/man/man1/runway.1`.
    Man,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); without one the defaults apply.
    #[arg(long, env = "RUNWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7869]
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory [default: ./runway-data]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Keep the state in PostgreSQL (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE), shared
    /// by every server given the same database; also RUNWAY_DATABASE [default: SQLite in the
    /// data directory]
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Server log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// A file holding the first admin token to use instead of a generated one (only read at
    /// the first start); or give the token in RUNWAY_ADMIN_TOKEN.
    #[arg(long, env = "RUNWAY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub no_connection: NoConnection,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Job type; without it the command after `--` runs with the `shell` type.
    #[arg(long = "type", short = 't')]
    pub job_type: Option<String>,
    /// Input as JSON, or @FILE to read it from a file (@- for stdin).
    #[arg(long, short = 'i')]
    pub input: Option<String>,
    /// Queue, instead of the type's.
    #[arg(long, short = 'q')]
    pub queue: Option<String>,
    /// Higher runs first (-1000..=1000).
    #[arg(long, short = 'p', allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// Start no earlier than this instant (RFC 3339).
    #[arg(long, conflicts_with = "delay")]
    pub run_at: Option<String>,
    /// Start no earlier than this long from now ("30s", "5m").
    #[arg(long)]
    pub delay: Option<String>,
    /// Attempts before the job fails for good (1..=100).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Makes the submit safe to repeat: the same command with the same key within the
    /// server's idempotency window prints the first job instead of making a second. Not with
    /// --delay, whose start time differs at every run; give --run-at a fixed instant instead.
    #[arg(long, conflicts_with = "delay")]
    pub idempotency_key: Option<String>,
    /// A child made with the job, as a full request: `{"type": T, "input": …, "key": K,
    /// "children": […]}`, or @FILE. Repeat for more children; the job then waits for them.
    #[arg(long = "child", value_name = "JSON")]
    pub children: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The command line for the shell type.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only these statuses (comma-separated).
    #[arg(long, short = 's')]
    pub status: Option<String>,
    /// Only these types (comma-separated).
    #[arg(long = "type", short = 't')]
    pub job_type: Option<String>,
    /// Only these queues (comma-separated).
    #[arg(long, short = 'q')]
    pub queue: Option<String>,
    /// Only jobs whose id is TEXT, or whose type or input contains it (any case).
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only the children of this job.
    #[arg(long, value_name = "ID", conflicts_with = "roots")]
    pub parent: Option<String>,
    /// Only jobs without a parent (the roots of their trees).
    #[arg(long)]
    pub roots: bool,
    /// Only the jobs that ran this job again (its retries).
    #[arg(long, value_name = "ID")]
    pub retry_of: Option<String>,
    /// Only jobs created at or after TIME: an RFC 3339 instant, or how long ago (`2h`, `7d`).
    #[arg(long, value_name = "TIME")]
    pub created_after: Option<String>,
    /// Only jobs created before TIME (as for --created-after).
    #[arg(long, value_name = "TIME")]
    pub created_before: Option<String>,
    /// Only jobs finished at or after TIME (as for --created-after).
    #[arg(long, value_name = "TIME")]
    pub finished_after: Option<String>,
    /// Only jobs finished before TIME (as for --created-after).
    #[arg(long, value_name = "TIME")]
    pub finished_before: Option<String>,
    /// Order by this, highest or latest first; jobs without it (not started, not finished)
    /// come last.
    #[arg(long, value_enum, default_value_t = SortField::Created)]
    pub sort: SortField,
    /// Lowest or earliest first instead.
    #[arg(long)]
    pub asc: bool,
    /// How many jobs (1..=1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Redraw the table as jobs change, until interrupted.
    #[arg(long, short = 'w', conflicts_with = "format")]
    pub watch: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `runway ls --sort` orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortField {
    Created,
    Started,
    Finished,
    Duration,
    Attempts,
}

impl SortField {
    pub fn wire(self) -> runway_api::JobSortField {
        match self {
            SortField::Created => runway_api::JobSortField::Created,
            SortField::Started => runway_api::JobSortField::Started,
            SortField::Finished => runway_api::JobSortField::Finished,
            SortField::Duration => runway_api::JobSortField::Duration,
            SortField::Attempts => runway_api::JobSortField::Attempts,
        }
    }
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub id: String,
    /// Also show the job's descendants as a tree (at most 10,000 of them).
    #[arg(long)]
    pub tree: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub id: String,
    /// Keep printing as the log is written, until the job ends.
    #[arg(long, short = 'f', conflicts_with = "format")]
    pub follow: bool,
    /// `-o json` prints `{"job_id", "data", "size", "complete"}` with the log unchanged.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct FollowArgs {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Give up after this long ("30s", "10m"); exits 7.
    #[arg(long)]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `runway watch DIR -- CMD ARGS…`: the state machine of a watch trigger, with the command as
/// its job.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The directory to watch, with every directory below it.
    pub dir: PathBuf,
    /// Only files whose name matches count ("*.org"); repeat for more [default: every file].
    #[arg(long = "pattern", value_name = "GLOB")]
    pub patterns: Vec<String>,
    /// Paths relative to DIR that never count ("archive/**"); repeat for more. Editor and sync
    /// noise and `.git` never count anyway.
    #[arg(long = "ignore", value_name = "GLOB")]
    pub ignore: Vec<String>,
    /// Quiet time after the last change before the command runs.
    #[arg(long, default_value = "1s")]
    pub debounce: String,
    /// Time after a run ends before the next may start.
    #[arg(long, default_value = "0s")]
    pub cooldown: String,
    /// Run the command once, now, and exit with its status.
    #[arg(long)]
    pub once: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub no_connection: NoConnection,
}

#[derive(Debug, Args)]
pub struct IdsArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ArtifactsArgs {
    #[command(subcommand)]
    pub get: Option<ArtifactsCommand>,
    /// The job whose artifacts to list.
    pub id: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Download one artifact.
    Get(ArtifactGetArgs),
}

#[derive(Debug, Args)]
pub struct ArtifactGetArgs {
    pub id: String,
    /// The artifact's name, as `runway artifacts ID` lists it.
    pub name: String,
    /// Where to write it: a file (not overwritten), or `-` for stdout [default: its name's
    /// last part, in the current directory]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub file: Option<String>,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Everything: every job, users, queues, triggers, metrics.
    Admin,
    /// Submit jobs, and see and act on its own jobs only.
    Member,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints its first token alone on stdout (shown only this once).
    Add {
        /// 1 to 64 lowercase letters, digits, `.`, `_` or `-`.
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List users.
    Ls(OutputArgs),
    /// Remove a user with its tokens; its jobs stay.
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it alone on stdout (shown only this once).
    Create {
        /// Whose token [default: yours]; only an admin names another user.
        #[arg(long)]
        user: Option<String>,
        /// How long it stays valid, e.g. 30d or 12h [default: until revoked].
        #[arg(long)]
        expires: Option<String>,
        /// What the token is for, to tell it apart in `runway token ls`.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens: yours, or (an admin) everyone's.
    Ls {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Revoke a token (its id from `runway token ls`); its browser sessions end too.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queues with their counts.
    Ls(OutputArgs),
    /// Stop starting jobs from a queue; running ones finish.
    Pause { name: String },
    /// Start jobs from a paused queue again.
    Resume { name: String },
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file to write (never over an existing one).
    pub file: PathBuf,
    /// The server's data directory [default: as `runway serve` finds it]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The server's configuration file, for its data directory.
    #[arg(long, env = "RUNWAY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub no_connection: NoConnection,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's URL, e.g. http://jobs.example.com:7869
    pub url: String,
    /// The name to save it under [default: its host and port]
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// List triggers with their state and next fire.
    Ls(OutputArgs),
    /// Show a trigger: its state, what changed, its next fire and newest jobs.
    Show {
        name: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Submit the trigger's job now; prints the job's id.
    Fire {
        name: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Stop the trigger from submitting jobs.
    Pause { name: String },
    /// Let a paused trigger submit jobs again.
    Resume { name: String },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
