//! `zkcohort study two-arm`: a two-arm comparison from verified answers (issue #13's
//! `two_arm` template). Each arm is one released answer per site (`prove` artifacts); every
//! artifact is verified offline first, as `verify` does, and the comparison is computed from
//! the proven sufficient statistics only: Welch's t for a numeric statistic, the 2×2 table
//! (risk difference, risk and odds ratios, χ²) for a 0/1 statistic; with two or more sites,
//! the per-site differences and their fixed-effect meta-analysis beside the pooled test.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use zkcohort::{
    proof::{self, Answer, Artifact},
    schema::{Column, Schema},
    study::{FixedEffect, Interval, Moments, Table2x2, TwoByTwo, Units, Welch, LEVEL},
};

use crate::{emit, store, verify::load_manifest, Global};

/// `study` subcommands.
#[derive(Subcommand)]
pub(crate) enum StudyCmd {
    /// Compare two arms (two cohorts: treated and control, exposed and unexposed) from their
    /// verified answers. Both arms' queries must release the same statistic column; a 0/1
    /// column (a 1-bit field) gives a 2×2 table, any other a difference of means. Give one
    /// answer per site and arm, in the same site order for both arms.
    TwoArm(TwoArmArgs),
}

impl StudyCmd {
    /// Runs the subcommand.
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        match self {
            StudyCmd::TwoArm(args) => args.execute(g),
        }
    }
}

/// Arguments of `study two-arm`.
#[derive(Args)]
pub(crate) struct TwoArmArgs {
    /// Arm 1's answers, one per site (comma-separated or repeated).
    #[arg(long, required = true, value_delimiter = ',')]
    arm1: Vec<PathBuf>,
    /// Arm 2's answers, one per site, in arm 1's site order.
    #[arg(long, required = true, value_delimiter = ',')]
    arm2: Vec<PathBuf>,
    /// Arm names for the table.
    #[arg(long, value_delimiter = ',', default_values_t = ["arm 1".to_string(), "arm 2".to_string()])]
    names: Vec<String>,
    /// Verifier manifest the answers' circuits must be in (default: as for `verify`).
    #[arg(long)]
    manifest: Option<PathBuf>,
}

/// One verified answer of one arm at one site.
struct Cell {
    path: PathBuf,
    schema: Schema,
    statistic: String,
    commitment: String,
    /// `None`: suppressed below its floor.
    moments: Option<Moments>,
}

impl TwoArmArgs {
    /// Verifies every answer, then prints the comparison (`--json`: as an object).
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        if self.arm1.len() != self.arm2.len() {
            bail!(
                "{} answers for arm 1 and {} for arm 2: give one per site for each arm",
                self.arm1.len(),
                self.arm2.len()
            );
        }
        if self.names.len() != 2 {
            bail!("--names takes two names, one per arm");
        }
        let manifest = load_manifest(self.manifest.as_ref())?;
        let store = store(g)?;
        let verified = |path: &PathBuf| -> Result<Cell> {
            let artifact = Artifact::read(path).with_context(|| path.display().to_string())?;
            proof::verify_artifact(&artifact, &store, &manifest)
                .with_context(|| format!("{} does not verify", path.display()))?;
            let (schema, answer, nonmissing): (&Schema, &dyn Answer, u64) = match &artifact {
                Artifact::Aggregate(a) => (&a.circuit.schema, a, a.public.result.count),
                Artifact::Fold(a) => (&a.schema, a, a.public.nonmissing),
                Artifact::Eligibility(_) => {
                    bail!("{} is an eligibility proof, not an answer", path.display())
                }
            };
            let result = answer.result();
            Ok(Cell {
                path: path.clone(),
                schema: schema.clone(),
                statistic: answer.query().statistic.clone(),
                commitment: answer.commitment().to_owned(),
                moments: (!result.suppressed)
                    .then(|| Moments::of_released(result, nonmissing))
                    .transpose()?,
            })
        };
        let sites: Vec<[Cell; 2]> = self
            .arm1
            .iter()
            .zip(&self.arm2)
            .map(|(a, b)| Ok([verified(a)?, verified(b)?]))
            .collect::<Result<_>>()?;
        let first = &sites[0][0];
        for cell in sites.iter().flatten() {
            if cell.schema != first.schema || cell.statistic != first.statistic {
                bail!(
                    "{} answers `{}` of schema `{}`, {} `{}` of `{}`: both arms must release \
                     the same column of the same schema",
                    cell.path.display(),
                    cell.statistic,
                    cell.schema.name,
                    first.path.display(),
                    first.statistic,
                    first.schema.name
                );
            }
        }
        for [a, b] in &sites {
            if a.commitment != b.commitment {
                bail!(
                    "{} and {} open different datasets: a site's two arms must come from one \
                     committed dataset",
                    a.path.display(),
                    b.path.display()
                );
            }
        }
        let column = first
            .schema
            .column(&first.statistic)
            .context("the statistic is not a column of its schema")?;
        let report = Report::new(&sites, column, &self.names)?;
        emit(g, report.json, || {
            for line in &report.lines {
                println!("{line}");
            }
        });
        Ok(())
    }
}

