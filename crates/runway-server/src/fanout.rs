//! Live fan-out. One task hears every committed change and, at most once per
//! `server.live_tick`, turns what came in into one frame per distinct subscription (an
//! [`Audience`]): encoded once, shared by every client that holds the same subscription. A
//! client's task only writes the frames it is handed; its cost is one write per frame, however
//! many changes a frame holds and however many clients watch.
//!
//! Each audience has a bounded channel of frames. A client that falls behind it is not waited
//! for: it joins again and catches up from the store with [`Replay`], which sends the latest
//! change of each job in the range it missed (a coalesced frame), then goes on live with no gap
//! and no duplicate.
//!
//! Frames hold only durable changes: before a frame goes out, the store makes every change it
//! holds survive a power cut, so a seq a client was sent is never handed out again after a
//! restart. The store's writer and the engine never wait for this task.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use runway_api::LogUpdate;
use runway_core::bus::{Change, JobChange, LogAppend};
use runway_core::event::EventKind;
use runway_core::store::StoreError;
use runway_core::{App, Job, JobId, JobStatus};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::convert::job_update;
use crate::live::Filter;
use crate::live_runtime::LiveRuntime;

/// Frames kept per audience for clients that are briefly slow; past this they catch up from
/// the store.
const AUDIENCE_CAPACITY: usize = 32;
/// Most changes in one frame; more are split over frames of consecutive ranges.
const MAX_FRAME_CHANGES: usize = 1000;
/// A frame stops taking changes or log text past this many bytes.
const MAX_FRAME_BYTES: usize = 512 * 1024;
/// Stored changes read per query while catching up.
const REPLAY_PAGE: u32 = 1000;
/// Changes kept in memory after they went out, so clients catching up on a recent range (the
/// usual case: a burst outran them) read neither the store nor encode anything again.
const RECENT_CHANGES: usize = 20_000;
/// Wait before trying again when the store could not make changes durable.
const DURABLE_RETRY: Duration = Duration::from_millis(200);

/// Who a frame is for: it decides which changes a frame covers and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// `/v1/jobs/updates`: changes after which the job matches; with `logs`, the log text of
    /// the running jobs it covers.
    Feed { filter: Filter, logs: bool },
    /// A session's job list `key`: also the change that takes a job out of the filter, so the
    /// client can drop its row.
    List { key: String, filter: Filter },
    /// A session's one job `key`, with its log text when `log`.
    Job { key: String, id: JobId, log: bool },
}

impl Audience {
    /// Whether a live change goes to this audience.
    fn covers(&self, change: &JobChange) -> bool {
        match self {
            Audience::Feed { filter, .. } => filter.matches(&change.job),
            Audience::List { filter, .. } => filter.matches(&change.job) || leaves(filter, change),
            Audience::Job { id, .. } => change.job.id == *id,
        }
    }

    /// Whether a stored change, read back while catching up, goes to this audience. A stored
    /// change does not know the status before it: a list gets every change of the jobs it
    /// covers whatever their status, and drops the rows that no longer match.
    fn covers_stored(&self, change: &JobChange) -> bool {
        match self {
            Audience::List { filter, .. } => filter.matches_any_status(&change.job),
            _ => self.covers(change),
        }
    }

    /// Whether log text of job `id` (its latest known state `job`) goes to this audience.
    fn covers_log(&self, id: JobId, job: Option<&Arc<Job>>) -> bool {
        match self {
            Audience::Feed { filter, logs: true } => {
                filter.job == Some(id) || job.is_some_and(|job| filter.matches(job))
            }
            Audience::Job {
                id: wanted, log, ..
            } => *log && *wanted == id,
            _ => false,
        }
    }

    fn key(&self) -> Option<&str> {
        match self {
            Audience::Feed { .. } => None,
            Audience::List { key, .. } | Audience::Job { key, .. } => Some(key),
        }
    }
}

