//! The study templates (`zkcohort::study`) against scipy and statsmodels on two public
//! datasets (issue #13): the Mayo Clinic PBC trial (`examples/public/pbc/`, a randomised
//! two-arm trial with missing values) and the NCCTG lung data (`examples/public/ncctg-lung/`).
//!
//! Each dataset is imported through the library path `zkcohort dataset import` takes; every
//! cell's sufficient statistics are the released values of a query (`query::evaluate`, the
//! ground truth the circuits are tested to equal) with the arm, the stratum or the event as
//! criteria; the templates turn them into tests. The reference numbers
//! (`examples/public/study-reference.json`) were computed from the same CSV files by
//! `examples/public/study_reference.py` with scipy and statsmodels. Agreement: 1e-9 relative.

#[allow(dead_code)]
mod common;

use std::{collections::BTreeMap, fs, path::PathBuf};

use common::root;
use rand::rngs::OsRng;
use serde_json::Value;
use zkcohort::{
    circuit::fast::{
        self,
        fold::{self, FoldCircuit, Strata},
        record::FoldSchema,
    },
    dataset::{CsvOptions, Dataset},
    keys,
    query::{evaluate, Bounds, Criterion, QuerySpec},
    schema::Schema,
    study::{
        FixedEffect, Interval, Moments, PairMoments, Pearson, Table2x2, TwoByTwo, Units, Welch,
    },
};

const TOLERANCE: f64 = 1e-9;

/// An imported public dataset.
struct Public {
    schema: Schema,
    records: Vec<Vec<u64>>,
}

impl Public {
    fn import(dir: &str, csv: &str) -> Self {
        let dir = root().join("examples/public").join(dir);
        let schema = Schema::load(&dir.join("schema.json")).unwrap();
        let import =
            Dataset::import_csv_with(&schema, &dir.join(csv), CsvOptions { ignore_extra: true })
                .unwrap_or_else(|e| panic!("{e:?}"));
        Public {
            records: import.dataset.records,
            schema,
        }
    }

    /// The query "`criteria`, statistic `column`" (a nullable statistic with the criterion
    /// that drops its missing values, as zkcohort requires), floor `min_cohort`.
    fn spec(&self, criteria: &[(&str, Criterion)], column: &str, min_cohort: u64) -> QuerySpec {
        let mut criteria: BTreeMap<String, Criterion> = criteria
            .iter()
            .map(|(c, k)| (c.to_string(), k.clone()))
            .collect();
        let col = self.schema.column(column).unwrap();
        if col.nullable && !criteria.contains_key(column) {
            let units = Units::of(col);
            let min = match units.scale {
                0 => serde_json::json!(units.offset),
                _ => serde_json::json!(units.level(0.0)),
            };
            criteria.insert(column.into(), at_least(min));
        }
        QuerySpec {
            name: String::new(),
            criteria,
            consent: "research".into(),
            statistic: column.into(),
            min_cohort,
            attest: None,
        }
    }

    /// The released answer of [`Self::spec`] (floor 1), as moments.
    fn moments(&self, criteria: &[(&str, Criterion)], column: &str) -> Moments {
        let spec = self.spec(criteria, column, 1);
        let result = evaluate(
            &self.schema,
            &self.records,
            &spec.compile(&self.schema).unwrap(),
        );
        Moments::of_released(&result, result.count)
            .unwrap()
            .expect("released (floor 1)")
    }

    fn units(&self, column: &str) -> Units {
        Units::of(self.schema.column(column).unwrap())
    }

    /// Matching records.
    fn count(&self, criteria: &[(&str, Criterion)]) -> u64 {
        // Any never-missing column serves as the statistic.
        let statistic = self
            .schema
            .columns
            .iter()
            .find(|c| !c.nullable && c.name != "consent")
            .unwrap();
        self.moments(criteria, &statistic.name).n
    }
}

fn eq(code: &str) -> Criterion {
    Criterion::Eq {
        eq: Value::String(code.into()),
    }
}

