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
//!
//! **Strata** (a stratified shape, [`super::fold::Strata`]): every running sum but the
//! records total holds one lane per stratum, `T = Σ_v B^v T_v` with `B = 2^84`. Its own
//! program (the unstratified one above is unchanged, and so are its keys):
//!
//! - `σ_k` as above, then the chosen totals `T = Σ σ_k T_k`, `Q = Σ σ_k Q_k` and
//!   `π = Σ_{k nullable} σ_k` (the choice is linear, so it applies lane by lane);
//! - per stratum `C_v` (32 proven bits), `T_v = S_v + 2^64 · n_v` (64 and 20 bits) and `Q_v`
//!   (64 bits), recombined as `Σ B^v ·` and equal to `C`, `T` and `Q`: each lane is below
//!   `2^84` and `3 · 84 < 254`, so the split is unique and no record can move between cells;
//! - `(1 − π) · n_v = 0` (a statistic that is not nullable has no count above bit 64) and
//!   `N_v = C_v + π · (n_v − C_v)`;
//! - each cell's floor, `primary_v = small(C_v) ∨ small(N_v)`;
//! - **complementary suppression**: `u = Σ primary_v`; a candidate is a cell neither below the
//!   floor nor empty, `cand_v = (1 − primary_v)(1 − [C_v = 0])`; `ρ_v` boolean with
//!   `Σ ρ_v = [u = 1] · [Σ cand_v ≠ 0]`, `ρ_v (1 − cand_v) = 0`, and for every other cell `u`,
//!   `ρ_v · cand_u · [C_u < C_v, or C_u = C_v and u < v] = 0`: with exactly one cell below the
//!   floor, the smallest candidate (the lowest code among equals) is suppressed too, and
//!   nothing else is;
//! - `suppressed_v = primary_v + ρ_v` (disjoint), `keep_v = 1 − suppressed_v`; released per
//!   cell: `keep_v · (C_v, N_v, S_v, Q_v)` and `suppressed_v`.
//!
//! **Attestation** (an attestation shape, [`super::fold::FoldParams::attestation`]): the
//! statistic chosen as above (`N`, `S`), then instead of a cell a verdict:
//!
//! - the threshold input `a + 2^64 · b` split into `a` (64 proven bits) and `b` (32), with
//!   `[b = 0] = 0`;
//! - `d = b·S − a·N`; as `S < 2^64` and `N < 2^32`, `|d| < 2^96`, and
//!   `d + 2^96 = ge · 2^96 + Σ b_i 2^{95−i}` with `ge` boolean and 96 boolean `b_i` has one
//!   solution: `ge = [d ≥ 0] = [S / N ≥ a / b]`;
//! - `enough = 1 − [N < k]` (the comparison above);
//! - released: `verdict = enough · ge`, and nothing else about the cohort (no count, no sums).
//!
//! **Rounding** (a rounded shape, [`super::fold::FoldParams::rounding`]): every released
//! count and sum `x` (after suppression, so a suppressed cell's zeros stay 0) is replaced by
//! the rule's value. With the rule's step `b` and offset `o` (5 and 2 to the nearest 5; 6 and
//! 5 for midpoint-6):
//!
//! - `x + o = b·q + r` with `q` in proven bits (32 for a count, 64 for a sum) and both `r` and
//!   `b − 1 − r` in 3 proven bits, so `0 ≤ r < b`; as `b·q + r < 2^67`, the equation holds in
//!   the integers and `q = ⌊(x + o) / b⌋` is the only solution;
//! - released: `b·q`, less `3 · (1 − [x = 0])` for midpoint-6 (`[x = 0]` as above).
//!
//! It costs rows only (~170 for a count, ~300 for a sum), not columns or gates: the
//! unrounded shapes' programs, keys and verifiers are unchanged.
//!
//! **Dominance** (a shape with [`super::fold::Dominance`]): from the records region's `m₁`,
//! `m₂` (carried cells) and `Σ g`, `Σ h` (running sums of the holder bits), before the release:
//!
//! - `m₁`, `m₂` and `m₁ − m₂` below `2^w` (the statistic's width) by proven bits: so
//!   `m₂ ≤ m₁`, and the records region's bound on every match but `g`'s (`≤ m₂`) bounds them
//!   all by `m₁`;
//! - `Σ g = [C ≥ 1]`, `Σ h = [C ≥ 2]` (`[C = 0]`, `[C − 1 = 0]` as above), and
//!   `(1 − Σ g)·m₁ = (1 − Σ h)·m₂ = 0`: with the records region's bounds and holders, `m₁` and
//!   `m₂` are the two largest matching values (0 where there are fewer);
//! - `d = k·S − 100·(m₁ + m₂)`, `|d| < 2^72`, and `[d ≥ 0]` from a proven 72-bit split of
//!   `d + 2^72` (as the attestation's); `dominated = 1 − [d ≥ 0]`;
//! - `suppressed = small(C) ∨ small(N) ∨ dominated`.

