//! `zkcohort sponsor trial-id`: the id a trial will have, computed before it is opened, so the
//! sponsor can announce it (patients prove against it) and then open it with
//! `sponsor open-trial --salt`. The market derives the id from the chain, itself, the sponsor and
//! the salt (`TrialMarket.trialIdOf`): nobody else can open a trial under it, and no other
//! deployment accepts its proofs. A read of the deployment file only: no key, no RPC.

use alloy::primitives::Address;
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use zkcohort::{
    chain::{random_salt, trial_id_of},
    commitment::fr_to_hex,
};

use crate::{emit, trials::parse_salt, DeploymentArg, Global};

/// Compute the id of the trial an account will open with a salt.
#[derive(Args)]
pub(crate) struct TrialIdArgs {
    /// The account that will open the trial (the id is its own: another sender gets another).
    #[arg(long)]
    sponsor: String,
    /// Salt (32 bytes, hex; default: a fresh random one, printed: pass it to `sponsor
    /// open-trial --salt`).
    #[arg(long)]
    salt: Option<String>,
    /// Deployment file (its chain id and TrialMarket address enter the id).
    #[command(flatten)]
    deployment: DeploymentArg,
}

impl TrialIdArgs {
    /// Prints the salt and the trial id `openTrial` will give it.
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        let sponsor: Address = self
            .sponsor
            .parse()
            .with_context(|| format!("bad address `{}`", self.sponsor))?;
        let salt = match &self.salt {
            Some(s) => parse_salt(s)?,
            None => random_salt(),
        };
        let d = self.deployment.load()?;
        let id = trial_id_of(d.chain_id, d.trials, sponsor, salt);
        emit(
            g,
            json!({"trial_id": fr_to_hex(&id), "salt": salt, "sponsor": sponsor, "market": d.trials, "chain_id": d.chain_id}),
            || {
                println!(
                    "trial id {} (sponsor {sponsor}, salt {salt}, TrialMarket {} on chain {})",
                    fr_to_hex(&id),
                    d.trials,
                    d.chain_id
                );
                println!("open it with `sponsor open-trial --salt {salt}` from {sponsor}");
            },
        );
        Ok(())
    }
}
