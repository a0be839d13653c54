//! The application value: what lives as long as the server (store, config, clock, engine).
//! Cheap to clone; the HTTP layer and the binary call its operations, which validate input,
//! apply the change through the store and wake whoever must act on it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

mod live;
mod users;

pub use users::FIRST_ADMIN;

use crate::bus::{Bus, Changes};
use crate::clock::{Clock, Timestamp};
use crate::config::{Config, ConfigError, QueueConfig};
use crate::engine::Engine;
use crate::error::Error;
use crate::event::Event;
use crate::handler::{Handler, builtin_handlers};
use crate::job::{Job, JobId, JobStatus, NewJob};
use crate::job_token::JobTokens;
use crate::queue_history::{HISTORY_SAMPLE, HistorySpan, QueueHistory};
use crate::retry::{self, FinishedTree};
use crate::stop::StopReason;
use crate::store::{
    Artifact, ArtifactUsage, AttemptRef, CancelOutcome, IdempotencyKey, Inserted, Insertion,
    JobListParams, LogChunk, QueueStats, Store, TreeDeletion,
};
use crate::submission;
use crate::triggers::Triggers;
use crate::users::{Access, Owner, Role, User, owner_access};

/// Most jobs one bulk request may act on.
pub const MAX_BULK_JOBS: u64 = 10_000;
const BULK_IN_FLIGHT: usize = 32;

/// What [`App::bulk`] does to each job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Cancel,
    Retry,
}

/// The jobs of a bulk request.
#[derive(Debug, Clone)]
pub enum BulkTarget {
    Ids(Vec<JobId>),
    Filter(Box<JobListParams>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOutcome {
    pub matched: u64,
    pub changed: u64,
    /// The jobs the action did not apply to, with the reason.
    pub skipped: Vec<(JobId, String)>,
}

/// Most jobs in one batch submit.
pub const MAX_BATCH: usize = 10_000;

/// One job as a submitter asks for it, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubmitParams {
    pub job_type: String,
    pub input: Value,
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub run_at: Option<Timestamp>,
    pub max_attempts: Option<u32>,
    /// A repeat of this request with the same key, within `server.idempotency_window`, gets
    /// the first job back instead of a second one.
    pub idempotency_key: Option<String>,
    /// A child's key, unique among its siblings: a spawn that names a key already used under
    /// the same parent gets that child back (a retried parent spawns no duplicates).
    pub key: Option<String>,
    /// Jobs to create as this job's children, in the same transaction.
    pub children: Vec<SubmitParams>,
    /// The trigger submitting the job; set by triggers, never by a client.
    pub trigger: Option<String>,
}

/// A queue's configuration with its live counts.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueView {
    pub name: String,
    pub config: QueueConfig,
    pub stats: QueueStats,
}

#[derive(Clone)]
pub struct App {
    engine: Arc<Engine>,
    triggers: Triggers,
}

