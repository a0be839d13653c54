//! Running a finished job again. A job is retried as a new job (`retry_of` names the old one:
//! terminal is final). A tree is retried as a new tree that runs again only what did not
//! succeed: succeeded children are carried over (made already `succeeded`, with their output
//! and key), so re-rendering one bad paragraph does not cost forty good ones.

use crate::error::Error;
use crate::job::{Job, JobStatus, NewJob, Phase};

/// A finished job with the children a retry needs to see.
#[derive(Debug, Clone)]
pub struct FinishedTree {
    pub job: Job,
    pub children: Vec<FinishedTree>,
}

/// Whether a retry of `job` needs its children: it had some.
pub fn needs_children(job: &Job) -> bool {
    job.children.total > 0
}

/// The new tree that runs `old` again. `fresh` makes the new job for one old job as a submit
/// would (its type may have changed or gone since).
///
/// - A job whose first run had ended (phase `join`: it waited, or was made with children)
///   does not run it again: its succeeded children are carried over, the others are retried
///   (each a tree of its own), and it waits for them, or joins at once when all are carried.
/// - A job whose first run did not end runs it again, with its succeeded children carried
///   over: spawning their keys again returns them, and the others are spawned anew.
pub fn plan(
    old: &FinishedTree,
    fresh: &impl Fn(&Job) -> Result<NewJob, Error>,
) -> Result<NewJob, Error> {
    let mut new = fresh(&old.job)?;
    new.retry_of = Some(old.job.id);
    new.key = old.job.key.clone();
    if old.children.is_empty() {
        return Ok(new);
    }
    let first_run_ended = old.job.phase == Phase::Join;
    let mut children = Vec::with_capacity(old.children.len());
    for child in &old.children {
        if child.job.status == JobStatus::Succeeded {
            children.push(carried(&child.job));
        } else if first_run_ended {
            children.push(plan(child, fresh)?);
        }
    }
    new.children = children;
    if first_run_ended {
        new.phase = Phase::Join;
        let counts = new.child_counts();
        new.status = if counts.unfinished > 0 {
            JobStatus::Waiting
        } else if new.tree.join {
            JobStatus::Queued
        } else {
            // Every child carried over and nothing to join: it ends as its children did.
            JobStatus::Succeeded
        };
    }
    Ok(new)
}

/// A succeeded child as a retried tree keeps it: made `succeeded`, with its output and key;
/// it does not run again.
fn carried(old: &Job) -> NewJob {
    NewJob {
        priority: old.priority,
        max_attempts: old.max_attempts,
        status: JobStatus::Succeeded,
        retry_of: Some(old.id),
        key: old.key.clone(),
        phase: old.phase,
        tree: old.tree,
        output: old.output.clone(),
        ..NewJob::new(&old.job_type, &old.queue, old.input.clone(), old.run_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobId, TreePolicy};
    use serde_json::json;

    fn old(id: i64, status: JobStatus, phase: Phase, children: Vec<FinishedTree>) -> FinishedTree {
        let now = chrono::Utc::now();
        let mut job = NewJob {
            tree: TreePolicy {
                join: true,
                ..TreePolicy::default()
            },
            ..NewJob::new("tts", "gpu", json!({"n": id}), now)
        }
        .inserted(JobId(id), now)
        .0;
        job.status = status;
        job.phase = phase;
        job.key = Some(format!("k{id}"));
        job.output = (status == JobStatus::Succeeded).then(|| json!({"done": id}));
        job.children.total = children.len() as u32;
        FinishedTree { job, children }
    }

    fn fresh(job: &Job) -> Result<NewJob, Error> {
        Ok(NewJob {
            tree: job.tree,
            ..NewJob::new(&job.job_type, &job.queue, job.input.clone(), job.run_at)
        })
    }

    #[test]
    fn a_tree_whose_first_run_ended_reruns_only_what_failed_and_waits() {
        let tree = old(
            1,
            JobStatus::Failed,
            Phase::Join,
            vec![
                old(2, JobStatus::Succeeded, Phase::Run, vec![]),
                old(3, JobStatus::Failed, Phase::Run, vec![]),
                old(4, JobStatus::Cancelled, Phase::Run, vec![]),
            ],
        );
        let new = plan(&tree, &fresh).unwrap();
        assert_eq!((new.status, new.phase), (JobStatus::Waiting, Phase::Join));
        assert_eq!(new.retry_of, Some(JobId(1)));
        let statuses: Vec<JobStatus> = new.children.iter().map(|child| child.status).collect();
        assert_eq!(
            statuses,
            vec![JobStatus::Succeeded, JobStatus::Queued, JobStatus::Queued]
        );
        assert_eq!(new.children[0].output, Some(json!({"done": 2})));
        assert_eq!(new.children[1].retry_of, Some(JobId(3)));
        assert_eq!(new.children[1].key.as_deref(), Some("k3"), "keys are kept");
        let counts = new.child_counts();
        assert_eq!(
            (counts.total, counts.unfinished, counts.succeeded),
            (3, 2, 1)
        );
    }

    #[test]
    fn a_failed_join_runs_again_at_once_with_every_child_carried() {
        let tree = old(
            1,
            JobStatus::Failed,
            Phase::Join,
            vec![old(2, JobStatus::Succeeded, Phase::Run, vec![])],
        );
        let new = plan(&tree, &fresh).unwrap();
        assert_eq!((new.status, new.phase), (JobStatus::Queued, Phase::Join));
    }

    #[test]
    fn a_tree_whose_first_run_failed_runs_it_again_keeping_what_succeeded() {
        let tree = old(
            1,
            JobStatus::Failed,
            Phase::Run,
            vec![
                old(2, JobStatus::Succeeded, Phase::Run, vec![]),
                old(3, JobStatus::Cancelled, Phase::Run, vec![]),
            ],
        );
        let new = plan(&tree, &fresh).unwrap();
        assert_eq!((new.status, new.phase), (JobStatus::Queued, Phase::Run));
        assert_eq!(new.children.len(), 1, "the first run spawns the rest again");
        assert_eq!(new.children[0].key.as_deref(), Some("k2"));
    }

    #[test]
    fn a_failed_subtree_is_retried_as_a_tree() {
        let tree = old(
            1,
            JobStatus::Failed,
            Phase::Join,
            vec![old(
                2,
                JobStatus::Failed,
                Phase::Join,
                vec![
                    old(3, JobStatus::Succeeded, Phase::Run, vec![]),
                    old(4, JobStatus::Failed, Phase::Run, vec![]),
                ],
            )],
        );
        let new = plan(&tree, &fresh).unwrap();
        let branch = &new.children[0];
        assert_eq!(branch.status, JobStatus::Waiting);
        assert_eq!(branch.children.len(), 2);
        assert_eq!(branch.children[0].status, JobStatus::Succeeded);
        assert_eq!(branch.children[1].status, JobStatus::Queued);
    }
}
