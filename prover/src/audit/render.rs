//! An [`Audit`] as text: Markdown, a self-contained HTML page (inline CSS and SVG charts, no
//! external asset), or JSON. Pure functions: they return the text, the caller writes it.
//!
//! Both human formats render one document model ([`Block`]s), so they say the same things in
//! the same order: findings first, then each query and trial in words, datasets, verifiers,
//! payments per party, balances, accreditations and a timeline.

use std::{collections::BTreeMap, fmt::Write as _};

use alloy::primitives::{Address, B256, U256};

use super::{
    anomaly::Severity,
    model::{word_hex, At, Contract, OwnershipChange, VerifierChange},
    reverify::{Outcome, ProofCheck},
    spec::SpecCheck,
    words::{amount, number, plural, short, short_hash, short_word, utc, with_unit},
    Audit, QueryView, TrialView,
};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Markdown.
    Markdown,
    /// A self-contained HTML page.
    Html,
    /// JSON (the whole [`Audit`]).
    Json,
}

/// Renders `audit` in `format`.
pub fn render(audit: &Audit, format: Format) -> String {
    match format {
        Format::Markdown => markdown(audit),
        Format::Html => html(audit),
        Format::Json => json(audit),
    }
}

/// The whole audit as pretty JSON.
pub fn json(audit: &Audit) -> String {
    serde_json::to_string_pretty(audit).expect("an audit serialises") + "\n"
}

/// A table cell, with an optional style class (`ok`, `bad`, `warn`, `muted`).
#[derive(Clone, Debug)]
struct Cell {
    text: String,
    class: Option<&'static str>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, class: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell {
            text: text.to_owned(),
            class: None,
        }
    }
}

fn cell(text: impl Into<String>, class: &'static str) -> Cell {
    Cell {
        text: text.into(),
        class: Some(class),
    }
}

/// One bar of a chart.
#[derive(Clone, Debug)]
struct Bar {
    label: String,
    value: f64,
    text: String,
    class: &'static str,
}

