//! Datasets: records typed by a schema, CSV import/export, a synthetic cohort generator, and
//! the custodian's local dataset directory.
//!
//! A dataset directory holds the custodian's secrets next to its public commitment:
//!
//! | file | content | secret? |
//! |---|---|---|
//! | `schema.json` | the schema | public |
//! | `records.csv` | the records, normalised | **secret** |
//! | `salt.json` | the commitment salt | **secret** |
//! | `identities.json` | patients' identity commitments by record (`dataset add-identity`) | custodian's |
//! | `commitment.json` | commitment, membership root, capacity, record count, schema hash | public |
//! | `fold.json` | the commit-and-prove commitment, its circuit and query budget (`dataset commit --fold`) | public |
//! | `registration.json` | on-chain dataset id (written by `custodian register`) | public |
//! | `history/NNN-<UTC time>/` | earlier salts, commitments, records, registrations | **secret** |
//!
//! Nothing here is lost by a command: a committed (or registered) dataset is never replaced,
//! re-committed or re-salted unless the caller forces it ([`Overwrite::Force`], the CLI's
//! `--force`), and then the previous files are moved into `history/` first (a re-salted
//! commitment can only ever be opened with its own salt and records). Every file is written
//! atomically ([`write_atomic`]).
//!
//! Patient credentials ([`crate::credential`]) are derived from `salt.json`, the records and
//! `identities.json` on demand; nothing more is stored. A patient's identity commitment (the
//! patient keeps the secret: [`crate::membership::Identity`]) must be in `identities.json`
//! when the dataset is committed, or the patient's record cannot be enrolled in trials.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::{
    commitment::{self, fr_from_hex, fr_to_hex, RecordLayout},
    error::DatasetError,
    icd10,
    membership::MemberTree,
    schema::Schema,
};

/// Records under a schema; each record holds one encoded value per column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// The schema.
    pub schema: Schema,
    /// Encoded records, in file order.
    pub records: Vec<Vec<u64>>,
}

/// How many bad rows an import reports before it stops listing them.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// Options of a CSV import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// Skip header columns the schema does not name (listed in [`CsvImport::ignored`]) instead
    /// of refusing the file.
    pub ignore_extra: bool,
}

/// A CSV file imported with [`Dataset::import_csv_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvImport {
    /// The records.
    pub dataset: Dataset,
    /// Header columns that were not imported (with [`CsvOptions::ignore_extra`]).
    pub ignored: Vec<IgnoredColumn>,
}

/// A CSV header column the schema does not name, skipped on request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IgnoredColumn {
    /// Header name.
    pub name: String,
    /// 1-based field.
    pub field: usize,
}

impl Dataset {
    /// Imports a CSV file with a header row; columns are matched to the schema by name (extra,
    /// missing and repeated header names are errors, order is free). Every bad cell is reported
    /// once, with its line and column; an empty or header-only file is refused. On any error
    /// nothing is returned.
    pub fn import_csv(schema: &Schema, path: &Path) -> Result<Self, Vec<DatasetError>> {
        Self::import_csv_with(schema, path, CsvOptions::default()).map(|i| i.dataset)
    }

    /// [`Dataset::import_csv`] with options: with [`CsvOptions::ignore_extra`], header
    /// columns the schema does not name are skipped and listed instead of refused (a repeated
    /// name among them is harmless, since neither copy is read).
    pub fn import_csv_with(
        schema: &Schema,
        path: &Path,
        options: CsvOptions,
    ) -> Result<CsvImport, Vec<DatasetError>> {
        let io = |source| {
            vec![DatasetError::Io {
                path: path.to_owned(),
                source,
            }]
        };
        let file = fs::File::open(path).map_err(io)?;
        Self::read_csv_with(schema, path, file, options)
    }

    /// [`Dataset::import_csv`] over any reader; `path` names the source in errors.
    pub fn read_csv(
        schema: &Schema,
        path: &Path,
        reader: impl std::io::Read,
    ) -> Result<Self, Vec<DatasetError>> {
        Self::read_csv_with(schema, path, reader, CsvOptions::default()).map(|i| i.dataset)
    }

    /// [`Dataset::import_csv_with`] over any reader; `path` names the source in errors.
    pub fn read_csv_with(
        schema: &Schema,
        path: &Path,
        reader: impl std::io::Read,
        options: CsvOptions,
    ) -> Result<CsvImport, Vec<DatasetError>> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        let headers = rdr
            .headers()
            .map_err(|source| {
                vec![DatasetError::HeaderUnreadable {
                    path: path.to_owned(),
                    source,
                }]
            })?
            .clone();
        if headers.iter().all(|h| h.trim().is_empty()) {
            return Err(vec![DatasetError::EmptyFile {
                path: path.to_owned(),
            }]);
        }
        let (position, ignored) = match_header(schema, path, &headers, options)?;

        let mut records = Vec::new();
        let mut errors = Vec::new();
        for row in rdr.records() {
            if errors.len() >= MAX_REPORTED_ERRORS {
                errors.push(DatasetError::TooManyErrors {
                    path: path.to_owned(),
                    shown: errors.len(),
                });
                break;
            }
            let row = match row {
                Ok(row) => row,
                Err(source) => {
                    let line = source.position().map_or(0, |p| p.line());
                    errors.push(DatasetError::RowUnreadable {
                        path: path.to_owned(),
                        line,
                        source,
                    });
                    continue;
                }
            };
            let line = row.position().map_or(0, |p| p.line());
            if row.len() != headers.len() {
                errors.push(DatasetError::FieldCount {
                    path: path.to_owned(),
                    line,
                    found: row.len(),
                    expected: headers.len(),
                });
                continue;
            }
            let mut record = Vec::with_capacity(schema.columns.len());
            for (col, &i) in schema.columns.iter().zip(&position) {
                match col.encode(&row[i]) {
                    Ok(v) => record.push(v),
                    Err(message) => errors.push(DatasetError::Cell {
                        path: path.to_owned(),
                        line,
                        column: col.name.clone(),
                        message,
                    }),
                }
            }
            if record.len() == schema.columns.len() {
                records.push(record);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if records.is_empty() {
            return Err(vec![DatasetError::NoRecords {
                path: path.to_owned(),
            }]);
        }
        Ok(CsvImport {
            dataset: Dataset {
                schema: schema.clone(),
                records,
            },
            ignored,
        })
    }

    /// The records as CSV (header row, natural values).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(self.schema.columns.iter().map(|c| c.name.as_str()))
            .expect("in memory");
        for r in &self.records {
            w.write_record(self.schema.columns.iter().zip(r).map(|(c, v)| c.decode(*v)))
                .expect("in memory");
        }
        String::from_utf8(w.into_inner().expect("in memory")).expect("utf-8")
    }

