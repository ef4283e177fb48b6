//! Deterministic draws. Every decision is a pure function of (seed, key name, route, that key's
//! request number on that route, which draw), so a sequential client sees the same faults and
//! latencies on every run with the same seed, whatever other clients do meanwhile.

use super::route::Route;

/// The draws of one request.
#[derive(Debug, Clone, Copy)]
pub struct Draws(u64);

impl Draws {
    pub fn new(seed: u64, key: &str, route: Route, number: u64) -> Self {
        let mut state = mix(seed ^ fnv1a(key.as_bytes()));
        state = mix(state ^ fnv1a(route.name().as_bytes()));
        // Numbers step by the golden gamma, as SplitMix64's own counter does.
        Draws(mix(state.wrapping_add(number.wrapping_mul(GAMMA))))
    }

    /// A uniform number in [0, 1), one per `stream`: the same stream gives the same number.
    pub fn uniform(self, stream: u64) -> f64 {
        let bits = mix(mix(self.0 ^ stream));
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The stream of a named draw (a fault rule's own, independent of the other rules).
pub fn stream(name: &str) -> u64 {
    fnv1a(name.as_bytes())
}

/// 64-bit FNV-1a: a stable hash (std's hashers are seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's step and finaliser: every input bit affects every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_draws_and_any_change_changes_them() {
        let draw = |seed, key, route, n| Draws::new(seed, key, route, n).uniform(stream("r"));
        let base = draw(7, "alice", Route::V1, 3);
        assert_eq!(base, draw(7, "alice", Route::V1, 3));
        for other in [
            draw(8, "alice", Route::V1, 3),
            draw(7, "bob", Route::V1, 3),
            draw(7, "alice", Route::Submit, 3),
            draw(7, "alice", Route::V1, 4),
            Draws::new(7, "alice", Route::V1, 3).uniform(stream("s")),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn draws_are_uniform() {
        // 10,000 draws in 10 bins: each bin within 4 sigma of 1,000 (sigma = 30).
        let mut bins = [0u32; 10];
        for n in 0..10_000 {
            let u = Draws::new(42, "k", Route::V1, n).uniform(0);
            assert!((0.0..1.0).contains(&u));
            bins[(u * 10.0) as usize] += 1;
        }
        assert!(bins.iter().all(|&b| b.abs_diff(1000) <= 120), "{bins:?}");
    }
}
