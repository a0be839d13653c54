//! Every change of a job's status, decided in one place. [`decide`] takes the job as stored, a
//! command and the time, and returns the job as it must be stored afterwards, the event to
//! record, and the effects on other jobs of its tree (a parent to tell, children to cancel); a
//! store only persists that, guarded by the status (and, for a runner's writes, the attempt and
//! worker) the job had when it was read, and hands the effects to `tree::apply`. No backend
//! holds policy of its own: what a claim counts, when a failure retries, what a cancel request
//! does to a failing attempt, when a parent waits, joins or fails with its children, all of it
//! is here, and the PostgreSQL backend reuses it as it is.

use serde_json::{Value, json};

use crate::clock::{Timestamp, micros_to_timestamp};
use crate::event::EventKind;
use crate::job::{ChildFailure, IllegalTransition, Job, JobId, JobInput, JobStatus, Phase};
use crate::store::Outcome;

/// What may happen to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    /// A dispatcher takes the job to run it, holding it until `lease_until`.
    Claim {
        worker: String,
        lease_until: Timestamp,
    },
    /// A scheduled job's `run_at` has passed.
    Promote,
    /// A user cancels the job: a job that is not running ends at once; a running one is asked
    /// to stop, and its runner reports how it ended. Its unfinished children are cancelled.
    Cancel,
    /// The job is cancelled because its tree is: like [`JobCommand::Cancel`], with `reason`
    /// as its error.
    CancelInTree { reason: String },
    /// The running attempt ended (or was lost, or handed back).
    Finish(Outcome),
    /// One of the job's children finished for good.
    ChildEnded(ChildEnd),
}

/// A child that finished for good, as its parent learns of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildEnd {
    pub id: JobId,
    pub job_type: String,
    pub status: JobStatus,
    pub error: Option<String>,
}

impl ChildEnd {
    fn of(job: &Job) -> ChildEnd {
        ChildEnd {
            id: job.id,
            job_type: job.job_type.clone(),
            status: job.status,
            error: job.error.clone(),
        }
    }

    /// The child as a parent's error names it.
    fn describe(&self) -> String {
        let ended = match self.status {
            JobStatus::Cancelled => "was cancelled",
            _ => "failed",
        };
        match &self.error {
            Some(error) => format!("child job {} ({}) {ended}: {error}", self.id, self.job_type),
            None => format!("child job {} ({}) {ended}", self.id, self.job_type),
        }
    }
}

/// A change a transition makes necessary elsewhere in the job's tree. The store applies each
/// in the same transaction, by asking [`decide`] again for the job it names.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell `parent` that one of its children finished for good.
    ChildEnded { parent: JobId, child: ChildEnd },
    /// Cancel every unfinished child of `parent` with `reason`.
    CancelChildren { parent: JobId, reason: String },
}

/// The decision: the job as it must be stored, the event that records the change, and what
/// the change does to the rest of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The job after the change. Its `input` never changes.
    pub job: Job,
    pub event: EventKind,
    /// The event's details: the attempt, and the error or the new `run_at` where they apply.
    pub event_data: Value,
    pub effects: Vec<Effect>,
}

/// The message of a job cancelled while it was not running, or whose lost attempt ends it.
pub const CANCELLED_BY_REQUEST: &str = "cancelled by request";

/// Why a spawn under a job was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpawnRefused(pub String);

