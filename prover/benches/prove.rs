//! Proving throughput of the aggregate circuit.
//!
//! `cargo bench -p zkcohort --bench prove` proves 1,000 synthetic records; set
//! `ZKCOHORT_BENCH_SIZES=1000,4000,16000` for more sizes (each size needs its own params and
//! keys, generated and cached under `.zkcohort/` before timing starts). Results and the
//! machine they came from are recorded in docs/benchmarks.md.

// `criterion_group!` defines an undocumented public fn.
#![allow(missing_docs)]

use std::{path::Path, time::Duration};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zkcohort::{
    dataset::{Dataset, DatasetDir},
    keys::{KeyStore, ParamsSource},
    proof,
    query::QuerySpec,
};

fn sizes() -> Vec<usize> {
    std::env::var("ZKCOHORT_BENCH_SIZES")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("ZKCOHORT_BENCH_SIZES: comma-separated record counts")
        })
        .collect()
}

fn prove(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let store = KeyStore::new(root.join(".zkcohort"), ParamsSource::Dev);
    let query = QuerySpec::load(&root.join("examples/query-e11-hba1c.json")).unwrap();
    let mut group = c.benchmark_group("prove_aggregate");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for n in sizes() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DatasetDir::new(dir.path());
        data_dir
            .write_dataset(&Dataset::synthesize(n, 1, 4))
            .unwrap();
        let data = data_dir.commit(Some(n)).unwrap();
        let (params, keys) = store.circuit(&data.dataset.schema, &data.layout).unwrap();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new(&keys.config.circuit_id, n), &n, |b, _| {
            b.iter(|| proof::prove(&keys, &params, &data, &query, None).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, prove);
criterion_main!(benches);
