//! The session WebSocket `/v1/session`: one channel per client over which it subscribes to
//! queries, acts on jobs and receives exactly the changes its subscriptions cover. The
//! protocol is in `runway_api::session` and docs/protocol.md.
//!
//! One task per session owns the socket and the session's subscriptions; it reads the
//! client's messages and the frames of its subscriptions (from the fan-out, shared with every
//! session holding the same subscription), and is the only writer of its socket.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::Response;
use runway_api::codes;
use runway_api::session::{ClientMessage, JobQuery, ServerMessage};
use runway_core::job_order::JobCursor;
use runway_core::store::{JobListParams, TreeFilter};
use runway_core::triggers::TriggerView;
use runway_core::users::{Access, User, UserId};
use runway_core::{Job, JobId};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::error::ApiError;
use crate::fanout::{Audience, Frame, Replay};
use crate::live::{Filter, check_origin};
use crate::params::TimeBounds;
use crate::{ServerState, auth, convert, params};

/// Largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 256 * 1024;
/// A client that cannot take a message for this long is disconnected.
/// Time to authenticate with `hello` when the upgrade carried no token.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Subscriptions one session may hold.
const MAX_SUBSCRIPTIONS: usize = 64;
/// Stored log sent per message when a subscription starts.
const LOG_CHUNK: u64 = 64 * 1024;

/// The session channel; see the module documentation.
#[utoipa::path(get, path = "/v1/session", tag = "live",
    responses(
        (status = 101, description = "switching to the session protocol"),
        (status = 400, body = runway_api::ErrorResponse),
        (status = 401, body = runway_api::ErrorResponse),
        (status = 403, description = "foreign Origin", body = runway_api::ErrorResponse),
        (status = 503, description = "the server holds its limit of WebSockets", body = runway_api::ErrorResponse),
    ))]
