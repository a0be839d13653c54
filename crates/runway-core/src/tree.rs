//! Applies a transition and all it sets off in the job's tree, inside one transaction of a
//! store. A child's end may finish, join or fail its parent, which may in turn end its own
//! parent; a parent that fails or is cancelled cancels its unfinished children, and theirs.
//! Which of that happens is [`decide`]'s answer each time; this loop only follows the effects,
//! so every backend cascades the same way by offering three primitives ([`TreeTx`]).

use std::collections::VecDeque;

use crate::clock::Timestamp;
use crate::job::{IllegalTransition, Job, JobId};
use crate::transition::{Effect, JobCommand, Transition, decide};

/// What a store offers the tree inside one of its transactions.
pub trait TreeTx {
    type Error: From<IllegalTransition>;

    fn job(&mut self, id: JobId) -> Result<Option<Job>, Self::Error>;

    /// The children of `parent` that have not finished.
    fn unfinished_children(&mut self, parent: JobId) -> Result<Vec<Job>, Self::Error>;

    /// Stores `transition` and its event, guarded by the job as it was read (`before`): the
    /// same status, attempt and worker. False when the guard no longer held.
    fn persist(
        &mut self,
        before: &Job,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<bool, Self::Error>;
}

/// Decides `command` for `job`, persists it and every effect it has on the tree. The job as
/// stored afterwards, or `None` when nothing changed (see [`decide`]) or the guard failed.
pub fn apply<T: TreeTx>(
    tx: &mut T,
    job: &Job,
    command: JobCommand,
    now: Timestamp,
) -> Result<Option<Job>, T::Error> {
    let Some(transition) = decide(job, command, now)? else {
        return Ok(None);
    };
    if !tx.persist(job, &transition, now)? {
        return Ok(None);
    }
    follow(tx, transition.effects, now)?;
    Ok(Some(transition.job))
}

/// Persists a decision made outside [`decide`] (a spawn's adoption) with its effects.
pub fn persist<T: TreeTx>(
    tx: &mut T,
    before: &Job,
    transition: Transition,
    now: Timestamp,
) -> Result<Option<Job>, T::Error> {
    if !tx.persist(before, &transition, now)? {
        return Ok(None);
    }
    follow(tx, transition.effects, now)?;
    Ok(Some(transition.job))
}

fn follow<T: TreeTx>(tx: &mut T, effects: Vec<Effect>, now: Timestamp) -> Result<(), T::Error> {
    let mut pending: VecDeque<Effect> = effects.into();
    while let Some(effect) = pending.pop_front() {
        let targets = match effect {
            Effect::ChildEnded { parent, child } => match tx.job(parent)? {
                Some(parent) => vec![(parent, JobCommand::ChildEnded(child))],
                None => Vec::new(),
            },
            Effect::CancelChildren { parent, reason } => tx
                .unfinished_children(parent)?
                .into_iter()
                .map(|child| {
                    let cancel = JobCommand::CancelInTree {
                        reason: reason.clone(),
                    };
                    (child, cancel)
                })
                .collect(),
        };
        for (job, command) in targets {
            if let Some(transition) = decide(&job, command, now)?
                && tx.persist(&job, &transition, now)?
            {
                pending.extend(transition.effects);
            }
        }
    }
    Ok(())
}