/// Decides what `command` does to `job` at `now`. `Ok(None)` means nothing is to change: a
/// cancel request already made, a rescue whose lease was renewed meanwhile, or news of a child
/// for a parent that has already finished.
pub fn decide(
    job: &Job,
    command: JobCommand,
    now: Timestamp,
) -> Result<Option<Transition>, IllegalTransition> {
    let mut next = job.clone();
    let attempt = job.attempt;
    let mut effects = Vec::new();
    let (event, event_data) = match command {
        JobCommand::Claim {
            worker,
            lease_until,
        } => {
            next.status = job.status.apply(JobInput::Claim)?;
            next.attempt += 1;
            next.runs += 1;
            next.started_at = Some(now);
            next.lease_until = Some(to_stored_precision(lease_until));
            next.progress = None;
            next.error = None;
            next.pid = None;
            let data = json!({
                "attempt": next.attempt,
                "run": next.runs,
                "worker": worker,
                "phase": next.phase.as_str(),
            });
            next.worker = Some(worker);
            (EventKind::Started, data)
        }
        JobCommand::Promote => {
            next.status = job.status.apply(JobInput::Promote)?;
            (EventKind::Promoted, json!({}))
        }
        JobCommand::Cancel | JobCommand::CancelInTree { .. }
            if job.status == JobStatus::Running =>
        {
            job.status.apply(JobInput::RequestCancel)?;
            if job.cancel_requested {
                return Ok(None);
            }
            next.cancel_requested = true;
            if let JobCommand::CancelInTree { reason } = command {
                // Kept as the error the cancelled attempt ends with.
                next.error = Some(reason);
            }
            if job.children.unfinished > 0 {
                effects.push(Effect::CancelChildren {
                    parent: job.id,
                    reason: format!("cancelled because its parent job {} was cancelled", job.id),
                });
            }
            (EventKind::CancelRequested, json!({"attempt": attempt}))
        }
        JobCommand::Cancel | JobCommand::CancelInTree { .. } => {
            next.status = job.status.apply(JobInput::Cancel)?;
            next.finished_at = Some(now);
            next.error = Some(match command {
                JobCommand::CancelInTree { reason } => reason,
                _ => CANCELLED_BY_REQUEST.into(),
            });
            next.cancel_requested = true;
            (EventKind::Cancelled, json!({"attempt": attempt}))
        }
        JobCommand::Finish(outcome) => {
            if let Outcome::Rescued {
                expired_only: true, ..
            } = outcome
                && job.lease_until.is_some_and(|until| until >= now)
            {
                return Ok(None);
            }
            return finish(job, next, outcome, now).map(Some);
        }
        JobCommand::ChildEnded(child) => return child_ended(job, next, child, now),
    };
    Ok(Some(with_tree_effects(
        job,
        Transition {
            job: next,
            event,
            event_data,
            effects,
        },
    )))
}

/// Decides a spawn of `count` children under the running `parent`, whose children may number
/// `limit` at most: the parent counts them as unfinished.
pub fn adopt(parent: &Job, count: u32, limit: u32) -> Result<Transition, SpawnRefused> {
    let id = parent.id;
    if parent.status != JobStatus::Running {
        return Err(SpawnRefused(format!(
            "job {id} is {}; only a running job can spawn children",
            parent.status
        )));
    }
    if parent.phase == Phase::Join {
        return Err(SpawnRefused(format!(
            "job {id} is running its join; children are spawned in its first run only"
        )));
    }
    if parent.cancel_requested {
        return Err(SpawnRefused(format!(
            "job {id} is being cancelled; it spawns no more children"
        )));
    }
    if parent.tree.on_child_failure == ChildFailure::FailFast
        && let Some(failure) = &parent.child_failure
    {
        return Err(SpawnRefused(format!(
            "job {id} is failing ({failure}); it spawns no more children"
        )));
    }
    let total = u64::from(parent.children.total) + u64::from(count);
    if total > u64::from(limit) {
        return Err(SpawnRefused(format!(
            "job {id} would have {total} children; at most {limit} are allowed (server.max_children)"
        )));
    }
    let mut next = parent.clone();
    next.children.total += count;
    next.children.unfinished += count;
    Ok(Transition {
        job: next,
        event: EventKind::Spawned,
        event_data: json!({"count": count, "attempt": parent.attempt}),
        effects: Vec::new(),
    })
}

/// Adds what a change means for the rest of the tree: a job that finished tells its parent,
/// and one that finished without success cancels its unfinished children.
fn with_tree_effects(before: &Job, mut transition: Transition) -> Transition {
    let after = &transition.job;
    if before.status.is_terminal() || !after.status.is_terminal() {
        return transition;
    }
    if after.status != JobStatus::Succeeded && after.children.unfinished > 0 {
        let why = after.error.as_deref().unwrap_or("no reason given");
        transition.effects.push(Effect::CancelChildren {
            parent: after.id,
            reason: format!(
                "cancelled because its parent job {} {}: {why}",
                after.id,
                if after.status == JobStatus::Cancelled {
                    "was cancelled"
                } else {
                    "failed"
                }
            ),
        });
    }
    if let Some(parent) = after.parent {
        transition.effects.push(Effect::ChildEnded {
            parent,
            child: ChildEnd::of(after),
        });
    }
    transition
}

/// Instants are stored to the microsecond: a decided one is cut there too, so the job a store
/// returns and publishes is the job it stored (a backoff delay is not whole microseconds).
fn to_stored_precision(at: Timestamp) -> Timestamp {
    micros_to_timestamp(at.timestamp_micros())
}

