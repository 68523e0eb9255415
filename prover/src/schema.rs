//! Dataset schemas: typed columns with declared bit widths.
//!
//! Every column value is encoded as an unsigned integer below `2^bits`, so a whole record packs
//! into a handful of bits and several records pack into one BN254 field element (see
//! [`crate::commitment::RecordLayout`]). Encodings preserve order, so an inclusive range of
//! natural values (ages 40–65, HbA1c 6.5–9.0, ICD-10 codes under `E11`) is an inclusive range
//! of encoded integers.
//!
//! Optional column attributes (docs/data.md has the reference):
//!
//! - **`min`** (integer and decimal columns): the column's smallest natural value, possibly
//!   negative. A value `v` is stored as `v − min` (both scaled by `10^scale`), so
//!   `[min, min + (2^bits − 1) / 10^scale]` fits the declared width, order is preserved, and
//!   query bounds are translated the same way ([`Column::encode_bound`]). Without `min` a
//!   column behaves exactly as before (`min = 0`). Released sums of such a statistic are in
//!   stored units (`Σ (v − min)`); [`Column::natural_mean_variance`] turns them back.
//! - **`nullable`**: an empty cell is a missing value, stored as the reserved code
//!   [`Column::missing_code`], `2^bits − 1`, the top of the column's width (a nullable
//!   categorical column is one bit wider when its codes would otherwise fill the width). Present
//!   values stay below it. Every criterion on the column ends below the sentinel, so a criterion
//!   never matches a missing value (SQL's `NULL`), while a column without a criterion spans the
//!   whole width ([`Column::unconstrained_range`]) and so keeps records with missing values.
//!   Today's circuits sum the statistic of every matching record, so a query whose statistic is
//!   nullable must also have a criterion on it (which excludes the missing values); see
//!   [`crate::query::QuerySpec::compile`].
//! - **`unit`**: the unit of the column's natural values (`"%"`, `"mmHg"`, `"kg/m²"`,
//!   `"years"`), printed after statistics ("mean hba1c 7.90 % (sd 1.10)"). It changes no
//!   encoding, but it is part of the canonical JSON and so of the schema hash: a schema without
//!   units serialises (and hashes) exactly as before units existed. The built-in
//!   [`Schema::clinical_default`] declares none (its hash keys the committed verifiers and
//!   fixtures); [`Schema::unit`] supplies its units from [`CLINICAL_DEFAULT_UNITS`] instead.

use std::{fs, path::Path};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{error::SchemaError, icd10, query::QueryResult};

/// The widest column the circuit accepts. Comparisons use halo2-base's `is_less_than`, which
/// needs `bits + lookup_bits` to stay under the field capacity; 64 keeps every use far away.
pub const MAX_COLUMN_BITS: u32 = 64;

/// The longest `unit` a column may declare, in characters.
pub const MAX_UNIT_CHARS: usize = 16;

