//! Running a super-resolution model on one planar RGB tile: one session, or, for a model split
//! in two (models/convert/graph.py, `split_before_upsampling`), the trunk on the tile and the
//! tail on strips of the trunk's features. The tail's upsampling layers hold most of the
//! memory per input pixel (realesrgan-x4plus: three 64-channel tensors at 16 output pixels per
//! input pixel); on strips they need a fixed amount, so a tile can be much larger. Each strip
//! gets [`Tail::context`] rows of features above and below, cut off again, so strips join
//! exactly: the output is the whole model's.

use ort::value::TensorRef;

use crate::catalog::Tail;
use crate::error::{EngineError, Result};
use crate::planar::Planar;
use crate::runtime::SharedSession;

/// The sessions that upscale a tile.
#[derive(Clone)]
pub enum SrModel {
    Whole(SharedSession),
    Split {
        trunk: SharedSession,
        tail: SharedSession,
        strips: Tail,
    },
}

impl SrModel {
    /// Runs on planar RGB `tile` of `(width, height)` and hands `use_output` the planar output,
    /// `scale` times larger, without a copy where it can.
    pub fn run(
        &self,
        tile: &[f32],
        (width, height): (usize, usize),
        scale: usize,
        use_output: &mut dyn FnMut(&[f32]),
    ) -> Result<()> {
        match self {
            SrModel::Whole(session) => run_sr_with(session, tile, (width, height), use_output),
            SrModel::Split {
                trunk,
                tail,
                strips,
            } => {
                let rows = strips.strip_rows(width);
                let out = run_with(trunk, tile, [3, height, width], |features| {
                    run_tail(tail, features, (width, height), scale, strips.context, rows)
                })??;
                use_output(&out);
                Ok(())
            }
        }
    }
}

/// The tail on strips of `rows` feature rows (planar, `(width, height)`, any number of
/// channels), each with `context` rows more above and below where there are any: the planar
/// RGB output, `scale` times larger.
pub fn run_tail(
    tail: &SharedSession,
    features: &[f32],
    (width, height): (usize, usize),
    scale: usize,
    context: usize,
    rows: usize,
) -> Result<Vec<f32>> {
    let plane = width * height;
    if plane == 0 || !features.len().is_multiple_of(plane) {
        return Err(EngineError::Inference(format!(
            "the trunk returned {} values for a {width}x{height} tile",
            features.len()
        )));
    }
    let channels = features.len() / plane;
    let (out_w, out_plane) = (width * scale, plane * scale * scale);
    let mut out = vec![0f32; 3 * out_plane];
    let mut strip = Vec::new();
    for y0 in (0..height).step_by(rows.max(1)) {
        let y1 = (y0 + rows).min(height);
        let (from, to) = (y0.saturating_sub(context), (y1 + context).min(height));
        strip.clear();
        for c in features.chunks_exact(plane) {
            strip.extend_from_slice(&c[from * width..to * width]);
        }
        run_with(tail, &strip, [channels, to - from, width], |got| {
            let fed = (to - from) * scale * out_w;
            if got.len() != 3 * fed {
                return Err(EngineError::Inference(format!(
                    "the tail returned {} values for {}x{} features, expected {}",
                    got.len(),
                    width,
                    to - from,
                    3 * fed
                )));
            }
            let kept = (y0 - from) * scale * out_w..(y1 - from) * scale * out_w;
            for (dst, src) in out.chunks_exact_mut(out_plane).zip(got.chunks_exact(fed)) {
                dst[y0 * scale * out_w..y1 * scale * out_w].copy_from_slice(&src[kept.clone()]);
            }
            Ok(())
        })??;
    }
    Ok(out)
}

/// Runs `session` on one NCHW tensor of batch 1 (`[channels, height, width]`) and hands
/// `use_output` its first output, in place (the session stays locked meanwhile).
fn run_with<R>(
    session: &SharedSession,
    data: &[f32],
    [channels, height, width]: [usize; 3],
    use_output: impl FnOnce(&[f32]) -> R,
) -> Result<R> {
    let input = TensorRef::from_array_view(([1usize, channels, height, width], data))?;
    let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
    let outputs = session.run(ort::inputs![input])?;
    let (_, data) = outputs[0].try_extract_tensor::<f32>()?;
    Ok(use_output(data))
}

/// Runs a super-resolution session on one planar RGB tile of `(width, height)` and hands
/// `use_output` its planar output, in place (the session stays locked meanwhile).
pub fn run_sr_with<R>(
    session: &SharedSession,
    tile: &[f32],
    (width, height): (usize, usize),
    use_output: impl FnOnce(&[f32]) -> R,
) -> Result<R> {
    run_with(session, tile, [3, height, width], use_output)
}

/// Upscales planar data with the session directly (no tiling, no padding, no alpha).
pub fn run_untiled(session: &SharedSession, input: &Planar) -> Result<Vec<f32>> {
    run_sr_with(
        session,
        &input.data,
        (input.width, input.height),
        <[f32]>::to_vec,
    )
}
