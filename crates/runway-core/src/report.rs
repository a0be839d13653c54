//! A running attempt's reporter: log lines and progress go through a channel to one task per
//! attempt that folds what arrived together into one store write, so a chatty command costs a
//! few transactions, not one per line. Every write carries the attempt (fencing token).
//!
//! Memory per attempt is bounded whatever the command prints: log text queued for the store
//! is limited to [`IN_FLIGHT_BYTES`] (a reader that gets ahead waits, and the command's pipe
//! fills, which pauses the command), plus the one batch being written (at most 256 KiB and a
//! line); text past the job's log limit is dropped before it is queued, and progress is one
//! slot that the latest report overwrites.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Timestamp};
use crate::job::Progress;
use crate::log_text::{LogStream, LogText};
use crate::store::{AttemptRef, Store, StoreError};

/// Largest batch of log text written in one go.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Most log text queued for the store per attempt; past it, reporting a line waits.
pub const IN_FLIGHT_BYTES: usize = 1024 * 1024;

enum Report {
    /// A line of log text, holding its share of the in-flight budget until it is written.
    Log(String, LogStream, OwnedSemaphorePermit),
    /// The progress slot holds a new value.
    Progress,
    Pid(u32),
}

struct Shared {
    in_flight: Arc<Semaphore>,
    /// Log bytes accepted so far, dropped ones included.
    accepted: AtomicU64,
    log_limit: u64,
    progress: Mutex<Option<Progress>>,
}

/// Cheap to clone; dropping every clone lets the writer task finish.
#[derive(Clone)]
pub struct Reporter {
    sender: mpsc::UnboundedSender<Report>,
    shared: Arc<Shared>,
}

/// The receiving end of a [`Reporter`]: what the attempt reported, in order.
pub struct Reports {
    receiver: mpsc::UnboundedReceiver<Report>,
    shared: Arc<Shared>,
    /// Cancelled when the attempt is over: what is queued then is the last there is, even if
    /// a handler kept a clone of its reporter alive.
    ended: CancellationToken,
}

/// The task that stores an attempt's reports.
pub struct ReportWriter {
    task: JoinHandle<()>,
    ended: CancellationToken,
}

impl ReportWriter {
    /// Ends the attempt's reporting and waits until what it reported is stored.
    pub async fn finish(self) {
        self.ended.cancel();
        let _ = self.task.await;
    }
}

impl Reporter {
    /// A reporter and the end its reports come out of, for an attempt that keeps at most
    /// `log_limit` bytes of log.
    pub fn channel(log_limit: u64) -> (Reporter, Reports) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT_BYTES)),
            accepted: AtomicU64::new(0),
            log_limit,
            progress: Mutex::new(None),
        });
        let reports = Reports {
            receiver,
            shared: Arc::clone(&shared),
            ended: CancellationToken::new(),
        };
        (Reporter { sender, shared }, reports)
    }

    /// Starts the writer task; [`ReportWriter::finish`] once the attempt is over stores what
    /// is left.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        attempt: AttemptRef,
        log_limit: u64,
    ) -> (Reporter, ReportWriter) {
        let (reporter, reports) = Reporter::channel(log_limit);
        let ended = reports.ended.clone();
        let task = tokio::spawn(write_reports(store, clock, attempt, reports));
        (reporter, ReportWriter { task, ended })
    }

    /// Queues a line of log from `stream`; waits while the store is behind. A line past the
    /// job's log limit is dropped at once (the line that crosses it still goes: the store keeps
    /// what fits and notes the cut).
    pub async fn log_line(&self, line: &str, stream: LogStream) {
        let size = line.len() + 1;
        let before = self
            .shared
            .accepted
            .fetch_add(size as u64, Ordering::Relaxed);
        if before > self.shared.log_limit {
            return;
        }
        let wanted = size.min(IN_FLIGHT_BYTES) as u32;
        let Ok(permit) = Arc::clone(&self.shared.in_flight)
            .acquire_many_owned(wanted)
            .await
        else {
            return;
        };
        let mut text = String::with_capacity(size);
        text.push_str(line);
        text.push('\n');
        let _ = self.sender.send(Report::Log(text, stream, permit));
    }

    /// Queues a note of runway's own (a spawn, a refused line) into the attempt's log.
    pub async fn note(&self, line: &str) {
        self.log_line(line, LogStream::Runway).await;
    }

    /// Sets the attempt's progress; only the latest value waiting to be written is kept.
    pub fn progress(&self, progress: Progress) {
        let was_empty = self
            .shared
            .progress
            .lock()
            .expect("progress lock is never poisoned")
            .replace(progress)
            .is_none();
        if was_empty {
            let _ = self.sender.send(Report::Progress);
        }
    }

    /// Records the attempt's process so a restarted server can end it.
    pub fn pid(&self, pid: u32) {
        let _ = self.sender.send(Report::Pid(pid));
    }
}

/// What arrived together, folded into one write.
#[derive(Debug, Default, PartialEq)]
pub struct ReportBatch {
    pub text: LogText,
    pub progress: Option<Progress>,
    pub pid: Option<u32>,
}

impl Reports {
    /// Waits for the next report and folds in what else is waiting, up to a batch's size.
    /// `None` once every reporter is gone and everything was taken.
    pub async fn next_batch(&mut self) -> Option<ReportBatch> {
        let first = tokio::select! {
            biased;
            report = self.receiver.recv() => report?,
            () = self.ended.cancelled() => self.receiver.try_recv().ok()?,
        };
        let mut batch = ReportBatch::default();
        let mut next = Some(first);
        while let Some(report) = next.take() {
            match report {
                // The permit is returned here: the text now counts against the batch.
                Report::Log(line, stream, _permit) => batch.text.push(&line, stream),
                Report::Progress => {
                    batch.progress = self
                        .shared
                        .progress
                        .lock()
                        .expect("progress lock is never poisoned")
                        .take()
                        .or(batch.progress.take());
                }
                Report::Pid(started) => batch.pid = Some(started),
            }
            if batch.text.len() >= MAX_BATCH_BYTES {
                break;
            }
            next = self.receiver.try_recv().ok();
        }
        Some(batch)
    }
}

