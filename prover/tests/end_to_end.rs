//! Real proofs (not the MockProver): ground truth against the plain computation, offline
//! verification and tamper rejection, and the EVM verifier + proof fixtures that the forge
//! suite checks on-chain (checked against the committed copies, rewritten only with
//! `ZKCOHORT_UPDATE_FIXTURES=1`: see `common`).

mod common;

use std::{fs, path::PathBuf, sync::OnceLock};

use alloy::{
    primitives::{address, keccak256, Address},
    signers::local::PrivateKeySigner,
};
use common::root;
use halo2_base::halo2_proofs::{
    halo2curves::{bn256::Bn256, ff::Field},
    poly::kzg::commitment::ParamsKZG,
};
use zkcohort::{
    circuit::PublicInputs,
    commitment::{fr_from_hex, fr_to_biguint, fr_to_hex, RecordLayout},
    dataset::{CommittedDataset, Dataset},
    error::VerifyError,
    evm::Manifest,
    keys::{CircuitKeys, KeyStore, ParamsSource},
    proof::{self, Artifact, ProofArtifact},
    query::{evaluate, ClaimBinding, QuerySpec},
    schema::Schema,
    Fr,
};

/// Every test dataset is committed at this capacity, so one key serves them all.
const CAPACITY: usize = 48;

fn store() -> KeyStore {
    KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev)
}

/// The committed verifier manifest (what offline verification checks keys against).
fn manifest() -> Manifest {
    Manifest::load(&root().join("contracts/verifiers/verifiers.json")).unwrap()
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
    prove_bound(data, query, None)
}

fn prove_bound(
    data: &CommittedDataset,
    query: &QuerySpec,
    binding: Option<&ClaimBinding>,
) -> ProofArtifact {
    let s = setup();
    proof::prove(&s.keys, &s.params, data, query, binding).unwrap()
}

/// Chain id of forge's test EVM.
const FORGE_CHAIN_ID: u64 = 31337;
/// Where `test/utils/MarketBase.sol` deploys the QueryMarket (`deployCodeTo`), so that the
/// fixture's proofs can be bound to it.
const FORGE_MARKET: Address = address!("00000000000000000000000000000000c0407a7e");

/// forge-std's `makeAddr(label)`: the address of the private key `keccak256(label)`.
fn make_addr(label: &str) -> Address {
    PrivateKeySigner::from_bytes(&keccak256(label.as_bytes()))
        .unwrap()
        .address()
}

/// A proof bound to one market query verifies under its binding only: another binding (another
/// query, market, chain or claimant) gives another context, and the proof fails under it even
/// when the artifact is consistently rewritten (the transcript absorbed the context).
#[test]
fn a_proof_verifies_under_its_own_context_only() {
    let (_dir, data) = committed(&Dataset::synthesize(40, 5, 2), 5);
    let binding = ClaimBinding {
        chain_id: FORGE_CHAIN_ID,
        market: FORGE_MARKET,
        query_id: 7,
        claimant: make_addr("hospital-a"),
    };
    let artifact = prove_bound(&data, &queries()[0], Some(&binding));
    let verify = |a: &ProofArtifact| proof::verify(a, &store(), &manifest());
    verify(&artifact).unwrap();
    assert_eq!(
        artifact.public.context,
        fr_to_hex(&binding.context()),
        "the context is the binding's"
    );

    // The binding alone changed: it no longer hashes to the proven context.
    let others = [
        ClaimBinding {
            query_id: 8,
            ..binding.clone()
        },
        ClaimBinding {
            chain_id: 1,
            ..binding.clone()
        },
        ClaimBinding {
            claimant: make_addr("hospital-b"),
            ..binding.clone()
        },
    ];
    for other in &others {
        let mut moved = artifact.clone();
        moved.binding = Some(other.clone());
        assert!(
            matches!(verify(&moved), Err(VerifyError::Public { ref field }) if field == "binding"),
            "{other:?}"
        );
        // Rewritten consistently (context, instances, calldata): the proof itself fails.
        moved.public.context = fr_to_hex(&other.context());
        let mut inputs = PublicInputs::from_fields(
            &artifact.circuit.schema,
            &moved
                .instances
                .iter()
                .map(|h| fr_from_hex(h).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        inputs.context = other.context();
        moved.instances = inputs.to_fields().iter().map(fr_to_hex).collect();
        moved.calldata = calldata(&moved);
        assert!(
            matches!(verify(&moved), Err(VerifyError::Rejected(_))),
            "{other:?}"
        );
    }
    // Unbound: context 0.
    let mut unbound = artifact.clone();
    unbound.binding = None;
    assert!(matches!(verify(&unbound), Err(VerifyError::Public { .. })));
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
            proof::verify(&artifact, &store(), &manifest()).unwrap();
            released += usize::from(!truth.suppressed && truth.count > 0);
        }
    }
    assert!(
        released >= 2,
        "the examples exercise released (not only suppressed) results"
    );
}

