//! MockProver soundness tests and small real proofs for design N(W) ([`super::fold`]).

use halo2_base::halo2_proofs::{
    dev::{MockProver, VerifyFailure},
    halo2curves::{bn256::Fr, ff::Field},
};
use rand::{rngs::OsRng, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::commit::CommitError;
use super::fold::{
    evaluate, pack_bounds, FoldCircuit, FoldParams, FoldQuery, FoldResult, ResultForgery,
    BOUND_BITS,
};
use super::*;

const SALT: [u8; 32] = [9; 32];

/// Four fields of 5, 2, 5 and 4 bits, statistics fields 3 and 0, 40 record slots, 8 masking
/// rows (also the commitment tests' shape).
pub(super) fn params(slots: usize) -> FoldParams {
    FoldParams {
        shape: FastShape {
            widths: vec![5, 2, 5, 4],
            capacity: 40,
            mask_rows: 8,
            known: vec![],
            purposes: None,
        },
        slots,
        stats: vec![3, 0],
        strata: None,
        attestation: false,
        rounding: None,
        dominance: None,
    }
}

/// [`params`] with fields 2 and 3 nullable, their `known` bits in fields 4 and 5: statistic 0
/// (field 3) skips missing values, statistic 1 (field 0) is not nullable.
fn nullable_params(slots: usize) -> FoldParams {
    let mut p = params(slots);
    p.shape.widths.extend([1, 1]);
    p.shape.known = vec![None, None, Some(4), Some(5)];
    p
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
        threshold: None,
    }
}

fn query() -> FoldQuery {
    ranged(vec![(3, 20), (1, 1), (0, 31), (2, 12)])
}

fn honest(p: &FoldParams, recs: &[Vec<u64>], q: &FoldQuery) -> (FoldCircuit, Vec<Fr>) {
    let circuit = FoldCircuit::new(p, p.min_k(), &SALT, recs, q).unwrap();
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
    assert_eq!(
        FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).err(),
        Some(CommitError::ValueTooWide {
            record: 0,
            field: 1,
            width: 2
        })
    );
    // A prover that writes it into the witness anyway.
    recs[0] = vec![5, 3, 9, 6];
    let (mut c, _) = honest(&p, &recs, &q);
    let (row, col) = at(&p, 0, 2);
    c.assignment.data[col][row] = Fr::from(4);
    let inst = resum(&mut c, &q);
    assert!(lookup_failed(mock(&c, &inst)));
}

/// What the constructor refuses instead of panicking: a query with the wrong number of
/// ranges, a consent purpose wider than one bit, a field over 16 bits, too many records, a
/// `k` too small (and a key-generation witness of such params).
#[test]
fn bad_input_is_refused() {
    let p = params(2);
    let (k, recs) = (p.min_k(), records(0));
    let new = |p: &FoldParams, k: u32, recs: &[Vec<u64>], q: &FoldQuery| {
        FoldCircuit::new(p, k, &SALT, recs, q).err()
    };
    let mut short = query();
    short.ranges.pop();
    assert_eq!(
        new(&p, k, &recs, &short),
        Some(CommitError::RangeCount {
            expected: 4,
            found: 3
        })
    );
    let mut long = query();
    long.ranges.push((0, 1));
    assert_eq!(
        new(&p, k, &recs, &long),
        Some(CommitError::RangeCount {
            expected: 4,
            found: 5
        })
    );
    let forge = ResultForgery::default();
    assert!(matches!(
        FoldCircuit::forged(&p, k, &SALT, &recs, &short, forge),
        Err(CommitError::RangeCount { .. })
    ));

    let mut purposes = p.clone();
    purposes.shape.purposes = Some(1..3); // fields 1 and 2 are 2 and 5 bits wide
    assert_eq!(
        new(&purposes, k, &recs, &query()),
        Some(CommitError::PurposeNotABit { field: 1 })
    );
    assert!(matches!(
        FoldCircuit::dummy(&purposes, k),
        Err(CommitError::PurposeNotABit { field: 1 })
    ));

    let mut wide = p.clone();
    wide.shape.widths[2] = BOUND_BITS + 1;
    assert_eq!(
        new(&wide, BOUND_BITS + 2, &recs, &query()),
        Some(CommitError::FieldOverBoundBits {
            field: 2,
            width: BOUND_BITS + 1
        })
    );

    let many = vec![vec![0; 4]; 41];
    assert_eq!(
        new(&p, k, &many, &query()),
        Some(CommitError::TooManyRecords {
            records: 41,
            capacity: 40
        })
    );
    assert!(matches!(
        new(&p, k - 1, &recs, &query()),
        Some(CommitError::KTooSmall { k: kk, .. }) if kk == k - 1
    ));
    assert!(matches!(
        FoldCircuit::dummy(&p, k - 1),
        Err(CommitError::KTooSmall { .. })
    ));
    assert!(FoldCircuit::dummy(&p, k).is_ok());
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
    real_proofs(&params(2), records(2));
}

