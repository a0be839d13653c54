//! Job trees through the real binary: fan-out by a command's stdout and over HTTP with its job
//! token, the join and its manifest, both child failure policies, cascade cancel, keys that
//! survive a retried parent, and the limits.

use std::time::Duration;

use runway_api::{SpawnRequest, SubmitJobRequest};
use runway_client::{Client, ListJobs};
use serde_json::{Value, json};

use crate::{Server, alive, eventually, finished, submit};

/// Types of these tests. `fanout` spawns `n` keyed `square` children and sums them in its
/// join; `mixed` spawns sleepers and one broken child; `collect` waits for all and reports.
const CONFIG: &str = r#"
[queues.default]
concurrency = 8

[types.fanout]
command = ["python3", "-c", '''
import json, os, sys
job = json.load(sys.stdin)
if os.environ["RUNWAY_PHASE"] == "run":
    children = [{"type": "square", "key": str(i), "input": {"n": i}} for i in range(job["n"])]
    print("::runway " + json.dumps({"spawn": children}), flush=True)
else:
    manifest = json.load(open(os.environ["RUNWAY_CHILDREN"]))
    children = manifest["children"]
    print("::runway " + json.dumps({"output": {
        "sum": sum(child["output"]["square"] for child in children),
        "keys": [child["key"] for child in children],
        "parent": manifest["parent"],
    }}))
''']
join = true

[types.square]
command = ["python3", "-c", '''
import json, sys
n = json.load(sys.stdin)["n"]
print("::runway " + json.dumps({"output": {"square": n * n}}))
''']

[types.mixed]
command = ["python3", "-c", '''
import json
children = [{"type": "sleepy", "key": str(i)} for i in range(3)] + [{"type": "broken", "key": "bad"}]
print("::runway " + json.dumps({"spawn": children}), flush=True)
''']
join = true

[types.collect]
command = ["python3", "-c", '''
import json, os
if os.environ["RUNWAY_PHASE"] == "run":
    print("::runway " + json.dumps({"spawn": [
        {"type": "square", "key": "ok", "input": {"n": 3}},
        {"type": "broken", "key": "bad"},
    ]}), flush=True)
else:
    children = json.load(open(os.environ["RUNWAY_CHILDREN"]))["children"]
    print("::runway " + json.dumps({"output": {child["key"]: [child["status"], child["error"]] for child in children}}))
''']
join = true
on_child_failure = "wait_all"

[types.sleepy]
command = ["sh", "-c", "echo $$ > \"$PIDS/$RUNWAY_JOB_ID\"; exec sleep 30"]
env = { PIDS = "PIDS_DIR" }
max_attempts = 1

[types.broken]
command = ["sh", "-c", "sleep 0.3; echo broken on purpose >&2; exit 3"]
max_attempts = 1

[types.group]
command = ["true"]

[types.flaky_fanout]
command = ["sh", "-c", '''
echo '::runway {"spawn": [{"type": "square", "key": "a", "input": {"n": 1}}, {"type": "square", "key": "b", "input": {"n": 2}}]}'
[ "$RUNWAY_ATTEMPT" -ge 2 ]
''']
max_attempts = 2
backoff_initial = "50ms"
join = true

[types.peek]
command = ["python3", "-c", '''
import json, os, urllib.request, urllib.error
def get(path):
    request = urllib.request.Request(os.environ["RUNWAY_URL"] + path,
        headers={"Authorization": "Bearer " + os.environ["RUNWAY_TOKEN"]})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
own = os.environ["RUNWAY_JOB_ID"]
status, tree = get("/v1/jobs/%s/tree" % own)
_, me = get("/v1/jobs/%s" % own)
read_parent, _ = get("/v1/jobs/%s" % me["parent"])
print("::runway " + json.dumps({"output": {"tree": status, "ancestors": len(tree["ancestors"]), "read_parent": read_parent}}))
''']

