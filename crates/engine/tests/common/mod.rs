//! Shared by the engine's integration tests and its measurement benches: the engine over the
//! installed models, the golden files, a minimal .npy reader, and the tile and border measures.
#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::sync::OnceLock;

use image::{DynamicImage, RgbImage};
use upres_engine::catalog::catalog;
use upres_engine::{Engine, EngineConfig, Image, ModelInfo, UpscaleRequest};

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| Engine::new(&EngineConfig::default()).expect("run scripts/setup.sh first"))
}

/// An engine with settings changed from the defaults.
pub fn engine_with(configure: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut config = EngineConfig::default();
    configure(&mut config);
    Engine::new(&config).expect("run scripts/setup.sh first")
}

pub fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden")
        .join(name)
}

/// Reads a little-endian float32 C-order .npy file: (shape, values).
pub fn read_npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{name} is not .npy");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let values: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(values.len(), shape.iter().product::<usize>());
    (shape, values)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `image` upscaled by `model` x`scale` through the whole engine (tiles, alpha, 8-bit output).
pub fn upscale(engine: &Engine, model: &str, scale: u32, image: &RgbImage) -> RgbImage {
    let request = UpscaleRequest {
        model: model.into(),
        scale,
        preserve_alpha: true,
    };
    let image = Image::new(DynamicImage::ImageRgb8(image.clone()));
    engine.upscale(&image, &request).unwrap().pixels.to_rgb8()
}

/// The top-left `w` x `h` of a photo crop at (`x`, `y`) (the 160x96 golden picture).
pub fn photo(x: u32, y: u32, w: u32, h: u32) -> RgbImage {
    image::open(golden("slim-x4_expected.png"))
        .unwrap()
        .crop_imm(x, y, w, h)
        .to_rgb8()
}

/// Every super-resolution model the manifest lists (scripts/setup.sh installs them all).
pub fn sr_models() -> Vec<&'static ModelInfo> {
    catalog()
        .iter()
        .filter(|e| e.is_sr())
        .map(|e| engine().model(&e.id).expect("run scripts/setup.sh"))
        .collect()
}

/// 2x2 tiles of a 72-pixel crop: one join each way and a corner where four tiles meet.
pub fn small_tiles(context: Option<usize>) -> Engine {
    engine_with(|a| {
        a.tile = Some(40);
        a.tile_overlap = 8;
        a.tile_context = context;
    })
}

/// (mean abs difference in levels, worst mean over one output column or row).
pub fn difference(a: &RgbImage, b: &RgbImage) -> (f32, f32) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (w, h) = (a.width() as usize, a.height() as usize);
    let (mut cols, mut rows) = (vec![0f32; w], vec![0f32; h]);
    let mut total = 0f32;
    for (i, (p, q)) in a.pixels().zip(b.pixels()).enumerate() {
        let d = (0..3)
            .map(|c| (f32::from(p.0[c]) - f32::from(q.0[c])).abs())
            .sum::<f32>()
            / 3.0;
        cols[i % w] += d / h as f32;
        rows[i / w] += d / w as f32;
        total += d;
    }
    let line = cols.iter().chain(&rows).fold(0f32, |m, &v| m.max(v));
    (total / (w * h) as f32, line)
}

/// Flat colours for the border checks: near white, a saturated blue, a dark brown.
pub const FLAT_COLOURS: [[u8; 3]; 3] = [[250, 250, 250], [12, 140, 230], [128, 64, 32]];

/// Largest difference (levels) between any output pixel of a flat image and its centre pixel.
pub fn flat_deviation(engine: &Engine, model: &str, scale: u32, colour: [u8; 3]) -> u8 {
    let out = upscale(
        engine,
        model,
        scale,
        &RgbImage::from_pixel(37, 29, image::Rgb(colour)),
    );
    let centre = out.get_pixel(out.width() / 2, out.height() / 2).0;
    out.pixels()
        .flat_map(|p| (0..3).map(move |c| p.0[c].abs_diff(centre[c])))
        .max()
        .unwrap()
}

/// The largest [`flat_deviation`] over the flat colours.
pub fn worst_flat_deviation(engine: &Engine, model: &str, scale: u32) -> u8 {
    FLAT_COLOURS
        .map(|colour| flat_deviation(engine, model, scale, colour))
        .into_iter()
        .max()
        .unwrap()
}

/// Mean levels between the outer band (2 input pixels) of an upscaled 64x48 photo crop and the
/// same region of the upscaled 160x96 photo it was cut from.
pub fn crop_border_band(engine: &Engine, model: &str, scale: u32) -> f32 {
    let (x0, y0) = (48u32, 24u32);
    let full = upscale(engine, model, scale, &photo(0, 0, 160, 96));
    let part = upscale(engine, model, scale, &photo(x0, y0, 64, 48));
    let band = 2 * scale;
    let (mut sum, mut n) = (0f32, 0f32);
    for (x, y, p) in part.enumerate_pixels() {
        let inside =
            (band..part.width() - band).contains(&x) && (band..part.height() - band).contains(&y);
        if !inside {
            let q = full.get_pixel(x + x0 * scale, y + y0 * scale);
            sum += (0..3)
                .map(|c| (f32::from(p.0[c]) - f32::from(q.0[c])).abs())
                .sum::<f32>()
                / 3.0;
            n += 1.0;
        }
    }
    sum / n
}
