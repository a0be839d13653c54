//! The live job feed `/v1/jobs/updates`: a WebSocket that sends frames of committed job
//! changes (and, with `logs=true`, log text as it is written), filtered by the query. The
//! frames come from the fan-out (`fanout`), shared by every feed with the same query.
//!
//! With `since=SEQ` the feed first sends the stored changes after SEQ (coalesced: each job's
//! latest), then continues live with no gap and no duplicate: it joins the fan-out before
//! reading the store, up to the position it joined at. A client that falls behind catches up
//! from the store the same way; one whose socket stays blocked is closed with a reason, and can
//! reconnect with `since`. No task but this connection's writes to its socket.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::SinkExt;
use runway_api::{FeedMessage, ResyncUpdate, codes};
use runway_core::store::{JobSearch, TreeFilter};
use runway_core::time_range::TimeRange;
use runway_core::triggers::TriggerView;
use runway_core::users::{Access, UserId};
use runway_core::{Job, JobId, JobStatus};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::fanout::{Audience, Frame, Joined, Replay};
use crate::{ServerState, convert, params};

/// A send that takes longer than this means the client stopped reading.
/// Largest message accepted from a client; the feed expects none but control frames.
const MAX_CLIENT_MESSAGE: usize = 4096;
/// Most bytes queued for one client before it counts as too slow.
const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    /// Statuses joined by commas (the status after the change), e.g. `queued,running`.
    #[param(
        pattern = "^(queued|scheduled|running|waiting|succeeded|failed|cancelled)(,(queued|scheduled|running|waiting|succeeded|failed|cancelled))*$"
    )]
    status: Option<String>,
    /// Search text: the job id, or part of its type or input (as `GET /v1/jobs`).
    q: Option<String>,
    /// Replay stored changes after this seq first.
    since: Option<i64>,
    /// Also send log text as it is written (`log` messages).
    logs: Option<bool>,
    /// Also send each change of a trigger (`trigger` messages): its whole view.
    triggers: Option<bool>,
}

/// Which changes a client wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub job: Option<JobId>,
    /// Roots only, or the children of one job.
    pub tree: TreeFilter,
    pub job_types: Vec<String>,
    pub queues: Vec<String>,
    pub statuses: Vec<JobStatus>,
    pub search: Option<JobSearch>,
    /// Only this owner's jobs: a member's feed.
    pub owner: Option<UserId>,
    pub created: TimeRange,
    /// Changes with the status, like it: a job enters the range as it finishes.
    pub finished: TimeRange,
}

impl Filter {
    pub fn matches(&self, job: &Job) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&job.status))
            && self.finished.contains(job.finished_at)
            && self.matches_any_status(job)
    }

    /// Whether the job matches every part of the filter but its status and when it finished.
    pub fn matches_any_status(&self, job: &Job) -> bool {
        self.job.is_none_or(|id| id == job.id)
            && self.created.contains(Some(job.created_at))
            && self
                .owner
                .is_none_or(|owner| job.owner.as_ref().is_some_and(|owned| owned.id == owner))
            && self.tree.matches(job)
            && (self.job_types.is_empty() || self.job_types.contains(&job.job_type))
            && (self.queues.is_empty() || self.queues.contains(&job.queue))
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
        (status = 403, description = "foreign Origin, or `triggers=true` from a member", body = runway_api::ErrorResponse),
        (status = 404, description = "`job` names no job the caller may see", body = runway_api::ErrorResponse),
        (status = 503, description = "the server holds its limit of WebSockets", body = runway_api::ErrorResponse),
    ))]
pub async fn job_updates(
    State(state): State<ServerState>,
    caller: Caller,
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
        owner: caller.access().owner(),
        ..Filter::default()
    };
    // Another user's job is as unknown here as on REST (log text of a named job is sent
    // without asking whose it is).
    if let Some(id) = filter.job {
        state.app.job(caller.access(), id).await?;
    }
    if query.triggers == Some(true) && caller.access() != Access::All {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            "only an admin may follow the triggers (`triggers=true`): their jobs are the server's",
        ));
    }
    if let Some(since) = query.since
        && since < 0
    {
        return Err(ApiError::bad_request(format!(
            "`since` is {since}; use a seq this server sent, or 0"
        )));
    }
    let audience = Audience::Feed {
        filter,
        logs: query.logs.unwrap_or(false),
    };
    let proof = crate::auth::Proof::of(&caller.0, &headers);
    // Everything the feed starts from is fixed before the client hears 101: a client that
    // reads the store after the upgrade (as `runway follow` does) misses nothing committed
    // after it.
    let joined = state.fanout.join(audience.clone());
    let since = query.since;
    let triggers = query
        .triggers
        .unwrap_or(false)
        .then(|| state.app.triggers().subscribe());
    let slot = state.websocket_slot()?;
    Ok(
        small_buffers(upgrade, MAX_CLIENT_MESSAGE).on_upgrade(move |socket| async move {
            let live = state.live.clone();
            // The socket's reactor stays the server's; its work moves to the live threads.
            let _ = live
                .spawn(async move {
                    feed(socket, state, audience, joined, since, triggers, proof).await;
                    drop(slot);
                })
                .await;
        }),
    )
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

