//! Commit-and-prove answers (the fold circuit, [`crate::circuit::fast::fold`]): the dataset's
//! commitment, proving a query against it, and the artifact anyone verifies offline.
//!
//! The dataset commitment is the KZG commitment of the circuit's data columns, which hold the
//! records laid out from the dataset's salt the same way in every proof, whatever the query:
//! so every proof *starts with* the commitment (its first `64·W` bytes) and the market compares
//! their hash with the registered one. Nothing about the records is hashed in the proof.
//! Each proof opens the data columns at a few points; the salt-derived masking rows keep the
//! records hidden while fewer openings than masking rows are public, so a commitment carries a
//! query budget ([`FoldCommitmentInfo::query_budget`]) after which the custodian re-commits.
//!
//! The artifact ([`FoldArtifact`]) records the schema and the [`FoldSpec`]: the verifying key is
//! re-derived from them and the universal params, and its hash must be the manifest's, as for
//! the Poseidon circuits' artifacts ([`super::verify`]).

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr},
    poly::kzg::commitment::ParamsKZG,
};
use num_bigint::BigUint;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

use super::{calldata_hex, field_hex, verify_instances, Verified};
use crate::{
    circuit::fast::{
        self,
        commit::{data_commitment, DataCommitment},
        fold::{self, CellResult, FoldCircuit, FoldParams, FoldQuery, StrataResult, Verdict},
        record::FoldSchema,
        SeededRng,
    },
    commitment::fr_to_hex,
    dataset::{CommittedDataset, FoldCommitmentInfo},
    error::{ProofError, VerifyError},
    evm::Manifest,
    keys::{FoldKeys, FoldSpec, KeyStore, ParamsFingerprint},
    query::{ClaimBinding, QueryConstants, QueryResult, QuerySpec},
    schema::Schema,
};

/// Fold artifact format version.
pub const FOLD_ARTIFACT_VERSION: u32 = 1;

/// The JSON a fold `prove` writes. Every field is checked by [`verify`]: by the proof, by a
/// hash, or against another field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldArtifact {
    /// Format version.
    pub version: u32,
    /// Circuit identity (`fold3-…`).
    pub circuit_id: String,
    /// The dataset schema.
    pub schema: Schema,
    /// What fixes the circuit over the schema: the verifying key is derived from it.
    pub fold: FoldSpec,
    /// SHA-256 of the verifying key.
    pub vk_hash: String,
    /// SHA-256 of the query spec's canonical JSON.
    pub query_hash: String,
    /// The query spec itself (public by nature).
    pub query: QuerySpec,
    /// The market query this proof may be claimed for (`null`: none; its context is 0).
    pub binding: Option<ClaimBinding>,
    /// Public values in readable form.
    pub public: FoldPublic,
    /// Public inputs as 32-byte big-endian hex words, in circuit order
    /// ([`fold::InputLayout`]).
    pub instances: Vec<String>,
    /// The proof, hex; its first `64·W` bytes are the dataset's data-column commitments.
    pub proof: String,
    /// Calldata for the generated verifier: instances then proof, hex.
    pub calldata: String,
}

/// A fold proof's public values in readable form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldPublic {
    /// The dataset commitment the proof opens (hash of its data columns' commitments), hex.
    pub commitment: String,
    /// The query's constants (as the query compiles for the schema).
    pub query: QueryConstants,
    /// Claim context, hex ([`ClaimBinding::context`]; 0 if unbound).
    pub context: String,
    /// Released aggregates.
    pub result: QueryResult,
    /// Matching records whose statistic is not missing (0 when suppressed): the mean's
    /// denominator.
    pub nonmissing: u64,
    /// A stratified circuit's cells ([`FoldSpec::strata`]), one per stratum in code order;
    /// empty (and absent from the JSON) for an unstratified one. `result` and `nonmissing` are
    /// then the released cells' pooled values (a suppressed cell adds nothing), with
    /// `result.suppressed` set when no cell is released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<FoldCell>,
    /// An attestation circuit's verdict ([`FoldSpec::attestation`]): whether the statistic's
    /// mean over at least `min_cohort` values reaches the query's `attest` threshold. `result`
    /// then releases the records total alone (every other value 0), and `nonmissing` is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<bool>,
}

