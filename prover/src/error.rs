//! Typed errors, one enum per concern.

use std::path::PathBuf;

/// Errors reading or validating a schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema file could not be read.
    #[error("cannot read schema {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The schema file is not valid JSON for a schema.
    #[error("cannot parse schema {path}: {source}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// The schema is well-formed JSON but not a usable schema.
    #[error("invalid schema: {0}")]
    Invalid(String),
}

/// Errors importing, generating, storing or loading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A schema problem.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The CSV file is empty: not even a header row.
    #[error("{path}:1: the file is empty; a header row and at least one record are needed")]
    EmptyFile {
        /// File path.
        path: PathBuf,
    },
    /// The CSV file (or a dataset) has a header but no records: it would commit as 0 records.
    #[error("{path}:2: no records after the header; a dataset needs at least one record")]
    NoRecords {
        /// File path.
        path: PathBuf,
    },
    /// The header row cannot be read (not UTF-8, bad quoting).
    #[error("{path}:1: header: {source}")]
    HeaderUnreadable {
        /// File path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: csv::Error,
    },
    /// The header names a column twice; neither copy is used.
    #[error(
        "{path}:1: column `{column}`: named twice in the header (fields {first} and {second})"
    )]
    DuplicateHeader {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// 1-based field of the first copy.
        first: usize,
        /// 1-based field of the second copy.
        second: usize,
    },
    /// A schema column is not in the header.
    #[error("{path}:1: column `{column}`: missing from the header (schema `{schema}` needs it)")]
    MissingColumn {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Schema name.
        schema: String,
    },
    /// The header has a column the schema does not know.
    #[error("{path}:1: column `{column}`: field {field} is not in schema `{schema}`")]
    UnknownColumn {
        /// File path.
        path: PathBuf,
        /// Header name.
        column: String,
        /// 1-based field.
        field: usize,
        /// Schema name.
        schema: String,
    },
    /// One cell of the CSV is bad. Lines count from 1 and include the header.
    #[error("{path}:{line}: column `{column}`: {message}")]
    Cell {
        /// File path.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A row has a different number of fields than the header.
    #[error("{path}:{line}: {found} fields, the header has {expected}")]
    FieldCount {
        /// File path.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Fields in the row.
        found: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// A row cannot be read (not UTF-8, bad quoting).
    #[error("{path}:{line}: {source}")]
    RowUnreadable {
        /// File path.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Cause.
        #[source]
        source: csv::Error,
    },
    /// The import stopped listing errors.
    #[error("{path}: more errors not shown (stopped after {shown})")]
    TooManyErrors {
        /// File path.
        path: PathBuf,
        /// Errors reported before this one.
        shown: usize,
    },
    /// The directory holds no commitment yet.
    #[error("dataset {path} is not committed: run `zkcohort dataset commit --dataset {path}`")]
    NotCommitted {
        /// Directory.
        path: PathBuf,
    },
    /// Replacing the dataset would re-salt a committed dataset.
    #[error(
        "dataset {path} is committed (salt.json, commitment.json): replacing or re-committing it \
         makes a new salt, after which its commitment can never be opened again and the patient \
         credentials issued from it stop working; nothing was changed. Pass --force to do it \
         anyway (the old salt, commitment and records are moved to {path}/history/)"
    )]
    Committed {
        /// Directory.
        path: PathBuf,
    },
    /// Replacing the dataset would re-salt a dataset whose commitment is registered on-chain.
    #[error(
        "dataset {path} is REGISTERED on-chain{}: replacing or re-committing it makes a new salt, \
         which orphans the on-chain commitment (every claim for it then fails with \
         CommitmentMismatch, and it can never be opened again) and every patient credential \
         issued from it; nothing was changed. Pass --force only to start a new dataset that must \
         be registered again (the old salt, commitment, records and registration.json are moved \
         to {path}/history/)",
        registered_as(.dataset_id)
    )]
    Registered {
        /// Directory.
        path: PathBuf,
        /// On-chain dataset id, from `registration.json`.
        dataset_id: Option<u64>,
    },
    /// `commit` at another capacity than the existing commitment's.
    #[error(
        "dataset {path} is already committed for capacity {committed}; a commitment for capacity \
         {requested} needs a new salt, which orphans the existing commitment; nothing was changed. \
         Pass --force to re-commit (the old salt and commitment are moved to {path}/history/)"
    )]
    CapacityChanged {
        /// Directory.
        path: PathBuf,
        /// Capacity of the existing commitment.
        committed: usize,
        /// Requested capacity (rounded up to whole leaves).
        requested: usize,
    },
    /// The records or salt no longer open the stored commitment.
    #[error(
        "dataset {path}: records.csv or salt.json changed since the commitment was made, so the \
         commitment no longer opens: restore them (earlier versions are in {path}/history/ if a \
         command replaced them), or make a new commitment with `dataset commit --force` (the old \
         salt and commitment are then moved to {path}/history/)"
    )]
    Stale {
        /// Directory.
        path: PathBuf,
    },
    /// A stored dataset directory is incomplete or corrupt.
    #[error("dataset {path}: {message}")]
    Corrupt {
        /// Directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// More records than the requested capacity.
    #[error("{records} records do not fit a circuit capacity of {capacity}")]
    Capacity {
        /// Records in the dataset.
        records: usize,
        /// Circuit capacity.
        capacity: usize,
    },
}

