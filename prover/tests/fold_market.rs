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
    dataset::{write_atomic, Dataset},
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
    let schema = Schema::clinical_default();
    let fold = FoldSchema::of(&schema).unwrap();
    let query = QuerySpec::load(&root().join("examples/query-all-adults-bmi.json")).unwrap();
    let statistic = query.compile(&schema).unwrap().statistic as usize;
    let params = fold
        .fold_params(CAPACITY, MASK_ROWS, SLOTS, &[statistic])
        .unwrap();
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

/// The verifier's source, generated from today's verifying key.
fn verifier_source(s: &Setup) -> String {
    evm::verifier_source(
        &s.kzg,
        &s.keys.params,
        s.keys.pk.get_vk(),
        s.params.inputs().len(),
        VERIFIER,
        &s.keys.circuit_id,
    )
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
    let labels = ["hospital-a", "hospital-b", "hospital-c"];
    let shapes = [(45, 3), (38, 4), (12, 5)];
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
    let source = verifier_source(&s);
    let sol = root().join(format!("contracts/verifiers/{VERIFIER}.sol"));
    let file = root().join(FIXTURE);
    if updating() {
        for (i, &(records, seed)) in shapes.iter().enumerate() {
            let h = &mut fixture["hospitals"][i];
            let proof = prove(
                &s,
                records,
                seed,
                &words(&h["instances"]),
                make_addr(labels[i]),
            );
            h["proof"] = json!(format!("0x{}", hex::encode(proof)));
        }
        write_atomic(&sol, source.as_bytes()).unwrap();
        let text = serde_json::to_string_pretty(&fixture).unwrap() + "\n";
        write_atomic(&file, text.as_bytes()).unwrap();
    }
    // The committed verifier is today's, byte for byte.
    let committed_sol = fs::read_to_string(&sol).unwrap_or_default();
    assert!(
        committed_sol == source,
        "contracts/verifiers/{VERIFIER}.sol is not what today's verifying key generates: {REFRESH}"
    );
    // The committed proofs verify with today's key, start with their dataset's commitment,
    // and everything else in the fixture is what today's code computes.
    let committed: Value = serde_json::from_slice(&fs::read(&file).unwrap())
        .unwrap_or_else(|e| panic!("{FIXTURE}: {e}: {REFRESH}"));
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
            "{FIXTURE}: hospital {i}'s proof does not verify: {REFRESH}"
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
            "{FIXTURE}: hospital {i} is stale: {REFRESH}"
        );
    }
    let mut rest = committed.clone();
    rest.as_object_mut().unwrap().remove("hospitals");
    let mut fresh = fixture.clone();
    fresh.as_object_mut().unwrap().remove("hospitals");
    assert_eq!(rest, fresh, "{FIXTURE} is stale: {REFRESH}");
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
    assert_eq!(fs::read_dir(&cached_dir).unwrap().count(), 1);
    let (_, cached) = store.fold_circuit(&s.fold, &s.params).unwrap();
    assert_eq!(fresh.vk_hash, cached.vk_hash);
    assert_eq!(fresh.vk_hash, s.keys.vk_hash, "keygen is deterministic");
    assert_eq!(fresh.circuit_id, s.keys.circuit_id);
}
