//! `zkcohort verify`: checks a proof artifact (aggregate or eligibility) offline, on any
//! machine, and says what it proves in natural units. The verifying key is derived from the
//! circuit the artifact records and the params (cached under `--cache`), and must be the key of
//! the deployed verifier in the manifest; every field of the artifact is checked.

use std::path::PathBuf;

use alloy::primitives::B256;
use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use serde_json::{json, Value};
use zkcohort::{
    audit::words,
    chain,
    circuit::fast::fold::Rounding,
    eligibility::EligibilityArtifact,
    evm::{Manifest, MANIFEST},
    keys::ParamsKind,
    proof::{self, fold::FoldArtifact, Answer, Artifact, Verified},
    query::{ClaimBinding, QueryResult, QuerySpec},
    schema::Schema,
};

use crate::{emit, store, DeploymentArg, Global};

/// Arguments of `verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The artifact (`prove` or `patient prove-eligibility` output).
    #[arg(required_unless_present = "tx", conflicts_with = "tx")]
    artifact: Option<PathBuf>,
    /// Verifier manifest holding the deployed verifiers' circuits and verifying key hashes
    /// (default: contracts/verifiers/verifiers.json under the repository, if present, else the
    /// committed copy built into this binary).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Instead of an artifact, the hash of a claim or enrolment transaction: its proof and
    /// public inputs are read from the calldata, the spec from the sponsor's published
    /// document, and verified the same way (a read: no key needed).
    #[arg(long)]
    tx: Option<B256>,
    /// JSON-RPC endpoint (with --tx).
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// Deployment file (with --tx).
    #[command(flatten)]
    deployment: DeploymentArg,
    /// Schema of the circuit (with --tx; repeatable; default: the built-in clinical schema).
    #[arg(long = "schema")]
    schemas: Vec<PathBuf>,
}

impl VerifyArgs {
    /// Runs the command: prints the result (`--json`: `{"valid": true, ...}`), or fails with the
    /// reason (`--json`: `{"valid": false, "reason": ...}` on stdout too).
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        let what = match (&self.artifact, &self.tx) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(tx)) => format!("the proof of transaction {tx}"),
            (None, None) => unreachable!("clap requires one"),
        };
        let outcome = self.check(g);
        match outcome {
            Ok(report) => {
                emit(g, report.json, || {
                    for line in &report.lines {
                        println!("{line}");
                    }
                });
                Ok(())
            }
            Err(reason) => {
                if g.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &json!({"valid": false, "artifact": self.artifact, "tx": self.tx, "reason": reason})
                        )?
                    );
                }
                Err(anyhow!("{what} is INVALID: {reason}"))
            }
        }
    }

    fn check(&self, g: &Global) -> Result<Report, String> {
        let manifest = load_manifest(self.manifest.as_ref()).map_err(|e| format!("{e:#}"))?;
        let (artifact, from_tx) = match (&self.artifact, self.tx) {
            (Some(path), _) => (Artifact::read(path).map_err(|e| e.to_string())?, None),
            (None, Some(tx)) => {
                let read = crate::runtime()
                    .and_then(|rt| rt.block_on(self.read_tx(tx, &manifest)))
                    .map_err(|e| format!("{e:#}"))?;
                (read.artifact.clone(), Some(read))
            }
            (None, None) => return Err("give an artifact or --tx".into()),
        };
        let store = store(g).map_err(|e| e.to_string())?;
        let verified =
            proof::verify_artifact(&artifact, &store, &manifest).map_err(|e| e.to_string())?;
        let mut report = match &artifact {
            Artifact::Aggregate(a) => aggregate(
                "aggregate",
                &verified,
                &a.circuit.schema,
                a,
                a.public.result.count,
            ),
            Artifact::Fold(a) => {
                let mut report = aggregate("fold", &verified, &a.schema, a, a.public.nonmissing);
                report.json["nonmissing"] = json!(a.public.nonmissing);
                report.json["data_columns"] = json!(a.fold.data_columns);
                if !a.public.cells.is_empty() {
                    strata(&mut report, a);
                }
                if let Some(yes) = a.public.verdict {
                    attestation(&mut report, a, yes);
                }
                if let Some(rule) = a.fold.rounding {
                    rounding(&mut report, rule);
                }
                if let Some(rule) = a.fold.dominance {
                    report.lines.push(format!(
                        "  dominance: a cell whose two largest values make more than {} % of its \
                         sum is suppressed, in the proof (the circuit's (2, k) rule)",
                        rule.percent
                    ));
                    report.json["dominance_percent"] = json!(rule.percent);
                }
                report
            }
            Artifact::Eligibility(a) => eligibility(a, &verified),
        };
        if let (Some(read), Some(tx)) = (from_tx, self.tx) {
            let status = match read.succeeded {
                Some(true) => "accepted on-chain",
                Some(false) => "REVERTED on-chain (the proof was not accepted there)",
                None => "not mined yet",
            };
            report.lines.insert(
                1,
                format!(
                    "  read from transaction {tx} ({status}{}), call {}",
                    read.block
                        .map(|b| format!(", block {b}"))
                        .unwrap_or_default(),
                    serde_json::to_value(&read.call).expect("json")["call"]
                ),
            );
            report.json["tx"] = json!(tx);
            report.json["tx_succeeded"] = json!(read.succeeded);
            report.json["block"] = json!(read.block);
        }
        Ok(report)
    }

    async fn read_tx(&self, tx: B256, manifest: &Manifest) -> Result<chain::TxArtifact> {
        let deployment = self.deployment.load()?;
        let client = chain::Client::connect_read_only(&self.rpc_url, deployment).await?;
        let schemas = if self.schemas.is_empty() {
            vec![Schema::clinical_default()]
        } else {
            self.schemas
                .iter()
                .map(|p| Schema::load(p).with_context(|| format!("--schema {}", p.display())))
                .collect::<Result<_>>()?
        };
        Ok(client.artifact_of_tx(tx, manifest, &schemas).await?)
    }
}

