//! MockProver tests: the honest witness satisfies the circuit with the native answer as public
//! inputs, and each way a cheating prover could lie is rejected.

use halo2_base::{
    gates::circuit::builder::BaseCircuitBuilder,
    halo2_proofs::{dev::MockProver, halo2curves::bn256::Fr, plonk::Assigned},
    AssignedValue,
};

use super::{build, AggregateWitness, Probes, PublicInputs};
use crate::{
    commitment::{commit, RecordLayout},
    dataset::Dataset,
    icd10,
    keys::{keygen_builder, CircuitConfig, MIN_ROWS},
    poseidon,
    query::{evaluate, QueryConstants, QuerySpec},
    schema::Schema,
};

struct Case {
    schema: Schema,
    layout: RecordLayout,
    k: usize,
    salt: Fr,
    records: Vec<Vec<u64>>,
    query: QueryConstants,
}

impl Case {
    /// 16 synthetic records plus hand-made ones with known properties, capacity 24.
    fn new(min_cohort: u64) -> Self {
        let schema = Schema::clinical_default();
        let mut records = Dataset::synthesize(16, 42, 3).records;
        let e11 = icd10::encode("E11.9").unwrap();
        // Three matching, consenting records; one matching but not consenting (consent 0b10);
        // one consenting but aged 70.
        records.push(vec![50, 0, e11, 71, 130, 300, 0b0001, 1]);
        records.push(vec![55, 1, e11, 82, 140, 320, 0b1111, 2]);
        records.push(vec![61, 0, e11, 66, 125, 280, 0b0101, 0]);
        records.push(vec![58, 0, e11, 90, 150, 350, 0b0010, 0]);
        let layout = RecordLayout::new(&schema, records.len());
        let spec: QuerySpec = serde_json::from_value(serde_json::json!({
            "criteria": {"age": [40, 65], "dx": {"prefix": "E11"}},
            "consent": "research", "statistic": "hba1c", "min_cohort": min_cohort
        }))
        .unwrap();
        let query = spec.compile(&schema).unwrap();
        let k = CircuitConfig::plan(&schema, &layout).params.k;
        Case {
            schema,
            layout,
            k,
            salt: Fr::from(0xC0FFEE),
            records,
            query,
        }
    }

    fn witness(&self) -> AggregateWitness {
        AggregateWitness::new(
            &self.layout,
            self.salt,
            &self.records,
            self.query.clone(),
            CONTEXT,
        )
    }

    /// What an honest verifier expects: the native commitment and native answer.
    fn expected(&self) -> Vec<Fr> {
        PublicInputs {
            commitment: commit(self.salt, &self.layout.pack(&self.records)),
            query: self.query.clone(),
            context: CONTEXT,
            result: evaluate(&self.schema, &self.records, &self.query),
        }
        .to_fields()
    }

    /// Runs the MockProver on `witness` (after `tamper` edits cells) against `instances`.
    fn run(
        &self,
        witness: &AggregateWitness,
        tamper: impl FnOnce(&mut BaseCircuitBuilder<Fr>, &Probes),
        instances: Vec<Fr>,
    ) -> Result<(), String> {
        let mut builder = keygen_builder(self.k);
        let probes = build(&mut builder, &self.schema, &self.layout, witness);
        tamper(&mut builder, &probes);
        builder.calculate_params(Some(MIN_ROWS));
        let prover = MockProver::run(self.k as u32, &builder, vec![instances]).unwrap();
        prover
            .verify()
            .map_err(|failures| format!("{} failures, first: {}", failures.len(), failures[0]))
    }

    fn honest(&self) -> Result<(), String> {
        self.run(&self.witness(), |_, _| {}, self.expected())
    }

    fn with_instance(&self, index_from_end: usize, value: Fr) -> Result<(), String> {
        let mut inst = self.expected();
        let i = inst.len() - index_from_end;
        inst[i] = value;
        self.run(&self.witness(), |_, _| {}, inst)
    }

    fn slot_where(&self, pred: impl Fn(&[u64]) -> bool) -> usize {
        self.records
            .iter()
            .position(|r| pred(r))
            .expect("a record like that exists")
    }
}

/// A claim context (any field element: the circuit only carries it to the transcript).
const CONTEXT: Fr = Fr::from_raw([0x5eed, 0, 0, 1]);

/// Overwrites the value of an assigned cell, as a prover controlling the witness could.
pub(super) fn set_cell(builder: &mut BaseCircuitBuilder<Fr>, cell: &AssignedValue<Fr>, value: u64) {
    let offset = cell.cell.expect("keygen-mode cells are tracked").offset;
    builder.main(0).advice[offset] = Assigned::Trivial(Fr::from(value));
}

