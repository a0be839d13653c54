use std::sync::atomic::{AtomicI64, Ordering};

use runway_api::FeedMessage;
use runway_api::session::ServerMessage;
use runway_core::Timestamp;
use runway_core::bus::Changes;
use runway_core::job::NewJob;
use serde_json::json;
use tokio::sync::Semaphore;

use super::*;

fn now() -> Timestamp {
    chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn job(id: i64, job_type: &str, status: JobStatus) -> Arc<Job> {
    let (mut job, _) =
        NewJob::new(job_type, "default", json!({"n": id}), now()).inserted(JobId(id), now());
    job.status = status;
    Arc::new(job)
}

fn change(seq: i64, job: Arc<Job>, kind: EventKind, previous: Option<JobStatus>) -> JobChange {
    let change = JobChange::new(seq, kind, now(), job);
    match previous {
        Some(previous) => change.after(previous),
        None => change,
    }
}

/// A new job `seq` of `job_type` (its id is its seq), as submitted.
fn submitted(seq: i64, job_type: &str) -> Change {
    Change::Job(change(
        seq,
        job(seq, job_type, JobStatus::Queued),
        EventKind::Submitted,
        None,
    ))
}

fn typed(job_type: &str) -> Filter {
    Filter {
        job_types: vec![job_type.into()],
        ..Filter::default()
    }
}

fn feed(filter: Filter) -> Audience {
    Audience::Feed {
        filter,
        logs: false,
    }
}

/// A fan-out whose task is not running: frames are made by calling `emit`.
fn idle_fanout(position: i64) -> Fanout {
    Fanout {
        hub: Arc::new(Mutex::new(Hub {
            audiences: HashMap::new(),
            position,
            running: HashMap::new(),
            recent: VecDeque::new(),
        })),
    }
}

fn decode_feed(frame: &Frame) -> runway_api::Frame {
    match serde_json::from_str::<FeedMessage>(frame.text.as_str()).unwrap() {
        FeedMessage::Frame(frame) => frame,
        other => panic!("not a frame: {other:?}"),
    }
}

#[test]
fn a_frame_is_encoded_as_serde_encodes_the_wire_types() {
    let first = change(
        11,
        job(1, "a", JobStatus::Queued),
        EventKind::Submitted,
        None,
    );
    let second = change(
        12,
        job(1, "a", JobStatus::Running),
        EventKind::Started,
        Some(JobStatus::Queued),
    );
    let log = LogUpdate {
        job_id: "1".into(),
        offset: 0,
        data: "line \"one\"\n".into(),
        marks: Vec::new(),
    };
    let expected = runway_api::Frame {
        after: 10,
        upto: 12,
        coalesced: false,
        jobs: vec![job_update(&first), job_update(&second)],
        logs: vec![log.clone()],
    };
    let as_feed = frames(
        &feed(Filter::default()),
        10,
        12,
        false,
        &[&first, &second],
        vec![log.clone()],
    );
    assert_eq!(as_feed.len(), 1);
    assert_eq!(decode_feed(&as_feed[0]), expected);
    let list = Audience::List {
        key: "jobs \"main\"".into(),
        filter: Filter::default(),
    };
    let as_session = frames(&list, 10, 12, false, &[&first, &second], vec![log]);
    let decoded: ServerMessage = serde_json::from_str(as_session[0].text.as_str()).unwrap();
    assert_eq!(
        decoded,
        ServerMessage::Frame {
            key: "jobs \"main\"".into(),
            frame: expected
        }
    );
}

#[test]
fn a_large_burst_is_split_into_frames_of_consecutive_ranges() {
    let changes: Vec<JobChange> = (1..=2500)
        .map(|seq| {
            change(
                seq,
                job(seq, "a", JobStatus::Queued),
                EventKind::Submitted,
                None,
            )
        })
        .collect();
    let covered: Vec<&JobChange> = changes.iter().collect();
    let split = frames(
        &feed(Filter::default()),
        0,
        2600,
        false,
        &covered,
        Vec::new(),
    );
    assert!(split.len() >= 3, "{} frames", split.len());
    assert_eq!(split[0].after, 0);
    assert_eq!(split[split.len() - 1].upto, 2600);
    assert!(
        split.windows(2).all(|pair| pair[0].upto == pair[1].after),
        "consecutive ranges"
    );
    let mut seqs = Vec::new();
    for frame in &split {
        let decoded = decode_feed(frame);
        assert!(decoded.jobs.len() <= MAX_FRAME_CHANGES);
        assert!(frame.text.len() <= MAX_FRAME_BYTES + 4096);
        assert!(
            decoded
                .jobs
                .iter()
                .all(|job| decoded.after < job.seq && job.seq <= decoded.upto)
        );
        seqs.extend(decoded.jobs.iter().map(|job| job.seq));
    }
    assert_eq!(
        seqs,
        (1..=2500).collect::<Vec<_>>(),
        "every change, once, in order"
    );
}

#[test]
fn clients_of_one_audience_share_each_frame() {
    let fanout = idle_fanout(0);
    let mut first = fanout.join(feed(typed("a")));
    let mut second = fanout.join(feed(typed("a")));
    assert_eq!((first.position, second.position), (0, 0));
    fanout.emit(&[submitted(1, "a")]);
    let (one, two) = (
        first.frames.try_recv().unwrap(),
        second.frames.try_recv().unwrap(),
    );
    assert!(Arc::ptr_eq(&one, &two), "one frame, encoded once");
    assert_eq!((one.after, one.upto), (0, 1));
    assert_eq!(fanout.position(), 1);
}

#[test]
fn each_filter_gets_only_the_jobs_it_covers() {
    let fanout = idle_fanout(0);
    let mut a = fanout.join(feed(typed("a")));
    let mut b = fanout.join(feed(typed("b")));
    fanout.emit(&[submitted(1, "a"), submitted(2, "b"), submitted(3, "a")]);
    let a = decode_feed(&a.frames.try_recv().unwrap());
    let b = decode_feed(&b.frames.try_recv().unwrap());
    let ids = |frame: &runway_api::Frame| -> Vec<String> {
        frame.jobs.iter().map(|job| job.job_id.clone()).collect()
    };
    assert_eq!(ids(&a), ["1", "3"]);
    assert_eq!(ids(&b), ["2"]);
    assert_eq!((a.after, a.upto, b.after, b.upto), (0, 3, 0, 3));
}

#[test]
fn an_audience_with_nothing_in_a_burst_gets_no_frame_and_no_gap() {
    let fanout = idle_fanout(0);
    let mut b = fanout.join(feed(typed("b")));
    fanout.emit(&[submitted(1, "a")]);
    assert!(b.frames.try_recv().is_err(), "no frame of nothing");
    fanout.emit(&[submitted(2, "b")]);
    let frame = b.frames.try_recv().unwrap();
    assert_eq!(
        (frame.after, frame.upto),
        (1, 2),
        "the next frame starts where the last emission ended"
    );
}

#[test]
fn a_list_hears_of_a_job_leaving_its_status_filter_and_a_feed_does_not() {
    let running = Filter {
        statuses: vec![JobStatus::Running],
        ..Filter::default()
    };
    let fanout = idle_fanout(0);
    let mut list = fanout.join(Audience::List {
        key: "jobs".into(),
        filter: running.clone(),
    });
    let mut feed_client = fanout.join(feed(running));
    fanout.emit(&[
        // Never running: not the list's business.
        submitted(1, "a"),
        Change::Job(change(
            2,
            job(2, "a", JobStatus::Succeeded),
            EventKind::Succeeded,
            Some(JobStatus::Running),
        )),
        Change::Job(change(
            3,
            job(3, "a", JobStatus::Cancelled),
            EventKind::Cancelled,
            Some(JobStatus::Queued),
        )),
    ]);
    let frame = list.frames.try_recv().unwrap();
    let decoded: ServerMessage = serde_json::from_str(frame.text.as_str()).unwrap();
    let ServerMessage::Frame { frame, .. } = decoded else {
        panic!("{decoded:?}")
    };
    let listed: Vec<&str> = frame.jobs.iter().map(|job| job.job_id.as_str()).collect();
    assert_eq!(listed, ["2"], "only the job that left `running`");
    assert!(feed_client.frames.try_recv().is_err());
}

#[test]
fn log_text_goes_to_the_feeds_covering_its_running_job() {
    let fanout = idle_fanout(0);
    let mut with_logs = fanout.join(Audience::Feed {
        filter: typed("a"),
        logs: true,
    });
    let mut without = fanout.join(feed(typed("a")));
    let mut other_type = fanout.join(Audience::Feed {
        filter: typed("b"),
        logs: true,
    });
    fanout.emit(&[Change::Job(change(
        1,
        job(7, "a", JobStatus::Running),
        EventKind::Started,
        Some(JobStatus::Queued),
    ))]);
    for receiver in [&mut with_logs, &mut without] {
        receiver.frames.try_recv().unwrap();
    }
    fanout.emit(&[Change::Log(LogAppend {
        job_id: JobId(7),
        offset: 0,
        data: Arc::from("hello\n"),
        marks: Arc::from([]),
    })]);
    let frame = with_logs.frames.try_recv().unwrap();
    let decoded = decode_feed(&frame);
    assert_eq!((decoded.after, decoded.upto), (1, 1));
    assert_eq!(decoded.logs.len(), 1);
    assert_eq!(decoded.logs[0].data, "hello\n");
    assert!(without.frames.try_recv().is_err());
    assert!(other_type.frames.try_recv().is_err());
}

/// A store whose changes become durable only when the test says so, and that remembers how
/// far they were durable.
struct GatedSource {
    gate: Arc<Semaphore>,
    published: Arc<AtomicI64>,
    durable: Arc<AtomicI64>,
}

impl Source for GatedSource {
    fn make_durable(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        let gate = Arc::clone(&self.gate);
        let published = Arc::clone(&self.published);
        let durable = Arc::clone(&self.durable);
        async move {
            gate.acquire().await.unwrap().forget();
            durable.store(published.load(Ordering::SeqCst), Ordering::SeqCst);
            Ok(())
        }
    }

    async fn changes_since(&self, _after: i64, _limit: u32) -> Result<Vec<JobChange>, StoreError> {
        Ok(Vec::new())
    }
}

/// A fan-out reading from `source` with a 50 ms tick, nothing out yet; cancel the token to end it.
fn ticking(
    source: GatedSource,
    changes: broadcast::Receiver<Changes>,
) -> (Fanout, CancellationToken) {
    let shutdown = CancellationToken::new();
    let fanout = Fanout::with_source(
        source,
        changes,
        0,
        Duration::from_millis(50),
        shutdown.clone(),
    );
    (fanout, shutdown)
}

#[tokio::test(start_paused = true)]
async fn frames_hold_only_changes_the_store_made_durable() {
    let (bus, changes) = broadcast::channel::<Changes>(64);
    let gate = Arc::new(Semaphore::new(0));
    let published = Arc::new(AtomicI64::new(0));
    let durable = Arc::new(AtomicI64::new(0));
    let source = GatedSource {
        gate: Arc::clone(&gate),
        published: Arc::clone(&published),
        durable: Arc::clone(&durable),
    };
    let (fanout, shutdown) = ticking(source, changes);
    let mut client = fanout.join(feed(Filter::default()));
    for seq in 1..=3 {
        published.store(seq, Ordering::SeqCst);
        bus.send(Changes::from(vec![submitted(seq, "a")])).unwrap();
    }
    // Not durable yet: nothing goes out, however long it takes.
    let waited = tokio::time::timeout(Duration::from_secs(5), client.frames.recv()).await;
    assert!(
        waited.is_err(),
        "a frame went out before its changes were durable"
    );
    assert_eq!(fanout.position(), 0);
    gate.add_permits(1);
    let frame = tokio::time::timeout(Duration::from_secs(5), client.frames.recv())
        .await
        .expect("a frame once durable")
        .unwrap();
    assert!(
        frame.upto <= durable.load(Ordering::SeqCst),
        "frame up to {} but durable up to {}",
        frame.upto,
        durable.load(Ordering::SeqCst)
    );
    assert_eq!(decode_feed(&frame).jobs.len(), 3);
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn under_load_a_frame_carries_a_whole_tick() {
    let (bus, changes) = broadcast::channel::<Changes>(64);
    let gate = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let source = GatedSource {
        gate,
        published: Arc::new(AtomicI64::new(0)),
        durable: Arc::new(AtomicI64::new(0)),
    };
    let (fanout, shutdown) = ticking(source, changes);
    let mut client = fanout.join(feed(Filter::default()));
    let submit = |seq: i64| {
        bus.send(Changes::from(vec![submitted(seq, "a")])).unwrap();
    };
    // The first change after a quiet spell goes out at once.
    submit(1);
    let first = client.frames.recv().await.unwrap();
    assert_eq!((first.after, first.upto), (0, 1));
    let sent_at = Instant::now();
    // The next ones, 10 ms apart, wait for the tick and go out together.
    for seq in 2..=4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        submit(seq);
    }
    let second = client.frames.recv().await.unwrap();
    assert_eq!((second.after, second.upto), (1, 4));
    assert!(sent_at.elapsed() >= Duration::from_millis(50));
    shutdown.cancel();
}

#[test]
fn recent_changes_serve_a_catch_up_only_when_they_cover_its_whole_range() {
    let fanout = idle_fanout(0);
    let _client = fanout.join(feed(Filter::default()));
    fanout.emit(&(1..=3).map(|seq| submitted(seq, "a")).collect::<Vec<_>>());
    let seqs = |changes: Option<Vec<JobChange>>| {
        changes.map(|changes| changes.iter().map(|change| change.seq).collect::<Vec<_>>())
    };
    assert_eq!(seqs(fanout.recent(0, 3)), Some(vec![1, 2, 3]));
    assert_eq!(seqs(fanout.recent(1, 2)), Some(vec![2]));
    assert_eq!(seqs(fanout.recent(0, 4)), None, "not sent yet");
    let late = idle_fanout(10);
    late.emit(&[submitted(11, "a")]);
    assert_eq!(seqs(late.recent(5, 11)), None, "begins before the window");
    assert_eq!(seqs(late.recent(10, 11)), Some(vec![11]));
}
