//! Shared by the real-proof test binaries (`end_to_end`, `eligibility`): deterministic test
//! datasets, and the committed artifacts the forge suite reads (generated Solidity verifiers,
//! proof fixtures), which a test run *checks* against what the current code generates instead of
//! rewriting them. With `ZKCOHORT_UPDATE_FIXTURES=1` (`make fixtures`) they are rewritten
//! instead, to be committed.
//!
//! Proofs are randomised (fresh blinding every run), so a fixture is checked in two parts:
//! every field except `proof` and `calldata` must equal what the current code computes for the
//! same deterministic inputs (instances, commitments, nullifiers, counts...), and every committed
//! proof must verify natively against today's verifying key with the committed instances (and
//! its `calldata`, if any, must be those instances followed by that proof).

use std::{
    fs,
    path::{Path, PathBuf},
};

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr},
    poly::kzg::commitment::ParamsKZG,
};
use serde_json::Value;
use zkcohort::{
    commitment::{self, fr_from_hex, fr_to_hex},
    dataset::{write_atomic, CommitmentInfo, CommittedDataset, Dataset, DatasetDir},
    evm,
    keys::CircuitKeys,
    membership::{Identity, MemberTree},
    poseidon, proof,
};

/// Set to `1` to rewrite the committed verifiers and fixtures instead of checking them.
pub(crate) const UPDATE_VAR: &str = "ZKCOHORT_UPDATE_FIXTURES";

/// How to refresh what these tests check, printed with every mismatch.
pub(crate) const REFRESH: &str = "refresh with `make fixtures` (= ZKCOHORT_UPDATE_FIXTURES=1 cargo test \
     --release --locked -p zkcohort --test end_to_end --test eligibility --test fold_market), review the diff and \
     commit it";

/// Keys whose values are random per proving run: checked by verification, not by equality.
/// A `forged_proof` is what the real prover makes from a witness that does not satisfy the
/// circuit (an attacker's best attempt): checked to be *rejected*.
const RANDOMISED: [&str; 3] = ["proof", "calldata", "forged_proof"];

/// The repository root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Whether this run rewrites the committed artifacts (`ZKCOHORT_UPDATE_FIXTURES=1`).
pub(crate) fn updating() -> bool {
    std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1")
}

/// The identity the patient of record `i` of the dataset committed with `seed` made (seeded,
/// so fixtures are reproducible; a real patient's is random).
pub(crate) fn identity(seed: u64, i: usize) -> Identity {
    Identity {
        secret: poseidon::hash(&[
            Fr::from(0x6964_656e_7469_7479),
            Fr::from(seed),
            Fr::from(i as u64),
        ]),
    }
}

/// `dataset` written to a fresh directory (every patient having given an identity, see
/// [`identity`]) and committed (at `capacity`, default its size) with
/// a salt derived from `seed` instead of a random one, so commitments, membership roots,
/// patient secrets and nullifiers (and so every public input of a fixture) are reproducible.
/// The crate's own `commit` fixes layout, schema hash and counts; its loader then re-derives
/// and checks the commitment and membership root from the seeded salt.
pub(crate) fn committed(
    dataset: &Dataset,
    capacity: Option<usize>,
    seed: u64,
) -> (tempfile::TempDir, CommittedDataset) {
    let dir = tempfile::tempdir().unwrap();
    let store = DatasetDir::new(dir.path());
    store.write_dataset(dataset).unwrap();
    let identities: Vec<_> = (0..dataset.records.len())
        .map(|i| (i, identity(seed, i).commitment()))
        .collect();
    store
        .add_identities(&identities, Default::default())
        .unwrap();
    let random = store.commit(capacity).unwrap();
    // "testsalt": a domain tag, so the salt is no small number that instances might contain.
    let salt = poseidon::hash(&[Fr::from(0x7465_7374_7361_6c74), Fr::from(seed)]);
    let packed = random.layout.pack(&dataset.records);
    let info = CommitmentInfo {
        commitment: fr_to_hex(&commitment::commit(salt, &packed)),
        member_root: fr_to_hex(
            &MemberTree::build(&random.layout, salt, &dataset.records, &random.identities).root(),
        ),
        ..random.info
    };
    let salt_file = serde_json::json!({ "warning": "test salt", "salt": fr_to_hex(&salt) });
    write_atomic(
        &dir.path().join("salt.json"),
        &serde_json::to_vec_pretty(&salt_file).unwrap(),
    )
    .unwrap();
    write_atomic(
        &dir.path().join("commitment.json"),
        &serde_json::to_vec_pretty(&info).unwrap(),
    )
    .unwrap();
    let data = store.load_committed().unwrap();
    data.member_tree().unwrap();
    assert_eq!(data.salt, salt);
    (dir, data)
}

