//! The engine on a real SQLite store, driven in-process: what cannot be set up through the
//! binary (handlers that panic, another worker's expired lease).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runway_core::handler::{Handler, JobCtx};
use runway_core::store::JobClaimParams;
use runway_core::{App, Config, Job, JobId, Store, SubmitParams, SystemClock};
use runway_sqlite::SqliteStore;
use serde_json::{Value, json};

struct Panics;

#[async_trait]
impl Handler for Panics {
    async fn run(&self, ctx: JobCtx) -> Result<Option<Value>, String> {
        if ctx.job.input["panic"] == true {
            panic!("handler exploded on purpose");
        }
        ctx.progress(0.5, Some("halfway".into()));
        ctx.log("from a handler");
        Ok(Some(json!({"echo": ctx.job.input})))
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
"#;

async fn start(dir: &std::path::Path) -> (App, Arc<dyn Store>) {
    let mut config = Config::from_toml(CONFIG, &HashMap::new()).unwrap();
    config.server.data_dir = dir.to_path_buf();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
    let handlers: Vec<(String, Arc<dyn Handler>)> = vec![
        ("panics".into(), Arc::new(Panics)),
        ("sleeps".into(), Arc::new(Sleeps)),
    ];
    let app = App::new(
        Arc::clone(&store),
        Arc::new(config),
        Arc::new(SystemClock),
        handlers,
        "engine-test".into(),
    );
    app.start().await.unwrap();
    (app, store)
}

async fn submit(app: &App, job_type: &str, input: Value) -> JobId {
    app.submit(vec![SubmitParams {
        job_type: job_type.into(),
        input,
        ..SubmitParams::default()
    }])
    .await
    .unwrap()[0]
        .id
}

async fn finished(app: &App, id: JobId) -> Job {
    let start = Instant::now();
    loop {
        let job = app.job(id).await.unwrap();
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
    let (_, log) = app.log(good.id, 0, 1000).await.unwrap();
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
    app.set_queue_paused("default", true).await.unwrap();
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
            worker: "vanished".into(),
            now,
            lease_until: now + chrono::Duration::milliseconds(100),
        })
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    app.set_queue_paused("default", false).await.unwrap();
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
    finished(&app, jobs.last().unwrap().id).await;
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
