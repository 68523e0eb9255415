//! Universal KZG parameters and per-circuit proving/verifying keys, cached on disk.
//!
//! * **Dev params** come from a fixed, public seed: anyone can forge proofs against them. They
//!   exist so tests, CI and the demo are reproducible offline, and every use logs a warning.
//!   They are computed with a fixed-base windowed multiplication (a few seconds at k = 17)
//!   instead of halo2's generic `ParamsKZG::setup` (minutes), then cached.
//! * **File params** (e.g. from a powers-of-tau ceremony, in halo2's raw format) are loaded
//!   from a path and checked against an expected SHA-256 before use.
//! * **Keys** are cached under `<cache>/keys/<circuit id>-<params fingerprint>/`, so another
//!   circuit id or different params can never pick up a stale key; a fold circuit's entry also
//!   names its schema and a digest of its constraint system, so a circuit whose constraints
//!   changed under the same id is keyed anew.
//! * Every key records a [`ParamsFingerprint`] (dev or file, SHA-256, `k`) of the params that
//!   built it; the generated verifiers and their manifest carry it (see `evm`), and the deploy
//!   script refuses development-parameter verifiers on any chain but the local one.

use std::{
    fs,
    io::{BufReader, BufWriter, Read},
    path::{Path, PathBuf},
};

use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, BaseCircuitParams},
    halo2_proofs::{
        halo2curves::{
            bn256::{Bn256, Fr, G1Affine, G2Affine, G1},
            ff::{BatchInvert, Field, PrimeField},
            group::{prime::PrimeCurveAffine, Curve, Group},
        },
        plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey},
        poly::{
            commitment::{Params, ParamsProver},
            kzg::commitment::ParamsKZG,
        },
        SerdeFormat,
    },
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    circuit::{
        self,
        eligibility::{self, EligibilityPublic, EligibilityWitness},
        fast::{
            self,
            fold::{Dominance, FoldCircuit, FoldParams, Rounding},
            record::{FoldSchema, FoldSchemaError},
        },
        gated::{GatedCircuit, GatedParams},
        permutation::ROWS_PER_PERMUTATION,
        AggregateWitness, PublicInputs,
    },
    commitment::RecordLayout,
    error::ProofError,
    schema::Schema,
};

/// Public label from which the dev toxic waste is derived. Not a secret: that is the point.
pub const DEV_SEED_LABEL: &str = "zkcohort INSECURE development KZG setup v1";
/// Rows halo2 reserves for blinding at the bottom of every column.
pub const MIN_ROWS: usize = 20;
/// Upper bound on advice columns (gate + lookup): the generated verifier grows ~1 KB per
/// column and must deploy under EIP-170's 24,576 bytes (7 columns measured at 20.1 KB).
pub const MAX_ADVICE_COLUMNS: usize = 7;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProofError + '_ {
    move |source| ProofError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where universal parameters come from.
#[derive(Clone, Debug)]
pub enum ParamsSource {
    /// Deterministic, insecure dev params cached in `cache_dir`.
    Dev,
    /// A params file in halo2's raw format, with its expected SHA-256 (hex).
    File {
        /// Path to the file.
        path: PathBuf,
        /// Expected SHA-256, hex.
        sha256: String,
    },
}

/// On-disk cache of params and keys.
#[derive(Clone, Debug)]
pub struct KeyStore {
    /// Cache root (`.zkcohort` by default).
    pub dir: PathBuf,
    /// Where params come from.
    pub source: ParamsSource,
}

/// Which circuit, and its size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitShape {
    /// The aggregate-statistic circuit for a record layout (capacity).
    Aggregate(RecordLayout),
    /// The eligibility circuit for a batch of patients.
    Eligibility {
        /// Patient slots per proof.
        batch: usize,
    },
}

/// What fixes a circuit, as a proof artifact records it: the schema and the shape. Everything
/// else (its `k`, column configuration and break points, and so its keys) is derived from these
/// and the universal params, deterministically ([`CircuitConfig::plan_spec`],
/// [`KeyStore::verifying_key_for`]), so a verifier needs neither the prover's cache nor a key
/// shipped by the prover: it re-derives the verifying key and checks its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitSpec {
    /// The dataset schema.
    pub schema: Schema,
    /// Which circuit.
    pub shape: CircuitShape,
}

/// The aggregate circuit's family in its ids: bumped whenever its constraints or public inputs
/// change, so that no cached key, verifier or registration of an older circuit is taken for it
/// (`agg2`: the claim context joined the public inputs).
pub const AGGREGATE_FAMILY: &str = "agg2";
/// The eligibility circuit's family in its ids (see [`AGGREGATE_FAMILY`]; `elig2`: patient-held
/// identities in the leaves, the registrant joined the public inputs; `elig3`: its Poseidon
/// permutations on the permutation gate).
pub const ELIGIBILITY_FAMILY: &str = "elig3";

/// Everything that fixes a circuit: its identity and its halo2 configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CircuitConfig {
    /// `agg2-<schema hash prefix>-n<capacity>-k<k>` or `elig3-<schema hash prefix>-b<batch>-k<k>`
    /// ([`AGGREGATE_FAMILY`], [`ELIGIBILITY_FAMILY`]).
    pub circuit_id: String,
    /// The dataset schema.
    pub schema: Schema,
    /// Which circuit.
    pub shape: CircuitShape,
    /// halo2-base column configuration.
    pub params: BaseCircuitParams,
    /// Where halo2-base breaks its virtual column into physical columns (set by key generation).
    pub break_points: Vec<Vec<usize>>,
}

/// What kind of universal params built a key (and so a verifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamsKind {
    /// The development params of [`dev_params`]: their secret is derived from a public label
    /// ([`DEV_SEED_LABEL`]), so anyone can forge proofs. Local chains only.
    DevInsecure,
    /// Params loaded from a file (e.g. a public powers-of-tau ceremony), checked against the
    /// SHA-256 the user gave.
    File,
}

/// Identity of the universal params a verifying key was built from: written into every
/// generated verifier's header and its `verifiers.json` entry (`"params"`).
///
/// `kind` is [`ParamsKind::DevInsecure`] whenever `[s]₂` is the dev secret's, whatever the
/// source (a file holding the dev params is still dev params). `sha256` (0x-prefixed hex) is
/// the SHA-256 of the params file's bytes for file params (verified against `--params-sha256`
/// when loaded; the file may hold a larger `k`, downsized to `k` here), and of the halo2 raw
/// serialization of the dev params at `k` for dev params (the bytes of the cached
/// `params/kzg_bn254_dev_k<k>.srs`, and of the file one would get by exporting them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsFingerprint {
    /// Dev or file params.
    pub kind: ParamsKind,
    /// SHA-256, 0x-prefixed hex: of the file's bytes, or of the dev params' serialization.
    pub sha256: String,
    /// `k` of the params the key was built with (the circuit's `k`).
    pub k: u32,
}

