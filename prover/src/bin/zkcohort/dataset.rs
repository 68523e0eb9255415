//! `zkcohort dataset …`: synthetic cohorts, CSV and FHIR import, commitment, inspection.
//! docs/data.md describes the formats, encodings and the FHIR mapping file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkcohort::{
    commitment::RecordLayout,
    dataset::{
        write_atomic, CommitOutcome, CsvOptions, Dataset, DatasetDir, IgnoredColumn, WriteOutcome,
    },
    fhir::{self, FhirImport, ImportReport, Mapping},
    schema::Schema,
};

use crate::{emit, Force, Global};

/// Dataset commands.
#[derive(Subcommand)]
pub(crate) enum DatasetCmd {
    /// Generate a synthetic cohort. Refuses to replace a committed dataset unless --force.
    Synth {
        /// Number of records (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        records: u64,
        /// RNG seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of sites.
        #[arg(long, default_value_t = 4)]
        sites: u64,
        /// Dataset directory to create.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        force: Force,
    },
    /// Import a CSV file, or FHIR R4 Bundles and NDJSON exports through a mapping file, under
    /// a schema. Every bad cell or field is reported (`file:line: column: why`, or `file:
    /// entry[i]: Type/id: field: why`) and nothing is written; an empty or header-only file, a
    /// repeated, missing or unknown header name (unless --ignore-extra) and a malformed ICD-10
    /// code are errors. Refuses to replace a committed dataset unless --force.
    Import(ImportArgs),
    /// Commit to a dataset with a fresh secret salt. Re-running it on a committed dataset is a
    /// no-op ("already committed"); a new salt (another capacity, changed records) needs
    /// --force.
    Commit {
        /// Dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Circuit capacity (records); rounded up to whole Merkle leaves. Default: the record
        /// count (or, if committed, the existing capacity).
        #[arg(long)]
        capacity: Option<usize>,
        #[command(flatten)]
        fold: crate::fold::FoldArgs,
        #[command(flatten)]
        force: Force,
    },
    /// Record the identity commitment a patient gave you against their record (the next
    /// commitment puts it in the record's membership leaf: then only the patient can enrol it).
    AddIdentity(crate::add_identity::AddIdentityArgs),
    /// Show a dataset's public facts.
    Inspect {
        /// Dataset directory.
        #[arg(long)]
        dataset: PathBuf,
    },
    /// List the answers the dataset has released (its disclosure ledger: query, sponsor, spec,
    /// result, time), without the matching sets.
    Ledger(crate::ledger::LedgerArgs),
}

/// `dataset import`: one CSV file, or FHIR files and directories with a mapping.
#[derive(Args)]
pub(crate) struct ImportArgs {
    /// Schema (JSON).
    #[arg(long)]
    schema: PathBuf,
    /// CSV with a header row.
    #[arg(long, required_unless_present = "fhir", conflicts_with = "fhir")]
    csv: Option<PathBuf>,
    /// Skip CSV columns the schema does not name (they are listed in the output); without it
    /// they are an error.
    #[arg(long, requires = "csv")]
    ignore_extra: bool,
    /// FHIR R4 input: Bundle (.json) and bulk-export (.ndjson) files, or directories of them.
    #[arg(long, num_args = 1.., requires = "mapping")]
    fhir: Vec<PathBuf>,
    /// Mapping from FHIR resources to the schema's columns (docs/data.md).
    #[arg(long, requires = "fhir")]
    mapping: Option<PathBuf>,
    /// Also write the per-patient import report here (patient ids, their record index, the
    /// resource behind each value): as private as the records.
    #[arg(long, requires = "fhir")]
    report: Option<PathBuf>,
    /// Dataset directory to create.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    force: Force,
}

