//! The history of a deployment as its contracts' events tell it: datasets, queries with their
//! claims and refunds, trials with their enrolments, custodian rotations, verifier and consent
//! purpose changes, accreditations, cell floors, withdrawals. Built from decoded logs alone ([`History::from_logs`]).

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, Bytes, B256, U256},
    rpc::types::Log,
    sol_types::SolEvent,
};
use serde::{Serialize, Serializer};

use crate::chain::{AccreditationRegistry, DatasetRegistry, Deployment, QueryMarket, TrialMarket};

/// Amounts and big words as decimal strings in JSON (numbers would lose precision).
pub(crate) fn dec<S: Serializer>(x: &U256, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(x)
}

fn dec_vec<S: Serializer>(xs: &[U256], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(xs.iter().map(|x| x.to_string()))
}

pub(crate) fn hex_word<S: Serializer>(x: &U256, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&word_hex(x))
}

/// A 256-bit word as `0x` and 64 hex digits (how trial ids and nullifiers are written).
pub fn word_hex(x: &U256) -> String {
    format!("0x{x:064x}")
}

/// A counter id (query, dataset) as a number; ids beyond u64 cannot be counters.
pub(crate) fn small(x: U256) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// Which contract emitted an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contract {
    /// The query market.
    QueryMarket,
    /// The trial market.
    TrialMarket,
    /// The dataset registry.
    DatasetRegistry,
    /// The accreditation registry.
    Accreditations,
}

impl Contract {
    /// Its name in a report.
    pub fn name(self) -> &'static str {
        match self {
            Contract::QueryMarket => "query market",
            Contract::TrialMarket => "trial market",
            Contract::DatasetRegistry => "dataset registry",
            Contract::Accreditations => "accreditation registry",
        }
    }

    /// Its address in a deployment.
    pub fn address(self, d: &Deployment) -> Address {
        match self {
            Contract::QueryMarket => d.market,
            Contract::TrialMarket => d.trials,
            Contract::DatasetRegistry => d.registry,
            Contract::Accreditations => d.accreditations,
        }
    }
}

/// Where an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct At {
    /// Block number.
    pub block: u64,
    /// Index of the log in its block.
    pub log_index: u64,
    /// Transaction hash.
    pub tx: B256,
    /// Block timestamp (unix seconds).
    pub time: u64,
}

/// A registered dataset.
#[derive(Clone, Debug, Serialize)]
pub struct Dataset {
    /// Dataset id.
    pub id: u64,
    /// Its custodian now (after every accepted transfer read; paid for its answers and
    /// enrolments from then on).
    pub custodian: Address,
    /// Who registered it (its first custodian).
    pub registered_by: Address,
    /// Custodian rotations: offers (and withdrawn offers) and acceptances, in order.
    pub transfers: Vec<CustodianTransfer>,
    /// The aggregate commitment.
    pub commitment: B256,
    /// SHA-256 of its schema.
    pub schema_hash: B256,
    /// Records committed.
    pub record_count: u64,
    /// keccak256 of its aggregate circuit's id.
    pub circuit: B256,
    /// Root of its membership tree.
    pub member_root: B256,
    /// Registration.
    pub registered: At,
    /// Retirement, if any.
    pub retired: Option<At>,
}

/// A step of a custodian rotation (`DatasetRegistry.transferCustodian` / `acceptCustodian`).
#[derive(Clone, Debug, Serialize)]
pub struct CustodianTransfer {
    /// The custodian at the time.
    pub from: Address,
    /// The address offered to, or the new custodian (zero in an offer: the offer withdrawn).
    pub to: Address,
    /// Whether `to` accepted (and so became the custodian), or this is an offer.
    pub accepted: bool,
    /// When.
    pub at: At,
}

impl Dataset {
    /// Who was its custodian (and so paid for it) at `at`: the registrant, or the last address
    /// that accepted it before `at`.
    pub fn custodian_at(&self, at: At) -> Address {
        self.transfers
            .iter()
            .rfind(|t| t.accepted && t.at < at)
            .map_or(self.registered_by, |t| t.to)
    }

    /// Every address that has been its custodian, in order (the registrant first).
    pub fn custodians(&self) -> Vec<Address> {
        let mut out = vec![self.registered_by];
        out.extend(self.transfers.iter().filter(|t| t.accepted).map(|t| t.to));
        out
    }

    /// The address it is offered to and has not accepted yet, if any.
    pub fn pending_custodian(&self) -> Option<Address> {
        self.transfers
            .last()
            .filter(|t| !t.accepted && !t.to.is_zero())
            .map(|t| t.to)
    }
}

