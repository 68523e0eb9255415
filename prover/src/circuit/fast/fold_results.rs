//! The per-proof results region of design N(W) ([`super::fold`]): the choice of statistic,
//! suppression and release of the running sums, on a vertical arithmetic gate in the first
//! accumulator column.
//!
//! Two gates on the column `acc_0`, in rows below the records *and* their masking rows (where
//! every data column is 0), selected by the values of the fixed column `q_rec`, which is 1 on
//! record rows (Lagrange selectors over `{0, 1, 2, 3}`, degree 3):
//!
//! - **arith** (`q_rec = 2` at row `i`): `a − b·c = d` with `a, b, c, d` at rows `i .. i + 3`;
//! - **bit step** (`q_rec = 3` at row `i`): `b` at `i + 1` is boolean, `r' = 2r + b` with `r`
//!   at `i` and `r'` at `i + 2` (a running sum of bits, most significant first), and the cell
//!   at `i + 3` is 1 (the program's only constant; 0, −1 and `2^32` are computed from it).
//!
//! On those rows the slot lookups see `q_rec · d = 0` (the data is 0 there), so reusing
//! `q_rec` costs them nothing. Everything else is copy constraints (equality on the
//! accumulator columns and the instance), so the program below reads like halo2-base's flex
//! gate, and costs no column at all: its length is rows the records leave free.
//!
//! What it proves, from the last record's sums `C` (count), `S_k`, `Q_k` and the public
//! statistic index `t` and `min_cohort` `k`:
//!
//! - the fields' bounds, [`BOUNDS_PER_INPUT`] per public input
//!   `Σ_j (lo_j + 2^16 · hi_j) · 2^{32 j}`, split into halves of 16 proven bits each (so the
//!   split is unique: 224 bits), which the match table's spacers copy;
//! - with consent purposes in the shape, the purpose `p` asked: one-hot `π_i` (boolean,
//!   `Σ π_i = 1`, `Σ i·π_i = p`, so `p` names a purpose or no proof exists), and purpose `i`'s
//!   field gets the range `[π_i, 1]` (its spacers copy `π_i` and the constant 1);
//! - `z = [C = 0]` (`z = 1 − C·inv`, `C·z = 0`);
//! - `lt = [C < k]`: `lt` boolean and `C + 2^32 − k = (1 − lt)·2^32 + Σ b_i 2^{31−i}` with 32
//!   boolean `b_i` (so `k ≤ C + 2^32` is required: a larger `k` has no proof at all);
//! - `small(C) = (1 − z)·lt`;
//! - `σ_k` boolean, `Σ σ_k = 1`, `Σ f_k·σ_k = t` with `f_k` statistic `k`'s field index (so
//!   `t` names one of the shape's statistics by its field, the same number in every circuit of
//!   the schema, or no proof exists); `S = Σ σ_k S_k`, `Q = Σ σ_k Q_k`;
//! - a nullable statistic's first running sum is `T_k = S_k + 2^64 · N_k` (its missing values
//!   are 0, so `S_k` already skips them; `N_k` counts the others): the program splits it with
//!   `S_k` as 64 proven bits and `N_k` as 32 (so the split is unique: `T_k < 2^96 < r`);
//! - `N = Σ σ_k N_k` (`N_k = C` for a statistic that is not nullable); with a nullable
//!   statistic in the shape, `small(N)` the same way and `suppressed = small(C) ∨ small(N)`
//!   (`a + b − a·b`); else `suppressed = small(C)`;
//! - `keep = 1 − suppressed`; released: `count = keep·C`, `nonmissing = keep·N`,
//!   `sum = keep·S`, `sumsq = keep·Q`.

use halo2_base::halo2_proofs::halo2curves::{
    bn256::Fr,
    ff::{Field, PrimeField},
};

use std::ops::Range;

#[cfg(doc)]
use super::fold::BOUNDS_PER_INPUT;
use super::fold::{pack_bounds, packed_shift, BOUND_BITS};

