//! Triggers in a running server: watch triggers on real directories, webhooks over HTTP, the
//! API's and the CLI's controls. Schedules are tested with a test clock in runway-core.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use runway_api::JobResponse;
use runway_api::triggers::{TriggerResponse, TriggerState};
use runway_client::Client;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{Server, eventually, finished, stdout};

const SECRET: &str = "a-webhook-secret-of-some-length";

/// A watch trigger on `notes/` whose job waits for the file `release` (outside the watched
/// tree) to exist, so a test decides when a run ends.
fn watching(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("notes")).unwrap();
    format!(
        r#"
[types.rebuild]
command = ["sh", "-c", "while [ ! -e \"$RELEASE\" ]; do sleep 0.02; done"]
env = {{ RELEASE = '{release}' }}
# A run a crash interrupted runs again.
max_attempts = 2

[triggers.notes]
watch = "notes"
patterns = ["*.org"]
debounce = "150ms"
type = "rebuild"
"#,
        release = dir.join("release").display(),
    )
}

async fn trigger(client: &Client, name: &str) -> TriggerResponse {
    client.trigger(name).await.unwrap()
}

/// Waits until the trigger watches its tree (its driver reported once).
async fn watch_in_place(client: &Client) {
    eventually("the watch in place", Duration::from_secs(10), || async {
        let trigger = trigger(client, "notes").await;
        (trigger.revision > 0 && trigger.problem.is_none()).then_some(())
    })
    .await;
}

/// Waits for the trigger's `count`th job (oldest first) and returns it.
async fn nth_job(client: &Client, count: usize) -> JobResponse {
    eventually(
        &format!("job {count} of the trigger"),
        Duration::from_secs(15),
        || async {
            let mut jobs = trigger(client, "notes").await.recent_jobs;
            jobs.reverse();
            jobs.get(count - 1).cloned()
        },
    )
    .await
}

