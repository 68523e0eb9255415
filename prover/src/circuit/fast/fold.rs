//! **Design N(W) (issue #8): records over rows, the match folded into the lookups.**
//! Built to answer the question the earlier spike B′ (one record per row, a per-proof match
//! table) left open: a verifier that deploys (≤ 24,576 bytes) and costs no more gas than
//! today's, without giving up speed.
//!
//! **Layout.** A record is `S = 1 + F` *slots* (`present`, then the fields) laid out over
//! `R = ⌈S / W⌉` rows of `W` data columns (`d_0 … d_{W−1}`, the first advice columns: the
//! dataset commitment is their `W` KZG commitments, identical in every proof as in B). Slots
//! past `S` are *pass* slots holding 0. Every slot `s` has a running match bit `p_s` (its own
//! advice cell) equal to "the record matches on slots `0..=s`".
//!
//! **One lookup per data column, nothing else per slot.** Slot `s` has tag `τ = s + 2`
//! (`present` 2, field `c` at `c + 3`, pass slots after) and looks up
//!
//! ```text
//!   (1 + (τ − 1) · P,  q_rec · d_s,  p_s)  ∈  (t_tag, t_val, t_m)
//! ```
//!
//! where `P` is the previous slot's bit (`p_{s−1}`; at a record's first slot the key is 2 by
//! the fixed `q_start`). The tag expressions come from two fixed columns: `q_start`, and
//! `base = o·W + 1` on a record's row `o ≥ 1`, so slot `(o, j)` has `τ − 1 = base + q_start + j`.
//! While the record still matches (`P = 1`) the key is the slot's own `(τ, v)` and the table
//! fixes `p_s = m_τ(v)`, which also checks `v < 2^{w}`. Once it has failed (`P = 0`) the key is
//! the *failed* block `(1, v)`, whose match bits are all 0, so `p_s = 0` from there on. Rows
//! outside the records look up `(1, 0, p)`: `p = 0`. No gate touches a slot: the lookups are the
//! whole predicate.
//!
//! **The per-proof table** (fixed `t_tag`, `t_val`, `t_fix`; advice `t_m`, `lo`, `cm`). Constant
//! rows first (row 0 stays empty): the failed block `(1, v, 0)` for every `v` below the widest
//! field's `2^w`, `present` `(2, v, v)`, one `(τ, 0, 1)` per pass slot; `t_fix ∈ {1, 2, 3}`
//! marks which, and a gate with Lagrange selectors on `t_fix` pins their `t_m`. Then per field a
//! block: two spacer rows (`hi`, then `lo`, in the `lo` column, copied from the results region), then
//! one row per value `v ∈ [0, 2^w)` (`q_tab`; `q_tstart` on the first). On value rows `t_m` is
//! boolean; it may rise (0 → 1, the row above counting as 0 at a block start) only where
//! `t_val = lo`; `lo` is carried down; `cm` counts the block's ones from `lo − 1 − hi` and must
//! end at 0 (`q_tstart` three rows below marks a block's end). So the ones are exactly the run
//! `[lo, hi]`: `t_m = [lo ≤ v ≤ hi]`, with no range lookups (B′ used two per table row).
//!
//! **Sums.** Each statistic field `x_k` (`stats`) sits at a fixed slot, so no per-slot sums are
//! needed: `2 + 2S` running sums per record (count, records present, then `Σ x_k` and `Σ x_k²`
//! per statistic) are interleaved over the `R` rows of `A = ⌈(2 + 2S)/R⌉` accumulator columns,
//! sum `u` at column `u / R`, row offset `u % R`, each
//! `acc = [not first record] · acc(−R) + term` with `term` the record's last slot bit `p_end`,
//! its `present` cell, `p_end · x_k` or `p_end · x_k²` (reached by rotation). The last
//! record's cells are the totals.
//!
//! **Nullable statistics** ([`FastShape::known`]): a field whose value may be missing is
//! stored as 0 when missing, beside a 1-bit `known` field of its own (a slot like any other,
//! so a criterion excludes missing values by asking `[1, 1]` of it, and no criterion leaves it
//! `[0, 1]`). A statistic's sums then skip missing values with no correction (pandas' `skipna`,
//! SQL's `AVG`), and the non-missing count among the matches, `N = Σ p_end · b`, rides in the
//! statistic's `Σ x` running sum above bit 64: its term is `p_end · (x + 2^64 · b)`, and the
//! results program splits the total with proven bit widths. One gate on that row,
//! `(1 − b) · x = 0`, keeps the encoding honest (a missing value cannot carry a value into
//! the sums). With the `known` bit on the statistic's row (the field right after it, at
//! `W ≥ 2`) the proof reads nothing at a new rotation: the cost is the `known` slot (a row
//! per `W` of them, none when the record's last row has a free slot), two range inputs and
//! the released `N`; no column, no running sum. A shape without nullable statistics has none
//! of it.
//!
//! **Strata** ([`Strata`], issue #13): the records split by the code `v` of one field, each
//! stratum a released cell, in one proof and with no new running sum. The stratum field's
//! data column's lookup gains one tuple element, `(λ, t_λ)`: a fixed table column holding
//! `B^v` (`B = 2^84`) on that field's value rows `v < count` and 0 on every other row (other
//! blocks, the failed block), and one advice column `λ`. So a record that still matches at its
//! stratum slot gets `λ = B^v`, fixed by the table (not by the prover), and every running sum
//! but the records total adds `λ ·` its term: `q · p_end · λ · x²` is degree 5, halo2-axiom's
//! cap. Each stratum's sums land in their own 84-bit lane of the same accumulator (a count,
//! `Σ x + 2^64 · N` and `Σ x²` below `2^84` while the shape holds fewer than
//! [`STRATA_CAPACITY`] records), and the results program splits the lanes with proven bits
//! and applies each cell's floor and complementary suppression there. Per record that is one
//! advice cell and a wider tuple on one lookup.
//!
//! **Dominance** ([`Dominance`], issue #13): with the rule, one more accumulator column holds
//! per record, on its rows 0 .. 3, `m₁` and `m₂` (carried from record to record) and the
//! running counts `Σ g`, `Σ h`, whose steps are the bits `g`, `h` marking the records that
//! hold `m₁` and `m₂` (`g·h = 0` and `(g + h)·(p − g − h) = 0`: bits, only on matches, never
//! both; `g·(m₁ − x) + h·(m₂ − x) = 0`). One more advice column holds per record
//! `e = p·(1 − g)·(m₂ − x)`, and one more lookup puts it among the table's values (all below
//! `2^widest`, where `m₂ − x < 0` is not): every match but `g`'s is at most `m₂`. The
//! results program proves `m₂ ≤ m₁` (so every match is at most `m₁`) and pins the rest
//! ([`super::fold_results`], "Dominance"). Every cell sits at rotations the sums already open
//! (the verifier's size grows with each new one: this layout kept it under EIP-170).
//!
//! **Results** ([`super::fold_results`]): below the records and their masking rows, the first
//! accumulator column holds a small program on a vertical arithmetic gate: suppression (`0 < count < min_cohort` zeroes
//! every released value and sets `suppressed`) and the choice of the statistic the query asks
//! for (a public index into `stats`, one-hot in the circuit). The records-present total is
//! released as is. The program is rows of one generic gate, so its length costs the verifier
//! nothing: only columns, rotations, gates and public inputs do.
//!
//! **Public inputs** ([`InputLayout`], the one definition): the fields' bounds, seven fields
//! per input ([`pack_bounds`]), the consent purpose (a shape with [`FastShape::purposes`]:
//! the circuit derives those fields' ranges from it, so a query can only ask for one purpose
//! and cannot drop the requirement), the statistic's index, `min_cohort`, `context`, then
//! records, then per released cell (one, or one per stratum) count, the non-missing count
//! (the count itself for a statistic that is not nullable), `Σ x`, `Σ x²`, suppressed. The constants thus end with `purpose, statistic,
//! min_cohort` as in the Poseidon circuit's layout, which `QueryMarket` reads. `context` (the
//! market's hash of chain, market, query and claimant) is in no constraint: the transcript
//! absorbs every public input, so a proof verifies under exactly one context.
//!
//! A bound of `2^16` or more has no proof. The contract must require `hi < 2^{w_c}` or accept that an out-of-domain bound makes the
//! proof impossible (the count cannot be met); `lo > hi` likewise makes it impossible, and so
//! does `min_cohort > count + 2^32` and a statistic index outside `stats`. Values in a record that has already failed are only
//! checked against the widest field's width.

use halo2_base::halo2_proofs::{
    circuit::{Cell, Layouter, SimpleFloorPlanner, Value},
    halo2curves::{bn256::Fr, ff::Field},
    plonk::{Advice, Circuit, Column, ConstraintSystem, Error, Expression, Fixed, Instance},
    poly::Rotation,
};

use super::commit::CommitError;
use super::fold_results::{
    fr_u64, Attestation, DominanceInputs, Purposes, ResultInputs, ResultRegion, Source, KIND_ARITH,
    KIND_BIT,
};
pub use super::fold_results::{DominanceForgery, ResultForgery, RoundForgery};
use super::{salt_rng, FastShape};
use sha2::{Digest, Sha256};
use std::ops::Range;

/// Shape of a fold circuit: the record shape, the number of data columns `W` and the
/// statistic fields. Fixes the keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoldParams {
    /// Record shape.
    pub shape: FastShape,
    /// Data columns (slots per row), `W`.
    pub slots: usize,
    /// Field indices whose sums and sums of squares every proof accumulates (a query
    /// releases the one it names). At least one, distinct. A nullable one
    /// ([`FastShape::nullable`]) skips missing values and counts the others.
    pub stats: Vec<usize>,
    /// The strata each proof releases a cell of (`None`: one cell, the whole cohort).
    pub strata: Option<Strata>,
    /// An attestation shape: each proof releases a verdict instead of the cell, whether the
    /// statistic's mean over at least `min_cohort` values reaches the query's threshold
    /// ([`FoldQuery::threshold`]). Not with strata.
    pub attestation: bool,
    /// The rounding every released count and sum gets, after suppression (`None`: exact).
    /// Not with an attestation (which releases no count).
    pub rounding: Option<Rounding>,
    /// The dominance rule on the released sum (`None`: none). One statistic, one cell (not
    /// with strata or an attestation), at least [`DOMINANCE_ROWS`] rows per record.
    pub dominance: Option<Dominance>,
}

