//! `zkcohort`: the command line of custodians, sponsors, patients and verifiers.

mod accreditor;
mod trials;

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
    commitment::RecordLayout,
    dataset::{write_atomic, CommitOutcome, Dataset, DatasetDir, Overwrite, WriteOutcome},
    demo, evm,
    keys::{CircuitConfig, KeyStore, ParamsSource},
    proof,
    query::{self, QuerySpec},
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
    Dataset(DatasetCmd),
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
    /// Prove a query over a committed dataset and write a proof artifact.
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
    },
    /// Verify a proof artifact (aggregate or eligibility) offline.
    Verify {
        /// The artifact.
        artifact: PathBuf,
    },
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
    /// Deployment file written by the deploy script (`chain up` writes deployments/local.json).
    #[arg(
        long,
        env = "ZKCOHORT_DEPLOYMENT",
        default_value = "deployments/local.json"
    )]
    deployment: PathBuf,
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
    /// Submit a proof artifact as the answer to a query.
    Claim {
        /// Query id.
        #[arg(long)]
        query_id: u64,
        /// Dataset id (default: from the dataset directory's registration.json).
        #[arg(long, required_unless_present = "dataset")]
        dataset_id: Option<u64>,
        /// Committed, registered dataset directory.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// Proof artifact from `prove`.
        #[arg(long)]
        artifact: PathBuf,
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
    /// Issue a patient their credential (record, membership path, secret) for trials.
    IssueCredential {
        /// Committed dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Record index (0-based, in records.csv order).
        #[arg(long)]
        index: usize,
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
    /// Show a query's state and pooled result.
    Status {
        /// Query id.
        #[arg(long)]
        query_id: u64,
        /// The query spec, to print the mean and variance in natural units.
        #[arg(long)]
        query: Option<PathBuf>,
        #[command(flatten)]
        chain: ChainArgs,
    },
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
    /// bounty × cap. Prints the trial id patients prove against.
    OpenTrial(trials::OpenTrialArgs),
    /// Show a trial's enrolments and escrow.
    TrialStatus {
        /// Trial id (hex).
        #[arg(long)]
        trial_id: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
}

#[derive(Subcommand)]
enum DatasetCmd {
    /// Generate a synthetic cohort. Refuses to replace a committed dataset unless --force.
    Synth {
        /// Number of records (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        records: u64,
        /// RNG seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of sites.
        #[arg(long, default_value_t = 4)]
        sites: u64,
        /// Dataset directory to create.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        force: Force,
    },
    /// Import a CSV file under a schema. Every bad cell is reported as `file:line: column:
    /// why` and nothing is written; an empty or header-only file, a repeated, missing or
    /// unknown header name and a malformed ICD-10 code are errors. Refuses to replace a
    /// committed dataset unless --force.
    Import {
        /// Schema (JSON).
        #[arg(long)]
        schema: PathBuf,
        /// CSV with a header row.
        #[arg(long)]
        csv: PathBuf,
        /// Dataset directory to create.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        force: Force,
    },
    /// Commit to a dataset with a fresh secret salt. Re-running it on a committed dataset is a
    /// no-op ("already committed"); a new salt (another capacity, changed records) needs
    /// --force.
    Commit {
        /// Dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Circuit capacity (records); rounded up to whole Merkle leaves. Default: the record
        /// count (or, if committed, the existing capacity).
        #[arg(long)]
        capacity: Option<usize>,
        #[command(flatten)]
        force: Force,
    },
    /// Show a dataset's public facts.
    Inspect {
        /// Dataset directory.
        #[arg(long)]
        dataset: PathBuf,
    },
}

/// `--force` of the commands that could replace a committed dataset.
#[derive(Args)]
struct Force {
    /// Replace a committed (even a registered) dataset: makes a new salt, so the old
    /// commitment, its on-chain registration and the patient credentials issued from it can no
    /// longer be used. The old salt, commitment, records and registration are moved to
    /// `<dataset>/history/NNN-<UTC time>/`, never deleted.
    #[arg(long)]
    force: bool,
}

impl Force {
    fn overwrite(&self) -> Overwrite {
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
        Command::Dataset(cmd) => dataset(g, cmd),
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
                    let data = DatasetDir::new(&dataset).load_committed()?;
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
        } => {
            let data = DatasetDir::new(&dataset).load_committed()?;
            let spec = QuerySpec::load(&query)?;
            spec.compile(&data.dataset.schema)?;
            let store = store(g)?;
            let (params, keys) = store.circuit(&data.dataset.schema, &data.layout)?;
            let started = std::time::Instant::now();
            let artifact = proof::prove(&keys, &params, &data, &spec)?;
            let secs = started.elapsed().as_secs_f64();
            write_atomic(&out, &serde_json::to_vec_pretty(&artifact)?)?;
            tracing::info!(circuit = %artifact.circuit_id, seconds = secs, out = %out.display(), "proof written");
            let r = &artifact.public.result;
            emit(
                g,
                json!({"artifact": out, "circuit_id": artifact.circuit_id, "result": r, "prove_seconds": secs}),
                || {
                    println!(
                        "proved {} in {secs:.1}s → {}",
                        artifact.circuit_id,
                        out.display()
                    );
                    if r.suppressed {
                        println!(
                            "result suppressed (0 < count < {})",
                            artifact.public.query.min_cohort
                        );
                    } else {
                        println!(
                            "count {} sum {} sum_squares {}",
                            r.count, r.sum, r.sum_squares
                        );
                    }
                },
            );
            Ok(())
        }
        Command::Chain(cmd) => runtime()?.block_on(chain_cmd(g, cmd)),
        Command::Custodian(cmd) => runtime()?.block_on(custodian(g, cmd)),
        Command::Sponsor(cmd) => runtime()?.block_on(sponsor(g, cmd)),
        Command::Patient(cmd) => runtime()?.block_on(trials::patient(g, cmd)),
        Command::Accreditor(cmd) => runtime()?.block_on(cmd.execute(g)),
        Command::Demo { referral_batch } => {
            let mut scenario = demo::Scenario::standard(&chain::repo_root(), store(g)?);
            scenario.referral_batch = referral_batch;
            let report = runtime()?.block_on(demo::run(&scenario, g.json))?;
            if g.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
        Command::Verify { artifact } => {
            let value: serde_json::Value = proof::read_artifact(&artifact)?;
            if value.get("trial_id").is_some() {
                let a: zkcohort::eligibility::EligibilityArtifact =
                    serde_json::from_value(value)
                        .with_context(|| format!("{}", artifact.display()))?;
                zkcohort::eligibility::verify(&a, &store(g)?)
                    .with_context(|| format!("{} does not verify", artifact.display()))?;
                emit(
                    g,
                    json!({"valid": true, "circuit_id": a.circuit_id, "trial_id": a.trial_id, "member_root": a.member_root, "nullifiers": a.nullifiers()}),
                    || {
                        println!(
                            "valid eligibility proof for circuit {}: {} patient(s) of membership root {} meet trial {}",
                            a.circuit_id,
                            a.nullifiers().len(),
                            a.member_root,
                            a.trial_id
                        );
                    },
                );
                return Ok(());
            }
            let a: proof::ProofArtifact =
                serde_json::from_value(value).with_context(|| format!("{}", artifact.display()))?;
            proof::verify(&a, &store(g)?)
                .with_context(|| format!("{} does not verify", artifact.display()))?;
            emit(
                g,
                json!({"valid": true, "circuit_id": a.circuit_id, "public": a.public}),
                || {
                    println!(
                        "valid proof for circuit {} over commitment {}",
                        a.circuit_id, a.public.commitment
                    );
                },
            );
            Ok(())
        }
    }
}

fn dataset(g: &Global, cmd: DatasetCmd) -> Result<()> {
    match cmd {
        DatasetCmd::Synth {
            records,
            seed,
            sites,
            out,
            force,
        } => {
            let ds = Dataset::synthesize(records as usize, seed, sites);
            let outcome = DatasetDir::new(&out).write_dataset_with(&ds, force.overwrite())?;
            emit(
                g,
                json!({"dataset": out, "records": records, "outcome": written(&outcome)}),
                || {
                    println!(
                        "{records} synthetic records {} {}",
                        written_verb(&outcome),
                        out.display()
                    );
                    print_history(written_history(&outcome));
                },
            );
        }
        DatasetCmd::Import {
            schema,
            csv,
            out,
            force,
        } => {
            let schema = Schema::load(&schema)?;
            let ds = Dataset::import_csv(&schema, &csv).map_err(import_errors)?;
            let outcome = DatasetDir::new(&out).write_dataset_with(&ds, force.overwrite())?;
            emit(
                g,
                json!({"dataset": out, "records": ds.records.len(), "outcome": written(&outcome)}),
                || {
                    println!(
                        "{} records {} {}",
                        ds.records.len(),
                        if outcome == WriteOutcome::Unchanged {
                            "already in"
                        } else {
                            "imported to"
                        },
                        out.display()
                    );
                    print_history(written_history(&outcome));
                },
            );
        }
        DatasetCmd::Commit {
            dataset,
            capacity,
            force,
        } => {
            let (c, outcome) =
                DatasetDir::new(&dataset).commit_with(capacity, force.overwrite())?;
            let (status, history) = match &outcome {
                CommitOutcome::Committed => ("committed", None),
                CommitOutcome::AlreadyCommitted => ("already_committed", None),
                CommitOutcome::Replaced { history } => ("replaced", Some(history)),
            };
            let mut value = serde_json::to_value(&c.info)?;
            value["status"] = json!(status);
            value["history"] = json!(history);
            emit(g, value, || {
                if outcome == CommitOutcome::AlreadyCommitted {
                    println!(
                        "already committed: commitment {} ({} records, capacity {}); nothing changed",
                        c.info.commitment, c.info.record_count, c.info.capacity
                    );
                } else {
                    println!(
                        "commitment {} ({} records, capacity {}); salt kept in {}",
                        c.info.commitment,
                        c.info.record_count,
                        c.info.capacity,
                        Path::new(&dataset).join("salt.json").display()
                    );
                }
                print_history(history);
            });
        }
        DatasetCmd::Inspect { dataset } => {
            let dir = DatasetDir::new(&dataset);
            let c = dir.load_committed()?;
            let layout = RecordLayout::new(&c.dataset.schema, c.info.capacity);
            emit(
                g,
                json!({"info": c.info, "schema": c.dataset.schema, "records_per_element": layout.slots_per_element}),
                || {
                    println!(
                        "schema {} ({} columns, {} bits per record)",
                        c.dataset.schema.name,
                        c.dataset.schema.columns.len(),
                        c.dataset.schema.record_bits()
                    );
                    println!(
                        "{} records, capacity {}, commitment {}",
                        c.info.record_count, c.info.capacity, c.info.commitment
                    );
                },
            );
        }
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
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
    let deployment = chain::Deployment::load(&args.deployment)?;
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
            let data = DatasetDir::new(&dataset).load_committed()?;
            let config = CircuitConfig::plan(&data.dataset.schema, &data.layout);
            let c = client(&chain).await?;
            let (id, mined) = c.register(&data.info, &config.circuit_id).await?;
            let record = json!({"dataset_id": id.to::<u64>(), "chain_id": c.deployment.chain_id, "registry": c.deployment.registry, "circuit_id": config.circuit_id});
            write_atomic(
                &dataset.join("registration.json"),
                &serde_json::to_vec_pretty(&record)?,
            )?;
            emit(
                g,
                json!({"dataset_id": id.to::<u64>(), "tx": mined.tx, "gas_used": mined.gas_used}),
                || {
                    println!(
                        "registered {} as dataset #{id} (tx {}, {} gas)",
                        data.info.commitment, mined.tx, mined.gas_used
                    )
                },
            );
        }
        CustodianCmd::Claim {
            query_id,
            dataset_id,
            dataset,
            artifact,
            chain,
        } => {
            let dataset_id = match (dataset_id, &dataset) {
                (Some(id), _) => id,
                (None, Some(dir)) => {
                    let path = dir.join("registration.json");
                    let reg: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(&path).with_context(|| {
                            format!("{} (run `custodian register`)", path.display())
                        })?)?;
                    reg["dataset_id"]
                        .as_u64()
                        .context("registration.json has no dataset_id")?
                }
                (None, None) => bail!("give --dataset-id or --dataset"),
            };
            let a = proof::read_artifact(&artifact)?;
            let c = client(&chain).await?;
            let mined = c
                .claim(U256::from(query_id), U256::from(dataset_id), &a)
                .await
                .with_context(|| {
                    format!(
                        "claim failed; the artifact {} is kept, retry when fixed",
                        artifact.display()
                    )
                })?;
            emit(
                g,
                json!({"tx": mined.tx, "gas_used": mined.gas_used}),
                || {
                    println!("claimed query #{query_id} for dataset #{dataset_id}: proof verified on-chain (tx {}, {} gas)", mined.tx, mined.gas_used)
                },
            );
        }
        CustodianCmd::IssueCredential {
            dataset,
            index,
            out,
        } => trials::issue_credential(g, dataset, index, out)?,
        CustodianCmd::Withdraw {
            trials: true,
            chain,
            ..
        } => trials::withdraw(g, &chain).await?,
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
            let (id, mined) = c
                .post_query(
                    &spec,
                    &constants,
                    &ids,
                    token,
                    price,
                    now + deadline_secs,
                    accreditor,
                )
                .await?;
            emit(
                g,
                json!({"query_id": id.to::<u64>(), "tx": mined.tx, "gas_used": mined.gas_used}),
                || {
                    println!(
                        "posted query #{id} ({} datasets, price {price} each), tx {}",
                        ids.len(),
                        mined.tx
                    )
                },
            );
        }
        SponsorCmd::Status {
            query_id,
            query,
            chain,
        } => {
            let c = client(&chain).await?;
            let q = c.query(U256::from(query_id)).await?;
            let result = zkcohort::query::QueryResult {
                records: 0,
                count: q.totalCount.to::<u64>(),
                sum: q.totalSum.to_string().parse()?,
                sum_squares: q.totalSumOfSquares.to_string().parse()?,
                suppressed: false,
            };
            let scale = match &query {
                Some(path) => {
                    Schema::clinical_default().decimal_scale(&QuerySpec::load(path)?.statistic)
                }
                None => None,
            };
            let mv = scale.and_then(|s| result.mean_variance(s));
            emit(
                g,
                json!({"query_id": query_id, "sponsor": q.sponsor, "deadline": q.deadline, "targets": q.targets, "answered": q.answered, "suppressed": q.suppressed, "refunded": q.refunded, "pooled": result, "mean_variance": mv}),
                || {
                    println!("query #{query_id}: {}/{} answered ({} suppressed), deadline {}, refunded {}", q.answered, q.targets, q.suppressed, q.deadline, q.refunded);
                    println!(
                        "pooled: n = {}, sum = {}, sum² = {}",
                        result.count, result.sum, result.sum_squares
                    );
                    if let Some((m, v)) = mv {
                        println!("mean {m:.3}, variance {v:.3}");
                    }
                },
            );
        }
        SponsorCmd::Refund {
            trial_id: Some(id),
            chain,
            ..
        } => trials::refund_trial(g, &id, chain).await?,
        SponsorCmd::OpenTrial(args) => trials::open_trial(g, args).await?,
        SponsorCmd::TrialStatus { trial_id, chain } => {
            trials::trial_status(g, &trial_id, chain).await?
        }
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

fn written(outcome: &WriteOutcome) -> serde_json::Value {
    match outcome {
        WriteOutcome::Written => json!("written"),
        WriteOutcome::Unchanged => json!("unchanged"),
        WriteOutcome::Replaced { history } => json!({"replaced": true, "history": history}),
    }
}

fn written_verb(outcome: &WriteOutcome) -> &'static str {
    match outcome {
        WriteOutcome::Unchanged => "already in",
        _ => "written to",
    }
}

