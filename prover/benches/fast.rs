//! Proving throughput of the design-B spike (`zkcohort::circuit::fast`, issue #8).
//!
//! `cargo bench -p zkcohort --bench fast` proves 1,000 and 10,000 synthetic records (sizes via
//! `ZKCOHORT_FAST_SIZES=1000,10000`) with designs B1 and B′ (`ZKCOHORT_FAST_DESIGN=b1`,
//! `table`, or `fold` for N(W) with `W` from `ZKCOHORT_FAST_SLOTS`, default 3, for one; one-shot
//! mode uses the first), real KZG + SHPLONK + EVM transcript, dev params from the crate's cache
//! under `.zkcohort/`; key generation happens before timing. Each timed
//! iteration builds the witness and proves; a proof is verified once outside the loop.
//!
//! One-shot mode, for `/usr/bin/time -v` on the bench binary: `ZKCOHORT_FAST_ONESHOT=N` runs
//! once and skips criterion. With `ZKCOHORT_FAST_PHASE=keygen` it only generates (and writes)
//! the proving key under `.zkcohort/fast/`; with `prove` it reads that key and proves once, so
//! the two phases' peak memory can be measured apart; unset does both. `ZKCOHORT_FAST_SOL=FILE`
//! also writes the generated Solidity verifier (keygen phase), `ZKCOHORT_FAST_CALLDATA=FILE` the
//! verifier calldata of the proof (hex; prove phase); `tools/verifier-gas.sh SOL CALLDATA`
//! measures the pair. Results are in docs/benchmarks.md.

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
        fold::{self, FoldCircuit, FoldParams, FoldQuery},
        table::{self, TableCircuit},
        FastCircuit, FastQuery, FastShape, UNUSABLE_ROWS,
    },
    keys::{KeyStore, ParamsSource},
};

const SALT: [u8; 32] = [42; 32];

/// The clinical workload as 8 fields of at most 12 bits: age (7), sex (2), ICD-10 category
/// (12: letter × 2 digits), HbA1c (8), systolic BP (8), BMI (10), site (6), consent to
/// research (1). Statistic: HbA1c. 2,048 salt-derived masking rows.
fn shape(capacity: usize) -> FastShape {
    FastShape {
        widths: vec![7, 2, 12, 8, 8, 10, 6, 1],
        stat: 3,
        range_bits: 12,
        capacity,
        mask_rows: 2048,
    }
}

fn records(shape: &FastShape) -> Vec<Vec<u64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    (0..shape.capacity)
        .map(|_| {
            shape
                .widths
                .iter()
                .map(|w| rng.gen_range(0..1u64 << w))
                .collect()
        })
        .collect()
}

/// Age 40–65, ICD-10 categories E00–N99 (letter·100 + number: 400 ..= 1399), consenting;
/// every other field unconstrained (its full range).
fn query(shape: &FastShape) -> FastQuery {
    let mut ranges: Vec<(u64, u64)> = shape.widths.iter().map(|w| (0, (1 << w) - 1)).collect();
    ranges[0] = (40, 65);
    ranges[2] = (400, 1399);
    ranges[7] = (1, 1);
    FastQuery { ranges }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// B1 (comparisons per record), B′ (per-proof match table) or N(W) (records over rows of `W`
/// data columns, the match folded into one lookup per column); see docs/circuits.md.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Design {
    B1,
    MatchTable,
    Fold(usize),
}

fn fold_params(shape: &FastShape, slots: usize) -> FoldParams {
    FoldParams {
        shape: shape.clone(),
        slots,
        stats: stats(),
    }
}

/// Statistic fields of N(W): `ZKCOHORT_FAST_STATS` (default `3,0,4,5`: HbA1c, age, systolic
/// BP, BMI, the numeric columns of the clinical schema). The query releases the first.
fn stats() -> Vec<usize> {
    std::env::var("ZKCOHORT_FAST_STATS")
        .unwrap_or_else(|_| "3,0,4,5".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("ZKCOHORT_FAST_STATS: field indices")
        })
        .collect()
}

/// The N(W) query for `q`: release the first statistic, floor 11, a fixed context.
fn fold_query(q: &FastQuery) -> FoldQuery {
    FoldQuery {
        ranges: q.ranges.clone(),
        stat: 0,
        min_cohort: 11,
        context: Fr::from(0x5eed),
    }
}

/// Public inputs of `design` for the workload's query over `recs`.
fn inputs(design: Design, shape: &FastShape, recs: &[Vec<u64>], q: &FastQuery) -> Vec<Fr> {
    match design {
        Design::Fold(w) => {
            let p = fold_params(shape, w);
            let fq = fold_query(q);
            p.inputs().instances(&fq, &fold::evaluate(&p, recs, &fq))
        }
        _ => fast::instances(q, &fast::evaluate(shape, recs, q)),
    }
}

