//! Patient credentials: the file a custodian hands a patient (a "health wallet" entry).
//!
//! A credential holds the patient's own record, its position and membership path in the
//! dataset's membership tree, and the patient secret. Everything else in it is public (the
//! schema, the registered commitment and membership root) or a hash that hides what it covers
//! (the path's siblings are blinded by other patients' secrets). It carries no other patient's
//! data, and whoever holds it can prove eligibility and enrol the patient: it is a secret of
//! the patient's.

use std::path::Path;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use serde::{Deserialize, Serialize};

use crate::{
    commitment::{fr_from_hex, fr_to_hex, RecordLayout},
    dataset::{write_atomic, CommittedDataset},
    error::DatasetError,
    membership::{self, root_from_path, MEMBER_DEPTH},
    schema::Schema,
};

/// Credential format version.
pub const CREDENTIAL_VERSION: u32 = 1;

/// A patient's credential for one committed dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Format version.
    pub version: u32,
    /// Warning for whoever opens the file.
    pub warning: String,
    /// The dataset's schema.
    pub schema: Schema,
    /// The dataset's registered aggregate commitment, hex (names the dataset).
    pub commitment: String,
    /// The dataset's registered membership root, hex.
    pub member_root: String,
    /// Position of the record in the dataset.
    pub index: usize,
    /// The record, one natural-units value per column (as in the CSV).
    pub record: Vec<String>,
    /// The patient secret, hex.
    pub secret: String,
    /// Membership path: [`MEMBER_DEPTH`] siblings, bottom-up, hex.
    pub path: Vec<String>,
}

/// A credential decoded into field elements and encoded values.
#[derive(Clone, Debug)]
pub struct OpenedCredential {
    /// The credential as read.
    pub credential: Credential,
    /// Encoded column values.
    pub values: Vec<u64>,
    /// Patient secret.
    pub secret: Fr,
    /// Membership root.
    pub member_root: Fr,
    /// Siblings, bottom-up.
    pub path: Vec<Fr>,
}

impl Credential {
    /// Issues the credential of record `index` of a committed dataset.
    pub fn issue(data: &CommittedDataset, index: usize) -> Result<Self, DatasetError> {
        let records = &data.dataset.records;
        if index >= records.len() {
            return Err(DatasetError::Corrupt {
                path: data.info.commitment.clone().into(),
                message: format!(
                    "no record {index}: the dataset has {} (indices 0..{})",
                    records.len(),
                    records.len()
                ),
            });
        }
        let tree = data.member_tree()?;
        let schema = &data.dataset.schema;
        Ok(Credential {
            version: CREDENTIAL_VERSION,
            warning: "SECRET: whoever holds this file can prove this patient's eligibility and \
                      enrol them in trials"
                .into(),
            schema: schema.clone(),
            commitment: data.info.commitment.clone(),
            member_root: data.info.member_root.clone(),
            index,
            record: schema
                .columns
                .iter()
                .zip(&records[index])
                .map(|(c, v)| c.decode(*v))
                .collect(),
            secret: fr_to_hex(&membership::patient_secret(data.salt, index)),
            path: tree.path(index).iter().map(fr_to_hex).collect(),
        })
    }

    /// Writes the credential (atomically).
    pub fn save(&self, path: &Path) -> Result<(), DatasetError> {
        write_atomic(
            path,
            &serde_json::to_vec_pretty(self).expect("credential serialises"),
        )
    }

    /// Reads a credential and checks that it opens its membership root.
    pub fn load(path: &Path) -> Result<OpenedCredential, DatasetError> {
        let corrupt = |message: String| DatasetError::Corrupt {
            path: path.to_owned(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
            path: path.to_owned(),
            source,
        })?;
        let credential: Credential =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("credential: {e}")))?;
        credential.open().map_err(corrupt)
    }

    /// Decodes the credential and checks it: the record fits the schema and, with the secret
    /// and the path, hashes to the membership root.
    pub fn open(self) -> Result<OpenedCredential, String> {
        if self.version != CREDENTIAL_VERSION {
            return Err(format!(
                "credential version {} is not supported",
                self.version
            ));
        }
        self.schema.validate().map_err(|e| e.to_string())?;
        if self.record.len() != self.schema.columns.len() {
            return Err("record does not have one value per schema column".into());
        }
        let values = self
            .schema
            .columns
            .iter()
            .zip(&self.record)
            .map(|(c, cell)| {
                c.encode(cell)
                    .map_err(|e| format!("column `{}`: {e}", c.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let field = |what: &str, h: &str| fr_from_hex(h).ok_or_else(|| format!("bad {what} `{h}`"));
        let secret = field("secret", &self.secret)?;
        let member_root = field("membership root", &self.member_root)?;
        let path = self
            .path
            .iter()
            .map(|h| field("path node", h))
            .collect::<Result<Vec<_>, _>>()?;
        if path.len() != MEMBER_DEPTH || self.index >= 1 << MEMBER_DEPTH {
            return Err(format!(
                "the path must have {MEMBER_DEPTH} nodes and the index fit in {MEMBER_DEPTH} bits"
            ));
        }
        let layout = RecordLayout::new(&self.schema, 1);
        let leaf = membership::leaf(secret, layout.pack_record(&values));
        if root_from_path(leaf, self.index, &path) != member_root {
            return Err("the record, secret and path do not open the membership root".into());
        }
        Ok(OpenedCredential {
            credential: self,
            values,
            secret,
            member_root,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Dataset, DatasetDir};

    #[test]
    fn issued_credentials_open_and_tampering_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetDir::new(dir.path());
        let dataset = Dataset::synthesize(30, 3, 2);
        store.write_dataset(&dataset).unwrap();
        let committed = store.commit(None).unwrap();
        let cred = Credential::issue(&committed, 7).unwrap();
        let file = dir.path().join("patient-7.json");
        cred.save(&file).unwrap();
        let opened = Credential::load(&file).unwrap();
        assert_eq!(opened.values, dataset.records[7]);
        let text = std::fs::read_to_string(&file).unwrap();
        let other = committed.dataset.schema.columns[2].decode(dataset.records[8][2]);
        assert!(
            dataset.records[8][2] == dataset.records[7][2] || !text.contains(&other),
            "another patient's diagnosis leaked into the credential"
        );

        let mut forged = cred.clone();
        forged.record[0] = "99".into();
        assert!(forged.open().unwrap_err().contains("do not open"));
        let mut moved = cred;
        moved.index = 6;
        assert!(moved.open().unwrap_err().contains("do not open"));
        assert!(Credential::issue(&committed, 30).is_err());
    }
}
