//! `runway watch DIR -- CMD ARGS…`: a watch trigger in the foreground, without a server. The
//! same state machine as the server's watch triggers (`watch_state`) decides when the command
//! runs; this file only feeds it changes, time and the command's end, prints each transition
//! on stderr, and runs the command as a job's would run: its input (the changed paths) on stdin
//! and in the file `RUNWAY_INPUT` names, in a process group of its own that Ctrl-C or SIGTERM
//! ends with it.

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use runway_core::watch_filter::WatchFilter;
use runway_core::watch_state::{Changed, Effect, Event, WatchState};
use runway_core::watcher;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::WatchArgs;
use crate::exit::{self, CliError};

/// How long a command may take to end after SIGTERM before it is killed.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// The name the standalone watch gives itself in its runs' input.
const TRIGGER: &str = "watch";

pub async fn run(args: WatchArgs) -> Result<u8, CliError> {
    let debounce = duration("--debounce", &args.debounce)?;
    let cooldown = duration("--cooldown", &args.cooldown)?;
    if !args.dir.is_dir() {
        return Err(CliError::new(
            exit::USAGE,
            format!(
                "`{}` is not a directory; give the directory to watch",
                args.dir.display()
            ),
        ));
    }
    let filter = WatchFilter::new(&args.patterns, &args.ignore)
        .map_err(|error| CliError::new(exit::USAGE, format!("--pattern or --ignore: {error}")))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    // CMD leads a group of its own, so a closed terminal would not reach it: end it here.
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;

    if args.once {
        let mut running = Run::start(&args.command, json!({"trigger": TRIGGER, "paths": null}))?;
        tokio::select! {
            status = running.child.wait() => return Ok(exit_code(status.ok())),
            _ = interrupt.recv() => return Ok(running.end(Signal::SIGINT).await),
            _ = terminate.recv() => return Ok(running.end(Signal::SIGTERM).await),
            _ = hangup.recv() => return Ok(running.end(Signal::SIGHUP).await),
        }
    }

    let (_watch, mut changes) = watcher::watch(&args.dir, filter)
        .map_err(|error| CliError::new(exit::FAILED, error.to_string()))?;
    say(&format!("watching {} (idle)", args.dir.display()));
    let mut state = WatchState::new(debounce, cooldown);
    let mut running: Option<Run> = None;
    loop {
        let deadline = state.deadline().map(|at| {
            let wait = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::Instant::now() + wait
        });
        let event = tokio::select! {
            change = changes.recv() => match change {
                Some(change) => Event::Changed(change),
                None => {
                    if let Some(running) = running.take() {
                        running.end(Signal::SIGTERM).await;
                    }
                    return Err(CliError::new(exit::FAILED, "the watch of the directory ended"));
                }
            },
            () = sleep_until(deadline) => Event::Tick,
            status = wait(&mut running) => {
                if let Some(run) = running.take() {
                    run.end_group();
                }
                say(&format!("the command {}", ended(status)));
                Event::JobEnded
            }
            _ = interrupt.recv() => return Ok(stop(running, Signal::SIGINT).await),
            _ = terminate.recv() => return Ok(stop(running, Signal::SIGTERM).await),
            _ = hangup.recv() => return Ok(stop(running, Signal::SIGHUP).await),
        };
        let before = state.phase.name();
        let (next, effects) = state.step(event, chrono::Utc::now());
        state = next;
        let mut ended_at_once = false;
        for Effect::Submit(changed) in effects {
            let input = changed.input(TRIGGER);
            say(&format!(
                "running {} ({})",
                args.command.join(" "),
                describe(&changed)
            ));
            match Run::start(&args.command, input) {
                Ok(run) => running = Some(run),
                // A run that cannot start (the program is missing for now) is a failed run:
                // the watch goes on, and the next change tries again.
                Err(error) => {
                    say(&error.message);
                    ended_at_once = true;
                }
            }
        }
        if ended_at_once {
            let (next, _) = state.step(Event::JobEnded, chrono::Utc::now());
            state = next;
        }
        let after = state.phase.name();
        if after != before && after != "running" {
            say(&transition(&state));
        }
    }
}

