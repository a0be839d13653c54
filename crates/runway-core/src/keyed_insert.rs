//! What a keyed insert does (`Store::job_insert_keyed`), the same in every store: each key is
//! looked up first, so a conflict leaves nothing half-inserted; a key recorded with the same
//! request answers with its job, also twice within one batch; a key of another request stops
//! the whole batch. A store offers the lookup and the insert; this module decides.

use std::collections::HashMap;

use crate::job::{Job, NewJob};
use crate::store::{IdempotencyKey, Inserted, Insertion};

/// Where a keyed job's answer comes from instead of a new row.
enum Reuse {
    /// The job an earlier request with the same key made.
    Stored(Box<Job>),
    /// The job made for the same key earlier in this batch (its index).
    InBatch(usize),
}

/// Inserts `jobs` in order through `insert` (given each job to insert and its key, to record
/// with the new row), after looking every key up through `recorded` (the hash and the job of a
/// key recorded since its `since`, whose job still exists).
pub fn insert_keyed<E>(
    jobs: Vec<(NewJob, Option<IdempotencyKey>)>,
    mut recorded: impl FnMut(&IdempotencyKey) -> Result<Option<(Vec<u8>, Job)>, E>,
    mut insert: impl FnMut(NewJob, Option<&IdempotencyKey>) -> Result<Job, E>,
) -> Result<Insertion, E> {
    let mut reuse: Vec<Option<Reuse>> = Vec::with_capacity(jobs.len());
    {
        let mut in_batch: HashMap<(&str, &str), (usize, &[u8])> = HashMap::new();
        for (index, (_, key)) in jobs.iter().enumerate() {
            let Some(key) = key else {
                reuse.push(None);
                continue;
            };
            let scoped = (key.scope.as_str(), key.key.as_str());
            if let Some((first, hash)) = in_batch.get(&scoped) {
                if *hash != key.request_hash.as_slice() {
                    return Ok(Insertion::KeyConflict {
                        index,
                        existing: None,
                    });
                }
                reuse.push(Some(Reuse::InBatch(*first)));
                continue;
            }
            in_batch.insert(scoped, (index, &key.request_hash));
            match recorded(key)? {
                Some((hash, job)) if hash == key.request_hash => {
                    reuse.push(Some(Reuse::Stored(Box::new(job))));
                }
                Some((_, job)) => {
                    return Ok(Insertion::KeyConflict {
                        index,
                        existing: Some(job.id),
                    });
                }
                None => reuse.push(None),
            }
        }
    }
    let mut inserted: Vec<Inserted> = Vec::with_capacity(jobs.len());
    for ((job, key), reuse) in jobs.into_iter().zip(reuse) {
        let answer = match reuse {
            Some(Reuse::Stored(job)) => Inserted {
                job: *job,
                created: false,
            },
            Some(Reuse::InBatch(first)) => Inserted {
                job: inserted[first].job.clone(),
                created: false,
            },
            None => Inserted {
                job: insert(job, key.as_ref())?,
                created: true,
            },
        };
        inserted.push(answer);
    }
    Ok(Insertion::Done(inserted))
}