impl ParamsFingerprint {
    /// The fingerprint of `params` loaded from `source` (see [`KeyStore::params`]): the one
    /// place it is derived.
    pub fn of(source: &ParamsSource, params: &ParamsKZG<Bn256>) -> Self {
        let kind = if is_dev_params(params) {
            ParamsKind::DevInsecure
        } else {
            ParamsKind::File
        };
        let sha256 = match source {
            // Checked against the file by `KeyStore::params`.
            ParamsSource::File { sha256, .. } => {
                sha256.trim_start_matches("0x").to_ascii_lowercase()
            }
            ParamsSource::Dev => params_sha256(params),
        };
        ParamsFingerprint {
            kind,
            sha256: format!("0x{sha256}"),
            k: params.k(),
        }
    }

    /// Whether these are the insecure development params.
    pub fn is_dev(&self) -> bool {
        self.kind == ParamsKind::DevInsecure
    }

    /// One line for a generated source's header or a log.
    pub fn describe(&self) -> String {
        match self.kind {
            ParamsKind::DevInsecure => format!(
                "dev-insecure, k = {}, sha256 {} (INSECURE development params from a public \
                 seed: anyone can forge proofs; local chains only)",
                self.k, self.sha256
            ),
            ParamsKind::File => format!("file, k = {}, sha256 {}", self.k, self.sha256),
        }
    }
}

/// The dev secret `s`, derived from [`DEV_SEED_LABEL`].
fn dev_secret() -> Fr {
    let seed: [u8; 32] = Sha256::digest(DEV_SEED_LABEL.as_bytes()).into();
    Fr::random(ChaCha20Rng::from_seed(seed))
}

/// Whether `params` share the dev secret (their `[s]₂` is the dev one), at any `k`.
pub fn is_dev_params(params: &ParamsKZG<Bn256>) -> bool {
    params.g2() == G2Affine::generator()
        && params.s_g2() == (G2Affine::generator() * dev_secret()).to_affine()
}

/// SHA-256 (hex) of the halo2 raw serialization of `params` (what [`ParamsKZG::write`] writes:
/// the format of params files), streamed into the hash.
pub fn params_sha256(params: &ParamsKZG<Bn256>) -> String {
    let mut h = Sha256::new();
    params.write(&mut h).expect("hashing does not fail");
    hex::encode(h.finalize())
}

/// A temporary file beside `path`, unique to this writer: two processes or threads caching
/// the same params or key at once each write their own and rename it into place (the same
/// content either way), instead of one renaming away the other's half-written file.
fn unique_tmp(path: &Path) -> PathBuf {
    path.with_extension(format!("{:016x}.tmp", rand::random::<u64>()))
}

/// Caches a proving key at `path` (its directory created), through a temporary file
/// ([`unique_tmp`]).
fn write_pk(path: &Path, pk: &ProvingKey<G1Affine>) -> Result<(), ProofError> {
    let dir = path.parent().expect("a key file has a directory");
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = unique_tmp(path);
    let mut w = BufWriter::new(fs::File::create(&tmp).map_err(io_err(&tmp))?);
    pk.write(&mut w, SerdeFormat::RawBytesUnchecked)
        .map_err(io_err(&tmp))?;
    drop(w);
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Proving key, verifying key and configuration of one circuit.
pub struct CircuitKeys {
    /// Configuration.
    pub config: CircuitConfig,
    /// The params the keys were built from.
    pub params: ParamsFingerprint,
    /// Proving key.
    pub pk: ProvingKey<G1Affine>,
    /// SHA-256 of the serialized verifying key, hex.
    pub vk_hash: String,
}

/// What fixes a commit-and-prove aggregate circuit over a schema, as a dataset's commitment
/// (`fold.json`) and a proof artifact record it: its [`FoldParams`] are derived from it and the
/// schema ([`FoldSpec::params`]), its `k` from those, its keys from them and the universal
/// params (deterministically, so a verifier re-derives the verifying key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldSpec {
    /// Record slots.
    pub capacity: usize,
    /// Salt-derived masking rows per data column (they fix the query budget).
    pub mask_rows: usize,
    /// Data columns `W` (records spread over `W` columns: more is faster to prove and costs
    /// more gas to verify).
    pub data_columns: usize,
    /// The statistics every proof accumulates (indices among the schema's value columns, as a
    /// query names its statistic); a query may release any one of them.
    pub statistics: Vec<usize>,
    /// The strata every proof releases one cell of (`None`: one cell, the whole cohort).
    /// Absent from the JSON of an unstratified spec, which therefore reads as it always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strata: Option<FoldStrata>,
    /// An attestation circuit: every proof releases a verdict on the statistic's mean instead
    /// of numbers (a query with `attest`). Absent from the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attestation: bool,
    /// The rounding every released count and sum gets (`nearest5`, `midpoint6`; absent:
    /// exact). Absent from the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<Rounding>,
    /// The dominance rule on the released sum (`{"percent": k}`: a cell whose two largest
    /// values make more than `k` % of its sum is suppressed). Absent from the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominance: Option<Dominance>,
}

/// The strata of a fold circuit as a spec names them: the records split by the code of one
/// value column (codes `0 .. count`: a categorical column's first `count` codes, an integer
/// column's `min .. min + count`), each stratum a released cell
/// ([`crate::circuit::fast::fold::Strata`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldStrata {
    /// The column, as an index among the schema's value columns.
    pub column: usize,
    /// Number of strata (2 ..= [`crate::circuit::fast::fold::MAX_STRATA`]).
    pub count: usize,
}

impl FoldSpec {
    /// The circuit parameters over `schema`.
    pub fn params(&self, schema: &FoldSchema) -> Result<FoldParams, FoldSchemaError> {
        let mut params = schema.fold_params(
            self.capacity,
            self.mask_rows,
            self.data_columns,
            &self.statistics,
        )?;
        if let Some(s) = self.strata {
            params.strata = Some(schema.strata(s.column, s.count)?);
        }
        params.attestation = self.attestation;
        params.rounding = self.rounding;
        params.dominance = self.dominance;
        Ok(params)
    }

