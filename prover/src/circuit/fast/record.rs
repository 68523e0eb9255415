//! **The product's records in design N(W)** ([`super::fold`]): a [`Schema`]'s records and a
//! compiled query ([`QueryConstants`]) mapped onto the fold record, so that the fold circuit
//! answers the product's queries with the product's answers ([`crate::query::evaluate`]).
//!
//! **Why a mapping.** A fold field is checked by a block of the per-proof match table with one
//! row per value, `2^w` rows for a `w`-bit field, and a criterion on it is one run `[lo, hi]`
//! of that block. So a field must be narrow (at most [`MAX_FIELD_BITS`] = 16 bits here: 65,536
//! table rows), and a query must be a *product* of per-field ranges. [`FoldSchema::of`] lays
//! out the fields, in schema order:
//!
//! - a uint, decimal or categorical column is one field of the column's width, its values as
//!   stored;
//! - a `nullable` column is its value field, a missing value stored as **0**, immediately
//!   followed by a 1-bit `known` field (1: present), named in [`FastShape::known`]. The fold
//!   circuit skips a missing statistic with no correction (0 adds nothing to the sums) and
//!   releases the non-missing count; a criterion excludes missing values by asking `[1, 1]` of
//!   the bit, no criterion asks `[0, 1]`. The bit sits right after its value so both share a
//!   row at `W = 2` when the value's slot is even (field index odd; otherwise the bit is on
//!   the next row, one more rotation for the statistic's sum);
//! - an ICD-10 column (35 bits: a table of 2^35 rows is impossible) is one field per character
//!   position of [`crate::icd10`]'s mixed-radix encoding, radices 26, 10, 36, 37, 37, 37, 37,
//!   widths 5, 4, 6, 6, 6, 6, 6. Every prefix range is then a product: the prefix's positions
//!   exact, the others full (`E11` is `E × 1 × 1 × [0, 36] × …`). More generally a range
//!   decomposes when its bounds share their leading digits, differ at one position and are
//!   full after it ([`FoldSchemaError::RangeNotAPrefix`] otherwise);
//! - the consent bitmask is one 1-bit field per purpose: the query's purpose asks `[1, 1]`,
//!   the others `[0, 1]`.
//!
//! **Cost.** A record is `S = F + 1` slots (`present` and `F` fields), `R = ⌈S / W⌉` rows. The
//! clinical default schema has F = 17 fields (age, sex, 7 ICD-10 positions, hba1c, sbp, bmi,
//! 4 consent purposes, site): S = 18, R = 18 at W = 1 and 9 at W = 2, against 8 columns in the
//! product's record. The ncctg-lung schema (6 nullable columns of 10) also has F = 17: R = 18
//! and 9.

use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::Field};
use thiserror::Error;

use super::fold::{FoldParams, FoldQuery, Strata};
use super::FastShape;
use crate::{
    icd10,
    query::QueryConstants,
    schema::{bits_for, low_mask, Column, ColumnKind, Schema},
};

/// The widest fold field: its match-table block has `2^16` rows.
pub const MAX_FIELD_BITS: u32 = 16;

/// Why a schema or a query has no fold form.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FoldSchemaError {
    /// A field wider than [`MAX_FIELD_BITS`].
    #[error(
        "column `{column}` needs a {bits}-bit fold field; a field's match table has 2^bits \
         rows, at most 2^{MAX_FIELD_BITS}"
    )]
    TooWide {
        /// The column.
        column: String,
        /// Its field's width.
        bits: u32,
    },
    /// A statistic index that is not a value column.
    #[error("statistic {index} is not a value column (the schema has {count})")]
    NoSuchValueColumn {
        /// The index among value columns.
        index: usize,
        /// Number of value columns.
        count: usize,
    },
    /// An ICD-10 or consent column as a statistic or the strata (its value is split over
    /// several fields).
    #[error("column `{column}` spans several fold fields (ICD-10 or consent): it cannot be a statistic or the strata")]
    NotAStatistic {
        /// The column.
        column: String,
    },
    /// No statistic.
    #[error("a fold circuit needs at least one statistic")]
    NoStatistics,
    /// A statistic listed twice.
    #[error("statistic `{column}` is listed twice")]
    DuplicateStatistic {
        /// The column.
        column: String,
    },
    /// No data column.
    #[error("a fold circuit needs at least one data column (W ≥ 1)")]
    NoSlots,
    /// A query whose statistic the circuit does not accumulate.
    #[error("the query's statistic `{column}` is not among the circuit's statistics")]
    StatisticNotProven {
        /// The column.
        column: String,
    },
    /// A query with the wrong number of ranges.
    #[error("the query has {found} ranges, the schema {expected} value columns")]
    RangeCount {
        /// Value columns.
        expected: usize,
        /// Ranges.
        found: usize,
    },
    /// A consent purpose the schema does not have.
    #[error("consent purpose {purpose} is not one of the schema's {count}")]
    NoSuchPurpose {
        /// The purpose bit.
        purpose: u64,
        /// Number of purposes.
        count: usize,
    },
    /// An ICD-10 range that is not a product of per-position ranges.
    #[error(
        "column `{column}`: the range [{lo}, {hi}] is not an ICD-10 prefix (bounds must \
         share leading characters, differ at one position and span every code after it)"
    )]
    RangeNotAPrefix {
        /// The column.
        column: String,
        /// Lower bound (encoded).
        lo: u64,
        /// Upper bound (encoded).
        hi: u64,
    },
    /// A range on a nullable column that takes the missing code with only some values.
    #[error(
        "column `{column}`: a range may include missing values only with every present one \
         (a criterion never matches a missing value)"
    )]
    RangeIncludesMissing {
        /// The column.
        column: String,
    },
}

