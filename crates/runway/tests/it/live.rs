//! The live job feed over real WebSocket connections.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use runway_api::{FeedMessage, JobUpdate, SubmitBatchRequest, SubmitJobRequest};
use runway_client::{Feed, UpdatesQuery};
use serde_json::json;

use crate::Server;

async fn next_update(feed: &mut Feed) -> JobUpdate {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), feed.next())
            .await
            .expect("an update within 20s")
            .expect("the feed is open")
            .expect("a readable message");
        if let FeedMessage::Job(update) = message {
            return *update;
        }
    }
}

fn batch(
    job_type: &str,
    count: usize,
    input: impl Fn(usize) -> serde_json::Value,
) -> SubmitBatchRequest {
    SubmitBatchRequest {
        jobs: (0..count)
            .map(|n| SubmitJobRequest {
                job_type: job_type.into(),
                input: input(n),
                ..Default::default()
            })
            .collect(),
    }
}

const CONFIG: &str = r#"
[queues.default]
concurrency = 4
[types.noop]
handler = "noop"
[types.step]
command = ["sh", "-c", "echo one; sleep 0.05; echo '::runway {\"progress\": 0.5}'; echo two"]
[types.chatty]
command = ["sh", "-c", "for i in 1 2 3 4 5; do echo noise $i; sleep 0.1; done"]
"#;

