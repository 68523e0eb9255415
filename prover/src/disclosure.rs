//! Disclosure control on the custodian's side: a per-dataset **ledger** of what has been
//! answered and a **policy** that refuses differencing attacks (docs/data.md, "Disclosure
//! control").
//!
//! Small-cell suppression alone does not protect a patient: a sponsor asks the sum over ages
//! 40–65, then over 40–64; both cohorts have at least 11 patients, and the difference is the
//! value of the 65-year-old. The custodian therefore remembers, for every answer it released,
//! which records matched ([`MatchingSet`], a bitset over record indices), and [`check`] refuses
//! a new query whose matching set differs from an answered one's by at least one but fewer
//! than `min_difference` records. The policy ([`Policy`]) also sets a floor under every query's
//! `min_cohort` and, optionally, a budget of answers per sponsor.
//!
//! Files in the dataset directory (next to `records.csv`, and as secret as it):
//!
//! | file | content |
//! |---|---|
//! | `ledger.json` | [`Ledger`]: every answer released (proved or claimed), with its matching set |
//! | `policy.json` | optional [`Policy`] (defaults without it; `--policy FILE` overrides it) |
//! | `.ledger.lock` | an OS file lock held from [`check`] to [`LedgerFile::record`] |
//!
//! The ledger is written atomically ([`write_atomic`]), never reset: an unreadable ledger is an
//! error ([`DisclosureError::LedgerCorrupt`]), not an empty one. Entries are only ever added.
//! `prove` and `custodian claim` lock it ([`LedgerFile::open`]) before checking and keep the
//! lock until the answer is recorded, so two concurrent runs cannot both pass the check with
//! queries that difference each other.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::{
    dataset::{write_atomic, Dataset},
    error::{DatasetError, QueryError},
    query::{QueryConstants, QueryResult, QuerySpec, DEFAULT_MIN_COHORT},
    schema::Schema,
};

/// The ledger's file name in a dataset directory.
pub const LEDGER_FILE: &str = "ledger.json";
/// The policy's file name in a dataset directory (used when no `--policy` is given).
pub const POLICY_FILE: &str = "policy.json";
/// The lock file guarding the ledger.
pub const LOCK_FILE: &str = ".ledger.lock";
/// Ledger format version.
pub const LEDGER_VERSION: u32 = 1;

/// Why a query is refused, or the ledger or policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// The query's `min_cohort` is below the custodian's floor.
    #[error(
        "refused by the disclosure policy: the query's min_cohort {min_cohort} is below this \
         custodian's floor of {floor} (min_cohort_floor), whatever the query says"
    )]
    MinCohortBelowFloor {
        /// The query's `min_cohort`.
        min_cohort: u64,
        /// The policy's floor.
        floor: u64,
    },
    /// The matching set is too close to an answered one's: together they would isolate the
    /// few records in between (a differencing attack).
    #[error(
        "refused by the disclosure policy: its matching records differ from those of an \
         answered query ({earlier}) by {difference} record(s), fewer than min_difference \
         {min_difference}: the two answers together would release those patients' values \
         (differencing)"
    )]
    TooCloseToAnswered {
        /// `|A Δ B|`.
        difference: usize,
        /// The policy's `min_difference`.
        min_difference: u64,
        /// The answered query, in words (spec hash, on-chain query id, time).
        earlier: String,
    },
    /// The sponsor has used up its budget of answers from this dataset.
    #[error(
        "refused by the disclosure policy: sponsor {sponsor} already has {answered} answer(s) \
         from this dataset, the policy allows {max} (max_answers_per_sponsor)"
    )]
    SponsorBudget {
        /// The sponsor's address.
        sponsor: String,
        /// Answers it already has.
        answered: u64,
        /// The policy's budget.
        max: u64,
    },
    /// The artifact was proven over another commitment than the dataset directory's.
    #[error(
        "the artifact is a proof over commitment {artifact}, the dataset directory holds \
         {dataset}: give the dataset the proof was made from"
    )]
    WrongDataset {
        /// The artifact's commitment.
        artifact: String,
        /// The dataset's commitment.
        dataset: String,
    },
    /// The query does not compile against the dataset's schema.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The policy file cannot be read.
    #[error("policy {path}: {source}")]
    PolicyIo {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The policy file is not a policy (bad JSON, an unknown key).
    #[error("policy {path}: {source}")]
    PolicyParse {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// A policy value is out of range.
    #[error("policy {path}: {field} must be at least 1")]
    PolicyZero {
        /// File path.
        path: PathBuf,
        /// The field.
        field: &'static str,
    },
    /// The ledger (or its lock) cannot be read or locked.
    #[error("ledger {path}: {source}")]
    LedgerIo {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The ledger is not valid JSON of the ledger format: it is never reset silently.
    #[error(
        "ledger {path} is unreadable ({source}); it is not reset: restore it from a backup \
         (answers missing from it can be differenced). Nothing was proven or claimed"
    )]
    LedgerCorrupt {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// The ledger was written by another format version.
    #[error("ledger {path} has format version {found}, this zkcohort reads {LEDGER_VERSION}")]
    LedgerVersion {
        /// File path.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// The ledger could not be written (the previous ledger is intact).
    #[error("ledger not written: {0}")]
    LedgerWrite(#[source] DatasetError),
}

/// The custodian's disclosure policy (`policy.json`); every field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Refuse any query whose `min_cohort` is below this (default 11).
    #[serde(default = "default_floor")]
    pub min_cohort_floor: u64,
    /// Refuse a query whose matching set differs from an answered one's by at least one but
    /// fewer than this many records (default: `min_cohort_floor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_difference: Option<u64>,
    /// At most this many on-chain answers per sponsor from this dataset (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_answers_per_sponsor: Option<u64>,
}

fn default_floor() -> u64 {
    DEFAULT_MIN_COHORT
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_cohort_floor: DEFAULT_MIN_COHORT,
            min_difference: None,
            max_answers_per_sponsor: None,
        }
    }
}

