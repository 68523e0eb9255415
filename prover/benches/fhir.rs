//! Import speed of `zkcohort dataset import --fhir` (issue #10): Synthea-like FHIR R4 patients,
//! as one Bundle per patient and as an NDJSON bulk export of the same patients.
//!
//! `cargo bench -p zkcohort --bench fhir` generates 1,000 and 10,000 patients (set
//! `ZKCOHORT_BENCH_PATIENTS=1000,10000,50000` for other sizes) into a temporary directory
//! before timing, with examples/fhir/schema-fhir-v1.json and mapping-fhir-v1.json (the schema
//! and mapping tests/fhir.rs checks). Each timed iteration is what the command does: read and
//! map every file ([`fhir::import`]), then write records.csv, schema.json and the per-patient
//! report (`--report`) into a fresh temporary directory. Before timing, each form's import is
//! checked: every patient read, all but the deceased ones imported, both forms giving the same
//! records, and the SNOMED CT, `mmol/mol`, `[lb_av]` and `kPa` paths taken. Results are
//! recorded in docs/benchmarks.md.

// `criterion_group!` defines an undocumented public fn.
#![allow(missing_docs)]

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use zkcohort::{
    dataset::{write_atomic, DatasetDir},
    fhir::{self, FhirImport, Mapping},
    schema::Schema,
};

const SYNTHEA: &str = "https://github.com/synthetichealth/synthea";
const ICD10_CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const SNOMED: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

fn sizes() -> Vec<usize> {
    std::env::var("ZKCOHORT_BENCH_PATIENTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("ZKCOHORT_BENCH_PATIENTS: comma-separated patient counts")
        })
        .collect()
}

/// Conditions as Synthea records them: `(SNOMED CT, display)`; most are in the built-in
/// SNOMED CT → ICD-10-CM table, the social findings and a few disorders are not.
const SNOMED_CONDITIONS: &[(&str, &str)] = &[
    ("44054006", "Diabetes mellitus type 2 (disorder)"),
    ("38341003", "Hypertension (disorder)"),
    ("55822004", "Hyperlipidemia (disorder)"),
    ("714628002", "Prediabetes (finding)"),
    ("162864005", "Body mass index 30+ - obesity (finding)"),
    ("195967001", "Asthma (disorder)"),
    ("444814009", "Viral sinusitis (disorder)"),
    ("10509002", "Acute bronchitis (disorder)"),
    (
        "840539006",
        "Disease caused by severe acute respiratory syndrome coronavirus 2",
    ),
    ("431856006", "Chronic kidney disease stage 2 (disorder)"),
    ("239873007", "Osteoarthritis of knee (disorder)"),
    ("160903007", "Full-time employment (finding)"),
    ("73595000", "Stress (finding)"),
    ("266948004", "Has a criminal record (finding)"),
    ("706893006", "Victim of intimate partner abuse (finding)"),
];

/// Conditions coded in ICD-10-CM (with a SNOMED CT coding after it, as some EHRs export).
const ICD10_CONDITIONS: &[(&str, &str)] = &[
    ("E11.65", "Type 2 diabetes mellitus with hyperglycemia"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    (
        "K21.9",
        "Gastro-esophageal reflux disease without esophagitis",
    ),
    ("F41.1", "Generalized anxiety disorder"),
    ("G47.33", "Obstructive sleep apnea"),
    ("E10.9", "Type 1 diabetes mellitus without complications"),
];

const GIVEN: &[&str] = &[
    "Maria", "James", "Olivia", "Robert", "Aisha", "Wei", "Sofia", "Liam", "Fatima", "Noah",
];
const FAMILY: &[&str] = &[
    "Hernández",
    "Smith",
    "Nguyen",
    "Okafor",
    "Müller",
    "Rossi",
    "Kowalski",
    "Tanaka",
    "Silva",
];

/// The synthetic patients: each patient's resources, Patient first, in the order Synthea
/// writes them (visits in date order).
struct Population {
    patients: Vec<Vec<Value>>,
    /// Patients deceased before the reference date (2025-01-01): read, not imported.
    deceased: usize,
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.gen();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn date(rng: &mut ChaCha8Rng, from_year: i32, to_year: i32) -> (i32, u32, u32) {
    (
        rng.gen_range(from_year..=to_year),
        rng.gen_range(1..=12),
        rng.gen_range(1..=28),
    )
}

fn date_time((y, m, d): (i32, u32, u32), rng: &mut ChaCha8Rng) -> String {
    let offset = ["-05:00", "-04:00", "+00:00", "+01:00", "+02:00"]
        .choose(rng)
        .unwrap();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{offset}",
        rng.gen_range(7..19),
        rng.gen_range(0..60),
        rng.gen_range(0..60)
    )
}

fn codeable(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display })
}

