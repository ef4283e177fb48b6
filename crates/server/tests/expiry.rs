//! Jobs expire an hour after submission: with Tokio's clock paused and advanced, the status,
//! the result and the output become 404, and a spooled output file is deleted. A job still
//! queued when it expires never runs, and counts as expired.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn status_result_and_output_are_404_after_the_hour() {
    let spool = tempfile::tempdir().unwrap();
    let flags = [
        "--output-memory-bytes",
        "0",
        "--spool-dir",
        spool.path().to_str().unwrap(),
    ];
    let server = TestServer::start(&flags, scripted(Gate::default(), Arc::default())).await;
    let (_, submitted) = server
        .post_json(&server.v2(), &json!({"image": input("kept an hour")}))
        .await;
    let status_url = submitted["status_url"].as_str().unwrap();
    let response_url = submitted["response_url"].as_str().unwrap();
    assert_eq!(wait_terminal(status_url).await["status"], "COMPLETED");
    let (_, result) = get_json(response_url).await;
    let output_url = result["output"].as_str().unwrap();
    let output = client().get(output_url).send().await.unwrap();
    assert_eq!(
        output.bytes().await.unwrap(),
        "kept an hour",
        "served from the spool file"
    );
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 1);

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3601)).await;
    for url in [
        status_url,
        response_url,
        submitted["poll_url"].as_str().unwrap(),
        output_url,
    ] {
        let (status, error) = get_json(url).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}");
        assert!(
            error["error"].as_str().unwrap().ends_with("not found"),
            "{error}"
        );
    }
    // The purge task removed the record and its file.
    purged("the spooled output deleted", || {
        std::fs::read_dir(spool.path()).unwrap().count() == 0
    })
    .await;
}

/// Lets the runtime's other tasks (the purge) run, on the paused clock, until `check` holds.
/// Yields rather than sleeps: while a job blocks a thread the paused clock does not advance
/// by itself.
async fn purged(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_job_still_queued_when_it_expires_never_runs_and_counts_as_expired() {
    let (gate, runs) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let server =
        TestServer::start(&["--result-ttl", "1"], scripted(gate.clone(), runs.clone())).await;
    // The one worker is busy while the second job waits out its TTL.
    let (status, _) = server
        .post_json(&server.v2(), &json!({"image": input("wait")}))
        .await;
    assert_eq!(status, StatusCode::OK);
    until("the first job runs", || runs.load(Ordering::SeqCst) == 1).await;
    let (_, late) = server
        .post_json(&server.v2(), &json!({"image": input("late")}))
        .await;
    assert_eq!(queued(&server).await, 1);
    // Its TTL passes on the paused clock, and the purge removes both records; then the clock
    // runs again, for the requests.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(1200)).await;
    purged("both records expired", || {
        server.state.jobs_on_record() == 0
    })
    .await;
    tokio::time::resume();
    gate.open();

    let expired = r#"upres_jobs_total{api="v2",outcome="expired"} "#;
    for _ in 0..200 {
        let page = text(&format!("{}/metrics", server.url)).await;
        if let Some(line) = page.lines().find(|line| line.starts_with(expired)) {
            assert_eq!(line, format!("{expired}1"));
            assert_eq!(runs.load(Ordering::SeqCst), 1, "the expired job ran");
            let (status, _) = get_json(late["status_url"].as_str().unwrap()).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no expired job in /metrics");
}
