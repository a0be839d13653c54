//! runway's [`Store`] on embedded SQLite (bundled, no system library).
//!
//! - WAL journal; one writer thread folds concurrent writes into group commits
//!   (`BEGIN IMMEDIATE`, one fsync per batch); readers run in parallel on their own
//!   connections.
//! - Durability per write (see `writer`): what a user is told is done (a submit's 201, a
//!   cancel, a pause) commits with `synchronous = FULL`, so it survives a power cut; the
//!   engine's own bookkeeping (claims, leases, progress, logs, outcomes) commits with
//!   `synchronous = NORMAL`, which survives any crash of runway, and after a power cut at worst
//!   runs a job again. `sync_every_commit` makes every commit FULL.
//! - The data directory is locked: one runway process per database, which is what lets a
//!   starting server treat every `running` attempt as left behind by a dead one.
//! - Migrations are embedded and run at open, tracked by `PRAGMA user_version`.
//!
//! This crate never decides policy (retries, backoff, who may run what): the engine does.

mod backup;
mod job_query;
mod jobs;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use runway_core::StoreError;
use runway_core::bus::Bus;
use runway_core::data_dir::{DataDirError, DataDirLock, private_file};
use rusqlite::{Connection, OpenFlags};

use crate::writer::Writer;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "runway.sqlite3";

pub use backup::{BackupError, backup};
/// Prepared statements kept per connection: more than the store has, so none is re-parsed.
const STATEMENT_CACHE: usize = 64;

/// Migrations in order; the index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_web_sessions.sql"),
    include_str!("../migrations/0003_finished_index.sql"),
    include_str!("../migrations/0004_log_lost_and_runs.sql"),
    include_str!("../migrations/0005_idempotency_keys.sql"),
    include_str!("../migrations/0006_job_trees.sql"),
    include_str!("../migrations/0007_artifacts.sql"),
    include_str!("../migrations/0008_counts_and_search.sql"),
    include_str!("../migrations/0009_triggers.sql"),
    include_str!("../migrations/0010_users.sql"),
    include_str!("../migrations/0011_log_marks.sql"),
    include_str!("../migrations/0012_retries.sql"),
    include_str!("../migrations/0013_counts_in_store.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {dir} is in use by another runway process; stop it or choose another directory with --data"
    )]
    Locked { dir: PathBuf },
    #[error("cannot open database {file}: {message}")]
    Database { file: PathBuf, message: String },
    #[error(
        "the disk holding {dir} is full ({free} bytes free): {cause}; free some space and start again"
    )]
    DiskFull {
        dir: PathBuf,
        free: u64,
        cause: String,
    },
    #[error(
        "database {file} has schema version {found}, newer than this runway knows ({known}); use a newer runway"
    )]
    TooNew {
        file: PathBuf,
        found: usize,
        known: usize,
    },
}

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    writer: Writer,
    readers: ReadPool,
    /// Held for the store's life: the OS lock on the data directory.
    _lock: DataDirLock,
}