    /// A realistic synthetic cohort for [`Schema::clinical_default`]: ages 18–90, ~12% type 2
    /// diabetes (E11.x) with raised HbA1c and BMI, hypertension, asthma and other common
    /// codes, blood pressure rising with age, and consent rates between 30% and 85%.
    pub fn synthesize(records: usize, seed: u64, sites: u64) -> Self {
        let schema = Schema::clinical_default();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let normal = |rng: &mut ChaCha20Rng, mean: f64, sd: f64| {
            // Box–Muller.
            let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
            mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        const T2D: &[&str] = &["E11.9", "E11.65", "E11.21", "E11.40", "E11.22"];
        const OTHER: &[&str] = &[
            "I10", "J45.909", "E78.5", "M54.5", "F32.9", "K21.9", "Z00.00", "E10.9", "I25.10",
        ];
        let mut out = Vec::with_capacity(records);
        for _ in 0..records {
            let age = rng.gen_range(18..=90u64);
            let sex = if rng.gen_bool(0.01) {
                2
            } else {
                rng.gen_range(0..2u64)
            };
            let t2d = rng.gen_bool(0.04 + 0.003 * (age as f64 - 18.0));
            let dx = if t2d {
                T2D[rng.gen_range(0..T2D.len())]
            } else {
                OTHER[rng.gen_range(0..OTHER.len())]
            };
            let hba1c = if t2d {
                normal(&mut rng, 7.8, 1.3)
            } else {
                normal(&mut rng, 5.4, 0.4)
            };
            let sbp = normal(&mut rng, 112.0 + 0.35 * age as f64, 14.0);
            let bmi = normal(&mut rng, if t2d { 31.0 } else { 27.0 }, 5.0);
            let mut consent = 0u64;
            for (bit, p) in [0.85, 0.6, 0.5, 0.3].into_iter().enumerate() {
                if rng.gen_bool(p) {
                    consent |= 1 << bit;
                }
            }
            let clamp = |x: f64, lo: f64, hi: f64| x.clamp(lo, hi).round() as u64;
            out.push(vec![
                age,
                sex,
                icd10::encode(dx).expect("valid code"),
                clamp(hba1c * 10.0, 40.0, 160.0),
                clamp(sbp, 85.0, 220.0),
                clamp(bmi * 10.0, 160.0, 600.0),
                consent,
                rng.gen_range(0..sites.clamp(1, 64)),
            ]);
        }
        Dataset {
            schema,
            records: out,
        }
    }
}

/// For each schema column, its field in the CSV header, and the header columns skipped with
/// [`CsvOptions::ignore_extra`]. Reports every repeated, unknown (unless ignored) and missing
/// header name (a repeated name is refused rather than resolved to either copy).
fn match_header(
    schema: &Schema,
    path: &Path,
    headers: &csv::StringRecord,
    options: CsvOptions,
) -> Result<(Vec<usize>, Vec<IgnoredColumn>), Vec<DatasetError>> {
    let mut errors = Vec::new();
    let mut ignored = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim();
        if options.ignore_extra && schema.column_index(name).is_none() {
            ignored.push(IgnoredColumn {
                name: name.to_owned(),
                field: i + 1,
            });
            continue;
        }
        if let Some(&first) = seen.get(name) {
            errors.push(DatasetError::DuplicateHeader {
                path: path.to_owned(),
                column: name.to_owned(),
                first: first + 1,
                second: i + 1,
            });
            continue;
        }
        seen.insert(name, i);
        if schema.column_index(name).is_none() {
            errors.push(DatasetError::UnknownColumn {
                path: path.to_owned(),
                column: name.to_owned(),
                field: i + 1,
                schema: schema.name.clone(),
            });
        }
    }
    let mut position = Vec::with_capacity(schema.columns.len());
    for col in &schema.columns {
        match seen.get(col.name.as_str()) {
            Some(&i) => position.push(i),
            None => errors.push(DatasetError::MissingColumn {
                path: path.to_owned(),
                column: col.name.clone(),
                schema: schema.name.clone(),
            }),
        }
    }
    if errors.is_empty() {
        Ok((position, ignored))
    } else {
        Err(errors)
    }
}

/// Public facts about a committed dataset (`commitment.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentInfo {
    /// `Poseidon(salt, merkle_root)`, hex.
    pub commitment: String,
    /// Root of the per-patient membership tree ([`crate::membership`]), hex.
    pub member_root: String,
    /// SHA-256 of the schema, hex.
    pub schema_hash: String,
    /// Records in the dataset.
    pub record_count: usize,
    /// Circuit capacity the commitment was made for.
    pub capacity: usize,
}

/// A dataset's commit-and-prove commitment (`fold.json`, public): the data columns of the fold
/// circuit `circuit_id` laid out from the records and `salt.json`, identical in every proof of
/// that circuit, whatever the query (`crate::proof::fold::commit` makes it). What
/// `custodian register` registers when the file exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldCommitmentInfo {
    /// The fold circuit (`fold3-…`).
    pub circuit_id: String,
    /// What fixes it.
    pub spec: crate::keys::FoldSpec,
    /// What the registry holds and a market compares: keccak256 of the data columns'
    /// commitments, mod r, hex.
    pub commitment: String,
    /// The data columns' KZG commitments as every proof starts with them (`64·W` bytes), hex.
    pub data_commitment: String,
    /// Records in the dataset.
    pub record_count: usize,
    /// Proofs this commitment may give before the dataset must be re-committed under a fresh
    /// salt (`FoldParams::query_budget`).
    pub query_budget: usize,
    /// The params the commitment was made with (another `[s]` commits elsewhere).
    pub params: crate::keys::ParamsFingerprint,
}

/// What `custodian register` records in `registration.json` (only `dataset_id` is required:
/// files written before the other fields existed still read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// On-chain dataset id.
    pub dataset_id: u64,
    /// Chain the dataset is registered on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The `DatasetRegistry` it is registered in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<alloy::primitives::Address>,
    /// Id of the aggregate circuit registered with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_id: Option<String>,
    /// The address that registered it (eligibility proofs name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrant: Option<alloy::primitives::Address>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentitiesFile {
    /// What the file is.
    about: String,
    /// Record index (0-based row of records.csv) → identity commitment, hex.
    identities: BTreeMap<usize, String>,
}

