//! Jobs and their lifecycle: the statuses, and the one pure function that says which
//! transitions are legal. Stores repeat the guard in SQL (`WHERE status = <expected>`), so a
//! terminal job never changes again whatever races happen.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;

/// A job's id: increasing, so "newest first" is "highest id first".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for JobId {
    type Err = String;
    /// Only the canonical form: digits without a sign or leading zeros, so one job has one id
    /// (`+1` and `01` are not job 1).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let canonical = text.bytes().all(|byte| byte.is_ascii_digit()) && !text.starts_with('0');
        match text.parse::<i64>() {
            Ok(id) if canonical && id > 0 => Ok(JobId(id)),
            _ => Err(format!(
                "`{text}` is not a job id (a positive integer, without sign or leading zeros)"
            )),
        }
    }
}

/// Where a job is in its life. `waiting` is reserved for job trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Scheduled,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Waiting,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Waiting => "waiting",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Terminal statuses are final: no input moves a job out of them.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// Applies one input to this status: the table of legal moves. Pure; `transition::decide`
    /// builds every change of a job on it.
    pub fn apply(self, input: JobInput) -> Result<JobStatus, IllegalTransition> {
        use JobInput as I;
        use JobStatus as S;
        let next = match (self, input) {
            (S::Queued | S::Scheduled, I::Claim) => S::Running,
            (S::Scheduled, I::Promote) => S::Queued,
            (S::Queued | S::Scheduled | S::Waiting, I::Cancel) => S::Cancelled,
            (S::Running, I::Succeed) => S::Succeeded,
            (S::Running, I::Fail { retry: true }) => S::Scheduled,
            (S::Running, I::Fail { retry: false }) => S::Failed,
            (S::Running, I::Cancel) => S::Cancelled,
            (S::Running, I::RequestCancel) => S::Running,
            (S::Running, I::Rescue { retry: true }) => S::Queued,
            (S::Running, I::Rescue { retry: false }) => S::Failed,
            (S::Running, I::HandBack) => S::Queued,
            (from, input) => return Err(IllegalTransition { from, input }),
        };
        Ok(next)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a job status; use one of queued, scheduled, running, waiting, succeeded, failed, cancelled"
                )
            })
    }
}

/// What can happen to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobInput {
    /// A dispatcher takes the job to run it.
    Claim,
    /// A scheduled job's `run_at` has passed.
    Promote,
    /// Its runner finished with success.
    Succeed,
    /// Its runner failed; `retry` when attempts remain.
    Fail { retry: bool },
    /// A user cancels it (not running), or its runner stopped it after a cancel request.
    Cancel,
    /// A user cancels it while it runs: its runner is asked to stop; the status stays.
    RequestCancel,
    /// Its lease ran out (worker gone); `retry` when attempts remain.
    Rescue { retry: bool },
    /// Its runner stops at shutdown without an outcome; the attempt does not count.
    HandBack,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} job cannot take {input:?}")]
pub struct IllegalTransition {
    pub from: JobStatus,
    pub input: JobInput,
}

/// Progress as a runner reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0.0 ..= 1.0
    pub fraction: f64,
    pub message: Option<String>,
}

/// One job, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub job_type: String,
    pub queue: String,
    pub status: JobStatus,
    pub priority: i32,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub progress: Option<Progress>,
    /// Attempts started so far; the running attempt while `running`. Also the lease's fencing
    /// token: a runner's writes carry it and are refused once it is stale.
    pub attempt: u32,
    pub max_attempts: u32,
    pub parent: Option<JobId>,
    pub retry_of: Option<JobId>,
    pub cancel_requested: bool,
    pub created_at: Timestamp,
    pub run_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub lease_until: Option<Timestamp>,
    pub worker: Option<String>,
    /// The running attempt's process id (command jobs), for ending it after a crash.
    pub pid: Option<u32>,
    pub log_size: u64,
    /// Log bytes the store could not keep (a full disk); 0 when the log is whole.
    pub log_lost: u64,
    /// Every start of the job, including those that do not count as an attempt (a hand-back
    /// at shutdown, a claim whose process never started): `runs > attempt` means the job is
    /// running again after one of those.
    pub runs: u32,
}

