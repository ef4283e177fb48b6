//! The load-testing mode's flags (each with an `UPRES_*` environment variable). With none of
//! them set the server behaves exactly as without the mode.

use std::path::PathBuf;

use crate::config_file::parse_config;
use crate::emulation::{Cost, Latency, RateLimitHeaders, Rule};
use crate::error::Invalid;

#[derive(Debug, Clone, clap::Args)]
pub struct EmulationArgs {
    /// Emulated processing time of each v1 call and v2 job: off, fixed (--latency-median
    /// seconds), uniform (--latency-min to --latency-max) or lognormal (--latency-median,
    /// --latency-sigma, capped at --latency-max). Real work counts towards it.
    #[arg(long, env = "UPRES_LATENCY", value_enum, default_value_t = LatencyKind::Off)]
    pub latency: LatencyKind,
    /// Median (lognormal) or value (fixed) of the latency, in seconds. The default is the
    /// hosted service's quoted time per call.
    #[arg(long, env = "UPRES_LATENCY_MEDIAN", default_value_t = 12.04)]
    pub latency_median: f64,
    /// Sigma of the lognormal latency (of its logarithm).
    #[arg(long, env = "UPRES_LATENCY_SIGMA", default_value_t = 0.3)]
    pub latency_sigma: f64,
    /// Lower bound of the uniform latency, in seconds.
    #[arg(long, env = "UPRES_LATENCY_MIN", default_value_t = 0.0)]
    pub latency_min: f64,
    /// Upper bound of the uniform latency and cap of the lognormal one, in seconds.
    #[arg(long, env = "UPRES_LATENCY_MAX", default_value_t = 60.0)]
    pub latency_max: f64,
    /// Factor applied to every latency sample (e.g. 0.01 to run a 12 s service in CI).
    #[arg(long, env = "UPRES_LATENCY_SCALE", default_value_t = 1.0)]
    pub latency_scale: f64,
    /// Emulated capacity: jobs PROCESSING at once (each may wait out its latency without an
    /// engine worker); beyond it jobs wait QUEUED. Default: --workers, or 8 when --latency is on.
    #[arg(long, env = "UPRES_CAPACITY", value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: Option<u32>,
    /// Keys with plans (TOML or JSON): per key a name, a plan (free = 5 rpm, pro = 50 rpm) or
    /// rpm and burst, credits, and the model slugs it may call. See docs/src/load-testing/overview.md.
    #[arg(long, env = "UPRES_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// Credits a call costs (keys with a balance only).
    #[arg(long, env = "UPRES_COST_PER_CALL", default_value_t = 1.0)]
    pub cost_per_call: f64,
    /// Credits per second of emulated latency, added to --cost-per-call.
    #[arg(long, env = "UPRES_COST_PER_SECOND", default_value_t = 0.0)]
    pub cost_per_second: f64,
    /// Rate-limit headers on calls from rate-limited keys: segmind (x-rate-limit-remaining,
    /// x-rate-limit-reset-at-utc), ietf (RateLimit-Limit/-Remaining/-Reset), x-ratelimit
    /// (X-RateLimit-Limit/-Remaining/-Reset as Unix time) or none. Retry-After is always sent.
    #[arg(long, env = "UPRES_RATE_LIMIT_HEADERS", value_enum, default_value_t = RateLimitHeaders::Segmind)]
    pub rate_limit_headers: RateLimitHeaders,
    /// A fault rule, ROUTE[@KEY_NAME]:PROBABILITY:OUTCOME, e.g. `v1:0.1:502`,
    /// `submit:0.05:fail=GPU out of memory`, `status:0.2:delay=3`. Routes: v1, submit, status,
    /// result, output, any. Repeat the flag; in the variable separate rules with `;`.
    #[arg(long = "fault", env = "UPRES_FAULTS", value_delimiter = ';')]
    pub faults: Vec<String>,
    /// File of fault rules (TOML `[[rules]]` or JSON `{"rules": [...]}`), after --fault ones.
    #[arg(long, env = "UPRES_FAULTS_FILE")]
    pub faults_file: Option<PathBuf>,
    /// Seed of every emulated decision (random when unset; always logged and shown by the
    /// admin API): the same seed gives a sequential client the same faults and latencies.
    #[arg(long, env = "UPRES_CHAOS_SEED")]
    pub chaos_seed: Option<u64>,
    /// Let a request inject its own fault with an `x-upres-inject: OUTCOME` header (502,
    /// fail=MESSAGE, delay=SECONDS). Off by default.
    #[arg(long, env = "UPRES_ALLOW_FAULT_HEADERS")]
    pub allow_fault_headers: bool,
    /// Key of the admin API (/admin/...: rules, latency, credits, stats, reset), sent as
    /// `x-admin-key`. Without it the admin API does not exist.
    #[arg(long, env = "UPRES_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyKind {
    Off,
    Fixed,
    Uniform,
    Lognormal,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<Rule>,
}

