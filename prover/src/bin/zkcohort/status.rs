//! `sponsor status` and the spec part of `sponsor trial-status`: read a query's or trial's state
//! and the spec document its sponsor published with it, and say in words what was asked. A
//! read: no key needed.

use std::path::PathBuf;

use alloy::primitives::{B256, U256};
use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::{json, Value};
use zkcohort::{
    audit::words,
    chain::{self, PublishedSpec},
    query::{QueryResult, QuerySpec},
    schema::Schema,
    trial::TrialSpec,
};

use crate::{emit, ChainArgs, Global};

/// Arguments of `sponsor status`.
#[derive(Args)]
pub(crate) struct StatusArgs {
    /// Query id.
    #[arg(long)]
    query_id: u64,
    /// The query spec, for a query whose spec document is not on-chain (its hash must be the
    /// posted one). The published document is used otherwise.
    #[arg(long)]
    query: Option<PathBuf>,
    /// The schema of the query's datasets (default: the built-in clinical schema), to check
    /// the spec against the posted constants and print the mean and sd in natural units. Used
    /// only if its hash is the query's schema hash.
    #[arg(long)]
    schema: Option<PathBuf>,
    #[command(flatten)]
    chain: ChainArgs,
}

/// A read-only connection: status commands need no key.
pub(crate) async fn reader(args: &ChainArgs) -> Result<chain::Client> {
    let deployment = args.deployment.load()?;
    Ok(chain::Client::connect_read_only(&args.rpc_url, deployment).await?)
}

/// The schema to read a spec with: `--schema`, or the built-in one; `None` (with the reason)
/// unless its hash is `on_chain`.
pub(crate) fn schema_for(
    path: Option<&PathBuf>,
    on_chain: B256,
) -> Result<(Option<Schema>, Value)> {
    let schema = match path {
        Some(p) => Schema::load(p).with_context(|| format!("--schema {}", p.display()))?,
        None => Schema::clinical_default(),
    };
    if B256::from(schema.hash()) == on_chain {
        Ok((Some(schema), Value::Null))
    } else {
        let why = format!(
            "schema `{}` (sha256 0x{}) is not the one posted ({on_chain}); pass --schema",
            schema.name,
            hex::encode(schema.hash())
        );
        Ok((None, json!(why)))
    }
}

/// A published spec read back: the parsed spec (if it parses canonically), its JSON report and
/// its lines for people.
pub(crate) struct SpecView<T> {
    pub spec: Option<T>,
    pub json: Value,
    pub lines: Vec<String>,
}

/// Reads a published (or, failing that, a local) spec of type `T` and checks it compiles to the
/// posted constants (`words_hash`) under `schema`.
pub(crate) fn view<T: serde::Serialize + serde::de::DeserializeOwned>(
    published: Option<PublishedSpec>,
    local: Option<(PathBuf, T, [u8; 32])>,
    posted_hash: B256,
    words: impl Fn(&T) -> Option<Vec<zkcohort::Fr>>,
    posted_words: B256,
    describe: impl Fn(&T) -> String,
) -> Result<SpecView<T>> {
    let mut lines = Vec::new();
    let (spec, source) = match (published, local) {
        (Some(p), _) => {
            let at =
                p.tx.map(|t| format!("published in tx {t}"))
                    .unwrap_or_else(|| "published".into());
            match zkcohort::query::from_document::<T>(&p.document) {
                Ok(spec) => (Some(spec), json!({"published": p, "source": at})),
                Err(e) => {
                    lines.push(format!(
                        "spec {at} but unreadable ({e}): {}",
                        String::from_utf8_lossy(&p.document)
                    ));
                    (None, json!({"published": p, "error": e.to_string()}))
                }
            }
        }
        (None, Some((path, spec, hash))) => {
            if B256::from(hash) != posted_hash {
                anyhow::bail!(
                    "{} hashes to 0x{}, the posted spec hash is {posted_hash}",
                    path.display(),
                    hex::encode(hash)
                );
            }
            let source = format!("from {} (no spec document on-chain)", path.display());
            (Some(spec), json!({"source": source}))
        }
        (None, None) => {
            lines.push(format!(
                "no spec document on-chain for spec hash {posted_hash} (pass the spec file to read it)"
            ));
            (None, json!({"source": null}))
        }
    };
    let mut json = json!({"hash": posted_hash, "read": source});
    if let Some(s) = &spec {
        let words_ok = words(s).map(|w| chain::words_hash(&w) == posted_words);
        json["spec"] = serde_json::to_value(s)?;
        json["in_words"] = json!(describe(s));
        json["matches_posted_constants"] = json!(words_ok);
        lines.push(format!("asked: {}", describe(s)));
        lines.push(match words_ok {
            Some(true) => "the spec compiles to exactly the posted constants".into(),
            Some(false) => "WARNING: the spec does NOT compile to the posted constants: the \
                            proofs answer other criteria than the words say"
                .into(),
            None => "(not checked against the posted constants: schema unknown)".into(),
        });
    }
    Ok(SpecView { spec, json, lines })
}