/// A parent learns that a child finished for good. Under `fail_fast` the first child that did
/// not succeed fails the tree: its siblings are cancelled, and the parent fails at once, or
/// when its command ends if it is running. When the last child finishes, a waiting parent
/// joins, succeeds or fails.
fn child_ended(
    job: &Job,
    mut next: Job,
    child: ChildEnd,
    now: Timestamp,
) -> Result<Option<Transition>, IllegalTransition> {
    if job.status.is_terminal() {
        return Ok(None);
    }
    let counts = &mut next.children;
    counts.unfinished = counts.unfinished.saturating_sub(1);
    match child.status {
        JobStatus::Succeeded => counts.succeeded += 1,
        JobStatus::Failed => counts.failed += 1,
        _ => counts.cancelled += 1,
    }
    let succeeded = child.status == JobStatus::Succeeded;
    let first_failure = !succeeded && job.child_failure.is_none();
    if first_failure {
        next.child_failure = Some(child.describe());
    }
    let event_data = json!({"child": child.id.0, "status": child.status});
    let fail_fast = job.tree.on_child_failure == ChildFailure::FailFast;
    if first_failure && fail_fast {
        if job.status == JobStatus::Running {
            // Its command goes on to its end (then the job fails); the siblings stop now.
            let reason = format!("cancelled because its sibling {}", child.describe());
            return Ok(Some(Transition {
                job: next,
                event: EventKind::ChildEnded,
                event_data,
                effects: vec![Effect::CancelChildren {
                    parent: job.id,
                    reason,
                }],
            }));
        }
        next.status = job.status.apply(JobInput::ChildrenFailed)?;
        next.error = next.child_failure.clone();
        return Ok(Some(ended(job, next, EventKind::Failed, now)));
    }
    if next.children.unfinished == 0 && job.status == JobStatus::Waiting {
        return children_done(job, next, now).map(Some);
    }
    Ok(Some(Transition {
        job: next,
        event: EventKind::ChildEnded,
        event_data,
        effects: Vec::new(),
    }))
}

/// Every child of a job whose command has run has finished: it joins them (its command runs
/// again), or ends as they did.
fn children_done(
    job: &Job,
    mut next: Job,
    now: Timestamp,
) -> Result<Transition, IllegalTransition> {
    let counts = next.children;
    if job.tree.join {
        next.status = job.status.apply(JobInput::StartJoin)?;
        next.phase = Phase::Join;
        next.phase_attempt_base = next.attempt;
        next.run_at = to_stored_precision(now);
        next.progress = None;
        next.lease_until = None;
        next.worker = None;
        next.pid = None;
        let data = json!({
            "children": counts.total,
            "succeeded": counts.succeeded,
            "unsuccessful": counts.unsuccessful(),
        });
        return Ok(Transition {
            job: next,
            event: EventKind::JoinQueued,
            event_data: data,
            effects: Vec::new(),
        });
    }
    // Straight from the first run when the children finished before it did.
    let from_run = job.status == JobStatus::Running;
    if counts.unsuccessful() > 0 {
        next.status = job.status.apply(if from_run {
            JobInput::Fail { retry: false }
        } else {
            JobInput::ChildrenFailed
        })?;
        next.error = Some(format!(
            "{} of {} children did not succeed; the first: {}",
            counts.unsuccessful(),
            counts.total,
            next.child_failure.as_deref().unwrap_or("unknown")
        ));
        return Ok(ended(job, next, EventKind::Failed, now));
    }
    next.status = job.status.apply(if from_run {
        JobInput::Succeed
    } else {
        JobInput::ChildrenSucceeded
    })?;
    Ok(ended(job, next, EventKind::Succeeded, now))
}

/// A job that leaves `waiting` (or any unstarted status) for a terminal one without a runner.
fn ended(before: &Job, mut next: Job, event: EventKind, now: Timestamp) -> Transition {
    next.finished_at = Some(now);
    next.lease_until = None;
    next.pid = None;
    let mut event_data = json!({"attempt": before.attempt});
    if let Some(error) = &next.error {
        event_data["error"] = json!(error);
    }
    with_tree_effects(
        before,
        Transition {
            job: next,
            event,
            event_data,
            effects: Vec::new(),
        },
    )
}