async fn send(socket: &mut WebSocket, message: &FeedMessage, limit: Duration) -> Result<(), Ended> {
    let text = serde_json::to_string(message).expect("feed messages serialize");
    within(limit, socket.send(Message::Text(text.into()))).await
}

/// Queues a frame for the client, written at the next flush.
async fn queue(socket: &mut WebSocket, frame: &Frame, limit: Duration) -> Result<(), Ended> {
    within(limit, socket.feed(Message::Text(frame.text.clone()))).await
}

/// A write to the client: a closed socket means it left; a write still blocked after `limit`
/// (`server.live_send_timeout`) means it stopped reading.
async fn within(
    limit: Duration,
    write: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), Ended> {
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ended::ClientLeft),
        Err(_) => Err(Ended::TooSlow),
    }
}

/// The next change of a trigger, for a feed that asked for them; never for one that did not.
async fn next_trigger(
    triggers: &mut Option<broadcast::Receiver<TriggerView>>,
) -> Result<TriggerView, broadcast::error::RecvError> {
    match triggers {
        Some(updates) => updates.recv().await,
        None => std::future::pending().await,
    }
}

async fn flush(socket: &mut WebSocket, limit: Duration) -> Result<(), Ended> {
    within(limit, socket.flush()).await
}

/// Sends the stored changes in `after < seq <= upto` the audience covers, coalesced. Stored
/// changes deleted by retention are announced with a resync first.
async fn catch_up(
    socket: &mut WebSocket,
    state: &ServerState,
    audience: &Audience,
    after: i64,
    upto: i64,
) -> Result<(), Ended> {
    let limit = state.app.config().server.live_send_timeout;
    let failed = |error: runway_core::store::StoreError| {
        tracing::error!(%error, "cannot read stored changes for a live feed");
        Ended::ServerGone
    };
    let (mut replay, lost) =
        Replay::start(&state.app, &state.fanout, audience.clone(), after, upto)
            .await
            .map_err(failed)?;
    if lost {
        let resync = ResyncUpdate {
            seq: after,
            reason: format!(
                "changes after seq {after} are no longer kept; reload, then follow the feed"
            ),
        };
        send(socket, &FeedMessage::Resync(resync), limit).await?;
    }
    while let Some(frame) = replay.next(&state.app).await.map_err(failed)? {
        queue(socket, &frame, limit).await?;
    }
    flush(socket, limit).await
}

async fn feed(
    mut socket: WebSocket,
    state: ServerState,
    audience: Audience,
    joined: Joined,
    since: Option<i64>,
    mut triggers: Option<broadcast::Receiver<TriggerView>>,
    proof: crate::auth::Proof,
) {
    let mut recheck = tokio::time::interval(crate::auth::RECHECK_EVERY);
    recheck.tick().await;
    let Joined {
        mut frames,
        mut position,
    } = joined;
    let shutdown = state.shutdown.clone();
    let limit = state.app.config().server.live_send_timeout;
    let ended: Result<(), Ended> = async {
        match since {
            Some(since) if since > position => {
                let resync = ResyncUpdate {
                    seq: since,
                    reason: format!("seq {since} is newer than this server's newest ({position}); reload, then follow the feed"),
                };
                send(&mut socket, &FeedMessage::Resync(resync), limit).await?;
            }
            Some(since) => catch_up(&mut socket, &state, &audience, since, position).await?,
            None => {}
        }
        loop {
            tokio::select! {
                frame = frames.recv() => {
                    // Queue this frame and every one already waiting, then write them with one
                    // flush.
                    let mut next = Some(frame);
                    while let Some(frame) = next.take() {
                        match frame {
                            Ok(frame) => {
                                queue(&mut socket, &frame, limit).await?;
                                position = frame.upto;
                            }
                            Err(RecvError::Lagged(_)) => {
                                flush(&mut socket, limit).await?;
                                // Fell behind the fan-out: join again, and take what was missed
                                // from the store.
                                let rejoined = state.fanout.join(audience.clone());
                                frames = rejoined.frames;
                                catch_up(&mut socket, &state, &audience, position, rejoined.position).await?;
                                position = rejoined.position;
                            }
                            Err(RecvError::Closed) => return Err(Ended::ServerGone),
                        }
                        next = match frames.try_recv() {
                            Ok(frame) => Some(Ok(frame)),
                            Err(TryRecvError::Lagged(skipped)) => Some(Err(RecvError::Lagged(skipped))),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        };
                    }
                    flush(&mut socket, limit).await?;
                }
                update = next_trigger(&mut triggers), if triggers.is_some() => match update {
                    Ok(view) => {
                        let trigger = convert::trigger(view, Vec::new());
                        send(&mut socket, &FeedMessage::Trigger(Box::new(trigger)), limit).await?;
                    }
                    // Too many changes to follow one by one: every trigger as it is now.
                    Err(_) => {
                        for view in state.app.triggers().list() {
                            let trigger = convert::trigger(view, Vec::new());
                            send(&mut socket, &FeedMessage::Trigger(Box::new(trigger)), limit).await?;
                        }
                    }
                },
                () = shutdown.cancelled() => return Err(Ended::ServerGone),
                _ = recheck.tick() => {
                    if !proof.holds(&state.app).await {
                        return Err(Ended::BadFrame(crate::auth::PROOF_ENDED.into()));
                    }
                }
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
            "client too slow; reconnect with since=<last upto>".to_string(),
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
