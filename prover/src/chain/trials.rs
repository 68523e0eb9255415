//! Trial calls: open and fund a trial, enrol patients with an eligibility proof, read a
//! trial's state, refund, withdraw; and the trial id a sponsor's salt gives ([`trial_id_of`]).

use alloy::{
    primitives::{keccak256, Address, B256, U256},
    sol_types::SolValue,
};
use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use serde::Serialize;

use super::{
    circuit_key, event, fr_to_u256, hex_bytes, words, ChainError, Client, ITrialMarket, Mined,
    PublishedSpec, TrialMarket,
};
use crate::{
    eligibility::{self, EligibilityArtifact},
    trial::{TrialCriteria, TrialSpec},
    Fr,
};

/// The id `TrialMarket.trialIdOf(sponsor, salt)` gives on chain `chain_id` at `market`:
/// `2^128 + keccak256(abi.encode(chain_id, market, sponsor, salt)) mod (r − 2^128)`, so always
/// a valid trial id (at least 2^128, below r). Ids are derived, never chosen (issue #14): a
/// front-runner copying a sponsor's `openTrial` gets another id, and another chain or
/// deployment another id for the same sponsor and salt, so an eligibility proof (which binds
/// the id) enrols in one trial of one market only. The sponsor picks the salt, so the id is
/// known (and can be announced, and proved against) before the trial is opened.
pub fn trial_id_of(chain_id: u64, market: Address, sponsor: Address, salt: B256) -> Fr {
    let min = U256::from(1) << eligibility::MIN_TRIAL_ID_BITS;
    // r − 1 is the largest field element, so r is one more.
    let r = fr_to_u256(&-Fr::ONE) + U256::from(1);
    let h = keccak256((U256::from(chain_id), market, sponsor, salt).abi_encode());
    let id = min + U256::from_be_bytes(h.0) % (r - min);
    Option::from(Fr::from_repr(id.to_le_bytes())).expect("2^128 + (x mod (r − 2^128)) is below r")
}

/// A fresh random salt for [`Client::open_trial`] (a trial id the sponsor has not used).
pub fn random_salt() -> B256 {
    let mut salt = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    B256::from(salt)
}

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
    /// The id of the trial this account opens with `salt` on this deployment
    /// ([`trial_id_of`]; no call: what `openTrial` will give it).
    pub fn trial_id_of(&self, salt: B256) -> Fr {
        trial_id_of(
            self.deployment.chain_id,
            self.deployment.trials,
            self.account,
            salt,
        )
    }

    /// Opens a trial with `salt` and escrows `bounty × cap`; returns its id
    /// ([`Client::trial_id_of`], checked against the market's `TrialOpened`) and the mined
    /// transaction. The spec's canonical JSON ([`TrialSpec::document`]) goes with it: the
    /// market checks it against the spec hash and publishes it (`SpecPublished`).
    pub async fn open_trial(
        &self,
        salt: B256,
        spec: &TrialSpec,
        schema_hash: B256,
        criteria: &TrialCriteria,
        terms: &TrialTerms,
    ) -> Result<(Fr, Mined), ChainError> {
        let trial_id = self.trial_id_of(salt);
        let constants: Vec<U256> = criteria.to_fields().iter().map(fr_to_u256).collect();
        let call = self
            .trials
            .openTrial(
                salt,
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
        let opened: TrialMarket::TrialOpened = event(&receipt, "openTrial")?;
        if opened.trialId != fr_to_u256(&trial_id) {
            return Err(ChainError::TrialIdMismatch {
                market: self.deployment.trials,
                derived: fr_to_u256(&trial_id),
                opened: opened.trialId,
            });
        }
        Ok((trial_id, Mined::from(&receipt)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitment::fr_to_biguint;

    /// Vectors `TrialMarket.trialIdOf` returned in forge (`test_trialIdsAreDerived…`, trace
    /// with -vvvv): the eligibility fixture's market, sponsor and salt, on chain 31337 and 31338.
    #[test]
    fn trial_ids_are_the_contracts() {
        let market = Address::from_word(keccak256("zkcohort.fixture.TrialMarket"));
        let sponsor = Address::from_word(keccak256("zkcohort.fixture.sponsor"));
        let salt = keccak256("zkcohort.fixture.trial");
        let id = |chain_id| fr_to_u256(&trial_id_of(chain_id, market, sponsor, salt));
        assert_eq!(
            id(31_337),
            "10554421297213422226697399120448090705499938066712586086830892704237205650736"
                .parse::<U256>()
                .unwrap()
        );
        assert_eq!(
            id(31_338),
            "1828744317515789396109603747353382516794258870601960264793070642258658698694"
                .parse::<U256>()
                .unwrap()
        );
    }

    /// Every input changes the id, and every id is a valid trial id (at least 2^128).
    #[test]
    fn every_input_is_bound_and_ids_are_in_range() {
        let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        let (s, t) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let base = trial_id_of(1, a, b, s);
        assert_ne!(base, trial_id_of(2, a, b, s), "chain");
        assert_ne!(base, trial_id_of(1, b, b, s), "market");
        assert_ne!(base, trial_id_of(1, a, a, s), "sponsor");
        assert_ne!(base, trial_id_of(1, a, b, t), "salt");
        for i in 0..64u8 {
            let id = trial_id_of(u64::from(i), a, b, B256::repeat_byte(i));
            assert!(eligibility::valid_trial_id(&id));
            assert!(fr_to_biguint(&id).bits() > 128);
        }
    }
}
