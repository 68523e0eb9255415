//! Proving, proof artifacts, and offline verification.
//!
//! Proofs use SHPLONK over KZG with a Keccak transcript (`EvmTranscript`), the combination the
//! generated Solidity verifier checks. An artifact carries only public data: the circuit's
//! schema and shape, the commitment, the query and its constants and the released aggregates;
//! never a record value.
//!
//! Verification is portable: an artifact records what fixes its circuit ([`CircuitSpec`]),
//! and the verifier re-derives the verifying key from it and the universal params (key
//! generation is deterministic), caching it, then requires its hash to be the one recorded in
//! the verifier manifest (`contracts/verifiers/verifiers.json`, [`Manifest`]) for the deployed
//! verifier of that circuit. Deriving rather than shipping the key keeps artifacts small and
//! leaves nothing to trust from the prover: a shipped key would have to be checked against the
//! same hash anyway, and the derivation costs a few seconds once per circuit and machine.

pub mod fold;

use std::{fs, path::Path};

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::{create_proof, verify_proof, VerifyingKey},
    poly::{
        commitment::ParamsProver,
        kzg::{
            commitment::{KZGCommitmentScheme, ParamsKZG},
            multiopen::{ProverSHPLONK, VerifierSHPLONK},
            strategy::SingleStrategy,
        },
    },
    transcript::{TranscriptReadBuffer, TranscriptWriterBuffer},
};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use snark_verifier_sdk::snark_verifier::{
    loader::evm::encode_calldata, system::halo2::transcript::evm::EvmTranscript,
};

use crate::{
    circuit::{
        self, eligibility::EligibilityPublic, gated::GatedCircuit, AggregateWitness, PublicInputs,
    },
    commitment::{fr_from_hex, fr_to_hex, RecordLayout},
    dataset::CommittedDataset,
    eligibility::EligibilityArtifact,
    error::{ProofError, VerifyError},
    evm::Manifest,
    keys::{
        vk_hash, CircuitConfig, CircuitKeys, CircuitShape, CircuitSpec, KeyStore, ParamsFingerprint,
    },
    query::{ClaimBinding, QueryConstants, QueryResult, QuerySpec},
};

/// Artifact format version (2: the circuit's schema and shape are recorded, so any machine
/// re-derives the verifying key; 3: aggregate proofs carry their claim context and binding).
pub const ARTIFACT_VERSION: u32 = 3;

/// The JSON a `prove` run writes. Every field is checked by [`verify`]: by the proof, by a
/// hash, or against another field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofArtifact {
    /// Format version.
    pub version: u32,
    /// Circuit identity (schema, capacity, k).
    pub circuit_id: String,
    /// What fixes the circuit: the verifying key is derived from it.
    pub circuit: CircuitSpec,
    /// SHA-256 of the verifying key.
    pub vk_hash: String,
    /// SHA-256 of the query spec's canonical JSON.
    pub query_hash: String,
    /// The query spec itself (public by nature).
    pub query: QuerySpec,
    /// The market query this proof may be claimed for (`null`: none; its context is 0).
    pub binding: Option<ClaimBinding>,
    /// Decoded public inputs.
    pub public: DecodedPublic,
    /// Public inputs as 32-byte big-endian hex words, in circuit order.
    pub instances: Vec<String>,
    /// The proof, hex.
    pub proof: String,
    /// Calldata for the generated verifier: instances then proof, hex.
    pub calldata: String,
}

/// Public inputs in readable form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodedPublic {
    /// Dataset commitment, hex.
    pub commitment: String,
    /// Query constants.
    pub query: QueryConstants,
    /// Claim context, hex ([`ClaimBinding::context`]; 0 if unbound).
    pub context: String,
    /// Released aggregates.
    pub result: QueryResult,
}

impl From<PublicInputs> for DecodedPublic {
    fn from(p: PublicInputs) -> Self {
        DecodedPublic {
            commitment: fr_to_hex(&p.commitment),
            query: p.query,
            context: fr_to_hex(&p.context),
            result: p.result,
        }
    }
}