/// Where a policy came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// The documented defaults (no file).
    Default,
    /// A file (`--policy`, or the dataset's `policy.json`).
    File(PathBuf),
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::Default => f.write_str("default policy"),
            PolicySource::File(p) => write!(f, "policy {}", p.display()),
        }
    }
}

impl Policy {
    /// The effective `min_difference` k.
    pub fn min_difference(&self) -> u64 {
        self.min_difference.unwrap_or(self.min_cohort_floor)
    }

    /// Reads a policy file (unknown keys are errors; 0 for a floor or a difference is refused).
    pub fn load(path: &Path) -> Result<Self, DisclosureError> {
        let bytes = fs::read(path).map_err(|source| DisclosureError::PolicyIo {
            path: path.to_owned(),
            source,
        })?;
        let policy: Policy =
            serde_json::from_slice(&bytes).map_err(|source| DisclosureError::PolicyParse {
                path: path.to_owned(),
                source,
            })?;
        let zero = |field| DisclosureError::PolicyZero {
            path: path.to_owned(),
            field,
        };
        if policy.min_cohort_floor == 0 {
            return Err(zero("min_cohort_floor"));
        }
        if policy.min_difference == Some(0) {
            return Err(zero("min_difference"));
        }
        if policy.max_answers_per_sponsor == Some(0) {
            return Err(zero("max_answers_per_sponsor"));
        }
        Ok(policy)
    }

    /// The policy of a dataset directory: `explicit` if given, else its `policy.json` if
    /// present, else the defaults.
    pub fn for_dataset(
        dir: &Path,
        explicit: Option<&Path>,
    ) -> Result<(Self, PolicySource), DisclosureError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => {
                let p = dir.join(POLICY_FILE);
                if !p.exists() {
                    return Ok((Policy::default(), PolicySource::Default));
                }
                p
            }
        };
        Ok((Policy::load(&path)?, PolicySource::File(path)))
    }
}

/// The records a query matches (criteria and consent; before suppression), as a bitset over
/// record indices. Custodian-private: its `Debug` shows only the record count.
#[derive(Clone, PartialEq, Eq)]
pub struct MatchingSet {
    records: usize,
    bits: Vec<u8>,
}

impl fmt::Debug for MatchingSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MatchingSet {{ records: {}, .. }}", self.records)
    }
}

impl MatchingSet {
    /// The records of `records` (schema order) that match the compiled query: the same rule
    /// as [`crate::query::evaluate`] (consent bit set and every value column in range).
    pub fn of(schema: &Schema, records: &[Vec<u64>], q: &QueryConstants) -> Self {
        let consent = schema.consent_index();
        let value_cols: Vec<usize> = schema.value_columns().map(|(i, _)| i).collect();
        let indices = records.iter().enumerate().filter_map(|(i, r)| {
            let consented = r[consent] >> q.purpose & 1 == 1;
            let matches = value_cols
                .iter()
                .zip(&q.ranges)
                .all(|(&c, &(lo, hi))| lo <= r[c] && r[c] <= hi);
            (consented && matches).then_some(i)
        });
        Self::from_indices(records.len(), indices)
    }

    /// A set over `records` records holding `indices` (each below `records`).
    pub fn from_indices(records: usize, indices: impl IntoIterator<Item = usize>) -> Self {
        let mut bits = vec![0u8; records.div_ceil(8)];
        for i in indices {
            assert!(i < records, "record index {i} out of {records}");
            bits[i / 8] |= 1 << (i % 8);
        }
        MatchingSet { records, bits }
    }

