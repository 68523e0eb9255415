//! **The dataset commitment of design N(W), computed without proving** (`dataset commit`).
//!
//! A proof of [`FoldCircuit`] starts with the KZG commitments of its `W` data columns (the
//! first advice columns; SHPLONK + EVM transcript), and a market compares those first
//! `64 · W` bytes with the dataset's registered commitment. [`data_commitment`] computes that
//! commitment from the KZG params and the shape alone: no proving key, no query. Each data
//! column is committed over all `2^k` rows, exactly as halo2-axiom 0.5.3's `create_proof`
//! commits a first-phase advice column:
//!
//! - the **records**, each over `R` rows of the `W` columns (its `present` slot, then its
//!   fields; padding slots hold 0), built by [`FoldCircuit::new`] itself, so the layout
//!   cannot drift from the prover's (the data columns do not depend on the query, which this
//!   module's tests check);
//! - the **masking rows**, `mask_rows` salt-derived uniform values per column after the
//!   records (and 0 below them, down to the usable end);
//! - the **blinding rows**, the last `blinding_factors + 1` rows of each column: halo2 fills
//!   them with `Fr::random` (8 `u64` words each), column by column in column order, from the
//!   prover's rng before any other draw; [`SeededRng`] serves exactly those words from the
//!   salt, so this module draws them from a [`SeededRng`] too. The commitment is
//!   `commit_lagrange` of the column (KZG ignores the `Blind`), so it is the same point in
//!   every proof over the same records, salt, shape and params.
//!
//! Hiding (the masking-row argument of issue #8, not proven here; docs/circuits.md, "Wiring
//! N(W) into the product"): with `m` secret, uniform masking and blinding rows per column,
//! the commitment together with fewer than `m` evaluations of the column at points outside
//! the row domain is uniformly distributed whatever the records, so it reveals nothing about
//! them. Every proof opens each data column at one to four rotations, so a commitment carries
//! a query budget of about `m` over the openings per proof (2,048 masking rows: ~500 proofs),
//! after which the custodian must re-commit under a fresh salt. The salt must stay secret:
//! anyone holding it can test a guessed dataset against the commitment.

use halo2_base::halo2_proofs::{
    arithmetic::CurveAffine,
    halo2curves::{
        bn256::{Bn256, Fq, Fr, G1Affine},
        ff::{Field, PrimeField},
        group::{prime::PrimeCurveAffine, Curve},
    },
    poly::{
        commitment::{Blind, Params},
        kzg::commitment::ParamsKZG,
        LagrangeCoeff, Polynomial,
    },
};
use rand::RngCore;

use super::fold::{FoldCircuit, FoldParams, BOUND_BITS, MAX_STRATA, STRATA_CAPACITY};
use super::SeededRng;

/// Bytes of one G1 point in the EVM transcript (`x` then `y`, 32-byte big-endian each).
pub const POINT_BYTES: usize = 64;