/// The verifier calldata of an artifact's instances and proof.
fn calldata(a: &ProofArtifact) -> String {
    let instances: Vec<_> = a
        .instances
        .iter()
        .map(|h| fr_from_hex(h).unwrap())
        .collect();
    let proof = hex::decode(&a.proof[2..]).unwrap();
    format!(
        "0x{}",
        hex::encode(snark_verifier_sdk::evm::encode_calldata(
            &[instances],
            &proof
        ))
    )
}

#[test]
fn tampered_artifacts_are_rejected_offline() {
    let (_dir, data) = committed(&Dataset::synthesize(40, 5, 2), 5);
    let artifact = prove(&data, &queries()[0]);
    let verify = |a: &ProofArtifact| proof::verify(a, &store(), &manifest());
    verify(&artifact).unwrap();

    // A consistent lie: decoded result, instances and calldata all claim one more patient.
    let mut lie = artifact.clone();
    lie.public.result.count += 1;
    let inputs = PublicInputs {
        commitment: fr_from_hex(&lie.public.commitment).unwrap(),
        query: lie.public.query.clone(),
        context: fr_from_hex(&lie.public.context).unwrap(),
        result: lie.public.result.clone(),
    };
    lie.instances = inputs.to_fields().iter().map(fr_to_hex).collect();
    lie.calldata = calldata(&lie);
    let err = verify(&lie).unwrap_err();
    assert!(matches!(err, VerifyError::Rejected(_)), "{err}");

    // A flipped proof byte: the calldata no longer holds it; with the calldata redone, the
    // proof fails.
    let mut flipped = artifact.clone();
    let mut bytes = hex::decode(&flipped.proof[2..]).unwrap();
    bytes[100] ^= 1;
    flipped.proof = format!("0x{}", hex::encode(bytes));
    assert!(matches!(verify(&flipped), Err(VerifyError::Calldata)));
    flipped.calldata = calldata(&flipped);
    assert!(matches!(verify(&flipped), Err(VerifyError::Rejected(_))));

    // Calldata that is not the instances followed by the proof.
    let mut other_calldata = artifact.clone();
    other_calldata.calldata.replace_range(10..12, "ff");
    assert!(matches!(
        verify(&other_calldata),
        Err(VerifyError::Calldata)
    ));

    // Decoded public values that disagree with the instances, including a sum that encodes
    // to the same field element (sum + r).
    let mut inconsistent = artifact.clone();
    inconsistent.public.result.sum += 1u32;
    let err = verify(&inconsistent).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Public { field } if field == "public.result.sum"),
        "{err}"
    );
    let mut wrapped = artifact.clone();
    wrapped.public.result.sum += fr_to_biguint(&-Fr::ONE) + 1u32;
    assert!(matches!(verify(&wrapped), Err(VerifyError::Public { .. })));
    let mut commitment = artifact.clone();
    commitment.public.commitment = fr_to_hex(&Fr::from(7));
    assert!(matches!(
        verify(&commitment),
        Err(VerifyError::Public { .. })
    ));

    // A query that is not the one hashed; hashed but not the constants'.
    let mut other_query = artifact.clone();
    other_query.query.min_cohort += 1;
    assert!(matches!(
        verify(&other_query),
        Err(VerifyError::SpecHash {
            field: "query_hash",
            ..
        })
    ));
    other_query.query_hash = format!("0x{}", hex::encode(other_query.query.hash()));
    assert!(matches!(
        verify(&other_query),
        Err(VerifyError::Constants { .. })
    ));

    // A verifying key other than the deployed verifier's; a circuit without one; a schema other
    // than the verifier's; an older format.
    let mut other_vk = artifact.clone();
    other_vk.vk_hash = format!("0x{}", "00".repeat(32));
    assert!(matches!(
        verify(&other_vk),
        Err(VerifyError::VkHashVsManifest { .. })
    ));
    let mut other_circuit = artifact.clone();
    other_circuit.circuit_id = "agg2-b3d88f65-n96-k15".into();
    assert!(matches!(
        verify(&other_circuit),
        Err(VerifyError::NotInManifest { .. })
    ));
    let mut other_schema = artifact.clone();
    other_schema.circuit.schema.name = "renamed".into();
    assert!(matches!(
        verify(&other_schema),
        Err(VerifyError::ManifestSchema { .. })
    ));
    let mut old = artifact.clone();
    old.version = 1;
    assert!(matches!(verify(&old), Err(VerifyError::Version { .. })));

    // Nothing rides along unchecked: an unknown field, a value in another form.
    let text = |a: &serde_json::Value| serde_json::to_vec(a).unwrap();
    let mut extra = serde_json::to_value(&artifact).unwrap();
    extra["public"]["note"] = serde_json::json!("patient 17: HbA1c 9.1");
    assert!(matches!(
        Artifact::parse(&text(&extra)),
        Err(VerifyError::Malformed { .. })
    ));
    let mut padded = serde_json::to_value(&artifact).unwrap();
    let sum = format!("0{}", artifact.public.result.sum);
    padded["public"]["result"]["sum"] = serde_json::json!(sum);
    let err = Artifact::parse(&text(&padded)).unwrap_err();
    assert!(
        matches!(&err, VerifyError::NotCanonical { field } if field == "public.result.sum"),
        "{err}"
    );
    assert_eq!(
        Artifact::parse(&text(&serde_json::to_value(&artifact).unwrap())).unwrap(),
        Artifact::Aggregate(artifact)
    );
}

