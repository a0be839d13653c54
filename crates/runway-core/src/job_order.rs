//! The order of a job list and the cursor of its pages, the same in every store and in the live
//! layer: a job sorts by one key ([`JobOrder::key`]), ties broken by id in the same direction, and
//! a page ends at a [`JobCursor`] (the last job's key and id) from which the next page goes on.

use std::cmp::Ordering;

use crate::job::{Job, JobId};

/// What a job list is ordered by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum JobSort {
    /// By id, which grows with creation.
    #[default]
    Created,
    Started,
    Finished,
    /// Finished minus started, of jobs that have both.
    Duration,
    /// The attempt number.
    Attempts,
}

impl JobSort {
    pub const ALL: [JobSort; 5] = [
        JobSort::Created,
        JobSort::Started,
        JobSort::Finished,
        JobSort::Duration,
        JobSort::Attempts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobSort::Created => "created",
            JobSort::Started => "started",
            JobSort::Finished => "finished",
            JobSort::Duration => "duration",
            JobSort::Attempts => "attempts",
        }
    }

    pub fn parse(text: &str) -> Option<JobSort> {
        JobSort::ALL.into_iter().find(|sort| sort.as_str() == text)
    }
}

/// A sort and its direction; the default is newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct JobOrder {
    pub sort: JobSort,
    pub ascending: bool,
}

impl JobOrder {
    /// The value `job` sorts by. A job without one (not started, not finished) sorts after every
    /// job that has one, in either direction, so the jobs a sort is about come first.
    pub fn key(&self, job: &Job) -> i64 {
        self.value(job).unwrap_or(self.missing_key())
    }

    /// The sorted value of `job`, if it has one.
    pub fn value(&self, job: &Job) -> Option<i64> {
        match self.sort {
            JobSort::Created => Some(job.id.0),
            JobSort::Started => job.started_at.map(|at| at.timestamp_micros()),
            JobSort::Finished => job.finished_at.map(|at| at.timestamp_micros()),
            JobSort::Duration => job
                .started_at
                .zip(job.finished_at)
                .map(|(started, finished)| {
                    finished.timestamp_micros() - started.timestamp_micros()
                }),
            JobSort::Attempts => Some(i64::from(job.attempt)),
        }
    }

    /// The key of a job that lacks the sorted value: the last key in the list's direction. A
    /// store writes its key as `coalesce(value, missing_key)`.
    pub fn missing_key(&self) -> i64 {
        if self.ascending { i64::MAX } else { i64::MIN }
    }

    /// Where `job` ends a page.
    pub fn cursor(&self, job: &Job) -> JobCursor {
        JobCursor {
            key: self.value(job),
            id: job.id,
        }
    }

    /// The key a cursor stands at in this order.
    pub fn cursor_key(&self, cursor: &JobCursor) -> i64 {
        cursor.key.unwrap_or(self.missing_key())
    }

    /// The list's order of two jobs: `Less` when `a` comes first.
    pub fn compare(&self, a: &Job, b: &Job) -> Ordering {
        let ascending = (self.key(a), a.id).cmp(&(self.key(b), b.id));
        if self.ascending {
            ascending
        } else {
            ascending.reverse()
        }
    }

    /// Whether `job` comes after `cursor`: on a later page than the one it ended.
    pub fn is_after(&self, job: &Job, cursor: &JobCursor) -> bool {
        let held = (self.key(job), job.id);
        let at = (self.cursor_key(cursor), cursor.id);
        if self.ascending { held > at } else { held < at }
    }
}

/// Where a page of a list ended: the next page holds the jobs after it. Its text, handed to
/// clients as `next_cursor`, is `KEY:ID`, `-:ID` after a job without the sorted value, or the
/// id alone when the key is the id (the list by creation). Any cursor of that form is a place in
/// any order, so no well-formed cursor is refused; one from a list in another order just starts
/// its page elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobCursor {
    /// The sorted value of the job the page ended at; `None` when it had none.
    pub key: Option<i64>,
    pub id: JobId,
}

