//! Speed of every installed model: one image decoded, upscaled and PNG-encoded, as a request
//! does it (the HTTP layer adds little), at 256x256 and 512x512, x2 and x4. Input: the centre
//! of scikit-image's astronaut photo (installed by scripts/setup.sh into .cache/testdata).
//! Each model is warmed up first (session load, first-run allocations).
//!
//! Absolute times on a shared machine drift by 1.5-2x between runs, so every cell is also a
//! ratio to a baseline measured in the same run: the default model (span) on the same image at
//! the same scale, run right after the cell (interleaved, so drift cancels out). Prints
//! seconds, the ratio and input megapixels per second; the 512x512 figure at the model's
//! largest scale is what models/manifest.json stores as `megapixels_per_second`.
//!
//! `cargo bench -p upres-benches --bench latency`. Env: UPRES_BENCH_SIZES (default 256,512),
//! UPRES_BENCH_MODELS (comma-separated ids; default all installed).

use std::time::Instant;

use image::ImageFormat;
use upres_benches::{engine_config, env_list, photo_crop};
use upres_engine::catalog::DEFAULT_MODEL;
use upres_engine::{Engine, OutputFormat, UpscaleRequest};

fn main() {
    let sizes: Vec<u32> = env_list("UPRES_BENCH_SIZES").unwrap_or(vec![256, 512]);
    let wanted: Option<Vec<String>> = env_list("UPRES_BENCH_MODELS");
    let engine = Engine::new(&engine_config()).expect("run scripts/setup.sh first");
    let inputs: Vec<(u32, Vec<u8>)> = sizes
        .iter()
        .map(|&size| {
            let mut png = Vec::new();
            photo_crop(size)
                .pixels
                .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
                .unwrap();
            (size, png)
        })
        .collect();
    let cells: Vec<(u32, u32)> = sizes
        .iter()
        .flat_map(|&size| [(size, 2), (size, 4)])
        .collect();
    // Seconds of decode, upscale and encode, or None where the model has no such scale.
    let run = |model: &str, size: u32, scale: u32| {
        let png = &inputs.iter().find(|(s, _)| *s == size).unwrap().1;
        let request = UpscaleRequest {
            model: model.into(),
            scale,
            preserve_alpha: true,
        };
        let started = Instant::now();
        let image = engine.decode(png).unwrap();
        let out = engine.upscale(&image, &request).ok()?;
        std::hint::black_box(upres_engine::encode(&out, OutputFormat::Png).unwrap());
        Some(started.elapsed().as_secs_f64())
    };
    // Warm-up of the baseline at both scales.
    for scale in [2, 4] {
        run(DEFAULT_MODEL, sizes[0], scale).expect("the default model installed");
    }
    let header: String = cells
        .iter()
        .map(|(size, scale)| format!(" {size}x{size} x{scale} |"))
        .collect();
    println!("Seconds (ratio to {DEFAULT_MODEL} on the same cell, same run; input MP/s)\n");
    println!("| model |{header}");
    println!("|---|{}", "---|".repeat(cells.len()));
    for model in engine.models() {
        if wanted.as_ref().is_some_and(|w| !w.contains(&model.id)) {
            continue;
        }
        for &scale in &model.native_scales {
            run(&model.id, sizes[0], scale); // warm-up: each scale has its own session
        }
        let mut row = String::new();
        for &(size, scale) in &cells {
            row += &match run(&model.id, size, scale) {
                Some(secs) => {
                    let baseline = run(DEFAULT_MODEL, size, scale).unwrap();
                    let mp = f64::from(size * size) / 1e6;
                    format!(" {secs:.2} s ({:.2}x; {:.4}) |", secs / baseline, mp / secs)
                }
                None => " - |".to_string(),
            };
        }
        println!("| {} |{row}", model.id);
    }
}
