//! Plain words for what the chain stores as integers: criteria, statistics, amounts, times.

use alloy::primitives::{utils::format_ether, Address, B256, U256};
use num_bigint::BigUint;
use serde::Serialize;

use crate::{
    icd10,
    query::{QueryConstants, QueryResult},
    schema::{Column, ColumnKind, Schema},
    trial::TrialCriteria,
};

/// Posted words as integers, with the schema's value-column count, if there are `len` of
/// them and each fits a `u64` (the shape of constants and criteria: ranges first).
fn small_words(schema: &Schema, words: &[U256], len: usize) -> Option<(Vec<u64>, usize)> {
    if words.len() != len {
        return None;
    }
    let w = words
        .iter()
        .map(|x| u64::try_from(*x).ok())
        .collect::<Option<_>>()?;
    Some((w, schema.value_columns().count()))
}

/// The `(lo, hi)` pairs of the first `v` columns.
fn ranges(w: &[u64], v: usize) -> Vec<(u64, u64)> {
    (0..v).map(|i| (w[2 * i], w[2 * i + 1])).collect()
}

/// Posted query constants decoded for `schema`, if they have its shape.
pub fn query_constants(schema: &Schema, words: &[U256]) -> Option<QueryConstants> {
    let (w, v) = small_words(schema, words, QueryConstants::len_for(schema))?;
    Some(QueryConstants {
        ranges: ranges(&w, v),
        purpose: w[2 * v],
        statistic: w[2 * v + 1],
        min_cohort: w[2 * v + 2],
        threshold: None,
    })
}

/// Posted trial criteria decoded for `schema`, if they have its shape.
pub fn trial_criteria(schema: &Schema, words: &[U256]) -> Option<TrialCriteria> {
    let (w, v) = small_words(schema, words, TrialCriteria::len_for(schema))?;
    Some(TrialCriteria {
        ranges: ranges(&w, v),
        purpose: w[2 * v],
    })
}

/// The value column a query's statistic index names.
pub fn statistic_column(schema: &Schema, index: u64) -> Option<&Column> {
    schema
        .value_columns()
        .nth(usize::try_from(index).ok()?)
        .map(|(_, c)| c)
}

/// Decimal places of a column's encoding.
pub fn scale_of(column: &Column) -> u32 {
    match column.kind {
        ColumnKind::Decimal { scale, .. } => scale,
        _ => 0,
    }
}

/// One range criterion in words, `None` if it does not constrain the column.
pub fn range_words(column: &Column, lo: u64, hi: u64) -> Option<String> {
    let max = column.max_value();
    if lo == 0 && hi >= max {
        return None;
    }
    let name = &column.name;
    let v = |x: u64| column.decode(x);
    Some(match &column.kind {
        ColumnKind::Icd10 => match icd10_prefix(lo, hi) {
            Some(prefix) => format!("{name} in {prefix} (any code starting {prefix})"),
            None => format!("{name} from {} to {}", v(lo), v(hi)),
        },
        ColumnKind::Categorical { codes } => {
            let names: Vec<&str> = codes
                .iter()
                .enumerate()
                .filter(|(i, _)| (*i as u64) >= lo && (*i as u64) <= hi)
                .map(|(_, c)| c.as_str())
                .collect();
            match names.as_slice() {
                [] => format!("{name}: no allowed value ({lo}..{hi})"),
                [one] => format!("{name} {one}"),
                many => format!("{name} {}", many.join(" or ")),
            }
        }
        _ if lo == hi => format!("{name} = {}", v(lo)),
        _ if lo == 0 => format!("{name} ≤ {}", v(hi)),
        _ if hi >= max => format!("{name} ≥ {}", v(lo)),
        _ => format!("{name} {}–{}", v(lo), v(hi)),
    })
}

/// The shortest ICD-10 prefix whose codes are exactly `[lo, hi]`.
fn icd10_prefix(lo: u64, hi: u64) -> Option<String> {
    let code: String = icd10::decode(lo).chars().filter(|c| *c != '.').collect();
    (1..=code.len()).find_map(|n| {
        let p = &code[..n];
        (icd10::prefix_range(p).ok()? == (lo, hi)).then(|| {
            if n > 3 {
                format!("{}.{}", &p[..3], &p[3..])
            } else {
                p.to_owned()
            }
        })
    })
}

/// Inclusion criteria and consent in words.
pub fn criteria_words(schema: &Schema, ranges: &[(u64, u64)], purpose: u64) -> Vec<String> {
    let mut out: Vec<String> = schema
        .value_columns()
        .zip(ranges)
        .filter_map(|((_, c), (lo, hi))| range_words(c, *lo, *hi))
        .collect();
    match schema.purposes().get(purpose as usize) {
        Some(p) => out.push(format!("consented to {p}")),
        None => out.push(format!("consent purpose #{purpose} (not in the schema)")),
    }
    out
}

