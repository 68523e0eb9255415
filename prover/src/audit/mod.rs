//! The regulator's audit: rebuilds a deployment's whole history from the chain alone (no key,
//! any RPC), re-verifies every accepted proof off-chain from its transaction's calldata,
//! reconciles the money, flags anomalies, and renders a report a person reads (Markdown or a
//! self-contained HTML page) or a machine reads (JSON).
//!
//! Two steps: [`collect`] reads the chain (logs in block ranges with retries, then the
//! transactions, timestamps, code and views the analysis needs) and [`analyse`] does the rest
//! offline; [`run`] does both. [`render`] turns an [`Audit`] into text. docs/audit.md lists
//! what is checked and what each finding means.

pub mod anomaly;
pub mod model;
pub mod money;
pub mod render;
pub mod reverify;
pub mod spec;
pub mod verifiers;
pub mod words;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
};

use alloy::primitives::{Address, Bytes, B256, U256};
use serde::{Serialize, Serializer};

pub use anomaly::{Anomaly, Kind, Severity};
pub use model::{Contract, History};
pub use money::Money;
pub use reverify::{Outcome, ProofCheck};
pub use verifiers::{ManifestCircuit, VerifierInfo};

use crate::{
    chain::{ChainError, Deployment, HistoryReader},
    keys::KeyStore,
    schema::Schema,
};
use model::word_hex;
use reverify::Calldata;
use spec::SpecCheck;
use words::Stats;

/// Version of the JSON report's layout.
pub const REPORT_VERSION: u32 = 1;

/// Errors of an audit. A proof that fails, or money that does not add up, is a finding, not an
/// error: errors are what stops the audit itself.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The chain could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A local file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A local file is not the JSON expected.
    #[error("{path}: {source}")]
    Json {
        /// File path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The block range is empty.
    #[error("--from-block {from} is after the last block {to}")]
    EmptyRange {
        /// First block asked for.
        from: u64,
        /// Last block.
        to: u64,
    },
}

fn opt_word<S: Serializer>(x: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(x) => s.collect_str(&word_hex(x)),
        None => s.serialize_none(),
    }
}

/// What part of the history a report shows. Everything is read and reconciled either way;
/// the filter selects the queries, trials and datasets shown (and the proofs re-verified).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Filter {
    /// One query.
    pub query: Option<u64>,
    /// Queries targeting, and trials enrolling from, one dataset.
    pub dataset: Option<u64>,
    /// One trial.
    #[serde(serialize_with = "opt_word")]
    pub trial: Option<U256>,
    /// Queries targeting, and trials enrolling from, the datasets one custodian holds or held.
    pub custodian: Option<Address>,
}

impl Filter {
    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.query.is_none()
            && self.dataset.is_none()
            && self.trial.is_none()
            && self.custodian.is_none()
    }

    fn dataset_ok(&self, h: &History, id: u64) -> bool {
        self.dataset.is_none_or(|d| d == id)
            && self.custodian.is_none_or(|c| {
                h.datasets
                    .get(&id)
                    .is_some_and(|d| d.custodians().contains(&c))
            })
    }

    /// Whether the query is shown.
    pub fn shows_query(&self, h: &History, q: &model::Query) -> bool {
        self.trial.is_none()
            && self.query.is_none_or(|id| id == q.id)
            && (self.dataset.is_none() && self.custodian.is_none()
                || q.targets.iter().any(|d| self.dataset_ok(h, *d)))
    }

    /// Whether the trial is shown.
    pub fn shows_trial(&self, h: &History, t: &model::Trial) -> bool {
        self.query.is_none()
            && self.trial.is_none_or(|id| id == t.id)
            && (self.dataset.is_none() && self.custodian.is_none()
                || t.enrolments.iter().any(|e| self.dataset_ok(h, e.dataset)))
    }

    /// Whether the dataset is shown.
    pub fn shows_dataset(&self, h: &History, d: &model::Dataset) -> bool {
        self.dataset_ok(h, d.id)
            && self.query.is_none_or(|id| {
                h.queries
                    .get(&id)
                    .is_some_and(|q| q.targets.contains(&d.id))
            })
            && self.trial.is_none_or(|id| {
                h.trial(id)
                    .is_some_and(|t| t.enrolments.iter().any(|e| e.dataset == d.id))
            })
    }
}

