//! Published spec documents checked against what was posted: the document must hash to the
//! posted spec hash, and compile (for the targets' schema) to exactly the posted constants.

use alloy::primitives::{B256, U256};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::model::PublishedSpec;
use crate::{
    chain::fr_to_u256,
    circuit::fast::record::FoldSchema,
    query::{QueryConstants, QuerySpec},
    schema::Schema,
    trial::TrialSpec,
};

/// What a published spec says and whether it is the one posted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpecCheck {
    /// Whether the sponsor published the document on-chain.
    pub published: bool,
    /// The document's name (its `name` field), when it parses.
    pub name: Option<String>,
    /// The document as text, when it is UTF-8.
    pub text: Option<String>,
    /// Whether it hashes (SHA-256 of its bytes, or of its canonical JSON) to the posted hash.
    pub hash_matches: Option<bool>,
    /// Whether it compiles to exactly the posted constants (needs the schema).
    pub constants_match: Option<bool>,
    /// A query spec's compiled constants, when they are exactly the posted ones: how the
    /// audit reads constants posted in a layout it does not decode (the fold circuits').
    #[serde(skip)]
    pub query: Option<QueryConstants>,
    /// What is wrong, in words.
    pub problems: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Trial,
}

/// A parsed spec: its name, its canonical hash, and (given a schema) its compiled constants.
type Parsed = (String, B256, Option<Result<Vec<U256>, String>>);

fn check(
    spec: Option<&PublishedSpec>,
    posted_hash: B256,
    posted: &[U256],
    schema: Option<&Schema>,
    kind: Kind,
) -> SpecCheck {
    let Some(spec) = spec else {
        return SpecCheck::default();
    };
    let mut out = SpecCheck {
        published: true,
        text: String::from_utf8(spec.bytes.to_vec()).ok(),
        ..SpecCheck::default()
    };
    if spec.indexed_hash != posted_hash {
        out.problems.push(format!(
            "published under hash {}, posted with {}",
            spec.indexed_hash, posted_hash
        ));
    }
    let raw = B256::from(<[u8; 32]>::from(Sha256::digest(&spec.bytes)));
    // The document, parsed, and its canonical hash and constants.
    let parsed: Option<Parsed> = match kind {
        Kind::Query => serde_json::from_slice::<QuerySpec>(&spec.bytes)
            .ok()
            .map(|q| {
                // Posted in the layout of the targets' circuits: the Poseidon circuits' or
                // the fold circuits' (their counts differ, so the count says which).
                let constants = schema.map(|s| {
                    let c = q.compile(s).map_err(|e| e.to_string())?;
                    let fold = FoldSchema::of(s)
                        .and_then(|f| f.query_constants(&c))
                        .ok()
                        .filter(|f| f.len() == posted.len());
                    Ok(fold
                        .unwrap_or_else(|| c.to_fields())
                        .iter()
                        .map(fr_to_u256)
                        .collect())
                });
                (q.name.clone(), B256::from(q.hash()), constants)
            }),
        Kind::Trial => serde_json::from_slice::<TrialSpec>(&spec.bytes)
            .ok()
            .map(|t| {
                let constants = schema.map(|s| {
                    t.compile(s)
                        .map(|c| c.to_fields().iter().map(fr_to_u256).collect())
                        .map_err(|e| e.to_string())
                });
                (t.name.clone(), B256::from(t.hash()), constants)
            }),
    };
    let canonical = parsed.as_ref().map(|p| p.1);
    let matches = raw == posted_hash || canonical == Some(posted_hash);
    out.hash_matches = Some(matches);
    if !matches {
        out.problems.push(format!(
            "the published document hashes to {raw}, not to the posted spec hash {posted_hash}"
        ));
    }
    match parsed {
        None => out.problems.push(format!(
            "the published document is not a {} spec",
            match kind {
                Kind::Query => "query",
                Kind::Trial => "trial",
            }
        )),
        Some((name, _, constants)) => {
            out.name = Some(name).filter(|n| !n.is_empty());
            match constants {
                Some(Ok(c)) => {
                    let same = c == posted;
                    out.constants_match = Some(same);
                    if !same {
                        out.problems.push(
                            "the published document compiles to other constants than those posted"
                                .into(),
                        );
                    }
                }
                Some(Err(e)) => {
                    out.constants_match = Some(false);
                    out.problems
                        .push(format!("the published document does not compile: {e}"));
                }
                None => {}
            }
        }
    }
    if kind == Kind::Query && out.constants_match == Some(true) {
        out.query = serde_json::from_slice::<QuerySpec>(&spec.bytes)
            .ok()
            .zip(schema)
            .and_then(|(q, s)| q.compile(s).ok());
    }
    out
}

