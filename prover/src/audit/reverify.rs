//! Re-verifies, off-chain, every proof a market accepted: the proof and public inputs are read
//! back from the transaction's calldata (the market call decoded with the contracts' ABI),
//! checked against what the events and the registry say, then verified with halo2's verifier
//! and the verifying key of the circuit the market recorded, derived here from the circuit id
//! (never trusted from the prover).

use std::collections::{BTreeMap, HashMap};

use alloy::{
    primitives::{keccak256, Address, Bytes, B256, U256},
    sol_types::SolCall,
};
use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, G1Affine},
    plonk::VerifyingKey,
    poly::kzg::commitment::ParamsKZG,
};
use serde::{Serialize, Serializer};

use super::model::{word_hex, Contract, History, Query, Trial};
use crate::{
    chain::{circuit_key, fr_to_u256, QueryMarket, TrialMarket},
    circuit::{
        eligibility::EligibilityPublic,
        fast::{commit::DataCommitment, fold::InputLayout, record::FoldSchema},
        InputIndex,
    },
    commitment::{fr_from_hex, RecordLayout},
    keys::{vk_hash, CircuitConfig, FoldSpec, KeyStore},
    proof::verify_instances,
    query::ClaimBinding,
    schema::Schema,
    Fr,
};

/// A transaction's recipient and input, as the node returned them.
#[derive(Clone, Debug)]
pub struct Calldata {
    /// Recipient (none: a contract creation).
    pub to: Option<Address>,
    /// Input bytes.
    pub input: Bytes,
}

/// What re-verification found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// halo2's verifier accepts the proof with the circuit's verifying key.
    Verified,
    /// halo2's verifier rejects the proof (or its inputs cannot be the circuit's).
    Failed {
        /// Why.
        reason: String,
    },
    /// The calldata disagrees with the events (another proof, other inputs or results).
    Disagrees {
        /// How.
        reason: String,
    },
    /// It could not be checked (calldata not a direct market call, circuit or schema unknown).
    NotChecked {
        /// Why.
        reason: String,
    },
}

fn opt_word<S: Serializer>(x: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(x) => s.collect_str(&word_hex(x)),
        None => s.serialize_none(),
    }
}

/// One accepted proof and its off-chain re-verification.
#[derive(Clone, Debug, Serialize)]
pub struct ProofCheck {
    /// Which market accepted it.
    pub market: Contract,
    /// The transaction carrying it.
    pub tx: B256,
    /// Its block.
    pub block: u64,
    /// keccak256 of the proof.
    pub proof_hash: B256,
    /// The query answered (claims).
    pub query: Option<u64>,
    /// The dataset the proof is about.
    pub dataset: Option<u64>,
    /// The trial (enrolments).
    #[serde(serialize_with = "opt_word")]
    pub trial: Option<U256>,
    /// Patients enrolled by it (enrolments).
    pub patients: usize,
    /// keccak256 of the circuit id the market recorded.
    pub circuit: B256,
    /// The circuit id, when known.
    pub circuit_id: Option<String>,
    /// The verifier that accepted it on-chain (from `ProofAccepted`).
    pub verifier: Option<Address>,
    /// SHA-256 of the verifying key it was re-verified with.
    pub vk_hash: Option<String>,
    /// The result.
    pub outcome: Outcome,
}

impl ProofCheck {
    /// Whether it re-verified.
    pub fn verified(&self) -> bool {
        self.outcome == Outcome::Verified
    }
}

/// A circuit's verifying key, derived here.
struct Key {
    params: ParamsKZG<Bn256>,
    vk: VerifyingKey<G1Affine>,
    /// Its number of public inputs.
    instances: usize,
    /// SHA-256 of the verifying key.
    hash: String,
    /// A fold circuit's input layout and data columns `W` (`None`: a Poseidon circuit).
    fold: Option<(InputLayout, usize)>,
}

/// Verifying keys per circuit id, derived from the circuit id and a known schema with the
/// store's params (cached keys are used when present).
pub(crate) struct Keys<'a> {
    store: &'a KeyStore,
    schemas: &'a [Schema],
    names: BTreeMap<B256, String>,
    /// The verifying-key hash the verifier manifest records per circuit id.
    recorded: BTreeMap<String, String>,
    cache: HashMap<String, Result<Key, String>>,
}

