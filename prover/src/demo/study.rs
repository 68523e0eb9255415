//! Act one's coda: a two-arm study across the hospitals (issue #13's `two_arm` template). The
//! sponsor posts one query per arm (the act's query, split by a categorical column), every
//! hospital proves and claims both, the market's verifier checks each proof, and the comparison
//! is computed from what the chain recorded (`Claimed` events, read with no key): the arms
//! pooled over the sites whose both arms were released, Welch's t, the per-site fixed effect,
//! and the sites left out by suppression named. It must equal the same study computed from
//! the hospitals' records.

use std::{collections::BTreeMap, path::PathBuf};

use alloy::primitives::{Address, U256};
use anyhow::{ensure, Result};
use halo2_base::halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG};
use serde::Serialize;

use super::say;
use crate::{
    audit,
    chain::{Client, FetchPolicy, HistoryReader},
    circuit::fast::record::FoldSchema,
    dataset::{CommittedDataset, FoldCommitmentInfo},
    keys::FoldKeys,
    proof,
    query::{evaluate, Criterion, QuerySpec},
    schema::Schema,
    study::{Moments, OnChainArms, TwoArm},
};

/// The study: a query (releasing the act's statistic, so the act's verifier serves) split into
/// two arms by a categorical column's two codes.
#[derive(Clone, Debug)]
pub struct Arms {
    /// The query both arms refine.
    pub query: PathBuf,
    /// The column (`sex`).
    pub column: String,
    /// The arms' codes (`["F", "M"]`), which also name them.
    pub codes: [String; 2],
}

impl Arms {
    /// The arm specs: `spec` with `column = code` added.
    pub fn specs(&self, spec: &QuerySpec) -> [QuerySpec; 2] {
        self.codes.clone().map(|code| {
            let mut arm = spec.clone();
            arm.name = format!("{} ({} {code})", spec.name, self.column);
            arm.criteria.insert(
                self.column.clone(),
                Criterion::Eq {
                    eq: serde_json::Value::String(code),
                },
            );
            arm
        })
    }
}

/// One hospital, as the study needs it.
pub struct Site<'a> {
    /// Display name.
    pub name: &'a str,
    /// Its custodian's client.
    pub client: &'a Client,
    /// Its committed dataset.
    pub data: &'a CommittedDataset,
    /// Its fold commitment.
    pub fold: &'a FoldCommitmentInfo,
    /// Its dataset id.
    pub dataset_id: U256,
}

/// What the study did.
#[derive(Clone, Debug, Serialize)]
pub struct StudyReport {
    /// The arms' query ids.
    pub query_ids: [U256; 2],
    /// The comparison from the chain's records.
    pub onchain: TwoArm,
    /// Names of the sites left out (a suppressed arm).
    pub suppressed_sites: Vec<String>,
    /// The comparison in words, as printed.
    pub lines: Vec<String>,
}

/// Posts the arms, proves and claims them at every site, and compares them from the chain.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    url: &str,
    sponsor: &Client,
    sites: &[Site<'_>],
    (keys, kzg): (&FoldKeys, &ParamsKZG<Bn256>),
    spec: &QuerySpec,
    arms: &Arms,
    (price, deadline, accreditor): (U256, u64, Address),
    quiet: bool,
) -> Result<StudyReport> {
    let schema = Schema::clinical_default();
    let base = QuerySpec::load(&arms.query)?;
    ensure!(
        base.statistic == spec.statistic,
        "the study's query releases `{}`, the act's verifier `{}`",
        base.statistic,
        spec.statistic
    );
    let spec = &base;
    let specs = arms.specs(spec);
    say(
        quiet,
        format!(
            "\n== Sponsor: a two-arm study, {} by `{}` ({} vs {}): one query per arm, every \
             hospital, pooled on-chain",
            spec.statistic, arms.column, arms.codes[0], arms.codes[1]
        ),
    );
    let compiled = [specs[0].compile(&schema)?, specs[1].compile(&schema)?];
    let ids: Vec<U256> = sites.iter().map(|s| s.dataset_id).collect();
    let mut query_ids = [U256::ZERO; 2];
    for (i, arm) in specs.iter().enumerate() {
        let constants = FoldSchema::of(&schema)?.query_constants(&compiled[i])?;
        let (id, posted) = sponsor
            .post_query(
                arm,
                &constants,
                &ids,
                Address::ZERO,
                price,
                deadline,
                accreditor,
            )
            .await?;
        query_ids[i] = id;
        say(
            quiet,
            format!("query #{id}: \"{}\" ({} gas)", arm.name, posted.gas_used),
        );
    }
    for site in sites {
        let mut outcome = Vec::new();
        for (arm, id) in specs.iter().zip(query_ids) {
            let binding = site
                .client
                .deployment
                .claim_binding(u64::try_from(id)?, site.client.account);
            let artifact =
                proof::fold::prove(keys, kzg, site.data, site.fold, arm, Some(&binding))?;
            site.client.claim(id, site.dataset_id, &artifact).await?;
            let r = &artifact.public.result;
            outcome.push(if r.suppressed {
                "suppressed".to_string()
            } else {
                format!("n = {}", artifact.public.nonmissing)
            });
        }
        say(
            quiet,
            format!(
                "{:<18} proved and claimed both arms: {} {}, {} {}",
                site.name, arms.codes[0], outcome[0], arms.codes[1], outcome[1]
            ),
        );
    }

    // The regulator's read (no key): the market's records of both queries.
    let reader =
        HistoryReader::connect(url, sponsor.deployment.clone(), FetchPolicy::default()).await?;
    let history = audit::market_history(&reader).await?;
    let read = OnChainArms::read(&history, query_ids.map(|id| id.to::<u64>()))?;
    ensure!(
        read.unpaired.is_empty(),
        "datasets {:?} answered one arm only",
        read.unpaired
    );
    let onchain = TwoArm::of_sites(&read.cells, &schema, &spec.statistic)?;

    // The same study from the records.
    let by_id: BTreeMap<u64, &Site<'_>> = sites
        .iter()
        .map(|s| (s.dataset_id.to::<u64>(), s))
        .collect();
    let native: Vec<[Option<Moments>; 2]> = read
        .datasets
        .iter()
        .map(|d| {
            let [a, b] = compiled.each_ref().map(|q| {
                let r = evaluate(&schema, &by_id[d].data.dataset.records, q);
                Moments::of_released(&r, r.count)
            });
            Ok([a?, b?])
        })
        .collect::<Result<_>>()?;
    let plain = TwoArm::of_sites(&native, &schema, &spec.statistic)?;
    ensure!(
        serde_json::to_value(&onchain)? == serde_json::to_value(&plain)?,
        "the study from the chain differs from the study of the records"
    );
    let names: Vec<String> = read
        .datasets
        .iter()
        .map(|d| by_id[d].name.to_string())
        .collect();
    let lines = onchain.describe([&arms.codes[0], &arms.codes[1]], &names);
    for line in &lines {
        say(quiet, line);
    }
    say(
        quiet,
        "   read from the chain's Claimed events (no key), equal to the same study of the records",
    );
    Ok(StudyReport {
        query_ids,
        suppressed_sites: onchain
            .suppressed
            .iter()
            .map(|&i| names[i].clone())
            .collect(),
        onchain,
        lines,
    })
}