/// A change that may take a job out of a list filtered by status: the job matches all of the
/// filter but the status, and before the change it had one of the filter's statuses (or its
/// status before is not known).
fn leaves(filter: &Filter, change: &JobChange) -> bool {
    if filter.statuses.is_empty() {
        return false;
    }
    let was_listed = match change.previous {
        Some(previous) => filter.statuses.contains(&previous),
        None => change.kind != EventKind::Submitted,
    };
    was_listed && filter.matches_any_status(&change.job)
}

/// One encoded frame, shared by every client of its audience.
#[derive(Debug)]
pub struct Frame {
    pub after: i64,
    pub upto: i64,
    /// The whole WebSocket message.
    pub text: Utf8Bytes,
}

/// A change as a JSON object of `runway_api::JobUpdate`, encoded once for every frame that
/// carries it.
fn encoded(change: &JobChange) -> Arc<str> {
    Arc::clone(change.encoded.get_or_init(|| {
        Arc::from(serde_json::to_string(&job_update(change)).expect("job updates serialize"))
    }))
}

/// A frame's message, written as serde writes `runway_api::session::ServerMessage::Frame` or
/// `runway_api::FeedMessage::Frame`, around changes that are already encoded.
fn encode_frame(
    audience: &Audience,
    after: i64,
    upto: i64,
    coalesced: bool,
    jobs: &[Arc<str>],
    logs: &[LogUpdate],
) -> String {
    let size = jobs.iter().map(|job| job.len() + 1).sum::<usize>()
        + logs.iter().map(|log| log.data.len() + 64).sum::<usize>();
    let mut text = String::with_capacity(size + 128);
    text.push_str(r#"{"tag":"frame","#);
    if let Some(key) = audience.key() {
        text.push_str(r#""key":"#);
        text.push_str(&serde_json::to_string(key).expect("strings serialize"));
        text.push(',');
    }
    let _ = write!(
        text,
        r#""after":{after},"upto":{upto},"coalesced":{coalesced},"jobs":["#
    );
    for (index, job) in jobs.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(job);
    }
    text.push_str(r#"],"logs":"#);
    text.push_str(&serde_json::to_string(logs).expect("log updates serialize"));
    text.push('}');
    text
}

/// The frames of `changes` (all covered, oldest first) and `logs` over `after < seq <= upto`:
/// one, or several over consecutive ranges when they are large. None when both are empty.
fn frames(
    audience: &Audience,
    after: i64,
    upto: i64,
    coalesced: bool,
    changes: &[&JobChange],
    logs: Vec<LogUpdate>,
) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut push = |after: i64, upto: i64, jobs: &[Arc<str>], logs: &[LogUpdate]| {
        let text = encode_frame(audience, after, upto, coalesced, jobs, logs);
        frames.push(Frame {
            after,
            upto,
            text: text.into(),
        });
    };
    let mut start = after;
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for (index, change) in changes.iter().enumerate() {
        let json = encoded(change);
        bytes += json.len();
        chunk.push(json);
        let more = index + 1 < changes.len();
        if more && (chunk.len() >= MAX_FRAME_CHANGES || bytes >= MAX_FRAME_BYTES) {
            push(start, change.seq, &chunk, &[]);
            start = change.seq;
            chunk.clear();
            bytes = 0;
        }
    }
    // Log text rides on the last frame; a lot of it goes on in frames of no changes.
    let mut log_chunk = Vec::new();
    let mut log_bytes = 0;
    for log in logs {
        if !log_chunk.is_empty() && log_bytes + log.data.len() > MAX_FRAME_BYTES {
            push(start, upto, &chunk, &log_chunk);
            start = upto;
            chunk.clear();
            log_chunk.clear();
            log_bytes = 0;
        }
        log_bytes += log.data.len();
        log_chunk.push(log);
    }
    if !chunk.is_empty() || !log_chunk.is_empty() {
        push(start, upto, &chunk, &log_chunk);
    }
    frames
}

fn log_update(log: &LogAppend) -> LogUpdate {
    LogUpdate {
        job_id: log.job_id.to_string(),
        offset: log.offset,
        data: log.data.to_string(),
        marks: crate::convert::log_marks(&log.marks),
    }
}

/// Where a client's frames come from, and the seq they start after.
pub struct Joined {
    pub frames: broadcast::Receiver<Arc<Frame>>,
    /// The first frame received covers changes after this; every change up to it is durable
    /// and readable from the store.
    pub position: i64,
}

/// Cheap to clone; every clone serves the same audiences.
#[derive(Clone)]
pub struct Fanout {
    hub: Arc<Mutex<Hub>>,
}

struct Hub {
    audiences: HashMap<Audience, broadcast::Sender<Arc<Frame>>>,
    /// Every change up to this seq went out in a frame (or was stored before the hub began).
    position: i64,
    /// The latest state of each running job: log text is routed by it.
    running: HashMap<JobId, Arc<Job>>,
    /// The newest changes that went out, oldest first (at most `RECENT_CHANGES`).
    recent: VecDeque<JobChange>,
}

impl Fanout {
    /// Starts the fan-out task on the live runtime; it ends with `shutdown`.
    pub async fn start(
        app: &App,
        live: &LiveRuntime,
        shutdown: CancellationToken,
    ) -> Result<Fanout, StoreError> {
        // Subscribed before reading where the store is: nothing committed in between is missed.
        let changes = app.subscribe();
        let position = app.last_seq().await?;
        let running = app
            .running_jobs()
            .await?
            .into_iter()
            .map(|job| (job.id, Arc::new(job)))
            .collect();
        let fanout = Fanout {
            hub: Arc::new(Mutex::new(Hub {
                audiences: HashMap::new(),
                position,
                running,
                recent: VecDeque::new(),
            })),
        };
        let tick = app.config().server.live_tick;
        live.spawn(run(fanout.clone(), app.clone(), changes, tick, shutdown));
        Ok(fanout)
    }

    /// A fan-out whose task reads from `source`, every change up to `position` already out.
    #[cfg(test)]
    fn with_source(
        source: impl Source,
        changes: broadcast::Receiver<runway_core::bus::Changes>,
        position: i64,
        tick: Duration,
        shutdown: CancellationToken,
    ) -> Fanout {
        let fanout = Fanout {
            hub: Arc::new(Mutex::new(Hub {
                audiences: HashMap::new(),
                position,
                running: HashMap::new(),
                recent: VecDeque::new(),
            })),
        };
        tokio::spawn(run(fanout.clone(), source, changes, tick, shutdown));
        fanout
    }

    /// Starts receiving the frames of `audience`.
    pub fn join(&self, audience: Audience) -> Joined {
        let mut hub = self.hub.lock().expect("the fan-out lock is never poisoned");
        let position = hub.position;
        let frames = hub
            .audiences
            .entry(audience)
            .or_insert_with(|| broadcast::channel(AUDIENCE_CAPACITY).0)
            .subscribe();
        Joined { frames, position }
    }

    /// Every change up to this seq was sent (and is durable).
    pub fn position(&self) -> i64 {
        self.hub
            .lock()
            .expect("the fan-out lock is never poisoned")
            .position
    }

    fn emit(&self, pending: &[Change]) {
        let mut hub = self.hub.lock().expect("the fan-out lock is never poisoned");
        let Hub {
            audiences,
            position,
            running,
            recent,
        } = &mut *hub;
        let after = *position;
        let mut jobs = Vec::new();
        let mut logs = Vec::new();
        for change in pending {
            match change {
                Change::Job(change) => jobs.push(change),
                Change::Log(log) => logs.push(log),
            }
        }
        let upto = jobs.last().map_or(after, |change| change.seq);
        let mut latest: HashMap<JobId, &Arc<Job>> = HashMap::new();
        for change in &jobs {
            latest.insert(change.job.id, &change.job);
        }
        audiences.retain(|audience, sender| {
            if sender.receiver_count() == 0 {
                return false;
            }
            let covered: Vec<&JobChange> = jobs
                .iter()
                .copied()
                .filter(|change| audience.covers(change))
                .collect();
            let logs: Vec<LogUpdate> = logs
                .iter()
                .filter(|log| {
                    let job = latest
                        .get(&log.job_id)
                        .copied()
                        .or_else(|| running.get(&log.job_id));
                    audience.covers_log(log.job_id, job)
                })
                .map(|log| log_update(log))
                .collect();
            for frame in frames(audience, after, upto, false, &covered, logs) {
                let _ = sender.send(Arc::new(frame));
            }
            true
        });
        for change in jobs {
            if change.job.status == JobStatus::Running {
                running.insert(change.job.id, Arc::clone(&change.job));
            } else {
                running.remove(&change.job.id);
            }
            if recent.len() == RECENT_CHANGES {
                recent.pop_front();
            }
            recent.push_back(change.clone());
        }
        *position = upto;
    }

    /// The changes in `after < seq <= upto`, if they are all still in memory.
    fn recent(&self, after: i64, upto: i64) -> Option<Vec<JobChange>> {
        let hub = self.hub.lock().expect("the fan-out lock is never poisoned");
        // Seqs are contiguous, so the window covers the range when it begins at or before its
        // first seq and the hub has sent everything up to its end.
        let first = hub.recent.front()?.seq;
        if first > after + 1 || hub.position < upto {
            return None;
        }
        let start = hub.recent.partition_point(|change| change.seq <= after);
        Some(
            hub.recent
                .range(start..)
                .take_while(|change| change.seq <= upto)
                .cloned()
                .collect(),
        )
    }

    /// Closes every audience's channel: their clients see the fan-out is gone.
    fn close(&self) {
        self.hub
            .lock()
            .expect("the fan-out lock is never poisoned")
            .audiences
            .clear();
    }
}

/// What the fan-out task needs of the store.
trait Source: Send + Sync + 'static {
    /// See [`Store::changes_make_durable`].
    fn make_durable(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`Store::job_changes_since`].
    fn changes_since(
        &self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<JobChange>, StoreError>> + Send;
}

impl Source for App {
    fn make_durable(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.changes_make_durable()
    }

    fn changes_since(
        &self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<JobChange>, StoreError>> + Send {
        App::changes_since(self, after, limit)
    }
}

/// The fan-out task: collects changes from the bus, and at most once per `tick` makes them
/// durable and sends them out as frames.
async fn run(
    fanout: Fanout,
    store: impl Source,
    mut changes: broadcast::Receiver<runway_core::bus::Changes>,
    tick: Duration,
    shutdown: CancellationToken,
) {
    let mut seen = fanout.position();
    let mut pending: Vec<Change> = Vec::new();
    let mut last_emit: Option<Instant> = None;
    loop {
        if pending.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => break,
                burst = changes.recv() => {
                    if !take(&store, burst, &mut pending, &mut seen).await {
                        break;
                    }
                    continue;
                }
            }
        }
        // The first changes after a quiet spell go out at once; under load, a tick's worth.
        if let Some(last) = last_emit {
            let due = last + tick;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        fanout.close();
                        return;
                    }
                    () = tokio::time::sleep_until(due) => break,
                    burst = changes.recv() => {
                        if !take(&store, burst, &mut pending, &mut seen).await {
                            fanout.close();
                            return;
                        }
                    }
                }
            }
        }
        loop {
            let burst = match changes.try_recv() {
                Ok(burst) => Ok(burst),
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Lagged(skipped)) => {
                    Err(RecvError::Lagged(skipped))
                }
                Err(broadcast::error::TryRecvError::Closed) => Err(RecvError::Closed),
            };
            if !take(&store, burst, &mut pending, &mut seen).await {
                fanout.close();
                return;
            }
        }
        if pending
            .iter()
            .any(|change| matches!(change, Change::Job(_)))
            && let Err(error) = store.make_durable().await
        {
            tracing::error!(%error, "cannot make changes durable; live clients wait");
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(DURABLE_RETRY) => continue,
            }
        }
        fanout.emit(&pending);
        pending.clear();
        last_emit = Some(Instant::now());
    }
    fanout.close();
}

