//! UCUM units of the observations the mapping reads: aliases of common non-UCUM spellings,
//! conversions within one dimension (mass, length, pressure, temperature, concentrations),
//! and rounding of a converted value to a column's scale.
//!
//! Conversions between dimensions that depend on the analyte (HbA1c `%` ↔ `mmol/mol`, glucose
//! `mg/dL` ↔ `mmol/L`) are not generic: the mapping file declares them per column.

/// The UCUM system URI of `Quantity.system`.
pub const UCUM: &str = "http://unitsofmeasure.org";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dim {
    Mass,
    Length,
    Pressure,
    Temperature,
    MassConcentration,
    MolarConcentration,
}

/// `(UCUM code, dimension, factor, offset)`: a value `v` in the unit is `v · factor + offset`
/// in the dimension's base unit (kg, m, mm[Hg], Cel, mg/dL, mmol/L).
const UNITS: &[(&str, Dim, f64, f64)] = &[
    ("kg", Dim::Mass, 1.0, 0.0),
    ("g", Dim::Mass, 1e-3, 0.0),
    ("[lb_av]", Dim::Mass, 0.453_592_37, 0.0),
    ("[oz_av]", Dim::Mass, 0.028_349_523_125, 0.0),
    ("m", Dim::Length, 1.0, 0.0),
    ("cm", Dim::Length, 0.01, 0.0),
    ("mm", Dim::Length, 0.001, 0.0),
    ("[in_i]", Dim::Length, 0.0254, 0.0),
    ("[ft_i]", Dim::Length, 0.3048, 0.0),
    ("mm[Hg]", Dim::Pressure, 1.0, 0.0),
    ("kPa", Dim::Pressure, 1000.0 / 133.322_387_415, 0.0),
    ("Cel", Dim::Temperature, 1.0, 0.0),
    ("[degF]", Dim::Temperature, 5.0 / 9.0, -160.0 / 9.0),
    ("mg/dL", Dim::MassConcentration, 1.0, 0.0),
    ("g/dL", Dim::MassConcentration, 1000.0, 0.0),
    ("g/L", Dim::MassConcentration, 100.0, 0.0),
    ("mg/L", Dim::MassConcentration, 0.1, 0.0),
    ("mmol/L", Dim::MolarConcentration, 1.0, 0.0),
    ("umol/L", Dim::MolarConcentration, 1e-3, 0.0),
];

/// Common non-UCUM spellings (as found in `Quantity.unit` without a code) and their UCUM code.
pub const ALIASES: &[(&str, &str)] = &[
    ("lb", "[lb_av]"),
    ("lbs", "[lb_av]"),
    ("oz", "[oz_av]"),
    ("in", "[in_i]"),
    ("inch", "[in_i]"),
    ("ft", "[ft_i]"),
    ("mmHg", "mm[Hg]"),
    ("°C", "Cel"),
    ("degC", "Cel"),
    ("°F", "[degF]"),
    ("degF", "[degF]"),
    ("kg/m^2", "kg/m2"),
    ("µmol/L", "umol/L"),
];

/// The UCUM code of a unit as written: an alias is replaced, anything else is kept.
pub fn canonical(unit: &str) -> &str {
    let unit = unit.trim();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == unit)
        .map_or(unit, |(_, code)| code)
}

/// `value` in `from` expressed in `to`, if both are known units of one dimension.
pub fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    let find = |code: &str| UNITS.iter().find(|(c, ..)| *c == code);
    let (_, dim_from, f_from, o_from) = find(from)?;
    let (_, dim_to, f_to, o_to) = find(to)?;
    (dim_from == dim_to).then(|| (value * f_from + o_from - o_to) / f_to)
}

/// The units [`convert`] turns into `to` (`to` itself included).
pub fn convertible_to(to: &str) -> Vec<&'static str> {
    let Some((_, dim, ..)) = UNITS.iter().find(|(c, ..)| *c == to) else {
        return Vec::new();
    };
    UNITS
        .iter()
        .filter(|(_, d, ..)| d == dim)
        .map(|(c, ..)| *c)
        .collect()
}

