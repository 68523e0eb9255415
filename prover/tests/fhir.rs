//! FHIR import: the example Bundles (Synthea-shaped transaction and collection bundles) and the
//! example NDJSON bulk export under examples/fhir/ import into exactly the records a reading
//! by hand gives (each mapping rule exercised there is named next to its patient), and every
//! error path names the file, the entry or line, the resource and the field. Importing them
//! then proving a query (a real proof, verified) equals a plain reading of the same JSON.

#[allow(dead_code)]
mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use serde_json::Value;
use zkcohort::{
    commitment::RecordLayout,
    dataset::Dataset,
    evm::Manifest,
    fhir::{self, FhirImport, Mapping},
    keys::{KeyStore, ParamsSource},
    proof,
    query::{evaluate, QuerySpec},
    schema::Schema,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn schema(name: &str) -> Schema {
    Schema::load(&root().join(name)).unwrap()
}

fn fhir_v1() -> (Schema, Mapping) {
    let s = schema("examples/fhir/schema-fhir-v1.json");
    let m = Mapping::load(&root().join("examples/fhir/mapping-fhir-v1.json"), &s).unwrap();
    (s, m)
}

fn clinical_v1() -> (Schema, Mapping) {
    let s = schema("examples/schema-clinical-v1.json");
    let m = Mapping::load(&root().join("examples/fhir/mapping-clinical-v1.json"), &s).unwrap();
    (s, m)
}

fn import(schema: &Schema, mapping: &Mapping, inputs: &[PathBuf]) -> FhirImport {
    fhir::import(schema, mapping, inputs, &mut |_, _, _| {}).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// The records as CSV rows (natural values, a missing value as an empty cell).
fn rows(ds: &Dataset) -> Vec<String> {
    ds.to_csv().lines().skip(1).map(str::to_owned).collect()
}

#[test]
fn synthea_bundles_import_with_nullable_and_signed_columns() {
    let (schema, mapping) = fhir_v1();
    let imported = import(&schema, &mapping, &[root().join("examples/fhir/bundles")]);
    // age,sex,dx,hba1c,sbp,weight,base_excess,consent,site — files in path order:
    // hospitalInformation.json (no patient), registry-collection.json, synthea-transaction.json.
    assert_eq!(
        rows(&imported.dataset),
        [
            // gender "other"; an ICD-10-CM coding is read before the SNOMED CT one, and I10
            // precedes E78.5 in the priority list; 132 lb written as `unit: "lb"` (no UCUM
            // code) is 59.874 kg.
            "23,X,I10,5.4,121,59.9,,trials,2",
            // no HbA1c and no base excess: missing; no Consent: the default (none).
            "14,M,H66.90,,105,52.0,,,2",
            // SNOMED 44054006 → E11 wins over I10 by priority; the latest HbA1c on or before
            // the reference date (8.4), not the one after it (9.9); systolic from the blood
            // pressure panel's component; two Consents, research then trials.
            "63,F,E11,8.4,138,82.5,,research|trials,2",
            // born on the reference day's month and day: 46; HbA1c 48 mmol/mol → 6.5 %;
            // 198.4 [lb_av] → 90.0 kg; research permitted then denied.
            "46,M,I10,6.5,144,90.0,,,2",
            // the resolved pharyngitis is not read; a negative base excess.
            "34,F,J45.909,,112,58.0,-3.2,,2",
            // born 29 February; E11 (2001) before E11.21 (2015); HbA1c 7.3 at 15:00Z is later
            // than 7.1 at 09:30-05:00; research by scope, genomics by purpose.
            "76,M,E11,7.3,152,77.3,-6.8,research|genomics,2",
            // E10; a Consent whose period ended before the reference date is not in force.
            "54,M,E10,7.6,128,75.0,,,2",
            // the entered-in-error E11 and the resolved COVID-19 are not read; the HbA1c taken
            // on the reference date (20:00Z) counts.
            "39,F,R73.03,6.3,118,70.2,,research,2",
        ]
    );
    let r = &imported.report;
    assert_eq!((r.files, r.patients_read, r.imported), (3, 10, 8));
    assert_eq!(r.other_resources["Organization"], 1);
    assert_eq!(r.other_resources["Encounter"], 1);
    assert_eq!(
        r.skipped
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("deceased on or before the reference date", 1),
            ("no birthDate (column `age`)", 1)
        ]
    );
    assert_eq!(
        r.missing
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("base_excess", 6), ("hba1c", 2)]
    );
    assert_eq!(r.several_diagnoses, 4, "Olivia, Maria, James, Robert");
    assert_eq!(r.unmapped_codes.len(), 1);
    assert_eq!(
        (
            r.unmapped_codes[0].code.as_str(),
            r.unmapped_codes[0].conditions
        ),
        ("160903007", 1)
    );
    assert_eq!(r.ignored["Observation after the reference date"], 1);
    assert_eq!(r.ignored["Condition refuted or entered in error"], 1);
    assert_eq!(
        r.ignored["Condition of a clinical status the mapping does not read"],
        2
    );
    assert_eq!(r.ignored["Consent not in force on the reference date"], 1);
    // The per-patient report names sources, never values.
    let maria = r
        .patients
        .iter()
        .find(|p| p.record == Some(2))
        .expect("Maria is record 2");
    assert!(
        maria.sources["hba1c"].starts_with("Observation/"),
        "{maria:?}"
    );
    assert!(
        maria.sources["sbp"].ends_with(".component[1].valueQuantity"),
        "{maria:?}"
    );
    assert_eq!(maria.missing, ["base_excess"]);
    let james = r.patients.iter().find(|p| p.record == Some(3)).unwrap();
    assert!(
        james.sources["hba1c"].ends_with("(converted from mmol/mol)"),
        "{james:?}"
    );
    let report = serde_json::to_string(r).unwrap();
    for value in ["8.4", "82.5", "E11.21"] {
        assert!(
            !report.contains(value),
            "the report holds no record value ({value})"
        );
    }
}

