//! A real public clinical dataset: the NCCTG lung cancer data of R's `survival` package (48
//! rows, vendored under examples/public/ncctg-lung/ with its provenance), with missing values
//! and a signed column (`wt.loss`, negative for a weight gain). It imports through the library
//! path `zkcohort dataset import --ignore-extra` takes, with the schema written for it; each
//! example query is proven with a real proof, verified offline, and its released count, mean
//! and sd equal a plain reading of the CSV text done here without the crate's encoding
//! (pandas-style: an empty cell is NaN, a criterion never matches NaN, means skip NaN), the
//! same reading `examples/public/ncctg-lung/plain.py` does for humans.

#[allow(dead_code)]
mod common;

use std::{fs, path::PathBuf};

use common::root;
use zkcohort::{
    commitment::RecordLayout,
    dataset::{CsvOptions, Dataset, IgnoredColumn},
    evm::{self, Manifest, MANIFEST},
    keys::{KeyStore, ParamsSource},
    proof,
    query::{evaluate, QuerySpec},
    schema::Schema,
};

/// The capacity the other real-proof tests use: the dataset is a 48-row subset to fit it.
const CAPACITY: usize = 48;

fn dir() -> PathBuf {
    root().join("examples/public/ncctg-lung")
}

/// The CSV as plain rows: header names, and each row's cells as `f64` (an empty cell is NaN;
/// the consent cell as text). No schema, no encoding.
struct Plain {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Plain {
    fn read() -> Self {
        let text = fs::read_to_string(dir().join("lung.csv")).unwrap();
        let mut lines = text.lines().map(|l| {
            l.split(',')
                .map(|c| c.trim_matches('"').to_owned())
                .collect::<Vec<_>>()
        });
        let header = lines.next().unwrap();
        let rows: Vec<Vec<String>> = lines.collect();
        assert!(rows.iter().all(|r| r.len() == header.len()));
        Plain { header, rows }
    }

    fn column(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap()
    }

    /// A cell as a number; empty is NaN.
    fn number(&self, row: &[String], name: &str) -> f64 {
        let cell = &row[self.column(name)];
        if cell.is_empty() {
            f64::NAN
        } else {
            cell.parse().unwrap()
        }
    }

    /// Count, mean and population sd of `statistic` over the rows consenting to research for
    /// which `keep` holds (every comparison with NaN is false, so NaN never matches); the mean
    /// and sd skip NaN, like pandas.
    fn answer(&self, keep: impl Fn(&dyn Fn(&str) -> f64) -> bool, statistic: &str) -> Plain3 {
        let mut count = 0u64;
        let mut present = Vec::new();
        for row in &self.rows {
            let consents = &row[self.column("consent")];
            if !consents.split(['|', ';']).any(|p| p == "research") {
                continue;
            }
            if keep(&|name: &str| self.number(row, name)) {
                count += 1;
                let v = self.number(row, statistic);
                if !v.is_nan() {
                    present.push(v);
                }
            }
        }
        let n = present.len() as f64;
        let mean = present.iter().sum::<f64>() / n;
        let variance = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Plain3 {
            count,
            skipped: count - present.len() as u64,
            mean,
            sd: variance.sqrt(),
        }
    }
}

/// A plain answer.
#[derive(Debug)]
struct Plain3 {
    count: u64,
    skipped: u64,
    mean: f64,
    sd: f64,
}

#[test]
fn a_public_clinical_dataset_imports_and_its_proven_answers_equal_a_plain_reading() {
    let schema = Schema::load(&dir().join("schema.json")).unwrap();
    let csv = dir().join("lung.csv");
    // `zkcohort dataset import --schema schema.json --csv lung.csv --ignore-extra`.
    let import = Dataset::import_csv_with(&schema, &csv, CsvOptions { ignore_extra: true })
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        import.ignored,
        [IgnoredColumn {
            name: "row".into(),
            field: 1
        }]
    );
    let dataset = import.dataset;
    let plain = Plain::read();
    assert_eq!(dataset.records.len(), plain.rows.len());
    assert_eq!(dataset.records.len(), 48);
    // The real data's missing values and negative weight losses are there, and round-trip.
    let wt = schema.column_index("wt.loss").unwrap();
    let missing = schema.columns[wt].missing_code().unwrap();
    let count = |f: &dyn Fn(f64) -> bool| {
        plain
            .rows
            .iter()
            .filter(|r| f(plain.number(r, "wt.loss")))
            .count()
    };
    assert_eq!(count(&|v| v.is_nan()), 4);
    assert_eq!(count(&|v| v < 0.0), 8);
    assert_eq!(
        dataset.records.iter().filter(|r| r[wt] == missing).count(),
        4
    );
    for (record, row) in dataset.records.iter().zip(&plain.rows) {
        for (col, value) in schema.columns.iter().zip(record) {
            assert_eq!(col.decode(*value), row[plain.column(&col.name)]);
        }
    }

