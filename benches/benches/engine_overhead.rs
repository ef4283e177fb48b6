//! Engine overhead: the full upscale (decode-free: planar split, alpha, tiles, blending,
//! 8-bit conversion) of a 512x512 image against bare ONNX Runtime runs over the same tiles
//! (with the model's context around each),
//! measured in the same process, interleaved, reported as a ratio. Also sweeps tile sizes.
//!
//! `cargo bench -p upres-benches` (needs `scripts/setup.sh esrgan-slim`). Env: UPRES_BENCH_MODEL
//! (default esrgan-slim), UPRES_BENCH_SIZE (default 512), UPRES_BENCH_ROUNDS (default 9).

use std::time::{Duration, Instant};

use image::{DynamicImage, RgbImage};
use upres_engine::tiling::grid;
use upres_engine::{run_sr_with, Engine, EngineArgs, Image, TileConfig, UpscaleRequest};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic textured test picture (smooth gradients plus fine detail).
fn picture(size: u32) -> Image {
    Image::new(DynamicImage::ImageRgb8(RgbImage::from_fn(
        size,
        size,
        |x, y| {
            let f = |a: u32, b: u32| ((a * 7 + b * 13 + (a * b) % 29) % 256) as u8;
            image::Rgb([f(x, y), f(y, x / 2 + 3), ((x + y) / 4 % 256) as u8])
        },
    )))
}

fn engine_with_tile(tile: u32, overlap: u32) -> Engine {
    let args = EngineArgs {
        tile,
        tile_overlap: overlap,
        ..EngineArgs::default()
    };
    Engine::new(&args).expect("run scripts/setup.sh first")
}

fn main() {
    let model: String = env_or("UPRES_BENCH_MODEL", "esrgan-slim".to_string());
    let size: u32 = env_or("UPRES_BENCH_SIZE", 512);
    let rounds: usize = env_or("UPRES_BENCH_ROUNDS", 9);
    let image = picture(size);
    let request = UpscaleRequest {
        model: model.clone(),
        scale: 4,
        preserve_alpha: true,
    };

    let defaults = TileConfig::default();
    let engine = engine_with_tile(defaults.size, defaults.overlap);
    let session = engine.session(&model, 4).unwrap();
    let (rgb, _) = upres_engine::alpha::split(&image.pixels);
    let tiles: Vec<_> = grid(rgb.width, rgb.height, defaults)
        .into_iter()
        .flatten()
        .collect();
    let tiling = engine.model(&model).unwrap().tiling;
    let margin = tiling.margin();
    let crops: Vec<Vec<f32>> = tiles
        .iter()
        .map(|&r| rgb.crop_extended(r, margin, tiling.border))
        .collect();
    engine.upscale(&image, &request).unwrap(); // warm-up

    // Interleaved rounds; the ratio of each round, so drift in machine speed cancels out.
    let mut ratios = Vec::with_capacity(rounds);
    let (mut full, mut bare) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        for (crop, &rect) in crops.iter().zip(&tiles) {
            let size = (rect.w + 2 * margin, rect.h + 2 * margin);
            run_sr_with(&session, crop, size, |out| std::hint::black_box(out.len())).unwrap();
        }
        let b = t.elapsed();
        let t = Instant::now();
        std::hint::black_box(engine.upscale(&image, &request).unwrap());
        let f = t.elapsed();
        ratios.push(f.as_secs_f64() / b.as_secs_f64());
        (full, bare) = (full + f, bare + b);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let per = |d: Duration| d.as_secs_f64() / rounds as f64;
    println!(
        "{model} x4 {size}x{size}, {} tiles of {}+{}: engine {:.3} s, bare session {:.3} s per image; \
         ratio median {median:.3} (overhead {:+.1}%), range {:.3}..{:.3} over {rounds} rounds",
        tiles.len(),
        defaults.size,
        defaults.overlap,
        per(full),
        per(bare),
        (median - 1.0) * 100.0,
        ratios[0],
        ratios[ratios.len() - 1],
    );

    // Tile-size sweep: throughput relative to the default tile size.
    let base = per_image(&engine, &image, &request, rounds.min(3));
    for tile in [64, 128, 256, 384] {
        let t = per_image(
            &engine_with_tile(tile, defaults.overlap),
            &image,
            &request,
            rounds.min(3),
        );
        println!(
            "tile {tile}: {t:.3} s per image, {:.3}x the default tile {}",
            t / base,
            defaults.size
        );
    }
}

fn per_image(engine: &Engine, image: &Image, request: &UpscaleRequest, rounds: usize) -> f64 {
    engine.upscale(image, request).unwrap();
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(engine.upscale(image, request).unwrap());
    }
    t.elapsed().as_secs_f64() / rounds as f64
}
