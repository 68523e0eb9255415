//! FHIR R4 import: Bundles (as Synthea writes them: `collection` or `transaction`, resources
//! in `entry[].resource`) and NDJSON bulk exports (`Patient.ndjson`, `Condition.ndjson`, ...:
//! one resource per line), turned into one record per patient by a [`Mapping`].
//!
//! docs/data.md is the reference for the mapping file and every rule below; in short:
//!
//! - **age**: completed years from `Patient.birthDate` to the mapping's `reference_date` (a
//!   partial birth date stands for the first day of its year or month, and is counted);
//! - **gender**: `Patient.gender` through the mapping's `values`;
//! - **condition** (an `icd10` column): among the patient's Conditions whose clinical status
//!   the rule accepts (default active, recurrence, relapse; none refuted or entered in error),
//!   with onset on or before the reference date, each read as its first ICD-10-CM coding, else
//!   its first SNOMED CT coding in the table ([`builtin_snomed`] plus the mapping's entries);
//!   the code matching the earliest entry of the rule's `priority` list wins, then the earliest
//!   onset, then the smallest code. One diagnosis column holds one code; patients with several
//!   are counted ([`ImportReport::several_diagnoses`]);
//! - **observation**: the latest (by effective time, then input order) final, amended or
//!   corrected Observation on or before the reference date carrying one of the rule's LOINC
//!   codes (top level or in a component) with a `valueQuantity`, converted to the column's
//!   UCUM unit (the mapping's analyte conversions, then the built-in [`units`]) and rounded to
//!   the column's scale; a unit neither converts is an error;
//! - **consent**: the mapping's `default` purposes, then every active Consent in force on the
//!   reference date in date order: a `permit` (or no provision type) sets, a `deny` clears,
//!   each purpose whose codings appear in its scope, category or provision purpose;
//! - **constant**: the same value for every patient.
//!
//! A patient deceased on or before the reference date, born after it, or without a value for
//! a column that is not nullable is skipped with the reason; a missing value of a nullable
//! column is stored as missing. A malformed field the mapping needs is an error that names the
//! file, the entry or line, the resource and the field, and nothing is imported.

mod date;
mod error;
mod mapping;
mod read;
pub mod units;

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::Serialize;

pub use date::{Date, Instant};
pub use error::{FhirError, FieldProblem, MappingError, Place, Pos};
pub use mapping::{
    builtin_snomed, Conversion, Mapping, SnomedEntry, ICD10_SYSTEMS, LOINC, SNOMED,
    SNOMED_ICD10_CSV,
};
pub use read::input_files;

use crate::{
    dataset::{Dataset, MAX_REPORTED_ERRORS},
    icd10,
    schema::{Column, Schema},
};
use mapping::{ConditionRule, ConsentRule, ObservationRule, Rule};
use read::{Inputs, Needs, PatientIndex, PatientRes, Tag};

/// The records of an import and its report.
#[derive(Clone, Debug)]
pub struct FhirImport {
    /// One record per imported patient, in input order.
    pub dataset: Dataset,
    /// What was read, imported, skipped and left unmapped.
    pub report: ImportReport,
}

/// What an import did. Counts only, except [`ImportReport::patients`], which names patients
/// and resources (never values): keep it as private as the records.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    /// Files read.
    pub files: usize,
    /// Resources read, of every type.
    pub resources: usize,
    /// Resources of the types the import does not use, by type.
    pub other_resources: BTreeMap<String, usize>,
    /// Patient resources read.
    pub patients_read: usize,
    /// Patients imported as records.
    pub imported: usize,
    /// Patients skipped, by their first reason.
    pub skipped: BTreeMap<String, usize>,
    /// Imported patients whose nullable column was left missing, by column.
    pub missing: BTreeMap<String, usize>,
    /// Imported patients with more than one distinct diagnosis code (one was chosen).
    pub several_diagnoses: usize,
    /// Patients whose birth date was partial (the first day of the year or month was used).
    pub partial_birth_dates: usize,
    /// Condition codes neither ICD-10-CM nor in the SNOMED CT table, most frequent first.
    pub unmapped_codes: Vec<UnmappedCode>,
    /// Resources that were read but not used, by why (another patient's reference, a value
    /// with a comparator, a refuted condition, ...).
    pub ignored: BTreeMap<String, usize>,
    /// Per patient: record index or skip reasons, and which resource filled each column.
    pub patients: Vec<PatientReport>,
}

