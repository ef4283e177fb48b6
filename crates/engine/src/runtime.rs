//! ONNX Runtime: loading the shared library once per process and building sessions.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::{EngineError, Result};

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// CUDA execution provider (needs ONNX Runtime's GPU build, CUDA 13 and a GPU); falls back
    /// to CPU with a warning when any of them is missing.
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            other => Err(EngineError::UnknownDevice(other.to_string())),
        }
    }
}

/// A session shared by every caller of one model file.
pub type SharedSession = Arc<Mutex<Session>>;

/// The process's environment, or why the first call could not create it.
static RUNTIME: OnceLock<Result<Environment>> = OnceLock::new();

/// Loads `libonnxruntime` from `path` and creates the process-wide environment. Later calls
/// return the first call's outcome (ONNX Runtime allows one environment per process).
pub fn init(path: &Path) -> Result<&'static Environment> {
    let outcome = RUNTIME.get_or_init(|| {
        let missing = |reason: String| EngineError::RuntimeMissing {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            return Err(missing("no such file".to_string()));
        }
        let builder = ort::init_from(path).map_err(|e| missing(e.to_string()))?;
        builder
            .with_name("upres")
            .build()
            .map_err(|e| missing(e.to_string()))
    });
    outcome.as_ref().map_err(EngineError::clone)
}

/// Builds a session with full graph optimisation on the requested device.
pub fn load_session(
    env: &Environment,
    model: &Path,
    intra_threads: usize,
    device: Device,
) -> Result<Session> {
    // No memory pattern: it plans one block per input shape on top of what the first run
    // left in the arena, nearly doubling the memory of every later run (esrgan-slim x4, a
    // 272 px tile: 9.3 -> 5.3 KiB per pixel), and tile shapes vary with the image.
    let mut builder = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_memory_pattern(false)?;
    if intra_threads > 0 {
        builder = builder.with_intra_threads(intra_threads)?;
    }
    if device == Device::Cuda {
        builder = with_cuda(builder);
    }
    Ok(builder.commit_from_file(model)?)
}

/// Adds the CUDA execution provider, or warns and stays on CPU when it cannot be used (a CPU
/// build of ONNX Runtime, no CUDA libraries, no GPU).
fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
) -> ort::session::builder::SessionBuilder {
    let cuda = ort::ep::CUDA::default().build().error_on_failure();
    builder
        .with_execution_providers([cuda])
        .unwrap_or_else(|e| {
            tracing::warn!("CUDA is not usable ({e}); running on CPU");
            e.recover()
        })
}
