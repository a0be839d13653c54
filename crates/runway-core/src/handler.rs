//! In-process handlers: job types run by Rust code registered by name, instead of a command.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::app::SubmitParams;
use crate::error::Error;
use crate::job::{Job, Progress};
use crate::log_text::LogStream;
use crate::report::Reporter;
use crate::spawn::Spawner;
use crate::store::Inserted;

/// A job type implemented in Rust. `Ok(output)` succeeds; `Err(message)` fails the attempt
/// (retried while attempts remain). A panic fails the attempt too; it never stops the server.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, ctx: JobCtx) -> Result<Option<Value>, String>;
}

/// What a handler gets for one attempt.
pub struct JobCtx {
    pub job: Job,
    /// Cancelled when the job is cancelled or the server stops: return soon after.
    pub stop: CancellationToken,
    pub(crate) reporter: Reporter,
    pub(crate) spawner: Spawner,
}

impl JobCtx {
    pub fn progress(&self, fraction: f64, message: Option<String>) {
        self.reporter.progress(Progress {
            fraction: fraction.clamp(0.0, 1.0),
            message,
        });
    }

    /// Appends a line to the job's log; waits while the store is behind.
    pub async fn log(&self, line: &str) {
        self.reporter.log_line(line, LogStream::Stdout).await;
    }

    /// Spawns children under this job, as a command's `::runway {"spawn": …}` does: validated
    /// like submits, all or none; a key a sibling holds returns that sibling. The job waits for
    /// them once the handler returns.
    pub async fn spawn(&self, children: Vec<SubmitParams>) -> Result<Vec<Inserted>, Error> {
        self.spawner.spawn(children).await
    }
}

/// Does nothing and succeeds: measures the engine and the store without process start-up.
pub struct NoopHandler;

#[async_trait]
impl Handler for NoopHandler {
    async fn run(&self, _ctx: JobCtx) -> Result<Option<Value>, String> {
        Ok(None)
    }
}

/// The handlers every runway has, by name.
pub fn builtin_handlers() -> Vec<(String, Arc<dyn Handler>)> {
    vec![(
        "noop".to_string(),
        Arc::new(NoopHandler) as Arc<dyn Handler>,
    )]
}
