//! A schedule's driver: sleeps until the next fire of its cron expression, records the fire,
//! then submits its job under an idempotency key made of the trigger and the fire's time. A
//! restart after the record and before the job's record finds the job (the trigger's newest,
//! made at or after the fire), or submits it again under that key, so a fire is neither
//! doubled nor dropped. Fires missed while the server was down are owed once
//! (`missed = "run_once"`) or skipped; fires due while paused are skipped.

use std::time::Duration;

use tokio::sync::mpsc;

use super::fire_times::{latest_missed, next_fire};
use super::{Control, Fired, RETRY, Record, Triggers, paused_error, sleep_for, submit, until};
use crate::app::App;
use crate::clock::Timestamp;
use crate::config::{Missed, ScheduleTrigger, TriggerConfig};
use crate::error::Error;
use crate::job::JobId;

/// Longest single sleep: the clock is read again at least this often, so a fire is not late
/// by the time a machine spent suspended, or after the wall clock was set.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

pub(super) async fn run(
    app: &App,
    triggers: &Triggers,
    config: &TriggerConfig,
    schedule: &ScheduleTrigger,
    controls: &mut mpsc::Receiver<Control>,
) {
    let name = &config.name;
    let shutdown = triggers.shared.shutdown.clone();
    let Some((mut record, _)) = Record::load(app, triggers, name).await else {
        return;
    };
    let started = app.now();
    match record.covered {
        // Never started before: nothing was missed.
        None => record.covered = Some(started),
        Some(covered) => {
            if let Some(missed) = latest_missed(&schedule.cron, schedule.timezone, covered, started)
            {
                match schedule.missed {
                    Missed::RunOnce if !record.paused => {
                        tracing::info!(trigger = %name, fire = %missed, "a fire was missed while the server was down; it runs now");
                        record.last_fire_at = Some(missed);
                        record.last_job = None;
                    }
                    _ => {
                        tracing::info!(trigger = %name, "fires missed while the server was down are skipped");
                    }
                }
                record.covered = Some(started);
            }
        }
    }
    let mut saved = false;
    loop {
        if !saved {
            match record.save(app, name, None).await {
                Ok(()) => saved = true,
                Err(error) => {
                    report(
                        triggers,
                        name,
                        format!("cannot record the schedule: {error}"),
                    );
                    if wait_or_stop(triggers, RETRY).await {
                        return;
                    }
                    continue;
                }
            }
        }
        // A fire recorded without its job: find the job, or submit it (again) under its key.
        if let (Some(fire), None) = (record.last_fire_at, record.last_job) {
            match fire_job(app, config, schedule, fire).await {
                Ok(job) => {
                    record.last_job = Some(job);
                    triggers.update(name, |view| view.problem = None);
                }
                Err(error @ Error::Store(_)) => {
                    report(
                        triggers,
                        name,
                        format!("cannot submit the fire of {fire}: {error}"),
                    );
                    if wait_or_stop(triggers, RETRY).await {
                        return;
                    }
                    continue;
                }
                Err(error) => {
                    // Trying again cannot help (the key was used for another input).
                    report(
                        triggers,
                        name,
                        format!("the fire of {fire} is dropped: {error}"),
                    );
                    record.last_fire_at = None;
                }
            }
            saved = false;
            continue;
        }
        let now = app.now();
        let covered = record.covered.unwrap_or(now);
        if let Some(due) = latest_missed(&schedule.cron, schedule.timezone, covered, now) {
            record.covered = Some(due);
            if record.paused {
                tracing::info!(trigger = %name, fire = %due, "paused: the fire is skipped");
            } else {
                record.last_fire_at = Some(due);
                record.last_job = None;
            }
            saved = false;
            continue;
        }
        let next = next_fire(&schedule.cron, schedule.timezone, covered.max(now));
        show(triggers, name, &record, next);
        let wait = next.map(|next| until(now, next).min(LONGEST_SLEEP));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = sleep_for(wait) => {}
            control = controls.recv() => match control {
                None => return,
                Some(Control::Fire(reply)) if record.paused => {
                    let _ = reply.send(Err(paused_error(name)));
                }
                Some(Control::Fire(reply)) => {
                    let outcome = submit(app, config, schedule.input.clone(), None).await;
                    let outcome = outcome.map(|inserted| {
                        record.last_fire_at = Some(app.now());
                        record.last_job = Some(inserted.job.id);
                        saved = false;
                        Fired::Submitted(inserted.job.id)
                    });
                    show(triggers, name, &record, next);
                    let _ = reply.send(outcome);
                }
                Some(Control::Pause(paused, reply)) => {
                    let mut changed = record.clone();
                    changed.paused = paused;
                    let outcome = changed.save(app, name, None).await;
                    if outcome.is_ok() {
                        record = changed;
                        show(triggers, name, &record, next);
                    }
                    let _ = reply.send(outcome);
                }
            },
        }
    }
}

/// The job of the fire at `fire`: the trigger's newest job when it was made at or after the
/// fire (the server stopped before recording it), else one submitted under the fire's key.
async fn fire_job(
    app: &App,
    config: &TriggerConfig,
    schedule: &ScheduleTrigger,
    fire: Timestamp,
) -> Result<JobId, Error> {
    let newest = app.store().job_list_by_trigger(&config.name, 1).await?;
    if let Some(job) = newest.first()
        && job.created_at >= fire
    {
        return Ok(job.id);
    }
    let key = format!("trigger:{}:{}", config.name, fire.timestamp_millis());
    let inserted = submit(app, config, schedule.input.clone(), Some(key)).await?;
    Ok(inserted.job.id)
}

/// Shows the schedule on the trigger's view, when it changed.
fn show(triggers: &Triggers, name: &str, record: &Record, next: Option<Timestamp>) {
    triggers.update_if(name, |view| {
        if view.paused == record.paused
            && view.next_fire_at == next
            && view.last_fire_at == record.last_fire_at
            && view.last_job == record.last_job
        {
            return false;
        }
        view.paused = record.paused;
        view.next_fire_at = next;
        view.last_fire_at = record.last_fire_at;
        view.last_job = record.last_job;
        true
    });
}

fn report(triggers: &Triggers, name: &str, problem: String) {
    tracing::error!(trigger = %name, %problem, "schedule");
    triggers.update(name, |view| view.problem = Some(problem));
}

/// Waits `wait`; true when the server stops meanwhile.
async fn wait_or_stop(triggers: &Triggers, wait: Duration) -> bool {
    tokio::select! {
        () = triggers.shared.shutdown.cancelled() => true,
        () = tokio::time::sleep(wait) => false,
    }
}
