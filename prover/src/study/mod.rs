//! Study templates (issue #13): the tests and estimates researchers compute from released
//! sufficient statistics, with the assumptions each one makes.
//!
//! A proof releases, per cell (a cohort, an arm, a stratum, a site), a count and for a value
//! column its non-missing count, `Σ x` and `Σ x²` ([`Moments`], exact integers). Everything a
//! study reports is a function of those: a difference of means with Welch's t ([`Welch`]), a
//! 2×2 table's risk difference, risk and odds ratios and χ² ([`TwoByTwo`]), a correlation from
//! `Σ x y` ([`Pearson`]), and across sites the pooled cells ([`Moments`] add) or a fixed-effect
//! meta-analysis of per-site differences ([`FixedEffect`]); [`TwoArm`] puts them together over
//! sites, from answers verified offline or from the market's records ([`OnChainArms`]). Distributions come from `statrs`;
//! the cancellation-prone sums are combined in exact integers first.
//!
//! Every template is checked against scipy and statsmodels on two public datasets to 1e-9
//! relative (`prover/tests/study.rs`, reference `examples/public/study-reference.json`).

mod arms;
mod correlation;
mod meta;
mod moments;
mod onchain;
mod two_arm;

pub use arms::TwoArm;
pub use correlation::{PairMoments, Pearson};
pub use meta::FixedEffect;
pub use moments::{Moments, Units};
pub use onchain::OnChainArms;
use statrs::distribution::{ContinuousCDF, Normal};
pub use two_arm::{Table2x2, TwoByTwo, Welch};

/// The confidence level of every interval: 95%, two-sided.
pub const LEVEL: f64 = 0.95;

/// A confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// Why a template has no answer for the given statistics.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// Every site has a suppressed arm: nothing to compare.
    #[error("every site has an arm suppressed below its floor: nothing to compare")]
    NoReleasedSite,
    /// Too few values for the estimate.
    #[error("{n} values; this estimate needs at least {need}")]
    TooFew {
        /// Values present.
        n: u64,
        /// Values needed.
        need: u64,
    },
    /// Both arms are constant: the t statistic is undefined.
    #[error("no variation in either arm: the test is undefined")]
    ZeroVariance,
    /// A 2×2 table with an empty row or column.
    #[error("a 2×2 table with an empty arm or outcome: no estimate")]
    EmptyMargin,
    /// A meta-analysis needs at least two sites.
    #[error("{0} site(s); a meta-analysis needs at least 2")]
    TooFewSites(usize),
    /// No query with this id in the market's history.
    #[error("query #{0} is not in the market's history")]
    UnknownQuery(u64),
    /// A query's spec document was not published (or does not read as a query spec).
    #[error("query #{0} has no readable published spec: its statistic is unknown")]
    Unpublished(u64),
    /// The statistic is not a column of the schema.
    #[error("`{0}` is not a column of the schema")]
    UnknownColumn(String),
    /// The arms release different columns.
    #[error("the arms release different statistics (`{0}`, `{1}`): compare one column")]
    DifferentStatistics(String, String),
    /// `n Σx² < (Σx)²`: no set of values has these moments (a circuit that rounds its counts
    /// and sums can release such moments for a nearly constant column).
    #[error("n·Σx² < (Σx)² ({n} values): no values have these moments (rounded answers of a nearly constant column?)")]
    InconsistentMoments {
        /// Values in the cell.
        n: u64,
    },
    /// The sums exceed exact 128-bit arithmetic.
    #[error("the released sums overflow 128-bit arithmetic")]
    Overflow,
    /// Degenerate degrees of freedom for Student's t.
    #[error("Student's t with these degrees of freedom: {0}")]
    StudentsT(#[from] statrs::distribution::StudentsTError),
    /// Degenerate degrees of freedom for χ².
    #[error("χ² with these degrees of freedom: {0}")]
    ChiSquared(#[from] statrs::distribution::GammaError),
}

/// The standard normal quantile.
fn normal_quantile(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}
