//! Decoding (with limits checked from the header first, EXIF orientation, ICC profile) and
//! encoding (PNG by default, JPEG, WebP) of images.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader};

use crate::error::{EngineError, Result};

/// Size limits applied before and after decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted encoded input, in bytes.
    pub max_input_bytes: usize,
    /// Largest accepted input area in pixels, checked from the header before the pixels are decoded.
    pub max_input_pixels: u64,
    /// Largest output area in pixels (the hosted API allows 8192 x 8192).
    pub max_output_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 30 * 1024 * 1024,
            max_input_pixels: 4096 * 4096,
            max_output_pixels: 8192 * 8192,
        }
    }
}

/// A decoded image: pixels (orientation already applied) and the ICC profile to carry over.
#[derive(Debug, Clone)]
pub struct Image {
    pub pixels: DynamicImage,
    pub icc_profile: Option<Vec<u8>>,
}

impl Image {
    pub fn new(pixels: DynamicImage) -> Self {
        Image {
            pixels,
            icc_profile: None,
        }
    }
    pub fn width(&self) -> u32 {
        self.pixels.width()
    }
    pub fn height(&self) -> u32 {
        self.pixels.height()
    }
}

/// Output encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Png,
    Jpeg { quality: u8 },
    WebP,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg { .. } => "jpg",
            OutputFormat::WebP => "webp",
        }
    }
    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpeg { .. } => "image/jpeg",
            OutputFormat::WebP => "image/webp",
        }
    }
}

fn decode_error(err: ImageError) -> EngineError {
    match err {
        ImageError::Unsupported(e) => EngineError::UnsupportedFormat(e.to_string()),
        other => EngineError::CorruptImage(other.to_string()),
    }
}

/// Decodes PNG, JPEG or WebP bytes. Byte and pixel limits are checked before any pixel is decoded.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Image> {
    if bytes.len() > limits.max_input_bytes {
        return Err(EngineError::InputTooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| {
        EngineError::UnsupportedFormat("the data is not a PNG, JPEG or WebP image".into())
    })?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
        return Err(EngineError::UnsupportedFormat(format!("{format:?}")));
    }
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_input_pixels {
        return Err(EngineError::TooManyInputPixels {
            width,
            height,
            limit: limits.max_input_pixels,
        });
    }
    let icc_profile = decoder.icc_profile().ok().flatten();
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut pixels = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    pixels.apply_orientation(orientation);
    Ok(Image {
        pixels,
        icc_profile,
    })
}

/// Encodes an image. PNG keeps 16-bit depth and alpha; JPEG drops alpha by compositing over
/// white and is 8-bit; WebP (lossless) is 8-bit.
pub fn encode(image: &Image, format: OutputFormat) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let icc = image.icc_profile.as_deref();
    let result = match format {
        OutputFormat::Png => write_image(
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive),
            icc,
            &image.pixels,
        ),
        OutputFormat::Jpeg { quality } => write_image(
            JpegEncoder::new_with_quality(&mut out, quality),
            icc,
            &crate::alpha::flatten_to_8bit_opaque(&image.pixels),
        ),
        OutputFormat::WebP => write_image(
            WebPEncoder::new_lossless(&mut out),
            icc,
            &to_8bit(&image.pixels),
        ),
    };
    result.map_err(|e| EngineError::Encode(e.to_string()))?;
    Ok(out)
}

fn write_image<E: ImageEncoder>(
    mut encoder: E,
    icc: Option<&[u8]>,
    pixels: &DynamicImage,
) -> std::result::Result<(), ImageError> {
    if let Some(icc) = icc {
        // An encoder without ICC support still writes the pixels.
        let _ = encoder.set_icc_profile(icc.to_vec());
    }
    encoder.write_image(
        pixels.as_bytes(),
        pixels.width(),
        pixels.height(),
        pixels.color().into(),
    )
}

fn to_8bit(pixels: &DynamicImage) -> DynamicImage {
    if pixels.color().has_alpha() {
        DynamicImage::ImageRgba8(pixels.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(pixels.to_rgb8())
    }
}