#[test]
fn ndjson_bulk_export_imports_the_same_way() {
    let (schema, mapping) = fhir_v1();
    let imported = import(&schema, &mapping, &[root().join("examples/fhir/ndjson")]);
    assert_eq!(
        rows(&imported.dataset),
        [
            // an ICD-10-CM coding; systolic in a panel component.
            "58,F,E11.65,9.1,146,95.2,1.5,research,2",
            // 53 mmol/mol → 6.9995 → 7.0 %; 16.8 kPa → 126.01 mm[Hg]; trials denied (never
            // granted), research permitted.
            "65,M,E11,7.0,126,81.0,,research,2",
            // a base excess reported as "< -30" (a comparator) is not a value: missing.
            "32,F,J45.909,,110,61.5,,,2",
            // I10 is in the priority list, COPD (J44.9) is not.
            "74,M,I10,5.9,158,70.0,-8.4,research,2",
            // no gender and only an unmapped condition: both missing (nullable).
            "44,,,5.6,130,88.0,,,2",
            // two HbA1c at the same instant: the later line (7.4) wins.
            "49,F,E11,7.4,135,79.9,,research|recontact,2",
        ]
    );
    let r = &imported.report;
    assert_eq!((r.files, r.patients_read, r.imported), (5, 6, 6));
    assert_eq!(r.other_resources["Encounter"], 2);
    assert_eq!(r.ignored["Observation of no Patient read"], 1);
    assert_eq!(
        r.ignored["Observation value with a comparator (<, <=, >=, >)"],
        1
    );
    assert_eq!(r.several_diagnoses, 2);
    assert_eq!(
        r.missing
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("base_excess", 4), ("dx", 1), ("hba1c", 1), ("sex", 1)]
    );
}

