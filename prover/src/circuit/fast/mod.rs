//! **Spike (issue #8, design B): commit-and-prove aggregate circuit.** Not wired into the CLI,
//! the markets or any artifact; its API is unstable. Three variants share the shape, query,
//! results, public inputs and proving helpers: [`FastCircuit`] (B1, below: comparisons per
//! record), [`table::TableCircuit`] (B′: comparisons once per value in a per-proof match
//! table, one lookup per record and field) and [`fold::FoldCircuit`] (N(W): records over rows
//! of `W` data columns, the match folded into one lookup per column; the one that deploys). Cost models and measurements: docs/circuits.md
//! ("Fast circuits (issue #8)") and docs/benchmarks.md ("Fast-circuit spike").
//!
//! A raw halo2-axiom [`Circuit`] with no hashing: the dataset commitment is the KZG commitment
//! of the *data columns* (`present` and one column per field, one record per row), which are
//! the first advice columns and therefore the first `64 · (1 + fields)` bytes of every proof
//! (SHPLONK + EVM transcript). With the same records, salt-derived masking rows and blinding
//! rows drawn from a salt-seeded rng ([`SeededRng`]), those bytes are identical in every proof,
//! whatever the query: a market compares them with the registered commitment.
//!
//! Per record row `r < capacity` (fixed selector `q_rec`), for every field `c` with value `v`
//! and the query's public range `[lo_c, hi_c]` (broadcast down advice columns, copied from the
//! instance at row 0 and kept equal row to row by a gate):
//!
//! * witnessed booleans `below_c`, `above_c`, and two lookups into a fixed table
//!   `[0, 2^range_bits)`: `below ? lo − 1 − v : v − lo` and `above ? v − hi − 1 : hi − v`.
//!   Both branches of one lookup cannot hold at once (their sum is `−1`), so the bits are a
//!   function of `(v, lo, hi)`: the prover has no choice;
//! * `S = (1 − present) + Σ_c (below_c + above_c)`, `m · S = 0`, `S · inv = 1 − m`: so
//!   `m = [S = 0]` = present and every field within its range;
//! * running sums `count += m`, `sum += m · s`, `sumsq += m · s²` (`s` the statistic field),
//!   whose values at row `capacity − 1` are copied to the instance.
//!
//! Rows outside the record region have `q_rec = 0`: no gate counts them. The lookups are not
//! gated (a gated input would be degree 3 and the lookup degree 6); there the prover sets
//! `lo = hi = v` and the bits to zero, which is why `lo`, `hi` are free outside the records.
//!
//! Public inputs, in order: `lo_0, hi_0, …, lo_{C−1}, hi_{C−1}, count, sum, sumsq`.
//! The caller (contract) must require every bound `< 2^range_bits`. Field values are taken as
//! committed: whatever a value, at most one branch of each lookup holds, so the result is a
//! function of the committed data, never the prover's choice (a value `≥ 2^range_bits` is
//! classified by its field-element differences, or makes the proof impossible).

use halo2_base::halo2_proofs::{
    circuit::{Layouter, SimpleFloorPlanner, Value},
    halo2curves::{
        bn256::{Bn256, Fr, G1Affine},
        ff::Field,
    },
    plonk::{
        create_proof, keygen_pk, keygen_vk, verify_proof, Advice, Circuit, Column,
        ConstraintSystem, Error, Expression, Fixed, Instance, ProvingKey, TableColumn,
        VerifyingKey,
    },
    poly::{
        commitment::{Params, ParamsProver},
        kzg::{
            commitment::{KZGCommitmentScheme, ParamsKZG},
            multiopen::{ProverSHPLONK, VerifierSHPLONK},
            strategy::SingleStrategy,
        },
        Rotation,
    },
    transcript::{TranscriptReadBuffer, TranscriptWriterBuffer},
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snark_verifier_sdk::snark_verifier::system::halo2::transcript::evm::EvmTranscript;

pub mod fold;
mod fold_results;
#[cfg(test)]
mod fold_tests;
pub mod table;
#[cfg(test)]
mod tests;

/// The circuit's shape: everything that fixes its keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FastShape {
    /// Declared bit width of each field (each at most `range_bits`).
    pub widths: Vec<u32>,
    /// Index of the statistic field.
    pub stat: usize,
    /// The lookup table is `[0, 2^range_bits)`; it must fit below the usable rows.
    pub range_bits: u32,
    /// Record rows.
    pub capacity: usize,
    /// Salt-derived random rows after the records in every data column (the hiding budget).
    pub mask_rows: usize,
}