/// What to audit and with what knowledge.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// First block read (0: the whole history, so balances can be reconciled).
    pub from_block: u64,
    /// Last block read (default: the latest).
    pub to_block: Option<u64>,
    /// What the report shows.
    pub filter: Filter,
    /// Schemas the datasets may use (to read constants and re-derive verifying keys).
    pub schemas: Vec<Schema>,
    /// Circuits of the verifier manifest (names, and the params their verifiers record).
    pub manifest: Vec<ManifestCircuit>,
    /// Display names of addresses (custodians, sponsors, accreditors).
    pub names: BTreeMap<Address, String>,
}

/// What [`collect`] read from the chain.
#[derive(Clone, Debug)]
pub struct Collected {
    /// The deployment audited.
    pub deployment: Deployment,
    /// First block read.
    pub from_block: u64,
    /// Last block read; every view was read at this block.
    pub to_block: u64,
    /// Its timestamp.
    pub to_time: u64,
    /// The history its logs tell.
    pub history: History,
    /// The contracts' views at `to_block`.
    pub onchain: money::OnChain,
    /// Calldata of the transactions whose proofs are re-verified.
    pub calldata: HashMap<B256, Calldata>,
    /// Code of every verifier ever set or proposed, and of the deployment's verifiers.
    pub code: BTreeMap<Address, Bytes>,
}

/// The market's history from block 0 to the head, from its logs alone (queries, their published
/// specs and their claims with the released values; no block times, no balances): what a
/// study over market queries reads ([`crate::study::OnChainArms`]).
pub async fn market_history(reader: &HistoryReader) -> Result<History, AuditError> {
    let head = reader.head().await?;
    let logs = reader
        .logs(&[reader.deployment.market], 0, head, |_| {})
        .await?;
    Ok(History::from_logs(&reader.deployment, &logs, |_| 0))
}

