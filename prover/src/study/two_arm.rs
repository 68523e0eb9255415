//! Two-arm comparisons: difference of means (Welch) and 2×2 tables.

use statrs::distribution::{ChiSquared, ContinuousCDF, StudentsT};

use super::{normal_quantile, Interval, Moments, StudyError, Units, LEVEL};

/// Welch's unequal-variance t-test of `mean(arm 1) − mean(arm 2)`, two-sided, with its 95%
/// confidence interval: scipy's `ttest_ind(x, y, equal_var=False)`.
///
/// Assumes independent arms and, for the p-value and interval, approximately normal means
/// (large arms, or normal values); variances may differ.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Welch {
    /// Non-missing values per arm.
    pub n: [u64; 2],
    /// Means per arm (natural units).
    pub mean: [f64; 2],
    /// Sample standard deviations per arm (natural units, `ddof = 1`).
    pub sd: [f64; 2],
    /// `mean₁ − mean₂` (natural units).
    pub difference: f64,
    /// Its standard error (natural units).
    pub se: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// The t statistic.
    pub t: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// 95% confidence interval of the difference (natural units).
    pub ci: Interval,
}

impl Welch {
    /// The test from the two arms' moments of one column (`units`: the column's).
    pub fn test(arms: [Moments; 2], units: Units) -> Result<Self, StudyError> {
        let [a, b] = arms;
        let (va, vb) = (a.variance()?, b.variance()?);
        let (na, nb) = (a.n as f64, b.n as f64);
        let (sa, sb) = (va / na, vb / nb);
        if sa + sb == 0.0 {
            return Err(StudyError::ZeroVariance);
        }
        // Σx₁·n₂ − Σx₂·n₁ exactly: the means may be close where the sums are large.
        let cross = a
            .sum
            .checked_mul(i128::from(b.n))
            .zip(b.sum.checked_mul(i128::from(a.n)))
            .and_then(|(x, y)| x.checked_sub(y))
            .ok_or(StudyError::Overflow)?;
        let difference = cross as f64 / (na * nb);
        let se = (sa + sb).sqrt();
        let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
        let t = difference / se;
        let dist = StudentsT::new(0.0, 1.0, df)?;
        let p = (2.0 * dist.sf(t.abs())).min(1.0);
        let half = dist.inverse_cdf(0.5 + LEVEL / 2.0) * se;
        let mean = |m: &Moments| m.mean().map_or(f64::NAN, |x| units.level(x));
        Ok(Welch {
            n: [a.n, b.n],
            mean: [mean(&a), mean(&b)],
            sd: [units.spread(va.sqrt()), units.spread(vb.sqrt())],
            difference: units.spread(difference),
            se: units.spread(se),
            df,
            t,
            p,
            ci: Interval {
                low: units.spread(difference - half),
                high: units.spread(difference + half),
            },
        })
    }
}

/// A 2×2 table: the arms (exposed, unexposed) by the outcome (event, no event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Table2x2 {
    /// `[[events, non-events] of arm 1, [events, non-events] of arm 2]`.
    pub cells: [[u64; 2]; 2],
}

/// Risk difference, risk ratio and odds ratio with 95% Wald intervals (the ratios' on the log
/// scale), and Pearson's χ² test of independence with and without Yates' continuity
/// correction: statsmodels' `Table2x2` and `confint_proportions_2indep(method="wald")`,
/// scipy's `chi2_contingency`.
///
/// Assumes independent patients; the intervals and the uncorrected χ² are large-sample
/// approximations (every expected cell ≥ 5 is the usual rule; [`TwoByTwo::small_expected`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TwoByTwo {
    /// The table.
    pub table: Table2x2,
    /// Event risk per arm.
    pub risk: [f64; 2],
    /// `risk₁ − risk₂` and its interval.
    pub risk_difference: (f64, Interval),
    /// `risk₁ / risk₂` and its interval (`None` if a cell needed for it is 0).
    pub risk_ratio: Option<(f64, Interval)>,
    /// `(a d) / (b c)` and its interval (`None` if any cell is 0).
    pub odds_ratio: Option<(f64, Interval)>,
    /// Pearson's χ² (1 df), uncorrected, and its p-value.
    pub chi2: (f64, f64),
    /// Yates-corrected χ² and its p-value.
    pub chi2_yates: (f64, f64),
    /// The smallest expected cell count under independence.
    pub min_expected: f64,
}

impl TwoByTwo {
    /// Every estimate of the table.
    pub fn test(table: Table2x2) -> Result<Self, StudyError> {
        let [[a, b], [c, d]] = table.cells;
        let (n1, n2) = (a + b, c + d);
        let (e, f) = (a + c, b + d);
        let total = n1 + n2;
        if n1 == 0 || n2 == 0 || e == 0 || f == 0 {
            return Err(StudyError::EmptyMargin);
        }
        let z = normal_quantile(0.5 + LEVEL / 2.0);
        let [a, b, c, d, n1, n2, e, f, total] = [a, b, c, d, n1, n2, e, f, total].map(|x| x as f64);
        let (r1, r2) = (a / n1, c / n2);
        let rd = r1 - r2;
        let rd_se = (r1 * (1.0 - r1) / n1 + r2 * (1.0 - r2) / n2).sqrt();
        let log_interval = |estimate: f64, se: f64| {
            let l = estimate.ln();
            Interval {
                low: (l - z * se).exp(),
                high: (l + z * se).exp(),
            }
        };
        let risk_ratio = (a > 0.0 && c > 0.0).then(|| {
            let rr = r1 / r2;
            (
                rr,
                log_interval(rr, (1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2).sqrt()),
            )
        });
        let odds_ratio = (a * b * c * d > 0.0).then(|| {
            let or = (a * d) / (b * c);
            (
                or,
                log_interval(or, (1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d).sqrt()),
            )
        });
        // |O − E| is the same in every cell of a 2×2 table: |ad − bc| / N.
        let [[ia, ib], [ic, id]] = table.cells;
        let det = (i128::from(ia) * i128::from(id) - i128::from(ib) * i128::from(ic)).abs();
        let margins = n1 * n2 * e * f;
        let chi2 = total * (det as f64).powi(2) / margins;
        // scipy moves each cell by min(0.5, |O − E|) towards E.
        let shrunk = (det as f64 - (total / 2.0).min(det as f64)).max(0.0);
        let chi2_yates = total * shrunk.powi(2) / margins;
        let dist = ChiSquared::new(1.0)?;
        Ok(TwoByTwo {
            table,
            risk: [r1, r2],
            risk_difference: (
                rd,
                Interval {
                    low: rd - z * rd_se,
                    high: rd + z * rd_se,
                },
            ),
            risk_ratio,
            odds_ratio,
            chi2: (chi2, dist.sf(chi2)),
            chi2_yates: (chi2_yates, dist.sf(chi2_yates)),
            min_expected: [n1, n2]
                .into_iter()
                .flat_map(|r| [e, f].map(|c| r * c / total))
                .fold(f64::INFINITY, f64::min),
        })
    }

    /// Whether an expected cell is below 5: the χ² p-value and Wald intervals are unreliable
    /// (an exact test is the usual remedy).
    pub fn small_expected(&self) -> bool {
        self.min_expected < 5.0
    }
}
