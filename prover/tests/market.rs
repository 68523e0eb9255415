//! The market flow end to end against an anvil this test starts itself: forge deploy script,
//! registration, a funded query, real proofs checked on-chain by the generated verifier, pooled
//! results, pull payments, and a replayed proof rejected. Same code path as `zkcohort demo`,
//! with small hospitals (capacity 48) to keep it quick.

use std::path::Path;

use alloy::primitives::U256;
use zkcohort::{
    demo::{self, Hospital, Scenario},
    keys::{KeyStore, ParamsSource},
};

#[tokio::test(flavor = "multi_thread")]
async fn market_flow_on_anvil_with_real_proofs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let work = tempfile::tempdir().unwrap();
    let h = |name: &str, records, seed| Hospital {
        name: name.into(),
        records,
        seed,
    };
    let scenario = Scenario {
        root: root.clone(),
        work: work.path().to_owned(),
        capacity: 48,
        data_columns: 1,
        // The fold fixture's shape (`fold_market.rs`): its verifier is committed.
        mask_rows: 16,
        hospitals: vec![h("A", 45, 3), h("B", 38, 4), h("C", 12, 5)],
        query: root.join("examples/query-all-adults-bmi.json"),
        arms: demo::study::Arms {
            query: root.join("examples/query-all-adults-bmi.json"),
            column: "sex".into(),
            codes: ["F".into(), "M".into()],
        },
        price: U256::from(10u64.pow(17)),
        trial: root.join("examples/trial-adults-bp.json"),
        bounty: U256::from(10u64.pow(16)),
        referral_batch: demo::trial::REFERRAL_BATCH,
        store: KeyStore::new(root.join(".zkcohort"), ParamsSource::Dev),
    };
    let report = demo::run(&scenario, true).await.unwrap();

    assert_eq!(report.circuit_id, "fold3-b3d88f65-n48-m16-w1-s11-k12");
    for r in &report.hospitals {
        assert_eq!(
            r.result, r.native,
            "{}: proven result equals the plain computation",
            r.name
        );
        assert_eq!(r.paid, scenario.price, "{} was paid once", r.name);
        assert!(r.claim_gas > 0);
    }
    assert!(
        report.hospitals[2].result.suppressed,
        "the 12-patient hospital is below k = 11"
    );
    assert_eq!(report.suppressed, 1);
    assert!(report.pooled_onchain.count > 0);
    assert_eq!(report.pooled_onchain, report.pooled_native);
    assert!(
        report.replay_rejected_with.contains("CommitmentMismatch"),
        "{}",
        report.replay_rejected_with
    );

    // The specs were published on-chain with the query and the trial, and read back (by the
    // demo, from the SpecPublished events) as the exact canonical JSON of the spec files.
    assert_eq!(
        report.published_spec,
        "\"BMI of all consenting adults\": patients with age 18–127 who consented to research; \
         count, mean and variance of `bmi`, suppressed when fewer than 11 (but some) patients match"
    );
    // A claim re-verified off-chain from its transaction alone (calldata, published spec).
    assert_eq!(report.reverified_from_tx, "FoldVerifierN48W1");
    assert_eq!(report.trial.reverified_from_tx, "EligibilityVerifierB4");
    let trial_spec = zkcohort::trial::TrialSpec::load(&scenario.trial).unwrap();
    assert_eq!(report.trial.published_spec, trial_spec.describe());
    assert!(
        report
            .trial
            .published_spec
            .contains("who consented to trials"),
        "{}",
        report.trial.published_spec
    );

    let t = &report.trial;
    assert_eq!(t.enrolments[0].patients, 1, "the patient enrolled alone");
    assert!(t.enrolments[1].patients >= 2, "the referral was a batch");
    assert_eq!(
        u64::from(t.enrolled),
        t.enrolments.iter().map(|e| e.patients).sum::<u64>()
    );
    assert!(
        t.double_enrolment_rejected_with.contains("NullifierSpent"),
        "{}",
        t.double_enrolment_rejected_with
    );
    assert!(!t.ineligible_reason.is_empty());
    assert_eq!(
        t.patient_paid,
        U256::from(10u64.pow(16) / 5),
        "20% of one bounty to the patient"
    );

    // Before its chain stopped, the demo audited it (what `zkcohort audit` runs): every claim
    // and enrolment transaction re-verified, the money reconciled, the report written.
    // The two-arm study, read back from the chain (the demo checked it equals the study of the
    // records): hospital C's arms (12 patients) are suppressed and C is left out.
    let study = &report.study;
    assert_eq!(study.suppressed_sites, ["C"], "{:?}", study.lines);
    assert_eq!(study.onchain.sites, 3);
    let w = study.onchain.welch.as_ref().unwrap();
    assert!(w.n.iter().all(|&n| n >= 11), "{w:?}");
    assert!((0.0..=1.0).contains(&w.p), "{w:?}");
    assert!(
        study.lines[0].starts_with("two-arm comparison of bmi: F vs M"),
        "{:?}",
        study.lines
    );

    let a = &report.audit;
    let enrolment_txs = t.enrolments.len();
    // One claim per hospital for the query, two more for the study's arms.
    assert_eq!(a.summary.proofs, 3 * report.hospitals.len() + enrolment_txs);
    assert_eq!(a.summary.verified, a.summary.proofs);
    assert!(a.summary.money_reconciles);
    assert_eq!(a.summary.critical + a.summary.warnings, 0);
    assert_eq!(a.html, work.path().join("audit-report.html"));
    let html = std::fs::read_to_string(&a.html).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    let md = std::fs::read_to_string(&a.markdown).unwrap();
    // The statistic with its unit (the built-in schema's documented fallback: kg/m² for bmi).
    assert!(
        md.contains("mean bmi ") && md.contains(" kg/m² (sd "),
        "{md}"
    );
    assert!(md.contains("re-verified here: yes"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a.json).unwrap()).unwrap();
    assert_eq!(json["queries"][0]["unit"], "kg/m²");
}

