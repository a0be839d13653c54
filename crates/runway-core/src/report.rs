//! A running attempt's reporter: log lines and progress go through a channel to one task per
//! attempt that folds what arrived together into one store write, so a chatty command costs a
//! few transactions, not one per line. Every write carries the attempt (fencing token).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::job::Progress;
use crate::store::{AttemptRef, Store};

/// Largest batch of log text written in one go.
const MAX_BATCH_BYTES: usize = 256 * 1024;

enum Report {
    Log(String),
    Progress(Progress),
    Pid(u32),
}

/// Cheap to clone; dropping every clone lets the writer task finish.
#[derive(Clone)]
pub struct Reporter {
    sender: mpsc::UnboundedSender<Report>,
}

impl Reporter {
    /// Starts the writer task; await the handle after dropping the reporter to know that
    /// everything reported is stored.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        attempt: AttemptRef,
        log_limit: u64,
    ) -> (Reporter, JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_reports(store, clock, attempt, log_limit, receiver));
        (Reporter { sender }, task)
    }

    pub fn log_line(&self, line: &str) {
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        let _ = self.sender.send(Report::Log(text));
    }

    pub fn progress(&self, progress: Progress) {
        let _ = self.sender.send(Report::Progress(progress));
    }

    /// Records the attempt's process so a restarted server can end it.
    pub fn pid(&self, pid: u32) {
        let _ = self.sender.send(Report::Pid(pid));
    }
}

async fn write_reports(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    attempt: AttemptRef,
    log_limit: u64,
    mut receiver: mpsc::UnboundedReceiver<Report>,
) {
    let mut logged: u64 = 0;
    let note = format!("[runway: log truncated: this job keeps at most {log_limit} bytes]\n");
    while let Some(first) = receiver.recv().await {
        let mut text = String::new();
        let mut progress = None;
        let mut pid = None;
        let mut next = Some(first);
        while let Some(report) = next.take() {
            match report {
                Report::Log(line) => {
                    // Lines go on until one crosses the limit: the store keeps what fits
                    // of that one and notes the truncation.
                    if logged + (text.len() as u64) <= log_limit {
                        text.push_str(&line);
                    }
                }
                Report::Progress(latest) => progress = Some(latest),
                Report::Pid(started) => pid = Some(started),
            }
            if text.len() >= MAX_BATCH_BYTES {
                break;
            }
            next = receiver.try_recv().ok();
        }
        if let Some(pid) = pid
            && let Err(error) = store.job_pid_set(attempt.clone(), pid).await
        {
            tracing::warn!(job = %attempt.id, %error, "could not store the process id");
        }
        if !text.is_empty() {
            logged += text.len() as u64;
            match store
                .log_append(attempt.clone(), text, log_limit, note.clone())
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => tracing::warn!(job = %attempt.id, %error, "could not store log"),
            }
        }
        if let Some(progress) = progress
            && let Err(error) = store
                .job_progress_set(attempt.clone(), progress, clock.now())
                .await
        {
            tracing::warn!(job = %attempt.id, %error, "could not store progress");
        }
    }
}