/// A spec document a sponsor published with a query or trial.
#[derive(Clone, Debug, Serialize)]
pub struct PublishedSpec {
    /// The document's bytes as published.
    pub bytes: Bytes,
    /// The hash the event indexes (the posted spec hash, if honest).
    pub indexed_hash: B256,
    /// Publication.
    pub at: At,
}

/// One answer to a query.
#[derive(Clone, Debug, Serialize)]
pub struct Claim {
    /// The dataset answering.
    pub dataset: u64,
    /// Its custodian (paid).
    pub custodian: Address,
    /// keccak256 of the proof.
    pub proof_hash: B256,
    /// Released count (0 if suppressed).
    #[serde(serialize_with = "dec")]
    pub count: U256,
    /// Released matching records whose statistic is not missing, the mean's denominator (0 if
    /// suppressed; the market sets it to `count` for circuits without that output).
    #[serde(serialize_with = "dec")]
    pub nonmissing: U256,
    /// Released sum (encoded units).
    #[serde(serialize_with = "dec")]
    pub sum: U256,
    /// Released sum of squares (encoded units²).
    #[serde(serialize_with = "dec")]
    pub sum_squares: U256,
    /// Whether the answer was suppressed.
    pub suppressed: bool,
    /// An attestation's verdict (`Attested`): `Some(true)` yes, `Some(false)` no; `None` for
    /// an answer releasing numbers (`Claimed`). An attestation releases no count or sums
    /// (zero here) and is never suppressed.
    pub verdict: Option<bool>,
    /// Credited to the custodian.
    #[serde(serialize_with = "dec")]
    pub paid: U256,
    /// The claim.
    pub at: At,
}

/// A refund of unused escrow to a sponsor.
#[derive(Clone, Debug, Serialize)]
pub struct Refund {
    /// Who was credited.
    pub sponsor: Address,
    /// How much.
    #[serde(serialize_with = "dec")]
    pub amount: U256,
    /// The refund.
    pub at: At,
}

/// A posted query and what happened to it.
#[derive(Clone, Debug, Serialize)]
pub struct Query {
    /// Query id.
    pub id: u64,
    /// Who posted and funded it.
    pub sponsor: Address,
    /// SHA-256 of the spec document.
    pub spec_hash: B256,
    /// The public constants a proof must carry.
    #[serde(serialize_with = "dec_vec")]
    pub constants: Vec<U256>,
    /// Targeted datasets.
    pub targets: Vec<u64>,
    /// Payment token (zero: ETH).
    pub token: Address,
    /// Payment per answered dataset.
    #[serde(serialize_with = "dec")]
    pub price: U256,
    /// Last timestamp claims are accepted.
    pub deadline: u64,
    /// Accreditor whose attestation custodians need (zero: none).
    pub accreditor: Address,
    /// The posting.
    pub posted: At,
    /// The spec document, if published.
    pub spec: Option<PublishedSpec>,
    /// Answers, in order.
    pub claims: Vec<Claim>,
    /// The sponsor's refund, if any.
    pub refund: Option<Refund>,
}

/// One enrolled patient.
#[derive(Clone, Debug, Serialize)]
pub struct Enrolment {
    /// The patient's nullifier in this trial.
    #[serde(serialize_with = "hex_word")]
    pub nullifier: U256,
    /// Dataset of the patient's record.
    pub dataset: u64,
    /// Its custodian (paid).
    pub custodian: Address,
    /// The patient's payout address (zero: none).
    pub patient_payout: Address,
    /// Credited to the custodian.
    #[serde(serialize_with = "dec")]
    pub custodian_amount: U256,
    /// Credited to the patient.
    #[serde(serialize_with = "dec")]
    pub patient_amount: U256,
    /// keccak256 of the proof.
    pub proof_hash: B256,
    /// The enrolment.
    pub at: At,
}

/// A batch slot skipped because its patient was already enrolled.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The nullifier.
    #[serde(serialize_with = "hex_word")]
    pub nullifier: U256,
    /// When.
    pub at: At,
}