/// The `(2, k)` dominance rule statistical agencies apply to magnitude tables (issue #13's
/// N-K rule): a cell whose two largest contributions to `Σ x` exceed `k` % of it is
/// suppressed like a cell below the floor (every released value of it, and the `suppressed`
/// flag set), so no released sum is mostly one or two patients' values. Fixed by the
/// custodian in the circuit's shape, like [`Rounding`]. The proof finds the two largest
/// values itself (module docs, "Dominance"): the prover cannot understate them to release a
/// dominated cell, nor overstate them to withhold one that is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Dominance {
    /// `k`, in percent, 1 ..= 99.
    pub percent: u8,
}

/// Rows a record needs for the dominance rule: its accumulator column holds `m₁, m₂, Σ g, Σ h`
/// on a record's rows 0 .. 3.
pub const DOMINANCE_ROWS: usize = 4;

impl Dominance {
    /// Whether a cell with total `sum` and largest contributions `top` (`top[0] ≥ top[1]`,
    /// 0 where there are fewer) is dominated: `100 · (top₀ + top₁) > k · sum`. An empty or
    /// all-zero cell is not.
    pub fn dominated(self, top: [u64; 2], sum: u64) -> bool {
        100 * (u128::from(top[0]) + u128::from(top[1])) > u128::from(self.percent) * u128::from(sum)
    }

    /// The rule's tag in a circuit id: `d90` for `k = 90`.
    pub fn tag(self) -> String {
        format!("d{}", self.percent)
    }
}

/// A rounding rule for released values (issue #13's proven rounding), fixed by the custodian in
/// the circuit's shape, so a sponsor cannot turn it off. It applies to every released count
/// and sum of every cell: a `Σ x` of a 0/1 column is a count too. Zero stays zero under both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// To the nearest multiple of 5, halves up: `5 · ⌊(x + 2) / 5⌋` (OpenSAFELY's counts).
    Nearest5,
    /// OpenSAFELY's midpoint-6: `6 · ⌈x / 6⌉ − 3 · [x ≠ 0]` (1–6 → 3, 7–12 → 9, 0 → 0).
    Midpoint6,
}

impl Rounding {
    /// Every rule, in the order of its id tag's digit.
    pub const ALL: [Rounding; 2] = [Rounding::Nearest5, Rounding::Midpoint6];

    /// `b` in `x + o = b · q + r` (`0 ≤ r < b`): the rule's step.
    pub fn base(self) -> u64 {
        match self {
            Rounding::Nearest5 => 5,
            Rounding::Midpoint6 => 6,
        }
    }

    /// `o` in `x + o = b · q + r`: `⌊(x + 2) / 5⌋` is to the nearest, `⌊(x + 5) / 6⌋` is
    /// `⌈x / 6⌉`.
    pub(super) fn offset(self) -> u64 {
        match self {
            Rounding::Nearest5 => 2,
            Rounding::Midpoint6 => 5,
        }
    }

    /// The rule's tag in a circuit id: `r5`, `r6`.
    pub fn tag(self) -> &'static str {
        match self {
            Rounding::Nearest5 => "r5",
            Rounding::Midpoint6 => "r6",
        }
    }

    /// Whether a non-zero value is moved down to its bin's midpoint (`− 3 · [x ≠ 0]`).
    pub(super) fn midpoint(self) -> bool {
        self == Rounding::Midpoint6
    }

    /// The rounded value (at most `x + 2`; it never overflows: at the top of `u64` the bins
    /// end at `2^64 − 1`).
    pub fn apply(self, x: u64) -> u64 {
        let (b, o) = (u128::from(self.base()), u128::from(self.offset()));
        let up = (u128::from(x) + o) / b * b;
        let out = if self.midpoint() && x != 0 {
            up - 3
        } else {
            up
        };
        u64::try_from(out).expect("a rounded u64 is a u64")
    }
}

/// Strata of a fold circuit: the records split by the code of one field (an arm, a sex, a
/// site, an age band imported as a column), each stratum a released cell. A record whose code
/// is `count` or more is in no stratum. A missing value is stored as 0 (with its `known` bit
/// 0): over the strata of a nullable column, a query must ask the `known` bit `[1, 1]` (any
/// criterion on the column does), or records missing the column count in stratum 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strata {
    /// The field whose value `v < count` is a record's stratum.
    pub field: usize,
    /// Number of strata, 2 ..= [`MAX_STRATA`].
    pub count: usize,
}

/// Most strata one proof releases: one lane of [`LANE_BITS`] per stratum in a field element
/// (`3 · 84 = 252` bits, below the modulus).
pub const MAX_STRATA: usize = 3;
/// Bits of one stratum's lane in a running sum: it holds `Σ x + 2^64 · N` with `N < 2^20`.
pub const LANE_BITS: u32 = 84;
/// A stratified shape holds fewer records than this (no lane can then overflow).
pub const STRATA_CAPACITY: usize = 1 << 20;

/// `B = 2^84`, the weight of stratum 1's lane (stratum `v`'s is `B^v`).
pub(super) fn lane_base() -> Fr {
    Fr::from(1u64 << (LANE_BITS / 2)).square()
}

/// `B^v`, stratum `v`'s lane weight (the table's `t_λ` on the stratum field's value `v`).
fn lane_weight(v: u64) -> Fr {
    lane_base().pow_vartime([v])
}

/// A query over a fold circuit: the predicate, the statistic to release, the smallest cell
/// and the context the proof is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldQuery {
    /// `(lo, hi)` per field, inclusive.
    pub ranges: Vec<(u64, u64)>,
    /// The statistic released: an index into [`FoldParams::stats`] (its public input is the
    /// statistic's field index, `stats[stat]`, which means the same in every circuit of a
    /// schema).
    pub stat: usize,
    /// Smallest count released (`0 < count < min_cohort` is suppressed).
    pub min_cohort: u64,
    /// The market's binding of chain, market, query and claimant (any field element).
    pub context: Fr,
    /// An attestation's threshold `(a, b)`: the verdict is `mean ≥ a / b` in the statistic's
    /// encoded units (`a < 2^64`, `1 ≤ b < 2^32`). `Some` exactly for an attestation shape
    /// ([`FoldParams::attestation`]).
    pub threshold: Option<(u64, u64)>,
}

/// Bits of an attestation threshold's numerator `a` (the denominator `b` has 32).
pub const THRESHOLD_BITS: u32 = 64;

/// An attestation's threshold `(a, b)` as its public input, `a + 2^64 · b` (the circuit splits
/// it into proven 64- and 32-bit parts).
pub fn pack_threshold((a, b): (u64, u64)) -> Fr {
    Fr::from(a) + packed_shift() * Fr::from(b)
}

/// What an attestation proof releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Records present (not padding).
    pub records: u64,
    /// At least `min_cohort` matching records have the statistic, and their mean reaches the
    /// threshold: `N ≥ k` and `b · Σx ≥ a · N`.
    pub holds: bool,
}

/// What a proof releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldResult {
    /// Records present (not padding); released even when suppressed.
    pub records: u64,
    /// Matching records (0 when suppressed).
    pub count: u64,
    /// Matching records whose statistic is not missing (`count` for a statistic that is not
    /// nullable; 0 when suppressed).
    pub nonmissing: u64,
    /// `Σ x` of the statistic over the matching records (0 when suppressed).
    pub sum: u64,
    /// `Σ x²` (0 when suppressed).
    pub sum_squares: u64,
    /// `0 < count < min_cohort`.
    pub suppressed: bool,
}

/// One released cell of a stratified proof (a [`FoldResult`] without the records total).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellResult {
    /// Matching records in the cell (0 when suppressed).
    pub count: u64,
    /// Those whose statistic is not missing (0 when suppressed).
    pub nonmissing: u64,
    /// `Σ x` (0 when suppressed).
    pub sum: u64,
    /// `Σ x²` (0 when suppressed).
    pub sum_squares: u64,
    /// Suppressed: below the floor itself, or as the complement of the only such cell.
    pub suppressed: bool,
}

/// What a stratified proof releases: the records total and one cell per stratum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrataResult {
    /// Records present (not padding).
    pub records: u64,
    /// One cell per stratum, in code order.
    pub cells: Vec<CellResult>,
}

impl FoldResult {
    /// The released cell.
    pub fn cell(&self) -> CellResult {
        CellResult {
            count: self.count,
            nonmissing: self.nonmissing,
            sum: self.sum,
            sum_squares: self.sum_squares,
            suppressed: self.suppressed,
        }
    }
}

/// Bits of each bound (`lo`, `hi`) in a packed public input: a field is at most 16 bits wide
/// (its table block has `2^w` rows), so a bound of 16 bits or more has no proof.
pub const BOUND_BITS: u32 = 16;
/// Fields whose bounds share one public input: `7 · 2 · 16 = 224` bits, below the field's 254,
/// so the split into proven 16-bit halves is unique.
pub const BOUNDS_PER_INPUT: usize = 7;

/// Up to [`BOUNDS_PER_INPUT`] fields' bounds as one public input,
/// `Σ_j (lo_j + 2^16 · hi_j) · 2^{32 j}` (the circuit splits it into proven 16-bit halves).
/// Every public input costs the verifier ~140 bytes of code, and bounds are most of them.
pub fn pack_bounds(bounds: &[(u64, u64)]) -> Fr {
    debug_assert!(bounds.len() <= BOUNDS_PER_INPUT);
    let half = Fr::from(1u64 << BOUND_BITS);
    bounds.iter().rev().fold(Fr::ZERO, |acc, &(lo, hi)| {
        (acc * half + Fr::from(hi)) * half + Fr::from(lo)
    })
}

/// The consent purpose a query asks for: the one field among `purposes` whose range is
/// `[1, 1]` while every other purpose field's is `[0, 1]` (what [`FoldQuery`]s of a shape
/// with purposes must look like); `purposes.len()`, an index no proof accepts, otherwise.
pub fn purpose_of(ranges: &[(u64, u64)], purposes: &Range<usize>) -> u64 {
    let bits = &ranges[purposes.clone()];
    let asked: Vec<usize> = (0..bits.len()).filter(|&i| bits[i] == (1, 1)).collect();
    match asked[..] {
        [p] if bits.iter().all(|&b| b == (1, 1) || b == (0, 1)) => p as u64,
        _ => bits.len() as u64,
    }
}

