//! The engine through the real binary: real child processes, retries, timeouts, cancel,
//! priorities, concurrency, scheduling and graceful shutdown.

use std::time::Duration;

use runway_api::SubmitJobRequest;
use serde_json::json;

use crate::{Server, alive, eventually, finished, submit};

fn read_pid(server: &Server, name: &str) -> i32 {
    std::fs::read_to_string(server.path(name))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failures_are_retried_with_backoff_until_attempts_run_out() {
    let server = Server::start(
        r#"
        [types.flaky]
        command = ["sh", "-c", "echo attempt $RUNWAY_ATTEMPT; [ $RUNWAY_ATTEMPT -ge 2 ]"]
        max_attempts = 3
        backoff_initial = "50ms"
        [types.broken]
        command = ["sh", "-c", "echo attempt $RUNWAY_ATTEMPT; exit 4"]
        max_attempts = 3
        backoff_initial = "50ms"
        "#,
    );
    let client = server.client();
    let flaky = submit(&client, "flaky", json!({})).await;
    let broken = submit(&client, "broken", json!({})).await;
    let flaky = finished(&client, &flaky).await;
    assert_eq!(flaky.status, "succeeded");
    assert_eq!(flaky.attempt, 2);
    assert_eq!(
        client.log(&flaky.id, 0).await.unwrap().data,
        "attempt 1\nattempt 2\n"
    );
    let broken = finished(&client, &broken).await;
    assert_eq!(broken.status, "failed");
    assert_eq!(broken.attempt, 3);
    assert_eq!(broken.error.as_deref(), Some("exited with status 4"));
    assert_eq!(
        client.log(&broken.id, 0).await.unwrap().data,
        "attempt 1\nattempt 2\nattempt 3\n"
    );
}

#[tokio::test]
async fn a_timeout_ends_the_whole_process_group() {
    let server = Server::start_with(|dir| {
        format!(
            r#"
            [types.hang]
            command = ["sh", "-c", "sleep 60 & echo $! > {}; wait"]
            timeout = "500ms"
            max_attempts = 1
            "#,
            dir.join("child.pid").display()
        )
    });
    let client = server.client();
    let id = submit(&client, "hang", json!({})).await;
    let job = finished(&client, &id).await;
    assert_eq!(job.status, "failed");
    assert_eq!(job.error.as_deref(), Some("timed out after 500ms"));
    let child = read_pid(&server, "child.pid");
    eventually(
        "the background child to end",
        Duration::from_secs(5),
        || async move { (!alive(child)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn cancel_stops_a_running_command_even_one_that_ignores_sigterm() {
    let server = Server::start(
        r#"
        [server]
        kill_grace = "300ms"
        "#,
    );
    let client = server.client();
    let pid_file = server.path("stubborn.pid");
    let line = format!(
        "trap '' TERM; sleep 60 & echo $! > {}; wait; wait",
        pid_file.display()
    );
    let id = submit(&client, "shell", json!({"command": line})).await;
    eventually("the job to start", Duration::from_secs(10), || async {
        pid_file.exists().then_some(())
    })
    .await;
    let answer = client.cancel(&id).await.unwrap();
    assert!(answer.stopping);
    let job = finished(&client, &id).await;
    assert_eq!(job.status, "cancelled");
    let child = read_pid(&server, "stubborn.pid");
    eventually(
        "the child to be killed",
        Duration::from_secs(5),
        || async move { (!alive(child)).then_some(()) },
    )
    .await;

    let queued_first = submit(&client, "shell", json!({"command": "sleep 60"})).await;
    client.cancel(&queued_first).await.unwrap();
    assert_eq!(finished(&client, &queued_first).await.status, "cancelled");
}

#[tokio::test]
async fn input_arrives_on_stdin_and_in_a_file_never_as_arguments() {
    let server = Server::start(
        r#"
        [types.echo]
        command = ["sh", "-c", "cat; echo; cat \"$RUNWAY_INPUT\"; echo; echo \"$RUNWAY_JOB_ID $RUNWAY_ATTEMPT $#\""]
        "#,
    );
    let client = server.client();
    let marker = server.path("injected");
    let hostile = format!("$(touch {0}); `touch {0}`; --help", marker.display());
    let id = submit(&client, "echo", json!({"text": hostile})).await;
    let job = finished(&client, &id).await;
    assert_eq!(job.status, "succeeded");
    let input = serde_json::to_string(&json!({"text": hostile})).unwrap();
    let log = client.log(&id, 0).await.unwrap().data;
    assert_eq!(log, format!("{input}\n{input}\n{id} 1 0\n"));
    assert!(!marker.exists(), "the input was executed");
}

#[tokio::test]
async fn a_queue_starts_by_priority_then_age_and_never_exceeds_its_concurrency() {
    let server = Server::start_with(|dir| {
        format!(
            r#"
            [queues.single]
            concurrency = 1
            [types.step]
            queue = "single"
            max_attempts = 1
            command = ["sh", "-c", "mkdir {lock} || exit 9; echo $RUNWAY_JOB_ID >> {order}; sleep 0.05; rmdir {lock}"]
            "#,
            lock = dir.join("lock").display(),
            order = dir.join("order").display()
        )
    });
    let order = server.path("order");
    let client = server.client();
    client.pause_queue("single").await.unwrap();
    let mut ids = Vec::new();
    for priority in [0, 10, 0, 5, 10] {
        let job = client
            .submit(&SubmitJobRequest {
                job_type: "step".into(),
                input: json!({}),
                priority: Some(priority),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(job.id);
    }
    client.resume_queue("single").await.unwrap();
    for id in &ids {
        assert_eq!(
            finished(&client, id).await.status,
            "succeeded",
            "job {id} overlapped another"
        );
    }
    let ran: Vec<String> = std::fs::read_to_string(&order)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let expected = vec![
        ids[1].clone(),
        ids[4].clone(),
        ids[3].clone(),
        ids[0].clone(),
        ids[2].clone(),
    ];
    assert_eq!(ran, expected);
}

#[tokio::test]
async fn a_job_with_run_at_waits_until_then() {
    let server = Server::start("");
    let client = server.client();
    let run_at = chrono::Utc::now() + chrono::Duration::milliseconds(800);
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": "true"}),
            run_at: Some(run_at),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(job.status, "scheduled");
    let done = finished(&client, &job.id).await;
    assert_eq!(done.status, "succeeded");
    let started = done.started_at.unwrap();
    assert!(
        started >= run_at - chrono::Duration::milliseconds(1),
        "started {started} before {run_at}"
    );
}

#[tokio::test]
async fn graceful_shutdown_hands_back_running_jobs_without_counting_the_attempt() {
    let server = Server::start(
        r#"
        [server]
        shutdown_grace = "200ms"
        kill_grace = "200ms"
        "#,
    );
    let client = server.client();
    let mark = server.path("ran-once");
    let line = format!(
        "if [ -e {0} ]; then echo second; exit 0; fi; touch {0}; sleep 60",
        mark.display()
    );
    let id = submit(&client, "shell", json!({"command": line})).await;
    eventually("the job to start", Duration::from_secs(10), || async {
        mark.exists().then_some(())
    })
    .await;
    let mut server = server;
    assert_eq!(server.terminate(), Some(0), "a graceful stop exits 0");
    server.launch();
    let client = server.client();
    let job = finished(&client, &id).await;
    assert_eq!(job.status, "succeeded");
    assert_eq!(job.attempt, 1, "the handed-back attempt did not count");
    assert_eq!(client.log(&id, 0).await.unwrap().data, "second\n");
}

#[tokio::test]
async fn logs_are_bounded_and_bad_protocol_lines_are_explained() {
    let server = Server::start(
        r#"
        [server]
        log_limit = 2000
        "#,
    );
    let client = server.client();
    let chatty = submit(&client, "shell", json!({"command": "seq 1 5000"})).await;
    let protocol = submit(
        &client,
        "shell",
        json!({"command": "echo '::runway {\"progress\": 7}'; echo '::runway {\"progress\": 0.25, \"message\": \"quarter\"}'"}),
    )
    .await;
    let chatty = finished(&client, &chatty).await;
    assert_eq!(chatty.status, "succeeded");
    let log = client.log(&chatty.id, 0).await.unwrap().data;
    assert!(log.starts_with("1\n2\n3\n"), "{log:.40}");
    assert!(log.contains("log truncated"), "{log}");
    assert!(chatty.log_size < 2200, "kept {} bytes", chatty.log_size);
    let protocol = finished(&client, &protocol).await;
    let log = client.log(&protocol.id, 0).await.unwrap().data;
    assert!(
        log.contains("ignored the line above: `progress` must be a number from 0 to 1"),
        "{log}"
    );
    assert_eq!(
        protocol.progress.unwrap().message.as_deref(),
        Some("quarter")
    );
}

#[tokio::test]
async fn a_process_that_escapes_the_group_cannot_hang_the_job() {
    let server = Server::start(
        r#"
        [server]
        kill_grace = "300ms"
        "#,
    );
    let client = server.client();
    let pid_file = server.path("escaped.pid");
    let line = format!(
        "setsid sh -c 'echo $$ > {0}; exec sleep 30' & while [ ! -s {0} ]; do sleep 0.01; done; echo started",
        pid_file.display()
    );
    let id = submit(&client, "shell", json!({"command": line})).await;
    let job = finished(&client, &id).await;
    assert_eq!(job.status, "succeeded");
    let log = client.log(&id, 0).await.unwrap().data;
    assert!(log.starts_with("started\n"), "{log}");
    assert!(log.contains("stopped reading"), "{log}");
    let escaped = read_pid(&server, "escaped.pid");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(escaped),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test]
async fn a_missing_working_directory_is_named_as_such() {
    let server = Server::start_with(|dir| {
        format!(
            "[types.elsewhere]\ncommand = [\"true\"]\ncwd = \"{}\"\nmax_attempts = 1\n",
            dir.join("no-such-dir").display()
        )
    });
    let client = server.client();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "elsewhere".into(),
            input: serde_json::json!({}),
            ..Default::default()
        })
        .await
        .unwrap();
    let job = crate::finished(&client, &job.id).await;
    assert_eq!(job.status, "failed");
    let error = job.error.unwrap();
    assert!(
        error.contains("no-such-dir") && error.contains("working directory"),
        "{error}"
    );
    assert!(!error.contains("cannot start `true`"), "{error}");
}