/// An opened trial and what happened to it.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Trial id.
    #[serde(serialize_with = "hex_word")]
    pub id: U256,
    /// Who opened and funded it.
    pub sponsor: Address,
    /// SHA-256 of the spec document.
    pub spec_hash: B256,
    /// The schema the criteria are written for.
    pub schema_hash: B256,
    /// The criteria constants a proof must carry.
    #[serde(serialize_with = "dec_vec")]
    pub criteria: Vec<U256>,
    /// Bounty per patient (wei).
    #[serde(serialize_with = "dec")]
    pub bounty: U256,
    /// Patient share, basis points.
    pub patient_share_bps: u16,
    /// Maximum enrolments.
    pub cap: u32,
    /// Last timestamp enrolments are accepted.
    pub deadline: u64,
    /// Accreditor whose attestation custodians need.
    pub accreditor: Address,
    /// The opening.
    pub opened: At,
    /// The spec document, if published.
    pub spec: Option<PublishedSpec>,
    /// Enrolled patients, in order.
    pub enrolments: Vec<Enrolment>,
    /// Skipped batch slots.
    pub skipped: Vec<Skipped>,
    /// The sponsor's refund, if any.
    pub refund: Option<Refund>,
}

/// A change to the verifier of a circuit.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VerifierChange {
    /// Set, replaced, or (verifier zero) removed.
    Set {
        /// Schema of the circuit.
        schema_hash: B256,
        /// The verifier before.
        previous: Address,
        /// The verifier now (zero: removed).
        verifier: Address,
        /// Constants count.
        num_constants: u32,
        /// Patient slots (0: aggregate).
        batch: u16,
        /// Cells an aggregate circuit releases (0: an attestation's verdict; 0 for eligibility).
        cells: u16,
        /// Data columns of a commit-and-prove circuit (0: the commitment is an input).
        data_columns: u32,
    },
    /// Proposed by the owner, to apply from `eta`.
    Proposed {
        /// Schema of the circuit.
        schema_hash: B256,
        /// The proposed verifier.
        verifier: Address,
        /// Constants count.
        num_constants: u32,
        /// Patient slots.
        batch: u16,
        /// Cells an aggregate circuit releases (0: an attestation's verdict; 0 for eligibility).
        cells: u16,
        /// Data columns of a commit-and-prove circuit (0: the commitment is an input).
        data_columns: u32,
        /// When it may be applied.
        eta: u64,
    },
    /// A pending proposal withdrawn.
    Cancelled,
}

/// A verifier event of a market.
#[derive(Clone, Debug, Serialize)]
pub struct VerifierEvent {
    /// Which market.
    pub market: Contract,
    /// keccak256 of the circuit id.
    pub circuit: B256,
    /// What changed.
    pub change: VerifierChange,
    /// When.
    pub at: At,
}

/// A change to a market's registered consent purposes (`ConsentPurposes`).
#[derive(Clone, Debug, Serialize)]
pub struct ConsentPurposeEvent {
    /// Which market.
    pub market: Contract,
    /// The schema.
    pub schema_hash: B256,
    /// The purpose's bit in the schema's consent column.
    #[serde(serialize_with = "dec")]
    pub index: U256,
    /// What changed.
    pub change: ConsentPurposeChange,
    /// When.
    pub at: At,
}

/// What happened to a consent purpose.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsentPurposeChange {
    /// Registered (at deployment or by applying a proposal), renamed, or (`name` zero) removed.
    Set {
        /// The name before (zero: none).
        previous: B256,
        /// The name now (zero: removed).
        name: B256,
    },
    /// Proposed by the owner, to apply from `eta`.
    Proposed {
        /// The proposed name (zero: a removal).
        name: B256,
        /// When it may be applied.
        eta: u64,
    },
    /// A pending proposal withdrawn.
    Cancelled,
}

/// A proof that passed a market's gate.
#[derive(Clone, Debug, Serialize)]
pub struct Accepted {
    /// Which market.
    pub market: Contract,
    /// keccak256 of the circuit id.
    pub circuit: B256,
    /// The verifier that accepted it.
    pub verifier: Address,
    /// keccak256 of the proof.
    pub proof_hash: B256,
    /// When.
    pub at: At,
}

/// A withdrawal from a market.
#[derive(Clone, Debug, Serialize)]
pub struct Withdrawal {
    /// Which market.
    pub market: Contract,
    /// Who withdrew.
    pub account: Address,
    /// Token (zero: ETH).
    pub token: Address,
    /// How much.
    #[serde(serialize_with = "dec")]
    pub amount: U256,
    /// When.
    pub at: At,
}

/// An accreditation granted or revoked.
#[derive(Clone, Debug, Serialize)]
pub struct Accreditation {
    /// The accreditor.
    pub accreditor: Address,
    /// The custodian.
    pub custodian: Address,
    /// Granted (true) or revoked.
    pub granted: bool,
    /// When.
    pub at: At,
}

