//! Findings: what an auditor should look at, from a forged proof to a refund that does not add
//! up. Each has a severity, a kind (explained in docs/audit.md) and a message in plain words.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, B256, U256};
use serde::{Serialize, Serializer};

use super::{
    model::{word_hex, At, Contract, History, Query, Trial},
    money::Money,
    reverify::{Outcome, ProofCheck},
    spec::SpecCheck,
    words,
};
use crate::{circuit::fast::record::FoldSchema, keys::FoldSpec, schema::Schema};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The chain's record cannot be trusted as it stands (a forged or unverifiable statement,
    /// money missing, a rule of the protocol broken).
    Critical,
    /// Something to look into (a proof that could not be re-checked, an unknown verifier, a
    /// claim against a retired dataset).
    Warning,
    /// Worth knowing, not wrong (a verifier change with notice, development params on a local
    /// chain).
    Notice,
}

impl Severity {
    /// Its name in a report.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }
}

/// What kind of finding (see docs/audit.md for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A proof the chain accepted does not verify off-chain with its circuit's verifying key.
    ProofFailsOffChain,
    /// A proof could not be re-verified (calldata not a direct market call, unknown circuit or
    /// schema).
    ProofNotReverified,
    /// A transaction's calldata disagrees with the events it emitted.
    CalldataDisagrees,
    /// A published spec document does not hash to the posted spec hash.
    SpecHashMismatch,
    /// A published spec document does not compile to the posted constants.
    SpecConstantsMismatch,
    /// A published spec document cannot be read as a spec.
    SpecUnreadable,
    /// A query was answered for a dataset its custodian had retired.
    ClaimAgainstRetiredDataset,
    /// A patient was enrolled from a retired dataset.
    EnrolmentAgainstRetiredDataset,
    /// An answer is marked suppressed yet releases numbers.
    SuppressionInconsistent,
    /// An answer releases a cohort smaller than the query's minimum or the custodian's floor.
    SmallCellReleased,
    /// Released statistics no dataset could produce (more patients than records, a variance
    /// below zero, a mean beyond the column's range).
    ImpossibleStatistics,
    /// A claim or enrolment after its deadline.
    AfterDeadline,
    /// A commit-and-prove dataset answered more claims than its commitment's query budget:
    /// its data columns were opened often enough that its records may no longer be hidden.
    QueryBudgetExceeded,
    /// A custodian was paid while the named accreditor did not attest it.
    UnaccreditedCustodianPaid,
    /// A claim for a dataset the query did not target, twice for one dataset, or paid to an
    /// address that was not the dataset's custodian at the time.
    ClaimNotAllowed,
    /// One patient (nullifier) enrolled twice in a trial.
    DoubleEnrolment,
    /// A verifier built from the insecure development params.
    DevParamsVerifier,
    /// A circuit is checked by the verifier of another circuit.
    VerifierOfAnotherCircuit,
    /// A verifier whose code is none of the deployment's.
    UnrecognisedVerifier,
    /// A verifier was set without a proposal whose notice period had run out.
    VerifierWithoutNotice,
    /// A verifier for a new circuit was added after deployment, with notice.
    VerifierAdded,
    /// A verifier was replaced, with notice.
    VerifierReplaced,
    /// A verifier was removed (the emergency stop).
    VerifierRemoved,
    /// Escrow, credits or balances do not add up.
    MoneyMismatch,
    /// A market holds more than it owes.
    BalanceSurplus,
    /// The market's stored counters or pooled results differ from its events.
    ResultsDisagree,
    /// A `ProofAccepted` without the claim or enrolment it should have paid, or the reverse.
    UnmatchedProof,
    /// An event that refers to something before the first block read.
    UnplacedEvent,
}