/// The public-input layout of a fold circuit: the one place that says which input is where.
///
/// `[bounds ×G, (purpose), statistic, min_cohort, context, records, then per released cell
/// count, nonmissing, Σx, Σx², suppressed]` (one cell, or one per stratum: [`Self::cell`]):
/// the bounds of every field but the consent purposes' in groups of
/// [`BOUNDS_PER_INPUT`] ([`pack_bounds`]), then, for a shape with consent purposes
/// ([`FastShape::purposes`]), the purpose a record must have consented to (the circuit sets
/// those fields' ranges from it). The statistic is named by its field index (the same in every
/// circuit of a schema, whatever statistics each accumulates). So the query's constants end
/// with `purpose, statistic, min_cohort`, as `QueryMarket` reads them, and depend on the
/// schema alone. An attestation shape ([`FoldParams::attestation`]) has its threshold right
/// after the bounds ([`Self::threshold`]) and, after the records total, one output, the
/// verdict ([`Self::verdict`]), instead of cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputLayout {
    fields: usize,
    purposes: Option<Range<usize>>,
    stats: Vec<usize>,
    /// Released cells: 1, or one per stratum (0 for an attestation).
    cells: usize,
    /// An attestation: a threshold among the constants and a verdict for output.
    attestation: bool,
}

/// Where one released cell's values are among the public inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellAt {
    /// The count.
    pub count: usize,
    /// The non-missing count.
    pub nonmissing: usize,
    /// `Σ x`.
    pub sum: usize,
    /// `Σ x²`.
    pub sum_squares: usize,
    /// The suppressed flag.
    pub suppressed: usize,
}

impl InputLayout {
    /// Fields whose bounds are public inputs (all but the consent purposes), in field order.
    pub fn bounded_fields(&self) -> Vec<usize> {
        (0..self.fields)
            .filter(|c| !self.purposes.as_ref().is_some_and(|p| p.contains(c)))
            .collect()
    }
    /// Where field `c`'s bounds are: `(input index, position in it)`; `None` for a consent
    /// purpose.
    pub fn bounds(&self, c: usize) -> Option<(usize, usize)> {
        let i = self.bounded_fields().iter().position(|&f| f == c)?;
        Some((i / BOUNDS_PER_INPUT, i % BOUNDS_PER_INPUT))
    }
    /// Number of bound inputs, `G`.
    pub fn bound_inputs(&self) -> usize {
        self.bounded_fields().len().div_ceil(BOUNDS_PER_INPUT)
    }
    /// Index of an attestation's threshold ([`pack_threshold`]), right after the bounds.
    pub fn threshold(&self) -> Option<usize> {
        self.attestation.then(|| self.bound_inputs())
    }
    /// Index of the consent purpose, for a shape with purposes.
    pub fn purpose(&self) -> Option<usize> {
        let at = self.bound_inputs() + self.attestation as usize;
        self.purposes.as_ref().map(|_| at)
    }
    /// Index of the released statistic's field index.
    pub fn stat(&self) -> usize {
        self.bound_inputs() + self.attestation as usize + self.purposes.is_some() as usize
    }
    /// Index of `min_cohort`.
    pub fn min_cohort(&self) -> usize {
        self.stat() + 1
    }
    /// Number of query constants (the inputs before the context).
    pub fn constants(&self) -> usize {
        self.context()
    }
    /// Index of the context.
    pub fn context(&self) -> usize {
        self.min_cohort() + 1
    }
    /// Index of the records-present total.
    pub fn records(&self) -> usize {
        self.context() + 1
    }
    /// Released cells (1, or one per stratum; 0 for an attestation).
    pub fn cells(&self) -> usize {
        self.cells
    }
    /// Index of an attestation's verdict, after the records total.
    pub fn verdict(&self) -> Option<usize> {
        self.attestation.then(|| self.records() + 1)
    }
    /// Where cell `v`'s five values are: `count, nonmissing, Σx, Σx², suppressed`, after the
    /// records total, cell by cell.
    pub fn cell(&self, v: usize) -> CellAt {
        debug_assert!(v < self.cells);
        let at = self.records() + 1 + 5 * v;
        CellAt {
            count: at,
            nonmissing: at + 1,
            sum: at + 2,
            sum_squares: at + 3,
            suppressed: at + 4,
        }
    }
    /// Index of the released count (of the first cell).
    pub fn count(&self) -> usize {
        self.cell(0).count
    }
    /// Index of the non-missing count (the count, for a statistic that is not nullable).
    pub fn nonmissing(&self) -> usize {
        self.cell(0).nonmissing
    }
    /// Index of `Σ x`.
    pub fn sum(&self) -> usize {
        self.cell(0).sum
    }
    /// Index of `Σ x²`.
    pub fn sum_squares(&self) -> usize {
        self.cell(0).sum_squares
    }
    /// Index of the suppressed flag.
    pub fn suppressed(&self) -> usize {
        self.cell(0).suppressed
    }
    /// Number of public inputs.
    pub fn len(&self) -> usize {
        self.records() + 1 + 5 * self.cells + self.attestation as usize
    }
    /// Never: every layout has outputs.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The query's constants, in order (the inputs before the context).
    pub fn query_constants(&self, query: &FoldQuery) -> Vec<Fr> {
        let bounded: Vec<(u64, u64)> = self
            .bounded_fields()
            .into_iter()
            .map(|c| query.ranges[c])
            .collect();
        let mut v: Vec<Fr> = bounded.chunks(BOUNDS_PER_INPUT).map(pack_bounds).collect();
        if self.attestation {
            v.push(pack_threshold(query.threshold.unwrap_or((0, 0))));
        }
        if let Some(p) = &self.purposes {
            v.push(Fr::from(purpose_of(&query.ranges, p)));
        }
        v.extend([self.stats[query.stat] as u64, query.min_cohort].map(Fr::from));
        debug_assert_eq!(v.len(), self.constants());
        v
    }

    /// The public inputs of `query` with `result` (an unstratified layout), in order.
    pub fn instances(&self, query: &FoldQuery, result: &FoldResult) -> Vec<Fr> {
        self.instances_of(query, result.records, &[result.cell()])
    }

    /// The public inputs of `query` with `result` (a stratified layout), in order.
    pub fn strata_instances(&self, query: &FoldQuery, result: &StrataResult) -> Vec<Fr> {
        self.instances_of(query, result.records, &result.cells)
    }

    /// The public inputs of `query` with `verdict` (an attestation layout), in order.
    pub fn attestation_instances(&self, query: &FoldQuery, verdict: &Verdict) -> Vec<Fr> {
        debug_assert!(self.attestation);
        let mut v = self.query_constants(query);
        v.push(query.context);
        v.extend([verdict.records, verdict.holds as u64].map(Fr::from));
        debug_assert_eq!(v.len(), self.len());
        v
    }

    fn instances_of(&self, query: &FoldQuery, records: u64, cells: &[CellResult]) -> Vec<Fr> {
        debug_assert_eq!(cells.len(), self.cells);
        let mut v = self.query_constants(query);
        v.push(query.context);
        v.push(Fr::from(records));
        for c in cells {
            v.extend(
                [
                    c.count,
                    c.nonmissing,
                    c.sum,
                    c.sum_squares,
                    c.suppressed as u64,
                ]
                .map(Fr::from),
            );
        }
        debug_assert_eq!(v.len(), self.len());
        v
    }
}

/// The plain computation a proof must agree with, for the whole cohort as one cell (what an
/// unstratified proof releases): present records matching every range; a missing statistic,
/// stored as 0 with its `known` bit 0, adds nothing to the sums and is not counted in
/// `nonmissing`. The cell is suppressed when `0 < count < min_cohort` or
/// `0 < nonmissing < min_cohort` (a mean over fewer values than the floor is as revealing as a
/// count below it).
pub fn evaluate(params: &FoldParams, records: &[Vec<u64>], query: &FoldQuery) -> FoldResult {
    let [c] = release(
        params,
        tally(params, records, query, 1, |_| Some(0)),
        query.min_cohort,
    )[..] else {
        unreachable!("one cell")
    };
    FoldResult {
        records: records.len() as u64,
        count: c.count,
        nonmissing: c.nonmissing,
        sum: c.sum,
        sum_squares: c.sum_squares,
        suppressed: c.suppressed,
    }
}

/// The plain computation a stratified proof must agree with: [`evaluate`] per stratum (a
/// record in stratum `v` when its [`Strata::field`] holds `v`), then *complementary
/// suppression*: when exactly one cell is below the floor, the smallest other cell that is
/// released and not empty is suppressed too (the lowest code among equals), so that the
/// suppressed cell cannot be recovered from the cohort's total. Unstratified params give the
/// whole cohort as one cell.
pub fn evaluate_strata(
    params: &FoldParams,
    records: &[Vec<u64>],
    query: &FoldQuery,
) -> StrataResult {
    let tallied = tally(params, records, query, params.cells(), |r| {
        match params.strata {
            Some(s) => Some(r[s.field] as usize).filter(|&v| v < s.count),
            None => Some(0),
        }
    });
    StrataResult {
        records: records.len() as u64,
        cells: release(params, tallied, query.min_cohort),
    }
}

/// The plain computation an attestation proof must agree with: over the matching records,
/// `N` non-missing values of the statistic with sum `S` (as [`evaluate`] counts them, before
/// suppression), the verdict is `N ≥ min_cohort` and `b · S ≥ a · N` for the threshold
/// `(a, b)`: the mean reaches `a / b` over at least `min_cohort` values.
pub fn evaluate_attestation(
    params: &FoldParams,
    records: &[Vec<u64>],
    query: &FoldQuery,
) -> Verdict {
    let [Tally { cell: c, .. }] = &tally(params, records, query, 1, |_| Some(0))[..] else {
        unreachable!("one cell")
    };
    let (a, b) = query.threshold.unwrap_or((0, 0));
    let holds = c.nonmissing >= query.min_cohort
        && u128::from(b) * u128::from(c.sum) >= u128::from(a) * u128::from(c.nonmissing);
    Verdict {
        records: records.len() as u64,
        holds,
    }
}

/// A cell's tallies before the disclosure rules: its sums and its two largest values of the
/// statistic (`top[0] ≥ top[1]`, 0 where there are fewer; the dominance rule's).
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    cell: CellResult,
    top: [u64; 2],
}

