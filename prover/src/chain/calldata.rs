//! Market calls read back from a transaction's calldata: the public inputs and proof of a claim
//! or an enrolment, decoded with the markets' ABI ([`decode_market_call`]), and rebuilt into the
//! artifact the prover wrote ([`Client::artifact_of_tx`]), so that `zkcohort verify --tx` checks
//! a proof from the chain exactly as it checks an artifact file: the verifying key derived
//! from the circuit and checked against the manifest, the spec (the one the sponsor published)
//! against the posted constants, and the proof.

use alloy::{
    consensus::Transaction as _,
    network::TransactionResponse as _,
    primitives::{keccak256, Address, Bytes, B256, U256},
    providers::Provider,
    sol_types::SolCall,
};
use serde::Serialize;

use super::{
    fr_to_u256, ChainError, Client, DatasetRegistry, Deployment, QueryMarket, TrialMarket,
};
use crate::{
    circuit::{
        eligibility::EligibilityPublic,
        fast::{
            commit::{CommitError, DataCommitment},
            record::FoldSchema,
        },
    },
    commitment::{fr_from_hex, fr_to_hex, RecordLayout},
    eligibility::{EligibilityArtifact, EnrolledSlot, ELIGIBILITY_VERSION},
    error::QueryError,
    evm::Manifest,
    keys::{CircuitShape, CircuitSpec, FoldIdError, FoldSpec},
    proof::{
        calldata_hex, decode_public,
        fold::{FoldArtifact, FoldPublic, FOLD_ARTIFACT_VERSION},
        Artifact, ProofArtifact, ARTIFACT_VERSION,
    },
    query::{ClaimBinding, QueryResult, QuerySpec},
    schema::Schema,
    trial::{TrialCriteria, TrialSpec},
    Fr,
};

/// A call to one of the markets, decoded from its calldata.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum MarketCall {
    /// `QueryMarket.claim`.
    Claim {
        /// The query.
        query_id: U256,
        /// The custodian's dataset.
        dataset_id: U256,
        /// Public inputs.
        inputs: Vec<U256>,
        /// Proof bytes.
        proof: Bytes,
    },
    /// `TrialMarket.enroll`.
    Enroll {
        /// The trial.
        trial_id: U256,
        /// `keccak256` of the circuit id.
        circuit: B256,
        /// Public inputs.
        inputs: Vec<U256>,
        /// Proof bytes.
        proof: Bytes,
    },
}

