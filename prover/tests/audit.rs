//! The regulator's audit against an anvil this test starts: a full history (three hospitals,
//! two queries with a suppressed answer and a refund after the deadline, a trial with a single
//! and a batch enrolment whose batch skips an already enrolled patient, withdrawals), audited
//! from the chain alone with no key: every event accounted for, every proof re-verified
//! off-chain, the money reconciled, no anomaly. Then the market owner swaps a circuit's
//! verifier (through the timelock) for a contract that accepts anything, a hospital claims with
//! a garbage proof releasing a small cell, another claims against its retired dataset: the
//! audit flags each. Finally an RPC that forges a published spec is caught.
//!
//! Proofs use the small circuits of the other tests (capacity 48, eligibility batches 1 and 4),
//! with the cached dev keys: six proofs in all.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, Bytes, B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use zkcohort::{
    audit::{self, render, Contract, Filter, Kind, Options, Outcome, Severity},
    chain::{
        address_to_fr, circuit_key, Client, DatasetRegistry, Deployment, FetchPolicy,
        HistoryReader, LocalNode, TrialTerms, ANVIL_DEV_KEYS,
    },
    commitment::{fr_to_hex, RecordLayout},
    credential::{Credential, OpenedCredential},
    dataset::{CommittedDataset, Dataset, DatasetDir},
    eligibility::{self, Candidate},
    keys::{KeyStore, ParamsSource},
    proof::{self, ProofArtifact},
    query::{QueryConstants, QuerySpec},
    schema::Schema,
    trial::TrialSpec,
    Fr,
};

alloy::sol! {
    /// The owner's verifier timelock, as both markets expose it.
    #[sol(rpc)]
    interface Gate {
        struct Circuit {
            address verifier;
            uint32 numConstants;
            uint16 batch;
            uint16 cells;
            uint32 dataColumns;
            bytes32 schemaHash;
        }
        function proposeVerifier(bytes32 circuitId, Circuit calldata circuit) external;
        function applyVerifier(bytes32 circuitId) external;
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The deployment file of this test's anvil, removed when dropped.
struct Out(PathBuf);

impl Drop for Out {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const PRICE: u64 = 100_000_000_000_000_000; // 0.1 ETH
const BOUNTY: u64 = 10_000_000_000_000_000; // 0.01 ETH

async fn now(c: &Client) -> u64 {
    c.provider
        .get_block_by_number(Default::default())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

async fn advance(c: &Client, secs: u64) {
    c.provider
        .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (secs,))
        .await
        .unwrap();
    c.provider
        .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await
        .unwrap();
}

/// The identity patient `i` of the dataset synthesised from `seed` made (a test value; a real
/// patient's secret is random).
fn identity(seed: u64, i: usize) -> zkcohort::membership::Identity {
    zkcohort::membership::Identity {
        secret: Fr::from(0x1d00_0000 + seed * 100_000 + i as u64),
    }
}

fn credential(
    dir: &Path,
    data: &CommittedDataset,
    index: usize,
    registrant: Address,
) -> OpenedCredential {
    let path = dir.join(format!("patient-{index}.json"));
    Credential::issue(data, index, registrant)
        .unwrap()
        .save(&path)
        .unwrap();
    Credential::load(&path).unwrap()
}

fn options(names: &BTreeMap<Address, String>, filter: Filter) -> Options {
    Options {
        from_block: 0,
        to_block: None,
        filter,
        schemas: vec![Schema::clinical_default()],
        manifest: audit::verifiers::load_manifest(
            &root().join("contracts/verifiers/verifiers.json"),
        )
        .unwrap(),
        names: names.clone(),
    }
}

/// Small log ranges, so the audit pages through many `eth_getLogs` requests.
fn policy() -> FetchPolicy {
    FetchPolicy {
        chunk_blocks: 7,
        attempts: 3,
        backoff: Duration::from_millis(20),
    }
}

fn kinds(a: &audit::Audit, severity: Severity) -> Vec<Kind> {
    a.anomalies
        .iter()
        .filter(|x| x.severity == severity)
        .map(|x| x.kind)
        .collect()
}

/// Keeps the rendered reports under `target/audit/` (ignored by git) for a person to look at.
fn keep(name: &str, md: &str, html: &str) {
    let dir = root().join("target/audit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.md")), md).unwrap();
    std::fs::write(dir.join(format!("{name}.html")), html).unwrap();
}

/// `zkcohort <args>` with no key in its environment; returns (success, stdout, stderr).
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zkcohort"))
        .args(args)
        .arg("--cache")
        .arg(root().join(".zkcohort"))
        .current_dir(root())
        .env_remove("ZKCOHORT_PRIVATE_KEY")
        .env_remove("ZKCOHORT_KEYSTORE_PASSWORD")
        .env_remove("ETH_RPC_URL")
        .env_remove("ZKCOHORT_DEPLOYMENT")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An RPC in front of `upstream` that forges every `SpecPublished` log it serves: the document
/// is replaced by `forge(document)`. Plain threads and blocking sockets; returns its URL.
fn lying_rpc(upstream: &str, forge: fn(&[u8]) -> Vec<u8>) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || relay(sock, &upstream, forge));
        }
    });
    url
}