/// The end of a running attempt. A job whose cancel was requested never goes back to a queue:
/// a retry becomes a final failure, a lost or handed-back attempt a cancel. A first run that
/// succeeds while children are unfinished waits for them.
fn finish(
    job: &Job,
    mut next: Job,
    outcome: Outcome,
    now: Timestamp,
) -> Result<Transition, IllegalTransition> {
    let attempt = job.attempt;
    let parent_run = job.phase == Phase::Run && (job.children.total > 0 || job.tree.join);
    let outcome = match outcome {
        Outcome::Succeeded { output } if parent_run && !job.cancel_requested => {
            return run_succeeded(job, next, output, now);
        }
        // Its children were cancelled with it: the tree did not complete, whatever the
        // command made of the request.
        Outcome::Succeeded { .. } if parent_run => Outcome::Cancelled {
            error: CANCELLED_BY_REQUEST.into(),
        },
        other => other,
    };
    // Under fail_fast a child that failed for good failed the tree: the first run is not
    // tried again, and the job fails naming the child.
    let tree_failed = job.phase == Phase::Run
        && job.tree.on_child_failure == ChildFailure::FailFast
        && job.child_failure.is_some();
    let outcome = match outcome {
        Outcome::Failed { output, .. } if tree_failed => Outcome::Failed {
            error: job.child_failure.clone().unwrap_or_default(),
            output,
            retry_at: None,
        },
        Outcome::Rescued {
            error,
            expired_only,
            ..
        } if tree_failed => Outcome::Rescued {
            error,
            requeue: false,
            expired_only,
        },
        other => other,
    };
    let (input, event, error, output, run_at) = match outcome {
        Outcome::Succeeded { output } => {
            (JobInput::Succeed, EventKind::Succeeded, None, output, None)
        }
        Outcome::Failed {
            error,
            output,
            retry_at: Some(at),
        } if !job.cancel_requested => (
            JobInput::Fail { retry: true },
            EventKind::RetryScheduled,
            Some(error),
            output,
            Some(at),
        ),
        Outcome::Failed { error, output, .. } => (
            JobInput::Fail { retry: false },
            EventKind::Failed,
            Some(error),
            output,
            None,
        ),
        Outcome::Cancelled { error } => (
            JobInput::Cancel,
            EventKind::Cancelled,
            // A cancel that came from the tree said why when it was requested.
            Some(job.error.clone().unwrap_or(error)),
            None,
            None,
        ),
        Outcome::Rescued { .. } | Outcome::HandedBack if job.cancel_requested => (
            JobInput::Cancel,
            EventKind::Cancelled,
            Some(
                job.error
                    .clone()
                    .unwrap_or_else(|| CANCELLED_BY_REQUEST.to_string()),
            ),
            None,
            None,
        ),
        Outcome::Rescued { error, requeue, .. } => (
            JobInput::Rescue { retry: requeue },
            if requeue {
                EventKind::Rescued
            } else {
                EventKind::Failed
            },
            Some(error),
            None,
            Some(now),
        ),
        Outcome::HandedBack => {
            // The attempt does not count: the job gets it back.
            next.attempt = attempt.saturating_sub(1);
            (
                JobInput::HandBack,
                EventKind::HandedBack,
                None,
                None,
                Some(now),
            )
        }
    };
    next.status = job.status.apply(input)?;
    let terminal = next.status.is_terminal();
    if let Some(error) = &error {
        next.error = Some(error.clone());
    }
    if output.is_some() {
        next.output = output;
    }
    if let Some(at) = run_at {
        next.run_at = to_stored_precision(at);
    }
    next.finished_at = terminal.then_some(now);
    next.lease_until = None;
    next.pid = None;
    // A finished job keeps the worker that ran it last; a queued one belongs to none.
    if !terminal {
        next.worker = None;
    }
    let mut event_data = json!({"attempt": attempt});
    if let Some(error) = error {
        event_data["error"] = json!(error);
    }
    if next.status == JobStatus::Scheduled {
        event_data["run_at"] = json!(next.run_at);
    }
    Ok(with_tree_effects(
        job,
        Transition {
            job: next,
            event,
            event_data,
            effects: Vec::new(),
        },
    ))
}

