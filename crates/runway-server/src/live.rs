//! The live job feed `/v1/jobs/updates`: a WebSocket that sends one message per committed job
//! change (and, with `logs=true`, log text as it is written), filtered by the query.
//!
//! With `since=SEQ` the feed first replays stored changes after SEQ, then continues live with
//! no gap and no duplicate: it subscribes to the bus before reading the store and skips every
//! live change whose seq it already sent. A client that falls behind the bus catches up from
//! the store the same way; one whose socket stays blocked is closed with a reason, and can
//! reconnect with `since`. No task but this connection's writes to its socket.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::SinkExt;
use runway_api::{FeedMessage, LogUpdate, ResyncUpdate, codes};
use runway_core::bus::{Change, JobChange};
use runway_core::store::{JobListParams, JobSearch, TreeFilter};
use runway_core::{Job, JobId, JobStatus};
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::convert::job_update;
use crate::error::ApiError;
use crate::{ServerState, params};

/// Stored changes read per query while catching up.
const REPLAY_PAGE: u32 = 1000;
/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message accepted from a client; the feed expects none but control frames.
const MAX_CLIENT_MESSAGE: usize = 4096;
/// Most bytes queued for one client before it counts as too slow.
const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UpdatesQuery {
    /// Only this job.
    job: Option<String>,
    /// Only children of this job.
    parent: Option<String>,
    /// Comma-separated job types.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    job_type: Option<String>,
    /// Comma-separated queues.
    queue: Option<String>,
    /// Comma-separated statuses (the status after the change).
    status: Option<String>,
    /// Search text: the job id, or part of its type or input (as `GET /v1/jobs`).
    q: Option<String>,
    /// Replay stored changes after this seq first.
    since: Option<i64>,
    /// Also send log text as it is written (`log` messages).
    logs: Option<bool>,
}

/// Which changes a client wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub job: Option<JobId>,
    /// Roots only, or the children of one job.
    pub tree: TreeFilter,
    pub job_types: Vec<String>,
    pub queues: Vec<String>,
    pub statuses: Vec<JobStatus>,
    pub search: Option<JobSearch>,
}

impl Filter {
    pub fn matches(&self, job: &Job) -> bool {
        self.job.is_none_or(|id| id == job.id)
            && self.tree.matches(job)
            && (self.job_types.is_empty() || self.job_types.contains(&job.job_type))
            && (self.queues.is_empty() || self.queues.contains(&job.queue))
            && (self.statuses.is_empty() || self.statuses.contains(&job.status))
            && self
                .search
                .as_ref()
                .is_none_or(|search| search.matches(job))
    }
}

fn parse_id(field: &str, text: Option<&str>) -> Result<Option<JobId>, ApiError> {
    text.map(|text| {
        text.parse::<JobId>()
            .map_err(|message| ApiError::bad_request(format!("`{field}`: {message}")))
    })
    .transpose()
}

/// Checks the `Origin` of a browser's upgrade or cookie change: this server's own origin
/// (`http://` and a `Host` this server answers to, see `host`) or a configured origin, scheme
/// included. Programs that send no `Origin` (the CLI) are fine: they authenticate with the
/// bearer token.
pub fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = crate::host::request_host(headers).unwrap_or_default();
    // The server speaks plain HTTP itself; an https origin comes through a proxy and must be
    // listed.
    let same_origin = crate::host::is_known_host(host, allowed)
        && !host.is_empty()
        && origin == format!("http://{host}");
    if same_origin || allowed.iter().any(|allowed| allowed == origin) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN_ORIGIN,
            format!(
                "origin `{origin}` may not open this WebSocket; add it to server.allowed_origins"
            ),
        ))
    }
}

/// Live job changes over a WebSocket; see the module documentation.
#[utoipa::path(get, path = "/v1/jobs/updates", tag = "live", security(("bearer" = [])),
    params(UpdatesQuery),
    responses(
        (status = 101, description = "switching to the WebSocket feed of FeedMessage"),
        (status = 400, body = runway_api::ErrorResponse),
        (status = 401, body = runway_api::ErrorResponse),
        (status = 403, description = "foreign Origin", body = runway_api::ErrorResponse),
        (status = 503, description = "the server holds its limit of WebSockets", body = runway_api::ErrorResponse),
    ))]