use halo2_base::halo2_proofs::halo2curves::{
    bn256::Fr,
    ff::{Field, PrimeField},
};

use std::ops::Range;

#[cfg(doc)]
use super::fold::BOUNDS_PER_INPUT;
use super::fold::{
    lane_base, pack_bounds, pack_threshold, packed_shift, CellAt, Dominance, Rounding, BOUND_BITS,
    LANE_BITS, THRESHOLD_BITS,
};

/// The released statistic's totals over the cohort, as [`ResultRegion::choose`] leaves them.
#[derive(Clone, Copy, Debug)]
struct Chosen {
    /// `N`: the values that are not missing (`C` for a statistic that is not nullable).
    n: usize,
    /// `S`.
    sum: usize,
    /// `Q`.
    squares: usize,
    /// Whether some statistic of the shape is nullable.
    nullable: bool,
}

/// `q_rec` value of an arith row (1 marks record rows).
pub(super) const KIND_ARITH: u64 = 2;
/// `q_rec` value of a bit-step row.
pub(super) const KIND_BIT: u64 = 3;

/// Bits of the cohort comparison (`count` and `min_cohort` below `2^32`).
const CMP_BITS: u32 = 32;

/// Bits of the dominance comparison, `|k · S − 100 · (m₁ + m₂)| < 2^72`.
const DOMINANCE_BITS: u32 = 72;

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
    /// The released statistic's field index `t` and its public index.
    pub stat: (u64, usize),
    /// Per statistic, its field index `f_k` (the value `t` names it by).
    pub stat_fields: Vec<u64>,
    /// `min_cohort` and its public index.
    pub min_cohort: (Fr, usize),
    /// Public indices of each released cell's outputs (one cell: the unstratified program;
    /// more: one per stratum, each of `C`, `S_k`, `Q_k` then a lane-packed total; none for
    /// an attestation).
    pub cells: Vec<CellAt>,
    /// An attestation shape's threshold and where its inputs are (its program releases the
    /// verdict instead of a cell).
    pub attestation: Option<Attestation>,
    /// The rounding of every released count and sum (after suppression).
    pub rounding: Option<Rounding>,
    /// The dominance rule's inputs, in a shape with it.
    pub dominance: Option<DominanceInputs>,
}

/// The dominance rule's inputs to the results program: what the records region left.
#[derive(Clone, Copy, Debug)]
pub(super) struct DominanceInputs {
    /// The rule.
    pub rule: Dominance,
    /// Bits of the statistic's field (`m₁, m₂` are below `2^width`).
    pub width: u32,
    /// `m₁`, `m₂` and their sources (carried through every record).
    pub top: [(Fr, Source); 2],
    /// `Σ g`, `Σ h` (records marked as holding `m₁`, `m₂`) and their sources.
    pub holders: [(Fr, Source); 2],
}

/// An attestation's inputs to the results program.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attestation {
    /// The threshold `(a, b)`: the verdict is `b · S ≥ a · N` (and `N ≥ k`).
    pub threshold: (u64, u64),
    /// Public index of the packed threshold `a + 2^64 · b`.
    pub at: usize,
    /// Public index of the verdict.
    pub verdict: usize,
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
    /// A stratified program: the cell whose count comparison `lt` and `zero` forge.
    pub stratum: usize,
    /// A stratified program: the complementary cell chosen (`Some(None)`: none) instead of
    /// the honest one.
    pub secondary: Option<Option<usize>>,
    /// A stratified program: this cell's count split off the packed count as this value
    /// instead.
    pub lane_count: Option<(usize, u64)>,
    /// An attestation: claim `b · S ≥ a · N` (or not) whatever it is; the bits are then the
    /// low 96 bits of `b·S − a·N + 2^96 − ge · 2^96`.
    pub ge: Option<bool>,
    /// An attestation: split the threshold as this `(a, b)` instead.
    pub threshold: Option<(u64, u64)>,
    /// A rounding shape: round one released value otherwise.
    pub rounding: Option<RoundForgery>,
    /// A shape with the dominance rule: its witness otherwise.
    pub dominance: Option<DominanceForgery>,
}

