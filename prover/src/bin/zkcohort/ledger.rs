//! `zkcohort dataset ledger DIR`: the answers a dataset has released (its disclosure ledger),
//! without the matching sets; and the disclosure check `prove` and `custodian claim` run before
//! they release anything (docs/data.md, "Disclosure control").

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde_json::json;
use zkcohort::{
    dataset::Dataset,
    disclosure::{Candidate, Ledger, LedgerFile, OnChainAnswer, Policy, LEDGER_FILE},
    query::QuerySpec,
};

use crate::{emit, Global};

/// `dataset ledger`: list the released answers.
#[derive(Args)]
pub(crate) struct LedgerArgs {
    /// Dataset directory.
    dir: PathBuf,
}

impl LedgerArgs {
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        let ledger = Ledger::read(&self.dir)?;
        // Everything but the custodian-private fields (matching sets, records digest).
        let rows: Vec<serde_json::Value> = ledger
            .entries
            .iter()
            .map(|e| {
                let mut row = json!({
                    "answered_at": e.answered_at,
                    "spec_hash": e.spec_hash,
                    "query_name": e.query_name,
                    "statistic": e.statistic,
                    "min_cohort": e.min_cohort,
                    "commitment": e.commitment,
                    "result": e.result,
                    "on_chain": e.on_chain,
                    "sponsor": e.sponsor,
                });
                if let Some(yes) = e.verdict {
                    row["verdict"] = json!(yes);
                }
                row
            })
            .collect();
        emit(
            g,
            json!({"ledger": self.dir.join(LEDGER_FILE), "answers": rows}),
            || {
                println!(
                    "{} answer(s) released from {}",
                    ledger.entries.len(),
                    self.dir.display()
                );
                for (i, e) in ledger.entries.iter().enumerate() {
                    let answer = match &e.on_chain {
                        Some(q) => format!(
                            "claimed query #{} (chain {}, market {}{})",
                            q.query_id,
                            q.chain_id,
                            q.market,
                            q.tx.as_deref()
                                .map(|t| format!(", tx {t}"))
                                .unwrap_or_default()
                        ),
                        None => "proved".into(),
                    };
                    let released = if let Some(yes) = e.verdict {
                        format!("attested: {}", if yes { "yes" } else { "no" })
                    } else if e.result.suppressed {
                        format!("suppressed (0 < n < {})", e.min_cohort)
                    } else {
                        format!("n = {}", e.result.count)
                    };
                    println!(
                        "{:>3}. {}  {answer}{}",
                        i + 1,
                        e.answered_at,
                        e.sponsor
                            .as_deref()
                            .map(|s| format!(" for sponsor {s}"))
                            .unwrap_or_default()
                    );
                    println!(
                        "     spec {} \"{}\": `{}`, {released}",
                        e.spec_hash, e.query_name, e.statistic
                    );
                }
            },
        );
        Ok(())
    }
}

