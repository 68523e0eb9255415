//! The circuit halo2 synthesizes: halo2-base's flex-gate builder, plus the Poseidon permutation
//! gate ([`super::permutation`]) for circuits that hash.
//!
//! A circuit's logic is written once, on the builder (`Context`, `GateInstructions`); where it
//! hashes it calls [`PermutationLog::hash`] instead of halo2-base's flex-gate Poseidon. That
//! computes the sponge natively, loads each permutation's output words into the builder as
//! witnesses and logs the permutation. At synthesis the logged permutations are laid out on the
//! permutation gate (73 rows of 5 advice columns each, against ~2,890 flex-gate cells), and every
//! input and output word of the gate is tied to its builder cell by a copy constraint (halo2-lib's
//! zkevm keccak component imports its own custom cells the same way, with the copy manager's
//! external cells). So the builder's witness for an output word is a free value only until the
//! copy constraint pins it to what the gate computed from the input words.
//!
//! Without the permutation gate ([`GatedParams::permutation_gate`] false) the circuit is
//! exactly halo2-base's `BaseCircuitBuilder`: the same columns, gates and keys.

use std::sync::OnceLock;

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, BaseConfig},
        GateInstructions,
    },
    halo2_proofs::{
        circuit::{Layouter, SimpleFloorPlanner},
        halo2curves::{
            bn256::Fr,
            ff::{Field, PrimeField},
        },
        plonk::{Circuit, ConstraintSystem, Error, Selector},
    },
    AssignedValue, Context, QuantumCell,
};
use snark_verifier_sdk::CircuitExt;

use super::permutation::{PermutationConfig, PermutationTrace};
use crate::poseidon::{RATE, T};

/// Shape parameters of a [`GatedCircuit`].
#[derive(Clone, Debug, Default)]
pub struct GatedParams {
    /// halo2-base's columns.
    pub base: BaseCircuitParams,
    /// Whether the Poseidon permutation gate is configured.
    pub permutation_gate: bool,
}

/// Columns of a [`GatedCircuit`].
#[derive(Clone, Debug)]
pub struct GatedConfig {
    base: BaseConfig<Fr>,
    permutation: Option<PermutationConfig>,
}

/// One permutation a circuit asked for: its native trace, and the builder cells that hold its
/// input words and the output words the circuit uses.
#[derive(Clone, Debug)]
struct Logged {
    trace: PermutationTrace,
    input: [AssignedValue<Fr>; T],
    output: Vec<(usize, AssignedValue<Fr>)>,
}

/// The permutations a circuit's logic asked for, in order (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct PermutationLog {
    logged: Vec<Logged>,
    /// A digest to load instead of the true one (permutation number, value): what a cheating
    /// prover's witness generation could do, for negative tests.
    #[cfg(test)]
    forged: Option<(usize, Fr)>,
}

impl PermutationLog {
    /// Number of permutations logged.
    pub fn len(&self) -> usize {
        self.logged.len()
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.logged.is_empty()
    }

    /// The traces the gate will lay out, for negative tests to tamper with (a wrong round
    /// value, a wrong output).
    pub fn traces_mut(&mut self) -> impl Iterator<Item = &mut PermutationTrace> {
        self.logged.iter_mut().map(|l| &mut l.trace)
    }

    /// Loads `value` instead of the digest word of permutation `n` when it is logged (tests).
    #[cfg(test)]
    pub(crate) fn forge_output(&mut self, n: usize, value: Fr) {
        self.forged = Some((n, value));
    }

