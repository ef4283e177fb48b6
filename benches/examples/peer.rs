//! The upres runner of the peer benchmark (`benches/peers/`): one process, one model, one
//! measurement, as `upres upscale` does it (the engine built from the default flags: the
//! engine's default tiling, one ONNX Runtime thread per core). Loads the model, warms up on a small image, then
//! times one image from the PNG bytes in memory to the PNG bytes out (decode, upscale, encode)
//! and prints one JSON line: `{"seconds", "peak_rss_kib", ...}`. The peak RSS is the
//! process's high-water mark (`VmHWM`, the counter `getrusage`'s `ru_maxrss` reports).
//!
//! `cargo run --release -p upres-benches --example peer -- --model span --input in.png
//! --warmup warm.png [--output out.png] [--scale 4]`, from anywhere in the checkout. Engine
//! flags (`--tile`, `--threads`, ...) as for `upres upscale`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use upres_benches::status_kib;
use upres_engine::{Engine, OutputFormat, UpscaleRequest};
use upres_server::EngineArgs;

#[derive(Parser)]
struct Args {
    /// Model id.
    #[arg(long)]
    model: String,
    /// The timed image (PNG).
    #[arg(long)]
    input: PathBuf,
    /// The warm-up image (PNG), run once before the timed one.
    #[arg(long)]
    warmup: PathBuf,
    /// Where to write the timed image's output (written after the timing).
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    scale: u32,
    #[command(flatten)]
    engine: EngineArgs,
}

fn main() {
    let args = Args::parse();
    let request = UpscaleRequest {
        model: args.model.clone(),
        scale: args.scale,
        preserve_alpha: true,
    };
    let started = Instant::now();
    let engine = Engine::new(&args.engine.config()).expect("run scripts/setup.sh first");
    engine.preload(&args.model, false).expect("model installed");
    let load_seconds = started.elapsed().as_secs_f64();

    // Decode, upscale, encode; returns the PNG, the output size and the three phases' seconds.
    let run = |png: &[u8]| {
        let t0 = Instant::now();
        let image = engine.decode(png).expect("decode");
        let t1 = Instant::now();
        let out = engine.upscale(&image, &request).expect("upscale");
        let t2 = Instant::now();
        let encoded = upres_engine::encode(&out, OutputFormat::Png).expect("encode");
        let t3 = Instant::now();
        let phases = [t1 - t0, t2 - t1, t3 - t2].map(|d| d.as_secs_f64());
        (encoded, (out.pixels.width(), out.pixels.height()), phases)
    };
    let warm = std::fs::read(&args.warmup).expect("warm-up image");
    let t = Instant::now();
    std::hint::black_box(run(&warm));
    let warmup_seconds = t.elapsed().as_secs_f64();

    let png = std::fs::read(&args.input).expect("input image");
    let t = Instant::now();
    let (encoded, (width, height), [decode, infer, encode]) = run(&png);
    let seconds = t.elapsed().as_secs_f64();
    if let Some(path) = &args.output {
        std::fs::write(path, &encoded).expect("writing the output");
    }
    println!(
        "{}",
        serde_json::json!({
            "runner": "upres",
            "version": env!("CARGO_PKG_VERSION"),
            "model": args.model,
            "seconds": seconds,
            "peak_rss_kib": status_kib("VmHWM:"),
            "decode_seconds": decode,
            "infer_seconds": infer,
            "encode_seconds": encode,
            "load_seconds": load_seconds,
            "warmup_seconds": warmup_seconds,
            "output": [width, height],
            "threads": args.engine.threads,
            "tile": args.engine.tile,
            "memory_budget_mib": args.engine.memory_budget,
        })
    );
}
