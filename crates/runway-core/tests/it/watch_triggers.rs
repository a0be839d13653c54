//! Watch triggers across a restart, on a real store: what a crash leaves between submitting a
//! run and recording it.

use std::collections::HashMap;
use std::sync::Arc;

use runway_core::bus::Bus;
use runway_core::triggers::{TriggerPhase, TriggerView};
use runway_core::{App, Config, Store, SubmitParams, SystemClock};
use runway_sqlite::SqliteStore;
use serde_json::json;

fn config(dir: &std::path::Path) -> Config {
    let watched = dir.join("notes");
    std::fs::create_dir_all(&watched).unwrap();
    let text = format!(
        "[types.noop]\nhandler = \"noop\"\n\
         [triggers.notes]\nwatch = {watched:?}\ndebounce = \"50ms\"\ntype = \"noop\"\n"
    );
    let mut config = Config::from_toml(&text, &HashMap::new()).unwrap();
    config.server.data_dir = dir.join("data");
    config
}

/// Waits until the trigger's view passes `check`.
async fn view_until(app: &App, what: &str, check: impl Fn(&TriggerView) -> bool) -> TriggerView {
    crate::trigger_view_until(app, "notes", what, check).await
}

/// The server stopped after submitting a run and before recording it: the next start waits
/// for that run instead of starting a second one beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_submitted_but_not_recorded_is_waited_for_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let bus = Bus::default();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("data"), bus.clone()).unwrap());
    let app = App::new(
        Arc::clone(&store),
        bus,
        Arc::new(config),
        Arc::new(SystemClock),
        Vec::new(),
        "watch-test".into(),
    )
    .unwrap();
    // The run, as the first life submitted it: queued behind a paused queue, so it stays
    // unfinished; no record of it.
    app.set_queue_paused(&crate::admin(), "default", true)
        .await
        .unwrap();
    let orphan = app
        .submit(
            None,
            vec![SubmitParams {
                job_type: "noop".into(),
                input: json!({"trigger": "notes", "paths": ["a.org"]}),
                trigger: Some("notes".into()),
                ..SubmitParams::default()
            }],
        )
        .await
        .unwrap()[0]
        .job
        .id;
    app.start().await.unwrap();
    let view = view_until(&app, "the orphan adopted", |view| view.revision > 0).await;
    assert_eq!(view.phase, TriggerPhase::Running);
    assert_eq!(view.running_job, Some(orphan));
    // A change now stokes one more run instead of starting one beside it.
    std::fs::write(dir.path().join("notes/b.org"), "1").unwrap();
    view_until(&app, "stoked", |view| view.stoked()).await;
    assert_eq!(
        store.job_list_by_trigger("notes", 10).await.unwrap().len(),
        1
    );
    app.set_queue_paused(&crate::admin(), "default", false)
        .await
        .unwrap();
    let view = view_until(&app, "the one more run", |view| {
        view.last_job.is_some_and(|job| job != orphan)
    })
    .await;
    let jobs = store.job_list_by_trigger("notes", 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].id, view.last_job.unwrap());
    assert_eq!(jobs[0].input["paths"], json!(["b.org"]));
    app.shutdown().await;
}