#[derive(Serialize, Deserialize)]
struct SaltFile {
    warning: String,
    salt: String,
}

/// A custodian's dataset directory (see the module docs for its files).
#[derive(Clone, Debug)]
pub struct DatasetDir {
    /// Directory path.
    pub path: PathBuf,
}

/// Everything loaded from a committed dataset directory.
#[derive(Clone, Debug)]
pub struct CommittedDataset {
    /// The records.
    pub dataset: Dataset,
    /// The commitment salt (secret).
    pub salt: Fr,
    /// The public commitment facts.
    pub info: CommitmentInfo,
    /// The packing layout for the committed capacity.
    pub layout: RecordLayout,
    /// Each record's patient identity commitment (0: the patient gave none).
    pub identities: Vec<Fr>,
}

/// Whether a command may replace a committed dataset (or a verifier of another circuit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse, and change nothing on disk.
    #[default]
    Refuse,
    /// Go ahead (`--force`); a dataset's replaced secrets are moved to its `history/`.
    Force,
}

/// What [`DatasetDir::write_dataset_with`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Schema and records written into a new or uncommitted directory.
    Written,
    /// The directory already held exactly this schema and these records: nothing written.
    Unchanged,
    /// A committed dataset was replaced (forced); its previous files are in `history`.
    Replaced {
        /// The `history/` subfolder holding the previous salt, commitment and records.
        history: PathBuf,
    },
}

/// What [`DatasetDir::commit_with`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A first commitment, with a fresh salt.
    Committed,
    /// The records were already committed (at the requested capacity): nothing written.
    AlreadyCommitted,
    /// A new commitment replaced the previous one (forced); the previous is in `history`.
    Replaced {
        /// The `history/` subfolder holding the previous salt, commitment and records.
        history: PathBuf,
    },
}

/// Files of a dataset directory that make it committed or registered.
const SECRETS: [&str; 4] = [
    "salt.json",
    "commitment.json",
    "fold.json",
    "registration.json",
];

impl DatasetDir {
    /// A dataset directory at `path` (not created until written).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DatasetDir { path: path.into() }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether the directory holds a commitment (or a salt).
    pub fn is_committed(&self) -> bool {
        self.file("salt.json").exists() || self.file("commitment.json").exists()
    }

