//! Group commit of a queue's outcomes. The slots of a busy queue end their attempts at about
//! the same time; each hands its outcome in, and whichever finds no write in flight stores
//! every outcome waiting, with the claim of the next jobs for those slots, in one write. A
//! slot alone pays one write as before; eight slots ending together pay one write, not eight
//! (on PostgreSQL, one take of the queue's lock and one stamp of the event clock). When many
//! outcomes wait behind a write in flight, a second write takes them beside it.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::job::Job;
use crate::store::JobFinishParams;

/// What a slot learns of its outcome's write.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// The job as its outcome left it; `None` when the attempt no longer held it, or the
    /// write failed (the lease then runs out and the job is rescued).
    pub(crate) ended: Option<Job>,
    /// The job claimed for the slot next.
    pub(crate) next: Option<Job>,
}

struct Waiting {
    finished: JobFinishParams,
    reply: oneshot::Sender<Stored>,
}

/// How many outcomes must be waiting for a second write to start while one is in flight. A
/// queue of many slots then keeps its store busy on both: on PostgreSQL one write locks and
/// finishes its jobs while the other claims (at 512 slots, 12 % more no-op jobs a second).
/// Fewer waiting outcomes wait for the write in flight, so small batches are not split in two
/// (two writes in flight at every size cost a queue of 8 slots a third of its rate).
const SECOND_WRITE_AT: usize = 64;

#[derive(Default)]
pub(crate) struct OutcomeBatch {
    waiting: Mutex<Vec<Waiting>>,
    /// Held by the slot that writes a batch; the others wait on it in turn and find their
    /// answer ready, or write the outcomes that came in meanwhile.
    writing: tokio::sync::Mutex<()>,
    /// Held by the slot that writes a second batch beside the first, when many wait.
    writing_beside: tokio::sync::Mutex<()>,
}

