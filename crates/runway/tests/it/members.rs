//! Users and roles: a member sees and acts on its own jobs only, over REST, the live feed and
//! the session; users and tokens are managed from the CLI.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use runway_api::{BulkAction, BulkFilter, BulkRequest, FeedMessage, SubmitJobRequest};
use runway_client::{Client, ClientError, ListJobs, UpdatesQuery};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Server;

const CONFIG: &str = r#"
[types.echo]
command = ["sh", "-c", "echo \"hello $RUNWAY_JOB_ID\"; sleep 0.2"]

[types.hold]
command = ["sleep", "30"]

# Spawns the children its input names: the fan-out pattern of docs/trees.md.
[types.relay]
command = ["sh", "-c", "printf '::runway {\"spawn\": %s}\\n' \"$(cat)\""]
"#;

/// Adds a user through the CLI; its token is the only line on stdout.
fn add_user(server: &Server, name: &str, role: &str) -> String {
    let added = server.cli(&["user", "add", name, "--role", role]);
    assert!(added.status.success(), "{added:?}");
    let stdout = String::from_utf8(added.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone: {stdout:?}");
    assert!(lines[0].starts_with("rwy_"), "{stdout:?}");
    lines[0].to_string()
}

fn member(server: &Server, name: &str) -> Client {
    Client::new(&server.url, Some(add_user(server, name, "member")))
}

async fn submit(client: &Client, job_type: &str) -> String {
    client
        .submit(&SubmitJobRequest {
            job_type: job_type.into(),
            input: json!({}),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

fn status(result: Result<impl std::fmt::Debug, ClientError>) -> u16 {
    match result {
        Ok(answer) => panic!("expected an error, got {answer:?}"),
        Err(error) => error.status().expect("an answer from the server"),
    }
}

#[tokio::test]
async fn a_member_reaches_only_its_own_jobs_over_rest() {
    let server = Server::start(CONFIG);
    let admin = server.client();
    let alice = member(&server, "alice");
    let bob = member(&server, "bob");
    let hers = submit(&alice, "hold").await;
    let his = submit(&bob, "echo").await;
    let admins = submit(&admin, "echo").await;

    assert_eq!(
        alice.job(&hers).await.unwrap().owner.as_deref(),
        Some("alice")
    );
    assert_eq!(status(bob.job(&hers).await), 404);
    assert_eq!(status(bob.job(&admins).await), 404);
    assert_eq!(status(bob.log(&hers, 0).await), 404);
    assert_eq!(status(bob.events(&hers).await), 404);
    assert_eq!(status(bob.tree(&hers, None, 10).await), 404);
    assert_eq!(status(bob.artifacts(&hers).await), 404);
    assert_eq!(status(bob.cancel(&hers).await), 404);
    assert_eq!(status(bob.retry(&hers).await), 404);
    assert_eq!(status(bob.delete(&hers).await), 404);
    assert_eq!(
        status(
            bob.spawn(
                &hers,
                &runway_api::SpawnRequest {
                    children: vec![SubmitJobRequest {
                        job_type: "echo".into(),
                        ..Default::default()
                    }],
                }
            )
            .await
        ),
        404
    );
    let by_ids = bob
        .bulk(&BulkRequest {
            action: BulkAction::Cancel,
            ids: Some(vec![hers.clone()]),
            filter: None,
        })
        .await;
    assert_eq!(status(by_ids), 404, "another user's id is unknown");
    let by_filter = bob
        .bulk(&BulkRequest {
            action: BulkAction::Cancel,
            ids: None,
            filter: Some(BulkFilter::default()),
        })
        .await
        .unwrap();
    assert_eq!(by_filter.matched, 1, "only his own job");

    let ids = |page: runway_api::JobListResponse| -> Vec<String> {
        page.jobs.into_iter().map(|job| job.id).collect()
    };
    assert_eq!(
        ids(bob.list_jobs(&ListJobs::default()).await.unwrap()),
        std::slice::from_ref(&his)
    );
    assert_eq!(bob.count_jobs(&ListJobs::default()).await.unwrap(), 1);
    let search = ListJobs {
        q: Some(hers.clone()),
        ..Default::default()
    };
    assert!(
        ids(bob.list_jobs(&search).await.unwrap()).is_empty(),
        "a search by id too"
    );
    assert_eq!(alice.count_jobs(&ListJobs::default()).await.unwrap(), 1);
    let everyone = admin.list_jobs(&ListJobs::default()).await.unwrap().jobs;
    let owners: Vec<(String, Option<String>)> = everyone
        .into_iter()
        .map(|job| (job.id, job.owner))
        .collect();
    assert_eq!(
        owners,
        [
            (admins, Some("admin".to_string())),
            (his, Some("bob".to_string())),
            (hers.clone(), Some("alice".to_string())),
        ],
        "an admin sees every job and whose it is"
    );
    alice.cancel(&hers).await.unwrap();
}

#[tokio::test]
async fn what_only_admins_may_do_is_refused_to_a_member() {
    let server = Server::start(CONFIG);
    let alice_token = add_user(&server, "alice", "member");
    let alice = Client::new(&server.url, Some(alice_token.clone()));
    let shell = alice
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": "id"}),
            ..Default::default()
        })
        .await;
    assert_eq!(status(shell), 403, "the shell type runs any command line");
    assert_eq!(status(alice.pause_queue("default").await), 403);
    assert_eq!(status(alice.triggers().await), 403);
    assert_eq!(status(alice.users().await), 403);
    assert_eq!(
        status(
            alice
                .add_user(&runway_api::users::CreateUserRequest {
                    name: "mallory".into(),
                    role: runway_api::users::Role::Admin,
                })
                .await
        ),
        403
    );
    assert_eq!(status(alice.remove_user("admin").await), 403);
    let for_admin = alice
        .create_token(&runway_api::users::CreateTokenRequest {
            user: Some("admin".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(status(for_admin), 403);
    let admins_tokens = server.client().tokens(None).await.unwrap().tokens;
    assert_eq!(
        status(alice.revoke_token(&admins_tokens[0].id).await),
        404,
        "another user's token is unknown"
    );
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 403);
    // What a member may do: its queue view counts every user's jobs, without their details.
    let queues = alice.queues().await.unwrap();
    assert_eq!(queues.queues[0].name, "default");
    assert_eq!(
        alice.me().await.unwrap().role,
        runway_api::users::Role::Member
    );
}

#[tokio::test]
async fn a_members_feed_carries_only_its_own_jobs() {
    let server = Server::start(CONFIG);
    let alice = member(&server, "alice");
    let bob = member(&server, "bob");
    let hers = submit(&alice, "hold").await;
    let named = bob
        .updates(&UpdatesQuery {
            job: Some(hers.clone()),
            logs: Some(true),
            ..Default::default()
        })
        .await;
    assert_eq!(status(named.map(drop)), 404, "another user's job by name");
    let mut feed = bob
        .updates(&UpdatesQuery {
            since: Some(0),
            logs: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let his = submit(&bob, "echo").await;
    submit(&alice, "echo").await;
    let mut seen = Vec::new();
    let mut logs = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), feed.next())
            .await
            .expect("a message within 20s")
            .expect("the feed is open")
            .unwrap();
        let FeedMessage::Frame(frame) = message else {
            continue;
        };
        logs.extend(frame.logs.iter().map(|log| log.job_id.clone()));
        let mut ended = false;
        for update in frame.jobs {
            ended |= update.job_id == his && update.status == "succeeded";
            seen.push(update.job_id);
        }
        if ended {
            break;
        }
    }
    assert!(seen.iter().all(|id| *id == his), "only his job: {seen:?}");
    assert!(logs.iter().all(|id| *id == his), "only his log: {logs:?}");
    assert!(!logs.is_empty(), "his log came");
    alice.cancel(&hers).await.unwrap();
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(server: &Server, token: &str) -> (Socket, Value) {
    let url = format!("{}/v1/session", server.url.replace("http://", "ws://"));
    let request = url.as_str().into_client_request().unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send(&mut socket, json!({"tag": "hello", "token": token})).await;
    let welcome = recv(&mut socket).await;
    (socket, welcome)
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

async fn recv(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message within 20s")
            .expect("the session is open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn a_members_session_lists_and_opens_only_its_own_jobs() {
    let server = Server::start(CONFIG);
    let alice = member(&server, "alice");
    let bob_token = add_user(&server, "bob", "member");
    let bob = Client::new(&server.url, Some(bob_token.clone()));
    let hers = submit(&alice, "hold").await;
    let his = submit(&bob, "hold").await;
    let (mut socket, welcome) = session(&server, &bob_token).await;
    assert_eq!(welcome["tag"], "welcome", "{welcome}");
    assert_eq!(
        welcome["user"],
        json!({"name": "bob", "role": "member", "created_at": welcome["user"]["created_at"]})
    );

    send(
        &mut socket,
        json!({"tag": "subscribe", "key": "list", "jobs": {}}),
    )
    .await;
    let list = recv(&mut socket).await;
    assert_eq!(list["tag"], "assign", "{list}");
    let listed: Vec<&str> = list["value"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [his.as_str()]);

    send(
        &mut socket,
        json!({"tag": "subscribe", "key": "one", "job": hers}),
    )
    .await;
    let refused = recv(&mut socket).await;
    assert_eq!(
        (refused["tag"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("not_found")),
        "{refused}"
    );
    send(
        &mut socket,
        json!({"tag": "cancel", "id": "c1", "job_id": hers}),
    )
    .await;
    let refused = recv(&mut socket).await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    send(
        &mut socket,
        json!({"tag": "subscribe", "key": "t", "triggers": true}),
    )
    .await;
    let refused = recv(&mut socket).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(alice.job(&hers).await.unwrap().status, "running");

    alice.cancel(&hers).await.unwrap();
    bob.cancel(&his).await.unwrap();
}

#[tokio::test]
async fn users_and_tokens_are_managed_from_the_cli() {
    let server = Server::start(CONFIG);
    let alice_token = add_user(&server, "alice", "member");
    let listed = server.cli(&["user", "ls"]);
    let table = String::from_utf8(listed.stdout).unwrap();
    assert!(
        table.contains("alice") && table.contains("member"),
        "{table}"
    );
    assert!(table.contains("admin"), "{table}");
    let again = server.cli(&["user", "add", "alice", "--role", "admin"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{again:?}"
    );
    let bad = server.cli(&["user", "add", "Alice Smith", "--role", "member"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("lowercase letters"),
        "{bad:?}"
    );

    let created = server.cli(&[
        "token",
        "create",
        "--user",
        "alice",
        "--expires",
        "30d",
        "--name",
        "ci",
    ]);
    assert!(created.status.success(), "{created:?}");
    let second = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    let alice = Client::new(&server.url, Some(second.clone()));
    assert_eq!(alice.me().await.unwrap().name, "alice");
    let tokens = Client::new(&server.url, Some(alice_token.clone()))
        .tokens(None)
        .await
        .unwrap()
        .tokens;
    assert_eq!(tokens.len(), 2, "a member lists its own tokens");
    assert!(tokens[1].expires_at.is_some() && tokens[1].name == "ci");
    assert!(second.starts_with(&tokens[1].prefix));
    let revoked = server.cli(&["token", "revoke", &tokens[1].id]);
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(status(alice.me().await), 401, "a revoked token is refused");

    let job = submit(&Client::new(&server.url, Some(alice_token.clone())), "echo").await;
    let removed = server.cli(&["user", "rm", "alice"]);
    assert!(removed.status.success(), "{removed:?}");
    let gone = Client::new(&server.url, Some(alice_token));
    assert_eq!(status(gone.me().await), 401, "a removed user's tokens end");
    let kept = server.client().job(&job).await.unwrap();
    assert_eq!(kept.owner.as_deref(), Some("alice"), "its jobs stay");

    let last = server.cli(&["user", "rm", "admin"]);
    assert!(
        String::from_utf8_lossy(&last.stderr).contains("last admin"),
        "{last:?}"
    );
    let admin_tokens = server.client().tokens(None).await.unwrap().tokens;
    let only = server.cli(&["token", "revoke", &admin_tokens[0].id]);
    assert!(
        String::from_utf8_lossy(&only.stderr).contains("last admin's last valid token"),
        "{only:?}"
    );
    assert_eq!(server.client().me().await.unwrap().name, "admin");
}

#[tokio::test]
async fn a_revoked_token_ends_its_open_feed_and_session() {
    let server = Server::start(CONFIG);
    let alice_token = add_user(&server, "alice", "member");
    let alice = Client::new(&server.url, Some(alice_token.clone()));
    let mut feed = alice.updates(&UpdatesQuery::default()).await.unwrap();
    let (mut socket, welcome) = session(&server, &alice_token).await;
    assert_eq!(welcome["tag"], "welcome", "{welcome}");
    let tokens = alice.tokens(None).await.unwrap().tokens;
    server.client().revoke_token(&tokens[0].id).await.unwrap();

    // The session's next action is refused, and the session ends.
    send(
        &mut socket,
        json!({"tag": "cancel", "id": "c1", "job_id": "1"}),
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|frame| frame.reason.to_string());
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the session closes");
    assert!(closed.is_some_and(|reason| reason.contains("ended")));

    // The feed ends at its next check.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match feed.next().await {
                Some(Ok(_)) => continue,
                Some(Err(error)) => return error.to_string(),
                None => return "closed".to_string(),
            }
        }
    })
    .await
    .expect("the feed closes within its check");
    assert!(ended.contains("ended"), "{ended}");
}

#[tokio::test]
async fn a_members_job_cannot_spawn_what_the_member_may_not_submit() {
    let server = Server::start(CONFIG);
    let alice = member(&server, "alice");
    let relay = alice
        .submit(&SubmitJobRequest {
            job_type: "relay".into(),
            input: json!([{"type": "shell", "input": {"command": "id"}}]),
            ..Default::default()
        })
        .await
        .unwrap();
    let ended = crate::finished(&alice, &relay.id).await;
    assert_eq!(ended.status, "failed", "{ended:?}");
    assert!(
        ended
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("only an admin"),
        "{ended:?}"
    );
    let shells = server
        .client()
        .count_jobs(&ListJobs {
            job_type: Some("shell".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(shells, 0, "no shell job was made");

    // The same relay of an admin spawns it.
    let admins = server
        .client()
        .submit(&SubmitJobRequest {
            job_type: "relay".into(),
            input: json!([{"type": "shell", "input": {"command": "true"}}]),
            ..Default::default()
        })
        .await
        .unwrap();
    let ended = crate::finished(&server.client(), &admins.id).await;
    assert_eq!(ended.status, "succeeded", "{ended:?}");
}
