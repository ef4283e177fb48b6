//! Converted models and the engine's pre/post-processing against the reference outputs of the
//! original runtimes (../shared/golden).

mod common;

use common::{engine, engine_with, golden, max_abs_diff, read_npy};
use upres_engine::catalog::Border;
use upres_engine::inference::run_tail;
use upres_engine::planar::{Planar, Rect, Sides};
use upres_engine::{run_sr_with, run_untiled, SrModel, UpscaleRequest};

/// (model, scale, edge padding of the input): waifu2x's unpadded convolutions take the golden
/// input replicated 7 px beyond every edge and return exactly twice the unpadded size.
const SR_MODELS: [(&str, u32, usize); 12] = [
    ("realesrgan-x4plus", 4, 0),
    ("esrgan-thick", 2, 0),
    ("esrgan-thick", 4, 0),
    ("esrgan-medium", 2, 0),
    ("esrgan-medium", 4, 0),
    ("esrgan-slim", 2, 0),
    ("esrgan-slim", 4, 0),
    ("realesr-general-x4v3", 4, 0),
    ("span", 2, 0),
    ("span", 4, 0),
    ("waifu2x-photo", 2, 7),
    ("waifu2x-photo-denoise1", 2, 7),
];

fn golden_input() -> Planar {
    let (shape, data) = read_npy("input_astronaut_24x40.npy");
    Planar {
        width: shape[3],
        height: shape[2],
        data,
    }
}

/// `input` with its edge pixels repeated `pad` times beyond every edge.
fn edge_padded(input: &Planar, pad: usize) -> Planar {
    let whole = Rect {
        x: 0,
        y: 0,
        w: input.width,
        h: input.height,
    };
    Planar {
        width: input.width + 2 * pad,
        height: input.height + 2 * pad,
        data: input.crop_extended(whole, Sides::uniform(pad), Border::Replicate),
    }
}

#[test]
fn every_converted_model_matches_its_original_runtime() {
    let input = golden_input();
    for (model, scale, pad) in SR_MODELS {
        let session = engine().session(model, scale).unwrap();
        let got = run_untiled(&session, &edge_padded(&input, pad)).unwrap();
        let (shape, want) = read_npy(&format!("{model}-x{scale}_output.npy"));
        assert_eq!(shape, [1, 3, 24 * scale as usize, 40 * scale as usize]);
        let diff = max_abs_diff(&got, &want);
        eprintln!("{model} x{scale}: max abs diff {diff:.2e}");
        assert!(diff <= 1e-4, "{model} x{scale}: max abs diff {diff}");
    }
}

/// A split model (its trunk, then its tail on strips of the trunk's features, as the engine
/// runs it) computes what the original runtime computed, whatever the strip height; with one
/// row less of context than the manifest's, strips no longer join exactly.
#[test]
fn a_split_model_on_strips_matches_its_original_runtime() {
    let input = golden_input();
    let split: Vec<_> = upres_engine::catalog::catalog()
        .iter()
        .filter_map(|e| Some((e, e.tiling.tail?)))
        .flat_map(|(e, tail)| e.scales.iter().map(move |&s| (e.id.as_str(), s, tail)))
        .collect();
    assert!(!split.is_empty(), "the manifest splits realesrgan-x4plus");
    for (model, scale, tail) in split {
        let SrModel::Split {
            trunk,
            tail: tail_session,
            strips,
        } = engine().sr_model(model, scale).unwrap()
        else {
            panic!("{model} is split in the manifest, not in the engine");
        };
        assert_eq!(strips, tail);
        let (w, h, s) = (input.width, input.height, scale as usize);
        let features = run_sr_with(&trunk, &input.data, (w, h), <[f32]>::to_vec).unwrap();
        let (_, want) = read_npy(&format!("{model}-x{scale}_output.npy"));
        let on_strips =
            |rows, context| run_tail(&tail_session, &features, (w, h), s, context, rows).unwrap();
        for rows in [1, 5, h] {
            let diff = max_abs_diff(&on_strips(rows, tail.context), &want);
            eprintln!("{model} x{scale}, strips of {rows} rows: max abs diff {diff:.2e}");
            assert!(
                diff <= 1e-4,
                "{model}: strips of {rows} rows, max abs diff {diff}"
            );
        }
        let short = max_abs_diff(&on_strips(1, tail.context - 1), &want);
        assert!(
            short > 1e-3,
            "{model}: context {} would do ({short})",
            tail.context - 1
        );
        // The engine's own path (one tile without context: the unpadded run) to 8 bits.
        let exact = engine_with(|a| a.tile_context = Some(0));
        let image = exact
            .decode(&std::fs::read(golden("input_astronaut_24x40.png")).unwrap())
            .unwrap();
        let request = UpscaleRequest {
            model: model.into(),
            scale,
            preserve_alpha: true,
        };
        let got = exact.upscale(&image, &request).unwrap().pixels.to_rgb8();
        let (ow, oh) = (w * s, h * s);
        for (i, &v) in got.as_raw().iter().enumerate() {
            let (pixel, c) = (i / 3, i % 3);
            let reference = want[c * ow * oh + pixel] * 255.0;
            assert!(
                (f32::from(v) - reference).abs() <= 0.5 + 1e-3,
                "{model}: value {i} is {v}, the reference {reference}"
            );
        }
    }
}

