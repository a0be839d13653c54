//! Stopping a running attempt: why it was asked to stop, and ending what a crashed server
//! left running.

use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use crate::job::JobId;

/// Why a running attempt must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A user cancelled the job: it ends `cancelled`.
    Cancel,
    /// The server is shutting down: the job is handed back, its attempt not counted.
    Shutdown,
    /// The lease was lost (the job was rescued elsewhere): stop and write nothing.
    LeaseLost,
}

/// Set once; the first reason wins.
#[derive(Debug, Default)]
pub struct StopSignal {
    token: CancellationToken,
    reason: Mutex<Option<StopReason>>,
}

impl StopSignal {
    pub fn request(&self, reason: StopReason) {
        let mut current = self
            .reason
            .lock()
            .expect("stop reason lock is never poisoned");
        if current.is_none() {
            *current = Some(reason);
            self.token.cancel();
        }
    }

    pub fn reason(&self) -> Option<StopReason> {
        *self
            .reason
            .lock()
            .expect("stop reason lock is never poisoned")
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub async fn stopped(&self) -> StopReason {
        self.token.cancelled().await;
        self.reason().unwrap_or(StopReason::Cancel)
    }
}

/// Ends the process group of an attempt that a dead server left running, if it is still there.
/// The pid alone could have been reused, so the process must also carry the attempt's
/// `RUNWAY_JOB_ID` and `RUNWAY_ATTEMPT` in its environment. Returns whether it was ended.
pub fn end_orphaned_attempt(job_id: JobId, attempt: u32, pid: u32) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let id_marker = format!("RUNWAY_JOB_ID={job_id}");
    let attempt_marker = format!("RUNWAY_ATTEMPT={attempt}");
    let mut has_id = false;
    let mut has_attempt = false;
    for variable in environ.split(|byte| *byte == 0) {
        has_id |= variable == id_marker.as_bytes();
        has_attempt |= variable == attempt_marker.as_bytes();
    }
    if !(has_id && has_attempt) {
        return false;
    }
    killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok()
}
