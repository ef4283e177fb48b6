//! Engine overhead: per image in a warm process, the engine's upscale (planar split, alpha,
//! the tiles it chooses within the memory budget, mirrored border pad and context, blending,
//! 8-bit output) against one bare ONNX Runtime `session.run` on the whole untiled image, and
//! against one bare run on the image with the model's border margin mirrored around it (what
//! the engine feeds when the image fits whole). Interleaved rounds in one process; the ratio of each round, so
//! drift in machine speed cancels out.
//!
//! `cargo bench -p upres-benches --bench engine_overhead` (after `scripts/setup.sh`). Env:
//! UPRES_BENCH_MODELS (default: every installed model), UPRES_BENCH_SIZE (default 512; the slow
//! models esrgan-thick and realesrgan-x4plus use a quarter of it unless named),
//! UPRES_BENCH_ROUNDS (default 5).

use std::time::Instant;

use upres_benches::{engine_config, env_list, env_or, median, photo_crop};
use upres_engine::alpha::split;
use upres_engine::planar::{Rect, Sides};
use upres_engine::tiling::grid;
use upres_engine::{run_sr_with, Engine, Layout, UpscaleRequest};

/// Seconds of one bare run on planar `data` of `size`.
fn bare(engine: &Engine, model: &str, scale: u32, data: &[f32], size: (usize, usize)) -> f64 {
    let session = engine.session(model, scale).unwrap();
    let t = Instant::now();
    run_sr_with(&session, data, size, |out| std::hint::black_box(out.len())).unwrap();
    t.elapsed().as_secs_f64()
}

fn main() {
    let named: Option<Vec<String>> = env_list("UPRES_BENCH_MODELS");
    let size: u32 = env_or("UPRES_BENCH_SIZE", 512);
    let rounds: usize = env_or("UPRES_BENCH_ROUNDS", 5);
    let engine = Engine::new(&engine_config()).expect("run scripts/setup.sh first");
    let models: Vec<_> = engine
        .models()
        .filter(|m| named.as_ref().is_none_or(|n| n.contains(&m.id)))
        .cloned()
        .collect();
    println!(
        "| model | image | tiles | border margin | engine / bare untiled | engine / bare with margin | bare untiled s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for model in models {
        let slow = ["esrgan-thick", "realesrgan-x4plus"].contains(&model.id.as_str());
        let side = if slow && named.is_none() {
            size / 4
        } else {
            size
        };
        let scale = *model.native_scales.last().unwrap();
        let image = photo_crop(side);
        let (rgb, _) = split(&image.pixels);
        let (w, h) = (rgb.width, rgb.height);
        let layout = Layout::of(&image.pixels, true);
        let (tiling, tiles) = engine.tiling(&model, (w, h), scale as usize, layout);
        let whole = Rect { x: 0, y: 0, w, h };
        let margin = tiling.border_margin();
        let padded = rgb.crop_extended(whole, Sides::uniform(margin), tiling.border);
        let padded_size = (w + 2 * margin, h + 2 * margin);
        let request = UpscaleRequest {
            model: model.id.clone(),
            scale,
            preserve_alpha: true,
        };
        // Warm-up: sessions, kernels, the arena at both shapes.
        engine.upscale(&image, &request).unwrap();
        bare(&engine, &model.id, scale, &rgb.data, (w, h));
        let (mut untiled, mut with_margin, mut seconds) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            let b = bare(&engine, &model.id, scale, &rgb.data, (w, h));
            let p = bare(&engine, &model.id, scale, &padded, padded_size);
            let t = Instant::now();
            std::hint::black_box(engine.upscale(&image, &request).unwrap());
            let e = t.elapsed().as_secs_f64();
            untiled.push(e / b);
            with_margin.push(e / p);
            seconds.push(b);
        }
        let count = grid(w, h, tiles).concat().len();
        println!(
            "| {} | {side}x{side} x{scale} | {count} of {}x{} | {margin} px | {:.3} | {:.3} | {:.3} |",
            model.id,
            tiles.width.min(w as u32),
            tiles.height.min(h as u32),
            median(untiled),
            median(with_margin),
            median(seconds),
        );
    }
    println!(
        "\n{rounds} rounds. The margin alone costs (w + 2m)(h + 2m) / (w h) of the untiled run."
    );
}
