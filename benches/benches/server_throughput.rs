//! Server throughput under concurrency: the real server (in this process, on its own Tokio
//! runtime, the real engine and the default model unless UPRES_MODEL says otherwise, default
//! workers and threads) on a 127.0.0.1 socket, driven by real HTTP clients on another runtime.
//! Per image size and API (v1: the PNG in the answer; v2: submit, poll the status, read the
//! result, download the output), one client sending its requests one after another
//! (single-stream) against UPRES_BENCH_CLIENTS (default 16) clients at once. Every client
//! alternates between the image inline (a base64 data: URI) and as a URL on a local 127.0.0.1
//! file server, so downloads are part of the work. Throughput is images per second from the
//! phase's start to its last answer; each round runs both phases back to back (in alternating
//! order), and the ratio is taken per round, so drift in machine speed cancels out. Each round
//! also times the job's steps in this process, one after another: decode, the engine's upscale
//! (model-only: the ceiling for the server's images per second) and the PNG encode.
//!
//! `cargo bench -p upres-benches --bench server_throughput` (after scripts/setup.sh). Env:
//! UPRES_BENCH_SIZES (default 128,512), UPRES_BENCH_SCALE (default 4), UPRES_BENCH_ROUNDS
//! (default 3), UPRES_BENCH_CLIENTS (default 16), UPRES_BENCH_REQUESTS (per concurrent client
//! and round, default 2), UPRES_BENCH_SINGLE (single-stream requests per round, default 4),
//! UPRES_BENCH_POLL_MS (v2 status polling interval, default 50); the server's own settings
//! through its UPRES_* variables (UPRES_MODEL, UPRES_WORKERS, UPRES_THREADS, ...).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use upres_benches::{env_list, env_or, file_server, median, photo_crop, serve_args, start_server};
use upres_engine::{Engine, OutputFormat, UpscaleRequest};

#[derive(Clone, Copy, Debug)]
enum Api {
    V1,
    V2,
}

/// What the clients send for one image: JSON bodies with the image inline and as a URL.
struct Bodies {
    inline: Bytes,
    url: Bytes,
    /// The output's width and height.
    expected: (u32, u32),
}

impl Bodies {
    /// The body of request `n` of client `client`: inline and URL alternate.
    fn pick(&self, client: usize, n: usize) -> Bytes {
        if (client + n).is_multiple_of(2) {
            self.inline.clone()
        } else {
            self.url.clone()
        }
    }
}

struct Target {
    server: String,
    api: Api,
    poll: Duration,
    /// 429 answers (queue full), retried.
    refused: AtomicUsize,
}

/// Width and height from a PNG's IHDR.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

async fn checked(response: reqwest::Response) -> reqwest::Response {
    let status = response.status();
    if !status.is_success() {
        panic!("{status}: {}", response.text().await.unwrap_or_default());
    }
    response
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = checked(client.get(url).send().await.unwrap()).await;
    response.json().await.unwrap()
}