impl Kind {
    /// A short title.
    pub fn title(self) -> &'static str {
        match self {
            Kind::ProofFailsOffChain => "proof accepted on-chain fails off-chain",
            Kind::ProofNotReverified => "proof not re-verified",
            Kind::CalldataDisagrees => "calldata disagrees with the events",
            Kind::SpecHashMismatch => "spec does not match its hash",
            Kind::SpecConstantsMismatch => "spec does not match the posted constants",
            Kind::SpecUnreadable => "published spec unreadable",
            Kind::ClaimAgainstRetiredDataset => "claim against a retired dataset",
            Kind::EnrolmentAgainstRetiredDataset => "enrolment from a retired dataset",
            Kind::SuppressionInconsistent => "suppression that is not one",
            Kind::SmallCellReleased => "small cell released",
            Kind::ImpossibleStatistics => "impossible statistics",
            Kind::AfterDeadline => "after the deadline",
            Kind::QueryBudgetExceeded => "query budget exceeded",
            Kind::UnaccreditedCustodianPaid => "unaccredited custodian paid",
            Kind::ClaimNotAllowed => "claim not allowed",
            Kind::DoubleEnrolment => "patient enrolled twice",
            Kind::DevParamsVerifier => "verifier from development params",
            Kind::VerifierOfAnotherCircuit => "verifier of another circuit",
            Kind::UnrecognisedVerifier => "unrecognised verifier",
            Kind::VerifierWithoutNotice => "verifier changed without notice",
            Kind::VerifierAdded => "verifier added",
            Kind::VerifierReplaced => "verifier replaced",
            Kind::VerifierRemoved => "verifier removed",
            Kind::MoneyMismatch => "money does not add up",
            Kind::BalanceSurplus => "unaccounted surplus",
            Kind::ResultsDisagree => "stored results disagree with events",
            Kind::UnmatchedProof => "unmatched proof",
            Kind::UnplacedEvent => "event outside the blocks read",
        }
    }
}

