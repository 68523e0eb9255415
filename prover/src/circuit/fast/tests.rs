//! MockProver soundness tests and small real proofs for the design-B spike (k = 6: fast).

use halo2_base::halo2_proofs::{
    dev::{FailureLocation, MockProver, VerifyFailure},
    halo2curves::{bn256::Fr, ff::Field},
    plonk::keygen_vk,
};
use rand::{rngs::OsRng, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;

const K: u32 = 6;
const SALT: [u8; 32] = [7; 32];

fn shape() -> FastShape {
    FastShape {
        widths: vec![5, 2, 5, 4],
        stat: 3,
        range_bits: 5,
        capacity: 40,
        mask_rows: 8,
    }
}

/// 30 records in 40 slots (10 padding rows); record 3 fails [`query`] only by its field 0.
fn records(seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let widths = shape().widths;
    let mut recs: Vec<Vec<u64>> = (0..30)
        .map(|_| widths.iter().map(|w| rng.gen_range(0..1u64 << w)).collect())
        .collect();
    recs[3] = vec![1, 1, 9, 6];
    recs
}

fn query() -> FastQuery {
    FastQuery {
        ranges: vec![(3, 20), (1, 1), (0, 31), (2, 12)],
    }
}

/// An honest circuit and its public inputs.
fn honest(recs: &[Vec<u64>], q: &FastQuery) -> (FastCircuit, Vec<Fr>) {
    let s = shape();
    let circuit = FastCircuit::new(&s, usable_rows(K), &SALT, recs, q);
    let inst = instances(q, &evaluate(&s, recs, q));
    (circuit, inst)
}

fn mock(circuit: &FastCircuit, inst: &[Fr]) -> Result<(), Vec<VerifyFailure>> {
    MockProver::run(K, circuit, vec![inst.to_vec()])
        .expect("synthesis")
        .verify()
}

/// A cheating prover keeps its running sums (and the released results) consistent with its
/// forged match bits; returns the public inputs it would claim.
fn resum(c: &mut FastCircuit, q: &FastQuery) -> Vec<Fr> {
    let a = &mut c.assignment;
    let (mut n, mut s, mut sq) = (Fr::ZERO, Fr::ZERO, Fr::ZERO);
    for row in 0..c.shape.capacity {
        let m = a.matched[row];
        let v = a.data[c.shape.stat + 1][row];
        n += m;
        s += m * v;
        sq += m * v * v;
        a.sums[0][row] = n;
        a.sums[1][row] = s;
        a.sums[2][row] = sq;
    }
    let mut inst = instances(
        q,
        &FastResult {
            count: 0,
            sum: 0,
            sum_squares: 0,
        },
    );
    let f = q.ranges.len();
    inst[2 * f] = n;
    inst[2 * f + 1] = s;
    inst[2 * f + 2] = sq;
    inst
}

/// First record row that fails the query only because its field `c` is below `lo_c`.
fn row_failing_only_below(recs: &[Vec<u64>], q: &FastQuery, c: usize) -> usize {
    recs.iter()
        .position(|r| {
            r.iter()
                .zip(&q.ranges)
                .enumerate()
                .all(
                    |(i, (v, (lo, hi)))| {
                        if i == c {
                            v < lo
                        } else {
                            lo <= v && v <= hi
                        }
                    },
                )
        })
        .expect("a record failing only field c")
}

fn constraint_failed(errs: &[VerifyFailure]) -> bool {
    errs.iter()
        .any(|e| matches!(e, VerifyFailure::ConstraintNotSatisfied { .. }))
}

#[test]
fn honest_witness_matches_plain_computation() {
    for seed in 0..4u64 {
        let recs = records(seed);
        let mut rng = ChaCha20Rng::seed_from_u64(100 + seed);
        let mut queries = vec![query()];
        for _ in 0..3 {
            let ranges = shape()
                .widths
                .iter()
                .map(|w| {
                    let (a, b) = (rng.gen_range(0..1u64 << w), rng.gen_range(0..1u64 << w));
                    (a.min(b), a.max(b))
                })
                .collect();
            queries.push(FastQuery { ranges });
        }
        for q in &queries {
            let (circuit, inst) = honest(&recs, q);
            let plain = evaluate(&shape(), &recs, q);
            let last = shape().capacity - 1;
            assert_eq!(circuit.assignment.sums[0][last], Fr::from(plain.count));
            assert_eq!(
                circuit.assignment.sums[2][last],
                Fr::from(plain.sum_squares)
            );
            assert_eq!(mock(&circuit, &inst), Ok(()), "seed {seed}, {q:?}");
        }
    }
    // The fixed query really selects something (so the negative tests below mean something).
    let plain = evaluate(&shape(), &records(1), &query());
    assert!(plain.count > 0 && plain.count < 30, "{plain:?}");
}

#[test]
fn wrong_results_are_rejected() {
    let recs = records(1);
    let (circuit, inst) = honest(&recs, &query());
    let f = shape().fields();
    for (i, delta) in [(2 * f, 1u64), (2 * f + 1, 3), (2 * f + 2, 5)] {
        let mut bad = inst.clone();
        bad[i] += Fr::from(delta);
        assert!(mock(&circuit, &bad).is_err(), "public input {i} + {delta}");
    }
    // A bound of another query with the same witness.
    let mut bad = inst.clone();
    bad[0] += Fr::ONE;
    assert!(mock(&circuit, &bad).is_err());
}

#[test]
fn non_boolean_match_bit_is_rejected() {
    let recs = records(1);
    let q = query();
    let (mut circuit, _) = honest(&recs, &q);
    let row = (0..recs.len())
        .find(|r| circuit.assignment.matched[*r] == Fr::ONE)
        .unwrap();
    circuit.assignment.matched[row] = Fr::from(2);
    let inst = resum(&mut circuit, &q);
    assert!(constraint_failed(&mock(&circuit, &inst).unwrap_err()));
}

#[test]
fn non_boolean_below_above_bits_are_rejected() {
    // A record failing only `lo_0` has below_0 = 1. Forging above_c = −1 on a field where
    // v = hi keeps that lookup satisfied (its input becomes 1) and cancels S to 0, so the
    // record would count: only the boolean gate stops it.
    let q = FastQuery {
        ranges: vec![(3, 20), (0, 3), (0, 31), (0, 15)],
    };
    let mut recs = records(1);
    recs[0] = vec![1, 3, 9, 6]; // age below 3, field 1 exactly at hi = 3
    let (mut circuit, _) = honest(&recs, &q);
    let a = &mut circuit.assignment;
    assert_eq!((a.below[0][0], a.matched[0]), (Fr::ONE, Fr::ZERO));
    a.above[1][0] = -Fr::ONE;
    a.matched[0] = Fr::ONE;
    a.inv[0] = Fr::ZERO;
    let inst = resum(&mut circuit, &q);
    let errs = mock(&circuit, &inst).unwrap_err();
    assert!(constraint_failed(&errs), "{errs:?}");
    assert!(
        !errs
            .iter()
            .any(|e| matches!(e, VerifyFailure::Lookup { .. })),
        "only the boolean gate should fail: {errs:?}"
    );
}

#[test]
fn lookup_bypass_is_rejected() {
    // Claiming a below-range value is in range: the difference v − lo wraps around the field
    // and is not in the range table.
    let recs = records(1);
    let q = query();
    let row = row_failing_only_below(&recs, &q, 0);
    let (mut circuit, _) = honest(&recs, &q);
    let a = &mut circuit.assignment;
    a.below[0][row] = Fr::ZERO;
    a.matched[row] = Fr::ONE;
    a.inv[row] = Fr::ZERO;
    let inst = resum(&mut circuit, &q);
    let errs = mock(&circuit, &inst).unwrap_err();
    assert!(
        errs.iter().any(|e| matches!(
            e,
            VerifyFailure::Lookup { location: FailureLocation::OutsideRegion { row: r }, .. }
                if *r == row
        )),
        "{errs:?}"
    );
}

#[test]
fn out_of_range_bound_difference_is_rejected() {
    // A bound that differs from the public one below row 0 (the broadcast gate), and a bound
    // at row 0 that differs from the instance (the copy constraint).
    let recs = records(1);
    let q = query();
    let (circuit, inst) = honest(&recs, &q);
    let mut bad = circuit.clone();
    bad.assignment.lo[0][5] += Fr::ONE;
    assert!(mock(&bad, &inst).is_err());
    let mut bad = circuit;
    for row in 0..shape().capacity {
        bad.assignment.lo[0][row] = Fr::ZERO;
    }
    assert!(mock(&bad, &inst).is_err());
}

#[test]
fn padding_rows_never_count() {
    let recs = records(1);
    // A query every all-zero padding slot would satisfy, were it present.
    let q = FastQuery {
        ranges: vec![(0, 31), (0, 3), (0, 31), (0, 15)],
    };
    let (circuit, inst) = honest(&recs, &q);
    assert_eq!(mock(&circuit, &inst), Ok(()));
    assert_eq!(evaluate(&shape(), &recs, &q).count, 30);

    // A padding slot (present = 0) inside the capacity, counted.
    let mut bad = circuit.clone();
    bad.assignment.matched[35] = Fr::ONE;
    bad.assignment.inv[35] = Fr::ZERO;
    let forged = resum(&mut bad, &q);
    assert!(constraint_failed(&mock(&bad, &forged).unwrap_err()));

    // The same slot made present: `present` is committed data, so this is another dataset
    // (other data-column commitments); the circuit itself accepts it.
    let mut other = circuit.clone();
    other.assignment.data[0][35] = Fr::ONE;
    other.assignment.matched[35] = Fr::ONE;
    other.assignment.inv[35] = Fr::ZERO;
    let forged = resum(&mut other, &q);
    assert_eq!(mock(&other, &forged), Ok(()));

    // A record in a row beyond the capacity (a masking row), counted into the running sums.
    let mut bad = circuit;
    let row = shape().capacity;
    let a = &mut bad.assignment;
    a.data[0][row] = Fr::ONE;
    a.matched[row] = Fr::ONE;
    for s in a.sums.iter_mut() {
        s[row] = s[row - 1] + Fr::ONE;
    }
    let mut forged = inst.clone();
    forged[2 * shape().fields()] += Fr::ONE;
    assert!(mock(&bad, &forged).is_err());
}

#[test]
fn unusable_rows_match_blinding_factors() {
    let params = crate::keys::dev_params(K);
    let vk = keygen_vk(&params, &FastCircuit::dummy(&shape(), usable_rows(K))).unwrap();
    assert_eq!(vk.cs().blinding_factors() + 1, UNUSABLE_ROWS);
    assert_eq!(vk.cs().degree(), 5, "extended domain 4n");
    assert_eq!(shape().min_k(UNUSABLE_ROWS), K);
}

#[test]
fn record_row_with_selector_off_fails_real_proof() {
    // A cheating synthesizer leaves `q_rec` off at a non-matching row and counts it. The
    // mock prover uses the circuit's own fixed columns, so it accepts; a real proof is made
    // against the honest proving key (fixed columns come from the key) and fails.
    let params = crate::keys::dev_params(K);
    let s = shape();
    let pk = keygen(&params, &s).unwrap();
    let recs = records(1);
    let q = query();
    let row = row_failing_only_below(&recs, &q, 0);
    let (honest_circuit, inst) = honest(&recs, &q);
    let proof = prove(&params, &pk, honest_circuit.clone(), &inst, OsRng).unwrap();
    assert!(verify(&params, pk.get_vk(), &inst, &proof));

    let mut bad = honest_circuit;
    bad.selector_off = Some(row);
    bad.assignment.matched[row] = Fr::ONE;
    let forged = resum(&mut bad, &q);
    assert_eq!(
        mock(&bad, &forged),
        Ok(()),
        "the mock prover trusts the circuit's selectors"
    );
    let proof = prove(&params, &pk, bad, &forged, OsRng).unwrap();
    assert!(!verify(&params, pk.get_vk(), &forged, &proof));
}

#[test]
fn data_commitment_is_identical_across_queries() {
    let params = crate::keys::dev_params(K);
    let s = shape();
    let pk = keygen(&params, &s).unwrap();
    let recs = records(2);
    let bytes = 64 * s.data_columns();
    let mut proofs = Vec::new();
    for (salt, q) in [
        (SALT, query()),
        (
            SALT,
            FastQuery {
                ranges: vec![(0, 31), (0, 3), (4, 30), (0, 15)],
            },
        ),
        ([8; 32], query()),
    ] {
        let circuit = FastCircuit::new(&s, usable_rows(K), &salt, &recs, &q);
        let inst = instances(&q, &evaluate(&s, &recs, &q));
        let rng = SeededRng::new(&salt, s.data_columns(), OsRng);
        let proof = prove(&params, &pk, circuit, &inst, rng).unwrap();
        assert!(verify(&params, pk.get_vk(), &inst, &proof));
        proofs.push(proof);
    }
    assert_eq!(
        proofs[0][..bytes],
        proofs[1][..bytes],
        "same data, same salt"
    );
    assert_ne!(proofs[0][bytes..], proofs[1][bytes..], "the rest is fresh");
    assert_ne!(
        proofs[0][..64],
        proofs[2][..64],
        "another salt masks differently"
    );
    // The query-dependent columns right after the data columns are not persistent.
    assert_ne!(proofs[0][bytes..bytes + 64], proofs[1][bytes..bytes + 64]);
}

mod match_table {
    //! Design B′ ([`super::table::TableCircuit`]): the same records and queries.
    use super::*;
    use crate::circuit::fast::table::{self, TableCircuit};

    const K_T: u32 = 7;

    fn honest_t(recs: &[Vec<u64>], q: &FastQuery) -> (TableCircuit, Vec<Fr>) {
        let s = shape();
        let circuit = TableCircuit::new(&s, usable_rows(K_T), &SALT, recs, q);
        (circuit, instances(q, &evaluate(&s, recs, q)))
    }

    fn mock_t(circuit: &TableCircuit, inst: &[Fr]) -> Result<(), Vec<VerifyFailure>> {
        MockProver::run(K_T, circuit, vec![inst.to_vec()])
            .expect("synthesis")
            .verify()
    }

    /// Running sums (and claimed results) consistent with forged match bits.
    fn resum_t(c: &mut TableCircuit, q: &FastQuery) -> Vec<Fr> {
        let a = &mut c.assignment;
        let (mut n, mut s, mut sq) = (Fr::ZERO, Fr::ZERO, Fr::ZERO);
        for row in 0..c.shape.capacity {
            let (m, v) = (a.matched[row], a.data[c.shape.stat + 1][row]);
            n += m;
            s += m * v;
            sq += m * v * v;
            a.sums[0][row] = n;
            a.sums[1][row] = s;
            a.sums[2][row] = sq;
        }
        let mut inst = instances(q, &evaluate(&c.shape, &[], q));
        let f = q.ranges.len();
        inst[2 * f..].copy_from_slice(&[n, s, sq]);
        inst
    }

    #[test]
    fn honest_witness_matches_plain_computation() {
        assert_eq!(table::min_k(&shape()), K_T);
        for seed in 0..3u64 {
            let recs = records(seed);
            let mut rng = ChaCha20Rng::seed_from_u64(200 + seed);
            let mut queries = vec![query()];
            for _ in 0..2 {
                let ranges = shape()
                    .widths
                    .iter()
                    .map(|w| {
                        let (a, b) = (rng.gen_range(0..1u64 << w), rng.gen_range(0..1u64 << w));
                        (a.min(b), a.max(b))
                    })
                    .collect();
                queries.push(FastQuery { ranges });
            }
            for q in &queries {
                let (circuit, inst) = honest_t(&recs, q);
                assert_eq!(mock_t(&circuit, &inst), Ok(()), "seed {seed}, {q:?}");
                let mut bad = inst.clone();
                bad[2 * shape().fields()] += Fr::ONE;
                assert!(mock_t(&circuit, &bad).is_err(), "wrong count");
            }
        }
    }

    #[test]
    fn forged_field_match_is_rejected() {
        // Record 3 fails only field 0 (1 < lo = 3): claiming m_0 = 1 looks up (1, 1, 1),
        // which is not in the table.
        let recs = records(1);
        let q = query();
        let row = row_failing_only_below(&recs, &q, 0);
        let (mut circuit, _) = honest_t(&recs, &q);
        let a = &mut circuit.assignment;
        a.field_match[0][row] = Fr::ONE;
        a.matched[row] = Fr::ONE;
        a.inv[row] = Fr::ZERO;
        let inst = resum_t(&mut circuit, &q);
        let errs = mock_t(&circuit, &inst).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| matches!(e, VerifyFailure::Lookup { .. })),
            "{errs:?}"
        );
    }

    #[test]
    fn forged_table_row_is_rejected() {
        // Flip the table's verdict for (field 0, value 1) so that record 3 would match: with
        // the below bit kept, the table gate fails; with it cleared, the difference lookup.
        let recs = records(1);
        let q = query();
        let row = row_failing_only_below(&recs, &q, 0);
        for clear_below in [false, true] {
            let (mut circuit, _) = honest_t(&recs, &q);
            let a = &mut circuit.assignment;
            a.t_m[1] = Fr::ONE;
            if clear_below {
                a.t_b[1] = Fr::ZERO;
            }
            a.field_match[0][row] = Fr::ONE;
            a.matched[row] = Fr::ONE;
            a.inv[row] = Fr::ZERO;
            let inst = resum_t(&mut circuit, &q);
            let errs = mock_t(&circuit, &inst).unwrap_err();
            if clear_below {
                assert!(
                    errs.iter()
                        .any(|e| matches!(e, VerifyFailure::Lookup { .. })),
                    "{errs:?}"
                );
            } else {
                assert!(constraint_failed(&errs), "{errs:?}");
            }
        }
        // A bound of the table that is not the public one.
        let (mut circuit, inst) = honest_t(&recs, &q);
        circuit.assignment.t_lo[0] = Fr::ZERO;
        assert!(mock_t(&circuit, &inst).is_err());
    }

    #[test]
    fn padding_rows_never_count() {
        let recs = records(1);
        let q = FastQuery {
            ranges: vec![(0, 31), (0, 3), (0, 31), (0, 15)],
        };
        let (mut circuit, inst) = honest_t(&recs, &q);
        assert_eq!(mock_t(&circuit, &inst), Ok(()));
        circuit.assignment.matched[35] = Fr::ONE;
        circuit.assignment.inv[35] = Fr::ZERO;
        let forged = resum_t(&mut circuit, &q);
        assert!(constraint_failed(&mock_t(&circuit, &forged).unwrap_err()));
    }

    #[test]
    fn value_wider_than_its_field_is_unprovable() {
        // Field 1 is 2 bits wide: a committed 4 has no table row, whatever the query.
        let mut recs = records(1);
        recs[0][1] = 4;
        let q = FastQuery {
            ranges: vec![(0, 31), (0, 31), (0, 31), (0, 15)],
        };
        let (circuit, inst) = honest_t(&recs, &q);
        assert!(mock_t(&circuit, &inst).is_err());
    }

    #[test]
    fn real_proofs_share_the_data_commitment() {
        let params = crate::keys::dev_params(K_T);
        let s = shape();
        let pk = keygen_circuit(&params, &TableCircuit::dummy(&s, usable_rows(K_T))).unwrap();
        let recs = records(2);
        let bytes = 64 * s.data_columns();
        let mut proofs = Vec::new();
        for q in [
            query(),
            FastQuery {
                ranges: vec![(0, 31), (0, 3), (4, 30), (0, 15)],
            },
        ] {
            let (circuit, inst) = honest_t(&recs, &q);
            let rng = SeededRng::new(&SALT, s.data_columns(), OsRng);
            let proof = prove(&params, &pk, circuit, &inst, rng).unwrap();
            assert!(verify(&params, pk.get_vk(), &inst, &proof));
            let mut bad = inst.clone();
            bad[2 * s.fields()] += Fr::ONE;
            assert!(!verify(&params, pk.get_vk(), &bad, &proof));
            proofs.push(proof);
        }
        assert_eq!(proofs[0][..bytes], proofs[1][..bytes]);
        assert_ne!(proofs[0][bytes..], proofs[1][bytes..]);
    }
}