impl<'a> Keys<'a> {
    /// `circuit_ids`: every circuit id the auditor knows by name (deployment file, manifest);
    /// `recorded`: the verifying-key hashes the manifest records, per circuit id.
    pub(crate) fn new(
        store: &'a KeyStore,
        schemas: &'a [Schema],
        circuit_ids: &[String],
        recorded: BTreeMap<String, String>,
    ) -> Self {
        Keys {
            store,
            schemas,
            names: circuit_ids
                .iter()
                .map(|id| (circuit_key(id), id.clone()))
                .collect(),
            recorded,
            cache: HashMap::new(),
        }
    }

    /// The circuit id whose keccak256 is `circuit`.
    pub(crate) fn name(&self, circuit: B256) -> Option<&str> {
        self.names.get(&circuit).map(String::as_str)
    }

    fn key(&mut self, circuit_id: &str) -> Result<&Key, String> {
        if !self.cache.contains_key(circuit_id) {
            let key = derive(self.store, self.schemas, circuit_id).and_then(|k| {
                match self.recorded.get(circuit_id) {
                    Some(recorded) if !recorded.eq_ignore_ascii_case(&k.hash) => Err(format!(
                        "the verifying key derived here for {circuit_id} (vk {}) is not the one \
                         the verifier manifest records ({recorded}): the params given here are \
                         not the verifiers' (pass the same --params)",
                        k.hash
                    )),
                    _ => Ok(k),
                }
            });
            self.cache.insert(circuit_id.to_owned(), key);
        }
        self.cache[circuit_id].as_ref().map_err(Clone::clone)
    }
}

/// Plans the circuit a circuit id names (`agg2-<schema>-n<capacity>-k<k>`,
/// `elig3-<schema>-b<batch>-k<k>` or a fold circuit's `fold3-<schema>-…`) for the known schema
/// with that hash prefix, checks that the plan has this very id, and derives its verifying key
/// with the store's params (cached; key generation is deterministic, so this is the key of
/// every honest prover of the circuit).
fn derive(store: &KeyStore, schemas: &[Schema], circuit_id: &str) -> Result<Key, String> {
    let parts: Vec<&str> = circuit_id.split('-').collect();
    let bad = || format!("`{circuit_id}` is not a zkcohort circuit id");
    if parts.first() == Some(&crate::circuit::fast::record::FOLD_FAMILY) {
        return derive_fold(
            store,
            schemas,
            circuit_id,
            parts.get(1).copied().unwrap_or(""),
        );
    }
    let [kind, prefix, size, k] = parts.as_slice() else {
        return Err(bad());
    };
    let number = |s: &str, tag: char| {
        s.strip_prefix(tag)
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(bad)
    };
    number(k, 'k')?;
    let schema = schemas
        .iter()
        .find(|s| hex::encode(&s.hash()[..4]) == *prefix)
        .ok_or_else(|| {
            format!("circuit {circuit_id} is for schema {prefix}…, which is not among the schemas given (--schema)")
        })?;
    let config = match *kind {
        crate::keys::AGGREGATE_FAMILY => {
            CircuitConfig::plan(schema, &RecordLayout::new(schema, number(size, 'n')?))
        }
        crate::keys::ELIGIBILITY_FAMILY => match number(size, 'b')? {
            0 => return Err(bad()),
            b => CircuitConfig::plan_eligibility(schema, b),
        },
        _ => return Err(bad()),
    };
    if config.circuit_id != circuit_id {
        return Err(format!(
            "schema `{}` plans {} where the chain names {circuit_id}: another version of the circuit",
            schema.name, config.circuit_id
        ));
    }
    let params = store.params(config.k()).map_err(|e| e.to_string())?;
    let vk = store
        .verifying_key_for(&config, &params, false)
        .map_err(|e| e.to_string())?;
    let hash = vk_hash(&vk);
    Ok(Key {
        params,
        vk,
        instances: config.num_instances(),
        hash,
        fold: None,
    })
}

