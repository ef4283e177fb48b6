//! A job's finish (encoding its output) runs after its engine worker and its place are
//! released: the next job's model runs meanwhile, and with one worker at most one output
//! waits to be encoded.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use upres_server::{Finish, JobError, JobSpec, Upscaler};

/// Counts model stages; a job whose input is `b"slow"` waits at the gate in its finish.
struct SlowFinish {
    gate: Gate,
    models: Arc<AtomicUsize>,
}

impl Upscaler for SlowFinish {
    fn run(&self, input: &[u8], _: &JobSpec) -> Result<Finish, JobError> {
        self.models.fetch_add(1, Ordering::SeqCst);
        let (gate, input) = (self.gate.clone(), input.to_vec());
        Ok(Finish::later(move || {
            if input == b"slow" {
                gate.wait();
            }
            Ok(input)
        }))
    }
}

/// A one-worker server running [`SlowFinish`], its gate and its count of model stages.
async fn start() -> (TestServer, Gate, Arc<AtomicUsize>) {
    let (gate, models) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let upscaler = Arc::new(SlowFinish {
        gate: gate.clone(),
        models: models.clone(),
    });
    let server = TestServer::start(&["--workers", "1"], upscaler).await;
    (server, gate, models)
}

async fn status(job: &Value) -> String {
    let (_, body) = get_json(job["status_url"].as_str().unwrap()).await;
    body["status"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_job_runs_its_model_while_one_encodes() {
    let (server, gate, models) = start().await;
    let submit = |word: &str| {
        let (server, body) = (&server, json!({"image": input(word)}));
        async move { server.post_json(&server.v2(), &body).await.1 }
    };

    let encoding = submit("slow").await;
    until("the first model stage", || {
        models.load(Ordering::SeqCst) == 1
    })
    .await;
    // The first job is encoding: the second one's model runs on the one worker meanwhile, then
    // it waits for the encoder, keeping its place, so the third one stays queued.
    let second = submit("fast").await;
    until("the second model stage", || {
        models.load(Ordering::SeqCst) == 2
    })
    .await;
    let third = submit("fast").await;
    // Kept: a check that nothing more happens (no third model stage) for a while.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(queued(&server).await, 1);
    assert_eq!(
        models.load(Ordering::SeqCst),
        2,
        "one output waits, no more"
    );
    let states = [
        status(&encoding).await,
        status(&second).await,
        status(&third).await,
    ];
    assert_eq!(states, ["PROCESSING", "PROCESSING", "QUEUED"]);

    gate.open();
    for job in [&encoding, &second, &third] {
        let done = wait_terminal(job["status_url"].as_str().unwrap()).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_job_that_is_encoding() {
    let (server, gate, models) = start().await;
    let url = server.v1();
    let encoding = tokio::spawn(async move { post(&url, &json!({"image": input("slow")})).await });
    until("the model stage", || models.load(Ordering::SeqCst) == 1).await;

    let stopped = server.shut_down();
    // Kept: a check that nothing happens (the server does not stop) for a while.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopped.is_finished(),
        "the server must wait for the encoding job"
    );
    gate.open();
    let response = encoding.await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), "slow");
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