/// Why a transaction's proof cannot be rebuilt into an artifact.
#[derive(Debug, thiserror::Error)]
pub enum TxArtifactError {
    /// The node does not know the transaction.
    #[error("transaction {0} not found")]
    NotFound(B256),
    /// The transaction is not a direct call to one of the deployment's markets.
    #[error("transaction calls {to:?}, not the deployment's query market {market} or trial market {trials} (only direct claim and enroll calls are read)")]
    NotAMarketCall {
        /// Recipient (none: a contract creation).
        to: Option<Address>,
        /// The query market.
        market: Address,
        /// The trial market.
        trials: Address,
    },
    /// The transaction calls another function of the market: it carries no proof.
    #[error("the transaction calls function 0x{selector} of the market, not claim or enroll: it carries no proof")]
    NotAProofCall {
        /// The function selector called, hex.
        selector: String,
    },
    /// The input is not a well-formed `claim` or `enroll` call.
    #[error("the calldata is not a well-formed claim or enroll call: {0}")]
    Undecodable(#[source] alloy::sol_types::Error),
    /// No verifier of the manifest serves the circuit the chain names.
    #[error("circuit {key} (keccak256 of its id) has no verifier in {manifest}")]
    UnknownCircuit {
        /// The on-chain circuit key.
        key: B256,
        /// Where the manifest came from.
        manifest: String,
    },
    /// A circuit id not of the form this build writes.
    #[error("`{0}` is not a zkcohort circuit id")]
    CircuitId(String),
    /// None of the given schemas is the circuit's.
    #[error("no schema given hashes to {0} (the circuit's); pass it with --schema")]
    UnknownSchema(String),
    /// The sponsor published no spec document for the query or trial.
    #[error("no spec document was published for #{0}")]
    NoSpec(U256),
    /// The published spec document does not parse (canonically).
    #[error("the published spec: {0}")]
    Spec(#[source] QueryError),
    /// A public input is not a field element.
    #[error("public input {0} is not below the field modulus")]
    NotInField(usize),
    /// The public inputs are not the circuit's (count, or a word out of its range).
    #[error("the public inputs are not circuit's: {0}")]
    Inputs(#[source] crate::error::ProofError),
    /// A fold circuit's id does not name a fold circuit over its schema.
    #[error("fold circuit: {0}")]
    FoldCircuit(#[source] FoldIdError),
    /// A fold claim carries another number of public inputs than its circuit's layout.
    #[error("{found} public inputs, fold circuit {circuit_id} has {expected}")]
    FoldInputCount {
        /// The circuit.
        circuit_id: String,
        /// Its layout's count.
        expected: usize,
        /// The calldata's.
        found: usize,
    },
    /// A fold claim's released word is out of its range (a result above 64 bits, a
    /// suppressed flag not 0 or 1).
    #[error("public input {index} ({what}) is out of range")]
    FoldResult {
        /// Its index.
        index: usize,
        /// What it holds.
        what: &'static str,
    },
    /// A fold proof too short to start with its data columns' commitment.
    #[error("the fold proof: {0}")]
    FoldCommitment(#[source] CommitError),
    /// Talking to the chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// Decodes the input of a direct call to one of `deployment`'s markets.
pub fn decode_market_call(
    deployment: &Deployment,
    to: Option<Address>,
    input: &[u8],
) -> Result<MarketCall, TxArtifactError> {
    let called = |selector: [u8; 4]| {
        if input.get(..4) == Some(&selector[..]) {
            Ok(())
        } else {
            Err(TxArtifactError::NotAProofCall {
                selector: hex::encode(input.get(..4).unwrap_or(input)),
            })
        }
    };
    if to == Some(deployment.market) {
        called(QueryMarket::claimCall::SELECTOR)?;
        let c = QueryMarket::claimCall::abi_decode(input).map_err(TxArtifactError::Undecodable)?;
        Ok(MarketCall::Claim {
            query_id: c.queryId,
            dataset_id: c.datasetId,
            inputs: c.publicInputs,
            proof: c.proof,
        })
    } else if to == Some(deployment.trials) {
        called(TrialMarket::enrollCall::SELECTOR)?;
        let c = TrialMarket::enrollCall::abi_decode(input).map_err(TxArtifactError::Undecodable)?;
        Ok(MarketCall::Enroll {
            trial_id: c.trialId,
            circuit: c.circuitId,
            inputs: c.publicInputs,
            proof: c.proof,
        })
    } else {
        Err(TxArtifactError::NotAMarketCall {
            to,
            market: deployment.market,
            trials: deployment.trials,
        })
    }
}

/// A proof read back from a transaction.
#[derive(Clone, Debug)]
pub struct TxArtifact {
    /// The call as decoded.
    pub call: MarketCall,
    /// The artifact it amounts to (verify it with [`crate::proof::verify_artifact`]).
    pub artifact: Artifact,
    /// Whether the transaction succeeded on-chain (`None`: not mined).
    pub succeeded: Option<bool>,
    /// Its block.
    pub block: Option<u64>,
}

/// The circuit named by a zkcohort circuit id (`agg2-<schema>-n<capacity>-k<k>` or
/// `elig3-<schema>-b<batch>-k<k>`), for the schema among `schemas` whose hash is `schema_hash`.
fn circuit_of(
    circuit_id: &str,
    schema_hash: &str,
    schemas: &[Schema],
) -> Result<CircuitSpec, TxArtifactError> {
    let schema = schema_of(schema_hash, schemas)?;
    let bad = || TxArtifactError::CircuitId(circuit_id.to_owned());
    let parts: Vec<&str> = circuit_id.split('-').collect();
    let [kind, _, size, _] = parts.as_slice() else {
        return Err(bad());
    };
    let number = |tag: char| {
        size.strip_prefix(tag)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(bad)
    };
    let shape = match *kind {
        crate::keys::AGGREGATE_FAMILY => {
            CircuitShape::Aggregate(RecordLayout::new(schema, number('n')?))
        }
        crate::keys::ELIGIBILITY_FAMILY => CircuitShape::Eligibility {
            batch: number('b')?,
        },
        _ => return Err(bad()),
    };
    Ok(CircuitSpec {
        schema: schema.clone(),
        shape,
    })
}

/// The schema among `schemas` whose hash (0x-prefixed hex) is `schema_hash`.
fn schema_of<'a>(schema_hash: &str, schemas: &'a [Schema]) -> Result<&'a Schema, TxArtifactError> {
    schemas
        .iter()
        .find(|s| format!("0x{}", hex::encode(s.hash())) == schema_hash)
        .ok_or_else(|| TxArtifactError::UnknownSchema(schema_hash.to_owned()))
}

/// What a fold claim's artifact takes besides its calldata: the circuit (from the manifest),
/// the query (the sponsor's published spec) and the binding (from the transaction).
#[derive(Clone, Debug)]
pub struct FoldClaimContext<'a> {
    /// The dataset's schema.
    pub schema: &'a Schema,
    /// The circuit id (`fold3-…`).
    pub circuit_id: &'a str,
    /// The verifying-key hash the manifest records for it.
    pub vk_hash: String,
    /// The hash the spec was published under.
    pub query_hash: String,
    /// The published spec.
    pub query: QuerySpec,
    /// The claim's binding: chain, market, query and the transaction's sender.
    pub binding: ClaimBinding,
}

/// Rebuilds the [`FoldArtifact`] a fold claim's public inputs and proof amount to (the
/// layout: [`crate::circuit::fast::fold::InputLayout`]): the spec from the circuit id
/// ([`FoldSpec::from_circuit_id`]), the commitment from the proof's first `64·W` bytes, the
/// constants as the published spec compiles for the schema, the released values decoded
/// strictly (each a 64-bit word, the suppressed flag and an attestation's verdict 0 or 1). Nothing here is trusted by
/// [`crate::proof::verify_artifact`], which checks every value against the instances and the
/// proof.
pub fn fold_artifact_of_claim(
    c: FoldClaimContext<'_>,
    inputs: &[U256],
    proof: &[u8],
) -> Result<FoldArtifact, TxArtifactError> {
    let fold_err = |e: FoldIdError| TxArtifactError::FoldCircuit(e);
    let spec = FoldSpec::from_circuit_id(c.schema, c.circuit_id).map_err(fold_err)?;
    let fold = FoldSchema::of(c.schema).map_err(|e| fold_err(e.into()))?;
    let layout = spec.params(&fold).map_err(|e| fold_err(e.into()))?.inputs();
    if inputs.len() != layout.len() {
        return Err(TxArtifactError::FoldInputCount {
            circuit_id: c.circuit_id.to_owned(),
            expected: layout.len(),
            found: inputs.len(),
        });
    }
    let instances = fields(inputs)?;
    let word = |index: usize, what: &'static str| {
        u64::try_from(inputs[index]).map_err(|_| TxArtifactError::FoldResult { index, what })
    };
    let bit = |index: usize, what: &'static str| match word(index, what)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(TxArtifactError::FoldResult { index, what }),
    };
    let commitment = DataCommitment::from_proof(proof, spec.data_columns)
        .map_err(TxArtifactError::FoldCommitment)?;
    let constants = c.query.compile(c.schema).map_err(TxArtifactError::Spec)?;
    // An attestation releases the records total and its verdict alone (as `prove` writes it).
    let (result, nonmissing, verdict) = match layout.verdict() {
        Some(at) => (
            QueryResult {
                records: word(layout.records(), "records")?,
                count: 0,
                sum: 0u64.into(),
                sum_squares: 0u64.into(),
                suppressed: false,
            },
            0,
            Some(bit(at, "verdict")?),
        ),
        None => {
            let result = QueryResult {
                records: word(layout.records(), "records")?,
                count: word(layout.count(), "count")?,
                sum: word(layout.sum(), "sum")?.into(),
                sum_squares: word(layout.sum_squares(), "sum of squares")?.into(),
                suppressed: bit(layout.suppressed(), "suppressed")?,
            };
            (result, word(layout.nonmissing(), "nonmissing")?, None)
        }
    };
    Ok(FoldArtifact {
        version: FOLD_ARTIFACT_VERSION,
        circuit_id: c.circuit_id.to_owned(),
        schema: c.schema.clone(),
        fold: spec,
        vk_hash: c.vk_hash,
        query_hash: c.query_hash,
        query: c.query,
        binding: Some(c.binding),
        public: FoldPublic {
            commitment: fr_to_hex(&commitment.hash()),
            query: constants,
            context: fr_to_hex(&instances[layout.context()]),
            result,
            nonmissing,
            // The market pools one cell per answer: it accepts no stratified circuit.
            cells: Vec::new(),
            verdict,
        },
        instances: instances.iter().map(fr_to_hex).collect(),
        calldata: calldata_hex(&instances, proof),
        proof: format!("0x{}", hex::encode(proof)),
    })
}

fn fields(inputs: &[U256]) -> Result<Vec<Fr>, TxArtifactError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, w)| fr_from_hex(&format!("0x{w:064x}")).ok_or(TxArtifactError::NotInField(i)))
        .collect()
}