fn opt_word<S: Serializer>(x: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(x) => s.collect_str(&word_hex(x)),
        None => s.serialize_none(),
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Anomaly {
    /// How serious.
    pub severity: Severity,
    /// What kind.
    pub kind: Kind,
    /// The query concerned.
    pub query: Option<u64>,
    /// The trial concerned.
    #[serde(serialize_with = "opt_word")]
    pub trial: Option<U256>,
    /// The dataset concerned.
    pub dataset: Option<u64>,
    /// The transaction concerned.
    pub tx: Option<B256>,
    /// Its block.
    pub block: Option<u64>,
    /// What is wrong, in words.
    pub message: String,
}

impl Anomaly {
    fn at(severity: Severity, kind: Kind, at: Option<At>, message: String) -> Self {
        Anomaly {
            severity,
            kind,
            query: None,
            trial: None,
            dataset: None,
            tx: at.map(|a| a.tx),
            block: at.map(|a| a.block),
            message,
        }
    }

    fn query(mut self, id: u64) -> Self {
        self.query = Some(id);
        self
    }

    fn trial(mut self, id: U256) -> Self {
        self.trial = Some(id);
        self
    }

    fn dataset(mut self, id: u64) -> Self {
        self.dataset = Some(id);
        self
    }
}

/// Findings of the off-chain re-verification.
pub fn proofs(checks: &[ProofCheck]) -> Vec<Anomaly> {
    checks
        .iter()
        .filter_map(|c| {
            let (severity, kind, message) = match &c.outcome {
                Outcome::Verified => return None,
                Outcome::Failed { reason } => (
                    Severity::Critical,
                    Kind::ProofFailsOffChain,
                    format!(
                        "the {} accepted this proof (verifier {}), but it does not verify \
                         off-chain: {reason}",
                        c.market.name(),
                        c.verifier.map_or("unknown".into(), |v| v.to_string())
                    ),
                ),
                Outcome::Disagrees { reason } => {
                    (Severity::Critical, Kind::CalldataDisagrees, reason.clone())
                }
                Outcome::NotChecked { reason } => {
                    (Severity::Warning, Kind::ProofNotReverified, reason.clone())
                }
            };
            Some(Anomaly {
                severity,
                kind,
                query: c.query,
                trial: c.trial,
                dataset: c.dataset,
                tx: Some(c.tx),
                block: Some(c.block),
                message,
            })
        })
        .collect()
}

/// Whether `accreditor` attested `custodian` just before `at`, replaying the registry's events.
fn accredited(h: &History, accreditor: Address, custodian: Address, at: At) -> bool {
    h.accreditations
        .iter()
        .rfind(|a| a.accreditor == accreditor && a.custodian == custodian && a.at < at)
        .is_some_and(|a| a.granted)
}

/// The custodian's cell floor just before `at`.
fn floor(h: &History, custodian: Address, at: At) -> u64 {
    h.cell_floors
        .iter()
        .rfind(|f| f.custodian == custodian && f.at < at)
        .map_or(0, |f| f.floor)
}

/// Findings about one query: its spec, and each answer (retired dataset, deadline, targets,
/// accreditation, suppression, cell size, plausibility), and the market's stored totals.
/// `complete`: the registries' whole history was read (accreditations can be replayed).
pub fn query(
    h: &History,
    q: &Query,
    schema: Option<&Schema>,
    spec: &SpecCheck,
    state: Option<&super::money::QueryState>,
    complete: bool,
) -> Vec<Anomaly> {
    let mut out = spec_findings(spec, Some(q.posted))
        .into_iter()
        .map(|a| a.query(q.id))
        .collect::<Vec<_>>();
    let constants = schema
        .and_then(|s| words::query_constants(s, &q.constants))
        .or_else(|| spec.query.clone());
    let min_cohort = q.constants.last().copied().unwrap_or_default();
    let mut answered = BTreeSet::new();
    for c in &q.claims {
        let find = |severity, kind, message: String| {
            Anomaly::at(severity, kind, Some(c.at), message)
                .query(q.id)
                .dataset(c.dataset)
        };
        let d = h.datasets.get(&c.dataset);
        if let Some(retired) = d.and_then(|d| d.retired).filter(|r| *r < c.at) {
            out.push(find(
                Severity::Warning,
                Kind::ClaimAgainstRetiredDataset,
                format!(
                    "dataset #{} answered query #{} at block {} after its custodian retired it at block {}",
                    c.dataset, q.id, c.at.block, retired.block
                ),
            ));
        }
        if c.at.time > q.deadline {
            out.push(find(
                Severity::Critical,
                Kind::AfterDeadline,
                format!(
                    "claimed at {} after the deadline {}",
                    words::utc(c.at.time),
                    words::utc(q.deadline)
                ),
            ));
        }
        if !q.targets.contains(&c.dataset) || !answered.insert(c.dataset) {
            out.push(find(
                Severity::Critical,
                Kind::ClaimNotAllowed,
                format!(
                    "dataset #{} is not a target of query #{} or answered it twice",
                    c.dataset, q.id
                ),
            ));
        }
        if let Some(d) = d {
            // Whoever was the custodian when the claim was made is paid (a rotation later on
            // does not move past payments).
            let then = d.custodian_at(c.at);
            if then != c.custodian {
                out.push(find(
                    Severity::Critical,
                    Kind::ClaimNotAllowed,
                    format!(
                        "{} was paid for dataset #{}, whose custodian then was {then}",
                        c.custodian, d.id
                    ),
                ));
            }
        }
        if complete && !q.accreditor.is_zero() && !accredited(h, q.accreditor, c.custodian, c.at) {
            out.push(find(
                Severity::Critical,
                Kind::UnaccreditedCustodianPaid,
                format!(
                    "{} was paid though the query's accreditor {} did not attest it then",
                    c.custodian, q.accreditor
                ),
            ));
        }
        // An attestation releases a verdict, no numbers (its event carries none).
        let released = !c.suppressed && c.verdict.is_none();
        if c.suppressed
            && (!c.count.is_zero()
                || !c.nonmissing.is_zero()
                || !c.sum.is_zero()
                || !c.sum_squares.is_zero())
        {
            out.push(find(
                Severity::Critical,
                Kind::SuppressionInconsistent,
                format!(
                    "the answer is marked suppressed yet releases n = {} ({} with the statistic), \
                     sum {}, sum of squares {}",
                    c.count, c.nonmissing, c.sum, c.sum_squares
                ),
            ));
        }
        let cell_floor = U256::from(floor(h, c.custodian, c.at));
        if released && !c.count.is_zero() && (c.count < min_cohort || c.count < cell_floor) {
            out.push(find(
                Severity::Critical,
                Kind::SmallCellReleased,
                format!(
                    "released a cohort of {} patients, below the query's minimum of {min_cohort}{}: \
                     it should have been suppressed",
                    c.count,
                    if cell_floor > U256::ZERO {
                        format!(" or the custodian's floor of {cell_floor}")
                    } else {
                        String::new()
                    }
                ),
            ));
        } else if min_cohort < cell_floor {
            out.push(find(
                Severity::Critical,
                Kind::SmallCellReleased,
                format!(
                    "the query's minimum cohort {min_cohort} is below the custodian's floor {cell_floor}"
                ),
            ));
        }
        if released {
            let mut impossible = Vec::new();
            if let Some(d) = d {
                if c.count > U256::from(d.record_count) {
                    impossible.push(format!(
                        "{} patients from {} records",
                        c.count, d.record_count
                    ));
                }
            }
            if c.nonmissing > c.count {
                impossible.push(format!(
                    "{} patients with the statistic among {} matching",
                    c.nonmissing, c.count
                ));
            }
            // The sums run over the records whose statistic is not missing.
            if c.sum * c.sum > c.nonmissing * c.sum_squares {
                impossible.push("a negative variance (sum² > n · sum of squares)".into());
            }
            let max = schema
                .zip(constants.as_ref())
                .and_then(|(s, k)| words::statistic_column(s, k.statistic))
                .map(|col| U256::from(col.max_value()));
            if let Some(max) = max {
                if c.sum > c.nonmissing * max {
                    impossible.push("a mean above the column's largest value".into());
                }
            }
            if c.nonmissing.is_zero() && !(c.sum.is_zero() && c.sum_squares.is_zero()) {
                impossible.push("sums over no patients".into());
            }
            if !impossible.is_empty() {
                out.push(find(
                    Severity::Critical,
                    Kind::ImpossibleStatistics,
                    format!("the released result shows {}", impossible.join(", ")),
                ));
            }
        }
    }
    if let Some(s) = state {
        let released = q.claims.iter().filter(|c| !c.suppressed);
        let sum = |f: fn(&super::model::Claim) -> U256| released.clone().map(f).sum::<U256>();
        let events = super::money::QueryState {
            answered: q.claims.iter().filter(|c| c.verdict != Some(false)).count() as u32,
            declined: q.claims.iter().filter(|c| c.verdict == Some(false)).count() as u32,
            suppressed: q.claims.iter().filter(|c| c.suppressed).count() as u32,
            total_count: sum(|c| c.count),
            total_nonmissing: sum(|c| c.nonmissing),
            total_sum: sum(|c| c.sum),
            total_sum_squares: sum(|c| c.sum_squares),
            refunded: q.refund.is_some(),
        };
        if *s != events {
            out.push(
                Anomaly::at(
                    Severity::Critical,
                    Kind::ResultsDisagree,
                    Some(q.posted),
                    format!(
                        "the market stores {}/{} answered ({} suppressed), pooled n {} (non-missing {}) \
                         sum {} sum² {}, refunded {}; its events add up to {}/{} ({}), n {} \
                         (non-missing {}) sum {} sum² {}, refunded {}",
                        s.answered, q.targets.len(), s.suppressed, s.total_count,
                        s.total_nonmissing, s.total_sum, s.total_sum_squares, s.refunded,
                        events.answered, q.targets.len(), events.suppressed, events.total_count,
                        events.total_nonmissing, events.total_sum, events.total_sum_squares,
                        events.refunded
                    ),
                )
                .query(q.id),
            );
        }
    }
    out
}

/// Findings about one trial: its spec, and each enrolment (retired dataset, deadline,
/// accreditation, double enrolment), and the market's stored count.
pub fn trial(
    h: &History,
    t: &Trial,
    spec: &SpecCheck,
    enrolled_onchain: Option<u32>,
    complete: bool,
) -> Vec<Anomaly> {
    let mut out = spec_findings(spec, Some(t.opened))
        .into_iter()
        .map(|a| a.trial(t.id))
        .collect::<Vec<_>>();
    let mut seen = BTreeSet::new();
    for e in &t.enrolments {
        let find = |severity, kind, message: String| {
            Anomaly::at(severity, kind, Some(e.at), message)
                .trial(t.id)
                .dataset(e.dataset)
        };
        if let Some(retired) = h
            .datasets
            .get(&e.dataset)
            .and_then(|d| d.retired)
            .filter(|r| *r < e.at)
        {
            out.push(find(
                Severity::Critical,
                Kind::EnrolmentAgainstRetiredDataset,
                format!(
                    "a patient of dataset #{} was enrolled at block {}, after the dataset was retired at block {}",
                    e.dataset, e.at.block, retired.block
                ),
            ));
        }
        if e.at.time > t.deadline {
            out.push(find(
                Severity::Critical,
                Kind::AfterDeadline,
                format!(
                    "enrolled at {} after the deadline {}",
                    words::utc(e.at.time),
                    words::utc(t.deadline)
                ),
            ));
        }
        if !seen.insert(e.nullifier) {
            out.push(find(
                Severity::Critical,
                Kind::DoubleEnrolment,
                format!(
                    "nullifier {} was enrolled (and paid) twice",
                    word_hex(&e.nullifier)
                ),
            ));
        }
        if complete && !accredited(h, t.accreditor, e.custodian, e.at) {
            out.push(find(
                Severity::Critical,
                Kind::UnaccreditedCustodianPaid,
                format!(
                    "{} was paid a bounty though the trial's accreditor {} did not attest it then",
                    e.custodian, t.accreditor
                ),
            ));
        }
    }
    if let Some(n) = enrolled_onchain {
        if n as usize != t.enrolments.len() {
            out.push(
                Anomaly::at(
                    Severity::Critical,
                    Kind::ResultsDisagree,
                    Some(t.opened),
                    format!(
                        "the market counts {n} enrolments, its events {}",
                        t.enrolments.len()
                    ),
                )
                .trial(t.id),
            );
        }
    }
    out
}

fn spec_findings(spec: &SpecCheck, at: Option<At>) -> Vec<Anomaly> {
    let mut out = Vec::new();
    if !spec.published {
        return out;
    }
    if spec.hash_matches == Some(false)
        || spec
            .problems
            .iter()
            .any(|p| p.contains("published under hash"))
    {
        out.push(Anomaly::at(
            Severity::Critical,
            Kind::SpecHashMismatch,
            at,
            format!(
                "the published spec is not the posted one: {}",
                spec.problems.join("; ")
            ),
        ));
    }
    if spec.constants_match == Some(false) {
        out.push(Anomaly::at(
            Severity::Critical,
            Kind::SpecConstantsMismatch,
            at,
            "the published spec compiles to other criteria than the constants proofs are checked against".into(),
        ));
    }
    if spec.name.is_none() && spec.problems.iter().any(|p| p.contains("is not a")) {
        out.push(Anomaly::at(
            Severity::Warning,
            Kind::SpecUnreadable,
            at,
            "the published spec document cannot be read as a spec".into(),
        ));
    }
    out
}

/// Findings of the money reconciliation.
pub fn money(m: &Money) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for e in &m.escrows {
        for p in &e.problems {
            let a = Anomaly::at(
                Severity::Critical,
                Kind::MoneyMismatch,
                None,
                format!(
                    "{} {}: {p}",
                    if e.market == Contract::QueryMarket {
                        "query"
                    } else {
                        "trial"
                    },
                    e.id
                ),
            );
            out.push(match e.market {
                Contract::QueryMarket => match e.id.trim_start_matches('#').parse() {
                    Ok(id) => a.query(id),
                    Err(_) => a,
                },
                _ => match e.id.parse::<U256>() {
                    Ok(id) => a.trial(id),
                    Err(_) => a,
                },
            });
        }
    }
    for a in &m.accounts {
        for p in &a.problems {
            out.push(Anomaly::at(
                Severity::Critical,
                Kind::MoneyMismatch,
                None,
                format!("{} in the {}: {p}", a.account, a.market.name()),
            ));
        }
    }
    for b in &m.balances {
        for p in &b.problems {
            out.push(Anomaly::at(
                Severity::Critical,
                Kind::MoneyMismatch,
                None,
                format!("the {}: {p}", b.market.name()),
            ));
        }
        if !b.surplus.is_zero() {
            out.push(Anomaly::at(
                Severity::Warning,
                Kind::BalanceSurplus,
                None,
                format!(
                    "the {} holds {} more than it owes (sent to it outside the market's functions)",
                    b.market.name(),
                    words::amount(b.surplus, b.token)
                ),
            ));
        }
    }
    out
}