impl Design {
    fn name(self) -> &'static str {
        match self {
            Design::B1 => "b1",
            Design::MatchTable => "table",
            Design::Fold(1) => "fold1",
            Design::Fold(2) => "fold2",
            Design::Fold(3) => "fold3",
            Design::Fold(_) => "fold",
        }
    }

    fn k(self, shape: &FastShape) -> u32 {
        match self {
            Design::B1 => shape.min_k(UNUSABLE_ROWS),
            Design::MatchTable => table::min_k(shape),
            Design::Fold(w) => fold_params(shape, w).min_k(),
        }
    }

    fn keygen(self, params: &ParamsKZG<Bn256>, shape: &FastShape) -> ProvingKey<G1Affine> {
        let rows = fast::usable_rows(params_k(params));
        match self {
            Design::B1 => fast::keygen_circuit(params, &FastCircuit::dummy(shape, rows)),
            Design::MatchTable => fast::keygen_circuit(params, &TableCircuit::dummy(shape, rows)),
            Design::Fold(w) => {
                let p = fold_params(shape, w);
                let rows = p.usable_rows(params_k(params));
                fast::keygen_circuit(params, &FoldCircuit::dummy(&p, rows))
            }
        }
        .unwrap()
    }

    fn read_pk(self, path: &Path, shape: &FastShape) -> ProvingKey<G1Affine> {
        let mut r = BufReader::new(fs::File::open(path).expect("run the keygen phase first"));
        let format = SerdeFormat::RawBytesUnchecked;
        match self {
            Design::B1 => ProvingKey::read::<_, FastCircuit>(&mut r, format, shape.clone()),
            Design::MatchTable => {
                ProvingKey::read::<_, TableCircuit>(&mut r, format, shape.clone())
            }
            Design::Fold(w) => {
                ProvingKey::read::<_, FoldCircuit>(&mut r, format, fold_params(shape, w))
            }
        }
        .unwrap()
    }
}

fn designs() -> Vec<Design> {
    match std::env::var("ZKCOHORT_FAST_DESIGN").as_deref() {
        Ok("b1") => vec![Design::B1],
        Ok("table") => vec![Design::MatchTable],
        Ok("fold") => vec![Design::Fold(slots())],
        _ => vec![Design::B1, Design::MatchTable],
    }
}

/// `W` for design N(W): `ZKCOHORT_FAST_SLOTS` (default 3).
fn slots() -> usize {
    std::env::var("ZKCOHORT_FAST_SLOTS").map_or(3, |s| s.parse().expect("ZKCOHORT_FAST_SLOTS"))
}

fn params_for(design: Design, shape: &FastShape) -> ParamsKZG<Bn256> {
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    store.params(design.k(shape)).unwrap()
}

fn prove_once(
    design: Design,
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    shape: &FastShape,
) -> Vec<u8> {
    let recs = records(shape);
    let q = query(shape);
    let inst = inputs(design, shape, &recs, &q);
    let rows = fast::usable_rows(params_k(params));
    let rng = fast::SeededRng::new(&SALT, shape.data_columns(), OsRng);
    match design {
        Design::B1 => {
            let circuit = FastCircuit::new(shape, rows, &SALT, &recs, &q);
            fast::prove(params, pk, circuit, &inst, rng)
        }
        Design::MatchTable => {
            let circuit = TableCircuit::new(shape, rows, &SALT, &recs, &q);
            fast::prove(params, pk, circuit, &inst, rng)
        }
        Design::Fold(w) => {
            let p = fold_params(shape, w);
            let rows = p.usable_rows(params_k(params));
            let circuit = FoldCircuit::new(&p, rows, &SALT, &recs, &fold_query(&q));
            let rng = fast::SeededRng::with_unusable(&SALT, w, p.unusable_rows(), OsRng);
            fast::prove(params, pk, circuit, &inst, rng)
        }
    }
    .unwrap()
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
    for design in designs() {
        for n in sizes() {
            let shape = shape(n);
            let params = params_for(design, &shape);
            let pk = design.keygen(&params, &shape);
            let recs = records(&shape);
            let q = query(&shape);
            let inst = inputs(design, &shape, &recs, &q);
            let proof = prove_once(design, &params, &pk, &shape);
            assert!(fast::verify(&params, pk.get_vk(), &inst, &proof));
            group.throughput(Throughput::Elements(n as u64));
            let id = format!(
                "{}-f{}-k{}",
                design.name(),
                shape.fields(),
                params_k(&params)
            );
            group.bench_with_input(BenchmarkId::new(id, n), &n, |b, _| {
                b.iter(|| prove_once(design, &params, &pk, &shape))
            });
        }
    }
    group.finish();
}

fn oneshot(n: usize) {
    let design = designs()[0];
    let shape = shape(n);
    let phase = std::env::var("ZKCOHORT_FAST_PHASE").unwrap_or_default();
    let t = Instant::now();
    let params = params_for(design, &shape);
    let k = params_k(&params);
    eprintln!(
        "{}: n = {n}, k = {k}: params {:.2?}",
        design.name(),
        t.elapsed()
    );
    let pk_path = root()
        .join(".zkcohort/fast")
        .join(format!("pk-{}-n{n}-k{k}.bin", design.name()));
    let pk = if phase == "prove" {
        let t = Instant::now();
        let pk = design.read_pk(&pk_path, &shape);
        eprintln!("read pk {:.2?}", t.elapsed());
        pk
    } else {
        let t = Instant::now();
        let pk = design.keygen(&params, &shape);
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
                    &params,
                    pk.get_vk(),
                    vec![inputs(design, &shape, &records(&shape), &query(&shape)).len()],
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
    let proof = prove_once(design, &params, &pk, &shape);
    let secs = t.elapsed().as_secs_f64();
    let recs = records(&shape);
    let q = query(&shape);
    let inst = inputs(design, &shape, &recs, &q);
    assert!(fast::verify(&params, pk.get_vk(), &inst, &proof));
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
