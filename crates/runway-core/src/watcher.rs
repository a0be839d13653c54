//! A watch trigger's eyes: the OS's change notifications for a directory tree, turned into
//! [`Change`]s of paths relative to the root that its [`WatchFilter`] counts.
//!
//! Each directory gets a watch of its own, so that `.git` and ignored directories cost no
//! watch. A directory that appears later (made, or moved in) is watched as soon as it is seen,
//! and the files already in it are reported, since they may have been written before its watch
//! was in place. Symbolic links are reported as files and never followed. When the OS drops
//! events, or this watcher's own queue overflows, a [`Change::Overflow`] says so: the trigger
//! then asks for a full rebuild, never silence.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc as async_mpsc;

use crate::watch_filter::WatchFilter;
use crate::watch_state::Change;

/// Raw events waiting for this watcher's thread; past this many, they are dropped for an
/// overflow.
const QUEUE: usize = 65_536;

/// Why a tree cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "cannot watch {root}: the system allows fewer watches than the {needed} directories it \
         holds; raise fs.inotify.max_user_watches (sysctl fs.inotify.max_user_watches=N) or \
         ignore directories that need no watching"
    )]
    Limit { root: PathBuf, needed: usize },
    #[error("cannot watch {path}: {message}")]
    Io { path: PathBuf, message: String },
}

/// Keeps the tree watched; dropping it ends the watch and closes the stream of changes.
pub struct TreeWatch {
    _shared: Arc<Shared>,
}

struct Shared {
    watcher: Mutex<RecommendedWatcher>,
}

/// Starts watching `root`; changes arrive on the returned receiver, a batch at a time.
pub fn watch(
    root: &Path,
    filter: WatchFilter,
) -> Result<(TreeWatch, async_mpsc::UnboundedReceiver<Change>), WatchError> {
    let root = root.canonicalize().map_err(|error| WatchError::Io {
        path: root.to_path_buf(),
        message: error.to_string(),
    })?;
    let (raw_sender, raw) = mpsc::sync_channel::<notify::Result<notify::Event>>(QUEUE);
    let dropped = Arc::new(AtomicBool::new(false));
    let handler_dropped = Arc::clone(&dropped);
    let watcher = notify::recommended_watcher(move |event| {
        if raw_sender.try_send(event).is_err() {
            handler_dropped.store(true, Ordering::SeqCst);
        }
    })
    .map_err(|error| WatchError::Io {
        path: root.clone(),
        message: error.to_string(),
    })?;
    let shared = Arc::new(Shared {
        watcher: Mutex::new(watcher),
    });
    let directories = directories(&root, &root, &filter);
    for directory in &directories {
        add_watch(&shared, &root, directory, directories.len())?;
    }
    let (changes, receiver) = async_mpsc::unbounded_channel();
    let weak = Arc::downgrade(&shared);
    std::thread::Builder::new()
        .name("runway-watch".into())
        .spawn(move || {
            let tree = Tree {
                root,
                filter,
                changes,
            };
            while let Ok(event) = raw.recv() {
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                if dropped.swap(false, Ordering::SeqCst) && tree.send(Change::Overflow).is_err() {
                    return;
                }
                if tree.handle(&shared, event).is_err() {
                    return;
                }
            }
        })
        .map_err(|error| WatchError::Io {
            path: PathBuf::new(),
            message: format!("cannot start the watch thread: {error}"),
        })?;
    Ok((TreeWatch { _shared: shared }, receiver))
}

fn add_watch(
    shared: &Shared,
    root: &Path,
    directory: &Path,
    needed: usize,
) -> Result<(), WatchError> {
    let mut watcher = shared
        .watcher
        .lock()
        .expect("the watcher lock is never poisoned");
    match watcher.watch(directory, RecursiveMode::NonRecursive) {
        Ok(()) => Ok(()),
        Err(error) if matches!(error.kind, notify::ErrorKind::MaxFilesWatch) => {
            Err(WatchError::Limit {
                root: root.to_path_buf(),
                needed,
            })
        }
        // Gone before its watch was in place: its removal is reported by its parent.
        Err(notify::Error {
            kind: notify::ErrorKind::PathNotFound,
            ..
        }) => Ok(()),
        Err(error) => Err(WatchError::Io {
            path: directory.to_path_buf(),
            message: error.to_string(),
        }),
    }
}

/// `directory` and every directory below it that the filter enters, links not followed.
fn directories(root: &Path, directory: &Path, filter: &WatchFilter) -> Vec<PathBuf> {
    let mut found = vec![directory.to_path_buf()];
    let mut index = 0;
    while index < found.len() {
        if let Ok(entries) = std::fs::read_dir(&found[index]) {
            for entry in entries.flatten() {
                let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
                let path = entry.path();
                if is_dir && !filter.skips_dir(relative(root, &path)) {
                    found.push(path);
                }
            }
        }
        index += 1;
    }
    found
}

fn relative<'p>(root: &Path, path: &'p Path) -> &'p Path {
    path.strip_prefix(root).unwrap_or(path)
}

/// The watcher thread's view: turns raw events into counted changes.
struct Tree {
    root: PathBuf,
    filter: WatchFilter,
    changes: async_mpsc::UnboundedSender<Change>,
}

/// The consumer is gone.
struct Closed;

impl Tree {
    fn send(&self, change: Change) -> Result<(), Closed> {
        self.changes.send(change).map_err(|_| Closed)
    }

    fn handle(&self, shared: &Shared, event: notify::Result<notify::Event>) -> Result<(), Closed> {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(root = %self.root.display(), %error, "a watch reported an error");
                return self.send(Change::Overflow);
            }
        };
        if event.need_rescan() {
            return self.send(Change::Overflow);
        }
        let relevant = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
                | EventKind::Modify(ModifyKind::Metadata(_))
        );
        if !relevant {
            return Ok(());
        }
        let mut paths = Vec::new();
        for path in &event.paths {
            let is_dir = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir());
            let rel = relative(&self.root, path);
            if is_dir {
                if self.filter.skips_dir(rel) {
                    continue;
                }
                // A directory made or moved in: watch it and everything below it, and report
                // what is already inside.
                if matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_)) {
                    let below = directories(&self.root, path, &self.filter);
                    for directory in &below {
                        if let Err(error) = add_watch(shared, &self.root, directory, below.len()) {
                            tracing::warn!(%error, "a new directory cannot be watched");
                            self.send(Change::Overflow)?;
                        }
                        paths.extend(self.files_in(directory));
                    }
                }
                continue;
            }
            if self.filter.counts(rel) {
                paths.push(slashed(rel));
            }
        }
        if paths.is_empty() {
            Ok(())
        } else {
            self.send(Change::Paths(paths))
        }
    }

    /// The files directly in `directory` that count.
    fn files_in(&self, directory: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(directory) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| !kind.is_dir()))
            .map(|entry| entry.path())
            .filter(|path| self.filter.counts(relative(&self.root, path)))
            .map(|path| slashed(relative(&self.root, &path)))
            .collect()
    }
}

/// A relative path as the job's input lists it: components joined by `/`.
fn slashed(path: &Path) -> String {
    path.components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests;