/// A condition code the mapping could not turn into ICD-10-CM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnmappedCode {
    /// Coding system (empty if none).
    pub system: String,
    /// Code.
    pub code: String,
    /// The first display text seen.
    pub display: String,
    /// Conditions with it (first coding), of imported or skipped patients.
    pub conditions: usize,
}

/// One patient's line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct PatientReport {
    /// `Patient.id`.
    pub patient: String,
    /// Where the Patient resource was.
    pub place: String,
    /// Its record's index (0-based, in `records.csv` order), if imported.
    pub record: Option<usize>,
    /// Why it was skipped (empty if imported).
    pub skipped: Vec<SkipReason>,
    /// Per column: which resource and field gave its value.
    pub sources: BTreeMap<String, String>,
    /// Nullable columns left missing.
    pub missing: Vec<String>,
}

/// Why a patient is not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// `deceasedDateTime` on or before the reference date.
    DeceasedBefore,
    /// `deceasedBoolean` true, without a date.
    Deceased,
    /// `birthDate` after the reference date.
    BornAfter,
    /// No `birthDate`, and the age column is not nullable.
    NoBirthDate {
        /// Column.
        column: String,
    },
    /// No `gender`, and the column is not nullable.
    NoGender {
        /// Column.
        column: String,
    },
    /// No condition maps to ICD-10-CM, and the column is not nullable.
    NoDiagnosis {
        /// Column.
        column: String,
    },
    /// No observation value, and the column is not nullable.
    NoObservation {
        /// Column.
        column: String,
        /// The LOINC codes looked for.
        loinc: Vec<String>,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::DeceasedBefore => write!(f, "deceased on or before the reference date"),
            SkipReason::Deceased => write!(f, "deceased (deceasedBoolean, no date)"),
            SkipReason::BornAfter => write!(f, "born after the reference date"),
            SkipReason::NoBirthDate { column } => write!(f, "no birthDate (column `{column}`)"),
            SkipReason::NoGender { column } => write!(f, "no gender (column `{column}`)"),
            SkipReason::NoDiagnosis { column } => write!(
                f,
                "no active condition with an ICD-10-CM or mapped SNOMED CT code (column `{column}`)"
            ),
            SkipReason::NoObservation { column, loinc } => write!(
                f,
                "no Observation of LOINC {} on or before the reference date (column `{column}`)",
                loinc.join(", ")
            ),
        }
    }
}

impl Serialize for SkipReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Observation statuses whose values are read.
const OBSERVATION_STATUSES: [&str; 3] = ["final", "amended", "corrected"];

