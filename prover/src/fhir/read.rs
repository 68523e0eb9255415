//! Reading FHIR R4 JSON: Bundles (one file, `entry[].resource`) and NDJSON bulk exports (one
//! resource per line), keeping only what the mapping uses from Patient, Condition, Observation
//! and Consent resources. Unknown fields and other resource types are skipped unread (each
//! resource is first read only for its `resourceType`).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs,
    io::BufRead,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::{value::RawValue, Value};

use super::{
    error::{FhirError, FieldProblem, Place, Pos},
    mapping::LOINC,
};

/// What the mapping reads.
pub(crate) struct Needs<'a> {
    pub conditions: bool,
    pub consents: bool,
    pub loinc: HashSet<&'a str>,
}

/// Where a resource is, compactly (an index into [`Inputs::files`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loc {
    pub file: u32,
    pub pos: Pos,
}

/// A resource's label and place, for errors and reports.
#[derive(Clone, Debug)]
pub(crate) struct Tag {
    pub loc: Loc,
    /// `Type/id` (or `Type` when it has no id).
    pub label: String,
}

/// A coding: `(system, code, display)`.
pub(crate) type Coding = (Option<String>, Option<String>, Option<String>);

pub(crate) struct PatientRes {
    pub tag: Tag,
    pub id: String,
    pub full_url: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub deceased_boolean: Option<bool>,
    pub deceased_date_time: Option<String>,
}

pub(crate) struct ConditionRes {
    pub tag: Tag,
    pub subject: Option<String>,
    pub codings: Vec<Coding>,
    pub clinical_status: Option<String>,
    pub verification_status: Option<String>,
    /// `(field, value)` of onsetDateTime, onsetPeriod.start or recordedDate.
    pub onset: Option<(&'static str, String)>,
}

pub(crate) struct Quantity {
    /// `valueQuantity` or `component[i].valueQuantity`.
    pub field: String,
    pub loinc: String,
    /// The number as JSON wrote it.
    pub value: Option<String>,
    pub comparator: Option<String>,
    /// `code` if present, else `unit`.
    pub unit: Option<String>,
}

pub(crate) struct ObservationRes {
    pub tag: Tag,
    pub subject: Option<String>,
    pub status: Option<String>,
    /// `(field, value)` of the first of effectiveDateTime, effectiveInstant,
    /// effectivePeriod.start, issued.
    pub date: Option<(&'static str, String)>,
    pub values: Vec<Quantity>,
}

pub(crate) struct ConsentRes {
    pub tag: Tag,
    pub patient: Option<String>,
    pub status: Option<String>,
    pub date_time: Option<String>,
    pub provision_type: Option<String>,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    /// `(system, code)` of scope, category and provision.purpose.
    pub codings: Vec<(String, String)>,
}

/// Everything read from the inputs.
#[derive(Default)]
pub(crate) struct Inputs {
    pub files: Vec<PathBuf>,
    pub patients: Vec<PatientRes>,
    pub conditions: Vec<ConditionRes>,
    pub observations: Vec<ObservationRes>,
    pub consents: Vec<ConsentRes>,
    /// Resources read, of every type.
    pub resources: usize,
    /// Resources of types the import does not use, by type.
    pub other: BTreeMap<String, usize>,
}

impl Inputs {
    pub(super) fn place(&self, loc: Loc) -> Place {
        Place {
            file: self.files[loc.file as usize].clone(),
            pos: loc.pos,
        }
    }

    pub(super) fn field_error(
        &self,
        tag: &Tag,
        field: impl Into<String>,
        problem: FieldProblem,
    ) -> FhirError {
        FhirError::Field {
            place: self.place(tag.loc),
            resource: tag.label.clone(),
            field: field.into(),
            problem: Box::new(problem),
        }
    }
}

/// The files to read: each path as given, directories expanded to their `.json` and `.ndjson`
/// files (recursively, sorted by path).
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FhirError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|source| FhirError::Io {
            path: path.clone(),
            source,
        })?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        let mut stack = vec![path.clone()];
        while let Some(dir) = stack.pop() {
            let io = |source| FhirError::Io {
                path: dir.clone(),
                source,
            };
            for entry in fs::read_dir(&dir).map_err(io)? {
                let p = entry.map_err(io)?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if is_ndjson(&p) || p.extension().is_some_and(|e| e == "json") {
                    found.push(p);
                }
            }
        }
        if found.is_empty() {
            return Err(FhirError::NoInput { path: path.clone() });
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn is_ndjson(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "ndjson")
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(rename = "type", borrow, default)]
    bundle_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    entry: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(rename = "fullUrl", default)]
    full_url: Option<String>,
    #[serde(borrow, default)]
    resource: Option<&'a RawValue>,
}

