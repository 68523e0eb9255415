//! The whole story on a local anvil chain: deploy, three hospitals commit and register, a
//! sponsor funds a query, every hospital proves and claims, the generated verifier checks each
//! proof on-chain, the market pays, and the pooled result is compared with the plain answer.
//! A two-arm study follows ([`study`]): one query per arm, both proven and claimed at every
//! hospital, compared from the chain's records (Welch's t, fixed effect, a suppressed site).
//! Then a recruitment trial ([`trial`]): patients prove eligibility and enrol, one ineligible
//! patient gets no proof, a double enrolment is stopped by the nullifier.
//! Last, before the chain stops, a regulator audits its whole history ([`crate::audit`], what
//! `zkcohort audit` runs): every event read, every proof re-verified off-chain, the money
//! reconciled; the report (HTML, Markdown, JSON) is written into the work directory.
//! `zkcohort demo` runs it; `tests/market.rs` runs it small.

pub mod study;
pub mod trial;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use alloy::{
    primitives::{utils::format_ether, Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use anyhow::{ensure, Context as _, Result};
use num_bigint::BigUint;
use serde::Serialize;

use crate::{
    audit::{self, render},
    chain::{
        ChainError, Client, Deployment, FetchPolicy, HistoryReader, LocalNode, ANVIL_DEV_KEYS,
    },
    circuit::fast::record::FoldSchema,
    dataset::{CommitmentInfo, Dataset, DatasetDir, Overwrite},
    evm::{self, Manifest},
    keys::{FoldSpec, KeyStore},
    membership::Identity,
    proof::{self, Artifact},
    query::{evaluate, QueryResult, QuerySpec},
    schema::Schema,
};

/// One hospital of the scenario.
#[derive(Clone, Debug)]
pub struct Hospital {
    /// Display name.
    pub name: String,
    /// Synthetic records.
    pub records: usize,
    /// Generator seed.
    pub seed: u64,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Repository root (forge project, node_modules).
    pub root: PathBuf,
    /// Where datasets and proofs go.
    pub work: PathBuf,
    /// Circuit capacity shared by all hospitals (one verifier).
    pub capacity: usize,
    /// Data columns of the commit-and-prove circuit the hospitals answer with.
    pub data_columns: usize,
    /// Its masking rows per data column (they fix each commitment's query budget).
    pub mask_rows: usize,
    /// The hospitals.
    pub hospitals: Vec<Hospital>,
    /// The sponsor's query spec.
    pub query: PathBuf,
    /// How the two-arm study splits the query (its statistic is the query's).
    pub arms: study::Arms,
    /// Payment per answered dataset, in wei.
    pub price: U256,
    /// The sponsor's trial spec.
    pub trial: PathBuf,
    /// Bounty per enrolled patient, in wei.
    pub bounty: U256,
    /// Patient slots of the hospital's referral proof.
    pub referral_batch: usize,
    /// Params and keys.
    pub store: KeyStore,
}

impl Scenario {
    /// The README's demo: hospitals of 400, 300 and 60 patients, capacity 408.
    pub fn standard(root: &Path, store: KeyStore) -> Self {
        let h = |name: &str, records, seed| Hospital {
            name: name.into(),
            records,
            seed,
        };
        Scenario {
            root: root.to_owned(),
            work: root.join("demo-data"),
            capacity: 408,
            data_columns: 1,
            // A query budget of 512 proofs per commitment (2 openings per proof).
            mask_rows: 1025,
            hospitals: vec![
                h("St Mary's", 400, 11),
                h("Riverside General", 300, 22),
                h("Hilltop Clinic", 60, 13),
            ],
            query: root.join("examples/query-e11-hba1c.json"),
            arms: study::Arms {
                query: root.join("examples/query-hba1c-40-65.json"),
                column: "sex".into(),
                codes: ["F".into(), "M".into()],
            },
            price: U256::from(500_000_000_000_000_000u64),
            trial: root.join("examples/trial-t2d.json"),
            bounty: U256::from(50_000_000_000_000_000u64),
            referral_batch: trial::REFERRAL_BATCH,
            store,
        }
    }
}

/// What happened to one hospital.
#[derive(Clone, Debug, Serialize)]
pub struct HospitalReport {
    /// Name.
    pub name: String,
    /// Custodian account.
    pub custodian: Address,
    /// Dataset id on-chain.
    pub dataset_id: U256,
    /// Commitment (the commit-and-prove one, as registered).
    pub commitment: String,
    /// Proofs its commitment may still give after this one (its query budget less one).
    pub budget_left: usize,
    /// The proven (released) result.
    pub result: QueryResult,
    /// The plain result computed from the records.
    pub native: QueryResult,
    /// Seconds to prove.
    pub prove_seconds: f64,
    /// Gas of the claim transaction (verification included).
    pub claim_gas: u64,
    /// Wei withdrawn.
    pub paid: U256,
}

/// File name (without extension) of the audit report in the work directory.
pub const AUDIT_REPORT: &str = "audit-report";

/// The regulator's audit of the demo's chain, run before the chain stops.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    /// The self-contained HTML report.
    pub html: PathBuf,
    /// The same report in Markdown.
    pub markdown: PathBuf,
    /// The whole audit as JSON.
    pub json: PathBuf,
    /// Chain id audited.
    pub chain_id: u64,
    /// First block read.
    pub from_block: u64,
    /// Last block read.
    pub to_block: u64,
    /// Events, proofs re-verified, money, findings.
    pub summary: audit::Summary,
}

/// The outcome of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Deployed addresses.
    pub deployment: Deployment,
    /// Circuit used by every hospital (a commit-and-prove circuit).
    pub circuit_id: String,
    /// Query id on-chain.
    pub query_id: U256,
    /// The query spec as anyone reads it back from the chain (`SpecPublished`), in words.
    pub published_spec: String,
    /// Per hospital.
    pub hospitals: Vec<HospitalReport>,
    /// Pooled count, sum, sum of squares as the market recorded them.
    pub pooled_onchain: QueryResult,
    /// The same, from the records of the released (not suppressed) hospitals.
    pub pooled_native: QueryResult,
    /// Answers suppressed on-chain.
    pub suppressed: u32,
    /// The custom error that stopped a replayed proof.
    pub replay_rejected_with: String,
    /// The verifier whose key re-verified the first hospital's claim off-chain, from the
    /// transaction alone (calldata and published spec; no key, no artifact file).
    pub reverified_from_tx: String,
    /// Gas of the query posting.
    pub post_gas: u64,
    /// The two-arm study.
    pub study: study::StudyReport,
    /// The trial act.
    pub trial: trial::TrialReport,
    /// The audit of the whole chain history, and where its report was written.
    pub audit: AuditReport,
    /// Wall time of the whole run.
    pub seconds: f64,
}

