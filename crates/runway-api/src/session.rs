//! Messages of the session WebSocket `/v1/session`: JSON objects with a `tag` naming what they
//! are. See docs/protocol.md for the whole protocol with examples.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Frame, SubmitJobRequest};

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message. `token` authenticates a client that could not send the `Authorization`
    /// header (a browser).
    Hello {
        #[serde(default)]
        token: Option<String>,
    },
    /// Keep `key` of the client's state up to date: a job list (`jobs`), one job (`job`,
    /// with its log when `log` is true) or the triggers (`triggers`). `since`, for a job list the client still holds after
    /// a reconnect: the `seq` its copy is at, to get only what changed after it (a coalesced
    /// frame of each job's latest change). A list covers every job its query matches, older
    /// pages included.
    Subscribe {
        key: String,
        #[serde(default)]
        jobs: Option<JobQuery>,
        #[serde(default)]
        job: Option<String>,
        #[serde(default)]
        log: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
        /// Keep `key` set to the server's triggers: an `assign` of every trigger
        /// (`{"triggers": [...]}`), then a `trigger` message with each change of one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        triggers: bool,
    },
    Unsubscribe {
        key: String,
    },
    Submit {
        id: String,
        job: SubmitJobRequest,
    },
    Cancel {
        id: String,
        job_id: String,
    },
    Retry {
        id: String,
        job_id: String,
    },
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// The next page of the job list `key`: jobs after `before` (the `next_cursor` of the
    /// page before). Answered by `reply` with `{"jobs", "next_cursor"}`; from then on the list
    /// covers those jobs too.
    More {
        id: String,
        key: String,
        before: String,
    },
}

/// A job list subscription, with the filters and order of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    #[serde(default)]
    pub status: Vec<String>,
    #[serde(default, rename = "type")]
    pub job_type: Vec<String>,
    #[serde(default)]
    pub queue: Vec<String>,
    /// Search text, as `q` of `GET /v1/jobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only the children of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Only jobs without a parent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub roots: bool,
    /// Only jobs created at or after this instant (RFC 3339); `created_before`,
    /// `finished_after`, `finished_before` likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<crate::JobSortField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<crate::SortOrder>,
    /// 1..=1000, default 50.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to `hello`: the newest `seq` committed when the session began, and who the
    /// session speaks for.
    Welcome {
        seq: i64,
        version: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<crate::users::UserResponse>,
    },
    /// Sets `key` of the client's state: the result of its query, as of `seq` (the position
    /// to resume from with `subscribe`'s `since`).
    Assign { key: String, seq: i64, value: Value },
    /// The changes of `key`'s subscription in a range of seqs (see [`Frame`]); for a job
    /// subscribed with `log`, also its log text.
    Frame {
        key: String,
        #[serde(flatten)]
        frame: Frame,
    },
    /// Stored log text of a subscribed job at byte `offset`, sent when the subscription starts.
    Log {
        key: String,
        job_id: String,
        offset: u64,
        data: String,
        /// Where each part of `data` came from (see [`crate::LogMark`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        marks: Vec<crate::LogMark>,
    },
    /// Result of `submit`, `cancel` or `retry`.
    Reply { id: String, value: Value },
    Pong {
        #[serde(default)]
        id: Option<String>,
    },
    /// A message could not be handled: `for_tag` and `id` (or, for a subscription, `key`) say
    /// which one.
    Error {
        #[serde(default)]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default)]
        for_tag: Option<String>,
        code: String,
        message: String,
        /// For `invalid_input`: each violation with its path in the input.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<Vec<crate::ErrorDetail>>,
    },
    /// The client fell too far behind: reload `key` by subscribing to it again.
    Resync { key: String, reason: String },
    /// A trigger of the triggers subscription `key` changed: its whole new view (keep the one
    /// with the highest `revision`).
    Trigger {
        key: String,
        trigger: Box<crate::triggers::TriggerResponse>,
    },
}
