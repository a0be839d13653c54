//! runway's foundation benchmark: starts the real `runway serve` (release build) on a temp
//! data directory and prints one JSON line per figure. See bench/RESULTS.md.
//!
//! Run: `cargo build --release -p runway -p runway-bench && target/release/runway-bench`
//! (`RUNWAY_BIN` overrides the server binary). `runway-bench fanout` runs the live fan-out
//! figures (e) for feed and session clients, which take a few minutes (`runway-bench fanout
//! feed 0 1 1000` measures chosen client counts of one kind); `runway-bench history [--jobs N]` times the dashboard's reads
//! over N finished jobs (100,000 by default) and the engine's rates beside an empty database (f); `runway-bench abuse` the server's memory under idle and keep-alive
//! connections and a job that prints 1 GB (g); `runway-bench tree` a parent spawning 10,000
//! no-op children and the time from its last child's end to its join (h); `runway-bench
//! ceiling` what bare SQLite does with the same writes on this machine (i); `runway-bench
//! watch` how long `runway watch` takes to watch 50,000 files and from a write to its run (j);
//! `runway-bench servers` two servers on one PostgreSQL database (k); `runway-bench slots` the
//! no-op run of (a) at concurrency 64 and 512; `runway-bench paths` (a) with inputs of paths
//! (about 250 bytes) at concurrency 8 and 512; `runway-bench --database URL pg-ceiling` what bare
//! PostgreSQL does with runway's writes and with a minimal queue's on this machine (l).
//!
//! `--database postgres://…` (or `RUNWAY_BENCH_DATABASE`; a server where databases may be
//! created) runs every server on PostgreSQL instead, each on a database of its own; `servers`
//! needs it.

mod abuse;
mod ceiling;
mod fanout;
mod history;
mod pg_ceiling;
mod servers;
mod tree;
mod watch;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use runway_api::{SubmitBatchRequest, SubmitJobRequest};
use runway_client::{Client, ListJobs};
use serde_json::json;

const CONFIG: &str = r#"
[server]
body_limit = 33554432
max_connections = 12000
max_websockets = 10000

[queues.default]
concurrency = 8

[types.noop]
handler = "noop"
max_attempts = 1

[types.true]
command = ["true"]
max_attempts = 1

[queues.parents]
concurrency = 4

[types.fan]
command = ["python3", "-c", '''
import json, os, sys
if os.environ["RUNWAY_PHASE"] == "run":
    count = json.load(sys.stdin)["children"]
    print("::runway " + json.dumps({"spawn": [{"type": "noop"}] * count}), flush=True)
''']
queue = "parents"
join = true
max_attempts = 1
"#;

struct Server {
    pub(crate) child: Child,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
    /// Dropped after the process is gone (fields drop after `drop`).
    _database: Option<std::sync::Arc<servers::BenchDatabase>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runway_binary() -> PathBuf {
    std::env::var_os("RUNWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/runway")
        })
}

/// Starts `runway serve`; returns it and the time from spawn to its first healthy answer.
async fn start_server() -> Result<(Server, Duration)> {
    start_server_in(tempfile::tempdir()?).await
}

/// Starts `runway serve` on `dir/data`, which may hold a database already.
async fn start_server_in(dir: tempfile::TempDir) -> Result<(Server, Duration)> {
    start_server_with(dir, CONFIG).await
}

/// Starts `runway serve` with `config` as `dir/runway.toml` (relative paths in it are under
/// `dir`).
async fn start_server_with(dir: tempfile::TempDir, config: &str) -> Result<(Server, Duration)> {
    let database = servers::BenchDatabase::from_env()
        .await?
        .map(std::sync::Arc::new);
    start_server_on(dir, config, database).await
}

