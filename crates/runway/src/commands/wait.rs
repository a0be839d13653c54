use std::collections::{HashMap, HashSet};
use std::time::Duration;

use runway_api::{FeedMessage, JobResponse, TERMINAL_STATUSES};
use runway_client::{Client, UpdatesQuery};
use tokio::time::Instant;

use crate::cli::{Connection, Format, WaitArgs};
use crate::exit::{self, CliError};
use crate::output;

pub async fn run(connection: &Connection, args: WaitArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let deadline = match &args.timeout {
        Some(text) => {
            let limit = humantime::parse_duration(text).map_err(|error| {
                CliError::new(
                    exit::USAGE,
                    format!(
                        "--timeout `{text}` is not a duration ({error}); write e.g. 30s or 10m"
                    ),
                )
            })?;
            let deadline = tokio::time::Instant::now()
                .checked_add(limit)
                .ok_or_else(|| {
                    CliError::new(exit::USAGE, format!("--timeout `{text}` is too long"))
                })?;
            Some(deadline)
        }
        None => None,
    };
    let finished = wait_for(&client, &args.ids, deadline).await?;
    match args.output.format {
        Format::Json => output::print_json(&finished)?,
        Format::Table => {
            for job in &finished {
                let detail = job
                    .error
                    .as_deref()
                    .map(|error| format!(": {}", output::sanitize(error)))
                    .unwrap_or_default();
                output::print_line(&format!("{} {}{detail}", job.id, job.status))?;
            }
        }
    }
    let any = |status: &str| finished.iter().any(|job| job.status == status);
    Ok(if any("failed") {
        exit::FAILED
    } else if any("cancelled") {
        exit::CANCELLED
    } else {
        exit::OK
    })
}

/// Waits until every job of `ids` has ended, and returns them in order. Ends are heard on the
/// live feed (only terminal changes are sent), so `wait` returns as soon as the last job ends;
/// if the feed breaks, the jobs still running are polled instead.
async fn wait_for(
    client: &Client,
    ids: &[String],
    deadline: Option<Instant>,
) -> Result<Vec<JobResponse>, CliError> {
    // Opened before the jobs are read: an end between the two is then on the feed.
    let mut feed = client
        .updates(&UpdatesQuery {
            status: Some(TERMINAL_STATUSES.join(",")),
            ..Default::default()
        })
        .await
        .ok();
    let mut ended: HashMap<String, JobResponse> = HashMap::new();
    let mut pending: HashSet<String> = HashSet::new();
    for id in ids {
        let job = client.job(id).await?;
        if TERMINAL_STATUSES.contains(&job.status.as_str()) {
            ended.insert(id.clone(), job);
        } else {
            pending.insert(id.clone());
        }
    }
    while !pending.is_empty() {
        let Some(live) = feed.as_mut() else {
            poll(client, &mut pending, &mut ended, deadline).await?;
            break;
        };
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, live.next()).await {
                Ok(next) => next,
                Err(_) => return Err(timed_out(client, &pending).await),
            },
            None => live.next().await,
        };
        match next {
            Some(Ok(FeedMessage::Frame(frame))) => {
                for update in frame.jobs {
                    if pending.contains(&update.job_id) {
                        let job = client.job(&update.job_id).await?;
                        pending.remove(&job.id);
                        ended.insert(job.id.clone(), job);
                    }
                }
            }
            Some(Ok(_)) => {}
            // The server went away or closed the feed: fall back to asking.
            Some(Err(_)) | None => feed = None,
        }
    }
    if let Some(live) = feed {
        live.close().await;
    }
    Ok(ids.iter().filter_map(|id| ended.get(id).cloned()).collect())
}

/// Asks for each pending job until it ends, backing off to 250 ms between questions.
async fn poll(
    client: &Client,
    pending: &mut HashSet<String>,
    ended: &mut HashMap<String, JobResponse>,
    deadline: Option<Instant>,
) -> Result<(), CliError> {
    let mut pause = Duration::from_millis(10);
    while !pending.is_empty() {
        for id in pending.clone() {
            let job = client.job(&id).await?;
            if TERMINAL_STATUSES.contains(&job.status.as_str()) {
                pending.remove(&id);
                ended.insert(id, job);
            }
        }
        if pending.is_empty() {
            break;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(timed_out(client, pending).await);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
    Ok(())
}

/// The timeout's error, naming a job that has not ended and how it stands.
async fn timed_out(client: &Client, pending: &HashSet<String>) -> CliError {
    let mut ids: Vec<&String> = pending.iter().collect();
    ids.sort();
    let id = ids[0];
    let status = match client.job(id).await {
        Ok(job) => job.status,
        Err(_) => "unknown".into(),
    };
    CliError::new(
        exit::TIMED_OUT,
        format!("timed out waiting for job {id}, which is {status}"),
    )
}
