//! The demo's second act: a sponsor opens a recruitment trial; hospitals issue credentials;
//! patients prove eligibility with their own identity secrets and enrol (one alone, with a
//! payout address, after the hospital fails to enrol them ahead of them; a hospital refers a
//! batch in one proof for patients who handed it their secrets); an ineligible patient cannot produce a proof; a patient who tries to
//! enrol twice is stopped by the nullifier; payees withdraw; the sponsor reclaims unused places.

use alloy::{
    primitives::{utils::format_ether, Address, B256, U256},
    providers::Provider,
};
use anyhow::{bail, ensure, Context as _, Result};
use serde::Serialize;

use super::{say, Scenario};
use crate::{
    chain::{address_to_fr, random_salt, ChainError, Client, PublishedSpec, TrialTerms},
    commitment::fr_to_hex,
    credential::{Credential, OpenedCredential},
    dataset::{write_atomic, CommittedDataset, DatasetDir},
    eligibility::{self, Candidate, EligibilityArtifact},
    error::ProofError,
    evm::{self, Manifest},
    keys::CircuitKeys,
    membership::Identity,
    proof::{self, Artifact},
    schema::Schema,
    trial::TrialSpec,
    Fr,
};
use halo2_base::halo2_proofs::{
    halo2curves::{bn256::Bn256, ff::Field},
    poly::kzg::commitment::ParamsKZG,
};

/// Patient slots of the referral circuit in the standard demo.
pub const REFERRAL_BATCH: usize = 4;

/// The eligibility circuits of the demo: single-patient and referral batch.
pub struct TrialCircuits {
    single: (ParamsKZG<Bn256>, CircuitKeys),
    batch: (ParamsKZG<Bn256>, CircuitKeys),
}

/// Loads (or generates) the eligibility keys and writes their verifiers, before deployment.
pub fn setup(s: &Scenario, schema: &Schema, quiet: bool) -> Result<TrialCircuits> {
    let single = s.store.eligibility_circuit(schema, 1)?;
    let batch = s.store.eligibility_circuit(schema, s.referral_batch)?;
    for (params, keys) in [&single, &batch] {
        let name = evm::write_verifier(&s.root.join("contracts/verifiers"), params, keys)?;
        say(
            quiet,
            format!(
                "circuit {} → contract {name}, vk {}",
                keys.config.circuit_id, keys.vk_hash
            ),
        );
    }
    Ok(TrialCircuits { single, batch })
}

/// One enrolment transaction.
#[derive(Clone, Debug, Serialize)]
pub struct Enrolment {
    /// Who submitted it.
    pub by: String,
    /// Patients enrolled.
    pub patients: u64,
    /// Seconds to prove.
    pub prove_seconds: f64,
    /// Gas of the enrolment transaction (verification included).
    pub gas: u64,
}

/// What happened in the trial.
#[derive(Clone, Debug, Serialize)]
pub struct TrialReport {
    /// Trial id.
    pub trial_id: String,
    /// The trial spec as anyone reads it back from the chain (`SpecPublished`), in words.
    pub published_spec: String,
    /// The verifier whose key re-verified the referral off-chain from its transaction alone.
    pub reverified_from_tx: String,
    /// Enrolments, in order.
    pub enrolments: Vec<Enrolment>,
    /// Why the ineligible patient got no proof.
    pub ineligible_reason: String,
    /// The custom error that stopped the second enrolment of a patient.
    pub double_enrolment_rejected_with: String,
    /// Patients enrolled on-chain.
    pub enrolled: u32,
    /// Wei withdrawn by the patient who enrolled with a payout address.
    pub patient_paid: U256,
    /// Wei withdrawn by the custodians for bounties.
    pub custodians_paid: U256,
    /// Wei credited back to the sponsor after the deadline.
    pub refunded: U256,
}

/// A registered hospital as the trial act sees it.
pub struct Site<'a> {
    /// Display name.
    pub name: &'a str,
    /// Position among the demo's hospitals (names its patients' identities).
    pub hospital: usize,
    /// The custodian's client.
    pub client: &'a Client,
    /// Dataset directory.
    pub dir: &'a DatasetDir,
    /// Committed dataset.
    pub data: &'a CommittedDataset,
}

