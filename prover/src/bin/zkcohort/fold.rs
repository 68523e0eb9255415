//! Commit-and-prove ("fold") answers in the command line: the `dataset commit --fold` flags,
//! the fold circuit they fix, and the query budget `prove` counts against the disclosure
//! ledger (docs/circuits.md; `zkcohort::proof::fold`).

use anyhow::{bail, Context as _, Result};
use clap::Args;
use zkcohort::{
    circuit::fast::{
        fold::{Dominance, Rounding, MAX_STRATA},
        record::FoldSchema,
    },
    dataset::FoldCommitmentInfo,
    disclosure::Ledger,
    keys::{FoldSpec, FoldStrata},
    query::QueryConstants,
    schema::{ColumnKind, Schema},
};

/// `dataset commit --fold …`: also commit to the records for a commit-and-prove circuit
/// (`fold.json`).
#[derive(Args, Debug)]
pub(crate) struct FoldArgs {
    /// Also commit for a commit-and-prove (fold) circuit: writes `fold.json`, which `custodian
    /// register`, `prove` and `setup --dataset` then use. Its salt is derived from salt.json
    /// (no re-salting). Replacing an existing fold commitment of a registered dataset, or one
    /// answers were already proven from, needs --force (a fresh salt; register again).
    #[arg(long)]
    pub(crate) fold: bool,
    /// Data columns W of the fold circuit (more: faster proofs, more gas to verify).
    #[arg(long, requires = "fold", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) data_columns: u64,
    /// Proofs the fold commitment may give before the dataset must be re-committed under a
    /// fresh salt (each proof opens the data columns; the masking rows hide the records while
    /// fewer openings than rows are public).
    #[arg(long, requires = "fold", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) query_budget: u64,
    /// Value columns every fold proof accumulates, comma-separated names (a query may release
    /// any one of them). Required with --fold; one or two keep the verifier deployable.
    #[arg(long, requires = "fold", value_delimiter = ',')]
    pub(crate) statistics: Vec<String>,
    /// Stratify every fold proof by a value column: `COLUMN` (each code of a categorical
    /// column with 2 or 3 codes, or a 1-bit integer's 0 and 1) or `COLUMN:N` (its first N
    /// codes, 2 ≤ N ≤ 3). Each proof then releases one cell per stratum, each under the
    /// disclosure floor, with complementary suppression.
    #[arg(long, requires = "fold", value_name = "COLUMN[:N]")]
    pub(crate) strata: Option<String>,
    /// Commit for an attestation circuit: every fold proof answers a query with `attest`
    /// (one proven yes or no on the statistic's mean, no numbers) and only such queries.
    #[arg(long, requires = "fold", conflicts_with = "strata")]
    pub(crate) attest: bool,
    /// Round every count and sum a fold proof releases, in the proof: `nearest5` (to the
    /// nearest multiple of 5) or `midpoint6` (OpenSAFELY's `6·ceil(x/6) − 3`, 0 stays 0).
    /// A sponsor cannot turn it off; not with --attest (a verdict has no count).
    #[arg(long, requires = "fold", conflicts_with = "attest", value_name = "RULE", value_parser = rounding)]
    pub(crate) rounding: Option<Rounding>,
    /// The dominance rule, in the proof: a cell whose two largest values of the statistic
    /// make more than K % of its sum is suppressed (the (2, K) rule of magnitude tables;
    /// 85–90 is usual). One statistic, no --strata, not with --attest, and at most 2
    /// --data-columns for a record to have the rows the rule needs.
    #[arg(long, requires = "fold", conflicts_with_all = ["attest", "strata"], value_name = "K", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub(crate) dominance: Option<u8>,
}

/// `--rounding RULE`: a rule by its JSON name.
fn rounding(arg: &str) -> Result<Rounding> {
    Rounding::ALL
        .into_iter()
        .find(|r| serde_json::to_value(r).is_ok_and(|v| v == arg))
        .with_context(|| format!("`{arg}` is not a rounding rule: nearest5 or midpoint6"))
}

impl FoldArgs {
    /// The fold circuit these flags fix over `schema` at `capacity` records: its masking rows
    /// give the asked query budget exactly.
    pub(crate) fn spec(&self, schema: &Schema, capacity: usize) -> Result<FoldSpec> {
        let fold = FoldSchema::of(schema)
            .with_context(|| format!("schema `{}` has no fold circuit", schema.name))?;
        let statistics = statistics(schema, &fold, &self.statistics)?;
        let data_columns = usize::try_from(self.data_columns)?;
        let budget = usize::try_from(self.query_budget)?;
        let strata = self
            .strata
            .as_deref()
            .map(|arg| strata(schema, arg))
            .transpose()?;
        let mut spec = FoldSpec {
            capacity,
            mask_rows: 0,
            data_columns,
            statistics,
            strata,
            attestation: self.attest,
            rounding: self.rounding,
            dominance: self.dominance.map(|percent| Dominance { percent }),
        };
        let params = spec.params(&fold)?;
        // The shape's own rules (e.g. what the dominance rule needs), before anything is
        // written.
        params.check(params.min_k(), &[]).context("fold circuit")?;
        let openings = params.openings_per_proof();
        spec.mask_rows = budget
            .checked_mul(openings)
            .and_then(|m| m.checked_add(1))
            .with_context(|| format!("--query-budget {budget} is too large"))?;
        Ok(spec)
    }
}

