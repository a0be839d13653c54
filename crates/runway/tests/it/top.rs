//! `runway top` in a real pseudo-terminal of 80×24, its output read back as a screen (vt100):
//! what a person in an SSH session sees and types.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runway_api::SubmitJobRequest;
use serde_json::json;

use crate::{RUNWAY, Server};

const CONFIG: &str = r#"
[types.brief]
command = ["sh", "-c", "echo working; sleep 0.3"]

[types.hold]
command = ["sh", "-c", "echo holding; exec sleep 60"]
"#;

struct Screen {
    child: Child,
    master: std::fs::File,
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn open(server: &Server) -> Screen {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave = pty.slave;
        let child = Command::new(RUNWAY)
            .arg("top")
            .env("XDG_CONFIG_HOME", server.xdg())
            .env("TERM", "xterm-256color")
            .env_remove("RUNWAY_URL")
            .env_remove("RUNWAY_TOKEN")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(24, 80, 0)));
        let mut reader = master.try_clone().unwrap();
        let screen = Arc::clone(&parser);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                screen.lock().unwrap().process(&buffer[..read]);
            }
        });
        Screen {
            child,
            master,
            parser,
        }
    }

    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows what `shows` looks for; fails with the screen.
    fn wait_for(&self, what: &str, shows: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text();
            if shows(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "never showed {what}:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn press(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// `q`, then the process must end well and leave the terminal as it found it.
    fn quit(mut self) {
        self.press("q");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "runway top did not quit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status:?}");
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !self.parser.lock().unwrap().screen().alternate_screen(),
            "the alternate screen is left"
        );
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The jobs table's row of job `id`, if shown.
fn row<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    screen.lines().find(|line| {
        line.trim_start_matches(['│', ' '])
            .starts_with(&format!("{id} "))
    })
}

async fn submit(server: &Server, job_type: &str) -> String {
    server
        .client()
        .submit(&SubmitJobRequest {
            job_type: job_type.into(),
            input: json!({}),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn the_screen_shows_a_job_going_from_queued_to_succeeded() {
    let server = Server::start(CONFIG);
    server.client().pause_queue("default").await.unwrap();
    let id = submit(&server, "brief").await;
    let screen = Screen::open(&server);
    let shown = screen.wait_for("the queued job", |text| {
        row(text, &id).is_some_and(|row| row.contains("brief") && row.contains("queued"))
    });
    assert!(shown.contains("● live"), "{shown}");
    assert!(
        shown.contains("paused"),
        "the queue pane shows the pause:\n{shown}"
    );
    assert!(shown.contains("admin (admin)"), "{shown}");
    server.client().resume_queue("default").await.unwrap();
    screen.wait_for("the job succeeded", |text| {
        row(text, &id).is_some_and(|row| row.contains("succeeded") && row.contains("100%"))
    });
    screen.quit();
}

#[tokio::test]
async fn a_key_cancels_the_running_job_and_its_log_shows_live() {
    let server = Server::start(CONFIG);
    let id = submit(&server, "hold").await;
    let mut screen = Screen::open(&server);
    screen.wait_for("the running job", |text| {
        row(text, &id).is_some_and(|row| row.contains("running"))
    });
    screen.press("\r");
    screen.wait_for("the job's log", |text| {
        text.contains(&format!("Job {id}")) && text.contains("holding")
    });
    screen.press("c");
    screen.wait_for("the question", |text| {
        text.contains(&format!("Cancel job {id}? y"))
    });
    screen.press("y");
    screen.wait_for("the cancelled job", |text| {
        row(text, &id).is_some_and(|row| row.contains("cancelled"))
    });
    assert_eq!(server.client().job(&id).await.unwrap().status, "cancelled");
    screen.quit();
}

#[tokio::test]
async fn without_a_valid_token_top_says_so_and_leaves_the_terminal_alone() {
    let server = Server::start(CONFIG);
    let output = Command::new(RUNWAY)
        .args([
            "top",
            "--url",
            &server.url,
            "--token",
            &format!("rwy_{}", "0".repeat(64)),
        ])
        .env("XDG_CONFIG_HOME", server.xdg())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("not valid"), "{said}");
    assert!(
        output.stdout.is_empty(),
        "no screen drawn: {:?}",
        output.stdout
    );
}

#[tokio::test]
async fn top_reconnects_by_itself_when_the_server_comes_back() {
    let mut server = Server::start(CONFIG);
    let before = submit(&server, "brief").await;
    let screen = Screen::open(&server);
    screen.wait_for("the first job", |text| {
        text.contains("● live") && row(text, &before).is_some()
    });
    server.terminate();
    screen.wait_for("the lost session", |text| text.contains("reconnecting"));
    server.launch();
    let after = submit(&server, "brief").await;
    screen.wait_for("the job submitted meanwhile, live again", |text| {
        text.contains("● live")
            && row(text, &after).is_some_and(|row| row.contains("succeeded"))
            && row(text, &before).is_some()
    });
    screen.quit();
}
