//! Dataset schemas: typed columns with declared bit widths.
//!
//! Every column value is encoded as an unsigned integer below `2^bits`, so a whole record packs
//! into a handful of bits and several records pack into one BN254 field element (see
//! [`crate::commitment::RecordLayout`]). Encodings preserve order, so an inclusive range of
//! natural values (ages 40–65, HbA1c 6.5–9.0, ICD-10 codes under `E11`) is an inclusive range
//! of encoded integers.

use std::{fs, path::Path};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{error::SchemaError, icd10};

/// The widest column the circuit accepts. Comparisons use halo2-base's `is_less_than`, which
/// needs `bits + lookup_bits` to stay under the field capacity; 64 keeps every use far away.
pub const MAX_COLUMN_BITS: u32 = 64;

/// How a column's values are typed and encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnKind {
    /// An unsigned integer in `[0, 2^bits)`.
    Uint {
        /// Declared width.
        bits: u32,
    },
    /// A non-negative fixed-point decimal stored as `round(x * 10^scale)` in `[0, 2^bits)`.
    Decimal {
        /// Digits after the decimal point.
        scale: u32,
        /// Declared width of the scaled integer.
        bits: u32,
    },
    /// One of a fixed list of codes, encoded as its index in `codes`.
    Categorical {
        /// The allowed codes, in encoding order.
        codes: Vec<String>,
    },
    /// An ICD-10(-CM) diagnosis code, encoded so that every code prefix is a contiguous range.
    Icd10,
    /// A consent bitmask: bit `i` set means the patient consented to purpose `purposes[i]`.
    Consent {
        /// Purpose names, bit 0 first.
        purposes: Vec<String>,
    },
}

/// One column of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name, matched against CSV headers and query criteria.
    pub name: String,
    /// Type and encoding.
    #[serde(flatten)]
    pub kind: ColumnKind,
}

impl Column {
    /// Declared bit width of the encoded value.
    pub fn bits(&self) -> u32 {
        match &self.kind {
            ColumnKind::Uint { bits } | ColumnKind::Decimal { bits, .. } => *bits,
            ColumnKind::Categorical { codes } => bits_for(codes.len() as u64),
            ColumnKind::Icd10 => icd10::BITS,
            ColumnKind::Consent { purposes } => purposes.len() as u32,
        }
    }

    /// Largest encodable value.
    pub fn max_value(&self) -> u64 {
        match &self.kind {
            ColumnKind::Categorical { codes } => codes.len() as u64 - 1,
            ColumnKind::Icd10 => icd10::MAX_CODE,
            _ => low_mask(self.bits()),
        }
    }

    /// Whether this is the consent column.
    pub fn is_consent(&self) -> bool {
        matches!(self.kind, ColumnKind::Consent { .. })
    }

    /// Parses a CSV cell into the column's encoding.
    pub fn encode(&self, cell: &str) -> Result<u64, String> {
        let cell = cell.trim();
        let value = match &self.kind {
            ColumnKind::Uint { .. } => cell
                .parse::<u64>()
                .map_err(|_| format!("`{cell}` is not an unsigned integer"))?,
            ColumnKind::Decimal { scale, .. } => parse_decimal(cell, *scale)?,
            ColumnKind::Categorical { codes } => {
                codes.iter().position(|c| c == cell).ok_or_else(|| {
                    format!("`{cell}` is not one of the codes [{}]", codes.join(", "))
                })? as u64
            }
            ColumnKind::Icd10 => icd10::encode(cell).map_err(|e| e.to_string())?,
            ColumnKind::Consent { purposes } => {
                let mut mask = 0u64;
                for purpose in cell
                    .split(['|', ';'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let bit = purposes.iter().position(|p| p == purpose).ok_or_else(|| {
                        format!(
                            "`{purpose}` is not a consent purpose [{}]",
                            purposes.join(", ")
                        )
                    })?;
                    mask |= 1 << bit;
                }
                mask
            }
        };
        if value > self.max_value() {
            return Err(format!(
                "`{cell}` encodes to {value}, outside the declared {} bits (max {})",
                self.bits(),
                self.max_value()
            ));
        }
        Ok(value)
    }

    /// Renders an encoded value back into its CSV form.
    pub fn decode(&self, value: u64) -> String {
        match &self.kind {
            ColumnKind::Uint { .. } => value.to_string(),
            ColumnKind::Decimal { scale, .. } => format_decimal(value, *scale),
            ColumnKind::Categorical { codes } => codes
                .get(value as usize)
                .cloned()
                .unwrap_or_else(|| format!("#{value}")),
            ColumnKind::Icd10 => icd10::decode(value),
            ColumnKind::Consent { purposes } => purposes
                .iter()
                .enumerate()
                .filter(|(i, _)| value >> i & 1 == 1)
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join("|"),
        }
    }

    /// Parses a natural value given as a query bound (a number, decimal or code).
    pub fn encode_bound(&self, bound: &serde_json::Value) -> Result<u64, String> {
        match bound {
            serde_json::Value::String(s) => self.encode(s),
            serde_json::Value::Number(n) => self.encode(&n.to_string()),
            other => Err(format!("bound {other} must be a number or a string")),
        }
    }
}

/// A dataset schema: named, ordered, typed columns with exactly one consent column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Human-readable schema name.
    pub name: String,
    /// Columns in record order.
    pub columns: Vec<Column>,
}