/// The client's failure modes come out as named, readable errors.
#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_clear() {
    use zkcohort::{
        chain::{ChainError, Client, Deployment, LocalNode, ANVIL_DEV_KEYS},
        dataset::CommitmentInfo,
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let work = tempfile::tempdir().unwrap();
    let node = LocalNode::start(&root, None, &work.path().join("anvil.log")).unwrap();
    let port = node.url.rsplit(':').next().unwrap().to_owned();
    let out = root.join("deployments").join(format!("test-{port}.json"));
    let key = ANVIL_DEV_KEYS[0].parse().unwrap();
    let deployment = Deployment::deploy(&root, &node.url, &key, &out).unwrap();
    let _ = std::fs::remove_file(&out);

    // Nothing listens on port 9 (discard): the RPC is unreachable.
    let err = Client::connect(
        "http://127.0.0.1:9",
        ANVIL_DEV_KEYS[1].parse().unwrap(),
        deployment.clone(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, ChainError::Unreachable { .. }), "{err}");

    // A fresh account has no ETH for gas.
    let broke = alloy::signers::local::PrivateKeySigner::random();
    let client = Client::connect(&node.url, broke, deployment.clone())
        .await
        .unwrap();
    let info = CommitmentInfo {
        commitment: format!("0x{:064x}", 7),
        member_root: format!("0x{:064x}", 8),
        schema_hash: format!("0x{:064x}", 1),
        record_count: 10,
        capacity: 24,
    };
    let err = client.register(&info, "agg1-test").await.unwrap_err();
    assert!(matches!(err, ChainError::InsufficientFunds { .. }), "{err}");

    // A revert is decoded into the contract's custom error.
    let client = Client::connect(&node.url, ANVIL_DEV_KEYS[1].parse().unwrap(), deployment)
        .await
        .unwrap();
    let err = client.refund(U256::from(42)).await.unwrap_err();
    assert!(err.to_string().contains("UnknownQuery"), "{err}");
    let err = client
        .trial(client.trial_id_of(zkcohort::chain::random_salt()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnknownTrial"), "{err}");
    client.register(&info, "agg1-test").await.unwrap();
    let err = client.register(&info, "agg1-test").await.unwrap_err();
    assert!(
        err.to_string().contains("CommitmentAlreadyRegistered"),
        "{err}"
    );
}