/// What a fold field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldSource {
    /// A column's value as stored (0 when missing).
    Value {
        /// Schema column.
        column: usize,
    },
    /// Whether a nullable column's value is present.
    Known {
        /// Schema column.
        column: usize,
    },
    /// One character position of an ICD-10 column (0 is the first).
    Icd10Digit {
        /// Schema column.
        column: usize,
        /// Position.
        position: usize,
    },
    /// One purpose bit of the consent column.
    Purpose {
        /// Schema column.
        column: usize,
        /// Purpose bit.
        purpose: usize,
    },
}

/// One fold field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldField {
    /// Bit width (its table block has `2^width` rows).
    pub width: u32,
    /// Where its value comes from.
    pub source: FieldSource,
}

/// How one schema column lies in the fold record.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mapping {
    /// One field (uint, decimal, categorical).
    Plain { field: usize },
    /// ICD-10 positions from `first`.
    Icd10 { first: usize },
    /// Purpose bits from `first`.
    Consent { first: usize, purposes: usize },
}

/// A schema column's place in the fold record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Placed {
    mapping: Mapping,
    /// The column's `known` field and missing code, if nullable.
    known: Option<(usize, u64)>,
}

/// The fold circuit's family in its ids (as `keys::AGGREGATE_FAMILY`): bumped whenever its
/// constraints or public inputs change (`fold2`: the statistic input is its field index;
/// `fold3`: every running sum's gate anchored on the record's first row, the sums placed
/// column-major, and the dominance rule's cells on rotations the sums already open).
pub const FOLD_FAMILY: &str = "fold3";

/// A [`Schema`] laid out as fold fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldSchema {
    schema: Schema,
    fields: Vec<FoldField>,
    /// Per schema column.
    placed: Vec<Placed>,
    /// Per field, its `known` field.
    known: Vec<Option<usize>>,
}

impl FoldSchema {
    /// The fold layout of `schema` (see the module docs).
    pub fn of(schema: &Schema) -> Result<Self, FoldSchemaError> {
        let mut fields = Vec::new();
        let mut placed = Vec::with_capacity(schema.columns.len());
        let mut known = Vec::new();
        for (column, col) in schema.columns.iter().enumerate() {
            let first = fields.len();
            let mapping = match &col.kind {
                ColumnKind::Icd10 => {
                    fields.extend(icd10::RADIX.iter().enumerate().map(|(position, &r)| {
                        FoldField {
                            width: bits_for(r),
                            source: FieldSource::Icd10Digit { column, position },
                        }
                    }));
                    Mapping::Icd10 { first }
                }
                ColumnKind::Consent { purposes } => {
                    fields.extend((0..purposes.len()).map(|purpose| FoldField {
                        width: 1,
                        source: FieldSource::Purpose { column, purpose },
                    }));
                    Mapping::Consent {
                        first,
                        purposes: purposes.len(),
                    }
                }
                _ => {
                    let width = col.bits();
                    if width > MAX_FIELD_BITS {
                        return Err(FoldSchemaError::TooWide {
                            column: col.name.clone(),
                            bits: width,
                        });
                    }
                    fields.push(FoldField {
                        width,
                        source: FieldSource::Value { column },
                    });
                    Mapping::Plain { field: first }
                }
            };
            let known_field = col.missing_code().map(|missing| {
                let k = fields.len();
                fields.push(FoldField {
                    width: 1,
                    source: FieldSource::Known { column },
                });
                known.resize(k, None);
                known[first..k].fill(Some(k));
                (k, missing)
            });
            placed.push(Placed {
                mapping,
                known: known_field,
            });
        }
        Ok(FoldSchema {
            schema: schema.clone(),
            fields,
            placed,
            known,
        })
    }

    /// The schema laid out.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The fields, in record order.
    pub fn fields(&self) -> &[FoldField] {
        &self.fields
    }

    /// The record shape with `capacity` record slots and `mask_rows` masking rows.
    pub fn shape(&self, capacity: usize, mask_rows: usize) -> FastShape {
        FastShape {
            widths: self.fields.iter().map(|f| f.width).collect(),
            capacity,
            mask_rows,
            known: self.known.clone(),
            purposes: self.placed.iter().find_map(|p| match p.mapping {
                Mapping::Consent { first, purposes } => Some(first..first + purposes),
                _ => None,
            }),
        }
    }

    /// Schema index of value column `index`.
    fn value_column(&self, index: usize) -> Result<usize, FoldSchemaError> {
        self.schema
            .value_columns()
            .nth(index)
            .map(|(i, _)| i)
            .ok_or_else(|| FoldSchemaError::NoSuchValueColumn {
                index,
                count: self.schema.value_columns().count(),
            })
    }