// Instance positions counted from the end: suppressed=1, sum_squares=2, sum=3, count=4, records=5,
// context=6.
const CONTEXT_AT: usize = 6;
const COUNT: usize = 4;
const SUM: usize = 3;
const SUM_SQUARES: usize = 2;
const SUPPRESSED: usize = 1;

#[test]
fn native_poseidon_matches_in_circuit_hasher() {
    use halo2_base::{
        gates::RangeInstructions,
        poseidon::hasher::{spec::OptimizedPoseidonSpec, PoseidonHasher},
        utils::testing::base_test,
    };
    for len in 0..8usize {
        let inputs: Vec<Fr> = (0..len as u64).map(|i| Fr::from(i * 7919 + 1)).collect();
        let native = poseidon::hash(&inputs);
        let in_circuit = base_test().k(12).run(|ctx, range| {
            let mut hasher = PoseidonHasher::<Fr, { poseidon::T }, { poseidon::RATE }>::new(
                OptimizedPoseidonSpec::new::<{ poseidon::R_F }, { poseidon::R_P }, 0>(),
            );
            hasher.initialize_consts(ctx, range.gate());
            let cells = ctx.assign_witnesses(inputs.clone());
            *hasher.hash_fix_len_array(ctx, range.gate(), &cells).value()
        });
        assert_eq!(native, in_circuit, "length {len}");
    }
}

#[test]
fn honest_witness_proves_the_native_answer() {
    let case = Case::new(2);
    let truth = evaluate(&case.schema, &case.records, &case.query);
    assert!(truth.count >= 3 && !truth.suppressed, "{truth:?}");
    case.honest().unwrap();
}

#[test]
fn honest_suppressed_and_empty_cohorts() {
    let case = Case::new(1000);
    assert!(evaluate(&case.schema, &case.records, &case.query).suppressed);
    case.honest().unwrap();
    let mut empty = Case::new(2);
    empty.query.ranges[0] = (0, 1); // nobody is aged 0–1
    assert_eq!(
        evaluate(&empty.schema, &empty.records, &empty.query).count,
        0
    );
    empty.honest().unwrap();
}

#[test]
fn rejects_wrong_count() {
    let case = Case::new(2);
    let count = evaluate(&case.schema, &case.records, &case.query).count;
    assert!(case.with_instance(COUNT, Fr::from(count + 1)).is_err());
}

#[test]
fn rejects_wrong_sum() {
    let case = Case::new(2);
    let inst = case.expected();
    assert!(case
        .with_instance(SUM, inst[inst.len() - SUM] + Fr::from(1))
        .is_err());
}

#[test]
fn rejects_wrong_sum_of_squares() {
    let case = Case::new(2);
    assert!(case.with_instance(SUM_SQUARES, Fr::from(0)).is_err());
}

#[test]
fn rejects_wrong_record_count() {
    let case = Case::new(2);
    assert!(case
        .with_instance(5, Fr::from(case.records.len() as u64 - 1))
        .is_err());
}

/// The context instance is the witness's (a copy constraint); what binds a real proof to its
/// context is the transcript (`end_to_end`'s `a_proof_verifies_under_its_own_context_only`).
#[test]
fn rejects_a_context_other_than_the_witness_one() {
    let case = Case::new(2);
    assert!(case.with_instance(CONTEXT_AT, Fr::from(0)).is_err());
    assert!(case.with_instance(CONTEXT_AT, CONTEXT + Fr::one()).is_err());
}

#[test]
fn rejects_record_outside_the_commitment() {
    let case = Case::new(2);
    // Prove over data with one more matching record while claiming the committed dataset.
    let mut forged = Case::new(2);
    forged.records[16][0] = 45;
    forged.records[19][6] = 0b0001;
    let mut inst = forged.expected();
    inst[0] = case.expected()[0];
    assert!(case.run(&forged.witness(), |_, _| {}, inst).is_err());
}

#[test]
fn rejects_wrong_salt() {
    let case = Case::new(2);
    let mut w = case.witness();
    w.salt = Fr::from(1);
    assert!(case.run(&w, |_, _| {}, case.expected()).is_err());
}

#[test]
fn rejects_value_outside_declared_width() {
    // age + 2^7 with sex - 1 packs to the same field element, so the commitment still matches:
    // only the range check on the declared width can catch it.
    let case = Case::new(2);
    let i = case.slot_where(|r| r[1] == 1);
    let mut w = case.witness();
    w.slots[i][1] += 1 << 7;
    w.slots[i][2] -= 1;
    assert_eq!(case.layout.pack(&case.records), {
        let mut packed = case.records.clone();
        packed[i][0] += 1 << 7;
        packed[i][1] -= 1;
        case.layout.pack(&packed)
    });
    assert!(case.run(&w, |_, _| {}, case.expected()).is_err());
}

