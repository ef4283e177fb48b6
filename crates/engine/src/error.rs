use std::path::PathBuf;
use std::sync::Arc;

/// Every way the engine can fail. The server maps these to HTTP statuses in one place
/// (`upres_server::error`), the CLI prints them. Cloneable: ONNX Runtime's loading outcome is
/// kept for the process and handed to every later caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(
        "ONNX Runtime library could not be loaded from {path}: {reason}. Run `make setup` (scripts/setup.sh) in the checkout, `scripts/install.sh` to use upres outside it, or point --ort-library / UPRES_ORT_LIBRARY at libonnxruntime.so"
    )]
    RuntimeMissing { path: PathBuf, reason: String },
    #[error(
        "no models folder: {0}. Run `make setup` (scripts/setup.sh) in the checkout, `scripts/install.sh` to use upres outside it, or point --models-dir / UPRES_MODELS_DIR at one"
    )]
    ModelsMissing(String),
    #[error("unknown device '{0}' (cpu, cuda)")]
    UnknownDevice(String),
    #[error(
        "model file {path} is missing. Run `scripts/setup.sh {model}` to fetch and convert it"
    )]
    ModelMissing { model: String, path: PathBuf },
    #[error(
        "unknown model '{0}' (installed: {1}); `upres models` lists installed and installable models"
    )]
    UnknownModel(String, String),
    #[error(
        "model '{0}' is not installed (installed: {1}); install it with `scripts/setup.sh {0}`, or see `upres models`"
    )]
    ModelNotInstalled(String, String),
    #[error("model '{model}' cannot upscale by {scale}x (supported: {supported})")]
    UnsupportedScale {
        model: String,
        scale: u32,
        supported: String,
    },
    #[error("{} is not a super-resolution model: {reason}", path.display())]
    NotAnUpscaler { path: PathBuf, reason: String },
    #[error("cannot upscale to that size: {0}")]
    InvalidTarget(String),
    #[error("input is {size} bytes, more than the limit of {limit} bytes")]
    InputTooLarge { size: usize, limit: usize },
    #[error("input image is {width}x{height} pixels, more than the limit of {limit} pixels")]
    TooManyInputPixels { width: u32, height: u32, limit: u64 },
    #[error(
        "output would be {width}x{height} = {pixels} pixels, more than the limit of {limit} pixels"
    )]
    OutputTooLarge {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
    },
    #[error("unsupported image format: {0} (accepted: PNG, JPEG, WebP)")]
    UnsupportedFormat(String),
    #[error("corrupt or truncated image: {0}")]
    CorruptImage(String),
    #[error("could not encode the output image: {0}")]
    Encode(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("{0}")]
    Io(Arc<std::io::Error>),
}

impl From<std::io::Error> for EngineError {
    fn from(err: std::io::Error) -> Self {
        EngineError::Io(Arc::new(err))
    }
}

impl<R> From<ort::Error<R>> for EngineError {
    fn from(err: ort::Error<R>) -> Self {
        EngineError::Inference(err.to_string())
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
