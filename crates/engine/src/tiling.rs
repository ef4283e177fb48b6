//! Overlapping tiles: the image is cut into fixed-size tiles that overlap, each tile is run
//! through the model, and the outputs are cross-faded across the overlap (no hard cuts, no
//! seams). Output rows are streamed out as soon as no later tile can touch them, so memory
//! holds one band of tile rows in float, never the whole float output.

use rayon::prelude::*;

use crate::error::{EngineError, Result};

/// Tile size and overlap, in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileConfig {
    pub size: u32,
    pub overlap: u32,
}

impl Default for TileConfig {
    fn default() -> Self {
        TileConfig {
            size: 192,
            overlap: 16,
        }
    }
}

impl TileConfig {
    pub fn validate(self) -> Result<Self> {
        if self.size < 16 || self.overlap * 2 > self.size {
            return Err(EngineError::Inference(format!(
                "invalid tiling: tile {} and overlap {} (need tile >= 16 and overlap <= tile / 2)",
                self.size, self.overlap
            )));
        }
        Ok(self)
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

    /// The sub-image `rect`, as planar data.
    pub fn crop(&self, rect: Rect) -> Vec<f32> {
        let mut out = Vec::with_capacity(3 * rect.w * rect.h);
        for plane in self.data.chunks_exact(self.width * self.height) {
            for y in rect.y..rect.y + rect.h {
                let row = y * self.width;
                out.extend_from_slice(&plane[row + rect.x..row + rect.x + rect.w]);
            }
        }
        out
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

/// Tiles along one axis as (start, length): the fewest tiles of at most `size` that overlap by
/// at least `overlap`, all of one length and evenly spread, so no tile is mostly a repeat of
/// its neighbour (a 256-pixel side with 192-pixel tiles gets two tiles of 136, not two of 192).
fn spans(len: usize, size: usize, overlap: usize) -> Vec<(usize, usize)> {
    if len <= size {
        return vec![(0, len)];
    }
    let n = (len - overlap).div_ceil(size - overlap);
    let tile = (len + (n - 1) * overlap).div_ceil(n);
    (0..n)
        .map(|i| ((i * (len - tile)).div_ceil(n - 1), tile))
        .collect()
}

/// The tiles covering a `width` x `height` image, in rows, top to bottom.
pub fn grid(width: usize, height: usize, cfg: TileConfig) -> Vec<Vec<Rect>> {
    let (size, overlap) = (cfg.size as usize, cfg.overlap as usize);
    let xs = spans(width, size, overlap);
    spans(height, size, overlap)
        .into_iter()
        .map(|(y, h)| xs.iter().map(|&(x, w)| Rect { x, y, w, h }).collect())
        .collect()
}

/// Blend weight along one axis for each of `n_out` output pixels of a tile spanning
/// `[start, start + len)` of `total` input pixels. Interior edges ramp from 0 (the outer quarter
/// of the overlap, where padding spoils the model's output, is dropped) up to 1; image borders
/// keep full weight.
fn axis_weights(start: usize, len: usize, total: usize, overlap: usize, scale: usize) -> Vec<f32> {
    let margin = overlap as f32 / 4.0;
    let ramp = (overlap as f32 - 2.0 * margin).max(1.0);
    let edge = |d: f32| ((d - margin) / ramp).clamp(0.0, 1.0);
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
fn normalized_weights(
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

/// kxk area average of a planar RGB tile (k > 1).
fn box_downscale(data: &[f32], w: usize, h: usize, k: usize) -> Vec<f32> {
    let (ow, oh) = (w / k, h / k);
    let norm = 1.0 / (k * k) as f32;
    let mut out = Vec::with_capacity(3 * ow * oh);
    for plane in data.chunks_exact(w * h) {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = 0.0;
                for dy in 0..k {
                    let row = (oy * k + dy) * w + ox * k;
                    sum += plane[row..row + k].iter().sum::<f32>();
                }
                out.push(sum * norm);
            }
        }
    }
    out
}

/// Tiles thinner than this are edge-padded up to it before inference: the models' zero padding
/// would otherwise dominate a 1-pixel-wide tile and darken it.
const MIN_SIDE: usize = 16;

/// What the model is: planar tile data and its rect in, the planar output handed to the
/// callback (so it can be used in place, without a copy).
pub trait Infer: FnMut(&[f32], Rect, &mut dyn FnMut(&[f32])) -> Result<()> {}
impl<F: FnMut(&[f32], Rect, &mut dyn FnMut(&[f32])) -> Result<()>> Infer for F {}

/// Runs `infer` on `rect` and hands its output to `consume`. A thin tile is edge-padded to
/// `MIN_SIDE`, centred so that the model's own zero padding stays away from the real pixels,
/// and the output cropped back.
fn infer_tile(
    input: &Planar,
    rect: Rect,
    model_scale: usize,
    infer: &mut impl Infer,
    consume: &mut dyn FnMut(&[f32]),
) -> Result<()> {
    let padded = Rect {
        w: rect.w.max(MIN_SIDE),
        h: rect.h.max(MIN_SIDE),
        ..rect
    };
    let (left, top) = ((padded.w - rect.w) / 2, (padded.h - rect.h) / 2);
    let tile = input.crop(rect);
    let data = if padded == rect {
        tile
    } else {
        let clamp = |v: usize, offset: usize, len: usize| v.saturating_sub(offset).min(len - 1);
        let mut out = Vec::with_capacity(3 * padded.w * padded.h);
        for plane in tile.chunks_exact(rect.w * rect.h) {
            for y in 0..padded.h {
                let row = &plane[clamp(y, top, rect.h) * rect.w..][..rect.w];
                out.extend((0..padded.w).map(|x| row[clamp(x, left, rect.w)]));
            }
        }
        out
    };
    let expected = 3 * padded.w * padded.h * model_scale * model_scale;
    let mut wrong_size = None;
    infer(&data, padded, &mut |raw: &[f32]| {
        if raw.len() != expected {
            wrong_size = Some(raw.len());
        } else if padded == rect {
            consume(raw);
        } else {
            let (pw, ph) = (padded.w * model_scale, padded.h * model_scale);
            let (w, h) = (rect.w * model_scale, rect.h * model_scale);
            let (x0, y0) = (left * model_scale, top * model_scale);
            let cropped: Vec<f32> = raw
                .chunks_exact(pw * ph)
                .flat_map(|plane| {
                    (y0..y0 + h).flat_map(move |y| plane[y * pw + x0..][..w].iter().copied())
                })
                .collect();
            consume(&cropped);
        }
    })?;
    match wrong_size {
        Some(got) => Err(EngineError::Inference(format!(
            "model returned {got} values for a {}x{} tile, expected {expected}",
            padded.w, padded.h
        ))),
        None => Ok(()),
    }
}

/// Blended output rows that tiles still touch, as weighted sums (weights already normalised).
/// Allocated once, one tile row high: after a flush the unfinished rows move to the front.
struct Band {
    width: usize,
    /// First output row held.
    y0: usize,
    /// Interleaved RGB, `rows * width * 3`.
    acc: Vec<f32>,
}

impl Band {
    fn new(width: usize, rows: usize) -> Self {
        Band {
            width,
            y0: 0,
            acc: vec![0.0; rows * width * 3],
        }
    }

    /// Adds a planar tile of `tw` x `th` output pixels at output position (`ox`, `oy`), weighted
    /// by `wx[x] * wy[y]`. Rows are independent: spread over the cores.
    fn add(&mut self, tile: &[f32], (ox, oy): (usize, usize), wx: &[f32], wy: &[f32]) {
        let (tw, th, width) = (wx.len(), wy.len(), self.width);
        let first = oy - self.y0;
        let plane = tw * th;
        self.acc[first * width * 3..(first + th) * width * 3]
            .par_chunks_exact_mut(width * 3)
            .zip(wy.par_iter())
            .enumerate()
            .for_each(|(ty, (acc, &wrow))| {
                let acc = &mut acc[ox * 3..(ox + tw) * 3];
                let at = |c: usize| &tile[c * plane + ty * tw..][..tw];
                let (r, g, b) = (at(0), at(1), at(2));
                for (tx, px) in acc.chunks_exact_mut(3).enumerate() {
                    let w = wx[tx] * wrow;
                    px[0] += w * r[tx];
                    px[1] += w * g[tx];
                    px[2] += w * b[tx];
                }
            });
    }

    /// Hands out rows `[y0, end)` and drops them.
    fn flush(&mut self, end: usize, sink: &mut impl FnMut(usize, &[f32])) {
        let done = (end - self.y0) * self.width * 3;
        sink(self.y0, &self.acc[..done]);
        self.acc.copy_within(done.., 0);
        let kept = self.acc.len() - done;
        self.acc[kept..].fill(0.0);
        self.y0 = end;
    }
}

/// Upscales `input` by `model_scale / downscale` tile by tile. `infer` maps a planar tile of
/// `w` x `h` to its planar output `model_scale` times larger. `sink` receives finished output
/// rows in order, as `(first_row, interleaved RGB f32 rows)`, values not yet clamped.
pub fn upscale(
    input: &Planar,
    cfg: TileConfig,
    model_scale: usize,
    downscale: usize,
    mut infer: impl Infer,
    mut sink: impl FnMut(usize, &[f32]),
) -> Result<()> {
    let scale = model_scale / downscale;
    let rows = grid(input.width, input.height, cfg);
    let overlap = cfg.overlap as usize;
    let x_spans: Vec<_> = rows[0].iter().map(|r| (r.x, r.w)).collect();
    let y_spans: Vec<_> = rows.iter().map(|row| (row[0].y, row[0].h)).collect();
    let wx = normalized_weights(&x_spans, input.width, overlap, scale);
    let wy = normalized_weights(&y_spans, input.height, overlap, scale);
    let mut band = Band::new(input.width * scale, y_spans[0].1 * scale);
    for (r, row) in rows.iter().enumerate() {
        for (c, &rect) in row.iter().enumerate() {
            let at = (rect.x * scale, rect.y * scale);
            infer_tile(input, rect, model_scale, &mut infer, &mut |raw| {
                if downscale > 1 {
                    let (w, h) = (rect.w * model_scale, rect.h * model_scale);
                    band.add(&box_downscale(raw, w, h, downscale), at, &wx[c], &wy[r]);
                } else {
                    band.add(raw, at, &wx[c], &wy[r]);
                }
            })?;
        }
        let done = rows
            .get(r + 1)
            .map_or(input.height * scale, |next| next[0].y * scale);
        band.flush(done, &mut sink);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_the_image_with_overlap() {
        let cfg = TileConfig {
            size: 64,
            overlap: 16,
        };
        for (w, h) in [(1, 1), (1, 3000), (64, 64), (65, 200), (500, 130)] {
            let rows = grid(w, h, cfg);
            let mut covered = vec![false; w * h];
            for rect in rows.iter().flatten() {
                assert!(rect.x + rect.w <= w && rect.y + rect.h <= h);
                for y in rect.y..rect.y + rect.h {
                    for x in rect.x..rect.x + rect.w {
                        covered[y * w + x] = true;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c), "{w}x{h} not covered");
            for pair in rows[0].windows(2) {
                assert!(pair[0].x + pair[0].w >= pair[1].x + 16, "overlap too small");
            }
            let tiles: Vec<&Rect> = rows.iter().flatten().collect();
            assert!(
                tiles.iter().all(|r| r.w <= 64 && r.h <= 64),
                "tile larger than configured"
            );
            // Few tiles: no two would do with one less (each axis needs ceil((len-16)/48)).
            let need = |len: usize| {
                if len <= 64 {
                    1
                } else {
                    (len - 16).div_ceil(48)
                }
            };
            assert_eq!(tiles.len(), need(w) * need(h), "{w}x{h}");
        }
    }

    /// With an identity "model" (nearest-neighbour upscale), blending must reproduce the
    /// nearest-neighbour upscale exactly: weights are normalised everywhere.
    #[test]
    fn blending_of_consistent_tiles_is_exact() {
        let (w, h) = (150, 7);
        let mut input = Planar::zeros(w, h);
        for (i, v) in input.data.iter_mut().enumerate() {
            *v = ((i * 7919) % 1000) as f32 / 1000.0;
        }
        let nearest = |data: &[f32], rect: Rect, s: usize| {
            let mut out = Vec::new();
            for plane in data.chunks_exact(rect.w * rect.h) {
                for y in 0..rect.h * s {
                    for x in 0..rect.w * s {
                        out.push(plane[(y / s) * rect.w + x / s]);
                    }
                }
            }
            out
        };
        for (model_scale, down) in [(2, 1), (4, 1), (4, 2)] {
            let s = model_scale / down;
            let mut got = vec![f32::NAN; w * s * h * s * 3];
            let mut next_row = 0;
            upscale(
                &input,
                TileConfig {
                    size: 32,
                    overlap: 8,
                },
                model_scale,
                down,
                |data, rect, out: &mut dyn FnMut(&[f32])| {
                    out(&nearest(data, rect, model_scale));
                    Ok(())
                },
                |y0, rows| {
                    assert_eq!(y0, next_row, "rows out of order");
                    next_row += rows.len() / (w * s * 3);
                    got[y0 * w * s * 3..][..rows.len()].copy_from_slice(rows);
                },
            )
            .unwrap();
            assert_eq!(next_row, h * s);
            for y in 0..h * s {
                for x in 0..w * s {
                    for c in 0..3 {
                        let want = input.data[(c * h + y / s) * w + x / s];
                        let v = got[(y * w * s + x) * 3 + c];
                        assert!(
                            (v - want).abs() < 1e-5,
                            "scale {s} at {x},{y}: {v} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
