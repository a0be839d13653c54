//! The session WebSocket `/v1/session`: one channel per client over which it subscribes to
//! queries, acts on jobs and receives exactly the changes its subscriptions cover. The
//! protocol is in `runway_api::session` and docs/protocol.md.
//!
//! One task per session owns the socket and the session's subscriptions; it reads the
//! client's messages and the bus, and is the only writer of its socket.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::Response;
use runway_api::codes;
use runway_api::session::{ClientMessage, JobQuery, ServerMessage};
use runway_core::bus::Change;
use runway_core::store::{JobListParams, TreeFilter};
use runway_core::{Job, JobId};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::convert::job_update;
use crate::error::ApiError;
use crate::live::{Filter, check_origin};
use crate::{ServerState, auth, convert, params};

/// Largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 256 * 1024;
/// A client that cannot take a message for this long is disconnected.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to authenticate with `hello` when the upgrade carried no token.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Subscriptions one session may hold.
const MAX_SUBSCRIPTIONS: usize = 64;
/// Most rows of a resumed list that stay covered (`subscribe` with `from`).
const MAX_RESUMED_ROWS: u32 = 10_000;
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
    let authenticated = match auth::authenticate(&state, &headers).await? {
        Some(auth::Credential::Job(_)) => {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                "a job token cannot open a session; use the REST routes of its job",
            ));
        }
        credential => credential.is_some(),
    };
    let slot = state.websocket_slot()?;
    Ok(
        crate::live::small_buffers(upgrade, MAX_CLIENT_MESSAGE).on_upgrade(
            move |socket| async move {
                run(socket, state, authenticated).await;
                drop(slot);
            },
        ),
    )
}

#[expect(
    clippy::large_enum_variant,
    reason = "at most 64 per session, kept in a map: boxing would only add an indirection"
)]
enum Subscription {
    Jobs {
        filter: Filter,
        /// The query, for the older pages of `more`.
        params: JobListParams,
        /// Jobs shown in this list: their next change matters even when it leaves the filter.
        shown: HashSet<JobId>,
        /// Changes up to this seq are already in what the client was sent.
        floor: i64,
        /// Jobs of older pages (`more`), read later than `floor`: changes up to their own seq
        /// are already in the page.
        paged_at: HashMap<JobId, i64>,
    },
    Job {
        id: JobId,
        /// Log bytes sent so far, when the log is subscribed.
        log_sent: Option<u64>,
        floor: i64,
    },
}

struct Session {
    socket: WebSocket,
    state: ServerState,
    subscriptions: BTreeMap<String, Subscription>,
}

enum Ended {
    ClientLeft,
    Close(u16, String),
}

