//! The Poseidon permutation of [`crate::poseidon`] (width `T = 4`, x⁵ S-box, `R_F = 8` full and
//! `R_P = 56` partial rounds) as a custom gate: two rows per full round, one per partial round.
//!
//! **Layout.** One region holds every permutation, one after another from row 0 (halo2-axiom's
//! `SimpleFloorPlanner` starts every region at row 0, so the permutations cannot each have their
//! own region). Permutation `k` takes rows `k · 73 .. (k + 1) · 73` ([`ROWS_PER_PERMUTATION`]) of
//! `T + 1` advice columns ([`WIDTH`]): the `T` state columns and one column `x` for the partial
//! rounds' square. A full round has the state before it on one row and the squares
//! `w_j = (s_j + rc_j)²` of its S-box inputs on the next (in the state columns); a partial round
//! has the state and, in `x`, its one square `w_0`, on one row ([`round_row`]); the output is on
//! the last row. The state columns are equality-enabled; the cells other regions copy are the
//! input and output rows ([`PermutationCells`]).
//!
//! **Gates.** On the row of round `r`, the fixed columns hold the round's constants `rc` and its
//! kind `q`: [`FULL`] (the first and last `R_F / 2` rounds), [`PARTIAL`] (the `R_P` rounds
//! between) or 0 (square rows, output rows, unused rows). The selectors are `full = q (2 − q)`
//! and `partial = q (q − 1) / 2` (1 on their own kind, 0 on the other and on 0). With `s` the
//! row, `M` the MDS matrix, `w` the next row and `s'` the one after for a full round, and
//! `w_0 = x` on the row itself and `s'` the next row for a partial round:
//!
//! ```text
//!   full    · (w_j − (s_j + rc_j)²)                                          = 0   (every j)
//!   full    · (s'_i − Σ_j M[i][j] · w_j² · (s_j + rc_j))                      = 0
//!   partial · (x − (s_0 + rc_0)²)                                            = 0
//!   partial · (s'_i − (M[i][0] · x² · (s_0 + rc_0) + Σ_{j≥1} M[i][j] · (s_j + rc_j))) = 0
//! ```
//!
//! the unoptimized round order of `poseidon-primitives`' `permute` (`w² · x = x⁵`). An output row
//! has kind 0, so nothing links one permutation to the next: a caller chains them (a sponge's
//! absorption, a Merkle path) with copy constraints of its own.
//!
//! **Why stored squares.** halo2-axiom caps a constraint system's degree at 5 (`MAX_DEGREE`,
//! read from the environment in `ConstraintSystem::degree`): a gate of higher degree passes the
//! `MockProver` and gives real proofs no verifier accepts. `selector · x⁵` is degree 6 (7 with
//! the merged kind), so the S-box is split through the stored square: every constraint here is
//! degree at most 5 (2 for the selector, 3 for `w² · x`), which also keeps halo2's extended
//! domain at `4n`. A partial round raises one word, so its square takes one extra column and no
//! extra row; a full round's four squares take a row (four more columns would cost ~6.3k gas
//! each in the EVM verifier's MSM, to save 8 of 73 rows).
//!
//! **Cost.** 73 rows, `T + 1` advice and `T + 1` fixed columns; the full-round gate has `2 T`
//! constraints (`T` squares, `T` words), the partial-round gate `T + 1`.

use halo2_base::halo2_proofs::{
    circuit::{Cell, Layouter, Value},
    halo2curves::{bn256::Fr, ff::Field},
    plonk::{Advice, Column, ConstraintSystem, Error, Expression, Fixed, VirtualCells},
    poly::Rotation,
};

use crate::poseidon::{round_constants_and_mds, R_F, R_P, T};

/// Advice columns of the chip: the `T` state columns and the partial rounds' square.
pub const WIDTH: usize = T + 1;

/// Rows one permutation takes: two per full round (the state, the S-box squares), one per
/// partial round, and the output.
pub const ROWS_PER_PERMUTATION: usize = 2 * R_F + R_P + 1;

/// [`PermutationConfig::kind`] of a full round.
pub const FULL: u64 = 1;
/// [`PermutationConfig::kind`] of a partial round.
pub const PARTIAL: u64 = 2;

/// Whether round `r` is a full round (the first and last `R_F / 2`).
const fn is_full(r: usize) -> bool {
    r < R_F / 2 || r >= R_F / 2 + R_P
}

/// The row (within its permutation) that holds the state before round `r`.
pub const fn round_row(r: usize) -> usize {
    if r < R_F / 2 {
        2 * r
    } else if r < R_F / 2 + R_P {
        R_F + (r - R_F / 2)
    } else {
        R_F + R_P + 2 * (r - R_F / 2 - R_P)
    }
}

