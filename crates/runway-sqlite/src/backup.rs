//! A consistent copy of a data directory's database while its server runs: SQLite's online
//! backup, read through its own read-only connection (WAL lets it read beside the server's
//! writer), a few pages at a time so the server's writes go on meanwhile.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

use crate::DATABASE_FILE;

/// Pages copied per step; between steps the server's writer may commit.
const PAGES_PER_STEP: std::ffi::c_int = 1024;

/// Why a backup could not be made; nothing is left at the target then.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{target} exists; choose a new file name (a backup never writes over a file)")]
    Exists { target: PathBuf },
    #[error("no runway database in {dir}; name the data directory with --data")]
    NoDatabase { dir: PathBuf },
    #[error("cannot back up {file} to {target}: {message}")]
    Failed {
        file: PathBuf,
        target: PathBuf,
        message: String,
    },
}

/// Copies the database of `data_dir` to `target` (a new file, mode 0600); returns its size.
pub fn backup(data_dir: &Path, target: &Path) -> Result<u64, BackupError> {
    let file = data_dir.join(DATABASE_FILE);
    if !file.is_file() {
        return Err(BackupError::NoDatabase {
            dir: data_dir.to_path_buf(),
        });
    }
    if target.exists() {
        return Err(BackupError::Exists {
            target: target.to_path_buf(),
        });
    }
    let failed = |message: String| BackupError::Failed {
        file: file.clone(),
        target: target.to_path_buf(),
        message,
    };
    let copied = copy(&file, target).map_err(|error| failed(error.to_string()));
    if copied.is_err() {
        let _ = std::fs::remove_file(target);
    }
    copied?;
    std::fs::metadata(target)
        .map(|metadata| metadata.len())
        .map_err(|error| failed(error.to_string()))
}

fn copy(file: &Path, target: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use std::os::unix::fs::OpenOptionsExt;
    // Created private first: it holds every job's input and the tokens' hashes.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)?;
    let source = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(5))?;
    let mut destination = Connection::open(target)?;
    Backup::new(&source, &mut destination)?.run_to_completion(
        PAGES_PER_STEP,
        Duration::from_millis(1),
        None,
    )?;
    // A single file, with no write-ahead log beside it to lose.
    destination.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}