/// A custodian's cell floor.
#[derive(Clone, Debug, Serialize)]
pub struct CellFloor {
    /// The custodian.
    pub custodian: Address,
    /// Smallest cell it releases.
    pub floor: u64,
    /// When.
    pub at: At,
}

/// An ERC-20 allowed or disallowed by a market's owner.
#[derive(Clone, Debug, Serialize)]
pub struct TokenAllowed {
    /// Which market.
    pub market: Contract,
    /// The token.
    pub token: Address,
    /// Allowed or disallowed.
    pub allowed: bool,
    /// When.
    pub at: At,
}

/// A change of a market's owner (who proposes verifiers).
#[derive(Clone, Debug, Serialize)]
pub struct Ownership {
    /// Which market.
    pub market: Contract,
    /// What happened.
    pub what: OwnershipChange,
    /// When.
    pub at: At,
}

/// Ownership events (solady `Ownable`).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OwnershipChange {
    /// Owner changed (from zero: the contract's construction).
    Transferred {
        /// Previous owner.
        from: Address,
        /// New owner.
        to: Address,
    },
    /// A two-step handover was requested.
    HandoverRequested {
        /// The pending owner.
        pending: Address,
    },
    /// A handover request was withdrawn.
    HandoverCanceled {
        /// The pending owner.
        pending: Address,
    },
}

/// An event the history could not place (e.g. a claim on a query posted before the first block
/// read): listed, not lost.
#[derive(Clone, Debug, Serialize)]
pub struct Unplaced {
    /// Which contract.
    pub contract: Contract,
    /// Event name (or the topic for an unknown one).
    pub event: String,
    /// Why it could not be placed.
    pub why: String,
    /// When.
    pub at: At,
}

/// Everything the logs tell.
#[derive(Clone, Debug, Default, Serialize)]
pub struct History {
    /// Datasets by id.
    pub datasets: BTreeMap<u64, Dataset>,
    /// Queries by id.
    pub queries: BTreeMap<u64, Query>,
    /// Trials, in opening order.
    pub trials: Vec<Trial>,
    /// Verifier proposals, applications, removals, cancellations.
    pub verifier_events: Vec<VerifierEvent>,
    /// Proofs accepted by the markets' gate.
    pub accepted: Vec<Accepted>,
    /// Consent purposes registered, proposed, cancelled.
    pub consent_purposes: Vec<ConsentPurposeEvent>,
    /// Withdrawals.
    pub withdrawals: Vec<Withdrawal>,
    /// Accreditations granted and revoked.
    pub accreditations: Vec<Accreditation>,
    /// Custodians' cell floors.
    pub cell_floors: Vec<CellFloor>,
    /// Token allowlist changes.
    pub tokens: Vec<TokenAllowed>,
    /// Ownership changes.
    pub ownership: Vec<Ownership>,
    /// Events that could not be placed.
    pub unplaced: Vec<Unplaced>,
    /// Events per kind (the event's name), everything decoded counted once.
    pub counts: BTreeMap<String, u64>,
    #[serde(skip)]
    pending_specs: Vec<(Contract, U256, PublishedSpec)>,
}

impl History {
    /// The trial with this id.
    pub fn trial(&self, id: U256) -> Option<&Trial> {
        self.trials.iter().find(|t| t.id == id)
    }

    /// The datasets `custodian` holds or has held.
    pub fn datasets_of(&self, custodian: Address) -> impl Iterator<Item = &Dataset> {
        self.datasets
            .values()
            .filter(move |d| d.custodians().contains(&custodian))
    }

    /// Whether the logs include `market`'s construction (its first owner being set), so that
    /// its whole history, and so its balances, can be reconciled.
    pub fn saw_construction(&self, market: Contract) -> bool {
        self.ownership.iter().any(|o| {
            o.market == market
                && matches!(o.what, OwnershipChange::Transferred { from, .. } if from.is_zero())
        })
    }

    /// The transaction that constructed `market`, if seen.
    pub fn construction_tx(&self, market: Contract) -> Option<B256> {
        self.ownership.iter().find_map(|o| match o.what {
            OwnershipChange::Transferred { from, .. } if from.is_zero() && o.market == market => {
                Some(o.at.tx)
            }
            _ => None,
        })
    }

