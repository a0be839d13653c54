//! The [`Store`] operations on PostgreSQL: writes through [`PgStore::write`] (one transaction,
//! run again after a deadlock), reads on a pooled connection.

use std::sync::Arc;

use async_trait::async_trait;
use runway_core::JobStatus;
use runway_core::bus::{JobChange, LogAppend};
use runway_core::clock::{Timestamp, micros_to_timestamp};
use runway_core::event::{Event, EventKind};
use runway_core::job::{Job, JobId, NewJob, Progress};
use runway_core::log_text::{ChunkMarks, LogText};
use runway_core::queue_history::{FinishedSample, HistoryRows, HistoryWindow};
use runway_core::store::{
    Artifact, ArtifactUsage, AttemptRef, CancelOutcome, IdempotencyKey, Inserted, Insertion,
    JobClaimParams, JobFinishParams, JobListParams, KindCount, LeaseState, LogChunk, QueueStats,
    QueueStatsBuilder, Spawn, Store, StoreError, TreeDeletion, TriggerRecord,
};
use runway_core::transition::JobCommand;
use serde_json::{Value, json};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::job_query;
use crate::rows::{self, ARTIFACT_COLUMNS, JOB_COLUMN_COUNT, JOB_COLUMNS, int, micros, parse_json};
use crate::store::{Commit, PendingEvent, PgError, PgStore};
use crate::writes::{self, apply, held_log_size, locked_job};

/// How long the health probe waits for the database.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn db(error: tokio_postgres::Error) -> StoreError {
    StoreError::from(PgError::from(error))
}

pub(crate) fn corrupt(error: PgError) -> StoreError {
    StoreError::from(error)
}

impl PgStore {
    pub(crate) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.query(&statement, params).await.map_err(db)
    }

    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.query_one(&statement, params).await.map_err(db)
    }

    async fn jobs(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Job>, StoreError> {
        rows::jobs(&self.rows(sql, params).await?).map_err(corrupt)
    }
}

#[async_trait]
impl Store for PgStore {
    fn shared(&self) -> bool {
        true
    }

    async fn job_insert_keyed(
        &self,
        jobs: Vec<(NewJob, Option<IdempotencyKey>)>,
        now: Timestamp,
    ) -> Result<Insertion, StoreError> {
        // A batch without keys or trees (what scripts submit by the thousand) goes in whole.
        if jobs.len() > 1
            && jobs
                .iter()
                .all(|(job, key)| key.is_none() && writes::is_plain(job))
        {
            let plain: Vec<NewJob> = jobs.into_iter().map(|(job, _)| job).collect();
            let inserted = self
                .write(Commit::Synced, move |tx| {
                    writes::insert_plain(tx, plain.clone(), now)
                })
                .await?;
            return Ok(Insertion::Done(
                inserted
                    .into_iter()
                    .map(|job| Inserted { job, created: true })
                    .collect(),
            ));
        }
        self.write(Commit::Synced, move |tx| {
            writes::insert_keyed(tx, jobs.clone(), now)
        })
        .await
    }

