//! Real proofs of the commit-and-prove aggregate circuit (issue #8, design N(W)) for the
//! market's forge suite (`test/FoldMarket.t.sol`): its generated Solidity verifier, and three
//! hospitals answering one query, each proof bound to the suite's market, query and hospital.
//! The dataset commitments are computed without proving (`fast::commit`) and must equal the
//! first `64 · W` bytes of every proof: what `QueryMarket` compares with the registry.
//!
//! Checked against the committed copies (the verifier byte for byte, the committed proofs
//! verified with today's keys, every other value recomputed), rewritten only with
//! `ZKCOHORT_UPDATE_FIXTURES=1` (see `common`).

#[allow(dead_code)]
mod common;

use std::fs;

use alloy::{
    primitives::{address, keccak256, Address},
    signers::local::PrivateKeySigner,
};
use common::{root, updating, REFRESH};
use halo2_base::halo2_proofs::{
    halo2curves::bn256::Bn256,
    poly::{commitment::Params, kzg::commitment::ParamsKZG},
};
use rand::rngs::OsRng;
use serde_json::{json, Value};
use zkcohort::{
    circuit::fast::{
        self,
        commit::data_commitment,
        fold::{self, FoldCircuit, FoldParams, FoldQuery},
        record::FoldSchema,
        SeededRng,
    },
    commitment::{fr_from_hex, fr_to_hex},
    dataset::{write_atomic, Dataset, Overwrite},
    evm,
    keys::{FoldKeys, KeyStore, ParamsSource},
    query::{ClaimBinding, QuerySpec},
    schema::Schema,
    Fr,
};

/// Record slots of the fixture's circuit.
const CAPACITY: usize = 48;
/// Masking rows per data column (a small hiding budget: tests only).
const MASK_ROWS: usize = 16;
/// Data columns: at `W = 1` the clinical schema's verifier costs less gas than the Poseidon
/// circuit's (356k); at `W = 2` it proves faster but costs more (379k).
const SLOTS: usize = 1;
/// The forge suite's chain.
const FORGE_CHAIN_ID: u64 = 31337;
/// Where `test/FoldMarket.t.sol` deploys its QueryMarket (`deployCodeTo`).
const FORGE_MARKET: Address = address!("00000000000000000000000000000000f01d7e57");
/// The contract name of the fixture's verifier (`contracts/verifiers/<name>.sol`).
const VERIFIER: &str = "FoldVerifierN48W1";
const FIXTURE: &str = "test/fixtures/fold_proofs.json";
/// The attestation circuit of the same shape, its verifier and its fixture
/// (`test/FoldMarket.t.sol`'s `FoldAttestationTest`).
const ATTEST_VERIFIER: &str = "FoldVerifierN48W1Attest";
const ATTEST_FIXTURE: &str = "test/fixtures/fold_attest_proofs.json";
/// The attestation's threshold on the mean BMI: hospital A's cohort (26.18) is below it,
/// hospital B's (27.04) above, hospital C's is below the floor.
const ATTEST_THRESHOLD: &str = "26.6";
/// The attestation circuit's masking rows: a query budget of 8 proofs, the circuit `dataset
/// commit --fold --attest --capacity 48 --query-budget 8 --statistics bmi` commits for, so a
/// dataset committed from the command line answers with the committed verifier
/// (`tests/attestation_market.rs` claims with it on the deployed market).
const ATTEST_MASK_ROWS: usize = 17;
/// The hospitals of both fixtures: (records, dataset seed), answering as `hospital-a`, `-b`,
/// `-c`.
const HOSPITALS: [(usize, u64); 3] = [(45, 3), (38, 4), (12, 5)];
const LABELS: [&str; 3] = ["hospital-a", "hospital-b", "hospital-c"];

/// forge-std's `makeAddr(label)`.
fn make_addr(label: &str) -> Address {
    PrivateKeySigner::from_bytes(&keccak256(label.as_bytes()))
        .unwrap()
        .address()
}

