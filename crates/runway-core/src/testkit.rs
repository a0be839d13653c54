//! The behavioural suite every [`Store`] backend runs: the same scenarios, the same answers.
//! A backend's tests call [`run_store_suite`] with a factory that opens a fresh, empty store.

use std::sync::Arc;

use serde_json::json;

mod ordering;
pub use ordering::{
    every_sort_pages_in_core_order_with_missing_values_last,
    time_ranges_keep_to_jobs_created_or_finished_within,
};

use crate::clock::{Timestamp, micros_to_timestamp};
use crate::event::EventKind;
use crate::job::{Job, JobId, JobStatus, NewJob, Phase, Progress};
use crate::store::{
    Artifact, ArtifactUsage, AttemptRef, CancelOutcome, IdempotencyKey, Inserted, Insertion,
    JobClaimParams, JobFinishParams, JobListParams, JobSearch, LeaseState, Outcome, Spawn, Store,
    THROUGHPUT_BUCKET_SECONDS, THROUGHPUT_BUCKETS, TreeDeletion, TreeFilter,
};

fn at(seconds: i64) -> Timestamp {
    micros_to_timestamp(1_700_000_000_000_000 + seconds * 1_000_000)
}

fn new_job(job_type: &str, queue: &str, priority: i32) -> NewJob {
    NewJob {
        priority,
        max_attempts: 3,
        ..NewJob::new(job_type, queue, json!({"n": priority}), at(0))
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
        queue_limit: 100,
        worker: "w1".into(),
        now,
        lease_until: now + chrono::Duration::seconds(30),
        unanswered: Vec::new(),
    }
}

fn attempt_of(job: &Job) -> AttemptRef {
    AttemptRef {
        id: job.id,
        attempt: job.attempt,
        worker: job.worker.clone().expect("a claimed job has a worker"),
    }
}

/// One test per scenario of the suite, each on a fresh store: `store_suite!(open)` in a
/// backend's tests, where `async fn open() -> (Arc<dyn Store>, Bus, Guard)` opens an empty
/// store publishing on `Bus` and `Guard` keeps what it needs alive (a temporary directory, a
/// database). A failure names its scenario.
#[macro_export]
macro_rules! store_suite {
    ($open:path) => {
        $crate::store_suite!(@each $open; insert_and_read_back, a_batch_is_stored_with_every_field_of_each_job, claims_follow_priority_then_age_and_skip_future_and_unknown_types, paused_queues_start_nothing, claims_stop_at_the_queue_limit_whoever_runs_the_jobs, a_repeated_claim_answers_the_jobs_its_lost_answer_took, finishing_is_guarded_by_attempt_and_worker, terminal_jobs_never_change, failures_retry_or_fail, cancel_queued_and_running, leases_renew_and_expire, handed_back_attempts_do_not_count, logs_append_read_and_truncate, lost_log_bytes_are_counted_even_past_the_limit, a_healthy_store_passes_its_probe, a_known_key_answers_with_its_job, a_key_of_another_request_inserts_nothing, an_expired_key_is_free_again_and_pruned, listing_filters_and_pages, search_and_count_agree_with_the_in_memory_match, counts_follow_every_change_of_every_job, a_search_pages_newest_first_below_its_cursor, queue_stats_give_the_oldest_queued_job_and_throughput, events_number_every_change, finishing_many_claims_their_next_jobs_in_the_same_write, a_batch_ending_a_child_and_its_parent_sees_the_child_end_first, web_sessions_expire_and_end, a_job_is_inserted_with_its_children_in_place, spawns_count_on_the_parent_and_a_known_key_returns_its_child, a_spawn_is_refused_whole_for_a_stale_attempt_a_reused_key_or_the_limit, the_last_child_to_finish_queues_the_join, cancelling_a_parent_cancels_every_unfinished_descendant, lists_filter_roots_and_children_and_children_page_in_order, a_retried_tree_is_inserted_with_its_carried_children_succeeded, artifacts_are_recorded_by_a_running_attempt_and_replaced_by_name, a_finished_tree_is_deleted_whole_and_shared_files_stay_named, finished_trees_past_their_retention_are_pruned_oldest_first, a_trigger_keeps_its_record_and_finds_its_jobs, jobs_are_counted_by_queue_type_and_status, users_and_tokens_are_kept_and_removed_whole, a_member_lists_and_counts_only_its_own_jobs, a_signin_code_is_spent_once_and_expires, a_log_keeps_the_attempt_stream_and_time_of_each_part, a_jobs_retries_are_listed_and_counted, a_queue_history_counts_by_bucket_and_times_what_ran, every_sort_pages_in_core_order_with_missing_values_last, time_ranges_keep_to_jobs_created_or_finished_within);
        $crate::store_suite!(@with_bus $open; committed_changes_are_published_in_order);
    };
    (@each $open:path; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let (store, _bus, _guard) = $open().await;
                $crate::testkit::$scenario(store).await;
            }
        )*
    };
    (@with_bus $open:path; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let (store, bus, _guard) = $open().await;
                $crate::testkit::$scenario(store, bus).await;
            }
        )*
    };
}

pub async fn jobs_are_counted_by_queue_type_and_status(store: Arc<dyn Store>) {
    use crate::store::KindCount;
    let jobs = vec![
        new_job("a", "q", 0),
        new_job("a", "q", 0),
        new_job("b", "r", 0),
    ];
    let inserted = store.job_insert_many(jobs, at(0)).await.unwrap();
    let claimed = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&claimed),
            outcome: Outcome::Succeeded { output: None },
            now: at(2),
        })
        .await
        .unwrap();
    let mut counts = store.job_count_by_kind().await.unwrap();
    counts.sort_by(|a, b| {
        (&a.queue, &a.job_type, a.status.as_str()).cmp(&(&b.queue, &b.job_type, b.status.as_str()))
    });
    let count = |queue: &str, job_type: &str, status: JobStatus, count: u64| KindCount {
        queue: queue.into(),
        job_type: job_type.into(),
        status,
        count,
    };
    assert_eq!(
        counts,
        [
            count("q", "a", JobStatus::Queued, 1),
            count("q", "a", JobStatus::Succeeded, 1),
            count("r", "b", JobStatus::Queued, 1),
        ]
    );
    assert_eq!(inserted.len(), 3);
}

