//! The one writer: a thread that owns the only writing connection and folds every write that
//! is waiting into one `BEGIN IMMEDIATE` transaction, so many concurrent changes share one
//! commit and one fsync (group commit). Each write runs inside its own savepoint: one failing
//! write rolls back alone while the rest of the batch commits. A caller hears back only after
//! the commit.
//!
//! Durability is chosen per write: a batch holding any [`Commit::Synced`] write commits with
//! `synchronous = FULL` (the WAL is fsynced before anyone hears back); a batch of only
//! [`Commit::Lazy`] writes commits with `synchronous = NORMAL` (safe against a crash of the
//! process; a power cut may undo its last moments). The WAL is written in order, so a synced
//! commit also makes every earlier lazy one durable.

use std::cell::RefCell;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use runway_core::StoreError;
use runway_core::bus::{Bus, Change};
use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

/// Most writes folded into one transaction.
const MAX_BATCH: usize = 2048;

/// How durable a write must be when its caller hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// On disk: survives a power cut. For what a user is told is done (a submit's 201).
    Synced,
    /// In the OS: survives a crash of runway, not of the machine. For the engine's own
    /// bookkeeping, which at worst runs a job again after a power cut.
    Lazy,
}

/// The connection inside the current transaction, and the changes to publish on the bus once
/// it commits (dropped if it does not).
pub(crate) struct Tx<'c> {
    connection: &'c Connection,
    changes: &'c RefCell<Vec<Change>>,
}

impl Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Tx<'_> {
    pub(crate) fn publish(&self, change: Change) {
        self.changes.borrow_mut().push(change);
    }
}

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Gets the connection, or why no transaction could be begun; says how the write went.
type Run = Box<dyn FnOnce(Result<&Tx, StoreError>) -> (Result<(), StoreError>, Finish) + Send>;

struct Op {
    synced: bool,
    run: Run,
}

pub(crate) struct Writer {
    sender: mpsc::Sender<Op>,
    space: Arc<Space>,
}

/// Where the data is, to tell a full disk from other I/O errors.
pub(crate) struct Space {
    pub(crate) data_dir: PathBuf,
}

impl Space {
    /// A SQLite error as a store error: a full disk is [`StoreError::Full`], whether SQLite says
    /// so (`SQLITE_FULL`) or reports an I/O error on a filesystem with no room left.
    pub(crate) fn classify(&self, error: rusqlite::Error) -> StoreError {
        let code = error.sqlite_error_code();
        let out_of_room = code == Some(ErrorCode::DiskFull)
            || (matches!(
                code,
                Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen)
            ) && short_of_space(&self.data_dir).is_some());
        if out_of_room {
            StoreError::Full(format!("{}: {error}", self.data_dir.display()))
        } else {
            StoreError::Backend(error.to_string())
        }
    }
}

/// Below this much free space the disk counts as full.
const LOW_SPACE_BYTES: u64 = 1024 * 1024;

/// The bytes free for an unprivileged writer on the filesystem holding `path`, when they are so
/// few that the disk counts as full; `None` when there is room (or it cannot be told).
pub(crate) fn short_of_space(path: &Path) -> Option<u64> {
    let stats = nix::sys::statvfs::statvfs(path).ok()?;
    let free = stats.blocks_available() * stats.fragment_size();
    (free < LOW_SPACE_BYTES).then_some(free)
}

impl Writer {
    /// `sync_every_commit` makes every write [`Commit::Synced`].
    pub(crate) fn start(
        connection: Connection,
        data_dir: &Path,
        sync_every_commit: bool,
        bus: Bus,
    ) -> Writer {
        let (sender, receiver) = mpsc::channel::<Op>();
        let space = Arc::new(Space {
            data_dir: data_dir.to_path_buf(),
        });
        let writer_space = Arc::clone(&space);
        std::thread::Builder::new()
            .name("runway-sqlite-writer".into())
            .spawn(move || write_loop(connection, receiver, sync_every_commit, bus, &writer_space))
            .expect("the OS can start the writer thread");
        Writer { sender, space }
    }

