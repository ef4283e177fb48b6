//! The emulated processing time of a job: fixed, uniform or lognormal (as WireMock's delays),
//! times a scale factor (e.g. 0.01 in CI), capped at `max`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::chance::Draws;
use crate::error::Invalid;

/// Streams of the latency draws (fault rules use the hashes of their names).
const FIRST: u64 = u64::MAX;
const SECOND: u64 = u64::MAX - 1;

/// A latency model, as flags build it and the admin API shows and replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "model", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    /// No emulated latency: jobs take what the engine takes.
    Off,
    Fixed {
        seconds: f64,
        #[serde(default = "one")]
        scale: f64,
    },
    Uniform {
        min: f64,
        max: f64,
        #[serde(default = "one")]
        scale: f64,
    },
    /// median * exp(sigma * Z), Z standard normal, capped at `max` (before scaling).
    Lognormal {
        median: f64,
        sigma: f64,
        max: f64,
        #[serde(default = "one")]
        scale: f64,
    },
}

fn one() -> f64 {
    1.0
}

impl Latency {
    /// Checks every number is finite and in range.
    pub fn validate(self) -> Result<Self, Invalid> {
        let numbers = match &self {
            Latency::Off => vec![],
            Latency::Fixed { seconds, scale } => vec![*seconds, *scale],
            Latency::Uniform { min, max, scale } => {
                if min > max {
                    return Err(Invalid(format!(
                        "uniform latency: min {min} is above max {max}"
                    )));
                }
                vec![*min, *max, *scale]
            }
            Latency::Lognormal {
                median,
                sigma,
                max,
                scale,
            } => vec![*median, *sigma, *max, *scale],
        };
        if numbers
            .iter()
            .any(|v| !v.is_finite() || *v < 0.0 || *v > 1e6)
        {
            return Err("latency values must be numbers of seconds between 0 and 1e6".into());
        }
        Ok(self)
    }

    /// The target processing time for a request's draws (None when off).
    pub fn sample(&self, draws: Draws) -> Option<Duration> {
        let seconds = match *self {
            Latency::Off => return None,
            Latency::Fixed { seconds, scale } => seconds * scale,
            Latency::Uniform { min, max, scale } => {
                (min + (max - min) * draws.uniform(FIRST)) * scale
            }
            Latency::Lognormal {
                median,
                sigma,
                max,
                scale,
            } => (median * (sigma * standard_normal(draws)).exp()).min(max) * scale,
        };
        Some(Duration::from_secs_f64(seconds))
    }
}

/// A standard normal number from two uniform draws (Box-Muller).
fn standard_normal(draws: Draws) -> f64 {
    let u1 = 1.0 - draws.uniform(FIRST); // in (0, 1]: ln is finite
    let u2 = draws.uniform(SECOND);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulation::route::Route;

    fn samples(latency: &Latency) -> Vec<f64> {
        let mut all: Vec<f64> = (0..10_000)
            .map(|n| {
                latency
                    .sample(Draws::new(2026, "load", Route::Submit, n))
                    .unwrap()
                    .as_secs_f64()
            })
            .collect();
        all.sort_by(f64::total_cmp);
        all
    }

    fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual / expected - 1.0).abs() <= tolerance
    }

    #[test]
    fn lognormal_median_and_p99_match_and_nothing_exceeds_max() {
        let (median, sigma) = (12.04, 0.3);
        let latency = Latency::Lognormal {
            median,
            sigma,
            max: 60.0,
            scale: 1.0,
        };
        let all = samples(&latency);
        // The normal quantile at 0.99 is 2.3263.
        let p99 = median * (sigma * 2.3263f64).exp();
        assert!(within(all[5_000], median, 0.02), "median {}", all[5_000]);
        assert!(within(all[9_900], p99, 0.03), "p99 {} vs {p99}", all[9_900]);

        // P(sample > 20 s) = P(Z > ln(20 / 12.04) / 0.3 = 1.69) = 4.5 %.
        let capped = samples(&Latency::Lognormal {
            median,
            sigma,
            max: 20.0,
            scale: 0.5,
        });
        assert_eq!(*capped.last().unwrap(), 10.0, "max 20 s, scaled by 0.5");
        assert!(capped[9_000] < 10.0, "the cap bites only in the tail");
    }

    #[test]
    fn uniform_and_fixed_stay_in_range() {
        let all = samples(&Latency::Uniform {
            min: 1.0,
            max: 3.0,
            scale: 1.0,
        });
        assert!(all[0] >= 1.0 && all[9_999] < 3.0);
        assert!(within(all[5_000], 2.0, 0.02) && within(all[9_900], 2.98, 0.01));
        let fixed = samples(&Latency::Fixed {
            seconds: 2.0,
            scale: 0.25,
        });
        assert!(fixed.iter().all(|&s| s == 0.5));
        assert_eq!(Latency::Off.sample(Draws::new(0, "", Route::V1, 0)), None);
    }

    #[test]
    fn bad_values_are_refused_and_json_round_trips() {
        assert!(Latency::Uniform {
            min: 3.0,
            max: 1.0,
            scale: 1.0
        }
        .validate()
        .is_err());
        assert!(Latency::Fixed {
            seconds: f64::NAN,
            scale: 1.0
        }
        .validate()
        .is_err());
        assert!(Latency::Fixed {
            seconds: -1.0,
            scale: 1.0
        }
        .validate()
        .is_err());
        let parsed: Latency =
            serde_json::from_str(r#"{"model":"lognormal","median":12.04,"sigma":0.3,"max":60}"#)
                .unwrap();
        assert_eq!(
            parsed,
            Latency::Lognormal {
                median: 12.04,
                sigma: 0.3,
                max: 60.0,
                scale: 1.0
            }
        );
        assert!(serde_json::from_str::<Latency>(r#"{"model":"fixed","secs":1}"#).is_err());
    }
}
