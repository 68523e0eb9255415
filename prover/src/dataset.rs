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
//! | `commitment.json` | commitment, membership root, capacity, record count, schema hash | public |
//!
//! Patient credentials ([`crate::credential`]) are derived from `salt.json` and the records on
//! demand; nothing more is stored.

use std::{
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
const MAX_REPORTED_ERRORS: usize = 20;

impl Dataset {
    /// Imports a CSV file with a header row; columns are matched to the schema by name (extra
    /// CSV columns are an error, order is free). Every bad cell is reported with its line and
    /// column; on any error nothing is returned.
    pub fn import_csv(schema: &Schema, path: &Path) -> Result<Self, Vec<DatasetError>> {
        let io = |source| {
            vec![DatasetError::Io {
                path: path.to_owned(),
                source,
            }]
        };
        let file = fs::File::open(path).map_err(io)?;
        Self::read_csv(schema, path, file)
    }

    /// [`Dataset::import_csv`] over any reader; `path` names the source in errors.
    pub fn read_csv(
        schema: &Schema,
        path: &Path,
        reader: impl std::io::Read,
    ) -> Result<Self, Vec<DatasetError>> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        let header_err = |message: String| {
            vec![DatasetError::Header {
                path: path.to_owned(),
                message,
            }]
        };
        let headers = rdr
            .headers()
            .map_err(|e| header_err(e.to_string()))?
            .clone();
        let mut position = Vec::with_capacity(schema.columns.len());
        for col in &schema.columns {
            let found = headers.iter().position(|h| h.trim() == col.name);
            position
                .push(found.ok_or_else(|| header_err(format!("missing column `{}`", col.name)))?);
        }
        if let Some(extra) = headers
            .iter()
            .find(|h| schema.column_index(h.trim()).is_none())
        {
            return Err(header_err(format!(
                "column `{extra}` is not in schema `{}`",
                schema.name
            )));
        }

        let mut records = Vec::new();
        let mut errors = Vec::new();
        for row in rdr.records() {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    errors.push(DatasetError::Row {
                        path: path.to_owned(),
                        line,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let line = row.position().map_or(0, |p| p.line());
            if row.len() != headers.len() {
                errors.push(DatasetError::Row {
                    path: path.to_owned(),
                    line,
                    message: format!("{} fields, the header has {}", row.len(), headers.len()),
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
            if errors.len() >= MAX_REPORTED_ERRORS {
                break;
            }
        }
        if errors.is_empty() {
            Ok(Dataset {
                schema: schema.clone(),
                records,
            })
        } else {
            Err(errors)
        }
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
}

impl DatasetDir {
    /// A dataset directory at `path` (not created until written).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DatasetDir { path: path.into() }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes schema and records, replacing any previous content and commitment.
    pub fn write_dataset(&self, dataset: &Dataset) -> Result<(), DatasetError> {
        fs::create_dir_all(&self.path).map_err(|source| DatasetError::Io {
            path: self.path.clone(),
            source,
        })?;
        let schema = serde_json::to_string_pretty(&dataset.schema).expect("schema serialises");
        write_atomic(&self.file("schema.json"), schema.as_bytes())?;
        write_atomic(&self.file("records.csv"), dataset.to_csv().as_bytes())?;
        for stale in ["commitment.json", "salt.json"] {
            let _ = fs::remove_file(self.file(stale));
        }
        Ok(())
    }

    /// Loads schema and records.
    pub fn read_dataset(&self) -> Result<Dataset, DatasetError> {
        let schema = Schema::load(&self.file("schema.json"))?;
        Dataset::import_csv(&schema, &self.file("records.csv")).map_err(|mut errs| errs.remove(0))
    }

    /// Commits to the dataset for a circuit capacity with a fresh random salt, and writes
    /// `salt.json` and `commitment.json`.
    pub fn commit(&self, capacity: Option<usize>) -> Result<CommittedDataset, DatasetError> {
        let dataset = self.read_dataset()?;
        let capacity = capacity.unwrap_or(dataset.records.len());
        let layout = RecordLayout::new(&dataset.schema, capacity);
        if dataset.records.len() > layout.capacity {
            return Err(DatasetError::Capacity {
                records: dataset.records.len(),
                capacity,
            });
        }
        let salt = Fr::random(rand::rngs::OsRng);
        let commitment = commitment::commit(salt, &layout.pack(&dataset.records));
        let member_root = MemberTree::build(&layout, salt, &dataset.records).root();
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
        Ok(CommittedDataset {
            dataset,
            salt,
            info,
            layout,
        })
    }

    /// Loads a committed dataset and checks that the records still match the commitment.
    pub fn load_committed(&self) -> Result<CommittedDataset, DatasetError> {
        let dataset = self.read_dataset()?;
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
            return Err(corrupt(
                "records.csv or salt.json changed since the commitment was made; run `dataset commit` again".into(),
            ));
        }
        Ok(CommittedDataset {
            dataset,
            salt,
            info,
            layout,
        })
    }
}

impl CommittedDataset {
    /// Rebuilds the membership tree and checks it against the recorded root.
    pub fn member_tree(&self) -> Result<MemberTree, DatasetError> {
        let tree = MemberTree::build(&self.layout, self.salt, &self.dataset.records);
        if fr_to_hex(&tree.root()) != self.info.member_root {
            return Err(DatasetError::Corrupt {
                path: PathBuf::from(&self.info.commitment),
                message: "the membership root in commitment.json does not match the records; run `dataset commit` again".into(),
            });
        }
        Ok(tree)
    }
}

/// Writes a file through a temporary sibling and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
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
    fn header_must_match_schema() {
        let missing = import("age,sex\n1,F\n").unwrap_err();
        assert!(missing[0].to_string().contains("missing column `dx`"));
        let extra = import(&format!("{HEADER},name\n")).unwrap_err();
        assert!(extra[0]
            .to_string()
            .contains("column `name` is not in schema"));
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