    /// Records in the dataset the set ranges over.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Matching records.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Whether no record matches.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|b| *b == 0)
    }

    /// Whether record `index` is in the set.
    pub fn contains(&self, index: usize) -> bool {
        index < self.records && self.bits[index / 8] >> (index % 8) & 1 == 1
    }

    /// The set's records for which `keep(index)` holds.
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> Self {
        let indices = (0..self.records).filter(|&i| self.contains(i) && keep(i));
        Self::from_indices(self.records, indices)
    }

    /// `|A Δ B|`: records in exactly one of the two sets (sets over the same records).
    pub fn symmetric_difference(&self, other: &MatchingSet) -> usize {
        debug_assert_eq!(self.records, other.records);
        self.bits
            .iter()
            .zip(&other.bits)
            .map(|(a, b)| (a ^ b).count_ones() as usize)
            .sum()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchingSetRepr {
    records: usize,
    /// Bit `i` (byte `i / 8`, bit `i % 8`) is record `i`; hex.
    bits: String,
}

impl Serialize for MatchingSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MatchingSetRepr {
            records: self.records,
            bits: hex::encode(&self.bits),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MatchingSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let repr = MatchingSetRepr::deserialize(d)?;
        let bits = hex::decode(&repr.bits)
            .map_err(|e| D::Error::custom(format!("matching set bits: {e}")))?;
        if bits.len() != repr.records.div_ceil(8) {
            return Err(D::Error::custom(format!(
                "matching set of {} records has {} bytes",
                repr.records,
                bits.len()
            )));
        }
        if repr.records % 8 != 0 && bits.last().is_some_and(|b| b >> (repr.records % 8) != 0) {
            return Err(D::Error::custom("matching set has bits past its records"));
        }
        Ok(MatchingSet {
            records: repr.records,
            bits,
        })
    }
}

/// Fingerprint of a dataset's records (schema hash, count and every encoded value): answers
/// are compared only with answers over the same records, whose indices mean the same patients.
/// Custodian-private (a hash of the records); never printed.
pub fn records_digest(dataset: &Dataset) -> String {
    let mut h = Sha256::new();
    h.update(b"zkcohort-ledger-records-v1");
    h.update(dataset.schema.hash());
    h.update((dataset.records.len() as u64).to_le_bytes());
    for r in &dataset.records {
        for v in r {
            h.update(v.to_le_bytes());
        }
    }
    format!("0x{}", hex::encode(h.finalize()))
}

/// An on-chain answer: which market query it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnChainAnswer {
    /// Chain id.
    pub chain_id: u64,
    /// Query market address.
    pub market: String,
    /// Query id.
    pub query_id: u64,
    /// The claim transaction (set once mined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
}

impl OnChainAnswer {
    fn same_query(&self, other: &OnChainAnswer) -> bool {
        self.chain_id == other.chain_id
            && self.market.eq_ignore_ascii_case(&other.market)
            && self.query_id == other.query_id
    }
}

/// A query about to be answered from a dataset: what [`check`] decides on.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The spec.
    pub spec: QuerySpec,
    /// Its spec hash, `0x…`.
    pub spec_hash: String,
    /// [`records_digest`] of the dataset.
    pub records_digest: String,
    /// The records it matches.
    pub matching: MatchingSet,
    /// The market query it answers (claims).
    pub on_chain: Option<OnChainAnswer>,
    /// The sponsor who posted it, if known (claims).
    pub sponsor: Option<String>,
}

impl Candidate {
    /// `spec` over `dataset` (compiled against its schema; no sponsor, not on-chain).
    pub fn new(dataset: &Dataset, spec: &QuerySpec) -> Result<Self, DisclosureError> {
        let constants = spec.compile(&dataset.schema)?;
        Ok(Candidate {
            spec: spec.clone(),
            spec_hash: format!("0x{}", hex::encode(spec.hash())),
            records_digest: records_digest(dataset),
            matching: MatchingSet::of(&dataset.schema, &dataset.records, &constants),
            on_chain: None,
            sponsor: None,
        })
    }

    /// The cells a stratified answer releases instead of the cohort they partition: per
    /// stratum `v < count` of schema column `column`, the matching records whose `column` is
    /// stored as `v`, each named `<query> [<column> = <code>]`. The ledger checks and records
    /// each cell as an answer of its own (a later query differing from one cell by a record
    /// would reveal that record as surely as one differing from a whole cohort).
    pub fn strata(&self, dataset: &Dataset, column: usize, count: usize) -> Vec<Candidate> {
        let c = &dataset.schema.columns[column];
        (0..count as u64)
            .map(|v| {
                let mut cell = self.clone();
                cell.spec.name = format!("{} [{} = {}]", self.spec.name, c.name, c.decode(v));
                cell.matching = self.matching.filter(|i| dataset.records[i][column] == v);
                cell
            })
            .collect()
    }

    /// The candidate as the answer to a market query posted by `sponsor`.
    pub fn for_query(mut self, on_chain: OnChainAnswer, sponsor: String) -> Self {
        self.on_chain = Some(on_chain);
        self.sponsor = Some(sponsor);
        self
    }
}

