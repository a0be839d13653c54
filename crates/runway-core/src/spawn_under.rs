//! What a spawn under a running attempt does (`Store::job_spawn`), the same in every store:
//! the attempt must still hold its job; a child whose key a sibling already holds is that
//! sibling (same type and input) or a conflict that inserts nothing; the parent adopts the new
//! children (`transition::adopt`, persisted with its effects through `TreeTx`) before they are
//! inserted under it. A store offers the parent as read in its transaction, and [`SpawnTx`]:
//! the sibling lookup and the insert.

use crate::clock::Timestamp;
use crate::job::{Job, JobId, JobStatus, NewJob};
use crate::store::{AttemptRef, Inserted, Spawn};
use crate::transition::adopt;
use crate::tree::{self, TreeTx};

/// What a child of a spawn is: the sibling that holds its key already, or a job to insert.
enum Planned {
    Existing(Box<Job>),
    New(Box<NewJob>),
}

/// What a spawn needs of a store's transaction besides the tree's primitives.
pub trait SpawnTx: TreeTx {
    /// The child of `parent` holding `key`.
    fn sibling(&mut self, parent: JobId, key: &str) -> Result<Option<Job>, Self::Error>;

    /// Inserts a child already placed under its parent, with its event.
    fn insert(&mut self, child: NewJob, now: Timestamp) -> Result<Job, Self::Error>;
}

/// Spawns `children` under `parent` (the job of `attempt` as read, and locked where the store
/// locks, in the caller's transaction).
pub fn spawn_under<T: SpawnTx>(
    tx: &mut T,
    parent: Option<Job>,
    attempt: &AttemptRef,
    children: Vec<NewJob>,
    max_children: u32,
    now: Timestamp,
) -> Result<Spawn, T::Error> {
    let Some(parent) = parent else {
        return Ok(Spawn::Refused(format!("job {} does not exist", attempt.id)));
    };
    let holds = parent.status == JobStatus::Running
        && parent.attempt == attempt.attempt
        && parent.worker.as_deref() == Some(attempt.worker.as_str());
    if !holds {
        return Ok(Spawn::Refused(format!(
            "attempt {} of job {} has ended; only a running attempt spawns children",
            attempt.attempt, attempt.id
        )));
    }
    let mut planned = Vec::with_capacity(children.len());
    for (index, child) in children.into_iter().enumerate() {
        let holder = match &child.key {
            Some(key) => tx.sibling(parent.id, key)?,
            None => None,
        };
        planned.push(match holder {
            Some(holder) if holder.job_type == child.job_type && holder.input == child.input => {
                Planned::Existing(Box::new(holder))
            }
            Some(holder) => {
                return Ok(Spawn::KeyConflict {
                    index,
                    existing: holder.id,
                });
            }
            None => Planned::New(Box::new(child)),
        });
    }
    let new = planned
        .iter()
        .filter(|child| matches!(child, Planned::New(_)))
        .count() as u32;
    let parent = if new == 0 {
        parent
    } else {
        let adoption = match adopt(&parent, new, max_children) {
            Ok(adoption) => adoption,
            Err(refused) => return Ok(Spawn::Refused(refused.0)),
        };
        match tree::persist(tx, &parent, adoption, now)? {
            Some(parent) => parent,
            None => {
                return Ok(Spawn::Refused(format!(
                    "job {} changed while its children were spawned; spawn them again",
                    attempt.id
                )));
            }
        }
    };
    let mut answers = Vec::with_capacity(planned.len());
    for child in planned {
        answers.push(match child {
            Planned::Existing(job) => Inserted {
                job: *job,
                created: false,
            },
            Planned::New(mut child) => {
                child.place_under(&parent);
                Inserted {
                    job: tx.insert(*child, now)?,
                    created: true,
                }
            }
        });
    }
    Ok(Spawn::Done(answers))
}