fn at_least(min: Value) -> Criterion {
    Criterion::Bounds(Bounds {
        min: Some(min),
        max: None,
    })
}

fn reference() -> Value {
    let path: PathBuf = root().join("examples/public/study-reference.json");
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[track_caller]
fn close(what: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{what}: {want}"));
    let scale = want.abs().max(f64::MIN_POSITIVE);
    assert!(
        (got - want).abs() <= TOLERANCE * scale,
        "{what}: {got} vs scipy {want} (relative {:e})",
        (got - want).abs() / scale
    );
}

#[track_caller]
fn close_interval(what: &str, got: Interval, want: &Value) {
    close(&format!("{what} low"), got.low, &want[0]);
    close(&format!("{what} high"), got.high, &want[1]);
}

/// `dataset/arm column/value column` → the two arms' codes.
fn arms(dataset: &str) -> (&'static str, [&'static str; 2]) {
    match dataset {
        "pbc" => ("trt", ["1", "2"]),
        "ncctg-lung" => ("sex", ["1", "2"]),
        other => panic!("{other}"),
    }
}

fn data(dataset: &str) -> Public {
    match dataset {
        "pbc" => Public::import("pbc", "pbc.csv"),
        "ncctg-lung" => Public::import("ncctg-lung", "lung.csv"),
        other => panic!("{other}"),
    }
}

#[test]
fn welch_two_arm_comparisons_equal_scipy() {
    let reference = reference();
    let cases = reference["welch"].as_object().unwrap();
    assert_eq!(cases.len(), 14);
    for (name, want) in cases {
        let parts: Vec<&str> = name.split('/').collect();
        let (dataset, column) = (parts[0], parts[2]);
        let public = data(dataset);
        let (arm, codes) = arms(dataset);
        let cells = codes.map(|code| public.moments(&[(arm, eq(code))], column));
        let got = Welch::test(cells, public.units(column)).unwrap();
        check_welch(name, &got, want);
    }
}

/// Every value of a Welch test against scipy's.
#[track_caller]
fn check_welch(name: &str, got: &Welch, want: &Value) {
    assert_eq!(
        got.n.map(|n| serde_json::json!(n)).to_vec(),
        *want["n"].as_array().unwrap(),
        "{name}"
    );
    for i in 0..2 {
        close(&format!("{name} mean {i}"), got.mean[i], &want["mean"][i]);
        close(&format!("{name} sd {i}"), got.sd[i], &want["sd"][i]);
    }
    close(
        &format!("{name} difference"),
        got.difference,
        &want["difference"],
    );
    close(&format!("{name} se"), got.se, &want["se"]);
    close(&format!("{name} df"), got.df, &want["df"]);
    close(&format!("{name} t"), got.t, &want["t"]);
    close(&format!("{name} p"), got.p, &want["p"]);
    close_interval(&format!("{name} ci"), got.ci, &want["ci"]);
}

