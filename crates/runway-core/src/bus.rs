//! The in-process bus: every committed change is published here after its commit, in `seq`
//! order, for the live feeds and sessions. Publishing never blocks: a subscriber that falls
//! behind the bus's capacity is told how far it lagged and catches up from the stored events.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::clock::Timestamp;
use crate::event::EventKind;
use crate::job::{Job, JobId};

/// Changes kept for subscribers that are briefly slow; past this they resume from the store.
pub const BUS_CAPACITY: usize = 16 * 1024;

/// A committed change of a job: its event and the job as it was right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobChange {
    pub seq: i64,
    pub kind: EventKind,
    pub at: Timestamp,
    pub job: Arc<Job>,
}

/// Log text appended to a running job, at its byte offset in the whole log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAppend {
    pub job_id: JobId,
    pub offset: u64,
    pub data: Arc<str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Job(JobChange),
    Log(LogAppend),
}

/// Cheap to clone; every clone publishes to the same subscribers.
#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<Change>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(BUS_CAPACITY)
    }
}

impl Bus {
    pub fn new(capacity: usize) -> Bus {
        let (sender, _) = broadcast::channel(capacity);
        Bus { sender }
    }

    /// Publishes committed changes in order; nobody listening is fine.
    pub fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        for change in changes {
            let _ = self.sender.send(change);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}