impl FastShape {
    /// Number of fields per record.
    pub fn fields(&self) -> usize {
        self.widths.len()
    }

    /// Data columns: `present` then one per field.
    pub fn data_columns(&self) -> usize {
        1 + self.fields()
    }

    /// Number of public inputs.
    pub fn num_instances(&self) -> usize {
        2 * self.fields() + 3
    }

    /// Rows the records, the masking rows and the table need (before halo2's blinding rows).
    pub fn rows_needed(&self) -> usize {
        (self.capacity + self.mask_rows).max(1 << self.range_bits)
    }

    /// The smallest `k` that fits, given `blinding` unusable rows (halo2 reserves
    /// `blinding_factors + 1`; 6 for this circuit).
    pub fn min_k(&self, blinding: usize) -> u32 {
        let rows = self.rows_needed() + blinding;
        (usize::BITS - (rows - 1).leading_zeros()).max(4)
    }
}

/// Rows halo2 leaves unusable at the bottom of every column for this circuit
/// (`blinding_factors + 1`; checked by a test).
pub const UNUSABLE_ROWS: usize = 6;

/// A query: an inclusive range per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastQuery {
    /// `(lo, hi)` per field.
    pub ranges: Vec<(u64, u64)>,
}

/// Released results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastResult {
    /// Matching present records.
    pub count: u64,
    /// Sum of the statistic over them.
    pub sum: u64,
    /// Sum of its squares.
    pub sum_squares: u64,
}

/// The plain computation the circuit must agree with.
pub fn evaluate(shape: &FastShape, records: &[Vec<u64>], query: &FastQuery) -> FastResult {
    let mut out = FastResult {
        count: 0,
        sum: 0,
        sum_squares: 0,
    };
    for r in records {
        if r.iter()
            .zip(&query.ranges)
            .all(|(v, (lo, hi))| lo <= v && v <= hi)
        {
            let s = r[shape.stat];
            out.count += 1;
            out.sum += s;
            out.sum_squares += s * s;
        }
    }
    out
}

/// Public inputs in circuit order.
pub fn instances(query: &FastQuery, result: &FastResult) -> Vec<Fr> {
    let mut v = Vec::with_capacity(2 * query.ranges.len() + 3);
    for (lo, hi) in &query.ranges {
        v.extend([Fr::from(*lo), Fr::from(*hi)]);
    }
    v.extend([result.count, result.sum, result.sum_squares].map(Fr::from));
    v
}

/// Column values of one proof's witness, in the order they are assigned. Public so that
/// tests can tamper with a witness the way a cheating prover would.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// Data columns (`present`, then fields), `rows` values each.
    pub data: Vec<Vec<Fr>>,
    /// Broadcast lower bounds, per field.
    pub lo: Vec<Vec<Fr>>,
    /// Broadcast upper bounds, per field.
    pub hi: Vec<Vec<Fr>>,
    /// `below_c` bits, per field.
    pub below: Vec<Vec<Fr>>,
    /// `above_c` bits, per field.
    pub above: Vec<Vec<Fr>>,
    /// Match bit.
    pub matched: Vec<Fr>,
    /// Inverse of `S` (0 when `S = 0`).
    pub inv: Vec<Fr>,
    /// Running count, sum and sum of squares.
    pub sums: [Vec<Fr>; 3],
}

/// The circuit: a shape, a witness assignment, and (tests only) a record row whose selector
/// the prover leaves off.
#[derive(Clone, Debug)]
pub struct FastCircuit {
    /// Shape (fixes the keys).
    pub shape: FastShape,
    /// Witness.
    pub assignment: Assignment,
    /// Tests: leave `q_rec` off at this row (a cheating synthesizer; keys come from honest
    /// synthesis, so a real proof must fail).
    pub selector_off: Option<usize>,
}

