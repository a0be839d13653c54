//! The CLI as a user runs it: ids on stdout, exit codes, tables and JSON.

use std::process::Command;

use serde_json::Value;

use crate::{RUNWAY, Server, stderr, stdout};

fn id_of(output: &std::process::Output) -> String {
    assert!(output.status.success(), "add failed: {}", stderr(output));
    let id = stdout(output).trim().to_string();
    assert!(
        id.parse::<u64>().is_ok(),
        "add printed `{id}`, not an id alone"
    );
    id
}

#[test]
fn add_wait_and_logs_show_the_output() {
    let server = Server::start("");
    let id = id_of(&server.cli(&["add", "--", "echo", "hi"]));
    let wait = server.cli(&["wait", &id]);
    assert_eq!(wait.status.code(), Some(0), "{}", stderr(&wait));
    assert_eq!(stdout(&wait).trim(), format!("{id} succeeded"));
    let logs = server.cli(&["logs", &id]);
    assert_eq!(stdout(&logs), "hi\n");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&server.cli(&["logs", &id, "-o", "json"]))).unwrap();
    assert_eq!(json["data"], "hi\n");
    assert_eq!(json["complete"], true);
}

#[test]
fn several_words_are_quoted_and_one_word_is_a_line() {
    let server = Server::start("");
    let quoted = id_of(&server.cli(&["add", "--", "sh", "-c", "echo a; echo b"]));
    let literal = id_of(&server.cli(&["add", "--", "echo", "it's $HOME; rm -rf /nothing"]));
    let line = id_of(&server.cli(&["add", "--", "echo one && echo two"]));
    assert!(
        server
            .cli(&["wait", &quoted, &literal, &line])
            .status
            .success()
    );
    assert_eq!(stdout(&server.cli(&["logs", &quoted])), "a\nb\n");
    assert_eq!(
        stdout(&server.cli(&["logs", &literal])),
        "it's $HOME; rm -rf /nothing\n"
    );
    assert_eq!(stdout(&server.cli(&["logs", &line])), "one\ntwo\n");
}

#[test]
fn ls_prints_a_json_array_and_honours_limit() {
    let server = Server::start("");
    let ids: Vec<String> = (0..3)
        .map(|n| id_of(&server.cli(&["add", "--", "echo", &n.to_string()])))
        .collect();
    assert!(
        server
            .cli(&["wait", &ids[0], &ids[1], &ids[2]])
            .status
            .success()
    );
    let listed: Value = serde_json::from_str(&stdout(&server.cli(&["ls", "-o", "json"]))).unwrap();
    let jobs = listed.as_array().expect("an array");
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0]["id"], ids[2].as_str(), "newest first");
    for job in jobs {
        assert_eq!(job["type"], "shell");
        assert_eq!(job["status"], "succeeded");
        assert_eq!(job["attempt"], 1);
    }
    let limited: Value =
        serde_json::from_str(&stdout(&server.cli(&["ls", "--limit", "2", "-o", "json"]))).unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 2);
    let table = stdout(&server.cli(&["ls"]));
    assert!(table.starts_with(" ID"), "{table}");
    assert!(
        table.contains("succeeded") && table.contains("echo 2"),
        "{table}"
    );
}

