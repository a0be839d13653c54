//! The API against its own document, driven by a property-based tester (schemathesis, pinned
//! in scripts/test-tools.txt): every request the document allows is taken, every request it
//! refuses is refused, every answer's status and body are documented, and nothing answers 5xx.
//! The seed is fixed so a run is repeatable; a run without `--seed` explores further.

use std::process::Command;

use crate::Server;
use crate::api::test_tool;

const CONFIG: &str = r#"
[queues.gpu]
concurrency = 1

[types.render]
command = ["sh", "-c", "cat > /dev/null"]
queue = "gpu"
schema = { type = "object", required = ["text"], properties = { text = { type = "string" } } }

[types.note]
command = ["true"]
"#;

/// Runs schemathesis with every check against `server` as the holder of `token`; returns
/// whether it passed and what it said.
fn schemathesis(server: &Server, token: &str) -> (bool, String) {
    let run = Command::new(test_tool("st"))
        .args(["--no-color", "run"])
        .arg(format!("{}/v1/openapi.json", server.url))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--seed",
            "20261129",
        ])
        // WebSockets: their messages are typed by the protocol tests (live, session).
        .args([
            "--exclude-path",
            "/v1/jobs/updates",
            "--exclude-path",
            "/v1/session",
        ])
        .current_dir(server.dir.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    (run.status.success(), said)
}

#[test]
fn an_admin_finds_the_api_as_its_document_says() {
    let server = Server::start(CONFIG);
    let (passed, said) = schemathesis(&server, &server.token);
    assert!(passed, "{said}");
    assert!(said.contains(" passed"), "{said}");
}

#[test]
fn a_member_finds_the_api_as_its_document_says() {
    let server = Server::start(CONFIG);
    let added = server.cli(&["user", "add", "alice", "--role", "member"]);
    let token = String::from_utf8(added.stdout).unwrap().trim().to_string();
    let (passed, said) = schemathesis(&server, &token);
    assert!(passed, "{said}");
    assert!(said.contains(" passed"), "{said}");
}