/// Reads an enrolment back from its transaction with a keyless client (calldata and the
/// published spec), verifies it off-chain, and checks it is `sent`; returns the verifier
/// whose key verified it.
async fn reverify(
    s: &Scenario,
    any: &Client,
    tx: B256,
    sent: &EligibilityArtifact,
) -> Result<String> {
    let regulator = Client::connect_read_only(any.rpc_url(), any.deployment.clone()).await?;
    let manifest = Manifest::load(&s.root.join("contracts/verifiers").join(evm::MANIFEST))?;
    let read = regulator
        .artifact_of_tx(tx, &manifest, std::slice::from_ref(&sent.circuit.schema))
        .await?;
    let verified = proof::verify_artifact(&read.artifact, &s.store, &manifest)?;
    let Artifact::Eligibility(from_tx) = &read.artifact else {
        bail!("an enrolment read back as an aggregate proof");
    };
    ensure!(
        from_tx.nullifiers() == sent.nullifiers() && from_tx.slots == sent.slots,
        "the enrolment read back from the chain is not the one sent"
    );
    Ok(verified.verifier)
}

/// The trial spec as published on-chain, which must be exactly the canonical JSON of `spec`
/// (public criteria, nothing else), in words.
fn read_back(published: &Option<PublishedSpec>, spec: &TrialSpec) -> Result<String> {
    let published = published
        .as_ref()
        .context("openTrial published no spec document")?;
    ensure!(
        published.document.as_ref() == spec.document().as_slice(),
        "the published spec document is not the spec's canonical JSON"
    );
    let read = TrialSpec::from_document(&published.document)?;
    ensure!(read == *spec, "the published spec reads as another spec");
    Ok(read.describe())
}

/// The hospital issues record `index`'s credential (naming itself as the registrant); the
/// patient holds its identity.
fn issue(site: &Site<'_>, index: usize) -> Result<(OpenedCredential, Identity)> {
    let path = site
        .dir
        .path
        .join("credentials")
        .join(format!("patient-{index}.json"));
    Credential::issue(site.data, index, site.client.account)?.save(&path)?;
    Ok((
        Credential::load(&path)?,
        super::patient_identity(site.hospital, index),
    ))
}

