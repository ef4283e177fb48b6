//! The v2 job contract, run against both stores: this process's memory, and two replicas
//! sharing a Redis of the test's own (a real redis-server on a free port) and a blob folder,
//! where a job submitted to one is polled and fetched on the other. Then what only a cluster
//! does: riding out a Redis restart.

mod common;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};
use upres_server::Upscaler;

/// Where the jobs of a test live.
enum Backend {
    Memory,
    Redis {
        redis: RedisServer,
        blobs: tempfile::TempDir,
        /// Through the unix socket instead of TCP.
        socket: bool,
    },
}

impl Backend {
    /// `None` when the backend cannot run here (redis-server missing, outside CI).
    fn new(redis: bool) -> Option<Self> {
        if !redis {
            return Some(Backend::Memory);
        }
        Some(Backend::Redis {
            redis: RedisServer::start()?,
            blobs: tempfile::tempdir().unwrap(),
            socket: false,
        })
    }

    fn flags(&self, extra: &[&str]) -> Vec<String> {
        let mut flags: Vec<String> = extra.iter().map(|f| f.to_string()).collect();
        if let Backend::Redis {
            redis,
            blobs,
            socket,
        } = self
        {
            flags.extend([
                "--redis-url".into(),
                if *socket {
                    redis.socket_url()
                } else {
                    redis.url()
                },
                "--blob-store".into(),
                format!("file://{}", blobs.path().display()),
                "--lease".into(),
                "2".into(),
            ]);
        }
        flags
    }

    /// Two servers on the jobs: replicas of one cluster, or (in memory) the same server twice.
    async fn replicas(
        &self,
        extra: &[&str],
        upscaler: Arc<dyn Upscaler>,
    ) -> (TestServer, Option<TestServer>) {
        let flags = self.flags(extra);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let first = TestServer::start(&flags, upscaler.clone()).await;
        let second = match self {
            Backend::Memory => None,
            Backend::Redis { .. } => Some(TestServer::start(&flags, upscaler).await),
        };
        (first, second)
    }
}

/// Declares the contract test `name` for both stores.
macro_rules! contract {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                if let Some(backend) = super::Backend::new(false) {
                    super::$name(backend).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                if let Some(backend) = super::Backend::new(true) {
                    super::$name(backend).await;
                }
            }
        }
    };
}

fn echo() -> Arc<dyn Upscaler> {
    scripted(Gate::default(), Arc::default())
}

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

contract!(a_job_completes_and_any_replica_answers_for_it);
async fn a_job_completes_and_any_replica_answers_for_it(backend: Backend) {
    let (a, b) = backend.replicas(&[], echo()).await;
    let b = b.as_ref().unwrap_or(&a);
    let (status, submitted) = a
        .post_json(&a.v2(), &json!({"image": input("hello")}))
        .await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    assert_eq!(submitted["status"], "QUEUED");
    let id = submitted["request_id"].as_str().unwrap();
    let done = wait_terminal(&format!("{}/v2/requests/{id}/status", b.url)).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    for name in ["queue_time", "inference_time", "total_time"] {
        assert!(done["metrics"][name].as_f64().unwrap() >= 0.0, "{done}");
    }
    let (status, result) = b.get_json(&format!("/v2/requests/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["error"], Value::Null);
    let output = result["output"].as_str().unwrap();
    assert!(output.starts_with(&b.url), "{output}");
    let png = get(output).await;
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(png.bytes().await.unwrap(), "hello".as_bytes());
    // The submitting replica answers the same.
    let (_, again) = a.get_json(&format!("/v2/requests/{id}")).await;
    assert_eq!(again["status"], "COMPLETED");
}

/// `unix:///path` URLs reach Redis through its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_can_reach_redis_through_a_unix_socket() {
    if let Some(Backend::Redis { redis, blobs, .. }) = Backend::new(true) {
        let backend = Backend::Redis {
            redis,
            blobs,
            socket: true,
        };
        a_job_completes_and_any_replica_answers_for_it(backend).await;
    }
}

contract!(a_failed_fetch_fails_the_job_with_its_reason);
async fn a_failed_fetch_fails_the_job_with_its_reason(backend: Backend) {
    let host = image_host(png(4, 4, false)).await;
    let (a, b) = backend.replicas(&["--allow-private-urls"], echo()).await;
    let b = b.as_ref().unwrap_or(&a);
    let (_, submitted) = a
        .post_json(&a.v2(), &json!({"image": format!("{host}/missing")}))
        .await;
    let id = submitted["request_id"].as_str().unwrap();
    let failed = wait_terminal(&format!("{}/v2/requests/{id}/status", b.url)).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"].as_str().unwrap().contains("404"),
        "{failed}"
    );
    let answer = get(&format!("{}/v2/requests/{id}", b.url)).await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let output = get(&format!("{}/outputs/{id}.png", b.url)).await;
    assert_eq!(output.status(), StatusCode::NOT_FOUND);
}

