//! The commit-and-prove ("fold") path through the command line, offline: `dataset commit
//! --fold` with a tiny query budget, `setup --dataset` writing the fold verifier, `prove`
//! until the budget is spent (then refused, nothing written), and `verify` against the
//! manifest `setup` wrote (a tampered artifact refused).

use std::{fs, path::Path, process::Command};

use serde_json::Value;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the CLI with the repository's key cache and `--json`: (success, stdout, stderr).
fn zkcohort(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zkcohort"))
        .arg("--cache")
        .arg(root().join(".zkcohort"))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = zkcohort(args);
    assert!(ok, "zkcohort {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `dataset synth` of 45 records (the fold circuits here have 48 slots).
fn synth(ds: &str, seed: &str) {
    ok(&[
        "dataset",
        "synth",
        "--records",
        "45",
        "--seed",
        seed,
        "--out",
        ds,
    ]);
}

/// `dataset commit --dataset DS --capacity 48 --fold --query-budget BUDGET --statistics STAT`
/// and `extra`: (success, stdout, stderr).
fn fold_commit(ds: &str, budget: &str, statistic: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "dataset",
        "commit",
        "--dataset",
        ds,
        "--capacity",
        "48",
        "--fold",
        "--query-budget",
        budget,
        "--statistics",
        statistic,
    ];
    args.extend_from_slice(extra);
    zkcohort(&args)
}

#[test]
fn fold_dataset_proves_until_its_budget_is_spent_and_verifies_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let d = t.join("h1");
    let ds = d.to_str().unwrap();
    synth(ds, "3");
    let commit = |extra: &[&str]| fold_commit(ds, "2", "bmi", extra);
    // Without --statistics: refused, naming the columns it could sum; nothing written.
    let (refused, _, stderr) = zkcohort(&[
        "dataset",
        "commit",
        "--dataset",
        ds,
        "--capacity",
        "48",
        "--fold",
    ]);
    assert!(!refused);
    assert!(stderr.contains("--fold needs --statistics"), "{stderr}");
    assert!(stderr.contains("bmi"), "{stderr}");
    assert!(!d.join("fold.json").exists());
    let (committed, stdout, stderr) = commit(&[]);
    assert!(committed, "{stderr}");
    let c: Value = serde_json::from_str(&stdout).unwrap();
    let fold = &c["fold"];
    assert_eq!(fold["status"], "committed");
    assert_eq!(fold["query_budget"], 2);
    let circuit = fold["circuit_id"].as_str().unwrap().to_owned();
    assert!(circuit.starts_with("fold3-"), "{circuit}");
    let commitment = fold["commitment"].as_str().unwrap().to_owned();
    assert!(d.join("fold.json").exists());
    // Again: nothing changes (the fold salt is derived from salt.json).
    let (_, stdout, stderr) = commit(&[]);
    let again: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(again["fold"]["status"], "already_committed");
    assert_eq!(again["fold"]["commitment"], commitment.as_str());

    let verifiers = t.join("verifiers");
    let setup = ok(&[
        "setup",
        "--dataset",
        ds,
        "--verifier-dir",
        verifiers.to_str().unwrap(),
    ]);
    assert_eq!(setup["circuit_id"], circuit.as_str());
    assert!(setup["k"].as_u64().unwrap() <= 13);
    let manifest = verifiers.join("verifiers.json");
    assert!(manifest.exists());

    let query = root().join("examples/query-all-adults-bmi.json");
    let query = query.to_str().unwrap();
    let prove = |out: &Path| {
        zkcohort(&[
            "prove",
            "--dataset",
            ds,
            "--query",
            query,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let artifact = t.join("a1.json");
    for (i, left) in [(1, 1), (2, 0)] {
        let out = t.join(format!("a{i}.json"));
        let (proved, stdout, stderr) = prove(&out);
        assert!(proved, "{stderr}");
        let p: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(p["circuit_id"], circuit.as_str());
        assert_eq!(p["query_budget_remaining"], left);
    }
    let a: Value = serde_json::from_slice(&fs::read(&artifact).unwrap()).unwrap();
    assert_eq!(a["public"]["commitment"], commitment.as_str());

    // The budget is spent: refused before proving, nothing written, the ledger unchanged.
    let ledger = fs::read(d.join("ledger.json")).unwrap();
    let third = t.join("a3.json");
    let (proved, _, stderr) = prove(&third);
    assert!(
        !proved && stderr.contains("query budget of 2") && stderr.contains("--fold --force"),
        "{stderr}"
    );
    assert!(!third.exists());
    assert_eq!(fs::read(d.join("ledger.json")).unwrap(), ledger);
    // Replacing the answered fold commitment needs --force (a fresh salt).
    let (replaced, _, stderr) = commit(&["--data-columns", "2"]);
    assert!(!replaced && stderr.contains("--force"), "{stderr}");

    // Verified offline against the manifest `setup` wrote.
    let v = ok(&[
        "verify",
        artifact.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(v["valid"], true, "{v}");
    // A stated count the proof does not prove: refused.
    let mut tampered = a.clone();
    let count = tampered["public"]["result"]["count"].as_u64().unwrap();
    tampered["public"]["result"]["count"] = (count + 1).into();
    let bad = t.join("tampered.json");
    fs::write(&bad, serde_json::to_vec_pretty(&tampered).unwrap()).unwrap();
    let (valid, stdout, _) = zkcohort(&[
        "verify",
        bad.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert!(!valid && stdout.contains("\"valid\": false"), "{stdout}");
}

/// A synthetic fold dataset in `dir` with one statistic, committed (budget 4) and set up: the
/// directory and the manifest `setup` wrote.
struct FoldData {
    dir: std::path::PathBuf,
    manifest: std::path::PathBuf,
}

impl FoldData {
    /// 45 synthetic records of the clinical schema.
    fn synth(dir: &Path, seed: &str, statistic: &str) -> Self {
        let ds = dir.join("h1");
        synth(ds.to_str().unwrap(), seed);
        Self::commit(dir, ds, statistic)
    }

    /// A public dataset of `examples/public/` (its `schema.json` and `csv`).
    fn import(dir: &Path, public: &str, csv: &str, statistic: &str) -> Self {
        let ds = dir.join("h1");
        let src = root().join("examples/public").join(public);
        ok(&[
            "dataset",
            "import",
            "--schema",
            src.join("schema.json").to_str().unwrap(),
            "--csv",
            src.join(csv).to_str().unwrap(),
            "--ignore-extra",
            "--out",
            ds.to_str().unwrap(),
        ]);
        Self::commit(dir, ds, statistic)
    }

    fn commit(dir: &Path, ds: std::path::PathBuf, statistic: &str) -> Self {
        Self::commit_with(dir, ds, statistic, &[])
    }

    /// [`Self::commit`] with more `dataset commit` flags (`--strata`), verifiers in
    /// `dir/verifiers`.
    fn commit_with(dir: &Path, ds: std::path::PathBuf, statistic: &str, extra: &[&str]) -> Self {
        let d = ds.to_str().unwrap();
        let (committed, _, stderr) = fold_commit(d, "4", statistic, extra);
        assert!(committed, "dataset commit {extra:?} failed: {stderr}");
        let verifiers = dir.join("verifiers");
        ok(&[
            "setup",
            "--dataset",
            d,
            "--verifier-dir",
            verifiers.to_str().unwrap(),
        ]);
        FoldData {
            dir: ds,
            manifest: verifiers.join("verifiers.json"),
        }
    }

    /// The same 45 synthetic records (`seed`) committed twice for statistic `bmi`, under
    /// `dir/a` with the extra `dataset commit` flags `extra` and under `dir/b` without.
    fn twins(dir: &Path, seed: &str, extra: &[&str]) -> (Self, Self) {
        let [a, b] = ["a", "b"].map(|d| {
            let d = dir.join(d);
            fs::create_dir_all(&d).unwrap();
            synth(d.join("h1").to_str().unwrap(), seed);
            d
        });
        (
            Self::commit_with(&a, a.join("h1"), "bmi", extra),
            Self::commit(&b, b.join("h1"), "bmi"),
        )
    }

    /// `dataset commit --fold --force` with `extra` over `statistics` is refused, saying
    /// `says`, and leaves `fold.json` as it was.
    fn refuses_recommit(&self, statistics: &str, extra: &[&str], says: &str) {
        let ds = self.dir.to_str().unwrap();
        let extra = [&["--force"][..], extra].concat();
        let before = fs::read(self.dir.join("fold.json")).unwrap();
        let (done, _, stderr) = fold_commit(ds, "4", statistics, &extra);
        assert!(!done && stderr.contains(says), "{extra:?}: {stderr}");
        assert_eq!(fs::read(self.dir.join("fold.json")).unwrap(), before);
    }

    /// Proves `spec` (written beside the dataset as `q-NAME.json`) into `a-NAME.json`: its
    /// path and its JSON.
    fn prove(&self, name: &str, spec: Value) -> (std::path::PathBuf, Value) {
        let dir = self.dir.parent().unwrap();
        let query = dir.join(format!("q-{name}.json"));
        fs::write(&query, spec.to_string()).unwrap();
        let out = dir.join(format!("a-{name}.json"));
        ok(&[
            "prove",
            "--dataset",
            self.dir.to_str().unwrap(),
            "--query",
            query.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let a = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
        (out, a)
    }
}

#[test]
fn study_two_arm_compares_verified_answers_and_refuses_unverified_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let data = FoldData::synth(tmp.path(), "5", "bmi");
    let manifest = data.manifest.to_str().unwrap();
    // Two arms: the BMI of consenting adult women, and of men.
    let arm = |sex: &str| {
        data.prove(
            sex,
            serde_json::json!({
                "name": format!("BMI, sex {sex}"),
                "criteria": { "age": [18, 127], "sex": { "eq": sex } },
                "consent": "research",
                "statistic": "bmi"
            }),
        )
    };
    let ((f, af), (m, am)) = (arm("F"), arm("M"));
    let (f, m) = (f.to_str().unwrap(), m.to_str().unwrap());
    let two_arm = |a: &str, b: &str| {
        zkcohort(&[
            "study",
            "two-arm",
            "--arm1",
            a,
            "--arm2",
            b,
            "--names",
            "women,men",
            "--manifest",
            manifest,
        ])
    };
    let (done, stdout, stderr) = two_arm(f, m);
    assert!(done, "{stderr}");
    let s: Value = serde_json::from_str(&stdout).unwrap();
    // The comparison is of the proven sums: n and means from the artifacts' released values.
    let released = |a: &Value| {
        let r = &a["public"]["result"];
        let n = a["public"]["nonmissing"].as_f64().unwrap();
        let sum: f64 = r["sum"].as_str().unwrap().parse().unwrap();
        (n, sum / n / 10.0) // bmi: scale 1, no min
    };
    let ((nf, mean_f), (nm, mean_m)) = (released(&af), released(&am));
    let w = &s["study"]["welch"];
    assert_eq!(w["n"], serde_json::json!([nf as u64, nm as u64]), "{s}");
    assert!(
        (w["mean"][0].as_f64().unwrap() - mean_f).abs() < 1e-9,
        "{s}"
    );
    assert!(
        (w["difference"].as_f64().unwrap() - (mean_f - mean_m)).abs() < 1e-9,
        "{s}"
    );
    let p = w["p"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{s}");
    assert_eq!(s["study"]["suppressed"], serde_json::json!([]));

    // One site per arm each: a mismatched site count is refused.
    let (done, _, stderr) = two_arm(&format!("{f},{f}"), m);
    assert!(!done && stderr.contains("one per site"), "{stderr}");
    // An answer whose stated mean the proof does not prove: refused, nothing compared.
    let mut tampered = am.clone();
    let sum: u64 = tampered["public"]["result"]["sum"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    tampered["public"]["result"]["sum"] = (sum + 10).to_string().into();
    let bad = tmp.path().join("tampered.json");
    fs::write(&bad, serde_json::to_vec_pretty(&tampered).unwrap()).unwrap();
    let (done, stdout, stderr) = two_arm(f, bad.to_str().unwrap());
    assert!(!done && stderr.contains("does not verify"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn study_two_arm_of_a_binary_statistic_is_a_two_by_two_table_equal_to_scipy() {
    // NCCTG lung (48 real patients): `status` has two codes (1 censored, 2 dead), so its sum is
    // the deaths and two arms (sex 1, sex 2) give a 2×2 table, from two real proofs. The
    // table and its statistics equal scipy/statsmodels' (examples/public/study-reference.json).
    let tmp = tempfile::tempdir().unwrap();
    let data = FoldData::import(tmp.path(), "ncctg-lung", "lung.csv", "status");
    let arm = |sex: &str| {
        let spec = serde_json::json!({
            "criteria": { "sex": { "eq": sex } },
            "consent": "research",
            "statistic": "status"
        });
        data.prove(&format!("sex{sex}"), spec).0
    };
    let (men, women) = (arm("1"), arm("2"));
    let s = ok(&[
        "study",
        "two-arm",
        "--arm1",
        men.to_str().unwrap(),
        "--arm2",
        women.to_str().unwrap(),
        "--manifest",
        data.manifest.to_str().unwrap(),
    ]);
    let reference: Value = serde_json::from_slice(
        &fs::read(root().join("examples/public/study-reference.json")).unwrap(),
    )
    .unwrap();
    let want = &reference["two_by_two"]["ncctg-lung/sex/status=2"];
    let got = &s["study"]["two_by_two"];
    assert!(s["study"]["welch"].is_null(), "{s}");
    assert_eq!(got["table"]["cells"], want["table"], "{s}");
    let close = |got: &Value, want: &Value| {
        let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
        assert!((g - w).abs() <= 1e-9 * w.abs(), "{g} vs scipy {w}: {s}");
    };
    close(&got["risk_difference"][0], &want["risk_difference"]);
    close(&got["odds_ratio"][0], &want["odds_ratio"]);
    close(&got["odds_ratio"][1]["low"], &want["odds_ratio_ci"][0]);
    close(&got["chi2"][0], &want["chi2"]);
    close(&got["chi2"][1], &want["chi2_p"]);
    close(&got["chi2_yates"][1], &want["chi2_yates_p"]);
}

#[test]
fn one_stratified_answer_equals_one_answer_per_arm_and_its_cells_are_proven() {
    // The same 45 records committed twice: stratified by sex (F, M) and not. One stratified
    // proof must release, per stratum, exactly what a single-cohort proof of that stratum
    // does, and `study two-arm --stratified` must equal `--arm1 --arm2` on those answers.
    let tmp = tempfile::tempdir().unwrap();
    let (strat, plain) = FoldData::twins(tmp.path(), "5", &["--strata", "sex:2"]);
    let spec = |criteria: Value| {
        serde_json::json!({
            "name": "BMI of adults",
            "criteria": criteria,
            "consent": "research",
            "statistic": "bmi"
        })
    };
    let adults = serde_json::json!({ "age": [18, 127] });
    let (sa, s) = strat.prove("by-sex", spec(adults.clone()));
    let cells = s["public"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "{s}");
    assert!(s["circuit_id"].as_str().unwrap().contains("-t"), "{s}");
    let mut arms = Vec::new();
    for (code, cell) in ["F", "M"].iter().zip(cells) {
        assert_eq!(cell["stratum"], *code, "{s}");
        let (path, one) = plain.prove(
            code,
            spec(serde_json::json!({ "age": [18, 127], "sex": { "eq": code } })),
        );
        let r = &one["public"]["result"];
        assert_eq!(r["suppressed"], false, "{one}");
        for (field, want) in [
            ("count", &r["count"]),
            ("sum", &r["sum"]),
            ("sum_squares", &r["sum_squares"]),
            ("nonmissing", &one["public"]["nonmissing"]),
            ("suppressed", &r["suppressed"]),
        ] {
            assert_eq!(&cell[field], want, "stratum {code}, {field}: {s}");
        }
        arms.push(path);
    }

    // verify names the strata; the study of the one answer is the study of the two.
    let v = ok(&[
        "verify",
        sa.to_str().unwrap(),
        "--manifest",
        strat.manifest.to_str().unwrap(),
    ]);
    assert_eq!(v["strata"]["column"], "sex", "{v}");
    assert_eq!(v["strata"]["cells"][1]["stratum"], "M", "{v}");
    let stratified = ok(&[
        "study",
        "two-arm",
        "--stratified",
        sa.to_str().unwrap(),
        "--arms",
        "F,M",
        "--manifest",
        strat.manifest.to_str().unwrap(),
    ]);
    let two = ok(&[
        "study",
        "two-arm",
        "--arm1",
        arms[0].to_str().unwrap(),
        "--arm2",
        arms[1].to_str().unwrap(),
        "--manifest",
        plain.manifest.to_str().unwrap(),
    ]);
    assert_eq!(stratified["study"], two["study"]);
    assert_eq!(
        stratified["arms"],
        serde_json::json!(["sex = F", "sex = M"])
    );
    let (done, _, stderr) = zkcohort(&[
        "study",
        "two-arm",
        "--stratified",
        sa.to_str().unwrap(),
        "--arms",
        "F,X",
        "--manifest",
        strat.manifest.to_str().unwrap(),
    ]);
    assert!(!done && stderr.contains("no stratum `X`"), "{stderr}");

    // A cell the proof does not prove, or a pooled result that is not the cells': refused.
    let verify = |a: &Value| {
        let bad = tmp.path().join("tampered.json");
        fs::write(&bad, serde_json::to_vec_pretty(a).unwrap()).unwrap();
        zkcohort(&[
            "verify",
            bad.to_str().unwrap(),
            "--manifest",
            strat.manifest.to_str().unwrap(),
        ])
    };
    let mut moved = s.clone();
    let one = |v: &Value| v.as_u64().unwrap();
    let n = one(&moved["public"]["cells"][0]["count"]);
    moved["public"]["cells"][0]["count"] = (n + 1).into();
    let n = one(&moved["public"]["result"]["count"]);
    moved["public"]["result"]["count"] = (n + 1).into();
    let (done, _, stderr) = verify(&moved);
    assert!(!done && stderr.contains("instances["), "{stderr}");
    let mut pooled = s.clone();
    pooled["public"]["result"]["count"] = 1.into();
    let (done, _, stderr) = verify(&pooled);
    assert!(!done && stderr.contains("public.result.count"), "{stderr}");
    // A stratified answer is not claimable on the market (nothing is sent).
    let (done, _, stderr) = zkcohort(&[
        "custodian",
        "claim",
        "--dataset",
        strat.dir.to_str().unwrap(),
        "--query-id",
        "1",
        "--dataset-id",
        "1",
        "--artifact",
        sa.to_str().unwrap(),
    ]);
    assert!(!done && stderr.contains("stratified answer"), "{stderr}");
}

#[test]
fn an_attestation_answers_yes_or_no_as_the_plain_mean_does() {
    // The same 45 records committed for an attestation circuit and for a plain one: the
    // attestation's verdict on "mean BMI ≥ t" must be what the plain answer's mean says, on
    // both sides of it, and releases nothing else.
    let tmp = tempfile::tempdir().unwrap();
    let (attest, plain) = FoldData::twins(tmp.path(), "7", &["--attest"]);
    let spec = |attest: Option<String>| {
        let mut s = serde_json::json!({
            "name": "BMI of adults",
            "criteria": { "age": [18, 127] },
            "consent": "research",
            "statistic": "bmi"
        });
        if let Some(t) = attest {
            s["attest"] = serde_json::json!({ "mean_at_least": t });
        }
        s
    };
    let (_, numbers) = plain.prove("numbers", spec(None));
    let r = &numbers["public"]["result"];
    assert_eq!(r["suppressed"], false, "{numbers}");
    let n = numbers["public"]["nonmissing"].as_u64().unwrap();
    let sum: u64 = r["sum"].as_str().unwrap().parse().unwrap();
    // BMI has one decimal: the mean in tenths is sum / n; floor(sum / n) tenths is reached,
    // one tenth more is not.
    let tenths = |q: u64| format!("{}.{}", q / 10, q % 10);
    let (low, high) = (tenths(sum / n), tenths(sum / n + 1));
    for (t, want) in [(low, true), (high, false)] {
        let (path, art) = attest.prove(&format!("t{t}"), spec(Some(t.clone())));
        assert_eq!(art["public"]["verdict"], want, "mean ≥ {t}: {art}");
        assert!(art["public"]["cells"].is_null(), "{art}");
        assert_eq!(
            art["public"]["result"]["count"], 0,
            "nothing but the verdict: {art}"
        );
        assert_eq!(art["public"]["result"]["sum"], "0", "{art}");
        let v = ok(&[
            "verify",
            path.to_str().unwrap(),
            "--manifest",
            attest.manifest.to_str().unwrap(),
        ]);
        assert_eq!(v["verdict"], want, "{v}");
        // The opposite verdict is not what the proof proves.
        let mut flipped = art.clone();
        flipped["public"]["verdict"] = (!want).into();
        let bad = tmp.path().join("flipped.json");
        fs::write(&bad, serde_json::to_vec_pretty(&flipped).unwrap()).unwrap();
        let (done, _, stderr) = zkcohort(&[
            "verify",
            bad.to_str().unwrap(),
            "--manifest",
            attest.manifest.to_str().unwrap(),
        ]);
        assert!(!done && stderr.contains("instances["), "{stderr}");
    }
    // The ledger holds the attestations as answers.
    let ledger = ok(&["dataset", "ledger", attest.dir.to_str().unwrap()]);
    assert!(ledger.to_string().contains("\"verdict\":true"), "{ledger}");

    // An attestation query needs an attestation circuit, and such a circuit answers only
    // attestation queries: both refused, nothing written.
    let refused = |data: &FoldData, spec: Value| {
        let q = tmp.path().join("q-refused.json");
        fs::write(&q, spec.to_string()).unwrap();
        let out = tmp.path().join("a-refused.json");
        let (done, _, stderr) = zkcohort(&[
            "prove",
            "--dataset",
            data.dir.to_str().unwrap(),
            "--query",
            q.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!done && !out.exists(), "{stderr}");
        stderr
    };
    let stderr = refused(&plain, spec(Some("20.0".into())));
    assert!(stderr.contains("--attest"), "{stderr}");
    let stderr = refused(&attest, spec(None));
    assert!(stderr.contains("threshold"), "{stderr}");
}

#[test]
fn a_rounded_answer_is_the_plain_answer_rounded_in_the_proof() {
    // The same 45 records committed with `--rounding midpoint6` and without: every count and
    // sum of the rounded answer is OpenSAFELY's midpoint-6 of the plain one, and an artifact
    // restating the exact values does not verify.
    let tmp = tempfile::tempdir().unwrap();
    let (rounded, plain) = FoldData::twins(tmp.path(), "5", &["--rounding", "midpoint6"]);
    let spec = serde_json::json!({
        "name": "BMI of adults",
        "criteria": { "age": [18, 127] },
        "consent": "research",
        "statistic": "bmi"
    });
    let (_, exact) = plain.prove("exact", spec.clone());
    let (path, art) = rounded.prove("rounded", spec);
    assert!(
        art["circuit_id"].as_str().unwrap().contains("-r6-k"),
        "{art}"
    );
    let midpoint6 = |x: u64| x.div_ceil(6) * 6 - 3 * u64::from(x != 0);
    let number = |v: &Value| match v {
        Value::String(s) => s.parse::<u64>().unwrap(),
        v => v.as_u64().unwrap(),
    };
    let (e, r) = (&exact["public"], &art["public"]);
    assert_eq!(e["result"]["suppressed"], false, "{exact}");
    assert_eq!(
        number(&r["nonmissing"]),
        midpoint6(number(&e["nonmissing"]))
    );
    for field in ["count", "sum", "sum_squares"] {
        let x = number(&e["result"][field]);
        assert_eq!(number(&r["result"][field]), midpoint6(x), "{field}: {art}");
    }
    let v = ok(&[
        "verify",
        path.to_str().unwrap(),
        "--manifest",
        rounded.manifest.to_str().unwrap(),
    ]);
    assert_eq!(v["rounding"], "midpoint6", "{v}");
    // The exact count restated: not what the proof proves.
    let mut unrounded = art.clone();
    unrounded["public"]["result"]["count"] = e["result"]["count"].clone();
    let bad = tmp.path().join("unrounded.json");
    fs::write(&bad, serde_json::to_vec_pretty(&unrounded).unwrap()).unwrap();
    let (done, _, stderr) = zkcohort(&[
        "verify",
        bad.to_str().unwrap(),
        "--manifest",
        rounded.manifest.to_str().unwrap(),
    ]);
    assert!(!done, "{stderr}");

    // An unknown rule, and a rule for an attestation: refused, nothing written.
    for (extra, says) in [
        (&["--rounding", "nearest10"][..], "nearest5 or midpoint6"),
        (&["--rounding", "nearest5", "--attest"][..], "--attest"),
    ] {
        plain.refuses_recommit("bmi", extra, says);
    }
}

#[test]
fn a_dominance_answer_says_its_rule_and_refuses_shapes_without_one_sum() {
    // BMI over 45 adults is spread (no two values near 90 % of the sum): the answer under
    // `--dominance 90` is the plain one, from the circuit that enforces the rule.
    let tmp = tempfile::tempdir().unwrap();
    let (ruled, plain) = FoldData::twins(tmp.path(), "5", &["--dominance", "90"]);
    let spec = serde_json::json!({
        "name": "BMI of adults",
        "criteria": { "age": [18, 127] },
        "consent": "research",
        "statistic": "bmi"
    });
    let (_, exact) = plain.prove("plain", spec.clone());
    let (path, art) = ruled.prove("ruled", spec);
    assert!(
        art["circuit_id"].as_str().unwrap().contains("-d90-k"),
        "{art}"
    );
    assert_eq!(art["public"]["result"], exact["public"]["result"], "{art}");
    assert_eq!(art["public"]["result"]["suppressed"], false, "{art}");
    let v = ok(&[
        "verify",
        path.to_str().unwrap(),
        "--manifest",
        ruled.manifest.to_str().unwrap(),
    ]);
    assert_eq!(v["dominance_percent"], 90, "{v}");

    // Not a percentage, with --attest, over two statistics: refused, nothing written.
    for (extra, statistics, says) in [
        (&["--dominance", "100"][..], "bmi", "--dominance"),
        (&["--dominance", "90", "--attest"][..], "bmi", "--attest"),
        (&["--dominance", "90"][..], "bmi,age", "one statistic"),
    ] {
        plain.refuses_recommit(statistics, extra, says);
    }
}
