//! The command runner: one attempt of a command job as a real child process.
//!
//! The job's input reaches the process as JSON on stdin and in the file named by
//! `RUNWAY_INPUT`, never through a shell or argv (the `shell` type alone runs its line with
//! `sh -c`, by design). The child leads its own process group; timeout and cancel end the whole
//! group, SIGTERM then SIGKILL. Its pid is stored with the attempt, so a server restarted after
//! a crash ends what the dead one left running (`stop::end_orphaned_attempt`).

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::config::JobRun;
use crate::job::Job;
use crate::log_text::LogStream;
use crate::protocol::{Line, parse_line};
use crate::report::Reporter;
use crate::spawn::Spawner;
use crate::stop::{StopReason, StopSignal};

/// Longest log line kept whole; longer lines are split.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest `::runway` message line: a spawn of thousands of children is one line.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// How one attempt ended, before retry policy is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    Succeeded {
        output: Option<Value>,
    },
    Failed {
        error: String,
        output: Option<Value>,
    },
    Stopped(StopReason),
}

/// Everything the runner needs for one attempt of a command job.
pub struct CommandRun {
    pub job: Job,
    pub run: JobRun,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    /// The server's data directory (`RUNWAY_DATA_DIR`): with the job id and the run, what
    /// tells this start's processes from any other's.
    pub data_dir: String,
    /// Where to write the input file for this attempt (`RUNWAY_INPUT`); removed afterwards.
    /// Its directory exists.
    pub input_path: PathBuf,
    pub stop: Arc<StopSignal>,
    pub reporter: Reporter,
    /// Variables of this attempt besides the job's id, attempt and input: its phase, its
    /// children's manifest, its job token.
    pub env: Vec<(String, String)>,
    /// Creates the children a `::runway {"spawn": …}` line asks for.
    pub spawner: Spawner,
}

/// An input up to this size is written in place; a larger one on the blocking pool. A small
/// write to the page cache costs microseconds, a trip to the blocking pool about a millisecond
/// when attempts keep the cores busy.
const INPUT_WRITTEN_IN_PLACE: usize = 64 * 1024;

pub async fn run_command(run: CommandRun) -> RunResult {
    let result = run_in(&run).await;
    // One unlink, in place (see `INPUT_WRITTEN_IN_PLACE`).
    if let Err(error) = std::fs::remove_file(&run.input_path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(job = %run.job.id, %error, "could not remove the attempt's input file");
    }
    result
}