/// `--manifest`, or the repository's, or the one built in.
pub(crate) fn load_manifest(path: Option<&PathBuf>) -> Result<Manifest> {
    if let Some(path) = path {
        return Ok(Manifest::load(path)?);
    }
    let repo = chain::repo_root()
        .join("contracts/verifiers")
        .join(MANIFEST);
    if repo.is_file() {
        Ok(Manifest::load(&repo)?)
    } else {
        Ok(Manifest::committed())
    }
}

/// What `verify` prints.
struct Report {
    json: Value,
    lines: Vec<String>,
}

/// The lines and JSON fields every valid artifact gets.
fn verified_part(kind: &str, v: &Verified) -> (Value, Vec<String>) {
    let insecure = v.params.kind == ParamsKind::DevInsecure;
    let mut lines = vec![format!(
        "VALID {kind} proof of circuit {}: verified here with the verifying key of {} (vk {}, from {})",
        v.circuit_id, v.verifier, v.vk_hash, v.manifest
    )];
    if insecure {
        lines.push(format!(
            "  WARNING: params {}: a proof from such params is no evidence off a local chain",
            v.params.describe()
        ));
    }
    let json = json!({
        "valid": true,
        "kind": kind,
        "circuit_id": v.circuit_id,
        "vk_hash": v.vk_hash,
        "verifier": v.verifier,
        "manifest": v.manifest,
        "params": v.params,
        "insecure_params": insecure,
    });
    (json, lines)
}

/// The report of an aggregate answer of either circuit family (`nonmissing`: the values
/// the mean is over).
fn aggregate(
    kind: &str,
    v: &Verified,
    schema: &Schema,
    a: &impl Answer,
    nonmissing: u64,
) -> Report {
    let (mut json, mut lines) = verified_part(kind, v);
    let r = a.result();
    let query = a.query();
    let query_hash = format!("0x{}", hex::encode(query.hash()));
    lines.push(format!("  query {}: {}", query_hash, query.describe()));
    lines.push(format!(
        "  dataset: commitment {}, {} records (schema `{}`)",
        a.commitment(),
        r.records,
        schema.name
    ));
    lines.push(format!(
        "  claimable for: {}",
        ClaimBinding::describe(a.binding())
    ));
    let (line, result) = released(schema, query, r, nonmissing);
    lines.push(format!("  result: {line}"));
    json["query_hash"] = json!(query_hash);
    json["query"] = json!(query);
    json["query_in_words"] = json!(query.describe());
    json["schema"] = json!(schema.name);
    json["commitment"] = json!(a.commitment());
    json["binding"] = json!(a.binding());
    json["records"] = json!(r.records);
    json["result"] = result;
    Report { json, lines }
}

