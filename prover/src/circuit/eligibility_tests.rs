//! MockProver tests of the eligibility circuit: honest patients prove, and each way a cheating
//! prover could lie (record outside the commitment, failed criterion, no consent, wrong or
//! foreign nullifier, duplicate patient, forged match flag, redirected payout, another
//! registrant, a custodian without the patient's secret) is rejected.

use halo2_base::halo2_proofs::{dev::MockProver, halo2curves::bn256::Fr};

use super::{
    eligibility::{build, EligibilityProbes, EligibilityPublic, EligibilityWitness, PatientSlot},
    gated::GatedCircuit,
    permutation::{PermutationTrace, ROWS_PER_PERMUTATION, WIDTH},
    tests::set_cell,
};
use crate::{
    commitment::RecordLayout,
    dataset::Dataset,
    icd10,
    keys::{keygen_builder, CircuitConfig, MIN_ROWS},
    membership::{identity_commitment, leaf_blind, nullifier, MemberTree},
    schema::Schema,
    trial::{TrialCriteria, TrialSpec},
};

const BATCH: usize = 2;
/// The registrant the tests' proofs name.
const REGISTRANT: u64 = 0x5EED;

/// Patient `i`'s identity secret (the patient's alone; the custodian knows its commitment).
fn secret_of(i: usize) -> Fr {
    Fr::from(0x5EC_0000 + i as u64)
}

struct Case {
    schema: Schema,
    k: usize,
    salt: Fr,
    records: Vec<Vec<u64>>,
    tree: MemberTree,
    criteria: TrialCriteria,
    trial_id: Fr,
}

/// Indices of hand-made records: two eligible, one with the wrong diagnosis, one without
/// consent to trials.
const ELIGIBLE_A: usize = 20;
const ELIGIBLE_B: usize = 21;
const WRONG_DX: usize = 22;
const NO_CONSENT: usize = 23;

impl Case {
    fn new() -> Self {
        let schema = Schema::clinical_default();
        let mut records = Dataset::synthesize(20, 9, 2).records;
        let e11 = icd10::encode("E11.9").unwrap();
        let i10 = icd10::encode("I10").unwrap();
        records.push(vec![50, 0, e11, 80, 130, 300, 0b0010, 1]);
        records.push(vec![66, 1, e11, 92, 150, 310, 0b1111, 0]);
        records.push(vec![55, 0, i10, 85, 140, 280, 0b0010, 1]);
        records.push(vec![60, 0, e11, 88, 135, 290, 0b0001, 1]);
        let spec: TrialSpec = serde_json::from_value(serde_json::json!({
            "criteria": {"age": [40, 75], "dx": {"prefix": "E11"}, "hba1c": {"min": "7.0"}},
            "consent": "trials"
        }))
        .unwrap();
        let criteria = spec.compile(&schema).unwrap();
        let salt = Fr::from(0xBEEF);
        let layout = RecordLayout::new(&schema, 1);
        let identities: Vec<Fr> = (0..records.len())
            .map(|i| identity_commitment(secret_of(i)))
            .collect();
        let tree = MemberTree::build(&layout, salt, &records, &identities);
        let k = CircuitConfig::plan_eligibility(&schema, BATCH).params.k;
        Case {
            schema,
            k,
            salt,
            records,
            tree,
            criteria,
            trial_id: Fr::from(2).pow_vartime([200]),
        }
    }

    fn patient(&self, i: usize) -> PatientSlot {
        PatientSlot::patient(
            &self.records[i],
            leaf_blind(self.salt, i),
            secret_of(i),
            i,
            self.tree.path(i),
            Fr::from(0xAB0 + i as u64),
        )
    }

    fn witness(&self, patients: &[usize]) -> EligibilityWitness {
        let mut slots: Vec<PatientSlot> = patients.iter().map(|&i| self.patient(i)).collect();
        slots.resize(BATCH, PatientSlot::empty(&self.schema));
        EligibilityWitness {
            member_root: self.tree.root(),
            trial_id: self.trial_id,
            registrant: REGISTRANT.into(),
            criteria: self.criteria.clone(),
            slots,
        }
    }

