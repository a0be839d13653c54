//! (e) Fan-out: N WebSocket clients on loopback subscribed to every update while 2,000 no-op
//! jobs run. Prints, per N: commit-to-arrival latency of updates at every client, resident
//! memory per idle connection, and the engine's run rate beside the rate with no client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use runway_api::{SubmitBatchRequest, SubmitJobRequest};
use runway_client::{Client, UpdatesQuery};
use serde::Deserialize;
use serde_json::json;

use crate::{percentile, print, rss_kib, start_server, wait_for_done};

const JOBS: usize = 2000;

#[derive(Deserialize)]
struct Seen {
    kind: String,
    at: chrono::DateTime<chrono::Utc>,
}

pub async fn run(counts: &[usize]) -> Result<()> {
    let mut baseline = None;
    for &clients in counts {
        let (server, _) = start_server().await?;
        let client = Client::new(&server.url, Some(server.token.clone()));
        let pid = server.child.id();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before = rss_kib(pid)?;

        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<f64>>();
        let connected = Arc::new(tokio::sync::Semaphore::new(0));
        for start in (0..clients).step_by(100) {
            let mut opening = Vec::new();
            for _ in start..(start + 100).min(clients) {
                let client = client.clone();
                opening.push(tokio::spawn(async move {
                    client.updates(&UpdatesQuery::default()).await
                }));
            }
            for feed in opening {
                let mut feed = feed.await?.context("open a feed")?;
                let sender = sender.clone();
                connected.add_permits(1);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(JOBS);
                    while latencies.len() < JOBS {
                        let Some(Ok(text)) = feed.next_text().await else {
                            break;
                        };
                        let arrived = chrono::Utc::now();
                        if let Ok(seen) = serde_json::from_str::<Seen>(&text)
                            && seen.kind == "succeeded"
                        {
                            let micros = (arrived - seen.at).num_microseconds().unwrap_or(0);
                            latencies.push(micros as f64 / 1000.0);
                        }
                    }
                    let _ = sender.send(latencies);
                });
            }
        }
        drop(sender);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after = rss_kib(pid)?;

        client.pause_queue("default").await?;
        for batch in 0..JOBS / 500 {
            let jobs = (0..500)
                .map(|n| SubmitJobRequest {
                    job_type: "noop".into(),
                    input: json!({"n": batch * 500 + n}),
                    ..Default::default()
                })
                .collect();
            client.submit_batch(&SubmitBatchRequest { jobs }).await?;
        }
        let started = Instant::now();
        client.resume_queue("default").await?;
        wait_for_done(&client, JOBS as u64).await?;
        let rate = JOBS as f64 / started.elapsed().as_secs_f64();
        let baseline_rate = *baseline.get_or_insert(rate);

        let mut latencies = Vec::with_capacity(clients * JOBS);
        let mut complete = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while let Ok(Some(mut some)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
            if some.len() == JOBS {
                complete += 1;
            }
            latencies.append(&mut some);
        }
        latencies.sort_by(f64::total_cmp);
        let (p50, p99, max) = if latencies.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            (
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                latencies[latencies.len() - 1],
            )
        };
        let per_connection_kib = if clients > 0 {
            (rss_after.saturating_sub(rss_before)) as f64 / clients as f64
        } else {
            0.0
        };
        print(json!({
            "figure": "e_fanout", "clients": clients, "jobs": JOBS,
            "clients_with_every_update": complete,
            "latency_ms_p50": p50, "latency_ms_p99": p99, "latency_ms_max": max,
            "rss_kib_per_idle_connection": per_connection_kib,
            "run_jobs_per_sec": rate, "run_rate_vs_no_clients": rate / baseline_rate,
            "target_p99_ms_at_5000": 100, "target_kib_per_connection": 20, "target_rate_ratio": 0.9
        }));
    }
    Ok(())
}