fn written_history(outcome: &WriteOutcome) -> Option<&PathBuf> {
    match outcome {
        WriteOutcome::Replaced { history } => Some(history),
        _ => None,
    }
}

fn print_history(history: Option<&PathBuf>) {
    if let Some(dir) = history {
        println!(
            "the previous salt, commitment, records and registration were moved to {} (the old commitment needs them to be opened; register the new one before claiming)",
            dir.display()
        );
    }
}

fn import_errors(errors: Vec<zkcohort::error::DatasetError>) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("import failed, nothing written:\n  {}", lines.join("\n  "))
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, fs};

    use super::*;

    fn zkcohort(args: &[&str]) -> Result<()> {
        run(Cli::try_parse_from(
            std::iter::once("zkcohort").chain(args.iter().copied()),
        )?)
    }

    /// Every file under `dir`, with its bytes.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(p.clone(), fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn schema_file(dir: &Path) -> PathBuf {
        let path = dir.join("schema.json");
        fs::write(
            &path,
            serde_json::to_vec(&Schema::clinical_default()).unwrap(),
        )
        .unwrap();
        path
    }

    #[test]
    fn data_commands_refuse_to_lose_a_committed_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("h1");
        let ds = d.to_str().unwrap();
        zkcohort(&["dataset", "synth", "--records", "30", "--out", ds]).unwrap();
        zkcohort(&["dataset", "commit", "--dataset", ds]).unwrap();
        let committed = snapshot(&d);

        // Re-running the same commands changes nothing.
        zkcohort(&["dataset", "synth", "--records", "30", "--out", ds]).unwrap();
        zkcohort(&["dataset", "commit", "--dataset", ds]).unwrap();
        zkcohort(&["dataset", "commit", "--dataset", ds, "--capacity", "48"]).unwrap();
        assert_eq!(snapshot(&d), committed);

        // Overwrite by synth or import, re-salt by commit: refused, nothing changed.
        let csv = tmp.path().join("other.csv");
        fs::write(&csv, Dataset::synthesize(20, 9, 2).to_csv()).unwrap();
        let schema = schema_file(tmp.path());
        let attempts: [&[&str]; 3] = [
            &[
                "dataset",
                "synth",
                "--records",
                "30",
                "--seed",
                "2",
                "--out",
                ds,
            ],
            &[
                "dataset",
                "import",
                "--schema",
                schema.to_str().unwrap(),
                "--csv",
                csv.to_str().unwrap(),
                "--out",
                ds,
            ],
            &["dataset", "commit", "--dataset", ds, "--capacity", "96"],
        ];
        for args in attempts {
            let err = format!("{:#}", zkcohort(args).unwrap_err());
            assert!(err.contains("--force"), "{args:?}: {err}");
            assert_eq!(snapshot(&d), committed, "{args:?} changed the dataset");
        }

        // Registered: refused with the on-chain consequence spelt out.
        fs::write(d.join("registration.json"), r#"{"dataset_id": 3}"#).unwrap();
        let registered = snapshot(&d);
        for args in attempts {
            let err = format!("{:#}", zkcohort(args).unwrap_err());
            assert!(
                err.contains("REGISTERED") && err.contains("#3") && err.contains("orphans"),
                "{args:?}: {err}"
            );
            assert_eq!(snapshot(&d), registered, "{args:?} changed the dataset");
        }

        // --force replaces it and keeps everything it replaced under history/.
        let mut forced = attempts[1].to_vec();
        forced.push("--force");
        zkcohort(&forced).unwrap();
        let history: Vec<PathBuf> = fs::read_dir(d.join("history"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(history.len(), 1);
        for name in [
            "salt.json",
            "commitment.json",
            "registration.json",
            "records.csv",
            "schema.json",
        ] {
            assert_eq!(
                fs::read(history[0].join(name)).unwrap(),
                registered[&d.join(name)],
                "{name}"
            );
        }
        zkcohort(&["dataset", "commit", "--dataset", ds]).unwrap();
        assert!(DatasetDir::new(&d).load_committed().is_ok());
    }

    #[test]
    fn a_bad_import_names_each_bad_cell_once_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let schema = schema_file(tmp.path());
        let out = tmp.path().join("out");
        let cases = [
            (
                "age,sex,dx,hba1c,sbp,bmi,consent,site\n54,F,B2O,6.1,130,27.5,research,2\n54,F,E11.9,6.1,130,27.5,research,2,\n",
                vec![
                    "bad.csv:2: column `dx`: `B2O`: character 3 (`O`) must be a digit",
                    "bad.csv:3: 9 fields, the header has 8",
                ],
            ),
            (
                "age,sex,dx,hba1c,sbp,bmi,consent,site,dx\n54,F,E11.9,6.1,130,27.5,research,2,I10\n",
                vec!["bad.csv:1: column `dx`: named twice in the header (fields 3 and 9)"],
            ),
            (
                "age,sex,dx,hba1c,sbp,bmi,consent,site\n",
                vec!["bad.csv:2: no records after the header"],
            ),
            ("", vec!["bad.csv:1: the file is empty"]),
        ];
        for (text, expected) in cases {
            let csv = tmp.path().join("bad.csv");
            fs::write(&csv, text).unwrap();
            let err = format!(
                "{:#}",
                zkcohort(&[
                    "dataset",
                    "import",
                    "--schema",
                    schema.to_str().unwrap(),
                    "--csv",
                    csv.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ])
                .unwrap_err()
            );
            let lines: Vec<&str> = err.lines().skip(1).map(str::trim).collect();
            assert_eq!(lines.len(), expected.len(), "{err}");
            for (line, want) in lines.iter().zip(&expected) {
                let want = want.replace("bad.csv", &csv.display().to_string());
                assert!(line.starts_with(&want), "{line}\n  wanted {want}");
            }
            assert!(!out.exists(), "nothing written");
        }
    }
}
