//! Overlapping tiles: the image is cut into tiles that overlap, each tile is run through the
//! model with extra context around it where it meets another tile (cut off again afterwards),
//! and the outputs are cross-faded across the overlap (no hard cuts, no seams). At the image
//! border a pad, at most as large, is made up by reflection (or edge replication, per model): enough that
//! the model's zero padding leaves no darker frame. Output rows are streamed out as soon as no
//! later tile can touch them, so memory holds one band of tile rows in float, never the whole
//! float output. An image that fits in one tile skips all of that: the model's output, cropped
//! in place, is the output.

use rayon::prelude::*;
use serde::Deserialize;

use crate::error::{EngineError, Result};

/// Largest tile size and overlap, in input pixels (without the model's context around each
/// tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileConfig {
    pub width: u32,
    pub height: u32,
    pub overlap: u32,
}

/// Overlap between neighbouring tiles by default, in input pixels.
pub const DEFAULT_OVERLAP: u32 = 16;
/// The smallest tile side [`TileConfig::within_budget`] picks, however small the budget.
const MIN_TILE: usize = 64;

impl TileConfig {
    /// Square tiles of `size`.
    pub fn square(size: u32, overlap: u32) -> Self {
        TileConfig {
            width: size,
            height: size,
            overlap,
        }
    }

    pub fn validate(self) -> Result<Self> {
        let side = self.width.min(self.height);
        if side < 16 || self.overlap * 2 > side {
            return Err(EngineError::Inference(format!(
                "invalid tiling: tile {}x{} and overlap {} (need tile >= 16 and overlap <= tile / 2)",
                self.width, self.height, self.overlap
            )));
        }
        Ok(self)
    }

    /// The tiling of a `width` x `height` image that computes the fewest pixels (tiles with
    /// their context) while one tile's working memory stays within `budget` bytes: the whole
    /// image in one run when it fits, else for each number of tile columns the tallest tiles
    /// that fit, whichever computes least. Tile sides are at least 64 px, whatever the budget.
    pub fn within_budget(
        model: ModelTiling,
        (width, height): (usize, usize),
        scale: usize,
        overlap: u32,
        budget: u64,
    ) -> TileConfig {
        let o = overlap as usize;
        let min_side = |len: usize| len.min(MIN_TILE.max(2 * o + 1));
        let fits =
            |tw: usize, th: usize| model.working_memory((tw, th), (width, height), scale) <= budget;
        // (pixels computed, tile width, tile height) for tiles of at most `tw` x `th`.
        let cost = |tw: usize, th: usize| {
            let (xs, ys) = (spans(width, tw, o), spans(height, th, o));
            let m = model.margin();
            let px = xs.len() * ys.len() * (xs[0].1 + 2 * m) * (ys[0].1 + 2 * m);
            (px, tw, th)
        };
        if fits(width, height) {
            // One run computes least (nothing twice), and its border pad costs the least memory.
            return TileConfig {
                width: width as u32,
                height: height as u32,
                overlap,
            };
        }
        let mut best = None;
        for columns in 1..=width.div_ceil(MIN_TILE) {
            let tw = (width + (columns - 1) * o).div_ceil(columns);
            if columns > 1 && tw < min_side(width) {
                break;
            }
            if !fits(tw, min_side(height)) {
                continue;
            }
            // The tallest tile that fits, by bisection (memory grows with the height; the
            // whole image, which needs less, did not fit).
            let (mut lo, mut hi) = (min_side(height), height + 1);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if fits(tw, mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let candidate = cost(tw, lo);
            best = Some(best.map_or(candidate, |b: (usize, usize, usize)| b.min(candidate)));
        }
        let (_, tw, th) = best.unwrap_or((0, min_side(width), min_side(height)));
        TileConfig {
            width: tw as u32,
            height: th as u32,
            overlap,
        }
    }
}

/// How pixels beyond the image border are made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Border {
    /// Mirrored about the edge pixel (numpy's `reflect`): keeps texture and gradients going.
    #[default]
    Reflect,
    /// The edge pixel repeated.
    Replicate,
}