/// Per cell, the unsuppressed tallies of the matching records (`cell_of` a record's cell).
fn tally(
    params: &FoldParams,
    records: &[Vec<u64>],
    query: &FoldQuery,
    cells: usize,
    cell_of: impl Fn(&[u64]) -> Option<usize>,
) -> Vec<Tally> {
    let f = params.stats[query.stat];
    let known = params.shape.known_field(f);
    let mut out = vec![Tally::default(); cells];
    for r in records {
        let matches = r
            .iter()
            .zip(&query.ranges)
            .all(|(v, (lo, hi))| lo <= v && v <= hi);
        let Some(c) = cell_of(r).filter(|_| matches) else {
            continue;
        };
        let Tally { cell, top } = &mut out[c];
        cell.count += 1;
        // A missing value is stored as 0: the sums skip it as they are.
        cell.nonmissing += known.map_or(1, |b| r[b]);
        cell.sum += r[f];
        cell.sum_squares += r[f] * r[f];
        if r[f] > top[0] {
            *top = [r[f], top[0]];
        } else if r[f] > top[1] {
            top[1] = r[f];
        }
    }
    out
}

/// The disclosure rules on tallied cells: the floor and the shape's dominance rule, then
/// complementary suppression ([`evaluate_strata`]); a suppressed cell releases zeros; then the
/// shape's rounding of every released count and sum.
fn release(params: &FoldParams, tallies: Vec<Tally>, min_cohort: u64) -> Vec<CellResult> {
    let small = |n: u64| n > 0 && n < min_cohort;
    let dominated = |t: &Tally| {
        params
            .dominance
            .is_some_and(|d| d.dominated(t.top, t.cell.sum))
    };
    let mut cells: Vec<CellResult> = tallies
        .iter()
        .map(|t| CellResult {
            suppressed: small(t.cell.count) || small(t.cell.nonmissing) || dominated(t),
            ..t.cell
        })
        .collect();
    if cells.iter().filter(|c| c.suppressed).count() == 1 {
        let second = (0..cells.len())
            .filter(|&v| !cells[v].suppressed && cells[v].count > 0)
            .min_by_key(|&v| (cells[v].count, v));
        if let Some(v) = second {
            cells[v].suppressed = true;
        }
    }
    for c in cells.iter_mut().filter(|c| c.suppressed) {
        *c = CellResult {
            suppressed: true,
            ..CellResult::default()
        };
    }
    if let Some(rule) = params.rounding {
        for c in cells.iter_mut() {
            for x in [
                &mut c.count,
                &mut c.nonmissing,
                &mut c.sum,
                &mut c.sum_squares,
            ] {
                *x = rule.apply(*x);
            }
        }
    }
    cells
}

/// Tag of the failed block (slot `s` has tag `s + 2`: `present` 2, field `c` at `c + 3`).
const TAG_FAILED: u64 = 1;

/// What a constant table row's match bit must be (the fixed column `t_fix`).
const FIX_FAILED: u64 = 1;
/// `t_m = t_val` (the `present` block).
const FIX_PRESENT: u64 = 2;
/// `t_m = 1` (a pass slot's single row).
const FIX_PASS: u64 = 3;

/// The table's layout: constant rows (tag, value, kind), then one block per field.
#[derive(Clone, Debug)]
struct TableLayout {
    /// `(row, tag, value, t_fix kind)`.
    constant: Vec<(usize, u64, u64, u64)>,
    /// Per field: the row of its `hi` spacer (`lo` spacer below it, values from `+ 2`).
    fields: Vec<usize>,
    /// Row after the last block's closing spacers, where `q_tstart` marks the end.
    marker: usize,
}

/// What running sum `u` of a record adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Term {
    /// The record's last slot bit.
    Count,
    /// Its `present` cell.
    Present,
    /// `p_end · x_k` for the statistic in slot `(row, column)`; when it is nullable, its
    /// `known` bit's slot too, and the term is `p_end · (x_k + 2^64 · b)`: the non-missing
    /// count rides in the same running sum above `Σ x` (a missing value is 0 and adds
    /// nothing), and the gate `(1 − b) · x = 0` sits on this sum's row.
    Sum(Slot, Option<Slot>),
    /// `p_end · x_k²`.
    Squares(Slot),
    /// The dominance rule's `i`-th largest value of the statistic (`m₁`, `m₂`): not a sum but
    /// the same value in every record, carried down (`acc = acc(−R)` past the first record).
    Top(usize),
    /// Records holding `m_i` (`Σ g` for `m₁`, `Σ h` for `m₂`): a running sum whose step is
    /// not a cell but the difference itself, `g = acc − acc(−R)` (the first record: `acc`),
    /// which the dominance gate constrains.
    Holder(usize),
}

/// Where the non-missing count sits in a nullable statistic's running sum, `2^64` (above
/// `Σ x < 2^64`).
pub(super) fn packed_shift() -> Fr {
    Fr::from(1u64 << 32).square()
}

/// Where a field sits in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// Row within the record.
    row: usize,
    /// Data column.
    col: usize,
}

/// The running sums of statistic `k` (indices into [`FoldParams::terms`]): `Σ x` (with the
/// non-missing count `N` above it, `Σ x + 2^64 · N`, when `packed`) and `Σ x²`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StatSums {
    pub sum: usize,
    pub squares: usize,
    pub packed: bool,
}

impl FoldParams {
    /// Slots per record (`present` and the fields).
    pub fn record_slots(&self) -> usize {
        self.shape.fields() + 1
    }

    /// Rows per record, `R`.
    pub fn rows_per_record(&self) -> usize {
        self.record_slots().div_ceil(self.slots)
    }

    /// The public-input layout.
    pub fn inputs(&self) -> InputLayout {
        InputLayout {
            fields: self.shape.fields(),
            purposes: self.shape.purposes.clone(),
            stats: self.stats.clone(),
            cells: self.cells(),
            attestation: self.attestation,
        }
    }

    /// Released cells: one per stratum, 1, or none for an attestation.
    pub fn cells(&self) -> usize {
        if self.attestation {
            0
        } else {
            self.strata.map_or(1, |s| s.count)
        }
    }

    /// Where the stratum field sits in a record (its lookup also gives the record's lane
    /// weight `λ`).
    fn stratum_slot(&self) -> Option<Slot> {
        self.strata.map(|s| self.slot_of(s.field))
    }

    /// Whether some statistic is nullable (the shape then pays for skipping missing values).
    pub fn nullable(&self) -> bool {
        self.stats
            .iter()
            .any(|&f| self.shape.known_field(f).is_some())
    }

    /// Where field `c` sits in a record (slot `c + 1`, after `present`).
    fn slot_of(&self, c: usize) -> Slot {
        let s = c + 1;
        Slot {
            row: s / self.slots,
            col: s % self.slots,
        }
    }

    /// The statistics' slots, each with its `known` bit's when nullable.
    fn stat_slots(&self) -> Vec<(Slot, Option<Slot>)> {
        self.stats
            .iter()
            .map(|&f| {
                let known = self.shape.known_field(f).map(|b| self.slot_of(b));
                (self.slot_of(f), known)
            })
            .collect()
    }

    /// The running sums of a record, in order (`u`): count, present, then per statistic its
    /// non-missing count when nullable (first, so that it takes the statistic's own row and
    /// its gate reads `x` where it is), sum and sum of squares.
    fn terms(&self) -> Vec<Term> {
        let mut t = vec![Term::Count, Term::Present];
        for (slot, known) in self.stat_slots() {
            t.extend([Term::Sum(slot, known), Term::Squares(slot)]);
        }
        if self.dominance.is_some() {
            t.extend([Term::Top(0), Term::Top(1), Term::Holder(0), Term::Holder(1)]);
        }
        t
    }

    /// Places of the dominance rule's `m₁, m₂` and of its holder counts `Σ g, Σ h` among
    /// [`Self::terms`] (a shape with the rule).
    fn dominance_sums(&self) -> Option<([usize; 2], [usize; 2])> {
        self.dominance?;
        let terms = self.terms();
        let at = |want: Term| terms.iter().position(|t| *t == want);
        Some((
            [at(Term::Top(0))?, at(Term::Top(1))?],
            [at(Term::Holder(0))?, at(Term::Holder(1))?],
        ))
    }

    /// Where statistic `k`'s running sums are among [`Self::terms`].
    pub(super) fn stat_sums(&self, k: usize) -> StatSums {
        let (slot, known) = self.stat_slots()[k];
        let terms = self.terms();
        let at = |want: Term| {
            terms
                .iter()
                .position(|t| *t == want)
                .expect("a statistic's sums")
        };
        StatSums {
            sum: at(Term::Sum(slot, known)),
            squares: at(Term::Squares(slot)),
            packed: known.is_some(),
        }
    }

    /// Running sums per record (count, present, and two per statistic).
    #[cfg(test)]
    pub(super) fn running_sums(&self) -> usize {
        self.terms().len()
    }

    /// Accumulator columns, `A = ⌈(2 + 2S) / R⌉`, and one more for the dominance rule's four
    /// cells.
    pub fn accumulators(&self) -> usize {
        self.sum_columns() + usize::from(self.dominance.is_some())
    }

    /// Accumulator columns of the count, present and statistics' sums, `⌈(2 + 2S) / R⌉`.
    fn sum_columns(&self) -> usize {
        self.terms()
            .iter()
            .filter(|t| !matches!(t, Term::Top(_) | Term::Holder(_)))
            .count()
            .div_ceil(self.rows_per_record())
    }

    /// `(column, row offset)` of every running sum within a record: sum `u` of the `T` in
    /// `A` columns at `(u mod A, ⌊u / A⌋)`, so every column is read at the same rotations,
    /// `0 .. ⌈T / A⌉` and those less `R` (gates anchor on a record's first row): a verifier's
    /// cost grows with each distinct set of rotations a column is opened at and with its size.
    /// The dominance rule's `m₁, m₂, Σ g, Σ h` fill rows 0 .. 3 of the last column, the same
    /// rotations again.
    fn sum_places(&self) -> Vec<(usize, usize)> {
        let a = self.sum_columns();
        let (mut sums, mut rule) = (0, 0);
        self.terms()
            .iter()
            .map(|t| match t {
                Term::Top(_) | Term::Holder(_) => {
                    rule += 1;
                    (a, rule - 1)
                }
                _ => {
                    sums += 1;
                    ((sums - 1) % a, (sums - 1) / a)
                }
            })
            .collect()
    }

