//! GET /metrics after real traffic: the counts match what was sent, labels hold route
//! templates and names only, and Prometheus' own `promtool check metrics` accepts the page.
//! One test in its own binary: the metrics recorder is per process.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use upres_server::EngineKind;

/// `name{labels}` -> value, for every sample line.
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// The sample of `name` whose labels include every one of `labels` (`k="v"` strings).
fn sample(all: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    let found: Vec<f64> = all
        .iter()
        .filter(|(key, _)| {
            key.split('{').next() == Some(name) && labels.iter().all(|l| key.contains(l))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]
}

#[tokio::test]
async fn metrics_count_what_was_sent_and_pass_promtool() {
    let keys = tempfile::tempdir().unwrap();
    let keys_file = keys.path().join("keys.toml");
    std::fs::write(
        &keys_file,
        "[[keys]]\nkey = 'sk-alice'\nname = 'alice'\nrpm = 60\nburst = 2\n",
    )
    .unwrap();
    let host = image_host(png(10, 8, false)).await;
    let flags = [
        "--keys-file",
        keys_file.to_str().unwrap(),
        "--allow-private-urls",
        "--engine",
        "fast-nearest",
    ];
    let server = TestServer::start(&flags, EngineKind::FastNearest.upscaler(engine())).await;
    let call = |url: String, image: String| {
        client()
            .post(url)
            .header("x-api-key", "sk-alice")
            .json(&json!({"image": image, "desired_increase": 2}))
    };
    // A v1 call, a v2 job, then the rate limit (burst 2).
    assert_eq!(
        call(server.v1(), data_uri(&png(10, 8, true)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, job) = send_json(call(server.v2(), format!("{host}/img.png"))).await;
    assert_eq!(status, StatusCode::OK);
    let limited = call(server.v1(), data_uri(&png(10, 8, true)))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let done = wait_terminal_as(job["status_url"].as_str().unwrap(), Some("sk-alice")).await;
    assert_eq!(done["status"], "COMPLETED");
    // A job whose download fails (after the limiter refilled), an unknown id, an unknown path.
    // The limiter runs on Tokio's clock: 1.1 s of it passes at once, then it runs on.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_millis(1100)).await;
    tokio::time::resume();
    let (_, failing) = send_json(call(server.v2(), format!("{host}/missing"))).await;
    let failed = wait_terminal_as(failing["status_url"].as_str().unwrap(), Some("sk-alice")).await;
    assert_eq!(failed["status"], "FAILED");
    let unknown = format!("{}/v2/requests/{}/status", server.url, uuid_of(&job));
    client()
        .get(unknown.replace(&uuid_of(&job), "00000000-0000-4000-8000-000000000000"))
        .header("x-api-key", "sk-alice")
        .send()
        .await
        .unwrap();
    client()
        .get(format!("{}/no/such/place", server.url))
        .send()
        .await
        .unwrap();

    let response = client()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let page = response.text().await.unwrap();
    let all = samples(&page);
    let requests = |route: &str, method: &str, status: &str| {
        sample(
            &all,
            "upres_http_requests_total",
            &[
                &format!("route=\"{route}\""),
                &format!("method=\"{method}\""),
                &format!("status=\"{status}\""),
            ],
        )
    };
    assert_eq!(requests("/v1/{slug}", "POST", "200"), 1.0);
    assert_eq!(requests("/v1/{slug}", "POST", "429"), 1.0);
    assert_eq!(requests("/v2/{slug}", "POST", "200"), 2.0);
    assert_eq!(requests("/v2/requests/{id}/status", "GET", "404"), 1.0);
    assert!(requests("/v2/requests/{id}/status", "GET", "200") >= 1.0);
    assert!(requests("/v2/requests/{id}/status", "GET", "422") >= 1.0);
    assert_eq!(requests("unmatched", "GET", "404"), 1.0);
    assert_eq!(
        sample(
            &all,
            "upres_jobs_total",
            &["api=\"v1\"", "outcome=\"completed\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &all,
            "upres_jobs_total",
            &["api=\"v2\"", "outcome=\"completed\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &all,
            "upres_jobs_total",
            &["api=\"v2\"", "outcome=\"failed\""]
        ),
        1.0
    );
    assert_eq!(
        sample(&all, "upres_fetch_failures_total", &["reason=\"status\""]),
        1.0
    );
    assert_eq!(sample(&all, "upres_fetch_seconds_count", &[]), 2.0);
    assert_eq!(
        sample(
            &all,
            "upres_inference_seconds_count",
            &["model=\"span\"", "scale=\"2\""]
        ),
        2.0
    );
    assert_eq!(sample(&all, "upres_input_megapixels_count", &[]), 2.0);
    assert_eq!(
        sample(
            &all,
            "upres_emulation_events_total",
            &["kind=\"rate-limited\"", "key=\"alice\"", "route=\"v1\""]
        ),
        1.0
    );
    assert_eq!(sample(&all, "upres_jobs_capacity", &[]), 1.0);
    assert_eq!(
        sample(&all, "upres_jobs_on_record", &[]),
        2.0,
        "the v2 jobs"
    );
    assert_eq!(sample(&all, "upres_jobs_running", &[]), 0.0, "all finished");
    assert_eq!(sample(&all, "upres_build_info", &["version=\""]), 1.0);
    for secret in [
        "sk-alice",
        "127.0.0.1",
        uuid_of(&job).as_str(),
        "/no/such/place",
    ] {
        assert!(!page.contains(secret), "{secret} leaked into /metrics");
    }

    // Prometheus' own linter accepts the page.
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut promtool) => {
            promtool
                .stdin
                .take()
                .unwrap()
                .write_all(page.as_bytes())
                .unwrap();
            let out = promtool.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(err) => {
            assert!(
                std::env::var("CI").is_err(),
                "promtool is required in CI ({err}): run scripts/test-tools.sh"
            );
            eprintln!("promtool not installed ({err}): skipped the lint; scripts/test-tools.sh installs it");
        }
    }
}

fn uuid_of(job: &serde_json::Value) -> String {
    job["request_id"].as_str().unwrap().to_string()
}
