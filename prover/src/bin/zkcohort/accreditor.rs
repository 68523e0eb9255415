//! `zkcohort accreditor …`: an IRB, research network or regulator vouches for custodians.
//! Sponsors name an accreditor in their queries and trials (`--accredited-by`), and the markets
//! pay only custodians it attests.

use alloy::primitives::Address;
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use crate::{client, emit, ChainArgs, Global};

/// Accreditor actions on-chain (the account is the accreditor).
#[derive(Subcommand)]
pub(crate) enum AccreditorCmd {
    /// Attest a custodian (the address that registers its datasets).
    Accredit {
        /// The custodian's address.
        #[arg(long)]
        custodian: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Withdraw an attestation: later claims and enrolments of that custodian are refused in
    /// every query and trial that names this accreditor.
    Revoke {
        /// The custodian's address.
        #[arg(long)]
        custodian: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Whether an accreditor attests a custodian (a read: no key needed).
    Check {
        /// The accreditor's address.
        #[arg(long)]
        accreditor: String,
        /// The custodian's address.
        #[arg(long)]
        custodian: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
}

impl AccreditorCmd {
    /// Runs the command.
    pub(crate) async fn execute(self, g: &Global) -> Result<()> {
        match self {
            AccreditorCmd::Accredit { custodian, chain } => {
                let custodian = parse(&custodian)?;
                let c = client(&chain).await?;
                let mined = c.accredit(custodian).await?;
                emit(
                    g,
                    json!({"accreditor": c.account, "custodian": custodian, "tx": mined.tx}),
                    || println!("{} now attests {custodian}, tx {}", c.account, mined.tx),
                );
            }
            AccreditorCmd::Revoke { custodian, chain } => {
                let custodian = parse(&custodian)?;
                let c = client(&chain).await?;
                let mined = c.revoke_accreditation(custodian).await?;
                emit(
                    g,
                    json!({"accreditor": c.account, "custodian": custodian, "tx": mined.tx}),
                    || {
                        println!(
                            "{} no longer attests {custodian}, tx {}",
                            c.account, mined.tx
                        )
                    },
                );
            }
            AccreditorCmd::Check {
                accreditor,
                custodian,
                chain,
            } => {
                let (accreditor, custodian) = (parse(&accreditor)?, parse(&custodian)?);
                // A read: no key needed.
                let c = crate::status::reader(&chain).await?;
                let yes = c.is_accredited(accreditor, custodian).await?;
                emit(
                    g,
                    json!({"accreditor": accreditor, "custodian": custodian, "accredited": yes}),
                    || {
                        let verb = if yes { "attests" } else { "does not attest" };
                        println!("{accreditor} {verb} {custodian}")
                    },
                );
            }
        }
        Ok(())
    }
}

fn parse(s: &str) -> Result<Address> {
    s.parse().with_context(|| format!("bad address `{s}`"))
}
