//! Idempotent submits: a key that a client sends with a submit, and the hash of the request it
//! guards. A repeat of the same request under the same key within `server.idempotency_window`
//! gets the first job back instead of a second one; the same key with another request is a
//! conflict. The store keeps keys unique (`Store::job_insert_keyed`); this module says what a
//! valid key is and what counts as "the same request".

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::app::SubmitParams;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 255;
/// The scope of keys sent with clients' submits.
pub const SUBMIT_SCOPE: &str = "submit";

/// Where a submitter's keys are unique: each user's keys are its own, so one user's key never
/// answers with another user's job. The server's own submits (triggers) use [`SUBMIT_SCOPE`].
pub fn submit_scope(owner: Option<crate::users::UserId>) -> String {
    match owner {
        None => SUBMIT_SCOPE.to_string(),
        Some(user) => format!("{SUBMIT_SCOPE}:{user}"),
    }
}

/// Why a key is refused, or `None` when it is fine: 1 to 255 visible ASCII characters.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Some(format!(
            "is {} bytes long; use 1 to {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    if !key.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Some("holds a character that is not visible ASCII; use letters, digits and punctuation, e.g. a UUID".into());
    }
    None
}

/// SHA-256 of the request as the client sent it (before defaults are filled in), with object
/// keys in sorted order, so a client that sends the same request again gets the same hash.
pub fn request_hash(request: &SubmitParams) -> Vec<u8> {
    let mut hasher = Sha256::new();
    let mut text = Vec::new();
    canonical(&described(request), &mut text);
    hasher.update(&text);
    hasher.finalize().to_vec()
}

/// The request as JSON, children included. A request without a key or children hashes as it
/// did before they existed, so a key recorded earlier still answers a repeat.
fn described(request: &SubmitParams) -> Value {
    let mut value = serde_json::json!({
        "type": request.job_type,
        "input": request.input,
        "queue": request.queue,
        "priority": request.priority,
        "run_at": request.run_at,
        "max_attempts": request.max_attempts,
    });
    if let Some(key) = &request.key {
        value["key"] = serde_json::json!(key);
    }
    if !request.children.is_empty() {
        value["children"] = Value::Array(request.children.iter().map(described).collect());
    }
    value
}

/// JSON text with every object's keys sorted.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    serde_json::to_string(key)
                        .expect("a string serializes")
                        .as_bytes(),
                );
                out.push(b':');
                canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(
            serde_json::to_string(scalar)
                .expect("a JSON value serializes")
                .as_bytes(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(input: Value) -> SubmitParams {
        SubmitParams {
            job_type: "render".into(),
            input,
            ..SubmitParams::default()
        }
    }

    #[test]
    fn the_same_request_has_the_same_hash_whatever_the_order_of_its_keys() {
        let one = request(json!({"a": 1, "b": {"c": [1, 2], "d": "x"}}));
        let other = request(json!({"b": {"d": "x", "c": [1, 2]}, "a": 1}));
        assert_eq!(request_hash(&one), request_hash(&other));
        assert_ne!(
            request_hash(&one),
            request_hash(&request(json!({"a": 2, "b": {"c": [1, 2], "d": "x"}})))
        );
        let mut with_priority = one.clone();
        with_priority.priority = Some(5);
        assert_ne!(request_hash(&one), request_hash(&with_priority));
    }

    #[test]
    fn a_plain_request_hashes_as_it_did_before_trees() {
        let plain = request(json!({"a": 1}));
        let mut text = Vec::new();
        canonical(
            &json!({"type": plain.job_type, "input": plain.input, "queue": null,
                    "priority": null, "run_at": null, "max_attempts": null}),
            &mut text,
        );
        assert_eq!(request_hash(&plain), Sha256::digest(&text).to_vec());
        let with_child = SubmitParams {
            children: vec![request(json!({}))],
            ..request(json!({"a": 1}))
        };
        assert_ne!(request_hash(&with_child), request_hash(&plain));
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(key_problem("7f1c2e9a-retry-safe"), None);
        assert!(key_problem("").is_some());
        assert!(key_problem(&"k".repeat(256)).is_some());
        assert!(key_problem("has space").is_some());
        assert!(key_problem("naïve").is_some());
    }
}
