//! Real eligibility proofs: single and batched, checked against the native nullifiers, verified
//! offline, tampering rejected, ineligible patients refused with a reason, no secrets in the
//! artifact; and the EVM verifiers + proof fixture the forge suite checks on-chain (checked
//! against the committed copies, rewritten only with `ZKCOHORT_UPDATE_FIXTURES=1`: see `common`).

mod common;

use std::sync::OnceLock;

use alloy::{
    primitives::{keccak256, Address},
    signers::local::PrivateKeySigner,
};
use common::root;
use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr},
    poly::kzg::commitment::ParamsKZG,
};
use zkcohort::{
    chain::trial_id_of,
    circuit::eligibility::EligibilityPublic,
    commitment::{fr_from_hex, fr_to_hex},
    credential::{Credential, OpenedCredential},
    dataset::{CommittedDataset, Dataset},
    eligibility::{self, Candidate, EligibilityArtifact},
    error::{ProofError, VerifyError},
    evm::Manifest,
    keys::{CircuitKeys, KeyStore, ParamsSource},
    membership::Identity,
    proof::Artifact,
    schema::Schema,
    trial::TrialSpec,
};

/// The committed verifier manifest (what offline verification checks keys against).
fn manifest() -> Manifest {
    Manifest::load(&root().join("contracts/verifiers/verifiers.json")).unwrap()
}

/// The batch circuit of the tests (and the demo).
const BATCH: usize = 4;

struct Circuits {
    single: (ParamsKZG<Bn256>, CircuitKeys),
    batch: (ParamsKZG<Bn256>, CircuitKeys),
}

fn circuits() -> &'static Circuits {
    static C: OnceLock<Circuits> = OnceLock::new();
    C.get_or_init(|| {
        let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
        let schema = Schema::clinical_default();
        Circuits {
            single: store.eligibility_circuit(&schema, 1).unwrap(),
            batch: store.eligibility_circuit(&schema, BATCH).unwrap(),
        }
    })
}

struct Hospital {
    _dir: tempfile::TempDir,
    data: CommittedDataset,
    credentials: Vec<OpenedCredential>,
    /// Each patient's identity (the patients', not the hospital's).
    identities: Vec<Identity>,
}

/// The address the forge suite registers the fixture's dataset from: forge's
/// `makeAddr("hospital")` (the address of the private key `keccak256("hospital")`).
fn registrant() -> Address {
    PrivateKeySigner::from_bytes(&keccak256("hospital"))
        .unwrap()
        .address()
}

/// A committed synthetic dataset (salt derived from `seed`, so nullifiers are reproducible)
/// with every patient's credential, issued and re-read, and identity.
fn hospital(records: usize, seed: u64) -> Hospital {
    let (dir, data) = common::committed(&Dataset::synthesize(records, seed, 2), None, seed);
    let credentials = (0..records)
        .map(|i| {
            let path = dir.path().join(format!("patient-{i}.json"));
            Credential::issue(&data, i, registrant())
                .unwrap()
                .save(&path)
                .unwrap();
            Credential::load(&path).unwrap()
        })
        .collect();
    Hospital {
        _dir: dir,
        data,
        credentials,
        identities: (0..records).map(|i| common::identity(seed, i)).collect(),
    }
}

fn trial() -> TrialSpec {
    TrialSpec::load(&root().join("examples/trial-t2d.json")).unwrap()
}

/// Indices of the eligible and ineligible patients of a hospital.
fn split(h: &Hospital) -> (Vec<usize>, Vec<usize>) {
    let schema = &h.data.dataset.schema;
    let criteria = trial().compile(schema).unwrap();
    (0..h.credentials.len())
        .partition(|&i| criteria.check(schema, &h.credentials[i].values).is_ok())
}

fn trial_id(n: u64) -> Fr {
    Fr::from(2).pow_vartime([130]) + Fr::from(n)
}

use halo2_base::halo2_proofs::halo2curves::ff::Field;

fn prove(
    circuit: &(ParamsKZG<Bn256>, CircuitKeys),
    h: &Hospital,
    patients: &[usize],
    trial_id: Fr,
) -> Result<EligibilityArtifact, ProofError> {
    let candidates: Vec<Candidate<'_>> = patients
        .iter()
        .map(|&i| Candidate {
            credential: &h.credentials[i],
            identity: &h.identities[i],
            payout: Fr::from(0x1000 + i as u64),
        })
        .collect();
    eligibility::prove(&circuit.1, &circuit.0, &trial(), trial_id, &candidates)
}

