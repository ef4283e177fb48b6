//! Blending: tiles are cross-faded across their overlap with weights that sum to one at every
//! output pixel, into a band of output rows that is handed on as soon as no later tile touches it.

use rayon::prelude::*;

use crate::planar::{PlanarRows, Rect};

/// Blend weight along one axis for each of `n_out` output pixels of a tile spanning
/// `[start, start + len)` of `total` input pixels: a linear ramp across the overlap at interior
/// edges, full weight at image borders.
fn axis_weights(start: usize, len: usize, total: usize, overlap: usize, scale: usize) -> Vec<f32> {
    let edge = |d: f32| (d / overlap as f32).clamp(0.0, 1.0);
    (0..len * scale)
        .map(|o| {
            if overlap == 0 {
                return 1.0;
            }
            let x = (o as f32 + 0.5) / scale as f32;
            let left = if start > 0 { edge(x) } else { 1.0 };
            let right = if start + len < total {
                edge(len as f32 - x)
            } else {
                1.0
            };
            left * right
        })
        .collect()
}
/// Blend weights of every tile along one axis, divided by their sum at each output pixel so
/// they add up to 1 there. The grid is separable (every tile of a column shares its x span),
/// so the 2-D weight of a tile, `wx * wy`, also sums to 1 over the tiles covering a pixel and
/// the blend needs no per-pixel weight sums.
pub(super) fn normalized_weights(
    spans: &[(usize, usize)],
    total: usize,
    overlap: usize,
    scale: usize,
) -> Vec<Vec<f32>> {
    let mut weights: Vec<Vec<f32>> = spans
        .iter()
        .map(|&(start, len)| axis_weights(start, len, total, overlap, scale))
        .collect();
    let mut sum = vec![0f32; total * scale];
    for (&(start, _), w) in spans.iter().zip(&weights) {
        sum[start * scale..][..w.len()]
            .iter_mut()
            .zip(w)
            .for_each(|(s, v)| *s += v);
    }
    for (&(start, _), w) in spans.iter().zip(&mut weights) {
        w.iter_mut()
            .zip(&sum[start * scale..])
            .for_each(|(v, s)| *v /= s);
    }
    weights
}

/// Blended output rows that tiles still touch, as weighted sums (weights already normalised).
/// Allocated once, one tile row high: after a flush the unfinished rows move to the front.
pub(super) struct Band {
    width: usize,
    rows: usize,
    /// First output row held.
    y0: usize,
    /// Planar RGB, three planes of `rows * width`.
    acc: Vec<f32>,
}

impl Band {
    pub(super) fn new(width: usize, rows: usize) -> Self {
        Band {
            width,
            rows,
            y0: 0,
            acc: vec![0.0; 3 * rows * width],
        }
    }

    /// Adds a tile at output position (`ox`, `oy`), weighted by `wx[x] * wy[y]`. Rows are
    /// independent: spread over the cores.
    pub(super) fn add(
        &mut self,
        tile: PlanarRows,
        (ox, oy): (usize, usize),
        wx: &[f32],
        wy: &[f32],
    ) {
        let (first, width) = (oy - self.y0, self.width);
        for (c, plane) in self.acc.chunks_exact_mut(self.rows * width).enumerate() {
            plane[first * width..(first + wy.len()) * width]
                .par_chunks_exact_mut(width)
                .zip(wy.par_iter())
                .enumerate()
                .for_each(|(ty, (acc, &wrow))| {
                    let row = tile.row(ty)[c];
                    for ((a, &v), &wcol) in acc[ox..ox + wx.len()].iter_mut().zip(row).zip(wx) {
                        *a += wcol * wrow * v;
                    }
                });
        }
    }

    /// Hands out rows `[y0, end)` and drops them.
    pub(super) fn flush(&mut self, end: usize, sink: &mut impl FnMut(usize, PlanarRows)) {
        let (done, width) = (end - self.y0, self.width);
        sink(
            self.y0,
            PlanarRows::new(&self.acc, width, self.rows).crop(Rect {
                x: 0,
                y: 0,
                w: width,
                h: done,
            }),
        );
        for plane in self.acc.chunks_exact_mut(self.rows * width) {
            plane.copy_within(done * width.., 0);
            plane[(self.rows - done) * width..].fill(0.0);
        }
        self.y0 = end;
    }
}