/// The circuit's Solidity verifier in `contracts/verifiers/` (and its entries in the manifests
/// next to it): checked byte for byte against the one generated from today's keys, or
/// rewritten when updating. Returns the contract name.
pub(crate) fn verifier(params: &ParamsKZG<Bn256>, keys: &CircuitKeys) -> String {
    let dir = root().join("contracts/verifiers");
    if updating() {
        // Updating rewrites the verifiers from today's code, whichever circuit they held.
        let force = zkcohort::dataset::Overwrite::Force;
        return evm::write_verifier_with(&dir, params, keys, force).unwrap_or_else(|e| {
            panic!(
                "cannot write the verifier of {}: {e}",
                keys.config.circuit_id
            )
        });
    }
    // Generate into a copy of the committed directory, with the crate's own writer (source and
    // manifests), and compare the two directories.
    let name = evm::contract_name(keys);
    let tmp = tempfile::tempdir().unwrap();
    for f in files(&dir) {
        fs::copy(dir.join(&f), tmp.path().join(&f)).unwrap();
    }
    if let Err(e) = evm::write_verifier(tmp.path(), params, keys) {
        panic!(
            "contracts/verifiers/ does not hold the verifier of circuit {} ({e}): {REFRESH}",
            keys.config.circuit_id
        );
    }
    let mut names = files(&dir);
    names.extend(files(tmp.path()));
    names.sort();
    names.dedup();
    let stale: Vec<String> = names
        .into_iter()
        .filter(|f| fs::read(dir.join(f)).ok() != fs::read(tmp.path().join(f)).ok())
        .map(|f| format!("contracts/verifiers/{f}"))
        .collect();
    assert!(
        stale.is_empty(),
        "{}: not what the verifying key of circuit {} generates (verifiers are generated, \
         never edited by hand): {REFRESH}",
        stale.join(", "),
        keys.config.circuit_id
    );
    name
}

/// Names of the regular files in `dir` (temporary `*.tmp` files aside).
fn files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| !f.ends_with(".tmp"))
        .collect()
}

/// The proof fixture `path` (relative to the repository root) that the forge suite reads:
/// checked against `fresh`, the same fixture built from fresh proofs by this run, or rewritten
/// with `fresh` when updating. `circuits` are the circuits whose proofs it holds; a proof is
/// verified with the circuit named by the nearest `circuit_id` at or above it.
pub(crate) fn fixture(path: &str, fresh: &Value, circuits: &[(&ParamsKZG<Bn256>, &CircuitKeys)]) {
    let file = root().join(path);
    if updating() {
        verify_proofs(fresh, None, circuits, "$", &mut Vec::new());
        let text = serde_json::to_string_pretty(fresh).unwrap() + "\n";
        write_atomic(&file, text.as_bytes()).unwrap();
        return;
    }
    let committed: Value = match fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path} is not valid JSON ({e}): {REFRESH}")),
        Err(e) => panic!("{path} cannot be read ({e}): {REFRESH}"),
    };
    let mut problems = Vec::new();
    compare(&committed, fresh, "$", &mut problems);
    verify_proofs(&committed, None, circuits, "$", &mut problems);
    if !problems.is_empty() {
        let shown = problems.len().min(12);
        panic!(
            "{path} is stale: it no longer matches what the current code proves ({} problem(s)):\n  {}{}\n{REFRESH}",
            problems.len(),
            problems[..shown].join("\n  "),
            if problems.len() > shown { "\n  ..." } else { "" },
        );
    }
}

/// Differences between `committed` and `fresh`, ignoring the values (not the presence) of the
/// randomised keys.
fn compare(committed: &Value, fresh: &Value, at: &str, problems: &mut Vec<String>) {
    match (committed, fresh) {
        (Value::Object(c), Value::Object(f)) => {
            for key in c.keys().filter(|k| !f.contains_key(*k)) {
                problems.push(format!("{at}.{key}: no longer generated"));
            }
            for (key, fv) in f {
                let here = format!("{at}.{key}");
                match c.get(key) {
                    None => problems.push(format!("{here}: missing")),
                    Some(_) if RANDOMISED.contains(&key.as_str()) => {}
                    Some(cv) => compare(cv, fv, &here, problems),
                }
            }
        }
        (Value::Array(c), Value::Array(f)) if c.len() == f.len() => {
            for (i, (cv, fv)) in c.iter().zip(f).enumerate() {
                compare(cv, fv, &format!("{at}[{i}]"), problems);
            }
        }
        (Value::Array(c), Value::Array(f)) => problems.push(format!(
            "{at}: {} entries committed, {} generated",
            c.len(),
            f.len()
        )),
        (c, f) if c != f => problems.push(format!("{at}: committed {c}, generated {f}")),
        _ => {}
    }
}

