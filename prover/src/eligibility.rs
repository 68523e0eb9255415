//! Eligibility proofs: one patient (or a batch of up to `B` patients of one dataset) meets a
//! trial's criteria, revealing only a nullifier per patient.
//!
//! An artifact carries the membership root, the registrant, the trial id and criteria, and per
//! patient the nullifier and payout address. Never a record value, a position or a secret
//! (tested). Proving needs each patient's identity secret ([`crate::membership::Identity`]),
//! which only the patient (or whoever the patient handed it to) holds.

use alloy::primitives::Address;

use halo2_base::halo2_proofs::{
    halo2curves::{
        bn256::{Bn256, Fr},
        ff::Field,
    },
    poly::kzg::commitment::ParamsKZG,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{
    circuit::eligibility::{self, EligibilityPublic, EligibilityWitness, PatientSlot},
    commitment::{fr_from_hex, fr_to_hex},
    credential::OpenedCredential,
    error::{ProofError, VerifyError},
    evm::Manifest,
    keys::{CircuitKeys, CircuitSpec, KeyStore},
    membership::{self, Identity},
    proof::{calldata_hex, create, field_hex, SealedProof, Verified},
    trial::{TrialCriteria, TrialSpec},
};

/// Eligibility artifact format version (3: the registrant is a public input, nullifiers come
/// from patient-held identities; 2: the circuit's schema and shape are recorded, so any
/// machine re-derives the verifying key).
pub const ELIGIBILITY_VERSION: u32 = 3;

/// Trial ids are at least 2^128, so a nullifier `Poseidon(secret, trial_id)` can never equal a
/// membership leaf `Poseidon(secret, packed)` (a packed record is below 2^128). The trial
/// contract enforces the same bound.
pub const MIN_TRIAL_ID_BITS: u32 = 128;

/// A fresh random trial id in `[2^128, r)`.
pub fn random_trial_id() -> Fr {
    loop {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill(&mut bytes[..31]);
        if let Some(x) = fr_from_hex(&format!("0x00{}", hex::encode(&bytes[..31]))) {
            if valid_trial_id(&x) {
                return x;
            }
        }
    }
}

/// Whether `x` is a usable trial id (at least 2^128).
pub fn valid_trial_id(x: &Fr) -> bool {
    crate::commitment::fr_to_biguint(x).bits() > MIN_TRIAL_ID_BITS as u64
}

/// One enrolled patient as the chain sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolledSlot {
    /// `Poseidon(secret, trial_id)`, hex; zero for an empty slot.
    pub nullifier: String,
    /// Payout address as a 32-byte word, hex; zero for none.
    pub payout: String,
}

/// The JSON `patient prove-eligibility` writes. Every field is checked by [`verify`]: by the
/// proof, by a hash, or against another field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EligibilityArtifact {
    /// Format version.
    pub version: u32,
    /// Circuit identity (schema, batch size, k).
    pub circuit_id: String,
    /// What fixes the circuit: the verifying key is derived from it.
    pub circuit: CircuitSpec,
    /// SHA-256 of the verifying key.
    pub vk_hash: String,
    /// The trial id, hex.
    pub trial_id: String,
    /// SHA-256 of the trial spec's canonical JSON.
    pub trial_hash: String,
    /// The trial spec (public by nature).
    pub trial: TrialSpec,
    /// The dataset's membership root, hex.
    pub member_root: String,
    /// The address that registered the dataset (the proof names its registration).
    pub registrant: Address,
    /// The trial's public constants.
    pub criteria: TrialCriteria,
    /// One entry per slot of the circuit.
    pub slots: Vec<EnrolledSlot>,
    /// Public inputs as 32-byte big-endian hex words, in circuit order.
    pub instances: Vec<String>,
    /// The proof, hex.
    pub proof: String,
    /// Calldata for the generated verifier: instances then proof, hex.
    pub calldata: String,
}