/// Proves `query` over a committed dataset, bound to `binding` (a market query and claimant)
/// or to nothing (context 0: a proof to read, which no market pays).
pub fn prove(
    keys: &CircuitKeys,
    params: &ParamsKZG<Bn256>,
    data: &CommittedDataset,
    query: &QuerySpec,
    binding: Option<&ClaimBinding>,
) -> Result<ProofArtifact, ProofError> {
    let schema = &data.dataset.schema;
    if *schema != keys.config.schema || Some(&data.layout) != keys.config.layout() {
        return Err(ProofError::Artifact(format!(
            "dataset (schema `{}`, capacity {}) does not fit circuit {}",
            schema.name, data.layout.capacity, keys.config.circuit_id
        )));
    }
    let constants = query
        .compile(schema)
        .map_err(|e| ProofError::Artifact(e.to_string()))?;
    if constants.threshold.is_some() {
        return Err(ProofError::AttestationNeedsFold);
    }
    let witness = AggregateWitness::new(
        &data.layout,
        data.salt,
        &data.dataset.records,
        constants,
        ClaimBinding::context_of(binding),
    );

    let mut circuit = keys.config.prover_circuit();
    circuit::build(&mut circuit.builder, schema, &data.layout, &witness);
    let (instances, proof) = create(
        keys,
        params,
        circuit,
        &format!("proving {} records", data.info.record_count),
    )?;

    let public = decode_public(schema, &instances)?;
    Ok(ProofArtifact {
        version: ARTIFACT_VERSION,
        circuit_id: keys.config.circuit_id.clone(),
        circuit: keys.config.spec(),
        vk_hash: keys.vk_hash.clone(),
        query_hash: format!("0x{}", hex::encode(query.hash())),
        query: query.clone(),
        binding: binding.cloned(),
        public,
        instances: instances.iter().map(fr_to_hex).collect(),
        calldata: calldata_hex(&instances, &proof),
        proof: format!("0x{}", hex::encode(proof)),
    })
}

/// Proves a synthesized circuit, checks the proof with halo2's verifier, and returns the
/// public inputs and the proof bytes.
pub(crate) fn create(
    keys: &CircuitKeys,
    params: &ParamsKZG<Bn256>,
    circuit: GatedCircuit,
    what: &str,
) -> Result<(Vec<Fr>, Vec<u8>), ProofError> {
    let bar = crate::progress::spinner(what.to_owned());
    bar.set_message(format!("{what}: polynomial commitments"));
    let (instances, proof) = create_unchecked(keys, params, circuit)?;
    bar.finish_and_clear();
    verify_instances(params, keys.pk.get_vk(), &instances, &proof)?;
    Ok((instances, proof))
}

/// Runs the prover on a synthesized circuit *without* checking the result: halo2's prover
/// does not check that the witness satisfies the constraints, so a witness that does not gives
/// a proof every verifier rejects. What an attacker can make at best, for attack tests (the
/// product's provers go through the checking path, [`prove`] and the eligibility prover).
pub fn create_unchecked(
    keys: &CircuitKeys,
    params: &ParamsKZG<Bn256>,
    circuit: GatedCircuit,
) -> Result<(Vec<Fr>, Vec<u8>), ProofError> {
    let instances = circuit.instances();
    let mut transcript = TranscriptWriterBuffer::<_, G1Affine, _>::init(Vec::new());
    create_proof::<
        KZGCommitmentScheme<Bn256>,
        ProverSHPLONK<'_, Bn256>,
        _,
        _,
        EvmTranscript<_, _, _, _>,
        _,
    >(
        params,
        &keys.pk,
        &[circuit],
        &[&[&instances]],
        OsRng,
        &mut transcript,
    )
    .map_err(|e| ProofError::Halo2(format!("create_proof: {e:?}")))?;
    Ok((instances, transcript.finalize()))
}

