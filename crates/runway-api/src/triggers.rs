//! Triggers on the wire: `GET /v1/triggers`, a trigger's controls, and the answer to a webhook
//! delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::JobResponse;

/// What starts a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// Changes of files under a directory.
    Watch,
    /// A cron expression.
    Schedule,
    /// A signed `POST /hooks/{path}`.
    Webhook,
}

/// Where a trigger stands. Schedules and webhooks stay `idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TriggerState {
    Idle,
    /// Changes are gathering; the run starts at `next_fire_at` unless another change comes.
    Waiting,
    /// Its job runs; a change now stokes one more run.
    Running,
    /// Its job ended; the next run waits until `next_fire_at`.
    Cooldown,
}

/// What a schedule does about fires missed while the server was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedFires {
    RunOnce,
    Skip,
}

/// How a webhook delivery proves it knows the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookSignature {
    /// `X-Hub-Signature-256: sha256=HEX` over the body.
    HmacSha256,
    /// `Authorization: Bearer SECRET`.
    Bearer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WatchDetails {
    pub root: String,
    pub patterns: Vec<String>,
    pub ignore: Vec<String>,
    pub debounce_ms: u64,
    pub cooldown_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleDetails {
    pub cron: String,
    pub timezone: String,
    pub missed: MissedFires,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDetails {
    /// Where deliveries go: `/hooks/NAME`.
    pub url_path: String,
    pub signature: WebhookSignature,
    /// The JSON pointer of the body's part that becomes the input; empty for the whole body.
    pub input_pointer: String,
}

/// Paths shown of the changes a watch trigger gathered.
pub const PENDING_PATHS_SHOWN: usize = 100;

/// One trigger as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TriggerResponse {
    pub name: String,
    pub kind: TriggerKind,
    /// The job type it submits.
    #[serde(rename = "type")]
    pub job_type: String,
    pub paused: bool,
    pub state: TriggerState,
    /// A change came while its job ran or cooled down: exactly one more run follows.
    pub stoked: bool,
    /// The first paths (at most 100) of the changes gathered for the next run.
    pub pending_paths: Vec<String>,
    /// How many paths the next run lists.
    pub pending_count: u64,
    /// The next run is a full rebuild (`"paths": null`): the OS dropped events, too many paths
    /// changed, or someone fired the trigger.
    pub pending_everything: bool,
    pub last_change_at: Option<DateTime<Utc>>,
    /// When it submits next unless something else happens first.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The job a watch trigger waits for.
    pub running_job: Option<String>,
    pub last_fire_at: Option<DateTime<Utc>>,
    pub last_job: Option<String>,
    /// Why the trigger cannot do its work now, until it can.
    pub problem: Option<String>,
    /// Grows with every change; keep the view with the highest.
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookDetails>,
    /// Its newest jobs, newest first (`GET /v1/triggers/{name}` only).
    #[serde(default)]
    pub recent_jobs: Vec<JobResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TriggerListResponse {
    pub triggers: Vec<TriggerResponse>,
}

/// `POST /v1/triggers/{name}/fire`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FireResponse {
    /// The job submitted; absent when a watch trigger runs or cools down and one more run
    /// follows.
    pub job: Option<String>,
    pub trigger: TriggerResponse,
}

/// `POST /hooks/{path}`: 202 with the job the delivery submitted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookResponse {
    pub job: String,
    /// False when the delivery id was seen before: `job` is the first delivery's job.
    pub created: bool,
}
