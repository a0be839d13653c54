//! (f) A large history: 100,000 finished jobs, then the reads the dashboard makes, timed over
//! HTTP: the first page, a deep page, a status filter, a search, counts and the queue view.
//! Prints the median and the slowest of 20 requests each.

use std::time::{Duration, Instant};

use anyhow::Result;
use runway_api::{SubmitBatchRequest, SubmitJobRequest};
use runway_client::{Client, ListJobs};
use serde_json::json;

use crate::{percentile, print, start_server, wait_for_done};

const JOBS: u64 = 100_000;
const BATCH: u64 = 10_000;
const RUNS: usize = 20;

pub async fn run() -> Result<()> {
    let (server, _) = start_server().await?;
    let client = Client::new(&server.url, Some(server.token.clone()));
    for batch in 0..JOBS / BATCH {
        let jobs = (0..BATCH)
            .map(|n| SubmitJobRequest {
                job_type: "noop".into(),
                input: json!({"clip": format!("clip-{}", batch * BATCH + n), "fps": 24}),
                ..Default::default()
            })
            .collect();
        client.submit_batch(&SubmitBatchRequest { jobs }).await?;
    }
    wait_for_done(&client, JOBS).await?;
    let middle = client
        .list_jobs(&ListJobs {
            limit: Some(1),
            ..Default::default()
        })
        .await?
        .jobs[0]
        .id
        .parse::<u64>()?
        - JOBS / 2;

    let page = |filters: ListJobs| {
        let client = client.clone();
        move || {
            let client = client.clone();
            let filters = filters.clone();
            async move { client.list_jobs(&filters).await.map(drop) }
        }
    };
    let first = ListJobs {
        limit: Some(100),
        ..Default::default()
    };
    time("f_first_page", page(first.clone())).await?;
    time(
        "f_deep_page",
        page(ListJobs {
            cursor: Some(middle.to_string()),
            ..first.clone()
        }),
    )
    .await?;
    time(
        "f_status_filter",
        page(ListJobs {
            status: Some("succeeded".into()),
            ..first.clone()
        }),
    )
    .await?;
    time(
        "f_search_rare",
        page(ListJobs {
            q: Some("clip-77777\"".into()),
            ..first.clone()
        }),
    )
    .await?;
    time(
        "f_search_common",
        page(ListJobs {
            q: Some("clip-7".into()),
            ..first.clone()
        }),
    )
    .await?;
    let count = |filters: ListJobs| {
        let client = client.clone();
        move || {
            let client = client.clone();
            let filters = filters.clone();
            async move { client.count_jobs(&filters).await.map(drop) }
        }
    };
    time("f_count_all", count(ListJobs::default())).await?;
    time(
        "f_count_search",
        count(ListJobs {
            q: Some("clip-7".into()),
            ..Default::default()
        }),
    )
    .await?;
    let queues = {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move { client.queues().await.map(drop) }
        }
    };
    time("f_queues", queues).await?;
    Ok(())
}

async fn time<F, Fut, E>(figure: &str, mut request: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut millis = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        request().await?;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    millis.sort_by(f64::total_cmp);
    print(json!({
        "figure": figure, "jobs": JOBS, "runs": RUNS,
        "ms_median": percentile(&millis, 0.5), "ms_max": millis[RUNS - 1]
    }));
    Ok(())
}
