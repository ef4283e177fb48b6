//! Plain resampling in place of a network: the fast engines of the load-testing mode. They
//! keep the image contract (limits, x2/x4 sizes, alpha per `preserve_alpha`, the input's
//! channel layout and depth) at a tiny fraction of a model's cost.

use fast_image_resize as fr;
use image::DynamicImage;

/// How the fast engines resample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// Lanczos3 convolution: smooth, the classic "not a model" baseline.
    Lanczos,
    /// Nearest neighbour: the cheapest possible, blocky.
    Nearest,
}

/// `pixels` resized to `width` x `height`. With `keep_alpha` false, transparency is composited
/// over white first and the result is opaque 8-bit (as for JPEG output).
pub fn resize(
    pixels: &DynamicImage,
    (width, height): (u32, u32),
    keep_alpha: bool,
    resample: Resample,
) -> DynamicImage {
    let flattened;
    let source = if pixels.color().has_alpha() && !keep_alpha {
        flattened = crate::alpha::flatten_to_8bit_opaque(pixels);
        &flattened
    } else {
        pixels
    };
    let mut out = DynamicImage::new(width, height, source.color());
    let algorithm = match resample {
        Resample::Lanczos => fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3),
        Resample::Nearest => fr::ResizeAlg::Nearest,
    };
    fr::Resizer::new()
        .resize(
            source,
            &mut out,
            &fr::ResizeOptions::new().resize_alg(algorithm),
        )
        .expect("source and destination share a pixel type the resizer supports");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, Rgba, RgbaImage};

    fn half_transparent(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
            Rgba([
                (x * 30) as u8,
                (y * 30) as u8,
                200,
                if x < w / 2 { 0 } else { 255 },
            ])
        }))
    }

    #[test]
    fn sizes_layouts_and_alpha_follow_the_request() {
        let input = half_transparent(6, 4);
        for resample in [Resample::Lanczos, Resample::Nearest] {
            let kept = resize(&input, (24, 16), true, resample);
            assert_eq!((kept.dimensions(), kept.color()), ((24, 16), input.color()));
            let rgba = kept.to_rgba8();
            assert_eq!(
                rgba.get_pixel(0, 0).0[3],
                0,
                "transparent side stays transparent"
            );
            assert_eq!(rgba.get_pixel(23, 15).0[3], 255, "opaque side stays opaque");

            let flat = resize(&input, (12, 8), false, resample);
            assert_eq!(flat.color(), image::ColorType::Rgb8);
            assert_eq!(
                flat.to_rgb8().get_pixel(0, 0).0,
                [255, 255, 255],
                "over white"
            );
        }
        let grey16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
            3,
            3,
            image::Luma([40_000u16]),
        ));
        let out = resize(&grey16, (12, 12), true, Resample::Lanczos);
        assert_eq!(out.color(), image::ColorType::L16);
        assert!(out.to_luma16().pixels().all(|p| p.0[0] == 40_000));
    }

    #[test]
    fn nearest_repeats_each_pixel() {
        let input = half_transparent(5, 3);
        let out = resize(&input, (10, 6), true, Resample::Nearest).to_rgba8();
        let source = input.to_rgba8();
        for (x, y, p) in out.enumerate_pixels() {
            assert_eq!(p, source.get_pixel(x / 2, y / 2));
        }
    }
}
