//! Order statistics of a sample (medians are what the report quotes: robust to the odd
//! scheduling hiccup on a shared 2-core machine).

use serde::Serialize;

/// Summary of a sample of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for an even size).
    pub median: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples`; `None` when empty or when a value is not a number.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let rank = |p: f64| {
            let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            sorted[index]
        };
        Some(Self {
            n,
            min: sorted[0],
            median,
            p90: rank(0.90),
            p99: rank(0.99),
            max: sorted[n - 1],
            mean: sorted.iter().sum::<f64>() / n as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_sample_is_the_middle_mean() {
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (4, 1.0, 2.5, 4.0));
        assert_eq!(s.mean, 2.5);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sample: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&sample).unwrap();
        assert_eq!((s.median, s.p90, s.p99), (50.5, 90.0, 99.0));
    }

    #[test]
    fn an_empty_or_nan_sample_has_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
    }
}
