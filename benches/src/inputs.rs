//! Inputs and settings shared by the benchmarks.

use std::path::Path;

use image::DynamicImage;
use upres_engine::Image;

/// A comma-separated list from the environment variable `name` (unparsable items dropped), or
/// `None` when it is unset.
pub fn env_list<T: std::str::FromStr>(name: &str) -> Option<Vec<T>> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect(),
    )
}

/// The environment variable `name` parsed, or `default` when it is unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median (the upper one of an even count); `values` must not be empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The centre `size` x `size` of scikit-image's astronaut photo (installed by
/// scripts/setup.sh into .cache/testdata; 512x512, enlarged with Lanczos3 for larger sizes), as
/// 8-bit RGB.
pub fn photo_crop(size: u32) -> Image {
    let mut photo = image::open(upres_engine::paths::resolve(Path::new(
        ".cache/testdata/astronaut.png",
    )))
    .expect("run scripts/setup.sh first");
    if size > photo.width().min(photo.height()) {
        photo = photo.resize(size, size, image::imageops::FilterType::Lanczos3);
    }
    let (x, y) = ((photo.width() - size) / 2, (photo.height() - size) / 2);
    Image::new(DynamicImage::ImageRgb8(
        photo.crop_imm(x, y, size, size).to_rgb8(),
    ))
}
