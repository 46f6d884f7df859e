//! Statistics over timing samples, in one place: every sample is kept; median, mean, min, max,
//! spread (median absolute deviation) and outliers by modified z-score (Iglewicz & Hoaglin:
//! M = 0.6745·(x − median) / MAD, outlier when |M| > 3.5), as hyperfine does.

use serde::Serialize;

/// Summary of samples in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub samples_ms: Vec<f64>,
    pub median_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Median absolute deviation, ms.
    pub mad_ms: f64,
    /// Indices of samples whose modified z-score exceeds 3.5.
    pub outliers: Vec<usize>,
}

/// The median of a non-empty slice (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The `p` quantile (0 to 1) by linear interpolation between the order statistics (Hyndman and
/// Fan's type 7, numpy's default): of [1, 2, 3, 4], 0.1 gives 1.3. NaN for no values.
pub fn quantile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let at = p.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (below, above) = (at.floor() as usize, at.ceil() as usize);
    s[below] + (s[above] - s[below]) * (at - below as f64)
}

/// Modified z-scores; all zero when the MAD is zero.
pub fn modified_z_scores(v: &[f64]) -> Vec<f64> {
    let m = median(v);
    let mad = median(&v.iter().map(|x| (x - m).abs()).collect::<Vec<_>>());
    v.iter().map(|x| if mad > 0.0 { 0.6745 * (x - m) / mad } else { 0.0 }).collect()
}

impl Summary {
    /// Summarises the samples (ms); `None` when there are none.
    pub fn of(samples_ms: &[f64]) -> Option<Summary> {
        if samples_ms.is_empty() {
            return None;
        }
        let m = median(samples_ms);
        let mad = median(&samples_ms.iter().map(|x| (x - m).abs()).collect::<Vec<_>>());
        let outliers =
            modified_z_scores(samples_ms).iter().enumerate().filter(|(_, z)| z.abs() > 3.5).map(|(i, _)| i).collect();
        Some(Summary {
            samples_ms: samples_ms.to_vec(),
            median_ms: m,
            mean_ms: samples_ms.iter().sum::<f64>() / samples_ms.len() as f64,
            min_ms: samples_ms.iter().cloned().fold(f64::INFINITY, f64::min),
            max_ms: samples_ms.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            mad_ms: mad,
            outliers,
        })
    }

    /// Spread as a fraction of the median (MAD / median).
    pub fn relative_spread(&self) -> f64 {
        if self.median_ms > 0.0 {
            self.mad_ms / self.median_ms
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert!((quantile(&v, 0.1) - 1.3).abs() < 1e-12);
        assert_eq!((quantile(&v, 0.0), quantile(&v, 0.5), quantile(&v, 1.0)), (1.0, 2.5, 4.0));
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn median_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summary_keeps_every_sample_and_flags_the_outlier() {
        let s = Summary::of(&[1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 9.0]).unwrap();
        assert_eq!(s.samples_ms.len(), 7);
        assert_eq!(s.median_ms, 1.0);
        assert_eq!(s.outliers, vec![6]);
        assert_eq!(s.max_ms, 9.0);
        assert!((s.mad_ms - 0.05).abs() < 1e-12);
        assert!((s.relative_spread() - 0.05).abs() < 1e-12);
    }

    #[test]
    fn identical_samples_have_no_outliers() {
        let s = Summary::of(&[2.0; 5]).unwrap();
        assert!(s.outliers.is_empty());
        assert_eq!(s.mad_ms, 0.0);
        assert!(Summary::of(&[]).is_none());
    }
}
