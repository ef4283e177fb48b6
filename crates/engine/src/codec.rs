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
    let format = supported_format(bytes)?;
    // A decoder that panics on malformed data (zune-jpeg 0.5.15 and png 0.18.1 do on some, found
    // by the `decode` fuzz target) must fail this image only, as corrupt, not the caller's thread.
    std::panic::catch_unwind(|| decode_as(bytes, format, limits)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(EngineError::CorruptImage(format!(
            "the {format:?} decoder failed on this data ({reason})"
        )))
    })
}

/// The format of PNG, JPEG or WebP bytes, from their first bytes; any other is unsupported.
pub fn supported_format(bytes: &[u8]) -> Result<ImageFormat> {
    let format = image::guess_format(bytes).map_err(|_| {
        EngineError::UnsupportedFormat("the data is not a PNG, JPEG or WebP image".into())
    })?;
    match format {
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP => Ok(format),
        other => Err(EngineError::UnsupportedFormat(format!("{other:?}"))),
    }
}

fn decode_as(bytes: &[u8], format: ImageFormat, limits: &Limits) -> Result<Image> {
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
    if format == ImageFormat::WebP {
        check_webp_chunks(bytes, limits.max_input_pixels)?;
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

/// Checks that image-webp (0.2.4) needs before it allocates, found by the `decode` fuzz target:
/// - it allocates a lossy frame's buffers (1.5 bytes per pixel) from the frame's own header
///   before comparing that size with the canvas, which is what `decode` checks: a 16x16
///   extended WebP could announce a 16383 x 16383 frame and have ~400 MB allocated. So every VP8
///   frame header, top-level or inside an animation frame, must be within the pixel limit too;
/// - it allocates a metadata chunk (ICCP, EXIF, XMP) at the size its header declares, up to
///   4 GiB, before reading it. So no chunk may declare more bytes than the input has.
fn check_webp_chunks(bytes: &[u8], max_pixels: u64) -> Result<()> {
    let check_vp8 = |data: &[u8]| {
        // Frame tag (3 bytes, bit 0 clear for a key frame), start code, 14-bit width and height.
        if data.len() < 10 || data[0] & 1 != 0 || data[3..6] != [0x9d, 0x01, 0x2a] {
            return Ok(());
        }
        let width = u32::from(u16::from_le_bytes([data[6], data[7]]) & 0x3fff);
        let height = u32::from(u16::from_le_bytes([data[8], data[9]]) & 0x3fff);
        if u64::from(width) * u64::from(height) > max_pixels {
            return Err(EngineError::TooManyInputPixels {
                width,
                height,
                limit: max_pixels,
            });
        }
        Ok(())
    };
    for chunk in riff_chunks(bytes.get(12..).unwrap_or_default()) {
        if chunk.declared > chunk.data.len() {
            return Err(EngineError::CorruptImage(format!(
                "WebP chunk '{}' declares {} bytes but only {} follow",
                String::from_utf8_lossy(&chunk.fourcc),
                chunk.declared,
                chunk.data.len()
            )));
        }
        match &chunk.fourcc {
            b"VP8 " => check_vp8(chunk.data)?,
            // 16 bytes of frame position, size, duration and flags, then the frame's chunks.
            b"ANMF" => {
                for inner in riff_chunks(chunk.data.get(16..).unwrap_or_default()) {
                    if &inner.fourcc == b"VP8 " {
                        check_vp8(inner.data)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A RIFF chunk: its code, the size its header declares, and its data (cut short at the end of
/// the input).
#[derive(Debug, PartialEq, Eq)]
struct RiffChunk<'a> {
    fourcc: [u8; 4],
    declared: usize,
    data: &'a [u8],
}

/// The chunks of a RIFF body.
fn riff_chunks(mut rest: &[u8]) -> impl Iterator<Item = RiffChunk<'_>> {
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let fourcc = [rest[0], rest[1], rest[2], rest[3]];
        let declared = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let body = &rest[8..];
        let data = &body[..declared.min(body.len())];
        // Chunks are padded to an even size.
        rest = body
            .get(declared.saturating_add(declared & 1)..)
            .unwrap_or_default();
        Some(RiffChunk {
            fourcc,
            declared,
            data,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_vec();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = [b"WEBP".to_vec(), chunks.concat()].concat();
        [
            b"RIFF".as_slice(),
            &(body.len() as u32).to_le_bytes(),
            &body,
        ]
        .concat()
    }

    /// A VP8X header for a `w` x `h` canvas (`flags`: 0x02 animation).
    fn vp8x(flags: u8, w: u32, h: u32) -> Vec<u8> {
        let mut data = vec![flags, 0, 0, 0];
        data.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        data.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        riff_chunk(b"VP8X", &data)
    }

    /// The start of a VP8 key frame announcing `w` x `h`, then junk.
    fn vp8_key_frame(w: u16, h: u16) -> Vec<u8> {
        let mut data = vec![0x50, 0x04, 0x00, 0x9d, 0x01, 0x2a];
        data.extend_from_slice(&w.to_le_bytes());
        data.extend_from_slice(&h.to_le_bytes());
        data.extend_from_slice(&[0x5a; 64]);
        riff_chunk(b"VP8 ", &data)
    }

    fn limits() -> Limits {
        Limits {
            max_input_pixels: 1024 * 1024,
            ..Limits::default()
        }
    }

    /// `decode` refuses `bytes` for announcing a frame of `expected` pixels.
    fn assert_too_many_pixels(bytes: &[u8], expected: (u32, u32)) {
        match decode(bytes, &limits()) {
            Err(EngineError::TooManyInputPixels { width, height, .. }) => {
                assert_eq!((width, height), expected)
            }
            other => panic!("expected TooManyInputPixels, got {other:?}"),
        }
    }

    // Regression (fuzz target `decode`, fuzz/corpus/decode/regress-webp-vp8-frame-over-canvas.webp):
    // a 16x16 extended WebP whose VP8 frame announces 9281 x 8815 had ~120 MB allocated for it.
    #[test]
    fn webp_frame_larger_than_the_canvas_is_refused_before_decoding() {
        let bytes = riff(&[vp8x(0, 16, 16), vp8_key_frame(9281, 8815)]);
        assert_too_many_pixels(&bytes, (9281, 8815));
    }

    #[test]
    fn webp_animation_frame_larger_than_the_canvas_is_refused_before_decoding() {
        let mut anmf = vec![0u8; 16];
        anmf[6..9].copy_from_slice(&15u32.to_le_bytes()[..3]); // frame 16 x 16
        anmf[9..12].copy_from_slice(&15u32.to_le_bytes()[..3]);
        anmf.extend_from_slice(&vp8_key_frame(16383, 16383));
        let anim = riff_chunk(b"ANIM", &[0; 6]);
        let bytes = riff(&[vp8x(0x02, 16, 16), anim, riff_chunk(b"ANMF", &anmf)]);
        assert_too_many_pixels(&bytes, (16383, 16383));
    }

    // Regression (fuzz target `decode`, fuzz/corpus/decode/regress-webp-exif-size-over-input.webp):
    // an EXIF chunk declaring 3.7 GB (of 306 bytes) had them allocated before it was read.
    #[test]
    fn webp_chunk_declaring_more_than_the_input_is_refused() {
        let mut exif = riff_chunk(b"EXIF", b"II*\0\x08\0\0\0");
        exif[4..8].copy_from_slice(&0xdb00_0005u32.to_le_bytes());
        let bytes = riff(&[vp8x(0x08, 16, 16), vp8_key_frame(16, 16), exif]);
        match decode(&bytes, &limits()) {
            Err(EngineError::CorruptImage(message)) => assert_eq!(
                message,
                "WebP chunk 'EXIF' declares 3674210309 bytes but only 8 follow"
            ),
            other => panic!("expected CorruptImage, got {other:?}"),
        }
    }

    // Regressions (fuzz target `decode`): decoders that panic on malformed data, each panic to
    // become a corrupt-image error. zune-jpeg 0.5.15 in its AVX2 IDCT (an `unwrap` on an output
    // row out of range); png 0.18.1 expanding a 2-bit palette image whose PLTE (28 bytes) is not
    // whole RGB entries (a slice out of range).
    #[test]
    fn a_decoder_panic_is_a_corrupt_image() {
        let cases: [(&[u8], &str, bool); 2] = [
            (
                include_bytes!("../../../fuzz/corpus/decode/regress-jpeg-zune-idct-panic.jpg"),
                "the Jpeg decoder failed",
                std::is_x86_feature_detected!("avx2"),
            ),
            (
                include_bytes!(
                    "../../../fuzz/corpus/decode/regress-png-palette-transform-panic.png"
                ),
                "the Png decoder failed",
                true,
            ),
        ];
        for (bytes, prefix, panics_here) in cases {
            match decode(bytes, &limits()) {
                Err(EngineError::CorruptImage(message)) => {
                    assert!(message.starts_with(prefix), "{message}")
                }
                other if panics_here => panic!("{prefix}: expected CorruptImage, got {other:?}"),
                _ => {}
            }
        }
    }

    #[test]
    fn riff_chunks_are_split_with_padding_and_cut_at_the_end() {
        let body = [
            riff_chunk(b"ABCD", b"xyz"),
            riff_chunk(b"EFGH", b"12345678"),
        ]
        .concat();
        let chunks: Vec<_> = riff_chunks(&body)
            .map(|c| (c.fourcc, c.declared, c.data))
            .collect();
        assert_eq!(
            chunks,
            vec![(*b"ABCD", 3, &b"xyz"[..]), (*b"EFGH", 8, &b"12345678"[..])]
        );
        let cut: Vec<_> = riff_chunks(&body[..body.len() - 3]).collect();
        assert_eq!((cut[1].declared, cut[1].data), (8, &b"12345"[..]));
        assert_eq!(riff_chunks(&[0; 7]).count(), 0);
    }
}
