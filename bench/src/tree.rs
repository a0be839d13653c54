//! (h) Job trees: one parent whose command spawns 10,000 no-op children in one `::runway`
//! line, then joins them. Prints children created per second (the spawn, from the parent's
//! `started` to its `spawned` event, including the command's own start), children run per
//! second beside 10,000 plain no-op jobs on the same server, and the time from the last child's
//! end to the join's start over 20 smaller trees. All times are the server's own timestamps.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use runway_api::{JobResponse, SubmitBatchRequest, SubmitJobRequest};
use runway_client::{Client, ListJobs};
use serde_json::json;

use crate::{percentile, print, start_server};

const CHILDREN: usize = 10_000;
const SMALL_TREES: usize = 20;
const SMALL_CHILDREN: usize = 100;

pub async fn run() -> Result<()> {
    let (server, _) = start_server().await?;
    let client = Client::new(&server.url, Some(server.token.clone()));

    // Plain no-op jobs first: the rate the children are held against.
    client.pause_queue("default").await?;
    for batch in 0..CHILDREN / 1000 {
        client
            .submit_batch(&SubmitBatchRequest {
                jobs: (0..1000)
                    .map(|n| SubmitJobRequest {
                        job_type: "noop".into(),
                        input: json!({"n": batch * 1000 + n}),
                        ..Default::default()
                    })
                    .collect(),
            })
            .await?;
    }
    client.resume_queue("default").await?;
    let plain = wait_for_roots(&client, CHILDREN).await?;
    let plain_rate = run_rate(&plain)?;

    // The tree: the children wait in the paused queue while they are made.
    client.pause_queue("default").await?;
    let parent = submit_tree(&client, CHILDREN).await?;
    let spawned = wait_for_event(&client, &parent, "spawned").await?;
    let started = wait_for_event(&client, &parent, "started").await?;
    let spawn_seconds = seconds(started, spawned);
    client.resume_queue("default").await?;
    let parent = finished(&client, &parent).await?;
    if parent.status != "succeeded" {
        bail!("the tree ended {}: {:?}", parent.status, parent.error);
    }
    let children = all_children(&client, &parent.id).await?;
    let tree_rate = run_rate(&children)?;
    print(json!({
        "figure": "h_tree", "children": CHILDREN,
        "children_created_per_sec": CHILDREN as f64 / spawn_seconds,
        "spawn_seconds_including_command_start": spawn_seconds,
        "children_run_per_sec": tree_rate, "plain_noop_run_per_sec": plain_rate,
        "ratio_to_plain": tree_rate / plain_rate, "target_ratio": 0.9,
    }));

    // The join's start after the last child's end, over smaller trees.
    let mut delays = Vec::new();
    for _ in 0..SMALL_TREES {
        let parent = submit_tree(&client, SMALL_CHILDREN).await?;
        let parent = finished(&client, &parent).await?;
        let children = all_children(&client, &parent.id).await?;
        let last_end = children
            .iter()
            .filter_map(|child| child.finished_at)
            .max()
            .context("a finished child")?;
        let events = client.events(&parent.id).await?.events;
        let join_start = events
            .iter()
            .filter(|event| event.kind == "started")
            .map(|event| event.at)
            .max()
            .context("the join's start")?;
        delays.push(seconds(last_end, join_start) * 1000.0);
    }
    delays.sort_by(f64::total_cmp);
    print(json!({
        "figure": "h_join_after_last_child_ms", "trees": SMALL_TREES, "children": SMALL_CHILDREN,
        "p50": percentile(&delays, 0.5), "p99": percentile(&delays, 0.99), "max": delays[delays.len() - 1],
        "target_p50": 50,
    }));
    Ok(())
}

async fn submit_tree(client: &Client, children: usize) -> Result<String> {
    Ok(client
        .submit(&SubmitJobRequest {
            job_type: "fan".into(),
            input: json!({"children": children}),
            ..Default::default()
        })
        .await?
        .id)
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// Jobs run per second, from the first start to the last end.
fn run_rate(jobs: &[JobResponse]) -> Result<f64> {
    let first = jobs
        .iter()
        .filter_map(|job| job.started_at)
        .min()
        .context("a start")?;
    let last = jobs
        .iter()
        .filter_map(|job| job.finished_at)
        .max()
        .context("an end")?;
    Ok(jobs.len() as f64 / seconds(first, last))
}

async fn wait_for_event(client: &Client, id: &str, kind: &str) -> Result<DateTime<Utc>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if std::time::Instant::now() > deadline {
            bail!("job {id} has no `{kind}` event after two minutes; see its log");
        }
        let events = client.events(id).await?.events;
        if let Some(event) = events.iter().find(|event| event.kind == kind) {
            return Ok(event.at);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn finished(client: &Client, id: &str) -> Result<JobResponse> {
    loop {
        let job = client.job(id).await?;
        if matches!(job.status.as_str(), "succeeded" | "failed" | "cancelled") {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `count` root jobs have finished, and returns them.
async fn wait_for_roots(client: &Client, count: usize) -> Result<Vec<JobResponse>> {
    loop {
        let done = client
            .count_jobs(&ListJobs {
                status: Some("succeeded,failed".into()),
                roots: Some(true),
                ..Default::default()
            })
            .await?;
        if done as usize >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    list(
        client,
        ListJobs {
            roots: Some(true),
            ..Default::default()
        },
    )
    .await
}

async fn all_children(client: &Client, parent: &str) -> Result<Vec<JobResponse>> {
    list(
        client,
        ListJobs {
            parent: Some(parent.to_string()),
            ..Default::default()
        },
    )
    .await
}

async fn list(client: &Client, filters: ListJobs) -> Result<Vec<JobResponse>> {
    let mut jobs = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_jobs(&ListJobs {
                cursor,
                limit: Some(1000),
                ..filters.clone()
            })
            .await?;
        jobs.extend(page.jobs);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(jobs),
        }
    }
}
