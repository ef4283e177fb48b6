//! Tiles and image borders, for every super-resolution model of the manifest: a tiled upscale
//! matches the same model run on the whole image, with no line at tile joins; a flat image stays
//! flat to its border; the border of a photo crop looks like the full photo's interior there.
//! `measure_tile_context` (ignored; `benches/run.sh` runs it) is the sweep behind each model's
//! stored `tiling.context`.

mod common;

use common::{engine, engine_with, golden, photo, upscale};
use image::RgbImage;
use upres_engine::catalog::{catalog, Look};
use upres_engine::{Engine, ModelInfo};

/// Every super-resolution model the manifest lists (scripts/setup.sh installs them all).
fn sr_models() -> Vec<&'static ModelInfo> {
    catalog()
        .iter()
        .filter(|e| e.is_sr())
        .map(|e| engine().model(&e.id).expect("run scripts/setup.sh"))
        .collect()
}

/// The scales a model serves (x2 from an x4-only model is x4, then a 2x2 area downscale).
fn scales(model: &ModelInfo) -> Vec<u32> {
    [2, 4]
        .into_iter()
        .filter(|&s| model.plan(s).is_ok())
        .collect()
}

/// One engine that runs every image as a single tile, one with small tiles.
fn whole_engine() -> Engine {
    engine_with(|a| a.tile = Some(1 << 20))
}

/// 2x2 tiles of a 72-pixel crop: one join each way and a corner where four tiles meet.
fn small_tiles(context: Option<usize>) -> Engine {
    engine_with(|a| {
        a.tile = Some(40);
        a.tile_overlap = 8;
        a.tile_context = context;
    })
}

/// (mean abs difference in levels, worst mean over one output column or row).
fn difference(a: &RgbImage, b: &RgbImage) -> (f32, f32) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (w, h) = (a.width() as usize, a.height() as usize);
    let (mut cols, mut rows) = (vec![0f32; w], vec![0f32; h]);
    let mut total = 0f32;
    for (i, (p, q)) in a.pixels().zip(b.pixels()).enumerate() {
        let d = (0..3)
            .map(|c| (f32::from(p.0[c]) - f32::from(q.0[c])).abs())
            .sum::<f32>()
            / 3.0;
        cols[i % w] += d / h as f32;
        rows[i / w] += d / w as f32;
        total += d;
    }
    let line = cols.iter().chain(&rows).fold(0f32, |m, &v| m.max(v));
    (total / (w * h) as f32, line)
}

/// Flat colours for the border checks: near white, a saturated blue, a dark brown.
const FLAT_COLOURS: [[u8; 3]; 3] = [[250, 250, 250], [12, 140, 230], [128, 64, 32]];

/// Largest difference (levels) between any output pixel of a flat image and its centre pixel.
fn flat_deviation(engine: &Engine, model: &str, scale: u32, colour: [u8; 3]) -> u8 {
    let out = upscale(
        engine,
        model,
        scale,
        &RgbImage::from_pixel(37, 29, image::Rgb(colour)),
    );
    let centre = out.get_pixel(out.width() / 2, out.height() / 2).0;
    out.pixels()
        .flat_map(|p| (0..3).map(move |c| p.0[c].abs_diff(centre[c])))
        .max()
        .unwrap()
}

/// The largest [`flat_deviation`] over the flat colours.
fn worst_flat_deviation(engine: &Engine, model: &str, scale: u32) -> u8 {
    FLAT_COLOURS
        .map(|colour| flat_deviation(engine, model, scale, colour))
        .into_iter()
        .max()
        .unwrap()
}