pub async fn session(
    State(state): State<ServerState>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<BTreeMap<String, String>>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = params::websocket(upgrade)?;
    check_origin(&headers, &state.app.config().server.allowed_origins)?;
    let query = params::query(query)?;
    if let Some(name) = query.keys().next() {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{name}`; the session takes none"
        )));
    }
    // A token or session cookie in the upgrade authenticates now; without one, `hello` must
    // bring the token.
    let user = match auth::authenticate(&state, &headers).await? {
        Some(auth::Credential::Job(_)) => {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                "a job token cannot open a session; use the REST routes of its job",
            ));
        }
        Some(credential) => Some((
            credential.user().cloned().expect("a user's credential"),
            auth::Proof::of(&credential, &headers),
        )),
        None => None,
    };
    let slot = state.websocket_slot()?;
    Ok(
        crate::live::small_buffers(upgrade, MAX_CLIENT_MESSAGE).on_upgrade(
            move |socket| async move {
                let live = state.live.clone();
                // The socket's reactor stays the server's; its work moves to the live threads.
                let _ = live
                    .spawn(async move {
                        run(socket, state, user).await;
                        drop(slot);
                    })
                    .await;
            },
        ),
    )
}

/// The next change of the session's triggers, with the subscription's key. Only polled while
/// there is a subscription.
async fn next_trigger(
    triggers: &mut Option<(String, broadcast::Receiver<TriggerView>)>,
) -> (String, Result<TriggerView, broadcast::error::RecvError>) {
    match triggers {
        Some((key, updates)) => {
            let update = updates.recv().await;
            (key.clone(), update)
        }
        None => std::future::pending().await,
    }
}

/// What a subscription needs beyond its frames.
enum Subscription {
    /// A job list, with its query for the older pages of `more`.
    Jobs {
        params: Box<JobListParams>,
    },
    Job,
    Triggers,
}

struct Session {
    socket: WebSocket,
    state: ServerState,
    subscriptions: BTreeMap<String, Subscription>,
    /// The frames of each subscription, by key.
    frames: StreamMap<String, BroadcastStream<Arc<Frame>>>,
    /// The triggers subscription (at most one) and the changes of triggers.
    triggers: Option<(String, broadcast::Receiver<TriggerView>)>,
    /// Who the session speaks for: from the upgrade, or from `hello`'s token.
    user: Option<User>,
    /// What it was opened with, checked again every `auth::RECHECK_EVERY` and before each
    /// action.
    proof: Option<auth::Proof>,
}

enum Ended {
    ClientLeft,
    Close(u16, String),
}

async fn run(socket: WebSocket, state: ServerState, opened: Option<(User, auth::Proof)>) {
    let shutdown = state.shutdown.clone();
    let (user, proof) = opened.unzip();
    let mut session = Session {
        socket,
        state,
        subscriptions: BTreeMap::new(),
        frames: StreamMap::new(),
        triggers: None,
        user,
        proof,
    };
    let mut recheck = tokio::time::interval(auth::RECHECK_EVERY);
    recheck.tick().await;
    let ended: Result<(), Ended> = async {
        session.greet().await?;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Err(Ended::Close(close_code::AWAY, "server shutting down".into())),
                _ = recheck.tick() => session.check_proof().await?,
                Some((key, frame)) = session.frames.next(), if !session.frames.is_empty() => match frame {
                    Ok(frame) => session.send_frame(&frame).await?,
                    Err(BroadcastStreamRecvError::Lagged(_)) => session.resync(key).await?,
                },
                (key, update) = next_trigger(&mut session.triggers), if session.triggers.is_some() => match update {
                    Ok(view) => {
                        let trigger = Box::new(convert::trigger(view, Vec::new()));
                        session.send(&ServerMessage::Trigger { key, trigger }).await?;
                    }
                    // Too many changes to follow one by one: the whole list again.
                    Err(_) => session.subscribe_triggers(key).await?,
                },
                message = session.socket.recv() => match message {
                    None | Some(Ok(Message::Close(_))) => return Err(Ended::ClientLeft),
                    Some(Err(error)) => {
                        return Err(Ended::Close(close_code::POLICY, format!("bad frame: {error}")));
                    }
                    Some(Ok(Message::Text(text))) => session.handle(text.as_str()).await?,
                    Some(Ok(Message::Binary(_))) => {
                        return Err(Ended::Close(close_code::UNSUPPORTED, "send text frames of JSON, not binary".into()));
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    .await;
    if let Err(Ended::Close(code, reason)) = ended {
        let _ = session
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: fit_close_reason(reason).into(),
            })))
            .await;
    }
}

/// A close frame's reason is at most 123 bytes; longer ones are cut at a character boundary.
pub(crate) fn fit_close_reason(mut reason: String) -> String {
    const MAX: usize = 123;
    if reason.len() > MAX {
        let mut end = MAX - '…'.len_utf8();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

impl Session {
    async fn send(&mut self, message: &ServerMessage) -> Result<(), Ended> {
        let text = serde_json::to_string(message).expect("server messages serialize");
        self.send_text(text.into()).await
    }

    /// Sends a frame as the fan-out encoded it, shared with every session that gets it.
    async fn send_frame(&mut self, frame: &Frame) -> Result<(), Ended> {
        self.send_text(frame.text.clone()).await
    }

    async fn send_text(&mut self, text: axum::extract::ws::Utf8Bytes) -> Result<(), Ended> {
        let limit = self.state.app.config().server.live_send_timeout;
        match tokio::time::timeout(limit, self.socket.send(Message::Text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Ended::ClientLeft),
            Err(_) => Err(Ended::Close(
                close_code::POLICY,
                "client too slow; reconnect and subscribe with since".into(),
            )),
        }
    }

    async fn error(
        &mut self,
        id: Option<String>,
        tag: Option<&str>,
        code: &str,
        message: impl Into<String>,
    ) -> Result<(), Ended> {
        self.send(&ServerMessage::Error {
            id,
            key: None,
            for_tag: tag.map(str::to_string),
            code: code.to_string(),
            message: message.into(),
            details: None,
        })
        .await
    }

    /// An error about the subscription `key`.
    async fn key_error(
        &mut self,
        key: &str,
        tag: &str,
        code: &str,
        message: impl Into<String>,
    ) -> Result<(), Ended> {
        self.send(&ServerMessage::Error {
            id: None,
            key: Some(key.to_string()),
            for_tag: Some(tag.to_string()),
            code: code.to_string(),
            message: message.into(),
            details: None,
        })
        .await
    }

    /// Waits for `hello` (authenticating with its token if the upgrade had none), answers
    /// `welcome`.
    async fn greet(&mut self) -> Result<(), Ended> {
        let authenticated = self.user.is_some();
        let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.socket.recv()).await {
                Err(_) => return Err(Ended::Close(close_code::POLICY, "send hello first".into())),
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return Err(Ended::ClientLeft),
                Ok(Some(Err(error))) => {
                    return Err(Ended::Close(
                        close_code::POLICY,
                        format!("bad frame: {error}"),
                    ));
                }
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(_))) if authenticated => continue,
                Ok(Some(Ok(_))) => {
                    return Err(Ended::Close(
                        close_code::POLICY,
                        "send hello with a token first".into(),
                    ));
                }
            };
            match serde_json::from_str::<ClientMessage>(message.as_str()) {
                Ok(ClientMessage::Hello { token }) => {
                    if !authenticated {
                        let holder = match token.as_deref() {
                            Some(token) => match auth::verify(&self.state.app, token).await {
                                Ok(Ok(holder)) => Some(holder),
                                _ => None,
                            },
                            None => None,
                        };
                        let Some(holder) = holder else {
                            return Err(Ended::Close(close_code::POLICY, "authentication failed: send a valid token in hello or the Authorization header".into()));
                        };
                        self.proof = Some(auth::Proof::of_token(&holder));
                        self.user = Some(holder.user);
                    }
                    let seq = self.state.fanout.position();
                    return self
                        .send(&ServerMessage::Welcome {
                            seq,
                            version: env!("CARGO_PKG_VERSION").into(),
                            user: self.user.as_ref().map(convert::user),
                        })
                        .await;
                }
                Err(error) if !authenticated => {
                    return Err(Ended::Close(
                        close_code::POLICY,
                        format!("expected hello with a token: {error}"),
                    ));
                }
                Ok(_) if !authenticated => {
                    return Err(Ended::Close(
                        close_code::POLICY,
                        "send hello with a token first".into(),
                    ));
                }
                Ok(_) => {
                    self.error(None, None, codes::INVALID_REQUEST, "send hello first")
                        .await?
                }
                Err(error) => {
                    self.error(
                        None,
                        None,
                        codes::MALFORMED_JSON,
                        format!("not a message: {error}"),
                    )
                    .await?
                }
            }
        }
    }

    /// Ends the session when what opened it no longer holds.
    async fn check_proof(&mut self) -> Result<(), Ended> {
        match &self.proof {
            Some(proof) if !proof.holds(&self.state.app).await => {
                Err(Ended::Close(close_code::POLICY, auth::PROOF_ENDED.into()))
            }
            _ => Ok(()),
        }
    }

    /// Which jobs the session may see; set by `greet`.
    fn access(&self) -> Access {
        self.user
            .as_ref()
            .map_or(Access::Own(UserId(0)), Access::of)
    }

    async fn handle(&mut self, text: &str) -> Result<(), Ended> {
        // Every action acts as a user who is still allowed to.
        self.check_proof().await?;
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => {
                return self
                    .error(
                        None,
                        None,
                        codes::MALFORMED_JSON,
                        format!("not JSON: {error}"),
                    )
                    .await;
            }
        };
        let tag = value.get("tag").and_then(Value::as_str).map(str::to_string);
        let id = value.get("id").and_then(Value::as_str).map(str::to_string);
        let known = [
            "hello",
            "subscribe",
            "unsubscribe",
            "submit",
            "cancel",
            "retry",
            "ping",
            "more",
        ];
        match tag.as_deref() {
            None => {
                return self
                    .error(id, None, codes::INVALID_REQUEST, "the message has no `tag`")
                    .await;
            }
            Some(tag) if !known.contains(&tag) => {
                return self
                    .error(
                        id,
                        Some(tag),
                        codes::UNKNOWN_TAG,
                        format!("unknown tag `{tag}`; known: {}", known.join(", ")),
                    )
                    .await;
            }
            _ => {}
        }
        // A subscription's errors name its key, so the client knows which one failed.
        let key = value.get("key").and_then(Value::as_str).map(str::to_string);
        let message: ClientMessage = match serde_json::from_value(value) {
            Ok(message) => message,
            Err(error) => {
                return self
                    .send(&ServerMessage::Error {
                        id,
                        key: key.filter(|_| {
                            matches!(tag.as_deref(), Some("subscribe" | "unsubscribe"))
                        }),
                        for_tag: tag,
                        code: codes::INVALID_REQUEST.to_string(),
                        message: error.to_string(),
                        details: None,
                    })
                    .await;
            }
        };
        match message {
            ClientMessage::Hello { .. } => {
                self.error(
                    None,
                    Some("hello"),
                    codes::INVALID_REQUEST,
                    "hello was already sent",
                )
                .await
            }
            ClientMessage::Ping { id } => self.send(&ServerMessage::Pong { id }).await,
            ClientMessage::Unsubscribe { key } => {
                if !self.forget(&key) {
                    self.key_error(
                        &key,
                        "unsubscribe",
                        codes::NOT_FOUND,
                        format!("no subscription `{key}`"),
                    )
                    .await?;
                }
                Ok(())
            }
            ClientMessage::Subscribe {
                key,
                jobs,
                job,
                log,
                since,
                triggers,
            } => {
                if triggers {
                    self.subscribe_triggers(key).await
                } else {
                    self.subscribe(key, jobs, job, log, since).await
                }
            }
            ClientMessage::More { id, key, before } => self.more(id, key, before).await,
            ClientMessage::Submit { id, job } => {
                let answer = self
                    .state
                    .app
                    .submit(self.user.as_ref(), vec![convert::submit_params(job)])
                    .await
                    .map(|mut jobs| jobs.remove(0).job);
                self.reply_job(id, "submit", answer).await
            }
            ClientMessage::Cancel { id, job_id } => {
                let answer = match job_id.parse::<JobId>() {
                    Ok(job_id) => self
                        .state
                        .app
                        .cancel(self.access(), job_id)
                        .await
                        .map(|(job, _)| job),
                    Err(message) => {
                        return self
                            .error(Some(id), Some("cancel"), codes::INVALID_REQUEST, message)
                            .await;
                    }
                };
                self.reply_job(id, "cancel", answer).await
            }
            ClientMessage::Retry { id, job_id } => {
                let answer = match job_id.parse::<JobId>() {
                    Ok(job_id) => self.state.app.retry(self.access(), job_id).await,
                    Err(message) => {
                        return self
                            .error(Some(id), Some("retry"), codes::INVALID_REQUEST, message)
                            .await;
                    }
                };
                self.reply_job(id, "retry", answer).await
            }
        }
    }

    /// The next older page of a job list; its jobs join what the list covers.
    async fn more(&mut self, id: String, key: String, before: String) -> Result<(), Ended> {
        let Some(Subscription::Jobs { params, .. }) = self.subscriptions.get(&key) else {
            return self
                .error(
                    Some(id),
                    Some("more"),
                    codes::NOT_FOUND,
                    format!("no job list `{key}`; subscribe to it with `jobs` first"),
                )
                .await;
        };
        let before = match JobCursor::parse(&before) {
            Ok(before) => before,
            Err(message) => {
                return self
                    .error(
                        Some(id),
                        Some("more"),
                        codes::INVALID_REQUEST,
                        format!("`before`: {message}"),
                    )
                    .await;
            }
        };
        let params = JobListParams {
            before: Some(before),
            ..params.as_ref().clone()
        };
        let (limit, order) = (params.limit, params.order);
        let jobs = match self.state.app.jobs(self.access(), params).await {
            Ok(jobs) => jobs,
            Err(error) => {
                let error = ApiError::from(error);
                return self
                    .error(Some(id), Some("more"), error.code, error.message)
                    .await;
            }
        };
        let value = serde_json::to_value(convert::job_page(jobs, limit, order))
            .expect("job lists serialize");
        self.send(&ServerMessage::Reply { id, value }).await
    }

    async fn reply_job(
        &mut self,
        id: String,
        tag: &str,
        answer: Result<Job, runway_core::Error>,
    ) -> Result<(), Ended> {
        match answer {
            Ok(job) => {
                let value =
                    serde_json::to_value(convert::job_preview(&job)).expect("jobs serialize");
                self.send(&ServerMessage::Reply { id, value }).await
            }
            Err(error) => {
                let error = ApiError::from(error);
                self.send(&ServerMessage::Error {
                    id: Some(id),
                    key: None,
                    for_tag: Some(tag.to_string()),
                    code: error.code.to_string(),
                    message: error.message,
                    details: error.details,
                })
                .await
            }
        }
    }

    async fn subscribe(
        &mut self,
        key: String,
        jobs: Option<JobQuery>,
        job: Option<String>,
        log: bool,
        since: Option<i64>,
    ) -> Result<(), Ended> {
        if key.is_empty() || key.len() > 200 {
            return self
                .key_error(
                    &key,
                    "subscribe",
                    codes::INVALID_REQUEST,
                    "`key` must be 1 to 200 characters",
                )
                .await;
        }
        if !self.subscriptions.contains_key(&key) && self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return self
                .key_error(
                    &key,
                    "subscribe",
                    codes::INVALID_REQUEST,
                    format!(
                        "at most {MAX_SUBSCRIPTIONS} subscriptions per session; unsubscribe first"
                    ),
                )
                .await;
        }
        if let Some(since) = since {
            let problem = if job.is_some() {
                Some(
                    "`since` is for job lists (`jobs`); a `job` subscription is always answered with `assign`",
                )
            } else if since < 0 {
                Some("`since` is a seq: 0 or more")
            } else {
                None
            };
            if let Some(problem) = problem {
                return self
                    .key_error(&key, "subscribe", codes::INVALID_REQUEST, problem)
                    .await;
            }
        }
        match (jobs, job) {
            (Some(query), None) => self.subscribe_jobs(key, query, since).await,
            (None, Some(id)) => match id.parse::<JobId>() {
                Ok(id) => self.subscribe_job(key, id, log).await,
                Err(message) => {
                    self.key_error(
                        &key,
                        "subscribe",
                        codes::INVALID_REQUEST,
                        format!("`job`: {message}"),
                    )
                    .await
                }
            },
            _ => {
                self.key_error(
                    &key,
                    "subscribe",
                    codes::INVALID_REQUEST,
                    "give exactly one of `jobs` (a query) or `job` (an id)",
                )
                .await
            }
        }
    }

    async fn subscribe_jobs(
        &mut self,
        key: String,
        query: JobQuery,
        since: Option<i64>,
    ) -> Result<(), Ended> {
        let statuses = match params::status_list("jobs.status", &query.status) {
            Ok(statuses) => statuses,
            Err(error) => {
                return self
                    .key_error(&key, "subscribe", error.code, error.message)
                    .await;
            }
        };
        let search = match params::search("jobs.q", query.q.as_deref()) {
            Ok(search) => search,
            Err(error) => {
                return self
                    .key_error(&key, "subscribe", error.code, error.message)
                    .await;
            }
        };
        let tree = match (query.parent.as_deref(), query.roots) {
            (Some(_), true) => {
                return self
                    .key_error(
                        &key,
                        "subscribe",
                        codes::INVALID_REQUEST,
                        "`jobs.parent` and `jobs.roots` exclude each other: a root has no parent",
                    )
                    .await;
            }
            (Some(parent), false) => match parent.parse::<JobId>() {
                Ok(parent) => TreeFilter::ChildrenOf(parent),
                Err(message) => {
                    return self
                        .key_error(
                            &key,
                            "subscribe",
                            codes::INVALID_REQUEST,
                            format!("`jobs.parent`: {message}"),
                        )
                        .await;
                }
            },
            (None, true) => TreeFilter::Roots,
            (None, false) => TreeFilter::All,
        };
        let limit = query.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return self
                .key_error(
                    &key,
                    "subscribe",
                    codes::INVALID_REQUEST,
                    format!("`jobs.limit` is {limit}; use 1..=1000"),
                )
                .await;
        }
        let times = TimeBounds {
            created_after: query.created_after.as_deref(),
            created_before: query.created_before.as_deref(),
            finished_after: query.finished_after.as_deref(),
            finished_before: query.finished_before.as_deref(),
        };
        let (created, finished) = match times.ranges("jobs.") {
            Ok(ranges) => ranges,
            Err(error) => {
                return self
                    .key_error(&key, "subscribe", error.code, error.message)
                    .await;
            }
        };
        let order = params::job_order(query.sort, query.order);
        let filter = Filter {
            job: None,
            tree,
            job_types: query.job_type.clone(),
            queues: query.queue.clone(),
            statuses: statuses.clone(),
            search: search.clone(),
            owner: self.access().owner(),
            created,
            finished,
        };
        let params = JobListParams {
            tree,
            statuses,
            job_types: query.job_type,
            queues: query.queue,
            search,
            created,
            finished,
            order,
            before: None,
            limit,
            owner: self.access().owner(),
            retry_of: None,
        };
        // Joined before the list is read: the list holds at least every change up to the
        // position, and frames bring every change after it.
        let joined = self.state.fanout.join(Audience::List {
            key: key.clone(),
            filter: filter.clone(),
        });
        let position = joined.position;
        self.frames
            .insert(key.clone(), BroadcastStream::new(joined.frames));
        self.subscriptions.insert(
            key.clone(),
            Subscription::Jobs {
                params: Box::new(params.clone()),
            },
        );
        // A reconnecting client that still has the list gets what it missed: the latest
        // change of every job its query covers, whatever the status, since a job it shows may
        // have left a status filter meanwhile (the client keeps only the rows that match).
        // A since newer than the position comes from another database (a server started
        // afresh at the same address): the client's list is not this server's, nor is one
        // older than the kept changes; both get a fresh list.
        if let Some(since) = since
            && since <= position
        {
            let app = self.state.app.clone();
            let audience = Audience::List {
                key: key.clone(),
                filter,
            };
            let resumed =
                match Replay::start(&app, &self.state.fanout, audience, since, position).await {
                    Ok((replay, false)) => Some(replay),
                    Ok((_, true)) => None,
                    Err(error) => return self.subscribe_failed(&key, error.into()).await,
                };
            if let Some(mut replay) = resumed {
                loop {
                    match replay.next(&app).await {
                        Ok(Some(frame)) => self.send_frame(&frame).await?,
                        Ok(None) => return Ok(()),
                        Err(error) => return self.subscribe_failed(&key, error.into()).await,
                    }
                }
            }
        }
        let jobs = match self.state.app.jobs(self.access(), params).await {
            Ok(jobs) => jobs,
            Err(error) => return self.subscribe_failed(&key, error).await,
        };
        let value = serde_json::to_value(convert::job_page(jobs, limit, order))
            .expect("job lists serialize");
        self.send(&ServerMessage::Assign {
            key,
            seq: position,
            value,
        })
        .await
    }

    /// Drops the subscription `key` and its frames; false when there was none.
    fn forget(&mut self, key: &str) -> bool {
        self.frames.remove(key);
        if self
            .triggers
            .as_ref()
            .is_some_and(|(triggers, _)| triggers == key)
        {
            self.triggers = None;
        }
        self.subscriptions.remove(key).is_some()
    }

    /// Sets `key` to every trigger, then sends each change of one; a session has one such
    /// subscription, so a second replaces the first.
    async fn subscribe_triggers(&mut self, key: String) -> Result<(), Ended> {
        if self.access() != Access::All {
            return self
                .key_error(
                    &key,
                    "subscribe",
                    codes::FORBIDDEN,
                    "only an admin may follow the triggers: their jobs are the server's",
                )
                .await;
        }
        if let Some((previous, _)) = self.triggers.take() {
            self.forget(&previous);
        }
        self.forget(&key);
        // Heard before the list is read: no change falls in between.
        let updates = self.state.app.triggers().subscribe();
        let triggers = convert::trigger_list(self.state.app.triggers().list());
        self.subscriptions
            .insert(key.clone(), Subscription::Triggers);
        self.triggers = Some((key.clone(), updates));
        let value = serde_json::to_value(triggers).expect("trigger lists serialize");
        self.send(&ServerMessage::Assign {
            key,
            seq: self.state.fanout.position(),
            value,
        })
        .await
    }

    /// A subscription that could not start: it is dropped, and the client told why.
    async fn subscribe_failed(
        &mut self,
        key: &str,
        error: runway_core::Error,
    ) -> Result<(), Ended> {
        self.forget(key);
        let error = ApiError::from(error);
        self.key_error(key, "subscribe", error.code, error.message)
            .await
    }

    async fn subscribe_job(&mut self, key: String, id: JobId, log: bool) -> Result<(), Ended> {
        let joined = self.state.fanout.join(Audience::Job {
            key: key.clone(),
            id,
            log,
        });
        let position = joined.position;
        let job = match self.state.app.job(self.access(), id).await {
            Ok(job) => job,
            Err(error) => return self.subscribe_failed(&key, error).await,
        };
        self.frames
            .insert(key.clone(), BroadcastStream::new(joined.frames));
        self.subscriptions.insert(key.clone(), Subscription::Job);
        let value = serde_json::to_value(convert::job_preview(&job)).expect("jobs serialize");
        self.send(&ServerMessage::Assign {
            key: key.clone(),
            seq: position,
            value,
        })
        .await?;
        if log {
            self.send_stored_log(&key, id).await?;
        }
        Ok(())
    }

    /// Sends the stored log of a subscribed job, to its end. Log text in the frames that
    /// follow may overlap it: the client keeps each byte once, by offset.
    async fn send_stored_log(&mut self, key: &str, id: JobId) -> Result<(), Ended> {
        let mut sent = 0;
        loop {
            let chunk = match self.state.app.log_chunk(id, sent, LOG_CHUNK).await {
                Ok(chunk) => chunk,
                Err(error) => return self.subscribe_failed(key, error.into()).await,
            };
            if chunk.data.is_empty() {
                return Ok(());
            }
            sent = chunk.offset + chunk.data.len() as u64;
            let message = ServerMessage::Log {
                key: key.to_string(),
                job_id: id.to_string(),
                offset: chunk.offset,
                data: chunk.data,
                marks: convert::log_marks(&chunk.marks),
            };
            self.send(&message).await?;
        }
    }

    /// The subscription `key` fell behind its frames: the client reloads it by subscribing
    /// again (with `since`, a list gets only what it missed).
    async fn resync(&mut self, key: String) -> Result<(), Ended> {
        self.forget(&key);
        self.send(&ServerMessage::Resync {
            key,
            reason: "the session fell behind; subscribe again".into(),
        })
        .await
    }
}
