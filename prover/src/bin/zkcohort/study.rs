//! `zkcohort study two-arm`: a two-arm comparison from proven answers (issue #13's `two_arm`
//! template, [`zkcohort::study::TwoArm`]). The arms are either one released answer per site
//! (`prove` artifacts, each verified offline first, as `verify` does) or two market queries
//! (`--query-ids`: each dataset's answers as the market's verifier accepted them, read from
//! the chain with no key). The comparison uses the proven sufficient statistics only: Welch's t
//! for a numeric statistic, the 2×2 table (risk difference, risk and odds ratios, χ²) for a 0/1
//! statistic; with two or more sites, the per-site differences and their fixed-effect
//! meta-analysis beside the pooled test.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkcohort::{
    audit,
    chain::{FetchPolicy, HistoryReader},
    proof::{self, Answer, Artifact},
    schema::Schema,
    study::{Moments, OnChainArms, TwoArm},
};

use crate::{emit, store, verify::load_manifest, DeploymentArg, Global};

/// `study` subcommands.
#[derive(Subcommand)]
pub(crate) enum StudyCmd {
    /// Compare two arms (two cohorts: treated and control, exposed and unexposed) from their
    /// proven answers: artifacts (`--arm1`, `--arm2`, one per site, same site order) or two
    /// market queries (`--query-ids`). Both arms must release the same statistic column; a 0/1
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
        required_unless_present = "query_ids",
        conflicts_with = "query_ids"
    )]
    arm1: Vec<PathBuf>,
    /// Arm 2's answers, one per site, in arm 1's site order.
    #[arg(long, value_delimiter = ',', required_unless_present = "query_ids")]
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
    /// Verifies every answer (or reads the market's), then prints the comparison (`--json`: as
    /// an object).
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        if self.names.len() != 2 {
            bail!("--names takes two names, one per arm");
        }
        let names = [self.names[0].as_str(), self.names[1].as_str()];
        let (study, sites) = if self.query_ids.is_empty() {
            self.of_artifacts(g)?
        } else {
            self.of_market()?
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
