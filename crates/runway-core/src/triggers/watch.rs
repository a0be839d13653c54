//! A watch trigger's driver: the watcher's changes, the clock, its job's end and the controls
//! go into [`WatchState`]; the runs it asks for are submitted. At start it compares the tree
//! with the snapshot taken at its last run, so changes made while the server was down lead to
//! a run, and it waits again for a run a restart interrupted.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

use super::snapshot::Snapshot;
use super::{
    Control, Fired, RETRY, Record, TriggerPhase, Triggers, paused_error, sleep_for, submit, until,
};
use crate::app::App;
use crate::bus::Change as BusChange;
use crate::config::{TriggerConfig, WatchTrigger};
use crate::error::Error;
use crate::job::JobId;
use crate::watch_state::{Change, Changed, Effect, Event, Phase, WatchState};
use crate::watcher;

/// While its run goes on, a trigger also reads the job's status this often: an end it did not
/// hear (the bus outran it and the store could not be read then) is still seen.
const RUNNING_CHECK: Duration = Duration::from_secs(30);

pub(super) async fn run(
    app: &App,
    triggers: &Triggers,
    config: &TriggerConfig,
    watch: &WatchTrigger,
    controls: &mut mpsc::Receiver<Control>,
) {
    let name = &config.name;
    let shutdown = triggers.shared.shutdown.clone();
    let Some((mut record, stored_snapshot)) = Record::load(app, triggers, name).await else {
        return;
    };
    // Heard before the running job is read, so its end is not missed in between.
    let mut jobs = app.subscribe();
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
    // The run a restart interrupted: the one recorded, or, when the server stopped between
    // submitting a run and recording it, the trigger's newest job if it has not ended.
    let interrupted = match record.running_job {
        Some(job) => Some(job),
        None => newest_job(app, name).await,
    };
    record.running_job = None;
    if let Some(job) = interrupted
        && !has_ended(app, job).await
    {
        record.running_job = Some(job);
        record.last_job = record.last_job.or(Some(job));
        state.phase = Phase::Running {
            stoked: Changed::Nothing,
        };
    }
    // The tree as the trigger has seen it: taken now, kept up to date from the changes it
    // hears, recorded with each run.
    let mut snapshot = take_snapshot(watch).await;
    match stored_snapshot.as_deref().and_then(Snapshot::decode) {
        Some(before) => {
            let changed = before.changes(&snapshot);
            if !changed.is_empty() {
                tracing::info!(trigger = %name, files = changed.len(), "files changed while the server was down");
                state = state
                    .step(Event::Changed(Change::Paths(changed)), app.now())
                    .0;
            }
        }
        None => {
            if let Err(error) = record.save(app, name, Some(snapshot.encode())).await {
                tracing::warn!(trigger = %name, %error, "cannot record the watched tree");
            }
        }
    }
    triggers.update(name, |view| view.problem = None);
    loop {
        show(triggers, name, &state, &record);
        let mut fire_reply = None;
        let mut pause_reply: Option<oneshot::Sender<Result<(), Error>>> = None;
        // Bursts of other jobs' changes are skipped here, without showing the state again.
        let event = loop {
            let wait = state.deadline().map(|at| until(app.now(), at));
            let running = record.running_job;
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
                    Ok(burst) if ended(&burst, running) => Event::JobEnded,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => match running {
                        Some(job) if has_ended(app, job).await => Event::JobEnded,
                        _ => continue,
                    },
                    Err(RecvError::Closed) => return,
                },
                () = sleep_for(running.map(|_| RUNNING_CHECK)) => match running {
                    Some(job) if has_ended(app, job).await => Event::JobEnded,
                    _ => continue,
                },
                control = controls.recv() => match control {
                    Some(Control::Fire(reply)) if record.paused => {
                        let _ = reply.send(Err(paused_error(name)));
                        continue;
                    }
                    Some(Control::Fire(reply)) => {
                        fire_reply = Some(reply);
                        Event::Fire
                    }
                    Some(Control::Pause(paused, reply)) => {
                        let mut changed = record.clone();
                        changed.paused = paused;
                        if let Err(error) = changed.save(app, name, None).await {
                            let _ = reply.send(Err(error));
                            continue;
                        }
                        record = changed;
                        pause_reply = Some(reply);
                        if paused { Event::Pause } else { Event::Resume }
                    }
                    None => return,
                },
                () = sleep_for(wait) => Event::Tick,
            };
        };
        if let Event::Changed(change) = &event {
            triggers.update(name, |view| view.last_change_at = Some(app.now()));
            snapshot = refreshed(watch, snapshot, change).await;
        }
        if event == Event::JobEnded {
            record.running_job = None;
            if let Err(error) = record.save(app, name, None).await {
                tracing::warn!(trigger = %name, %error, "cannot record the end of the trigger's run");
            }
        }
        let (next, effects) = state.step(event, app.now());
        state = next;
        let mut fired = Ok(Fired::Later);
        let mut retry = false;
        for Effect::Submit(changed) in effects {
            match start_run(app, triggers, config, &snapshot, &mut record, &changed).await {
                Ok(job) => fired = Ok(Fired::Submitted(job)),
                Err(error) => {
                    let problem = format!("cannot submit a run: {error}");
                    triggers.update(name, |view| view.problem = Some(problem.clone()));
                    // No run to wait for.
                    state = state.step(Event::JobEnded, app.now()).0;
                    if matches!(error, Error::Store(_)) {
                        // The store may take it later (a full disk): the changes are owed
                        // again, after a pause.
                        tracing::error!(trigger = %name, %problem, "trying again");
                        state = state.step(Event::Changed(owed(changed)), app.now()).0;
                        retry = true;
                    } else {
                        // The job type refuses it: trying again cannot help.
                        tracing::error!(trigger = %name, %problem, "the run is dropped");
                    }
                    fired = Err(error);
                }
            }
        }
        show(triggers, name, &state, &record);
        if let Some(reply) = fire_reply {
            let _ = reply.send(fired);
        }
        if let Some(reply) = pause_reply {
            let _ = reply.send(Ok(()));
        }
        if retry {
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

/// Submits one run, then records it with the snapshot of the tree it covers (after the job
/// exists, so a crash in between costs one more run, never a lost change; the next start finds
/// the job by the trigger's name).
async fn start_run(
    app: &App,
    triggers: &Triggers,
    config: &TriggerConfig,
    snapshot: &Snapshot,
    record: &mut Record,
    changed: &Changed,
) -> Result<JobId, Error> {
    let inserted = submit(app, config, changed.input(&config.name), None).await?;
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

/// `snapshot` with `change` taken in: the changed paths read again, or, after an overflow,
/// the whole tree walked again.
async fn refreshed(watch: &WatchTrigger, mut snapshot: Snapshot, change: &Change) -> Snapshot {
    let (root, filter) = (watch.root.clone(), watch.filter.clone());
    match change {
        Change::Overflow => take_snapshot(watch).await,
        Change::Paths(paths) => {
            let paths = paths.clone();
            let kept = snapshot.clone();
            tokio::task::spawn_blocking(move || {
                snapshot.refresh(&root, &filter, &paths);
                snapshot
            })
            .await
            .unwrap_or(kept)
        }
    }
}

async fn take_snapshot(watch: &WatchTrigger) -> Snapshot {
    let (root, filter) = (watch.root.clone(), watch.filter.clone());
    tokio::task::spawn_blocking(move || Snapshot::take(&root, &filter))
        .await
        .unwrap_or_default()
}

/// The trigger's newest job, if the store can say.
async fn newest_job(app: &App, name: &str) -> Option<JobId> {
    match app.store().job_list_by_trigger(name, 1).await {
        Ok(jobs) => jobs.first().map(|job| job.id),
        Err(error) => {
            tracing::warn!(trigger = %name, %error, "cannot read the trigger's newest job");
            None
        }
    }
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

/// Whether the job ended (or is gone); false when the store cannot say now.
async fn has_ended(app: &App, job: JobId) -> bool {
    match app.job(crate::users::Access::All, job).await {
        Ok(job) => job.status.is_terminal(),
        Err(Error::NotFound { .. }) => true,
        Err(_) => false,
    }
}

/// Shows the state on the trigger's view, when it changed: the gathered paths are copied only
/// then.
fn show(triggers: &Triggers, name: &str, state: &WatchState, record: &Record) {
    let (phase, pending) = match &state.phase {
        Phase::Idle => (TriggerPhase::Idle, &Changed::Nothing),
        Phase::Waiting { changed, .. } => (TriggerPhase::Waiting, changed),
        Phase::Running { stoked } => (TriggerPhase::Running, stoked),
        Phase::Cooldown { stoked, .. } => (TriggerPhase::Cooldown, stoked),
    };
    triggers.update_if(name, |view| {
        if view.paused == state.paused
            && view.phase == phase
            && view.pending == *pending
            && view.next_fire_at == state.deadline()
            && view.running_job == record.running_job
            && view.last_fire_at == record.last_fire_at
            && view.last_job == record.last_job
        {
            return false;
        }
        view.paused = state.paused;
        view.phase = phase;
        view.pending = pending.clone();
        view.next_fire_at = state.deadline();
        view.running_job = record.running_job;
        view.last_fire_at = record.last_fire_at;
        view.last_job = record.last_job;
        true
    });
}
