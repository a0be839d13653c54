//! What live clients read: committed changes by `seq`, and the stored log they start from.
//! The server's fan-out, feeds and sessions read through these, never a store of their own, so
//! every backend serves them alike.

use crate::app::App;
use crate::bus::JobChange;
use crate::job::{Job, JobId};
use crate::store::{LogChunk, StoreError};

impl App {
    /// Committed changes after `after` (at most `limit`), oldest first: what a client missed.
    pub async fn changes_since(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<JobChange>, StoreError> {
        self.engine.store.job_changes_since(after, limit).await
    }

    /// Makes every change committed so far survive a power cut; live clients hear only of
    /// durable changes.
    pub async fn changes_make_durable(&self) -> Result<(), StoreError> {
        self.engine.store.changes_make_durable().await
    }

    /// The newest `seq` committed, 0 when there is none.
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        self.engine.store.event_last_seq().await
    }

    /// The oldest `seq` still kept (retention deletes older ones), `None` when none is.
    pub async fn first_kept_seq(&self) -> Result<Option<i64>, StoreError> {
        self.engine.store.event_first_seq().await
    }

    /// Every running job, wherever it runs: live log text is routed by them.
    pub async fn running_jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.engine.store.job_list_running().await
    }

    /// How many jobs stand in each status, by queue and type.
    pub async fn job_count_by_kind(&self) -> Result<Vec<crate::store::KindCount>, StoreError> {
        self.engine.store.job_count_by_kind().await
    }

    /// The stored log of a job from byte `offset`, at most `max_bytes`.
    pub async fn log_chunk(
        &self,
        id: JobId,
        offset: u64,
        max_bytes: u64,
    ) -> Result<LogChunk, StoreError> {
        self.engine.store.log_read(id, offset, max_bytes).await
    }
}

impl App {
    /// Job `id` once it has ended, or as it is when `wait` passes first: a client waits for a
    /// job over plain HTTP without polling. Its end is heard on the bus, subscribed before the
    /// job is read, so an end in between is not missed.
    pub async fn job_when_ended(
        &self,
        access: crate::users::Access,
        id: JobId,
        wait: std::time::Duration,
    ) -> Result<Job, crate::Error> {
        use tokio::sync::broadcast::error::RecvError;

        let mut changes = self.subscribe();
        let job = self.job(access, id).await?;
        if job.status.is_terminal() || wait.is_zero() {
            return Ok(job);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Err(_) => return self.job(access, id).await,
                Ok(Ok(burst)) => {
                    let ended = burst.iter().rev().find_map(|change| match change {
                        crate::bus::Change::Job(change)
                            if change.job.id == id && change.job.status.is_terminal() =>
                        {
                            Some(Job::clone(&change.job))
                        }
                        _ => None,
                    });
                    if let Some(job) = ended {
                        return Ok(job);
                    }
                }
                // Outran by the bus: the store says where the job is.
                Ok(Err(RecvError::Lagged(_))) => {
                    let job = self.job(access, id).await?;
                    if job.status.is_terminal() {
                        return Ok(job);
                    }
                }
                Ok(Err(RecvError::Closed)) => return self.job(access, id).await,
            }
        }
    }
}
