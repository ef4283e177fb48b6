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
    let (_, submitted) =
        json(post(&server.v2(), &json!({"image": input("kept an hour")})).await).await;
    let status_url = submitted["status_url"].as_str().unwrap();
    let response_url = submitted["response_url"].as_str().unwrap();
    assert_eq!(wait_terminal(status_url).await["status"], "COMPLETED");
    let (_, result) = json(client().get(response_url).send().await.unwrap()).await;
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
        let (status, error) = json(client().get(url).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}");
        assert!(
            error["error"].as_str().unwrap().ends_with("not found"),
            "{error}"
        );
    }
    // The purge task removed the record and its file.
    for _ in 0..100 {
        if std::fs::read_dir(spool.path()).unwrap().count() == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the spooled output was not deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_still_queued_when_it_expires_never_runs_and_counts_as_expired() {
    let (gate, runs) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let server =
        TestServer::start(&["--result-ttl", "1"], scripted(gate.clone(), runs.clone())).await;
    // The one worker is busy while the second job waits out its TTL.
    let (status, _) = json(post(&server.v2(), &json!({"image": input("wait")})).await).await;
    assert_eq!(status, StatusCode::OK);
    until("the first job runs", || runs.load(Ordering::SeqCst) == 1).await;
    let (_, late) = json(post(&server.v2(), &json!({"image": input("late")})).await).await;
    assert_eq!(queued(&server).await, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    gate.open();

    let expired = r#"upres_jobs_total{api="v2",outcome="expired"} "#;
    for _ in 0..200 {
        let page = text(&format!("{}/metrics", server.url)).await;
        if let Some(line) = page.lines().find(|line| line.starts_with(expired)) {
            assert_eq!(line, format!("{expired}1"));
            assert_eq!(runs.load(Ordering::SeqCst), 1, "the expired job ran");
            let (status, _) = json(
                client()
                    .get(late["status_url"].as_str().unwrap())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no expired job in /metrics");
}