impl Client {
    /// Reads a claim or enrolment transaction and rebuilds the artifact its calldata amounts
    /// to: the circuit from the dataset's registration (a claim) or the call (an enrolment),
    /// looked up in `manifest` (its id, schema hash and vk hash) with its schema among
    /// `schemas`; the spec from the sponsor's `SpecPublished` document; the decoded public
    /// values and calldata from the public inputs and proof. Nothing is trusted that
    /// [`crate::proof::verify_artifact`] does not check again.
    pub async fn artifact_of_tx(
        &self,
        tx: B256,
        manifest: &Manifest,
        schemas: &[Schema],
    ) -> Result<TxArtifact, TxArtifactError> {
        let t = self
            .provider
            .get_transaction_by_hash(tx)
            .await
            .map_err(|e| self.rpc("getTransactionByHash", e))?
            .ok_or(TxArtifactError::NotFound(tx))?;
        let call = decode_market_call(&self.deployment, t.to(), t.input())?;
        let receipt = self
            .provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| self.rpc("getTransactionReceipt", e))?;
        let (succeeded, block) = match &receipt {
            Some(r) => (Some(r.status()), r.block_number),
            None => (None, None),
        };
        let key = match &call {
            MarketCall::Claim { dataset_id, .. } => {
                DatasetRegistry::new(self.deployment.registry, self.provider.clone())
                    .dataset(*dataset_id)
                    .call()
                    .await
                    .map_err(|e| self.classify("dataset", e))?
                    .circuitId
            }
            MarketCall::Enroll { circuit, .. } => *circuit,
        };
        let (circuit_id, entry) = manifest
            .entries()
            .map(|(_, e)| (e.circuit_id.as_str(), e))
            .find(|(id, _)| keccak256(id.as_bytes()) == key)
            .ok_or_else(|| TxArtifactError::UnknownCircuit {
                key,
                manifest: manifest.source.clone(),
            })?;
        let vk_hash = entry.vk_hash.clone().unwrap_or_default();
        let artifact = match &call {
            MarketCall::Claim {
                query_id,
                inputs,
                proof,
                ..
            } => {
                let published = self
                    .query_spec(*query_id)
                    .await?
                    .ok_or(TxArtifactError::NoSpec(*query_id))?;
                let query =
                    QuerySpec::from_document(&published.document).map_err(TxArtifactError::Spec)?;
                // The context the market computed when the claim was sent: verifying the
                // artifact checks the proof's context against it.
                let binding = ClaimBinding {
                    chain_id: self.deployment.chain_id,
                    market: self.deployment.market,
                    query_id: u64::try_from(*query_id).map_err(|_| {
                        TxArtifactError::Inputs(crate::error::ProofError::Artifact(format!(
                            "query id {query_id} exceeds 64 bits"
                        )))
                    })?,
                    claimant: t.from(),
                };
                if entry.data_columns > 0 {
                    let schema = schema_of(&entry.schema_hash, schemas)?;
                    let context = FoldClaimContext {
                        schema,
                        circuit_id,
                        vk_hash,
                        query_hash: published.hash.to_string(),
                        query,
                        binding,
                    };
                    Artifact::Fold(fold_artifact_of_claim(context, inputs, proof)?)
                } else {
                    let circuit = circuit_of(circuit_id, &entry.schema_hash, schemas)?;
                    let instances = fields(inputs)?;
                    let public = decode_public(&circuit.schema, &instances)
                        .map_err(TxArtifactError::Inputs)?;
                    Artifact::Aggregate(ProofArtifact {
                        version: ARTIFACT_VERSION,
                        circuit_id: circuit_id.to_owned(),
                        circuit,
                        vk_hash,
                        query_hash: published.hash.to_string(),
                        query,
                        binding: Some(binding),
                        public,
                        instances: instances.iter().map(fr_to_hex).collect(),
                        calldata: calldata_hex(&instances, proof),
                        proof: proof.to_string(),
                    })
                }
            }
            MarketCall::Enroll {
                trial_id,
                inputs,
                proof,
                ..
            } => {
                let trial_fr = fields(&[*trial_id])?[0];
                let published = self
                    .trial_spec(trial_fr)
                    .await?
                    .ok_or(TxArtifactError::NoSpec(*trial_id))?;
                let trial =
                    TrialSpec::from_document(&published.document).map_err(TxArtifactError::Spec)?;
                let circuit = circuit_of(circuit_id, &entry.schema_hash, schemas)?;
                let instances = fields(inputs)?;
                let (public, registrant) =
                    decode_eligibility(&circuit, &instances).ok_or_else(|| {
                        TxArtifactError::Inputs(crate::error::ProofError::Artifact(format!(
                            "{} public inputs, not those of circuit {circuit_id}",
                            instances.len()
                        )))
                    })?;
                Artifact::Eligibility(EligibilityArtifact {
                    version: ELIGIBILITY_VERSION,
                    circuit_id: circuit_id.to_owned(),
                    circuit,
                    vk_hash,
                    trial_id: fr_to_hex(&public.trial_id),
                    trial_hash: published.hash.to_string(),
                    trial,
                    member_root: fr_to_hex(&public.member_root),
                    registrant,
                    criteria: public.criteria,
                    slots: public
                        .slots
                        .iter()
                        .map(|(n, p)| EnrolledSlot {
                            nullifier: fr_to_hex(n),
                            payout: fr_to_hex(p),
                        })
                        .collect(),
                    instances: instances.iter().map(fr_to_hex).collect(),
                    calldata: calldata_hex(&instances, proof),
                    proof: proof.to_string(),
                })
            }
        };
        Ok(TxArtifact {
            call,
            artifact,
            succeeded,
            block,
        })
    }
}