pub async fn job_updates(
    State(state): State<ServerState>,
    headers: HeaderMap,
    query: Result<Query<UpdatesQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = params::websocket(upgrade)?;
    check_origin(&headers, &state.app.config().server.allowed_origins)?;
    let query = params::query(query)?;
    let statuses = params::statuses(query.status.as_deref())?;
    let filter = Filter {
        job: parse_id("job", query.job.as_deref())?,
        tree: match parse_id("parent", query.parent.as_deref())? {
            Some(parent) => TreeFilter::ChildrenOf(parent),
            None => TreeFilter::All,
        },
        job_types: params::comma_list(query.job_type.as_deref()),
        queues: params::comma_list(query.queue.as_deref()),
        statuses,
        search: params::search("q", query.q.as_deref())?,
    };
    if let Some(since) = query.since
        && since < 0
    {
        return Err(ApiError::bad_request(format!(
            "`since` is {since}; use a seq this server sent, or 0"
        )));
    }
    let logs = query.logs.unwrap_or(false);
    // Everything the feed starts from is fixed before the client hears 101: a client that
    // reads the store after the upgrade (as `runway follow` does) misses nothing committed
    // after it.
    let changes = state.app.store().subscribe();
    let newest = state
        .app
        .store()
        .event_last_seq()
        .await
        .map_err(ApiError::from)?;
    let log_jobs = if logs {
        Some(running_jobs(&state, &filter).await?)
    } else {
        None
    };
    let start = FeedStart {
        changes,
        newest,
        since: query.since,
        log_jobs,
    };
    let slot = state.websocket_slot()?;
    Ok(
        small_buffers(upgrade, MAX_CLIENT_MESSAGE).on_upgrade(move |socket| async move {
            feed(socket, state, filter, start).await;
            drop(slot);
        }),
    )
}

/// Where a feed begins, read before the upgrade is answered.
struct FeedStart {
    changes: tokio::sync::broadcast::Receiver<runway_core::bus::Changes>,
    /// The newest seq when the feed opened: live changes after it are sent.
    newest: i64,
    since: Option<i64>,
    /// With `logs`, the unfinished jobs the filter covers, whose log text the feed sends.
    log_jobs: Option<HashSet<JobId>>,
}

/// The running jobs a filter covers (for their log text).
async fn running_jobs(state: &ServerState, filter: &Filter) -> Result<HashSet<JobId>, ApiError> {
    let running = JobListParams {
        statuses: vec![JobStatus::Running],
        limit: 10_000,
        ..JobListParams::default()
    };
    let jobs = state.app.jobs(running).await?;
    Ok(jobs
        .iter()
        .filter(|job| filter.matches(job))
        .map(|job| job.id)
        .collect())
}

/// Keeps the set of jobs whose log text a feed sends in step with a job change it covers.
fn track_log_jobs(log_jobs: Option<&mut HashSet<JobId>>, job: &Job) {
    if let Some(jobs) = log_jobs {
        if job.status.is_terminal() {
            jobs.remove(&job.id);
        } else {
            jobs.insert(job.id);
        }
    }
}

/// Per-connection buffers sized for thousands of mostly idle clients: a few KiB each, and a
/// bound on what may queue up for one slow client. A client's frames and messages are capped at
/// `max_message` before anything is set aside for them.
pub fn small_buffers(upgrade: WebSocketUpgrade, max_message: usize) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(MAX_QUEUED_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message)
}

enum Ended {
    ClientLeft,
    TooSlow,
    ServerGone,
    /// The client sent a frame the feed refuses (over the size limit, or broken).
    BadFrame(String),
}

async fn send(socket: &mut WebSocket, message: &FeedMessage) -> Result<(), Ended> {
    let text = serde_json::to_string(message).expect("feed messages serialize");
    send_text(socket, text).await
}

/// A job change as the feed sends it, encoded once for every feed that sends it.
fn encoded(change: &JobChange) -> String {
    change
        .encoded
        .get_or_init(|| {
            let message = FeedMessage::Job(Box::new(job_update(change)));
            Arc::from(serde_json::to_string(&message).expect("feed messages serialize"))
        })
        .to_string()
}

/// Queues one change for the client (written at the next flush) if the feed covers it.
async fn queue(
    socket: &mut WebSocket,
    change: &Change,
    filter: &Filter,
    logs: Option<&mut HashSet<JobId>>,
    last_seq: &mut i64,
) -> Result<(), Ended> {
    let text = match change {
        Change::Job(change) => {
            if change.seq <= *last_seq {
                return Ok(());
            }
            *last_seq = change.seq;
            if !filter.matches(&change.job) {
                return Ok(());
            }
            track_log_jobs(logs, &change.job);
            encoded(change)
        }
        Change::Log(log) => {
            // Log text of the jobs the filter covers: those whose changes this feed sends.
            let covered = match (&logs, filter.job) {
                (None, _) => false,
                (Some(_), Some(id)) => id == log.job_id,
                (Some(jobs), None) => jobs.contains(&log.job_id),
            };
            if !covered {
                return Ok(());
            }
            let update = LogUpdate {
                job_id: log.job_id.to_string(),
                offset: log.offset,
                data: log.data.to_string(),
            };
            serde_json::to_string(&FeedMessage::Log(update)).expect("feed messages serialize")
        }
    };
    within_send_timeout(socket.feed(Message::Text(text.into()))).await
}

