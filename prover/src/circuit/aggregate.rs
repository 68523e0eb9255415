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
//! | 2V+4 | claim context ([`crate::query::ClaimBinding::context`], 0 if unbound) |
//! | 2V+5 | records present |
//! | 2V+6 .. 2V+8 | count, sum, sum of squares (0 when suppressed) |
//! | 2V+9 | suppressed (`0 < count < k`) |
//!
//! The context is in no constraint: the prover and the generated verifier absorb every public
//! input into the transcript, so a proof verifies under exactly the context it was made for.
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
    commitment::{fr_to_biguint, RecordLayout, LEAF_ELEMENTS},
    error::ProofError,
    poseidon::{RATE, R_F, R_P, T},
    query::{QueryConstants, QueryResult, COUNT_BITS},
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
    /// The claim context (public; [`crate::query::ClaimBinding::context`]).
    pub context: Fr,
}

impl AggregateWitness {
    /// The honest witness for records under a layout.
    pub fn new(
        layout: &RecordLayout,
        salt: Fr,
        records: &[Vec<u64>],
        query: QueryConstants,
        context: Fr,
    ) -> Self {
        let width = layout.column_bits.len() + 1;
        let mut slots: Vec<Vec<u64>> = records
            .iter()
            .map(|r| std::iter::once(1).chain(r.iter().copied()).collect())
            .collect();
        slots.resize(layout.capacity, vec![0; width]);
        AggregateWitness {
            salt,
            slots,
            query,
            context,
        }
    }

    /// An all-zero witness of the right shape (for key generation).
    pub fn dummy(schema: &Schema, layout: &RecordLayout) -> Self {
        let value_columns = schema.value_columns().count();
        let query = QueryConstants {
            ranges: vec![(0, 0); value_columns],
            purpose: 0,
            statistic: 0,
            min_cohort: 1,
            threshold: None,
        };
        AggregateWitness::new(layout, Fr::ZERO, &[], query, Fr::ZERO)
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

/// Decoded public inputs of the aggregate circuit: the one definition of their layout (the
/// table in the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicInputs {
    /// Dataset commitment.
    pub commitment: Fr,
    /// Query constants.
    pub query: QueryConstants,
    /// Claim context (0 if unbound).
    pub context: Fr,
    /// Released results.
    pub result: QueryResult,
}

impl PublicInputs {
    /// In circuit order.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut v = vec![self.commitment];
        v.extend(self.query.to_fields());
        v.push(self.context);
        v.extend(self.result.to_fields());
        v
    }

    /// Reads public inputs in circuit order, each word in its range.
    pub fn from_fields(schema: &Schema, x: &[Fr]) -> Result<Self, ProofError> {
        let expected = Self::len_for(schema);
        if x.len() != expected {
            return Err(ProofError::Artifact(format!(
                "{} public inputs, expected {expected}",
                x.len()
            )));
        }
        let small = |f: &Fr| -> Result<u64, ProofError> {
            u64::try_from(fr_to_biguint(f))
                .map_err(|_| ProofError::Artifact("public input exceeds 64 bits".into()))
        };
        let v = schema.value_columns().count();
        let at = InputIndex {
            constants: QueryConstants::len_for(schema),
        };
        let c = at.constants().start;
        let ranges = (0..v)
            .map(|i| Ok((small(&x[c + 2 * i])?, small(&x[c + 2 * i + 1])?)))
            .collect::<Result<_, ProofError>>()?;
        let o = c + 2 * v;
        let sums = at.sums().start;
        Ok(PublicInputs {
            commitment: x[InputIndex::COMMITMENT],
            query: QueryConstants {
                ranges,
                purpose: small(&x[o])?,
                statistic: small(&x[o + 1])?,
                min_cohort: small(&x[o + 2])?,
                threshold: None,
            },
            context: x[at.context()],
            result: QueryResult {
                records: small(&x[at.records()])?,
                count: small(&x[sums])?,
                sum: fr_to_biguint(&x[sums + 1]),
                sum_squares: fr_to_biguint(&x[sums + 2]),
                suppressed: small(&x[at.suppressed()])? == 1,
            },
        })
    }

    /// Number of public inputs for a schema: the commitment, the query constants, the context
    /// and five results.
    pub fn len_for(schema: &Schema) -> usize {
        InputIndex {
            constants: QueryConstants::len_for(schema),
        }
        .len()
    }
}

/// Where each public input sits, for a query of `constants` words: what readers of raw inputs
/// (calldata, the audit) index with, so that the layout has this one definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputIndex {
    /// Number of query constants.
    pub constants: usize,
}

impl InputIndex {
    /// The dataset commitment.
    pub const COMMITMENT: usize = 0;

    /// The query constants.
    pub fn constants(&self) -> std::ops::Range<usize> {
        1..1 + self.constants
    }

    /// The claim context.
    pub fn context(&self) -> usize {
        1 + self.constants
    }

    /// Records present.
    pub fn records(&self) -> usize {
        self.context() + 1
    }

    /// Count, sum and sum of squares.
    pub fn sums(&self) -> std::ops::Range<usize> {
        self.records() + 1..self.records() + 4
    }

    /// The suppression flag.
    pub fn suppressed(&self) -> usize {
        self.records() + 4
    }

    /// Number of public inputs.
    pub fn len(&self) -> usize {
        self.suppressed() + 1
    }

    /// Never empty (for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
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
    let context = ctx.load_witness(witness.context);
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
        context,
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