/// Reads one HTTP/1.1 message (headers, then a Content-Length or chunked body).
fn read_message(r: &mut impl std::io::BufRead) -> Option<Vec<u8>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let mut body = Vec::new();
    if head.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.resize(len, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(body)
}

fn relay(sock: std::net::TcpStream, upstream: &str, forge: fn(&[u8]) -> Vec<u8>) {
    use std::io::{BufReader, Write};

    use alloy::sol_types::{SolEvent, SolValue};
    let topic = zkcohort::chain::QueryMarket::SpecPublished::SIGNATURE_HASH.to_string();
    let mut w = sock.try_clone().unwrap();
    let mut r = BufReader::new(sock);
    while let Some(body) = read_message(&mut r) {
        let mut up = std::net::TcpStream::connect(upstream).unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {upstream}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        up.write_all(request.as_bytes()).unwrap();
        up.write_all(&body).unwrap();
        let answer = read_message(&mut BufReader::new(up)).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        if let Some(logs) = json["result"].as_array_mut() {
            for log in logs {
                if log["topics"][0].as_str() == Some(topic.as_str()) {
                    let data: Bytes = log["data"].as_str().unwrap().parse().unwrap();
                    let document = Bytes::abi_decode(&data).unwrap();
                    let forged = Bytes::from(forge(&document)).abi_encode();
                    log["data"] = serde_json::Value::String(Bytes::from(forged).to_string());
                }
            }
        }
        let answer = serde_json::to_vec(&json).unwrap();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(&answer).is_err() {
            return;
        }
    }
}