async fn run(socket: WebSocket, state: ServerState, authenticated: bool) {
    let shutdown = state.shutdown.clone();
    let mut session = Session {
        socket,
        state,
        subscriptions: BTreeMap::new(),
    };
    let ended: Result<(), Ended> = async {
        session.greet(authenticated).await?;
        // Only an authenticated session holds a place on the bus.
        let mut changes = session.state.app.store().subscribe();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Err(Ended::Close(close_code::AWAY, "server shutting down".into())),
                burst = changes.recv() => match burst {
                    Ok(burst) => {
                        for change in burst.iter() {
                            session.forward(change.clone()).await?;
                        }
                    }
                    Err(RecvError::Lagged(_)) => session.resync_all().await?,
                    Err(RecvError::Closed) => return Err(Ended::Close(close_code::AWAY, "server shutting down".into())),
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
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into()))).await
        {
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
    async fn greet(&mut self, authenticated: bool) -> Result<(), Ended> {
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
                        let valid = match token.as_deref() {
                            Some(token) => matches!(
                                auth::verify(self.state.app.store().as_ref(), token).await,
                                Ok(Some(_))
                            ),
                            None => false,
                        };
                        if !valid {
                            return Err(Ended::Close(close_code::POLICY, "authentication failed: send a valid token in hello or the Authorization header".into()));
                        }
                    }
                    let seq = self.state.app.store().event_last_seq().await.unwrap_or(0);
                    return self
                        .send(&ServerMessage::Welcome {
                            seq,
                            version: env!("CARGO_PKG_VERSION").into(),
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

    async fn handle(&mut self, text: &str) -> Result<(), Ended> {
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
                if self.subscriptions.remove(&key).is_none() {
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
                from,
            } => self.subscribe(key, jobs, job, log, since, from).await,
            ClientMessage::More { id, key, before } => self.more(id, key, before).await,
            ClientMessage::Submit { id, job } => {
                let answer = self
                    .state
                    .app
                    .submit(vec![convert::submit_params(job)])
                    .await
                    .map(|mut jobs| jobs.remove(0).job);
                self.reply_job(id, "submit", answer).await
            }
            ClientMessage::Cancel { id, job_id } => {
                let answer = match job_id.parse::<JobId>() {
                    Ok(job_id) => self.state.app.cancel(job_id).await.map(|(job, _)| job),
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
                    Ok(job_id) => self.state.app.retry(job_id).await,
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
        let before = match before.parse::<JobId>() {
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
        let params = JobListParams {
            before: Some(before),
            ..params.clone()
        };
        let limit = params.limit;
        // Read before the page: changes up to here are in it.
        let paged = self.state.app.store().event_last_seq().await.unwrap_or(0);
        let jobs = match self.state.app.jobs(params).await {
            Ok(jobs) => jobs,
            Err(error) => {
                let error = ApiError::from(error);
                return self
                    .error(Some(id), Some("more"), error.code, error.message)
                    .await;
            }
        };
        if let Some(Subscription::Jobs {
            shown, paged_at, ..
        }) = self.subscriptions.get_mut(&key)
        {
            for job in &jobs {
                shown.insert(job.id);
                paged_at.insert(job.id, paged);
            }
        }
        let value =
            serde_json::to_value(convert::job_page(jobs, limit)).expect("job lists serialize");
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
        from: Option<String>,
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
        let from = match (from, since) {
            (None, _) => None,
            (Some(_), None) => {
                return self
                    .key_error(
                        &key,
                        "subscribe",
                        codes::INVALID_REQUEST,
                        "`from` goes with `since`: it says which older jobs a resumed list holds",
                    )
                    .await;
            }
            (Some(from), Some(_)) => match from.parse::<JobId>() {
                Ok(from) => Some(from),
                Err(message) => {
                    return self
                        .key_error(
                            &key,
                            "subscribe",
                            codes::INVALID_REQUEST,
                            format!("`from`: {message}"),
                        )
                        .await;
                }
            },
        };
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
            (Some(query), None) => self.subscribe_jobs(key, query, since, from).await,
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
        from: Option<JobId>,
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
        let filter = Filter {
            job: None,
            tree,
            job_types: query.job_type.clone(),
            queues: query.queue.clone(),
            statuses: statuses.clone(),
            search: search.clone(),
        };
        let params = JobListParams {
            tree,
            statuses,
            job_types: query.job_type,
            queues: query.queue,
            search,
            before: None,
            limit,
        };
        // Read before the list: changes up to here are in it (or were sent before a resume).
        let floor = self.state.app.store().event_last_seq().await.unwrap_or(0);
        // A reconnecting client that still has the list gets exactly what it missed: every
        // change of a job its query covers whatever the status, since a job it shows may have
        // left a status filter meanwhile (the client adds only the rows that match).
        if let Some(since) = since {
            let any_status = Filter {
                statuses: Vec::new(),
                ..filter.clone()
            };
            let first_kept = self
                .state
                .app
                .store()
                .event_first_seq()
                .await
                .unwrap_or(None);
            // A since newer than anything stored comes from another database (a server
            // started afresh at the same address): the client's list is not this server's.
            if since <= floor && first_kept.is_some_and(|first| first <= since + 1) {
                let mut shown = HashSet::new();
                let mut after = since;
                loop {
                    let changes = match self.state.app.store().job_changes_since(after, 1000).await
                    {
                        Ok(changes) => changes,
                        Err(error) => {
                            return self
                                .key_error(&key, "subscribe", codes::INTERNAL, error.to_string())
                                .await;
                        }
                    };
                    let Some(last) = changes.last().map(|change| change.seq) else {
                        break;
                    };
                    for change in &changes {
                        if any_status.matches(&change.job) {
                            shown.insert(change.job.id);
                            let message = ServerMessage::Job {
                                keys: vec![key.clone()],
                                update: Box::new(job_update(change)),
                            };
                            self.send(&message).await?;
                        }
                    }
                    after = last;
                    if changes.len() < 1000 {
                        break;
                    }
                }
                // The jobs the client shows and still match: their next change is news even
                // when it takes them out of the list. With `from`, that is every matching job
                // down to the oldest it holds (at most MAX_RESUMED_ROWS).
                let covered = JobListParams {
                    limit: if from.is_some() {
                        MAX_RESUMED_ROWS
                    } else {
                        params.limit
                    },
                    ..params.clone()
                };
                if let Ok(jobs) = self.state.app.jobs(covered).await {
                    shown.extend(
                        jobs.iter()
                            .map(|job| job.id)
                            .filter(|id| from.is_none_or(|from| *id >= from)),
                    );
                }
                self.subscriptions.insert(
                    key,
                    Subscription::Jobs {
                        filter,
                        params,
                        shown,
                        floor: after,
                        paged_at: HashMap::new(),
                    },
                );
                return Ok(());
            }
        }
        let jobs = match self.state.app.jobs(params.clone()).await {
            Ok(jobs) => jobs,
            Err(error) => {
                let error = ApiError::from(error);
                return self
                    .key_error(&key, "subscribe", error.code, error.message)
                    .await;
            }
        };
        let shown = jobs.iter().map(|job| job.id).collect();
        let value =
            serde_json::to_value(convert::job_page(jobs, limit)).expect("job lists serialize");
        self.subscriptions.insert(
            key.clone(),
            Subscription::Jobs {
                filter,
                params,
                shown,
                floor,
                paged_at: HashMap::new(),
            },
        );
        self.send(&ServerMessage::Assign {
            key,
            seq: floor,
            value,
        })
        .await
    }

    async fn subscribe_job(&mut self, key: String, id: JobId, log: bool) -> Result<(), Ended> {
        let floor = self.state.app.store().event_last_seq().await.unwrap_or(0);
        let job = match self.state.app.job(id).await {
            Ok(job) => job,
            Err(error) => {
                let error = ApiError::from(error);
                return self
                    .key_error(&key, "subscribe", error.code, error.message)
                    .await;
            }
        };
        let value = serde_json::to_value(convert::job_preview(&job)).expect("jobs serialize");
        self.subscriptions.insert(
            key.clone(),
            Subscription::Job {
                id,
                log_sent: log.then_some(0),
                floor,
            },
        );
        self.send(&ServerMessage::Assign {
            key: key.clone(),
            seq: floor,
            value,
        })
        .await?;
        if log {
            self.send_stored_log(&key, id).await?;
        }
        Ok(())
    }

    /// Sends the stored log of a subscribed job from what was already sent to its end.
    async fn send_stored_log(&mut self, key: &str, id: JobId) -> Result<(), Ended> {
        loop {
            let Some(Subscription::Job {
                log_sent: Some(sent),
                ..
            }) = self.subscriptions.get(key)
            else {
                return Ok(());
            };
            let sent = *sent;
            let chunk = match self.state.app.store().log_read(id, sent, LOG_CHUNK).await {
                Ok(chunk) => chunk,
                Err(error) => {
                    return self
                        .key_error(key, "subscribe", codes::INTERNAL, error.to_string())
                        .await;
                }
            };
            if chunk.data.is_empty() {
                return Ok(());
            }
            let end = chunk.offset + chunk.data.len() as u64;
            if let Some(Subscription::Job { log_sent, .. }) = self.subscriptions.get_mut(key) {
                *log_sent = Some(end);
            }
            let message = ServerMessage::Log {
                key: key.to_string(),
                job_id: id.to_string(),
                offset: chunk.offset,
                data: chunk.data,
            };
            self.send(&message).await?;
        }
    }

    /// Sends a committed change to the subscriptions that cover it, once.
    async fn forward(&mut self, change: Change) -> Result<(), Ended> {
        match change {
            Change::Job(change) => {
                let mut keys = Vec::new();
                for (key, subscription) in &mut self.subscriptions {
                    let covered = match subscription {
                        Subscription::Jobs { floor, .. } | Subscription::Job { floor, .. }
                            if change.seq <= *floor =>
                        {
                            false
                        }
                        Subscription::Jobs { paged_at, .. }
                            if paged_at
                                .get(&change.job.id)
                                .is_some_and(|paged| change.seq <= *paged) =>
                        {
                            false
                        }
                        Subscription::Jobs {
                            filter,
                            shown,
                            paged_at,
                            ..
                        } => {
                            paged_at.remove(&change.job.id);
                            if filter.matches(&change.job) {
                                shown.insert(change.job.id);
                                true
                            } else {
                                // Reported once as it leaves the list, then no longer.
                                shown.remove(&change.job.id)
                            }
                        }
                        Subscription::Job { id, .. } => *id == change.job.id,
                    };
                    if covered {
                        keys.push(key.clone());
                    }
                }
                if keys.is_empty() {
                    return Ok(());
                }
                self.send(&ServerMessage::Job {
                    keys,
                    update: Box::new(job_update(&change)),
                })
                .await
            }
            Change::Log(log) => {
                let mut sends = Vec::new();
                for (key, subscription) in &mut self.subscriptions {
                    if let Subscription::Job {
                        id,
                        log_sent: Some(sent),
                        ..
                    } = subscription
                        && *id == log.job_id
                    {
                        let end = log.offset + log.data.len() as u64;
                        if end > *sent && log.offset <= *sent {
                            let skip = (*sent - log.offset) as usize;
                            sends.push(ServerMessage::Log {
                                key: key.clone(),
                                job_id: log.job_id.to_string(),
                                offset: *sent,
                                data: log.data.get(skip..).unwrap_or_default().to_string(),
                            });
                            *sent = end;
                        } else if log.offset > *sent {
                            // A gap (the bus lagged): the store has the missing part.
                            sends.push(ServerMessage::Resync {
                                key: key.clone(),
                                reason: "log lines were missed; subscribe again".into(),
                            });
                        }
                    }
                }
                for message in sends {
                    self.send(&message).await?;
                }
                Ok(())
            }
        }
    }

    /// The bus outran this session: every subscription must be reloaded.
    async fn resync_all(&mut self) -> Result<(), Ended> {
        let keys: Vec<String> = self.subscriptions.keys().cloned().collect();
        self.subscriptions.clear();
        for key in keys {
            self.send(&ServerMessage::Resync {
                key,
                reason: "the session fell behind; subscribe again".into(),
            })
            .await?;
        }
        Ok(())
    }
}
