//! Makes `docs/src/images/comparison.png`, the before/after picture of the README and the Models
//! page: one photo crop upscaled x4 three ways, side by side and labelled: Lanczos3 (as the
//! quality bench does it), then `span` and `realesr-general-x4v3` through the engine.
//! Needs scripts/setup.sh's photos and models.
//!
//! `cargo run --release -p upres-benches --example comparison [-- PHOTO X Y SIZE]`, from
//! anywhere in the checkout (about 1 s once built). Default crop: the mission patch on
//! scikit-image's astronaut, 84x84 at 129,343 (panels 336 px): its small lettering shows the
//! differences best.

use std::path::Path;

use fast_image_resize::FilterType;
use image::{DynamicImage, Rgb, RgbImage};
use upres_benches::engine_config;
use upres_benches::quality::resize;
use upres_engine::{Engine, Image, UpscaleRequest};

const GAP: u32 = 8;
const LABEL: u32 = 24; // white strip under the panels
const MODELS: [&str; 2] = ["span", "realesr-general-x4v3"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let num = |i: usize, default: &str| arg(i, default).parse::<u32>().expect("X Y SIZE: numbers");
    let (name, x, y, size) = (
        arg(0, "astronaut.png"),
        num(1, "129"),
        num(2, "343"),
        num(3, "84"),
    );

    let photo = image::open(upres_engine::paths::resolve(
        &Path::new(".cache/testdata").join(&name),
    ))
    .expect("run scripts/setup.sh first");
    let crop = photo.crop_imm(x, y, size, size).to_rgb8();
    let engine = Engine::new(&engine_config()).expect("run scripts/setup.sh first");

    let lanczos = resize(&crop, size * 4, size * 4, FilterType::Lanczos3);
    let mut panels = vec![("LANCZOS3".to_string(), lanczos)];
    for model in MODELS {
        let request = UpscaleRequest {
            model: model.into(),
            scale: 4,
            preserve_alpha: true,
        };
        let out = engine
            .upscale(&Image::new(DynamicImage::ImageRgb8(crop.clone())), &request)
            .expect("model installed (scripts/setup.sh)");
        panels.push((model.to_uppercase(), out.pixels.to_rgb8()));
    }

    let side = size * 4;
    let count = panels.len() as u32;
    let mut canvas = RgbImage::from_pixel(
        count * side + (count - 1) * GAP,
        side + LABEL,
        Rgb([255; 3]),
    );
    for (i, (label, panel)) in panels.iter().enumerate() {
        let left = i as u32 * (side + GAP);
        image::imageops::replace(&mut canvas, panel, left.into(), 0);
        draw_text(&mut canvas, label, left + 3, side + 5, 3);
    }
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/images");
    std::fs::create_dir_all(&docs).unwrap();
    let path = docs.canonicalize().unwrap().join("comparison.png");
    canvas.save(&path).unwrap();
    println!(
        "{} ({}x{}): {name} at {x},{y}, {size} px, x4",
        path.display(),
        canvas.width(),
        canvas.height()
    );
}

/// Draws upper-case `text` with a 3x5 bitmap font, each font pixel `px` x `px`.
fn draw_text(canvas: &mut RgbImage, text: &str, x: u32, y: u32, px: u32) {
    for (i, c) in text.chars().enumerate() {
        for (row, bits) in glyph(c).into_iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    let (gx, gy) = (x + (i as u32 * 4 + col) * px, y + row as u32 * px);
                    for (dx, dy) in (0..px).flat_map(|dx| (0..px).map(move |dy| (dx, dy))) {
                        canvas.put_pixel(gx + dx, gy + dy, Rgb([0; 3]));
                    }
                }
            }
        }
    }
}

/// Rows top to bottom, 3 bits each (4 = left column); only the letters the labels use.
fn glyph(c: char) -> [u8; 5] {
    match c {
        'A' => [2, 5, 7, 5, 5],
        'C' => [3, 4, 4, 4, 3],
        'E' => [7, 4, 6, 4, 7],
        'G' => [3, 4, 5, 5, 3],
        'L' => [4, 4, 4, 4, 7],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'V' => [5, 5, 5, 5, 2],
        'X' => [5, 5, 2, 5, 5],
        'Z' => [7, 1, 2, 4, 7],
        '3' => [6, 1, 2, 1, 6],
        '4' => [5, 5, 7, 1, 1],
        '-' => [0, 0, 7, 0, 0],
        _ => [0; 5],
    }
}
