//! Latency distributions: what a stub's normal latency and a `latency` fault draw from.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution as _, LogNormal, Normal};
use serde::{Deserialize, Serialize};

/// The standard normal quantile at 0.99: a log-normal's p99 sits this many
/// sigmas above its median (in log space).
const Z_99: f64 = 2.326_347_874_040_840_8;

/// A latency distribution, written in files and JSON as one key naming it:
///
/// ```toml
/// latency = { fixed = "8s" }
/// latency = { uniform = { min = "100ms", max = "300ms" } }
/// latency = { normal = { mean = "200ms", stddev = "20ms" } }
/// latency = { log_normal = { p50 = "200ms", p99 = "2s" } }
/// ```
///
/// Samples never go below zero: a normal draw under zero becomes zero.
///
/// ```
/// use std::time::Duration;
/// use fault_server::Distribution;
/// use rand::SeedableRng;
///
/// let d = Distribution::LogNormal { p50: Duration::from_millis(200), p99: Duration::from_secs(2) };
/// d.validate().unwrap();
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
/// let sample = d.sample(&mut rng);
/// assert!(sample > Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Always the same delay.
    Fixed(#[serde(with = "humantime_serde")] Duration),
    /// Evenly spread between `min` and `max`.
    Uniform {
        /// Shortest delay.
        #[serde(with = "humantime_serde")]
        min: Duration,
        /// Longest delay.
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    /// Gaussian around `mean`, cut off at zero.
    Normal {
        /// Centre of the bell.
        #[serde(with = "humantime_serde")]
        mean: Duration,
        /// Spread of the bell.
        #[serde(with = "humantime_serde")]
        stddev: Duration,
    },
    /// Log-normal with the given median and 99th percentile: the long tail of real services.
    LogNormal {
        /// Median delay.
        #[serde(with = "humantime_serde")]
        p50: Duration,
        /// 99th-percentile delay; at least `p50`.
        #[serde(with = "humantime_serde")]
        p99: Duration,
    },
}

impl Distribution {
    /// Checks the parameters, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let durations: &[(&str, Duration)] = match *self {
            Distribution::Fixed(d) => &[("fixed", d)],
            Distribution::Uniform { min, max } => &[("uniform.min", min), ("uniform.max", max)],
            Distribution::Normal { mean, stddev } => {
                &[("normal.mean", mean), ("normal.stddev", stddev)]
            }
            Distribution::LogNormal { p50, p99 } => {
                &[("log_normal.p50", p50), ("log_normal.p99", p99)]
            }
        };
        for (key, duration) in durations {
            crate::fault::check_duration(key, *duration)?;
        }
        match *self {
            Distribution::Fixed(_) | Distribution::Normal { .. } => Ok(()),
            Distribution::Uniform { min, max } if min > max => Err(format!(
                "uniform: min ({}) is above max ({})",
                humantime::format_duration(min),
                humantime::format_duration(max)
            )),
            Distribution::Uniform { .. } => Ok(()),
            Distribution::LogNormal { p50, .. } if p50.is_zero() => {
                Err("log_normal: p50 must be above zero".to_owned())
            }
            Distribution::LogNormal { p50, p99 } if p99 < p50 => {
                Err(format!("log_normal: p99 ({p99:?}) is below p50 ({p50:?})"))
            }
            Distribution::LogNormal { .. } => Ok(()),
        }
    }

    /// Draws one delay. Call [`Distribution::validate`] first: invalid parameters give
    /// a degenerate but harmless sample (never a panic).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let nanos = match *self {
            Distribution::Fixed(d) => return d,
            Distribution::Uniform { min, max } if min >= max => return min,
            Distribution::Uniform { min, max } => {
                return rng.gen_range(min..=max);
            }
            Distribution::Normal { mean, stddev } => match Normal::new(secs(mean), secs(stddev)) {
                Ok(normal) => normal.sample(rng),
                Err(_) => secs(mean),
            },
            Distribution::LogNormal { p50, p99 } => {
                let mu = secs(p50).ln();
                let sigma = ((secs(p99).ln() - mu) / Z_99).max(0.0);
                match LogNormal::new(mu, sigma) {
                    Ok(log_normal) => log_normal.sample(rng),
                    Err(_) => secs(p50),
                }
            }
        };
        // A long tail never draws past the longest duration a fault may give.
        Duration::try_from_secs_f64(nanos.max(0.0))
            .unwrap_or(Duration::MAX)
            .min(crate::fault::MAX_DURATION)
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn quantile(mut samples: Vec<Duration>, q: f64) -> Duration {
        samples.sort();
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index]
    }

    #[test]
    fn log_normal_hits_its_configured_p50_and_p99_within_five_percent() {
        let d = Distribution::LogNormal {
            p50: Duration::from_millis(200),
            p99: Duration::from_secs(2),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let samples: Vec<_> = (0..200_000).map(|_| d.sample(&mut rng)).collect();
        let p50 = quantile(samples.clone(), 0.50).as_secs_f64();
        let p99 = quantile(samples, 0.99).as_secs_f64();
        assert!((p50 / 0.2 - 1.0).abs() < 0.05, "p50 was {p50}");
        assert!((p99 / 2.0 - 1.0).abs() < 0.05, "p99 was {p99}");
    }

    #[test]
    fn uniform_stays_inside_its_bounds() {
        let d = Distribution::Uniform {
            min: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..10_000 {
            let s = d.sample(&mut rng);
            assert!(s >= Duration::from_millis(100) && s <= Duration::from_millis(300));
        }
    }

    #[test]
    fn normal_never_goes_below_zero() {
        let d = Distribution::Normal {
            mean: Duration::from_millis(1),
            stddev: Duration::from_millis(10),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let samples: Vec<_> = (0..10_000).map(|_| d.sample(&mut rng)).collect();
        assert!(samples.iter().any(|s| s.is_zero()));
    }

    #[test]
    fn invalid_parameters_are_named() {
        let bad = Distribution::LogNormal {
            p50: Duration::from_secs(2),
            p99: Duration::from_secs(1),
        };
        assert!(bad.validate().unwrap_err().contains("p99"));
        let bad = Distribution::Uniform {
            min: Duration::from_secs(2),
            max: Duration::from_secs(1),
        };
        assert!(bad.validate().unwrap_err().contains("min"));
    }

    #[test]
    fn reads_each_form_from_toml() {
        #[derive(Deserialize)]
        struct Holder {
            latency: Distribution,
        }
        let parse = |s: &str| toml::from_str::<Holder>(s).unwrap().latency;
        assert_eq!(
            parse(r#"latency = { fixed = "8s" }"#),
            Distribution::Fixed(Duration::from_secs(8))
        );
        assert_eq!(
            parse(r#"latency = { log_normal = { p50 = "200ms", p99 = "2s" } }"#),
            Distribution::LogNormal {
                p50: Duration::from_millis(200),
                p99: Duration::from_secs(2)
            }
        );
    }
}
