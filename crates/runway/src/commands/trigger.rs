use comfy_table::Cell;
use runway_api::triggers::{TriggerKind, TriggerResponse, TriggerState};

use crate::cli::{Connection, Format, TriggerCommand};
use crate::exit::{self, CliError};
use crate::output;

pub async fn run(connection: &Connection, command: TriggerCommand) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    match command {
        TriggerCommand::Ls(args) => {
            let triggers = client.triggers().await?.triggers;
            match args.format {
                Format::Json => output::print_json(&triggers)?,
                Format::Table => {
                    let mut table =
                        output::table(&["TRIGGER", "KIND", "TYPE", "STATE", "NEXT", "LAST JOB"]);
                    for trigger in &triggers {
                        table.add_row(vec![
                            Cell::new(&trigger.name),
                            Cell::new(kind(trigger.kind)),
                            Cell::new(&trigger.job_type),
                            Cell::new(state(trigger)),
                            Cell::new(trigger.next_fire_at.map(output::when).unwrap_or_default()),
                            Cell::new(trigger.last_job.clone().unwrap_or_default()),
                        ]);
                    }
                    output::print_table(&table)?;
                }
            }
        }
        TriggerCommand::Show { name, output } => {
            let trigger = client.trigger(&name).await?;
            match output.format {
                Format::Json => output::print_json(&trigger)?,
                Format::Table => print_trigger(&trigger)?,
            }
        }
        TriggerCommand::Fire { name, output } => {
            let fired = client.fire_trigger(&name).await?;
            match (output.format, &fired.job) {
                (Format::Json, _) => output::print_json(&fired)?,
                (Format::Table, Some(job)) => output::print_line(job)?,
                (Format::Table, None) => eprintln!(
                    "trigger {name} is {}: one more run follows",
                    state(&fired.trigger)
                ),
            }
        }
        TriggerCommand::Pause { name } => {
            client.pause_trigger(&name).await?;
            output::print_line(&format!("trigger {name} paused"))?;
        }
        TriggerCommand::Resume { name } => {
            client.resume_trigger(&name).await?;
            output::print_line(&format!("trigger {name} resumed"))?;
        }
    }
    Ok(exit::OK)
}

fn kind(kind: TriggerKind) -> &'static str {
    match kind {
        TriggerKind::Watch => "watch",
        TriggerKind::Schedule => "schedule",
        TriggerKind::Webhook => "webhook",
    }
}

/// The state as one word or two: `running, stoked`, `paused`.
fn state(trigger: &TriggerResponse) -> String {
    let phase = match trigger.state {
        TriggerState::Idle => "idle",
        TriggerState::Waiting => "waiting",
        TriggerState::Running => "running",
        TriggerState::Cooldown => "cooldown",
    };
    let mut words = vec![phase];
    if trigger.stoked {
        words.push("stoked");
    }
    if trigger.paused {
        words.push("paused");
    }
    words.join(", ")
}

fn print_trigger(trigger: &TriggerResponse) -> std::io::Result<()> {
    let mut rows: Vec<(&str, String)> = vec![
        ("trigger", trigger.name.clone()),
        ("kind", kind(trigger.kind).into()),
        ("type", trigger.job_type.clone()),
        ("state", state(trigger)),
    ];
    if let Some(watch) = &trigger.watch {
        rows.push(("watch", output::sanitize(&watch.root)));
        if !watch.patterns.is_empty() {
            rows.push(("patterns", watch.patterns.join(" ")));
        }
        if !watch.ignore.is_empty() {
            rows.push(("ignore", watch.ignore.join(" ")));
        }
        rows.push((
            "debounce",
            format!(
                "{} ms, cooldown {} ms",
                watch.debounce_ms, watch.cooldown_ms
            ),
        ));
    }
    if let Some(schedule) = &trigger.schedule {
        rows.push(("cron", format!("{} ({})", schedule.cron, schedule.timezone)));
    }
    if let Some(webhook) = &trigger.webhook {
        rows.push(("url", format!("POST {}", webhook.url_path)));
    }
    if trigger.pending_everything {
        rows.push(("pending", "everything (a full run)".into()));
    } else if trigger.pending_count > 0 {
        let mut pending = output::sanitize(&trigger.pending_paths.join("\n"));
        let shown = trigger.pending_paths.len() as u64;
        if trigger.pending_count > shown {
            pending.push_str(&format!("\n… and {} more", trigger.pending_count - shown));
        }
        rows.push(("pending", pending));
    }
    if let Some(at) = trigger.last_change_at {
        rows.push(("changed", output::when(at)));
    }
    if let Some(at) = trigger.next_fire_at {
        rows.push(("next", output::when(at)));
    }
    if let Some(job) = &trigger.running_job {
        rows.push(("running", job.clone()));
    }
    if let Some(at) = trigger.last_fire_at {
        let job = trigger.last_job.clone().unwrap_or_default();
        rows.push(("last fire", format!("{} {job}", output::when(at))));
    }
    if let Some(problem) = &trigger.problem {
        rows.push(("problem", output::sanitize(problem)));
    }
    if !trigger.recent_jobs.is_empty() {
        let jobs = trigger
            .recent_jobs
            .iter()
            .map(|job| format!("{} {} {}", job.id, job.status, output::when(job.created_at)))
            .collect::<Vec<_>>()
            .join("\n");
        rows.push(("jobs", jobs));
    }
    output::print_fields(&rows)
}
