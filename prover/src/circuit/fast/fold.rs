//! **Spike (issue #8, design N(W)): records over rows, the match folded into the lookups.**
//! Same records, queries, public inputs and results as [`super::FastCircuit`] and
//! [`super::table::TableCircuit`]; built to answer the question B′ left open: a verifier that
//! deploys (≤ 24,576 bytes) and costs no more gas than today's, without giving up speed.
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
//! block: two spacer rows (`hi`, then `lo`, in the `lo` column, copied from the instance), then
//! one row per value `v ∈ [0, 2^w)` (`q_tab`; `q_tstart` on the first). On value rows `t_m` is
//! boolean; it may rise (0 → 1, the row above counting as 0 at a block start) only where
//! `t_val = lo`; `lo` is carried down; `cm` counts the block's ones from `lo − 1 − hi` and must
//! end at 0 (`q_tstart` three rows below marks a block's end). So the ones are exactly the run
//! `[lo, hi]`: `t_m = [lo ≤ v ≤ hi]`, with no range lookups (B′ used two per table row).
//!
//! **Sums.** The statistic is a slot at a fixed place in every record, so no per-slot sums are
//! needed: one advice column `acc` holds three running sums interleaved over a record's rows
//! (count at its row 0, sum at row 1, sum of squares at row 2; `R ≥ 3` is required), each
//! `acc = [not first record] · acc(−R) + p_end · x^j` with `p_end` the record's last slot bit
//! and `x` its statistic cell, reached by rotation. The last record's three cells are the
//! results.
//!
//! Public inputs: those of [`super::instances`]. The contract must require `hi < 2^{w_c}` or
//! accept that an out-of-domain bound makes the proof impossible (the count cannot be met);
//! `lo > hi` likewise makes it impossible. Values in a record that has already failed are
//! only checked against the widest field's width.

use halo2_base::halo2_proofs::{
    circuit::{Cell, Layouter, SimpleFloorPlanner, Value},
    halo2curves::{bn256::Fr, ff::Field},
    plonk::{Advice, Circuit, Column, ConstraintSystem, Error, Expression, Fixed, Instance},
    poly::Rotation,
};

use super::{salt_rng, FastQuery, FastShape};

/// Shape of a fold circuit: the record shape and the number of data columns `W`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoldParams {
    /// Record shape (`range_bits` is unused: no range table).
    pub shape: FastShape,
    /// Data columns (slots per row), `W`.
    pub slots: usize,
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

impl FoldParams {
    /// Slots per record (`present` and the fields).
    pub fn record_slots(&self) -> usize {
        self.shape.fields() + 1
    }

    /// Rows per record, `R`.
    pub fn rows_per_record(&self) -> usize {
        self.record_slots().div_ceil(self.slots)
    }

