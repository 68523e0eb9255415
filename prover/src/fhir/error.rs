//! Errors of the FHIR import: one enum for the mapping file, one for the resources, each
//! naming where the problem is (file, entry or line, resource, field).

use std::{fmt, path::PathBuf};

use crate::error::{Icd10Error, SchemaError};

/// Where a resource is: a file, and the bundle entry or NDJSON line in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The file.
    pub file: PathBuf,
    /// The position in it.
    pub pos: Pos,
}

/// A position in an input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    /// The whole file (a single resource).
    File,
    /// A bundle's `entry[i]` (0-based, as in FHIRPath).
    Entry(usize),
    /// An NDJSON line (1-based).
    Line(u64),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Pos::File => write!(f, "{}", self.file.display()),
            Pos::Entry(i) => write!(f, "{}: entry[{i}]", self.file.display()),
            Pos::Line(l) => write!(f, "{}:{l}", self.file.display()),
        }
    }
}

/// A mapping file that cannot be used with the schema. Nothing is imported.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file cannot be read.
    #[error("cannot read mapping {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a mapping (JSON syntax, an unknown key, a wrong type).
    #[error("cannot parse mapping {path}: {source}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// The schema the mapping is checked against is invalid.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// `reference_date` is not a full FHIR date.
    #[error("{path}: reference_date `{value}` is not a full date (YYYY-MM-DD)")]
    ReferenceDate {
        /// File path.
        path: PathBuf,
        /// The value.
        value: String,
    },
    /// The mapping names a column the schema does not have.
    #[error("{path}: column `{column}` is not in schema `{schema}`")]
    UnknownColumn {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Schema name.
        schema: String,
    },
    /// A schema column has no mapping.
    #[error("{path}: column `{column}` of schema `{schema}` has no mapping (every column needs a `source`; `constant` fills a column FHIR does not have)")]
    Unmapped {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Schema name.
        schema: String,
    },
    /// A source cannot fill a column of this kind.
    #[error("{path}: column `{column}`: source `{source_name}` needs {needs}")]
    Kind {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// The mapping's source.
        source_name: &'static str,
        /// The column kinds it fills.
        needs: &'static str,
    },
    /// A value the mapping gives for a column (a constant, a gender's value, a default) does
    /// not encode in it.
    #[error("{path}: column `{column}`: {what} `{value}`: {message}")]
    Value {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Which value (`value`, `values.female`, ...).
        what: String,
        /// The value.
        value: String,
        /// Why it does not encode.
        message: String,
    },
    /// A purpose name that is not one of the consent column's.
    #[error("{path}: column `{column}`: `{purpose}` is not a consent purpose [{purposes}]")]
    Purpose {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// The name.
        purpose: String,
        /// The column's purposes, comma-separated.
        purposes: String,
    },
    /// A consent coding that is not `system|code`.
    #[error("{path}: column `{column}`: purpose `{purpose}`: `{coding}` is not `system|code`")]
    Coding {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Purpose name.
        purpose: String,
        /// The coding.
        coding: String,
    },
    /// A malformed ICD-10 code or prefix (a priority entry or a SNOMED CT target).
    #[error("{path}: column `{column}`: {what}: {source}")]
    Icd10 {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Which entry.
        what: String,
        /// Cause.
        #[source]
        source: Box<Icd10Error>,
    },
    /// A SNOMED CT code that is not a concept id (6 to 18 digits).
    #[error("{path}: column `{column}`: `{code}` is not a SNOMED CT concept id (6 to 18 digits)")]
    Snomed {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// The code.
        code: String,
    },
    /// An observation column without LOINC codes.
    #[error("{path}: column `{column}`: `loinc` lists no code")]
    NoLoinc {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
    },
    /// A conversion that is not a finite affine map, or converts the target unit itself.
    #[error("{path}: column `{column}`: conversion from `{unit}`: {why}")]
    Conversion {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// The unit converted from.
        unit: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A Condition status the rule does not know.
    #[error("{path}: column `{column}`: `{status}` is not a Condition clinicalStatus [{known}]")]
    Status {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// The status.
        status: String,
        /// The known statuses.
        known: &'static str,
    },
}

