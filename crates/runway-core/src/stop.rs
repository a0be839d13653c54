//! Stopping a running attempt: why it was asked to stop, and making children die with us.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

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

/// Asks the kernel to SIGKILL the child when the thread that started it dies, so a crashed
/// or killed server leaves no command running that a restarted server would run again.
#[allow(unsafe_code)]
pub fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}