/// The published spec with a smaller minimum cohort: what a lying RPC might show a reader.
fn lower_min_cohort(document: &[u8]) -> Vec<u8> {
    let mut spec: serde_json::Value = serde_json::from_slice(document).unwrap();
    if spec.get("statistic").is_some() {
        spec["min_cohort"] = serde_json::json!(5);
    } else {
        spec["name"] = serde_json::json!("another trial");
    }
    serde_json::to_vec(&spec).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_regulator_audits_the_chain_alone_and_catches_tampering() {
    let root = root();
    let work = tempfile::tempdir().unwrap();
    let store = KeyStore::new(root.join(".zkcohort"), ParamsSource::Dev);
    let schema = Schema::clinical_default();
    let (agg_params, agg) = store
        .circuit(&schema, &RecordLayout::new(&schema, 48))
        .unwrap();
    let single = store.eligibility_circuit(&schema, 1).unwrap();
    let batch = store.eligibility_circuit(&schema, 4).unwrap();

    let node = LocalNode::start(&root, None, &work.path().join("anvil.log")).unwrap();
    let port = node.url.rsplit(':').next().unwrap().to_owned();
    let out = Out(root
        .join("deployments")
        .join(format!("test-audit-{port}.json")));
    let deployer: B256 = ANVIL_DEV_KEYS[0].parse().unwrap();
    let deployment = Deployment::deploy(&root, &node.url, &deployer, &out.0).unwrap();
    let connect = |i: usize| {
        let d = deployment.clone();
        let url = node.url.clone();
        async move {
            Client::connect(&url, ANVIL_DEV_KEYS[i].parse().unwrap(), d)
                .await
                .unwrap()
        }
    };
    let network = connect(0).await; // accreditor and market owner
    let sponsor = connect(1).await;
    let hospitals = [connect(2).await, connect(3).await, connect(4).await];
    let patient = connect(5).await;
    // St Mary's rotates to a new key mid-history.
    let new_key = alloy::signers::local::PrivateKeySigner::random();
    let names: BTreeMap<Address, String> = [
        (new_key.address(), "St Mary's new key"),
        (network.account, "Research network"),
        (sponsor.account, "Sponsor"),
        (hospitals[0].account, "St Mary's"),
        (hospitals[1].account, "Riverside General"),
        (hospitals[2].account, "Hilltop Clinic"),
        (patient.account, "Patient"),
    ]
    .into_iter()
    .map(|(a, n)| (a, n.to_owned()))
    .collect();

    // Three hospitals commit and register; the network accredits them; one sets a floor.
    let mut data = Vec::new();
    for (i, (records, seed)) in [(45, 3), (38, 4), (12, 5)].into_iter().enumerate() {
        let dir = DatasetDir::new(work.path().join(format!("h{i}")));
        dir.write_dataset(&Dataset::synthesize(records, seed, 3))
            .unwrap();
        let identities: Vec<_> = (0..records)
            .map(|r| (r, identity(seed, r).commitment()))
            .collect();
        dir.add_identities(&identities, Default::default()).unwrap();
        let committed = dir.commit(Some(48)).unwrap();
        let (id, _) = hospitals[i]
            .register(&committed.info, &agg.config.circuit_id)
            .await
            .unwrap();
        network.accredit(hospitals[i].account).await.unwrap();
        data.push((committed, id));
    }
    hospitals[1].set_cell_floor(11).await.unwrap();
    let ids: Vec<U256> = data.iter().map(|d| d.1).collect();

    // Two queries (the second expires unanswered by one target) and a trial.
    let bmi = QuerySpec::load(&root.join("examples/query-all-adults-bmi.json")).unwrap();
    let e11 = QuerySpec::load(&root.join("examples/query-e11-hba1c.json")).unwrap();
    let t0 = now(&sponsor).await;
    let price = U256::from(PRICE);
    let (q1, _) = sponsor
        .post_query(
            &bmi,
            &bmi.compile(&schema).unwrap().to_fields(),
            &ids,
            Address::ZERO,
            price,
            t0 + 86_400,
            network.account,
        )
        .await
        .unwrap();
    let (q2, _) = sponsor
        .post_query(
            &e11,
            &e11.compile(&schema).unwrap().to_fields(),
            &ids[..2],
            Address::ZERO,
            price,
            t0 + 600,
            network.account,
        )
        .await
        .unwrap();
    let trial_spec = TrialSpec::load(&root.join("examples/trial-adults-bp.json")).unwrap();
    let criteria = trial_spec.compile(&schema).unwrap();
    let (trial_id, _) = sponsor
        .open_trial(
            zkcohort::chain::random_salt(),
            &trial_spec,
            B256::from(schema.hash()),
            &criteria,
            &TrialTerms {
                bounty: U256::from(BOUNTY),
                patient_share_bps: 2_000,
                cap: 8,
                deadline: t0 + 86_400,
                accreditor: network.account,
            },
        )
        .await
        .unwrap();

    // Answers: three to the first query (the 12-patient hospital's is suppressed), one to the
    // second.
    let mut artifacts: Vec<ProofArtifact> = Vec::new();
    for (h, (committed, id)) in hospitals.iter().zip(&data) {
        let binding = deployment.claim_binding(q1.to(), h.account);
        let a = proof::prove(&agg, &agg_params, committed, &bmi, Some(&binding)).unwrap();
        h.claim(q1, *id, &a).await.unwrap();
        artifacts.push(a);
    }
    assert!(
        artifacts[2].public.result.suppressed,
        "12 patients: below 11 consenting matches"
    );

    // St Mary's rotates its address: an offer to a wrong address, withdrawn, then one to its
    // new key, which the network accredits and which accepts. Its first answer stays the old
    // address's; its answer to the second query and its trial bounties go to the new key.
    network
        .provider
        .send_transaction(
            TransactionRequest::default()
                .with_to(new_key.address())
                .with_value(U256::from(10u64.pow(18))),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let st_marys = Client::connect(&node.url, new_key, deployment.clone())
        .await
        .unwrap();
    let st_marys_id = data[0].1;
    hospitals[0]
        .transfer_custodian(st_marys_id, hospitals[1].account)
        .await
        .unwrap();
    hospitals[0]
        .transfer_custodian(st_marys_id, Address::ZERO)
        .await
        .unwrap();
    hospitals[0]
        .transfer_custodian(st_marys_id, st_marys.account)
        .await
        .unwrap();
    network.accredit(st_marys.account).await.unwrap();
    st_marys.accept_custodian(st_marys_id).await.unwrap();

    let binding = deployment.claim_binding(q2.to(), st_marys.account);
    let a = proof::prove(&agg, &agg_params, &data[0].0, &e11, Some(&binding)).unwrap();
    // The old address sends the new one's proof: the market refuses it as not the custodian's.
    let err = hospitals[0]
        .send_claim(q2, st_marys_id, &a)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NotCustodian"), "{err}");
    st_marys.claim(q2, st_marys_id, &a).await.unwrap();

    // A patient of St Mary's enrols alone (with a payout address); then St Mary's refers three
    // patients in one batch, the first of them the same patient: that slot is skipped.
    let (committed, _) = &data[0];
    let eligible: Vec<usize> = (0..committed.dataset.records.len())
        .filter(|&i| {
            criteria
                .check(&schema, &committed.dataset.records[i])
                .is_ok()
        })
        .take(3)
        .collect();
    assert_eq!(eligible.len(), 3, "St Mary's has three eligible patients");
    // St Mary's registered from its first address (it rotated since): proofs name that one.
    let registrant = hospitals[0].account;
    let creds: Vec<OpenedCredential> = eligible
        .iter()
        .map(|&i| credential(work.path(), committed, i, registrant))
        .collect();
    // Seed 3 is St Mary's (the patients' identities, made by the patients).
    let patient_ids: Vec<_> = eligible.iter().map(|&i| identity(3, i)).collect();
    let solo = eligibility::prove(
        &single.1,
        &single.0,
        &trial_spec,
        trial_id,
        &[Candidate {
            credential: &creds[0],
            identity: &patient_ids[0],
            payout: address_to_fr(patient.account),
        }],
    )
    .unwrap();
    assert_eq!(patient.enroll(&solo).await.unwrap().0, 1);
    let referral: Vec<Candidate<'_>> = creds
        .iter()
        .zip(&patient_ids)
        .map(|(c, identity)| Candidate {
            credential: c,
            identity,
            payout: Fr::from(0),
        })
        .collect();
    let referral =
        eligibility::prove(&batch.1, &batch.0, &trial_spec, trial_id, &referral).unwrap();
    assert_eq!(st_marys.enroll(&referral).await.unwrap().0, 2);

    // Payments: St Mary's and the patient withdraw; the others leave their credit pending.
    hospitals[0].withdraw(Address::ZERO).await.unwrap();
    patient.withdraw_trials().await.unwrap();
    // After the second query's deadline, the sponsor reclaims Riverside's unanswered share.
    advance(&sponsor, 601).await;
    sponsor.refund(q2).await.unwrap();

    // ---- The audit: no key, the chain alone.
    let reader = HistoryReader::connect(&node.url, deployment.clone(), policy())
        .await
        .unwrap();
    let report = audit::run(&reader, &store, &options(&names, Filter::default()))
        .await
        .unwrap();
    let s = &report.summary;
    let verifiers = deployment.verifiers.len() as u64;
    let expected: BTreeMap<String, u64> = [
        ("Accredited", 4),
        ("CellFloorSet", 1),
        ("Claimed", 4),
        // The clinical schema's four purposes, registered in both markets at deployment.
        ("ConsentPurposeSet", 8),
        ("CustodianTransferStarted", 3),
        ("CustodianTransferred", 1),
        ("DatasetRegistered", 3),
        ("Enrolled", 3),
        ("EnrolmentSkipped", 1),
        ("OwnershipTransferred", 2),
        ("ProofAccepted", 6),
        ("QueryPosted", 2),
        ("Refunded", 1),
        ("SpecPublished", 3),
        ("TrialOpened", 1),
        ("VerifierSet", verifiers),
        ("Withdrawn", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(s.events, expected, "every event accounted for, per kind");
    assert!(
        report.history.unplaced.is_empty(),
        "{:?}",
        report.history.unplaced
    );
    assert_eq!(report.history.queries.len(), 2);
    // The rotation: St Mary's dataset is the new key's now, its history kept, and each
    // payment attributed to whoever was the custodian when it was made.
    let d = &report.history.datasets[&st_marys_id.to::<u64>()];
    assert_eq!(
        (d.custodian, d.registered_by, d.transfers.len()),
        (st_marys.account, hospitals[0].account, 4)
    );
    assert_eq!(d.custodians(), vec![hospitals[0].account, st_marys.account]);
    assert_eq!(d.pending_custodian(), None);
    let payee = |q: u64| report.history.queries[&q].claims[0].custodian;
    assert_eq!(
        payee(1),
        hospitals[0].account,
        "answered before the rotation"
    );
    assert_eq!(payee(2), st_marys.account, "answered after it");
    assert!(report.history.trials[0]
        .enrolments
        .iter()
        .all(|e| e.custodian == st_marys.account));
    let credited = |market: Contract, who: Address| {
        report
            .money
            .accounts
            .iter()
            .find(|x| x.market == market && x.account == who && x.token.is_zero())
            .map(|x| (x.as_custodian, x.withdrawn, x.pending_onchain))
    };
    assert_eq!(
        credited(Contract::QueryMarket, hospitals[0].account),
        Some((price, price, Some(U256::ZERO))),
        "the old address was paid, and withdrew, its answer from before the rotation"
    );
    assert_eq!(
        credited(Contract::QueryMarket, st_marys.account),
        Some((price, U256::ZERO, Some(price)))
    );
    // The patient enrolled alone names a payout (20% to it); the referral's two have none, so
    // their whole bounties go to the custodian.
    let custodian_share = U256::from(BOUNTY - BOUNTY / 5 + 2 * BOUNTY);
    assert_eq!(
        credited(Contract::TrialMarket, st_marys.account),
        Some((custodian_share, U256::ZERO, Some(custodian_share)))
    );
    assert_eq!(report.history.trials[0].enrolments.len(), 3);
    assert_eq!(report.history.trials[0].skipped.len(), 1);

    assert_eq!((s.proofs, s.verified), (6, 6), "{:#?}", report.proofs);
    assert!(report
        .proofs
        .iter()
        .all(|p| p.circuit_id.is_some() && p.verifier.is_some()));
    assert_eq!(
        report.proofs.iter().filter(|p| p.patients == 2).count(),
        1,
        "the batch proof enrolled two"
    );

    assert!(s.money_reconciles, "{:#?}", report.money);
    assert_eq!(
        report.money.balances.len(),
        2,
        "both markets' ETH balances checked"
    );
    assert!(report.money.partial.is_empty());
    let q2_escrow = &report.money.escrows[1];
    assert_eq!(
        (q2_escrow.paid, q2_escrow.refunded, q2_escrow.locked_onchain),
        (price, price, Some(U256::ZERO))
    );
    let trial_escrow = &report.money.escrows[2];
    assert_eq!(trial_escrow.locked_onchain, Some(U256::from(5 * BOUNTY)));

    assert_eq!(s.critical + s.warnings, 0, "{:#?}", report.anomalies);
    assert!(
        kinds(&report, Severity::Notice).contains(&Kind::DevParamsVerifier),
        "dev-params verifiers are noted on the local chain"
    );
    assert!(report
        .queries
        .iter()
        .all(|q| q.spec.published && q.spec.problems.is_empty()));
    assert_eq!(report.queries[0].name.as_deref(), Some(bmi.name.as_str()));
    assert_eq!(report.queries[0].pooled_sites, 2);
    let pooled = report.queries[0].pooled.unwrap();
    let (a0, a1) = (&artifacts[0].public.result, &artifacts[1].public.result);
    assert_eq!(pooled.n, a0.count + a1.count);

    // The report, for people and machines.
    let md = render::markdown(&report);
    for needle in [
        "No anomalies",
        "re-verified here: yes",
        "suppressed (fewer than 11 patients)",
        "Pooled over 2 sites (1 suppressed answer left out)",
        "St Mary's",
        "Skipped batch slot",
        "St Mary's new key",
        "offered dataset #1 to",
        "withdrew its offer of dataset #1",
        "became the custodian of dataset #1 (from St Mary's",
        "before: St Mary's (",
        "reconciles",
        "Timeline",
    ] {
        assert!(md.contains(needle), "markdown lacks `{needle}`:\n{md}");
    }
    let html = render::html(&report);
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"));
    for external in ["<script", "<link", "src=", "href=", "@import", "url("] {
        assert!(
            !html.contains(external),
            "self-contained: found `{external}`"
        );
    }
    keep("report", &md, &html);
    let json: serde_json::Value = serde_json::from_str(&render::json(&report)).unwrap();
    assert_eq!(json["summary"]["verified"], 6);
    assert_eq!(json["summary"]["money_reconciles"], true);

    // The command line needs no key, for the audit and for the status reads.
    let deployment_file = out.0.to_str().unwrap();
    let html_out = work.path().join("report.html");
    let (ok, stdout, stderr) = cli(&[
        "audit",
        "--rpc-url",
        &node.url,
        "--deployment",
        deployment_file,
        "--format",
        "html",
        "--out",
        html_out.to_str().unwrap(),
        "--strict",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("6 proofs re-verified (0 failed, 0 not checked), money reconciles"),
        "{stdout}"
    );
    assert!(std::fs::read_to_string(&html_out)
        .unwrap()
        .contains("re-verified here: yes"));
    // `study two-arm --query-ids`: the arms read from the market's Claimed events, no key.
    // Query 1 against itself: every site's two cells are the same released answer (the
    // 12-patient hospital's suppressed, named and left out), so the difference is 0.
    let study = |ids: &str| {
        cli(&[
            "--json",
            "study",
            "two-arm",
            "--query-ids",
            ids,
            "--rpc-url",
            &node.url,
            "--deployment",
            deployment_file,
        ])
    };
    let (ok, stdout, stderr) = study("1,1");
    assert!(ok, "{stdout}\n{stderr}");
    let s: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(s["study"]["sites"], 3, "{s}");
    assert_eq!(s["study"]["suppressed"], serde_json::json!([2]), "{s}");
    assert_eq!(s["sites"][2], format!("dataset #{}", ids[2]), "{s}");
    assert_eq!(s["study"]["welch"]["difference"], 0.0, "{s}");
    let pooled_n = artifacts[..2]
        .iter()
        .map(|a| a.public.result.count)
        .sum::<u64>();
    assert_eq!(s["study"]["welch"]["n"][0], pooled_n, "{s}");
    // Query 2 releases another column (HbA1c, not BMI): no comparison.
    let (ok, _, stderr) = study("1,2");
    assert!(
        !ok && stderr.contains("different statistics (`bmi`, `hba1c`)"),
        "{stderr}"
    );

    let (accreditor, custodian) = (
        network.account.to_string(),
        hospitals[0].account.to_string(),
    );
    let trial_hex = fr_to_hex(&trial_id);
    for args in [
        vec!["sponsor", "status", "--query-id", "1"],
        vec!["sponsor", "trial-status", "--trial-id", &trial_hex],
        vec![
            "accreditor",
            "check",
            "--accreditor",
            &accreditor,
            "--custodian",
            &custodian,
        ],
    ] {
        let mut args = args.clone();
        args.extend(["--rpc-url", &node.url, "--deployment", deployment_file]);
        let (ok, stdout, stderr) = cli(&args);
        assert!(ok, "{args:?}: {stdout}\n{stderr}");
    }

    // ---- Tampering. The owner swaps the aggregate circuit's verifier, through the timelock,
    // for a one-byte contract (STOP) that accepts anything.
    let init = Bytes::from_static(&[
        0x60, 0x01, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x01, 0x60, 0x00, 0xf3, 0x00,
    ]);
    let accept_all = network
        .provider
        .send_transaction(TransactionRequest::default().with_deploy_code(init))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .contract_address
        .unwrap();
    let gate = Gate::new(deployment.market, network.provider.clone());
    let circuit = circuit_key(&agg.config.circuit_id);
    gate.proposeVerifier(
        circuit,
        Gate::Circuit {
            verifier: accept_all,
            numConstants: QueryConstants::len_for(&schema) as u32,
            batch: 0,
            cells: 1,
            dataColumns: 0,
            schemaHash: B256::from(schema.hash()),
        },
    )
    .send()
    .await
    .unwrap()
    .get_receipt()
    .await
    .unwrap();
    advance(&network, 2 * 86_400 + 1).await;
    gate.applyVerifier(circuit)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // A fresh query on Riverside and Hilltop. Hilltop claims with a garbage proof releasing 5
    // patients; Riverside retires its dataset, then answers with its (valid) earlier proof.
    let t1 = now(&sponsor).await;
    let (q3, _) = sponsor
        .post_query(
            &bmi,
            &bmi.compile(&schema).unwrap().to_fields(),
            &ids[1..],
            Address::ZERO,
            price,
            t1 + 86_400,
            network.account,
        )
        .await
        .unwrap();
    let mut forged = artifacts[2].clone();
    let n = forged.instances.len();
    for (i, v) in [5u64, 100, 2000, 0].into_iter().enumerate() {
        forged.instances[n - 4 + i] = fr_to_hex(&Fr::from(v));
    }
    let binding = deployment.claim_binding(q3.to(), hospitals[2].account);
    forged.instances[n - 6] = fr_to_hex(&binding.context());
    forged.binding = Some(binding);
    forged.proof = format!("0x{}", "42".repeat(64));
    hospitals[2].claim(q3, ids[2], &forged).await.unwrap();
    DatasetRegistry::new(deployment.registry, hospitals[1].provider.clone())
        .retire(ids[1])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let binding = deployment.claim_binding(q3.to(), hospitals[1].account);
    let riverside = proof::prove(&agg, &agg_params, &data[1].0, &bmi, Some(&binding)).unwrap();
    hospitals[1].claim(q3, ids[1], &riverside).await.unwrap();

    let report = audit::run(&reader, &store, &options(&names, Filter::default()))
        .await
        .unwrap();
    let q3 = q3.to::<u64>();
    let critical = kinds(&report, Severity::Critical);
    let warnings = kinds(&report, Severity::Warning);
    assert!(
        critical.contains(&Kind::ProofFailsOffChain),
        "{:#?}",
        report.anomalies
    );
    assert!(
        critical.contains(&Kind::SmallCellReleased),
        "{:#?}",
        report.anomalies
    );
    assert!(
        warnings.contains(&Kind::UnrecognisedVerifier),
        "{:#?}",
        report.anomalies
    );
    assert!(
        warnings.contains(&Kind::ClaimAgainstRetiredDataset),
        "{:#?}",
        report.anomalies
    );
    assert!(kinds(&report, Severity::Notice).contains(&Kind::VerifierReplaced));
    let failed = report
        .anomalies
        .iter()
        .find(|a| a.kind == Kind::ProofFailsOffChain)
        .unwrap();
    assert_eq!(
        (failed.query, failed.dataset),
        (Some(q3), Some(ids[2].to::<u64>()))
    );
    assert!(
        failed.message.contains(&accept_all.to_string()),
        "{}",
        failed.message
    );
    let q3_proofs: Vec<&Outcome> = report
        .proofs
        .iter()
        .filter(|p| p.query == Some(q3))
        .map(|p| &p.outcome)
        .collect();
    assert_eq!(q3_proofs.len(), 2);
    assert_eq!(
        q3_proofs
            .iter()
            .filter(|o| ***o == Outcome::Verified)
            .count(),
        1,
        "Riverside's replayed proof is valid; Hilltop's is garbage"
    );
    assert_eq!(report.summary.verified, 7);
    assert!(report.summary.money_reconciles, "{:#?}", report.money);
    let md = render::markdown(&report);
    assert!(md.contains("re-verified here: NO"), "{md}");
    keep("report-tampered", &md, &render::html(&report));

    // Filtered to the first query: its findings only (none), the global ones still shown.
    let only_q1 = audit::run(
        &reader,
        &store,
        &options(
            &names,
            Filter {
                query: Some(1),
                ..Filter::default()
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(only_q1.queries.len(), 1);
    assert!(only_q1.trials.is_empty());
    assert_eq!(only_q1.summary.proofs, 3);
    assert!(!only_q1
        .anomalies
        .iter()
        .any(|a| a.query.is_some_and(|q| q != 1)));
    assert!(kinds(&only_q1, Severity::Warning).contains(&Kind::UnrecognisedVerifier));

    // The command line's --strict fails now.
    let (ok, stdout, stderr) = cli(&[
        "audit",
        "--rpc-url",
        &node.url,
        "--deployment",
        deployment_file,
        "--format",
        "json",
        "--strict",
    ]);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("critical finding"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(json["summary"]["critical"].as_u64().unwrap() >= 2);

    // An RPC that forges the published specs: each is flagged as not matching its hash, and
    // the first query's also as compiling to other constants than those posted.
    let liar = lying_rpc(&node.url, lower_min_cohort);
    let forged_reader = HistoryReader::connect(&liar, deployment.clone(), policy())
        .await
        .unwrap();
    let lied = audit::run(&forged_reader, &store, &options(&names, Filter::default()))
        .await
        .unwrap();
    let mismatched: Vec<(Option<u64>, bool)> = lied
        .anomalies
        .iter()
        .filter(|a| a.kind == Kind::SpecHashMismatch)
        .map(|a| (a.query, a.trial.is_some()))
        .collect();
    // In chain order: the queries posted before the trial, the trial, the query after.
    assert_eq!(
        mismatched,
        vec![
            (Some(1), false),
            (Some(2), false),
            (None, true),
            (Some(q3), false)
        ],
        "{:#?}",
        lied.anomalies
    );
    assert!(lied
        .anomalies
        .iter()
        .any(|a| a.kind == Kind::SpecConstantsMismatch && a.query == Some(1)));
    assert!(lied.queries[0].spec.problems[0].contains("not to the posted spec hash"));
    assert_eq!(
        lied.summary.verified, 7,
        "the proofs do not depend on the spec's words"
    );

    // A node that is gone: a clear error after bounded retries.
    drop(node);
    let err = HistoryReader::connect(reader.url(), deployment, policy())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, zkcohort::chain::ChainError::Unreachable { .. }),
        "{err}"
    );
}
