//! Connections, over raw sockets on 127.0.0.1: a silent or slow client is closed after the
//! header-read timeout and an idle one after the keep-alive timeout, without holding others up;
//! an answer given before the body was read leaves a keep-alive connection usable (or says
//! `connection: close`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn echo() -> std::sync::Arc<dyn upres_server::Upscaler> {
    scripted(Gate::default(), Default::default())
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Waits until the server closes `stream` (end of file or reset), reading and dropping
/// anything it sends; returns the time since `since`.
async fn closed_after(stream: &mut (impl AsyncRead + Unpin), since: Instant) -> Duration {
    let mut buf = [0; 4096];
    let wait = async { while let Ok(1..) = stream.read(&mut buf).await {} };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the server left the connection open");
    since.elapsed()
}

/// Reads one answer with a content-length: its status, its head (lowercase) and its body.
async fn read_answer(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut data = Vec::new();
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        read_more(stream, &mut data).await;
    };
    let head = String::from_utf8(data[..head_end].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while data.len() < head_end + length {
        read_more(stream, &mut data).await;
    }
    (
        head[9..12].parse().unwrap(),
        head,
        data[head_end..].to_vec(),
    )
}

async fn read_more(stream: &mut TcpStream, data: &mut Vec<u8>) {
    let mut buf = [0; 8192];
    let n = stream
        .read(&mut buf)
        .await
        .expect("the connection failed before the answer");
    assert!(
        n > 0,
        "closed before the answer: {:?}",
        String::from_utf8_lossy(data)
    );
    data.extend_from_slice(&buf[..n]);
}

fn get_models(server: &TestServer) -> String {
    let host = server.url.trim_start_matches("http://");
    format!("GET /models HTTP/1.1\r\nhost: {host}\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_connections_are_closed_without_holding_others_up() {
    let flags = ["--header-read-timeout", "0.5", "--keep-alive-timeout", "30"];
    let server = TestServer::start(&flags, echo()).await;
    let since = Instant::now();
    // Says nothing.
    let silent = connect(&server).await;
    // A slowloris: a header byte every 100 ms, never the blank line.
    let (slow_reads, mut slow_writes) = connect(&server).await.into_split();
    tokio::spawn(async move {
        slow_writes.write_all(b"GET /health HTTP/1.1\r\n").await?;
        loop {
            // Kept: the trickle itself (real time between bytes on a real socket).
            tokio::time::sleep(Duration::from_millis(100)).await;
            slow_writes.write_all(b"x").await?;
        }
        #[allow(unreachable_code)]
        Ok::<_, std::io::Error>(())
    });
    // Half an h2c preface: stuck while the server tells the protocol apart.
    let mut half_h2 = connect(&server).await;
    half_h2.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();

    // Meanwhile other clients are served at once.
    let others = tokio::time::timeout(Duration::from_secs(2), async {
        for word in ["one", "two", "three"] {
            let response = post(&server.v1(), &json!({"image": input(word)})).await;
            assert_eq!(response.bytes().await.unwrap(), word);
        }
    });
    others.await.expect("other clients were held up");

    let streams: [(&str, Box<dyn AsyncRead + Unpin + Send>); 3] = [
        ("silent", Box::new(silent)),
        ("slowloris", Box::new(slow_reads)),
        ("half h2c preface", Box::new(half_h2)),
    ];
    for (name, mut stream) in streams {
        let after = closed_after(&mut stream, since).await;
        assert!(
            after >= Duration::from_millis(500) && after < Duration::from_secs(10),
            "{name}: closed after {after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_keep_alive_timeout() {
    let flags = [
        "--header-read-timeout",
        "0.3",
        "--keep-alive-timeout",
        "1.5",
    ];
    let server = TestServer::start(&flags, echo()).await;
    let mut stream = connect(&server).await;
    for _ in 0..2 {
        stream
            .write_all(get_models(&server).as_bytes())
            .await
            .unwrap();
        let (status, head, _) = read_answer(&mut stream).await;
        assert_eq!(status, 200, "{head}");
        // Idle between requests for longer than the header-read timeout: still open. (Kept: the
        // server's socket clocks are the behaviour, so real time passes.)
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // (The server's clock started a moment before this one: at its last write.)
    let since = Instant::now() - Duration::from_millis(600);
    let after = closed_after(&mut stream, since).await;
    assert!(
        after >= Duration::from_millis(1300) && after < Duration::from_secs(10),
        "closed after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_post_leaves_the_keep_alive_connection_usable() {
    let limit = 300_000;
    let flags = [
        "--api-keys",
        "sk-good",
        "--max-body-bytes",
        &limit.to_string(),
    ];
    let server = TestServer::start(&flags, echo()).await;
    let host = server.url.trim_start_matches("http://").to_string();
    let body = json!({"image": input(&"x".repeat(200_000))}).to_string();
    let post = |path: &str, key: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n{key}content-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut stream = connect(&server).await;
    // Refused before the body is read: no key (401), an unknown model (404). Each request is
    // sent whole before its answer is read, as `requests` and httpx do.
    for (request, want) in [
        (post(&format!("/v1/{SLUG}"), ""), 401),
        (post("/v1/another-model", "x-api-key: sk-good\r\n"), 404),
    ] {
        stream.write_all(request.as_bytes()).await.unwrap();
        let (status, head, answer) = read_answer(&mut stream).await;
        assert_eq!(status, want, "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert!(answer["error"].is_string(), "{answer}");
    }
    // The same connection goes on.
    stream
        .write_all(get_models(&server).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_answer(&mut stream).await.0, 200);

    // A body announced over the limit is not read: the answer says the connection closes.
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /v1/{SLUG} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        limit + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, _) = read_answer(&mut stream).await;
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    closed_after(&mut stream, Instant::now()).await;
}
