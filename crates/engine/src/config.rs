//! Engine settings: a plain struct, filled by the binaries from their flags (the server
//! crate's `EngineArgs`) or by tests and benchmarks from [`EngineConfig::default`].

use std::path::PathBuf;

use crate::codec::Limits;
use crate::runtime::Device;
use crate::tiling::{TileConfig, DEFAULT_OVERLAP};

/// Where the ONNX Runtime library is by default (installed by `scripts/setup.sh`), resolved by
/// [`crate::paths::resolve`].
pub const DEFAULT_ORT_LIBRARY: &str = ".cache/onnxruntime/libonnxruntime.so.1.31.1";
/// Where the converted models are by default, resolved by [`crate::paths::resolve`].
pub const DEFAULT_MODELS_DIR: &str = ".cache/models";
/// Default memory budget of one upscale, in MiB: with it, every model's largest upscale at the
/// default limits (an 8192x8192 output, encoded to PNG) peaks under 2 GiB of RSS, which the
/// `memory` bench of upres-benches checks (how tiles are chosen: docs/src/engine/tiling.md).
pub const DEFAULT_MEMORY_BUDGET_MIB: u64 = 1792;
/// Default content-moderation threshold: P(unsafe) at or above it blocks an image.
pub const DEFAULT_MODERATION_THRESHOLD: f32 = 0.5;

/// What an [`crate::Engine`] is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The ONNX Runtime shared library.
    pub ort_library: PathBuf,
    /// Folder of converted models (`<id>-x<scale>.onnx`, `open-nsfw.onnx`).
    pub models_dir: PathBuf,
    /// Threads per inference (ONNX Runtime intra-op threads); 0 = one per core.
    pub threads: usize,
    /// Where inference runs.
    pub device: Device,
    /// Square tiles of this many input pixels for every image; `None`: per image and model,
    /// the whole image when it fits `memory_budget`, else the tiles that compute least within it.
    pub tile: Option<u32>,
    /// Overlap between neighbouring tiles, in input pixels, blended across.
    pub tile_overlap: u32,
    /// Memory one upscale may use, in MiB (the model's run on a tile, the band of blended rows,
    /// the input and output images).
    pub memory_budget: u64,
    /// Context fed around each tile, in input pixels; `None`: the model's own (manifest).
    pub tile_context: Option<usize>,
    /// Input and output size limits.
    pub limits: Limits,
    /// P(unsafe) at or above which content moderation blocks an image.
    pub moderation_threshold: f32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ort_library: DEFAULT_ORT_LIBRARY.into(),
            models_dir: DEFAULT_MODELS_DIR.into(),
            threads: 0,
            device: Device::Cpu,
            tile: None,
            tile_overlap: DEFAULT_OVERLAP,
            memory_budget: DEFAULT_MEMORY_BUDGET_MIB,
            tile_context: None,
            limits: Limits::default(),
            moderation_threshold: DEFAULT_MODERATION_THRESHOLD,
        }
    }
}

impl EngineConfig {
    /// The fixed tiling from `tile`, if set.
    pub fn tile_config(&self) -> Option<TileConfig> {
        self.tile
            .map(|size| TileConfig::square(size, self.tile_overlap))
    }
}
