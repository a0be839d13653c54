//! The live job feed over real WebSocket connections.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use runway_api::{FeedMessage, Frame, JobUpdate, SubmitBatchRequest, SubmitJobRequest};
use runway_client::{Client, Feed, UpdatesQuery};
use serde_json::json;

use crate::Server;

/// A feed read a change at a time: its frames unpacked in order.
struct Updates {
    feed: Feed,
    queued: VecDeque<JobUpdate>,
    /// The `upto` of the last frame read: where a resume starts.
    upto: i64,
}

impl Updates {
    async fn open(client: &Client, query: UpdatesQuery) -> Updates {
        Updates {
            feed: client.updates(&query).await.unwrap(),
            queued: VecDeque::new(),
            upto: 0,
        }
    }

    /// The next frame; a resync fails the test.
    async fn next_frame(&mut self) -> Frame {
        let message = tokio::time::timeout(Duration::from_secs(20), self.feed.next())
            .await
            .expect("a frame within 20s")
            .expect("the feed is open")
            .expect("a readable message");
        match message {
            FeedMessage::Frame(frame) => {
                assert!(
                    frame.after >= self.upto || self.upto == 0,
                    "frame ({}, {}] after {}",
                    frame.after,
                    frame.upto,
                    self.upto
                );
                self.upto = frame.upto;
                frame
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn next_update(&mut self) -> JobUpdate {
        loop {
            if let Some(update) = self.queued.pop_front() {
                return update;
            }
            let frame = self.next_frame().await;
            self.queued.extend(frame.jobs);
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
    let mut feed = Updates::open(
        &client,
        UpdatesQuery {
            job_type: Some("step".into()),
            ..Default::default()
        },
    )
    .await;
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
        let update = feed.next_update().await;
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
async fn a_reconnect_with_since_mid_burst_misses_nothing_and_repeats_nothing() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let mut first = Updates::open(&client, UpdatesQuery::default()).await;
    let submitted = client
        .submit_batch(&batch("noop", 300, |n| json!({"n": n})))
        .await
        .unwrap();
    let mut seen: Vec<i64> = Vec::new();
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    while seen.len() < 150 {
        for update in first.next_frame().await.jobs {
            seen.push(update.seq);
            latest.insert(update.job_id, update.status);
        }
    }
    let since = first.upto;
    first.feed.close().await;
    let mut second = Updates::open(
        &client,
        UpdatesQuery {
            since: Some(since),
            ..Default::default()
        },
    )
    .await;
    let resumed = second.next_frame().await;
    assert_eq!(
        resumed.after, since,
        "the resume starts where the client was"
    );
    let mut frame = resumed;
    loop {
        for update in frame.jobs {
            assert!(
                update.seq > since,
                "seq {} was sent before {since}",
                update.seq
            );
            seen.push(update.seq);
            latest.insert(update.job_id, update.status);
        }
        if latest.len() == 300 && latest.values().all(|status| status == "succeeded") {
            break;
        }
        frame = second.next_frame().await;
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no change was sent twice");
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "in order across the seam"
    );
    let ids: BTreeSet<String> = submitted.jobs.iter().map(|job| job.id.clone()).collect();
    assert_eq!(
        latest.keys().cloned().collect::<BTreeSet<_>>(),
        ids,
        "every job's final state arrived"
    );

    // A replay from 0 is coalesced: each job once, as it ended.
    let mut all = Updates::open(
        &client,
        UpdatesQuery {
            since: Some(0),
            ..Default::default()
        },
    )
    .await;
    let mut replayed: BTreeMap<String, JobUpdate> = BTreeMap::new();
    while replayed.len() < 300 {
        let frame = all.next_frame().await;
        assert!(frame.coalesced, "a replay holds each job's latest change");
        for update in frame.jobs {
            let id = update.job_id.clone();
            assert!(
                replayed.insert(id, update).is_none(),
                "a job twice in a replay"
            );
        }
    }
    assert!(
        replayed
            .values()
            .all(|update| update.kind == "succeeded" && update.status == "succeeded")
    );
}

#[tokio::test]
async fn a_client_that_falls_behind_still_gets_every_jobs_final_state() {
    // A frame per commit, so a client that stops reading falls behind the fan-out quickly; and
    // a send timeout longer than the test, so that on a busy machine the stalled client is
    // caught up, not cut off.
    let server = Server::start(&format!(
        "[server]\nlive_tick = \"0s\"\nlive_send_timeout = \"10m\"\n{CONFIG}"
    ));
    let client = server.client();
    let mut slow = Updates::open(&client, UpdatesQuery::default()).await;
    // A client that keeps up tells when the fan-out has sent everything.
    let mut fast = Updates::open(&client, UpdatesQuery::default()).await;
    let pad = "x".repeat(3000);
    // 12,000 changes of about 3.8 KB: far more than the kernel's buffers, the socket's write
    // buffer and the 32 frames the fan-out keeps for a client hold together, however few and
    // large the frames are.
    const JOBS: u64 = 4000;
    for _ in 0..JOBS / 250 {
        client
            .submit_batch(&batch("noop", 250, |n| json!({"n": n, "pad": pad})))
            .await
            .unwrap();
    }
    // Everything has run and gone out before the slow client reads a byte: more than the
    // kernel's and the server's buffers hold.
    let mut ended = BTreeSet::new();
    while ended.len() < JOBS as usize {
        let update = fast.next_update().await;
        if update.status == "succeeded" {
            ended.insert(update.job_id);
        }
    }
    fast.feed.close().await;
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    let mut coalesced = 0;
    let mut last_upto = 0;
    while latest.len() < JOBS as usize || latest.values().any(|status| status != "succeeded") {
        let frame = slow.next_frame().await;
        assert!(frame.after >= last_upto, "no frame goes back");
        last_upto = frame.upto;
        coalesced += usize::from(frame.coalesced);
        for update in frame.jobs {
            assert!(update.seq > frame.after && update.seq <= frame.upto);
            latest.insert(update.job_id, update.status);
        }
    }
    assert!(
        coalesced > 0,
        "the client fell behind and was caught up coalesced"
    );
    // A resume from the last frame is exact: nothing more happened, so nothing comes but new work.
    slow.feed.close().await;
    let mut resumed = Updates::open(
        &client,
        UpdatesQuery {
            since: Some(last_upto),
            ..Default::default()
        },
    )
    .await;
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "noop".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let first = resumed.next_update().await;
    assert_eq!(
        (first.job_id.as_str(), first.kind.as_str()),
        (job.id.as_str(), "submitted")
    );
}

#[tokio::test]
async fn clients_with_the_same_filter_get_the_same_frames_and_others_only_their_jobs() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let query = |job_type: &str| UpdatesQuery {
        job_type: Some(job_type.into()),
        ..Default::default()
    };
    let mut first = Updates::open(&client, query("noop")).await;
    let mut second = Updates::open(&client, query("noop")).await;
    let mut steps = Updates::open(&client, query("step")).await;
    client
        .submit_batch(&batch("noop", 50, |n| json!({"n": n})))
        .await
        .unwrap();
    client
        .submit_batch(&batch("step", 3, |n| json!({"n": n})))
        .await
        .unwrap();
    let mut frames = (Vec::new(), Vec::new());
    let mut done = 0;
    while done < 50 {
        let frame = first.next_frame().await;
        done += frame
            .jobs
            .iter()
            .filter(|job| job.status == "succeeded")
            .count();
        assert!(frame.jobs.iter().all(|job| job.job_type == "noop"));
        frames.0.push(frame);
    }
    while frames.1.len() < frames.0.len() {
        frames.1.push(second.next_frame().await);
    }
    assert_eq!(frames.0, frames.1, "the same frames, frame for frame");
    let mut step_jobs = BTreeSet::new();
    while step_jobs.len() < 3 {
        let update = steps.next_update().await;
        assert_eq!(update.job_type, "step", "only the jobs of its filter");
        step_jobs.insert(update.job_id);
    }
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
    let mut healthy = Updates::open(&client, UpdatesQuery::default()).await;
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
        if healthy.next_update().await.kind == "succeeded" {
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
        let FeedMessage::Frame(frame) = message else {
            panic!("unexpected {message:?}");
        };
        for line in frame.logs {
            assert_eq!(line.job_id, job.id);
            assert_eq!(line.offset, log.len() as u64, "log chunks are contiguous");
            log.push_str(&line.data);
            if running_when_first_line.is_none() {
                let now = client.job(&job.id).await.unwrap();
                running_when_first_line = Some(now.status);
            }
        }
        if frame.jobs.iter().any(|update| {
            assert_eq!(update.job_id, job.id);
            update.status == "succeeded"
        }) {
            break;
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
    let mut healthy = Updates::open(&client, UpdatesQuery::default()).await;
    client
        .submit(&SubmitJobRequest {
            job_type: "noop".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(healthy.next_update().await.kind, "submitted");
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
    let mut feed = Updates {
        feed,
        queued: VecDeque::new(),
        upto: 0,
    };
    let next = feed.next_update().await;
    assert!(
        next.seq > 1100,
        "the replay goes on from the oldest kept event: {}",
        next.seq
    );
}

#[tokio::test]
async fn a_feed_that_asks_for_triggers_gets_each_change_of_one() {
    let server = Server::start(
        "[types.night]\ncommand = [\"true\"]\n\
         [triggers.nightly]\ncron = \"0 3 * * *\"\ntype = \"night\"\n",
    );
    let client = server.client();
    let mut feed = client
        .updates(&UpdatesQuery {
            triggers: Some(true),
            ..UpdatesQuery::default()
        })
        .await
        .unwrap();
    let fired = client.fire_trigger("nightly").await.unwrap();
    let job = fired.job.expect("a schedule submits at once");
    let mut saw_trigger = false;
    let mut saw_job_end = false;
    while !(saw_trigger && saw_job_end) {
        let message = tokio::time::timeout(Duration::from_secs(20), feed.next())
            .await
            .expect("a message within 20s")
            .expect("the feed is open")
            .expect("a readable message");
        match message {
            FeedMessage::Trigger(trigger) => {
                assert_eq!(trigger.name, "nightly");
                saw_trigger |= trigger.last_job.as_deref() == Some(job.as_str());
            }
            FeedMessage::Frame(frame) => {
                saw_job_end |= frame
                    .jobs
                    .iter()
                    .any(|update| update.job_id == job && update.status == "succeeded");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // A feed that did not ask gets none.
    let mut plain = client.updates(&UpdatesQuery::default()).await.unwrap();
    client.pause_trigger("nightly").await.unwrap();
    let again = submit(&client).await;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), plain.next())
            .await
            .expect("a message within 20s")
            .expect("the feed is open")
            .expect("a readable message");
        match message {
            FeedMessage::Frame(frame) if frame.jobs.iter().any(|u| u.job_id == again) => break,
            FeedMessage::Frame(_) => {}
            other => panic!("a feed without `triggers` got {other:?}"),
        }
    }
}

async fn submit(client: &Client) -> String {
    client
        .submit(&SubmitJobRequest {
            job_type: "night".into(),
            input: json!({}),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}