    /// What `custodian register` recorded (`registration.json`), or `None` if the dataset was
    /// not registered from this directory.
    pub fn registration(&self) -> Result<Option<Registration>, DatasetError> {
        let path = self.file("registration.json");
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| DatasetError::Corrupt {
                        path,
                        message: format!("registration.json: {e}"),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DatasetError::Io { path, source }),
        }
    }

    /// Records a registration in `registration.json` (atomically).
    pub fn write_registration(&self, registration: &Registration) -> Result<(), DatasetError> {
        write_atomic(
            &self.file("registration.json"),
            &serde_json::to_vec_pretty(registration).expect("json"),
        )
    }

    /// Whether `custodian register` recorded the commitment on-chain (`registration.json`).
    pub fn is_registered(&self) -> bool {
        self.file("registration.json").exists()
    }

    /// [`DatasetDir::write_dataset_with`], refusing to replace a committed dataset.
    pub fn write_dataset(&self, dataset: &Dataset) -> Result<WriteOutcome, DatasetError> {
        self.write_dataset_with(dataset, Overwrite::Refuse)
    }

    /// Writes schema and records (atomically). A directory that already holds exactly this
    /// dataset is left alone. A committed or registered one is refused unless `overwrite` is
    /// [`Overwrite::Force`]; then its salt, commitment, registration and records are moved (or
    /// copied) into a new `history/` subfolder first, never deleted.
    pub fn write_dataset_with(
        &self,
        dataset: &Dataset,
        overwrite: Overwrite,
    ) -> Result<WriteOutcome, DatasetError> {
        if dataset.records.is_empty() {
            return Err(DatasetError::NoRecords {
                path: self.file("records.csv"),
            });
        }
        let schema = serde_json::to_string_pretty(&dataset.schema).expect("schema serialises");
        let csv = dataset.to_csv();
        let same =
            |name: &str, bytes: &[u8]| fs::read(self.file(name)).ok().as_deref() == Some(bytes);
        if same("schema.json", schema.as_bytes()) && same("records.csv", csv.as_bytes()) {
            return Ok(WriteOutcome::Unchanged);
        }
        // identities.json names records by row: new records would give a patient's identity
        // to someone else's record, so it goes into history/ with the records it was made for.
        let identities = self.file("identities.json");
        let history = match self.guard(overwrite)? {
            None if identities.exists() => match overwrite {
                Overwrite::Refuse => {
                    return Err(DatasetError::HasIdentities {
                        path: self.path.clone(),
                    })
                }
                Overwrite::Force => Some(self.archive()?),
            },
            h => h,
        };
        if identities.exists() {
            fs::remove_file(&identities).map_err(|source| DatasetError::Io {
                path: identities.clone(),
                source,
            })?;
        }
        fs::create_dir_all(&self.path).map_err(|source| DatasetError::Io {
            path: self.path.clone(),
            source,
        })?;
        write_atomic(&self.file("records.csv"), csv.as_bytes())?;
        write_atomic(&self.file("schema.json"), schema.as_bytes())?;
        Ok(match history {
            Some(history) => WriteOutcome::Replaced { history },
            None => WriteOutcome::Written,
        })
    }

    /// Refuses to touch a committed or registered directory unless forced; when forced,
    /// archives its secrets into `history/` and returns that folder.
    fn guard(&self, overwrite: Overwrite) -> Result<Option<PathBuf>, DatasetError> {
        if !self.is_committed() && !self.is_registered() {
            return Ok(None);
        }
        match overwrite {
            Overwrite::Refuse => Err(self.refusal()),
            Overwrite::Force => self.archive().map(Some),
        }
    }

    /// The error for replacing this committed (or registered) dataset without `--force`.
    fn refusal(&self) -> DatasetError {
        if self.is_registered() {
            let dataset_id = self.registration().ok().flatten().map(|r| r.dataset_id);
            DatasetError::Registered {
                path: self.path.clone(),
                dataset_id,
            }
        } else {
            DatasetError::Committed {
                path: self.path.clone(),
            }
        }
    }

    /// Moves salt, commitment and registration, and copies schema and records, into a new
    /// `history/NNN-<UTC time>/` folder. Nothing is deleted.
    fn archive(&self) -> Result<PathBuf, DatasetError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| DatasetError::Io { path, source }
        };
        let root = self.file("history");
        fs::create_dir_all(&root).map_err(io(&root))?;
        let stamp = utc_stamp(std::time::SystemTime::now());
        let mut n = fs::read_dir(&root).map_err(io(&root))?.count() + 1;
        let dir = loop {
            let dir = root.join(format!("{n:03}-{stamp}"));
            match fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(io(&dir)(e)),
            }
        };
        for name in ["schema.json", "records.csv", "identities.json"] {
            let from = self.file(name);
            if from.exists() {
                let bytes = fs::read(&from).map_err(io(&from))?;
                write_atomic(&dir.join(name), &bytes)?;
            }
        }
        for name in SECRETS {
            let from = self.file(name);
            if from.exists() {
                fs::rename(&from, dir.join(name)).map_err(io(&from))?;
            }
        }
        tracing::debug!(history = %dir.display(), "previous salt, commitment and records of {} kept", self.path.display());
        Ok(dir)
    }

    /// Loads schema and records.
    pub fn read_dataset(&self) -> Result<Dataset, DatasetError> {
        let schema = Schema::load(&self.file("schema.json"))?;
        Dataset::import_csv(&schema, &self.file("records.csv")).map_err(|mut errs| errs.remove(0))
    }

    /// Each of `records` records' identity commitment from `identities.json` (0 where the
    /// patient gave none; all 0 without the file).
    pub fn identities(&self, records: usize) -> Result<Vec<Fr>, DatasetError> {
        let path = self.file("identities.json");
        let mut out = vec![Fr::ZERO; records];
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => return Err(DatasetError::Io { path, source }),
        };
        let corrupt = |message: String| DatasetError::Corrupt {
            path: path.clone(),
            message,
        };
        let file: IdentitiesFile =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("identities.json: {e}")))?;
        for (index, hex) in file.identities {
            let id = fr_from_hex(&hex)
                .filter(|id| !bool::from(id.is_zero()))
                .ok_or_else(|| {
                    corrupt(format!(
                        "record {index}: `{hex}` is not an identity commitment"
                    ))
                })?;
            *out.get_mut(index).ok_or_else(|| {
                corrupt(format!(
                    "record {index} is not in records.csv ({records} records)"
                ))
            })? = id;
        }
        Ok(out)
    }

    /// Records patients' identity commitments (`(record index, commitment)`) in
    /// `identities.json` (atomically), replacing a record's earlier one. The membership tree
    /// covers them from the next commitment, so a committed or registered dataset is refused
    /// unless `overwrite` is [`Overwrite::Force`] (its commitment is then moved to `history/`
    /// first, and the dataset must be committed and registered again).
    pub fn add_identities(
        &self,
        identities: &[(usize, Fr)],
        overwrite: Overwrite,
    ) -> Result<Option<PathBuf>, DatasetError> {
        let records = self.read_dataset()?.records.len();
        let before = self.identities(records)?;
        let mut all = before.clone();
        for &(index, id) in identities {
            if index >= records {
                return Err(DatasetError::Corrupt {
                    path: self.file("identities.json"),
                    message: format!("record {index} is not in records.csv ({records} records)"),
                });
            }
            all[index] = id;
        }
        if all == before && self.file("identities.json").exists() {
            return Ok(None);
        }
        let history = self.guard(overwrite)?;
        let file = IdentitiesFile {
            about: "patients' identity commitments by record (0-based row of records.csv); the \
                    patients keep the secrets"
                .into(),
            identities: all
                .iter()
                .enumerate()
                .filter(|(_, id)| !bool::from(id.is_zero()))
                .map(|(i, id)| (i, fr_to_hex(id)))
                .collect(),
        };
        write_atomic(
            &self.file("identities.json"),
            &serde_json::to_vec_pretty(&file).expect("json"),
        )?;
        Ok(history)
    }

    /// [`DatasetDir::commit_with`], refusing to re-salt a committed dataset.
    pub fn commit(&self, capacity: Option<usize>) -> Result<CommittedDataset, DatasetError> {
        self.commit_with(capacity, Overwrite::Refuse)
            .map(|(c, _)| c)
    }

    /// Commits to the dataset for a circuit capacity with a fresh random salt, and writes
    /// `salt.json` and `commitment.json`.
    ///
    /// An existing commitment that still opens and has the requested capacity (or any, for
    /// `None`) is returned as it is ([`CommitOutcome::AlreadyCommitted`]). Any other existing
    /// commitment (another capacity, changed records, a registered dataset) is refused unless
    /// `overwrite` is [`Overwrite::Force`]; then it is moved into `history/` first.
    pub fn commit_with(
        &self,
        capacity: Option<usize>,
        overwrite: Overwrite,
    ) -> Result<(CommittedDataset, CommitOutcome), DatasetError> {
        let dataset = self.read_dataset()?;
        if dataset.records.is_empty() {
            return Err(DatasetError::NoRecords {
                path: self.file("records.csv"),
            });
        }
        let requested = capacity.map(|c| RecordLayout::new(&dataset.schema, c).capacity);
        let mut history = None;
        if self.is_committed() || self.is_registered() {
            let existing = self.load_committed();
            if let Ok(existing) = &existing {
                if requested.is_none_or(|c| c == existing.info.capacity) {
                    return Ok((existing.clone(), CommitOutcome::AlreadyCommitted));
                }
            }
            if overwrite == Overwrite::Refuse {
                return Err(match existing {
                    _ if self.is_registered() => self.refusal(),
                    Ok(existing) => DatasetError::CapacityChanged {
                        path: self.path.clone(),
                        committed: existing.info.capacity,
                        requested: requested.expect("a capacity differs"),
                    },
                    Err(e) => e,
                });
            }
            history = Some(self.archive()?);
        }
        let capacity = capacity.unwrap_or(dataset.records.len());
        let layout = RecordLayout::new(&dataset.schema, capacity);
        if dataset.records.len() > layout.capacity {
            return Err(DatasetError::Capacity {
                records: dataset.records.len(),
                capacity,
            });
        }
        let identities = self.identities(dataset.records.len())?;
        let salt = Fr::random(rand::rngs::OsRng);
        let commitment = commitment::commit(salt, &layout.pack(&dataset.records));
        let member_root = MemberTree::build(&layout, salt, &dataset.records, &identities).root();
        let info = CommitmentInfo {
            commitment: fr_to_hex(&commitment),
            member_root: fr_to_hex(&member_root),
            schema_hash: format!("0x{}", hex::encode(dataset.schema.hash())),
            record_count: dataset.records.len(),
            capacity: layout.capacity,
        };
        let salt_file = SaltFile {
            warning: "SECRET: whoever holds this salt and records.csv can open the commitment"
                .into(),
            salt: fr_to_hex(&salt),
        };
        write_atomic(
            &self.file("salt.json"),
            &serde_json::to_vec_pretty(&salt_file).expect("json"),
        )?;
        write_atomic(
            &self.file("commitment.json"),
            &serde_json::to_vec_pretty(&info).expect("json"),
        )?;
        let outcome = match history {
            Some(history) => CommitOutcome::Replaced { history },
            None => CommitOutcome::Committed,
        };
        Ok((
            CommittedDataset {
                dataset,
                salt,
                info,
                layout,
                identities,
            },
            outcome,
        ))
    }

    /// Re-commits under a fresh salt even when the existing commitment still opens (a spent
    /// commit-and-prove query budget, or a fold circuit replaced under a registration): the
    /// salt, commitments and registration move to `history/` first, as with
    /// [`DatasetDir::commit_with`] and [`Overwrite::Force`]. `capacity` defaults to the
    /// existing one.
    pub fn renew(
        &self,
        capacity: Option<usize>,
    ) -> Result<(CommittedDataset, CommitOutcome), DatasetError> {
        let capacity = match capacity {
            Some(c) => Some(c),
            None => self.load_committed().ok().map(|c| c.info.capacity),
        };
        let history = if self.is_committed() || self.is_registered() {
            Some(self.archive()?)
        } else {
            None
        };
        let (committed, _) = self.commit_with(capacity, Overwrite::Refuse)?;
        let outcome = match history {
            Some(history) => CommitOutcome::Replaced { history },
            None => CommitOutcome::Committed,
        };
        Ok((committed, outcome))
    }

    /// The dataset's commit-and-prove commitment, if it has one (`fold.json`).
    pub fn fold_commitment(&self) -> Result<Option<FoldCommitmentInfo>, DatasetError> {
        let path = self.file("fold.json");
        if !path.exists() {
            return Ok(None);
        }
        let bytes = fs::read(&path).map_err(|source| DatasetError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| DatasetError::Corrupt {
                path: self.path.clone(),
                message: format!("fold.json: {e}"),
            })
    }

    /// Records a commit-and-prove commitment (`fold.json`), replacing any earlier one (it is
    /// derived from `salt.json`, which a re-commitment archives first).
    pub fn write_fold_commitment(&self, info: &FoldCommitmentInfo) -> Result<(), DatasetError> {
        write_atomic(
            &self.file("fold.json"),
            &serde_json::to_vec_pretty(info).expect("json"),
        )
    }

    /// Loads a committed dataset and checks that the records still match the commitment.
    pub fn load_committed(&self) -> Result<CommittedDataset, DatasetError> {
        let dataset = self.read_dataset()?;
        if !self.is_committed() {
            return Err(DatasetError::NotCommitted {
                path: self.path.clone(),
            });
        }
        let corrupt = |message: String| DatasetError::Corrupt {
            path: self.path.clone(),
            message,
        };
        let read = |name: &str| {
            fs::read(self.file(name)).map_err(|source| DatasetError::Io {
                path: self.file(name),
                source,
            })
        };
        let info: CommitmentInfo = serde_json::from_slice(&read("commitment.json")?)
            .map_err(|e| corrupt(format!("commitment.json: {e}")))?;
        let salt: SaltFile = serde_json::from_slice(&read("salt.json")?)
            .map_err(|e| corrupt(format!("salt.json: {e}")))?;
        let salt = fr_from_hex(&salt.salt).ok_or_else(|| corrupt("salt.json: bad salt".into()))?;
        let layout = RecordLayout::new(&dataset.schema, info.capacity);
        if layout.capacity != info.capacity || dataset.records.len() > layout.capacity {
            return Err(corrupt(format!(
                "capacity {} does not fit the records",
                info.capacity
            )));
        }
        let recomputed = commitment::commit(salt, &layout.pack(&dataset.records));
        if fr_to_hex(&recomputed) != info.commitment {
            return Err(DatasetError::Stale {
                path: self.path.clone(),
            });
        }
        let identities = self.identities(dataset.records.len())?;
        Ok(CommittedDataset {
            dataset,
            salt,
            info,
            layout,
            identities,
        })
    }
}