    /// Builds the history from logs of the deployment's four contracts, in chain order.
    /// `time(block)` gives a block's timestamp. Logs of other addresses are ignored; logs the
    /// contracts' ABIs do not describe are kept in [`History::unplaced`].
    pub fn from_logs(deployment: &Deployment, logs: &[Log], time: impl Fn(u64) -> u64) -> Self {
        let mut h = History::default();
        for log in logs {
            let contract = [
                Contract::QueryMarket,
                Contract::TrialMarket,
                Contract::DatasetRegistry,
                Contract::Accreditations,
            ]
            .into_iter()
            .find(|c| c.address(deployment) == log.address());
            let Some(contract) = contract else { continue };
            let block = log.block_number.unwrap_or_default();
            let at = At {
                block,
                log_index: log.log_index.unwrap_or_default(),
                tx: log.transaction_hash.unwrap_or_default(),
                time: time(block),
            };
            let name = h.place(contract, log, at);
            *h.counts.entry(name).or_default() += 1;
        }
        for (contract, id, spec) in std::mem::take(&mut h.pending_specs) {
            let at = spec.at;
            let placed = match contract {
                Contract::QueryMarket => h.queries.get_mut(&small(id)).map(|q| q.spec = Some(spec)),
                _ => h
                    .trials
                    .iter_mut()
                    .find(|t| t.id == id)
                    .map(|t| t.spec = Some(spec)),
            };
            if placed.is_none() {
                h.unplaced(
                    contract,
                    "SpecPublished",
                    format!(
                        "no query or trial {} was posted in the blocks read",
                        word_hex(&id)
                    ),
                    at,
                );
            }
        }
        h
    }

    /// Adds an answer (`Claimed` or `Attested`) to its query, or notes it as unplaced when the
    /// query was posted before the first block read.
    fn answer(&mut self, contract: Contract, event: &str, query: U256, claim: Claim) {
        match self.queries.get_mut(&small(query)) {
            Some(q) => q.claims.push(claim),
            None => self.unplaced(
                contract,
                event,
                format!("query #{query} was posted before the first block read"),
                claim.at,
            ),
        }
    }

    fn unplaced(&mut self, contract: Contract, event: &str, why: String, at: At) {
        self.unplaced.push(Unplaced {
            contract,
            event: event.to_owned(),
            why,
            at,
        });
    }

    /// Records a step of a custodian rotation on its dataset (accepted: `to` is the custodian
    /// from here on).
    fn custodian_transfer(&mut self, id: U256, from: Address, to: Address, accepted: bool, at: At) {
        match self.datasets.get_mut(&small(id)) {
            Some(d) => {
                if accepted {
                    d.custodian = to;
                }
                d.transfers.push(CustodianTransfer {
                    from,
                    to,
                    accepted,
                    at,
                });
            }
            None => self.unplaced(
                Contract::DatasetRegistry,
                if accepted {
                    "CustodianTransferred"
                } else {
                    "CustodianTransferStarted"
                },
                format!("dataset #{id} registered before the first block read"),
                at,
            ),
        }
    }