impl EligibilityArtifact {
    /// The public inputs the decoded fields encode (each field element in its one hex form).
    fn public(&self) -> Result<EligibilityPublic, VerifyError> {
        let field = |name: &str, h: &str| field_hex(|| name.to_owned(), h);
        Ok(EligibilityPublic {
            member_root: field("member_root", &self.member_root)?,
            trial_id: field("trial_id", &self.trial_id)?,
            registrant: crate::chain::address_to_fr(self.registrant),
            criteria: self.criteria.clone(),
            slots: self
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    Ok((
                        field(&format!("slots[{i}].nullifier"), &s.nullifier)?,
                        field(&format!("slots[{i}].payout"), &s.payout)?,
                    ))
                })
                .collect::<Result<_, VerifyError>>()?,
        })
    }

    /// Nullifiers of the enrolled (non-empty) slots.
    pub fn nullifiers(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| fr_from_hex(&s.nullifier) != Some(Fr::ZERO))
            .map(|s| s.nullifier.clone())
            .collect()
    }
}

/// One patient to prove: an opened credential, the patient's identity and where their share
/// of the bounty goes.
pub struct Candidate<'a> {
    /// The patient's credential.
    pub credential: &'a OpenedCredential,
    /// The patient's identity (its commitment must be the credential's).
    pub identity: &'a Identity,
    /// Payout address as a field element (`Fr::ZERO`: the custodian takes the whole bounty).
    pub payout: Fr,
}

