//! MockProver soundness tests and a real proof for the attestation fold circuit (issue #13's
//! signal attestations: one proven verdict, "the mean reaches the threshold over at least
//! `min_cohort` values", and nothing else about the cohort).

use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::Field};
use rand::{rngs::OsRng, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::commit::CommitError;
use super::fold::{
    evaluate_attestation, pack_threshold, FoldCircuit, FoldParams, FoldQuery, ResultForgery,
    Strata, Verdict,
};
use super::fold_strata_tests::{forged, mock};
use super::fold_tests::params;
use super::*;

const SALT: [u8; 32] = [5; 32];

/// [`params`] (fields of 5, 2, 5 and 4 bits; statistics fields 3 and 0) as an attestation,
/// field 3 nullable (its `known` bit is field 4) when `nullable`.
fn attest_params(slots: usize, nullable: bool) -> FoldParams {
    let mut p = params(slots);
    if nullable {
        p.shape.widths.push(1);
        p.shape.known = vec![None, None, None, Some(4)];
    }
    p.attestation = true;
    p
}

/// `n` random records of `p`'s shape; field 3 (the statistic) below `top`, missing in about
/// one in four when nullable.
fn records(p: &FoldParams, n: usize, top: u64, seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut r: Vec<u64> = p
                .shape
                .widths
                .iter()
                .map(|w| rng.gen_range(0..1u64 << w))
                .collect();
            r[3] = rng.gen_range(0..top);
            if p.shape.fields() > 4 {
                r[4] = rng.gen_bool(0.75) as u64;
                r[3] *= r[4];
            }
            r
        })
        .collect()
}

/// Every record, statistic field 3, floor `min_cohort`, threshold `a / b`.
fn query(p: &FoldParams, min_cohort: u64, threshold: (u64, u64)) -> FoldQuery {
    FoldQuery {
        ranges: p.shape.widths.iter().map(|w| (0, (1 << w) - 1)).collect(),
        stat: 0,
        min_cohort,
        context: Fr::from(31),
        threshold: Some(threshold),
    }
}

fn honest(p: &FoldParams, recs: &[Vec<u64>], q: &FoldQuery) -> (FoldCircuit, Vec<Fr>, Verdict) {
    let c = FoldCircuit::new(p, p.min_k(), &SALT, recs, q).unwrap();
    let v = evaluate_attestation(p, recs, q);
    (c, p.inputs().attestation_instances(q, &v), v)
}

/// `(N, S)` of statistic field 3 over `recs` (every record matches [`query`]).
fn tally(p: &FoldParams, recs: &[Vec<u64>]) -> (u64, u64) {
    let known = |r: &Vec<u64>| p.shape.fields() == 4 || r[4] == 1;
    let n = recs.iter().filter(|r| known(r)).count() as u64;
    (n, recs.iter().map(|r| r[3]).sum())
}

#[test]
fn the_verdict_is_the_plain_computation() {
    let mut seen = [false; 2];
    for (slots, nullable) in [(1, false), (2, true)] {
        let p = attest_params(slots, nullable);
        let recs = records(&p, 30, 16, slots as u64);
        let (n, s) = tally(&p, &recs);
        let layout = p.inputs();
        // Thresholds just below, at and just above the mean, and the extremes of the ranges.
        for threshold in [
            (s - 1, n),
            (s, n),
            (s + 1, n),
            (0, (1 << 32) - 1),
            (u64::MAX, 1),
            (7, 3),
        ] {
            let q = query(&p, 11, threshold);
            let (c, inst, v) = honest(&p, &recs, &q);
            assert_eq!(mock(&c, &inst), Ok(()), "{threshold:?}");
            let (a, b) = threshold;
            let want = u128::from(b) * u128::from(s) >= u128::from(a) * u128::from(n);
            assert_eq!(v.holds, want && n >= 11, "{threshold:?}");
            assert_eq!(inst[layout.verdict().unwrap()], Fr::from(v.holds as u64));
            assert_eq!(inst[layout.threshold().unwrap()], pack_threshold(threshold));
            seen[v.holds as usize] = true;
        }
    }
    assert_eq!(seen, [true, true], "both verdicts were proven");
}

#[test]
fn a_verdict_whose_inequality_does_not_hold_has_no_proof() {
    let p = attest_params(2, true);
    let recs = records(&p, 30, 16, 4);
    let (n, s) = tally(&p, &recs);
    // The mean is just below a threshold of (S + 1) / N: a "yes" is forged.
    let q = query(&p, 11, (s + 1, n));
    assert!(!evaluate_attestation(&p, &recs, &q).holds);
    let yes = ResultForgery {
        ge: Some(true),
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, yes);
    assert!(mock(&c, &inst).is_err(), "a forged yes");
    // And a "no" where it holds (a custodian denying a signal it has).
    let q = query(&p, 11, (s, n));
    assert!(evaluate_attestation(&p, &recs, &q).holds);
    let no = ResultForgery {
        ge: Some(false),
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, no);
    assert!(mock(&c, &inst).is_err(), "a forged no");
    // The honest verdict with its public input flipped.
    let (c, mut inst, _) = honest(&p, &recs, &q);
    let at = p.inputs().verdict().unwrap();
    inst[at] = Fr::ONE - inst[at];
    assert!(mock(&c, &inst).is_err(), "a flipped verdict input");
}

