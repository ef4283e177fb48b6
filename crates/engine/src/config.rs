//! Engine settings as command-line flags, each with an environment variable.

use std::path::{Path, PathBuf};

use crate::codec::Limits;
use crate::runtime::Device;
use crate::tiling::TileConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// ONNX Runtime shared library (installed by `scripts/setup.sh`).
    #[arg(
        long,
        env = "UPRES_ORT_LIBRARY",
        default_value = ".cache/onnxruntime/libonnxruntime.so.1.31.1"
    )]
    pub ort_library: PathBuf,
    #[command(flatten)]
    pub models: ModelsDir,
    /// Threads per inference (ONNX Runtime intra-op threads); 0 = one per core.
    #[arg(long, env = "UPRES_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Where inference runs: cpu, or cuda (needs the `cuda` build; falls back to cpu).
    #[arg(long, env = "UPRES_DEVICE", default_value = "cpu")]
    pub device: Device,
    /// Tile size in input pixels.
    #[arg(long, env = "UPRES_TILE", default_value_t = TileConfig::default().size)]
    pub tile: u32,
    /// Overlap between neighbouring tiles, in input pixels, blended across.
    #[arg(long, env = "UPRES_TILE_OVERLAP", default_value_t = TileConfig::default().overlap)]
    pub tile_overlap: u32,
    /// Context fed around each tile (and beyond the image border, mirrored), in input pixels;
    /// its output is cut off. Default: the model's own, measured and stored in the manifest.
    #[arg(long, env = "UPRES_TILE_CONTEXT")]
    pub tile_context: Option<usize>,
    /// Largest accepted input file, in bytes.
    #[arg(long, env = "UPRES_MAX_INPUT_BYTES", default_value_t = Limits::default().max_input_bytes)]
    pub max_input_bytes: usize,
    /// Largest accepted input area in pixels (checked from the header before decoding).
    #[arg(long, env = "UPRES_MAX_INPUT_PIXELS", default_value_t = Limits::default().max_input_pixels)]
    pub max_input_pixels: u64,
    /// Largest output area in pixels (the hosted API allows 8192 x 8192).
    #[arg(long, env = "UPRES_MAX_OUTPUT_PIXELS", default_value_t = Limits::default().max_output_pixels)]
    pub max_output_pixels: u64,
    /// P(unsafe) at or above which content moderation blocks an image.
    #[arg(long, env = "UPRES_MODERATION_THRESHOLD", default_value_t = 0.5)]
    pub moderation_threshold: f32,
}

/// Where the converted models are.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelsDir {
    /// Folder of converted models (`<id>-x<scale>.onnx`, `open-nsfw.onnx`).
    #[arg(long, env = "UPRES_MODELS_DIR", default_value = ".cache/models")]
    pub models_dir: PathBuf,
}

/// A relative path is looked up in the current folder, then in each folder above it, so the
/// defaults work from anywhere inside the checkout. The first existing match wins; when none
/// exists the path under the current folder is returned, for the error message.
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .map(|dir| dir.join(path))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| cwd.join(path))
}

impl Default for EngineArgs {
    /// The flags' defaults, with the `UPRES_*` environment applied.
    fn default() -> Self {
        use clap::{Args, FromArgMatches};
        let command = EngineArgs::augment_args(clap::Command::new("upres"));
        EngineArgs::from_arg_matches(&command.get_matches_from(["upres"]))
            .expect("defaults are valid")
    }
}

impl EngineArgs {
    pub fn tile_config(&self) -> TileConfig {
        TileConfig {
            size: self.tile,
            overlap: self.tile_overlap,
        }
    }
    pub fn limits(&self) -> Limits {
        Limits {
            max_input_bytes: self.max_input_bytes,
            max_input_pixels: self.max_input_pixels,
            max_output_pixels: self.max_output_pixels,
        }
    }
}
