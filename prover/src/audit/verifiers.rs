//! Which verifier checked which circuit, when, and what it is: its code compared with the
//! deployment's verifiers (a verifier of another circuit in a circuit's place accepts proofs
//! of the wrong statement), and searched for the `[s]₂` of the insecure development params
//! (anyone can forge proofs for such a verifier).

use std::{collections::BTreeMap, path::Path, sync::OnceLock};

use alloy::primitives::{keccak256, Address, Bytes, B256};
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use serde::{Deserialize, Serialize};

use super::{
    anomaly::{Anomaly, Kind, Severity},
    model::{At, Contract, History, VerifierChange},
    AuditError,
};
use crate::{
    chain::{circuit_key, Deployment},
    keys::{dev_params, ParamsFingerprint},
};

/// The chain id of anvil (and of the demo): the only chain where development params are
/// expected.
pub const LOCAL_CHAIN_ID: u64 = 31337;

/// A circuit as the verifier manifest (`contracts/verifiers/verifiers.json`) records it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ManifestCircuit {
    /// The generated contract's name.
    #[serde(default)]
    pub contract: String,
    /// Circuit id.
    pub circuit_id: String,
    /// The params its verifying key (and verifier) were built from.
    #[serde(default)]
    pub params: Option<ParamsFingerprint>,
    /// SHA-256 of its verifying key, when recorded.
    #[serde(default)]
    pub vk_hash: Option<String>,
}

/// Reads a verifier manifest (contract name → entry).
pub fn load_manifest(path: &Path) -> Result<Vec<ManifestCircuit>, AuditError> {
    let bytes = std::fs::read(path).map_err(|source| AuditError::Io {
        path: path.to_owned(),
        source,
    })?;
    let map: BTreeMap<String, ManifestCircuit> =
        serde_json::from_slice(&bytes).map_err(|source| AuditError::Json {
            path: path.to_owned(),
            source,
        })?;
    Ok(map
        .into_iter()
        .map(|(contract, mut c)| {
            c.contract = contract;
            c
        })
        .collect())
}

/// The x coordinate of the development params' `[s]₂` as two 32-byte big-endian words (c0,
/// c1). A generated verifier embeds `-[s]₂` in its pairing check: the same x, the negated y;
/// either sign gives the dev secret away, so x alone identifies it.
pub fn dev_s_g2_words() -> &'static [[u8; 32]; 2] {
    static WORDS: OnceLock<[[u8; 32]; 2]> = OnceLock::new();
    WORDS.get_or_init(|| {
        // Every k shares the dev secret; k = 1 is the cheapest to build.
        let s = dev_params(1).s_g2();
        let be = |f: halo2_base::halo2_proofs::halo2curves::bn256::Fq| {
            let mut b: [u8; 32] = f.to_repr();
            b.reverse();
            b
        };
        [be(s.x.c0), be(s.x.c1)]
    })
}

/// Whether a verifier's code embeds the development params' `±[s]₂`.
pub fn uses_dev_params(code: &[u8]) -> bool {
    !code.is_empty()
        && dev_s_g2_words()
            .iter()
            .all(|w| code.windows(32).any(|c| c == w))
}

/// What the chain holds at a verifier's address.
#[derive(Clone, Debug, Serialize)]
pub struct Code {
    /// Runtime code size in bytes.
    pub size: usize,
    /// keccak256 of the runtime code.
    pub hash: B256,
    /// Whether it embeds the development params' `[s]₂`.
    pub dev_params: bool,
}

impl Code {
    /// Describes runtime code.
    pub fn of(code: &Bytes) -> Self {
        Code {
            size: code.len(),
            hash: keccak256(code),
            dev_params: uses_dev_params(code),
        }
    }
}

/// One verifier that served (or was proposed for) a circuit.
#[derive(Clone, Debug, Serialize)]
pub struct VerifierInfo {
    /// Which market.
    pub market: Contract,
    /// keccak256 of the circuit id.
    pub circuit: B256,
    /// The circuit id, when known.
    pub circuit_id: Option<String>,
    /// The verifier's address.
    pub address: Address,
    /// When it was set (`None`: before the first block read).
    pub since: Option<At>,
    /// Whether it was set when the market was constructed.
    pub initial: bool,
    /// When it was replaced or removed, if it was.
    pub until: Option<At>,
    /// Its code, if read.
    pub code: Option<Code>,
    /// Circuits of the deployment file whose verifier has the very same code.
    pub same_code_as: Vec<String>,
    /// The params the manifest records for this circuit.
    pub manifest_params: Option<ParamsFingerprint>,
}

