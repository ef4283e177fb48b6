//! Quality of every installed super-resolution model, run through the engine (tiled, padded,
//! 8-bit output), against bicubic and Lanczos computed here, on five scikit-image photos
//! (installed by scripts/setup.sh into .cache/testdata). The protocol reproduces the table in
//! ../shared/models/README.md ("Second wave"), measured there with the original runtimes:
//!
//! - photos astronaut 512x512, chelsea 448x300, coffee 600x400, rocket 640x424 and
//!   immunohistochemistry (ihc) 512x512, each cut to a multiple of 4 (last rows and columns
//!   dropped);
//! - low resolution: Pillow BICUBIC downscale (antialiased) by the scale, 8-bit;
//! - baselines: Pillow BICUBIC and LANCZOS upscales of it; models: `Engine::upscale`;
//! - metrics on MATLAB-style luma (BT.601, 16..235, unrounded) with `scale` px shaved off every
//!   side: PSNR, and SSIM as scikit-image's Gaussian one; each the mean over the five photos.
//!
//! `cargo bench -p upres-benches --bench quality`: about 16 min on 2 busy cores, 13 of them
//! realesrgan-x4plus (64 px of context around each tile); the rest takes 3 min. Env:
//! UPRES_BENCH_MODELS (comma-separated ids; default all installed, `none` for the baselines
//! only), UPRES_BENCH_SCALES (default `4,2`; 3 runs each model's x4 and a Lanczos3 downscale). UPRES_* engine settings (tile size...) apply.

use std::path::Path;
use std::time::Instant;

use fast_image_resize::FilterType;
use image::{DynamicImage, RgbImage};
use upres_benches::quality::{luma, psnr, resize, shave, ssim};
use upres_benches::{engine_config, env_list};
use upres_engine::{Engine, Image, UpscaleRequest};

const PHOTOS: [&str; 5] = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "ihc.png",
];

/// The reference table (original runtimes): method, x4 and x2 as (Y-PSNR, SSIM).
type Row = (&'static str, Option<(f64, f64)>, Option<(f64, f64)>);
const REFERENCE: [Row; 7] = [
    ("bicubic", Some((28.83, 0.792)), Some((32.86, 0.915))),
    ("Lanczos", Some((29.05, 0.800)), Some((33.31, 0.923))),
    ("esrgan-thick", Some((29.63, 0.817)), Some((33.07, 0.917))),
    (
        "realesrgan-x4plus",
        Some((27.25, 0.771)),
        Some((31.18, 0.901)),
    ),
    ("span", Some((30.68, 0.849)), Some((36.36, 0.958))),
    ("waifu2x-photo", None, Some((35.27, 0.947))),
    (
        "realesr-general-x4v3",
        Some((27.85, 0.797)),
        Some((31.85, 0.915)),
    ),
];

/// One photo at one scale: the ground truth (its luma) and the downscaled input.
struct Case {
    scale: u32,
    truth: RgbImage,
    luma: Vec<f64>,
    input: RgbImage,
}

impl Case {
    /// (Y-PSNR, SSIM) of an upscale of `input`.
    fn score(&self, output: &RgbImage) -> (f64, f64) {
        let (width, border) = (self.truth.width() as usize, self.scale as usize);
        let (truth, inner) = shave(&self.luma, width, border);
        let (ours, _) = shave(&luma(output), width, border);
        (psnr(&truth, &ours), ssim(&truth, &ours, inner))
    }
}

fn main() {
    let scales: Vec<u32> = env_list("UPRES_BENCH_SCALES").unwrap_or(vec![4, 2]);
    let wanted: Option<Vec<String>> = env_list("UPRES_BENCH_MODELS");
    let engine = Engine::new(&engine_config()).expect("run scripts/setup.sh first");
    let folder = upres_engine::paths::resolve(Path::new(".cache/testdata"));
    let cases: Vec<Vec<Case>> = scales
        .iter()
        .map(|&scale| {
            PHOTOS
                .iter()
                .map(|name| {
                    let photo = image::open(folder.join(name))
                        .unwrap_or_else(|e| panic!("{name}: {e}; run scripts/setup.sh first"))
                        .to_rgb8();
                    // A multiple of 4 (of 12 for x3, so that the input is a whole third).
                    let m = if 4 % scale == 0 { 4 } else { 4 * scale };
                    let (w, h) = (photo.width() / m * m, photo.height() / m * m);
                    let truth = image::imageops::crop_imm(&photo, 0, 0, w, h).to_image();
                    let input = resize(&truth, w / scale, h / scale, FilterType::CatmullRom);
                    let luma = luma(&truth);
                    Case {
                        scale,
                        truth,
                        luma,
                        input,
                    }
                })
                .collect()
        })
        .collect();

    let header: String = scales
        .iter()
        .map(|s| format!(" x{s} Y-PSNR / SSIM | reference |"))
        .collect();
    println!("| method |{header} seconds |");
    println!("|---|{}---|", "---|---|".repeat(scales.len()));
    let baseline = |filter| {
        move |case: &Case| {
            let (w, h) = case.truth.dimensions();
            Some(resize(&case.input, w, h, filter))
        }
    };
    row("bicubic", &cases, baseline(FilterType::CatmullRom));
    row("Lanczos", &cases, baseline(FilterType::Lanczos3));
    for model in engine.models() {
        if wanted.as_ref().is_some_and(|w| !w.contains(&model.id)) {
            continue;
        }
        engine.preload(&model.id, false).unwrap();
        row(&model.id, &cases, |case: &Case| {
            let input = Image::new(DynamicImage::ImageRgb8(case.input.clone()));
            if model.plan(case.scale).is_err() {
                // Another factor (x3): the chain of the model's scales, then Lanczos3 to size.
                upres_engine::target::chain(model, f64::from(case.scale)).ok()?;
                let size = case.truth.dimensions();
                let out = engine.upscale_to(&input, &model.id, size, true, &|_, _, _, _| {});
                return Some(out.unwrap().pixels.to_rgb8());
            }
            let request = UpscaleRequest {
                model: model.id.clone(),
                scale: case.scale,
                preserve_alpha: true,
            };
            Some(engine.upscale(&input, &request).unwrap().pixels.to_rgb8())
        });
    }
}

/// Runs one method on every case (`None`: it has no such scale) and prints its table row.
fn row(method: &str, cases: &[Vec<Case>], upscale: impl Fn(&Case) -> Option<RgbImage>) {
    let started = Instant::now();
    let reference = REFERENCE.iter().find(|r| r.0 == method);
    let mut cells = String::new();
    for photos in cases {
        let scores: Option<Vec<(f64, f64)>> = photos
            .iter()
            .map(|case| Some(case.score(&upscale(case)?)))
            .collect();
        let expected = reference.and_then(|r| match photos[0].scale {
            4 => r.1,
            2 => r.2,
            _ => None,
        });
        let Some(scores) = scores else {
            cells += " - | - |";
            continue;
        };
        let n = scores.len() as f64;
        let psnr = scores.iter().map(|s| s.0).sum::<f64>() / n;
        let ssim = scores.iter().map(|s| s.1).sum::<f64>() / n;
        cells += &format!(" {psnr:.3} / {ssim:.4} |");
        cells += &match expected {
            Some((p, s)) => format!(" {p:.2} / {s:.3} ({:+.3} dB) |", psnr - p),
            None => " |".to_string(),
        };
    }
    println!(
        "| {method} |{cells} {:.1} |",
        started.elapsed().as_secs_f64()
    );
}
