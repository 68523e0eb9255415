//! Fixed-effect meta-analysis of per-site differences.

use statrs::distribution::{ContinuousCDF, Normal};

use super::{normal_quantile, Interval, Moments, StudyError, Units, Welch, LEVEL};

/// The inverse-variance fixed-effect estimate of a difference of means across sites, with
/// Cochran's Q and I²: statsmodels' `combine_effects(...)` "fixed effect" row.
///
/// Each site contributes `mean₁ − mean₂` with variance `s₁²/n₁ + s₂²/n₂`. Assumes one true
/// difference shared by every site (a large I² says it is not) and independent sites.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FixedEffect {
    /// Per-site differences (natural units), in the order given.
    pub effects: Vec<f64>,
    /// Their variances (natural units²).
    pub variances: Vec<f64>,
    /// The pooled difference.
    pub effect: f64,
    /// Its standard error.
    pub se: f64,
    /// 95% interval.
    pub ci: Interval,
    /// `effect / se`.
    pub z: f64,
    /// Two-sided p-value (normal).
    pub p: f64,
    /// Cochran's Q (heterogeneity, `k − 1` df).
    pub q: f64,
    /// I² = max(0, (Q − (k − 1)) / Q).
    pub i2: f64,
}

impl FixedEffect {
    /// The estimate from each site's two arms of one column.
    pub fn of_sites(sites: &[[Moments; 2]], units: Units) -> Result<Self, StudyError> {
        if sites.len() < 2 {
            return Err(StudyError::TooFewSites(sites.len()));
        }
        let (effects, variances): (Vec<f64>, Vec<f64>) = sites
            .iter()
            .map(|&arms| Welch::test(arms, units).map(|w| (w.difference, w.se * w.se)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let weights: Vec<f64> = variances.iter().map(|v| 1.0 / v).collect();
        let total: f64 = weights.iter().sum();
        let effect = weights
            .iter()
            .zip(&effects)
            .map(|(w, d)| w * d)
            .sum::<f64>()
            / total;
        let se = total.sqrt().recip();
        let q: f64 = weights
            .iter()
            .zip(&effects)
            .map(|(w, d)| w * (d - effect).powi(2))
            .sum();
        let k = sites.len() as f64;
        let half = normal_quantile(0.5 + LEVEL / 2.0) * se;
        let z = effect / se;
        Ok(FixedEffect {
            effects,
            variances,
            effect,
            se,
            ci: Interval {
                low: effect - half,
                high: effect + half,
            },
            z,
            p: 2.0 * Normal::standard().sf(z.abs()),
            q,
            i2: if q > 0.0 {
                ((q - (k - 1.0)) / q).max(0.0)
            } else {
                0.0
            },
        })
    }
}