fn quantity(value: f64, decimals: usize, code: &str, unit: &str) -> Value {
    let value: f64 = format!("{value:.decimals$}").parse().unwrap();
    json!({ "value": value, "unit": unit, "system": UCUM, "code": code })
}

fn category(code: &str, display: &str) -> Value {
    json!([{ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": code,
        "display": display
    }] }])
}

fn observation(
    rng: &mut ChaCha8Rng,
    patient: &str,
    encounter: &str,
    when: &str,
    (loinc, display): (&str, &str),
    lab: bool,
    (field, value): (&str, Value),
) -> Value {
    // One in 50 is still preliminary: read, not used.
    let status = if rng.gen_ratio(1, 50) {
        "preliminary"
    } else {
        "final"
    };
    let mut o = json!({
        "resourceType": "Observation",
        "id": uuid(rng),
        "meta": { "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"] },
        "status": status,
        "category": if lab { category("laboratory", "Laboratory") } else { category("vital-signs", "Vital signs") },
        "code": codeable(LOINC, loinc, display),
        "subject": { "reference": patient },
        "encounter": { "reference": encounter },
        "effectiveDateTime": when,
        "issued": when,
    });
    o[field] = value;
    o
}

/// Generates `n` patients deterministically. References are written as `{REF}{id}` and
/// replaced per form (`urn:uuid:` in Bundles, `Patient/` in NDJSON).
fn population(n: usize) -> Population {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0f41_2025);
    let mut patients = Vec::with_capacity(n);
    let mut deceased = 0;
    for i in 0..n {
        let id = uuid(&mut rng);
        let subject = format!("{{REF}}{id}");
        let mut resources = Vec::new();

        let birth = date(&mut rng, 1932, 2012);
        let gender = match rng.gen_range(0..100) {
            0 => "other",
            1 => "unknown",
            k if k % 2 == 0 => "female",
            _ => "male",
        };
        let given = *GIVEN.choose(&mut rng).unwrap();
        let family = *FAMILY.choose(&mut rng).unwrap();
        let mut patient = json!({
            "resourceType": "Patient",
            "id": id,
            "meta": { "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"] },
            "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Generated by <a href=\"https://github.com/synthetichealth/synthea\">Synthea</a>.</div>" },
            "extension": [
                { "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": if gender == "male" { "M" } else { "F" } },
                { "url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years", "valueDecimal": rng.gen_range(0.0..5.0) }
            ],
            "identifier": [
                { "system": SYNTHEA, "value": id },
                { "type": codeable("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"), "system": "http://hospital.smarthealthit.org", "value": id },
                { "type": codeable("http://terminology.hl7.org/CodeSystem/v2-0203", "SS", "Social Security Number"), "system": "http://hl7.org/fhir/sid/us-ssn", "value": format!("999-{:02}-{:04}", rng.gen_range(10..99), rng.gen_range(0..10000)) }
            ],
            "name": [{ "use": "official", "family": format!("{family}{}", i % 1000), "given": [given], "prefix": ["Mx."] }],
            "telecom": [{ "system": "phone", "value": format!("555-{:04}", rng.gen_range(0..10000)), "use": "home" }],
            "gender": gender,
            "birthDate": format!("{:04}-{:02}-{:02}", birth.0, birth.1, birth.2),
            "address": [{ "line": [format!("{} Example Street", rng.gen_range(1..999))], "city": "Springfield", "state": "MA", "postalCode": "01101", "country": "US" }],
            "maritalStatus": codeable("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"),
            "multipleBirthBoolean": false,
            "communication": [{ "language": codeable("urn:ietf:bcp:47", "en-US", "English (United States)") }]
        });
        if i % 100 == 7 {
            // A partial birth date (year and month): counted, read as the first of the month.
            patient["birthDate"] = json!(format!("{:04}-{:02}", birth.0, birth.1));
        }
        match i % 40 {
            3 => {
                patient["deceasedDateTime"] =
                    json!(date_time(date(&mut rng, 2020, 2024), &mut rng));
                deceased += 1;
            }
            // Deceased after the reference date: still in the population on it.
            23 => patient["deceasedDateTime"] = json!(date_time((2025, 3, 14), &mut rng)),
            _ => {}
        }
        resources.push(patient);

        // Visits (Encounter + Claim each), from 2017 to a little after the reference date.
        let visits = rng.gen_range(3..=6);
        let mut dates: Vec<(i32, u32, u32)> =
            (0..visits).map(|_| date(&mut rng, 2017, 2025)).collect();
        dates.sort();
        let diabetic = rng.gen_ratio(1, 4);
        let hba1c_base: f64 = if diabetic {
            rng.gen_range(6.5..10.5)
        } else {
            rng.gen_range(4.6..6.2)
        };
        let weight_base: f64 = rng.gen_range(45.0..130.0);
        let sbp_base: f64 = rng.gen_range(100.0..165.0);
        let has_base_excess = rng.gen_ratio(3, 20);
        let mut encounters = Vec::new();
        for &day in &dates {
            let when = date_time(day, &mut rng);
            let enc = uuid(&mut rng);
            let enc_ref = format!("urn:uuid:{enc}");
            resources.push(json!({
                "resourceType": "Encounter",
                "id": enc,
                "meta": { "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"] },
                "identifier": [{ "use": "official", "system": SYNTHEA, "value": enc }],
                "status": "finished",
                "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
                "type": [codeable(SNOMED, "162673000", "General examination of patient (procedure)")],
                "subject": { "reference": subject, "display": format!("{given} {family}") },
                "participant": [{ "type": [codeable("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer")], "period": { "start": when, "end": when }, "individual": { "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999999", "display": "Dr. Example" } }],
                "period": { "start": when, "end": when },
                "serviceProvider": { "reference": "Organization?identifier=https://github.com/synthetichealth/synthea|springfield", "display": "SPRINGFIELD GENERAL" }
            }));
            encounters.push((when, enc_ref));
        }

        // Conditions: 2 to 6, SNOMED CT (mapped or not) or ICD-10-CM, some resolved, one in
        // 30 entered in error, onsets at visits (some after the reference date).
        let mut conditions = Vec::new();
        if diabetic {
            conditions.push(("snomed", 0usize));
        }
        for _ in 0..rng.gen_range(2..=5) {
            if rng.gen_ratio(1, 3) {
                conditions.push(("icd10", rng.gen_range(0..ICD10_CONDITIONS.len())));
            } else {
                conditions.push(("snomed", rng.gen_range(0..SNOMED_CONDITIONS.len())));
            }
        }
        for (system, k) in conditions {
            let (when, enc_ref) = encounters.choose(&mut rng).unwrap().clone();
            let code = if system == "icd10" {
                let (code, display) = ICD10_CONDITIONS[k];
                json!({ "coding": [
                    { "system": ICD10_CM, "code": code, "display": display },
                    { "system": SNOMED, "code": "64572001", "display": "Disease (disorder)" }
                ], "text": display })
            } else {
                let (code, display) = SNOMED_CONDITIONS[k];
                codeable(SNOMED, code, display)
            };
            let clinical = if rng.gen_ratio(1, 5) {
                "resolved"
            } else {
                "active"
            };
            let verification = if rng.gen_ratio(1, 30) {
                "entered-in-error"
            } else {
                "confirmed"
            };
            let mut c = json!({
                "resourceType": "Condition",
                "id": uuid(&mut rng),
                "meta": { "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis"] },
                "clinicalStatus": codeable("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical, clinical),
                "verificationStatus": codeable("http://terminology.hl7.org/CodeSystem/condition-ver-status", verification, verification),
                "category": [codeable("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")],
                "code": code,
                "subject": { "reference": subject },
                "encounter": { "reference": enc_ref },
                "onsetDateTime": when,
                "recordedDate": when
            });
            if clinical == "resolved" {
                c["abatementDateTime"] = json!(when);
            }
            resources.push(c);
        }

        // Observations per visit: HbA1c (% or mmol/mol), a blood pressure panel (mm[Hg], one
        // in 20 in kPa), body weight (kg, one in 5 in [lb_av]), height and BMI (LOINC codes
        // the mapping does not read), and a base excess for some patients (signed).
        for (when, enc_ref) in &encounters {
            if rng.gen_ratio(7, 10) {
                let pct = hba1c_base + rng.gen_range(-0.6..0.6);
                let value = if rng.gen_ratio(1, 4) {
                    quantity((pct - 2.15) * 10.929, 0, "mmol/mol", "mmol/mol")
                } else {
                    quantity(pct, 1, "%", "%")
                };
                let o = observation(
                    &mut rng,
                    &subject,
                    enc_ref,
                    when,
                    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
                    true,
                    ("valueQuantity", value),
                );
                resources.push(o);
            }
            let sbp = sbp_base + rng.gen_range(-12.0..12.0);
            let dbp = sbp * rng.gen_range(0.55..0.7);
            let bp = |v: f64| {
                if in_kpa(v) {
                    quantity(v * 0.133_322_387_415, 1, "kPa", "kPa")
                } else {
                    quantity(v, 0, "mm[Hg]", "mm[Hg]")
                }
            };
            let components = json!([
                { "code": codeable(LOINC, "8462-4", "Diastolic Blood Pressure"), "valueQuantity": bp(dbp) },
                { "code": codeable(LOINC, "8480-6", "Systolic Blood Pressure"), "valueQuantity": bp(sbp) }
            ]);
            let o = observation(
                &mut rng,
                &subject,
                enc_ref,
                when,
                ("85354-9", "Blood pressure panel with all children optional"),
                false,
                ("component", components),
            );
            resources.push(o);
            let kg = weight_base + rng.gen_range(-3.0..3.0);
            let weight = if rng.gen_ratio(1, 5) {
                quantity(kg / 0.453_592_37, 1, "[lb_av]", "lb")
            } else {
                quantity(kg, 1, "kg", "kg")
            };
            let o = observation(
                &mut rng,
                &subject,
                enc_ref,
                when,
                ("29463-7", "Body Weight"),
                false,
                ("valueQuantity", weight),
            );
            resources.push(o);
            let cm = rng.gen_range(150.0..195.0);
            let o = observation(
                &mut rng,
                &subject,
                enc_ref,
                when,
                ("8302-2", "Body Height"),
                false,
                ("valueQuantity", quantity(cm, 1, "cm", "cm")),
            );
            resources.push(o);
            let bmi = kg / (cm / 100.0f64).powi(2);
            let o = observation(
                &mut rng,
                &subject,
                enc_ref,
                when,
                ("39156-5", "Body mass index (BMI) [Ratio]"),
                false,
                ("valueQuantity", quantity(bmi, 1, "kg/m2", "kg/m2")),
            );
            resources.push(o);
            if has_base_excess {
                let value = quantity(rng.gen_range(-12.0..6.0), 1, "mmol/L", "mmol/L");
                let o = observation(
                    &mut rng,
                    &subject,
                    enc_ref,
                    when,
                    ("1925-7", "Base excess in Arterial blood by calculation"),
                    true,
                    ("valueQuantity", value),
                );
                resources.push(o);
            }
        }

        // Consent: most patients permit research; some later deny or permit trials.
        let consents = match rng.gen_range(0..10) {
            0 => 0,
            1 | 2 => 2,
            _ => 1,
        };
        for k in 0..consents {
            let (purpose, display, permit) = if k == 0 {
                ("HRESCH", "healthcare research", "permit")
            } else if rng.gen_bool(0.5) {
                ("CLINTRCH", "clinical trial research", "permit")
            } else {
                ("HRESCH", "healthcare research", "deny")
            };
            resources.push(json!({
                "resourceType": "Consent",
                "id": uuid(&mut rng),
                "status": "active",
                "scope": codeable("http://terminology.hl7.org/CodeSystem/consentscope", "research", "Research"),
                "category": [codeable(LOINC, "59284-0", "Patient Consent")],
                "patient": { "reference": subject },
                "dateTime": date_time(date(&mut rng, 2015 + 4 * k, 2018 + 4 * k), &mut rng),
                "organization": [{ "reference": "Organization/springfield-general" }],
                "policyRule": codeable("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in"),
                "provision": {
                    "type": permit,
                    "purpose": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose, "display": display }]
                }
            }));
        }
        patients.push(resources);
    }
    Population { patients, deceased }
}

