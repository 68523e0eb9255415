//! Patient credentials and identities: the two files of a patient's "health wallet".
//!
//! * **Identity** ([`save_identity`], [`load_identity`]): the patient makes it
//!   (`zkcohort patient identity`), keeps the secret and gives the custodian its commitment.
//!   Whoever holds the secret can enrol the patient: nobody else can, the custodian included.
//! * **Credential** ([`Credential`]): what the custodian hands the patient once the dataset is
//!   committed: the patient's own record, its position and membership path, the leaf's
//!   blinding, the identity commitment it was made with, and the registrant (the address that
//!   registered the dataset, which every eligibility proof names). Everything else in it is
//!   public (the schema, the registered commitment and membership root) or a hash that hides
//!   what it covers (the path's siblings are blinded). It carries no other patient's data and
//!   no secret of the patient's: on its own it enrols nobody.

use std::path::Path;

use alloy::primitives::Address;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use serde::{Deserialize, Serialize};

use crate::{
    commitment::{fr_from_hex, fr_to_hex, RecordLayout},
    dataset::{write_atomic, CommittedDataset},
    error::DatasetError,
    membership::{self, root_from_path, Identity, MEMBER_DEPTH},
    schema::Schema,
};

/// Credential format version (2: patient-held identities, the registrant).
pub const CREDENTIAL_VERSION: u32 = 2;
/// Identity file format version.
pub const IDENTITY_VERSION: u32 = 1;

/// A patient's credential for one committed dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Format version.
    pub version: u32,
    /// Note for whoever opens the file.
    pub warning: String,
    /// The dataset's schema.
    pub schema: Schema,
    /// The dataset's registered aggregate commitment, hex (names the dataset).
    pub commitment: String,
    /// The dataset's registered membership root, hex.
    pub member_root: String,
    /// The address that registers (registered) the dataset on-chain.
    pub registrant: Address,
    /// Position of the record in the dataset.
    pub index: usize,
    /// The record, one natural-units value per column (as in the CSV).
    pub record: Vec<String>,
    /// The leaf's blinding, hex (the custodian's, derived from the dataset salt).
    pub blind: String,
    /// The patient's identity commitment the leaf was made with, hex.
    pub identity: String,
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
    /// The leaf's blinding.
    pub blind: Fr,
    /// The identity commitment in the leaf.
    pub identity: Fr,
    /// Membership root.
    pub member_root: Fr,
    /// Siblings, bottom-up.
    pub path: Vec<Fr>,
}