/// Reads everything an audit needs from the chain. Progress goes to a spinner on stderr.
pub async fn collect(reader: &HistoryReader, opts: &Options) -> Result<Collected, AuditError> {
    let deployment = reader.deployment.clone();
    let head = reader.head().await?;
    let to = opts.to_block.unwrap_or(head).min(head);
    if opts.from_block > to {
        return Err(AuditError::EmptyRange {
            from: opts.from_block,
            to,
        });
    }
    let bar =
        crate::progress::spinner(format!("reading logs of blocks {}..={to}", opts.from_block));
    let addresses = [
        deployment.market,
        deployment.trials,
        deployment.registry,
        deployment.accreditations,
    ];
    let logs = reader
        .logs(&addresses, opts.from_block, to, |b| {
            bar.set_message(format!("reading logs: block {b} of {to}"))
        })
        .await?;
    tracing::info!(logs = logs.len(), from = opts.from_block, to, "logs read");

    let blocks: BTreeSet<u64> = logs
        .iter()
        .filter_map(|l| l.block_number)
        .chain([to])
        .collect();
    let mut times = BTreeMap::new();
    for (i, b) in blocks.iter().enumerate() {
        bar.set_message(format!("block timestamps: {}/{}", i + 1, blocks.len()));
        times.insert(*b, reader.block_timestamp(*b).await?);
    }
    let history = History::from_logs(&deployment, &logs, |b| times.get(&b).copied().unwrap_or(0));

    bar.set_message("reading the markets' state");
    let mut onchain = money::OnChain::default();
    for q in history.queries.values() {
        let id = U256::from(q.id);
        onchain
            .query_locked
            .insert(q.id, reader.query_locked(id, to).await?);
        let s = reader.query(id, to).await?;
        onchain.query_state.insert(
            q.id,
            money::QueryState {
                answered: s.answered,
                declined: s.declined,
                suppressed: s.suppressed,
                total_count: s.totalCount,
                total_nonmissing: s.totalCount - s.totalMissing,
                total_sum: s.totalSum,
                total_sum_squares: s.totalSumOfSquares,
                refunded: s.refunded,
            },
        );
    }
    for t in &history.trials {
        onchain
            .trial_locked
            .insert(t.id, reader.trial_locked(t.id, to).await?);
        onchain
            .trial_enrolled
            .insert(t.id, reader.trial(t.id, to).await?.enrolled);
    }
    let (parties, tokens) = money::parties(&history);
    for (market, token, account) in parties {
        let address = market.address(&deployment);
        let p = reader.pending(address, token, account, to).await?;
        onchain.pending.insert((market, token, account), p);
    }
    for (market, token) in tokens {
        let b = reader
            .balance(market.address(&deployment), token, to)
            .await?;
        onchain.balances.insert((market, token), b);
    }

    let txs: BTreeSet<B256> = history
        .queries
        .values()
        .filter(|q| opts.filter.shows_query(&history, q))
        .flat_map(|q| q.claims.iter().map(|c| c.at.tx))
        .chain(
            history
                .trials
                .iter()
                .filter(|t| opts.filter.shows_trial(&history, t))
                .flat_map(|t| t.enrolments.iter().map(|e| e.at.tx)),
        )
        .collect();
    let mut calldata = HashMap::new();
    for (i, tx) in txs.iter().enumerate() {
        bar.set_message(format!("proof transactions: {}/{}", i + 1, txs.len()));
        if let Some((to, input)) = reader.transaction(*tx).await? {
            calldata.insert(*tx, Calldata { to, input });
        }
    }

    let verifiers: BTreeSet<Address> = history
        .verifier_events
        .iter()
        .filter_map(|e| match e.change {
            model::VerifierChange::Set { verifier, .. }
            | model::VerifierChange::Proposed { verifier, .. } => Some(verifier),
            model::VerifierChange::Cancelled => None,
        })
        .chain(deployment.verifiers.values().copied())
        .filter(|a| !a.is_zero())
        .collect();
    let mut code = BTreeMap::new();
    for a in verifiers {
        bar.set_message(format!("verifier code: {a}"));
        code.insert(a, reader.code(a, to).await?);
    }
    bar.finish_and_clear();
    Ok(Collected {
        deployment,
        from_block: opts.from_block,
        to_block: to,
        to_time: times.get(&to).copied().unwrap_or(0),
        history,
        onchain,
        calldata,
        code,
    })
}

/// One dataset's answer to a query, in natural units.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// The dataset.
    pub dataset: u64,
    /// Its custodian.
    pub custodian: Address,
    /// Records it committed (when its registration was read).
    pub records: Option<u64>,
    /// Block of its registration (commitment).
    pub committed_at: Option<u64>,
    /// Whether the answer was suppressed.
    pub suppressed: bool,
    /// An attestation's verdict (then `stats` is `None`: nothing else is released).
    pub verdict: Option<bool>,
    /// Count, mean and sd of the statistic (released answers).
    pub stats: Option<Stats>,
    /// The claim's transaction.
    pub tx: B256,
    /// Index of its re-verification in [`Audit::proofs`].
    pub proof: Option<usize>,
}

/// A query as a person reads it.
#[derive(Clone, Debug, Serialize)]
pub struct QueryView {
    /// Query id.
    pub id: u64,
    /// The spec's name, when the spec was published.
    pub name: Option<String>,
    /// The targets' schema, when known.
    pub schema: Option<String>,
    /// The criteria in words (from the posted constants).
    pub criteria: Option<String>,
    /// The statistic's column.
    pub statistic: Option<String>,
    /// Its unit (the schema's, see [`Schema::unit`]), when known.
    pub unit: Option<String>,
    /// Its decimal places.
    pub scale: u32,
    /// The minimum cohort (the last constant).
    pub min_cohort: Option<u64>,
    /// The published spec, checked.
    pub spec: SpecCheck,
    /// Each answer.
    pub answers: Vec<Answer>,
    /// Pooled over the released answers whose proofs did not fail re-verification (from
    /// their counts, sums and sums of squares).
    pub pooled: Option<Stats>,
    /// Released answers pooled.
    pub pooled_sites: usize,
    /// Released answers left out of the pool because their proof fails off-chain (or
    /// disagrees with its events).
    pub pooled_left_out: usize,
}