#[test]
fn png_decodes_to_the_golden_float_input() {
    let image = engine()
        .decode(&std::fs::read(golden("input_astronaut_24x40.png")).unwrap())
        .unwrap();
    let (rgb, alpha) = upres_engine::alpha::split(&image.pixels);
    assert!(alpha.is_none());
    assert_eq!(rgb, golden_input());
}

/// The whole engine path (decode, tiles, f32 -> u8 rounding) reproduces the 8-bit reference,
/// an unpadded run of the model: so no context around the (single) tile here.
#[test]
fn eight_bit_output_is_rounded_not_truncated() {
    let engine = engine_with(|a| a.tile_context = Some(0));
    let image = engine
        .decode(&std::fs::read(golden("input_astronaut_24x40.png")).unwrap())
        .unwrap();
    let request = UpscaleRequest {
        model: "esrgan-slim".into(),
        scale: 4,
        preserve_alpha: true,
    };
    let got = engine.upscale(&image, &request).unwrap().pixels.to_rgb8();
    let want = image::open(golden("slim-x4_expected.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(got.dimensions(), want.dimensions());
    let diffs: Vec<i32> = got
        .as_raw()
        .iter()
        .zip(want.as_raw())
        .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
        .collect();
    assert!(
        diffs.iter().all(|&d| d <= 1),
        "a value differs by more than one level"
    );
    let differing = diffs.iter().filter(|&&d| d > 0).count();
    assert!(
        differing <= 46,
        "{differing} of {} values differ",
        diffs.len()
    );
}

#[test]
fn classifier_matches_the_reference_scores() {
    let (shape, tensor) = read_npy("moderation_input_astronaut.npy");
    assert_eq!(shape, [1, 224, 224, 3]);
    let (_, want) = read_npy("moderation_output_astronaut.npy");
    let session = engine().classifier().unwrap();
    let p_unsafe = upres_engine::moderation::score(&session, &tensor).unwrap();
    assert!(
        (p_unsafe - want[1]).abs() < 1e-4,
        "P(nsfw) {p_unsafe} vs {}",
        want[1]
    );
    assert!(!engine().is_blocked(p_unsafe));
}

/// The whole moderation pipeline on the photos scored in moderation.json (fetched by
/// scripts/setup.sh from the scikit-image package into .cache/testdata).
#[test]
fn moderation_pipeline_reproduces_the_package_scores() {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden("moderation.json")).unwrap()).unwrap();
    let testdata = upres_engine::paths::resolve(std::path::Path::new(".cache/testdata"));
    let session = engine().classifier().unwrap();
    for (name, file) in [
        ("astronaut", "astronaut.png"),
        ("chelsea", "chelsea.png"),
        ("coffee", "coffee.png"),
        ("rocket", "rocket.jpg"),
    ] {
        let want = &reference["images"][name];
        let bytes = std::fs::read(testdata.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}; run scripts/setup.sh"));
        let image = engine().decode(&bytes).unwrap();
        let no_jpeg = upres_engine::moderation::preprocess(&image.pixels, false).unwrap();
        let score = upres_engine::moderation::score(&session, &no_jpeg).unwrap();
        let want_no_jpeg = want["nsfw_without_jpeg_roundtrip"].as_f64().unwrap() as f32;
        assert!(
            (score - want_no_jpeg).abs() < 1e-3,
            "{name} without JPEG: {score} vs {want_no_jpeg}"
        );
        let full = engine().unsafe_score(&image).unwrap();
        let want_full = want["nsfw_package_pipeline"].as_f64().unwrap() as f32;
        assert!(
            (full - want_full).abs() < 0.02,
            "{name}: {full} vs {want_full}"
        );
        assert_eq!(
            engine().is_blocked(full),
            want["is_nsfw_at_0.5"].as_bool().unwrap(),
            "{name}"
        );
    }
}