impl Credential {
    /// Issues the credential of record `index` of a committed dataset that `registrant`
    /// registers. Refused for a record whose patient gave no identity commitment (nobody could
    /// enrol it).
    pub fn issue(
        data: &CommittedDataset,
        index: usize,
        registrant: Address,
    ) -> Result<Self, DatasetError> {
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
        let identity = data.identities[index];
        if identity == Fr::from(0) {
            return Err(DatasetError::NoIdentity { index });
        }
        let tree = data.member_tree()?;
        let schema = &data.dataset.schema;
        Ok(Credential {
            version: CREDENTIAL_VERSION,
            warning: "PRIVATE: the patient's own health record. Enrolling also needs the \
                      patient's identity secret, which is not in this file"
                .into(),
            schema: schema.clone(),
            commitment: data.info.commitment.clone(),
            member_root: data.info.member_root.clone(),
            registrant,
            index,
            record: schema
                .columns
                .iter()
                .zip(&records[index])
                .map(|(c, v)| c.decode(*v))
                .collect(),
            blind: fr_to_hex(&membership::leaf_blind(data.salt, index)),
            identity: fr_to_hex(&identity),
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
        let credential: Credential = read_json(path, "credential")?;
        credential.open().map_err(|message| DatasetError::Corrupt {
            path: path.to_owned(),
            message,
        })
    }

    /// Decodes the credential and checks it: the record fits the schema and, with the
    /// blinding, the identity commitment and the path, hashes to the membership root.
    pub fn open(self) -> Result<OpenedCredential, String> {
        if self.version != CREDENTIAL_VERSION {
            return Err(format!(
                "credential version {} is not supported (this build reads version \
                 {CREDENTIAL_VERSION}: ask the custodian to issue it again)",
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
        let blind = field("blinding", &self.blind)?;
        let identity = field("identity commitment", &self.identity)?;
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
        let leaf = membership::leaf(blind, layout.pack_record(&values), identity);
        if root_from_path(leaf, self.index, &path) != member_root {
            return Err(
                "the record, blinding, identity and path do not open the membership root".into(),
            );
        }
        Ok(OpenedCredential {
            credential: self,
            values,
            blind,
            identity,
            member_root,
            path,
        })
    }
}

/// A patient identity file: the secret and, for handing to the custodian, its commitment.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    version: u32,
    warning: String,
    /// Give this to the custodian.
    commitment: String,
    secret: String,
}

/// Writes a patient's identity (atomically): the secret and its commitment.
pub fn save_identity(identity: &Identity, path: &Path) -> Result<(), DatasetError> {
    let file = IdentityFile {
        version: IDENTITY_VERSION,
        warning: "SECRET: whoever holds this file can enrol you in trials. Give the custodian \
                  only the commitment"
            .into(),
        commitment: fr_to_hex(&identity.commitment()),
        secret: fr_to_hex(&identity.secret),
    };
    write_atomic(path, &serde_json::to_vec_pretty(&file).expect("json"))
}

/// Reads a JSON file of type `T` (`what` names it in errors).
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| DatasetError::Corrupt {
        path: path.to_owned(),
        message: format!("{what}: {e}"),
    })
}

/// Reads a patient's identity and checks its commitment.
pub fn load_identity(path: &Path) -> Result<Identity, DatasetError> {
    let corrupt = |message: String| DatasetError::Corrupt {
        path: path.to_owned(),
        message,
    };
    let file: IdentityFile = read_json(path, "identity")?;
    if file.version != IDENTITY_VERSION {
        return Err(corrupt(format!(
            "identity version {} is not supported",
            file.version
        )));
    }
    let secret = fr_from_hex(&file.secret).ok_or_else(|| corrupt("bad secret".into()))?;
    let identity = Identity { secret };
    if fr_from_hex(&file.commitment) != Some(identity.commitment()) {
        return Err(corrupt(
            "the commitment is not the secret's (the file was edited)".into(),
        ));
    }
    Ok(identity)
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
        let identity = Identity {
            secret: Fr::from(4242),
        };
        store
            .add_identities(&[(7, identity.commitment())], Default::default())
            .unwrap();
        let committed = store.commit(None).unwrap();
        let registrant = Address::repeat_byte(0x11);
        let cred = Credential::issue(&committed, 7, registrant).unwrap();
        let file = dir.path().join("patient-7.json");
        cred.save(&file).unwrap();
        let opened = Credential::load(&file).unwrap();
        assert_eq!(opened.values, dataset.records[7]);
        assert_eq!(opened.identity, identity.commitment());
        let text = std::fs::read_to_string(&file).unwrap();
        let other = committed.dataset.schema.columns[2].decode(dataset.records[8][2]);
        assert!(
            dataset.records[8][2] == dataset.records[7][2] || !text.contains(&other),
            "another patient's diagnosis leaked into the credential"
        );
        assert!(
            !text.contains(&fr_to_hex(&identity.secret)[2..]),
            "the patient's secret is in the credential"
        );

        let mut forged = cred.clone();
        forged.record[0] = "99".into();
        assert!(forged.open().unwrap_err().contains("do not open"));
        let mut moved = cred.clone();
        moved.index = 6;
        assert!(moved.open().unwrap_err().contains("do not open"));
        let mut other_identity = cred;
        other_identity.identity = fr_to_hex(&Fr::from(5));
        assert!(other_identity.open().unwrap_err().contains("do not open"));
        assert!(Credential::issue(&committed, 30, registrant).is_err());
        assert!(
            matches!(
                Credential::issue(&committed, 6, registrant),
                Err(DatasetError::NoIdentity { index: 6 })
            ),
            "a record without an identity gets no credential"
        );
    }

    #[test]
    fn identity_files_round_trip_and_edits_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("me.json");
        let identity = Identity::generate(&mut rand::rngs::OsRng);
        save_identity(&identity, &file).unwrap();
        assert_eq!(load_identity(&file).unwrap(), identity);
        let text = std::fs::read_to_string(&file).unwrap();
        let edited = text.replace(&fr_to_hex(&identity.commitment()), &fr_to_hex(&Fr::from(1)));
        std::fs::write(&file, edited).unwrap();
        assert!(load_identity(&file).is_err());
    }
}
