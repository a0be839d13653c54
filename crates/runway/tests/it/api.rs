//! The REST API over real HTTP: errors, auth, batches, paging, and the OpenAPI document.

use reqwest::StatusCode;
use runway_api::{SubmitBatchRequest, SubmitJobRequest};
use runway_client::ListJobs;
use serde_json::{Value, json};

use crate::{Server, finished};

const CONFIG: &str = r#"
[server]
body_limit = 8192

[queues.gpu]
concurrency = 1

[types.render]
command = ["true"]
queue = "gpu"
schema = { type = "object", required = ["text"], properties = { text = { type = "string" } }, additionalProperties = false }
"#;

pub struct Raw {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Raw {
    pub fn new(server: &Server) -> Raw {
        Raw {
            http: reqwest::Client::new(),
            url: server.url.clone(),
            token: server.token.clone(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let plain = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/plain"));
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else if plain {
            // `/metrics`: the Prometheus text format.
            Value::String(text)
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path} answered non-JSON: {text}"))
        };
        (status, value)
    }

    pub async fn post_json(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.send(
            "POST",
            path,
            Some(("application/json", body.as_bytes().to_vec())),
        )
        .await
    }
}

pub fn code(answer: &Value) -> &str {
    answer["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[tokio::test]
async fn every_bad_submit_gets_its_4xx_and_creates_nothing() {
    let server = Server::start(CONFIG);
    let raw = Raw::new(&server);
    let deep = format!(
        r#"{{"type":"render","input":{}"x"{}}}"#,
        "[".repeat(80),
        "]".repeat(80)
    );
    let huge = format!(
        r#"{{"type":"render","input":{{"text":"{}"}}}}"#,
        "x".repeat(9000)
    );
    let cases: Vec<(&str, String, StatusCode, &str, &str)> = vec![
        ("/v1/jobs", r#"{"type":"nope"}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_type", "`nope`"),
        ("/v1/jobs", r#"{"type":"render","input":{"text":3}}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", "/text"),
        ("/v1/jobs", r#"{"type":"render","input":{}}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", "text"),
        ("/v1/jobs", r#"{"type":"render","#.into(), StatusCode::BAD_REQUEST, "malformed_json", "line 1"),
        ("/v1/jobs", "".into(), StatusCode::BAD_REQUEST, "malformed_json", "empty"),
        ("/v1/jobs", r#"{"type":"render","input":{"text":"a"},"colour":1}"#.into(), StatusCode::BAD_REQUEST, "invalid_request", "colour"),
        ("/v1/jobs", r#"{"type":"render","input":{"text":"a"},"priority":5000}"#.into(), StatusCode::BAD_REQUEST, "invalid_request", "priority"),
        ("/v1/jobs", r#"{"type":"render","input":{"text":"a"},"priority":"high"}"#.into(), StatusCode::BAD_REQUEST, "invalid_request", "priority"),
        ("/v1/jobs", r#"{"type":"render","input":{"text":"a"},"max_attempts":0}"#.into(), StatusCode::BAD_REQUEST, "invalid_request", "max_attempts"),
        ("/v1/jobs", r#"{"type":"render","input":{"text":"a"},"queue":"cpu"}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_queue", "`cpu`"),
        ("/v1/jobs", r#"{"type":"render","input":{"text":"a"},"run_at":"tomorrow"}"#.into(), StatusCode::BAD_REQUEST, "invalid_request", "run_at"),
        ("/v1/jobs", deep, StatusCode::BAD_REQUEST, "too_deep", "nested"),
        ("/v1/jobs", huge, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "body_limit"),
        ("/v1/jobs/batch", r#"{"jobs":[]}"#.into(), StatusCode::BAD_REQUEST, "invalid_request", "empty"),
        (
            "/v1/jobs/batch",
            r#"{"jobs":[{"type":"render","input":{"text":"a"}},{"type":"render","input":{"text":"b"}},{"type":"render","input":{"text":1}}]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "jobs[2]",
        ),
        (
            "/v1/jobs/batch",
            r#"{"jobs":[{"type":"render","input":{"text":"a"}},{"type":"render","inputs":{}}]}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "jobs[1]",
        ),
    ];
    for (path, body, status, expected_code, needle) in cases {
        let (got, answer) = raw.post_json(path, &body).await;
        assert_eq!(got, status, "{body:.100}: {answer}");
        assert_eq!(code(&answer), expected_code, "{body:.100}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{body:.100}: message `{message}` lacks `{needle}`"
        );
    }
    let (status, answer) = raw
        .send("POST", "/v1/jobs", Some(("text/plain", b"{}".to_vec())))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code(&answer), "unsupported_media_type");

    let jobs = server
        .client()
        .list_jobs(&ListJobs::default())
        .await
        .unwrap();
    assert!(
        jobs.jobs.is_empty(),
        "a refused submit left {:?}",
        jobs.jobs
    );
}

#[tokio::test]
async fn bad_reads_and_actions_get_their_4xx() {
    let server = Server::start(CONFIG);
    let raw = Raw::new(&server);
    let running = server
        .client()
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": "sleep 30"}),
            ..Default::default()
        })
        .await
        .unwrap();
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "GET",
            "/v1/jobs?status=done".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/jobs?limit=0".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/jobs?limit=5000".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/jobs?limit=ten".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/jobs?cursor=xyz".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/jobs?colour=red".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/jobs/abc".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/jobs/99999".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            "/v1/jobs/99999/log".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            format!("/v1/jobs/{}/log?offset=-1", running.id),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "GET",
            format!("/v1/jobs/{}/log?limit=0", running.id),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/jobs/99999/cancel".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "POST",
            "/v1/jobs/99999/retry".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "POST",
            format!("/v1/jobs/{}/retry", running.id),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            "POST",
            "/v1/queues/nope/pause".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            "/v1/nothing".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "DELETE",
            "/v1/jobs".into(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, status, expected_code) in cases {
        let (got, answer) = raw.send(method, &path, None).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert_eq!(code(&answer), expected_code, "{method} {path}: {answer}");
    }
    server.client().cancel(&running.id).await.unwrap();
    finished(&server.client(), &running.id).await;
    let (status, answer) = raw
        .send("POST", &format!("/v1/jobs/{}/cancel", running.id), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_token() {
    let server = Server::start(CONFIG);
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let openapi: Value = http
        .get(format!("{}/v1/openapi.json", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in openapi["paths"].as_object().unwrap() {
        // The session authenticates with `hello` when the upgrade has no token (tests/it/session).
        // Sign-in is how a browser gets its cookie; it takes the token or a sign-in code in
        // its body, as checking a code and exchanging one for a token do.
        let by_body = ["/v1/auth/session", "/v1/auth/codes/check", "/v1/auth/token"];
        if !path.starts_with("/v1") || path == "/v1/session" || by_body.contains(&path.as_str()) {
            continue;
        }
        let path = path.replace("{id}", "1").replace("{name}", "default");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for token in [
                None,
                Some("rwy_wrong"),
                Some(&server.token[..server.token.len() - 1]),
            ] {
                let mut request = http.request(method.clone(), format!("{}{path}", server.url));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {token:?}"
                );
                let answer: Value = response.json().await.unwrap();
                assert_eq!(code(&answer), "unauthorized");
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "checked only {checked} route × token pairs");
    let no_doc = http
        .get(format!("{}/v1/openapi.json", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(no_doc.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let server = Server::start(CONFIG);
    let raw = Raw::new(&server);
    let job = server
        .client()
        .submit(&SubmitJobRequest {
            job_type: "render".into(),
            input: json!({"text": "x"}),
            ..Default::default()
        })
        .await
        .unwrap();
    finished(&server.client(), &job.id).await;
    let (_, openapi) = raw.send("GET", "/v1/openapi.json", None).await;
    let paths = openapi["paths"].as_object().unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    // A parameter `in: path` must be a segment of its path; the rest are query parameters.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if parameter["in"] == "path" {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: `{name}` is declared as a path parameter"
                    );
                }
            }
        }
    }
    let list = &paths["/v1/jobs"]["get"]["parameters"];
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|parameter| parameter["name"] == "status" && parameter["in"] == "query"),
        "{list}"
    );
    let expected = [
        "DELETE /v1/auth/session",
        "DELETE /v1/jobs/{id}",
        "DELETE /v1/tokens/{id}",
        "DELETE /v1/users/{name}",
        "GET /healthz",
        "GET /metrics",
        "GET /readyz",
        "GET /v1/jobs",
        "GET /v1/jobs/count",
        "GET /v1/jobs/updates",
        "GET /v1/jobs/{id}",
        "GET /v1/jobs/{id}/artifacts",
        "GET /v1/jobs/{id}/artifacts/{name}",
        "GET /v1/jobs/{id}/events",
        "GET /v1/jobs/{id}/log",
        "GET /v1/jobs/{id}/tree",
        "GET /v1/me",
        "GET /v1/queues",
        "GET /v1/queues/{name}/history",
        "GET /v1/session",
        "GET /v1/tokens",
        "GET /v1/triggers",
        "GET /v1/triggers/{name}",
        "GET /v1/types",
        "GET /v1/users",
        "POST /hooks/{path}",
        "POST /v1/auth/codes",
        "POST /v1/auth/codes/check",
        "POST /v1/auth/session",
        "POST /v1/auth/token",
        "POST /v1/jobs",
        "POST /v1/jobs/batch",
        "POST /v1/jobs/bulk",
        "POST /v1/jobs/{id}/cancel",
        "POST /v1/jobs/{id}/children",
        "POST /v1/jobs/{id}/retry",
        "POST /v1/queues/{name}/pause",
        "POST /v1/queues/{name}/resume",
        "POST /v1/tokens",
        "POST /v1/triggers/{name}/fire",
        "POST /v1/triggers/{name}/pause",
        "POST /v1/triggers/{name}/resume",
        "POST /v1/users",
    ];
    assert_eq!(documented, expected);
    // Every documented operation exists: it never answers "no such route" or 405.
    for entry in &documented {
        let (method, path) = entry.split_once(' ').unwrap();
        let concrete = path
            .replace("{id}", &job.id)
            .replace("{name}", "default")
            .replace("{path}", "default");
        let body = (method == "POST").then(|| ("application/json", b"{}".to_vec()));
        let (status, answer) = raw.send(method, &concrete, body).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{entry}: {answer}");
        let unrouted = answer["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("no such route"));
        assert!(!unrouted, "{entry} is documented but not routed");
        assert!(status.as_u16() < 500, "{entry}: {answer}");
    }
}

#[tokio::test]
async fn a_batch_is_created_in_order_and_pages_walk_every_job_once() {
    let server = Server::start(CONFIG);
    let client = server.client();
    client.pause_queue("gpu").await.unwrap();
    let batch = client
        .submit_batch(&SubmitBatchRequest {
            jobs: (0..25)
                .map(|n| SubmitJobRequest {
                    job_type: "render".into(),
                    input: json!({"text": n.to_string()}),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .unwrap();
    assert_eq!(batch.jobs.len(), 25);
    for (n, job) in batch.jobs.iter().enumerate() {
        assert_eq!(job.input["text"], n.to_string());
        assert_eq!(job.status, "queued");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_jobs(&ListJobs {
                limit: Some(10),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.jobs.iter().map(|job| job.id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<String> = batch.jobs.iter().map(|job| job.id.clone()).collect();
    expected.reverse();
    assert_eq!(seen, expected);
    let filtered = client
        .list_jobs(&ListJobs {
            status: Some("queued,running".into()),
            job_type: Some("render".into()),
            queue: Some("gpu".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.jobs.len(), 25);
    let other = client
        .list_jobs(&ListJobs {
            status: Some("failed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.jobs.is_empty());
}

#[tokio::test]
async fn the_log_reads_from_an_offset() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": "printf 'first\\nsecond\\n'"}),
            ..Default::default()
        })
        .await
        .unwrap();
    finished(&client, &job.id).await;
    let all = client.log(&job.id, 0).await.unwrap();
    assert_eq!(all.data, "first\nsecond\n");
    assert!(all.complete);
    assert_eq!(all.next_offset, 13);
    let tail = client.log(&job.id, 6).await.unwrap();
    assert_eq!(tail.data, "second\n");
    let end = client.log(&job.id, 13).await.unwrap();
    assert_eq!(end.data, "");
    assert!(end.complete);
}

#[tokio::test]
async fn a_token_signs_in_to_an_http_only_cookie_that_works_until_sign_out() {
    let server = Server::start(CONFIG);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url);
    let wrong = http
        .post(url("/v1/auth/session"))
        .json(&json!({"token": "rwy_nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());

    let signed_in = http
        .post(url("/v1/auth/session"))
        .json(&json!({"token": server.token}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    let set_cookie = signed_in
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["runway_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(&server.token),
        "the cookie is not the token"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let listed = http
        .get(url("/v1/jobs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let body = json!({"type": "render", "input": {"text": "x"}});
    let no_origin = http
        .post(url("/v1/jobs"))
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_origin.status(),
        StatusCode::FORBIDDEN,
        "a cookie change needs an Origin"
    );
    let foreign = http
        .post(url("/v1/jobs"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let same_origin = http
        .post(url("/v1/jobs"))
        .header("cookie", &cookie)
        .header("origin", &server.url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::CREATED);

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{}/v1/jobs/updates", server.url.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", server.url.parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "the feed takes the cookie"
    );

    let signed_out = http
        .delete(url("/v1/auth/session"))
        .header("cookie", &cookie)
        .header("origin", &server.url)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::NO_CONTENT);
    let cleared = signed_out
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = http
        .get(url("/v1/jobs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let answer: Value = after.json().await.unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_job_id_has_one_spelling() {
    let server = Server::start(CONFIG);
    let raw = Raw::new(&server);
    let (status, _) = raw
        .post_json("/v1/jobs", r#"{"type": "render", "input": {"text": "x"}}"#)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = raw.send("GET", "/v1/jobs/1", None).await;
    assert_eq!(status, StatusCode::OK);
    for other_spelling in ["+1", "01", "%2B1"] {
        let (status, answer) = raw
            .send("GET", &format!("/v1/jobs/{other_spelling}"), None)
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{other_spelling}: {answer}"
        );
        assert_eq!(code(&answer), "invalid_request");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("without sign or leading zeros"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_nul_byte_in_a_shell_command_is_refused_at_submit() {
    let server = Server::start("");
    let raw = Raw::new(&server);
    let (status, answer) = raw
        .post_json(
            "/v1/jobs",
            r#"{"type": "shell", "input": {"command": "echo a\u0000b"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(code(&answer), "invalid_request");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("input.command"), "{message}");
    assert!(message.contains("NUL"), "{message}");
    let count = server
        .client()
        .count_jobs(&ListJobs::default())
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was created");
}

#[tokio::test]
async fn a_large_input_travels_whole_only_with_the_job_itself() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let mut feed = client
        .updates(&runway_client::UpdatesQuery::default())
        .await
        .unwrap();
    let text = format!("{}THE-END", "x".repeat(5000));
    let submitted = client
        .submit(&SubmitJobRequest {
            job_type: "render".into(),
            input: json!({"text": text}),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        submitted.input["text"], text,
        "the submit answers the whole job"
    );
    let whole = client.job(&submitted.id).await.unwrap();
    assert!(!whole.input_truncated);
    assert_eq!(whole.input["text"], text);

    let listed = client.list_jobs(&ListJobs::default()).await.unwrap();
    let row = &listed.jobs[0];
    assert!(row.input_truncated, "{row:?}");
    let preview = row.input.as_str().expect("a preview is text");
    assert!(preview.starts_with("{\"text\":\"xxx"), "{preview}");
    assert!(preview.ends_with('…') && preview.len() <= 4096 + '…'.len_utf8());

    let update = loop {
        if let runway_api::FeedMessage::Frame(frame) =
            feed.next().await.expect("the feed is open").unwrap()
            && let Some(update) = frame.jobs.into_iter().next()
        {
            break update;
        }
    };
    assert!(update.input_truncated);
    assert_eq!(update.input.as_str(), Some(preview));
}

#[tokio::test]
async fn a_repeated_submit_with_an_idempotency_key_returns_the_first_job() {
    let server = Server::start(CONFIG);
    let http = reqwest::Client::new();
    let submit = |key: &'static str, text: &'static str| {
        http.post(format!("{}/v1/jobs", server.url))
            .bearer_auth(&server.token)
            .header("idempotency-key", key)
            .json(&json!({"type": "render", "input": {"text": text}}))
            .send()
    };
    let first = submit("order-42", "hello").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = submit("order-42", "hello").await.unwrap();
    assert_eq!(again.status(), StatusCode::OK, "a repeat is not a creation");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    let other = submit("order-42", "something else").await.unwrap();
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let other: Value = other.json().await.unwrap();
    assert_eq!(code(&other), "conflict");
    let message = other["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("order-42") && message.contains("different request"),
        "{message}"
    );

    let raw = Raw::new(&server);
    let (status, answer) = raw
        .post_json(
            "/v1/jobs/batch",
            r#"{"jobs": [
                {"type": "render", "input": {"text": "hello"}, "idempotency_key": "order-42"},
                {"type": "render", "input": {"text": "new"}, "idempotency_key": "order-43"}
            ]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["jobs"][0]["id"], first["id"]);
    let (status, answer) = raw
        .post_json(
            "/v1/jobs",
            r#"{"type": "render", "input": {"text": "x"}, "idempotency_key": "has space"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idempotency_key"),
        "{answer}"
    );
    let batch_with_header = http
        .post(format!("{}/v1/jobs/batch", server.url))
        .bearer_auth(&server.token)
        .header("idempotency-key", "order-44")
        .json(&json!({"jobs": [{"type": "render", "input": {"text": "y"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(batch_with_header.status(), StatusCode::BAD_REQUEST);
    let count = server
        .client()
        .count_jobs(&ListJobs::default())
        .await
        .unwrap();
    assert_eq!(count, 2, "order-42 and order-43, nothing else");
}

#[tokio::test]
async fn a_batch_can_be_answered_with_ids_only() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let request = SubmitBatchRequest {
        jobs: (0..3)
            .map(|n| SubmitJobRequest {
                job_type: "render".into(),
                input: json!({"text": n.to_string()}),
                ..Default::default()
            })
            .collect(),
    };
    let ids = client.submit_batch_ids(&request).await.unwrap();
    assert_eq!(ids.len(), 3);
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(client.job(id).await.unwrap().input["text"], n.to_string());
    }
    let raw = Raw::new(&server);
    let body = serde_json::to_string(&request).unwrap();
    let (status, answer) = raw
        .post_json("/v1/jobs/batch?return=everything", &body)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use `jobs` or `ids`"),
        "{answer}"
    );
    let (status, answer) = raw.post_json("/v1/jobs/batch?return=jobs", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(answer["jobs"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_get_with_wait_answers_when_the_job_ends() {
    let server = Server::start("[types.pause]\ncommand = [\"sleep\", \"30\"]\nmax_attempts = 1\n");
    let raw = Raw::new(&server);
    let client = server.client();
    let id = crate::submit(&client, "pause", json!({})).await;
    // The job sleeps longer than the wait.
    let started = std::time::Instant::now();
    let (status, job) = raw
        .send("GET", &format!("/v1/jobs/{id}?wait=1s"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert!(
        !crate::is_terminal(&serde_json::from_value(job.clone()).unwrap()),
        "{job}"
    );
    // A wait that outlasts the job answers with its end.
    let waiting = {
        let raw = Raw::new(&server);
        let path = format!("/v1/jobs/{id}?wait=30s");
        tokio::spawn(async move { raw.send("GET", &path, None).await })
    };
    client.cancel(&id).await.unwrap();
    let (status, job) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["status"], "cancelled", "{job}");
    let (status, answer) = raw
        .send("GET", &format!("/v1/jobs/{id}?wait=1h"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("5m"));
}

#[tokio::test]
async fn writes_past_a_tokens_limit_get_429_and_change_nothing() {
    let server = Server::start(
        "[server]\nwrites_per_second = 1\nwrite_burst = 2\n\
         [queues.default]\nconcurrency = 1\n[types.noop]\nhandler = \"noop\"\n",
    );
    let client = server.client();
    client.pause_queue("default").await.unwrap();
    let submit = || {
        reqwest::Client::new()
            .post(format!("{}/v1/jobs", server.url))
            .bearer_auth(&server.token)
            .json(&json!({"type": "noop", "input": {}}))
            .send()
    };
    // The pause above was the first write of the burst of two.
    let first = submit().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let refused = submit().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("writes_per_second")
    );
    // Reads are not limited, and the refused submit made no job.
    let listed = client.list_jobs(&Default::default()).await.unwrap();
    assert_eq!(listed.jobs.len(), 1);
}

/// The Python tools of the API tests (pinned in scripts/test-tools.txt), which ./scripts/test
/// installs in a virtual environment of their own and names in `RUNWAY_TEST_TOOLS`.
pub fn test_tool(name: &str) -> std::path::PathBuf {
    let dir = std::env::var("RUNWAY_TEST_TOOLS").expect(
        "RUNWAY_TEST_TOOLS names the directory of the tests' Python tools; ./scripts/test installs them",
    );
    std::path::Path::new(&dir).join(name)
}

#[tokio::test]
async fn the_openapi_document_passes_a_validator() {
    let server = Server::start(CONFIG);
    let document = reqwest::Client::new()
        .get(format!("{}/v1/openapi.json", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = server.path("openapi.json");
    std::fs::write(&file, &document).unwrap();
    let checked = std::process::Command::new(test_tool("openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(checked.status.success(), "{said}");
    assert!(said.contains("OK"), "{said}");
    // It states the constraints the server checks: a job id's spelling, a page's size.
    let document: Value = serde_json::from_str(&document).unwrap();
    let job = &document["paths"]["/v1/jobs/{id}"]["get"]["parameters"];
    let id = job
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "id")
        .unwrap();
    assert_eq!(id["schema"]["pattern"], "^[1-9][0-9]{0,17}$");
    let list = document["paths"]["/v1/jobs"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = list
        .iter()
        .find(|parameter| parameter["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], 1000);
    // This server's types, each with its input's schema, and its queues.
    let submit = &document["components"]["schemas"]["SubmitJobRequest"]["oneOf"];
    let render = submit
        .as_array()
        .unwrap()
        .iter()
        .find(|variant| variant["properties"]["type"]["const"] == "render")
        .expect("a variant for the declared type `render`");
    assert_eq!(render["properties"]["input"]["required"], json!(["text"]));
    assert_eq!(
        render["properties"]["queue"]["enum"],
        json!(["default", "gpu", null])
    );
}

#[tokio::test]
async fn roots_under_a_parent_are_no_jobs_at_all() {
    let server = Server::start(CONFIG);
    let raw = Raw::new(&server);
    let parent = crate::submit(&server.client(), "render", json!({"text": "x"})).await;
    let (status, page) = raw
        .send("GET", &format!("/v1/jobs?parent={parent}&roots=true"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["jobs"], json!([]));
    let (status, count) = raw
        .send(
            "GET",
            &format!("/v1/jobs/count?parent={parent}&roots=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{count}");
    assert_eq!(count["count"], 0);
}

#[tokio::test]
async fn a_log_says_which_attempt_and_stream_wrote_each_part() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": "echo \"try $RUNWAY_ATTEMPT\"; echo oops >&2; test \"$RUNWAY_ATTEMPT\" = 2"}),
            max_attempts: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let done = finished(&client, &job.id).await;
    assert_eq!(done.status, "succeeded");
    let log = client.log(&job.id, 0).await.unwrap();
    // Each part of the text between two marks, with the attempt and stream that wrote it.
    let mut parts: Vec<(u32, String, String)> = Vec::new();
    for (index, mark) in log.marks.iter().enumerate() {
        let end = log
            .marks
            .get(index + 1)
            .map_or(log.next_offset, |next| next.offset);
        let text = &log.data[(mark.offset - log.offset) as usize..(end - log.offset) as usize];
        let stream = serde_json::to_value(mark.stream).unwrap();
        assert!(mark.at.is_some(), "{mark:?}");
        for line in text.lines() {
            parts.push((
                mark.attempt,
                stream.as_str().unwrap().to_string(),
                line.to_string(),
            ));
        }
    }
    parts.sort();
    let expected = |attempt: u32| {
        vec![
            (attempt, "stderr".to_string(), "oops".to_string()),
            (attempt, "stdout".to_string(), format!("try {attempt}")),
        ]
    };
    assert_eq!(parts, [expected(1), expected(2)].concat(), "{log:?}");
    // A read from the middle starts with the mark in force there.
    let middle = log.marks[1].offset + 1;
    let tail = client.log(&job.id, middle).await.unwrap();
    assert_eq!(tail.marks[0].offset, middle);
    assert_eq!(tail.marks[0].stream, log.marks[1].stream);
}

#[tokio::test]
async fn a_queues_history_counts_its_finished_jobs_by_bucket() {
    let server = Server::start(CONFIG);
    let client = server.client();
    for command in ["true", "false"] {
        let job = client
            .submit(&SubmitJobRequest {
                job_type: "shell".into(),
                input: json!({"command": command}),
                ..Default::default()
            })
            .await
            .unwrap();
        finished(&client, &job.id).await;
    }
    let raw = Raw::new(&server);
    let (status, history) = raw
        .send("GET", "/v1/queues/default/history?range=15m", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["bucket_seconds"], 30);
    let buckets = history["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 30);
    let sum = |key: &str| -> u64 { buckets.iter().map(|b| b[key].as_u64().unwrap()).sum() };
    assert_eq!((sum("succeeded"), sum("failed")), (1, 1), "{history}");
    assert!(
        buckets.iter().any(|b| b["run_p50_ms"].as_f64().is_some()),
        "{history}"
    );
    for (path, expected) in [
        (
            "/v1/queues/default/history?range=2h",
            StatusCode::BAD_REQUEST,
        ),
        ("/v1/queues/nope/history", StatusCode::NOT_FOUND),
    ] {
        let (status, answer) = raw.send("GET", path, None).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }
}