/// A fresh machine: an empty key cache. The verifying key is derived from the circuit the
/// artifact records and the (dev) params, cached without a proving key, and its hash checked
/// against the manifest; a damaged cached key is derived again.
#[test]
fn verifies_with_an_empty_key_cache() {
    let (_dir, data) = committed(&Dataset::synthesize(40, 6, 2), 6);
    let artifact = prove(&data, &queries()[0]);
    let fresh = tempfile::tempdir().unwrap();
    let store = KeyStore::new(fresh.path(), ParamsSource::Dev);
    let verified = proof::verify(&artifact, &store, &manifest()).unwrap();
    assert_eq!(verified.verifier, "AggregateVerifierN48");
    assert_eq!(verified.vk_hash, artifact.vk_hash);
    assert_eq!(
        verified.vk_hash,
        setup().keys.vk_hash,
        "the prover's key, derived"
    );
    let dirs: Vec<_> = fs::read_dir(fresh.path().join("keys"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0].join("vk.bin").exists() && !dirs[0].join("pk.bin").exists());

    // Cached now; a damaged cached key is not believed: it is derived again.
    proof::verify(&artifact, &store, &manifest()).unwrap();
    fs::write(dirs[0].join("vk.bin"), b"damaged").unwrap();
    proof::verify(&artifact, &store, &manifest()).unwrap();

    // The manifest built into the binary is the committed one.
    assert_eq!(
        Manifest::committed().find(&artifact.circuit_id).unwrap(),
        manifest().find(&artifact.circuit_id).unwrap()
    );
}