/// A 72x72 photo crop in 2x2 tiles against the whole crop at once, at every model's native
/// scales: under 0.1 level apart on average, and no output column or row (a tile join is one)
/// over 0.5 level apart on average. (x2 from x4 tiles the same way, then halves each tile.)
#[test]
fn tiles_do_not_change_the_result_for_any_model() {
    let input = photo(40, 12, 72, 72);
    let (whole, tiled) = (whole_engine(), small_tiles(None));
    for model in sr_models() {
        for &scale in &model.native_scales {
            let reference = upscale(&whole, &model.id, scale, &input);
            let (mean, line) = difference(&upscale(&tiled, &model.id, scale, &input), &reference);
            eprintln!(
                "{} x{scale}: mean {mean:.4}, worst line {line:.4}",
                model.id
            );
            assert!(mean < 0.1, "{} x{scale}: mean difference {mean}", model.id);
            assert!(
                line < 0.5,
                "{} x{scale}: a line differs by {line}",
                model.id
            );
        }
    }
    // The control: hard-cut tiles without context, whose seams the line check must catch.
    let hard_cut = engine_with(|a| {
        a.tile = Some(40);
        a.tile_overlap = 0;
        a.tile_context = Some(0);
    });
    let reference = upscale(&whole, "esrgan-slim", 4, &input);
    let (_, line) = difference(&upscale(&hard_cut, "esrgan-slim", 4, &input), &reference);
    assert!(line > 0.5, "the seam check misses hard cuts: {line}");
}

/// A flat image upscales to a flat image at every pixel, the border included (within one
/// level), for every model, scale and tile size.
#[test]
fn flat_images_stay_flat_to_the_border() {
    let engines = [small_tiles(None), whole_engine()];
    let mut case = 0;
    for model in sr_models() {
        for scale in scales(model) {
            for engine in &engines {
                let colour = FLAT_COLOURS[case % FLAT_COLOURS.len()];
                case += 1;
                let worst = flat_deviation(engine, &model.id, scale, colour);
                assert!(
                    worst <= 1,
                    "{} x{scale} {colour:?}: {worst} levels",
                    model.id
                );
            }
        }
    }
}

/// Mean levels between the outer band (2 input pixels) of an upscaled 64x48 photo crop and the
/// same region of the upscaled 160x96 photo it was cut from.
fn crop_border_band(engine: &Engine, model: &str, scale: u32) -> f32 {
    let (x0, y0) = (48u32, 24u32);
    let full = upscale(engine, model, scale, &photo(0, 0, 160, 96));
    let part = upscale(engine, model, scale, &photo(x0, y0, 64, 48));
    let band = 2 * scale;
    let (mut sum, mut n) = (0f32, 0f32);
    for (x, y, p) in part.enumerate_pixels() {
        let inside =
            (band..part.width() - band).contains(&x) && (band..part.height() - band).contains(&y);
        if !inside {
            let q = full.get_pixel(x + x0 * scale, y + y0 * scale);
            sum += (0..3)
                .map(|c| (f32::from(p.0[c]) - f32::from(q.0[c])).abs())
                .sum::<f32>()
                / 3.0;
            n += 1.0;
        }
    }
    sum / n
}

/// The outer band (2 input pixels) of an upscaled 64x48 photo crop against the same region of
/// the upscaled full photo: the mirrored context stands in for the missing neighbourhood well
/// enough that the crop's edge is not visibly different there. Measured (mean levels; with zero
/// padding instead, `--tile-context 0`, in brackets): esrgan-thick 0.49 (1.02), esrgan-medium
/// 0.54 (2.48), esrgan-slim 0.49 (3.16), span 0.52 (0.18), waifu2x-photo* 0.25-0.66 (the same:
/// no context), realesr-general-x4v3 1.3 (1.06), realesrgan-x4plus 2.74 (1.98). The GANs invent
/// texture from whatever surrounds a pixel, so mirrored surroundings move them more; the flat
/// test above is where zero padding fails (up to 100 levels at the edge).
#[test]
fn a_crop_border_looks_like_the_full_image_there() {
    for model in sr_models() {
        let scale = *scales(model).last().unwrap();
        let diff = crop_border_band(engine(), &model.id, scale);
        eprintln!(
            "{} x{scale}: border band {diff:.2} levels from the full image",
            model.id
        );
        let bound = match model.catalog.and_then(|e| e.look) {
            Some(Look::Gan) => 3.0,
            _ => 1.0,
        };
        assert!(diff < bound, "{} x{scale}: {diff} levels", model.id);
    }
}

