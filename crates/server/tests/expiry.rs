//! Jobs expire an hour after submission: with Tokio's clock paused and advanced, the status,
//! the result and the output become 404, and a spooled output file is deleted.

mod common;

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