impl DatasetCmd {
    /// Runs the command.
    pub(crate) fn execute(self, g: &Global) -> Result<()> {
        match self {
            DatasetCmd::Synth {
                records,
                seed,
                sites,
                out,
                force,
            } => {
                let ds = Dataset::synthesize(records as usize, seed, sites);
                let outcome = DatasetDir::new(&out).write_dataset_with(&ds, force.overwrite())?;
                emit(
                    g,
                    json!({"dataset": out, "records": records, "outcome": written(&outcome)}),
                    || {
                        println!(
                            "{records} synthetic records {} {}",
                            written_verb(&outcome),
                            out.display()
                        );
                        print_history(written_history(&outcome));
                    },
                );
            }
            DatasetCmd::Import(args) => args.execute(g)?,
            DatasetCmd::Commit {
                dataset,
                capacity,
                fold,
                force,
            } => commit(g, &dataset, capacity, &fold, &force)?,
            DatasetCmd::Ledger(args) => args.execute(g)?,
            DatasetCmd::AddIdentity(args) => args.execute(g)?,
            DatasetCmd::Inspect { dataset } => {
                let dir = DatasetDir::new(&dataset);
                let c = dir.load_committed()?;
                let layout = RecordLayout::new(&c.dataset.schema, c.info.capacity);
                emit(
                    g,
                    json!({"info": c.info, "schema": c.dataset.schema, "records_per_element": layout.slots_per_element}),
                    || {
                        println!(
                            "schema {} ({} columns, {} bits per record)",
                            c.dataset.schema.name,
                            c.dataset.schema.columns.len(),
                            c.dataset.schema.record_bits()
                        );
                        println!(
                            "{} records, capacity {}, commitment {}",
                            c.info.record_count, c.info.capacity, c.info.commitment
                        );
                    },
                );
            }
        }
        Ok(())
    }
}

impl ImportArgs {
    fn execute(self, g: &Global) -> Result<()> {
        let schema = Schema::load(&self.schema)?;
        let (ds, ignored, report) = match (&self.csv, &self.mapping) {
            (Some(csv), _) => {
                let options = CsvOptions {
                    ignore_extra: self.ignore_extra,
                };
                let imported =
                    Dataset::import_csv_with(&schema, csv, options).map_err(import_errors)?;
                (imported.dataset, imported.ignored, None)
            }
            (None, Some(mapping)) => {
                let FhirImport { dataset, report } = self.import_fhir(&schema, mapping)?;
                (dataset, Vec::new(), Some(report))
            }
            (None, None) => bail!("give --csv, or --fhir with --mapping"),
        };
        let outcome = DatasetDir::new(&self.out).write_dataset_with(&ds, self.force.overwrite())?;
        let out = &self.out;
        let mut value =
            json!({"dataset": out, "records": ds.records.len(), "outcome": written(&outcome)});
        if self.csv.is_some() {
            value["ignored_columns"] = json!(ignored);
        }
        if let Some(report) = &report {
            value["report"] = report_summary(report);
        }
        emit(g, value, || {
            if let Some(report) = &report {
                print_report(report);
            }
            if !ignored.is_empty() {
                println!(
                    "ignored {} column(s) not in schema `{}`: {}",
                    ignored.len(),
                    schema.name,
                    ignored_list(&ignored)
                );
            }
            println!(
                "{} records {} {}",
                ds.records.len(),
                if outcome == WriteOutcome::Unchanged {
                    "already in"
                } else {
                    "imported to"
                },
                out.display()
            );
            print_history(written_history(&outcome));
        });
        Ok(())
    }

    /// Reads the FHIR inputs (a progress bar on a terminal), writes the per-patient report if
    /// asked, and refuses an import that found no patient to import.
    fn import_fhir(&self, schema: &Schema, mapping: &Path) -> Result<FhirImport> {
        let mapping = Mapping::load(mapping, schema)?;
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files {wide_msg}")
                .expect("valid template"),
        );
        let imported = fhir::import(schema, &mapping, &self.fhir, &mut |done, total, path| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(path.display().to_string());
        });
        bar.finish_and_clear();
        let imported = imported.map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("import failed, nothing written:\n  {}", lines.join("\n  "))
        })?;
        if let Some(path) = &self.report {
            write_atomic(path, &serde_json::to_vec_pretty(&imported.report)?)?;
        }
        let r = &imported.report;
        if imported.dataset.records.is_empty() {
            bail!(
                "no patient imported, nothing written: {} patient(s) read from {} file(s){}",
                r.patients_read,
                r.files,
                if r.skipped.is_empty() {
                    String::new()
                } else {
                    format!(", skipped: {}", counts(&r.skipped))
                }
            );
        }
        Ok(imported)
    }
}