fn prove(
    circuit: &(ParamsKZG<Bn256>, CircuitKeys),
    spec: &TrialSpec,
    trial_id: Fr,
    candidates: &[Candidate<'_>],
) -> Result<(EligibilityArtifact, f64), ProofError> {
    let t = std::time::Instant::now();
    let a = eligibility::prove(&circuit.1, &circuit.0, spec, trial_id, candidates)?;
    Ok((a, t.elapsed().as_secs_f64()))
}

/// Runs the trial act on a deployed chain where the sites are registered.
pub async fn run(
    s: &Scenario,
    circuits: &TrialCircuits,
    sponsor: &Client,
    patient: &Client,
    sites: &[Site<'_>],
    accreditor: Address,
    quiet: bool,
) -> Result<TrialReport> {
    let spec = TrialSpec::load(&s.trial)?;
    let schema = &sites[0].data.dataset.schema;
    let criteria = spec.compile(schema)?;

    say(quiet, "\n== Sponsor: open a recruitment trial");
    say(quiet, format!("\"{}\"", spec.name));
    // The id is derived from the chain, the market, the sponsor and its salt: known (and
    // announced) before opening, and nobody else's `openTrial` can take it.
    let salt = random_salt();
    let announced = sponsor.trial_id_of(salt);
    let now = sponsor
        .provider
        .get_block_by_number(Default::default())
        .await?
        .map(|b| b.header.timestamp)
        .unwrap_or(0);
    let terms = TrialTerms {
        bounty: s.bounty,
        patient_share_bps: 2_000,
        cap: (2 * s.referral_batch).max(8) as u32,
        deadline: now + 3600,
        accreditor,
    };
    let (trial_id, opened) = sponsor
        .open_trial(salt, &spec, B256::from(schema.hash()), &criteria, &terms)
        .await?;
    say(
        quiet,
        format!(
            "trial {}…: {} places × {} ETH escrowed, 20% of each bounty to the patient's payout address ({} gas)",
            &fr_to_hex(&trial_id)[..18],
            terms.cap,
            format_ether(terms.bounty),
            opened.gas_used
        ),
    );
    ensure!(
        trial_id == announced,
        "the trial opened under another id than the one announced"
    );
    say(
        quiet,
        "   its id was derived from the sponsor's address and salt, announced before opening: nobody else can open it",
    );
    let published_spec = read_back(&sponsor.trial_spec(trial_id).await?, &spec)?;
    say(
        quiet,
        format!("   spec document published with it; anyone reads it back: {published_spec}"),
    );

    // Who qualifies: the custodian knows (it holds the records); the chain never will.
    let eligible: Vec<Vec<usize>> = sites
        .iter()
        .map(|site| {
            (0..site.data.dataset.records.len())
                .filter(|&i| {
                    criteria
                        .check(schema, &site.data.dataset.records[i])
                        .is_ok()
                })
                .collect()
        })
        .collect();
    let (solo_site, referral_site) = match (
        eligible.iter().position(|e| !e.is_empty()),
        (0..sites.len()).max_by_key(|&i| eligible[i].len()),
    ) {
        (Some(a), Some(b)) if eligible[b].len() >= 2 || a != b => (a, b),
        _ => bail!("the demo cohorts hold too few eligible patients for this trial"),
    };

    say(
        quiet,
        "\n== A patient: credential from the hospital, eligibility proof, enrolment",
    );
    let (solo, identity) = issue(&sites[solo_site], eligible[solo_site][0])?;

    // The hospital holds the record, the blinding and the path, but not the patient's secret:
    // it cannot enrol the patient ahead of them (and name its own payout).
    let guessed = Identity::generate(&mut rand::rngs::OsRng);
    let preempted = match prove(
        &circuits.single,
        &spec,
        trial_id,
        &[Candidate {
            credential: &solo,
            identity: &guessed,
            payout: address_to_fr(sites[solo_site].client.account),
        }],
    ) {
        Err(ProofError::Artifact(why)) => why,
        Err(other) => return Err(other.into()),
        Ok(_) => bail!("the hospital proved for its patient without the patient's secret"),
    };
    say(
        quiet,
        format!(
            "   {} tries to enrol the patient ahead of them: no proof without the patient's secret ({preempted})",
            sites[solo_site].name
        ),
    );
    let solo = [Candidate {
        credential: &solo,
        identity: &identity,
        payout: address_to_fr(patient.account),
    }];
    let (artifact, secs) = prove(&circuits.single, &spec, trial_id, &solo)?;
    write_atomic(
        &sites[solo_site].dir.path.join("eligibility-solo.json"),
        &serde_json::to_vec_pretty(&artifact)?,
    )?;
    let (n, mined) = patient.enroll(&artifact).await?;
    say(
        quiet,
        format!(
            "patient of {} proved in {secs:.1}s, enrolled {n} ({} gas); nullifier {}…",
            sites[solo_site].name,
            mined.gas_used,
            &artifact.slots[0].nullifier[..18]
        ),
    );
    let mut enrolments = vec![Enrolment {
        by: "patient".into(),
        patients: n,
        prove_seconds: secs,
        gas: mined.gas_used,
    }];

    say(
        quiet,
        "   the same patient proves again (a fresh proof) and tries to enrol a second time",
    );
    let (again, _) = prove(&circuits.single, &spec, trial_id, &solo)?;
    let double_enrolment_rejected_with = match patient.enroll(&again).await {
        Err(ChainError::Reverted { reason, .. }) => reason,
        Err(other) => return Err(other.into()),
        Ok(_) => bail!("a patient was enrolled twice"),
    };
    say(
        quiet,
        format!("   rejected by the trial contract: {double_enrolment_rejected_with}"),
    );

    let referral = &sites[referral_site];
    let skip = usize::from(referral_site == solo_site);
    let picked: Vec<usize> = eligible[referral_site]
        .iter()
        .copied()
        .skip(skip)
        .take(s.referral_batch.saturating_sub(1).max(1))
        .collect();
    say(
        quiet,
        format!(
            "\n== {} refers {} eligible patients in one batch proof ({}-slot circuit)",
            referral.name,
            picked.len(),
            s.referral_batch
        ),
    );
    say(
        quiet,
        "   (these patients asked the hospital to refer them and handed it their identity secrets)",
    );
    let creds = picked
        .iter()
        .map(|&i| issue(referral, i))
        .collect::<Result<Vec<_>>>()?;
    let candidates: Vec<Candidate<'_>> = creds
        .iter()
        .map(|(c, identity)| Candidate {
            credential: c,
            identity,
            payout: Fr::ZERO,
        })
        .collect();
    let (batch, secs) = prove(&circuits.batch, &spec, trial_id, &candidates)?;
    write_atomic(
        &referral.dir.path.join("eligibility-referral.json"),
        &serde_json::to_vec_pretty(&batch)?,
    )?;
    let (n, mined) = referral.client.enroll(&batch).await?;
    say(
        quiet,
        format!(
            "proved in {secs:.1}s, enrolled {n} ({} gas, {} per patient)",
            mined.gas_used,
            mined.gas_used / n.max(1)
        ),
    );
    enrolments.push(Enrolment {
        by: referral.name.into(),
        patients: n,
        prove_seconds: secs,
        gas: mined.gas_used,
    });
    let reverified_from_tx = reverify(s, sponsor, mined.tx, &batch).await?;
    say(
        quiet,
        format!(
            "   a regulator (no key) re-verifies this referral from its transaction alone \
             (calldata, published spec) with the key of {reverified_from_tx}: same nullifiers"
        ),
    );

    say(
        quiet,
        "\n== An ineligible patient tries to prove eligibility",
    );
    let last = sites.len() - 1;
    let Some(ineligible) = (0..sites[last].data.dataset.records.len()).find(|&i| {
        criteria
            .check(schema, &sites[last].data.dataset.records[i])
            .is_err()
    }) else {
        bail!("the demo cohorts hold no ineligible patient")
    };
    let (cred, identity) = issue(&sites[last], ineligible)?;
    let ineligible_reason = match prove(
        &circuits.single,
        &spec,
        trial_id,
        &[Candidate {
            credential: &cred,
            identity: &identity,
            payout: Fr::ZERO,
        }],
    ) {
        Err(ProofError::Ineligible(why)) => why,
        Err(other) => return Err(other.into()),
        Ok(_) => bail!("an ineligible patient obtained a proof"),
    };
    say(
        quiet,
        format!(
            "patient of {}: no proof: {ineligible_reason}",
            sites[last].name
        ),
    );

    say(
        quiet,
        "\n== Payments (pull) and the sponsor's refund after the deadline",
    );
    let (patient_paid, mined) = patient.withdraw_trials().await?;
    say(
        quiet,
        format!(
            "patient withdrew {} ETH ({} gas)",
            format_ether(patient_paid),
            mined.gas_used
        ),
    );
    let mut custodians_paid = U256::ZERO;
    let mut paid_sites = vec![solo_site, referral_site];
    paid_sites.dedup();
    for &i in &paid_sites {
        let (owed, _) = sites[i].client.withdraw_trials().await?;
        custodians_paid += owed;
        say(
            quiet,
            format!(
                "{} withdrew {} ETH of bounties",
                sites[i].name,
                format_ether(owed)
            ),
        );
    }
    let status = sponsor.trial(trial_id).await?;
    sponsor
        .provider
        .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (3601u64,))
        .await?;
    sponsor
        .provider
        .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await?;
    sponsor.refund_trial(trial_id).await?;
    let (refunded, _) = sponsor.withdraw_trials().await?;
    say(
        quiet,
        format!(
            "{}/{} places filled; after the deadline the sponsor reclaimed {} ETH",
            status.enrolled,
            status.cap,
            format_ether(refunded)
        ),
    );
    let enrolled_total: u64 = enrolments.iter().map(|e| e.patients).sum();
    ensure!(
        u64::from(status.enrolled) == enrolled_total,
        "the contract counts {} enrolments, the demo made {enrolled_total}",
        status.enrolled
    );
    ensure!(
        custodians_paid + patient_paid + refunded == terms.bounty * U256::from(terms.cap),
        "bounty accounting does not add up"
    );
    Ok(TrialReport {
        trial_id: fr_to_hex(&trial_id),
        published_spec,
        reverified_from_tx,
        enrolments,
        ineligible_reason,
        double_enrolment_rejected_with,
        enrolled: status.enrolled,
        patient_paid,
        custodians_paid,
        refunded,
    })
}