/// Tests: the dominance rule's witness as a cheating prover would choose it.
#[derive(Clone, Copy, Debug, Default)]
pub struct DominanceForgery {
    /// Claim these as the two largest values `m₁, m₂` (the per-record cells follow them).
    pub top: Option<[u64; 2]>,
    /// Mark these records as holding `m₁` and `m₂` (`None`: no record).
    pub holders: Option<[Option<usize>; 2]>,
    /// Claim the cell dominated (or not) whatever the comparison says; the bits are then the
    /// low bits of the shifted difference.
    pub dominated: Option<bool>,
}

/// Tests: a rounding a cheating prover would choose instead of the rule's, for one released
/// value: cell [`ResultForgery::stratum`]'s output `output` (0 count, 1 non-missing count,
/// 2 `Σ x`, 3 `Σ x²`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundForgery {
    /// Which output of the cell.
    pub output: usize,
    /// Add this to the quotient `q` (the remainder `r` then closes `x + o = b·q + r`, and its
    /// bits are its low bits).
    pub quotient: i64,
    /// Claim the value is zero (or not) whatever it is (the midpoint rule's `[x ≠ 0]`).
    pub zero: Option<bool>,
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
    pub(super) fn build(inputs: &ResultInputs, forge: ResultForgery) -> Self {
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

        if inputs.cells.len() > 1 {
            r.strata(inputs, consts, two32, forge);
            return r;
        }
        let (c_val, c_src) = inputs.count;
        let c = r.input(c_val, c_src);
        let k = r.input(inputs.min_cohort.0, Source::Instance(inputs.min_cohort.1));
        if let Some(a) = inputs.attestation {
            let chosen = r.choose(inputs, consts, two32, c, forge);
            r.attest(a, consts, two32, chosen, k, forge);
            return r;
        }
        let at = inputs.cells[0];
        let (mut suppressed, empty) = r.small_zero(consts, two32, c, k, forge);
        let Chosen {
            n,
            sum,
            squares,
            nullable,
        } = r.choose(inputs, consts, two32, c, forge);

        // A mean over fewer than `k` values is suppressed like a count below `k` (with no
        // nullable statistic `N = C`, and `small(N) = small(C)`).
        if nullable {
            let small_n = r.small(consts, two32, n, k, ResultForgery::default());
            suppressed = r.or(consts, suppressed, small_n);
        }
        if let Some(d) = inputs.dominance {
            let dominated = r.dominated(d, consts, (c, empty), sum, forge.dominance);
            suppressed = r.or(consts, suppressed, dominated);
        }
        let keep = arith(&mut r, one, minus, suppressed);
        // The order of these cells and copies is the unrounded circuit's as it always was (its
        // keys and committed verifiers depend on it).
        let rounding = inputs.rounding.map(|rule| r.round_constants(consts, rule));
        let outs = [
            arith(&mut r, zero, keep, c),
            arith(&mut r, zero, keep, sum),
            arith(&mut r, zero, keep, squares),
        ];
        for ((cell, at), output) in outs
            .into_iter()
            .zip([at.count, at.sum, at.sum_squares])
            .zip([0, 2, 3])
        {
            let cell = r.rounded(consts, rounding, cell, (0, output), forge);
            r.sources.push((cell, Source::Instance(at)));
        }
        r.sources
            .push((suppressed, Source::Instance(at.suppressed)));
        let released = arith(&mut r, zero, keep, n);
        let released = r.rounded(consts, rounding, released, (0, 1), forge);
        r.sources.push((released, Source::Instance(at.nonmissing)));
        r
    }

    /// Released value `x` of `(cell, output)` (output 0 count, 1 non-missing count, 2 `Σ x`,
    /// 3 `Σ x²`), rounded by the shape's rule when it has one (no cell otherwise).
    fn rounded(
        &mut self,
        consts: Constants,
        rounding: Option<RoundConstants>,
        x: usize,
        (cell, output): (usize, usize),
        forge: ResultForgery,
    ) -> usize {
        let Some(k) = rounding else { return x };
        // Counts are below 2^32, sums below 2^64: so are their quotients.
        let bits = if output < 2 { CMP_BITS } else { 64 };
        let f = forge
            .rounding
            .filter(|f| f.output == output && forge.stratum == cell);
        self.round(consts, k, x, bits, f)
    }

    /// The cells a rounding needs: `b`, `o`, `b − 1` and 3, from the constant 1.
    fn round_constants(&mut self, consts: Constants, rule: Rounding) -> RoundConstants {
        let mut small = vec![consts.zero];
        for _ in 0..rule.base() {
            let last = *small.last().expect("0 is there");
            small.push(self.mul_add(consts, last, consts.one, consts.one));
        }
        RoundConstants {
            rule,
            base: small[rule.base() as usize],
            offset: small[rule.offset() as usize],
            top: small[rule.base() as usize - 1],
            three: small[3],
        }
    }

    /// The rule's rounding of cell `x` (module docs, "Rounding"): `x + o = b·q + r` with `q`
    /// below `2^bits` and `r` and `b − 1 − r` below 8 (so `0 ≤ r < b`, and `q, r` are unique);
    /// `b·q`, less `3 · [x ≠ 0]` for the midpoint rule.
    fn round(
        &mut self,
        consts: Constants,
        k: RoundConstants,
        x: usize,
        bits: u32,
        forge: Option<RoundForgery>,
    ) -> usize {
        let Constants { zero, one, minus } = consts;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let (b, o) = (k.rule.base(), k.rule.offset());
        let honest = fr_u128(self.values[x]).map_or(0, |v| (v + u128::from(o)) / u128::from(b));
        let q_val = honest.wrapping_add_signed(forge.map_or(0, |f| f.quotient.into()));
        let q = self.bits(q_val & ((1 << bits) - 1), bits);
        let shifted = arith(self, x, one, k.offset);
        let bq = arith(self, zero, k.base, q);
        let rem = arith(self, shifted, minus, bq);
        let below = self.sub_mul(k.top, one, rem);
        for of in [rem, below] {
            let low = fr_u64(self.values[of]).unwrap_or(0) & 7;
            let proven = self.bits(low, 3);
            self.copies.push((proven, of));
        }
        if !k.rule.midpoint() {
            return bq;
        }
        // b·q − 3·[x ≠ 0] = b·q + 3·[x = 0] − 3.
        let z = self.is_zero(consts, x, forge.and_then(|f| f.zero));
        let up = arith(self, bq, k.three, z);
        arith(self, up, minus, k.three)
    }

    /// The one-hot choice of the released statistic (`σ_k` boolean, `Σ σ_k = 1`,
    /// `Σ f_k·σ_k = t`) and its totals over the cohort `c`: a nullable statistic's packed sum
    /// split into `S_k` (64 proven bits) and `N_k` (32).
    fn choose(
        &mut self,
        inputs: &ResultInputs,
        consts: Constants,
        two32: usize,
        c: usize,
        forge: ResultForgery,
    ) -> Chosen {
        let zero = consts.zero;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let (t_val, t_at) = inputs.stat;
        let t = self.input(Fr::from(t_val), Source::Instance(t_at));
        debug_assert_eq!(inputs.stat_fields.len(), inputs.sums.len());
        let sigmas = self.one_hot(consts, t_val, &inputs.stat_fields, t);
        let (mut sum, mut squares, mut n) = (zero, zero, zero);
        let two64 = arith(self, zero, two32, two32);
        let mut nullable = false;
        for ((pair, packed), sigma) in inputs.sums.iter().zip(sigmas) {
            let [(s_val, s_src), (q_val, q_src)] = *pair;
            let mut s_k = self.input(s_val, s_src);
            let q_k = self.input(q_val, q_src);
            let mut n_k = c;
            if *packed {
                // T = S + 2^64 · N with S < 2^64 and N < 2^32: both proven by their bits.
                nullable = true;
                let t = fr_u128(s_val).unwrap_or(0);
                let n_val = forge.nonmissing.map_or(t >> 64, u128::from);
                let low = s_val - packed_shift() * Fr::from_u128(n_val);
                let low = fr_u128(low).map_or(0, |v| v as u64);
                n_k = self.bits(n_val as u64, 32);
                let low = self.bits(low, 64);
                let whole = arith(self, low, two64, n_k);
                self.copies.push((whole, s_k));
                s_k = low;
            }
            n = arith(self, n, sigma, n_k);
            sum = arith(self, sum, sigma, s_k);
            squares = arith(self, squares, sigma, q_k);
        }
        Chosen {
            n,
            sum,
            squares,
            nullable,
        }
    }

    /// The attestation program (module docs, "Attestation"): the threshold split into proven
    /// `a < 2^64` and `1 ≤ b < 2^32`, `ge = [b·S − a·N ≥ 0]` from a proven 96-bit split of
    /// `b·S − a·N + 2^96`, `enough = 1 − [N < k]`, and the verdict `enough · ge` released.
    fn attest(
        &mut self,
        a: Attestation,
        consts: Constants,
        two32: usize,
        chosen: Chosen,
        k: usize,
        forge: ResultForgery,
    ) {
        let Constants { zero, one, minus } = consts;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let (num_val, den_val) = forge.threshold.unwrap_or(a.threshold);
        let packed = self.input(pack_threshold(a.threshold), Source::Instance(a.at));
        let den = self.bits(den_val, 32);
        let num = self.bits(num_val, THRESHOLD_BITS);
        let two64 = arith(self, zero, two32, two32);
        let whole = arith(self, num, two64, den);
        self.copies.push((whole, packed));
        // b ≠ 0: a zero denominator would make every mean reach the threshold.
        let den_zero = self.is_zero(consts, den, None);
        self.copies.push((den_zero, zero));

        // d = b·S − a·N, |d| < 2^96 (S < 2^64, N < 2^32), so d + 2^96 ∈ [1, 2^97) and its
        // split into a bit `ge` at 2^96 and 96 proven bits below is unique.
        let bs = arith(self, zero, den, chosen.sum);
        let an = arith(self, zero, num, chosen.n);
        let d = arith(self, bs, minus, an);
        let two96 = arith(self, zero, two64, two32);
        let shifted = arith(self, d, one, two96);
        let (s, n) = (
            fr_u128(self.values[chosen.sum]),
            fr_u128(self.values[chosen.n]),
        );
        let honest = match (s, n) {
            (Some(s), Some(n)) => u128::from(den_val) * s >= u128::from(num_val) * n,
            _ => false,
        };
        let ge = self.sign(consts, shifted, (two96, 96), forge.ge.unwrap_or(honest));

        let lt = self.less(consts, two32, chosen.n, k, forge);
        let enough = arith(self, one, minus, lt);
        let verdict = arith(self, zero, enough, ge);
        self.sources.push((verdict, Source::Instance(a.verdict)));
    }

    /// `ge = [d ≥ 0]` for `d` with `|d| < 2^n`, from `shifted = d + 2^n` (a cell, with the
    /// cell `two_n = 2^n`): `ge` boolean and `shifted = ge · 2^n + Σ b_i 2^{n−1−i}` with `n`
    /// proven bits, which has one solution as `shifted ∈ [1, 2^{n+1})`. `ge_val` is the
    /// value claimed (the honest one but in tests).
    fn sign(
        &mut self,
        consts: Constants,
        shifted: usize,
        (two_n, n): (usize, u32),
        ge_val: bool,
    ) -> usize {
        let zero = consts.zero;
        let ge = self.cell(Fr::from(ge_val as u64));
        let ge2 = self.mul_add(consts, zero, ge, ge);
        self.copies.push((ge2, ge));
        let low = self.values[shifted] - Fr::from(ge_val as u64) * self.values[two_n];
        let low = self.bits(fr_u128(low).unwrap_or(0) & ((1 << n) - 1), n);
        let split = self.mul_add(consts, low, ge, two_n);
        self.copies.push((split, shifted));
        ge
    }

    /// A cell holding the constant `v`, built from 1 by doubling and adding (most
    /// significant bit first).
    fn constant(&mut self, consts: Constants, v: u128) -> usize {
        let mut acc = consts.zero;
        for i in (0..u128::BITS - v.leading_zeros()).rev() {
            acc = self.mul_add(consts, acc, consts.one, acc);
            if (v >> i) & 1 == 1 {
                acc = self.mul_add(consts, acc, consts.one, consts.one);
            }
        }
        acc
    }

    /// `a ∨ b` of two boolean cells, `a + b − a·b`.
    fn or(&mut self, consts: Constants, a: usize, b: usize) -> usize {
        let both = self.mul_add(consts, consts.zero, a, b);
        let either = self.mul_add(consts, a, consts.one, b);
        self.mul_add(consts, either, consts.minus, both)
    }

    /// The dominance rule (module docs, "Dominance") on the cell of count `c` (with its
    /// `[C = 0]`, `z0`) and sum `sum` (before suppression): returns `[the cell is dominated]`.
    fn dominated(
        &mut self,
        d: DominanceInputs,
        consts: Constants,
        (c, z0): (usize, usize),
        sum: usize,
        forge: Option<DominanceForgery>,
    ) -> usize {
        let Constants { zero, one, minus } = consts;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let [m1, m2] = d.top.map(|(v, src)| self.input(v, src));
        let [g, h] = d.holders.map(|(v, src)| self.input(v, src));
        // m₁, m₂ < 2^width: values of the field (the sums below cannot wrap); m₁ − m₂ too, so
        // m₂ ≤ m₁ (the records region bounds every match but g's by m₂ only).
        let gap = self.sub_mul(m1, one, m2);
        for m in [m1, m2, gap] {
            let proven = self.bits(fr_u64(self.values[m]).unwrap_or(0), d.width);
            self.copies.push((proven, m));
        }
        // Σ g = [C ≥ 1] and Σ h = [C ≥ 2]: m₁ is held by a match whenever there is one, m₂
        // by another whenever there are two; m₁ = 0 without the first, m₂ = 0 without the
        // second (so the holders, the bounds by the lookups and these pin both).
        let c1 = arith(self, c, minus, one);
        let z1 = self.is_zero(consts, c1, None);
        let any = arith(self, one, minus, z0);
        let two = arith(self, any, minus, z1);
        self.copies.extend([(g, any), (h, two)]);
        for (m, held) in [(m1, g), (m2, h)] {
            let unheld = self.sub_mul(m, held, m);
            self.copies.push((unheld, zero));
        }
        // Dominated: 100 · (m₁ + m₂) > k · S, i.e. not [k · S − 100 · (m₁ + m₂) ≥ 0], where
        // |k · S − 100 · (m₁ + m₂)| < 2^72 (S < 2^64, k < 128, m_i < 2^16).
        let k = self.constant(consts, d.rule.percent.into());
        let hundred = self.constant(consts, 100);
        let two72 = self.constant(consts, 1 << DOMINANCE_BITS);
        let ks = arith(self, zero, k, sum);
        let top = arith(self, m1, one, m2);
        let diff = self.sub_mul(ks, hundred, top);
        let shifted = arith(self, diff, one, two72);
        let honest = match [sum, m1, m2].map(|x| fr_u64(self.values[x])) {
            [Some(s), Some(a), Some(b)] => !d.rule.dominated([a, b], s),
            _ => false,
        };
        let claimed = forge.and_then(|f| f.dominated).map_or(honest, |dom| !dom);
        let ge = self.sign(consts, shifted, (two72, DOMINANCE_BITS), claimed);
        arith(self, one, minus, ge)
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
    fn bits(&mut self, v: impl Into<u128>, n: u32) -> usize {
        let v: u128 = v.into();
        let mut acc = None;
        for i in (0..n).rev() {
            acc = Some(self.bit_step(acc, Fr::from(((v >> i) & 1) as u64)).0);
        }
        acc.expect("at least one bit")
    }

    /// `small(C) = [0 < C < k]` for the cells `c` and `k` (module docs), with the count
    /// comparison's forgeries applied; also returns `z = [C = 0]`.
    fn small(
        &mut self,
        consts: Constants,
        two32: usize,
        c: usize,
        k: usize,
        forge: ResultForgery,
    ) -> usize {
        self.small_zero(consts, two32, c, k, forge).0
    }

    /// [`Self::small`] and `z = [C = 0]`.
    fn small_zero(
        &mut self,
        consts: Constants,
        two32: usize,
        c: usize,
        k: usize,
        forge: ResultForgery,
    ) -> (usize, usize) {
        let Constants { zero, one, minus } = consts;
        let z = self.is_zero(consts, c, forge.zero);
        let lt = self.less(consts, two32, c, k, forge);
        // small = (1 − z)·lt.
        let nz = self.mul_add(consts, one, minus, z);
        (self.mul_add(consts, zero, nz, lt), z)
    }

    /// `z = [x = 0]`: `z = 1 − x·inv`, `x·z = 0` (`forged`: claim it is, or is not).
    fn is_zero(&mut self, consts: Constants, x: usize, forged: Option<bool>) -> usize {
        let Constants { zero, one, minus } = consts;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let x_val = self.values[x];
        let is_zero = forged.unwrap_or(x_val == Fr::ZERO);
        let inv = self.cell(if is_zero {
            Fr::ZERO
        } else {
            x_val.invert().unwrap_or(Fr::ZERO)
        });
        let x_inv = arith(self, zero, x, inv);
        let z = arith(self, one, minus, x_inv);
        let xz = arith(self, zero, x, z);
        self.copies.push((xz, zero));
        z
    }

    /// `lt = [C < k]` for cells below `2^32`: `lt` boolean and
    /// `C + 2^32 − k = (1 − lt)·2^32 + Σ b_i 2^{31−i}` (forgeries: `lt`, `unbounded_bits`).
    fn less(
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
        lt
    }
}

