//! (j) Watching a large tree: 50,000 files in 1,000 directories, with no debounce, over 20
//! writes in different directories.
//!
//! - `runway watch`: the time from its start to its watch being in place (every directory
//!   watched), and from a file's write to its run's start (the command prints its input).
//! - A server's watch trigger: the time from `runway serve`'s start to the trigger watching (its
//!   tree watched and its snapshot taken), and from a file's write to the trigger's job being
//!   submitted (its `submitted` change on the live feed).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::path::Path;

use anyhow::{Context, Result, bail};
use runway_api::FeedMessage;
use runway_client::{Client, UpdatesQuery};
use serde_json::json;

use crate::{CONFIG, percentile, print, runway_binary, start_server_with};

const DIRECTORIES: usize = 1_000;
const FILES_PER_DIRECTORY: usize = 50;
const WRITES: usize = 20;

/// Fills `root` with the tree.
fn make_tree(root: &Path) -> Result<()> {
    for directory in 0..DIRECTORIES {
        let path = root
            .join(format!("d{}", directory / 100))
            .join(format!("e{directory}"));
        std::fs::create_dir_all(&path)?;
        for file in 0..FILES_PER_DIRECTORY {
            std::fs::write(path.join(format!("f{file}.org")), "x")?;
        }
    }
    Ok(())
}

/// The path of the `write`th new file, in a directory of its own.
fn new_file(write: usize) -> String {
    let directory = write * 37 % DIRECTORIES;
    format!("d{}/e{directory}/new{write}.org", directory / 100)
}

pub fn run() -> Result<()> {
    let root = tempfile::tempdir()?;
    make_tree(root.path())?;
    let started = Instant::now();
    let mut child = Command::new(runway_binary())
        .arg("watch")
        .arg(root.path())
        .args(["--debounce", "0s", "--", "sh", "-c", "cat; echo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start runway watch; build it with cargo build --release -p runway")?;
    let (ready, watching) = mpsc::channel();
    let stderr = child.stderr.take().context("stderr")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("runway watch: watching ") {
                let _ = ready.send(Instant::now());
            }
        }
    });
    let (sender, runs) = mpsc::channel();
    let stdout = child.stdout.take().context("stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send((Instant::now(), line));
        }
    });
    let in_place = watching.recv_timeout(Duration::from_secs(120))? - started;
    let mut latencies = Vec::with_capacity(WRITES);
    for write in 0..WRITES {
        let path = new_file(write);
        let written = Instant::now();
        std::fs::write(root.path().join(&path), "x")?;
        let (arrived, line) = runs.recv_timeout(Duration::from_secs(10))?;
        anyhow::ensure!(line.contains(&path), "run for {path}: {line}");
        latencies.push((arrived - written).as_secs_f64() * 1000.0);
        // Let the run end before the next write, so each write is one run.
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort_by(f64::total_cmp);
    print(json!({
        "figure": "j_watch", "files": DIRECTORIES * FILES_PER_DIRECTORY, "directories": DIRECTORIES + 10,
        "seconds_to_watch": in_place.as_secs_f64(),
        "write_to_run_ms_p50": percentile(&latencies, 0.5), "write_to_run_ms_max": latencies[WRITES - 1],
    }));
    Ok(())
}

pub async fn run_trigger() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("tree");
    make_tree(&root)?;
    let config = format!(
        "{CONFIG}\n[triggers.tree]\nwatch = \"tree\"\ndebounce = \"0s\"\ntype = \"noop\"\n"
    );
    let started = Instant::now();
    let (server, _) = start_server_with(dir, &config).await?;
    let client = Client::new(&server.url, Some(server.token.clone()));
    loop {
        let trigger = client.trigger("tree").await?;
        if let Some(problem) = trigger.problem {
            bail!("the trigger cannot watch: {problem}");
        }
        if trigger.revision > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_place = started.elapsed();
    let mut feed = client.updates(&UpdatesQuery::default()).await?;
    let mut latencies = Vec::with_capacity(WRITES);
    for write in 0..WRITES {
        let path = new_file(write);
        let written = Instant::now();
        std::fs::write(root.join(&path), "x")?;
        let mut submitted = None;
        // Its `submitted` change, then its end: one run per write.
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), feed.next())
                .await
                .with_context(|| format!("no run for {path} within 10 s"))?
                .context("the feed closed")??;
            let FeedMessage::Frame(frame) = message else {
                continue;
            };
            for update in frame.jobs {
                let ours = update.input["paths"] == json!([path]);
                if ours && update.kind == "submitted" {
                    submitted = Some(written.elapsed());
                }
                if ours && update.status == "succeeded" {
                    latencies.push(
                        submitted
                            .context("its end came before its submit")?
                            .as_secs_f64()
                            * 1000.0,
                    );
                }
            }
            if latencies.len() > write {
                break;
            }
        }
        // Let the trigger go idle before the next write, so each write is one run.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    latencies.sort_by(f64::total_cmp);
    print(json!({
        "figure": "j_trigger", "files": DIRECTORIES * FILES_PER_DIRECTORY,
        "seconds_from_serve_to_watching": in_place.as_secs_f64(),
        "write_to_submit_ms_p50": percentile(&latencies, 0.5), "write_to_submit_ms_max": latencies[WRITES - 1],
    }));
    Ok(())
}
