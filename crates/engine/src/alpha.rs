//! Alpha, kept apart from RGB: the colour under fully transparent pixels is filled from the
//! nearest visible pixel before inference (so no dark halo bleeds into visible edges), the
//! alpha plane is upscaled with a windowed filter, and images without kept alpha are
//! composited over white.

use std::collections::VecDeque;

use fast_image_resize as fr;
use image::DynamicImage;

use crate::planar::Planar;

/// Splits an image into planar RGB in [0,1] and, when it has alpha, its alpha plane in [0,1].
pub fn split(pixels: &DynamicImage) -> (Planar, Option<Vec<f32>>) {
    let (w, h) = (pixels.width() as usize, pixels.height() as usize);
    let mut rgb = Planar::zeros(w, h);
    let n = w * h;
    if pixels.color().has_alpha() {
        let rgba = pixels.to_rgba32f();
        let mut alpha = Vec::with_capacity(n);
        for (i, p) in rgba.pixels().enumerate() {
            for c in 0..3 {
                rgb.data[c * n + i] = p.0[c];
            }
            alpha.push(p.0[3]);
        }
        (rgb, Some(alpha))
    } else {
        for (i, p) in pixels.to_rgb32f().pixels().enumerate() {
            for c in 0..3 {
                rgb.data[c * n + i] = p.0[c];
            }
        }
        (rgb, None)
    }
}

/// Composites straight-alpha RGB over white, in place.
pub fn composite_over_white(rgb: &mut Planar, alpha: &[f32]) {
    for plane in rgb.data.chunks_exact_mut(alpha.len()) {
        for (v, &a) in plane.iter_mut().zip(alpha) {
            *v = *v * a + (1.0 - a);
        }
    }
}

/// Gives every fully transparent pixel the colour of its nearest (4-connected steps) pixel
/// with alpha > 0. An image with no visible pixel is left as it is.
pub fn fill_transparent(rgb: &mut Planar, alpha: &[f32]) {
    let (w, h, n) = (rgb.width, rgb.height, alpha.len());
    let mut source: Vec<u32> = vec![u32::MAX; n];
    let mut queue = VecDeque::new();
    for (i, &a) in alpha.iter().enumerate() {
        if a > 0.0 {
            source[i] = i as u32;
            queue.push_back(i);
        }
    }
    if queue.len() == n || queue.is_empty() {
        return;
    }
    while let Some(i) = queue.pop_front() {
        let (x, y) = (i % w, i / w);
        let neighbours = [
            (x > 0).then(|| i - 1),
            (x + 1 < w).then(|| i + 1),
            (y > 0).then(|| i - w),
            (y + 1 < h).then(|| i + w),
        ];
        for j in neighbours.into_iter().flatten() {
            if source[j] == u32::MAX {
                source[j] = source[i];
                queue.push_back(j);
            }
        }
    }
    for plane in rgb.data.chunks_exact_mut(n) {
        for (i, &s) in source.iter().enumerate() {
            if alpha[i] == 0.0 {
                plane[i] = plane[s as usize];
            }
        }
    }
}

/// Upscales an alpha plane (values in [0,1]) to `out_w` x `out_h` with Lanczos3. Works in
/// 16 bits (exact for 8- and 16-bit sources); the resizer clamps to the integer range.
pub fn upscale(alpha: &[f32], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u16> {
    let bytes: Vec<u8> = alpha
        .iter()
        .flat_map(|v| ((v * 65535.0).round() as u16).to_ne_bytes())
        .collect();
    let src = fr::images::Image::from_vec_u8(w as u32, h as u32, bytes, fr::PixelType::U16)
        .expect("buffer size matches the plane");
    let mut dst = fr::images::Image::new(out_w as u32, out_h as u32, fr::PixelType::U16);
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("same pixel type on both sides");
    dst.buffer()
        .chunks_exact(2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .collect()
}

/// 8-bit, opaque version of an image (alpha composited over white), for JPEG output.
pub fn flatten_to_8bit_opaque(pixels: &DynamicImage) -> DynamicImage {
    if !pixels.color().has_alpha() {
        return match pixels.color().channel_count() {
            1 => DynamicImage::ImageLuma8(pixels.to_luma8()),
            _ => DynamicImage::ImageRgb8(pixels.to_rgb8()),
        };
    }
    let mut rgba = pixels.to_rgba8();
    for p in rgba.pixels_mut() {
        let a = u32::from(p.0[3]);
        for c in 0..3 {
            p.0[c] = ((u32::from(p.0[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
        p.0[3] = 255;
    }
    DynamicImage::ImageRgba8(rgba).to_rgb8().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_copies_nearest_visible_colour() {
        // 5x1: visible red at x=0, visible blue at x=4, transparent between.
        let mut rgb = Planar {
            width: 5,
            height: 1,
            data: vec![0.0; 15],
        };
        rgb.data[0] = 1.0; // R of x=0
        rgb.data[10 + 4] = 1.0; // B of x=4
        let alpha = [1.0, 0.0, 0.0, 0.0, 0.5];
        fill_transparent(&mut rgb, &alpha);
        assert_eq!(&rgb.data[0..5], &[1.0, 1.0, 1.0, 0.0, 0.0]); // R
        assert_eq!(&rgb.data[10..15], &[0.0, 0.0, 0.0, 1.0, 1.0]); // B
    }

    #[test]
    fn alpha_upscale_keeps_flat_regions() {
        let (w, h) = (8, 8);
        let alpha: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 4 { 0.0 } else { 1.0 })
            .collect();
        let up = upscale(&alpha, w, h, 32, 32);
        assert_eq!(up.len(), 32 * 32);
        assert_eq!(up[0], 0);
        assert_eq!(up[31], u16::MAX);
    }
}