    /// Records one log; returns the event's name.
    fn place(&mut self, contract: Contract, log: &Log, at: At) -> String {
        let topic = log.topic0().copied().unwrap_or_default();
        macro_rules! decode {
            ($t:ty) => {
                match log.log_decode::<$t>() {
                    Ok(l) => l.inner.data,
                    Err(e) => {
                        let name = <$t as SolEvent>::SIGNATURE;
                        self.unplaced(contract, name, format!("undecodable: {e}"), at);
                        return "undecodable".into();
                    }
                }
            };
        }
        match contract {
            Contract::DatasetRegistry => match topic {
                t if t == DatasetRegistry::DatasetRegistered::SIGNATURE_HASH => {
                    let e = decode!(DatasetRegistry::DatasetRegistered);
                    let id = small(e.datasetId);
                    self.datasets.insert(
                        id,
                        Dataset {
                            id,
                            custodian: e.custodian,
                            registered_by: e.custodian,
                            transfers: Vec::new(),
                            commitment: e.commitment,
                            schema_hash: e.schemaHash,
                            record_count: e.recordCount,
                            circuit: e.circuitId,
                            member_root: e.memberRoot,
                            registered: at,
                            retired: None,
                        },
                    );
                    "DatasetRegistered".into()
                }
                t if t == DatasetRegistry::DatasetRetired::SIGNATURE_HASH => {
                    let e = decode!(DatasetRegistry::DatasetRetired);
                    match self.datasets.get_mut(&small(e.datasetId)) {
                        Some(d) => d.retired = Some(at),
                        None => self.unplaced(
                            contract,
                            "DatasetRetired",
                            format!(
                                "dataset #{} registered before the first block read",
                                e.datasetId
                            ),
                            at,
                        ),
                    }
                    "DatasetRetired".into()
                }
                t if t == DatasetRegistry::CustodianTransferStarted::SIGNATURE_HASH => {
                    let e = decode!(DatasetRegistry::CustodianTransferStarted);
                    self.custodian_transfer(e.datasetId, e.from, e.to, false, at);
                    "CustodianTransferStarted".into()
                }
                t if t == DatasetRegistry::CustodianTransferred::SIGNATURE_HASH => {
                    let e = decode!(DatasetRegistry::CustodianTransferred);
                    self.custodian_transfer(e.datasetId, e.from, e.to, true, at);
                    "CustodianTransferred".into()
                }
                t if t == DatasetRegistry::CellFloorSet::SIGNATURE_HASH => {
                    let e = decode!(DatasetRegistry::CellFloorSet);
                    self.cell_floors.push(CellFloor {
                        custodian: e.custodian,
                        floor: e.floor,
                        at,
                    });
                    "CellFloorSet".into()
                }
                _ => self.unknown(contract, topic, at),
            },
            Contract::Accreditations => match topic {
                t if t == AccreditationRegistry::Accredited::SIGNATURE_HASH => {
                    let e = decode!(AccreditationRegistry::Accredited);
                    self.accreditations.push(Accreditation {
                        accreditor: e.accreditor,
                        custodian: e.custodian,
                        granted: true,
                        at,
                    });
                    "Accredited".into()
                }
                t if t == AccreditationRegistry::AccreditationRevoked::SIGNATURE_HASH => {
                    let e = decode!(AccreditationRegistry::AccreditationRevoked);
                    self.accreditations.push(Accreditation {
                        accreditor: e.accreditor,
                        custodian: e.custodian,
                        granted: false,
                        at,
                    });
                    "AccreditationRevoked".into()
                }
                _ => self.unknown(contract, topic, at),
            },
            Contract::QueryMarket => match topic {
                t if t == QueryMarket::QueryPosted::SIGNATURE_HASH => {
                    let e = decode!(QueryMarket::QueryPosted);
                    let id = small(e.queryId);
                    self.queries.insert(
                        id,
                        Query {
                            id,
                            sponsor: e.sponsor,
                            spec_hash: e.specHash,
                            constants: e.constants,
                            targets: e.datasetIds.into_iter().map(small).collect(),
                            token: e.token,
                            price: e.price,
                            deadline: e.deadline,
                            accreditor: e.accreditor,
                            posted: at,
                            spec: None,
                            claims: Vec::new(),
                            refund: None,
                        },
                    );
                    "QueryPosted".into()
                }
                t if t == QueryMarket::Claimed::SIGNATURE_HASH => {
                    let e = decode!(QueryMarket::Claimed);
                    let claim = Claim {
                        dataset: small(e.datasetId),
                        custodian: e.custodian,
                        proof_hash: e.proofHash,
                        count: e.count,
                        nonmissing: e.nonmissing,
                        sum: e.sum,
                        sum_squares: e.sumOfSquares,
                        suppressed: e.suppressed,
                        verdict: None,
                        paid: e.paid,
                        at,
                    };
                    self.answer(contract, "Claimed", e.queryId, claim);
                    "Claimed".into()
                }
                t if t == QueryMarket::Attested::SIGNATURE_HASH => {
                    let e = decode!(QueryMarket::Attested);
                    let claim = Claim {
                        dataset: small(e.datasetId),
                        custodian: e.custodian,
                        proof_hash: e.proofHash,
                        count: U256::ZERO,
                        nonmissing: U256::ZERO,
                        sum: U256::ZERO,
                        sum_squares: U256::ZERO,
                        suppressed: false,
                        verdict: Some(e.verdict),
                        paid: e.paid,
                        at,
                    };
                    self.answer(contract, "Attested", e.queryId, claim);
                    "Attested".into()
                }
                t if t == QueryMarket::Refunded::SIGNATURE_HASH => {
                    let e = decode!(QueryMarket::Refunded);
                    let refund = Refund {
                        sponsor: e.sponsor,
                        amount: e.amount,
                        at,
                    };
                    match self.queries.get_mut(&small(e.queryId)) {
                        Some(q) => q.refund = Some(refund),
                        None => self.unplaced(
                            contract,
                            "Refunded",
                            format!(
                                "query #{} was posted before the first block read",
                                e.queryId
                            ),
                            at,
                        ),
                    }
                    "Refunded".into()
                }
                _ => self.market_event(contract, log, topic, at),
            },
            Contract::TrialMarket => match topic {
                t if t == TrialMarket::TrialOpened::SIGNATURE_HASH => {
                    let e = decode!(TrialMarket::TrialOpened);
                    self.trials.push(Trial {
                        id: e.trialId,
                        sponsor: e.sponsor,
                        spec_hash: e.specHash,
                        schema_hash: e.schemaHash,
                        criteria: e.criteria,
                        bounty: e.bounty,
                        patient_share_bps: e.patientShareBps,
                        cap: e.cap,
                        deadline: e.deadline,
                        accreditor: e.accreditor,
                        opened: at,
                        spec: None,
                        enrolments: Vec::new(),
                        skipped: Vec::new(),
                        refund: None,
                    });
                    "TrialOpened".into()
                }
                t if t == TrialMarket::Enrolled::SIGNATURE_HASH => {
                    let e = decode!(TrialMarket::Enrolled);
                    let enrolment = Enrolment {
                        nullifier: e.nullifier,
                        dataset: small(e.datasetId),
                        custodian: e.custodian,
                        patient_payout: e.patientPayout,
                        custodian_amount: e.custodianAmount,
                        patient_amount: e.patientAmount,
                        proof_hash: e.proofHash,
                        at,
                    };
                    match self.trials.iter_mut().find(|t| t.id == e.trialId) {
                        Some(t) => t.enrolments.push(enrolment),
                        None => self.unplaced(
                            contract,
                            "Enrolled",
                            format!(
                                "trial {} was opened before the first block read",
                                word_hex(&e.trialId)
                            ),
                            at,
                        ),
                    }
                    "Enrolled".into()
                }
                t if t == TrialMarket::EnrolmentSkipped::SIGNATURE_HASH => {
                    let e = decode!(TrialMarket::EnrolmentSkipped);
                    let skipped = Skipped {
                        nullifier: e.nullifier,
                        at,
                    };
                    match self.trials.iter_mut().find(|t| t.id == e.trialId) {
                        Some(t) => t.skipped.push(skipped),
                        None => self.unplaced(
                            contract,
                            "EnrolmentSkipped",
                            format!(
                                "trial {} was opened before the first block read",
                                word_hex(&e.trialId)
                            ),
                            at,
                        ),
                    }
                    "EnrolmentSkipped".into()
                }
                t if t == TrialMarket::TrialRefunded::SIGNATURE_HASH => {
                    let e = decode!(TrialMarket::TrialRefunded);
                    let refund = Refund {
                        sponsor: e.sponsor,
                        amount: e.amount,
                        at,
                    };
                    match self.trials.iter_mut().find(|t| t.id == e.trialId) {
                        Some(t) => t.refund = Some(refund),
                        None => self.unplaced(
                            contract,
                            "TrialRefunded",
                            format!(
                                "trial {} was opened before the first block read",
                                word_hex(&e.trialId)
                            ),
                            at,
                        ),
                    }
                    "TrialRefunded".into()
                }
                _ => self.market_event(contract, log, topic, at),
            },
        }
    }