/// The columns of the permutation chip.
#[derive(Clone, Debug)]
pub struct PermutationConfig {
    /// The state (or a full round's squares), one column per word (equality enabled).
    pub state: [Column<Advice>; T],
    /// A partial round's square `(s_0 + rc_0)²`, on its state row.
    pub square: Column<Advice>,
    /// The round constants of the round whose state is on the row.
    pub round_constants: [Column<Fixed>; T],
    /// The round's kind: [`FULL`] or [`PARTIAL`] on a round's state row, 0 elsewhere (one
    /// column for both selectors).
    pub kind: Column<Fixed>,
}

/// The native trace, [`ROWS_PER_PERMUTATION`] rows of [`WIDTH`] words laid out as the chip's
/// columns (the state words, then the partial square; 0 in unused cells).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutationTrace {
    rows: Vec<[Fr; WIDTH]>,
}

impl PermutationTrace {
    /// Runs the permutation on `input`, keeping every round's state and squares and the output.
    pub fn new(input: [Fr; T]) -> Self {
        let (round_constants, mds) = round_constants_and_mds();
        let mut rows = Vec::with_capacity(ROWS_PER_PERMUTATION);
        let mut state = input;
        let widen = |words: [Fr; T], x: Fr| -> [Fr; WIDTH] {
            std::array::from_fn(|j| if j < T { words[j] } else { x })
        };
        for (r, rc) in round_constants.iter().enumerate() {
            debug_assert_eq!(rows.len(), round_row(r));
            let added: [Fr; T] = std::array::from_fn(|j| state[j] + rc[j]);
            let sboxed: [Fr; T] = if is_full(r) {
                let squares: [Fr; T] = added.map(|a| a.square());
                rows.push(widen(state, Fr::ZERO));
                rows.push(widen(squares, Fr::ZERO));
                std::array::from_fn(|j| squares[j].square() * added[j])
            } else {
                let square = added[0].square();
                rows.push(widen(state, square));
                std::array::from_fn(|j| match j {
                    0 => square.square() * added[0],
                    _ => added[j],
                })
            };
            state = std::array::from_fn(|i| (0..T).map(|j| mds[i][j] * sboxed[j]).sum());
        }
        rows.push(widen(state, Fr::ZERO));
        debug_assert_eq!(rows.len(), ROWS_PER_PERMUTATION);
        debug_assert_eq!(state, {
            let mut native = input;
            crate::poseidon::permute(&mut native);
            native
        });
        Self { rows }
    }

    /// The input state (the first row).
    pub fn input(&self) -> [Fr; T] {
        std::array::from_fn(|j| self.rows[0][j])
    }

    /// The output state (the last row).
    pub fn output(&self) -> [Fr; T] {
        std::array::from_fn(|j| self.rows[ROWS_PER_PERMUTATION - 1][j])
    }

    /// The rows, to tamper with in negative tests (a forged trace the gates must reject).
    pub fn rows_mut(&mut self) -> &mut [[Fr; WIDTH]] {
        &mut self.rows
    }
}

/// The cells of one assigned permutation that other regions copy from / to.
#[derive(Clone, Debug)]
pub struct PermutationCells {
    /// The input state's cells (the permutation's first row).
    pub input: [Cell; T],
    /// The output state's cells (its last row).
    pub output: [Cell; T],
}

