//! Peak memory of the largest upscale: at the model's largest scale, the RGBA input whose output
//! is 8192x8192, the largest the default limit allows (x4 of 2048x2048, x2 of 4096x4096), with
//! the default memory budget, encoded to PNG, must stay under 2 GiB of peak RSS (the bench fails
//! otherwise). One model per process (peak RSS is the process's): `UPRES_MEMORY_MODEL`
//! (default: the default model). Slow (a minute for span, about an hour for realesrgan-x4plus
//! on 2 cores); `benches/run.sh` runs it for every installed model:
//! `UPRES_MEMORY_MODEL=span cargo bench -p upres-benches --bench memory`.

use image::{DynamicImage, Rgba, RgbaImage};
use upres_benches::{engine_config, status_kib};
use upres_engine::{Engine, Image, Limits, OutputFormat, UpscaleRequest};

fn main() {
    let engine = Engine::new(&engine_config()).expect("run scripts/setup.sh first");
    let model = std::env::var("UPRES_MEMORY_MODEL")
        .unwrap_or_else(|_| upres_engine::catalog::DEFAULT_MODEL.into());
    let entry = upres_engine::catalog::entry(&model).expect("a model of the catalog");
    let scale = *entry.scales.iter().max().expect("a super-resolution model");
    let output_side = Limits::default().max_output_pixels.isqrt() as u32;
    let side = output_side / scale;
    let input = Image::new(DynamicImage::ImageRgba8(RgbaImage::from_fn(
        side,
        side,
        |x, y| {
            Rgba([
                (x % 256) as u8,
                (y % 256) as u8,
                ((x ^ y) % 256) as u8,
                if (x / 64 + y / 64) % 5 == 0 { 0 } else { 255 },
            ])
        },
    )));
    let request = UpscaleRequest {
        model: model.clone(),
        scale,
        preserve_alpha: true,
    };
    // The tiles the budget gives this image, and the pixels they compute with their margins.
    let (w, h) = (side as usize, side as usize);
    let layout = upres_engine::Layout::of(&input.pixels, true);
    let (tiling, tiles) = engine.tiling(
        engine.model(&model).unwrap(),
        (w, h),
        scale as usize,
        layout,
    );
    let grid = upres_engine::tiling::grid(w, h, tiles);
    let computed: usize = grid
        .iter()
        .flatten()
        .map(|&rect| {
            let m = tiling.margins(rect, (w, h));
            (rect.w + m.left + m.right) * (rect.h + m.top + m.bottom)
        })
        .sum();
    eprintln!(
        "{model}: {} tiles of at most {}x{}, computing {:.2}x the image's pixels",
        grid.iter().map(Vec::len).sum::<usize>(),
        tiles.width,
        tiles.height,
        computed as f64 / (w * h) as f64
    );
    let started = std::time::Instant::now();
    let out = engine.upscale(&input, &request).unwrap();
    assert_eq!((out.width(), out.height()), (output_side, output_side));
    let png = upres_engine::encode(&out, OutputFormat::Png).unwrap();
    let peak = status_kib("VmHWM:") << 10;
    assert!(peak > 0, "no VmHWM in /proc/self/status");
    eprintln!(
        "{model} {side}x{side} RGBA x{scale}: {:.1} s, PNG {} MiB, peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        png.len() >> 20,
        peak >> 20
    );
    assert!(peak < 2 << 30, "peak RSS {} MiB", peak >> 20);
}
