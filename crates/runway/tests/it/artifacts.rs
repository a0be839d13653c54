//! Artifacts through the real binary: what a command leaves in RUNWAY_ARTIFACTS is kept,
//! listed and served safely; links, FIFOs and odd names never are; quotas fail the attempt; a
//! join reads its children's files; deleting a tree removes its files.

use std::time::Duration;

use runway_api::SubmitJobRequest;
use runway_client::Client;
use serde_json::Value;

use crate::{Server, finished};

const CONFIG: &str = r#"
[types.render]
command = ["sh", "-c", '''
cd "$RUNWAY_ARTIFACTS"
printf 'RIFFdata' > episode.wav
mkdir -p pages
echo '<script>parent.document.title="owned"</script>' > pages/page.html
echo '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' > evil.svg
echo hello > notes.txt
''']

[types.hostile]
command = ["sh", "-c", '''
cd "$RUNWAY_ARTIFACTS"
ln -s /etc/passwd passwd
ln -s / root
mkfifo pipe
printf x > "$(printf 'bad\nname')"
echo kept > kept.txt
''']

[types.many]
command = ["sh", "-c", "cd \"$RUNWAY_ARTIFACTS\" && seq 1 10000 | xargs touch"]
max_attempts = 1

[types.big]
command = ["sh", "-c", "head -c 5000 /dev/zero > \"$RUNWAY_ARTIFACTS/big.bin\""]
max_attempts = 1

[types.rewrite]
command = ["sh", "-c", "head -c 3000 /dev/zero > \"$RUNWAY_ARTIFACTS/big.bin\"; [ \"$RUNWAY_ATTEMPT\" -ge 2 ]"]
max_attempts = 2
backoff_initial = "10ms"

[types.part]
command = ["sh", "-c", "cat > \"$RUNWAY_ARTIFACTS/part.txt\""]

[types.assemble]
command = ["python3", "-c", '''
import json, os
if os.environ["RUNWAY_PHASE"] == "run":
    print("::runway " + json.dumps({"spawn": [{"type": "part", "key": str(n), "input": "part %d" % n} for n in range(3)]}), flush=True)
else:
    children = json.load(open(os.environ["RUNWAY_CHILDREN"]))["children"]
    with open(os.path.join(os.environ["RUNWAY_ARTIFACTS"], "whole.txt"), "w") as whole:
        for child in children:
            whole.write(open(child["artifacts"][0]["path"]).read() + "\n")
''']
join = true
"#;

fn start(extra: &str) -> Server {
    Server::start(&format!("{extra}\n{CONFIG}"))
}