/// Derives the salt-dependent masking values and blinding rng seed.
pub(crate) fn salt_rng(salt: &[u8; 32], domain: u8) -> ChaCha20Rng {
    let mut seed = *salt;
    seed[0] ^= domain;
    ChaCha20Rng::from_seed(seed)
}

impl FastCircuit {
    /// The honest witness for `records` (at most `capacity`, each with `fields` values) under
    /// `query`, with masking rows derived from `salt`. `rows` is the usable row count
    /// (`2^k − UNUSABLE_ROWS`).
    pub fn new(
        shape: &FastShape,
        rows: usize,
        salt: &[u8; 32],
        records: &[Vec<u64>],
        query: &FastQuery,
    ) -> Self {
        let f = shape.fields();
        assert!(
            records.len() <= shape.capacity,
            "more records than capacity"
        );
        assert!(shape.capacity + shape.mask_rows <= rows, "k too small");
        assert_eq!(query.ranges.len(), f, "one range per field");
        let zeros = || vec![Fr::ZERO; rows];
        let mut a = Assignment {
            data: (0..=f).map(|_| zeros()).collect(),
            lo: (0..f).map(|_| zeros()).collect(),
            hi: (0..f).map(|_| zeros()).collect(),
            below: (0..f).map(|_| zeros()).collect(),
            above: (0..f).map(|_| zeros()).collect(),
            matched: zeros(),
            inv: zeros(),
            sums: [zeros(), zeros(), zeros()],
        };
        let (mut count, mut sum, mut sq) = (Fr::ZERO, Fr::ZERO, Fr::ZERO);
        for row in 0..shape.capacity {
            let rec = records.get(row);
            let present = rec.is_some();
            a.data[0][row] = Fr::from(present as u64);
            let mut fails = u64::from(!present);
            for c in 0..f {
                let v = rec.map_or(0, |r| r[c]);
                let (lo, hi) = query.ranges[c];
                a.data[c + 1][row] = Fr::from(v);
                a.lo[c][row] = Fr::from(lo);
                a.hi[c][row] = Fr::from(hi);
                a.below[c][row] = Fr::from((v < lo) as u64);
                a.above[c][row] = Fr::from((v > hi) as u64);
                fails += (v < lo) as u64 + (v > hi) as u64;
            }
            let m = fails == 0;
            a.matched[row] = Fr::from(m as u64);
            a.inv[row] = Fr::from(fails).invert().unwrap_or(Fr::ZERO);
            if m {
                let s = a.data[shape.stat + 1][row];
                count += Fr::ONE;
                sum += s;
                sq += s * s;
            }
            a.sums[0][row] = count;
            a.sums[1][row] = sum;
            a.sums[2][row] = sq;
        }
        // Masking rows: salt-derived, identical in every proof over this dataset.
        let mut mask = salt_rng(salt, 1);
        for row in shape.capacity..shape.capacity + shape.mask_rows {
            for col in a.data.iter_mut() {
                col[row] = Fr::random(&mut mask);
            }
        }
        // Outside the records the lookups still apply: lo = hi = v, bits zero.
        for row in shape.capacity..rows {
            for c in 0..f {
                a.lo[c][row] = a.data[c + 1][row];
                a.hi[c][row] = a.data[c + 1][row];
            }
        }
        FastCircuit {
            shape: shape.clone(),
            assignment: a,
            selector_off: None,
        }
    }

    /// An all-padding witness with an all-zero query (for key generation).
    pub fn dummy(shape: &FastShape, rows: usize) -> Self {
        let query = FastQuery {
            ranges: vec![(0, 0); shape.fields()],
        };
        FastCircuit::new(shape, rows, &[0; 32], &[], &query)
    }
}

