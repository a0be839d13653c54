//! Publishes every committed change on the bus once, in `seq` order, whichever server made it.
//!
//! A write of this server hands its changes over right after its commit (exact: the job as it
//! was, the status before). Seqs follow commit order (see `event_clock`), so when this
//! server's seq N has committed every seq below N is committed and visible too: a gap before
//! it (another server's changes) is read from the events table and published first. Other
//! servers' commits are announced by `NOTIFY runway_changes` on a connection kept for
//! listening; a read every [`CATCH_UP_EVERY`] covers a notification lost while it reconnected.
//!
//! Log appends carry no seq; this server's are published as they commit. Other servers' are
//! announced on `runway_logs` (job, offset, size, and which server wrote them) and read back
//! from `job_logs`, one at a time in the order announced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use runway_core::bus::{Bus, Change, JobChange, LogAppend};
use runway_core::job::JobId;
use runway_core::store::Store;
use runway_core::store::StoreError;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::jobs::changes_since;
use crate::store::{PgStore, as_changes};

/// How often the follower reads new changes even when nothing announced any.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// Changes read from the database per query.
const PAGE: u32 = 1000;
/// Other servers' log appends waiting to be read, at most.
const LOG_BACKLOG: usize = 10_000;
/// The channel servers announce commits on.
pub(crate) const CHANNEL: &str = "runway_changes";
/// The channel servers announce log appends on.
const LOG_CHANNEL: &str = "runway_logs";

struct State {
    /// The newest seq published.
    published: i64,
    /// This server's committed changes waiting for the ones before them.
    waiting: BTreeMap<i64, JobChange>,
}

impl State {
    /// Moves the waiting changes that follow what was published to `ready`.
    fn take_following(&mut self, ready: &mut Vec<JobChange>) {
        while let Some(change) = self.waiting.remove(&(self.published + 1)) {
            self.published += 1;
            ready.push(change);
        }
    }
}

pub(crate) struct Follower {
    bus: Bus,
    state: Mutex<State>,
    wake: Notify,
    /// Names this store in the log announcements it makes, so it skips its own.
    pub(crate) origin: String,
    /// Other servers' log appends to read and publish.
    logs: tokio::sync::mpsc::Sender<LogAnnounced>,
}

/// A log append another server announced.
struct LogAnnounced {
    job: JobId,
    offset: u64,
    size: u64,
}

impl Follower {
    /// The follower and the receiving end of other servers' log appends, for [`follow_logs`].
    pub(crate) fn new(bus: Bus, published: i64) -> (Follower, LogReceiver) {
        let (logs, receiver) = tokio::sync::mpsc::channel(LOG_BACKLOG);
        let origin = format!("{:016x}", rand::random::<u64>());
        let follower = Follower {
            bus,
            state: Mutex::new(State {
                published,
                waiting: BTreeMap::new(),
            }),
            wake: Notify::new(),
            origin,
            logs,
        };
        (follower, LogReceiver(receiver))
    }

