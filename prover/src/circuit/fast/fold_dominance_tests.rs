//! MockProver soundness tests and a real proof for the dominance rule in the fold circuit
//! (issue #13: a cell whose two largest values make more than `k` % of its sum is suppressed,
//! the two largest found by the proof).

use halo2_base::halo2_proofs::{
    dev::{MockProver, VerifyFailure},
    halo2curves::{bn256::Fr, ff::Field},
};
use rand::{rngs::OsRng, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::commit::CommitError;
use super::fold::{
    evaluate, Dominance, DominanceForgery, FoldCircuit, FoldParams, FoldQuery, ResultForgery,
    Rounding, Strata,
};
use super::fold_tests::params;
use super::*;

const SALT: [u8; 32] = [5; 32];

/// [`params`] (fields of 5, 2, 5 and 4 bits) at `W = 1` releasing field 3 only, under the
/// `(2, 90 %)` rule.
fn dominance_params() -> FoldParams {
    let mut p = params(1);
    p.stats = vec![3];
    p.dominance = Some(Dominance { percent: 90 });
    p
}

/// Records whose statistic (field 3) takes the values `xs`, the other fields random.
fn with_values(xs: &[u64], seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    xs.iter()
        .map(|&x| {
            vec![
                rng.gen_range(0..32),
                rng.gen_range(0..4),
                rng.gen_range(0..32),
                x,
            ]
        })
        .collect()
}

/// Everything matches; floor `min_cohort`.
fn everything(min_cohort: u64) -> FoldQuery {
    FoldQuery {
        ranges: vec![(0, 31), (0, 3), (0, 31), (0, 15)],
        stat: 0,
        min_cohort,
        context: Fr::from(41),
        threshold: None,
    }
}

/// Two values of 15 in 31: `100 · 30 > 90 · 31`.
const DOMINATED: [u64; 6] = [0, 15, 1, 0, 15, 0];
/// Twelve values, the largest two 18 % of the sum.
const SPREAD: [u64; 12] = [7, 9, 6, 8, 5, 9, 7, 6, 8, 7, 5, 6];
/// Not dominated (`100 · 16 ≤ 90 · 24`), but the largest value twice would be (`2,400`),
/// and so would two 15s.
const NEAR: [u64; 10] = [1, 12, 1, 4, 1, 1, 1, 1, 1, 1];

/// The witness a cheating prover built with `forge`, and the public inputs it proves.
fn forged(
    p: &FoldParams,
    recs: &[Vec<u64>],
    q: &FoldQuery,
    forge: DominanceForgery,
) -> (FoldCircuit, Vec<Fr>) {
    let mut c = FoldCircuit::new(p, p.min_k(), &SALT, recs, q).unwrap();
    let forge = ResultForgery {
        dominance: Some(forge),
        ..Default::default()
    };
    let inst = c.resum(q, forge);
    (c, inst)
}

fn mock(c: &FoldCircuit, inst: &[Fr]) -> Result<(), Vec<VerifyFailure>> {
    MockProver::run(c.params.min_k(), c, vec![inst.to_vec()])
        .expect("synthesis")
        .verify()
}

/// Whether the failure names the dominance lookup.
fn range_failed(r: &Result<(), Vec<VerifyFailure>>) -> bool {
    matches!(r, Err(e) if e.iter().any(|f| matches!(f,
        VerifyFailure::Lookup { name, .. } if name.contains("dominance"))))
}

#[test]
fn the_rule_is_two_values_over_k_percent_of_the_sum() {
    let d = Dominance { percent: 90 };
    assert!(d.dominated([15, 15], 31));
    assert!(!d.dominated([15, 12], 30));
    // Exactly k % is not over it.
    assert!(!d.dominated([9, 0], 10));
    assert!(d.dominated([9, 1], 10));
    // An empty or all-zero cell is not dominated; a single value is.
    assert!(!d.dominated([0, 0], 0));
    assert!(d.dominated([4, 0], 4));
    // The comparison does not overflow at the top of the ranges.
    assert!(!d.dominated([u16::MAX.into(), u16::MAX.into()], u64::MAX));
}

#[test]
fn honest_cells_follow_the_rule() {
    let p = dominance_params();
    let layout = p.inputs();
    for (xs, dominated) in [(&DOMINATED[..], true), (&SPREAD[..], false)] {
        let recs = with_values(xs, 1);
        let q = everything(3);
        let want = evaluate(&p, &recs, &q);
        assert_eq!(want.suppressed, dominated, "{xs:?}");
        let plain = evaluate(
            &FoldParams {
                dominance: None,
                ..p.clone()
            },
            &recs,
            &q,
        );
        assert!(!plain.suppressed, "{xs:?}: released without the rule");
        if !dominated {
            assert_eq!(want, plain);
        }
        let c = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
        let inst = layout.instances(&q, &want);
        assert_eq!(mock(&c, &inst), Ok(()), "{xs:?}");
        // The released cell and its flag are bound.
        for i in [layout.count(), layout.sum(), layout.suppressed()] {
            let mut bad = inst.clone();
            bad[i] += Fr::ONE;
            assert!(mock(&c, &bad).is_err(), "{xs:?}: input {i} not bound");
        }
    }
}

#[test]
fn random_cells_equal_the_plain_computation() {
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    for rule in [50, 85, 90] {
        let p = FoldParams {
            dominance: Some(Dominance { percent: rule }),
            ..dominance_params()
        };
        for _ in 0..4 {
            let n = rng.gen_range(0..=40);
            // Mostly small values with the odd large one, so both outcomes come up.
            let xs: Vec<u64> = (0..n)
                .map(|_| {
                    if rng.gen_bool(0.15) {
                        15
                    } else {
                        rng.gen_range(0..4)
                    }
                })
                .collect();
            let recs = with_values(&xs, rng.gen());
            let mut q = everything(rng.gen_range(0..4));
            q.ranges[0] = (rng.gen_range(0..8), rng.gen_range(12..32));
            let want = evaluate(&p, &recs, &q);
            let c = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
            let inst = p.inputs().instances(&q, &want);
            assert_eq!(mock(&c, &inst), Ok(()), "k {rule}, {xs:?}, {q:?}");
        }
    }
}

#[test]
fn a_dominated_cell_cannot_be_released() {
    let p = dominance_params();
    let recs = with_values(&DOMINATED, 2);
    let q = everything(3);
    let released = |inst: &[Fr]| inst[p.inputs().suppressed()] == Fr::ZERO;
    // Claiming the comparison came out the other way: its proven bits refuse it.
    let (c, inst) = forged(
        &p,
        &recs,
        &q,
        DominanceForgery {
            dominated: Some(false),
            ..Default::default()
        },
    );
    assert!(released(&inst));
    assert!(mock(&c, &inst).is_err());
    // Understating the largest values (held by no record, or by records that do not hold
    // them): some match is then above m₂, and its difference is out of range. (Not on record
    // 0: a failing gate there reads the previous record's cells, which wrap into rows the
    // MockProver poisons, and it panics printing them.)
    for (top, holders) in [
        ([1, 1], None),
        ([1, 1], Some([Some(2), Some(3)])),
        ([15, 1], Some([Some(1), Some(2)])),
    ] {
        let (c, inst) = forged(
            &p,
            &recs,
            &q,
            DominanceForgery {
                top: Some(top),
                holders,
                ..Default::default()
            },
        );
        assert!(released(&inst), "{top:?}");
        let r = mock(&c, &inst);
        assert!(range_failed(&r), "{top:?} {holders:?}: {r:?}");
    }
}

#[test]
fn the_second_value_is_at_most_the_first() {
    // m₁ on a small match (record 2 holds 1) and the true largest as m₂ (record 1 holds 15):
    // every match but g's is at most m₂ and both are held, so only the results program's
    // `m₂ ≤ m₁` refuses the understated top two (1 + 15 of 31 would be released).
    let p = dominance_params();
    let recs = with_values(&DOMINATED, 2);
    let q = everything(3);
    let (c, inst) = forged(
        &p,
        &recs,
        &q,
        DominanceForgery {
            top: Some([1, 15]),
            holders: Some([Some(2), Some(1)]),
            ..Default::default()
        },
    );
    assert_eq!(inst[p.inputs().suppressed()], Fr::ZERO, "released");
    let r = mock(&c, &inst);
    assert!(
        matches!(&r, Err(e) if !e.is_empty()
            && e.iter().all(|f| !format!("{f:?}").contains("dominance"))),
        "{r:?}"
    );
}

#[test]
fn a_cell_that_is_not_dominated_cannot_be_withheld() {
    let p = dominance_params();
    let recs = with_values(&NEAR, 3);
    let q = everything(3);
    let withheld = |inst: &[Fr]| inst[p.inputs().suppressed()] == Fr::ONE;
    for forge in [
        // Claimed dominated whatever the comparison.
        DominanceForgery {
            dominated: Some(true),
            ..Default::default()
        },
        // Overstated values that no record holds.
        DominanceForgery {
            top: Some([15, 15]),
            ..Default::default()
        },
        DominanceForgery {
            top: Some([15, 15]),
            holders: Some([None, None]),
            ..Default::default()
        },
        // The largest value counted twice, by marking its record as both holders.
        DominanceForgery {
            top: Some([12, 12]),
            holders: Some([Some(1), Some(1)]),
            ..Default::default()
        },
    ] {
        let (c, inst) = forged(&p, &recs, &q, forge);
        assert!(withheld(&inst), "{forge:?}");
        assert!(mock(&c, &inst).is_err(), "{forge:?}");
    }
    // A tie is two holders of the same value: the honest witness.
    let tied = with_values(
        &[9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9],
        4,
    );
    let want = evaluate(&p, &tied, &q);
    assert!(!want.suppressed);
    let c = FoldCircuit::new(&p, p.min_k(), &SALT, &tied, &q).unwrap();
    assert_eq!(mock(&c, &p.inputs().instances(&q, &want)), Ok(()));
}

#[test]
fn the_largest_values_are_held_by_their_records() {
    // Overstated values marked on the records that hold the true ones (12 at record 1, 4 at
    // record 3): every difference is in range and the holders are counted right, so only
    // "g's record holds m₁" and "h's record holds m₂" refuse them.
    let p = dominance_params();
    let recs = with_values(&NEAR, 3);
    let q = everything(3);
    for top in [[15, 4], [12, 9], [13, 5]] {
        let (c, inst) = forged(
            &p,
            &recs,
            &q,
            DominanceForgery {
                top: Some(top),
                holders: Some([Some(1), Some(3)]),
                ..Default::default()
            },
        );
        let r = mock(&c, &inst);
        assert!(
            matches!(&r, Err(e) if e.iter().all(|f| matches!(f,
                VerifyFailure::ConstraintNotSatisfied { constraint, .. }
                    if format!("{constraint:?}").contains("dominance")))),
            "{top:?}: {r:?}"
        );
    }
}

#[test]
fn a_non_match_is_no_contribution() {
    // The 15s fail the query (field 0 above 20): the cell is the other values only, and a
    // holder on a record that does not match is refused.
    let p = dominance_params();
    let mut recs = with_values(&NEAR, 5);
    for (i, r) in with_values(&[15, 15], 6).into_iter().enumerate() {
        recs.push(vec![25 + i as u64, r[1], r[2], 15]);
    }
    let mut q = everything(3);
    q.ranges[0] = (0, 20);
    for r in &mut recs[..NEAR.len()] {
        r[0] %= 21;
    }
    let want = evaluate(&p, &recs, &q);
    assert!(!want.suppressed);
    assert_eq!(want.count, NEAR.len() as u64);
    let c = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
    assert_eq!(mock(&c, &p.inputs().instances(&q, &want)), Ok(()));
    let last = recs.len() - 1;
    // Both holders on non-matches, or only g's (h's on the 12 that is the true largest).
    for (top, holders) in [([15, 15], [last - 1, last]), ([15, 12], [last, 1])] {
        let (c, inst) = forged(
            &p,
            &recs,
            &q,
            DominanceForgery {
                top: Some(top),
                holders: Some(holders.map(Some)),
                ..Default::default()
            },
        );
        assert_eq!(inst[p.inputs().suppressed()], Fr::ONE, "{top:?}");
        assert!(mock(&c, &inst).is_err(), "{top:?}");
    }
}

#[test]
fn small_cells_have_no_second_value() {
    let p = dominance_params();
    // No match: released as zeros, not suppressed; m₁ = m₂ = 0.
    let q = everything(1);
    let want = evaluate(&p, &[], &q);
    assert!(!want.suppressed);
    let c = FoldCircuit::new(&p, p.min_k(), &SALT, &[], &q).unwrap();
    assert_eq!(mock(&c, &p.inputs().instances(&q, &want)), Ok(()));
    // One match under a floor of 1: its value is the whole sum, so it is dominated, unless
    // it is 0.
    for (x, dominated) in [(6, true), (0, false)] {
        let recs = with_values(&[x], 7);
        let want = evaluate(&p, &recs, &q);
        assert_eq!(want.suppressed, dominated, "{x}");
        let c = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
        assert_eq!(mock(&c, &p.inputs().instances(&q, &want)), Ok(()), "{x}");
    }
    // A second value claimed with no second record to hold it.
    let recs = with_values(&[6], 7);
    for top in [[6, 15], [6, 1]] {
        let (c, inst) = forged(
            &p,
            &recs,
            &q,
            DominanceForgery {
                top: Some(top),
                ..Default::default()
            },
        );
        assert!(mock(&c, &inst).is_err(), "{top:?}");
    }
}

#[test]
fn the_rule_composes_with_missing_values_and_rounding() {
    // Field 3 nullable (its `known` bit in field 5): a missing value is a contribution of 0.
    let mut p = dominance_params();
    p.shape.widths.extend([1, 1]);
    p.shape.known = vec![None, None, Some(4), Some(5)];
    p.rounding = Some(Rounding::Nearest5);
    let mut q = everything(3);
    q.ranges.extend([(0, 1), (0, 1)]);
    for (xs, dominated) in [(&DOMINATED[..], true), (&SPREAD[..], false)] {
        let recs: Vec<Vec<u64>> = with_values(xs, 8)
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                let known = (i % 4 != 3) as u64;
                r[3] *= known;
                r.extend([1, known]);
                r
            })
            .collect();
        let want = evaluate(&p, &recs, &q);
        assert_eq!(want.suppressed, dominated, "{xs:?}");
        let c = FoldCircuit::new(&p, p.min_k(), &SALT, &recs, &q).unwrap();
        assert_eq!(mock(&c, &p.inputs().instances(&q, &want)), Ok(()), "{xs:?}");
    }
}

