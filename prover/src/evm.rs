//! The Solidity verifier generated from a verifying key, and the manifest that tells the forge
//! deploy script which verifier serves which circuit.
//!
//! snark-verifier's EVM loader emits a contract with no ABI: its `fallback` reads calldata as
//! the public inputs (32-byte big-endian words, in order) followed by the proof, returns empty
//! data on success and reverts with empty data otherwise.

use std::{collections::BTreeMap, fs, path::Path};

use halo2_base::{
    gates::circuit::builder::BaseCircuitBuilder,
    halo2_proofs::{
        halo2curves::bn256::{Bn256, Fr, G1Affine},
        plonk::VerifyingKey,
        poly::kzg::commitment::ParamsKZG,
    },
};
use snark_verifier_sdk::{evm::gen_evm_verifier_sol_code, SHPLONK};

use serde::Deserialize;
use serde_json::json;

use crate::{
    circuit::fast::fold::Rounding,
    dataset::{write_atomic, Overwrite},
    error::{DatasetError, VerifierError},
    keys::{CircuitKeys, CircuitShape, FoldKeys, ParamsFingerprint},
    query::QueryConstants,
    trial::TrialCriteria,
};

/// File, next to the verifiers, describing each contract's circuit: `name → {circuit_id, kind
/// ("aggregate" or "eligibility"), schema_hash, constants, batch, cells, data_columns, params,
/// vk_hash}`. The schema's SHA-256 lets the markets check that a query or trial, a dataset and
/// a circuit share one schema; the constants count (query constants or trial criteria words),
/// the patient slots (0 for aggregate circuits) and the data columns fix the number of public
/// inputs. `data_columns` (W; absent means 0) counts the data columns of a commit-and-prove
/// aggregate circuit, whose dataset commitment is the proof's first `64 * W` bytes instead of
/// public input 0. `cells` counts the cells an aggregate circuit releases per proof: 1, or 0 for
/// a fold attestation, which releases a verdict (absent means 1 for an aggregate circuit, 0
/// for an eligibility circuit: [`ManifestEntry::cells`]). `params` is the
/// [`ParamsFingerprint`] of the KZG params that built the verifier (`{kind: "dev-insecure" |
/// "file", sha256, k}`). `vk_hash` is the SHA-256 of the verifying key the verifier was generated
/// from ([`crate::keys::vk_hash`]): offline verification ([`crate::proof::verify`]) requires the
/// key it re-derives to have this hash, so an artifact verifies only against the key of the
/// deployed verifier. The deploy script reads the manifest, and refuses `dev-insecure`
/// verifiers (or ones without `params`) on any chain but the local one (31337).
pub const MANIFEST: &str = "verifiers.json";

/// The manifest committed with the verifiers (`contracts/verifiers/verifiers.json`) when this
/// binary was built: what `verify` checks against on a machine without the repository.
pub const COMMITTED_MANIFEST: &str = include_str!("../../contracts/verifiers/verifiers.json");

/// One verifier of a [`Manifest`], as [`manifest_entry`] writes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ManifestEntry {
    /// The circuit the verifier checks proofs of.
    pub circuit_id: String,
    /// `aggregate` or `eligibility`.
    pub kind: String,
    /// SHA-256 of the circuit's schema, 0x-prefixed hex.
    pub schema_hash: String,
    /// Query constants or trial criteria words.
    pub constants: usize,
    /// Patient slots (0 for aggregate circuits).
    pub batch: usize,
    /// Released cells per proof, as written (absent in older manifests: see [`Self::cells`]).
    #[serde(default, rename = "cells")]
    pub cells_written: Option<usize>,
    /// Data columns of a commit-and-prove aggregate circuit (0, or absent in older manifests,
    /// for a circuit whose commitment is public input 0).
    #[serde(default)]
    pub data_columns: usize,
    /// The params the verifier was built from (absent in older manifests).
    #[serde(default)]
    pub params: Option<ParamsFingerprint>,
    /// SHA-256 of the verifying key the verifier was generated from (absent in older
    /// manifests).
    #[serde(default)]
    pub vk_hash: Option<String>,
}

