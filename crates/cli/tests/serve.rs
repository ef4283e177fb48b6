//! `upres serve` as a user runs it: the real binary, JSON logs on stderr, real HTTP.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{exchange, serve, v1_request, Server};

/// The request id the response carries.
fn request_id(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("an x-request-id header")
        .trim()
        .to_string()
}

/// Waits for a log line containing `needle`.
fn log_line_with(server: &Server, needle: &str) -> serde_json::Value {
    loop {
        let line = server
            .lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line with {needle}"));
        if line.contains(needle) {
            return serde_json::from_str(&line).unwrap();
        }
    }
}

#[test]
fn json_logs_carry_the_request_id_the_answer_echoes() {
    let server = serve(&["--engine", "fast-nearest"]);
    // The client's id is kept...
    let (head, _) = exchange(
        &server.address,
        &v1_request(&server.address, Some("client-id-42")),
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(request_id(&head), "client-id-42");
    let line = log_line_with(&server, "client-id-42");
    assert_eq!(line["span"]["request_id"], "client-id-42");
    assert_eq!(line["fields"]["status"], 200);
    // ... and without one (or with a bad one) the server makes one up.
    for sent in [None, Some("bad id with spaces")] {
        let (head, _) = exchange(&server.address, &v1_request(&server.address, sent));
        let id = request_id(&head);
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(
            log_line_with(&server, &id)["span"]["request_id"],
            id.as_str()
        );
    }
}

#[test]
fn a_v2_job_logs_under_its_id() {
    let server = serve(&["--engine", "fast-nearest"]);
    let body = r#"{"image": "data:image/png;base64,bm90IGFuIGltYWdl"}"#;
    let request = format!(
        "POST /v2/bria-increase-resolution HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        server.address,
        body.len()
    );
    let (head, body) = exchange(&server.address, &request);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let job: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = job["request_id"].as_str().unwrap();
    let failed = log_line_with(&server, "job failed");
    assert_eq!(failed["span"]["job_id"], id);
    assert!(failed["fields"]["error"]
        .as_str()
        .unwrap()
        .contains("format"));
}

#[test]
fn healthcheck_says_whether_the_server_is_ready() {
    let healthcheck = |port: &str| {
        Command::new(env!("CARGO_BIN_EXE_upres"))
            .args(["healthcheck", "--port", port, "--timeout", "5"])
            .env_remove("UPRES_HOST")
            .output()
            .unwrap()
    };
    let server = serve(&["--engine", "fast-nearest"]);
    let port = server.address.rsplit(':').next().unwrap().to_string();
    let up = healthcheck(&port);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    drop(server);
    let down = healthcheck(&port);
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
}
