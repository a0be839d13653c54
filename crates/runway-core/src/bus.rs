//! The in-process bus: every committed change is published here after its commit, in `seq`
//! order, for the live feeds and sessions. Publishing never blocks: a subscriber that falls
//! behind the bus's capacity is told how far it lagged and catches up from the stored events.

use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::clock::Timestamp;
use crate::event::EventKind;
use crate::job::{Job, JobId, JobStatus};
use crate::log_text::LogMark;

/// Bursts kept for subscribers that are briefly slow; past this they resume from the store.
pub const BUS_CAPACITY: usize = 4 * 1024;

/// Most changes folded into one burst.
const MAX_BURST: usize = 4096;

/// A committed change of a job: its event and the job as it was right after it.
#[derive(Debug, Clone)]
pub struct JobChange {
    pub seq: i64,
    pub kind: EventKind,
    pub at: Timestamp,
    pub job: Arc<Job>,
    /// The job's status before the change: `None` for a new job, and for a change read back
    /// from the store (which keeps only the status after it). A list filtered by status hears
    /// of a job that leaves it by this.
    pub previous: Option<JobStatus>,
    /// The change as the serving layer encodes it for clients, made once and shared by every
    /// frame that carries it (thousands of clients must not serialize the same change each).
    pub encoded: Arc<OnceLock<Arc<str>>>,
}

impl JobChange {
    pub fn new(seq: i64, kind: EventKind, at: Timestamp, job: Arc<Job>) -> JobChange {
        JobChange {
            seq,
            kind,
            at,
            job,
            previous: None,
            encoded: Arc::default(),
        }
    }

    /// The same change, knowing the status the job had before it.
    pub fn after(mut self, previous: JobStatus) -> JobChange {
        self.previous = Some(previous);
        self
    }
}

impl PartialEq for JobChange {
    fn eq(&self, other: &Self) -> bool {
        (self.seq, self.kind, self.at, &self.job) == (other.seq, other.kind, other.at, &other.job)
    }
}

/// Log text appended to a running job, at its byte offset in the whole log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAppend {
    pub job_id: JobId,
    pub offset: u64,
    pub data: Arc<str>,
    /// Where each part of `data` came from; the first is at `offset`.
    pub marks: Arc<[LogMark]>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Job(JobChange),
    Log(LogAppend),
}

/// The changes of one or more commits, in order: the unit the bus carries, so thousands of
/// subscribers are woken once per burst, not once per change.
pub type Changes = Arc<[Change]>;

/// Cheap to clone; every clone publishes to the same subscribers.
///
/// `publish` only hands the changes to a forwarding thread, which broadcasts them; the store's
/// writer is never slowed by how many clients listen. The forwarder folds whatever has queued
/// up into one broadcast.
#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<Changes>,
    forward: std::sync::mpsc::Sender<Vec<Change>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(BUS_CAPACITY)
    }
}

impl Bus {
    /// `capacity` is in bursts kept for slow subscribers.
    pub fn new(capacity: usize) -> Bus {
        let (sender, _) = broadcast::channel(capacity);
        let (forward, queued) = std::sync::mpsc::channel::<Vec<Change>>();
        let broadcast = sender.clone();
        std::thread::Builder::new()
            .name("runway-bus".into())
            .spawn(move || {
                while let Ok(mut burst) = queued.recv() {
                    // A bound on a burst keeps what one slow subscriber pins bounded too.
                    while burst.len() < MAX_BURST
                        && let Ok(more) = queued.try_recv()
                    {
                        burst.extend(more);
                    }
                    let _ = broadcast.send(Changes::from(burst));
                }
            })
            .expect("the OS can start the bus thread");
        Bus { sender, forward }
    }

    /// Publishes committed changes in order; nobody listening is fine.
    pub fn publish(&self, changes: Vec<Change>) {
        if !changes.is_empty() {
            let _ = self.forward.send(changes);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Changes> {
        self.sender.subscribe()
    }
}