/// What a model needs around each tile, in input pixels, and the memory it needs; stored per
/// model in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTiling {
    pub border: Border,
    /// Extra pixels on every side of a tile whose output is cut off: the reach of the model's
    /// zero padding into its output (measured by `measure_tile_context` in tests/tiling.rs).
    pub context: usize,
    /// Mirrored pixels fed beyond the image border, at most `context`: enough that a flat image
    /// stays flat to its border (within a level). At the border there is no neighbouring tile
    /// to match, so it can be less than the context joins need, and a whole image pays only
    /// this. Unset: the context (measured by `measure_border_pad` in tests/tiling.rs).
    #[serde(default)]
    pub border_pad: Option<usize>,
    /// Pixels on every side that the network's unpadded convolutions consume (its output is
    /// `scale * (input - 2 * shrink)`).
    pub shrink: usize,
    /// ONNX Runtime's working memory for one run, in bytes per input pixel (context
    /// included), at the model's largest scale (measured by benches/tiles.py). For a split
    /// model: the trunk's, with the features it hands the tail and the tile's float output.
    pub bytes_per_pixel: u64,
    /// Set for a model split in two (`<id>-x<scale>.trunk.onnx` and `.tail.onnx`): the
    /// tail runs on strips of the trunk's features (see `inference`).
    #[serde(default)]
    pub tail: Option<Tail>,
}

/// The tail of a split model, which holds the most memory per input pixel (its upsampling
/// layers): it runs on strips of the trunk's features, at most [`Tail::MEMORY`] at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tail {
    /// Feature rows fed above and below a strip (cut off again): the tail's reach, so that
    /// strips join exactly (checked by the golden test of split models).
    pub context: usize,
    /// ONNX Runtime's working memory for the tail, in bytes per feature pixel of a strip
    /// (context included; one feature pixel per input pixel), measured by benches/tiles.py.
    pub bytes_per_pixel: u64,
}

impl Tail {
    /// The tail's working memory: strips are as tall as fits in it.
    pub const MEMORY: u64 = 128 << 20;

    /// Feature rows per strip for features `width` wide (at least one).
    pub fn strip_rows(self, width: usize) -> usize {
        let rows = Self::MEMORY / (self.bytes_per_pixel * width as u64).max(1);
        (rows as usize).saturating_sub(2 * self.context).max(1)
    }

    /// Working memory of the tail on features of `width` x `height`.
    fn working_memory(self, (width, height): (usize, usize)) -> u64 {
        let rows = (self.strip_rows(width) + 2 * self.context).min(height);
        self.bytes_per_pixel * (rows * width) as u64
    }
}

impl Default for ModelTiling {
    /// For a model file the manifest does not describe: a generous guess.
    fn default() -> Self {
        ModelTiling {
            border: Border::Reflect,
            context: 16,
            border_pad: None,
            shrink: 0,
            bytes_per_pixel: 16 << 10,
            tail: None,
        }
    }
}

impl ModelTiling {
    /// Input pixels fed around a tile on a side that meets another tile (the most on any side).
    pub fn margin(self) -> usize {
        self.context + self.shrink
    }

    /// Input pixels fed around a tile on a side at the image border.
    pub fn border_margin(self) -> usize {
        self.border_pad
            .map_or(self.context, |pad| pad.min(self.context))
            + self.shrink
    }

    /// Input pixels fed on each side of `rect`, a tile of a `width` x `height` image.
    pub fn margins(self, rect: Rect, (width, height): (usize, usize)) -> Sides {
        let side = |at_border: bool| {
            if at_border {
                self.border_margin()
            } else {
                self.margin()
            }
        };
        Sides {
            left: side(rect.x == 0),
            top: side(rect.y == 0),
            right: side(rect.x + rect.w == width),
            bottom: side(rect.y + rect.h == height),
        }
    }

    /// Bytes that upscaling a `width` x `height` image with tiles of `tw` x `th` needs beyond
    /// the input and output images: one model run on a tile with its margin (a split model's
    /// trunk, and its tail on one strip), and, unless one
    /// tile is the whole image, the band of blended float output rows, one tile high and as
    /// wide as the output.
    pub fn working_memory(
        self,
        (tw, th): (usize, usize),
        (width, height): (usize, usize),
        scale: usize,
    ) -> u64 {
        let (tw, th) = (tw.min(width), th.min(height));
        let run = |m: usize| {
            let fed = (tw + 2 * m, th + 2 * m);
            let tail = self.tail.map_or(0, |tail| tail.working_memory(fed));
            self.bytes_per_pixel * (fed.0 * fed.1) as u64 + tail
        };
        if (tw, th) == (width, height) {
            return run(self.border_margin());
        }
        run(self.margin()) + 3 * 4 * (th * scale * width * scale) as u64
    }
}

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
    fn crop(self, rect: Rect) -> Self {
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
    let overlap = cfg.overlap as usize;
    let xs = spans(width, cfg.width as usize, overlap);
    spans(height, cfg.height as usize, overlap)
        .into_iter()
        .map(|(y, h)| xs.iter().map(|&(x, w)| Rect { x, y, w, h }).collect())
        .collect()
}

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