    /// The fold field of a statistic (an index among the value columns).
    pub fn statistic_field(&self, index: usize) -> Result<usize, FoldSchemaError> {
        let column = self.value_column(index)?;
        match self.placed[column].mapping {
            Mapping::Plain { field } => Ok(field),
            _ => Err(FoldSchemaError::NotAStatistic {
                column: self.schema.columns[column].name.clone(),
            }),
        }
    }

    /// Circuit parameters with `slots` data columns (`W`) accumulating `statistics` (indices
    /// among the value columns, as [`QueryConstants::statistic`]).
    pub fn fold_params(
        &self,
        capacity: usize,
        mask_rows: usize,
        slots: usize,
        statistics: &[usize],
    ) -> Result<FoldParams, FoldSchemaError> {
        if slots == 0 {
            return Err(FoldSchemaError::NoSlots);
        }
        if statistics.is_empty() {
            return Err(FoldSchemaError::NoStatistics);
        }
        let mut stats = Vec::with_capacity(statistics.len());
        for &s in statistics {
            let field = self.statistic_field(s)?;
            if stats.contains(&field) {
                return Err(FoldSchemaError::DuplicateStatistic {
                    column: self.schema.columns[self.value_column(s)?].name.clone(),
                });
            }
            stats.push(field);
        }
        Ok(FoldParams {
            shape: self.shape(capacity, mask_rows),
            slots,
            stats,
            strata: None,
            attestation: false,
            rounding: None,
            dominance: None,
        })
    }

    /// The strata of value column `index`'s first `count` codes: the column must be one
    /// field (an integer or categorical column, as a statistic is). The count and the field's
    /// width are checked with the rest of the shape ([`FoldParams::check`]).
    pub fn strata(&self, index: usize, count: usize) -> Result<Strata, FoldSchemaError> {
        let field = self.statistic_field(index)?;
        Ok(Strata { field, count })
    }

    /// The id of the fold circuit of `params` at `k` over this schema:
    /// `fold3-<schema hash prefix>-n<capacity>-m<mask rows>-w<W>-s<statistics>-k<k>`
    /// ([`FOLD_FAMILY`]; the statistics as fold field indices), with `-t<field>x<count>`
    /// before `-k` for a stratified circuit, `-v` for an attestation (a verdict) and the
    /// rounding's tag (`-r5`, `-r6`: [`Rounding::tag`]) and the dominance rule's (`-d90`:
    /// [`Dominance::tag`]), in that order.
    ///
    /// [`Rounding::tag`]: super::fold::Rounding::tag
    /// [`Dominance::tag`]: super::fold::Dominance::tag
    pub fn circuit_id(&self, params: &FoldParams, k: u32) -> String {
        let stats: Vec<String> = params.stats.iter().map(usize::to_string).collect();
        let strata = params
            .strata
            .map(|s| format!("-t{}x{}", s.field, s.count))
            .unwrap_or_default();
        let verdict = if params.attestation { "-v" } else { "" };
        let rounding = params
            .rounding
            .map(|r| format!("-{}", r.tag()))
            .unwrap_or_default();
        let dominance = params
            .dominance
            .map(|d| format!("-{}", d.tag()))
            .unwrap_or_default();
        format!(
            "{FOLD_FAMILY}-{}-n{}-m{}-w{}-s{}{strata}{verdict}{rounding}{dominance}-k{k}",
            &hex::encode(self.schema.hash())[..8],
            params.shape.capacity,
            params.shape.mask_rows,
            params.slots,
            stats.join("_"),
        )
    }

    /// A schema-encoded record (as [`query::evaluate`] takes them) as fold field values.
    ///
    /// [`query::evaluate`]: crate::query::evaluate
    pub fn encode(&self, record: &[u64]) -> Vec<u64> {
        debug_assert_eq!(record.len(), self.placed.len());
        let mut out = vec![0; self.fields.len()];
        for (p, &v) in self.placed.iter().zip(record) {
            let present = p.known.is_none_or(|(_, missing)| v != missing);
            if let Some((k, _)) = p.known {
                out[k] = present as u64;
            }
            if !present {
                continue; // value fields stay 0
            }
            match p.mapping {
                Mapping::Plain { field } => out[field] = v,
                Mapping::Icd10 { first } => {
                    out[first..first + 7].copy_from_slice(&icd10_digits(v));
                }
                Mapping::Consent { first, purposes } => {
                    for i in 0..purposes {
                        out[first + i] = v >> i & 1;
                    }
                }
            }
        }
        out
    }

