//! Stopping a running attempt: why it was asked to stop, and ending what a crashed server
//! left running.

use std::collections::BTreeSet;
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use crate::job::Job;

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

/// Ends what an attempt that a dead server left running still has alive, and says how many of
/// its process groups were found. Its processes are found by the markers they inherited in
/// their environment: the server's `RUNWAY_DATA_DIR`, `RUNWAY_JOB_ID` and the start's
/// `RUNWAY_RUN`, so a reused pid or another server's job of the same id is never touched (a
/// process an older runway started, without those two, counts only inside the group of the
/// stored pid). Each process group holding one is killed whole, so members that cleared their
/// environment go too: a group id is not reused while any member lives. The stored pid is not
/// needed otherwise: it may never have been written.
pub fn end_orphaned_attempt(data_dir: &str, job: &Job) -> usize {
    let markers = Markers {
        data_dir: format!("RUNWAY_DATA_DIR={data_dir}"),
        job: format!("RUNWAY_JOB_ID={}", job.id),
        run: format!("RUNWAY_RUN={}", job.runs),
        attempt: format!("RUNWAY_ATTEMPT={}", job.attempt),
        stored_group: job.pid,
    };
    kill_groups(|pid| markers.group_if_ours(pid))
}

/// Kills the process group that `group_of` names for each live process (`None`: not one to
/// end), looking again until none is left, since a member may fork while its group is being
/// ended. Says how many groups were ended.
fn kill_groups(group_of: impl Fn(u32) -> Option<u32>) -> usize {
    let mut found = 0;
    for _ in 0..MAX_SWEEPS {
        let groups: BTreeSet<u32> = processes().filter_map(&group_of).collect();
        if groups.is_empty() {
            break;
        }
        found += groups.len();
        for group in groups {
            let _ = killpg(Pid::from_raw(group as i32), Signal::SIGKILL);
        }
    }
    found
}

/// Ends every process a previous life of this server left running: those carrying its
/// `RUNWAY_DATA_DIR`, which only it uses (the directory is locked), with their groups. For a
/// server sharing its store, whose killed attempts other servers may have rescued and run
/// again meanwhile: their jobs no longer say which processes were its. Says how many groups
/// were ended.
pub fn end_every_orphan(data_dir: &str) -> usize {
    let marker = format!("RUNWAY_DATA_DIR={data_dir}");
    kill_groups(|pid| {
        let ours = pid != std::process::id()
            && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|variable| variable == marker.as_bytes())
            });
        if ours { process_group(pid) } else { None }
    })
}

/// How often the processes are looked at again for members forked meanwhile.
const MAX_SWEEPS: usize = 10;

/// What an attempt's processes carry in their environment.
struct Markers {
    data_dir: String,
    job: String,
    run: String,
    attempt: String,
    /// The group the attempt's command led, as stored (if it was).
    stored_group: Option<u32>,
}

impl Markers {
    /// The process group of `pid` if the process is one of the attempt's.
    fn group_if_ours(&self, pid: u32) -> Option<u32> {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let variables: Vec<&[u8]> = environ.split(|byte| *byte == 0).collect();
        let has = |marker: &str| variables.contains(&marker.as_bytes());
        if !has(&self.job) {
            return None;
        }
        let group = process_group(pid)?;
        let current = variables
            .iter()
            .any(|variable| variable.starts_with(b"RUNWAY_DATA_DIR="));
        let ours = if current {
            has(&self.data_dir) && has(&self.run)
        } else {
            has(&self.attempt) && self.stored_group == Some(group)
        };
        ours.then_some(group)
    }
}

/// Every live process's id.
fn processes() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
}

/// The process group of `pid`, from `/proc/PID/stat`: the fields after the command name, which
/// ends at the last `)`, are state, parent and group. None for a zombie.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_of_this_process_is_read_from_proc() {
        let own = std::process::id();
        let group = nix::unistd::getpgrp().as_raw() as u32;
        assert_eq!(process_group(own), Some(group));
        assert!(processes().any(|pid| pid == own));
    }

    #[test]
    fn a_process_without_the_markers_is_not_ours() {
        let markers = Markers {
            data_dir: "RUNWAY_DATA_DIR=/nowhere".into(),
            job: "RUNWAY_JOB_ID=999999999".into(),
            run: "RUNWAY_RUN=1".into(),
            attempt: "RUNWAY_ATTEMPT=1".into(),
            stored_group: Some(std::process::id()),
        };
        assert_eq!(markers.group_if_ours(std::process::id()), None);
    }
}