    async fn idempotency_key_prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(Commit::Lazy, move |tx| {
            tx.execute(
                "DELETE FROM idempotency_keys WHERE (scope, key) IN (
                     SELECT scope, key FROM idempotency_keys WHERE created_at < $1 LIMIT 10000)",
                &[&micros(before)],
            )
        })
        .await
    }

    async fn job_get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(self
            .jobs(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                &[&id.0],
            )
            .await?
            .pop())
    }

    async fn job_spawn(
        &self,
        parent: AttemptRef,
        children: Vec<NewJob>,
        max_children: u32,
        now: Timestamp,
    ) -> Result<Spawn, StoreError> {
        self.write(Commit::Synced, move |tx| {
            writes::spawn(tx, &parent, &children, max_children, now)
        })
        .await
    }

    async fn job_children(
        &self,
        parent: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        self.jobs(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE parent_id = $1 AND id > $2
                 ORDER BY id LIMIT $3"
            ),
            &[&parent.0, &after.map_or(0, |id| id.0), &i64::from(limit)],
        )
        .await
    }

    async fn job_list(&self, params: JobListParams) -> Result<Vec<Job>, StoreError> {
        let query = job_query::list(&params);
        self.jobs(&query.sql, &query.params()).await
    }

    async fn job_count(&self, params: JobListParams) -> Result<u64, StoreError> {
        let query = job_query::count(&params);
        let count: i64 = self.row(&query.sql, &query.params()).await?.get(0);
        Ok(count as u64)
    }

    async fn job_claim(&self, params: JobClaimParams) -> Result<Vec<Job>, StoreError> {
        self.write(Commit::Lazy, move |tx| writes::claim(tx, &params))
            .await
    }

    async fn job_finish_many_and_claim(
        &self,
        finished: Vec<JobFinishParams>,
        next: Option<JobClaimParams>,
    ) -> Result<(Vec<Option<Job>>, Vec<Job>), StoreError> {
        self.write(Commit::Lazy, move |tx| {
            let done = writes::finish_many(tx, &finished)?;
            let claimed = match &next {
                Some(next) => writes::claim(tx, next)?,
                None => Vec::new(),
            };
            Ok((done, claimed))
        })
        .await
    }

    async fn job_lease_renew(
        &self,
        attempts: Vec<AttemptRef>,
        lease_until: Timestamp,
    ) -> Result<Vec<LeaseState>, StoreError> {
        self.write(Commit::Lazy, move |tx| {
            // In id order, as finishes lock their jobs: a renewal and a batch of this
            // server's finishes never wait for each other in a cycle.
            let mut order: Vec<usize> = (0..attempts.len()).collect();
            order.sort_by_key(|&index| attempts[index].id);
            let mut states = vec![LeaseState::Lost; attempts.len()];
            for index in order {
                let attempt = &attempts[index];
                let cancel = tx.query_opt(
                    "UPDATE jobs SET lease_until = $1
                         WHERE id = $2 AND status = 'running' AND attempt = $3 AND worker = $4
                         RETURNING cancel_requested",
                    &[
                        &micros(lease_until),
                        &attempt.id.0,
                        &int(attempt.attempt),
                        &attempt.worker,
                    ],
                )?;
                states[index] = match cancel.map(|row| row.get::<_, bool>(0)) {
                    None => LeaseState::Lost,
                    Some(true) => LeaseState::CancelRequested,
                    Some(false) => LeaseState::Held,
                };
            }
            Ok(states)
        })
        .await
    }

    async fn job_finish(&self, params: JobFinishParams) -> Result<Option<Job>, StoreError> {
        self.write(Commit::Lazy, move |tx| writes::finish(tx, &params))
            .await
    }

    async fn job_finish_many(
        &self,
        params: Vec<JobFinishParams>,
    ) -> Result<Vec<Option<Job>>, StoreError> {
        self.write(Commit::Lazy, move |tx| writes::finish_many(tx, &params))
            .await
    }

    async fn job_progress_set(
        &self,
        attempt: AttemptRef,
        progress: Progress,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(Commit::Lazy, move |tx| {
            let updated = tx.query_opt(
                &format!(
                    "UPDATE jobs SET progress = $1, progress_message = $2
                     WHERE id = $3 AND status = 'running' AND attempt = $4 AND worker = $5
                     RETURNING {JOB_COLUMNS}"
                ),
                &[
                    &progress.fraction,
                    &progress.message,
                    &attempt.id.0,
                    &int(attempt.attempt),
                    &attempt.worker,
                ],
            )?;
            let Some(updated) = updated else {
                return Ok(false);
            };
            let job = rows::job(&updated)?;
            tx.record(PendingEvent {
                previous: Some(job.status),
                job,
                at: now,
                kind: EventKind::Progress,
                data: json!({"fraction": progress.fraction, "message": progress.message}),
            });
            Ok(true)
        })
        .await
    }

    async fn job_pid_set(&self, attempt: AttemptRef, pid: u32) -> Result<bool, StoreError> {
        self.write(Commit::Lazy, move |tx| {
            let changed = tx.execute(
                "UPDATE jobs SET pid = $1
                 WHERE id = $2 AND status = 'running' AND attempt = $3 AND worker = $4",
                &[
                    &(pid as i32),
                    &attempt.id.0,
                    &int(attempt.attempt),
                    &attempt.worker,
                ],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn job_cancel(&self, id: JobId, now: Timestamp) -> Result<CancelOutcome, StoreError> {
        self.write(Commit::Synced, move |tx| {
            let Some(job) = locked_job(tx, id)? else {
                return Ok(CancelOutcome::NotFound);
            };
            if job.status.is_terminal() {
                return Ok(CancelOutcome::AlreadyTerminal(job));
            }
            let stored = apply(tx, &job, JobCommand::Cancel, now)?;
            Ok(CancelOutcome::of_unfinished(job, stored))
        })
        .await
    }

    async fn job_list_lease_expired(&self, now: Timestamp) -> Result<Vec<Job>, StoreError> {
        self.jobs(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' AND lease_until < $1"
            ),
            &[&micros(now)],
        )
        .await
    }

    async fn job_list_running(&self) -> Result<Vec<Job>, StoreError> {
        self.jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running'"),
            &[],
        )
        .await
    }

    async fn job_promote_due(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        self.write(Commit::Lazy, move |tx| {
            // Another server promoting at once skips the rows this one holds.
            let due = tx.lock_jobs(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'scheduled' AND run_at <= $1
                     ORDER BY id FOR UPDATE SKIP LOCKED"
                ),
                &[&micros(now)],
            )?;
            let mut queues = Vec::new();
            for job in due {
                if let Some(job) = apply(tx, &job, JobCommand::Promote, now)?
                    && !queues.contains(&job.queue)
                {
                    queues.push(job.queue);
                }
            }
            Ok(queues)
        })
        .await
    }

    async fn job_next_run_at(
        &self,
        queue: &str,
        job_types: &[String],
    ) -> Result<Option<Timestamp>, StoreError> {
        let next: Option<i64> = self
            .row(
                "SELECT min(run_at) FROM jobs
                 WHERE queue = $1 AND status = 'scheduled' AND job_type = ANY($2)",
                &[&queue, &job_types],
            )
            .await?
            .get(0);
        Ok(next.map(micros_to_timestamp))
    }

    async fn log_append(
        &self,
        attempt: AttemptRef,
        text: LogText,
        limit: u64,
        truncated_note: String,
        lost: u64,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let origin = self.follower.origin.clone();
        self.write(Commit::Lazy, move |tx| {
            let Some(log_size) = held_log_size(tx, &attempt)? else {
                return Ok(false);
            };
            if lost > 0 {
                tx.execute(
                    "UPDATE jobs SET log_lost = log_lost + $1 WHERE id = $2",
                    &[&(lost as i64), &attempt.id.0],
                )?;
            }
            // Past the limit means the truncation note is already there.
            if log_size > limit {
                return Ok(true);
            }
            let kept = text.clone().within(limit - log_size, &truncated_note);
            // Other servers hear of the text at commit, and read it (the payload is bounded;
            // log text is not).
            tx.execute(
                "WITH stored AS (INSERT INTO job_logs
                                   (job_id, byte_offset, size, data, attempt, at, streams)
                                 VALUES ($1, $2, $3, $4, $6, $7, $8))
                 SELECT pg_notify('runway_logs', $5::text || ' ' || $1::text || ' ' || $2::text
                                                 || ' ' || $3::text)",
                &[
                    &attempt.id.0,
                    &(log_size as i64),
                    &(kept.len() as i64),
                    &kept.text,
                    &origin,
                    &(attempt.attempt as i32),
                    &at.timestamp_micros(),
                    &kept.encode_streams(),
                ],
            )?;
            tx.execute(
                "UPDATE jobs SET log_size = log_size + $1 WHERE id = $2",
                &[&(kept.len() as i64), &attempt.id.0],
            )?;
            tx.publish_log(LogAppend {
                job_id: attempt.id,
                offset: log_size,
                marks: Arc::from(kept.marks(log_size, attempt.attempt, at)),
                data: Arc::from(kept.text),
            });
            Ok(true)
        })
        .await
    }

    async fn health_probe(&self) -> Result<(), StoreError> {
        let probe = async {
            self.row("SELECT 1", &[]).await?;
            Ok(())
        };
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {}s",
                PROBE_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn log_read(
        &self,
        id: JobId,
        offset: u64,
        max_bytes: u64,
    ) -> Result<LogChunk, StoreError> {
        let size = self
            .rows("SELECT log_size FROM jobs WHERE id = $1", &[&id.0])
            .await?
            .first()
            .map_or(0, |row| row.get::<_, i64>(0)) as u64;
        let start = offset.min(size);
        let chunks: Vec<(ChunkMarks, String)> = self
            .rows(
                "SELECT byte_offset, data, attempt, at, streams FROM job_logs
                 WHERE job_id = $1 AND byte_offset + size > $2 AND byte_offset < $2 + $3
                 ORDER BY byte_offset",
                &[
                    &id.0,
                    &(start as i64),
                    &(max_bytes.min(i64::MAX as u64) as i64),
                ],
            )
            .await?
            .iter()
            .map(|row| {
                let marks = ChunkMarks {
                    offset: row.get::<_, i64>(0) as u64,
                    attempt: row.get::<_, i32>(2) as u32,
                    at: row.get::<_, Option<i64>>(3).map(micros_to_timestamp),
                    streams: row.get(4),
                };
                (marks, row.get(1))
            })
            .collect();
        Ok(LogChunk::from_chunks(chunks, start, max_bytes, size))
    }

    async fn queue_stats(&self, now: Timestamp) -> Result<Vec<QueueStats>, StoreError> {
        let mut stats = QueueStatsBuilder::new(now);
        let counts = self
            .rows(
                "SELECT queue, status, sum(count)::bigint FROM job_counts
                 GROUP BY queue, status HAVING sum(count) > 0
                 UNION ALL
                 SELECT queue, status, count(*) FROM jobs
                 WHERE status IN ('queued', 'scheduled', 'running', 'waiting')
                 GROUP BY queue, status",
                &[],
            )
            .await?;
        for row in &counts {
            let queue: String = row.get(0);
            let status = rows::parsed(row, 1).map_err(corrupt)?;
            stats.count(&queue, status, row.get::<_, i64>(2) as u64);
        }
        for row in self.rows("SELECT name, paused FROM queues", &[]).await? {
            let queue: String = row.get(0);
            stats.paused(&queue, row.get(1));
        }
        // The oldest queued job is the lowest queued id; it has waited since it was due.
        for queue in stats.queues_with_queued_jobs() {
            let at = self
                .rows(
                    "SELECT greatest(created_at, run_at) FROM jobs WHERE id =
                       (SELECT min(id) FROM jobs WHERE queue = $1 AND status = 'queued')",
                    &[&queue],
                )
                .await?
                .first()
                .map(|row| micros_to_timestamp(row.get(0)));
            stats.oldest_queued(&queue, at);
        }
        let finished = self
            .rows(
                "SELECT queue, finished_at / $1, count(*) FROM jobs
                 WHERE finished_at >= $2 GROUP BY 1, 2",
                &[&QueueStatsBuilder::window_micros(), &stats.counted_from()],
            )
            .await?;
        for row in &finished {
            let queue: String = row.get(0);
            stats.finished(&queue, row.get(1), row.get::<_, i64>(2) as u64);
        }
        Ok(stats.build())
    }

    async fn queue_history(
        &self,
        queue: &str,
        window: HistoryWindow,
        sample_limit: u64,
    ) -> Result<HistoryRows, StoreError> {
        let (from, to, width) = (window.from_micros, window.to_micros(), window.bucket_micros);
        let counts: Vec<(usize, JobStatus, u64)> = self
            .rows(
                "SELECT (finished_at - $1) / $2, status, count(*) FROM jobs
                 WHERE finished_at >= $1 AND finished_at < $3 AND queue = $4
                 GROUP BY 1, 2",
                &[&from, &width, &to, &queue],
            )
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.get::<_, i64>(0) as usize,
                    crate::rows::parsed::<JobStatus>(row, 1)?,
                    row.get::<_, i64>(2) as u64,
                ))
            })
            .collect::<Result<_, crate::store::PgError>>()?;
        let every =
            HistoryRows::sample_every(counts.iter().map(|count| count.2).sum(), sample_limit)
                as i64;
        let samples = self
            .rows(
                // Every n-th of the queue's jobs, numbered among themselves: ids are shared
                // by every queue, so `id % n` could miss a queue altogether.
                "SELECT finished_at, waited, ran FROM (
                   SELECT finished_at, started_at - greatest(created_at, run_at) AS waited,
                          finished_at - started_at AS ran,
                          row_number() OVER (ORDER BY id) AS n
                   FROM jobs
                   WHERE finished_at >= $1 AND finished_at < $2 AND queue = $3
                     AND started_at IS NOT NULL) numbered
                 WHERE n % $4 = 0",
                &[&from, &to, &queue, &every],
            )
            .await?
            .iter()
            .map(|row| FinishedSample {
                finished_micros: row.get(0),
                waited_micros: row.get(1),
                ran_micros: row.get(2),
            })
            .collect();
        Ok(HistoryRows {
            counts,
            samples,
            sampled: every > 1,
        })
    }

    async fn queue_set_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        let queue = queue.to_string();
        self.write(Commit::Synced, move |tx| {
            tx.execute(
                "INSERT INTO queues (name, paused) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                &[&queue, &paused],
            )?;
            Ok(())
        })
        .await
    }

    async fn queue_paused(&self, queue: &str) -> Result<bool, StoreError> {
        Ok(self
            .rows("SELECT paused FROM queues WHERE name = $1", &[&queue])
            .await?
            .first()
            .is_some_and(|row| row.get(0)))
    }

    async fn job_changes_since(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<JobChange>, StoreError> {
        changes_since(self, after_seq, limit).await
    }

    async fn event_last_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .row("SELECT coalesce(max(seq), 0) FROM events", &[])
            .await?
            .get(0))
    }

    async fn changes_make_durable(&self) -> Result<(), StoreError> {
        // A synchronous commit flushes the WAL up to its own record, and with it every commit
        // made before it, `synchronous_commit = off` or not. It needs a record: an xid.
        self.write(Commit::Synced, |tx| {
            tx.execute("SELECT txid_current()", &[])?;
            Ok(())
        })
        .await
    }

    async fn event_first_seq(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.row("SELECT min(seq) FROM events", &[]).await?.get(0))
    }

    async fn event_prune(&self, before: Timestamp, keep: u64) -> Result<u64, StoreError> {
        self.write(Commit::Lazy, move |tx| {
            let newest: i64 = tx
                .query_one("SELECT coalesce(max(seq), 0) FROM events", &[])?
                .get(0);
            let keep_from = newest - i64::try_from(keep).unwrap_or(i64::MAX).min(newest);
            // The oldest events first, a bounded number per call: the sweep calls again.
            tx.execute(
                "DELETE FROM events WHERE seq IN (
                     SELECT seq FROM (SELECT seq, at FROM events ORDER BY seq LIMIT 10000) oldest
                     WHERE seq <= $1 OR at < $2)",
                &[&keep_from, &micros(before)],
            )
        })
        .await
    }

    async fn event_list_newest(&self, job: JobId, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.rows(
            "SELECT * FROM (SELECT seq, job_id, at, kind, status, data FROM events
               WHERE job_id = $1 ORDER BY seq DESC LIMIT $2) newest
             ORDER BY seq",
            &[&job.0, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(rows::event)
        .collect::<Result<_, _>>()
        .map_err(corrupt)
    }

    async fn event_list(
        &self,
        after_seq: i64,
        job: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        self.rows(
            "SELECT seq, job_id, at, kind, status, data FROM events
             WHERE seq > $1 AND ($2::bigint IS NULL OR job_id = $2) ORDER BY seq LIMIT $3",
            &[&after_seq, &job.map(|id| id.0), &i64::from(limit)],
        )
        .await?
        .iter()
        .map(rows::event)
        .collect::<Result<_, _>>()
        .map_err(corrupt)
    }

    async fn artifact_record(
        &self,
        attempt: AttemptRef,
        artifacts: Vec<Artifact>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.write(Commit::Synced, move |tx| {
            if held_log_size(tx, &attempt)?.is_none() {
                return Ok(None);
            }
            let mut replaced = Vec::new();
            for artifact in &artifacts {
                let old = tx.query_opt(
                    "SELECT path FROM artifacts WHERE job_id = $1 AND name = $2",
                    &[&attempt.id.0, &artifact.name],
                )?;
                replaced.extend(
                    old.map(|row| row.get::<_, String>(0))
                        .filter(|old| *old != artifact.path),
                );
                tx.execute(
                    &format!(
                        "INSERT INTO artifacts ({ARTIFACT_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (job_id, name) DO UPDATE SET size = excluded.size,
                             sha256 = excluded.sha256, content_type = excluded.content_type,
                             attempt = excluded.attempt, created_at = excluded.created_at,
                             path = excluded.path"
                    ),
                    &[
                        &attempt.id.0,
                        &artifact.name,
                        &(artifact.size as i64),
                        &artifact.sha256,
                        &artifact.content_type,
                        &int(artifact.attempt),
                        &micros(artifact.created_at),
                        &artifact.path,
                    ],
                )?;
            }
            Ok(Some(writes::unreferenced(tx, replaced)?))
        })
        .await
    }

    async fn artifact_list(&self, job: JobId) -> Result<Vec<Artifact>, StoreError> {
        self.rows(
            &format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE job_id = $1 ORDER BY name"),
            &[&job.0],
        )
        .await?
        .iter()
        .map(rows::artifact)
        .collect::<Result<_, _>>()
        .map_err(corrupt)
    }

    async fn artifact_list_children(&self, parent: JobId) -> Result<Vec<Artifact>, StoreError> {
        self.rows(
            &format!(
                "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE job_id IN
                     (SELECT id FROM jobs WHERE parent_id = $1)
                 ORDER BY job_id, name"
            ),
            &[&parent.0],
        )
        .await?
        .iter()
        .map(rows::artifact)
        .collect::<Result<_, _>>()
        .map_err(corrupt)
    }

    async fn artifact_get(&self, job: JobId, name: &str) -> Result<Option<Artifact>, StoreError> {
        self.rows(
            &format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE job_id = $1 AND name = $2"),
            &[&job.0, &name],
        )
        .await?
        .first()
        .map(rows::artifact)
        .transpose()
        .map_err(corrupt)
    }

    async fn artifact_usage(&self, job: Option<JobId>) -> Result<ArtifactUsage, StoreError> {
        // Shared files (a retried tree's carried children) count once.
        let row = self
            .row(
                "SELECT count(*), coalesce(sum(size), 0)::bigint FROM
                     (SELECT path, max(size) AS size FROM artifacts
                      WHERE $1::bigint IS NULL OR job_id = $1 GROUP BY path) files",
                &[&job.map(|id| id.0)],
            )
            .await?;
        Ok(ArtifactUsage {
            files: row.get::<_, i64>(0) as u64,
            bytes: row.get::<_, i64>(1) as u64,
        })
    }

    async fn job_delete_tree(&self, id: JobId) -> Result<TreeDeletion, StoreError> {
        self.write(Commit::Synced, move |tx| writes::delete_tree(tx, id))
            .await
    }

    async fn job_prune(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<TreeDeletion>, StoreError> {
        self.write(Commit::Lazy, move |tx| {
            let roots: Vec<JobId> = tx
                .query(
                    "SELECT id FROM jobs WHERE finished_at < $1 AND parent_id IS NULL
                     ORDER BY finished_at LIMIT $2",
                    &[&micros(before), &i64::from(limit)],
                )?
                .iter()
                .map(|row| JobId(row.get(0)))
                .collect();
            let mut deleted = Vec::new();
            for root in roots {
                // A root whose tree still runs (children being cancelled) waits.
                if let deletion @ TreeDeletion::Deleted { .. } = writes::delete_tree(tx, root)? {
                    deleted.push(deletion);
                }
            }
            Ok(deleted)
        })
        .await
    }

    async fn trigger_get(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        Ok(self
            .rows(
                "SELECT state, snapshot FROM triggers WHERE name = $1",
                &[&name],
            )
            .await?
            .first()
            .map(|row| TriggerRecord {
                state: parse_json(row.get(0)),
                snapshot: row.get(1),
            }))
    }

    async fn trigger_put(
        &self,
        name: &str,
        state: Value,
        snapshot: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(Commit::Synced, move |tx| {
            tx.execute(
                "INSERT INTO triggers (name, state, snapshot) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET state = excluded.state,
                     snapshot = coalesce(excluded.snapshot, triggers.snapshot)",
                &[&name, &state.to_string(), &snapshot],
            )?;
            Ok(())
        })
        .await
    }

    async fn job_list_by_trigger(&self, name: &str, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE trigger = $1 ORDER BY id DESC LIMIT $2"),
            &[&name, &i64::from(limit)],
        )
        .await
    }

    async fn job_count_by_kind(&self) -> Result<Vec<KindCount>, StoreError> {
        self.rows(
            "SELECT queue, job_type, status, sum(count)::bigint FROM job_counts
             GROUP BY queue, job_type, status HAVING sum(count) > 0
             UNION ALL
             SELECT queue, job_type, status, count(*) FROM jobs
             WHERE status IN ('queued', 'scheduled', 'running', 'waiting')
             GROUP BY queue, job_type, status",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(KindCount {
                queue: row.try_get(0)?,
                job_type: row.try_get(1)?,
                status: rows::parsed(row, 2)?,
                count: row.try_get::<_, i64>(3)? as u64,
            })
        })
        .collect::<Result<_, PgError>>()
        .map_err(corrupt)
    }
}

