//! `PgStore`: the pool, and the one way a write runs. A write is a synchronous closure over a
//! transaction ([`Tx`]), run on a blocking thread, because core's tree driver (`tree::apply`)
//! reads and persists through a synchronous interface; each statement blocks that thread on the
//! async driver. Its events take their seqs last, from `event_clock`, whose lock the
//! transaction holds until it commits: seqs follow commit order on every server.
//!
//! Rows a write changes are read `FOR UPDATE`, so two servers changing one job (or a parent's
//! counts) take turns; a transaction PostgreSQL aborts as a deadlock or a serialization failure
//! is run again from the start.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use deadpool_postgres::Pool;
use runway_core::bus::{Change, JobChange, LogAppend};
use runway_core::clock::Timestamp;
use runway_core::event::EventKind;
use runway_core::job::{IllegalTransition, Job, JobId, JobStatus};
use runway_core::store::StoreError;
use serde_json::Value;
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::follower::Follower;
use crate::held_jobs::{HeldJobs, WRITE_GUARDED, WRITE_HELD, Writes};
use crate::rows;

/// How often a write PostgreSQL aborted to break a deadlock is tried in all.
const WRITE_TRIES: u32 = 8;

/// How durable a write must be when its caller hears back (as on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Flushed to PostgreSQL's WAL: what a user is told is done.
    Synced,
    /// `synchronous_commit = off`: survives a crash of runway, not of the database's machine;
    /// for the engine's bookkeeping, which at worst runs a job again.
    Lazy,
}

/// Why a statement of a write failed.
#[derive(Debug)]
pub(crate) enum PgError {
    Db(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    /// A transition core refused: a bug in the caller.
    Illegal(IllegalTransition),
    /// A stored value core cannot read.
    Corrupt(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(error: tokio_postgres::Error) -> Self {
        PgError::Db(error)
    }
}

impl From<IllegalTransition> for PgError {
    fn from(error: IllegalTransition) -> Self {
        PgError::Illegal(error)
    }
}

impl PgError {
    /// PostgreSQL gave up on the transaction to let another go on: running it again is safe.
    fn retryable(&self) -> bool {
        matches!(self, PgError::Db(error) if matches!(
            error.code(),
            Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
        ))
    }
}

impl From<PgError> for StoreError {
    fn from(error: PgError) -> Self {
        match error {
            PgError::Db(error) if unreachable(&error) => {
                StoreError::Unavailable(format!("PostgreSQL: {}", describe(&error)))
            }
            PgError::Db(error) => match error.code() {
                Some(code) if *code == SqlState::DISK_FULL => StoreError::Full(format!(
                    "PostgreSQL: {}",
                    error
                        .as_db_error()
                        .map_or(error.to_string(), |db| db.message().to_string())
                )),
                _ => StoreError::Backend(format!("PostgreSQL: {}", describe(&error))),
            },
            PgError::Pool(deadpool_postgres::PoolError::Backend(error)) if !unreachable(&error) => {
                StoreError::Backend(format!(
                    "cannot connect to PostgreSQL: {}",
                    describe(&error)
                ))
            }
            PgError::Pool(error) => {
                StoreError::Unavailable(format!("cannot reach PostgreSQL: {error}"))
            }
            PgError::Illegal(error) => StoreError::Backend(error.to_string()),
            PgError::Corrupt(message) => StoreError::Backend(message),
        }
    }
}

/// Whether the database, not the statement, failed, so that asking again soon may work: the
/// connection closed, refused or broken (I/O), the server shutting down or starting or out of
/// resources (SQLSTATE classes 08, 57 and 53), or read-only (a standby after a failover).
fn unreachable(error: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    error.is_closed()
        || error.code().is_some_and(|code| {
            matches!(&code.code()[..2], "08" | "57" | "53")
                || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        })
        || error
            .source()
            .is_some_and(|source| source.is::<std::io::Error>())
}

/// An error with the server's own message when it has one.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// A change of a job written in the current transaction, waiting for its seq.
pub(crate) struct PendingEvent {
    pub job: Job,
    pub previous: Option<JobStatus>,
    pub at: Timestamp,
    pub kind: EventKind,
    pub data: Value,
}

/// What `job_counts` counts finished jobs by: queue, type, status, and whether it is a root.
/// Ordered, so that every transaction updates the rows of one slot in the same order.
type CountKind = (String, String, &'static str, bool);

/// A transaction of a write: its statements block the calling (blocking) thread.
pub(crate) struct Tx<'t> {
    /// A pooled connection: inside `BEGIN` from the first statement on (see `begin`).
    transaction: &'t deadpool_postgres::Object,
    handle: &'t Handle,
    events: RefCell<Vec<PendingEvent>>,
    logs: RefCell<Vec<LogAppend>>,
    held: RefCell<HeldJobs>,
    /// Jobs this transaction inserted finished or moved to a final status, by kind: added to
    /// `job_counts` with the commit.
    finished: RefCell<BTreeMap<CountKind, i64>>,
    /// The `BEGIN` not yet sent: it goes with the transaction's first statement.
    begin: Cell<Option<&'static str>>,
}

impl Tx<'_> {
    fn prepared(&self, sql: &str) -> Result<Statement, PgError> {
        Ok(self.handle.block_on(self.transaction.prepare_cached(sql))?)
    }

    /// Runs a statement behind the write of the changes kept for held jobs (in the same round
    /// trip: a failed write aborts the transaction, and the statement with it); after a
    /// statement that may change rows, forgets what the held rows were.
    fn around<T, F>(&self, sql: &str, run: impl FnOnce(Statement) -> F) -> Result<T, PgError>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let statement = self.prepared(sql)?;
        let answer = self.behind_held_writes(run(statement))?;
        if !sql.trim_start().starts_with("SELECT") {
            self.held.borrow_mut().forget();
        }
        Ok(answer)
    }