#[test]
fn shapes_without_one_released_sum_are_refused() {
    let k = 12;
    let base = dominance_params();
    let refused = |p: FoldParams| p.check(k, &[]);
    for percent in [0, 100] {
        assert!(matches!(
            refused(FoldParams {
                dominance: Some(Dominance { percent }),
                ..base.clone()
            }),
            Err(CommitError::DominancePercent { .. })
        ));
    }
    assert!(matches!(
        refused(FoldParams {
            stats: vec![3, 0],
            ..base.clone()
        }),
        Err(CommitError::DominanceShape { stats: 2, .. })
    ));
    assert!(matches!(
        refused(FoldParams {
            strata: Some(Strata { field: 1, count: 3 }),
            ..base.clone()
        }),
        Err(CommitError::DominanceShape {
            stratified: true,
            ..
        })
    ));
    assert!(matches!(
        refused(FoldParams {
            attestation: true,
            ..base.clone()
        }),
        Err(CommitError::DominanceShape {
            attestation: true,
            ..
        })
    ));
    // Five slots over two columns: three rows a record, one short.
    assert!(matches!(
        refused(FoldParams {
            slots: 2,
            ..base.clone()
        }),
        Err(CommitError::DominanceRows { rows: 3, needed: 4 })
    ));
    assert!(refused(base).is_ok());
}

#[test]
fn real_proof_of_a_dominated_and_a_released_cell() {
    let p = dominance_params();
    let k = p.min_k();
    let kp = crate::keys::dev_params(k);
    let pk = keygen_circuit(&kp, &FoldCircuit::dummy(&p, k).unwrap()).unwrap();
    for (xs, dominated) in [(&DOMINATED[..], true), (&SPREAD[..], false)] {
        let recs = with_values(xs, 9);
        let q = everything(3);
        let want = evaluate(&p, &recs, &q);
        assert_eq!(want.suppressed, dominated);
        let c = FoldCircuit::new(&p, k, &SALT, &recs, &q).unwrap();
        let inst = p.inputs().instances(&q, &want);
        let rng = SeededRng::with_unusable(&SALT, p.slots, p.unusable_rows(), OsRng);
        let proof = prove(&kp, &pk, c, &inst, rng).unwrap();
        assert!(verify(&kp, pk.get_vk(), &inst, &proof), "{xs:?}");
        let mut bad = inst.clone();
        bad[p.inputs().suppressed()] = Fr::from(!dominated as u64);
        assert!(!verify(&kp, pk.get_vk(), &bad, &proof), "{xs:?}");
    }
}