/// Verifier calldata (public inputs then proof), hex.
pub(crate) fn calldata_hex(instances: &[Fr], proof: &[u8]) -> String {
    format!(
        "0x{}",
        hex::encode(encode_calldata(&[instances.to_vec()], proof))
    )
}

/// A proof artifact of any kind, as `zkcohort verify` reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum Artifact {
    /// An aggregate-statistic proof (`prove`).
    Aggregate(ProofArtifact),
    /// An aggregate-statistic proof of a commit-and-prove circuit (`prove` on a dataset
    /// committed with `--fold`).
    Fold(fold::FoldArtifact),
    /// An eligibility proof (`patient prove-eligibility`).
    Eligibility(EligibilityArtifact),
}

impl Artifact {
    /// Parses an artifact strictly: its kind from its fields (`query` or `trial_id`), and
    /// nothing the format does not write (an unknown field, a value in another form), since
    /// nothing unchecked may ride along with a proof.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(VerifyError::Json)?;
        let (artifact, kind) = if value.get("fold").is_some() {
            let a =
                serde_json::from_value(value.clone()).map_err(|source| VerifyError::Malformed {
                    kind: "fold",
                    source,
                })?;
            (Artifact::Fold(a), "fold")
        } else if value.get("query").is_some() {
            let a =
                serde_json::from_value(value.clone()).map_err(|source| VerifyError::Malformed {
                    kind: "aggregate",
                    source,
                })?;
            (Artifact::Aggregate(a), "aggregate")
        } else if value.get("trial_id").is_some() {
            let a =
                serde_json::from_value(value.clone()).map_err(|source| VerifyError::Malformed {
                    kind: "eligibility",
                    source,
                })?;
            (Artifact::Eligibility(a), "eligibility")
        } else {
            return Err(VerifyError::UnknownKind);
        };
        let again = match &artifact {
            Artifact::Aggregate(a) => serde_json::to_value(a),
            Artifact::Fold(a) => serde_json::to_value(a),
            Artifact::Eligibility(a) => serde_json::to_value(a),
        }
        .map_err(|source| VerifyError::Malformed { kind, source })?;
        if let Some(field) = first_difference(&value, &again, "") {
            return Err(VerifyError::NotCanonical { field });
        }
        Ok(artifact)
    }

    /// Reads and parses an artifact file ([`Artifact::parse`]).
    pub fn read(path: &Path) -> Result<Self, VerifyError> {
        let bytes = fs::read(path).map_err(|source| VerifyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes)
    }

    /// The circuit the artifact names.
    pub fn circuit_id(&self) -> &str {
        match self {
            Artifact::Aggregate(a) => &a.circuit_id,
            Artifact::Fold(a) => &a.circuit_id,
            Artifact::Eligibility(a) => &a.circuit_id,
        }
    }
}

/// The JSON path (`public.result.sum`, `instances[3]`) of the first place `a` and `b` differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
        use serde_json::Value::{Array, Object};
        match (a, b) {
            (Object(x), Object(y)) => {
                x.keys()
                    .chain(y.keys())
                    .find_map(|k| match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => walk(u, v, &format!("{at}.{k}")),
                        _ => Some(format!("{at}.{k}")),
                    })
            }
            (Array(x), Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (u, v))| walk(u, v, &format!("{at}[{i}]"))),
            _ => (a != b).then(|| at.to_owned()),
        }
    }
    walk(a, b, at).map(|p| match p.strip_prefix('.') {
        Some(rest) => rest.to_owned(),
        None if p.is_empty() => "$".to_owned(),
        None => p,
    })
}

/// Verifies an artifact of either kind offline: see [`verify`] and
/// [`crate::eligibility::verify`].
pub fn verify_artifact(
    artifact: &Artifact,
    store: &KeyStore,
    manifest: &Manifest,
) -> Result<Verified, VerifyError> {
    match artifact {
        Artifact::Aggregate(a) => verify(a, store, manifest),
        Artifact::Fold(a) => fold::verify(a, store, manifest),
        Artifact::Eligibility(a) => crate::eligibility::verify(a, store, manifest),
    }
}

