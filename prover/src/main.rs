//! `zkcohort`: the custodian's and verifier's command line.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use zkcohort::{
    circuit::PublicInputs,
    commitment::RecordLayout,
    dataset::{write_atomic, Dataset, DatasetDir},
    evm,
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
struct Global {
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
    /// Plan the circuit for a dataset, generate params and keys, and write the Solidity verifier.
    Setup {
        /// Committed dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Where to write the verifier contract (e.g. contracts/verifiers/AggregateVerifier.sol).
        #[arg(long)]
        verifier_out: Option<PathBuf>,
        /// Contract name of the generated verifier.
        #[arg(long, default_value = "AggregateVerifier")]
        verifier_name: String,
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
    /// Verify a proof artifact offline.
    Verify {
        /// The artifact.
        artifact: PathBuf,
    },
}

#[derive(Subcommand)]
enum DatasetCmd {
    /// Generate a synthetic cohort.
    Synth {
        /// Number of records.
        #[arg(long)]
        records: usize,
        /// RNG seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of sites.
        #[arg(long, default_value_t = 4)]
        sites: u64,
        /// Dataset directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a CSV file under a schema.
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
    },
    /// Commit to a dataset with a fresh secret salt.
    Commit {
        /// Dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Circuit capacity (records); rounded up to whole Merkle leaves. Default: the record count.
        #[arg(long)]
        capacity: Option<usize>,
    },
    /// Show a dataset's public facts.
    Inspect {
        /// Dataset directory.
        #[arg(long)]
        dataset: PathBuf,
    },
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

fn store(g: &Global) -> Result<KeyStore> {
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

fn emit(g: &Global, value: serde_json::Value, human: impl FnOnce()) {
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
            verifier_out,
            verifier_name,
        } => {
            let data = DatasetDir::new(&dataset).load_committed()?;
            let store = store(g)?;
            let config = CircuitConfig::plan(&data.dataset.schema, &data.layout);
            let params = store.params(config.k())?;
            let keys = store.keys(&config, &params)?;
            if let Some(out) = &verifier_out {
                let n = PublicInputs::len_for(&config.schema);
                let src = evm::verifier_source(
                    &params,
                    keys.pk.get_vk(),
                    n,
                    &verifier_name,
                    &config.circuit_id,
                );
                write_atomic(out, src.as_bytes())?;
            }
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
            let config = CircuitConfig::plan(&data.dataset.schema, &data.layout);
            let params = store.params(config.k())?;
            let keys = store.keys(&config, &params)?;
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
        Command::Verify { artifact } => {
            let a = proof::read_artifact(&artifact)?;
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
        } => {
            let ds = Dataset::synthesize(records, seed, sites);
            DatasetDir::new(&out).write_dataset(&ds)?;
            emit(g, json!({"dataset": out, "records": records}), || {
                println!("{records} synthetic records written to {}", out.display())
            });
        }
        DatasetCmd::Import { schema, csv, out } => {
            let schema = Schema::load(&schema)?;
            let ds = Dataset::import_csv(&schema, &csv).map_err(import_errors)?;
            DatasetDir::new(&out).write_dataset(&ds)?;
            emit(
                g,
                json!({"dataset": out, "records": ds.records.len()}),
                || println!("{} records imported to {}", ds.records.len(), out.display()),
            );
        }
        DatasetCmd::Commit { dataset, capacity } => {
            let c = DatasetDir::new(&dataset).commit(capacity)?;
            emit(g, serde_json::to_value(&c.info)?, || {
                println!(
                    "commitment {} ({} records, capacity {}); salt kept in {}",
                    c.info.commitment,
                    c.info.record_count,
                    c.info.capacity,
                    Path::new(&dataset).join("salt.json").display()
                )
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

fn import_errors(errors: Vec<zkcohort::error::DatasetError>) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("import failed, nothing written:\n  {}", lines.join("\n  "))
}
