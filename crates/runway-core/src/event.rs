//! Events: every committed change of a job, numbered by one global, increasing `seq`. They
//! give each job a timeline and (later) let live clients resume exactly where they left off.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::job::{JobId, JobStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Submitted,
    Promoted,
    Started,
    Progress,
    Succeeded,
    Failed,
    RetryScheduled,
    CancelRequested,
    Cancelled,
    Rescued,
    HandedBack,
    /// Children were spawned under the running job.
    Spawned,
    /// The job's command succeeded; it waits for its children.
    Waiting,
    /// One of the job's children finished for good.
    ChildEnded,
    /// The job's children have all finished: its command is queued to run as the join.
    JoinQueued,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Submitted => "submitted",
            EventKind::Promoted => "promoted",
            EventKind::Started => "started",
            EventKind::Progress => "progress",
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::RetryScheduled => "retry_scheduled",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::Cancelled => "cancelled",
            EventKind::Rescued => "rescued",
            EventKind::HandedBack => "handed_back",
            EventKind::Spawned => "spawned",
            EventKind::Waiting => "waiting",
            EventKind::ChildEnded => "child_ended",
            EventKind::JoinQueued => "join_queued",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        [
            EventKind::Submitted,
            EventKind::Promoted,
            EventKind::Started,
            EventKind::Progress,
            EventKind::Succeeded,
            EventKind::Failed,
            EventKind::RetryScheduled,
            EventKind::CancelRequested,
            EventKind::Cancelled,
            EventKind::Rescued,
            EventKind::HandedBack,
            EventKind::Spawned,
            EventKind::Waiting,
            EventKind::ChildEnded,
            EventKind::JoinQueued,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// One committed change of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub job_id: JobId,
    pub at: Timestamp,
    pub kind: EventKind,
    /// The job's status after the change.
    pub status: JobStatus,
    /// Details of the change: attempt, error, progress.
    pub data: Value,
}
