//! A typed client for runway's HTTP API, used by the CLI, the benchmarks and the tests.
//! It speaks only the wire contract of `runway-api`; it never sees the server's internals.

use reqwest::{Method, StatusCode};
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
            Err(match serde_json::from_slice::<ErrorResponse>(&bytes) {
                Ok(error) => ClientError::Api {
                    status: status.as_u16(),
                    code: error.error.code,
                    message: error.error.message,
                },
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: "unknown".into(),
                    message: format!(
                        "HTTP {}: {}",
                        status.as_u16(),
                        String::from_utf8_lossy(&bytes)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    ),
                },
            })
        }
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

    pub async fn list_jobs(&self, filters: &ListJobs) -> Result<JobListResponse, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/jobs", Some(filters), None)
            .await
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

    pub async fn pause_queue(&self, name: &str) -> Result<QueueResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/queues/{}/pause", encode(name)), None)
            .await
    }

    pub async fn resume_queue(&self, name: &str) -> Result<QueueResponse, ClientError> {
        self.post::<(), _>(&format!("/v1/queues/{}/resume", encode(name)), None)
            .await
    }
}

/// Percent-encodes a path segment so an id or name can never change the route.
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Whether an error means "not found".
pub fn is_not_found(error: &ClientError) -> bool {
    error.status() == Some(StatusCode::NOT_FOUND.as_u16())
}