    /// `(column, row offset)` of running sum `u` within a record.
    fn sum_at(&self, u: usize) -> (usize, usize) {
        self.sum_places()[u]
    }

    /// Where the table's rows go. Row 0 stays empty: the end-of-block gate looks three rows
    /// ahead of a block's last row and must not wrap into the blinding rows.
    fn table(&self) -> TableLayout {
        let widest = self.shape.widths.iter().copied().max().unwrap_or(0);
        let mut constant = Vec::new();
        let mut row = 1;
        for v in 0..1u64 << widest {
            constant.push((row, TAG_FAILED, v, FIX_FAILED));
            row += 1;
        }
        for v in 0..2 {
            constant.push((row, 2, v, FIX_PRESENT));
            row += 1;
        }
        for s in self.record_slots()..self.rows_per_record() * self.slots {
            constant.push((row, s as u64 + 2, 0, FIX_PASS));
            row += 1;
        }
        let mut fields = Vec::new();
        for w in &self.shape.widths {
            fields.push(row);
            row += 2 + (1usize << w);
        }
        TableLayout {
            constant,
            fields,
            marker: row + 2,
        }
    }

    /// Row of each field's value 0 in the table (tests forge windows there).
    pub fn field_value_rows(&self) -> Vec<usize> {
        self.table().fields.iter().map(|s| s + 2).collect()
    }

    /// Rows of the table region.
    pub fn table_rows(&self) -> usize {
        self.table().marker + 1
    }
    /// Rows of the record region.
    pub fn record_rows(&self) -> usize {
        self.shape.capacity * self.rows_per_record()
    }

    /// The results program's inputs (values from the last record's sums, or zeros).
    fn result_inputs(&self, sums: &[Fr], query: &FoldQuery) -> ResultInputs {
        let layout = self.inputs();
        let src = |u: usize| {
            let (a, o) = self.sum_at(u);
            (sums[u], Source::Sum(a, o))
        };
        let stats: Vec<StatSums> = (0..self.stats.len()).map(|k| self.stat_sums(k)).collect();
        ResultInputs {
            bounds: {
                let bounded: Vec<(u64, u64)> = layout
                    .bounded_fields()
                    .into_iter()
                    .map(|c| query.ranges[c])
                    .collect();
                bounded
                    .chunks(BOUNDS_PER_INPUT)
                    .enumerate()
                    .map(|(g, b)| (b.to_vec(), g))
                    .collect()
            },
            purpose: self.shape.purposes.as_ref().map(|p| Purposes {
                asked: purpose_of(&query.ranges, p),
                at: layout
                    .purpose()
                    .expect("a shape with purposes has the input"),
                fields: p.clone(),
            }),
            fields: self.shape.fields(),
            count: src(0),
            sums: stats
                .iter()
                .map(|t| ([src(t.sum), src(t.squares)], t.packed))
                .collect(),
            stat: (self.stats[query.stat] as u64, layout.stat()),
            stat_fields: self.stats.iter().map(|&f| f as u64).collect(),
            min_cohort: (Fr::from(query.min_cohort), layout.min_cohort()),
            cells: (0..layout.cells()).map(|v| layout.cell(v)).collect(),
            attestation: layout
                .threshold()
                .zip(layout.verdict())
                .map(|(at, verdict)| Attestation {
                    threshold: query.threshold.unwrap_or((0, 0)),
                    at,
                    verdict,
                }),
            rounding: self.rounding,
            dominance: self
                .dominance
                .zip(self.dominance_sums())
                .map(|(rule, (tops, holders))| DominanceInputs {
                    rule,
                    width: self.shape.widths[self.stats[0]],
                    top: tops.map(src),
                    holders: holders.map(src),
                }),
        }
    }

    /// Rows of the results region (its layout does not depend on the witness).
    fn result_rows(&self) -> usize {
        let query = self.dummy_query();
        let sums = vec![Fr::ZERO; self.terms().len()];
        ResultRegion::build(&self.result_inputs(&sums, &query), ResultForgery::default())
            .values
            .len()
    }

    /// An all-zero query but for a nullable strata field's `known` bit (key generation, and
    /// witnesses whose data columns are all that matters: they do not depend on the query).
    pub(super) fn dummy_query(&self) -> FoldQuery {
        let mut ranges = vec![(0, 0); self.shape.fields()];
        // A query the shape accepts ([`Self::check_query`]): over the strata of a nullable
        // field, its `known` bit asked.
        if let Some(known) = self.strata.and_then(|s| self.shape.known_field(s.field)) {
            ranges[known] = (1, 1);
        }
        FoldQuery {
            ranges,
            stat: 0,
            min_cohort: 0,
            context: Fr::ZERO,
            threshold: self.attestation.then_some((0, 1)),
        }
    }

    /// First row of the results region: below the records and their masking rows, where
    /// every data column is 0.
    pub fn results_start(&self) -> usize {
        self.record_rows() + self.shape.mask_rows
    }

    /// Rows needed before halo2's unusable rows.
    pub fn rows_needed(&self) -> usize {
        (self.results_start() + self.result_rows()).max(self.table_rows())
    }

    /// The constraint system this shape configures (its gates, lookups, queries and columns).
    pub fn constraint_system(&self) -> ConstraintSystem<Fr> {
        let mut cs = ConstraintSystem::<Fr>::default();
        FoldCircuit::configure_with_params(&mut cs, self.clone());
        cs
    }

    /// Rows halo2 leaves unusable at the bottom of every column (`blinding_factors + 1`;
    /// grows with the rotations at which one column is queried).
    pub fn unusable_rows(&self) -> usize {
        let cs = self.constraint_system();
        cs.blinding_factors() + 1
    }

    /// A short digest (12 hex digits of SHA-256) of the constraint system this shape configures:
    /// its gates, lookups, queries and copy columns. The key cache names entries with it, so a
    /// circuit changed under the same id gets new keys instead of stale ones (the fixed columns'
    /// values are not in it: their layout is the circuit id's and the family's to name).
    pub fn constraints_digest(&self) -> String {
        let cs = self.constraint_system();
        let digest = Sha256::digest(format!("{:?}", cs.pinned()).as_bytes());
        hex::encode(&digest[..6])
    }

    /// Points at which one proof opens a data column, at most: its distinct rotations in the
    /// constraint system (gates, lookups; the permutation opens at rotation 0, counted).
    pub fn openings_per_proof(&self) -> usize {
        let cs = self.constraint_system();
        (0..self.slots)
            .map(|j| {
                let mut rotations: Vec<i32> = cs
                    .advice_queries()
                    .iter()
                    .filter(|(c, _)| c.index() == j)
                    .map(|(_, r)| r.0)
                    .chain([0])
                    .collect();
                rotations.sort_unstable();
                rotations.dedup();
                rotations.len()
            })
            .max()
            .unwrap_or(1)
    }

    /// Proofs a dataset commitment may give before it must be renewed under a fresh salt:
    /// `(m − 1) / openings` for `m` masking rows. The data columns' commitments are the same
    /// in every proof, so their openings add up; while fewer than `m` evaluations of a column
    /// are public, its salt-derived masking rows keep them (and the commitment) uniformly
    /// distributed whatever the records (docs/circuits.md).
    pub fn query_budget(&self) -> usize {
        self.shape.mask_rows.saturating_sub(1) / self.openings_per_proof()
    }

    /// The smallest `k` that fits.
    pub fn min_k(&self) -> u32 {
        let rows = self.rows_needed() + self.unusable_rows();
        (usize::BITS - (rows - 1).leading_zeros()).max(4)
    }

    /// Usable rows at `k`.
    pub fn usable_rows(&self, k: u32) -> usize {
        (1usize << k) - self.unusable_rows()
    }

    /// Whether `records` can be laid out by these params at `k`: the shape (a data column,
    /// at least one statistic and each a field, `known` bits and consent purposes of one bit,
    /// fields of at most [`BOUND_BITS`] whose tables fit), the records (at most `capacity`,
    /// one value per field, each within its field's width: the circuit would index or
    /// misbehave otherwise) and the rows (everything fits in `2^k` rows). The one check
    /// behind [`FoldCircuit::new`] and the dataset commitment; returns the usable rows at `k`.
    pub fn check(&self, k: u32, records: &[Vec<u64>]) -> Result<usize, CommitError> {
        let params = self;
        let shape = &params.shape;
        if params.slots == 0 {
            return Err(CommitError::NoDataColumns);
        }
        if params.stats.is_empty() {
            return Err(CommitError::NoStatistic);
        }
        if let Some(&field) = params.stats.iter().find(|&&f| f >= shape.fields()) {
            return Err(CommitError::StatisticNotAField {
                field,
                fields: shape.fields(),
            });
        }
        for &field in &params.stats {
            if let Some(known) = shape.known_field(field) {
                if shape.widths.get(known) != Some(&1) {
                    return Err(CommitError::KnownNotABit { field, known });
                }
            }
        }
        if let Some((field, &width)) = shape.widths.iter().enumerate().find(|(_, &w)| w >= k) {
            return Err(CommitError::FieldTooWide { field, width, k });
        }
        let wide = shape.widths.iter().enumerate();
        if let Some((field, &width)) = wide.clone().find(|(_, &w)| w > BOUND_BITS) {
            return Err(CommitError::FieldOverBoundBits { field, width });
        }
        if params.attestation && params.strata.is_some() {
            return Err(CommitError::AttestationStratified);
        }
        if params.attestation && params.rounding.is_some() {
            return Err(CommitError::AttestationRounded);
        }
        if let Some(d) = params.dominance {
            if !(1..=99).contains(&d.percent) {
                return Err(CommitError::DominancePercent { percent: d.percent });
            }
            let (stats, stratified) = (params.stats.len(), params.strata.is_some());
            if stats != 1 || stratified || params.attestation {
                return Err(CommitError::DominanceShape {
                    stats,
                    stratified,
                    attestation: params.attestation,
                });
            }
            let rows = params.rows_per_record();
            if rows < DOMINANCE_ROWS {
                return Err(CommitError::DominanceRows {
                    rows,
                    needed: DOMINANCE_ROWS,
                });
            }
        }
        if let Some(strata) = params.strata {
            let width = shape.widths.get(strata.field).copied();
            if !(2..=MAX_STRATA).contains(&strata.count) {
                return Err(CommitError::StrataCount {
                    count: strata.count,
                });
            }
            match width {
                None => {
                    return Err(CommitError::StrataNotAField {
                        field: strata.field,
                        fields: shape.fields(),
                    })
                }
                Some(w) if (strata.count as u64) > 1u64 << w => {
                    return Err(CommitError::StrataBeyondField {
                        field: strata.field,
                        width: w,
                        count: strata.count,
                    })
                }
                _ => {}
            }
            if shape.capacity >= STRATA_CAPACITY {
                return Err(CommitError::StrataCapacity {
                    capacity: shape.capacity,
                });
            }
        }
        let purposes = shape.purposes.clone().unwrap_or_default();
        if let Some(field) = purposes.clone().find(|&c| shape.widths.get(c) != Some(&1)) {
            return Err(CommitError::PurposeNotABit { field });
        }
        if records.len() > shape.capacity {
            return Err(CommitError::TooManyRecords {
                records: records.len(),
                capacity: shape.capacity,
            });
        }
        for (record, values) in records.iter().enumerate() {
            if values.len() != shape.fields() {
                return Err(CommitError::RecordWidth {
                    record,
                    got: values.len(),
                    expected: shape.fields(),
                });
            }
            for (field, (&v, &width)) in values.iter().zip(&shape.widths).enumerate() {
                if v >> width != 0 {
                    return Err(CommitError::ValueTooWide {
                        record,
                        field,
                        width,
                    });
                }
            }
        }
        // `unusable_rows` calls `configure`, which needs the checks above.
        let (needed, unusable) = (params.rows_needed(), params.unusable_rows());
        match 1usize.checked_shl(k).and_then(|n| n.checked_sub(unusable)) {
            Some(rows) if rows >= needed => Ok(rows),
            _ => Err(CommitError::KTooSmall {
                k,
                needed,
                unusable,
            }),
        }
    }