/// An answer to a market query, of either aggregate circuit family: what a claim sends and
/// what a ledger records.
pub trait Answer {
    /// The circuit it was proven with.
    fn circuit_id(&self) -> &str;
    /// The market query it may be claimed for.
    fn binding(&self) -> Option<&ClaimBinding>;
    /// The query spec answered.
    fn query(&self) -> &QuerySpec;
    /// The dataset commitment it opens (what the registry holds), hex.
    fn commitment(&self) -> &str;
    /// The released aggregates.
    fn result(&self) -> &QueryResult;
    /// Public inputs, hex words.
    fn instances(&self) -> &[String];
    /// The proof, hex.
    fn proof(&self) -> &str;
}

impl Answer for ProofArtifact {
    fn circuit_id(&self) -> &str {
        &self.circuit_id
    }
    fn binding(&self) -> Option<&ClaimBinding> {
        self.binding.as_ref()
    }
    fn query(&self) -> &QuerySpec {
        &self.query
    }
    fn commitment(&self) -> &str {
        &self.public.commitment
    }
    fn result(&self) -> &QueryResult {
        &self.public.result
    }
    fn instances(&self) -> &[String] {
        &self.instances
    }
    fn proof(&self) -> &str {
        &self.proof
    }
}

impl Answer for fold::FoldArtifact {
    fn circuit_id(&self) -> &str {
        &self.circuit_id
    }
    fn binding(&self) -> Option<&ClaimBinding> {
        self.binding.as_ref()
    }
    fn query(&self) -> &QuerySpec {
        &self.query
    }
    fn commitment(&self) -> &str {
        &self.public.commitment
    }
    fn result(&self) -> &QueryResult {
        &self.public.result
    }
    fn instances(&self) -> &[String] {
        &self.instances
    }
    fn proof(&self) -> &str {
        &self.proof
    }
}

/// What an artifact was verified against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verified {
    /// The circuit.
    pub circuit_id: String,
    /// SHA-256 of the verifying key derived here, equal to the artifact's and the manifest's.
    pub vk_hash: String,
    /// The verifier contract generated from that key (its name in the manifest).
    pub verifier: String,
    /// Where the manifest came from.
    pub manifest: String,
    /// The params the key was derived from (dev params: anyone can forge proofs).
    pub params: ParamsFingerprint,
}

/// A field element in the artifact format's one form: `0x` and 64 lowercase hex digits, below
/// the field modulus.
pub(crate) fn field_hex(field: impl Fn() -> String, s: &str) -> Result<Fr, VerifyError> {
    fr_from_hex(s)
        .filter(|x| fr_to_hex(x) == s)
        .ok_or_else(|| VerifyError::Hex {
            field: field(),
            expected: "a field element (0x and 64 lowercase hex digits, below the modulus)",
        })
}

/// What every artifact carries for offline verification.
pub(crate) struct SealedProof<'a> {
    pub kind: &'static str,
    pub version: (u32, u32),
    pub circuit_id: &'a str,
    pub circuit: &'a CircuitSpec,
    pub vk_hash: &'a str,
    pub instances: &'a [String],
    pub proof: &'a str,
    pub calldata: &'a str,
}