/// The first run of a job with children (or whose type joins) succeeded: it fails if a child
/// already failed the tree, waits for unfinished children, joins, or ends as its children did.
fn run_succeeded(
    job: &Job,
    mut next: Job,
    output: Option<Value>,
    now: Timestamp,
) -> Result<Transition, IllegalTransition> {
    if output.is_some() {
        next.output = output;
    }
    next.lease_until = None;
    next.pid = None;
    if job.tree.on_child_failure == ChildFailure::FailFast
        && let Some(failure) = &job.child_failure
    {
        next.status = job.status.apply(JobInput::Fail { retry: false })?;
        next.error = Some(failure.clone());
        return Ok(ended(job, next, EventKind::Failed, now));
    }
    if job.children.unfinished > 0 {
        next.status = job.status.apply(JobInput::Wait)?;
        // The first run is done: what comes next is the join (or the end).
        next.phase = Phase::Join;
        next.phase_attempt_base = next.attempt;
        next.worker = None;
        let data = json!({
            "attempt": job.attempt,
            "children": job.children.total,
            "unfinished": job.children.unfinished,
        });
        return Ok(Transition {
            job: next,
            event: EventKind::Waiting,
            event_data: data,
            effects: Vec::new(),
        });
    }
    children_done(job, next, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::NewJob;

    fn at(seconds: i64) -> Timestamp {
        micros_to_timestamp(1_700_000_000_000_000 + seconds * 1_000_000)
    }

    fn job(status: JobStatus) -> Job {
        NewJob {
            max_attempts: 3,
            status,
            ..NewJob::new("render", "gpu", json!({"text": "hi"}), at(0))
        }
        .inserted(JobId(7), at(0))
        .0
    }

    fn running() -> Job {
        let claim = JobCommand::Claim {
            worker: "w1".into(),
            lease_until: at(40),
        };
        decide(&job(JobStatus::Queued), claim, at(10))
            .unwrap()
            .unwrap()
            .job
    }

    fn finish_with(job: &Job, outcome: Outcome, now: i64) -> Transition {
        decide(job, JobCommand::Finish(outcome), at(now))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_claim_counts_an_attempt_and_a_run_and_takes_the_lease() {
        let claimed = running();
        assert_eq!(claimed.status, JobStatus::Running);
        assert_eq!((claimed.attempt, claimed.runs), (1, 1));
        assert_eq!(claimed.started_at, Some(at(10)));
        assert_eq!(claimed.lease_until, Some(at(40)));
        assert_eq!(claimed.worker.as_deref(), Some("w1"));
    }

    #[test]
    fn a_failure_with_attempts_left_is_scheduled_and_clears_the_lease() {
        let failed = finish_with(
            &running(),
            Outcome::Failed {
                error: "exit 3".into(),
                output: None,
                retry_at: Some(at(20)),
            },
            11,
        );
        assert_eq!(failed.job.status, JobStatus::Scheduled);
        assert_eq!(failed.job.run_at, at(20));
        assert_eq!((failed.job.lease_until, failed.job.worker), (None, None));
        assert_eq!(failed.job.finished_at, None);
        assert_eq!(failed.event, EventKind::RetryScheduled);
        assert_eq!(failed.event_data["error"], "exit 3");
        assert_eq!(failed.event_data["run_at"], json!(at(20)));
    }

    #[test]
    fn a_retry_time_is_cut_to_the_microsecond_as_stored() {
        let retry_at = at(20) + chrono::Duration::nanoseconds(1_234_567);
        let failed = finish_with(
            &running(),
            Outcome::Failed {
                error: "exit 3".into(),
                output: None,
                retry_at: Some(retry_at),
            },
            11,
        );
        assert_eq!(
            failed.job.run_at,
            at(20) + chrono::Duration::microseconds(1_234)
        );
        assert_eq!(failed.event_data["run_at"], json!(failed.job.run_at));
    }

    #[test]
    fn success_ends_the_job_and_keeps_its_worker() {
        let done = finish_with(
            &running(),
            Outcome::Succeeded {
                output: Some(json!({"ok": true})),
            },
            12,
        );
        assert_eq!(done.job.status, JobStatus::Succeeded);
        assert_eq!(done.job.finished_at, Some(at(12)));
        assert_eq!(done.job.worker.as_deref(), Some("w1"));
        assert_eq!(done.job.output, Some(json!({"ok": true})));
    }

    #[test]
    fn a_hand_back_returns_the_attempt_but_not_the_run() {
        let back = finish_with(&running(), Outcome::HandedBack, 12);
        assert_eq!(back.job.status, JobStatus::Queued);
        assert_eq!((back.job.attempt, back.job.runs), (0, 1));
        assert_eq!(back.event, EventKind::HandedBack);
    }

    #[test]
    fn a_requested_cancel_turns_a_retry_into_a_failure_and_a_lost_attempt_into_a_cancel() {
        let asked = decide(&running(), JobCommand::Cancel, at(11))
            .unwrap()
            .unwrap();
        assert_eq!(asked.job.status, JobStatus::Running);
        assert!(asked.job.cancel_requested);
        assert_eq!(asked.event, EventKind::CancelRequested);
        assert_eq!(
            decide(&asked.job, JobCommand::Cancel, at(12)).unwrap(),
            None,
            "asking twice changes nothing"
        );
        let failed = finish_with(
            &asked.job,
            Outcome::Failed {
                error: "exit 1".into(),
                output: None,
                retry_at: Some(at(30)),
            },
            13,
        );
        assert_eq!(failed.job.status, JobStatus::Failed);
        let lost = finish_with(
            &asked.job,
            Outcome::Rescued {
                error: "lost".into(),
                requeue: true,
                expired_only: false,
            },
            13,
        );
        assert_eq!(lost.job.status, JobStatus::Cancelled);
        assert_eq!(lost.job.error.as_deref(), Some(CANCELLED_BY_REQUEST));
    }

    #[test]
    fn a_rescue_of_an_expired_lease_yields_to_a_renewal() {
        let rescue = |now| {
            decide(
                &running(),
                JobCommand::Finish(Outcome::Rescued {
                    error: "lost".into(),
                    requeue: true,
                    expired_only: true,
                }),
                at(now),
            )
            .unwrap()
        };
        assert_eq!(rescue(39), None, "the lease still holds");
        let rescued = rescue(41).unwrap();
        assert_eq!(rescued.job.status, JobStatus::Queued);
        assert_eq!(rescued.job.run_at, at(41));
        assert_eq!(rescued.job.attempt, 1, "the lost attempt counts");
    }

    #[test]
    fn cancelling_a_queued_job_ends_it_and_a_finished_one_is_refused() {
        let cancelled = decide(&job(JobStatus::Queued), JobCommand::Cancel, at(5))
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.job.status, JobStatus::Cancelled);
        assert_eq!(cancelled.job.finished_at, Some(at(5)));
        assert!(decide(&cancelled.job, JobCommand::Cancel, at(6)).is_err());
    }

    /// A running parent whose type joins (or not) and fails fast (or waits for all), with
    /// `children` spawned and unfinished.
    fn parent(join: bool, on_child_failure: ChildFailure, children: u32) -> Job {
        let mut parent = running();
        parent.tree = crate::job::TreePolicy {
            join,
            on_child_failure,
        };
        parent.children.total = children;
        parent.children.unfinished = children;
        parent
    }

    fn child_end(id: i64, status: JobStatus) -> ChildEnd {
        ChildEnd {
            id: JobId(id),
            job_type: "tts".into(),
            status,
            error: (status != JobStatus::Succeeded).then(|| "exit status 1".to_string()),
        }
    }

    fn tell(parent: &Job, id: i64, status: JobStatus, now: i64) -> Transition {
        decide(
            parent,
            JobCommand::ChildEnded(child_end(id, status)),
            at(now),
        )
        .unwrap()
        .unwrap()
    }

    fn succeed(job: &Job, now: i64) -> Transition {
        finish_with(job, Outcome::Succeeded { output: None }, now)
    }

    #[test]
    fn a_first_run_that_succeeds_with_unfinished_children_waits() {
        let waiting = succeed(&parent(true, ChildFailure::FailFast, 2), 12);
        assert_eq!(waiting.job.status, JobStatus::Waiting);
        assert_eq!(waiting.event, EventKind::Waiting);
        assert_eq!((waiting.job.worker, waiting.job.lease_until), (None, None));
        assert_eq!(waiting.job.finished_at, None);
        assert_eq!(waiting.job.phase, Phase::Join, "the first run is done");
        assert!(waiting.effects.is_empty());
    }

    #[test]
    fn the_last_child_queues_the_join_with_attempts_of_its_own() {
        let waiting = succeed(&parent(true, ChildFailure::FailFast, 2), 12).job;
        let one = tell(&waiting, 8, JobStatus::Succeeded, 13);
        assert_eq!(one.job.status, JobStatus::Waiting);
        assert_eq!(one.event, EventKind::ChildEnded);
        assert_eq!(
            (one.job.children.unfinished, one.job.children.succeeded),
            (1, 1)
        );
        let joining = tell(&one.job, 9, JobStatus::Succeeded, 14);
        assert_eq!(joining.job.status, JobStatus::Queued);
        assert_eq!(joining.event, EventKind::JoinQueued);
        assert_eq!(joining.job.phase, Phase::Join);
        assert_eq!(joining.job.run_at, at(14));
        assert_eq!(joining.job.phase_attempt_base, 1);
        assert!(joining.job.attempts_left(), "the join has its own attempts");
        let join = decide(
            &joining.job,
            JobCommand::Claim {
                worker: "w1".into(),
                lease_until: at(60),
            },
            at(15),
        )
        .unwrap()
        .unwrap()
        .job;
        assert_eq!((join.attempt, join.phase_attempt()), (2, 1));
        let done = succeed(&join, 16);
        assert_eq!(done.job.status, JobStatus::Succeeded, "a join ends the job");
    }

    #[test]
    fn a_first_run_that_ends_after_its_children_joins_at_once() {
        let mut parent = parent(true, ChildFailure::FailFast, 1);
        parent = tell(&parent, 8, JobStatus::Succeeded, 11).job;
        assert_eq!(parent.status, JobStatus::Running, "the command still runs");
        let joining = succeed(&parent, 12);
        assert_eq!(joining.job.status, JobStatus::Queued);
        assert_eq!(joining.job.phase, Phase::Join);
    }

    #[test]
    fn without_a_join_the_parent_ends_as_its_children_did() {
        let waiting = succeed(&parent(false, ChildFailure::WaitAll, 2), 12).job;
        let all_good = tell(
            &tell(&waiting, 8, JobStatus::Succeeded, 13).job,
            9,
            JobStatus::Succeeded,
            14,
        );
        assert_eq!(all_good.job.status, JobStatus::Succeeded);
        assert_eq!(all_good.job.finished_at, Some(at(14)));
        let one_bad = tell(
            &tell(&waiting, 8, JobStatus::Failed, 13).job,
            9,
            JobStatus::Succeeded,
            14,
        );
        assert_eq!(one_bad.job.status, JobStatus::Failed);
        let error = one_bad.job.error.unwrap();
        assert!(
            error.starts_with("1 of 2 children did not succeed"),
            "{error}"
        );
        assert!(
            error.contains("child job 8 (tts) failed: exit status 1"),
            "{error}"
        );
    }

    #[test]
    fn wait_all_lets_the_join_see_failed_children() {
        let waiting = succeed(&parent(true, ChildFailure::WaitAll, 2), 12).job;
        let one_bad = tell(&waiting, 8, JobStatus::Failed, 13);
        assert_eq!(one_bad.job.status, JobStatus::Waiting);
        assert!(one_bad.effects.is_empty(), "siblings go on");
        let joining = tell(&one_bad.job, 9, JobStatus::Succeeded, 14);
        assert_eq!(joining.job.status, JobStatus::Queued);
        assert_eq!(joining.job.children.failed, 1);
    }

    #[test]
    fn fail_fast_fails_a_waiting_parent_and_cancels_the_siblings() {
        let mut waiting = succeed(&parent(true, ChildFailure::FailFast, 3), 12).job;
        waiting.parent = Some(JobId(2));
        let failed = tell(&waiting, 8, JobStatus::Failed, 13);
        assert_eq!(failed.job.status, JobStatus::Failed);
        assert_eq!(
            failed.job.error.as_deref(),
            Some("child job 8 (tts) failed: exit status 1")
        );
        assert_eq!(failed.job.finished_at, Some(at(13)));
        assert!(matches!(
            &failed.effects[0],
            Effect::CancelChildren { parent, reason } if *parent == JobId(7) && reason.contains("child job 8")
        ));
        assert!(matches!(
            &failed.effects[1],
            Effect::ChildEnded { parent, child } if *parent == JobId(2) && child.status == JobStatus::Failed
        ));
    }

    #[test]
    fn fail_fast_under_a_running_parent_cancels_siblings_now_and_fails_the_parent_at_its_end() {
        let running = parent(true, ChildFailure::FailFast, 2);
        let told = tell(&running, 8, JobStatus::Cancelled, 13);
        assert_eq!(told.job.status, JobStatus::Running);
        assert!(matches!(&told.effects[..], [Effect::CancelChildren { .. }]));
        assert_eq!(
            adopt(&told.job, 1, 100).unwrap_err().0,
            "job 7 is failing (child job 8 (tts) was cancelled: exit status 1); it spawns no more children"
        );
        let ended = succeed(&told.job, 14);
        assert_eq!(ended.job.status, JobStatus::Failed);
        assert!(ended.job.error.unwrap().contains("child job 8"));
    }

    #[test]
    fn a_parent_whose_cancel_was_requested_ends_cancelled_even_if_its_command_succeeded() {
        let running = parent(true, ChildFailure::FailFast, 2);
        let asked = decide(&running, JobCommand::Cancel, at(13))
            .unwrap()
            .unwrap()
            .job;
        let ended = succeed(&asked, 14);
        assert_eq!(ended.job.status, JobStatus::Cancelled);
        assert_eq!(ended.job.error.as_deref(), Some(CANCELLED_BY_REQUEST));
    }

    #[test]
    fn under_fail_fast_a_failed_child_stops_the_first_run_from_being_tried_again() {
        let running = parent(false, ChildFailure::FailFast, 2);
        let told = tell(&running, 8, JobStatus::Failed, 13).job;
        let failed = finish_with(
            &told,
            Outcome::Failed {
                error: "exit 1".into(),
                output: None,
                retry_at: Some(at(30)),
            },
            14,
        );
        assert_eq!(failed.job.status, JobStatus::Failed);
        assert_eq!(
            failed.job.error.as_deref(),
            Some("child job 8 (tts) failed: exit status 1")
        );
        let lost = finish_with(
            &told,
            Outcome::Rescued {
                error: "lost".into(),
                requeue: true,
                expired_only: false,
            },
            14,
        );
        assert_eq!(lost.job.status, JobStatus::Failed);
    }

    #[test]
    fn cancelling_a_parent_cancels_its_children_whether_it_runs_or_waits() {
        let running = parent(true, ChildFailure::FailFast, 2);
        let asked = decide(&running, JobCommand::Cancel, at(13))
            .unwrap()
            .unwrap();
        assert_eq!(asked.job.status, JobStatus::Running);
        assert!(
            matches!(&asked.effects[..], [Effect::CancelChildren { parent, .. }] if *parent == JobId(7))
        );
        let waiting = succeed(&running, 12).job;
        let cancelled = decide(&waiting, JobCommand::Cancel, at(13))
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.job.status, JobStatus::Cancelled);
        assert!(
            matches!(&cancelled.effects[..], [Effect::CancelChildren { reason, .. }] if reason.contains("was cancelled"))
        );
    }

    #[test]
    fn a_child_cancelled_with_its_tree_keeps_the_reason_through_its_end() {
        let child = running();
        let reason = "cancelled because its parent job 2 was cancelled".to_string();
        let asked = decide(
            &child,
            JobCommand::CancelInTree {
                reason: reason.clone(),
            },
            at(11),
        )
        .unwrap()
        .unwrap();
        let ended = finish_with(
            &asked.job,
            Outcome::Cancelled {
                error: CANCELLED_BY_REQUEST.into(),
            },
            12,
        );
        assert_eq!(ended.job.error, Some(reason));
    }

    #[test]
    fn news_of_a_child_changes_nothing_on_a_finished_parent() {
        let cancelled = decide(&job(JobStatus::Queued), JobCommand::Cancel, at(5))
            .unwrap()
            .unwrap()
            .job;
        assert_eq!(
            decide(
                &cancelled,
                JobCommand::ChildEnded(child_end(8, JobStatus::Cancelled)),
                at(6)
            ),
            Ok(None)
        );
    }

    #[test]
    fn a_spawn_counts_children_and_is_refused_when_the_parent_cannot_take_them() {
        let running = parent(false, ChildFailure::FailFast, 0);
        let adopted = adopt(&running, 3, 5).unwrap();
        assert_eq!(adopted.job.children.total, 3);
        assert_eq!(adopted.job.children.unfinished, 3);
        assert_eq!(adopted.event, EventKind::Spawned);
        assert!(
            adopt(&adopted.job, 3, 5)
                .unwrap_err()
                .0
                .contains("would have 6 children; at most 5")
        );
        assert!(
            adopt(&job(JobStatus::Queued), 1, 5)
                .unwrap_err()
                .0
                .contains("only a running job")
        );
        let mut joining = running.clone();
        joining.phase = Phase::Join;
        assert!(adopt(&joining, 1, 5).unwrap_err().0.contains("join"));
    }
}