impl App {
    /// Builds the app; call [`App::start`] to recover and begin running jobs. `worker` names
    /// this process instance: fresh at every start, so a restarted server never mistakes an
    /// old attempt for its own. Refuses a configuration naming a handler that is not
    /// registered, whose jobs could never run.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Bus,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        extra_handlers: Vec<(String, Arc<dyn Handler>)>,
        worker: String,
    ) -> Result<App, ConfigError> {
        let handlers: HashMap<String, Arc<dyn Handler>> = builtin_handlers()
            .into_iter()
            .chain(extra_handlers)
            .collect();
        config.check_handlers(handlers.keys().map(String::as_str))?;
        let triggers = Triggers::new(config.triggers.clone());
        Ok(App {
            engine: Arc::new(Engine::new(store, bus, config, clock, handlers, worker)),
            triggers,
        })
    }

    /// Tells the engine where the server listens, for commands' `RUNWAY_URL`. Call before
    /// [`App::start`].
    pub fn set_url(&self, url: String) {
        let _ = self.engine.url.set(url);
    }

    /// Checks job tokens (`RUNWAY_TOKEN`); `None` before [`App::start`].
    pub fn job_tokens(&self) -> Option<&JobTokens> {
        self.engine.job_tokens.get()
    }

    /// Recovers and starts running jobs, then starts the triggers.
    pub async fn start(&self) -> Result<(), Error> {
        self.engine.start().await?;
        self.triggers.start(self).await;
        Ok(())
    }

    /// Completes when the engine has failed for good (one of its loops keeps panicking), with
    /// why: the server must stop rather than stay up without running jobs.
    pub async fn failed(&self) -> String {
        self.engine.failed().await
    }

    /// Why the engine failed for good, if it did (see [`App::failed`]).
    pub fn failure(&self) -> Option<String> {
        self.engine.failure()
    }

    /// Stops taking jobs, lets running ones finish within the grace period, hands the rest back.
    pub async fn shutdown(&self) {
        self.triggers.stop();
        self.engine.shutdown().await;
    }

    /// The triggers of the config: their views, controls and webhook deliveries.
    pub fn triggers(&self) -> &Triggers {
        &self.triggers
    }

    /// The newest jobs trigger `name` submitted, newest first.
    pub async fn trigger_jobs(&self, name: &str, limit: u32) -> Result<Vec<Job>, Error> {
        self.triggers.get(name)?;
        Ok(self.engine.store.job_list_by_trigger(name, limit).await?)
    }

    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// Core's own parts (triggers) reach the store here; the server goes through the app.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.engine.store
    }

    /// Every committed change, in `seq` order, as the store publishes it after each commit.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Changes> {
        self.engine.bus.subscribe()
    }

    pub fn now(&self) -> Timestamp {
        self.engine.clock.now()
    }

    /// Whether the store can take writes now (readiness): a full disk says so.
    pub async fn ready(&self) -> Result<(), Error> {
        self.engine.store.health_probe().await?;
        Ok(())
    }

    /// Validates every job, then inserts them all in one transaction, or none, owned by `by`
    /// (`None`: the server's own, as a trigger's). A job whose idempotency key answered with
    /// an earlier job comes back with `created: false`; keys are the submitter's own.
    pub async fn submit(
        &self,
        by: Option<&User>,
        requests: Vec<SubmitParams>,
    ) -> Result<Vec<Inserted>, Error> {
        if requests.len() > MAX_BATCH {
            return Err(Error::InvalidField {
                field: "jobs".into(),
                message: format!(
                    "holds {} jobs; submit at most {MAX_BATCH} per batch",
                    requests.len()
                ),
            });
        }
        let now = self.now();
        let since = crate::clock::ago(now, self.engine.config.server.idempotency_window);
        let single = requests.len() == 1;
        let in_batch = |index: usize, error: Error| {
            if single {
                error
            } else {
                Error::InBatch {
                    index,
                    error: Box::new(error),
                }
            }
        };
        let mut jobs = Vec::with_capacity(requests.len());
        for (index, request) in requests.into_iter().enumerate() {
            let key = match &request.idempotency_key {
                None => None,
                Some(key) => {
                    if let Some(problem) = crate::idempotency::key_problem(key) {
                        return Err(in_batch(
                            index,
                            Error::InvalidField {
                                field: "idempotency_key".into(),
                                message: problem,
                            },
                        ));
                    }
                    Some(IdempotencyKey {
                        scope: crate::idempotency::submit_scope(by.map(|user| user.id)),
                        key: key.clone(),
                        request_hash: crate::idempotency::request_hash(&request),
                        since,
                    })
                }
            };
            if let Some(user) = by {
                submission::check_types(
                    &self.engine.config,
                    Access::of(user),
                    std::slice::from_ref(&request),
                )
                .map_err(|error| in_batch(index, error))?;
            }
            let mut job = submission::validate_tree(&self.engine.config, request, now, 0)
                .map_err(|error| in_batch(index, error))?;
            job.owner = by.map(Owner::from);
            jobs.push((job, key));
        }
        let mut queues: Vec<String> = jobs.iter().map(|(job, _)| job.queue.clone()).collect();
        queues.dedup();
        let keys: Vec<Option<String>> = jobs
            .iter()
            .map(|(_, key)| key.as_ref().map(|key| key.key.clone()))
            .collect();
        match self.engine.store.job_insert_keyed(jobs, now).await? {
            Insertion::Done(inserted) => {
                for queue in queues {
                    self.engine.wake(&queue);
                }
                Ok(inserted)
            }
            Insertion::KeyConflict { index, existing } => {
                let key = keys[index].clone().unwrap_or_default();
                let first = match existing {
                    Some(id) => format!("job {id}"),
                    None => "an earlier job of this batch".into(),
                };
                Err(in_batch(
                    index,
                    Error::Conflict {
                        message: format!(
                            "idempotency key `{key}` was used for a different request ({first}); send the same request again, or use a new key"
                        ),
                    },
                ))
            }
        }
    }

    /// A job the caller may see; one it may not is as unknown as one that does not exist.
    pub async fn job(&self, access: Access, id: JobId) -> Result<Job, Error> {
        self.engine
            .store
            .job_get(id)
            .await?
            .filter(|job| access.sees(job))
            .ok_or(Error::NotFound { id })
    }

    /// Fails as [`App::job`] does when the caller may not see job `id`; reads nothing for an
    /// admin.
    async fn check_sees(&self, access: Access, id: JobId) -> Result<(), Error> {
        match access {
            Access::All => Ok(()),
            Access::Own(_) => self.job(access, id).await.map(drop),
        }
    }

    /// The jobs the filters of `params` match among those the caller may see.
    pub async fn jobs(&self, access: Access, params: JobListParams) -> Result<Vec<Job>, Error> {
        Ok(self.engine.store.job_list(scoped(access, params)).await?)
    }

    /// How many jobs the filters of `params` match among those the caller may see.
    pub async fn job_count(&self, access: Access, params: JobListParams) -> Result<u64, Error> {
        Ok(self.engine.store.job_count(scoped(access, params)).await?)
    }

    /// A job's kept history, oldest first: its newest `limit` changes, so a long history
    /// still ends with how the job ended.
    pub async fn job_events(
        &self,
        access: Access,
        id: JobId,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        self.job(access, id).await?;
        Ok(self.engine.store.event_list_newest(id, limit).await?)
    }

    /// Cancels or retries many jobs: those named, or all the filter matches. Every id is
    /// checked to exist and the count to be within [`MAX_BULK_JOBS`] before anything changes.
    /// A job the action does not apply to (cancel a finished job, retry an unfinished one or
    /// one whose type is no longer declared) is skipped with the reason, never an error.
    /// Retries are created in one transaction; cancels one by one, as a single cancel is.
    pub async fn bulk(
        &self,
        access: Access,
        action: BulkAction,
        target: BulkTarget,
    ) -> Result<BulkOutcome, Error> {
        let jobs = self.bulk_jobs(access, target).await?;
        let matched = jobs.len() as u64;
        let mut skipped = Vec::new();
        let changed = match action {
            BulkAction::Retry => {
                let now = self.now();
                let mut new_jobs = Vec::new();
                for job in &jobs {
                    match self.retry_plan(job, now).await {
                        Ok(new_job) => new_jobs.push(new_job),
                        Err(Error::Store(error)) => return Err(Error::Store(error)),
                        Err(error) => skipped.push((job.id, error.to_string())),
                    }
                }
                if new_jobs.is_empty() {
                    0
                } else {
                    self.engine
                        .store
                        .job_insert_many(new_jobs, now)
                        .await?
                        .len() as u64
                }
            }
            BulkAction::Cancel => self.cancel_many(&jobs, &mut skipped).await?,
        };
        Ok(BulkOutcome {
            matched,
            changed,
            skipped,
        })
    }

    /// Cancels several at once, so the store folds them into few commits. Every started
    /// cancel is waited for, so the answer tells what happened to each job.
    async fn cancel_many(
        &self,
        jobs: &[Job],
        skipped: &mut Vec<(JobId, String)>,
    ) -> Result<u64, Error> {
        let mut running = tokio::task::JoinSet::new();
        let mut cancelled = 0;
        let mut failure = None;
        let mut pending = jobs.iter().map(|job| job.id);
        loop {
            while running.len() < BULK_IN_FLIGHT
                && let Some(id) = pending.next()
            {
                let app = self.clone();
                // The caller may see every job here: `bulk_jobs` found them for it.
                running.spawn(async move { (id, app.cancel(Access::All, id).await.map(drop)) });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            match joined {
                Ok((_, Ok(()))) => cancelled += 1,
                Ok((_, Err(Error::Store(error)))) => failure = Some(Error::Store(error)),
                Ok((id, Err(error))) => skipped.push((id, error.to_string())),
                Err(panic) => {
                    failure = Some(Error::Store(crate::store::StoreError::Backend(format!(
                        "a cancel task failed: {panic}"
                    ))))
                }
            }
        }
        match failure {
            Some(failure) => Err(failure),
            None => Ok(cancelled),
        }
    }

    /// The jobs of a bulk request, checked: all exist, at most [`MAX_BULK_JOBS`].
    async fn bulk_jobs(&self, access: Access, target: BulkTarget) -> Result<Vec<Job>, Error> {
        match target {
            BulkTarget::Ids(ids) => {
                if ids.len() as u64 > MAX_BULK_JOBS {
                    return Err(Error::InvalidField {
                        field: "ids".into(),
                        message: format!(
                            "names {} jobs; send at most {MAX_BULK_JOBS} per request",
                            ids.len()
                        ),
                    });
                }
                let mut seen = HashSet::new();
                let mut jobs = Vec::with_capacity(ids.len());
                for id in ids {
                    if seen.insert(id) {
                        jobs.push(self.job(access, id).await?);
                    }
                }
                Ok(jobs)
            }
            BulkTarget::Filter(params) => {
                let params = scoped(access, *params);
                let count = self.job_count(access, params.clone()).await?;
                // The same filter is fine with fewer jobs: a conflict with the state, not a bad
                // request.
                if count > MAX_BULK_JOBS {
                    return Err(Error::Conflict {
                        message: format!(
                            "`filter` matches {count} jobs; a bulk action takes at most {MAX_BULK_JOBS}: narrow the filter"
                        ),
                    });
                }
                let mut jobs = Vec::new();
                let mut page = JobListParams {
                    limit: 1000,
                    ..params
                };
                loop {
                    let batch = self.jobs(access, page.clone()).await?;
                    let full = batch.len() == page.limit as usize;
                    page.before = batch.last().map(|job| page.order.cursor(job));
                    jobs.extend(batch);
                    if !full || jobs.len() as u64 >= MAX_BULK_JOBS {
                        break;
                    }
                }
                jobs.truncate(MAX_BULK_JOBS as usize);
                Ok(jobs)
            }
        }
    }

    /// Cancels a queued or scheduled job at once; asks a running one to stop (SIGTERM to its
    /// process group, SIGKILL after the grace period). A finished job is a conflict.
    pub async fn cancel(&self, access: Access, id: JobId) -> Result<(Job, bool), Error> {
        self.check_sees(access, id).await?;
        match self.engine.store.job_cancel(id, self.now()).await? {
            CancelOutcome::Cancelled(job) => {
                self.engine.wake(&job.queue);
                Ok((job, false))
            }
            CancelOutcome::Requested(job) => {
                self.engine.stop_attempt(id, StopReason::Cancel);
                Ok((job, true))
            }
            CancelOutcome::AlreadyTerminal(job) => Err(Error::Conflict {
                message: format!(
                    "job {id} already {}; only an unfinished job can be cancelled",
                    job.status
                ),
            }),
            CancelOutcome::NotFound => Err(Error::NotFound { id }),
        }
    }

    /// Spawns children under the running job `id`, as its running attempt would (a job token's
    /// attempt is checked by the caller): validated like submits, all or none, owned as their
    /// parent is.
    pub async fn spawn(
        &self,
        access: Access,
        id: JobId,
        children: Vec<SubmitParams>,
    ) -> Result<Vec<Inserted>, Error> {
        let parent = self.job(access, id).await?;
        submission::check_types(&self.engine.config, access, &children)?;
        let (JobStatus::Running, Some(worker)) = (parent.status, parent.worker.clone()) else {
            return Err(Error::Conflict {
                message: format!(
                    "job {id} is {}; only a running job can spawn children",
                    parent.status
                ),
            });
        };
        let attempt = AttemptRef {
            id,
            attempt: parent.attempt,
            worker,
        };
        let spawned = self
            .engine
            .spawner(&attempt, &parent)
            .spawn(children)
            .await?;
        Ok(spawned)
    }

    /// The job's ancestors, from its root down to its parent.
    pub async fn ancestors(&self, job: &Job) -> Result<Vec<Job>, Error> {
        let mut chain = Vec::new();
        let mut next = job.parent;
        while let Some(id) = next {
            // A tree has one owner: whoever may see the job may see its ancestors.
            let parent = self.job(Access::All, id).await?;
            next = parent.parent;
            chain.push(parent);
        }
        chain.reverse();
        Ok(chain)
    }

    /// A job's artifacts, by name.
    pub async fn artifacts(&self, access: Access, id: JobId) -> Result<Vec<Artifact>, Error> {
        self.job(access, id).await?;
        Ok(self.engine.store.artifact_list(id).await?)
    }

    /// One artifact and the file that holds its bytes.
    pub async fn artifact(
        &self,
        access: Access,
        id: JobId,
        name: &str,
    ) -> Result<(Artifact, PathBuf), Error> {
        self.job(access, id).await?;
        let artifact = self
            .engine
            .store
            .artifact_get(id, name)
            .await?
            .ok_or_else(|| Error::NoArtifact {
                job: id,
                name: name.to_string(),
            })?;
        let file = self.engine.artifacts_root().join(&artifact.path);
        Ok((artifact, file))
    }

    /// Files and bytes all artifacts take.
    pub async fn artifact_usage(&self) -> Result<ArtifactUsage, Error> {
        Ok(self.engine.store.artifact_usage(None).await?)
    }

    /// Deletes a finished tree (or a finished job without a parent) with its events, logs and
    /// artifacts; returns how many jobs went.
    pub async fn delete(&self, access: Access, id: JobId) -> Result<usize, Error> {
        self.check_sees(access, id).await?;
        match self.engine.store.job_delete_tree(id).await? {
            TreeDeletion::Deleted {
                jobs,
                unreferenced,
                directories,
            } => {
                self.engine.remove_artifact_files(unreferenced).await;
                self.engine.remove_artifact_directories(directories).await;
                Ok(jobs.len())
            }
            TreeDeletion::NotFound => Err(Error::NotFound { id }),
            TreeDeletion::NotRoot { root } => Err(Error::Conflict {
                message: format!(
                    "job {id} is part of the tree of job {root}; delete the whole tree (job {root})"
                ),
            }),
            TreeDeletion::Unfinished { job, status } => Err(Error::Conflict {
                message: if job == id {
                    format!(
                        "job {id} is {status}; only a finished job can be deleted (cancel it first)"
                    )
                } else {
                    format!(
                        "job {job} of the tree of job {id} is {status}; only a finished tree can be deleted (cancel it first)"
                    )
                },
            }),
        }
    }

    /// Up to `limit` children of `id`, in the order they were made, after `after`.
    pub async fn children(
        &self,
        access: Access,
        id: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>, Error> {
        self.check_sees(access, id).await?;
        Ok(self.engine.store.job_children(id, after, limit).await?)
    }

    /// Runs a finished job again as a new job (`retry_of` names the old one); the old job
    /// stays as it ended, since terminal is final. A tree runs again only what did not
    /// succeed (see `retry::plan`).
    pub async fn retry(&self, access: Access, id: JobId) -> Result<Job, Error> {
        let old = self.job(access, id).await?;
        let now = self.now();
        let new_job = self.retry_plan(&old, now).await?;
        let mut jobs = self
            .engine
            .store
            .job_insert_many(vec![new_job], now)
            .await?;
        Ok(jobs.remove(0))
    }

    /// The new job (or tree) that runs `old` again: a conflict when `old` has not finished,
    /// is inside a tree (its root is retried instead) or has a descendant still running.
    async fn retry_plan(&self, old: &Job, now: Timestamp) -> Result<NewJob, Error> {
        if let Some(root) = old.root {
            return Err(Error::Conflict {
                message: format!(
                    "job {} is part of the tree of job {root}; retry the tree from its root (it runs again only what did not succeed)",
                    old.id
                ),
            });
        }
        let tree = self.finished_tree(old.clone()).await?;
        let plan = retry::plan(&tree, &|job| self.retry_of(job, now))?;
        // The new run is the owner's: it runs only types its owner may.
        let access = owner_access(self.engine.store.as_ref(), old.owner.as_ref()).await?;
        submission::check_new_types(&self.engine.config, access, &plan)?;
        Ok(plan)
    }

    /// `job` with the descendants a retry reads: the children of every job it would run
    /// again. A conflict when one of them has not finished.
    fn finished_tree(
        &self,
        job: Job,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<FinishedTree, Error>> + Send + '_>>
    {
        Box::pin(async move {
            if !job.status.is_terminal() {
                let message = match job.root {
                    Some(root) => format!(
                        "job {} of the tree of job {root} is {}; only a finished tree can be retried (wait for it to end)",
                        job.id, job.status
                    ),
                    None => format!(
                        "job {} is {}; only a finished job can be retried (cancel it first)",
                        job.id, job.status
                    ),
                };
                return Err(Error::Conflict { message });
            }
            let mut children = Vec::new();
            if retry::needs_children(&job) {
                let mut after = None;
                loop {
                    let page = self.children(Access::All, job.id, after, 1000).await?;
                    after = page.last().map(|child| child.id);
                    let full = page.len() == 1000;
                    for child in page {
                        children.push(if child.status == JobStatus::Succeeded {
                            FinishedTree {
                                job: child,
                                children: Vec::new(),
                            }
                        } else {
                            self.finished_tree(child).await?
                        });
                    }
                    if !full {
                        break;
                    }
                }
            }
            Ok(FinishedTree { job, children })
        })
    }

    /// The new job that runs `old` again, checked as a submit is (its type may have changed
    /// since); a conflict when `old` has not finished.
    fn retry_of(&self, old: &Job, now: Timestamp) -> Result<NewJob, Error> {
        if !old.status.is_terminal() {
            return Err(Error::Conflict {
                message: format!(
                    "job {} is {}; only a finished job can be retried (cancel it first)",
                    old.id, old.status
                ),
            });
        }
        let mut new_job = submission::validate(
            &self.engine.config,
            SubmitParams {
                job_type: old.job_type.clone(),
                input: old.input.clone(),
                queue: Some(old.queue.clone()),
                priority: Some(old.priority),
                run_at: None,
                max_attempts: Some(old.max_attempts),
                ..SubmitParams::default()
            },
            now,
        )?;
        new_job.retry_of = Some(old.id);
        new_job.owner = old.owner.clone();
        Ok(new_job)
    }

    pub async fn log(
        &self,
        access: Access,
        id: JobId,
        offset: u64,
        max_bytes: u64,
    ) -> Result<(Job, LogChunk), Error> {
        let job = self.job(access, id).await?;
        let chunk = self.engine.store.log_read(id, offset, max_bytes).await?;
        Ok((job, chunk))
    }

    pub async fn queues(&self) -> Result<Vec<QueueView>, Error> {
        let mut stats: HashMap<String, QueueStats> = self
            .engine
            .store
            .queue_stats(self.now())
            .await?
            .into_iter()
            .map(|stats| (stats.name.clone(), stats))
            .collect();
        Ok(self
            .engine
            .config
            .queues
            .iter()
            .map(|(name, config)| {
                let stats = stats.remove(name).unwrap_or_else(|| QueueStats {
                    name: name.clone(),
                    ..QueueStats::default()
                });
                QueueView {
                    name: name.clone(),
                    config: config.clone(),
                    stats,
                }
            })
            .collect())
    }

    /// `UnknownQueue` unless the configuration declares `queue`.
    fn declared_queue(&self, queue: &str) -> Result<(), Error> {
        if self.engine.config.queues.contains_key(queue) {
            return Ok(());
        }
        Err(Error::UnknownQueue {
            name: queue.to_string(),
            known: self.engine.config.queues.keys().cloned().collect(),
        })
    }

    /// A queue's history over `span` up to now, for its charts. Like the queue's counts, it
    /// covers every user's jobs and names none.
    pub async fn queue_history(
        &self,
        queue: &str,
        span: HistorySpan,
    ) -> Result<QueueHistory, Error> {
        self.declared_queue(queue)?;
        let window = span.window(self.now());
        let rows = self
            .engine
            .store
            .queue_history(queue, window, HISTORY_SAMPLE)
            .await?;
        Ok(QueueHistory::build(span, window, &rows))
    }

    /// A paused queue accepts jobs but starts none; running ones finish. Every user's jobs
    /// wait on a pause, so only an admin may pause.
    pub async fn set_queue_paused(
        &self,
        caller: &User,
        queue: &str,
        paused: bool,
    ) -> Result<QueueView, Error> {
        if caller.role != Role::Admin {
            return Err(Error::Forbidden {
                message: "only an admin may pause or resume a queue: every user's jobs wait on it"
                    .into(),
            });
        }
        self.declared_queue(queue)?;
        {
            let _serialized = self.engine.pause_lock.lock().await;
            self.engine.store.queue_set_paused(queue, paused).await?;
            self.engine.set_paused(queue, paused);
        }
        self.queues()
            .await?
            .into_iter()
            .find(|view| view.name == queue)
            .ok_or_else(|| Error::UnknownQueue {
                name: queue.to_string(),
                known: Vec::new(),
            })
    }

    /// Attempts of the queue running in this process right now.
    pub fn running_here(&self, queue: &str) -> u32 {
        self.engine.running_count(queue)
    }
}

/// `params` kept to the jobs `access` sees.
fn scoped(access: Access, params: JobListParams) -> JobListParams {
    match access.owner() {
        Some(owner) => JobListParams {
            owner: Some(owner),
            ..params
        },
        None => params,
    }
}