impl OutcomeBatch {
    /// Stores `finished` with whatever other outcomes wait: `write` gets every waiting outcome
    /// and answers one `Stored` for each, in order.
    pub(crate) async fn store<W, F>(&self, finished: JobFinishParams, write: W) -> Stored
    where
        W: FnOnce(Vec<JobFinishParams>) -> F,
        F: Future<Output = Vec<Stored>>,
    {
        let (reply, mut answer) = oneshot::channel();
        let waiting = {
            let mut waiting = self.lock_waiting();
            waiting.push(Waiting { finished, reply });
            waiting.len()
        };
        let writing = tokio::select! {
            biased;
            writing = self.writing.lock() => writing,
            writing = self.writing_beside.lock(), if waiting >= SECOND_WRITE_AT => writing,
        };
        match answer.try_recv() {
            Ok(stored) => return stored,
            // The writer of an earlier batch that held this outcome stopped without an answer.
            Err(oneshot::error::TryRecvError::Closed) => return Stored::default(),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let batch = std::mem::take(&mut *self.lock_waiting());
        if batch.is_empty() {
            // The write beside this one took this slot's outcome.
            drop(writing);
            return answer.await.unwrap_or_default();
        }
        let (finishes, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|waiting| (waiting.finished, waiting.reply))
            .unzip();
        let count = finishes.len();
        let mut stored = write(finishes).await;
        stored.resize_with(count, Stored::default);
        for (reply, stored) in replies.into_iter().zip(stored) {
            // A slot that is gone no longer needs its answer.
            let _ = reply.send(stored);
        }
        drop(writing);
        answer.await.unwrap_or_default()
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting
            .lock()
            .expect("the waiting outcomes' lock is never poisoned")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::store::{AttemptRef, Outcome};

    fn finish(id: i64) -> JobFinishParams {
        JobFinishParams {
            attempt: AttemptRef {
                id: crate::job::JobId(id),
                attempt: 1,
                worker: "w".into(),
            },
            outcome: Outcome::Succeeded { output: None },
            now: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        }
    }

    fn job(id: i64) -> Job {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        crate::job::NewJob::new("a", "q", serde_json::json!({}), now)
            .inserted(crate::job::JobId(id), now)
            .0
    }

    /// The ids of each write a test's store made.
    type Writes = Arc<Mutex<Vec<Vec<i64>>>>;

    /// A slot handing in job `id`'s outcome. A write it makes records its ids in `writes`,
    /// waits until `released`, then answers each job as ended and job `id + 1000` as claimed.
    fn slot(
        batch: &Arc<OutcomeBatch>,
        writes: &Writes,
        released: &tokio::sync::watch::Receiver<bool>,
        id: i64,
    ) -> tokio::task::JoinHandle<Stored> {
        let (batch, writes, mut released) =
            (Arc::clone(batch), Arc::clone(writes), released.clone());
        tokio::spawn(async move {
            batch
                .store(
                    finish(id),
                    move |finishes: Vec<JobFinishParams>| async move {
                        let ids: Vec<i64> = finishes.iter().map(|f| f.attempt.id.0).collect();
                        writes.lock().unwrap().push(ids.clone());
                        released.wait_for(|released| *released).await.unwrap();
                        ids.iter()
                            .map(|id| Stored {
                                ended: Some(job(*id)),
                                next: Some(job(id + 1000)),
                            })
                            .collect()
                    },
                )
                .await
        })
    }

    /// Outcomes handed in while a write is in flight are stored together in the next write,
    /// and each slot gets its own answer.
    #[tokio::test]
    async fn outcomes_arriving_during_a_write_share_the_next() {
        let batch = Arc::new(OutcomeBatch::default());
        let writes = Arc::new(Mutex::new(Vec::<Vec<i64>>::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        let first = slot(&batch, &writes, &released, 1);
        // The first write is in flight before the others come in.
        while writes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let others: Vec<_> = (2..=4)
            .map(|id| slot(&batch, &writes, &released, id))
            .collect();
        while batch.lock_waiting().len() < 3 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        let first = first.await.unwrap();
        assert_eq!(first.ended.unwrap().id.0, 1);
        assert_eq!(first.next.unwrap().id.0, 1001);
        for (id, other) in (2..=4).zip(others) {
            let stored = other.await.unwrap();
            assert_eq!(stored.ended.unwrap().id.0, id);
            assert_eq!(stored.next.unwrap().id.0, id + 1000);
        }
        let mut later = writes.lock().unwrap()[1].clone();
        later.sort();
        assert_eq!(*writes.lock().unwrap(), vec![vec![1], later.clone()]);
        assert_eq!(
            later,
            vec![2, 3, 4],
            "the three waiting outcomes shared one write"
        );
    }

    /// A second write starts beside the one in flight once `SECOND_WRITE_AT` outcomes wait, not
    /// before, and every slot still gets its own answer.
    #[tokio::test]
    async fn many_waiting_outcomes_start_a_second_write_beside_the_first() {
        let batch = Arc::new(OutcomeBatch::default());
        let writes = Arc::new(Mutex::new(Vec::<Vec<i64>>::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        let slot = |id: i64| slot(&batch, &writes, &released, id);
        let mut slots = vec![slot(1)];
        while writes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let first_waiting = 2..(2 + SECOND_WRITE_AT as i64 - 1);
        slots.extend(first_waiting.clone().map(slot));
        while batch.lock_waiting().len() < SECOND_WRITE_AT - 1 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            writes.lock().unwrap().len(),
            1,
            "fewer waiting outcomes wait for the write in flight"
        );
        let last = first_waiting.end;
        slots.push(slot(last));
        for _ in 0..10_000 {
            if writes.lock().unwrap().len() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            writes.lock().unwrap().len(),
            2,
            "a second write starts while the first is in flight"
        );
        let mut beside = writes.lock().unwrap()[1].clone();
        beside.sort();
        assert_eq!(beside, (2..=last).collect::<Vec<_>>());
        release.send(true).unwrap();
        for (id, slot) in (1..=last).zip(slots) {
            let stored = slot.await.unwrap();
            assert_eq!(stored.ended.unwrap().id.0, id);
            assert_eq!(stored.next.unwrap().id.0, id + 1000);
        }
        assert_eq!(writes.lock().unwrap().len(), 2, "no write was made empty");
    }

    /// A writer that dies mid-write leaves the slots whose outcomes it held with no answer
    /// (their leases run out and the sweep rescues the jobs), not waiting forever.
    #[tokio::test]
    async fn the_other_slots_of_a_writer_that_died_go_on() {
        let batch = Arc::new(OutcomeBatch::default());
        let held = batch.writing.lock().await;
        let writer = tokio::spawn({
            let batch = Arc::clone(&batch);
            async move {
                batch
                    .store(finish(1), |_| async { panic!("the store's write died") })
                    .await
            }
        });
        while batch.lock_waiting().is_empty() {
            tokio::task::yield_now().await;
        }
        let other = tokio::spawn({
            let batch = Arc::clone(&batch);
            async move {
                batch
                    .store(finish(2), |_| async {
                        unreachable!("the first writer takes both")
                    })
                    .await
            }
        });
        while batch.lock_waiting().len() < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);
        assert!(writer.await.is_err(), "the first writer panicked");
        let stored = other.await.unwrap();
        assert!(stored.ended.is_none());
        assert!(stored.next.is_none());
    }
}
