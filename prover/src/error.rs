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
    /// The CSV header does not match the schema.
    #[error("{path}: header: {message}")]
    Header {
        /// File path.
        path: PathBuf,
        /// What is wrong.
        message: String,
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
    /// A row is structurally bad (wrong number of fields, unreadable).
    #[error("{path}:{line}: {message}")]
    Row {
        /// File path.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
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