/// About one pressure in 20 is written in kPa, chosen by the value (no draw from the rng).
fn in_kpa(v: f64) -> bool {
    ((v * 10.0) as u64).is_multiple_of(20)
}

/// A resource with its patient references written for one form.
fn with_refs(resource: &Value, prefix: &str) -> String {
    serde_json::to_string(resource)
        .unwrap()
        .replace("{REF}", prefix)
}

/// Writes the population as one Bundle per patient (`{Given}_{Family}_{id}.json`, as Synthea
/// names them; alternately `transaction` and `collection`, pretty-printed) and as an NDJSON
/// bulk export (one file per resource type). Returns the two directories.
fn write_inputs(pop: &Population, root: &Path) -> (PathBuf, PathBuf) {
    let bundles = root.join("bundles");
    let ndjson = root.join("ndjson");
    fs::create_dir_all(&bundles).unwrap();
    fs::create_dir_all(&ndjson).unwrap();
    let mut lines: std::collections::BTreeMap<String, String> = Default::default();
    for (i, resources) in pop.patients.iter().enumerate() {
        let transaction = i % 2 == 0;
        let entries: Vec<Value> = resources
            .iter()
            .map(|r| {
                let resource: Value = serde_json::from_str(&with_refs(r, "urn:uuid:")).unwrap();
                let kind = r["resourceType"].as_str().unwrap();
                let mut entry = json!({
                    "fullUrl": format!("urn:uuid:{}", r["id"].as_str().unwrap()),
                    "resource": resource,
                });
                if transaction {
                    entry["request"] = json!({ "method": "POST", "url": kind });
                }
                entry
            })
            .collect();
        let bundle = json!({
            "resourceType": "Bundle",
            "type": if transaction { "transaction" } else { "collection" },
            "entry": entries,
        });
        let p = &resources[0];
        let name = format!(
            "{}_{}_{}.json",
            p["name"][0]["given"][0].as_str().unwrap(),
            p["name"][0]["family"].as_str().unwrap(),
            p["id"].as_str().unwrap()
        );
        fs::write(
            bundles.join(name),
            serde_json::to_vec_pretty(&bundle).unwrap(),
        )
        .unwrap();
        for r in resources {
            let kind = r["resourceType"].as_str().unwrap().to_owned();
            let out = lines.entry(kind).or_default();
            out.push_str(&with_refs(r, "Patient/"));
            out.push('\n');
        }
    }
    for (kind, text) in lines {
        fs::write(ndjson.join(format!("{kind}.ndjson")), text).unwrap();
    }
    (bundles, ndjson)
}