    /// The sponge of [`crate::poseidon::hash`] over `inputs` (capacity word `2^64`, `RATE`
    /// words absorbed per permutation, a single 1 of padding), its permutations on the gate.
    /// Returns the digest's builder cell. Assumes nothing of `inputs`: any field elements.
    pub fn hash(
        &mut self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        inputs: &[AssignedValue<Fr>],
    ) -> AssignedValue<Fr> {
        let mut chunks: Vec<&[AssignedValue<Fr>]> = inputs.chunks(RATE).collect();
        if inputs.len().is_multiple_of(RATE) {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        // The state before the first absorption is constant; afterwards it is the previous
        // permutation's output cells.
        let mut state: Option<Vec<AssignedValue<Fr>>> = None;
        let mut digest = None;
        for (n, chunk) in chunks.into_iter().enumerate() {
            let input: [AssignedValue<Fr>; T] = std::array::from_fn(|i| {
                let absorbed = match i.checked_sub(1) {
                    Some(j) if j < chunk.len() => Some(QuantumCell::Existing(chunk[j])),
                    Some(j) if j == chunk.len() => Some(QuantumCell::Constant(Fr::ONE)),
                    _ => None,
                };
                match (&state, absorbed) {
                    (Some(s), None) => s[i],
                    (Some(s), Some(x)) => gate.add(ctx, s[i], x),
                    (None, None) if i == 0 => ctx.load_constant(Fr::from_u128(1 << 64)),
                    (None, None) => ctx.load_constant(Fr::ZERO),
                    (None, Some(QuantumCell::Existing(x))) => x,
                    (None, Some(x)) => ctx.load_constant(*x.value()),
                }
            });
            let trace = PermutationTrace::new(input.map(|c| *c.value()));
            #[allow(unused_mut)]
            let mut out = trace.output();
            #[cfg(test)]
            if let Some((_, value)) = self.forged.filter(|(at, _)| *at == self.logged.len()) {
                out[1] = value;
            }
            // The last permutation's digest is its word 1; a permutation feeding another hands
            // on its whole state.
            let used: Vec<usize> = if n == last { vec![1] } else { (0..T).collect() };
            let output: Vec<(usize, AssignedValue<Fr>)> = used
                .into_iter()
                .map(|i| (i, ctx.load_witness(out[i])))
                .collect();
            if n == last {
                digest = Some(output[0].1);
            } else {
                state = Some(output.iter().map(|(_, v)| *v).collect());
            }
            self.logged.push(Logged {
                trace,
                input,
                output,
            });
        }
        digest.expect("a sponge runs at least one permutation")
    }
}

/// halo2-base's builder plus, optionally, the permutation gate and the permutations to lay out
/// on it (see the module docs).
#[derive(Clone, Debug)]
pub struct GatedCircuit {
    /// The flex-gate builder holding the circuit's logic.
    pub builder: BaseCircuitBuilder<Fr>,
    /// The permutations the logic asked for.
    pub permutations: PermutationLog,
    permutation_gate: bool,
    /// Set once the copies into the gate are stated: key generation synthesizes twice
    /// (`keygen_vk`, `keygen_pk`) and the copy manager keeps the first synthesis's external
    /// cells, so stating the copies again would only repeat them in the permutation argument.
    linked: OnceLock<()>,
}

impl GatedCircuit {
    /// A circuit with the permutation gate around `builder` (logic to be added).
    pub fn with_permutation_gate(builder: BaseCircuitBuilder<Fr>) -> Self {
        GatedCircuit {
            builder,
            permutations: PermutationLog::default(),
            permutation_gate: true,
            linked: OnceLock::new(),
        }
    }

    /// A circuit without the permutation gate: halo2-base's builder alone.
    pub fn plain(builder: BaseCircuitBuilder<Fr>) -> Self {
        GatedCircuit {
            builder,
            permutations: PermutationLog::default(),
            permutation_gate: false,
            linked: OnceLock::new(),
        }
    }

    /// Rows the permutation gate occupies.
    pub fn permutation_rows(&self) -> usize {
        PermutationConfig::rows(self.permutations.len())
    }

    /// The public inputs the logic registered (instance column 0).
    pub fn instances(&self) -> Vec<Fr> {
        self.builder.assigned_instances[0]
            .iter()
            .map(|v| *v.value())
            .collect()
    }
}

impl Circuit<Fr> for GatedCircuit {
    type Config = GatedConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = GatedParams;

    fn params(&self) -> Self::Params {
        GatedParams {
            base: self.builder.config_params.clone(),
            permutation_gate: self.permutation_gate,
        }
    }

    fn without_witnesses(&self) -> Self {
        // Like halo2-base's builder: keys come from a builder laid out with a dummy witness.
        unimplemented!("GatedCircuit is built with a dummy witness for key generation")
    }

