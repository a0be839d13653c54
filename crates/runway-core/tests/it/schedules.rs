//! Schedules on a real store with a clock the test moves: fires at their time, fires missed
//! while the server was down, a fire recorded before its job, pause.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use runway_core::bus::Bus;
use runway_core::clock::{Clock, Timestamp};
use runway_core::triggers::TriggerView;
use runway_core::{App, Config, Store};
use runway_sqlite::SqliteStore;
use serde_json::json;

/// A clock that reads what the test set.
struct TestClock(Mutex<Timestamp>);

impl TestClock {
    fn at(text: &str) -> Arc<TestClock> {
        Arc::new(TestClock(Mutex::new(utc(text))))
    }

    fn set(&self, text: &str) {
        *self.0.lock().unwrap() = utc(text);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

fn utc(text: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn config(dir: &std::path::Path, missed: &str) -> Config {
    let text = format!(
        "[types.noop]\nhandler = \"noop\"\n\
         [triggers.nightly]\ncron = \"0 3 * * *\"\ntype = \"noop\"\n\
         input = {{ target = \"/srv\" }}\nmissed = \"{missed}\"\n"
    );
    let mut config = Config::from_toml(&text, &HashMap::new()).unwrap();
    config.server.data_dir = dir.to_path_buf();
    config
}

/// An app on `backend`, not started: a new one on the same store is the server again.
fn app_on(backend: &Backend, clock: &Arc<TestClock>, config: &Config) -> App {
    App::new(
        Arc::clone(&backend.store),
        backend.bus.clone(),
        Arc::new(config.clone()),
        Arc::clone(clock) as Arc<dyn Clock>,
        Vec::new(),
        "schedule-test".into(),
    )
    .unwrap()
}

async fn start(backend: &Backend, clock: &Arc<TestClock>, config: &Config) -> App {
    let app = app_on(backend, clock, config);
    app.start().await.unwrap();
    app
}

/// What a server leaves when it stops right after recording the fire of 03:00, before
/// recording its job.
async fn record_a_fire_at_three_without_its_job(backend: &Backend) {
    backend
        .store
        .trigger_put(
            "nightly",
            json!({"paused": false, "last_fire_at": "2026-11-05T03:00:00Z",
                   "last_job": null, "covered": "2026-11-05T03:00:00Z"}),
            None,
        )
        .await
        .unwrap();
}

/// Waits until the trigger's view passes `check`.
async fn view_until(app: &App, what: &str, check: impl Fn(&TriggerView) -> bool) -> TriggerView {
    crate::trigger_view_until(app, "nightly", what, check).await
}

async fn jobs(backend: &Backend) -> Vec<runway_core::Job> {
    backend
        .store
        .job_list_by_trigger("nightly", 100)
        .await
        .unwrap()
}

/// An app started on Monday noon, stopped, and started again on Thursday noon.
async fn down_from_monday_to_thursday(backend: &Backend, config: &Config) -> App {
    let clock = TestClock::at("2026-11-02T12:00:00Z");
    let app = start(backend, &clock, config).await;
    view_until(&app, "the first start", |view| view.next_fire_at.is_some()).await;
    app.shutdown().await;
    clock.set("2026-11-05T12:00:00Z");
    start(backend, &clock, config).await
}

/// What a server starts on: a store and the bus it publishes on.
struct Backend {
    store: Arc<dyn Store>,
    bus: Bus,
}

fn setup() -> (tempfile::TempDir, Backend) {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::default();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), bus.clone()).unwrap());
    (dir, Backend { store, bus })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_at_its_time_with_its_input() {
    let (dir, backend) = setup();
    let clock = TestClock::at("2026-11-05T02:59:59.700Z");
    let app = start(&backend, &clock, &config(dir.path(), "run_once")).await;
    view_until(&app, "the next fire", |view| {
        view.next_fire_at == Some(utc("2026-11-05T03:00:00Z"))
    })
    .await;
    assert!(jobs(&backend).await.is_empty(), "nothing before its time");
    clock.set("2026-11-05T03:00:00.100Z");
    let view = view_until(&app, "the fire", |view| view.last_job.is_some()).await;
    assert_eq!(view.last_fire_at, Some(utc("2026-11-05T03:00:00Z")));
    assert_eq!(view.next_fire_at, Some(utc("2026-11-06T03:00:00Z")));
    let jobs = jobs(&backend).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].input, json!({"target": "/srv"}));
    assert_eq!(jobs[0].trigger.as_deref(), Some("nightly"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_missed_while_down_run_once_at_start() {
    let (dir, backend) = setup();
    // Down from Monday noon to Thursday noon: three fires missed.
    let app = down_from_monday_to_thursday(&backend, &config(dir.path(), "run_once")).await;
    let view = view_until(&app, "the owed run", |view| view.last_job.is_some()).await;
    assert_eq!(view.last_fire_at, Some(utc("2026-11-05T03:00:00Z")));
    assert_eq!(view.next_fire_at, Some(utc("2026-11-06T03:00:00Z")));
    assert_eq!(
        jobs(&backend).await.len(),
        1,
        "one run for all the missed fires"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_missed_while_down_are_skipped_when_told() {
    let (dir, backend) = setup();
    let app = down_from_monday_to_thursday(&backend, &config(dir.path(), "skip")).await;
    let view = view_until(&app, "the schedule going on", |view| {
        view.next_fire_at == Some(utc("2026-11-06T03:00:00Z"))
    })
    .await;
    assert_eq!(view.last_job, None);
    assert!(jobs(&backend).await.is_empty());
    app.shutdown().await;
}

/// The crash between recording a fire and recording its job, after the job was submitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_whose_job_was_not_recorded_is_not_submitted_twice() {
    let (dir, backend) = setup();
    let clock = TestClock::at("2026-11-05T03:00:00.100Z");
    let config = config(dir.path(), "run_once");
    let app = start(&backend, &clock, &config).await;
    view_until(&app, "the first start", |view| view.next_fire_at.is_some()).await;
    app.shutdown().await;
    // The record of a fire at 03:00 whose job the server did submit, then crashed.
    let fired = app_on(&backend, &clock, &config);
    let key = format!(
        "trigger:nightly:{}",
        utc("2026-11-05T03:00:00Z").timestamp_millis()
    );
    let first = fired
        .submit(
            None,
            vec![runway_core::SubmitParams {
                job_type: "noop".into(),
                input: json!({"target": "/srv"}),
                idempotency_key: Some(key),
                trigger: Some("nightly".into()),
                ..Default::default()
            }],
        )
        .await
        .unwrap()[0]
        .job
        .id;
    record_a_fire_at_three_without_its_job(&backend).await;
    let app = start(&backend, &clock, &config).await;
    let view = view_until(&app, "the fire's job", |view| view.last_job.is_some()).await;
    assert_eq!(
        view.last_job,
        Some(first),
        "the job submitted before the crash"
    );
    assert_eq!(jobs(&backend).await.len(), 1);
    app.shutdown().await;
}

/// The crash between recording a fire and submitting its job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_recorded_before_a_crash_is_submitted_after_it() {
    let (dir, backend) = setup();
    let clock = TestClock::at("2026-11-05T03:00:00.100Z");
    let config = config(dir.path(), "run_once");
    record_a_fire_at_three_without_its_job(&backend).await;
    let app = start(&backend, &clock, &config).await;
    let view = view_until(&app, "the fire's job", |view| view.last_job.is_some()).await;
    assert_eq!(view.last_fire_at, Some(utc("2026-11-05T03:00:00Z")));
    assert_eq!(jobs(&backend).await.len(), 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_schedule_skips_its_fires_and_fire_submits_at_once() {
    let (dir, backend) = setup();
    let clock = TestClock::at("2026-11-05T02:59:59.700Z");
    let app = start(&backend, &clock, &config(dir.path(), "run_once")).await;
    view_until(&app, "the first start", |view| view.next_fire_at.is_some()).await;
    let paused = app.triggers().set_paused("nightly", true).await.unwrap();
    assert!(paused.paused);
    clock.set("2026-11-05T03:00:00.100Z");
    // The driver wakes at 03:00 and moves on to tomorrow without a job.
    view_until(&app, "the skipped fire", |view| {
        view.next_fire_at == Some(utc("2026-11-06T03:00:00Z"))
    })
    .await;
    assert!(
        jobs(&backend).await.is_empty(),
        "a paused schedule submits nothing"
    );
    let resumed = app.triggers().set_paused("nightly", false).await.unwrap();
    assert!(!resumed.paused);
    assert_eq!(resumed.next_fire_at, Some(utc("2026-11-06T03:00:00Z")));
    assert!(
        jobs(&backend).await.is_empty(),
        "the skipped fire stays skipped"
    );
    let fired = app.triggers().fire("nightly").await.unwrap();
    let runway_core::triggers::Fired::Submitted(job) = fired else {
        panic!("a schedule submits at once: {fired:?}");
    };
    assert_eq!(jobs(&backend).await[0].id, job);
    app.shutdown().await;
}