/// Reads FHIR files and directories (see [`input_files`]) and maps every patient to a record
/// of `schema`. `on_file(done, total, path)` is called before each file. On any error nothing
/// is returned but the errors (the first [`MAX_REPORTED_ERRORS`], then a note).
pub fn import(
    schema: &Schema,
    mapping: &Mapping,
    paths: &[PathBuf],
    on_file: &mut dyn FnMut(usize, usize, &Path),
) -> Result<FhirImport, Vec<FhirError>> {
    let files = input_files(paths).map_err(|e| vec![e])?;
    let needs = Needs {
        conditions: mapping.reads_conditions(),
        consents: mapping.reads_consents(),
        loinc: mapping.loinc_codes().collect(),
    };
    let mut inputs = Inputs::default();
    let mut errors = Vec::new();
    for (i, file) in files.iter().enumerate() {
        on_file(i, files.len(), file);
        if let Err(e) = read::read_file(file, &needs, &mut inputs, &mut errors) {
            errors.push(e);
        }
    }
    let index = match PatientIndex::build(&inputs) {
        Ok(index) => index,
        Err(mut duplicates) => {
            errors.append(&mut duplicates);
            return Err(capped(errors));
        }
    };
    let mut report = ImportReport {
        files: files.len(),
        resources: inputs.resources,
        other_resources: inputs.other.clone(),
        patients_read: inputs.patients.len(),
        ..Default::default()
    };

    // Each patient's resources, in input order.
    let n = inputs.patients.len();
    let (mut conditions, mut observations, mut consents) = (
        vec![Vec::new(); n],
        vec![Vec::new(); n],
        vec![Vec::new(); n],
    );
    let mut group =
        |reference: &Option<String>, kind: &str, list: &mut Vec<Vec<u32>>, i| match reference
            .as_deref()
            .and_then(|r| index.resolve(r))
        {
            Some(p) => list[p as usize].push(i as u32),
            None => {
                *report
                    .ignored
                    .entry(format!("{kind} of no Patient read"))
                    .or_default() += 1
            }
        };
    for (i, c) in inputs.conditions.iter().enumerate() {
        group(&c.subject, "Condition", &mut conditions, i);
    }
    for (i, o) in inputs.observations.iter().enumerate() {
        group(&o.subject, "Observation", &mut observations, i);
    }
    for (i, c) in inputs.consents.iter().enumerate() {
        group(&c.patient, "Consent", &mut consents, i);
    }

    let mut unmapped: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    let mut records = Vec::new();
    for (p, patient) in inputs.patients.iter().enumerate() {
        let mut eval = Eval {
            inputs: &inputs,
            mapping,
            patient,
            errors: &mut errors,
            report: &mut report,
            unmapped: &mut unmapped,
            conditions: &conditions[p],
            observations: &observations[p],
            consents: &consents[p],
            several: false,
        };
        let errors_before = eval.errors.len();
        let mut line = PatientReport {
            patient: patient.id.clone(),
            place: inputs.place(patient.tag.loc).to_string(),
            record: None,
            skipped: eval.patient_skip().into_iter().collect(),
            sources: BTreeMap::new(),
            missing: Vec::new(),
        };
        let mut record = Vec::with_capacity(schema.columns.len());
        for (col, rule) in schema.columns.iter().zip(&mapping.rules) {
            match eval.column(col, rule) {
                Some(Cell::Value(v, source)) => {
                    record.push(v);
                    line.sources.insert(col.name.clone(), source);
                }
                Some(Cell::Missing(reason)) => match col.missing_code() {
                    Some(missing) => {
                        record.push(missing);
                        line.missing.push(col.name.clone());
                    }
                    None => line.skipped.push(reason),
                },
                Some(Cell::Skip(reason)) => line.skipped.push(reason),
                None => {}
            }
        }
        let several = eval.several;
        let failed = errors.len() > errors_before;
        if let Some(first) = line.skipped.first() {
            *report.skipped.entry(first.to_string()).or_default() += 1;
        } else if !failed {
            line.record = Some(records.len());
            report.several_diagnoses += usize::from(several);
            for m in &line.missing {
                *report.missing.entry(m.clone()).or_default() += 1;
            }
            records.push(record);
        }
        report.patients.push(line);
    }
    if !errors.is_empty() {
        return Err(capped(errors));
    }
    report.imported = records.len();
    let mut unmapped: Vec<UnmappedCode> = unmapped
        .into_iter()
        .map(|((system, code), (display, conditions))| UnmappedCode {
            system,
            code,
            display,
            conditions,
        })
        .collect();
    unmapped.sort_by(|a, b| b.conditions.cmp(&a.conditions).then(a.code.cmp(&b.code)));
    report.unmapped_codes = unmapped;
    Ok(FhirImport {
        dataset: Dataset {
            schema: schema.clone(),
            records,
        },
        report,
    })
}

fn capped(mut errors: Vec<FhirError>) -> Vec<FhirError> {
    if errors.len() > MAX_REPORTED_ERRORS {
        errors.truncate(MAX_REPORTED_ERRORS);
        errors.push(FhirError::TooManyErrors {
            shown: MAX_REPORTED_ERRORS,
        });
    }
    errors
}

/// One column's outcome for one patient.
enum Cell {
    /// The stored value, and where it came from.
    Value(u64, String),
    /// No value: stored as missing if the column is nullable, else the patient is skipped.
    Missing(SkipReason),
    /// The patient is skipped whatever the column.
    Skip(SkipReason),
}

/// Maps one patient.
struct Eval<'a> {
    inputs: &'a Inputs,
    mapping: &'a Mapping,
    patient: &'a PatientRes,
    errors: &'a mut Vec<FhirError>,
    report: &'a mut ImportReport,
    unmapped: &'a mut BTreeMap<(String, String), (String, usize)>,
    conditions: &'a [u32],
    observations: &'a [u32],
    consents: &'a [u32],
    /// Whether the patient has more than one distinct diagnosis code.
    several: bool,
}