    /// `(row offset, column)` of the statistic slot within a record.
    fn stat_at(&self) -> (usize, usize) {
        let s = self.shape.stat + 1;
        (s / self.slots, s % self.slots)
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

    /// Rows needed before halo2's unusable rows.
    pub fn rows_needed(&self) -> usize {
        (self.record_rows() + self.shape.mask_rows).max(self.table_rows())
    }

    /// Rows halo2 leaves unusable at the bottom of every column (`blinding_factors + 1`;
    /// grows with the rotations at which one column is queried).
    pub fn unusable_rows(&self) -> usize {
        let mut cs = ConstraintSystem::<Fr>::default();
        FoldCircuit::configure_with_params(&mut cs, self.clone());
        cs.blinding_factors() + 1
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
}

/// Column values of one proof's witness (public so tests can tamper with them).
#[derive(Clone, Debug)]
pub struct FoldAssignment {
    /// Data columns `d_j`.
    pub data: Vec<Vec<Fr>>,
    /// Running match bits `p_j`.
    pub bits: Vec<Vec<Fr>>,
    /// Interleaved running sums.
    pub acc: Vec<Fr>,
    /// Table: match bit per value row.
    pub t_m: Vec<Fr>,
    /// Table: a field's `hi` on its first spacer, `lo` on the second and on its value rows.
    pub lo: Vec<Fr>,
    /// Table: running count of a field block's ones, from `lo − 1 − hi`.
    pub cm: Vec<Fr>,
}

/// The N(W) circuit.
#[derive(Clone, Debug)]
pub struct FoldCircuit {
    /// Shape (fixes the keys).
    pub params: FoldParams,
    /// Witness.
    pub assignment: FoldAssignment,
}

impl FoldCircuit {
    /// The honest witness for `records` under `query`, masking rows from `salt`; `rows` is the
    /// usable row count at the chosen `k`.
    pub fn new(
        params: &FoldParams,
        rows: usize,
        salt: &[u8; 32],
        records: &[Vec<u64>],
        query: &FastQuery,
    ) -> Self {
        let shape = &params.shape;
        let (w, r) = (params.slots, params.rows_per_record());
        assert!(
            r >= 3,
            "three interleaved sums need at least 3 rows per record"
        );
        assert!(
            records.len() <= shape.capacity,
            "more records than capacity"
        );
        assert!(params.rows_needed() <= rows, "k too small");
        assert_eq!(query.ranges.len(), shape.fields(), "one range per field");
        let zeros = || vec![Fr::ZERO; rows];
        let mut a = FoldAssignment {
            data: (0..w).map(|_| zeros()).collect(),
            bits: (0..w).map(|_| zeros()).collect(),
            acc: zeros(),
            t_m: zeros(),
            lo: zeros(),
            cm: zeros(),
        };
        let (sr, sc) = params.stat_at();
        let (mut count, mut sum, mut sq) = (Fr::ZERO, Fr::ZERO, Fr::ZERO);
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
                p &= ok;
                let row = i * r + s / w;
                a.data[s % w][row] = Fr::from(v);
                a.bits[s % w][row] = Fr::from(p as u64);
            }
            if p {
                let x = a.data[sc][i * r + sr];
                count += Fr::ONE;
                sum += x;
                sq += x * x;
            }
            for (o, total) in [count, sum, sq].into_iter().enumerate() {
                a.acc[i * r + o] = total;
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
        FoldCircuit {
            params: params.clone(),
            assignment: a,
        }
    }

    /// An all-padding witness with an all-zero query (for key generation).
    pub fn dummy(params: &FoldParams, rows: usize) -> Self {
        let query = FastQuery {
            ranges: vec![(0, 0); params.shape.fields()],
        };
        FoldCircuit::new(params, rows, &[0; 32], &[], &query)
    }
}

/// Columns of [`FoldCircuit`].
#[derive(Clone, Debug)]
pub struct FoldConfig {
    data: Vec<Column<Advice>>,
    bits: Vec<Column<Advice>>,
    acc: Column<Advice>,
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
        let [acc, t_m, lo, cm] = [(); 4].map(|_| meta.advice_column());
        let [q_start, base, q_rec, t_tag, t_val, t_fix, q_tab, q_tstart] =
            [(); 8].map(|_| meta.fixed_column());
        let instance = meta.instance_column();
        for col in [acc, lo] {
            meta.enable_equality(col);
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
                vec![
                    (key, m.query_fixed(t_tag, Rotation::cur())),
                    (
                        q * m.query_advice(data[j], Rotation::cur()),
                        m.query_fixed(t_val, Rotation::cur()),
                    ),
                    (
                        m.query_advice(bits[j], Rotation::cur()),
                        m.query_advice(t_m, Rotation::cur()),
                    ),
                ]
            });
        }

        meta.create_gate("sums", |m| {
            let (sr, sc) = params.stat_at();
            (0..3)
                .map(|o| {
                    let rot = |d: usize| Rotation(d as i32 - o as i32);
                    let q = m.query_fixed(q_start, Rotation(-(o as i32)));
                    let later = m.query_fixed(q_start, Rotation(-((r + o) as i32)));
                    let p_end = m.query_advice(bits[w - 1], rot(r - 1));
                    let x = m.query_advice(data[sc], rot(sr));
                    let term = match o {
                        0 => p_end,
                        1 => p_end * x,
                        _ => p_end * x.clone() * x,
                    };
                    let cur = m.query_advice(acc, Rotation::cur());
                    let prev = m.query_advice(acc, Rotation(-(r as i32)));
                    q * (cur - later * prev - term)
                })
                .collect::<Vec<_>>()
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
            instance,
        }
    }

    fn synthesize(&self, config: FoldConfig, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let params = &self.params;
        let a = &self.assignment;
        let (w, r) = (params.slots, params.rows_per_record());
        let table = params.table();
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
                let acc = put(config.acc, &a.acc);
                put(config.t_m, &a.t_m);
                let lo = put(config.lo, &a.lo);
                put(config.cm, &a.cm);
                let last = (params.shape.capacity - 1) * r;
                // Public order: lo_c, hi_c per field, then count, sum, sum of squares.
                let mut out: Vec<Cell> = table
                    .fields
                    .iter()
                    .flat_map(|&spacer| [lo[spacer + 1], lo[spacer]])
                    .collect();
                out.extend((0..3).map(|o| acc[last + o]));
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
        for (i, cell) in cells.into_iter().enumerate() {
            layouter.constrain_instance(cell, config.instance, i);
        }
        Ok(())
    }
}
