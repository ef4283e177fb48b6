//! The engine end to end on real models: tiling, alpha, formats, limits.

mod common;

use common::{engine, engine_with, golden};
use image::{DynamicImage, GenericImageView, ImageEncoder, Rgba, RgbaImage};
use upres_engine::{run_untiled, EngineError, Image, OutputFormat, UpscaleRequest};

fn request(scale: u32, preserve_alpha: bool) -> UpscaleRequest {
    UpscaleRequest {
        model: "esrgan-slim".into(),
        scale,
        preserve_alpha,
    }
}

/// A 160x96 photo crop (the 8-bit golden output), a realistic input.
fn photo() -> Image {
    engine()
        .decode(&std::fs::read(golden("slim-x4_expected.png")).unwrap())
        .unwrap()
}

/// An opaque red disc on fully transparent black.
fn red_disc() -> Image {
    let img = RgbaImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (x as f32 - 31.5, y as f32 - 31.5);
        if dx * dx + dy * dy < 20.0 * 20.0 {
            Rgba([220, 30, 20, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    Image::new(DynamicImage::ImageRgba8(img))
}

#[test]
fn transparent_background_does_not_darken_edges() {
    let out = engine()
        .upscale(&red_disc(), &request(4, true))
        .unwrap()
        .pixels;
    let out = out.as_rgba8().expect("RGBA in gives RGBA out");
    assert_eq!(out.dimensions(), (256, 256));
    let mut edge_pixels = 0;
    for p in out.pixels().filter(|p| p.0[3] > 0) {
        if p.0[3] < 255 {
            edge_pixels += 1;
        }
        assert!(p.0[0] >= 190, "darkened edge: {:?}", p.0);
        assert!(
            p.0[1] <= 70 && p.0[2] <= 60,
            "colour shift at edge: {:?}",
            p.0
        );
    }
    assert!(
        edge_pixels > 100,
        "expected a soft edge, got {edge_pixels} partial pixels"
    );
    for (x, y) in [(0, 0), (255, 0), (10, 128), (128, 250)] {
        assert_eq!(
            out.get_pixel(x, y).0[3],
            0,
            "transparent stays transparent at {x},{y}"
        );
    }
    assert_eq!(out.get_pixel(128, 128).0[3], 255);
}

#[test]
fn without_preserve_alpha_the_output_is_opaque_over_white() {
    let out = engine()
        .upscale(&red_disc(), &request(2, false))
        .unwrap()
        .pixels;
    assert_eq!(out.color(), image::ColorType::Rgb8);
    let far = out.get_pixel(2, 2).0;
    assert!(
        far[..3].iter().all(|&v| v >= 250),
        "background should be white: {far:?}"
    );
    let centre = out.get_pixel(64, 64).0;
    assert!(centre[0] > 190 && centre[1] < 70, "{centre:?}");
}

fn encode_png(pixels: &DynamicImage) -> Vec<u8> {
    upres_engine::encode(&Image::new(pixels.clone()), OutputFormat::Png).unwrap()
}

#[test]
fn layouts_and_depths_are_kept() {
    let base = photo().pixels;
    let cases = [
        (
            DynamicImage::ImageRgb16(base.to_rgb16()),
            image::ColorType::Rgb16,
        ),
        (
            DynamicImage::ImageRgba16(base.to_rgba16()),
            image::ColorType::Rgba16,
        ),
        (
            DynamicImage::ImageLuma8(base.to_luma8()),
            image::ColorType::L8,
        ),
        (
            DynamicImage::ImageLumaA8(base.to_luma_alpha8()),
            image::ColorType::La8,
        ),
        (
            DynamicImage::ImageLuma16(base.to_luma16()),
            image::ColorType::L16,
        ),
    ];
    for (input, want) in cases {
        let decoded = engine().decode(&encode_png(&input)).unwrap();
        assert_eq!(decoded.pixels.color(), want);
        let out = engine().upscale(&decoded, &request(2, true)).unwrap();
        let round_trip = engine()
            .decode(&upres_engine::encode(&out, OutputFormat::Png).unwrap())
            .unwrap();
        assert_eq!(round_trip.pixels.color(), want, "{want:?} in");
        assert_eq!(round_trip.pixels.dimensions(), (320, 192));
        // Same picture as the 8-bit RGB path, within a level.
        let eight = engine()
            .upscale(&photo(), &request(2, true))
            .unwrap()
            .pixels;
        let (a, b) = (round_trip.pixels.to_luma8(), eight.to_luma8());
        let mean: f32 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| (f32::from(x) - f32::from(y)).abs())
            .sum::<f32>()
            / a.as_raw().len() as f32;
        assert!(mean < 1.0, "{want:?}: mean luma difference {mean}");
    }
}

#[test]
fn sixteen_bit_output_keeps_sixteen_bit_precision() {
    let base = photo().pixels.to_rgb16();
    let out = engine()
        .upscale(
            &Image::new(DynamicImage::ImageRgb16(base)),
            &request(2, true),
        )
        .unwrap();
    let values = out.pixels.as_rgb16().unwrap().as_raw();
    // 8-bit data scaled to 16 bits is a multiple of 257; model output must not be.
    let off_grid = values.iter().filter(|&&v| v % 257 != 0).count();
    assert!(
        off_grid > values.len() / 2,
        "16-bit output looks 8-bit ({off_grid} off the 8-bit grid)"
    );
}

/// EXIF orientation 6 (rotate 90 clockwise) in a 20x10 JPEG gives a 10x20 image.
#[test]
fn exif_orientation_is_applied() {
    let pixels = RgbaImage::from_fn(20, 10, |x, _| {
        if x < 10 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let exif: Vec<u8> = [
        &b"II*\0\x08\0\0\0"[..],                     // TIFF header, IFD at 8
        &[1, 0],                                     // one entry
        &[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0], // Orientation, SHORT, 1, value 6
        &[0, 0, 0, 0],                               // no next IFD
    ]
    .concat();
    let mut jpeg = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(
            DynamicImage::ImageRgba8(pixels).to_rgb8().as_raw(),
            20,
            10,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let decoded = engine().decode(&jpeg).unwrap();
    assert_eq!(decoded.pixels.dimensions(), (10, 20));
    // Rotated clockwise: the left (red) half is now on top.
    let top = decoded.pixels.get_pixel(5, 2).0;
    let bottom = decoded.pixels.get_pixel(5, 17).0;
    assert!(
        top[0] > 200 && bottom[2] > 200,
        "top {top:?} bottom {bottom:?}"
    );
    let out = engine().upscale(&decoded, &request(2, true)).unwrap();
    assert_eq!(out.pixels.dimensions(), (20, 40));
}

#[test]
fn tiny_and_extreme_aspect_images() {
    for (w, h) in [(1, 1), (1, 3000), (3000, 1)] {
        let img = Image::new(DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            w,
            h,
            image::Rgb([90, 140, 200]),
        )));
        let out = engine()
            .upscale(&img, &request(2, true))
            .unwrap()
            .pixels
            .to_rgb8();
        assert_eq!(out.dimensions(), (w * 2, h * 2));
        let p = out.get_pixel(w, h).0; // centre
        assert!(
            (i32::from(p[2]) - 200).abs() < 25,
            "{w}x{h}: flat colour changed to {p:?}"
        );
    }
}

#[test]
fn cmyk_jpeg_decodes_to_rgb() {
    // Pure cyan in CMYK (Adobe-style inverted storage is handled by the decoder either way).
    let mut jpeg = Vec::new();
    let data: Vec<u8> = (0..16 * 16).flat_map(|_| [255u8, 0, 0, 0]).collect();
    jpeg_encoder::Encoder::new(&mut jpeg, 95)
        .encode(&data, 16, 16, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    let decoded = engine().decode(&jpeg).unwrap();
    assert!(!decoded.pixels.color().has_alpha());
    let p = decoded.pixels.to_rgb8().get_pixel(8, 8).0;
    let out = engine().upscale(&decoded, &request(2, true)).unwrap();
    assert_eq!(out.pixels.dimensions(), (32, 32));
    // Cyan: little red, much green and blue; or the inverse if the decoder reads it inverted.
    assert!(
        p[0] < 60 && p[1] > 190 && p[2] > 190 || p[0] > 190 && p[1] < 60 && p[2] < 60,
        "{p:?}"
    );
}

#[test]
fn bad_inputs_give_distinct_errors() {
    let png = encode_png(&photo().pixels);
    let truncated = &png[..png.len() / 2];
    assert!(matches!(
        engine().decode(truncated),
        Err(EngineError::CorruptImage(_))
    ));
    let webp = upres_engine::encode(&photo(), OutputFormat::WebP).unwrap();
    assert_eq!(
        engine().decode(&webp).unwrap().pixels.to_rgb8(),
        photo().pixels.to_rgb8(),
        "lossless WebP round trip"
    );
    assert!(matches!(
        engine().decode(b"hello, this is not an image"),
        Err(EngineError::UnsupportedFormat(_))
    ));
    assert!(matches!(
        engine().decode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00"),
        Err(EngineError::UnsupportedFormat(_))
    ));
    let strict = engine_with(|a| {
        a.limits.max_input_bytes = png.len() - 1;
    });
    assert!(matches!(
        strict.decode(&png),
        Err(EngineError::InputTooLarge { .. })
    ));
    let few_pixels = engine_with(|a| a.limits.max_input_pixels = 100);
    assert!(matches!(
        few_pixels.decode(&png),
        Err(EngineError::TooManyInputPixels {
            width: 160,
            height: 96,
            ..
        })
    ));
    assert!(matches!(
        engine().check(2049, 2048, &request(4, true)),
        Err(EngineError::OutputTooLarge { .. })
    ));
    engine().check(2048, 2048, &request(4, true)).unwrap();
    assert!(matches!(
        engine().upscale(
            &photo(),
            &UpscaleRequest {
                model: "nope".into(),
                scale: 2,
                preserve_alpha: true
            }
        ),
        Err(EngineError::UnknownModel(..))
    ));
}

#[test]
fn icc_profile_is_carried_to_the_output() {
    let mut image = photo();
    let icc: Vec<u8> = (0..=255).collect();
    image.icc_profile = Some(icc.clone());
    let decoded = engine()
        .decode(&upres_engine::encode(&image, OutputFormat::Png).unwrap())
        .unwrap();
    assert_eq!(decoded.icc_profile.as_deref(), Some(&icc[..]));
    let out = engine().upscale(&decoded, &request(2, true)).unwrap();
    for format in [OutputFormat::Png, OutputFormat::Jpeg { quality: 90 }] {
        let again = engine()
            .decode(&upres_engine::encode(&out, format).unwrap())
            .unwrap();
        assert_eq!(again.icc_profile.as_deref(), Some(&icc[..]), "{format:?}");
    }
}

#[test]
fn x2_from_an_x4_only_model_is_x4_then_area_downscale() {
    // No context: the reference is an unpadded run of the whole (single-tile) image.
    let engine = &engine_with(|a| a.tile_context = Some(0));
    let img = Image::new(
        engine
            .decode(&std::fs::read(golden("input_astronaut_24x40.png")).unwrap())
            .unwrap()
            .pixels,
    );
    let req = |scale| UpscaleRequest {
        model: "realesrgan-x4plus".into(),
        scale,
        preserve_alpha: true,
    };
    let x2 = engine.upscale(&img, &req(2)).unwrap().pixels.to_rgb8();
    let (rgb, _) = upres_engine::alpha::split(&img.pixels);
    let x4 = run_untiled(&engine.session("realesrgan-x4plus", 4).unwrap(), &rgb).unwrap();
    assert_eq!(x2.dimensions(), (80, 48));
    let (w4, h4) = (160, 96);
    for (x, y, px) in x2.enumerate_pixels() {
        for c in 0..3 {
            let mut sum = 0.0;
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (sx, sy) = (x as usize * 2 + dx, y as usize * 2 + dy);
                sum += x4[(c * h4 + sy) * w4 + sx];
            }
            let want = (sum / 4.0).clamp(0.0, 1.0) * 255.0;
            assert!(
                (f32::from(px.0[c]) - want).abs() <= 1.0,
                "{x},{y}: {} vs {want}",
                px.0[c]
            );
        }
    }
}
