//! **Spike (issue #8, design B′): commit-and-prove with a per-proof match table.** Same data
//! columns, public inputs and results as [`super::FastCircuit`]; the comparisons move from
//! the records to a table.
//!
//! A table region (fixed columns `t_tag`, `t_val`; rows `Σ_c 2^{w_c}`) lists every value `v`
//! of every field `c` once; an advice column `t_m` holds `[lo_c ≤ v ≤ hi_c]`, constrained on
//! each table row exactly as B1 constrains a record field (booleans `t_b`, `t_a`, two lookups
//! on differences into `[0, 2^range_bits)`, `t_m = (1 − t_b)(1 − t_a)`; the bounds broadcast
//! down each block and copied from the instance at its first row). Each record row then does
//! one lookup per field, `q_rec · (c + 1, v_c, m_c) ∈ (t_tag, t_val, t_m)`, which also checks
//! `v_c < 2^{w_c}`; `m = [S = 0]` with `S = (1 − present) + Σ_c (1 − m_c)`, and the running
//! sums are B1's. Per record: `F + 1` data, `F` match bits, 5 more advice cells and `F`
//! lookups (B1: `5F + 6` advice cells and `2F` lookups).

use halo2_base::halo2_proofs::{
    circuit::{Layouter, SimpleFloorPlanner, Value},
    halo2curves::{bn256::Fr, ff::Field},
    plonk::{
        Advice, Circuit, Column, ConstraintSystem, Error, Expression, Fixed, Instance, TableColumn,
    },
    poly::Rotation,
};

use super::{salt_rng, FastQuery, FastShape};

/// Table rows a shape needs: one per value of every field.
pub fn table_rows(shape: &FastShape) -> usize {
    shape.widths.iter().map(|w| 1usize << w).sum()
}

/// The smallest `k` for a shape (with [`super::UNUSABLE_ROWS`] blinding rows).
pub fn min_k(shape: &FastShape) -> u32 {
    let rows = (shape.capacity + shape.mask_rows)
        .max(table_rows(shape))
        .max(1 << shape.range_bits)
        + super::UNUSABLE_ROWS;
    (usize::BITS - (rows - 1).leading_zeros()).max(4)
}

/// Column values of one proof's witness (public so tests can tamper with them).
#[derive(Clone, Debug)]
pub struct TableAssignment {
    /// Data columns (`present`, then fields).
    pub data: Vec<Vec<Fr>>,
    /// Per field: the record's match bit `m_c`.
    pub field_match: Vec<Vec<Fr>>,
    /// Record match bit.
    pub matched: Vec<Fr>,
    /// Inverse of `S` (0 when `S = 0`).
    pub inv: Vec<Fr>,
    /// Running count, sum and sum of squares.
    pub sums: [Vec<Fr>; 3],
    /// Table side: match, bounds, below and above bits.
    pub t_m: Vec<Fr>,
    /// Table side: lower bound of the row's field.
    pub t_lo: Vec<Fr>,
    /// Table side: upper bound of the row's field.
    pub t_hi: Vec<Fr>,
    /// Table side: `t_val < lo`.
    pub t_b: Vec<Fr>,
    /// Table side: `t_val > hi`.
    pub t_a: Vec<Fr>,
}

/// The B′ circuit.
#[derive(Clone, Debug)]
pub struct TableCircuit {
    /// Shape (fixes the keys).
    pub shape: FastShape,
    /// Witness.
    pub assignment: TableAssignment,
}

/// `(first row, field)` of each table block.
fn blocks(shape: &FastShape) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut row = 0;
    for w in &shape.widths {
        starts.push(row);
        row += 1usize << w;
    }
    starts
}

