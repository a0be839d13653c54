//! (k) Several servers on one PostgreSQL database (`RUNWAY_BENCH_DATABASE`): no-op jobs run by
//! one server and by two sharing the queue, and how long a change made on one takes to reach a
//! live feed on the other (back to back, and after a quiet spell).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use runway_api::{FeedMessage, SubmitJobRequest};
use runway_client::{Client, UpdatesQuery};
use serde_json::json;

use crate::{percentile, print, start_server_on, submit_and_run};

/// Two servers with eight slots each on a queue of sixteen.
const CONFIG: &str = r#"
[server]
body_limit = 33554432

[queues.default]
concurrency = 16
server_concurrency = 8

[types.noop]
handler = "noop"
max_attempts = 1
"#;

/// A database of its own on the server `RUNWAY_BENCH_DATABASE` names, dropped with it.
pub(crate) struct BenchDatabase {
    admin: String,
    name: String,
    pub(crate) url: String,
}

/// The PostgreSQL server `--database` named.
static DATABASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Runs every server on a database of its own on the PostgreSQL server at `url`.
pub(crate) fn use_database(url: String) {
    let _ = DATABASE.set(url);
}

/// The PostgreSQL server to run on: `--database`, or `RUNWAY_BENCH_DATABASE`.
fn admin_url() -> Option<String> {
    DATABASE
        .get()
        .cloned()
        .or_else(|| std::env::var("RUNWAY_BENCH_DATABASE").ok())
        .filter(|url| !url.is_empty())
}

impl BenchDatabase {
    /// A new database when the benchmark runs on PostgreSQL.
    pub(crate) async fn from_env() -> Result<Option<BenchDatabase>> {
        match admin_url() {
            Some(admin) => Ok(Some(BenchDatabase::create(&admin).await?)),
            None => Ok(None),
        }
    }

    async fn create(admin: &str) -> Result<BenchDatabase> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "runway_bench_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        execute(admin, &format!("CREATE DATABASE {name}")).await?;
        let (base, query) = admin
            .split_once('?')
            .map_or((admin, None), |(base, query)| (base, Some(query)));
        let base = &base[..base.rfind('/').context("a URL with a database")?];
        let url = match query {
            Some(query) => format!("{base}/{name}?{query}"),
            None => format!("{base}/{name}"),
        };
        Ok(BenchDatabase {
            admin: admin.to_string(),
            name,
            url,
        })
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let (admin, sql) = (
            self.admin.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        // From a thread of its own: the benchmark's runtime may be the caller.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(execute(&admin, &sql)))
        })
        .join();
    }
}

async fn execute(url: &str, sql: &str) -> Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

pub(crate) async fn run() -> Result<()> {
    let Some(admin) = admin_url() else {
        bail!(
            "runway-bench servers needs --database postgres://… (a server where it may create databases)"
        );
    };
    // One server alone on the database.
    {
        let database = Arc::new(BenchDatabase::create(&admin).await?);
        let (one, _) = start_server_on(tempfile::tempdir()?, CONFIG, Some(database)).await?;
        let client = Client::new(&one.url, Some(one.token.clone()));
        let rates = submit_and_run(&client, 20_000).await?;
        print(json!({
            "figure": "k_one_server_submit_batched", "jobs": rates.jobs, "jobs_per_sec": rates.submit
        }));
        print(json!({
            "figure": "k_one_server_run_noop", "jobs": rates.jobs, "slots": 8,
            "jobs_per_sec": rates.run
        }));
    }
    // Two on one database: submitted to the first, run by both.
    let database = Arc::new(BenchDatabase::create(&admin).await?);
    let (a, _) = start_server_on(tempfile::tempdir()?, CONFIG, Some(Arc::clone(&database))).await?;
    let (b, _) = start_server_on(tempfile::tempdir()?, CONFIG, Some(Arc::clone(&database))).await?;
    let on_a = Client::new(&a.url, Some(a.token.clone()));
    let on_b = Client::new(&b.url, Some(a.token.clone()));
    let rates = submit_and_run(&on_a, 20_000).await?;
    print(json!({
        "figure": "k_two_servers_run_noop", "jobs": rates.jobs, "slots": 16,
        "jobs_per_sec": rates.run
    }));

    // A submit on B, heard on A's live feed: the time from B's answer to A's frame; and, to
    // compare, a submit on A heard on A's own. Back to back, each submit follows the frame of
    // the one before, so it waits for the next tick (at most one frame per `live_tick`); after
    // a quiet spell longer than the tick, it goes out at once, which is the path across
    // servers itself.
    on_a.pause_queue("default").await?;
    for (figure, submitter, quiet) in [
        ("k_cross_server_live", &on_b, Duration::ZERO),
        ("k_same_server_live", &on_a, Duration::ZERO),
        ("k_cross_server_live_after_quiet", &on_b, QUIET),
        ("k_same_server_live_after_quiet", &on_a, QUIET),
    ] {
        let latencies = heard_on(&on_a, submitter, 300, quiet).await?;
        print(json!({
            "figure": figure, "submits": latencies.len(),
            "quiet_ms": quiet.as_millis(),
            "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99)
        }));
    }
    drop((a, b));
    Ok(())
}

/// Longer than the default `live_tick` (50 ms): a change after it is a lone change.
const QUIET: Duration = Duration::from_millis(80);

/// Milliseconds from each of `count` submits' answers on `submitter` to the frame carrying
/// the job on a live feed of `listener`, sorted; `quiet` passes before each submit.
async fn heard_on(
    listener: &Client,
    submitter: &Client,
    count: usize,
    quiet: Duration,
) -> Result<Vec<f64>> {
    let mut feed = listener.updates(&UpdatesQuery::default()).await?;
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        tokio::time::sleep(quiet).await;
        let request = SubmitJobRequest {
            job_type: "noop".into(),
            input: json!({"n": n}),
            ..Default::default()
        };
        let id = submitter.submit(&request).await?.id;
        let answered = Instant::now();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), feed.next())
                .await
                .context("the feed heard nothing for 10 s")?
                .context("the feed closed")??;
            if let FeedMessage::Frame(frame) = message
                && frame.jobs.iter().any(|update| update.job_id == id)
            {
                break;
            }
        }
        latencies.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}
