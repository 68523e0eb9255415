//! Query specs (JSON), their compilation into the universal circuit's public constants, and
//! the plain native evaluation that proofs are tested against.
//!
//! ```json
//! {
//!   "name": "HbA1c in type 2 diabetes, 40-65",
//!   "criteria": { "age": [40, 65], "dx": { "prefix": "E11" }, "sex": { "eq": "F" } },
//!   "consent": "research",
//!   "statistic": "hba1c",
//!   "min_cohort": 11
//! }
//! ```
//! Criteria are inclusive ranges in natural units: `[lo, hi]`, `{"min": lo, "max": hi}` (either
//! side optional), `{"eq": v}`, or for ICD-10 columns `{"prefix": "E11"}`. Unmentioned columns
//! are unconstrained (`[0, 2^bits - 1]`). Bounds are translated like cells (a column's `min`
//! offset); a criterion never matches a missing value of a nullable column (docs/data.md).

use std::{collections::BTreeMap, fs, path::Path};

use alloy::{
    primitives::{Address, U256},
    sol_types::SolValue,
};
use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::Field};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    error::QueryError,
    icd10,
    schema::{low_mask, ColumnKind, Schema},
};

/// The CMS small-cell suppression threshold.
pub const DEFAULT_MIN_COHORT: u64 = 11;
/// Width of the cohort-size threshold (and of every count) in the circuit.
pub const COUNT_BITS: u32 = 32;

/// One inclusion criterion as written in a query file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Criterion {
    /// `[lo, hi]`, inclusive.
    Range([serde_json::Value; 2]),
    /// `{"eq": v}`.
    Eq {
        /// The one allowed value.
        eq: serde_json::Value,
    },
    /// `{"prefix": "E11"}` (ICD-10 columns).
    Prefix {
        /// Code prefix.
        prefix: String,
    },
    /// `{"min": lo, "max": hi}`, either optional.
    Bounds(Bounds),
}

/// One- or two-sided bounds; unknown keys (a misspelt `prefix`) are an error, not "no bound".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Inclusive lower bound.
    #[serde(default)]
    pub min: Option<serde_json::Value>,
    /// Inclusive upper bound.
    #[serde(default)]
    pub max: Option<serde_json::Value>,
}

/// A query as a sponsor writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// Free-text name.
    #[serde(default)]
    pub name: String,
    /// Inclusion criteria per column.
    #[serde(default)]
    pub criteria: BTreeMap<String, Criterion>,
    /// Consent purpose a record must carry.
    pub consent: String,
    /// Column whose count, sum and sum of squares are released.
    pub statistic: String,
    /// Minimum cohort size; smaller non-empty cohorts are suppressed.
    #[serde(default = "default_min_cohort")]
    pub min_cohort: u64,
    /// A signal attestation instead of numbers: the answer is one proven verdict, whether the
    /// statistic's mean over at least `min_cohort` values reaches the threshold (a fold
    /// circuit committed with `--attest`). Absent from the canonical JSON of a query without
    /// one, whose hash is therefore unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attest: Option<Attest>,
}

/// What a signal attestation claims.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attest {
    /// The threshold the mean must reach, in the statistic's natural units (`0.8`: a success
    /// rate of at least 80 % for a 0/1 outcome).
    pub mean_at_least: serde_json::Value,
}

fn default_min_cohort() -> u64 {
    DEFAULT_MIN_COHORT
}

/// The public constants of a query for one schema: what the circuit takes as public inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryConstants {
    /// Inclusive `[lo, hi]` per value column (every column but consent), schema order.
    pub ranges: Vec<(u64, u64)>,
    /// Consent purpose bit.
    pub purpose: u64,
    /// Index of the statistic among the value columns.
    pub statistic: u64,
    /// Minimum cohort size.
    pub min_cohort: u64,
    /// An attestation's threshold `(a, b)` on the statistic's mean, in encoded units
    /// ([`crate::schema::Column::encode_mean_threshold`]); `None` for a query releasing
    /// numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<(u64, u64)>,
}

