//! `zkcohort dataset add-identity`: the custodian records the identity commitment a patient
//! handed it (`zkcohort patient identity` prints it) against the patient's record. The next
//! commitment's membership tree puts it in the record's leaf, after which only the holder of
//! the patient's secret can enrol that record in trials; a record without one cannot be
//! enrolled at all. A committed dataset needs `--force` (the membership root changes, so the
//! dataset is committed and registered again; the old commitment is kept in `history/`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use zkcohort::{commitment::fr_from_hex, dataset::DatasetDir};

use crate::{emit, Force, Global};

/// Record a patient's identity commitment against their record.
#[derive(Args)]
pub(crate) struct AddIdentityArgs {
    /// Dataset directory.
    #[arg(long)]
    dataset: PathBuf,
    /// Record index (0-based, in records.csv order).
    #[arg(long)]
    record: usize,
    /// The identity commitment the patient gave you (hex).
    #[arg(long)]
    identity: String,
    #[command(flatten)]
    force: Force,
}

impl AddIdentityArgs {
    /// Writes the commitment into the dataset's `identities.json`.
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        let padded = format!("0x{:0>64}", self.identity.trim_start_matches("0x"));
        let identity = fr_from_hex(&padded)
            .filter(|id| *id != zkcohort::Fr::from(0))
            .with_context(|| format!("`{}` is not an identity commitment", self.identity))?;
        let dir = DatasetDir::new(&self.dataset);
        let history = dir.add_identities(&[(self.record, identity)], self.force.overwrite())?;
        emit(
            g,
            json!({"dataset": self.dataset, "record": self.record, "history": history}),
            || {
                println!(
                    "identity of record {} recorded in {}; commit the dataset for it to take effect",
                    self.record,
                    self.dataset.join("identities.json").display()
                );
                if let Some(history) = &history {
                    println!(
                        "the previous commitment was moved to {}: commit and register again",
                        history.display()
                    );
                }
            },
        );
        Ok(())
    }
}