    /// Whether `query` fits the shape: one range per field (the circuit indexes them), a
    /// statistic the shape accumulates, a threshold with `1 ≤ b < 2^32` exactly for an
    /// attestation shape, and over the strata of a nullable field, the field's `known` bit
    /// asked to be 1 ([`Strata`]).
    pub fn check_query(&self, query: &FoldQuery) -> Result<(), CommitError> {
        let expected = self.shape.fields();
        if query.ranges.len() != expected {
            return Err(CommitError::RangeCount {
                expected,
                found: query.ranges.len(),
            });
        }
        if query.stat >= self.stats.len() {
            return Err(CommitError::NoSuchStatistic {
                index: query.stat,
                count: self.stats.len(),
            });
        }
        match (self.attestation, query.threshold) {
            (true, Some((_, b))) if b == 0 || b >> 32 != 0 => {
                return Err(CommitError::ThresholdDenominator { denominator: b })
            }
            (true, Some(_)) | (false, None) => {}
            (attestation, _) => return Err(CommitError::ThresholdShape { attestation }),
        }
        // A missing stratum value is stored as code 0: unless the query asks the `known` bit,
        // records missing it would be counted in stratum 0.
        let strata_known = self.strata.and_then(|s| self.shape.known_field(s.field));
        if let Some(known) = strata_known.filter(|&k| query.ranges[k] != (1, 1)) {
            return Err(CommitError::StrataKnownNotAsked {
                field: self.strata.map_or(0, |s| s.field),
                known,
            });
        }
        Ok(())
    }
}

/// Column values of one proof's witness (public so tests can tamper with them).
#[derive(Clone, Debug)]
pub struct FoldAssignment {
    /// Data columns `d_j`.
    pub data: Vec<Vec<Fr>>,
    /// Running match bits `p_j`.
    pub bits: Vec<Vec<Fr>>,
    /// Interleaved running sums; the first column also holds the results region.
    pub acc: Vec<Vec<Fr>>,
    /// Table: match bit per value row.
    pub t_m: Vec<Fr>,
    /// Table: a field's `hi` on its first spacer, `lo` on the second and on its value rows.
    pub lo: Vec<Fr>,
    /// Table: running count of a field block's ones, from `lo − 1 − hi`.
    pub cm: Vec<Fr>,
    /// A stratified shape's lane weights `λ`, in the stratum field's data column: `B^v` on a
    /// record's stratum row while it still matches there and its code `v` is a stratum, else 0.
    pub lambda: Vec<Fr>,
    /// A shape with the dominance rule: per record, on its first row, `e = p·(1 − g)·(m₂ − x)`
    /// (0 on every other row).
    pub dom: Vec<Fr>,
}

/// The N(W) circuit.
#[derive(Clone, Debug)]
pub struct FoldCircuit {
    /// Shape (fixes the keys).
    pub params: FoldParams,
    /// Witness.
    pub assignment: FoldAssignment,
    /// The results region's layout and wiring (values also in `assignment.acc[0]`).
    region: ResultRegion,
}

impl FoldParams {
    /// A shape with the dominance rule: fills `a.dom` from the data and bit columns as they
    /// stand (the two largest matching values of the statistic, `m₁ ≥ m₂`, 0 where there are
    /// fewer; `g` on the first record holding `m₁`, `h` on the first other holding `m₂`),
    /// or as `forge` says, and returns `[m₁, m₂]` and the records holding them.
    fn dominance_witness(
        &self,
        a: &mut FoldAssignment,
        forge: DominanceForgery,
    ) -> ([Fr; 2], [Option<usize>; 2]) {
        if self.dominance.is_none() {
            return ([Fr::ZERO; 2], [None; 2]);
        }
        let (w, r) = (self.slots, self.rows_per_record());
        let s = self.slot_of(self.stats[0]);
        let rec = |a: &FoldAssignment, i: usize| {
            (a.bits[w - 1][i * r + r - 1], a.data[s.col][i * r + s.row])
        };
        let value = |x: Fr| fr_u64(x).unwrap_or(u64::MAX);
        let mut order: Vec<usize> = (0..self.shape.capacity)
            .filter(|&i| rec(a, i).0 == Fr::ONE)
            .collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(value(rec(a, i).1)), i));
        let holders = forge
            .holders
            .unwrap_or([order.first().copied(), order.get(1).copied()]);
        let tops = match forge.top {
            Some(t) => t.map(Fr::from),
            None => [0, 1].map(|j| order.get(j).map_or(Fr::ZERO, |&i| rec(a, i).1)),
        };
        for i in 0..self.shape.capacity {
            let (p, x) = rec(a, i);
            let g = Fr::from((holders[0] == Some(i)) as u64);
            a.dom[i * r] = p * (Fr::ONE - g) * (tops[1] - x);
        }
        (tops, holders)
    }
}

impl FoldCircuit {
    /// The honest witness for `records` under `query` at `k`, masking rows from `salt`;
    /// refused when the params, the records or the query do not fit
    /// ([`FoldParams::check`], [`FoldParams::check_query`]).
    pub fn new(
        params: &FoldParams,
        k: u32,
        salt: &[u8; 32],
        records: &[Vec<u64>],
        query: &FoldQuery,
    ) -> Result<Self, CommitError> {
        Self::forged(params, k, salt, records, query, ResultForgery::default())
    }

    /// Tests: the witness with results-region values a cheating prover chose (checked as
    /// [`Self::new`]).
    pub fn forged(
        params: &FoldParams,
        k: u32,
        salt: &[u8; 32],
        records: &[Vec<u64>],
        query: &FoldQuery,
        forge: ResultForgery,
    ) -> Result<Self, CommitError> {
        let rows = params.check(k, records)?;
        params.check_query(query)?;
        let shape = &params.shape;
        let (w, r) = (params.slots, params.rows_per_record());

        let zeros = || vec![Fr::ZERO; rows];
        let mut a = FoldAssignment {
            data: (0..w).map(|_| zeros()).collect(),
            bits: (0..w).map(|_| zeros()).collect(),
            acc: (0..params.accumulators()).map(|_| zeros()).collect(),
            t_m: zeros(),
            lo: zeros(),
            cm: zeros(),
            lambda: zeros(),
            dom: zeros(),
        };
        let stratum = params.strata.map(|st| (st.field + 1, st.count as u64));
        for i in 0..shape.capacity {
            let rec = records.get(i);
            let mut p = true;
            for s in 0..r * w {
                let v = match (s, rec) {
                    (0, r) => r.is_some() as u64,
                    (s, Some(rec)) if s <= shape.fields() => rec[s - 1],
                    _ => 0,
                };
                let ok = match s {
                    0 => v == 1,
                    s if s <= shape.fields() => {
                        let (lo, hi) = query.ranges[s - 1];
                        lo <= v && v <= hi
                    }
                    _ => true,
                };
                let row = i * r + s / w;
                if let Some((slot, count)) = stratum {
                    if s == slot && p && v < count {
                        a.lambda[row] = lane_weight(v);
                    }
                }
                p &= ok;
                a.data[s % w][row] = Fr::from(v);
                a.bits[s % w][row] = Fr::from(p as u64);
            }
        }
        let mut mask = salt_rng(salt, 1);
        for row in params.record_rows()..params.record_rows() + shape.mask_rows {
            for col in a.data.iter_mut() {
                col[row] = Fr::random(&mut mask);
            }
        }
        let t = params.table();
        for &(row, _, v, kind) in &t.constant {
            a.t_m[row] = Fr::from(match kind {
                FIX_FAILED => 0,
                FIX_PRESENT => v,
                _ => 1,
            });
        }
        for (c, &spacer) in t.fields.iter().enumerate() {
            let (lo, hi) = query.ranges[c];
            let (flo, fhi) = (Fr::from(lo), Fr::from(hi));
            a.lo[spacer] = fhi;
            a.lo[spacer + 1] = flo;
            let mut cm = flo - Fr::ONE - fhi;
            for v in 0..1u64 << shape.widths[c] {
                let row = spacer + 2 + v as usize;
                let m = lo <= v && v <= hi;
                cm += Fr::from(m as u64);
                a.t_m[row] = Fr::from(m as u64);
                a.lo[row] = flo;
                a.cm[row] = cm;
            }
        }
        let mut circuit = FoldCircuit {
            params: params.clone(),
            assignment: a,
            region: ResultRegion::default(),
        };
        circuit.resum(query, forge);
        Ok(circuit)
    }