impl QueryConstants {
    /// The constants as field elements, in public-input order.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut out: Vec<Fr> = self
            .ranges
            .iter()
            .flat_map(|(lo, hi)| [Fr::from(*lo), Fr::from(*hi)])
            .collect();
        out.extend([self.purpose, self.statistic, self.min_cohort].map(Fr::from));
        out
    }

    /// Number of field elements [`QueryConstants::to_fields`] returns for a schema.
    pub fn len_for(schema: &Schema) -> usize {
        2 * schema.value_columns().count() + 3
    }
}

/// Where an aggregate proof may be claimed: one query of one market on one chain, by one
/// custodian address. The circuit takes [`ClaimBinding::context`] as a public input (in no
/// constraint: the transcript absorbs every public input, so a proof verifies under exactly one
/// context), and `QueryMarket.claim` recomputes it from `block.chainid`, itself, the query id
/// and `msg.sender` (`QueryMarket.claimContext`). A proof therefore pays nowhere else: not on a
/// second deployment that registered a copy of the commitment, not for another query with the
/// same constants, not to another address. A proof made without a binding has context 0, which
/// no market computes: it is for readers (a journal, a regulator), not for payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimBinding {
    /// Chain id.
    pub chain_id: u64,
    /// The QueryMarket's address.
    pub market: Address,
    /// The query id in that market.
    pub query_id: u64,
    /// The address that will send the claim (the dataset's custodian).
    pub claimant: Address,
}

impl ClaimBinding {
    /// `keccak256(abi.encode(chainId, market, queryId, claimant)) mod r`, as
    /// `QueryMarket.claimContext` computes it.
    pub fn context(&self) -> Fr {
        let preimage = (
            U256::from(self.chain_id),
            self.market,
            U256::from(self.query_id),
            self.claimant,
        )
            .abi_encode();
        crate::commitment::keccak_fr(&preimage)
    }

    /// In words: "query #3 of market 0x… on chain 31337, claimed by 0x…" (or "no market query").
    pub fn describe(binding: Option<&ClaimBinding>) -> String {
        match binding {
            Some(b) => format!(
                "query #{} of market {} on chain {}, claimed by {}",
                b.query_id, b.market, b.chain_id, b.claimant
            ),
            None => "no market query".to_owned(),
        }
    }

    /// The context of an optional binding (0 without one).
    pub fn context_of(binding: Option<&ClaimBinding>) -> Fr {
        binding.map_or(Fr::ZERO, ClaimBinding::context)
    }
}

/// A statistic's released values (after suppression).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Records present in the dataset.
    pub records: u64,
    /// Matching, consenting records (0 if suppressed).
    pub count: u64,
    /// Sum of the statistic column (encoded units; 0 if suppressed).
    #[serde(with = "decimal")]
    pub sum: BigUint,
    /// Sum of squares (encoded units²; 0 if suppressed).
    #[serde(with = "decimal")]
    pub sum_squares: BigUint,
    /// `0 < matches < min_cohort`.
    pub suppressed: bool,
}

impl QueryResult {
    /// The released values as field elements, in public-input order.
    pub fn to_fields(&self) -> Vec<Fr> {
        vec![
            Fr::from(self.records),
            Fr::from(self.count),
            crate::commitment::biguint_to_fr(&self.sum),
            crate::commitment::biguint_to_fr(&self.sum_squares),
            Fr::from(self.suppressed as u64),
        ]
    }

    /// Mean and (population) variance in natural units, when the cohort is released.
    pub fn mean_variance(&self, scale: u32) -> Option<(f64, f64)> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let unit = 10f64.powi(scale as i32);
        let (s, ss) = (
            big_to_f64(&self.sum) / unit,
            big_to_f64(&self.sum_squares) / (unit * unit),
        );
        let mean = s / n;
        Some((mean, (ss / n - mean * mean).max(0.0)))
    }
}

