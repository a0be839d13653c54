//! Every change of a job's status, decided in one place. [`decide`] takes the job as stored, a
//! command and the time, and returns the job as it must be stored afterwards and the event to
//! record; a store only persists that, guarded by the status (and, for a runner's writes, the
//! attempt and worker) the job had when it was read. No backend holds policy of its own: what a
//! claim counts, when a failure retries, what a cancel request does to a failing attempt, all
//! of it is here, and the PostgreSQL backend reuses it as it is.

use serde_json::{Value, json};

use crate::clock::{Timestamp, micros_to_timestamp};
use crate::event::EventKind;
use crate::job::{IllegalTransition, Job, JobInput, JobStatus};
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
    /// to stop, and its runner reports how it ended.
    Cancel,
    /// The running attempt ended (or was lost, or handed back).
    Finish(Outcome),
}

/// The decision: the job as it must be stored, and the event that records the change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The job after the change. Its `input` never changes.
    pub job: Job,
    pub event: EventKind,
    /// The event's details: the attempt, and the error or the new `run_at` where they apply.
    pub event_data: Value,
}

/// The message of a job cancelled while it was not running, or whose lost attempt ends it.
pub const CANCELLED_BY_REQUEST: &str = "cancelled by request";

/// Decides what `command` does to `job` at `now`. `Ok(None)` means nothing is to change: a
/// cancel request already made, or a rescue whose lease was renewed meanwhile.
pub fn decide(
    job: &Job,
    command: JobCommand,
    now: Timestamp,
) -> Result<Option<Transition>, IllegalTransition> {
    let mut next = job.clone();
    let attempt = job.attempt;
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
            let data = json!({"attempt": next.attempt, "run": next.runs, "worker": worker});
            next.worker = Some(worker);
            (EventKind::Started, data)
        }
        JobCommand::Promote => {
            next.status = job.status.apply(JobInput::Promote)?;
            (EventKind::Promoted, json!({}))
        }
        JobCommand::Cancel if job.status == JobStatus::Running => {
            job.status.apply(JobInput::RequestCancel)?;
            if job.cancel_requested {
                return Ok(None);
            }
            next.cancel_requested = true;
            (EventKind::CancelRequested, json!({"attempt": attempt}))
        }
        JobCommand::Cancel => {
            next.status = job.status.apply(JobInput::Cancel)?;
            next.finished_at = Some(now);
            next.error = Some(CANCELLED_BY_REQUEST.into());
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
    };
    Ok(Some(Transition {
        job: next,
        event,
        event_data,
    }))
}

/// Instants are stored to the microsecond: a decided one is cut there too, so the job a store
/// returns and publishes is the job it stored (a backoff delay is not whole microseconds).
fn to_stored_precision(at: Timestamp) -> Timestamp {
    micros_to_timestamp(at.timestamp_micros())
}

/// The end of a running attempt. A job whose cancel was requested never goes back to a queue:
/// a retry becomes a final failure, a lost or handed-back attempt a cancel.
fn finish(
    job: &Job,
    mut next: Job,
    outcome: Outcome,
    now: Timestamp,
) -> Result<Transition, IllegalTransition> {
    let attempt = job.attempt;
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
            Some(error),
            None,
            None,
        ),
        Outcome::Rescued { .. } | Outcome::HandedBack if job.cancel_requested => (
            JobInput::Cancel,
            EventKind::Cancelled,
            Some(CANCELLED_BY_REQUEST.to_string()),
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
    Ok(Transition {
        job: next,
        event,
        event_data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobId, NewJob};

    fn at(seconds: i64) -> Timestamp {
        micros_to_timestamp(1_700_000_000_000_000 + seconds * 1_000_000)
    }

    fn job(status: JobStatus) -> Job {
        NewJob {
            job_type: "render".into(),
            queue: "gpu".into(),
            priority: 0,
            input: json!({"text": "hi"}),
            max_attempts: 3,
            status,
            run_at: at(0),
            parent: None,
            retry_of: None,
        }
        .inserted(JobId(7), at(0))
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
}