contract!(a_panicking_job_fails_alone);
async fn a_panicking_job_fails_alone(backend: Backend) {
    let (a, b) = backend.replicas(&[], echo()).await;
    let b = b.as_ref().unwrap_or(&a);
    let (_, crashed) = a
        .post_json(&a.v2(), &json!({"image": input("panic")}))
        .await;
    let (_, fine) = a.post_json(&a.v2(), &json!({"image": input("fine")})).await;
    let status = |job: &Value| {
        format!(
            "{}/v2/requests/{}/status",
            b.url,
            job["request_id"].as_str().unwrap()
        )
    };
    let crashed = wait_terminal(&status(&crashed)).await;
    assert_eq!(crashed["status"], "FAILED");
    assert!(
        crashed["error"]
            .as_str()
            .unwrap()
            .contains("scripted panic"),
        "{crashed}"
    );
    assert_eq!(wait_terminal(&status(&fine)).await["status"], "COMPLETED");
}

contract!(unknown_ids_are_404);
async fn unknown_ids_are_404(backend: Backend) {
    let (a, _) = backend.replicas(&[], echo()).await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/v2/requests/{unknown}/status"),
        format!("/v2/requests/{unknown}"),
        format!("/outputs/{unknown}.png"),
        "/v2/requests/not-a-uuid/status".to_string(),
    ] {
        let answer = get(&format!("{}{path}", a.url)).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

contract!(jobs_expire_everywhere_after_the_ttl);
async fn jobs_expire_everywhere_after_the_ttl(backend: Backend) {
    let (a, b) = backend.replicas(&["--result-ttl", "1.5"], echo()).await;
    let b = b.as_ref().unwrap_or(&a);
    let (_, submitted) = a
        .post_json(&a.v2(), &json!({"image": input("short-lived")}))
        .await;
    let id = submitted["request_id"].as_str().unwrap().to_string();
    let done = wait_terminal(&format!("{}/v2/requests/{id}/status", b.url)).await;
    assert_eq!(done["status"], "COMPLETED");
    // Kept: the TTL runs out on Redis's own clock (PEXPIRE in redis-server) for the cluster,
    // so real time must pass (the memory store's expiry on the paused clock is in expiry.rs).
    tokio::time::sleep(Duration::from_millis(1700)).await;
    for server in [&a, b] {
        for path in [
            format!("/v2/requests/{id}/status"),
            format!("/outputs/{id}.png"),
        ] {
            let answer = get(&format!("{}{path}", server.url)).await;
            assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
    if let Backend::Redis { redis, blobs, .. } = &backend {
        assert_eq!(redis.count_keys("upres:job:*"), 0, "job records left");
        // The sweeper runs every second at this TTL.
        let started = Instant::now();
        while count_files(blobs.path()) > 0 {
            assert!(started.elapsed() < Duration::from_secs(5), "blobs left");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn wait_until_processing(status_url: &str) {
    let started = Instant::now();
    while get_json(status_url).await.1["status"] != "PROCESSING" {
        assert!(started.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens the gate when dropped.
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .flat_map(|e| match e.path().is_dir() {
                    true => walk(&e.path()),
                    false => vec![e.path()],
                })
                .collect()
        })
        .unwrap_or_default()
}

contract!(a_full_queue_answers_429_with_retry_after);
async fn a_full_queue_answers_429_with_retry_after(backend: Backend) {
    let gate = Gate::default();
    let upscaler = scripted(gate.clone(), Arc::new(AtomicUsize::new(0)));
    let (a, b) = backend.replicas(&["--queue-depth", "1"], upscaler).await;
    // Whatever happens, the blocked jobs are let go at the end (the runtime waits for them).
    let _release = OpenOnDrop(gate.clone());
    // Memory: one running, one waiting. A cluster of two: one running on each, one waiting.
    // Each job is running before the next is sent: a waiting one would fill the queue.
    let running = if b.is_some() { 2 } else { 1 };
    let mut admitted = Vec::new();
    for _ in 0..running {
        let (status, job) = a.post_json(&a.v2(), &json!({"image": input("wait")})).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        wait_until_processing(&format!(
            "{}/v2/requests/{}/status",
            a.url,
            job["request_id"].as_str().unwrap()
        ))
        .await;
        admitted.push(job);
    }
    let (status, waiting) = a.post_json(&a.v2(), &json!({"image": input("wait")})).await;
    assert_eq!(status, StatusCode::OK, "{waiting}");
    // Both stores have queued it before they answer the submit (a cluster stores its input,
    // then makes its record and its stream entry in one step).
    let (_, queued) = get_json(waiting["status_url"].as_str().unwrap()).await;
    assert_eq!(queued["status"], "QUEUED", "{queued}");
    let refused = post(&a.v2(), &json!({"image": input("fine")})).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    gate.open();
    admitted.push(waiting);
    for job in &admitted {
        let url = format!(
            "{}/v2/requests/{}/status",
            a.url,
            job["request_id"].as_str().unwrap()
        );
        assert_eq!(wait_terminal(&url).await["status"], "COMPLETED");
    }
}

/// Redis goes away: submits get 503 with Retry-After at once, /health says why; when it is
/// back (same data) the replica carries on by itself and the job submitted before finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_503_then_heals_by_itself() {
    let Some(mut redis) = RedisServer::start_durable() else {
        return;
    };
    let blobs = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let upscaler = scripted(gate.clone(), Arc::default());
    let blob_store = format!("file://{}", blobs.path().display());
    let url = redis.url();
    let flags = [
        "--redis-url",
        &url,
        "--blob-store",
        &blob_store,
        "--lease",
        "2",
    ];
    let server = TestServer::start(&flags, upscaler).await;
    let (_, before) = server
        .post_json(&server.v2(), &json!({"image": input("wait")}))
        .await;
    let status_url = before["status_url"].as_str().unwrap().to_string();
    wait_until_processing(&status_url).await;

    redis.stop();
    let asked = Instant::now();
    let refused = post(&server.v2(), &json!({"image": input("fine")})).await;
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "took {:?}",
        asked.elapsed()
    );
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let (status, health) = server.get_json("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        health["error"].as_str().unwrap().contains("job store"),
        "{health}"
    );

    redis.restart();
    gate.open();
    let back = Instant::now();
    loop {
        let answer = post(&server.v2(), &json!({"image": input("after")})).await;
        if answer.status() == StatusCode::OK {
            let (_, job) = json(answer).await;
            let done = wait_terminal(job["status_url"].as_str().unwrap()).await;
            assert_eq!(done["status"], "COMPLETED");
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("recovered {:?} after Redis came back", back.elapsed());
    assert_eq!(wait_terminal(&status_url).await["status"], "COMPLETED");
    assert_eq!(
        get(&format!("{}/health", server.url)).await.status(),
        StatusCode::OK
    );
}