impl JobCursor {
    /// The cursor of the list by creation after the job `id`.
    pub fn before(id: JobId) -> JobCursor {
        JobCursor {
            key: Some(id.0),
            id,
        }
    }

    pub fn to_text(&self) -> String {
        match self.key {
            Some(key) if key == self.id.0 => self.id.to_string(),
            Some(key) => format!("{key}:{}", self.id),
            None => format!("-:{}", self.id),
        }
    }

    pub fn parse(text: &str) -> Result<JobCursor, String> {
        let foreign = || format!("`{text}` is not a cursor this server gave out");
        match text.split_once(':') {
            None => text.parse().map(JobCursor::before).map_err(|_| foreign()),
            Some((key, id)) => Ok(JobCursor {
                key: match key {
                    "-" => None,
                    key => Some(key.parse().map_err(|_| foreign())?),
                },
                id: id.parse().map_err(|_| foreign())?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::job::NewJob;

    fn job_with_id(id: i64) -> Job {
        let epoch = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        NewJob::new("a", "q", serde_json::json!({}), epoch)
            .inserted(JobId(id), epoch)
            .0
    }

    fn finished_job(id: i64, started: Option<i64>, finished: Option<i64>) -> Job {
        let epoch = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut job = job_with_id(id);
        job.started_at = started.map(|seconds| epoch + Duration::seconds(seconds));
        job.finished_at = finished.map(|seconds| epoch + Duration::seconds(seconds));
        job
    }

    #[test]
    fn jobs_without_the_value_come_last_in_either_direction() {
        let jobs = [
            finished_job(1, Some(0), Some(10)),
            finished_job(2, None, None),
            finished_job(3, Some(0), Some(5)),
        ];
        for ascending in [false, true] {
            let order = JobOrder {
                sort: JobSort::Duration,
                ascending,
            };
            let mut sorted: Vec<&Job> = jobs.iter().collect();
            sorted.sort_by(|a, b| order.compare(a, b));
            let ids: Vec<i64> = sorted.iter().map(|job| job.id.0).collect();
            let expected = if ascending { [3, 1, 2] } else { [1, 3, 2] };
            assert_eq!(ids, expected, "ascending: {ascending}");
        }
    }

    #[test]
    fn ties_are_broken_by_id_in_the_list_direction() {
        let order = JobOrder {
            sort: JobSort::Attempts,
            ascending: false,
        };
        let (a, b) = (job_with_id(4), job_with_id(9));
        assert_eq!(order.compare(&b, &a), Ordering::Less);
        assert!(order.is_after(&a, &order.cursor(&b)));
        assert!(!order.is_after(&b, &order.cursor(&b)));
    }

    #[test]
    fn a_cursor_reads_back_what_it_wrote() {
        for sort in JobSort::ALL {
            for ascending in [false, true] {
                let order = JobOrder { sort, ascending };
                let cursor = order.cursor(&finished_job(7, Some(1), None));
                assert_eq!(JobCursor::parse(&cursor.to_text()), Ok(cursor));
            }
        }
        assert_eq!(JobCursor::before(JobId(12)).to_text(), "12");
        assert_eq!(
            JobCursor::parse("-:3"),
            Ok(JobCursor {
                key: None,
                id: JobId(3)
            })
        );
        assert_eq!(
            JobCursor::parse("-5:3"),
            Ok(JobCursor {
                key: Some(-5),
                id: JobId(3)
            })
        );
    }

    #[test]
    fn damaged_cursors_are_refused() {
        for text in [
            "",
            "x",
            "5:",
            ":12",
            "5:12:1",
            "5:0",
            "99999999999999999999:1",
        ] {
            let error = JobCursor::parse(text).unwrap_err();
            assert!(error.contains("not a cursor"), "{text}: {error}");
        }
    }
}
