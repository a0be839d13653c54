//! `runway follow ID` and `runway logs -f ID`: the log as it is written (and, for `follow`, a
//! progress bar on stderr) until the job ends, over the live feed.
//!
//! The feed is opened before the stored log is read, and every log message carries its byte
//! offset, so the seam between the two is exact: nothing is printed twice or skipped.

use std::io::Write;

use indicatif::{ProgressBar, ProgressStyle};
use runway_api::{FeedMessage, JobResponse, TERMINAL_STATUSES};
use runway_client::{Client, UpdatesQuery};

use crate::exit::{self, CliError};
use crate::output;

/// Prints the log of job `id` until it ends; returns the job as it ended.
pub async fn follow_log(
    client: &Client,
    id: &str,
    progress: bool,
) -> Result<JobResponse, CliError> {
    let mut feed = client
        .updates(&UpdatesQuery {
            job: Some(id.to_string()),
            logs: Some(true),
            ..Default::default()
        })
        .await?;
    let bar = progress.then(|| {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("{spinner} job {prefix} [{bar:30}] {percent:>3}% {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(id.to_string());
        bar
    });
    let mut job = client.job(id).await?;
    let mut printed = 0u64;
    catch_up(client, id, &mut printed, bar.as_ref()).await?;
    while !TERMINAL_STATUSES.contains(&job.status.as_str()) {
        show_progress(bar.as_ref(), &job);
        let Some(message) = feed.next().await else {
            return Err(CliError::new(
                exit::UNREACHABLE,
                "the server closed the live feed",
            ));
        };
        let FeedMessage::Frame(frame) = message? else {
            // follow starts live (no `since`), so it never needs a resync.
            continue;
        };
        for chunk in frame.logs {
            let end = chunk.offset + chunk.data.len() as u64;
            if chunk.offset > printed {
                catch_up(client, id, &mut printed, bar.as_ref()).await?;
            } else if end > printed {
                let skip = (printed - chunk.offset) as usize;
                let text = chunk.data.get(skip..).unwrap_or_default();
                print_log(text, bar.as_ref())?;
                printed = end;
            }
        }
        for update in frame.jobs {
            job.status = update.status;
            job.progress = update.progress;
            job.attempt = update.attempt;
            job.error = update.error;
            job.children = update.children;
        }
    }
    // The outcome is committed after the last log line: read whatever is left.
    catch_up(client, id, &mut printed, bar.as_ref()).await?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    feed.close().await;
    client.job(id).await.map_err(CliError::from)
}

fn show_progress(bar: Option<&ProgressBar>, job: &JobResponse) {
    if let Some(bar) = bar {
        let fraction = job
            .progress
            .as_ref()
            .map_or(0.0, |progress| progress.fraction);
        bar.set_position((fraction * 1000.0) as u64);
        let message = job
            .progress
            .as_ref()
            .and_then(|progress| progress.message.as_deref())
            .map(output::sanitize)
            .unwrap_or_default();
        bar.set_message(format!("{}{} {message}", job.status, children(job)));
        bar.tick();
    }
}

/// A parent's children, done of total (` · children 12/40`); empty without any. A waiting
/// parent's progress is already that share.
fn children(job: &JobResponse) -> String {
    let counts = job.children;
    if counts.total == 0 {
        return String::new();
    }
    let mut text = format!(
        " · children {}/{}",
        counts.total - counts.unfinished,
        counts.total
    );
    let unsuccessful = counts.failed + counts.cancelled;
    if unsuccessful > 0 {
        text.push_str(&format!(", {unsuccessful} did not succeed"));
    }
    text
}

fn print_log(text: &str, bar: Option<&ProgressBar>) -> Result<(), CliError> {
    let text = output::sanitize(text);
    let write = || -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    };
    match bar {
        Some(bar) => bar.suspend(write)?,
        None => write()?,
    }
    Ok(())
}

/// Prints the stored log from `printed` to its current end.
async fn catch_up(
    client: &Client,
    id: &str,
    printed: &mut u64,
    bar: Option<&ProgressBar>,
) -> Result<(), CliError> {
    loop {
        let chunk = client.log(id, *printed).await?;
        if chunk.data.is_empty() {
            return Ok(());
        }
        print_log(&chunk.data, bar)?;
        *printed = chunk.next_offset;
    }
}

pub async fn follow(client: &Client, id: &str) -> Result<u8, CliError> {
    let job = follow_log(client, id, true).await?;
    let detail = job
        .error
        .as_deref()
        .map(|error| format!(": {}", output::sanitize(error)))
        .unwrap_or_default();
    eprintln!(
        "runway: job {} {}{}{detail}",
        job.id,
        job.status,
        children(&job)
    );
    Ok(match job.status.as_str() {
        "succeeded" => exit::OK,
        "cancelled" => exit::CANCELLED,
        _ => exit::FAILED,
    })
}