/// Verifies every `{instances, proof[, calldata]}` object in `value` with today's keys.
fn verify_proofs(
    value: &Value,
    circuit_id: Option<&str>,
    circuits: &[(&ParamsKZG<Bn256>, &CircuitKeys)],
    at: &str,
    problems: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            let circuit_id = map.get("circuit_id").and_then(Value::as_str).or(circuit_id);
            if let Some(p) = map.get("proof").filter(|p| !p.is_null()) {
                if let Err(e) = verify_one(map, p, circuit_id, circuits) {
                    problems.push(format!("{at}: {e}"));
                }
            }
            if let Some(p) = map.get("forged_proof") {
                if verify_one(map, p, circuit_id, circuits).is_ok() {
                    problems.push(format!("{at}: a forged proof verifies"));
                }
            }
            for (key, v) in map {
                verify_proofs(v, circuit_id, circuits, &format!("{at}.{key}"), problems);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                verify_proofs(v, circuit_id, circuits, &format!("{at}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn verify_one(
    map: &serde_json::Map<String, Value>,
    proof: &Value,
    circuit_id: Option<&str>,
    circuits: &[(&ParamsKZG<Bn256>, &CircuitKeys)],
) -> Result<(), String> {
    let circuit_id = circuit_id.ok_or("a proof without a circuit_id")?;
    let (params, keys) = circuits
        .iter()
        .find(|(_, k)| k.config.circuit_id == circuit_id)
        .ok_or_else(|| format!("circuit {circuit_id} is not one this test generates"))?;
    let instances = map
        .get("instances")
        .and_then(Value::as_array)
        .ok_or("a proof without instances")?
        .iter()
        .map(|v| v.as_str().and_then(fr_from_hex))
        .collect::<Option<Vec<Fr>>>()
        .ok_or("an instance is not a field element")?;
    let hex_bytes = |v: &Value| {
        v.as_str()
            .and_then(|s| s.strip_prefix("0x"))
            .and_then(|s| hex::decode(s).ok())
    };
    let bytes = hex_bytes(proof).ok_or("the proof is not 0x-prefixed hex")?;
    proof::verify_instances(params, keys.pk.get_vk(), &instances, &bytes)
        .map_err(|e| format!("the proof does not verify with today's key of {circuit_id}: {e}"))?;
    if let Some(calldata) = map.get("calldata") {
        let expected = snark_verifier_sdk::evm::encode_calldata(&[instances], &bytes);
        if hex_bytes(calldata) != Some(expected) {
            return Err("calldata is not the instances followed by the proof".into());
        }
    }
    Ok(())
}

/// A local chain for a test: anvil (logging to `<dir>/anvil.log`) and the forge deploy
/// script's contracts on it, the deployment also written to `<dir>/deployment.json` (what
/// `--deployment` / `ZKCOHORT_DEPLOYMENT` take). `tag` names the script's scratch output under
/// `deployments/` (forge's fs permissions allow nowhere else), removed at once.
// Used by the chain tests (`attestation_market`, `disclosure`), not by every binary.
#[allow(dead_code)]
pub(crate) fn local_market(
    root: &Path,
    tag: &str,
    dir: &Path,
) -> (
    zkcohort::chain::LocalNode,
    zkcohort::chain::Deployment,
    PathBuf,
) {
    use zkcohort::chain::{Deployment, LocalNode, ANVIL_DEV_KEYS};
    let node = LocalNode::start(root, None, &dir.join("anvil.log")).unwrap();
    let port = node.url.rsplit(':').next().unwrap().to_owned();
    let out = root
        .join("deployments")
        .join(format!("test-{tag}-{port}.json"));
    let deployer = ANVIL_DEV_KEYS[0].parse().unwrap();
    let deployment = Deployment::deploy(root, &node.url, &deployer, &out);
    let _ = fs::remove_file(&out);
    let deployment = deployment.unwrap();
    let file = dir.join("deployment.json");
    fs::write(&file, serde_json::to_vec_pretty(&deployment).unwrap()).unwrap();
    (node, deployment, file)
}