/// A write to the client: a closed socket means it left; a write still blocked after
/// `SEND_TIMEOUT` means it stopped reading.
async fn within_send_timeout(
    write: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), Ended> {
    match tokio::time::timeout(SEND_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ended::ClientLeft),
        Err(_) => Err(Ended::TooSlow),
    }
}

async fn flush(socket: &mut WebSocket) -> Result<(), Ended> {
    within_send_timeout(socket.flush()).await
}

async fn send_text(socket: &mut WebSocket, text: String) -> Result<(), Ended> {
    within_send_timeout(socket.send(Message::Text(text.into()))).await
}

/// Sends the stored changes after `last_seq` that match, advancing `last_seq`. Stored seqs
/// are contiguous except where old events were pruned: a hole before the first one means
/// changes were lost to retention, and the client is told to resync.
async fn replay(
    socket: &mut WebSocket,
    state: &ServerState,
    filter: &Filter,
    last_seq: &mut i64,
    mut log_jobs: Option<&mut HashSet<JobId>>,
) -> Result<(), Ended> {
    let mut first_page = true;
    loop {
        let changes = state
            .app
            .store()
            .job_changes_since(*last_seq, REPLAY_PAGE)
            .await
            .map_err(|error| {
                tracing::error!(%error, "cannot read stored changes for a live feed");
                Ended::ServerGone
            })?;
        let Some(last) = changes.last() else {
            return Ok(());
        };
        if first_page && changes[0].seq != *last_seq + 1 {
            let resync = ResyncUpdate {
                seq: *last_seq,
                reason: format!(
                    "changes after seq {} are no longer kept; reload, then follow the feed",
                    *last_seq
                ),
            };
            send(socket, &FeedMessage::Resync(resync)).await?;
        }
        first_page = false;
        let page_end = last.seq;
        for change in &changes {
            if filter.matches(&change.job) {
                track_log_jobs(log_jobs.as_deref_mut(), &change.job);
                send(socket, &FeedMessage::Job(Box::new(job_update(change)))).await?;
            }
        }
        *last_seq = page_end;
        if (changes.len() as u32) < REPLAY_PAGE {
            return Ok(());
        }
    }
}

async fn feed(mut socket: WebSocket, state: ServerState, filter: Filter, start: FeedStart) {
    let FeedStart {
        mut changes,
        newest,
        since,
        mut log_jobs,
    } = start;
    let shutdown = state.shutdown.clone();
    let ended: Result<(), Ended> = async {
        let mut last_seq = match since {
            Some(since) if since > newest => {
                let resync = ResyncUpdate {
                    seq: since,
                    reason: format!("seq {since} is newer than this server's newest ({newest}); reload, then follow the feed"),
                };
                send(&mut socket, &FeedMessage::Resync(resync)).await?;
                newest
            }
            Some(since) => {
                let mut last_seq = since;
                replay(&mut socket, &state, &filter, &mut last_seq, log_jobs.as_mut()).await?;
                last_seq
            }
            None => newest,
        };
        loop {
            tokio::select! {
                burst = changes.recv() => {
                    // Queue this burst and every one already waiting, then write them with one
                    // flush: under load, one write per burst instead of one per change.
                    let mut next = Some(burst);
                    while let Some(burst) = next.take() {
                        match burst {
                            Ok(burst) => {
                                for change in burst.iter() {
                                    queue(&mut socket, change, &filter, log_jobs.as_mut(), &mut last_seq).await?;
                                }
                            }
                            Err(RecvError::Lagged(_)) => {
                                flush(&mut socket).await?;
                                // Fell behind the bus: the store has every change since `last_seq`.
                                replay(&mut socket, &state, &filter, &mut last_seq, log_jobs.as_mut()).await?;
                            }
                            Err(RecvError::Closed) => return Err(Ended::ServerGone),
                        }
                        next = match changes.try_recv() {
                            Ok(burst) => Some(Ok(burst)),
                            Err(TryRecvError::Lagged(skipped)) => Some(Err(RecvError::Lagged(skipped))),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        };
                    }
                    flush(&mut socket).await?;
                }
                () = shutdown.cancelled() => return Err(Ended::ServerGone),
                message = socket.recv() => match message {
                    None | Some(Ok(Message::Close(_))) => return Err(Ended::ClientLeft),
                    Some(Err(error)) => return Err(Ended::BadFrame(format!("bad frame: {error}"))),
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    .await;
    let (code, reason) = match ended {
        Err(Ended::ClientLeft) | Ok(()) => return,
        Err(Ended::TooSlow) => (
            close_code::POLICY,
            "client too slow; reconnect with since=<last seq>".to_string(),
        ),
        Err(Ended::ServerGone) => (close_code::AWAY, "server shutting down".to_string()),
        Err(Ended::BadFrame(reason)) => (close_code::POLICY, reason),
    };
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: crate::session::fit_close_reason(reason).into(),
        })))
        .await;
}