/// How a column's values are typed and encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnKind {
    /// An integer in `[min, min + 2^bits)` (`min` is 0 unless the column declares one),
    /// stored as `v − min`.
    Uint {
        /// Declared width.
        bits: u32,
    },
    /// A fixed-point decimal stored as `round(x · 10^scale) − round(min · 10^scale)` in
    /// `[0, 2^bits)` (`min` is 0 unless the column declares one).
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
    /// Smallest natural value of an integer or decimal column (may be negative); values are
    /// stored as `v − min`. Absent: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<serde_json::Number>,
    /// Whether a value may be missing (an empty cell), stored as [`Column::missing_code`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nullable: bool,
    /// Unit of the natural values (`"%"`, `"mmHg"`), for display only. Absent: no unit, and
    /// the canonical JSON (so the schema hash) is what it was before units existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl Column {
    /// A column without `min`, not nullable.
    pub fn new(name: impl Into<String>, kind: ColumnKind) -> Self {
        Column {
            name: name.into(),
            kind,
            min: None,
            nullable: false,
            unit: None,
        }
    }

    /// Declared bit width of the encoded value.
    pub fn bits(&self) -> u32 {
        match &self.kind {
            ColumnKind::Uint { bits } | ColumnKind::Decimal { bits, .. } => *bits,
            ColumnKind::Categorical { codes } => {
                bits_for(codes.len() as u64 + u64::from(self.nullable))
            }
            ColumnKind::Icd10 => icd10::BITS,
            ColumnKind::Consent { purposes } => purposes.len() as u32,
        }
    }

    /// Largest stored encoding of a present value (below [`Column::missing_code`] for a
    /// nullable column).
    pub fn max_value(&self) -> u64 {
        match &self.kind {
            ColumnKind::Categorical { codes } => codes.len() as u64 - 1,
            ColumnKind::Icd10 => icd10::MAX_CODE,
            _ => low_mask(self.bits()) - u64::from(self.nullable),
        }
    }

    /// The stored code of a missing value, `2^bits − 1`, for a nullable column.
    pub fn missing_code(&self) -> Option<u64> {
        self.nullable.then(|| low_mask(self.bits()))
    }

    /// The criterion range of a column a query does not mention: every present value and, for
    /// a nullable column, the missing code too.
    pub fn unconstrained_range(&self) -> (u64, u64) {
        (0, self.missing_code().unwrap_or_else(|| self.max_value()))
    }

    /// Whether this is the consent column.
    pub fn is_consent(&self) -> bool {
        matches!(self.kind, ColumnKind::Consent { .. })
    }

    /// Digits after the decimal point (0 for every kind but decimal).
    pub fn scale(&self) -> u32 {
        match self.kind {
            ColumnKind::Decimal { scale, .. } => scale,
            _ => 0,
        }
    }

    /// `min` scaled by `10^scale` (0 without `min`); `Err` if `min` is not a number of the
    /// column's scale (what [`Schema::validate`] reports).
    fn offset(&self) -> Result<i128, String> {
        let Some(min) = &self.min else { return Ok(0) };
        let text = min.to_string();
        let offset = parse_signed(&text, self.scale()).map_err(|_| {
            format!(
                "`min` {text} is not a number with at most {} decimals",
                self.scale()
            )
        })?;
        if i64::try_from(offset).is_err() {
            return Err(format!("`min` {text} is too large"));
        }
        Ok(offset)
    }

    /// `min` in stored units (`round(min · 10^scale)`; 0 without `min`): a stored value `s`
    /// reads `(s + min_stored) / 10^scale`. A validated schema's `min` always converts.
    pub fn min_stored(&self) -> i64 {
        self.offset().map_or(0, |o| o as i64)
    }

    /// Parses a CSV cell into the column's encoding. An empty cell of a nullable column is
    /// the missing code.
    pub fn encode(&self, cell: &str) -> Result<u64, String> {
        match self.missing_code() {
            Some(missing) if cell.trim().is_empty() => Ok(missing),
            _ => self.encode_present(cell),
        }
    }

    /// Parses a present value (never the missing code).
    fn encode_present(&self, cell: &str) -> Result<u64, String> {
        let cell = cell.trim();
        let value = match &self.kind {
            ColumnKind::Uint { .. } | ColumnKind::Decimal { .. } => {
                return self.encode_number(cell)
            }
            ColumnKind::Categorical { codes } => {
                codes.iter().position(|c| c == cell).ok_or_else(|| {
                    format!("`{cell}` is not one of the codes [{}]", codes.join(", "))
                })? as u64
            }
            ColumnKind::Icd10 if cell.is_empty() => return Err(self.empty_cell()),
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

    /// Integer and decimal cells: signed, scaled, shifted by `min`, checked against the width.
    fn encode_number(&self, cell: &str) -> Result<u64, String> {
        if cell.is_empty() {
            return Err(self.empty_cell());
        }
        let scale = self.scale();
        let natural = parse_signed(cell, scale).map_err(|()| match self.kind {
            ColumnKind::Uint { .. } => format!("`{cell}` is not an integer"),
            _ => format!("`{cell}` is not a decimal with at most {scale} decimals"),
        })?;
        let offset = self.offset()?;
        let stored = natural - offset;
        if stored < 0 {
            return Err(match &self.min {
                None => format!(
                    "`{cell}` is negative; declare a `min` for column `{}` in the schema to \
                     store values below 0",
                    self.name
                ),
                Some(min) => format!("`{cell}` is below the column's `min` {min}"),
            });
        }
        if stored > i128::from(self.max_value()) {
            return Err(format!(
                "`{cell}` encodes to {stored}, outside the declared {} bits (max {}{})",
                self.bits(),
                self.decode(self.max_value()),
                if self.nullable {
                    "; the top code is reserved for missing values"
                } else {
                    ""
                }
            ));
        }
        Ok(stored as u64)
    }

    fn empty_cell(&self) -> String {
        format!(
            "empty cell, and column `{}` is not nullable (declare `\"nullable\": true` in the \
             schema to allow missing values)",
            self.name
        )
    }

    /// Renders an encoded value back into its CSV form (the missing code of a nullable column
    /// as an empty cell).
    pub fn decode(&self, value: u64) -> String {
        if self.missing_code() == Some(value) {
            return String::new();
        }
        match &self.kind {
            ColumnKind::Uint { .. } | ColumnKind::Decimal { .. } => {
                format_signed(i128::from(value) + self.offset().unwrap_or(0), self.scale())
            }
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

    /// Parses a natural value given as a query bound (a number, decimal or code) into the
    /// stored encoding, translated by `min` like a cell. A bound is never missing: an empty
    /// bound is an error, and every bound of a nullable column is below its missing code, so
    /// a criterion never matches a missing value.
    pub fn encode_bound(&self, bound: &serde_json::Value) -> Result<u64, String> {
        let text = match bound {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(format!("bound {other} must be a number or a string")),
        };
        if text.trim().is_empty() {
            return Err(
                "a bound cannot be empty (a criterion never matches a missing value)".into(),
            );
        }
        self.encode_present(&text)
    }

    /// A threshold on this column's mean, `t` in natural units (a decimal, at most 9 digits
    /// after the point), as the fraction `(a, b)` of encoded units an attestation compares
    /// the mean with (`mean ≥ t` exactly when `b · Σx ≥ a · N` over the encoded values):
    /// `a = t · 10^(scale + d) − round(min · 10^scale) · 10^d` and `b = 10^d` for `d` digits
    /// after the point, reduced. A threshold below `min` is `(0, 1)` (every mean reaches it). For a
    /// categorical column of two codes, `t` is the share of the second code (`0.8`).
    pub fn encode_mean_threshold(
        &self,
        threshold: &serde_json::Value,
    ) -> Result<(u64, u64), String> {
        let text = match threshold {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(format!("threshold {other} must be a number or a string")),
        };
        match &self.kind {
            ColumnKind::Uint { .. } | ColumnKind::Decimal { .. } => {}
            ColumnKind::Categorical { codes } if codes.len() == 2 => {}
            _ => {
                return Err(
                    "only an integer, decimal or two-code column has a mean to attest".into(),
                )
            }
        }
        let digits = text.split_once('.').map_or(0, |(_, f)| f.len()) as u32;
        if digits > 9 {
            return Err(format!(
                "threshold {text}: at most 9 digits after the point"
            ));
        }
        let scaled = parse_signed(&text, self.scale() + digits)
            .map_err(|()| format!("threshold {text} is not a decimal number"))?;
        let den = 10i128.pow(digits);
        let a = scaled - self.offset()? * den;
        let a = a.max(0);
        let g = gcd(a, den);
        let a = u64::try_from(a / g)
            .map_err(|_| format!("threshold {text} is too large for the column"))?;
        Ok((a, (den / g) as u64))
    }

    /// Mean and (population) variance of a released statistic over this column in natural
    /// units: undoes the scale and adds back `min` (released sums are `Σ (v − min)`).
    pub fn natural_mean_variance(&self, result: &QueryResult) -> Option<(f64, f64)> {
        let (mean, variance) = result.mean_variance(self.scale())?;
        let min = self.offset().unwrap_or(0) as f64 / 10f64.powi(self.scale() as i32);
        Some((mean + min, variance))
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

    /// Checks names, widths, `min` and `nullable`, and the consent column.
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
            if col.nullable && col.is_consent() {
                return invalid(format!(
                    "consent column `{}` cannot be nullable (no purpose bit set means no consent)",
                    col.name
                ));
            }
            if col.min.is_some()
                && !matches!(
                    col.kind,
                    ColumnKind::Uint { .. } | ColumnKind::Decimal { .. }
                )
            {
                return invalid(format!(
                    "column `{}`: `min` applies to uint and decimal columns only",
                    col.name
                ));
            }
            if let Some(unit) = &col.unit {
                if !matches!(
                    col.kind,
                    ColumnKind::Uint { .. } | ColumnKind::Decimal { .. }
                ) {
                    return invalid(format!(
                        "column `{}`: `unit` applies to uint and decimal columns only",
                        col.name
                    ));
                }
                if unit.trim().is_empty()
                    || unit.trim() != unit
                    || unit.chars().count() > MAX_UNIT_CHARS
                    || unit.chars().any(char::is_control)
                {
                    return invalid(format!(
                        "column `{}`: unit `{}` must be 1..={MAX_UNIT_CHARS} printable characters \
                         without surrounding spaces",
                        col.name,
                        unit.escape_debug()
                    ));
                }
            }
            if let Err(why) = col.offset() {
                return invalid(format!("column `{}`: {why}", col.name));
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

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Decimal places of a column's encoding (0 for non-decimal columns); `None` if there is
    /// no such column. Turns encoded sums back into natural units (with
    /// [`Column::natural_mean_variance`] for a column with a `min`).
    pub fn decimal_scale(&self, name: &str) -> Option<u32> {
        self.column(name).map(Column::scale)
    }

    /// The unit a column's statistics are printed with: the column's own `unit`, or, for the
    /// built-in [`Schema::clinical_default`] (which declares none, to keep its hash), the
    /// documented [`CLINICAL_DEFAULT_UNITS`]. `None` for no such column or no unit.
    pub fn unit(&self, column: &str) -> Option<&str> {
        let col = self.column(column)?;
        if let Some(unit) = &col.unit {
            return Some(unit);
        }
        if self.name == CLINICAL_DEFAULT_NAME && *self == Schema::clinical_default() {
            return CLINICAL_DEFAULT_UNITS
                .iter()
                .find(|(name, _)| *name == column)
                .map(|(_, unit)| *unit);
        }
        None
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
        let col = Column::new;
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Schema {
            name: CLINICAL_DEFAULT_NAME.into(),
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

const CLINICAL_DEFAULT_NAME: &str = "zkcohort-clinical-v1";

/// Units of [`Schema::clinical_default`]'s columns, which the schema itself does not declare:
/// adding them would change its hash, and so the circuit ids of the committed verifiers and
/// fixtures. [`Schema::unit`] falls back on them for that exact schema only.
pub const CLINICAL_DEFAULT_UNITS: &[(&str, &str)] = &[
    ("age", "years"),
    ("hba1c", "%"),
    ("sbp", "mmHg"),
    ("bmi", "kg/m²"),
];

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

/// `[-+]digits[.digits]` with at most `scale` decimals, as an integer scaled by `10^scale`.
/// Greatest common divisor (`gcd(0, b) = b`).
fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

fn parse_signed(text: &str, scale: u32) -> Result<i128, ()> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty())
        || !digits(int)
        || !digits(frac)
        || frac.len() > scale as usize
        || int.len() > 30
    {
        return Err(());
    }
    let int: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| ())?
    };
    let frac_val: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| ())?
    };
    let magnitude = int
        .checked_mul(10i128.pow(scale))
        .and_then(|v| v.checked_add(frac_val * 10i128.pow(scale - frac.len() as u32)))
        .ok_or(())?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// A scaled integer as `[-]int.frac` with `scale` decimals.
fn format_signed(value: i128, scale: u32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{magnitude}");
    }
    let div = 10u128.pow(scale);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / div,
        magnitude % div,
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
        let col = Column::new("x", ColumnKind::Decimal { scale: 1, bits: 8 });
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

    /// The canonical JSON (and so the hash, the circuit ids and every commitment) of a schema
    /// without the new attributes is what it was before they existed.
    #[test]
    fn schemas_without_min_or_nullable_serialise_as_before() {
        let s = Schema::clinical_default();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"name":"zkcohort-clinical-v1","columns":[{"name":"age","kind":"uint","bits":7},{"name":"sex","kind":"categorical","codes":["F","M","X"]},{"name":"dx","kind":"icd10"},{"name":"hba1c","kind":"decimal","scale":1,"bits":8},{"name":"sbp","kind":"uint","bits":8},{"name":"bmi","kind":"decimal","scale":1,"bits":10},{"name":"consent","kind":"consent","purposes":["research","trials","recontact","genomics"]},{"name":"site","kind":"uint","bits":6}]}"#
        );
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/schema-clinical-v1.json");
        assert_eq!(Schema::load(&path).unwrap(), s);
        assert_eq!(s.record_bits(), 81);
    }

    fn column(json: &str) -> Column {
        let col: Column = serde_json::from_str(json).unwrap();
        Schema {
            name: "t".into(),
            columns: vec![col.clone(), Schema::clinical_default().columns[6].clone()],
        }
        .validate()
        .unwrap();
        col
    }

    #[test]
    fn signed_integers_are_offset_by_min_and_keep_their_order() {
        let col = column(r#"{"name":"delta","kind":"uint","bits":7,"min":-50}"#);
        for (cell, stored) in [("-50", 0), ("-1", 49), ("0", 50), ("+3", 53), ("77", 127)] {
            assert_eq!(col.encode(cell), Ok(stored), "{cell}");
        }
        assert_eq!(col.decode(0), "-50");
        assert_eq!(col.decode(49), "-1");
        assert_eq!(col.decode(127), "77");
        let below = col.encode("-51").unwrap_err();
        assert!(below.contains("below the column's `min` -50"), "{below}");
        let above = col.encode("78").unwrap_err();
        assert!(
            above.contains("outside the declared 7 bits (max 77)"),
            "{above}"
        );
        // Order: sorted naturals encode to sorted stored values, and back.
        let naturals: Vec<i64> = (-50..=77).collect();
        let stored: Vec<u64> = naturals
            .iter()
            .map(|v| col.encode(&v.to_string()).unwrap())
            .collect();
        assert!(stored.windows(2).all(|w| w[0] < w[1]));
        for (v, s) in naturals.iter().zip(&stored) {
            assert_eq!(col.decode(*s), v.to_string());
        }
        // A positive offset: years 1900..=2155 in 8 bits.
        let year = column(r#"{"name":"year","kind":"uint","bits":8,"min":1900}"#);
        assert_eq!(year.encode("2024"), Ok(124));
        assert!(year.encode("1899").is_err() && year.encode("2156").is_err());
        // Without `min`, negative values stay an error that says how to allow them.
        let plain = column(r#"{"name":"n","kind":"uint","bits":7}"#);
        let err = plain.encode("-1").unwrap_err();
        assert!(err.contains("negative") && err.contains("`min`"), "{err}");
    }

    #[test]
    fn a_mean_threshold_is_the_exact_fraction_of_encoded_units() {
        let json = |v: &str| serde_json::from_str::<serde_json::Value>(v).unwrap();
        // Stored `round(x · 10) + 305`: a mean of 1.25 is 317.5 stored units, 635 / 2.
        let col = column(r#"{"name":"be","kind":"decimal","scale":1,"bits":10,"min":-30.5}"#);
        assert_eq!(col.encode_mean_threshold(&json("1.25")), Ok((635, 2)));
        assert_eq!(col.encode_mean_threshold(&json("\"-30.5\"")), Ok((0, 1)));
        // Below `min`: every mean reaches it.
        assert_eq!(col.encode_mean_threshold(&json("-40")), Ok((0, 1)));
        assert!(col.encode_mean_threshold(&json("0.0000000001")).is_err());
        assert!(col.encode_mean_threshold(&json("\"high\"")).is_err());
        // A share of the second code of a two-code column.
        let yes = column(r#"{"name":"cured","kind":"categorical","codes":["no","yes"]}"#);
        assert_eq!(yes.encode_mean_threshold(&json("0.8")), Ok((4, 5)));
        let three = column(r#"{"name":"arm","kind":"categorical","codes":["a","b","c"]}"#);
        assert!(three.encode_mean_threshold(&json("0.5")).is_err());
    }

    #[test]
    fn signed_decimals_round_trip_and_bounds_translate_like_cells() {
        let col = column(r#"{"name":"be","kind":"decimal","scale":1,"bits":10,"min":-30.5}"#);
        for (cell, stored) in [
            ("-30.5", 0),
            ("-30", 5),
            ("-0.1", 304),
            ("0", 305),
            ("1.2", 317),
        ] {
            assert_eq!(col.encode(cell), Ok(stored), "{cell}");
            assert_eq!(
                col.decode(stored),
                format_signed(parse_signed(cell, 1).unwrap(), 1)
            );
        }
        assert_eq!(col.decode(0), "-30.5");
        assert_eq!(col.decode(1023), "71.8");
        assert!(col.encode("-30.55").is_err() && col.encode("-30.6").is_err());
        // Query bounds go through the same translation, so ranges keep their meaning.
        assert_eq!(col.encode_bound(&serde_json::json!(-10)), Ok(205));
        assert_eq!(col.encode_bound(&serde_json::json!("-0.1")), Ok(304));
        assert_eq!(col.encode_bound(&serde_json::json!(2.5)), Ok(330));
        let r = QueryResult {
            records: 3,
            count: 2,
            sum: (5u32 + 317).into(),
            sum_squares: (25u32 + 317 * 317).into(),
            suppressed: false,
        };
        let (mean, variance) = col.natural_mean_variance(&r).unwrap();
        assert!((mean - (-30.0 + 1.2) / 2.0).abs() < 1e-9, "{mean}");
        assert!((variance - 15.6f64.powi(2)).abs() < 1e-6, "{variance}");
    }

    #[test]
    fn nullable_columns_store_missing_values_at_the_top_of_their_width() {
        let hba1c = column(r#"{"name":"h","kind":"decimal","scale":1,"bits":8,"nullable":true}"#);
        assert_eq!(hba1c.missing_code(), Some(255));
        assert_eq!(hba1c.encode(""), Ok(255));
        assert_eq!(hba1c.encode("  "), Ok(255));
        assert_eq!(hba1c.decode(255), "");
        assert_eq!(hba1c.encode("25.4"), Ok(254));
        let reserved = hba1c.encode("25.5").unwrap_err();
        assert!(
            reserved.contains("reserved for missing values"),
            "{reserved}"
        );
        assert_eq!(hba1c.max_value(), 254);
        assert_eq!(hba1c.unconstrained_range(), (0, 255));
        assert!(hba1c.encode_bound(&serde_json::json!("")).is_err());
        assert_eq!(hba1c.encode_bound(&serde_json::json!("25.4")), Ok(254));

        // Categorical: one more bit when the codes fill the width.
        let sex =
            column(r#"{"name":"s","kind":"categorical","codes":["F","M","X"],"nullable":true}"#);
        assert_eq!((sex.bits(), sex.missing_code()), (2, Some(3)));
        let four = column(
            r#"{"name":"q","kind":"categorical","codes":["a","b","c","d"],"nullable":true}"#,
        );
        assert_eq!(
            (four.bits(), four.missing_code(), four.max_value()),
            (3, Some(7), 3)
        );
        assert_eq!(four.encode(""), Ok(7));
        assert_eq!(four.decode(7), "");

        // ICD-10: the sentinel lies above every code, so no prefix range reaches it.
        let dx = column(r#"{"name":"dx","kind":"icd10","nullable":true}"#);
        let missing = dx.missing_code().unwrap();
        assert!(missing > icd10::MAX_CODE);
        assert!(icd10::prefix_range("Z").unwrap().1 < missing);
        assert_eq!(dx.encode(""), Ok(missing));

        // Signed and nullable together.
        let be = column(
            r#"{"name":"be","kind":"decimal","scale":1,"bits":9,"min":-25,"nullable":true}"#,
        );
        assert_eq!(be.encode("-25"), Ok(0));
        assert_eq!(be.encode(""), Ok(511));
        assert_eq!(be.decode(510), "26.0");
        assert!(be.encode("26.1").is_err());

        // Not nullable: an empty cell says how to allow it.
        let plain = column(r#"{"name":"p","kind":"uint","bits":8}"#);
        let err = plain.encode("").unwrap_err();
        assert!(err.contains("not nullable"), "{err}");
        assert_eq!(plain.unconstrained_range(), (0, 255));
    }

    #[test]
    fn rejects_bad_min_and_nullable_declarations() {
        let with = |json: &str| {
            let mut s = Schema::clinical_default();
            s.columns.push(serde_json::from_str(json).unwrap());
            s.validate().map(|_| ()).unwrap_err().to_string()
        };
        assert!(
            with(r#"{"name":"c","kind":"consent","purposes":["x"],"nullable":true}"#)
                .contains("cannot be nullable")
        );
        assert!(
            with(r#"{"name":"k","kind":"categorical","codes":["a","b"],"min":-1}"#)
                .contains("`min` applies to uint and decimal")
        );
        assert!(with(r#"{"name":"k","kind":"uint","bits":4,"min":-1.5}"#).contains("`min` -1.5"));
        assert!(
            with(r#"{"name":"k","kind":"decimal","scale":1,"bits":4,"min":-1.25}"#)
                .contains("at most 1 decimals")
        );
    }

    /// A unit is optional, round-trips, and is serialised only when present: the canonical
    /// JSON (and the hash) of a schema without units is the one pinned above.
    #[test]
    fn units_round_trip_and_change_the_hash_only_when_present() {
        let col = column(r#"{"name":"hba1c","kind":"decimal","scale":1,"bits":8,"unit":"%"}"#);
        assert_eq!(col.unit.as_deref(), Some("%"));
        assert_eq!(
            serde_json::to_string(&col).unwrap(),
            r#"{"name":"hba1c","kind":"decimal","scale":1,"bits":8,"unit":"%"}"#
        );
        let back: Column = serde_json::from_str(&serde_json::to_string(&col).unwrap()).unwrap();
        assert_eq!(back, col);

        let plain = Schema::clinical_default();
        let mut with_units = plain.clone();
        with_units.columns[3].unit = Some("%".into());
        assert_ne!(with_units.hash(), plain.hash());
        with_units.columns[3].unit = None;
        assert_eq!(with_units.hash(), plain.hash());
        assert_eq!(
            format!("0x{}", hex::encode(plain.hash())),
            "0xb3d88f65005267cc2978fc8320bb23a0dfed9418bf0bee32c45eb7e86c70b34d",
            "the committed verifiers and fixtures are keyed by this hash"
        );

        // The default schema declares no unit; its documented units are a fallback.
        assert!(plain.columns.iter().all(|c| c.unit.is_none()));
        assert_eq!(plain.unit("hba1c"), Some("%"));
        assert_eq!(plain.unit("sbp"), Some("mmHg"));
        assert_eq!(plain.unit("sex"), None);
        assert_eq!(plain.unit("nope"), None);
        // ...for that exact schema only: a look-alike gets no borrowed units.
        let mut renamed = plain.clone();
        renamed.columns[7].name = "clinic".into();
        assert_eq!(renamed.unit("hba1c"), None);
        // A declared unit wins.
        let mut own = plain.clone();
        own.columns[4].unit = Some("kPa".into());
        assert_eq!(own.unit("sbp"), Some("kPa"));

        // The FHIR example declares its units.
        let fhir = Schema::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fhir/schema-fhir-v1.json"),
        )
        .unwrap();
        assert_eq!(fhir.unit("hba1c"), Some("%"));
        assert_eq!(fhir.unit("weight"), Some("kg"));
    }

    #[test]
    fn rejects_bad_units() {
        let with = |json: &str| {
            let mut s = Schema::clinical_default();
            s.columns.push(serde_json::from_str(json).unwrap());
            s.validate().map(|_| ()).unwrap_err().to_string()
        };
        assert!(
            with(r#"{"name":"k","kind":"categorical","codes":["a","b"],"unit":"kg"}"#)
                .contains("`unit` applies to uint and decimal")
        );
        for bad in ["", " kg", "a very long unit name", "k\\ng"] {
            let json = format!(r#"{{"name":"k","kind":"uint","bits":2,"unit":"{bad}"}}"#);
            assert!(with(&json).contains("printable characters"), "{bad}");
        }
    }
}