    /// Where the database lives.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.space.data_dir
    }

    /// Runs `change` in the next group commit and returns its result once committed.
    pub(crate) async fn write<R: Send + 'static>(
        &self,
        commit: Commit,
        change: impl FnOnce(&Tx) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let space = Arc::clone(&self.space);
        let run: Run = Box::new(move |connection| {
            let result = match connection {
                Ok(connection) => match catch_unwind(AssertUnwindSafe(|| change(connection))) {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(error)) => Err(space.classify(error)),
                    Err(_) => Err(StoreError::Backend("a write panicked".into())),
                },
                Err(error) => Err(error),
            };
            let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
            let finish: Finish = Box::new(move |commit| {
                let answer = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(error), _) => Err(error),
                    (Ok(_), Err(error)) => Err(error),
                };
                let _ = reply.send(answer);
            });
            (outcome, finish)
        });
        let op = Op {
            synced: commit == Commit::Synced,
            run,
        };
        self.sender.send(op).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Runs a fixed statement through the statement cache, so it is parsed once, not per batch.
fn run(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn write_loop(
    connection: Connection,
    receiver: mpsc::Receiver<Op>,
    sync_every_commit: bool,
    bus: Bus,
    space: &Space,
) {
    let mut synced_mode = true;
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let synced = sync_every_commit || batch.iter().any(|op| op.synced);
        if synced != synced_mode {
            let pragma = if synced {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            if connection.execute_batch(pragma).is_ok() {
                synced_mode = synced;
            }
        }
        if let Err(error) = run(&connection, "BEGIN IMMEDIATE") {
            let error = space.classify(error);
            for op in batch {
                let (_, finish) = (op.run)(Err(error.clone()));
                finish(Err(error.clone()));
            }
            continue;
        }
        // A lone write needs no savepoint: if it fails, the whole transaction rolls back.
        let alone = batch.len() == 1;
        let mut finishes = Vec::with_capacity(batch.len());
        let mut failed_alone = false;
        // Set when SQLite itself ended the transaction (disk full, I/O error): nothing of the
        // batch is committed, and nothing more may run outside it.
        let mut transaction_lost: Option<StoreError> = None;
        let changes = RefCell::new(Vec::new());
        let tx = Tx {
            connection: &connection,
            changes: &changes,
        };
        let mut ops = batch.into_iter();
        for op in ops.by_ref() {
            if !alone && let Err(error) = run(&connection, "SAVEPOINT write") {
                let (_, finish) = (op.run)(Err(space.classify(error)));
                finishes.push(finish);
                continue;
            }
            let published_before = changes.borrow().len();
            let (outcome, finish) = (op.run)(Ok(&tx));
            let ok = outcome.is_ok();
            if !ok {
                changes.borrow_mut().truncate(published_before);
            }
            finishes.push(finish);
            if connection.is_autocommit() {
                transaction_lost = Some(match outcome {
                    Err(error @ StoreError::Full(_)) => error,
                    _ => StoreError::Backend("the transaction was rolled back by SQLite".into()),
                });
                break;
            }
            if !alone {
                if !ok {
                    let _ = run(&connection, "ROLLBACK TO write");
                }
                let _ = run(&connection, "RELEASE write");
            }
            failed_alone = alone && !ok;
        }
        if let Some(error) = &transaction_lost {
            for op in ops {
                let (_, finish) = (op.run)(Err(error.clone()));
                finishes.push(finish);
            }
        }
        let commit = if let Some(error) = transaction_lost {
            Err(error)
        } else if failed_alone {
            let _ = run(&connection, "ROLLBACK");
            Ok(())
        } else {
            let started = std::time::Instant::now();
            let committed = run(&connection, "COMMIT").map_err(|error| space.classify(error));
            // The commit alone (and its fsync, when synced): what every caller of the batch
            // waited on once its own statements ran.
            metrics::histogram!(
                "runway_store_commit_seconds",
                "synced" => if synced { "true" } else { "false" },
            )
            .record(started.elapsed().as_secs_f64());
            committed
        };
        if commit.is_err() && !connection.is_autocommit() {
            let _ = run(&connection, "ROLLBACK");
        }
        if commit.is_ok() {
            bus.publish(changes.into_inner());
        }
        for finish in finishes {
            finish(commit.clone());
        }
    }
}
