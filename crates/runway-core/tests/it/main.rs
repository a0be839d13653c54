//! The engine on a real SQLite store, driven in-process: what cannot be set up through the
//! binary (handlers that panic, another worker's expired lease).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runway_core::bus::Bus;
use runway_core::clock::{Clock, Timestamp};
use runway_core::handler::{Handler, JobCtx};
use runway_core::store::JobClaimParams;
use runway_core::users::Access;
use runway_core::{App, Config, Job, JobId, Store, SubmitParams, SystemClock};
use runway_sqlite::SqliteStore;
use serde_json::{Value, json};

mod schedules;
mod watch_triggers;

/// Waits until trigger `name`'s view passes `check`.
async fn trigger_view_until(
    app: &App,
    name: &str,
    what: &str,
    check: impl Fn(&runway_core::triggers::TriggerView) -> bool,
) -> runway_core::triggers::TriggerView {
    let start = Instant::now();
    loop {
        let view = app.triggers().get(name).unwrap();
        if check(&view) {
            return view;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Panics;

#[async_trait]
impl Handler for Panics {
    async fn run(&self, ctx: JobCtx) -> Result<Option<Value>, String> {
        if ctx.job.input["panic"] == true {
            panic!("handler exploded on purpose");
        }
        ctx.progress(0.5, Some("halfway".into()));
        ctx.log("from a handler").await;
        Ok(Some(json!({"echo": ctx.job.input})))
    }
}

/// Ignores its stop token: only dropping its future ends it.
struct Stubborn;

#[async_trait]
impl Handler for Stubborn {
    async fn run(&self, _ctx: JobCtx) -> Result<Option<Value>, String> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(None)
    }
}

/// The wall clock, but once armed, the next reading made off the test's own thread (by an
/// engine task) panics, once.
struct PanicsOnce {
    armed: AtomicBool,
    test_thread: std::thread::ThreadId,
}

impl Clock for PanicsOnce {
    fn now(&self) -> Timestamp {
        if std::thread::current().id() != self.test_thread
            && self.armed.swap(false, Ordering::SeqCst)
        {
            panic!("the clock broke on purpose");
        }
        SystemClock.now()
    }
}

/// Set by the `arms` handler in its first attempt: the next reading of [`BreaksWhenArmed`] made
/// off the test's thread panics, once.
static CLOCK_ARMED: AtomicBool = AtomicBool::new(false);

/// The wall clock, but the reading that follows an `arms` job's first attempt (its slot's, as
/// it stores the outcome) panics.
struct BreaksWhenArmed {
    test_thread: std::thread::ThreadId,
}

impl Clock for BreaksWhenArmed {
    fn now(&self) -> Timestamp {
        if std::thread::current().id() != self.test_thread
            && CLOCK_ARMED.swap(false, Ordering::SeqCst)
        {
            panic!("the clock broke after a handler on purpose");
        }
        SystemClock.now()
    }
}

/// Arms [`CLOCK_ARMED`] in its job's first attempt, then succeeds.
struct Arms;

#[async_trait]
impl Handler for Arms {
    async fn run(&self, ctx: JobCtx) -> Result<Option<Value>, String> {
        if ctx.job.attempt == 1 {
            CLOCK_ARMED.store(true, Ordering::SeqCst);
        }
        Ok(None)
    }
}

/// Leaves its context (and so a clone of its reporter) to a task that outlives the attempt.
struct Leaky;

#[async_trait]
impl Handler for Leaky {
    async fn run(&self, ctx: JobCtx) -> Result<Option<Value>, String> {
        tokio::spawn(async move {
            let _kept = ctx;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        Ok(Some(json!({"left": "a task behind"})))
    }
}

/// Spawns two keyed `noop` children, twice: the second spawn finds them by their keys.
struct Splits;

#[async_trait]
impl Handler for Splits {
    async fn run(&self, ctx: JobCtx) -> Result<Option<Value>, String> {
        let children = || {
            (1..=2)
                .map(|n| SubmitParams {
                    job_type: "noop".into(),
                    key: Some(n.to_string()),
                    ..SubmitParams::default()
                })
                .collect::<Vec<_>>()
        };
        let first = ctx
            .spawn(children())
            .await
            .map_err(|error| error.to_string())?;
        let again = ctx
            .spawn(children())
            .await
            .map_err(|error| error.to_string())?;
        let same = first
            .iter()
            .zip(&again)
            .all(|(a, b)| a.job.id == b.job.id && !b.created);
        Ok(Some(json!({"spawned": first.len(), "same_again": same})))
    }
}

struct Sleeps;

#[async_trait]
impl Handler for Sleeps {
    async fn run(&self, ctx: JobCtx) -> Result<Option<Value>, String> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => Ok(None),
            () = ctx.stop.cancelled() => Err("stopped".into()),
        }
    }
}

const CONFIG: &str = r#"
[server]
sweep_interval = "50ms"
lease = "1s"

[queues.single]
concurrency = 1

[types.arms]
handler = "arms"
queue = "single"
max_attempts = 3

[types.panics]
handler = "panics"
max_attempts = 2
backoff_initial = "10ms"

[types.sleeps]
handler = "sleeps"
timeout = "200ms"
max_attempts = 1

[types.noop]
handler = "noop"

[types.stubborn]
handler = "stubborn"
max_attempts = 1

[types.once]
command = ["true"]
max_attempts = 1

[types.leaky]
handler = "leaky"
max_attempts = 1

[types.splits]
handler = "splits"
"#;

fn handlers() -> Vec<(String, Arc<dyn Handler>)> {
    vec![
        ("panics".into(), Arc::new(Panics)),
        ("sleeps".into(), Arc::new(Sleeps)),
        ("stubborn".into(), Arc::new(Stubborn)),
        ("leaky".into(), Arc::new(Leaky)),
        ("splits".into(), Arc::new(Splits)),
        ("arms".into(), Arc::new(Arms)),
    ]
}

async fn start(dir: &std::path::Path) -> (App, Arc<dyn Store>) {
    start_with_clock(dir, Arc::new(SystemClock), |_| {}).await
}

async fn start_with_clock(
    dir: &std::path::Path,
    clock: Arc<dyn Clock>,
    configure: impl FnOnce(&mut Config),
) -> (App, Arc<dyn Store>) {
    let mut config = Config::from_toml(CONFIG, &HashMap::new()).unwrap();
    configure(&mut config);
    config.server.data_dir = dir.to_path_buf();
    config.server.kill_grace = Duration::from_millis(100);
    let bus = Bus::default();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir, bus.clone()).unwrap());
    let app = App::new(
        Arc::clone(&store),
        bus,
        Arc::new(config),
        clock,
        handlers(),
        "engine-test".into(),
    )
    .expect("every handler of the config is registered");
    app.start().await.unwrap();
    (app, store)
}

