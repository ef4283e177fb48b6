//! The quality metrics and resizing against reference numbers (scikit-image, NumPy, Pillow).
//! An integration test, so that `cargo test` does not build the bench library a second time
//! in test mode (with its server helpers, one of the slowest units of the workspace's build).

use fast_image_resize::FilterType;
use image::RgbImage;
use upres_benches::quality::{luma, psnr, resize, shave, ssim};

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
        109, 31, 115, 71, 74, 113, 38, 120, 109, 115, 114, 38, 113, 71, 74, 109, 31, 115, 97, 100,
        57, 100, 80, 78, 102, 62, 102, 63, 99, 105, 78, 100, 80, 97, 100, 57, 57, 100, 97, 80, 100,
        78, 105, 99, 63, 102, 62, 102, 78, 80, 100, 57, 100, 97, 115, 31, 109, 74, 71, 113, 38,
        114, 115, 109, 120, 38, 113, 74, 71, 115, 31, 109,
    ];
    let ours = resize(&stripes, 6, 4, FilterType::CatmullRom);
    for (o, p) in ours.as_raw().iter().zip(pillow) {
        assert!(o.abs_diff(p) <= 1, "{:?}", ours.as_raw());
    }
}
