//! `zkcohort study two-arm`: a two-arm comparison from proven answers (issue #13's `two_arm`
//! template, [`zkcohort::study::TwoArm`]). The arms are either one released answer per site
//! (`prove` artifacts, each verified offline first, as `verify` does; or one stratified
//! artifact per site, whose strata are the arms) or two market queries
//! (`--query-ids`: each dataset's answers as the market's verifier accepted them, read from
//! the chain with no key). The comparison uses the proven sufficient statistics only: Welch's t
//! for a numeric statistic, the 2×2 table (risk difference, risk and odds ratios, χ²) for a 0/1
//! statistic; with two or more sites, the per-site differences and their fixed-effect
//! meta-analysis beside the pooled test.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkcohort::{
    audit,
    chain::{FetchPolicy, HistoryReader},
    proof::{self, fold::FoldArtifact, Answer, Artifact},
    schema::Schema,
    study::{Moments, OnChainArms, TwoArm},
};

use crate::{emit, store, verify::load_manifest, DeploymentArg, Global};

/// `study` subcommands.
#[derive(Subcommand)]
pub(crate) enum StudyCmd {
    /// Compare two arms (two cohorts: treated and control, exposed and unexposed) from their
    /// proven answers: artifacts (`--arm1`, `--arm2`, one per site, same site order), one
    /// stratified artifact per site whose strata are the arms (`--stratified`), or two market
    /// queries (`--query-ids`). Both arms must release the same statistic column; a 0/1
    /// column (stored 0 and 1: a 1-bit field, a two-code categorical) gives a 2×2 table, any
    /// other a difference of means.
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
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present_any = ["query_ids", "stratified"],
        conflicts_with_all = ["query_ids", "stratified"]
    )]
    arm1: Vec<PathBuf>,
    /// Instead of two answers per site: one stratified answer per site (a fold circuit
    /// committed with `--strata`), whose strata are the arms: its first two, or `--arms`.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["query_ids", "arm2"])]
    stratified: Vec<PathBuf>,
    /// With --stratified: the two strata that are the arms, by their value of the strata
    /// column (`--arms placebo,D-penicillamine`).
    #[arg(long, value_delimiter = ',', requires = "stratified")]
    arms: Vec<String>,
    /// Arm 2's answers, one per site, in arm 1's site order.
    #[arg(long, value_delimiter = ',', required_unless_present_any = ["query_ids", "stratified"])]
    arm2: Vec<PathBuf>,
    /// Instead of artifacts: the two market queries of the arms (`ARM1,ARM2`); every dataset
    /// that answered both is a site.
    #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "arm2")]
    query_ids: Vec<u64>,
    /// JSON-RPC endpoint (with --query-ids; only reads).
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// Deployment file (with --query-ids).
    #[command(flatten)]
    deployment: DeploymentArg,
    /// Schema of the queries (with --query-ids; default: the built-in clinical schema).
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Arm names for the table (default: `arm 1,arm 2`, or with --stratified the strata,
    /// `<column> = <value>`).
    #[arg(long, value_delimiter = ',')]
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
    /// Verifies every answer (or reads the market's), then prints the comparison (`--json`: as
    /// an object).
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        if !matches!(self.names.len(), 0 | 2) {
            bail!("--names takes two names, one per arm");
        }
        let (study, sites, arms) = if !self.stratified.is_empty() {
            self.of_stratified(g)?
        } else if self.query_ids.is_empty() {
            let (study, sites) = self.of_artifacts(g)?;
            (study, sites, ["arm 1".to_string(), "arm 2".to_string()])
        } else {
            let (study, sites) = self.of_market()?;
            (study, sites, ["arm 1".to_string(), "arm 2".to_string()])
        };
        let names = match &self.names[..] {
            [a, b] => [a.as_str(), b.as_str()],
            _ => [arms[0].as_str(), arms[1].as_str()],
        };
        let lines = study.describe(names, &sites);
        emit(
            g,
            json!({"arms": names, "sites": sites, "study": study}),
            || {
                for line in &lines {
                    println!("{line}");
                }
            },
        );
        Ok(())
    }

    /// The study of two market queries' answers.
    fn of_market(&self) -> Result<(TwoArm, Vec<String>)> {
        let [a, b] = self.query_ids[..] else {
            bail!("--query-ids takes two query ids, one per arm");
        };
        let schema = match &self.schema {
            Some(p) => Schema::load(p).with_context(|| format!("--schema {}", p.display()))?,
            None => Schema::clinical_default(),
        };
        let deployment = self.deployment.load()?;
        let history = crate::runtime()?.block_on(async {
            let reader =
                HistoryReader::connect(&self.rpc_url, deployment, FetchPolicy::default()).await?;
            anyhow::Ok(audit::market_history(&reader).await?)
        })?;
        let arms = OnChainArms::read(&history, [a, b])?;
        let statistic = &arms.specs[0].statistic;
        if !arms.unpaired.is_empty() {
            tracing::warn!(datasets = ?arms.unpaired, "answered one arm only: left out");
        }
        let sites = arms
            .datasets
            .iter()
            .map(|d| format!("dataset #{d}"))
            .collect();
        let study = TwoArm::of_sites(&arms.cells, &schema, statistic)
            .with_context(|| format!("schema `{}` (another: --schema)", schema.name))?;
        Ok((study, sites))
    }

    /// The study of one stratified artifact per site, each verified offline first: the arms
    /// are two of its cells. Returns the arms' names (`<column> = <value>`) too.
    fn of_stratified(&self, g: &Global) -> Result<(TwoArm, Vec<String>, [String; 2])> {
        let manifest = load_manifest(self.manifest.as_ref())?;
        let store = store(g)?;
        let mut sites = Vec::new();
        let mut first: Option<(FoldArtifact, [usize; 2], String)> = None;
        for path in &self.stratified {
            let a = match Artifact::read(path).with_context(|| path.display().to_string())? {
                Artifact::Fold(a) if !a.public.cells.is_empty() => a,
                _ => bail!(
                    "{} is not a stratified answer (a fold circuit committed with --strata);                      give two answers per site with --arm1 and --arm2",
                    path.display()
                ),
            };
            proof::verify_artifact(&Artifact::Fold(a.clone()), &store, &manifest)
                .with_context(|| format!("{} does not verify", path.display()))?;
            warn_rounded(path, &a);
            let column = a
                .fold
                .strata
                .and_then(|s| a.schema.value_columns().nth(s.column))
                .map(|(_, c)| c.name.clone())
                .context("a stratified answer names its strata column")?;
            let strata: Vec<&str> = a.public.cells.iter().map(|c| c.stratum.as_str()).collect();
            let arms = match &self.arms[..] {
                [] => [0, 1],
                [x, y] => {
                    let at = |code: &String| {
                        strata.iter().position(|s| s == code).with_context(|| {
                            format!(
                                "--arms: {} has no stratum `{code}` of `{column}` (it has {})",
                                path.display(),
                                strata.join(", ")
                            )
                        })
                    };
                    [at(x)?, at(y)?]
                }
                _ => bail!("--arms takes two strata, one per arm"),
            };
            if let Some((f, _, _)) = &first {
                if (&f.schema, &f.query.statistic, f.fold.strata)
                    != (&a.schema, &a.query.statistic, a.fold.strata)
                {
                    bail!(
                        "{} answers `{}` of schema `{}` by `{column}`, {} another column, schema \
                         or strata: every site must release the same column by the same strata",
                        path.display(),
                        a.query.statistic,
                        a.schema.name,
                        self.stratified[0].display()
                    );
                }
            }
            let moments = |v: usize| {
                let c = &a.public.cells[v];
                Moments::of_released(&c.result(a.public.result.records), c.nonmissing)
            };
            sites.push([moments(arms[0])?, moments(arms[1])?]);
            if first.is_none() {
                first = Some((a, arms, column));
            }
        }
        let (a, arms, column) = first.context("--stratified names no answer")?;
        let name = |v: usize| format!("{column} = {}", a.public.cells[v].stratum);
        let names = self
            .stratified
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Ok((
            TwoArm::of_sites(&sites, &a.schema, &a.query.statistic)?,
            names,
            [name(arms[0]), name(arms[1])],
        ))
    }

    /// The study of artifacts, each verified offline first.
    fn of_artifacts(&self, g: &Global) -> Result<(TwoArm, Vec<String>)> {
        if self.arm1.len() != self.arm2.len() {
            bail!(
                "{} answers for arm 1 and {} for arm 2: give one per site for each arm",
                self.arm1.len(),
                self.arm2.len()
            );
        }
        let manifest = load_manifest(self.manifest.as_ref())?;
        let store = store(g)?;
        let verified = |path: &PathBuf| -> Result<Cell> {
            let artifact = Artifact::read(path).with_context(|| path.display().to_string())?;
            proof::verify_artifact(&artifact, &store, &manifest)
                .with_context(|| format!("{} does not verify", path.display()))?;
            let (schema, answer, nonmissing): (&Schema, &dyn Answer, u64) = match &artifact {
                Artifact::Aggregate(a) => (&a.circuit.schema, a, a.public.result.count),
                Artifact::Fold(a) if a.public.verdict.is_some() => bail!(
                    "{} is an attestation (a verdict, no numbers): it cannot be an arm",
                    path.display()
                ),
                Artifact::Fold(a) => {
                    warn_rounded(path, a);
                    (&a.schema, a, a.public.nonmissing)
                }
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
                moments: Moments::of_released(result, nonmissing)?,
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
        let cells: Vec<[Option<Moments>; 2]> =
            sites.iter().map(|[a, b]| [a.moments, b.moments]).collect();
        let names = self.arm1.iter().map(|p| p.display().to_string()).collect();
        Ok((
            TwoArm::of_sites(&cells, &first.schema, &first.statistic)?,
            names,
        ))
    }
}

/// Says when an answer's counts and sums were rounded by its circuit: the test is then
/// computed from rounded values, and is approximate.
fn warn_rounded(path: &Path, a: &FoldArtifact) {
    if let Some(rule) = a.fold.rounding {
        tracing::warn!(
            answer = %path.display(),
            rounding = ?rule,
            "counts and sums rounded in the proof: the comparison is approximate"
        );
    }
}
