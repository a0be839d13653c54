//! What one client may hold of the server: connection and WebSocket caps, header-read and idle
//! timeouts, and the names (`Host`) and origins the server answers to (issue 9).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use runway_client::UpdatesQuery;
use serde_json::{Value, json};

use crate::Server;

fn address(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Waits until the server closes `stream` (a read returns end of file or an error); panics if
/// it is still open after `deadline`, or if the server sent anything.
fn closed_by_server(stream: &mut TcpStream, deadline: Duration) -> Duration {
    let start = Instant::now();
    stream.set_read_timeout(Some(deadline)).unwrap();
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(0) => start.elapsed(),
        Ok(read) => panic!(
            "the server answered instead of closing: {:?}",
            String::from_utf8_lossy(&buffer[..read])
        ),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("the connection was still open after {deadline:?}")
        }
        Err(_reset) => start.elapsed(),
    }
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let server = Server::start("[server]\nidle_timeout = \"1s\"\n");
    let mut idle = TcpStream::connect(address(&server)).unwrap();
    let waited = closed_by_server(&mut idle, Duration::from_secs(10));
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
}

#[test]
fn a_keep_alive_connection_is_closed_once_idle_for_the_timeout() {
    let server = Server::start("[server]\nidle_timeout = \"1s\"\n");
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n",
        address(&server)
    )
    .unwrap();
    let mut answer = [0u8; 1024];
    let read = stream.read(&mut answer).unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    closed_by_server(&mut stream, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_while_a_normal_client_is_served() {
    let server = Server::start("[server]\nidle_timeout = \"2s\"\n");
    let target = address(&server);
    // 200 connections trickle a header byte every 300 ms, for ever if they may.
    let trickle = std::thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..200)
            .map(|_| TcpStream::connect(&target).unwrap())
            .collect();
        let header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        let start = Instant::now();
        let mut position = 0;
        while !streams.is_empty() && start.elapsed() < Duration::from_secs(20) {
            let byte = [header.get(position).copied().unwrap_or(b'a')];
            streams.retain_mut(|stream| stream.write_all(&byte).is_ok());
            position += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        (streams.len(), start.elapsed())
    });
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let answer = client
            .get(format!("{}/healthz", server.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("a normal client is served during the attack");
        assert_eq!(answer.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (still_open, elapsed) = tokio::task::spawn_blocking(move || trickle.join().unwrap())
        .await
        .unwrap();
    assert_eq!(still_open, 0, "every slow connection was cut");
    assert!(elapsed < Duration::from_secs(15), "cut after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_client_waits_for_a_free_slot() {
    let server = Server::start("[server]\nmax_connections = 2\nidle_timeout = \"60s\"\n");
    let holders: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(address(&server)).unwrap())
        .collect();
    let client = reqwest::Client::new();
    let get = || {
        client
            .get(format!("{}/healthz", server.url))
            .timeout(Duration::from_millis(1500))
            .send()
    };
    let waiting = get().await;
    assert!(
        waiting.as_ref().is_err_and(reqwest::Error::is_timeout),
        "served while every slot was held: {waiting:?}"
    );
    drop(holders);
    let served = crate::eventually("a free slot", Duration::from_secs(10), || async {
        get().await.ok()
    })
    .await;
    assert_eq!(served.status(), StatusCode::OK);
}

#[tokio::test]
async fn past_max_websockets_a_feed_is_refused_with_503() {
    let server = Server::start("[server]\nmax_websockets = 1\n");
    let client = server.client();
    let first = client.updates(&UpdatesQuery::default()).await.unwrap();
    match client.updates(&UpdatesQuery::default()).await {
        Err(runway_client::ClientError::Api {
            status,
            code,
            message,
        }) => {
            assert_eq!((status, code.as_str()), (503, "too_many_connections"));
            assert!(message.contains("server.max_websockets"), "{message}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a second feed opened past the limit"),
    }
    drop(first);
    crate::eventually("the slot to free", Duration::from_secs(10), || async {
        client.updates(&UpdatesQuery::default()).await.ok()
    })
    .await;
}

async fn cookie(server: &Server) -> String {
    let signed_in = reqwest::Client::new()
        .post(format!("{}/v1/auth/session", server.url))
        .json(&json!({"token": server.token}))
        .send()
        .await
        .unwrap();
    let set_cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_foreign_host_is_refused_even_with_its_own_origin_and_the_cookie() {
    let server = Server::start("");
    let cookie = cookie(&server).await;
    let http = reqwest::Client::new();
    let paused = http
        .post(format!("{}/v1/queues/default/pause", server.url))
        .header("host", "evil.example")
        .header("origin", "http://evil.example")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), StatusCode::BAD_REQUEST);
    let body: Value = paused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_host", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.allowed_origins"),
        "{body}"
    );
    let queues = server.client().queues().await.unwrap();
    assert!(
        queues.queues.iter().all(|queue| !queue.paused),
        "nothing changed"
    );
    let local = http
        .get(format!("{}/healthz", server.url))
        .header(
            "host",
            format!("localhost:{}", server.url.rsplit(':').next().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        local.status(),
        StatusCode::OK,
        "localhost is one of its names"
    );
}

#[tokio::test]
async fn a_name_from_allowed_origins_is_answered() {
    let server = Server::start("[server]\nallowed_origins = [\"https://jobs.example.com\"]\n");
    let answer = reqwest::Client::new()
        .get(format!("{}/healthz", server.url))
        .header("host", "jobs.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_origin_check_compares_the_scheme() {
    let server = Server::start("");
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/v1/jobs/updates", server.url.replace("http://", "ws://"));
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", server.token).parse().unwrap(),
    );
    let https_origin = server.url.replace("http://", "https://");
    request
        .headers_mut()
        .insert("origin", https_origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
        }
        other => panic!("origin {https_origin}: {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_body_that_trickles_in_is_cut_at_the_idle_timeout() {
    let server = Server::start("[server]\nidle_timeout = \"1s\"\n");
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    // Sign-in needs no token: the cheapest body an attacker could trickle.
    write!(
        stream,
        "POST /v1/auth/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{",
        address(&server)
    )
    .unwrap();
    let start = Instant::now();
    let trickle = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut trickle = trickle;
        while trickle.write_all(b" ").is_ok() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                answer.push_str(&String::from_utf8_lossy(&buffer[..read]));
                if answer.contains("request_timeout") {
                    break;
                }
            }
            Err(error) => panic!("no answer within 10 s: {error}; got {answer:?}"),
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("server.idle_timeout"), "{answer}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_of_its_answers_is_cut_at_the_idle_timeout() {
    let server = Server::start("[server]\nidle_timeout = \"1s\"\n");
    let client = server.client();
    let job = client
        .submit(&runway_api::SubmitJobRequest {
            job_type: "shell".into(),
            input: json!({"command": "head -c 1000000 /dev/zero | tr '\\0' x | fold -w 99"}),
            ..Default::default()
        })
        .await
        .unwrap();
    crate::finished(&client, &job.id).await;
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    // 64 pipelined requests for a megabyte each, and not a byte read: far more than the
    // network buffers hold.
    let request = format!(
        "GET /v1/jobs/{}/log?limit=1048576 HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        job.id,
        address(&server),
        server.token
    );
    for _ in 0..64 {
        stream.write_all(request.as_bytes()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => received += read,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the connection stayed open: {error} after {received} bytes"),
        }
    }
    assert!(
        received < 64 * 1_000_000,
        "the server stopped writing to the stalled client ({received} bytes were buffered)"
    );
}