    /// Recomputes the running sums and the results region from the data and bit columns as
    /// they stand, and returns the public inputs the witness then proves. `new` calls it on
    /// the honest columns; tests call it after tampering with bits, as a cheating prover
    /// would keep its sums consistent.
    pub fn resum(&mut self, query: &FoldQuery, forge: ResultForgery) -> Vec<Fr> {
        self.resum_tweaked(query, forge, &|_, _, term| term)
    }

    /// [`Self::resum`] with record `i`'s term `u` replaced by `tweak(i, u, term)` (tests: a
    /// prover that sums what it likes and keeps everything else consistent).
    pub(super) fn resum_tweaked(
        &mut self,
        query: &FoldQuery,
        forge: ResultForgery,
        tweak: &dyn Fn(usize, usize, Fr) -> Fr,
    ) -> Vec<Fr> {
        let params = &self.params;
        let a = &mut self.assignment;
        let (w, r) = (params.slots, params.rows_per_record());
        let terms = params.terms();
        let places = params.sum_places();
        let lane = params.stratum_slot();
        let (tops, holders) = params.dominance_witness(a, forge.dominance.unwrap_or_default());
        let mut totals = vec![Fr::ZERO; terms.len()];
        for i in 0..params.shape.capacity {
            let p_end = a.bits[w - 1][i * r + r - 1];
            let lambda = lane.map_or(Fr::ONE, |s| a.lambda[i * r + s.row]);
            for (u, term) in terms.iter().enumerate() {
                let (col, o) = places[u];
                let value = match term {
                    Term::Top(j) => {
                        totals[u] = tops[*j];
                        a.acc[col][i * r + o] = tops[*j];
                        continue;
                    }
                    Term::Holder(j) => Fr::from((holders[*j] == Some(i)) as u64),
                    Term::Count => p_end,
                    Term::Present => a.data[0][i * r],
                    Term::Sum(s, known) => {
                        let x = a.data[s.col][i * r + s.row];
                        let n = known.map_or(Fr::ZERO, |b| a.data[b.col][i * r + b.row]);
                        p_end * (x + packed_shift() * n)
                    }
                    Term::Squares(s) => {
                        let x = a.data[s.col][i * r + s.row];
                        p_end * x * x
                    }
                };
                let value = if *term == Term::Present {
                    value
                } else {
                    value * lambda
                };
                totals[u] += tweak(i, u, value);
                a.acc[col][i * r + o] = totals[u];
            }
        }
        let region = ResultRegion::build(&params.result_inputs(&totals, query), forge);
        let start = params.results_start();
        a.acc[0][start..start + region.values.len()].copy_from_slice(&region.values);
        let layout = params.inputs();
        let mut inst = layout.query_constants(query);
        inst.push(query.context);
        inst.push(totals[1]);
        inst.resize(layout.len(), Fr::ZERO);
        // The outputs, after the records total, are what the program released.
        for &(cell, src) in &region.sources {
            if let Source::Instance(i) = src {
                if i > layout.records() {
                    inst[i] = region.values[cell];
                }
            }
        }
        self.region = region;
        inst
    }

    /// An all-padding witness with an all-zero query at `k` (for key generation); refused
    /// when the params do not fit ([`FoldParams::check`]).
    pub fn dummy(params: &FoldParams, k: u32) -> Result<Self, CommitError> {
        FoldCircuit::new(params, k, &[0; 32], &[], &params.dummy_query())
    }
}

/// Columns of [`FoldCircuit`].
#[derive(Clone, Debug)]
pub struct FoldConfig {
    data: Vec<Column<Advice>>,
    bits: Vec<Column<Advice>>,
    acc: Vec<Column<Advice>>,
    t_m: Column<Advice>,
    lo: Column<Advice>,
    cm: Column<Advice>,
    /// 1 on a record's first row.
    q_start: Column<Fixed>,
    /// `o · W + 1` on a record's row `o ≥ 1` (so slot `s = o·W + j` has `τ − 1 = base + j`).
    base: Column<Fixed>,
    q_rec: Column<Fixed>,
    t_tag: Column<Fixed>,
    t_val: Column<Fixed>,
    t_fix: Column<Fixed>,
    q_tab: Column<Fixed>,
    q_tstart: Column<Fixed>,
    /// A stratified shape's `λ` (advice, in the stratum field's slot lookup) and the table's
    /// `t_λ` (fixed: `B^v` on the stratum field's value rows `v < count`, else 0).
    lane: Option<(Column<Advice>, Column<Fixed>)>,
    /// A shape with the dominance rule: its per-record cell `e`.
    dom: Option<Column<Advice>>,
    instance: Column<Instance>,
}

impl Circuit<Fr> for FoldCircuit {
    type Config = FoldConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = FoldParams;

    fn without_witnesses(&self) -> Self {
        self.clone()
    }

