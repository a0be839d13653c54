//! Errors of the engine's operations, one variant per case a caller handles differently.

use crate::config::Violation;
use crate::job::JobId;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("job type `{name}` is not declared; declared types: {}", known.join(", "))]
    UnknownType { name: String, known: Vec<String> },
    #[error("queue `{name}` is not declared; declared queues: {}", known.join(", "))]
    UnknownQueue { name: String, known: Vec<String> },
    #[error(
        "input does not match the schema of type `{job_type}`: {}",
        join(violations)
    )]
    InvalidInput {
        job_type: String,
        violations: Vec<Violation>,
    },
    #[error("`{field}` {message}")]
    InvalidField { field: String, message: String },
    #[error("job {id} does not exist")]
    NotFound { id: JobId },
    #[error("job {job} has no artifact named `{name}`")]
    NoArtifact { job: JobId, name: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("trigger `{name}` is not declared; declared triggers: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownTrigger { name: String, known: Vec<String> },
    /// A webhook path no trigger has. Its message lists nothing: anyone may ask.
    #[error("no webhook at /hooks/{path}")]
    NoWebhook { path: String },
    /// A webhook delivery that does not prove it knows the trigger's secret.
    #[error("{message}")]
    Unauthorized { message: String },
    /// A caller whose role does not allow the operation (a member managing users, pausing a
    /// queue, submitting an admins-only type).
    #[error("{message}")]
    Forbidden { message: String },
    #[error("no user named `{name}`; `runway user ls` lists them")]
    UnknownUser { name: String },
    #[error("no token {id}; `runway token ls` lists them")]
    UnknownToken { id: i64 },
    #[error("jobs[{index}]: {error}")]
    InBatch { index: usize, error: Box<Error> },
    /// About one of the children of a submitted or spawned job.
    #[error("children[{index}]: {error}")]
    InChild { index: usize, error: Box<Error> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The error itself, without the batch position.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::InBatch { error, .. } | Error::InChild { error, .. } => error.innermost(),
            other => other,
        }
    }
}