impl ResultRegion {
    /// The stratified program (module docs, "Strata"): the choice of statistic on the
    /// lane-packed totals, their split into one lane per stratum, each cell's floor,
    /// complementary suppression and the release of every cell.
    fn strata(
        &mut self,
        inputs: &ResultInputs,
        consts: Constants,
        two32: usize,
        forge: ResultForgery,
    ) {
        let Constants { zero, one, minus } = consts;
        let arith = |r: &mut Self, a, b, c| r.mul_add(consts, a, b, c);
        let cells = inputs.cells.len();

        let (c_val, c_src) = inputs.count;
        let c = self.input(c_val, c_src);
        let k = self.input(inputs.min_cohort.0, Source::Instance(inputs.min_cohort.1));
        let (t_val, t_at) = inputs.stat;
        let t = self.input(Fr::from(t_val), Source::Instance(t_at));
        let sigmas = self.one_hot(consts, t_val, &inputs.stat_fields, t);
        // The choice is linear, so it applies to the packed totals lane by lane: `π` says
        // whether the statistic chosen is nullable (its lanes are `S_v + 2^64 · N_v`).
        let (mut total, mut squares, mut pi) = (zero, zero, zero);
        for ((pair, packed), &sigma) in inputs.sums.iter().zip(&sigmas) {
            let [(s_val, s_src), (q_val, q_src)] = *pair;
            let t_k = self.input(s_val, s_src);
            let q_k = self.input(q_val, q_src);
            total = arith(self, total, sigma, t_k);
            squares = arith(self, squares, sigma, q_k);
            if *packed {
                pi = arith(self, pi, one, sigma);
            }
        }
        let two64 = arith(self, zero, two32, two32);
        let mut base = two64;
        for _ in 64..LANE_BITS {
            base = arith(self, base, one, base);
        }
        debug_assert_eq!(self.values[base], lane_base());

        // The lanes, each proven below `2^84` (so the split is unique: 3 · 84 < 254 bits),
        // recombined from the highest stratum down.
        let mut counts = lanes(self.values[c], cells);
        if let Some((v, forged)) = forge.lane_count {
            counts[v] = forged.into();
        }
        let (totals, square_lanes) = (
            lanes(self.values[total], cells),
            lanes(self.values[squares], cells),
        );
        let mut per_cell = Vec::with_capacity(cells);
        let (mut whole_c, mut whole_t, mut whole_q) = (zero, zero, zero);
        for v in (0..cells).rev() {
            let c_v = self.bits(counts[v] as u64, CMP_BITS);
            whole_c = arith(self, c_v, base, whole_c);
            let n_raw = self.bits((totals[v] >> 64) as u64, LANE_BITS - 64);
            let s_v = self.bits(totals[v] as u64, 64);
            let lane = arith(self, s_v, two64, n_raw);
            whole_t = arith(self, lane, base, whole_t);
            let q_v = self.bits(square_lanes[v] as u64, 64);
            whole_q = arith(self, q_v, base, whole_q);
            // A statistic that is not nullable has no count above bit 64: (1 − π)·n = 0;
            // its non-missing count is the cell's count: N_v = C_v + π·(n − C_v).
            let idle = self.sub_mul(n_raw, pi, n_raw);
            self.copies.push((idle, zero));
            let gap = self.sub_mul(n_raw, one, c_v);
            let n_v = arith(self, c_v, pi, gap);
            per_cell.push((c_v, n_v, s_v, q_v));
        }
        per_cell.reverse();
        self.copies
            .extend([(whole_c, c), (whole_t, total), (whole_q, squares)]);

        // Each cell's floor: small(C_v) ∨ small(N_v), or small(C_v) alone when no statistic
        // is nullable (then N_v = C_v), as in the unstratified program.
        let nullable = inputs.sums.iter().any(|(_, packed)| *packed);
        let honest = ResultForgery::default();
        let mut primary = Vec::with_capacity(cells);
        let mut empty = Vec::with_capacity(cells);
        for (v, &(c_v, n_v, _, _)) in per_cell.iter().enumerate() {
            let f = if v == forge.stratum { forge } else { honest };
            let (small_c, z) = self.small_zero(consts, two32, c_v, k, f);
            primary.push(if nullable {
                let small_n = self.small(consts, two32, n_v, k, honest);
                self.or(consts, small_c, small_n)
            } else {
                small_c
            });
            empty.push(z);
        }

        // Complementary suppression: with exactly one cell below the floor, the smallest
        // released non-empty cell (the lowest code among equals) is suppressed too. `ρ_v`
        // marks it: boolean, `Σ ρ_v = [one below]·[some candidate]`, only on a candidate,
        // and no candidate smaller (or equal and earlier).
        let mut below = zero;
        let mut cand = Vec::with_capacity(cells);
        let mut candidates = zero;
        for v in 0..cells {
            below = arith(self, below, one, primary[v]);
            let released = arith(self, one, minus, primary[v]);
            let filled = arith(self, one, minus, empty[v]);
            let cv = arith(self, zero, released, filled);
            candidates = arith(self, candidates, one, cv);
            cand.push(cv);
        }
        let off_one = arith(self, below, minus, one);
        let one_below = self.is_zero(consts, off_one, None);
        let none = self.is_zero(consts, candidates, None);
        let some = arith(self, one, minus, none);
        let wanted = arith(self, zero, one_below, some);

        let value = |r: &Self, x: usize| fr_u64(r.values[x]).unwrap_or(u64::MAX);
        let honest_second = (value(self, wanted) == 1)
            .then(|| {
                (0..cells)
                    .filter(|&v| value(self, cand[v]) == 1)
                    .min_by_key(|&v| (value(self, per_cell[v].0), v))
            })
            .flatten();
        let second = forge.secondary.unwrap_or(honest_second);
        let rho: Vec<usize> = (0..cells)
            .map(|v| self.cell(Fr::from((second == Some(v)) as u64)))
            .collect();
        let mut marked = zero;
        for v in 0..cells {
            let sq = arith(self, zero, rho[v], rho[v]);
            self.copies.push((sq, rho[v]));
            marked = arith(self, marked, one, rho[v]);
            let outside = self.sub_mul(rho[v], rho[v], cand[v]);
            self.copies.push((outside, zero));
        }
        self.copies.push((marked, wanted));
        for v in 0..cells {
            for u in (0..cells).filter(|&u| u != v) {
                // Forbidden: C_u < C_v, or C_u = C_v with u before v.
                let smaller = if u < v {
                    let lt = self.less(consts, two32, per_cell[v].0, per_cell[u].0, honest);
                    arith(self, one, minus, lt)
                } else {
                    self.less(consts, two32, per_cell[u].0, per_cell[v].0, honest)
                };
                let both = arith(self, zero, rho[v], cand[u]);
                let bad = arith(self, zero, both, smaller);
                self.copies.push((bad, zero));
            }
        }

        let rounding = inputs
            .rounding
            .map(|rule| self.round_constants(consts, rule));
        for (v, &(c_v, n_v, s_v, q_v)) in per_cell.iter().enumerate() {
            let suppressed = arith(self, primary[v], one, rho[v]);
            let keep = arith(self, one, minus, suppressed);
            let at = inputs.cells[v];
            for (output, (x, i)) in [
                (c_v, at.count),
                (n_v, at.nonmissing),
                (s_v, at.sum),
                (q_v, at.sum_squares),
            ]
            .into_iter()
            .enumerate()
            {
                let out = arith(self, zero, keep, x);
                let out = self.rounded(consts, rounding, out, (v, output), forge);
                self.sources.push((out, Source::Instance(i)));
            }
            self.sources
                .push((suppressed, Source::Instance(at.suppressed)));
        }
    }
}

/// The base-`2^84` digits of `v` (a lane-packed total), lowest stratum first.
fn lanes(v: Fr, cells: usize) -> Vec<u128> {
    let bytes = v.to_bytes();
    let bit = |i: usize| (bytes[i / 8] >> (i % 8)) & 1;
    (0..cells)
        .map(|lane| {
            let start = lane * LANE_BITS as usize;
            (0..LANE_BITS as usize)
                .rev()
                .fold(0u128, |acc, i| (acc << 1) | u128::from(bit(start + i)))
        })
        .collect()
}

/// The cells a rounding reads (module docs, "Rounding").
#[derive(Clone, Copy)]
struct RoundConstants {
    rule: Rounding,
    /// `b`.
    base: usize,
    /// `o`.
    offset: usize,
    /// `b − 1`.
    top: usize,
    /// 3.
    three: usize,
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
pub(super) fn fr_u64(v: Fr) -> Option<u64> {
    let bytes = v.to_bytes();
    bytes[8..]
        .iter()
        .all(|b| *b == 0)
        .then(|| u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")))
}