/// The sweep behind `tiling.context` in models/manifest.json: per model and scale, the smallest
/// context at which tiles stay within 0.05 level of the whole image on average (half the test's
/// bound), no line over 0.25, and a flat image flat within one level.
/// `cargo test --release -p upres-engine --test tiling -- --ignored --nocapture`;
/// UPRES_CONTEXT_MODELS (comma-separated ids) picks models.
#[test]
#[ignore = "a measurement: several minutes"]
fn measure_tile_context() {
    let wanted = std::env::var("UPRES_CONTEXT_MODELS").ok();
    let input = photo(40, 12, 72, 72);
    println!("| model | scale | context | tiled vs whole: mean | worst line | flat: worst pixel |");
    println!("|---|---|---|---|---|---|");
    for model in sr_models() {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.split(',').any(|id| id == model.id))
        {
            continue;
        }
        for scale in model.native_scales.clone() {
            let mut chosen = None;
            for context in [0, 4, 8, 12, 16, 24, 32, 48, 64] {
                let whole = engine_with(|a| {
                    a.tile = Some(1 << 20);
                    a.tile_context = Some(context);
                });
                let reference = upscale(&whole, &model.id, scale, &input);
                let tiled = upscale(&small_tiles(Some(context)), &model.id, scale, &input);
                let (mean, line) = difference(&tiled, &reference);
                let flat = worst_flat_deviation(&whole, &model.id, scale);
                println!(
                    "| {} | x{scale} | {context} | {mean:.4} | {line:.4} | {flat} |",
                    model.id
                );
                if mean < 0.05 && line < 0.25 && flat <= 1 {
                    chosen = Some(context);
                    break;
                }
            }
            println!(
                "| {} | x{scale} | smallest meeting the goals: {chosen:?} (stored: {}) | | | |",
                model.id, model.tiling.context
            );
        }
    }
}

/// The sweep behind the border pad: per model, scale and mirrored pad around a whole image,
/// the distance to the golden output of the original runtime (which ran the image unpadded),
/// a flat image's worst pixel and the crop border against the full photo.
/// `cargo test --release -p upres-engine --test tiling -- --ignored --nocapture measure_border_pad`
#[test]
#[ignore = "a measurement: several minutes"]
fn measure_border_pad() {
    let wanted = std::env::var("UPRES_CONTEXT_MODELS").ok();
    let golden_rgb = image::open(golden("input_astronaut_24x40.png"))
        .unwrap()
        .to_rgb8();
    println!("| model | scale | pad | golden: mean levels | golden: max | golden: values > 1 level | flat: worst | crop border |");
    println!("|---|---|---|---|---|---|---|---|");
    for model in sr_models() {
        if model.tiling.context == 0
            || wanted
                .as_ref()
                .is_some_and(|w| !w.split(',').any(|id| id == model.id))
        {
            continue;
        }
        for scale in model.native_scales.clone() {
            let (_, want) = common::read_npy(&format!("{}-x{scale}_output.npy", model.id));
            let (h, w) = (24 * scale as usize, 40 * scale as usize);
            for pad in [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64] {
                if pad > model.tiling.context {
                    break;
                }
                let whole = engine_with(|a| {
                    a.tile = Some(1 << 20);
                    a.tile_context = Some(pad);
                });
                let got = upscale(&whole, &model.id, scale, &golden_rgb);
                let diffs: Vec<f32> = got
                    .enumerate_pixels()
                    .flat_map(|(x, y, p)| {
                        let want = &want;
                        (0..3).map(move |c| {
                            let v = want[(c * h + y as usize) * w + x as usize];
                            (f32::from(p.0[c]) - (v.clamp(0.0, 1.0) * 255.0).round()).abs()
                        })
                    })
                    .collect();
                let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
                let max = diffs.iter().fold(0f32, |m, &d| m.max(d));
                let over = diffs.iter().filter(|&&d| d > 1.0).count();
                let flat = worst_flat_deviation(&whole, &model.id, scale);
                println!(
                    "| {} | x{scale} | {pad} | {mean:.3} | {max} | {over} | {flat} | {:.2} |",
                    model.id,
                    crop_border_band(&whole, &model.id, scale)
                );
            }
        }
    }
}