fn say(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        println!("{}", msg.as_ref());
    }
}

/// The identity the synthetic patient of record `record` of hospital `hospital` (0-based) made:
/// from a seeded generator, so a rerun's patients are the same people. A real patient's comes
/// from their own randomness (`zkcohort patient identity`).
pub fn patient_identity(hospital: usize, record: usize) -> Identity {
    use rand::SeedableRng as _;
    use sha2::Digest as _;
    let seed = sha2::Sha256::digest(format!("zkcohort demo patient {hospital} {record}"));
    Identity::generate(&mut rand_chacha::ChaCha20Rng::from_seed(seed.into()))
}

/// Runs the scenario; narrates on stdout unless `quiet`.
pub async fn run(s: &Scenario, quiet: bool) -> Result<Report> {
    let started = Instant::now();
    let spec = QuerySpec::load(&s.query)?;
    let schema = Schema::clinical_default();
    let constants = spec.compile(&schema)?;
    std::fs::create_dir_all(&s.work).with_context(|| format!("creating {}", s.work.display()))?;

    say(
        quiet,
        "\n== Setup: circuit, keys and the generated Solidity verifier",
    );
    // Commit-and-prove: the dataset commitment is the circuit's data columns, and each
    // proof carries it; the statistic is accumulated by the circuit (one verifier per shape).
    let fold_spec = FoldSpec {
        capacity: s.capacity,
        mask_rows: s.mask_rows,
        data_columns: s.data_columns,
        statistics: vec![constants.statistic as usize],
        strata: None,
        attestation: false,
        rounding: None,
        dominance: None,
    };
    let (kzg, keys) = s.store.fold_keys(&schema, &fold_spec)?;
    let name = evm::write_fold_verifier(
        &s.root.join("contracts/verifiers"),
        &kzg,
        &keys,
        Overwrite::Refuse,
    )?;
    say(
        quiet,
        format!(
            "circuit {} (k = {}, {} data column(s), query budget {} proofs per commitment) → contract {name}, vk {}",
            keys.circuit_id,
            keys.k,
            keys.shape.slots,
            keys.shape.query_budget(),
            keys.vk_hash
        ),
    );

    let trial_circuits = trial::setup(s, &schema, quiet)?;

    say(quiet, "\n== Chain: anvil (embedded), forge deploy script");
    let anvil = LocalNode::start(&s.root, None, &s.work.join("anvil.log"))?;
    let url = anvil.url.clone();
    ensure!(
        ANVIL_DEV_KEYS.len() >= 3 + s.hospitals.len(),
        "too few dev accounts for the hospitals"
    );
    let keys_of: Vec<PrivateKeySigner> = ANVIL_DEV_KEYS
        .iter()
        .map(|k| k.parse().expect("valid dev key"))
        .collect();
    let deployer: B256 = ANVIL_DEV_KEYS[0].parse().expect("valid dev key");
    let port = url.rsplit(':').next().unwrap_or("0");
    let out = s.root.join("deployments").join(format!("demo-{port}.json"));
    let deployment = Deployment::deploy(&s.root, &url, &deployer, &out)?;
    say(
        quiet,
        format!(
            "registry {}  market {}  trials {}",
            deployment.registry, deployment.market, deployment.trials
        ),
    );
    for (circuit, addr) in &deployment.verifiers {
        let size = Client::connect(&url, keys_of[0].clone(), deployment.clone())
            .await?
            .provider
            .get_code_at(*addr)
            .await
            .map(|c| c.len())
            .unwrap_or(0);
        say(
            quiet,
            format!("verifier for {circuit}: {addr} ({size} bytes)"),
        );
    }
    ensure!(
        deployment.verifiers.contains_key(&keys.circuit_id),
        "the deployment has no verifier for {}",
        keys.circuit_id
    );

    let sponsor = Client::connect(&url, keys_of[1].clone(), deployment.clone()).await?;
    let mut hospitals = Vec::new();
    let mut folds = Vec::new();
    say(
        quiet,
        "\n== Hospitals: synthesise cohorts, commit, register the commitment",
    );
    for (i, h) in s.hospitals.iter().enumerate() {
        let client = Client::connect(&url, keys_of[2 + i].clone(), deployment.clone()).await?;
        let dir = DatasetDir::new(s.work.join(format!("hospital-{}", i + 1)));
        dir.write_dataset(&Dataset::synthesize(h.records, h.seed, 3))?;
        // Each synthetic patient made an identity and gave the hospital its commitment.
        let identities: Vec<_> = (0..h.records)
            .map(|r| (r, patient_identity(i, r).commitment()))
            .collect();
        // A no-op on a rerun; forced only for a work directory an older demo committed
        // without identities (its commitment moves to history/, as any forced replacement).
        dir.add_identities(&identities, Overwrite::Force)?;
        let committed = dir.commit(Some(s.capacity))?;
        // The commit-and-prove commitment (data columns laid out from salt.json): registered
        // with the fold circuit; the membership root (trials) comes with it.
        let fold = match dir.fold_commitment()? {
            Some(f) if f.circuit_id == keys.circuit_id => f,
            _ => {
                let f = proof::fold::commit(&committed, &kzg, &keys, &fold_spec)?;
                dir.write_fold_commitment(&f)?;
                f
            }
        };
        let registered = CommitmentInfo {
            commitment: fold.commitment.clone(),
            ..committed.info.clone()
        };
        let (dataset_id, mined) = client.register(&registered, &keys.circuit_id).await?;
        say(
            quiet,
            format!(
                "{:<18} {:>4} records  dataset #{dataset_id}  commitment {}…  ({} gas)",
                h.name,
                h.records,
                &fold.commitment[..18],
                mined.gas_used
            ),
        );
        hospitals.push((h.clone(), client, dir, committed, dataset_id));
        folds.push(fold);
    }

    say(
        quiet,
        "\n== Accreditor: a research network vouches for the three hospitals (sponsors name it)",
    );
    let network = Client::connect(&url, keys_of[0].clone(), deployment.clone()).await?;
    for (h, client, ..) in &hospitals {
        let mined = network.accredit(client.account).await?;
        say(
            quiet,
            format!(
                "{:<18} accredited by {} ({} gas)",
                h.name, network.account, mined.gas_used
            ),
        );
    }

    say(quiet, "\n== Sponsor: post and fund the query");
    say(quiet, format!("\"{}\"", spec.name));
    let now = sponsor
        .provider
        .get_block_by_number(Default::default())
        .await?
        .map(|b| b.header.timestamp)
        .unwrap_or(0);
    let ids: Vec<U256> = hospitals.iter().map(|h| h.4).collect();
    let (query_id, posted) = sponsor
        .post_query(
            &spec,
            &FoldSchema::of(&schema)?.query_constants(&constants)?,
            &ids,
            Address::ZERO,
            s.price,
            now + 3600,
            network.account,
        )
        .await?;
    say(
        quiet,
        format!(
            "query #{query_id}: {} ETH per dataset × {} escrowed ({} gas)",
            format_ether(s.price),
            ids.len(),
            posted.gas_used
        ),
    );
    let published = sponsor
        .query_spec(query_id)
        .await?
        .context("postQuery published no spec document")?;
    ensure!(
        published.document.as_ref() == spec.document().as_slice(),
        "the published spec document is not the spec's canonical JSON"
    );
    let read = QuerySpec::from_document(&published.document)?;
    ensure!(read == spec, "the published spec reads as another spec");
    let published_spec = read.describe();
    say(
        quiet,
        format!(
            "   spec document published with it (sha256 = the posted spec hash); anyone reads it back: {published_spec}"
        ),
    );

    say(quiet, "\n== Hospitals: prove against the commitment, claim (the verifier contract checks the proof)");
    let mut reports = Vec::new();
    let mut replay_rejected_with = String::new();
    let mut claim_txs = Vec::new();
    for (i, (h, client, dir, committed, dataset_id)) in hospitals.iter().enumerate() {
        let t = Instant::now();
        let query_no = u64::try_from(query_id)?;
        let binding = client.deployment.claim_binding(query_no, client.account);
        let artifact =
            proof::fold::prove(&keys, &kzg, committed, &folds[i], &spec, Some(&binding))?;
        let prove_seconds = t.elapsed().as_secs_f64();
        let path = dir.path.join("proof.json");
        crate::dataset::write_atomic(&path, &serde_json::to_vec_pretty(&artifact)?)?;
        let mined = client.claim(query_id, *dataset_id, &artifact).await?;
        claim_txs.push(mined.tx);
        let native = evaluate(&schema, &committed.dataset.records, &constants);
        let r = &artifact.public.result;
        say(
            quiet,
            format!(
                "{:<18} proved in {prove_seconds:>5.1}s  claim {} gas  → {}",
                h.name,
                mined.gas_used,
                if r.suppressed {
                    "suppressed (0 < n < k)".to_string()
                } else {
                    format!("n = {}", r.count)
                }
            ),
        );
        if i == 0 && hospitals.len() > 1 {
            say(quiet, "   attack: hospital 2 replays this proof (public in the calldata) for its own dataset");
            let (_, thief, _, _, thief_dataset) = &hospitals[1];
            replay_rejected_with = match thief.send_claim(query_id, *thief_dataset, &artifact).await
            {
                Err(ChainError::Reverted { reason, .. }) => reason,
                Err(other) => return Err(other.into()),
                Ok(_) => anyhow::bail!("a replayed proof was accepted"),
            };
            say(
                quiet,
                format!("   rejected by the market: {replay_rejected_with}"),
            );
        }
        reports.push(HospitalReport {
            name: h.name.clone(),
            custodian: client.account,
            dataset_id: *dataset_id,
            commitment: folds[i].commitment.clone(),
            // This proof is the commitment's first.
            budget_left: folds[i].query_budget - 1,
            result: r.clone(),
            native,
            prove_seconds,
            claim_gas: mined.gas_used,
            paid: U256::ZERO,
        });
    }

    say(quiet, "\n== Payments (pull): each hospital withdraws");
    for ((h, client, ..), report) in hospitals.iter().zip(&mut reports) {
        let before = client.balance(client.account).await?;
        let (owed, mined) = client.withdraw(Address::ZERO).await?;
        let after = client.balance(client.account).await?;
        report.paid = owed;
        say(
            quiet,
            format!(
                "{:<18} withdrew {} ETH (balance {} → {} ETH, {} gas)",
                h.name,
                format_ether(owed),
                format_ether(before),
                format_ether(after),
                mined.gas_used
            ),
        );
    }

    let q = sponsor.query(query_id).await?;
    let to_big = |x: U256| BigUint::from_bytes_be(&x.to_be_bytes::<32>());
    let pooled_onchain = QueryResult {
        records: 0,
        count: q.totalCount.to::<u64>(),
        sum: to_big(q.totalSum),
        sum_squares: to_big(q.totalSumOfSquares),
        suppressed: false,
    };
    let mut pooled_native = QueryResult {
        records: 0,
        count: 0,
        sum: BigUint::default(),
        sum_squares: BigUint::default(),
        suppressed: false,
    };
    for r in reports.iter().filter(|r| !r.native.suppressed) {
        pooled_native.count += r.native.count;
        pooled_native.sum += &r.native.sum;
        pooled_native.sum_squares += &r.native.sum_squares;
    }
    let scale = schema
        .decimal_scale(&spec.statistic)
        .expect("compiled query");
    say(
        quiet,
        "\n== Sponsor: pooled multi-site result (on-chain) vs plain computation over the records",
    );
    say(
        quiet,
        format!(
            "answered {} of {}, suppressed {}",
            q.answered, q.targets, q.suppressed
        ),
    );
    for (label, r) in [("on-chain", &pooled_onchain), ("native  ", &pooled_native)] {
        say(
            quiet,
            format!(
                "{label}: n = {}  sum = {}  sum² = {}",
                r.count, r.sum, r.sum_squares
            ),
        );
    }
    if let Some((mean, var)) = pooled_onchain.mean_variance(scale) {
        say(
            quiet,
            format!(
                "{}: mean {mean:.3}, variance {var:.3}, sd {:.3}",
                spec.statistic,
                var.sqrt()
            ),
        );
    }
    ensure!(
        pooled_onchain == pooled_native,
        "pooled on-chain result differs from the plain computation"
    );

    let study_sites: Vec<study::Site<'_>> = hospitals
        .iter()
        .zip(&folds)
        .map(
            |((h, client, _, committed, dataset_id), fold)| study::Site {
                name: &h.name,
                client,
                data: committed,
                fold,
                dataset_id: *dataset_id,
            },
        )
        .collect();
    let study = study::run(
        &url,
        &sponsor,
        &study_sites,
        (&keys, &kzg),
        &spec,
        &s.arms,
        (s.price, now + 3600, network.account),
        quiet,
    )
    .await?;
    say(
        quiet,
        "\n== A regulator (no key, no artifact file): re-verify a claim from its transaction",
    );
    let regulator = Client::connect_read_only(&url, deployment.clone()).await?;
    let manifest = Manifest::load(&s.root.join("contracts/verifiers").join(evm::MANIFEST))?;
    let read = regulator
        .artifact_of_tx(claim_txs[0], &manifest, std::slice::from_ref(&schema))
        .await?;
    let verified = proof::verify_artifact(&read.artifact, &s.store, &manifest)?;
    let from_tx = match &read.artifact {
        Artifact::Fold(a) => &a.public.result,
        Artifact::Aggregate(a) => &a.public.result,
        Artifact::Eligibility(_) => {
            anyhow::bail!("a claim transaction read back as an eligibility proof")
        }
    };
    ensure!(
        *from_tx == reports[0].result && read.succeeded == Some(true),
        "the claim read back from the chain is not the one made"
    );
    say(
        quiet,
        format!(
            "{}, claim tx {}…: proof and inputs from the calldata, spec from SpecPublished; \
             verified off-chain with the key of {} (derived, its hash the manifest's): {} patients",
            reports[0].name,
            &claim_txs[0].to_string()[..18],
            verified.verifier,
            from_tx.count
        ),
    );
    let reverified_from_tx = verified.verifier;

    let patient = Client::connect(
        &url,
        keys_of[2 + s.hospitals.len()].clone(),
        deployment.clone(),
    )
    .await?;
    let sites: Vec<trial::Site<'_>> = hospitals
        .iter()
        .enumerate()
        .map(|(hospital, (h, client, dir, committed, _))| trial::Site {
            name: &h.name,
            hospital,
            client,
            dir,
            data: committed,
        })
        .collect();
    let trial = trial::run(
        s,
        &trial_circuits,
        &sponsor,
        &patient,
        &sites,
        network.account,
        quiet,
    )
    .await?;

    say(
        quiet,
        "\n== A regulator (no key) audits the chain's whole history: logs, calldata, balances",
    );
    let mut names: BTreeMap<Address, String> = hospitals
        .iter()
        .map(|(h, client, ..)| (client.account, h.name.clone()))
        .collect();
    names.insert(sponsor.account, "Sponsor".into());
    names.insert(network.account, "Research network (deployer)".into());
    names.insert(patient.account, "Patient".into());
    let audit = audit_chain(s, &url, &deployment, names).await?;

    let seconds = started.elapsed().as_secs_f64();
    say(quiet, format!("\n== Done in {seconds:.0}s; anvil stopped."));
    drop(anvil);
    Ok(Report {
        deployment,
        circuit_id: keys.circuit_id.clone(),
        query_id,
        published_spec,
        hospitals: reports,
        pooled_onchain,
        pooled_native,
        suppressed: q.suppressed,
        replay_rejected_with,
        reverified_from_tx,
        post_gas: posted.gas_used,
        study,
        trial,
        audit,
        seconds,
    })
}