/// Big integers as decimal strings in JSON (numbers would lose precision in most readers).
pub(crate) mod decimal {
    use num_bigint::BigUint;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(x: &BigUint, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&x.to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BigUint, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| D::Error::custom(format!("`{s}` is not a decimal integer")))
    }
}

fn big_to_f64(x: &BigUint) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

impl QuerySpec {
    /// Reads a query file. A `min_cohort` below [`DEFAULT_MIN_COHORT`] is allowed but logged
    /// as a warning: such a query can release counts of fewer than 11 patients.
    pub fn load(path: &Path) -> Result<Self, QueryError> {
        let spec: Self = load_spec(path)?;
        if let Some(warning) = spec.small_cell_warning() {
            tracing::warn!("{}: {warning}", path.display());
        }
        Ok(spec)
    }

    /// Why the query's `min_cohort` is risky, if it is below the small-cell threshold of 11.
    pub fn small_cell_warning(&self) -> Option<String> {
        (self.min_cohort < DEFAULT_MIN_COHORT).then(|| {
            format!(
                "min_cohort {} is below the small-cell suppression threshold of \
                 {DEFAULT_MIN_COHORT}: cohorts of {}..={} patients will be released, which \
                 can identify them",
                self.min_cohort,
                self.min_cohort.max(1),
                DEFAULT_MIN_COHORT - 1
            )
        })
    }

    /// SHA-256 of the canonical JSON form ([`spec_hash`] of [`QuerySpec::document`]): names
    /// the query in artifacts and on-chain (`specHash`).
    pub fn hash(&self) -> [u8; 32] {
        spec_hash(&self.document())
    }

    /// The canonical JSON form ([`canonical_json`]): the document `postQuery` publishes.
    pub fn document(&self) -> Vec<u8> {
        canonical_json(self)
    }

    /// Reads a published spec document back (see [`from_document`]).
    pub fn from_document(document: &[u8]) -> Result<Self, QueryError> {
        from_document(document)
    }

    /// The query in words: who is counted and what is released, e.g. `"HbA1c …": patients
    /// with age 40–65 and dx under E11 who consented to research; count, mean and variance of
    /// hba1c, suppressed when fewer than 11 (but some) patients match`. Public criteria only.
    pub fn describe(&self) -> String {
        match &self.attest {
            Some(a) => format!(
                "{}patients {}; attest that the mean of `{}` is at least {} over at least {} \
                 patients with a value (a yes or a no, no numbers)",
                quoted_name(&self.name),
                describe_criteria(&self.criteria, &self.consent),
                self.statistic,
                a.mean_at_least,
                self.min_cohort
            ),
            None => format!(
                "{}patients {}; count, mean and variance of `{}`, suppressed when fewer than {} \
                 (but some) patients match",
                quoted_name(&self.name),
                describe_criteria(&self.criteria, &self.consent),
                self.statistic,
                self.min_cohort
            ),
        }
    }

    /// Checks the query against a schema and compiles it into public constants.
    pub fn compile(&self, schema: &Schema) -> Result<QueryConstants, QueryError> {
        let (ranges, purpose) = compile_criteria(schema, &self.criteria, &self.consent)?;
        let invalid = |message: String| QueryError::Invalid {
            schema: schema.name.clone(),
            message,
        };
        let statistic = schema
            .value_columns()
            .position(|(_, c)| c.name == self.statistic)
            .ok_or_else(|| {
                invalid(format!(
                    "statistic `{}` is not a value column",
                    self.statistic
                ))
            })? as u64;
        // The missing code of a nullable statistic would be summed like a value: today's
        // circuits need a criterion on the column, which excludes missing values (docs/data.md).
        let (_, stat) = schema
            .value_columns()
            .nth(statistic as usize)
            .expect("found");
        if stat
            .missing_code()
            .is_some_and(|m| ranges[statistic as usize].1 >= m)
        {
            return Err(invalid(format!(
                "statistic `{0}` is a nullable column: statistics over a nullable column need \
                 the fast circuits of #8; add a criterion on `{0}` (any range, e.g. \
                 {{\"min\": …}}), which excludes missing values",
                self.statistic
            )));
        }
        if self.min_cohort == 0 || self.min_cohort >= 1 << COUNT_BITS {
            return Err(invalid(format!("min_cohort must be 1..2^{COUNT_BITS}")));
        }
        let threshold = match &self.attest {
            Some(a) => Some(
                stat.encode_mean_threshold(&a.mean_at_least)
                    .map_err(|e| invalid(format!("attest: mean of `{}`: {e}", self.statistic)))?,
            ),
            None => None,
        };
        Ok(QueryConstants {
            ranges,
            purpose,
            statistic,
            min_cohort: self.min_cohort,
            threshold,
        })
    }
}