/// Bundle types whose entries are resources to import.
const BUNDLE_TYPES: [&str; 5] = [
    "collection",
    "transaction",
    "batch",
    "searchset",
    "document",
];

/// Reads one file into `inputs`: a Bundle, a single resource, or NDJSON (by its `.ndjson`
/// extension). Problems of single resources (and of NDJSON lines) are appended to `errors`; an
/// unreadable file is returned as the error.
pub(crate) fn read_file(
    path: &Path,
    needs: &Needs,
    inputs: &mut Inputs,
    errors: &mut Vec<FhirError>,
) -> Result<(), FhirError> {
    let file = inputs.files.len() as u32;
    inputs.files.push(path.to_owned());
    let io = |source| FhirError::Io {
        path: path.to_owned(),
        source,
    };
    if is_ndjson(path) {
        let reader = std::io::BufReader::new(fs::File::open(path).map_err(io)?);
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            let loc = Loc {
                file,
                pos: Pos::Line(i as u64 + 1),
            };
            let head: Head = match serde_json::from_str(&line) {
                Ok(head) => head,
                Err(source) => {
                    errors.push(FhirError::Json {
                        path: path.to_owned(),
                        line: Some(i as u64 + 1),
                        source,
                    });
                    continue;
                }
            };
            if let Err(e) = resource(&line, head.resource_type, None, loc, needs, inputs, errors) {
                errors.push(e);
            }
        }
        return Ok(());
    }
    let text = fs::read_to_string(path).map_err(io)?;
    let json = |source| FhirError::Json {
        path: path.to_owned(),
        line: None,
        source,
    };
    let head: Head = serde_json::from_str(&text).map_err(json)?;
    if head.resource_type.as_deref() != Some("Bundle") {
        let loc = Loc {
            file,
            pos: Pos::File,
        };
        return resource(&text, head.resource_type, None, loc, needs, inputs, errors);
    }
    let bundle_type: Option<String> = head
        .bundle_type
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(json)?;
    let bundle_type = bundle_type.unwrap_or_default();
    if !BUNDLE_TYPES.contains(&bundle_type.as_str()) {
        return Err(FhirError::BundleType {
            path: path.to_owned(),
            bundle_type,
        });
    }
    let entries: Vec<Entry> = match head.entry {
        Some(raw) => serde_json::from_str(raw.get()).map_err(json)?,
        None => Vec::new(),
    };
    for (i, entry) in entries.into_iter().enumerate() {
        let Some(raw) = entry.resource else { continue };
        let loc = Loc {
            file,
            pos: Pos::Entry(i),
        };
        #[derive(Deserialize)]
        struct Type {
            #[serde(rename = "resourceType")]
            resource_type: Option<String>,
        }
        let t: Type = serde_json::from_str(raw.get()).map_err(json)?;
        if let Err(e) = resource(
            raw.get(),
            t.resource_type,
            entry.full_url,
            loc,
            needs,
            inputs,
            errors,
        ) {
            errors.push(e);
        }
    }
    Ok(())
}

/// Reads one resource (its JSON text) of type `resource_type`.
fn resource(
    text: &str,
    resource_type: Option<String>,
    full_url: Option<String>,
    loc: Loc,
    needs: &Needs,
    inputs: &mut Inputs,
    errors: &mut Vec<FhirError>,
) -> Result<(), FhirError> {
    let Some(resource_type) = resource_type else {
        return Err(FhirError::NoResourceType {
            place: inputs.place(loc),
        });
    };
    inputs.resources += 1;
    let wanted = match resource_type.as_str() {
        "Patient" => true,
        "Condition" => needs.conditions,
        "Observation" => !needs.loinc.is_empty(),
        "Consent" => needs.consents,
        _ => false,
    };
    if !wanted {
        *inputs.other.entry(resource_type).or_default() += 1;
        return Ok(());
    }
    let v: Value = serde_json::from_str(text).map_err(|source| FhirError::Json {
        path: inputs.files[loc.file as usize].clone(),
        line: match loc.pos {
            Pos::Line(l) => Some(l),
            _ => None,
        },
        source,
    })?;
    let id = match v.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            let tag = Tag {
                loc,
                label: resource_type.clone(),
            };
            errors.push(inputs.field_error(&tag, "id", type_problem("a string", other)));
            return Ok(());
        }
    };
    let tag = Tag {
        loc,
        label: match &id {
            Some(id) => format!("{resource_type}/{id}"),
            None => resource_type.clone(),
        },
    };
    let result = match resource_type.as_str() {
        "Patient" => {
            let Some(id) = id else {
                return Err(FhirError::NoPatientId {
                    place: inputs.place(loc),
                });
            };
            patient(&v, tag.clone(), id, full_url).map(|p| inputs.patients.push(p))
        }
        "Condition" => condition(&v, tag.clone()).map(|c| inputs.conditions.push(c)),
        "Observation" => observation(&v, tag.clone(), needs).map(|o| {
            if let Some(o) = o {
                inputs.observations.push(o)
            }
        }),
        _ => consent(&v, tag.clone()).map(|c| inputs.consents.push(c)),
    };
    if let Err((field, problem)) = result {
        errors.push(inputs.field_error(&tag, field, problem));
    }
    Ok(())
}

