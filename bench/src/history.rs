//! (f) A large history: N finished jobs (100,000 by default; `--jobs N`), spread over the last
//! 30 days and written straight into a fresh database the way runway stores them, then the
//! reads the dashboard makes, timed over HTTP: the first page, a deep page, status filters,
//! searches, counts and the queue view (the median and the slowest of 20 requests each). Also
//! the engine's submit and run rates on that database beside an empty one.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use runway_client::{Client, ListJobs};
use rusqlite::params;
use serde_json::json;

use crate::{percentile, print, start_server, start_server_in, submit_and_run};

const RUNS: usize = 20;
/// Jobs submitted and run to compare the engine's rates with and without the history.
const BURST: u64 = 20_000;
/// How far back the history reaches.
const HISTORY_DAYS: i64 = 30;

pub async fn run(jobs: u64) -> Result<()> {
    let empty = {
        let (server, _) = start_server().await?;
        let client = Client::new(&server.url, Some(server.token.clone()));
        submit_and_run(&client, BURST).await?
    };

    let dir = tempfile::tempdir()?;
    let written = Instant::now();
    write_history(&dir.path().join("data"), jobs)?;
    print(json!({
        "figure": "f_history_written", "jobs": jobs,
        "seconds": written.elapsed().as_secs_f64()
    }));
    let (server, ready) = start_server_in(dir).await?;
    print(json!({
        "figure": "f_start_with_history", "jobs": jobs, "ms": ready.as_secs_f64() * 1000.0
    }));
    let client = Client::new(&server.url, Some(server.token.clone()));
    let middle = client
        .list_jobs(&ListJobs {
            limit: Some(1),
            ..Default::default()
        })
        .await?
        .jobs[0]
        .id
        .parse::<u64>()?
        - jobs / 2;

    let first = ListJobs {
        limit: Some(100),
        ..Default::default()
    };
    let with = |change: fn(&mut ListJobs)| {
        let mut filters = first.clone();
        change(&mut filters);
        filters
    };
    let deep = ListJobs {
        cursor: Some(middle.to_string()),
        ..first.clone()
    };
    let ago = |hours: i64| (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339();
    let (hour_ago, day_ago) = (ago(1), ago(24));
    let reads = [
        ("f_first_page", Read::List(first.clone())),
        ("f_deep_page", Read::List(deep)),
        (
            "f_status_succeeded",
            Read::List(with(|f| f.status = Some("succeeded".into()))),
        ),
        (
            "f_status_failed",
            Read::List(with(|f| f.status = Some("failed".into()))),
        ),
        (
            "f_status_running",
            Read::List(with(|f| f.status = Some("running".into()))),
        ),
        (
            "f_search_rare",
            Read::List(with(|f| f.q = Some("clip-77777\"".into()))),
        ),
        (
            "f_search_common",
            Read::List(with(|f| f.q = Some("clip-7".into()))),
        ),
        (
            "f_search_none",
            Read::List(with(|f| f.q = Some("no such text".into()))),
        ),
        ("f_count_all", Read::Count(ListJobs::default())),
        (
            "f_count_failed",
            Read::Count(ListJobs {
                status: Some("failed".into()),
                ..Default::default()
            }),
        ),
        (
            "f_count_search_rare",
            Read::Count(ListJobs {
                q: Some("clip-77777\"".into()),
                ..Default::default()
            }),
        ),
        ("f_queues", Read::Queues),
        (
            "f_sort_duration",
            Read::List(with(|f| f.sort = Some(runway_api::JobSortField::Duration))),
        ),
        (
            "f_sort_duration_last_day",
            Read::List(ListJobs {
                sort: Some(runway_api::JobSortField::Duration),
                finished_after: Some(day_ago.clone()),
                ..first.clone()
            }),
        ),
        (
            "f_sort_finished_asc",
            Read::List(with(|f| {
                f.sort = Some(runway_api::JobSortField::Finished);
                f.order = Some(runway_api::SortOrder::Asc);
            })),
        ),
        (
            "f_finished_last_hour",
            Read::List(ListJobs {
                finished_after: Some(hour_ago.clone()),
                ..first.clone()
            }),
        ),
        (
            "f_count_finished_last_day",
            Read::Count(ListJobs {
                finished_after: Some(day_ago.clone()),
                ..Default::default()
            }),
        ),
        ("f_queue_history_1h", Read::History("1h")),
        ("f_queue_history_24h", Read::History("24h")),
        ("f_queue_history_7d", Read::History("7d")),
    ];
    for (figure, read) in reads {
        let mut millis = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            read.once(&client).await?;
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        millis.sort_by(f64::total_cmp);
        print(json!({
            "figure": figure, "jobs": jobs, "runs": RUNS,
            "ms_median": percentile(&millis, 0.5), "ms_max": millis[RUNS - 1]
        }));
    }

    let full = submit_and_run(&client, BURST).await?;
    print(json!({
        "figure": "f_engine_with_history", "jobs": jobs, "burst": BURST,
        "submit_per_sec_empty": empty.submit, "submit_per_sec_with_history": full.submit,
        "submit_ratio": full.submit / empty.submit,
        "run_per_sec_empty": empty.run, "run_per_sec_with_history": full.run,
        "run_ratio": full.run / empty.run,
    }));
    Ok(())
}

/// One of the dashboard's reads.
enum Read {
    List(ListJobs),
    Count(ListJobs),
    Queues,
    /// The `default` queue's history over a range.
    History(&'static str),
}

impl Read {
    async fn once(&self, client: &Client) -> Result<()> {
        match self {
            Read::List(filters) => drop(client.list_jobs(filters).await?),
            Read::Count(filters) => drop(client.count_jobs(filters).await?),
            Read::Queues => drop(client.queues().await?),
            Read::History(range) => drop(client.queue_history("default", range).await?),
        }
        Ok(())
    }
}

/// Writes `jobs` finished no-op jobs into a new database at `data`, as runway stores them:
/// oldest first, one in fifty failed, ended evenly over the last `HISTORY_DAYS` days. Their
/// events are left out, as the default event retention would have pruned most of them.
fn write_history(data: &Path, jobs: u64) -> Result<()> {
    drop(runway_sqlite::SqliteStore::open(
        data,
        runway_core::bus::Bus::default(),
    )?);
    let mut connection = rusqlite::Connection::open(data.join(runway_sqlite::DATABASE_FILE))?;
    connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let now = chrono::Utc::now().timestamp_micros();
    let span = HISTORY_DAYS * 86_400 * 1_000_000;
    for start in (0..jobs).step_by(10_000) {
        let tx = connection.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO jobs (job_type, queue, status, input, error, max_attempts, attempt,
                     runs, created_at, run_at, started_at, finished_at, worker)
                 VALUES ('noop', 'default', ?1, ?2, ?3, 1, 1, 1, ?4, ?4, ?5, ?6, 'bench')",
            )?;
            for n in start..(start + 10_000).min(jobs) {
                let finished = now - span + span * n as i64 / jobs as i64;
                let failed = n % 50 == 49;
                insert.execute(params![
                    if failed { "failed" } else { "succeeded" },
                    json!({"clip": format!("clip-{n}"), "fps": 24}).to_string(),
                    failed.then_some("exit status 1"),
                    finished - 2_000,
                    finished - 1_000,
                    finished,
                ])?;
            }
        }
        tx.commit()?;
    }
    // The counts of finished jobs and the search index, as the store keeps them for every job
    // it inserts.
    connection.execute(
        "INSERT INTO job_counts (queue, job_type, status, root, count)
         SELECT queue, job_type, status, parent_id IS NULL, count(*) FROM jobs
         WHERE status IN ('succeeded', 'failed', 'cancelled') GROUP BY 1, 2, 3, 4",
        [],
    )?;
    connection.execute(
        "INSERT INTO job_text (rowid, text) SELECT id, job_type || char(10) || input FROM jobs",
        [],
    )?;
    Ok(())
}
