//! Shared by the CLI's integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;

/// The repository root.
pub fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// One HTTP/1.1 exchange; returns the status line and headers, lower-cased, and the body.
pub fn exchange(address: &str, request: &str) -> (String, Vec<u8>) {
    try_exchange(address, request).unwrap()
}

/// [`exchange`], or the connection's error (a server that is gone).
pub fn try_exchange(address: &str, request: &str) -> std::io::Result<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    Ok((head, response[split + 4..].to_vec()))
}

/// A GET; the status code and the body.
pub fn get(address: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let (head, body) = try_exchange(
        address,
        &format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"),
    )?;
    Ok((status_code(&head), body))
}

/// A POST of a JSON body; the status code and the body.
pub fn post_json(address: &str, path: &str, body: &str) -> std::io::Result<(u16, Vec<u8>)> {
    post_json_with(address, path, body, &[])
}

/// [`post_json`] with extra headers.
pub fn post_json_with(
    address: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Vec<u8>)> {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let (head, body) = try_exchange(
        address,
        &format!(
            "POST {path} HTTP/1.1\r\nhost: {address}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    )?;
    Ok((status_code(&head), body))
}

fn status_code(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

pub fn v1_request(address: &str, request_id: Option<&str>) -> String {
    let mut png = Vec::new();
    image::DynamicImage::new_rgba8(6, 4)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let image = base64::engine::general_purpose::STANDARD.encode(png);
    let body = format!(r#"{{"image": "data:image/png;base64,{image}", "desired_increase": 2}}"#);
    let id = request_id.map_or(String::new(), |id| format!("x-request-id: {id}\r\n"));
    format!(
        "POST /v1/bria-increase-resolution HTTP/1.1\r\nhost: {address}\r\n{id}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
    /// The stderr lines up to "ready".
    pub startup: Vec<String>,
    /// Every stderr line after those.
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `upres serve` with JSON logs on a free port and waits for its address.
pub fn serve(flags: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upres"))
        .args(["serve", "--json-output", "--port", "0"])
        .args(flags)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server {
        child,
        address: String::new(),
        startup: Vec::new(),
        lines,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let line = server
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs");
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if let Some(rest) = message.strip_prefix("listening on http://") {
            server.address = rest.split_whitespace().next().unwrap().to_string();
        }
        let ready = message.contains("ready");
        server.startup.push(line);
        if ready {
            return server;
        }
    }
    panic!("the server did not get ready");
}