/// `q_rec` value of an arith row (1 marks record rows).
pub(super) const KIND_ARITH: u64 = 2;
/// `q_rec` value of a bit-step row.
pub(super) const KIND_BIT: u64 = 3;

/// Bits of the cohort comparison (`count` and `min_cohort` below `2^32`).
const CMP_BITS: u32 = 32;

/// Where a region cell's value comes from, besides the gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// A running-sum cell of the last record: `(accumulator column, offset within the record)`.
    Sum(usize, usize),
    /// A public input (its index).
    Instance(usize),
}

/// The consent purposes of a shape, as the results program takes them.
#[derive(Clone, Debug)]
pub(super) struct Purposes {
    /// The purpose asked (an index below `fields.len()`, or no proof exists).
    pub asked: u64,
    /// Its public index.
    pub at: usize,
    /// The purposes' fields.
    pub fields: Range<usize>,
}

/// The inputs of the results region (what the records left, and the query's constants).
#[derive(Clone, Debug)]
pub(super) struct ResultInputs {
    /// Per bounds input: the `(lo, hi)` it packs ([`pack_bounds`]), in field order, and its
    /// public index.
    pub bounds: Vec<(Vec<(u64, u64)>, usize)>,
    /// The consent purposes, when the shape has them (their fields are not in `bounds`).
    pub purpose: Option<Purposes>,
    /// Number of fields.
    pub fields: usize,
    /// Matching records `C` and where its running sum ends.
    pub count: (Fr, Source),
    /// Per statistic: `(S_k, its source)`, `(Q_k, its source)`, and whether the first is
    /// packed, `S_k + 2^64 · N_k` (a nullable statistic).
    pub sums: Vec<([(Fr, Source); 2], bool)>,
    /// The public index of the released non-missing count `N`.
    pub nonmissing: usize,
    /// The released statistic's field index `t` and its public index.
    pub stat: (u64, usize),
    /// Per statistic, its field index `f_k` (the value `t` names it by).
    pub stat_fields: Vec<u64>,
    /// `min_cohort` and its public index.
    pub min_cohort: (Fr, usize),
    /// Public indices of the outputs: count, sum, sum of squares, suppressed.
    pub outputs: [usize; 4],
}

/// Tests: witness values a cheating prover would choose instead of the honest ones (in the
/// comparison of the count `C`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ResultForgery {
    /// Claim `C < k` (or not) whatever it is; the comparison bits are then the low 32 bits
    /// of `C + 2^32 − k` (what a prover would try).
    pub lt: Option<bool>,
    /// Claim `C = 0` (or not) whatever it is.
    pub zero: Option<bool>,
    /// Make the comparison come out with bits that are not bits: all 0 but the last, which
    /// takes whatever value closes the sum.
    pub unbounded_bits: bool,
    /// Split a nullable statistic's packed sum with this non-missing count instead (its
    /// `S_k` then takes the low 64 bits of `T_k − 2^64 · N_k`).
    pub nonmissing: Option<u64>,
}

/// The region's cells and its wiring, built by one deterministic program (the layout never
/// depends on the witness, so key generation and proving agree).
#[derive(Clone, Debug, Default)]
pub(super) struct ResultRegion {
    /// Cell values, from the region's first row.
    pub values: Vec<Fr>,
    /// Rows (region-relative) of arith gates.
    pub arith: Vec<usize>,
    /// Rows of bit steps.
    pub bits: Vec<usize>,
    /// Equal cells within the region.
    pub copies: Vec<(usize, usize)>,
    /// Cells equal to a record sum or a public input.
    pub sources: Vec<(usize, Source)>,
    /// Per field, the cells of `lo` and `hi` (the table's spacers copy them).
    pub ranges: Vec<(usize, usize)>,
}

impl ResultRegion {
    fn cell(&mut self, v: Fr) -> usize {
        self.values.push(v);
        self.values.len() - 1
    }