type Extract<T> = Result<T, (String, FieldProblem)>;

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_problem(expected: &'static str, found: &Value) -> FieldProblem {
    FieldProblem::Type {
        expected,
        found: json_type(found),
    }
}

/// The value at a dotted path (`subject.reference`), `None` if absent or null.
fn get<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn string(v: &Value, path: &str) -> Extract<Option<String>> {
    match get(v, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err((path.to_owned(), type_problem("a string", other))),
    }
}

fn array<'v>(v: &'v Value, path: &str) -> Extract<&'v [Value]> {
    match get(v, path) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err((path.to_owned(), type_problem("an array", other))),
    }
}

/// The codings of the CodeableConcept at `path` (none if it is absent).
fn codings(v: &Value, path: &str) -> Extract<Vec<Coding>> {
    match get(v, path) {
        None => Ok(Vec::new()),
        Some(concept) => concept_codings(concept, path),
    }
}

/// The codings of a CodeableConcept; `name` is its field, for errors.
fn concept_codings(concept: &Value, name: &str) -> Extract<Vec<Coding>> {
    if !concept.is_object() {
        return Err((name.to_owned(), type_problem("an object", concept)));
    }
    let field = format!("{name}.coding");
    let list = match concept.get("coding") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => return Err((field, type_problem("an array", other))),
    };
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let at = |k: &str| string(c, k).map_err(|(_, p)| (format!("{field}[{i}].{k}"), p));
            Ok((at("system")?, at("code")?, at("display")?))
        })
        .collect()
}

/// The first coding's code of a CodeableConcept (a status).
fn first_code(v: &Value, path: &str) -> Extract<Option<String>> {
    Ok(codings(v, path)?.into_iter().find_map(|(_, code, _)| code))
}

/// The first present of several date fields, with its name.
fn first_date(v: &Value, fields: &[&'static str]) -> Extract<Option<(&'static str, String)>> {
    for field in fields {
        if let Some(s) = string(v, field)? {
            return Ok(Some((field, s)));
        }
    }
    Ok(None)
}

fn patient(v: &Value, tag: Tag, id: String, full_url: Option<String>) -> Extract<PatientRes> {
    let deceased_boolean = match get(v, "deceasedBoolean") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => return Err(("deceasedBoolean".into(), type_problem("a boolean", other))),
    };
    Ok(PatientRes {
        tag,
        id,
        full_url,
        birth_date: string(v, "birthDate")?,
        gender: string(v, "gender")?,
        deceased_boolean,
        deceased_date_time: string(v, "deceasedDateTime")?,
    })
}

fn condition(v: &Value, tag: Tag) -> Extract<ConditionRes> {
    Ok(ConditionRes {
        tag,
        subject: string(v, "subject.reference")?,
        codings: codings(v, "code")?,
        clinical_status: first_code(v, "clinicalStatus")?,
        verification_status: first_code(v, "verificationStatus")?,
        onset: first_date(v, &["onsetDateTime", "onsetPeriod.start", "recordedDate"])?,
    })
}

