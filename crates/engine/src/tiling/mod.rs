//! Overlapping tiles: the image is cut into tiles that overlap, each tile is run through the
//! model with extra context around it where it meets another tile (cut off again afterwards),
//! and the outputs are cross-faded across the overlap (no hard cuts, no seams). At the image
//! border a pad, at most as large, is made up by reflection (or edge replication, per model): enough that
//! the model's zero padding leaves no darker frame. Output rows are streamed out as soon as no
//! later tile can touch them, so memory holds one band of tile rows in float, never the whole
//! float output. An image that fits in one tile skips all of that: the model's output, cropped
//! in place, is the output.

mod blend;
mod plan;

pub use plan::{grid, TileConfig, DEFAULT_OVERLAP};

use crate::catalog::ModelTiling;
use crate::error::{EngineError, Result};
use crate::planar::{Planar, PlanarRows, Rect};
use blend::{normalized_weights, Band};

/// kxk area average of planar RGB rows (k > 1), as planar data.
fn box_downscale(tile: PlanarRows, k: usize) -> Vec<f32> {
    let (ow, oh) = (tile.width / k, tile.height / k);
    let norm = 1.0 / (k * k) as f32;
    let mut out = Vec::with_capacity(3 * ow * oh);
    for c in 0..3 {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = 0.0;
                for dy in 0..k {
                    sum += tile.row(oy * k + dy)[c][ox * k..][..k].iter().sum::<f32>();
                }
                out.push(sum * norm);
            }
        }
    }
    out
}

/// What the model is: planar data of `width` x `height` in, its planar output handed to the
/// callback (so it can be used in place, without a copy).
pub trait Infer: FnMut(&[f32], usize, usize, &mut dyn FnMut(&[f32])) -> Result<()> {}
impl<F: FnMut(&[f32], usize, usize, &mut dyn FnMut(&[f32])) -> Result<()>> Infer for F {}

/// Runs `infer` on `rect` grown by the model's margins and hands `consume` the output of `rect`
/// alone, `model_scale` times larger (the context's output is cut off, in place).
fn infer_tile(
    input: &Planar,
    rect: Rect,
    model: ModelTiling,
    model_scale: usize,
    infer: &mut impl Infer,
    consume: &mut dyn FnMut(PlanarRows),
) -> Result<()> {
    let margin = model.margins(rect, (input.width, input.height));
    let data = input.crop_extended(rect, margin, model.border);
    let (in_w, in_h) = (
        rect.w + margin.left + margin.right,
        rect.h + margin.top + margin.bottom,
    );
    let (s, shrink) = (model_scale, model.shrink);
    let (out_w, out_h) = ((in_w - 2 * shrink) * s, (in_h - 2 * shrink) * s);
    let kept = Rect {
        x: (margin.left - shrink) * s,
        y: (margin.top - shrink) * s,
        w: rect.w * s,
        h: rect.h * s,
    };
    let mut wrong_size = None;
    infer(&data, in_w, in_h, &mut |raw: &[f32]| {
        if raw.len() != 3 * out_w * out_h {
            wrong_size = Some(raw.len());
        } else {
            consume(PlanarRows::new(raw, out_w, out_h).crop(kept));
        }
    })?;
    match wrong_size {
        Some(got) => Err(EngineError::Inference(format!(
            "model returned {got} values for a {in_w}x{in_h} input, expected {}",
            3 * out_w * out_h
        ))),
        None => Ok(()),
    }
}