    /// Sends the transaction's `BEGIN` if it is not yet sent, the write of the changes kept for
    /// held jobs if any, then `next`, all before any is answered: one round trip. (A `BEGIN`
    /// fails only with its connection, and what is behind it then fails too.)
    fn behind_held_writes<T>(
        &self,
        next: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, PgError> {
        // Prepared before anything is taken: a failed prepare leaves the transaction as it was.
        let unwritten = self.held.borrow().has_unwritten();
        let write = if unwritten {
            Some(self.prepared(&WRITE_HELD)?)
        } else {
            None
        };
        let writes = self.held.borrow_mut().take_unwritten();
        let begin = self.begin.take();
        let params = writes.as_ref().map(Writes::params);
        let (begun, written, answer) = self.handle.block_on(futures_util::future::join3(
            async {
                match begin {
                    Some(begin) => self.transaction.batch_execute(begin).await,
                    None => Ok(()),
                }
            },
            async {
                match (&write, &params) {
                    (Some(write), Some(params)) => {
                        self.transaction.query_one(write, params).await.map(Some)
                    }
                    _ => Ok(None),
                }
            },
            next,
        ));
        begun?;
        written?;
        Ok(answer?)
    }

    pub(crate) fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        self.around(sql, |statement| async move {
            self.transaction.query(&statement, params).await
        })
    }

    pub(crate) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, PgError> {
        self.around(sql, |statement| async move {
            self.transaction.query_opt(&statement, params).await
        })
    }

    pub(crate) fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, PgError> {
        self.around(sql, |statement| async move {
            self.transaction.query_one(&statement, params).await
        })
    }

    pub(crate) fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, PgError> {
        self.around(sql, |statement| async move {
            self.transaction.execute(&statement, params).await
        })
    }

    /// Jobs read by a `SELECT … FOR UPDATE`: held by this transaction until it ends.
    pub(crate) fn lock_jobs(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Job>, PgError> {
        let jobs = rows::jobs(&self.query(sql, params)?)?;
        self.held.borrow_mut().hold(&jobs);
        Ok(jobs)
    }

    /// The job as this transaction holds it, if it holds it.
    pub(crate) fn held_job(&self, id: JobId) -> Option<Job> {
        self.held.borrow().get(id).cloned()
    }

    /// Writes `after` guarded by `before` (same status, attempt and worker) and records its
    /// event; `None` when the guard did not hold. A job this transaction holds as `before`
    /// is written with the others before the next statement.
    pub(crate) fn persist(
        &self,
        before: &Job,
        after: &Job,
        event: PendingEvent,
    ) -> Result<Option<Job>, PgError> {
        let kept = self.held.borrow_mut().keep(before, after);
        if !kept {
            // Written apart from the held rows: the transaction no longer knows the row.
            self.held.borrow_mut().release(after.id);
            let writes = Writes::one(before, after);
            let statement = self.prepared(&WRITE_GUARDED)?;
            let params = writes.params();
            let written: i64 = self
                .behind_held_writes(self.transaction.query_one(&statement, &params[..26]))?
                .get(0);
            if written == 0 {
                return Ok(None);
            }
        }
        self.count_if_finished(Some(before.status), after);
        self.record(event);
        Ok(Some(after.clone()))
    }

    /// Counts `job` in `job_counts` when this write is what made it finished: it moved from
    /// `previous` to a final status, or was inserted (`None`) finished.
    pub(crate) fn count_if_finished(&self, previous: Option<JobStatus>, job: &Job) {
        if job.status.is_terminal() && previous != Some(job.status) {
            let kind = (
                job.queue.clone(),
                job.job_type.clone(),
                job.status.as_str(),
                job.parent.is_none(),
            );
            *self.finished.borrow_mut().entry(kind).or_default() += 1;
        }
    }

    /// Records a change of a job; its event is stored with a seq at commit.
    pub(crate) fn record(&self, event: PendingEvent) {
        self.events.borrow_mut().push(event);
    }

    /// Log text to publish once the transaction commits.
    pub(crate) fn publish_log(&self, append: LogAppend) {
        self.logs.borrow_mut().push(append);
    }
}

/// runway's state in PostgreSQL, shared by every server on the database.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    pub(crate) follower: Arc<Follower>,
}