fn hospital_a() -> &'static Hospital {
    static H: OnceLock<Hospital> = OnceLock::new();
    H.get_or_init(|| hospital(300, 11))
}

#[test]
fn single_and_batch_proofs_reveal_exactly_the_native_nullifiers() {
    let h = hospital_a();
    let (eligible, _) = split(h);
    assert!(
        eligible.len() >= 4,
        "the synthetic cohort has eligible patients"
    );
    let t = trial_id(1);
    let single = prove(&circuits().single, h, &eligible[..1], t).unwrap();
    let expected = h.identities[eligible[0]].nullifier(t);
    assert_eq!(single.nullifiers(), vec![fr_to_hex(&expected)]);
    assert_eq!(single.member_root, h.data.info.member_root);
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    eligibility::verify(&single, &store, &manifest()).unwrap();

    let batch = prove(&circuits().batch, h, &eligible[1..4], t).unwrap();
    assert_eq!(batch.slots.len(), BATCH);
    assert_eq!(batch.nullifiers().len(), 3, "the fourth slot is empty");
    for (slot, &i) in batch.slots.iter().zip(&eligible[1..4]) {
        assert_eq!(slot.nullifier, fr_to_hex(&h.identities[i].nullifier(t)));
    }
    eligibility::verify(&batch, &store, &manifest()).unwrap();
}

#[test]
fn ineligible_and_duplicate_patients_get_a_reason_not_a_proof() {
    let h = hospital_a();
    let (eligible, ineligible) = split(h);
    let err = prove(&circuits().single, h, &ineligible[..1], trial_id(1)).unwrap_err();
    assert!(matches!(err, ProofError::Ineligible(_)), "{err}");
    assert!(
        err.to_string().starts_with("not eligible: patient 1"),
        "{err}"
    );
    let twice = [eligible[0], eligible[0]];
    let err = prove(&circuits().batch, h, &twice, trial_id(1)).unwrap_err();
    assert!(err.to_string().contains("already in this batch"), "{err}");
    let err = prove(&circuits().single, h, &eligible[..1], Fr::from(7)).unwrap_err();
    assert!(err.to_string().contains("below 2^128"), "{err}");
}

