//! A watch trigger's record of its tree: each counted file's size and modification time. It
//! is taken when a run is submitted and compared at the next start, so a change made while
//! the server was down still leads to a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::watch_filter::WatchFilter;
use crate::watcher::slashed;

/// Files by path relative to the root (`/`-separated), as the job's input lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    files: BTreeMap<String, FileStamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct FileStamp {
    size: u64,
    /// Nanoseconds since the epoch; 0 when the system does not say.
    modified: i128,
}

impl FileStamp {
    /// The stamp of a file's metadata, read without following a link.
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos() as i128);
        FileStamp {
            size: metadata.len(),
            modified,
        }
    }
}

impl Snapshot {
    /// Walks `root` as the watch sees it: directories the filter skips are not entered, links
    /// are not followed (a link counts as a file of its own), only counted files are kept.
    pub fn take(root: &Path, filter: &WatchFilter) -> Snapshot {
        let mut files = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(directory) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&directory) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if !filter.skips_dir(relative) {
                        pending.push(path);
                    }
                    continue;
                }
                if !filter.counts(relative) {
                    continue;
                }
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                files.insert(slashed(relative), FileStamp::of(&metadata));
            }
        }
        Snapshot { files }
    }

    /// Takes the changes of `paths` (relative, `/`-separated, as the watcher reports them)
    /// into the record without walking the tree: each is read again, and one that is gone (a
    /// file, or a directory with everything below it) leaves.
    pub fn refresh(&mut self, root: &Path, filter: &WatchFilter, paths: &[String]) {
        for path in paths {
            let relative = Path::new(path);
            match std::fs::symlink_metadata(root.join(relative)) {
                Ok(metadata) if !metadata.is_dir() && filter.counts(relative) => {
                    self.files.insert(path.clone(), FileStamp::of(&metadata));
                }
                Ok(metadata) if metadata.is_dir() => {}
                _ => {
                    self.files.remove(path);
                    let below = format!("{path}/");
                    self.files.retain(|file, _| !file.starts_with(&below));
                }
            }
        }
    }

    /// The paths created, changed or deleted between `self` and `now`, in order.
    pub fn changes(&self, now: &Snapshot) -> Vec<String> {
        let mut changed: Vec<String> = now
            .files
            .iter()
            .filter(|(path, stamp)| self.files.get(*path) != Some(stamp))
            .map(|(path, _)| path.clone())
            .collect();
        changed.extend(
            self.files
                .keys()
                .filter(|path| !now.files.contains_key(*path))
                .cloned(),
        );
        changed.sort_unstable();
        changed
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("snapshots serialize")
    }

    /// `None` for bytes that are not a snapshot (written by another version): the caller
    /// treats it as no record.
    pub fn decode(bytes: &[u8]) -> Option<Snapshot> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::watch_filter::filter;

    #[test]
    fn created_changed_and_deleted_files_are_changes_and_ignored_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join("keep.org"), "a").unwrap();
        fs::write(root.join("edit.org"), "a").unwrap();
        fs::write(root.join("gone.org"), "a").unwrap();
        fs::write(root.join(".git/HEAD"), "a").unwrap();
        let watched = filter(&["*.org"], &[]);
        let before = Snapshot::take(root, &watched);
        assert_eq!(before.files.len(), 3);

        fs::write(root.join("edit.org"), "longer").unwrap();
        fs::remove_file(root.join("gone.org")).unwrap();
        fs::write(root.join("sub/new.org"), "a").unwrap();
        fs::write(root.join("notes.txt"), "not a pattern").unwrap();
        fs::write(root.join(".git/HEAD"), "changed").unwrap();
        fs::write(root.join("edit.org~"), "editor noise").unwrap();
        let after = Snapshot::take(root, &watched);

        assert_eq!(
            before.changes(&after),
            ["edit.org", "gone.org", "sub/new.org"]
        );
        assert!(after.changes(&after).is_empty());
    }

    #[test]
    fn refreshing_the_changed_paths_gives_what_a_new_walk_gives() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(root.join("a.org"), "a").unwrap();
        fs::write(root.join("gone.org"), "a").unwrap();
        fs::write(root.join("sub/deeper/b.org"), "a").unwrap();
        let watched = filter(&["*.org"], &[]);
        let mut kept = Snapshot::take(root, &watched);

        fs::write(root.join("a.org"), "longer").unwrap();
        fs::remove_file(root.join("gone.org")).unwrap();
        fs::write(root.join("new.org"), "a").unwrap();
        fs::write(root.join("noise.txt"), "a").unwrap();
        fs::remove_dir_all(root.join("sub")).unwrap();
        let reported = ["a.org", "gone.org", "new.org", "noise.txt", "sub"].map(String::from);
        kept.refresh(root, &watched, &reported);

        assert_eq!(kept, Snapshot::take(root, &watched));
    }

    #[test]
    fn a_snapshot_survives_encoding_and_garbage_is_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "a").unwrap();
        let snapshot = Snapshot::take(dir.path(), &filter(&[], &[]));
        assert_eq!(Snapshot::decode(&snapshot.encode()), Some(snapshot));
        assert_eq!(Snapshot::decode(b"not json"), None);
    }

    #[cfg(unix)]
    #[test]
    fn links_are_not_followed_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "a").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let snapshot = Snapshot::take(dir.path(), &filter(&[], &[]));
        assert_eq!(snapshot.changes(&Snapshot::default()), ["link"]);
    }
}