impl ManifestEntry {
    /// Cells the circuit releases per proof (`IProofGated.Circuit.cells`): as written, else 1
    /// for an aggregate circuit and 0 for an eligibility circuit (what `Deploy.s.sol` assumes).
    pub fn cells(&self) -> usize {
        self.cells_written
            .unwrap_or(usize::from(self.kind == "aggregate"))
    }
}

/// A verifier manifest read back (see [`MANIFEST`]): contract name → entry. Entries in an older
/// form (a bare circuit id) are skipped.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Where it was read from (a path, or the committed copy built into this binary).
    pub source: String,
    entries: BTreeMap<String, ManifestEntry>,
}

impl Manifest {
    /// Reads a manifest file.
    pub fn load(path: &Path) -> Result<Self, VerifierError> {
        let text = fs::read(path).map_err(|source| DatasetError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path.display().to_string()).map_err(|source| VerifierError::Manifest {
            path: path.to_owned(),
            source,
        })
    }

    /// The committed manifest built into this binary ([`COMMITTED_MANIFEST`]).
    pub fn committed() -> Self {
        Self::parse(
            COMMITTED_MANIFEST.as_bytes(),
            "the committed contracts/verifiers/verifiers.json built into this binary".into(),
        )
        .expect("the committed manifest parses")
    }

    fn parse(bytes: &[u8], source: String) -> Result<Self, serde_json::Error> {
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(bytes)?;
        let entries = raw
            .into_iter()
            .filter(|(_, v)| v.is_object())
            .map(|(name, v)| Ok((name, serde_json::from_value(v)?)))
            .collect::<Result<_, serde_json::Error>>()?;
        Ok(Manifest { source, entries })
    }

    /// Every verifier: contract name and entry.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ManifestEntry)> {
        self.entries.iter().map(|(name, e)| (name.as_str(), e))
    }

    /// The verifier of `circuit_id`: its contract name and entry.
    pub fn find(&self, circuit_id: &str) -> Option<(&str, &ManifestEntry)> {
        self.entries
            .iter()
            .find(|(_, e)| e.circuit_id == circuit_id)
            .map(|(name, e)| (name.as_str(), e))
    }
}

/// Solidity source of the verifier for a circuit, with the contract renamed to `name`. Its
/// header names the circuit (line 2, read back by the clash check) and the params that built it
/// (line 3).
pub fn verifier_source(
    params: &ParamsKZG<Bn256>,
    fingerprint: &ParamsFingerprint,
    vk: &VerifyingKey<G1Affine>,
    num_instances: usize,
    name: &str,
    circuit_id: &str,
) -> String {
    let code = gen_evm_verifier_sol_code::<BaseCircuitBuilder<Fr>, SHPLONK>(
        params,
        vk,
        vec![num_instances],
    );
    let header = format!(
        "// GENERATED by zkcohort from the verifying key of circuit\n// {circuit_id} ({num_instances} public inputs). Do not edit; regenerate.\n// KZG params: {}\n",
        fingerprint.describe()
    );
    header + &code.replacen("contract Halo2Verifier", &format!("contract {name}"), 1)
}

/// The conventional contract name of a circuit's verifier: `AggregateVerifierN<capacity>` or
/// `EligibilityVerifierB<batch>`.
pub fn contract_name(keys: &CircuitKeys) -> String {
    match &keys.config.shape {
        CircuitShape::Aggregate(layout) => format!("AggregateVerifierN{}", layout.capacity),
        CircuitShape::Eligibility { batch } => format!("EligibilityVerifierB{batch}"),
    }
}

/// [`write_verifier_with`], refusing to replace another circuit's verifier.
pub fn write_verifier(
    dir: &Path,
    params: &ParamsKZG<Bn256>,
    keys: &CircuitKeys,
) -> Result<String, VerifierError> {
    write_verifier_with(dir, params, keys, Overwrite::Refuse)
}