impl SealedProof<'_> {
    /// Checks everything an artifact holds and the proof, cheapest first: the version; the
    /// circuit against the manifest's verifier (schema, vk hash); the kind's own fields
    /// (`decoded` checks the spec and returns the public inputs the decoded fields encode,
    /// which must be the instances); the calldata; the circuit id against a fresh plan of the
    /// recorded schema and shape; then the verifying key, derived deterministically from that
    /// plan and the params (or read from the cache), whose hash must be the artifact's and the
    /// manifest's; and halo2's verifier.
    pub(crate) fn verify(
        &self,
        store: &KeyStore,
        manifest: &Manifest,
        check: impl FnOnce(&[Fr]) -> Result<(), VerifyError>,
    ) -> Result<Verified, VerifyError> {
        let (found, supported) = self.version;
        if found != supported {
            return Err(VerifyError::Version { found, supported });
        }
        let schema = &self.circuit.schema;
        match (&self.circuit.shape, self.kind) {
            (CircuitShape::Aggregate(layout), "aggregate") => {
                if *layout != RecordLayout::new(schema, layout.capacity) {
                    return Err(VerifyError::Layout {
                        schema: schema.name.clone(),
                        capacity: layout.capacity,
                    });
                }
            }
            (CircuitShape::Eligibility { .. }, "eligibility") => {}
            (_, kind) => return Err(VerifyError::WrongShape { kind }),
        }
        let (name, entry) =
            manifest
                .find(self.circuit_id)
                .ok_or_else(|| VerifyError::NotInManifest {
                    circuit_id: self.circuit_id.to_owned(),
                    manifest: manifest.source.clone(),
                })?;
        let schema_hash = format!("0x{}", hex::encode(schema.hash()));
        if entry.schema_hash != schema_hash {
            return Err(VerifyError::ManifestSchema {
                name: name.to_owned(),
                manifest: entry.schema_hash.clone(),
                artifact: schema_hash,
            });
        }
        let expected_vk =
            entry
                .vk_hash
                .as_deref()
                .ok_or_else(|| VerifyError::ManifestWithoutVkHash {
                    name: name.to_owned(),
                    manifest: manifest.source.clone(),
                })?;
        if self.vk_hash != expected_vk {
            return Err(VerifyError::VkHashVsManifest {
                name: name.to_owned(),
                manifest: expected_vk.to_owned(),
                artifact: self.vk_hash.to_owned(),
            });
        }

        let instances = self
            .instances
            .iter()
            .enumerate()
            .map(|(i, h)| field_hex(|| format!("instances[{i}]"), h))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = match &self.circuit.shape {
            CircuitShape::Aggregate(_) => PublicInputs::len_for(schema),
            CircuitShape::Eligibility { batch } => EligibilityPublic::len_for(schema, *batch),
        };
        if instances.len() != expected {
            return Err(VerifyError::InstanceCount {
                circuit_id: self.circuit_id.to_owned(),
                expected,
                found: instances.len(),
            });
        }
        check(&instances)?;
        let proof = hex::decode(self.proof.strip_prefix("0x").unwrap_or("-"))
            .ok()
            .filter(|p| format!("0x{}", hex::encode(p)) == self.proof)
            .ok_or_else(|| VerifyError::Hex {
                field: "proof".into(),
                expected: "0x-prefixed lowercase hex",
            })?;
        if calldata_hex(&instances, &proof) != self.calldata {
            return Err(VerifyError::Calldata);
        }

        let config = CircuitConfig::plan_spec(self.circuit);
        if config.circuit_id != self.circuit_id {
            return Err(VerifyError::CircuitId {
                artifact: self.circuit_id.to_owned(),
                planned: config.circuit_id,
            });
        }
        let params = store.params(config.k()).map_err(VerifyError::Keys)?;
        let fingerprint = ParamsFingerprint::of(&store.source, &params);
        if let Some(built) = &entry.params {
            if (built.kind, &built.sha256, built.k)
                != (fingerprint.kind, &fingerprint.sha256, fingerprint.k)
            {
                return Err(VerifyError::ManifestParams {
                    name: name.to_owned(),
                    manifest: built.describe(),
                    here: fingerprint.describe(),
                });
            }
        }
        let mut vk = store
            .verifying_key_for(&config, &params, false)
            .map_err(VerifyError::Keys)?;
        if vk_hash(&vk) != expected_vk {
            // A stale or damaged cache: derive it afresh before calling the artifact invalid.
            vk = store
                .verifying_key_for(&config, &params, true)
                .map_err(VerifyError::Keys)?;
        }
        let derived = vk_hash(&vk);
        if derived != expected_vk {
            return Err(VerifyError::VkHashVsDerived {
                circuit_id: config.circuit_id,
                expected: expected_vk.to_owned(),
                derived,
            });
        }
        verify_instances(&params, &vk, &instances, &proof).map_err(VerifyError::Rejected)?;
        Ok(Verified {
            circuit_id: config.circuit_id,
            vk_hash: derived,
            verifier: name.to_owned(),
            manifest: manifest.source.clone(),
            params: fingerprint,
        })
    }
}