impl Eval<'_> {
    fn error(&mut self, tag: &Tag, field: impl Into<String>, problem: FieldProblem) {
        let e = self.inputs.field_error(tag, field, problem);
        self.errors.push(e);
    }

    fn ignore(&mut self, why: &str) {
        *self.report.ignored.entry(why.to_owned()).or_default() += 1;
    }

    /// The start of the day after the reference date: what is "on or before" it is earlier.
    fn reference_end(&self) -> Instant {
        self.mapping.reference_date.end()
    }

    /// A date-time field, or an error naming it.
    fn instant(&mut self, tag: &Tag, field: &str, text: &str) -> Option<Instant> {
        let t = Instant::parse(text);
        if t.is_none() {
            self.error(tag, field, FieldProblem::DateTime(text.to_owned()));
        }
        t
    }

    /// Whether the patient is outside the population on the reference date.
    fn patient_skip(&mut self) -> Option<SkipReason> {
        let p = self.patient;
        if let Some(text) = &p.deceased_date_time {
            let t = self.instant(&p.tag, "deceasedDateTime", text)?;
            return (t < self.reference_end()).then_some(SkipReason::DeceasedBefore);
        }
        if p.deceased_boolean == Some(true) {
            return Some(SkipReason::Deceased);
        }
        None
    }

    /// Encodes a natural value into `col`, or records an error naming the field.
    fn encode(&mut self, col: &Column, tag: &Tag, field: &str, cell: &str) -> Option<u64> {
        match col.encode(cell) {
            Ok(v) => Some(v),
            Err(message) => {
                let problem = FieldProblem::Column {
                    column: col.name.clone(),
                    message,
                };
                self.error(tag, field, problem);
                None
            }
        }
    }

    fn column(&mut self, col: &Column, rule: &Rule) -> Option<Cell> {
        let p = self.patient;
        let value = |v, source: String| Some(Cell::Value(v, source));
        match rule {
            Rule::Constant(v) => value(*v, "constant".into()),
            Rule::Age => {
                let Some(text) = &p.birth_date else {
                    return Some(Cell::Missing(SkipReason::NoBirthDate {
                        column: col.name.clone(),
                    }));
                };
                let Some(birth) = Date::parse(text) else {
                    self.error(&p.tag, "birthDate", FieldProblem::Date(text.clone()));
                    return None;
                };
                if birth.partial {
                    self.report.partial_birth_dates += 1;
                }
                let age = birth.years_until(&self.mapping.reference_date);
                if age < 0 {
                    return Some(Cell::Skip(SkipReason::BornAfter));
                }
                let v = self.encode(col, &p.tag, "birthDate", &age.to_string())?;
                value(v, format!("{}.birthDate", p.tag.label))
            }
            Rule::Gender(values) => {
                let Some(gender) = &p.gender else {
                    return Some(Cell::Missing(SkipReason::NoGender {
                        column: col.name.clone(),
                    }));
                };
                let cell = match values {
                    None => gender.clone(),
                    Some(map) => match map.get(gender) {
                        Some(cell) => cell.clone(),
                        None => {
                            let problem = FieldProblem::Gender {
                                value: gender.clone(),
                                column: col.name.clone(),
                                known: map.keys().cloned().collect::<Vec<_>>().join(", "),
                            };
                            self.error(&p.tag, "gender", problem);
                            return None;
                        }
                    },
                };
                if cell.trim().is_empty() {
                    return Some(Cell::Missing(SkipReason::NoGender {
                        column: col.name.clone(),
                    }));
                }
                let v = self.encode(col, &p.tag, "gender", &cell)?;
                value(v, format!("{}.gender", p.tag.label))
            }
            Rule::Condition(rule) => self.diagnosis(col, rule),
            Rule::Observation(rule) => self.observation(col, rule),
            Rule::Consent(rule) => self.consent(rule),
        }
    }

    fn diagnosis(&mut self, col: &Column, rule: &ConditionRule) -> Option<Cell> {
        let inputs = self.inputs;
        // (code, onset, input order, label)
        let mut candidates: Vec<(u64, Option<Instant>, u32, &str)> = Vec::new();
        for &i in self.conditions {
            let c = &inputs.conditions[i as usize];
            if matches!(
                c.verification_status.as_deref(),
                Some("refuted" | "entered-in-error")
            ) {
                self.ignore("Condition refuted or entered in error");
                continue;
            }
            let status = c.clinical_status.as_deref().unwrap_or("active");
            if !rule.statuses.iter().any(|s| s == status) {
                self.ignore("Condition of a clinical status the mapping does not read");
                continue;
            }
            let onset = match &c.onset {
                Some((field, text)) => Some(self.instant(&c.tag, field, text)?),
                None => None,
            };
            if onset.is_some_and(|t| t >= self.reference_end()) {
                self.ignore("Condition after the reference date");
                continue;
            }
            let mut code = None;
            for (k, (system, value, _)) in c.codings.iter().enumerate() {
                let (Some(system), Some(value)) = (system, value) else {
                    continue;
                };
                if ICD10_SYSTEMS.contains(&system.as_str()) {
                    match icd10::encode(value) {
                        Ok(v) => code = Some(v),
                        Err(e) => {
                            self.error(&c.tag, format!("code.coding[{k}].code"), e.into());
                            return None;
                        }
                    }
                    break;
                }
            }
            if code.is_none() {
                code = c.codings.iter().find_map(|(system, value, _)| {
                    (system.as_deref() == Some(SNOMED))
                        .then(|| rule.snomed.get(value.as_deref()?))
                        .flatten()
                        .map(|(_, v)| *v)
                });
            }
            match code {
                Some(v) => candidates.push((v, onset, i, &c.tag.label)),
                None => {
                    let (system, value, display) = c.codings.first().cloned().unwrap_or_default();
                    let entry = self
                        .unmapped
                        .entry((system.unwrap_or_default(), value.unwrap_or_default()))
                        .or_insert_with(|| (display.unwrap_or_default(), 0));
                    entry.1 += 1;
                }
            }
        }
        let mut distinct: Vec<u64> = candidates.iter().map(|c| c.0).collect();
        distinct.sort_unstable();
        distinct.dedup();
        self.several = distinct.len() > 1;
        // Earliest priority entry, then earliest onset (undated last), smallest code, input.
        let rank = |code: u64| {
            rule.priority
                .iter()
                .position(|(_, (lo, hi))| *lo <= code && code <= *hi)
                .unwrap_or(rule.priority.len())
        };
        let best = candidates.iter().min_by_key(|(code, onset, order, _)| {
            (rank(*code), onset.is_none(), *onset, *code, *order)
        });
        match best {
            Some((code, .., label)) => Some(Cell::Value(*code, label.to_string())),
            None => Some(Cell::Missing(SkipReason::NoDiagnosis {
                column: col.name.clone(),
            })),
        }
    }

    fn observation(&mut self, col: &Column, rule: &ObservationRule) -> Option<Cell> {
        let inputs = self.inputs;
        // (effective, input order, cell, field, conversion note)
        let mut best: Option<(Instant, u32, String, &str, String)> = None;
        let mut failed = false;
        for &i in self.observations {
            let o = &inputs.observations[i as usize];
            if !o.values.iter().any(|q| rule.loinc.contains(&q.loinc)) {
                continue;
            }
            if o.status
                .as_deref()
                .is_some_and(|s| !OBSERVATION_STATUSES.contains(&s))
            {
                self.ignore("Observation not final, amended or corrected");
                continue;
            }
            for q in o.values.iter().filter(|q| rule.loinc.contains(&q.loinc)) {
                let Some((field, text)) = &o.date else {
                    self.error(&o.tag, "effective[x]", FieldProblem::NoDate);
                    failed = true;
                    continue;
                };
                let Some(t) = self.instant(&o.tag, field, text) else {
                    failed = true;
                    continue;
                };
                if t >= self.reference_end() {
                    self.ignore("Observation after the reference date");
                    continue;
                }
                if q.comparator.is_some() {
                    self.ignore("Observation value with a comparator (<, <=, >=, >)");
                    continue;
                }
                let Some(number) = &q.value else {
                    self.error(&o.tag, format!("{}.value", q.field), FieldProblem::NoValue);
                    failed = true;
                    continue;
                };
                let Some(unit) = &q.unit else {
                    self.error(&o.tag, q.field.clone(), FieldProblem::NoUnit);
                    failed = true;
                    continue;
                };
                let (cell, how) = match convert(number, unit, rule, col.scale()) {
                    Ok(converted) => converted,
                    Err(problem) => {
                        self.error(&o.tag, format!("{}.code", q.field), problem);
                        failed = true;
                        continue;
                    }
                };
                if best
                    .as_ref()
                    .is_none_or(|(bt, bi, ..)| (t, i) >= (*bt, *bi))
                {
                    best = Some((t, i, cell, &q.field, how));
                }
            }
        }
        if failed {
            return None;
        }
        let Some((_, i, cell, field, how)) = best else {
            return Some(Cell::Missing(SkipReason::NoObservation {
                column: col.name.clone(),
                loinc: rule.loinc.clone(),
            }));
        };
        let o = &inputs.observations[i as usize];
        let v = self.encode(col, &o.tag, &format!("{field}.value"), &cell)?;
        Some(Cell::Value(v, format!("{}.{field}{how}", o.tag.label)))
    }

    fn consent(&mut self, rule: &ConsentRule) -> Option<Cell> {
        let inputs = self.inputs;
        let reference = self.mapping.reference_date;
        let mut in_force: Vec<(Option<Instant>, u32, bool)> = Vec::new();
        for &i in self.consents {
            let k = &inputs.consents[i as usize];
            if k.status.as_deref() != Some("active") {
                self.ignore("Consent not active");
                continue;
            }
            let date = match &k.date_time {
                Some(text) => Some(self.instant(&k.tag, "dateTime", text)?),
                None => None,
            };
            let start = match &k.period_start {
                Some(text) => Some(self.instant(&k.tag, "provision.period.start", text)?),
                None => None,
            };
            let end = match &k.period_end {
                Some(text) => Some(self.instant(&k.tag, "provision.period.end", text)?),
                None => None,
            };
            let after = |t: Option<Instant>| t.is_some_and(|t| t >= reference.end());
            if after(date) || after(start) || end.is_some_and(|t| t < reference.start()) {
                self.ignore("Consent not in force on the reference date");
                continue;
            }
            let permit = match k.provision_type.as_deref() {
                None | Some("permit") => true,
                Some("deny") => false,
                Some(other) => {
                    let problem = FieldProblem::ProvisionType(other.to_owned());
                    self.error(&k.tag, "provision.type", problem);
                    return None;
                }
            };
            in_force.push((date, i, permit));
        }
        in_force.sort_by_key(|(date, i, _)| (date.is_some(), *date, *i));
        let mut mask = rule.default_mask;
        let mut sources = vec!["default".to_owned()];
        for (_, i, permit) in in_force {
            let k = &inputs.consents[i as usize];
            let mut used = false;
            for (bit, codings) in &rule.purposes {
                if k.codings.iter().any(|c| codings.contains(c)) {
                    used = true;
                    if permit {
                        mask |= 1 << bit;
                    } else {
                        mask &= !(1 << bit);
                    }
                }
            }
            if used {
                sources.push(k.tag.label.clone());
            } else {
                self.ignore("Consent with no coding of a mapped purpose");
            }
        }
        Some(Cell::Value(mask, sources.join(" + ")))
    }
}

