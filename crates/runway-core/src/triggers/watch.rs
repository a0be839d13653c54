//! A watch trigger's driver: the watcher's changes, the clock, its job's end and the controls
//! go into [`WatchState`]; the runs it asks for are submitted. At start it compares the tree
//! with the snapshot taken at its last run, so changes made while the server was down lead to
//! a run, and it waits again for a run a restart interrupted.

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::snapshot::Snapshot;
use super::{Control, Fired, RETRY, Record, TriggerPhase, Triggers, sleep_for, submit, until};
use crate::app::App;
use crate::bus::Change as BusChange;
use crate::config::{TriggerConfig, WatchTrigger};
use crate::job::JobId;
use crate::watch_state::{Change, Changed, Effect, Event, Phase, WatchState};
use crate::watcher;

pub(super) async fn run(
    app: &App,
    triggers: &Triggers,
    config: &TriggerConfig,
    watch: &WatchTrigger,
    controls: &mut mpsc::Receiver<Control>,
) {
    let name = &config.name;
    let shutdown = triggers.shared.shutdown.clone();
    let (mut record, stored_snapshot) = Record::load(app, name).await;
    // Heard before the running job is read, so its end is not missed in between.
    let mut jobs = app.store().subscribe();
    let (_watching, mut changes) = loop {
        match watcher::watch(&watch.root, watch.filter.clone()) {
            Ok(watching) => break watching,
            Err(error) => {
                let problem = error.to_string();
                tracing::error!(trigger = %name, %problem, "cannot watch; trying again");
                triggers.update(name, |view| view.problem = Some(problem));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    };
    let mut state = WatchState::new(watch.debounce, watch.cooldown);
    state.paused = record.paused;
    if let Some(job) = record.running_job {
        match app.job(job).await {
            Ok(job) if !job.status.is_terminal() => {
                state.phase = Phase::Running {
                    stoked: Changed::Nothing,
                };
            }
            _ => record.running_job = None,
        }
    }
    let now_snapshot = take_snapshot(watch).await;
    match stored_snapshot.as_deref().and_then(Snapshot::decode) {
        Some(before) => {
            let changed = before.changes(&now_snapshot);
            if !changed.is_empty() {
                tracing::info!(trigger = %name, files = changed.len(), "files changed while the server was down");
                state = state
                    .step(Event::Changed(Change::Paths(changed)), app.now())
                    .0;
            }
        }
        None => {
            if let Err(error) = record.save(app, name, Some(now_snapshot.encode())).await {
                tracing::warn!(trigger = %name, %error, "cannot record the watched tree");
            }
        }
    }
    triggers.update(name, |view| view.problem = None);
    loop {
        show(triggers, name, &state, &record);
        let mut fire_reply = None;
        // Bursts of other jobs' changes are skipped here, without showing the state again.
        let event = loop {
            let wait = state.deadline().map(|at| until(app.now(), at));
            break tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => match change {
                Some(change) => Event::Changed(change),
                None => {
                    triggers.update(name, |view| {
                        view.problem = Some("the watch ended; the trigger starts it again".into());
                    });
                    panic!("the watcher of trigger `{name}` stopped");
                }
            },
            burst = jobs.recv() => match burst {
                Ok(burst) if ended(&burst, record.running_job) => Event::JobEnded,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => match record.running_job {
                    Some(job) if has_ended(app, job).await => Event::JobEnded,
                    _ => continue,
                },
                Err(RecvError::Closed) => return,
            },
            control = controls.recv() => match control {
                Some(Control::Fire(reply)) => {
                    fire_reply = Some(reply);
                    Event::Fire
                }
                Some(Control::Pause(paused, reply)) => {
                    let before = record.paused;
                    record.paused = paused;
                    let saved = record.save(app, name, None).await;
                    if saved.is_err() {
                        record.paused = before;
                    }
                    let failed = saved.is_err();
                    let _ = reply.send(saved);
                    if failed {
                        continue;
                    }
                    if paused { Event::Pause } else { Event::Resume }
                }
                None => return,
            },
            () = sleep_for(wait) => Event::Tick,
            };
        };
        if let Event::Changed(_) = &event {
            triggers.update(name, |view| view.last_change_at = Some(app.now()));
        }
        if event == Event::JobEnded {
            record.running_job = None;
            if let Err(error) = record.save(app, name, None).await {
                tracing::warn!(trigger = %name, %error, "cannot record the end of the trigger's run");
            }
        }
        let (next, effects) = state.step(event, app.now());
        state = next;
        let mut submitted = None;
        let mut failed = false;
        for Effect::Submit(changed) in effects {
            match start_run(app, triggers, config, watch, &mut record, changed.clone()).await {
                Ok(job) => submitted = Some(job),
                Err(problem) => {
                    tracing::error!(trigger = %name, %problem, "cannot submit the trigger's run; trying again");
                    triggers.update(name, |view| view.problem = Some(problem));
                    // No run to wait for; its changes are owed again, after a pause.
                    state = state.step(Event::JobEnded, app.now()).0;
                    state = state.step(Event::Changed(owed(changed)), app.now()).0;
                    failed = true;
                }
            }
        }
        if let Some(reply) = fire_reply {
            let _ = reply.send(Ok(submitted.map_or(Fired::Later, Fired::Submitted)));
        }
        if failed {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    }
}

/// The changes of a run that could not be submitted, to gather again.
fn owed(changed: Changed) -> Change {
    match changed {
        Changed::Paths(paths) => Change::Paths(paths.into_iter().collect()),
        Changed::Everything | Changed::Nothing => Change::Overflow,
    }
}

/// Submits one run: the tree's snapshot first (its record after the job exists, so a crash in
/// between costs one more run, never a lost change).
async fn start_run(
    app: &App,
    triggers: &Triggers,
    config: &TriggerConfig,
    watch: &WatchTrigger,
    record: &mut Record,
    changed: Changed,
) -> Result<JobId, String> {
    let input = match changed {
        Changed::Paths(paths) => json!({"trigger": config.name, "paths": paths}),
        Changed::Everything | Changed::Nothing => {
            json!({"trigger": config.name, "paths": null, "overflow": true})
        }
    };
    let snapshot = take_snapshot(watch).await;
    let inserted = submit(app, config, input, None)
        .await
        .map_err(|error| error.to_string())?;
    let job = inserted.job.id;
    record.running_job = Some(job);
    record.last_job = Some(job);
    record.last_fire_at = Some(app.now());
    if let Err(error) = record
        .save(app, &config.name, Some(snapshot.encode()))
        .await
    {
        tracing::warn!(trigger = %config.name, %error, "cannot record the trigger's run");
    }
    triggers.update(&config.name, |view| view.problem = None);
    Ok(job)
}

async fn take_snapshot(watch: &WatchTrigger) -> Snapshot {
    let (root, filter) = (watch.root.clone(), watch.filter.clone());
    tokio::task::spawn_blocking(move || Snapshot::take(&root, &filter))
        .await
        .unwrap_or_default()
}

fn ended(burst: &[BusChange], running: Option<JobId>) -> bool {
    let Some(running) = running else {
        return false;
    };
    burst.iter().any(|change| match change {
        BusChange::Job(change) => change.job.id == running && change.job.status.is_terminal(),
        BusChange::Log(_) => false,
    })
}

async fn has_ended(app: &App, job: JobId) -> bool {
    match app.job(job).await {
        Ok(job) => job.status.is_terminal(),
        Err(crate::error::Error::NotFound { .. }) => true,
        Err(_) => false,
    }
}

/// Shows the state on the trigger's view, when it changed.
fn show(triggers: &Triggers, name: &str, state: &WatchState, record: &Record) {
    let (phase, pending) = match &state.phase {
        Phase::Idle => (TriggerPhase::Idle, Changed::Nothing),
        Phase::Waiting { changed, .. } => (TriggerPhase::Waiting, changed.clone()),
        Phase::Running { stoked } => (TriggerPhase::Running, stoked.clone()),
        Phase::Cooldown { stoked, .. } => (TriggerPhase::Cooldown, stoked.clone()),
    };
    if let Ok(view) = triggers.get(name)
        && view.paused == state.paused
        && view.phase == phase
        && view.pending == pending
        && view.next_fire_at == state.deadline()
        && view.running_job == record.running_job
        && view.last_fire_at == record.last_fire_at
        && view.last_job == record.last_job
    {
        return;
    }
    triggers.update(name, |view| {
        view.paused = state.paused;
        view.phase = phase;
        view.pending = pending;
        view.next_fire_at = state.deadline();
        view.running_job = record.running_job;
        view.last_fire_at = record.last_fire_at;
        view.last_job = record.last_job;
    });
}
