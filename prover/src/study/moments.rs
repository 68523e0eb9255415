//! Sufficient statistics of one cell: what a proof releases, in exact integers.

use std::ops::Add;

use num_bigint::BigUint;

use super::StudyError;
use crate::{query::QueryResult, schema::Column};

/// The sufficient statistics of one value column in one cell (an arm, a stratum, a site):
/// the non-missing count `n`, `Σ x` and `Σ x²`, exact, in the column's stored integer units
/// (`round(x · 10^scale) − round(min · 10^scale)`, what the circuits sum).
///
/// Every estimate is computed from these integers with the cancellation-prone parts exact
/// (`n Σx² − (Σx)²`, `Σx₁ n₂ − Σx₂ n₁` in 128-bit integers), so the only rounding is the final
/// division: means, variances and tests agree with a two-pass computation over the raw values
/// to ~1e-15 relative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moments {
    /// Non-missing values.
    pub n: u64,
    /// `Σ x` (stored units).
    pub sum: i128,
    /// `Σ x²` (stored units²).
    pub sum_squares: i128,
}

impl Moments {
    /// The moments of a list of stored values.
    pub fn of(values: impl IntoIterator<Item = i64>) -> Self {
        values.into_iter().fold(Self::default(), |m, x| Self {
            n: m.n + 1,
            sum: m.sum + i128::from(x),
            sum_squares: m.sum_squares + i128::from(x) * i128::from(x),
        })
    }

    /// The moments a released answer carries: `n` is its non-missing count (the count itself
    /// for a statistic that is never missing), the sums are the proof's. A suppressed answer
    /// has none (`None`): its zeros are not data.
    pub fn of_released(result: &QueryResult, nonmissing: u64) -> Result<Option<Self>, StudyError> {
        if result.suppressed {
            return Ok(None);
        }
        Ok(Some(Self {
            n: nonmissing,
            sum: to_i128(&result.sum)?,
            sum_squares: to_i128(&result.sum_squares)?,
        }))
    }

    /// The mean in stored units (`None` without values).
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }

    /// `n Σx² − (Σx)²`, exact: `n (n − 1)` times the sample variance.
    pub(crate) fn centred(&self) -> Result<i128, StudyError> {
        let n = i128::from(self.n);
        n.checked_mul(self.sum_squares)
            .zip(self.sum.checked_mul(self.sum))
            .and_then(|(a, b)| a.checked_sub(b))
            .ok_or(StudyError::Overflow)
    }

    /// The sample variance (`ddof = 1`) in stored units², from at least two values.
    pub fn variance(&self) -> Result<f64, StudyError> {
        if self.n < 2 {
            return Err(StudyError::TooFew { n: self.n, need: 2 });
        }
        let centred = self.centred()?;
        if centred < 0 {
            return Err(StudyError::InconsistentMoments { n: self.n });
        }
        let n = self.n as f64;
        Ok(centred as f64 / (n * (n - 1.0)))
    }
}

impl Add for Moments {
    type Output = Moments;

    /// Pooling: the moments of the union of two disjoint cells (two sites' answers).
    fn add(self, other: Moments) -> Moments {
        Moments {
            n: self.n + other.n,
            sum: self.sum + other.sum,
            sum_squares: self.sum_squares + other.sum_squares,
        }
    }
}

/// How stored units read in natural units: `x = (stored + offset) / 10^scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Units {
    /// Decimal places of the stored integers.
    pub scale: u32,
    /// The column's `min` in scaled units (stored values are `x − min`).
    pub offset: i64,
}

impl Units {
    /// Stored integers that are the natural values (scale 0, no offset).
    pub const INTEGER: Units = Units {
        scale: 0,
        offset: 0,
    };

    /// The units of a schema column.
    pub fn of(column: &Column) -> Self {
        Units {
            scale: column.scale(),
            offset: column.min_stored(),
        }
    }

    /// A difference or a spread (offset-free) in natural units.
    pub fn spread(&self, stored: f64) -> f64 {
        stored / 10f64.powi(self.scale as i32)
    }

    /// A level (a mean) in natural units.
    pub fn level(&self, stored: f64) -> f64 {
        self.spread(stored + self.offset as f64)
    }
}

fn to_i128(x: &BigUint) -> Result<i128, StudyError> {
    i128::try_from(x).map_err(|_| StudyError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::fast::fold::Rounding;

    #[test]
    fn variance_is_exact_where_floats_cancel() {
        // Large values with a tiny spread: Σx² − (Σx)²/n in f64 would lose every digit.
        let m = Moments::of([1_000_000_001, 1_000_000_002, 1_000_000_003]);
        assert_eq!(m.variance().unwrap(), 1.0);
        assert_eq!(m.mean().unwrap(), 1_000_000_002.0);
    }

    #[test]
    fn moments_no_values_have_are_refused() {
        // Six values of 3, rounded to the nearest 5 (n 5, Σx 20, Σx² 55): 5·55 < 20².
        let round = |x| Rounding::Nearest5.apply(x);
        let m = Moments {
            n: round(6),
            sum: round(18).into(),
            sum_squares: round(54).into(),
        };
        assert_eq!((m.n, m.sum, m.sum_squares), (5, 20, 55));
        assert!(matches!(
            m.variance(),
            Err(StudyError::InconsistentMoments { n: 5 })
        ));
    }

    #[test]
    fn pooling_adds_cells() {
        let (a, b) = (Moments::of([1, 2]), Moments::of([3, 4, 5]));
        assert_eq!(a + b, Moments::of([1, 2, 3, 4, 5]));
    }

    #[test]
    fn a_variance_needs_two_values() {
        assert!(matches!(
            Moments::of([7]).variance(),
            Err(StudyError::TooFew { n: 1, need: 2 })
        ));
    }

    #[test]
    fn a_suppressed_answer_has_no_moments() {
        let r = QueryResult {
            records: 100,
            count: 0,
            sum: 0u32.into(),
            sum_squares: 0u32.into(),
            suppressed: true,
        };
        assert!(matches!(Moments::of_released(&r, 0), Ok(None)));
    }
}