async fn state_is(client: &Client, what: &str, check: impl Fn(&TriggerResponse) -> bool) {
    eventually(what, Duration::from_secs(15), || async {
        let trigger = trigger(client, "notes").await;
        check(&trigger).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_saved_file_submits_a_job_listing_it_and_naming_the_trigger() {
    let server = Server::start_with(watching);
    let client = server.client();
    watch_in_place(&client).await;
    std::fs::write(server.path("release"), "").unwrap();
    std::fs::create_dir_all(server.path("notes/sub")).unwrap();
    std::fs::write(server.path("notes/sub/a.org"), "* heading").unwrap();
    std::fs::write(server.path("notes/ignored.txt"), "not a pattern").unwrap();
    let job = nth_job(&client, 1).await;
    assert_eq!(
        job.input,
        json!({"trigger": "notes", "paths": ["sub/a.org"]})
    );
    assert_eq!(job.trigger.as_deref(), Some("notes"));
    let job = finished(&client, &job.id).await;
    assert_eq!(job.status, "succeeded");
    let shown = client.job(&job.id).await.unwrap();
    assert_eq!(shown.trigger.as_deref(), Some("notes"));
}

#[tokio::test]
async fn a_change_during_the_run_stokes_exactly_one_more_run() {
    let server = Server::start_with(watching);
    let client = server.client();
    watch_in_place(&client).await;
    std::fs::write(server.path("notes/a.org"), "1").unwrap();
    let first = nth_job(&client, 1).await;
    state_is(&client, "running", |t| t.state == TriggerState::Running).await;
    // Two saves while it runs: one more run, listing both.
    std::fs::write(server.path("notes/b.org"), "1").unwrap();
    std::fs::write(server.path("notes/c.org"), "1").unwrap();
    state_is(&client, "stoked with both", |t| {
        t.stoked && t.pending_paths == ["b.org", "c.org"]
    })
    .await;
    assert_eq!(
        trigger(&client, "notes").await.recent_jobs.len(),
        1,
        "no overlap"
    );
    std::fs::write(server.path("release"), "").unwrap();
    let second = nth_job(&client, 2).await;
    assert_eq!(second.input["paths"], json!(["b.org", "c.org"]));
    finished(&client, &first.id).await;
    finished(&client, &second.id).await;
    state_is(&client, "idle again", |t| t.state == TriggerState::Idle).await;
    assert_eq!(trigger(&client, "notes").await.recent_jobs.len(), 2);
}

#[tokio::test]
async fn a_change_made_while_the_server_was_down_runs_at_start() {
    // The tree the first start records: nothing to run for then.
    let mut server = Server::start_with(|dir| {
        let config = watching(dir);
        std::fs::write(dir.join("release"), "").unwrap();
        std::fs::write(dir.join("notes/kept.org"), "1").unwrap();
        config
    });
    watch_in_place(&server.client()).await;
    assert!(
        trigger(&server.client(), "notes")
            .await
            .recent_jobs
            .is_empty()
    );
    assert_eq!(server.terminate(), Some(0));
    std::fs::write(server.path("notes/kept.org"), "changed while down").unwrap();
    std::fs::write(server.path("notes/new.org"), "1").unwrap();
    server.launch();
    let client = server.client();
    let job = nth_job(&client, 1).await;
    assert_eq!(job.input["paths"], json!(["kept.org", "new.org"]));
}

#[tokio::test]
async fn a_run_interrupted_by_a_restart_is_waited_for_again() {
    let mut server = Server::start_with(watching);
    let client = server.client();
    watch_in_place(&client).await;
    std::fs::write(server.path("notes/a.org"), "1").unwrap();
    nth_job(&client, 1).await;
    state_is(&client, "running", |t| t.state == TriggerState::Running).await;
    server.kill9();
    server.launch();
    let client = server.client();
    state_is(&client, "running after the restart", |t| {
        t.state == TriggerState::Running && t.running_job.is_some()
    })
    .await;
    std::fs::write(server.path("notes/b.org"), "1").unwrap();
    state_is(&client, "stoked", |t| t.stoked).await;
    std::fs::write(server.path("release"), "").unwrap();
    let second = nth_job(&client, 2).await;
    assert_eq!(second.input["paths"], json!(["b.org"]));
}

#[tokio::test]
async fn pause_gathers_changes_resume_runs_them_and_fire_runs_everything() {
    let server = Server::start_with(watching);
    let client = server.client();
    watch_in_place(&client).await;
    std::fs::write(server.path("release"), "").unwrap();
    let paused = server.cli(&["trigger", "pause", "notes"]);
    assert_eq!(stdout(&paused), "trigger notes paused\n");
    let refused = server.cli(&["trigger", "fire", "notes"]);
    assert_eq!(
        refused.status.code(),
        Some(6),
        "a paused trigger does not fire"
    );
    assert!(crate::stderr(&refused).contains("resume it first"));
    std::fs::write(server.path("notes/a.org"), "1").unwrap();
    state_is(&client, "waiting while paused", |t| {
        t.paused && t.state == TriggerState::Waiting && t.pending_paths == ["a.org"]
    })
    .await;
    assert!(trigger(&client, "notes").await.recent_jobs.is_empty());
    let resumed = server.cli(&["trigger", "resume", "notes"]);
    assert_eq!(stdout(&resumed), "trigger notes resumed\n");
    let first = nth_job(&client, 1).await;
    assert_eq!(first.input["paths"], json!(["a.org"]));
    finished(&client, &first.id).await;
    state_is(&client, "idle", |t| t.state == TriggerState::Idle).await;
    let fired = server.cli(&["trigger", "fire", "notes"]);
    let id = stdout(&fired).trim().to_string();
    let job = finished(&client, &id).await;
    assert_eq!(
        job.input,
        json!({"trigger": "notes", "paths": null, "overflow": true})
    );
    let listed = server.cli(&["trigger", "ls", "-o", "json"]);
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed[0]["name"], "notes");
    assert_eq!(listed[0]["kind"], "watch");
    assert_eq!(listed[0]["last_job"], json!(id));
}

#[tokio::test]
async fn an_unknown_trigger_is_a_404_naming_the_declared_ones() {
    let server = Server::start_with(watching);
    let error = server.client().fire_trigger("nope").await.unwrap_err();
    assert_eq!(error.status(), Some(404));
    assert!(error.to_string().contains("notes"), "{error}");
    let cli = server.cli(&["trigger", "show", "nope"]);
    assert_eq!(cli.status.code(), Some(4));
}

fn webhook_config(_: &Path) -> String {
    r#"
[types.deploy]
command = ["true"]
schema = { type = "object", required = ["ref"], properties = { ref = { type = "string" } } }

[triggers.deploy]
webhook = "deploy"
secret_env = "DEPLOY_SECRET"
input_pointer = "/payload"
type = "deploy"

[triggers.token]
webhook = "token"
secret_env = "DEPLOY_SECRET"
signature = "bearer"
type = "deploy"
"#
    .to_string()
}

fn webhook_server() -> Server {
    Server::start_with_env(webhook_config, &[("DEPLOY_SECRET", SECRET)])
}

/// A delivery signed with the webhook's secret, as GitHub signs it.
async fn deliver_signed(server: &Server, path: &str, body: &[u8]) -> (u16, Value) {
    deliver(
        server,
        path,
        body,
        &[("x-hub-signature-256", signature(body))],
    )
    .await
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(
    server: &Server,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/hooks/{path}", server.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn trigger_jobs(server: &Server, name: &str) -> usize {
    server
        .client()
        .trigger(name)
        .await
        .unwrap()
        .recent_jobs
        .len()
}

#[tokio::test]
async fn a_signed_delivery_submits_its_payload_as_the_input() {
    let server = webhook_server();
    let body = br#"{"payload":{"ref":"main"},"sender":"ci"}"#;
    let (status, answer) = deliver_signed(&server, "deploy", body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["created"], true);
    let job = server
        .client()
        .job(answer["job"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(job.input, json!({"ref": "main"}));
    assert_eq!(job.trigger.as_deref(), Some("deploy"));
}

#[tokio::test]
async fn a_replayed_delivery_returns_the_first_job() {
    let server = webhook_server();
    let body = br#"{"payload":{"ref":"main"}}"#;
    let headers = [
        ("x-hub-signature-256", signature(body)),
        (
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string(),
        ),
    ];
    let (first, one) = deliver(&server, "deploy", body, &headers).await;
    let (again, two) = deliver(&server, "deploy", body, &headers).await;
    assert_eq!((first, again), (202, 202));
    assert_eq!(one["job"], two["job"]);
    assert_eq!(two["created"], false);
    assert_eq!(trigger_jobs(&server, "deploy").await, 1);
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_a_401_and_submits_nothing() {
    let server = webhook_server();
    let body = br#"{"payload":{"ref":"main"}}"#;
    let forged = signature(br#"{"payload":{"ref":"evil"}}"#);
    for headers in [vec![("x-hub-signature-256", forged)], vec![]] {
        let (status, answer) = deliver(&server, "deploy", body, &headers).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"]["code"], "unauthorized");
    }
    let (status, _) = deliver(
        &server,
        "token",
        body,
        &[("authorization", "Bearer wrong".into())],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = deliver(
        &server,
        "token",
        br#"{"ref":"x"}"#,
        &[("authorization", format!("Bearer {SECRET}"))],
    )
    .await;
    assert_eq!(status, 202, "the right bearer secret");
    assert_eq!(trigger_jobs(&server, "deploy").await, 0);
    assert_eq!(trigger_jobs(&server, "token").await, 1);
}

#[tokio::test]
async fn malformed_oversized_or_invalid_deliveries_are_4xx_and_submit_nothing() {
    let server = webhook_server();
    let signed = |body: &[u8]| vec![("x-hub-signature-256", signature(body))];
    let malformed = b"{not json";
    let (status, answer) = deliver(&server, "deploy", malformed, &signed(malformed)).await;
    assert_eq!(status, 400, "{answer}");
    let no_payload = br#"{"other":1}"#;
    let (status, answer) = deliver(&server, "deploy", no_payload, &signed(no_payload)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/payload")
    );
    let invalid = br#"{"payload":{"ref":7}}"#;
    let (status, answer) = deliver(&server, "deploy", invalid, &signed(invalid)).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_input");
    let huge = format!(
        r#"{{"payload":{{"ref":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, answer) =
        deliver(&server, "deploy", huge.as_bytes(), &signed(huge.as_bytes())).await;
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = deliver(&server, "nowhere", b"{}", &signed(b"{}")).await;
    assert_eq!(status, 404, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("deploy"),
        "a stranger learns no webhook's name: {message}"
    );
    assert_eq!(trigger_jobs(&server, "deploy").await, 0);
}

#[tokio::test]
async fn a_paused_webhook_refuses_deliveries_with_a_409() {
    let server = webhook_server();
    server.client().pause_trigger("deploy").await.unwrap();
    let body = br#"{"payload":{"ref":"main"}}"#;
    let (status, answer) = deliver_signed(&server, "deploy", body).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resume")
    );
    server.client().resume_trigger("deploy").await.unwrap();
    let (status, _) = deliver_signed(&server, "deploy", body).await;
    assert_eq!(status, 202);
    assert_eq!(trigger_jobs(&server, "deploy").await, 1);
}

#[test]
fn a_webhook_whose_secret_is_not_set_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hooks.toml");
    std::fs::write(&config, webhook_config(dir.path())).unwrap();
    let output = std::process::Command::new(crate::RUNWAY)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("DEPLOY_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let message = crate::stderr(&output);
    assert!(message.contains("triggers.deploy.secret_env"), "{message}");
    assert!(message.contains("DEPLOY_SECRET is not set"), "{message}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}