async fn run(client: &Client, job_type: &str) -> runway_api::JobResponse {
    let job = client
        .submit(&SubmitJobRequest {
            job_type: job_type.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    finished(client, &job.id).await
}

/// A GET with the server's token and extra headers, answered raw.
async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .bearer_auth(&server.token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn kept_files_are_listed_and_served_with_type_etag_ranges_and_no_script() {
    let server = start("");
    let client = server.client();
    let job = run(&client, "render").await;
    assert_eq!(job.status, "succeeded", "{:?}", job.error);
    let listed = client.artifacts(&job.id).await.unwrap().artifacts;
    let names: Vec<&str> = listed
        .iter()
        .map(|artifact| artifact.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["episode.wav", "evil.svg", "notes.txt", "pages/page.html"]
    );
    let wav = &listed[0];
    assert_eq!(
        (wav.size, wav.content_type.as_str(), wav.attempt),
        (8, "audio/wav", 1)
    );
    let whole = get(
        &server,
        &format!("/v1/jobs/{}/artifacts/episode.wav", job.id),
        &[],
    )
    .await;
    assert_eq!(whole.status(), 200);
    assert_eq!(header(&whole, "content-type"), "audio/wav");
    assert_eq!(header(&whole, "etag"), format!("\"{}\"", wav.sha256));
    assert_eq!(header(&whole, "x-content-type-options"), "nosniff");
    assert!(header(&whole, "content-security-policy").starts_with("sandbox"));
    assert!(header(&whole, "content-disposition").starts_with("inline"));
    assert_eq!(whole.bytes().await.unwrap().as_ref(), b"RIFFdata");
    let part = get(
        &server,
        &format!("/v1/jobs/{}/artifacts/episode.wav", job.id),
        &[("range", "bytes=4-7")],
    )
    .await;
    assert_eq!(part.status(), 206);
    assert_eq!(header(&part, "content-range"), "bytes 4-7/8");
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"data");
    let etag = format!("\"{}\"", wav.sha256);
    let cached = get(
        &server,
        &format!("/v1/jobs/{}/artifacts/episode.wav", job.id),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(cached.status(), 304);
    for (name, kind) in [
        ("pages/page.html", "text/html"),
        ("evil.svg", "image/svg+xml"),
    ] {
        let served = get(
            &server,
            &format!("/v1/jobs/{}/artifacts/{name}", job.id),
            &[],
        )
        .await;
        assert_eq!(served.status(), 200, "{name}");
        assert_eq!(header(&served, "content-type"), kind);
        assert!(
            header(&served, "content-disposition").starts_with("attachment"),
            "{name} must be a download"
        );
        assert!(header(&served, "content-security-policy").starts_with("sandbox"));
    }
    let download = client.artifact(&job.id, "pages/page.html").await.unwrap();
    let text = download.bytes().await.unwrap();
    assert!(String::from_utf8_lossy(&text).contains("<script>"));
    let missing = get(
        &server,
        &format!("/v1/jobs/{}/artifacts/nope.txt", job.id),
        &[],
    )
    .await;
    assert_eq!(missing.status(), 404);
    let climbing = get(
        &server,
        &format!("/v1/jobs/{}/artifacts/..%2F..%2Frunway.db", job.id),
        &[],
    )
    .await;
    assert_eq!(
        climbing.status(),
        404,
        "a name is looked up, never joined to a path"
    );
}

#[tokio::test]
async fn links_fifos_and_odd_names_are_never_kept_and_the_log_says_so() {
    let server = start("");
    let client = server.client();
    let job = run(&client, "hostile").await;
    assert_eq!(job.status, "succeeded", "{:?}", job.error);
    let listed = client.artifacts(&job.id).await.unwrap().artifacts;
    let names: Vec<&str> = listed
        .iter()
        .map(|artifact| artifact.name.as_str())
        .collect();
    assert_eq!(names, ["kept.txt"]);
    let log = client.log(&job.id, 0).await.unwrap().data;
    assert!(
        log.contains("passwd → /etc/passwd (a symbolic link"),
        "{log}"
    );
    assert!(log.contains("root → / (a symbolic link"), "{log}");
    assert!(log.contains("pipe (not a regular file"), "{log}");
    assert!(log.contains("control characters"), "{log}");
    let passwd = get(
        &server,
        &format!("/v1/jobs/{}/artifacts/passwd", job.id),
        &[],
    )
    .await;
    assert_eq!(passwd.status(), 404);
}

#[tokio::test]
async fn too_many_files_or_bytes_fail_the_attempt_and_keep_nothing() {
    let server = start("[server]\nartifacts_max_job_bytes = 4000\n");
    let client = server.client();
    let many = run(&client, "many").await;
    assert_eq!(many.status, "failed");
    let error = many.error.unwrap();
    assert!(
        error.contains("more than 1000 files") && error.contains("server.artifacts_max_files"),
        "{error}"
    );
    assert!(
        client
            .artifacts(&many.id)
            .await
            .unwrap()
            .artifacts
            .is_empty()
    );
    let big = run(&client, "big").await;
    assert_eq!(big.status, "failed");
    let error = big.error.unwrap();
    assert!(
        error.contains("5000 bytes") && error.contains("server.artifacts_max_job_bytes"),
        "{error}"
    );
    assert!(
        client
            .artifacts(&big.id)
            .await
            .unwrap()
            .artifacts
            .is_empty()
    );
    let kept = std::fs::read_dir(server.path("data/artifacts"))
        .unwrap()
        .count();
    assert_eq!(kept, 0, "no file of a refused attempt stays on disk");
}

#[tokio::test]
async fn a_join_reads_its_childrens_artifacts_from_the_manifest() {
    let server = start("");
    let client = server.client();
    let parent = client
        .submit(&SubmitJobRequest {
            job_type: "assemble".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let parent = finished(&client, &parent.id).await;
    assert_eq!(parent.status, "succeeded", "{:?}", parent.error);
    let whole = client.artifact(&parent.id, "whole.txt").await.unwrap();
    let text = whole.bytes().await.unwrap().to_vec();
    // Each part holds its child's input as JSON text: a quoted string.
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "\"part 0\"\n\"part 1\"\n\"part 2\"\n"
    );
    let storage = client.queues().await.unwrap().storage;
    assert_eq!(storage.artifact_files, 4);
}

#[tokio::test]
async fn deleting_a_finished_tree_removes_its_jobs_logs_and_files() {
    let server = start("[types.hold]\ncommand = [\"sleep\", \"30\"]\n");
    let client = server.client();
    let parent = client
        .submit(&SubmitJobRequest {
            job_type: "assemble".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    finished(&client, &parent.id).await;
    let child = client.tree(&parent.id, None, 10).await.unwrap().children[0]
        .id
        .clone();
    let inside = client.delete(&child).await.unwrap_err();
    assert_eq!(inside.status(), Some(409));
    assert!(
        inside
            .to_string()
            .contains(&format!("delete the whole tree (job {})", parent.id)),
        "{inside}"
    );
    let running = client
        .submit(&SubmitJobRequest {
            job_type: "hold".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let unfinished = client.delete(&running.id).await.unwrap_err();
    assert_eq!(unfinished.status(), Some(409));
    client.cancel(&running.id).await.unwrap();
    let files = || walk(&server.path("data/artifacts"));
    assert_eq!(files().len(), 4);
    let output = server.cli(&["rm", &parent.id]);
    assert!(output.status.success(), "{}", crate::stderr(&output));
    assert_eq!(
        crate::stdout(&output).trim(),
        format!("{} deleted (4 jobs)", parent.id)
    );
    assert!(files().is_empty(), "{:?}", files());
    for id in [&parent.id, &child] {
        let gone = client.job(id).await.unwrap_err();
        assert_eq!(gone.status(), Some(404));
    }
    let log = client.log(&parent.id, 0).await.unwrap_err();
    assert_eq!(log.status(), Some(404));
    finished(&client, &running.id).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(client.delete(&running.id).await.unwrap().deleted, 1);
}

#[tokio::test]
async fn the_cli_lists_and_downloads_artifacts() {
    let server = start("");
    let client = server.client();
    let job = run(&client, "render").await;
    let listed = server.cli(&["artifacts", &job.id, "-o", "json"]);
    let listed: Value = serde_json::from_str(&crate::stdout(&listed)).unwrap();
    assert_eq!(listed[0]["name"], "episode.wav");
    let table = crate::stdout(&server.cli(&["artifacts", &job.id]));
    assert!(
        table.contains("pages/page.html") && table.contains("audio/wav"),
        "{table}"
    );
    let target = server.path("copy.wav");
    let target = target.to_str().unwrap();
    let got = server.cli(&["artifacts", "get", &job.id, "episode.wav", "-o", target]);
    assert!(got.status.success(), "{}", crate::stderr(&got));
    assert_eq!(std::fs::read(target).unwrap(), b"RIFFdata");
    let again = server.cli(&["artifacts", "get", &job.id, "episode.wav", "-o", target]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing file is not overwritten"
    );
    let stdout = server.cli(&["artifacts", "get", &job.id, "notes.txt", "-o", "-"]);
    assert_eq!(crate::stdout(&stdout), "hello\n");
    let missing = server.cli(&["artifacts", "get", &job.id, "nope", "-o", "-"]);
    assert!(
        crate::stderr(&missing).contains("has no artifact named `nope`"),
        "{}",
        crate::stderr(&missing)
    );
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn a_file_replaced_by_a_later_attempt_counts_once_against_the_quota() {
    let server = start("[server]\nartifacts_max_job_bytes = 5000\n");
    let client = server.client();
    let job = run(&client, "rewrite").await;
    assert_eq!(job.status, "succeeded", "{:?}", job.error);
    let listed = client.artifacts(&job.id).await.unwrap().artifacts;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].size, listed[0].attempt), (3000, 2));
    assert_eq!(
        walk(&server.path("data/artifacts")).len(),
        1,
        "the first attempt's file went"
    );
}

#[tokio::test]
async fn a_type_with_its_own_cwd_gets_paths_that_hold_there_under_a_relative_data_directory() {
    let server = Server::start_with_relative_data(
        r#"
        [types.elsewhere]
        command = ["sh", "-c", "cp \"$RUNWAY_INPUT\" \"$RUNWAY_ARTIFACTS/input.json\""]
        cwd = "work"
        "#,
    );
    std::fs::create_dir_all(server.path("work")).unwrap();
    let client = server.client();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "elsewhere".into(),
            input: serde_json::json!({"from": "stdin and a file"}),
            ..Default::default()
        })
        .await
        .unwrap();
    let job = finished(&client, &job.id).await;
    assert_eq!(job.status, "succeeded", "{:?}", job.error);
    let kept = client
        .artifact(&job.id, "input.json")
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&kept[..], br#"{"from":"stdin and a file"}"#);
}
