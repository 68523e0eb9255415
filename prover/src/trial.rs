//! Trial specs: inclusion criteria (the same range form as aggregate queries) plus a consent
//! purpose, their public constants, and the native eligibility check proofs are tested against.
//!
//! ```json
//! {
//!   "name": "T2D add-on therapy, phase III",
//!   "criteria": { "age": [40, 75], "dx": { "prefix": "E11" }, "hba1c": { "min": "7.0" } },
//!   "consent": "trials"
//! }
//! ```

use std::{collections::BTreeMap, path::Path};

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use serde::{Deserialize, Serialize};

use crate::{
    error::QueryError,
    query::{
        canonical_json, compile_criteria, describe_criteria, from_document, load_spec, spec_hash,
        Criterion,
    },
    schema::Schema,
};

/// A trial's inclusion criteria as a sponsor writes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialSpec {
    /// Free-text name.
    #[serde(default)]
    pub name: String,
    /// Inclusion criteria per column.
    #[serde(default)]
    pub criteria: BTreeMap<String, Criterion>,
    /// Consent purpose a patient's record must carry.
    pub consent: String,
}

/// The public constants of a trial for one schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialCriteria {
    /// Inclusive `[lo, hi]` per value column, schema order.
    pub ranges: Vec<(u64, u64)>,
    /// Consent purpose bit.
    pub purpose: u64,
}

impl TrialSpec {
    /// Reads a trial file.
    pub fn load(path: &Path) -> Result<Self, QueryError> {
        load_spec(path)
    }

    /// SHA-256 of the canonical JSON form ([`spec_hash`] of [`TrialSpec::document`]): names
    /// the trial spec in artifacts and on-chain (`specHash`).
    pub fn hash(&self) -> [u8; 32] {
        spec_hash(&self.document())
    }

    /// The canonical JSON form ([`canonical_json`]): the document `openTrial` publishes.
    pub fn document(&self) -> Vec<u8> {
        canonical_json(self)
    }

    /// Reads a published spec document back (see [`from_document`]).
    pub fn from_document(document: &[u8]) -> Result<Self, QueryError> {
        from_document(document)
    }

    /// The trial in words, e.g. `"T2D add-on …": patients with age 40–75, dx under E11 and
    /// hba1c ≥ 7.0 who consented to trials`. Public criteria only.
    pub fn describe(&self) -> String {
        let name = if self.name.is_empty() {
            String::new()
        } else {
            format!("\"{}\": ", self.name)
        };
        format!(
            "{name}patients {}",
            describe_criteria(&self.criteria, &self.consent)
        )
    }

    /// Checks the spec against a schema and compiles it into public constants.
    pub fn compile(&self, schema: &Schema) -> Result<TrialCriteria, QueryError> {
        let (ranges, purpose) = compile_criteria(schema, &self.criteria, &self.consent)?;
        Ok(TrialCriteria { ranges, purpose })
    }
}

impl TrialCriteria {
    /// The constants as field elements, in public-input order: `lo_0, hi_0, ..., purpose`.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut out: Vec<Fr> = self
            .ranges
            .iter()
            .flat_map(|(lo, hi)| [Fr::from(*lo), Fr::from(*hi)])
            .collect();
        out.push(Fr::from(self.purpose));
        out
    }

    /// Number of field elements [`TrialCriteria::to_fields`] returns for a schema.
    pub fn len_for(schema: &Schema) -> usize {
        2 * schema.value_columns().count() + 1
    }

    /// Criteria that accept every record with the purpose bit 0 (for key generation).
    pub fn dummy(schema: &Schema) -> Self {
        TrialCriteria {
            ranges: vec![(0, 0); schema.value_columns().count()],
            purpose: 0,
        }
    }

    /// Whether a record meets every criterion and carries the consent; on failure, the first
    /// unmet criterion, in natural units. The reason names the column and the trial's range,
    /// never the record's value, so it is safe in a log line.
    pub fn check(&self, schema: &Schema, record: &[u64]) -> Result<(), String> {
        let consent = schema.consent_index();
        if record[consent] >> self.purpose & 1 == 0 {
            let purpose = schema
                .purposes()
                .get(self.purpose as usize)
                .map_or("?", |s| s.as_str());
            return Err(format!("no consent for `{purpose}`"));
        }
        for ((c, col), &(lo, hi)) in schema.value_columns().zip(&self.ranges) {
            let v = record[c];
            if v < lo || v > hi {
                return Err(format!(
                    "`{}` is outside the trial's range {}..={}",
                    col.name,
                    col.decode(lo),
                    col.decode(hi)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icd10;

    #[test]
    fn compiles_and_explains_failures() {
        let schema = Schema::clinical_default();
        let spec: TrialSpec = serde_json::from_str(
            r#"{"criteria":{"age":[40,75],"dx":{"prefix":"E11"},"hba1c":{"min":"7.0"}},"consent":"trials"}"#,
        )
        .unwrap();
        let c = spec.compile(&schema).unwrap();
        assert_eq!(c.purpose, 1);
        assert_eq!(c.to_fields().len(), TrialCriteria::len_for(&schema));
        let e11 = icd10::encode("E11.9").unwrap();
        let ok = vec![50, 0, e11, 80, 130, 300, 0b0010, 1];
        assert_eq!(c.check(&schema, &ok), Ok(()));
        let mut low = ok.clone();
        low[3] = 65;
        assert_eq!(
            c.check(&schema, &low).unwrap_err(),
            "`hba1c` is outside the trial's range 7.0..=25.5"
        );
        let mut no_consent = ok;
        no_consent[6] = 0b0001;
        assert!(c
            .check(&schema, &no_consent)
            .unwrap_err()
            .contains("no consent for `trials`"));
        let bad: Result<TrialSpec, _> =
            serde_json::from_str(r#"{"consent":"trials","statistic":"age"}"#);
        assert!(bad.is_err(), "trials have no statistic");
    }

    /// The published document is the canonical JSON, reads back as the same spec, and says the
    /// criteria in words; another form of the same spec is refused (its hash would differ).
    #[test]
    fn documents_round_trip_canonically_and_read_as_words() {
        let spec: TrialSpec = serde_json::from_str(
            r#"{ "name": "T2D", "criteria": { "hba1c": { "min": "7.0" }, "age": [40, 75],
                 "dx": { "prefix": "E11" }, "sex": { "eq": "F" } }, "consent": "trials" }"#,
        )
        .unwrap();
        let doc = spec.document();
        assert_eq!(spec.hash(), crate::query::spec_hash(&doc));
        assert_eq!(TrialSpec::from_document(&doc).unwrap(), spec);
        let pretty = serde_json::to_vec_pretty(&spec).unwrap();
        assert!(matches!(
            TrialSpec::from_document(&pretty),
            Err(QueryError::NotCanonical)
        ));
        assert!(matches!(
            TrialSpec::from_document(b"not json"),
            Err(QueryError::Document(_))
        ));
        assert_eq!(
            spec.describe(),
            "\"T2D\": patients with age 40–75, dx under E11, hba1c ≥ 7.0 and sex = F who \
             consented to trials"
        );
    }
}