    /// The spec a fold circuit id names over `schema` (the inverse of
    /// [`FoldSchema::circuit_id`] at the params' [`FoldParams::min_k`]): the id's statistics,
    /// fold field indices, are mapped back to value-column indices, and the id re-derived
    /// from the parsed spec must be `circuit_id` itself (so its schema hash prefix, `k` and
    /// number formats are this build's).
    pub fn from_circuit_id(schema: &Schema, circuit_id: &str) -> Result<Self, FoldIdError> {
        let bad = || FoldIdError::NotAFoldId(circuit_id.to_owned());
        let parts: Vec<&str> = circuit_id.split('-').collect();
        // `[-t<field>x<count>][-v][-r5|-r6][-d<k>]` sit between the statistics and `-k`; their order
        // is checked by re-deriving the id below.
        let (family, prefix, n, m, w, s, optional, k) = match parts.as_slice() {
            [family, prefix, n, m, w, s, optional @ .., k] => {
                (family, prefix, n, m, w, s, optional, k)
            }
            _ => return Err(bad()),
        };
        let mut t = None;
        let mut attestation = false;
        let mut rounding = None;
        let mut dominance = None;
        for &part in optional {
            let percent = part
                .strip_prefix('d')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u8>().ok());
            if part == "v" && !attestation {
                attestation = true;
            } else if let Some(r) = Rounding::ALL.into_iter().find(|r| r.tag() == part) {
                if rounding.replace(r).is_some() {
                    return Err(bad());
                }
            } else if let Some(percent) = percent {
                if dominance.replace(Dominance { percent }).is_some() {
                    return Err(bad());
                }
            } else if part.starts_with('t') && t.is_none() {
                t = Some(part);
            } else {
                return Err(bad());
            }
        }
        if *family != fast::record::FOLD_FAMILY {
            return Err(bad());
        }
        let number = |part: &str, tag: char| {
            part.strip_prefix(tag)
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<usize>().ok())
                .ok_or_else(bad)
        };
        let (capacity, mask_rows, data_columns) =
            (number(n, 'n')?, number(m, 'm')?, number(w, 'w')?);
        number(k, 'k')?;
        let schema_prefix = hex::encode(&schema.hash()[..4]);
        if *prefix != schema_prefix {
            return Err(FoldIdError::OtherSchema {
                circuit_id: circuit_id.to_owned(),
                schema: schema.name.clone(),
                prefix: schema_prefix,
            });
        }
        let fold = FoldSchema::of(schema)?;
        let values = schema.value_columns().count();
        let statistics = s
            .strip_prefix('s')
            .ok_or_else(bad)?
            .split('_')
            .map(|f| {
                let field = number(&format!("s{f}"), 's')?;
                (0..values)
                    .find(|&i| fold.statistic_field(i).ok() == Some(field))
                    .ok_or(FoldIdError::NoStatistic {
                        circuit_id: circuit_id.to_owned(),
                        field,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // `t<field>x<count>`: the strata's fold field and count.
        let strata = match t {
            None => None,
            Some(t) => {
                let (field, count) = t
                    .strip_prefix('t')
                    .and_then(|t| t.split_once('x'))
                    .ok_or_else(bad)?;
                let (field, count) = (
                    number(&format!("t{field}"), 't')?,
                    number(&format!("x{count}"), 'x')?,
                );
                let column = (0..values)
                    .find(|&i| fold.statistic_field(i).ok() == Some(field))
                    .ok_or_else(bad)?;
                Some(FoldStrata { column, count })
            }
        };
        let spec = FoldSpec {
            capacity,
            mask_rows,
            data_columns,
            statistics,
            strata,
            attestation,
            rounding,
            dominance,
        };
        let params = spec.params(&fold)?;
        let planned = fold.circuit_id(&params, params.min_k());
        if planned != circuit_id {
            return Err(FoldIdError::Planned {
                circuit_id: circuit_id.to_owned(),
                planned,
            });
        }
        Ok(spec)
    }
}

/// Why a circuit id does not name a fold circuit over a schema ([`FoldSpec::from_circuit_id`]).
#[derive(Debug, thiserror::Error)]
pub enum FoldIdError {
    /// Not of the form `fold3-<schema>-n<capacity>-m<mask rows>-w<W>-s<fields>[-t<field>x<strata>][-v][-r5|-r6][-d<percent>]-k<k>`.
    #[error("`{0}` is not a fold circuit id (fold3-<schema>-n<capacity>-m<mask rows>-w<data columns>-s<fields>[-t<field>x<strata>][-v][-r5|-r6][-d<percent>]-k<k>)")]
    NotAFoldId(String),
    /// The id's schema hash prefix is not the schema's.
    #[error("circuit {circuit_id} is not over schema `{schema}` (whose hash starts {prefix})")]
    OtherSchema {
        /// The id.
        circuit_id: String,
        /// The schema's name.
        schema: String,
        /// The schema's hash prefix.
        prefix: String,
    },
    /// A statistic field that is no value column's field.
    #[error(
        "circuit {circuit_id} accumulates fold field {field}, which is no statistic of the schema"
    )]
    NoStatistic {
        /// The id.
        circuit_id: String,
        /// The fold field index.
        field: usize,
    },
    /// The schema has no fold mapping, or the spec is not a valid fold circuit over it.
    #[error(transparent)]
    FoldSchema(#[from] FoldSchemaError),
    /// The spec parsed from the id plans another id (another `k`, or a non-canonical number).
    #[error("circuit id {circuit_id} parses to a circuit whose id is {planned}: another version of the fold circuit")]
    Planned {
        /// The id.
        circuit_id: String,
        /// The id the parsed spec plans.
        planned: String,
    },
}

/// Proving key of a commit-and-prove aggregate circuit ([`crate::circuit::fast`], design N(W)),
/// with the schema mapping and parameters it was generated for. Its keys are fixed by the
/// [`FoldParams`] alone (no halo2-base configuration to plan).
pub struct FoldKeys {
    /// The circuit's id ([`FoldSchema::circuit_id`]).
    pub circuit_id: String,
    /// The schema's mapping onto fold fields.
    pub schema: FoldSchema,
    /// The circuit's parameters.
    pub shape: FoldParams,
    /// Its `k`.
    pub k: u32,
    /// The params the keys were built from.
    pub params: ParamsFingerprint,
    /// Proving key.
    pub pk: ProvingKey<G1Affine>,
    /// SHA-256 of the serialized verifying key, hex.
    pub vk_hash: String,
}

impl CircuitConfig {
    /// The aggregate circuit for `layout`: see [`CircuitConfig::plan_shape`].
    pub fn plan(schema: &Schema, layout: &RecordLayout) -> Self {
        Self::plan_shape(schema, CircuitShape::Aggregate(layout.clone()))
    }

    /// The eligibility circuit for `batch` patients: see [`CircuitConfig::plan_shape`].
    pub fn plan_eligibility(schema: &Schema, batch: usize) -> Self {
        assert!(batch >= 1, "a batch holds at least one patient");
        Self::plan_shape(schema, CircuitShape::Eligibility { batch })
    }

    /// Picks the smallest `k` whose layout fits in [`MAX_ADVICE_COLUMNS`] advice columns.
    pub fn plan_shape(schema: &Schema, shape: CircuitShape) -> Self {
        // Cells: ~1,000 per aggregate record, ~1,500 per eligibility slot (its 24 Poseidon
        // permutations are on the permutation gate, 73 rows each). Start a little below the
        // estimate and walk up.
        let (cells, rows) = match &shape {
            CircuitShape::Aggregate(layout) => (1000 * layout.capacity, 0),
            CircuitShape::Eligibility { batch } => {
                (1_500 * batch, 24 * ROWS_PER_PERMUTATION * batch)
            }
        };
        let estimate = (cells / MAX_ADVICE_COLUMNS).max(rows).max(1 << 10);
        let mut k = (usize::BITS - estimate.leading_zeros())
            .saturating_sub(1)
            .max(10) as usize;
        let mut config = CircuitConfig {
            circuit_id: String::new(),
            schema: schema.clone(),
            shape,
            params: BaseCircuitParams::default(),
            // Known only after key generation has laid the circuit out.
            break_points: Vec::new(),
        };
        loop {
            let mut circuit = config.circuit(keygen_builder(k));
            config.build_dummy(&mut circuit);
            let params = circuit.builder.calculate_params(Some(MIN_ROWS));
            let columns: usize = params.num_advice_per_phase.iter().sum::<usize>()
                + params.num_lookup_advice_per_phase.iter().sum::<usize>();
            // The permutation gate's rows, and the rows every column keeps for blinding.
            let fits = circuit.permutation_rows() + MIN_ROWS <= 1 << k;
            if columns <= MAX_ADVICE_COLUMNS && fits {
                let schema_hash = hex::encode(&schema.hash()[..4]);
                config.circuit_id = match &config.shape {
                    CircuitShape::Aggregate(layout) => {
                        format!("{AGGREGATE_FAMILY}-{schema_hash}-n{}-k{k}", layout.capacity)
                    }
                    CircuitShape::Eligibility { batch } => {
                        format!("{ELIGIBILITY_FAMILY}-{schema_hash}-b{batch}-k{k}")
                    }
                };
                config.params = params;
                return config;
            }
            k += 1;
        }
    }

    /// Plans the circuit an artifact records (see [`CircuitSpec`]), from its schema and shape
    /// alone: no recorded configuration is trusted.
    pub fn plan_spec(spec: &CircuitSpec) -> Self {
        Self::plan_shape(&spec.schema, spec.shape.clone())
    }

    /// The schema and shape of this circuit, as artifacts record them.
    pub fn spec(&self) -> CircuitSpec {
        CircuitSpec {
            schema: self.schema.clone(),
            shape: self.shape.clone(),
        }
    }

    /// Lays out the circuit with an all-zero witness (for planning and key generation).
    fn build_dummy(&self, circuit: &mut GatedCircuit) {
        match &self.shape {
            CircuitShape::Aggregate(layout) => {
                circuit::build(
                    &mut circuit.builder,
                    &self.schema,
                    layout,
                    &AggregateWitness::dummy(&self.schema, layout),
                );
            }
            CircuitShape::Eligibility { batch } => {
                eligibility::build(
                    circuit,
                    &self.schema,
                    &EligibilityWitness::dummy(&self.schema, *batch),
                );
            }
        }
    }

    /// An empty circuit of this shape around `builder`: eligibility circuits hash on the
    /// permutation gate, aggregate circuits are halo2-base's builder alone.
    pub fn circuit(&self, builder: BaseCircuitBuilder<Fr>) -> GatedCircuit {
        match self.permutation_gate() {
            true => GatedCircuit::with_permutation_gate(builder),
            false => GatedCircuit::plain(builder),
        }
    }

    /// The shape parameters halo2 reads keys with.
    pub fn gated_params(&self) -> GatedParams {
        GatedParams {
            base: self.params.clone(),
            permutation_gate: self.permutation_gate(),
        }
    }

    /// Whether the circuit has the permutation gate (it hashes: eligibility circuits).
    fn permutation_gate(&self) -> bool {
        matches!(self.shape, CircuitShape::Eligibility { .. })
    }

    /// The record layout of an aggregate circuit (`None` for eligibility circuits).
    pub fn layout(&self) -> Option<&RecordLayout> {
        match &self.shape {
            CircuitShape::Aggregate(layout) => Some(layout),
            CircuitShape::Eligibility { .. } => None,
        }
    }

    /// The batch size of an eligibility circuit (`None` for aggregate circuits).
    pub fn batch(&self) -> Option<usize> {
        match &self.shape {
            CircuitShape::Aggregate(_) => None,
            CircuitShape::Eligibility { batch } => Some(*batch),
        }
    }

    /// Number of public inputs.
    pub fn num_instances(&self) -> usize {
        match &self.shape {
            CircuitShape::Aggregate(_) => PublicInputs::len_for(&self.schema),
            CircuitShape::Eligibility { batch } => EligibilityPublic::len_for(&self.schema, *batch),
        }
    }

    /// `k` of the circuit.
    pub fn k(&self) -> u32 {
        self.params.k as u32
    }

    /// A circuit that synthesizes a witness with this configuration.
    pub fn prover_circuit(&self) -> GatedCircuit {
        self.circuit(BaseCircuitBuilder::prover(
            self.params.clone(),
            self.break_points.clone(),
        ))
    }
}

/// An empty builder in key-generation (and MockProver) mode at `k`, with the lookup bits and the
/// one instance column every circuit here uses.
pub(crate) fn keygen_builder(k: usize) -> BaseCircuitBuilder<Fr> {
    BaseCircuitBuilder::new(false)
        .use_k(k)
        .use_lookup_bits(k - 1)
        .use_instance_columns(1)
}

impl KeyStore {
    /// A store rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>, source: ParamsSource) -> Self {
        KeyStore {
            dir: dir.into(),
            source,
        }
    }

    /// Universal params for exactly `k`.
    pub fn params(&self, k: u32) -> Result<ParamsKZG<Bn256>, ProofError> {
        let mut params = match &self.source {
            ParamsSource::Dev => {
                let path = self
                    .dir
                    .join("params")
                    .join(format!("kzg_bn254_dev_k{k}.srs"));
                tracing::warn!(
                    k,
                    "using INSECURE dev KZG params from a public seed: proofs are forgeable"
                );
                if path.exists() {
                    read_params(&path)?
                } else {
                    tracing::info!(k, path = %path.display(), "generating dev params");
                    let params = dev_params(k);
                    let tmp = unique_tmp(&path);
                    fs::create_dir_all(path.parent().expect("has parent"))
                        .map_err(io_err(&path))?;
                    let mut w = BufWriter::new(fs::File::create(&tmp).map_err(io_err(&tmp))?);
                    params.write(&mut w).map_err(io_err(&tmp))?;
                    drop(w);
                    fs::rename(&tmp, &path).map_err(io_err(&path))?;
                    params
                }
            }
            ParamsSource::File { path, sha256 } => {
                let actual = sha256_file(path)?;
                if !actual.eq_ignore_ascii_case(sha256.trim_start_matches("0x")) {
                    return Err(ProofError::ParamsHash {
                        path: path.clone(),
                        expected: sha256.clone(),
                        actual,
                    });
                }
                read_params(path)?
            }
        };
        if params.k() < k {
            return Err(ProofError::ParamsTooSmall {
                have: params.k(),
                need: k,
            });
        }
        if params.k() > k {
            params.downsize(k);
        }
        Ok(params)
    }

    /// Plans the circuit for `schema` and `layout`, then loads (or generates and caches) its
    /// params and keys: what every prover and verifier-generator needs.
    pub fn circuit(
        &self,
        schema: &Schema,
        layout: &RecordLayout,
    ) -> Result<(ParamsKZG<Bn256>, CircuitKeys), ProofError> {
        self.load(CircuitConfig::plan(schema, layout))
    }

    /// Plans the eligibility circuit for `batch` patients, then loads its params and keys.
    pub fn eligibility_circuit(
        &self,
        schema: &Schema,
        batch: usize,
    ) -> Result<(ParamsKZG<Bn256>, CircuitKeys), ProofError> {
        self.load(CircuitConfig::plan_eligibility(schema, batch))
    }

    fn load(&self, config: CircuitConfig) -> Result<(ParamsKZG<Bn256>, CircuitKeys), ProofError> {
        let params = self.params(config.k())?;
        let keys = self.keys(&config, &params)?;
        Ok((params, keys))
    }

    /// The params at the smallest `k` that fits the fold circuit of `params` over `schema`,
    /// and its proving key: read from the cache, or generated (key generation is
    /// deterministic) and cached under
    /// `keys/<circuit id>-<schema hash>-<params fingerprint>-<constraints digest>/`
    /// ([`FoldParams::constraints_digest`]: a circuit changed under the same id is keyed anew).
    pub fn fold_circuit(
        &self,
        schema: &FoldSchema,
        params: &FoldParams,
    ) -> Result<(ParamsKZG<Bn256>, FoldKeys), ProofError> {
        let k = params.min_k();
        let kzg = self.params(k)?;
        let circuit_id = schema.circuit_id(params, k);
        let dir = self.dir.join("keys").join(format!(
            "{circuit_id}-{}-{}-{}",
            &hex::encode(schema.schema().hash())[..16],
            Self::fingerprint(&kzg),
            params.constraints_digest()
        ));
        let pk_path = dir.join("pk.bin");
        let pk = if pk_path.exists() {
            let mut r = BufReader::new(fs::File::open(&pk_path).map_err(io_err(&pk_path))?);
            ProvingKey::<G1Affine>::read::<_, FoldCircuit>(
                &mut r,
                SerdeFormat::RawBytesUnchecked,
                params.clone(),
            )
            .map_err(io_err(&pk_path))?
        } else {
            let bar = crate::progress::spinner(format!("keygen {circuit_id} (k = {k})"));
            let circuit = FoldCircuit::dummy(params, k)?;
            let pk = fast::keygen_circuit(&kzg, &circuit)
                .map_err(|e| ProofError::Halo2(format!("keygen: {e:?}")))?;
            write_pk(&pk_path, &pk)?;
            bar.finish_with_message(format!("keygen {circuit_id} done"));
            pk
        };
        let keys = FoldKeys {
            circuit_id,
            schema: schema.clone(),
            shape: params.clone(),
            k,
            params: ParamsFingerprint::of(&self.source, &kzg),
            vk_hash: vk_hash(pk.get_vk()),
            pk,
        };
        Ok((kzg, keys))
    }

    /// The fold circuit of `spec` over `schema` ([`KeyStore::fold_circuit`]).
    pub fn fold_keys(
        &self,
        schema: &Schema,
        spec: &FoldSpec,
    ) -> Result<(ParamsKZG<Bn256>, FoldKeys), ProofError> {
        let fold = FoldSchema::of(schema)?;
        let params = spec.params(&fold)?;
        self.fold_circuit(&fold, &params)
    }

    /// Short identity of a params set, naming its key cache directory: SHA-256 over `k`,
    /// `[1]₁` and `[s]₂`. What verifiers record is [`ParamsFingerprint`].
    pub fn fingerprint(params: &ParamsKZG<Bn256>) -> String {
        let mut h = Sha256::new();
        h.update(params.k().to_le_bytes());
        h.update(format!("{:?}{:?}", params.get_g()[0], params.s_g2()));
        hex::encode(&h.finalize()[..6])
    }

    fn key_dir(&self, config: &CircuitConfig, params: &ParamsKZG<Bn256>) -> PathBuf {
        self.dir.join("keys").join(format!(
            "{}-{}",
            config.circuit_id,
            Self::fingerprint(params)
        ))
    }

    /// Loads the keys for `config`, generating and caching them on first use. `params` are
    /// this store's (from [`KeyStore::params`]): the keys record their [`ParamsFingerprint`].
    pub fn keys(
        &self,
        config: &CircuitConfig,
        params: &ParamsKZG<Bn256>,
    ) -> Result<CircuitKeys, ProofError> {
        let dir = self.key_dir(config, params);
        let fingerprint = ParamsFingerprint::of(&self.source, params);
        let (pk_path, cfg_path) = (dir.join("pk.bin"), dir.join("config.json"));
        // A config from an older format is stale: fall through and regenerate the keys.
        let cached = fs::read(&cfg_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<CircuitConfig>(&b).ok())
            .filter(|cfg| cfg.shape == config.shape && cfg.schema == config.schema);
        if let (true, Some(cfg)) = (pk_path.exists(), cached) {
            let mut r = BufReader::new(fs::File::open(&pk_path).map_err(io_err(&pk_path))?);
            let pk = ProvingKey::<G1Affine>::read::<_, GatedCircuit>(
                &mut r,
                SerdeFormat::RawBytesUnchecked,
                cfg.gated_params(),
            )
            .map_err(io_err(&pk_path))?;
            let vk_hash = vk_hash(pk.get_vk());
            return Ok(CircuitKeys {
                config: cfg,
                params: fingerprint,
                pk,
                vk_hash,
            });
        }

        let bar =
            crate::progress::spinner(format!("keygen {} (k = {})", config.circuit_id, config.k()));
        bar.set_message(format!("keygen {}: verifying key", config.circuit_id));
        let (vk, circuit) = derive_vk(config, params)?;
        bar.set_message(format!("keygen {}: proving key", config.circuit_id));
        let pk = keygen_pk(params, vk, &circuit)
            .map_err(|e| ProofError::Halo2(format!("keygen_pk: {e:?}")))?;
        let mut config = config.clone();
        config.break_points = circuit.builder.break_points();
        bar.set_message(format!(
            "keygen {}: writing {}",
            config.circuit_id,
            dir.display()
        ));
        write_pk(&pk_path, &pk)?;
        write_vk(&dir, &config, pk.get_vk())?;
        bar.finish_with_message(format!("keygen {} done", config.circuit_id));
        let vk_hash = vk_hash(pk.get_vk());
        Ok(CircuitKeys {
            config,
            params: fingerprint,
            pk,
            vk_hash,
        })
    }

    /// The verifying key of `config` (planned, e.g. by [`CircuitConfig::plan_spec`]) for
    /// `params` (this store's): read from the cache if there, else derived
    /// ([`derive_vk`]: key generation is deterministic, so on any machine this is the key an
    /// honest prover of this circuit used) and cached, without a proving key. With `refresh`, any
    /// cached copy is ignored and replaced (a cached key that disagrees with an expected hash
    /// may be stale).
    pub fn verifying_key_for(
        &self,
        config: &CircuitConfig,
        params: &ParamsKZG<Bn256>,
        refresh: bool,
    ) -> Result<VerifyingKey<G1Affine>, ProofError> {
        let dir = self.key_dir(config, params);
        let (vk_path, cfg_path) = (dir.join("vk.bin"), dir.join("config.json"));
        let cached = (!refresh)
            .then(|| fs::read(&cfg_path).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice::<CircuitConfig>(&b).ok())
            .filter(|cfg| {
                cfg.shape == config.shape
                    && cfg.schema == config.schema
                    && serde_json::to_value(&cfg.params).ok()
                        == serde_json::to_value(&config.params).ok()
            });
        if let (Some(cfg), true) = (cached, vk_path.exists()) {
            let mut r = BufReader::new(fs::File::open(&vk_path).map_err(io_err(&vk_path))?);
            if let Ok(vk) = VerifyingKey::<G1Affine>::read::<_, GatedCircuit>(
                &mut r,
                SerdeFormat::RawBytes,
                cfg.gated_params(),
            ) {
                return Ok(vk);
            }
            tracing::warn!(path = %vk_path.display(), "unreadable cached verifying key: deriving it again");
        }
        let bar = crate::progress::spinner(format!(
            "deriving the verifying key of {} (k = {})",
            config.circuit_id,
            config.k()
        ));
        let (vk, circuit) = derive_vk(config, params)?;
        let mut config = config.clone();
        config.break_points = circuit.builder.break_points();
        write_vk(&dir, &config, &vk)?;
        bar.finish_and_clear();
        Ok(vk)
    }

    /// Loads only the verifying key and configuration of a circuit from the cache, as the
    /// prover's `keys` left them (see [`KeyStore::verifying_key_for`], which needs no cache).
    pub fn verifying_key(
        &self,
        circuit_id: &str,
        params: &ParamsKZG<Bn256>,
    ) -> Result<(CircuitConfig, VerifyingKey<G1Affine>), ProofError> {
        let dir = self
            .dir
            .join("keys")
            .join(format!("{circuit_id}-{}", Self::fingerprint(params)));
        let (vk_path, cfg_path) = (dir.join("vk.bin"), dir.join("config.json"));
        let cfg: CircuitConfig =
            serde_json::from_slice(&fs::read(&cfg_path).map_err(io_err(&cfg_path))?)
                .map_err(|e| ProofError::Artifact(format!("{}: {e}", cfg_path.display())))?;
        let mut r = BufReader::new(fs::File::open(&vk_path).map_err(io_err(&vk_path))?);
        let vk = VerifyingKey::<G1Affine>::read::<_, GatedCircuit>(
            &mut r,
            SerdeFormat::RawBytes,
            cfg.gated_params(),
        )
        .map_err(io_err(&vk_path))?;
        Ok((cfg, vk))
    }
}

