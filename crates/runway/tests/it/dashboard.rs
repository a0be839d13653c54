//! What the web dashboard needs from the server: the embedded page with its security headers,
//! the sign-in link `serve` prints, search, counts, bulk actions, a job's timeline, queue
//! throughput and schema errors a form can place. The page itself is tested in a real browser
//! (e2e/).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header;
use runway_api::SubmitJobRequest;
use serde_json::{Value, json};

use crate::api::{Raw, code};
use crate::{Server, eventually, finished};

const CONFIG: &str = r#"
[queues.slow]
concurrency = 1

[types.hold]
command = ["sleep", "60"]
queue = "slow"

[types.render]
command = ["true"]
schema = { type = "object", required = ["text"], properties = { text = { type = "string" }, frames = { type = "integer", minimum = 1 } }, additionalProperties = false }
"#;

fn submit(job_type: &str, input: Value) -> SubmitJobRequest {
    SubmitJobRequest {
        job_type: job_type.into(),
        input,
        ..Default::default()
    }
}

async fn status_of(raw: &Raw, id: &str) -> String {
    let (_, job) = raw.send("GET", &format!("/v1/jobs/{id}"), None).await;
    job["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_csp_and_revalidated_by_etag() {
    let server = Server::start(CONFIG);
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe"),
        "no unsafe-inline or unsafe-eval: {csp}"
    );
    assert!(csp.contains("require-trusted-types-for 'script'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "the page loads its modules");
    for script in &scripts {
        let tag = &script[..script.find('>').unwrap()];
        assert!(
            tag.contains("src=\"/static/"),
            "no inline script: <script{tag}>"
        );
    }
    // Every module is preloaded (no import waterfall), and every preload is a real file.
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let mut modules = Vec::new();
    let mut folders = vec![web.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "js") {
                let relative = path
                    .strip_prefix(&web)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if relative != "main.js" {
                    modules.push(relative);
                }
            }
        }
    }
    let preloads: Vec<&str> = html
        .split("<link rel=\"modulepreload\" href=\"/static/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    modules.sort();
    let mut sorted_preloads = preloads.clone();
    sorted_preloads.sort();
    assert_eq!(
        sorted_preloads, modules,
        "index.html preloads exactly the modules"
    );
    for module in preloads {
        let answer = http
            .get(format!("{}/static/{module}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{module}");
    }
    // Every page path loads the same page, which routes itself.
    for path in [
        "/jobs",
        "/jobs/42",
        "/submit?type=render",
        "/queues",
        "/triggers",
    ] {
        let answer = http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(answer.text().await.unwrap(), html, "{path}");
    }
    // The module the page starts from, then a revalidation that sends nothing again.
    let main = scripts[0]
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let module = http
        .get(format!("{}{main}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(module.status(), StatusCode::OK, "{main}");
    assert_eq!(
        module.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(module.headers()["cache-control"], "no-cache");
    let etag = module.headers()["etag"].clone();
    let again = http
        .get(format!("{}{main}", server.url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    // Unknown files, paths and API routes are 404s, JSON unless a browser asks for HTML.
    for (method, path) in [
        ("GET", "/static/no-such-file.js"),
        ("GET", "/static/README.md"),
        ("GET", "/v1/no-such-route"),
        ("GET", "/livez"),
        ("GET", "/jobs/1/extra"),
        ("POST", "/jobs"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = http
            .request(method.clone(), format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(code(&body), "not_found", "{method} {path}");
    }
    let typo = http
        .get(format!("{}/jbos", server.url))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(typo.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        typo.text().await.unwrap(),
        html,
        "a browser gets the page, which says so"
    );
}

/// The sign-in code of a dashboard line, checked to be one: the line never holds a token.
fn printed_code(server: &Server) -> String {
    let prefix = format!("runway: dashboard (signs you in): {}/#code=", server.url);
    let code = server
        .dashboard
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("a sign-in link: {}", server.dashboard));
    assert!(
        code.len() == 36
            && code.starts_with("rwc_")
            && code[4..].bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{code}"
    );
    assert!(!server.dashboard.contains(&server.token));
    code.to_string()
}

#[tokio::test]
async fn every_start_prints_a_sign_in_link_whose_code_works_once() {
    let mut server = Server::start(CONFIG);
    let code = printed_code(&server);
    let http = reqwest::Client::new();
    let check = http
        .post(format!("{}/v1/auth/codes/check", server.url))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::OK);
    let checked: Value = check.json().await.unwrap();
    assert_eq!(checked["user"]["name"], "admin", "{checked}");
    let sign_in = || {
        http.post(format!("{}/v1/auth/session", server.url))
            .json(&json!({"code": code}))
            .send()
    };
    let first = sign_in().await.unwrap();
    assert_eq!(
        first.status(),
        StatusCode::CREATED,
        "a look did not spend it"
    );
    let cookie = first.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("runway_session="), "{cookie}");
    let second = sign_in().await.unwrap();
    assert_eq!(
        second.status(),
        StatusCode::NOT_FOUND,
        "spent by its first use"
    );
    let message: Value = second.json().await.unwrap();
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runway dashboard"),
        "{message}"
    );

    server.terminate();
    server.launch();
    let again = printed_code(&server);
    assert_ne!(again, code, "a new code at every start");
}

#[tokio::test]
async fn runway_dashboard_prints_a_link_for_the_clis_user() {
    let server = Server::start(CONFIG);
    let printed = server.cli(&["dashboard"]);
    assert!(printed.status.success(), "{printed:?}");
    let link = String::from_utf8(printed.stdout).unwrap();
    let code = link
        .trim()
        .strip_prefix(&format!("{}/#code=", server.url))
        .unwrap_or_else(|| panic!("{link}"))
        .to_string();
    let http = reqwest::Client::new();
    let signed_in = http
        .post(format!("{}/v1/auth/session", server.url))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    let body: Value = signed_in.json().await.unwrap();
    assert_eq!(body["user"]["name"], "admin");
    let both = http
        .post(format!("{}/v1/auth/session", server.url))
        .json(&json!({"code": code, "token": server.token}))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_and_count_follow_the_filters() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let raw = Raw::new(&server);
    let tagged = client
        .submit(&submit(
            "render",
            json!({"text": "<script>alert(1)</script>"}),
        ))
        .await
        .unwrap();
    let plain = client
        .submit(&submit("render", json!({"text": "Sunset over the BAY"})))
        .await
        .unwrap();
    finished(&client, &tagged.id).await;
    finished(&client, &plain.id).await;
    let ids = |answer: &Value| -> Vec<String> {
        answer["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["id"].as_str().unwrap().to_string())
            .collect()
    };
    for (query, expected) in [
        ("q=%3Cscript%3E", vec![tagged.id.clone()]),
        ("q=bay", vec![plain.id.clone()]),
        ("q=RENDER", vec![plain.id.clone(), tagged.id.clone()]),
        (&*format!("q={}", plain.id), vec![plain.id.clone()]),
        ("q=bay&status=failed", vec![]),
        ("q=%20%20", vec![plain.id.clone(), tagged.id.clone()]),
    ] {
        let (status, list) = raw.send("GET", &format!("/v1/jobs?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {list}");
        assert_eq!(ids(&list), expected, "{query}");
        let (status, count) = raw
            .send("GET", &format!("/v1/jobs/count?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {count}");
        assert_eq!(count["count"], expected.len(), "{query}");
    }
    // The CLI searches the same way.
    let listed: Value = serde_json::from_str(&crate::stdout(
        &server.cli(&["ls", "--search", "BAY", "-o", "json"]),
    ))
    .unwrap();
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [plain.id.as_str()]);
    let long = "x".repeat(201);
    for path in [
        format!("/v1/jobs?q={long}"),
        format!("/v1/jobs/count?q={long}"),
        "/v1/jobs/count?status=lost".to_string(),
        "/v1/jobs/count?page=2".to_string(),
    ] {
        let (status, answer) = raw.send("GET", &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(code(&answer), "invalid_request");
    }
    let (_, answer) = raw.send("GET", &format!("/v1/jobs?q={long}"), None).await;
    assert_eq!(
        answer["error"]["message"],
        "`q` is 201 characters; search with at most 200"
    );
}

#[tokio::test]
async fn bulk_actions_check_everything_first_then_skip_what_does_not_apply() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let raw = Raw::new(&server);
    let mut holds = Vec::new();
    for _ in 0..4 {
        holds.push(
            client
                .submit(&submit("hold", Value::Null))
                .await
                .unwrap()
                .id,
        );
    }
    let done = client
        .submit(&submit("render", json!({"text": "done"})))
        .await
        .unwrap();
    finished(&client, &done.id).await;
    eventually(
        "the first hold job runs",
        Duration::from_secs(10),
        || async { (status_of(&raw, &holds[0]).await == "running").then_some(()) },
    )
    .await;

    // Refused requests change nothing.
    let unknown = format!(
        r#"{{"action": "cancel", "ids": ["{}", "999999"]}}"#,
        holds[1]
    );
    for (body, status, expected_code, message) in [
        (
            r#"{"action": "cancel"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give exactly one of `ids` (job ids) or `filter` (as for GET /v1/jobs)",
        ),
        (
            r#"{"action": "cancel", "ids": ["1"], "filter": {}}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give exactly one of `ids` (job ids) or `filter` (as for GET /v1/jobs)",
        ),
        (
            r#"{"action": "cancel", "ids": []}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`ids` is empty; name at least one job",
        ),
        (
            r#"{"action": "explode", "ids": ["1"]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "",
        ),
        (
            r#"{"action": "cancel", "ids": ["1", "x"]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "",
        ),
        (
            r#"{"action": "cancel", "filter": {"status": ["lost"]}}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "",
        ),
        (
            r#"{"action": "cancel", "filter": {"owner": "me"}}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "",
        ),
        (
            unknown.as_str(),
            StatusCode::NOT_FOUND,
            "not_found",
            "job 999999 does not exist",
        ),
    ] {
        let (answer_status, answer) = raw.post_json("/v1/jobs/bulk", body).await;
        assert_eq!(answer_status, status, "{body}: {answer}");
        assert_eq!(code(&answer), expected_code, "{body}");
        if !message.is_empty() {
            assert_eq!(answer["error"]["message"], message, "{body}");
        } else {
            let text = answer["error"]["message"].as_str().unwrap();
            assert!(
                text.contains("ids[1]") || text.contains("status") || text.contains('`'),
                "{body}: the message says where: {text}"
            );
        }
    }
    for id in &holds[1..] {
        assert_eq!(status_of(&raw, id).await, "queued", "nothing changed");
    }

    // Cancel all the filter matches: the running job is stopped, the queued ones end at once.
    let (status, answer) = raw
        .post_json(
            "/v1/jobs/bulk",
            r#"{"action": "cancel", "filter": {"type": ["hold"]}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"matched": 4, "changed": 4, "skipped": []}));
    for id in &holds {
        let job = finished(&client, id).await;
        assert_eq!(job.status, "cancelled", "job {id}");
    }

    // Retry by ids: the finished ones run again, named twice counts once.
    let body = json!({"action": "retry", "ids": [holds[0], holds[1], holds[1]]}).to_string();
    let (status, answer) = raw.post_json("/v1/jobs/bulk", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"matched": 2, "changed": 2, "skipped": []}));
    let (_, retried) = raw
        .send("GET", "/v1/jobs?type=hold&status=running,queued", None)
        .await;
    let mut retry_of: Vec<String> = retried["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["retry_of"].as_str().unwrap().to_string())
        .collect();
    retry_of.sort();
    let mut expected = vec![holds[0].clone(), holds[1].clone()];
    expected.sort();
    assert_eq!(retry_of, expected);
    // Cancelling finished jobs skips them.
    let body = json!({"action": "cancel", "ids": [done.id]}).to_string();
    let (_, answer) = raw.post_json("/v1/jobs/bulk", &body).await;
    assert_eq!(
        answer,
        json!({"matched": 1, "changed": 0, "skipped": [{"id": done.id,
            "reason": format!("job {} already succeeded; only an unfinished job can be cancelled", done.id)}]})
    );
    // Retrying a mix: the finished job runs again, the unfinished one is skipped with why.
    let running = client.submit(&submit("hold", Value::Null)).await.unwrap();
    let body = json!({"action": "retry", "ids": [done.id, running.id]}).to_string();
    let (_, answer) = raw.post_json("/v1/jobs/bulk", &body).await;
    assert_eq!(answer["matched"], 2);
    assert_eq!(answer["changed"], 1);
    assert_eq!(answer["skipped"][0]["id"], running.id.as_str());
    assert!(
        answer["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("only a finished job can be retried"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_job_has_a_timeline_and_queues_report_age_and_throughput() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let raw = Raw::new(&server);
    let job = client
        .submit(&submit("render", json!({"text": "a"})))
        .await
        .unwrap();
    finished(&client, &job.id).await;
    let (status, timeline) = raw
        .send("GET", &format!("/v1/jobs/{}/events", job.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    let kinds: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["submitted", "started", "succeeded"]);
    assert_eq!(timeline["events"][2]["status"], "succeeded");
    let (status, answer) = raw.send("GET", "/v1/jobs/999999/events", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["message"], "job 999999 does not exist");

    // A paused queue keeps its jobs waiting: the oldest one's age shows.
    raw.post_json("/v1/queues/slow/pause", "").await;
    let waiting = client.submit(&submit("hold", Value::Null)).await.unwrap();
    let (_, queues) = raw.send("GET", "/v1/queues", None).await;
    let queue = |name: &str| -> Value {
        queues["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|queue| queue["name"] == name)
            .unwrap()
            .clone()
    };
    let oldest: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(queue("slow")["oldest_queued_at"].clone()).unwrap();
    assert_eq!(oldest, waiting.created_at);
    assert_eq!(queue("default")["oldest_queued_at"], Value::Null);
    let throughput = &queue("default")["throughput"];
    assert_eq!(throughput["bucket_seconds"], 10);
    let finished_counts = throughput["finished"].as_array().unwrap();
    assert_eq!(finished_counts.len(), 60);
    let total: u64 = finished_counts.iter().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(
        total, 1,
        "the one render job finished in the last ten minutes"
    );
    assert_eq!(
        queue("slow")["throughput"]["finished"]
            .as_array()
            .unwrap()
            .len(),
        60
    );
}

#[tokio::test]
async fn schema_violations_come_with_the_paths_a_form_can_mark() {
    let server = Server::start(CONFIG);
    let raw = Raw::new(&server);
    let (status, answer) = raw
        .post_json(
            "/v1/jobs",
            r#"{"type": "render", "input": {"text": 5, "frames": 0}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let mut paths: Vec<&str> = answer["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|detail| detail["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/frames", "/text"]);
    let (_, answer) = raw
        .post_json("/v1/jobs", r#"{"type": "render", "input": {}}"#)
        .await;
    assert_eq!(answer["error"]["details"][0]["path"], "");
    assert!(
        answer["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("text"),
        "{answer}"
    );
    let (_, answer) = raw.post_json("/v1/jobs", r#"{"type": "nope"}"#).await;
    assert_eq!(
        answer["error"].get("details"),
        None,
        "only schema errors have details"
    );
}