impl PermutationConfig {
    /// Allocates the columns (advice in the first phase) and creates the two round gates.
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> Self {
        let state = [(); T].map(|_| meta.advice_column());
        for col in state {
            meta.enable_equality(col);
        }
        let square = meta.advice_column();
        let round_constants = [(); T].map(|_| meta.fixed_column());
        let kind = meta.fixed_column();
        let (_, mds) = round_constants_and_mds();

        // A round: `s + rc` on this row, the squares `w` of its `raised` words and the state
        // `s'` after it; `w_j² · (s_j + rc_j)` for the raised words, `s_j + rc_j` for the
        // others, mixed by M; the square constraints of the raised words.
        let round = |q: Expression<Fr>, m: &mut VirtualCells<'_, Fr>, full: bool| {
            let added: [Expression<Fr>; T] = std::array::from_fn(|i| {
                m.query_advice(state[i], Rotation::cur())
                    + m.query_fixed(round_constants[i], Rotation::cur())
            });
            let (raised, squares, next) = match full {
                true => (
                    T,
                    (0..T)
                        .map(|i| m.query_advice(state[i], Rotation::next()))
                        .collect::<Vec<_>>(),
                    Rotation(2),
                ),
                false => (
                    1,
                    vec![m.query_advice(square, Rotation::cur())],
                    Rotation::next(),
                ),
            };
            let after: [Expression<Fr>; T] =
                std::array::from_fn(|i| m.query_advice(state[i], next));
            let sboxed: Vec<Expression<Fr>> = (0..T)
                .map(|j| match j < raised {
                    true => squares[j].clone() * squares[j].clone() * added[j].clone(),
                    false => added[j].clone(),
                })
                .collect();
            let square_ok =
                (0..raised).map(|j| squares[j].clone() - added[j].clone() * added[j].clone());
            let round_ok = (0..T).map(|i| {
                let mixed = (0..T)
                    .map(|j| Expression::Constant(mds[i][j]) * sboxed[j].clone())
                    .reduce(|a, b| a + b)
                    .expect("T > 0");
                after[i].clone() - mixed
            });
            square_ok
                .chain(round_ok)
                .map(|c| q.clone() * c)
                .collect::<Vec<_>>()
        };
        // The selectors from the kind `q ∈ {0, FULL, PARTIAL}`: `q (2 − q)` is 1 on full rounds
        // and 0 on the others, `q (q − 1) / 2` is 1 on partial rounds and 0 on the others.
        let two = Expression::Constant(Fr::from(2));
        let half = Expression::Constant(Fr::from(2).invert().expect("2 is invertible"));
        meta.create_gate("poseidon full round", |m| {
            let q = m.query_fixed(kind, Rotation::cur());
            round(q.clone() * (two.clone() - q), m, true)
        });
        meta.create_gate("poseidon partial round", |m| {
            let q = m.query_fixed(kind, Rotation::cur());
            round(
                q.clone() * (q - Expression::Constant(Fr::ONE)) * half.clone(),
                m,
                false,
            )
        });