fn describe(changed: &Changed) -> String {
    match changed {
        Changed::Paths(paths) if paths.len() == 1 => format!("{} changed", first(paths)),
        Changed::Paths(paths) => format!("{} and {} more changed", first(paths), paths.len() - 1),
        Changed::Everything | Changed::Nothing => "too many changes to list".into(),
    }
}

fn first(paths: &std::collections::BTreeSet<String>) -> &str {
    paths.iter().next().map_or("", String::as_str)
}

/// A transition's line: the state it reached, with what it waits for.
fn transition(state: &WatchState) -> String {
    use runway_core::watch_state::Phase;
    match &state.phase {
        Phase::Idle => "idle".into(),
        Phase::Waiting { changed, .. } => format!(
            "waiting: {}; runs after {} without changes",
            describe(changed),
            humantime::format_duration(state.debounce)
        ),
        Phase::Running { .. } => "running".into(),
        Phase::Cooldown { stoked, .. } => {
            let then = if *stoked == Changed::Nothing {
                "then idle".to_string()
            } else {
                format!("then runs again: {}", describe(stoked))
            };
            format!(
                "cooldown for {}, {then}",
                humantime::format_duration(state.cooldown)
            )
        }
    }
}

/// One run of the command: its process, leading a group of its own, and its input file.
struct Run {
    child: Child,
    group: Option<Pid>,
    _input: tempfile::NamedTempFile,
}

impl Run {
    fn start(command: &[String], input: Value) -> Result<Run, CliError> {
        let text = input.to_string();
        let mut file = tempfile::Builder::new()
            .prefix("runway-watch-input-")
            .suffix(".json")
            .tempfile()
            .map_err(|error| {
                CliError::new(
                    exit::FAILED,
                    format!("cannot write the input file: {error}"),
                )
            })?;
        file.write_all(text.as_bytes()).map_err(|error| {
            CliError::new(
                exit::FAILED,
                format!("cannot write the input file: {error}"),
            )
        })?;
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .env("RUNWAY_INPUT", file.path())
            .stdin(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                CliError::new(
                    exit::FAILED,
                    format!("cannot start `{}`: {error}", command[0]),
                )
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            tokio::spawn(async move {
                // A command that does not read its input closes the pipe: not an error.
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let group = child.id().map(|pid| Pid::from_raw(pid as i32));
        Ok(Run {
            child,
            group,
            _input: file,
        })
    }

    /// Ends the command's whole group (SIGTERM, then SIGKILL after the grace) because
    /// `runway watch` got `signal`; returns the exit code that says so, 128 + the signal.
    async fn end(mut self, signal: Signal) -> u8 {
        if let Some(group) = self.group {
            let _ = killpg(group, Signal::SIGTERM);
            if tokio::time::timeout(KILL_GRACE, self.child.wait())
                .await
                .is_err()
            {
                let _ = killpg(group, Signal::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
        self.end_group();
        128 + signal as u8
    }

    /// No orphans: what the command left running in its group ends with its run, as a job's
    /// does.
    fn end_group(self) {
        if let Some(group) = self.group {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

async fn stop(running: Option<Run>, signal: Signal) -> u8 {
    say(&format!("stopping on {signal}"));
    match running {
        Some(running) => running.end(signal).await,
        None => 128 + signal as u8,
    }
}

async fn wait(running: &mut Option<Run>) -> Option<ExitStatus> {
    match running {
        Some(run) => run.child.wait().await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn ended(status: Option<ExitStatus>) -> String {
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was ended by signal {signal}"),
            (None, None) => "ended".into(),
        },
        None => "could not be waited for".into(),
    }
}

/// The command's own exit code, or 128 + the signal that ended it, as a shell reports it.
fn exit_code(status: Option<ExitStatus>) -> u8 {
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => code.clamp(0, 255) as u8,
            (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
            (None, None) => exit::FAILED,
        },
        None => exit::FAILED,
    }
}

fn duration(flag: &str, text: &str) -> Result<Duration, CliError> {
    humantime::parse_duration(text).map_err(|error| {
        CliError::new(
            exit::USAGE,
            format!("{flag} `{text}` is not a duration ({error}); write e.g. 500ms, 5s or 3m"),
        )
    })
}

fn signal_error(error: std::io::Error) -> CliError {
    CliError::new(exit::FAILED, format!("cannot listen for signals: {error}"))
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "runway watch: {line}");
}