impl Schema {
    /// Reads and validates a schema file (JSON).
    pub fn load(path: &Path) -> Result<Self, SchemaError> {
        let text = fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.to_owned(),
            source,
        })?;
        let schema: Schema = serde_json::from_str(&text).map_err(|source| SchemaError::Parse {
            path: path.to_owned(),
            source,
        })?;
        schema.validate()?;
        Ok(schema)
    }

    /// Checks names, widths and the consent column.
    pub fn validate(&self) -> Result<(), SchemaError> {
        let invalid = |msg: String| Err(SchemaError::Invalid(msg));
        if self.columns.is_empty() {
            return invalid("a schema needs at least one column".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for col in &self.columns {
            if col.name.is_empty() || !seen.insert(col.name.as_str()) {
                return invalid(format!("column name `{}` is empty or repeated", col.name));
            }
            match &col.kind {
                ColumnKind::Categorical { codes } if codes.len() < 2 => {
                    return invalid(format!("categorical column `{}` needs ≥ 2 codes", col.name))
                }
                ColumnKind::Consent { purposes } if purposes.is_empty() => {
                    return invalid(format!("consent column `{}` needs ≥ 1 purpose", col.name))
                }
                ColumnKind::Decimal { scale, .. } if *scale > 6 => {
                    return invalid(format!("decimal column `{}`: scale must be ≤ 6", col.name))
                }
                _ => {}
            }
            if col.bits() == 0 || col.bits() > MAX_COLUMN_BITS {
                return invalid(format!(
                    "column `{}` is {} bits wide; widths must be 1..={MAX_COLUMN_BITS}",
                    col.name,
                    col.bits()
                ));
            }
        }
        match self.columns.iter().filter(|c| c.is_consent()).count() {
            1 => {}
            n => {
                return invalid(format!(
                    "a schema needs exactly one consent column, found {n}"
                ))
            }
        }
        if self.record_bits() > crate::commitment::PACKED_BITS {
            return invalid(format!(
                "a record is {} bits wide; at most {} fit in a field element",
                self.record_bits(),
                crate::commitment::PACKED_BITS
            ));
        }
        Ok(())
    }

    /// Bits per record slot: one `present` bit plus every column's width.
    pub fn record_bits(&self) -> u32 {
        1 + self.columns.iter().map(Column::bits).sum::<u32>()
    }

    /// Index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Decimal places of a column's encoding (0 for non-decimal columns); `None` if there is
    /// no such column. Turns encoded sums back into natural units.
    pub fn decimal_scale(&self, name: &str) -> Option<u32> {
        self.column_index(name).map(|i| match self.columns[i].kind {
            ColumnKind::Decimal { scale, .. } => scale,
            _ => 0,
        })
    }

    /// Index of the consent column.
    pub fn consent_index(&self) -> usize {
        self.columns
            .iter()
            .position(Column::is_consent)
            .expect("validated schema")
    }

    /// Columns that queries may filter on or aggregate (all but the consent column), in order.
    pub fn value_columns(&self) -> impl Iterator<Item = (usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_consent())
    }

    /// Number of consent purposes.
    pub fn purposes(&self) -> &[String] {
        match &self.columns[self.consent_index()].kind {
            ColumnKind::Consent { purposes } => purposes,
            _ => unreachable!("consent_index points at the consent column"),
        }
    }

    /// SHA-256 of the canonical JSON encoding; identifies the schema in circuit ids and on-chain.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(serde_json::to_vec(self).expect("schema serialises")).into()
    }

    /// The schema the synthetic generator and the demo use.
    pub fn clinical_default() -> Self {
        let col = |name: &str, kind| Column {
            name: name.into(),
            kind,
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Schema {
            name: "zkcohort-clinical-v1".into(),
            columns: vec![
                col("age", ColumnKind::Uint { bits: 7 }),
                col(
                    "sex",
                    ColumnKind::Categorical {
                        codes: strings(&["F", "M", "X"]),
                    },
                ),
                col("dx", ColumnKind::Icd10),
                col("hba1c", ColumnKind::Decimal { scale: 1, bits: 8 }),
                col("sbp", ColumnKind::Uint { bits: 8 }),
                col("bmi", ColumnKind::Decimal { scale: 1, bits: 10 }),
                col(
                    "consent",
                    ColumnKind::Consent {
                        purposes: strings(&["research", "trials", "recontact", "genomics"]),
                    },
                ),
                col("site", ColumnKind::Uint { bits: 6 }),
            ],
        }
    }
}