/// Upscales `input` by `model_scale / downscale` tile by tile. `infer` maps a planar tile of
/// `w` x `h` to its planar output, `model_scale` times `model.shrink` pixels smaller on every
/// side. `sink` receives finished output rows in order, as `(first_row, rows)`, values not yet
/// clamped. One tile: its output goes to `sink` as it is, with no blending.
pub fn upscale(
    input: &Planar,
    cfg: TileConfig,
    model: ModelTiling,
    model_scale: usize,
    downscale: usize,
    mut infer: impl Infer,
    mut sink: impl FnMut(usize, PlanarRows),
) -> Result<()> {
    let scale = model_scale / downscale;
    let mut run = |rect: Rect, use_output: &mut dyn FnMut(PlanarRows)| {
        infer_tile(input, rect, model, model_scale, &mut infer, &mut |out| {
            if downscale > 1 {
                let small = box_downscale(out, downscale);
                use_output(PlanarRows::new(&small, rect.w * scale, rect.h * scale));
            } else {
                use_output(out);
            }
        })
    };
    let rows = grid(input.width, input.height, cfg);
    if let [row] = rows.as_slice() {
        if let [rect] = row.as_slice() {
            return run(*rect, &mut |out| sink(0, out));
        }
    }
    let overlap = cfg.overlap as usize;
    let x_spans: Vec<_> = rows[0].iter().map(|r| (r.x, r.w)).collect();
    let y_spans: Vec<_> = rows.iter().map(|row| (row[0].y, row[0].h)).collect();
    let wx = normalized_weights(&x_spans, input.width, overlap, scale);
    let wy = normalized_weights(&y_spans, input.height, overlap, scale);
    let mut band = Band::new(input.width * scale, y_spans[0].1 * scale);
    for (r, row) in rows.iter().enumerate() {
        for (c, &rect) in row.iter().enumerate() {
            let at = (rect.x * scale, rect.y * scale);
            run(rect, &mut |out| band.add(out, at, &wx[c], &wy[r]))?;
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
    use crate::catalog::Border;

    /// A "model" that upscales by nearest neighbour after consuming `shrink` pixels per side.
    fn nearest(data: &[f32], w: usize, h: usize, s: usize, shrink: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for plane in data.chunks_exact(w * h) {
            for y in 0..(h - 2 * shrink) * s {
                for x in 0..(w - 2 * shrink) * s {
                    out.push(plane[(y / s + shrink) * w + x / s + shrink]);
                }
            }
        }
        out
    }

    /// With an identity "model" (nearest-neighbour upscale), tiling must reproduce the
    /// nearest-neighbour upscale exactly, whatever the context, in one tile (no blending) or
    /// many: weights are normalised everywhere and every tile's context is cut off at the right
    /// place. Tiles get the border pad at the image border, the full context at joins.
    #[test]
    fn blending_of_consistent_tiles_is_exact() {
        let (w, h) = (150, 7);
        let mut input = Planar::zeros(w, h);
        for (i, v) in input.data.iter_mut().enumerate() {
            *v = ((i * 7919) % 1000) as f32 / 1000.0;
        }
        let models = [
            ModelTiling::default(),
            ModelTiling {
                border: Border::Replicate,
                context: 0,
                border_pad: None,
                shrink: 3,
                bytes_per_pixel: 0,
                tail: None,
            },
            ModelTiling {
                border: Border::Reflect,
                context: 5,
                border_pad: Some(2),
                shrink: 2,
                bytes_per_pixel: 0,
                tail: None,
            },
            ModelTiling {
                border: Border::Reflect,
                context: 3,
                border_pad: Some(8),
                shrink: 0,
                bytes_per_pixel: 0,
                tail: None,
            },
        ];
        for model in models {
            let (join, border) = (model.margin(), model.border_margin());
            assert!(border <= join && border >= model.shrink);
            // (tile size, widths fed for the first and the last tile)
            for (tile, ends) in [
                (32, (border + 32 + join, join + 32 + border)),
                (1 << 10, (border + w + border, border + w + border)),
            ] {
                for (model_scale, down) in [(2, 1), (4, 1), (4, 2)] {
                    let s = model_scale / down;
                    let mut got = vec![f32::NAN; w * s * h * s * 3];
                    let mut next_row = 0;
                    let mut fed = vec![];
                    upscale(
                        &input,
                        TileConfig::square(tile, 8),
                        model,
                        model_scale,
                        down,
                        |data, tw, th, out: &mut dyn FnMut(&[f32])| {
                            fed.push((tw, th));
                            out(&nearest(data, tw, th, model_scale, model.shrink));
                            Ok(())
                        },
                        |y0, rows| {
                            assert_eq!(y0, next_row, "rows out of order");
                            assert_eq!(rows.width, w * s);
                            for y in 0..rows.height {
                                for (c, row) in rows.row(y).into_iter().enumerate() {
                                    let at = (c * h * s + y0 + y) * w * s;
                                    got[at..][..row.len()].copy_from_slice(row);
                                }
                            }
                            next_row += rows.height;
                        },
                    )
                    .unwrap();
                    assert_eq!(next_row, h * s);
                    // One tile row: the image's height, padded at the border on both sides.
                    assert_eq!((fed[0].0, fed[fed.len() - 1].0), ends, "{fed:?}");
                    assert!(fed.iter().all(|&(_, th)| th == border + h + border));
                    for (i, (v, want)) in
                        got.iter().zip(nearest(&input.data, w, h, s, 0)).enumerate()
                    {
                        assert!(
                            (v - want).abs() < 1e-5,
                            "{model:?} tile {tile} scale {s} at {i}: {v} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
