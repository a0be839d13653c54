//! The behavioural suite every [`Store`] backend runs: the same scenarios, the same answers.
//! A backend's tests call [`run_store_suite`] with a factory that opens a fresh, empty store.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use crate::clock::{Timestamp, micros_to_timestamp};
use crate::event::EventKind;
use crate::job::{Job, JobId, JobStatus, NewJob, Progress};
use crate::store::{
    AttemptRef, CancelOutcome, IdempotencyKey, Inserted, Insertion, JobClaimParams,
    JobFinishParams, JobListParams, JobSearch, LeaseState, Outcome, Store,
    THROUGHPUT_BUCKET_SECONDS, THROUGHPUT_BUCKETS,
};

fn at(seconds: i64) -> Timestamp {
    micros_to_timestamp(1_700_000_000_000_000 + seconds * 1_000_000)
}

fn new_job(job_type: &str, queue: &str, priority: i32) -> NewJob {
    NewJob {
        job_type: job_type.into(),
        queue: queue.into(),
        priority,
        input: json!({"n": priority}),
        max_attempts: 3,
        status: JobStatus::Queued,
        run_at: at(0),
        parent: None,
        retry_of: None,
    }
}

fn list_all() -> JobListParams {
    JobListParams {
        limit: 1000,
        ..JobListParams::default()
    }
}

fn claim(queue: &str, limit: u32, now: Timestamp) -> JobClaimParams {
    JobClaimParams {
        queue: queue.into(),
        job_types: vec!["a".into(), "b".into()],
        limit,
        worker: "w1".into(),
        now,
        lease_until: now + chrono::Duration::seconds(30),
    }
}

fn attempt_of(job: &Job) -> AttemptRef {
    AttemptRef {
        id: job.id,
        attempt: job.attempt,
        worker: job.worker.clone().expect("a claimed job has a worker"),
    }
}

/// Runs every scenario, each on a fresh store from `open`.
pub async fn run_store_suite<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    insert_and_read_back(open().await).await;
    claims_follow_priority_then_age_and_skip_future_and_unknown_types(open().await).await;
    paused_queues_start_nothing(open().await).await;
    finishing_is_guarded_by_attempt_and_worker(open().await).await;
    terminal_jobs_never_change(open().await).await;
    failures_retry_or_fail(open().await).await;
    cancel_queued_and_running(open().await).await;
    leases_renew_and_expire(open().await).await;
    handed_back_attempts_do_not_count(open().await).await;
    logs_append_read_and_truncate(open().await).await;
    lost_log_bytes_are_counted_even_past_the_limit(open().await).await;
    a_healthy_store_passes_its_probe(open().await).await;
    a_known_key_answers_with_its_job(open().await).await;
    a_key_of_another_request_inserts_nothing(open().await).await;
    an_expired_key_is_free_again_and_pruned(open().await).await;
    listing_filters_and_pages(open().await).await;
    search_and_count_agree_with_the_in_memory_match(open().await).await;
    queue_stats_give_the_oldest_queued_job_and_throughput(open().await).await;
    events_number_every_change(open().await).await;
    finishing_claims_the_next_job_in_the_same_write(open().await).await;
    committed_changes_are_published_in_order(open().await).await;
    web_sessions_expire_and_end(open().await).await;
}

