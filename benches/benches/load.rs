//! The load-testing mode's fast engine under load: the server (in this process, on its own
//! Tokio runtime, over real 127.0.0.1 sockets) against a closed-loop load generator (on another
//! runtime; both share the machine's cores, as a load generator beside the server would).
//!
//! 1. Cost of one 256x256 x4 v1 request: sequential calls, median time, fast engines against
//!    the default model in the same run.
//! 2. Throughput: UPRES_LOAD_CONNECTIONS (default 8) connections for UPRES_LOAD_SECONDS
//!    (default 10) of 64x64 x2 v1 calls, against GET /health (the cheapest route: the ceiling
//!    of the server and generator together) in the same run.
//!
//! `cargo bench -p upres-benches --bench load` (after scripts/setup.sh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use image::{DynamicImage, RgbaImage};
use serde_json::json;
use upres_benches::{env_or, serve_args};
use upres_server::EngineKind;

/// A server on 127.0.0.1 with `flags` and `engine` (two runtime threads); returns its URL and
/// the runtime (dropping it stops the server).
fn start_server(flags: &[&str], engine: EngineKind) -> (String, tokio::runtime::Runtime) {
    let args = serve_args(flags);
    let base =
        upres_engine::Engine::new(&args.engine.config()).expect("run scripts/setup.sh first");
    upres_benches::start_server(&args, engine.upscaler(Arc::new(base)), 2)
}

fn body(size: u32, scale: u32) -> serde_json::Value {
    let image = DynamicImage::ImageRgba8(RgbaImage::from_fn(size, size, |x, y| {
        image::Rgba([
            (x * 255 / size) as u8,
            (y * 255 / size) as u8,
            ((x ^ y) % 256) as u8,
            255,
        ])
    }));
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    json!({"image": format!("data:image/png;base64,{data}"), "desired_increase": scale})
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Median time of `rounds` sequential v1 calls.
fn sequential(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    body: &serde_json::Value,
    rounds: usize,
) -> Duration {
    runtime.block_on(async {
        let client = client();
        let mut times = Vec::new();
        for _ in 0..rounds {
            let start = Instant::now();
            let response = client.post(url).json(body).send().await.unwrap();
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            response.bytes().await.unwrap();
            times.push(start.elapsed());
        }
        times.sort();
        percentile(&times, 0.5)
    })
}

struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    failures: usize,
}

/// `connections` closed loops of requests for `seconds`.
fn load(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    body: Option<&serde_json::Value>,
    connections: usize,
    seconds: f64,
) -> Load {
    runtime.block_on(async {
        let client = client();
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        let loops = (0..connections).map(|_| {
            let (client, url, body) = (client.clone(), url.to_string(), body.cloned());
            tokio::spawn(async move {
                let (mut times, mut failures) = (Vec::new(), 0);
                while Instant::now() < end {
                    let start = Instant::now();
                    let request = match &body {
                        Some(body) => client.post(&url).json(body),
                        None => client.get(&url),
                    };
                    match request.send().await {
                        Ok(response) if response.status().is_success() => {
                            response.bytes().await.unwrap();
                            times.push(start.elapsed());
                        }
                        _ => failures += 1,
                    }
                }
                (times, failures)
            })
        });
        let started = Instant::now();
        let mut times = Vec::new();
        let mut failures = 0;
        for outcome in futures::future::join_all(loops).await {
            let (t, f) = outcome.unwrap();
            times.extend(t);
            failures += f;
        }
        let elapsed = started.elapsed().as_secs_f64();
        times.sort();
        Load {
            per_second: times.len() as f64 / elapsed,
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
            failures,
        }
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let connections: usize = env_or("UPRES_LOAD_CONNECTIONS", 8);
    let seconds: f64 = env_or("UPRES_LOAD_SECONDS", 10.0);
    let generator = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    println!("1. One 256x256 x4 v1 call (median of sequential calls, client-side):");
    let big = body(256, 4);
    let mut model_time = None;
    for (engine, rounds) in [
        (EngineKind::Model, 5),
        (EngineKind::FastLanczos, 40),
        (EngineKind::FastNearest, 40),
    ] {
        let (url, _server) = start_server(&["--port", "0"], engine);
        let time = sequential(
            &generator,
            &format!("{url}/v1/bria-increase-resolution"),
            &big,
            rounds,
        );
        let model = *model_time.get_or_insert(time);
        println!(
            "   {engine:?}: {:.1} ms ({:.4} of the model's time)",
            ms(time),
            time.as_secs_f64() / model.as_secs_f64()
        );
    }

    println!("2. Throughput, {connections} connections x {seconds} s, 64x64 x2 v1 calls:");
    let small = body(64, 2);
    for workers in ["1", "2"] {
        let flags = ["--port", "0", "--workers", workers, "--queue-depth", "64"];
        let (url, _server) = start_server(&flags, EngineKind::FastLanczos);
        let health = load(
            &generator,
            &format!("{url}/health"),
            None,
            connections,
            seconds,
        );
        let calls = load(
            &generator,
            &format!("{url}/v1/bria-increase-resolution"),
            Some(&small),
            connections,
            seconds,
        );
        println!(
            "   fast-lanczos, {workers} worker(s): {:.0} calls/s (p50 {:.1} ms, p99 {:.1} ms, {} failed) = {:.3} of GET /health's {:.0} req/s (p50 {:.1} ms)",
            calls.per_second,
            ms(calls.p50),
            ms(calls.p99),
            calls.failures,
            calls.per_second / health.per_second,
            health.per_second,
            ms(health.p50),
        );
    }
}
