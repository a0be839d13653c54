//! The line protocol between a command and runway: a stdout line `::runway {json}` is a message
//! to runway instead of log text. Pure parsing, unit-tested; the runner acts on the result.

use serde_json::{Map, Value};

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
            other => {
                return Line::Malformed(format!(
                    "unknown key `{other}`; known keys are progress, message, output"
                ));
            }
        }
    }
    if message == RunnerMessage::default() {
        return Line::Malformed("the message is empty; send progress, message or output".into());
    }
    Line::Message(message)
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
                output: None,
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
}