    fn input(&mut self, v: Fr, source: Source) -> usize {
        let at = self.cell(v);
        self.sources.push((at, source));
        at
    }

    /// `a − b·c`, as a new cell (the gate).
    fn sub_mul(&mut self, a: usize, b: usize, c: usize) -> usize {
        let row = self.values.len();
        self.arith.push(row);
        let (va, vb, vc) = (self.values[a], self.values[b], self.values[c]);
        for src in [a, b, c] {
            let at = self.cell(self.values[src]);
            self.copies.push((at, src));
        }
        self.cell(va - vb * vc)
    }

    /// A bit step from `r` (a copy of cell `from`, or 0 when `None`) with bit `b`: returns
    /// `(r', the pinned 1)`.
    fn bit_step(&mut self, from: Option<usize>, b: Fr) -> (usize, usize) {
        let row = self.values.len();
        self.bits.push(row);
        let r = match from {
            Some(src) => {
                let at = self.cell(self.values[src]);
                self.copies.push((at, src));
                at
            }
            None => self.cell(Fr::ZERO),
        };
        self.cell(b);
        let next = self.cell(self.values[r].double() + b);
        let one = self.cell(Fr::ONE);
        (next, one)
    }

    /// The program: choice of statistic, suppression and release (module docs).
    pub fn build(inputs: &ResultInputs, forge: ResultForgery) -> Self {
        let mut r = ResultRegion::default();
        // The constant 1 from a bit step (0 · 2 + 0 = 0 on its way), the rest from it.
        let (_, one) = r.bit_step(None, Fr::ZERO);
        let zero = r.sub_mul(one, one, one);
        let minus = r.sub_mul(zero, one, one);
        let consts = Constants { zero, one, minus };
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let (mut two16, mut two32) = (one, one);
        for i in 0..CMP_BITS {
            two32 = arith(&mut r, two32, one, two32);
            if i + 1 == BOUND_BITS {
                two16 = two32;
            }
        }

        // The bounds: each input `Σ_j (lo_j + 2^16 · hi_j) · 2^{32 j}` split into proven
        // 16-bit halves, recombined from the most significant half down.
        let mut bounded = Vec::new();
        for (group, at) in &inputs.bounds {
            let packed = r.input(pack_bounds(group), Source::Instance(*at));
            let mut whole = zero;
            let mut halves = Vec::new();
            for &(lo_val, hi_val) in group.iter().rev() {
                let hi = r.bits(hi_val, BOUND_BITS);
                whole = arith(&mut r, hi, two16, whole);
                let lo = r.bits(lo_val, BOUND_BITS);
                whole = arith(&mut r, lo, two16, whole);
                halves.push((lo, hi));
            }
            r.copies.push((whole, packed));
            bounded.extend(halves.into_iter().rev());
        }
        // The consent purposes: one-hot σ_i (boolean, Σ σ_i = 1, Σ i·σ_i = the purpose asked),
        // and purpose i's field gets `[σ_i, 1]`: the purpose asked must be consented to.
        let mut purposes = Vec::new();
        if let Some(p) = &inputs.purpose {
            let asked = r.input(Fr::from(p.asked), Source::Instance(p.at));
            let indices: Vec<u64> = (0..p.fields.len() as u64).collect();
            let sigmas = r.one_hot(consts, p.asked, &indices, asked);
            purposes = sigmas.into_iter().map(|s| (s, one)).collect();
        }
        let mut bounded = bounded.into_iter();
        let mut purposes = purposes.into_iter();
        for c in 0..inputs.fields {
            let in_purposes = inputs
                .purpose
                .as_ref()
                .is_some_and(|p| p.fields.contains(&c));
            let cells = if in_purposes {
                purposes.next()
            } else {
                bounded.next()
            };
            r.ranges.push(cells.expect("a range per field"));
        }

        let (c_val, c_src) = inputs.count;
        let c = r.input(c_val, c_src);
        let k = r.input(inputs.min_cohort.0, Source::Instance(inputs.min_cohort.1));
        let mut suppressed = r.small(consts, two32, c, k, forge);

        // One-hot choice of the statistic: σ_k boolean, Σ σ_k = 1, Σ f_k·σ_k = t.
        let (t_val, t_at) = inputs.stat;
        let t = r.input(Fr::from(t_val), Source::Instance(t_at));
        debug_assert_eq!(inputs.stat_fields.len(), inputs.sums.len());
        let sigmas = r.one_hot(consts, t_val, &inputs.stat_fields, t);
        let (mut sum, mut squares, mut n) = (zero, zero, zero);
        let two64 = arith(&mut r, zero, two32, two32);
        let mut nullable = false;
        for ((pair, packed), sigma) in inputs.sums.iter().zip(sigmas) {
            let [(s_val, s_src), (q_val, q_src)] = *pair;
            let mut s_k = r.input(s_val, s_src);
            let q_k = r.input(q_val, q_src);
            let mut n_k = c;
            if *packed {
                // T = S + 2^64 · N with S < 2^64 and N < 2^32: both proven by their bits.
                nullable = true;
                let t = fr_u128(s_val).unwrap_or(0);
                let n_val = forge.nonmissing.map_or(t >> 64, u128::from);
                let low = s_val - packed_shift() * Fr::from_u128(n_val);
                let low = fr_u128(low).map_or(0, |v| v as u64);
                n_k = r.bits(n_val as u64, 32);
                let low = r.bits(low, 64);
                let whole = arith(&mut r, low, two64, n_k);
                r.copies.push((whole, s_k));
                s_k = low;
            }
            n = arith(&mut r, n, sigma, n_k);
            sum = arith(&mut r, sum, sigma, s_k);
            squares = arith(&mut r, squares, sigma, q_k);
        }

        // A mean over fewer than `k` values is suppressed like a count below `k` (with no
        // nullable statistic `N = C`, and `small(N) = small(C)`).
        if nullable {
            let small_n = r.small(consts, two32, n, k, ResultForgery::default());
            let both = arith(&mut r, zero, suppressed, small_n);
            let either = arith(&mut r, suppressed, one, small_n);
            suppressed = arith(&mut r, either, minus, both);
        }
        let keep = arith(&mut r, one, minus, suppressed);

        let outs = [
            arith(&mut r, zero, keep, c),
            arith(&mut r, zero, keep, sum),
            arith(&mut r, zero, keep, squares),
            suppressed,
        ];
        for (cell, at) in outs.into_iter().zip(inputs.outputs) {
            r.sources.push((cell, Source::Instance(at)));
        }
        let released = arith(&mut r, zero, keep, n);
        r.sources
            .push((released, Source::Instance(inputs.nonmissing)));
        r
    }

