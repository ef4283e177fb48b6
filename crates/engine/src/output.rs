//! The output raster: filled row band by row band from the tiler (planar RGB f32, converted as
//! `round(clamp(v, 0, 1) * MAX)`), then the upscaled alpha, then handed out as a `DynamicImage`
//! with the input's layout (grey stays grey, 16-bit stays 16-bit).

use image::{DynamicImage, ImageBuffer};
use rayon::prelude::*;

use crate::planar::PlanarRows;

/// Channel layout and depth of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub grey: bool,
    pub alpha: bool,
    pub sixteen_bit: bool,
}

impl Layout {
    pub fn of(pixels: &DynamicImage, keep_alpha: bool) -> Self {
        let color = pixels.color();
        Layout {
            grey: color.channel_count() <= 2,
            alpha: keep_alpha && color.has_alpha(),
            sixteen_bit: color.bytes_per_pixel() / color.channel_count() > 1,
        }
    }
    fn channels(self) -> usize {
        (if self.grey { 1 } else { 3 }) + usize::from(self.alpha)
    }

    /// Bytes of a `width` x `height` raster in this layout.
    pub fn raster_bytes(self, width: usize, height: usize) -> u64 {
        (width * height * self.channels() * if self.sixteen_bit { 2 } else { 1 }) as u64
    }
}

/// A channel value type of the output.
pub trait Sample: Copy + Default + Send + Sync + image::Primitive + 'static {
    const SCALE: f32;
    /// `round(clamp(v, 0, 1) * MAX)`, rounding half away from zero.
    fn from_unit(v: f32) -> Self;
    fn from_u16(v: u16) -> Self;
}

/// `round(clamp(v, 0, 1) * max)`, half away from zero, without a libm call: for x >= 0,
/// `x - trunc(x)` is exact in f32, so comparing it with 0.5 rounds exactly as `f32::round`.
fn round_unit(v: f32, max: f32) -> u32 {
    let x = v.clamp(0.0, 1.0) * max;
    let whole = x as u32;
    whole + u32::from(x - whole as f32 >= 0.5)
}

impl Sample for u8 {
    const SCALE: f32 = 255.0;
    fn from_unit(v: f32) -> Self {
        round_unit(v, Self::SCALE) as u8
    }
    fn from_u16(v: u16) -> Self {
        ((u32::from(v) * 255 + 32767) / 65535) as u8
    }
}

impl Sample for u16 {
    const SCALE: f32 = 65535.0;
    fn from_unit(v: f32) -> Self {
        round_unit(v, Self::SCALE) as u16
    }
    fn from_u16(v: u16) -> Self {
        v
    }
}

/// Rec. 709 luma, as the `image` crate converts RGB to grey.
fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

pub struct Raster<T> {
    width: usize,
    height: usize,
    layout: Layout,
    data: Vec<T>,
}

impl<T: Sample> Raster<T> {
    pub fn new(width: usize, height: usize, layout: Layout) -> Self {
        Raster {
            width,
            height,
            layout,
            data: vec![T::default(); width * height * layout.channels()],
        }
    }

    /// Writes planar RGB rows starting at row `y0`, spread over the cores.
    pub fn write_rgb_rows(&mut self, y0: usize, rows: PlanarRows) {
        let (ch, width, grey) = (self.layout.channels(), self.width, self.layout.grey);
        self.data[y0 * width * ch..][..rows.height * width * ch]
            .par_chunks_exact_mut(ch * width)
            .enumerate()
            .for_each(|(y, out)| {
                let [r, g, b] = rows.row(y);
                let pixels = out.chunks_exact_mut(ch).zip(r).zip(g).zip(b);
                for (((px, &r), &g), &b) in pixels {
                    if grey {
                        px[0] = T::from_unit(luma(r, g, b));
                    } else {
                        px[0] = T::from_unit(r);
                        px[1] = T::from_unit(g);
                        px[2] = T::from_unit(b);
                    }
                }
            });
    }

    /// Writes the alpha channel (16-bit values, one per pixel).
    pub fn write_alpha(&mut self, alpha: &[u16]) {
        let ch = self.layout.channels();
        self.data
            .par_chunks_exact_mut(ch)
            .zip(alpha.par_iter())
            .for_each(|(px, &a)| px[ch - 1] = T::from_u16(a));
    }

    fn buffer<P: image::Pixel<Subpixel = T>>(self) -> ImageBuffer<P, Vec<T>> {
        ImageBuffer::from_raw(self.width as u32, self.height as u32, self.data)
            .expect("raster size matches its layout")
    }
}

/// An output raster of either depth.
pub enum Output {
    Eight(Raster<u8>),
    Sixteen(Raster<u16>),
}

impl Output {
    pub fn new(width: usize, height: usize, layout: Layout) -> Self {
        if layout.sixteen_bit {
            Output::Sixteen(Raster::new(width, height, layout))
        } else {
            Output::Eight(Raster::new(width, height, layout))
        }
    }

    pub fn write_rgb_rows(&mut self, y0: usize, rows: PlanarRows) {
        match self {
            Output::Eight(r) => r.write_rgb_rows(y0, rows),
            Output::Sixteen(r) => r.write_rgb_rows(y0, rows),
        }
    }

    pub fn write_alpha(&mut self, alpha: &[u16]) {
        match self {
            Output::Eight(r) => r.write_alpha(alpha),
            Output::Sixteen(r) => r.write_alpha(alpha),
        }
    }

    pub fn into_image(self) -> DynamicImage {
        use DynamicImage as D;
        match self {
            Output::Eight(r) => match (r.layout.grey, r.layout.alpha) {
                (true, false) => D::ImageLuma8(r.buffer()),
                (true, true) => D::ImageLumaA8(r.buffer()),
                (false, false) => D::ImageRgb8(r.buffer()),
                (false, true) => D::ImageRgba8(r.buffer()),
            },
            Output::Sixteen(r) => match (r.layout.grey, r.layout.alpha) {
                (true, false) => D::ImageLuma16(r.buffer()),
                (true, true) => D::ImageLumaA16(r.buffer()),
                (false, false) => D::ImageRgb16(r.buffer()),
                (false, true) => D::ImageRgba16(r.buffer()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_rounds_and_clamps() {
        assert_eq!(u8::from_unit(0.5 / 255.0 + 1e-4), 1);
        assert_eq!(u8::from_unit(0.4 / 255.0), 0);
        assert_eq!(u8::from_unit(254.6 / 255.0), 255);
        assert_eq!(u8::from_unit(-0.2), 0);
        assert_eq!(u8::from_unit(1.3), 255);
        assert_eq!(u16::from_unit(0.5), 32768);
        // Agrees with f32::round everywhere on a dense sweep, halves included.
        for i in 0..=2_000_000u32 {
            let v = i as f32 / 2_000_000.0;
            assert_eq!(u8::from_unit(v), (v * 255.0).round() as u8, "{v}");
            assert_eq!(u16::from_unit(v), (v * 65535.0).round() as u16, "{v}");
        }
        for level in 0..255u32 {
            let half = (level as f32 + 0.5) / 255.0;
            assert_eq!(u8::from_unit(half), (half * 255.0).round() as u8);
        }
        assert_eq!(u8::from_u16(65535), 255);
        assert_eq!(u8::from_u16(257 * 100), 100);
    }
}
