//! The session protocol over real WebSocket connections.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Server;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Session {
    socket: Socket,
    /// Messages unpacked from a frame, not yet read.
    queued: VecDeque<Value>,
}

impl Session {
    async fn open(server: &Server, bearer: bool, origin: Option<&str>) -> Result<Session, u16> {
        let url = format!("{}/v1/session", server.url.replace("http://", "ws://"));
        let mut request = url.as_str().into_client_request().unwrap();
        if bearer {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", server.token).parse().unwrap(),
            );
        }
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Session {
                socket,
                queued: VecDeque::new(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("{other}"),
        }
    }

    /// Opens, says hello with the header token, and checks the welcome.
    async fn start(server: &Server) -> Session {
        let mut session = Session::open(server, true, None).await.unwrap();
        session.send(json!({"tag": "hello"})).await;
        let welcome = session.recv().await;
        assert_eq!(welcome["tag"], "welcome", "{welcome}");
        session
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    async fn send_text(&mut self, text: String) {
        let _ = self.socket.send(Message::Text(text.into())).await;
    }

    /// The next JSON message; panics on close. A frame is read as the messages it holds, as
    /// the dashboard reads it: a `job` message per change (with the frame's `key` in `keys`,
    /// and whether it was `coalesced`), after a `log` message per log text: a job's log text
    /// comes before its end.
    async fn recv(&mut self) -> Value {
        loop {
            if let Some(message) = self.queued.pop_front() {
                return message;
            }
            let message = self.recv_raw().await;
            if message["tag"] != "frame" {
                return message;
            }
            for mut log in message["logs"].as_array().unwrap().clone() {
                log["tag"] = json!("log");
                log["key"] = message["key"].clone();
                self.queued.push_back(log);
            }
            for mut update in message["jobs"].as_array().unwrap().clone() {
                update["tag"] = json!("job");
                update["keys"] = json!([message["key"]]);
                update["coalesced"] = message["coalesced"].clone();
                self.queued.push_back(update);
            }
        }
    }

    /// The next JSON message as the server sent it.
    async fn recv_raw(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a message within 20s")
                .expect("the session is open")
                .expect("a readable frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The close reason the server gives.
    async fn closed(&mut self) -> String {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a close within 20s")
            {
                Some(Ok(Message::Close(frame))) => {
                    return frame
                        .map(|frame| frame.reason.to_string())
                        .unwrap_or_default();
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return String::new(),
            }
        }
    }

    /// Messages until `done` says stop (inclusive).
    async fn until(&mut self, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let message = self.recv().await;
            let stop = done(&message);
            seen.push(message);
            if stop {
                return seen;
            }
        }
    }
}

const CONFIG: &str = r#"
[types.noop]
handler = "noop"
[types.sleep]
command = ["sleep", "60"]
[types.render]
command = ["sh", "-c", "echo rendering; sleep 0.3; echo '::runway {\"progress\": 1}'; echo done"]
schema = { type = "object", required = ["text"] }
"#;

#[tokio::test]
async fn a_session_subscribes_submits_and_sees_exactly_its_jobs() {
    let server = Server::start(CONFIG);
    let mut session = Session::start(&server).await;
    session
        .send(json!({"tag": "subscribe", "key": "renders", "jobs": {"type": ["render"]}}))
        .await;
    let assign = session.recv().await;
    assert_eq!(
        (assign["tag"].as_str(), assign["key"].as_str()),
        (Some("assign"), Some("renders"))
    );
    assert_eq!(assign["value"]["jobs"], json!([]));

    // Another client's noop jobs are not this subscription's business.
    server
        .client()
        .submit(&runway_api::SubmitJobRequest {
            job_type: "noop".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    session.send(json!({"tag": "submit", "id": "r1", "job": {"type": "render", "input": {"text": "hi"}}})).await;
    let mut reply = None;
    let messages = session
        .until(|message| {
            if message["tag"] == "reply" {
                reply = Some(message.clone());
            }
            message["tag"] == "job" && message["status"] == "succeeded"
        })
        .await;
    let reply = reply.expect("a reply to the submit");
    assert_eq!(reply["id"], "r1");
    let job_id = reply["value"]["id"].as_str().unwrap().to_string();
    let kinds: Vec<&str> = messages
        .iter()
        .filter(|message| message["tag"] == "job")
        .map(|message| {
            assert_eq!(
                message["job_id"],
                job_id.as_str(),
                "only the subscribed type: {message}"
            );
            assert_eq!(message["keys"], json!(["renders"]));
            message["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, vec!["submitted", "started", "progress", "succeeded"]);

    session
        .send(json!({"tag": "retry", "id": "r2", "job_id": job_id}))
        .await;
    let retried = session.until(|message| message["tag"] == "reply").await;
    let retried = retried.last().unwrap();
    assert_eq!(retried["value"]["retry_of"], job_id.as_str());
    session
        .send(json!({"tag": "cancel", "id": "r3", "job_id": job_id}))
        .await;
    let refused = session.until(|message| message["tag"] == "error").await;
    let refused = refused.last().unwrap();
    assert_eq!(
        (
            refused["id"].as_str(),
            refused["for_tag"].as_str(),
            refused["code"].as_str()
        ),
        (Some("r3"), Some("cancel"), Some("conflict"))
    );
    session
        .send(json!({"tag": "submit", "id": "r4", "job": {"type": "render", "input": {}}}))
        .await;
    let invalid = session.until(|message| message["tag"] == "error").await;
    let invalid = invalid.last().unwrap();
    assert_eq!(
        (invalid["id"].as_str(), invalid["code"].as_str()),
        (Some("r4"), Some("invalid_input"))
    );
    session.send(json!({"tag": "ping", "id": "p"})).await;
    let pong = session.until(|message| message["tag"] == "pong").await;
    assert_eq!(pong.last().unwrap()["id"], "p");
}

#[tokio::test]
async fn a_job_subscription_streams_its_log_live() {
    let server = Server::start(CONFIG);
    let job = server
        .client()
        .submit(&runway_api::SubmitJobRequest {
            job_type: "render".into(),
            input: json!({"text": "x"}),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut session = Session::start(&server).await;
    session
        .send(json!({"tag": "subscribe", "key": "detail", "job": job.id, "log": true}))
        .await;
    let assign = session.recv().await;
    assert_eq!(assign["tag"], "assign");
    assert_eq!(assign["value"]["id"], job.id.as_str());
    // The stored log and the live frames may overlap: each byte is kept once, by offset.
    let mut log = String::new();
    session
        .until(|message| {
            if message["tag"] == "log" {
                let offset = message["offset"].as_u64().unwrap() as usize;
                let data = message["data"].as_str().unwrap();
                assert!(offset <= log.len(), "no gap: {offset} after {}", log.len());
                if offset + data.len() > log.len() {
                    log.push_str(&data[log.len() - offset..]);
                }
            }
            message["tag"] == "job" && message["status"] == "succeeded"
        })
        .await;
    // The outcome is committed after the last line, so the whole log has arrived.
    assert_eq!(log, "rendering\ndone\n");
}

#[tokio::test]
async fn bad_frames_get_an_error_or_a_close_with_a_reason() {
    let server = Server::start(CONFIG);
    let mut session = Session::start(&server).await;
    session.send_text("not json".into()).await;
    let error = session.recv().await;
    assert_eq!(
        (error["tag"].as_str(), error["code"].as_str()),
        (Some("error"), Some("malformed_json"))
    );
    session.send(json!({"tag": "explode", "id": "x1"})).await;
    let error = session.recv().await;
    assert_eq!(
        (
            error["code"].as_str(),
            error["for_tag"].as_str(),
            error["id"].as_str()
        ),
        (Some("unknown_tag"), Some("explode"), Some("x1"))
    );
    session.send(json!({"tag": "cancel", "id": "x2"})).await;
    let error = session.recv().await;
    assert_eq!(
        (error["code"].as_str(), error["id"].as_str()),
        (Some("invalid_request"), Some("x2"))
    );
    assert!(
        error["message"].as_str().unwrap().contains("job_id"),
        "{error}"
    );
    session.send(json!({"no": "tag"})).await;
    assert_eq!(session.recv().await["code"], "invalid_request");
    session
        .send(json!({"tag": "subscribe", "key": "k", "jobs": {"status": ["done"]}}))
        .await;
    assert_eq!(session.recv().await["code"], "invalid_request");
    session.send(json!({"tag": "subscribe", "key": "k"})).await;
    assert_eq!(session.recv().await["code"], "invalid_request");
    session
        .send_text(format!(
            "{{\"tag\":\"ping\",\"pad\":\"{}\"}}",
            "x".repeat(400_000)
        ))
        .await;
    let reason = session.closed().await;
    assert!(
        reason.contains("bad frame") || reason.is_empty(),
        "{reason}"
    );
    assert!(
        server.client().health().await.is_ok(),
        "the server lives on"
    );
}

#[tokio::test]
async fn a_session_needs_a_token_and_an_allowed_origin() {
    let server = Server::start(CONFIG);
    let mut anonymous = Session::open(&server, false, None).await.unwrap();
    anonymous.send(json!({"tag": "hello"})).await;
    assert!(anonymous.closed().await.contains("authentication failed"));
    // A hello that does not parse says why, in a reason that fits a close frame.
    let mut odd = Session::open(&server, false, None).await.unwrap();
    odd.send(json!({"tag": "hello", "token": server.token, "last_seq": 3, "x": "é".repeat(200)}))
        .await;
    let reason = odd.closed().await;
    assert!(reason.contains("unknown field"), "{reason}");
    assert!(reason.len() <= 123, "{reason}");
    let mut early = Session::open(&server, false, None).await.unwrap();
    early
        .send(json!({"tag": "subscribe", "key": "k", "jobs": {}}))
        .await;
    assert!(early.closed().await.contains("hello"));
    let mut browser = Session::open(&server, false, Some(&server.url))
        .await
        .unwrap();
    browser
        .send(json!({"tag": "hello", "token": server.token}))
        .await;
    assert_eq!(browser.recv().await["tag"], "welcome");
    assert_eq!(
        Session::open(&server, true, Some("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
}

#[tokio::test]
async fn a_reconnecting_session_gets_exactly_what_it_missed() {
    let server = Server::start(CONFIG);
    let mut session = Session::start(&server).await;
    session
        .send(json!({"tag": "subscribe", "key": "all", "jobs": {}}))
        .await;
    let assign = session.recv().await;
    assert_eq!(assign["tag"], "assign");
    assert!(
        assign["seq"].as_i64().is_some(),
        "assign says where it stands: {assign}"
    );
    let client = server.client();
    let noop = runway_api::SubmitJobRequest {
        job_type: "noop".into(),
        ..Default::default()
    };
    let first = client.submit(&noop).await.unwrap();
    let seen = session
        .until(|message| message["job_id"] == first.id.as_str() && message["status"] == "succeeded")
        .await;
    let last_seq = seen.last().unwrap()["seq"].as_i64().unwrap();
    drop(session);
    // Missed while away, and sent to the clients that stayed (so the missed changes are
    // behind the live position when the session comes back):
    let mut stayed = Session::start(&server).await;
    stayed
        .send(json!({"tag": "subscribe", "key": "all", "jobs": {}}))
        .await;
    stayed.until(|message| message["tag"] == "assign").await;
    let missed = client.submit(&noop).await.unwrap();
    stayed
        .until(|message| {
            message["job_id"] == missed.id.as_str() && message["status"] == "succeeded"
        })
        .await;
    let mut again = Session::start(&server).await;
    again
        .send(json!({"tag": "subscribe", "key": "all", "jobs": {}, "since": last_seq}))
        .await;
    let caught_up = again
        .until(|message| {
            message["job_id"] == missed.id.as_str() && message["status"] == "succeeded"
        })
        .await;
    let seqs: Vec<i64> = caught_up
        .iter()
        .map(|message| message["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.iter().all(|seq| *seq > last_seq),
        "nothing before since again: {seqs:?}"
    );
    // Coalesced: the latest change of each job it missed.
    let kinds: Vec<&str> = caught_up
        .iter()
        .map(|message| message["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["succeeded"]);
    let done = caught_up.last().unwrap();
    assert_eq!(done["coalesced"], true);
    assert!(
        done["created_at"].is_string() && done["finished_at"].is_string(),
        "{done}"
    );
    assert_eq!(
        done.get("log_size"),
        None,
        "a field at its default is left out: {done}"
    );

    // The same session changes its query: a fresh list, not a replay.
    again
        .send(json!({"tag": "subscribe", "key": "all", "jobs": {"status": ["failed"]}}))
        .await;
    let fresh = again.until(|message| message["tag"] == "assign").await;
    assert_eq!(fresh.last().unwrap()["value"]["jobs"], json!([]));

    // `since` is only for job lists, and only a seq.
    for (subscribe, problem) in [
        (
            json!({"tag": "subscribe", "key": "one", "job": first.id, "since": 1}),
            "`since` is for job lists",
        ),
        (
            json!({"tag": "subscribe", "key": "all", "jobs": {}, "since": -1}),
            "`since` is a seq",
        ),
    ] {
        again.send(subscribe).await;
        let error = again.until(|message| message["tag"] == "error").await;
        let message = error.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(problem), "{message}");
    }
    // A malformed subscribe still names its key.
    again
        .send(json!({"tag": "subscribe", "key": "typed", "jobs": {}, "since": "5"}))
        .await;
    let error = again.until(|message| message["tag"] == "error").await;
    assert_eq!(error.last().unwrap()["key"], "typed");
    // A since from another database (newer than anything here) gets a fresh list.
    again
        .send(json!({"tag": "subscribe", "key": "all", "jobs": {}, "since": 999_999}))
        .await;
    let fresh = again.until(|message| message["tag"] == "assign").await;
    assert_eq!(
        fresh.last().unwrap()["value"]["jobs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_row_that_left_a_status_filter_while_away_is_reported() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let held = client
        .submit(&runway_api::SubmitJobRequest {
            job_type: "sleep".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut session = Session::start(&server).await;
    session
        .send(json!({"tag": "subscribe", "key": "running", "jobs": {"status": ["running"]}}))
        .await;
    let assigned = session
        .until(|message| {
            message["tag"] == "assign"
                && message["value"]["jobs"]
                    .as_array()
                    .is_some_and(|jobs| !jobs.is_empty())
                || message["tag"] == "job" && message["status"] == "running"
        })
        .await;
    let since = assigned
        .iter()
        .filter_map(|message| message["seq"].as_i64())
        .max()
        .unwrap();
    drop(session);
    client.cancel(&held.id).await.unwrap();
    crate::finished(&client, &held.id).await;
    let mut again = Session::start(&server).await;
    again
        .send(json!({"tag": "subscribe", "key": "running", "jobs": {"status": ["running"]}, "since": since}))
        .await;
    let replay = again
        .until(|message| message["job_id"] == held.id.as_str() && message["status"] == "cancelled")
        .await;
    assert_eq!(replay.last().unwrap()["keys"], json!(["running"]));
}

#[tokio::test]
async fn a_job_of_an_older_page_is_reported_when_it_leaves_the_filter() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let job = client
            .submit(&runway_api::SubmitJobRequest {
                job_type: "sleep".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(job.id);
    }
    for id in &ids {
        crate::eventually("every sleep job runs", Duration::from_secs(10), || async {
            (client.job(id).await.unwrap().status == "running").then_some(())
        })
        .await;
    }
    let mut session = Session::start(&server).await;
    session
        .send(json!({"tag": "subscribe", "key": "running", "jobs": {"status": ["running"], "limit": 2}}))
        .await;
    let assign = session.until(|message| message["tag"] == "assign").await;
    let first_page = &assign.last().unwrap()["value"];
    assert_eq!(first_page["jobs"].as_array().unwrap().len(), 2);
    let cursor = first_page["next_cursor"].as_str().unwrap().to_string();
    session
        .send(json!({"tag": "more", "id": "m1", "key": "running", "before": cursor}))
        .await;
    let reply = session.until(|message| message["tag"] == "reply").await;
    let older = &reply.last().unwrap()["value"];
    assert_eq!(older["jobs"][0]["id"], ids[0].as_str());
    assert_eq!(older["next_cursor"], Value::Null);
    // The oldest job leaves the filter: the list hears of it, as of every job it covers.
    client.cancel(&ids[0]).await.unwrap();
    let left = session
        .until(|message| message["job_id"] == ids[0].as_str() && message["status"] == "cancelled")
        .await;
    assert_eq!(left.last().unwrap()["keys"], json!(["running"]));
    // Bad requests name what is wrong.
    for (more, code) in [
        (
            json!({"tag": "more", "id": "m2", "key": "nope", "before": "5"}),
            "not_found",
        ),
        (
            json!({"tag": "more", "id": "m3", "key": "running", "before": "x"}),
            "invalid_request",
        ),
        (
            json!({"tag": "more", "id": "m4", "key": "running"}),
            "invalid_request",
        ),
    ] {
        session.send(more.clone()).await;
        let error = session.until(|message| message["tag"] == "error").await;
        let error = error.last().unwrap();
        assert_eq!(error["code"], code, "{more}: {error}");
        assert_eq!(error["for_tag"], "more");
    }
    for id in &ids[1..] {
        client.cancel(id).await.unwrap();
    }
}

#[tokio::test]
async fn a_binary_frame_closes_the_session_with_1003() {
    let server = Server::start("");
    let mut session = Session::start(&server).await;
    session
        .socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), session.socket.next())
            .await
            .expect("a close within 20s")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1003);
                assert_eq!(
                    frame.reason.as_str(),
                    "send text frames of JSON, not binary"
                );
                break;
            }
            Some(Ok(Message::Close(None))) | Some(Err(_)) | None => {
                panic!("closed without a code")
            }
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_triggers_subscription_gets_every_trigger_then_each_change() {
    let server = Server::start(
        "[types.night]\ncommand = [\"true\"]\n\
         [triggers.nightly]\ncron = \"0 3 * * *\"\ntype = \"night\"\n",
    );
    let mut session = Session::start(&server).await;
    session
        .send(json!({"tag": "subscribe", "key": "t", "triggers": true}))
        .await;
    let assign = session.recv().await;
    assert_eq!(assign["tag"], "assign", "{assign}");
    assert_eq!(assign["key"], "t");
    let listed = &assign["value"]["triggers"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{assign}");
    assert_eq!(listed[0]["name"], "nightly");
    assert_eq!(listed[0]["kind"], "schedule");
    let before = listed[0]["revision"].as_u64().unwrap();

    let fired = server.client().fire_trigger("nightly").await.unwrap();
    let job = fired.job.expect("a schedule submits at once");
    // Changes arrive in order; the one naming the fired job comes after `before`.
    loop {
        let message = session.recv().await;
        assert_eq!(message["tag"], "trigger", "{message}");
        assert_eq!(message["key"], "t");
        assert!(message["trigger"]["revision"].as_u64().unwrap() > before);
        if message["trigger"]["last_job"] == json!(job) {
            break;
        }
    }
    session
        .send(json!({"tag": "unsubscribe", "key": "t"}))
        .await;
    // Messages are handled in order: once this pong is back, the unsubscribe is done.
    session.send(json!({"tag": "ping", "id": "p1"})).await;
    loop {
        let message = session.recv().await;
        if message["tag"] == "pong" {
            break;
        }
        assert_eq!(
            message["tag"], "trigger",
            "sent before the unsubscribe: {message}"
        );
    }
    server.client().pause_trigger("nightly").await.unwrap();
    session.send(json!({"tag": "ping", "id": "p2"})).await;
    let pong = session.recv().await;
    assert_eq!(
        pong["tag"], "pong",
        "no trigger message after unsubscribing: {pong}"
    );
}

#[tokio::test]
async fn a_sorted_list_pages_by_its_cursor_and_hears_of_jobs_entering_its_range() {
    let server = Server::start(CONFIG);
    let client = server.client();
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let id = crate::submit(&client, "noop", json!({})).await;
        jobs.push(crate::finished(&client, &id).await);
    }
    jobs.sort_by_key(|job| job.finished_at);
    let since = jobs[0].finished_at.unwrap().to_rfc3339();
    let mut session = Session::start(&server).await;
    session
        .send(json!({"tag": "subscribe", "key": "done", "jobs": {
            "sort": "finished", "order": "asc", "finished_after": since, "limit": 2}}))
        .await;
    let assign = session.until(|message| message["tag"] == "assign").await;
    let first_page = &assign.last().unwrap()["value"];
    let ids = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(first_page), [jobs[0].id.clone(), jobs[1].id.clone()]);
    let cursor = first_page["next_cursor"].as_str().unwrap().to_string();
    let finished_at = jobs[1].finished_at.unwrap().timestamp_micros();
    assert_eq!(
        cursor,
        format!("{finished_at}:{}", jobs[1].id),
        "the key and the id"
    );
    session
        .send(json!({"tag": "more", "id": "m1", "key": "done", "before": cursor}))
        .await;
    let reply = session.until(|message| message["tag"] == "reply").await;
    assert_eq!(ids(&reply.last().unwrap()["value"]), [jobs[2].id.clone()]);
    session
        .send(json!({"tag": "more", "id": "m2", "key": "done", "before": "soon:1"}))
        .await;
    let error = session.until(|message| message["tag"] == "error").await;
    let error = error.last().unwrap();
    assert_eq!(error["code"], "invalid_request", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("not a cursor"),
        "{error}"
    );
    // A job that finishes now enters the range: the list hears of its end.
    let late = crate::submit(&client, "noop", json!({})).await;
    let heard = session
        .until(|message| message["job_id"] == late.as_str() && message["status"] == "succeeded")
        .await;
    assert_eq!(heard.last().unwrap()["keys"], json!(["done"]));
    // A bad bound is refused for the subscription, naming it.
    session
        .send(json!({"tag": "subscribe", "key": "bad", "jobs": {"created_before": "noon"}}))
        .await;
    let error = session.until(|message| message["tag"] == "error").await;
    let error = error.last().unwrap();
    assert_eq!(error["key"], "bad", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`jobs.created_before` `noon`"),
        "{error}"
    );
}
