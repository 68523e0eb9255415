//! Proving throughput of the fast aggregate circuit N(W) (`zkcohort::circuit::fast`, issue #8).
//!
//! `cargo bench -p zkcohort --bench fast` proves 1,000 and 10,000 synthetic records (sizes via
//! `ZKCOHORT_FAST_SIZES=1000,10000`) with N(W), `W` from `ZKCOHORT_FAST_SLOTS` (default 2) and
//! the statistic fields from `ZKCOHORT_FAST_STATS` (default `3`: HbA1c), real KZG + SHPLONK +
//! EVM transcript, dev params from the crate's cache under `.zkcohort/`; key generation happens
//! before timing. (The earlier spikes B1 and B′ were deleted; their numbers in
//! docs/benchmarks.md came from commit bd681bb's version of this bench.) Each timed
//! iteration builds the witness and proves; a proof is verified once outside the loop.
//!
//! One-shot mode, for `/usr/bin/time -v` on the bench binary: `ZKCOHORT_FAST_ONESHOT=N` runs
//! once and skips criterion. With `ZKCOHORT_FAST_PHASE=keygen` it only generates (and writes)
//! the proving key under `.zkcohort/fast/`; with `prove` it reads that key and proves once, so
//! the two phases' peak memory can be measured apart; unset does both. `ZKCOHORT_FAST_SOL=FILE`
//! also writes the generated Solidity verifier (keygen phase), `ZKCOHORT_FAST_CALLDATA=FILE` the
//! verifier calldata of the proof (hex; prove phase); `tools/verifier-gas.sh SOL CALLDATA`
//! measures the pair. `ZKCOHORT_FAST_NULLABLE=1` makes the statistic fields nullable (their
//! sums skip missing values; a tenth of their values are missing). `ZKCOHORT_FAST_SEED=S` (prove
//! phase) draws other records and another salt, i.e. another dataset of the same size proven
//! with the same key: `tools/bench-large.sh` proves 1,000,000 records as ten such 100,000-record
//! chunks. `ZKCOHORT_FAST_STRATA=2` (or 3) releases one cell per sex code in the same proof
//! (issue #13); `ZKCOHORT_FAST_ATTEST=1` releases a verdict instead (an attestation: the mean
//! of the statistic reaches a threshold); `ZKCOHORT_FAST_ROUNDING=5` (or 6) rounds every
//! released count and sum (to 5, or midpoint-6). Results are in docs/benchmarks.md and
//! docs/circuits.md.

// `criterion_group!` defines an undocumented public fn.
#![allow(missing_docs)]