/// [`derive`] for a fold circuit: its spec parsed from the id ([`FoldSpec::from_circuit_id`],
/// which re-derives the id), its keys from the store (cached).
fn derive_fold(
    store: &KeyStore,
    schemas: &[Schema],
    circuit_id: &str,
    prefix: &str,
) -> Result<Key, String> {
    let schema = schemas
        .iter()
        .find(|s| hex::encode(&s.hash()[..4]) == prefix)
        .ok_or_else(|| {
            format!("circuit {circuit_id} is for schema {prefix}…, which is not among the schemas given (--schema)")
        })?;
    let spec = FoldSpec::from_circuit_id(schema, circuit_id).map_err(|e| e.to_string())?;
    let fold = FoldSchema::of(schema).map_err(|e| e.to_string())?;
    let params = spec.params(&fold).map_err(|e| e.to_string())?;
    let (kzg, keys) = store
        .fold_circuit(&fold, &params)
        .map_err(|e| e.to_string())?;
    let layout = params.inputs();
    Ok(Key {
        params: kzg,
        vk: keys.pk.get_vk().clone(),
        instances: layout.len(),
        hash: keys.vk_hash,
        fold: Some((layout, spec.data_columns)),
    })
}

fn field(x: &U256) -> Option<Fr> {
    fr_from_hex(&word_hex(x))
}

/// Checks `proof` and `inputs` against circuit `circuit_id` with halo2's verifier; records the
/// verifying key's hash in `check`.
fn verify(
    keys: &mut Keys<'_>,
    circuit_id: &str,
    inputs: &[U256],
    proof: &[u8],
    check: &mut ProofCheck,
) -> Outcome {
    let key = match keys.key(circuit_id) {
        Ok(k) => k,
        Err(reason) => return Outcome::NotChecked { reason },
    };
    check.vk_hash = Some(key.hash.clone());
    if inputs.len() != key.instances {
        return Outcome::Failed {
            reason: format!(
                "{} public inputs, circuit {circuit_id} has {}",
                inputs.len(),
                key.instances
            ),
        };
    }
    let Some(instances) = inputs.iter().map(field).collect::<Option<Vec<Fr>>>() else {
        return Outcome::Failed {
            reason: "a public input is not a field element".into(),
        };
    };
    match verify_instances(&key.params, &key.vk, &instances, proof) {
        Ok(()) => Outcome::Verified,
        Err(e) => Outcome::Failed {
            reason: format!("halo2 rejects the proof with the verifying key of {circuit_id}: {e}"),
        },
    }
}

fn accepted(
    history: &History,
    market: Contract,
    tx: B256,
    proof_hash: B256,
) -> Option<&super::model::Accepted> {
    history
        .accepted
        .iter()
        .find(|a| a.market == market && a.at.tx == tx && a.proof_hash == proof_hash)
}

/// Re-verifies every claim of `query`.
pub(crate) fn claims(
    chain_id: u64,
    history: &History,
    query: &Query,
    market: Address,
    calldata: &HashMap<B256, Calldata>,
    keys: &mut Keys<'_>,
) -> Vec<ProofCheck> {
    let mut out = Vec::new();
    for claim in &query.claims {
        let dataset = history.datasets.get(&claim.dataset);
        let acc = accepted(
            history,
            Contract::QueryMarket,
            claim.at.tx,
            claim.proof_hash,
        );
        let circuit = acc
            .map(|a| a.circuit)
            .or(dataset.map(|d| d.circuit))
            .unwrap_or_default();
        let mut check = ProofCheck {
            market: Contract::QueryMarket,
            tx: claim.at.tx,
            block: claim.at.block,
            proof_hash: claim.proof_hash,
            query: Some(query.id),
            dataset: Some(claim.dataset),
            trial: None,
            patients: 0,
            circuit,
            circuit_id: keys.name(circuit).map(str::to_owned),
            verifier: acc.map(|a| a.verifier),
            vk_hash: None,
            outcome: Outcome::Verified,
        };
        check.outcome = check_claim(
            chain_id, query, claim, dataset, market, calldata, keys, &mut check,
        )
        .unwrap_or_else(|reason| Outcome::Disagrees { reason });
        out.push(check);
    }
    out
}