/// `zkcohort verify --json` on a fresh cache: `{"valid": true, ...}` with the result in natural
/// units, and `{"valid": false, "reason": ...}` with a failing exit for tampered artifacts.
#[test]
fn the_verify_command_says_valid_or_why_not() {
    let dataset = Dataset::synthesize(45, 3, 2);
    let (_dir, data) = committed(&dataset, 3);
    let query = &queries()[0];
    let artifact = prove(&data, query);
    assert!(!artifact.public.result.suppressed && artifact.public.result.count > 0);
    let work = tempfile::tempdir().unwrap();
    let run = |a: &ProofArtifact, name: &str| {
        let path = work.path().join(name);
        fs::write(&path, serde_json::to_vec_pretty(a).unwrap()).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkcohort"))
            .current_dir(root())
            .env("RUST_LOG", "off")
            .args(["--json", "--cache"])
            .arg(work.path().join("cache"))
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.success(), json)
    };
    let (ok, json) = run(&artifact, "valid.json");
    assert!(ok, "{json}");
    assert_eq!(json["valid"], true);
    assert_eq!(json["verifier"], "AggregateVerifierN48");
    let schema = Schema::clinical_default();
    let truth = evaluate(&schema, &dataset.records, &query.compile(&schema).unwrap());
    let scale = schema.decimal_scale(&query.statistic).unwrap();
    let (mean, var) = truth.mean_variance(scale).unwrap();
    assert_eq!(json["result"]["count"], truth.count);
    assert!((json["result"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!((json["result"]["sd"].as_f64().unwrap() - var.sqrt()).abs() < 1e-9);

    let mut tampered = Vec::new();
    let mut a = artifact.clone();
    a.query.name = "another question".into();
    tampered.push(("query", a, "query_hash"));
    let mut a = artifact.clone();
    a.public.result.count += 1;
    tampered.push(("public values", a, "public.result.count"));
    let mut a = artifact.clone();
    a.calldata.replace_range(66..68, "ff");
    tampered.push(("calldata", a, "calldata"));
    let mut a = artifact.clone();
    a.vk_hash = format!("0x{}", "11".repeat(32));
    tampered.push(("vk_hash", a, "vk"));
    for (what, a, says) in tampered {
        let (ok, json) = run(&a, "tampered.json");
        assert!(!ok, "tampered {what}: the command must fail");
        assert_eq!(json["valid"], false, "{what}: {json}");
        let reason = json["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{what}: {reason}");
    }
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
            "binding",
            "calldata",
            "circuit",
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
/// answering one query (the third suppressed), and one proof of another query; and the query's
/// spec document (`query_spec`, hex), which `postQuery` publishes. Every proof is bound to the
/// suite's first query (id 1) of the market `MarketBase` deploys at [`FORGE_MARKET`], claimed
/// by the hospital's `makeAddr` address (`hospital-a`, `-b`, `-c`).
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
    let labels = ["hospital-a", "hospital-b", "hospital-c"];
    let binding = |i: usize| ClaimBinding {
        chain_id: FORGE_CHAIN_ID,
        market: FORGE_MARKET,
        query_id: 1,
        claimant: make_addr(labels[i]),
    };
    for (i, (records, seed)) in [(45, 3), (38, 4), (12, 5)].into_iter().enumerate() {
        let (_dir, data) = committed(&Dataset::synthesize(records, seed, 2), seed);
        let artifact = prove_bound(&data, main_query, Some(&binding(i)));
        assert_eq!(
            artifact.public.result.suppressed,
            i == 2,
            "hospital {i}: {:?}",
            artifact.public.result
        );
        hospitals.push(entry(&data, &artifact));
        if i == 0 {
            other = Some(entry(
                &data,
                &prove_bound(&data, other_query, Some(&binding(0))),
            ));
        }
    }
    let n_constants = zkcohort::query::QueryConstants::len_for(&Schema::clinical_default());
    let constants =
        |e: &serde_json::Value| e["instances"].as_array().unwrap()[1..1 + n_constants].to_vec();
    let fixture = serde_json::json!({
        "circuit_id": s.keys.config.circuit_id,
        "chain_id": FORGE_CHAIN_ID,
        "market": FORGE_MARKET,
        "query_id": 1,
        "claimants": (0..3).map(|i| binding(i).claimant).collect::<Vec<_>>(),
        "query_hash": format!("0x{}", hex::encode(main_query.hash())),
        "query_spec": format!("0x{}", hex::encode(main_query.document())),
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
