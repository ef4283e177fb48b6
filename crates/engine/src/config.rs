//! Engine settings as command-line flags, each with an environment variable.

use std::path::{Path, PathBuf};

use crate::codec::Limits;
use crate::runtime::Device;
use crate::tiling::{TileConfig, DEFAULT_OVERLAP};

/// Default of `--memory-budget`, in MiB (README, "Tile size").
pub const DEFAULT_MEMORY_BUDGET_MIB: u64 = 1792;

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

/// Where `scripts/install.sh` puts ONNX Runtime and the models for use outside a checkout:
/// `$UPRES_HOME`, else `$XDG_DATA_HOME/upres`, else `~/.local/share/upres`.
pub fn home() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("UPRES_HOME")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("upres")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/upres")))
}

/// The places a relative path is looked for, in order: the current folder and each folder
/// above it (anywhere inside the checkout), the executable's folder and each above it (a
/// binary built in a checkout, run from elsewhere), then the upres home, where `.cache/X` is
/// `X`. An absolute path is only itself.
pub fn candidates(path: &Path) -> Vec<PathBuf> {
    if path.is_absolute() {
        return vec![path.to_path_buf()];
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let mut all: Vec<PathBuf> = cwd.ancestors().map(|dir| dir.join(path)).collect();
    if let Some(exe) = exe {
        all.extend(exe.ancestors().map(|dir| dir.join(path)));
    }
    if let Some(home) = home() {
        all.push(home.join(path.strip_prefix(".cache").unwrap_or(path)));
    }
    all
}

/// The first existing candidate of `path`; when none exists, `path` under the current folder.
pub fn resolve(path: &Path) -> PathBuf {
    let all = candidates(path);
    all.iter()
        .find(|candidate| candidate.exists())
        .or(all.first())
        .cloned()
        .unwrap_or_else(|| path.to_path_buf())
}

/// Where [`resolve`] looked, for error messages.
pub fn searched(path: &Path) -> String {
    if path.is_absolute() {
        return format!("{} does not exist", path.display());
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let home = home().map_or("no upres home (set UPRES_HOME)".to_string(), |h| {
        h.join(path.strip_prefix(".cache").unwrap_or(path))
            .display()
            .to_string()
    });
    format!(
        "looked for {} in {} and every folder above it, beside the executable in {} and every folder above it, and at {home}",
        path.display(),
        cwd.display(),
        exe.map_or("?".into(), |e| e.display().to_string()),
    )
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
    /// The fixed tiling from `--tile`, if given.
    pub fn tile_config(&self) -> Option<TileConfig> {
        self.tile
            .map(|size| TileConfig::square(size, self.tile_overlap))
    }
    pub fn limits(&self) -> Limits {
        Limits {
            max_input_bytes: self.max_input_bytes,
            max_input_pixels: self.max_input_pixels,
            max_output_pixels: self.max_output_pixels,
        }
    }
}