    /// The public inputs an honest prover of `witness` reveals.
    fn expected(&self, witness: &EligibilityWitness) -> Vec<Fr> {
        EligibilityPublic {
            member_root: self.tree.root(),
            trial_id: self.trial_id,
            registrant: REGISTRANT.into(),
            criteria: self.criteria.clone(),
            slots: witness
                .slots
                .iter()
                .map(|s| match s.enabled {
                    true => (nullifier(s.secret, self.trial_id), s.payout),
                    false => (Fr::ZERO, Fr::ZERO),
                })
                .collect(),
        }
        .to_fields()
    }

    fn run(
        &self,
        witness: &EligibilityWitness,
        tamper: impl FnOnce(&mut GatedCircuit, &EligibilityProbes),
        instances: Vec<Fr>,
    ) -> Result<(), String> {
        self.run_with(witness, |_| {}, tamper, instances)
    }

    /// [`Case::run`], with `before` applied to the empty circuit (e.g. to forge a
    /// permutation's output as the logic loads it).
    fn run_with(
        &self,
        witness: &EligibilityWitness,
        before: impl FnOnce(&mut GatedCircuit),
        tamper: impl FnOnce(&mut GatedCircuit, &EligibilityProbes),
        instances: Vec<Fr>,
    ) -> Result<(), String> {
        let mut circuit = GatedCircuit::with_permutation_gate(keygen_builder(self.k));
        before(&mut circuit);
        let probes = build(&mut circuit, &self.schema, witness);
        tamper(&mut circuit, &probes);
        circuit.builder.calculate_params(Some(MIN_ROWS));
        let prover = MockProver::run(self.k as u32, &circuit, vec![instances]).unwrap();
        prover
            .verify()
            .map_err(|failures| format!("{} failures, first: {}", failures.len(), failures[0]))
    }

    /// The witness with its honest public inputs.
    fn check(&self, witness: &EligibilityWitness) -> Result<(), String> {
        self.run(witness, |_, _| {}, self.expected(witness))
    }
}

use halo2_base::halo2_proofs::halo2curves::ff::Field;

/// Index of slot `j`'s nullifier among the public inputs.
fn nullifier_at(schema: &Schema, j: usize) -> usize {
    EligibilityPublic::slot_at(schema, j)
}

#[test]
fn honest_patients_prove_alone_and_in_a_batch() {
    let case = Case::new();
    assert_eq!(
        case.criteria.check(&case.schema, &case.records[ELIGIBLE_A]),
        Ok(())
    );
    case.check(&case.witness(&[ELIGIBLE_A])).unwrap();
    case.check(&case.witness(&[ELIGIBLE_A, ELIGIBLE_B]))
        .unwrap();
}

#[test]
fn rejects_record_not_in_the_commitment() {
    let case = Case::new();
    let mut w = case.witness(&[ELIGIBLE_A]);
    w.slots[0].slot[1] = 51; // a different age: the leaf no longer opens the root
    assert!(case.check(&w).is_err());
    let mut w = case.witness(&[ELIGIBLE_A]);
    w.slots[0].index ^= 1; // the right record at the wrong position
    assert!(case.check(&w).is_err());
    let mut w = case.witness(&[ELIGIBLE_A]);
    w.slots[0].secret = secret_of(ELIGIBLE_B); // someone else's secret
    assert!(case.check(&w).is_err());
    let mut w = case.witness(&[ELIGIBLE_A]);
    w.slots[0].blind = leaf_blind(case.salt, ELIGIBLE_B); // someone else's blinding
    assert!(case.check(&w).is_err());
}