/// Columns and table of the circuit.
#[derive(Clone, Debug)]
pub struct FastConfig {
    data: Vec<Column<Advice>>,
    lo: Vec<Column<Advice>>,
    hi: Vec<Column<Advice>>,
    below: Vec<Column<Advice>>,
    above: Vec<Column<Advice>>,
    matched: Column<Advice>,
    inv: Column<Advice>,
    sums: [Column<Advice>; 3],
    q_rec: Column<Fixed>,
    q_first: Column<Fixed>,
    table: TableColumn,
    instance: Column<Instance>,
}

impl Circuit<Fr> for FastCircuit {
    type Config = FastConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = FastShape;

    fn without_witnesses(&self) -> Self {
        self.clone()
    }

    fn params(&self) -> FastShape {
        self.shape.clone()
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> FastConfig {
        unreachable!("configured with params")
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, shape: FastShape) -> FastConfig {
        let f = shape.fields();
        // Data columns first: they are the first commitments in the proof.
        let data: Vec<_> = (0..=f).map(|_| meta.advice_column()).collect();
        let lo: Vec<_> = (0..f).map(|_| meta.advice_column()).collect();
        let hi: Vec<_> = (0..f).map(|_| meta.advice_column()).collect();
        let below: Vec<_> = (0..f).map(|_| meta.advice_column()).collect();
        let above: Vec<_> = (0..f).map(|_| meta.advice_column()).collect();
        let matched = meta.advice_column();
        let inv = meta.advice_column();
        let sums = [(); 3].map(|_| meta.advice_column());
        let q_rec = meta.fixed_column();
        let q_first = meta.fixed_column();
        let table = meta.lookup_table_column();
        let instance = meta.instance_column();
        for col in lo.iter().chain(&hi).chain(&sums) {
            meta.enable_equality(*col);
        }
        meta.enable_equality(instance);

        meta.create_gate("record", |m| {
            let q = m.query_fixed(q_rec, Rotation::cur());
            let first = m.query_fixed(q_first, Rotation::cur());
            let one = Expression::Constant(Fr::ONE);
            let present = m.query_advice(data[0], Rotation::cur());
            let mt = m.query_advice(matched, Rotation::cur());
            let inv = m.query_advice(inv, Rotation::cur());
            let mut out = vec![q.clone() * present.clone() * (one.clone() - present.clone())];
            let mut s = one.clone() - present;
            for c in 0..f {
                let b = m.query_advice(below[c], Rotation::cur());
                let a = m.query_advice(above[c], Rotation::cur());
                out.push(q.clone() * b.clone() * (one.clone() - b.clone()));
                out.push(q.clone() * a.clone() * (one.clone() - a.clone()));
                s = s + b + a;
                // Broadcast: the bounds equal the previous row's inside the records.
                for col in [lo[c], hi[c]] {
                    let cur = m.query_advice(col, Rotation::cur());
                    let prev = m.query_advice(col, Rotation::prev());
                    out.push((q.clone() - first.clone()) * (cur - prev));
                }
            }
            out.push(q.clone() * mt.clone() * s.clone());
            out.push(q.clone() * (s * inv - (one.clone() - mt.clone())));
            let stat = m.query_advice(data[shape.stat + 1], Rotation::cur());
            let terms = [
                mt.clone(),
                mt.clone() * stat.clone(),
                mt * stat.clone() * stat,
            ];
            for (col, term) in sums.iter().zip(terms) {
                let cur = m.query_advice(*col, Rotation::cur());
                let prev = m.query_advice(*col, Rotation::prev());
                out.push(q.clone() * (cur - (one.clone() - first.clone()) * prev - term));
            }
            out
        });

        for c in 0..f {
            meta.lookup("below", |m| {
                let v = m.query_advice(data[c + 1], Rotation::cur());
                let lo = m.query_advice(lo[c], Rotation::cur());
                let b = m.query_advice(below[c], Rotation::cur());
                let one = Expression::Constant(Fr::ONE);
                let diff =
                    b.clone() * (lo.clone() - one.clone() - v.clone()) + (one - b) * (v - lo);
                vec![(diff, table)]
            });
            meta.lookup("above", |m| {
                let v = m.query_advice(data[c + 1], Rotation::cur());
                let hi = m.query_advice(hi[c], Rotation::cur());
                let a = m.query_advice(above[c], Rotation::cur());
                let one = Expression::Constant(Fr::ONE);
                let diff =
                    a.clone() * (v.clone() - hi.clone() - one.clone()) + (one - a) * (hi - v);
                vec![(diff, table)]
            });
        }

        FastConfig {
            data,
            lo,
            hi,
            below,
            above,
            matched,
            inv,
            sums,
            q_rec,
            q_first,
            table,
            instance,
        }
    }

    fn synthesize(&self, config: FastConfig, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let shape = &self.shape;
        let a = &self.assignment;
        layouter.assign_table(
            || "range",
            |mut t| {
                for i in 0..1usize << shape.range_bits {
                    t.assign_cell(
                        || "range",
                        config.table,
                        i,
                        || Value::known(Fr::from(i as u64)),
                    )?;
                }
                Ok(())
            },
        )?;
        let cells = layouter.assign_region(
            || "records",
            |mut region| {
                let rows = a.matched.len();
                let put = |region: &mut halo2_base::halo2_proofs::circuit::Region<'_, Fr>,
                           col: Column<Advice>,
                           vals: &[Fr]| {
                    vals.iter()
                        .enumerate()
                        .map(|(row, v)| region.assign_advice(col, row, Value::known(*v)).cell())
                        .collect::<Vec<_>>()
                };
                // Data columns first (the assignment order does not change commitments, but
                // keeps the code in column order).
                for (col, vals) in config.data.iter().zip(&a.data) {
                    put(&mut region, *col, vals);
                }
                let mut bounds = Vec::new();
                for c in 0..shape.fields() {
                    let lo = put(&mut region, config.lo[c], &a.lo[c]);
                    let hi = put(&mut region, config.hi[c], &a.hi[c]);
                    bounds.extend([lo[0], hi[0]]);
                    put(&mut region, config.below[c], &a.below[c]);
                    put(&mut region, config.above[c], &a.above[c]);
                }
                put(&mut region, config.matched, &a.matched);
                put(&mut region, config.inv, &a.inv);
                let last = shape.capacity - 1;
                let mut results = Vec::new();
                for (col, vals) in config.sums.iter().zip(&a.sums) {
                    results.push(put(&mut region, *col, vals)[last]);
                }
                for row in 0..rows {
                    let on = row < shape.capacity && self.selector_off != Some(row);
                    region.assign_fixed(config.q_rec, row, Fr::from(on as u64));
                    region.assign_fixed(config.q_first, row, Fr::from((row == 0) as u64));
                }
                Ok(bounds.into_iter().chain(results).collect::<Vec<_>>())
            },
        )?;
        for (i, cell) in cells.into_iter().enumerate() {
            layouter.constrain_instance(cell, config.instance, i);
        }
        Ok(())
    }
}

/// Reads the first `words` `u64`s from a seed (a dataset secret), then from `rest`. halo2-axiom
/// 0.5.3 draws the blinding rows of the first-phase advice columns first, in column order,
/// `blinding_factors + 1` field elements per column and 8 words per element; so with
/// `words = 8 · UNUSABLE_ROWS · data_columns` the data columns commit to the same point in
/// every proof while everything else stays fresh.
pub struct SeededRng<R> {
    seeded: ChaCha20Rng,
    words: usize,
    rest: R,
}

impl<R: RngCore> SeededRng<R> {
    /// The rng for proofs over a dataset with `data_columns` data columns.
    pub fn new(salt: &[u8; 32], data_columns: usize, rest: R) -> Self {
        Self::with_unusable(salt, data_columns, UNUSABLE_ROWS, rest)
    }

    /// The same for a circuit with `unusable` rows per column (`blinding_factors + 1`).
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

/// Usable rows at `k`.
pub fn usable_rows(k: u32) -> usize {
    (1usize << k) - UNUSABLE_ROWS
}

/// Proving key for a shape at `k` (verifying key inside).
pub fn keygen(params: &ParamsKZG<Bn256>, shape: &FastShape) -> Result<ProvingKey<G1Affine>, Error> {
    keygen_circuit(params, &FastCircuit::dummy(shape, usable_rows(params.k())))
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
