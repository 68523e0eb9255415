//! The mapping file: which FHIR data fills which schema column (docs/data.md has the
//! reference and examples/fhir/ has examples).
//!
//! ```json
//! {
//!   "reference_date": "2025-01-01",
//!   "columns": {
//!     "age":     { "source": "age" },
//!     "sex":     { "source": "gender", "values": { "female": "F", "male": "M", "other": "X" } },
//!     "dx":      { "source": "condition", "priority": ["E11", "I10"] },
//!     "hba1c":   { "source": "observation", "loinc": ["4548-4"], "unit": "%",
//!                  "convert": { "mmol/mol": { "divide": 10.929, "add": 2.15 } } },
//!     "consent": { "source": "consent", "default": [],
//!                  "purposes": { "research": ["http://terminology.hl7.org/CodeSystem/consentscope|research"] } },
//!     "site":    { "source": "constant", "value": 3 }
//!   }
//! }
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use serde::Deserialize;

use super::{date::Date, error::MappingError, units};
use crate::{
    icd10,
    schema::{ColumnKind, Schema},
};

/// The built-in SNOMED CT → ICD-10-CM table (`snomed_icd10.csv` beside this file).
pub const SNOMED_ICD10_CSV: &str = include_str!("snomed_icd10.csv");

/// Condition clinical statuses (FHIR R4 `condition-clinical`).
const CLINICAL_STATUSES: &str = "active, recurrence, relapse, inactive, remission, resolved";

/// One row of the built-in SNOMED CT table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnomedEntry {
    /// SNOMED CT concept id.
    pub snomed: String,
    /// ICD-10-CM code.
    pub icd10: String,
    /// SNOMED CT term (for reports).
    pub term: String,
}

/// The built-in SNOMED CT → ICD-10-CM table, parsed once.
pub fn builtin_snomed() -> &'static [SnomedEntry] {
    static TABLE: OnceLock<Vec<SnomedEntry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rdr = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(SNOMED_ICD10_CSV.as_bytes());
        rdr.records()
            .map(|r| {
                let r = r.expect("the built-in table is valid CSV (a unit test checks it)");
                SnomedEntry {
                    snomed: r[0].to_owned(),
                    icd10: r[1].to_owned(),
                    term: r[2].to_owned(),
                }
            })
            .collect()
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    reference_date: String,
    columns: BTreeMap<String, SourceFile>,
}

