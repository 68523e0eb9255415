//! ICD-10(-CM) codes as order-preserving integers in which every prefix is a contiguous range.
//!
//! A code is 3 to 7 characters: the category, a letter and two digits (`E11`; the third is a
//! letter only in the ICD-10-CM categories [`LETTER_CATEGORIES`] such as `C4A`), then up to
//! four letters or digits (`E11.65`, `S72.001A`), optionally after a dot that may only follow
//! the category. Anything else (`B2O` with a letter O, `E1.19`, `E11.`) is refused.
//! It is read as a mixed-radix number, most significant character first:
//!
//! | position | alphabet | radix |
//! |---|---|---|
//! | 1 | `A`–`Z` | 26 |
//! | 2 | `0`–`9` | 10 |
//! | 3 | `0`–`9`, `A`–`Z` | 36 |
//! | 4–7 | absent, `0`–`9`, `A`–`Z` | 37 |
//!
//! "Absent" is the smallest digit, so a code sorts before all its extensions and the codes that
//! start with a prefix are exactly the integers in [`prefix_range`]: "has a diagnosis under
//! E11" is the inclusive range criterion `dx ∈ [E11, E11ZZZZ]`.

use crate::error::Icd10Error;

/// Encoded width in bits: `26·10·36·37⁴ < 2³⁵`.
pub const BITS: u32 = 35;
/// Largest valid encoding (`Z9ZZZZZ`).
pub const MAX_CODE: u64 = 26 * 10 * 36 * 37u64.pow(4) - 1;

/// Radix of each character position, most significant first (the table above).
pub(crate) const RADIX: [u64; 7] = [26, 10, 36, 37, 37, 37, 37];

/// The ICD-10-CM categories whose third character is a letter; every other category is a
/// letter and two digits (so `B2O`, with the letter O, is refused rather than read as a code).
pub const LETTER_CATEGORIES: [&str; 6] = ["C4A", "C7A", "C7B", "D3A", "M1A", "Z3A"];

const DIGIT_EXPECTED: &str = "a digit";
const CATEGORY_EXPECTED: &str =
    "a digit (a letter only in the ICD-10-CM categories C4A, C7A, C7B, D3A, M1A, Z3A)";

fn digit(pos: usize, c: char) -> Option<u64> {
    let c = c.to_ascii_uppercase();
    match pos {
        0 => c.is_ascii_uppercase().then(|| c as u64 - 'A' as u64),
        1 => c.to_digit(10).map(u64::from),
        _ => {
            let base = if pos == 2 { 0 } else { 1 };
            match c {
                '0'..='9' => Some(base + (c as u64 - '0' as u64)),
                'A'..='Z' => Some(base + 10 + (c as u64 - 'A' as u64)),
                _ => None,
            }
        }
    }
}

/// The letter a digit is most often mistyped as.
fn as_digit(c: char) -> Option<char> {
    match c.to_ascii_uppercase() {
        'O' => Some('0'),
        'I' | 'L' => Some('1'),
        _ => None,
    }
}

/// Checks the shape of a code (`min_len` 3) or prefix (`min_len` 1) and returns its digits.
fn chars(code: &str, min_len: usize) -> Result<Vec<u64>, Icd10Error> {
    let trimmed = code.trim();
    let prefix = min_len < 3;
    let cleaned: Vec<char> = trimmed.chars().filter(|c| *c != '.').collect();
    if cleaned.len() < min_len || cleaned.len() > 7 {
        return Err(Icd10Error::Length {
            code: code.to_owned(),
            len: cleaned.len(),
            prefix,
        });
    }
    // At most one dot, right after the category, with something after it.
    let dots: Vec<usize> = trimmed.match_indices('.').map(|(i, _)| i).collect();
    if !dots.is_empty() && (dots != [3] || trimmed.len() == 4) {
        return Err(Icd10Error::Dot {
            code: code.to_owned(),
        });
    }
    let mut digits = Vec::with_capacity(cleaned.len());
    for (i, &c) in cleaned.iter().enumerate() {
        let d = digit(i, c).filter(|_| {
            i != 2 || c.is_ascii_digit() || {
                let category: String = cleaned[..3].iter().collect::<String>().to_ascii_uppercase();
                LETTER_CATEGORIES.contains(&category.as_str())
            }
        });
        match d {
            Some(d) => digits.push(d),
            None => {
                let expected = match i {
                    0 => "a letter",
                    1 => DIGIT_EXPECTED,
                    2 => CATEGORY_EXPECTED,
                    _ => "a letter or a digit",
                };
                return Err(Icd10Error::Character {
                    code: code.to_owned(),
                    position: i + 1,
                    found: c,
                    expected,
                    suggestion: suggest(trimmed, min_len),
                });
            }
        }
    }
    Ok(digits)
}

