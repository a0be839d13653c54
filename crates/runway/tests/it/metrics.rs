//! `/metrics`, read back with a Prometheus text-format parser.

use std::collections::HashMap;

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::{Server, finished, submit};

async fn scrape(server: &Server, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn parse(text: &str) -> Vec<Sample> {
    let lines = text.lines().map(|line| Ok(line.to_string()));
    Scrape::parse(lines).expect("valid Prometheus text").samples
}

fn find<'a>(samples: &'a [Sample], metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|sample| {
        sample.metric == metric
            && labels
                .iter()
                .all(|(name, value)| sample.labels.get(name) == Some(*value))
    })
}

fn gauge(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(samples, metric, labels).map(|sample| &sample.value) {
        Some(Value::Gauge(value) | Value::Untyped(value)) => *value,
        other => panic!("{metric} {labels:?}: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_count_jobs_and_time_their_runs() {
    let server = Server::start(
        "[types.noop]\nhandler = \"noop\"\n[types.quick]\ncommand = [\"true\"]\nmax_attempts = 1\n\
         [types.bad]\ncommand = [\"false\"]\nmax_attempts = 1\n",
    );
    let client = server.client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&client, "quick", json!({})).await);
    }
    ids.push(submit(&client, "bad", json!({})).await);
    for id in &ids {
        finished(&client, id).await;
    }
    client.pause_queue("default").await.unwrap();
    let waiting = submit(&client, "noop", json!({})).await;

    let (status, text) = scrape(&server, Some(&server.token)).await;
    assert_eq!(status, 200, "{text}");
    let samples = parse(&text);
    let jobs = |job_type: &str, status: &str| {
        gauge(
            &samples,
            "runway_jobs",
            &[("queue", "default"), ("type", job_type), ("status", status)],
        )
    };
    assert_eq!(jobs("quick", "succeeded"), 3.0);
    assert_eq!(jobs("bad", "failed"), 1.0);
    assert_eq!(jobs("noop", "queued"), 1.0);
    assert_eq!(
        gauge(&samples, "runway_queue_depth", &[("queue", "default")]),
        1.0
    );
    assert_eq!(
        gauge(&samples, "runway_queue_paused", &[("queue", "default")]),
        1.0
    );
    assert!(
        gauge(
            &samples,
            "runway_queue_oldest_queued_age_seconds",
            &[("queue", "default")]
        ) >= 0.0
    );
    let runs: HashMap<&str, f64> = samples
        .iter()
        .filter(|sample| sample.metric == "runway_job_run_seconds_count")
        .map(|sample| {
            let value = match sample.value {
                Value::Counter(value) | Value::Untyped(value) => value,
                _ => panic!("{sample:?}"),
            };
            (sample.labels.get("status").unwrap(), value)
        })
        .collect();
    assert_eq!(runs.get("succeeded"), Some(&3.0), "{runs:?}");
    assert_eq!(runs.get("failed"), Some(&1.0), "{runs:?}");
    assert!(
        samples.iter().any(|s| s.metric == "runway_job_run_seconds"
            && matches!(&s.value, Value::Histogram(buckets) if !buckets.is_empty())),
        "run times are a histogram"
    );
    assert!(find(&samples, "runway_job_wait_seconds_count", &[]).is_some());
    assert!(find(&samples, "runway_store_commit_seconds_count", &[]).is_some());
    assert!(gauge(&samples, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(
        text.contains("# HELP runway_jobs "),
        "metrics are described"
    );

    // Jobs that left a status read 0 there, not their last count.
    client.resume_queue("default").await.unwrap();
    finished(&client, &waiting).await;
    let (_, again) = scrape(&server, Some(&server.token)).await;
    let later = parse(&again);
    let noop = |status: &str| {
        gauge(
            &later,
            "runway_jobs",
            &[("queue", "default"), ("type", "noop"), ("status", status)],
        )
    };
    assert_eq!(noop("queued"), 0.0);
    assert_eq!(noop("succeeded"), 1.0);
}

#[tokio::test]
async fn metrics_need_the_token() {
    let server = Server::start("");
    let (status, _) = scrape(&server, None).await;
    assert_eq!(status, 401);
}
