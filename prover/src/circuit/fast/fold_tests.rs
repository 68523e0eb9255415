//! MockProver soundness tests and small real proofs for design N(W) ([`super::fold`]).

use halo2_base::halo2_proofs::{
    dev::{MockProver, VerifyFailure},
    halo2curves::{bn256::Fr, ff::Field},
};
use rand::{rngs::OsRng, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::fold::{evaluate, FoldCircuit, FoldParams, FoldQuery, ResultForgery};
use super::*;

const SALT: [u8; 32] = [9; 32];

/// Four fields of 5, 2, 5 and 4 bits, statistics fields 3 and 0, 40 record slots, 8 masking
/// rows.
fn params(slots: usize) -> FoldParams {
    FoldParams {
        shape: FastShape {
            widths: vec![5, 2, 5, 4],
            capacity: 40,
            mask_rows: 8,
        },
        slots,
        stats: vec![3, 0],
    }
}

/// 30 records (10 padding slots); record 3 fails [`query`] only by field 0, record 4 only by
/// field 3.
fn records(seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let widths = params(1).shape.widths;
    let mut recs: Vec<Vec<u64>> = (0..30)
        .map(|_| widths.iter().map(|w| rng.gen_range(0..1u64 << w)).collect())
        .collect();
    recs[3] = vec![1, 1, 9, 6];
    recs[4] = vec![5, 1, 9, 13];
    recs
}

/// A query over `ranges` releasing statistic 0 (field 3), cell floor 3, context 77.
fn ranged(ranges: Vec<(u64, u64)>) -> FoldQuery {
    FoldQuery {
        ranges,
        stat: 0,
        min_cohort: 3,
        context: Fr::from(77),
    }
}

fn query() -> FoldQuery {
    ranged(vec![(3, 20), (1, 1), (0, 31), (2, 12)])
}

fn honest(p: &FoldParams, recs: &[Vec<u64>], q: &FoldQuery) -> (FoldCircuit, Vec<Fr>) {
    let rows = p.usable_rows(p.min_k());
    let circuit = FoldCircuit::new(p, rows, &SALT, recs, q);
    (circuit, p.inputs().instances(q, &evaluate(p, recs, q)))
}

/// The public indices of every output (records, count, sums, suppressed).
fn outputs(p: &FoldParams) -> std::ops::Range<usize> {
    p.inputs().records()..p.inputs().len()
}

/// Whether a lookup failed (the predicate lives in the lookups).
fn lookup_failed(r: Result<(), Vec<VerifyFailure>>) -> bool {
    matches!(r, Err(e) if e.iter().any(|f| matches!(f, VerifyFailure::Lookup { .. })))
}

/// Whether a gate of the match table failed.
fn table_gate_failed(r: Result<(), Vec<VerifyFailure>>) -> bool {
    matches!(r, Err(e) if e.iter().any(|f| matches!(f,
        VerifyFailure::ConstraintNotSatisfied { constraint, .. }
            if format!("{constraint:?}").contains("match table"))))
}

fn mock(circuit: &FoldCircuit, inst: &[Fr]) -> Result<(), Vec<VerifyFailure>> {
    MockProver::run(circuit.params.min_k(), circuit, vec![inst.to_vec()])
        .expect("synthesis")
        .verify()
}

/// Running sums and claimed results consistent with (possibly forged) slot bits, as a
/// cheating prover would keep them.
fn resum(c: &mut FoldCircuit, q: &FoldQuery) -> Vec<Fr> {
    c.resum(q, ResultForgery::default())
}

/// `(row, column)` of slot `s` of record `i`.
fn at(p: &FoldParams, i: usize, s: usize) -> (usize, usize) {
    (i * p.rows_per_record() + s / p.slots, s % p.slots)
}

#[test]
fn honest_witness_matches_plain_computation() {
    for slots in [1, 2] {
        let p = params(slots);
        for seed in 0..2u64 {
            let recs = records(seed);
            let mut rng = ChaCha20Rng::seed_from_u64(300 + seed);
            let mut queries = vec![query()];
            for _ in 0..2 {
                let ranges = p
                    .shape
                    .widths
                    .iter()
                    .map(|w| {
                        let (a, b) = (rng.gen_range(0..1u64 << w), rng.gen_range(0..1u64 << w));
                        (a.min(b), a.max(b))
                    })
                    .collect();
                queries.push(ranged(ranges));
            }
            for q in &queries {
                let (circuit, inst) = honest(&p, &recs, q);
                assert_eq!(
                    mock(&circuit, &inst),
                    Ok(()),
                    "W {slots}, seed {seed}, {q:?}"
                );
                for i in outputs(&p) {
                    let mut bad = inst.clone();
                    bad[i] += Fr::ONE;
                    assert!(mock(&circuit, &bad).is_err(), "result {i} not bound");
                }
                let mut bad = inst.clone();
                bad[0] += Fr::ONE;
                assert!(mock(&circuit, &bad).is_err(), "bound not bound");
            }
        }
    }
}

#[test]
fn failed_record_cannot_be_revived() {
    // Record 3 fails at field 0 (slot 1): a prover sets its later bits to 1.
    for slots in [1, 2] {
        let p = params(slots);
        let recs = records(1);
        let (mut c, _) = honest(&p, &recs, &query());
        for s in 1..p.rows_per_record() * slots {
            let (row, col) = at(&p, 3, s);
            c.assignment.bits[col][row] = Fr::ONE;
        }
        let inst = resum(&mut c, &query());
        assert!(lookup_failed(mock(&c, &inst)), "W {slots}");
        // Only the last slot, or only the failing slot, forged: rejected too.
        for s in [1, p.rows_per_record() * slots - 1] {
            let (mut c, _) = honest(&p, &recs, &query());
            let (row, col) = at(&p, 3, s);
            c.assignment.bits[col][row] = Fr::ONE;
            let inst = resum(&mut c, &query());
            assert!(lookup_failed(mock(&c, &inst)), "W {slots}, slot {s}");
        }
    }
}

#[test]
fn matching_record_cannot_be_dropped() {
    let p = params(2);
    let recs = records(1);
    let q = query();
    let i = (0..recs.len())
        .find(|&i| {
            recs[i]
                .iter()
                .zip(&q.ranges)
                .all(|(v, (lo, hi))| lo <= v && v <= hi)
        })
        .expect("a matching record");
    let (mut c, _) = honest(&p, &recs, &q);
    let (row, col) = at(&p, i, p.rows_per_record() * 2 - 1);
    c.assignment.bits[col][row] = Fr::ZERO;
    let inst = resum(&mut c, &q);
    assert!(lookup_failed(mock(&c, &inst)));
}

#[test]
fn padding_never_counts() {
    let p = params(2);
    let recs = records(0);
    let (mut c, _) = honest(&p, &recs, &query());
    // Record slot 35 is padding (present = 0): claim it matches with in-range zeros... whose
    // present bit is 0, so (2, 0) → 0 and every later key is the failed block.
    for s in 0..p.rows_per_record() * 2 {
        let (row, col) = at(&p, 35, s);
        c.assignment.bits[col][row] = Fr::ONE;
    }
    let inst = resum(&mut c, &query());
    assert!(lookup_failed(mock(&c, &inst)));
}

#[test]
fn value_wider_than_its_field_is_unprovable() {
    // Field 1 is 2 bits wide: 4 in a record that still matches at that slot.
    let p = params(2);
    let mut recs = records(0);
    recs[0] = vec![5, 4, 9, 6];
    let q = ranged(vec![(0, 31), (0, 3), (0, 31), (0, 15)]);
    let (c, inst) = honest(&p, &recs, &q);
    assert!(lookup_failed(mock(&c, &inst)));
}

#[test]
fn forged_table_windows_are_rejected() {
    let p = params(2);
    let recs = records(0);
    let q = query();
    let first = p.field_value_rows()[0];
    let (lo, hi) = q.ranges[0];
    let windows: [(u64, u64); 3] = [(lo + 1, hi + 1), (lo, hi + 1), (lo + 1, hi)];
    for (wlo, whi) in windows {
        let (mut c, _) = honest(&p, &recs, &q);
        let a = &mut c.assignment;
        let mut cm = Fr::from(lo) - Fr::ONE - Fr::from(hi);
        for v in 0..32u64 {
            let m = wlo <= v && v <= whi;
            cm += Fr::from(m as u64);
            a.t_m[first + v as usize] = Fr::from(m as u64);
            a.cm[first + v as usize] = cm;
        }
        // Bits and sums consistent with the forged window.
        let pp = c.params.clone();
        for (i, rec) in recs.iter().enumerate() {
            let mut ok = true;
            for s in 0..pp.rows_per_record() * 2 {
                ok &= match s {
                    0 => true,
                    1 => wlo <= rec[0] && rec[0] <= whi,
                    s if s <= 4 => {
                        let (l, h) = q.ranges[s - 1];
                        l <= rec[s - 1] && rec[s - 1] <= h
                    }
                    _ => true,
                };
                let (row, col) = at(&pp, i, s);
                c.assignment.bits[col][row] = Fr::from(ok as u64);
            }
        }
        let inst = resum(&mut c, &q);
        assert!(table_gate_failed(mock(&c, &inst)), "window {wlo}..={whi}");
    }
    // An empty window (claims no record is in range).
    let (mut c, _) = honest(&p, &recs, &q);
    for v in 0..32 {
        c.assignment.t_m[first + v] = Fr::ZERO;
        c.assignment.cm[first + v] = Fr::from(lo) - Fr::ONE - Fr::from(hi);
    }
    for i in 0..recs.len() {
        for s in 1..6 {
            let (row, col) = at(&p, i, s);
            c.assignment.bits[col][row] = Fr::ZERO;
        }
    }
    let inst = resum(&mut c, &q);
    assert!(table_gate_failed(mock(&c, &inst)), "empty window");
}

#[test]
fn real_proofs_share_the_data_commitment() {
    let p = params(2);
    let k = p.min_k();
    let kp = crate::keys::dev_params(k);
    let pk = keygen_circuit(&kp, &FoldCircuit::dummy(&p, p.usable_rows(k))).unwrap();
    let recs = records(2);
    let bytes = 64 * p.slots;
    let mut proofs = Vec::new();
    for q in [query(), ranged(vec![(0, 31), (0, 3), (4, 30), (0, 15)])] {
        let (circuit, inst) = honest(&p, &recs, &q);
        let rng = SeededRng::with_unusable(&SALT, p.slots, p.unusable_rows(), OsRng);
        let proof = prove(&kp, &pk, circuit, &inst, rng).unwrap();
        assert!(verify(&kp, pk.get_vk(), &inst, &proof));
        let layout = p.inputs();
        for i in [layout.count(), layout.sum(), layout.context()] {
            let mut bad = inst.clone();
            bad[i] += Fr::ONE;
            assert!(
                !verify(&kp, pk.get_vk(), &bad, &proof),
                "input {i} not bound"
            );
        }
        proofs.push(proof);
    }
    assert_eq!(proofs[0][..bytes], proofs[1][..bytes]);
    assert_ne!(proofs[0][bytes..], proofs[1][bytes..]);
}

#[test]
fn forged_constant_rows_are_rejected() {
    // The failed block says 1 for record 3's field-0 value: revives the failed record.
    let p = params(2);
    let recs = records(1);
    let widest = 32; // 2^5 values in the failed block, from row 1
    let (mut c, _) = honest(&p, &recs, &query());
    let v = recs[3][2] as usize; // slot 3 (field 2) is looked up in the failed block
    c.assignment.t_m[1 + v] = Fr::ONE;
    let r = table_gate_failed_named(mock(&c, &query_inst(&p, &recs)), "constant table rows");
    assert!(r, "failed block");
    // The present block says padding (present = 0) matches.
    let (mut c, _) = honest(&p, &recs, &query());
    c.assignment.t_m[1 + widest] = Fr::ONE;
    let r = table_gate_failed_named(mock(&c, &query_inst(&p, &recs)), "constant table rows");
    assert!(r, "present block");
}

fn query_inst(p: &FoldParams, recs: &[Vec<u64>]) -> Vec<Fr> {
    p.inputs().instances(&query(), &evaluate(p, recs, &query()))
}

/// Whether the named gate failed.
fn table_gate_failed_named(r: Result<(), Vec<VerifyFailure>>, name: &str) -> bool {
    matches!(r, Err(e) if e.iter().any(|f| matches!(f,
        VerifyFailure::ConstraintNotSatisfied { constraint, .. }
            if format!("{constraint:?}").contains(name))))
}

/// Whether the results region refused the witness (a gate of it, or its wiring).
fn results_refused(r: Result<(), Vec<VerifyFailure>>) -> bool {
    matches!(r, Err(e) if e.iter().any(|f| match f {
        VerifyFailure::ConstraintNotSatisfied { constraint, .. } => {
            format!("{constraint:?}").contains("results")
        }
        VerifyFailure::Permutation { .. } => true,
        _ => false,
    }))
}

/// A query matching exactly `n` of [`records`]`(1)` (field 0 in `0..=hi` for some `hi`).
fn query_matching(n: usize, min_cohort: u64) -> Option<FoldQuery> {
    let recs = records(1);
    (0..32).find_map(|hi| {
        let mut q = ranged(vec![(0, hi), (0, 3), (0, 31), (0, 15)]);
        q.min_cohort = min_cohort;
        (recs.iter().filter(|r| r[0] <= hi).count() == n).then_some(q)
    })
}

#[test]
fn small_cells_are_suppressed_and_nothing_else_is() {
    let p = params(2);
    let recs = records(1);
    let layout = p.inputs();
    // Find a cohort of 1..=5 matching records and set the floor just above it.
    let q = (1..=5)
        .find_map(|n| query_matching(n, n as u64 + 1))
        .expect("a small cohort");
    let (c, inst) = honest(&p, &recs, &q);
    assert_eq!(mock(&c, &inst), Ok(()));
    assert_eq!(inst[layout.suppressed()], Fr::ONE);
    for (i, v) in inst.iter().enumerate() {
        if (layout.count()..layout.suppressed()).contains(&i) {
            assert_eq!(*v, Fr::ZERO, "suppressed output {i} released");
        }
    }
    // The true answer in the instance, with a prover that claims `C ≥ k`.
    let mut released = q.clone();
    released.min_cohort = 0;
    let truth = p.inputs().instances(&q, &evaluate(&p, &recs, &released));
    assert!(mock(&c, &truth).is_err(), "unsuppressed claim accepted");
    let rows = p.usable_rows(p.min_k());
    let forge = ResultForgery {
        lt: Some(false),
        ..Default::default()
    };
    let mut cheat = FoldCircuit::forged(&p, rows, &SALT, &recs, &q, forge);
    let claimed = cheat.resum(&q, forge);
    assert_eq!(
        claimed[layout.suppressed()],
        Fr::ZERO,
        "the forgery releases"
    );
    assert!(results_refused(mock(&cheat, &claimed)), "forged comparison");
    // Claiming zero matches to escape the floor.
    let forge = ResultForgery {
        zero: Some(true),
        ..Default::default()
    };
    let mut cheat = FoldCircuit::forged(&p, rows, &SALT, &recs, &q, forge);
    let claimed = cheat.resum(&q, forge);
    assert!(results_refused(mock(&cheat, &claimed)), "forged zero test");
    // Claiming `C ≥ k` with comparison "bits" that are not bits: only booleanity stops it.
    let forge = ResultForgery {
        lt: Some(false),
        unbounded_bits: true,
        ..Default::default()
    };
    let mut cheat = FoldCircuit::forged(&p, rows, &SALT, &recs, &q, forge);
    let claimed = cheat.resum(&q, forge);
    assert_eq!(
        claimed[layout.suppressed()],
        Fr::ZERO,
        "the forgery releases"
    );
    let failures = mock(&cheat, &claimed).unwrap_err();
    assert!(
        failures.iter().all(|f| matches!(f,
            VerifyFailure::ConstraintNotSatisfied { constraint, .. }
                if format!("{constraint:?}").contains("results"))),
        "only the bit gate should catch it: {failures:?}"
    );

    // At or above the floor: released, and a prover cannot hide it as suppressed.
    let mut q2 = q.clone();
    q2.min_cohort -= 1;
    let (c, inst) = honest(&p, &recs, &q2);
    assert_eq!(mock(&c, &inst), Ok(()));
    assert_eq!(inst[layout.suppressed()], Fr::ZERO);
    assert_ne!(inst[layout.count()], Fr::ZERO);
    let forge = ResultForgery {
        lt: Some(true),
        ..Default::default()
    };
    let mut cheat = FoldCircuit::forged(&p, rows, &SALT, &recs, &q2, forge);
    let claimed = cheat.resum(&q2, forge);
    assert_eq!(claimed[layout.suppressed()], Fr::ONE, "the forgery hides");
    assert!(
        results_refused(mock(&cheat, &claimed)),
        "forged suppression"
    );
}

#[test]
fn empty_cohort_is_released_as_zero() {
    let p = params(1);
    let recs = records(0);
    let q = ranged(vec![(31, 31), (3, 3), (31, 31), (15, 15)]);
    let (c, inst) = honest(&p, &recs, &q);
    assert_eq!(evaluate(&p, &recs, &q).count, 0);
    assert_eq!(mock(&c, &inst), Ok(()));
    assert_eq!(inst[p.inputs().suppressed()], Fr::ZERO);
}

#[test]
fn the_statistic_is_the_one_named() {
    let p = params(2);
    let recs = records(1);
    let layout = p.inputs();
    let mut q = query();
    q.min_cohort = 0;
    for stat in 0..2 {
        q.stat = stat;
        let (c, inst) = honest(&p, &recs, &q);
        assert_eq!(mock(&c, &inst), Ok(()), "statistic {stat}");
        // The other statistic's sums under this index: refused.
        let mut other = q.clone();
        other.stat = 1 - stat;
        let theirs = evaluate(&p, &recs, &other);
        assert_ne!(theirs.sum, evaluate(&p, &recs, &q).sum);
        let mut bad = inst.clone();
        bad[layout.sum()] = Fr::from(theirs.sum);
        bad[layout.sum_squares()] = Fr::from(theirs.sum_squares);
        assert!(mock(&c, &bad).is_err(), "statistic {stat} swapped");
        // The other index with this proof's witness: refused.
        let mut bad = inst.clone();
        bad[layout.stat()] = Fr::from(1 - stat as u64);
        assert!(results_refused(mock(&c, &bad)), "index {stat} swapped");
    }
    // An index outside `stats` has no proof.
    q.stat = 2;
    let rows = p.usable_rows(p.min_k());
    let c = FoldCircuit::new(&p, rows, &SALT, &recs, &q);
    let mut inst = layout.instances(
        &q,
        &evaluate(&p, &recs, &{
            let mut q0 = q.clone();
            q0.stat = 0;
            q0
        }),
    );
    inst[layout.sum()] = Fr::ZERO;
    inst[layout.sum_squares()] = Fr::ZERO;
    assert!(
        results_refused(mock(&c, &inst)),
        "index beyond the statistics"
    );
    assert_eq!(inst[layout.records()], Fr::from(recs.len() as u64));
}

#[test]
fn a_floor_beyond_the_comparison_has_no_proof() {
    let p = params(2);
    let recs = records(1);
    let mut q = query();
    q.min_cohort = (1 << 32) + 100;
    let (c, inst) = honest(&p, &recs, &q);
    assert!(results_refused(mock(&c, &inst)));
}

#[test]
fn records_total_is_bound() {
    let p = params(2);
    let recs = records(1);
    let (c, inst) = honest(&p, &recs, &query());
    let mut bad = inst;
    bad[p.inputs().records()] -= Fr::ONE;
    assert!(mock(&c, &bad).is_err());
}

mod property {
    //! Random datasets and queries: the proven results are the plain computation's, and
    //! nothing else is.
    use proptest::prelude::*;

    use super::*;

    fn dataset() -> impl Strategy<Value = Vec<Vec<u64>>> {
        let widths = params(1).shape.widths;
        let record = widths
            .iter()
            .map(|w| 0..1u64 << w)
            .collect::<Vec<_>>()
            .prop_map(|r| r);
        proptest::collection::vec(record, 0..=40)
    }

    fn queries() -> impl Strategy<Value = FoldQuery> {
        let widths = params(1).shape.widths;
        let ranges = widths
            .iter()
            .map(|w| (0..1u64 << w, 0..1u64 << w).prop_map(|(a, b)| (a.min(b), a.max(b))))
            .collect::<Vec<_>>();
        (ranges, 0usize..2, 0u64..12).prop_map(|(ranges, stat, min_cohort)| FoldQuery {
            ranges,
            stat,
            min_cohort,
            context: Fr::from(min_cohort + 1000),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn proven_results_are_the_plain_computation(
            recs in dataset(), q in queries(), slots in 1usize..=2, which in 0usize..5,
        ) {
            let p = params(slots);
            let (circuit, inst) = honest(&p, &recs, &q);
            prop_assert_eq!(mock(&circuit, &inst), Ok(()));
            let mut bad = inst.clone();
            bad[p.inputs().records() + which] += Fr::ONE;
            prop_assert!(mock(&circuit, &bad).is_err());
        }
    }
}
