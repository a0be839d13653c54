//! Job lists sorted and kept to a span of time, over REST and the CLI.

use reqwest::StatusCode;
use runway_api::{JobResponse, JobSortField, SortOrder, SubmitJobRequest};
use runway_client::{Client, ListJobs};

use crate::api::{Raw, code};
use crate::{Server, finished};

const CONFIG: &str = r#"
[queues.default]
concurrency = 4
"#;

/// Jobs that sleep for different lengths, all finished.
async fn sleepers(client: &Client, seconds: &[&str]) -> Vec<JobResponse> {
    let mut ids = Vec::new();
    for duration in seconds {
        let job = client
            .submit(&SubmitJobRequest {
                job_type: "shell".into(),
                input: serde_json::json!({"command": format!("sleep {duration}")}),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(job.id);
    }
    let mut jobs = Vec::new();
    for id in ids {
        jobs.push(finished(client, &id).await);
    }
    jobs
}

fn duration_micros(job: &JobResponse) -> i64 {
    (job.finished_at.unwrap() - job.started_at.unwrap())
        .num_microseconds()
        .unwrap()
}

/// Every page of `filters` in turn, two jobs at a time.
async fn every_page(client: &Client, filters: ListJobs) -> Vec<JobResponse> {
    let mut jobs = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_jobs(&ListJobs {
                cursor,
                limit: Some(2),
                ..filters.clone()
            })
            .await
            .unwrap();
        jobs.extend(page.jobs);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return jobs,
        }
    }
}

#[tokio::test]
async fn a_list_sorted_by_duration_pages_every_job_once_longest_first() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let jobs = sleepers(&client, &["0.3", "0.05", "0.2", "0.1", "0.25"]).await;
    let mut expected: Vec<(i64, String)> = jobs
        .iter()
        .map(|job| (duration_micros(job), job.id.clone()))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    let longest_first = every_page(
        &client,
        ListJobs {
            sort: Some(JobSortField::Duration),
            ..Default::default()
        },
    )
    .await;
    let ids: Vec<&str> = longest_first.iter().map(|job| job.id.as_str()).collect();
    let expected_ids: Vec<&str> = expected.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, expected_ids);
    let shortest_first = every_page(
        &client,
        ListJobs {
            sort: Some(JobSortField::Duration),
            order: Some(SortOrder::Asc),
            ..Default::default()
        },
    )
    .await;
    let reversed: Vec<&str> = shortest_first
        .iter()
        .rev()
        .map(|job| job.id.as_str())
        .collect();
    assert_eq!(reversed, expected_ids);
}

#[tokio::test]
async fn a_time_range_keeps_the_list_and_its_count_to_it() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let jobs = sleepers(&client, &["0", "0", "0", "0"]).await;
    let mut by_finish = jobs.clone();
    by_finish.sort_by_key(|job| job.finished_at);
    let third = by_finish[2].finished_at.unwrap().to_rfc3339();
    let filters = ListJobs {
        finished_after: Some(third.clone()),
        ..Default::default()
    };
    let listed = client.list_jobs(&filters).await.unwrap();
    let mut ids: Vec<String> = listed.jobs.iter().map(|job| job.id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = by_finish[2..].iter().map(|job| job.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected, "finished at or after {third}");
    assert_eq!(client.count_jobs(&filters).await.unwrap(), 2);
    let before = ListJobs {
        finished_before: Some(third),
        ..Default::default()
    };
    assert_eq!(client.count_jobs(&before).await.unwrap(), 2);
}

#[tokio::test]
async fn bad_sorts_cursors_and_times_are_refused_with_what_to_fix() {
    let server = Server::start(CONFIG);
    let raw = Raw::new(&server);
    let cases = [
        ("/v1/jobs?sort=size", "unknown variant `size`"),
        ("/v1/jobs?sort=duration&order=up", "unknown variant `up`"),
        ("/v1/jobs?sort=finished&cursor=finished:12", "not a cursor"),
        ("/v1/jobs?sort=finished&cursor=5:12:1", "not a cursor"),
        (
            "/v1/jobs?created_after=yesterday",
            "`created_after` `yesterday` is not an RFC 3339 instant",
        ),
    ];
    for (path, message) in cases {
        let (status, answer) = raw.send("GET", path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(code(&answer), "invalid_request", "{path}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{path}: {text}");
    }
    let (status, answer) = raw
        .post_json(
            "/v1/jobs/bulk",
            r#"{"action": "cancel", "filter": {"created_before": "soon"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`filter.created_before` `soon`"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_cli_sorts_and_takes_how_long_ago() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let jobs = sleepers(&client, &["0.2", "0"]).await;
    let output = server.cli(&[
        "ls",
        "--sort",
        "duration",
        "--finished-after",
        "1h",
        "-o",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let listed: Vec<JobResponse> = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<&str> = listed.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(
        ids,
        [jobs[0].id.as_str(), jobs[1].id.as_str()],
        "longest first"
    );
    // From an hour ago to two hours ago: a range that ends before it starts holds no job.
    let output = server.cli(&[
        "ls",
        "--finished-after",
        "1h",
        "--finished-before",
        "2h",
        "-o",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let listed: Vec<JobResponse> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let output = server.cli(&["ls", "--created-after", "last week"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--created-after `last week`"), "{stderr}");
}

#[tokio::test]
async fn a_jobs_retries_are_listed_newest_first() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let original = sleepers(&client, &["0"]).await.remove(0);
    let first = client.retry(&original.id).await.unwrap();
    let second = client.retry(&original.id).await.unwrap();
    let filters = ListJobs {
        retry_of: Some(original.id.clone()),
        ..Default::default()
    };
    let listed = client.list_jobs(&filters).await.unwrap();
    let ids: Vec<&str> = listed.jobs.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()]);
    assert_eq!(client.count_jobs(&filters).await.unwrap(), 2);
    let raw = Raw::new(&server);
    let (status, answer) = raw.send("GET", "/v1/jobs?retry_of=first", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`retry_of`"),
        "{answer}"
    );
}

#[tokio::test]
async fn jobs_without_the_sorted_value_page_through_their_own_cursors() {
    let server = Server::start(CONFIG);
    let client = server.client();
    client.pause_queue("default").await.unwrap();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let job = client
            .submit(&SubmitJobRequest {
                job_type: "shell".into(),
                input: serde_json::json!({"command": "true"}),
                ..Default::default()
            })
            .await
            .unwrap();
        waiting.push(job.id);
    }
    // Not started: no start time. One job a page, each page's cursor after a job without one.
    let mut cursors = Vec::new();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_jobs(&ListJobs {
                sort: Some(JobSortField::Started),
                cursor: cursor.clone(),
                limit: Some(1),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.jobs.iter().map(|job| job.id.clone()));
        match page.next_cursor {
            Some(next) => {
                cursors.push(next.clone());
                cursor = Some(next);
            }
            None => break,
        }
    }
    waiting.reverse();
    assert_eq!(seen, waiting, "ties by id, newest first");
    assert!(
        cursors.iter().all(|cursor| cursor.starts_with("-:")),
        "{cursors:?}"
    );
}
