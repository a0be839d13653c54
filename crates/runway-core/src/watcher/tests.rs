use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::watch_filter::filter;

/// Every path reported until `last` is, or a panic after 10 s; an overflow fails the test.
async fn seen_until(
    changes: &mut async_mpsc::UnboundedReceiver<Change>,
    last: &str,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(last) {
        match tokio::time::timeout_at(deadline, changes.recv()).await {
            Ok(Some(Change::Paths(paths))) => seen.extend(paths),
            Ok(Some(Change::Overflow)) => panic!("unexpected overflow; seen {seen:?}"),
            Ok(None) => panic!("the watch ended; seen {seen:?}"),
            Err(_) => panic!("`{last}` was not reported within 10s; seen {seen:?}"),
        }
    }
    seen
}

#[tokio::test]
async fn files_written_anywhere_in_the_tree_are_reported_relative_to_the_root() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("2026/11")).unwrap();
    let (_watch, mut changes) = watch(root.path(), filter(&[], &[])).unwrap();
    std::fs::write(root.path().join("a.org"), "a").unwrap();
    std::fs::write(root.path().join("2026/11/b.org"), "b").unwrap();
    let seen = seen_until(&mut changes, "2026/11/b.org").await;
    assert!(seen.contains("a.org"), "{seen:?}");
}

#[tokio::test]
async fn noise_ignored_paths_git_and_other_patterns_are_not_reported() {
    let root = tempfile::tempdir().unwrap();
    for dir in [".git", "archive", "notes"] {
        std::fs::create_dir(root.path().join(dir)).unwrap();
    }
    let (_watch, mut changes) = watch(root.path(), filter(&["*.org"], &["archive/**"])).unwrap();
    for path in [
        ".git/index",
        "archive/old.org",
        "notes/.#a.org",
        "notes/a.org~",
        "4913",
        "notes/a.txt",
    ] {
        std::fs::write(root.path().join(path), "x").unwrap();
    }
    std::fs::write(root.path().join("notes/a.org"), "a").unwrap();
    let seen = seen_until(&mut changes, "notes/a.org").await;
    assert_eq!(seen, BTreeSet::from(["notes/a.org".to_string()]));
}

#[tokio::test]
async fn a_new_directory_is_watched_and_files_made_in_it_before_are_reported() {
    let root = tempfile::tempdir().unwrap();
    let (_watch, mut changes) = watch(root.path(), filter(&[], &[])).unwrap();
    // Made in one go, faster than a watch can be put on `new/deep`.
    std::fs::create_dir_all(root.path().join("new/deep")).unwrap();
    std::fs::write(root.path().join("new/deep/first.org"), "1").unwrap();
    seen_until(&mut changes, "new/deep/first.org").await;
    std::fs::write(root.path().join("new/deep/second.org"), "2").unwrap();
    seen_until(&mut changes, "new/deep/second.org").await;
}

#[tokio::test]
async fn an_atomic_save_and_a_delete_are_changes() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.org"), "old").unwrap();
    std::fs::write(root.path().join("gone.org"), "x").unwrap();
    let (_watch, mut changes) = watch(root.path(), filter(&["*.org"], &[])).unwrap();
    // As editors save: write a temporary file beside it, then rename it over the original.
    std::fs::write(root.path().join("a.org.tmp"), "new").unwrap();
    std::fs::rename(root.path().join("a.org.tmp"), root.path().join("a.org")).unwrap();
    seen_until(&mut changes, "a.org").await;
    std::fs::remove_file(root.path().join("gone.org")).unwrap();
    seen_until(&mut changes, "gone.org").await;
}

#[tokio::test]
async fn a_link_out_of_the_root_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("elsewhere")).unwrap();
    let (_watch, mut changes) = watch(root.path(), filter(&[], &[])).unwrap();
    std::fs::write(outside.path().join("secret.org"), "x").unwrap();
    std::fs::write(root.path().join("here.org"), "x").unwrap();
    let seen = seen_until(&mut changes, "here.org").await;
    assert_eq!(
        seen,
        BTreeSet::from(["here.org".to_string()]),
        "nothing through the link"
    );
}

#[test]
fn the_watch_limit_error_names_the_setting_and_the_count() {
    let error = WatchError::Limit {
        root: "/home/me/notes".into(),
        needed: 51_234,
    };
    let message = error.to_string();
    assert!(message.contains("fs.inotify.max_user_watches"), "{message}");
    assert!(message.contains("51234"), "{message}");
    assert!(message.contains("/home/me/notes"), "{message}");
}

#[tokio::test]
async fn a_directory_moved_out_of_the_tree_asks_for_everything() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("module")).unwrap();
    std::fs::write(root.path().join("module/a.rs"), "x").unwrap();
    let (_watch, mut changes) = watch(root.path(), filter(&["*.rs"], &[])).unwrap();
    std::fs::rename(root.path().join("module"), outside.path().join("module")).unwrap();
    let change = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .expect("a change within 10s");
    assert_eq!(
        change,
        Some(Change::Overflow),
        "its files went with it, unnamed"
    );
}

#[tokio::test]
async fn a_directory_whose_metadata_changes_is_not_reported_again() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("notes")).unwrap();
    std::fs::write(root.path().join("notes/a.org"), "x").unwrap();
    let (_watch, mut changes) = watch(root.path(), filter(&[], &[])).unwrap();
    let notes = root.path().join("notes");
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(root.path().join("b.org"), "x").unwrap();
    let seen = seen_until(&mut changes, "b.org").await;
    assert_eq!(
        seen,
        BTreeSet::from(["b.org".to_string()]),
        "a chmod is no new directory"
    );
}
