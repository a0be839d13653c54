//! A full disk (issue 9): the server says so, changes nothing half-way, and never presents a
//! cut log as whole. Each test mounts its own small tmpfs and unmounts it at the end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use runway_api::SubmitJobRequest;
use runway_client::ClientError;
use serde_json::{Value, json};

use crate::{RUNWAY, Server, eventually, finished, stderr};

/// A tmpfs of a few MiB, mounted for one test; unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount_at(path: &Path, mebibytes: u32) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let options = format!("size={mebibytes}m,mode=0700");
        let mounted = privileged(&["mount", "-t", "tmpfs", "-o", &options, "tmpfs"], path);
        assert!(
            mounted,
            "the full-disk tests mount a tmpfs: run the tests as root, or with sudo that needs no password"
        );
        SmallDisk {
            path: path.to_path_buf(),
        }
    }

    /// Writes a filler file until the disk refuses more; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(error) = file.write_all(&chunk) {
                assert_eq!(error.raw_os_error(), Some(28), "ENOSPC: {error}");
                break;
            }
        }
        // What is left is less than a chunk: take it byte by byte in pages.
        let page = vec![0u8; 4096];
        while file.write_all(&page).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        privileged(&["umount", "-l"], &self.path);
    }
}

/// Runs `command path` as root: directly when the tests run as root, else through `sudo -n`.
fn privileged(command: &[&str], path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|this| this.uid() == 0);
    let mut process = if as_root {
        Command::new(command[0])
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("-n").arg(command[0]);
        sudo
    };
    process
        .args(&command[1..])
        .arg(path)
        .status()
        .is_ok_and(|status| status.success())
}

const CONFIG: &str = r#"
[types.noop]
handler = "noop"
max_attempts = 1
"#;

async fn readyz(server: &Server) -> (StatusCode, Value) {
    let answer = reqwest::get(format!("{}/readyz", server.url))
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap())
}

#[tokio::test]
async fn a_submit_on_a_full_disk_gets_507_and_changes_nothing() {
    let mut disk = None;
    let server = Server::start_prepared(
        |_| CONFIG.to_string(),
        |data| disk = Some(SmallDisk::mount_at(data, 16)),
    );
    let disk = disk.unwrap();
    let client = server.client();
    let (status, _) = readyz(&server).await;
    assert_eq!(status, StatusCode::OK);

    let filler = disk.fill();
    let (status, body) = readyz(&server).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"]["code"], "storage_full");

    // SQLite may still have room inside its WAL for a few writes; big ones soon need more.
    let big = SubmitJobRequest {
        job_type: "noop".into(),
        input: json!({"padding": "x".repeat(200_000)}),
        ..Default::default()
    };
    let mut accepted: u64 = 0;
    let mut refusal = None;
    for _ in 0..100 {
        match client.submit(&big).await {
            Ok(_) => accepted += 1,
            Err(ClientError::Api {
                status,
                code,
                message,
            }) => {
                refusal = Some((status, code, message));
                break;
            }
            Err(other) => panic!("{other}"),
        }
    }
    let (status, code, message) = refusal.expect("a submit was refused on the full disk");
    assert_eq!((status, code.as_str()), (507, "storage_full"), "{message}");
    assert!(message.contains("retry later"), "{message}");

    std::fs::remove_file(filler).unwrap();
    let (status, _) = readyz(&server).await;
    assert_eq!(status, StatusCode::OK, "ready once space is back");
    let after = client.submit(&big).await.expect("a submit works again");
    let count = client
        .count_jobs(&runway_client::ListJobs::default())
        .await
        .unwrap();
    assert_eq!(count, accepted + 1, "exactly the acknowledged jobs exist");
    assert_eq!(client.job(&after.id).await.unwrap().id, after.id);
}