/// Reads a JSON spec file (a query or a trial).
pub fn load_spec<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, QueryError> {
    let text = fs::read_to_string(path).map_err(|source| QueryError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| QueryError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The canonical JSON of a spec (a [`QuerySpec`] or a trial spec): serde_json's compact form of
/// the parsed spec, fields in declaration order and criteria sorted by column name. The one
/// definition of a spec's bytes: its SHA-256 ([`spec_hash`]) names the spec in artifacts and
/// on-chain, and the markets publish exactly these bytes (`SpecPublished`).
pub fn canonical_json<T: Serialize>(spec: &T) -> Vec<u8> {
    serde_json::to_vec(spec).expect("a spec serialises")
}

/// SHA-256 of a spec document: what the markets store as `specHash` and require of the
/// published document.
pub fn spec_hash(document: &[u8]) -> [u8; 32] {
    Sha256::digest(document).into()
}

/// Parses a published spec document (from a `SpecPublished` event, say), requiring it to be
/// canonical ([`canonical_json`] of what it parses to), so that its hash is the hash of the
/// spec it reads as.
pub fn from_document<T: Serialize + serde::de::DeserializeOwned>(
    document: &[u8],
) -> Result<T, QueryError> {
    let spec: T = serde_json::from_slice(document).map_err(QueryError::Document)?;
    if canonical_json(&spec) != document {
        return Err(QueryError::NotCanonical);
    }
    Ok(spec)
}

fn quoted_name(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("\"{name}\": ")
    }
}

/// Inclusion criteria and consent in words, e.g. `with age 40–65 and dx under E11 who
/// consented to research` (columns in name order, bounds as the spec writes them).
pub fn describe_criteria(criteria: &BTreeMap<String, Criterion>, consent: &str) -> String {
    let value = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let parts: Vec<String> = criteria
        .iter()
        .map(|(column, c)| match c {
            Criterion::Range([lo, hi]) => format!("{column} {}–{}", value(lo), value(hi)),
            Criterion::Eq { eq } => format!("{column} = {}", value(eq)),
            Criterion::Prefix { prefix } => format!("{column} under {prefix}"),
            Criterion::Bounds(Bounds { min, max }) => match (min, max) {
                (Some(lo), Some(hi)) => format!("{column} {}–{}", value(lo), value(hi)),
                (Some(lo), None) => format!("{column} ≥ {}", value(lo)),
                (None, Some(hi)) => format!("{column} ≤ {}", value(hi)),
                (None, None) => format!("any {column}"),
            },
        })
        .collect();
    let with = match parts.len() {
        0 => String::new(),
        1 => format!("with {} ", parts[0]),
        n => format!("with {} and {} ", parts[..n - 1].join(", "), parts[n - 1]),
    };
    format!("{with}who consented to {consent}")
}

/// Checks inclusion criteria and a consent purpose against a schema and compiles them into
/// inclusive `[lo, hi]` ranges per value column (schema order) and a consent purpose bit. Shared
/// by aggregate queries and trials.
pub fn compile_criteria(
    schema: &Schema,
    criteria: &BTreeMap<String, Criterion>,
    consent: &str,
) -> Result<(Vec<(u64, u64)>, u64), QueryError> {
    let invalid = |message: String| QueryError::Invalid {
        schema: schema.name.clone(),
        message,
    };
    for name in criteria.keys() {
        match schema.column_index(name) {
            None => return Err(invalid(format!("no column `{name}`"))),
            Some(i) if schema.columns[i].is_consent() => {
                return Err(invalid(format!(
                    "`{name}` is the consent column: use the `consent` field"
                )))
            }
            Some(_) => {}
        }
    }
    let mut ranges = Vec::new();
    for (_, col) in schema.value_columns() {
        let bound = |v: &serde_json::Value| {
            col.encode_bound(v)
                .map_err(|e| invalid(format!("column `{}`: {e}", col.name)))
        };
        let (lo, hi) = match criteria.get(&col.name) {
            None => col.unconstrained_range(),
            Some(Criterion::Range([lo, hi])) => (bound(lo)?, bound(hi)?),
            Some(Criterion::Eq { eq }) => {
                let v = bound(eq)?;
                (v, v)
            }
            Some(Criterion::Bounds(Bounds { min, max })) => (
                min.as_ref().map(bound).transpose()?.unwrap_or(0),
                max.as_ref()
                    .map(bound)
                    .transpose()?
                    .unwrap_or(col.max_value()),
            ),
            Some(Criterion::Prefix { prefix }) => match col.kind {
                ColumnKind::Icd10 => icd10::prefix_range(prefix)
                    .map_err(|e| invalid(format!("column `{}`: {e}", col.name)))?,
                _ => {
                    return Err(invalid(format!(
                        "column `{}`: `prefix` only applies to ICD-10 columns",
                        col.name
                    )))
                }
            },
        };
        if lo > hi {
            return Err(invalid(format!(
                "column `{}`: empty range {lo} > {hi}",
                col.name
            )));
        }
        debug_assert!(hi <= low_mask(col.bits()));
        ranges.push((lo, hi));
    }
    let purpose = schema
        .purposes()
        .iter()
        .position(|p| p == consent)
        .ok_or_else(|| {
            invalid(format!(
                "consent purpose `{consent}` is not one of [{}]",
                schema.purposes().join(", ")
            ))
        })? as u64;
    Ok((ranges, purpose))
}

/// The plain computation a proof must reproduce.
pub fn evaluate(schema: &Schema, records: &[Vec<u64>], q: &QueryConstants) -> QueryResult {
    let consent = schema.consent_index();
    let value_cols: Vec<usize> = schema.value_columns().map(|(i, _)| i).collect();
    let stat_col = value_cols[q.statistic as usize];
    let (mut count, mut sum, mut sum_squares) = (0u64, BigUint::default(), BigUint::default());
    for r in records {
        let consented = r[consent] >> q.purpose & 1 == 1;
        let matches = value_cols
            .iter()
            .zip(&q.ranges)
            .all(|(&c, &(lo, hi))| lo <= r[c] && r[c] <= hi);
        if consented && matches {
            count += 1;
            sum += r[stat_col];
            sum_squares += BigUint::from(r[stat_col]) * r[stat_col];
        }
    }
    let suppressed = count > 0 && count < q.min_cohort;
    if suppressed {
        (count, sum, sum_squares) = (0, BigUint::default(), BigUint::default());
    }
    QueryResult {
        records: records.len() as u64,
        count,
        sum,
        sum_squares,
        suppressed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> QuerySpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn compiles_natural_units() {
        let s = Schema::clinical_default();
        let q = spec(
            r#"{"criteria":{"age":[40,65],"dx":{"prefix":"E11"},"hba1c":{"min":"6.5"}},"consent":"research","statistic":"hba1c"}"#,
        );
        let c = q.compile(&s).unwrap();
        assert_eq!(c.ranges[0], (40, 65));
        assert_eq!(c.ranges[2], icd10::prefix_range("E11").unwrap());
        assert_eq!(c.ranges[3], (65, 255));
        assert_eq!(
            c.ranges[1],
            (0, 2),
            "unmentioned categorical spans its codes"
        );
        assert_eq!((c.purpose, c.statistic, c.min_cohort), (0, 3, 11));
        assert_eq!(c.to_fields().len(), QueryConstants::len_for(&s));
    }

    #[test]
    fn min_cohort_below_11_is_allowed_with_a_warning() {
        let s = Schema::clinical_default();
        let low = spec(r#"{"consent":"research","statistic":"age","min_cohort":5}"#);
        assert_eq!(low.compile(&s).unwrap().min_cohort, 5, "still allowed");
        let warning = low.small_cell_warning().unwrap();
        assert!(
            warning.contains("min_cohort 5") && warning.contains("5..=10"),
            "{warning}"
        );
        for ok in [
            r#"{"consent":"research","statistic":"age"}"#,
            r#"{"consent":"research","statistic":"age","min_cohort":11}"#,
        ] {
            assert_eq!(spec(ok).small_cell_warning(), None, "{ok}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.json");
        std::fs::write(
            &path,
            r#"{"consent":"research","statistic":"age","min_cohort":3}"#,
        )
        .unwrap();
        assert_eq!(QuerySpec::load(&path).unwrap().min_cohort, 3);
    }

    #[test]
    fn prefix_criteria_are_checked_against_the_icd10_shape() {
        let s = Schema::clinical_default();
        let err =
            spec(r#"{"criteria":{"dx":{"prefix":"B2O"}},"consent":"research","statistic":"age"}"#)
                .compile(&s)
                .unwrap_err()
                .to_string();
        assert!(err.contains("did you mean `B20`?"), "{err}");
    }

    #[test]
    fn rejects_queries_that_do_not_fit() {
        let s = Schema::clinical_default();
        for (bad, why) in [
            (
                r#"{"criteria":{"weight":[1,2]},"consent":"research","statistic":"age"}"#,
                "no column",
            ),
            (
                r#"{"criteria":{"age":[65,40]},"consent":"research","statistic":"age"}"#,
                "empty range",
            ),
            (
                r#"{"criteria":{"age":[40,200]},"consent":"research","statistic":"age"}"#,
                "outside",
            ),
            (
                r#"{"criteria":{"age":{"prefix":"E1"}},"consent":"research","statistic":"age"}"#,
                "only applies",
            ),
            (
                r#"{"consent":"marketing","statistic":"age"}"#,
                "consent purpose",
            ),
            (
                r#"{"consent":"research","statistic":"consent"}"#,
                "statistic",
            ),
            (
                r#"{"consent":"research","statistic":"age","min_cohort":0}"#,
                "min_cohort",
            ),
        ] {
            let err = spec(bad).compile(&s).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn misspelt_criteria_are_errors_not_wildcards() {
        let bad = r#"{"criteria":{"dx":{"prefx":"E1"}},"consent":"research","statistic":"age"}"#;
        assert!(serde_json::from_str::<QuerySpec>(bad).is_err());
        let bad = r#"{"criteria":{},"consent":"research","statistic":"age","min_cohrt":3}"#;
        assert!(serde_json::from_str::<QuerySpec>(bad).is_err());
    }

    #[test]
    fn evaluation_suppresses_small_cells() {
        let s = Schema::clinical_default();
        let rec = |age, consent| {
            vec![
                age,
                0,
                icd10::encode("E11.9").unwrap(),
                70,
                120,
                300,
                consent,
                0,
            ]
        };
        let records = vec![rec(50, 1), rec(51, 1), rec(70, 1), rec(52, 0b10)];
        let mut q = spec(r#"{"criteria":{"age":[40,65]},"consent":"research","statistic":"hba1c","min_cohort":2}"#)
            .compile(&s)
            .unwrap();
        let r = evaluate(&s, &records, &q);
        assert_eq!(
            (r.count, r.sum.clone(), r.suppressed),
            (2, 140u32.into(), false)
        );
        assert_eq!(r.sum_squares, 9800u32.into());
        q.min_cohort = 3;
        let r = evaluate(&s, &records, &q);
        assert_eq!((r.count, r.sum, r.suppressed), (0, 0u32.into(), true));
    }
}