/// Checks a query's published spec (if any) against its posted hash and constants.
pub fn query(
    spec: Option<&PublishedSpec>,
    posted_hash: B256,
    constants: &[U256],
    schema: Option<&Schema>,
) -> SpecCheck {
    check(spec, posted_hash, constants, schema, Kind::Query)
}

/// Checks a trial's published spec (if any) against its posted hash and criteria.
pub fn trial(
    spec: Option<&PublishedSpec>,
    posted_hash: B256,
    criteria: &[U256],
    schema: Option<&Schema>,
) -> SpecCheck {
    check(spec, posted_hash, criteria, schema, Kind::Trial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::model::At;

    fn published(bytes: &[u8], hash: B256) -> PublishedSpec {
        PublishedSpec {
            bytes: bytes.to_vec().into(),
            indexed_hash: hash,
            at: At {
                block: 1,
                log_index: 0,
                tx: B256::ZERO,
                time: 0,
            },
        }
    }

    #[test]
    fn a_spec_must_hash_to_the_posted_hash_and_compile_to_the_posted_constants() {
        let schema = Schema::clinical_default();
        let q: QuerySpec = serde_json::from_str(
            r#"{"name": "BMI", "criteria": {"age": [18, 127]}, "consent": "research", "statistic": "bmi"}"#,
        )
        .unwrap();
        let hash = B256::from(q.hash());
        let constants: Vec<U256> = q
            .compile(&schema)
            .unwrap()
            .to_fields()
            .iter()
            .map(fr_to_u256)
            .collect();
        let bytes = serde_json::to_vec(&q).unwrap();

        let ok = query(
            Some(&published(&bytes, hash)),
            hash,
            &constants,
            Some(&schema),
        );
        assert_eq!(ok.hash_matches, Some(true));
        assert_eq!(ok.constants_match, Some(true));
        assert!(ok.problems.is_empty(), "{:?}", ok.problems);
        assert_eq!(ok.name.as_deref(), Some("BMI"));

        // Pretty-printed: other bytes, same canonical document.
        let pretty = serde_json::to_vec_pretty(&q).unwrap();
        assert!(query(
            Some(&published(&pretty, hash)),
            hash,
            &constants,
            Some(&schema)
        )
        .problems
        .is_empty());

        // Another document under the posted hash.
        let mut other = q.clone();
        other.criteria.clear();
        let bad = query(
            Some(&published(&serde_json::to_vec(&other).unwrap(), hash)),
            hash,
            &constants,
            Some(&schema),
        );
        assert_eq!(bad.hash_matches, Some(false));
        assert_eq!(bad.constants_match, Some(false));
        assert_eq!(bad.problems.len(), 2, "{:?}", bad.problems);

        // Not a spec at all.
        let junk = query(
            Some(&published(b"\xff\x00", hash)),
            hash,
            &constants,
            Some(&schema),
        );
        assert!(junk.text.is_none() && junk.problems.len() == 2);

        // Not published: nothing to check.
        assert_eq!(
            query(None, hash, &constants, Some(&schema)),
            SpecCheck::default()
        );
    }
}
