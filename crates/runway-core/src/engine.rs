//! The engine: one dispatcher per queue, the attempts it runs, lease renewal and the sweep.
//!
//! Invariants:
//! - A dispatcher never runs more attempts of its queue than the queue's concurrency, and
//!   claims nothing while the queue is paused.
//! - A submit wakes the queue's dispatcher; nothing waits by polling for new jobs.
//! - Leases are renewed by one task for all attempts, independently of what the jobs do.
//! - Every attempt runs in its own task; a panic becomes a failed attempt, never a dead engine.
//!   A slot that panics outside its handler gives back its slot, and its job goes back to the
//!   queue when the lease it no longer renews runs out.

mod claim_times;
mod outcome_batch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::claim_times::ClaimTimes;
use self::outcome_batch::{OutcomeBatch, Stored};
use crate::artifacts;
use crate::bus::Bus;
use crate::clock::{Clock, Timestamp, ago};
use crate::config::{Config, JobRun, JobTypeConfig};
use crate::event::EventKind;
use crate::handler::{Handler, JobCtx};
use crate::job::{Job, JobId, JobStatus, Phase};
use crate::job_token::JobTokens;
use crate::report::Reporter;
use crate::runner::{CommandRun, RunResult, run_command};
use crate::spawn::Spawner;
use crate::stop::{StopReason, StopSignal};
use crate::store::{
    AttemptRef, JobClaimParams, JobFinishParams, LeaseState, Outcome, Store, TreeDeletion,
};

/// How long a panicked engine loop waits before it starts again: long enough not to spin on a
/// panic that repeats, short enough that jobs barely notice.
const LOOP_RESTART_DELAY: Duration = Duration::from_secs(1);
/// Panics of one loop within [`LOOP_PANIC_WINDOW`] that mean it will not recover.
const MAX_LOOP_PANICS: usize = 5;
const LOOP_PANIC_WINDOW: Duration = Duration::from_secs(60);
/// How often, and how far apart, an attempt's outcome is tried when the store fails.
const OUTCOME_TRIES: u32 = 8;
const OUTCOME_RETRY_FIRST: Duration = Duration::from_millis(50);
const OUTCOME_RETRY_MAX: Duration = Duration::from_secs(2);

/// A queue's live state in this process.
pub(crate) struct QueueRuntime {
    name: String,
    /// Most of the queue's jobs this server runs at once.
    concurrency: u32,
    /// Most of them running at once on every server sharing the store.
    queue_limit: u32,
    running: AtomicU32,
    paused: AtomicBool,
    wake: Notify,
    /// The outcomes of its slots, stored together when they end together.
    outcomes: OutcomeBatch,
}

struct RunningAttempt {
    attempt: AttemptRef,
    stop: Arc<StopSignal>,
}

/// Frees a slot when its task ends, also when it ends by a panic outside the handler (a
/// handler's own panic is caught in its runner): the queue gets the slot back, and the attempt
/// in flight leaves the running map, so its lease is no longer renewed and the sweep puts the
/// job back once it runs out, as for a server that died.
struct SlotRelease {
    engine: Arc<Engine>,
    queue: Arc<QueueRuntime>,
    /// The job and attempt the slot runs, between its start and its outcome.
    in_flight: Option<(JobId, u32)>,
}

impl Drop for SlotRelease {
    fn drop(&mut self) {
        if let Some((id, attempt)) = self.in_flight.take() {
            tracing::error!(job = %id, attempt, "a slot's task panicked; the job goes back to its queue once its lease runs out");
            let mut running = self
                .engine
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if running
                .get(&id)
                .is_some_and(|entry| entry.attempt.attempt == attempt)
            {
                running.remove(&id);
            }
        }
        self.queue.running.fetch_sub(1, Ordering::SeqCst);
        self.queue.wake.notify_one();
    }
}

pub(crate) struct Engine {
    pub(crate) store: Arc<dyn Store>,
    /// Where the store publishes what it committed.
    pub(crate) bus: Bus,
    pub(crate) config: Arc<Config>,
    pub(crate) clock: Arc<dyn Clock>,
    worker: String,
    queues: HashMap<String, Arc<QueueRuntime>>,
    type_names: Vec<String>,
    handlers: HashMap<String, Arc<dyn Handler>>,
    running: Mutex<HashMap<JobId, RunningAttempt>>,
    claim_times: ClaimTimes,
    /// Cancelled when shutdown begins: dispatchers stop claiming.
    stop_claiming: CancellationToken,
    /// Cancelled when an engine loop keeps panicking; `failure` says which and why.
    failed: CancellationToken,
    failure: OnceLock<String>,
    tracker: TaskTracker,
    run_dir: PathBuf,
    /// This server's data directory, canonical: `RUNWAY_DATA_DIR` of its commands, so that a
    /// restart recognises its own orphans and never another server's.
    data_dir: String,
    /// Serializes pause and resume, so the stored flag and the dispatcher's never disagree.
    pub(crate) pause_lock: tokio::sync::Mutex<()>,
    /// Issues the `RUNWAY_TOKEN` of command attempts; loaded at start.
    pub(crate) job_tokens: OnceLock<JobTokens>,
    /// The server's URL for commands (`RUNWAY_URL`), once it listens.
    pub(crate) url: OnceLock<String>,
}