/// Blended output rows that tiles still touch, as weighted sums (weights already normalised).
/// Allocated once, one tile row high: after a flush the unfinished rows move to the front.
struct Band {
    width: usize,
    rows: usize,
    /// First output row held.
    y0: usize,
    /// Planar RGB, three planes of `rows * width`.
    acc: Vec<f32>,
}

impl Band {
    fn new(width: usize, rows: usize) -> Self {
        Band {
            width,
            rows,
            y0: 0,
            acc: vec![0.0; 3 * rows * width],
        }
    }

    /// Adds a tile at output position (`ox`, `oy`), weighted by `wx[x] * wy[y]`. Rows are
    /// independent: spread over the cores.
    fn add(&mut self, tile: PlanarRows, (ox, oy): (usize, usize), wx: &[f32], wy: &[f32]) {
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
    fn flush(&mut self, end: usize, sink: &mut impl FnMut(usize, PlanarRows)) {
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

    #[test]
    fn grid_covers_the_image_with_overlap() {
        let cfg = TileConfig::square(64, 16);
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

    #[test]
    fn tiles_compute_least_within_the_budget() {
        let model = ModelTiling {
            border: Border::Reflect,
            context: 8,
            border_pad: None,
            shrink: 0,
            bytes_per_pixel: 4096,
            tail: None,
        };
        let mib = |n: u64| n << 20;
        let computed = |cfg: TileConfig, (w, h): (usize, usize)| -> usize {
            grid(w, h, cfg)
                .concat()
                .iter()
                .map(|r| (r.w + 16) * (r.h + 16))
                .sum()
        };
        // A small image fits whole: one tile, nothing computed twice.
        let small = TileConfig::within_budget(model, (300, 200), 4, 16, mib(1024));
        assert_eq!(grid(300, 200, small).concat().len(), 1);
        // A whole image pays only its border pad, and needs no band of blended rows.
        let padded = ModelTiling {
            border_pad: Some(2),
            ..model
        };
        let whole = padded.bytes_per_pixel * 504 * 504;
        let tiles = |budget| {
            grid(
                500,
                500,
                TileConfig::within_budget(padded, (500, 500), 4, 16, budget),
            )
        };
        assert_eq!(tiles(whole).concat().len(), 1);
        assert!(tiles(whole - 1).concat().len() > 1);
        for (size, budget) in [
            ((2048, 2048), mib(256)),
            ((2048, 2048), mib(1024)),
            ((3000, 500), mib(700)),
            ((512, 512), mib(900)),
        ] {
            let cfg = TileConfig::within_budget(model, size, 4, 16, budget);
            let (tw, th) = (cfg.width as usize, cfg.height as usize);
            assert!(
                model.working_memory((tw, th), size, 4) <= budget,
                "{size:?}: {cfg:?} over budget"
            );
            assert_eq!(cfg.overlap, 16);
            // No square tiling that fits computes less.
            for side in (64..=size.0.max(size.1)).step_by(8) {
                let square = TileConfig::square(side as u32, 16);
                if model.working_memory((side, side), size, 4) <= budget {
                    assert!(
                        computed(cfg, size) <= computed(square, size),
                        "{size:?}: {cfg:?} vs {side}"
                    );
                }
            }
        }
        // However small the budget, tiles stay usable.
        let tiny = TileConfig::within_budget(model, (2048, 2048), 4, 16, 1);
        assert_eq!((tiny.width, tiny.height), (64, 64));
        assert!(tiny.validate().is_ok());
    }

    #[test]
    fn a_split_models_tail_runs_on_strips_within_its_memory() {
        let tail = Tail {
            context: 2,
            bytes_per_pixel: 10 << 10,
        };
        for width in [1, 100, 576, 3000, 20_000] {
            let rows = tail.strip_rows(width);
            assert!(rows >= 1);
            let fed = (rows + 2 * tail.context) * width;
            assert!(rows == 1 || tail.bytes_per_pixel * fed as u64 <= Tail::MEMORY);
            assert!(tail.bytes_per_pixel * (fed + width) as u64 > Tail::MEMORY || rows > 1000);
        }
        let split = ModelTiling {
            tail: Some(tail),
            ..ModelTiling::default()
        };
        let whole = ModelTiling {
            tail: None,
            ..split
        };
        let tail_memory = |size: (usize, usize)| {
            split.working_memory(size, size, 4) - whole.working_memory(size, size, 4)
        };
        // A large tile: one strip's worth; a tiny image: its own features only.
        assert!(tail_memory((2048, 2048)) <= Tail::MEMORY);
        assert!(tail_memory((2048, 2048)) > Tail::MEMORY / 2);
        let tiny = 2 * ModelTiling::default().border_margin() + 8;
        assert_eq!(
            tail_memory((8, 8)),
            tail.bytes_per_pixel * (tiny * tiny) as u64
        );
    }

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
