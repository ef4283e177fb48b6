//! Tile planning: the grid of tiles that covers an image, and the tiling that computes least
//! while one tile's working memory (the model's run, the band of blended rows) fits the budget.

use crate::catalog::ModelTiling;
use crate::error::{EngineError, Result};
use crate::planar::{Rect, Sides};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Border, Tail};

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
}
