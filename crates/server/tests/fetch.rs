//! Downloading `image` URLs from a tiny image host on 127.0.0.1: refused by default (the host
//! is loopback), allowed with --allow-private-urls, with limits on redirects and size.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn echo() -> Arc<dyn upres_server::Upscaler> {
    scripted(Gate::default(), Arc::default())
}

/// v1's 400 message and v2's FAILED message for the same image.
async fn both_errors(server: &TestServer, image: &str) -> (String, String) {
    let (status, error) = server
        .post_json(&server.v1(), &json!({ "image": image }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let failed = run_v2(server, &json!({ "image": image })).await;
    assert_eq!(failed["status"], "FAILED");
    (
        error["error"].as_str().unwrap().to_string(),
        failed["error"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn private_destinations_are_refused_by_default() {
    let host = image_host(b"image bytes".to_vec()).await;
    let server = TestServer::start(&[], echo()).await;
    let port = host.rsplit(':').next().unwrap();

    let literal = format!("{host}/img.png");
    let (v1, v2) = both_errors(&server, &literal).await;
    let expected = format!(
        "refused to fetch {literal}: 127.0.0.1 is a loopback address (start the server with --allow-private-urls to permit it)"
    );
    assert_eq!(
        (v1.as_str(), v2.as_str()),
        (expected.as_str(), expected.as_str())
    );

    // A host name is checked on the addresses it resolves to.
    let named = format!("http://localhost:{port}/img.png");
    let (v1, _) = both_errors(&server, &named).await;
    assert!(
        v1.contains("localhost resolves to") && v1.contains("loopback"),
        "{v1}"
    );

    for other in [
        "http://[::1]:9/x.png",
        "http://10.0.0.1/x.png",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let (v1, _) = both_errors(&server, other).await;
        assert!(v1.starts_with("refused to fetch"), "{v1}");
    }
    // A scheme other than http(s) is refused before the job is admitted, on v2 too.
    for url in [server.v1(), server.v2()] {
        let (status, error) = server
            .post_json(&url, &json!({"image": "ftp://example.org/x.png"}))
            .await;
        assert_error(status, &error, StatusCode::BAD_REQUEST, |m| {
            m.contains("scheme 'ftp' is not allowed")
        });
    }
}

#[tokio::test]
async fn allowed_private_urls_download_follow_few_redirects_and_respect_limits() {
    let host = image_host(b"image bytes".to_vec()).await;
    let flags = [
        "--allow-private-urls",
        "--fetch-max-redirects",
        "3",
        "--max-input-bytes",
        "100000",
    ];
    let server = TestServer::start(&flags, echo()).await;

    for path in ["/img.png", "/hop/3"] {
        let response = post(&server.v1(), &json!({"image": format!("{host}{path}")})).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.bytes().await.unwrap(), "image bytes");
    }
    let done = run_v2(&server, &json!({"image": format!("{host}/hop/1")})).await;
    assert_eq!(done["status"], "COMPLETED");

    let (v1, v2) = both_errors(&server, &format!("{host}/missing")).await;
    assert_eq!(
        (v1.as_str(), v2.as_str()),
        ("Failed to download image from URL (HTTP 404)", v1.as_str())
    );
    let (v1, _) = both_errors(&server, &format!("{host}/hop/4")).await;
    assert!(v1.contains("more than 3 redirects"), "{v1}");
    let (v1, _) = both_errors(&server, &format!("{host}/to-file")).await;
    assert_eq!(
        v1,
        "Failed to download image from URL (HTTP 302: redirect to file:///etc/passwd not followed)"
    );
    let (v1, _) = both_errors(&server, &format!("{host}/big")).await;
    assert!(v1.contains("larger than the limit of 100000 bytes"), "{v1}");

    // Nothing listens on port 9 (discard) here.
    let (v1, _) = both_errors(&server, "http://127.0.0.1:9/x.png").await;
    assert!(
        v1.starts_with("Failed to download image from URL ("),
        "{v1}"
    );
}