/// `trimmed` with a letter O or I in the category's digit positions read as 0 or 1, if that
/// makes it valid.
fn suggest(trimmed: &str, min_len: usize) -> Option<String> {
    let mut changed = false;
    let fixed: String = trimmed
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, as_digit(c)) {
            (1 | 2, Some(d)) => {
                changed = true;
                d
            }
            _ => c.to_ascii_uppercase(),
        })
        .collect();
    (changed && chars(&fixed, min_len).is_ok()).then_some(fixed)
}

fn fold(digits: impl IntoIterator<Item = u64>) -> u64 {
    digits
        .into_iter()
        .zip(RADIX)
        .fold(0, |acc, (d, r)| acc * r + d)
}

/// Encodes a full code such as `E11.9` or `E119`.
pub fn encode(code: &str) -> Result<u64, Icd10Error> {
    let d = chars(code, 3)?;
    Ok(fold(d.iter().copied().chain(std::iter::repeat(0)).take(7)))
}

/// The inclusive range of encodings of every code that starts with `prefix` (1–7 characters).
pub fn prefix_range(prefix: &str) -> Result<(u64, u64), Icd10Error> {
    let d = chars(prefix, 1)?;
    let lo = fold(d.iter().copied().chain(std::iter::repeat(0)).take(7));
    let hi = fold(
        d.iter()
            .copied()
            .chain(RADIX[d.len()..].iter().map(|r| r - 1))
            .take(7),
    );
    Ok((lo, hi))
}

/// Decodes an encoding back into its dotted form (`E11.65`).
pub fn decode(mut value: u64) -> String {
    let mut digits = [0u64; 7];
    for i in (0..7).rev() {
        digits[i] = value % RADIX[i];
        value /= RADIX[i];
    }
    let mut s = String::new();
    for (i, d) in digits.into_iter().enumerate() {
        let c = match i {
            0 => (b'A' + d as u8) as char,
            1 => (b'0' + d as u8) as char,
            _ => {
                let d = if i == 2 {
                    d
                } else if d == 0 {
                    break;
                } else {
                    d - 1
                };
                if d < 10 {
                    (b'0' + d as u8) as char
                } else {
                    (b'A' + (d - 10) as u8) as char
                }
            }
        };
        if i == 3 {
            s.push('.');
        }
        s.push(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for code in [
            "E11", "E11.9", "E11.65", "S72.001A", "C4A.1", "A00", "Z99.89",
        ] {
            assert_eq!(decode(encode(code).unwrap()), code);
        }
        const { assert!(MAX_CODE < 1 << BITS) };
        // MAX_CODE bounds the encoding; `Z9Z` itself is not a real category.
        assert_eq!(decode(MAX_CODE), "Z9Z.ZZZZ");
        assert!(encode("Z9ZZZZZ").is_err());
        assert!(encode("Z99ZZZZ").unwrap() < MAX_CODE);
    }

    #[test]
    fn prefixes_are_contiguous_ranges() {
        let (lo, hi) = prefix_range("E11").unwrap();
        for inside in ["E11", "E11.0", "E11.9", "E11.65", "E11.XXXX"] {
            let v = encode(inside).unwrap();
            assert!(lo <= v && v <= hi, "{inside}");
        }
        for outside in ["E10.9", "E12", "E1", "D99.9", "F11"] {
            if let Ok(v) = encode(outside) {
                assert!(v < lo || v > hi, "{outside}");
            }
        }
        let (lo, hi) = prefix_range("E").unwrap();
        assert!(lo <= encode("E00").unwrap() && encode("E99.99").unwrap() <= hi);
        assert!(encode("F00").unwrap() > hi);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "E1",
            "1E1",
            "EE1",
            "E11.123456",
            "E1$",
            "B2O",
            "E1A",
            "E1.19",
            "E11.",
            "E11..9",
            "E11.9.1",
            ".E119",
            "E11-9",
        ] {
            assert!(encode(bad).is_err(), "{bad}");
        }
        for good in [
            "E119", "e11.9", " E11.9 ", "C4A", "M1A.0110", "Z3A.20", "T36.0X1A",
        ] {
            assert!(encode(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn letter_o_for_zero_is_refused_with_a_suggestion() {
        let err = encode("B2O").unwrap_err();
        assert_eq!(
            err,
            Icd10Error::Character {
                code: "B2O".into(),
                position: 3,
                found: 'O',
                expected: CATEGORY_EXPECTED,
                suggestion: Some("B20".into()),
            }
        );
        assert!(err.to_string().ends_with("did you mean `B20`?"), "{err}");
        assert!(encode("EI1.9")
            .unwrap_err()
            .to_string()
            .contains("did you mean `E11.9`?"));
        assert!(prefix_range("E1O").is_err());
        assert!(prefix_range("C4A").is_ok() && prefix_range("E1").is_ok());
        assert!(matches!(encode("E11."), Err(Icd10Error::Dot { .. })));
    }
}
