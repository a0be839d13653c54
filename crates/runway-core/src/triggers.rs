//! Triggers: work that starts by itself. Each `[triggers.NAME]` of the config gets a view that
//! the API, the CLI and the dashboard read (its phase, what changed, when it fires next, its
//! last job), and controls (fire now, pause, resume) that reach its driver:
//!
//! - a watch trigger's driver ([`watch`]) feeds the file watcher's changes, the clock and its
//!   job's end into [`crate::watch_state::WatchState`] and submits the runs it asks for;
//! - a schedule's driver ([`schedule`]) sleeps until the next fire of its cron expression and
//!   records each fire before it submits the fire's job;
//! - a webhook has no driver: [`Triggers::deliver`] checks a delivery and submits its job.
//!
//! Drivers submit through [`App`] like any client and hear their jobs end on the bus. What a
//! trigger must remember across restarts (paused, its running job, a schedule's last fire, a
//! watch's snapshot of its tree) is kept in the store as a [`Record`].

mod fire_times;
mod schedule;
mod snapshot;
mod watch;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::app::{App, SubmitParams};
use crate::clock::Timestamp;
use crate::config::{TriggerConfig, TriggerSource, WebhookTrigger};
use crate::error::Error;
use crate::job::JobId;
use crate::store::Inserted;
use crate::watch_state::Changed;

pub use webhook::Delivery;

/// Trigger views kept for live subscribers that are briefly slow.
const UPDATES_CAPACITY: usize = 256;
/// Wait before a driver that failed tries again.
const RETRY: Duration = Duration::from_secs(5);

/// Where a trigger stands. Schedules and webhooks are always `Idle`; a watch trigger moves
/// through all four (see [`crate::watch_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerPhase {
    Idle,
    Waiting,
    Running,
    Cooldown,
}

/// A trigger as the API shows it.
#[derive(Debug, Clone)]
pub struct TriggerView {
    pub name: String,
    pub job_type: String,
    /// Shared, not copied: a view is cloned for every live subscriber and read.
    pub source: Arc<TriggerSource>,
    pub paused: bool,
    pub phase: TriggerPhase,
    /// A watch trigger's changes gathered for its next run: while waiting, the run about to
    /// start; while running or cooling down, the one more run it is stoked for.
    pub pending: Changed,
    pub last_change_at: Option<Timestamp>,
    /// When it submits next if nothing else happens: the end of a debounce or a cooldown, or
    /// a schedule's next fire.
    pub next_fire_at: Option<Timestamp>,
    /// The job a watch trigger waits for.
    pub running_job: Option<JobId>,
    pub last_fire_at: Option<Timestamp>,
    pub last_job: Option<JobId>,
    /// Why the trigger cannot do its work right now (a directory it cannot watch, a submit the
    /// store refused), until it can.
    pub problem: Option<String>,
    /// Grows with every change of the view, so a client keeps the newest.
    pub revision: u64,
}

impl TriggerView {
    /// A run is owed after the current one or the cooldown.
    pub fn stoked(&self) -> bool {
        matches!(self.phase, TriggerPhase::Running | TriggerPhase::Cooldown)
            && self.pending != Changed::Nothing
    }
}

/// What a `fire` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    Submitted(JobId),
    /// A watch trigger that is running, cooling down or paused: one more run follows.
    Later,
}

/// What a trigger keeps in the store. Every field has a default, so a record written by an
/// older version still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Record {
    paused: bool,
    /// A watch trigger's run in progress, waited for again after a restart.
    running_job: Option<JobId>,
    last_fire_at: Option<Timestamp>,
    /// `None` after a schedule recorded a fire and before its job was recorded: a restart
    /// submits it again under the same idempotency key.
    last_job: Option<JobId>,
    /// A schedule's fires up to here were handled (fired, or skipped while paused or down).
    covered: Option<Timestamp>,
}