#[test]
fn rejects_predicate_bypass() {
    let case = Case::new(2);
    let too_old = case.slot_where(|r| r[0] > 65 && r[6] & 1 == 1);
    let not_e11 = case.slot_where(|r| {
        (40..=65).contains(&r[0]) && r[6] & 1 == 1 && !icd10::decode(r[2]).starts_with("E11")
    });
    for slot in [too_old, not_e11] {
        assert!(case
            .run(
                &case.witness(),
                |b, p| set_cell(b, &p.matched[slot], 1),
                case.expected()
            )
            .is_err());
    }
}

#[test]
fn rejects_consent_bypass() {
    let case = Case::new(2);
    let no_consent = case.slot_where(|r| r[0] == 58 && r[6] == 0b0010);
    assert!(case
        .run(
            &case.witness(),
            |b, p| set_cell(b, &p.consent[no_consent], 1),
            case.expected()
        )
        .is_err());
    // A purpose index past the consent mask would select nothing: the one-hot check refuses it.
    let mut w = case.witness();
    w.query.purpose = 4;
    let mut inst = case.expected();
    inst[1 + 2 * 7] = Fr::from(4);
    assert!(case.run(&w, |_, _| {}, inst).is_err());
}

#[test]
fn rejects_suppression_bypass() {
    let case = Case::new(1000);
    let mut unsuppressed = case.expected();
    let n = unsuppressed.len();
    let raw = evaluate(
        &case.schema,
        &case.records,
        &QueryConstants {
            min_cohort: 1,
            ..case.query.clone()
        },
    );
    unsuppressed[n - COUNT] = Fr::from(raw.count);
    unsuppressed[n - SUPPRESSED] = Fr::from(0);
    assert!(case.run(&case.witness(), |_, _| {}, unsuppressed).is_err());
    assert!(case
        .run(
            &case.witness(),
            |b, p| set_cell(b, p.suppressed.as_ref().unwrap(), 0),
            case.expected()
        )
        .is_err());
}

#[test]
fn rejects_padding_slot_counted() {
    let case = Case::new(2);
    let padding = case.records.len();
    assert!(padding < case.layout.capacity);
    // Turning a padding slot into a matching record changes the committed data...
    let mut w = case.witness();
    w.slots[padding] = vec![
        1,
        50,
        0,
        icd10::encode("E11.9").unwrap(),
        70,
        120,
        300,
        1,
        0,
    ];
    assert!(case.run(&w, |_, _| {}, case.expected()).is_err());
    // ...and forcing its match flag is caught by the predicate constraints.
    assert!(case
        .run(
            &case.witness(),
            |b, p| set_cell(b, &p.matched[padding], 1),
            case.expected()
        )
        .is_err());
}

#[test]
fn rejects_query_constant_outside_column_width() {
    let case = Case::new(2);
    let mut w = case.witness();
    w.query.ranges[0] = (40, 128); // age is 7 bits: 128 would make comparisons unsound
    let mut inst = case.expected();
    inst[2] = Fr::from(128);
    assert!(case.run(&w, |_, _| {}, inst).is_err());
}

#[test]
fn rejects_results_of_another_query() {
    let case = Case::new(2);
    let mut other = case.query.clone();
    other.statistic = 4; // sbp instead of hba1c
    let mut inst = case.expected();
    let n = inst.len();
    let r = evaluate(&case.schema, &case.records, &other);
    inst.splice(n - 5.., r.to_fields());
    assert_ne!(inst, case.expected());
    assert!(case.run(&case.witness(), |_, _| {}, inst).is_err());
}

/// Keeps the cost model of docs/circuits.md true: the marginal cost of a record (measured
/// between capacities 24 and 48, so fixed costs cancel) is ~1,000 advice and ~50 lookup cells.
#[test]
fn cost_model_matches_docs() {
    let schema = Schema::clinical_default();
    let cells = |capacity: usize| {
        let layout = RecordLayout::new(&schema, capacity);
        let mut builder = keygen_builder(16);
        build(
            &mut builder,
            &schema,
            &layout,
            &AggregateWitness::dummy(&schema, &layout),
        );
        let stats = builder.statistics();
        (
            stats.gate.total_advice_per_phase[0],
            stats.total_lookup_advice_per_phase[0],
        )
    };
    let ((a24, l24), (a48, l48)) = (cells(24), cells(48));
    let (advice, lookups) = ((a48 - a24) / 24, (l48 - l24) / 24);
    println!(
        "per record: {advice} advice cells, {lookups} lookup cells; fixed ≈ {}",
        a24 - 24 * advice
    );
    assert!(
        (900..=1_150).contains(&advice),
        "{advice} advice cells per record"
    );
    assert!(
        (30..=70).contains(&lookups),
        "{lookups} lookup cells per record"
    );
}
