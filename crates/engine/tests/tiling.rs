//! Tiles and image borders, for every super-resolution model of the manifest: a tiled upscale
//! matches the same model run on the whole image, with no line at tile joins; a flat image stays
//! flat to its border; the border of a photo crop looks like the full photo's interior there.
//! The sweeps behind each model's stored `tiling.context` and `tiling.border_pad` are benches
//! (`cargo bench -p upres-engine --bench tile_context`, `--bench border_pad`).

mod common;

use common::{
    crop_border_band, difference, engine, engine_with, flat_deviation, photo, small_tiles,
    sr_models, upscale, FLAT_COLOURS,
};
use upres_engine::catalog::Look;
use upres_engine::{Engine, ModelInfo};

/// The scales a model serves (x2 from an x4-only model is x4, then a 2x2 area downscale).
fn scales(model: &ModelInfo) -> Vec<u32> {
    [2, 4]
        .into_iter()
        .filter(|&s| model.plan(s).is_ok())
        .collect()
}

/// An engine that runs every image as a single tile.
fn whole_engine() -> Engine {
    engine_with(|a| a.tile = Some(1 << 20))
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