[types.http_fanout]
command = ["python3", "-c", '''
import json, os, urllib.request, urllib.error
def call(method, path, body=None):
    request = urllib.request.Request(os.environ["RUNWAY_URL"] + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + os.environ["RUNWAY_TOKEN"], "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
own = os.environ["RUNWAY_JOB_ID"]
if os.environ["RUNWAY_PHASE"] == "join":
    raise SystemExit(0)
job = json.load(open(os.environ["RUNWAY_INPUT"]))
spawned, body = call("POST", "/v1/jobs/%s/children" % own, {"children": [{"type": "square", "key": "x", "input": {"n": 4}}]})
again, _ = call("POST", "/v1/jobs/%s/children" % own, {"children": [{"type": "square", "key": "x", "input": {"n": 4}}]})
child = body["jobs"][0]["id"]
read_child, _ = call("GET", "/v1/jobs/%s" % child)
read_other, _ = call("GET", "/v1/jobs/%s" % job["other"])
cancel_self, _ = call("POST", "/v1/jobs/%s/cancel" % own)
print("::runway " + json.dumps({"output": {"spawned": spawned, "again": again, "read_child": read_child,
    "read_other": read_other, "cancel_self": cancel_self, "token": os.environ["RUNWAY_TOKEN"]}}))
''']
join = true
"#;

fn start(extra: &str) -> Server {
    Server::start_with(|dir| {
        let pids = dir.join("pids");
        std::fs::create_dir_all(&pids).unwrap();
        format!(
            "{extra}\n{}",
            CONFIG.replace("PIDS_DIR", &pids.display().to_string())
        )
    })
}

