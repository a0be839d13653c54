//! Artifacts: the files a command leaves in `RUNWAY_ARTIFACTS`. When the command has ended,
//! the regular files there are moved into the data directory (`artifacts/JOB/ATTEMPT/NAME`,
//! readable by the server's user only) and recorded with their name, size, SHA-256 and content
//! type. Links, FIFOs, sockets and devices are never followed, moved or served: the attempt's
//! log says what was skipped. Quotas (files per attempt, bytes per job, bytes in all) fail the
//! attempt with the setting to change, and keep none of its files.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::config::ArtifactLimits;
use crate::job::JobId;
use crate::store::{Artifact, ArtifactUsage};

/// Longest artifact name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Deepest directory nesting searched.
const MAX_DEPTH: usize = 32;

/// A regular file an attempt left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// `/`-separated path below the attempt's directory.
    pub name: String,
    pub source: PathBuf,
    pub size: u64,
}

/// What an attempt left in its directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub files: Vec<FoundFile>,
    /// What was not kept, and why, one line each.
    pub skipped: Vec<String>,
}

/// Walks `dir` without following links: regular files are found, everything else is skipped
/// with the reason. Stops looking once more than `max_files` files are found.
pub fn scan(dir: &Path, max_files: u64) -> std::io::Result<Found> {
    let mut found = Found::default();
    let mut pending = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((directory, prefix, depth)) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&directory)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(part) = entry.file_name().to_str().map(str::to_string) else {
                found.skipped.push(format!(
                    "{prefix}{} (its name is not UTF-8)",
                    entry.file_name().to_string_lossy()
                ));
                continue;
            };
            let name = format!("{prefix}{part}");
            if let Some(problem) = name_problem(&part, &name) {
                found.skipped.push(format!("{name:?} ({problem})"));
                continue;
            }
            let metadata = std::fs::symlink_metadata(&path)?;
            let kind = metadata.file_type();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path)
                    .map(|target| target.display().to_string())
                    .unwrap_or_default();
                found.skipped.push(format!(
                    "{name} → {target} (a symbolic link: links are never followed)"
                ));
            } else if kind.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    found
                        .skipped
                        .push(format!("{name}/ (nested deeper than {MAX_DEPTH} levels)"));
                } else {
                    pending.push((path, format!("{name}/"), depth + 1));
                }
            } else if kind.is_file() {
                found.files.push(FoundFile {
                    name,
                    source: path,
                    size: metadata.len(),
                });
                if found.files.len() as u64 > max_files {
                    return Ok(found);
                }
            } else {
                found.skipped.push(format!(
                    "{name} (not a regular file: a FIFO, socket or device)"
                ));
            }
        }
    }
    found.files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Why a name cannot be kept: one that could climb out of a directory or break a header.
fn name_problem(part: &str, name: &str) -> Option<&'static str> {
    if part.is_empty() || part == "." || part == ".." {
        return Some("a name that climbs directories");
    }
    if part.chars().any(char::is_control) {
        return Some("a name with control characters");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("a name longer than 1024 bytes");
    }
    None
}

/// Why `found` may not be kept under the quotas, given what the job (`job`) and every job
/// (`all`) keep already; `None` when it fits.
pub fn over_quota(
    found: &Found,
    job: ArtifactUsage,
    all: ArtifactUsage,
    limits: ArtifactLimits,
) -> Option<String> {
    let files = found.files.len() as u64;
    if files > limits.max_files {
        return Some(format!(
            "the command left more than {} files in RUNWAY_ARTIFACTS; at most {} are kept (server.artifacts_max_files)",
            limits.max_files, limits.max_files
        ));
    }
    let bytes: u64 = found.files.iter().map(|file| file.size).sum();
    if job.bytes + bytes > limits.max_job_bytes {
        return Some(format!(
            "the job's artifacts would take {} bytes; a job may keep {} (server.artifacts_max_job_bytes)",
            job.bytes + bytes,
            limits.max_job_bytes
        ));
    }
    if all.bytes + bytes > limits.max_total_bytes {
        return Some(format!(
            "artifacts would take {} bytes in all; the server keeps at most {} (server.artifacts_max_total_bytes): delete old jobs or raise the limit",
            all.bytes + bytes,
            limits.max_total_bytes
        ));
    }
    None
}

