//! (j) `runway watch` on a large tree: 50,000 files in 1,000 directories. Prints the time from
//! the start of `runway watch` to its watch being in place (every directory watched), and the
//! time from a file's write to its run's start (the command prints its input), with no
//! debounce, over 20 writes in different directories.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::{percentile, print, runway_binary};

const DIRECTORIES: usize = 1_000;
const FILES_PER_DIRECTORY: usize = 50;
const WRITES: usize = 20;

pub fn run() -> Result<()> {
    let root = tempfile::tempdir()?;
    for directory in 0..DIRECTORIES {
        let path = root
            .path()
            .join(format!("d{}", directory / 100))
            .join(format!("e{directory}"));
        std::fs::create_dir_all(&path)?;
        for file in 0..FILES_PER_DIRECTORY {
            std::fs::write(path.join(format!("f{file}.org")), "x")?;
        }
    }
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
        let directory = write * 37 % DIRECTORIES;
        let path = format!("d{}/e{directory}/new{write}.org", directory / 100);
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
