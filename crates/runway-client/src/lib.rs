//! A typed client for runway's HTTP API, used by the CLI, the benchmarks and the tests.
//! It speaks only the wire contract of `runway-api`; it never sees the server's internals.

use reqwest::{Method, StatusCode};
use runway_api::triggers::{FireResponse, TriggerListResponse, TriggerResponse};
use runway_api::{
    CancelResponse, ErrorResponse, HealthResponse, JobListResponse, JobResponse, LogResponse,
    QueueListResponse, QueueResponse, SubmitBatchRequest, SubmitBatchResponse, SubmitJobRequest,
    TypeListResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: the server is down, the address is wrong, or the network failed.
    #[error("cannot reach the runway server at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The server answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The server answered something this client cannot read.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Filters for [`Client::list_jobs`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListJobs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Search: a job id, or text in the type or input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only the children of this job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Only jobs without a parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roots: Option<bool>,
    /// Only the retries of this job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// Only jobs created at or after this RFC 3339 instant; the three others likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<runway_api::JobSortField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<runway_api::SortOrder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// `base` is the server's URL, e.g. `http://127.0.0.1:7869`.
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("a reqwest client with default TLS builds"),
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: Option<&(impl Serialize + ?Sized)>,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(query) = query {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Unreachable {
                url: self.base.clone(),
                message: error.to_string(),
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ClientError::Unreachable {
                url: self.base.clone(),
                message: error.to_string(),
            })?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|error| ClientError::Decode(error.to_string()))
        } else {
            Err(api_error(status.as_u16(), &bytes))
        }
    }

    /// A request whose answer is not JSON: the response when it succeeded, the API's error
    /// otherwise.
    async fn raw(&self, method: Method, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Unreachable {
                url: self.base.clone(),
                message: error.to_string(),
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        Err(api_error(status, &bytes))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None::<&()>, None)
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, None::<&()>, body).await
    }

    pub async fn health(&self) -> Result<HealthResponse, ClientError> {
        self.get("/healthz").await
    }

    pub async fn submit(&self, request: &SubmitJobRequest) -> Result<JobResponse, ClientError> {
        self.post("/v1/jobs", Some(request)).await
    }

    pub async fn submit_batch(
        &self,
        request: &SubmitBatchRequest,
    ) -> Result<SubmitBatchResponse, ClientError> {
        self.post("/v1/jobs/batch", Some(request)).await
    }

    /// A batch submit answered with the jobs' ids only (`return=ids`): for large batches.
    pub async fn submit_batch_ids(
        &self,
        request: &SubmitBatchRequest,
    ) -> Result<Vec<String>, ClientError> {
        let answer: runway_api::SubmitBatchIdsResponse = self
            .call(
                Method::POST,
                "/v1/jobs/batch",
                Some(&[("return", "ids")]),
                Some(request),
            )
            .await?;
        Ok(answer.ids)
    }

    pub async fn list_jobs(&self, filters: &ListJobs) -> Result<JobListResponse, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/jobs", Some(filters), None)
            .await
    }

    /// How many jobs the filters match (`cursor`, `limit` and the order are not sent).
    pub async fn count_jobs(&self, filters: &ListJobs) -> Result<u64, ClientError> {
        let filters = ListJobs {
            cursor: None,
            limit: None,
            sort: None,
            order: None,
            ..filters.clone()
        };
        let answer: runway_api::CountResponse = self
            .call::<(), _>(Method::GET, "/v1/jobs/count", Some(&filters), None)
            .await?;
        Ok(answer.count)
    }

    pub async fn job(&self, id: &str) -> Result<JobResponse, ClientError> {
        self.get(&format!("/v1/jobs/{}", encode(id))).await
    }

    pub async fn log(&self, id: &str, offset: u64) -> Result<LogResponse, ClientError> {
        self.call::<(), _>(
            Method::GET,
            &format!("/v1/jobs/{}/log", encode(id)),
            Some(&[("offset", offset)]),
            None,
        )
        .await
    }

    pub async fn cancel(&self, id: &str) -> Result<CancelResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/jobs/{}/cancel", encode(id)), None)
            .await
    }

    /// The job's timeline: its newest kept events, oldest of them first.
    pub async fn events(&self, id: &str) -> Result<runway_api::EventListResponse, ClientError> {
        self.get(&format!("/v1/jobs/{}/events", encode(id))).await
    }

    /// The job, its ancestors and one page of its children (`cursor` from the previous page).
    pub async fn tree(
        &self,
        id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<runway_api::TreeResponse, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_string()));
        }
        self.call::<(), _>(
            Method::GET,
            &format!("/v1/jobs/{}/tree", encode(id)),
            Some(&query),
            None,
        )
        .await
    }

    /// Spawns children under a running job (a command does this with its `RUNWAY_TOKEN`).
    pub async fn spawn(
        &self,
        id: &str,
        request: &runway_api::SpawnRequest,
    ) -> Result<SubmitBatchResponse, ClientError> {
        self.post(&format!("/v1/jobs/{}/children", encode(id)), Some(request))
            .await
    }

    /// The files a job produced.
    pub async fn artifacts(
        &self,
        id: &str,
    ) -> Result<runway_api::ArtifactListResponse, ClientError> {
        self.get(&format!("/v1/jobs/{}/artifacts", encode(id)))
            .await
    }

    /// One artifact's bytes, as a response to read or stream.
    pub async fn artifact(&self, id: &str, name: &str) -> Result<reqwest::Response, ClientError> {
        let name: Vec<String> = name.split('/').map(encode).collect();
        self.raw(
            Method::GET,
            &format!("/v1/jobs/{}/artifacts/{}", encode(id), name.join("/")),
        )
        .await
    }

    /// Deletes a finished job or tree with its events, logs and artifacts.
    pub async fn delete(&self, id: &str) -> Result<runway_api::DeleteResponse, ClientError> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/v1/jobs/{}", encode(id)),
            None::<&()>,
            None,
        )
        .await
    }

    pub async fn retry(&self, id: &str) -> Result<JobResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/jobs/{}/retry", encode(id)), None)
            .await
    }

    pub async fn types(&self) -> Result<TypeListResponse, ClientError> {
        self.get("/v1/types").await
    }

    pub async fn queues(&self) -> Result<QueueListResponse, ClientError> {
        self.get("/v1/queues").await
    }

    /// A queue's finished jobs over `range` (`15m`, `1h`, `24h` or `7d`), by bucket of time.
    pub async fn queue_history(
        &self,
        name: &str,
        range: &str,
    ) -> Result<runway_api::QueueHistoryResponse, ClientError> {
        self.call::<(), _>(
            Method::GET,
            &format!("/v1/queues/{}/history", encode(name)),
            Some(&[("range", range)]),
            None,
        )
        .await
    }

    pub async fn pause_queue(&self, name: &str) -> Result<QueueResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/queues/{}/pause", encode(name)), None)
            .await
    }

    pub async fn resume_queue(&self, name: &str) -> Result<QueueResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/queues/{}/resume", encode(name)), None)
            .await
    }

    /// Cancels or retries many jobs, named or matched by a filter.
    pub async fn bulk(
        &self,
        request: &runway_api::BulkRequest,
    ) -> Result<runway_api::BulkResponse, ClientError> {
        self.post("/v1/jobs/bulk", Some(request)).await
    }

    /// A single-use sign-in code for the caller, for a dashboard link.
    pub async fn signin_code(&self) -> Result<runway_api::users::SignInCodeResponse, ClientError> {
        self.post::<(), _>("/v1/auth/codes", None).await
    }

    /// Spends a sign-in code for a new API token of its user; needs no token.
    pub async fn token_from_code(
        &self,
        code: &str,
        name: &str,
    ) -> Result<runway_api::users::CreateTokenResponse, ClientError> {
        self.post(
            "/v1/auth/token",
            Some(&runway_api::users::CodeRequest {
                code: code.to_string(),
                name: Some(name.to_string()),
            }),
        )
        .await
    }

    /// Who the token speaks for.
    pub async fn me(&self) -> Result<runway_api::users::UserResponse, ClientError> {
        self.get("/v1/me").await
    }

    pub async fn users(&self) -> Result<runway_api::users::UserListResponse, ClientError> {
        self.get("/v1/users").await
    }

    /// Adds a user; the answer holds its first token, shown only this once.
    pub async fn add_user(
        &self,
        request: &runway_api::users::CreateUserRequest,
    ) -> Result<runway_api::users::CreateUserResponse, ClientError> {
        self.post("/v1/users", Some(request)).await
    }

    pub async fn remove_user(&self, name: &str) -> Result<(), ClientError> {
        self.raw(Method::DELETE, &format!("/v1/users/{}", encode(name)))
            .await
            .map(drop)
    }

    /// The caller's tokens, or (an admin) everyone's or `user`'s.
    pub async fn tokens(
        &self,
        user: Option<&str>,
    ) -> Result<runway_api::users::TokenListResponse, ClientError> {
        match user {
            Some(user) => self.get(&format!("/v1/tokens?user={}", encode(user))).await,
            None => self.get("/v1/tokens").await,
        }
    }

    /// Makes a token; the answer holds it, shown only this once.
    pub async fn create_token(
        &self,
        request: &runway_api::users::CreateTokenRequest,
    ) -> Result<runway_api::users::CreateTokenResponse, ClientError> {
        self.post("/v1/tokens", Some(request)).await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        self.raw(Method::DELETE, &format!("/v1/tokens/{}", encode(id)))
            .await
            .map(drop)
    }

    pub async fn triggers(&self) -> Result<TriggerListResponse, ClientError> {
        self.get("/v1/triggers").await
    }

    pub async fn trigger(&self, name: &str) -> Result<TriggerResponse, ClientError> {
        self.get(&format!("/v1/triggers/{}", encode(name))).await
    }

    pub async fn fire_trigger(&self, name: &str) -> Result<FireResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/triggers/{}/fire", encode(name)), None)
            .await
    }

    pub async fn pause_trigger(&self, name: &str) -> Result<TriggerResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/triggers/{}/pause", encode(name)), None)
            .await
    }

    pub async fn resume_trigger(&self, name: &str) -> Result<TriggerResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/triggers/{}/resume", encode(name)), None)
            .await
    }
}

