//! Halo2 circuits (halo2-base flex gate + range lookups, KZG over BN254).
//!
//! * [`aggregate`]: cohort statistics over a whole committed dataset.
//! * [`eligibility`]: one to `B` patients meet a trial's criteria, with nullifiers.
//! * [`record`]: the record chip both share (field loading, packing, criteria).

pub mod aggregate;
pub mod eligibility;
pub mod fast; // issue #8 design-B spike: standalone, not used by the CLI
pub mod record;

pub use aggregate::{build, AggregateWitness, InputIndex, Probes, PublicInputs};

#[cfg(test)]
mod eligibility_tests;
#[cfg(test)]
mod tests;