/// A job to insert. Validated by the engine before it reaches a store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub job_type: String,
    pub queue: String,
    pub priority: i32,
    pub input: Value,
    pub max_attempts: u32,
    /// `queued` when due now, `scheduled` when `run_at` is in the future.
    pub status: JobStatus,
    pub run_at: Timestamp,
    pub parent: Option<JobId>,
    pub retry_of: Option<JobId>,
}

impl NewJob {
    /// The job as a store inserts it, under the id it gave: nothing has run yet.
    pub fn inserted(self, id: JobId, created_at: Timestamp) -> Job {
        Job {
            id,
            job_type: self.job_type,
            queue: self.queue,
            status: self.status,
            priority: self.priority,
            input: self.input,
            output: None,
            error: None,
            progress: None,
            attempt: 0,
            max_attempts: self.max_attempts,
            parent: self.parent,
            retry_of: self.retry_of,
            cancel_requested: false,
            created_at,
            run_at: self.run_at,
            started_at: None,
            finished_at: None,
            lease_until: None,
            worker: None,
            pid: None,
            log_size: 0,
            log_lost: 0,
            runs: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Vec<JobInput> {
        vec![
            JobInput::Claim,
            JobInput::Promote,
            JobInput::Succeed,
            JobInput::Fail { retry: true },
            JobInput::Fail { retry: false },
            JobInput::Cancel,
            JobInput::RequestCancel,
            JobInput::Rescue { retry: true },
            JobInput::Rescue { retry: false },
            JobInput::HandBack,
        ]
    }

    #[test]
    fn every_status_and_input_has_the_expected_outcome() {
        use JobInput as I;
        use JobStatus as S;
        let expected = |from: S, input: I| -> Option<S> {
            match (from, input) {
                (S::Queued, I::Claim) | (S::Scheduled, I::Claim) => Some(S::Running),
                (S::Scheduled, I::Promote) => Some(S::Queued),
                (S::Queued, I::Cancel) | (S::Scheduled, I::Cancel) | (S::Waiting, I::Cancel) => {
                    Some(S::Cancelled)
                }
                (S::Running, I::Succeed) => Some(S::Succeeded),
                (S::Running, I::Fail { retry: true }) => Some(S::Scheduled),
                (S::Running, I::Fail { retry: false }) => Some(S::Failed),
                (S::Running, I::Cancel) => Some(S::Cancelled),
                (S::Running, I::RequestCancel) => Some(S::Running),
                (S::Running, I::Rescue { retry: true }) => Some(S::Queued),
                (S::Running, I::Rescue { retry: false }) => Some(S::Failed),
                (S::Running, I::HandBack) => Some(S::Queued),
                _ => None,
            }
        };
        for from in JobStatus::ALL {
            for input in inputs() {
                let got = from.apply(input).ok();
                assert_eq!(got, expected(from, input), "{from} × {input:?}");
            }
        }
    }

    #[test]
    fn terminal_statuses_take_no_input() {
        for from in JobStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for input in inputs() {
                assert!(
                    from.apply(input).is_err(),
                    "{from} × {input:?} must be refused"
                );
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        assert!("done".parse::<JobStatus>().unwrap_err().contains("queued"));
    }

    #[test]
    fn job_ids_are_positive_integers() {
        assert_eq!("42".parse::<JobId>(), Ok(JobId(42)));
        assert!("0".parse::<JobId>().is_err());
        assert!("-3".parse::<JobId>().is_err());
        assert!("abc".parse::<JobId>().is_err());
        for other_spelling in ["+1", "01", "00042", " 42", "42 ", ""] {
            assert!(
                other_spelling.parse::<JobId>().is_err(),
                "{other_spelling:?} was read as a job id"
            );
        }
    }
}
