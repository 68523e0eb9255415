//! Proving, proof artifacts, and offline verification.
//!
//! Proofs use SHPLONK over KZG with a Keccak transcript (`EvmTranscript`), the combination the
//! generated Solidity verifier checks. An artifact carries only public data: the commitment, the
//! query constants and the released aggregates; never a record value.

use std::{fs, path::Path};

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
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
    circuit::{self, AggregateWitness, PublicInputs},
    commitment::{fr_from_hex, fr_to_biguint, fr_to_hex},
    dataset::CommittedDataset,
    error::ProofError,
    keys::{vk_hash, CircuitConfig, CircuitKeys, KeyStore},
    query::{QueryConstants, QueryResult, QuerySpec},
};

/// Artifact format version.
pub const ARTIFACT_VERSION: u32 = 1;

/// The JSON a `prove` run writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofArtifact {
    /// Format version.
    pub version: u32,
    /// Circuit identity (schema, capacity, k).
    pub circuit_id: String,
    /// SHA-256 of the verifying key.
    pub vk_hash: String,
    /// SHA-256 of the query spec's canonical JSON.
    pub query_hash: String,
    /// The query spec itself (public by nature).
    pub query: QuerySpec,
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
pub struct DecodedPublic {
    /// Dataset commitment, hex.
    pub commitment: String,
    /// Query constants.
    pub query: QueryConstants,
    /// Released aggregates.
    pub result: QueryResult,
}

impl DecodedPublic {
    fn to_inputs(&self) -> Result<PublicInputs, ProofError> {
        Ok(PublicInputs {
            commitment: fr_from_hex(&self.commitment)
                .ok_or_else(|| ProofError::Artifact("bad commitment".into()))?,
            query: self.query.clone(),
            result: self.result.clone(),
        })
    }
}

/// Proves `query` over a committed dataset.
pub fn prove(
    keys: &CircuitKeys,
    params: &ParamsKZG<Bn256>,
    data: &CommittedDataset,
    query: &QuerySpec,
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
    let witness = AggregateWitness::new(&data.layout, data.salt, &data.dataset.records, constants);

    let mut builder = keys.config.prover_builder();
    circuit::build(&mut builder, schema, &data.layout, &witness);
    let (instances, proof) = create(
        keys,
        params,
        builder,
        &format!("proving {} records", data.info.record_count),
    )?;

    let public = decode_public(schema, &instances)?;
    Ok(ProofArtifact {
        version: ARTIFACT_VERSION,
        circuit_id: keys.config.circuit_id.clone(),
        vk_hash: keys.vk_hash.clone(),
        query_hash: format!("0x{}", hex::encode(query.hash())),
        query: query.clone(),
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
    builder: BaseCircuitBuilder<Fr>,
    what: &str,
) -> Result<(Vec<Fr>, Vec<u8>), ProofError> {
    let bar = crate::progress::spinner(what.to_owned());
    let instances: Vec<Fr> = builder.assigned_instances[0]
        .iter()
        .map(|v| *v.value())
        .collect();
    bar.set_message(format!("{what}: polynomial commitments"));
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
        &[builder],
        &[&[&instances]],
        OsRng,
        &mut transcript,
    )
    .map_err(|e| ProofError::Halo2(format!("create_proof: {e:?}")))?;
    let proof = transcript.finalize();
    bar.finish_and_clear();
    verify_instances(params, keys.pk.get_vk(), &instances, &proof)?;
    Ok((instances, proof))
}

/// Verifier calldata (public inputs then proof), hex.
pub(crate) fn calldata_hex(instances: &[Fr], proof: &[u8]) -> String {
    format!(
        "0x{}",
        hex::encode(encode_calldata(&[instances.to_vec()], proof))
    )
}

/// What every artifact carries for offline verification.
pub(crate) struct SealedProof<'a> {
    pub circuit_id: &'a str,
    pub vk_hash: &'a str,
    pub instances: &'a [String],
    pub proof: &'a str,
    pub calldata: &'a str,
}