/// Adds a burst from the bus to `pending`, skipping changes up to `seen`. When the bus outran
/// this task, the job changes it missed are read from the store (their log text is lost, as a
/// client of the log would see by its offsets). False when the bus is gone.
async fn take(
    store: &impl Source,
    burst: Result<runway_core::bus::Changes, RecvError>,
    pending: &mut Vec<Change>,
    seen: &mut i64,
) -> bool {
    match burst {
        Ok(burst) => {
            for change in burst.iter() {
                match change {
                    Change::Job(job) if job.seq <= *seen => {}
                    Change::Job(job) => {
                        *seen = job.seq;
                        pending.push(change.clone());
                    }
                    Change::Log(_) => pending.push(change.clone()),
                }
            }
            true
        }
        Err(RecvError::Lagged(_)) => {
            loop {
                match store.changes_since(*seen, REPLAY_PAGE).await {
                    Ok(stored) => {
                        let Some(last) = stored.last().map(|change| change.seq) else {
                            break;
                        };
                        *seen = last;
                        pending.extend(stored.into_iter().map(Change::Job));
                    }
                    Err(error) => {
                        tracing::error!(%error, "the live fan-out cannot read missed changes");
                        break;
                    }
                }
            }
            true
        }
        Err(RecvError::Closed) => false,
    }
}

