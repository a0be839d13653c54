//! The SQLite store against the shared behavioural suite, plus what only SQLite has.

use std::sync::Arc;

use runway_core::Store;
use runway_core::bus::Bus;
use runway_sqlite::{OpenError, SqliteStore};

/// A fresh store in a temporary directory, removed when the test ends.
async fn open_store() -> (Arc<dyn Store>, Bus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::default();
    let store = SqliteStore::open(dir.path(), bus.clone()).unwrap();
    (Arc::new(store), bus, dir)
}

/// The shared behavioural suite, one test per scenario.
mod suite {
    runway_core::store_suite!(super::open_store);
}

#[tokio::test]
async fn a_data_directory_serves_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(dir.path(), runway_core::bus::Bus::default()).unwrap();
    match SqliteStore::open(dir.path(), runway_core::bus::Bus::default()) {
        Err(OpenError::Locked { .. }) => {}
        Err(other) => panic!("expected a lock error, got {other}"),
        Ok(_) => panic!("a second store opened the same directory"),
    }
    drop(first);
    SqliteStore::open(dir.path(), runway_core::bus::Bus::default())
        .expect("the lock is released with the store");
}

#[tokio::test]
async fn concurrent_writes_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), runway_core::bus::Bus::default()).unwrap());
    let now = runway_core::clock::micros_to_timestamp(1_700_000_000_000_000);
    let mut tasks = Vec::new();
    for n in 0..200 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let job = runway_core::job::NewJob::new("a", "q", serde_json::json!({"n": n}), now);
            store
                .job_insert_many(vec![job], now)
                .await
                .unwrap()
                .remove(0)
                .id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let stats = store.queue_stats(chrono::Utc::now()).await.unwrap();
    assert_eq!(stats[0].queued, 200);
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_directory_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&data, runway_core::bus::Bus::default()).unwrap());
    store.queue_set_paused("q", true).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    for name in [
        "runway.sqlite3",
        "runway.sqlite3-wal",
        "runway.sqlite3-shm",
        "runway.lock",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    drop(store);
    // A directory and files left readable by an older runway are tightened at the next open.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["runway.sqlite3", "runway.sqlite3-wal", "runway.sqlite3-shm"] {
        let path = data.join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let store = SqliteStore::open(&data, runway_core::bus::Bus::default()).unwrap();
    assert_eq!(mode(&data), 0o700);
    for name in ["runway.sqlite3", "runway.sqlite3-wal", "runway.sqlite3-shm"] {
        let path = data.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    drop(store);
}

/// A database of the schema before kept counts and the trigram index, holding jobs: opening it
/// counts and indexes them, so they are counted and found like jobs submitted after.
#[tokio::test]
async fn an_older_database_gets_its_jobs_counted_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(runway_sqlite::DATABASE_FILE);
    let before: [&str; 7] = [
        include_str!("../../migrations/0001_init.sql"),
        include_str!("../../migrations/0002_web_sessions.sql"),
        include_str!("../../migrations/0003_finished_index.sql"),
        include_str!("../../migrations/0004_log_lost_and_runs.sql"),
        include_str!("../../migrations/0005_idempotency_keys.sql"),
        include_str!("../../migrations/0006_job_trees.sql"),
        include_str!("../../migrations/0007_artifacts.sql"),
    ];
    {
        let connection = rusqlite::Connection::open(&file).unwrap();
        for migration in before {
            connection.execute_batch(migration).unwrap();
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 7;
                 INSERT INTO jobs (job_type, queue, status, input, max_attempts, created_at, run_at)
                 VALUES ('render', 'gpu', 'succeeded', '{\"scene\":\"Forest\"}', 1, 1, 1),
                        ('render', 'gpu', 'queued', '{\"scene\":\"desert\"}', 1, 2, 2),
                        ('mail', 'default', 'failed', '{\"to\":\"someone\"}', 1, 3, 3);",
            )
            .unwrap();
    }
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), runway_core::bus::Bus::default()).unwrap());
    let count = |statuses: Vec<runway_core::JobStatus>, queues: Vec<String>| {
        let store = Arc::clone(&store);
        async move {
            store
                .job_count(runway_core::store::JobListParams {
                    statuses,
                    queues,
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(count(vec![], vec![]).await, 3);
    assert_eq!(count(vec![], vec!["gpu".into()]).await, 2);
    assert_eq!(count(vec![runway_core::JobStatus::Failed], vec![]).await, 1);
    let found = store
        .job_list(runway_core::store::JobListParams {
            search: runway_core::store::JobSearch::new("forest"),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "an old job is found by its input");
    assert_eq!(found[0].input["scene"], "Forest");
    let stats = store
        .queue_stats(runway_core::clock::micros_to_timestamp(10))
        .await
        .unwrap();
    let gpu = stats.iter().find(|queue| queue.name == "gpu").unwrap();
    assert_eq!((gpu.queued, gpu.succeeded), (1, 1));
}

/// The writer skips the schema's CHECKs (their `IN (…)` lists cost every write a temporary
/// b-tree) because it writes those columns only from core's enums: every value of each enum
/// must pass the checks a connection that enforces them applies.
#[test]
fn every_value_the_writer_leaves_unchecked_passes_the_schemas_checks() {
    use runway_core::job::{ChildFailure, JobStatus, Phase};
    use runway_core::users::Role;
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), Bus::default()).unwrap());
    let mut connection =
        rusqlite::Connection::open(dir.path().join(runway_sqlite::DATABASE_FILE)).unwrap();
    let tx = connection.transaction().unwrap();
    let insert_job = |status: &str, phase: &str, on_child_failure: &str| {
        tx.execute(
            "INSERT INTO jobs (job_type, queue, status, priority, input, max_attempts,
                 created_at, run_at, depth, phase, tree_join, on_child_failure)
             VALUES ('a', 'q', ?1, 0, '{}', 1, 0, 0, 0, ?2, 0, ?3)",
            rusqlite::params![status, phase, on_child_failure],
        )
    };
    // Each list passes through a `match` without a catch-all: a new variant stops this test
    // from compiling, so whoever adds one comes here to list it.
    let phases = [Phase::Run, Phase::Join].map(|phase| match phase {
        Phase::Run | Phase::Join => phase,
    });
    let failures = [ChildFailure::FailFast, ChildFailure::WaitAll].map(|failure| match failure {
        ChildFailure::FailFast | ChildFailure::WaitAll => failure,
    });
    let roles = [Role::Admin, Role::Member].map(|role| match role {
        Role::Admin | Role::Member => role,
    });
    for status in JobStatus::ALL {
        for phase in phases {
            for failure in failures {
                insert_job(status.as_str(), phase.as_str(), failure.as_str()).unwrap();
            }
        }
    }
    for (index, role) in roles.into_iter().enumerate() {
        tx.execute(
            "INSERT INTO users (name, role, created_at) VALUES (?1, ?2, 0)",
            rusqlite::params![format!("user{index}"), role.as_str()],
        )
        .unwrap();
    }
    // The checks hold on this connection: a value outside them is refused.
    let refused = insert_job("paused", "run", "fail_fast").unwrap_err();
    assert!(
        refused.to_string().contains("CHECK constraint failed"),
        "{refused}"
    );
}
