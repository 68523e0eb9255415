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

#[test]
fn fold_dataset_proves_until_its_budget_is_spent_and_verifies_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let d = t.join("h1");
    let ds = d.to_str().unwrap();
    synth(ds, "3");
    let commit = |extra: &[&str]| {
        let mut args = vec![
            "dataset",
            "commit",
            "--dataset",
            ds,
            "--capacity",
            "48",
            "--fold",
            "--query-budget",
            "2",
            "--statistics",
            "bmi",
        ];
        args.extend_from_slice(extra);
        zkcohort(&args)
    };
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
    assert!(circuit.starts_with("fold2-"), "{circuit}");
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

#[test]
fn study_two_arm_compares_verified_answers_and_refuses_unverified_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ds = t.join("h1");
    let ds = ds.to_str().unwrap();
    synth(ds, "5");
    ok(&[
        "dataset",
        "commit",
        "--dataset",
        ds,
        "--capacity",
        "48",
        "--fold",
        "--query-budget",
        "4",
        "--statistics",
        "bmi",
    ]);
    let verifiers = t.join("verifiers");
    ok(&[
        "setup",
        "--dataset",
        ds,
        "--verifier-dir",
        verifiers.to_str().unwrap(),
    ]);
    let manifest = verifiers.join("verifiers.json");
    let manifest = manifest.to_str().unwrap();
    // Two arms: the BMI of consenting adult women, and of men.
    let arm = |sex: &str| {
        let query = t.join(format!("q-{sex}.json"));
        let spec = serde_json::json!({
            "name": format!("BMI, sex {sex}"),
            "criteria": { "age": [18, 127], "sex": { "eq": sex } },
            "consent": "research",
            "statistic": "bmi"
        });
        fs::write(&query, spec.to_string()).unwrap();
        let out = t.join(format!("a-{sex}.json"));
        let (query, path) = (query.to_str().unwrap(), out.to_str().unwrap());
        ok(&["prove", "--dataset", ds, "--query", query, "--out", path]);
        let a: Value = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
        (out, a)
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
    let bad = t.join("tampered.json");
    fs::write(&bad, serde_json::to_vec_pretty(&tampered).unwrap()).unwrap();
    let (done, stdout, stderr) = two_arm(f, bad.to_str().unwrap());
    assert!(!done && stderr.contains("does not verify"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}