/// A quantity in the column's unit, rounded to its scale, with a note on any conversion.
fn convert(
    number: &str,
    unit: &str,
    rule: &ObservationRule,
    scale: u32,
) -> Result<(String, String), FieldProblem> {
    let unit = units::canonical(unit);
    let not_a_number = || FieldProblem::Type {
        expected: "a finite number",
        found: "another value",
    };
    if unit == rule.unit {
        return units::round_decimal(number, scale)
            .map(|cell| (cell, String::new()))
            .ok_or_else(not_a_number);
    }
    let x: f64 = number.parse().map_err(|_| not_a_number())?;
    let converted = match rule.convert.get(unit) {
        Some(c) => Some(c.apply(x)),
        None => units::convert(x, unit, &rule.unit),
    };
    match converted {
        Some(y) => units::round_float(y, scale)
            .map(|cell| (cell, format!(" (converted from {unit})")))
            .ok_or_else(not_a_number),
        None => {
            let mut accepted: Vec<String> = vec![rule.unit.clone()];
            accepted.extend(rule.convert.keys().cloned());
            accepted.extend(
                units::convertible_to(&rule.unit)
                    .into_iter()
                    .filter(|u| *u != rule.unit)
                    .map(String::from),
            );
            Err(FieldProblem::Unit {
                unit: unit.to_owned(),
                target: rule.unit.clone(),
                accepted: accepted.join(", "),
            })
        }
    }
}