impl Record {
    /// What the store holds for trigger `name`, read again every 5 s while the store cannot
    /// say (a trigger must never start afresh over a record it could not read); `None` when
    /// the server stops meanwhile. A record another version wrote that cannot be read is
    /// replaced.
    async fn load(app: &App, triggers: &Triggers, name: &str) -> Option<(Record, Option<Vec<u8>>)> {
        loop {
            match app.store().trigger_get(name).await {
                Ok(Some(stored)) => {
                    let record = serde_json::from_value(stored.state).unwrap_or_else(|error| {
                        tracing::warn!(trigger = name, %error, "the trigger's record cannot be read; it starts afresh");
                        Record::default()
                    });
                    return Some((record, stored.snapshot));
                }
                Ok(None) => return Some((Record::default(), None)),
                Err(error) => {
                    let problem = format!("cannot read the trigger's record: {error}");
                    tracing::error!(trigger = name, %problem, "trying again");
                    triggers.update(name, |view| view.problem = Some(problem));
                    tokio::select! {
                        () = triggers.shared.shutdown.cancelled() => return None,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    async fn save(&self, app: &App, name: &str, snapshot: Option<Vec<u8>>) -> Result<(), Error> {
        let state = serde_json::to_value(self).expect("records serialize");
        app.store().trigger_put(name, state, snapshot).await?;
        Ok(())
    }
}

/// The answer to a fire while paused.
fn paused_error(name: &str) -> Error {
    Error::Conflict {
        message: format!(
            "trigger `{name}` is paused; resume it first (runway trigger resume {name})"
        ),
    }
}

enum Control {
    Fire(oneshot::Sender<Result<Fired, Error>>),
    Pause(bool, oneshot::Sender<Result<(), Error>>),
}

/// Cheap to clone; every clone shows and controls the same triggers.
#[derive(Clone)]
pub struct Triggers {
    shared: Arc<Shared>,
}

struct Shared {
    configs: BTreeMap<String, TriggerConfig>,
    views: Mutex<BTreeMap<String, TriggerView>>,
    controls: Mutex<BTreeMap<String, mpsc::Sender<Control>>>,
    updates: broadcast::Sender<TriggerView>,
    shutdown: CancellationToken,
    /// Held while a webhook's record is read from its view and written, so a delivery's fire
    /// and a pause never write over each other.
    webhook_records: tokio::sync::Mutex<()>,
}

impl Triggers {
    pub(crate) fn new(configs: BTreeMap<String, TriggerConfig>) -> Triggers {
        let views = configs
            .values()
            .map(|config| {
                let view = TriggerView {
                    name: config.name.clone(),
                    job_type: config.job_type.clone(),
                    source: Arc::new(config.source.clone()),
                    paused: false,
                    phase: TriggerPhase::Idle,
                    pending: Changed::Nothing,
                    last_change_at: None,
                    next_fire_at: None,
                    running_job: None,
                    last_fire_at: None,
                    last_job: None,
                    problem: None,
                    revision: 0,
                };
                (config.name.clone(), view)
            })
            .collect();
        Triggers {
            shared: Arc::new(Shared {
                configs,
                views: Mutex::new(views),
                controls: Mutex::new(BTreeMap::new()),
                updates: broadcast::channel(UPDATES_CAPACITY).0,
                shutdown: CancellationToken::new(),
                webhook_records: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Starts a driver per watch trigger and schedule, and reads each webhook's record.
    pub(crate) async fn start(&self, app: &App) {
        for config in self.shared.configs.values() {
            let (sender, receiver) = mpsc::channel(16);
            self.shared
                .controls
                .lock()
                .expect("the triggers lock is never poisoned")
                .insert(config.name.clone(), sender);
            match &config.source {
                TriggerSource::Watch(_) | TriggerSource::Schedule(_) => {
                    tokio::spawn(supervise(
                        app.clone(),
                        self.clone(),
                        config.clone(),
                        receiver,
                    ));
                }
                TriggerSource::Webhook(_) => {
                    tokio::spawn(webhook_controls(
                        app.clone(),
                        self.clone(),
                        config.clone(),
                        receiver,
                    ));
                }
            }
        }
    }

    /// Stops every driver; a watch trigger's running job goes on and is waited for after the
    /// next start.
    pub(crate) fn stop(&self) {
        self.shared.shutdown.cancel();
    }

    pub fn list(&self) -> Vec<TriggerView> {
        self.shared
            .views
            .lock()
            .expect("the triggers lock is never poisoned")
            .values()
            .cloned()
            .collect()
    }

    pub fn get(&self, name: &str) -> Result<TriggerView, Error> {
        self.shared
            .views
            .lock()
            .expect("the triggers lock is never poisoned")
            .get(name)
            .cloned()
            .ok_or_else(|| self.unknown(name))
    }

    /// Every change of a trigger's view, as it happens.
    pub fn subscribe(&self) -> broadcast::Receiver<TriggerView> {
        self.shared.updates.subscribe()
    }

    pub async fn fire(&self, name: &str) -> Result<Fired, Error> {
        let (reply, answer) = oneshot::channel();
        self.control(name, Control::Fire(reply)).await?;
        answer.await.unwrap_or_else(|_| Err(self.stopped(name)))
    }

    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<TriggerView, Error> {
        let (reply, answer) = oneshot::channel();
        self.control(name, Control::Pause(paused, reply)).await?;
        answer.await.unwrap_or_else(|_| Err(self.stopped(name)))?;
        self.get(name)
    }

    /// Whether a webhook listens at `/hooks/{path}`: asked before a delivery's body is read.
    pub fn has_webhook(&self, path: &str) -> Result<(), Error> {
        self.webhook(path).map(|_| ())
    }

    fn webhook(&self, path: &str) -> Result<(&TriggerConfig, &WebhookTrigger), Error> {
        self.shared
            .configs
            .values()
            .find_map(|config| match &config.source {
                TriggerSource::Webhook(hook) if hook.path == path => Some((config, hook)),
                _ => None,
            })
            .ok_or_else(|| Error::NoWebhook {
                path: path.to_string(),
            })
    }

    /// Checks a delivery to `POST /hooks/{path}` and submits its job: 401 without the secret,
    /// 409 while the trigger is paused, the first job again for a delivery id seen before.
    pub async fn deliver(
        &self,
        app: &App,
        path: &str,
        delivery: Delivery,
    ) -> Result<Inserted, Error> {
        let (config, hook) = self.webhook(path)?;
        webhook::verify(hook, &delivery)?;
        if self.get(&config.name)?.paused {
            return Err(Error::Conflict {
                message: format!(
                    "trigger `{}` is paused, so nothing was submitted; resume it (runway trigger \
                     resume {}) and send the delivery again",
                    config.name, config.name
                ),
            });
        }
        let input = webhook::input(hook, &delivery.body)?;
        let key = match delivery.id {
            Some(id) => {
                let key = format!("webhook:{}:{id}", config.name);
                if let Some(problem) = crate::idempotency::key_problem(&key) {
                    return Err(Error::InvalidField {
                        field: "delivery id".into(),
                        message: problem,
                    });
                }
                Some(key)
            }
            None => None,
        };
        let inserted = submit(app, config, input, key).await?;
        if inserted.created {
            self.record_fire(app, &config.name, inserted.job.id).await;
        }
        Ok(inserted)
    }

    /// Notes a webhook's fire on its view and in the store.
    async fn record_fire(&self, app: &App, name: &str, job: JobId) {
        let _writing = self.shared.webhook_records.lock().await;
        let now = app.now();
        let view = self.update(name, |view| {
            view.last_fire_at = Some(now);
            view.last_job = Some(job);
        });
        if let Err(error) = webhook_record(&view).save(app, name, None).await {
            tracing::warn!(trigger = name, %error, "cannot record the trigger's last fire");
        }
    }

    async fn control(&self, name: &str, control: Control) -> Result<(), Error> {
        let sender = self
            .shared
            .controls
            .lock()
            .expect("the triggers lock is never poisoned")
            .get(name)
            .cloned();
        match sender {
            Some(sender) => sender.send(control).await.map_err(|_| self.stopped(name)),
            None if self.shared.configs.contains_key(name) => Err(self.stopped(name)),
            None => Err(self.unknown(name)),
        }
    }

    /// Changes a trigger's view and tells live subscribers; returns the new view.
    fn update(&self, name: &str, change: impl FnOnce(&mut TriggerView)) -> TriggerView {
        self.update_if(name, |view| {
            change(view);
            true
        })
    }

    /// Like [`Triggers::update`] for a change that may find nothing to change (it returns
    /// false): then the view keeps its revision and nobody is told.
    fn update_if(&self, name: &str, change: impl FnOnce(&mut TriggerView) -> bool) -> TriggerView {
        let mut views = self
            .shared
            .views
            .lock()
            .expect("the triggers lock is never poisoned");
        let view = views
            .get_mut(name)
            .expect("only declared triggers are updated");
        if change(view) {
            view.revision += 1;
            let _ = self.shared.updates.send(view.clone());
        }
        view.clone()
    }

    fn unknown(&self, name: &str) -> Error {
        Error::UnknownTrigger {
            name: name.to_string(),
            known: self.shared.configs.keys().cloned().collect(),
        }
    }

    fn stopped(&self, name: &str) -> Error {
        Error::Conflict {
            message: format!("trigger `{name}` is not running: the server is stopping"),
        }
    }
}

/// Submits a trigger's job.
async fn submit(
    app: &App,
    config: &TriggerConfig,
    input: Value,
    idempotency_key: Option<String>,
) -> Result<Inserted, Error> {
    let mut inserted = app
        .submit(
            None,
            vec![SubmitParams {
                job_type: config.job_type.clone(),
                input,
                idempotency_key,
                trigger: Some(config.name.clone()),
                ..SubmitParams::default()
            }],
        )
        .await?;
    Ok(inserted.remove(0))
}

/// Runs a trigger's driver until shutdown, starting it again after a panic.
async fn supervise(
    app: App,
    triggers: Triggers,
    config: TriggerConfig,
    controls: mpsc::Receiver<Control>,
) {
    let controls = Arc::new(tokio::sync::Mutex::new(controls));
    let shutdown = triggers.shared.shutdown.clone();
    loop {
        let driver = {
            let (app, triggers, config, controls) = (
                app.clone(),
                triggers.clone(),
                config.clone(),
                Arc::clone(&controls),
            );
            tokio::spawn(async move {
                let mut controls = controls.lock().await;
                match &config.source {
                    TriggerSource::Watch(watch) => {
                        watch::run(&app, &triggers, &config, watch, &mut controls).await;
                    }
                    TriggerSource::Schedule(schedule) => {
                        schedule::run(&app, &triggers, &config, schedule, &mut controls).await;
                    }
                    TriggerSource::Webhook(_) => {}
                }
            })
        };
        match driver.await {
            Ok(()) => return,
            Err(error) => {
                let problem = format!("the trigger's driver failed ({error}); it starts again");
                tracing::error!(trigger = config.name, "{problem}");
                triggers.update(&config.name, |view| view.problem = Some(problem));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// A webhook's record, as its view shows it.
fn webhook_record(view: &TriggerView) -> Record {
    Record {
        paused: view.paused,
        last_fire_at: view.last_fire_at,
        last_job: view.last_job,
        ..Record::default()
    }
}

/// Reads a webhook's record, then answers its controls: fire submits `{}` as a delivery
/// would, pause and resume are recorded.
async fn webhook_controls(
    app: App,
    triggers: Triggers,
    config: TriggerConfig,
    mut controls: mpsc::Receiver<Control>,
) {
    let shutdown = triggers.shared.shutdown.clone();
    let Some((record, _)) = Record::load(&app, &triggers, &config.name).await else {
        return;
    };
    triggers.update(&config.name, |view| {
        view.paused = record.paused;
        view.last_fire_at = record.last_fire_at;
        view.last_job = record.last_job;
        view.problem = None;
    });
    loop {
        let control = tokio::select! {
            () = shutdown.cancelled() => return,
            control = controls.recv() => match control {
                Some(control) => control,
                None => return,
            },
        };
        match control {
            Control::Fire(reply) => {
                let outcome = if triggers.get(&config.name).is_ok_and(|view| view.paused) {
                    Err(paused_error(&config.name))
                } else {
                    match submit(&app, &config, serde_json::json!({}), None).await {
                        Ok(inserted) => {
                            triggers
                                .record_fire(&app, &config.name, inserted.job.id)
                                .await;
                            Ok(Fired::Submitted(inserted.job.id))
                        }
                        Err(error) => Err(error),
                    }
                };
                let _ = reply.send(outcome);
            }
            Control::Pause(paused, reply) => {
                let _writing = triggers.shared.webhook_records.lock().await;
                let mut view = triggers.get(&config.name).expect("declared");
                view.paused = paused;
                let outcome = webhook_record(&view).save(&app, &config.name, None).await;
                if outcome.is_ok() {
                    triggers.update(&config.name, |view| view.paused = paused);
                }
                let _ = reply.send(outcome);
            }
        }
    }
}

/// Sleeps `wait`, or forever when there is nothing to wait for.
async fn sleep_for(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// How long from `now` until `at`; zero when it passed.
fn until(now: Timestamp, at: Timestamp) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}