/// One released answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// When it was recorded (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub answered_at: String,
    /// The spec hash.
    pub spec_hash: String,
    /// The spec's name.
    pub query_name: String,
    /// The statistic column.
    pub statistic: String,
    /// The query's `min_cohort`.
    pub min_cohort: u64,
    /// The dataset commitment the proof was made against.
    pub commitment: String,
    /// The released (proven) result.
    pub result: QueryResult,
    /// The market query it answered (claims); `None` for a proof made with `prove`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_chain: Option<OnChainAnswer>,
    /// The sponsor, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<String>,
    /// [`records_digest`] of the records answered over (private).
    pub records_digest: String,
    /// The matching records (private).
    pub matching: MatchingSet,
    /// An attestation's verdict (`result` then releases only the records total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<bool>,
}

impl LedgerEntry {
    /// The answer in words for refusals: spec hash, market query, time (no record data).
    pub fn describe(&self) -> String {
        let query = match &self.on_chain {
            Some(q) => format!("query #{} on chain {}", q.query_id, q.chain_id),
            None => "proved".into(),
        };
        format!("spec {}, {query}, {}", self.spec_hash, self.answered_at)
    }
}

/// A dataset's ledger of released answers (`ledger.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// Format version ([`LEDGER_VERSION`]).
    pub version: u32,
    /// A reminder that the file is secret.
    pub warning: String,
    /// Answers in the order they were released.
    pub entries: Vec<LedgerEntry>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            version: LEDGER_VERSION,
            warning: "SECRET: matching sets of released answers (record indices); keep with \
                      records.csv; never delete or edit by hand"
                .into(),
            entries: Vec::new(),
        }
    }
}

impl Ledger {
    /// Reads the ledger of a dataset directory (empty if it has none yet). An unreadable file
    /// is an error, never an empty ledger.
    pub fn read(dir: &Path) -> Result<Self, DisclosureError> {
        let path = dir.join(LEDGER_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ledger::default()),
            Err(source) => return Err(DisclosureError::LedgerIo { path, source }),
        };
        // The version first, so a newer format is named as such rather than as corrupt.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version =
            serde_json::from_slice(&bytes).map_err(|source| DisclosureError::LedgerCorrupt {
                path: path.clone(),
                source,
            })?;
        if version.version != LEDGER_VERSION {
            return Err(DisclosureError::LedgerVersion {
                path,
                found: version.version,
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|source| DisclosureError::LedgerCorrupt { path, source })
    }

    /// Distinct on-chain queries of `sponsor` answered (excluding `except`).
    fn answers_of(&self, sponsor: &str, except: Option<&OnChainAnswer>) -> u64 {
        let mut seen: Vec<&OnChainAnswer> = Vec::new();
        for e in &self.entries {
            let (Some(s), Some(q)) = (&e.sponsor, &e.on_chain) else {
                continue;
            };
            if !s.eq_ignore_ascii_case(sponsor)
                || except.is_some_and(|x| x.same_query(q))
                || seen.iter().any(|p| p.same_query(q))
            {
                continue;
            }
            seen.push(q);
        }
        seen.len() as u64
    }
}

/// Decides whether `candidate` may be answered under `policy` given what `ledger` has already
/// released: its `min_cohort` is at least the floor; its matching set is identical to, or at
/// least `min_difference` records away from, every answered set over the same records
/// (whatever the statistic: see docs/data.md); and its sponsor is within its budget.
pub fn check(
    policy: &Policy,
    ledger: &Ledger,
    candidate: &Candidate,
) -> Result<(), DisclosureError> {
    if candidate.spec.min_cohort < policy.min_cohort_floor {
        return Err(DisclosureError::MinCohortBelowFloor {
            min_cohort: candidate.spec.min_cohort,
            floor: policy.min_cohort_floor,
        });
    }
    let k = policy.min_difference();
    let closest = ledger
        .entries
        .iter()
        .filter(|e| e.records_digest == candidate.records_digest)
        .map(|e| (e.matching.symmetric_difference(&candidate.matching), e))
        .filter(|(d, _)| *d > 0 && (*d as u64) < k)
        .min_by_key(|(d, _)| *d);
    if let Some((difference, earlier)) = closest {
        return Err(DisclosureError::TooCloseToAnswered {
            difference,
            min_difference: k,
            earlier: earlier.describe(),
        });
    }
    if let (Some(max), Some(sponsor)) = (policy.max_answers_per_sponsor, &candidate.sponsor) {
        let answered = ledger.answers_of(sponsor, candidate.on_chain.as_ref());
        if answered >= max {
            return Err(DisclosureError::SponsorBudget {
                sponsor: sponsor.clone(),
                answered,
                max,
            });
        }
    }
    Ok(())
}

/// The ledger of a dataset directory, locked for this process until dropped.
#[derive(Debug)]
pub struct LedgerFile {
    dir: PathBuf,
    ledger: Ledger,
    // Held for its lock: released when the file is closed (also on a crash).
    _lock: fs::File,
}

impl LedgerFile {
    /// Locks the ledger of `dir` (waiting for another `prove`/`claim` holding it) and reads it.
    pub fn open(dir: &Path) -> Result<Self, DisclosureError> {
        let lock_path = dir.join(LOCK_FILE);
        let io = |source| DisclosureError::LedgerIo {
            path: lock_path.clone(),
            source,
        };
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                tracing::info!(
                    "waiting for the ledger of {}: another prove or claim holds it",
                    dir.display()
                );
                lock.lock().map_err(io)?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let ledger = Ledger::read(dir)?;
        Ok(LedgerFile {
            dir: dir.to_owned(),
            ledger,
            _lock: lock,
        })
    }

