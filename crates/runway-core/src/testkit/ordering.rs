//! Scenarios of the store suite about the order of job lists and their time ranges: a store's
//! pages, read one after another through their cursors, are core's order of every job.

use std::sync::Arc;

use serde_json::json;

use super::{at, attempt_of, claim};
use crate::job::{Job, NewJob};
use crate::job_order::{JobOrder, JobSort};
use crate::store::{JobFinishParams, JobListParams, JobSearch, Outcome, Store};
use crate::time_range::TimeRange;

/// Twelve jobs, each on a queue of its own, created ten seconds apart: some never started, some
/// running, some finished after runs of different lengths, one on its second attempt.
async fn jobs_in_every_state(store: &Arc<dyn Store>) -> Vec<Job> {
    for n in 0..12i64 {
        let mut job = NewJob::new("a", &format!("q{n}"), json!({"n": n}), at(n * 10));
        job.max_attempts = 2;
        store.job_insert_many(vec![job], at(n * 10)).await.unwrap();
    }
    for n in 0..12i64 {
        if n % 4 == 3 {
            continue;
        }
        let started = 200 + (n * 7) % 13;
        let running = store
            .job_claim(claim(&format!("q{n}"), 1, at(started)))
            .await
            .unwrap()
            .remove(0);
        if n % 4 == 2 {
            continue;
        }
        let ended = at(started + 1 + (n * 5) % 11);
        let outcome = match n {
            4 => Outcome::Failed {
                error: "first try".into(),
                output: None,
                retry_at: Some(at(300)),
            },
            _ if n % 2 == 1 => Outcome::Failed {
                error: "exit 1".into(),
                output: None,
                retry_at: None,
            },
            _ => Outcome::Succeeded { output: None },
        };
        store
            .job_finish(JobFinishParams {
                attempt: attempt_of(&running),
                outcome,
                now: ended,
            })
            .await
            .unwrap();
    }
    store.job_promote_due(at(301)).await.unwrap();
    let second = store
        .job_claim(claim("q4", 1, at(302)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.attempt, 2);
    store
        .job_finish(JobFinishParams {
            attempt: attempt_of(&second),
            outcome: Outcome::Succeeded { output: None },
            now: at(320),
        })
        .await
        .unwrap();
    store.job_list(super::list_all()).await.unwrap()
}

/// Every page of `params` in turn, `limit` jobs at a time, through each page's cursor.
async fn every_page(store: &Arc<dyn Store>, params: JobListParams) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .job_list(JobListParams {
                before,
                ..params.clone()
            })
            .await
            .unwrap();
        let full = page.len() == params.limit as usize;
        before = page.last().map(|job| params.order.cursor(job));
        jobs.extend(page);
        if !full {
            return jobs;
        }
    }
}

fn ids(jobs: &[Job]) -> Vec<i64> {
    jobs.iter().map(|job| job.id.0).collect()
}

pub async fn every_sort_pages_in_core_order_with_missing_values_last(store: Arc<dyn Store>) {
    let mut all = jobs_in_every_state(&store).await;
    // A search with a trigram goes its own way through the store; it must agree too.
    for search in [None, JobSearch::new("\"n\"")] {
        for sort in JobSort::ALL {
            for ascending in [false, true] {
                let order = JobOrder { sort, ascending };
                all.sort_by(|a, b| order.compare(a, b));
                let paged = every_page(
                    &store,
                    JobListParams {
                        order,
                        search: search.clone(),
                        limit: 3,
                        ..JobListParams::default()
                    },
                )
                .await;
                assert_eq!(
                    ids(&paged),
                    ids(&all),
                    "{} {}, search {search:?}",
                    sort.as_str(),
                    if ascending { "asc" } else { "desc" }
                );
            }
        }
    }
}

pub async fn time_ranges_keep_to_jobs_created_or_finished_within(store: Arc<dyn Store>) {
    let all = jobs_in_every_state(&store).await;
    let ranges = [
        (
            TimeRange {
                from: Some(at(30)),
                to: Some(at(80)),
            },
            TimeRange::default(),
        ),
        (
            TimeRange {
                from: Some(at(50)),
                to: None,
            },
            TimeRange::default(),
        ),
        (
            TimeRange::default(),
            TimeRange {
                from: Some(at(205)),
                to: Some(at(215)),
            },
        ),
        (
            TimeRange::default(),
            TimeRange {
                from: None,
                to: Some(at(210)),
            },
        ),
        (
            TimeRange {
                from: Some(at(0)),
                to: Some(at(60)),
            },
            TimeRange {
                from: Some(at(200)),
                to: None,
            },
        ),
    ];
    for (created, finished) in ranges {
        let params = JobListParams {
            created,
            finished,
            limit: 1000,
            ..JobListParams::default()
        };
        let expected: Vec<i64> = all
            .iter()
            .filter(|job| params.in_time(job))
            .map(|job| job.id.0)
            .collect();
        assert!(
            !expected.is_empty() && expected.len() < all.len(),
            "each range keeps some jobs and leaves some out: {created:?} {finished:?}"
        );
        let listed = store.job_list(params.clone()).await.unwrap();
        assert_eq!(ids(&listed), expected, "{created:?} {finished:?}");
        assert_eq!(
            store.job_count(params).await.unwrap(),
            expected.len() as u64,
            "count of {created:?} {finished:?}"
        );
    }
}
