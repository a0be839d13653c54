//! The server's data directory: private to the server's user, locked by one runway process at a
//! time, and holding the server's identity. Whatever the store, a server keeps here its job
//! inputs, artifacts and keys; with SQLite also the database.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

const LOCK_FILE: &str = "runway.lock";
const SERVER_ID_FILE: &str = "server-id";
pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create data directory {dir}: {source}")]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {dir} is in use by another runway process; stop it or choose another directory with --data"
    )]
    Locked { dir: PathBuf },
    #[error("cannot read or make the server id in {dir}: {source}")]
    ServerId {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Held for the life of the process that uses the directory: the OS lock on it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Creates `dir` (readable by the server's user alone) if needed and locks it; a second
/// process on the same directory is refused.
pub fn lock(dir: &Path) -> Result<DataDirLock, DataDirError> {
    let create = |source| DataDirError::Create {
        dir: dir.to_path_buf(),
        source,
    };
    // Job inputs, logs and token hashes live here: the server's user alone may read them.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR)))
        .map_err(create)?;
    let file = private_file(&dir.join(LOCK_FILE)).map_err(create)?;
    if file.try_lock().is_err() {
        return Err(DataDirError::Locked {
            dir: dir.to_path_buf(),
        });
    }
    Ok(DataDirLock { _file: file })
}

/// Opens (creating) a file only the server's user may read.
pub fn private_file(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE))?;
    Ok(file)
}

/// The server's identity, made once per data directory: the first part of its workers'
/// names, so that a server sharing its store with others recognises, at start, the attempts
/// it left running itself and leaves the others' alone.
pub fn server_id(dir: &Path) -> Result<String, DataDirError> {
    let failed = |source| DataDirError::ServerId {
        dir: dir.to_path_buf(),
        source,
    };
    let path = dir.join(SERVER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_server_id(text.trim()) => return Ok(text.trim().to_string()),
        Ok(_) => {
            return Err(failed(std::io::Error::other(format!(
                "{} is not a server id (12 lowercase hex digits); delete it and runway makes a new one",
                path.display()
            ))));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(failed(error)),
    }
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    let id: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(id.as_bytes())?;
            file.sync_all()
        });
    written.map_err(failed)?;
    Ok(id)
}

fn is_server_id(text: &str) -> bool {
    text.len() == 12
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Whether `worker` is one of the server `server_id`'s workers (named `SERVER_ID-…`).
pub fn is_own_worker(server_id: &str, worker: &str) -> bool {
    worker
        .strip_prefix(server_id)
        .is_some_and(|rest| rest.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_keeps_its_server_id_and_serves_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let held = lock(&data).unwrap();
        assert!(matches!(lock(&data), Err(DataDirError::Locked { .. })));
        let id = server_id(&data).unwrap();
        assert!(is_server_id(&id), "{id}");
        assert_eq!(server_id(&data).unwrap(), id, "made once, then read");
        drop(held);
        lock(&data).expect("the lock goes with the process that held it");
    }

    #[test]
    fn a_worker_belongs_to_the_server_its_name_starts_with() {
        assert!(is_own_worker("0123456789ab", "0123456789ab-42-x"));
        assert!(!is_own_worker("0123456789ab", "0123456789abc-42"));
        assert!(!is_own_worker("0123456789ab", "fedcba987654-42"));
    }
}