/// The custodian knows the record, the salt (so the leaf's blinding), the path and the
/// identity commitment, but not the patient's secret: its best candidates for the secret (the
/// pre-identity derivation from the salt, the commitment itself) do not open the leaf, so it
/// cannot enrol the patient ahead of them or choose their payout.
#[test]
fn a_custodian_without_the_patients_secret_cannot_prove() {
    let case = Case::new();
    let custodian_guesses = [
        crate::poseidon::hash(&[
            case.salt,
            Fr::from(crate::membership::BLIND_DOMAIN),
            Fr::from(ELIGIBLE_A as u64),
        ]),
        identity_commitment(secret_of(ELIGIBLE_A)),
        leaf_blind(case.salt, ELIGIBLE_A),
        Fr::ZERO,
    ];
    for guess in custodian_guesses {
        let mut w = case.witness(&[ELIGIBLE_A]);
        w.slots[0].secret = guess;
        assert!(case.check(&w).is_err(), "a guessed secret proved");
    }
}

#[test]
fn binds_the_registrant() {
    let case = Case::new();
    let w = case.witness(&[ELIGIBLE_A]);
    let mut copier = case.expected(&w);
    copier[EligibilityPublic::REGISTRANT_AT] = Fr::from(0xC0FFEE);
    assert!(case.run(&w, |_, _| {}, copier).is_err());
}

#[test]
fn rejects_a_failed_criterion() {
    let case = Case::new();
    assert!(case
        .criteria
        .check(&case.schema, &case.records[WRONG_DX])
        .is_err());
    assert!(case.check(&case.witness(&[WRONG_DX])).is_err());
}

#[test]
fn rejects_missing_consent() {
    let case = Case::new();
    assert!(case.check(&case.witness(&[NO_CONSENT])).is_err());
    // ... also when the prover claims the consent mask has the trials bit (the leaf breaks).
    let mut w = case.witness(&[NO_CONSENT]);
    w.slots[0].slot[7] |= 0b0010;
    assert!(case.check(&w).is_err());
}

#[test]
fn rejects_a_forged_match_flag() {
    let case = Case::new();
    let w = case.witness(&[WRONG_DX]);
    let result = case.run(
        &w,
        |c, p| set_cell(&mut c.builder, &p.ok[0], 1),
        case.expected(&w),
    );
    assert!(result.is_err());
}

#[test]
fn rejects_wrong_or_foreign_nullifiers() {
    let case = Case::new();
    let w = case.witness(&[ELIGIBLE_A]);
    let at = nullifier_at(&case.schema, 0);
    let mut wrong = case.expected(&w);
    wrong[at] += Fr::ONE;
    assert!(case.run(&w, |_, _| {}, wrong).is_err());
    // The nullifier this patient would reveal in another trial.
    let mut foreign = case.expected(&w);
    foreign[at] = nullifier(secret_of(ELIGIBLE_A), Fr::from(12345));
    assert!(case.run(&w, |_, _| {}, foreign).is_err());
    // An empty slot cannot reveal a nullifier.
    let mut filled = case.expected(&w);
    filled[nullifier_at(&case.schema, 1)] = nullifier(secret_of(ELIGIBLE_B), case.trial_id);
    assert!(case.run(&w, |_, _| {}, filled).is_err());
}

#[test]
fn rejects_a_batch_with_a_duplicate_patient() {
    let case = Case::new();
    let w = case.witness(&[ELIGIBLE_A, ELIGIBLE_A]);
    let err = case.check(&w).unwrap_err();
    assert!(!err.is_empty());
}

#[test]
fn binds_the_payout_address() {
    let case = Case::new();
    let w = case.witness(&[ELIGIBLE_A]);
    let mut redirected = case.expected(&w);
    redirected[nullifier_at(&case.schema, 0) + 1] = Fr::from(0xBAD);
    assert!(case.run(&w, |_, _| {}, redirected).is_err());
}

#[test]
fn rejects_a_value_outside_its_declared_width() {
    let case = Case::new();
    let mut w = case.witness(&[ELIGIBLE_A]);
    w.slots[0].slot[1] += 1 << 7; // age is 7 bits wide
    assert!(case.check(&w).is_err());
}