#[test]
fn the_clinical_schema_skips_patients_without_its_columns_and_answers_like_a_plain_script() {
    let (schema, mapping) = clinical_v1();
    let both = [
        root().join("examples/fhir/bundles"),
        root().join("examples/fhir/ndjson"),
    ];
    let imported = import(&schema, &mapping, &both);
    let r = &imported.report;
    assert_eq!((r.patients_read, r.imported), (16, 10));
    assert_eq!(
        r.skipped,
        [
            (
                "deceased on or before the reference date".to_owned(),
                1usize
            ),
            ("no birthDate (column `age`)".to_owned(), 1),
            (
                "no Observation of LOINC 4548-4, 17856-6 on or before the reference date \
                 (column `hba1c`)"
                    .to_owned(),
                3
            ),
            ("no gender (column `sex`)".to_owned(), 1),
        ]
        .into_iter()
        .collect()
    );
    // BMI 27.75 rounds half up; the constant site.
    assert!(
        rows(&imported.dataset).contains(&"76,M,E11,7.3,152,27.8,research|genomics,1".to_owned())
    );
    // The plain computation over the imported records equals the same question asked of the
    // natural values by hand: HbA1c of consenting (research) patients under E11, aged 40-70.
    let spec: QuerySpec = serde_json::from_str(
        r#"{"criteria":{"age":[40,70],"dx":{"prefix":"E11"}},"consent":"research","statistic":"hba1c","min_cohort":1}"#,
    )
    .unwrap();
    let result = evaluate(
        &schema,
        &imported.dataset.records,
        &spec.compile(&schema).unwrap(),
    );
    // Maria 8.4, n1 9.1 (E11.65), n2 7.0, n6 7.4; Robert (76) is too old, James has I10.
    assert_eq!(result.count, 4);
    assert_eq!(result.sum, (84u32 + 91 + 70 + 74).into());
    let (mean, _) = schema.columns[3].natural_mean_variance(&result).unwrap();
    assert!((mean - (8.4 + 9.1 + 7.0 + 7.4) / 4.0).abs() < 1e-9);
}