/// Missed changes of an audience in `after < seq <= upto`, as coalesced frames: the latest
/// change of each job it covers. A recent range comes from the fan-out's memory, already
/// encoded; an older one from the store, a page at a time.
pub struct Replay {
    fanout: Fanout,
    audience: Audience,
    after: i64,
    upto: i64,
    ready: VecDeque<Frame>,
}

impl Replay {
    /// `lost` tells whether changes after `after` were already deleted by retention (the
    /// client must reload what it shows); the replay then begins at the oldest kept change.
    pub async fn start(
        app: &App,
        fanout: &Fanout,
        audience: Audience,
        after: i64,
        upto: i64,
    ) -> Result<(Replay, bool), StoreError> {
        let first_kept = app.first_kept_seq().await?;
        let lost = after < upto && first_kept.is_none_or(|first| first > after + 1);
        // After a loss the replay goes on from the oldest change still kept.
        let after = match first_kept {
            Some(first) if lost => (first - 1).min(upto),
            None if lost => upto,
            _ => after,
        };
        let replay = Replay {
            fanout: fanout.clone(),
            audience,
            after,
            upto,
            ready: VecDeque::new(),
        };
        Ok((replay, lost))
    }

    /// The next frame, `None` once `upto` is reached.
    pub async fn next(&mut self, app: &App) -> Result<Option<Frame>, StoreError> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame));
            }
            if self.after >= self.upto {
                return Ok(None);
            }
            let (changes, in_range, page_end) = match self.fanout.recent(self.after, self.upto) {
                Some(changes) => {
                    let count = changes.len();
                    (changes, count, self.upto)
                }
                None => {
                    let changes = app.changes_since(self.after, REPLAY_PAGE).await?;
                    let in_range = changes.partition_point(|change| change.seq <= self.upto);
                    let page_end = if in_range == REPLAY_PAGE as usize {
                        changes[in_range - 1].seq
                    } else {
                        // Past `upto`, or the store holds nothing more.
                        self.upto
                    };
                    (changes, in_range, page_end)
                }
            };
            let mut latest: HashMap<JobId, usize> = HashMap::new();
            for (index, change) in changes[..in_range].iter().enumerate() {
                if self.audience.covers_stored(change) {
                    latest.insert(change.job.id, index);
                }
            }
            let mut indexes: Vec<usize> = latest.into_values().collect();
            indexes.sort_unstable();
            let covered: Vec<&JobChange> = indexes.iter().map(|&index| &changes[index]).collect();
            self.ready.extend(frames(
                &self.audience,
                self.after,
                page_end,
                true,
                &covered,
                Vec::new(),
            ));
            self.after = page_end;
        }
    }
}

#[cfg(test)]
mod tests;
