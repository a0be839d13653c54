//! Several servers on one PostgreSQL database (whatever `RUNWAY_TEST_BACKEND` says): they
//! share the work and the queues' limits, each one's live feed shows every job, and a server
//! killed mid-run leaves its jobs to the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use runway_api::{FeedMessage, SubmitBatchRequest, SubmitJobRequest};
use runway_client::UpdatesQuery;
use serde_json::json;

use crate::{Server, TestDatabase, alive, eventually, finished};

/// A batch of `count` jobs of `job_type`; their ids.
async fn submit_many(server: &Server, job_type: &str, count: usize) -> Vec<String> {
    let batch = server
        .client()
        .submit_batch(&SubmitBatchRequest {
            jobs: (0..count)
                .map(|n| SubmitJobRequest {
                    job_type: job_type.into(),
                    input: json!({"n": n}),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .unwrap();
    batch.jobs.into_iter().map(|job| job.id).collect()
}

/// The workers that ran each job, as stored.
fn workers(server: &Server) -> BTreeMap<String, String> {
    server
        .query("SELECT id, worker FROM jobs WHERE worker IS NOT NULL")
        .into_iter()
        .map(|row| (row[0].clone().unwrap(), row[1].clone().unwrap()))
        .collect()
}

#[tokio::test]
async fn two_servers_share_the_work_and_each_feed_shows_every_job_end() {
    let database = Arc::new(TestDatabase::create());
    let config = |_: &std::path::Path| {
        "[queues.default]\nconcurrency = 4\nserver_concurrency = 2\n\
         [types.work]\ncommand = [\"sleep\", \"0.3\"]\nmax_attempts = 1\n"
            .to_string()
    };
    let a = Server::start_on(&database, None, config);
    let b = Server::start_on(&database, Some(&a.token), config);
    let mut feed_on_a = a.client().updates(&UpdatesQuery::default()).await.unwrap();
    let mut feed_on_b = b.client().updates(&UpdatesQuery::default()).await.unwrap();

    let ids = submit_many(&a, "work", 8).await;
    for feed in [&mut feed_on_a, &mut feed_on_b] {
        let mut ended = BTreeSet::new();
        while ended.len() < ids.len() {
            let message = tokio::time::timeout(Duration::from_secs(30), feed.next())
                .await
                .expect("every job's end within 30s")
                .unwrap()
                .unwrap();
            if let FeedMessage::Frame(frame) = message {
                for update in frame.jobs {
                    if update.status == "succeeded" {
                        ended.insert(update.job_id);
                    }
                }
            }
        }
        assert_eq!(ended, ids.iter().cloned().collect());
    }
    // Both ran jobs: B heard of the submit on A and took its share.
    let ran = workers(&a);
    for server in [&a, &b] {
        let id = server.server_id();
        assert!(
            ran.values()
                .any(|worker| worker.starts_with(&format!("{id}-"))),
            "server {id} ran none of {ran:?}"
        );
    }
}

#[tokio::test]
async fn a_queue_of_one_runs_one_job_at_a_time_across_servers() {
    let database = Arc::new(TestDatabase::create());
    let shared = tempfile::tempdir().unwrap();
    let lock = shared.path().join("lock");
    // A second job at once finds the lock taken and fails.
    let config = |_: &std::path::Path| {
        format!(
            "[queues.gpu]\nconcurrency = 1\n\
             [types.render]\nqueue = \"gpu\"\nmax_attempts = 1\n\
             command = [\"sh\", \"-c\", \"mkdir {lock} || exit 3; sleep 0.1; rmdir {lock}\"]\n",
            lock = lock.display()
        )
    };
    let a = Server::start_on(&database, None, config);
    let b = Server::start_on(&database, Some(&a.token), config);
    let ids = submit_many(&b, "render", 6).await;
    let client = a.client();
    for id in &ids {
        let job = finished(&client, id).await;
        assert_eq!(job.status, "succeeded", "job {id}: {:?}", job.error);
    }
}

#[tokio::test]
async fn a_killed_servers_jobs_finish_on_another_and_its_processes_end_when_it_returns() {
    let database = Arc::new(TestDatabase::create());
    let config = |dir: &std::path::Path| {
        // The first run sleeps (and is orphaned by the kill); the run again ends at once.
        format!(
            "[server]\nlease = \"2s\"\nsweep_interval = \"200ms\"\n\
             [queues.default]\nconcurrency = 2\n\
             [types.long]\nmax_attempts = 3\n\
             command = [\"sh\", \"-c\", \"echo $$ >> {pids}; [ $RUNWAY_RUN = 1 ] && exec sleep 60; true\"]\n",
            pids = dir.join("pids").display()
        )
    };
    let mut a = Server::start_on(&database, None, config);
    let ids = submit_many(&a, "long", 2).await;
    let client = a.client();
    eventually(
        "both jobs running on A",
        Duration::from_secs(20),
        || async {
            let mut running = 0;
            for id in &ids {
                if client.job(id).await.unwrap().status == "running" {
                    running += 1;
                }
            }
            let pids = std::fs::read_to_string(a.path("pids")).unwrap_or_default();
            (running == 2 && pids.lines().count() == 2).then_some(())
        },
    )
    .await;
    let b = Server::start_on(&database, Some(&a.token), config);
    a.kill9();
    let orphans: Vec<i32> = std::fs::read_to_string(a.path("pids"))
        .unwrap()
        .lines()
        .map(|pid| pid.parse().unwrap())
        .collect();
    assert!(
        orphans.iter().all(|pid| alive(*pid)),
        "a kill -9 leaves its commands running"
    );

    let client = b.client();
    for id in &ids {
        let job = finished(&client, id).await;
        assert_eq!(job.status, "succeeded", "job {id}: {:?}", job.error);
        assert_eq!(job.attempt, 2, "job {id}: the attempt lost with A counts");
    }
    let b_id = b.server_id();
    for (id, worker) in workers(&b) {
        assert!(
            worker.starts_with(&format!("{b_id}-")),
            "job {id} ended on {worker}"
        );
    }
    let ends = b.query(
        "SELECT job_id, count(*) FROM events
         WHERE kind IN ('succeeded', 'failed', 'cancelled') GROUP BY job_id",
    );
    assert_eq!(ends.len(), 2);
    assert!(
        ends.iter().all(|row| row[1].as_deref() == Some("1")),
        "{ends:?}"
    );

    // Back, A ends what its previous life left running.
    a.launch();
    eventually("A's orphans to end", Duration::from_secs(20), || async {
        orphans.iter().all(|pid| !alive(*pid)).then_some(())
    })
    .await;
}

/// A PostgreSQL server of this test's own, which it may restart.
struct OwnPostgres {
    dir: tempfile::TempDir,
    url: String,
}

impl OwnPostgres {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/throwaway-postgres")
    }

    fn start() -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        let started = std::process::Command::new(OwnPostgres::script())
            .arg("start")
            .arg(dir.path().join("cluster"))
            .output()
            .unwrap();
        assert!(started.status.success(), "{}", crate::stderr(&started));
        OwnPostgres {
            url: crate::stdout(&started).trim().to_string(),
            dir,
        }
    }

    fn restart(&self) {
        let restarted = std::process::Command::new(OwnPostgres::script())
            .arg("restart")
            .arg(self.dir.path().join("cluster"))
            .output()
            .unwrap();
        assert!(restarted.status.success(), "{}", crate::stderr(&restarted));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new(OwnPostgres::script())
            .arg("stop")
            .arg(self.dir.path().join("cluster"))
            .output();
    }
}

#[tokio::test]
async fn postgresql_restarting_under_load_loses_no_acknowledged_job_and_ends_each_once() {
    // Declared first, dropped last: the database is dropped on it.
    let postgres = Arc::new(OwnPostgres::start());
    let database = Arc::new(TestDatabase::on(&postgres.url));
    let config = |_: &std::path::Path| {
        "[server]\nlease = \"3s\"\nsweep_interval = \"200ms\"\n\
         [queues.default]\nconcurrency = 8\nserver_concurrency = 4\n\
         [types.quick]\ncommand = [\"true\"]\nmax_attempts = 5\n"
            .to_string()
    };
    let a = Server::start_on(&database, None, config);
    let b = Server::start_on(&database, Some(&a.token), config);
    let clients = [a.client(), b.client()];

    let mut acknowledged = Vec::new();
    let mut refused_since = None;
    let mut restart = None;
    let mut round = 0;
    while acknowledged.len() < 1000 {
        if restart.is_none() && acknowledged.len() >= 300 {
            // While submits go on.
            let postgres = Arc::clone(&postgres);
            restart = Some(tokio::task::spawn_blocking(move || postgres.restart()));
        }
        let batch = SubmitBatchRequest {
            jobs: (0..10)
                .map(|n| SubmitJobRequest {
                    job_type: "quick".into(),
                    input: json!({"round": round, "n": n}),
                    ..Default::default()
                })
                .collect(),
        };
        match clients[round % 2].submit_batch(&batch).await {
            Ok(batch) => {
                refused_since = None;
                acknowledged.extend(batch.jobs.into_iter().map(|job| job.id));
            }
            Err(error) => {
                // Refused while the database was away: not acknowledged, so not promised.
                assert_eq!(error.status(), Some(503), "{error}");
                let away = *refused_since.get_or_insert_with(std::time::Instant::now);
                assert!(
                    away.elapsed() < Duration::from_secs(60),
                    "the servers never came back: {error}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        round += 1;
    }
    restart.expect("restarted under load").await.unwrap();
    let client = &clients[0];
    for id in &acknowledged {
        let job = finished(client, id).await;
        assert_eq!(job.status, "succeeded", "job {id}: {:?}", job.error);
    }
    let ends: BTreeMap<String, String> = a
        .query(
            "SELECT job_id, count(*) FROM events
             WHERE kind IN ('succeeded', 'failed', 'cancelled') GROUP BY job_id",
        )
        .into_iter()
        .map(|row| (row[0].clone().unwrap(), row[1].clone().unwrap()))
        .collect();
    for id in &acknowledged {
        assert_eq!(
            ends.get(id).map(String::as_str),
            Some("1"),
            "job {id} ended once"
        );
    }
    // Both still take work by themselves.
    for client in &clients {
        let id = crate::submit(client, "quick", json!({"after": true})).await;
        assert_eq!(finished(client, &id).await.status, "succeeded");
    }
}

#[tokio::test]
async fn a_server_stopping_hands_its_jobs_to_another_at_once() {
    let database = Arc::new(TestDatabase::create());
    // The lease is long: a job that reached B by its expiry would take a minute.
    let config = |_: &std::path::Path| {
        "[server]\nlease = \"60s\"\nshutdown_grace = \"0s\"\n\
         [types.long]\nmax_attempts = 1\n\
         command = [\"sh\", \"-c\", \"[ $RUNWAY_RUN = 1 ] && exec sleep 30; true\"]\n"
            .to_string()
    };
    let mut a = Server::start_on(&database, None, config);
    let id = crate::submit(&a.client(), "long", json!({})).await;
    let client = a.client();
    eventually("the job running on A", Duration::from_secs(20), || async {
        (client.job(&id).await.unwrap().status == "running").then_some(())
    })
    .await;
    let b = Server::start_on(&database, Some(&a.token), config);
    assert_eq!(a.terminate(), Some(0));
    let started = std::time::Instant::now();
    let job = finished(&b.client(), &id).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "B took the job only after {:?}",
        started.elapsed()
    );
    assert_eq!(job.status, "succeeded", "{:?}", job.error);
    assert_eq!(job.attempt, 1, "a handed-back attempt does not count");
    let worker = &workers(&b)[&id];
    assert!(
        worker.starts_with(&format!("{}-", b.server_id())),
        "{worker}"
    );
}

#[tokio::test]
async fn a_jobs_log_reaches_a_feed_on_another_server_as_it_is_written() {
    let database = Arc::new(TestDatabase::create());
    // Only B knows the type, so only B runs it.
    let a = Server::start_on(&database, None, |_| String::new());
    let b = Server::start_on(&database, Some(&a.token), |_| {
        "[types.talk]\nmax_attempts = 1\n\
         command = [\"sh\", \"-c\", \"echo first; sleep 0.5; echo second\"]\n"
            .to_string()
    });
    let mut feed = a
        .client()
        .updates(&UpdatesQuery {
            logs: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = crate::submit(&b.client(), "talk", json!({})).await;
    let mut log = String::new();
    let mut ended = false;
    while !ended {
        let message = tokio::time::timeout(Duration::from_secs(20), feed.next())
            .await
            .expect("A's feed hears of B's job within 20s")
            .unwrap()
            .unwrap();
        if let FeedMessage::Frame(frame) = message {
            for chunk in frame.logs.iter().filter(|chunk| chunk.job_id == id) {
                assert_eq!(chunk.offset, log.len() as u64, "log chunks are contiguous");
                log.push_str(&chunk.data);
            }
            ended |= frame
                .jobs
                .iter()
                .any(|update| update.job_id == id && update.status == "succeeded");
        }
    }
    assert_eq!(log, "first\nsecond\n");
}

#[tokio::test]
async fn a_pause_or_resume_made_on_one_server_holds_on_the_others() {
    let database = Arc::new(TestDatabase::create());
    // Only A runs jobs; B is where the queue is paused and resumed.
    let a = Server::start_on(&database, None, |_| {
        "[server]\nsweep_interval = \"100ms\"\n\
         [types.quick]\ncommand = [\"true\"]\nmax_attempts = 1\n"
            .to_string()
    });
    let b = Server::start_on(&database, Some(&a.token), |_| {
        "[server]\nsweep_interval = \"100ms\"\n".to_string()
    });
    let (on_a, on_b) = (a.client(), b.client());

    on_b.pause_queue("default").await.unwrap();
    let held = crate::submit(&on_a, "quick", json!({})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        on_a.job(&held).await.unwrap().status,
        "queued",
        "paused on B, A starts nothing"
    );
    on_b.resume_queue("default").await.unwrap();
    assert_eq!(
        finished(&on_a, &held).await.status,
        "succeeded",
        "resumed on B, A goes on"
    );

    // Paused on A and resumed on B: A takes the resume up by itself.
    on_a.pause_queue("default").await.unwrap();
    on_b.resume_queue("default").await.unwrap();
    let id = crate::submit(&on_a, "quick", json!({})).await;
    assert_eq!(finished(&on_a, &id).await.status, "succeeded");
}

#[tokio::test]
async fn a_feed_resumed_with_since_over_and_over_while_two_servers_write_sees_every_change_once() {
    let database = Arc::new(TestDatabase::create());
    let config = |_: &std::path::Path| {
        "[server]\nbody_limit = 4194304\n\
         [queues.default]\nconcurrency = 8\nserver_concurrency = 4\n\
         [types.noop]\nhandler = \"noop\"\nmax_attempts = 1\n"
            .to_string()
    };
    let a = Server::start_on(&database, None, config);
    let b = Server::start_on(&database, Some(&a.token), config);
    async fn next_frame(feed: &mut runway_client::Feed) -> runway_api::Frame {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), feed.next())
                .await
                .expect("a frame within 30s")
                .unwrap()
                .unwrap();
            if let FeedMessage::Frame(frame) = message {
                return frame;
            }
        }
    }
    let open = |since: i64| {
        let client = a.client();
        async move {
            client
                .updates(&UpdatesQuery {
                    since: Some(since),
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };

    let mut feed = open(0).await;
    // A burst of 2,000 jobs, half submitted on each server in batches, run by both.
    let writers: Vec<_> = [a.client(), b.client()]
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for batch in 0..20 {
                    let request = SubmitBatchRequest {
                        jobs: (0..50)
                            .map(|n| SubmitJobRequest {
                                job_type: "noop".into(),
                                input: json!({"batch": batch, "n": n}),
                                ..Default::default()
                            })
                            .collect(),
                    };
                    let batch = client.submit_batch(&request).await.unwrap();
                    ids.extend(batch.jobs.into_iter().map(|job| job.id));
                }
                ids
            })
        })
        .collect();
    // Every submitted id, once both writers are done: the burst may end on the feed before
    // the writers hear their last answers.
    let mut submitted = tokio::spawn(async move {
        let mut all = BTreeSet::new();
        for writer in writers {
            all.extend(writer.await.unwrap());
        }
        all
    });
    let mut seen: Vec<i64> = Vec::new();
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    let mut upto = 0;
    let mut reconnects = 0;
    let mut ids: Option<BTreeSet<String>> = None;
    let all_ended = |ids: &Option<BTreeSet<String>>, latest: &BTreeMap<String, String>| {
        ids.as_ref().is_some_and(|ids| {
            ids.iter()
                .all(|id| latest.get(id).map(String::as_str) == Some("succeeded"))
        })
    };
    // Where the feed was last opened again, until its first frame.
    let mut resumed_from: Option<i64> = None;
    loop {
        let frame = tokio::select! {
            frame = next_frame(&mut feed) => frame,
            all = &mut submitted, if ids.is_none() => {
                ids = Some(all.unwrap());
                if all_ended(&ids, &latest) {
                    break;
                }
                continue;
            }
        };
        if let Some(from) = resumed_from.take() {
            assert_eq!(frame.after, from, "the resume starts where the client was");
        }
        assert!(
            frame.after >= upto,
            "frame ({}, {}] after {upto}",
            frame.after,
            frame.upto
        );
        for update in frame.jobs {
            assert!(update.seq > upto, "seq {} again after {upto}", update.seq);
            seen.push(update.seq);
            latest.insert(update.job_id, update.status);
        }
        upto = frame.upto;
        if all_ended(&ids, &latest) {
            break;
        }
        // Cut off every few frames and resumed where it was.
        if seen.len() / 200 > reconnects {
            reconnects += 1;
            drop(feed);
            feed = open(upto).await;
            resumed_from = Some(upto);
        }
    }
    assert!(reconnects >= 5, "the feed was resumed {reconnects} times");
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no change was sent twice");
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "in seq order across every seam"
    );
    assert_eq!(latest.len(), 2000, "every job was heard of");
}