impl PgStore {
    pub(crate) fn new(pool: Pool, follower: Arc<Follower>) -> PgStore {
        PgStore { pool, follower }
    }

    /// Runs `write` in a transaction on a blocking thread and commits it with its events;
    /// runs it again when PostgreSQL aborted it to break a deadlock.
    pub(crate) async fn write<R, F>(&self, commit: Commit, write: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&Tx) -> Result<R, PgError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let follower = Arc::clone(&self.follower);
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut tries = 0;
            loop {
                tries += 1;
                match run_write(&pool, &handle, commit, &write) {
                    Ok((answer, events, logs)) => {
                        follower.committed(events, logs);
                        return Ok(answer);
                    }
                    Err(error) if error.retryable() && tries < WRITE_TRIES => {
                        tracing::debug!(
                            tries,
                            "a write was aborted by PostgreSQL; running it again"
                        );
                    }
                    Err(error) => return Err(StoreError::from(error)),
                }
            }
        })
        .await
        .map_err(|error| StoreError::Backend(format!("a write stopped: {error}")))?
    }

    /// A connection for a read.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::from(PgError::Pool(error)))
    }
}

type Written<R> = (R, Vec<JobChange>, Vec<LogAppend>);

/// A pooled connection inside a transaction. It goes back to the pool only once the
/// transaction has ended; otherwise (a panic, an answer lost on the way) it is closed, which
/// ends the transaction on the server.
struct InTransaction {
    client: Option<deadpool_postgres::Object>,
    ended: bool,
}