    /// The ledger as read.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// [`check`] against this ledger.
    pub fn check(&self, policy: &Policy, candidate: &Candidate) -> Result<(), DisclosureError> {
        check(policy, &self.ledger, candidate)
    }

    /// Appends the released answer and writes the ledger atomically; on a failed write the
    /// previous file (and this ledger in memory) are unchanged.
    pub fn record(
        &mut self,
        candidate: &Candidate,
        commitment: &str,
        result: &QueryResult,
    ) -> Result<(), DisclosureError> {
        self.append(candidate, commitment, result, None)
    }

    /// [`Self::record`] for an attestation that released `verdict` over `result` (which
    /// releases the records total alone).
    pub fn record_verdict(
        &mut self,
        candidate: &Candidate,
        commitment: &str,
        result: &QueryResult,
        verdict: bool,
    ) -> Result<(), DisclosureError> {
        self.append(candidate, commitment, result, Some(verdict))
    }

    fn append(
        &mut self,
        candidate: &Candidate,
        commitment: &str,
        result: &QueryResult,
        verdict: Option<bool>,
    ) -> Result<(), DisclosureError> {
        let entry = LedgerEntry {
            answered_at: utc_now(),
            spec_hash: candidate.spec_hash.clone(),
            query_name: candidate.spec.name.clone(),
            statistic: candidate.spec.statistic.clone(),
            min_cohort: candidate.spec.min_cohort,
            commitment: commitment.to_owned(),
            result: result.clone(),
            on_chain: candidate.on_chain.clone(),
            sponsor: candidate.sponsor.clone(),
            records_digest: candidate.records_digest.clone(),
            matching: candidate.matching.clone(),
            verdict,
        };
        self.ledger.entries.push(entry);
        let bytes = serde_json::to_vec_pretty(&self.ledger).expect("a ledger serialises");
        if let Err(e) = write_atomic(&self.dir.join(LEDGER_FILE), &bytes) {
            self.ledger.entries.pop();
            return Err(DisclosureError::LedgerWrite(e));
        }
        Ok(())
    }
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let now = crate::utc::Civil::from_system(std::time::SystemTime::now());
    format!("{}Z", now.format("T", ":"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{icd10, query::evaluate};

    /// 20 consenting patients aged 40–59, one aged 65, 15 aged 20–34, and 5 aged 40–59
    /// without research consent.
    fn dataset() -> Dataset {
        let rec = |age: u64, consent: u64| {
            vec![
                age,
                age % 2,
                icd10::encode("E11.9").unwrap(),
                60 + age % 30,
                120,
                300,
                consent,
                0,
            ]
        };
        let mut records: Vec<Vec<u64>> = (40..60).map(|a| rec(a, 1)).collect();
        records.push(rec(65, 1));
        records.extend((20..35).map(|a| rec(a, 1)));
        records.extend((40..45).map(|a| rec(a, 0b10)));
        Dataset {
            schema: Schema::clinical_default(),
            records,
        }
    }

    fn spec(age: (u64, u64), statistic: &str) -> QuerySpec {
        serde_json::from_value(serde_json::json!({
            "name": format!("{statistic}, ages {}-{}", age.0, age.1),
            "criteria": {"age": [age.0, age.1]},
            "consent": "research",
            "statistic": statistic,
        }))
        .unwrap()
    }

    fn candidate(age: (u64, u64), statistic: &str) -> Candidate {
        Candidate::new(&dataset(), &spec(age, statistic)).unwrap()
    }

    fn answered(ledger: &mut Ledger, c: &Candidate) {
        answered_over(ledger, &dataset(), c)
    }

    fn on_chain(query_id: u64) -> OnChainAnswer {
        OnChainAnswer {
            chain_id: 31337,
            market: "0x00000000000000000000000000000000000000aa".into(),
            query_id,
            tx: None,
        }
    }

    #[test]
    fn the_differencing_attack_of_the_issue_is_refused() {
        let policy = Policy::default();
        let (a, b) = (candidate((40, 65), "hba1c"), candidate((40, 64), "hba1c"));
        // Both cohorts pass small-cell suppression on their own …
        assert_eq!((a.matching.len(), b.matching.len()), (21, 20));
        let mut ledger = Ledger::default();
        check(&policy, &ledger, &a).unwrap();
        answered(&mut ledger, &a);
        // … but the second would release the 65-year-old's HbA1c by subtraction.
        match check(&policy, &ledger, &b).unwrap_err() {
            DisclosureError::TooCloseToAnswered {
                difference,
                min_difference,
                earlier,
            } => {
                assert_eq!((difference, min_difference), (1, 11));
                assert!(earlier.contains(&a.spec_hash), "{earlier}");
            }
            other => panic!("{other}"),
        }
        let msg = check(&policy, &ledger, &b).unwrap_err().to_string();
        assert!(
            msg.contains("differencing") && msg.contains("by 1 record"),
            "{msg}"
        );
        // The distance ignores the statistic: another column over B is as dangerous.
        assert!(matches!(
            check(&policy, &ledger, &candidate((40, 64), "sbp")),
            Err(DisclosureError::TooCloseToAnswered { .. })
        ));
        // In the other order too.
        let mut ledger = Ledger::default();
        answered(&mut ledger, &b);
        assert!(check(&policy, &ledger, &a).is_err());
        // k is the floor by default; a smaller k lets a difference of one through.
        let lax = Policy {
            min_difference: Some(1),
            ..Policy::default()
        };
        check(&lax, &ledger, &a).unwrap();
    }

    #[test]
    fn a_stratified_answer_releases_its_cells_and_each_is_checked() {
        let policy = Policy::default();
        let data = dataset();
        let a = candidate((40, 65), "hba1c");
        // Sex is stored as age % 2: the cells split the cohort into even and odd ages.
        let cells = a.strata(&data, 1, 2);
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0].matching.len() + cells[1].matching.len(), 21);
        assert_eq!(
            cells[0].matching.symmetric_difference(&cells[1].matching),
            21
        );
        assert!(
            cells[1].spec.name.ends_with("[sex = M]"),
            "{}",
            cells[1].spec.name
        );
        let mut ledger = Ledger::default();
        for c in &cells {
            check(&policy, &ledger, c).unwrap();
            answered(&mut ledger, c);
        }
        // A later cohort one record away from a released cell (not from the whole cohort,
        // which was never released) is a differencing attack on that cell.
        let f = &cells[0].matching;
        let extra = 21; // aged 20: in no cell
        let mut b = candidate((18, 39), "hba1c");
        b.matching = MatchingSet::from_indices(
            data.records.len(),
            (0..data.records.len()).filter(|&i| i == extra || f.contains(i)),
        );
        assert_eq!(b.matching.symmetric_difference(f), 1);
        assert!(matches!(
            check(&policy, &ledger, &b).unwrap_err(),
            DisclosureError::TooCloseToAnswered { difference: 1, .. }
        ));
    }

