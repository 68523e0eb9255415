//! Trial calls: open and fund a trial, enrol patients with an eligibility proof, read a
//! trial's state, refund, withdraw.

use alloy::primitives::{Address, B256, U256};
use serde::Serialize;

use super::{
    circuit_key, event, fr_to_u256, hex_bytes, words, ChainError, Client, ITrialMarket, Mined,
    PublishedSpec, TrialMarket,
};
use crate::{
    eligibility::EligibilityArtifact,
    trial::{TrialCriteria, TrialSpec},
    Fr,
};

/// Terms of a trial a sponsor opens.
#[derive(Clone, Debug)]
pub struct TrialTerms {
    /// Bounty per enrolled patient, in wei.
    pub bounty: U256,
    /// Share of each bounty paid to the patient's payout address, in basis points.
    pub patient_share_bps: u16,
    /// Maximum enrolments.
    pub cap: u32,
    /// Last timestamp at which enrolments are accepted.
    pub deadline: u64,
    /// Only datasets of custodians this address attests can enrol.
    pub accreditor: Address,
}

/// A trial's on-chain state, for `sponsor trial-status`.
#[derive(Clone, Debug, Serialize)]
pub struct TrialStatus {
    /// Sponsor.
    pub sponsor: String,
    /// Bounty per patient, wei.
    pub bounty: String,
    /// Patient share, basis points.
    pub patient_share_bps: u16,
    /// Enrolments so far.
    pub enrolled: u32,
    /// Enrolment cap.
    pub cap: u32,
    /// Deadline (unix seconds).
    pub deadline: u64,
    /// Whether the sponsor has been refunded.
    pub refunded: bool,
    /// Escrow still locked, wei.
    pub locked: String,
    /// Only datasets of custodians this address attests can enrol.
    pub accreditor: String,
    /// SHA-256 of the trial spec (its document is published in `SpecPublished`).
    pub spec_hash: B256,
    /// The schema the criteria are written for.
    pub schema_hash: B256,
    /// `keccak256(abi.encodePacked(criteria))` of the posted criteria words.
    pub criteria_hash: B256,
}

impl Client {
    /// Opens a trial and escrows `bounty × cap`; returns the mined transaction. The spec's
    /// canonical JSON ([`TrialSpec::document`]) goes with it: the market checks it against the
    /// spec hash and publishes it (`SpecPublished`).
    pub async fn open_trial(
        &self,
        trial_id: Fr,
        spec: &TrialSpec,
        schema_hash: B256,
        criteria: &TrialCriteria,
        terms: &TrialTerms,
    ) -> Result<Mined, ChainError> {
        let constants: Vec<U256> = criteria.to_fields().iter().map(fr_to_u256).collect();
        let call = self
            .trials
            .openTrial(
                fr_to_u256(&trial_id),
                ITrialMarket::Spec {
                    hash: B256::from(spec.hash()),
                    document: spec.document().into(),
                },
                schema_hash,
                constants,
                terms.bounty,
                terms.patient_share_bps,
                terms.cap,
                terms.deadline,
                terms.accreditor,
            )
            .value(terms.bounty * U256::from(terms.cap));
        let receipt = self.mine("openTrial", call.send().await).await?;
        let _: TrialMarket::TrialOpened = event(&receipt, "openTrial")?;
        Ok(Mined::from(&receipt))
    }

    /// Enrols the patients of an eligibility proof; returns how many were enrolled. A failure
    /// (e.g. a spent nullifier) leaves the artifact untouched.
    pub async fn enroll(&self, artifact: &EligibilityArtifact) -> Result<(u64, Mined), ChainError> {
        let inputs = words(&artifact.instances)?;
        let trial_id = inputs
            .get(1)
            .copied()
            .ok_or_else(|| ChainError::Input("artifact has no trial id".into()))?;
        let proof = hex_bytes(&artifact.proof)?;
        let call = self.trials.enroll(
            trial_id,
            circuit_key(&artifact.circuit_id),
            inputs,
            proof.into(),
        );
        let receipt = self.mine("enroll", call.send().await).await?;
        let enrolled = receipt
            .inner
            .logs()
            .iter()
            .filter(|l| l.log_decode::<TrialMarket::Enrolled>().is_ok())
            .count() as u64;
        Ok((enrolled, Mined::from(&receipt)))
    }

    /// A trial's state.
    pub async fn trial(&self, trial_id: Fr) -> Result<TrialStatus, ChainError> {
        let id = fr_to_u256(&trial_id);
        let t = self
            .trials
            .trial(id)
            .call()
            .await
            .map_err(|e| self.classify("trial", e))?;
        let locked = self
            .trials
            .locked(id)
            .call()
            .await
            .map_err(|e| self.classify("locked", e))?;
        Ok(TrialStatus {
            sponsor: t.sponsor.to_string(),
            bounty: t.bounty.to_string(),
            patient_share_bps: t.patientShareBps,
            enrolled: t.enrolled,
            cap: t.cap,
            deadline: t.deadline,
            refunded: t.refunded,
            locked: locked.to_string(),
            accreditor: t.accreditor.to_string(),
            spec_hash: t.specHash,
            schema_hash: t.schemaHash,
            criteria_hash: t.criteriaHash,
        })
    }

    /// The spec document published with a trial (its `SpecPublished` event), checked against
    /// the trial's `specHash`; `None` if the trial has no such event.
    pub async fn trial_spec(&self, trial_id: Fr) -> Result<Option<PublishedSpec>, ChainError> {
        let hash = self.trial(trial_id).await?.spec_hash;
        self.published_spec(self.deployment.trials, fr_to_u256(&trial_id), hash)
            .await
    }

    /// Whether a nullifier is spent in a trial (the patient is enrolled).
    pub async fn nullifier_spent(&self, trial_id: Fr, nullifier: Fr) -> Result<bool, ChainError> {
        self.trials
            .spent(fr_to_u256(&trial_id), fr_to_u256(&nullifier))
            .call()
            .await
            .map_err(|e| self.classify("spent", e))
    }

    /// Credits the sponsor with the bounties of a trial's unused places (after its deadline).
    pub async fn refund_trial(&self, trial_id: Fr) -> Result<Mined, ChainError> {
        let call = self.trials.refund(fr_to_u256(&trial_id));
        let receipt = self.mine("refund", call.send().await).await?;
        Ok(Mined::from(&receipt))
    }

    /// Withdraws the account's trial credit; returns the amount.
    pub async fn withdraw_trials(&self) -> Result<(U256, Mined), ChainError> {
        let owed = self
            .trials
            .pendingWithdrawals(Address::ZERO, self.account)
            .call()
            .await
            .map_err(|e| self.classify("pendingWithdrawals", e))?;
        let receipt = self
            .mine("withdraw", self.trials.withdraw(Address::ZERO).send().await)
            .await?;
        Ok((owed, Mined::from(&receipt)))
    }
}