#[test]
fn starting_on_a_full_disk_says_the_disk_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount_at(&dir.path().join("disk"), 2);
    disk.fill();
    let output = Command::new(RUNWAY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(disk.path.join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("is full"), "{message}");
    assert!(message.contains("free some space"), "{message}");
    assert!(!message.contains("disk I/O error") || message.contains("is full"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_text_lost_to_a_full_disk_is_counted_and_noted() {
    let mut disk = None;
    let server = Server::start_prepared(
        |dir| {
            let signal = |name: &str| dir.join(name).display().to_string();
            format!(
                r#"
[types.chatty]
command = ["sh", "-c", "while [ ! -e \"$GO\" ]; do sleep 0.02; done; head -c 3000000 /dev/zero | tr '\\0' x | fold -w 99; touch \"$PRINTED\"; while [ ! -e \"$FREED\" ]; do sleep 0.02; done; echo after"]
env = {{ GO = "{}", PRINTED = "{}", FREED = "{}" }}
max_attempts = 1
"#,
                signal("go"),
                signal("printed"),
                signal("freed")
            )
        },
        |data| disk = Some(SmallDisk::mount_at(data, 16)),
    );
    let disk = disk.unwrap();
    let client = server.client();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "chatty".into(),
            input: json!({}),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("the job to start", Duration::from_secs(20), || async {
        let job = client.job(&job.id).await.unwrap();
        (job.status == "running").then_some(())
    })
    .await;

    let filler = disk.fill();
    std::fs::write(server.path("go"), "").unwrap();
    eventually(
        "the job to print its 3 MB",
        Duration::from_secs(30),
        || async { server.path("printed").exists().then_some(()) },
    )
    .await;
    std::fs::remove_file(filler).unwrap();
    std::fs::write(server.path("freed"), "").unwrap();

    let job = finished(&client, &job.id).await;
    assert_eq!(job.status, "succeeded", "{job:?}");
    assert!(job.log_lost > 0, "the lost bytes are counted: {job:?}");
    let mut log = String::new();
    let mut offset = 0;
    loop {
        let chunk = client.log(&job.id, offset).await.unwrap();
        log.push_str(&chunk.data);
        offset = chunk.next_offset;
        if chunk.complete {
            break;
        }
    }
    let note = format!("[runway: {} bytes of log were lost here: ", job.log_lost);
    assert!(log.contains(&note), "no note {note:?} in the log");
    assert!(log.ends_with("after\n"), "the log goes on after the note");
    let shown = crate::stdout(&server.cli(&["show", &job.id]));
    assert!(
        shown.contains(&format!(
            "{} bytes lost: the server's disk was full",
            job.log_lost
        )),
        "{shown}"
    );
    // fold makes 30,303 lines of 99 x and 3 x without a newline, which "after" ends.
    let printed = 30_303 * 100 + 3 + "after\n".len() as u64;
    assert_eq!(
        job.log_size + job.log_lost,
        printed + note_length(&log),
        "every byte printed is either kept or counted as lost"
    );
}

/// The length of the lost-log notes in `log`.
fn note_length(log: &str) -> u64 {
    log.lines()
        .filter(|line| line.starts_with("[runway: ") && line.contains("lost here"))
        .map(|line| line.len() as u64 + 1)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ends_while_the_disk_is_full_still_counts_its_lost_log() {
    let mut disk = None;
    let server = Server::start_prepared(
        |dir| {
            format!(
                r#"
[types.chatty]
command = ["sh", "-c", "while [ ! -e \"$GO\" ]; do sleep 0.02; done; head -c 3000000 /dev/zero | tr '\\0' x | fold -w 99; echo; echo done"]
env = {{ GO = "{}" }}
max_attempts = 1
"#,
                dir.join("go").display()
            )
        },
        |data| disk = Some(SmallDisk::mount_at(data, 16)),
    );
    let disk = disk.unwrap();
    let client = server.client();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "chatty".into(),
            input: json!({}),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("the job to start", Duration::from_secs(20), || async {
        let job = client.job(&job.id).await.unwrap();
        (job.status == "running").then_some(())
    })
    .await;
    let filler = disk.fill();
    std::fs::write(server.path("go"), "").unwrap();
    // The command prints and exits while the disk is still full: its attempt cannot end
    // before the note about the lost log is stored.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let meanwhile = client.job(&job.id).await.unwrap();
    assert_eq!(meanwhile.status, "running", "{meanwhile:?}");
    std::fs::remove_file(filler).unwrap();
    let job = finished(&client, &job.id).await;
    assert_eq!(job.status, "succeeded", "{job:?}");
    assert!(job.log_lost > 0, "{job:?}");
}

/// A watch trigger whose run cannot be submitted (the disk is full) keeps its changes and
/// submits them once there is room again.
#[tokio::test]
async fn a_watch_trigger_keeps_its_changes_through_a_full_disk() {
    let mut disk = None;
    let server = Server::start_prepared(
        |dir| {
            std::fs::create_dir_all(dir.join("notes")).unwrap();
            format!(
                "{CONFIG}\n[triggers.notes]\nwatch = \"notes\"\ndebounce = \"100ms\"\ntype = \"noop\"\n"
            )
        },
        |data| disk = Some(SmallDisk::mount_at(data, 16)),
    );
    let disk = disk.unwrap();
    let client = server.client();
    eventually("the watch in place", Duration::from_secs(10), || async {
        let trigger = client.trigger("notes").await.unwrap();
        (trigger.revision > 0).then_some(())
    })
    .await;
    let filler = disk.fill();
    // A run listing 2,000 long paths: more than SQLite's WAL can take on the full disk.
    let mut names: Vec<String> = (0..2000)
        .map(|n| format!("{n:04}-{}.txt", "a-rather-long-file-name-".repeat(4)))
        .collect();
    for name in &names {
        std::fs::write(server.path("notes").join(name), "x").unwrap();
    }
    let problem = eventually("the refused run", Duration::from_secs(30), || async {
        client.trigger("notes").await.unwrap().problem
    })
    .await;
    assert!(problem.contains("full"), "{problem}");
    assert!(
        client
            .trigger("notes")
            .await
            .unwrap()
            .recent_jobs
            .is_empty()
    );

    std::fs::remove_file(filler).unwrap();
    let job = eventually(
        "the run once there is room",
        Duration::from_secs(30),
        || async { client.trigger("notes").await.unwrap().recent_jobs.pop() },
    )
    .await;
    let job = client.job(&job.id).await.unwrap();
    names.sort();
    assert_eq!(job.input["paths"], json!(names));
    // The trigger's view clears its problem once its driver hears the submit went through,
    // a moment after the job is stored.
    eventually("the problem cleared", Duration::from_secs(10), || async {
        client
            .trigger("notes")
            .await
            .unwrap()
            .problem
            .is_none()
            .then_some(())
    })
    .await;
}