    /// A server announced a log append: `ORIGIN JOB OFFSET SIZE`.
    fn log_announced(&self, payload: &str) {
        let mut parts = payload.split(' ');
        let (Some(origin), Some(job), Some(offset), Some(size)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if origin == self.origin {
            return;
        }
        if let (Ok(job), Ok(offset), Ok(size)) = (job.parse(), offset.parse(), size.parse()) {
            // Past the backlog, live log text of other servers' jobs is left out (the stored
            // log is whole, and a page reads it when it opens): memory stays bounded.
            let _ = self.logs.try_send(LogAnnounced {
                job: JobId(job),
                offset,
                size,
            });
        }
    }

    /// This server committed `events` and `logs`.
    pub(crate) fn committed(&self, events: Vec<JobChange>, logs: Vec<LogAppend>) {
        if events.is_empty() && logs.is_empty() {
            return;
        }
        let mut state = self.state.lock().expect("follower lock is never poisoned");
        for event in events {
            if event.seq > state.published {
                state.waiting.insert(event.seq, event);
            }
        }
        let mut ready = Vec::new();
        state.take_following(&mut ready);
        let gap = !state.waiting.is_empty();
        // Published under the lock: the bus hears every seq in order.
        self.bus.publish(as_changes(ready, logs));
        drop(state);
        if gap {
            self.wake.notify_one();
        }
    }

    /// A server (this one too) announced its commit up to `seq`.
    fn announced(&self, seq: i64) {
        if seq > self.published() {
            self.wake.notify_one();
        }
    }

    /// Publishes what was committed up to seq `upto`: `read` (changes from the database,
    /// oldest first, none past `upto`) merged with this server's exact copies. A seq missing
    /// below `upto` was deleted (its tree, or the events' retention) and never comes.
    fn publish_read(&self, read: Vec<JobChange>, upto: i64) {
        let mut state = self.state.lock().expect("follower lock is never poisoned");
        let mut merged: BTreeMap<i64, JobChange> = read
            .into_iter()
            .filter(|change| change.seq > state.published && change.seq <= upto)
            .map(|change| (change.seq, change))
            .collect();
        let own: Vec<i64> = state.waiting.range(..=upto).map(|(seq, _)| *seq).collect();
        for seq in own {
            if let Some(change) = state.waiting.remove(&seq) {
                merged.insert(seq, change);
            }
        }
        state.published = state.published.max(upto);
        let mut ready: Vec<JobChange> = merged.into_values().collect();
        state.take_following(&mut ready);
        self.bus
            .publish(ready.into_iter().map(Change::Job).collect());
    }

    fn published(&self) -> i64 {
        self.state
            .lock()
            .expect("follower lock is never poisoned")
            .published
    }
}

/// Reads and publishes what other servers committed, for as long as the store lives: when a
/// commit is announced, when this server's own commit left a gap, and every
/// [`CATCH_UP_EVERY`].
pub(crate) async fn follow(store: PgStore) {
    let follower = Arc::clone(&store.follower);
    loop {
        tokio::select! {
            () = follower.wake.notified() => {}
            () = tokio::time::sleep(CATCH_UP_EVERY) => {}
        }
        if let Err(error) = catch_up(&store, &follower).await {
            tracing::warn!(%error, "cannot read the changes other servers made");
        }
    }
}

/// Publishes everything committed so far. The clock's row is read first: every seq up to its
/// committed value is then committed, so the events read after it hold all of them that
/// still exist.
async fn catch_up(store: &PgStore, follower: &Follower) -> Result<(), StoreError> {
    let committed = committed_seq(store).await?;
    loop {
        let read = changes_since(store, follower.published(), PAGE).await?;
        let full = read.len() == PAGE as usize;
        let upto = match read.last() {
            Some(last) if full => last.seq.min(committed),
            _ => committed,
        };
        let read: Vec<JobChange> = read
            .into_iter()
            .filter(|change| change.seq <= committed)
            .collect();
        follower.publish_read(read, upto);
        if !full || upto >= committed {
            return Ok(());
        }
    }
}

/// The newest seq handed out by a committed transaction.
async fn committed_seq(store: &PgStore) -> Result<i64, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_one("SELECT seq FROM event_clock", &[])
        .await
        .map_err(|error| StoreError::from(crate::store::PgError::from(error)))?;
    Ok(row.get(0))
}

/// Other servers' log appends, as announced.
pub(crate) struct LogReceiver(tokio::sync::mpsc::Receiver<LogAnnounced>);

/// Reads and publishes other servers' log appends in the order they were announced.
pub(crate) async fn follow_logs(store: PgStore, mut receiver: LogReceiver) {
    while let Some(announced) = receiver.0.recv().await {
        match store
            .log_read(announced.job, announced.offset, announced.size)
            .await
        {
            // Published only when the whole append is read: a log is never shown with a hole.
            Ok(chunk)
                if chunk.offset == announced.offset
                    && chunk.data.len() as u64 == announced.size =>
            {
                store.follower.bus.publish(vec![Change::Log(LogAppend {
                    job_id: announced.job,
                    offset: chunk.offset,
                    data: Arc::from(chunk.data),
                    marks: Arc::from(chunk.marks),
                })]);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read another server's log text"),
        }
    }
}

/// Listens for other servers' commits on a connection of its own, connecting again when it
/// is lost.
pub(crate) async fn listen(config: tokio_postgres::Config, follower: Arc<Follower>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |context| connection.poll_message(context));
                let sql = format!("LISTEN {CHANNEL}; LISTEN {LOG_CHANNEL}");
                let ready = {
                    // The connection must be polled for the LISTEN to be sent and answered.
                    let mut listening = std::pin::pin!(client.batch_execute(&sql));
                    loop {
                        tokio::select! {
                            result = &mut listening => break result.is_ok(),
                            message = messages.next() => if message.is_none() { break false },
                        }
                    }
                };
                if ready {
                    // Whatever was committed while no one listened.
                    follower.wake.notify_one();
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(notification))
                                if notification.channel() == LOG_CHANNEL =>
                            {
                                follower.log_announced(notification.payload());
                            }
                            Ok(AsyncMessage::Notification(notification)) => {
                                if let Ok(seq) = notification.payload().parse::<i64>() {
                                    follower.announced(seq);
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "lost the connection that listens for other servers' changes");
                                break;
                            }
                        }
                    }
                }
                drop(client);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot connect to listen for other servers' changes");
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}