impl InTransaction {
    fn client(&self) -> &deadpool_postgres::Object {
        self.client
            .as_ref()
            .expect("the connection is held until drop")
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if !self.ended
            && let Some(client) = self.client.take()
        {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

fn run_write<R>(
    pool: &Pool,
    handle: &Handle,
    commit: Commit,
    write: &impl Fn(&Tx) -> Result<R, PgError>,
) -> Result<Written<R>, PgError> {
    let got = handle.block_on(pool.get()).map_err(PgError::Pool)?;
    let mut connection = InTransaction {
        client: Some(got),
        ended: false,
    };
    // Claims count a queue's running jobs after waiting for its lock: each statement must see
    // what committed meanwhile, whatever the database's default isolation.
    let begin = match commit {
        Commit::Synced => "BEGIN ISOLATION LEVEL READ COMMITTED",
        Commit::Lazy => "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off",
    };
    let tx = Tx {
        begin: Cell::new(Some(begin)),
        transaction: connection.client(),
        handle,
        events: RefCell::new(Vec::new()),
        logs: RefCell::new(Vec::new()),
        held: RefCell::new(HeldJobs::default()),
        finished: RefCell::new(BTreeMap::new()),
    };
    let written = write(&tx).and_then(|answer| {
        let events = tx.events.take();
        let logs = tx.logs.take();
        let finished = tx.finished.take();
        let started = std::time::Instant::now();
        let changes = stamp_and_commit(&tx, events, finished)?;
        metrics::histogram!(
            "runway_store_commit_seconds",
            "synced" => if commit == Commit::Synced { "true" } else { "false" },
        )
        .record(started.elapsed().as_secs_f64());
        Ok((answer, changes, logs))
    });
    connection.ended = match &written {
        Ok(_) => true,
        // A failed statement aborted the transaction; a failed COMMIT ended it. Rolled back
        // (a no-op then), the connection is clean again.
        Err(_) => handle
            .block_on(connection.client().batch_execute("ROLLBACK"))
            .is_ok(),
    };
    written
}

/// The statement that hands a transaction's events their seqs, stores them and tells the
/// other servers (the NOTIFY is delivered at commit, in commit order).
const STAMP: &str = "WITH clock AS (UPDATE event_clock SET seq = seq + $1 RETURNING seq),
     stored AS (
         INSERT INTO events (seq, job_id, at, kind, status, data)
         SELECT (SELECT seq FROM clock) - $1 + number, job_id, at, kind, status, data
         FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[])
              WITH ORDINALITY AS event (job_id, at, kind, status, data, number))
     SELECT seq, pg_notify('runway_changes', seq::text) FROM clock";

/// Adds a transaction's finished jobs to their kinds' counts, in the slot of the transaction's
/// id (see migration 0001).
const COUNT_FINISHED: &str = "INSERT INTO job_counts (queue, job_type, status, root, slot, count)
     SELECT queue, job_type, status, root, (txid_current() % 64)::smallint, count
     FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::bigint[])
          AS kind (queue, job_type, status, root, count)
     ON CONFLICT (queue, job_type, status, root, slot)
     DO UPDATE SET count = job_counts.count + EXCLUDED.count";

/// Stamps the transaction's events and commits, sending both at once (with the count of the
/// jobs it finished, before them): the clock's row is locked from the stamp to the commit, and
/// no other server's write that records events can go on meanwhile, so not even a round trip
/// may come between them (a server that died there would hold every server up).
fn stamp_and_commit(
    tx: &Tx,
    events: Vec<PendingEvent>,
    finished: BTreeMap<CountKind, i64>,
) -> Result<Vec<JobChange>, PgError> {
    let client = tx.transaction;
    let count_statement = if finished.is_empty() {
        None
    } else {
        Some(tx.prepared(COUNT_FINISHED)?)
    };
    let mut queues = Vec::new();
    let mut types = Vec::new();
    let mut finished_statuses = Vec::new();
    let mut roots = Vec::new();
    let mut counts = Vec::new();
    for ((queue, job_type, status, root), count) in finished {
        queues.push(queue);
        types.push(job_type);
        finished_statuses.push(status);
        roots.push(root);
        counts.push(count);
    }
    let count_finished = async {
        match &count_statement {
            Some(statement) => client
                .execute(
                    statement,
                    &[&queues, &types, &finished_statuses, &roots, &counts],
                )
                .await
                .map(|_| ()),
            None => Ok(()),
        }
    };
    // The held jobs' last changes go in the same round trip: a failed write aborts the
    // transaction, and the COMMIT behind it then rolls back.
    if events.is_empty() {
        let (counted, committed) = tx.behind_held_writes(async {
            Ok(futures_util::future::join(count_finished, client.batch_execute("COMMIT")).await)
        })?;
        counted?;
        committed?;
        return Ok(Vec::new());
    }
    let count = events.len() as i64;
    let jobs: Vec<i64> = events.iter().map(|event| event.job.id.0).collect();
    let ats: Vec<i64> = events
        .iter()
        .map(|event| event.at.timestamp_micros())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    let statuses: Vec<&str> = events
        .iter()
        .map(|event| event.job.status.as_str())
        .collect();
    let data: Vec<String> = events.iter().map(|event| event.data.to_string()).collect();
    let stamp = tx.prepared(STAMP)?;
    // The requests are queued on the connection in this order before any is answered.
    let (counted, stamped, committed) = tx.behind_held_writes(async {
        Ok(futures_util::future::join3(
            count_finished,
            client.query_one(&stamp, &[&count, &jobs, &ats, &kinds, &statuses, &data]),
            client.batch_execute("COMMIT"),
        )
        .await)
    })?;
    // A failed count or stamp aborted the transaction, and the COMMIT rolled it back.
    counted?;
    let last: i64 = stamped?.get(0);
    committed?;
    let first = last - count + 1;
    Ok(events
        .into_iter()
        .zip(first..=last)
        .map(|(event, seq)| {
            let change = JobChange::new(seq, event.kind, event.at, Arc::new(event.job));
            match event.previous {
                Some(previous) => change.after(previous),
                None => change,
            }
        })
        .collect())
}

/// The changes a write committed, for the bus.
pub(crate) fn as_changes(events: Vec<JobChange>, logs: Vec<LogAppend>) -> Vec<Change> {
    events
        .into_iter()
        .map(Change::Job)
        .chain(logs.into_iter().map(Change::Log))
        .collect()
}