/// A trial as a person reads it.
#[derive(Clone, Debug, Serialize)]
pub struct TrialView {
    /// Trial id.
    #[serde(serialize_with = "model::hex_word")]
    pub id: U256,
    /// The spec's name, when the spec was published.
    pub name: Option<String>,
    /// The criteria in words (from the posted constants).
    pub criteria: Option<String>,
    /// The published spec, checked.
    pub spec: SpecCheck,
    /// Enrolments per dataset.
    pub per_dataset: BTreeMap<u64, usize>,
    /// Indexes of its proofs' re-verification in [`Audit::proofs`].
    pub proofs: Vec<usize>,
}

/// Counts for the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Every event read, per kind.
    pub events: BTreeMap<String, u64>,
    /// Proofs re-verified off-chain.
    pub proofs: usize,
    /// Of which verified.
    pub verified: usize,
    /// Of which failed (or disagreeing with their events).
    pub failed: usize,
    /// Of which could not be checked.
    pub unchecked: usize,
    /// Whether every checked sum adds up.
    pub money_reconciles: bool,
    /// Critical findings shown.
    pub critical: usize,
    /// Warnings shown.
    pub warnings: usize,
    /// Notices shown.
    pub notices: usize,
}

/// The audit's result: the history, the re-verifications, the reconciliation, the findings.
#[derive(Clone, Debug, Serialize)]
pub struct Audit {
    /// Layout version of this JSON.
    pub version: u32,
    /// The deployment audited.
    pub deployment: Deployment,
    /// First block read.
    pub from_block: u64,
    /// Last block read.
    pub to_block: u64,
    /// Its timestamp.
    pub to_time: u64,
    /// What is shown.
    pub filter: Filter,
    /// Summary counts.
    pub summary: Summary,
    /// Findings, most serious first.
    pub anomalies: Vec<Anomaly>,
    /// Shown queries, in words.
    pub queries: Vec<QueryView>,
    /// Shown trials, in words.
    pub trials: Vec<TrialView>,
    /// Re-verification of every shown proof.
    pub proofs: Vec<ProofCheck>,
    /// The money.
    pub money: Money,
    /// Verifiers of both markets.
    pub verifiers: Vec<VerifierInfo>,
    /// Display names.
    pub names: BTreeMap<Address, String>,
    /// Everything the logs tell.
    pub history: History,
    /// Schemas known to the auditor (to render constants in words).
    #[serde(skip)]
    pub schemas: Vec<Schema>,
}

impl Audit {
    /// The schema with this hash, if known.
    pub fn schema(&self, hash: B256) -> Option<&Schema> {
        self.schemas.iter().find(|s| B256::from(s.hash()) == hash)
    }

    /// Findings at or above `severity`.
    pub fn findings(&self, severity: Severity) -> impl Iterator<Item = &Anomaly> {
        self.anomalies
            .iter()
            .filter(move |a| a.severity <= severity)
    }

    /// The display name of an address, if one was given.
    pub fn name(&self, a: Address) -> Option<&str> {
        self.names.get(&a).map(String::as_str)
    }
}

fn query_schema<'a>(h: &History, q: &model::Query, schemas: &'a [Schema]) -> Option<&'a Schema> {
    let hash = q
        .targets
        .iter()
        .find_map(|d| h.datasets.get(d))
        .map(|d| d.schema_hash)?;
    schemas.iter().find(|s| B256::from(s.hash()) == hash)
}