/// The two arms of the PBC trial from **one stratified fold proof** per covariate (issue #13):
/// the strata are the treatment codes, the proof is real (KZG, SHPLONK, the EVM transcript)
/// and verified, and the arms are read back from its public inputs, as a verifier sees them.
/// Welch's test of the two cells equals scipy's. Two covariates, one never missing (bilirubin)
/// and one with missing values (cholesterol): the schema's 16-bit field makes these k = 17
/// proofs, a minute each here; the circuit equals the plain computation on every covariate
/// by the MockProver suites.
#[test]
fn welch_from_one_stratified_proof_equals_scipy() {
    let reference = reference();
    let cases: Vec<(&String, &Value)> = reference["welch"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| ["pbc/trt/bili", "pbc/trt/chol"].contains(&name.as_str()))
        .collect();
    assert_eq!(cases.len(), 2);
    let public = data("pbc");
    let fold = FoldSchema::of(&public.schema).unwrap();
    let value_index = |name: &str| {
        public
            .schema
            .value_columns()
            .position(|(_, c)| c.name == name)
            .unwrap()
    };
    let columns: Vec<&str> = cases.iter().map(|(n, _)| &n["pbc/trt/".len()..]).collect();
    let statistics: Vec<usize> = columns.iter().map(|c| value_index(c)).collect();
    let mut params = fold
        .fold_params(public.records.len(), 8, 2, &statistics)
        .unwrap();
    params.strata = Some(Strata {
        field: fold.statistic_field(value_index("trt")).unwrap(),
        count: 2,
    });
    let k = params.min_k();
    let kzg = keys::dev_params(k);
    let pk = fast::keygen_circuit(&kzg, &FoldCircuit::dummy(&params, k).unwrap()).unwrap();
    let encoded: Vec<Vec<u64>> = public.records.iter().map(|r| fold.encode(r)).collect();
    let salt = [5u8; 32];
    let layout = params.inputs();
    let range = Criterion::Range([serde_json::json!("1"), serde_json::json!("2")]);
    for ((name, want), column) in cases.into_iter().zip(columns) {
        // Both arms (a missing arm is in neither), the policy's floor.
        let spec = public.spec(&[("trt", range.clone())], column, 11);
        let q = fold
            .compile(&spec.compile(&public.schema).unwrap(), &statistics)
            .unwrap();
        let inst = layout.strata_instances(&q, &fold::evaluate_strata(&params, &encoded, &q));
        let circuit = FoldCircuit::new(&params, k, &salt, &encoded, &q).unwrap();
        let rng =
            fast::SeededRng::with_unusable(&salt, params.slots, params.unusable_rows(), OsRng);
        let proof = fast::prove(&kzg, &pk, circuit, &inst, rng).unwrap();
        assert!(fast::verify(&kzg, pk.get_vk(), &inst, &proof), "{name}");
        let value = |i: usize| u64::from_le_bytes(inst[i].to_bytes()[..8].try_into().unwrap());
        let arm = |v: usize| {
            let at = layout.cell(v);
            assert_eq!(value(at.suppressed), 0, "{name}: arm {v} released");
            Moments {
                n: value(at.nonmissing),
                sum: value(at.sum).into(),
                sum_squares: value(at.sum_squares).into(),
            }
        };
        let got = Welch::test([arm(0), arm(1)], public.units(column)).unwrap();
        check_welch(name, &got, want);
    }
}

#[test]
fn two_by_two_tables_equal_statsmodels_and_scipy() {
    let reference = reference();
    let cases = reference["two_by_two"].as_object().unwrap();
    assert_eq!(cases.len(), 4);
    for (name, want) in cases {
        let parts: Vec<&str> = name.split('/').collect();
        let dataset = parts[0];
        let (event_col, event_code) = parts[2].split_once('=').unwrap();
        let public = data(dataset);
        let (arm, codes) = arms(dataset);
        let cells = codes.map(|code| {
            let all = public.count(&[(arm, eq(code))]);
            let events = public.count(&[(arm, eq(code)), (event_col, eq(event_code))]);
            [events, all - events]
        });
        let got = TwoByTwo::test(Table2x2 { cells }).unwrap();
        assert_eq!(
            serde_json::to_value(cells).unwrap(),
            want["table"],
            "{name}"
        );
        close(
            &format!("{name} rd"),
            got.risk_difference.0,
            &want["risk_difference"],
        );
        close_interval(
            &format!("{name} rd"),
            got.risk_difference.1,
            &want["risk_difference_ci"],
        );
        let (rr, rr_ci) = got.risk_ratio.unwrap();
        close(&format!("{name} rr"), rr, &want["risk_ratio"]);
        close_interval(&format!("{name} rr"), rr_ci, &want["risk_ratio_ci"]);
        let (or, or_ci) = got.odds_ratio.unwrap();
        close(&format!("{name} or"), or, &want["odds_ratio"]);
        close_interval(&format!("{name} or"), or_ci, &want["odds_ratio_ci"]);
        close(&format!("{name} chi2"), got.chi2.0, &want["chi2"]);
        close(&format!("{name} chi2 p"), got.chi2.1, &want["chi2_p"]);
        close(
            &format!("{name} yates"),
            got.chi2_yates.0,
            &want["chi2_yates"],
        );
        close(
            &format!("{name} yates p"),
            got.chi2_yates.1,
            &want["chi2_yates_p"],
        );
    }
}

