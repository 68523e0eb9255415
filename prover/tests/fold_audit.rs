//! A fold claim read back from its calldata (`chain::fold_artifact_of_claim`, what
//! `zkcohort verify --tx` and the audit use): a real fold proof's public inputs and proof, as a
//! claim carries them, rebuild the very artifact the prover wrote, which verifies offline; and
//! calldata that is not the circuit's is refused with the reason, never a panic.

#[allow(dead_code)]
mod common;

use alloy::primitives::{address, U256};
use common::root;
use zkcohort::{
    chain::{fold_artifact_of_claim, FoldClaimContext, TxArtifactError},
    dataset::{Dataset, DatasetDir},
    evm::{self, Manifest},
    keys::{FoldSpec, KeyStore, ParamsSource},
    proof::{self, fold as answer, Artifact},
    query::{ClaimBinding, QuerySpec},
    schema::Schema,
};

#[test]
fn fold_claim_calldata_rebuilds_the_artifact() {
    let schema = Schema::clinical_default();
    let query = QuerySpec::load(&root().join("examples/query-all-adults-bmi.json")).unwrap();
    let statistic = query.compile(&schema).unwrap().statistic as usize;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = DatasetDir::new(dir.path().join("hospital"));
    data_dir
        .write_dataset(&Dataset::synthesize(45, 5, 2))
        .unwrap();
    let committed = data_dir.commit(None).unwrap();
    let spec = FoldSpec {
        capacity: 48,
        mask_rows: 16,
        data_columns: 1,
        statistics: vec![statistic],
        strata: None,
        attestation: false,
        rounding: None,
        dominance: None,
    };
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    let (kzg, keys) = store.fold_keys(&schema, &spec).unwrap();
    let info = answer::commit(&committed, &kzg, &keys, &spec).unwrap();
    let binding = ClaimBinding {
        chain_id: 31337,
        market: address!("00000000000000000000000000000000f01d7e57"),
        query_id: 3,
        claimant: address!("00000000000000000000000000000000000a11ce"),
    };
    let a = answer::prove(&keys, &kzg, &committed, &info, &query, Some(&binding)).unwrap();
    assert_eq!(
        FoldSpec::from_circuit_id(&schema, &a.circuit_id).unwrap(),
        spec
    );

    // The claim's calldata: the instances as words, the proof's bytes.
    let inputs: Vec<U256> = a
        .instances
        .iter()
        .map(|h| U256::from_str_radix(h.trim_start_matches("0x"), 16).unwrap())
        .collect();
    let proof_bytes = hex::decode(a.proof.trim_start_matches("0x")).unwrap();
    let context = || FoldClaimContext {
        schema: &schema,
        circuit_id: &a.circuit_id,
        vk_hash: a.vk_hash.clone(),
        query_hash: a.query_hash.clone(),
        query: query.clone(),
        binding: binding.clone(),
    };
    let rebuilt = fold_artifact_of_claim(context(), &inputs, &proof_bytes).unwrap();
    assert_eq!(rebuilt, a, "the calldata amounts to the prover's artifact");

    // It verifies offline as any artifact does.
    let verifiers = dir.path().join("verifiers");
    evm::write_fold_verifier(&verifiers, &kzg, &keys, Default::default()).unwrap();
    let manifest = Manifest::load(&verifiers.join(evm::MANIFEST)).unwrap();
    proof::verify_artifact(&Artifact::Fold(rebuilt), &store, &manifest).unwrap();

    // Another claimant: the rebuilt artifact's binding no longer gives the proof's context.
    let mut other = context();
    other.binding.claimant = address!("00000000000000000000000000000000000b0b00");
    let stolen = fold_artifact_of_claim(other, &inputs, &proof_bytes).unwrap();
    assert!(proof::verify_artifact(&Artifact::Fold(stolen), &store, &manifest).is_err());

    // Strict decoding: every word where the layout puts it, in its range.
    let layout = spec
        .params(&zkcohort::circuit::fast::record::FoldSchema::of(&schema).unwrap())
        .unwrap()
        .inputs();
    let decode = |edit: &dyn Fn(&mut Vec<U256>)| {
        let mut x = inputs.clone();
        edit(&mut x);
        fold_artifact_of_claim(context(), &x, &proof_bytes).unwrap_err()
    };
    let s = layout.suppressed();
    assert!(matches!(
        decode(&|x| x[s] = U256::from(2)),
        TxArtifactError::FoldResult { index, what: "suppressed" } if index == s
    ));
    let c = layout.count();
    assert!(matches!(
        decode(&|x| x[c] = U256::from(u64::MAX) + U256::from(1)),
        TxArtifactError::FoldResult { index, what: "count" } if index == c
    ));
    let n = layout.nonmissing();
    assert!(matches!(
        decode(&|x| x[n] = U256::MAX),
        TxArtifactError::NotInField(_) | TxArtifactError::FoldResult { .. }
    ));
    assert!(matches!(
        decode(&|x| {
            x.pop();
        }),
        TxArtifactError::FoldInputCount { .. }
    ));
    assert!(matches!(
        fold_artifact_of_claim(context(), &inputs, &proof_bytes[..63]).unwrap_err(),
        TxArtifactError::FoldCommitment(_)
    ));
    let mut wrong = context();
    let id = a.circuit_id.replace("-m16-", "-m016-");
    wrong.circuit_id = &id;
    assert!(matches!(
        fold_artifact_of_claim(wrong, &inputs, &proof_bytes).unwrap_err(),
        TxArtifactError::FoldCircuit(_)
    ));
}
