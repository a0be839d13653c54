//! The one writer: a thread that owns the only writing connection and folds every write that
//! is waiting into one `BEGIN IMMEDIATE` transaction, so many concurrent changes share one
//! commit and one fsync (group commit). Each write runs inside its own savepoint: one failing
//! write rolls back alone while the rest of the batch commits. A caller hears back only after
//! the commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use runway_core::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

/// Most writes folded into one transaction.
const MAX_BATCH: usize = 2048;

type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Gets the connection, or why no transaction could be begun.
type Op = Box<dyn FnOnce(Result<&Connection, String>) -> (bool, Finish) + Send>;

pub(crate) struct Writer {
    sender: mpsc::Sender<Op>,
}

impl Writer {
    pub(crate) fn start(connection: Connection) -> Writer {
        let (sender, receiver) = mpsc::channel::<Op>();
        std::thread::Builder::new()
            .name("runway-sqlite-writer".into())
            .spawn(move || write_loop(connection, receiver))
            .expect("the OS can start the writer thread");
        Writer { sender }
    }

    /// Runs `change` in the next group commit and returns its result once committed.
    pub(crate) async fn write<R: Send + 'static>(
        &self,
        change: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let op: Op = Box::new(move |connection| {
            let result = match connection {
                Ok(connection) => match catch_unwind(AssertUnwindSafe(|| change(connection))) {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(error)) => Err(StoreError::Backend(error.to_string())),
                    Err(_) => Err(StoreError::Backend("a write panicked".into())),
                },
                Err(message) => Err(StoreError::Backend(message)),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let answer = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(error), _) => Err(error),
                    (Ok(_), Err(error)) => Err(StoreError::Backend(error)),
                };
                let _ = reply.send(answer);
            });
            (ok, finish)
        });
        self.sender.send(op).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn write_loop(connection: Connection, receiver: mpsc::Receiver<Op>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            let message = format!("cannot begin a transaction: {error}");
            for op in batch {
                let (_, finish) = op(Err(message.clone()));
                finish(Err(message.clone()));
            }
            continue;
        }
        let mut finishes = Vec::with_capacity(batch.len());
        for op in batch {
            let savepoint = connection.execute_batch("SAVEPOINT write");
            let (ok, finish) = op(Ok(&connection));
            if savepoint.is_ok() {
                if !ok {
                    let _ = connection.execute_batch("ROLLBACK TO write");
                }
                let _ = connection.execute_batch("RELEASE write");
            }
            finishes.push(finish);
        }
        let commit = connection
            .execute_batch("COMMIT")
            .map_err(|error| format!("commit failed: {error}"));
        if commit.is_err() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        for finish in finishes {
            finish(commit.clone());
        }
    }
}