/// Commit-and-prove datasets whose commitment answered more claims (over all queries) than its
/// query budget (`FoldParams::query_budget`, from the circuit id `names` gives for the
/// dataset's circuit): each claim's proof opened its data columns once more. Proofs made and
/// never claimed open them too, but the chain does not see those, so this is a lower bound.
pub fn budgets(h: &History, names: &BTreeMap<B256, String>, schemas: &[Schema]) -> Vec<Anomaly> {
    let mut claims: BTreeMap<u64, (usize, At)> = BTreeMap::new();
    for c in h.queries.values().flat_map(|q| &q.claims) {
        let e = claims.entry(c.dataset).or_insert((0, c.at));
        e.0 += 1;
        if c.at > e.1 {
            e.1 = c.at;
        }
    }
    let mut out = Vec::new();
    for (id, (n, last)) in claims {
        let Some(d) = h.datasets.get(&id) else {
            continue;
        };
        let budget = names.get(&d.circuit).and_then(|circuit| {
            let schema = schemas
                .iter()
                .find(|s| B256::from(s.hash()) == d.schema_hash)?;
            let spec = FoldSpec::from_circuit_id(schema, circuit).ok()?;
            let params = spec.params(&FoldSchema::of(schema).ok()?).ok()?;
            Some((circuit, params.query_budget()))
        });
        // Poseidon circuits (or an unknown circuit or schema): no budget to check.
        if let Some((circuit, budget)) = budget.filter(|&(_, b)| n > b) {
            out.push(
                Anomaly::at(
                    Severity::Warning,
                    Kind::QueryBudgetExceeded,
                    Some(last),
                    format!(
                        "dataset #{id} answered {n} claims from one commitment of circuit {circuit}, whose query budget is {budget} proofs: its records may no longer be hidden (the custodian should have re-committed under a fresh salt)"
                    ),
                )
                .dataset(id),
            );
        }
    }
    out
}

