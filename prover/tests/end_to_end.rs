//! Real proofs (not the MockProver): ground truth against the plain computation, offline
//! verification and tamper rejection, and the EVM verifier + proof fixtures that the forge
//! suite checks on-chain (checked against the committed copies, rewritten only with
//! `ZKCOHORT_UPDATE_FIXTURES=1`: see `common`).

mod common;

use std::{fs, path::PathBuf, sync::OnceLock};

use common::root;
use halo2_base::halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG};
use zkcohort::{
    circuit::PublicInputs,
    commitment::{fr_to_hex, RecordLayout},
    dataset::{CommittedDataset, Dataset},
    keys::{CircuitKeys, KeyStore, ParamsSource},
    proof::{self, ProofArtifact},
    query::{evaluate, QuerySpec},
    schema::Schema,
};

/// Every test dataset is committed at this capacity, so one key serves them all.
const CAPACITY: usize = 48;

fn store() -> KeyStore {
    KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev)
}

struct Setup {
    params: ParamsKZG<Bn256>,
    keys: CircuitKeys,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let schema = Schema::clinical_default();
        let (params, keys) = store()
            .circuit(&schema, &RecordLayout::new(&schema, CAPACITY))
            .unwrap();
        Setup { params, keys }
    })
}

/// `dataset` committed at [`CAPACITY`] with a salt derived from `seed` (reproducible fixtures).
fn committed(dataset: &Dataset, seed: u64) -> (tempfile::TempDir, CommittedDataset) {
    common::committed(dataset, Some(CAPACITY), seed)
}

fn queries() -> Vec<QuerySpec> {
    let mut paths: Vec<PathBuf> = fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("query-")
        })
        .collect();
    paths.sort();
    assert!(paths.len() >= 3);
    paths.iter().map(|p| QuerySpec::load(p).unwrap()).collect()
}

fn prove(data: &CommittedDataset, query: &QuerySpec) -> ProofArtifact {
    let s = setup();
    proof::prove(&s.keys, &s.params, data, query).unwrap()
}

#[test]
fn proofs_equal_the_plain_computation_for_synthetic_and_csv_data() {
    let schema = Schema::clinical_default();
    let csv = Dataset::import_csv(&schema, &root().join("examples/sample-cohort.csv")).unwrap();
    let mut released = 0;
    for (dataset, seed) in [(Dataset::synthesize(45, 3, 2), 3), (csv, 0)] {
        let (_dir, data) = committed(&dataset, seed);
        for query in queries() {
            let artifact = prove(&data, &query);
            let truth = evaluate(&schema, &dataset.records, &query.compile(&schema).unwrap());
            assert_eq!(artifact.public.result, truth, "{}", query.name);
            assert_eq!(artifact.public.commitment, data.info.commitment);
            proof::verify(&artifact, &store()).unwrap();
            released += usize::from(!truth.suppressed && truth.count > 0);
        }
    }
    assert!(
        released >= 2,
        "the examples exercise released (not only suppressed) results"
    );
}

#[test]
fn tampered_artifacts_are_rejected_offline() {
    let (_dir, data) = committed(&Dataset::synthesize(40, 5, 2), 5);
    let artifact = prove(&data, &queries()[0]);
    proof::verify(&artifact, &store()).unwrap();

    // A consistent lie: decoded result, instances and calldata all claim one more patient.
    let mut lie = artifact.clone();
    lie.public.result.count += 1;
    let inputs = PublicInputs {
        commitment: zkcohort::commitment::fr_from_hex(&lie.public.commitment).unwrap(),
        query: lie.public.query.clone(),
        result: lie.public.result.clone(),
    };
    let fields = inputs.to_fields();
    lie.instances = fields.iter().map(fr_to_hex).collect();
    let proof_bytes = hex::decode(&lie.proof[2..]).unwrap();
    lie.calldata = format!(
        "0x{}",
        hex::encode(snark_verifier_sdk::evm::encode_calldata(
            &[fields],
            &proof_bytes
        ))
    );
    let err = proof::verify(&lie, &store()).unwrap_err().to_string();
    assert!(err.contains("proof rejected"), "{err}");

    // A flipped proof byte.
    let mut flipped = artifact.clone();
    let mut bytes = hex::decode(&flipped.proof[2..]).unwrap();
    bytes[100] ^= 1;
    flipped.proof = format!("0x{}", hex::encode(bytes));
    assert!(proof::verify(&flipped, &store()).is_err());

    // Decoded fields that disagree with the instances.
    let mut inconsistent = artifact.clone();
    inconsistent.public.result.sum += 1u32;
    assert!(proof::verify(&inconsistent, &store())
        .unwrap_err()
        .to_string()
        .contains("disagree"));

    // Constants that do not belong to the named query.
    let mut other_query = artifact;
    other_query.query.min_cohort += 1;
    assert!(proof::verify(&other_query, &store())
        .unwrap_err()
        .to_string()
        .contains("query"));
}

