//! One model, one tile size: the time of the engine's model run on a photo crop of `tile`
//! pixels plus the model's margin on every side (a bare session run, or for a split model its
//! trunk and its tail on strips), and the memory that run adds to the process (peak RSS after
//! the runs minus RSS before the first). One process per point, so each starts with an empty
//! ONNX Runtime arena; `benches/tiles.py` runs the sweep.
//!
//! For a split model the tail first runs alone, on one strip of zeros as large as the engine's
//! strips for this tile: the memory that adds is the tail's (`tail_bytes_per_px`, per feature
//! pixel of the strip), and `bytes_per_px` is the rest, the trunk's.
//!
//! `cargo run --release -p upres-benches --example tile_probe -- MODEL SCALE TILE [RUNS]`
//! prints one JSON line.

use std::time::Instant;

use upres_benches::{engine_config, photo_crop, status_kib};
use upres_engine::inference::run_tail;
use upres_engine::{Engine, SrModel};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, scale, tile, rest @ ..] = args.as_slice() else {
        panic!("usage: tile_probe MODEL SCALE TILE [RUNS]");
    };
    let (scale, tile): (u32, usize) = (scale.parse().unwrap(), tile.parse().unwrap());
    let runs: usize = rest.first().map_or(3, |r| r.parse().unwrap());
    let engine = Engine::new(&engine_config()).expect("run scripts/setup.sh first");
    let tiling = engine.model(model).unwrap().tiling;
    let (native, _) = engine.model(model).unwrap().plan(scale).unwrap();
    let sr = engine.sr_model(model, native).unwrap();
    let side = tile + 2 * tiling.margin();
    let (rgb, _) = upres_engine::alpha::split(&photo_crop(side as u32).pixels);
    let before = status_kib("VmRSS:");
    let tail_kib = match &sr {
        SrModel::Whole(_) => 0,
        SrModel::Split { tail, strips, .. } => {
            let channels = tail.lock().unwrap().inputs()[0]
                .dtype()
                .tensor_shape()
                .expect("a tensor input")[1] as usize;
            let rows = (strips.strip_rows(side) + 2 * strips.context).min(side);
            let zeros = vec![0f32; channels * rows * side];
            run_tail(tail, &zeros, (side, rows), native as usize, 0, rows).unwrap();
            let added = status_kib("VmHWM:").saturating_sub(before);
            println!(
                "{{\"model\":\"{model}\",\"tail_rows\":{rows},\"tail_bytes_per_px\":{:.1}}}",
                added as f64 * 1024.0 / (rows * side) as f64
            );
            added
        }
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        sr.run(&rgb.data, (side, side), native as usize, &mut |out| {
            std::hint::black_box(out.len());
        })
        .unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    let added = status_kib("VmHWM:").saturating_sub(before) - tail_kib;
    // The first run also builds ONNX Runtime's kernels and arena: report the best of the rest.
    let best = times.iter().skip(1).copied().fold(f64::INFINITY, f64::min);
    let best = if best.is_finite() { best } else { times[0] };
    println!(
        "{{\"model\":\"{model}\",\"scale\":{scale},\"tile\":{tile},\"side\":{side},\"seconds\":{best:.4},\
         \"first_seconds\":{:.4},\"added_kib\":{added},\"bytes_per_px\":{:.1}}}",
        times[0],
        added as f64 * 1024.0 / (side * side) as f64
    );
}