/// How the store commits.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteOptions {
    /// Fsync every commit, engine bookkeeping included (slower; outcomes survive a power cut).
    pub sync_every_commit: bool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, locks the directory and runs
    /// pending migrations.
    pub fn open(data_dir: &Path, bus: Bus) -> Result<SqliteStore, OpenError> {
        SqliteStore::open_with(data_dir, SqliteOptions::default(), bus)
    }

    /// Like [`SqliteStore::open`], with options. Any failure on a disk without room says so,
    /// instead of SQLite's "disk I/O error".
    pub fn open_with(
        data_dir: &Path,
        options: SqliteOptions,
        bus: Bus,
    ) -> Result<SqliteStore, OpenError> {
        SqliteStore::open_inner(data_dir, options, bus).map_err(|error| {
            let existing = data_dir
                .ancestors()
                .find(|dir| dir.exists())
                .unwrap_or(data_dir);
            match writer::short_of_space(existing) {
                Some(free) => OpenError::DiskFull {
                    dir: data_dir.to_path_buf(),
                    free,
                    cause: error.to_string(),
                },
                _ => error,
            }
        })
    }

    fn open_inner(
        data_dir: &Path,
        options: SqliteOptions,
        bus: Bus,
    ) -> Result<SqliteStore, OpenError> {
        let lock = runway_core::data_dir::lock(data_dir).map_err(|error| match error {
            DataDirError::Locked { dir } => OpenError::Locked { dir },
            DataDirError::Create { dir, source } | DataDirError::ServerId { dir, source } => {
                OpenError::CreateDir { dir, source }
            }
        })?;
        let create_error = |source| OpenError::CreateDir {
            dir: data_dir.to_path_buf(),
            source,
        };
        let file = data_dir.join(DATABASE_FILE);
        let database_error = |error: rusqlite::Error| OpenError::Database {
            file: file.clone(),
            message: error.to_string(),
        };
        // SQLite gives the -wal and -shm files the mode of the database file.
        // Files an older runway made with the umask's mode are tightened too.
        private_file(&file).map_err(create_error)?;
        for suffix in ["-wal", "-shm"] {
            let path = data_dir.join(format!("{DATABASE_FILE}{suffix}"));
            if path.exists() {
                private_file(&path).map_err(create_error)?;
            }
        }
        let connection = Connection::open(&file).map_err(database_error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA busy_timeout = 5000;
                 PRAGMA temp_store = MEMORY;
                 PRAGMA cache_size = -65536;",
            )
            .map_err(database_error)?;
        migrate(&connection, &file)?;
        // The schema's CHECKs (a job's status, phase and child-failure policy, a user's role)
        // guard values this connection writes only from Rust enums (`as_str`), so they cannot
        // fail here; each costs every insert and status change a temporary b-tree built for
        // its `IN (…)` list, about a sixth of a submit and a tenth of a no-op run. They stay in
        // the schema for every other connection (an operator's shell).
        connection
            .execute_batch("PRAGMA ignore_check_constraints = ON;")
            .map_err(database_error)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SqliteStore {
            writer: Writer::start(connection, data_dir, options.sync_every_commit, bus),
            readers: ReadPool {
                file: file.clone(),
                idle: Arc::new(Mutex::new(Vec::new())),
            },
            _lock: lock,
        })
    }
}

fn migrate(connection: &Connection, file: &Path) -> Result<(), OpenError> {
    let database_error = |error: rusqlite::Error| OpenError::Database {
        file: file.to_path_buf(),
        message: error.to_string(),
    };
    let version: usize = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(database_error)?;
    if version > MIGRATIONS.len() {
        return Err(OpenError::TooNew {
            file: file.to_path_buf(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let sql = format!(
            "BEGIN IMMEDIATE;\n{migration}\nPRAGMA user_version = {};\nCOMMIT;",
            index + 1
        );
        connection.execute_batch(&sql).map_err(|error| {
            let _ = connection.execute_batch("ROLLBACK");
            database_error(error)
        })?;
    }
    Ok(())
}

/// Read-only connections, opened on demand and reused; queries run on the blocking pool.
struct ReadPool {
    file: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl ReadPool {
    async fn read<R: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let file = self.file.clone();
        let idle = Arc::clone(&self.idle);
        tokio::task::spawn_blocking(move || {
            let pooled = idle
                .lock()
                .expect("reader pool lock is never poisoned")
                .pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => {
                    let connection = Connection::open_with_flags(
                        &file,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(backend)?;
                    connection
                        .execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
                        .map_err(backend)?;
                    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                    connection
                }
            };
            let result = query(&connection).map_err(backend);
            let mut idle = idle.lock().expect("reader pool lock is never poisoned");
            if idle.len() < 16 {
                idle.push(connection);
            }
            result
        })
        .await
        .map_err(|error| StoreError::Backend(format!("a read panicked: {error}")))?
    }
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}
