//! The universal aggregate-statistic circuit.
//!
//! One circuit per (schema, capacity). The query is *data*: its constants are public inputs,
//! so a new query needs no new keys or verifier.
//!
//! Public inputs, in order (see [`PublicInputs`]):
//!
//! | # | value |
//! |---|---|
//! | 0 | dataset commitment `Poseidon(salt, merkle_root)` |
//! | 1 .. 2V | `lo_c, hi_c` for each of the V value columns |
//! | 2V+1 | consent purpose bit |
//! | 2V+2 | statistic column (index among value columns) |
//! | 2V+3 | minimum cohort size k |
//! | 2V+4 | records present |
//! | 2V+5 .. 2V+7 | count, sum, sum of squares (0 when suppressed) |
//! | 2V+8 | suppressed (`0 < count < k`) |
//!
//! Constraints, per record slot: the slot's fields are range-checked to their declared widths
//! and recomposed into the packed element that the commitment hashes (so the witness *is* the
//! committed data); `match = present · consent[purpose] · Π_c [lo_c ≤ v_c ≤ hi_c]`; the outputs
//! are `Σ match`, `Σ match·stat`, `Σ match·stat²`, masked by suppression.

use halo2_base::{
    gates::{circuit::builder::BaseCircuitBuilder, GateChip, GateInstructions, RangeInstructions},
    halo2_proofs::halo2curves::{bn256::Fr, ff::Field},
    poseidon::hasher::{spec::OptimizedPoseidonSpec, PoseidonHasher},
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};
use itertools::Itertools;

use super::record::{self, one_hot};
use crate::{
    commitment::{RecordLayout, LEAF_ELEMENTS},
    poseidon::{RATE, R_F, R_P, T},
    query::{QueryConstants, COUNT_BITS},
    schema::Schema,
};

/// The private inputs of one proof.
#[derive(Clone, Debug)]
pub struct AggregateWitness {
    /// Commitment salt.
    pub salt: Fr,
    /// `capacity` slots, each `[present, column values...]` in schema order.
    pub slots: Vec<Vec<u64>>,
    /// The query's public constants.
    pub query: QueryConstants,
}

impl AggregateWitness {
    /// The honest witness for records under a layout.
    pub fn new(
        layout: &RecordLayout,
        salt: Fr,
        records: &[Vec<u64>],
        query: QueryConstants,
    ) -> Self {
        let width = layout.column_bits.len() + 1;
        let mut slots: Vec<Vec<u64>> = records
            .iter()
            .map(|r| std::iter::once(1).chain(r.iter().copied()).collect())
            .collect();
        slots.resize(layout.capacity, vec![0; width]);
        AggregateWitness { salt, slots, query }
    }

    /// An all-zero witness of the right shape (for key generation).
    pub fn dummy(schema: &Schema, layout: &RecordLayout) -> Self {
        let value_columns = schema.value_columns().count();
        let query = QueryConstants {
            ranges: vec![(0, 0); value_columns],
            purpose: 0,
            statistic: 0,
            min_cohort: 1,
        };
        AggregateWitness::new(layout, Fr::ZERO, &[], query)
    }
}

/// Cells of interest, returned so tests can tamper with a witness the way a cheating prover
/// would and check that the constraints catch it.
#[derive(Clone, Debug, Default)]
pub struct Probes {
    /// Per slot: the `present` bit.
    pub present: Vec<AssignedValue<Fr>>,
    /// Per slot: the selected consent bit.
    pub consent: Vec<AssignedValue<Fr>>,
    /// Per slot: the final match flag.
    pub matched: Vec<AssignedValue<Fr>>,
    /// The unmasked count before suppression.
    pub raw_count: Option<AssignedValue<Fr>>,
    /// The suppression flag.
    pub suppressed: Option<AssignedValue<Fr>>,
}

/// Decoded public inputs of the aggregate circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicInputs {
    /// Dataset commitment.
    pub commitment: Fr,
    /// Query constants.
    pub query: QueryConstants,
    /// Released results.
    pub result: crate::query::QueryResult,
}

impl PublicInputs {
    /// In circuit order.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut v = vec![self.commitment];
        v.extend(self.query.to_fields());
        v.extend(self.result.to_fields());
        v
    }

    /// Number of public inputs for a schema.
    pub fn len_for(schema: &Schema) -> usize {
        1 + QueryConstants::len_for(schema) + 5
    }
}

