//! **Fast aggregate circuit (issue #8): design N(W), commit-and-prove.** What the product
//! answers queries with (`proof::fold`, `dataset commit --fold`). [`fold::FoldCircuit`] lays a
//! record over rows of `W` data columns and folds the match into one lookup per column;
//! `fold_results` proves the product's outputs (statistic, suppression, records) below the
//! records. Cost models and measurements: docs/circuits.md ("Fast circuits (issue #8)") and
//! docs/benchmarks.md. The two earlier spikes of design B (B1: comparisons per record; B′: a
//! per-proof match table) were measured there and deleted; N(W) replaced both.
//!
//! A raw halo2-axiom [`Circuit`] with no hashing: the dataset commitment is the KZG commitment
//! of the *data columns*, which are the first advice columns and therefore the first
//! `64 · W` bytes of every proof (SHPLONK + EVM transcript). With the same records,
//! salt-derived masking rows and blinding rows drawn from a salt-seeded rng ([`SeededRng`]),
//! those bytes are identical in every proof, whatever the query: a market compares them with
//! the registered commitment.

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::{
        create_proof, keygen_pk, keygen_vk, verify_proof, Circuit, Error, ProvingKey, VerifyingKey,
    },
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
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snark_verifier_sdk::snark_verifier::system::halo2::transcript::evm::EvmTranscript;

pub mod commit;
pub mod fold;
#[cfg(test)]
mod fold_attest_tests;
#[cfg(test)]
mod fold_dominance_tests;
mod fold_results;
#[cfg(test)]
mod fold_round_tests;
#[cfg(test)]
mod fold_strata_tests;
#[cfg(test)]
mod fold_tests;
pub mod record;

/// The record shape: what of the data fixes the keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FastShape {
    /// Declared bit width of each field.
    pub widths: Vec<u32>,
    /// Record slots.
    pub capacity: usize,
    /// Salt-derived random rows after the records in every data column (the hiding budget).
    pub mask_rows: usize,
    /// Per field, the 1-bit field that says whether its value is present (`None`, or a
    /// shorter vector: never missing). A missing value is stored as 0 with its `known` bit 0
    /// (a statistic's sums then skip it with no correction, and a criterion excludes it by
    /// asking `[1, 1]` of the bit); the circuit checks `value = 0` when `known = 0` for the
    /// statistic fields, whose non-missing count it releases.
    pub known: Vec<Option<usize>>,
    /// The 1-bit fields of the consent purposes (a record's consent to purpose `i` is field
    /// `purposes.start + i`), if the records carry consent. Their ranges are not public
    /// inputs: one public input names the purpose, and the circuit asks `[1, 1]` of its field
    /// and `[0, 1]` of the others ([`fold::InputLayout`]).
    pub purposes: Option<std::ops::Range<usize>>,
}

impl FastShape {
    /// Number of fields per record.
    pub fn fields(&self) -> usize {
        self.widths.len()
    }

    /// The field holding field `c`'s `known` bit, if `c` may be missing.
    pub fn known_field(&self, c: usize) -> Option<usize> {
        self.known.get(c).copied().flatten()
    }
}

/// Derives the salt-dependent masking values and blinding rng seed.
pub(crate) fn salt_rng(salt: &[u8; 32], domain: u8) -> ChaCha20Rng {
    let mut seed = *salt;
    seed[0] ^= domain;
    ChaCha20Rng::from_seed(seed)
}

/// Reads the first `words` `u64`s from a seed (a dataset secret), then from `rest`. halo2-axiom
/// 0.5.3 draws the blinding rows of the first-phase advice columns first, in column order,
/// `blinding_factors + 1` field elements per column and 8 words per element; so with
/// `words = 8 · unusable · data_columns` the data columns commit to the same point in
/// every proof while everything else stays fresh.
pub struct SeededRng<R> {
    seeded: ChaCha20Rng,
    words: usize,
    rest: R,
}

impl<R: RngCore> SeededRng<R> {
    /// The rng for proofs over a dataset with `data_columns` data columns, in a circuit with
    /// `unusable` rows per column (`blinding_factors + 1`).
    pub fn with_unusable(salt: &[u8; 32], data_columns: usize, unusable: usize, rest: R) -> Self {
        SeededRng {
            seeded: salt_rng(salt, 2),
            words: 8 * unusable * data_columns,
            rest,
        }
    }
}

impl<R: RngCore> RngCore for SeededRng<R> {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        if self.words > 0 {
            self.words -= 1;
            self.seeded.next_u64()
        } else {
            self.rest.next_u64()
        }
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Proving key for any circuit of this module (a witness-independent layout).
pub fn keygen_circuit<C: Circuit<Fr>>(
    params: &ParamsKZG<Bn256>,
    circuit: &C,
) -> Result<ProvingKey<G1Affine>, Error> {
    let vk = keygen_vk(params, circuit)?;
    keygen_pk(params, vk, circuit)
}

/// A SHPLONK proof with the EVM transcript (what the generated Solidity verifier checks).
pub fn prove<C: Circuit<Fr>>(
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: C,
    instances: &[Fr],
    rng: impl RngCore,
) -> Result<Vec<u8>, Error> {
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
        pk,
        &[circuit],
        &[&[instances]],
        rng,
        &mut transcript,
    )?;
    Ok(transcript.finalize())
}

/// Checks a proof.
pub fn verify(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
) -> bool {
    let mut transcript = TranscriptReadBuffer::<_, G1Affine, _>::init(proof);
    verify_proof::<
        KZGCommitmentScheme<Bn256>,
        VerifierSHPLONK<'_, Bn256>,
        _,
        EvmTranscript<_, _, _, _>,
        _,
    >(
        params.verifier_params(),
        vk,
        SingleStrategy::new(params),
        &[&[instances]],
        &mut transcript,
    )
    .is_ok()
}
