//! Shared by the CLI's integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use base64::Engine as _;

/// The repository root.
pub fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// One HTTP/1.1 exchange; returns the status line and headers, lower-cased, and the body.
pub fn exchange(address: &str, request: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    (head, response[split + 4..].to_vec())
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
