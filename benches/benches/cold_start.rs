//! Cold start: the time to create every session of a model (ONNX Runtime's graph load and
//! optimisation), which the first request to a fresh server or the CLI's first image waits for.
//! A fresh engine per measurement (ONNX Runtime itself is loaded once per process), models
//! interleaved over rounds; median and min seconds.
//!
//! `cargo bench -p upres-benches --bench cold_start`. Env: UPRES_BENCH_MODELS (default: every
//! installed model), UPRES_BENCH_ROUNDS (default 5).

use std::time::Instant;

use upres_benches::{engine_config, env_list};
use upres_engine::Engine;

fn main() {
    let named: Option<Vec<String>> = env_list("UPRES_BENCH_MODELS");
    let rounds: usize = env_list("UPRES_BENCH_ROUNDS")
        .and_then(|r| r.first().copied())
        .unwrap_or(5);
    let config = engine_config();
    let models: Vec<String> = Engine::new(&config)
        .expect("run scripts/setup.sh first")
        .models()
        .map(|m| m.id.clone())
        .filter(|id| named.as_ref().is_none_or(|n| n.contains(id)))
        .collect();
    let mut seconds = vec![Vec::with_capacity(rounds); models.len()];
    for _ in 0..rounds {
        for (model, times) in models.iter().zip(&mut seconds) {
            let engine = Engine::new(&config).unwrap();
            let t = Instant::now();
            engine.preload(model, false).unwrap();
            times.push(t.elapsed().as_secs_f64());
        }
    }
    println!("| model | sessions created, median s | min s |");
    println!("|---|---|---|");
    for (model, mut times) in models.iter().zip(seconds) {
        times.sort_by(f64::total_cmp);
        println!(
            "| {model} | {:.3} | {:.3} |",
            times[times.len() / 2],
            times[0]
        );
    }
}