/// A query's constants in words: who is counted, which column is summarised, the cell size
/// below which answers are suppressed.
pub fn query_words(schema: &Schema, c: &QueryConstants) -> String {
    let mut parts = criteria_words(schema, &c.ranges, c.purpose);
    if parts.len() == 1 {
        parts.insert(0, "every record".into());
    }
    let stat = statistic_column(schema, c.statistic).map_or_else(
        || format!("column #{}", c.statistic),
        |col| col.name.clone(),
    );
    format!(
        "patients with {}; count, mean and sd of {stat}; cohorts of fewer than {} suppressed",
        parts.join(", "),
        c.min_cohort
    )
}

/// A trial's criteria in words.
pub fn trial_words(schema: &Schema, c: &TrialCriteria) -> String {
    format!(
        "patients with {}",
        criteria_words(schema, &c.ranges, c.purpose).join(", ")
    )
}

/// Count, mean and standard deviation (population) in natural units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Count.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
}

/// Count, mean and sd in natural units from released sums (stored units: `Σ (v − min)` at the
/// column's scale) over `count` values (the non-missing count: a missing value adds nothing
/// to the sums); `None` for no values. The conversion is the column's own
/// [`Column::natural_mean_variance`] (the one `verify` and `sponsor status` use): it undoes
/// the scale and adds back the column's `min`. Without a column (the statistic index names
/// none in the schema, or no schema is known) the sums are shown as stored integers.
pub fn stats(column: Option<&Column>, count: U256, sum: U256, sum_squares: U256) -> Option<Stats> {
    let n = u64::try_from(count).ok().filter(|n| *n > 0)?;
    let big = |x: U256| BigUint::from_bytes_be(&x.to_be_bytes::<32>());
    let result = QueryResult {
        records: n,
        count: n,
        sum: big(sum),
        sum_squares: big(sum_squares),
        suppressed: false,
    };
    let (mean, variance) = match column {
        Some(column) => column.natural_mean_variance(&result)?,
        None => result.mean_variance(0)?,
    };
    Some(Stats {
        n,
        mean,
        sd: variance.sqrt(),
    })
}

/// A statistic to `scale + 1` decimals.
pub fn number(x: f64, scale: u32) -> String {
    format!("{x:.prec$}", prec = scale as usize + 1)
}

/// A number followed by its unit, if any: `7.90 %`, `132.0 mmHg`.
pub fn with_unit(number: &str, unit: Option<&str>) -> String {
    match unit {
        Some(u) => format!("{number} {u}"),
        None => number.to_owned(),
    }
}

/// Mean and sd of a statistic in words, the mean with the column's unit:
/// `mean hba1c 7.90 % (sd 1.10)`; `decimals` places for both.
pub fn mean_sd(statistic: &str, unit: Option<&str>, mean: f64, sd: f64, decimals: usize) -> String {
    format!(
        "mean {statistic} {} (sd {sd:.decimals$})",
        with_unit(&format!("{mean:.decimals$}"), unit)
    )
}

/// An amount: ether for ETH, base units for a token.
pub fn amount(x: U256, token: Address) -> String {
    if token.is_zero() {
        let s = format_ether(x);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{} ETH", if s.is_empty() { "0" } else { s })
    } else {
        format!("{x} units of token {}", short(token))
    }
}