impl Engine {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        bus: Bus,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        handlers: HashMap<String, Arc<dyn Handler>>,
        worker: String,
    ) -> Engine {
        let queues = config
            .queues
            .iter()
            .map(|(name, queue)| {
                let runtime = QueueRuntime {
                    name: name.clone(),
                    concurrency: queue.server_concurrency,
                    queue_limit: queue.concurrency,
                    running: AtomicU32::new(0),
                    paused: AtomicBool::new(false),
                    wake: Notify::new(),
                    outcomes: OutcomeBatch::default(),
                };
                (name.clone(), Arc::new(runtime))
            })
            .collect();
        // Absolute, so the paths commands get (RUNWAY_INPUT, RUNWAY_ARTIFACTS, RUNWAY_CHILDREN)
        // hold in a type's own `cwd` too, whatever directory the server started in.
        let data_dir = std::fs::canonicalize(&config.server.data_dir)
            .or_else(|_| std::path::absolute(&config.server.data_dir))
            .unwrap_or_else(|_| config.server.data_dir.clone());
        let run_dir = data_dir.join("run");
        let data_dir = data_dir.display().to_string();
        Engine {
            type_names: config.types.keys().cloned().collect(),
            store,
            bus,
            config,
            clock,
            worker,
            queues,
            handlers,
            running: Mutex::new(HashMap::new()),
            claim_times: ClaimTimes::default(),
            stop_claiming: CancellationToken::new(),
            failed: CancellationToken::new(),
            failure: OnceLock::new(),
            tracker: TaskTracker::new(),
            run_dir,
            data_dir,
            pause_lock: tokio::sync::Mutex::new(()),
            job_tokens: OnceLock::new(),
            url: OnceLock::new(),
        }
    }

    /// Recovers what a previous process left running, then starts the background tasks.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<(), crate::store::StoreError> {
        let tokens = JobTokens::load_or_create(&self.config.server.data_dir).map_err(|error| {
            crate::store::StoreError::Backend(format!(
                "cannot read or make the job token key: {error}"
            ))
        })?;
        let _ = self.job_tokens.set(tokens);
        for queue in self.queues.values() {
            let paused = self.store.queue_paused(&queue.name).await?;
            queue.paused.store(paused, Ordering::SeqCst);
        }
        // This process is the only one on its data directory (it is locked), so every attempt
        // still marked running by this server's workers belongs to a process that is gone. On
        // a store other servers share, theirs are left to their leases.
        let mut orphans = self.store.job_list_running().await?;
        if self.store.shared() {
            let server = crate::data_dir::server_id(&self.config.server.data_dir)
                .map_err(|error| crate::store::StoreError::Backend(error.to_string()))?;
            orphans.retain(|job| {
                job.worker
                    .as_deref()
                    .is_some_and(|worker| crate::data_dir::is_own_worker(&server, worker))
            });
        }
        if !orphans.is_empty() {
            tracing::info!(
                count = orphans.len(),
                "rescuing jobs left running by a stopped server"
            );
        }
        let mut never_started = Vec::new();
        let mut lost = Vec::new();
        for orphan in orphans {
            let found = crate::stop::end_orphaned_attempt(&self.data_dir, &orphan);
            if found > 0 {
                tracing::info!(job = %orphan.id, groups = found, "ended the processes a stopped server left running");
            }
            // A command attempt that never got as far as writing its input file (the last
            // step before the spawn), with no stored process and no live one, never started:
            // it goes back without counting, so a one-attempt job cannot fail without running.
            // The file is the test, not the pid, whose write may lag behind a short command.
            let began = self.input_path(&orphan).exists();
            if !began && orphan.pid.is_none() && found == 0 && self.runs_a_command(&orphan) {
                never_started.push(orphan);
            } else {
                lost.push(orphan);
            }
        }
        self.hand_back(never_started).await;
        self.rescue(lost, "the server stopped while it ran", false)
            .await;
        if self.store.shared() {
            let ended = crate::stop::end_every_orphan(&self.data_dir);
            if ended > 0 {
                tracing::info!(
                    groups = ended,
                    "ended the processes this server left running before it stopped"
                );
            }
        }
        // Input files of attempts that a stopped server left behind.
        let _ = tokio::fs::remove_dir_all(&self.run_dir).await;
        // Inputs may hold secrets: only the server's user can read them.
        let created = tokio::fs::create_dir_all(&self.run_dir).await.and(
            tokio::fs::set_permissions(
                &self.run_dir,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .await,
        );
        created.map_err(|error| {
            crate::store::StoreError::Backend(format!(
                "cannot create {}: {error}",
                self.run_dir.display()
            ))
        })?;
        let root = self.artifacts_root();
        let created = tokio::fs::create_dir_all(&root).await.and(
            tokio::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .await,
        );
        created.map_err(|error| {
            crate::store::StoreError::Backend(format!("cannot create {}: {error}", root.display()))
        })?;

        for queue in self.queues.values() {
            let queue = Arc::clone(queue);
            self.supervise("dispatcher", move |engine| {
                engine.dispatch(Arc::clone(&queue))
            });
        }
        self.supervise("lease renewal", Engine::renew_leases);
        self.supervise("change follower", Engine::follow_changes);
        self.supervise("sweep", Engine::sweep);
        Ok(())
    }

    /// Runs one of the engine's own loops in its own task. A panic there is logged and the
    /// loop started again after [`LOOP_RESTART_DELAY`], so the server never keeps running
    /// without dispatching, renewing leases or sweeping. A loop that panics
    /// [`MAX_LOOP_PANICS`] times within [`LOOP_PANIC_WINDOW`] is broken for good: the engine
    /// reports itself failed ([`Engine::failed`]) and the server stops. A loop that returns has
    /// finished (shutdown) and is not restarted.
    fn supervise<Loop, Run>(self: &Arc<Self>, name: &'static str, start_loop: Loop)
    where
        Loop: Fn(Arc<Engine>) -> Run + Send + 'static,
        Run: std::future::Future<Output = ()> + Send + 'static,
    {
        let engine = Arc::clone(self);
        self.tracker.spawn(async move {
            let mut panics: Vec<tokio::time::Instant> = Vec::new();
            loop {
                let run = tokio::spawn(start_loop(Arc::clone(&engine)));
                let Err(error) = run.await else {
                    return;
                };
                let message = panic_message(error);
                let now = tokio::time::Instant::now();
                panics.retain(|at| now.duration_since(*at) < LOOP_PANIC_WINDOW);
                panics.push(now);
                if panics.len() >= MAX_LOOP_PANICS {
                    let failure = format!(
                        "the engine's {name} panicked {} times within {}s, last with: {message}",
                        panics.len(),
                        LOOP_PANIC_WINDOW.as_secs()
                    );
                    tracing::error!(task = name, "{failure}; stopping");
                    engine.fail(failure);
                    return;
                }
                tracing::error!(task = name, %message, "an engine loop panicked; starting it again");
                tokio::time::sleep(LOOP_RESTART_DELAY).await;
            }
        });
    }

    /// Marks the engine as broken beyond repair; the first failure is kept.
    fn fail(&self, failure: String) {
        if self.failure.set(failure).is_ok() {
            self.failed.cancel();
        }
    }

    /// Waits until the engine fails for good, and says why.
    pub(crate) async fn failed(&self) -> String {
        self.failed.cancelled().await;
        self.failure().unwrap_or_default()
    }

    /// Why the engine failed for good, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.get().cloned()
    }

    pub(crate) fn wake(&self, queue: &str) {
        if let Some(queue) = self.queues.get(queue) {
            queue.wake.notify_one();
        }
    }

    pub(crate) fn set_paused(&self, queue: &str, paused: bool) {
        if let Some(runtime) = self.queues.get(queue) {
            runtime.paused.store(paused, Ordering::SeqCst);
            runtime.wake.notify_one();
        }
    }

    pub(crate) fn running_count(&self, queue: &str) -> u32 {
        self.queues
            .get(queue)
            .map_or(0, |queue| queue.running.load(Ordering::SeqCst))
    }

    /// Stops a running attempt of this process, if it holds one for the job.
    pub(crate) fn stop_attempt(&self, id: JobId, reason: StopReason) -> bool {
        let running = self
            .running
            .lock()
            .expect("running map lock is never poisoned");
        match running.get(&id) {
            Some(attempt) => {
                attempt.stop.request(reason);
                true
            }
            None => false,
        }
    }

    /// Stops claiming, lets running attempts finish within the grace period, then hands the
    /// rest back to the queue.
    pub(crate) async fn shutdown(&self) {
        self.stop_claiming.cancel();
        for queue in self.queues.values() {
            queue.wake.notify_one();
        }
        self.tracker.close();
        let grace = self.config.server.shutdown_grace;
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            let stops: Vec<Arc<StopSignal>> = {
                let running = self
                    .running
                    .lock()
                    .expect("running map lock is never poisoned");
                running
                    .values()
                    .map(|attempt| Arc::clone(&attempt.stop))
                    .collect()
            };
            tracing::info!(
                count = stops.len(),
                "handing back jobs still running at shutdown"
            );
            for stop in stops {
                stop.request(StopReason::Shutdown);
            }
            let bound = self.config.server.kill_grace + Duration::from_secs(5);
            if tokio::time::timeout(bound, self.tracker.wait())
                .await
                .is_err()
            {
                // A handler that ignores its stop token: its lease runs out and the next
                // start rescues its job.
                tracing::warn!(
                    "some attempts did not stop; their jobs are rescued at the next start"
                );
            }
        }
    }

    async fn dispatch(self: Arc<Self>, queue: Arc<QueueRuntime>) {
        // Claims that failed in a way that may have committed them: the next claim answers the
        // jobs they took first.
        let mut unanswered: Vec<Timestamp> = Vec::new();
        loop {
            let woken = queue.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.stop_claiming.is_cancelled() {
                return;
            }
            let mut sleep_until: Option<Timestamp> = None;
            if !queue.paused.load(Ordering::SeqCst) {
                let free = queue
                    .concurrency
                    .saturating_sub(queue.running.load(Ordering::SeqCst));
                if free > 0 {
                    let mut claim = self.claim_params(&queue, free);
                    let now = claim.now;
                    // Past its lease, a lost claim's jobs are the sweep's to put back.
                    unanswered.retain(|at| *at + self.lease() > now);
                    claim.unanswered = unanswered.clone();
                    match self.store.job_claim(claim).await {
                        Ok(jobs) => {
                            unanswered.clear();
                            let jobs = self.not_running_here(jobs);
                            let claimed = jobs.len() as u32;
                            for job in jobs {
                                self.start_attempt(&queue, job);
                            }
                            if claimed == free {
                                continue;
                            }
                            match self
                                .store
                                .job_next_run_at(&queue.name, &self.type_names)
                                .await
                            {
                                Ok(next) => sleep_until = next,
                                Err(error) => {
                                    tracing::error!(queue = %queue.name, %error, "cannot read the next run time");
                                    sleep_until = Some(now + chrono::Duration::seconds(1));
                                }
                            }
                        }
                        Err(error) => {
                            tracing::error!(queue = %queue.name, %error, "cannot claim jobs; trying again in 1s");
                            if error.is_transient() {
                                unanswered.push(now);
                            }
                            sleep_until = Some(self.clock.now() + chrono::Duration::seconds(1));
                        }
                    }
                }
            }
            let sleep = async {
                match sleep_until {
                    Some(at) => {
                        let wait = (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                        tokio::time::sleep(wait).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = woken => {}
                () = sleep => {}
                () = self.stop_claiming.cancelled() => return,
            }
        }
    }

    /// A claim of up to `limit` of the queue's jobs for this server, made now (at a time no
    /// other claim of this engine has) with a fresh lease.
    fn claim_params(&self, queue: &QueueRuntime, limit: u32) -> JobClaimParams {
        let now = self.claim_times.next(self.clock.now());
        JobClaimParams {
            queue: queue.name.clone(),
            job_types: self.type_names.clone(),
            limit,
            queue_limit: queue.queue_limit,
            worker: self.worker.clone(),
            now,
            lease_until: now + self.lease(),
            unanswered: Vec::new(),
        }
    }

    /// Whether the queue starts jobs now: not paused, and the server not shutting down.
    fn takes_jobs(&self, queue: &QueueRuntime) -> bool {
        !self.stop_claiming.is_cancelled() && !queue.paused.load(Ordering::SeqCst)
    }

    /// Claimed jobs, less any already running in a slot here (a claim answered twice).
    fn not_running_here(&self, jobs: Vec<Job>) -> Vec<Job> {
        let running = self
            .running
            .lock()
            .expect("running map lock is never poisoned");
        jobs.into_iter()
            .filter(|job| {
                let here = running
                    .get(&job.id)
                    .is_some_and(|entry| entry.attempt.attempt == job.attempt);
                if here {
                    tracing::warn!(job = %job.id, "a claim answered a job already running here");
                }
                !here
            })
            .collect()
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.server.lease).expect("lease fits in chrono")
    }

    /// Takes a slot of the queue for `job`. The slot runs attempts one after the other: when
    /// one ends, its outcome and the claim of the next due job share one write, so a busy queue
    /// costs one transaction per job and no round trip through the dispatcher.
    fn start_attempt(self: &Arc<Self>, queue: &Arc<QueueRuntime>, job: Job) {
        queue.running.fetch_add(1, Ordering::SeqCst);
        let engine = Arc::clone(self);
        let queue = Arc::clone(queue);
        self.tracker.spawn(async move {
            let mut slot = SlotRelease {
                engine: Arc::clone(&engine),
                queue: Arc::clone(&queue),
                in_flight: None,
            };
            let mut next = Some(job);
            while let Some(job) = next.take() {
                observe_wait(&job);
                slot.in_flight = Some((job.id, job.attempt));
                next = engine.run_in_slot(&queue, job).await;
                slot.in_flight = None;
            }
        });
    }

    /// Runs one attempt to its end and returns the job claimed for the slot next, if any.
    async fn run_in_slot(self: &Arc<Self>, queue: &QueueRuntime, job: Job) -> Option<Job> {
        let attempt = AttemptRef {
            id: job.id,
            attempt: job.attempt,
            worker: self.worker.clone(),
        };
        let stop = Arc::new(StopSignal::default());
        self.running
            .lock()
            .expect("running map lock is never poisoned")
            .insert(
                job.id,
                RunningAttempt {
                    attempt: attempt.clone(),
                    stop: Arc::clone(&stop),
                },
            );
        let job_id = job.id;
        let retries_left = job.attempts_left();
        let job_type = self.config.job_type(&job.job_type).cloned();
        let runner = tokio::spawn(Arc::clone(self).run_attempt(
            job,
            job_type.clone(),
            attempt.clone(),
            Arc::clone(&stop),
        ));
        let result = match runner.await {
            Ok(result) => result,
            Err(error) => {
                let message = panic_message(error);
                tracing::error!(job = %job_id, %message, "a job's runner panicked");
                RunResult::Failed {
                    error: format!("runner panicked: {message}"),
                    output: None,
                }
            }
        };
        let next = self
            .finish(&attempt, retries_left, job_type.as_ref(), result, queue)
            .await;
        let mut running = self
            .running
            .lock()
            .expect("running map lock is never poisoned");
        // Only this attempt's entry: never a newer attempt of the same job.
        if running
            .get(&job_id)
            .is_some_and(|entry| entry.attempt.attempt == attempt.attempt)
        {
            running.remove(&job_id);
        }
        next
    }

    async fn run_attempt(
        self: Arc<Self>,
        job: Job,
        job_type: Option<JobTypeConfig>,
        attempt: AttemptRef,
        stop: Arc<StopSignal>,
    ) -> RunResult {
        let Some(job_type) = job_type else {
            return RunResult::Failed {
                error: format!("job type `{}` is no longer declared", job.job_type),
                output: None,
            };
        };
        let attempt_ref = attempt.clone();
        let (reporter, report_writer) = Reporter::start(
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
            attempt,
            self.config.server.log_limit,
        );
        let result = match &job_type.run {
            JobRun::Handler { name } => match self.handlers.get(name) {
                Some(handler) => {
                    let ctx = JobCtx {
                        spawner: self.spawner(&attempt_ref, &job),
                        job,
                        stop: stop.token(),
                        reporter,
                    };
                    let work = handler.run(ctx);
                    self.run_handler(work, job_type.timeout, &stop).await
                }
                None => {
                    drop(reporter);
                    RunResult::Failed {
                        error: format!("no handler named `{name}` is registered"),
                        output: None,
                    }
                }
            },
            run => {
                let input_path = self.input_path(&job);
                let mut env = vec![("RUNWAY_PHASE".to_string(), job.phase.as_str().to_string())];
                let manifest = match job.phase {
                    Phase::Join => match self.write_manifest(&job).await {
                        Ok(path) => {
                            env.push(("RUNWAY_CHILDREN".into(), path.display().to_string()));
                            Some(path)
                        }
                        Err(error) => {
                            drop(reporter);
                            report_writer.finish().await;
                            return RunResult::Failed {
                                error,
                                output: None,
                            };
                        }
                    },
                    Phase::Run => None,
                };
                if let Some(tokens) = self.job_tokens.get() {
                    let token = tokens.issue(job.id, job.attempt, &attempt_ref.worker);
                    env.push(("RUNWAY_TOKEN".into(), token));
                }
                if let Some(url) = self.url.get() {
                    env.push(("RUNWAY_URL".into(), url.clone()));
                }
                let spawner = self.spawner(&attempt_ref, &job);
                let artifacts = self
                    .run_dir
                    .join(format!("{}-{}.artifacts", job.id, job.attempt));
                if let Err(error) = fresh_private_dir(&artifacts).await {
                    drop(reporter);
                    report_writer.finish().await;
                    return RunResult::Failed {
                        error: format!(
                            "cannot make the attempt's RUNWAY_ARTIFACTS directory: {error}"
                        ),
                        output: None,
                    };
                }
                env.push(("RUNWAY_ARTIFACTS".into(), artifacts.display().to_string()));
                let notes = reporter.clone();
                let result = run_command(CommandRun {
                    job,
                    run: run.clone(),
                    timeout: job_type.timeout,
                    kill_grace: self.config.server.kill_grace,
                    data_dir: self.data_dir.clone(),
                    input_path,
                    stop,
                    reporter,
                    env,
                    spawner,
                })
                .await;
                if let Some(path) = manifest {
                    let _ = tokio::fs::remove_file(path).await;
                }
                self.keep_artifacts(&attempt_ref, &artifacts, &notes, result)
                    .await
            }
        };
        // Everything the attempt logged is stored before its outcome is.
        report_writer.finish().await;
        result
    }

    /// Runs a handler's work to its end, its timeout, or its stop. A handler that does not
    /// return within `kill_grace` of a cancel or a shutdown is dropped where it waits, so
    /// cancel and shutdown work for every kind of attempt, not only for commands.
    async fn run_handler(
        &self,
        work: impl std::future::Future<Output = Result<Option<serde_json::Value>, String>>,
        timeout: Option<Duration>,
        stop: &StopSignal,
    ) -> RunResult {
        let abandoned = async {
            let reason = stop.stopped().await;
            tokio::time::sleep(self.config.server.kill_grace).await;
            reason
        };
        tokio::select! {
            result = work => handler_result(result, stop),
            limit = crate::runner::time_limit(timeout) => RunResult::Failed {
                error: crate::runner::timed_out(limit),
                output: None,
            },
            reason = abandoned => {
                tracing::warn!(?reason, "a handler ignored its stop token; it was dropped");
                RunResult::Stopped(reason)
            }
        }
    }

    /// Stores how an attempt ended and claims the slot's next job in the same write, shared
    /// with the queue's other slots that ended meanwhile.
    async fn finish(
        &self,
        attempt: &AttemptRef,
        retries_left: bool,
        job_type: Option<&JobTypeConfig>,
        result: RunResult,
        queue: &QueueRuntime,
    ) -> Option<Job> {
        let now = self.clock.now();
        let outcome = match result {
            RunResult::Succeeded { output } => Outcome::Succeeded { output },
            RunResult::Failed { error, output } => {
                let retry_at = retries_left.then(|| {
                    let backoff = job_type.map(|t| t.backoff).unwrap_or_default();
                    let delay = backoff.delay(attempt.attempt, rand::random::<f64>());
                    chrono::Duration::from_std(delay)
                        .ok()
                        .and_then(|delay| now.checked_add_signed(delay))
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                });
                Outcome::Failed {
                    error,
                    output,
                    retry_at,
                }
            }
            RunResult::Stopped(StopReason::Cancel) => Outcome::Cancelled {
                error: "cancelled by request".into(),
            },
            RunResult::Stopped(StopReason::Shutdown) => Outcome::HandedBack,
            RunResult::Stopped(StopReason::LeaseLost) => return None,
        };
        let requeued = matches!(
            outcome,
            Outcome::Failed {
                retry_at: Some(_),
                ..
            } | Outcome::HandedBack
        );
        let finished = JobFinishParams {
            attempt: attempt.clone(),
            outcome,
            now,
        };
        let stored = queue
            .outcomes
            .store(finished, |batch| self.store_outcomes(queue, batch))
            .await;
        match stored.ended {
            Some(job) => {
                observe_end(&job);
                if requeued {
                    self.wake(&job.queue);
                }
            }
            None => tracing::warn!(
                job = %attempt.id,
                attempt = attempt.attempt,
                "the attempt's outcome was not stored (its lease was lost, or the store failed)"
            ),
        }
        stored.next
    }

    /// Writes a batch of a queue's outcomes and claims a next job for each of their slots,
    /// in one write. A database that is restarting refuses writes for a moment: the batch is
    /// tried again while the leases (renewed meanwhile) hold, so no job need run again.
    async fn store_outcomes(
        &self,
        queue: &QueueRuntime,
        finished: Vec<JobFinishParams>,
    ) -> Vec<Stored> {
        let slots = finished.len() as u32;
        let mut next = self
            .takes_jobs(queue)
            .then(|| self.claim_params(queue, slots));
        let mut delay = OUTCOME_RETRY_FIRST;
        let mut tries = 1;
        let stored = loop {
            match self
                .store
                .job_finish_many_and_claim(finished.clone(), next.clone())
                .await
            {
                Err(error) if tries < OUTCOME_TRIES && error.is_transient() => {
                    tracing::warn!(queue = %queue.name, %error, "cannot store the outcomes of attempts yet; trying again");
                    // The failed write may have committed, its claim with it: the repeat
                    // answers the jobs claimed then, with a fresh lease, before it claims any
                    // more, and claims none more once the queue stopped taking jobs.
                    next = next.map(|lost| {
                        let mut again = self.claim_params(queue, lost.limit);
                        again.unanswered = lost.unanswered;
                        again.unanswered.push(lost.now);
                        if !self.takes_jobs(queue) {
                            again.queue_limit = 0;
                        }
                        again
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(OUTCOME_RETRY_MAX);
                    tries += 1;
                }
                stored => break stored,
            }
        };
        match stored {
            Ok((ended, claimed)) => {
                let mut claimed = self.not_running_here(claimed).into_iter();
                ended
                    .into_iter()
                    .map(|ended| Stored {
                        ended,
                        next: claimed.next(),
                    })
                    .collect()
            }
            Err(error) => {
                // The leases run out and the sweep puts the jobs back: nothing is lost.
                tracing::error!(queue = %queue.name, %error, "cannot store the outcomes of attempts");
                finished.iter().map(|_| Stored::default()).collect()
            }
        }
    }

    /// Acts on committed changes that others made: a job that became queued wakes its queue
    /// (a join, a cascade, a spawn), and a cancel requested for an attempt this process runs
    /// (a cancelled tree) stops it. A follower that falls behind wakes every queue.
    async fn follow_changes(self: Arc<Self>) {
        let mut changes = self.bus.subscribe();
        loop {
            let received = tokio::select! {
                received = changes.recv() => received,
                () = self.stop_claiming.cancelled() => return,
            };
            match received {
                Ok(batch) => {
                    for change in batch.iter() {
                        let crate::bus::Change::Job(change) = change else {
                            continue;
                        };
                        let ended_elsewhere = change.job.status.is_terminal()
                            && change.job.worker.as_deref() != Some(self.worker.as_str());
                        match (change.job.status, change.kind) {
                            (JobStatus::Queued, _) => self.wake(&change.job.queue),
                            // On a shared store another server's job ending frees room in the
                            // queue's concurrency, which this server may be waiting for.
                            _ if ended_elsewhere && self.store.shared() => {
                                self.wake(&change.job.queue)
                            }
                            (JobStatus::Running, EventKind::CancelRequested) => {
                                self.stop_attempt(change.job.id, StopReason::Cancel);
                            }
                            _ => {}
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for queue in self.queues.values() {
                        queue.wake.notify_one();
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn renew_leases(self: Arc<Self>) {
        let every = self.config.server.lease / 3;
        let mut next_renewal = tokio::time::Instant::now() + every;
        loop {
            // During shutdown, look often whether the last attempt has ended.
            let tick = if self.stop_claiming.is_cancelled() {
                Duration::from_millis(20)
            } else {
                every
            };
            tokio::select! {
                () = tokio::time::sleep_until(next_renewal.min(tokio::time::Instant::now() + tick)) => {}
                () = self.stop_claiming.cancelled(), if !self.stop_claiming.is_cancelled() => {}
            }
            if self.stop_claiming.is_cancelled()
                && self
                    .running
                    .lock()
                    .expect("running map lock is never poisoned")
                    .is_empty()
            {
                return;
            }
            if tokio::time::Instant::now() < next_renewal {
                continue;
            }
            next_renewal = tokio::time::Instant::now() + every;
            let attempts: Vec<(AttemptRef, Arc<StopSignal>)> = {
                let running = self
                    .running
                    .lock()
                    .expect("running map lock is never poisoned");
                running
                    .values()
                    .map(|attempt| (attempt.attempt.clone(), Arc::clone(&attempt.stop)))
                    .collect()
            };
            if attempts.is_empty() {
                continue;
            }
            let until = self.clock.now() + self.lease();
            let refs = attempts
                .iter()
                .map(|(attempt, _)| attempt.clone())
                .collect();
            match self.store.job_lease_renew(refs, until).await {
                Ok(states) => {
                    for ((_, stop), state) in attempts.iter().zip(states) {
                        match state {
                            LeaseState::Held => {}
                            LeaseState::CancelRequested => stop.request(StopReason::Cancel),
                            LeaseState::Lost => stop.request(StopReason::LeaseLost),
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "cannot renew leases"),
            }
        }
    }

    /// On a store other servers share: takes up a pause or resume made on another server,
    /// and wakes every queue, in case room freed elsewhere went unheard.
    async fn follow_other_servers(&self) {
        for queue in self.queues.values() {
            let _serialized = self.pause_lock.lock().await;
            match self.store.queue_paused(&queue.name).await {
                Ok(paused) if paused != queue.paused.load(Ordering::SeqCst) => {
                    self.set_paused(&queue.name, paused);
                }
                Ok(_) => queue.wake.notify_one(),
                Err(error) => {
                    tracing::error!(%error, queue = %queue.name, "cannot read whether the queue is paused")
                }
            }
        }
    }

    async fn sweep(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.server.sweep_interval) => {}
                () = self.stop_claiming.cancelled() => return,
            }
            let now = self.clock.now();
            match self.store.job_list_lease_expired(now).await {
                Ok(expired) => {
                    // An attempt this process still runs is renewed, not rescued (its lease
                    // can look expired after the machine slept).
                    let expired: Vec<Job> = {
                        let running = self
                            .running
                            .lock()
                            .expect("running map lock is never poisoned");
                        expired
                            .into_iter()
                            .filter(|job| {
                                running
                                    .get(&job.id)
                                    .is_none_or(|entry| entry.attempt.attempt != job.attempt)
                            })
                            .collect()
                    };
                    self.rescue(
                        expired,
                        "its lease ran out (the worker stopped renewing it)",
                        true,
                    )
                    .await
                }
                Err(error) => tracing::error!(%error, "cannot list expired leases"),
            }
            let retention = &self.config.server;
            let oldest = ago(now, retention.events_max_age);
            if let Err(error) = self
                .store
                .event_prune(oldest, retention.events_max_count)
                .await
            {
                tracing::error!(%error, "cannot prune old events");
            }
            if let Some(retention) = self.config.server.retention {
                self.prune(ago(now, retention)).await;
            }
            let keys_before = ago(now, self.config.server.idempotency_window);
            if let Err(error) = self.store.idempotency_key_prune(keys_before).await {
                tracing::error!(%error, "cannot prune old idempotency keys");
            }
            if self.store.shared() {
                self.follow_other_servers().await;
            }
            match self.store.job_promote_due(now).await {
                Ok(queues) => {
                    for queue in queues {
                        self.wake(&queue);
                    }
                }
                Err(error) => tracing::error!(%error, "cannot promote due jobs"),
            }
        }
    }

    /// Where kept artifacts live: the data directory's `artifacts/`.
    pub(crate) fn artifacts_root(&self) -> PathBuf {
        PathBuf::from(&self.data_dir).join("artifacts")
    }

    /// Keeps the files an attempt left in its `RUNWAY_ARTIFACTS` (see `artifacts`), unless it
    /// was stopped, and removes the directory. Over a quota, none is kept and a successful
    /// attempt fails with why.
    async fn keep_artifacts(
        &self,
        attempt: &AttemptRef,
        dir: &std::path::Path,
        notes: &Reporter,
        result: RunResult,
    ) -> RunResult {
        let result = self.keep_artifacts_in(attempt, dir, notes, result).await;
        // Most attempts leave nothing, and their empty directory is gone already (a stat says
        // so without a trip to the blocking pool).
        if dir.exists() {
            let dir = dir.to_path_buf();
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        }
        result
    }

    async fn keep_artifacts_in(
        &self,
        attempt: &AttemptRef,
        dir: &std::path::Path,
        notes: &Reporter,
        result: RunResult,
    ) -> RunResult {
        if matches!(result, RunResult::Stopped(_)) {
            return result;
        }
        // Most attempts leave nothing: removing the empty directory in place says so with one
        // syscall, without a trip to the blocking pool.
        match std::fs::remove_dir(dir) {
            Ok(()) => return result,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return result,
            Err(_) => {}
        }
        let limits = self.config.server.artifact_limits;
        let scanned = {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || {
                let found = artifacts::scan(&dir, limits.max_files)?;
                if found.files.is_empty() && found.skipped.is_empty() {
                    std::fs::remove_dir(&dir)?;
                }
                Ok::<_, std::io::Error>(found)
            })
            .await
        };
        let found = match scanned {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                notes
                    .note(&format!("[runway: cannot read RUNWAY_ARTIFACTS: {error}]"))
                    .await;
                return result;
            }
            Err(panic) => {
                notes
                    .note(&format!(
                        "[runway: reading RUNWAY_ARTIFACTS failed: {panic}]"
                    ))
                    .await;
                return result;
            }
        };
        if !found.skipped.is_empty() {
            notes
                .note(&format!(
                    "[runway: not kept from RUNWAY_ARTIFACTS: {}]",
                    found.skipped.join("; ")
                ))
                .await;
        }
        if found.files.is_empty() {
            return result;
        }
        let usage = async {
            // What the job keeps, less the files of the same names this attempt replaces.
            let kept = self.store.artifact_list(attempt.id).await?;
            let all = self.store.artifact_usage(None).await?;
            let replaced: u64 = kept
                .iter()
                .filter(|artifact| found.files.iter().any(|file| file.name == artifact.name))
                .map(|artifact| artifact.size)
                .sum();
            let job = crate::store::ArtifactUsage {
                files: kept.len() as u64,
                bytes: kept.iter().map(|artifact| artifact.size).sum::<u64>() - replaced,
            };
            let all = crate::store::ArtifactUsage {
                files: all.files,
                bytes: all.bytes.saturating_sub(replaced),
            };
            Ok::<_, crate::store::StoreError>((job, all))
        };
        let refusal = match usage.await {
            Ok((job, all)) => artifacts::over_quota(&found, job, all, limits),
            Err(error) => Some(format!("cannot read how much artifacts take: {error}")),
        };
        if let Some(reason) = refusal {
            notes
                .note(&format!(
                    "[runway: no artifact of this attempt was kept: {reason}]"
                ))
                .await;
            return fail_with(result, reason);
        }
        let root = self.artifacts_root();
        let (id, number, now) = (attempt.id, attempt.attempt, self.clock.now());
        let kept = tokio::task::spawn_blocking(move || {
            artifacts::keep(found.files, &root, id, number, now)
        })
        .await;
        let (kept, refused) = match kept {
            Ok(Ok(kept)) => kept,
            Ok(Err(error)) => {
                return fail_with(result, format!("cannot keep the artifacts: {error}"));
            }
            Err(panic) => {
                return fail_with(result, format!("keeping the artifacts failed: {panic}"));
            }
        };
        if !refused.is_empty() {
            notes
                .note(&format!("[runway: not kept: {}]", refused.join("; ")))
                .await;
        }
        let paths: Vec<String> = kept.iter().map(|artifact| artifact.path.clone()).collect();
        match self.store.artifact_record(attempt.clone(), kept).await {
            Ok(Some(unreferenced)) => {
                self.remove_artifact_files(unreferenced).await;
                result
            }
            Ok(None) => {
                // The attempt is stale: its outcome will not be stored either.
                self.remove_artifact_files(paths).await;
                result
            }
            Err(error) => {
                self.remove_artifact_files(paths).await;
                fail_with(result, format!("cannot record the artifacts: {error}"))
            }
        }
    }

    /// Deletes finished trees whose root finished before `before`, a bounded number per
    /// sweep, with their artifacts, and says what went.
    async fn prune(&self, before: Timestamp) {
        const PER_SWEEP: u32 = 100;
        match self.store.job_prune(before, PER_SWEEP).await {
            Ok(deleted) if !deleted.is_empty() => {
                let trees = deleted.len();
                let mut jobs = 0;
                let mut files = Vec::new();
                let mut directories = Vec::new();
                for deletion in deleted {
                    if let TreeDeletion::Deleted {
                        jobs: gone,
                        unreferenced,
                        directories: free,
                    } = deletion
                    {
                        jobs += gone.len();
                        files.extend(unreferenced);
                        directories.extend(free);
                    }
                }
                tracing::info!(
                    trees,
                    jobs,
                    artifact_files = files.len(),
                    finished_before = %before,
                    "pruned finished jobs past their retention"
                );
                self.remove_artifact_files(files).await;
                self.remove_artifact_directories(directories).await;
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "cannot prune finished jobs"),
        }
    }

    /// Removes artifact files (paths relative to `artifacts/`) and the directories they leave
    /// empty.
    pub(crate) async fn remove_artifact_files(&self, paths: Vec<String>) {
        if paths.is_empty() {
            return;
        }
        let root = self.artifacts_root();
        let removed = tokio::task::spawn_blocking(move || {
            for path in paths {
                let file = root.join(&path);
                if let Err(error) = std::fs::remove_file(&file)
                    && error.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(file = %file.display(), %error, "cannot remove an artifact");
                }
                let mut dir = file.parent();
                while let Some(path) = dir {
                    if path == root || std::fs::remove_dir(path).is_err() {
                        break;
                    }
                    dir = path.parent();
                }
            }
        })
        .await;
        if let Err(panic) = removed {
            tracing::error!(%panic, "removing artifacts failed");
        }
    }

    /// Removes whole directories below `artifacts/` (a deleted job's, named by no artifact).
    pub(crate) async fn remove_artifact_directories(&self, directories: Vec<String>) {
        if directories.is_empty() {
            return;
        }
        let root = self.artifacts_root();
        let removed = tokio::task::spawn_blocking(move || {
            for directory in directories {
                let path = root.join(&directory);
                if let Err(error) = std::fs::remove_dir_all(&path)
                    && error.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(directory = %path.display(), %error, "cannot remove a deleted job's artifacts");
                }
            }
        })
        .await;
        if let Err(panic) = removed {
            tracing::error!(%panic, "removing artifacts failed");
        }
    }

    /// Spawns children under the running `attempt` of `job`.
    pub(crate) fn spawner(&self, attempt: &AttemptRef, job: &Job) -> Spawner {
        Spawner {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            clock: Arc::clone(&self.clock),
            attempt: attempt.clone(),
            depth: job.depth,
            owner: job.owner.clone(),
        }
    }

    /// Writes the manifest of a join (`RUNWAY_CHILDREN`): every child of `job` with its key,
    /// type, status, output and error, in the order they were made.
    async fn write_manifest(&self, job: &Job) -> Result<PathBuf, String> {
        const PAGE: u32 = 1000;
        let mut files: HashMap<JobId, Vec<serde_json::Value>> = HashMap::new();
        let artifacts = self
            .store
            .artifact_list_children(job.id)
            .await
            .map_err(|error| {
                format!("cannot read the children's artifacts for the join: {error}")
            })?;
        let root = self.artifacts_root();
        for artifact in artifacts {
            files
                .entry(artifact.job)
                .or_default()
                .push(serde_json::json!({
                    "name": artifact.name,
                    "size": artifact.size,
                    "content_type": artifact.content_type,
                    "sha256": artifact.sha256,
                    "path": root.join(&artifact.path).display().to_string(),
                }));
        }
        let mut children = Vec::with_capacity(job.children.total as usize);
        let mut after = None;
        loop {
            let page = self
                .store
                .job_children(job.id, after, PAGE)
                .await
                .map_err(|error| format!("cannot read the children for the join: {error}"))?;
            after = page.last().map(|child| child.id);
            let full = page.len() == PAGE as usize;
            children.extend(page.into_iter().map(|child| {
                serde_json::json!({
                    "id": child.id.to_string(),
                    "key": child.key,
                    "type": child.job_type,
                    "status": child.status,
                    "output": child.output,
                    "error": child.error,
                    "artifacts": files.remove(&child.id).unwrap_or_default(),
                })
            }));
            if !full {
                break;
            }
        }
        let manifest = serde_json::json!({"parent": job.id.to_string(), "children": children});
        let path = self
            .run_dir
            .join(format!("{}-{}.children.json", job.id, job.attempt));
        let text = serde_json::to_vec_pretty(&manifest).expect("a JSON value always serializes");
        tokio::fs::write(&path, text).await.map_err(|error| {
            format!("cannot write the children's manifest for the join: {error}")
        })?;
        Ok(path)
    }

    /// Where an attempt's input file goes (`RUNWAY_INPUT`): written just before the command is
    /// spawned, removed after it ends, so one left behind shows the attempt began.
    fn input_path(&self, job: &Job) -> PathBuf {
        self.run_dir
            .join(format!("{}-{}.input.json", job.id, job.attempt))
    }

    fn runs_a_command(&self, job: &Job) -> bool {
        self.config
            .job_type(&job.job_type)
            .is_some_and(|job_type| !matches!(job_type.run, JobRun::Handler { .. }))
    }

    /// Puts attempts that never began back in their queue without counting them.
    async fn hand_back(&self, jobs: Vec<Job>) {
        self.end_orphans(jobs, "hand back jobs that never started", |_| {
            Outcome::HandedBack
        })
        .await;
    }

    /// Puts attempts whose runner is gone back in their queue, or fails them when their
    /// attempts are used up. The lost attempt counts. With `expired_only`, a lease renewed in
    /// the meantime wins.
    async fn rescue(&self, jobs: Vec<Job>, why: &str, expired_only: bool) {
        self.end_orphans(jobs, "rescue jobs", |job| {
            let requeue = job.attempts_left();
            let error = if requeue {
                format!("attempt {} was lost: {why}", job.phase_attempt())
            } else {
                format!(
                    "attempt {} of {} was lost: {why}; no attempts left. It may have run in \
                     part: retry it if that is safe, or give its type more max_attempts so \
                     that runway runs it again by itself",
                    job.phase_attempt(),
                    job.max_attempts
                )
            };
            Outcome::Rescued {
                error,
                requeue,
                expired_only,
            }
        })
        .await;
    }

    /// Ends the attempts of `jobs` that no runner holds any more with the outcome `decide`
    /// gives each, in one write, and wakes the queues they went back to.
    async fn end_orphans(&self, jobs: Vec<Job>, what: &str, decide: impl Fn(&Job) -> Outcome) {
        if jobs.is_empty() {
            return;
        }
        let now = self.clock.now();
        let params = jobs
            .iter()
            .map(|job| JobFinishParams {
                attempt: AttemptRef {
                    id: job.id,
                    attempt: job.attempt,
                    worker: job.worker.clone().unwrap_or_default(),
                },
                outcome: decide(job),
                now,
            })
            .collect();
        match self.store.job_finish_many(params).await {
            Ok(results) => {
                for job in results.into_iter().flatten() {
                    self.wake(&job.queue);
                }
            }
            Err(error) => tracing::error!(%error, "cannot {what}"),
        }
    }
}

/// An empty directory readable by the server's user only, whatever was there before: one
/// trip to the blocking pool.
async fn fresh_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let create = |dir: &std::path::Path| std::fs::DirBuilder::new().mode(0o700).create(dir);
    // One mkdir on the data directory's disk, in place: a trip to the blocking pool costs
    // about a millisecond when attempts keep the cores busy. Only a leftover of an earlier
    // start, which may be large, is removed on the blocking pool.
    match create(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || {
                std::fs::remove_dir_all(&dir)?;
                create(&dir)
            })
            .await
            .map_err(std::io::Error::other)?
        }
        other => other,
    }
}

/// A successful attempt failed for `reason`; a failed one keeps its own error.
fn fail_with(result: RunResult, reason: String) -> RunResult {
    match result {
        RunResult::Succeeded { output } => RunResult::Failed {
            error: reason,
            output,
        },
        other => other,
    }
}

fn handler_result(
    result: Result<Option<serde_json::Value>, String>,
    stop: &StopSignal,
) -> RunResult {
    if let Some(reason) = stop.reason() {
        return RunResult::Stopped(reason);
    }
    match result {
        Ok(output) => RunResult::Succeeded { output },
        Err(error) => RunResult::Failed {
            error,
            output: None,
        },
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return "the runner task was cancelled".into();
    }
    let payload = error.into_panic();
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".into()
    }
}

/// How long a job waited from due to started: `runway_job_wait_seconds`.
fn observe_wait(job: &Job) {
    if let Some(started) = job.started_at {
        let waited = (started - job.run_at).to_std().unwrap_or_default();
        metrics::histogram!("runway_job_wait_seconds", "queue" => job.queue.clone())
            .record(waited.as_secs_f64());
    }
}

/// How long an attempt ran, by how it ended: `runway_job_run_seconds`.
fn observe_end(job: &Job) {
    if let (Some(started), Some(finished)) = (job.started_at, job.finished_at) {
        let ran = (finished - started).to_std().unwrap_or_default();
        metrics::histogram!(
            "runway_job_run_seconds",
            "queue" => job.queue.clone(),
            "type" => job.job_type.clone(),
            "status" => job.status.as_str(),
        )
        .record(ran.as_secs_f64());
    }
}
