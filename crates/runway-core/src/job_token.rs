//! Job tokens: what a running command gets in `RUNWAY_TOKEN` to call the API about its own
//! job. A token names the job and the attempt and carries an HMAC-SHA256 of both and of the
//! attempt's worker under a key kept in the data directory; nothing is stored per token. It
//! is valid only while that attempt runs, so it stops working when the attempt ends, and it
//! may act only on its job and the job's subtree (the server checks the scope).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::job::{Job, JobId, JobStatus};

/// What every job token starts with; user tokens start with `rwy_`.
pub const JOB_TOKEN_PREFIX: &str = "rwj_";
/// The key's file in the data directory.
const KEY_FILE: &str = "job-token.key";

/// Issues and checks job tokens.
#[derive(Clone)]
pub struct JobTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for JobTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobTokens { .. }")
    }
}

/// A job token taken apart: which attempt of which job it claims to be from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTokenClaim {
    pub job: JobId,
    pub attempt: u32,
    mac: Vec<u8>,
}

impl JobTokens {
    /// Reads the key from the data directory, or makes one (readable by the server's user
    /// only) at the first start.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<JobTokens> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(JobTokens { key });
            }
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a job token key (32 bytes); delete it and runway makes a new one",
                    path.display()
                )));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(&key)?;
        file.sync_all()?;
        Ok(JobTokens { key })
    }

    /// The token of the running attempt of `job` (its attempt and worker as claimed).
    pub fn issue(&self, job: JobId, attempt: u32, worker: &str) -> String {
        let mac: String = self
            .mac(job, attempt, worker)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{JOB_TOKEN_PREFIX}{job}_{attempt}_{mac}")
    }

    /// Whether `claim` was issued for the attempt `job` is running now.
    pub fn verify(&self, claim: &JobTokenClaim, job: &Job) -> bool {
        let Some(worker) = job.worker.as_deref() else {
            return false;
        };
        if job.id != claim.job || job.status != JobStatus::Running || job.attempt != claim.attempt {
            return false;
        }
        self.mac(job.id, job.attempt, worker)
            .ct_eq(&claim.mac)
            .into()
    }

    fn mac(&self, job: JobId, attempt: u32, worker: &str) -> Vec<u8> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any size");
        mac.update(format!("runway job token v1\0{job}\0{attempt}\0{worker}").as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl JobTokenClaim {
    /// Takes a token apart; `None` when it is not shaped like a job token.
    pub fn parse(token: &str) -> Option<JobTokenClaim> {
        let mut parts = token.strip_prefix(JOB_TOKEN_PREFIX)?.split('_');
        let job = parts.next()?.parse::<JobId>().ok()?;
        let attempt = parts.next()?.parse::<u32>().ok()?;
        let hex = parts.next()?;
        if parts.next().is_some() || hex.len() != 64 {
            return None;
        }
        let mac = (0..32)
            .map(|index| u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(JobTokenClaim { job, attempt, mac })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::NewJob;

    fn running(attempt: u32, worker: &str) -> Job {
        let mut job = NewJob::new("a", "q", serde_json::json!({}), chrono::Utc::now())
            .inserted(JobId(5), chrono::Utc::now())
            .0;
        job.status = JobStatus::Running;
        job.attempt = attempt;
        job.worker = Some(worker.into());
        job
    }

    #[test]
    fn a_token_holds_for_its_running_attempt_only() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = JobTokens::load_or_create(dir.path()).unwrap();
        let token = tokens.issue(JobId(5), 2, "w1");
        let claim = JobTokenClaim::parse(&token).unwrap();
        assert_eq!((claim.job, claim.attempt), (JobId(5), 2));
        assert!(tokens.verify(&claim, &running(2, "w1")));
        assert!(!tokens.verify(&claim, &running(3, "w1")), "a later attempt");
        assert!(!tokens.verify(&claim, &running(2, "w2")), "another worker");
        let mut ended = running(2, "w1");
        ended.status = JobStatus::Succeeded;
        assert!(!tokens.verify(&claim, &ended), "the attempt ended");
        let again = JobTokens::load_or_create(dir.path()).unwrap();
        assert!(again.verify(&claim, &running(2, "w1")), "the key is kept");
        let other = JobTokens::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(
            !other.verify(&claim, &running(2, "w1")),
            "another server's key"
        );
    }

    #[test]
    fn malformed_tokens_are_not_claims() {
        for text in [
            "rwy_abc",
            "rwj_5_2",
            "rwj_5_2_zz",
            "rwj_x_2_00000000000000000000000000000000000000000000000000000000000000",
            "rwj_5_2_0000000000000000000000000000000000000000000000000000000000000g",
        ] {
            assert_eq!(JobTokenClaim::parse(text), None, "{text}");
        }
    }
}