/// The aggregate circuit's public inputs in readable form (each word in its range).
pub(crate) fn decode_public(
    schema: &crate::schema::Schema,
    x: &[Fr],
) -> Result<DecodedPublic, ProofError> {
    PublicInputs::from_fields(schema, x).map(DecodedPublic::from)
}

/// Checks a proof against public inputs with halo2's verifier.
pub fn verify_instances(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
) -> Result<(), ProofError> {
    let mut transcript = TranscriptReadBuffer::<_, G1Affine, _>::init(proof);
    verify_proof::<_, VerifierSHPLONK<'_, Bn256>, _, EvmTranscript<_, _, _, _>, _>(
        params.verifier_params(),
        vk,
        SingleStrategy::new(params),
        &[&[instances]],
        &mut transcript,
    )
    .map_err(|e| ProofError::Rejected(format!("{e:?}")))
}

/// Verifies an aggregate artifact offline, on any machine: every field is checked (the query
/// hash against the query, the public constants against what the query compiles to for the
/// circuit's schema, the decoded public values and the calldata against the instances), the
/// circuit against its verifier in `manifest` (the vk hash the verifier was generated from),
/// and the proof with the verifying key derived from the recorded schema and shape and the
/// store's params (see [`SealedProof::verify`]). Nothing is read from the prover's cache.
pub fn verify(
    artifact: &ProofArtifact,
    store: &KeyStore,
    manifest: &Manifest,
) -> Result<Verified, VerifyError> {
    // This circuit releases numbers: it proves no attestation.
    if artifact.query.attest.is_some() {
        return Err(VerifyError::Public {
            field: "query.attest".into(),
        });
    }
    SealedProof {
        kind: "aggregate",
        version: (artifact.version, ARTIFACT_VERSION),
        circuit_id: &artifact.circuit_id,
        circuit: &artifact.circuit,
        vk_hash: &artifact.vk_hash,
        instances: &artifact.instances,
        proof: &artifact.proof,
        calldata: &artifact.calldata,
    }
    .verify(store, manifest, |instances| {
        let computed = format!("0x{}", hex::encode(artifact.query.hash()));
        if computed != artifact.query_hash {
            return Err(VerifyError::SpecHash {
                field: "query_hash",
                recorded: artifact.query_hash.clone(),
                computed,
            });
        }
        let schema = &artifact.circuit.schema;
        let expected = artifact.query.compile(schema).map_err(VerifyError::Spec)?;
        if expected != artifact.public.query {
            return Err(VerifyError::Constants {
                what: "query constants",
            });
        }
        let context = fr_to_hex(&ClaimBinding::context_of(artifact.binding.as_ref()));
        if context != artifact.public.context {
            return Err(VerifyError::Public {
                field: "binding".into(),
            });
        }
        // The instances decoded (each result word in its range: a sum written as `sum + r`
        // would encode to the same field element) must be the recorded public values.
        let decoded = decode_public(schema, instances).map_err(|_| VerifyError::Public {
            field: "public.result".into(),
        })?;
        let (recorded, decoded) = (
            serde_json::to_value(&artifact.public).expect("json"),
            serde_json::to_value(&decoded).expect("json"),
        );
        match first_difference(&recorded, &decoded, "") {
            Some(field) => Err(VerifyError::Public {
                field: format!("public.{field}"),
            }),
            None => Ok(()),
        }
    })
}

/// Reads an artifact file.
pub fn read_artifact<A: serde::de::DeserializeOwned>(path: &Path) -> Result<A, ProofError> {
    let bytes = fs::read(path).map_err(|source| ProofError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ProofError::Artifact(format!("{}: {e}", path.display())))
}