#[test]
fn real_proofs_with_a_nullable_statistic() {
    real_proofs(&nullable_params(2), with_missing(2));
}

fn real_proofs(p: &FoldParams, recs: Vec<Vec<u64>>) {
    let p = p.clone();
    let k = p.min_k();
    let kp = crate::keys::dev_params(k);
    let pk = keygen_circuit(&kp, &FoldCircuit::dummy(&p, k).unwrap()).unwrap();
    let bytes = 64 * p.slots;
    let mut proofs = Vec::new();
    for mut q in [query(), ranged(vec![(0, 31), (0, 3), (4, 30), (0, 15)])] {
        // `known` fields (nullable shapes) unconstrained.
        q.ranges.resize(p.shape.fields(), (0, 1));
        let (circuit, inst) = honest(&p, &recs, &q);
        let rng = SeededRng::with_unusable(&SALT, p.slots, p.unusable_rows(), OsRng);
        let proof = prove(&kp, &pk, circuit, &inst, rng).unwrap();
        assert!(verify(&kp, pk.get_vk(), &inst, &proof));
        let layout = p.inputs();
        let bound = [
            layout.count(),
            layout.sum(),
            layout.context(),
            layout.nonmissing(),
        ];
        for i in bound {
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
    let k = p.min_k();
    let forge = ResultForgery {
        lt: Some(false),
        ..Default::default()
    };
    let mut cheat = FoldCircuit::forged(&p, k, &SALT, &recs, &q, forge).unwrap();
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
    let mut cheat = FoldCircuit::forged(&p, k, &SALT, &recs, &q, forge).unwrap();
    let claimed = cheat.resum(&q, forge);
    assert!(results_refused(mock(&cheat, &claimed)), "forged zero test");
    // Claiming `C ≥ k` with comparison "bits" that are not bits: only booleanity stops it.
    let forge = ResultForgery {
        lt: Some(false),
        unbounded_bits: true,
        ..Default::default()
    };
    let mut cheat = FoldCircuit::forged(&p, k, &SALT, &recs, &q, forge).unwrap();
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
    let mut cheat = FoldCircuit::forged(&p, k, &SALT, &recs, &q2, forge).unwrap();
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
        // The other statistic's field with this proof's witness: refused.
        let mut bad = inst.clone();
        bad[layout.stat()] = Fr::from(p.stats[1 - stat] as u64);
        assert!(results_refused(mock(&c, &bad)), "statistic {stat} swapped");
        // The slot index instead of the field index: refused (it names field 0 or 1).
        let mut bad = inst.clone();
        bad[layout.stat()] = Fr::from(stat as u64);
        assert_ne!(bad[layout.stat()], inst[layout.stat()]);
        assert!(results_refused(mock(&c, &bad)), "slot index {stat}");
    }
    // A field that is not a statistic has no proof; nor has a query naming no statistic.
    q.stat = 0;
    let (c, mut inst) = honest(&p, &recs, &q);
    inst[layout.stat()] = Fr::from(1u64);
    assert!(!p.stats.contains(&1));
    assert!(results_refused(mock(&c, &inst)), "field 1 is no statistic");
    q.stat = 2;
    assert_eq!(
        FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).err(),
        Some(CommitError::NoSuchStatistic { index: 2, count: 2 })
    );
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
fn bounds_are_split_into_16_bit_halves() {
    let p = params(2);
    let recs = records(1);
    let (c, inst) = honest(&p, &recs, &query());
    assert_eq!(mock(&c, &inst), Ok(()));
    let (at, position) = p.inputs().bounds(0).expect("field 0 is bounded");
    assert_eq!(
        (at, p.inputs().bounds(3)),
        (0, Some((0, 3))),
        "one input packs them"
    );
    assert_eq!(position, 0);
    // Another split of the same input would need a half of 16 bits or more: the packed
    // input moved by one in any half is refused.
    for shift in [0u64, 16, 32, 112] {
        let mut bad = inst.clone();
        bad[at] += Fr::from(2).pow_vartime([shift]);
        assert!(mock(&c, &bad).is_err(), "moved by 2^{shift}");
    }
    // A bound of 2^16 or more has no proof (the honest split's bits cannot reach it).
    let mut q = query();
    q.ranges[0] = (3, 1 << 16);
    let (c, inst) = honest(&p, &recs, &q);
    assert!(results_refused(mock(&c, &inst)));
}

#[test]
fn bounds_pack_seven_fields_per_input() {
    let layout = |fields| {
        FoldParams {
            shape: FastShape {
                widths: vec![3; fields],
                ..Default::default()
            },
            slots: 2,
            stats: vec![0],
            strata: None,
            attestation: false,
            rounding: None,
            dominance: None,
        }
        .inputs()
    };
    assert_eq!(layout(7).bound_inputs(), 1);
    assert_eq!(layout(8).bound_inputs(), 2);
    assert_eq!(layout(8).bounds(7), Some((1, 0)));
    assert_eq!(layout(8).stat(), 2);
    let bounds = [(1, 2), (3, 4)];
    assert_eq!(
        pack_bounds(&bounds),
        Fr::from(1 + (2 << 16) + (3 << 32) + (4 << 48))
    );
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

/// A query keeping every record whatever its statistic (field 3 and its `known` bit
/// unconstrained, so missing values are kept), releasing statistic 0.
fn null_query() -> FoldQuery {
    ranged(vec![(3, 20), (1, 1), (0, 31), (0, 15), (0, 1), (0, 1)])
}

/// [`records`] with about a quarter of fields 2 and 3 missing (stored as 0, `known` bits in
/// fields 4 and 5); record 5 matches [`null_query`] with its statistic missing, record 6 with
/// it present (6).
fn with_missing(seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(500 + seed);
    let mut recs = records(seed);
    for r in recs.iter_mut() {
        r.extend([1, 1]);
        for f in [2, 3] {
            if rng.gen_bool(0.25) {
                r[f] = 0;
                r[f + 2] = 0;
            }
        }
    }
    recs[5] = vec![5, 1, 0, 0, 0, 0];
    recs[6] = vec![7, 1, 9, 6, 1, 1];
    recs
}

/// Where record `i`'s field `c` sits: `(row, data column)`.
fn field_at(p: &FoldParams, i: usize, c: usize) -> (usize, usize) {
    let s = c + 1;
    (i * p.rows_per_record() + s / p.slots, s % p.slots)
}

#[test]
fn missing_values_are_skipped_and_counted() {
    for slots in [1, 2] {
        let p = nullable_params(slots);
        let layout = p.inputs();
        let nonmissing = layout.nonmissing();
        let recs = with_missing(0);
        let mut q = null_query();
        q.min_cohort = 0;
        let (c, inst) = honest(&p, &recs, &q);
        assert_eq!(mock(&c, &inst), Ok(()), "W {slots}");
        let r = evaluate(&p, &recs, &q);
        assert!(r.nonmissing < r.count, "some matching values are missing");
        assert_eq!(inst[nonmissing], Fr::from(r.nonmissing));
        for i in outputs(&p) {
            let mut bad = inst.clone();
            bad[i] += Fr::ONE;
            assert!(mock(&c, &bad).is_err(), "W {slots}: result {i} not bound");
        }
        // Every match claimed as a value: refused.
        let mut bad = inst.clone();
        bad[nonmissing] = Fr::from(r.count);
        assert!(mock(&c, &bad).is_err(), "W {slots}: missing values counted");
        // Statistic 1 is not nullable: its non-missing count is the count.
        q.stat = 1;
        let (c, inst) = honest(&p, &recs, &q);
        assert_eq!(mock(&c, &inst), Ok(()), "W {slots}, statistic 1");
        assert_eq!(inst[nonmissing], inst[layout.count()]);
    }
}

#[test]
fn a_criterion_on_the_known_bit_excludes_missing_values() {
    let p = nullable_params(2);
    let recs = with_missing(0);
    let mut q = null_query();
    q.min_cohort = 0;
    q.ranges[5] = (1, 1);
    let (c, inst) = honest(&p, &recs, &q);
    assert_eq!(mock(&c, &inst), Ok(()));
    let r = evaluate(&p, &recs, &q);
    assert!(r.count > 0);
    assert_eq!(r.count, r.nonmissing, "no missing statistic matches");
    // Record 5 (missing) counted anyway: its known slot cannot match [1, 1].
    let (mut c, _) = honest(&p, &recs, &q);
    let (row, col) = field_at(&p, 5, 5);
    c.assignment.bits[col][row] = Fr::ONE;
    let inst = resum(&mut c, &q);
    assert!(lookup_failed(mock(&c, &inst)));
}

/// A witness whose record `i` adds `sum` and `squares` to statistic 0's running sums (`None`:
/// the honest term; for a nullable statistic `sum` is the packed `x + 2^64 · b`), every other
/// cell consistent with that.
fn forge_terms(
    p: &FoldParams,
    recs: &[Vec<u64>],
    q: &FoldQuery,
    i: usize,
    [sum, squares]: [Option<Fr>; 2],
) -> (FoldCircuit, Vec<Fr>) {
    let (mut c, _) = honest(p, recs, q);
    let t = p.stat_sums(0);
    let inst = c.resum_tweaked(q, ResultForgery::default(), &|r, u, v| {
        let forged = match u {
            _ if r != i => None,
            u if u == t.sum => sum,
            u if u == t.squares => squares,
            _ => None,
        };
        forged.unwrap_or(v)
    });
    (c, inst)
}

/// A nullable statistic's packed term, `x + 2^64 · b`.
fn packed(x: u64, b: u64) -> Option<Fr> {
    Some(Fr::from(x) + super::fold::packed_shift() * Fr::from(b))
}

/// The honest witness with record `i`'s data cells of `fields` set to `values` (a custodian
/// committing a malformed record), its bits and sums recomputed.
fn with_cells(
    p: &FoldParams,
    recs: &[Vec<u64>],
    q: &FoldQuery,
    i: usize,
    cells: &[(usize, u64)],
) -> (FoldCircuit, Vec<Fr>) {
    let (mut c, _) = honest(p, recs, q);
    for &(f, v) in cells {
        let (row, col) = field_at(p, i, f);
        c.assignment.data[col][row] = Fr::from(v);
    }
    let inst = resum(&mut c, q);
    (c, inst)
}

/// [`with_cells`] changes the result, and the encoding gate refuses the witness.
fn encoding_refused(
    p: &FoldParams,
    recs: &[Vec<u64>],
    q: &FoldQuery,
    i: usize,
    cells: &[(usize, u64)],
) {
    let (c, inst) = with_cells(p, recs, q, i, cells);
    assert_ne!(inst, honest(p, recs, q).1, "the forgery changes the result");
    assert!(
        table_gate_failed_named(mock(&c, &inst), "missing is zero"),
        "W {}: record {i}, {cells:?}",
        p.slots
    );
}

#[test]
fn a_missing_value_cannot_be_summed() {
    for slots in [1, 2] {
        let p = nullable_params(slots);
        let (recs, q) = (with_missing(0), null_query());
        // Record 5 matches with its statistic missing: counted as a value, or given one.
        for forged in [
            [packed(0, 1), None],
            [packed(7, 1), Some(Fr::from(49))],
            [packed(7, 0), None],
        ] {
            let (c, inst) = forge_terms(&p, &recs, &q, 5, forged);
            assert!(
                table_gate_failed_named(mock(&c, &inst), "sums"),
                "W {slots}: {forged:?}"
            );
        }
        // A value stored under a `known` bit of 0: the sums would take it.
        encoding_refused(&p, &recs, &q, 5, &[(3, 7)]);
    }
}

#[test]
fn a_present_value_cannot_be_left_out() {
    for slots in [1, 2] {
        let p = nullable_params(slots);
        let (recs, q) = (with_missing(0), null_query());
        // Record 6 matches with its statistic present (6): its terms dropped, or its value
        // kept out of the count.
        for forged in [
            [packed(0, 0), Some(Fr::ZERO)],
            [packed(0, 1), None],
            [packed(6, 0), None],
        ] {
            let (c, inst) = forge_terms(&p, &recs, &q, 6, forged);
            assert!(
                table_gate_failed_named(mock(&c, &inst), "sums"),
                "W {slots}: {forged:?}"
            );
        }
        // Its `known` bit cleared with the value kept: out of the count, still in the sums.
        encoding_refused(&p, &recs, &q, 6, &[(5, 0)]);
    }
}

#[test]
fn the_nonmissing_count_is_bound() {
    let p = nullable_params(2);
    let (recs, q) = (with_missing(0), null_query());
    // Record 5 (missing) counted, record 6 (present) not or twice, a padding slot counted.
    for (i, t) in [
        (5, packed(0, 1)),
        (6, packed(6, 0)),
        (35, packed(0, 1)),
        (6, packed(6, 2)),
    ] {
        let (c, inst) = forge_terms(&p, &recs, &q, i, [t, None]);
        assert!(
            table_gate_failed_named(mock(&c, &inst), "sums"),
            "record {i}"
        );
    }
    let (c, inst) = honest(&p, &recs, &q);
    let at = p.inputs().nonmissing();
    for delta in [Fr::ONE, -Fr::ONE] {
        let mut bad = inst.clone();
        bad[at] += delta;
        assert!(mock(&c, &bad).is_err());
    }
    // The packed sum split another way (`N` moved by one, `Σ x` by 2^64): the bits refuse.
    let mut q0 = q.clone();
    q0.min_cohort = 0;
    let truth = evaluate(&p, &recs, &q0);
    let k = p.min_k();
    for n in [truth.nonmissing - 1, truth.nonmissing + 1] {
        let forge = ResultForgery {
            nonmissing: Some(n),
            ..ResultForgery::default()
        };
        let mut c = FoldCircuit::forged(&p, k, &SALT, &recs, &q0, forge).unwrap();
        let inst = c.resum(&q0, forge);
        assert!(results_refused(mock(&c, &inst)), "N = {n}");
    }
}

#[test]
fn a_mean_over_few_values_is_suppressed() {
    // Every matching record but record 6 has its statistic missing: 1 value, floor 3.
    let p = nullable_params(2);
    let layout = p.inputs();
    let mut recs = with_missing(0);
    let q = null_query();
    for (i, r) in recs.iter_mut().enumerate() {
        if i != 6 {
            r[3] = 0;
            r[5] = 0;
        }
    }
    let mut released = q.clone();
    released.min_cohort = 0;
    let truth = evaluate(&p, &recs, &released);
    assert!(truth.count >= q.min_cohort && truth.nonmissing == 1);
    let (c, inst) = honest(&p, &recs, &q);
    assert_eq!(mock(&c, &inst), Ok(()));
    assert_eq!(inst[layout.suppressed()], Fr::ONE);
    assert_eq!(inst[layout.sum()], Fr::ZERO);
    assert_eq!(inst[layout.count()], Fr::ZERO);
    // Releasing the single value anyway: refused.
    assert!(mock(&c, &layout.instances(&q, &truth)).is_err());
}

#[test]
fn a_nullable_statistic_costs_no_column() {
    let cs = FoldParams::constraint_system;
    // The benchmark's N(2) shape (8 fields, HbA1c): its `known` bit right after it takes the
    // record's free slot (R = 5 both ways), and the non-missing count rides in `Σ x`.
    let bench = |known: bool| FoldParams {
        shape: FastShape {
            widths: if known {
                vec![7, 2, 12, 8, 1, 8, 10, 6, 1]
            } else {
                vec![7, 2, 12, 8, 8, 10, 6, 1]
            },
            capacity: 8,
            mask_rows: 8,
            known: if known {
                vec![None, None, None, Some(4)]
            } else {
                vec![]
            },
            purposes: None,
        },
        slots: 2,
        stats: vec![3],
        strata: None,
        attestation: false,
        rounding: None,
        dominance: None,
    };
    let (plain, null) = (bench(false), bench(true));
    assert_eq!(plain.rows_per_record(), null.rows_per_record());
    assert_eq!(plain.accumulators(), null.accumulators());
    assert_eq!(
        plain.running_sums(),
        null.running_sums(),
        "no running sum more"
    );
    assert_eq!(
        null.inputs().len(),
        plain.inputs().len(),
        "the known bit's bounds share an input"
    );
    let (a, b) = (cs(&plain), cs(&null));
    assert_eq!(a.degree(), b.degree(), "degree");
    assert_eq!(a.num_advice_columns(), b.num_advice_columns());
    assert_eq!(a.num_fixed_columns(), b.num_fixed_columns());
    assert_eq!(a.lookups().len(), b.lookups().len());
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
            threshold: None,
        })
    }

    /// A record of [`params`]' widths: `(missing, value)` per field (missing is kept only
    /// for nullable fields).
    fn raw_records() -> impl Strategy<Value = Vec<Vec<(bool, u64)>>> {
        let widths = params(1).shape.widths;
        let record = widths
            .iter()
            .map(|w| (proptest::bool::weighted(0.3), 0..1u64 << w))
            .collect::<Vec<_>>();
        proptest::collection::vec(record, 0..=40)
    }

    /// Per field a criterion (`None`: unconstrained).
    fn criteria() -> impl Strategy<Value = Vec<Option<(u64, u64)>>> {
        let widths = params(1).shape.widths;
        widths
            .iter()
            .map(|w| {
                proptest::option::weighted(
                    0.6,
                    (0..1u64 << w, 0..1u64 << w).prop_map(|(a, b)| (a.min(b), a.max(b))),
                )
            })
            .collect::<Vec<_>>()
    }

    /// The plain computation with missing values as NaN: a criterion never matches NaN,
    /// the sums skip it, a count or a number of values in `1..k` suppresses the cell.
    fn plain(
        recs: &[Vec<Option<u64>>],
        crit: &[Option<(u64, u64)>],
        f: usize,
        k: u64,
    ) -> FoldResult {
        let matching: Vec<_> = recs
            .iter()
            .filter(|r| {
                r.iter().zip(crit).all(|(v, c)| match (c, v) {
                    (None, _) => true,
                    (Some((lo, hi)), Some(x)) => lo <= x && x <= hi,
                    (Some(_), None) => false,
                })
            })
            .collect();
        let values: Vec<u64> = matching.iter().filter_map(|r| r[f]).collect();
        let (count, nonmissing) = (matching.len() as u64, values.len() as u64);
        let small = |n: u64| n > 0 && n < k;
        let suppressed = small(count) || small(nonmissing);
        let keep = !suppressed as u64;
        FoldResult {
            records: recs.len() as u64,
            count: keep * count,
            nonmissing: keep * nonmissing,
            sum: keep * values.iter().sum::<u64>(),
            sum_squares: keep * values.iter().map(|x| x * x).sum::<u64>(),
            suppressed,
        }
    }

    /// Up to three consent purposes: records of [`params`]' widths followed by three
    /// consent bits (a shape with `n` purposes keeps the first `n`).
    fn consented_dataset() -> impl Strategy<Value = Vec<Vec<u64>>> {
        let mut widths = params(1).shape.widths;
        widths.extend([1, 1, 1]);
        let record = widths.iter().map(|w| 0..1u64 << w).collect::<Vec<_>>();
        proptest::collection::vec(record, 0..=40)
    }

    /// The plain computation with consent: the records within every range of `ranges` (one
    /// per field before the purposes) whose bit for purpose `asked` is 1, and the sums of
    /// field `f` over them; a count in `1..min_cohort` suppresses the cell.
    fn plain_consented(
        recs: &[Vec<u64>],
        ranges: &[(u64, u64)],
        asked: usize,
        f: usize,
        min_cohort: u64,
    ) -> FoldResult {
        let mut matching = Vec::new();
        for r in recs {
            let mut ok = r[ranges.len() + asked] == 1;
            for (c, &(lo, hi)) in ranges.iter().enumerate() {
                ok = ok && lo <= r[c] && r[c] <= hi;
            }
            if ok {
                matching.push(r[f]);
            }
        }
        let count = matching.len() as u64;
        let suppressed = count > 0 && count < min_cohort;
        let keep = !suppressed as u64;
        FoldResult {
            records: recs.len() as u64,
            count: keep * count,
            nonmissing: keep * count,
            sum: keep * matching.iter().sum::<u64>(),
            sum_squares: keep * matching.iter().map(|x| x * x).sum::<u64>(),
            suppressed,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn nullable_results_are_the_plain_computation(
            raw in raw_records(), crit in criteria(), nullable in any::<[bool; 4]>(),
            stat in 0usize..2, min_cohort in 0u64..8, slots in 1usize..=2, which in 0usize..6,
        ) {
            // Each nullable field gets a `known` field after the four.
            let mut p = params(slots);
            let top = |c: usize| (1u64 << p.shape.widths[c]) - 1;
            let tops: Vec<u64> = (0..4).map(top).collect();
            let mut known = vec![None; 4];
            for c in (0..4).filter(|&c| nullable[c]) {
                known[c] = Some(p.shape.widths.len());
                p.shape.widths.push(1);
            }
            p.shape.known = known.clone();
            // NaN-aware view, and its encoding (missing: 0, its known bit 0).
            let nan: Vec<Vec<Option<u64>>> = raw
                .iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(c, &(missing, v))| (!(nullable[c] && missing)).then_some(v))
                        .collect()
                })
                .collect();
            let recs: Vec<Vec<u64>> = nan
                .iter()
                .map(|r| {
                    let mut e: Vec<u64> = r.iter().map(|v| v.unwrap_or(0)).collect();
                    e.extend(r.iter().zip(&known).filter(|(_, b)| b.is_some()).map(|(v, _)| v.is_some() as u64));
                    e
                })
                .collect();
            // A criterion on a nullable field also asks its known bit to be 1.
            let mut ranges: Vec<(u64, u64)> =
                crit.iter().zip(&tops).map(|(r, &t)| r.unwrap_or((0, t))).collect();
            ranges.extend(
                crit.iter().zip(&known).filter(|(_, b)| b.is_some())
                    .map(|(r, _)| if r.is_some() { (1, 1) } else { (0, 1) }),
            );
            let q = FoldQuery {
                ranges,
                stat,
                min_cohort,
                context: Fr::from(min_cohort + 2000),
                threshold: None,
            };
            let expected = plain(&nan, &crit, p.stats[stat], min_cohort);
            prop_assert_eq!(&evaluate(&p, &recs, &q), &expected);
            let circuit = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
            let inst = p.inputs().instances(&q, &expected);
            prop_assert_eq!(mock(&circuit, &inst), Ok(()));
            let outs = outputs(&p);
            let mut bad = inst.clone();
            bad[outs.start + which % outs.len()] += Fr::ONE;
            prop_assert!(mock(&circuit, &bad).is_err());
        }

        #[test]
        fn proven_results_are_the_plain_computation(
            recs in dataset(), q in queries(), slots in 1usize..=2, which in 0usize..5,
        ) {
            let p = params(slots);
            let (circuit, inst) = honest(&p, &recs, &q);
            prop_assert_eq!(mock(&circuit, &inst), Ok(()));
            let mut bad = inst.clone();
            bad[p.inputs().records() + which % outputs(&p).len()] += Fr::ONE;
            prop_assert!(mock(&circuit, &bad).is_err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn consented_results_are_the_plain_computation(
            full in consented_dataset(), q in queries(), n in 1usize..=3, asked in 0usize..3,
            slots in 1usize..=2,
        ) {
            // `n` consent purposes after the four fields; the query asks for one of them.
            let asked = asked % n;
            let mut p = params(slots);
            p.shape.widths.extend(vec![1; n]);
            p.shape.purposes = Some(4..4 + n);
            let recs: Vec<Vec<u64>> = full.iter().map(|r| r[..4 + n].to_vec()).collect();
            let plain_ranges = q.ranges.clone();
            let mut q = q;
            q.ranges.extend((0..n).map(|i| if i == asked { (1, 1) } else { (0, 1) }));
            prop_assert_eq!(fold::purpose_of(&q.ranges, &(4..4 + n)), asked as u64);

            let expected = plain_consented(&recs, &plain_ranges, asked, p.stats[q.stat], q.min_cohort);
            let result = evaluate(&p, &recs, &q);
            prop_assert_eq!(&result, &expected);
            let circuit = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
            let inst = p.inputs().instances(&q, &result);
            prop_assert_eq!(mock(&circuit, &inst), Ok(()));
            let mut bad = inst.clone();
            bad[p.inputs().count()] += Fr::ONE;
            prop_assert!(mock(&circuit, &bad).is_err());
        }
    }
}

/// The budget divides the masking rows by the openings per proof, which the constraint
/// system fixes (the statistic's column is read at more rotations than 0).
#[test]
fn query_budget_counts_openings() {
    for slots in [1, 2] {
        let p = params(slots);
        let openings = p.openings_per_proof();
        assert!(openings >= 2, "W = {slots}: {openings} openings");
        assert_eq!(p.query_budget(), (p.shape.mask_rows - 1) / openings);
    }
    let mut p = params(1);
    p.shape.mask_rows = 0;
    assert_eq!(p.query_budget(), 0);
}