/// `0x1234…abcd`.
pub fn short(a: Address) -> String {
    let s = a.to_string();
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

/// A hash shortened to `0x12345678…`.
pub fn short_hash(h: B256) -> String {
    format!("{}…", &h.to_string()[..10])
}

/// A word (trial id, nullifier) shortened.
pub fn short_word(x: U256) -> String {
    format!("{}…", &crate::audit::model::word_hex(&x)[..12])
}

/// `n` and a noun, plural unless `n` is 1: `"1 notice"`, `"2 notices"`.
pub fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ts: u64) -> String {
    format!("{} UTC", crate::utc::Civil::from_unix(ts).format(" ", ":"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{query::QuerySpec, trial::TrialSpec};

    fn words(fields: &[crate::Fr]) -> Vec<U256> {
        fields.iter().map(crate::chain::fr_to_u256).collect()
    }

    #[test]
    fn posted_constants_read_back_in_words() {
        let schema = Schema::clinical_default();
        let spec: QuerySpec = serde_json::from_str(
            r#"{"criteria": {"age": [40, 65], "dx": {"prefix": "E11"}, "sex": {"eq": "F"},
                "hba1c": {"min": "6.5"}, "bmi": {"max": 30}},
                "consent": "research", "statistic": "hba1c", "min_cohort": 20}"#,
        )
        .unwrap();
        let c = spec.compile(&schema).unwrap();
        let decoded = query_constants(&schema, &words(&c.to_fields())).unwrap();
        assert_eq!(decoded, c);
        assert_eq!(
            query_words(&schema, &decoded),
            "patients with age 40–65, sex F, dx in E11 (any code starting E11), hba1c ≥ 6.5, \
             bmi ≤ 30.0, consented to research; count, mean and sd of hba1c; cohorts of fewer \
             than 20 suppressed"
        );
        // Wrong shape: not decoded.
        assert!(query_constants(&schema, &words(&c.to_fields())[1..]).is_none());

        let trial: TrialSpec = serde_json::from_str(
            r#"{"criteria": {"dx": {"prefix": "E11.6"}, "sbp": [130, 180]}, "consent": "trials"}"#,
        )
        .unwrap();
        let t = trial.compile(&schema).unwrap();
        let decoded = trial_criteria(&schema, &words(&t.to_fields())).unwrap();
        assert_eq!(decoded, t);
        assert_eq!(
            trial_words(&schema, &decoded),
            "patients with dx in E11.6 (any code starting E11.6), sbp 130–180, consented to trials"
        );
    }

    /// Released sums of a column with a `min` are over stored values `v − min`: the report's
    /// mean adds `min` back (as `verify` and `sponsor status` do), its sd is unchanged.
    #[test]
    fn statistics_of_a_column_with_a_negative_min_are_in_natural_units() {
        let column: Column = serde_json::from_str(
            r#"{"name":"base_excess","kind":"decimal","scale":1,"bits":9,"min":-25,"nullable":true}"#,
        )
        .unwrap();
        let naturals = ["-6.8", "-3.2", "1.5"];
        let stored: Vec<u64> = naturals.iter().map(|v| column.encode(v).unwrap()).collect();
        assert_eq!(stored, [182, 218, 265]);
        let sum: u64 = stored.iter().sum();
        let sum_squares: u64 = stored.iter().map(|x| x * x).sum();
        let s = stats(
            Some(&column),
            U256::from(3),
            U256::from(sum),
            U256::from(sum_squares),
        )
        .unwrap();
        let mean = (-6.8 - 3.2 + 1.5) / 3.0;
        let variance = [-6.8f64, -3.2, 1.5]
            .iter()
            .map(|v| (v - mean).powi(2))
            .sum::<f64>()
            / 3.0;
        assert_eq!(s.n, 3);
        assert!((s.mean - mean).abs() < 1e-9, "mean {} != {mean}", s.mean);
        assert!((s.sd - variance.sqrt()).abs() < 1e-9, "sd {}", s.sd);
        // The same conversion as the column's own.
        let result = QueryResult {
            records: 3,
            count: 3,
            sum: sum.into(),
            sum_squares: sum_squares.into(),
            suppressed: false,
        };
        let (m, v) = column.natural_mean_variance(&result).unwrap();
        assert_eq!((s.mean, s.sd), (m, v.sqrt()));
        // A positive offset too: years from 1900.
        let year: Column =
            serde_json::from_str(r#"{"name":"year","kind":"uint","bits":8,"min":1900}"#).unwrap();
        let s = stats(
            Some(&year),
            U256::from(2),
            U256::from(124 + 126),
            U256::from(124 * 124 + 126 * 126),
        )
        .unwrap();
        assert!((s.mean - 2025.0).abs() < 1e-9, "{}", s.mean);
        assert!((s.sd - 1.0).abs() < 1e-9, "{}", s.sd);
    }

    #[test]
    fn statistics_times_and_amounts() {
        // Values 1.0, 2.0, 3.0 at scale 1: sum 60, sum of squares 1400.
        let hba1c = &Schema::clinical_default().columns[3];
        let s = stats(Some(hba1c), U256::from(3), U256::from(60), U256::from(1400)).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - 2.0).abs() < 1e-9);
        assert!((s.sd - (2.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert!(stats(Some(hba1c), U256::ZERO, U256::ZERO, U256::ZERO).is_none());
        // No column known: the stored integers.
        let raw = stats(None, U256::from(3), U256::from(60), U256::from(1400)).unwrap();
        assert!((raw.mean - 20.0).abs() < 1e-9);
        assert_eq!(number(2.0, 1), "2.00");
        assert_eq!(
            mean_sd("hba1c", Some("%"), 7.897, 1.104, 2),
            "mean hba1c 7.90 % (sd 1.10)"
        );
        assert_eq!(
            mean_sd("bmi", None, 27.0, 3.26, 1),
            "mean bmi 27.0 (sd 3.3)"
        );
        assert_eq!(with_unit("132", Some("mmHg")), "132 mmHg");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(
            amount(U256::from(100_000_000_000_000_000u64), Address::ZERO),
            "0.1 ETH"
        );
        assert_eq!(amount(U256::from(10u64.pow(18)), Address::ZERO), "1 ETH");
        assert_eq!(amount(U256::ZERO, Address::ZERO), "0 ETH");
    }
}