/// Percent-encodes a path segment so an id or name can never change the route.
/// The error an unsuccessful answer carries: the API's JSON error, or the start of the body.
fn api_error(status: u16, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorResponse>(bytes) {
        Ok(error) => ClientError::Api {
            status,
            code: error.error.code,
            message: error.error.message,
        },
        Err(_) => ClientError::Api {
            status,
            code: "unknown".into(),
            message: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        },
    }
}

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Whether an error means "not found".
pub fn is_not_found(error: &ClientError) -> bool {
    error.status() == Some(StatusCode::NOT_FOUND.as_u16())
}

/// Filters and options of the live feed; see [`Client::updates`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdatesQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Replay stored changes after this seq first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Also receive log text as it is written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<bool>,
    /// Also receive each change of a trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers: Option<bool>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open live feed.
pub struct Feed {
    socket: Socket,
}

/// The next text message of `socket`; `None` when the server closed it without a reason.
async fn next_text(socket: &mut Socket, what: &str) -> Option<Result<String, ClientError>> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = match socket.next().await? {
            Ok(message) => message,
            Err(error) => {
                return Some(Err(ClientError::Unreachable {
                    url: what.into(),
                    message: error.to_string(),
                }));
            }
        };
        match message {
            Message::Text(text) => return Some(Ok(text.to_string())),
            Message::Close(frame) => {
                let reason = frame
                    .map(|frame| frame.reason.to_string())
                    .unwrap_or_default();
                return if reason.is_empty() {
                    None
                } else {
                    Some(Err(ClientError::Api {
                        status: 0,
                        code: "closed".into(),
                        message: format!("the server closed the {what}: {reason}"),
                    }))
                };
            }
            _ => continue,
        }
    }
}