/// Smallest width that holds `n` distinct values `0..n`.
pub fn bits_for(n: u64) -> u32 {
    (64 - (n.max(2) - 1).leading_zeros()).max(1)
}

/// `2^bits - 1`.
pub fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn parse_decimal(cell: &str, scale: u32) -> Result<u64, String> {
    let err = || format!("`{cell}` is not a non-negative decimal with at most {scale} decimals");
    let (int, frac) = cell.split_once('.').unwrap_or((cell, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(err());
    }
    if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    if frac.len() > scale as usize {
        return Err(err());
    }
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err())?
    };
    let frac_val: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err())?
    };
    let frac_scaled = frac_val * 10u64.pow(scale - frac.len() as u32);
    int.checked_mul(10u64.pow(scale))
        .and_then(|v| v.checked_add(frac_scaled))
        .ok_or_else(err)
}

fn format_decimal(value: u64, scale: u32) -> String {
    if scale == 0 {
        return value.to_string();
    }
    let div = 10u64.pow(scale);
    format!(
        "{}.{:0width$}",
        value / div,
        value % div,
        width = scale as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schema_packs_three_records() {
        let s = Schema::clinical_default();
        s.validate().unwrap();
        assert_eq!(crate::commitment::PACKED_BITS / s.record_bits(), 3);
    }

    #[test]
    fn decimals_round_trip_and_reject_garbage() {
        let col = Column {
            name: "x".into(),
            kind: ColumnKind::Decimal { scale: 1, bits: 8 },
        };
        assert_eq!(col.encode("6.5"), Ok(65));
        assert_eq!(col.encode("7"), Ok(70));
        assert_eq!(col.decode(65), "6.5");
        assert!(col.encode("6.55").is_err());
        assert!(col.encode("-1").is_err());
        assert!(col
            .encode("25.6")
            .unwrap_err()
            .contains("outside the declared 8 bits"));
        assert!(col.encode("abc").is_err());
        assert!(col.encode("").is_err());
    }

    #[test]
    fn consent_and_categorical() {
        let s = Schema::clinical_default();
        let consent = &s.columns[s.consent_index()];
        assert_eq!(consent.encode("research|trials"), Ok(0b11));
        assert_eq!(consent.encode(""), Ok(0));
        assert_eq!(consent.decode(0b101), "research|recontact");
        assert!(consent.encode("marketing").is_err());
        let sex = &s.columns[1];
        assert_eq!(sex.encode("M"), Ok(1));
        assert!(sex.encode("Q").is_err());
    }

    #[test]
    fn rejects_bad_schemas() {
        let mut s = Schema::clinical_default();
        s.columns.retain(|c| !c.is_consent());
        assert!(s.validate().is_err());
        let mut s = Schema::clinical_default();
        s.columns[0].kind = ColumnKind::Uint { bits: 0 };
        assert!(s.validate().is_err());
        let mut s = Schema::clinical_default();
        s.columns[1].name = "age".into();
        assert!(s.validate().is_err());
    }
}
