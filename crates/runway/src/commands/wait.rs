use std::time::Duration;

use runway_api::{JobResponse, TERMINAL_STATUSES};

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
    let mut finished: Vec<JobResponse> = Vec::with_capacity(args.ids.len());
    for id in &args.ids {
        let mut pause = Duration::from_millis(10);
        loop {
            let job = client.job(id).await?;
            if TERMINAL_STATUSES.contains(&job.status.as_str()) {
                finished.push(job);
                break;
            }
            if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
                return Err(CliError::new(
                    exit::TIMED_OUT,
                    format!("timed out waiting for job {id}, which is {}", job.status),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
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