impl SealedProof<'_> {
    /// Checks the proof against the cached verifying key of its circuit; returns the circuit's
    /// configuration and the decoded instances for the caller's own consistency checks.
    pub(crate) fn verify(
        &self,
        store: &KeyStore,
        decoded: impl FnOnce(&CircuitConfig) -> Result<Vec<Fr>, ProofError>,
    ) -> Result<CircuitConfig, ProofError> {
        let k = self
            .circuit_id
            .rsplit_once("-k")
            .and_then(|(_, k)| k.parse::<u32>().ok())
            .ok_or_else(|| ProofError::Artifact(format!("bad circuit id `{}`", self.circuit_id)))?;
        let params = store.params(k)?;
        let (config, vk) = store.verifying_key(self.circuit_id, &params)?;
        if vk_hash(&vk) != self.vk_hash {
            return Err(ProofError::Rejected(format!(
                "artifact was made with vk {}, the cached key for {} is {}",
                self.vk_hash,
                self.circuit_id,
                vk_hash(&vk)
            )));
        }
        let instances = self
            .instances
            .iter()
            .map(|h| {
                fr_from_hex(h).ok_or_else(|| ProofError::Artifact(format!("bad instance `{h}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if decoded(&config)? != instances {
            return Err(ProofError::Artifact(
                "decoded public inputs disagree with the instances".into(),
            ));
        }
        let proof = hex::decode(self.proof.trim_start_matches("0x"))
            .map_err(|e| ProofError::Artifact(format!("proof: {e}")))?;
        if calldata_hex(&instances, &proof) != self.calldata {
            return Err(ProofError::Artifact(
                "calldata does not encode these instances and proof".into(),
            ));
        }
        verify_instances(&params, &vk, &instances, &proof)?;
        Ok(config)
    }
}

fn decode_public(schema: &crate::schema::Schema, x: &[Fr]) -> Result<DecodedPublic, ProofError> {
    let v = schema.value_columns().count();
    if x.len() != PublicInputs::len_for(schema) {
        return Err(ProofError::Artifact(format!(
            "{} public inputs, expected {}",
            x.len(),
            PublicInputs::len_for(schema)
        )));
    }
    let small = |f: &Fr| -> Result<u64, ProofError> {
        u64::try_from(fr_to_biguint(f))
            .map_err(|_| ProofError::Artifact("public input exceeds 64 bits".into()))
    };
    let ranges = (0..v)
        .map(|i| Ok((small(&x[1 + 2 * i])?, small(&x[2 + 2 * i])?)))
        .collect::<Result<_, ProofError>>()?;
    let o = 1 + 2 * v;
    Ok(DecodedPublic {
        commitment: fr_to_hex(&x[0]),
        query: QueryConstants {
            ranges,
            purpose: small(&x[o])?,
            statistic: small(&x[o + 1])?,
            min_cohort: small(&x[o + 2])?,
        },
        result: QueryResult {
            records: small(&x[o + 3])?,
            count: small(&x[o + 4])?,
            sum: fr_to_biguint(&x[o + 5]),
            sum_squares: fr_to_biguint(&x[o + 6]),
            suppressed: small(&x[o + 7])? == 1,
        },
    })
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

/// Verifies an artifact offline: its parts agree with each other, its verifying key is the
/// cached one for its circuit, and the proof checks.
pub fn verify(artifact: &ProofArtifact, store: &KeyStore) -> Result<(), ProofError> {
    SealedProof {
        circuit_id: &artifact.circuit_id,
        vk_hash: &artifact.vk_hash,
        instances: &artifact.instances,
        proof: &artifact.proof,
        calldata: &artifact.calldata,
    }
    .verify(store, |config| {
        let expected = artifact
            .query
            .compile(&config.schema)
            .map_err(|e| ProofError::Artifact(e.to_string()))?;
        if expected != artifact.public.query {
            return Err(ProofError::Artifact(
                "public query constants do not match the query spec".into(),
            ));
        }
        Ok(artifact.public.to_inputs()?.to_fields())
    })?;
    Ok(())
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