/// Stored job changes after `after_seq`, oldest first: each event with the job as it is now,
/// but the status it had at the change.
pub(crate) async fn changes_since(
    store: &PgStore,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<JobChange>, StoreError> {
    let job_columns: Vec<String> = JOB_COLUMNS
        .split(", ")
        .map(|column| format!("j.{}", column.trim()))
        .collect();
    let rows = store
        .rows(
            &format!(
                "SELECT {}, e.seq, e.kind, e.at, e.status FROM events e JOIN jobs j ON j.id = e.job_id
                 WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
                job_columns.join(", ")
            ),
            &[&after_seq, &i64::from(limit)],
        )
        .await?;
    let event = JOB_COLUMN_COUNT;
    let change = |row: &Row| -> Result<JobChange, PgError> {
        let mut job = rows::job(row)?;
        let kind: String = row.try_get(event + 1)?;
        job.status = rows::parsed(row, event + 3)?;
        Ok(JobChange::new(
            row.try_get(event)?,
            EventKind::parse(&kind)
                .ok_or_else(|| PgError::Corrupt(format!("unknown event kind {kind:?}")))?,
            micros_to_timestamp(row.try_get(event + 2)?),
            Arc::new(job),
        ))
    };
    // A row this runway cannot read (written by a newer one during an upgrade) is left out,
    // not allowed to stop every change after it.
    Ok(rows
        .iter()
        .filter_map(|row| match change(row) {
            Ok(change) => Some(change),
            Err(error) => {
                tracing::warn!(?error, "left out a change this runway cannot read");
                None
            }
        })
        .collect())
}
