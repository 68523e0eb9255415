//! `zkcohort`: the command line of custodians, sponsors, patients and verifiers.

mod accreditor;
mod add_identity;
mod audit;
mod custodian_transfer;
mod dataset;
mod fold;
mod ledger;
mod status;
mod study;
mod trial_id;
mod trials;
mod verify;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use alloy::primitives::{Address, U256};
use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use zkcohort::{
    chain,
    dataset::{
        write_atomic, CommitmentInfo, DatasetDir, FoldCommitmentInfo, Overwrite, Registration,
    },
    demo, disclosure, evm,
    keys::{CircuitConfig, KeyStore, ParamsSource},
    proof::{self, fold::FoldCell, Answer},
    query::{self, ClaimBinding, QueryResult, QuerySpec},
    schema::Schema,
};

/// Zero-knowledge cohort statistics over committed patient datasets.
#[derive(Parser)]
#[command(name = "zkcohort", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
pub(crate) struct Global {
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Cache for params and keys.
    #[arg(
        long,
        global = true,
        env = "ZKCOHORT_CACHE",
        default_value = ".zkcohort"
    )]
    cache: PathBuf,
    /// Universal KZG params file (halo2 raw format). Without it, INSECURE dev params are used.
    #[arg(
        long,
        global = true,
        env = "ZKCOHORT_PARAMS",
        requires = "params_sha256"
    )]
    params: Option<PathBuf>,
    /// Expected SHA-256 (hex) of the --params file.
    #[arg(long, global = true, env = "ZKCOHORT_PARAMS_SHA256")]
    params_sha256: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Create, import, commit and inspect datasets.
    #[command(subcommand)]
    Dataset(dataset::DatasetCmd),
    /// Work with query specs.
    #[command(subcommand)]
    Query(QueryCmd),
    /// Plan a circuit, generate params and keys, and write the Solidity verifier: the aggregate
    /// circuit of a committed dataset (`--dataset`), or the eligibility circuit for `--batch`
    /// patients of a schema.
    Setup {
        /// Committed dataset directory (aggregate circuit at its capacity).
        #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
        dataset: Option<PathBuf>,
        /// Patient slots of the eligibility circuit.
        #[arg(long)]
        batch: Option<usize>,
        /// Schema of the eligibility circuit.
        #[arg(long, default_value = "examples/schema-clinical-v1.json")]
        schema: PathBuf,
        /// Write the Solidity verifier (`AggregateVerifierN<capacity>.sol` or
        /// `EligibilityVerifierB<batch>.sol`) into this directory and record it in the
        /// directory's manifests (which the deploy script reads). A verifier of another circuit
        /// under the same name (another schema of the same capacity) is refused: use another
        /// directory for it.
        #[arg(long)]
        verifier_dir: Option<PathBuf>,
        /// Replace another circuit's verifier of the same name in --verifier-dir.
        #[arg(long, requires = "verifier_dir")]
        force: bool,
    },
    /// Prove a query over a committed dataset and write a proof artifact. The custodian's
    /// disclosure policy is checked first against the dataset's ledger (refused: nothing is
    /// proven); the answer is recorded in the ledger (docs/data.md, "Disclosure control").
    Prove {
        /// Committed dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Query spec (JSON).
        #[arg(long)]
        query: PathBuf,
        /// Output artifact.
        #[arg(long)]
        out: PathBuf,
        /// Disclosure policy (JSON; default: the dataset's policy.json, else the defaults).
        #[arg(long)]
        policy: Option<PathBuf>,
        #[command(flatten)]
        bind: BindArgs,
    },
    /// Verify a proof artifact (aggregate or eligibility) offline, on any machine: the
    /// verifying key is derived from the circuit the artifact records and must be the deployed
    /// verifier's (verifiers.json); prints what it proves in natural units.
    Verify(verify::VerifyArgs),
    /// Study templates over verified answers (issue #13): `two-arm` compares two arms' answers
    /// (Welch's t, or a 2×2 table for a 0/1 statistic; fixed-effect meta-analysis across sites).
    #[command(subcommand)]
    Study(study::StudyCmd),
    /// Local chain: start anvil and deploy the contracts.
    #[command(subcommand)]
    Chain(ChainCmd),
    /// Custodian actions on-chain.
    #[command(subcommand)]
    Custodian(CustodianCmd),
    /// Sponsor actions on-chain.
    #[command(subcommand)]
    Sponsor(SponsorCmd),
    /// Patient actions: prove trial eligibility, enrol, withdraw a payout.
    #[command(subcommand)]
    Patient(trials::PatientCmd),
    /// Accreditor actions: vouch for custodians (sponsors name an accreditor they trust).
    #[command(subcommand)]
    Accreditor(accreditor::AccreditorCmd),
    /// Regulators: rebuild the history from the chain alone (no key), re-verify every proof
    /// off-chain, reconcile the money, flag anomalies, and write a report (md, html, json).
    Audit(audit::AuditArgs),
    /// The whole story on an embedded anvil chain (the README's `make demo`).
    Demo {
        /// Patient slots of the hospital's referral proof (its verifier is generated into
        /// contracts/verifiers and deployed).
        #[arg(long, default_value_t = zkcohort::demo::trial::REFERRAL_BATCH)]
        referral_batch: usize,
    },
}