/// A problem with one field of one resource.
#[derive(Debug, thiserror::Error)]
pub enum FieldProblem {
    /// The field has the wrong JSON type.
    #[error("expected {expected}, found {found}")]
    Type {
        /// What FHIR has there.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// Not a FHIR `date`.
    #[error("`{0}` is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")]
    Date(String),
    /// Not a FHIR `dateTime`.
    #[error("`{0}` is not a FHIR dateTime")]
    DateTime(String),
    /// A malformed ICD-10-CM code.
    #[error(transparent)]
    Icd10(#[from] Icd10Error),
    /// The quantity has no unit.
    #[error("no unit (neither `code` nor `unit`)")]
    NoUnit,
    /// The quantity has no numeric value.
    #[error("no `value`")]
    NoValue,
    /// A unit the mapping neither expects nor converts.
    #[error("unit `{unit}` is not the column's `{target}`, and neither the mapping's `convert` nor the built-in UCUM conversions turn it into `{target}` (accepted: {accepted})")]
    Unit {
        /// The unit found (UCUM code, after aliases).
        unit: String,
        /// The unit the column is in.
        target: String,
        /// The units accepted, comma-separated.
        accepted: String,
    },
    /// A gender the mapping's `values` does not list.
    #[error("`{value}` is not in the mapping's `values` for column `{column}` [{known}]")]
    Gender {
        /// The gender code.
        value: String,
        /// Column name.
        column: String,
        /// The mapped codes, comma-separated.
        known: String,
    },
    /// The value does not encode in its column (outside the width, below `min`, ...).
    #[error("column `{column}`: {message}")]
    Column {
        /// Column name.
        column: String,
        /// Why ([`crate::schema::Column::encode`]'s message).
        message: String,
    },
    /// An observation without any date: the latest value cannot be told.
    #[error("no effectiveDateTime, effectiveInstant, effectivePeriod.start or issued: the latest value cannot be told")]
    NoDate,
    /// A consent provision that neither permits nor denies.
    #[error("`{0}` is neither `permit` nor `deny`")]
    ProvisionType(String),
}

/// Why a FHIR import failed. Nothing is imported when any is reported.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// A file or directory cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A directory holds no `.json` or `.ndjson` file.
    #[error("{path}: no .json or .ndjson file in this directory")]
    NoInput {
        /// Directory.
        path: PathBuf,
    },
    /// A file (or an NDJSON line) is not JSON.
    #[error("{}{}: not JSON: {source}", .path.display(), .line.map(|l| format!(":{l}")).unwrap_or_default())]
    Json {
        /// File path.
        path: PathBuf,
        /// NDJSON line.
        line: Option<u64>,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A bundle of a type whose entries are not resources to import (history, responses,
    /// messages).
    #[error("{path}: a Bundle of type `{bundle_type}`; bundles of type collection, transaction, batch, searchset or document are read")]
    BundleType {
        /// File path.
        path: PathBuf,
        /// `Bundle.type`.
        bundle_type: String,
    },
    /// A JSON object without `resourceType`.
    #[error("{place}: not a FHIR resource (no `resourceType`)")]
    NoResourceType {
        /// Where.
        place: Place,
    },
    /// A Patient without `id`: nothing can refer to it.
    #[error("{place}: Patient: no `id`, so no resource can refer to it")]
    NoPatientId {
        /// Where.
        place: Place,
    },
    /// Two Patient resources with one id.
    #[error("{second}: Patient/{id}: a second Patient with this id (the first is at {first})")]
    DuplicatePatient {
        /// The id.
        id: String,
        /// The first.
        first: Place,
        /// The second.
        second: Place,
    },
    /// A field of a resource is unusable.
    #[error("{place}: {resource}: {field}: {problem}")]
    Field {
        /// Where.
        place: Place,
        /// `Type/id`.
        resource: String,
        /// The field, FHIRPath-like (`valueQuantity.code`, `component[1].valueQuantity`).
        field: String,
        /// What is wrong.
        #[source]
        problem: Box<FieldProblem>,
    },
    /// The import stopped listing errors.
    #[error("more errors not shown (stopped after {shown})")]
    TooManyErrors {
        /// Errors reported before this one.
        shown: usize,
    },
}
