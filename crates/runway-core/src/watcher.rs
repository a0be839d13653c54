//! A watch trigger's eyes: the OS's change notifications for a directory tree, turned into
//! [`Change`]s of paths relative to the root that its [`WatchFilter`] counts.
//!
//! Each directory gets a watch of its own, so that `.git` and ignored directories cost no
//! watch. A directory that appears later (made, or moved in) is watched as soon as it is seen,
//! and the files already in it are reported, since they may have been written before its watch
//! was in place. Symbolic links are reported as files and never followed. When the OS drops
//! events, or this watcher's own queue overflows, a [`Change::Overflow`] says so: the trigger
//! then asks for a full rebuild, never silence.

use std::collections::HashSet;
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
    /// The directories watched, to tell a directory that went away from a file.
    watched: Mutex<HashSet<PathBuf>>,
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
        watched: Mutex::new(HashSet::new()),
    });
    match watch_below(&shared, &root, &root, &filter, &mut Vec::new()) {
        Ok(()) => {}
        Err(Unwatched::Limit) => {
            return Err(WatchError::Limit {
                needed: count_directories(&root, &filter),
                root,
            });
        }
        Err(Unwatched::Start(error)) => {
            return Err(WatchError::Io {
                path: root,
                message: error.to_string(),
            });
        }
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

/// Why `watch_below` stopped.
enum Unwatched {
    /// The system's limit on watches was reached.
    Limit,
    /// The directory it started from cannot be watched (not found is no error: its parent's
    /// watch reports that it went away).
    Start(notify::Error),
}

/// Watches `directory` and every directory below it that the filter enters, each before it is
/// read, so that a directory made meanwhile is either seen when its parent is read or reported
/// by its parent's watch. The files found on the way are added to `files`. Links are not
/// followed.
fn watch_below(
    shared: &Shared,
    root: &Path,
    directory: &Path,
    filter: &WatchFilter,
    files: &mut Vec<PathBuf>,
) -> Result<(), Unwatched> {
    let start = directory.to_path_buf();
    let mut pending = vec![start.clone()];
    while let Some(directory) = pending.pop() {
        let added = shared
            .watcher
            .lock()
            .expect("the watcher lock is never poisoned")
            .watch(&directory, RecursiveMode::NonRecursive);
        match added {
            Ok(()) => {}
            Err(error) if matches!(error.kind, notify::ErrorKind::MaxFilesWatch) => {
                return Err(Unwatched::Limit);
            }
            Err(error) if matches!(error.kind, notify::ErrorKind::PathNotFound) => continue,
            Err(error) if directory == start => return Err(Unwatched::Start(error)),
            // A directory below it that cannot be watched (no permission): the rest is.
            Err(error) => {
                tracing::warn!(directory = %directory.display(), %error, "a directory is not watched");
                continue;
            }
        }
        shared
            .watched
            .lock()
            .expect("the watched set's lock is never poisoned")
            .insert(directory.clone());
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                if !filter.skips_dir(relative(root, &path)) {
                    pending.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    Ok(())
}

/// How many directories a watch of `root` needs, for the error that says the limit is lower.
fn count_directories(root: &Path, filter: &WatchFilter) -> usize {
    let mut pending = vec![root.to_path_buf()];
    let mut count = 0;
    while let Some(directory) = pending.pop() {
        count += 1;
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir())
                && !filter.skips_dir(relative(root, &path))
            {
                pending.push(path);
            }
        }
    }
    count
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
        // Made, or renamed to: a directory here is new to this watch.
        let appeared = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
        );
        for path in &event.paths {
            let rel = relative(&self.root, path);
            if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir()) {
                if appeared && !self.filter.skips_dir(rel) {
                    // Watch it and everything below it, and report what is already inside.
                    let mut files = Vec::new();
                    match watch_below(shared, &self.root, path, &self.filter, &mut files) {
                        Ok(()) => {}
                        Err(Unwatched::Limit) => {
                            tracing::warn!(directory = %path.display(), "no more watches allowed: fs.inotify.max_user_watches");
                            self.send(Change::Overflow)?;
                        }
                        Err(Unwatched::Start(error)) => {
                            tracing::warn!(directory = %path.display(), %error, "a new directory is not watched");
                        }
                    }
                    paths.extend(
                        files
                            .iter()
                            .map(|file| relative(&self.root, file))
                            .filter(|file| self.filter.counts(file))
                            .map(slashed),
                    );
                }
                continue;
            }
            let was_watched = shared
                .watched
                .lock()
                .expect("the watched set's lock is never poisoned")
                .remove(path.as_path());
            if was_watched {
                // A watched directory went away. Removed, its files' removals were reported one
                // by one; moved out of the tree, nothing says which files went with it.
                if matches!(event.kind, EventKind::Modify(ModifyKind::Name(_))) {
                    self.send(Change::Overflow)?;
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
}

/// A relative path as the job's input lists it: components joined by `/`.
pub(crate) fn slashed(path: &Path) -> String {
    path.components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests;