/// `ProofAccepted` events and payments that do not pair up, and events outside the window.
pub fn bookkeeping(h: &History) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let paid: BTreeSet<(Contract, B256, B256)> = h
        .queries
        .values()
        .flat_map(|q| {
            q.claims
                .iter()
                .map(|c| (Contract::QueryMarket, c.at.tx, c.proof_hash))
        })
        .chain(h.trials.iter().flat_map(|t| {
            t.enrolments
                .iter()
                .map(|e| (Contract::TrialMarket, e.at.tx, e.proof_hash))
        }))
        .collect();
    let accepted: BTreeSet<(Contract, B256, B256)> = h
        .accepted
        .iter()
        .map(|a| (a.market, a.at.tx, a.proof_hash))
        .collect();
    for a in &h.accepted {
        if !paid.contains(&(a.market, a.at.tx, a.proof_hash)) {
            out.push(Anomaly::at(
                Severity::Warning,
                Kind::UnmatchedProof,
                Some(a.at),
                format!(
                    "the {} accepted proof {} but recorded no claim or enrolment for it",
                    a.market.name(),
                    a.proof_hash
                ),
            ));
        }
    }
    for (market, tx, hash) in paid.difference(&accepted) {
        out.push(Anomaly {
            severity: Severity::Warning,
            kind: Kind::UnmatchedProof,
            query: None,
            trial: None,
            dataset: None,
            tx: Some(*tx),
            block: None,
            message: format!(
                "the {} paid for proof {hash} without a ProofAccepted event",
                market.name()
            ),
        });
    }
    for u in &h.unplaced {
        out.push(Anomaly::at(
            Severity::Notice,
            Kind::UnplacedEvent,
            Some(u.at),
            format!("{} of the {}: {}", u.event, u.contract.name(), u.why),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{
        model::{Claim, CustodianTransfer, Dataset},
        money::{reconcile, OnChain},
    };

    fn at(block: u64) -> At {
        At {
            block,
            log_index: 0,
            tx: B256::with_last_byte(block as u8),
            time: 1_000 + block,
        }
    }

    fn claim(dataset: u64, block: u64, count: u64, sum: u64, suppressed: bool) -> Claim {
        Claim {
            dataset,
            custodian: Address::with_last_byte(dataset as u8),
            proof_hash: B256::with_last_byte(100 + block as u8),
            count: U256::from(count),
            nonmissing: U256::from(count),
            sum: U256::from(sum),
            sum_squares: U256::from(sum * sum),
            suppressed,
            verdict: None,
            paid: U256::from(10),
            at: at(block),
        }
    }

    /// A query on datasets 1..=5 (40 records each, dataset 5 retired at block 3), min cohort
    /// 11, deadline at time 1,008, price 10; the answers are the test's.
    fn history(claims: Vec<Claim>) -> History {
        let mut h = History::default();
        for id in 1..=5 {
            h.datasets.insert(
                id,
                Dataset {
                    id,
                    custodian: Address::with_last_byte(id as u8),
                    registered_by: Address::with_last_byte(id as u8),
                    transfers: Vec::new(),
                    commitment: B256::ZERO,
                    schema_hash: B256::ZERO,
                    record_count: 40,
                    circuit: B256::ZERO,
                    member_root: B256::ZERO,
                    registered: at(1),
                    retired: (id == 5).then(|| at(3)),
                },
            );
        }
        h.queries.insert(
            1,
            Query {
                id: 1,
                sponsor: Address::with_last_byte(99),
                spec_hash: B256::ZERO,
                constants: vec![U256::from(11)],
                targets: vec![1, 2, 3, 4, 5],
                token: Address::ZERO,
                price: U256::from(10),
                deadline: 1_008,
                accreditor: Address::ZERO,
                posted: at(2),
                spec: None,
                claims,
                refund: None,
            },
        );
        h
    }

    /// A fold dataset's claims beyond its commitment's query budget are flagged; a Poseidon
    /// dataset's are not (no budget), nor a fold dataset within its budget.
    #[test]
    fn claims_beyond_a_query_budget_are_flagged() {
        let schema = Schema::clinical_default();
        let fold = FoldSchema::of(&schema).unwrap();
        // 5 masking rows, 2 openings per proof: a budget of 2 proofs.
        let spec = FoldSpec {
            capacity: 48,
            mask_rows: 5,
            data_columns: 1,
            statistics: vec![3],
            strata: None,
            attestation: false,
            rounding: None,
            dominance: None,
        };
        let params = spec.params(&fold).unwrap();
        assert_eq!(params.query_budget(), 2);
        let circuit = fold.circuit_id(&params, params.min_k());
        let key = alloy::primitives::keccak256(circuit.as_bytes());
        let names = BTreeMap::from([(key, circuit.clone())]);
        let mut h = history(vec![
            claim(1, 4, 20, 30, false),
            claim(1, 5, 20, 30, false),
            claim(2, 4, 20, 30, false),
            claim(2, 5, 20, 30, false),
            claim(3, 4, 20, 30, false),
            claim(3, 5, 20, 30, false),
            claim(3, 6, 20, 30, false),
        ]);
        for (id, fold_circuit) in [(1, true), (2, false), (3, true)] {
            let d = h.datasets.get_mut(&id).unwrap();
            d.schema_hash = B256::from(schema.hash());
            d.circuit = if fold_circuit { key } else { B256::ZERO };
        }
        let found: Vec<(Kind, Option<u64>)> = budgets(&h, &names, std::slice::from_ref(&schema))
            .into_iter()
            .map(|a| (a.kind, a.dataset))
            .collect();
        assert_eq!(found, vec![(Kind::QueryBudgetExceeded, Some(3))]);
        // Without the schema the circuit cannot be read: nothing is claimed either way.
        assert!(budgets(&h, &names, &[]).is_empty());
    }

    #[test]
    fn answers_that_cannot_be_honest_are_flagged() {
        let h = history(vec![
            claim(1, 4, 20, 30, false), // fine: 20 patients, mean 1.5
            claim(2, 5, 3, 0, true),    // marked suppressed, yet n = 3 released
            claim(3, 6, 5, 10, false),  // 5 patients released under a minimum of 11
            claim(4, 7, 41, 50, false), // 41 patients from 40 records
            claim(5, 9, 12, 24, false), // after retirement (block 3) and the deadline
        ]);
        let q = &h.queries[&1];
        let found: Vec<(Kind, Option<u64>)> =
            query(&h, q, None, &SpecCheck::default(), None, false)
                .into_iter()
                .map(|a| (a.kind, a.dataset))
                .collect();
        assert_eq!(
            found,
            vec![
                (Kind::SuppressionInconsistent, Some(2)),
                (Kind::SmallCellReleased, Some(3)),
                (Kind::ImpossibleStatistics, Some(4)),
                (Kind::ClaimAgainstRetiredDataset, Some(5)),
                (Kind::AfterDeadline, Some(5)),
            ]
        );
    }

    #[test]
    fn a_claim_pays_whoever_was_custodian_at_the_time() {
        // Dataset 1 moves from address 1 to address 21 (offered at block 5, accepted at 6);
        // an offer to 22 is then made and withdrawn.
        let (old, new) = (Address::with_last_byte(1), Address::with_last_byte(21));
        let mut before = claim(1, 4, 20, 30, false);
        before.custodian = old;
        let mut after = claim(1, 7, 20, 30, false);
        after.custodian = new;
        let mut wrong = claim(2, 7, 20, 30, false);
        wrong.custodian = new; // dataset 2 never moved
        let mut h = history(vec![before, after, wrong]);
        let steps = [
            (old, new, false, 5),
            (old, new, true, 6),
            (new, Address::with_last_byte(22), false, 7),
            (new, Address::ZERO, false, 8),
        ];
        let d = h.datasets.get_mut(&1).unwrap();
        for (from, to, accepted, block) in steps {
            d.transfers.push(CustodianTransfer {
                from,
                to,
                accepted,
                at: at(block),
            });
        }
        d.custodian = new;
        let d = &h.datasets[&1];
        assert_eq!(d.custodian_at(at(5)), old, "an offer moves nothing");
        assert_eq!(d.custodian_at(at(7)), new);
        assert_eq!(d.custodians(), vec![old, new]);
        assert_eq!(d.pending_custodian(), None, "the last offer was withdrawn");
        assert_eq!(h.datasets_of(old).count(), 1, "held once, still listed");

        let found: Vec<(Kind, Option<u64>, String)> =
            query(&h, &h.queries[&1], None, &SpecCheck::default(), None, false)
                .into_iter()
                .map(|a| (a.kind, a.dataset, a.message))
                .collect();
        // The second claim on dataset 1 is also "answered twice"; only dataset 2's payee is
        // not its custodian.
        let payees: Vec<&(Kind, Option<u64>, String)> = found
            .iter()
            .filter(|(k, _, m)| *k == Kind::ClaimNotAllowed && m.contains("was paid for"))
            .collect();
        assert_eq!(payees.len(), 1, "{found:?}");
        assert_eq!(payees[0].1, Some(2));
        assert!(payees[0].2.contains(&format!(
            "custodian then was {}",
            Address::with_last_byte(2)
        )));
    }

    #[test]
    fn money_that_does_not_add_up_is_flagged() {
        let mut h = history(vec![claim(1, 4, 20, 30, false)]);
        let mut chain = OnChain::default();
        // 5 targets × 10 escrowed, 10 paid: 40 must still be locked.
        chain.query_locked.insert(1, U256::from(40));
        for who in [1u8, 99] {
            chain.pending.insert(
                (
                    Contract::QueryMarket,
                    Address::ZERO,
                    Address::with_last_byte(who),
                ),
                U256::from(if who == 1 { 10 } else { 0 }),
            );
        }
        let m = reconcile(&h, &chain);
        assert!(m.reconciles(), "{m:#?}");
        assert!(money(&m).is_empty());

        // The contract says less is locked than the events imply; a payment off the price.
        chain.query_locked.insert(1, U256::from(30));
        h.queries.get_mut(&1).unwrap().claims[0].paid = U256::from(11);
        chain.pending.insert(
            (
                Contract::QueryMarket,
                Address::ZERO,
                Address::with_last_byte(1),
            ),
            U256::from(11),
        );
        let m = reconcile(&h, &chain);
        assert!(!m.reconciles());
        let found = money(&m);
        assert!(found
            .iter()
            .all(|a| a.kind == Kind::MoneyMismatch && a.query == Some(1)));
        let text: Vec<&str> = found.iter().map(|a| a.message.as_str()).collect();
        assert!(
            text.iter().any(|t| t.contains("paid 11, the price is 10")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("30 is still locked")),
            "{text:?}"
        );
    }
}
