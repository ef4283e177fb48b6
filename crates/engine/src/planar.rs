//! Planar RGB in f32, the models' layout: whole images, rows inside a larger buffer (so a crop
//! needs no copy), and the rectangles and margins that tiles are cut by.

use crate::catalog::Border;

/// Index into `[0, len)` for a position `i` that may lie beyond either end.
fn border_index(i: isize, len: usize, border: Border) -> usize {
    let n = len as isize;
    match border {
        Border::Replicate => i.clamp(0, n - 1) as usize,
        Border::Reflect if n == 1 => 0,
        Border::Reflect => {
            let period = 2 * (n - 1);
            let j = i.rem_euclid(period);
            (if j < n { j } else { period - j }) as usize
        }
    }
}

/// RGB image as three planes of f32 in [0,1] (the models' NCHW layout without the batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Planar {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Planar {
    pub fn zeros(width: usize, height: usize) -> Self {
        Planar {
            width,
            height,
            data: vec![0.0; 3 * width * height],
        }
    }

    /// The sub-image `rect` grown by `margin` on each side, as planar data of
    /// `(rect.w + left + right) x (rect.h + top + bottom)`; pixels beyond the image come from
    /// `border`.
    pub fn crop_extended(&self, rect: Rect, margin: Sides, border: Border) -> Vec<f32> {
        let span = |start: usize, len: usize, (before, after): (usize, usize), total: usize| {
            let (from, to) = (
                start as isize - before as isize,
                (start + len + after) as isize,
            );
            (from..to)
                .map(|i| border_index(i, total, border))
                .collect::<Vec<_>>()
        };
        let (xs, ys) = (
            span(rect.x, rect.w, (margin.left, margin.right), self.width),
            span(rect.y, rect.h, (margin.top, margin.bottom), self.height),
        );
        let mut out = Vec::with_capacity(3 * xs.len() * ys.len());
        for plane in self.data.chunks_exact(self.width * self.height) {
            for &y in &ys {
                let row = &plane[y * self.width..][..self.width];
                out.extend(xs.iter().map(|&x| row[x]));
            }
        }
        out
    }
}

/// Pixels on each side of a rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    pub left: usize,
    pub top: usize,
    pub right: usize,
    pub bottom: usize,
}

impl Sides {
    pub fn uniform(n: usize) -> Self {
        Sides {
            left: n,
            top: n,
            right: n,
            bottom: n,
        }
    }
}

/// Planar RGB rows inside a larger planar buffer, so that a crop needs no copy: row `y` of
/// channel `c` is `data[c * plane + y * stride..][..width]`.
#[derive(Debug, Clone, Copy)]
pub struct PlanarRows<'a> {
    data: &'a [f32],
    plane: usize,
    stride: usize,
    pub width: usize,
    pub height: usize,
}

impl<'a> PlanarRows<'a> {
    /// All of planar data of `width` x `height`.
    pub fn new(data: &'a [f32], width: usize, height: usize) -> Self {
        PlanarRows {
            data,
            plane: width * height,
            stride: width,
            width,
            height,
        }
    }

    /// The part `rect` of these rows.
    pub(crate) fn crop(self, rect: Rect) -> Self {
        PlanarRows {
            data: &self.data[rect.y * self.stride + rect.x..],
            width: rect.w,
            height: rect.h,
            ..self
        }
    }

    /// Row `y` of each channel (R, G, B).
    pub fn row(&self, y: usize) -> [&'a [f32]; 3] {
        [0, 1, 2].map(|c| &self.data[c * self.plane + y * self.stride..][..self.width])
    }
}

/// A tile, in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borders_reflect_or_replicate() {
        let reflect: Vec<usize> = (-5..9)
            .map(|i| border_index(i, 4, Border::Reflect))
            .collect();
        assert_eq!(reflect, [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        let replicate: Vec<usize> = (-2..6)
            .map(|i| border_index(i, 4, Border::Replicate))
            .collect();
        assert_eq!(replicate, [0, 0, 0, 1, 2, 3, 3, 3]);
        assert_eq!(border_index(-7, 1, Border::Reflect), 0);
        let image = Planar {
            width: 3,
            height: 1,
            data: [1.0, 2.0, 3.0].repeat(3),
        };
        let whole = Rect {
            x: 0,
            y: 0,
            w: 3,
            h: 1,
        };
        let grown = image.crop_extended(whole, Sides::uniform(2), Border::Reflect);
        assert_eq!(grown.len(), 3 * 7 * 5);
        assert_eq!(grown[..7], [3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]); // the row above: itself
        assert_eq!(
            image.crop_extended(whole, Sides::uniform(0), Border::Reflect),
            image.data
        );
        let sides = Sides {
            left: 0,
            top: 1,
            right: 2,
            bottom: 0,
        };
        let grown = image.crop_extended(whole, sides, Border::Replicate);
        assert_eq!(
            grown[..10],
            [1.0, 2.0, 3.0, 3.0, 3.0, 1.0, 2.0, 3.0, 3.0, 3.0]
        );
    }
}
