//! Halo2 circuits (halo2-base flex gate + range lookups, KZG over BN254).

pub mod aggregate;

pub use aggregate::{build, AggregateWitness, Probes, PublicInputs};

#[cfg(test)]
mod tests;
