//! Jobs and their lifecycle: the statuses, and the one pure function that says which
//! transitions are legal. Stores repeat the guard in SQL (`WHERE status = <expected>`), so a
//! terminal job never changes again whatever races happen.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::users::Owner;

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

/// Where a job is in its life. `waiting`: its command has run and its children have not all
/// finished.
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
            (S::Running, I::Wait) => S::Waiting,
            (S::Running | S::Waiting, I::StartJoin) => S::Queued,
            (S::Waiting, I::ChildrenSucceeded) => S::Succeeded,
            (S::Queued | S::Scheduled | S::Waiting, I::ChildrenFailed) => S::Failed,
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
    /// Its command succeeded while some of its children have not finished.
    Wait,
    /// Its children have all finished and its type joins them: the command runs again.
    StartJoin,
    /// Its children have all succeeded and its type does not join them.
    ChildrenSucceeded,
    /// A child failed for good and the tree fails with it (`fail_fast`), or every child has
    /// finished and some did not succeed with nothing to join them (`wait_all`).
    ChildrenFailed,
}

/// Which run of its command a job is in: a job whose type joins its children runs its command
/// a second time, once they have all finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Run,
    Join,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Run => "run",
            Phase::Join => "join",
        }
    }
}

impl FromStr for Phase {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "run" => Ok(Phase::Run),
            "join" => Ok(Phase::Join),
            other => Err(format!("`{other}` is not a phase; use run or join")),
        }
    }
}

/// What a parent does when one of its children fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildFailure {
    /// Cancel the unfinished siblings and fail the parent, naming the child.
    #[default]
    FailFast,
    /// Let every child finish; the join sees every outcome and decides.
    WaitAll,
}

impl ChildFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ChildFailure::FailFast => "fail_fast",
            ChildFailure::WaitAll => "wait_all",
        }
    }
}

impl FromStr for ChildFailure {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "fail_fast" => Ok(ChildFailure::FailFast),
            "wait_all" => Ok(ChildFailure::WaitAll),
            other => Err(format!(
                "`{other}` is not a child failure policy; use fail_fast or wait_all"
            )),
        }
    }
}

/// How a job treats its children: its type's choice, copied onto the job at submit (like
/// `max_attempts`) so that every decision about the tree needs the job alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreePolicy {
    /// Run the command again (`RUNWAY_PHASE=join`) once every child has finished.
    pub join: bool,
    pub on_child_failure: ChildFailure,
}

/// A job's children by how they stand; kept on the parent as they change, so that a child's
/// end needs no count over its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildCounts {
    pub total: u32,
    /// Not finished yet.
    pub unfinished: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub cancelled: u32,
}

impl ChildCounts {
    /// Children that finished without success.
    pub fn unsuccessful(&self) -> u32 {
        self.failed + self.cancelled
    }
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
    /// The root of the job's tree; `None` for a root.
    pub root: Option<JobId>,
    /// 0 for a root, 1 for its children, …
    pub depth: u32,
    /// The key the job was spawned with, unique among its siblings.
    pub key: Option<String>,
    pub phase: Phase,
    /// Attempts counted before the current phase began: each phase has `max_attempts` of its
    /// own, while `attempt` keeps counting (it is the lease's fencing token).
    pub phase_attempt_base: u32,
    pub tree: TreePolicy,
    pub children: ChildCounts,
    /// The first child that did not succeed, as the parent's error will name it.
    pub child_failure: Option<String>,
    /// The trigger that submitted the job; a retry by hand names none.
    pub trigger: Option<String>,
    /// The user who submitted the job (a child, its tree's); `None` for the server's own
    /// (a trigger's), which only admins see.
    pub owner: Option<Owner>,
}

impl Job {
    /// Whether a failure of the running attempt may be retried: attempts of this phase remain.
    pub fn attempts_left(&self) -> bool {
        self.attempt.saturating_sub(self.phase_attempt_base) < self.max_attempts
    }

    /// Attempts counted in the current phase.
    pub fn phase_attempt(&self) -> u32 {
        self.attempt.saturating_sub(self.phase_attempt_base)
    }

    /// The share of its children that have finished, for a job that waits for them.
    pub fn tree_progress(&self) -> Option<Progress> {
        let counts = self.children;
        if self.status != JobStatus::Waiting || counts.total == 0 {
            return None;
        }
        let done = counts.total - counts.unfinished.min(counts.total);
        Some(Progress {
            fraction: f64::from(done) / f64::from(counts.total),
            message: Some(format!("{done} of {} children finished", counts.total)),
        })
    }

