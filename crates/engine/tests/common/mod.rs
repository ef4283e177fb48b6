//! Shared by the engine's integration tests: the engine over the installed models, the
//! golden files and a minimal .npy reader.
#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::sync::OnceLock;

use image::{DynamicImage, RgbImage};
use upres_engine::{Engine, EngineArgs, Image, UpscaleRequest};

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&EngineArgs::default()).expect("run scripts/setup.sh first"))
}

/// An engine with settings changed from the defaults.
pub fn engine_with(configure: impl FnOnce(&mut EngineArgs)) -> Engine {
    let mut args = EngineArgs::default();
    configure(&mut args);
    Engine::new(&args).expect("run scripts/setup.sh first")
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