    #[test]
    fn sets_far_enough_apart_are_answered() {
        let policy = Policy::default();
        let mut ledger = Ledger::default();
        let a = candidate((40, 65), "hba1c");
        answered(&mut ledger, &a);
        // Ages 18–39: 15 records, all outside A: |A Δ C| = 36.
        let c = candidate((18, 39), "hba1c");
        check(&policy, &ledger, &c).unwrap();
        answered(&mut ledger, &c);
        // Ages 40–52: 13 records, |A Δ D| = 8 < 11: refused, and the closest is named.
        let d = candidate((40, 52), "hba1c");
        match check(&policy, &ledger, &d).unwrap_err() {
            DisclosureError::TooCloseToAnswered { difference, .. } => assert_eq!(difference, 8),
            other => panic!("{other}"),
        }
        // Answers over other records (another dataset version) are not compared.
        let mut other = ledger.clone();
        for e in &mut other.entries {
            e.records_digest = "0xother".into();
        }
        check(&policy, &other, &d).unwrap();
    }

    #[test]
    fn an_identical_set_is_answered_whatever_the_statistic() {
        let policy = Policy::default();
        let mut ledger = Ledger::default();
        answered(&mut ledger, &candidate((40, 65), "hba1c"));
        // Same spec again (prove, then claim), another statistic, or other bounds that match
        // the same records: nothing new about any one patient.
        for c in [
            candidate((40, 65), "hba1c"),
            candidate((40, 65), "sbp"),
            candidate((40, 70), "bmi"),
        ] {
            assert_eq!(
                c.matching.symmetric_difference(&ledger.entries[0].matching),
                0
            );
            check(&policy, &ledger, &c).unwrap();
        }
    }

    #[test]
    fn a_min_cohort_below_the_floor_is_refused_whatever_the_query_says() {
        let mut low = spec((18, 127), "age");
        low.min_cohort = 5;
        let c = Candidate::new(&dataset(), &low).unwrap();
        let ledger = Ledger::default();
        let err = check(&Policy::default(), &ledger, &c).unwrap_err();
        assert!(
            matches!(
                err,
                DisclosureError::MinCohortBelowFloor {
                    min_cohort: 5,
                    floor: 11
                }
            ),
            "{err}"
        );
        let strict = Policy {
            min_cohort_floor: 20,
            ..Policy::default()
        };
        assert_eq!(strict.min_difference(), 20, "k defaults to the floor");
        assert!(check(&strict, &ledger, &candidate((18, 127), "age")).is_err());
        let lax = Policy {
            min_cohort_floor: 5,
            ..Policy::default()
        };
        check(&lax, &ledger, &c).unwrap();
    }

