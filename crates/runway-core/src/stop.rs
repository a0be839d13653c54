//! Stopping a running attempt: why it was asked to stop, and ending what a crashed server
//! left running.

use std::sync::Mutex;

use nix::sys::signal::{Signal, kill};
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

/// Ends what an attempt that a dead server left running still has alive: every process of the
/// group its command led (the group id is the stored pid), the leader included if it is still
/// there, even when the leader itself has exited. Pids and group ids can be reused, so a
/// process is signalled only if it carries the start's `RUNWAY_JOB_ID` and `RUNWAY_RUN` in its
/// environment (which the command's children inherit): a group reused by an unrelated process
/// is never touched. Returns how many processes were ended.
pub fn end_orphaned_attempt(job_id: JobId, run: u32, pid: u32) -> usize {
    let markers = [
        format!("RUNWAY_JOB_ID={job_id}"),
        format!("RUNWAY_RUN={run}"),
    ];
    let mut ended = 0;
    // A member may fork while it is being ended: look again until the group is empty.
    for _ in 0..MAX_SWEEPS {
        let members: Vec<u32> = group_members(pid)
            .into_iter()
            .filter(|member| carries_markers(*member, &markers))
            .collect();
        if members.is_empty() {
            break;
        }
        for member in members {
            if kill(Pid::from_raw(member as i32), Signal::SIGKILL).is_ok() {
                ended += 1;
            }
        }
    }
    ended
}

/// How often the group is looked at again for members forked meanwhile.
const MAX_SWEEPS: usize = 10;

/// The live processes whose process group is `group`.
fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group(*pid) == Some(group))
        .collect()
}

/// The process group of `pid`, from `/proc/PID/stat`: the fields after the command name, which
/// ends at the last `)`, are state, parent and group.
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    let mut fields = fields.split_whitespace();
    let state = fields.next()?;
    if state == "Z" {
        return None;
    }
    fields.nth(1)?.parse().ok()
}

fn carries_markers(pid: u32, markers: &[String; 2]) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    markers.iter().all(|marker| {
        environ
            .split(|byte| *byte == 0)
            .any(|variable| variable == marker.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_of_this_process_is_read_from_proc() {
        let own = std::process::id();
        let group = nix::unistd::getpgrp().as_raw() as u32;
        assert_eq!(process_group(own), Some(group));
        assert!(group_members(group).contains(&own));
    }

    #[test]
    fn a_process_without_the_markers_is_not_ours() {
        let markers = [
            "RUNWAY_JOB_ID=999999999".to_string(),
            "RUNWAY_RUN=1".to_string(),
        ];
        assert!(!carries_markers(std::process::id(), &markers));
        assert_eq!(
            end_orphaned_attempt(JobId(999_999_999), 1, std::process::id()),
            0
        );
    }
}