/// Analyses what [`collect`] read: re-verifies the shown proofs with verifying keys derived
/// from `store`'s params, reconciles the money, and lists the findings. CPU-bound (one proof
/// verification per claim or enrolment transaction).
pub fn analyse(c: &Collected, store: &KeyStore, opts: &Options) -> Audit {
    let h = &c.history;
    let d = &c.deployment;
    let mut ids: Vec<String> = d.verifiers.keys().cloned().collect();
    ids.extend(opts.manifest.iter().map(|m| m.circuit_id.clone()));
    ids.sort();
    ids.dedup();
    let names = verifiers::circuit_names(&ids);
    let recorded = opts
        .manifest
        .iter()
        .filter_map(|m| Some((m.circuit_id.clone(), m.vk_hash.clone()?)))
        .collect();
    let mut keys = reverify::Keys::new(store, &opts.schemas, &ids, recorded);
    let money = money::reconcile(h, &c.onchain);
    let complete = c.from_block == 0;

    let mut anomalies = anomaly::budgets(h, &names, &opts.schemas);
    let mut proofs = Vec::new();
    let mut queries = Vec::new();
    let shown: Vec<&model::Query> = h
        .queries
        .values()
        .filter(|q| opts.filter.shows_query(h, q))
        .collect();
    let shown_trials: Vec<&model::Trial> = h
        .trials
        .iter()
        .filter(|t| opts.filter.shows_trial(h, t))
        .collect();
    let total = shown.iter().map(|q| q.claims.len()).sum::<usize>()
        + shown_trials
            .iter()
            .map(|t| t.enrolments.len())
            .sum::<usize>();
    let bar = crate::progress::spinner(format!("re-verifying the proofs of {total} payments"));
    for q in shown {
        let schema = query_schema(h, q, &opts.schemas);
        let spec = spec::query(q.spec.as_ref(), q.spec_hash, &q.constants, schema);
        anomalies.extend(anomaly::query(
            h,
            q,
            schema,
            &spec,
            c.onchain.query_state.get(&q.id),
            complete,
        ));
        bar.set_message(format!("re-verifying the claims of query #{}", q.id));
        let first = proofs.len();
        proofs.extend(reverify::claims(
            d.chain_id,
            h,
            q,
            d.market,
            &c.calldata,
            &mut keys,
        ));
        queries.push(query_view(h, q, schema, spec, first, &proofs[first..]));
    }
    let mut trials = Vec::new();
    for t in shown_trials {
        let schema = opts
            .schemas
            .iter()
            .find(|s| B256::from(s.hash()) == t.schema_hash);
        let spec = spec::trial(t.spec.as_ref(), t.spec_hash, &t.criteria, schema);
        anomalies.extend(anomaly::trial(
            h,
            t,
            &spec,
            c.onchain.trial_enrolled.get(&t.id).copied(),
            complete,
        ));
        bar.set_message(format!(
            "re-verifying the enrolments of trial {}",
            words::short_word(t.id)
        ));
        let first = proofs.len();
        proofs.extend(reverify::enrolments(h, t, d.trials, &c.calldata, &mut keys));
        let mut per_dataset = BTreeMap::new();
        for e in &t.enrolments {
            *per_dataset.entry(e.dataset).or_default() += 1;
        }
        trials.push(TrialView {
            id: t.id,
            name: spec.name.clone(),
            criteria: schema.and_then(|s| {
                words::trial_criteria(s, &t.criteria).map(|k| words::trial_words(s, &k))
            }),
            spec,
            per_dataset,
            proofs: (first..proofs.len()).collect(),
        });
    }
    bar.finish_and_clear();
    anomalies.extend(anomaly::proofs(&proofs));
    anomalies.extend(anomaly::money(&money));
    anomalies.extend(anomaly::bookkeeping(h));
    let verifier_infos = verifiers::catalogue(h, d, &names, &opts.manifest, &c.code);
    anomalies.extend(verifiers::anomalies(h, &verifier_infos, d.chain_id));

    // Only findings about what is shown (global ones always).
    anomalies.retain(|a| {
        a.query.is_none_or(|id| {
            h.queries
                .get(&id)
                .is_some_and(|q| opts.filter.shows_query(h, q))
        }) && a
            .trial
            .is_none_or(|id| h.trial(id).is_some_and(|t| opts.filter.shows_trial(h, t)))
            && (a.query.is_some()
                || a.trial.is_some()
                || a.dataset.is_none_or(|id| {
                    h.datasets
                        .get(&id)
                        .is_some_and(|ds| opts.filter.shows_dataset(h, ds))
                }))
    });
    anomalies.sort_by_key(|a| (a.severity, a.block, a.kind));
    anomalies.dedup();

    let count = |s| anomalies.iter().filter(|a| a.severity == s).count();
    let summary = Summary {
        events: h.counts.clone(),
        proofs: proofs.len(),
        verified: proofs.iter().filter(|p| p.verified()).count(),
        failed: proofs
            .iter()
            .filter(|p| {
                matches!(
                    p.outcome,
                    Outcome::Failed { .. } | Outcome::Disagrees { .. }
                )
            })
            .count(),
        unchecked: proofs
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::NotChecked { .. }))
            .count(),
        money_reconciles: money.reconciles(),
        critical: count(Severity::Critical),
        warnings: count(Severity::Warning),
        notices: count(Severity::Notice),
    };
    Audit {
        version: REPORT_VERSION,
        deployment: d.clone(),
        from_block: c.from_block,
        to_block: c.to_block,
        to_time: c.to_time,
        filter: opts.filter.clone(),
        summary,
        anomalies,
        queries,
        trials,
        proofs,
        money,
        verifiers: verifier_infos,
        names: opts.names.clone(),
        history: h.clone(),
        schemas: opts.schemas.clone(),
    }
}