/// What a proof releases, as the circuit computes it: cells (one, or one per stratum) or an
/// attestation's verdict.
enum Released {
    Cells(StrataResult),
    Verdict(Verdict),
}

impl Released {
    /// The plain computation of `q` over `records` for the circuit of `params`.
    fn of(params: &FoldParams, records: &[Vec<u64>], q: &FoldQuery) -> Self {
        if params.attestation {
            Released::Verdict(fold::evaluate_attestation(params, records, q))
        } else {
            Released::Cells(fold::evaluate_strata(params, records, q))
        }
    }

    /// The public inputs of `q` with these outputs.
    fn instances(&self, params: &FoldParams, q: &FoldQuery) -> Vec<Fr> {
        match self {
            Released::Cells(r) => params.inputs().strata_instances(q, r),
            Released::Verdict(v) => params.inputs().attestation_instances(q, v),
        }
    }
}

/// One stratum's released cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldCell {
    /// The stratum's value of the strata column, as the data states it (a categorical
    /// column's code, an integer).
    pub stratum: String,
    /// Matching records in the stratum (0 when suppressed).
    pub count: u64,
    /// Those whose statistic is not missing (0 when suppressed).
    pub nonmissing: u64,
    /// `Σ x` of the statistic, encoded units (0 when suppressed).
    #[serde(with = "crate::query::decimal")]
    pub sum: BigUint,
    /// `Σ x²`, encoded units² (0 when suppressed).
    #[serde(with = "crate::query::decimal")]
    pub sum_squares: BigUint,
    /// Below the floor itself, or suppressed as the complement of the only such cell.
    pub suppressed: bool,
}

impl FoldCell {
    /// The cell as a [`QueryResult`] of the dataset's `records`.
    pub fn result(&self, records: u64) -> QueryResult {
        QueryResult {
            records,
            count: self.count,
            sum: self.sum.clone(),
            sum_squares: self.sum_squares.clone(),
            suppressed: self.suppressed,
        }
    }
}

/// The fold query of `spec` on the circuit of `keys`, bound to `binding`.
fn fold_query(
    fold: &FoldSchema,
    statistics: &[usize],
    constants: &QueryConstants,
    binding: Option<&ClaimBinding>,
) -> Result<FoldQuery, crate::circuit::fast::record::FoldSchemaError> {
    let mut q = fold.compile(constants, statistics)?;
    q.context = ClaimBinding::context_of(binding);
    Ok(q)
}

/// Commits to a dataset for the fold circuit of `keys` (params `kzg`, at the circuit's `k`):
/// the data columns' commitments, computed without proving
/// ([`fast::commit::data_commitment`]), and the query budget. Write it with
/// [`crate::dataset::DatasetDir::write_fold_commitment`].
pub fn commit(
    data: &CommittedDataset,
    kzg: &ParamsKZG<Bn256>,
    keys: &FoldKeys,
    spec: &FoldSpec,
) -> Result<FoldCommitmentInfo, ProofError> {
    check_schema(data, keys)?;
    let records = encode(data, keys);
    let c = data_commitment(kzg, &keys.shape, &data.fold_salt(), &records)?;
    Ok(FoldCommitmentInfo {
        circuit_id: keys.circuit_id.clone(),
        spec: spec.clone(),
        commitment: fr_to_hex(&c.hash()),
        data_commitment: format!("0x{}", hex::encode(c.to_proof_bytes())),
        record_count: data.dataset.records.len(),
        query_budget: keys.shape.query_budget(),
        params: keys.params.clone(),
    })
}

fn check_schema(data: &CommittedDataset, keys: &FoldKeys) -> Result<(), ProofError> {
    if data.dataset.schema == *keys.schema.schema() {
        Ok(())
    } else {
        Err(ProofError::Artifact(format!(
            "dataset (schema `{}`) does not fit circuit {}",
            data.dataset.schema.name, keys.circuit_id
        )))
    }
}

fn encode(data: &CommittedDataset, keys: &FoldKeys) -> Vec<Vec<u64>> {
    data.dataset
        .records
        .iter()
        .map(|r| keys.schema.encode(r))
        .collect()
}

