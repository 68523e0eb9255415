//! Pearson correlation from sufficient statistics.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{normal_quantile, Interval, Moments, StudyError, LEVEL};

/// The sufficient statistics of a pair of columns over the records where both are present:
/// each column's moments and `Σ x y`, in stored units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairMoments {
    /// Moments of `x` (over the pairs).
    pub x: Moments,
    /// Moments of `y` (over the pairs; the same `n`).
    pub y: Moments,
    /// `Σ x y`.
    pub sum_products: i128,
}

impl PairMoments {
    /// The moments of a list of stored pairs.
    pub fn of(pairs: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let (xs, ys): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
        PairMoments {
            sum_products: xs
                .iter()
                .zip(&ys)
                .map(|(&x, &y)| i128::from(x) * i128::from(y))
                .sum(),
            x: Moments::of(xs),
            y: Moments::of(ys),
        }
    }
}

/// Pearson's r with the two-sided test of r = 0 (Student t, n − 2 df) and the 95% interval by
/// Fisher's z transform: scipy's `pearsonr` and its `confidence_interval`.
///
/// Assumes independent pairs; the test and the interval assume bivariate normality. r is
/// unchanged by each column's offset and scale, so stored units serve.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Pearson {
    /// Pairs.
    pub n: u64,
    /// The correlation coefficient.
    pub r: f64,
    /// Two-sided p-value of r = 0.
    pub p: f64,
    /// 95% interval of r.
    pub ci: Interval,
}

impl Pearson {
    /// The coefficient and its test.
    pub fn test(m: &PairMoments) -> Result<Self, StudyError> {
        let n = m.x.n;
        if n < 4 || m.y.n != n {
            return Err(StudyError::TooFew { n, need: 4 });
        }
        let nn = i128::from(n);
        let cross = nn
            .checked_mul(m.sum_products)
            .zip(m.x.sum.checked_mul(m.y.sum))
            .and_then(|(a, b)| a.checked_sub(b))
            .ok_or(StudyError::Overflow)?;
        let (sx, sy) = (m.x.centred()?, m.y.centred()?);
        if sx == 0 || sy == 0 {
            return Err(StudyError::ZeroVariance);
        }
        let r = (cross as f64 / ((sx as f64).sqrt() * (sy as f64).sqrt())).clamp(-1.0, 1.0);
        let df = n as f64 - 2.0;
        let p = if r.abs() == 1.0 {
            0.0
        } else {
            let t = r * (df / (1.0 - r * r)).sqrt();
            (2.0 * StudentsT::new(0.0, 1.0, df)?.sf(t.abs())).min(1.0)
        };
        let (z, se) = (r.atanh(), 1.0 / (n as f64 - 3.0).sqrt());
        let q = normal_quantile(0.5 + LEVEL / 2.0);
        Ok(Pearson {
            n,
            r,
            p,
            ci: Interval {
                low: (z - q * se).tanh(),
                high: (z + q * se).tanh(),
            },
        })
    }
}