impl TableCircuit {
    /// The honest witness (see [`super::FastCircuit::new`]).
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
        assert!(
            (shape.capacity + shape.mask_rows).max(table_rows(shape)) <= rows,
            "k too small"
        );
        assert_eq!(query.ranges.len(), f, "one range per field");
        let zeros = || vec![Fr::ZERO; rows];
        let mut a = TableAssignment {
            data: (0..=f).map(|_| zeros()).collect(),
            field_match: (0..f).map(|_| zeros()).collect(),
            matched: zeros(),
            inv: zeros(),
            sums: [zeros(), zeros(), zeros()],
            t_m: zeros(),
            t_lo: zeros(),
            t_hi: zeros(),
            t_b: zeros(),
            t_a: zeros(),
        };
        for (c, start) in blocks(shape).into_iter().enumerate() {
            let (lo, hi) = query.ranges[c];
            for v in 0..1u64 << shape.widths[c] {
                let row = start + v as usize;
                a.t_lo[row] = Fr::from(lo);
                a.t_hi[row] = Fr::from(hi);
                a.t_b[row] = Fr::from((v < lo) as u64);
                a.t_a[row] = Fr::from((v > hi) as u64);
                a.t_m[row] = Fr::from((lo <= v && v <= hi) as u64);
            }
        }
        let (mut count, mut sum, mut sq) = (Fr::ZERO, Fr::ZERO, Fr::ZERO);
        for row in 0..shape.capacity {
            let rec = records.get(row);
            a.data[0][row] = Fr::from(rec.is_some() as u64);
            let mut fails = u64::from(rec.is_none());
            for c in 0..f {
                let v = rec.map_or(0, |r| r[c]);
                let (lo, hi) = query.ranges[c];
                let ok = lo <= v && v <= hi;
                a.data[c + 1][row] = Fr::from(v);
                a.field_match[c][row] = Fr::from(ok as u64);
                fails += u64::from(!ok);
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
        let mut mask = salt_rng(salt, 1);
        for row in shape.capacity..shape.capacity + shape.mask_rows {
            for col in a.data.iter_mut() {
                col[row] = Fr::random(&mut mask);
            }
        }
        TableCircuit {
            shape: shape.clone(),
            assignment: a,
        }
    }

    /// An all-padding witness with an all-zero query (for key generation).
    pub fn dummy(shape: &FastShape, rows: usize) -> Self {
        let query = FastQuery {
            ranges: vec![(0, 0); shape.fields()],
        };
        TableCircuit::new(shape, rows, &[0; 32], &[], &query)
    }
}

/// Columns and tables of [`TableCircuit`].
#[derive(Clone, Debug)]
pub struct TableConfig {
    data: Vec<Column<Advice>>,
    field_match: Vec<Column<Advice>>,
    matched: Column<Advice>,
    inv: Column<Advice>,
    sums: [Column<Advice>; 3],
    t_m: Column<Advice>,
    t_lo: Column<Advice>,
    t_hi: Column<Advice>,
    t_b: Column<Advice>,
    t_a: Column<Advice>,
    q_rec: Column<Fixed>,
    q_first: Column<Fixed>,
    q_tab: Column<Fixed>,
    q_tstart: Column<Fixed>,
    t_tag: Column<Fixed>,
    t_val: Column<Fixed>,
    range: TableColumn,
    instance: Column<Instance>,
}

impl Circuit<Fr> for TableCircuit {
    type Config = TableConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = FastShape;

    fn without_witnesses(&self) -> Self {
        self.clone()
    }