/// `Err` is a disagreement between calldata and events.
#[allow(clippy::too_many_arguments)]
fn check_claim(
    chain_id: u64,
    query: &Query,
    claim: &super::model::Claim,
    dataset: Option<&super::model::Dataset>,
    market: Address,
    calldata: &HashMap<B256, Calldata>,
    keys: &mut Keys<'_>,
    check: &mut ProofCheck,
) -> Result<Outcome, String> {
    let Some(tx) = calldata.get(&claim.at.tx) else {
        return Ok(Outcome::NotChecked {
            reason: "the node did not return the transaction".into(),
        });
    };
    let call = match (tx.to, QueryMarket::claimCall::abi_decode(&tx.input)) {
        (Some(to), Ok(call)) if to == market => call,
        _ => {
            return Ok(Outcome::NotChecked {
                reason: "the transaction does not call the market's claim() directly (e.g. it \
                         went through another contract), so its proof is not in the calldata"
                    .into(),
            })
        }
    };
    if call.queryId != U256::from(query.id) || call.datasetId != U256::from(claim.dataset) {
        return Err(format!(
            "the calldata claims query #{} for dataset #{}, the event says query #{} dataset #{}",
            call.queryId, call.datasetId, query.id, claim.dataset
        ));
    }
    if keccak256(&call.proof) != claim.proof_hash {
        return Err("the calldata's proof does not hash to the proof hash in the event".into());
    }
    // The context the market computed for this claim: its chain, itself, the query and the
    // custodian that sent it.
    let binding = ClaimBinding {
        chain_id,
        market,
        query_id: query.id,
        claimant: claim.custodian,
    };
    // Unnamed, the circuit's family (so its input layout: a Poseidon circuit's and a fold
    // circuit's have the same length) is unknown.
    let Some(named) = check.circuit_id.clone() else {
        return Ok(Outcome::NotChecked {
            reason: format!(
                "circuit {} is named neither in the deployment file nor in the verifier manifest",
                check.circuit
            ),
        });
    };
    if named.split('-').next() == Some(crate::circuit::fast::record::FOLD_FAMILY) {
        let circuit_id = named;
        let layout = match keys.key(&circuit_id).map(|k| k.fold.clone()) {
            Ok(Some(fold)) => fold,
            Ok(None) => {
                return Ok(Outcome::NotChecked {
                    reason: format!("{circuit_id} did not derive a fold circuit"),
                })
            }
            Err(reason) => return Ok(Outcome::NotChecked { reason }),
        };
        check_fold_claim(query, claim, dataset, &binding, &call, &layout)?;
        return Ok(verify(
            keys,
            &circuit_id,
            &call.publicInputs,
            &call.proof,
            check,
        ));
    }
    let inputs = &call.publicInputs;
    let at = InputIndex {
        constants: query.constants.len(),
    };
    if inputs.len() != at.len() {
        return Err(format!(
            "{} public inputs for a query of {} constants",
            inputs.len(),
            at.constants
        ));
    }
    if inputs[at.constants()] != query.constants[..] {
        return Err("the proof's constants are not the query's posted constants".into());
    }
    if let Some(d) = dataset {
        if B256::from(inputs[InputIndex::COMMITMENT]) != d.commitment {
            return Err(format!(
                "the proof is about commitment {}, dataset #{} registered {}",
                B256::from(inputs[InputIndex::COMMITMENT]),
                d.id,
                d.commitment
            ));
        }
        if inputs[at.records()] != U256::from(d.record_count) {
            return Err(format!(
                "the proof counts {} records, dataset #{} registered {}",
                inputs[at.records()],
                d.id,
                d.record_count
            ));
        }
    }
    if inputs[at.context()] != fr_to_u256(&binding.context()) {
        return Err(format!(
            "the proof's claim context is not that of query #{} claimed by {}",
            query.id, claim.custodian
        ));
    }
    let results = [claim.count, claim.sum, claim.sum_squares];
    let suppressed = inputs[at.suppressed()] == U256::from(1);
    // A circuit whose inputs carry no `nonmissing` has the market report it as `count`.
    if claim.verdict.is_some() {
        return Err("a circuit releasing numbers reported as an attestation (`Attested`)".into());
    }
    if inputs[at.sums()] != results[..]
        || suppressed != claim.suppressed
        || claim.nonmissing != claim.count
    {
        return Err("the released results in the event differ from the proof's inputs".into());
    }
    Ok(verify(keys, &named, inputs, &call.proof, check))
}