#[test]
fn tampered_artifacts_are_rejected_and_hold_no_secrets() {
    let h = hospital_a();
    let (eligible, _) = split(h);
    let i = eligible[0];
    let a = prove(&circuits().single, h, &[i], trial_id(2)).unwrap();
    // A fresh machine: an empty key cache, the verifying key derived from the artifact's
    // circuit and the params, then checked against the manifest.
    let fresh = tempfile::tempdir().unwrap();
    let store = KeyStore::new(fresh.path(), ParamsSource::Dev);
    let ok = eligibility::verify(&a, &store, &manifest()).unwrap();
    assert_eq!(ok.verifier, "EligibilityVerifierB1");
    assert!(fresh.path().join("keys").read_dir().unwrap().all(|d| !d
        .unwrap()
        .path()
        .join("pk.bin")
        .exists()));
    let verify = |x: &EligibilityArtifact| eligibility::verify(x, &store, &manifest());

    // Another trial id everywhere it appears: the proof does not hold.
    let mut other_trial = a.clone();
    other_trial.trial_id = fr_to_hex(&trial_id(3));
    other_trial.instances[1] = other_trial.trial_id.clone();
    other_trial.calldata = calldata(&other_trial);
    assert!(matches!(
        verify(&other_trial),
        Err(VerifyError::Rejected(_))
    ));
    // A decoded nullifier that is not the instance's.
    let mut wrong_nullifier = a.clone();
    let fake = fr_to_hex(&(fr_from_hex(&a.slots[0].nullifier).unwrap() + Fr::ONE));
    wrong_nullifier.slots[0].nullifier = fake.clone();
    let err = verify(&wrong_nullifier).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Public { field } if field == "slots[0].nullifier"),
        "{err}"
    );
    // ... and with the instance changed too (and the calldata): the proof does not hold.
    let at = a.instances.len() - 2;
    wrong_nullifier.instances[at] = fake;
    wrong_nullifier.calldata = calldata(&wrong_nullifier);
    assert!(matches!(
        verify(&wrong_nullifier),
        Err(VerifyError::Rejected(_))
    ));
    // A flipped proof byte: first the calldata no longer matches, then the proof fails.
    let mut bad_proof = a.clone();
    bad_proof
        .proof
        .replace_range(10..12, if &a.proof[10..12] == "00" { "01" } else { "00" });
    assert!(matches!(verify(&bad_proof), Err(VerifyError::Calldata)));
    bad_proof.calldata = calldata(&bad_proof);
    assert!(matches!(verify(&bad_proof), Err(VerifyError::Rejected(_))));
    // A trial spec that is not the one hashed, or hashed but not the criteria's.
    let mut other_spec = a.clone();
    other_spec.trial.consent = "research".into();
    assert!(matches!(
        verify(&other_spec),
        Err(VerifyError::SpecHash {
            field: "trial_hash",
            ..
        })
    ));
    other_spec.trial_hash = format!("0x{}", hex::encode(other_spec.trial.hash()));
    assert!(matches!(
        verify(&other_spec),
        Err(VerifyError::Constants { .. })
    ));
    // Another verifying key than the deployed verifier's.
    let mut other_vk = a.clone();
    other_vk.vk_hash = format!("0x{}", "ab".repeat(32));
    assert!(matches!(
        verify(&other_vk),
        Err(VerifyError::VkHashVsManifest { .. })
    ));
    // Nothing rides along unchecked.
    let mut value = serde_json::to_value(&a).unwrap();
    value["slots"][0]["note"] = serde_json::json!("anything");
    assert!(matches!(
        Artifact::parse(&serde_json::to_vec(&value).unwrap()),
        Err(VerifyError::Malformed { .. })
    ));
    let mut upper = a.clone();
    upper.member_root = upper.member_root.to_uppercase().replacen("0X", "0x", 1);
    assert!(matches!(verify(&upper), Err(VerifyError::Hex { .. })));

    let text = serde_json::to_string(&a).unwrap();
    let cred = &h.credentials[i].credential;
    assert!(
        !text.contains(&fr_to_hex(&h.identities[i].secret)[2..]),
        "the secret leaked"
    );
    assert!(!text.contains(&cred.blind[2..]), "the blinding leaked");
    assert!(
        !text.contains(&cred.identity[2..]),
        "the identity commitment leaked"
    );
    for node in &cred.path {
        assert!(!text.contains(&node[2..]), "a path node leaked");
    }
    assert!(!text.contains(&fr_to_hex(&Fr::from(cred.index as u64))[2..]) || cred.index == 0);
}

