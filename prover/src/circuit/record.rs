//! The record chip: loads one record slot (range-checked fields that recompose into its packed
//! form) and evaluates inclusion criteria on it. Shared by the aggregate and eligibility
//! circuits, so "what a record is" and "what matching means" are constrained in one place.

use halo2_base::{
    gates::{GateChip, GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::halo2curves::{bn256::Fr, ff::Field},
    AssignedValue, Context,
    QuantumCell::Existing,
};

use crate::{commitment::RecordLayout, schema::Schema};

/// One loaded record slot.
#[derive(Clone, Debug)]
pub struct RecordCells {
    /// The `present` bit (boolean-constrained).
    pub present: AssignedValue<Fr>,
    /// Value columns (every column but consent), range-checked to their declared widths.
    pub values: Vec<AssignedValue<Fr>>,
    /// The consent mask, bit by bit (boolean-constrained).
    pub consent_bits: Vec<AssignedValue<Fr>>,
    /// `(cell, 2^offset)` terms whose sum is the slot's share of its packed element.
    pub terms: Vec<(AssignedValue<Fr>, Fr)>,
}

/// `(lo, hi)` cells of one value column.
pub type RangeCells = (AssignedValue<Fr>, AssignedValue<Fr>);

/// Loaded, range-checked inclusion criteria.
#[derive(Clone, Debug)]
pub struct Criteria {
    /// `(lo, hi)` per value column.
    pub ranges: Vec<RangeCells>,
    /// One-hot selector of the consent purpose bit.
    pub purpose_sel: Vec<AssignedValue<Fr>>,
}

/// The outcome of [`matches`].
#[derive(Clone, Copy, Debug)]
pub struct Match {
    /// The consent bit selected by the purpose.
    pub consent: AssignedValue<Fr>,
    /// `present · consent · Π_c [lo_c ≤ v_c ≤ hi_c]`.
    pub matched: AssignedValue<Fr>,
}

/// Loads `[lo_c, hi_c]` per value column and the purpose, range-checking each bound to its
/// column's width (so the comparisons in [`matches`] are sound). Returns the ranges and the
/// purpose cell (constrain it with [`one_hot`]).
pub fn load_criteria(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    layout: &RecordLayout,
    schema: &Schema,
    ranges: &[(u64, u64)],
    purpose: u64,
) -> (Vec<RangeCells>, AssignedValue<Fr>) {
    let mut out = Vec::with_capacity(ranges.len());
    for ((c, _), &(lo, hi)) in schema.value_columns().zip(ranges) {
        let bits = layout.column_bits[c] as usize;
        let [lo, hi] = [lo, hi].map(|x| ctx.load_witness(Fr::from(x)));
        range.range_check(ctx, lo, bits);
        range.range_check(ctx, hi, bits);
        out.push((lo, hi));
    }
    (out, ctx.load_witness(Fr::from(purpose)))
}

/// Loads slot `[present, column values...]` whose bits start at `base` inside its packed
/// element: booleans for `present` and the consent mask, range checks for the other columns.
pub fn load(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    layout: &RecordLayout,
    consent_col: usize,
    slot: &[u64],
    base: u32,
) -> RecordCells {
    let gate = range.gate();
    let present = ctx.load_witness(Fr::from(slot[0]));
    gate.assert_bit(ctx, present);
    let mut terms = vec![(present, pow2(base))];
    let mut values = Vec::with_capacity(layout.column_bits.len());
    let mut consent_bits = Vec::new();
    for (c, &bits) in layout.column_bits.iter().enumerate() {
        let offset = base + layout.column_offset(c);
        let raw = slot[c + 1];
        if c == consent_col {
            // The consent mask enters bit by bit: booleans are its range check.
            for b in 0..bits {
                let bit = ctx.load_witness(Fr::from(raw >> b & 1));
                gate.assert_bit(ctx, bit);
                terms.push((bit, pow2(offset + b)));
                consent_bits.push(bit);
            }
        } else {
            let v = ctx.load_witness(Fr::from(raw));
            range.range_check(ctx, v, bits as usize);
            terms.push((v, pow2(offset)));
            values.push(v);
        }
    }
    RecordCells {
        present,
        values,
        consent_bits,
        terms,
    }
}

/// Whether a loaded record is present, consents to the purpose and meets every range.
pub fn matches(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    layout: &RecordLayout,
    schema: &Schema,
    rec: &RecordCells,
    criteria: &Criteria,
) -> Match {
    let gate = range.gate();
    let consent = gate.inner_product(
        ctx,
        rec.consent_bits.clone(),
        criteria.purpose_sel.iter().map(|s| Existing(*s)),
    );
    let mut acc = gate.mul(ctx, rec.present, consent);
    for (((c, _), v), (lo, hi)) in schema
        .value_columns()
        .zip(&rec.values)
        .zip(&criteria.ranges)
    {
        let bits = layout.column_bits[c] as usize;
        let below = range.is_less_than(ctx, *v, *lo, bits);
        acc = gate.mul_not(ctx, below, acc);
        let above = range.is_less_than(ctx, *hi, *v, bits);
        acc = gate.mul_not(ctx, above, acc);
    }
    Match {
        consent,
        matched: acc,
    }
}

/// `[idx == 0, ..., idx == n-1]`, constrained to contain exactly one 1 (so `idx < n`).
pub fn one_hot(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    idx: AssignedValue<Fr>,
    n: usize,
) -> Vec<AssignedValue<Fr>> {
    let sel = gate.idx_to_indicator(ctx, idx, n);
    let total = gate.sum(ctx, sel.iter().copied());
    gate.assert_is_const(ctx, &total, &Fr::from(1));
    sel
}

/// `2^bits` as a field element.
pub fn pow2(bits: u32) -> Fr {
    Fr::from(2).pow_vartime([bits as u64])
}
