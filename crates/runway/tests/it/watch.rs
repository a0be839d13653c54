//! `runway watch`: the watch trigger's state machine in the foreground, on real directories
//! and real processes. The command prints its input (`cat; echo`), one line per run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::RUNWAY;

/// A running `runway watch`, its command's stdout read line by line.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Its own `runway watch:` lines.
    notes: mpsc::Receiver<String>,
}

impl Watch {
    fn start(dir: &Path, flags: &[&str], command: &str) -> Watch {
        Watch::start_argv(dir, flags, &["sh", "-c", command])
    }

    fn start_argv(dir: &Path, flags: &[&str], argv: &[&str]) -> Watch {
        let mut child = Command::new(RUNWAY)
            .arg("watch")
            .arg(dir)
            .args(flags)
            .arg("--")
            .args(argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        // The watch is in place once it says so; a change made before would be missed.
        let (note, notes) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if note.send(line).is_err() {
                    return;
                }
            }
        });
        let watch = Watch {
            child,
            lines,
            notes,
        };
        watch.note_starting("runway watch: watching ");
        watch
    }

    /// Waits for its next line that starts with `start`, or panics after 10 s.
    fn note_starting(&self, start: &str) -> String {
        loop {
            let line = self
                .notes
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no line starting with `{start}`"));
            if line.starts_with(start) {
                return line;
            }
        }
    }

    /// The next run's input, or a panic after `seconds`.
    fn next_run(&self, seconds: u64) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(seconds))
            .expect("a run within the time");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not an input: {line}"))
    }

    /// Asserts that no run starts within `millis`.
    fn no_run_for(&self, millis: u64) {
        if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(millis)) {
            panic!("an unexpected run: {line}");
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(dir: &Path, path: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "x").unwrap();
}

#[test]
fn a_burst_of_saves_runs_the_command_once_with_every_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let watch = Watch::start(dir.path(), &["--debounce", "500ms"], "cat; echo");
    write(dir.path(), "a.org");
    write(dir.path(), "sub/b.org");
    write(dir.path(), "a.org");
    assert_eq!(
        watch.next_run(10),
        json!({"trigger": "watch", "paths": ["a.org", "sub/b.org"]})
    );
    watch.no_run_for(1500);
}

#[test]
fn changes_during_a_run_lead_to_exactly_one_more_run() {
    let dir = tempfile::tempdir().unwrap();
    let watch = Watch::start(dir.path(), &["--debounce", "200ms"], "cat; echo; sleep 1");
    write(dir.path(), "a.org");
    assert_eq!(watch.next_run(10)["paths"], json!(["a.org"]));
    // The command sleeps now: these changes arrive while it runs.
    write(dir.path(), "b.org");
    write(dir.path(), "c.org");
    assert_eq!(watch.next_run(10)["paths"], json!(["b.org", "c.org"]));
    watch.no_run_for(2000);
}

#[test]
fn noise_git_ignored_paths_and_other_names_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::create_dir_all(dir.path().join("archive")).unwrap();
    let watch = Watch::start(
        dir.path(),
        &[
            "--debounce",
            "200ms",
            "--pattern",
            "*.org",
            "--ignore",
            "archive/**",
        ],
        "cat; echo",
    );
    for path in [
        ".#a.org",
        "a.org~",
        ".a.org.swp",
        "4913",
        ".git/index",
        "archive/old.org",
        "a.txt",
    ] {
        write(dir.path(), path);
    }
    watch.no_run_for(1000);
    write(dir.path(), "new/deep/a.org");
    assert_eq!(watch.next_run(10)["paths"], json!(["new/deep/a.org"]));
}

#[test]
fn once_runs_the_command_now_and_exits_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(RUNWAY)
        .arg("watch")
        .arg(dir.path())
        .args([
            "--once",
            "--",
            "sh",
            "-c",
            "cat; echo; cat \"$RUNWAY_INPUT\"; echo; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for line in lines {
        let input: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            input,
            json!({"trigger": "watch", "paths": null}),
            "stdin and RUNWAY_INPUT"
        );
    }
}

#[test]
fn sigterm_ends_the_command_and_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    let mut watch = Watch::start(
        dir.path(),
        &["--debounce", "100ms"],
        "echo $$; exec sleep 60",
    );
    write(dir.path(), "a.org");
    let pid: i32 = watch
        .lines
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .parse()
        .unwrap();
    let command = nix::unistd::Pid::from_raw(pid);
    assert!(
        nix::sys::signal::kill(command, None).is_ok(),
        "the command runs"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = watch.child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "128 + SIGTERM");
    assert!(
        nix::sys::signal::kill(command, None).is_err(),
        "the command ended with the watch"
    );
}

#[test]
fn bad_arguments_are_refused_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let dir_arg = dir.path().to_str().unwrap();
    for (args, says) in [
        (
            vec![missing.to_str().unwrap(), "--", "true"],
            "is not a directory",
        ),
        (
            vec![dir_arg, "--pattern", "[abc", "--", "true"],
            "`[abc` is not a glob",
        ),
        (
            vec![dir_arg, "--debounce", "soon", "--", "true"],
            "--debounce `soon` is not a duration",
        ),
    ] {
        let output = Command::new(RUNWAY)
            .arg("watch")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn what_a_run_left_running_ends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let pid_file = outside.path().join("background.pid");
    let command = format!(
        "cat; echo; sleep 60 > /dev/null 2>&1 & echo $! > {}",
        pid_file.display()
    );
    let watch = Watch::start(dir.path(), &["--debounce", "100ms"], &command);
    write(dir.path(), "a.org");
    watch.next_run(10);
    watch.note_starting("runway watch: the command exited");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let background = nix::unistd::Pid::from_raw(pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(background, None).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run's background process outlived it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_that_cannot_start_fails_its_run_and_the_watch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-program");
    let watch = Watch::start_argv(
        dir.path(),
        &["--debounce", "100ms", "--ignore", "no-such-program"],
        &[missing.to_str().unwrap()],
    );
    write(dir.path(), "a.org");
    assert!(
        watch
            .note_starting("runway watch: cannot start")
            .contains("no-such-program")
    );
    write(dir.path(), "b.org");
    watch.note_starting("runway watch: running");
    watch.note_starting("runway watch: cannot start");
}