#[derive(Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
enum SourceFile {
    Age(AgeFile),
    Gender(GenderFile),
    Condition(ConditionFile),
    Observation(ObservationFile),
    Consent(ConsentFile),
    Constant(ConstantFile),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgeFile {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenderFile {
    #[serde(default)]
    values: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionFile {
    #[serde(default)]
    priority: Vec<String>,
    #[serde(default)]
    statuses: Option<Vec<String>>,
    #[serde(default)]
    snomed: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObservationFile {
    loinc: Vec<String>,
    unit: String,
    #[serde(default)]
    convert: BTreeMap<String, Conversion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentFile {
    #[serde(default)]
    default: Vec<String>,
    #[serde(default)]
    purposes: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConstantFile {
    value: serde_json::Value,
}

/// An analyte-specific unit conversion: `value · multiply / divide + add`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// Factor (default 1).
    #[serde(default = "one")]
    pub multiply: f64,
    /// Divisor (default 1).
    #[serde(default = "one")]
    pub divide: f64,
    /// Offset added last (default 0).
    #[serde(default)]
    pub add: f64,
}

fn one() -> f64 {
    1.0
}

impl Conversion {
    /// Applies the conversion.
    pub fn apply(&self, value: f64) -> f64 {
        value * self.multiply / self.divide + self.add
    }
}

/// A mapping checked against a schema: one rule per column, in schema order.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The mapping file (named in reports).
    pub path: PathBuf,
    /// Ages are taken on this date; later observations, conditions and consents are ignored.
    pub reference_date: Date,
    /// One rule per schema column.
    pub(crate) rules: Vec<Rule>,
}

/// How one column is filled.
#[derive(Clone, Debug)]
pub(crate) enum Rule {
    Age,
    Gender(Option<BTreeMap<String, String>>),
    Condition(ConditionRule),
    Observation(ObservationRule),
    Consent(ConsentRule),
    Constant(u64),
}

#[derive(Clone, Debug)]
pub(crate) struct ConditionRule {
    /// ICD-10 prefixes in priority order, with their encoded ranges.
    pub priority: Vec<(String, (u64, u64))>,
    /// Clinical statuses that count.
    pub statuses: Vec<String>,
    /// SNOMED CT concept id → (ICD-10-CM code, encoding): the built-in table with the
    /// mapping's entries over it.
    pub snomed: HashMap<String, (String, u64)>,
}

#[derive(Clone, Debug)]
pub(crate) struct ObservationRule {
    pub loinc: Vec<String>,
    /// The column's UCUM unit.
    pub unit: String,
    /// Analyte-specific conversions, by UCUM unit.
    pub convert: BTreeMap<String, Conversion>,
}

#[derive(Clone, Debug)]
pub(crate) struct ConsentRule {
    pub default_mask: u64,
    /// (purpose bit, `(system, code)` codings that address it).
    pub purposes: Vec<(u32, Vec<(String, String)>)>,
}

/// ICD-10-CM coding systems read from `Condition.code` (ICD-10-CM, and WHO ICD-10 whose codes
/// have the same shape).
pub const ICD10_SYSTEMS: [&str; 2] = [
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10",
];
/// The SNOMED CT coding system.
pub const SNOMED: &str = "http://snomed.info/sct";
/// The LOINC coding system.
pub const LOINC: &str = "http://loinc.org";

impl Mapping {
    /// Reads a mapping file and checks it against `schema`.
    pub fn load(path: &Path, schema: &Schema) -> Result<Self, MappingError> {
        let text = fs::read_to_string(path).map_err(|source| MappingError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path, schema)
    }

    /// Parses mapping JSON (`path` names it in errors) and checks it against `schema`: every
    /// column mapped, each source fit for its column's kind, every value encodable.
    pub fn parse(text: &str, path: &Path, schema: &Schema) -> Result<Self, MappingError> {
        schema.validate()?;
        let file: MappingFile =
            serde_json::from_str(text).map_err(|source| MappingError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let p = || path.to_owned();
        let reference_date = Date::parse(&file.reference_date)
            .filter(|d| !d.partial)
            .ok_or_else(|| MappingError::ReferenceDate {
                path: p(),
                value: file.reference_date.clone(),
            })?;
        if let Some(column) = file.columns.keys().find(|c| schema.column(c).is_none()) {
            return Err(MappingError::UnknownColumn {
                path: p(),
                column: column.clone(),
                schema: schema.name.clone(),
            });
        }
        let mut rules = Vec::with_capacity(schema.columns.len());
        for col in &schema.columns {
            let source = file
                .columns
                .get(&col.name)
                .ok_or_else(|| MappingError::Unmapped {
                    path: p(),
                    column: col.name.clone(),
                    schema: schema.name.clone(),
                })?;
            let kind = |source_name, needs| MappingError::Kind {
                path: p(),
                column: col.name.clone(),
                source_name,
                needs,
            };
            let value_error = |what: String, value: &str, message: String| MappingError::Value {
                path: p(),
                column: col.name.clone(),
                what,
                value: value.to_owned(),
                message,
            };
            let numeric = matches!(
                col.kind,
                ColumnKind::Uint { .. } | ColumnKind::Decimal { .. }
            );
            let rule = match source {
                SourceFile::Age(AgeFile {}) if numeric => Rule::Age,
                SourceFile::Age(_) => return Err(kind("age", "a uint or decimal column")),
                SourceFile::Gender(_) if col.is_consent() => {
                    return Err(kind("gender", "a column other than consent"))
                }
                SourceFile::Gender(GenderFile { values }) => {
                    for (gender, cell) in values.iter().flatten() {
                        col.encode(cell)
                            .map_err(|m| value_error(format!("values.{gender}"), cell, m))?;
                    }
                    Rule::Gender(values.clone())
                }
                SourceFile::Condition(c) => match col.kind {
                    ColumnKind::Icd10 => Rule::Condition(condition_rule(c, path, &col.name)?),
                    _ => return Err(kind("condition", "an icd10 column")),
                },
                SourceFile::Observation(o) if numeric => {
                    if o.loinc.is_empty() {
                        return Err(MappingError::NoLoinc {
                            path: p(),
                            column: col.name.clone(),
                        });
                    }
                    let unit = units::canonical(&o.unit).to_owned();
                    let mut convert = BTreeMap::new();
                    for (from, c) in &o.convert {
                        let from = units::canonical(from).to_owned();
                        let bad = |why| MappingError::Conversion {
                            path: p(),
                            column: col.name.clone(),
                            unit: from.clone(),
                            why,
                        };
                        if from == unit {
                            return Err(bad("it is the column's own unit"));
                        }
                        if !(c.multiply.is_finite()
                            && c.divide.is_finite()
                            && c.add.is_finite()
                            && c.multiply != 0.0
                            && c.divide != 0.0)
                        {
                            return Err(bad(
                                "`multiply` and `divide` must be finite and non-zero, `add` finite",
                            ));
                        }
                        convert.insert(from, *c);
                    }
                    Rule::Observation(ObservationRule {
                        loinc: o.loinc.clone(),
                        unit,
                        convert,
                    })
                }
                SourceFile::Observation(_) => {
                    return Err(kind("observation", "a uint or decimal column"))
                }
                SourceFile::Consent(c) => match &col.kind {
                    ColumnKind::Consent { purposes } => {
                        Rule::Consent(consent_rule(c, path, &col.name, purposes)?)
                    }
                    _ => return Err(kind("consent", "the consent column")),
                },
                SourceFile::Constant(ConstantFile { value }) => {
                    let cell = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        other => other.to_string(),
                    };
                    let encoded = col
                        .encode(&cell)
                        .map_err(|m| value_error("value".into(), &cell, m))?;
                    Rule::Constant(encoded)
                }
            };
            rules.push(rule);
        }
        Ok(Mapping {
            path: path.to_owned(),
            reference_date,
            rules,
        })
    }

    /// LOINC codes any observation column reads.
    pub(crate) fn loinc_codes(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|r| match r {
            Rule::Observation(o) => o.loinc.iter().map(String::as_str).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }

    /// Whether a column reads Condition resources.
    pub(crate) fn reads_conditions(&self) -> bool {
        self.rules.iter().any(|r| matches!(r, Rule::Condition(_)))
    }

    /// Whether a column reads Consent resources (it maps at least one purpose to codings).
    pub(crate) fn reads_consents(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, Rule::Consent(c) if !c.purposes.is_empty()))
    }
}

fn condition_rule(
    c: &ConditionFile,
    path: &Path,
    column: &str,
) -> Result<ConditionRule, MappingError> {
    let icd = |what: String, source| MappingError::Icd10 {
        path: path.to_owned(),
        column: column.to_owned(),
        what,
        source: Box::new(source),
    };
    let priority = c
        .priority
        .iter()
        .enumerate()
        .map(|(i, prefix)| {
            icd10::prefix_range(prefix)
                .map(|range| (prefix.trim().to_ascii_uppercase(), range))
                .map_err(|e| icd(format!("priority[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let statuses = match &c.statuses {
        None => vec!["active".into(), "recurrence".into(), "relapse".into()],
        Some(list) => {
            for s in list {
                if !CLINICAL_STATUSES.split(", ").any(|k| k == s) {
                    return Err(MappingError::Status {
                        path: path.to_owned(),
                        column: column.to_owned(),
                        status: s.clone(),
                        known: CLINICAL_STATUSES,
                    });
                }
            }
            list.clone()
        }
    };
    let mut snomed = HashMap::new();
    for e in builtin_snomed() {
        let code = icd10::encode(&e.icd10).expect("the built-in table's codes are valid");
        snomed.insert(e.snomed.clone(), (e.icd10.clone(), code));
    }
    for (concept, target) in &c.snomed {
        if !(6..=18).contains(&concept.len()) || !concept.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MappingError::Snomed {
                path: path.to_owned(),
                column: column.to_owned(),
                code: concept.clone(),
            });
        }
        let code = icd10::encode(target).map_err(|e| icd(format!("snomed.{concept}"), e))?;
        snomed.insert(concept.clone(), (icd10::decode(code), code));
    }
    Ok(ConditionRule {
        priority,
        statuses,
        snomed,
    })
}

fn consent_rule(
    c: &ConsentFile,
    path: &Path,
    column: &str,
    purposes: &[String],
) -> Result<ConsentRule, MappingError> {
    let bit = |purpose: &str| {
        purposes
            .iter()
            .position(|p| p == purpose)
            .map(|b| b as u32)
            .ok_or_else(|| MappingError::Purpose {
                path: path.to_owned(),
                column: column.to_owned(),
                purpose: purpose.to_owned(),
                purposes: purposes.join(", "),
            })
    };
    let mut default_mask = 0;
    for p in &c.default {
        default_mask |= 1 << bit(p)?;
    }
    let mut rules = Vec::new();
    for (purpose, codings) in &c.purposes {
        let b = bit(purpose)?;
        let codings = codings
            .iter()
            .map(|coding| match coding.split_once('|') {
                Some((system, code)) if !system.is_empty() && !code.is_empty() => {
                    Ok((system.to_owned(), code.to_owned()))
                }
                _ => Err(MappingError::Coding {
                    path: path.to_owned(),
                    column: column.to_owned(),
                    purpose: purpose.clone(),
                    coding: coding.clone(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        rules.push((b, codings));
    }
    Ok(ConsentRule {
        default_mask,
        purposes: rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Mapping, MappingError> {
        Mapping::parse(json, Path::new("m.json"), &Schema::clinical_default())
    }

    const GOOD: &str = r#"{
        "reference_date": "2025-01-01",
        "columns": {
            "age": {"source": "age"},
            "sex": {"source": "gender", "values": {"female": "F", "male": "M", "other": "X"}},
            "dx": {"source": "condition", "priority": ["E11", "I10"], "snomed": {"123456789": "E11.65"}},
            "hba1c": {"source": "observation", "loinc": ["4548-4"], "unit": "%",
                      "convert": {"mmol/mol": {"divide": 10.929, "add": 2.15}}},
            "sbp": {"source": "observation", "loinc": ["8480-6"], "unit": "mmHg"},
            "bmi": {"source": "observation", "loinc": ["39156-5"], "unit": "kg/m2"},
            "consent": {"source": "consent", "default": ["research"],
                        "purposes": {"trials": ["http://terminology.hl7.org/CodeSystem/v3-ActReason|CLINTRCH"]}},
            "site": {"source": "constant", "value": 3}
        }
    }"#;

    #[test]
    fn a_good_mapping_compiles_to_rules() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.reference_date.to_string(), "2025-01-01");
        assert!(matches!(m.rules[0], Rule::Age));
        let Rule::Condition(dx) = &m.rules[2] else {
            panic!()
        };
        assert_eq!(dx.priority[0].0, "E11");
        assert_eq!(dx.statuses, ["active", "recurrence", "relapse"]);
        assert_eq!(dx.snomed["44054006"].0, "E11", "built-in table");
        assert_eq!(dx.snomed["38341003"].0, "I10");
        assert_eq!(
            dx.snomed["123456789"].0, "E11.65",
            "the mapping's own entry"
        );
        let Rule::Observation(sbp) = &m.rules[4] else {
            panic!()
        };
        assert_eq!(sbp.unit, "mm[Hg]", "aliases are read as their UCUM code");
        let Rule::Observation(hba1c) = &m.rules[3] else {
            panic!()
        };
        assert!((hba1c.convert["mmol/mol"].apply(48.0) - 6.542).abs() < 1e-3);
        let Rule::Consent(c) = &m.rules[6] else {
            panic!()
        };
        assert_eq!(c.default_mask, 0b1);
        assert_eq!(c.purposes[0].0, 1);
        assert!(matches!(m.rules[7], Rule::Constant(3)));
        assert_eq!(
            m.loinc_codes().collect::<Vec<_>>(),
            ["4548-4", "8480-6", "39156-5"]
        );
    }

    #[test]
    fn bad_mappings_name_the_column_and_the_problem() {
        let edit = |from: &str, to: &str| {
            assert!(GOOD.contains(from), "{from}");
            parse(&GOOD.replace(from, to)).unwrap_err().to_string()
        };
        for (from, to, want) in [
            (
                r#""2025-01-01""#,
                r#""2025-01""#,
                "reference_date `2025-01` is not a full date",
            ),
            (
                r#""site": {"source": "constant", "value": 3}"#,
                r#""site": {"source": "constant", "value": 99}"#,
                "column `site`: value `99`",
            ),
            (
                r#""site": {"source": "constant", "value": 3}"#,
                r#""site": {"source": "constant", "value": 3}, "weight": {"source": "age"}"#,
                "column `weight` is not in schema",
            ),
            (
                r#""site": {"source": "constant", "value": 3}"#,
                r#""site": {"source": "condition"}"#,
                "column `site`: source `condition` needs an icd10 column",
            ),
            (
                r#""age": {"source": "age"}"#,
                r#""age": {"source": "age", "unit": "months"}"#,
                "unknown field `unit`",
            ),
            (r#""other": "X""#, r#""other": "Q""#, "values.other `Q`"),
            (r#"["E11", "I10"]"#, r#"["E11", "B2O"]"#, "priority[1]"),
            (
                r#""123456789": "E11.65""#,
                r#""12345": "E11.65""#,
                "not a SNOMED CT concept id",
            ),
            (
                r#""123456789": "E11.65""#,
                r#""123456789": "E1.65""#,
                "snomed.123456789",
            ),
            (r#"["4548-4"]"#, "[]", "`loinc` lists no code"),
            (
                r#""mmol/mol": {"divide": 10.929"#,
                r#""mmol/mol": {"divide": 0"#,
                "non-zero",
            ),
            (
                r#""mmol/mol": {"divide""#,
                r#""%": {"divide""#,
                "the column's own unit",
            ),
            (
                r#""default": ["research"]"#,
                r#""default": ["marketing"]"#,
                "`marketing` is not a consent purpose",
            ),
            (
                r#"v3-ActReason|CLINTRCH"#,
                r#"CLINTRCH"#,
                "is not `system|code`",
            ),
            (
                r#""source": "age"}"#,
                r#""source": "birth"}"#,
                "unknown variant `birth`",
            ),
        ] {
            let err = edit(from, to);
            assert!(err.contains(want), "{to}: {err}");
        }
        let mut no_site = serde_json::from_str::<serde_json::Value>(GOOD).unwrap();
        no_site["columns"].as_object_mut().unwrap().remove("site");
        let err = parse(&no_site.to_string()).unwrap_err().to_string();
        assert!(
            err.contains("column `site` of schema `zkcohort-clinical-v1` has no mapping"),
            "{err}"
        );
    }

    #[test]
    fn the_builtin_snomed_table_is_valid() {
        let table = builtin_snomed();
        assert!(table.len() >= 50);
        let mut seen = std::collections::BTreeSet::new();
        for e in table {
            assert!(
                e.snomed.bytes().all(|b| b.is_ascii_digit()) && (6..=18).contains(&e.snomed.len()),
                "{e:?}"
            );
            assert!(seen.insert(&e.snomed), "{} twice", e.snomed);
            let code = icd10::encode(&e.icd10).unwrap_or_else(|err| panic!("{e:?}: {err}"));
            assert_eq!(icd10::decode(code), e.icd10, "written in canonical form");
            assert!(!e.term.is_empty());
        }
        let find = |s: &str| {
            table
                .iter()
                .find(|e| e.snomed == s)
                .map(|e| e.icd10.as_str())
        };
        assert_eq!(find("44054006"), Some("E11"));
        assert_eq!(find("38341003"), Some("I10"));
        assert_eq!(find("46635009"), Some("E10"));
    }
}