/// POSTs `body` to `url`, retrying while the queue is full.
async fn post(
    client: &reqwest::Client,
    target: &Target,
    url: &str,
    body: Bytes,
) -> reqwest::Response {
    loop {
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
            return checked(response).await;
        }
        target.refused.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One image through the API, to the output PNG's bytes.
async fn upscale_once(client: &reqwest::Client, target: &Target, body: Bytes) -> Bytes {
    let slug = upres_server::MODEL_SLUG;
    match target.api {
        Api::V1 => {
            let url = format!("{}/v1/{slug}", target.server);
            post(client, target, &url, body)
                .await
                .bytes()
                .await
                .unwrap()
        }
        Api::V2 => {
            let url = format!("{}/v2/{slug}", target.server);
            let submitted: Value = post(client, target, &url, body).await.json().await.unwrap();
            let status_url = submitted["status_url"].as_str().unwrap();
            loop {
                let status = get_json(client, status_url).await;
                match status["status"].as_str() {
                    Some("COMPLETED") => break,
                    Some("QUEUED" | "PROCESSING") => tokio::time::sleep(target.poll).await,
                    _ => panic!("job failed: {status}"),
                }
            }
            let result = get_json(client, submitted["response_url"].as_str().unwrap()).await;
            let output = result["output"].as_str().unwrap();
            checked(client.get(output).send().await.unwrap())
                .await
                .bytes()
                .await
                .unwrap()
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `clients` clients sending `requests` images each, one after another; images per second
/// from the start to the last answer.
fn phase(
    runtime: &Runtime,
    target: &Arc<Target>,
    bodies: &Arc<Bodies>,
    clients: usize,
    requests: usize,
) -> f64 {
    runtime.block_on(async {
        let started = Instant::now();
        let loops = (0..clients).map(|c| {
            let (target, bodies) = (target.clone(), bodies.clone());
            tokio::spawn(async move {
                let client = client();
                for n in 0..requests {
                    let png = upscale_once(&client, &target, bodies.pick(c, n)).await;
                    assert_eq!(png_size(&png), bodies.expected, "output size");
                }
            })
        });
        for done in futures::future::join_all(loops).await {
            done.unwrap();
        }
        (clients * requests) as f64 / started.elapsed().as_secs_f64()
    })
}

fn main() {
    let sizes: Vec<u32> = env_list("UPRES_BENCH_SIZES").unwrap_or(vec![128, 512]);
    let scale: u32 = env_or("UPRES_BENCH_SCALE", 4);
    let rounds: usize = env_or("UPRES_BENCH_ROUNDS", 3);
    let clients: usize = env_or("UPRES_BENCH_CLIENTS", 16);
    let requests: usize = env_or("UPRES_BENCH_REQUESTS", 2);
    let single: usize = env_or("UPRES_BENCH_SINGLE", 4);
    let poll = Duration::from_millis(env_or("UPRES_BENCH_POLL_MS", 50));

    // v1 clients at the back of 16 medium x4 jobs wait longer than the default 120 s deadline
    // on a loaded 2-core machine: this measures throughput, not the deadline.
    let args = serve_args(&[
        "--port",
        "0",
        "--allow-private-urls",
        "--sync-deadline",
        "3600",
    ]);
    let engine = Arc::new(Engine::new(&args.engine.config()).expect("run scripts/setup.sh first"));
    let (server, _server_runtime) = start_server(&args, engine.clone(), 2);
    let generator = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let files: Vec<(u32, Vec<u8>)> = sizes
        .iter()
        .map(|&size| {
            (
                size,
                upres_engine::encode(&photo_crop(size), OutputFormat::Png).unwrap(),
            )
        })
        .collect();
    let named = files
        .iter()
        .map(|(size, png)| (format!("{size}.png"), png.clone()));
    let host = file_server(&generator, named.collect());
    let request = UpscaleRequest {
        model: args.model.clone(),
        scale,
        preserve_alpha: true,
    };
    println!(
        "model {}, x{scale}, {} worker(s), {clients} clients x {requests} requests against 1 client x {single}, {rounds} rounds",
        args.model, args.workers
    );
    println!(
        "| image | API | single-stream img/s | {clients} clients img/s | concurrent / single | model-only img/s | concurrent / model-only | decode / model / encode ms | 429s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (size, png) in &files {
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        let body = |image: String| {
            Bytes::from(json!({"image": image, "desired_increase": scale}).to_string())
        };
        let bodies = Arc::new(Bodies {
            inline: body(format!("data:image/png;base64,{data}")),
            url: body(format!("{host}/{size}.png")),
            expected: (size * scale, size * scale),
        });
        for api in [Api::V1, Api::V2] {
            let target = Arc::new(Target {
                server: server.clone(),
                api,
                poll,
                refused: AtomicUsize::new(0),
            });
            // Warm-up: the session at this shape, connections, allocator.
            phase(&generator, &target, &bodies, 2, 1);
            let (mut alone, mut together) = (vec![], vec![]);
            let (mut decode, mut model, mut encode) = (vec![], vec![], vec![]);
            for round in 0..rounds {
                let mut run_single = || alone.push(phase(&generator, &target, &bodies, 1, single));
                let mut run_concurrent =
                    || together.push(phase(&generator, &target, &bodies, clients, requests));
                if round % 2 == 0 {
                    run_single();
                    run_concurrent();
                } else {
                    run_concurrent();
                    run_single();
                }
                let t = Instant::now();
                let decoded = engine.decode(png).unwrap();
                decode.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                let output = engine.upscale(&decoded, &request).unwrap();
                model.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                std::hint::black_box(upres_engine::encode(&output, OutputFormat::Png).unwrap());
                encode.push(t.elapsed().as_secs_f64());
            }
            let ratio =
                |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(a, b)| a / b).collect());
            let per_second: Vec<f64> = model.iter().map(|s| 1.0 / s).collect();
            let ms = |times: Vec<f64>| median(times) * 1000.0;
            println!(
                "| {size}x{size} | {api:?} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} / {:.0} / {:.1} | {} |",
                median(alone.clone()),
                median(together.clone()),
                ratio(&together, &alone),
                median(per_second.clone()),
                ratio(&together, &per_second),
                ms(decode),
                ms(model),
                ms(encode),
                target.refused.load(Ordering::Relaxed),
            );
        }
    }
    println!("\nRatios: median over rounds of the same round's ratio.");
}