/// Proves `query` over a dataset committed for the fold circuit of `keys` (`info`, from
/// `fold.json`), bound to `binding` or to nothing. The proof is checked with halo2's verifier,
/// and its data columns must open `info`'s commitment (else the records or the salt changed
/// since the commitment: [`ProofError::CommitmentMismatch`]).
pub fn prove(
    keys: &FoldKeys,
    kzg: &ParamsKZG<Bn256>,
    data: &CommittedDataset,
    info: &FoldCommitmentInfo,
    query: &QuerySpec,
    binding: Option<&ClaimBinding>,
) -> Result<FoldArtifact, ProofError> {
    check_schema(data, keys)?;
    if info.circuit_id != keys.circuit_id {
        return Err(ProofError::Artifact(format!(
            "the dataset is committed for circuit {}, the keys are {}'s",
            info.circuit_id, keys.circuit_id
        )));
    }
    let schema = &data.dataset.schema;
    let constants = query.compile(schema)?;
    let q = fold_query(&keys.schema, &info.spec.statistics, &constants, binding)?;
    let records = encode(data, keys);
    if q.threshold.is_some() && !keys.shape.attestation {
        return Err(ProofError::AttestationNeedsFold);
    }
    keys.shape.check_query(&q)?;
    let result = Released::of(&keys.shape, &records, &q);
    let instances = result.instances(&keys.shape, &q);
    let salt = data.fold_salt();
    let circuit = FoldCircuit::new(&keys.shape, keys.k, &salt, &records, &q)?;
    let rng = SeededRng::with_unusable(&salt, keys.shape.slots, keys.shape.unusable_rows(), OsRng);
    let bar = crate::progress::spinner(format!(
        "proving {} records ({})",
        records.len(),
        keys.circuit_id
    ));
    let proof = fast::prove(kzg, &keys.pk, circuit, &instances, rng)
        .map_err(|e| ProofError::Halo2(format!("create_proof: {e:?}")))?;
    bar.finish_and_clear();
    verify_instances(kzg, keys.pk.get_vk(), &instances, &proof)?;
    let proven = fr_to_hex(&DataCommitment::from_proof(&proof, keys.shape.slots)?.hash());
    if proven != info.commitment {
        return Err(ProofError::CommitmentMismatch {
            recorded: info.commitment.clone(),
            proven,
        });
    }
    Ok(FoldArtifact {
        version: FOLD_ARTIFACT_VERSION,
        circuit_id: keys.circuit_id.clone(),
        schema: schema.clone(),
        fold: info.spec.clone(),
        vk_hash: keys.vk_hash.clone(),
        query_hash: format!("0x{}", hex::encode(query.hash())),
        query: query.clone(),
        binding: binding.cloned(),
        public: public_of(schema, &info.spec, proven, constants, &q, &result),
        instances: instances.iter().map(fr_to_hex).collect(),
        calldata: calldata_hex(&instances, &proof),
        proof: format!("0x{}", hex::encode(proof)),
    })
}

/// The readable public values of a proof of `q` releasing `result`: for an unstratified
/// circuit its one cell as the result, for a stratified one the cells and, as the result, the
/// released cells pooled ([`FoldPublic::cells`]).
fn public_of(
    schema: &Schema,
    spec: &FoldSpec,
    commitment: String,
    query: QueryConstants,
    q: &FoldQuery,
    result: &Released,
) -> FoldPublic {
    let result = match result {
        Released::Cells(r) => r,
        Released::Verdict(v) => {
            return FoldPublic {
                commitment,
                query,
                context: fr_to_hex(&q.context),
                result: QueryResult {
                    records: v.records,
                    count: 0,
                    sum: BigUint::default(),
                    sum_squares: BigUint::default(),
                    suppressed: false,
                },
                nonmissing: 0,
                cells: Vec::new(),
                verdict: Some(v.holds),
            }
        }
    };
    let stratum = |v: usize| -> String {
        spec.strata
            .and_then(|s| schema.value_columns().nth(s.column))
            .map_or_else(|| v.to_string(), |(_, c)| c.decode(v as u64))
    };
    let cells: Vec<FoldCell> = result
        .cells
        .iter()
        .enumerate()
        .map(|(v, c)| FoldCell {
            stratum: stratum(v),
            count: c.count,
            nonmissing: c.nonmissing,
            sum: c.sum.into(),
            sum_squares: c.sum_squares.into(),
            suppressed: c.suppressed,
        })
        .collect();
    let pooled = |f: fn(&FoldCell) -> BigUint| -> BigUint {
        cells.iter().filter(|c| !c.suppressed).map(f).sum()
    };
    let count = pooled(|c| c.count.into());
    let nonmissing = pooled(|c| c.nonmissing.into());
    FoldPublic {
        commitment,
        query,
        context: fr_to_hex(&q.context),
        result: QueryResult {
            records: result.records,
            count: u64::try_from(count).expect("a sum of u64 counts below the capacity"),
            sum: pooled(|c| c.sum.clone()),
            sum_squares: pooled(|c| c.sum_squares.clone()),
            suppressed: cells.iter().all(|c| c.suppressed),
        },
        nonmissing: u64::try_from(nonmissing).expect("a sum of u64 counts below the capacity"),
        cells: if spec.strata.is_some() {
            cells
        } else {
            Vec::new()
        },
        verdict: None,
    }
}