    fn configure_with_params(
        meta: &mut ConstraintSystem<Fr>,
        params: Self::Params,
    ) -> Self::Config {
        let mut base = BaseConfig::configure(meta, params.base.clone());
        let permutation = params.permutation_gate.then(|| {
            let p = PermutationConfig::configure(meta);
            // The gate's rotations may raise the blinding rows every column loses.
            base.set_usable_rows((1 << params.base.k) - meta.minimum_rows());
            p
        });
        GatedConfig { base, permutation }
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
        unreachable!("GatedCircuit is configured with its params")
    }

    fn synthesize(
        &self,
        config: Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        match &config.permutation {
            Some(gate) => {
                let traces: Vec<PermutationTrace> = self
                    .permutations
                    .logged
                    .iter()
                    .map(|l| l.trace.clone())
                    .collect();
                let cells = gate.assign(&mut layouter, &traces)?;
                // The prover's copy constraints are in its key: only key generation and the
                // MockProver need them stated.
                if !self.builder.witness_gen_only() && self.linked.set(()).is_ok() {
                    let mut copies = self.builder.core().copy_manager.lock().expect("unpoisoned");
                    for (logged, cells) in self.permutations.logged.iter().zip(&cells) {
                        let pairs = logged
                            .input
                            .iter()
                            .zip(cells.input)
                            .chain(logged.output.iter().map(|(i, v)| (v, cells.output[*i])));
                        for (value, cell) in pairs {
                            let external = copies.load_external_cell(cell);
                            let own = value.cell.expect("a keygen or mock builder tracks cells");
                            copies.advice_equalities.push((own, external));
                        }
                    }
                }
            }
            None => assert!(
                self.permutations.is_empty(),
                "permutations logged in a circuit without the permutation gate"
            ),
        }
        self.builder.synthesize(config.base, layouter)
    }
}

impl CircuitExt<Fr> for GatedCircuit {
    fn num_instance(&self) -> Vec<usize> {
        self.builder.num_instance()
    }

    fn instances(&self) -> Vec<Vec<Fr>> {
        CircuitExt::instances(&self.builder)
    }

    fn selectors(config: &Self::Config) -> Vec<Selector> {
        BaseCircuitBuilder::<Fr>::selectors(&config.base)
    }
}

#[cfg(test)]
mod tests {
    use halo2_base::gates::{circuit::CircuitBuilderStage, GateChip};
    use rand::rngs::OsRng;

    use super::*;
    use crate::{circuit::fast, keys::dev_params};

    /// A circuit hashing two witnesses (two absorptions: one permutation) and `extra` inputs
    /// more, exposing the digest.
    fn hashing(circuit: &mut GatedCircuit, inputs: &[u64]) {
        let gate = GateChip::default();
        let ctx = circuit.builder.main(0);
        let cells: Vec<_> = inputs
            .iter()
            .map(|&x| ctx.load_witness(Fr::from(x)))
            .collect();
        let digest = circuit.permutations.hash(ctx, &gate, &cells);
        circuit.builder.assigned_instances[0].push(digest);
    }

    /// Key generation synthesizes twice and the prover once more, without the copies: a real
    /// proof of a circuit on the gate verifies, and carries the native digest.
    #[test]
    fn a_real_proof_verifies() {
        let k = 9;
        for inputs in [vec![1, 2], vec![1, 2, 3, 4, 5, 6]] {
            let mut keygen = GatedCircuit::with_permutation_gate(
                BaseCircuitBuilder::from_stage(CircuitBuilderStage::Keygen)
                    .use_k(k)
                    .use_instance_columns(1),
            );
            hashing(&mut keygen, &vec![0; inputs.len()]);
            let base = keygen.builder.calculate_params(Some(20));
            let kzg = dev_params(k as u32);
            let pk = fast::keygen_circuit(&kzg, &keygen).unwrap();
            let mut prover = GatedCircuit::with_permutation_gate(BaseCircuitBuilder::prover(
                base,
                keygen.builder.break_points(),
            ));
            hashing(&mut prover, &inputs);
            let instances = prover.instances();
            let native: Vec<Fr> = inputs.iter().map(|&x| Fr::from(x)).collect();
            assert_eq!(instances, vec![crate::poseidon::hash(&native)]);
            let proof = fast::prove(&kzg, &pk, prover, &instances, OsRng).unwrap();
            assert!(fast::verify(&kzg, pk.get_vk(), &instances, &proof));
            assert!(!fast::verify(&kzg, pk.get_vk(), &[Fr::ONE], &proof));
        }
    }
}
