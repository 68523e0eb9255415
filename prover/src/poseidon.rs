//! The one Poseidon instance used everywhere: width 4, rate 3, x⁵ S-box, 8 full and 56 partial
//! rounds over BN254's scalar field (the 128-bit parameter set of the Poseidon paper, Table 2,
//! with round constants and MDS from the reference Grain LFSR).
//!
//! The permutation itself comes from `poseidon-primitives` (the audited Scroll/PSE code);
//! [`hash`] is the sponge mode that halo2-base's in-circuit `PoseidonHasher::hash_fix_len_array`
//! implements, so a native digest and an in-circuit digest of the same inputs are equal (tested
//! in `circuit::tests`).

use std::sync::OnceLock;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use poseidon_primitives::poseidon::primitives::{ConstantLength, Hash, Spec};

/// State width.
pub const T: usize = 4;
/// Sponge rate.
pub const RATE: usize = 3;
/// Full rounds.
pub const R_F: usize = 8;
/// Partial rounds.
pub const R_P: usize = 56;

/// Parameter set marker for `poseidon-primitives`.
#[derive(Debug)]
pub struct Poseidon128T4;

impl Spec<Fr, T, RATE> for Poseidon128T4 {
    fn full_rounds() -> usize {
        R_F
    }
    fn partial_rounds() -> usize {
        R_P
    }
    fn sbox(val: Fr) -> Fr {
        val.pow_vartime([5])
    }
    fn secure_mds() -> usize {
        0
    }
}

type Permutation = Hash<Fr, Poseidon128T4, ConstantLength<1>, T, RATE>;

fn permutation() -> &'static Permutation {
    static P: OnceLock<Permutation> = OnceLock::new();
    P.get_or_init(Permutation::init)
}

/// Applies the permutation to `state` in place (the one [`hash`] runs).
pub(crate) fn permute(state: &mut [Fr; T]) {
    permutation().permute(state);
}

/// A `T × T` matrix (the MDS matrix), row-major.
pub(crate) type Mds = [[Fr; T]; T];

/// The permutation's round constants (one `[Fr; T]` per round, `R_F + R_P` of them, in round
/// order) and its MDS matrix, as `poseidon-primitives` generates them for [`Poseidon128T4`]
/// (the same values [`permute`] uses).
pub(crate) fn round_constants_and_mds() -> &'static (Vec<[Fr; T]>, Mds) {
    static C: OnceLock<(Vec<[Fr; T]>, Mds)> = OnceLock::new();
    C.get_or_init(|| {
        let (round_constants, mds, _mds_inv) = <Poseidon128T4 as Spec<Fr, T, RATE>>::constants();
        (round_constants, mds)
    })
}

/// Sponge hash of a fixed-length input: capacity element `2^64`, absorb `RATE` elements per
/// permutation, pad with a single 1 (an extra permutation when the length is a multiple of
/// `RATE`), output the first rate element.
pub fn hash(inputs: &[Fr]) -> Fr {
    let mut state = [Fr::ZERO; T];
    state[0] = Fr::from_u128(1u128 << 64);
    let mut absorb = |chunk: &[Fr]| {
        for (s, x) in state[1..].iter_mut().zip(chunk) {
            *s += x;
        }
        if chunk.len() < RATE {
            state[1 + chunk.len()] += Fr::ONE;
        }
        permutation().permute(&mut state);
    };
    for chunk in inputs.chunks(RATE) {
        absorb(chunk);
    }
    if inputs.len().is_multiple_of(RATE) {
        absorb(&[]);
    }
    state[1]
}

/// Number of permutations [`hash`] runs for `len` inputs.
pub const fn permutations(len: usize) -> usize {
    len / RATE + 1
}
