//! MockProver soundness tests and a real proof for the stratified fold circuit (issue #13:
//! one cell per stratum in one proof, each cell's floor and complementary suppression).

use halo2_base::halo2_proofs::{
    dev::{MockProver, VerifyFailure},
    halo2curves::{bn256::Fr, ff::Field},
};
use rand::{rngs::OsRng, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::commit::CommitError;
use super::fold::{
    evaluate_strata, lane_base, FoldCircuit, FoldParams, FoldQuery, ResultForgery, Strata,
    StrataResult, STRATA_CAPACITY,
};
use super::fold_tests::params;
use super::*;

const SALT: [u8; 32] = [7; 32];

/// Fields of 5, 2, 5 and 4 bits, then the `known` bits of fields 2 and 3; statistic 0 is
/// field 3 (nullable), statistic 1 field 0; strata: field 1's codes 0, 1 and 2 (code 3 is in
/// no stratum).
pub(super) fn strata_params(slots: usize) -> FoldParams {
    let mut p = params(slots);
    p.shape.widths.extend([1, 1]);
    p.shape.known = vec![None, None, Some(4), Some(5)];
    p.strata = Some(Strata { field: 1, count: 3 });
    p
}

/// Random records: `codes[v]` records of stratum code `v`, field 3 missing in about one in
/// five.
pub(super) fn with_codes(codes: &[usize], seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut recs = Vec::new();
    for (code, &n) in codes.iter().enumerate() {
        for _ in 0..n {
            let known = rng.gen_bool(0.8) as u64;
            let x = known * rng.gen_range(0..16);
            let r = vec![
                rng.gen_range(0..32),
                code as u64,
                rng.gen_range(0..32),
                x,
                1,
                known,
            ];
            recs.push(r);
        }
    }
    recs
}

/// Everything matches; statistic `stat`, floor `min_cohort`.
pub(super) fn everything(stat: usize, min_cohort: u64) -> FoldQuery {
    FoldQuery {
        ranges: vec![(0, 31), (0, 3), (0, 31), (0, 15), (0, 1), (0, 1)],
        stat,
        min_cohort,
        context: Fr::from(99),
        threshold: None,
    }
}

fn honest(p: &FoldParams, recs: &[Vec<u64>], q: &FoldQuery) -> (FoldCircuit, Vec<Fr>) {
    let c = FoldCircuit::new(p, p.min_k(), &SALT, recs, q).unwrap();
    (
        c,
        p.inputs().strata_instances(q, &evaluate_strata(p, recs, q)),
    )
}

/// A circuit whose results a cheating prover re-summed with `forge`, and its public inputs.
pub(super) fn forged(
    p: &FoldParams,
    recs: &[Vec<u64>],
    q: &FoldQuery,
    forge: ResultForgery,
) -> (FoldCircuit, Vec<Fr>) {
    let mut c = FoldCircuit::new(p, p.min_k(), &SALT, recs, q).unwrap();
    let inst = c.resum(q, forge);
    (c, inst)
}

/// The MockProver's verdict on `c` with public inputs `inst`.
pub(super) fn mock(c: &FoldCircuit, inst: &[Fr]) -> Result<(), Vec<VerifyFailure>> {
    MockProver::run(c.params.min_k(), c, vec![inst.to_vec()])
        .expect("synthesis")
        .verify()
}

fn suppressed(r: &StrataResult) -> Vec<bool> {
    r.cells.iter().map(|c| c.suppressed).collect()
}

#[test]
fn each_stratum_is_a_cell_of_the_plain_computation() {
    for slots in [1, 2] {
        let p = strata_params(slots);
        let layout = p.inputs();
        for seed in 0..3u64 {
            let mut rng = ChaCha20Rng::seed_from_u64(50 + seed);
            let codes: Vec<usize> = (0..4).map(|_| rng.gen_range(0..12)).collect();
            let recs = with_codes(&codes, seed);
            for stat in [0, 1] {
                let mut q = everything(stat, rng.gen_range(0..6));
                q.ranges[0] = (rng.gen_range(0..8), rng.gen_range(16..32));
                let (c, inst) = honest(&p, &recs, &q);
                assert_eq!(mock(&c, &inst), Ok(()), "W {slots}, seed {seed}, {q:?}");
                // The cells are the strata's, whatever their disclosure.
                let want = evaluate_strata(&p, &recs, &q);
                assert_eq!(want.cells.len(), 3);
                for i in layout.records()..layout.len() {
                    let mut bad = inst.clone();
                    bad[i] += Fr::ONE;
                    assert!(mock(&c, &bad).is_err(), "output {i} not bound");
                }
            }
        }
    }
}

#[test]
fn cells_equal_the_records_per_stratum() {
    // No floor: each cell is its stratum's tallies, code 3 in none.
    let p = strata_params(2);
    let recs = with_codes(&[6, 4, 9, 5], 3);
    let q = everything(1, 0);
    let r = evaluate_strata(&p, &recs, &q);
    for (v, cell) in r.cells.iter().enumerate() {
        let mine: Vec<&Vec<u64>> = recs.iter().filter(|r| r[1] == v as u64).collect();
        assert_eq!(cell.count, mine.len() as u64);
        assert_eq!(cell.sum, mine.iter().map(|r| r[0]).sum::<u64>());
        assert_eq!(
            cell.sum_squares,
            mine.iter().map(|r| r[0] * r[0]).sum::<u64>()
        );
    }
    let (c, inst) = honest(&p, &recs, &q);
    assert_eq!(mock(&c, &inst), Ok(()));
}

#[test]
fn the_smallest_other_cell_is_suppressed_with_a_small_one() {
    let p = strata_params(2);
    // Floor 5: cell 1 (2 records) is small; of cells 0 (12) and 2 (8), 2 is the complement.
    let cases: [(&[usize], [bool; 3]); 5] = [
        (&[12, 2, 8, 3], [false, true, true]),
        // Equal candidates: the lowest code.
        (&[8, 2, 8, 0], [true, true, false]),
        // An empty cell is no complement (suppressing it hides nothing).
        (&[0, 2, 9, 0], [false, true, true]),
        // Two small cells protect each other.
        (&[3, 2, 9, 0], [true, true, false]),
        // Nothing small: nothing suppressed.
        (&[5, 6, 0, 1], [false, false, false]),
    ];
    for (codes, want) in cases {
        let recs = with_codes(codes, 1);
        let q = everything(1, 5);
        let r = evaluate_strata(&p, &recs, &q);
        assert_eq!(suppressed(&r), want, "{codes:?}");
        for cell in r.cells.iter().filter(|c| c.suppressed) {
            assert_eq!((cell.count, cell.sum, cell.sum_squares), (0, 0, 0));
        }
        let (c, inst) = honest(&p, &recs, &q);
        assert_eq!(mock(&c, &inst), Ok(()), "{codes:?}");
    }
}

#[test]
fn a_wrong_complement_has_no_proof() {
    let p = strata_params(2);
    let recs = with_codes(&[12, 2, 8, 3], 1);
    let q = everything(1, 5);
    // Honest: cell 2. None, the larger cell 0, and the small cell itself are refused.
    for second in [None, Some(0), Some(1)] {
        let forge = ResultForgery {
            secondary: Some(second),
            ..Default::default()
        };
        let (c, inst) = forged(&p, &recs, &q, forge);
        assert!(mock(&c, &inst).is_err(), "complement {second:?} accepted");
    }
    // With no small cell, no complement either.
    let recs = with_codes(&[7, 6, 8, 0], 1);
    let forge = ResultForgery {
        secondary: Some(Some(1)),
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, forge);
    assert!(mock(&c, &inst).is_err(), "a complement with nothing small");
}

#[test]
fn a_small_cell_cannot_be_released() {
    let p = strata_params(2);
    let recs = with_codes(&[12, 2, 8, 3], 1);
    let q = everything(1, 5);
    for forge in [
        ResultForgery {
            lt: Some(false),
            stratum: 1,
            ..Default::default()
        },
        ResultForgery {
            zero: Some(true),
            stratum: 1,
            ..Default::default()
        },
        ResultForgery {
            unbounded_bits: true,
            stratum: 1,
            ..Default::default()
        },
    ] {
        let (c, inst) = forged(&p, &recs, &q, forge);
        assert!(mock(&c, &inst).is_err(), "{forge:?} accepted");
    }
    // A large cell cannot be called small either.
    let forge = ResultForgery {
        lt: Some(true),
        stratum: 0,
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, forge);
    assert!(mock(&c, &inst).is_err());
}

#[test]
fn a_mean_over_few_values_in_a_cell_is_suppressed() {
    // Cell 0 has 9 records of which only 2 have the statistic: small by its N.
    let p = strata_params(2);
    let mut recs = with_codes(&[9, 10, 12, 0], 4);
    for (i, r) in recs.iter_mut().filter(|r| r[1] == 0).enumerate() {
        let known = (i < 2) as u64;
        r[5] = known;
        r[3] *= known;
    }
    let q = everything(0, 5);
    let r = evaluate_strata(&p, &recs, &q);
    assert!(r.cells[0].suppressed && r.cells[0].count == 0);
    assert_eq!(r.cells.iter().filter(|c| c.suppressed).count(), 2);
    let (c, inst) = honest(&p, &recs, &q);
    assert_eq!(mock(&c, &inst), Ok(()));
}

#[test]
fn the_lane_split_is_bound() {
    let p = strata_params(2);
    let recs = with_codes(&[12, 7, 8, 3], 1);
    let q = everything(1, 5);
    for (v, n) in [(0, 11), (1, 8), (2, 0)] {
        let forge = ResultForgery {
            lane_count: Some((v, n)),
            ..Default::default()
        };
        let (c, inst) = forged(&p, &recs, &q, forge);
        assert!(mock(&c, &inst).is_err(), "cell {v} split as {n}");
    }
}

#[test]
fn a_record_counts_in_its_own_stratum_only() {
    let p = strata_params(2);
    let recs = with_codes(&[12, 7, 8, 3], 1);
    let q = everything(1, 5);
    let r = p.rows_per_record();
    // Field 1 is slot 2: row 1 of the record at W = 2.
    let row = |i: usize| i * r + 1;
    let base = lane_base();
    // Record 0 (code 0) counted in stratum 1 as well, in stratum 1 instead, or in none;
    // record 30 (code 3) counted in stratum 0.
    let tampered = [(0, Fr::ONE + base), (0, base), (0, Fr::ZERO), (30, Fr::ONE)];
    for (i, lambda) in tampered {
        let mut c = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
        c.assignment.lambda[row(i)] = lambda;
        let inst = c.resum(&q, ResultForgery::default());
        let failed = matches!(mock(&c, &inst),
            Err(e) if e.iter().any(|f| matches!(f, VerifyFailure::Lookup { .. })));
        assert!(failed, "record {i} with λ {lambda:?}");
    }
}

#[test]
fn bad_strata_are_refused() {
    let recs = with_codes(&[1, 1, 1, 1], 0);
    let cases: [(Strata, usize); 4] = [
        (Strata { field: 1, count: 1 }, 40),
        (Strata { field: 1, count: 5 }, 40),
        (Strata { field: 9, count: 2 }, 40),
        (Strata { field: 4, count: 3 }, 40),
    ];
    for (strata, capacity) in cases {
        let mut p = strata_params(2);
        p.strata = Some(strata);
        p.shape.capacity = capacity;
        let err = FoldCircuit::new(&p, 12, &SALT, &recs, &everything(1, 0)).unwrap_err();
        assert!(
            matches!(
                err,
                CommitError::StrataCount { .. }
                    | CommitError::StrataNotAField { .. }
                    | CommitError::StrataBeyondField { .. }
            ),
            "{strata:?}: {err}"
        );
    }
    let mut p = strata_params(2);
    p.shape.capacity = STRATA_CAPACITY;
    assert!(matches!(
        p.check(21, &recs),
        Err(CommitError::StrataCapacity { .. })
    ));
}

#[test]
fn the_unstratified_layout_is_unchanged() {
    // One cell: the layout every deployed verifier reads.
    let p = params(2);
    let layout = p.inputs();
    assert_eq!(layout.cells(), 1);
    assert_eq!(layout.len(), layout.records() + 6);
    assert_eq!(layout.suppressed(), layout.count() + 4);
    let s = strata_params(2).inputs();
    assert_eq!(s.len(), s.records() + 1 + 5 * 3);
    assert_eq!(s.cell(2).suppressed, s.len() - 1);
}

#[test]
fn a_real_stratified_proof_verifies_and_binds_every_cell() {
    let p = strata_params(2);
    let recs = with_codes(&[12, 2, 8, 3], 5);
    let q = everything(0, 5);
    let k = p.min_k();
    let kp = crate::keys::dev_params(k);
    let pk = keygen_circuit(&kp, &FoldCircuit::dummy(&p, k).unwrap()).unwrap();
    let (c, inst) = honest(&p, &recs, &q);
    let rng = SeededRng::with_unusable(&SALT, p.slots, p.unusable_rows(), OsRng);
    let proof = prove(&kp, &pk, c, &inst, rng).unwrap();
    assert!(verify(&kp, pk.get_vk(), &inst, &proof));
    let layout = p.inputs();
    for v in 0..3 {
        let at = layout.cell(v);
        for i in [at.count, at.sum, at.suppressed] {
            let mut bad = inst.clone();
            bad[i] += Fr::ONE;
            assert!(!verify(&kp, pk.get_vk(), &bad, &proof), "input {i}");
        }
    }
    // The data columns commit as in every proof over these records.
    let commitment = commit::data_commitment(&kp, &p, &SALT, &recs).unwrap();
    assert_eq!(proof[..64 * p.slots], commitment.to_proof_bytes()[..]);
}

#[test]
fn a_shape_with_no_nullable_statistic_has_the_same_rules() {
    // Statistic field 0 only: each cell's floor is its count's.
    let mut p = strata_params(2);
    p.stats = vec![0];
    let q = everything(0, 5);
    for (codes, want) in [
        (&[12, 2, 8, 3][..], [false, true, true]),
        (&[3, 2, 9, 0][..], [true, true, false]),
    ] {
        let recs = with_codes(codes, 2);
        let r = evaluate_strata(&p, &recs, &q);
        assert_eq!(suppressed(&r), want, "{codes:?}");
        let (c, inst) = honest(&p, &recs, &q);
        assert_eq!(mock(&c, &inst), Ok(()), "{codes:?}");
    }
    let recs = with_codes(&[12, 2, 8, 3], 2);
    let forge = ResultForgery {
        lt: Some(false),
        stratum: 1,
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, forge);
    assert!(mock(&c, &inst).is_err(), "a small cell released");
}

#[test]
fn strata_of_a_nullable_field_need_its_known_bit_asked() {
    // Strata by field 2, which may be missing (its known bit is field 4): a missing value is
    // stored as code 0, so a query that does not ask the known bit is refused.
    let mut p = strata_params(2);
    p.strata = Some(Strata { field: 2, count: 2 });
    let recs = with_codes(&[12, 12], 3);
    let mut q = everything(1, 5);
    assert!(matches!(
        p.check_query(&q),
        Err(CommitError::StrataKnownNotAsked { field: 2, known: 4 })
    ));
    assert!(FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).is_err());
    q.ranges[4] = (1, 1);
    p.check_query(&q).unwrap();
    // Key generation's all-padding witness asks it too.
    FoldCircuit::dummy(&p, p.min_k()).unwrap();
}
