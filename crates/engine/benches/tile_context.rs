//! The sweep behind `tiling.context` in models/manifest.json: per model and scale, the smallest
//! context at which tiles stay within 0.05 level of the whole image on average (half the bound of
//! tests/tiling.rs), no line over 0.25, and a flat image flat within one level.
//! `cargo bench -p upres-engine --bench tile_context` (several minutes);
//! UPRES_CONTEXT_MODELS (comma-separated ids) picks models.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{
    difference, engine_with, photo, small_tiles, sr_models, upscale, worst_flat_deviation,
};

fn main() {
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