async fn web_sessions_expire_and_end(store: Arc<dyn Store>) {
    use crate::store::TokenRecord;
    let token = store
        .token_insert(TokenRecord {
            id: 0,
            prefix: "abc".into(),
            hash: vec![1, 2, 3],
            role: "admin".into(),
            name: "t".into(),
            created_at: at(0),
        })
        .await
        .unwrap();
    store
        .web_session_insert(vec![9; 32], token.id, at(0), at(100))
        .await
        .unwrap();
    let found = store.web_session_find(vec![9; 32], at(50)).await.unwrap();
    assert_eq!(found.map(|token| token.prefix), Some("abc".to_string()));
    assert!(
        store
            .web_session_find(vec![9; 32], at(100))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(
        store
            .web_session_find(vec![8; 32], at(50))
            .await
            .unwrap()
            .is_none(),
        "unknown"
    );
    assert!(store.web_session_delete(vec![9; 32]).await.unwrap());
    assert!(
        store
            .web_session_find(vec![9; 32], at(50))
            .await
            .unwrap()
            .is_none(),
        "ended"
    );
    assert!(!store.web_session_delete(vec![9; 32]).await.unwrap());
}

async fn committed_changes_are_published_in_order(store: Arc<dyn Store>) {
    use crate::bus::Change;
    let mut changes = store.subscribe();
    let job = store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap()
        .remove(0);
    let claimed = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    store
        .log_append(
            attempt_of(&claimed),
            "line\n".into(),
            100,
            "cut\n".into(),
            0,
        )
        .await
        .unwrap();
    store
        .job_progress_set(
            attempt_of(&claimed),
            Progress {
                fraction: 0.5,
                message: None,
            },
            at(2),
        )
        .await
        .unwrap();
    // A refused write publishes nothing.
    let stale = AttemptRef {
        attempt: 9,
        ..attempt_of(&claimed)
    };
    store
        .job_progress_set(
            stale,
            Progress {
                fraction: 0.9,
                message: None,
            },
            at(2),
        )
        .await
        .unwrap();
    store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&claimed),
            outcome: Outcome::Succeeded {
                output: Some(json!(1)),
            },
            now: at(3),
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The bus thread forwards asynchronously: wait for the last change.
    while !seen
        .iter()
        .any(|change| matches!(change, Change::Job(change) if change.kind == EventKind::Succeeded))
    {
        match changes.try_recv() {
            Ok(burst) => seen.extend(burst.iter().cloned()),
            Err(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the bus delivered {seen:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
    let mut last_seq = 0;
    let mut summary = Vec::new();
    for change in &seen {
        match change {
            Change::Job(change) => {
                assert!(change.seq > last_seq, "seq increases");
                last_seq = change.seq;
                assert_eq!(change.job.id, job.id);
                summary.push(format!("{}:{}", change.kind.as_str(), change.job.status));
            }
            Change::Log(log) => {
                assert_eq!((log.job_id, log.offset, &*log.data), (job.id, 0, "line\n"));
                summary.push("log".into());
            }
        }
    }
    assert_eq!(
        summary,
        vec![
            "submitted:queued",
            "started:running",
            "log",
            "progress:running",
            "succeeded:succeeded"
        ]
    );
    let stored = store.event_list(0, Some(job.id), 100).await.unwrap();
    let stored_seqs: Vec<i64> = stored.iter().map(|event| event.seq).collect();
    let published_seqs: Vec<i64> = seen
        .iter()
        .filter_map(|change| match change {
            Change::Job(change) => Some(change.seq),
            Change::Log(_) => None,
        })
        .collect();
    assert_eq!(
        stored_seqs, published_seqs,
        "the bus carries exactly the stored events"
    );
}

async fn finishing_claims_the_next_job_in_the_same_write(store: Arc<dyn Store>) {
    let jobs = store
        .job_insert_many(
            vec![
                new_job("a", "q", 0),
                new_job("a", "q", 0),
                new_job("a", "q", 7),
            ],
            at(0),
        )
        .await
        .unwrap();
    let first = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.id, jobs[2].id, "highest priority first");
    let finished = JobFinishParams {
        attempt: attempt_of(&first),
        outcome: Outcome::Succeeded { output: None },
        now: at(2),
    };
    let (done, next) = store
        .job_finish_and_claim(finished.clone(), Some(claim("q", 1, at(2))))
        .await
        .unwrap();
    assert_eq!(done.unwrap().status, JobStatus::Succeeded);
    assert_eq!(
        next.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![jobs[0].id]
    );
    assert_eq!(next[0].status, JobStatus::Running);
    // A stale finish changes nothing and claims nothing.
    let (stale, none) = store
        .job_finish_and_claim(finished, Some(claim("q", 1, at(3))))
        .await
        .unwrap();
    assert!(stale.is_none());
    assert!(none.is_empty());
    assert_eq!(
        store.job_get(jobs[1].id).await.unwrap().unwrap().status,
        JobStatus::Queued
    );
}

async fn insert_and_read_back(store: Arc<dyn Store>) {
    let jobs = store
        .job_insert_many(vec![new_job("a", "q", 0), new_job("b", "q", 5)], at(0))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs[0].id < jobs[1].id, "ids increase in insert order");
    let read = store.job_get(jobs[1].id).await.unwrap().unwrap();
    assert_eq!(read, jobs[1]);
    assert_eq!(read.status, JobStatus::Queued);
    assert_eq!(read.input, json!({"n": 5}));
    assert_eq!(read.created_at, at(0));
    assert_eq!(read.attempt, 0);
    assert!(store.job_get(JobId(9_999)).await.unwrap().is_none());
}

async fn claims_follow_priority_then_age_and_skip_future_and_unknown_types(store: Arc<dyn Store>) {
    let mut future = new_job("a", "q", 100);
    future.status = JobStatus::Scheduled;
    future.run_at = at(60);
    let jobs = store
        .job_insert_many(
            vec![
                new_job("a", "q", 0),
                new_job("a", "q", 10),
                new_job("b", "q", 0),
                new_job("zzz", "q", 50),
                new_job("a", "other", 99),
                future,
            ],
            at(0),
        )
        .await
        .unwrap();
    let claimed = store.job_claim(claim("q", 10, at(1))).await.unwrap();
    let ids: Vec<JobId> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(ids, vec![jobs[1].id, jobs[0].id, jobs[2].id]);
    for job in &claimed {
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.attempt, 1);
        assert_eq!(job.worker.as_deref(), Some("w1"));
        assert_eq!(job.started_at, Some(at(1)));
    }
    assert!(
        store
            .job_claim(claim("q", 10, at(2)))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .job_next_run_at("q", &["a".to_string()])
            .await
            .unwrap(),
        Some(at(60))
    );
    assert_eq!(
        store
            .job_next_run_at("q", &["b".to_string()])
            .await
            .unwrap(),
        None
    );
    let due = store.job_claim(claim("q", 10, at(61))).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, jobs[5].id);
    let limited = store.job_claim(claim("other", 0, at(61))).await.unwrap();
    assert!(limited.is_empty(), "limit 0 claims nothing");
}

