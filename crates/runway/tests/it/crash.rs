//! kill -9 of the server while jobs run and while submits arrive: after a restart every
//! acknowledged job exists and reaches exactly one terminal state, and only jobs that were
//! running at the kill ran twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runway_api::{SubmitBatchRequest, SubmitJobRequest};
use runway_client::ListJobs;
use serde_json::json;

use crate::{Server, eventually, is_terminal};

fn running_in_database(server: &Server) -> BTreeSet<String> {
    server
        .query("SELECT id FROM jobs WHERE status = 'running'")
        .into_iter()
        .map(|row| row[0].clone().unwrap())
        .collect()
}

fn terminal_events_per_job(server: &Server) -> BTreeMap<String, u32> {
    server
        .query(
            "SELECT job_id, count(*) FROM events
             WHERE kind IN ('succeeded', 'failed', 'cancelled') GROUP BY job_id",
        )
        .into_iter()
        .map(|row| {
            let count = row[1].as_deref().unwrap().parse().unwrap();
            (row[0].clone().unwrap(), count)
        })
        .collect()
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_job_and_reruns_only_those_in_flight() {
    let mut server = Server::start_with(|dir| {
        format!(
            r#"
            [queues.default]
            concurrency = 4
            [types.work]
            command = ["sh", "-c", "echo $RUNWAY_JOB_ID >> {}; sleep 0.3"]
            max_attempts = 3
            "#,
            dir.join("runs").display()
        )
    });
    let client = server.client();
    let batch = client
        .submit_batch(&SubmitBatchRequest {
            jobs: (0..24)
                .map(|n| SubmitJobRequest {
                    job_type: "work".into(),
                    input: json!({"n": n}),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .unwrap();
    let mut acknowledged: Vec<String> = batch.jobs.iter().map(|job| job.id.clone()).collect();

    // Submits keep arriving while the server dies; each one answered 201 must survive.
    let acked_during_kill = Arc::new(Mutex::new(Vec::new()));
    let submitter = {
        let client = client.clone();
        let acked = Arc::clone(&acked_during_kill);
        tokio::spawn(async move {
            for n in 0..10_000 {
                let request = SubmitJobRequest {
                    job_type: "work".into(),
                    input: json!({"late": n}),
                    ..Default::default()
                };
                match client.submit(&request).await {
                    Ok(job) => acked.lock().unwrap().push(job.id),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let runs = server.path("runs");
    eventually("some jobs to have run", Duration::from_secs(20), || async {
        let count = std::fs::read_to_string(&runs)
            .map(|text| text.lines().count())
            .unwrap_or(0);
        (count >= 6).then_some(())
    })
    .await;
    server.kill9();
    submitter.await.unwrap();
    let in_flight = running_in_database(&server);
    assert!(!in_flight.is_empty(), "the kill should hit running jobs");
    acknowledged.extend(acked_during_kill.lock().unwrap().iter().cloned());

    server.launch();
    let client = server.client();
    let jobs = eventually(
        "every job to finish after the restart",
        Duration::from_secs(60),
        || async {
            let page = client
                .list_jobs(&ListJobs {
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .unwrap();
            page.jobs.iter().all(is_terminal).then_some(page.jobs)
        },
    )
    .await;

    let known: BTreeSet<String> = jobs.iter().map(|job| job.id.clone()).collect();
    for id in &acknowledged {
        assert!(known.contains(id), "acknowledged job {id} was lost");
    }
    for job in &jobs {
        assert_eq!(
            job.status, "succeeded",
            "job {} ended {}: {:?}",
            job.id, job.status, job.error
        );
    }
    let terminal_events = terminal_events_per_job(&server);
    for job in &jobs {
        assert_eq!(
            terminal_events.get(&job.id),
            Some(&1),
            "job {} ended more than once",
            job.id
        );
    }
    let mut run_counts: BTreeMap<String, u32> = BTreeMap::new();
    for line in std::fs::read_to_string(&runs).unwrap().lines() {
        *run_counts.entry(line.to_string()).or_default() += 1;
    }
    for job in &jobs {
        let count = run_counts.get(&job.id).copied().unwrap_or(0);
        assert!(count >= 1, "job {} never ran", job.id);
        if count > 1 {
            assert!(
                in_flight.contains(&job.id),
                "job {} ran {count} times but was not running at the kill",
                job.id
            );
            assert_eq!(count, 2, "job {} ran {count} times", job.id);
        }
    }
    for id in &in_flight {
        let job = jobs.iter().find(|job| &job.id == id).unwrap();
        // A job that ran before the kill counts the lost attempt; one claimed but whose
        // command had not been started may not (it never ran, so it cannot use up an attempt).
        if run_counts.get(id) == Some(&2) {
            assert_eq!(
                job.attempt, 2,
                "job {id}: the attempt lost in the crash counts"
            );
        } else {
            assert!(
                matches!(job.attempt, 1 | 2),
                "job {id}: attempt {}",
                job.attempt
            );
        }
    }
}

/// The process the database holds for the job's running attempt, read as another process would.
fn stored_pid(server: &Server, job_id: &str) -> Option<i64> {
    let id: i64 = job_id.parse().unwrap();
    server
        .query(&format!("SELECT pid FROM jobs WHERE id = {id}"))
        .pop()?
        .pop()??
        .parse()
        .ok()
}

#[tokio::test]
async fn a_restart_ends_the_commands_a_killed_server_left_running() {
    let mut server = Server::start("");
    let client = server.client();
    let pid_file = server.path("leader.pid");
    let mark = server.path("second-attempt");
    // The first attempt hangs; the one after the restart notes that it ran and ends.
    let line = format!(
        "if [ -e {pid} ]; then touch {mark}; exit 0; fi; echo $$ > {pid}; sleep 60",
        pid = pid_file.display(),
        mark = mark.display()
    );
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": line}),
            max_attempts: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let leader: i32 = eventually(
        "the first attempt to start",
        Duration::from_secs(10),
        || async {
            std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse().ok())
        },
    )
    .await;
    // Give the reporter a moment to store the pid with the attempt.
    eventually("the pid to be stored", Duration::from_secs(10), || async {
        stored_pid(&server, &job.id).filter(|pid| *pid == i64::from(leader))
    })
    .await;
    server.kill9();
    assert!(
        crate::alive(leader),
        "the orphaned command outlives the killed server"
    );
    server.launch();
    eventually(
        "the orphan to be ended",
        Duration::from_secs(10),
        || async move { (!crate::alive(leader)).then_some(()) },
    )
    .await;
    let done = crate::finished(&server.client(), &job.id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.attempt, 2);
    assert!(mark.exists());
}

#[tokio::test]
async fn a_restart_ends_an_orphan_whose_group_leader_exited_while_the_server_was_down() {
    let mut server = Server::start("");
    let client = server.client();
    let leader_file = server.path("leader.pid");
    let child_file = server.path("child.pid");
    // A member that cleared its environment carries no markers: its group still goes.
    let bare_file = server.path("bare.pid");
    let leave = server.path("leave");
    // The first attempt leaves a child in its group and waits for a signal to exit; the one
    // after the restart just ends.
    let line = format!(
        "if [ -e {child} ]; then exit 0; fi; sleep 1501 & echo $! > {child}; \
         env -i sleep 1502 & echo $! > {bare}; echo $$ > {leader}; \
         while [ ! -e {leave} ]; do sleep 0.02; done; exit 0",
        child = child_file.display(),
        bare = bare_file.display(),
        leader = leader_file.display(),
        leave = leave.display()
    );
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": line}),
            max_attempts: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let read_pid = |path: std::path::PathBuf| async move {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
    };
    let leader = eventually(
        "the first attempt to start",
        Duration::from_secs(10),
        || read_pid(leader_file.clone()),
    )
    .await;
    let child = read_pid(child_file.clone()).await.expect("the child's pid");
    let bare = read_pid(bare_file.clone())
        .await
        .expect("the bare child's pid");
    eventually("the pid to be stored", Duration::from_secs(10), || async {
        stored_pid(&server, &job.id).filter(|pid| *pid == i64::from(leader))
    })
    .await;
    server.kill9();
    std::fs::write(&leave, "").unwrap();
    eventually(
        "the leader to exit",
        Duration::from_secs(10),
        || async move { (!crate::alive(leader)).then_some(()) },
    )
    .await;
    assert!(crate::alive(child), "the child outlives its leader");
    server.launch();
    eventually(
        "the orphaned children to be ended",
        Duration::from_secs(10),
        || async move { (!crate::alive(child) && !crate::alive(bare)).then_some(()) },
    )
    .await;
    let done = crate::finished(&server.client(), &job.id).await;
    assert_eq!(done.status, "succeeded");
}

#[tokio::test]
async fn runway_run_tells_a_command_it_runs_again_after_a_hand_back() {
    let mut server = Server::start("[server]\nshutdown_grace = \"0s\"\nkill_grace = \"1s\"\n");
    let client = server.client();
    let seen = server.path("seen");
    let line = format!(
        "echo \"$RUNWAY_ATTEMPT $RUNWAY_RUN\" >> {seen}; if [ \"$RUNWAY_RUN\" -ge 2 ]; then exit 0; fi; sleep 60",
        seen = seen.display()
    );
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": line}),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("the first run", Duration::from_secs(10), || async {
        seen.exists().then_some(())
    })
    .await;
    assert_eq!(server.terminate(), Some(0));
    server.launch();
    let done = crate::finished(&server.client(), &job.id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!((done.attempt, done.runs), (1, 2));
    let shown = crate::stdout(&server.cli(&["show", &job.id]));
    assert!(
        shown.contains("runs  2 (a hand-back or a crash ran it again)"),
        "{shown}"
    );
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "1 1\n1 2\n",
        "RUNWAY_ATTEMPT stays (the hand-back did not count), RUNWAY_RUN grows"
    );
}

/// Counts of events of each kind for one job, read from the database.
fn event_kinds(server: &Server, job: &str) -> BTreeMap<String, u32> {
    let id: i64 = job.parse().unwrap();
    server
        .query(&format!(
            "SELECT kind, count(*) FROM events WHERE job_id = {id} GROUP BY kind"
        ))
        .into_iter()
        .map(|row| {
            let count = row[1].as_deref().unwrap().parse().unwrap();
            (row[0].clone().unwrap(), count)
        })
        .collect()
}

#[tokio::test]
async fn kill_9_during_fan_out_and_during_the_join_ends_every_child_once_and_joins_once() {
    let mut server = Server::start_with(|dir| {
        format!(
            r#"
            [queues.default]
            concurrency = 4
            [types.tree]
            command = ["sh", "-c", '''
            if [ "$RUNWAY_PHASE" = join ]; then
                echo join >> {marks}/join
                sleep 1
                echo '::runway {{"output": {{"joined": true}}}}'
            else
                for n in $(seq 1 12); do
                    echo "::runway {{\"spawn\": {{\"type\": \"leaf\", \"key\": \"$n\", \"input\": {{\"n\": $n}}}}}}"
                    sleep 0.05
                done
            fi
            ''']
            join = true
            max_attempts = 3
            [types.leaf]
            command = ["sh", "-c", "echo $RUNWAY_JOB_ID >> {marks}/leaves; sleep 0.4"]
            max_attempts = 3
            "#,
            marks = dir.display()
        )
    });
    let client = server.client();
    let parent = client
        .submit(&SubmitJobRequest {
            job_type: "tree".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    // First kill: during the fan-out, while the parent still spawns and leaves run.
    eventually("leaves to run", Duration::from_secs(20), || async {
        std::fs::read_to_string(server.path("leaves"))
            .is_ok_and(|text| text.lines().count() >= 2)
            .then_some(())
    })
    .await;
    server.kill9();
    server.launch();
    // Second kill: during the join.
    eventually("the join to start", Duration::from_secs(60), || async {
        server.path("join").exists().then_some(())
    })
    .await;
    server.kill9();
    server.launch();
    let client = server.client();
    let done = eventually("the tree to finish", Duration::from_secs(60), || async {
        let job = client.job(&parent).await.unwrap();
        is_terminal(&job).then_some(job)
    })
    .await;
    assert_eq!(done.status, "succeeded", "{:?}", done.error);
    assert_eq!(done.output, Some(json!({"joined": true})));
    let children = client
        .list_jobs(&ListJobs {
            parent: Some(parent.clone()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs;
    let keys: BTreeSet<String> = children
        .iter()
        .filter_map(|child| child.key.clone())
        .collect();
    assert_eq!(children.len(), 12, "the retried fan-out made no duplicates");
    assert_eq!(keys.len(), 12);
    assert!(children.iter().all(|child| child.status == "succeeded"));
    let ends = terminal_events_per_job(&server);
    for child in &children {
        assert_eq!(
            ends.get(&child.id),
            Some(&1),
            "child {} ended once",
            child.id
        );
    }
    assert_eq!(ends.get(&parent), Some(&1), "the parent ended once");
    let kinds = event_kinds(&server, &parent);
    assert_eq!(
        kinds.get("join_queued"),
        Some(&1),
        "the tree completed once: {kinds:?}"
    );
    assert!(kinds.get("spawned").copied().unwrap_or(0) >= 1, "{kinds:?}");
    let joins = std::fs::read_to_string(server.path("join")).unwrap();
    assert_eq!(
        joins.lines().count(),
        2,
        "the killed join ran once more, and only once"
    );
}
