//! Latency of one image per installed model at x2 and x4: decode, upscale and PNG encode, as a
//! request does it (the HTTP layer adds little). Input: the centre 256x256 of scikit-image's
//! astronaut photo (installed by scripts/setup.sh into .cache/testdata). Each cell is a second
//! run, with the first (cold for that input size) in brackets.
//!
//! `cargo bench -p upres-benches --bench latency`. Env: UPRES_BENCH_SIZE (default 256),
//! UPRES_BENCH_MODELS (comma-separated ids; default all installed).

use std::path::Path;
use std::time::Instant;

use image::{DynamicImage, ImageFormat};
use upres_engine::{Engine, EngineArgs, OutputFormat, UpscaleRequest};

fn main() {
    let size: u32 = std::env::var("UPRES_BENCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let engine = Engine::new(&EngineArgs::default()).expect("run scripts/setup.sh first");
    let photo = image::open(upres_engine::config::resolve(Path::new(
        ".cache/testdata/astronaut.png",
    )))
    .expect("run scripts/setup.sh first");
    let (x, y) = ((photo.width() - size) / 2, (photo.height() - size) / 2);
    let mut input = Vec::new();
    DynamicImage::ImageRgb8(photo.crop_imm(x, y, size, size).to_rgb8())
        .write_to(&mut std::io::Cursor::new(&mut input), ImageFormat::Png)
        .unwrap();
    let wanted: Option<Vec<String>> = std::env::var("UPRES_BENCH_MODELS")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let models: Vec<String> = engine
        .models()
        .map(|m| m.id.clone())
        .filter(|id| wanted.as_ref().is_none_or(|w| w.contains(id)))
        .collect();
    println!("| model | {size}x{size} x2 | {size}x{size} x4 |");
    println!("|---|---|---|");
    for model in models {
        engine.preload(&model, false).unwrap();
        let mut cells = Vec::new();
        for scale in [2, 4] {
            let request = UpscaleRequest {
                model: model.clone(),
                scale,
                preserve_alpha: true,
            };
            let run = || {
                let started = Instant::now();
                let image = engine.decode(&input).unwrap();
                let out = engine.upscale(&image, &request).unwrap();
                std::hint::black_box(upres_engine::encode(&out, OutputFormat::Png).unwrap());
                started.elapsed().as_secs_f64()
            };
            let first = run(); // includes ONNX Runtime's first-run allocations for this size
            cells.push(format!("{:.2} s ({first:.2} s first)", run()));
        }
        println!("| {model} | {} | {} |", cells[0], cells[1]);
    }
}
