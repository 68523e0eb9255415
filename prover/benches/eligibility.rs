//! Proving time of the eligibility circuit, single patient and batches.
//!
//! `cargo bench -p zkcohort --bench eligibility` proves 1 patient (B = 1) and a full batch of
//! 4 (B = 4); set `ZKCOHORT_BENCH_BATCHES=1,4,32` for other batch sizes (each needs its own
//! params and keys, generated and cached under `.zkcohort/` before timing starts). Results are
//! recorded in docs/benchmarks.md.

// `criterion_group!` defines an undocumented public fn.
#![allow(missing_docs)]

use std::{path::Path, time::Duration};

use alloy::primitives::Address;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::Field};
use zkcohort::{
    credential::Credential,
    dataset::{Dataset, DatasetDir},
    eligibility::{self, Candidate},
    keys::{KeyStore, ParamsSource},
    membership::Identity,
    trial::TrialSpec,
};

fn batches() -> Vec<usize> {
    std::env::var("ZKCOHORT_BENCH_BATCHES")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("ZKCOHORT_BENCH_BATCHES: comma-separated batch sizes")
        })
        .collect()
}

fn prove(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let store = KeyStore::new(root.join(".zkcohort"), ParamsSource::Dev);
    let spec = TrialSpec::load(&root.join("examples/trial-t2d.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = DatasetDir::new(dir.path());
    data_dir
        .write_dataset(&Dataset::synthesize(2000, 1, 4))
        .unwrap();
    let identities: Vec<Identity> = (0..2000)
        .map(|_| Identity::generate(&mut rand::rngs::OsRng))
        .collect();
    let commitments: Vec<_> = identities
        .iter()
        .enumerate()
        .map(|(i, id)| (i, id.commitment()))
        .collect();
    data_dir
        .add_identities(&commitments, Default::default())
        .unwrap();
    let data = data_dir.commit(None).unwrap();
    let schema = &data.dataset.schema;
    let criteria = spec.compile(schema).unwrap();
    let registrant = Address::repeat_byte(0x11);
    let eligible: Vec<_> = (0..data.dataset.records.len())
        .filter(|&i| criteria.check(schema, &data.dataset.records[i]).is_ok())
        .take(64)
        .map(|i| {
            let credential = Credential::issue(&data, i, registrant).unwrap();
            (credential.open().unwrap(), identities[i])
        })
        .collect();
    let trial_id = eligibility::random_trial_id();

    let mut group = c.benchmark_group("prove_eligibility");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for batch in batches() {
        assert!(eligible.len() >= batch, "too few eligible patients");
        let (params, keys) = store.eligibility_circuit(schema, batch).unwrap();
        let candidates: Vec<Candidate<'_>> = eligible[..batch]
            .iter()
            .map(|(credential, identity)| Candidate {
                credential,
                identity,
                payout: Fr::ZERO,
            })
            .collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::new(&keys.config.circuit_id, batch),
            &batch,
            |b, _| {
                b.iter(|| eligibility::prove(&keys, &params, &spec, trial_id, &candidates).unwrap())
            },
        );
    }
    group.finish();
}

criterion_group!(benches, prove);
criterion_main!(benches);
