//! Halo2 circuits (KZG over BN254).
//!
//! * [`aggregate`]: cohort statistics over a whole committed dataset, on halo2-base's flex gate
//!   with a Poseidon tree commitment (the first aggregate circuit).
//! * [`fast`]: the fold circuit (issue #8): the dataset committed as KZG data columns, the
//!   query folded into lookups; what the product answers queries with.
//! * [`eligibility`]: one to `B` patients meet a trial's criteria, with nullifiers.
//! * [`record`]: the record chip the flex-gate circuits share (field loading, packing,
//!   criteria).
//! * [`permutation`]: the Poseidon permutation as a custom gate, and [`gated`]: the circuit
//!   halo2 synthesizes, halo2-base's builder with that gate beside it.

pub mod aggregate;
pub mod eligibility;
pub mod fast;
pub mod gated;
pub mod permutation;
pub mod record;

pub use aggregate::{build, AggregateWitness, InputIndex, Probes, PublicInputs};

#[cfg(test)]
mod eligibility_tests;
#[cfg(test)]
mod tests;