/// What `dataset import --fhir --report` does after reading: the dataset and the report, each
/// written atomically into `out`.
fn import_and_write(schema: &Schema, mapping: &Mapping, input: &Path, out: &Path) -> FhirImport {
    let imported = fhir::import(schema, mapping, &[input.to_owned()], &mut |_, _, _| {})
        .unwrap_or_else(|errors| panic!("import failed: {}", errors[0]));
    DatasetDir::new(out.join("data"))
        .write_dataset(&imported.dataset)
        .unwrap();
    write_atomic(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&imported.report).unwrap(),
    )
    .unwrap();
    imported
}

/// The import is not an error path: every patient read, all but the deceased ones imported,
/// the conversion and mapping paths taken.
fn check(imported: &FhirImport, pop: &Population) {
    let n = pop.patients.len();
    let r = &imported.report;
    assert_eq!(r.patients_read, n);
    assert_eq!(r.patients.len(), n);
    assert_eq!(imported.dataset.records.len(), n - pop.deceased);
    assert_eq!(r.imported, n - pop.deceased);
    assert_eq!(
        r.skipped.get("deceased on or before the reference date"),
        (pop.deceased > 0).then_some(&pop.deceased)
    );
    let resources: usize = pop.patients.iter().map(Vec::len).sum();
    assert_eq!(r.resources, resources);
    let sources = |needle: &str| {
        r.patients
            .iter()
            .filter(|p| p.sources.values().any(|s| s.contains(needle)))
            .count()
    };
    if n >= 100 {
        assert!(sources("(converted from mmol/mol)") > 0);
        assert!(sources("(converted from [lb_av])") > 0);
        assert!(sources("(converted from kPa)") > 0);
        assert!(r.several_diagnoses > 0);
        assert!(!r.unmapped_codes.is_empty());
        assert!(r.ignored["Condition refuted or entered in error"] > 0);
        assert!(r.ignored["Observation after the reference date"] > 0);
        assert!(r.partial_birth_dates > 0);
    }
}

