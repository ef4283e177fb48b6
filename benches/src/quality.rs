//! Image-quality metrics and resizing for the quality bench, following the usual
//! super-resolution protocol (the numbers match Pillow + scikit-image: tests/quality.rs).

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// Luma as MATLAB's `rgb2ycbcr` (BT.601, studio range 16..235), unrounded.
pub fn luma(image: &RgbImage) -> Vec<f64> {
    image
        .pixels()
        .map(|p| {
            let [r, g, b] = p.0.map(f64::from);
            16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
        })
        .collect()
}

/// A plane without its outer `border` pixels on every side.
pub fn shave(plane: &[f64], width: usize, border: usize) -> (Vec<f64>, usize) {
    let height = plane.len() / width;
    let inner = width - 2 * border;
    let rows = plane.chunks(width).take(height - border).skip(border);
    (
        rows.flat_map(|row| &row[border..border + inner])
            .copied()
            .collect(),
        inner,
    )
}

/// PSNR in dB of two planes on the 0..255 scale.
pub fn psnr(a: &[f64], b: &[f64]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// Mean SSIM of two planes on the 0..255 scale, as scikit-image's `structural_similarity`
/// with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255`:
/// an 11-tap Gaussian window, averaged over the positions where the window fits.
pub fn ssim(a: &[f64], b: &[f64], width: usize) -> f64 {
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let product = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).collect::<Vec<_>>();
    let mean = |plane: &[f64]| gaussian_valid(plane, width);
    let (ma, mb) = (mean(a), mean(b));
    let (maa, mbb, mab) = (
        mean(&product(a, a)),
        mean(&product(b, b)),
        mean(&product(a, b)),
    );
    let sum: f64 = (0..ma.len())
        .map(|i| {
            let (ua, ub) = (ma[i], mb[i]);
            let (va, vb, cov) = (maa[i] - ua * ua, mbb[i] - ub * ub, mab[i] - ua * ub);
            ((2.0 * ua * ub + c1) * (2.0 * cov + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
        })
        .sum();
    sum / ma.len() as f64
}

/// Gaussian filter (sigma 1.5, radius 5, as scipy's `gaussian_filter`), only where it fits:
/// the output is 10 px narrower and shorter.
fn gaussian_valid(plane: &[f64], width: usize) -> Vec<f64> {
    const R: usize = 5;
    let taps: Vec<f64> = (0..=2 * R)
        .map(|i| (-0.5 * (i as f64 - R as f64).powi(2) / 2.25).exp())
        .collect();
    let total: f64 = taps.iter().sum();
    let taps: Vec<f64> = taps.iter().map(|t| t / total).collect();
    let height = plane.len() / width;
    let (w, h) = (width - 2 * R, height - 2 * R);
    let rows: Vec<f64> = (0..height)
        .flat_map(|y| (0..w).map(move |x| (y, x)))
        .map(|(y, x)| {
            (0..=2 * R)
                .map(|k| taps[k] * plane[y * width + x + k])
                .sum()
        })
        .collect();
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (y, x)))
        .map(|(y, x)| (0..=2 * R).map(|k| taps[k] * rows[(y + k) * w + x]).sum())
        .collect()
}

/// Resizes as Pillow does (same filters and fixed-point maths): `CatmullRom` is Pillow's
/// BICUBIC, `Lanczos3` its LANCZOS, antialiased when shrinking. Pillow filters rows first,
/// then columns, and clamps to 8 bits in between; fast_image_resize does columns first for
/// 8-bit images, so each axis is its own call here. Within 1 level of Pillow.
pub fn resize(image: &RgbImage, width: u32, height: u32, filter: FilterType) -> RgbImage {
    let rows_done = resize_raw(image, width, image.height(), filter);
    resize_raw(&rows_done, width, height, filter)
}

fn resize_raw(image: &RgbImage, width: u32, height: u32, filter: FilterType) -> RgbImage {
    let (w, h) = image.dimensions();
    let src = Image::from_vec_u8(w, h, image.as_raw().clone(), PixelType::U8x3).unwrap();
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    Resizer::new().resize(&src, &mut dst, &options).unwrap();
    RgbImage::from_raw(width, height, dst.into_vec()).unwrap()
}
