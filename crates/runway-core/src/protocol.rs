//! The line protocol between a command and runway: a stdout line `::runway {json}` is a message
//! to runway instead of log text. Pure parsing, unit-tested; the runner acts on the result.

use serde_json::{Map, Value};

use crate::app::SubmitParams;

/// Lines starting with this are messages to runway.
pub const PREFIX: &str = "::runway ";

/// What one stdout line means.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Ordinary log text.
    Text,
    /// A well-formed message.
    Message(RunnerMessage),
    /// Looked like a message but is not one; logged with the reason so the author can fix it.
    Malformed(String),
}

/// A message from a running command. Every field is optional; a line may carry several.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunnerMessage {
    /// 0.0 ..= 1.0
    pub progress: Option<f64>,
    pub message: Option<String>,
    /// Replaces the job's output; the last one sent before exit is kept.
    pub output: Option<Value>,
    /// Children to create under the job: `{"spawn": {…}}` or `{"spawn": [{…}, …]}`.
    pub spawn: Option<Vec<SubmitParams>>,
}

pub fn parse_line(line: &str) -> Line {
    let Some(body) = line.strip_prefix(PREFIX) else {
        return Line::Text;
    };
    let fields: Map<String, Value> = match serde_json::from_str(body.trim()) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Line::Malformed("the message must be a JSON object".into()),
        Err(error) => return Line::Malformed(format!("the message is not valid JSON: {error}")),
    };
    let mut message = RunnerMessage::default();
    for (key, value) in fields {
        match key.as_str() {
            "progress" => match value.as_f64() {
                Some(fraction) if (0.0..=1.0).contains(&fraction) => {
                    message.progress = Some(fraction)
                }
                _ => {
                    return Line::Malformed(format!(
                        "`progress` must be a number from 0 to 1, got {value}"
                    ));
                }
            },
            "message" => match value {
                Value::String(text) => message.message = Some(text),
                other => {
                    return Line::Malformed(format!("`message` must be a string, got {other}"));
                }
            },
            "output" => message.output = Some(value),
            "spawn" => {
                let requests = match value {
                    Value::Array(items) => items,
                    single => vec![single],
                };
                let parsed: Result<Vec<SubmitParams>, String> = requests
                    .into_iter()
                    .enumerate()
                    .map(|(index, request)| {
                        spawn_request(request).map_err(|error| format!("spawn[{index}]: {error}"))
                    })
                    .collect();
                match parsed {
                    Ok(requests) if requests.is_empty() => {
                        return Line::Malformed("`spawn` is an empty list".into());
                    }
                    Ok(requests) => message.spawn = Some(requests),
                    Err(error) => return Line::Malformed(error),
                }
            }
            other => {
                return Line::Malformed(format!(
                    "unknown key `{other}`; known keys are progress, message, output, spawn"
                ));
            }
        }
    }
    if message == RunnerMessage::default() {
        return Line::Malformed(
            "the message is empty; send progress, message, output or spawn".into(),
        );
    }
    Line::Message(message)
}