/// A released cell in words and as JSON (`nonmissing`: the values the mean is over).
fn released(
    schema: &Schema,
    query: &QuerySpec,
    r: &QueryResult,
    nonmissing: u64,
) -> (String, serde_json::Value) {
    let statistic = &query.statistic;
    let scale = schema.decimal_scale(statistic).unwrap_or(0);
    let decimals = scale.max(1) as usize;
    let unit = schema.unit(statistic);
    let over = QueryResult {
        count: nonmissing,
        ..r.clone()
    };
    let mv = match schema.column(statistic) {
        Some(column) => column.natural_mean_variance(&over),
        None => over.mean_variance(scale),
    };
    let missing = r.count - nonmissing.min(r.count);
    let line = match (r.suppressed, mv) {
        (true, _) => format!(
            "SUPPRESSED: fewer than {} patients match (but some do), so nothing is released",
            query.min_cohort
        ),
        (false, None) if r.count == 0 => "no patient matches (count 0)".into(),
        (false, None) => format!("{} patients, none with a {statistic} value", r.count),
        (false, Some((mean, var))) if missing > 0 => format!(
            "{} patients; {} (over the {nonmissing} with a value; {missing} missing)",
            r.count,
            words::mean_sd(statistic, unit, mean, var.sqrt(), decimals)
        ),
        (false, Some((mean, var))) => format!(
            "{} patients; {}",
            r.count,
            words::mean_sd(statistic, unit, mean, var.sqrt(), decimals)
        ),
    };
    let json = json!({
        "suppressed": r.suppressed,
        "count": r.count,
        "statistic": statistic,
        "decimals": scale,
        "unit": unit,
        "mean": mv.map(|m| m.0),
        "sd": mv.map(|m| m.1.sqrt()),
        "sum": r.sum.to_string(),
        "sum_squares": r.sum_squares.to_string(),
    });
    (line, json)
}

/// An attestation's verdict, replacing the result line (an attestation releases no count).
fn attestation(report: &mut Report, a: &FoldArtifact, yes: bool) {
    let threshold = a
        .query
        .attest
        .as_ref()
        .map_or_else(|| "?".to_owned(), |t| t.mean_at_least.to_string());
    let line =
        format!(
        "  attestation: {}: the mean of `{}` is {} {threshold} over at least {} patients with a \
         value (a proven verdict; no count or sum is released)",
        if yes { "YES" } else { "NO" },
        a.query.statistic,
        if yes { "at least" } else { "not shown to reach" },
        a.query.min_cohort
    );
    match report
        .lines
        .iter()
        .position(|l| l.starts_with("  result: "))
    {
        Some(at) => report.lines[at] = line,
        None => report.lines.push(line),
    }
    report.json["verdict"] = json!(yes);
    report.json["result"] = json!({"attestation": a.query.attest, "verdict": yes});
}

/// A rounded fold answer: says, after the result, that its counts and sums are rounded (so
/// a mean or variance from them is approximate).
fn rounding(report: &mut Report, rule: Rounding) {
    let words = match rule {
        Rounding::Nearest5 => "to the nearest multiple of 5",
        Rounding::Midpoint6 => "by the midpoint-6 rule (6·ceil(x/6) − 3; 0 stays 0)",
    };
    report.lines.push(format!(
        "  rounded: every count and sum above was rounded {words} in the proof (the circuit's \
         rule: a mean or variance from them is approximate)"
    ));
    report.json["rounding"] = json!(rule);
}

/// A stratified fold answer's cells, replacing the pooled result line (see
/// [`FoldPublic::cells`](zkcohort::proof::fold::FoldPublic::cells)).
fn strata(report: &mut Report, a: &FoldArtifact) {
    let column = a
        .fold
        .strata
        .and_then(|s| a.schema.value_columns().nth(s.column))
        .map_or("stratum", |(_, c)| c.name.as_str());
    let at = report
        .lines
        .iter()
        .position(|l| l.starts_with("  result: "))
        .unwrap_or(report.lines.len());
    report.lines.remove(at);
    let mut lines = vec![format!(
        "  result, by {column} (one cell per stratum; a cell below {} is suppressed, and so is \
         the smallest other cell when it is the only one):",
        a.query.min_cohort
    )];
    let mut cells = Vec::new();
    for c in &a.public.cells {
        let (line, mut json) = released(
            &a.schema,
            &a.query,
            &c.result(a.public.result.records),
            c.nonmissing,
        );
        let line = if c.suppressed {
            "SUPPRESSED (below the floor, or as its complement)".into()
        } else {
            line
        };
        lines.push(format!("    {column} = {}: {line}", c.stratum));
        json["stratum"] = json!(c.stratum);
        json["nonmissing"] = json!(c.nonmissing);
        cells.push(json);
    }
    report.lines.splice(at..at, lines);
    report.json["strata"] = json!({"column": column, "cells": cells});
}