/// An Observation, or `None` if it carries none of the LOINC codes the mapping reads.
fn observation(v: &Value, tag: Tag, needs: &Needs) -> Extract<Option<ObservationRes>> {
    let mut values = Vec::new();
    let mut take = |node: &Value, prefix: &str| -> Extract<()> {
        let dotted = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let loinc = match node.get("code").filter(|c| !c.is_null()) {
            None => None,
            Some(concept) => concept_codings(concept, &dotted("code"))?
                .into_iter()
                .find_map(|(system, code, _)| {
                    code.filter(|c| {
                        system.as_deref() == Some(LOINC) && needs.loinc.contains(c.as_str())
                    })
                }),
        };
        let Some(loinc) = loinc else { return Ok(()) };
        let field = dotted("valueQuantity");
        let Some(q) = node.get("valueQuantity").filter(|q| !q.is_null()) else {
            // No quantity (a dataAbsentReason, a coded value): nothing to read.
            return Ok(());
        };
        let sub = |k: &str| string(q, k).map_err(|(_, p)| (format!("{field}.{k}"), p));
        let value = match q.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => return Err((format!("{field}.value"), type_problem("a number", other))),
        };
        let unit = match sub("code")? {
            Some(code) => Some(code),
            None => sub("unit")?,
        };
        let comparator = sub("comparator")?;
        values.push(Quantity {
            field,
            loinc,
            value,
            comparator,
            unit,
        });
        Ok(())
    };
    take(v, "")?;
    for (i, component) in array(v, "component")?.iter().enumerate() {
        take(component, &format!("component[{i}]"))?;
    }
    if values.is_empty() {
        return Ok(None);
    }
    Ok(Some(ObservationRes {
        tag,
        subject: string(v, "subject.reference")?,
        status: string(v, "status")?,
        date: first_date(
            v,
            &[
                "effectiveDateTime",
                "effectiveInstant",
                "effectivePeriod.start",
                "issued",
            ],
        )?,
        values,
    }))
}

fn consent(v: &Value, tag: Tag) -> Extract<ConsentRes> {
    let mut all: Vec<Coding> = codings(v, "scope")?;
    for (i, category) in array(v, "category")?.iter().enumerate() {
        all.extend(concept_codings(category, &format!("category[{i}]"))?);
    }
    for (i, purpose) in array(v, "provision.purpose")?.iter().enumerate() {
        let at = |k: &str| {
            string(purpose, k).map_err(|(_, p)| (format!("provision.purpose[{i}].{k}"), p))
        };
        all.push((at("system")?, at("code")?, None));
    }
    Ok(ConsentRes {
        tag,
        patient: string(v, "patient.reference")?,
        status: string(v, "status")?,
        date_time: string(v, "dateTime")?,
        provision_type: string(v, "provision.type")?,
        period_start: string(v, "provision.period.start")?,
        period_end: string(v, "provision.period.end")?,
        codings: all
            .into_iter()
            .filter_map(|(s, c, _)| Some((s?, c?)))
            .collect(),
    })
}

/// Patient lookup by `id`, `Patient/id` and bundle `fullUrl`.
pub(crate) struct PatientIndex(HashMap<String, u32>);

impl PatientIndex {
    /// Indexes the patients; a repeated id is an error naming both.
    pub(super) fn build(inputs: &Inputs) -> Result<Self, Vec<FhirError>> {
        let mut map = HashMap::with_capacity(inputs.patients.len() * 2);
        let mut first: HashMap<&str, u32> = HashMap::new();
        let mut errors = Vec::new();
        for (i, p) in inputs.patients.iter().enumerate() {
            if let Some(&j) = first.get(p.id.as_str()) {
                errors.push(FhirError::DuplicatePatient {
                    id: p.id.clone(),
                    first: inputs.place(inputs.patients[j as usize].tag.loc),
                    second: inputs.place(p.tag.loc),
                });
                continue;
            }
            first.insert(&p.id, i as u32);
            map.insert(p.id.clone(), i as u32);
            if let Some(url) = &p.full_url {
                map.entry(url.clone()).or_insert(i as u32);
            }
        }
        if errors.is_empty() {
            Ok(PatientIndex(map))
        } else {
            Err(errors)
        }
    }

    /// The patient a reference names: `urn:uuid:<id>` or a `fullUrl`, `Patient/<id>`,
    /// `<base>/Patient/<id>[/_history/<v>]`, or a bare id.
    pub(super) fn resolve(&self, reference: &str) -> Option<u32> {
        if let Some(&i) = self.0.get(reference) {
            return Some(i);
        }
        let id = if let Some(rest) = reference.strip_prefix("urn:uuid:") {
            rest
        } else if let Some(at) = reference.rfind("Patient/") {
            reference[at + "Patient/".len()..].split('/').next()?
        } else {
            return None;
        };
        self.0.get(id).copied()
    }
}
