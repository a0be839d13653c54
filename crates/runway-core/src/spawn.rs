//! Children spawned by a running attempt: from a command's `::runway {"spawn": …}` line, from
//! `POST /v1/jobs/{id}/children` with the attempt's job token, or from a handler. All three
//! go through [`Spawner::spawn`], so a child is validated like any submitted job and the
//! parent's keys, limits and status are checked in one place.

use std::sync::Arc;

use crate::app::SubmitParams;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::store::{AttemptRef, Inserted, Spawn, Store};
use crate::submission;
use crate::users::{Owner, owner_access};

/// Spawns children under one running attempt.
#[derive(Clone)]
pub struct Spawner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Arc<Config>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) attempt: AttemptRef,
    /// The parent's depth in its tree, which never changes.
    pub(crate) depth: u32,
    /// The parent's owner: its children are the owner's, and only an admin's tree may spawn the
    /// types only admins run, whoever asks (a command, its job token, a handler).
    pub(crate) owner: Option<Owner>,
}

impl Spawner {
    /// Validates every child (and its own children), then creates them all under the attempt's
    /// job in one transaction, or none. A child whose key a sibling already holds with the same
    /// type and input comes back with `created: false`.
    pub async fn spawn(&self, requests: Vec<SubmitParams>) -> Result<Vec<Inserted>, Error> {
        let config = &self.config;
        let now = self.clock.now();
        let access = owner_access(self.store.as_ref(), self.owner.as_ref()).await?;
        submission::check_types(config, access, &requests)?;
        let children = submission::validate_children(config, requests, now, self.depth)?;
        let spawned = self
            .store
            .job_spawn(
                self.attempt.clone(),
                children,
                config.server.max_children,
                now,
            )
            .await?;
        match spawned {
            Spawn::Done(inserted) => Ok(inserted),
            Spawn::Refused(message) => Err(Error::Conflict { message }),
            Spawn::KeyConflict { index, existing } => Err(Error::InChild {
                index,
                error: Box::new(Error::Conflict {
                    message: format!(
                        "the key is held by sibling job {existing}, spawned with another type or input; use a new key"
                    ),
                }),
            }),
        }
    }
}