/// `YYYY-MM-DDTHH-MM-SSZ` (UTC; no colons, so it is a portable file name).
fn utc_stamp(t: std::time::SystemTime) -> String {
    format!("{}Z", crate::utc::Civil::from_system(t).format("T", "-"))
}

impl CommittedDataset {
    /// The salt of the dataset's commit-and-prove commitment: derived from `salt.json`
    /// (domain-separated), so that file stays the one secret and a re-commitment renews both.
    pub fn fold_salt(&self) -> [u8; 32] {
        let mut input = b"zkcohort fold salt v1".to_vec();
        input.extend_from_slice(&fr_to_hex(&self.salt).into_bytes());
        alloy::primitives::keccak256(input).0
    }

    /// Rebuilds the membership tree and checks it against the recorded root.
    pub fn member_tree(&self) -> Result<MemberTree, DatasetError> {
        let tree = MemberTree::build(
            &self.layout,
            self.salt,
            &self.dataset.records,
            &self.identities,
        );
        if fr_to_hex(&tree.root()) != self.info.member_root {
            return Err(DatasetError::Corrupt {
                path: PathBuf::from(&self.info.commitment),
                message: "the membership root in commitment.json does not match the records and identities.json; re-commit with `dataset commit --force` (the old commitment is kept in history/)".into(),
            });
        }
        Ok(tree)
    }
}

