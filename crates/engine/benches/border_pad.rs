//! The sweep behind the border pad: per model, scale and mirrored pad around a whole image,
//! the distance to the golden output of the original runtime (which ran the image unpadded),
//! a flat image's worst pixel and the crop border against the full photo.
//! `cargo bench -p upres-engine --bench border_pad` (several minutes); UPRES_CONTEXT_MODELS
//! (comma-separated ids) picks models.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{crop_border_band, engine_with, golden, sr_models, upscale, worst_flat_deviation};

fn main() {
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