        Self {
            state,
            square,
            round_constants,
            kind,
        }
    }

    /// Lays the traces out one after another from row 0 in one region; returns their cells in
    /// order.
    pub fn assign(
        &self,
        layouter: &mut impl Layouter<Fr>,
        traces: &[PermutationTrace],
    ) -> Result<Vec<PermutationCells>, Error> {
        let (round_constants, _) = round_constants_and_mds();
        let columns: [Column<Advice>; WIDTH] =
            std::array::from_fn(|j| if j < T { self.state[j] } else { self.square });
        layouter.assign_region(
            || "poseidon permutations",
            |mut region| {
                let mut cells = Vec::with_capacity(traces.len());
                for (k, trace) in traces.iter().enumerate() {
                    let base = k * ROWS_PER_PERMUTATION;
                    let mut assign_row = |r: usize| -> [Cell; WIDTH] {
                        std::array::from_fn(|j| {
                            region
                                .assign_advice(columns[j], base + r, Value::known(trace.rows[r][j]))
                                .cell()
                        })
                    };
                    let state =
                        |row: [Cell; WIDTH]| -> [Cell; T] { std::array::from_fn(|j| row[j]) };
                    let input = state(assign_row(0));
                    for r in 1..ROWS_PER_PERMUTATION - 1 {
                        assign_row(r);
                    }
                    let output = state(assign_row(ROWS_PER_PERMUTATION - 1));
                    for (r, rc) in round_constants.iter().enumerate() {
                        let row = base + round_row(r);
                        for (col, c) in self.round_constants.iter().zip(rc) {
                            region.assign_fixed(*col, row, *c);
                        }
                        let kind = if is_full(r) { FULL } else { PARTIAL };
                        region.assign_fixed(self.kind, row, Fr::from(kind));
                    }
                    cells.push(PermutationCells { input, output });
                }
                Ok(cells)
            },
        )
    }

    /// Rows `n` permutations occupy.
    pub const fn rows(n: usize) -> usize {
        n * ROWS_PER_PERMUTATION
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poseidon::{hash, permute};
    use halo2_base::halo2_proofs::{
        circuit::SimpleFloorPlanner,
        dev::{MockProver, VerifyFailure},
        halo2curves::ff::PrimeField,
        plonk::{Circuit, Instance},
    };
    use rand::{rngs::StdRng, SeedableRng};

    /// Only the permutation chip, every output exposed as public inputs `k · T + i`, and
    /// optional copy constraints `(a, b, i)`: permutation `a`'s output word `i` equals
    /// permutation `b`'s input word `i`.
    #[derive(Clone, Default)]
    struct TestCircuit {
        traces: Vec<PermutationTrace>,
        links: Vec<(usize, usize, usize)>,
    }

    #[derive(Clone, Debug)]
    struct TestConfig {
        perm: PermutationConfig,
        instance: Column<Instance>,
    }

    impl Circuit<Fr> for TestCircuit {
        type Config = TestConfig;
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();

        fn without_witnesses(&self) -> Self {
            self.clone()
        }

        fn configure(meta: &mut ConstraintSystem<Fr>) -> TestConfig {
            let perm = PermutationConfig::configure(meta);
            let instance = meta.instance_column();
            meta.enable_equality(instance);
            TestConfig { perm, instance }
        }

        fn synthesize(
            &self,
            config: TestConfig,
            mut layouter: impl Layouter<Fr>,
        ) -> Result<(), Error> {
            let cells = config.perm.assign(&mut layouter, &self.traces)?;
            for (k, c) in cells.iter().enumerate() {
                for (i, cell) in c.output.iter().enumerate() {
                    layouter.constrain_instance(*cell, config.instance, k * T + i);
                }
            }
            layouter.assign_region(
                || "links",
                |mut region| {
                    for &(a, b, i) in &self.links {
                        region.constrain_equal(cells[a].output[i], cells[b].input[i]);
                    }
                    Ok(())
                },
            )
        }
    }

    /// Smallest `k` whose usable rows hold `n` permutations.
    fn k_for(n: usize) -> u32 {
        let mut cs = ConstraintSystem::<Fr>::default();
        TestCircuit::configure(&mut cs);
        let needed = PermutationConfig::rows(n) + cs.blinding_factors() + 1;
        needed.next_power_of_two().trailing_zeros()
    }

    /// MockProver on `traces` with `links`, the public inputs being `outputs` (flattened).
    fn mock(
        traces: Vec<PermutationTrace>,
        links: Vec<(usize, usize, usize)>,
        outputs: &[[Fr; T]],
    ) -> Result<(), Vec<VerifyFailure>> {
        let k = k_for(traces.len());
        let instance = outputs.iter().flatten().copied().collect();
        MockProver::run(k, &TestCircuit { traces, links }, vec![instance])
            .expect("synthesis")
            .verify()
    }

    /// The gate `gate` failed, and nothing else did.
    fn only_gate_failed(r: &Result<(), Vec<VerifyFailure>>, gate: &str) -> bool {
        matches!(r, Err(e) if e.iter().any(|f| matches!(f,
            VerifyFailure::ConstraintNotSatisfied { constraint, .. }
                if format!("{constraint:?}").contains(gate)))
            && e.iter().all(|f| matches!(f, VerifyFailure::ConstraintNotSatisfied { .. })))
    }

    fn random_state(rng: &mut StdRng) -> [Fr; T] {
        std::array::from_fn(|_| Fr::random(&mut *rng))
    }

    fn native(input: [Fr; T]) -> [Fr; T] {
        let mut state = input;
        permute(&mut state);
        state
    }

    #[test]
    fn trace_matches_native_permutation_and_hash() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..8 {
            let input = random_state(&mut rng);
            let trace = PermutationTrace::new(input);
            assert_eq!(trace.input(), input);
            assert_eq!(trace.output(), native(input));
            assert_ne!(trace.output(), input);

            let (a, b) = (Fr::random(&mut rng), Fr::random(&mut rng));
            let sponge = PermutationTrace::new([Fr::from_u128(1 << 64), a, b, Fr::ONE]);
            assert_eq!(hash(&[a, b]), sponge.output()[1]);
        }
    }

    #[test]
    fn three_random_permutations_verify_with_native_outputs() {
        let mut rng = StdRng::seed_from_u64(2);
        let inputs: Vec<[Fr; T]> = (0..3).map(|_| random_state(&mut rng)).collect();
        let traces: Vec<PermutationTrace> =
            inputs.iter().map(|x| PermutationTrace::new(*x)).collect();
        let outputs: Vec<[Fr; T]> = inputs.iter().map(|x| native(*x)).collect();
        for (t, o) in traces.iter().zip(&outputs) {
            assert_eq!(t.output(), *o);
        }
        assert!(k_for(3) <= 9);
        assert_eq!(mock(traces.clone(), vec![], &outputs), Ok(()));

        // The public outputs are the output cells: a wrong claimed output fails.
        let mut wrong = outputs.clone();
        wrong[2][3] += Fr::ONE;
        assert!(mock(traces, vec![], &wrong).is_err());
    }

    #[test]
    fn tampered_rounds_fail() {
        let mut rng = StdRng::seed_from_u64(3);
        let inputs: Vec<[Fr; T]> = (0..3).map(|_| random_state(&mut rng)).collect();
        let last = ROWS_PER_PERMUTATION - 1;
        // (row, word, gate that must catch it): input row, a first-half full round's state and
        // a square, a partial round's state and its square (the extra column), a second-half
        // full round, the output row.
        let cases = [
            (0, 2, "full round"),
            (round_row(2), 2, "full round"),
            (round_row(2) + 1, 3, "full round"),
            (round_row(R_F / 2 + R_P / 2), 1, "partial round"),
            (round_row(R_F / 2 + 3), T, "partial round"),
            (round_row(R_F / 2 + R_P + 2), 1, "full round"),
            (last, 1, "full round"),
        ];
        for (row, word, gate) in cases {
            // Tamper the middle permutation, so the offsets of the others are exercised too.
            let mut traces: Vec<PermutationTrace> =
                inputs.iter().map(|x| PermutationTrace::new(*x)).collect();
            traces[1].rows_mut()[row][word] += Fr::ONE;
            let outputs: Vec<[Fr; T]> = traces.iter().map(PermutationTrace::output).collect();
            let r = mock(traces, vec![], &outputs);
            assert!(only_gate_failed(&r, gate), "row {row}: {r:?}");
        }
    }

    #[test]
    fn consecutive_permutations_are_independent_unless_copied() {
        let mut rng = StdRng::seed_from_u64(4);
        let first = PermutationTrace::new(random_state(&mut rng));

        // The second input is arbitrary (nothing ties it to the first's output row): passes.
        let mut unrelated = first.output();
        unrelated[1] += Fr::ONE;
        let second = PermutationTrace::new(unrelated);
        let outputs = [first.output(), second.output()];
        assert_eq!(
            mock(vec![first.clone(), second.clone()], vec![], &outputs),
            Ok(())
        );

        // Copying perm 0's output[1] to perm 1's input[1]: fine when equal ...
        let chained = PermutationTrace::new(first.output());
        let chained_outputs = [first.output(), chained.output()];
        assert_eq!(
            mock(
                vec![first.clone(), chained],
                vec![(0, 1, 1)],
                &chained_outputs
            ),
            Ok(())
        );

        // ... and an equality failure when not (the cells are equality-enabled).
        let r = mock(vec![first, second], vec![(0, 1, 1)], &outputs);
        assert!(
            matches!(&r, Err(e) if !e.is_empty()
                && e.iter().all(|f| matches!(f, VerifyFailure::Permutation { .. }))),
            "{r:?}"
        );
    }

    #[test]
    fn gate_degree_is_within_halo2_axioms_cap() {
        let mut cs = ConstraintSystem::<Fr>::default();
        PermutationConfig::configure(&mut cs);
        // halo2-axiom's cap (see the module docs): above it real proofs fail silently.
        assert_eq!(cs.degree(), 5);
        assert!(cs
            .gates()
            .iter()
            .flat_map(|g| g.polynomials())
            .all(|p| p.degree() <= 5));
        assert_eq!(cs.gates().len(), 2);
        assert_eq!(ROWS_PER_PERMUTATION, 73);
        assert_eq!(PermutationConfig::rows(3), 219);
        assert_eq!(cs.num_advice_columns(), WIDTH);
        // The rounds' rows: 4 full (2 rows each), 56 partial, 4 full, then the output.
        assert_eq!(round_row(4), 8);
        assert_eq!(round_row(59), 63);
        assert_eq!(round_row(60), 64);
        assert_eq!(round_row(63) + 2, ROWS_PER_PERMUTATION - 1);
    }

    /// A real proof (key generation, SHPLONK prover, verifier) of the chip alone verifies.
    #[test]
    fn a_real_proof_verifies() {
        use crate::circuit::fast;
        let mut rng = StdRng::seed_from_u64(7);
        let traces: Vec<PermutationTrace> = (0..2)
            .map(|_| PermutationTrace::new(std::array::from_fn(|_| Fr::random(&mut rng))))
            .collect();
        let outputs: Vec<Fr> = traces.iter().flat_map(|t| t.output()).collect();
        let circuit = TestCircuit {
            traces,
            links: vec![],
        };
        let k = k_for(2);
        let kzg = crate::keys::dev_params(k);
        let pk = fast::keygen_circuit(&kzg, &circuit).unwrap();
        let proof = fast::prove(&kzg, &pk, circuit, &outputs, rand::rngs::OsRng).unwrap();
        assert!(fast::verify(&kzg, pk.get_vk(), &outputs, &proof));
    }
}