/// The report without its per-patient lines (those go to --report only).
fn report_summary(report: &ImportReport) -> serde_json::Value {
    let mut value = serde_json::to_value(report).expect("json");
    if let Some(map) = value.as_object_mut() {
        map.remove("patients");
    }
    value
}

fn counts(map: &std::collections::BTreeMap<String, usize>) -> String {
    let mut items: Vec<(&String, &usize)> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn print_report(r: &ImportReport) {
    let other: usize = r.other_resources.values().sum();
    println!(
        "read {} file(s): {} resources ({} Patient, {} of types the mapping does not use)",
        r.files, r.resources, r.patients_read, other
    );
    println!("imported {} of {} patients", r.imported, r.patients_read);
    if !r.skipped.is_empty() {
        println!(
            "skipped {}: {}",
            r.skipped.values().sum::<usize>(),
            counts(&r.skipped)
        );
    }
    if !r.missing.is_empty() {
        println!("missing values (nullable columns): {}", counts(&r.missing));
    }
    if r.several_diagnoses > 0 {
        println!(
            "{} patient(s) had more than one diagnosis: the mapping's priority list chose one \
             each (many diagnoses per patient come with the fast circuits of #8)",
            r.several_diagnoses
        );
    }
    if r.partial_birth_dates > 0 {
        println!(
            "{} partial birth date(s): the first day of the year or month was used",
            r.partial_birth_dates
        );
    }
    if !r.unmapped_codes.is_empty() {
        let conditions: usize = r.unmapped_codes.iter().map(|c| c.conditions).sum();
        let shown: Vec<String> = r
            .unmapped_codes
            .iter()
            .take(10)
            .map(|c| {
                format!(
                    "{} {} \"{}\" ×{}",
                    c.system, c.code, c.display, c.conditions
                )
            })
            .collect();
        println!(
            "{} condition code(s) unmapped ({} conditions; add them to the mapping's `snomed`): {}{}",
            r.unmapped_codes.len(),
            conditions,
            shown.join(", "),
            if r.unmapped_codes.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    if !r.ignored.is_empty() {
        println!("not used: {}", counts(&r.ignored));
    }
}

fn ignored_list(ignored: &[IgnoredColumn]) -> String {
    ignored
        .iter()
        .map(|c| format!("`{}` (field {})", c.name, c.field))
        .collect::<Vec<_>>()
        .join(", ")
}

fn written(outcome: &WriteOutcome) -> serde_json::Value {
    match outcome {
        WriteOutcome::Written => json!("written"),
        WriteOutcome::Unchanged => json!("unchanged"),
        WriteOutcome::Replaced { history } => json!({"replaced": true, "history": history}),
    }
}

fn written_verb(outcome: &WriteOutcome) -> &'static str {
    match outcome {
        WriteOutcome::Unchanged => "already in",
        _ => "written to",
    }
}

fn written_history(outcome: &WriteOutcome) -> Option<&PathBuf> {
    match outcome {
        WriteOutcome::Replaced { history } => Some(history),
        _ => None,
    }
}

fn print_history(history: Option<&PathBuf>) {
    if let Some(dir) = history {
        println!(
            "the previous salt, commitment, records and registration were moved to {} (the old commitment needs them to be opened; register the new one before claiming)",
            dir.display()
        );
    }
}

fn import_errors(errors: Vec<zkcohort::error::DatasetError>) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("import failed, nothing written:\n  {}", lines.join("\n  "))
}

/// `dataset commit`: the Poseidon commitment (commitment.json), and with --fold the fold one
/// (fold.json).
fn commit(
    g: &Global,
    dataset: &Path,
    capacity: Option<usize>,
    fold: &crate::fold::FoldArgs,
    force: &Force,
) -> Result<()> {
    let dir = DatasetDir::new(dataset);
    let previous_fold = dir.fold_commitment()?;
    if fold.fold {
        // A fold shape that cannot be built is refused before --force replaces (and moves to
        // history/) anything.
        let ds = dir.read_dataset()?;
        let planned = capacity.unwrap_or(ds.records.len());
        fold.spec(&ds.schema, RecordLayout::new(&ds.schema, planned).capacity)?;
    }
    let (mut c, mut outcome) = dir.commit_with(capacity, force.overwrite())?;
    let mut fold_value = serde_json::Value::Null;
    let mut fold_status = None;
    if fold.fold {
        // A replaced commitment took the old fold.json into history/ with it.
        let previous = match outcome {
            CommitOutcome::Replaced { .. } => None,
            _ => previous_fold,
        };
        let spec = fold.spec(&c.dataset.schema, c.info.capacity)?;
        let used = match &previous {
            Some(old) => crate::fold::proofs_against(
                &zkcohort::disclosure::Ledger::read(dataset)?,
                &old.commitment,
            ),
            None => 0,
        };
        let bound = dir.is_registered() || used > 0;
        let unchanged = previous.as_ref().filter(|old| old.spec == spec);
        let info = match unchanged {
            Some(old) if !(force.force && bound) => {
                fold_status = Some("already_committed");
                old.clone()
            }
            _ => {
                if bound {
                    if !force.force {
                        bail!(
                            "{} is {}: another fold commitment would {}; add --force to \
                             re-commit under a fresh salt (the old files move to history/), \
                             then register again",
                            dataset.display(),
                            if dir.is_registered() {
                                "registered"
                            } else {
                                "committed for a fold circuit answers were proven from"
                            },
                            if dir.is_registered() {
                                "no longer match its registration"
                            } else {
                                "reuse its masking rows"
                            }
                        );
                    }
                    (c, outcome) = dir.renew(capacity)?;
                }
                let store = crate::store(g)?;
                let (kzg, keys) = store.fold_keys(&c.dataset.schema, &spec)?;
                let info = zkcohort::proof::fold::commit(&c, &kzg, &keys, &spec)?;
                dir.write_fold_commitment(&info)?;
                fold_status = Some(
                    if previous.is_some() && outcome == CommitOutcome::AlreadyCommitted {
                        "replaced"
                    } else {
                        "committed"
                    },
                );
                info
            }
        };
        fold_value = serde_json::to_value(&info)?;
        fold_value["status"] = json!(fold_status);
        fold_value["file"] = json!(dataset.join("fold.json"));
    }
    let (status, history) = match &outcome {
        CommitOutcome::Committed => ("committed", None),
        CommitOutcome::AlreadyCommitted => ("already_committed", None),
        CommitOutcome::Replaced { history } => ("replaced", Some(history)),
    };
    let mut value = serde_json::to_value(&c.info)?;
    value["status"] = json!(status);
    value["history"] = json!(history);
    if fold.fold {
        value["fold"] = fold_value.clone();
    }
    emit(g, value, || {
        if outcome == CommitOutcome::AlreadyCommitted {
            println!(
                "already committed: commitment {} ({} records, capacity {}); nothing changed",
                c.info.commitment, c.info.record_count, c.info.capacity
            );
        } else {
            println!(
                "commitment {} ({} records, capacity {}); salt kept in {}",
                c.info.commitment,
                c.info.record_count,
                c.info.capacity,
                dataset.join("salt.json").display()
            );
        }
        if fold.fold {
            println!(
                "fold commitment {} ({}): circuit {}, query budget {} proofs; in {}",
                fold_value["commitment"].as_str().unwrap_or_default(),
                fold_status.unwrap_or_default().replace('_', " "),
                fold_value["circuit_id"].as_str().unwrap_or_default(),
                fold_value["query_budget"],
                dataset.join("fold.json").display()
            );
        }
        print_history(history);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, fs};

    use clap::Parser;
    use zkcohort::dataset::DatasetDir;

    use super::*;
    use crate::{run, Cli};

    fn zkcohort(args: &[&str]) -> Result<()> {
        run(Cli::try_parse_from(
            std::iter::once("zkcohort").chain(args.iter().copied()),
        )?)
    }

    fn repo(path: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
            .display()
            .to_string()
    }

    /// Every file under `dir`, with its bytes.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(p.clone(), fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn schema_file(dir: &Path) -> PathBuf {
        let path = dir.join("schema.json");
        fs::write(
            &path,
            serde_json::to_vec(&Schema::clinical_default()).unwrap(),
        )
        .unwrap();
        path
    }

    #[test]
    fn data_commands_refuse_to_lose_a_committed_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("h1");
        let ds = d.to_str().unwrap();
        zkcohort(&["dataset", "synth", "--records", "30", "--out", ds]).unwrap();
        zkcohort(&["dataset", "commit", "--dataset", ds]).unwrap();
        let committed = snapshot(&d);

        // Re-running the same commands changes nothing.
        zkcohort(&["dataset", "synth", "--records", "30", "--out", ds]).unwrap();
        zkcohort(&["dataset", "commit", "--dataset", ds]).unwrap();
        zkcohort(&["dataset", "commit", "--dataset", ds, "--capacity", "48"]).unwrap();
        assert_eq!(snapshot(&d), committed);

        // Overwrite by synth or import, re-salt by commit: refused, nothing changed.
        let csv = tmp.path().join("other.csv");
        fs::write(&csv, Dataset::synthesize(20, 9, 2).to_csv()).unwrap();
        let schema = schema_file(tmp.path());
        let attempts: [&[&str]; 3] = [
            &[
                "dataset",
                "synth",
                "--records",
                "30",
                "--seed",
                "2",
                "--out",
                ds,
            ],
            &[
                "dataset",
                "import",
                "--schema",
                schema.to_str().unwrap(),
                "--csv",
                csv.to_str().unwrap(),
                "--out",
                ds,
            ],
            &["dataset", "commit", "--dataset", ds, "--capacity", "96"],
        ];
        for args in attempts {
            let err = format!("{:#}", zkcohort(args).unwrap_err());
            assert!(err.contains("--force"), "{args:?}: {err}");
            assert_eq!(snapshot(&d), committed, "{args:?} changed the dataset");
        }

        // Registered: refused with the on-chain consequence spelt out.
        fs::write(d.join("registration.json"), r#"{"dataset_id": 3}"#).unwrap();
        let registered = snapshot(&d);
        for args in attempts {
            let err = format!("{:#}", zkcohort(args).unwrap_err());
            assert!(
                err.contains("REGISTERED") && err.contains("#3") && err.contains("orphans"),
                "{args:?}: {err}"
            );
            assert_eq!(snapshot(&d), registered, "{args:?} changed the dataset");
        }

        // --force replaces it and keeps everything it replaced under history/.
        let mut forced = attempts[1].to_vec();
        forced.push("--force");
        zkcohort(&forced).unwrap();
        let history: Vec<PathBuf> = fs::read_dir(d.join("history"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(history.len(), 1);
        for name in [
            "salt.json",
            "commitment.json",
            "registration.json",
            "records.csv",
            "schema.json",
        ] {
            assert_eq!(
                fs::read(history[0].join(name)).unwrap(),
                registered[&d.join(name)],
                "{name}"
            );
        }
        zkcohort(&["dataset", "commit", "--dataset", ds]).unwrap();
        assert!(DatasetDir::new(&d).load_committed().is_ok());
    }

    #[test]
    fn a_bad_import_names_each_bad_cell_once_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let schema = schema_file(tmp.path());
        let out = tmp.path().join("out");
        let cases = [
            (
                "age,sex,dx,hba1c,sbp,bmi,consent,site\n54,F,B2O,6.1,130,27.5,research,2\n54,F,E11.9,6.1,130,27.5,research,2,\n",
                vec![
                    "bad.csv:2: column `dx`: `B2O`: character 3 (`O`) must be a digit",
                    "bad.csv:3: 9 fields, the header has 8",
                ],
            ),
            (
                "age,sex,dx,hba1c,sbp,bmi,consent,site,dx\n54,F,E11.9,6.1,130,27.5,research,2,I10\n",
                vec!["bad.csv:1: column `dx`: named twice in the header (fields 3 and 9)"],
            ),
            (
                "age,sex,dx,hba1c,sbp,bmi,consent,site\n",
                vec!["bad.csv:2: no records after the header"],
            ),
            ("", vec!["bad.csv:1: the file is empty"]),
        ];
        for (text, expected) in cases {
            let csv = tmp.path().join("bad.csv");
            fs::write(&csv, text).unwrap();
            let err = format!(
                "{:#}",
                zkcohort(&[
                    "dataset",
                    "import",
                    "--schema",
                    schema.to_str().unwrap(),
                    "--csv",
                    csv.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ])
                .unwrap_err()
            );
            let lines: Vec<&str> = err.lines().skip(1).map(str::trim).collect();
            assert_eq!(lines.len(), expected.len(), "{err}");
            for (line, want) in lines.iter().zip(&expected) {
                let want = want.replace("bad.csv", &csv.display().to_string());
                assert!(line.starts_with(&want), "{line}\n  wanted {want}");
            }
            assert!(!out.exists(), "nothing written");
        }
    }

    #[test]
    fn extra_csv_columns_are_refused_unless_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let schema = schema_file(tmp.path());
        let csv = tmp.path().join("extract.csv");
        fs::write(
            &csv,
            "mrn,age,sex,dx,hba1c,sbp,bmi,consent,site,ward\n\
             A17,54,F,E11.9,6.1,130,27.5,research,2,4B\n\
             A18,61,M,I10,5.4,141,29.1,,2,4C\n",
        )
        .unwrap();
        let out = tmp.path().join("d");
        let args = |extra: bool| {
            let mut a = vec![
                "dataset".to_owned(),
                "import".into(),
                "--schema".into(),
                schema.display().to_string(),
                "--csv".into(),
                csv.display().to_string(),
                "--out".into(),
                out.display().to_string(),
            ];
            if extra {
                a.push("--ignore-extra".into());
            }
            a
        };
        let run_args = |a: Vec<String>| zkcohort(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let err = format!("{:#}", run_args(args(false)).unwrap_err());
        assert!(
            err.contains("column `mrn`: field 1 is not in schema")
                && err.contains("column `ward`: field 10")
                && err.contains("--ignore-extra"),
            "{err}"
        );
        assert!(!out.exists(), "nothing written");
        run_args(args(true)).unwrap();
        let ds = DatasetDir::new(&out).read_dataset().unwrap();
        assert_eq!(ds.records.len(), 2);
        assert_eq!(ds.records[1][0], 61);
        let records = fs::read_to_string(out.join("records.csv")).unwrap();
        assert!(
            !records.contains("A17") && !records.contains("4B"),
            "{records}"
        );
    }

    #[test]
    fn negative_values_import_commit_and_query_through_the_cli() {
        let tmp = tempfile::tempdir().unwrap();
        let schema = tmp.path().join("labs.json");
        fs::write(
            &schema,
            r#"{"name":"labs","columns":[
                {"name":"age","kind":"uint","bits":7},
                {"name":"base_excess","kind":"decimal","scale":1,"bits":9,"min":-25},
                {"name":"ldl","kind":"decimal","scale":1,"bits":7,"nullable":true},
                {"name":"consent","kind":"consent","purposes":["research"]}]}"#,
        )
        .unwrap();
        let csv = tmp.path().join("labs.csv");
        let mut text = String::from("age,base_excess,ldl,consent\n");
        for i in 0..14 {
            let be = format!("{:.1}", -12.0 + i as f64 * 1.5);
            let ldl = if i % 3 == 0 {
                String::new()
            } else {
                format!("{}.{}", 2 + i % 3, i % 10)
            };
            text += &format!("{},{be},{ldl},research\n", 40 + i);
        }
        fs::write(&csv, &text).unwrap();
        let d = tmp.path().join("d");
        let (schema, csv, ds) = (
            schema.display().to_string(),
            csv.display().to_string(),
            d.display().to_string(),
        );
        zkcohort(&[
            "dataset", "import", "--schema", &schema, "--csv", &csv, "--out", &ds,
        ])
        .unwrap();
        let records = fs::read_to_string(d.join("records.csv")).unwrap();
        assert!(
            records.contains("40,-12.0,,research") && records.contains("41,-10.5,3.1,research"),
            "{records}"
        );
        zkcohort(&["dataset", "commit", "--dataset", &ds]).unwrap();
        let data = DatasetDir::new(&d).load_committed().unwrap();
        // Criteria on the signed column keep their natural meaning: base excess in [-6, 0].
        let query = tmp.path().join("q.json");
        fs::write(
            &query,
            r#"{"criteria":{"base_excess":[-6,0]},"consent":"research","statistic":"age","min_cohort":1}"#,
        )
        .unwrap();
        let spec = zkcohort::query::QuerySpec::load(&query).unwrap();
        let constants = spec.compile(&data.dataset.schema).unwrap();
        let truth =
            zkcohort::query::evaluate(&data.dataset.schema, &data.dataset.records, &constants);
        // -6.0, -4.5, -3.0, -1.5, 0.0: ages 44..=48.
        assert_eq!(truth.count, 5);
        assert_eq!(truth.sum, (44u32 + 45 + 46 + 47 + 48).into());
        zkcohort(&[
            "query",
            "check",
            "--query",
            query.to_str().unwrap(),
            "--dataset",
            &ds,
        ])
        .unwrap();
        // A nullable statistic needs a criterion on it.
        fs::write(&query, r#"{"consent":"research","statistic":"ldl"}"#).unwrap();
        let err = format!(
            "{:#}",
            zkcohort(&[
                "query",
                "check",
                "--query",
                query.to_str().unwrap(),
                "--dataset",
                &ds
            ])
            .unwrap_err()
        );
        assert!(err.contains("fast circuits of #8"), "{err}");
        fs::write(&query, r#"{"criteria":{"ldl":{"min":0}},"consent":"research","statistic":"ldl","min_cohort":1}"#).unwrap();
        zkcohort(&[
            "query",
            "check",
            "--query",
            query.to_str().unwrap(),
            "--dataset",
            &ds,
        ])
        .unwrap();
    }

    #[test]
    fn fhir_bundles_and_ndjson_import_through_the_cli() {
        let tmp = tempfile::tempdir().unwrap();
        let (schema, mapping) = (
            repo("examples/fhir/schema-fhir-v1.json"),
            repo("examples/fhir/mapping-fhir-v1.json"),
        );
        for (input, records) in [("examples/fhir/bundles", 8), ("examples/fhir/ndjson", 6)] {
            let out = tmp.path().join(input.rsplit('/').next().unwrap());
            let report = out.with_extension("report.json");
            let args = [
                "dataset",
                "import",
                "--schema",
                &schema,
                "--fhir",
                &repo(input),
                "--mapping",
                &mapping,
                "--report",
                report.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ];
            zkcohort(&args).unwrap();
            let ds = DatasetDir::new(&out).read_dataset().unwrap();
            assert_eq!(ds.records.len(), records, "{input}");
            let report: serde_json::Value =
                serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
            assert_eq!(report["imported"], records, "{input}");
            assert_eq!(
                report["patients"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| !p["record"].is_null())
                    .count(),
                records
            );
            // The same import again changes nothing.
            let before = snapshot(&out);
            zkcohort(&args).unwrap();
            assert_eq!(snapshot(&out), before);
        }
        // Several inputs at once, and a bad one: every problem named, nothing written.
        let bad = tmp.path().join("bad.ndjson");
        fs::write(
            &bad,
            concat!(
                r#"{"resourceType":"Patient","id":"b1","birthDate":"1970-02-30","gender":"female"}"#, "\n",
                r#"{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/b1"},"effectiveDateTime":"2024-01-01","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"valueQuantity":{"value":120,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}"#, "\n",
            ),
        )
        .unwrap();
        let out = tmp.path().join("bad");
        let err = format!(
            "{:#}",
            zkcohort(&[
                "dataset",
                "import",
                "--schema",
                &schema,
                "--fhir",
                &repo("examples/fhir/ndjson"),
                bad.to_str().unwrap(),
                "--mapping",
                &mapping,
                "--out",
                out.to_str().unwrap(),
            ])
            .unwrap_err()
        );
        let bad = bad.display().to_string();
        assert!(
            err.contains(&format!(
                "{bad}:1: Patient/b1: birthDate: `1970-02-30` is not a FHIR date"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{bad}:2: Observation/o1: valueQuantity.code: unit `mg/dL` is not the column's `%`"
            )),
            "{err}"
        );
        assert!(!out.exists(), "nothing written");
    }
}