async fn paused_queues_start_nothing(store: Arc<dyn Store>) {
    store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    store.queue_set_paused("q", true).await.unwrap();
    assert!(store.queue_paused("q").await.unwrap());
    assert!(
        store
            .job_claim(claim("q", 5, at(1)))
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.queue_stats(at(1)).await.unwrap();
    let q = stats.iter().find(|stats| stats.name == "q").unwrap();
    assert!(q.paused);
    assert_eq!(q.queued, 1);
    store.queue_set_paused("q", false).await.unwrap();
    assert_eq!(
        store.job_claim(claim("q", 5, at(1))).await.unwrap().len(),
        1
    );
}

async fn finishing_is_guarded_by_attempt_and_worker(store: Arc<dyn Store>) {
    store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let job = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    let stale = AttemptRef {
        attempt: job.attempt + 1,
        ..attempt_of(&job)
    };
    let other_worker = AttemptRef {
        worker: "w2".into(),
        ..attempt_of(&job)
    };
    for wrong in [stale, other_worker] {
        let refused = store
            .job_finish(JobFinishParams {
                attempt: wrong.clone(),
                outcome: Outcome::Succeeded { output: None },
                now: at(2),
            })
            .await
            .unwrap();
        assert!(refused.is_none(), "{wrong:?} must not finish the job");
        assert!(
            !store
                .job_progress_set(
                    wrong.clone(),
                    Progress {
                        fraction: 0.5,
                        message: None
                    },
                    at(2)
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .log_append(wrong, "x\n".into(), 100, "cut\n".into(), 0)
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .job_progress_set(
                attempt_of(&job),
                Progress {
                    fraction: 0.5,
                    message: Some("half".into())
                },
                at(2)
            )
            .await
            .unwrap()
    );
    let done = store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&job),
            outcome: Outcome::Succeeded {
                output: Some(json!({"ok": true})),
            },
            now: at(3),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"ok": true})));
    assert_eq!(done.finished_at, Some(at(3)));
    assert_eq!(done.pid, None, "an ended attempt has no process");
    assert_eq!(
        done.progress,
        Some(Progress {
            fraction: 0.5,
            message: Some("half".into())
        })
    );
}