/// Locks the ledger of dataset directory `dir`, and checks `spec` over `dataset` (as the
/// answer to `on_chain` posted by `sponsor`, for claims) against the policy (`policy`, else
/// `dir/policy.json`, else the defaults). Returns the answers to record: the cohort, or for a
/// proof stratified by schema column `strata.0` into `strata.1` strata, each cell
/// ([`Candidate::strata`]), each checked. The caller records them once the answer is released
/// and drops the lock.
pub(crate) fn admit(
    dir: &Path,
    policy: Option<&Path>,
    dataset: &Dataset,
    spec: &QuerySpec,
    on_chain: Option<(OnChainAnswer, String)>,
    strata: Option<(usize, usize)>,
) -> Result<(LedgerFile, Vec<Candidate>)> {
    let (policy, source) = Policy::for_dataset(dir, policy)?;
    let ledger = LedgerFile::open(dir)?;
    let mut candidate = Candidate::new(dataset, spec)?;
    if let Some((q, sponsor)) = on_chain {
        candidate = candidate.for_query(q, sponsor);
    }
    let released = match strata {
        Some((column, count)) => candidate.strata(dataset, column, count),
        None => vec![candidate],
    };
    tracing::info!(
        "disclosure check ({source}: min_cohort_floor {}, min_difference {}, {}) against {} answer(s) in the ledger",
        policy.min_cohort_floor,
        policy.min_difference(),
        policy
            .max_answers_per_sponsor
            .map_or("no sponsor budget".into(), |m| format!("{m} answers per sponsor")),
        ledger.ledger().entries.len()
    );
    for candidate in &released {
        ledger.check(&policy, candidate)?;
    }
    Ok((ledger, released))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use clap::Parser;
    use zkcohort::{disclosure::Ledger, schema::Schema};

    use super::*;
    use crate::{run, Cli};

    fn repo(path: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
            .display()
            .to_string()
    }

    /// Runs the CLI with the repository's key cache (the capacity-48 key the other tests use).
    fn zkcohort(args: &[&str]) -> Result<()> {
        let cache = repo(".zkcohort");
        let argv = ["zkcohort", "--cache", cache.as_str()];
        run(Cli::try_parse_from(argv.iter().chain(args).copied())?)
    }

    fn query(dir: &Path, name: &str, ages: (u64, u64), min_cohort: u64) -> String {
        let path = dir.join(name);
        let spec = json!({
            "name": format!("HbA1c, ages {}-{}", ages.0, ages.1),
            "criteria": {"age": [ages.0, ages.1]},
            "consent": "research",
            "statistic": "hba1c",
            "min_cohort": min_cohort,
        });
        fs::write(&path, spec.to_string()).unwrap();
        path.display().to_string()
    }

    #[test]
    fn prove_refuses_the_differencing_query_and_records_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        // 20 consenting patients aged 40–59, one aged 65, 10 aged 20–29.
        let mut csv = String::from("age,sex,dx,hba1c,sbp,bmi,consent,site\n");
        for age in (40..60).chain([65]).chain(20..30) {
            csv += &format!(
                "{age},F,E11.9,{}.{},130,27.5,research,0\n",
                5 + age % 4,
                age % 10
            );
        }
        fs::write(t.join("records.csv"), csv).unwrap();
        let schema = t.join("schema.json");
        fs::write(
            &schema,
            serde_json::to_vec(&Schema::clinical_default()).unwrap(),
        )
        .unwrap();
        let d = t.join("h1");
        let ds = d.to_str().unwrap();
        let records = t.join("records.csv");
        zkcohort(&[
            "dataset",
            "import",
            "--schema",
            schema.to_str().unwrap(),
            "--csv",
            records.to_str().unwrap(),
            "--out",
            ds,
        ])
        .unwrap();
        zkcohort(&["dataset", "commit", "--dataset", ds, "--capacity", "48"]).unwrap();

        // Ages 40–65: 21 patients, answered and recorded.
        let a = query(t, "a.json", (40, 65), 11);
        let pa = t.join("a-proof.json");
        zkcohort(&[
            "prove",
            "--dataset",
            ds,
            "--query",
            &a,
            "--out",
            pa.to_str().unwrap(),
        ])
        .unwrap();
        assert!(pa.exists());
        let ledger = Ledger::read(&d).unwrap();
        assert_eq!(ledger.entries.len(), 1);
        assert_eq!(ledger.entries[0].result.count, 21);
        assert_eq!(ledger.entries[0].on_chain, None);
        let recorded = fs::read(d.join(LEDGER_FILE)).unwrap();
        zkcohort(&["dataset", "ledger", ds]).unwrap();

        // Ages 40–64: 20 patients, but together with the first answer it is the 65-year-old's
        // HbA1c. Refused before proving: no artifact, the ledger unchanged.
        let b = query(t, "b.json", (40, 64), 11);
        let pb = t.join("b-proof.json");
        let err = format!(
            "{:#}",
            zkcohort(&[
                "prove",
                "--dataset",
                ds,
                "--query",
                &b,
                "--out",
                pb.to_str().unwrap()
            ])
            .unwrap_err()
        );
        assert!(
            err.contains("b.json not proven")
                && err.contains("differ from those of an answered query")
                && err.contains("by 1 record(s)")
                && err.contains(&ledger.entries[0].spec_hash),
            "{err}"
        );
        assert!(!pb.exists());
        assert_eq!(fs::read(d.join(LEDGER_FILE)).unwrap(), recorded);

        // A min_cohort below the floor: refused whatever the records.
        let low = query(t, "low.json", (18, 39), 5);
        let err = format!(
            "{:#}",
            zkcohort(&[
                "prove",
                "--dataset",
                ds,
                "--query",
                &low,
                "--out",
                pb.to_str().unwrap()
            ])
            .unwrap_err()
        );
        assert!(err.contains("below this custodian's floor of 11"), "{err}");
        // A policy file that names an unknown key is an error, not the defaults.
        let policy = t.join("policy.json");
        fs::write(&policy, r#"{"min_cohort_flor": 5}"#).unwrap();
        let err = format!(
            "{:#}",
            zkcohort(&[
                "prove",
                "--dataset",
                ds,
                "--query",
                &low,
                "--out",
                pb.to_str().unwrap(),
                "--policy",
                policy.to_str().unwrap()
            ])
            .unwrap_err()
        );
        assert!(err.contains("unknown field"), "{err}");

        // A corrupt ledger stops proving instead of being reset.
        fs::write(d.join(LEDGER_FILE), &recorded[..recorded.len() / 2]).unwrap();
        let err = format!(
            "{:#}",
            zkcohort(&[
                "prove",
                "--dataset",
                ds,
                "--query",
                &a,
                "--out",
                pb.to_str().unwrap()
            ])
            .unwrap_err()
        );
        assert!(
            err.contains("unreadable") && err.contains("not reset"),
            "{err}"
        );
        assert!(!pb.exists());
        assert_eq!(
            fs::read(d.join(LEDGER_FILE)).unwrap(),
            &recorded[..recorded.len() / 2]
        );
        assert!(zkcohort(&["dataset", "ledger", ds]).is_err());
        for e in fs::read_dir(&d).unwrap() {
            let name = e.unwrap().file_name();
            assert!(
                !name.to_string_lossy().ends_with(".tmp"),
                "{name:?} left over"
            );
        }
    }
}