async fn run_in(run: &CommandRun) -> RunResult {
    let CommandRun {
        job,
        run: job_run,
        timeout,
        kill_grace,
        data_dir,
        input_path,
        stop,
        reporter,
        env,
        spawner,
    } = run;
    let (timeout, kill_grace) = (*timeout, *kill_grace);
    let input_json = serde_json::to_vec(&job.input).expect("a JSON value always serializes");
    let written = if input_json.len() <= INPUT_WRITTEN_IN_PLACE {
        std::fs::write(input_path, &input_json)
    } else {
        tokio::fs::write(input_path, &input_json).await
    };
    if let Err(error) = written {
        return failed(format!("cannot write the input file: {error}"));
    }

    let mut command = match &job_run {
        JobRun::Command { argv, cwd, env } => {
            let mut command = Command::new(&argv[0]);
            command.args(&argv[1..]);
            command.envs(env);
            if let Some(cwd) = cwd {
                // Said here, or the spawn's "no such file" would blame the program.
                if !cwd.is_dir() {
                    return failed(format!(
                        "the working directory {} (the type's `cwd`) does not exist or is not a directory",
                        cwd.display()
                    ));
                }
                command.current_dir(cwd);
            }
            command
        }
        JobRun::Shell => {
            let Some(line) = job.input.get("command").and_then(Value::as_str) else {
                return failed("the shell type needs input {\"command\": \"LINE\"}".into());
            };
            let mut command = Command::new("sh");
            command.arg("-c").arg(line);
            command
        }
        JobRun::Handler { name } => {
            return failed(format!("`{name}` is a handler, not a command"));
        }
    };
    command
        .env("RUNWAY_JOB_ID", job.id.to_string())
        .env("RUNWAY_ATTEMPT", job.attempt.to_string())
        .env("RUNWAY_RUN", job.runs.to_string())
        .env("RUNWAY_DATA_DIR", data_dir)
        .env("RUNWAY_INPUT", input_path)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let program = match &job_run {
                JobRun::Command { argv, .. } => argv[0].clone(),
                _ => "sh".to_string(),
            };
            return failed(format!("cannot start `{program}`: {error}"));
        }
    };
    let group = child.id().map(|pid| Pid::from_raw(pid as i32));
    if let Some(pid) = child.id() {
        reporter.pid(pid);
    }

    let stdin = child.stdin.take();
    let mut stdin_task = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            // A command that does not read its input closes the pipe: not an error.
            let _ = stdin.write_all(&input_json).await;
            let _ = stdin.shutdown().await;
        }
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let output = Arc::new(Mutex::new(None));
    let refused_spawn = Arc::new(Mutex::new(None));
    let mut stdout_task = tokio::spawn(read_stdout(
        BufReader::new(stdout),
        reporter.clone(),
        Arc::clone(&output),
        (spawner.clone(), Arc::clone(&refused_spawn)),
    ));
    let mut stderr_task = tokio::spawn(read_stderr(BufReader::new(stderr), reporter.clone()));

    let ended = wait_or_stop(&mut child, group, timeout, kill_grace, stop).await;
    // No orphans: whatever the command left behind in its group ends with it, which also
    // closes the pipes the readers wait on.
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGKILL);
    }
    // A process that left the group (setsid) may still hold the pipes open: read what is
    // there for a grace period, then stop listening rather than hang the attempt.
    let drained = tokio::time::timeout(kill_grace, async {
        let _ = (&mut stdin_task).await;
        let _ = (&mut stdout_task).await;
        let _ = (&mut stderr_task).await;
    })
    .await;
    if drained.is_err() {
        stdin_task.abort();
        stdout_task.abort();
        stderr_task.abort();
        reporter
            .note(
                "[runway: a process the command started outside its group still holds its output open; stopped reading]",
            )
            .await;
    }
    let output = output.lock().expect("output lock is never poisoned").take();
    let refused_spawn = refused_spawn
        .lock()
        .expect("spawn lock is never poisoned")
        .take();

    match ended {
        // The command may not have noticed that its children were not made: it fails.
        Ended::Exited(status) if status.success() && refused_spawn.is_some() => RunResult::Failed {
            error: format!("a spawn was refused: {}", refused_spawn.unwrap_or_default()),
            output,
        },
        Ended::Exited(status) if status.success() => RunResult::Succeeded { output },
        Ended::Exited(status) => RunResult::Failed {
            error: describe_exit(status),
            output,
        },
        Ended::TimedOut(limit) => RunResult::Failed {
            error: timed_out(limit),
            output,
        },
        Ended::Stopped(reason) => RunResult::Stopped(reason),
        Ended::WaitFailed(error) => failed(format!("lost track of the process: {error}")),
    }
}

/// Completes when an attempt's `timeout` has passed (never, without one), with the limit.
pub(crate) async fn time_limit(timeout: Option<Duration>) -> Duration {
    match timeout {
        Some(limit) => {
            tokio::time::sleep(limit).await;
            limit
        }
        None => std::future::pending().await,
    }
}

/// The error of an attempt stopped by its type's timeout, commands and handlers alike.
pub(crate) fn timed_out(limit: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(limit))
}

fn failed(error: String) -> RunResult {
    RunResult::Failed {
        error,
        output: None,
    }
}

enum Ended {
    Exited(ExitStatus),
    TimedOut(Duration),
    Stopped(StopReason),
    WaitFailed(std::io::Error),
}

async fn wait_or_stop(
    child: &mut Child,
    group: Option<Pid>,
    timeout: Option<Duration>,
    kill_grace: Duration,
    stop: &StopSignal,
) -> Ended {
    let why = tokio::select! {
        status = child.wait() => {
            return match status {
                Ok(status) => Ended::Exited(status),
                Err(error) => Ended::WaitFailed(error),
            };
        }
        limit = time_limit(timeout) => Ended::TimedOut(limit),
        reason = stop.stopped() => Ended::Stopped(reason),
    };
    terminate_group(child, group, kill_grace).await;
    why
}