/// The document model both human formats render.
#[derive(Clone, Debug)]
enum Block {
    Heading(u8, String),
    Para(String),
    Callout(&'static str, String),
    List(Vec<String>),
    Table(Vec<&'static str>, Vec<Vec<Cell>>),
    Chart(String, Vec<Bar>),
}

fn party(a: &Audit, who: Address) -> String {
    match a.name(who) {
        Some(n) => format!("{n} ({})", short(who)),
        None => short(who),
    }
}

/// A circuit's id when known, else its hash, shortened.
fn circuit_name(a: &Audit, circuit: B256) -> String {
    a.verifiers
        .iter()
        .find(|v| v.circuit == circuit)
        .and_then(|v| v.circuit_id.clone())
        .or_else(|| {
            a.proofs
                .iter()
                .find(|p| p.circuit == circuit)
                .and_then(|p| p.circuit_id.clone())
        })
        .unwrap_or_else(|| short_hash(circuit))
}

fn when(at: &At) -> String {
    format!("block {} ({})", at.block, utc(at.time))
}

fn proof_words(p: Option<&ProofCheck>, tx: B256) -> Cell {
    let Some(p) = p else {
        return cell(
            format!(
                "verified on-chain in tx {}; not re-verified here (filtered out)",
                short_hash(tx)
            ),
            "muted",
        );
    };
    match &p.outcome {
        Outcome::Verified => cell(
            format!(
                "verified on-chain in tx {}, re-verified here: yes",
                short_hash(p.tx)
            ),
            "ok",
        ),
        Outcome::Failed { reason } => cell(
            format!(
                "accepted on-chain in tx {}, re-verified here: NO ({reason})",
                short_hash(p.tx)
            ),
            "bad",
        ),
        Outcome::Disagrees { reason } => cell(
            format!(
                "accepted on-chain in tx {}; its calldata disagrees with the events: {reason}",
                short_hash(p.tx)
            ),
            "bad",
        ),
        Outcome::NotChecked { reason } => cell(
            format!(
                "accepted on-chain in tx {}; not re-verified here: {reason}",
                short_hash(p.tx)
            ),
            "warn",
        ),
    }
}

fn spec_words(s: &SpecCheck, hash: B256) -> Block {
    if !s.published {
        return Block::Para(format!(
            "Spec: not published on-chain (only its hash {}); the criteria above are read from \
             the posted constants, which every proof is checked against.",
            short_hash(hash)
        ));
    }
    if s.problems.is_empty() {
        let compiled = match s.constants_match {
            Some(true) => " and compiles to exactly the posted constants",
            _ => "",
        };
        return Block::Callout(
            "ok",
            format!("Spec: published on-chain; it matches its hash{compiled}."),
        );
    }
    Block::Callout(
        "bad",
        format!("Spec: published on-chain, but {}.", s.problems.join("; ")),
    )
}

fn summary(a: &Audit) -> Vec<Block> {
    let h = &a.history;
    let s = &a.summary;
    let ev = |k: &str| s.events.get(k).copied().unwrap_or(0) as usize;
    let mut out = vec![Block::Heading(2, "Summary".into())];
    let mut items = vec![
        format!(
            "{} registered ({} retired); {} posted, {} ({} suppressed{}), {}; {} opened, {} enrolled, {} skipped; {}.",
            plural(ev("DatasetRegistered"), "dataset"),
            ev("DatasetRetired"),
            plural(ev("QueryPosted"), "query").replace("querys", "queries"),
            plural(ev("Claimed") + ev("Attested"), "answer"),
            h.queries.values().flat_map(|q| &q.claims).filter(|c| c.suppressed).count(),
            match ev("Attested") {
                0 => String::new(),
                n => {
                    let yes = h
                        .queries
                        .values()
                        .flat_map(|q| &q.claims)
                        .filter(|c| c.verdict == Some(true))
                        .count();
                    format!(", {n} attestation(s): {yes} yes, {} no", n - yes)
                }
            },
            plural(ev("Refunded") + ev("TrialRefunded"), "refund"),
            plural(ev("TrialOpened"), "trial"),
            plural(ev("Enrolled"), "patient"),
            plural(ev("EnrolmentSkipped"), "batch slot"),
            plural(ev("Withdrawn"), "withdrawal"),
        ),
        format!(
            "{} re-verified off-chain from their calldata: {} verified, {} failed, {} not checked.",
            plural(s.proofs, "proof"), s.verified, s.failed, s.unchecked
        ),
        if s.money_reconciles {
            "Money reconciles: every escrow is paid, refunded or still locked; every credit is withdrawn or pending; the markets hold what they owe.".into()
        } else {
            "Money does NOT reconcile: see the findings.".into()
        },
        format!(
            "Findings: {} critical, {}, {}.",
            s.critical,
            plural(s.warnings, "warning"),
            plural(s.notices, "notice")
        ),
    ];
    if !a.money.partial.is_empty() {
        items.push(format!(
            "The blocks read start after the construction of the {}: balances are not reconciled.",
            a.money
                .partial
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    let counted: Vec<String> = s.events.iter().map(|(k, v)| format!("{k} {v}")).collect();
    items.push(format!("Events read: {}.", counted.join(", ")));
    out.push(Block::List(items));
    out
}

fn findings(a: &Audit) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Findings".into())];
    let serious: Vec<_> = a.findings(Severity::Warning).collect();
    if serious.is_empty() {
        out.push(Block::Callout(
            "ok",
            "No anomalies: every proof the chain accepted verifies off-chain, every spec published matches its hash, and the money adds up.".into(),
        ));
    }
    let rows = |list: Vec<&super::Anomaly>| -> Vec<Vec<Cell>> {
        list.into_iter()
            .map(|f| {
                let mut place = Vec::new();
                if let Some(q) = f.query {
                    place.push(format!("query #{q}"));
                }
                if let Some(t) = f.trial {
                    place.push(format!("trial {}", short_word(t)));
                }
                if let Some(d) = f.dataset {
                    place.push(format!("dataset #{d}"));
                }
                if let Some(b) = f.block {
                    place.push(format!("block {b}"));
                }
                if let Some(tx) = f.tx {
                    place.push(format!("tx {}", short_hash(tx)));
                }
                let class = match f.severity {
                    Severity::Critical => "bad",
                    Severity::Warning => "warn",
                    Severity::Notice => "muted",
                };
                vec![
                    cell(f.severity.name(), class),
                    f.kind.title().into(),
                    place.join(", ").into(),
                    f.message.clone().into(),
                ]
            })
            .collect()
    };
    if !serious.is_empty() {
        out.push(Block::Table(
            vec!["Severity", "Finding", "Where", "What"],
            rows(serious),
        ));
    }
    let notices: Vec<_> = a
        .anomalies
        .iter()
        .filter(|f| f.severity == Severity::Notice)
        .collect();
    if !notices.is_empty() {
        out.push(Block::Heading(3, "Notices".into()));
        out.push(Block::Table(
            vec!["Severity", "Notice", "Where", "What"],
            rows(notices),
        ));
    }
    out
}

fn query_section(a: &Audit, v: &QueryView) -> Vec<Block> {
    let h = &a.history;
    let q = &h.queries[&v.id];
    let title = match (&v.name, &v.criteria) {
        (Some(n), _) => format!("Query #{}: {n}", v.id),
        (None, Some(_)) => format!("Query #{}", v.id),
        (None, None) => format!("Query #{} (schema unknown)", v.id),
    };
    let mut out = vec![Block::Heading(3, title)];
    let n = q.targets.len();
    let accreditor = if q.accreditor.is_zero() {
        "pays the listed datasets' custodians without an accreditor".to_string()
    } else {
        format!(
            "pays only custodians attested by {}",
            party(a, q.accreditor)
        )
    };
    out.push(Block::Para(format!(
        "Posted by {} at {}: {} per answering dataset for {n} dataset{} ({} escrowed), deadline {}; {accreditor}.",
        party(a, q.sponsor),
        when(&q.posted),
        amount(q.price, q.token),
        if n == 1 { "" } else { "s" },
        amount(q.price * U256::from(n), q.token),
        utc(q.deadline),
    )));
    out.push(Block::Para(match &v.criteria {
        Some(c) => format!("Asks for {c}."),
        None => format!(
            "Its {} constants cannot be read in words: the targets' schema is not among the schemas given (--schema).",
            q.constants.len()
        ),
    }));
    out.push(spec_words(&v.spec, q.spec_hash));

    let stat = v
        .statistic
        .clone()
        .unwrap_or_else(|| "the statistic".into());
    let min = v
        .min_cohort
        .map_or_else(|| "the minimum".into(), |m| m.to_string());
    let rows: Vec<Vec<Cell>> = v
        .answers
        .iter()
        .map(|ans| {
            let result = if let Some(yes) = ans.verdict {
                if yes {
                    format!("attested YES: mean {stat} reaches the threshold over at least {min} patients").into()
                } else {
                    cell("attested NO (paid nothing)".to_string(), "muted")
                }
            } else if ans.suppressed {
                cell(format!("suppressed (fewer than {min} patients)"), "muted")
            } else {
                match &ans.stats {
                    Some(s) => format!(
                        "{} patients: mean {stat} {} (sd {})",
                        s.n,
                        with_unit(&number(s.mean, v.scale), v.unit.as_deref()),
                        number(s.sd, v.scale)
                    )
                    .into(),
                    None => "0 patients".into(),
                }
            };
            vec![
                format!("#{}", ans.dataset).into(),
                party(a, ans.custodian).into(),
                ans.records.map_or("?".into(), |r| r.to_string()).into(),
                ans.committed_at
                    .map_or("?".into(), |b| format!("block {b}"))
                    .into(),
                result,
                proof_words(ans.proof.and_then(|i| a.proofs.get(i)), ans.tx),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push(Block::Para("No dataset has answered.".into()));
    } else {
        out.push(Block::Table(
            vec![
                "Dataset",
                "Custodian",
                "Records",
                "Committed at",
                "Result",
                "Proof",
            ],
            rows,
        ));
    }
    let silent: Vec<String> = q
        .targets
        .iter()
        .filter(|d| !q.claims.iter().any(|c| c.dataset == **d))
        .map(|d| format!("#{d}"))
        .collect();
    if !silent.is_empty() {
        out.push(Block::Para(format!(
            "Did not answer: dataset {}.",
            silent.join(", ")
        )));
    }
    let suppressed = v.answers.iter().filter(|x| x.suppressed).count();
    if let Some(p) = &v.pooled {
        out.push(Block::Callout(
            "info",
            format!(
                "Pooled over {} site{}{}: n = {}, mean {stat} {} (sd {}), from the released counts, sums and sums of squares.",
                v.pooled_sites,
                if v.pooled_sites == 1 { "" } else { "s" },
                left_out(suppressed, v.pooled_left_out),
                p.n,
                with_unit(&number(p.mean, v.scale), v.unit.as_deref()),
                number(p.sd, v.scale)
            ),
        ));
    }
    if v.answers.len() > 1 {
        let mut bars: Vec<Bar> = v
            .answers
            .iter()
            .map(|ans| {
                let n = ans.stats.map_or(0, |s| s.n);
                Bar {
                    label: format!("#{} {}", ans.dataset, a.name(ans.custodian).unwrap_or("")),
                    value: n as f64,
                    text: if ans.suppressed {
                        "suppressed".into()
                    } else {
                        n.to_string()
                    },
                    class: if ans.suppressed { "muted" } else { "bar" },
                }
            })
            .collect();
        if let Some(p) = &v.pooled {
            bars.push(Bar {
                label: "pooled".into(),
                value: p.n as f64,
                text: p.n.to_string(),
                class: "pool",
            });
        }
        out.push(Block::Chart(
            format!("Patients counted per dataset, query #{}", v.id),
            bars,
        ));
    }
    if let Some(e) = a
        .money
        .escrows
        .iter()
        .find(|e| e.market == Contract::QueryMarket && e.id == format!("#{}", v.id))
    {
        out.push(escrow_line(e));
    }
    out
}

/// `" (1 suppressed answer and 1 answer whose proof fails left out)"`, or nothing.
fn left_out(suppressed: usize, failed: usize) -> String {
    let mut parts = Vec::new();
    if suppressed > 0 {
        parts.push(plural(suppressed, "suppressed answer"));
    }
    if failed > 0 {
        parts.push(format!(
            "{} whose proof fails off-chain",
            plural(failed, "answer")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({} left out)", parts.join(" and "))
    }
}

fn escrow_line(e: &super::money::Escrow) -> Block {
    let locked = e
        .locked_onchain
        .map_or("unreadable".into(), |l| amount(l, e.token));
    let text = format!(
        "Money: escrowed {} = paid {} + refunded {} + still locked {}",
        amount(e.escrowed, e.token),
        amount(e.paid, e.token),
        amount(e.refunded, e.token),
        locked
    );
    if e.problems.is_empty() {
        Block::Callout("ok", format!("{text}: reconciles."))
    } else {
        Block::Callout("bad", format!("{text}: {}.", e.problems.join("; ")))
    }
}

fn trial_section(a: &Audit, v: &TrialView) -> Vec<Block> {
    let Some(t) = a.history.trial(v.id) else {
        return Vec::new();
    };
    let title = match &v.name {
        Some(n) => format!("Trial {}: {n}", short_word(t.id)),
        None => format!("Trial {}", short_word(t.id)),
    };
    let mut out = vec![Block::Heading(3, title)];
    out.push(Block::Para(format!(
        "Trial id {}. Opened by {} at {}: {} per enrolled patient ({}% of it to the patient's payout address, if any), at most {} patients ({} escrowed), deadline {}; only datasets of custodians attested by {} may enrol.",
        word_hex(&t.id),
        party(a, t.sponsor),
        when(&t.opened),
        amount(t.bounty, Address::ZERO),
        f64::from(t.patient_share_bps) / 100.0,
        t.cap,
        amount(t.bounty * U256::from(t.cap), Address::ZERO),
        utc(t.deadline),
        party(a, t.accreditor),
    )));
    out.push(Block::Para(match &v.criteria {
        Some(c) => format!("Recruits {c}."),
        None => "Its criteria cannot be read in words: its schema is not among the schemas given (--schema).".into(),
    }));
    out.push(spec_words(&v.spec, t.spec_hash));
    let rows: Vec<Vec<Cell>> = t
        .enrolments
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let proof = v
                .proofs
                .iter()
                .filter_map(|p| a.proofs.get(*p))
                .find(|p| p.tx == e.at.tx && p.proof_hash == e.proof_hash);
            vec![
                (i + 1).to_string().into(),
                short_word(e.nullifier).into(),
                format!("#{}, {}", e.dataset, party(a, e.custodian)).into(),
                if e.patient_payout.is_zero() {
                    cell("none", "muted")
                } else {
                    party(a, e.patient_payout).into()
                },
                amount(e.custodian_amount, Address::ZERO).into(),
                amount(e.patient_amount, Address::ZERO).into(),
                when(&e.at).into(),
                proof_words(proof, e.at.tx),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push(Block::Para("Nobody has enrolled.".into()));
    } else {
        out.push(Block::Table(
            vec![
                "#",
                "Nullifier",
                "Dataset",
                "Patient payout",
                "To custodian",
                "To patient",
                "When",
                "Proof",
            ],
            rows,
        ));
    }
    let batches = v
        .proofs
        .iter()
        .filter_map(|p| a.proofs.get(*p))
        .filter(|p| p.patients > 1)
        .count();
    out.push(Block::Para(format!(
        "{} of {} places filled by {} ({} of them a batch referral).",
        t.enrolments.len(),
        t.cap,
        plural(v.proofs.len(), "proof"),
        batches
    )));
    if !t.skipped.is_empty() {
        out.push(Block::List(
            t.skipped
                .iter()
                .map(|s| {
                    format!(
                        "Skipped batch slot: nullifier {} was already enrolled (tx {}, {}); nobody was paid twice.",
                        short_word(s.nullifier),
                        short_hash(s.at.tx),
                        when(&s.at)
                    )
                })
                .collect(),
        ));
    }
    if let Some(r) = &t.refund {
        out.push(Block::Para(format!(
            "Refunded {} to {} at {}.",
            amount(r.amount, Address::ZERO),
            party(a, r.sponsor),
            when(&r.at)
        )));
    }
    if v.per_dataset.len() > 1 {
        out.push(Block::Chart(
            format!("Patients enrolled per dataset, trial {}", short_word(t.id)),
            v.per_dataset
                .iter()
                .map(|(d, n)| Bar {
                    label: format!(
                        "#{d} {}",
                        a.history
                            .datasets
                            .get(d)
                            .and_then(|ds| a.name(ds.custodian))
                            .unwrap_or("")
                    ),
                    value: *n as f64,
                    text: n.to_string(),
                    class: "bar",
                })
                .collect(),
        ));
    }
    if let Some(e) = a
        .money
        .escrows
        .iter()
        .find(|e| e.market == Contract::TrialMarket && e.id == word_hex(&t.id))
    {
        out.push(escrow_line(e));
    }
    out
}

/// A dataset's custodian now, then its earlier custodians and a pending offer, if any.
fn custodian_words(a: &Audit, d: &super::model::Dataset) -> String {
    let mut text = party(a, d.custodian);
    let mut held_until = Vec::new();
    let mut holder = d.registered_by;
    for t in d.transfers.iter().filter(|t| t.accepted) {
        held_until.push(format!("{} until {}", party(a, holder), when(&t.at)));
        holder = t.to;
    }
    if !held_until.is_empty() {
        text += &format!("; before: {}", held_until.join(", "));
    }
    if let Some(to) = d.pending_custodian() {
        text += &format!("; offered to {} (not accepted)", party(a, to));
    }
    text
}

fn datasets(a: &Audit) -> Vec<Block> {
    let h = &a.history;
    let rows: Vec<Vec<Cell>> = h
        .datasets
        .values()
        .filter(|d| a.filter.shows_dataset(h, d))
        .map(|d| {
            let schema = a
                .schema(d.schema_hash)
                .map_or_else(|| short_hash(d.schema_hash), |s| s.name.clone());
            let circuit = a
                .verifiers
                .iter()
                .find(|v| v.circuit == d.circuit)
                .and_then(|v| v.circuit_id.clone())
                .unwrap_or_else(|| short_hash(d.circuit));
            vec![
                format!("#{}", d.id).into(),
                custodian_words(a, d).into(),
                d.record_count.to_string().into(),
                schema.into(),
                circuit.into(),
                short_hash(d.commitment).into(),
                when(&d.registered).into(),
                match &d.retired {
                    Some(r) => cell(format!("retired at {}", when(r)), "warn"),
                    None => cell("active", "ok"),
                },
            ]
        })
        .collect();
    vec![
        Block::Heading(2, "Datasets".into()),
        Block::Table(
            vec![
                "Dataset",
                "Custodian",
                "Records",
                "Schema",
                "Circuit",
                "Commitment",
                "Registered",
                "Status",
            ],
            rows,
        ),
    ]
}

fn verifier_section(a: &Audit) -> Vec<Block> {
    let rows: Vec<Vec<Cell>> = a
        .verifiers
        .iter()
        .map(|v| {
            let params = match (&v.code, &v.manifest_params) {
                (Some(c), _) if c.dev_params => cell("development (INSECURE)", "warn"),
                (_, Some(p)) if !p.is_dev() => cell(format!("file {}", &p.sha256[..12]), "ok"),
                (Some(_), _) => "not the development params".into(),
                (None, _) => cell("code unreadable", "warn"),
            };
            let code = match &v.code {
                Some(c)
                    if v.same_code_as
                        .iter()
                        .any(|id| Some(id) == v.circuit_id.as_ref()) =>
                {
                    cell(
                        format!("{} bytes, the deployed verifier of this circuit", c.size),
                        "ok",
                    )
                }
                Some(c) if !v.same_code_as.is_empty() => cell(
                    format!(
                        "{} bytes, the verifier of {}",
                        c.size,
                        v.same_code_as.join(", ")
                    ),
                    "bad",
                ),
                Some(c) => cell(format!("{}, unrecognised", plural(c.size, "byte")), "warn"),
                None => cell("unreadable", "warn"),
            };
            vec![
                v.market.name().into(),
                v.circuit_id
                    .clone()
                    .unwrap_or_else(|| short_hash(v.circuit))
                    .into(),
                short(v.address).into(),
                if v.initial {
                    "deployment".to_string()
                } else {
                    v.since
                        .map_or("before the blocks read".into(), |s| when(&s))
                }
                .into(),
                v.until.map_or(cell("current", "ok"), |u| {
                    cell(format!("until {}", when(&u)), "muted")
                }),
                params,
                code,
            ]
        })
        .collect();
    let mut out = vec![
        Block::Heading(2, "Verifiers".into()),
        Block::Table(
            vec![
                "Market",
                "Circuit",
                "Verifier",
                "Since",
                "Until",
                "KZG params",
                "Code",
            ],
            rows,
        ),
    ];
    let changes: Vec<String> = a
        .history
        .verifier_events
        .iter()
        .filter_map(|e| match &e.change {
            VerifierChange::Proposed { verifier, eta, .. } => Some(format!(
                "{}: the owner proposed {} for circuit {} (may apply from {}).",
                when(&e.at),
                short(*verifier),
                circuit_name(a, e.circuit),
                utc(*eta)
            )),
            VerifierChange::Cancelled => Some(format!(
                "{}: the owner withdrew the proposal for circuit {}.",
                when(&e.at),
                circuit_name(a, e.circuit)
            )),
            _ => None,
        })
        .collect();
    if !changes.is_empty() {
        out.push(Block::List(changes));
    }
    out
}

fn payments(a: &Audit) -> Vec<Block> {
    let rows: Vec<Vec<Cell>> = a
        .money
        .accounts
        .iter()
        .map(|x| {
            let t = x.token;
            vec![
                party(a, x.account).into(),
                x.market.name().into(),
                if t.is_zero() {
                    "ETH".to_string()
                } else {
                    short(t)
                }
                .into(),
                amount(x.escrowed, t).into(),
                amount(x.as_custodian, t).into(),
                amount(x.as_patient, t).into(),
                amount(x.refunds, t).into(),
                amount(x.withdrawn, t).into(),
                x.pending_onchain
                    .map_or("?".into(), |p| amount(p, t))
                    .into(),
                if x.problems.is_empty() {
                    cell("✓", "ok")
                } else {
                    cell(format!("✗ {}", x.problems.join("; ")), "bad")
                },
            ]
        })
        .collect();
    let mut out = vec![
        Block::Heading(2, "Payments per party".into()),
        Block::Para("Credited (as custodian, as patient, refunds) must equal withdrawn + pending, the contract's own `pendingWithdrawals`.".into()),
        Block::Table(
            vec![
                "Party",
                "Market",
                "Token",
                "Escrowed",
                "As custodian",
                "As patient",
                "Refunds",
                "Withdrawn",
                "Pending",
                "Adds up",
            ],
            rows,
        ),
    ];
    // Income per party in ETH, across both markets.
    let mut income: BTreeMap<Address, U256> = BTreeMap::new();
    for x in a.money.accounts.iter().filter(|x| x.token.is_zero()) {
        *income.entry(x.account).or_default() += x.as_custodian + x.as_patient;
    }
    let bars: Vec<Bar> = income
        .into_iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(who, v)| {
            let eth: f64 = alloy::primitives::utils::format_ether(v)
                .parse()
                .unwrap_or(0.0);
            Bar {
                label: party(a, who),
                value: eth,
                text: amount(v, Address::ZERO),
                class: "bar",
            }
        })
        .collect();
    if bars.len() > 1 {
        out.push(Block::Chart(
            "ETH earned per party (answers and bounties)".into(),
            bars,
        ));
    }
    let rows: Vec<Vec<Cell>> = a
        .money
        .balances
        .iter()
        .map(|b| {
            vec![
                b.market.name().into(),
                if b.token.is_zero() {
                    "ETH".to_string()
                } else {
                    short(b.token)
                }
                .into(),
                amount(b.balance, b.token).into(),
                amount(b.pending, b.token).into(),
                amount(b.locked, b.token).into(),
                if !b.problems.is_empty() {
                    cell(format!("✗ {}", b.problems.join("; ")), "bad")
                } else if !b.surplus.is_zero() {
                    cell(format!("surplus {}", amount(b.surplus, b.token)), "warn")
                } else {
                    cell("✓", "ok")
                },
            ]
        })
        .collect();
    out.push(Block::Heading(3, "Contract balances".into()));
    if rows.is_empty() {
        out.push(Block::Para(
            "Not reconciled: the blocks read start after the markets were deployed.".into(),
        ));
    } else {
        out.push(Block::Table(
            vec![
                "Market",
                "Token",
                "Balance",
                "Pending credits",
                "Locked escrow",
                "Adds up",
            ],
            rows,
        ));
    }
    out
}

fn registry(a: &Audit) -> Vec<Block> {
    let h = &a.history;
    let mut out = vec![Block::Heading(2, "Accreditations and cell floors".into())];
    let mut items: Vec<String> = h
        .accreditations
        .iter()
        .map(|x| {
            format!(
                "{}: {} {} {}.",
                when(&x.at),
                party(a, x.accreditor),
                if x.granted {
                    "accredited"
                } else {
                    "revoked its accreditation of"
                },
                party(a, x.custodian)
            )
        })
        .collect();
    items.extend(h.cell_floors.iter().map(|f| {
        format!(
            "{}: {} releases no cell below {} patients.",
            when(&f.at),
            party(a, f.custodian),
            f.floor
        )
    }));
    if items.is_empty() {
        items.push("None in the blocks read.".into());
    }
    out.push(Block::List(items));
    out
}

/// Every event in words, in chain order (those of filtered-out queries and trials left out).
fn timeline(a: &Audit) -> Vec<Block> {
    let h = &a.history;
    let f = &a.filter;
    let mut lines: Vec<(At, String)> = Vec::new();
    for d in h.datasets.values().filter(|d| f.shows_dataset(h, d)) {
        lines.push((
            d.registered,
            format!(
                "{} registered dataset #{} ({} records)",
                party(a, d.registered_by),
                d.id,
                d.record_count
            ),
        ));
        for t in &d.transfers {
            let text = match (t.accepted, t.to.is_zero()) {
                (true, _) => format!(
                    "{} became the custodian of dataset #{} (from {})",
                    party(a, t.to),
                    d.id,
                    party(a, t.from)
                ),
                (false, true) => format!(
                    "{} withdrew its offer of dataset #{}",
                    party(a, t.from),
                    d.id
                ),
                (false, false) => format!(
                    "{} offered dataset #{} to {}",
                    party(a, t.from),
                    d.id,
                    party(a, t.to)
                ),
            };
            lines.push((t.at, text));
        }
        if let Some(r) = d.retired {
            lines.push((
                r,
                format!("{} retired dataset #{}", party(a, d.custodian_at(r)), d.id),
            ));
        }
    }
    for q in h.queries.values().filter(|q| f.shows_query(h, q)) {
        lines.push((
            q.posted,
            format!(
                "{} posted query #{} ({} escrowed)",
                party(a, q.sponsor),
                q.id,
                amount(q.price * U256::from(q.targets.len()), q.token)
            ),
        ));
        if let Some(s) = &q.spec {
            lines.push((
                s.at,
                format!(
                    "spec of query #{} published ({} bytes)",
                    q.id,
                    s.bytes.len()
                ),
            ));
        }
        for c in &q.claims {
            lines.push((
                c.at,
                format!(
                    "dataset #{} answered query #{}{}; {} credited {}",
                    c.dataset,
                    q.id,
                    if let Some(yes) = c.verdict {
                        format!(" (attested {})", if yes { "yes" } else { "no" })
                    } else if c.suppressed {
                        " (suppressed)".to_string()
                    } else {
                        format!(" (n = {})", c.count)
                    },
                    party(a, c.custodian),
                    amount(c.paid, q.token)
                ),
            ));
        }
        if let Some(r) = &q.refund {
            lines.push((
                r.at,
                format!(
                    "query #{} refunded {} to {}",
                    q.id,
                    amount(r.amount, q.token),
                    party(a, r.sponsor)
                ),
            ));
        }
    }
    for t in h.trials.iter().filter(|t| f.shows_trial(h, t)) {
        lines.push((
            t.opened,
            format!(
                "{} opened trial {} ({} places)",
                party(a, t.sponsor),
                short_word(t.id),
                t.cap
            ),
        ));
        if let Some(s) = &t.spec {
            lines.push((
                s.at,
                format!(
                    "spec of trial {} published ({} bytes)",
                    short_word(t.id),
                    s.bytes.len()
                ),
            ));
        }
        for e in &t.enrolments {
            lines.push((
                e.at,
                format!(
                    "patient {} of dataset #{} enrolled in trial {}",
                    short_word(e.nullifier),
                    e.dataset,
                    short_word(t.id)
                ),
            ));
        }
        for s in &t.skipped {
            lines.push((
                s.at,
                format!(
                    "batch slot {} skipped (already enrolled)",
                    short_word(s.nullifier)
                ),
            ));
        }
        if let Some(r) = &t.refund {
            lines.push((
                r.at,
                format!(
                    "trial {} refunded {} to {}",
                    short_word(t.id),
                    amount(r.amount, Address::ZERO),
                    party(a, r.sponsor)
                ),
            ));
        }
    }
    if f.is_empty() {
        for w in &h.withdrawals {
            lines.push((
                w.at,
                format!(
                    "{} withdrew {} from the {}",
                    party(a, w.account),
                    amount(w.amount, w.token),
                    w.market.name()
                ),
            ));
        }
        for x in &h.accreditations {
            lines.push((
                x.at,
                format!(
                    "{} {} {}",
                    party(a, x.accreditor),
                    if x.granted { "accredited" } else { "revoked" },
                    party(a, x.custodian)
                ),
            ));
        }
        for c in &h.cell_floors {
            lines.push((
                c.at,
                format!(
                    "{} set its cell floor to {}",
                    party(a, c.custodian),
                    c.floor
                ),
            ));
        }
        for t in &h.tokens {
            lines.push((
                t.at,
                format!(
                    "the {} {} token {}",
                    t.market.name(),
                    if t.allowed { "allowed" } else { "disallowed" },
                    short(t.token)
                ),
            ));
        }
    }
    for e in &h.verifier_events {
        let text = match &e.change {
            VerifierChange::Set {
                previous, verifier, ..
            } if verifier.is_zero() => {
                format!(
                    "the {} removed verifier {} of circuit {}",
                    e.market.name(),
                    short(*previous),
                    circuit_name(a, e.circuit)
                )
            }
            VerifierChange::Set { verifier, .. } => {
                format!(
                    "the {} set verifier {} for circuit {}",
                    e.market.name(),
                    short(*verifier),
                    circuit_name(a, e.circuit)
                )
            }
            VerifierChange::Proposed { verifier, .. } => {
                format!(
                    "the {} owner proposed verifier {} for circuit {}",
                    e.market.name(),
                    short(*verifier),
                    circuit_name(a, e.circuit)
                )
            }
            VerifierChange::Cancelled => format!(
                "the {} owner cancelled a verifier proposal",
                e.market.name()
            ),
        };
        lines.push((e.at, text));
    }
    for o in &h.ownership {
        let text = match &o.what {
            OwnershipChange::Transferred { from, to } if from.is_zero() => {
                format!(
                    "the {} was deployed, owned by {}",
                    o.market.name(),
                    party(a, *to)
                )
            }
            OwnershipChange::Transferred { to, .. } => {
                format!("the {} passed to owner {}", o.market.name(), party(a, *to))
            }
            OwnershipChange::HandoverRequested { pending } => format!(
                "{} asked to take over the {}",
                party(a, *pending),
                o.market.name()
            ),
            OwnershipChange::HandoverCanceled { pending } => {
                format!("{} withdrew its takeover request", party(a, *pending))
            }
        };
        lines.push((o.at, text));
    }
    lines.sort_by_key(|(at, _)| (at.block, at.log_index));
    let rows = lines
        .into_iter()
        .map(|(at, text)| {
            vec![
                at.block.to_string().into(),
                utc(at.time).into(),
                short_hash(at.tx).into(),
                text.into(),
            ]
        })
        .collect();
    vec![
        Block::Heading(2, "Timeline".into()),
        Block::Table(vec!["Block", "Time", "Tx", "Event"], rows),
    ]
}

fn addresses(a: &Audit) -> Vec<Block> {
    let d = &a.deployment;
    let mut items = vec![
        format!("Query market {}", d.market),
        format!("Trial market {}", d.trials),
        format!("Dataset registry {}", d.registry),
        format!("Accreditation registry {}", d.accreditations),
        format!("Markets' owner at deployment {}", d.owner),
    ];
    items.extend(a.names.iter().map(|(addr, n)| format!("{n}: {addr}")));
    vec![Block::Heading(2, "Addresses".into()), Block::List(items)]
}

fn document(a: &Audit) -> (String, Vec<Block>) {
    let title = format!(
        "zkcohort audit: chain {}, blocks {}–{}",
        a.deployment.chain_id, a.from_block, a.to_block
    );
    let mut intro = format!(
        "Rebuilt from the chain alone, up to block {} ({}): every event of the deployment's markets and registries, every proof re-verified off-chain from its transaction's calldata, every payment reconciled with the contracts' balances.",
        a.to_block,
        utc(a.to_time)
    );
    if !a.filter.is_empty() {
        let mut parts = Vec::new();
        if let Some(q) = a.filter.query {
            parts.push(format!("query #{q}"));
        }
        if let Some(t) = a.filter.trial {
            parts.push(format!("trial {}", short_word(t)));
        }
        if let Some(d) = a.filter.dataset {
            parts.push(format!("dataset #{d}"));
        }
        if let Some(c) = a.filter.custodian {
            parts.push(format!("custodian {}", party(a, c)));
        }
        let _ = write!(
            intro,
            " Shown: {} only (the money is reconciled over everything).",
            parts.join(", ")
        );
    }
    let mut blocks = vec![Block::Para(intro)];
    blocks.extend(findings(a));
    blocks.extend(summary(a));
    if !a.queries.is_empty() {
        blocks.push(Block::Heading(2, "Queries".into()));
        for v in &a.queries {
            blocks.extend(query_section(a, v));
        }
    }
    if !a.trials.is_empty() {
        blocks.push(Block::Heading(2, "Trials".into()));
        for v in &a.trials {
            blocks.extend(trial_section(a, v));
        }
    }
    blocks.extend(datasets(a));
    blocks.extend(payments(a));
    blocks.extend(verifier_section(a));
    blocks.extend(registry(a));
    blocks.extend(timeline(a));
    blocks.extend(addresses(a));
    (title, blocks)
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown (charts as text bars).
pub fn markdown(a: &Audit) -> String {
    let (title, blocks) = document(a);
    let mut out = format!("# {title}\n\n");
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {text}\n", "#".repeat(level as usize));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::Callout(class, text) => {
                let mark = match class {
                    "ok" => "✓ ",
                    "bad" => "✗ ",
                    _ => "",
                };
                let _ = writeln!(out, "> {mark}{text}\n");
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(out, "- {i}");
                }
                out.push('\n');
            }
            Block::Table(head, rows) => {
                let _ = writeln!(out, "| {} |", head.join(" | "));
                let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| md_cell(&c.text)).collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
            Block::Chart(title, bars) => {
                let _ = writeln!(out, "{title}:\n\n```");
                let width = bars
                    .iter()
                    .map(|b| b.label.chars().count())
                    .max()
                    .unwrap_or(0);
                let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
                for b in &bars {
                    let n = if max > 0.0 {
                        (b.value / max * 40.0).round() as usize
                    } else {
                        0
                    };
                    let _ = writeln!(
                        out,
                        "{:<width$}  {}{}{}",
                        b.label,
                        "█".repeat(n),
                        if n > 0 { " " } else { "" },
                        b.text
                    );
                }
                out.push_str("```\n\n");
            }
        }
    }
    out
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2430;max-width:1180px;margin:2em auto;padding:0 1.2em;background:#fbfbfd}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #dde3ea;padding-bottom:.2em}h3{margin-top:1.4em}
table{border-collapse:collapse;width:100%;margin:.6em 0 1em;font-size:.92em;background:#fff}
th,td{border:1px solid #dde3ea;padding:.35em .55em;text-align:left;vertical-align:top}th{background:#eef2f6}
td.ok{color:#17663a}td.bad{color:#a4161a;font-weight:600}td.warn{color:#8a5a00}td.muted{color:#6b7685}
.callout{border-left:5px solid #7a8aa0;background:#eef2f6;padding:.5em .8em;margin:.8em 0}
.callout.ok{border-color:#2f9e5b;background:#eaf7ef}.callout.bad{border-color:#c62828;background:#fdecec}.callout.info{border-color:#3367d6;background:#edf2fd}
figure{margin:.8em 0}figcaption{font-size:.9em;color:#4a5565;margin-bottom:.3em}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}svg rect.bar{fill:#3367d6}svg rect.pool{fill:#2f9e5b}svg rect.muted{fill:#c9d1db}
ul{padding-left:1.3em}
";

fn svg_chart(title: &str, bars: &[Bar]) -> String {
    let label_w = 230.0;
    let bar_w = 420.0;
    let row = 26.0;
    let height = row * bars.len() as f64 + 8.0;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        label_w + bar_w + 140.0,
        escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = if max > 0.0 {
            (b.value / max * bar_w).max(2.0)
        } else {
            2.0
        };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect class=\"{}\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" rx=\"3\"></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 14.0,
            escape(&b.label),
            b.class,
            label_w + w + 6.0,
            y + 14.0,
            escape(&b.text)
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

/// The report as one self-contained HTML page: inline CSS, inline SVG charts, no script, no
/// external asset. Every piece of chain data is escaped.
pub fn html(a: &Audit) -> String {
    let (title, blocks) = document(a);
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", escape(&text));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(&text));
            }
            Block::Callout(class, text) => {
                let _ = writeln!(
                    out,
                    "<div class=\"callout {class}\">{}</div>",
                    escape(&text)
                );
            }
            Block::List(items) => {
                out.push_str("<ul>");
                for i in items {
                    let _ = write!(out, "<li>{}</li>", escape(&i));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(head, rows) => {
                out.push_str("<table><thead><tr>");
                for h in head {
                    let _ = write!(out, "<th>{}</th>", escape(h));
                }
                out.push_str("</tr></thead><tbody>");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        match c.class {
                            Some(class) => {
                                let _ =
                                    write!(out, "<td class=\"{class}\">{}</td>", escape(&c.text));
                            }
                            None => {
                                let _ = write!(out, "<td>{}</td>", escape(&c.text));
                            }
                        }
                    }
                    out.push_str("</tr>");
                }
                out.push_str("</tbody></table>\n");
            }
            Block::Chart(title, bars) => out.push_str(&svg_chart(&title, &bars)),
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_chain_data() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let svg = svg_chart(
            "t<",
            &[Bar {
                label: "<b>".into(),
                value: 1.0,
                text: "1".into(),
                class: "bar",
            }],
        );
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
    }
}