/// Why a dataset commitment or a fold witness ([`FoldCircuit::new`]) could not be computed,
/// or a commitment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The shape has no data column.
    #[error("the fold parameters have no data column (slots = 0)")]
    NoDataColumns,
    /// The shape names no statistic field.
    #[error("the fold parameters name no statistic field")]
    NoStatistic,
    /// A statistic index is not a field of the shape.
    #[error("statistic field {field} is not one of the shape's {fields} fields")]
    StatisticNotAField {
        /// The statistic's field index.
        field: usize,
        /// Fields in the shape.
        fields: usize,
    },
    /// A query names a statistic the shape does not accumulate.
    #[error("the query releases statistic {index}; the shape accumulates {count}")]
    NoSuchStatistic {
        /// The query's index into the shape's statistics.
        index: usize,
        /// Statistics the shape accumulates.
        count: usize,
    },
    /// A stratified shape with fewer than 2 or more than [`MAX_STRATA`] strata.
    #[error("{count} strata: a stratified proof releases 2 to {MAX_STRATA} cells")]
    StrataCount {
        /// The strata asked for.
        count: usize,
    },
    /// The strata's field is not a field of the shape.
    #[error("strata field {field} is not one of the shape's {fields} fields")]
    StrataNotAField {
        /// The field named.
        field: usize,
        /// Fields in the shape.
        fields: usize,
    },
    /// More strata than the field has values.
    #[error("field {field} is {width} bits wide: it cannot hold {count} strata codes")]
    StrataBeyondField {
        /// The strata's field.
        field: usize,
        /// Its width.
        width: u32,
        /// The strata asked for.
        count: usize,
    },
    /// An attestation shape with strata (an attestation releases one verdict).
    #[error("an attestation releases one verdict over the whole cohort: it cannot be stratified")]
    AttestationStratified,
    /// An attestation shape with a rounding rule (an attestation releases no count to round).
    #[error("an attestation releases a verdict and no count: it has nothing to round")]
    AttestationRounded,
    /// A dominance rule with a percentage outside 1 ..= 99.
    #[error("a dominance rule's k is a percentage from 1 to 99, not {percent}")]
    DominancePercent {
        /// The percentage given.
        percent: u8,
    },
    /// A dominance rule on a shape that does not release exactly one sum of one cell.
    #[error("the dominance rule applies to one released sum: a shape with one statistic, no strata and no attestation (this one has {stats} statistics{})", if *stratified { ", strata" } else if *attestation { ", an attestation" } else { "" })]
    DominanceShape {
        /// Statistics in the shape.
        stats: usize,
        /// Whether the shape has strata.
        stratified: bool,
        /// Whether it is an attestation.
        attestation: bool,
    },
    /// A dominance rule on records laid over too few rows for its per-record cells.
    #[error("the dominance rule needs {needed} rows per record, and this layout has {rows}: use fewer data columns")]
    DominanceRows {
        /// Rows per record.
        rows: usize,
        /// Rows needed.
        needed: usize,
    },
    /// A query with a threshold for a shape that releases cells, or none for an attestation.
    #[error("{}", if *attestation { "an attestation query needs a threshold" } else { "a threshold is for an attestation shape, which this is not" })]
    ThresholdShape {
        /// Whether the shape is an attestation.
        attestation: bool,
    },
    /// A threshold whose denominator is 0 or not below `2^32`.
    #[error(
        "an attestation threshold's denominator must be from 1 to 2^32 − 1, not {denominator}"
    )]
    ThresholdDenominator {
        /// The denominator.
        denominator: u64,
    },
    /// A query over the strata of a nullable field that does not ask the field's `known` bit
    /// (records missing the field would be counted in stratum 0).
    #[error("the strata's field {field} may be missing: the query must ask its known bit (field {known}) to be 1, e.g. by any criterion on the column")]
    StrataKnownNotAsked {
        /// The strata's field.
        field: usize,
        /// Its `known` bit.
        known: usize,
    },
    /// A stratified shape holding so many records that a stratum's lane could overflow.
    #[error("a stratified shape holds fewer than {STRATA_CAPACITY} records, not {capacity}")]
    StrataCapacity {
        /// The shape's capacity.
        capacity: usize,
    },
    /// A statistic field's `known` bit is not a 1-bit field of the shape.
    #[error(
        "statistic field {field}'s known bit, field {known}, is not a 1-bit field of the shape"
    )]
    KnownNotABit {
        /// The statistic's field index.
        field: usize,
        /// The field said to hold its `known` bit.
        known: usize,
    },
    /// A field's value table (`2^width` rows) cannot fit in `2^k` rows.
    #[error("field {field} is {width} bits wide: its table cannot fit in 2^{k} rows")]
    FieldTooWide {
        /// Field index.
        field: usize,
        /// Its declared width.
        width: u32,
        /// The params' `k`.
        k: u32,
    },
    /// A field wider than a bound's 16 bits ([`BOUND_BITS`]).
    #[error("field {field} is {width} bits wide; fields have at most {BOUND_BITS} bits")]
    FieldOverBoundBits {
        /// Field index.
        field: usize,
        /// Its declared width.
        width: u32,
    },
    /// A consent purpose's field is not one bit wide.
    #[error("consent purpose field {field} is not a 1-bit field of the shape")]
    PurposeNotABit {
        /// Field index.
        field: usize,
    },
    /// More records than record slots.
    #[error("{records} records exceed the shape's capacity of {capacity}")]
    TooManyRecords {
        /// Records given.
        records: usize,
        /// The shape's capacity.
        capacity: usize,
    },
    /// The circuit does not fit in `2^k` rows.
    #[error("k = {k} is too small: the circuit needs {needed} rows plus {unusable} unusable rows")]
    KTooSmall {
        /// The params' `k`.
        k: u32,
        /// Rows the circuit needs before the unusable ones.
        needed: usize,
        /// Rows halo2 leaves unusable at the bottom of every column.
        unusable: usize,
    },
    /// A record with the wrong number of fields.
    #[error("record {record} has {got} fields; the shape has {expected}")]
    RecordWidth {
        /// Index of the record.
        record: usize,
        /// Its number of values.
        got: usize,
        /// The shape's number of fields.
        expected: usize,
    },
    /// A value does not fit its field's declared width (the value itself is not reported: it
    /// is a record value).
    #[error("record {record}, field {field}: the value does not fit in {width} bits")]
    ValueTooWide {
        /// Index of the record.
        record: usize,
        /// Field index.
        field: usize,
        /// The field's declared width.
        width: u32,
    },
    /// A query whose number of ranges is not the shape's number of fields.
    #[error("the query has {found} ranges; the shape has {expected} fields")]
    RangeCount {
        /// The shape's number of fields.
        expected: usize,
        /// Ranges in the query.
        found: usize,
    },
    /// A proof shorter than the commitment it should start with.
    #[error("a proof of {len} bytes is shorter than a {needed}-byte data commitment")]
    ProofTooShort {
        /// Proof length.
        len: usize,
        /// `64 · W`.
        needed: usize,
    },
    /// Proof bytes that are not a point of BN254's G1 (or are the point at infinity, which
    /// no proof holds).
    #[error("data commitment {index} (proof bytes {start}..{end}) is not a point of BN254 G1")]
    InvalidPoint {
        /// Which data column.
        index: usize,
        /// First byte.
        start: usize,
        /// Byte after the last.
        end: usize,
    },
}