    /// Where a child of this job sits in the tree: its root and depth.
    pub fn child_place(&self) -> (JobId, u32) {
        (self.root.unwrap_or(self.id), self.depth + 1)
    }
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
    pub root: Option<JobId>,
    pub depth: u32,
    /// A spawn's key: a second spawn with it under the same parent returns this job.
    pub key: Option<String>,
    pub phase: Phase,
    pub tree: TreePolicy,
    /// Jobs created with this one as its children, in the same transaction. A job submitted
    /// with children starts `waiting` in its join phase (see [`NewJob::with_children`]).
    pub children: Vec<NewJob>,
    /// The output of a job made already `succeeded`: a child a retried tree carries over.
    pub output: Option<Value>,
    /// The trigger that submits the job.
    pub trigger: Option<String>,
    /// Who submits it; children get their parent's.
    pub owner: Option<Owner>,
}

impl NewJob {
    /// A queued root job due at `run_at`, priority 0, one attempt, the default tree policy:
    /// the plain case, which validation and tests adjust.
    pub fn new(job_type: &str, queue: &str, input: Value, run_at: Timestamp) -> NewJob {
        NewJob {
            job_type: job_type.to_string(),
            queue: queue.to_string(),
            priority: 0,
            input,
            max_attempts: 1,
            status: JobStatus::Queued,
            run_at,
            parent: None,
            retry_of: None,
            root: None,
            depth: 0,
            key: None,
            phase: Phase::Run,
            tree: TreePolicy::default(),
            children: Vec::new(),
            output: None,
            trigger: None,
            owner: None,
        }
    }

    /// Gives the job children created with it: it waits for them (its command runs only as
    /// the join, when its type joins). The children's place in the tree is set at insert.
    pub fn with_children(mut self, children: Vec<NewJob>) -> NewJob {
        if !children.is_empty() {
            self.status = JobStatus::Waiting;
            self.phase = Phase::Join;
        }
        self.children = children;
        self
    }

    /// Counts of the children inserted with it (a retried tree carries some over succeeded).
    /// The data of the job's `submitted` event: its type and queue, and where it comes from
    /// (a retry, a parent, a trigger) and how many children it brings.
    pub fn submitted_event_data(&self) -> serde_json::Value {
        let mut data = serde_json::json!({"type": self.job_type, "queue": self.queue});
        if let Some(old) = self.retry_of {
            data["retry_of"] = serde_json::json!(old.0);
            if self.status == JobStatus::Succeeded {
                // A child a retried tree keeps: it does not run again.
                data["carried_from"] = serde_json::json!(old.0);
            }
        }
        if let Some(parent) = self.parent {
            data["parent"] = serde_json::json!(parent.0);
        }
        if let Some(trigger) = &self.trigger {
            data["trigger"] = serde_json::json!(trigger);
        }
        let children = self.child_counts().total;
        if children > 0 {
            data["children"] = serde_json::json!(children);
        }
        data
    }

    pub fn child_counts(&self) -> ChildCounts {
        let mut counts = ChildCounts::default();
        for child in &self.children {
            counts.total += 1;
            match child.status {
                JobStatus::Succeeded => counts.succeeded += 1,
                JobStatus::Failed => counts.failed += 1,
                JobStatus::Cancelled => counts.cancelled += 1,
                _ => counts.unfinished += 1,
            }
        }
        counts
    }

    /// Places the job under `parent`: its tree, depth and parent, set when it is inserted.
    pub fn place_under(&mut self, parent: &Job) {
        let (root, depth) = parent.child_place();
        self.parent = Some(parent.id);
        self.root = Some(root);
        self.depth = depth;
        self.owner = parent.owner.clone();
    }
    /// The job as a store inserts it, under the id it gave (nothing has run yet), and the
    /// children still to insert below it.
    pub fn inserted(self, id: JobId, created_at: Timestamp) -> (Job, Vec<NewJob>) {
        let children = self.child_counts();
        let job = Job {
            id,
            job_type: self.job_type,
            queue: self.queue,
            status: self.status,
            priority: self.priority,
            input: self.input,
            output: self.output,
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
            finished_at: self.status.is_terminal().then_some(created_at),
            lease_until: None,
            worker: None,
            pid: None,
            log_size: 0,
            log_lost: 0,
            runs: 0,
            root: self.root,
            depth: self.depth,
            key: self.key,
            phase: self.phase,
            phase_attempt_base: 0,
            tree: self.tree,
            children,
            child_failure: None,
            trigger: self.trigger,
            owner: self.owner,
        };
        (job, self.children)
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
            JobInput::Wait,
            JobInput::StartJoin,
            JobInput::ChildrenSucceeded,
            JobInput::ChildrenFailed,
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
                (S::Running, I::Wait) => Some(S::Waiting),
                (S::Running, I::StartJoin) | (S::Waiting, I::StartJoin) => Some(S::Queued),
                (S::Waiting, I::ChildrenSucceeded) => Some(S::Succeeded),
                (S::Queued, I::ChildrenFailed)
                | (S::Scheduled, I::ChildrenFailed)
                | (S::Waiting, I::ChildrenFailed) => Some(S::Failed),
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
