//! Signal attestations on a real market (issue #13): anvil this test starts, the forge deploy
//! script (which deploys the committed attestation verifier, `FoldVerifierN48W1Attest`), and
//! the command line. A sponsor posts "is the mean BMI of consenting adults at least 28?" to
//! two hospitals; each commits for the attestation circuit, proves and claims. The generated
//! verifier checks every proof on-chain: the hospital whose cohort's mean reaches 28 is paid,
//! the other's no is recorded and paid nothing, and its escrow is refunded to the sponsor.
//! The regulator's audit re-verifies both proofs from the chain alone.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

#[allow(dead_code)]
mod common;

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use zkcohort::{
    chain::{Client, ANVIL_DEV_KEYS},
    disclosure::Ledger,
    schema::Schema,
};

struct Cli {
    root: PathBuf,
    rpc: String,
    deployment: PathBuf,
}

impl Cli {
    /// Runs `zkcohort` as dev account `account`; (success, stdout, stderr).
    fn run(&self, account: usize, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_zkcohort"))
            .arg("--cache")
            .arg(self.root.join(".zkcohort"))
            .args(args)
            .env("ZKCOHORT_PRIVATE_KEY", ANVIL_DEV_KEYS[account])
            .env("ETH_RPC_URL", &self.rpc)
            .env("ZKCOHORT_DEPLOYMENT", &self.deployment)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, account: usize, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(account, args);
        assert!(ok, "{args:?}: {stdout}\n{stderr}");
        stdout
    }
}

/// A hospital's records: 30 consenting adults with BMI `bmi` ± 1.
fn records(bmi: f64) -> String {
    let mut csv = String::from("age,sex,dx,hba1c,sbp,bmi,consent,site\n");
    for i in 0..30 {
        csv += &format!(
            "{},F,E11.9,6.1,125,{:.1},research,1\n",
            30 + i,
            bmi - 1.0 + f64::from(i % 3)
        );
    }
    csv
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attestation_is_paid_on_a_verified_yes_and_recorded_on_a_no() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let work = tempfile::tempdir().unwrap();
    let t = work.path();
    let (node, deployment, deployment_file) = common::local_market(&root, "attestation", t);
    let cli = Cli {
        root: root.clone(),
        rpc: node.url.clone(),
        deployment: deployment_file.clone(),
    };
    let path = |p: &Path| p.display().to_string();
    let schema = t.join("schema.json");
    fs::write(
        &schema,
        serde_json::to_vec(&Schema::clinical_default()).unwrap(),
    )
    .unwrap();

    // Two hospitals (dev accounts 2 and 3): mean BMI 29 and 27, committed for the
    // attestation circuit whose verifier the deployment holds, and registered.
    let mut ids = Vec::new();
    let mut dirs = Vec::new();
    for (account, bmi) in [(2, 29.0), (3, 27.0)] {
        let d = t.join(format!("h{account}"));
        let csv = t.join(format!("h{account}.csv"));
        fs::write(&csv, records(bmi)).unwrap();
        let ds = path(&d);
        cli.ok(
            account,
            &[
                "dataset",
                "import",
                "--schema",
                &path(&schema),
                "--csv",
                &path(&csv),
                "--out",
                &ds,
            ],
        );
        cli.ok(
            account,
            &[
                "dataset",
                "commit",
                "--dataset",
                &ds,
                "--capacity",
                "48",
                "--fold",
                "--attest",
                "--statistics",
                "bmi",
                "--query-budget",
                "8",
            ],
        );
        cli.ok(account, &["custodian", "register", "--dataset", &ds]);
        let registration: serde_json::Value =
            serde_json::from_slice(&fs::read(d.join("registration.json")).unwrap()).unwrap();
        ids.push(registration["dataset_id"].as_u64().unwrap());
        dirs.push(d);
    }

    // The sponsor (account 1) asks for the attestation and escrows 0.1 ETH per hospital.
    let query = t.join("attest.json");
    fs::write(
        &query,
        serde_json::json!({
            "name": "Mean BMI of consenting adults at least 28",
            "criteria": {"age": [18, 127]},
            "consent": "research",
            "statistic": "bmi",
            "attest": {"mean_at_least": "28"},
        })
        .to_string(),
    )
    .unwrap();
    let targets = format!("{},{}", ids[0], ids[1]);
    let posted = cli.ok(
        1,
        &[
            "--json",
            "sponsor",
            "post",
            "--query",
            &path(&query),
            "--schema",
            &path(&schema),
            "--datasets",
            &targets,
            "--price",
            "0.1",
            "--deadline-secs",
            "3600",
        ],
    );
    let posted: serde_json::Value = serde_json::from_str(&posted).unwrap();
    let q = posted["query_id"].as_u64().unwrap().to_string();
    let sponsor: PrivateKeySigner = ANVIL_DEV_KEYS[1].parse().unwrap();
    let reader = Client::connect(&node.url, sponsor, deployment.clone())
        .await
        .unwrap();
    assert!(reader.query(q.parse().unwrap()).await.unwrap().attestation);

    // Each hospital proves for the query and claims: the verifier checks each proof on-chain.
    for (i, (account, yes)) in [(2, true), (3, false)].into_iter().enumerate() {
        let ds = path(&dirs[i]);
        let artifact = t.join(format!("h{account}.proof"));
        cli.ok(
            account,
            &[
                "prove",
                "--dataset",
                &ds,
                "--query",
                &path(&query),
                "--out",
                &path(&artifact),
                "--for-query",
                &q,
            ],
        );
        let claimed = cli.ok(
            account,
            &[
                "--json",
                "custodian",
                "claim",
                "--query-id",
                &q,
                "--dataset",
                &ds,
                "--artifact",
                &path(&artifact),
            ],
        );
        let claimed: serde_json::Value = serde_json::from_str(&claimed).unwrap();
        assert_eq!(claimed["verdict"], serde_json::json!(yes), "{claimed}");
        // The ledger holds the on-chain attestation with its verdict.
        let ledger = Ledger::read(&dirs[i]).unwrap();
        let last = ledger.entries.last().unwrap();
        assert_eq!(last.verdict, Some(yes));
        assert!(last.on_chain.as_ref().unwrap().tx.is_some());
    }
    let state = reader.query(q.parse().unwrap()).await.unwrap();
    assert_eq!((state.answered, state.declined), (1, 1));
    assert_eq!(state.totalCount, U256::ZERO, "an attestation pools nothing");
    let status = cli.ok(4, &["sponsor", "status", "--query-id", &q]);
    assert!(
        status.contains("(an attestation): 1 yes (paid), 1 no (unpaid) of 2 targets"),
        "{status}"
    );
    // The yes withdraws its price; the no has nothing to withdraw.
    let out = cli.ok(2, &["--json", "custodian", "withdraw"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["amount"], "100000000000000000");
    let (ok, stdout, stderr) = cli.run(3, &["custodian", "withdraw"]);
    assert!(
        !ok && stderr.contains("NothingToWithdraw"),
        "{stdout}\n{stderr}"
    );

    // The regulator's audit re-verifies both proofs from the chain and reconciles the money.
    let (ok, stdout, stderr) = cli.run(
        4,
        &[
            "audit",
            "--rpc-url",
            &node.url,
            "--deployment",
            &path(&deployment_file),
            "--format",
            "json",
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let audit: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let summary = &audit["summary"];
    assert_eq!(summary["verified"], 2, "{audit:#}");
    assert_eq!(summary["money_reconciles"], true, "{audit:#}");
    assert_eq!(summary["critical"], 0, "{audit:#}");
}