pub async fn a_trigger_keeps_its_record_and_finds_its_jobs(store: Arc<dyn Store>) {
    assert_eq!(store.trigger_get("notes").await.unwrap(), None);
    store
        .trigger_put("notes", json!({"paused": true}), Some(vec![1, 2, 3]))
        .await
        .unwrap();
    // A state without a snapshot keeps the snapshot recorded.
    store
        .trigger_put("notes", json!({"paused": false}), None)
        .await
        .unwrap();
    let record = store.trigger_get("notes").await.unwrap().expect("recorded");
    assert_eq!(record.state, json!({"paused": false}));
    assert_eq!(record.snapshot, Some(vec![1, 2, 3]));
    assert_eq!(store.trigger_get("other").await.unwrap(), None);

    let mut jobs = Vec::new();
    for n in 0..5 {
        let mut job = new_job("a", "q", 0);
        job.trigger = (n % 2 == 0).then(|| "notes".to_string());
        jobs.push(job);
    }
    let inserted = store.job_insert_many(jobs, at(0)).await.unwrap();
    let found: Vec<JobId> = store
        .job_list_by_trigger("notes", 2)
        .await
        .unwrap()
        .iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(
        found,
        [inserted[4].id, inserted[2].id],
        "newest first, limited"
    );
    assert_eq!(inserted[0].trigger.as_deref(), Some("notes"));
    let read = store.job_get(inserted[0].id).await.unwrap().unwrap();
    assert_eq!(read.trigger.as_deref(), Some("notes"));
    assert!(
        store
            .job_list_by_trigger("other", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn token(prefix: &str) -> crate::users::TokenRecord {
    crate::users::TokenRecord {
        id: 0,
        prefix: prefix.into(),
        hash: prefix.as_bytes().to_vec(),
        user: crate::users::UserId(0),
        name: format!("token {prefix}"),
        created_at: at(0),
        expires_at: None,
    }
}

pub async fn web_sessions_expire_and_end(store: Arc<dyn Store>) {
    use crate::users::Role;
    let (_, token) = store
        .user_insert("alice", Role::Admin, token("abc"), at(0))
        .await
        .unwrap()
        .unwrap();
    store
        .web_session_insert(vec![9; 32], token.id, at(0), at(100))
        .await
        .unwrap();
    let found = store.web_session_find(vec![9; 32], at(50)).await.unwrap();
    assert_eq!(
        found.map(|holder| (holder.token.prefix, holder.user.name)),
        Some(("abc".to_string(), "alice".to_string()))
    );
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

pub async fn users_and_tokens_are_kept_and_removed_whole(store: Arc<dyn Store>) {
    use crate::users::{Guarded, Role};
    let (alice, first) = store
        .user_insert("alice", Role::Member, token("a1"), at(1))
        .await
        .unwrap()
        .expect("a new name");
    assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::Member));
    assert_eq!(first.user, alice.id);
    assert!(
        store
            .user_insert("alice", Role::Admin, token("a9"), at(2))
            .await
            .unwrap()
            .is_none(),
        "a name is taken while its user stays"
    );
    assert!(
        store.token_find("a9").await.unwrap().is_none(),
        "a refused user leaves no token behind"
    );
    let (bob, _) = store
        .user_insert("bob", Role::Admin, token("b1"), at(3))
        .await
        .unwrap()
        .unwrap();
    let second = store
        .token_insert(crate::users::TokenRecord {
            user: alice.id,
            expires_at: Some(at(100)),
            ..token("a2")
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .user_list()
            .await
            .unwrap()
            .iter()
            .map(|user| user.name.as_str())
            .collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    assert_eq!(store.user_find("bob").await.unwrap(), Some(bob.clone()));
    let alices: Vec<String> = store
        .token_list(Some(alice.id))
        .await
        .unwrap()
        .into_iter()
        .map(|token| token.prefix)
        .collect();
    assert_eq!(alices, ["a1", "a2"]);
    assert_eq!(store.token_list(None).await.unwrap().len(), 3);
    let holder = store.token_find("a2").await.unwrap().expect("a kept token");
    assert_eq!(holder.user, alice);
    assert_eq!(holder.token, second);
    assert_eq!(holder.token.expires_at, Some(at(100)));

    store
        .web_session_insert(vec![7; 32], second.id, at(4), at(1000))
        .await
        .unwrap();
    assert_eq!(
        store.token_delete(second.id, at(4)).await.unwrap(),
        Guarded::Done
    );
    assert_eq!(
        store.token_delete(second.id, at(4)).await.unwrap(),
        Guarded::NotFound,
        "once"
    );
    assert!(store.token_find("a2").await.unwrap().is_none());
    assert!(
        store
            .web_session_find(vec![7; 32], at(5))
            .await
            .unwrap()
            .is_none(),
        "a revoked token's sessions end with it"
    );

    store
        .web_session_insert(vec![6; 32], first.id, at(4), at(1000))
        .await
        .unwrap();
    assert_eq!(
        store.user_remove(alice.id, at(6)).await.unwrap(),
        Guarded::Done
    );
    assert_eq!(
        store.user_remove(alice.id, at(7)).await.unwrap(),
        Guarded::NotFound,
        "once"
    );
    assert!(store.token_find("a1").await.unwrap().is_none());
    assert!(
        store
            .web_session_find(vec![6; 32], at(8))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.user_find("alice").await.unwrap(), None);
    assert_eq!(store.token_list(None).await.unwrap().len(), 1, "bob's");
    let (again, _) = store
        .user_insert("alice", Role::Member, token("a3"), at(9))
        .await
        .unwrap()
        .expect("a removed user's name is free again");
    assert_ne!(again.id, alice.id, "a new user, never the old one's jobs");

    // Bob is the last admin: he stays, and so does his last valid token.
    assert!(matches!(
        store.user_remove(bob.id, at(10)).await.unwrap(),
        Guarded::Refused(why) if why.contains("last admin")
    ));
    let bobs = store.token_list(Some(bob.id)).await.unwrap();
    assert!(matches!(
        store.token_delete(bobs[0].id, at(10)).await.unwrap(),
        Guarded::Refused(why) if why.contains("last admin's last")
    ));
    let lapsing = store
        .token_insert(crate::users::TokenRecord {
            user: bob.id,
            expires_at: Some(at(20)),
            ..token("b2")
        })
        .await
        .unwrap();
    assert!(
        matches!(
            store.token_delete(bobs[0].id, at(30)).await.unwrap(),
            Guarded::Refused(_)
        ),
        "an expired token is no way in"
    );
    assert!(
        store.token_find(&lapsing.prefix).await.unwrap().is_none(),
        "expired tokens go as others change"
    );
    let (carol, _) = store
        .user_insert("carol", Role::Admin, token("c1"), at(31))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.token_delete(bobs[0].id, at(32)).await.unwrap(),
        Guarded::Done
    );
    assert_eq!(
        store.user_remove(bob.id, at(33)).await.unwrap(),
        Guarded::Done
    );
    assert!(matches!(
        store.user_remove(carol.id, at(34)).await.unwrap(),
        Guarded::Refused(_)
    ));
}

pub async fn a_signin_code_is_spent_once_and_expires(store: Arc<dyn Store>) {
    use crate::users::{Guarded, Role};
    let (alice, _) = store
        .user_insert("alice", Role::Member, token("a1"), at(0))
        .await
        .unwrap()
        .unwrap();
    store
        .signin_code_insert(vec![1; 32], alice.id, at(0), at(600))
        .await
        .unwrap();
    store
        .signin_code_insert(vec![2; 32], alice.id, at(0), at(600))
        .await
        .unwrap();
    assert_eq!(
        store.signin_code_find(vec![1; 32], at(10)).await.unwrap(),
        Some((alice.clone(), at(600))),
        "a look does not spend it"
    );
    assert_eq!(
        store.signin_code_use(vec![1; 32], at(20)).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.signin_code_use(vec![1; 32], at(21)).await.unwrap(),
        None,
        "spent"
    );
    assert_eq!(
        store.signin_code_find(vec![1; 32], at(22)).await.unwrap(),
        None
    );
    assert_eq!(
        store.signin_code_use(vec![2; 32], at(600)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.signin_code_use(vec![3; 32], at(1)).await.unwrap(),
        None,
        "unknown"
    );
    store
        .signin_code_insert(vec![4; 32], alice.id, at(700), at(1300))
        .await
        .unwrap();
    assert_eq!(
        store.user_remove(alice.id, at(701)).await.unwrap(),
        Guarded::Done
    );
    assert_eq!(
        store.signin_code_use(vec![4; 32], at(702)).await.unwrap(),
        None,
        "a removed user's codes go with it"
    );
}

pub async fn a_member_lists_and_counts_only_its_own_jobs(store: Arc<dyn Store>) {
    use crate::users::{Owner, UserId};
    let alice = Owner {
        id: UserId(1),
        name: "alice".into(),
    };
    let bob = Owner {
        id: UserId(2),
        name: "bob".into(),
    };
    let owned = |owner: Option<&Owner>, n: i32| NewJob {
        owner: owner.cloned(),
        ..new_job("a", "default", n)
    };
    let parent = NewJob {
        owner: Some(alice.clone()),
        ..new_job("a", "default", 9)
    }
    .with_children(vec![new_job("b", "default", 1), new_job("b", "default", 2)]);
    let inserted = store
        .job_insert_many(
            vec![
                owned(Some(&alice), 1),
                owned(Some(&bob), 2),
                owned(None, 3),
                owned(Some(&alice), 4),
                parent,
            ],
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(inserted[0].owner, Some(alice.clone()));
    assert_eq!(inserted[2].owner, None);
    let read = store.job_get(inserted[1].id).await.unwrap().unwrap();
    assert_eq!(read.owner, Some(bob.clone()), "the owner is stored");
    let of = |owner: &Owner| JobListParams {
        owner: Some(owner.id),
        ..list_all()
    };
    let alices = store.job_list(of(&alice)).await.unwrap();
    assert_eq!(alices.len(), 5, "two jobs, a parent and its two children");
    assert!(
        alices.iter().all(|job| job.owner.as_ref() == Some(&alice)),
        "children belong to their parent's owner"
    );
    assert_eq!(store.job_count(of(&alice)).await.unwrap(), 5);
    assert_eq!(store.job_count(of(&bob)).await.unwrap(), 1);
    let queued_roots = JobListParams {
        statuses: vec![JobStatus::Queued],
        tree: TreeFilter::Roots,
        ..of(&alice)
    };
    assert_eq!(store.job_count(queued_roots.clone()).await.unwrap(), 2);
    assert_eq!(store.job_list(queued_roots).await.unwrap().len(), 2);
    let found = store
        .job_list(JobListParams {
            search: JobSearch::new("\"n\""),
            ..of(&bob)
        })
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|job| job.id).collect::<Vec<_>>(),
        [inserted[1].id],
        "a search stays within the owner's jobs"
    );
    store.job_cancel(inserted[1].id, at(1)).await.unwrap();
    let finished = JobListParams {
        statuses: vec![JobStatus::Cancelled],
        ..of(&bob)
    };
    assert_eq!(store.job_count(finished.clone()).await.unwrap(), 1);
    assert_eq!(
        store
            .job_count(JobListParams {
                owner: Some(alice.id),
                ..finished
            })
            .await
            .unwrap(),
        0,
        "finished counts too keep to the owner"
    );
    assert_eq!(store.job_count(list_all()).await.unwrap(), 7);
}

/// The store publishes on the bus it was given, after each commit, in order.
pub async fn committed_changes_are_published_in_order(store: Arc<dyn Store>, bus: crate::bus::Bus) {
    use crate::bus::Change;
    let mut changes = bus.subscribe();
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
            at(1),
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

pub async fn finishing_many_claims_their_next_jobs_in_the_same_write(store: Arc<dyn Store>) {
    let jobs = store
        .job_insert_many(
            vec![
                new_job("a", "q", 0),
                new_job("a", "q", 0),
                new_job("a", "q", 7),
                new_job("a", "q", 9),
            ],
            at(0),
        )
        .await
        .unwrap();
    let first = store.job_claim(claim("q", 2, at(1))).await.unwrap();
    assert_eq!(
        first.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![jobs[3].id, jobs[2].id],
        "highest priority first"
    );
    let finished: Vec<JobFinishParams> = first
        .iter()
        .map(|job| JobFinishParams {
            attempt: attempt_of(job),
            outcome: Outcome::Succeeded { output: None },
            now: at(2),
        })
        .collect();
    let (done, next) = store
        .job_finish_many_and_claim(finished.clone(), Some(claim("q", 2, at(2))))
        .await
        .unwrap();
    assert_eq!(
        done.iter()
            .map(|job| job.as_ref().map(|job| (job.id, job.status)))
            .collect::<Vec<_>>(),
        vec![
            Some((jobs[3].id, JobStatus::Succeeded)),
            Some((jobs[2].id, JobStatus::Succeeded))
        ],
        "one answer per finish, in order"
    );
    assert_eq!(
        next.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![jobs[0].id, jobs[1].id]
    );
    assert!(next.iter().all(|job| job.status == JobStatus::Running));
    // Stale finishes change nothing; one that holds its job beside them still applies.
    let mut again = finished;
    again.push(JobFinishParams {
        attempt: attempt_of(&next[0]),
        outcome: Outcome::Succeeded { output: None },
        now: at(3),
    });
    let (answers, none) = store.job_finish_many_and_claim(again, None).await.unwrap();
    assert_eq!(
        answers
            .iter()
            .map(|job| job.as_ref().map(|job| job.id))
            .collect::<Vec<_>>(),
        vec![None, None, Some(jobs[0].id)]
    );
    assert!(none.is_empty(), "no claim asked, none made");
    assert_eq!(
        store.job_get(jobs[1].id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
    assert_eq!(
        store
            .job_get(jobs[3].id)
            .await
            .unwrap()
            .unwrap()
            .finished_at,
        Some(at(2)),
        "a stale finish leaves the job as its first finish made it"
    );
}

/// A child and its running parent ended in one write: the parent's end sees the child's
/// (its counts are read after the child told it), so it does not wait for a child that is done.
pub async fn a_batch_ending_a_child_and_its_parent_sees_the_child_end_first(store: Arc<dyn Store>) {
    let (parent, child) = running_parent_and_child(&store, new_job("a", "q", 0)).await;
    let (done, _) = store
        .job_finish_many_and_claim(
            vec![
                finish(&child, Outcome::Succeeded { output: None }, at(4)),
                finish(&parent, Outcome::Succeeded { output: None }, at(4)),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(done[0].as_ref().unwrap().status, JobStatus::Succeeded);
    let ended = store.job_get(parent.id).await.unwrap().unwrap();
    assert_eq!(
        (
            ended.status,
            ended.children.unfinished,
            ended.children.succeeded
        ),
        (JobStatus::Succeeded, 0, 1)
    );
    assert_eq!(done[1].as_ref(), Some(&ended));
    // The parent changed twice in the write (told of its child's end, then ended): counted once.
    assert_counts_match_the_jobs(&store, "a batch ending a child and its parent").await;
}

/// A batch of jobs with every field a submit can set is stored as it was answered: a store
/// may insert a batch in a way of its own (PostgreSQL in one statement), never lose a field.
pub async fn a_batch_is_stored_with_every_field_of_each_job(store: Arc<dyn Store>) {
    use crate::users::{Owner, UserId};
    let original = store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap()
        .remove(0);
    let mut scheduled = new_job("b", "other", -3);
    scheduled.status = JobStatus::Scheduled;
    scheduled.run_at = at(600);
    scheduled.max_attempts = 7;
    scheduled.trigger = Some("nightly".into());
    scheduled.owner = Some(Owner {
        id: UserId(42),
        name: "alice".into(),
    });
    let mut retry = new_job("a", "q", 9);
    retry.retry_of = Some(original.id);
    retry.input = json!({"text": "ünïcode \" quoted", "list": [1, 2.5, null]});
    let inserted = store
        .job_insert_many(vec![scheduled, retry, new_job("a", "q", 1)], at(5))
        .await
        .unwrap();
    assert_eq!(inserted.len(), 3);
    assert!(
        inserted.windows(2).all(|pair| pair[0].id < pair[1].id),
        "ids increase in request order"
    );
    for job in &inserted {
        assert_eq!(
            store.job_get(job.id).await.unwrap().as_ref(),
            Some(job),
            "job {} as stored",
            job.id
        );
    }
    assert_eq!(inserted[0].status, JobStatus::Scheduled);
    assert_eq!(inserted[0].trigger.as_deref(), Some("nightly"));
    assert_eq!(inserted[1].retry_of, Some(original.id));
    let submitted: Vec<(JobId, EventKind)> = store
        .event_list(0, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.job_id, event.kind))
        .collect();
    assert_eq!(
        submitted[1..],
        inserted
            .iter()
            .map(|job| (job.id, EventKind::Submitted))
            .collect::<Vec<_>>(),
        "one submitted event per job, in order"
    );
}

pub async fn insert_and_read_back(store: Arc<dyn Store>) {
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

pub async fn claims_follow_priority_then_age_and_skip_future_and_unknown_types(
    store: Arc<dyn Store>,
) {
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

/// A claim whose answer was lost (its write committed, then the connection failed) is found
/// again by the claim that repeats it: the jobs it took come first, with a fresh lease, then
/// only as many new ones as the limit leaves. Jobs the same worker claimed at another time
/// (already in a slot) or in another queue, and another worker's jobs of the same instant,
/// are not.
pub async fn a_repeated_claim_answers_the_jobs_its_lost_answer_took(store: Arc<dyn Store>) {
    let mut jobs: Vec<NewJob> = (0..6).map(|n| new_job("a", "q", 6 - n)).collect();
    jobs.push(new_job("a", "elsewhere", 0));
    let jobs = store.job_insert_many(jobs, at(0)).await.unwrap();
    let lost = store.job_claim(claim("q", 2, at(1))).await.unwrap();
    assert_eq!(lost.len(), 2);
    let other_worker = store
        .job_claim(JobClaimParams {
            worker: "w2".into(),
            ..claim("q", 1, at(1))
        })
        .await
        .unwrap();
    let in_a_slot = store.job_claim(claim("q", 1, at(2))).await.unwrap();
    let other_queue = store.job_claim(claim("elsewhere", 1, at(1))).await.unwrap();
    assert_eq!(
        (other_worker.len(), in_a_slot.len(), other_queue.len()),
        (1, 1, 1)
    );
    let again = store
        .job_claim(JobClaimParams {
            unanswered: vec![at(1)],
            ..claim("q", 3, at(9))
        })
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![lost[0].id, lost[1].id, jobs[4].id],
        "the lost claim's jobs first, then one new job"
    );
    assert_eq!(again[0].started_at, Some(at(1)));
    assert_eq!(
        again[0].lease_until,
        Some(at(9) + chrono::Duration::seconds(30)),
        "a job found again holds a fresh lease"
    );
    assert_eq!(
        store.job_get(lost[0].id).await.unwrap().unwrap(),
        again[0],
        "as stored"
    );
    let fewer = store
        .job_claim(JobClaimParams {
            unanswered: vec![at(5), at(1)],
            ..claim("q", 1, at(10))
        })
        .await
        .unwrap();
    assert_eq!(
        fewer.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![lost[0].id],
        "never more than the limit"
    );
    let running = store
        .job_list(JobListParams {
            statuses: vec![JobStatus::Running],
            ..list_all()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 6, "nothing was claimed twice");
}

/// A queue's limit counts every running job of the queue, whichever worker (server) runs it.
pub async fn claims_stop_at_the_queue_limit_whoever_runs_the_jobs(store: Arc<dyn Store>) {
    let jobs = (0..4).map(|_| new_job("a", "gpu", 0)).collect();
    store.job_insert_many(jobs, at(0)).await.unwrap();
    let limited = |worker: &str, limit: u32| JobClaimParams {
        worker: worker.into(),
        queue_limit: 2,
        ..claim("gpu", limit, at(1))
    };
    let first = store.job_claim(limited("server-a", 1)).await.unwrap();
    assert_eq!(first.len(), 1);
    // Another server with three free slots of its own gets the one the queue has left.
    let second = store.job_claim(limited("server-b", 3)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert!(
        store
            .job_claim(limited("server-a", 1))
            .await
            .unwrap()
            .is_empty()
    );
    // A finish frees the slot for the claim in the same write.
    let (done, next) = store
        .job_finish_many_and_claim(
            vec![JobFinishParams {
                attempt: attempt_of(&second[0]),
                outcome: Outcome::Succeeded { output: None },
                now: at(2),
            }],
            Some(limited("server-b", 1)),
        )
        .await
        .unwrap();
    assert!(done[0].is_some());
    assert_eq!(next.len(), 1);
    let running = store
        .job_list(JobListParams {
            statuses: vec![JobStatus::Running],
            ..list_all()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 2);
}

pub async fn paused_queues_start_nothing(store: Arc<dyn Store>) {
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

pub async fn finishing_is_guarded_by_attempt_and_worker(store: Arc<dyn Store>) {
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
                .log_append(wrong, "x\n".into(), 100, "cut\n".into(), 0, at(1))
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

pub async fn terminal_jobs_never_change(store: Arc<dyn Store>) {
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

pub async fn failures_retry_or_fail(store: Arc<dyn Store>) {
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

pub async fn cancel_queued_and_running(store: Arc<dyn Store>) {
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

pub async fn leases_renew_and_expire(store: Arc<dyn Store>) {
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

pub async fn handed_back_attempts_do_not_count(store: Arc<dyn Store>) {
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

pub async fn logs_append_read_and_truncate(store: Arc<dyn Store>) {
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
            .log_append(
                attempt.clone(),
                "héllo\n".into(),
                20,
                "[cut]\n".into(),
                0,
                at(2)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .log_append(
                attempt.clone(),
                "world\n".into(),
                20,
                "[cut]\n".into(),
                0,
                at(2)
            )
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
                0,
                at(2)
            )
            .await
            .unwrap()
    );
    let cut = store.log_read(job.id, 0, 1000).await.unwrap();
    assert_eq!(cut.data, "héllo\nworld\n0123456\n[cut]\n");
    assert!(
        store
            .log_append(attempt, "more\n".into(), 20, "[cut]\n".into(), 0, at(2))
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

pub async fn a_log_keeps_the_attempt_stream_and_time_of_each_part(store: Arc<dyn Store>) {
    use crate::log_text::{LogStream, LogText};
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
    let mut text = LogText::new("out\n", LogStream::Stdout);
    text.push("err\n", LogStream::Stderr);
    assert!(
        store
            .log_append(attempt.clone(), text, 100, "[cut]\n".into(), 0, at(2))
            .await
            .unwrap()
    );
    let mut later = LogText::new("[runway: note]\n", LogStream::Runway);
    later.push("0123456789012345678901234567890\n", LogStream::Stdout);
    assert!(
        store
            .log_append(attempt.clone(), later, 40, "[cut]\n".into(), 0, at(3))
            .await
            .unwrap()
    );
    let marks = |chunk: &crate::store::LogChunk| -> Vec<(u64, u32, LogStream, Option<Timestamp>)> {
        chunk
            .marks
            .iter()
            .map(|mark| (mark.offset, mark.attempt, mark.stream, mark.at))
            .collect()
    };
    let all = store.log_read(job.id, 0, 1000).await.unwrap();
    assert_eq!(
        all.data,
        "out\nerr\n[runway: note]\n01234567890123456\n[cut]\n"
    );
    assert_eq!(
        marks(&all),
        vec![
            (0, 1, LogStream::Stdout, Some(at(2))),
            (4, 1, LogStream::Stderr, Some(at(2))),
            (8, 1, LogStream::Runway, Some(at(3))),
            (23, 1, LogStream::Stdout, Some(at(3))),
            (41, 1, LogStream::Runway, Some(at(3))),
        ]
    );
    // A read from inside a part starts with the mark in force there.
    let tail = store.log_read(job.id, 5, 10).await.unwrap();
    assert_eq!(
        marks(&tail),
        vec![
            (5, 1, LogStream::Stderr, Some(at(2))),
            (8, 1, LogStream::Runway, Some(at(3))),
        ]
    );
}

pub async fn lost_log_bytes_are_counted_even_past_the_limit(store: Arc<dyn Store>) {
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
        store.log_append(
            attempt.clone(),
            text.into(),
            20,
            "[cut]\n".into(),
            lost,
            at(2),
        )
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

pub async fn a_known_key_answers_with_its_job(store: Arc<dyn Store>) {
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

pub async fn a_key_of_another_request_inserts_nothing(store: Arc<dyn Store>) {
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

pub async fn an_expired_key_is_free_again_and_pruned(store: Arc<dyn Store>) {
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

pub async fn a_healthy_store_passes_its_probe(store: Arc<dyn Store>) {
    store.health_probe().await.unwrap();
}

pub async fn listing_filters_and_pages(store: Arc<dyn Store>) {
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
            before: Some(crate::job_order::JobCursor::before(jobs[4].id)),
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

pub async fn a_queue_history_counts_by_bucket_and_times_what_ran(store: Arc<dyn Store>) {
    use crate::queue_history::{FinishedSample, HistoryWindow};
    let jobs = store
        .job_insert_many(
            vec![
                new_job("a", "q", 2),
                new_job("a", "q", 1),
                new_job("a", "q", 0),
                new_job("a", "other", 0),
            ],
            at(0),
        )
        .await
        .unwrap();
    let finish = |job: &Job, outcome: Outcome, seconds: i64| {
        let attempt = attempt_of(job);
        let store = Arc::clone(&store);
        async move {
            store
                .job_finish(JobFinishParams {
                    attempt,
                    outcome,
                    now: at(seconds),
                })
                .await
                .unwrap()
                .unwrap()
        }
    };
    let first = store
        .job_claim(claim("q", 1, at(10)))
        .await
        .unwrap()
        .remove(0);
    let second = store
        .job_claim(claim("q", 1, at(20)))
        .await
        .unwrap()
        .remove(0);
    let other = store
        .job_claim(claim("other", 1, at(20)))
        .await
        .unwrap()
        .remove(0);
    finish(
        &second,
        Outcome::Failed {
            error: "no".into(),
            output: None,
            retry_at: None,
        },
        30,
    )
    .await;
    finish(&first, Outcome::Succeeded { output: None }, 70).await;
    finish(&other, Outcome::Succeeded { output: None }, 70).await;
    store.job_cancel(jobs[2].id, at(200)).await.unwrap();
    let window = HistoryWindow {
        from_micros: at(0).timestamp_micros(),
        bucket_micros: 60_000_000,
        buckets: 10,
    };
    let mut rows = store.queue_history("q", window, 100).await.unwrap();
    rows.counts
        .sort_by_key(|&(bucket, status, _)| (bucket, status.as_str()));
    assert_eq!(
        rows.counts,
        vec![
            (0, JobStatus::Failed, 1),
            (1, JobStatus::Succeeded, 1),
            (3, JobStatus::Cancelled, 1),
        ]
    );
    rows.samples.sort_by_key(|sample| sample.finished_micros);
    assert_eq!(
        rows.samples,
        vec![
            FinishedSample {
                finished_micros: at(30).timestamp_micros(),
                waited_micros: 20_000_000,
                ran_micros: 10_000_000,
            },
            FinishedSample {
                finished_micros: at(70).timestamp_micros(),
                waited_micros: 10_000_000,
                ran_micros: 60_000_000,
            },
        ],
        "the cancelled job never ran: counted, not timed"
    );
    assert!(!rows.sampled);
    // Past the limit, every n-th of the queue's own jobs: one of its three, whatever their ids.
    let sampled = store.queue_history("q", window, 2).await.unwrap();
    assert!(sampled.sampled);
    assert_eq!(sampled.samples.len(), 1, "{sampled:?}");
    assert_eq!(sampled.counts.len(), 3, "the counts stay exact");
}

pub async fn a_jobs_retries_are_listed_and_counted(store: Arc<dyn Store>) {
    let original = store
        .job_insert_many(vec![new_job("a", "q", 0), new_job("a", "q", 1)], at(0))
        .await
        .unwrap();
    let retry = |of: JobId| NewJob {
        retry_of: Some(of),
        ..new_job("a", "q", 0)
    };
    let retries = store
        .job_insert_many(
            vec![
                retry(original[0].id),
                retry(original[1].id),
                retry(original[0].id),
            ],
            at(1),
        )
        .await
        .unwrap();
    let params = JobListParams {
        retry_of: Some(original[0].id),
        limit: 100,
        ..JobListParams::default()
    };
    let listed: Vec<JobId> = store
        .job_list(params.clone())
        .await
        .unwrap()
        .iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(
        listed,
        vec![retries[2].id, retries[0].id],
        "newest first, only its own"
    );
    assert_eq!(store.job_count(params).await.unwrap(), 2);
}

pub async fn search_and_count_agree_with_the_in_memory_match(store: Arc<dyn Store>) {
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
        // No job's text holds a NUL character (JSON writes it `\u0000`): a client's may.
        ("hel\0lo", vec![]),
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
    // A filter value with a NUL character names no type or queue, and is no error.
    for filter in [
        JobListParams {
            job_types: vec!["a\0".into(), "Render".into()],
            limit: 100,
            ..JobListParams::default()
        },
        JobListParams {
            queues: vec!["q\0".into()],
            limit: 100,
            ..JobListParams::default()
        },
    ] {
        let found = store.job_list(filter.clone()).await.unwrap();
        let count = store.job_count(filter.clone()).await.unwrap();
        let expected = if filter.job_types.is_empty() { 0 } else { 1 };
        assert_eq!(
            (found.len(), count),
            (expected, expected as u64),
            "{filter:?}"
        );
    }
}

/// Every count the list's filters can ask, against counting the listed jobs one by one.
async fn assert_counts_match_the_jobs(store: &Arc<dyn Store>, step: &str) {
    let jobs = store.job_list(list_all()).await.unwrap();
    let trees = [TreeFilter::All, TreeFilter::Roots];
    let status_sets = [
        vec![],
        vec![JobStatus::Queued],
        vec![JobStatus::Running, JobStatus::Succeeded],
        vec![JobStatus::Failed, JobStatus::Cancelled, JobStatus::Waiting],
    ];
    let type_sets: [Vec<String>; 2] = [vec![], vec!["b".into()]];
    let queue_sets: [Vec<String>; 2] = [vec![], vec!["other".into()]];
    for tree in trees {
        for statuses in &status_sets {
            for job_types in &type_sets {
                for queues in &queue_sets {
                    let params = JobListParams {
                        tree,
                        statuses: statuses.clone(),
                        job_types: job_types.clone(),
                        queues: queues.clone(),
                        ..list_all()
                    };
                    let want = jobs
                        .iter()
                        .filter(|job| tree != TreeFilter::Roots || job.parent.is_none())
                        .filter(|job| statuses.is_empty() || statuses.contains(&job.status))
                        .filter(|job| job_types.is_empty() || job_types.contains(&job.job_type))
                        .filter(|job| queues.is_empty() || queues.contains(&job.queue))
                        .count() as u64;
                    let counted = store.job_count(params.clone()).await.unwrap();
                    assert_eq!(counted, want, "{step}: count of {params:?}");
                    let listed = store.job_list(params).await.unwrap().len() as u64;
                    assert_eq!(listed, want, "{step}: list of the same filters");
                }
            }
        }
    }
    let stats = store.queue_stats(at(100)).await.unwrap();
    for queue in ["q", "other"] {
        let of_queue = |status: JobStatus| {
            jobs.iter()
                .filter(|job| job.queue == queue && job.status == status)
                .count() as u64
        };
        let shown = stats.iter().find(|stats| stats.name == queue);
        let shown = shown.map_or((0, 0, 0, 0), |stats| {
            (
                stats.queued,
                stats.running,
                stats.succeeded,
                stats.cancelled,
            )
        });
        let want = (
            of_queue(JobStatus::Queued),
            of_queue(JobStatus::Running),
            of_queue(JobStatus::Succeeded),
            of_queue(JobStatus::Cancelled),
        );
        assert_eq!(shown, want, "{step}: queue view of `{queue}`");
    }
}

pub async fn counts_follow_every_change_of_every_job(store: Arc<dyn Store>) {
    let mut other = new_job("b", "other", 0);
    other.max_attempts = 1;
    store
        .job_insert_many(
            vec![
                new_job("a", "q", 0),
                new_job("b", "q", 1),
                other,
                parent_of(vec![new_job("b", "q", 2), new_job("a", "q", 3)]),
            ],
            at(0),
        )
        .await
        .unwrap();
    assert_counts_match_the_jobs(&store, "inserted").await;
    let claimed = store.job_claim(claim("q", 2, at(1))).await.unwrap();
    assert_counts_match_the_jobs(&store, "claimed").await;
    store
        .job_finish(finish(
            &claimed[0],
            Outcome::Succeeded { output: None },
            at(2),
        ))
        .await
        .unwrap();
    store
        .job_finish(finish(
            &claimed[1],
            Outcome::Failed {
                error: "boom".into(),
                output: None,
                retry_at: Some(at(50)),
            },
            at(2),
        ))
        .await
        .unwrap();
    assert_counts_match_the_jobs(&store, "finished and retried").await;
    let mut other_claim = claim("other", 1, at(3));
    other_claim.job_types = vec!["b".into()];
    let failing = store.job_claim(other_claim).await.unwrap().remove(0);
    store
        .job_finish(finish(
            &failing,
            Outcome::Failed {
                error: "boom".into(),
                output: None,
                retry_at: None,
            },
            at(4),
        ))
        .await
        .unwrap();
    let parent = store
        .job_list(JobListParams {
            tree: TreeFilter::Roots,
            statuses: vec![JobStatus::Waiting],
            ..list_all()
        })
        .await
        .unwrap()
        .remove(0);
    store.job_cancel(parent.id, at(5)).await.unwrap();
    assert_counts_match_the_jobs(&store, "failed and cancelled").await;
    let mut carried = keyed("kept", 4);
    carried.status = JobStatus::Succeeded;
    carried.retry_of = Some(JobId(1));
    let mut retried = parent_of(vec![carried, keyed("again", 5)]);
    retried.retry_of = Some(parent.id);
    store.job_insert_many(vec![retried], at(6)).await.unwrap();
    assert_counts_match_the_jobs(&store, "a tree retried with a child carried over finished").await;
    store.job_delete_tree(parent.id).await.unwrap();
    assert_counts_match_the_jobs(&store, "a tree deleted").await;
}

pub async fn a_search_pages_newest_first_below_its_cursor(store: Arc<dyn Store>) {
    let mut jobs = Vec::new();
    for n in 0..250 {
        let mut job = new_job(if n % 5 == 0 { "b" } else { "a" }, "q", 0);
        job.input = json!({"clip": format!("Clip-{n:03}"), "note": "\"quoted\" ümlaut"});
        jobs.push(job);
    }
    let jobs = store.job_insert_many(jobs, at(0)).await.unwrap();
    for text in ["clip-1", "CLIP", "ip", "\\\"quoted", "ümlaut", "p-2", "b"] {
        let search = JobSearch::new(text).expect("not blank");
        let want: Vec<JobId> = jobs
            .iter()
            .rev()
            .filter(|job| search.matches(job))
            .map(|job| job.id)
            .collect();
        let mut found = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .job_list(JobListParams {
                    search: Some(search.clone()),
                    before,
                    limit: 40,
                    ..JobListParams::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            before = Some(crate::job_order::JobCursor::before(last.id));
            found.extend(page.iter().map(|job| job.id));
        }
        assert!(!want.is_empty(), "`{text}` matches some jobs");
        assert_eq!(found, want, "pages of `{text}`, newest first");
        let of_type_b = JobListParams {
            search: Some(search.clone()),
            job_types: vec!["b".into()],
            limit: 1000,
            ..JobListParams::default()
        };
        let want_b = jobs
            .iter()
            .filter(|job| job.job_type == "b" && search.matches(job))
            .count();
        assert_eq!(
            store.job_list(of_type_b.clone()).await.unwrap().len(),
            want_b,
            "`{text}` among type b"
        );
        assert_eq!(
            store.job_count(of_type_b).await.unwrap(),
            want_b as u64,
            "count of `{text}` among type b"
        );
    }
}

pub async fn queue_stats_give_the_oldest_queued_job_and_throughput(store: Arc<dyn Store>) {
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

pub async fn events_number_every_change(store: Arc<dyn Store>) {
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

/// A job with `children` made with it (each already built, with their own children).
fn parent_of(children: Vec<NewJob>) -> NewJob {
    let mut parent = new_job("a", "q", 0);
    parent.tree.join = true;
    parent.with_children(children)
}

fn finish(job: &Job, outcome: Outcome, now: Timestamp) -> JobFinishParams {
    JobFinishParams {
        attempt: attempt_of(job),
        outcome,
        now,
    }
}

pub async fn a_job_is_inserted_with_its_children_in_place(store: Arc<dyn Store>) {
    let grandchild = new_job("b", "q", 3);
    let child = parent_of(vec![grandchild]);
    let root = store
        .job_insert_many(vec![parent_of(vec![child, new_job("b", "q", 2)])], at(0))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        root.status,
        JobStatus::Waiting,
        "a job made with children waits"
    );
    assert_eq!(root.phase, Phase::Join);
    assert_eq!((root.children.total, root.children.unfinished), (2, 2));
    assert_eq!(store.job_get(root.id).await.unwrap().as_ref(), Some(&root));
    let children = store.job_children(root.id, None, 10).await.unwrap();
    assert_eq!(children.len(), 2);
    assert_eq!(children[0].status, JobStatus::Waiting);
    assert_eq!(children[1].status, JobStatus::Queued);
    for child in &children {
        assert_eq!(
            (child.parent, child.root, child.depth),
            (Some(root.id), Some(root.id), 1)
        );
    }
    let grandchildren = store.job_children(children[0].id, None, 10).await.unwrap();
    assert_eq!(grandchildren.len(), 1);
    assert_eq!(
        (
            grandchildren[0].parent,
            grandchildren[0].root,
            grandchildren[0].depth
        ),
        (Some(children[0].id), Some(root.id), 2)
    );
    assert!(grandchildren[0].tree == root.tree || !grandchildren[0].tree.join);
}

/// A queued job claimed: running under worker `w1`.
async fn running_job(store: &Arc<dyn Store>, job: NewJob) -> Job {
    store.job_insert_many(vec![job], at(0)).await.unwrap();
    store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0)
}

/// `parent` running with one child it spawned, running too; both as stored now.
async fn running_parent_and_child(store: &Arc<dyn Store>, parent: NewJob) -> (Job, Job) {
    let parent = running_job(store, parent).await;
    let Spawn::Done(spawned) = store
        .job_spawn(attempt_of(&parent), vec![new_job("b", "q", 1)], 10, at(2))
        .await
        .unwrap()
    else {
        panic!("the spawn was refused");
    };
    let child = store
        .job_claim(claim("q", 1, at(3)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(child.id, spawned[0].job.id);
    let parent = store.job_get(parent.id).await.unwrap().unwrap();
    (parent, child)
}

fn keyed(key: &str, n: i32) -> NewJob {
    let mut child = new_job("b", "q", n);
    child.key = Some(key.into());
    child
}

pub async fn spawns_count_on_the_parent_and_a_known_key_returns_its_child(store: Arc<dyn Store>) {
    let parent = running_job(&store, new_job("a", "q", 0)).await;
    let Spawn::Done(first) = store
        .job_spawn(
            attempt_of(&parent),
            vec![keyed("p1", 1), new_job("b", "q", 2)],
            10,
            at(2),
        )
        .await
        .unwrap()
    else {
        panic!("the first spawn was refused");
    };
    assert!(first.iter().all(|child| child.created));
    assert_eq!(first[0].job.key.as_deref(), Some("p1"));
    assert_eq!(
        (first[0].job.parent, first[0].job.depth),
        (Some(parent.id), 1)
    );
    let Spawn::Done(again) = store
        .job_spawn(
            attempt_of(&parent),
            vec![keyed("p1", 1), keyed("p3", 3)],
            10,
            at(3),
        )
        .await
        .unwrap()
    else {
        panic!("the second spawn was refused");
    };
    assert_eq!(
        again[0].job.id, first[0].job.id,
        "the key returns its child"
    );
    assert!(!again[0].created);
    assert!(again[1].created);
    let stored = store.job_get(parent.id).await.unwrap().unwrap();
    assert_eq!((stored.children.total, stored.children.unfinished), (3, 3));
    assert_eq!(
        store.job_children(parent.id, None, 10).await.unwrap().len(),
        3
    );
}

pub async fn a_spawn_is_refused_whole_for_a_stale_attempt_a_reused_key_or_the_limit(
    store: Arc<dyn Store>,
) {
    let parent = running_job(&store, new_job("a", "q", 0)).await;
    let attempt = attempt_of(&parent);
    store
        .job_spawn(attempt.clone(), vec![keyed("p1", 1)], 3, at(2))
        .await
        .unwrap();
    let conflict = store
        .job_spawn(
            attempt.clone(),
            vec![new_job("b", "q", 5), keyed("p1", 9)],
            3,
            at(3),
        )
        .await
        .unwrap();
    assert!(
        matches!(conflict, Spawn::KeyConflict { index: 1, .. }),
        "{conflict:?}"
    );
    let over = store
        .job_spawn(
            attempt.clone(),
            vec![
                new_job("b", "q", 5),
                new_job("b", "q", 6),
                new_job("b", "q", 7),
            ],
            3,
            at(3),
        )
        .await
        .unwrap();
    assert!(
        matches!(&over, Spawn::Refused(reason) if reason.contains("at most 3")),
        "{over:?}"
    );
    let stale = AttemptRef {
        attempt: attempt.attempt + 1,
        ..attempt.clone()
    };
    let refused = store
        .job_spawn(stale, vec![new_job("b", "q", 5)], 3, at(3))
        .await
        .unwrap();
    assert!(
        matches!(&refused, Spawn::Refused(reason) if reason.contains("has ended")),
        "{refused:?}"
    );
    assert_eq!(
        store.job_children(parent.id, None, 10).await.unwrap().len(),
        1,
        "refused spawns made nothing"
    );
    assert_eq!(
        store
            .job_get(parent.id)
            .await
            .unwrap()
            .unwrap()
            .children
            .total,
        1
    );
}

pub async fn the_last_child_to_finish_queues_the_join(store: Arc<dyn Store>) {
    let mut parent = new_job("a", "q", 0);
    parent.tree.join = true;
    let parent = running_job(&store, parent).await;
    store
        .job_spawn(
            attempt_of(&parent),
            vec![new_job("b", "q", 1), new_job("b", "q", 2)],
            10,
            at(2),
        )
        .await
        .unwrap();
    let parent = store.job_get(parent.id).await.unwrap().unwrap();
    let waiting = store
        .job_finish(finish(&parent, Outcome::Succeeded { output: None }, at(3)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.status, JobStatus::Waiting);
    let children = store.job_claim(claim("q", 2, at(4))).await.unwrap();
    assert_eq!(children.len(), 2, "a waiting parent is not claimed");
    for (n, child) in children.iter().enumerate() {
        store
            .job_finish(finish(
                child,
                Outcome::Succeeded {
                    output: Some(json!(n)),
                },
                at(5),
            ))
            .await
            .unwrap()
            .unwrap();
    }
    let joining = store.job_get(parent.id).await.unwrap().unwrap();
    assert_eq!(joining.status, JobStatus::Queued);
    assert_eq!(joining.phase, Phase::Join);
    assert_eq!(joining.children.succeeded, 2);
    let kinds: Vec<EventKind> = store
        .event_list(0, Some(parent.id), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Submitted,
            EventKind::Started,
            EventKind::Spawned,
            EventKind::Waiting,
            EventKind::ChildEnded,
            EventKind::JoinQueued
        ]
    );
    let join = store
        .job_claim(claim("q", 1, at(6)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((join.id, join.phase), (parent.id, Phase::Join));
}

pub async fn cancelling_a_parent_cancels_every_unfinished_descendant(store: Arc<dyn Store>) {
    let deep = parent_of(vec![
        parent_of(vec![new_job("b", "q", 1)]),
        new_job("b", "q", 2),
    ]);
    let root = store
        .job_insert_many(vec![deep], at(0))
        .await
        .unwrap()
        .remove(0);
    // One leaf runs: its cancel is requested, the others end at once.
    let running = store
        .job_claim(claim("q", 1, at(1)))
        .await
        .unwrap()
        .remove(0);
    let done_before = store.event_last_seq().await.unwrap();
    match store.job_cancel(root.id, at(2)).await.unwrap() {
        CancelOutcome::Cancelled(job) => assert_eq!(job.status, JobStatus::Cancelled),
        other => panic!("{other:?}"),
    }
    let events = store.event_list(done_before, None, 100).await.unwrap();
    let mut everyone = vec![root.id];
    let mut index = 0;
    while index < everyone.len() {
        let children = store.job_children(everyone[index], None, 10).await.unwrap();
        everyone.extend(children.iter().map(|child| child.id));
        index += 1;
    }
    assert_eq!(everyone.len(), 4);
    for id in everyone {
        let job = store.job_get(id).await.unwrap().unwrap();
        if id == running.id {
            assert_eq!(job.status, JobStatus::Running);
            assert!(job.cancel_requested, "the running leaf is asked to stop");
        } else {
            assert_eq!(job.status, JobStatus::Cancelled, "job {id}");
        }
        if id != root.id {
            assert!(
                job.error
                    .as_deref()
                    .unwrap_or_default()
                    .contains("cancelled because its parent job"),
                "job {id}: {:?}",
                job.error
            );
        }
    }
    assert!(events.iter().all(|event| event.seq > done_before));
    let ended = store
        .job_finish(finish(
            &running,
            Outcome::Cancelled {
                error: "stopped".into(),
            },
            at(3),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, JobStatus::Cancelled);
    assert!(ended.error.unwrap().contains("its parent job"));
}

pub async fn lists_filter_roots_and_children_and_children_page_in_order(store: Arc<dyn Store>) {
    let root = store
        .job_insert_many(
            vec![
                parent_of((1..=5).map(|n| new_job("b", "q", n)).collect()),
                new_job("a", "q", 0),
            ],
            at(0),
        )
        .await
        .unwrap();
    let roots = store
        .job_list(JobListParams {
            tree: TreeFilter::Roots,
            ..list_all()
        })
        .await
        .unwrap();
    assert_eq!(
        roots.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![root[1].id, root[0].id]
    );
    let children = JobListParams {
        tree: TreeFilter::ChildrenOf(root[0].id),
        ..list_all()
    };
    assert_eq!(store.job_list(children.clone()).await.unwrap().len(), 5);
    assert_eq!(store.job_count(children).await.unwrap(), 5);
    assert_eq!(
        store
            .job_count(JobListParams {
                tree: TreeFilter::Roots,
                ..list_all()
            })
            .await
            .unwrap(),
        2
    );
    let first = store.job_children(root[0].id, None, 2).await.unwrap();
    let rest = store
        .job_children(root[0].id, first.last().map(|job| job.id), 10)
        .await
        .unwrap();
    let priorities: Vec<i32> = first.iter().chain(&rest).map(|job| job.priority).collect();
    assert_eq!(
        priorities,
        vec![1, 2, 3, 4, 5],
        "children come in the order they were made"
    );
}

pub async fn a_retried_tree_is_inserted_with_its_carried_children_succeeded(store: Arc<dyn Store>) {
    let mut carried = keyed("kept", 1);
    carried.status = JobStatus::Succeeded;
    carried.output = Some(json!({"wav": "1.wav"}));
    carried.retry_of = Some(JobId(77));
    let mut again = keyed("again", 2);
    again.retry_of = Some(JobId(78));
    let mut parent = parent_of(vec![carried, again]);
    parent.retry_of = Some(JobId(76));
    let parent = store
        .job_insert_many(vec![parent], at(5))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            parent.children.total,
            parent.children.unfinished,
            parent.children.succeeded
        ),
        (2, 1, 1)
    );
    let children = store.job_children(parent.id, None, 10).await.unwrap();
    assert_eq!(children[0].status, JobStatus::Succeeded);
    assert_eq!(children[0].output, Some(json!({"wav": "1.wav"})));
    assert_eq!(children[0].finished_at, Some(at(5)));
    assert_eq!(children[0].key.as_deref(), Some("kept"));
    assert_eq!(children[1].status, JobStatus::Queued);
    assert_eq!(
        store.job_get(parent.id).await.unwrap().as_ref(),
        Some(&parent)
    );
    // Only the child that runs again is claimed; its end completes the tree.
    let claimed = store.job_claim(claim("q", 10, at(6))).await.unwrap();
    assert_eq!(
        claimed.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![children[1].id]
    );
    store
        .job_finish(finish(
            &claimed[0],
            Outcome::Succeeded { output: None },
            at(7),
        ))
        .await
        .unwrap()
        .unwrap();
    let joining = store.job_get(parent.id).await.unwrap().unwrap();
    assert_eq!(joining.status, JobStatus::Queued);
    assert_eq!(joining.children.succeeded, 2);
}

fn artifact(job: &Job, name: &str, size: u64, path: &str) -> Artifact {
    Artifact {
        job: job.id,
        name: name.into(),
        size,
        sha256: format!("{size:064x}"),
        content_type: "audio/wav".into(),
        attempt: job.attempt,
        created_at: at(2),
        path: path.into(),
    }
}

pub async fn artifacts_are_recorded_by_a_running_attempt_and_replaced_by_name(
    store: Arc<dyn Store>,
) {
    let job = running_job(&store, new_job("a", "q", 0)).await;
    let recorded = store
        .artifact_record(
            attempt_of(&job),
            vec![
                artifact(&job, "b.wav", 10, "1/1/b.wav"),
                artifact(&job, "a.wav", 5, "1/1/a.wav"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(recorded, Some(vec![]), "nothing was replaced");
    let names: Vec<String> = store
        .artifact_list(job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|artifact| artifact.name)
        .collect();
    assert_eq!(names, ["a.wav", "b.wav"]);
    let replaced = store
        .artifact_record(
            attempt_of(&job),
            vec![artifact(&job, "a.wav", 7, "1/2/a.wav")],
        )
        .await
        .unwrap();
    assert_eq!(
        replaced,
        Some(vec!["1/1/a.wav".to_string()]),
        "the old file is free"
    );
    let got = store.artifact_get(job.id, "a.wav").await.unwrap().unwrap();
    assert_eq!((got.size, got.path.as_str()), (7, "1/2/a.wav"));
    assert_eq!(store.artifact_get(job.id, "c.wav").await.unwrap(), None);
    assert_eq!(
        store.artifact_usage(Some(job.id)).await.unwrap(),
        ArtifactUsage {
            files: 2,
            bytes: 17
        }
    );
    assert_eq!(
        store.artifact_usage(Some(JobId(9_999))).await.unwrap(),
        ArtifactUsage::default()
    );
    let stale = AttemptRef {
        attempt: job.attempt + 1,
        ..attempt_of(&job)
    };
    assert_eq!(
        store
            .artifact_record(stale, vec![artifact(&job, "x", 1, "x")])
            .await
            .unwrap(),
        None,
        "a stale attempt records nothing"
    );
    assert_eq!(store.artifact_list(job.id).await.unwrap().len(), 2);
}

pub async fn a_finished_tree_is_deleted_whole_and_shared_files_stay_named(store: Arc<dyn Store>) {
    let mut parent = new_job("a", "q", 0);
    parent.tree.join = true;
    let (parent, child) = running_parent_and_child(&store, parent).await;
    store
        .artifact_record(
            attempt_of(&child),
            vec![artifact(
                &child,
                "c.wav",
                3,
                &format!("{}/1/c.wav", child.id),
            )],
        )
        .await
        .unwrap();
    assert!(matches!(
        store.job_delete_tree(child.id).await.unwrap(),
        TreeDeletion::NotRoot { root } if root == parent.id
    ));
    assert!(matches!(
        store.job_delete_tree(parent.id).await.unwrap(),
        TreeDeletion::Unfinished { .. }
    ));
    store
        .job_finish(finish(&child, Outcome::Succeeded { output: None }, at(4)))
        .await
        .unwrap();
    let parent_now = store.job_get(parent.id).await.unwrap().unwrap();
    store
        .job_finish(finish(
            &parent_now,
            Outcome::Failed {
                error: "x".into(),
                output: None,
                retry_at: None,
            },
            at(5),
        ))
        .await
        .unwrap();
    // A retried tree carries the child over: the file is named by the copy too.
    let mut carried = new_job("b", "q", 1);
    carried.status = JobStatus::Succeeded;
    carried.retry_of = Some(child.id);
    let copy = store
        .job_insert_many(vec![parent_of(vec![carried])], at(6))
        .await
        .unwrap()
        .remove(0);
    let copied_child = store
        .job_children(copy.id, None, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        store.artifact_list(copied_child.id).await.unwrap()[0].path,
        format!("{}/1/c.wav", child.id)
    );
    assert_eq!(
        store.artifact_usage(None).await.unwrap(),
        ArtifactUsage { files: 1, bytes: 3 },
        "a shared file counts once"
    );
    match store.job_delete_tree(parent.id).await.unwrap() {
        TreeDeletion::Deleted {
            jobs,
            unreferenced,
            directories,
        } => {
            assert_eq!(jobs, vec![parent.id, child.id]);
            assert!(unreferenced.is_empty(), "the copy still names the file");
            // The child's directory still holds the copy's file; the parent's is free.
            assert_eq!(directories, vec![parent.id.to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.job_get(child.id).await.unwrap(), None);
    assert!(
        store
            .event_list(0, Some(parent.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.job_delete_tree(parent.id).await.unwrap(),
        TreeDeletion::NotFound
    );
    let Some(copy_child_job) = store.job_get(copied_child.id).await.unwrap() else {
        panic!("the copy stays");
    };
    assert_eq!(copy_child_job.status, JobStatus::Succeeded);
}

pub async fn finished_trees_past_their_retention_are_pruned_oldest_first(store: Arc<dyn Store>) {
    let jobs = store
        .job_insert_many(
            vec![
                new_job("a", "q", 0),
                new_job("a", "q", 0),
                new_job("a", "q", 0),
            ],
            at(0),
        )
        .await
        .unwrap();
    for (job, when) in jobs.iter().zip([10, 5, 50]) {
        store.job_cancel(job.id, at(when)).await.unwrap();
    }
    let pending = store
        .job_insert_many(vec![new_job("a", "q", 0)], at(0))
        .await
        .unwrap();
    let pruned = store.job_prune(at(20), 10).await.unwrap();
    let ids: Vec<Vec<JobId>> = pruned
        .into_iter()
        .map(|deletion| match deletion {
            TreeDeletion::Deleted { jobs, .. } => jobs,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        vec![vec![jobs[1].id], vec![jobs[0].id]],
        "oldest first"
    );
    assert!(
        store.job_get(jobs[2].id).await.unwrap().is_some(),
        "finished later"
    );
    assert!(
        store.job_get(pending[0].id).await.unwrap().is_some(),
        "not finished"
    );
    assert!(store.job_prune(at(20), 10).await.unwrap().is_empty());
}