/// Writes `<dir>/<name>.sol` (only if its content changed) and records the circuit under
/// `name` in `<dir>/verifiers.json` (see [`MANIFEST`]). Returns the contract name. See
/// [`install_verifier`] for when it refuses.
pub fn write_verifier_with(
    dir: &Path,
    params: &ParamsKZG<Bn256>,
    keys: &CircuitKeys,
    overwrite: Overwrite,
) -> Result<String, VerifierError> {
    let name = contract_name(keys);
    let n = keys.config.num_instances();
    let source = verifier_source(
        params,
        &keys.params,
        keys.pk.get_vk(),
        n,
        &name,
        &keys.config.circuit_id,
    );
    install_verifier(dir, &name, &manifest_entry(keys), &source, overwrite)?;
    Ok(name)
}

/// The conventional contract name of a fold circuit's verifier:
/// `FoldVerifierN<capacity>W<data columns>`, then what the circuit adds to the plain answer,
/// so two variants never share a file: `Attest` (an attestation), `Strata<cells>`,
/// `Round5`/`Round6` (proven rounding), `Dom<k>` (the dominance rule).
pub fn fold_contract_name(keys: &FoldKeys) -> String {
    let p = &keys.shape;
    let mut name = format!("FoldVerifierN{}W{}", p.shape.capacity, p.slots);
    if p.attestation {
        name += "Attest";
    }
    if p.strata.is_some() {
        name += &format!("Strata{}", p.cells());
    }
    match p.rounding {
        Some(Rounding::Nearest5) => name += "Round5",
        Some(Rounding::Midpoint6) => name += "Round6",
        None => {}
    }
    if let Some(d) = p.dominance {
        name += &format!("Dom{}", d.percent);
    }
    name
}

/// [`write_verifier_with`] for a fold circuit: `<dir>/<name>.sol` and its manifest entry
/// (kind `aggregate`, its data columns and constants count, so `Deploy.s.sol` registers it as
/// a commit-and-prove circuit). Returns the contract name.
pub fn write_fold_verifier(
    dir: &Path,
    params: &ParamsKZG<Bn256>,
    keys: &FoldKeys,
    overwrite: Overwrite,
) -> Result<String, VerifierError> {
    let name = fold_contract_name(keys);
    let layout = keys.shape.inputs();
    let source = verifier_source(
        params,
        &keys.params,
        keys.pk.get_vk(),
        layout.len(),
        &name,
        &keys.circuit_id,
    );
    let entry = json!({
        "batch": 0,
        "cells": keys.shape.cells(),
        "circuit_id": keys.circuit_id,
        "constants": layout.constants(),
        "data_columns": keys.shape.slots,
        "kind": "aggregate",
        "params": keys.params,
        "schema_hash": format!("0x{}", hex::encode(keys.schema.schema().hash())),
        "vk_hash": keys.vk_hash,
    });
    install_verifier(dir, &name, &entry, &source, overwrite)?;
    Ok(name)
}

/// A circuit's entry in [`MANIFEST`].
pub fn manifest_entry(keys: &CircuitKeys) -> serde_json::Value {
    let schema = &keys.config.schema;
    let (kind, constants, batch) = match keys.config.shape {
        CircuitShape::Aggregate(_) => ("aggregate", QueryConstants::len_for(schema), 0),
        CircuitShape::Eligibility { batch } => {
            ("eligibility", TrialCriteria::len_for(schema), batch)
        }
    };
    json!({
        "batch": batch,
        "cells": usize::from(matches!(keys.config.shape, CircuitShape::Aggregate(_))),
        "circuit_id": keys.config.circuit_id,
        "constants": constants,
        "data_columns": 0,
        "kind": kind,
        "params": keys.params,
        "schema_hash": format!("0x{}", hex::encode(schema.hash())),
        "vk_hash": keys.vk_hash,
    })
}

