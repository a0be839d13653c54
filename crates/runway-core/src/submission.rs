//! What a valid job request is: its type, queue, input (against the type's schema), ranges,
//! and its children (depth, count, keys). Submits and spawns share it, so a child spawned by a
//! running command is held to the same rules as a job a user submits.

use std::collections::HashSet;

use serde_json::Value;

use crate::app::SubmitParams;
use crate::clock::Timestamp;
use crate::config::{Config, JobRun};
use crate::error::Error;
use crate::job::{JobStatus, NewJob};
use crate::users::Access;

/// Deepest nesting accepted in a job's input.
pub const MAX_INPUT_DEPTH: usize = 64;
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;
pub const MAX_ATTEMPTS_RANGE: std::ops::RangeInclusive<u32> = 1..=100;

/// Validates a job and its children, the job sitting at `depth` of its tree.
pub fn validate_tree(
    config: &Config,
    mut request: SubmitParams,
    now: Timestamp,
    depth: u32,
) -> Result<NewJob, Error> {
    let children = std::mem::take(&mut request.children);
    let job = validate(config, request, now)?;
    let children = if children.is_empty() {
        Vec::new()
    } else {
        validate_children(config, children, now, depth)?
    };
    Ok(job.with_children(children))
}

/// Validates the children of a job at `parent_depth` (made with it, or spawned under it):
/// the tree's depth, their count, their keys (valid and unique among them), and each child
/// with its own children. An error names the child (`children[i]`).
pub fn validate_children(
    config: &Config,
    children: Vec<SubmitParams>,
    now: Timestamp,
    parent_depth: u32,
) -> Result<Vec<NewJob>, Error> {
    let limits = &config.server;
    if parent_depth >= limits.max_tree_depth {
        return Err(Error::InvalidField {
            field: "children".into(),
            message: format!(
                "would be at depth {} of their tree; at most {} levels are allowed (server.max_tree_depth)",
                parent_depth + 1,
                limits.max_tree_depth
            ),
        });
    }
    if children.len() as u64 > u64::from(limits.max_children) {
        return Err(Error::InvalidField {
            field: "children".into(),
            message: format!(
                "holds {} jobs; a job may have at most {} children (server.max_children)",
                children.len(),
                limits.max_children
            ),
        });
    }
    let mut keys = HashSet::new();
    let mut valid = Vec::with_capacity(children.len());
    for (index, child) in children.into_iter().enumerate() {
        let in_child = |error| Error::InChild {
            index,
            error: Box::new(error),
        };
        // A key's form is checked with the rest of the child (`validate`).
        if let Some(key) = &child.key {
            // As a spawn naming a key a sibling holds: a conflict between siblings.
            if !keys.insert(key.clone()) {
                return Err(in_child(Error::Conflict {
                    message: format!(
                        "`key` `{key}` is used by an earlier sibling; keys of siblings must differ"
                    ),
                }));
            }
        }
        let key = child.key.clone();
        let mut new_child =
            validate_tree(config, child, now, parent_depth + 1).map_err(in_child)?;
        new_child.key = key;
        valid.push(new_child);
    }
    Ok(valid)
}

pub fn validate(config: &Config, request: SubmitParams, now: Timestamp) -> Result<NewJob, Error> {
    // A key counts only among siblings, and an idempotency key only on a submitted job, but one
    // that could never be valid is refused anywhere.
    for (field, key) in [
        ("key", &request.key),
        ("idempotency_key", &request.idempotency_key),
    ] {
        if let Some(problem) = key.as_deref().and_then(crate::idempotency::key_problem) {
            return Err(Error::InvalidField {
                field: field.into(),
                message: problem,
            });
        }
    }
    let job_type = config
        .job_type(&request.job_type)
        .ok_or_else(|| Error::UnknownType {
            name: request.job_type.clone(),
            known: config.types.keys().cloned().collect(),
        })?;
    let queue = request.queue.unwrap_or_else(|| job_type.queue.clone());
    if !config.queues.contains_key(&queue) {
        return Err(Error::UnknownQueue {
            name: queue,
            known: config.queues.keys().cloned().collect(),
        });
    }
    let depth = json_depth(&request.input);
    if depth > MAX_INPUT_DEPTH {
        return Err(Error::InvalidField {
            field: "input".into(),
            message: format!(
                "is nested {depth} levels deep; at most {MAX_INPUT_DEPTH} are accepted"
            ),
        });
    }
    if job_type.run == JobRun::Shell
        && let Some(line) = request.input.get("command").and_then(Value::as_str)
        && line.contains('\0')
    {
        return Err(Error::InvalidField {
            field: "input.command".into(),
            message: "contains a NUL byte, which no command line can carry; remove it".into(),
        });
    }
    if let Some(schema) = &job_type.schema {
        let violations = schema.violations(&request.input, 10);
        if !violations.is_empty() {
            return Err(Error::InvalidInput {
                job_type: job_type.name.clone(),
                violations,
            });
        }
    }
    let priority = request.priority.unwrap_or(0);
    if !PRIORITY_RANGE.contains(&priority) {
        return Err(Error::InvalidField {
            field: "priority".into(),
            message: format!("is {priority}; use -1000..=1000"),
        });
    }
    let max_attempts = request.max_attempts.unwrap_or(job_type.max_attempts);
    if !MAX_ATTEMPTS_RANGE.contains(&max_attempts) {
        return Err(Error::InvalidField {
            field: "max_attempts".into(),
            message: format!("is {max_attempts}; use 1..=100"),
        });
    }
    let run_at = request.run_at.unwrap_or(now);
    let status = if run_at > now {
        JobStatus::Scheduled
    } else {
        JobStatus::Queued
    };
    Ok(NewJob {
        priority,
        max_attempts,
        status,
        tree: job_type.tree,
        trigger: request.trigger,
        ..NewJob::new(&job_type.name, &queue, request.input, run_at.max(now))
    })
}

/// Nesting depth of a JSON value: a scalar is 0, `[1]` is 1.
pub fn json_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|item| (item, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// A member may submit, spawn or retry only types that run what an admin declared: the `shell`
/// type runs any command line, so it is for admins (and the server's own jobs).
pub fn check_type(config: &Config, access: Access, job_type: &str) -> Result<(), Error> {
    let shell = config
        .types
        .get(job_type)
        .is_some_and(|declared| declared.run == JobRun::Shell);
    if shell && access != Access::All {
        return Err(Error::Forbidden {
            message: format!(
                "type `{job_type}` runs any command line, so only an admin may run it; use a \
                 type that runs a declared command"
            ),
        });
    }
    Ok(())
}

/// [`check_type`] for requests and the children they bring.
pub fn check_types(
    config: &Config,
    access: Access,
    requests: &[SubmitParams],
) -> Result<(), Error> {
    for request in requests {
        check_type(config, access, &request.job_type)?;
        check_types(config, access, &request.children)?;
    }
    Ok(())
}

/// [`check_type`] for a job about to be inserted and the children it brings.
pub fn check_new_types(config: &Config, access: Access, job: &NewJob) -> Result<(), Error> {
    check_type(config, access, &job.job_type)?;
    job.children
        .iter()
        .try_for_each(|child| check_new_types(config, access, child))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!([1])), 1);
        assert_eq!(json_depth(&json!({"a": [{"b": 1}]})), 3);
    }
}