/// Writes a file through a temporary sibling and a rename, so readers never see half a file
/// and a failed write leaves the previous content. Every file the crate writes goes through it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn import(text: &str) -> Result<Dataset, Vec<DatasetError>> {
        Dataset::read_csv(
            &Schema::clinical_default(),
            Path::new("t.csv"),
            text.as_bytes(),
        )
    }

    const HEADER: &str = "age,sex,dx,hba1c,sbp,bmi,consent,site";

    #[test]
    fn csv_round_trip_through_synth() {
        let ds = Dataset::synthesize(200, 7, 3);
        let back = import(&ds.to_csv()).unwrap();
        assert_eq!(back, ds);
        assert_eq!(
            Dataset::synthesize(200, 7, 3),
            ds,
            "deterministic in the seed"
        );
        assert_ne!(Dataset::synthesize(200, 8, 3), ds);
    }

    #[test]
    fn columns_are_matched_by_name() {
        let text = "site,consent,bmi,sbp,hba1c,dx,sex,age\n2,research,27.5,130,6.1,E11.9,F,54\n";
        let ds = import(text).unwrap();
        assert_eq!(ds.records[0][0], 54);
        assert_eq!(ds.records[0][7], 2);
    }

    #[test]
    fn every_bad_cell_is_named_by_line_and_column() {
        let text = format!(
            "{HEADER}\n54,F,E11.9,6.1,130,27.5,research,2\n200,F,E11.9,6.1,130,27.5,research,2\n54,F,E11.9,abc,130,27.5,research,2\n54,F,E11.9,6.1\n"
        );
        let errs = import(&text).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].starts_with("t.csv:3: column `age`") && msgs[0].contains("7 bits"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].starts_with("t.csv:4: column `hba1c`"),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[2].starts_with("t.csv:5:") && msgs[2].contains("4 fields"),
            "{}",
            msgs[2]
        );
    }

    #[test]
    fn each_bad_cell_is_reported_exactly_once() {
        // Two bad cells in one row, one in another, a short row: four errors, no repeats.
        let text = format!(
            "{HEADER}\n54,Q,B2O,6.1,130,27.5,research,2\n54,F,E11.9,6.1,130,27.5,marketing,2\n54,F\n"
        );
        let msgs: Vec<String> = import(&text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(msgs.len(), 4, "{msgs:#?}");
        assert!(
            msgs[0].starts_with("t.csv:2: column `sex`: "),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].starts_with("t.csv:2: column `dx`: ")
                && msgs[1].contains("did you mean `B20`?"),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[2].starts_with("t.csv:3: column `consent`: "),
            "{}",
            msgs[2]
        );
        assert!(msgs[3].starts_with("t.csv:4: 2 fields"), "{}", msgs[3]);
        let unique: std::collections::BTreeSet<&String> = msgs.iter().collect();
        assert_eq!(unique.len(), msgs.len());
    }

    #[test]
    fn too_many_errors_are_cut_off_with_a_note() {
        let text = format!("{HEADER}\n") + &"200,F,E11.9,6.1,130,27.5,research,2\n".repeat(30);
        let errs = import(&text).unwrap_err();
        assert_eq!(errs.len(), MAX_REPORTED_ERRORS + 1);
        assert!(matches!(
            errs.last(),
            Some(DatasetError::TooManyErrors { shown: 20, .. })
        ));
    }

    #[test]
    fn header_must_match_schema() {
        let missing = import("age,sex\n1,F\n").unwrap_err();
        assert!(
            missing[0]
                .to_string()
                .starts_with("t.csv:1: column `dx`: missing"),
            "{}",
            missing[0]
        );
        assert_eq!(missing.len(), 6, "every missing column is named");
        let extra = import(&format!("{HEADER},name\n1\n")).unwrap_err();
        assert!(extra[0]
            .to_string()
            .contains("column `name`: field 9 is not in schema"));
    }

    #[test]
    fn extra_columns_are_ignored_on_request_and_listed() {
        let text = format!("mrn,{HEADER},note,note\n17,54,F,E11.9,6.1,130,27.5,research,2,x,y\n");
        let refused = import(&text).unwrap_err();
        assert_eq!(refused.len(), 3, "{refused:?}");
        for e in &refused[..2] {
            assert!(matches!(e, DatasetError::UnknownColumn { .. }), "{e}");
            assert!(e.to_string().contains("--ignore-extra"), "{e}");
        }
        assert!(matches!(refused[2], DatasetError::DuplicateHeader { .. }));
        let options = CsvOptions { ignore_extra: true };
        let schema = Schema::clinical_default();
        let imported =
            Dataset::read_csv_with(&schema, Path::new("t.csv"), text.as_bytes(), options).unwrap();
        let names: Vec<(&str, usize)> = imported
            .ignored
            .iter()
            .map(|c| (c.name.as_str(), c.field))
            .collect();
        assert_eq!(names, [("mrn", 1), ("note", 10), ("note", 11)]);
        assert_eq!(imported.dataset.records.len(), 1);
        assert_eq!(imported.dataset.records[0][0], 54);
        assert_eq!(imported.dataset.records[0][7], 2);
        // Schema columns stay strict: a missing or repeated one is still refused.
        let missing = Dataset::read_csv_with(
            &schema,
            Path::new("t.csv"),
            "age,sex,extra\n1,F,x\n".as_bytes(),
            options,
        )
        .unwrap_err();
        assert!(missing
            .iter()
            .all(|e| matches!(e, DatasetError::MissingColumn { .. })));
        let repeated = format!("{HEADER},age,x\n54,F,E11.9,6.1,130,27.5,research,2,1,2\n");
        let errs =
            Dataset::read_csv_with(&schema, Path::new("t.csv"), repeated.as_bytes(), options)
                .unwrap_err();
        assert!(
            matches!(errs[..], [DatasetError::DuplicateHeader { .. }]),
            "{errs:?}"
        );
    }

    #[test]
    fn nullable_and_signed_columns_round_trip_through_csv() {
        let schema: Schema = serde_json::from_str(
            r#"{"name":"labs","columns":[
                {"name":"age","kind":"uint","bits":7},
                {"name":"dx","kind":"icd10","nullable":true},
                {"name":"ldl","kind":"decimal","scale":1,"bits":8,"nullable":true},
                {"name":"be","kind":"decimal","scale":1,"bits":9,"min":-25,"nullable":true},
                {"name":"dw","kind":"uint","bits":6,"min":-20},
                {"name":"consent","kind":"consent","purposes":["research"]}]}"#,
        )
        .unwrap();
        schema.validate().unwrap();
        let text = "age,dx,ldl,be,dw,consent\n\
                    50,E11.9,3.1,-2.5,-20,research\n\
                    61,,,,0,\n\
                    70,I10, ,4,43,research\n";
        let ds = Dataset::read_csv(&schema, Path::new("labs.csv"), text.as_bytes()).unwrap();
        assert_eq!(ds.records[0][2], 31);
        assert_eq!(ds.records[0][3], 225);
        assert_eq!(ds.records[0][4], 0);
        assert_eq!(ds.records[1][1], schema.columns[1].missing_code().unwrap());
        assert_eq!(ds.records[1][2], 255);
        assert_eq!(ds.records[1][3], 511);
        assert_eq!(ds.records[2][2], 255, "a blank cell is missing too");
        assert_eq!(ds.records[2][4], 63);
        let csv = ds.to_csv();
        assert_eq!(
            csv,
            "age,dx,ldl,be,dw,consent\n50,E11.9,3.1,-2.5,-20,research\n61,,,,0,\n70,I10,,4.0,43,research\n"
        );
        assert_eq!(
            Dataset::read_csv(&schema, Path::new("labs.csv"), csv.as_bytes()).unwrap(),
            ds
        );
        // An empty cell of a column that is not nullable is named, with the fix.
        let errs = Dataset::read_csv(
            &schema,
            Path::new("labs.csv"),
            "age,dx,ldl,be,dw,consent\n,E11,,,1,\n50,E11,,,-21,\n".as_bytes(),
        )
        .unwrap_err();
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0].starts_with("labs.csv:2: column `age`: empty cell")
                && msgs[0].contains("nullable"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].starts_with("labs.csv:3: column `dw`: `-21` is below the column's `min` -20"),
            "{}",
            msgs[1]
        );
    }

    #[test]
    fn duplicate_header_is_refused_naming_both_positions() {
        let text = format!("{HEADER},age\n54,F,E11.9,6.1,130,27.5,research,2,99\n");
        let errs = import(&text).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "t.csv:1: column `age`: named twice in the header (fields 1 and 9)"
        );
    }

    #[test]
    fn empty_and_header_only_files_are_refused() {
        for empty in ["", "\n", "\n\n"] {
            let errs = import(empty).unwrap_err();
            assert!(
                matches!(errs[..], [DatasetError::EmptyFile { .. }]),
                "{errs:?}"
            );
        }
        for header_only in [
            HEADER.to_string(),
            format!("{HEADER}\n"),
            format!("{HEADER}\n\n"),
        ] {
            let errs = import(&header_only).unwrap_err();
            assert!(
                matches!(errs[..], [DatasetError::NoRecords { .. }]),
                "{errs:?}"
            );
            assert!(errs[0].to_string().contains("no records"), "{}", errs[0]);
        }
    }

    /// Every file under `dir` (by path relative to it), with its bytes: what "nothing changed
    /// on disk" is checked against (also by the `evm` tests).
    pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(
                        p.strip_prefix(dir).unwrap().to_owned(),
                        fs::read(&p).unwrap(),
                    );
                }
            }
        }
        out
    }

    fn committed_dir(registered: bool) -> (tempfile::TempDir, DatasetDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetDir::new(dir.path());
        assert_eq!(
            store.write_dataset(&Dataset::synthesize(30, 1, 2)).unwrap(),
            WriteOutcome::Written
        );
        store.commit(None).unwrap();
        if registered {
            fs::write(
                dir.path().join("registration.json"),
                r#"{"dataset_id": 7, "chain_id": 31337}"#,
            )
            .unwrap();
        }
        (dir, store)
    }

    #[test]
    fn a_committed_dataset_is_never_overwritten_without_force() {
        for registered in [false, true] {
            let (dir, store) = committed_dir(registered);
            let before = snapshot(dir.path());
            let err = store
                .write_dataset(&Dataset::synthesize(30, 2, 2))
                .unwrap_err();
            if registered {
                assert!(
                    matches!(
                        err,
                        DatasetError::Registered {
                            dataset_id: Some(7),
                            ..
                        }
                    ),
                    "{err}"
                );
                let msg = err.to_string();
                assert!(
                    msg.contains("as dataset #7")
                        && msg.contains("CommitmentMismatch")
                        && msg.contains("--force"),
                    "{msg}"
                );
            } else {
                assert!(matches!(err, DatasetError::Committed { .. }), "{err}");
            }
            assert_eq!(snapshot(dir.path()), before, "nothing changed on disk");
            // The same records again: nothing to do.
            assert_eq!(
                store.write_dataset(&Dataset::synthesize(30, 1, 2)).unwrap(),
                WriteOutcome::Unchanged
            );
            assert_eq!(snapshot(dir.path()), before);
        }
    }

    #[test]
    fn forced_overwrite_keeps_the_old_salt_commitment_and_records() {
        let (dir, store) = committed_dir(true);
        let before = snapshot(dir.path());
        let outcome = store
            .write_dataset_with(&Dataset::synthesize(30, 2, 2), Overwrite::Force)
            .unwrap();
        let WriteOutcome::Replaced { history } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(history.starts_with(dir.path().join("history")));
        for name in [
            "salt.json",
            "commitment.json",
            "registration.json",
            "records.csv",
            "schema.json",
        ] {
            assert_eq!(
                fs::read(history.join(name)).unwrap(),
                before[Path::new(name)],
                "{name} kept"
            );
        }
        for gone in ["salt.json", "commitment.json", "registration.json"] {
            assert!(
                !dir.path().join(gone).exists(),
                "{gone} moved, not left stale"
            );
        }
        assert_ne!(
            fs::read(dir.path().join("records.csv")).unwrap(),
            before[Path::new("records.csv")]
        );
        // The archived salt still opens the archived commitment.
        let old = DatasetDir::new(&history).load_committed().unwrap();
        assert_eq!(
            serde_json::to_vec_pretty(&old.info).unwrap(),
            before[Path::new("commitment.json")]
        );
        // A second forced replacement gets its own folder.
        store.commit(None).unwrap();
        let WriteOutcome::Replaced { history: second } = store
            .write_dataset_with(&Dataset::synthesize(30, 3, 2), Overwrite::Force)
            .unwrap()
        else {
            panic!()
        };
        assert_ne!(second, history);
        assert!(history.exists());
    }

    /// Identities enter the membership tree at the next commitment: adding one to a committed
    /// dataset needs --force (which archives the commitment), the same identities again are a
    /// no-op, and new records over identities (which name rows) are refused without --force and
    /// move identities.json into history/ with it.
    #[test]
    fn identities_are_never_lost_or_moved_to_other_records() {
        let (dir, store) = committed_dir(false);
        let id = Fr::from(77);
        let before = snapshot(dir.path());
        assert!(matches!(
            store.add_identities(&[(3, id)], Overwrite::Refuse),
            Err(DatasetError::Committed { .. })
        ));
        assert_eq!(snapshot(dir.path()), before, "nothing changed");
        assert!(store.add_identities(&[(30, id)], Overwrite::Force).is_err());
        let history = store.add_identities(&[(3, id)], Overwrite::Force).unwrap();
        assert!(history.unwrap().join("salt.json").exists());
        assert_eq!(store.identities(30).unwrap()[3], id);
        assert_eq!(
            store.add_identities(&[(3, id)], Overwrite::Refuse).unwrap(),
            None
        );
        let committed = store.commit(None).unwrap();
        assert_eq!(committed.identities[3], id);
        let without = MemberTree::build(
            &committed.layout,
            committed.salt,
            &committed.dataset.records,
            &[Fr::ZERO; 30],
        );
        assert_ne!(
            committed.info.member_root,
            fr_to_hex(&without.root()),
            "the identity is in the tree"
        );
        committed.member_tree().unwrap();

        let other = Dataset::synthesize(30, 2, 2);
        let before = snapshot(dir.path());
        assert!(matches!(
            store.write_dataset(&other),
            Err(DatasetError::Committed { .. })
        ));
        fs::remove_file(dir.path().join("salt.json")).unwrap();
        fs::remove_file(dir.path().join("commitment.json")).unwrap();
        assert!(matches!(
            store.write_dataset(&other),
            Err(DatasetError::HasIdentities { .. })
        ));
        let kept = snapshot(dir.path());
        assert!(before.len() > kept.len() && kept.contains_key(Path::new("identities.json")));
        let WriteOutcome::Replaced { history } =
            store.write_dataset_with(&other, Overwrite::Force).unwrap()
        else {
            panic!("not replaced")
        };
        assert!(history.join("identities.json").exists());
        assert!(!dir.path().join("identities.json").exists());
        assert_eq!(store.identities(30).unwrap(), vec![Fr::ZERO; 30]);
    }

    #[test]
    fn recommit_is_a_no_op_and_resalting_needs_force() {
        for registered in [false, true] {
            let (dir, store) = committed_dir(registered);
            let before = snapshot(dir.path());
            let first = store.load_committed().unwrap();

            // Same records, same (or unspecified) capacity: already committed.
            for capacity in [None, Some(30), Some(48)] {
                let (c, outcome) = store.commit_with(capacity, Overwrite::Refuse).unwrap();
                assert_eq!(outcome, CommitOutcome::AlreadyCommitted);
                assert_eq!(c.info, first.info);
                assert_eq!(c.salt, first.salt);
            }
            assert_eq!(snapshot(dir.path()), before);

            // Another capacity needs a new salt: refused.
            let err = store.commit(Some(96)).unwrap_err();
            if registered {
                assert!(matches!(err, DatasetError::Registered { .. }), "{err}");
            } else {
                assert!(
                    matches!(
                        err,
                        DatasetError::CapacityChanged {
                            committed: 48,
                            requested: 96,
                            ..
                        }
                    ),
                    "{err}"
                );
            }
            assert_eq!(snapshot(dir.path()), before, "nothing changed on disk");

            // Records edited after the commitment: refused, not silently re-salted.
            let csv = fs::read_to_string(dir.path().join("records.csv")).unwrap();
            let mut lines: Vec<&str> = csv.lines().collect();
            lines.swap(1, 2);
            fs::write(dir.path().join("records.csv"), lines.join("\n") + "\n").unwrap();
            let edited = snapshot(dir.path());
            assert!(store.commit(None).is_err());
            assert_eq!(snapshot(dir.path()), edited);

            // --force re-salts and keeps the old salt and commitment.
            let (c, outcome) = store.commit_with(None, Overwrite::Force).unwrap();
            let CommitOutcome::Replaced { history } = outcome else {
                panic!("{outcome:?}")
            };
            assert_ne!(c.salt, first.salt);
            assert_eq!(
                fs::read(history.join("salt.json")).unwrap(),
                before[Path::new("salt.json")]
            );
            assert_eq!(
                fs::read(history.join("commitment.json")).unwrap(),
                before[Path::new("commitment.json")]
            );
            assert_eq!(
                history.join("registration.json").exists(),
                registered,
                "the registration of the old commitment goes with it"
            );
            assert_eq!(store.load_committed().unwrap().info, c.info);
        }
    }

    #[test]
    fn empty_datasets_are_not_written_or_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetDir::new(dir.path().join("d"));
        let err = store
            .write_dataset(&Dataset::synthesize(0, 1, 2))
            .unwrap_err();
        assert!(matches!(err, DatasetError::NoRecords { .. }), "{err}");
        assert!(!store.path.exists(), "nothing written");
        let err = DatasetDir::new(dir.path()).load_committed().unwrap_err();
        assert!(matches!(err, DatasetError::Schema(_)), "{err}");
    }

    #[test]
    fn writes_are_atomic_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A failed write (the target is a directory) keeps nothing half-written.
        fs::create_dir(dir.path().join("d")).unwrap();
        assert!(write_atomic(&dir.path().join("d"), b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn utc_stamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(utc_stamp(t), "2023-11-14T22-13-20Z");
        assert_eq!(utc_stamp(std::time::UNIX_EPOCH), "1970-01-01T00-00-00Z");
    }

    #[test]
    fn directory_commit_and_tamper_detection() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetDir::new(dir.path());
        store.write_dataset(&Dataset::synthesize(30, 1, 2)).unwrap();
        let committed = store.commit(None).unwrap();
        assert_eq!(committed.info.capacity, 48);
        assert_eq!(store.load_committed().unwrap().info, committed.info);
        let csv = fs::read_to_string(dir.path().join("records.csv")).unwrap();
        let mut lines: Vec<&str> = csv.lines().collect();
        lines.swap(1, 2);
        fs::write(dir.path().join("records.csv"), lines.join("\n") + "\n").unwrap();
        let err = store.load_committed().unwrap_err().to_string();
        assert!(err.contains("changed since the commitment"), "{err}");
    }
}