/// Installs a verifier's source as `<dir>/<name>.sol` and records `entry` (see
/// [`manifest_entry`]; its `circuit_id` names the circuit) under `name` in the manifest.
///
/// The contract name says only the capacity (or batch), so two circuits (two schemas of the
/// same capacity, or another `k`) can want the same file. If `<dir>/<name>.sol` (by its
/// generated header) or the manifest entry for `name` belongs to another circuit id, nothing
/// is written and [`VerifierError::Clash`] names both, unless `overwrite` is
/// [`Overwrite::Force`]. The same circuit again is a no-op. An unreadable manifest is an error,
/// never silently replaced.
pub fn install_verifier(
    dir: &Path,
    name: &str,
    entry: &serde_json::Value,
    source: &str,
    overwrite: Overwrite,
) -> Result<(), VerifierError> {
    let circuit_id = entry["circuit_id"].as_str().unwrap_or_default();
    let path = dir.join(format!("{name}.sol"));
    let manifest_path = dir.join(MANIFEST);
    let mut manifest = read_manifest(&manifest_path)?;
    let existing = fs::read_to_string(&path).ok();
    let owners = [
        (
            manifest_path.clone(),
            manifest.get(name).map(|v| {
                // `name → {circuit_id, ..}`, or `name → circuit id` in older manifests.
                v.get("circuit_id")
                    .unwrap_or(v)
                    .as_str()
                    .map_or_else(|| v.to_string(), str::to_owned)
            }),
        ),
        (
            path.clone(),
            existing.as_deref().map(|text| {
                generated_for(text).unwrap_or_else(|| "(unknown: no zkcohort header)".into())
            }),
        ),
    ];
    for (owner_path, owner) in owners {
        match owner {
            Some(owner) if owner != circuit_id => {
                if overwrite == Overwrite::Refuse {
                    return Err(VerifierError::Clash {
                        path: owner_path,
                        name: name.to_owned(),
                        existing: owner,
                        new: circuit_id.to_owned(),
                    });
                }
                tracing::warn!(
                    contract = name,
                    replaced = %owner,
                    by = circuit_id,
                    "--force: replacing another circuit's verifier in {}",
                    dir.display()
                );
            }
            _ => {}
        }
    }
    if existing.as_deref() != Some(source) {
        write_atomic(&path, source.as_bytes())?;
    }
    record(&manifest_path, &mut manifest, name, entry.clone())?;
    Ok(())
}

/// The circuit id in a generated verifier's header (see [`verifier_source`]).
fn generated_for(source: &str) -> Option<String> {
    let mut lines = source.lines();
    lines
        .next()?
        .starts_with("// GENERATED by zkcohort")
        .then_some(())?;
    let id = lines
        .next()?
        .strip_prefix("// ")?
        .split_whitespace()
        .next()?;
    Some(id.to_owned())
}

type RawManifest = BTreeMap<String, serde_json::Value>;

/// A JSON object file; a missing file is empty, an unparseable one an error.
fn read_manifest(path: &Path) -> Result<RawManifest, VerifierError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| VerifierError::Manifest {
            path: path.to_owned(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RawManifest::new()),
        Err(source) => Err(DatasetError::Io {
            path: path.to_owned(),
            source,
        }
        .into()),
    }
}