    // Committed as `dataset import` then `commit` write it (salt seeded for reproducibility).
    let (_tmp, data) = common::committed(&dataset, Some(CAPACITY), 10);
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    let (params, keys) = store
        .circuit(&schema, &RecordLayout::new(&schema, CAPACITY))
        .unwrap();
    // Offline verification checks the circuit against a verifier manifest: this schema has
    // no committed verifier, so generate one (and its manifest) into a temporary directory.
    let verifiers = tempfile::tempdir().unwrap();
    evm::write_verifier(verifiers.path(), &params, &keys).unwrap();
    let manifest = Manifest::load(&verifiers.path().join(MANIFEST)).unwrap();

    type Keep = Box<dyn Fn(&dyn Fn(&str) -> f64) -> bool>;
    let cases: [(&str, Keep, &str); 3] = [
        // A criterion on the negative column: who gained or kept weight.
        (
            "query-age-weight-gain.json",
            Box::new(|v| v("wt.loss") <= 0.0),
            "age",
        ),
        // A nullable statistic, with the criterion on it that excludes its missing values.
        (
            "query-calories-men.json",
            Box::new(|v| v("sex") == 1.0 && v("meal.cal") >= 0.0),
            "meal.cal",
        ),
        // A signed, nullable statistic: its released sums are over `v − min`.
        (
            "query-weight-loss-60-plus.json",
            Box::new(|v| v("age") >= 60.0 && v("wt.loss") >= -50.0),
            "wt.loss",
        ),
    ];
    for (file, keep, statistic) in cases {
        let query = QuerySpec::load(&dir().join(file)).unwrap();
        assert_eq!(query.statistic, statistic, "{file}");
        let truth = plain.answer(keep, statistic);
        assert!(truth.count >= query.min_cohort, "{file}: {truth:?}");
        // The criterion on a nullable statistic already dropped its NaN rows.
        assert_eq!(truth.skipped, 0, "{file}");

        let artifact = proof::prove(&keys, &params, &data, &query, None).unwrap();
        let verified = proof::verify(&artifact, &store, &manifest).unwrap();
        assert_eq!(verified.circuit_id, keys.config.circuit_id);
        let released = &artifact.public.result;
        assert_eq!(
            released,
            &evaluate(&schema, &dataset.records, &query.compile(&schema).unwrap())
        );
        assert_eq!((released.records, released.suppressed), (48, false));
        assert_eq!(released.count, truth.count, "{file}");
        let column = schema.column(statistic).unwrap();
        let (mean, variance) = column.natural_mean_variance(released).unwrap();
        assert!(
            (mean - truth.mean).abs() < 1e-9,
            "{file}: proven mean {mean}, plain {}",
            truth.mean
        );
        assert!(
            (variance.sqrt() - truth.sd).abs() < 1e-6,
            "{file}: proven sd {}, plain {}",
            variance.sqrt(),
            truth.sd
        );
    }
}