fn query_view(
    h: &History,
    q: &model::Query,
    schema: Option<&Schema>,
    spec: SpecCheck,
    first_proof: usize,
    checks: &[ProofCheck],
) -> QueryView {
    let constants = schema
        .and_then(|s| words::query_constants(s, &q.constants))
        .or_else(|| spec.query.clone());
    let column = schema
        .zip(constants.as_ref())
        .and_then(|(s, k)| words::statistic_column(s, k.statistic));
    let scale = column.map_or(0, words::scale_of);
    let answers: Vec<Answer> = q
        .claims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let d = h.datasets.get(&c.dataset);
            Answer {
                dataset: c.dataset,
                custodian: c.custodian,
                records: d.map(|d| d.record_count),
                committed_at: d.map(|d| d.registered.block),
                suppressed: c.suppressed,
                verdict: c.verdict,
                stats: if c.suppressed || c.verdict.is_some() {
                    None
                } else {
                    words::stats(column, c.nonmissing, c.sum, c.sum_squares)
                },
                tx: c.at.tx,
                proof: Some(first_proof + i),
            }
        })
        .collect();
    let failed = |i: usize| {
        checks.get(i).is_some_and(|p| {
            matches!(
                p.outcome,
                Outcome::Failed { .. } | Outcome::Disagrees { .. }
            )
        })
    };
    let released: Vec<&model::Claim> = q
        .claims
        .iter()
        .enumerate()
        .filter(|(i, c)| !c.suppressed && c.verdict.is_none() && !failed(*i))
        .map(|(_, c)| c)
        .collect();
    let left_out = q
        .claims
        .iter()
        .enumerate()
        .filter(|(i, c)| !c.suppressed && c.verdict.is_none() && failed(*i))
        .count();
    let total = |f: fn(&model::Claim) -> U256| released.iter().map(|c| f(c)).sum::<U256>();
    QueryView {
        id: q.id,
        name: spec.name.clone(),
        schema: schema.map(|s| s.name.clone()),
        criteria: schema
            .zip(constants.as_ref())
            .map(|(s, k)| words::query_words(s, k)),
        statistic: column.map(|c| c.name.clone()),
        unit: schema
            .zip(column)
            .and_then(|(s, c)| s.unit(&c.name))
            .map(str::to_owned),
        scale,
        min_cohort: q.constants.last().and_then(|x| u64::try_from(*x).ok()),
        spec,
        answers,
        pooled: words::stats(
            column,
            total(|c| c.nonmissing),
            total(|c| c.sum),
            total(|c| c.sum_squares),
        ),
        pooled_sites: released.len(),
        pooled_left_out: left_out,
    }
}

/// [`collect`] then [`analyse`].
pub async fn run(
    reader: &HistoryReader,
    store: &KeyStore,
    opts: &Options,
) -> Result<Audit, AuditError> {
    let collected = collect(reader, opts).await?;
    Ok(analyse(&collected, store, opts))
}