/// Lays out the whole circuit into `builder` (which must have `k` and lookup bits set) and
/// registers its public inputs. The layout depends only on `schema` and `layout`, never on the
/// witness values, so one key serves every dataset and query of that shape.
pub fn build(
    builder: &mut BaseCircuitBuilder<Fr>,
    schema: &Schema,
    layout: &RecordLayout,
    witness: &AggregateWitness,
) -> Probes {
    assert_eq!(
        witness.slots.len(),
        layout.capacity,
        "witness does not fit the layout"
    );
    let range = builder.range_chip();
    let gate = range.gate();
    let ctx = builder.main(0);
    let mut probes = Probes::default();

    // Query constants: public, range-checked so that comparisons against them are sound.
    let value_cols: Vec<usize> = schema.value_columns().map(|(i, _)| i).collect();
    let consent_col = schema.consent_index();
    let q = &witness.query;
    let (ranges, purpose) =
        record::load_criteria(ctx, &range, layout, schema, &q.ranges, q.purpose);
    let statistic = ctx.load_witness(Fr::from(q.statistic));
    let min_cohort = ctx.load_witness(Fr::from(q.min_cohort));
    range.range_check(ctx, min_cohort, COUNT_BITS as usize);
    let purpose_sel = one_hot(ctx, gate, purpose, layout.column_bits[consent_col] as usize);
    let stat_sel = one_hot(ctx, gate, statistic, value_cols.len());
    let criteria = record::Criteria {
        ranges,
        purpose_sel,
    };

    // Records: unpack, check, evaluate.
    let mut elements = Vec::with_capacity(layout.elements());
    let (mut presents, mut matches, mut stats) = (vec![], vec![], vec![]);
    for slots in witness.slots.chunks(layout.slots_per_element) {
        let mut terms: Vec<(AssignedValue<Fr>, Fr)> = Vec::new();
        for (j, slot) in slots.iter().enumerate() {
            let rec = record::load(
                ctx,
                &range,
                layout,
                consent_col,
                slot,
                j as u32 * layout.slot_bits,
            );
            let m = record::matches(ctx, &range, layout, schema, &rec, &criteria);
            let acc = m.matched;
            let stat = gate.inner_product(
                ctx,
                rec.values.clone(),
                stat_sel.iter().map(|s| Existing(*s)),
            );
            probes.present.push(rec.present);
            probes.consent.push(m.consent);
            probes.matched.push(acc);
            presents.push(rec.present);
            matches.push(acc);
            stats.push(stat);
            terms.extend(rec.terms);
        }
        let (cells, coeffs): (Vec<_>, Vec<_>) = terms.into_iter().unzip();
        elements.push(gate.inner_product(ctx, cells, coeffs.into_iter().map(Constant)));
    }

    // Aggregates.
    let records = gate.sum(ctx, presents);
    let count = gate.sum(ctx, matches.iter().copied());
    let matched_stats = matches
        .iter()
        .zip(&stats)
        .map(|(m, s)| gate.mul(ctx, *m, *s))
        .collect_vec();
    let sum = gate.sum(ctx, matched_stats.iter().copied());
    let sum_squares = gate.inner_product(ctx, matched_stats, stats.into_iter().map(Existing));
    let small = range.is_less_than(ctx, count, min_cohort, COUNT_BITS as usize);
    let empty = gate.is_zero(ctx, count);
    let suppressed = gate.mul_not(ctx, empty, small);
    let [count_out, sum_out, sum_squares_out] =
        [count, sum, sum_squares].map(|x| gate.mul_not(ctx, suppressed, x));
    probes.raw_count = Some(count);
    probes.suppressed = Some(suppressed);

    // Commitment.
    let salt = ctx.load_witness(witness.salt);
    let commitment = commit(ctx, gate, &elements, salt);

    let mut public = vec![commitment];
    for (lo, hi) in criteria.ranges {
        public.extend([lo, hi]);
    }
    public.extend([
        purpose,
        statistic,
        min_cohort,
        records,
        count_out,
        sum_out,
        sum_squares_out,
        suppressed,
    ]);
    builder.assigned_instances[0].extend(public);
    probes
}

/// Merkle root over leaves of `LEAF_ELEMENTS` packed elements, then `Poseidon(salt, root)`;
/// mirrors [`crate::commitment::commit`].
fn commit(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    elements: &[AssignedValue<Fr>],
    salt: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let mut hasher =
        PoseidonHasher::<Fr, T, RATE>::new(OptimizedPoseidonSpec::new::<R_F, R_P, 0>());
    hasher.initialize_consts(ctx, gate);
    let mut level: Vec<AssignedValue<Fr>> = elements
        .chunks(LEAF_ELEMENTS)
        .map(|leaf| hasher.hash_fix_len_array(ctx, gate, leaf))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let right = pair.get(1).copied().unwrap_or_else(|| ctx.load_zero());
                hasher.hash_fix_len_array(ctx, gate, &[pair[0], right])
            })
            .collect();
    }
    hasher.hash_fix_len_array(ctx, gate, &[salt, level[0]])
}