async fn terminal_jobs_never_change(store: Arc<dyn Store>) {
    store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let job = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    let finish = |outcome| JobFinishParams {
        attempt: attempt_of(&job),
        outcome,
        now: at(2),
    };
    store
        .job_finish(finish(Outcome::Succeeded { output: None }))
        .await
        .unwrap()
        .unwrap();
    for outcome in [
        Outcome::Failed {
            error: "x".into(),
            output: None,
            retry_at: Some(at(5)),
        },
        Outcome::Cancelled { error: "x".into() },
        Outcome::Rescued {
            error: "x".into(),
            requeue: true,
            expired_only: false,
        },
        Outcome::HandedBack,
    ] {
        assert!(store.job_finish(finish(outcome)).await.unwrap().is_none());
    }
    let many = store
        .job_finish_many(vec![finish(Outcome::Rescued {
            expired_only: false,
            error: "x".into(),
            requeue: true,
        })])
        .await
        .unwrap();
    assert_eq!(many, vec![None]);
    assert!(matches!(
        store.job_cancel(job.id, at(3)).await.unwrap(),
        CancelOutcome::AlreadyTerminal(_)
    ));
    assert_eq!(
        store
            .job_lease_renew(vec![attempt_of(&job)], at(40))
            .await
            .unwrap(),
        vec![LeaseState::Lost]
    );
    let after = store.job_get(job.id).await.unwrap().unwrap();
    assert_eq!(after.status, JobStatus::Succeeded);
    assert_eq!(after.finished_at, Some(at(2)));
    assert!(
        store
            .job_claim(claim("q", 1, at(10)))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn failures_retry_or_fail(store: Arc<dyn Store>) {
    let mut one = new_job("a", "q", 0);
    one.max_attempts = 2;
    store.job_insert_many(vec![one], at(0)).await.unwrap();
    let first = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    let retried = store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&first),
            outcome: Outcome::Failed {
                error: "exit 1".into(),
                output: None,
                retry_at: Some(at(10)),
            },
            now: at(2),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.status, JobStatus::Scheduled);
    assert_eq!(retried.run_at, at(10));
    assert_eq!(retried.error.as_deref(), Some("exit 1"));
    assert!(
        store
            .job_claim(claim("q", 1, at(5)))
            .await
            .unwrap()
            .is_empty(),
        "backing off"
    );
    assert_eq!(
        store.job_promote_due(at(11)).await.unwrap(),
        vec!["q".to_string()]
    );
    assert_eq!(
        store.job_get(first.id).await.unwrap().unwrap().status,
        JobStatus::Queued
    );
    let second = store
        .job_claim(claim("q", 1, at(11)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.attempt, 2);
    assert_eq!(second.error, None, "a new attempt starts clean");
    let failed = store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&second),
            outcome: Outcome::Failed {
                error: "exit 2".into(),
                output: None,
                retry_at: None,
            },
            now: at(12),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("exit 2"));
}

async fn cancel_queued_and_running(store: Arc<dyn Store>) {
    let jobs = store
        .job_insert_many(vec![new_job("a", "q", 0), new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let running = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(running.id, jobs[0].id);
    match store.job_cancel(jobs[1].id, at(2)).await.unwrap() {
        CancelOutcome::Cancelled(job) => assert_eq!(job.status, JobStatus::Cancelled),
        other => panic!("queued job: {other:?}"),
    }
    match store.job_cancel(running.id, at(2)).await.unwrap() {
        CancelOutcome::Requested(job) => {
            assert_eq!(job.status, JobStatus::Running);
            assert!(job.cancel_requested);
        }
        other => panic!("running job: {other:?}"),
    }
    assert_eq!(
        store
            .job_lease_renew(vec![attempt_of(&running)], at(40))
            .await
            .unwrap(),
        vec![LeaseState::CancelRequested]
    );
    // A job whose cancel was requested never goes back to the queue, even when it fails.
    let ended = store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&running),
            outcome: Outcome::Failed {
                error: "killed".into(),
                output: None,
                retry_at: Some(at(50)),
            },
            now: at(3),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, JobStatus::Failed);
    assert!(matches!(
        store.job_cancel(JobId(9_999), at(3)).await.unwrap(),
        CancelOutcome::NotFound
    ));
}

