//! The SQLite store against the shared behavioural suite, plus what only SQLite has.

use std::sync::Arc;

use runway_core::Store;
use runway_sqlite::{OpenError, SqliteStore};

/// A fresh store in a temporary directory, removed when the test ends.
async fn open_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (Arc::new(store), dir)
}

/// The shared behavioural suite, one test per scenario.
mod suite {
    runway_core::store_suite!(super::open_store);
}

#[tokio::test]
async fn a_data_directory_serves_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(dir.path()).unwrap();
    match SqliteStore::open(dir.path()) {
        Err(OpenError::Locked { .. }) => {}
        Err(other) => panic!("expected a lock error, got {other}"),
        Ok(_) => panic!("a second store opened the same directory"),
    }
    drop(first);
    SqliteStore::open(dir.path()).expect("the lock is released with the store");
}

#[tokio::test]
async fn concurrent_writes_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
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
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data).unwrap());
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
    let store = SqliteStore::open(&data).unwrap();
    assert_eq!(mode(&data), 0o700);
    for name in ["runway.sqlite3", "runway.sqlite3-wal", "runway.sqlite3-shm"] {
        let path = data.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    drop(store);
}