/// Runs the audit `zkcohort audit` runs against the demo's chain (from block 0, the built-in
/// schema, the verifier manifest the demo wrote), checks it is clean (every proof re-verified,
/// money reconciled, no critical finding or warning), and writes its report into the work
/// directory as [`AUDIT_REPORT`]`.{html,md,json}`.
async fn audit_chain(
    s: &Scenario,
    url: &str,
    deployment: &Deployment,
    names: BTreeMap<Address, String>,
) -> Result<AuditReport> {
    let opts = audit::Options {
        schemas: vec![Schema::clinical_default()],
        manifest: audit::verifiers::load_manifest(
            &s.root.join("contracts/verifiers").join(evm::MANIFEST),
        )?,
        names,
        ..Default::default()
    };
    let reader = HistoryReader::connect(url, deployment.clone(), FetchPolicy::default()).await?;
    let report = audit::run(&reader, &s.store, &opts).await?;
    let path = |ext: &str| s.work.join(format!("{AUDIT_REPORT}.{ext}"));
    let (html, markdown, json) = (path("html"), path("md"), path("json"));
    for (file, format) in [
        (&html, render::Format::Html),
        (&markdown, render::Format::Markdown),
        (&json, render::Format::Json),
    ] {
        crate::dataset::write_atomic(file, render::render(&report, format).as_bytes())?;
    }
    let sum = &report.summary;
    let findings = || {
        report
            .findings(audit::Severity::Warning)
            .map(|a| format!("{:?}: {}", a.kind, a.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    ensure!(
        sum.proofs > 0 && sum.verified == sum.proofs,
        "the audit of the demo's chain re-verified {} of {} proofs ({} failed, {} not checked); \
         report: {}",
        sum.verified,
        sum.proofs,
        sum.failed,
        sum.unchecked,
        html.display()
    );
    ensure!(
        sum.money_reconciles && sum.critical + sum.warnings == 0,
        "the audit of the demo's chain is not clean (money {}): {}; report: {}",
        if sum.money_reconciles {
            "reconciles"
        } else {
            "does NOT reconcile"
        },
        findings(),
        html.display()
    );
    Ok(AuditReport {
        html,
        markdown,
        json,
        chain_id: report.deployment.chain_id,
        from_block: report.from_block,
        to_block: report.to_block,
        summary: sum.clone(),
    })
}