/// Moves each found file to `root/JOB/ATTEMPT/NAME` and describes it. A file that is no longer
/// a regular file once moved (swapped for a link by a process still running) is removed and
/// reported in the second list. On an error, the files moved so far are removed again.
pub fn keep(
    found: Vec<FoundFile>,
    root: &Path,
    job: JobId,
    attempt: u32,
    now: Timestamp,
) -> std::io::Result<(Vec<Artifact>, Vec<String>)> {
    let mut kept = Vec::with_capacity(found.len());
    let mut refused = Vec::new();
    // What was moved before a failure goes again: an attempt keeps all of its files or none.
    let undo = |kept: &[Artifact]| {
        for artifact in kept {
            let _ = std::fs::remove_file(root.join(&artifact.path));
        }
    };
    for file in found {
        let path = format!("{job}/{attempt}/{}", file.name);
        let destination = root.join(&path);
        let parent = destination.parent().expect("a kept file has a directory");
        if let Err(error) = create_private_dirs(root, parent)
            .and_then(|()| std::fs::rename(&file.source, &destination))
        {
            undo(&kept);
            return Err(error);
        }
        match describe(&destination) {
            Ok((size, sha256)) => kept.push(Artifact {
                job,
                content_type: content_type(&file.name),
                name: file.name,
                size,
                sha256,
                attempt,
                created_at: now,
                path,
            }),
            Err(_) => {
                let _ = std::fs::remove_file(&destination);
                refused.push(format!(
                    "{} (changed into something else while it was kept)",
                    file.name
                ));
            }
        }
    }
    Ok((kept, refused))
}

/// Size and hex SHA-256 of a regular file, opened without following a link.
fn describe(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok((size, sha256))
}

/// Creates `dir` and its parents below `root`, readable by the server's user only.
fn create_private_dirs(root: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut current = Some(dir);
    while let Some(path) = current {
        if !path.starts_with(root) {
            break;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        current = path.parent();
    }
    Ok(())
}

/// The content type a name says, `application/octet-stream` when it says none.
pub fn content_type(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ArtifactLimits {
        ArtifactLimits {
            max_files: 3,
            max_job_bytes: 100,
            max_total_bytes: 1000,
        }
    }

    #[test]
    fn regular_files_are_found_and_the_rest_is_skipped_with_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("episode.wav"), b"RIFF").unwrap();
        std::fs::create_dir_all(dir.path().join("parts/deep")).unwrap();
        std::fs::write(dir.path().join("parts/deep/1.txt"), b"one").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::write(dir.path().join("bad\nname"), b"x").unwrap();
        let found = scan(dir.path(), 10).unwrap();
        let names: Vec<&str> = found.files.iter().map(|file| file.name.as_str()).collect();
        assert_eq!(names, ["episode.wav", "parts/deep/1.txt"]);
        assert_eq!(found.files[0].size, 4);
        let skipped = found.skipped.join("\n");
        assert!(
            skipped.contains("passwd → /etc/passwd (a symbolic link"),
            "{skipped}"
        );
        assert!(skipped.contains("pipe (not a regular file"), "{skipped}");
        assert!(skipped.contains("control characters"), "{skipped}");
    }

    #[test]
    fn quotas_name_the_setting_to_change() {
        let file = |size| FoundFile {
            name: "a".into(),
            source: PathBuf::new(),
            size,
        };
        let none = ArtifactUsage::default();
        let many = Found {
            files: vec![file(1), file(1), file(1), file(1)],
            skipped: Vec::new(),
        };
        assert!(
            over_quota(&many, none, none, limits())
                .unwrap()
                .contains("server.artifacts_max_files")
        );
        let big = Found {
            files: vec![file(60)],
            skipped: Vec::new(),
        };
        assert_eq!(over_quota(&big, none, none, limits()), None);
        let used = ArtifactUsage {
            files: 1,
            bytes: 50,
        };
        assert!(
            over_quota(&big, used, used, limits())
                .unwrap()
                .contains("server.artifacts_max_job_bytes")
        );
        let full = ArtifactUsage {
            files: 9,
            bytes: 990,
        };
        assert!(
            over_quota(&big, none, full, limits())
                .unwrap()
                .contains("server.artifacts_max_total_bytes")
        );
    }

    #[test]
    fn kept_files_move_into_private_directories_with_their_hash_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("attempt");
        std::fs::create_dir_all(source.join("sub")).unwrap();
        std::fs::write(source.join("sub/a.wav"), b"abc").unwrap();
        let root = dir.path().join("artifacts");
        std::fs::create_dir_all(&root).unwrap();
        let found = scan(&source, 10).unwrap();
        let (kept, refused) = keep(found.files, &root, JobId(7), 2, chrono::Utc::now()).unwrap();
        assert!(refused.is_empty());
        assert_eq!(kept[0].name, "sub/a.wav");
        assert_eq!(kept[0].path, "7/2/sub/a.wav");
        assert_eq!(kept[0].size, 3);
        assert_eq!(
            kept[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(kept[0].content_type, "audio/wav");
        assert!(!source.join("sub/a.wav").exists(), "moved, not copied");
        let mode = std::fs::metadata(root.join("7/2/sub"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