async fn submit(app: &App, job_type: &str, input: Value) -> JobId {
    app.submit(
        None,
        vec![SubmitParams {
            job_type: job_type.into(),
            input,
            ..SubmitParams::default()
        }],
    )
    .await
    .unwrap()[0]
        .job
        .id
}

async fn finished(app: &App, id: JobId) -> Job {
    let start = Instant::now();
    loop {
        let job = app.job(Access::All, id).await.unwrap();
        if job.status.is_terminal() {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "job {id} did not finish: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_job_and_the_engine_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _store) = start(dir.path()).await;
    let bad = submit(&app, "panics", json!({"panic": true})).await;
    let bad = finished(&app, bad).await;
    assert_eq!(bad.status.as_str(), "failed");
    assert_eq!(bad.attempt, 2, "a panic is a failed attempt and is retried");
    assert!(bad.error.unwrap().contains("handler exploded on purpose"));
    let good = submit(&app, "panics", json!({"panic": false})).await;
    let good = finished(&app, good).await;
    assert_eq!(good.status.as_str(), "succeeded");
    assert_eq!(good.output, Some(json!({"echo": {"panic": false}})));
    assert_eq!(good.progress.unwrap().message.as_deref(), Some("halfway"));
    let (_, log) = app.log(Access::All, good.id, 0, 1000).await.unwrap();
    assert_eq!(log.data, "from a handler\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_timeout_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _store) = start(dir.path()).await;
    let id = submit(&app, "sleeps", json!({})).await;
    let job = finished(&app, id).await;
    assert_eq!(job.status.as_str(), "failed");
    assert_eq!(job.error.as_deref(), Some("timed out after 200ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_of_a_vanished_worker_is_rescued_by_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = start(dir.path()).await;
    app.set_queue_paused(&crate::admin(), "default", true)
        .await
        .unwrap();
    let id = submit(&app, "noop", json!({})).await;
    // Another worker takes the job and vanishes without renewing its lease. The store's
    // pause flag is lifted behind the engine's back so only that worker can claim.
    store.queue_set_paused("default", false).await.unwrap();
    let now = app.now();
    let taken = store
        .job_claim(JobClaimParams {
            queue: "default".into(),
            job_types: vec!["noop".into()],
            limit: 1,
            queue_limit: 1,
            worker: "vanished".into(),
            now,
            lease_until: now + chrono::Duration::milliseconds(100),
            unanswered: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    app.set_queue_paused(&crate::admin(), "default", false)
        .await
        .unwrap();
    let job = finished(&app, id).await;
    assert_eq!(job.status.as_str(), "succeeded");
    assert_eq!(job.attempt, 2, "the lost attempt counted");
    assert_eq!(job.worker.as_deref(), Some("engine-test"));
    let events = store.event_list(0, Some(id), 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["submitted", "started", "rescued", "started", "succeeded"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_noop_jobs_all_run_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = start(dir.path()).await;
    let jobs = app
        .submit(
            None,
            (0..2000)
                .map(|n| SubmitParams {
                    job_type: "noop".into(),
                    input: json!({"n": n}),
                    ..SubmitParams::default()
                })
                .collect(),
        )
        .await
        .unwrap();
    finished(&app, jobs.last().unwrap().job.id).await;
    let start = Instant::now();
    loop {
        let stats = store.queue_stats(chrono::Utc::now()).await.unwrap();
        let default = stats.iter().find(|queue| queue.name == "default").unwrap();
        if default.succeeded == 2000 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{default:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = store.event_list(0, None, 100_000).await.unwrap();
    let started = events
        .iter()
        .filter(|event| event.kind.as_str() == "started")
        .count();
    assert_eq!(started, 2000, "every job started exactly once");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_ignores_its_stop_token_is_still_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _store) = start(dir.path()).await;
    let id = submit(&app, "stubborn", json!({})).await;
    let start = Instant::now();
    while app.job(Access::All, id).await.unwrap().status.as_str() != "running" {
        assert!(start.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.cancel(Access::All, id).await.unwrap();
    let job = finished(&app, id).await;
    assert_eq!(job.status.as_str(), "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_back_a_handler_that_ignores_its_stop_token() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = start(dir.path()).await;
    let id = submit(&app, "stubborn", json!({})).await;
    let start = Instant::now();
    while app.job(Access::All, id).await.unwrap().status.as_str() != "running" {
        assert!(start.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.shutdown().await;
    let job = store.job_get(id).await.unwrap().unwrap();
    assert_eq!(job.status.as_str(), "queued", "{job:?}");
    assert_eq!(job.worker, None);
}

#[tokio::test]
async fn a_config_naming_an_unregistered_handler_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml("[types.a]\nhandler = \"nosuch\"", &HashMap::new()).unwrap();
    let bus = Bus::default();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), bus.clone()).unwrap());
    let Err(error) = App::new(
        store,
        bus,
        Arc::new(config),
        Arc::new(SystemClock),
        handlers(),
        "engine-test".into(),
    ) else {
        panic!("the config was accepted");
    };
    assert_eq!(error.key, "types.a.handler");
    assert_eq!(
        error.to_string(),
        "config text, key `types.a.handler`: no handler named `nosuch` is registered; \
         registered handlers: arms, leaky, noop, panics, sleeps, splits, stubborn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_that_panicked_is_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(PanicsOnce {
        armed: AtomicBool::new(false),
        test_thread: std::thread::current().id(),
    });
    // No sweep while the test runs: the dispatcher alone reads the clock.
    let (app, _store) =
        start_with_clock(dir.path(), Arc::clone(&clock) as Arc<dyn Clock>, |config| {
            config.server.sweep_interval = Duration::from_secs(3600);
        })
        .await;
    app.set_queue_paused(&crate::admin(), "default", true)
        .await
        .unwrap();
    let id = submit(&app, "noop", json!({})).await;
    // Resuming wakes the dispatcher, whose first act is to read the clock.
    clock.armed.store(true, Ordering::SeqCst);
    app.set_queue_paused(&crate::admin(), "default", false)
        .await
        .unwrap();
    let job = finished(&app, id).await;
    assert!(
        !clock.armed.load(Ordering::SeqCst),
        "the clock never panicked"
    );
    assert_eq!(job.status.as_str(), "succeeded");
}

/// A server claimed a `once` job and died; its store is closed. Returns the claimed job.
async fn claim_and_die(dir: &std::path::Path, process_started: bool) -> Job {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir, Bus::default()).unwrap());
    let now = chrono::Utc::now();
    let job = store
        .job_insert_many(
            vec![runway_core::job::NewJob::new(
                "once",
                "default",
                json!({}),
                now,
            )],
            now,
        )
        .await
        .unwrap()
        .remove(0);
    let claimed = store
        .job_claim(JobClaimParams {
            queue: "default".into(),
            job_types: vec!["once".into()],
            limit: 1,
            queue_limit: 1,
            worker: "died".into(),
            now,
            lease_until: now + chrono::Duration::seconds(30),
            unanswered: Vec::new(),
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(claimed.id, job.id);
    if process_started {
        // A pid no process has: the attempt began, and its process is gone.
        let attempt = runway_core::store::AttemptRef {
            id: job.id,
            attempt: 1,
            worker: "died".into(),
        };
        assert!(store.job_pid_set(attempt, 999_999_999).await.unwrap());
    }
    claimed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_whose_process_never_started_does_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let claimed = claim_and_die(dir.path(), false).await;
    let (app, _store) = start(dir.path()).await;
    let job = finished(&app, claimed.id).await;
    assert_eq!(job.status.as_str(), "succeeded", "{job:?}");
    assert_eq!(
        job.attempt, 1,
        "the attempt that never began was not counted"
    );
    assert_eq!(job.runs, 2, "but the job knows it runs again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_attempt_job_lost_in_a_crash_fails_saying_how_to_run_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let claimed = claim_and_die(dir.path(), true).await;
    let (app, _store) = start(dir.path()).await;
    let job = finished(&app, claimed.id).await;
    assert_eq!(job.status.as_str(), "failed", "{job:?}");
    let error = job.error.unwrap();
    assert!(
        error.starts_with("attempt 1 of 1 was lost: the server stopped while it ran"),
        "{error}"
    );
    assert!(error.contains("retry it if that is safe"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_attempt_whose_pid_was_never_stored_is_found_by_its_markers() {
    let dir = tempfile::tempdir().unwrap();
    let claimed = claim_and_die(dir.path(), false).await;
    // The dead server had started the command but not yet stored its pid; another server
    // on this machine runs a job with the same id.
    let start_of = |data_dir: &std::path::Path| {
        std::process::Command::new("sleep")
            .arg("60")
            .env("RUNWAY_DATA_DIR", data_dir)
            .env("RUNWAY_JOB_ID", claimed.id.to_string())
            .env("RUNWAY_ATTEMPT", "1")
            .env("RUNWAY_RUN", "1")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let mut orphan = start_of(&std::fs::canonicalize(dir.path()).unwrap());
    let other_server = tempfile::tempdir().unwrap();
    let mut others = start_of(other_server.path());
    let (app, _store) = start(dir.path()).await;
    let job = finished(&app, claimed.id).await;
    assert_eq!(
        job.status.as_str(),
        "failed",
        "the attempt counted: {job:?}"
    );
    assert!(
        others.try_wait().unwrap().is_none(),
        "another server's job of the same id lives on"
    );
    others.kill().unwrap();
    others.wait().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(status) = orphan.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the orphan was ended");
    assert!(!status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_ends_though_its_handler_left_a_reporter_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _store) = start(dir.path()).await;
    let id = submit(&app, "leaky", json!({})).await;
    let job = finished(&app, id).await;
    assert_eq!(job.status.as_str(), "succeeded");
    assert_eq!(job.output, Some(json!({"left": "a task behind"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_that_keeps_panicking_fails_the_engine_instead_of_idling() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(PanicsOnce {
        armed: AtomicBool::new(false),
        test_thread: std::thread::current().id(),
    });
    let (app, _store) =
        start_with_clock(dir.path(), Arc::clone(&clock) as Arc<dyn Clock>, |config| {
            config.server.sweep_interval = Duration::from_secs(3600);
        })
        .await;
    let rearm = {
        let clock = Arc::clone(&clock);
        // A restarted dispatcher reads the clock first thing: keep it broken.
        tokio::spawn(async move {
            loop {
                clock.armed.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The submit reads the clock here, on the test's thread; the dispatcher it wakes does not.
    submit(&app, "noop", json!({})).await;
    let why = tokio::time::timeout(Duration::from_secs(30), app.failed())
        .await
        .expect("the engine gave up within 30 s");
    rearm.abort();
    assert!(why.contains("dispatcher panicked 5 times"), "{why}");
    assert!(why.contains("the clock broke on purpose"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_wrote_its_input_file_counts_though_its_pid_was_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let claimed = claim_and_die(dir.path(), false).await;
    // The command was about to start, or started and ended, before its pid was stored.
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::write(
        dir.path()
            .join("run")
            .join(format!("{}-1.input.json", claimed.id)),
        "{}",
    )
    .unwrap();
    let (app, _store) = start(dir.path()).await;
    let job = finished(&app, claimed.id).await;
    assert_eq!(
        job.status.as_str(),
        "failed",
        "the attempt counted: {job:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_spawns_children_and_its_job_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _store) = start(dir.path()).await;
    let id = submit(&app, "splits", json!({})).await;
    let job = finished(&app, id).await;
    assert_eq!(job.status.as_str(), "succeeded", "{:?}", job.error);
    assert_eq!(job.output, Some(json!({"spawned": 2, "same_again": true})));
    assert_eq!((job.children.total, job.children.succeeded), (2, 2));
    let children = app.children(Access::All, id, None, 10).await.unwrap();
    assert!(
        children
            .iter()
            .all(|child| child.status.is_terminal() && child.parent == Some(id))
    );
}

/// An admin, as the operations only admins may do ask for.
pub fn admin() -> runway_core::users::User {
    runway_core::users::User {
        id: runway_core::users::UserId(1),
        name: "admin".into(),
        role: runway_core::users::Role::Admin,
        created_at: runway_core::clock::micros_to_timestamp(0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_that_panics_after_its_handler_gives_back_the_slot_and_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(BreaksWhenArmed {
        test_thread: std::thread::current().id(),
    });
    let (app, _store) = start_with_clock(dir.path(), clock, |_| {}).await;
    let id = submit(&app, "arms", json!({})).await;
    // The first attempt's slot panics as it stores the outcome. Its job is left running with
    // a lease nobody renews, and the queue's only slot is free again: the sweep puts the job
    // back and it runs a second time.
    let job = finished(&app, id).await;
    assert_eq!(job.status.as_str(), "succeeded", "{job:?}");
    assert_eq!(job.attempt, 2, "{job:?}");
    assert!(
        !CLOCK_ARMED.load(Ordering::SeqCst),
        "the slot's reading broke"
    );
}
