//! Trial commands: credentials (custodian), eligibility proofs and enrolment (patient, or the
//! custodian referring a batch), trials (sponsor).

use std::path::PathBuf;

use alloy::primitives::{Address, B256};
use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use serde_json::json;
use zkcohort::{
    chain::{address_to_fr, random_salt, TrialTerms},
    commitment::{fr_from_hex, fr_to_hex},
    credential::{load_identity, save_identity, Credential},
    dataset::{write_atomic, DatasetDir},
    eligibility::{self, Candidate, EligibilityArtifact},
    error::ProofError,
    membership::Identity,
    proof,
    schema::Schema,
    trial::TrialSpec,
    Fr,
};

use crate::{client, emit, store, ChainArgs, Global};

/// Patient actions (a custodian referring its patients may run them too).
#[derive(Subcommand)]
pub(crate) enum PatientCmd {
    /// Make a patient identity: a secret only you keep, and its commitment, which you give
    /// your hospital (it puts it in your record's leaf; then only you can enrol you).
    Identity {
        /// Where to write the identity (refused if the file exists: an identity is never
        /// overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Prove that one or more patients (credentials of one dataset) meet a trial's criteria.
    /// Nothing is proved, and the reason is printed, for a patient who does not qualify.
    ProveEligibility {
        /// Credential file from `custodian issue-credential` (repeat for a batch).
        #[arg(long = "credential", required = true)]
        credentials: Vec<PathBuf>,
        /// The patient's identity file from `patient identity` (repeat, in credential order).
        #[arg(long = "identity", required = true)]
        identities: Vec<PathBuf>,
        /// Trial spec (JSON).
        #[arg(long)]
        trial: PathBuf,
        /// Trial id (hex, printed by `sponsor open-trial`).
        #[arg(long)]
        trial_id: String,
        /// Payout address for each patient's share, in credential order (default: none, the
        /// custodian receives the whole bounty).
        #[arg(long = "payout", value_delimiter = ',')]
        payouts: Vec<String>,
        /// Patient slots of the circuit (default: 1 for one credential, else 4).
        #[arg(long)]
        batch: Option<usize>,
        /// Output artifact.
        #[arg(long)]
        out: PathBuf,
    },
    /// Submit an eligibility proof: spends each patient's nullifier and credits the payees.
    Enroll {
        /// Artifact from `prove-eligibility`.
        #[arg(long)]
        proof: PathBuf,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Withdraw the patient share of trial bounties credited to this account.
    Withdraw {
        #[command(flatten)]
        chain: ChainArgs,
    },
}

/// Parses a trial id (hex field element ≥ 2^128).
pub(crate) fn trial_id(s: &str) -> Result<Fr> {
    let padded = format!("0x{:0>64}", s.trim_start_matches("0x"));
    let id = fr_from_hex(&padded).with_context(|| format!("bad trial id `{s}`"))?;
    if !eligibility::valid_trial_id(&id) {
        bail!("trial id `{s}` is below 2^128");
    }
    Ok(id)
}

pub(crate) async fn patient(g: &Global, cmd: PatientCmd) -> Result<()> {
    match cmd {
        PatientCmd::Identity { out } => {
            if out.exists() {
                bail!(
                    "{} exists: an identity is never overwritten (enrolments made with it need it)",
                    out.display()
                );
            }
            let identity = Identity::generate(&mut rand::rngs::OsRng);
            save_identity(&identity, &out)?;
            let commitment = fr_to_hex(&identity.commitment());
            emit(
                g,
                json!({"identity": out, "commitment": commitment}),
                || {
                    println!(
                    "identity written to {} (SECRET: keep it; whoever holds it can enrol you)\n\
                     give your hospital its commitment: {commitment}",
                    out.display()
                )
                },
            );
        }
        PatientCmd::ProveEligibility {
            credentials,
            identities,
            trial,
            trial_id: id,
            payouts,
            batch,
            out,
        } => {
            let spec = TrialSpec::load(&trial)?;
            let id = trial_id(&id)?;
            let opened = credentials
                .iter()
                .map(|p| Credential::load(p).with_context(|| format!("credential {}", p.display())))
                .collect::<Result<Vec<_>>>()?;
            if identities.len() != opened.len() {
                bail!(
                    "{} identities for {} credentials (one --identity per --credential, same order)",
                    identities.len(),
                    opened.len()
                );
            }
            let identities = identities
                .iter()
                .map(|p| load_identity(p).with_context(|| format!("identity {}", p.display())))
                .collect::<Result<Vec<_>>>()?;
            if !payouts.is_empty() && payouts.len() != opened.len() {
                bail!(
                    "{} payout addresses for {} credentials",
                    payouts.len(),
                    opened.len()
                );
            }
            let payouts = payouts
                .iter()
                .map(|a| {
                    let a: Address = a.parse().with_context(|| format!("bad address `{a}`"))?;
                    Ok(address_to_fr(a))
                })
                .collect::<Result<Vec<_>>>()?;
            let batch = batch.unwrap_or(if opened.len() == 1 { 1 } else { 4 });
            let schema = &opened[0].credential.schema;
            spec.compile(schema)?;
            let (params, keys) = store(g)?.eligibility_circuit(schema, batch)?;
            let candidates: Vec<Candidate<'_>> = opened
                .iter()
                .enumerate()
                .map(|(i, c)| Candidate {
                    credential: c,
                    identity: &identities[i],
                    payout: payouts.get(i).copied().unwrap_or(Fr::ZERO),
                })
                .collect();
            let started = std::time::Instant::now();
            let artifact = match eligibility::prove(&keys, &params, &spec, id, &candidates) {
                Err(ProofError::Ineligible(why)) => {
                    bail!("no proof: {why}. Nothing was written.")
                }
                other => other?,
            };
            let secs = started.elapsed().as_secs_f64();
            write_atomic(&out, &serde_json::to_vec_pretty(&artifact)?)?;
            emit(
                g,
                json!({"artifact": out, "circuit_id": artifact.circuit_id, "nullifiers": artifact.nullifiers(), "prove_seconds": secs}),
                || {
                    println!(
                        "{} patient(s) eligible for trial {}: proved with {} in {secs:.1}s → {}",
                        candidates.len(),
                        artifact.trial_id,
                        artifact.circuit_id,
                        out.display()
                    );
                    for n in artifact.nullifiers() {
                        println!("  nullifier {n}");
                    }
                },
            );
        }
        PatientCmd::Enroll { proof: path, chain } => {
            let a: EligibilityArtifact = proof::read_artifact(&path)?;
            let c = client(&chain).await?;
            let (n, mined) = c.enroll(&a).await.with_context(|| {
                format!(
                    "enrolment failed; the proof {} is kept, retry when fixed",
                    path.display()
                )
            })?;
            emit(
                g,
                json!({"enrolled": n, "tx": mined.tx, "gas_used": mined.gas_used}),
                || {
                    println!(
                        "enrolled {n} patient(s) in trial {}: proof verified on-chain (tx {}, {} gas)",
                        a.trial_id, mined.tx, mined.gas_used
                    )
                },
            );
        }
        PatientCmd::Withdraw { chain } => withdraw(g, &chain).await?,
    }
    Ok(())
}

/// Withdraws the account's credit in the trial market.
pub(crate) async fn withdraw(g: &Global, chain: &ChainArgs) -> Result<()> {
    let c = client(chain).await?;
    let (amount, mined) = c.withdraw_trials().await?;
    emit(
        g,
        json!({"amount": amount.to_string(), "tx": mined.tx}),
        || println!("withdrew {amount} wei of trial bounties, tx {}", mined.tx),
    );
    Ok(())
}

/// `custodian issue-credential`.
pub(crate) fn issue_credential(
    g: &Global,
    dataset: PathBuf,
    index: usize,
    registrant: Option<Address>,
    out: PathBuf,
) -> Result<()> {
    let data = DatasetDir::new(&dataset).load_committed()?;
    let registrant = match registrant {
        Some(a) => a,
        None => DatasetDir::new(&dataset)
            .registration()?
            .and_then(|r| r.registrant)
            .with_context(|| {
                format!(
                    "no registrant in {}: pass --registrant (the address that registers the \
                     dataset; eligibility proofs name it)",
                    dataset.join("registration.json").display()
                )
            })?,
    };
    let credential = Credential::issue(&data, index, registrant)?;
    credential.save(&out)?;
    emit(
        g,
        json!({"credential": out, "index": index, "member_root": credential.member_root, "registrant": registrant}),
        || {
            println!(
                "credential of record {index} written to {} (PRIVATE: the patient's record; hand \
                 it to the patient only)",
                out.display()
            )
        },
    );
    Ok(())
}

/// Arguments of `sponsor open-trial`.
#[derive(Args)]
pub(crate) struct OpenTrialArgs {
    /// Trial spec (JSON).
    #[arg(long)]
    trial: PathBuf,
    /// Schema the datasets use.
    #[arg(long, default_value = "examples/schema-clinical-v1.json")]
    schema: PathBuf,
    /// Salt the trial id is derived from (32 bytes, hex; default: random). The market derives
    /// the id from the chain, itself, your address and the salt, so nobody else can take it:
    /// compute it first with `sponsor trial-id --salt` to announce it before opening.
    #[arg(long)]
    salt: Option<String>,
    /// Bounty per enrolled patient, in ether.
    #[arg(long)]
    bounty: String,
    /// Share of each bounty paid to the patient's payout address, in basis points.
    #[arg(long, default_value_t = 0)]
    patient_share_bps: u16,
    /// Maximum enrolments.
    #[arg(long)]
    cap: u32,
    /// Seconds from now until the deadline.
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    deadline_secs: u64,
    /// Only datasets of custodians this accreditor attests can enrol (required: a trial open
    /// to any registered dataset could be drained with an invented cohort). To pick custodians
    /// yourself, accredit them from your own account and name it.
    #[arg(long)]
    accredited_by: String,
    #[command(flatten)]
    chain: ChainArgs,
}

/// `sponsor open-trial`.
pub(crate) async fn open_trial(g: &Global, args: OpenTrialArgs) -> Result<()> {
    let OpenTrialArgs {
        trial,
        schema,
        salt,
        bounty,
        patient_share_bps,
        cap,
        deadline_secs,
        accredited_by,
        chain,
    } = args;
    let accreditor: alloy::primitives::Address = accredited_by
        .parse()
        .with_context(|| format!("bad address `{accredited_by}`"))?;
    let spec = TrialSpec::load(&trial)?;
    let schema = Schema::load(&schema)?;
    let criteria = spec.compile(&schema)?;
    let salt = match salt {
        Some(s) => parse_salt(&s)?,
        None => random_salt(),
    };
    let bounty = alloy::primitives::utils::parse_ether(&bounty)
        .with_context(|| format!("bad ETH amount `{bounty}`"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let terms = TrialTerms {
        bounty,
        patient_share_bps,
        cap,
        deadline: now + deadline_secs,
        accreditor,
    };
    let c = client(&chain).await?;
    let (id, mined) = c
        .open_trial(salt, &spec, B256::from(schema.hash()), &criteria, &terms)
        .await?;
    emit(
        g,
        json!({"trial_id": fr_to_hex(&id), "salt": salt, "tx": mined.tx, "gas_used": mined.gas_used, "spec_hash": format!("0x{}", hex::encode(spec.hash())), "spec_bytes": spec.document().len()}),
        || {
            println!(
                "opened trial {} ({cap} places, {} wei each, escrowed), tx {}",
                fr_to_hex(&id),
                bounty,
                mined.tx
            );
            println!("its id is derived from your address and salt {salt}");
            println!(
                "spec document published with it ({} bytes, sha256 0x{}): {}",
                spec.document().len(),
                hex::encode(spec.hash()),
                spec.describe()
            );
        },
    );
    Ok(())
}

/// Parses a trial salt (32 bytes, hex).
pub(crate) fn parse_salt(s: &str) -> Result<B256> {
    s.parse()
        .with_context(|| format!("bad salt `{s}` (32 bytes, hex)"))
}

/// `sponsor trial-status` (a read: no key needed).
pub(crate) async fn trial_status(
    g: &Global,
    id: &str,
    schema: Option<PathBuf>,
    chain: ChainArgs,
) -> Result<()> {
    let id = trial_id(id)?;
    let c = crate::status::reader(&chain).await?;
    let t = c.trial(id).await?;
    let spec = crate::status::trial_spec_view(&c, id, &t, schema.as_ref()).await?;
    let mut value = serde_json::to_value(&t)?;
    value["spec"] = spec.json;
    emit(g, value, || {
        println!(
            "trial {}: {}/{} enrolled, bounty {} wei ({} bps to patients), deadline {}, locked {} wei, refunded {}",
            fr_to_hex(&id),
            t.enrolled,
            t.cap,
            t.bounty,
            t.patient_share_bps,
            t.deadline,
            t.locked,
            t.refunded
        );
        for line in &spec.lines {
            println!("{line}");
        }
    });
    Ok(())
}

/// `sponsor refund --trial-id`.
pub(crate) async fn refund_trial(g: &Global, id: &str, chain: ChainArgs) -> Result<()> {
    let id = trial_id(id)?;
    let c = client(&chain).await?;
    let mined = c.refund_trial(id).await?;
    emit(g, json!({"tx": mined.tx}), || {
        println!(
            "refund credited for trial {} (tx {}); `custodian withdraw --trials` pays it out to this account",
            fr_to_hex(&id),
            mined.tx
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use zkcohort::chain::fr_to_u256;

    #[test]
    fn addresses_round_trip_through_the_field() {
        let a: Address = "0x00000000000000000000000000000000000a11ce"
            .parse()
            .unwrap();
        let f = address_to_fr(a);
        assert_eq!(fr_to_u256(&f), U256::from(0xa11ce));
        assert!(trial_id("0x7").is_err());
        let derived = zkcohort::chain::trial_id_of(31337, Address::ZERO, a, B256::ZERO);
        assert!(trial_id(&fr_to_hex(&derived)).is_ok());
        assert!(parse_salt("0x7").is_err());
        assert_eq!(
            parse_salt(&format!("{:#x}", B256::ZERO)).unwrap(),
            B256::ZERO
        );
    }
}