    /// Events both markets emit (same signatures): spec publication, proof gate, verifiers,
    /// consent purposes, escrow, ownership.
    fn market_event(&mut self, contract: Contract, log: &Log, topic: B256, at: At) -> String {
        macro_rules! decode {
            ($t:ty) => {
                match log.log_decode::<$t>() {
                    Ok(l) => l.inner.data,
                    Err(e) => {
                        let name = <$t as SolEvent>::SIGNATURE;
                        self.unplaced(contract, name, format!("undecodable: {e}"), at);
                        return "undecodable".into();
                    }
                }
            };
        }
        match topic {
            // Both markets emit the same `SpecPublished(id, specHash, spec)`.
            t if t == QueryMarket::SpecPublished::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::SpecPublished);
                let spec = PublishedSpec {
                    bytes: e.spec,
                    indexed_hash: e.specHash,
                    at,
                };
                // Placed once every log is read: a market may publish before it posts.
                self.pending_specs.push((contract, e.id, spec));
                "SpecPublished".into()
            }
            t if t == QueryMarket::ConsentPurposeSet::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::ConsentPurposeSet);
                self.consent_purposes.push(ConsentPurposeEvent {
                    market: contract,
                    schema_hash: e.schemaHash,
                    index: e.index,
                    change: ConsentPurposeChange::Set {
                        previous: e.previous,
                        name: e.name,
                    },
                    at,
                });
                "ConsentPurposeSet".into()
            }
            t if t == QueryMarket::ConsentPurposeProposed::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::ConsentPurposeProposed);
                self.consent_purposes.push(ConsentPurposeEvent {
                    market: contract,
                    schema_hash: e.schemaHash,
                    index: e.index,
                    change: ConsentPurposeChange::Proposed {
                        name: e.name,
                        eta: e.eta,
                    },
                    at,
                });
                "ConsentPurposeProposed".into()
            }
            t if t == QueryMarket::ConsentPurposeProposalCancelled::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::ConsentPurposeProposalCancelled);
                self.consent_purposes.push(ConsentPurposeEvent {
                    market: contract,
                    schema_hash: e.schemaHash,
                    index: e.index,
                    change: ConsentPurposeChange::Cancelled,
                    at,
                });
                "ConsentPurposeProposalCancelled".into()
            }
            t if t == QueryMarket::ProofAccepted::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::ProofAccepted);
                self.accepted.push(Accepted {
                    market: contract,
                    circuit: e.circuitId,
                    verifier: e.verifier,
                    proof_hash: e.proofHash,
                    at,
                });
                "ProofAccepted".into()
            }
            t if t == QueryMarket::VerifierSet::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::VerifierSet);
                self.verifier_events.push(VerifierEvent {
                    market: contract,
                    circuit: e.circuitId,
                    change: VerifierChange::Set {
                        schema_hash: e.schemaHash,
                        previous: e.previous,
                        verifier: e.verifier,
                        num_constants: e.numConstants,
                        batch: e.batch,
                        cells: e.cells,
                        data_columns: e.dataColumns,
                    },
                    at,
                });
                "VerifierSet".into()
            }
            t if t == QueryMarket::VerifierProposed::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::VerifierProposed);
                self.verifier_events.push(VerifierEvent {
                    market: contract,
                    circuit: e.circuitId,
                    change: VerifierChange::Proposed {
                        schema_hash: e.schemaHash,
                        verifier: e.verifier,
                        num_constants: e.numConstants,
                        batch: e.batch,
                        cells: e.cells,
                        data_columns: e.dataColumns,
                        eta: e.eta,
                    },
                    at,
                });
                "VerifierProposed".into()
            }
            t if t == QueryMarket::VerifierProposalCancelled::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::VerifierProposalCancelled);
                self.verifier_events.push(VerifierEvent {
                    market: contract,
                    circuit: e.circuitId,
                    change: VerifierChange::Cancelled,
                    at,
                });
                "VerifierProposalCancelled".into()
            }
            t if t == QueryMarket::Withdrawn::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::Withdrawn);
                self.withdrawals.push(Withdrawal {
                    market: contract,
                    account: e.account,
                    token: e.token,
                    amount: e.amount,
                    at,
                });
                "Withdrawn".into()
            }
            t if t == QueryMarket::TokenAllowed::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::TokenAllowed);
                self.tokens.push(TokenAllowed {
                    market: contract,
                    token: e.token,
                    allowed: e.allowed,
                    at,
                });
                "TokenAllowed".into()
            }
            t if t == QueryMarket::OwnershipTransferred::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::OwnershipTransferred);
                self.ownership.push(Ownership {
                    market: contract,
                    what: OwnershipChange::Transferred {
                        from: e.oldOwner,
                        to: e.newOwner,
                    },
                    at,
                });
                "OwnershipTransferred".into()
            }
            t if t == QueryMarket::OwnershipHandoverRequested::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::OwnershipHandoverRequested);
                self.ownership.push(Ownership {
                    market: contract,
                    what: OwnershipChange::HandoverRequested {
                        pending: e.pendingOwner,
                    },
                    at,
                });
                "OwnershipHandoverRequested".into()
            }
            t if t == QueryMarket::OwnershipHandoverCanceled::SIGNATURE_HASH => {
                let e = decode!(QueryMarket::OwnershipHandoverCanceled);
                self.ownership.push(Ownership {
                    market: contract,
                    what: OwnershipChange::HandoverCanceled {
                        pending: e.pendingOwner,
                    },
                    at,
                });
                "OwnershipHandoverCanceled".into()
            }
            _ => self.unknown(contract, topic, at),
        }
    }

    fn unknown(&mut self, contract: Contract, topic: B256, at: At) -> String {
        self.unplaced(
            contract,
            &format!("topic {topic}"),
            "an event the audited ABI does not describe".into(),
            at,
        );
        "unknown".into()
    }
}
