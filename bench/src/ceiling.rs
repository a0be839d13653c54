//! (i) SQLite's own ceiling on this machine: the writes runway makes per job, made by a bare
//! rusqlite program on runway's schema (the same migrations) with the same pragmas, in batched
//! transactions and nothing else (no HTTP, no engine, no threads). runway's figures (a) divided
//! by these say how close to the storage's limit the engine runs.
//!
//! Per job: the submit inserts the row and its `submitted` event (transactions of 1,000 under
//! `synchronous = FULL`, as a batch submit); the run updates it to running with its `started`
//! event, then to succeeded with its `succeeded` event and the count of finished jobs
//! (`synchronous = NORMAL`, as runner writes), in transactions of 8 jobs (what concurrency 8
//! gives the writer at most) and of 1,000. The search index is left out.

use std::time::Instant;

use anyhow::Result;
use rusqlite::{Connection, params};
use serde_json::json;

use crate::print;

const JOBS: i64 = 20_000;

pub fn run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    drop(runway_sqlite::SqliteStore::open(
        dir.path(),
        runway_core::bus::Bus::default(),
    )?);
    let mut connection = Connection::open(dir.path().join(runway_sqlite::DATABASE_FILE))?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536;
         PRAGMA ignore_check_constraints = ON;",
    )?;

    let started = Instant::now();
    for batch in 0..JOBS / 1000 {
        let tx = connection.transaction()?;
        for n in 0..1000 {
            tx.prepare_cached(
                "INSERT INTO jobs (job_type, queue, status, priority, input, max_attempts,
                     created_at, run_at, depth, phase, tree_join, on_child_failure)
                 VALUES ('noop', 'default', 'queued', 0, ?1, 1, ?2, ?2, 0, 'run', 0,
                     'fail_fast')",
            )?
            .execute(params![json!({"n": batch * 1000 + n}).to_string(), now()])?;
            event(&tx, tx.last_insert_rowid(), "submitted", "queued")?;
        }
        tx.commit()?;
    }
    let submit = started.elapsed().as_secs_f64();

    connection.execute_batch("PRAGMA synchronous = NORMAL;")?;
    let mut rates = Vec::new();
    for (per_transaction, first) in [(8, 1), (1000, JOBS / 2 + 1)] {
        let jobs = JOBS / 2;
        let started = Instant::now();
        let mut id = first;
        while id < first + jobs {
            let tx = connection.transaction()?;
            for _ in 0..per_transaction.min(first + jobs - id) {
                tx.prepare_cached(
                    "UPDATE jobs SET status = 'running', attempt = 1, runs = 1, started_at = ?2,
                         lease_until = ?2, worker = 'w' WHERE id = ?1 AND status = 'queued'",
                )?
                .execute(params![id, now()])?;
                event(&tx, id, "started", "running")?;
                tx.prepare_cached(
                    "UPDATE jobs SET status = 'succeeded', finished_at = ?2, lease_until = NULL
                     WHERE id = ?1 AND status = 'running' AND attempt = 1 AND worker = 'w'",
                )?
                .execute(params![id, now()])?;
                tx.prepare_cached(
                    "INSERT INTO job_counts (queue, job_type, status, root, count)
                     VALUES ('default', 'noop', 'succeeded', 1, 1)
                     ON CONFLICT (queue, job_type, status, root) DO UPDATE SET count = count + 1",
                )?
                .execute([])?;
                event(&tx, id, "succeeded", "succeeded")?;
                id += 1;
            }
            tx.commit()?;
        }
        rates.push(jobs as f64 / started.elapsed().as_secs_f64());
    }
    print(json!({
        "figure": "i_sqlite_ceiling", "jobs": JOBS,
        "submit_per_sec_batches_of_1000": JOBS as f64 / submit,
        "run_per_sec_transactions_of_8": rates[0],
        "run_per_sec_transactions_of_1000": rates[1],
    }));
    Ok(())
}

fn event(tx: &rusqlite::Transaction, job: i64, kind: &str, status: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (job_id, at, kind, status, data) VALUES (?1, ?2, ?3, ?4, '{}')",
    )?
    .execute(params![job, now(), kind, status])?;
    Ok(())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
