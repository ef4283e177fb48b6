//! A super-resolution model of the user's own (`upres upscale --model PATH.onnx`): any ONNX
//! file with one float image in and one float image out, NCHW RGB in 0..1 (the convention of
//! every converted model here, and of most exported PyTorch upscalers). Its scale is found by
//! running it once on a small image; anything else is refused with what was found.

use std::path::Path;

use ort::value::TensorRef;

use crate::error::{EngineError, Result};
use crate::runtime::SharedSession;

/// The side of the probe image: small, and a multiple of 8 for models that need one.
const PROBE: usize = 32;

/// The model's scale: the output's size over the probe's, the same both ways, 1 to 8.
pub fn probe(session: &SharedSession, path: &Path) -> Result<u32> {
    let refuse = |reason: String| EngineError::NotAnUpscaler {
        path: path.to_path_buf(),
        reason,
    };
    let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
    let (inputs, outputs) = (session.inputs().len(), session.outputs().len());
    if inputs != 1 || outputs != 1 {
        return Err(refuse(format!(
            "it has {inputs} inputs and {outputs} outputs, not one of each"
        )));
    }
    if let Some(shape) = session.inputs()[0].dtype().tensor_shape() {
        if shape.len() != 4 || !matches!(shape[1], -1 | 3) {
            return Err(refuse(format!(
                "its input has the shape {shape:?}, not [batch, 3, height, width]"
            )));
        }
    }
    let data = vec![0.5f32; 3 * PROBE * PROBE];
    let input = TensorRef::from_array_view(([1usize, 3, PROBE, PROBE], data.as_slice()))?;
    let outputs = session.run(ort::inputs![input]).map_err(|e| {
        refuse(format!(
            "a {PROBE}x{PROBE} RGB float image does not run: {e}"
        ))
    })?;
    let (shape, _) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(|e| refuse(format!("its output is not a float tensor: {e}")))?;
    let dims: Vec<i64> = shape.iter().copied().collect();
    let scale = match dims.as_slice() {
        [1, 3, h, w] if h == w && (*h as usize).is_multiple_of(PROBE) => *h as usize / PROBE,
        _ => 0,
    };
    if !(1..=8).contains(&scale) {
        return Err(refuse(format!(
            "a [1, 3, {PROBE}, {PROBE}] input gives {dims:?}, not [1, 3, {PROBE}s, {PROBE}s] for a scale s of 1 to 8"
        )));
    }
    Ok(scale as u32)
}