use std::{
    fs,
    io::{BufReader, BufWriter},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use halo2_base::{
    gates::circuit::builder::BaseCircuitBuilder,
    halo2_proofs::{
        halo2curves::bn256::{Bn256, Fr, G1Affine},
        plonk::ProvingKey,
        poly::kzg::commitment::ParamsKZG,
        SerdeFormat,
    },
};
use rand::{rngs::OsRng, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snark_verifier_sdk::{
    evm::gen_evm_verifier_sol_code, snark_verifier::loader::evm::encode_calldata, SHPLONK,
};
use zkcohort::{
    circuit::fast::{
        self,
        fold::{self, Dominance, FoldCircuit, FoldParams, FoldQuery, Rounding, Strata},
        FastShape,
    },
    keys::{KeyStore, ParamsSource},
};

const SALT: [u8; 32] = [42; 32];

/// `ZKCOHORT_FAST_SEED`: unset, the records from seed 4 under [`SALT`] (the numbers in
/// docs/benchmarks.md); set, that seed's records under a salt of its own (`SALT` with the seed
/// in its first 8 bytes), as a custodian would commit each chunk of a large dataset apart.
fn seed() -> Option<u64> {
    std::env::var("ZKCOHORT_FAST_SEED")
        .ok()
        .map(|s| s.parse().expect("ZKCOHORT_FAST_SEED: an integer"))
}

fn salt() -> [u8; 32] {
    let mut salt = SALT;
    if let Some(s) = seed() {
        salt[..8].copy_from_slice(&s.to_le_bytes());
    }
    salt
}

/// The clinical workload as 8 fields of at most 12 bits: age (7), sex (2), ICD-10 category
/// (12: letter × 2 digits), HbA1c (8), systolic BP (8), BMI (10), site (6), consent to
/// research (1). 2,048 salt-derived masking rows. With `ZKCOHORT_FAST_NULLABLE=1` each
/// statistic field may be missing: its 1-bit `known` field comes right after it (so at
/// `W = 2` both share a row and the proof reads them at one rotation).
fn shape(capacity: usize) -> FastShape {
    let mut widths = vec![];
    let mut known = vec![];
    for (c, w) in [7, 2, 12, 8, 8, 10, 6, 1].into_iter().enumerate() {
        widths.push(w);
        known.push(None);
        if nullable() && stats().contains(&c) {
            *known.last_mut().expect("a field") = Some(widths.len());
            widths.push(1);
            known.push(None);
        }
    }
    FastShape {
        widths,
        capacity,
        mask_rows: 2048,
        known,
        purposes: None,
    }
}

/// Random records; a nullable statistic is missing (0, its `known` bit 0) a tenth of the time.
fn records(shape: &FastShape) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed().unwrap_or(4));
    (0..shape.capacity)
        .map(|_| {
            let mut r: Vec<u64> = (0..shape.fields())
                .map(|c| rng.gen_range(0..1u64 << shape.widths[c]))
                .collect();
            for c in 0..shape.fields() {
                if let Some(b) = shape.known_field(c) {
                    let present = !rng.gen_bool(0.1);
                    r[b] = present as u64;
                    r[c] *= present as u64;
                }
            }
            r
        })
        .collect()
}

