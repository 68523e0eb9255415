//! The `two_arm` template over sites: pooled test, per-site fixed effect, suppressed cells.

use serde::Serialize;

use super::{FixedEffect, Interval, Moments, StudyError, Table2x2, TwoByTwo, Units, Welch, LEVEL};
use crate::schema::Schema;

/// A two-arm comparison of one column over one or more sites, from each site's two released
/// cells (`None`: suppressed below its floor).
///
/// A site with a suppressed arm is left out of every estimate and named in
/// [`TwoArm::suppressed`]; it is never counted as zero. The arms are pooled over the other
/// sites (sums added) for the test: Welch's t for a numeric column, the 2×2 table for a 0/1
/// column (stored values 0 and 1: a 1-bit field or a two-code categorical; events are `Σ x`,
/// the second code's count). With two or more such sites and a numeric
/// column, the per-site differences are also combined by the fixed-effect model.
#[derive(Clone, Debug, Serialize)]
pub struct TwoArm {
    /// The compared column.
    pub column: String,
    /// Its unit, if the schema gives one.
    pub unit: Option<String>,
    /// Sites, in the order given.
    pub sites: usize,
    /// Indices of the sites left out (a suppressed arm).
    pub suppressed: Vec<usize>,
    /// The pooled arms' test, numeric column.
    pub welch: Option<Welch>,
    /// The pooled arms' table, 0/1 column.
    pub two_by_two: Option<TwoByTwo>,
    /// Across the released sites (two or more), numeric column.
    pub fixed_effect: Option<FixedEffect>,
}

impl TwoArm {
    /// The comparison of `schema`'s column `statistic` from each site's `[arm 1, arm 2]` cells.
    pub fn of_sites(
        sites: &[[Option<Moments>; 2]],
        schema: &Schema,
        statistic: &str,
    ) -> Result<Self, StudyError> {
        let column = schema
            .column(statistic)
            .ok_or_else(|| StudyError::UnknownColumn(statistic.to_owned()))?;
        let units = Units::of(column);
        let released: Vec<[Moments; 2]> = sites
            .iter()
            .filter_map(|[a, b]| Some([(*a)?, (*b)?]))
            .collect();
        if released.is_empty() {
            return Err(StudyError::NoReleasedSite);
        }
        let pooled = released
            .iter()
            .fold([Moments::default(); 2], |[x, y], [a, b]| [x + *a, y + *b]);
        let mut out = TwoArm {
            column: column.name.clone(),
            unit: schema.unit(statistic).map(str::to_owned),
            sites: sites.len(),
            suppressed: (0..sites.len())
                .filter(|&i| sites[i].iter().any(Option::is_none))
                .collect(),
            welch: None,
            two_by_two: None,
            fixed_effect: None,
        };
        if column.max_value() == 1 && column.min_stored() == 0 {
            let cells = pooled.map(|m| {
                let events = m.sum as u64;
                [events, m.n - events]
            });
            out.two_by_two = Some(TwoByTwo::test(Table2x2 { cells })?);
        } else {
            out.welch = Some(Welch::test(pooled, units)?);
            if released.len() >= 2 {
                out.fixed_effect = Some(FixedEffect::of_sites(&released, units)?);
            }
        }
        Ok(out)
    }

    /// The comparison in words, a line each: the arms (`names`), the estimates with their
    /// intervals and p-values, what they assume, and the sites left out (`site_names`).
    pub fn describe(&self, names: [&str; 2], site_names: &[String]) -> Vec<String> {
        let released = self.sites - self.suppressed.len();
        let mut lines = vec![format!(
            "two-arm comparison of {}: {} vs {}, {} site(s), {released} with both arms released",
            self.column, names[0], names[1], self.sites
        )];
        for &i in &self.suppressed {
            let site = site_names
                .get(i)
                .map_or(format!("site {}", i + 1), Clone::clone);
            lines.push(format!(
                "  {site}: an arm suppressed below its floor: left out of every estimate"
            ));
        }
        let unit = self
            .unit
            .as_deref()
            .map_or(String::new(), |u| format!(" {u}"));
        if let Some(t) = &self.two_by_two {
            for (i, name) in names.iter().enumerate() {
                let [events, others] = t.table.cells[i];
                lines.push(format!(
                    "  {name:>12}: {events} of {} ({:.1}%)",
                    events + others,
                    100.0 * t.risk[i]
                ));
            }
            lines.push(format!(
                "  risk difference {:+.4} {}",
                t.risk_difference.0,
                interval(t.risk_difference.1)
            ));
            if let Some((rr, ci)) = t.risk_ratio {
                lines.push(format!("  risk ratio {rr:.4} {}", interval(ci)));
            }
            if let Some((or, ci)) = t.odds_ratio {
                lines.push(format!("  odds ratio {or:.4} {}", interval(ci)));
            }
            lines.push(format!(
                "  Pearson χ² {:.4} (1 df), p = {}; with Yates' correction {:.4}, p = {}",
                t.chi2.0,
                p_value(t.chi2.1),
                t.chi2_yates.0,
                p_value(t.chi2_yates.1)
            ));
            lines.push(
                "  assumes independent patients; Wald intervals (ratios on the log scale) and χ² \
                 are large-sample approximations"
                    .into(),
            );
            if t.small_expected() {
                lines.push(format!(
                    "  WARNING: an expected cell is {:.1} (< 5): the χ² p-value and the \
                     intervals are unreliable",
                    t.min_expected
                ));
            }
        }
        if let Some(w) = &self.welch {
            for (i, name) in names.iter().enumerate() {
                lines.push(format!(
                    "  {name:>12}: n {}, mean {:.4}{unit} (sd {:.4})",
                    w.n[i], w.mean[i], w.sd[i]
                ));
            }
            lines.push(format!(
                "  difference {:+.4}{unit} {}; Welch t = {:.4}, df {:.1}, p = {}",
                w.difference,
                interval(w.ci),
                w.t,
                w.df,
                p_value(w.p)
            ));
            lines.push(
                "  assumes independent arms and approximately normal means (large arms or normal \
                 values); unequal variances allowed"
                    .into(),
            );
        }
        if let Some(fe) = &self.fixed_effect {
            lines.push(format!(
                "  fixed effect over {released} sites: {:+.4}{unit} {}, z = {:.4}, p = {}; \
                 Cochran's Q {:.3}, I² {:.0}% (assumes one true difference at every site)",
                fe.effect,
                interval(fe.ci),
                fe.z,
                p_value(fe.p),
                fe.q,
                100.0 * fe.i2
            ));
        }
        lines
    }
}

fn interval(ci: Interval) -> String {
    format!("({:.0}% CI {:.4} to {:.4})", 100.0 * LEVEL, ci.low, ci.high)
}

fn p_value(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}