/// Sets `key → value` in a manifest and rewrites its file, only on change.
fn record(
    path: &Path,
    map: &mut RawManifest,
    key: &str,
    value: serde_json::Value,
) -> Result<(), VerifierError> {
    if map.get(key) != Some(&value) {
        map.insert(key.to_owned(), value);
        let text = serde_json::to_string_pretty(&map).expect("json") + "\n";
        write_atomic(path, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::tests::snapshot;

    const SOURCE_A: &str = "// GENERATED by zkcohort from the verifying key of circuit\n// agg1-aaaaaaaa-n48-k14 (23 public inputs). Do not edit; regenerate.\ncontract AggregateVerifierN48 {}\n";
    const SOURCE_B: &str = "// GENERATED by zkcohort from the verifying key of circuit\n// agg1-bbbbbbbb-n48-k14 (23 public inputs). Do not edit; regenerate.\ncontract AggregateVerifierN48 {}\n";

    fn install(
        dir: &Path,
        id: &str,
        source: &str,
        overwrite: Overwrite,
    ) -> Result<(), VerifierError> {
        let entry = json!({"batch": 0, "circuit_id": id, "constants": 17, "kind": "aggregate", "schema_hash": "0x00"});
        install_verifier(dir, "AggregateVerifierN48", &entry, source, overwrite)
    }

    #[test]
    fn another_schemas_verifier_is_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        install(
            dir.path(),
            "agg1-aaaaaaaa-n48-k14",
            SOURCE_A,
            Overwrite::Refuse,
        )
        .unwrap();
        let before = snapshot(dir.path());
        assert_eq!(
            generated_for(SOURCE_A).as_deref(),
            Some("agg1-aaaaaaaa-n48-k14")
        );

        // The same circuit again: idempotent.
        install(
            dir.path(),
            "agg1-aaaaaaaa-n48-k14",
            SOURCE_A,
            Overwrite::Refuse,
        )
        .unwrap();
        assert_eq!(snapshot(dir.path()), before);

        // Another schema of the same capacity: refused, nothing changed.
        let err = install(
            dir.path(),
            "agg1-bbbbbbbb-n48-k14",
            SOURCE_B,
            Overwrite::Refuse,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, VerifierError::Clash { .. }), "{msg}");
        assert!(
            msg.contains("agg1-aaaaaaaa-n48-k14")
                && msg.contains("agg1-bbbbbbbb-n48-k14")
                && msg.contains("--verifier-dir"),
            "{msg}"
        );
        assert_eq!(snapshot(dir.path()), before);

        // A verifier file the manifest does not know about is protected too.
        fs::remove_file(dir.path().join(MANIFEST)).unwrap();
        let before = snapshot(dir.path());
        assert!(install(
            dir.path(),
            "agg1-bbbbbbbb-n48-k14",
            SOURCE_B,
            Overwrite::Refuse
        )
        .is_err());
        assert_eq!(snapshot(dir.path()), before);

        // --force replaces it.
        install(
            dir.path(),
            "agg1-bbbbbbbb-n48-k14",
            SOURCE_B,
            Overwrite::Force,
        )
        .unwrap();
        let after = snapshot(dir.path());
        assert_eq!(
            after[Path::new("AggregateVerifierN48.sol")],
            SOURCE_B.as_bytes()
        );
        assert!(
            String::from_utf8_lossy(&after[Path::new(MANIFEST)]).contains("agg1-bbbbbbbb-n48-k14")
        );
    }

    #[test]
    fn an_old_style_manifest_entry_of_the_same_circuit_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(MANIFEST),
            r#"{"AggregateVerifierN48": "agg1-aaaaaaaa-n48-k14", "Other": "x"}"#,
        )
        .unwrap();
        install(
            dir.path(),
            "agg1-aaaaaaaa-n48-k14",
            SOURCE_A,
            Overwrite::Refuse,
        )
        .unwrap();
        let manifest = read_manifest(&dir.path().join(MANIFEST)).unwrap();
        assert_eq!(
            manifest["AggregateVerifierN48"]["circuit_id"],
            "agg1-aaaaaaaa-n48-k14"
        );
        assert_eq!(manifest["Other"], "x", "other entries are kept");
    }

    #[test]
    fn a_corrupt_manifest_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(MANIFEST), "{ not json").unwrap();
        let before = snapshot(dir.path());
        let err = install(
            dir.path(),
            "agg1-aaaaaaaa-n48-k14",
            SOURCE_A,
            Overwrite::Force,
        )
        .unwrap_err();
        assert!(matches!(err, VerifierError::Manifest { .. }), "{err}");
        assert_eq!(snapshot(dir.path()), before);
    }

    /// The markets' gate refuses public inputs that are not below `ProofGate.SNARK_SCALAR_FIELD`
    /// because the generated verifier reduces them mod r; the constant must be this crate's
    /// field modulus (it once was a wrong number, which let `[r, constant)` through).
    #[test]
    fn the_solidity_gate_uses_the_scalar_field_modulus() {
        use alloy::primitives::U256;
        use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
        let source = include_str!("../../contracts/libraries/ProofGate.sol");
        let digits: String = source
            .split("SNARK_SCALAR_FIELD =")
            .nth(1)
            .expect("ProofGate.sol declares SNARK_SCALAR_FIELD")
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        let declared = U256::from_str_radix(&digits, 10).unwrap();
        let modulus = U256::from_str_radix(Fr::MODULUS.trim_start_matches("0x"), 16).unwrap();
        assert_eq!(declared, modulus);
    }
}