fn registered_as(id: &Option<u64>) -> String {
    id.map(|id| format!(" as dataset #{id}"))
        .unwrap_or_default()
}

/// A malformed ICD-10(-CM) code or code prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Icd10Error {
    /// Too short or too long.
    #[error(
        "`{code}` is not an ICD-10 {}: {len} characters without the dot, {}",
        if *.prefix { "prefix" } else { "code" },
        if *.prefix { "a prefix has 1 to 7" } else { "a code has 3 to 7 (a letter, two digits, then up to 4 more)" }
    )]
    Length {
        /// The input.
        code: String,
        /// Characters, dot excluded.
        len: usize,
        /// Whether a prefix (1+ characters) was expected.
        prefix: bool,
    },
    /// A character outside its position's alphabet.
    #[error(
        "`{code}`: character {position} (`{found}`) must be {expected}{}",
        .suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
    )]
    Character {
        /// The input.
        code: String,
        /// 1-based position, dot excluded.
        position: usize,
        /// The offending character.
        found: char,
        /// What the position allows.
        expected: &'static str,
        /// A nearby valid code (a letter O or I typed for a digit).
        suggestion: Option<String>,
    },
    /// A dot anywhere but right after the three-character category, or a trailing dot.
    #[error("`{code}`: a dot may only separate the 3-character category from 1 to 4 more characters (as in `E11.65`)")]
    Dot {
        /// The input.
        code: String,
    },
}

/// Errors writing a Solidity verifier and its manifests.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] DatasetError),
    /// A manifest exists but is not a JSON object; it is left alone.
    #[error("{path}: not a JSON object of contract names ({source}); fix or remove it, nothing was written")]
    Manifest {
        /// File path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The contract name is taken by another circuit (another schema of the same capacity or
    /// batch, or another `k`).
    #[error(
        "{path} is the verifier of circuit {existing}, not of {new} (same contract name `{name}`, \
         another schema or circuit size); nothing was written. Pass --verifier-dir with another \
         directory for {new}, or --force to replace it (which breaks whatever deploys or tests \
         {existing})"
    )]
    Clash {
        /// The existing verifier file (or manifest).
        path: PathBuf,
        /// Contract name.
        name: String,
        /// Circuit id the directory has for `name`.
        existing: String,
        /// Circuit id being written.
        new: String,
    },
}

/// Errors reading or checking a query against a schema.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query file could not be read.
    #[error("cannot read query {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The query is not valid JSON for a query.
    #[error("cannot parse query {path}: {source}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// The query does not fit the schema.
    #[error("query does not fit schema `{schema}`: {message}")]
    Invalid {
        /// Schema name.
        schema: String,
        /// What is wrong.
        message: String,
    },
}

/// Errors from parameter setup, key generation, proving and verification.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A params file does not hash to what was expected.
    #[error("params file {path} has SHA-256 {actual}, expected {expected}")]
    ParamsHash {
        /// File path.
        path: PathBuf,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
    /// Params are for a smaller circuit than needed.
    #[error("params support k ≤ {have}, the circuit needs k = {need}")]
    ParamsTooSmall {
        /// k of the params.
        have: u32,
        /// k the circuit needs.
        need: u32,
    },
    /// The halo2 backend failed.
    #[error("halo2: {0}")]
    Halo2(String),
    /// An artifact is malformed or inconsistent.
    #[error("artifact: {0}")]
    Artifact(String),
    /// A patient does not meet a trial's criteria: no proof can be made.
    #[error("not eligible: {0}")]
    Ineligible(String),
    /// The proof did not verify.
    #[error("proof rejected: {0}")]
    Rejected(String),
}