#[derive(Args, Clone)]
pub(crate) struct ChainArgs {
    /// JSON-RPC endpoint.
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// Encrypted JSON keystore of the acting account. Without it, the account's hex private
    /// key is read from ZKCOHORT_PRIVATE_KEY: never from the command line, which every local
    /// process can read.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Password of --keystore.
    #[arg(long, env = "ZKCOHORT_KEYSTORE_PASSWORD", hide_env_values = true)]
    keystore_password: Option<String>,
    #[command(flatten)]
    deployment: DeploymentArg,
}

/// The deployment file a command reads the contracts' addresses and the chain id from (the
/// one definition of `--deployment`).
#[derive(Args, Clone, Debug)]
pub(crate) struct DeploymentArg {
    /// Deployment file written by the deploy script (`chain up` writes deployments/local.json).
    #[arg(
        id = "deployment",
        long = "deployment",
        value_name = "FILE",
        env = "ZKCOHORT_DEPLOYMENT",
        default_value = "deployments/local.json"
    )]
    path: PathBuf,
}

impl DeploymentArg {
    /// Reads the file.
    pub(crate) fn load(&self) -> Result<chain::Deployment> {
        Ok(chain::Deployment::load(&self.path)?)
    }
}

/// What a proof is claimable for: one query of one market, by one address.
#[derive(Args)]
pub(crate) struct BindArgs {
    /// The market query this proof answers: only the claimant can claim it, only for that query
    /// of the deployment's QueryMarket (without it the proof is bound to nothing and no market
    /// pays it: a proof for readers).
    #[arg(long)]
    for_query: Option<u64>,
    /// The address that will send the claim (the dataset's custodian; default: the account of
    /// ZKCOHORT_PRIVATE_KEY).
    #[arg(long, requires = "for_query")]
    claimant: Option<Address>,
    /// Deployment file (its chain id and QueryMarket address).
    #[command(flatten)]
    deployment: DeploymentArg,
}

impl BindArgs {
    /// The binding asked for, if any.
    fn binding(&self) -> Result<Option<ClaimBinding>> {
        let Some(query_id) = self.for_query else {
            return Ok(None);
        };
        let claimant = match self.claimant {
            Some(a) => a,
            None => match std::env::var("ZKCOHORT_PRIVATE_KEY") {
                Ok(key) => chain::signer(Some(&key), None)?.address(),
                Err(_) => bail!(
                    "--for-query needs the claiming address: --claimant, or ZKCOHORT_PRIVATE_KEY"
                ),
            },
        };
        let deployment = self
            .deployment
            .load()
            .context("--for-query reads the chain id and market from the deployment")?;
        Ok(Some(deployment.claim_binding(query_id, claimant)))
    }
}

#[derive(Subcommand)]
enum ChainCmd {
    /// Start anvil, deploy registry, market and every generated verifier, and keep running.
    Up {
        /// Port for anvil.
        #[arg(long, default_value_t = 8545)]
        port: u16,
    },
}

