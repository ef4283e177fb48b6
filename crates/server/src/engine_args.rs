//! Engine settings as command-line flags, each with an environment variable: `upres serve`
//! and `upres upscale` flatten [`EngineArgs`], and [`EngineArgs::config`] is what the engine
//! takes.

use std::path::PathBuf;

use upres_engine::config::{
    DEFAULT_MEMORY_BUDGET_MIB, DEFAULT_MODELS_DIR, DEFAULT_MODERATION_THRESHOLD,
    DEFAULT_ORT_LIBRARY,
};
use upres_engine::tiling::DEFAULT_OVERLAP;
use upres_engine::{Device, EngineConfig, Limits};

#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// ONNX Runtime shared library (installed by `scripts/setup.sh`).
    #[arg(long, env = "UPRES_ORT_LIBRARY", default_value = DEFAULT_ORT_LIBRARY)]
    pub ort_library: PathBuf,
    #[command(flatten)]
    pub models: ModelsDir,
    /// Threads per inference (ONNX Runtime intra-op threads); 0 = one per core.
    #[arg(long, env = "UPRES_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Where inference runs: cpu, or cuda (needs ONNX Runtime's GPU build; falls back to cpu).
    #[arg(long, env = "UPRES_DEVICE", default_value = "cpu")]
    pub device: Device,
    /// Tile size in input pixels. Default: per image and model, the whole image when it fits
    /// --memory-budget, else the largest tile that does.
    #[arg(long, env = "UPRES_TILE")]
    pub tile: Option<u32>,
    /// Overlap between neighbouring tiles, in input pixels, blended across.
    #[arg(long, env = "UPRES_TILE_OVERLAP", default_value_t = DEFAULT_OVERLAP)]
    pub tile_overlap: u32,
    /// Memory one upscale may use, in MiB (the model's run on a tile, the band of blended rows,
    /// the input and output images); the tiles are chosen to fit it.
    #[arg(long, env = "UPRES_MEMORY_BUDGET", default_value_t = DEFAULT_MEMORY_BUDGET_MIB)]
    pub memory_budget: u64,
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
    #[arg(long, env = "UPRES_MODERATION_THRESHOLD", default_value_t = DEFAULT_MODERATION_THRESHOLD)]
    pub moderation_threshold: f32,
}

/// Where the converted models are.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelsDir {
    /// Folder of converted models (`<id>-x<scale>.onnx`, `open-nsfw.onnx`).
    #[arg(long, env = "UPRES_MODELS_DIR", default_value = DEFAULT_MODELS_DIR)]
    pub models_dir: PathBuf,
}

impl EngineArgs {
    /// The engine's configuration from these flags.
    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            ort_library: self.ort_library.clone(),
            models_dir: self.models.models_dir.clone(),
            threads: self.threads,
            device: self.device,
            tile: self.tile,
            tile_overlap: self.tile_overlap,
            memory_budget: self.memory_budget,
            tile_context: self.tile_context,
            limits: Limits {
                max_input_bytes: self.max_input_bytes,
                max_input_pixels: self.max_input_pixels,
                max_output_pixels: self.max_output_pixels,
            },
            moderation_threshold: self.moderation_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, Command, FromArgMatches};

    use super::*;

    /// Without flags (and with the environment ignored) the flags give the engine's defaults.
    #[test]
    fn the_flags_defaults_are_the_engines() {
        let command = EngineArgs::augment_args(Command::new("upres")).mut_args(|arg| arg.env(None));
        let args = EngineArgs::from_arg_matches(&command.get_matches_from(["upres"])).unwrap();
        assert_eq!(args.config(), EngineConfig::default());
    }
}
