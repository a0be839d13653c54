//! (e) Fan-out: N WebSocket clients on loopback while 2,000 no-op jobs run. Feed clients hold
//! `/v1/jobs/updates` with no filter (every update); session clients hold `/v1/session` with
//! the dashboard's default jobs list (roots, newest 100). Prints, per N: commit-to-arrival
//! latency of `succeeded` updates at every client, resident memory per idle connection, the
//! engine's run rate beside the rate with no client, and how many clients saw every job end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use runway_api::{SubmitBatchRequest, SubmitJobRequest};
use runway_client::{Client, Feed, UpdatesQuery};
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{Server, percentile, print, rss_kib, start_server, wait_for_done};

const JOBS: usize = 2000;

/// What a client reads of a frame: the end of each job it carries.
#[derive(Deserialize)]
struct FrameSeen {
    tag: String,
    #[serde(default)]
    jobs: Vec<Seen>,
}

#[derive(Deserialize)]
struct Seen {
    kind: String,
    at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Feed,
    Session,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

enum Connection {
    Feed(Feed),
    Session(Socket),
}

impl Connection {
    async fn open(server: &Server, client: &Client, kind: Kind) -> Result<Connection> {
        match kind {
            Kind::Feed => Ok(Connection::Feed(
                client.updates(&UpdatesQuery::default()).await?,
            )),
            Kind::Session => {
                let url = format!("{}/v1/session", server.url.replace("http://", "ws://"));
                let mut request = url.as_str().into_client_request()?;
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {}", server.token).parse()?);
                let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
                socket
                    .send(Message::Text(json!({"tag": "hello"}).to_string().into()))
                    .await?;
                let subscribe = json!({"tag": "subscribe", "key": "jobs",
                    "jobs": {"roots": true, "limit": 100}});
                socket
                    .send(Message::Text(subscribe.to_string().into()))
                    .await?;
                Ok(Connection::Session(socket))
            }
        }
    }

    async fn next_text(&mut self) -> Option<String> {
        match self {
            Connection::Feed(feed) => feed.next_text().await?.ok(),
            Connection::Session(socket) => loop {
                match socket.next().await? {
                    Ok(Message::Text(text)) => return Some(text.to_string()),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => {}
                }
            },
        }
    }
}

pub async fn run(kind: Kind, counts: &[usize]) -> Result<()> {
    let mut baseline = None;
    for &clients in counts {
        let (server, _) = start_server().await?;
        let client = Client::new(&server.url, Some(server.token.clone()));
        let pid = server.child.id();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before = rss_kib(pid)?;

        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<f64>>();
        let server = Arc::new(server);
        for start in (0..clients).step_by(100) {
            let mut opening = Vec::new();
            for _ in start..(start + 100).min(clients) {
                let client = client.clone();
                let server = Arc::clone(&server);
                opening.push(tokio::spawn(async move {
                    Connection::open(&server, &client, kind).await
                }));
            }
            for connection in opening {
                let mut connection = connection.await?.context("open a connection")?;
                let sender = sender.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(JOBS);
                    while latencies.len() < JOBS {
                        let Some(text) = connection.next_text().await else {
                            break;
                        };
                        let arrived = chrono::Utc::now();
                        let Ok(frame) = serde_json::from_str::<FrameSeen>(&text) else {
                            continue;
                        };
                        if frame.tag != "frame" {
                            continue;
                        }
                        for seen in frame.jobs {
                            if seen.kind == "succeeded" {
                                let micros = (arrived - seen.at).num_microseconds().unwrap_or(0);
                                latencies.push(micros as f64 / 1000.0);
                            }
                        }
                    }
                    let _ = sender.send(latencies);
                });
            }
        }
        drop(sender);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after = rss_kib(pid)?;

        client.pause_queue("default").await?;
        for batch in 0..JOBS / 500 {
            let jobs = (0..500)
                .map(|n| SubmitJobRequest {
                    job_type: "noop".into(),
                    input: json!({"n": batch * 500 + n}),
                    ..Default::default()
                })
                .collect();
            client.submit_batch(&SubmitBatchRequest { jobs }).await?;
        }
        let started = Instant::now();
        client.resume_queue("default").await?;
        wait_for_done(&client, JOBS as u64).await?;
        let rate = JOBS as f64 / started.elapsed().as_secs_f64();
        let baseline_rate = *baseline.get_or_insert(rate);

        let mut latencies = Vec::with_capacity(clients * JOBS);
        let mut complete = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while let Ok(Some(mut some)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
            if some.len() == JOBS {
                complete += 1;
            }
            latencies.append(&mut some);
        }
        latencies.sort_by(f64::total_cmp);
        let (p50, p99, max) = if latencies.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            (
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                latencies[latencies.len() - 1],
            )
        };
        let per_connection_kib = if clients > 0 {
            (rss_after.saturating_sub(rss_before)) as f64 / clients as f64
        } else {
            0.0
        };
        let client_kind = match kind {
            Kind::Feed => "feed (all updates)",
            Kind::Session => "session (default jobs list)",
        };
        print(json!({
            "figure": "e_fanout", "client": client_kind, "clients": clients, "jobs": JOBS,
            "clients_with_every_job_end": complete,
            "latency_ms_p50": p50, "latency_ms_p99": p99, "latency_ms_max": max,
            "rss_kib_per_idle_connection": per_connection_kib,
            "run_jobs_per_sec": rate, "run_rate_vs_no_clients": rate / baseline_rate,
        }));
    }
    Ok(())
}
