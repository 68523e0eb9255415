//! The trial eligibility circuit: up to `B` patients of one dataset meet a trial's criteria.
//!
//! One circuit per (schema, batch size `B`); trials are data (public inputs), so a new trial
//! needs no new keys or verifier.
//!
//! Public inputs, in order (see [`EligibilityPublic`]):
//!
//! | # | value |
//! |---|---|
//! | 0 | membership root of the dataset ([`crate::membership`]) |
//! | 1 | trial id |
//! | 2 | registrant: the address that registered the dataset (names the registration) |
//! | 3 .. 2V+2 | `lo_c, hi_c` for each of the V value columns |
//! | 2V+3 | consent purpose bit |
//! | 2V+4+2j, 2V+5+2j | nullifier and payout address of slot `j` (both 0 for an empty slot) |
//!
//! Constraints, per slot `j` with a private `enabled_j` bit: the record's fields are range
//! checked and packed as in the aggregate circuit ([`super::record`]); the patient's identity
//! `id = Poseidon(IDENTITY_DOMAIN, secret)` is computed from the patient's secret, and `leaf =
//! Poseidon(blind, packed, id)` is walked up the private path (index bits boolean) to a root;
//! `ok_j = present · consent[purpose] · Π_c [lo_c ≤ v_c ≤ hi_c] · [root = member_root]`;
//! `enabled_j ⇒ ok_j`; the public nullifier is `enabled_j · Poseidon(secret, trial_id)`. Across
//! slots, no two enabled nullifiers are equal (the same patient cannot fill two slots). The
//! payout address and the registrant are public inputs in no constraint: the transcript
//! absorbs them, so the proof binds them (a front-runner cannot redirect a patient's share,
//! nor re-point the proof at a copier's registration of the same root). Only the holder of
//! the patient's secret (never the custodian, who knows `blind` and `id` only) can prove.

use halo2_base::{
    gates::{GateInstructions, RangeInstructions},
    halo2_proofs::halo2curves::{bn256::Fr, ff::Field},
    AssignedValue,
};

use super::{
    gated::GatedCircuit,
    record::{self, one_hot},
};
use crate::{
    commitment::RecordLayout,
    membership::{IDENTITY_DOMAIN, MEMBER_DEPTH},
    schema::Schema,
    trial::TrialCriteria,
};

/// One patient slot of the private input.
#[derive(Clone, Debug)]
pub struct PatientSlot {
    /// Whether the slot holds a patient (empty slots prove nothing and reveal zeros).
    pub enabled: bool,
    /// `[present, column values...]`.
    pub slot: Vec<u64>,
    /// The leaf's blinding (the custodian's).
    pub blind: Fr,
    /// The patient's identity secret (the patient's alone).
    pub secret: Fr,
    /// Leaf index in the membership tree.
    pub index: usize,
    /// Siblings, bottom-up ([`MEMBER_DEPTH`] of them).
    pub path: Vec<Fr>,
    /// Payout address as a field element (0: none).
    pub payout: Fr,
}

impl PatientSlot {
    /// An empty slot of the right shape.
    pub fn empty(schema: &Schema) -> Self {
        PatientSlot {
            enabled: false,
            slot: vec![0; schema.columns.len() + 1],
            blind: Fr::ZERO,
            secret: Fr::ZERO,
            index: 0,
            path: vec![Fr::ZERO; MEMBER_DEPTH],
            payout: Fr::ZERO,
        }
    }

    /// A patient's slot from their record values, the leaf's blinding, the patient's secret
    /// and the path.
    pub fn patient(
        values: &[u64],
        blind: Fr,
        secret: Fr,
        index: usize,
        path: Vec<Fr>,
        payout: Fr,
    ) -> Self {
        PatientSlot {
            enabled: true,
            slot: std::iter::once(1).chain(values.iter().copied()).collect(),
            blind,
            secret,
            index,
            path,
            payout,
        }
    }
}

/// The private (and public) inputs of one eligibility proof.
#[derive(Clone, Debug)]
pub struct EligibilityWitness {
    /// Membership root (public).
    pub member_root: Fr,
    /// Trial id (public).
    pub trial_id: Fr,
    /// Registrant address as a field element (public).
    pub registrant: Fr,
    /// Trial criteria (public).
    pub criteria: TrialCriteria,
    /// Exactly `B` slots.
    pub slots: Vec<PatientSlot>,
}

impl EligibilityWitness {
    /// An all-empty witness (for key generation).
    pub fn dummy(schema: &Schema, batch: usize) -> Self {
        EligibilityWitness {
            member_root: Fr::ZERO,
            trial_id: Fr::ZERO,
            registrant: Fr::ZERO,
            criteria: TrialCriteria::dummy(schema),
            slots: vec![PatientSlot::empty(schema); batch],
        }
    }
}

/// Decoded public inputs of the eligibility circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EligibilityPublic {
    /// Membership root.
    pub member_root: Fr,
    /// Trial id.
    pub trial_id: Fr,
    /// Registrant address as a field element.
    pub registrant: Fr,
    /// Criteria.
    pub criteria: TrialCriteria,
    /// `(nullifier, payout)` per slot.
    pub slots: Vec<(Fr, Fr)>,
}

impl EligibilityPublic {
    /// Position of the membership root.
    pub const MEMBER_ROOT_AT: usize = 0;
    /// Position of the trial id.
    pub const TRIAL_ID_AT: usize = 1;
    /// Position of the registrant.
    pub const REGISTRANT_AT: usize = 2;
    /// Position of the first criterion (the criteria are `TrialCriteria::len_for` inputs).
    pub const CRITERIA_AT: usize = 3;

