//! Speed of every installed model: one image decoded, upscaled and PNG-encoded, as a request
//! does it (the HTTP layer adds little), at 256x256 and 512x512, x2 and x4. Input: the centre
//! of scikit-image's astronaut photo (installed by scripts/setup.sh into .cache/testdata).
//! Each model is warmed up first (session load, first-run allocations); each cell is one run.
//! Prints seconds and input megapixels per second; the 512x512 figure at the model's largest
//! scale is what models/manifest.json stores as `megapixels_per_second`.
//!
//! `cargo bench -p upres-benches --bench latency`. Env: UPRES_BENCH_SIZES (default 256,512),
//! UPRES_BENCH_MODELS (comma-separated ids; default all installed).

use std::time::Instant;

use image::ImageFormat;
use upres_benches::{env_list, photo_crop};
use upres_engine::{Engine, EngineArgs, OutputFormat, UpscaleRequest};

fn main() {
    let sizes: Vec<u32> = env_list("UPRES_BENCH_SIZES").unwrap_or(vec![256, 512]);
    let wanted: Option<Vec<String>> = env_list("UPRES_BENCH_MODELS");
    let engine = Engine::new(&EngineArgs::default()).expect("run scripts/setup.sh first");
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
    let header: String = cells
        .iter()
        .map(|(size, scale)| format!(" {size}x{size} x{scale} |"))
        .collect();
    println!("| model |{header}");
    println!("|---|{}", "---|".repeat(cells.len()));
    for model in engine.models() {
        if wanted.as_ref().is_some_and(|w| !w.contains(&model.id)) {
            continue;
        }
        let run = |png: &[u8], scale: u32| {
            let request = UpscaleRequest {
                model: model.id.clone(),
                scale,
                preserve_alpha: true,
            };
            let started = Instant::now();
            let image = engine.decode(png).unwrap();
            let out = engine.upscale(&image, &request).ok()?;
            std::hint::black_box(upres_engine::encode(&out, OutputFormat::Png).unwrap());
            Some(started.elapsed().as_secs_f64())
        };
        run(&inputs[0].1, *model.native_scales.last().unwrap()); // warm-up
        let mut row = String::new();
        for &(size, scale) in &cells {
            let png = &inputs.iter().find(|(s, _)| *s == size).unwrap().1;
            row += &match run(png, scale) {
                Some(secs) => {
                    let mp = f64::from(size * size) / 1e6;
                    format!(" {secs:.2} s, {:.4} MP/s |", mp / secs)
                }
                None => " - |".to_string(),
            };
        }
        println!("| {} |{row}", model.id);
    }
}
