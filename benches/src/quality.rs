//! Image-quality metrics and resizing for the quality bench, following the usual
//! super-resolution protocol (the numbers match Pillow + scikit-image, see the tests).

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

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(width: u32, height: u32, f: impl Fn(u32, u32, u32) -> u8) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([0, 1, 2].map(|c| f(x, y, c)))
        })
    }

    #[test]
    fn luma_spans_the_studio_range() {
        let black_white = pattern(2, 1, |x, _, _| if x == 0 { 0 } else { 255 });
        let y = luma(&black_white);
        assert!((y[0] - 16.0).abs() < 1e-12 && (y[1] - 235.0).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_a_known_difference() {
        let a = vec![100.0; 64];
        let b = vec![101.0; 64];
        assert!((psnr(&a, &b) - 20.0 * 255f64.log10()).abs() < 1e-12); // 48.13 dB
        let c: Vec<f64> = (0..64)
            .map(|i| 100.0 + if i % 2 == 0 { 2.0 } else { 0.0 })
            .collect();
        assert!((psnr(&a, &c) - 10.0 * (255.0f64 * 255.0 / 2.0).log10()).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_identical_images_is_one() {
        let a: Vec<f64> = (0..400).map(|i| f64::from((i * 37 % 251) as u8)).collect();
        assert!((ssim(&a, &a, 20) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn shave_keeps_the_inside() {
        let plane: Vec<f64> = (0..20).map(f64::from).collect(); // 5 wide, 4 high
        assert_eq!(
            shave(&plane, 5, 1),
            (vec![6.0, 7.0, 8.0, 11.0, 12.0, 13.0], 3)
        );
    }

    /// Numbers from scikit-image 0.26.0 (`structural_similarity` with the settings above) and
    /// NumPy on the same two pictures, MATLAB luma, 2 px shaved.
    #[test]
    fn metrics_match_scikit_image() {
        let a = pattern(24, 20, |x, y, c| {
            ((x * 7 + y * 13 + c * 50 + (x * y) % 17) % 256) as u8
        });
        let b = pattern(24, 20, |x, y, c| {
            let noise = ((x * 31 + y * 17 + c * 7) % 11) as i32 - 5;
            (i32::from(a.get_pixel(x, y).0[c as usize]) + noise).clamp(0, 255) as u8
        });
        let (ya, w) = shave(&luma(&a), 24, 2);
        let (yb, _) = shave(&luma(&b), 24, 2);
        assert!((psnr(&ya, &yb) - 45.6634124929).abs() < 1e-8);
        assert!((ssim(&ya, &yb, w) - 0.9990750840).abs() < 1e-9);
    }

    /// Pillow 13.0.0: `Image.fromarray(p).resize((6, 4), Image.BICUBIC)` of the stripes below.
    #[test]
    fn downscale_matches_pillow() {
        let stripes = pattern(
            12,
            8,
            |x, y, c| if (x / 3 + y + c) % 3 == 0 { 255 } else { 0 },
        );
        let pillow: [u8; 72] = [
            109, 31, 115, 71, 74, 113, 38, 120, 109, 115, 114, 38, 113, 71, 74, 109, 31, 115, 97,
            100, 57, 100, 80, 78, 102, 62, 102, 63, 99, 105, 78, 100, 80, 97, 100, 57, 57, 100, 97,
            80, 100, 78, 105, 99, 63, 102, 62, 102, 78, 80, 100, 57, 100, 97, 115, 31, 109, 74, 71,
            113, 38, 114, 115, 109, 120, 38, 113, 74, 71, 115, 31, 109,
        ];
        let ours = resize(&stripes, 6, 4, FilterType::CatmullRom);
        for (o, p) in ours.as_raw().iter().zip(pillow) {
            assert!(o.abs_diff(p) <= 1, "{:?}", ours.as_raw());
        }
    }
}