    /// In circuit order.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut v = vec![self.member_root, self.trial_id, self.registrant];
        v.extend(self.criteria.to_fields());
        for (n, p) in &self.slots {
            v.extend([*n, *p]);
        }
        v
    }

    /// Position of slot `j`'s nullifier (its payout follows).
    pub fn slot_at(schema: &Schema, j: usize) -> usize {
        Self::CRITERIA_AT + TrialCriteria::len_for(schema) + 2 * j
    }

    /// Number of public inputs for a schema and batch size.
    pub fn len_for(schema: &Schema, batch: usize) -> usize {
        Self::slot_at(schema, batch)
    }
}

/// Cells a test can tamper with, per slot.
#[derive(Clone, Debug, Default)]
pub struct EligibilityProbes {
    /// `ok_j`: the record matches and opens the root.
    pub ok: Vec<AssignedValue<Fr>>,
    /// The computed root of each slot's path.
    pub root: Vec<AssignedValue<Fr>>,
    /// The public nullifier of each slot.
    pub nullifier: Vec<AssignedValue<Fr>>,
}

/// Lays out the circuit for `witness.slots.len()` patients into `circuit` (its Poseidon
/// permutations on the permutation gate) and registers its public inputs. The layout depends
/// only on the schema and the batch size.
pub fn build(
    circuit: &mut GatedCircuit,
    schema: &Schema,
    witness: &EligibilityWitness,
) -> EligibilityProbes {
    let layout = RecordLayout::new(schema, 1);
    let range = circuit.builder.range_chip();
    let gate = range.gate();
    let hasher = &mut circuit.permutations;
    let ctx = circuit.builder.main(0);
    let mut probes = EligibilityProbes::default();

    let member_root = ctx.load_witness(witness.member_root);
    let trial_id = ctx.load_witness(witness.trial_id);
    let registrant = ctx.load_witness(witness.registrant);
    let identity_domain = ctx.load_constant(Fr::from(IDENTITY_DOMAIN));
    let c = &witness.criteria;
    let (ranges, purpose) =
        record::load_criteria(ctx, &range, &layout, schema, &c.ranges, c.purpose);
    let consent_col = schema.consent_index();
    let purpose_sel = one_hot(ctx, gate, purpose, layout.column_bits[consent_col] as usize);
    let criteria = record::Criteria {
        ranges,
        purpose_sel,
    };

    let mut slots_out = Vec::with_capacity(witness.slots.len());
    let mut enabled_bits = Vec::with_capacity(witness.slots.len());
    for p in &witness.slots {
        assert_eq!(p.path.len(), MEMBER_DEPTH, "path of the wrong depth");
        let rec = record::load(ctx, &range, &layout, consent_col, &p.slot, 0);
        let m = record::matches(ctx, &range, &layout, schema, &rec, &criteria);
        let (cells, coeffs): (Vec<_>, Vec<_>) = rec.terms.iter().copied().unzip();
        let packed = gate.inner_product(
            ctx,
            cells,
            coeffs.into_iter().map(halo2_base::QuantumCell::Constant),
        );
        let secret = ctx.load_witness(p.secret);
        let blind = ctx.load_witness(p.blind);
        let identity = hasher.hash(ctx, gate, &[identity_domain, secret]);
        let mut node = hasher.hash(ctx, gate, &[blind, packed, identity]);
        for (level, sibling) in p.path.iter().enumerate() {
            let bit = ctx.load_witness(Fr::from((p.index >> level & 1) as u64));
            gate.assert_bit(ctx, bit);
            let sibling = ctx.load_witness(*sibling);
            let left = gate.select(ctx, sibling, node, bit);
            let right = gate.select(ctx, node, sibling, bit);
            node = hasher.hash(ctx, gate, &[left, right]);
        }
        let root_ok = gate.is_equal(ctx, node, member_root);
        let ok = gate.mul(ctx, m.matched, root_ok);
        let enabled = ctx.load_witness(Fr::from(p.enabled as u64));
        gate.assert_bit(ctx, enabled);
        // enabled ⇒ ok
        let violation = gate.mul_not(ctx, ok, enabled);
        gate.assert_is_const(ctx, &violation, &Fr::ZERO);
        let nullifier = hasher.hash(ctx, gate, &[secret, trial_id]);
        let nullifier = gate.mul(ctx, enabled, nullifier);
        let payout = ctx.load_witness(p.payout);
        probes.ok.push(ok);
        probes.root.push(node);
        probes.nullifier.push(nullifier);
        enabled_bits.push(enabled);
        slots_out.push((nullifier, payout));
    }

    // One patient, one slot: enabled nullifiers are pairwise distinct.
    for i in 0..slots_out.len() {
        for j in i + 1..slots_out.len() {
            let same = gate.is_equal(ctx, slots_out[i].0, slots_out[j].0);
            let duplicate = gate.mul(ctx, same, enabled_bits[i]);
            gate.assert_is_const(ctx, &duplicate, &Fr::ZERO);
        }
    }

    let mut public = vec![member_root, trial_id, registrant];
    for (lo, hi) in criteria.ranges {
        public.extend([lo, hi]);
    }
    public.push(purpose);
    for (n, p) in slots_out {
        public.extend([n, p]);
    }
    circuit.builder.assigned_instances[0].extend(public);
    probes
}