    #[test]
    fn the_per_sponsor_budget_counts_distinct_on_chain_answers() {
        let policy = Policy {
            max_answers_per_sponsor: Some(2),
            ..Policy::default()
        };
        let (x, y) = (
            "0x00000000000000000000000000000000000000Bb".to_string(),
            "0x00000000000000000000000000000000000000cc".to_string(),
        );
        let mut ledger = Ledger::default();
        // A proof without a sponsor does not count; the same query claimed counts once.
        answered(&mut ledger, &candidate((40, 65), "hba1c"));
        let q1 = candidate((40, 65), "hba1c").for_query(on_chain(1), x.clone());
        check(&policy, &ledger, &q1).unwrap();
        answered(&mut ledger, &q1);
        answered(&mut ledger, &q1);
        let q2 = candidate((18, 39), "bmi").for_query(on_chain(2), x.to_lowercase());
        check(&policy, &ledger, &q2).unwrap();
        answered(&mut ledger, &q2);
        let q3 =
            candidate((18, 39), "sbp").for_query(on_chain(3), x.to_uppercase().replace("0X", "0x"));
        match check(&policy, &ledger, &q3).unwrap_err() {
            DisclosureError::SponsorBudget { answered, max, .. } => {
                assert_eq!((answered, max), (2, 2))
            }
            other => panic!("{other}"),
        }
        // Another sponsor, and a re-check of an answered query, are within budget.
        check(
            &policy,
            &ledger,
            &candidate((18, 39), "sbp").for_query(on_chain(4), y),
        )
        .unwrap();
        check(&policy, &ledger, &q2).unwrap();
        // Without a budget, no limit.
        check(&Policy::default(), &ledger, &q3).unwrap();
    }

