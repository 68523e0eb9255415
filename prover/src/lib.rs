//! zkcohort: zero-knowledge cohort statistics over committed patient datasets.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`schema`] and [`icd10`]: typed columns with declared widths; order-preserving codes.
//! 2. [`dataset`]: CSV import, synthetic cohorts, the custodian's dataset directory; [`fhir`]:
//!    FHIR R4 import (Bundles and NDJSON) through a mapping file; [`disclosure`]: the
//!    custodian's ledger of released answers and the policy that refuses differencing.
//! 3. [`commitment`] and [`poseidon`]: record packing and the salted Poseidon Merkle commitment.
//! 4. [`query`]: query specs, their public constants, and the native ground truth.
//! 5. [`circuit`]: the universal aggregate circuit (halo2-base, KZG over BN254).
//! 6. [`keys`]: universal params and cached proving/verifying keys.
//! 7. [`proof`]: proving, proof artifacts and offline verification.
//! 8. [`evm`]: the generated Solidity verifier and its manifest.
//! 9. [`chain`]: alloy bindings and clients for the registry and markets; [`demo`]: the story.
//! 10. [`audit`]: the regulator's view: the history rebuilt from the chain alone, every proof
//!     re-verified off-chain, the money reconciled, anomalies flagged, a report to read.
//! 11. [`study`]: study templates over released answers (Welch's t, 2×2 tables, correlation,
//!     pooling and fixed-effect meta-analysis across sites).
//!
//! Trials: [`membership`] (the per-patient tree every dataset also commits to), [`credential`]
//! (a patient's file), [`trial`] (criteria), [`circuit::eligibility`] and [`eligibility`]
//! (proofs with nullifiers).
//!
//! Shared: [`error`], [`progress`] (progress of long work), [`utc`] (calendar dates).

pub mod audit;
pub mod chain;
pub mod circuit;
pub mod commitment;
pub mod credential;
pub mod dataset;
pub mod demo;
pub mod disclosure;
pub mod eligibility;
pub mod error;
pub mod evm;
pub mod fhir;
pub mod icd10;
pub mod keys;
pub mod membership;
pub mod poseidon;
pub mod progress;
pub mod proof;
pub mod query;
pub mod schema;
pub mod study;
pub mod trial;
pub mod utc;

pub use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