/// The comparison, as lines and as JSON.
struct Report {
    lines: Vec<String>,
    json: Value,
}

impl Report {
    fn new(sites: &[[Cell; 2]], column: &Column, names: &[String]) -> Result<Self> {
        let units = Units::of(column);
        let binary = column.bits() == 1 && column.min_stored() == 0;
        let released: Vec<[Moments; 2]> = sites
            .iter()
            .filter_map(|[a, b]| Some([a.moments?, b.moments?]))
            .collect();
        let suppressed: Vec<String> = sites
            .iter()
            .flatten()
            .filter(|c| c.moments.is_none())
            .map(|c| c.path.display().to_string())
            .collect();
        if released.is_empty() {
            bail!("every site has a suppressed arm: there is nothing to compare");
        }
        let pooled = released
            .iter()
            .fold([Moments::default(); 2], |[x, y], [a, b]| [x + *a, y + *b]);
        let statistic = &column.name;
        let mut lines = vec![format!(
            "two-arm comparison of {statistic}: {} vs {}, {} site(s) ({} released)",
            names[0],
            names[1],
            sites.len(),
            released.len()
        )];
        for path in &suppressed {
            lines.push(format!(
                "  suppressed (below its floor, left out of every estimate): {path}"
            ));
        }
        let mut json = json!({
            "statistic": statistic,
            "arms": names,
            "sites": sites.len(),
            "suppressed": suppressed,
            "level": LEVEL,
        });
        if binary {
            let cells = pooled.map(|m| [m.sum as u64, m.n - m.sum as u64]);
            let t = TwoByTwo::test(Table2x2 { cells })?;
            for (i, name) in names.iter().enumerate() {
                lines.push(format!(
                    "  {name:>12}: {} of {} ({:.1}%)",
                    cells[i][0],
                    cells[i][0] + cells[i][1],
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
                "  assumes independent patients; Wald intervals (ratios on the log scale) and \
                 χ² are large-sample approximations"
                    .into(),
            );
            if t.small_expected() {
                lines.push(format!(
                    "  WARNING: an expected cell is {:.1} (< 5): the χ² p-value and the \
                     intervals are unreliable",
                    t.min_expected
                ));
            }
            json["two_by_two"] = serde_json::to_value(t)?;
        } else {
            let w = Welch::test(pooled, units)?;
            let unit = column
                .unit
                .as_deref()
                .map_or(String::new(), |u| format!(" {u}"));
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
                "  assumes independent arms and approximately normal means (large arms or \
                 normal values); unequal variances allowed"
                    .into(),
            );
            json["welch"] = serde_json::to_value(w)?;
            if released.len() >= 2 {
                let fe = FixedEffect::of_sites(&released, units)?;
                lines.push(format!(
                    "  fixed effect over {} sites: {:+.4}{unit} {}, z = {:.4}, p = {}; \
                     Cochran's Q {:.3}, I² {:.0}%",
                    released.len(),
                    fe.effect,
                    interval(fe.ci),
                    fe.z,
                    p_value(fe.p),
                    fe.q,
                    100.0 * fe.i2
                ));
                json["fixed_effect"] = serde_json::to_value(fe)?;
            }
        }
        Ok(Report { lines, json })
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