    /// One-hot cells `σ_i`, one per weight `w_i` (distinct), for the value of cell `index`
    /// (`value`): each boolean, `Σ σ_i = 1` and `Σ w_i · σ_i = index`, so `index` is one of
    /// the weights or no proof exists. The weights are built from the constant 1 (one row per
    /// unit up to the largest).
    fn one_hot(
        &mut self,
        consts: Constants,
        value: u64,
        weights: &[u64],
        index: usize,
    ) -> Vec<usize> {
        let Constants { zero, one, .. } = consts;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let top = weights.iter().copied().max().unwrap_or(0);
        let mut constants = vec![zero];
        for _ in 0..top {
            let last = *constants.last().expect("0 is there");
            constants.push(arith(self, last, one, one));
        }
        let (mut ones, mut weighted) = (zero, zero);
        let mut sigmas = Vec::with_capacity(weights.len());
        for &w in weights {
            let sigma = self.cell(Fr::from((w == value) as u64));
            let sq = arith(self, zero, sigma, sigma);
            self.copies.push((sq, sigma));
            ones = arith(self, ones, one, sigma);
            weighted = arith(self, weighted, constants[w as usize], sigma);
            sigmas.push(sigma);
        }
        self.copies.push((ones, one));
        self.copies.push((weighted, index));
        sigmas
    }

