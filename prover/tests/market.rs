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
        hospitals: vec![h("A", 45, 3), h("B", 38, 4), h("C", 12, 5)],
        query: root.join("examples/query-all-adults-bmi.json"),
        price: U256::from(10u64.pow(17)),
        store: KeyStore::new(root.join(".zkcohort"), ParamsSource::Dev),
    };
    let report = demo::run(&scenario, true).await.unwrap();

    assert_eq!(report.circuit_id, "agg1-b3d88f65-n48-k14");
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
}