/// What a [`FoldPublic`] states, as the circuit releases it (`None` if a sum does not fit the
/// circuit's words): an attestation's verdict, the one result of an unstratified circuit, or
/// the cells.
fn stated(p: &FoldPublic) -> Option<Released> {
    if let Some(holds) = p.verdict {
        return Some(Released::Verdict(Verdict {
            records: p.result.records,
            holds,
        }));
    }
    let word = |b: &BigUint| u64::try_from(b).ok();
    let cells = if p.cells.is_empty() {
        vec![CellResult {
            count: p.result.count,
            nonmissing: p.nonmissing,
            sum: word(&p.result.sum)?,
            sum_squares: word(&p.result.sum_squares)?,
            suppressed: p.result.suppressed,
        }]
    } else {
        p.cells
            .iter()
            .map(|c| {
                Some(CellResult {
                    count: c.count,
                    nonmissing: c.nonmissing,
                    sum: word(&c.sum)?,
                    sum_squares: word(&c.sum_squares)?,
                    suppressed: c.suppressed,
                })
            })
            .collect::<Option<_>>()?
    };
    Some(Released::Cells(StrataResult {
        records: p.result.records,
        cells,
    }))
}

/// Verifies a fold artifact offline, on any machine, cheapest check first: the version; the
/// circuit against its verifier in `manifest` (schema, data columns, vk hash); the query hash;
/// the constants the query compiles to; the context against the binding; the circuit id
/// against the recorded schema and spec; the instances against what the query, binding and
/// stated results encode to (so every readable field is what the proof proves); the calldata;
/// the commitment against the proof's first `64·W` bytes; then the verifying key, derived
/// from the schema and spec and the store's params, whose hash must be the artifact's and the
/// manifest's; and halo2's verifier.
pub fn verify(
    a: &FoldArtifact,
    store: &KeyStore,
    manifest: &Manifest,
) -> Result<Verified, VerifyError> {
    if a.version != FOLD_ARTIFACT_VERSION {
        return Err(VerifyError::Version {
            found: a.version,
            supported: FOLD_ARTIFACT_VERSION,
        });
    }
    let (name, entry) = manifest
        .find(&a.circuit_id)
        .ok_or_else(|| VerifyError::NotInManifest {
            circuit_id: a.circuit_id.clone(),
            manifest: manifest.source.clone(),
        })?;
    let schema_hash = format!("0x{}", hex::encode(a.schema.hash()));
    if entry.schema_hash != schema_hash {
        return Err(VerifyError::ManifestSchema {
            name: name.to_owned(),
            manifest: entry.schema_hash.clone(),
            artifact: schema_hash,
        });
    }
    if entry.data_columns != a.fold.data_columns {
        return Err(VerifyError::ManifestDataColumns {
            name: name.to_owned(),
            manifest: entry.data_columns,
            artifact: a.fold.data_columns,
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
    if a.vk_hash != expected_vk {
        return Err(VerifyError::VkHashVsManifest {
            name: name.to_owned(),
            manifest: expected_vk.to_owned(),
            artifact: a.vk_hash.clone(),
        });
    }
    let computed = format!("0x{}", hex::encode(a.query.hash()));
    if computed != a.query_hash {
        return Err(VerifyError::SpecHash {
            field: "query_hash",
            recorded: a.query_hash.clone(),
            computed,
        });
    }
    let constants = a.query.compile(&a.schema).map_err(VerifyError::Spec)?;
    if constants != a.public.query {
        return Err(VerifyError::Constants {
            what: "query constants",
        });
    }
    let context = ClaimBinding::context_of(a.binding.as_ref());
    if fr_to_hex(&context) != a.public.context {
        return Err(VerifyError::Public {
            field: "binding".into(),
        });
    }
    let fold = FoldSchema::of(&a.schema).map_err(VerifyError::FoldSchema)?;
    let params = a.fold.params(&fold).map_err(VerifyError::FoldSchema)?;
    let planned = fold.circuit_id(&params, params.min_k());
    if planned != a.circuit_id {
        return Err(VerifyError::CircuitId {
            artifact: a.circuit_id.clone(),
            planned,
        });
    }
    let q = fold_query(&fold, &a.fold.statistics, &constants, a.binding.as_ref())
        .map_err(VerifyError::FoldSchema)?;
    params.check_query(&q).map_err(VerifyError::FoldQuery)?;
    // An attestation circuit states a verdict, any other circuit none.
    if a.fold.attestation != a.public.verdict.is_some() {
        return Err(VerifyError::Public {
            field: "public.verdict".into(),
        });
    }
    let result = stated(&a.public).ok_or_else(|| VerifyError::Public {
        field: "public.result".into(),
    })?;
    // The readable values must be the ones the cells give (the cells are checked by the proof).
    let restated = public_of(
        &a.schema,
        &a.fold,
        a.public.commitment.clone(),
        constants,
        &q,
        &result,
    );
    let json = |p: &FoldPublic| serde_json::to_value(p).expect("public values serialise");
    if let Some(field) = super::first_difference(&json(&restated), &json(&a.public), "public") {
        return Err(VerifyError::Public { field });
    }
    let expected = result.instances(&params, &q);
    let instances = a
        .instances
        .iter()
        .enumerate()
        .map(|(i, h)| field_hex(|| format!("instances[{i}]"), h))
        .collect::<Result<Vec<Fr>, _>>()?;
    if instances.len() != expected.len() {
        return Err(VerifyError::InstanceCount {
            circuit_id: a.circuit_id.clone(),
            expected: expected.len(),
            found: instances.len(),
        });
    }
    if let Some(i) = (0..expected.len()).find(|&i| instances[i] != expected[i]) {
        return Err(VerifyError::Public {
            field: format!("instances[{i}]"),
        });
    }
    let proof = hex::decode(a.proof.strip_prefix("0x").unwrap_or("-"))
        .ok()
        .filter(|p| format!("0x{}", hex::encode(p)) == a.proof)
        .ok_or_else(|| VerifyError::Hex {
            field: "proof".into(),
            expected: "0x-prefixed lowercase hex",
        })?;
    if calldata_hex(&instances, &proof) != a.calldata {
        return Err(VerifyError::Calldata);
    }
    let proven = DataCommitment::from_proof(&proof, params.slots)
        .map(|c| fr_to_hex(&c.hash()))
        .map_err(|e| VerifyError::Rejected(e.into()))?;
    if proven != a.public.commitment {
        return Err(VerifyError::DataCommitment {
            recorded: a.public.commitment.clone(),
            proven,
        });
    }
    let (kzg, keys) = store
        .fold_circuit(&fold, &params)
        .map_err(VerifyError::Keys)?;
    let fingerprint = ParamsFingerprint::of(&store.source, &kzg);
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
    if keys.vk_hash != expected_vk {
        return Err(VerifyError::VkHashVsDerived {
            circuit_id: keys.circuit_id,
            expected: expected_vk.to_owned(),
            derived: keys.vk_hash,
        });
    }
    verify_instances(&kzg, keys.pk.get_vk(), &instances, &proof).map_err(VerifyError::Rejected)?;
    Ok(Verified {
        circuit_id: keys.circuit_id,
        vk_hash: keys.vk_hash,
        verifier: name.to_owned(),
        manifest: manifest.source.clone(),
        params: fingerprint,
    })
}