    /// A cell holding `v`, proven below `2^n` by `n` bit steps (most significant first).
    fn bits(&mut self, v: u64, n: u32) -> usize {
        let mut acc = None;
        for i in (0..n).rev() {
            acc = Some(self.bit_step(acc, Fr::from((v >> i) & 1)).0);
        }
        acc.expect("at least one bit")
    }

    /// `small(C) = [0 < C < k]` for the cells `c` and `k` (module docs), with the count
    /// comparison's forgeries applied.
    fn small(
        &mut self,
        consts: Constants,
        two32: usize,
        c: usize,
        k: usize,
        forge: ResultForgery,
    ) -> usize {
        let Constants { zero, one, minus } = consts;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let (c_val, k_val) = (self.values[c], self.values[k]);

        // z = 1 − C·inv, C·z = 0.
        let is_zero = forge.zero.unwrap_or(c_val == Fr::ZERO);
        let inv = self.cell(if is_zero {
            Fr::ZERO
        } else {
            c_val.invert().unwrap_or(Fr::ZERO)
        });
        let c_inv = arith(self, zero, c, inv);
        let z = arith(self, one, minus, c_inv);
        let cz = arith(self, zero, c, z);
        self.copies.push((cz, zero));

        // lt boolean; C + 2^32 − k = (1 − lt)·2^32 + Σ b_i 2^{31−i}.
        let (cu, ku) = (fr_u64(c_val), fr_u64(k_val));
        let honest_lt = match (cu, ku) {
            (Some(c), Some(k)) => c < k,
            _ => false,
        };
        let lt_val = forge.lt.unwrap_or(honest_lt);
        let lt = self.cell(Fr::from(lt_val as u64));
        let lt2 = arith(self, zero, lt, lt);
        self.copies.push((lt2, lt));
        let top = arith(self, one, minus, lt);
        let low = match (cu, ku) {
            (Some(c), Some(k)) => (c + (1u64 << CMP_BITS)).wrapping_sub(k) & ((1 << CMP_BITS) - 1),
            _ => 0,
        };
        let shifted = arith(self, c, two32, one);
        let diff = arith(self, shifted, k, minus);
        let mut acc = top;
        for i in (0..CMP_BITS).rev() {
            let b = if !forge.unbounded_bits {
                Fr::from((low >> i) & 1)
            } else if i > 0 {
                Fr::ZERO
            } else {
                self.values[diff] - self.values[acc].double()
            };
            acc = self.bit_step(Some(acc), b).0;
        }
        self.copies.push((diff, acc));

        // small = (1 − z)·lt.
        let nz = arith(self, one, minus, z);
        arith(self, zero, nz, lt)
    }
}

/// The cells holding 0, 1 and −1.
#[derive(Clone, Copy)]
struct Constants {
    zero: usize,
    one: usize,
    minus: usize,
}

impl ResultRegion {
    /// `a + b·c` from the gate: one row when `b` is ±1, else two (`−b` first).
    fn mul_add(&mut self, k: Constants, a: usize, b: usize, c: usize) -> usize {
        if b == k.one {
            self.sub_mul(a, k.minus, c)
        } else if b == k.minus {
            self.sub_mul(a, k.one, c)
        } else {
            let neg = self.sub_mul(k.zero, b, k.one);
            self.sub_mul(a, neg, c)
        }
    }
}

/// The value of a field element, if it fits in a `u128`.
fn fr_u128(v: Fr) -> Option<u128> {
    let bytes = v.to_bytes();
    bytes[16..]
        .iter()
        .all(|&b| b == 0)
        .then(|| u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes")))
}

/// The value of a small field element, if it fits in a `u64`.
fn fr_u64(v: Fr) -> Option<u64> {
    let bytes = v.to_bytes();
    bytes[8..]
        .iter()
        .all(|b| *b == 0)
        .then(|| u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")))
}