/// The checks of a fold claim's calldata against the events and the registry (the layout:
/// [`InputLayout`], with `w` data columns): the posted constants, the dataset's commitment
/// (the hash of the proof's first `64·W` bytes, as the market computes it) and record count,
/// the claim context, and the released values (with the non-missing count) the `Claimed`
/// event reports. `Err` is a disagreement.
fn check_fold_claim(
    query: &Query,
    claim: &super::model::Claim,
    dataset: Option<&super::model::Dataset>,
    binding: &ClaimBinding,
    call: &QueryMarket::claimCall,
    (layout, w): &(InputLayout, usize),
) -> Result<(), String> {
    let inputs = &call.publicInputs;
    if inputs.len() != layout.len() {
        return Err(format!(
            "{} public inputs, the fold circuit has {}",
            inputs.len(),
            layout.len()
        ));
    }
    if inputs[..layout.constants()] != query.constants[..] {
        return Err("the proof's constants are not the query's posted constants".into());
    }
    if let Some(d) = dataset {
        let commitment = DataCommitment::from_proof(&call.proof, *w)
            .map(|c| B256::from(fr_to_u256(&c.hash())))
            .map_err(|e| format!("the proof does not start with a data commitment: {e}"))?;
        if commitment != d.commitment {
            return Err(format!(
                "the proof opens commitment {commitment}, dataset #{} registered {}",
                d.id, d.commitment
            ));
        }
        if inputs[layout.records()] != U256::from(d.record_count) {
            return Err(format!(
                "the proof counts {} records, dataset #{} registered {}",
                inputs[layout.records()],
                d.id,
                d.record_count
            ));
        }
    }
    if inputs[layout.context()] != fr_to_u256(&binding.context()) {
        return Err(format!(
            "the proof's claim context is not that of query #{} claimed by {}",
            query.id, claim.custodian
        ));
    }
    match (layout.verdict(), claim.verdict) {
        (Some(i), Some(yes)) => {
            if inputs[i] != U256::from(yes as u8) {
                return Err("the verdict in the event differs from the proof's".into());
            }
        }
        (Some(_), None) => {
            return Err("an attestation circuit's answer reported as numbers (`Claimed`)".into())
        }
        (None, Some(_)) => {
            return Err(
                "a circuit releasing numbers reported as an attestation (`Attested`)".into(),
            )
        }
        (None, None) => {
            let released = [
                (layout.count(), claim.count),
                (layout.nonmissing(), claim.nonmissing),
                (layout.sum(), claim.sum),
                (layout.sum_squares(), claim.sum_squares),
                (layout.suppressed(), U256::from(claim.suppressed as u8)),
            ];
            if released.iter().any(|&(i, event)| inputs[i] != event) {
                return Err(
                    "the released results in the event differ from the proof's inputs".into(),
                );
            }
        }
    }
    Ok(())
}

/// Re-verifies every enrolment proof of `trial` (one per transaction and proof).
pub(crate) fn enrolments(
    history: &History,
    trial: &Trial,
    market: Address,
    calldata: &HashMap<B256, Calldata>,
    keys: &mut Keys<'_>,
) -> Vec<ProofCheck> {
    let mut groups: Vec<(B256, B256, Vec<usize>)> = Vec::new();
    for (i, e) in trial.enrolments.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(tx, h, _)| *tx == e.at.tx && *h == e.proof_hash)
        {
            Some(g) => g.2.push(i),
            None => groups.push((e.at.tx, e.proof_hash, vec![i])),
        }
    }
    let mut out = Vec::new();
    for (tx, proof_hash, members) in groups {
        let first = &trial.enrolments[members[0]];
        let acc = accepted(history, Contract::TrialMarket, tx, proof_hash);
        let circuit = acc.map(|a| a.circuit).unwrap_or_default();
        let mut check = ProofCheck {
            market: Contract::TrialMarket,
            tx,
            block: first.at.block,
            proof_hash,
            query: None,
            dataset: Some(first.dataset),
            trial: Some(trial.id),
            patients: members.len(),
            circuit,
            circuit_id: keys.name(circuit).map(str::to_owned),
            verifier: acc.map(|a| a.verifier),
            vk_hash: None,
            outcome: Outcome::Verified,
        };
        check.outcome =
            check_enrolment(history, trial, &members, market, calldata, keys, &mut check)
                .unwrap_or_else(|reason| Outcome::Disagrees { reason });
        out.push(check);
    }
    out
}

