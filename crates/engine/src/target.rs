//! Any output size from a model's scales (the command line's `--scale 3`, `--width`,
//! `--height`): the chain of the model's scales that reaches the target with the least
//! upscaling (x3 and x4 are one x4 run, x8 an x4 then an x2, x16 two x4 runs), then one Lanczos3
//! resample to the exact size. The HTTP APIs keep their 2 and 4.

use crate::error::{EngineError, Result};
use crate::registry::ModelInfo;

/// The largest factor a target may ask for.
pub const MAX_FACTOR: f64 = 16.0;

/// The model's scales to run one after another to reach `factor` (at least one run, so a
/// factor of 1 is an upscale and a resample back: the model's restoration at the same size).
pub fn chain(model: &ModelInfo, factor: f64) -> Result<Vec<u32>> {
    if !(factor.is_finite() && factor > 0.0 && factor <= MAX_FACTOR) {
        return Err(EngineError::InvalidTarget(format!(
            "a factor of {factor} (the largest is {MAX_FACTOR})"
        )));
    }
    let scales: Vec<u32> = [2, 4]
        .into_iter()
        .filter(|&s| model.plan(s).is_ok())
        .collect();
    let mut best: Option<Vec<u32>> = None;
    let mut frontier: Vec<Vec<u32>> = scales.iter().map(|&s| vec![s]).collect();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for steps in frontier {
            let product: u32 = steps.iter().product();
            if f64::from(product) + 1e-9 >= factor {
                let better = best.as_ref().is_none_or(|b| {
                    let best_product: u32 = b.iter().product();
                    (product, steps.len()) < (best_product, b.len())
                });
                if better {
                    best = Some(steps);
                }
            } else if f64::from(product) < MAX_FACTOR {
                next.extend(scales.iter().map(|&s| [steps.as_slice(), &[s]].concat()));
            }
        }
        frontier = next;
    }
    best.ok_or_else(|| EngineError::InvalidTarget(format!("a factor of {factor}")))
}

/// The output size for `factor` of a `(width, height)` image, rounded, at least 1 x 1.
pub fn scaled((width, height): (u32, u32), factor: f64) -> (u32, u32) {
    let side = |n: u32| ((f64::from(n) * factor).round() as u32).max(1);
    (side(width), side(height))
}

/// The size that fits inside `width` x `height` (either may be absent) with the aspect kept,
/// and its factor.
pub fn fit(
    (w, h): (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
) -> Result<((u32, u32), f64)> {
    let factor = match (width, height) {
        (Some(tw), Some(th)) => (f64::from(tw) / f64::from(w)).min(f64::from(th) / f64::from(h)),
        (Some(tw), None) => f64::from(tw) / f64::from(w),
        (None, Some(th)) => f64::from(th) / f64::from(h),
        (None, None) => return Err(EngineError::InvalidTarget("no width or height".to_string())),
    };
    let size = match (width, height) {
        (Some(tw), None) => (tw, ((f64::from(h) * factor).round() as u32).max(1)),
        (None, Some(th)) => (((f64::from(w) * factor).round() as u32).max(1), th),
        _ => scaled((w, h), factor),
    };
    Ok((size, factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(native_scales: &[u32]) -> ModelInfo {
        ModelInfo {
            id: "m".into(),
            native_scales: native_scales.to_vec(),
            tiling: Default::default(),
            catalog: None,
        }
    }

    #[test]
    fn the_chain_upscales_least_then_runs_least() {
        let both = model(&[2, 4]);
        for (factor, expected) in [
            (1.0, vec![2]),
            (1.5, vec![2]),
            (2.0, vec![2]),
            (3.0, vec![4]),
            (4.0, vec![4]),
            (5.0, vec![4, 2]),
            (8.0, vec![4, 2]),
            (12.0, vec![4, 4]),
            (16.0, vec![4, 4]),
        ] {
            let chain = chain(&both, factor).unwrap();
            assert_eq!(
                chain.iter().product::<u32>(),
                expected.iter().product::<u32>(),
                "{factor}"
            );
            assert_eq!(chain.len(), expected.len(), "{factor}");
        }
        assert_eq!(chain(&model(&[2]), 3.0).unwrap(), vec![2, 2]);
        assert_eq!(chain(&model(&[2]), 16.0).unwrap(), vec![2, 2, 2, 2]);
        // x4-only: x2 is x4 and a 2x2 area downscale, so a factor of 2 is one x2 request.
        assert_eq!(chain(&model(&[4]), 2.0).unwrap(), vec![2]);
        assert_eq!(chain(&model(&[4]), 3.0).unwrap(), vec![4]);
        for bad in [0.0, -1.0, 16.5, f64::NAN, f64::INFINITY] {
            assert!(chain(&both, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_keep_the_aspect() {
        assert_eq!(scaled((24, 40), 3.0), (72, 120));
        assert_eq!(scaled((3, 1), 1.5), (5, 2));
        assert_eq!(fit((100, 50), Some(300), None).unwrap(), ((300, 150), 3.0));
        assert_eq!(fit((100, 50), None, Some(100)).unwrap(), ((200, 100), 2.0));
        assert_eq!(
            fit((100, 50), Some(300), Some(100)).unwrap(),
            ((200, 100), 2.0)
        );
        assert!(fit((100, 50), None, None).is_err());
    }
}