/// How often the note about lost log text is retried, a second apart, after failures other
/// than a full disk.
const LOST_NOTE_TRIES: u32 = 5;

async fn write_reports(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    attempt: AttemptRef,
    mut reports: Reports,
) {
    let log_limit = reports.shared.log_limit;
    let note = format!("[runway: log truncated: this job keeps at most {log_limit} bytes]\n");
    // Log text the store refused (a full disk): counted on the job, with a note where it went
    // missing, as soon as a write succeeds again. A cut log never passes as whole.
    let mut lost = LostLog::default();
    while let Some(batch) = reports.next_batch().await {
        if let Some(pid) = batch.pid
            && let Err(error) = store.job_pid_set(attempt.clone(), pid).await
        {
            tracing::warn!(job = %attempt.id, %error, "could not store the process id");
        }
        if !batch.text.is_empty() {
            let size = batch.text.len() as u64;
            let at = clock.now();
            match append(&*store, &attempt, &lost, batch.text, log_limit, &note, at).await {
                Ok(true) => lost = LostLog::default(),
                Ok(false) => return,
                Err(error) => {
                    if lost.bytes == 0 {
                        tracing::warn!(job = %attempt.id, %error, "could not store log; counting what is lost");
                    }
                    lost.bytes += size;
                    lost.reason = error.to_string();
                }
            }
        }
        if let Some(progress) = batch.progress
            && let Err(error) = store
                .job_progress_set(attempt.clone(), progress, clock.now())
                .await
        {
            tracing::warn!(job = %attempt.id, %error, "could not store progress");
        }
    }
    // The note must be stored before the outcome is, or a cut log would pass as whole. While
    // the disk is full nothing else can be stored either: wait for room, a second at a time,
    // until the attempt no longer holds the job. Other failures get a few tries.
    if lost.bytes == 0 {
        return;
    }
    let mut other_failures = 0;
    loop {
        let at = clock.now();
        match append(
            &*store,
            &attempt,
            &lost,
            LogText::default(),
            log_limit,
            &note,
            at,
        )
        .await
        {
            Ok(_) => return,
            Err(StoreError::Full(_)) => {}
            Err(error) => {
                other_failures += 1;
                if other_failures >= LOST_NOTE_TRIES {
                    tracing::error!(job = %attempt.id, bytes = lost.bytes, %error, "log text was lost and the note about it could not be stored");
                    return;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Log text an attempt could not store yet, and why.
#[derive(Default)]
struct LostLog {
    bytes: u64,
    reason: String,
}

/// Appends `text`, preceded by a note about what was lost before it, if anything was.
async fn append(
    store: &dyn Store,
    attempt: &AttemptRef,
    lost: &LostLog,
    text: LogText,
    log_limit: u64,
    truncated_note: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let text = if lost.bytes == 0 {
        text
    } else {
        let mut noted = LogText::new(
            format!(
                "[runway: {} bytes of log were lost here: {}]\n",
                lost.bytes, lost.reason
            ),
            LogStream::Runway,
        );
        noted.append(text);
        noted
    };
    store
        .log_append(
            attempt.clone(),
            text,
            log_limit,
            truncated_note.to_string(),
            lost.bytes,
            at,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(fraction: f64) -> Progress {
        Progress {
            fraction,
            message: None,
        }
    }

    #[tokio::test]
    async fn a_reporter_waits_once_a_megabyte_is_queued() {
        let (reporter, mut reports) = Reporter::channel(u64::MAX);
        let line = "x".repeat(1023);
        for _ in 0..IN_FLIGHT_BYTES / 1024 {
            reporter.log_line(&line, LogStream::Stdout).await;
        }
        let blocked = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            reporter.log_line(&line, LogStream::Stdout),
        )
        .await;
        assert!(blocked.is_err(), "the line past the budget must wait");
        let batch = reports.next_batch().await.expect("reports are waiting");
        assert_eq!(batch.text.len(), MAX_BATCH_BYTES);
        reporter.log_line(&line, LogStream::Stdout).await;
    }

    #[tokio::test]
    async fn lines_past_the_log_limit_are_dropped_before_they_are_queued() {
        let (reporter, mut reports) = Reporter::channel(10);
        reporter.log_line("12345", LogStream::Stdout).await;
        reporter.log_line("crossing", LogStream::Stderr).await;
        for _ in 0..100_000 {
            reporter.log_line("dropped", LogStream::Stdout).await;
        }
        drop(reporter);
        let batch = reports.next_batch().await.expect("two lines were queued");
        assert_eq!(batch.text.text, "12345\ncrossing\n");
        assert_eq!(
            batch.text.streams,
            vec![(0, LogStream::Stdout), (6, LogStream::Stderr)]
        );
        assert_eq!(reports.next_batch().await, None);
    }

    #[tokio::test]
    async fn only_the_latest_progress_waits_for_the_store() {
        let (reporter, mut reports) = Reporter::channel(u64::MAX);
        for step in 0..10_000 {
            reporter.progress(progress(f64::from(step) / 10_000.0));
        }
        reporter.pid(42);
        drop(reporter);
        let batch = reports.next_batch().await.expect("a progress was queued");
        assert_eq!(batch.progress, Some(progress(0.9999)));
        assert_eq!(batch.pid, Some(42));
        assert_eq!(reports.next_batch().await, None);
    }
}
