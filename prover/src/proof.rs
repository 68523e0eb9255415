//! Proving, proof artifacts, and offline verification.
//!
//! Proofs use SHPLONK over KZG with a Keccak transcript (`EvmTranscript`), the combination the
//! generated Solidity verifier checks. An artifact carries only public data: the commitment, the
//! query constants and the released aggregates; never a record value.

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
    circuit::{self, AggregateWitness, PublicInputs},
    commitment::{fr_from_hex, fr_to_biguint, fr_to_hex},
    dataset::CommittedDataset,
    error::ProofError,
    keys::{vk_hash, CircuitKeys, KeyStore},
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
    if *schema != keys.config.schema || data.layout != keys.config.layout {
        return Err(ProofError::Artifact(format!(
            "dataset (schema `{}`, capacity {}) does not fit circuit {}",
            schema.name, data.layout.capacity, keys.config.circuit_id
        )));
    }
    let constants = query
        .compile(schema)
        .map_err(|e| ProofError::Artifact(e.to_string()))?;
    let witness = AggregateWitness::new(&data.layout, data.salt, &data.dataset.records, constants);

    let bar = crate::progress::spinner(format!("proving {} records", data.info.record_count));
    let mut builder = keys.config.prover_builder();
    circuit::build(&mut builder, schema, &data.layout, &witness);
    let instances: Vec<Fr> = builder.assigned_instances[0]
        .iter()
        .map(|v| *v.value())
        .collect();
    bar.set_message(format!(
        "proving {} records: polynomial commitments",
        data.info.record_count
    ));
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

    let public = decode_public(schema, &instances)?;
    verify_instances(params, keys.pk.get_vk(), &instances, &proof)?;
    Ok(ProofArtifact {
        version: ARTIFACT_VERSION,
        circuit_id: keys.config.circuit_id.clone(),
        vk_hash: keys.vk_hash.clone(),
        query_hash: format!("0x{}", hex::encode(query.hash())),
        query: query.clone(),
        public,
        instances: instances.iter().map(fr_to_hex).collect(),
        calldata: format!(
            "0x{}",
            hex::encode(encode_calldata(std::slice::from_ref(&instances), &proof))
        ),
        proof: format!("0x{}", hex::encode(proof)),
    })
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
    let k = artifact
        .circuit_id
        .rsplit_once("-k")
        .and_then(|(_, k)| k.parse::<u32>().ok())
        .ok_or_else(|| ProofError::Artifact(format!("bad circuit id `{}`", artifact.circuit_id)))?;
    let params = store.params(k)?;
    let (config, vk) = store.verifying_key(&artifact.circuit_id, &params)?;
    if vk_hash(&vk) != artifact.vk_hash {
        return Err(ProofError::Rejected(format!(
            "artifact was made with vk {}, the cached key for {} is {}",
            artifact.vk_hash,
            artifact.circuit_id,
            vk_hash(&vk)
        )));
    }
    let instances = artifact
        .instances
        .iter()
        .map(|h| fr_from_hex(h).ok_or_else(|| ProofError::Artifact(format!("bad instance `{h}`"))))
        .collect::<Result<Vec<_>, _>>()?;
    if artifact.public.to_inputs()?.to_fields() != instances {
        return Err(ProofError::Artifact(
            "decoded public inputs disagree with the instances".into(),
        ));
    }
    let expected = artifact
        .query
        .compile(&config.schema)
        .map_err(|e| ProofError::Artifact(e.to_string()))?;
    if expected != artifact.public.query {
        return Err(ProofError::Artifact(
            "public query constants do not match the query spec".into(),
        ));
    }
    let proof = hex::decode(artifact.proof.trim_start_matches("0x"))
        .map_err(|e| ProofError::Artifact(format!("proof: {e}")))?;
    let calldata = format!(
        "0x{}",
        hex::encode(encode_calldata(std::slice::from_ref(&instances), &proof))
    );
    if calldata != artifact.calldata {
        return Err(ProofError::Artifact(
            "calldata does not encode these instances and proof".into(),
        ));
    }
    verify_instances(&params, &vk, &instances, &proof)
}

/// Reads an artifact file.
pub fn read_artifact(path: &Path) -> Result<ProofArtifact, ProofError> {
    let bytes = fs::read(path).map_err(|source| ProofError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ProofError::Artifact(format!("{}: {e}", path.display())))
}