/// SIGTERM to the group, then SIGKILL once the grace period is over.
async fn terminate_group(child: &mut Child, group: Option<Pid>, kill_grace: Duration) {
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGTERM);
    }
    if tokio::time::timeout(kill_grace, child.wait())
        .await
        .is_err()
    {
        if let Some(group) = group {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = child.wait().await;
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status
        .signal()
        .and_then(|number| Signal::try_from(number).ok())
    {
        Some(signal) => format!("killed by signal {}", signal.as_str()),
        None => format!("ended abnormally ({status})"),
    }
}

/// Reads the command's stdout: log lines, and messages to runway. A spawn is made before the
/// next line is read, so the children exist by the time the command goes on; a refused spawn
/// is logged and remembered in `refused`, and fails the attempt.
async fn read_stdout(
    mut reader: impl AsyncBufRead + Unpin,
    reporter: Reporter,
    output: Arc<Mutex<Option<Value>>>,
    (spawner, refused): (Spawner, Arc<Mutex<Option<String>>>),
) {
    let mut buffer = Vec::new();
    while let Some(too_long) = read_stdout_line(&mut reader, &mut buffer).await {
        if too_long {
            let start = String::from_utf8_lossy(&buffer[..200]).into_owned();
            reporter
                .log_line(&format!("{start}…"), LogStream::Stdout)
                .await;
            reporter
                .note(&format!(
                    "[runway: ignored a ::runway line longer than {} MiB; split it into several lines]",
                    MAX_MESSAGE_BYTES / (1024 * 1024)
                ))
                .await;
            continue;
        }
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end_matches(['\n', '\r']);
        match parse_line(line) {
            Line::Text => reporter.log_line(line, LogStream::Stdout).await,
            Line::Message(message) => {
                if let Some(fraction) = message.progress {
                    reporter.progress(crate::job::Progress {
                        fraction,
                        message: message.message.clone(),
                    });
                } else if let Some(text) = &message.message {
                    reporter.log_line(text, LogStream::Stdout).await;
                }
                if message.output.is_some() {
                    *output.lock().expect("output lock is never poisoned") = message.output;
                }
                if let Some(requests) = message.spawn {
                    let note = match spawner.spawn(requests).await {
                        Ok(children) => spawned_note(&children),
                        Err(error) => {
                            let note = format!("[runway: spawn refused: {error}]");
                            refused
                                .lock()
                                .expect("spawn lock is never poisoned")
                                .get_or_insert(error.to_string());
                            note
                        }
                    };
                    reporter.note(&note).await;
                }
            }
            Line::Malformed(reason) => {
                reporter.log_line(line, LogStream::Stdout).await;
                reporter
                    .note(&format!("[runway: ignored the line above: {reason}]"))
                    .await;
            }
        }
    }
}

/// The log line that tells what a spawn made.
fn spawned_note(children: &[crate::store::Inserted]) -> String {
    let created = children.iter().filter(|child| child.created).count();
    let first = children.first().map(|child| child.job.id.to_string());
    let last = children.last().map(|child| child.job.id.to_string());
    let existed = children.len() - created;
    let ids = match (first, last) {
        (Some(first), Some(last)) if first != last => format!("jobs {first}…{last}"),
        (Some(first), _) => format!("job {first}"),
        _ => "no job".into(),
    };
    if existed > 0 {
        format!("[runway: spawned {ids}: {created} new, {existed} already made under their keys]")
    } else {
        format!("[runway: spawned {ids}]")
    }
}

async fn read_stderr(mut reader: impl AsyncBufRead + Unpin, reporter: Reporter) {
    let mut buffer = Vec::new();
    while read_line_bounded(&mut reader, &mut buffer, MAX_LINE_BYTES).await {
        let line = String::from_utf8_lossy(&buffer);
        reporter
            .log_line(line.trim_end_matches(['\n', '\r']), LogStream::Stderr)
            .await;
    }
}

/// Reads one line of stdout into `buffer`: a log line is cut at [`MAX_LINE_BYTES`], a `::runway`
/// line may run to [`MAX_MESSAGE_BYTES`]. `None` at the end; `Some(true)` for a message line
/// past its bound, whose rest is skipped (the buffer keeps its start).
async fn read_stdout_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    buffer: &mut Vec<u8>,
) -> Option<bool> {
    if !read_line_bounded(reader, buffer, MAX_LINE_BYTES).await {
        return None;
    }
    let whole = buffer.ends_with(b"\n") || buffer.len() < MAX_LINE_BYTES;
    if whole || !buffer.starts_with(crate::protocol::PREFIX.as_bytes()) {
        return Some(false);
    }
    let mut more = Vec::new();
    while buffer.len() < MAX_MESSAGE_BYTES {
        if !read_line_bounded(reader, &mut more, MAX_MESSAGE_BYTES - buffer.len()).await {
            return Some(false);
        }
        buffer.extend_from_slice(&more);
        if buffer.ends_with(b"\n") {
            return Some(false);
        }
    }
    // Past the bound: the rest of the line goes unread into nothing.
    while read_line_bounded(reader, &mut more, MAX_LINE_BYTES).await {
        if more.ends_with(b"\n") {
            break;
        }
    }
    Some(true)
}