struct Setup {
    schema: Schema,
    fold: FoldSchema,
    params: FoldParams,
    kzg: ParamsKZG<Bn256>,
    keys: FoldKeys,
    query: QuerySpec,
    statistic: usize,
}

fn setup() -> Setup {
    setup_with(None)
}

/// The fixture's circuit and query, as an attestation "mean ≥ `threshold`" if given.
fn setup_with(threshold: Option<&str>) -> Setup {
    let schema = Schema::clinical_default();
    let fold = FoldSchema::of(&schema).unwrap();
    let mut query = QuerySpec::load(&root().join("examples/query-all-adults-bmi.json")).unwrap();
    if let Some(t) = threshold {
        query.name = format!("{}: mean at least {t}", query.name);
        query.attest = Some(zkcohort::query::Attest {
            mean_at_least: json!(t),
        });
    }
    let statistic = query.compile(&schema).unwrap().statistic as usize;
    let mask_rows = if threshold.is_some() {
        ATTEST_MASK_ROWS
    } else {
        MASK_ROWS
    };
    let mut params = fold
        .fold_params(CAPACITY, mask_rows, SLOTS, &[statistic])
        .unwrap();
    params.attestation = threshold.is_some();
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    let (kzg, keys) = store.fold_circuit(&fold, &params).unwrap();
    Setup {
        schema,
        fold,
        params,
        kzg,
        keys,
        query,
        statistic,
    }
}

/// Checks that the committed `contracts/verifiers/<name>.sol` is what today's verifying key
/// of `keys` generates, byte for byte, and that the committed manifest deploys it as that
/// circuit's verifier (what `Deploy.s.sol` registers); rewrites both when updating.
fn check_verifier(kzg: &ParamsKZG<Bn256>, keys: &FoldKeys, name: &str) {
    let dir = root().join("contracts/verifiers");
    if updating() {
        let written = evm::write_fold_verifier(&dir, kzg, keys, Overwrite::Force).unwrap();
        assert_eq!(written, name);
    }
    let source = evm::verifier_source(
        kzg,
        &keys.params,
        keys.pk.get_vk(),
        keys.shape.inputs().len(),
        name,
        &keys.circuit_id,
    );
    let committed = fs::read_to_string(dir.join(format!("{name}.sol"))).unwrap_or_default();
    assert!(
        committed == source,
        "contracts/verifiers/{name}.sol is not what today's verifying key generates: {REFRESH}"
    );
    let manifest = evm::Manifest::load(&dir.join(evm::MANIFEST)).unwrap();
    let (found, entry) = manifest
        .find(&keys.circuit_id)
        .unwrap_or_else(|| panic!("{} is not in the manifest: {REFRESH}", keys.circuit_id));
    assert_eq!(found, name);
    assert_eq!(
        (
            entry.vk_hash.as_deref(),
            entry.data_columns,
            entry.constants,
            entry.cells()
        ),
        (
            Some(keys.vk_hash.as_str()),
            keys.shape.slots,
            keys.shape.inputs().constants(),
            keys.shape.cells()
        ),
        "the manifest's entry for {name} is stale: {REFRESH}"
    );
}

/// A hospital's dataset salt (reproducible).
fn salt(seed: u64) -> [u8; 32] {
    keccak256(format!("zkcohort fold fixture salt {seed}")).0
}

/// The suite's query as the fold circuit takes it, bound to `claimant`'s claim of query 1.
fn query(s: &Setup, claimant: Address) -> FoldQuery {
    let constants = s.query.compile(&s.schema).unwrap();
    let mut q = s.fold.compile(&constants, &[s.statistic]).unwrap();
    q.context = ClaimBinding {
        chain_id: FORGE_CHAIN_ID,
        market: FORGE_MARKET,
        query_id: 1,
        claimant,
    }
    .context();
    q
}

