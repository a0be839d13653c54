//! Which paths under a watched root a watch trigger counts as changes, and which directories it
//! does not enter. Paths are relative to the root, with `/` between components.
//!
//! - `.git` is never entered, at any depth.
//! - Editor and sync noise never counts (`NOISE`): lock files, backups, swap and temporary
//!   files that editors write beside a file as it is saved.
//! - `ignore` globs (gitignore-style: `*` stays within a component, `**` crosses them) name
//!   paths that never count; a directory they name, or whose every entry they cover
//!   (`archive/**`), is not entered.
//! - `patterns` are globs on the file name (`*.org`); without any, every file counts.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// File names editors and sync tools write while saving: Emacs lock files and backups, Vim's
/// swap files and its write test (`4913`), temporary files, undo-tree history.
pub const NOISE: &[&str] = &[
    ".#*",
    "*~",
    "*.swp",
    "*.swx",
    "*.tmp",
    "*.~undo-tree~*",
    "4913",
];

/// Directories never entered.
pub const SKIPPED_DIRS: &[&str] = &[".git"];

#[derive(Debug, Clone)]
pub struct WatchFilter {
    patterns: Option<GlobSet>,
    ignore: GlobSet,
    noise: GlobSet,
}

/// A glob that does not parse, with why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{glob}` is not a glob: {reason}")]
pub struct BadGlob {
    pub glob: String,
    pub reason: String,
}

fn compile(globs: &[impl AsRef<str>], literal_separator: bool) -> Result<GlobSet, BadGlob> {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        let glob = glob.as_ref();
        let compiled = GlobBuilder::new(glob)
            .literal_separator(literal_separator)
            .build()
            .map_err(|error| BadGlob {
                glob: glob.to_string(),
                reason: error.kind().to_string(),
            })?;
        set.add(compiled);
    }
    set.build().map_err(|error| BadGlob {
        glob: globs
            .iter()
            .map(|glob| glob.as_ref())
            .collect::<Vec<_>>()
            .join(", "),
        reason: error.to_string(),
    })
}

impl WatchFilter {
    /// Compiles `patterns` (on file names) and `ignore` (on relative paths).
    pub fn new(patterns: &[String], ignore: &[String]) -> Result<WatchFilter, BadGlob> {
        let patterns = if patterns.is_empty() {
            None
        } else {
            Some(compile(patterns, true)?)
        };
        Ok(WatchFilter {
            patterns,
            ignore: compile(ignore, true)?,
            noise: compile(NOISE, true)?,
        })
    }

    /// A directory (relative to the root) the watch does not enter.
    pub fn skips_dir(&self, relative: &Path) -> bool {
        let named_skipped = relative
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| SKIPPED_DIRS.contains(&name));
        // `archive/**` names no directory but covers every entry of `archive`.
        named_skipped
            || self.ignore.is_match(relative)
            || self.ignore.is_match(relative.join("entry"))
    }

    /// Whether a change of this file (relative to the root) counts.
    pub fn counts(&self, relative: &Path) -> bool {
        let Some(name) = relative.file_name() else {
            return false;
        };
        if self.noise.is_match(Path::new(name)) || self.ignore.is_match(relative) {
            return false;
        }
        let mut ancestor = relative.parent();
        while let Some(dir) = ancestor.filter(|dir| !dir.as_os_str().is_empty()) {
            if self.skips_dir(dir) {
                return false;
            }
            ancestor = dir.parent();
        }
        self.patterns
            .as_ref()
            .is_none_or(|patterns| patterns.is_match(Path::new(name)))
    }
}

/// A filter from globs known to parse, for tests.
#[cfg(test)]
pub(crate) fn filter(patterns: &[&str], ignore: &[&str]) -> WatchFilter {
    let owned = |globs: &[&str]| {
        globs
            .iter()
            .map(|glob| glob.to_string())
            .collect::<Vec<_>>()
    };
    WatchFilter::new(&owned(patterns), &owned(ignore)).expect("the globs parse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_patterns_every_file_counts() {
        let all = filter(&[], &[]);
        assert!(all.counts(Path::new("a.org")));
        assert!(all.counts(Path::new("deep/down/notes.txt")));
    }

    #[test]
    fn patterns_match_the_file_name_at_any_depth() {
        let org = filter(&["*.org"], &[]);
        assert!(org.counts(Path::new("a.org")));
        assert!(org.counts(Path::new("2026/11/journal.org")));
        assert!(!org.counts(Path::new("a.org.html")));
        assert!(!org.counts(Path::new("org/readme.md")));
    }

    #[test]
    fn editor_and_sync_noise_never_counts() {
        let all = filter(&[], &[]);
        for noise in [
            ".#a.org",
            "a.org~",
            ".a.org.swp",
            "dir/.a.org.swx",
            "x.tmp",
            ".a.org.~undo-tree~",
            "4913",
        ] {
            assert!(!all.counts(Path::new(noise)), "{noise} is noise");
        }
        assert!(all.counts(Path::new("49134")), "only the exact name 4913");
    }

    #[test]
    fn git_directories_are_never_entered_at_any_depth() {
        let all = filter(&[], &[]);
        assert!(all.skips_dir(Path::new(".git")));
        assert!(all.skips_dir(Path::new("vendor/lib/.git")));
        assert!(!all.counts(Path::new(".git/index")));
        assert!(!all.counts(Path::new("vendor/lib/.git/HEAD")));
        assert!(all.counts(Path::new(".gitignore")));
    }

    #[test]
    fn ignored_paths_do_not_count_and_ignored_directories_are_not_entered() {
        let some = filter(&[], &["archive/**", "**/node_modules", "*.log"]);
        assert!(some.skips_dir(Path::new("archive")));
        assert!(!some.counts(Path::new("archive/old.org")));
        assert!(
            some.counts(Path::new("notes/archive/old.org")),
            "anchored at the root"
        );
        assert!(some.skips_dir(Path::new("web/node_modules")));
        assert!(!some.counts(Path::new("web/node_modules/x/index.js")));
        assert!(!some.counts(Path::new("build.log")));
        assert!(
            some.counts(Path::new("logs/build.txt")),
            "`*` stays within a component"
        );
        assert!(!some.skips_dir(Path::new("notes")));
    }

    #[test]
    fn a_bad_glob_is_named_with_its_reason() {
        let error = WatchFilter::new(&["[abc".into()], &[]).expect_err("refused");
        assert_eq!(error.glob, "[abc");
        assert!(
            error.to_string().starts_with("`[abc` is not a glob: "),
            "{error}"
        );
        let error = WatchFilter::new(&[], &["ok/**".into(), "{a".into()]).expect_err("refused");
        assert_eq!(error.glob, "{a", "the bad one among several");
    }
}