impl Feed {
    /// The next message; `None` when the server closed the feed without a reason.
    pub async fn next(&mut self) -> Option<Result<runway_api::FeedMessage, ClientError>> {
        let text = match self.next_text().await? {
            Ok(text) => text,
            Err(error) => return Some(Err(error)),
        };
        Some(serde_json::from_str(&text).map_err(|error| ClientError::Decode(error.to_string())))
    }

    /// The next message as the server sent it (JSON text), for callers that read only part.
    pub async fn next_text(&mut self) -> Option<Result<String, ClientError>> {
        next_text(&mut self.socket, "live feed").await
    }

    /// Closes the feed politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// An open session (`/v1/session`): the channel `runway top` and the dashboard use.
pub struct Session {
    socket: Socket,
}

impl Session {
    pub async fn send(
        &mut self,
        message: &runway_api::session::ClientMessage,
    ) -> Result<(), ClientError> {
        use futures_util::SinkExt;
        let text = serde_json::to_string(message).expect("client messages serialize");
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .map_err(|error| ClientError::Unreachable {
                url: "session".into(),
                message: error.to_string(),
            })
    }

    /// The next message; `None` when the server closed the session without a reason.
    pub async fn next(
        &mut self,
    ) -> Option<Result<runway_api::session::ServerMessage, ClientError>> {
        let text = match next_text(&mut self.socket, "session").await? {
            Ok(text) => text,
            Err(error) => return Some(Err(error)),
        };
        Some(serde_json::from_str(&text).map_err(|error| ClientError::Decode(error.to_string())))
    }
}

impl Client {
    /// Opens the live job feed `/v1/jobs/updates`.
    pub async fn updates(&self, query: &UpdatesQuery) -> Result<Feed, ClientError> {
        let pairs = serde_json::to_value(query).expect("the query serializes");
        let pairs: Vec<(String, String)> = pairs
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| {
                let value = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), value)
            })
            .collect();
        let socket = self.websocket("/v1/jobs/updates", &pairs).await?;
        Ok(Feed { socket })
    }

    /// Opens a session (`/v1/session`), authenticated by the upgrade: send `hello` first.
    pub async fn session(&self) -> Result<Session, ClientError> {
        let socket = self.websocket("/v1/session", &[]).await?;
        Ok(Session { socket })
    }

    /// A WebSocket to `path` with `query`, authenticated with the token.
    async fn websocket(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Socket, ClientError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base)).map_err(|error| {
            ClientError::Unreachable {
                url: self.base.clone(),
                message: format!("not a URL: {error}"),
            }
        })?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .expect("ws and wss are valid schemes");
        if !query.is_empty() {
            let mut url_query = url.query_pairs_mut();
            for (key, value) in query {
                url_query.append_pair(key, value);
            }
        }
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| ClientError::Decode(error.to_string()))?;
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| ClientError::Decode("the token is not a valid header value".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                Err(match serde_json::from_slice::<ErrorResponse>(&body) {
                    Ok(error) => ClientError::Api {
                        status,
                        code: error.error.code,
                        message: error.error.message,
                    },
                    Err(_) => ClientError::Api {
                        status,
                        code: "unknown".into(),
                        message: format!("HTTP {status}"),
                    },
                })
            }
            Err(error) => Err(ClientError::Unreachable {
                url: self.base.clone(),
                message: error.to_string(),
            }),
        }
    }
}