/// One child of a spawn: `{"type", "input", "key", "queue", "priority", "max_attempts",
/// "children"}`, the fields of a submit.
fn spawn_request(value: Value) -> Result<SubmitParams, String> {
    let Value::Object(fields) = value else {
        return Err(format!("a child must be a JSON object, got {value}"));
    };
    let mut request = SubmitParams::default();
    let mut has_type = false;
    for (key, value) in fields {
        let wrong = |expected: &str| format!("`{key}` must be {expected}, got {value}");
        match key.as_str() {
            "type" => match &value {
                Value::String(name) => {
                    request.job_type = name.clone();
                    has_type = true;
                }
                _ => return Err(wrong("a string")),
            },
            "input" => request.input = value,
            "key" => match &value {
                Value::String(text) => request.key = Some(text.clone()),
                _ => return Err(wrong("a string")),
            },
            "queue" => match &value {
                Value::String(text) => request.queue = Some(text.clone()),
                _ => return Err(wrong("a string")),
            },
            "priority" => match value.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(priority) => request.priority = Some(priority),
                None => return Err(wrong("an integer")),
            },
            "max_attempts" => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(attempts) => request.max_attempts = Some(attempts),
                None => return Err(wrong("a positive integer")),
            },
            "children" => match value {
                Value::Array(items) => {
                    request.children = items
                        .into_iter()
                        .enumerate()
                        .map(|(index, child)| {
                            spawn_request(child)
                                .map_err(|error| format!("children[{index}]: {error}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                other => return Err(format!("`children` must be a list, got {other}")),
            },
            other => {
                return Err(format!(
                    "unknown key `{other}`; a child has type, input, key, queue, priority, max_attempts, children"
                ));
            }
        }
    }
    if !has_type {
        return Err("a child needs a `type`".into());
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_lines_are_text() {
        assert_eq!(parse_line("hello"), Line::Text);
        assert_eq!(parse_line("::runwayish {}"), Line::Text);
        assert_eq!(parse_line(" ::runway {\"progress\": 1}"), Line::Text);
    }

    #[test]
    fn progress_message_and_output_are_read() {
        assert_eq!(
            parse_line(r#"::runway {"progress": 0.4, "message": "chunk 2/5"}"#),
            Line::Message(RunnerMessage {
                progress: Some(0.4),
                message: Some("chunk 2/5".into()),
                ..RunnerMessage::default()
            })
        );
        assert_eq!(
            parse_line(r#"::runway {"output": {"wav": "a.wav"}}"#),
            Line::Message(RunnerMessage {
                output: Some(json!({"wav": "a.wav"})),
                ..RunnerMessage::default()
            })
        );
    }

    #[test]
    fn malformed_messages_say_why() {
        let reason = |line: &str| match parse_line(line) {
            Line::Malformed(reason) => reason,
            other => panic!("{line} gave {other:?}"),
        };
        assert!(reason("::runway {").contains("not valid JSON"));
        assert!(reason("::runway [1]").contains("JSON object"));
        assert!(reason(r#"::runway {"progress": 1.5}"#).contains("from 0 to 1"));
        assert!(reason(r#"::runway {"progress": "half"}"#).contains("from 0 to 1"));
        assert!(reason(r#"::runway {"message": 3}"#).contains("string"));
        assert!(reason(r#"::runway {"colour": "red"}"#).contains("unknown key `colour`"));
        assert!(reason("::runway {}").contains("empty"));
    }

    #[test]
    fn a_spawn_is_one_child_or_a_list_with_nested_children() {
        let one =
            parse_line(r#"::runway {"spawn": {"type": "tts", "input": {"n": 1}, "key": "1"}}"#);
        let Line::Message(RunnerMessage {
            spawn: Some(children),
            ..
        }) = one
        else {
            panic!("{one:?}");
        };
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].job_type, "tts");
        assert_eq!(children[0].input, json!({"n": 1}));
        assert_eq!(children[0].key.as_deref(), Some("1"));
        let nested = parse_line(
            r#"::runway {"spawn": [{"type": "a"}, {"type": "b", "priority": 5, "children": [{"type": "c"}]}]}"#,
        );
        let Line::Message(RunnerMessage {
            spawn: Some(children),
            ..
        }) = nested
        else {
            panic!("{nested:?}");
        };
        assert_eq!(children.len(), 2);
        assert_eq!(children[1].priority, Some(5));
        assert_eq!(children[1].children[0].job_type, "c");
    }

    #[test]
    fn a_malformed_spawn_names_the_child_and_the_field() {
        let reason = |line: &str| match parse_line(line) {
            Line::Malformed(reason) => reason,
            other => panic!("{line} gave {other:?}"),
        };
        assert!(reason(r#"::runway {"spawn": []}"#).contains("empty"));
        assert!(
            reason(r#"::runway {"spawn": [{"input": 1}]}"#)
                .contains("spawn[0]: a child needs a `type`")
        );
        assert!(
            reason(r#"::runway {"spawn": [{"type": "a"}, {"type": 3}]}"#)
                .contains("spawn[1]: `type` must be a string")
        );
        assert!(
            reason(r#"::runway {"spawn": {"type": "a", "colour": 1}}"#)
                .contains("unknown key `colour`")
        );
        assert!(
            reason(
                r#"::runway {"spawn": {"type": "a", "children": [{"type": "b", "priority": "x"}]}}"#
            )
            .contains("children[0]: `priority` must be an integer")
        );
    }
}
