//! `zkcohort audit`: the regulator's command. Rebuilds a deployment's history from the chain
//! alone (no key), re-verifies every accepted proof off-chain, reconciles the money, flags
//! anomalies, and writes a report (Markdown, self-contained HTML, or JSON).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use alloy::primitives::{Address, U256};
use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use zkcohort::{
    audit::{self, render, words::plural, Filter, Options},
    chain::{FetchPolicy, HistoryReader},
    dataset::write_atomic,
    schema::Schema,
};

use crate::{emit, store, DeploymentArg, Global};

/// The audit in one line: blocks, events, proofs re-verified, money, findings.
pub(crate) fn summary_line(chain_id: u64, from: u64, to: u64, s: &audit::Summary) -> String {
    format!(
        "audited chain {chain_id} blocks {from}..={to}: {} events, {} proofs re-verified ({} failed, {} not checked), money {}, {} critical, {}, {}",
        s.events.values().sum::<u64>(),
        s.verified,
        s.failed,
        s.unchecked,
        if s.money_reconciles {
            "reconciles"
        } else {
            "does NOT reconcile"
        },
        s.critical,
        plural(s.warnings, "warning"),
        plural(s.notices, "notice"),
    )
}

/// Report formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Markdown.
    Md,
    /// A self-contained HTML page (inline CSS and charts).
    Html,
    /// JSON, for machines.
    Json,
}

/// Arguments of `zkcohort audit`.
#[derive(Args)]
pub(crate) struct AuditArgs {
    /// JSON-RPC endpoint (any node; only reads).
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    #[command(flatten)]
    deployment: DeploymentArg,
    /// First block to read. From 0 (the default) the whole history is read and the markets'
    /// balances are reconciled; later, only what the blocks read tell.
    #[arg(long, default_value_t = 0)]
    from_block: u64,
    /// Last block to read (default: the latest); every view is read at this block.
    #[arg(long)]
    to_block: Option<u64>,
    /// Show one query only.
    #[arg(long)]
    query: Option<u64>,
    /// Show the queries and trials of one dataset only.
    #[arg(long)]
    dataset: Option<u64>,
    /// Show one trial only (its id in hex).
    #[arg(long)]
    trial: Option<String>,
    /// Show the queries and trials of one custodian's datasets only.
    #[arg(long)]
    custodian: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    format: ReportFormat,
    /// Write the report here (atomically) instead of to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A schema the datasets may use (repeatable; the built-in clinical schema is always known),
    /// to read constants in words and re-derive verifying keys.
    #[arg(long = "schema")]
    schemas: Vec<PathBuf>,
    /// The verifier manifest naming the circuits (`contracts/verifiers/verifiers.json`).
    #[arg(long, default_value = "contracts/verifiers/verifiers.json")]
    verifiers: PathBuf,
    /// JSON object of display names, `{"0xAddress": "St Mary's", …}`.
    #[arg(long)]
    names: Option<PathBuf>,
    /// Blocks per log request (shrunk automatically when the node refuses a range).
    #[arg(long, default_value_t = 2_000)]
    chunk_blocks: u64,
    /// Attempts per RPC request before the node is declared unreachable.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Exit with an error if any critical finding or warning is reported.
    #[arg(long)]
    strict: bool,
}

impl AuditArgs {
    fn options(&self) -> Result<Options> {
        let mut schemas = vec![Schema::clinical_default()];
        for p in &self.schemas {
            schemas.push(Schema::load(p).with_context(|| format!("--schema {}", p.display()))?);
        }
        let manifest = if self.verifiers.exists() {
            audit::verifiers::load_manifest(&self.verifiers)?
        } else {
            tracing::warn!(
                path = %self.verifiers.display(),
                "no verifier manifest: circuits are named from the deployment file only"
            );
            Vec::new()
        };
        let names = match &self.names {
            Some(path) => {
                let raw: BTreeMap<String, String> = serde_json::from_slice(
                    &std::fs::read(path).with_context(|| format!("--names {}", path.display()))?,
                )
                .with_context(|| {
                    format!("--names {}: not a JSON object of strings", path.display())
                })?;
                raw.into_iter()
                    .map(|(a, n)| {
                        let a: Address = a
                            .parse()
                            .with_context(|| format!("--names: bad address `{a}`"))?;
                        Ok((a, n))
                    })
                    .collect::<Result<_>>()?
            }
            None => BTreeMap::new(),
        };
        let trial = match &self.trial {
            Some(t) => Some(
                U256::from_str_radix(t.trim_start_matches("0x"), 16)
                    .with_context(|| format!("bad trial id `{t}`"))?,
            ),
            None => None,
        };
        let custodian = match &self.custodian {
            Some(c) => Some(
                c.parse::<Address>()
                    .with_context(|| format!("bad address `{c}`"))?,
            ),
            None => None,
        };
        Ok(Options {
            from_block: self.from_block,
            to_block: self.to_block,
            filter: Filter {
                query: self.query,
                dataset: self.dataset,
                trial,
                custodian,
            },
            schemas,
            manifest,
            names,
        })
    }

    /// Runs the audit.
    pub(crate) fn run(self, g: &Global) -> Result<()> {
        let opts = self.options()?;
        let deployment = self.deployment.load()?;
        let policy = FetchPolicy {
            chunk_blocks: self.chunk_blocks.max(1),
            attempts: self.attempts.max(1),
            backoff: Duration::from_millis(250),
        };
        let rt = tokio::runtime::Runtime::new()?;
        let collected = rt.block_on(async {
            let reader = HistoryReader::connect(&self.rpc_url, deployment, policy).await?;
            audit::collect(&reader, &opts).await
        })?;
        let report = audit::analyse(&collected, &store(g)?, &opts);
        let format = match (self.format, g.json && self.out.is_none()) {
            (_, true) | (ReportFormat::Json, _) => render::Format::Json,
            (ReportFormat::Md, _) => render::Format::Markdown,
            (ReportFormat::Html, _) => render::Format::Html,
        };
        let text = render::render(&report, format);
        let s = &report.summary;
        match &self.out {
            Some(path) => {
                write_atomic(path, text.as_bytes())?;
                emit(
                    g,
                    json!({"report": path, "to_block": report.to_block, "summary": s}),
                    || {
                        println!(
                            "{} → {}",
                            summary_line(
                                report.deployment.chain_id,
                                report.from_block,
                                report.to_block,
                                s
                            ),
                            path.display()
                        )
                    },
                );
            }
            None => print!("{text}"),
        }
        if self.strict && s.critical + s.warnings > 0 {
            bail!(
                "{} critical finding(s) and {} warning(s)",
                s.critical,
                s.warnings
            );
        }
        Ok(())
    }
}