/// A nullable statistic: a criterion on the column excludes missing values, and the plain
/// answer equals the mean over the present values only (what pandas' `mean()` does).
#[test]
fn missing_values_never_match_a_criterion() {
    let (schema, mapping) = fhir_v1();
    let imported = import(
        &schema,
        &mapping,
        &[
            root().join("examples/fhir/bundles"),
            root().join("examples/fhir/ndjson"),
        ],
    );
    let compile = |json: &str| {
        serde_json::from_str::<QuerySpec>(json)
            .unwrap()
            .compile(&schema)
    };
    let err = compile(r#"{"consent":"research","statistic":"base_excess"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("need the fast circuits of #8"), "{err}");
    let q = compile(
        r#"{"criteria":{"base_excess":{"max":0}},"consent":"research","statistic":"base_excess","min_cohort":1}"#,
    )
    .unwrap();
    let r = evaluate(&schema, &imported.dataset.records, &q);
    // Consenting to research with a base excess ≤ 0: Robert -6.8 and n4 -8.4.
    assert_eq!(r.count, 2);
    let (mean, _) = schema.columns[6].natural_mean_variance(&r).unwrap();
    assert!((mean - (-6.8 - 8.4) / 2.0).abs() < 1e-9, "{mean}");
    // No criterion on a nullable column keeps records whose value is missing: every consenting
    // (research) patient counts, 4 of whom have no base excess.
    let all = compile(r#"{"consent":"research","statistic":"age","min_cohort":1}"#).unwrap();
    assert_eq!(evaluate(&schema, &imported.dataset.records, &all).count, 7);
}

/// Writes NDJSON lines to a file in `dir`.
fn ndjson(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn errors(inputs: &[PathBuf]) -> Vec<String> {
    let (schema, mapping) = fhir_v1();
    match fhir::import(&schema, &mapping, inputs, &mut |_, _, _| {}) {
        Ok(_) => panic!("imported"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

const PATIENT: &str =
    r#"{"resourceType":"Patient","id":"p1","birthDate":"1970-05-05","gender":"female"}"#;

fn obs(id: &str, quantity: &str) -> String {
    format!(
        r#"{{"resourceType":"Observation","id":"{id}","status":"final","subject":{{"reference":"Patient/p1"}},"effectiveDateTime":"2024-01-01","code":{{"coding":[{{"system":"http://loinc.org","code":"4548-4"}}]}},"valueQuantity":{quantity}}}"#
    )
}

#[test]
fn every_bad_field_is_named_by_file_place_resource_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let bad_unit = obs(
        "o1",
        r#"{"value":7,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}"#,
    );
    let no_unit = obs("o2", r#"{"value":7}"#);
    let no_value = obs("o3", r#"{"unit":"%"}"#);
    let too_wide = r#"{"resourceType":"Observation","id":"o4","status":"final","subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-01-01","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":300,"unit":"mm[Hg]"}}"#;
    let undated = r#"{"resourceType":"Observation","id":"o5","status":"final","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"valueQuantity":{"value":70,"unit":"kg"}}"#;
    let file = ndjson(
        d,
        "bad.ndjson",
        &[
            PATIENT,
            r#"{"resourceType":"Patient","id":"p2","birthDate":1970,"gender":"female"}"#,
            r#"{"resourceType":"Patient","id":"p3","birthDate":"1970-13-01","gender":"nonbinary"}"#,
            &bad_unit,
            &no_unit,
            &no_value,
            too_wide,
            undated,
            r#"{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"},"clinicalStatus":{"coding":[{"code":"active"}]},"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"B2O"}]}}"#,
            r#"{"resourceType":"Consent","id":"k1","status":"active","patient":{"reference":"Patient/p1"},"provision":{"type":"maybe","purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"HRESCH"}]}}"#,
        ],
    );
    let f = file.display();
    let got = errors(std::slice::from_ref(&file));
    let want = [
        format!("{f}:2: Patient/p2: birthDate: expected a string, found a number"),
        format!("{f}:3: Patient/p3: birthDate: `1970-13-01` is not a FHIR date"),
        format!("{f}:3: Patient/p3: gender: `nonbinary` is not in the mapping's `values` for column `sex` [female, male, other, unknown]"),
        format!("{f}:9: Condition/c1: code.coding[0].code: `B2O`: character 3 (`O`) must be a digit"),
        format!("{f}:4: Observation/o1: valueQuantity.code: unit `mg/dL` is not the column's `%`"),
        format!("{f}:5: Observation/o2: valueQuantity: no unit"),
        format!("{f}:6: Observation/o3: valueQuantity.value: no `value`"),
        format!("{f}:7: Observation/o4: valueQuantity.value: column `sbp`: `300` encodes to 300, outside the declared 8 bits"),
        format!("{f}:8: Observation/o5: effective[x]: no effectiveDateTime"),
        format!("{f}:10: Consent/k1: provision.type: `maybe` is neither `permit` nor `deny`"),
    ];
    for w in &want {
        assert!(
            got.iter().any(|g| g.starts_with(w.as_str())),
            "missing {w}\n got {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "each problem once: {got:#?}");
    let icd = got.iter().find(|g| g.contains("Condition/c1")).unwrap();
    assert!(icd.contains("did you mean `B20`?"), "{icd}");
}

#[test]
fn bad_files_are_named_and_nothing_is_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let history = d.join("history.json");
    fs::write(
        &history,
        r#"{"resourceType":"Bundle","type":"history","entry":[]}"#,
    )
    .unwrap();
    let got = errors(std::slice::from_ref(&history));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(&format!(
            "{}: a Bundle of type `history`",
            history.display()
        )),
        "{}",
        got[0]
    );

    let broken = d.join("broken.json");
    fs::write(
        &broken,
        r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":"#,
    )
    .unwrap();
    let got = errors(std::slice::from_ref(&broken));
    assert!(
        got[0].starts_with(&format!("{}: not JSON", broken.display())),
        "{}",
        got[0]
    );

    let lines = ndjson(d, "lines.ndjson", &[PATIENT, "{not json", r#"{"id":"x"}"#]);
    let got = errors(std::slice::from_ref(&lines));
    assert!(
        got[0].starts_with(&format!("{}:2: not JSON", lines.display())),
        "{got:?}"
    );
    assert!(
        got[1].starts_with(&format!("{}:3: not a FHIR resource", lines.display())),
        "{got:?}"
    );

    let anonymous = ndjson(
        d,
        "anonymous.ndjson",
        &[r#"{"resourceType":"Patient","birthDate":"1970-01-01"}"#],
    );
    let got = errors(std::slice::from_ref(&anonymous));
    assert!(got[0].contains(":1: Patient: no `id`"), "{got:?}");

    let again = ndjson(d, "again.ndjson", &[PATIENT]);
    let first = ndjson(d, "first.ndjson", &[PATIENT]);
    let got = errors(&[first.clone(), again.clone()]);
    assert_eq!(
        got,
        [format!(
            "{}:1: Patient/p1: a second Patient with this id (the first is at {}:1)",
            again.display(),
            first.display()
        )]
    );

    let empty = d.join("empty");
    fs::create_dir(&empty).unwrap();
    fs::write(empty.join("notes.txt"), "x").unwrap();
    let got = errors(std::slice::from_ref(&empty));
    assert!(got[0].contains("no .json or .ndjson file"), "{got:?}");

    // Past 20 errors the list stops with a note.
    let many: Vec<String> = (0..30)
        .map(|i| {
            format!(
                r#"{{"resourceType":"Patient","id":"m{i}","birthDate":"19x0","gender":"male"}}"#
            )
        })
        .collect();
    let many = ndjson(
        d,
        "many.ndjson",
        &many.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let got = errors(&[many]);
    assert_eq!(got.len(), 21);
    assert_eq!(got[20], "more errors not shown (stopped after 20)");
}

#[test]
fn population_rules_at_the_reference_date() {
    let tmp = tempfile::tempdir().unwrap();
    let (schema, mapping) = fhir_v1();
    let file = ndjson(
        tmp.path(),
        "Patient.ndjson",
        &[
            // a partial birth date: 1 January assumed, counted.
            r#"{"resourceType":"Patient","id":"a","birthDate":"1980","gender":"male"}"#,
            r#"{"resourceType":"Patient","id":"b","birthDate":"2025-01-02","gender":"male"}"#,
            r#"{"resourceType":"Patient","id":"c","birthDate":"1950-01-01","gender":"male","deceasedBoolean":true}"#,
            r#"{"resourceType":"Patient","id":"d","birthDate":"1950-01-01","gender":"male","deceasedDateTime":"2025-06-01"}"#,
            r#"{"resourceType":"Patient","id":"e","birthDate":"1950-01-01","gender":"unknown"}"#,
            r#"{"resourceType":"Observation","id":"o1","status":"preliminary","subject":{"reference":"Patient/e"},"effectiveDateTime":"2024-01-01","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"valueQuantity":{"value":7,"unit":"%"}}"#,
        ],
    );
    let imported = import(&schema, &mapping, &[file]);
    assert_eq!(
        rows(&imported.dataset),
        [
            "45,M,,,,,,,2",
            // died after the reference date: still in the population on it; "unknown" maps to
            // an empty (missing) sex; a preliminary HbA1c is not read.
            "75,M,,,,,,,2",
            "75,,,,,,,,2",
        ]
    );
    let r = &imported.report;
    assert_eq!(r.partial_birth_dates, 1);
    assert_eq!(r.skipped["born after the reference date"], 1);
    assert_eq!(r.skipped["deceased (deceasedBoolean, no date)"], 1);
    assert_eq!(r.ignored["Observation not final, amended or corrected"], 1);
}

/// Seconds since 1970-01-01T00:00:00Z of a FHIR date (`YYYY-MM-DD`: that day's start in UTC)
/// or dateTime (`YYYY-MM-DDThh:mm:ss[.f](Z|±hh:mm)`). Written here, not the crate's.
fn plain_instant(text: &str) -> i64 {
    let num = |s: &str| s.parse::<i64>().unwrap();
    let (y, m, d) = (num(&text[0..4]), num(&text[5..7]), num(&text[8..10]));
    // Days from civil (proleptic Gregorian), H. Hinnant's algorithm.
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let mut seconds = days * 86_400;
    if text.len() > 10 {
        let time = &text[11..];
        seconds += num(&time[0..2]) * 3600 + num(&time[3..5]) * 60 + num(&time[6..8]);
        let zone = time.find(['Z', '+', '-']).map_or("Z", |i| &time[i..]);
        if zone != "Z" {
            let offset = num(&zone[1..3]) * 3600 + num(&zone[4..6]) * 60;
            seconds -= if zone.starts_with('-') {
                -offset
            } else {
                offset
            };
        }
    }
    seconds
}

/// Every resource of `examples/fhir/bundles` and `examples/fhir/ndjson`, in file order, with
/// its bundle entry's `fullUrl`.
fn plain_resources() -> Vec<(Value, Option<String>)> {
    let mut out = Vec::new();
    for dir in ["bundles", "ndjson"] {
        let mut files: Vec<PathBuf> = fs::read_dir(root().join("examples/fhir").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            if file.extension().unwrap() == "ndjson" {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    out.push((serde_json::from_str(line).unwrap(), None));
                }
            } else {
                let bundle: Value = serde_json::from_str(&text).unwrap();
                for entry in bundle["entry"].as_array().unwrap() {
                    let url = entry["fullUrl"].as_str().map(str::to_owned);
                    out.push((entry["resource"].clone(), url));
                }
            }
        }
    }
    out
}

/// The codings (`system|code`) of a CodeableConcept.
fn codings(concept: &Value) -> Vec<String> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}|{}",
                c["system"].as_str().unwrap_or(""),
                c["code"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The answer to "HbA1c of patients aged 40-70 with a type 2 diabetes diagnosis (ICD-10 E11),
/// consenting to research" read straight from the FHIR JSON with the rules of
/// `examples/fhir/mapping-clinical-v1.json` (reference date 2025-01-01), without the crate's
/// FHIR reader: the HbA1c values of the patients in the cohort, in %.
fn plain_e11_hba1c() -> Vec<f64> {
    let day_start = plain_instant("2025-01-01");
    let day_end = day_start + 86_399; // "on the reference day counts, in UTC"
    let resources = plain_resources();
    // Patient references: `Patient/<id>` and the bundle's `urn:uuid:` fullUrls.
    let mut patients: BTreeMap<String, &Value> = BTreeMap::new();
    for (r, url) in &resources {
        if r["resourceType"] == "Patient" {
            let id = r["id"].as_str().unwrap();
            patients.insert(format!("Patient/{id}"), r);
            if let Some(url) = url {
                patients.insert(url.clone(), r);
            }
        }
    }
    let owner = |r: &Value, field: &str| -> Option<String> {
        let reference = r[field]["reference"].as_str()?;
        patients
            .get(reference)
            .map(|p| p["id"].as_str().unwrap().to_owned())
    };
    // The SNOMED CT table the mapping uses (data, read as CSV).
    let snomed: BTreeMap<String, String> =
        fs::read_to_string(root().join("prover/src/fhir/snomed_icd10.csv"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut f = l.split(',');
                (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
            })
            .collect();

    // Per patient: ICD-10 codes read, the latest value per LOINC group, research consent.
    let mut codes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // (instant, input order, value in the column's unit)
    let mut latest: BTreeMap<(String, &str), (i64, usize, f64)> = BTreeMap::new();
    let mut consents: Vec<(String, Option<i64>, usize, bool)> = Vec::new();
    let loinc_groups: [(&str, &[&str]); 3] = [
        ("hba1c", &["4548-4", "17856-6"]),
        ("sbp", &["8480-6"]),
        ("bmi", &["39156-5"]),
    ];
    let research = [
        "http://terminology.hl7.org/CodeSystem/consentscope|research",
        "http://terminology.hl7.org/CodeSystem/v3-ActReason|HRESCH",
    ];
    for (index, (r, _)) in resources.iter().enumerate() {
        match r["resourceType"].as_str().unwrap() {
            "Condition" => {
                let Some(patient) = owner(r, "subject") else {
                    continue;
                };
                let verification = codings(&r["verificationStatus"]);
                if verification
                    .iter()
                    .any(|c| c.ends_with("|refuted") || c.ends_with("|entered-in-error"))
                {
                    continue;
                }
                let clinical = codings(&r["clinicalStatus"]);
                if !clinical.is_empty()
                    && !clinical.iter().any(|c| {
                        c.ends_with("|active")
                            || c.ends_with("|recurrence")
                            || c.ends_with("|relapse")
                    })
                {
                    continue;
                }
                let onset = r["onsetDateTime"]
                    .as_str()
                    .or(r["onsetPeriod"]["start"].as_str())
                    .or(r["recordedDate"].as_str());
                if onset.is_some_and(|t| plain_instant(t) > day_end) {
                    continue;
                }
                let all = codings(&r["code"]);
                let icd = all.iter().find_map(|c| {
                    c.strip_prefix("http://hl7.org/fhir/sid/icd-10-cm|")
                        .or(c.strip_prefix("http://hl7.org/fhir/sid/icd-10|"))
                        .map(str::to_owned)
                });
                let code = icd.or_else(|| {
                    all.iter().find_map(|c| {
                        snomed
                            .get(c.strip_prefix("http://snomed.info/sct|")?)
                            .cloned()
                    })
                });
                if let Some(code) = code {
                    codes.entry(patient).or_default().push(code);
                }
            }
            "Observation" => {
                let Some(patient) = owner(r, "subject") else {
                    continue;
                };
                if !matches!(
                    r["status"].as_str(),
                    None | Some("final" | "amended" | "corrected")
                ) {
                    continue;
                }
                let when = r["effectiveDateTime"]
                    .as_str()
                    .or(r["effectiveInstant"].as_str())
                    .or(r["effectivePeriod"]["start"].as_str())
                    .or(r["issued"].as_str())
                    .map(plain_instant)
                    .unwrap();
                if when > day_end {
                    continue;
                }
                for (column, loinc) in loinc_groups {
                    let has = |concept: &Value| {
                        codings(concept)
                            .iter()
                            .any(|c| loinc.iter().any(|l| *c == format!("http://loinc.org|{l}")))
                    };
                    let quantity = if has(&r["code"]) {
                        Some(&r["valueQuantity"])
                    } else {
                        r["component"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|c| has(&c["code"]))
                            .map(|c| &c["valueQuantity"])
                    };
                    let Some(q) = quantity.filter(|q| q["value"].is_number()) else {
                        continue;
                    };
                    if q.get("comparator").is_some() {
                        continue;
                    }
                    let v = q["value"].as_f64().unwrap();
                    let unit = q["code"].as_str().or(q["unit"].as_str()).unwrap();
                    let value = match (column, unit) {
                        // IFCC mmol/mol to NGSP %, the mapping's conversion.
                        ("hba1c", "mmol/mol") => v / 10.929 + 2.15,
                        _ => v,
                    };
                    let key = (patient.clone(), column);
                    if latest
                        .get(&key)
                        .is_none_or(|&(t, i, _)| (when, index) > (t, i))
                    {
                        latest.insert(key, (when, index, value));
                    }
                }
            }
            "Consent" => {
                let Some(patient) = owner(r, "patient") else {
                    continue;
                };
                let dated = r["dateTime"].as_str().map(plain_instant);
                let period = &r["provision"]["period"];
                let in_force = r["status"] == "active"
                    && dated.is_none_or(|t| t <= day_end)
                    && period["start"]
                        .as_str()
                        .is_none_or(|s| plain_instant(s) <= day_end)
                    && period["end"]
                        .as_str()
                        .is_none_or(|e| plain_instant(e) + 86_399 >= day_start);
                let mut all = codings(&r["scope"]);
                for c in r["category"].as_array().into_iter().flatten() {
                    all.extend(codings(c));
                }
                for p in r["provision"]["purpose"].as_array().into_iter().flatten() {
                    all.extend(codings(&serde_json::json!({ "coding": [p] })));
                }
                if in_force && all.iter().any(|c| research.contains(&c.as_str())) {
                    let permit = r["provision"]["type"].as_str() != Some("deny");
                    consents.push((patient, dated, index, permit));
                }
            }
            _ => {}
        }
    }
    // Undated first, then by date, then input order; the last word wins.
    consents.sort_by_key(|(_, dated, index, _)| (dated.is_some(), *dated, *index));
    let mut consenting = BTreeSet::new();
    for (patient, _, _, permit) in consents {
        if permit {
            consenting.insert(patient);
        } else {
            consenting.remove(&patient);
        }
    }

    let mut cohort = Vec::new();
    for (key, p) in &patients {
        if !key.starts_with("Patient/") {
            continue; // the same patient under its fullUrl
        }
        let id = p["id"].as_str().unwrap().to_owned();
        let Some(birth) = p["birthDate"].as_str() else {
            continue; // the clinical schema's age is not nullable: skipped
        };
        let dead = p["deceasedBoolean"] == true
            || p["deceasedDateTime"]
                .as_str()
                .is_some_and(|t| plain_instant(t) <= day_end);
        let known_sex = matches!(p["gender"].as_str(), Some("female" | "male" | "other"));
        let values = |column| latest.get(&(id.clone(), column)).map(|v| v.2);
        let (Some(hba1c), Some(_), Some(_)) = (values("hba1c"), values("sbp"), values("bmi"))
        else {
            continue; // a required column without a value: skipped
        };
        let diagnoses = codes.get(&id).cloned().unwrap_or_default();
        if dead || !known_sex || diagnoses.is_empty() || plain_instant(birth) > day_end {
            continue;
        }
        let (by, bm, bd) = (&birth[0..4], &birth[5..7], &birth[8..10]);
        let age = 2025
            - by.parse::<i64>().unwrap()
            - i64::from((1, 1) < (bm.parse::<u32>().unwrap(), bd.parse::<u32>().unwrap()));
        if (40..=70).contains(&age)
            && diagnoses.iter().any(|c| c.starts_with("E11"))
            && consenting.contains(&id)
        {
            // Rounded half away from zero to the column's one decimal.
            cohort.push((hba1c * 10.0).round() / 10.0);
        }
    }
    cohort
}

/// Importing both example inputs with the clinical schema, then proving a query with a real
/// proof (verified offline against the committed verifier), equals reading the FHIR JSON with
/// the plain reader above.
#[test]
fn importing_fhir_then_proving_equals_a_plain_reading_of_the_json() {
    let (schema, mapping) = clinical_v1();
    let imported = import(
        &schema,
        &mapping,
        &[
            root().join("examples/fhir/bundles"),
            root().join("examples/fhir/ndjson"),
        ],
    );
    let spec: QuerySpec = serde_json::from_str(
        r#"{"name":"E11 HbA1c, 40-70","criteria":{"age":[40,70],"dx":{"prefix":"E11"}},"consent":"research","statistic":"hba1c","min_cohort":1}"#,
    )
    .unwrap();

    const CAPACITY: usize = 48; // the clinical circuit the other real-proof tests use
    let store = KeyStore::new(root().join(".zkcohort"), ParamsSource::Dev);
    let (params, keys) = store
        .circuit(&schema, &RecordLayout::new(&schema, CAPACITY))
        .unwrap();
    let (_dir, data) = common::committed(&imported.dataset, Some(CAPACITY), 11);
    let artifact = proof::prove(&keys, &params, &data, &spec, None).unwrap();
    let manifest = Manifest::load(&root().join("contracts/verifiers/verifiers.json")).unwrap();
    proof::verify(&artifact, &store, &manifest).unwrap();
    let released = &artifact.public.result;
    assert_eq!(
        released,
        &evaluate(
            &schema,
            &imported.dataset.records,
            &spec.compile(&schema).unwrap()
        )
    );

    let plain = plain_e11_hba1c();
    assert!(
        plain.len() >= 3,
        "the fixtures exercise the query: {plain:?}"
    );
    assert_eq!(released.count, plain.len() as u64, "{plain:?}");
    assert!(!released.suppressed);
    let (mean, variance) = schema.columns[3].natural_mean_variance(released).unwrap();
    let n = plain.len() as f64;
    let plain_mean = plain.iter().sum::<f64>() / n;
    let plain_variance = plain.iter().map(|v| (v - plain_mean).powi(2)).sum::<f64>() / n;
    assert!((mean - plain_mean).abs() < 1e-9, "{mean} vs {plain:?}");
    assert!(
        (variance - plain_variance).abs() < 1e-9,
        "{variance} vs {plain:?}"
    );
}