/// The strata `--strata COLUMN[:N]` names: the column's index among the value columns and the
/// number of strata (a categorical column's codes, or 2 for a 1-bit integer, unless `:N`).
fn strata(schema: &Schema, arg: &str) -> Result<FoldStrata> {
    let (name, count) = match arg.split_once(':') {
        Some((name, n)) => (
            name,
            Some(
                n.parse::<usize>()
                    .ok()
                    .filter(|n| (2..=MAX_STRATA).contains(n))
                    .with_context(|| {
                        format!("--strata {arg}: N must be a number from 2 to {MAX_STRATA}")
                    })?,
            ),
        ),
        None => (arg, None),
    };
    let (column, (_, c)) = schema
        .value_columns()
        .enumerate()
        .find(|(_, (_, c))| c.name == name)
        .with_context(|| {
            let names: Vec<&str> = schema
                .value_columns()
                .map(|(_, c)| c.name.as_str())
                .collect();
            format!(
                "--strata: schema `{}` has no value column `{name}` (it has {})",
                schema.name,
                names.join(", ")
            )
        })?;
    let codes = match &c.kind {
        ColumnKind::Categorical { codes } => Some(codes.len()),
        ColumnKind::Uint { bits: 1 } => Some(2),
        _ => None,
    };
    let count = match (count, codes) {
        (Some(n), _) => n,
        (None, Some(n)) if (2..=MAX_STRATA).contains(&n) => n,
        (None, Some(n)) => bail!(
            "--strata {name}: the column has {n} codes and a proof releases 2 to {MAX_STRATA}              strata: name how many of its first codes (`--strata {name}:N`)"
        ),
        (None, None) => bail!(
            "--strata {name}: not a categorical or 0/1 column: name how many of its first codes              are strata (`--strata {name}:N`, 2 ≤ N ≤ {MAX_STRATA})"
        ),
    };
    Ok(FoldStrata { column, count })
}

/// Indices among the schema's value columns of the named statistics, or of every summable one.
fn statistics(schema: &Schema, fold: &FoldSchema, names: &[String]) -> Result<Vec<usize>> {
    let columns: Vec<&str> = schema
        .value_columns()
        .map(|(_, c)| c.name.as_str())
        .collect();
    if names.is_empty() {
        // Each statistic costs the verifier bytecode and gas: a default of every summable
        // column would make verifiers that do not deploy (over EIP-170's 24,576 bytes).
        let summable: Vec<&str> = (0..columns.len())
            .filter(|&i| fold.statistic_field(i).is_ok())
            .map(|i| columns[i])
            .collect();
        bail!(
            "--fold needs --statistics: the value columns every proof accumulates, one or two \
             (each adds to the verifier's size; schema `{}` can sum {})",
            schema.name,
            summable.join(", ")
        );
    }
    names
        .iter()
        .map(|name| {
            let i = columns.iter().position(|c| c == name).with_context(|| {
                format!(
                    "--statistics: schema `{}` has no value column `{name}` (it has {})",
                    schema.name,
                    columns.join(", ")
                )
            })?;
            fold.statistic_field(i)
                .with_context(|| format!("--statistics: `{name}`"))?;
            Ok(i)
        })
        .collect()
}

/// Proofs made (`prove`) against commitment `commitment`: each opens its data columns once
/// more (a claim re-sends a proof already counted).
pub(crate) fn proofs_against(ledger: &Ledger, commitment: &str) -> usize {
    ledger
        .entries
        .iter()
        .filter(|e| e.commitment == commitment && e.on_chain.is_none())
        .count()
}

/// Refuses a proof once `info`'s query budget is spent; returns the proofs already made.
pub(crate) fn check_budget(ledger: &Ledger, info: &FoldCommitmentInfo) -> Result<usize> {
    let used = proofs_against(ledger, &info.commitment);
    if used >= info.query_budget {
        bail!(
            "the fold commitment {} has given its query budget of {} proofs ({used} in the \
             disclosure ledger): another proof could reveal the records. Re-commit under a \
             fresh salt (`dataset commit --fold --force`), then register again (`custodian \
             register`)",
            info.commitment,
            info.query_budget
        );
    }
    Ok(used)
}

/// The public words of `constants` in the layout of circuits with `data_columns` data columns
/// (0: Poseidon circuits; otherwise fold circuits).
pub(crate) fn constants_words(
    schema: &Schema,
    constants: &QueryConstants,
    data_columns: u32,
) -> Result<Vec<zkcohort::Fr>> {
    if data_columns == 0 {
        Ok(constants.to_fields())
    } else {
        Ok(FoldSchema::of(schema)?.query_constants(constants)?)
    }
}