impl StatusArgs {
    /// Runs `sponsor status`.
    pub(crate) async fn execute(self, g: &Global) -> Result<()> {
        let c = reader(&self.chain).await?;
        let id = U256::from(self.query_id);
        let q = c.query(id).await?;
        let (schema, schema_note) = schema_for(self.schema.as_ref(), q.schemaHash)?;
        let local = match &self.query {
            Some(p) => {
                let s = QuerySpec::load(p)?;
                let h = s.hash();
                Some((p.clone(), s, h))
            }
            None => None,
        };
        let published = c.query_spec(id).await?;
        let view = view(
            published,
            local,
            q.specHash,
            |s: &QuerySpec| {
                let schema = schema.as_ref()?;
                s.compile(schema).ok().map(|k| k.to_fields())
            },
            q.constantsHash,
            QuerySpec::describe,
        )?;
        let result = QueryResult {
            records: 0,
            count: q.totalCount.to::<u64>(),
            sum: q.totalSum.to_string().parse()?,
            sum_squares: q.totalSumOfSquares.to_string().parse()?,
            suppressed: false,
        };
        let statistic = view.spec.as_ref().map(|s| s.statistic.clone());
        let column = schema
            .as_ref()
            .zip(statistic.as_deref())
            .and_then(|(s, name)| {
                let column = s.column(name)?;
                Some((column, s.unit(name)))
            });
        let mv = column.and_then(|(c, _)| c.natural_mean_variance(&result));
        let unit = column.and_then(|(_, u)| u);
        let decimals = column.map(|(c, _)| c.scale().max(1) as usize);
        emit(
            g,
            json!({"query_id": self.query_id, "sponsor": q.sponsor, "deadline": q.deadline, "targets": q.targets, "answered": q.answered, "suppressed": q.suppressed, "attestation": q.attestation, "declined": q.declined, "refunded": q.refunded, "accreditor": q.accreditor, "schema_hash": q.schemaHash, "schema_note": schema_note, "spec": view.json, "pooled": result, "statistic": statistic, "unit": unit, "mean_variance": mv, "mean": mv.map(|m| m.0), "sd": mv.map(|m| m.1.sqrt())}),
            || {
                if q.attestation {
                    // A verdict per answer: nothing is pooled.
                    println!(
                        "query #{} (an attestation): {} yes (paid), {} no (unpaid) of {} targets, deadline {}, refunded {}",
                        self.query_id, q.answered, q.declined, q.targets, q.deadline, q.refunded
                    );
                    for line in &view.lines {
                        println!("{line}");
                    }
                    return;
                }
                println!(
                    "query #{}: {}/{} answered ({} suppressed), deadline {}, refunded {}",
                    self.query_id, q.answered, q.targets, q.suppressed, q.deadline, q.refunded
                );
                for line in &view.lines {
                    println!("{line}");
                }
                println!(
                    "pooled: n = {}, sum = {}, sum² = {} (encoded units)",
                    result.count, result.sum, result.sum_squares
                );
                match (mv, &statistic, decimals) {
                    (Some((m, v)), Some(name), Some(d)) => {
                        println!("{}", pooled_line(result.count, name, unit, m, v, d))
                    }
                    _ if result.count == 0 => println!("no released patients yet"),
                    _ => {
                        if let Some(why) = schema_note.as_str() {
                            println!("(no natural units: {why})");
                        }
                    }
                }
            },
        );
        Ok(())
    }
}

/// The pooled result in natural units, the mean with the statistic's unit:
/// `33 patients: mean hba1c 7.90 % (sd 1.10)`.
fn pooled_line(
    count: u64,
    statistic: &str,
    unit: Option<&str>,
    mean: f64,
    variance: f64,
    decimals: usize,
) -> String {
    format!(
        "{count} patients: {}",
        words::mean_sd(statistic, unit, mean, variance.sqrt(), decimals)
    )
}

/// The published trial spec of `trial_id`, read back and checked against the posted criteria.
pub(crate) async fn trial_spec_view(
    c: &chain::Client,
    trial_id: zkcohort::Fr,
    status: &chain::TrialStatus,
    schema: Option<&PathBuf>,
) -> Result<SpecView<TrialSpec>> {
    let (schema, _) = schema_for(schema, status.schema_hash)?;
    let published = c.trial_spec(trial_id).await?;
    view(
        published,
        None,
        status.spec_hash,
        |s: &TrialSpec| {
            let schema = schema.as_ref()?;
            s.compile(schema).ok().map(|k| k.to_fields())
        },
        status.criteria_hash,
        TrialSpec::describe,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sponsor status` prints the pooled mean with the statistic's unit, as read from the
    /// schema (the built-in one falls back on its documented units).
    #[test]
    fn status_prints_the_pooled_mean_with_its_unit() {
        let schema = Schema::clinical_default();
        // 33 patients, sums in stored units (HbA1c at one decimal).
        let result = QueryResult {
            records: 0,
            count: 33,
            sum: 2606u32.into(),
            sum_squares: 209_820u32.into(),
            suppressed: false,
        };
        let column = schema.column("hba1c").unwrap();
        let (m, v) = column.natural_mean_variance(&result).unwrap();
        let d = column.scale().max(1) as usize;
        assert_eq!(
            pooled_line(result.count, "hba1c", schema.unit("hba1c"), m, v, d),
            "33 patients: mean hba1c 7.9 % (sd 1.1)"
        );
        assert_eq!(
            pooled_line(result.count, "sbp", Some("mmHg"), 132.25, 4.0, 1),
            "33 patients: mean sbp 132.2 mmHg (sd 2.0)"
        );
        assert_eq!(
            pooled_line(1, "x", None, 1.0, 0.0, 1),
            "1 patients: mean x 1.0 (sd 0.0)"
        );
    }
}