#[derive(Subcommand)]
enum CustodianCmd {
    /// Register a committed dataset's commitment.
    Register {
        /// Committed dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Submit a proof artifact as the answer to a query. The disclosure policy is checked
    /// first against the dataset's ledger (refused: nothing is sent, the sponsor's escrow is
    /// refundable after the deadline); the mined answer is recorded in the ledger.
    Claim {
        /// Query id.
        #[arg(long)]
        query_id: u64,
        /// Dataset id (default: from the dataset directory's registration.json).
        #[arg(long)]
        dataset_id: Option<u64>,
        /// Committed, registered dataset directory the artifact was proven from (its
        /// disclosure ledger is checked and updated).
        #[arg(long)]
        dataset: PathBuf,
        /// Proof artifact from `prove`.
        #[arg(long)]
        artifact: PathBuf,
        /// Disclosure policy (JSON; default: the dataset's policy.json, else the defaults).
        #[arg(long)]
        policy: Option<PathBuf>,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Set the smallest cell this custodian releases: queries whose `min_cohort` is lower
    /// cannot be claimed against its datasets (the markets' floor of 11 applies anyway).
    CellFloor {
        /// The floor.
        #[arg(long)]
        floor: u64,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Offer a dataset to a new custodian address (a key rotation or a hand-over); this account
    /// stays the custodian until the new one accepts. --cancel withdraws an offer.
    Transfer(custodian_transfer::TransferArgs),
    /// Accept a dataset offered to this account: it becomes the custodian, paid from here on.
    Accept(custodian_transfer::AcceptArgs),
    /// Withdraw credited payments (query market; with --trials, the trial market).
    Withdraw {
        /// ERC-20 token (default: ETH).
        #[arg(long, conflicts_with = "trials")]
        token: Option<String>,
        /// Withdraw trial bounties (and trial refunds) instead.
        #[arg(long)]
        trials: bool,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Issue a patient their credential (record, membership path, blinding) for trials. The
    /// record must carry the patient's identity commitment (`dataset add-identity`) since the
    /// commitment was made; the patient proves with their own identity secret.
    IssueCredential {
        /// Committed dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Record index (0-based, in records.csv order).
        #[arg(long)]
        index: usize,
        /// The address that registers (registered) the dataset: eligibility proofs name it
        /// (default: from the dataset directory's registration.json).
        #[arg(long)]
        registrant: Option<Address>,
        /// Output file (hand it to the patient only).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum SponsorCmd {
    /// Post a query and escrow its payment.
    Post {
        /// Query spec (JSON).
        #[arg(long)]
        query: PathBuf,
        /// Schema the targeted datasets use.
        #[arg(long, default_value = "examples/schema-clinical-v1.json")]
        schema: PathBuf,
        /// Targeted dataset ids, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        datasets: Vec<u64>,
        /// Price per answered dataset: ether for ETH, base units with --token.
        #[arg(long)]
        price: String,
        /// ERC-20 token to pay in (default: ETH).
        #[arg(long)]
        token: Option<String>,
        /// Seconds from now until the deadline.
        #[arg(long, default_value_t = 7 * 24 * 3600)]
        deadline_secs: u64,
        /// Pay only custodians this accreditor attests (checked at posting and at each claim);
        /// without it, the listed datasets are trusted as they are.
        #[arg(long)]
        accredited_by: Option<String>,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Show a query's state, its published spec in words, and the pooled result in natural
    /// units (a read: no key needed).
    Status(status::StatusArgs),
    /// Reclaim the unused escrow of a query or a trial after its deadline.
    Refund {
        /// Query id.
        #[arg(
            long,
            required_unless_present = "trial_id",
            conflicts_with = "trial_id"
        )]
        query_id: Option<u64>,
        /// Trial id (hex).
        #[arg(long)]
        trial_id: Option<String>,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Open a trial: criteria, a bounty per eligible patient, a cap and a deadline; escrows
    /// bounty × cap. Prints the trial id patients prove against (derived from the sponsor and a
    /// salt: `trial-id` computes it beforehand).
    OpenTrial(trials::OpenTrialArgs),
    /// The id a trial will have (from the sponsor's address and a salt), before opening it:
    /// announce it, then `open-trial --salt`. No key, no RPC.
    TrialId(trial_id::TrialIdArgs),
    /// Show a trial's enrolments, escrow and published spec in words (a read: no key needed).
    TrialStatus {
        /// Trial id (hex).
        #[arg(long)]
        trial_id: String,
        /// The schema of the trial's datasets (default: the built-in clinical schema), to check
        /// the published spec against the posted criteria.
        #[arg(long)]
        schema: Option<PathBuf>,
        #[command(flatten)]
        chain: ChainArgs,
    },
}

/// `--force` of the commands that could replace a committed dataset.
#[derive(Args)]
pub(crate) struct Force {
    /// Replace a committed (even a registered) dataset: makes a new salt, so the old
    /// commitment, its on-chain registration and the patient credentials issued from it can no
    /// longer be used. The old salt, commitment, records and registration are moved to
    /// `<dataset>/history/NNN-<UTC time>/`, never deleted.
    #[arg(long)]
    force: bool,
}

impl Force {
    pub(crate) fn overwrite(&self) -> Overwrite {
        if self.force {
            Overwrite::Force
        } else {
            Overwrite::Refuse
        }
    }
}

#[derive(Subcommand)]
enum QueryCmd {
    /// Check a query against a schema; with --dataset also compute the plain (non-ZK) answer.
    Check {
        /// Query spec (JSON).
        #[arg(long)]
        query: PathBuf,
        /// Schema (JSON).
        #[arg(long, required_unless_present = "dataset")]
        schema: Option<PathBuf>,
        /// Dataset directory (custodian side: prints the ground truth).
        #[arg(long)]
        dataset: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("zkcohort=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn store(g: &Global) -> Result<KeyStore> {
    let source = match (&g.params, &g.params_sha256) {
        (Some(path), Some(sha256)) => ParamsSource::File {
            path: path.clone(),
            sha256: sha256.clone(),
        },
        (None, _) => ParamsSource::Dev,
        (Some(_), None) => bail!("--params needs --params-sha256"),
    };
    Ok(KeyStore::new(&g.cache, source))
}

pub(crate) fn emit(g: &Global, value: serde_json::Value, human: impl FnOnce()) {
    if g.json {
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
    } else {
        human();
    }
}

fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Dataset(cmd) => cmd.execute(g),
        Command::Query(QueryCmd::Check {
            query,
            schema,
            dataset,
        }) => {
            let spec = QuerySpec::load(&query)?;
            let (schema, data) = match (&dataset, schema) {
                (Some(dir), _) => {
                    let ds = DatasetDir::new(dir).read_dataset()?;
                    (ds.schema.clone(), Some(ds))
                }
                (None, Some(path)) => (Schema::load(&path)?, None),
                (None, None) => bail!("give --schema or --dataset"),
            };
            let constants = spec.compile(&schema)?;
            let truth = data.map(|d| query::evaluate(&schema, &d.records, &constants));
            emit(
                g,
                json!({"query_hash": format!("0x{}", hex::encode(spec.hash())), "constants": constants, "plain_result": truth}),
                || {
                    println!(
                        "query ok for schema `{}`; public constants: {}",
                        schema.name,
                        serde_json::to_string(&constants).expect("json")
                    );
                    if let Some(t) = &truth {
                        println!(
                            "plain result (custodian only): {}",
                            serde_json::to_string(t).expect("json")
                        );
                    }
                },
            );
            Ok(())
        }
        Command::Setup {
            dataset,
            batch,
            schema,
            verifier_dir,
            force,
        } => {
            let store = store(g)?;
            let (params, keys) = match (dataset, batch) {
                (Some(dataset), _) => {
                    let dir = DatasetDir::new(&dataset);
                    let data = dir.load_committed()?;
                    if let Some(info) = dir.fold_commitment()? {
                        return setup_fold(
                            g,
                            &store,
                            &data.dataset.schema,
                            &info,
                            verifier_dir,
                            force,
                        );
                    }
                    store.circuit(&data.dataset.schema, &data.layout)?
                }
                (None, Some(batch)) if batch >= 1 => {
                    store.eligibility_circuit(&Schema::load(&schema)?, batch)?
                }
                _ => bail!("give --dataset, or --batch of at least 1"),
            };
            let config = &keys.config;
            let verifier_out = match &verifier_dir {
                Some(dir) => {
                    let overwrite = Force { force }.overwrite();
                    let name = evm::write_verifier_with(dir, &params, &keys, overwrite)?;
                    Some(dir.join(format!("{name}.sol")))
                }
                None => None,
            };
            let p = &keys.config.params;
            emit(
                g,
                json!({"circuit_id": config.circuit_id, "k": p.k, "advice_columns": p.num_advice_per_phase, "lookup_columns": p.num_lookup_advice_per_phase, "vk_hash": keys.vk_hash, "verifier": verifier_out}),
                || {
                    println!(
                        "circuit {} (k = {}, {} advice + {} lookup columns), vk {}",
                        config.circuit_id,
                        p.k,
                        p.num_advice_per_phase[0],
                        p.num_lookup_advice_per_phase[0],
                        keys.vk_hash
                    );
                    if let Some(out) = &verifier_out {
                        println!("verifier written to {}", out.display());
                    }
                },
            );
            Ok(())
        }
        Command::Prove {
            dataset,
            query,
            out,
            policy,
            bind,
        } => {
            let binding = bind.binding()?;
            let dir = DatasetDir::new(&dataset);
            let data = dir.load_committed()?;
            let spec = QuerySpec::load(&query)?;
            spec.compile(&data.dataset.schema)?;
            let fold = dir.fold_commitment()?;
            // A stratified proof releases its cells, not the cohort: the ledger checks each.
            let strata = fold.as_ref().and_then(|info| info.spec.strata).map(|s| {
                let (column, _) = data
                    .dataset
                    .schema
                    .value_columns()
                    .nth(s.column)
                    .expect("a fold spec's strata column is a value column");
                (column, s.count)
            });
            let (mut ledger, released) = ledger::admit(
                &dataset,
                policy.as_deref(),
                &data.dataset,
                &spec,
                None,
                strata,
            )
            .with_context(|| format!("{} not proven", query.display()))?;
            let store = store(g)?;
            if let Some(info) = fold {
                let used = fold::check_budget(ledger.ledger(), &info)
                    .with_context(|| format!("{} not proven", query.display()))?;
                let (kzg, keys) = store.fold_keys(&data.dataset.schema, &info.spec)?;
                let started = std::time::Instant::now();
                let artifact =
                    proof::fold::prove(&keys, &kzg, &data, &info, &spec, binding.as_ref())?;
                let secs = started.elapsed().as_secs_f64();
                // Recorded before the artifact is written: a released answer is never missing.
                let public = &artifact.public;
                if let Some(yes) = public.verdict {
                    ledger.record_verdict(&released[0], &info.commitment, &public.result, yes)?;
                } else if public.cells.is_empty() {
                    ledger.record(&released[0], &info.commitment, &public.result)?;
                } else {
                    for (candidate, cell) in released.iter().zip(&public.cells) {
                        let result = cell.result(public.result.records);
                        ledger.record(candidate, &info.commitment, &result)?;
                    }
                }
                drop(ledger);
                write_atomic(&out, &serde_json::to_vec_pretty(&artifact)?)?;
                let remaining = info.query_budget - used - 1;
                return print_proved(
                    g,
                    &out,
                    &artifact.circuit_id,
                    (&public.result, &public.cells, public.verdict),
                    artifact.query.min_cohort,
                    secs,
                    Some(remaining),
                );
            }
            let (params, keys) = store.circuit(&data.dataset.schema, &data.layout)?;
            let started = std::time::Instant::now();
            let artifact = proof::prove(&keys, &params, &data, &spec, binding.as_ref())?;
            let secs = started.elapsed().as_secs_f64();
            // Recorded before the artifact is written: a released answer is never missing.
            ledger.record(&released[0], &data.info.commitment, &artifact.public.result)?;
            drop(ledger);
            write_atomic(&out, &serde_json::to_vec_pretty(&artifact)?)?;
            print_proved(
                g,
                &out,
                &artifact.circuit_id,
                (&artifact.public.result, &[], None),
                artifact.public.query.min_cohort,
                secs,
                None,
            )
        }
        Command::Chain(cmd) => runtime()?.block_on(chain_cmd(g, cmd)),
        Command::Custodian(cmd) => runtime()?.block_on(custodian(g, cmd)),
        Command::Sponsor(cmd) => runtime()?.block_on(sponsor(g, cmd)),
        Command::Patient(cmd) => runtime()?.block_on(trials::patient(g, cmd)),
        Command::Accreditor(cmd) => runtime()?.block_on(cmd.execute(g)),
        Command::Audit(args) => args.run(g),
        Command::Demo { referral_batch } => {
            let mut scenario = demo::Scenario::standard(&chain::repo_root(), store(g)?);
            scenario.referral_batch = referral_batch;
            let report = runtime()?.block_on(demo::run(&scenario, g.json))?;
            if g.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let a = &report.audit;
                println!("\n== Audit report: {}", a.html.display());
                println!(
                    "   {}",
                    audit::summary_line(a.chain_id, a.from_block, a.to_block, &a.summary)
                );
                println!(
                    "   also {} and {}; open the HTML page in a browser (`make report-screenshot` renders it)",
                    a.markdown.display(),
                    a.json.display()
                );
            }
            Ok(())
        }
        Command::Verify(args) => args.execute(g),
        Command::Study(cmd) => cmd.execute(g),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Runtime::new()?)
}

pub(crate) async fn client(args: &ChainArgs) -> Result<chain::Client> {
    let keystore = match (&args.keystore, &args.keystore_password) {
        (Some(path), Some(pw)) => Some((path.as_path(), pw.as_str())),
        (Some(_), None) => bail!("--keystore needs ZKCOHORT_KEYSTORE_PASSWORD"),
        _ => None,
    };
    let key = std::env::var("ZKCOHORT_PRIVATE_KEY").ok();
    let signer = chain::signer(key.as_deref(), keystore)?;
    let deployment = args.deployment.load()?;
    Ok(chain::Client::connect(&args.rpc_url, signer, deployment).await?)
}

fn address(s: &Option<String>) -> Result<Address> {
    Ok(match s {
        Some(a) => a.parse().with_context(|| format!("bad address `{a}`"))?,
        None => Address::ZERO,
    })
}

async fn chain_cmd(g: &Global, cmd: ChainCmd) -> Result<()> {
    let ChainCmd::Up { port } = cmd;
    let root = chain::repo_root();
    let anvil = chain::LocalNode::start(&root, Some(port), Path::new("deployments/anvil.log"))?;
    let key: alloy::primitives::B256 = chain::ANVIL_DEV_KEYS[0].parse()?;
    let deployment =
        chain::Deployment::deploy(&root, &anvil.url, &key, Path::new("deployments/local.json"))?;
    emit(g, serde_json::to_value(&deployment)?, || {
        println!(
            "anvil at {} (chain {}), log in deployments/anvil.log",
            anvil.url, deployment.chain_id
        );
        println!(
            "registry {}\nmarket   {}",
            deployment.registry, deployment.market
        );
        println!("deployment written to deployments/local.json");
        println!("dev accounts (well-known anvil keys, local use only):");
        for k in chain::ANVIL_DEV_KEYS {
            let signer: alloy::signers::local::PrivateKeySigner = k.parse().expect("valid dev key");
            println!("  {} {k}", signer.address());
        }
        println!("Ctrl-C to stop.");
    });
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn custodian(g: &Global, cmd: CustodianCmd) -> Result<()> {
    match cmd {
        CustodianCmd::Register { dataset, chain } => {
            let dir = DatasetDir::new(&dataset);
            let data = dir.load_committed()?;
            // A fold dataset registers its fold commitment and circuit (the member root stays
            // the Poseidon one, which trials use).
            let (info, circuit_id) = match dir.fold_commitment()? {
                Some(fold) if fold.spec.strata.is_some() => bail!(
                    "{} is committed for a stratified fold circuit ({}): the market pools one \
                     cell per answer and accepts no stratified circuit yet. Its proofs are \
                     verified offline (`zkcohort verify`, `zkcohort study two-arm`); to \
                     register, commit without --strata",
                    dataset.display(),
                    fold.circuit_id
                ),
                Some(fold) => (
                    CommitmentInfo {
                        commitment: fold.commitment,
                        ..data.info.clone()
                    },
                    fold.circuit_id,
                ),
                None => (
                    data.info.clone(),
                    CircuitConfig::plan(&data.dataset.schema, &data.layout).circuit_id,
                ),
            };
            let c = client(&chain).await?;
            let (id, mined) = c.register(&info, &circuit_id).await?;
            dir.write_registration(&Registration {
                dataset_id: id.to::<u64>(),
                chain_id: Some(c.deployment.chain_id),
                registry: Some(c.deployment.registry),
                circuit_id: Some(circuit_id.clone()),
                registrant: Some(c.account),
            })?;
            emit(
                g,
                json!({"dataset_id": id.to::<u64>(), "commitment": info.commitment, "circuit_id": circuit_id, "tx": mined.tx, "gas_used": mined.gas_used}),
                || {
                    println!(
                        "registered {} (circuit {circuit_id}) as dataset #{id} (tx {}, {} gas)",
                        info.commitment, mined.tx, mined.gas_used
                    )
                },
            );
        }
        CustodianCmd::Claim {
            query_id,
            dataset_id,
            dataset,
            artifact,
            policy,
            chain,
        } => {
            let dataset_id = match dataset_id {
                Some(id) => id,
                None => {
                    DatasetDir::new(&dataset)
                        .registration()?
                        .with_context(|| {
                            format!(
                                "{} (run `custodian register`)",
                                dataset.join("registration.json").display()
                            )
                        })?
                        .dataset_id
                }
            };
            let parsed = proof::Artifact::read(&artifact)
                .with_context(|| format!("reading {}", artifact.display()))?;
            let a: &dyn Answer = match &parsed {
                proof::Artifact::Aggregate(a) => a,
                proof::Artifact::Fold(a) if !a.public.cells.is_empty() => bail!(
                    "{} is a stratified answer: the market pools one cell per answer and \
                     accepts no stratified circuit yet (verify it offline: `zkcohort verify`)",
                    artifact.display()
                ),
                proof::Artifact::Fold(a) => a,
                proof::Artifact::Eligibility(_) => bail!(not_an_answer(&artifact)),
            };
            let dir = DatasetDir::new(&dataset);
            let data = dir.load_committed()?;
            let commitment = match dir.fold_commitment()? {
                Some(fold) => fold.commitment,
                None => data.info.commitment.clone(),
            };
            if a.commitment() != commitment {
                return Err(disclosure::DisclosureError::WrongDataset {
                    artifact: a.commitment().to_owned(),
                    dataset: commitment,
                }
                .into());
            }
            let c = client(&chain).await?;
            let sponsor = c.query(U256::from(query_id)).await?.sponsor;
            let on_chain = disclosure::OnChainAnswer {
                chain_id: c.deployment.chain_id,
                market: c.deployment.market.to_string(),
                query_id,
                tx: None,
            };
            let (mut ledger, released) = ledger::admit(
                &dataset,
                policy.as_deref(),
                &data.dataset,
                a.query(),
                Some((on_chain, sponsor.to_string())),
                None,
            )
            .with_context(|| {
                format!(
                    "query #{query_id} not claimed (nothing sent; the sponsor's escrow for this \
                     dataset is refundable after the deadline, `sponsor refund`)"
                )
            })?;
            let [mut candidate] = <[_; 1]>::try_from(released).expect("one unstratified answer");
            let (q, d) = (U256::from(query_id), U256::from(dataset_id));
            let mined = match &parsed {
                proof::Artifact::Aggregate(a) => c.claim(q, d, a).await,
                proof::Artifact::Fold(a) => c.claim(q, d, a).await,
                proof::Artifact::Eligibility(_) => bail!(not_an_answer(&artifact)),
            }
            .with_context(|| {
                format!(
                    "claim failed; the artifact {} is kept, retry when fixed",
                    artifact.display()
                )
            })?;
            if let Some(q) = &mut candidate.on_chain {
                q.tx = Some(mined.tx.to_string());
            }
            let verdict = match &parsed {
                proof::Artifact::Fold(a) => a.public.verdict,
                _ => None,
            };
            match verdict {
                Some(yes) => ledger.record_verdict(&candidate, &commitment, a.result(), yes),
                None => ledger.record(&candidate, &commitment, a.result()),
            }
            .with_context(|| {
                format!(
                    "query #{query_id} WAS claimed (tx {}) but the ledger was not updated: \
                         add the answer before answering anything else from this dataset",
                    mined.tx
                )
            })?;
            emit(
                g,
                json!({"tx": mined.tx, "gas_used": mined.gas_used, "verdict": verdict}),
                || {
                    println!("claimed query #{query_id} for dataset #{dataset_id}: proof verified on-chain (tx {}, {} gas)", mined.tx, mined.gas_used);
                    match verdict {
                        Some(true) => println!("attestation: YES, recorded and paid"),
                        Some(false) => println!("attestation: NO, recorded; a no is paid nothing (the sponsor's escrow for this dataset is refunded after the deadline)"),
                        None => {}
                    }
                },
            );
        }
        CustodianCmd::IssueCredential {
            dataset,
            index,
            registrant,
            out,
        } => trials::issue_credential(g, dataset, index, registrant, out)?,
        CustodianCmd::Withdraw {
            trials: true,
            chain,
            ..
        } => trials::withdraw(g, &chain).await?,
        CustodianCmd::Transfer(args) => args.execute(g).await?,
        CustodianCmd::Accept(args) => args.execute(g).await?,
        CustodianCmd::CellFloor { floor, chain } => {
            let c = client(&chain).await?;
            let mined = c.set_cell_floor(floor).await?;
            emit(g, json!({"floor": floor, "tx": mined.tx}), || {
                println!("cell floor set to {floor}, tx {}", mined.tx)
            });
        }
        CustodianCmd::Withdraw { token, chain, .. } => {
            let c = client(&chain).await?;
            let (amount, mined) = c.withdraw(address(&token)?).await?;
            emit(
                g,
                json!({"amount": amount.to_string(), "tx": mined.tx}),
                || println!("withdrew {amount} (wei or token units), tx {}", mined.tx),
            );
        }
    }
    Ok(())
}

async fn sponsor(g: &Global, cmd: SponsorCmd) -> Result<()> {
    match cmd {
        SponsorCmd::Post {
            query,
            schema,
            datasets,
            price,
            token,
            deadline_secs,
            accredited_by,
            chain,
        } => {
            let accreditor = address(&accredited_by)?;
            let spec = QuerySpec::load(&query)?;
            let schema = Schema::load(&schema)?;
            let constants = spec.compile(&schema)?;
            let token = address(&token)?;
            let price: U256 = if token.is_zero() {
                alloy::primitives::utils::parse_ether(&price)
                    .with_context(|| format!("bad ETH amount `{price}`"))?
            } else {
                price
                    .parse()
                    .with_context(|| format!("bad token amount `{price}`"))?
            };
            let c = client(&chain).await?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let ids: Vec<U256> = datasets.iter().map(|d| U256::from(*d)).collect();
            let columns = target_data_columns(&c, &datasets).await?;
            let words = fold::constants_words(&schema, &constants, columns)?;
            let (id, mined) = c
                .post_query(
                    &spec,
                    &words,
                    &ids,
                    token,
                    price,
                    now + deadline_secs,
                    accreditor,
                )
                .await?;
            emit(
                g,
                json!({"query_id": id.to::<u64>(), "tx": mined.tx, "gas_used": mined.gas_used, "spec_hash": format!("0x{}", hex::encode(spec.hash())), "spec_bytes": spec.document().len()}),
                || {
                    println!(
                        "posted query #{id} ({} datasets, price {price} each), tx {}",
                        ids.len(),
                        mined.tx
                    );
                    println!(
                        "spec document published with it ({} bytes, sha256 0x{}): {}",
                        spec.document().len(),
                        hex::encode(spec.hash()),
                        spec.describe()
                    );
                },
            );
        }
        SponsorCmd::Status(args) => args.execute(g).await?,
        SponsorCmd::Refund {
            trial_id: Some(id),
            chain,
            ..
        } => trials::refund_trial(g, &id, chain).await?,
        SponsorCmd::OpenTrial(args) => trials::open_trial(g, args).await?,
        SponsorCmd::TrialId(args) => args.execute(g)?,
        SponsorCmd::TrialStatus {
            trial_id,
            schema,
            chain,
        } => trials::trial_status(g, &trial_id, schema, chain).await?,
        SponsorCmd::Refund {
            query_id, chain, ..
        } => {
            let query_id = query_id.context("give --query-id or --trial-id")?;
            let c = client(&chain).await?;
            let mined = c.refund(U256::from(query_id)).await?;
            emit(g, json!({"tx": mined.tx}), || {
                println!("refund credited for query #{query_id} (tx {}); `custodian withdraw` pays it out to this account", mined.tx)
            });
        }
    }
    Ok(())
}

/// Prints what `prove` wrote (and, for fold datasets, the query budget left).
/// Prints what `prove` released: the result, or a stratified proof's cells (then `result` is
/// their pooled released values and is not printed).
fn print_proved(
    g: &Global,
    out: &Path,
    circuit_id: &str,
    (r, cells, verdict): (&QueryResult, &[FoldCell], Option<bool>),
    min_cohort: u64,
    secs: f64,
    remaining: Option<usize>,
) -> Result<()> {
    tracing::info!(circuit = %circuit_id, seconds = secs, out = %out.display(), "proof written");
    let mut value =
        json!({"artifact": out, "circuit_id": circuit_id, "result": r, "prove_seconds": secs});
    if !cells.is_empty() {
        value["cells"] = json!(cells);
    }
    if let Some(yes) = verdict {
        value["verdict"] = json!(yes);
    }
    if let Some(left) = remaining {
        value["query_budget_remaining"] = json!(left);
    }
    emit(g, value, || {
        println!("proved {circuit_id} in {secs:.1}s → {}", out.display());
        for c in cells {
            if c.suppressed {
                println!("stratum {}: suppressed", c.stratum);
            } else {
                println!(
                    "stratum {}: count {} sum {} sum_squares {}",
                    c.stratum, c.count, c.sum, c.sum_squares
                );
            }
        }
        if let Some(yes) = verdict {
            println!(
                "attestation: {} (the mean reaches the threshold over at least {min_cohort} \
                 values; nothing else is released)",
                if yes { "YES" } else { "NO" }
            );
        } else if !cells.is_empty() {
            if cells.iter().any(|c| c.suppressed) {
                println!(
                    "suppressed: below the floor (0 < n < {min_cohort}), or as the complement \
                     of the only such stratum"
                );
            }
        } else if r.suppressed {
            println!("result suppressed (0 < count < {min_cohort})");
        } else {
            println!(
                "count {} sum {} sum_squares {}",
                r.count, r.sum, r.sum_squares
            );
        }
        if let Some(left) = remaining {
            println!(
                "fold commitment: {left} more proof(s) before the dataset must be re-committed \
                 (`dataset commit --fold --force`)"
            );
        }
    });
    Ok(())
}

/// `setup --dataset` of a dataset committed for a fold circuit: its keys and verifier.
fn setup_fold(
    g: &Global,
    store: &KeyStore,
    schema: &Schema,
    info: &FoldCommitmentInfo,
    verifier_dir: Option<PathBuf>,
    force: bool,
) -> Result<()> {
    let (kzg, keys) = store.fold_keys(schema, &info.spec)?;
    let verifier_out = match &verifier_dir {
        Some(dir) => {
            let name = evm::write_fold_verifier(dir, &kzg, &keys, Force { force }.overwrite())?;
            Some(dir.join(format!("{name}.sol")))
        }
        None => None,
    };
    emit(
        g,
        json!({"circuit_id": keys.circuit_id, "k": keys.k, "data_columns": info.spec.data_columns, "query_budget": info.query_budget, "vk_hash": keys.vk_hash, "verifier": verifier_out}),
        || {
            println!(
                "fold circuit {} (k = {}, {} data column(s), query budget {}), vk {}",
                keys.circuit_id, keys.k, info.spec.data_columns, info.query_budget, keys.vk_hash
            );
            if let Some(out) = &verifier_out {
                println!("verifier written to {}", out.display());
            }
        },
    );
    Ok(())
}

fn not_an_answer(path: &Path) -> String {
    format!(
        "{} is an eligibility proof, not an answer to a query (`patient enrol` submits those)",
        path.display()
    )
}

/// The data columns of the circuits `datasets` are registered with (0: Poseidon circuits):
/// one query's constants have one layout, so every target must be of one family.
async fn target_data_columns(c: &chain::Client, datasets: &[u64]) -> Result<u32> {
    let mut family: Option<(u64, u32)> = None;
    for &d in datasets {
        let circuit = c
            .dataset(U256::from(d))
            .await
            .with_context(|| format!("reading dataset #{d}"))?
            .circuitId;
        let columns = c
            .circuit_data_columns(circuit)
            .await
            .with_context(|| format!("reading the circuit of dataset #{d}"))?;
        let fold = columns > 0;
        match family {
            Some((first, w)) if (w > 0) != fold => bail!(
                "datasets #{first} and #{d} are registered with circuits of different families \
                 ({} and {}): their query constants differ; post one query per family",
                kind(w),
                kind(columns)
            ),
            Some(_) => {}
            None => family = Some((d, columns)),
        }
    }
    Ok(family.map_or(0, |(_, w)| w))
}

fn kind(data_columns: u32) -> &'static str {
    if data_columns > 0 {
        "commit-and-prove (fold)"
    } else {
        "Poseidon"
    }
}
