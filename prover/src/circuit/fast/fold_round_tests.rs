//! MockProver soundness tests for proven rounding in the fold circuit (issue #13: every
//! released count and sum rounded by the custodian's rule, to the nearest 5 or OpenSAFELY's
//! midpoint-6, in the proof).

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use super::commit::CommitError;
use super::fold::{evaluate_strata, FoldParams, ResultForgery, RoundForgery, Rounding};
use super::fold_strata_tests::{everything, forged, mock, strata_params, with_codes};
use super::fold_tests::params;

/// [`strata_params`] (three strata of field 1; statistic 0 is field 3, nullable) or one cell
/// ([`params`] with the same nullable field), rounded by `rule`.
fn rounded(rule: Rounding, stratified: bool) -> FoldParams {
    let mut p = strata_params(2);
    if !stratified {
        p.strata = None;
    }
    p.rounding = Some(rule);
    p
}

#[test]
fn the_rules_are_opensafelys() {
    let nearest: Vec<u64> = (0..=13).map(|x| Rounding::Nearest5.apply(x)).collect();
    assert_eq!(nearest, [0, 0, 0, 5, 5, 5, 5, 5, 10, 10, 10, 10, 10, 15]);
    let midpoint: Vec<u64> = (0..=13).map(|x| Rounding::Midpoint6.apply(x)).collect();
    assert_eq!(midpoint, [0, 3, 3, 3, 3, 3, 3, 9, 9, 9, 9, 9, 9, 15]);
    // OpenSAFELY's own formula, `ceil(x/6)*6 - 3*(x != 0)`.
    for x in 0..1000u64 {
        assert_eq!(
            Rounding::Midpoint6.apply(x),
            x.div_ceil(6) * 6 - 3 * (x != 0) as u64
        );
    }
    // The top of u64 rounds within u64.
    for rule in Rounding::ALL {
        for x in u64::MAX - 12..=u64::MAX {
            assert!(rule.apply(x).abs_diff(x) <= 3, "{rule:?} {x}");
        }
    }
}

#[test]
fn rounded_cells_are_the_plain_computation_rounded() {
    for rule in Rounding::ALL {
        for stratified in [false, true] {
            let p = rounded(rule, stratified);
            let exact = FoldParams {
                rounding: None,
                ..p.clone()
            };
            for (seed, codes) in [(1, [12, 7, 9, 3]), (2, [4, 13, 0, 2])] {
                let recs = with_codes(&codes, seed);
                let q = everything(0, 3);
                let want = evaluate_strata(&p, &recs, &q);
                let plain = evaluate_strata(&exact, &recs, &q);
                for (r, e) in want.cells.iter().zip(&plain.cells) {
                    assert_eq!(r.suppressed, e.suppressed);
                    for (got, x) in [
                        (r.count, e.count),
                        (r.nonmissing, e.nonmissing),
                        (r.sum, e.sum),
                        (r.sum_squares, e.sum_squares),
                    ] {
                        assert_eq!(got, rule.apply(x));
                    }
                }
                let (c, inst) = forged(&p, &recs, &q, ResultForgery::default());
                assert_eq!(
                    inst,
                    p.inputs().strata_instances(&q, &want),
                    "{rule:?}, stratified {stratified}"
                );
                assert_eq!(mock(&c, &inst), Ok(()), "{rule:?}, stratified {stratified}");
                // Every released value is bound: the exact one is refused.
                let layout = p.inputs();
                for (v, e) in plain.cells.iter().enumerate() {
                    let at = layout.cell(v);
                    for (i, x) in [(at.count, e.count), (at.sum, e.sum)] {
                        if rule.apply(x) != x {
                            let mut bad = inst.clone();
                            bad[i] = Fr::from(x);
                            assert!(mock(&c, &bad).is_err(), "{rule:?} cell {v} exact");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_rounding_that_is_not_the_rules_has_no_proof() {
    // Cell 0 of 12 records: x + o = b·q + r with 0 ≤ r < b has one solution; one more or one
    // fewer `b` leaves a remainder outside [0, b), for each released value.
    let recs = with_codes(&[12, 7, 9, 3], 1);
    let q = everything(0, 3);
    for rule in Rounding::ALL {
        for stratified in [false, true] {
            let p = rounded(rule, stratified);
            for output in 0..4 {
                for quotient in [1, -1, 2] {
                    let forge = ResultForgery {
                        rounding: Some(RoundForgery {
                            output,
                            quotient,
                            zero: None,
                        }),
                        ..Default::default()
                    };
                    let (c, inst) = forged(&p, &recs, &q, forge);
                    assert!(
                        mock(&c, &inst).is_err(),
                        "{rule:?}, stratified {stratified}: output {output} moved by {quotient}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_remainder_below_eight_but_not_below_the_base_is_refused() {
    // 12 records, nearest 5: 12 + 2 = 5·2 + 4; one `b` fewer leaves r = 9 (refused by its
    // 3 bits). With 10: 12 = 5·2 + 2, and q − 1 leaves r = 7 < 8: only `b − 1 − r ≥ 0` refuses
    // it (a count of 10 released as 5).
    let p = rounded(Rounding::Nearest5, false);
    let recs = with_codes(&[4, 3, 3, 0], 3);
    let q = everything(1, 3);
    let want = evaluate_strata(&p, &recs, &q);
    assert_eq!(want.cells[0].count, 10);
    let forge = ResultForgery {
        rounding: Some(RoundForgery {
            output: 0,
            quotient: -1,
            zero: None,
        }),
        ..Default::default()
    };
    let (c, inst) = forged(&p, &recs, &q, forge);
    assert_eq!(inst[p.inputs().cell(0).count], Fr::from(5));
    assert!(mock(&c, &inst).is_err());
}

#[test]
fn the_midpoint_of_a_non_zero_value_is_not_skipped() {
    // Midpoint-6 subtracts 3 from every non-zero value: claiming a count is 0 (to release
    // 6·q instead) is refused, in each cell.
    let p = rounded(Rounding::Midpoint6, true);
    let recs = with_codes(&[12, 7, 9, 3], 1);
    let q = everything(0, 3);
    for cell in 0..3 {
        let forge = ResultForgery {
            stratum: cell,
            rounding: Some(RoundForgery {
                output: 0,
                quotient: 0,
                zero: Some(true),
            }),
            ..Default::default()
        };
        let (c, inst) = forged(&p, &recs, &q, forge);
        let honest = evaluate_strata(&p, &recs, &q).cells[cell].count;
        assert_eq!(inst[p.inputs().cell(cell).count], Fr::from(honest + 3));
        assert!(mock(&c, &inst).is_err(), "cell {cell}");
    }
}

#[test]
fn an_attestation_is_not_rounded() {
    let mut p = params(1);
    p.attestation = true;
    p.rounding = Some(Rounding::Nearest5);
    assert!(matches!(
        p.check(p.shape.capacity.ilog2() + 6, &[]),
        Err(CommitError::AttestationRounded)
    ));
}