    /// The fold query of `q` on a circuit accumulating `statistics` (as given to
    /// [`FoldSchema::fold_params`]), with context 0.
    pub fn compile(
        &self,
        q: &QueryConstants,
        statistics: &[usize],
    ) -> Result<FoldQuery, FoldSchemaError> {
        let value_columns: Vec<usize> = self.schema.value_columns().map(|(i, _)| i).collect();
        if q.ranges.len() != value_columns.len() {
            return Err(FoldSchemaError::RangeCount {
                expected: value_columns.len(),
                found: q.ranges.len(),
            });
        }
        let stat_column = self.value_column(q.statistic as usize)?;
        let stat = statistics
            .iter()
            .position(|&s| s as u64 == q.statistic)
            .ok_or_else(|| FoldSchemaError::StatisticNotProven {
                column: self.schema.columns[stat_column].name.clone(),
            })?;
        let mut ranges: Vec<(u64, u64)> =
            self.fields.iter().map(|f| (0, low_mask(f.width))).collect();
        for (&column, &range) in value_columns.iter().zip(&q.ranges) {
            self.compile_range(column, range, &mut ranges)?;
        }
        let consent = self.schema.consent_index();
        if let Mapping::Consent { first, purposes } = self.placed[consent].mapping {
            if q.purpose >= purposes as u64 {
                return Err(FoldSchemaError::NoSuchPurpose {
                    purpose: q.purpose,
                    count: purposes,
                });
            }
            for i in 0..purposes {
                ranges[first + i] = (u64::from(i as u64 == q.purpose), 1);
            }
        }
        Ok(FoldQuery {
            ranges,
            stat,
            min_cohort: q.min_cohort,
            context: Fr::ZERO,
            threshold: q.threshold,
        })
    }

    /// The public constants of `q` in the fold circuits' layout ([`InputLayout`]): what a
    /// sponsor posts for datasets committed to fold circuits. They depend on the schema alone
    /// (every fold circuit of the schema that accumulates the statistic reads them alike).
    ///
    /// [`InputLayout`]: super::fold::InputLayout
    pub fn query_constants(&self, q: &QueryConstants) -> Result<Vec<Fr>, FoldSchemaError> {
        let statistics = [q.statistic as usize];
        // The layout depends on the fields, the purposes, the statistic's field and whether
        // the query is an attestation (its threshold is a constant) only.
        let mut params = self.fold_params(1, 0, 1, &statistics)?;
        params.attestation = q.threshold.is_some();
        Ok(params
            .inputs()
            .query_constants(&self.compile(q, &statistics)?))
    }

    /// Writes the fold ranges of `range` on value column `column`.
    fn compile_range(
        &self,
        column: usize,
        (lo, mut hi): (u64, u64),
        ranges: &mut [(u64, u64)],
    ) -> Result<(), FoldSchemaError> {
        let col: &Column = &self.schema.columns[column];
        let p = &self.placed[column];
        if let Some((k, missing)) = p.known {
            if (lo, hi) == col.unconstrained_range() {
                // Every value and the missing one: the value fields keep their full ranges.
                ranges[k] = (0, 1);
                return Ok(());
            }
            if hi >= missing {
                return Err(FoldSchemaError::RangeIncludesMissing {
                    column: col.name.clone(),
                });
            }
            ranges[k] = (1, 1);
            hi = hi.min(missing - 1);
        }
        match p.mapping {
            Mapping::Plain { field } => ranges[field] = (lo, hi),
            Mapping::Icd10 { first } => {
                let not_prefix = || FoldSchemaError::RangeNotAPrefix {
                    column: col.name.clone(),
                    lo,
                    hi,
                };
                if lo > hi || hi > icd10::MAX_CODE {
                    return Err(not_prefix());
                }
                let (l, h) = (icd10_digits(lo), icd10_digits(hi));
                let split = (0..7).find(|&i| l[i] != h[i]).unwrap_or(7);
                for i in 0..7 {
                    if i > split && (l[i] != 0 || h[i] != icd10::RADIX[i] - 1) {
                        return Err(not_prefix());
                    }
                    ranges[first + i] = (l[i], h[i]);
                }
            }
            Mapping::Consent { .. } => unreachable!("consent is not a value column"),
        }
        Ok(())
    }
}