/// Everything of a hospital's answer but the proof (deterministic), and its public inputs.
fn answer(s: &Setup, records: usize, seed: u64, claimant: Address) -> (Value, Vec<Fr>) {
    let data = Dataset::synthesize(records, seed, 2);
    let encoded: Vec<Vec<u64>> = data.records.iter().map(|r| s.fold.encode(r)).collect();
    let constants = s.query.compile(&s.schema).unwrap();
    let q = query(s, claimant);
    let result = fold::evaluate(&s.params, &encoded, &q);
    let want = zkcohort::query::evaluate(&s.schema, &data.records, &constants);
    assert_eq!(
        (result.count, result.suppressed),
        (want.count, want.suppressed),
        "the fold circuit answers as the plain computation"
    );
    let commitment = data_commitment(&s.kzg, &s.params, &salt(seed), &encoded).unwrap();
    let instances = s.params.inputs().instances(&q, &result);
    let entry = json!({
        "commitment": fr_to_hex(&commitment.hash()),
        "data_commitment": format!("0x{}", hex::encode(commitment.to_proof_bytes())),
        "record_count": data.records.len(),
        "instances": instances.iter().map(fr_to_hex).collect::<Vec<_>>(),
        "count": result.count,
        "nonmissing": result.nonmissing,
        "sum": result.sum.to_string(),
        "sum_squares": result.sum_squares.to_string(),
        "suppressed": result.suppressed,
    });
    (entry, instances)
}

fn prove(s: &Setup, records: usize, seed: u64, instances: &[Fr], claimant: Address) -> Vec<u8> {
    let data = Dataset::synthesize(records, seed, 2);
    let encoded: Vec<Vec<u64>> = data.records.iter().map(|r| s.fold.encode(r)).collect();
    let q = query(s, claimant);
    let circuit = FoldCircuit::new(&s.params, s.kzg.k(), &salt(seed), &encoded, &q).unwrap();
    let rng = SeededRng::with_unusable(&salt(seed), SLOTS, s.params.unusable_rows(), OsRng);
    fast::prove(&s.kzg, &s.keys.pk, circuit, instances, rng).unwrap()
}

fn words(v: &Value) -> Vec<Fr> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|w| fr_from_hex(w.as_str().unwrap()).unwrap())
        .collect()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

#[test]
fn writes_fold_market_fixture() {
    let s = setup();
    let (labels, shapes) = (LABELS, HOSPITALS);
    let layout = s.params.inputs();
    let mut hospitals = Vec::new();
    for (i, &(records, seed)) in shapes.iter().enumerate() {
        let (entry, _) = answer(&s, records, seed, make_addr(labels[i]));
        assert_eq!(entry["suppressed"], json!(i == 2), "hospital {i}");
        hospitals.push(entry);
    }
    let constants: Vec<Value> =
        hospitals[0]["instances"].as_array().unwrap()[..layout.constants()].to_vec();
    let mut fixture = json!({
        "circuit_id": s.keys.circuit_id,
        "verifier": VERIFIER,
        "data_columns": SLOTS,
        "schema_hash": format!("0x{}", hex::encode(s.schema.hash())),
        "chain_id": FORGE_CHAIN_ID,
        "market": FORGE_MARKET,
        "query_id": 1,
        "claimants": labels.iter().map(|l| make_addr(l)).collect::<Vec<_>>(),
        "query_hash": format!("0x{}", hex::encode(s.query.hash())),
        "query_spec": format!("0x{}", hex::encode(s.query.document())),
        "constants": constants,
        "hospitals": hospitals,
    });
    check_fixture(&s, &mut fixture, FIXTURE, VERIFIER);
}