/// Proves that every candidate (1..=B of them, one dataset) meets `trial`.
///
/// Checks everything natively first, so an ineligible patient gets a reason
/// ([`ProofError::Ineligible`]) instead of a failed proof.
pub fn prove(
    keys: &CircuitKeys,
    params: &ParamsKZG<Bn256>,
    trial: &TrialSpec,
    trial_id: Fr,
    candidates: &[Candidate<'_>],
) -> Result<EligibilityArtifact, ProofError> {
    let config = &keys.config;
    let batch = config.batch().ok_or_else(|| {
        ProofError::Artifact(format!(
            "{} is not an eligibility circuit",
            config.circuit_id
        ))
    })?;
    let schema = &config.schema;
    if candidates.is_empty() || candidates.len() > batch {
        return Err(ProofError::Artifact(format!(
            "{} patients do not fit circuit {} (1..={batch})",
            candidates.len(),
            config.circuit_id
        )));
    }
    if !valid_trial_id(&trial_id) {
        return Err(ProofError::Artifact(format!(
            "trial id {} is below 2^{MIN_TRIAL_ID_BITS}",
            fr_to_hex(&trial_id)
        )));
    }
    let criteria = trial
        .compile(schema)
        .map_err(|e| ProofError::Artifact(e.to_string()))?;
    let member_root = candidates[0].credential.member_root;
    let registrant = candidates[0].credential.credential.registrant;
    let mut slots = Vec::with_capacity(batch);
    for (i, c) in candidates.iter().enumerate() {
        let cred = c.credential;
        let who = format!("patient {} (record {})", i + 1, cred.credential.index);
        if cred.credential.schema != *schema {
            return Err(ProofError::Artifact(format!(
                "{who}: credential schema `{}` does not fit circuit {}",
                cred.credential.schema.name, config.circuit_id
            )));
        }
        if cred.member_root != member_root || cred.credential.registrant != registrant {
            return Err(ProofError::Artifact(format!(
                "{who}: a batch holds patients of one dataset (and registration) only"
            )));
        }
        if c.identity.commitment() != cred.identity {
            return Err(ProofError::Artifact(format!(
                "{who}: this identity is not the one the credential was issued for"
            )));
        }
        if candidates[..i]
            .iter()
            .any(|o| o.credential.identity == cred.identity)
        {
            return Err(ProofError::Artifact(format!(
                "{who} is already in this batch"
            )));
        }
        criteria
            .check(schema, &cred.values)
            .map_err(|reason| ProofError::Ineligible(format!("{who}: {reason}")))?;
        slots.push(PatientSlot::patient(
            &cred.values,
            cred.blind,
            c.identity.secret,
            cred.credential.index,
            cred.path.clone(),
            c.payout,
        ));
    }
    slots.resize(batch, PatientSlot::empty(schema));
    let registrant_fr = crate::chain::address_to_fr(registrant);
    let witness = EligibilityWitness {
        member_root,
        trial_id,
        registrant: registrant_fr,
        criteria: criteria.clone(),
        slots,
    };
    let mut circuit = config.prover_circuit();
    eligibility::build(&mut circuit, schema, &witness);
    let (instances, proof) = create(
        keys,
        params,
        circuit,
        &format!("proving eligibility of {} patient(s)", candidates.len()),
    )?;

    let expected = EligibilityPublic {
        member_root,
        trial_id,
        registrant: registrant_fr,
        criteria: criteria.clone(),
        slots: witness
            .slots
            .iter()
            .map(|s| {
                let n = if s.enabled {
                    membership::nullifier(s.secret, trial_id)
                } else {
                    Fr::ZERO
                };
                (n, if s.enabled { s.payout } else { Fr::ZERO })
            })
            .collect(),
    };
    if expected.to_fields() != instances {
        return Err(ProofError::Artifact(
            "the circuit's public inputs differ from the native computation".into(),
        ));
    }
    Ok(EligibilityArtifact {
        version: ELIGIBILITY_VERSION,
        circuit_id: config.circuit_id.clone(),
        circuit: config.spec(),
        vk_hash: keys.vk_hash.clone(),
        trial_id: fr_to_hex(&trial_id),
        trial_hash: format!("0x{}", hex::encode(trial.hash())),
        trial: trial.clone(),
        member_root: fr_to_hex(&member_root),
        registrant,
        criteria,
        slots: expected
            .slots
            .iter()
            .map(|(n, p)| EnrolledSlot {
                nullifier: fr_to_hex(n),
                payout: fr_to_hex(p),
            })
            .collect(),
        instances: instances.iter().map(fr_to_hex).collect(),
        calldata: calldata_hex(&instances, &proof),
        proof: format!("0x{}", hex::encode(proof)),
    })
}

/// Verifies an eligibility artifact offline, on any machine (what a regulator runs on a proof
/// from the chain): the trial hash against the trial spec, the criteria against what the spec
/// compiles to for the circuit's schema, the decoded root, trial id and slots and the calldata
/// against the instances, the circuit against its verifier in `manifest`, and the proof with
/// the verifying key derived from the recorded schema and shape (see
/// [`crate::proof::verify`]).
pub fn verify(
    artifact: &EligibilityArtifact,
    store: &KeyStore,
    manifest: &Manifest,
) -> Result<Verified, VerifyError> {
    SealedProof {
        kind: "eligibility",
        version: (artifact.version, ELIGIBILITY_VERSION),
        circuit_id: &artifact.circuit_id,
        circuit: &artifact.circuit,
        vk_hash: &artifact.vk_hash,
        instances: &artifact.instances,
        proof: &artifact.proof,
        calldata: &artifact.calldata,
    }
    .verify(store, manifest, |instances| {
        let computed = format!("0x{}", hex::encode(artifact.trial.hash()));
        if computed != artifact.trial_hash {
            return Err(VerifyError::SpecHash {
                field: "trial_hash",
                recorded: artifact.trial_hash.clone(),
                computed,
            });
        }
        let expected = artifact
            .trial
            .compile(&artifact.circuit.schema)
            .map_err(VerifyError::Spec)?;
        if expected != artifact.criteria {
            return Err(VerifyError::Constants {
                what: "trial criteria",
            });
        }
        let fields = artifact.public()?.to_fields();
        let slots_at = EligibilityPublic::slot_at(&artifact.circuit.schema, 0);
        match (0..instances.len()).find(|&i| fields.get(i) != Some(&instances[i])) {
            None if fields.len() == instances.len() => Ok(()),
            None => Err(VerifyError::Public {
                field: "slots".into(),
            }),
            Some(i) => Err(VerifyError::Public {
                field: match i {
                    EligibilityPublic::MEMBER_ROOT_AT => "member_root".into(),
                    EligibilityPublic::TRIAL_ID_AT => "trial_id".into(),
                    EligibilityPublic::REGISTRANT_AT => "registrant".into(),
                    i if i < slots_at => "criteria".into(),
                    i => {
                        let slot = (i - slots_at) / 2;
                        let part = ["nullifier", "payout"][(i - slots_at) % 2];
                        format!("slots[{slot}].{part}")
                    }
                },
            }),
        }
    })
}