#[test]
fn artifacts_hold_no_record_data() {
    let dataset = Dataset::synthesize(40, 9, 2);
    let (_dir, data) = committed(&dataset, 9);
    let artifact = prove(&data, &queries()[0]);
    let text = serde_json::to_string(&artifact).unwrap();
    // Packed elements that hold records (the rest are all-zero padding).
    let elements = data.layout.pack(&dataset.records);
    let used = dataset
        .records
        .len()
        .div_ceil(data.layout.slots_per_element);
    for secret in
        std::iter::once(fr_to_hex(&data.salt)).chain(elements[..used].iter().map(fr_to_hex))
    {
        assert!(!text.contains(&secret[2..]), "artifact leaks {secret}");
    }
    let keys: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "calldata",
            "circuit_id",
            "instances",
            "proof",
            "public",
            "query",
            "query_hash",
            "version",
            "vk_hash"
        ]
    );
}

/// The Solidity verifier of the test circuit and a real proof for the forge suite
/// (`test/AggregateVerifier.t.sol`). Deterministic params and keygen make the verifier source
/// reproducible: the committed copy must equal the generated one.
#[test]
fn writes_evm_verifier_and_proof_fixture() {
    let s = setup();
    let n = PublicInputs::len_for(&Schema::clinical_default());
    let name = common::verifier(&s.params, &s.keys);
    assert_eq!(
        name, "AggregateVerifierN48",
        "the forge tests import this contract"
    );

    let (_dir, data) = committed(&Dataset::synthesize(45, 3, 2), 3);
    let artifact = prove(&data, &queries()[0]);
    assert!(!artifact.public.result.suppressed && artifact.public.result.count >= 11);
    let fixture = serde_json::json!({
        "circuit_id": artifact.circuit_id,
        "num_instances": n,
        "count_index": n - 4,
        "instances": artifact.instances,
        "proof": artifact.proof,
        "calldata": artifact.calldata,
    });
    common::fixture(
        "test/fixtures/aggregate_proof.json",
        &fixture,
        &[(&s.params, &s.keys)],
    );
}

/// Real proofs for the market's forge suite (`test/QueryMarket.t.sol`): three hospitals
/// answering one query (the third suppressed), and one proof of another query.
#[test]
fn writes_market_fixture() {
    let s = setup();
    let queries = queries();
    let (main_query, other_query) = (&queries[0], &queries[1]);
    let entry = |data: &CommittedDataset, artifact: &ProofArtifact| {
        serde_json::json!({
            "commitment": data.info.commitment,
            "record_count": data.info.record_count,
            "schema_hash": data.info.schema_hash,
            "instances": artifact.instances,
            "proof": artifact.proof,
            "count": artifact.public.result.count,
            "sum": artifact.public.result.sum.to_string(),
            "sum_squares": artifact.public.result.sum_squares.to_string(),
            "suppressed": artifact.public.result.suppressed,
        })
    };
    let mut hospitals = Vec::new();
    let mut other = None;
    for (i, (records, seed)) in [(45, 3), (38, 4), (12, 5)].into_iter().enumerate() {
        let (_dir, data) = committed(&Dataset::synthesize(records, seed, 2), seed);
        let artifact = prove(&data, main_query);
        assert_eq!(
            artifact.public.result.suppressed,
            i == 2,
            "hospital {i}: {:?}",
            artifact.public.result
        );
        hospitals.push(entry(&data, &artifact));
        if i == 0 {
            other = Some(entry(&data, &prove(&data, other_query)));
        }
    }
    let n_constants = zkcohort::query::QueryConstants::len_for(&Schema::clinical_default());
    let constants =
        |e: &serde_json::Value| e["instances"].as_array().unwrap()[1..1 + n_constants].to_vec();
    let fixture = serde_json::json!({
        "circuit_id": s.keys.config.circuit_id,
        "query_hash": format!("0x{}", hex::encode(main_query.hash())),
        "constants": constants(&hospitals[0]),
        "other_query_hash": format!("0x{}", hex::encode(other_query.hash())),
        "other_constants": constants(other.as_ref().unwrap()),
        "hospitals": hospitals,
        "other_query_proof": other,
    });
    common::fixture(
        "test/fixtures/market_proofs.json",
        &fixture,
        &[(&s.params, &s.keys)],
    );
}