/// A decimal number (as JSON writes it: `-12.345`, `6`, `1e-3`) rounded half away from zero
/// to `scale` decimals, as text. `None` if it is not a finite number.
pub fn round_decimal(text: &str, scale: u32) -> Option<String> {
    let text = text.trim();
    if text.contains(['e', 'E']) {
        let x: f64 = text.parse().ok().filter(|x: &f64| x.is_finite())?;
        return round_decimal(&format!("{x:.12}"), scale);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || int.len() > 30 {
        return None;
    }
    let scale = scale as usize;
    let mut kept: Vec<u8> = int
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale))
        .collect();
    let round_up = frac.as_bytes().get(scale).is_some_and(|d| *d >= b'5');
    if round_up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let split = kept.len() - scale;
    let int_part = std::str::from_utf8(&kept[..split])
        .expect("digits")
        .trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac_part = std::str::from_utf8(&kept[split..]).expect("digits");
    let zero = kept.iter().all(|d| *d == b'0');
    let sign = if negative && !zero { "-" } else { "" };
    Some(if scale == 0 {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    })
}

/// A converted value (a float) as text rounded to `scale` decimals.
pub fn round_float(x: f64, scale: u32) -> Option<String> {
    x.is_finite()
        .then(|| format!("{x:.9}"))
        .and_then(|s| round_decimal(&s, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn conversions_within_a_dimension() {
        assert!(close(
            convert(154.0, "[lb_av]", "kg").unwrap(),
            69.853_224_98
        ));
        assert!(close(
            convert(70.0, "kg", "[lb_av]").unwrap(),
            154.323_583_53
        ));
        assert!(close(convert(180.0, "cm", "m").unwrap(), 1.8));
        assert!(close(convert(70.0, "[in_i]", "cm").unwrap(), 177.8));
        assert!(close(
            convert(16.0, "kPa", "mm[Hg]").unwrap(),
            120.009_852_14
        ));
        assert!(close(convert(98.6, "[degF]", "Cel").unwrap(), 37.0));
        assert!(close(convert(37.0, "Cel", "[degF]").unwrap(), 98.6));
        assert!(close(convert(1.2, "g/L", "mg/dL").unwrap(), 120.0));
        assert_eq!(convert(1.0, "kg", "cm"), None, "another dimension");
        assert_eq!(
            convert(48.0, "mmol/mol", "%"),
            None,
            "analyte-specific: the mapping's"
        );
        assert_eq!(convert(1.0, "stone", "kg"), None);
        assert_eq!(canonical("lbs"), "[lb_av]");
        assert_eq!(canonical(" mmHg "), "mm[Hg]");
        assert_eq!(canonical("kg"), "kg");
        assert_eq!(convertible_to("kg"), ["kg", "g", "[lb_av]", "[oz_av]"]);
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_scale() {
        for (text, scale, want) in [
            ("6.55", 1, "6.6"),
            ("6.549", 1, "6.5"),
            ("27.93", 1, "27.9"),
            ("-2.45", 1, "-2.5"),
            ("-0.04", 1, "0.0"),
            ("9.96", 1, "10.0"),
            ("99.5", 0, "100"),
            ("120", 0, "120"),
            ("7", 2, "7.00"),
            ("0.000", 1, "0.0"),
            ("1e-3", 2, "0.00"),
            ("1.5E2", 0, "150"),
        ] {
            assert_eq!(
                round_decimal(text, scale).as_deref(),
                Some(want),
                "{text} at {scale}"
            );
        }
        for bad in ["", "-", ".5", "1.2.3", "abc", "1,5", "NaN"] {
            assert_eq!(round_decimal(bad, 1), None, "{bad}");
        }
        // HbA1c 48 mmol/mol in %: 48 / 10.929 + 2.15 = 6.5420...
        assert_eq!(round_float(48.0 / 10.929 + 2.15, 1).as_deref(), Some("6.5"));
        assert_eq!(round_float(f64::NAN, 1), None);
    }
}