/// Generates the verifying key of `config` from `params`, and returns it with the keygen
/// circuit (whose builder knows the break points the prover needs). Deterministic: the same
/// circuit and params give the same key, byte for byte, on any machine.
pub fn derive_vk(
    config: &CircuitConfig,
    params: &ParamsKZG<Bn256>,
) -> Result<(VerifyingKey<G1Affine>, GatedCircuit), ProofError> {
    let mut circuit =
        config.circuit(keygen_builder(config.params.k).use_params(config.params.clone()));
    config.build_dummy(&mut circuit);
    let vk =
        keygen_vk(params, &circuit).map_err(|e| ProofError::Halo2(format!("keygen_vk: {e:?}")))?;
    Ok((vk, circuit))
}

/// Writes `vk.bin` and `config.json` into a key directory, atomically.
fn write_vk(
    dir: &Path,
    config: &CircuitConfig,
    vk: &VerifyingKey<G1Affine>,
) -> Result<(), ProofError> {
    let vk_path = dir.join("vk.bin");
    let mut vk_bytes = Vec::new();
    vk.write(&mut vk_bytes, SerdeFormat::RawBytes)
        .map_err(io_err(&vk_path))?;
    let atomic = |path: &Path, bytes: &[u8]| {
        crate::dataset::write_atomic(path, bytes).map_err(|e| match e {
            crate::error::DatasetError::Io { path, source } => ProofError::Io { path, source },
            other => ProofError::Artifact(other.to_string()),
        })
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    atomic(&vk_path, &vk_bytes)?;
    atomic(
        &dir.join("config.json"),
        &serde_json::to_vec_pretty(config).expect("json"),
    )
}

/// SHA-256 of a verifying key's raw serialization, hex.
pub fn vk_hash(vk: &VerifyingKey<G1Affine>) -> String {
    let mut bytes = Vec::new();
    vk.write(&mut bytes, SerdeFormat::RawBytes)
        .expect("in-memory write");
    format!("0x{}", hex::encode(Sha256::digest(&bytes)))
}

fn read_params(path: &Path) -> Result<ParamsKZG<Bn256>, ProofError> {
    let mut r = BufReader::new(fs::File::open(path).map_err(io_err(path))?);
    ParamsKZG::<Bn256>::read(&mut r).map_err(io_err(path))
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ProofError> {
    let mut r = BufReader::new(fs::File::open(path).map_err(io_err(path))?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Insecure deterministic params for `k`: `[s^i]₁` and the Lagrange basis `[L_i(s)]₁` for a
/// public `s`, both by fixed-base windowed multiplication (8-bit windows, mixed additions).
/// halo2's own `setup` and `g_to_lagrange` do variable-base work per point and take minutes.
pub fn dev_params(k: u32) -> ParamsKZG<Bn256> {
    let s = dev_secret();
    let n = 1usize << k;

    // Monomial basis scalars s^i.
    let mut powers = Vec::with_capacity(n);
    let mut cur = Fr::ONE;
    for _ in 0..n {
        powers.push(cur);
        cur *= s;
    }
    // Lagrange basis over the 2^k roots of unity: L_i(s) = (s^n - 1)/n · ω^i / (s - ω^i).
    let mut omega = Fr::ROOT_OF_UNITY;
    for _ in k..Fr::S {
        omega = omega.square();
    }
    let mut omegas = Vec::with_capacity(n);
    let mut w = Fr::ONE;
    for _ in 0..n {
        omegas.push(w);
        w *= omega;
    }
    let mut denominators: Vec<Fr> = omegas.iter().map(|w| s - w).collect();
    denominators.iter_mut().batch_invert();
    let factor = (cur - Fr::ONE) * Fr::from(n as u64).invert().unwrap();
    let lagrange: Vec<Fr> = omegas
        .iter()
        .zip(&denominators)
        .map(|(w, d)| factor * w * d)
        .collect();

    let table = FixedBaseTable::new();
    let g = table.mul_all(&powers);
    let g_lagrange = table.mul_all(&lagrange);
    let g2 = G2Affine::generator();
    let s_g2 = (g2 * s).to_affine();
    ParamsKZG::<Bn256>::setup(1, ChaCha20Rng::from_seed([0; 32])).from_parts(
        k,
        g,
        Some(g_lagrange),
        g2,
        s_g2,
    )
}

/// `d · 2^(8w) · G` for every window `w` and byte `d`, in affine form.
struct FixedBaseTable(Vec<Vec<G1Affine>>);

impl FixedBaseTable {
    fn new() -> Self {
        let windows = Fr::NUM_BITS.div_ceil(8) as usize;
        let mut table = Vec::with_capacity(windows);
        let mut base = G1::generator();
        for _ in 0..windows {
            let mut row = vec![G1::identity(); 256];
            for d in 1..256 {
                row[d] = row[d - 1] + base;
            }
            base = row[255] + base;
            let mut affine = vec![G1Affine::identity(); 256];
            G1::batch_normalize(&row, &mut affine);
            table.push(affine);
        }
        FixedBaseTable(table)
    }

    fn mul_all(&self, scalars: &[Fr]) -> Vec<G1Affine> {
        let projective: Vec<G1> = scalars
            .par_iter()
            .map(|x| {
                let mut acc = G1::identity();
                for (w, byte) in x.to_repr().as_ref().iter().enumerate() {
                    if *byte != 0 {
                        acc += self.0[w][*byte as usize];
                    }
                }
                acc
            })
            .collect();
        let mut affine = vec![G1Affine::identity(); scalars.len()];
        G1::batch_normalize(&projective, &mut affine);
        affine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_spec_round_trips_through_its_circuit_id() {
        let schema = Schema::clinical_default();
        let fold = FoldSchema::of(&schema).unwrap();
        let values = schema.value_columns().count();
        let statistics: Vec<usize> = (0..values)
            .filter(|&i| fold.statistic_field(i).is_ok())
            .take(2)
            .collect();
        assert_eq!(
            statistics.len(),
            2,
            "the clinical schema has two statistics"
        );
        let spec = FoldSpec {
            capacity: 48,
            mask_rows: 16,
            data_columns: 2,
            statistics: vec![statistics[1], statistics[0]],
            strata: None,
            attestation: false,
            rounding: None,
            dominance: None,
        };
        let params = spec.params(&fold).unwrap();
        let id = fold.circuit_id(&params, params.min_k());
        assert_eq!(FoldSpec::from_circuit_id(&schema, &id).unwrap(), spec);

        let mut other = schema.clone();
        other.name.push_str("-other");
        assert!(matches!(
            FoldSpec::from_circuit_id(&other, &id),
            Err(FoldIdError::OtherSchema { .. })
        ));
        // Another k: the spec parses, but plans another id.
        let k = params.min_k();
        let bumped = id.replace(&format!("-k{k}"), &format!("-k{}", k + 1));
        assert!(matches!(
            FoldSpec::from_circuit_id(&schema, &bumped),
            Err(FoldIdError::Planned { .. })
        ));
        let padded = id.replace("-n48-", "-n048-");
        assert!(matches!(
            FoldSpec::from_circuit_id(&schema, &padded),
            Err(FoldIdError::Planned { .. })
        ));
        for garbage in [
            "",
            "fold3",
            "agg2-00000000-n48-k12",
            &id.replace("fold3", "fold2"),
            &id.replace("-w2-", "-w-"),
            &id.replace("-w2-", "-w+2-"),
            &id.replace("-s", "-x"),
            &format!("{id}-extra"),
        ] {
            assert!(
                matches!(
                    FoldSpec::from_circuit_id(&schema, garbage),
                    Err(FoldIdError::NotAFoldId(_))
                ),
                "{garbage}"
            );
        }
        // A field index that is no statistic's (field 9999).
        let stats = format!(
            "-s{}-",
            params
                .stats
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("_")
        );
        let no_stat = id.replace(&stats, "-s9999-");
        assert!(matches!(
            FoldSpec::from_circuit_id(&schema, &no_stat),
            Err(FoldIdError::NoStatistic { field: 9999, .. })
        ));
    }

    #[test]
    fn a_stratified_fold_spec_round_trips_through_its_circuit_id() {
        let schema = Schema::clinical_default();
        let fold = FoldSchema::of(&schema).unwrap();
        let column = |name: &str| {
            schema
                .value_columns()
                .position(|(_, c)| c.name == name)
                .unwrap()
        };
        let spec = FoldSpec {
            capacity: 48,
            mask_rows: 16,
            data_columns: 1,
            statistics: vec![column("bmi")],
            strata: Some(FoldStrata {
                column: column("sex"),
                count: 3,
            }),
            attestation: false,
            rounding: None,
            dominance: None,
        };
        let params = spec.params(&fold).unwrap();
        let id = fold.circuit_id(&params, params.min_k());
        let field = fold.statistic_field(column("sex")).unwrap();
        assert!(id.contains(&format!("-t{field}x3-")), "{id}");
        assert_eq!(FoldSpec::from_circuit_id(&schema, &id).unwrap(), spec);
        // The unstratified circuit is another circuit, with another id; so is an attestation.
        let plain = FoldSpec {
            strata: None,
            ..spec.clone()
        };
        let p = plain.params(&fold).unwrap();
        assert_ne!(fold.circuit_id(&p, p.min_k()), id);
        let attest = FoldSpec {
            attestation: true,
            ..plain.clone()
        };
        let p = attest.params(&fold).unwrap();
        let attest_id = fold.circuit_id(&p, p.min_k());
        assert!(attest_id.contains("-v-k"), "{attest_id}");
        assert_eq!(
            FoldSpec::from_circuit_id(&schema, &attest_id).unwrap(),
            attest
        );
        // A rounding rule is another circuit too, its tag last before `-k`.
        for (rule, tag) in [
            (Rounding::Nearest5, "-r5-k"),
            (Rounding::Midpoint6, "-r6-k"),
        ] {
            let round = FoldSpec {
                rounding: Some(rule),
                ..spec.clone()
            };
            let p = round.params(&fold).unwrap();
            let round_id = fold.circuit_id(&p, p.min_k());
            assert!(round_id.contains(&format!("x3{tag}")), "{round_id}");
            assert_eq!(
                FoldSpec::from_circuit_id(&schema, &round_id).unwrap(),
                round
            );
            let swapped = round_id.replace(
                &format!("-t{field}x3{}", &tag[..3]),
                &format!("{}-t{field}x3", &tag[..3]),
            );
            assert_ne!(swapped, round_id);
            assert!(
                FoldSpec::from_circuit_id(&schema, &swapped).is_err(),
                "{swapped}"
            );
            let twice = round_id.replace(tag, &format!("{}{tag}", &tag[..3]));
            assert!(
                matches!(
                    FoldSpec::from_circuit_id(&schema, &twice),
                    Err(FoldIdError::NotAFoldId(_))
                ),
                "{twice}"
            );
        }
        // So is the dominance rule, its tag after the rounding's.
        let dominant = FoldSpec {
            rounding: Some(Rounding::Midpoint6),
            dominance: Some(Dominance { percent: 85 }),
            ..plain.clone()
        };
        let p = dominant.params(&fold).unwrap();
        let dominant_id = fold.circuit_id(&p, p.min_k());
        assert!(dominant_id.contains("-r6-d85-k"), "{dominant_id}");
        assert_eq!(
            FoldSpec::from_circuit_id(&schema, &dominant_id).unwrap(),
            dominant
        );
        for bad in ["-r6-d85-d85-k", "-d85-r6-k", "-r6-d-k", "-r6-d300-k"] {
            let bad = dominant_id.replace("-r6-d85-k", bad);
            assert!(FoldSpec::from_circuit_id(&schema, &bad).is_err(), "{bad}");
        }
        for garbage in [
            id.replace(&format!("-t{field}x3-"), "-t-"),
            id.replace(&format!("-t{field}x3-"), &format!("-t{field}-")),
            id.replace(&format!("-t{field}x3-"), &format!("-u{field}x3-")),
            id.replace(&format!("-t{field}x3-"), "-t9999x3-"),
        ] {
            assert!(
                matches!(
                    FoldSpec::from_circuit_id(&schema, &garbage),
                    Err(FoldIdError::NotAFoldId(_))
                ),
                "{garbage}"
            );
        }
        // An ICD-10 column spans seven fields: no strata.
        let dx = FoldSpec {
            strata: Some(FoldStrata {
                column: column("dx"),
                count: 2,
            }),
            ..spec
        };
        assert!(matches!(
            dx.params(&fold),
            Err(FoldSchemaError::NotAStatistic { .. })
        ));
    }

    #[test]
    fn dev_params_match_halo2_setup_shape() {
        let p = dev_params(4);
        assert_eq!(p.k(), 4);
        assert_eq!(p.get_g()[0], G1Affine::generator());
        // e([s]₁, [1]₂) = e([1]₁, [s]₂): the G1 and G2 halves use the same secret.
        use halo2_base::halo2_proofs::halo2curves::pairing::Engine;
        let lhs = Bn256::pairing(&p.get_g()[1], &p.g2());
        let rhs = Bn256::pairing(&p.get_g()[0], &p.s_g2());
        assert_eq!(lhs, rhs);
        assert_eq!(dev_params(4).get_g()[7], p.get_g()[7], "deterministic");
        // The Lagrange basis matches halo2's own transform of the monomial basis.
        let halo2 = p.from_parts(4, p.get_g().to_vec(), None, p.g2(), p.s_g2());
        let bytes = |params: &ParamsKZG<Bn256>| {
            let mut v = Vec::new();
            params.write(&mut v).unwrap();
            v
        };
        assert_eq!(bytes(&halo2), bytes(&p));
    }

    fn sha(bytes: &[u8]) -> String {
        format!("0x{}", hex::encode(Sha256::digest(bytes)))
    }

    fn write(path: &Path, params: &ParamsKZG<Bn256>) -> String {
        let mut bytes = Vec::new();
        params.write(&mut bytes).unwrap();
        fs::write(path, &bytes).unwrap();
        sha(&bytes)
    }

    #[test]
    fn dev_params_fingerprint_is_the_hash_of_their_serialization() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path(), ParamsSource::Dev);
        let params = store.params(4).unwrap();
        let f = ParamsFingerprint::of(&store.source, &params);
        assert_eq!(f.kind, ParamsKind::DevInsecure);
        assert!(f.is_dev());
        assert_eq!(f.k, 4);
        // The bytes halo2 writes, which are the cached file's bytes.
        let mut bytes = Vec::new();
        params.write(&mut bytes).unwrap();
        assert_eq!(f.sha256, sha(&bytes));
        let cached = dir.path().join("params/kzg_bn254_dev_k4.srs");
        assert_eq!(f.sha256, format!("0x{}", sha256_file(&cached).unwrap()));
        // Deterministic, and per k.
        assert_eq!(ParamsFingerprint::of(&ParamsSource::Dev, &dev_params(4)), f);
        assert_ne!(
            ParamsFingerprint::of(&ParamsSource::Dev, &dev_params(5)).sha256,
            f.sha256
        );
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"kind": "dev-insecure", "sha256": f.sha256, "k": 4})
        );
        assert!(f.describe().contains("INSECURE"), "{}", f.describe());
    }

    #[test]
    fn file_params_fingerprint_is_the_hash_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // Params with another (random) secret, as a ceremony file would hold, at a larger k.
        let path = dir.path().join("ceremony.srs");
        let file_sha = write(
            &path,
            &ParamsKZG::<Bn256>::setup(5, ChaCha20Rng::from_seed([7; 32])),
        );
        let source = ParamsSource::File {
            path: path.clone(),
            // As a user may paste it: upper case, 0x-prefixed.
            sha256: file_sha.to_ascii_uppercase().replacen("0X", "0x", 1),
        };
        let store = KeyStore::new(dir.path(), source);
        let params = store.params(4).unwrap();
        let f = ParamsFingerprint::of(&store.source, &params);
        assert_eq!(
            f,
            ParamsFingerprint {
                kind: ParamsKind::File,
                sha256: file_sha.clone(),
                k: 4
            }
        );
        assert!(!f.is_dev() && !is_dev_params(&params));
        assert_eq!(serde_json::to_value(&f).unwrap()["kind"], "file");

        // A wrong hash is refused before the file is used.
        let wrong = KeyStore::new(
            dir.path(),
            ParamsSource::File {
                path,
                sha256: format!("{:064x}", 1),
            },
        );
        assert!(matches!(
            wrong.params(4),
            Err(ProofError::ParamsHash { .. })
        ));

        // A file holding the dev params is still dev params.
        let dev_path = dir.path().join("exported-dev.srs");
        let dev_sha = write(&dev_path, &dev_params(5));
        let store = KeyStore::new(
            dir.path(),
            ParamsSource::File {
                path: dev_path,
                sha256: dev_sha.clone(),
            },
        );
        let f = ParamsFingerprint::of(&store.source, &store.params(4).unwrap());
        assert_eq!(
            (f.kind, f.sha256, f.k),
            (ParamsKind::DevInsecure, dev_sha, 4)
        );
    }
}