/// A job of the first type whose only child is a job of the next type, and so on down.
fn chain(types: &[&str]) -> SubmitJobRequest {
    SubmitJobRequest {
        job_type: types[0].into(),
        children: if types.len() > 1 {
            vec![chain(&types[1..])]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

async fn children(client: &Client, id: &str) -> Vec<runway_api::JobResponse> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = client.tree(id, cursor.as_deref(), 1000).await.unwrap();
        all.extend(page.children);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

#[tokio::test]
async fn a_parent_fans_out_to_a_hundred_children_and_joins_them_in_order() {
    let server = start("");
    let client = server.client();
    let id = submit(&client, "fanout", json!({"n": 100})).await;
    let parent = finished(&client, &id).await;
    assert_eq!(parent.status, "succeeded", "{:?}", parent.error);
    let output = parent.output.unwrap();
    assert_eq!(output["sum"], (0..100).map(|n| n * n).sum::<i64>());
    let keys: Vec<String> = (0..100).map(|n| n.to_string()).collect();
    assert_eq!(
        output["keys"],
        json!(keys),
        "the manifest lists children in order"
    );
    assert_eq!(output["parent"], id);
    assert_eq!(parent.phase, runway_api::JobPhase::Join);
    assert_eq!(
        (
            parent.children.total,
            parent.children.succeeded,
            parent.children.unfinished
        ),
        (100, 100, 0)
    );
    let children = children(&client, &id).await;
    assert_eq!(children.len(), 100);
    assert!(
        children
            .iter()
            .all(|child| child.parent.as_deref() == Some(id.as_str())
                && child.depth == 1
                && child.status == "succeeded")
    );
    let listed = client
        .count_jobs(&ListJobs {
            parent: Some(id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed, 100);
    let roots = client
        .list_jobs(&ListJobs {
            roots: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        roots
            .jobs
            .iter()
            .map(|job| job.id.clone())
            .collect::<Vec<_>>(),
        vec![id.clone()]
    );
    let kinds: Vec<String> = client
        .events(&id)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|event| event.kind)
        .filter(|kind| kind != "child_ended" && kind != "progress")
        .collect();
    assert_eq!(
        kinds,
        [
            "submitted",
            "started",
            "spawned",
            "waiting",
            "join_queued",
            "started",
            "succeeded"
        ],
        "the join ran exactly once"
    );
}

#[tokio::test]
async fn a_tree_submitted_three_levels_deep_succeeds_when_every_leaf_does() {
    let server = start("");
    let client = server.client();
    let leaf = |n: i64| SubmitJobRequest {
        job_type: "square".into(),
        input: json!({"n": n}),
        ..Default::default()
    };
    let branch = |first: i64| SubmitJobRequest {
        job_type: "group".into(),
        children: vec![leaf(first), leaf(first + 1)],
        ..Default::default()
    };
    let root = client
        .submit(&SubmitJobRequest {
            job_type: "group".into(),
            children: vec![branch(1), branch(3)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        root.status, "waiting",
        "a job made with children waits for them"
    );
    let root = finished(&client, &root.id).await;
    assert_eq!(root.status, "succeeded", "{:?}", root.error);
    let branches = children(&client, &root.id).await;
    assert_eq!(branches.len(), 2);
    for branch in &branches {
        assert_eq!(branch.status, "succeeded");
        let leaves = children(&client, &branch.id).await;
        assert_eq!(leaves.len(), 2);
        for leaf in leaves {
            assert_eq!(
                (leaf.depth, leaf.root.as_deref()),
                (2, Some(root.id.as_str()))
            );
            assert_eq!(leaf.status, "succeeded");
        }
    }
    let tree = client.tree(&branches[1].id, None, 10).await.unwrap();
    assert_eq!(
        tree.ancestors
            .iter()
            .map(|job| job.id.clone())
            .collect::<Vec<_>>(),
        vec![root.id.clone()]
    );
}

/// Waits until every sleeper of the test has written its pid, and returns the pids.
async fn sleeper_pids(server: &Server, count: usize) -> Vec<i32> {
    eventually("the sleepers to start", Duration::from_secs(20), || async {
        let pids: Vec<i32> = std::fs::read_dir(server.path("pids"))
            .unwrap()
            .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
            .filter_map(|text| text.trim().parse().ok())
            .collect();
        (pids.len() == count).then_some(pids)
    })
    .await
}

#[tokio::test]
async fn fail_fast_cancels_the_siblings_and_fails_the_parent_naming_the_child() {
    let server = start("");
    let client = server.client();
    let id = submit(&client, "mixed", json!({})).await;
    let pids = sleeper_pids(&server, 3).await;
    let parent = finished(&client, &id).await;
    assert_eq!(parent.status, "failed");
    let error = parent.error.unwrap();
    assert!(
        error.contains("(broken) failed: exited with status 3"),
        "{error}"
    );
    for child in children(&client, &id).await {
        let child = finished(&client, &child.id).await;
        if child.job_type == "sleepy" {
            assert_eq!(child.status, "cancelled");
            let reason = child.error.unwrap();
            assert!(reason.contains("(broken) failed"), "{reason}");
        }
    }
    for pid in pids {
        eventually(
            "the sleepers' processes to end",
            Duration::from_secs(10),
            || async { (!alive(pid)).then_some(()) },
        )
        .await;
    }
}

#[tokio::test]
async fn wait_all_lets_the_join_see_every_outcome() {
    let server = start("");
    let client = server.client();
    let id = submit(&client, "collect", json!({})).await;
    let parent = finished(&client, &id).await;
    assert_eq!(
        parent.status, "succeeded",
        "the join decided: {:?}",
        parent.error
    );
    let output = parent.output.unwrap();
    assert_eq!(output["ok"], json!(["succeeded", null]));
    assert_eq!(output["bad"], json!(["failed", "exited with status 3"]));
    assert_eq!(parent.children.failed, 1);
}

#[tokio::test]
async fn cancelling_a_parent_cancels_its_whole_tree_and_ends_its_processes() {
    let server = start(
        "[types.mixed_slow]\ncommand = [\"sh\", \"-c\", \"echo '::runway {\\\"spawn\\\": [{\\\"type\\\": \\\"sleepy\\\"}, {\\\"type\\\": \\\"sleepy\\\"}]}'\"]\njoin = true\n",
    );
    let client = server.client();
    let id = submit(&client, "mixed_slow", json!({})).await;
    let pids = sleeper_pids(&server, 2).await;
    // The children may start before their parent's command has ended.
    let waiting = eventually("the parent waiting", Duration::from_secs(10), || async {
        let parent = client.job(&id).await.unwrap();
        (parent.status != "running").then_some(parent)
    })
    .await;
    assert_eq!(waiting.status, "waiting");
    let progress = waiting.progress.unwrap();
    assert_eq!(progress.fraction, 0.0);
    client.cancel(&id).await.unwrap();
    assert_eq!(client.job(&id).await.unwrap().status, "cancelled");
    for child in children(&client, &id).await {
        let child = finished(&client, &child.id).await;
        assert_eq!(child.status, "cancelled");
    }
    for pid in pids {
        eventually(
            "the children's processes to end",
            Duration::from_secs(10),
            || async { (!alive(pid)).then_some(()) },
        )
        .await;
    }
}

#[tokio::test]
async fn a_retried_parent_attempt_spawning_the_same_keys_makes_no_duplicates() {
    let server = start("");
    let client = server.client();
    let id = submit(&client, "flaky_fanout", json!({})).await;
    let parent = finished(&client, &id).await;
    assert_eq!(parent.status, "succeeded", "{:?}", parent.error);
    assert_eq!(
        parent.attempt, 3,
        "two attempts of the first run, one of the join"
    );
    let children = children(&client, &id).await;
    let keys: Vec<Option<String>> = children.iter().map(|child| child.key.clone()).collect();
    assert_eq!(keys, vec![Some("a".into()), Some("b".into())]);
    assert_eq!(parent.children.total, 2);
    let log = client.log(&id, 0).await.unwrap().data;
    assert!(
        log.contains("1 already made under their keys") || log.contains("2 already made"),
        "{log}"
    );
}

#[tokio::test]
async fn limits_on_depth_and_children_are_refused_with_the_setting_to_change() {
    let server = start("[server]\nmax_tree_depth = 1\nmax_children = 5\n");
    let client = server.client();
    let too_deep = client
        .submit(&chain(&["group", "group", "group"]))
        .await
        .unwrap_err();
    assert_eq!(too_deep.status(), Some(400));
    let message = too_deep.to_string();
    assert!(
        message.contains("children[0]") && message.contains("server.max_tree_depth"),
        "{message}"
    );
    let too_many = submit(&client, "fanout", json!({"n": 6})).await;
    let parent = finished(&client, &too_many).await;
    assert_eq!(parent.status, "failed");
    let error = parent.error.unwrap();
    assert!(
        error.contains("a spawn was refused")
            && error.contains("at most 5")
            && error.contains("server.max_children"),
        "{error}"
    );
    assert_eq!(
        parent.children.total, 0,
        "nothing of the refused spawn was made"
    );
    let listed = client.list_jobs(&ListJobs::default()).await.unwrap();
    assert_eq!(
        listed.jobs.len(),
        1,
        "no job was made by the refused submit or spawn"
    );
}

#[tokio::test]
async fn a_command_spawns_over_http_with_a_token_limited_to_its_subtree_and_attempt() {
    let server = start("");
    let client = server.client();
    let other = submit(&client, "group", json!({})).await;
    finished(&client, &other).await;
    let id = submit(&client, "http_fanout", json!({"other": other})).await;
    let parent = finished(&client, &id).await;
    assert_eq!(parent.status, "succeeded", "{:?}", parent.error);
    let output = parent.output.unwrap();
    assert_eq!(output["spawned"], 201);
    assert_eq!(output["again"], 200, "the key returned the child");
    assert_eq!(output["read_child"], 200);
    assert_eq!(output["read_other"], 403);
    assert_eq!(output["cancel_self"], 403);
    assert_eq!(parent.children.total, 1);
    let token = output["token"].as_str().unwrap();
    let stale = Client::new(&server.url, Some(token.to_string()));
    let refused = stale.job(&id).await.unwrap_err();
    assert_eq!(
        refused.status(),
        Some(401),
        "the token ended with its attempt"
    );
    let spawn = stale
        .spawn(
            &id,
            &SpawnRequest {
                children: vec![SubmitJobRequest {
                    job_type: "square".into(),
                    ..Default::default()
                }],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(spawn.status(), Some(401));
}

#[tokio::test]
async fn the_cli_submits_children_and_draws_the_tree() {
    let server = start("");
    let client = server.client();
    let output = server.cli(&[
        "add",
        "--type",
        "group",
        "--child",
        r#"{"type": "square", "key": "one", "input": {"n": 1}}"#,
        "--child",
        r#"{"type": "group", "children": [{"type": "square", "input": {"n": 2}}]}"#,
    ]);
    assert!(output.status.success(), "{}", crate::stderr(&output));
    let id = crate::stdout(&output).trim().to_string();
    assert_eq!(finished(&client, &id).await.status, "succeeded");
    let drawn = server.cli(&["show", "--tree", &id]);
    let text = crate::stdout(&drawn);
    assert!(text.contains("children"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|line| line.contains("─ ")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("├─ ") && lines[0].contains("square succeeded key=one"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("└─ ") && lines[1].contains("group succeeded"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("   └─ ") && lines[2].contains("square succeeded"),
        "{text}"
    );
    let json: Value = serde_json::from_str(&crate::stdout(
        &server.cli(&["show", "--tree", &id, "-o", "json"]),
    ))
    .unwrap();
    assert_eq!(
        json["descendants"][1]["descendants"][0]["input"],
        json!({"n": 2})
    );
    let bad = server.cli(&["add", "--type", "group", "--child", r#"{"typ": "square"}"#]);
    assert_eq!(bad.status.code(), Some(2), "usage error");
    assert!(
        crate::stderr(&bad).contains("--child 1")
            && crate::stderr(&bad).contains("unknown field `typ`"),
        "{}",
        crate::stderr(&bad)
    );
    let children = server.cli(&["ls", "--parent", &id, "-o", "json"]);
    let listed: Value = serde_json::from_str(&crate::stdout(&children)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn retrying_a_failed_tree_runs_again_only_the_children_that_did_not_succeed() {
    let server = Server::start_with(|dir| {
        format!(
            r#"
            [queues.default]
            concurrency = 8
            [types.book]
            command = ["python3", "-c", '''
import json, os
if os.environ["RUNWAY_PHASE"] == "run":
    print("::runway " + json.dumps({{"spawn": [{{"type": "chapter", "key": str(n), "input": {{"n": n}}}} for n in range(1, 6)]}}), flush=True)
else:
    children = json.load(open(os.environ["RUNWAY_CHILDREN"]))["children"]
    bad = [child["key"] for child in children if child["status"] != "succeeded"]
    if bad:
        raise SystemExit("chapters failed: " + ",".join(bad))
    print("::runway " + json.dumps({{"output": {{"pages": sum(child["output"]["pages"] for child in children)}}}}))
''']
            join = true
            on_child_failure = "wait_all"
            max_attempts = 1
            [types.chapter]
            command = ["sh", "-c", '''
            n=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["n"])')
            echo $n >> {runs}
            if [ $n = 3 ] && [ ! -e {fixed} ]; then exit 1; fi
            echo "::runway {{\"output\": {{\"pages\": $n}}}}"
            ''']
            max_attempts = 1
            "#,
            runs = dir.join("runs").display(),
            fixed = dir.join("fixed").display(),
        )
    });
    let client = server.client();
    let first = submit(&client, "book", json!({})).await;
    let failed = finished(&client, &first).await;
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.error.as_deref(), Some("exited with status 1"));
    let log = client.log(&first, 0).await.unwrap().data;
    assert!(log.contains("chapters failed: 3"), "{log}");
    std::fs::write(server.path("fixed"), "").unwrap();
    let child = children(&client, &first).await.remove(0);
    let refused = client.retry(&child.id).await.unwrap_err();
    assert_eq!(refused.status(), Some(409));
    assert!(
        refused.to_string().contains(&format!(
            "tree of job {first}; retry the tree from its root"
        )),
        "{refused}"
    );
    let again = client.retry(&first).await.unwrap();
    assert_eq!(again.retry_of.as_deref(), Some(first.as_str()));
    assert_eq!(
        again.status, "waiting",
        "the first run had ended: it is not run again"
    );
    let again = finished(&client, &again.id).await;
    assert_eq!(again.status, "succeeded", "{:?}", again.error);
    assert_eq!(again.output, Some(json!({"pages": 15})));
    let mut runs: Vec<String> = std::fs::read_to_string(server.path("runs"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    runs.sort();
    assert_eq!(
        runs,
        ["1", "2", "3", "3", "4", "5"],
        "only chapter 3 ran twice"
    );
    let kept = children(&client, &again.id).await;
    assert_eq!(kept.len(), 5);
    for (index, child) in kept.iter().enumerate() {
        assert_eq!(child.key.as_deref(), Some((index + 1).to_string().as_str()));
        assert_eq!(child.status, "succeeded");
        assert!(child.retry_of.is_some());
    }
    let log = client.log(&again.id, 0).await.unwrap().data;
    assert!(
        log.is_empty() || !log.contains("spawned"),
        "the first run did not run again: {log}"
    );
}

#[tokio::test]
async fn follow_on_a_parent_prints_its_log_and_ends_with_its_childrens_count() {
    let server = start("");
    let client = server.client();
    let id = submit(&client, "fanout", json!({"n": 5})).await;
    let followed = server.cli(&["follow", &id]);
    assert_eq!(
        followed.status.code(),
        Some(0),
        "{}",
        crate::stderr(&followed)
    );
    let log = crate::stdout(&followed);
    assert!(log.contains("[runway: spawned jobs "), "{log}");
    let ended = crate::stderr(&followed);
    assert!(
        ended.contains(&format!("runway: job {id} succeeded · children 5/5")),
        "{ended}"
    );
}

#[tokio::test]
async fn a_job_token_sees_no_ancestor_above_its_own_job() {
    let server = start("");
    let client = server.client();
    let root = client
        .submit(&chain(&["group", "group", "peek"]))
        .await
        .unwrap();
    let root = finished(&client, &root.id).await;
    let branch = children(&client, &root.id).await.remove(0);
    let leaf = children(&client, &branch.id).await.remove(0);
    assert_eq!(leaf.status, "succeeded", "{:?}", leaf.error);
    let output = leaf.output.unwrap();
    assert_eq!(output["tree"], 200);
    assert_eq!(
        output["ancestors"], 0,
        "the root and the branch are above the token's job"
    );
    assert_eq!(output["read_parent"], 403);
}