/// Reads one line (or the first `max` bytes of a longer one) into `buffer`. False at the end.
pub async fn read_line_bounded(
    reader: &mut (impl AsyncBufRead + Unpin),
    buffer: &mut Vec<u8>,
    max: usize,
) -> bool {
    buffer.clear();
    loop {
        let available = match reader.fill_buf().await {
            Ok(available) => available,
            Err(_) => return !buffer.is_empty(),
        };
        if available.is_empty() {
            return !buffer.is_empty();
        }
        let room = max - buffer.len();
        let (take, done) = match available.iter().position(|&byte| byte == b'\n') {
            Some(newline) if newline < room => (newline + 1, true),
            _ if available.len() >= room => (room, true),
            _ => (available.len(), false),
        };
        buffer.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut buffer = Vec::new();
        let mut lines = Vec::new();
        while read_line_bounded(&mut reader, &mut buffer, max).await {
            lines.push(String::from_utf8_lossy(&buffer).into_owned());
        }
        lines
    }

    #[tokio::test]
    async fn lines_are_split_at_newlines_and_at_the_bound() {
        assert_eq!(lines(b"ab\ncd\n", 100).await, vec!["ab\n", "cd\n"]);
        assert_eq!(lines(b"ab\ncd", 100).await, vec!["ab\n", "cd"]);
        assert_eq!(
            lines(b"abcdefgh\nx\n", 3).await,
            vec!["abc", "def", "gh\n", "x\n"]
        );
        assert!(lines(b"", 3).await.is_empty());
    }

    #[tokio::test]
    async fn a_message_line_may_be_longer_than_a_log_line() {
        let long_message = format!(
            "::runway {{\"output\": \"{}\"}}\nnext\n",
            "x".repeat(MAX_LINE_BYTES * 3)
        );
        let long_text = format!("{}\n", "y".repeat(MAX_LINE_BYTES + 10));
        let input = format!("{long_message}{long_text}");
        let mut reader = BufReader::with_capacity(1024, input.as_bytes());
        let mut buffer = Vec::new();
        assert_eq!(
            read_stdout_line(&mut reader, &mut buffer).await,
            Some(false)
        );
        assert_eq!(
            buffer.len(),
            long_message.len() - "next\n".len(),
            "the message whole"
        );
        assert_eq!(
            read_stdout_line(&mut reader, &mut buffer).await,
            Some(false)
        );
        assert_eq!(buffer, b"next\n");
        assert_eq!(
            read_stdout_line(&mut reader, &mut buffer).await,
            Some(false)
        );
        assert_eq!(
            buffer.len(),
            MAX_LINE_BYTES,
            "a log line is cut at its bound"
        );
        assert_eq!(
            read_stdout_line(&mut reader, &mut buffer).await,
            Some(false)
        );
        assert_eq!(buffer, b"yyyyyyyyyy\n");
        assert_eq!(read_stdout_line(&mut reader, &mut buffer).await, None);
    }

    #[tokio::test]
    async fn a_message_line_past_its_bound_is_skipped_to_its_end() {
        let input = format!("::runway {}\nafter\n", "z".repeat(MAX_MESSAGE_BYTES + 5));
        let mut reader = BufReader::new(input.as_bytes());
        let mut buffer = Vec::new();
        assert_eq!(read_stdout_line(&mut reader, &mut buffer).await, Some(true));
        assert_eq!(
            read_stdout_line(&mut reader, &mut buffer).await,
            Some(false)
        );
        assert_eq!(buffer, b"after\n");
    }
}