/// Age 40–65, ICD-10 categories E00–N99 (letter·100 + number: 400 ..= 1399), consenting;
/// every other field unconstrained (its full range); the first statistic, floor 11, a fixed
/// context.
fn query(shape: &FastShape) -> FoldQuery {
    let mut ranges: Vec<(u64, u64)> = shape.widths.iter().map(|w| (0, (1 << w) - 1)).collect();
    ranges[field(0)] = (40, 65);
    ranges[field(2)] = (400, 1399);
    ranges[field(7)] = (1, 1);
    FoldQuery {
        ranges,
        stat: 0,
        min_cohort: 11,
        context: Fr::from(0x5eed),
        // A mean of at least 7 in the statistic's encoded units.
        threshold: attestation().then_some((7, 1)),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn params(shape: &FastShape) -> FoldParams {
    FoldParams {
        shape: shape.clone(),
        slots: slots(),
        stats: stats().into_iter().map(field).collect(),
        strata: strata(),
        attestation: attestation(),
        rounding: rounding(),
        dominance: dominance(),
    }
}

/// `ZKCOHORT_FAST_DOMINANCE=K`: the (2, K) dominance rule on the released sum (issue #13).
fn dominance() -> Option<Dominance> {
    let percent = std::env::var("ZKCOHORT_FAST_DOMINANCE").ok()?;
    Some(Dominance {
        percent: percent
            .parse()
            .expect("ZKCOHORT_FAST_DOMINANCE: a percentage"),
    })
}

/// `ZKCOHORT_FAST_ROUNDING=5|6`: every released count and sum rounded to the nearest 5, or by
/// the midpoint-6 rule (issue #13).
fn rounding() -> Option<Rounding> {
    match std::env::var("ZKCOHORT_FAST_ROUNDING").as_deref() {
        Ok("5") => Some(Rounding::Nearest5),
        Ok("6") => Some(Rounding::Midpoint6),
        _ => None,
    }
}

/// `ZKCOHORT_FAST_ATTEST=1`: an attestation shape (issue #13).
fn attestation() -> bool {
    std::env::var("ZKCOHORT_FAST_ATTEST").as_deref() == Ok("1")
}

/// `ZKCOHORT_FAST_STRATA=N` (2 or 3): one cell per code `0..N` of the sex field (issue #13;
/// its codes `N..4` are in no cell).
fn strata() -> Option<Strata> {
    std::env::var("ZKCOHORT_FAST_STRATA").ok().map(|n| Strata {
        field: field(1),
        count: n.parse().expect("ZKCOHORT_FAST_STRATA: 2 or 3"),
    })
}

/// `ZKCOHORT_FAST_NULLABLE=1`.
fn nullable() -> bool {
    std::env::var("ZKCOHORT_FAST_NULLABLE").as_deref() == Ok("1")
}

/// The shape's index of workload field `c` (statistics' `known` bits shift those after them).
fn field(c: usize) -> usize {
    c + if nullable() {
        stats().into_iter().filter(|&f| f < c).count()
    } else {
        0
    }
}

/// `W`: `ZKCOHORT_FAST_SLOTS` (default 2, the widest whose verifier deploys).
fn slots() -> usize {
    std::env::var("ZKCOHORT_FAST_SLOTS").map_or(2, |s| s.parse().expect("ZKCOHORT_FAST_SLOTS"))
}

/// Statistic fields: `ZKCOHORT_FAST_STATS` (default `3`: HbA1c; `3,0,4,5` adds age, systolic
/// BP and BMI, the clinical schema's other numeric columns). The query releases the first.
fn stats() -> Vec<usize> {
    std::env::var("ZKCOHORT_FAST_STATS")
        .unwrap_or_else(|_| "3".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("ZKCOHORT_FAST_STATS: field indices")
        })
        .collect()
}

/// `fold<W>`, the name in key files and criterion ids.
fn name() -> String {
    format!("fold{}", slots())
}

/// Public inputs for the workload's query over `recs`.
fn inputs(p: &FoldParams, recs: &[Vec<u64>], q: &FoldQuery) -> Vec<Fr> {
    if p.attestation {
        p.inputs()
            .attestation_instances(q, &fold::evaluate_attestation(p, recs, q))
    } else {
        p.inputs()
            .strata_instances(q, &fold::evaluate_strata(p, recs, q))
    }
}

fn keygen(kzg: &ParamsKZG<Bn256>, p: &FoldParams) -> ProvingKey<G1Affine> {
    fast::keygen_circuit(kzg, &FoldCircuit::dummy(p, params_k(kzg)).unwrap()).unwrap()
}

fn read_pk(path: &Path, p: &FoldParams) -> ProvingKey<G1Affine> {
    let mut r = BufReader::new(fs::File::open(path).expect("run the keygen phase first"));
    ProvingKey::read::<_, FoldCircuit>(&mut r, SerdeFormat::RawBytesUnchecked, p.clone()).unwrap()
}

fn params_for(p: &FoldParams) -> ParamsKZG<Bn256> {
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    store.params(p.min_k()).unwrap()
}

fn prove_once(kzg: &ParamsKZG<Bn256>, pk: &ProvingKey<G1Affine>, p: &FoldParams) -> Vec<u8> {
    let recs = records(&p.shape);
    let q = query(&p.shape);
    let inst = inputs(p, &recs, &q);
    let salt = salt();
    let circuit = FoldCircuit::new(p, params_k(kzg), &salt, &recs, &q).unwrap();
    let rng = fast::SeededRng::with_unusable(&salt, p.slots, p.unusable_rows(), OsRng);
    fast::prove(kzg, pk, circuit, &inst, rng).unwrap()
}

fn params_k(params: &ParamsKZG<Bn256>) -> u32 {
    use halo2_base::halo2_proofs::poly::commitment::Params;
    params.k()
}

fn sizes() -> Vec<usize> {
    std::env::var("ZKCOHORT_FAST_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("ZKCOHORT_FAST_SIZES: record counts")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("prove_fast");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for n in sizes() {
        let p = params(&shape(n));
        let kzg = params_for(&p);
        let pk = keygen(&kzg, &p);
        let inst = inputs(&p, &records(&p.shape), &query(&p.shape));
        let proof = prove_once(&kzg, &pk, &p);
        assert!(fast::verify(&kzg, pk.get_vk(), &inst, &proof));
        group.throughput(Throughput::Elements(n as u64));
        let id = format!(
            "{}-s{}-f{}-c{}-k{}",
            name(),
            p.stats.len(),
            p.shape.fields(),
            p.cells(),
            params_k(&kzg)
        );
        group.bench_with_input(BenchmarkId::new(id, n), &n, |b, _| {
            b.iter(|| prove_once(&kzg, &pk, &p))
        });
    }
    group.finish();
}

fn oneshot(n: usize) {
    let p = params(&shape(n));
    let phase = std::env::var("ZKCOHORT_FAST_PHASE").unwrap_or_default();
    let t = Instant::now();
    let kzg = params_for(&p);
    let k = params_k(&kzg);
    eprintln!("{}: n = {n}, k = {k}: params {:.2?}", name(), t.elapsed());
    let pk_path = root().join(".zkcohort/fast").join(format!(
        "pk-{}{}{}{}{}{}-s{}-n{n}-k{k}.bin",
        name(),
        if p.nullable() { "-null" } else { "" },
        p.strata.map_or(String::new(), |s| format!("-c{}", s.count)),
        if p.attestation { "-v" } else { "" },
        p.rounding
            .map_or(String::new(), |r| format!("-{}", r.tag())),
        p.dominance
            .map_or(String::new(), |d| format!("-{}", d.tag())),
        p.stats
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("_")
    ));
    let pk = if phase == "prove" {
        let t = Instant::now();
        let pk = read_pk(&pk_path, &p);
        eprintln!("read pk {:.2?}", t.elapsed());
        pk
    } else {
        let t = Instant::now();
        let pk = keygen(&kzg, &p);
        eprintln!("keygen {:.2?}", t.elapsed());
        if phase == "keygen" {
            fs::create_dir_all(pk_path.parent().unwrap()).unwrap();
            let mut w = BufWriter::new(fs::File::create(&pk_path).unwrap());
            pk.write(&mut w, SerdeFormat::RawBytesUnchecked).unwrap();
            let cs = pk.get_vk().cs();
            eprintln!(
                "advice {} fixed {} lookups {} degree {} -> wrote {}",
                cs.num_advice_columns(),
                cs.num_fixed_columns(),
                cs.lookups().len(),
                cs.degree(),
                pk_path.display()
            );
            if let Ok(sol) = std::env::var("ZKCOHORT_FAST_SOL") {
                let t = Instant::now();
                let code = gen_evm_verifier_sol_code::<BaseCircuitBuilder<Fr>, SHPLONK>(
                    &kzg,
                    pk.get_vk(),
                    vec![p.inputs().len()],
                );
                fs::write(&sol, &code).unwrap();
                eprintln!(
                    "verifier source {} B in {:.2?} -> {sol}",
                    code.len(),
                    t.elapsed()
                );
            }
            return;
        }
        pk
    };
    let t = Instant::now();
    let proof = prove_once(&kzg, &pk, &p);
    let secs = t.elapsed().as_secs_f64();
    let inst = inputs(&p, &records(&p.shape), &query(&p.shape));
    assert!(fast::verify(&kzg, pk.get_vk(), &inst, &proof));
    eprintln!(
        "prove {secs:.2} s ({:.0} records/s), proof {} B, {} public inputs, verified",
        n as f64 / secs,
        proof.len(),
        inst.len()
    );
    if let Ok(path) = std::env::var("ZKCOHORT_FAST_CALLDATA") {
        let calldata = encode_calldata(&[inst], &proof);
        fs::write(&path, format!("0x{}", hex::encode(calldata))).unwrap();
        eprintln!("verifier calldata -> {path}");
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(n) = std::env::var("ZKCOHORT_FAST_ONESHOT") {
        oneshot(n.parse().expect("ZKCOHORT_FAST_ONESHOT: a record count"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