async fn leases_renew_and_expire(store: Arc<dyn Store>) {
    let mut job = new_job("a", "q", 0);
    job.max_attempts = 1;
    store
        .job_insert_many(vec![job, new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let claimed = store.job_claim(claim("q", 2, at(1))).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(store.job_list_running().await.unwrap().len(), 2);
    let states = store
        .job_lease_renew(
            vec![attempt_of(&claimed[0])],
            at(1) + chrono::Duration::seconds(100),
        )
        .await
        .unwrap();
    assert_eq!(states, vec![LeaseState::Held]);
    let expired = store.job_list_lease_expired(at(60)).await.unwrap();
    assert_eq!(
        expired.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![claimed[1].id]
    );
    // A renewal that lands after the sweep read the lease wins over the rescue.
    let renewed_meanwhile = store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&claimed[0]),
            outcome: Outcome::Rescued {
                error: "lost".into(),
                requeue: true,
                expired_only: true,
            },
            now: at(60),
        })
        .await
        .unwrap();
    assert!(renewed_meanwhile.is_none(), "a held lease is not rescued");
    let expired_all = store.job_list_lease_expired(at(200)).await.unwrap();
    assert_eq!(expired_all.len(), 2);
    let results = store
        .job_finish_many(
            expired_all
                .iter()
                .map(|job| JobFinishParams {
                    attempt: attempt_of(job),
                    outcome: Outcome::Rescued {
                        expired_only: true,
                        error: "lost".into(),
                        requeue: job.attempt < job.max_attempts,
                    },
                    now: at(200),
                })
                .collect(),
        )
        .await
        .unwrap();
    let statuses: Vec<JobStatus> = results
        .iter()
        .map(|job| job.as_ref().unwrap().status)
        .collect();
    assert_eq!(statuses, vec![JobStatus::Failed, JobStatus::Queued]);
    let again = store.job_claim(claim("q", 5, at(201))).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2, "the lost attempt counted");
}

async fn handed_back_attempts_do_not_count(store: Arc<dyn Store>) {
    store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let job = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    let back = store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&job),
            outcome: Outcome::HandedBack,
            now: at(2),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, JobStatus::Queued);
    assert_eq!(back.attempt, 0);
    assert_eq!(back.worker, None);
    assert_eq!(
        store.job_claim(claim("q", 1, at(3))).await.unwrap()[0].attempt,
        1
    );
}

async fn logs_append_read_and_truncate(store: Arc<dyn Store>) {
    store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let job = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    let attempt = attempt_of(&job);
    assert!(
        store
            .log_append(attempt.clone(), "héllo\n".into(), 20, "[cut]\n".into(), 0)
            .await
            .unwrap()
    );
    assert!(
        store
            .log_append(attempt.clone(), "world\n".into(), 20, "[cut]\n".into(), 0)
            .await
            .unwrap()
    );
    let all = store.log_read(job.id, 0, 1000).await.unwrap();
    assert_eq!(all.data, "héllo\nworld\n");
    assert_eq!(all.size, 13);
    let tail = store.log_read(job.id, 7, 1000).await.unwrap();
    assert_eq!((tail.offset, tail.data.as_str()), (7, "world\n"));
    let inside_char = store.log_read(job.id, 2, 3).await.unwrap();
    assert_eq!((inside_char.offset, inside_char.data.as_str()), (3, "llo"));
    assert!(
        store
            .log_append(
                attempt.clone(),
                "0123456789\n".into(),
                20,
                "[cut]\n".into(),
                0
            )
            .await
            .unwrap()
    );
    let cut = store.log_read(job.id, 0, 1000).await.unwrap();
    assert_eq!(cut.data, "héllo\nworld\n0123456\n[cut]\n");
    assert!(
        store
            .log_append(attempt, "more\n".into(), 20, "[cut]\n".into(), 0)
            .await
            .unwrap()
    );
    assert_eq!(
        store.log_read(job.id, 0, 1000).await.unwrap().data,
        cut.data,
        "nothing past the limit"
    );
    let past_end = store.log_read(job.id, 10_000, 10).await.unwrap();
    assert_eq!((past_end.offset, past_end.data.as_str()), (cut.size, ""));
}