#[test]
fn pearson_correlations_equal_scipy() {
    let reference = reference();
    let cases = reference["pearson"].as_object().unwrap();
    assert_eq!(cases.len(), 3);
    for (name, want) in cases {
        let (dataset, pair) = name.split_once('/').unwrap();
        let (x, y) = pair.split_once('~').unwrap();
        let public = data(dataset);
        // Σ x y is not released by a proof yet (issue #13's in-circuit strata and products):
        // the pairs' stored values are read from the imported records.
        let column = |name: &str| {
            let i = public.schema.column_index(name).unwrap();
            (i, public.schema.columns[i].missing_code())
        };
        let ((xi, xm), (yi, ym)) = (column(x), column(y));
        let pairs = public
            .records
            .iter()
            .filter(|r| Some(r[xi]) != xm && Some(r[yi]) != ym)
            .map(|r| (r[xi] as i64, r[yi] as i64));
        let got = Pearson::test(&PairMoments::of(pairs)).unwrap();
        assert_eq!(serde_json::json!(got.n), want["n"], "{name}");
        close(&format!("{name} r"), got.r, &want["r"]);
        close(&format!("{name} p"), got.p, &want["p"]);
        close_interval(&format!("{name} ci"), got.ci, &want["ci"]);
    }
}

#[test]
fn fixed_effect_meta_analysis_equals_statsmodels() {
    let reference = reference();
    let cases = reference["fixed_effect"].as_object().unwrap();
    assert_eq!(cases.len(), 2);
    let public = data("pbc");
    let (arm, codes) = arms("pbc");
    for (name, want) in cases {
        let parts: Vec<&str> = name.split('/').collect();
        let (column, site) = (parts[2], parts[3]);
        let sites: Vec<[Moments; 2]> = want["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let s: i64 = s.as_str().unwrap().parse().unwrap();
                let here = Criterion::Bounds(Bounds {
                    min: Some(serde_json::json!(s)),
                    max: Some(serde_json::json!(s)),
                });
                codes.map(|code| public.moments(&[(arm, eq(code)), (site, here.clone())], column))
            })
            .collect();
        let got = FixedEffect::of_sites(&sites, public.units(column)).unwrap();
        for (i, (e, v)) in got.effects.iter().zip(&got.variances).enumerate() {
            close(&format!("{name} effect {i}"), *e, &want["effects"][i]);
            close(&format!("{name} variance {i}"), *v, &want["variances"][i]);
        }
        close(&format!("{name} effect"), got.effect, &want["effect"]);
        close(&format!("{name} se"), got.se, &want["se"]);
        close_interval(&format!("{name} ci"), got.ci, &want["ci"]);
        close(&format!("{name} z"), got.z, &want["z"]);
        close(&format!("{name} p"), got.p, &want["p"]);
        close(&format!("{name} q"), got.q, &want["q"]);
        // statsmodels reports (Q − df) / Q untruncated; I² is its positive part (Higgins).
        let i2 = want["i2"].as_f64().unwrap().max(0.0);
        close(&format!("{name} i2"), got.i2, &serde_json::json!(i2));
    }
}

#[test]
fn pooling_two_sites_equals_the_union() {
    // Two "sites" of the PBC trial (by sex): their pooled moments are the trial's.
    let public = data("pbc");
    let arm = [("trt", eq("1"))];
    let by_sex = ["m", "f"].map(|s| public.moments(&[arm[0].clone(), ("sex", eq(s))], "bili"));
    assert_eq!(by_sex[0] + by_sex[1], public.moments(&arm, "bili"));
}