/// The eligibility public inputs (layout: [`EligibilityPublic`]) of `circuit`, decoded
/// (`None` if the count is not the circuit's, the registrant word is not an address or a
/// criterion word exceeds 64 bits).
fn decode_eligibility(circuit: &CircuitSpec, x: &[Fr]) -> Option<(EligibilityPublic, Address)> {
    let CircuitShape::Eligibility { batch } = circuit.shape else {
        return None;
    };
    let schema = &circuit.schema;
    if x.len() != EligibilityPublic::len_for(schema, batch) {
        return None;
    }
    let small = |f: &Fr| u64::try_from(fr_to_u256(f)).ok();
    let v = schema.value_columns().count();
    let c = EligibilityPublic::CRITERIA_AT;
    let ranges = (0..v)
        .map(|i| Some((small(&x[c + 2 * i])?, small(&x[c + 1 + 2 * i])?)))
        .collect::<Option<Vec<_>>>()?;
    let purpose = small(&x[c + 2 * v])?;
    let at = EligibilityPublic::slot_at(schema, 0);
    let registrant = x[EligibilityPublic::REGISTRANT_AT];
    Some((
        EligibilityPublic {
            member_root: x[EligibilityPublic::MEMBER_ROOT_AT],
            trial_id: x[EligibilityPublic::TRIAL_ID_AT],
            registrant,
            criteria: TrialCriteria { ranges, purpose },
            slots: (0..batch)
                .map(|i| (x[at + 2 * i], x[at + 2 * i + 1]))
                .collect(),
        },
        super::fr_to_address(&registrant)?,
    ))
}
