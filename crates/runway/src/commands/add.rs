use std::io::Read;

use chrono::{DateTime, Utc};
use runway_api::SubmitJobRequest;
use serde_json::{Value, json};

use crate::cli::{AddArgs, Connection, Format};
use crate::exit::{self, CliError};
use crate::output;

pub async fn run(connection: &Connection, args: AddArgs) -> Result<u8, CliError> {
    let request = request(args.job_type, args.input, args.command)?;
    let run_at = match (args.run_at, args.delay) {
        (Some(text), _) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map_err(|error| usage(format!("--run-at `{text}` is not an RFC 3339 instant ({error}); write e.g. 2026-11-25T18:00:00Z")))?
                .with_timezone(&Utc),
        ),
        (None, Some(text)) => {
            let delay = humantime::parse_duration(&text)
                .map_err(|error| usage(format!("--delay `{text}` is not a duration ({error}); write e.g. 30s or 5m")))?;
            let too_long = || usage(format!("--delay `{text}` is too long"));
            let delay = chrono::Duration::from_std(delay).map_err(|_| too_long())?;
            Some(Utc::now().checked_add_signed(delay).ok_or_else(too_long)?)
        }
        (None, None) => None,
    };
    let children = args
        .children
        .iter()
        .enumerate()
        .map(|(index, text)| parse_child(index, text))
        .collect::<Result<Vec<_>, _>>()?;
    let request = SubmitJobRequest {
        queue: args.queue,
        priority: args.priority,
        run_at,
        max_attempts: args.max_attempts,
        idempotency_key: args.idempotency_key,
        children,
        ..request
    };
    let client = super::client(connection)?;
    let job = client.submit(&request).await?;
    match args.output.format {
        Format::Json => output::print_json(&job)?,
        Format::Table => output::print_line(&job.id)?,
    }
    Ok(exit::OK)
}

fn usage(message: String) -> CliError {
    CliError::new(exit::USAGE, message)
}

/// Builds the request: a shell line from the words after `--`, or a type with its input.
pub fn request(
    job_type: Option<String>,
    input: Option<String>,
    command: Vec<String>,
) -> Result<SubmitJobRequest, CliError> {
    match job_type {
        None => {
            if input.is_some() {
                return Err(usage(
                    "--input needs --type; for a shell command write `runway add -- CMD ARGS…`"
                        .into(),
                ));
            }
            if command.is_empty() {
                return Err(usage("nothing to run: write `runway add -- CMD ARGS…` or `runway add --type T --input JSON`".into()));
            }
            Ok(SubmitJobRequest {
                job_type: "shell".into(),
                input: json!({"command": shell_line(&command)}),
                ..SubmitJobRequest::default()
            })
        }
        Some(job_type) => {
            if !command.is_empty() {
                return Err(usage(format!(
                    "a command after `--` is only for the shell type; pass input to `{job_type}` with --input"
                )));
            }
            let input = match input {
                Some(text) => parse_input(&text)?,
                None => Value::Null,
            };
            Ok(SubmitJobRequest {
                job_type,
                input,
                ..SubmitJobRequest::default()
            })
        }
    }
}

/// One word is taken as the whole line (`runway add -- 'make && make test'`); several words
/// are shell-quoted and joined, so `runway add -- sh -c 'a; b'` runs exactly that argv.
pub fn shell_line(words: &[String]) -> String {
    if words.len() == 1 {
        words[0].clone()
    } else {
        shell_words::join(words)
    }
}

/// The `index`th `--child`: a full job request as JSON, or @FILE.
fn parse_child(index: usize, text: &str) -> Result<SubmitJobRequest, CliError> {
    let (json, source) = read_json_text(text, &format!("--child {}", index + 1))?;
    serde_json::from_str(&json).map_err(|error| {
        usage(format!(
            "the child from {source} is not a job request ({error}); write e.g. {{\"type\": \"tts\", \"input\": {{…}}, \"key\": \"1\"}}"
        ))
    })
}

fn parse_input(text: &str) -> Result<Value, CliError> {
    let (json, source) = read_json_text(text, "--input")?;
    serde_json::from_str(&json).map_err(|error| {
        usage(format!(
            "the input from {source} is not valid JSON: {error}"
        ))
    })
}

/// The text of a JSON argument: the argument itself, or @FILE's contents (@- for stdin), with
/// where it came from.
fn read_json_text(text: &str, flag: &str) -> Result<(String, String), CliError> {
    Ok(match text.strip_prefix('@') {
        Some("-") => {
            let mut buffer = String::new();
            std::io::stdin()
                .read_to_string(&mut buffer)
                .map_err(|error| usage(format!("cannot read {flag} from stdin: {error}")))?;
            (buffer, "stdin".to_string())
        }
        Some(path) => (
            std::fs::read_to_string(path).map_err(|error| {
                usage(format!("cannot read the file {path} of {flag}: {error}"))
            })?,
            format!("file {path}"),
        ),
        None => (text.to_string(), flag.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|word| word.to_string()).collect()
    }

    #[test]
    fn one_word_is_the_line_and_several_are_quoted() {
        assert_eq!(shell_line(&words(&["echo hi && ls"])), "echo hi && ls");
        assert_eq!(shell_line(&words(&["echo", "hi"])), "echo hi");
        assert_eq!(shell_line(&words(&["sh", "-c", "a; b"])), "sh -c 'a; b'");
        assert_eq!(shell_line(&words(&["echo", "it's"])), "echo 'it'\\''s'");
    }

    #[test]
    fn type_and_command_do_not_mix() {
        assert_eq!(request(None, None, vec![]).unwrap_err().code, exit::USAGE);
        assert_eq!(
            request(Some("t".into()), None, words(&["x"]))
                .unwrap_err()
                .code,
            exit::USAGE
        );
        assert_eq!(
            request(None, Some("{}".into()), words(&["x"]))
                .unwrap_err()
                .code,
            exit::USAGE
        );
        assert_eq!(
            request(Some("t".into()), Some("{".into()), vec![])
                .unwrap_err()
                .code,
            exit::USAGE
        );
        let ok = request(Some("t".into()), Some("{\"a\":1}".into()), vec![]).unwrap();
        assert_eq!(ok.input, json!({"a": 1}));
    }
}