#[tokio::test]
async fn updates_of_concurrent_jobs_arrive_complete_and_in_order() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let mut feed = client
        .updates(&UpdatesQuery {
            job_type: Some("step".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let submitted = client
        .submit_batch(&batch("step", 12, |n| json!({"n": n})))
        .await
        .unwrap();
    client
        .submit_batch(&batch("noop", 5, |_| json!({})))
        .await
        .unwrap();
    let ids: BTreeSet<String> = submitted.jobs.iter().map(|job| job.id.clone()).collect();
    let mut per_job: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut last_seq = 0;
    while per_job
        .values()
        .filter(|kinds| kinds.last().is_some_and(|kind| kind == "succeeded"))
        .count()
        < 12
    {
        let update = next_update(&mut feed).await;
        assert!(update.seq > last_seq, "seq {} after {last_seq}", update.seq);
        last_seq = update.seq;
        assert_eq!(update.job_type, "step", "the type filter holds");
        assert!(ids.contains(&update.job_id));
        per_job
            .entry(update.job_id.clone())
            .or_default()
            .push(update.kind.clone());
        if update.kind == "succeeded" {
            assert_eq!(update.status, "succeeded");
            assert_eq!(
                update.progress.as_ref().map(|progress| progress.fraction),
                Some(0.5)
            );
        }
    }
    for (id, kinds) in &per_job {
        assert_eq!(
            kinds,
            &["submitted", "started", "progress", "succeeded"],
            "job {id}"
        );
    }
}

#[tokio::test]
async fn a_reconnect_with_since_mid_burst_gets_every_change_exactly_once() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let mut first = client.updates(&UpdatesQuery::default()).await.unwrap();
    let submitted = client
        .submit_batch(&batch("noop", 300, |n| json!({"n": n})))
        .await
        .unwrap();
    let mut seen: Vec<i64> = Vec::new();
    for _ in 0..150 {
        seen.push(next_update(&mut first).await.seq);
    }
    first.close().await;
    let mut second = client
        .updates(&UpdatesQuery {
            since: Some(*seen.last().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut succeeded = 0;
    while succeeded < 300 {
        let update = next_update(&mut second).await;
        if update.kind == "succeeded" {
            succeeded += 1;
        }
        seen.push(update.seq);
    }
    // Each job: submitted, started, succeeded.
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no change was sent twice");
    assert_eq!(seen.len(), 900, "every change arrived");
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "in order across the seam"
    );
    let mut all = client
        .updates(&UpdatesQuery {
            since: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < 900 {
        replayed.push(next_update(&mut all).await.seq);
    }
    assert_eq!(replayed, seen, "a replay from 0 gives the same changes");
    assert_eq!(submitted.jobs.len(), 300);
}

#[tokio::test]
async fn a_stalled_client_does_not_delay_a_healthy_one() {
    let server = Server::start(CONFIG);
    let client = server.client();
    // This one never reads.
    let _stalled = client
        .updates(&UpdatesQuery {
            logs: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut healthy = client.updates(&UpdatesQuery::default()).await.unwrap();
    let input = "x".repeat(2000);
    for _ in 0..10 {
        client
            .submit_batch(&batch("noop", 200, |n| json!({"n": n, "pad": input})))
            .await
            .unwrap();
    }
    let mut succeeded = 0;
    let started = std::time::Instant::now();
    while succeeded < 2000 {
        if next_update(&mut healthy).await.kind == "succeeded" {
            succeeded += 1;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let queues = client.queues().await.unwrap();
    assert_eq!(queues.queues[0].succeeded, 2000);
}

#[tokio::test]
async fn live_logs_arrive_while_the_job_runs() {
    let server = Server::start(CONFIG);
    let client = server.client();
    // Log messages are live only (the stored part is served by GET /log): open the feed first.
    let mut feed = client
        .updates(&UpdatesQuery {
            logs: Some(true),
            job_type: Some("shell".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": "echo first; sleep 1; echo second"}),
            ..Default::default()
        })
        .await
        .unwrap();
    // Another type's log, written meanwhile, is not this feed's business.
    client
        .submit(&SubmitJobRequest {
            job_type: "chatty".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut log = String::new();
    let mut running_when_first_line = None;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), feed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match message {
            FeedMessage::Log(line) => {
                assert_eq!(line.job_id, job.id);
                assert_eq!(line.offset, log.len() as u64, "log chunks are contiguous");
                log.push_str(&line.data);
                if running_when_first_line.is_none() {
                    let now = client.job(&job.id).await.unwrap();
                    running_when_first_line = Some(now.status);
                }
            }
            FeedMessage::Job(update) => {
                assert_eq!(update.job_id, job.id);
                if update.status == "succeeded" {
                    break;
                }
            }
            FeedMessage::Resync(resync) => panic!("unexpected {resync:?}"),
        }
    }
    assert_eq!(log, "first\nsecond\n");
    assert_eq!(
        running_when_first_line.as_deref(),
        Some("running"),
        "the first line came while it ran"
    );
}

#[tokio::test]
async fn bad_requests_tokens_and_origins_are_refused_before_the_upgrade() {
    let server = Server::start(CONFIG);
    let client = server.client();
    for (query, needle) in [
        (
            UpdatesQuery {
                status: Some("done".into()),
                ..Default::default()
            },
            "status",
        ),
        (
            UpdatesQuery {
                job: Some("abc".into()),
                ..Default::default()
            },
            "job",
        ),
        (
            UpdatesQuery {
                since: Some(-5),
                ..Default::default()
            },
            "since",
        ),
    ] {
        match client.updates(&query).await {
            Err(runway_client::ClientError::Api {
                status,
                code,
                message,
            }) => {
                assert_eq!(
                    (status, code.as_str()),
                    (400, "invalid_request"),
                    "{message}"
                );
                assert!(message.contains(needle), "{message}");
            }
            Err(other) => panic!("{query:?}: {other}"),
            Ok(_) => panic!("{query:?} was accepted"),
        }
    }
    for token in [None, Some("rwy_wrong".to_string())] {
        let anonymous = runway_client::Client::new(&server.url, token);
        match anonymous.updates(&UpdatesQuery::default()).await {
            Err(error) => assert_eq!(error.status(), Some(401), "{error}"),
            Ok(_) => panic!("a feed opened without a valid token"),
        }
    }
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/v1/jobs/updates", server.url.replace("http://", "ws://"));
    for (origin, allowed) in [("http://evil.example", false), (&*server.url, true)] {
        let mut request = url.as_str().into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", server.token).parse().unwrap(),
        );
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        let result = tokio_tungstenite::connect_async(request).await;
        match (result, allowed) {
            (Ok(_), true) => {}
            (Err(tokio_tungstenite::tungstenite::Error::Http(response)), false) => {
                assert_eq!(response.status().as_u16(), 403);
                let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
                assert!(body.contains("forbidden_origin"), "{body}");
            }
            (other, _) => panic!("origin {origin}: {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test]
async fn bad_frames_from_a_client_close_only_that_feed() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = Server::start(CONFIG);
    let url = format!("{}/v1/jobs/updates", server.url.replace("http://", "ws://"));
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", server.token).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::Text("x".repeat(100_000).into()))
        .await
        .unwrap_or(());
    // The feed says why it closes: 1008 and the reason.
    use futures_util::StreamExt;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a close within 20s")
        {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close code"),
            Some(Ok(_)) => continue,
            other => panic!("closed without a close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1008);
    assert!(close.reason.starts_with("bad frame: "), "{}", close.reason);
    let client = server.client();
    let mut healthy = client.updates(&UpdatesQuery::default()).await.unwrap();
    client
        .submit(&SubmitJobRequest {
            job_type: "noop".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(next_update(&mut healthy).await.kind, "submitted");
    assert!(client.health().await.is_ok(), "the server lives on");
}

#[tokio::test]
async fn resuming_from_before_the_kept_events_asks_for_a_resync() {
    let server = Server::start(
        r#"
        [server]
        sweep_interval = "50ms"
        events_max_count = 1000
        [types.noop]
        handler = "noop"
        "#,
    );
    let client = server.client();
    client
        .submit_batch(&batch("noop", 700, |n| json!({"n": n})))
        .await
        .unwrap();
    // 700 jobs make 2100 events; the sweep keeps the newest 1000.
    crate::eventually(
        "old events to be pruned",
        Duration::from_secs(20),
        || async {
            let queues = client.queues().await.unwrap();
            (queues.queues[0].succeeded == 700).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut feed = client
        .updates(&UpdatesQuery {
            since: Some(5),
            ..Default::default()
        })
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        FeedMessage::Resync(resync) => {
            assert_eq!(resync.seq, 5);
            assert!(
                resync.reason.contains("no longer kept"),
                "{}",
                resync.reason
            );
        }
        other => panic!("expected a resync first, got {other:?}"),
    }
    let next = next_update(&mut feed).await;
    assert!(
        next.seq > 1100,
        "the replay goes on from the oldest kept event: {}",
        next.seq
    );
}
