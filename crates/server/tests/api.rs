//! The HTTP contract over real sockets, with a scripted upscaler standing in for the engine's
//! pixel work (the engine itself is exercised in engine.rs and sdk.rs).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn echo() -> Arc<dyn upres_server::Upscaler> {
    scripted(Gate::default(), Arc::default())
}

async fn open_server() -> TestServer {
    TestServer::start(&[], echo()).await
}

#[tokio::test]
async fn v1_returns_the_image_with_accounting_and_timing_headers() {
    let server = open_server().await;
    let response = post(
        &server.v1(),
        &json!({"image": input("pixels"), "desired_increase": 2}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-request-id"].len(), 36);
    for name in [
        "x-remaining-credits",
        "x-queue-time",
        "x-inference-time",
        "x-total-time",
        "server-timing",
    ] {
        assert!(headers.contains_key(name), "missing {name}");
    }
    assert_eq!(response.bytes().await.unwrap(), "pixels");

    // The alias without /v1, and the base64 extension.
    let (status, body) = server
        .post_json(
            &format!("/{SLUG}"),
            &json!({"image": input("alias"), "base64": true}),
        )
        .await;
    assert_eq!(
        (status, body["image"].as_str()),
        (StatusCode::OK, Some("YWxpYXM="))
    );
}

#[tokio::test]
async fn v2_job_goes_from_submit_to_output() {
    let server = open_server().await;
    let (status, submitted) = send_json(
        client()
            .post(server.v2())
            .header("host", "upres.test:9999")
            .header("x-forwarded-proto", "https")
            .json(&json!({"image": input("result")})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(submitted["status"], "QUEUED");
    let id = submitted["request_id"].as_str().unwrap();
    assert_eq!(
        submitted["status_url"],
        format!("https://upres.test:9999/v2/requests/{id}/status")
    );
    assert_eq!(
        submitted["response_url"],
        format!("https://upres.test:9999/v2/requests/{id}")
    );
    assert_eq!(
        submitted["poll_url"],
        format!("https://upres.test:9999/v1/requests/{id}")
    );

    let done = wait_terminal(&format!("{}/v2/requests/{id}/status", server.url)).await;
    assert_eq!(done["status"], "COMPLETED");
    for path in [format!("/v2/requests/{id}"), format!("/v1/requests/{id}")] {
        let (status, result) = server.get_json(&path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(result["status"], "COMPLETED");
        assert!(result["error"].is_null());
        assert_eq!(result["output"], format!("{}/outputs/{id}.png", server.url));
        for metric in ["queue_time", "inference_time", "total_time"] {
            assert!(
                result["metrics"][metric].as_f64().is_some(),
                "{metric} in {result}"
            );
        }
        let output = client()
            .get(result["output"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(output.headers()["content-type"], "image/png");
        assert_eq!(output.bytes().await.unwrap(), "result");
    }
}

#[tokio::test]
async fn public_url_sets_the_returned_urls() {
    let server =
        TestServer::start(&["--public-url", "https://upres.example.org/base/"], echo()).await;
    let (_, submitted) = server
        .post_json(&server.v2(), &json!({"image": input("x")}))
        .await;
    let id = submitted["request_id"].as_str().unwrap();
    assert_eq!(
        submitted["status_url"],
        format!("https://upres.example.org/base/v2/requests/{id}/status")
    );
}

#[tokio::test]
async fn api_keys_are_required_except_for_outputs_and_health() {
    let server = TestServer::start(&["--api-keys", "k1,k2"], echo()).await;
    let body = json!({"image": input("secret")});
    let (status, error) = server.post_json(&server.v2(), &body).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Missing Authorization or x-api-key in header")
        )
    );
    let as_key = |key: &str| {
        client()
            .post(server.v2())
            .header("x-api-key", key)
            .json(&body)
    };
    let (status, error) = send_json(as_key("k3")).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Unauthorized. API key is invalid or may have expired")
        )
    );
    let (status, submitted) = send_json(as_key("k2")).await;
    assert_eq!(status, StatusCode::OK);

    let status_url = submitted["status_url"].as_str().unwrap();
    let (status, _) = get_json(status_url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "polls need the key too");
    let bearer = client()
        .get(status_url)
        .header("authorization", "Bearer k1");
    assert_eq!(bearer.send().await.unwrap().status(), StatusCode::OK);

    wait_terminal_as(status_url, Some("k1")).await;
    let polled = client()
        .get(submitted["response_url"].as_str().unwrap())
        .header("x-api-key", "k1");
    let (_, result) = send_json(polled).await;
    let output = result["output"]
        .as_str()
        .unwrap_or_else(|| panic!("job did not complete: {result}"));
    let image = client().get(output).send().await.unwrap();
    assert_eq!(image.status(), StatusCode::OK, "outputs need no key");
    assert_eq!(
        client()
            .get(format!("{}/health", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn routing_errors_are_json() {
    let server = open_server().await;
    let body = json!({"image": input("x")});
    let (status, error) = server.post_json("/v1/some-other-model", &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("some-other-model"));
    let (status, error) = server.get_json(&server.v1()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error["error"].as_str().unwrap().contains("GET"));
    let (status, _) = server.get_json("/no/such/path").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for id in ["0879f309-e5db-4171-8231-048393f03449", "not-a-uuid"] {
        let (status, error) = server.get_json(&format!("/v2/requests/{id}")).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (
                StatusCode::NOT_FOUND,
                Some(&*format!("Request {id} not found"))
            )
        );
    }
    let (status, _) = server.get_json("/outputs/nothing.png").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_requests_get_400_406_413_naming_the_problem() {
    let server = TestServer::start(&["--max-body-bytes", "1000"], echo()).await;
    for url in [server.v1(), server.v2()] {
        let (status, error) = server
            .post_json(&url, &json!({"image": input("x"), "desired_increase": 3}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error["error"],
            "invalid 'desired_increase': must be 2 or 4, got 3"
        );
        let (status, error) = server
            .post_json(&url, &json!({"desired_increase": 2}))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some("missing required field 'image'")
            )
        );

        let malformed = client()
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"image\": ");
        let (status, error) = send_json(malformed).await;
        assert_error(status, &error, StatusCode::BAD_REQUEST, |m| {
            m.starts_with("malformed JSON")
        });

        let (status, error) = send_json(client().post(&url).body("image=x")).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::NOT_ACCEPTABLE, Some("Invalid content type"))
        );

        let huge = json!({"image": "A".repeat(5000)});
        let (status, error) = server.post_json(&url, &huge).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            error["error"].as_str().unwrap().contains("1000 bytes"),
            "{error}"
        );

        let (status, error) = server
            .post_json(&url, &json!({"image": "this is not base64!"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            error["error"].as_str().unwrap().contains("'image'"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn oversized_body_without_content_length_is_cut_off() {
    let server = TestServer::start(&["--max-body-bytes", "1000"], echo()).await;
    let chunks = futures::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 100])));
    let response = client()
        .post(server.v1())
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn full_queue_answers_429_with_retry_after() {
    let gate = Gate::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(
        &["--workers", "1", "--queue-depth", "1"],
        scripted(gate.clone(), runs.clone()),
    )
    .await;
    let (_, running) = server
        .post_json(&server.v2(), &json!({"image": input("wait")}))
        .await;
    until("first job running", || runs.load(Ordering::SeqCst) == 1).await;
    let (status, queued) = server
        .post_json(&server.v2(), &json!({"image": input("queued")}))
        .await;
    assert_eq!(status, StatusCode::OK);

    for url in [server.v2(), server.v1()] {
        let response = post(&url, &json!({"image": input("rejected")})).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1);
        let (_, error) = json(response).await;
        assert!(
            error["error"].as_str().unwrap().contains("queue is full"),
            "{error}"
        );
    }
    // Polls are never refused.
    let poll = client()
        .get(running["status_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), StatusCode::OK);

    gate.open();
    for job in [running, queued] {
        assert_eq!(
            wait_terminal(job["status_url"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_panicking_job_fails_alone() {
    let runs = Arc::new(AtomicUsize::new(0));
    let server =
        TestServer::start(&["--workers", "2"], scripted(Gate::default(), runs.clone())).await;
    let (panics, works) = (
        json!({"image": input("panic")}),
        json!({"image": input("fine")}),
    );
    let (crashed, fine) = tokio::join!(run_v2(&server, &panics), run_v2(&server, &works));
    assert_eq!(crashed["status"], "FAILED");
    assert_eq!(crashed["error"], "the job crashed: scripted panic");
    assert_eq!(fine["status"], "COMPLETED");

    let (status, error) = server
        .post_json(&server.v1(), &json!({"image": input("panic")}))
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("the job crashed: scripted panic")
        )
    );
    // Both workers still serve.
    let (first, second) = (json!({"image": input("a")}), json!({"image": input("b")}));
    let (a, b) = tokio::join!(run_v2(&server, &first), run_v2(&server, &second));
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("COMPLETED"), Some("COMPLETED"))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_v1_request_past_its_deadline_gets_504_and_its_job_is_dropped() {
    let gate = Gate::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(
        &["--workers", "1", "--sync-deadline", "0.3"],
        scripted(gate.clone(), runs.clone()),
    )
    .await;
    let (_, blocker) = server
        .post_json(&server.v2(), &json!({"image": input("wait")}))
        .await;
    until("blocker running", || runs.load(Ordering::SeqCst) == 1).await;
    let (status, error) = server
        .post_json(&server.v1(), &json!({"image": input("late")}))
        .await;
    assert_error(status, &error, StatusCode::GATEWAY_TIMEOUT, |m| {
        m.contains("sync deadline of 0.3 s")
    });

    assert_dropped_job_never_runs(&server, &gate, &blocker, &runs, "the timed-out job").await;
}

#[tokio::test]
async fn a_v1_client_that_disconnects_stops_its_queued_job() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gate = Gate::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(&["--workers", "1"], scripted(gate.clone(), runs.clone())).await;
    let (_, blocker) = server
        .post_json(&server.v2(), &json!({"image": input("wait")}))
        .await;
    until("blocker running", || runs.load(Ordering::SeqCst) == 1).await;

    // The impatient client on a socket of its own, so that it can tell when the server has
    // dropped its request.
    let address = server.url.trim_start_matches("http://").to_string();
    let mut impatient = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = json!({"image": input("gone")}).to_string();
    let request = format!(
        "POST /v1/{SLUG} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    impatient.write_all(request.as_bytes()).await.unwrap();
    for _ in 0..200 {
        if queued(&server).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(queued(&server).await, 1, "the v1 job should be waiting");
    // It disconnects (its FIN is all the server sees of a close); the server closing its end
    // says that it has dropped the request, and with it the job's reply.
    impatient.shutdown().await.unwrap();
    let mut unanswered = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        impatient.read_to_end(&mut unanswered),
    )
    .await
    .expect("the server kept the connection of a client that left")
    .unwrap();
    assert!(unanswered.is_empty(), "answered: {unanswered:?}");
    drop(impatient);

    assert_dropped_job_never_runs(&server, &gate, &blocker, &runs, "the abandoned job").await;
}

/// Releases the blocking job, runs one more job to completion and checks only those two ran.
/// FIFO: had the dropped job not been dropped, it would have run before the last one.
async fn assert_dropped_job_never_runs(
    server: &TestServer,
    gate: &Gate,
    blocker: &serde_json::Value,
    runs: &AtomicUsize,
    dropped: &str,
) {
    gate.open();
    wait_terminal(blocker["status_url"].as_str().unwrap()).await;
    assert_eq!(
        run_v2(server, &json!({"image": input("after")})).await["status"],
        "COMPLETED"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "{dropped} must not run");
}

#[tokio::test]
async fn shutdown_lets_the_running_job_finish_then_stops() {
    let gate = Gate::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(&["--workers", "1"], scripted(gate.clone(), runs.clone())).await;
    let (url, base) = (server.v1(), server.url.clone());
    let running = tokio::spawn(async move { post(&url, &json!({"image": input("wait")})).await });
    until("job running", || runs.load(Ordering::SeqCst) == 1).await;

    let stopped = server.shut_down();
    // Kept: a check that nothing happens (the server does not stop) for a while.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopped.is_finished(),
        "the server must wait for the running job"
    );
    gate.open();
    let response = running.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), "wait");
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        client().get(format!("{base}/health")).send().await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn health_is_503_until_the_model_is_loaded() {
    struct SlowToLoad(Gate);
    impl upres_server::Upscaler for SlowToLoad {
        fn warm_up(&self, _model: &str) -> Result<(), upres_server::JobError> {
            self.0.wait();
            Ok(())
        }
        fn run(
            &self,
            input: &[u8],
            _: &upres_server::JobSpec,
        ) -> Result<upres_server::Finish, upres_server::JobError> {
            Ok(input.to_vec().into())
        }
    }
    let gate = Gate::default();
    let server = TestServer::start(
        &["--model", "esrgan-slim"],
        Arc::new(SlowToLoad(gate.clone())),
    )
    .await;
    let (status, body) = server.get_json("/health").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("not ready: model esrgan-slim is loading")
        )
    );
    gate.open();
    until("ready", || {
        matches!(server.state.readiness(), upres_server::Readiness::Ready)
    })
    .await;
    let (status, body) = server.get_json("/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model"], "esrgan-slim");
}

#[tokio::test]
async fn a_stalled_client_does_not_hold_up_others() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(&["--body-timeout", "0.5"], echo()).await;
    let address = server.url.trim_start_matches("http://").to_string();
    // Headers promise a body that never comes.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v1/{SLUG} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"image\""
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let others = tokio::time::timeout(Duration::from_secs(5), async {
        for word in ["one", "two", "three"] {
            let response = post(&server.v1(), &json!({"image": input(word)})).await;
            assert_eq!(response.bytes().await.unwrap(), word);
        }
    });
    others.await.expect("other clients were held up");
    // The stalled request itself is answered 408 once the body timeout passes.
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stalled, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("timed out receiving the request body"),
        "{answer}"
    );
}

#[tokio::test]
async fn http2_without_tls_works_beside_http1() {
    let server = open_server().await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .post(server.v1())
        .json(&json!({"image": input("over h2c")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), "over h2c");
    let http1 = client()
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(http1.version(), reqwest::Version::HTTP_11);
}

/// The playground's files are built in, open without a key, and sent with a CSP that allows
/// nothing from elsewhere (the browser test in browser.rs runs the page itself).
#[tokio::test]
async fn playground_is_served_with_a_strict_content_security_policy() {
    let server = TestServer::start(&["--api-keys", "k1"], echo()).await;
    for (path, kind, contains) in [
        ("/", "text/html", "/playground/app.js"),
        ("/playground/app.js", "text/javascript", "/v1/"),
        ("/playground/app.css", "text/css", ".compare"),
    ] {
        let response = client()
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(response.text().await.unwrap().contains(contains), "{path}");
    }
}