/// The generated data's size: resources by type, and bytes of each form.
fn shape(pop: &Population, bundles: &Path, ndjson: &Path) -> String {
    let mut by_type: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in pop.patients.iter().flatten() {
        *by_type
            .entry(r["resourceType"].as_str().unwrap())
            .or_default() += 1;
    }
    let total: usize = by_type.values().sum();
    let bytes = |dir: &Path| -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    format!(
        "{} patients ({} deceased), {total} resources ({}); bundles {:.1} MiB, ndjson {:.1} MiB",
        pop.patients.len(),
        pop.deceased,
        by_type
            .iter()
            .map(|(t, k)| format!("{t} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        mib(bytes(bundles)),
        mib(bytes(ndjson)),
    )
}

fn rows(imported: &FhirImport) -> Vec<String> {
    let mut rows: Vec<String> = imported
        .dataset
        .to_csv()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect();
    rows.sort();
    rows
}

fn import(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let schema = Schema::load(&root.join("examples/fhir/schema-fhir-v1.json")).unwrap();
    let mapping = Mapping::load(&root.join("examples/fhir/mapping-fhir-v1.json"), &schema).unwrap();

    let mut group = c.benchmark_group("fhir_import");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500));
    for n in sizes() {
        let pop = population(n);
        let dir = tempfile::tempdir().unwrap();
        let (bundles, ndjson) = write_inputs(&pop, dir.path());
        let out = tempfile::tempdir().unwrap();
        let from_bundles = import_and_write(&schema, &mapping, &bundles, out.path());
        check(&from_bundles, &pop);
        let out = tempfile::tempdir().unwrap();
        let from_ndjson = import_and_write(&schema, &mapping, &ndjson, out.path());
        check(&from_ndjson, &pop);
        assert_eq!(
            rows(&from_bundles),
            rows(&from_ndjson),
            "both forms give the same records"
        );
        eprintln!("fhir_import/{n}: {}", shape(&pop, &bundles, &ndjson));
        drop((from_bundles, from_ndjson, pop));

        // About 10 imports at ~0.3 ms per patient: a couple of minutes for the default sizes.
        group.measurement_time(Duration::from_millis(3 * n as u64).max(Duration::from_secs(3)));
        group.throughput(Throughput::Elements(n as u64));
        for (form, input) in [("bundles", &bundles), ("ndjson", &ndjson)] {
            group.bench_with_input(BenchmarkId::new(form, n), input, |b, input| {
                b.iter_batched(
                    || tempfile::tempdir().unwrap(),
                    |out| {
                        let imported = import_and_write(&schema, &mapping, input, out.path());
                        (imported, out)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, import);
criterion_main!(benches);