/// Writes `fixture` with a proof per hospital to `name` when updating; then checks that the
/// committed verifier is today's, that the committed proofs verify with today's key and start
/// with their dataset's commitment, and that everything else is what today's code computes.
fn check_fixture(s: &Setup, fixture: &mut Value, name: &str, verifier: &str) {
    let file = root().join(name);
    if updating() {
        for (i, &(records, seed)) in HOSPITALS.iter().enumerate() {
            let h = &mut fixture["hospitals"][i];
            let proof = prove(
                s,
                records,
                seed,
                &words(&h["instances"]),
                make_addr(LABELS[i]),
            );
            h["proof"] = json!(format!("0x{}", hex::encode(proof)));
        }
        let text = serde_json::to_string_pretty(&fixture).unwrap() + "\n";
        write_atomic(&file, text.as_bytes()).unwrap();
    }
    check_verifier(&s.kzg, &s.keys, verifier);
    // The committed proofs verify with today's key, start with their dataset's commitment,
    // and everything else in the fixture is what today's code computes.
    let committed: Value = serde_json::from_slice(&fs::read(&file).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}: {REFRESH}"));
    for (i, h) in committed["hospitals"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let proof = bytes(&h["proof"]);
        let instances = words(&h["instances"]);
        assert!(
            fast::verify(&s.kzg, s.keys.pk.get_vk(), &instances, &proof),
            "{name}: hospital {i}'s proof does not verify: {REFRESH}"
        );
        let data = bytes(&h["data_commitment"]);
        assert_eq!(
            &proof[..data.len()],
            &data[..],
            "hospital {i}'s data commitment"
        );
        let mut without_proof = h.clone();
        without_proof.as_object_mut().unwrap().remove("proof");
        fixture["hospitals"][i]
            .as_object_mut()
            .unwrap()
            .remove("proof");
        assert_eq!(
            without_proof, fixture["hospitals"][i],
            "{name}: hospital {i} is stale: {REFRESH}"
        );
    }
    let mut rest = committed.clone();
    rest.as_object_mut().unwrap().remove("hospitals");
    let mut fresh = fixture.clone();
    fresh.as_object_mut().unwrap().remove("hospitals");
    assert_eq!(rest, fresh, "{name} is stale: {REFRESH}");
}

/// Real attestation proofs for `FoldAttestationTest`: the same hospitals as the numbers
/// fixture answer "the mean BMI of consenting adults is at least 26.6" with the attestation
/// circuit; A says no, B yes, C (below the floor) no.
#[test]
fn writes_fold_attestation_fixture() {
    let s = setup_with(Some(ATTEST_THRESHOLD));
    let layout = s.params.inputs();
    let mut hospitals = Vec::new();
    for (i, &(records, seed)) in HOSPITALS.iter().enumerate() {
        let data = Dataset::synthesize(records, seed, 2);
        let encoded: Vec<Vec<u64>> = data.records.iter().map(|r| s.fold.encode(r)).collect();
        let q = query(&s, make_addr(LABELS[i]));
        let verdict = fold::evaluate_attestation(&s.params, &encoded, &q);
        assert_eq!(verdict.holds, i == 1, "hospital {i}'s verdict");
        let commitment = data_commitment(&s.kzg, &s.params, &salt(seed), &encoded).unwrap();
        let instances = layout.attestation_instances(&q, &verdict);
        hospitals.push(json!({
            "commitment": fr_to_hex(&commitment.hash()),
            "data_commitment": format!("0x{}", hex::encode(commitment.to_proof_bytes())),
            "record_count": data.records.len(),
            "instances": instances.iter().map(fr_to_hex).collect::<Vec<_>>(),
            "verdict": verdict.holds,
        }));
    }
    let constants: Vec<Value> =
        hospitals[0]["instances"].as_array().unwrap()[..layout.constants()].to_vec();
    let mut fixture = json!({
        "circuit_id": s.keys.circuit_id,
        "verifier": ATTEST_VERIFIER,
        "data_columns": SLOTS,
        "schema_hash": format!("0x{}", hex::encode(s.schema.hash())),
        "chain_id": FORGE_CHAIN_ID,
        "market": FORGE_MARKET,
        "query_id": 1,
        "claimants": LABELS.iter().map(|l| make_addr(l)).collect::<Vec<_>>(),
        "query_hash": format!("0x{}", hex::encode(s.query.hash())),
        "query_spec": format!("0x{}", hex::encode(s.query.document())),
        "constants": constants,
        "hospitals": hospitals,
    });
    check_fixture(&s, &mut fixture, ATTEST_FIXTURE, ATTEST_VERIFIER);
}