    #[test]
    fn matching_sets_agree_with_the_plain_evaluation() {
        let ds = Dataset::synthesize(300, 5, 3);
        for (age, stat) in [((40, 65), "hba1c"), ((18, 127), "bmi"), ((70, 90), "sbp")] {
            let mut s = spec(age, stat);
            s.min_cohort = 1;
            let q = s.compile(&ds.schema).unwrap();
            let set = MatchingSet::of(&ds.schema, &ds.records, &q);
            assert_eq!(
                set.len() as u64,
                evaluate(&ds.schema, &ds.records, &q).count
            );
            assert_eq!(set.records(), 300);
            let back: MatchingSet =
                serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
            assert_eq!(back, set);
            assert!(!format!("{set:?}").contains(&hex::encode(&set.bits)));
        }
        for bad in [
            r#"{"records":9,"bits":"ff"}"#,
            r#"{"records":4,"bits":"1f"}"#,
            r#"{"records":8,"bits":"zz"}"#,
        ] {
            assert!(serde_json::from_str::<MatchingSet>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_ledger_is_written_atomically_and_survives_a_crash_mid_write() {
        let dir = tempfile::tempdir().unwrap();
        let a = candidate((40, 65), "hba1c");
        let result = evaluate(
            &dataset().schema,
            &dataset().records,
            &a.spec.compile(&dataset().schema).unwrap(),
        );
        {
            let mut file = LedgerFile::open(dir.path()).unwrap();
            assert!(file.ledger().entries.is_empty());
            file.record(&a, "0x01", &result).unwrap();
        }
        let written = fs::read(dir.path().join(LEDGER_FILE)).unwrap();
        // A crash in the middle of the next write leaves a partial temporary file beside it:
        // the ledger still reads as before, with its entry.
        fs::write(
            dir.path().join(format!(".{LEDGER_FILE}.4242.tmp")),
            &written[..written.len() / 2],
        )
        .unwrap();
        let mut file = LedgerFile::open(dir.path()).unwrap();
        assert_eq!(file.ledger().entries.len(), 1);
        assert_eq!(file.ledger().entries[0].result, result);
        assert_eq!(file.ledger().entries[0].matching, a.matching);
        let b = candidate((40, 64), "hba1c");
        assert!(file.check(&Policy::default(), &b).is_err());
        // A write that fails (here: the ledger's name is taken by a non-empty directory)
        // leaves the file and the ledger in memory as they were.
        let moved = dir.path().join("moved.json");
        fs::rename(dir.path().join(LEDGER_FILE), &moved).unwrap();
        fs::create_dir_all(dir.path().join(LEDGER_FILE).join("x")).unwrap();
        let c = candidate((18, 39), "hba1c");
        assert!(matches!(
            file.record(&c, "0x01", &result),
            Err(DisclosureError::LedgerWrite(_))
        ));
        assert_eq!(file.ledger().entries.len(), 1);
        drop(file);
        fs::remove_dir_all(dir.path().join(LEDGER_FILE)).unwrap();
        fs::rename(&moved, dir.path().join(LEDGER_FILE)).unwrap();
        assert_eq!(fs::read(dir.path().join(LEDGER_FILE)).unwrap(), written);
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_never_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        let a = candidate((40, 65), "hba1c");
        let mut ledger = Ledger::default();
        answered(&mut ledger, &a);
        let good = serde_json::to_string_pretty(&ledger).unwrap();
        let mut bad_bits = ledger.clone();
        bad_bits.entries[0].matching.records = 99;
        for (text, want) in [
            (good[..good.len() / 2].to_string(), "unreadable"),
            (String::new(), "unreadable"),
            (good.replacen("\"entries\"", "\"entrees\"", 1), "unreadable"),
            (serde_json::to_string(&bad_bits).unwrap(), "unreadable"),
            (
                good.replacen("\"version\": 1", "\"version\": 2", 1),
                "version 2",
            ),
        ] {
            fs::write(&path, &text).unwrap();
            let err = LedgerFile::open(dir.path()).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("ledger.json"), "{err}");
            assert_eq!(fs::read_to_string(&path).unwrap(), text, "left as it was");
        }
    }

    #[test]
    fn a_second_process_waits_for_the_ledger_lock() {
        let dir = tempfile::tempdir().unwrap();
        let held = LedgerFile::open(dir.path()).unwrap();
        let path = dir.path().to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let file = LedgerFile::open(&path).unwrap();
            tx.send(()).unwrap();
            file.ledger().entries.len()
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the lock is exclusive"
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(waiter.join().unwrap(), 0);
    }

    #[test]
    fn policy_files_have_documented_defaults_and_strict_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (p, source) = Policy::for_dataset(dir.path(), None).unwrap();
        assert_eq!(
            (
                p.min_cohort_floor,
                p.min_difference(),
                p.max_answers_per_sponsor
            ),
            (11, 11, None)
        );
        assert_eq!(source, PolicySource::Default);
        fs::write(
            dir.path().join(POLICY_FILE),
            r#"{"max_answers_per_sponsor": 3}"#,
        )
        .unwrap();
        let (p, source) = Policy::for_dataset(dir.path(), None).unwrap();
        assert_eq!(
            (
                p.min_cohort_floor,
                p.min_difference(),
                p.max_answers_per_sponsor
            ),
            (11, 11, Some(3))
        );
        assert_eq!(source, PolicySource::File(dir.path().join(POLICY_FILE)));
        let explicit = dir.path().join("strict.json");
        fs::write(
            &explicit,
            r#"{"min_cohort_floor": 20, "min_difference": 30}"#,
        )
        .unwrap();
        let (p, _) = Policy::for_dataset(dir.path(), Some(&explicit)).unwrap();
        assert_eq!((p.min_cohort_floor, p.min_difference()), (20, 30));
        for (text, want) in [
            (r#"{"min_cohort_flor": 20}"#, "unknown field"),
            (
                r#"{"min_cohort_floor": 0}"#,
                "min_cohort_floor must be at least 1",
            ),
            (
                r#"{"min_difference": 0}"#,
                "min_difference must be at least 1",
            ),
            (
                r#"{"max_answers_per_sponsor": 0}"#,
                "max_answers_per_sponsor",
            ),
            ("{", "policy"),
        ] {
            fs::write(&explicit, text).unwrap();
            let err = Policy::for_dataset(dir.path(), Some(&explicit))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let missing = dir.path().join("nope.json");
        assert!(matches!(
            Policy::for_dataset(dir.path(), Some(&missing)),
            Err(DisclosureError::PolicyIo { .. })
        ));
    }

    #[test]
    fn the_demo_and_readme_queries_pass_the_default_policy() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let q = QuerySpec::load(&root.join("examples/query-e11-hba1c.json")).unwrap();
        let ds = Dataset::synthesize(400, 11, 3);
        let c = Candidate::new(&ds, &q).unwrap();
        let mut ledger = Ledger::default();
        check(&Policy::default(), &ledger, &c).unwrap();
        // `prove` then `custodian claim` of the same proof: the same set, answered twice.
        answered_over(&mut ledger, &ds, &c);
        check(&Policy::default(), &ledger, &c).unwrap();
    }

    fn answered_over(ledger: &mut Ledger, ds: &Dataset, c: &Candidate) {
        let q = c.spec.compile(&ds.schema).unwrap();
        ledger.entries.push(LedgerEntry {
            answered_at: utc_now(),
            spec_hash: c.spec_hash.clone(),
            query_name: c.spec.name.clone(),
            statistic: c.spec.statistic.clone(),
            min_cohort: c.spec.min_cohort,
            commitment: "0x01".into(),
            result: evaluate(&ds.schema, &ds.records, &q),
            on_chain: c.on_chain.clone(),
            sponsor: c.sponsor.clone(),
            records_digest: c.records_digest.clone(),
            matching: c.matching.clone(),
            verdict: None,
        });
    }
}