async fn lost_log_bytes_are_counted_even_past_the_limit(store: Arc<dyn Store>) {
    store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let job = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    let attempt = attempt_of(&job);
    let append = |text: &str, lost: u64| {
        store.log_append(attempt.clone(), text.into(), 20, "[cut]\n".into(), lost)
    };
    assert!(append("[lost 7]\nnext\n", 7).await.unwrap());
    let stored = store.job_get(job.id).await.unwrap().unwrap();
    assert_eq!(stored.log_lost, 7);
    assert_eq!(
        store.log_read(job.id, 0, 100).await.unwrap().data,
        "[lost 7]\nnext\n"
    );
    assert!(append("0123456789abc\n", 0).await.unwrap());
    let full = store.job_get(job.id).await.unwrap().unwrap().log_size;
    assert!(append("[lost 5]\n", 5).await.unwrap());
    let stored = store.job_get(job.id).await.unwrap().unwrap();
    assert_eq!(stored.log_lost, 12, "counted though the log is full");
    assert_eq!(stored.log_size, full, "no text past the limit");
}

fn key(name: &str, hash: u8, since: Timestamp) -> Option<IdempotencyKey> {
    Some(IdempotencyKey {
        scope: "submit".into(),
        key: name.into(),
        request_hash: vec![hash; 32],
        since,
    })
}

fn done(insertion: Insertion) -> Vec<Inserted> {
    match insertion {
        Insertion::Done(inserted) => inserted,
        conflict => panic!("expected the jobs, got {conflict:?}"),
    }
}

async fn a_known_key_answers_with_its_job(store: Arc<dyn Store>) {
    let first = done(
        store
            .job_insert_keyed(vec![(new_job("a", "q", 1), key("k1", 1, at(0)))], at(10))
            .await
            .unwrap(),
    );
    assert!(first[0].created);
    let again = done(
        store
            .job_insert_keyed(
                vec![
                    (new_job("a", "q", 1), key("k1", 1, at(0))),
                    (new_job("a", "q", 2), key("k2", 2, at(0))),
                    (new_job("a", "q", 2), key("k2", 2, at(0))),
                    (new_job("a", "q", 3), None),
                ],
                at(20),
            )
            .await
            .unwrap(),
    );
    assert_eq!(again[0].job.id, first[0].job.id, "the first job comes back");
    assert!(!again[0].created);
    assert!(again[1].created);
    assert_eq!(
        again[2].job.id, again[1].job.id,
        "a key twice in one batch is one job"
    );
    assert!(!again[2].created);
    assert!(again[3].created);
    let all = store.job_list(list_all()).await.unwrap();
    assert_eq!(all.len(), 3, "k1, k2 and the unkeyed job");
}

async fn a_key_of_another_request_inserts_nothing(store: Arc<dyn Store>) {
    let first = done(
        store
            .job_insert_keyed(vec![(new_job("a", "q", 1), key("k1", 1, at(0)))], at(10))
            .await
            .unwrap(),
    );
    let conflict = store
        .job_insert_keyed(
            vec![
                (new_job("a", "q", 2), None),
                (new_job("a", "q", 1), key("k1", 9, at(0))),
            ],
            at(20),
        )
        .await
        .unwrap();
    assert_eq!(
        conflict,
        Insertion::KeyConflict {
            index: 1,
            existing: Some(first[0].job.id)
        }
    );
    let in_batch = store
        .job_insert_keyed(
            vec![
                (new_job("a", "q", 2), key("k3", 1, at(0))),
                (new_job("a", "q", 2), key("k3", 2, at(0))),
            ],
            at(20),
        )
        .await
        .unwrap();
    assert_eq!(
        in_batch,
        Insertion::KeyConflict {
            index: 1,
            existing: None
        }
    );
    let all = store.job_list(list_all()).await.unwrap();
    assert_eq!(all.len(), 1, "neither batch inserted anything");
}

