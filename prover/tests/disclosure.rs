//! The custodian's disclosure policy on a real market (anvil this test starts, forge deploy
//! script, real proofs checked on-chain), through the CLI: `custodian claim` records the mined
//! answer with its query and sponsor, refuses a differencing claim and a sponsor over budget
//! before sending anything (the query stays unanswered, the ledger unchanged).

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
    disclosure::{Ledger, LEDGER_FILE},
    schema::Schema,
};

struct Cli {
    root: PathBuf,
    rpc: String,
    deployment: PathBuf,
}

impl Cli {
    /// Runs `zkcohort` as dev account `account`; (success, stdout + stderr).
    fn run(&self, account: usize, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkcohort"));
        cmd.arg("--cache")
            .arg(self.root.join(".zkcohort"))
            .args(args)
            .env("ZKCOHORT_PRIVATE_KEY", ANVIL_DEV_KEYS[account])
            .env("ETH_RPC_URL", &self.rpc)
            .env("ZKCOHORT_DEPLOYMENT", &self.deployment);
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn ok(&self, account: usize, args: &[&str]) -> String {
        let (ok, text) = self.run(account, args);
        assert!(ok, "{args:?}: {text}");
        text
    }
}

fn query(dir: &Path, name: &str, ages: (u64, u64)) -> String {
    let path = dir.join(name);
    let spec = serde_json::json!({
        "name": format!("HbA1c, ages {}-{}", ages.0, ages.1),
        "criteria": {"age": [ages.0, ages.1]},
        "consent": "research",
        "statistic": "hba1c",
    });
    fs::write(&path, spec.to_string()).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_are_checked_against_the_ledger_and_recorded_once_mined() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let work = tempfile::tempdir().unwrap();
    let t = work.path();
    let (node, deployment, deployment_file) = common::local_market(&root, "disclosure", t);
    let cli = Cli {
        root: root.clone(),
        rpc: node.url.clone(),
        deployment: deployment_file,
    };
    let sponsor: PrivateKeySigner = ANVIL_DEV_KEYS[1].parse().unwrap();

    // 20 consenting patients aged 40–59, one aged 65, 12 aged 20–31.
    let mut csv = String::from("age,sex,dx,hba1c,sbp,bmi,consent,site\n");
    for age in (40..60).chain([65]).chain(20..32) {
        csv += &format!(
            "{age},M,E11.9,{}.{},125,29.5,research,1\n",
            5 + age % 4,
            age % 10
        );
    }
    fs::write(t.join("records.csv"), csv).unwrap();
    let schema = t.join("schema.json");
    fs::write(
        &schema,
        serde_json::to_vec(&Schema::clinical_default()).unwrap(),
    )
    .unwrap();
    let d = t.join("h1");
    let ds = d.to_str().unwrap();
    let path = |p: &Path| p.display().to_string();
    cli.ok(
        2,
        &[
            "dataset",
            "import",
            "--schema",
            &path(&schema),
            "--csv",
            &path(&t.join("records.csv")),
            "--out",
            ds,
        ],
    );
    cli.ok(
        2,
        &["dataset", "commit", "--dataset", ds, "--capacity", "48"],
    );
    cli.ok(2, &["custodian", "register", "--dataset", ds]);
    let registration: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("registration.json")).unwrap()).unwrap();
    let dataset_id = registration["dataset_id"].as_u64().unwrap().to_string();

    // Three queries: ages 40–65, 40–64 (one patient less), 18–39 (far from both).
    let (a, b, c) = (
        query(t, "a.json", (40, 65)),
        query(t, "b.json", (40, 64)),
        query(t, "c.json", (18, 39)),
    );
    let ids: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|q| {
            let out = cli.ok(
                1,
                &[
                    "--json",
                    "sponsor",
                    "post",
                    "--query",
                    q,
                    "--schema",
                    &path(&schema),
                    "--datasets",
                    &dataset_id,
                    "--price",
                    "0.1",
                ],
            );
            let start = out.find('{').unwrap();
            // stdout (the JSON) comes first, stderr's log lines after it.
            let v: serde_json::Value = serde_json::Deserializer::from_str(&out[start..])
                .into_iter()
                .next()
                .unwrap()
                .unwrap();
            v["query_id"].as_u64().unwrap().to_string()
        })
        .collect();
    let (qa, qb, qc) = (&ids[0], &ids[1], &ids[2]);
    let proof = |name: &str| path(&t.join(name));

    // Query #1: proven and claimed under the default policy; both recorded.
    cli.ok(
        2,
        &[
            "prove",
            "--dataset",
            ds,
            "--query",
            &a,
            "--out",
            &proof("a.json.proof"),
            "--for-query",
            qa,
        ],
    );
    cli.ok(
        2,
        &[
            "custodian",
            "claim",
            "--query-id",
            qa,
            "--dataset",
            ds,
            "--artifact",
            &proof("a.json.proof"),
        ],
    );
    let ledger = Ledger::read(&d).unwrap();
    assert_eq!(ledger.entries.len(), 2);
    let claimed = &ledger.entries[1];
    let on_chain = claimed.on_chain.as_ref().unwrap();
    assert_eq!(
        (on_chain.query_id.to_string(), on_chain.chain_id),
        (qa.clone(), deployment.chain_id)
    );
    assert!(on_chain.tx.is_some());
    assert!(claimed
        .sponsor
        .as_deref()
        .unwrap()
        .eq_ignore_ascii_case(&sponsor.address().to_string()));
    assert_eq!(claimed.result.count, 21);
    let listing = cli.ok(2, &["dataset", "ledger", ds]);
    assert!(
        listing.contains("2 answer(s)") && listing.contains(&format!("claimed query #{qa}")),
        "{listing}"
    );
    assert!(
        !listing.contains(&hex_bits(&d)),
        "the matching sets are not printed"
    );

    // Query #2 (ages 40–64), proven under a lax policy the custodian later regrets: the claim
    // under the default policy is refused before anything is sent.
    let lax = t.join("lax.json");
    fs::write(&lax, r#"{"min_difference": 1}"#).unwrap();
    cli.ok(
        2,
        &[
            "prove",
            "--dataset",
            ds,
            "--query",
            &b,
            "--out",
            &proof("b.json.proof"),
            "--for-query",
            qb,
            "--policy",
            &path(&lax),
        ],
    );
    let before = fs::read(d.join(LEDGER_FILE)).unwrap();
    let (ok, text) = cli.run(
        2,
        &[
            "custodian",
            "claim",
            "--query-id",
            qb,
            "--dataset",
            ds,
            "--artifact",
            &proof("b.json.proof"),
        ],
    );
    assert!(
        !ok && text.contains(&format!("query #{qb} not claimed"))
            && text.contains("by 1 record(s)")
            && text.contains("sponsor refund"),
        "{text}"
    );
    assert_eq!(fs::read(d.join(LEDGER_FILE)).unwrap(), before);
    let reader = Client::connect(&node.url, sponsor.clone(), deployment.clone())
        .await
        .unwrap();
    assert_eq!(
        reader
            .query(qb.parse::<U256>().unwrap())
            .await
            .unwrap()
            .answered,
        0
    );

    // Query #3: far enough, but a budget of one answer per sponsor (the dataset's policy.json)
    // is spent; an explicit --policy with a larger budget lets it through.
    fs::write(d.join("policy.json"), r#"{"max_answers_per_sponsor": 1}"#).unwrap();
    cli.ok(
        2,
        &[
            "prove",
            "--dataset",
            ds,
            "--query",
            &c,
            "--out",
            &proof("c.json.proof"),
            "--for-query",
            qc,
        ],
    );
    let before = fs::read(d.join(LEDGER_FILE)).unwrap();
    let claim_c = [
        "custodian",
        "claim",
        "--query-id",
        qc,
        "--dataset",
        ds,
        "--artifact",
        &proof("c.json.proof"),
    ];
    let (ok, text) = cli.run(2, &claim_c);
    assert!(
        !ok && text.contains("already has 1 answer(s)") && text.contains("max_answers_per_sponsor"),
        "{text}"
    );
    assert_eq!(fs::read(d.join(LEDGER_FILE)).unwrap(), before);
    assert_eq!(
        reader
            .query(qc.parse::<U256>().unwrap())
            .await
            .unwrap()
            .answered,
        0
    );
    let two = t.join("two.json");
    fs::write(&two, r#"{"max_answers_per_sponsor": 2}"#).unwrap();
    let mut args = claim_c.to_vec();
    args.extend(["--policy", two.to_str().unwrap()]);
    cli.ok(2, &args);
    assert_eq!(
        reader
            .query(qc.parse::<U256>().unwrap())
            .await
            .unwrap()
            .answered,
        1
    );
    let ledger = Ledger::read(&d).unwrap();
    assert_eq!(ledger.entries.len(), 5);
    assert_eq!(
        ledger.entries[4]
            .on_chain
            .as_ref()
            .unwrap()
            .query_id
            .to_string(),
        *qc
    );
}

/// The hex of the first matching set in the ledger (what must never be printed).
fn hex_bits(dir: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join(LEDGER_FILE)).unwrap()).unwrap();
    let bits = v["entries"][0]["matching"]["bits"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(bits.len() >= 8);
    bits
}