impl EmulationArgs {
    pub fn latency(&self) -> Result<Latency, Invalid> {
        let scale = self.latency_scale;
        match self.latency {
            LatencyKind::Off => Latency::Off,
            LatencyKind::Fixed => Latency::Fixed {
                seconds: self.latency_median,
                scale,
            },
            LatencyKind::Uniform => Latency::Uniform {
                min: self.latency_min,
                max: self.latency_max,
                scale,
            },
            LatencyKind::Lognormal => Latency::Lognormal {
                median: self.latency_median,
                sigma: self.latency_sigma,
                max: self.latency_max,
                scale,
            },
        }
        .validate()
    }

    /// Rules from --fault, then from --faults-file.
    pub fn rules(&self) -> Result<Vec<Rule>, Invalid> {
        let mut rules = self
            .faults
            .iter()
            .filter(|spec| !spec.trim().is_empty())
            .map(|spec| Rule::parse_flag(spec.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(path) = &self.faults_file {
            rules.extend(parse_config::<RulesFile>(path)?.rules);
        }
        Ok(rules)
    }

    pub fn cost(&self) -> Result<Cost, Invalid> {
        let cost = Cost {
            per_call: self.cost_per_call,
            per_second: self.cost_per_second,
        };
        if [cost.per_call, cost.per_second]
            .iter()
            .all(|c| c.is_finite() && *c >= 0.0)
        {
            Ok(cost)
        } else {
            Err("--cost-per-call and --cost-per-second must be numbers of at least 0".into())
        }
    }

    /// Virtual workers: --capacity, else --workers (8 when latency is emulated).
    pub fn capacity(&self, workers: u32) -> u32 {
        self.capacity
            .unwrap_or(if self.latency == LatencyKind::Off {
                workers
            } else {
                workers.max(8)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        emulation: EmulationArgs,
    }

    fn parse(flags: &[&str]) -> EmulationArgs {
        Cli::parse_from(std::iter::once("upres").chain(flags.iter().copied())).emulation
    }

    #[test]
    fn rules_from_flags_then_file_and_latency_from_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("faults.toml");
        std::fs::write(
            &file,
            "[[rules]]\nname = 'slow-polls'\nroute = 'status'\nprobability = 0.5\ndelay = 2\n",
        )
        .unwrap();
        let args = parse(&[
            "--fault",
            "v1:0.1:502",
            "--faults-file",
            file.to_str().unwrap(),
            "--latency",
            "lognormal",
            "--latency-scale",
            "0.01",
        ]);
        let rules = args.rules().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].name, "slow-polls");
        assert_eq!(
            args.latency().unwrap(),
            Latency::Lognormal {
                median: 12.04,
                sigma: 0.3,
                max: 60.0,
                scale: 0.01
            }
        );
        assert_eq!((args.capacity(1), parse(&[]).capacity(1)), (8, 1));
        assert!(parse(&["--fault", "v9:0.1:502"]).rules().is_err());
        assert!(parse(&[
            "--latency",
            "uniform",
            "--latency-min",
            "9",
            "--latency-max",
            "1"
        ])
        .latency()
        .is_err());
        assert!(parse(&["--cost-per-call=-1"]).cost().is_err());
    }
}
