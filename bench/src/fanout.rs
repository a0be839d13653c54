//! (e) Fan-out: N WebSocket clients on loopback while 2,000 no-op jobs run. Feed clients hold
//! `/v1/jobs/updates` with no filter (every update); session clients hold `/v1/session` with
//! the dashboard's default jobs list (roots, newest 100). Prints, per N: commit-to-arrival
//! latency of `succeeded` updates at every client, resident memory per idle connection, the
//! engine's run rate beside the rate with no client, and how many clients saw every job end.
//!
//! The clients share the server's cores here, which real viewers on other machines do not: they
//! run on threads of the lowest CPU priority (nice 19), so they take what the server leaves.

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

/// What a client reads of a message: a frame's range and the end of each job it carries, or a
/// session's request to subscribe again.
#[derive(Deserialize)]
struct MessageSeen {
    tag: String,
    #[serde(default)]
    upto: i64,
    #[serde(default)]
    jobs: Vec<Seen>,
}

#[derive(Deserialize)]
struct Seen {
    kind: String,
    job_id: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// What one client saw by the end: the latency of each job's end, how many job ends came twice
/// (an exact resume makes none), and how often the server sent it away for reading too slowly.
#[derive(Default)]
struct Watched {
    latencies: Vec<f64>,
    duplicate_ends: usize,
    reconnects: usize,
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
    /// Opens a connection, resuming after `since` when it is given, as a real client does.
    async fn open(
        server: &Server,
        client: &Client,
        kind: Kind,
        since: Option<i64>,
    ) -> Result<Connection> {
        match kind {
            Kind::Feed => Ok(Connection::Feed(
                client
                    .updates(&UpdatesQuery {
                        since,
                        ..Default::default()
                    })
                    .await?,
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
                let mut connection = Connection::Session(socket);
                connection.subscribe(since).await?;
                Ok(connection)
            }
        }
    }

    /// The dashboard's default jobs list; after `since` when resuming.
    async fn subscribe(&mut self, since: Option<i64>) -> Result<()> {
        if let Connection::Session(socket) = self {
            let subscribe = json!({"tag": "subscribe", "key": "jobs",
                "jobs": {"roots": true, "limit": 100}, "since": since});
            socket
                .send(Message::Text(subscribe.to_string().into()))
                .await?;
        }
        Ok(())
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

/// A runtime for the viewers, whose threads yield to every other thread of the machine.
fn viewers_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-viewer")
        .enable_all()
        .on_thread_start(|| {
            thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
                .expect("a thread may lower its own priority");
        })
        .build()?)
}

/// Every figure by default; `feed|session COUNT…` measures those client counts of one kind
/// (the first count is the baseline the run rate is compared with).
pub async fn run_chosen(args: &[String]) -> Result<()> {
    let Some((kind, counts)) = args.split_first() else {
        run(Kind::Feed, &[0, 1000, 5000]).await?;
        return run(Kind::Session, &[0, 500]).await;
    };
    let kind = match kind.as_str() {
        "feed" => Kind::Feed,
        "session" => Kind::Session,
        other => anyhow::bail!("`{other}` is not a client kind; use feed or session"),
    };
    let counts = counts
        .iter()
        .map(|count| {
            count
                .parse()
                .with_context(|| format!("`{count}` is not a client count"))
        })
        .collect::<Result<Vec<usize>>>()?;
    run(kind, &counts).await
}

async fn run(kind: Kind, counts: &[usize]) -> Result<()> {
    let viewers = viewers_runtime()?;
    let result = measure(kind, counts, viewers.handle()).await;
    viewers.shutdown_background();
    result
}

async fn measure(kind: Kind, counts: &[usize], viewers: &tokio::runtime::Handle) -> Result<()> {
    let mut baseline = None;
    for &clients in counts {
        let (server, _) = start_server().await?;
        let client = Client::new(&server.url, Some(server.token.clone()));
        let pid = server.child.id();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before = rss_kib(pid)?;

        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Watched>();
        let server = Arc::new(server);
        for start in (0..clients).step_by(100) {
            let mut opening = Vec::new();
            for _ in start..(start + 100).min(clients) {
                let client = client.clone();
                let server = Arc::clone(&server);
                opening
                    .push(viewers.spawn(async move {
                        Connection::open(&server, &client, kind, None).await
                    }));
            }
            for connection in opening {
                let connection = connection.await?.context("open a connection")?;
                let sender = sender.clone();
                let (server, client) = (Arc::clone(&server), client.clone());
                viewers.spawn(async move {
                    let watched = watch(connection, &server, &client, kind).await;
                    let _ = sender.send(watched);
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
        let (mut complete, mut duplicate_ends, mut reconnects) = (0, 0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while let Ok(Some(mut watched)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
            if watched.latencies.len() == JOBS {
                complete += 1;
            }
            duplicate_ends += watched.duplicate_ends;
            reconnects += watched.reconnects;
            latencies.append(&mut watched.latencies);
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
            "clients_with_every_job_end": complete, "duplicate_job_ends": duplicate_ends,
            "reconnects_after_too_slow": reconnects,
            "latency_ms_p50": p50, "latency_ms_p99": p99, "latency_ms_max": max,
            "rss_kib_per_idle_connection": per_connection_kib,
            "run_jobs_per_sec": rate, "run_rate_vs_no_clients": rate / baseline_rate,
        }));
    }
    Ok(())
}

/// Reads until every job's end has arrived; a connection the server closes (a client too slow to
/// read) is opened again after the last frame seen, as the dashboard and `runway follow` do.
async fn watch(
    mut connection: Connection,
    server: &Server,
    client: &Client,
    kind: Kind,
) -> Watched {
    let mut watched = Watched {
        latencies: Vec::with_capacity(JOBS),
        ..Default::default()
    };
    let mut ended = std::collections::HashSet::with_capacity(JOBS);
    let mut last_upto = None;
    while ended.len() < JOBS {
        let Some(text) = connection.next_text().await else {
            let Ok(again) = Connection::open(server, client, kind, last_upto).await else {
                break;
            };
            connection = again;
            watched.reconnects += 1;
            continue;
        };
        let arrived = chrono::Utc::now();
        let Ok(message) = serde_json::from_str::<MessageSeen>(&text) else {
            continue;
        };
        match message.tag.as_str() {
            "frame" => {}
            "resync" => {
                if connection.subscribe(last_upto).await.is_err() {
                    break;
                }
                continue;
            }
            _ => continue,
        }
        last_upto = Some(message.upto);
        for seen in message.jobs {
            if seen.kind != "succeeded" {
                continue;
            }
            if !ended.insert(seen.job_id) {
                watched.duplicate_ends += 1;
                continue;
            }
            let micros = (arrived - seen.at).num_microseconds().unwrap_or(0);
            watched.latencies.push(micros as f64 / 1000.0);
        }
    }
    watched
}
