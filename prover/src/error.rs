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
    #[error(
        "{path}:1: column `{column}`: field {field} is not in schema `{schema}` (pass \
         --ignore-extra to import without the columns the schema does not name)"
    )]
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
    /// A credential for a record whose patient gave no identity commitment.
    #[error(
        "record {index} has no patient identity: the patient makes one (`zkcohort patient \
         identity`) and gives you its commitment, which you add (`zkcohort dataset add-identity`) \
         before committing the dataset; without it nobody can enrol that record"
    )]
    NoIdentity {
        /// Record index.
        index: usize,
    },
    /// Replacing the records of a dataset whose patients gave identity commitments.
    #[error(
        "dataset {path} holds patients' identity commitments (identities.json), which name \
         records by their row: new records would hand a patient's identity to another record; \
         nothing was changed. Pass --force to replace the records (identities.json is then moved \
         to {path}/history/ with the records it was made for; add the identities again)"
    )]
    HasIdentities {
        /// Directory.
        path: PathBuf,
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
    /// A published spec document is not JSON of a spec.
    #[error("the spec document is not a spec: {0}")]
    Document(#[source] serde_json::Error),
    /// A published spec document parses, but is not the canonical JSON of what it parses to,
    /// so its hash is not the hash of that spec.
    #[error("the spec document is not in canonical form (compact JSON, fields in spec order)")]
    NotCanonical,
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
    /// The fold circuit's params, records or query do not fit
    /// ([`crate::circuit::fast::fold::FoldParams::check`]).
    #[error("fold circuit: {0}")]
    Fold(#[from] crate::circuit::fast::commit::CommitError),
    /// A schema or query has no fold circuit form.
    #[error("fold circuit: {0}")]
    FoldSchema(#[from] crate::circuit::fast::record::FoldSchemaError),
    /// The dataset directory could not be read or written.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A query does not compile for the schema.
    #[error("query: {0}")]
    Query(#[from] QueryError),
    /// A proof's data columns do not open the dataset's recorded commitment (the records or
    /// the salt changed since `dataset commit`).
    #[error("the proof opens commitment {proven}, the dataset's is {recorded}: re-commit (`dataset commit --force`)")]
    CommitmentMismatch {
        /// The commitment recorded for the dataset.
        recorded: String,
        /// The one the proof's data columns hash to.
        proven: String,
    },
    /// An artifact is malformed or inconsistent.
    #[error("artifact: {0}")]
    Artifact(String),
    /// A query with `attest` for a circuit that releases numbers.
    #[error("an attestation query (`attest`) needs a fold circuit committed with `dataset commit --fold --attest`; this dataset's circuit releases numbers")]
    AttestationNeedsFold,
    /// A patient does not meet a trial's criteria: no proof can be made.
    #[error("not eligible: {0}")]
    Ineligible(String),
    /// The proof did not verify.
    #[error("proof rejected: {0}")]
    Rejected(String),
}

/// Why an artifact does not verify offline (`zkcohort verify`): one variant per check.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The artifact file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The artifact is not JSON.
    #[error("not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The JSON is neither kind of artifact.
    #[error("neither an aggregate proof artifact (`query`) nor an eligibility one (`trial_id`)")]
    UnknownKind,
    /// The JSON does not have the fields of its kind of artifact.
    #[error("not a valid {kind} artifact: {source}")]
    Malformed {
        /// `aggregate` or `eligibility`.
        kind: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A field holds something the artifact format never writes (an unknown field, or a value
    /// in another form): nothing unchecked may ride along with a proof.
    #[error(
        "`{field}` is not as the artifact format writes it (unknown field or non-canonical value)"
    )]
    NotCanonical {
        /// JSON path of the first difference.
        field: String,
    },
    /// An artifact format this build does not read.
    #[error("artifact version {found}; this build reads version {supported} (re-prove, or use a matching zkcohort)")]
    Version {
        /// The artifact's version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The circuit recorded in the artifact is of the other kind.
    #[error("a {kind} artifact recording a circuit of another kind")]
    WrongShape {
        /// `aggregate` or `eligibility`.
        kind: &'static str,
    },
    /// The record layout recorded is not the schema's at its capacity.
    #[error("the recorded record layout is not schema `{schema}`'s at capacity {capacity}")]
    Layout {
        /// Schema name.
        schema: String,
        /// Capacity.
        capacity: usize,
    },
    /// The verifier manifest has no verifier for the artifact's circuit.
    #[error("no verifier for circuit {circuit_id} in {manifest}: it is not a circuit whose verifier was generated (and deployed) from there; pass --manifest with the manifest written next to its verifier")]
    NotInManifest {
        /// The artifact's circuit.
        circuit_id: String,
        /// Where the manifest came from.
        manifest: String,
    },
    /// The artifact's schema is not the one the manifest's verifier was built for.
    #[error("the artifact's schema hashes to {artifact}, verifier {name} was built for schema {manifest}")]
    ManifestSchema {
        /// Contract name.
        name: String,
        /// Schema hash in the manifest.
        manifest: String,
        /// SHA-256 of the artifact's schema.
        artifact: String,
    },
    /// The manifest entry predates recorded verifying key hashes.
    #[error("verifier {name} in {manifest} records no vk_hash: regenerate it (`zkcohort setup --verifier-dir`)")]
    ManifestWithoutVkHash {
        /// Contract name.
        name: String,
        /// Where the manifest came from.
        manifest: String,
    },
    /// The params at hand are not the ones the manifest's verifier was built from.
    #[error("verifier {name} was built from params {manifest}; verifying here with params {here} derives another key (pass the same --params/--params-sha256)")]
    ManifestParams {
        /// Contract name.
        name: String,
        /// The manifest's params, described.
        manifest: String,
        /// The params used here, described.
        here: String,
    },
    /// The artifact's circuit id is not what its schema and shape plan.
    #[error("the artifact names circuit {artifact}, its schema and shape plan {planned}")]
    CircuitId {
        /// The artifact's circuit id.
        artifact: String,
        /// What the recorded schema and shape plan.
        planned: String,
    },
    /// The artifact's `vk_hash` is not the manifest's verifying key.
    #[error("the artifact says vk {artifact}, the deployed verifier {name} was generated from vk {manifest}")]
    VkHashVsManifest {
        /// Contract name.
        name: String,
        /// The manifest's vk hash.
        manifest: String,
        /// The artifact's vk hash.
        artifact: String,
    },
    /// The verifying key derived here is not the one the artifact and the manifest name.
    #[error("the verifying key derived here for {circuit_id} hashes to {derived}, the manifest and the artifact say {expected}")]
    VkHashVsDerived {
        /// The circuit.
        circuit_id: String,
        /// The hash both the artifact and the manifest record.
        expected: String,
        /// The derived key's hash.
        derived: String,
    },
    /// The recorded spec hash is not the hash of the recorded spec.
    #[error("`{field}` is {recorded}, but the spec in the artifact hashes to {computed}")]
    SpecHash {
        /// `query_hash` or `trial_hash`.
        field: &'static str,
        /// What the artifact records.
        recorded: String,
        /// SHA-256 of the spec's canonical JSON.
        computed: String,
    },
    /// The recorded spec does not compile for the circuit's schema.
    #[error("the spec does not fit the circuit's schema: {0}")]
    Spec(#[source] QueryError),
    /// The recorded public constants are not what the recorded spec compiles to.
    #[error("the public {what} are not what the spec in the artifact compiles to")]
    Constants {
        /// `query constants` or `trial criteria`.
        what: &'static str,
    },
    /// A hex field is not hex of the right form.
    #[error("`{field}` is not {expected}")]
    Hex {
        /// JSON path.
        field: String,
        /// What it should be.
        expected: &'static str,
    },
    /// The number of public inputs is not the circuit's.
    #[error("{found} public inputs, circuit {circuit_id} has {expected}")]
    InstanceCount {
        /// The circuit.
        circuit_id: String,
        /// The circuit's count.
        expected: usize,
        /// The artifact's count.
        found: usize,
    },
    /// A decoded public value disagrees with the instances.
    #[error("`{field}` disagrees with the instances")]
    Public {
        /// The first decoded field that differs.
        field: String,
    },
    /// `calldata` is not the instances followed by the proof.
    #[error("`calldata` is not the instances followed by the proof")]
    Calldata,
    /// halo2's verifier rejects the proof with the derived verifying key.
    #[error("the proof does not verify: {0}")]
    Rejected(#[source] ProofError),
    /// A fold artifact's schema or query has no fold circuit form.
    #[error("fold circuit: {0}")]
    FoldSchema(#[source] crate::circuit::fast::record::FoldSchemaError),
    /// A fold artifact's query does not fit its circuit (e.g. strata over a nullable column
    /// without asking its known bit).
    #[error("fold query: {0}")]
    FoldQuery(#[source] crate::circuit::fast::commit::CommitError),
    /// The manifest's verifier for the circuit reads another number of data columns.
    #[error("the manifest's {name} reads {manifest} data columns, the artifact's circuit has {artifact}")]
    ManifestDataColumns {
        /// Contract name in the manifest.
        name: String,
        /// Its data columns.
        manifest: usize,
        /// The artifact's.
        artifact: usize,
    },
    /// A fold proof's data columns hash to another commitment than the artifact says.
    #[error("the proof's data columns hash to {proven}, the artifact says {recorded}")]
    DataCommitment {
        /// The artifact's `public.commitment`.
        recorded: String,
        /// The hash of the proof's first `64·W` bytes.
        proven: String,
    },
    /// Params or key derivation failed.
    #[error(transparent)]
    Keys(ProofError),
}