    fn params(&self) -> FastShape {
        self.shape.clone()
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> TableConfig {
        unreachable!("configured with params")
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, shape: FastShape) -> TableConfig {
        let f = shape.fields();
        // Data columns first: they are the first commitments in the proof.
        let data: Vec<_> = (0..=f).map(|_| meta.advice_column()).collect();
        let field_match: Vec<_> = (0..f).map(|_| meta.advice_column()).collect();
        let matched = meta.advice_column();
        let inv = meta.advice_column();
        let sums = [(); 3].map(|_| meta.advice_column());
        let [t_m, t_lo, t_hi, t_b, t_a] = [(); 5].map(|_| meta.advice_column());
        let [q_rec, q_first, q_tab, q_tstart, t_tag, t_val] = [(); 6].map(|_| meta.fixed_column());
        let range = meta.lookup_table_column();
        let instance = meta.instance_column();
        for col in [t_lo, t_hi].iter().chain(&sums) {
            meta.enable_equality(*col);
        }
        meta.enable_equality(instance);
        let one = || Expression::Constant(Fr::ONE);

        meta.create_gate("table row", |m| {
            let q = m.query_fixed(q_tab, Rotation::cur());
            let start = m.query_fixed(q_tstart, Rotation::cur());
            let tm = m.query_advice(t_m, Rotation::cur());
            let b = m.query_advice(t_b, Rotation::cur());
            let a = m.query_advice(t_a, Rotation::cur());
            let mut out = vec![
                q.clone() * b.clone() * (one() - b.clone()),
                q.clone() * a.clone() * (one() - a.clone()),
                q.clone() * (tm - (one() - b) * (one() - a)),
            ];
            for col in [t_lo, t_hi] {
                let cur = m.query_advice(col, Rotation::cur());
                let prev = m.query_advice(col, Rotation::prev());
                out.push(q.clone() * (one() - start.clone()) * (cur - prev));
            }
            out
        });
        meta.lookup("table below", |m| {
            let v = m.query_fixed(t_val, Rotation::cur());
            let lo = m.query_advice(t_lo, Rotation::cur());
            let b = m.query_advice(t_b, Rotation::cur());
            vec![(
                b.clone() * (lo.clone() - one() - v.clone()) + (one() - b) * (v - lo),
                range,
            )]
        });
        meta.lookup("table above", |m| {
            let v = m.query_fixed(t_val, Rotation::cur());
            let hi = m.query_advice(t_hi, Rotation::cur());
            let a = m.query_advice(t_a, Rotation::cur());
            vec![(
                a.clone() * (v.clone() - hi.clone() - one()) + (one() - a) * (hi - v),
                range,
            )]
        });

        meta.create_gate("record", |m| {
            let q = m.query_fixed(q_rec, Rotation::cur());
            let first = m.query_fixed(q_first, Rotation::cur());
            let present = m.query_advice(data[0], Rotation::cur());
            let mt = m.query_advice(matched, Rotation::cur());
            let inv = m.query_advice(inv, Rotation::cur());
            let mut s = one() - present.clone();
            for col in &field_match {
                s = s + one() - m.query_advice(*col, Rotation::cur());
            }
            let mut out = vec![
                q.clone() * present.clone() * (one() - present),
                q.clone() * mt.clone() * s.clone(),
                q.clone() * (s * inv - (one() - mt.clone())),
            ];
            let stat = m.query_advice(data[shape.stat + 1], Rotation::cur());
            let terms = [
                mt.clone(),
                mt.clone() * stat.clone(),
                mt * stat.clone() * stat,
            ];
            for (col, term) in sums.iter().zip(terms) {
                let cur = m.query_advice(*col, Rotation::cur());
                let prev = m.query_advice(*col, Rotation::prev());
                out.push(q.clone() * (cur - (one() - first.clone()) * prev - term));
            }
            out
        });
        for c in 0..f {
            meta.lookup_any("field match", |m| {
                let q = m.query_fixed(q_rec, Rotation::cur());
                let v = m.query_advice(data[c + 1], Rotation::cur());
                let mc = m.query_advice(field_match[c], Rotation::cur());
                vec![
                    (
                        q.clone() * Expression::Constant(Fr::from(c as u64 + 1)),
                        m.query_fixed(t_tag, Rotation::cur()),
                    ),
                    (q.clone() * v, m.query_fixed(t_val, Rotation::cur())),
                    (q * mc, m.query_advice(t_m, Rotation::cur())),
                ]
            });
        }

        TableConfig {
            data,
            field_match,
            matched,
            inv,
            sums,
            t_m,
            t_lo,
            t_hi,
            t_b,
            t_a,
            q_rec,
            q_first,
            q_tab,
            q_tstart,
            t_tag,
            t_val,
            range,
            instance,
        }
    }

    fn synthesize(
        &self,
        config: TableConfig,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        let shape = &self.shape;
        let a = &self.assignment;
        layouter.assign_table(
            || "range",
            |mut t| {
                for i in 0..1usize << shape.range_bits {
                    t.assign_cell(
                        || "range",
                        config.range,
                        i,
                        || Value::known(Fr::from(i as u64)),
                    )?;
                }
                Ok(())
            },
        )?;
        let cells = layouter.assign_region(
            || "records and match table",
            |mut region| {
                let rows = a.matched.len();
                let mut put = |col: Column<Advice>, vals: &[Fr]| {
                    vals.iter()
                        .enumerate()
                        .map(|(row, v)| region.assign_advice(col, row, Value::known(*v)).cell())
                        .collect::<Vec<_>>()
                };
                for (col, vals) in config.data.iter().zip(&a.data) {
                    put(*col, vals);
                }
                for (col, vals) in config.field_match.iter().zip(&a.field_match) {
                    put(*col, vals);
                }
                put(config.matched, &a.matched);
                put(config.inv, &a.inv);
                let last = shape.capacity - 1;
                let mut results = Vec::new();
                for (col, vals) in config.sums.iter().zip(&a.sums) {
                    results.push(put(*col, vals)[last]);
                }
                put(config.t_m, &a.t_m);
                let lo = put(config.t_lo, &a.t_lo);
                let hi = put(config.t_hi, &a.t_hi);
                put(config.t_b, &a.t_b);
                put(config.t_a, &a.t_a);
                let starts = blocks(shape);
                let bounds: Vec<_> = starts.iter().flat_map(|s| [lo[*s], hi[*s]]).collect();
                let mut tag = vec![0u64; rows];
                let mut val = vec![0u64; rows];
                for (c, start) in starts.iter().enumerate() {
                    for v in 0..1usize << shape.widths[c] {
                        tag[start + v] = c as u64 + 1;
                        val[start + v] = v as u64;
                    }
                }
                for row in 0..rows {
                    region.assign_fixed(config.q_rec, row, Fr::from((row < shape.capacity) as u64));
                    region.assign_fixed(config.q_first, row, Fr::from((row == 0) as u64));
                    region.assign_fixed(config.q_tab, row, Fr::from((tag[row] != 0) as u64));
                    region.assign_fixed(
                        config.q_tstart,
                        row,
                        Fr::from(starts.contains(&row) as u64),
                    );
                    region.assign_fixed(config.t_tag, row, Fr::from(tag[row]));
                    region.assign_fixed(config.t_val, row, Fr::from(val[row]));
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