/// The fold circuit's keys are generated once and read back from the key cache: the same
/// verifying key either way.
#[test]
fn fold_keys_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path(), ParamsSource::Dev);
    let s = setup();
    let (_, fresh) = store.fold_circuit(&s.fold, &s.params).unwrap();
    let cached_dir = dir.path().join("keys");
    let entries: Vec<_> = fs::read_dir(&cached_dir)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    // Named by the constraint system too: a circuit changed under the same id misses.
    let name = entries[0].file_name().into_string().unwrap();
    let digest = s.params.constraints_digest();
    assert!(name.ends_with(&format!("-{digest}")), "{name}");
    assert_eq!(
        digest,
        s.params.clone().constraints_digest(),
        "deterministic"
    );
    let mut other = s.params.clone();
    other.dominance = Some(zkcohort::circuit::fast::fold::Dominance { percent: 90 });
    assert_ne!(other.constraints_digest(), digest);
    let (_, cached) = store.fold_circuit(&s.fold, &s.params).unwrap();
    assert_eq!(fresh.vk_hash, cached.vk_hash);
    assert_eq!(fresh.vk_hash, s.keys.vk_hash, "keygen is deterministic");
    assert_eq!(fresh.circuit_id, s.keys.circuit_id);
}

/// The product path: a dataset directory committed for the fold circuit (`fold.json`), a
/// proof artifact of a query against it, and offline verification against a manifest holding
/// the circuit's generated verifier; every tampered field is refused.
#[test]
fn fold_artifact_proves_and_verifies_offline() {
    use zkcohort::{
        dataset::DatasetDir,
        error::VerifyError,
        evm::Manifest,
        keys::FoldSpec,
        proof::{self, fold as answer, Artifact},
    };
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = DatasetDir::new(dir.path().join("hospital"));
    data_dir
        .write_dataset(&Dataset::synthesize(45, 3, 2))
        .unwrap();
    let committed = data_dir.commit(None).unwrap();
    let spec = FoldSpec {
        capacity: CAPACITY,
        mask_rows: MASK_ROWS,
        data_columns: SLOTS,
        statistics: vec![s.statistic],
        strata: None,
        attestation: false,
        rounding: None,
        dominance: None,
    };
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    let (kzg, keys) = store.fold_keys(&s.schema, &spec).unwrap();
    assert_eq!(keys.vk_hash, s.keys.vk_hash);
    let info = answer::commit(&committed, &kzg, &keys, &spec).unwrap();
    assert_eq!(info.query_budget, s.params.query_budget());
    data_dir.write_fold_commitment(&info).unwrap();
    assert_eq!(data_dir.fold_commitment().unwrap(), Some(info.clone()));

    let binding = ClaimBinding {
        chain_id: FORGE_CHAIN_ID,
        market: FORGE_MARKET,
        query_id: 7,
        claimant: make_addr("hospital-a"),
    };
    let a = answer::prove(&keys, &kzg, &committed, &info, &s.query, Some(&binding)).unwrap();
    assert_eq!(a.public.commitment, info.commitment);
    assert!(a.proof.starts_with(&info.data_commitment));
    let want = zkcohort::query::evaluate(
        &s.schema,
        &committed.dataset.records,
        &s.query.compile(&s.schema).unwrap(),
    );
    assert_eq!(a.public.result, want, "the proof releases the plain answer");

    // A manifest holding the circuit's verifier, as `make fixtures` / `setup` write it.
    let verifiers = dir.path().join("verifiers");
    let name = evm::write_fold_verifier(&verifiers, &kzg, &keys, Default::default()).unwrap();
    let manifest = Manifest::load(&verifiers.join(evm::MANIFEST)).unwrap();
    let bytes = serde_json::to_vec_pretty(&a).unwrap();
    let parsed = Artifact::parse(&bytes).unwrap();
    assert!(matches!(parsed, Artifact::Fold(_)));
    let verified = proof::verify_artifact(&parsed, &store, &manifest).unwrap();
    assert_eq!(
        (verified.verifier.as_str(), verified.vk_hash.as_str()),
        (name.as_str(), keys.vk_hash.as_str())
    );

    let refused = |edit: &dyn Fn(&mut answer::FoldArtifact)| {
        let mut t = a.clone();
        edit(&mut t);
        answer::verify(&t, &store, &manifest).unwrap_err()
    };
    // Another result, count or non-missing count: the instances no longer encode it.
    assert!(matches!(
        refused(&|t| t.public.result.count += 1),
        VerifyError::Public { .. }
    ));
    assert!(matches!(
        refused(&|t| t.public.nonmissing += 1),
        VerifyError::Public { .. }
    ));
    // Another binding: the context differs.
    assert!(matches!(
        refused(&|t| t.binding.as_mut().unwrap().query_id = 8),
        VerifyError::Public { .. }
    ));
    // Another commitment than the proof's data columns.
    assert!(matches!(
        refused(&|t| t.public.commitment = fr_to_hex(&Fr::from(5u64))),
        VerifyError::DataCommitment { .. }
    ));
    // A byte of the proof after the commitment (calldata kept consistent): halo2 rejects it.
    let tampered = |t: &mut answer::FoldArtifact| {
        let mut p = hex::decode(&t.proof[2..]).unwrap();
        p[200] ^= 1;
        t.proof = format!("0x{}", hex::encode(&p));
        let instances: Vec<Fr> = t
            .instances
            .iter()
            .map(|w| fr_from_hex(w).unwrap())
            .collect();
        t.calldata = format!(
            "0x{}",
            hex::encode(
                snark_verifier_sdk::snark_verifier::loader::evm::encode_calldata(&[instances], &p)
            )
        );
    };
    assert!(matches!(refused(&tampered), VerifyError::Rejected(_)));
    // Another spec: the query hash, then the constants.
    assert!(matches!(
        refused(&|t| t.query.min_cohort += 1),
        VerifyError::SpecHash { .. }
    ));
    // Another circuit spec (capacity): the circuit id no longer matches.
    assert!(matches!(
        refused(&|t| t.fold.capacity += 1),
        VerifyError::CircuitId { .. }
    ));
}

/// The demo's verifier (`make demo`: `Scenario::standard`'s hospitals answer with it) is
/// committed and current, so the demo deploys it without writing into the work tree. A
/// writer (`make fixtures` runs the `writes_` tests first, updating): it rewrites the
/// verifier when the circuit changes.
#[test]
fn writes_demo_fold_verifier() {
    use zkcohort::{demo::Scenario, keys::FoldSpec};
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    let demo = Scenario::standard(&root(), store.clone());
    let schema = Schema::clinical_default();
    let query = QuerySpec::load(&demo.query).unwrap();
    let spec = FoldSpec {
        capacity: demo.capacity,
        mask_rows: demo.mask_rows,
        data_columns: demo.data_columns,
        statistics: vec![query.compile(&schema).unwrap().statistic as usize],
        strata: None,
        attestation: false,
        rounding: None,
        dominance: None,
    };
    let (kzg, keys) = store.fold_keys(&schema, &spec).unwrap();
    check_verifier(&kzg, &keys, &evm::fold_contract_name(&keys));
}