#[test]
fn exit_codes_tell_what_happened() {
    let server = Server::start("");
    let failed = id_of(&server.cli(&["add", "--", "exit 7"]));
    assert_eq!(server.cli(&["wait", &failed]).status.code(), Some(1));
    let slow = id_of(&server.cli(&["add", "--", "sleep", "30"]));
    assert_eq!(
        server
            .cli(&["wait", "--timeout", "100ms", &slow])
            .status
            .code(),
        Some(7)
    );
    assert_eq!(
        server
            .cli(&["wait", "--timeout", "500000000000y", &slow])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        server
            .cli(&["add", "--delay", "300000y", "--", "true"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(server.cli(&["cancel", &slow]).status.code(), Some(0));
    assert_eq!(server.cli(&["wait", &slow]).status.code(), Some(3));
    assert_eq!(
        server.cli(&["cancel", &slow]).status.code(),
        Some(6),
        "already finished"
    );
    let missing = server.cli(&["show", "424242"]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(
        stderr(&missing).contains("job 424242 does not exist"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(server.cli(&["show", "abc"]).status.code(), Some(2));
    assert_eq!(server.cli(&["add"]).status.code(), Some(2));
    assert_eq!(server.cli(&["ls", "--limit", "0"]).status.code(), Some(2));
    assert_eq!(server.cli(&["frobnicate"]).status.code(), Some(2));

    let wrong_token = Command::new(RUNWAY)
        .args(["--url", &server.url, "--token", "rwy_nope", "ls"])
        .env("XDG_CONFIG_HOME", server.path("none"))
        .output()
        .unwrap();
    assert_eq!(
        wrong_token.status.code(),
        Some(5),
        "{}",
        stderr(&wrong_token)
    );
    let unreachable = Command::new(RUNWAY)
        .args([
            "--url",
            "http://127.0.0.1:9",
            "--token",
            &server.token,
            "ls",
        ])
        .env("XDG_CONFIG_HOME", server.path("none"))
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(69));
    assert!(
        stderr(&unreachable).contains("cannot reach"),
        "{}",
        stderr(&unreachable)
    );
}

#[test]
fn typed_jobs_take_json_input_from_an_argument_a_file_or_stdin() {
    let server = Server::start(
        r#"
        [types.greet]
        command = ["sh", "-c", "cat"]
        schema = { type = "object", required = ["name"], properties = { name = { type = "string" } } }
        "#,
    );
    let inline = id_of(&server.cli(&["add", "--type", "greet", "--input", r#"{"name":"ada"}"#]));
    std::fs::write(server.path("input.json"), r#"{"name":"bob"}"#).unwrap();
    let file_arg = format!("@{}", server.path("input.json").display());
    let from_file = id_of(&server.cli(&["add", "-t", "greet", "-i", &file_arg]));
    let from_stdin =
        id_of(&server.cli_with_stdin(&["add", "-t", "greet", "-i", "@-"], r#"{"name":"cy"}"#));
    assert!(
        server
            .cli(&["wait", &inline, &from_file, &from_stdin])
            .status
            .success()
    );
    assert_eq!(
        stdout(&server.cli(&["logs", &inline])),
        "{\"name\":\"ada\"}\n"
    );
    assert_eq!(
        stdout(&server.cli(&["logs", &from_file])),
        "{\"name\":\"bob\"}\n"
    );
    assert_eq!(
        stdout(&server.cli(&["logs", &from_stdin])),
        "{\"name\":\"cy\"}\n"
    );

    let invalid = server.cli(&["add", "-t", "greet", "-i", r#"{"name": 3}"#]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(stderr(&invalid).contains("/name"), "{}", stderr(&invalid));
    let unknown = server.cli(&["add", "-t", "nope", "-i", "{}"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("greet"),
        "lists the declared types: {}",
        stderr(&unknown)
    );
}

#[test]
fn a_paused_queue_holds_jobs_until_resumed() {
    let server = Server::start("");
    assert!(server.cli(&["queue", "pause", "default"]).status.success());
    let id = id_of(&server.cli(&["add", "--", "true"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let shown: Value =
        serde_json::from_str(&stdout(&server.cli(&["show", &id, "-o", "json"]))).unwrap();
    assert_eq!(shown["status"], "queued");
    let queues: Value =
        serde_json::from_str(&stdout(&server.cli(&["queue", "ls", "-o", "json"]))).unwrap();
    assert_eq!(queues[0]["paused"], true);
    assert_eq!(queues[0]["queued"], 1);
    assert!(server.cli(&["queue", "resume", "default"]).status.success());
    assert!(server.cli(&["wait", &id]).status.success());
    assert_eq!(
        server.cli(&["queue", "pause", "nope"]).status.code(),
        Some(4)
    );
}

#[test]
fn retry_runs_a_finished_job_again_as_a_new_job() {
    let server = Server::start("");
    let first = id_of(&server.cli(&["add", "--", "echo again"]));
    assert!(server.cli(&["wait", &first]).status.success());
    let second = id_of(&server.cli(&["retry", &first]));
    assert_ne!(first, second);
    assert!(server.cli(&["wait", &second]).status.success());
    let shown: Value =
        serde_json::from_str(&stdout(&server.cli(&["show", &second, "-o", "json"]))).unwrap();
    assert_eq!(shown["retry_of"], first.as_str());
    assert_eq!(stdout(&server.cli(&["logs", &second])), "again\n");
}

#[test]
fn job_output_cannot_drive_the_terminal() {
    let server = Server::start("");
    let id = id_of(&server.cli(&["add", "--", r"printf '\033[2J\033]0;pwned\007visible\n'"]));
    assert!(server.cli(&["wait", &id]).status.success());
    let logs = stdout(&server.cli(&["logs", &id]));
    assert!(
        !logs.contains('\u{1b}') && !logs.contains('\u{7}'),
        "{logs:?}"
    );
    assert!(logs.contains("visible"));
}

#[test]
fn a_bad_config_stops_the_start_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[types.render]\ncommand = [\"x\"]\ntimeout = \"soon\"\n",
    )
    .unwrap();
    let output = Command::new(RUNWAY)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let message = stderr(&output);
    assert!(message.contains("bad.toml"), "{message}");
    assert!(message.contains("types.render.timeout"), "{message}");
    assert!(message.contains("soon"), "{message}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn a_type_naming_an_unknown_handler_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("handlers.toml");
    std::fs::write(&config, "[types.a]\nhandler = \"nosuch\"\n").unwrap();
    let output = Command::new(RUNWAY)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let message = stderr(&output);
    assert!(message.contains("handlers.toml"), "{message}");
    assert!(message.contains("types.a.handler"), "{message}");
    assert!(
        message.contains("no handler named `nosuch` is registered; registered handlers: noop"),
        "{message}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn the_stored_token_is_never_sent_to_another_server() {
    use std::io::{Read, Write};
    let server = Server::start("");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = vec![0u8; 8192];
        let read = stream.read(&mut request).unwrap();
        let body = r#"{"error":{"code":"unauthorized","message":"no"}}"#;
        write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8_lossy(&request[..read]).into_owned()
    });
    let output = server.cli(&["--url", &other, "ls"]);
    assert_eq!(output.status.code(), Some(5));
    let request = seen.join().unwrap();
    assert!(request.starts_with("GET /v1/jobs"), "{request}");
    assert!(
        !request.contains(&server.token),
        "the stored token went to {other}"
    );
    assert!(
        !request.to_lowercase().contains("authorization"),
        "{request}"
    );
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let server = Server::start("");
    for n in 0..60 {
        id_of(&server.cli(&["add", "--", "echo", &n.to_string()]));
    }
    let mut child = Command::new(RUNWAY)
        .args(["ls", "--limit", "60"])
        .env("XDG_CONFIG_HOME", server.path("xdg"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn follow_shows_the_log_live_and_exits_with_the_job_result() {
    let server = Server::start("");
    let failing = id_of(&server.cli(&[
        "add",
        "--",
        "echo a; sleep 0.4; echo '::runway {\"progress\": 0.5, \"message\": \"half\"}'; sleep 0.4; echo b; exit 3",
    ]));
    let followed = server.cli(&["follow", &failing]);
    assert_eq!(followed.status.code(), Some(1), "{}", stderr(&followed));
    assert_eq!(stdout(&followed), "a\nb\n");
    assert!(
        stderr(&followed).contains("failed: exited with status 3"),
        "{}",
        stderr(&followed)
    );

    let fine = id_of(&server.cli(&["add", "--", "sleep 0.3; echo done"]));
    let followed = server.cli(&["follow", &fine]);
    assert_eq!(followed.status.code(), Some(0), "{}", stderr(&followed));
    assert_eq!(stdout(&followed), "done\n");

    let long = id_of(&server.cli(&["add", "--", "echo waiting; sleep 30"]));
    let url = server.url.clone();
    let token = server.token.clone();
    let canceller = {
        let long = long.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            Command::new(RUNWAY)
                .args(["--url", &url, "--token", &token, "cancel", &long])
                .output()
                .unwrap()
        })
    };
    let followed = server.cli(&["follow", &long]);
    assert!(canceller.join().unwrap().status.success());
    assert_eq!(followed.status.code(), Some(3), "{}", stderr(&followed));
    assert_eq!(stdout(&followed), "waiting\n");
}

#[test]
fn logs_follow_streams_every_line_once() {
    let server = Server::start("");
    let id = id_of(&server.cli(&[
        "add",
        "--",
        "for i in 1 2 3 4 5; do echo line $i; sleep 0.15; done",
    ]));
    let logs = server.cli(&["logs", "-f", &id]);
    assert_eq!(logs.status.code(), Some(0), "{}", stderr(&logs));
    assert_eq!(stdout(&logs), "line 1\nline 2\nline 3\nline 4\nline 5\n");
    // After the end, -f returns at once with the whole log.
    assert_eq!(stdout(&server.cli(&["logs", "-f", &id])), stdout(&logs));
}

#[test]
fn ls_watch_redraws_as_jobs_change() {
    use std::io::Read;
    let server = Server::start("");
    let mut watcher = Command::new(RUNWAY)
        .args(["ls", "--watch"])
        .env("XDG_CONFIG_HOME", server.path("xdg"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout_pipe = watcher.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stdout_pipe.read(&mut buffer) {
            if read == 0 || sender.send(buffer[..read].to_vec()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let id = id_of(&server.cli(&["add", "--", "echo watched-job"]));
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(seen.contains("succeeded") && seen.contains("watched-job")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no redraw showed job {id}: {seen}"
        );
        if let Ok(chunk) = receiver.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(
        seen.matches("\u{1b}[2J").count() >= 2,
        "the table was redrawn"
    );
    watcher.kill().unwrap();
    watcher.wait().unwrap();
}

#[test]
fn the_credentials_and_the_data_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start_sqlite("");
    let mode = |path: std::path::PathBuf| {
        std::fs::metadata(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(server.path("xdg").join("runway")), 0o700);
    assert_eq!(
        mode(server.path("xdg").join("runway").join("credentials.toml")),
        0o600
    );
    assert_eq!(mode(server.path("data")), 0o700);
    assert_eq!(mode(server.database()), 0o600);
}

#[test]
fn add_with_an_idempotency_key_prints_the_same_job_twice() {
    let server = Server::start("");
    let add = || {
        server.cli(&[
            "add",
            "--idempotency-key",
            "nightly-2026-11-28",
            "--",
            "true",
        ])
    };
    let first = add();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let again = add();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(stdout(&first), stdout(&again));
    let other = server.cli(&[
        "add",
        "--idempotency-key",
        "nightly-2026-11-28",
        "--",
        "false",
    ]);
    assert_eq!(
        other.status.code(),
        Some(6),
        "a conflict: {}",
        stderr(&other)
    );
    let delayed = server.cli(&[
        "add",
        "--idempotency-key",
        "k",
        "--delay",
        "5m",
        "--",
        "true",
    ]);
    assert_eq!(delayed.status.code(), Some(2), "{}", stderr(&delayed));
    assert!(stderr(&delayed).contains("--delay"), "{}", stderr(&delayed));
}

/// A `runway serve` on a fresh data directory under `dir`, with its credentials in `xdg` and
/// `extra` arguments and environment; returns it (killed when dropped), what it printed before
/// listening, and its URL.
fn serve_in(
    dir: &std::path::Path,
    xdg: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (KillOnDrop, Vec<String>, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(RUNWAY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("second"))
        .args(extra)
        .env("XDG_CONFIG_HOME", xdg)
        .env("RUNWAY_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = Vec::new();
    let mut url = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("runway listening on ") {
            url = rest.split_whitespace().next().unwrap().to_string();
            break;
        }
        printed.push(line);
    }
    // Keep reading, so the server never writes to a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    (KillOnDrop(child), printed, url)
}

/// A second server sharing `xdg` with another; returns it and the line saying where it saved
/// its token.
fn second_server(dir: &std::path::Path, xdg: &std::path::Path) -> (KillOnDrop, String) {
    let (server, printed, _) = serve_in(dir, xdg, &[], &[]);
    let saved = printed
        .into_iter()
        .find(|line| line.starts_with("runway: saved the URL and token"))
        .unwrap_or_default();
    (server, saved)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_servers_first_start_never_takes_over_the_first_ones_entry() {
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    let (_second, saved) = second_server(dir.path(), &server.path("xdg"));
    assert!(
        saved.contains("the CLI's default stays"),
        "the first server stays the default: {saved}"
    );
    let name = saved
        .split('`')
        .nth(1)
        .expect("the line names the second server")
        .to_string();
    // Without flags the CLI still reaches the first server with its token.
    let first = server.cli(&["ls", "-o", "json"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    // And the second one by name, with its own.
    let second = server.cli(&["--server", &name, "ls", "-o", "json"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let unknown = server.cli(&["--server", "nope", "ls"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains(&name), "{}", stderr(&unknown));
    let file = std::fs::read_to_string(server.path("xdg/runway/credentials.toml")).unwrap();
    assert!(
        file.contains(&server.token),
        "the first server's token is kept"
    );
}

/// `runway login URL --name NAME` with `answer` typed at its prompt, its credentials file in
/// `xdg`.
fn login_as(url: &str, name: &str, xdg: &std::path::Path, answer: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(RUNWAY)
        .args(["login", url, "--name", name])
        .env("XDG_CONFIG_HOME", xdg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{answer}").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn login_saves_a_checked_token_as_the_default() {
    let server = Server::start("");
    let xdg = tempfile::tempdir().unwrap();
    let login = |token: &str| login_as(&server.url, "main", xdg.path(), token);
    let refused = login("rwy_0000000000000000000000000000000000000000000000000000000000000000");
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    assert!(
        !xdg.path().join("runway/credentials.toml").exists(),
        "a refused token is never saved"
    );
    let saved = login(&server.token);
    assert_eq!(saved.status.code(), Some(0), "{}", stderr(&saved));
    assert!(
        stdout(&saved).contains("saved server `main`"),
        "{}",
        stdout(&saved)
    );
    let listed = Command::new(RUNWAY)
        .args(["ls"])
        .env("XDG_CONFIG_HOME", xdg.path())
        .env_remove("RUNWAY_URL")
        .env_remove("RUNWAY_TOKEN")
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
}

#[tokio::test]
async fn login_with_a_sign_in_code_gets_a_token_of_its_own() {
    let server = Server::start("");
    let xdg = tempfile::tempdir().unwrap();
    let printed = server.cli(&["dashboard"]);
    let link = String::from_utf8(printed.stdout).unwrap();
    let code = link.trim().rsplit_once("#code=").unwrap().1.to_string();
    let login = || login_as(&server.url, "laptop", xdg.path(), &code);
    let saved = login();
    assert_eq!(saved.status.code(), Some(0), "{}", stderr(&saved));
    let file = std::fs::read_to_string(xdg.path().join("runway/credentials.toml")).unwrap();
    assert!(!file.contains(&code), "the code is spent, not kept: {file}");
    assert!(!file.contains(&server.token), "a token of its own: {file}");
    let tokens = server.client().tokens(None).await.unwrap().tokens;
    assert!(
        tokens
            .iter()
            .any(|token| token.name.starts_with("runway login on ")),
        "{tokens:?}"
    );
    let again = login();
    assert_ne!(again.status.code(), Some(0), "a code works once");
    assert!(
        stderr(&again).contains("runway dashboard"),
        "{}",
        stderr(&again)
    );
}

#[tokio::test]
async fn an_operators_admin_token_is_the_first_one_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("rwy_{}", "0123456789abcdef".repeat(4));
    let file = dir.path().join("admin-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let (_server, printed, url) = serve_in(
        dir.path(),
        &dir.path().join("xdg"),
        &["--admin-token-file", file.to_str().unwrap()],
        &[],
    );
    assert!(
        printed.iter().all(|line| !line.contains(&token)),
        "the operator's token is never printed: {printed:?}"
    );
    let client = runway_client::Client::new(&url, Some(token.clone()));
    client
        .types()
        .await
        .expect("the given token is the admin token");
    let other = runway_client::Client::new(&url, Some(format!("rwy_{}", "f".repeat(64))));
    assert_eq!(other.types().await.unwrap_err().status(), Some(401));
}

#[test]
fn an_admin_token_that_is_not_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(RUNWAY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env("RUNWAY_ADMIN_TOKEN", "hunter2")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let message = stderr(&output);
    assert!(message.contains("RUNWAY_ADMIN_TOKEN"), "{message}");
    assert!(message.contains("openssl rand -hex 32"), "{message}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn completions_and_the_manual_come_from_the_command_line() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(RUNWAY)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let script = stdout(&output);
        for command in ["serve", "trigger", "login", "watch"] {
            assert!(script.contains(command), "{shell} completes `{command}`");
        }
    }
    let unknown = Command::new(RUNWAY)
        .args(["completions", "cmd"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let man = Command::new(RUNWAY).arg("man").output().unwrap();
    assert_eq!(man.status.code(), Some(0));
    let page = stdout(&man);
    assert!(page.contains(".TH runway 1"), "{page}");
    assert!(page.contains("trigger"), "the manual lists the commands");
}

#[tokio::test]
async fn a_backup_taken_during_a_run_restores_every_job() {
    let config = "[types.quick]\ncommand = [\"true\"]\nmax_attempts = 1\n\
                  [types.long]\ncommand = [\"sleep\", \"30\"]\nmax_attempts = 1\n";
    let server = Server::start_sqlite(config);
    let client = server.client();
    let mut quick = Vec::new();
    for _ in 0..5 {
        quick.push(crate::submit(&client, "quick", serde_json::json!({})).await);
    }
    for id in &quick {
        crate::finished(&client, id).await;
    }
    let long = crate::submit(&client, "long", serde_json::json!({})).await;
    crate::eventually(
        "the long job running",
        std::time::Duration::from_secs(10),
        || async { (client.job(&long).await.unwrap().status == "running").then_some(()) },
    )
    .await;

    let file = server.path("backup.sqlite3");
    let data = server.path("data");
    let backup = |file: &std::path::Path| {
        Command::new(RUNWAY)
            .arg("backup")
            .arg(file)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap()
    };
    let taken = backup(&file);
    assert_eq!(taken.status.code(), Some(0), "{}", stderr(&taken));
    assert!(stdout(&taken).contains("backed up"), "{}", stdout(&taken));
    let again = backup(&file);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));

    // Restored into a new data directory, the server finds every job; the one that was
    // running is handled as after a crash.
    let restored = Server::start_prepared(
        |_| config.to_string(),
        |data| {
            std::fs::create_dir_all(data).unwrap();
            std::fs::copy(&file, data.join("runway.sqlite3")).unwrap();
        },
    );
    let restored_client = runway_client::Client::new(&restored.url, Some(server.token.clone()));
    for id in &quick {
        assert_eq!(restored_client.job(id).await.unwrap().status, "succeeded");
    }
    let rescued = crate::finished(&restored_client, &long).await;
    assert_eq!(rescued.status, "failed", "{:?}", rescued.error);
}

#[test]
fn serve_tells_systemd_when_it_is_ready_and_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let (server, _, url) = serve_in(
        dir.path(),
        &dir.path().join("xdg"),
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut message = [0u8; 256];
    let received = socket.recv(&mut message).expect("READY=1 within 20 s");
    assert_eq!(&message[..received], b"READY=1\n");
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok(),
        "ready means listening"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let received = socket.recv(&mut message).expect("STOPPING=1 within 20 s");
    assert_eq!(&message[..received], b"STOPPING=1\n");
}

#[test]
fn serve_lists_only_what_it_reads_and_refuses_the_clients_flags() {
    for command in ["serve", "backup", "watch"] {
        let help = Command::new(RUNWAY)
            .args([command, "--help"])
            .output()
            .unwrap();
        assert_eq!(help.status.code(), Some(0));
        let text = stdout(&help);
        for flag in ["--url", "--token", "--server"] {
            assert!(
                !text.contains(flag),
                "`{command} --help` lists {flag}:\n{text}"
            );
        }
    }
    let serve_help = stdout(
        &Command::new(RUNWAY)
            .args(["serve", "--help"])
            .output()
            .unwrap(),
    );
    assert!(serve_help.contains("--database"), "{serve_help}");
    let refused = Command::new(RUNWAY)
        .args(["serve", "--token", "rwy_x"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("talks to no server"),
        "{}",
        stderr(&refused)
    );
    // The client commands keep them.
    let ls_help = stdout(
        &Command::new(RUNWAY)
            .args(["ls", "--help"])
            .output()
            .unwrap(),
    );
    assert!(
        ls_help.contains("--url") && ls_help.contains("--server"),
        "{ls_help}"
    );
}