/// Starts `runway serve` like `start_server_with`, on `database` when given (several servers
/// may share one; the first to start prints the token).
async fn start_server_on(
    dir: tempfile::TempDir,
    config: &str,
    database: Option<std::sync::Arc<servers::BenchDatabase>>,
) -> Result<(Server, Duration)> {
    std::fs::write(dir.path().join("runway.toml"), config)?;
    let binary = runway_binary();
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("runway.toml"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(
            database
                .iter()
                .flat_map(|database| ["--database".to_string(), database.url.clone()]),
        )
        .env_remove("RUNWAY_DATABASE")
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .env("RUNWAY_LOG", "warn")
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {}; build it with cargo build --release -p runway",
                binary.display()
            )
        })?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let (mut url, mut token) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("  rwy_") {
            token = format!("rwy_{rest}");
        }
        if let Some(rest) = line.strip_prefix("runway listening on ") {
            url = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    if url.is_empty() {
        bail!("runway serve exited before listening");
    }
    let client = Client::new(&url, None);
    while client.health().await.is_err() {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let ready = started.elapsed();
    Ok((
        Server {
            child,
            url,
            token,
            _dir: dir,
            _database: database,
        },
        ready,
    ))
}

fn print(figure: serde_json::Value) {
    println!("{figure}");
}

async fn succeeded(client: &Client) -> Result<u64> {
    let ended = ListJobs {
        status: Some("succeeded,failed".into()),
        ..ListJobs::default()
    };
    Ok(client.count_jobs(&ended).await?)
}

/// Waits until `total` jobs have ended. Asks every 25 ms for the count of ended jobs, which
/// both stores answer from their kept counts. (Until 2026-11-29 it read the queue view, which
/// also sorts the last ten minutes' ends: on PostgreSQL about 9 ms of the database's time per
/// ask, a third of a core taken from the engine being measured.)
async fn wait_for_done(client: &Client, total: u64) -> Result<()> {
    while succeeded(client).await? < total {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

/// (a) 20,000 no-op jobs submitted in batches of 1,000 (answered with ids only), then run at
/// concurrency 8.
async fn noop_throughput() -> Result<()> {
    let (server, _) = start_server().await?;
    let client = Client::new(&server.url, Some(server.token.clone()));
    let rates = submit_and_run(&client, 20_000).await?;
    print(json!({
        "figure": "a_submit_batched", "jobs": rates.jobs, "batch": 1000,
        "jobs_per_sec": rates.submit, "target_jobs_per_sec": 100_000
    }));
    print(json!({
        "figure": "a_run_noop", "jobs": rates.jobs, "concurrency": 8,
        "jobs_per_sec": rates.run, "target_jobs_per_sec": 50_000
    }));
    Ok(())
}

/// A server whose default queue runs `concurrency` jobs at once, and a client of it.
async fn start_server_of_concurrency(concurrency: u32) -> Result<(Server, Client)> {
    let config = CONFIG.replace(
        "[queues.default]\nconcurrency = 8\n",
        &format!("[queues.default]\nconcurrency = {concurrency}\n"),
    );
    let (server, _) = start_server_with(tempfile::tempdir()?, &config).await?;
    let client = Client::new(&server.url, Some(server.token.clone()));
    Ok((server, client))
}

/// (a) again with more slots: the same burst at concurrency 64 and 512. At 8, a write carries
/// at most the 8 outcomes and claims of slots that ended together, so the run rate says how
/// long the slots' cycle takes; with more slots a write carries more jobs, and the rate
/// approaches what the store's writer can do per job.
async fn noop_by_concurrency() -> Result<()> {
    for concurrency in [64, 512] {
        let (_server, client) = start_server_of_concurrency(concurrency).await?;
        let rates = submit_and_run(&client, 20_000).await?;
        print(json!({
            "figure": "a_run_noop", "jobs": rates.jobs, "concurrency": concurrency,
            "jobs_per_sec": rates.run
        }));
    }
    Ok(())
}

/// How fast a server took and ran a burst of no-op jobs.
struct Rates {
    jobs: u64,
    submit: f64,
    run: f64,
}

/// Submits `total` no-op jobs into the paused default queue in batches of 1,000 from four
/// clients, then resumes it and waits until they have ended; jobs that ended before count as a
/// base.
async fn submit_and_run(client: &Client, total: u64) -> Result<Rates> {
    submit_and_run_with(client, total, |n| json!({ "n": n })).await
}

/// A transcode's input, as a user's job would carry it: paths and a preset, about 250 bytes,
/// each job's its own (so their trigrams are too).
pub(crate) fn transcode_input(n: u64) -> serde_json::Value {
    let hash = |salt: u64| {
        format!(
            "{:032x}",
            (u128::from(n) * 0x9e37_79b9 + u128::from(salt)).wrapping_mul(0x5851_f42d_4c95_7f2d)
        )
    };
    json!({
        "n": n,
        "source": format!("/srv/media/projects/{}/footage/reel-{}/take-{}.mov", hash(1), n % 97, hash(2)),
        "preset": format!("h265-{}", hash(3)),
        "out": format!("/srv/media/out/{}.mp4", hash(4)),
    })
}

/// (a) with transcode-sized inputs (`transcode_input`): the submit, and the run at concurrency
/// 8 and 512. The search index holds each job's trigrams, which an input of paths has by the
/// hundred.
async fn noop_with_transcode_inputs() -> Result<()> {
    for concurrency in [8, 512] {
        let (_server, client) = start_server_of_concurrency(concurrency).await?;
        let rates = submit_and_run_with(&client, 20_000, transcode_input).await?;
        print(json!({
            "figure": "a_transcode_inputs", "jobs": rates.jobs, "concurrency": concurrency,
            "input_bytes": transcode_input(0).to_string().len(),
            "submit_jobs_per_sec": rates.submit, "run_jobs_per_sec": rates.run
        }));
    }
    Ok(())
}

/// `submit_and_run` with the input `input` gives each job by its number.
async fn submit_and_run_with(
    client: &Client,
    total: u64,
    input: fn(u64) -> serde_json::Value,
) -> Result<Rates> {
    let ended_before = succeeded(client).await?;
    client.pause_queue("default").await?;
    let batches: Vec<SubmitBatchRequest> = (0..total / 1000)
        .map(|batch| SubmitBatchRequest {
            jobs: (0..1000)
                .map(|n| SubmitJobRequest {
                    job_type: "noop".into(),
                    input: input(batch * 1000 + n),
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in batches.chunks(batches.len().div_ceil(4)) {
        let client = client.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for batch in chunk {
                client.submit_batch_ids(&batch).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let submit = started.elapsed();
    let started = Instant::now();
    client.resume_queue("default").await?;
    wait_for_done(client, ended_before + total).await?;
    let run = started.elapsed();
    Ok(Rates {
        jobs: total,
        submit: total as f64 / submit.as_secs_f64(),
        run: total as f64 / run.as_secs_f64(),
    })
}

/// (b) 1,000 jobs of `true` at concurrency 8, against the fork/exec ceiling measured here.
async fn true_throughput() -> Result<()> {
    let total = 1000;
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..total {
        if running.len() == 8 {
            running.join_next().await.context("join")???;
        }
        running.spawn(async {
            let status = tokio::process::Command::new("true").status().await?;
            anyhow::ensure!(status.success(), "true failed");
            anyhow::Ok(())
        });
    }
    while let Some(result) = running.join_next().await {
        result??;
    }
    let ceiling = total as f64 / started.elapsed().as_secs_f64();

    let (server, _) = start_server().await?;
    let client = Client::new(&server.url, Some(server.token.clone()));
    client.pause_queue("default").await?;
    client
        .submit_batch(&SubmitBatchRequest {
            jobs: (0..total)
                .map(|_| SubmitJobRequest {
                    job_type: "true".into(),
                    input: json!({}),
                    ..Default::default()
                })
                .collect(),
        })
        .await?;
    let started = Instant::now();
    client.resume_queue("default").await?;
    wait_for_done(&client, total as u64).await?;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    print(json!({
        "figure": "b_run_true", "jobs": total, "concurrency": 8, "jobs_per_sec": rate,
        "fork_exec_ceiling_per_sec": ceiling, "ratio_to_ceiling": rate / ceiling,
        "target_jobs_per_sec": 1700, "target_ratio": 0.8
    }));
    Ok(())
}

/// (c) Submit-to-start latency of 300 single jobs on an idle server, from the server's own
/// timestamps: `created_at` (request validated) to `started_at` (claimed by the dispatcher).
/// A claim's time is read before its write, so `submit_to_end` (to `finished_at`, stamped once
/// the no-op handler returned) also gives the whole way to a run's end, which no choice of
/// when a claim is stamped can shorten.
async fn latency() -> Result<()> {
    let (server, _) = start_server().await?;
    let client = Client::new(&server.url, Some(server.token.clone()));
    let mut latencies = Vec::new();
    let mut round_trips = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..300 {
        let sent = Instant::now();
        let job = client
            .submit(&SubmitJobRequest {
                job_type: "noop".into(),
                input: json!({}),
                ..Default::default()
            })
            .await?;
        round_trips.push(sent.elapsed().as_secs_f64() * 1000.0);
        let job = loop {
            let job = client.job(&job.id).await?;
            if job.finished_at.is_some() {
                break job;
            }
        };
        let since_created = |at: Option<chrono::DateTime<chrono::Utc>>| -> Result<f64> {
            Ok(
                (at.context("a finished job has its times")? - job.created_at)
                    .num_microseconds()
                    .context("micros")? as f64
                    / 1000.0,
            )
        };
        latencies.push(since_created(job.started_at)?);
        ends.push(since_created(job.finished_at)?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort_by(f64::total_cmp);
    round_trips.sort_by(f64::total_cmp);
    ends.sort_by(f64::total_cmp);
    print(json!({
        "figure": "c_submit_to_start_ms", "jobs": 300,
        "p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99), "max": latencies[latencies.len() - 1],
        "submit_to_end_p50": percentile(&ends, 0.5), "submit_to_end_p99": percentile(&ends, 0.99),
        "submit_round_trip_p50": percentile(&round_trips, 0.5), "submit_round_trip_p99": percentile(&round_trips, 0.99),
        "target_p50": 0.3, "target_p99": 1.0
    }));
    Ok(())
}

/// (d) Cold start to a healthy answer, and resident memory once idle.
async fn idle_footprint() -> Result<()> {
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..5 {
        let (server, ready) = start_server().await?;
        starts.push(ready.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(rss_kib(server.child.id())? as f64 / 1024.0);
    }
    starts.sort_by(f64::total_cmp);
    rss.sort_by(f64::total_cmp);
    print(json!({
        "figure": "d_idle", "runs": 5, "cold_start_ms_median": starts[2], "cold_start_ms_max": starts[4],
        "idle_rss_mib_median": rss[2], "target_rss_mib": 30, "target_start_ms": 100
    }));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut only: Vec<String> = std::env::args().skip(1).collect();
    // `--database URL` is RUNWAY_BENCH_DATABASE: every server on PostgreSQL.
    if let Some(at) = only.iter().position(|arg| arg == "--database") {
        let Some(url) = only.get(at + 1).cloned() else {
            bail!("--database needs a PostgreSQL URL: postgres://USER@HOST:PORT/DATABASE");
        };
        only.drain(at..=at + 1);
        servers::use_database(url);
    }
    if only.first().is_some_and(|arg| arg == "fanout") {
        return fanout::run_chosen(&only[1..]).await;
    }
    if only.first().is_some_and(|arg| arg == "history") {
        let jobs = match &only[1..] {
            [] => 100_000,
            [flag, count] if flag == "--jobs" => count
                .parse()
                .with_context(|| format!("`{count}` is not a number of jobs"))?,
            _ => bail!("usage: runway-bench history [--jobs N]"),
        };
        return history::run(jobs).await;
    }
    if only.iter().any(|arg| arg == "abuse") {
        return abuse::run().await;
    }
    if only.iter().any(|arg| arg == "tree") {
        return tree::run().await;
    }
    if only.iter().any(|arg| arg == "watch") {
        watch::run()?;
        return watch::run_trigger().await;
    }
    if only.iter().any(|arg| arg == "ceiling") {
        return ceiling::run();
    }
    if only.iter().any(|arg| arg == "pg-ceiling") {
        return pg_ceiling::run().await;
    }
    if only.iter().any(|arg| arg == "servers") {
        return servers::run().await;
    }
    let wants = |name: &str| only.is_empty() || only.iter().any(|arg| arg == name);
    if wants("a") {
        noop_throughput().await?;
    }
    if only.iter().any(|arg| arg == "slots") {
        noop_by_concurrency().await?;
    }
    if only.iter().any(|arg| arg == "paths") {
        noop_with_transcode_inputs().await?;
    }
    if wants("b") {
        true_throughput().await?;
    }
    if wants("c") {
        latency().await?;
    }
    if wants("d") {
        idle_footprint().await?;
    }
    Ok(())
}