impl VerifierInfo {
    /// Whether it serves its circuit at the audited block.
    pub fn current(&self) -> bool {
        self.until.is_none()
    }
}

/// The verifiers of both markets, from their `VerifierSet` events, with their code.
pub fn catalogue(
    h: &History,
    deployment: &Deployment,
    names: &BTreeMap<B256, String>,
    manifest: &[ManifestCircuit],
    code: &BTreeMap<Address, Bytes>,
) -> Vec<VerifierInfo> {
    let deployed: Vec<(String, B256)> = deployment
        .verifiers
        .iter()
        .filter_map(|(id, a)| code.get(a).map(|c| (id.clone(), keccak256(c))))
        .collect();
    let mut out: Vec<VerifierInfo> = Vec::new();
    for e in &h.verifier_events {
        let VerifierChange::Set {
            previous, verifier, ..
        } = e.change
        else {
            continue;
        };
        if let Some(prev) = out.iter_mut().find(|v| {
            v.market == e.market && v.circuit == e.circuit && v.address == previous && v.current()
        }) {
            prev.until = Some(e.at);
        }
        if verifier.is_zero() {
            continue;
        }
        let circuit_id = names.get(&e.circuit).cloned();
        let c = code.get(&verifier).map(Code::of);
        let same_code_as = c
            .as_ref()
            .map(|c| {
                deployed
                    .iter()
                    .filter(|(_, h)| *h == c.hash)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        out.push(VerifierInfo {
            market: e.market,
            circuit: e.circuit,
            manifest_params: circuit_id.as_ref().and_then(|id| {
                manifest
                    .iter()
                    .find(|m| &m.circuit_id == id)
                    .and_then(|m| m.params.clone())
            }),
            circuit_id,
            address: verifier,
            since: Some(e.at),
            initial: h.construction_tx(e.market) == Some(e.at.tx),
            until: None,
            code: c,
            same_code_as,
        });
    }
    out
}

/// Findings about verifiers: development params, another circuit's verifier, code nobody
/// recognises, a change without the notice period, replacements and removals.
pub fn anomalies(h: &History, infos: &[VerifierInfo], chain_id: u64) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let name = |v: &VerifierInfo| {
        v.circuit_id
            .clone()
            .unwrap_or_else(|| format!("circuit {}", v.circuit))
    };
    // Verifiers built from the development params: one finding names them all.
    let mut dev: Vec<(Address, String, Option<At>)> = Vec::new();
    for v in infos {
        let at = v.since;
        let finding = |severity, kind, message: String| Anomaly {
            severity,
            kind,
            query: None,
            trial: None,
            dataset: None,
            tx: at.map(|a| a.tx),
            block: at.map(|a| a.block),
            message,
        };
        let Some(code) = &v.code else {
            out.push(finding(
                Severity::Warning,
                Kind::UnrecognisedVerifier,
                format!(
                    "the code of {} (verifier of {}) could not be read",
                    v.address,
                    name(v)
                ),
            ));
            continue;
        };
        if code.dev_params && !dev.iter().any(|(a, _, _)| *a == v.address) {
            dev.push((v.address, name(v), at));
        }
        let own = v.circuit_id.as_ref();
        let others: Vec<&String> = v
            .same_code_as
            .iter()
            .filter(|id| Some(*id) != own)
            .collect();
        if !others.is_empty() && own.is_none_or(|id| !v.same_code_as.contains(id)) {
            out.push(finding(
                Severity::Critical,
                Kind::VerifierOfAnotherCircuit,
                format!(
                    "{} is checked by {}, whose code is the verifier of {}: it verifies another \
                     circuit's statement",
                    name(v),
                    v.address,
                    others
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        } else if v.same_code_as.is_empty() {
            out.push(finding(
                Severity::Warning,
                Kind::UnrecognisedVerifier,
                format!(
                    "{} is checked by {}, whose code ({} byte{}) is none of the deployment's \
                     verifiers: what it accepts cannot be told from its code; every proof it \
                     accepted is re-verified off-chain in this report",
                    name(v),
                    v.address,
                    code.size,
                    if code.size == 1 { "" } else { "s" }
                ),
            ));
        }
    }

    if let Some((_, _, first)) = dev.first() {
        let local = chain_id == LOCAL_CHAIN_ID;
        let list: Vec<String> = dev
            .iter()
            .map(|(a, circuit, _)| format!("{a} ({circuit})"))
            .collect();
        out.push(Anomaly {
            severity: if local {
                Severity::Notice
            } else {
                Severity::Critical
            },
            kind: Kind::DevParamsVerifier,
            query: None,
            trial: None,
            dataset: None,
            tx: first.map(|a| a.tx),
            block: first.map(|a| a.block),
            message: format!(
                "{} built from the INSECURE development KZG params (the code embeds their \
                 [s]₂), so anyone can forge proofs they accept: {}{}",
                if dev.len() == 1 {
                    "this verifier is"
                } else {
                    "these verifiers are"
                },
                list.join(", "),
                if local {
                    "; expected on a local test chain only"
                } else {
                    ""
                }
            ),
        });
    }

    // Changes: with notice, replacements and removals.
    for (i, e) in h.verifier_events.iter().enumerate() {
        let VerifierChange::Set {
            schema_hash,
            previous,
            verifier,
            num_constants,
            batch,
            cells,
            data_columns,
        } = e.change
        else {
            continue;
        };
        let finding = |severity, kind, message: String| Anomaly {
            severity,
            kind,
            query: None,
            trial: None,
            dataset: None,
            tx: Some(e.at.tx),
            block: Some(e.at.block),
            message,
        };
        let circuit = e.circuit;
        let label = infos
            .iter()
            .find(|v| v.circuit == circuit)
            .map(name)
            .unwrap_or_else(|| format!("circuit {circuit}"));
        if h.construction_tx(e.market) == Some(e.at.tx) {
            continue;
        }
        if verifier.is_zero() {
            out.push(finding(
                Severity::Notice,
                Kind::VerifierRemoved,
                format!(
                    "the {} owner removed the verifier {previous} of {label} (an emergency stop)",
                    e.market.name()
                ),
            ));
            continue;
        }
        let proposal = h.verifier_events[..i]
            .iter()
            .rev()
            .find_map(|p| match p.change {
                VerifierChange::Proposed {
                    schema_hash: s,
                    verifier: v,
                    num_constants: n,
                    batch: b,
                    cells: c,
                    data_columns: w,
                    eta,
                } if p.market == e.market && p.circuit == circuit => {
                    Some((s, v, (n, b, c, w), eta, p.at))
                }
                VerifierChange::Cancelled if p.market == e.market && p.circuit == circuit => None,
                _ => None,
            });
        match proposal {
            Some((s, v, shape, eta, proposed))
                if (s, v, shape)
                    == (
                        schema_hash,
                        verifier,
                        (num_constants, batch, cells, data_columns),
                    )
                    && eta <= e.at.time =>
            {
                out.push(finding(
                    Severity::Notice,
                    if previous.is_zero() {
                        Kind::VerifierAdded
                    } else {
                        Kind::VerifierReplaced
                    },
                    format!(
                        "the verifier of {label} in the {} became {verifier} (was {previous}), \
                         proposed at block {} and applied after its notice period",
                        e.market.name(),
                        proposed.block
                    ),
                ));
            }
            None if !h.saw_construction(e.market) => {}
            _ => out.push(finding(
                Severity::Critical,
                Kind::VerifierWithoutNotice,
                format!(
                    "the verifier of {label} in the {} became {verifier} without a matching \
                     proposal whose notice period had run out",
                    e.market.name()
                ),
            )),
        }
    }
    out
}

/// Every circuit id known by name, keyed by its keccak256.
pub fn circuit_names(ids: &[String]) -> BTreeMap<B256, String> {
    ids.iter().map(|id| (circuit_key(id), id.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned()
    }

    /// The committed verifiers are built from the dev params: their source holds the dev
    /// `[s]₂` words, which is what the bytecode search looks for.
    #[test]
    fn generated_verifiers_embed_the_dev_s_g2() {
        let dir = root().join("contracts/verifiers");
        let manifest = load_manifest(&dir.join("verifiers.json")).unwrap();
        assert!(!manifest.is_empty());
        for m in &manifest {
            let source = std::fs::read_to_string(dir.join(format!("{}.sol", m.contract))).unwrap();
            for w in dev_s_g2_words() {
                assert!(
                    source.contains(&format!("0x{}", hex::encode(w))),
                    "{}: {} of {:?}",
                    m.contract,
                    hex::encode(w),
                    dev_s_g2_words().map(hex::encode)
                );
            }
            assert!(m.params.as_ref().unwrap().is_dev());
        }
        let mut code = vec![0x60u8; 10];
        for w in dev_s_g2_words() {
            code.push(0x7f); // PUSH32
            code.extend_from_slice(w);
        }
        assert!(uses_dev_params(&code));
        assert!(!uses_dev_params(&code[..code.len() - 1]));
        assert!(!uses_dev_params(&[]));
    }
}