/// The seven position digits of an ICD-10 encoding (`value ≤ MAX_CODE`).
fn icd10_digits(mut value: u64) -> [u64; 7] {
    let mut d = [0; 7];
    for i in (0..7).rev() {
        d[i] = value % icd10::RADIX[i];
        value /= icd10::RADIX[i];
    }
    d
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use halo2_base::halo2_proofs::dev::MockProver;
    use num_bigint::BigUint;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::super::fold::{self, FoldCircuit};
    use super::*;
    use crate::{
        dataset::{CsvOptions, Dataset},
        query::{self, QuerySpec},
    };

    fn lung_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/public/ncctg-lung")
    }

    fn lung_schema() -> Schema {
        Schema::load(&lung_dir().join("schema.json")).unwrap()
    }

    /// The 48 real records of the public dataset.
    fn lung_records(schema: &Schema) -> Vec<Vec<u64>> {
        Dataset::import_csv_with(
            schema,
            &lung_dir().join("lung.csv"),
            CsvOptions { ignore_extra: true },
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .dataset
        .records
    }

    /// Uniform records over every column's stored values; a nullable value is missing one
    /// time in four; ICD-10 codes from a few prefixes (E11, E10, I10) and anywhere.
    fn random_records(schema: &Schema, n: usize, seed: u64) -> Vec<Vec<u64>> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let codes: Vec<u64> = ["E11.9", "E11.65", "E11.6", "E11", "E10.9", "I10", "E12"]
            .iter()
            .map(|c| icd10::encode(c).unwrap())
            .collect();
        (0..n)
            .map(|_| {
                schema
                    .columns
                    .iter()
                    .map(|c| match (c.missing_code(), &c.kind) {
                        (Some(m), _) if rng.gen_bool(0.25) => m,
                        (_, ColumnKind::Icd10) if rng.gen_bool(0.8) => {
                            codes[rng.gen_range(0..codes.len())]
                        }
                        _ => rng.gen_range(0..=c.max_value()),
                    })
                    .collect()
            })
            .collect()
    }

    fn spec(json: &str) -> QuerySpec {
        serde_json::from_str(json).unwrap()
    }

    /// Compiles each query, maps it and checks `fold::evaluate` against `query::evaluate`.
    /// Returns how many queries matched some record (so the test cannot pass vacuously).
    fn check_equivalence(schema: &Schema, records: &[Vec<u64>], specs: &[QuerySpec]) -> usize {
        let fs = FoldSchema::of(schema).unwrap();
        let constants: Vec<QueryConstants> =
            specs.iter().map(|s| s.compile(schema).unwrap()).collect();
        // Every statistic the queries ask for, in first-use order.
        let mut statistics: Vec<usize> = Vec::new();
        for c in &constants {
            if !statistics.contains(&(c.statistic as usize)) {
                statistics.push(c.statistic as usize);
            }
        }
        let params = fs.fold_params(records.len(), 4, 2, &statistics).unwrap();
        let encoded: Vec<Vec<u64>> = records.iter().map(|r| fs.encode(r)).collect();
        let mut nonempty = 0;
        for (s, c) in specs.iter().zip(&constants) {
            let fq = fs.compile(c, &statistics).unwrap();
            let want = query::evaluate(schema, records, c);
            let got = fold::evaluate(&params, &encoded, &fq);
            let name = &s.name;
            assert_eq!(got.records, want.records, "{name}");
            assert_eq!(got.count, want.count, "{name}");
            assert_eq!(got.nonmissing, want.count, "{name}");
            assert_eq!(BigUint::from(got.sum), want.sum, "{name}");
            assert_eq!(BigUint::from(got.sum_squares), want.sum_squares, "{name}");
            assert_eq!(got.suppressed, want.suppressed, "{name}");
            nonempty += usize::from(want.count > 0);
        }
        nonempty
    }

    fn clinical_specs() -> Vec<QuerySpec> {
        [
            r#"{"name":"t2d","criteria":{"dx":{"prefix":"E11"},"age":[40,65]},"consent":"research","statistic":"hba1c","min_cohort":1}"#,
            r#"{"name":"e11.6","criteria":{"dx":{"prefix":"E11.6"}},"consent":"trials","statistic":"bmi","min_cohort":1}"#,
            r#"{"name":"e1","criteria":{"dx":{"prefix":"E1"},"sex":{"eq":"F"}},"consent":"recontact","statistic":"age","min_cohort":1}"#,
            r#"{"name":"letter","criteria":{"dx":{"prefix":"I"}},"consent":"genomics","statistic":"sbp","min_cohort":1}"#,
            r#"{"name":"code","criteria":{"dx":{"prefix":"E11.9"},"hba1c":{"min":"6.5"}},"consent":"research","statistic":"hba1c","min_cohort":1}"#,
            r#"{"name":"ranges","criteria":{"sbp":{"min":130},"bmi":{"min":"25.0","max":"40.0"},"site":[0,3]},"consent":"research","statistic":"sbp","min_cohort":1}"#,
            r#"{"name":"all","consent":"research","statistic":"site","min_cohort":1}"#,
            r#"{"name":"suppressed","criteria":{"dx":{"prefix":"E11"},"age":[50,52]},"consent":"research","statistic":"age","min_cohort":11}"#,
            r#"{"name":"floor","criteria":{"age":[18,90]},"consent":"trials","statistic":"bmi","min_cohort":11}"#,
        ]
        .iter()
        .map(|j| spec(j))
        .collect()
    }

    fn lung_specs() -> Vec<QuerySpec> {
        let mut v: Vec<QuerySpec> = [
            "query-age-weight-gain.json",
            "query-calories-men.json",
            "query-weight-loss-60-plus.json",
        ]
        .iter()
        .map(|f| query::load_spec(&lung_dir().join(f)).unwrap())
        .collect();
        v.extend(
            [
                r#"{"name":"nullable stat","criteria":{"ph.karno":{"min":70}},"consent":"research","statistic":"ph.karno","min_cohort":1}"#,
                r#"{"name":"ecog","criteria":{"ph.ecog":[0,1],"inst":{"max":12}},"consent":"research","statistic":"time","min_cohort":1}"#,
                r#"{"name":"no criteria","consent":"research","statistic":"age","min_cohort":1}"#,
                r#"{"name":"pat","criteria":{"pat.karno":{"max":80},"status":{"eq":"2"}},"consent":"research","statistic":"pat.karno","min_cohort":1}"#,
                r#"{"name":"gain","criteria":{"wt.loss":[-50,-1],"age":{"min":60}},"consent":"research","statistic":"wt.loss","min_cohort":1}"#,
                r#"{"name":"small","criteria":{"meal.cal":{"min":1500}},"consent":"research","statistic":"meal.cal","min_cohort":11}"#,
            ]
            .iter()
            .map(|j| spec(j)),
        );
        v
    }

    /// A query's constants depend on the schema alone: circuits accumulating other
    /// statistics (or in another order) give the same constants, so a market query means the
    /// same whichever fold circuit of the schema answers it.
    #[test]
    fn query_constants_do_not_depend_on_the_circuit() {
        let schema = Schema::clinical_default();
        let fs = FoldSchema::of(&schema).unwrap();
        let c = spec(r#"{"consent":"research","statistic":"hba1c","min_cohort":5}"#)
            .compile(&schema)
            .unwrap();
        let bmi = spec(r#"{"consent":"research","statistic":"bmi","min_cohort":5}"#)
            .compile(&schema)
            .unwrap()
            .statistic as usize;
        let hba1c = c.statistic as usize;
        let constants = |stats: &[usize]| {
            let params = fs.fold_params(40, 4, 1, stats).unwrap();
            params
                .inputs()
                .query_constants(&fs.compile(&c, stats).unwrap())
        };
        let alone = constants(&[hba1c]);
        assert_eq!(alone, fs.query_constants(&c).unwrap());
        assert_eq!(alone, constants(&[bmi, hba1c]));
        assert_eq!(alone, constants(&[hba1c, bmi]));
        let layout = fs.fold_params(40, 4, 1, &[hba1c]).unwrap().inputs();
        assert_eq!(
            alone[layout.stat()],
            Fr::from(fs.statistic_field(hba1c).unwrap() as u64)
        );
    }

    #[test]
    fn clinical_fold_answers_equal_the_product() {
        let schema = Schema::clinical_default();
        let specs = clinical_specs();
        let synthetic = Dataset::synthesize(400, 7, 8).records;
        assert!(check_equivalence(&schema, &synthetic, &specs) >= 7);
        for seed in 0..4 {
            let records = random_records(&schema, 300, seed);
            assert!(check_equivalence(&schema, &records, &specs) >= 6);
        }
    }

    #[test]
    fn ncctg_lung_fold_answers_equal_the_product() {
        let schema = lung_schema();
        let specs = lung_specs();
        let real = lung_records(&schema);
        assert_eq!(real.len(), 48);
        assert!(check_equivalence(&schema, &real, &specs) >= 8);
        for seed in 0..4 {
            let records = random_records(&schema, 300, seed);
            assert!(check_equivalence(&schema, &records, &specs) >= 8);
        }
    }

    #[test]
    fn field_layouts_and_slot_counts() {
        let fs = FoldSchema::of(&Schema::clinical_default()).unwrap();
        let widths: Vec<u32> = fs.fields().iter().map(|f| f.width).collect();
        assert_eq!(widths, [7, 2, 5, 4, 6, 6, 6, 6, 6, 8, 8, 10, 1, 1, 1, 1, 6]);
        assert!(fs.known.iter().all(Option::is_none));
        for (w, rows) in [(1, 18), (2, 9)] {
            let p = fs.fold_params(64, 4, w, &[3]).unwrap();
            assert_eq!((p.record_slots(), p.rows_per_record()), (18, rows));
            assert!(!p.nullable());
        }

        let lung = FoldSchema::of(&lung_schema()).unwrap();
        assert_eq!(lung.fields().len(), 17);
        // inst: value then its known bit.
        assert_eq!(lung.fields()[0].source, FieldSource::Value { column: 0 });
        assert_eq!(lung.fields()[1].source, FieldSource::Known { column: 0 });
        let shape = lung.shape(48, 4);
        assert_eq!(shape.known_field(0), Some(1));
        assert_eq!(shape.known_field(2), None);
        let meal = lung.statistic_field(8).unwrap();
        assert_eq!(shape.known_field(meal), Some(meal + 1));
        for (w, rows) in [(1, 18), (2, 9)] {
            let p = lung.fold_params(48, 4, w, &[7, 2]).unwrap();
            assert_eq!((p.record_slots(), p.rows_per_record()), (18, rows));
            assert!(p.nullable());
        }
    }

    #[test]
    fn encodes_missing_values_codes_and_consent() {
        let schema = lung_schema();
        let fs = FoldSchema::of(&schema).unwrap();
        let mut r: Vec<u64> = schema.columns.iter().map(|c| c.max_value()).collect();
        r[0] = schema.columns[0].missing_code().unwrap();
        let e = fs.encode(&r);
        assert_eq!((e[0], e[1]), (0, 0), "missing: value 0, known 0");
        assert_eq!((e[8], e[9]), (r[6], 1), "present: value, known 1");
        assert_eq!(e[16], 1, "consent bit");

        let clinical = Schema::clinical_default();
        let fs = FoldSchema::of(&clinical).unwrap();
        let rec = vec![
            50,
            1,
            icd10::encode("E11.65").unwrap(),
            70,
            120,
            300,
            0b1010,
            5,
        ];
        let e = fs.encode(&rec);
        // E=4, 1, 1, then 6 → 7, 5 → 6 (absent is 0), absent, absent.
        assert_eq!(&e[2..9], &[4, 1, 1, 7, 6, 0, 0]);
        assert_eq!(&e[12..16], &[0, 1, 0, 1]);
        assert_eq!((e[0], e[16]), (50, 5));
    }

    /// Every prefix decomposes into exact leading positions and full trailing ones, and the
    /// local radices agree with [`icd10`]'s encoding.
    #[test]
    fn prefixes_decompose() {
        assert_eq!(icd10_digits(icd10::MAX_CODE), icd10::RADIX.map(|r| r - 1));
        let schema = Schema::clinical_default();
        let fs = FoldSchema::of(&schema).unwrap();
        let dx = 2;
        for prefix in [
            "E", "E1", "E11", "E11.6", "E116", "E11.65", "S72.001", "S72.001A",
        ] {
            let (lo, hi) = icd10::prefix_range(prefix).unwrap();
            let mut ranges: Vec<(u64, u64)> = vec![(0, 0); fs.fields().len()];
            fs.compile_range(dx, (lo, hi), &mut ranges).unwrap();
            let n = prefix.chars().filter(|c| *c != '.').count();
            let code = icd10_digits(lo);
            for i in 0..7 {
                let want = if i < n {
                    (code[i], code[i])
                } else {
                    (0, icd10::RADIX[i] - 1)
                };
                assert_eq!(ranges[2 + i], want, "{prefix} position {i}");
            }
        }
    }

    #[test]
    fn errors() {
        let clinical = Schema::clinical_default();
        let fs = FoldSchema::of(&clinical).unwrap();
        let col = |name: &str| name.to_string();

        let mut wide = clinical.clone();
        wide.columns[4].kind = ColumnKind::Uint { bits: 17 };
        assert_eq!(
            FoldSchema::of(&wide),
            Err(FoldSchemaError::TooWide {
                column: col("sbp"),
                bits: 17
            })
        );
        assert_eq!(
            fs.fold_params(8, 4, 2, &[7]),
            Err(FoldSchemaError::NoSuchValueColumn { index: 7, count: 7 })
        );
        assert_eq!(
            fs.fold_params(8, 4, 2, &[2]),
            Err(FoldSchemaError::NotAStatistic { column: col("dx") })
        );
        assert_eq!(
            fs.fold_params(8, 4, 2, &[]),
            Err(FoldSchemaError::NoStatistics)
        );
        assert_eq!(
            fs.fold_params(8, 4, 2, &[3, 0, 3]),
            Err(FoldSchemaError::DuplicateStatistic {
                column: col("hba1c")
            })
        );
        assert_eq!(fs.fold_params(8, 4, 0, &[3]), Err(FoldSchemaError::NoSlots));

        let q = spec(
            r#"{"criteria":{"dx":{"prefix":"E11"}},"consent":"research","statistic":"hba1c"}"#,
        )
        .compile(&clinical)
        .unwrap();
        assert!(fs.compile(&q, &[0, 3]).is_ok());
        assert_eq!(
            fs.compile(&q, &[0, 4]),
            Err(FoldSchemaError::StatisticNotProven {
                column: col("hba1c")
            })
        );
        let mut short = q.clone();
        short.ranges.pop();
        assert_eq!(
            fs.compile(&short, &[3]),
            Err(FoldSchemaError::RangeCount {
                expected: 7,
                found: 6
            })
        );
        let mut purpose = q.clone();
        purpose.purpose = 4;
        assert_eq!(
            fs.compile(&purpose, &[3]),
            Err(FoldSchemaError::NoSuchPurpose {
                purpose: 4,
                count: 4
            })
        );
        // [E11, E12] is a range of codes but not a product of positions.
        let mut range = q.clone();
        let (lo, _) = icd10::prefix_range("E11").unwrap();
        let hi = icd10::encode("E12").unwrap();
        range.ranges[2] = (lo, hi);
        assert_eq!(
            fs.compile(&range, &[3]),
            Err(FoldSchemaError::RangeNotAPrefix {
                column: col("dx"),
                lo,
                hi
            })
        );

        let lung = lung_schema();
        let lfs = FoldSchema::of(&lung).unwrap();
        let mut q = spec(r#"{"consent":"research","statistic":"age"}"#)
            .compile(&lung)
            .unwrap();
        assert!(lfs.compile(&q, &[3]).is_ok());
        let missing = lung.columns[9].missing_code().unwrap();
        q.ranges[9] = (10, missing);
        assert_eq!(
            lfs.compile(&q, &[3]),
            Err(FoldSchemaError::RangeIncludesMissing {
                column: col("wt.loss")
            })
        );
    }

    /// The mapped records and query satisfy the real circuit (MockProver) at W = 2, with the
    /// product's answer as its public outputs.
    #[test]
    fn mock_prover_accepts_a_prefix_query_on_clinical_records() {
        let schema = Schema::clinical_default();
        let fs = FoldSchema::of(&schema).unwrap();
        let records = Dataset::synthesize(40, 3, 4).records;
        let statistics = [3, 0];
        let params = fs.fold_params(40, 4, 2, &statistics).unwrap();
        let encoded: Vec<Vec<u64>> = records.iter().map(|r| fs.encode(r)).collect();
        let c = spec(r#"{"criteria":{"dx":{"prefix":"E11"}},"consent":"research","statistic":"hba1c","min_cohort":1}"#)
            .compile(&schema)
            .unwrap();
        let q = fs.compile(&c, &statistics).unwrap();
        let result = fold::evaluate(&params, &encoded, &q);
        let want = query::evaluate(&schema, &records, &c);
        assert!(want.count > 0);
        assert_eq!(BigUint::from(result.sum), want.sum);
        let k = params.min_k();
        let circuit = FoldCircuit::new(&params, k, &[5; 32], &encoded, &q).unwrap();
        let instances = params.inputs().instances(&q, &result);
        assert_eq!(
            MockProver::run(k, &circuit, vec![instances.clone()])
                .expect("synthesis")
                .verify(),
            Ok(())
        );
        // A wrong count is refused.
        let mut forged = instances;
        forged[params.inputs().count()] += Fr::ONE;
        assert!(MockProver::run(k, &circuit, vec![forged])
            .expect("synthesis")
            .verify()
            .is_err());
    }

    /// The consent purpose is one public input, and the circuit sets the purposes' ranges
    /// from it: a record that did not consent to it is never counted, whatever the prover
    /// puts in its table.
    #[test]
    fn the_consent_purpose_is_enforced_from_its_public_input() {
        let schema = Schema::clinical_default();
        let fs = FoldSchema::of(&schema).unwrap();
        let records = Dataset::synthesize(40, 3, 4).records;
        let statistics = [3];
        let params = fs.fold_params(40, 4, 2, &statistics).unwrap();
        let layout = params.inputs();
        let purposes = params
            .shape
            .purposes
            .clone()
            .expect("clinical records carry consent");
        let at = layout.purpose().expect("a purpose input");
        assert_eq!(
            layout.stat(),
            at + 1,
            "the constants end with purpose, statistic, floor"
        );
        let encoded: Vec<Vec<u64>> = records.iter().map(|r| fs.encode(r)).collect();
        let c = spec(r#"{"consent":"research","statistic":"hba1c","min_cohort":1}"#)
            .compile(&schema)
            .unwrap();
        let q = fs.compile(&c, &statistics).unwrap();
        let k = params.min_k();
        let mock = |circuit: &FoldCircuit, inst: Vec<Fr>| {
            MockProver::run(k, circuit, vec![inst])
                .expect("synthesis")
                .verify()
        };
        let honest = FoldCircuit::new(&params, k, &[5; 32], &encoded, &q).unwrap();
        let result = fold::evaluate(&params, &encoded, &q);
        let instances = layout.instances(&q, &result);
        assert_eq!(instances[at], Fr::from(c.purpose));
        assert_eq!(mock(&honest, instances.clone()), Ok(()));

        // The same witness under another purpose, or one no record can have, is refused.
        for other in [
            (c.purpose + 1) % purposes.len() as u64,
            purposes.len() as u64,
        ] {
            let mut bad = instances.clone();
            bad[at] = Fr::from(other);
            assert!(mock(&honest, bad).is_err(), "purpose {other}");
        }

        // A prover whose table asks nothing of consent, claiming the purpose anyway.
        let mut any = q.clone();
        for f in purposes.clone() {
            any.ranges[f] = (0, 1);
        }
        let wider = fold::evaluate(&params, &encoded, &any);
        assert!(wider.count > result.count, "some records did not consent");
        let mut forged = FoldCircuit::new(&params, k, &[5; 32], &encoded, &any).unwrap();
        let inst = forged.resum(&q, fold::ResultForgery::default());
        assert_eq!(inst[at], Fr::from(c.purpose));
        assert_eq!(inst[layout.count()], Fr::from(wider.count));
        assert!(mock(&forged, inst).is_err());
    }

    /// The real ncctg-lung records with a nullable statistic (missing values skipped, the
    /// non-missing count released) satisfy the circuit at W = 2.
    #[test]
    fn mock_prover_accepts_a_nullable_statistic_on_ncctg_lung() {
        let schema = lung_schema();
        let fs = FoldSchema::of(&schema).unwrap();
        let records = lung_records(&schema);
        let c = query::load_spec::<QuerySpec>(&lung_dir().join("query-calories-men.json"))
            .unwrap()
            .compile(&schema)
            .unwrap();
        let statistics = [c.statistic as usize, 3];
        let params = fs.fold_params(48, 4, 2, &statistics).unwrap();
        assert!(params.nullable());
        let encoded: Vec<Vec<u64>> = records.iter().map(|r| fs.encode(r)).collect();
        let q = fs.compile(&c, &statistics).unwrap();
        let result = fold::evaluate(&params, &encoded, &q);
        let want = query::evaluate(&schema, &records, &c);
        assert!(want.count > 0 && !want.suppressed);
        assert_eq!((result.count, result.nonmissing), (want.count, want.count));
        let k = params.min_k();
        let circuit = FoldCircuit::new(&params, k, &[5; 32], &encoded, &q).unwrap();
        let instances = params.inputs().instances(&q, &result);
        assert_eq!(
            MockProver::run(k, &circuit, vec![instances])
                .expect("synthesis")
                .verify(),
            Ok(())
        );
    }
}