fn eligibility(a: &EligibilityArtifact, v: &Verified) -> Report {
    let (mut json, mut lines) = verified_part("eligibility", v);
    let nullifiers = a.nullifiers();
    let payouts: Vec<&str> = a
        .slots
        .iter()
        .filter(|s| a.nullifiers().contains(&s.nullifier))
        .map(|s| s.payout.as_str())
        .collect();
    lines.push(format!(
        "  trial {} ({}): {}",
        a.trial_id,
        a.trial_hash,
        a.trial.describe()
    ));
    lines.push(format!(
        "  {} patient(s) of the dataset with membership root {} meet it, each named only by a nullifier:",
        nullifiers.len(),
        a.member_root
    ));
    for (n, p) in nullifiers.iter().zip(&payouts) {
        let payout = match chain::payout_address(p) {
            Some(addr) => format!("payout {addr}"),
            None => "no payout address (the custodian takes the bounty)".into(),
        };
        lines.push(format!("    nullifier {n}, {payout}"));
    }
    json["trial_id"] = json!(a.trial_id);
    json["trial_hash"] = json!(a.trial_hash);
    json["trial"] = json!(a.trial);
    json["trial_in_words"] = json!(a.trial.describe());
    json["member_root"] = json!(a.member_root);
    json["patients"] = json!(nullifiers.len());
    json["nullifiers"] = json!(nullifiers);
    json["payouts"] = json!(payouts
        .iter()
        .map(|p| chain::payout_address(p))
        .collect::<Vec<_>>());
    Report { json, lines }
}

#[cfg(test)]
mod tests {
    use num_bigint::BigUint;
    use zkcohort::{
        keys::{CircuitShape, CircuitSpec, ParamsFingerprint},
        proof::{DecodedPublic, ProofArtifact},
        query::QuerySpec,
    };

    use super::*;

    /// The report of a Poseidon artifact.
    fn report(a: &ProofArtifact) -> Report {
        aggregate(
            "aggregate",
            &verified(),
            &a.circuit.schema,
            a,
            a.public.result.count,
        )
    }

    fn artifact(schema: Schema, values: &[u64]) -> ProofArtifact {
        let query: QuerySpec = serde_json::from_str(
            r#"{"criteria": {"age": [40, 65]}, "consent": "research", "statistic": "hba1c",
                "min_cohort": 1}"#,
        )
        .unwrap();
        let constants = query.compile(&schema).unwrap();
        let result = QueryResult {
            records: 10,
            count: values.len() as u64,
            sum: values.iter().sum::<u64>().into(),
            sum_squares: BigUint::from(values.iter().map(|v| v * v).sum::<u64>()),
            suppressed: false,
        };
        ProofArtifact {
            version: 1,
            circuit_id: "agg1-test".into(),
            circuit: CircuitSpec {
                schema,
                shape: CircuitShape::Eligibility { batch: 1 },
            },
            vk_hash: "0x00".into(),
            query_hash: "0x00".into(),
            query,
            binding: None,
            public: DecodedPublic {
                commitment: "0x00".into(),
                query: constants,
                context: "0x00".into(),
                result,
            },
            instances: vec![],
            proof: String::new(),
            calldata: String::new(),
        }
    }

    fn verified() -> Verified {
        Verified {
            circuit_id: "agg1-test".into(),
            vk_hash: "0x00".into(),
            verifier: "AggregateVerifierTest".into(),
            manifest: "test".into(),
            params: ParamsFingerprint {
                kind: ParamsKind::File,
                sha256: "0x00".into(),
                k: 14,
            },
        }
    }

    /// The result line and JSON carry the statistic's unit: the schema's own, or the built-in
    /// schema's documented fallback; none when the schema declares none.
    #[test]
    fn verify_prints_the_statistic_with_its_unit() {
        // HbA1c 7.0, 8.0, 9.0 (scale 1): mean 8.0, sd √(2/3).
        let values = [70, 80, 90];
        let result_line = |r: &Report| {
            r.lines
                .iter()
                .find(|l| l.starts_with("  result:"))
                .cloned()
                .unwrap()
        };

        let default = report(&artifact(Schema::clinical_default(), &values));
        assert_eq!(
            result_line(&default),
            "  result: 3 patients; mean hba1c 8.0 % (sd 0.8)"
        );
        assert_eq!(default.json["result"]["unit"], "%");
        assert_eq!(default.json["result"]["mean"], 8.0);

        let mut mmol = Schema::clinical_default();
        mmol.name = "with-units".into();
        mmol.columns[3].unit = Some("mmol/mol".into());
        let own = report(&artifact(mmol.clone(), &values));
        assert_eq!(
            result_line(&own),
            "  result: 3 patients; mean hba1c 8.0 mmol/mol (sd 0.8)"
        );

        mmol.columns[3].unit = None;
        let none = report(&artifact(mmol, &values));
        assert_eq!(
            result_line(&none),
            "  result: 3 patients; mean hba1c 8.0 (sd 0.8)"
        );
        assert!(none.json["result"]["unit"].is_null());
    }
}