/// The verifier calldata of an artifact's instances and proof.
fn calldata(a: &EligibilityArtifact) -> String {
    let instances: Vec<Fr> = a
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

/// `contracts/verifiers/EligibilityVerifierB{1,4}.sol` (must equal the generated sources) and
/// What the real prover makes for patient `i` of `h` with `secret` in place of the patient's
/// (the payout: the registrant, i.e. the custodian) when the witness does not satisfy the
/// circuit: public inputs and proof bytes ([`zkcohort::proof::create_unchecked`]; the library's
/// provers check and refuse).
fn unsatisfied_proof(
    circuit: &(ParamsKZG<Bn256>, CircuitKeys),
    h: &Hospital,
    i: usize,
    secret: Fr,
    registrant: Address,
    trial_id: Fr,
) -> (Vec<Fr>, Vec<u8>) {
    use zkcohort::circuit::eligibility::{build, EligibilityWitness, PatientSlot};
    let (params, keys) = circuit;
    let schema = &h.data.dataset.schema;
    let cred = &h.credentials[i];
    let custodian = zkcohort::chain::address_to_fr(registrant);
    let witness = EligibilityWitness {
        member_root: cred.member_root,
        trial_id,
        registrant: custodian,
        criteria: trial().compile(schema).unwrap(),
        slots: vec![PatientSlot::patient(
            &cred.values,
            cred.blind,
            secret,
            cred.credential.index,
            cred.path.clone(),
            custodian,
        )],
    };
    let mut circuit = keys.config.prover_circuit();
    build(&mut circuit, schema, &witness);
    zkcohort::proof::create_unchecked(keys, params, circuit).unwrap()
}

/// `test/fixtures/eligibility_proofs.json`: for one dataset and one trial, single proofs of
/// patients A and B, a batch of C, D, E (+ an empty slot), a batch re-using A, and a single
/// proof of A for another trial; both trial ids derived as `TrialMarket.trialIdOf` does for the
/// forge suite's market, chain, sponsor and salts (recorded with them).
#[test]
fn writes_evm_verifiers_and_eligibility_fixture() {
    let c = circuits();
    for (params, keys) in [&c.single, &c.batch] {
        common::verifier(params, keys);
    }
    let h = hospital_a();
    let (e, _) = split(h);
    assert!(e.len() >= 6, "{} eligible patients", e.len());
    // Trial ids are derived on-chain from (chain, market, sponsor, salt): the forge suite
    // places its market at this address (chain 31337, forge's) and opens as this sponsor, and
    // checks that the contract derives these ids.
    let chain_id = 31_337;
    let market = Address::from_word(keccak256("zkcohort.fixture.TrialMarket"));
    let sponsor = Address::from_word(keccak256("zkcohort.fixture.sponsor"));
    let (salt, salt2) = (
        keccak256("zkcohort.fixture.trial"),
        keccak256("zkcohort.fixture.other-trial"),
    );
    let (t, t2) = (
        trial_id_of(chain_id, market, sponsor, salt),
        trial_id_of(chain_id, market, sponsor, salt2),
    );
    let entry = |circuit: &(ParamsKZG<Bn256>, CircuitKeys), patients: &[usize], t: Fr| {
        let a = prove(circuit, h, patients, t).unwrap();
        serde_json::json!({
            "circuit_id": a.circuit_id,
            "instances": a.instances,
            "proof": a.proof,
            "nullifiers": a.nullifiers(),
            "payouts": a.slots.iter().map(|s| s.payout.clone()).collect::<Vec<_>>(),
        })
    };
    let single_a = entry(&c.single, &e[..1], t);
    // The custodian's best attempt at enrolling patient A ahead of them (to its own payout):
    // it knows the record, the blinding, the path and the identity commitment, not the
    // patient's secret; with the secret the pre-identity scheme derived from its salt, the real
    // prover makes a proof the verifier must reject.
    let custodian_a = {
        let secret = zkcohort::poseidon::hash(&[
            h.data.salt,
            Fr::from(zkcohort::membership::BLIND_DOMAIN),
            Fr::from(e[0] as u64),
        ]);
        let (instances, forged) = unsatisfied_proof(&c.single, h, e[0], secret, registrant(), t);
        serde_json::json!({
            "circuit_id": c.single.1.config.circuit_id,
            "instances": instances.iter().map(fr_to_hex).collect::<Vec<_>>(),
            "forged_proof": format!("0x{}", hex::encode(forged)),
        })
    };
    let n_criteria = zkcohort::trial::TrialCriteria::len_for(&Schema::clinical_default());
    let fixture = serde_json::json!({
        "schema_hash": h.data.info.schema_hash,
        "commitment": h.data.info.commitment,
        "member_root": h.data.info.member_root,
        "registrant": registrant(),
        "record_count": h.data.info.record_count,
        "chain_id": chain_id,
        "market": market,
        "sponsor": sponsor,
        "salt": salt,
        "other_salt": salt2,
        "trial_id": fr_to_hex(&t),
        "other_trial_id": fr_to_hex(&t2),
        "spec_hash": format!("0x{}", hex::encode(trial().hash())),
        "spec": format!("0x{}", hex::encode(trial().document())),
        "criteria": single_a["instances"].as_array().unwrap()
            [EligibilityPublic::CRITERIA_AT..EligibilityPublic::CRITERIA_AT + n_criteria]
            .to_vec(),
        "single_a": single_a,
        "single_b": entry(&c.single, &e[1..2], t),
        "batch_cde": entry(&c.batch, &e[2..5], t),
        "batch_with_a": entry(&c.batch, &[e[5], e[0]], t),
        "single_a_other_trial": entry(&c.single, &e[..1], t2),
        "custodian_preempts_a": custodian_a,
    });
    common::fixture(
        "test/fixtures/eligibility_proofs.json",
        &fixture,
        &[(&c.single.0, &c.single.1), (&c.batch.0, &c.batch.1)],
    );
}