/// The dataset commitment: the KZG commitments of the `W` data columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataCommitment {
    /// One commitment per data column, in column order.
    pub points: Vec<G1Affine>,
}

impl DataCommitment {
    /// The commitment as the first `64 · W` bytes of a proof: per point `x` then `y`, 32-byte
    /// big-endian each (snark-verifier's `EvmTranscript::write_point`).
    pub fn to_proof_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(POINT_BYTES * self.points.len());
        for p in &self.points {
            for coordinate in [p.x, p.y] {
                let mut bytes = coordinate.to_repr();
                bytes.reverse();
                out.extend_from_slice(&bytes);
            }
        }
        out
    }

    /// What a registry stores and a market compares: keccak256 of [`Self::to_proof_bytes`]
    /// as an integer, mod r (a field element, as `ProofGate.dataCommitment` computes it from
    /// the proof's first `64 · W` bytes).
    pub fn hash(&self) -> Fr {
        crate::commitment::keccak_fr(&self.to_proof_bytes())
    }

    /// Reads the commitment a proof of a circuit with `w` data columns starts with.
    pub fn from_proof(proof: &[u8], w: usize) -> Result<Self, CommitError> {
        let needed = POINT_BYTES * w;
        if proof.len() < needed {
            return Err(CommitError::ProofTooShort {
                len: proof.len(),
                needed,
            });
        }
        let points = proof[..needed]
            .chunks_exact(POINT_BYTES)
            .enumerate()
            .map(|(index, bytes)| {
                let coordinate = |half: &[u8]| {
                    let mut repr = [0u8; 32];
                    repr.copy_from_slice(half);
                    repr.reverse();
                    Option::<Fq>::from(Fq::from_repr(repr))
                };
                coordinate(&bytes[..32])
                    .zip(coordinate(&bytes[32..]))
                    .and_then(|(x, y)| Option::<G1Affine>::from(G1Affine::from_xy(x, y)))
                    .filter(|p| !bool::from(p.is_identity()))
                    .ok_or(CommitError::InvalidPoint {
                        index,
                        start: index * POINT_BYTES,
                        end: (index + 1) * POINT_BYTES,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(DataCommitment { points })
    }
}

/// The dataset commitment of `records` under `salt` for proofs of `params` at
/// `k = kzg.k()` (the params the prover uses: downsize them to the circuit's `k` first, as
/// for proving). Equal to the first `64 · W` bytes of every such proof whose rng is
/// [`SeededRng::with_unusable`] over the same salt, whatever the query.
pub fn data_commitment(
    kzg: &ParamsKZG<Bn256>,
    params: &FoldParams,
    salt: &[u8; 32],
    records: &[Vec<u64>],
) -> Result<DataCommitment, CommitError> {
    let k = kzg.k();
    let columns = data_columns(params, k, salt, records)?;
    let projective: Vec<_> = columns
        .into_iter()
        .map(|col| {
            kzg.commit_lagrange(&Polynomial::<Fr, LagrangeCoeff>::new(col), Blind::default())
        })
        .collect();
    let mut points = vec![G1Affine::default(); projective.len()];
    Curve::batch_normalize(&projective[..], &mut points);
    Ok(DataCommitment { points })
}

/// The `W` data columns over all `2^k` rows, blinding rows included, as the prover commits
/// them.
fn data_columns(
    params: &FoldParams,
    k: u32,
    salt: &[u8; 32],
    records: &[Vec<u64>],
) -> Result<Vec<Vec<Fr>>, CommitError> {
    // The data columns do not depend on the query; `new` runs the one check
    // (`FoldParams::check`) on the params, the records and `k`.
    let circuit = FoldCircuit::new(params, k, salt, records, &params.dummy_query())?;
    let rows = params.usable_rows(k);
    let unusable = params.unusable_rows();
    let mut rng = SeededRng::with_unusable(salt, params.slots, unusable, Spent);
    let mut columns = circuit.assignment.data;
    for col in &mut columns {
        col.resize(rows, Fr::ZERO);
        col.extend((0..unusable).map(|_| Fr::random(&mut rng)));
    }
    Ok(columns)
}

/// The rng behind [`SeededRng`] once its salt-derived words are used up: the data columns'
/// blinding rows take exactly those words, so drawing past them is a bug in this module.
struct Spent;

impl RngCore for Spent {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        unreachable!("the data columns' blinding rows take exactly the salt-derived words")
    }
    fn fill_bytes(&mut self, _: &mut [u8]) {
        self.next_u64();
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::OsRng, Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::super::{
        fold::{evaluate, FoldCircuit, FoldParams, FoldQuery},
        fold_tests::params,
        keygen_circuit, prove, verify, FastShape, SeededRng,
    };
    use super::*;

    const SALT: [u8; 32] = [9; 32];

    /// 30 records (10 padding slots).
    fn records() -> Vec<Vec<u64>> {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let widths = params(1).shape.widths;
        (0..30)
            .map(|_| widths.iter().map(|w| rng.gen_range(0..1u64 << w)).collect())
            .collect()
    }

    fn query(ranges: Vec<(u64, u64)>) -> FoldQuery {
        FoldQuery {
            ranges,
            stat: 0,
            min_cohort: 3,
            context: Fr::from(77),
            threshold: None,
        }
    }

    fn queries() -> [FoldQuery; 2] {
        [
            query(vec![(3, 20), (1, 1), (0, 31), (2, 12)]),
            query(vec![(0, 31), (0, 3), (4, 30), (0, 15)]),
        ]
    }

    fn commit(p: &FoldParams, salt: &[u8; 32], recs: &[Vec<u64>]) -> DataCommitment {
        let kzg = crate::keys::dev_params(p.min_k());
        data_commitment(&kzg, p, salt, recs).unwrap()
    }

    #[test]
    fn data_columns_do_not_depend_on_the_query() {
        let p = params(2);
        let k = p.min_k();
        let built = queries().map(|q| FoldCircuit::new(&p, k, &SALT, &records(), &q).unwrap());
        let ours = FoldCircuit::new(&p, k, &SALT, &records(), &p.dummy_query()).unwrap();
        for c in &built {
            assert_eq!(c.assignment.data, ours.assignment.data);
        }
        assert_ne!(built[0].assignment.bits, built[1].assignment.bits);
    }

    /// The commitment is the first `64 · W` bytes of real proofs under two queries.
    fn equals_real_proofs(w: usize) {
        let p = params(w);
        let k = p.min_k();
        let kzg = crate::keys::dev_params(k);
        let pk = keygen_circuit(&kzg, &FoldCircuit::dummy(&p, k).unwrap()).unwrap();
        let recs = records();
        let expected = data_commitment(&kzg, &p, &SALT, &recs).unwrap();
        assert_eq!(expected.points.len(), w);
        for q in queries() {
            let inst = p.inputs().instances(&q, &evaluate(&p, &recs, &q));
            let circuit = FoldCircuit::new(&p, k, &SALT, &recs, &q).unwrap();
            let rng = SeededRng::with_unusable(&SALT, w, p.unusable_rows(), OsRng);
            let proof = prove(&kzg, &pk, circuit, &inst, rng).unwrap();
            assert!(verify(&kzg, pk.get_vk(), &inst, &proof));
            assert_eq!(proof[..64 * w], expected.to_proof_bytes()[..]);
            let read = DataCommitment::from_proof(&proof, w).unwrap();
            assert_eq!(read, expected);
            assert_eq!(read.to_proof_bytes(), &proof[..64 * w]);
        }
    }

    #[test]
    fn commitment_equals_real_proofs_w1() {
        equals_real_proofs(1);
    }

    #[test]
    fn commitment_equals_real_proofs_w2() {
        equals_real_proofs(2);
    }

    #[test]
    fn commitment_changes_with_a_value_or_the_salt() {
        let p = params(2);
        let recs = records();
        let base = commit(&p, &SALT, &recs);
        assert_eq!(base, commit(&p, &SALT, &recs), "deterministic");

        let mut changed = recs.clone();
        changed[17][2] ^= 1;
        let other = commit(&p, &SALT, &changed);
        assert_ne!(other.hash(), base.hash());
        // Record 17's field 2 is slot 3: data column 1 at W = 2; column 0 is unchanged.
        assert_eq!(other.points[0], base.points[0]);
        assert_ne!(other.points[1], base.points[1]);

        let mut salt = SALT;
        salt[31] ^= 1;
        let resalted = commit(&p, &salt, &recs);
        assert!(resalted
            .points
            .iter()
            .zip(&base.points)
            .all(|(a, b)| a != b));
    }

    #[test]
    fn bad_input_is_an_error() {
        let p = params(2);
        let k = p.min_k();
        let kzg = crate::keys::dev_params(k);
        let recs = records();
        let err = |p: &FoldParams, recs: &[Vec<u64>]| data_commitment(&kzg, p, &SALT, recs);

        let many = vec![vec![0; 4]; 41];
        assert_eq!(
            err(&p, &many),
            Err(CommitError::TooManyRecords {
                records: 41,
                capacity: 40
            })
        );
        let mut short = recs.clone();
        short[7].pop();
        assert_eq!(
            err(&p, &short),
            Err(CommitError::RecordWidth {
                record: 7,
                got: 3,
                expected: 4
            })
        );
        let mut wide = recs.clone();
        wide[9][1] = 4; // field 1 is 2 bits wide
        assert_eq!(
            err(&p, &wide),
            Err(CommitError::ValueTooWide {
                record: 9,
                field: 1,
                width: 2
            })
        );
        let mut big = p.clone();
        big.shape.capacity = 400;
        assert!(matches!(
            err(&big, &recs),
            Err(CommitError::KTooSmall { k: kk, .. }) if kk == k
        ));
        let mut table = p.clone();
        table.shape.widths[2] = k;
        assert_eq!(
            err(&table, &recs),
            Err(CommitError::FieldTooWide {
                field: 2,
                width: k,
                k
            })
        );
        let mut none = p.clone();
        none.slots = 0;
        assert_eq!(err(&none, &recs), Err(CommitError::NoDataColumns));
        none = p.clone();
        none.stats.clear();
        assert_eq!(err(&none, &recs), Err(CommitError::NoStatistic));
        none = p.clone();
        none.stats = vec![4];
        assert_eq!(
            err(&none, &recs),
            Err(CommitError::StatisticNotAField {
                field: 4,
                fields: 4
            })
        );

        let mut known = p.clone();
        known.shape.known = vec![None, None, None, Some(1)]; // field 1 is 2 bits wide
        assert_eq!(
            err(&known, &recs),
            Err(CommitError::KnownNotABit { field: 3, known: 1 })
        );
        known.shape.known = vec![None, None, None, Some(4)];
        assert_eq!(
            err(&known, &recs),
            Err(CommitError::KnownNotABit { field: 3, known: 4 })
        );

        // Reading: too short, and bytes that are not a curve point.
        let c = err(&p, &recs).unwrap();
        let bytes = c.to_proof_bytes();
        assert_eq!(
            DataCommitment::from_proof(&bytes[..127], 2),
            Err(CommitError::ProofTooShort {
                len: 127,
                needed: 128
            })
        );
        let mut bad = bytes.clone();
        bad[127] ^= 1;
        assert_eq!(
            DataCommitment::from_proof(&bad, 2),
            Err(CommitError::InvalidPoint {
                index: 1,
                start: 64,
                end: 128
            })
        );
        assert!(DataCommitment::from_proof(&[0; 64], 1).is_err(), "infinity");
        assert_eq!(DataCommitment::from_proof(&bytes, 2), Ok(c));
    }

    /// One-off measurement at the fast bench's shape (docs/circuits.md): 10,000 records,
    /// `W = 2`, statistic HbA1c, 2,048 masking rows, dev params cached under `.zkcohort/`.
    /// `cargo test --release -p zkcohort fast::commit -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement: keygen and a proof at k = 16"]
    fn ten_thousand_records_commit_vs_prove() {
        use crate::keys::{KeyStore, ParamsSource};
        use std::time::Instant;

        let widths = vec![7, 2, 12, 8, 8, 10, 6, 1];
        let p = FoldParams {
            shape: FastShape {
                widths: widths.clone(),
                capacity: 10_000,
                mask_rows: 2048,
                ..Default::default()
            },
            slots: 2,
            stats: vec![3],
            strata: None,
            attestation: false,
            rounding: None,
            dominance: None,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let recs: Vec<Vec<u64>> = (0..10_000)
            .map(|_| widths.iter().map(|w| rng.gen_range(0..1u64 << w)).collect())
            .collect();
        let k = p.min_k();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let kzg = KeyStore::new(root.join(".zkcohort"), ParamsSource::Dev)
            .params(k)
            .unwrap();

        let t = Instant::now();
        let c = data_commitment(&kzg, &p, &SALT, &recs).unwrap();
        let commit_time = t.elapsed();

        let t = Instant::now();
        let pk = keygen_circuit(&kzg, &FoldCircuit::dummy(&p, k).unwrap()).unwrap();
        let keygen_time = t.elapsed();
        let mut ranges: Vec<(u64, u64)> = widths.iter().map(|w| (0, (1 << w) - 1)).collect();
        ranges[0] = (40, 65);
        let q = query(ranges);
        let inst = p.inputs().instances(&q, &evaluate(&p, &recs, &q));
        let t = Instant::now();
        let circuit = FoldCircuit::new(&p, k, &SALT, &recs, &q).unwrap();
        let rng = SeededRng::with_unusable(&SALT, p.slots, p.unusable_rows(), OsRng);
        let proof = prove(&kzg, &pk, circuit, &inst, rng).unwrap();
        let prove_time = t.elapsed();
        assert_eq!(proof[..128], c.to_proof_bytes()[..]);
        println!(
            "10,000 records, N(2), k = {k}: commitment {commit_time:.2?}, \
             keygen {keygen_time:.2?}, witness + proof {prove_time:.2?}"
        );
    }
}