fn check_enrolment(
    history: &History,
    trial: &Trial,
    members: &[usize],
    market: Address,
    calldata: &HashMap<B256, Calldata>,
    keys: &mut Keys<'_>,
    check: &mut ProofCheck,
) -> Result<Outcome, String> {
    let Some(tx) = calldata.get(&check.tx) else {
        return Ok(Outcome::NotChecked {
            reason: "the node did not return the transaction".into(),
        });
    };
    let call = match (tx.to, TrialMarket::enrollCall::abi_decode(&tx.input)) {
        (Some(to), Ok(call)) if to == market => call,
        _ => {
            return Ok(Outcome::NotChecked {
                reason: "the transaction does not call the trial market's enroll() directly, \
                         so its proof is not in the calldata"
                    .into(),
            })
        }
    };
    if call.trialId != trial.id {
        return Err(format!(
            "the calldata enrols in trial {}, the events say {}",
            word_hex(&call.trialId),
            word_hex(&trial.id)
        ));
    }
    if keccak256(&call.proof) != check.proof_hash {
        return Err("the calldata's proof does not hash to the proof hash in the events".into());
    }
    if check.circuit == B256::ZERO {
        check.circuit = call.circuitId;
        check.circuit_id = keys.name(call.circuitId).map(str::to_owned);
    } else if check.circuit != call.circuitId {
        return Err(format!(
            "the calldata names circuit {}, the market accepted the proof as {}",
            call.circuitId, check.circuit
        ));
    }
    let inputs = &call.publicInputs;
    let n = trial.criteria.len();
    let at = EligibilityPublic::CRITERIA_AT;
    if inputs.len() < at + n || !(inputs.len() - at - n).is_multiple_of(2) {
        return Err(format!(
            "{} public inputs for a trial of {n} criteria",
            inputs.len()
        ));
    }
    if inputs[EligibilityPublic::TRIAL_ID_AT] != trial.id
        || inputs[at..at + n] != trial.criteria[..]
    {
        return Err("the proof's trial id or criteria are not the trial's posted ones".into());
    }
    let first = &trial.enrolments[members[0]];
    if let Some(d) = history.datasets.get(&first.dataset) {
        let root = B256::from(inputs[EligibilityPublic::MEMBER_ROOT_AT]);
        if root != d.member_root {
            return Err(format!(
                "the proof opens membership root {root}, dataset #{} registered {}",
                d.id, d.member_root
            ));
        }
        let registrant = inputs[EligibilityPublic::REGISTRANT_AT];
        if registrant != U256::from_be_slice(d.registered_by.as_slice()) {
            return Err(format!(
                "the proof names registrant {}, dataset #{} was registered by {}",
                word_hex(&registrant),
                d.id,
                d.registered_by
            ));
        }
    }
    let slots: Vec<(U256, U256)> = inputs[at + n..].chunks(2).map(|s| (s[0], s[1])).collect();
    for &i in members {
        let e = &trial.enrolments[i];
        let payout = U256::from_be_slice(e.patient_payout.as_slice());
        if !slots.contains(&(e.nullifier, payout)) {
            return Err(format!(
                "enrolled nullifier {} (payout {}) is not a slot of the proof",
                word_hex(&e.nullifier),
                e.patient_payout
            ));
        }
    }
    let Some(circuit_id) = check.circuit_id.clone() else {
        return Ok(Outcome::NotChecked {
            reason: format!(
                "circuit {} is named neither in the deployment file nor in the verifier manifest",
                check.circuit
            ),
        });
    };
    Ok(verify(keys, &circuit_id, inputs, &call.proof, check))
}
