//! Custodian rotation on an anvil this test starts itself (forge deploy script, real
//! DatasetRegistry): a dataset is offered to a new address, the old one stays custodian until
//! the new one accepts, then the old one is refused; a wrong address cannot accept, and the
//! CLI (`zkcohort custodian transfer/accept`) does the same with clear errors.

use std::{path::Path, process::Command};

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use zkcohort::{
    chain::{ChainError, Client, Deployment, LocalNode, ANVIL_DEV_KEYS},
    dataset::CommitmentInfo,
};

fn key(i: usize) -> PrivateKeySigner {
    ANVIL_DEV_KEYS[i].parse().unwrap()
}

fn reverted_with(err: &ChainError, name: &str) {
    assert!(
        matches!(err, ChainError::Reverted { reason, .. } if reason.contains(name)),
        "expected a decoded {name}, got: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custodian_rotates_its_address_in_two_steps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let work = tempfile::tempdir().unwrap();
    let node = LocalNode::start(&root, None, &work.path().join("anvil.log")).unwrap();
    let port = node.url.rsplit(':').next().unwrap().to_owned();
    let out = root
        .join("deployments")
        .join(format!("test-custodian-{port}.json"));
    let deployer = ANVIL_DEV_KEYS[0].parse().unwrap();
    let deployment = Deployment::deploy(&root, &node.url, &deployer, &out);
    let _ = std::fs::remove_file(&out);
    let deployment = deployment.unwrap();

    let connect = |i: usize| Client::connect(&node.url, key(i), deployment.clone());
    let (old, new, stranger) = (
        connect(2).await.unwrap(),
        connect(3).await.unwrap(),
        connect(4).await.unwrap(),
    );
    let info = |n: u64| CommitmentInfo {
        commitment: format!("0x{:064x}", 1000 + n),
        member_root: format!("0x{:064x}", 2000 + n),
        schema_hash: format!("0x{:064x}", 1),
        record_count: 10,
        capacity: 24,
    };
    let (id, _) = old.register(&info(1), "agg1-test").await.unwrap();

    // Unknown dataset, not the custodian, nothing offered: decoded custom errors.
    let err = old
        .transfer_custodian(U256::from(99), new.account)
        .await
        .unwrap_err();
    reverted_with(&err, "UnknownDataset");
    let err = stranger
        .transfer_custodian(id, stranger.account)
        .await
        .unwrap_err();
    reverted_with(&err, "NotCustodian");
    let err = new.accept_custodian(id).await.unwrap_err();
    reverted_with(&err, "NotPendingCustodian");

    // Offered: the old address stays the custodian, and only the offered one may accept.
    old.transfer_custodian(id, new.account).await.unwrap();
    assert_eq!(old.pending_custodian(id).await.unwrap(), new.account);
    assert_eq!(old.dataset(id).await.unwrap().custodian, old.account);
    let err = stranger.accept_custodian(id).await.unwrap_err();
    reverted_with(&err, "NotPendingCustodian");
    assert_eq!(old.dataset(id).await.unwrap().custodian, old.account);

    // Accepted: the new address is the custodian; the old one is refused.
    let (from, _) = new.accept_custodian(id).await.unwrap();
    assert_eq!(from, old.account);
    let d = new.dataset(id).await.unwrap();
    assert_eq!(d.custodian, new.account);
    assert_eq!(new.pending_custodian(id).await.unwrap(), Address::ZERO);
    let err = old.transfer_custodian(id, old.account).await.unwrap_err();
    reverted_with(&err, "NotCustodian");
    // An offer is spent by its acceptance: accepting again is refused.
    let err = new.accept_custodian(id).await.unwrap_err();
    reverted_with(&err, "NotPendingCustodian");

    // An offer can be withdrawn before it is accepted.
    new.transfer_custodian(id, stranger.account).await.unwrap();
    new.transfer_custodian(id, Address::ZERO).await.unwrap();
    let err = stranger.accept_custodian(id).await.unwrap_err();
    reverted_with(&err, "NotPendingCustodian");
    assert_eq!(new.dataset(id).await.unwrap().custodian, new.account);

    // The CLI: same steps, with its own checks in words.
    let deployment_file = work.path().join("deployment.json");
    std::fs::write(
        &deployment_file,
        serde_json::to_vec_pretty(&deployment).unwrap(),
    )
    .unwrap();
    let cli = |account: usize, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_zkcohort"))
            .args(["custodian"])
            .args(args)
            .args(["--rpc-url", &node.url, "--deployment"])
            .arg(&deployment_file)
            .env("ZKCOHORT_PRIVATE_KEY", ANVIL_DEV_KEYS[account])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let id_arg = id.to_string();
    let (old_addr, new_addr) = (old.account.to_string(), new.account.to_string());
    let (ok, text) = cli(2, &["transfer", "--dataset-id", &id_arg, "--to", &old_addr]);
    assert!(
        !ok && text.contains("is not the custodian of dataset"),
        "{text}"
    );
    let (ok, text) = cli(3, &["transfer", "--dataset-id", &id_arg, "--cancel"]);
    assert!(!ok && text.contains("no pending offer"), "{text}");
    let (ok, text) = cli(3, &["transfer", "--dataset-id", &id_arg, "--to", &old_addr]);
    assert!(ok && text.contains("stays its custodian until"), "{text}");
    let (ok, text) = cli(4, &["accept", "--dataset-id", &id_arg]);
    assert!(
        !ok && text.contains(&format!("is offered to {old_addr}")),
        "{text}"
    );
    let (ok, text) = cli(2, &["accept", "--dataset-id", &id_arg]);
    assert!(ok && text.contains(&format!("(was {new_addr}")), "{text}");
    assert_eq!(old.dataset(id).await.unwrap().custodian, old.account);
    let (ok, text) = cli(2, &["transfer", "--dataset-id", "99", "--to", &new_addr]);
    assert!(!ok && text.contains("UnknownDataset"), "{text}");
}
