//! (g) What abusive clients and jobs cost the server: its resident memory with 1,000 idle TCP
//! connections, with 500 keep-alive connections that each made one request, and while one job
//! prints 1 GB of short lines; and what is left once each is gone. Each scenario gets a fresh
//! server, so one's leftovers do not hide another's.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use runway_api::SubmitJobRequest;
use runway_client::Client;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{print, rss_kib, start_server};

/// Time given to the server to settle before a reading.
const SETTLE: Duration = Duration::from_secs(2);

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub async fn run() -> Result<()> {
    idle_connections(1000).await?;
    keep_alive_connections(500).await?;
    chatty_job(1_000_000_000).await?;
    Ok(())
}

async fn idle_connections(count: usize) -> Result<()> {
    let (server, _) = start_server().await?;
    let pid = server.child.id();
    let address = server.url.trim_start_matches("http://").to_string();
    tokio::time::sleep(SETTLE).await;
    let before = rss_kib(pid)?;
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        connections.push(TcpStream::connect(&address).await?);
    }
    tokio::time::sleep(SETTLE).await;
    let with = rss_kib(pid)?;
    drop(connections);
    tokio::time::sleep(SETTLE).await;
    let after = rss_kib(pid)?;
    print(json!({
        "figure": "g_idle_connections", "connections": count,
        "rss_before_mib": mib(before), "rss_with_mib": mib(with), "rss_after_mib": mib(after),
        "kib_per_connection": (with.saturating_sub(before)) as f64 / count as f64,
        "target_kib_per_connection": 20
    }));
    Ok(())
}

async fn keep_alive_connections(count: usize) -> Result<()> {
    let (server, _) = start_server().await?;
    let pid = server.child.id();
    let address = server.url.trim_start_matches("http://").to_string();
    tokio::time::sleep(SETTLE).await;
    let before = rss_kib(pid)?;
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(&address).await?;
        stream
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut answer = [0u8; 512];
        let read = stream.read(&mut answer).await?;
        anyhow::ensure!(
            answer[..read].starts_with(b"HTTP/1.1 200"),
            "healthz answered {:?}",
            String::from_utf8_lossy(&answer[..read])
        );
        connections.push(stream);
    }
    tokio::time::sleep(SETTLE).await;
    let with = rss_kib(pid)?;
    drop(connections);
    tokio::time::sleep(SETTLE).await;
    let after = rss_kib(pid)?;
    print(json!({
        "figure": "g_keep_alive_connections", "connections": count,
        "rss_before_mib": mib(before), "rss_with_mib": mib(with), "rss_after_mib": mib(after),
        "kib_per_connection": (with.saturating_sub(before)) as f64 / count as f64
    }));
    Ok(())
}

async fn chatty_job(bytes: u64) -> Result<()> {
    let (server, _) = start_server().await?;
    let pid = server.child.id();
    let client = Client::new(&server.url, Some(server.token.clone()));
    tokio::time::sleep(SETTLE).await;
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let job = client
        .submit(&SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": format!("yes | head -c {bytes}")}),
            ..Default::default()
        })
        .await?;
    let mut peak = before;
    let finished = loop {
        peak = peak.max(rss_kib(pid)?);
        let current = client.job(&job.id).await?;
        if matches!(
            current.status.as_str(),
            "succeeded" | "failed" | "cancelled"
        ) {
            break current;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let after = rss_kib(pid)?;
    let mut stored = 0;
    loop {
        let chunk = client.log(&job.id, stored).await.context("the job's log")?;
        stored = chunk.next_offset;
        if chunk.complete {
            break;
        }
    }
    print(json!({
        "figure": "g_chatty_job", "printed_bytes": bytes, "status": finished.status,
        "seconds": seconds, "stored_log_bytes": stored,
        "rss_before_mib": mib(before), "rss_peak_mib": mib(peak), "rss_after_mib": mib(after)
    }));
    Ok(())
}