    fn params(&self) -> FoldParams {
        self.params.clone()
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> FoldConfig {
        unreachable!("configured with params")
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: FoldParams) -> FoldConfig {
        let (w, r) = (params.slots, params.rows_per_record());
        // Data columns first: they are the first commitments in the proof.
        let data: Vec<_> = (0..w).map(|_| meta.advice_column()).collect();
        let bits: Vec<_> = (0..w).map(|_| meta.advice_column()).collect();
        let acc: Vec<_> = (0..params.accumulators())
            .map(|_| meta.advice_column())
            .collect();
        let [t_m, lo, cm] = [(); 3].map(|_| meta.advice_column());
        let [q_start, base, q_rec, t_tag, t_val, t_fix, q_tab, q_tstart] =
            [(); 8].map(|_| meta.fixed_column());
        // A stratified shape's `λ` and `t_λ` columns, with where the stratum field sits.
        let lane = params
            .stratum_slot()
            .map(|s| (meta.advice_column(), meta.fixed_column(), s));
        // The dominance rule's per-record cell `e = p · (1 − g) · (m₂ − x)` on a record's
        // first row.
        let dom = params.dominance.map(|_| meta.advice_column());
        let instance = meta.instance_column();
        for col in acc.iter().chain([&lo]) {
            meta.enable_equality(*col);
        }
        meta.enable_equality(instance);
        let one = || Expression::Constant(Fr::ONE);
        let c = |v: u64| Expression::Constant(Fr::from(v));

        for j in 0..w {
            meta.lookup_any("slot", |m| {
                let start = m.query_fixed(q_start, Rotation::cur());
                let base = m.query_fixed(base, Rotation::cur());
                let key = if j == 0 {
                    // A record's first slot is `present` (τ − 1 = 1) with P = 1.
                    one() + start + base * m.query_advice(bits[w - 1], Rotation::prev())
                } else {
                    one()
                        + (base + start + c(j as u64))
                            * m.query_advice(bits[j - 1], Rotation::cur())
                };
                let q = m.query_fixed(q_rec, Rotation::cur());
                let mut tuple = vec![
                    (key, m.query_fixed(t_tag, Rotation::cur())),
                    (
                        q * m.query_advice(data[j], Rotation::cur()),
                        m.query_fixed(t_val, Rotation::cur()),
                    ),
                    (
                        m.query_advice(bits[j], Rotation::cur()),
                        m.query_advice(t_m, Rotation::cur()),
                    ),
                ];
                // The stratum field's column also gives each slot its lane weight: `B^v` for
                // the stratum field's value `v` while the record matches, 0 for any other
                // block (every other slot of the column, and the failed block).
                if let Some((lambda, t_lambda, s)) = lane {
                    if s.col == j {
                        tuple.push((
                            m.query_advice(lambda, Rotation::cur()),
                            m.query_fixed(t_lambda, Rotation::cur()),
                        ));
                    }
                }
                tuple
            });
        }

        meta.create_gate("sums", |m| {
            let terms = params.terms();
            let places = params.sum_places();
            // Anchored on a record's first row: the sums sit at rotations `o` and `o − R`.
            (0..terms.len())
                .filter_map(|u| {
                    let (col, o) = places[u];
                    let rot = |d: usize| Rotation(d as i32);
                    let q = m.query_fixed(q_start, Rotation::cur());
                    let later = m.query_fixed(q_start, Rotation(-(r as i32)));
                    let p_end = m.query_advice(bits[w - 1], rot(r - 1));
                    // A stratified term lands in its record's lane: `· λ` (degree 5 with
                    // `q · p_end · x²`, halo2-axiom's cap).
                    let lambda = match (lane, &terms[u]) {
                        (Some((lambda, _, s)), term) if *term != Term::Present => {
                            Some(m.query_advice(lambda, rot(s.row)))
                        }
                        _ => None,
                    };
                    let cur = m.query_advice(acc[col], Rotation(o as i32));
                    let prev = m.query_advice(acc[col], Rotation(o as i32 - r as i32));
                    let term = match &terms[u] {
                        // Carried: free in the first record, then the same in every record.
                        Term::Top(_) => return Some(q * later * (cur - prev)),
                        // Its step is what the dominance gate constrains.
                        Term::Holder(_) => return None,
                        Term::Count => p_end,
                        Term::Present => m.query_advice(data[0], rot(0)),
                        Term::Sum(s, known) => {
                            let x = m.query_advice(data[s.col], rot(s.row));
                            match known {
                                Some(b) => {
                                    let b = m.query_advice(data[b.col], rot(b.row));
                                    p_end * (x + Expression::Constant(packed_shift()) * b)
                                }
                                None => p_end * x,
                            }
                        }
                        Term::Squares(s) => {
                            let x = m.query_advice(data[s.col], rot(s.row));
                            p_end * x.clone() * x
                        }
                    };
                    let term = match lambda {
                        Some(lambda) => term * lambda,
                        None => term,
                    };
                    Some(q * (cur - later * prev - term))
                })
                .collect::<Vec<_>>()
        });

        if params.nullable() {
            meta.create_gate("missing is zero", |m| {
                // Per nullable statistic, on a record's first row: (1 − b) · x = 0.
                params
                    .stat_slots()
                    .into_iter()
                    .filter_map(|(s, known)| {
                        let b = known?;
                        let rot = |d: usize| Rotation(d as i32);
                        let q = m.query_fixed(q_start, rot(0));
                        let x = m.query_advice(data[s.col], rot(s.row));
                        let b = m.query_advice(data[b.col], rot(b.row));
                        Some(q * (one() - b) * x)
                    })
                    .collect::<Vec<_>>()
            });
        }

        if let (Some(dom), Some(([t1, t2], [h1, h2]))) = (dom, params.dominance_sums()) {
            let places = params.sum_places();
            let s = params.slot_of(params.stats[0]);
            meta.create_gate("dominance", |m| {
                // On a record's first row, reading its rows by rotation (the accumulators at
                // the rotations the sums gate reads them at).
                let q = m.query_fixed(q_start, Rotation::cur());
                let later = m.query_fixed(q_start, Rotation(-(r as i32)));
                let at = |d: usize| Rotation(d as i32);
                let p = m.query_advice(bits[w - 1], at(r - 1));
                let x = m.query_advice(data[s.col], at(s.row));
                let mut sum = |u: usize, back: usize| {
                    let (col, o) = places[u];
                    m.query_advice(acc[col], Rotation(o as i32 - back as i32))
                };
                let (m1, m2) = (sum(t1, 0), sum(t2, 0));
                // The holder bits are the running counts' steps.
                let [g, h] = [h1, h2].map(|u| sum(u, 0) - later.clone() * sum(u, r));
                let e = m.query_advice(dom, Rotation::cur());
                [
                    // g and h: each 0, or 1 on a match (p is a bit), never both on one record:
                    // with g · h = 0 one of them is 0, so (g + h)(p − g − h) = 0 says the
                    // other is 0 or p.
                    (g.clone() + h.clone()) * (p.clone() - g.clone() - h.clone()),
                    g.clone() * h.clone(),
                    // g's record holds m₁ and h's holds m₂ (one term is 0 as g · h = 0).
                    g.clone() * (m1 - x.clone()) + h * (m2.clone() - x.clone()),
                    // In range by the lookup below: every match but g's is at most m₂ (and
                    // m₂ ≤ m₁ in the results program).
                    e - p * (one() - g) * (m2 - x),
                ]
                .map(|e| q.clone() * e)
            });
            // The dominance column (e on a record's first row, 0 elsewhere) holds values of
            // the table, below 2^(widest field) (its failed block has them all): a match
            // above m₂ would make e = p − (x − m₂), far outside. One input, no tag to fold in.
            meta.lookup_any("dominance range", |m| {
                vec![(
                    m.query_advice(dom, Rotation::cur()),
                    m.query_fixed(t_val, Rotation::cur()),
                )]
            });
        }

        meta.create_gate("results", |m| {
            // Lagrange selectors on q_rec ∈ {0, record row, arith, bit step}.
            let q = m.query_fixed(q_rec, Rotation::cur());
            let kinds = [0, 1, KIND_ARITH, KIND_BIT];
            let is = |k: u64| {
                let (num, den) = kinds
                    .iter()
                    .filter(|&&o| o != k)
                    .fold((one(), Fr::ONE), |(e, d), &o| {
                        (e * (q.clone() - c(o)), d * (Fr::from(k) - Fr::from(o)))
                    });
                num * Expression::Constant(den.invert().expect("distinct kinds"))
            };
            let [a0, a1, a2, a3] = [0, 1, 2, 3].map(|i| m.query_advice(acc[0], Rotation(i)));
            let (arith, bit) = (is(KIND_ARITH), is(KIND_BIT));
            vec![
                arith * (a0.clone() - a1.clone() * a2.clone() - a3.clone()),
                bit.clone() * a1.clone() * (one() - a1.clone()),
                bit.clone() * (a2 - a0.clone() - a0 - a1),
                bit * (a3 - one()),
            ]
        });

        meta.create_gate("constant table rows", |m| {
            // Lagrange selectors on t_fix ∈ {0, 1, 2, 3} (0: not a constant row).
            let f = m.query_fixed(t_fix, Rotation::cur());
            let tm = m.query_advice(t_m, Rotation::cur());
            let v = m.query_fixed(t_val, Rotation::cur());
            let is = |k: u64| {
                [0, FIX_FAILED, FIX_PRESENT, FIX_PASS]
                    .into_iter()
                    .filter(|&o| o != k)
                    .fold(one(), |e, o| e * (f.clone() - c(o)))
            };
            vec![
                is(FIX_FAILED) * tm.clone(),
                is(FIX_PRESENT) * (tm.clone() - v),
                is(FIX_PASS) * (tm - one()),
            ]
        });

        meta.create_gate("match table", |m| {
            let q = m.query_fixed(q_tab, Rotation::cur());
            let start = m.query_fixed(q_tstart, Rotation::cur());
            let tm = m.query_advice(t_m, Rotation::cur());
            let above = (one() - start.clone()) * m.query_advice(t_m, Rotation::prev());
            let v = m.query_fixed(t_val, Rotation::cur());
            let lo_cur = m.query_advice(lo, Rotation::cur());
            let lo_prev = m.query_advice(lo, Rotation::prev());
            let hi = m.query_advice(lo, Rotation(-2));
            let cm_cur = m.query_advice(cm, Rotation::cur());
            let cm_prev = m.query_advice(cm, Rotation::prev());
            vec![
                q.clone() * tm.clone() * (one() - tm.clone()),
                // A rise only where v = lo.
                q.clone() * tm.clone() * (one() - above) * (v - lo_cur.clone()),
                q.clone() * (lo_cur.clone() - lo_prev),
                // cm starts at lo − 1 − hi (hi: two rows above the first value row).
                q * (cm_cur
                    - tm
                    - start.clone() * (lo_cur - one() - hi)
                    - (one() - start) * cm_prev),
            ]
        });
        meta.create_gate("match table end", |m| {
            // A block's last value row is three rows above the next block's first value row.
            let end = m.query_fixed(q_tstart, Rotation(3));
            vec![end * m.query_advice(cm, Rotation::cur())]
        });

        FoldConfig {
            data,
            bits,
            acc,
            t_m,
            lo,
            cm,
            q_start,
            base,
            q_rec,
            t_tag,
            t_val,
            t_fix,
            q_tab,
            q_tstart,
            lane: lane.map(|(lambda, t_lambda, _)| (lambda, t_lambda)),
            dom,
            instance,
        }
    }

    fn synthesize(&self, config: FoldConfig, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let params = &self.params;
        let a = &self.assignment;
        let (w, r) = (params.slots, params.rows_per_record());
        let table = params.table();
        let region_def = &self.region;
        let layout = params.inputs();
        let cells = layouter.assign_region(
            || "records and match table",
            |mut region| {
                let mut put = |col: Column<Advice>, vals: &[Fr]| -> Vec<Cell> {
                    vals.iter()
                        .enumerate()
                        .map(|(row, v)| region.assign_advice(col, row, Value::known(*v)).cell())
                        .collect()
                };
                for (col, vals) in config.data.iter().zip(&a.data) {
                    put(*col, vals);
                }
                for (col, vals) in config.bits.iter().zip(&a.bits) {
                    put(*col, vals);
                }
                let acc: Vec<Vec<Cell>> = config
                    .acc
                    .iter()
                    .zip(&a.acc)
                    .map(|(col, vals)| put(*col, vals))
                    .collect();
                put(config.t_m, &a.t_m);
                if let Some(dom) = config.dom {
                    put(dom, &a.dom);
                }
                let lo = put(config.lo, &a.lo);
                put(config.cm, &a.cm);
                if let (Some((lambda, t_lambda)), Some(strata)) = (config.lane, params.strata) {
                    put(lambda, &a.lambda);
                    let first = table.fields[strata.field] + 2;
                    for v in 0..strata.count {
                        region.assign_fixed(t_lambda, first + v, lane_weight(v as u64));
                    }
                }

                let mut out: Vec<(Cell, usize)> = Vec::new();
                let last = (params.shape.capacity - 1) * r;
                let (pa, po) = params.sum_at(1);
                out.push((acc[pa][last + po], layout.records()));

                // The results region: gates, constants and wiring.
                let start = params.results_start();
                for &row in &region_def.arith {
                    region.assign_fixed(config.q_rec, start + row, Fr::from(KIND_ARITH));
                }
                for &row in &region_def.bits {
                    region.assign_fixed(config.q_rec, start + row, Fr::from(KIND_BIT));
                }

                let cell = |i: usize| acc[0][start + i];
                // The table's spacers hold the bounds the results region split from the
                // public inputs.
                for (&spacer, &(l, h)) in table.fields.iter().zip(&region_def.ranges) {
                    region.constrain_equal(lo[spacer + 1], cell(l));
                    region.constrain_equal(lo[spacer], cell(h));
                }
                for &(x, y) in &region_def.copies {
                    region.constrain_equal(cell(x), cell(y));
                }
                for &(x, src) in &region_def.sources {
                    match src {
                        Source::Sum(col, o) => {
                            region.constrain_equal(cell(x), acc[col][last + o]);
                        }
                        Source::Instance(i) => out.push((cell(x), i)),
                    }
                }

                for i in 0..params.shape.capacity {
                    for o in 0..r {
                        let row = i * r + o;
                        region.assign_fixed(config.q_start, row, Fr::from((o == 0) as u64));
                        let base = if o == 0 { 0 } else { o * w + 1 };
                        region.assign_fixed(config.base, row, Fr::from(base as u64));
                        region.assign_fixed(config.q_rec, row, Fr::ONE);
                    }
                }
                for &(row, tag, v, kind) in &table.constant {
                    region.assign_fixed(config.t_tag, row, Fr::from(tag));
                    region.assign_fixed(config.t_val, row, Fr::from(v));
                    region.assign_fixed(config.t_fix, row, Fr::from(kind));
                }
                for (c, &spacer) in table.fields.iter().enumerate() {
                    region.assign_fixed(config.q_tstart, spacer + 2, Fr::ONE);
                    for v in 0..1u64 << params.shape.widths[c] {
                        let row = spacer + 2 + v as usize;
                        region.assign_fixed(config.q_tab, row, Fr::ONE);
                        region.assign_fixed(config.t_tag, row, Fr::from(c as u64 + 3));
                        region.assign_fixed(config.t_val, row, Fr::from(v));
                    }
                }
                // Marks where the last block ends (two closing spacer rows above it).
                region.assign_fixed(config.q_tstart, table.marker, Fr::ONE);
                Ok(out)
            },
        )?;
        for (cell, i) in cells {
            layouter.constrain_instance(cell, config.instance, i);
        }
        Ok(())
    }
}
