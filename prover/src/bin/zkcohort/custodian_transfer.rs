//! `zkcohort custodian transfer` and `zkcohort custodian accept`: a custodian rotates the
//! address of record of a dataset (a new key, or a hand-over to another entity) in two steps.
//! The current custodian offers the dataset to the new address and stays in charge (and paid)
//! until that address accepts; `--cancel` withdraws an offer.

use alloy::primitives::{Address, U256};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use crate::{client, emit, ChainArgs, Global};

/// Offer a dataset to a new custodian address, who must accept it (`custodian accept`).
#[derive(Args)]
pub(crate) struct TransferArgs {
    /// The dataset (this account must be its custodian).
    #[arg(long)]
    dataset_id: u64,
    /// The new custodian address (the zero address withdraws a pending offer, as --cancel).
    #[arg(long, required_unless_present = "cancel", conflicts_with = "cancel")]
    to: Option<String>,
    /// Withdraw a pending offer instead.
    #[arg(long)]
    cancel: bool,
    #[command(flatten)]
    chain: ChainArgs,
}

impl TransferArgs {
    /// Sends `transferCustodian(dataset, to)`, after checking that this account is the
    /// custodian (the contract checks it again).
    pub(crate) async fn execute(self, g: &Global) -> Result<()> {
        let to = match &self.to {
            Some(a) => a
                .parse::<Address>()
                .with_context(|| format!("bad address `{a}`"))?,
            None => Address::ZERO,
        };
        let id = U256::from(self.dataset_id);
        let c = client(&self.chain).await?;
        let dataset = c.dataset(id).await?;
        if dataset.custodian != c.account {
            bail!(
                "{} is not the custodian of dataset #{id}: {} is (only the custodian can offer it)",
                c.account,
                dataset.custodian
            );
        }
        if to == c.account {
            bail!("{to} is already the custodian of dataset #{id}");
        }
        let pending = c.pending_custodian(id).await?;
        if to.is_zero() && pending.is_zero() {
            bail!("dataset #{id} has no pending offer to withdraw");
        }
        let mined = c.transfer_custodian(id, to).await?;
        emit(
            g,
            json!({"dataset_id": self.dataset_id, "custodian": c.account, "offered_to": to, "withdrawn": pending, "tx": mined.tx, "gas_used": mined.gas_used}),
            || {
                if to.is_zero() {
                    println!(
                        "offer of dataset #{id} to {pending} withdrawn (tx {})",
                        mined.tx
                    );
                } else {
                    println!(
                        "dataset #{id} offered to {to} (tx {}); {} stays its custodian until {to} \
                         runs `zkcohort custodian accept --dataset-id {id}`",
                        mined.tx, c.account
                    );
                    println!(
                        "note: from then on, {to}'s own cell floor and accreditations apply: \
                         queries and trials that pay only accredited custodians need {to} accredited"
                    );
                }
            },
        );
        Ok(())
    }
}

/// Accept a dataset offered to this account: it becomes the dataset's custodian.
#[derive(Args)]
pub(crate) struct AcceptArgs {
    /// The dataset offered to this account.
    #[arg(long)]
    dataset_id: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

impl AcceptArgs {
    /// Sends `acceptCustodian(dataset)`, after checking that the dataset is offered to this
    /// account (the contract checks it again).
    pub(crate) async fn execute(self, g: &Global) -> Result<()> {
        let id = U256::from(self.dataset_id);
        let c = client(&self.chain).await?;
        let dataset = c.dataset(id).await?;
        let pending = c.pending_custodian(id).await?;
        if pending != c.account {
            if pending.is_zero() {
                bail!(
                    "dataset #{id} is offered to nobody: its custodian {} must first run \
                     `zkcohort custodian transfer --dataset-id {id} --to {}`",
                    dataset.custodian,
                    c.account
                );
            }
            bail!(
                "dataset #{id} is offered to {pending}, not to {}",
                c.account
            );
        }
        let (from, mined) = c.accept_custodian(id).await?;
        emit(
            g,
            json!({"dataset_id": self.dataset_id, "from": from, "custodian": c.account, "tx": mined.tx, "gas_used": mined.gas_used}),
            || {
                println!(
                    "{} is now the custodian of dataset #{id}, paid for its answers and \
                     enrolments from here on (was {from}; tx {})",
                    c.account, mined.tx
                )
            },
        );
        Ok(())
    }
}