/// Keeps the cost model of docs/circuits.md true: the marginal cost of a patient slot
/// (measured between batches of 1 and 2, so fixed costs cancel) is its 24 Poseidon
/// permutations on the permutation gate (identity, the 3-input leaf's two (the sponge pads a
/// full rate block), 20 path levels, nullifier) and ~1,000 flex-gate cells for the record, the
/// criteria, the path's selections and the permutations' input and output words.
#[test]
fn cost_model_matches_docs() {
    let schema = Schema::clinical_default();
    let cells = |batch: usize| {
        let mut circuit = GatedCircuit::with_permutation_gate(keygen_builder(14));
        build(
            &mut circuit,
            &schema,
            &EligibilityWitness::dummy(&schema, batch),
        );
        let stats = circuit.builder.statistics();
        (
            stats.gate.total_advice_per_phase[0],
            stats.total_lookup_advice_per_phase[0],
            circuit.permutations.len(),
        )
    };
    let ((a1, l1, p1), (a2, l2, p2)) = (cells(1), cells(2));
    let (advice, lookups, permutations) = (a2 - a1, l2 - l1, p2 - p1);
    println!(
        "per patient: {permutations} permutations, {advice} advice cells, {lookups} lookup cells; fixed ≈ {}",
        a1 - advice
    );
    assert_eq!(permutations, 24, "permutations per patient");
    assert!(
        (900..=1_600).contains(&advice),
        "{advice} advice cells per patient"
    );
    assert!(
        (20..=60).contains(&lookups),
        "{lookups} lookup cells per patient"
    );
}

/// The permutation gate is sound where the eligibility circuit uses it: a wrong round value in
/// any permutation's trace, a trace of other inputs (the gate holds, the copies into it do
/// not), or a forged output word in the builder (a path that "reaches" the root) is refused.
#[test]
fn permutations_are_pinned_to_the_gate() {
    let case = Case::new();
    let w = case.witness(&[ELIGIBLE_A]);
    assert_eq!(case.check(&w), Ok(()));
    let permutations = {
        let mut c = GatedCircuit::with_permutation_gate(keygen_builder(case.k));
        build(&mut c, &case.schema, &w);
        c.permutations.len()
    };
    for n in [0, 3, permutations - 1] {
        // A full round's squares, a partial round's state and its square, the output.
        for (row, word) in [
            (1, 2),
            (20, 2),
            (20, WIDTH - 1),
            (ROWS_PER_PERMUTATION - 1, 2),
        ] {
            let result = case.run(
                &w,
                |c, _| {
                    let trace = c.permutations.traces_mut().nth(n).unwrap();
                    trace.rows_mut()[row][word] += Fr::ONE;
                },
                case.expected(&w),
            );
            assert!(
                result.is_err(),
                "permutation {n}, row {row}, word {word} tampered"
            );
        }
    }
    // Permutation 1 is the leaf's first: its trace replaced by a valid one of other inputs.
    let result = case.run(
        &w,
        |c, _| {
            let trace = c.permutations.traces_mut().nth(1).unwrap();
            let mut input = trace.input();
            input[1] += Fr::ONE;
            *trace = PermutationTrace::new(input);
        },
        case.expected(&w),
    );
    assert!(result.is_err(), "a trace of other inputs");
    // A path with a wrong sibling, whose last level's digest (permutation 22: identity 0, leaf
    // 1–2, levels 3–22) the prover loads as the member root, everything after it consistent:
    // only the copy from the gate's output catches it.
    let mut other = w.clone();
    other.slots[0].path[0] += Fr::ONE;
    let root = case.tree.root();
    let forge = |c: &mut GatedCircuit| c.permutations.forge_output(22, root);
    let result = case.run_with(&other, forge, |_, _| {}, case.expected(&other));
    assert!(result.is_err(), "a forged output word");
}