#[test]
fn a_cohort_below_the_floor_never_attests() {
    // 8 values whose mean reaches the threshold: too few for a floor of 11.
    let p = attest_params(1, false);
    let recs = records(&p, 8, 16, 6);
    let q = query(&p, 11, (0, 1));
    let (c, inst, v) = honest(&p, &recs, &q);
    assert!(!v.holds);
    assert_eq!(mock(&c, &inst), Ok(()));
    let big = ResultForgery {
        lt: Some(false),
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, big);
    assert!(mock(&c, &inst).is_err(), "8 values called at least 11");
    let unbounded = ResultForgery {
        lt: Some(false),
        unbounded_bits: true,
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, unbounded);
    assert!(
        mock(&c, &inst).is_err(),
        "comparison bits that are not bits"
    );
}

#[test]
fn the_threshold_is_bound_and_never_zero_over_zero() {
    let p = attest_params(1, false);
    let recs = records(&p, 30, 16, 8);
    let (n, s) = tally(&p, &recs);
    let q = query(&p, 11, (s + 1, n));
    // The prover splits the threshold as a lower one (where a yes would hold).
    let lower = ResultForgery {
        threshold: Some((s, n)),
        ge: Some(true),
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, lower);
    assert!(mock(&c, &inst).is_err(), "a threshold split as another");
    // `0 / 0`: every mean would reach it. The query check refuses it, and so does the proof.
    let zero = query(&p, 11, (0, 0));
    assert!(matches!(
        p.check_query(&zero),
        Err(CommitError::ThresholdDenominator { denominator: 0 })
    ));
    let (mut c, _, _) = honest(&p, &recs, &query(&p, 11, (0, 1)));
    let inst = c.resum(&zero, ResultForgery::default());
    assert!(mock(&c, &inst).is_err(), "a zero denominator");
}

#[test]
fn an_attestation_releases_the_verdict_alone_and_its_shapes_are_checked() {
    let p = attest_params(1, true);
    let layout = p.inputs();
    // Constants (the threshold after the bounds), the context, the records total, the verdict.
    assert_eq!(layout.threshold(), Some(layout.bound_inputs()));
    assert_eq!(layout.stat(), layout.bound_inputs() + 1);
    assert_eq!(layout.verdict(), Some(layout.records() + 1));
    assert_eq!(layout.len(), layout.records() + 2);
    assert_eq!(layout.cells(), 0);
    let mut q = query(&p, 11, (1, 2));
    q.threshold = None;
    assert!(matches!(
        p.check_query(&q),
        Err(CommitError::ThresholdShape { attestation: true })
    ));
    q.threshold = Some((1, 1 << 32));
    assert!(matches!(
        p.check_query(&q),
        Err(CommitError::ThresholdDenominator { .. })
    ));
    q.threshold = Some((1, 2));
    let mut cells = p.clone();
    cells.attestation = false;
    assert!(matches!(
        cells.check_query(&q),
        Err(CommitError::ThresholdShape { attestation: false })
    ));
    let mut stratified = p.clone();
    stratified.strata = Some(Strata { field: 1, count: 2 });
    assert!(matches!(
        stratified.check(stratified.min_k(), &[]),
        Err(CommitError::AttestationStratified)
    ));
}

#[test]
fn a_real_attestation_proof_verifies_and_binds_its_verdict() {
    let p = attest_params(2, true);
    let recs = records(&p, 30, 16, 9);
    let (n, s) = tally(&p, &recs);
    let q = query(&p, 11, (s, n));
    let k = p.min_k();
    let kp = crate::keys::dev_params(k);
    let pk = keygen_circuit(&kp, &FoldCircuit::dummy(&p, k).unwrap()).unwrap();
    let (c, inst, v) = honest(&p, &recs, &q);
    assert!(v.holds);
    let rng = SeededRng::with_unusable(&SALT, p.slots, p.unusable_rows(), OsRng);
    let proof = prove(&kp, &pk, c, &inst, rng).unwrap();
    assert!(verify(&kp, pk.get_vk(), &inst, &proof));
    let layout = p.inputs();
    for i in [layout.verdict().unwrap(), layout.threshold().unwrap()] {
        let mut bad = inst.clone();
        bad[i] += Fr::ONE;
        assert!(!verify(&kp, pk.get_vk(), &bad, &proof), "input {i}");
    }
    let commitment = commit::data_commitment(&kp, &p, &SALT, &recs).unwrap();
    assert_eq!(proof[..64 * p.slots], commitment.to_proof_bytes()[..]);
}