async fn an_expired_key_is_free_again_and_pruned(store: Arc<dyn Store>) {
    let first = done(
        store
            .job_insert_keyed(vec![(new_job("a", "q", 1), key("k1", 1, at(0)))], at(10))
            .await
            .unwrap(),
    );
    // Keys recorded before `since` (at 10 < 15) have expired: even another request may use it.
    let later = done(
        store
            .job_insert_keyed(vec![(new_job("a", "q", 5), key("k1", 7, at(15)))], at(30))
            .await
            .unwrap(),
    );
    assert!(later[0].created);
    assert_ne!(later[0].job.id, first[0].job.id);
    assert_eq!(store.idempotency_key_prune(at(31)).await.unwrap(), 1);
    assert_eq!(store.idempotency_key_prune(at(31)).await.unwrap(), 0);
}

async fn a_healthy_store_passes_its_probe(store: Arc<dyn Store>) {
    store.health_probe().await.unwrap();
}

async fn listing_filters_and_pages(store: Arc<dyn Store>) {
    let jobs = store
        .job_insert_many(
            (0..7)
                .map(|n| new_job(if n % 2 == 0 { "a" } else { "b" }, "q", n))
                .collect(),
            at(0),
        )
        .await
        .unwrap();
    let page = store
        .job_list(JobListParams {
            limit: 3,
            ..JobListParams::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![jobs[6].id, jobs[5].id, jobs[4].id]
    );
    let next = store
        .job_list(JobListParams {
            limit: 3,
            before: Some(jobs[4].id),
            ..JobListParams::default()
        })
        .await
        .unwrap();
    assert_eq!(next[0].id, jobs[3].id);
    let only_b = store
        .job_list(JobListParams {
            job_types: vec!["b".into()],
            limit: 100,
            ..JobListParams::default()
        })
        .await
        .unwrap();
    assert_eq!(only_b.len(), 3);
    store.job_claim(claim("q", 2, at(1))).await.unwrap();
    let running = store
        .job_list(JobListParams {
            statuses: vec![JobStatus::Running],
            limit: 100,
            ..JobListParams::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 2);
    let none = store
        .job_list(JobListParams {
            queues: vec!["nope".into()],
            limit: 100,
            ..JobListParams::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn search_and_count_agree_with_the_in_memory_match(store: Arc<dyn Store>) {
    let inputs = [
        json!({"text": "Hello <b>World</b>"}),
        json!({"text": "other", "n": 42}),
        json!({"path": "/srv/CLIPS/a.mov"}),
        json!(null),
    ];
    let mut jobs = Vec::new();
    for (index, input) in inputs.into_iter().enumerate() {
        let mut job = new_job(if index == 3 { "Render" } else { "a" }, "q", 0);
        job.input = input;
        jobs.extend(store.job_insert_many(vec![job], at(0)).await.unwrap());
    }
    let first_id = jobs[0].id.to_string();
    for (text, expected) in [
        ("hello", vec![0]),
        ("<B>", vec![0]),
        ("clips/A", vec![2]),
        ("render", vec![3]),
        ("42", vec![1]),
        (first_id.as_str(), vec![0]),
        ("nothing like it", vec![]),
    ] {
        let search = JobSearch::new(text).expect("not blank");
        let params = JobListParams {
            search: Some(search.clone()),
            limit: 100,
            ..JobListParams::default()
        };
        let found: Vec<JobId> = store
            .job_list(params.clone())
            .await
            .unwrap()
            .iter()
            .map(|job| job.id)
            .collect();
        let want: Vec<JobId> = expected.iter().rev().map(|&index| jobs[index].id).collect();
        assert_eq!(found, want, "search `{text}`");
        let in_memory: Vec<JobId> = jobs
            .iter()
            .rev()
            .filter(|job| search.matches(job))
            .map(|job| job.id)
            .collect();
        assert_eq!(
            found, in_memory,
            "SQL and JobSearch::matches agree on `{text}`"
        );
        assert_eq!(
            store.job_count(params).await.unwrap(),
            found.len() as u64,
            "count of `{text}`"
        );
    }
    assert_eq!(JobSearch::new("  "), None, "blank text is no search");
    let typed = JobListParams {
        job_types: vec!["a".into()],
        search: JobSearch::new("text"),
        ..JobListParams::default()
    };
    assert_eq!(store.job_count(typed).await.unwrap(), 2);
}

async fn queue_stats_give_the_oldest_queued_job_and_throughput(store: Arc<dyn Store>) {
    let first = store
        .job_insert_many(vec![new_job("a", "q", 0), new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    store
        .job_insert_many(vec![new_job("a", "q", 0)], at(5))
        .await
        .unwrap();
    // Finish two jobs 40 s apart; the first claim takes the oldest, so the oldest queued job
    // becomes the second one inserted at 0, then the one inserted at 5.
    for finished_at in [at(600), at(640)] {
        let job = store
            .job_claim(claim("q", 1, finished_at))
            .await
            .unwrap()
            .remove(0);
        store
            .job_finish(JobFinishParams {
                attempt: attempt_of(&job),
                outcome: Outcome::Succeeded { output: None },
                now: finished_at,
            })
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(first.len(), 2);
    let now = at(645);
    let stats = store.queue_stats(now).await.unwrap();
    let q = stats.iter().find(|stats| stats.name == "q").unwrap();
    assert_eq!(q.queued, 1);
    assert_eq!(q.oldest_queued_at, Some(at(5)));
    assert_eq!(q.finished_per_bucket.len(), THROUGHPUT_BUCKETS);
    assert_eq!(q.finished_per_bucket.iter().sum::<u64>(), 2);
    let bucket = |at: Timestamp| {
        let width = THROUGHPUT_BUCKET_SECONDS * 1_000_000;
        let current = now.timestamp_micros().div_euclid(width);
        THROUGHPUT_BUCKETS - 1 - (current - at.timestamp_micros().div_euclid(width)) as usize
    };
    assert_eq!(q.finished_per_bucket[bucket(at(640))], 1);
    assert_eq!(q.finished_per_bucket[bucket(at(600))], 1);
    assert_eq!(
        q.finished_per_bucket[THROUGHPUT_BUCKETS - 1],
        1,
        "640 is in 645's window"
    );
    let later = store.queue_stats(at(645 + 3600)).await.unwrap();
    let q = later.iter().find(|stats| stats.name == "q").unwrap();
    assert_eq!(
        q.finished_per_bucket.iter().sum::<u64>(),
        0,
        "an hour later: none recent"
    );
    assert_eq!(q.finished_per_bucket.len(), THROUGHPUT_BUCKETS);
}

async fn events_number_every_change(store: Arc<dyn Store>) {
    let job = store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap()
        .remove(0);
    let claimed = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    store
        .job_progress_set(
            attempt_of(&claimed),
            Progress {
                fraction: 0.3,
                message: None,
            },
            at(2),
        )
        .await
        .unwrap();
    store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&claimed),
            outcome: Outcome::Succeeded { output: None },
            now: at(3),
        })
        .await
        .unwrap();
    let events = store.event_list(0, Some(job.id), 100).await.unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Submitted,
            EventKind::Started,
            EventKind::Progress,
            EventKind::Succeeded
        ]
    );
    assert!(events.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(events[3].status, JobStatus::Succeeded);
    let after = store.event_list(events[1].seq, None, 100).await.unwrap();
    assert_eq!(after.len(), 2);
    let newest = store.event_list_newest(job.id, 2).await.unwrap();
    assert_eq!(
        newest,
        events[2..].to_vec(),
        "the last two, oldest of them first"
    );
    assert_eq!(
        store.event_list_newest(JobId(999_999), 2).await.unwrap(),
        vec![]
    );
}
