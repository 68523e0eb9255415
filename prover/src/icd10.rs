//! ICD-10(-CM) codes as order-preserving integers in which every prefix is a contiguous range.
//!
//! A code (dot optional) is 3 to 7 characters: a letter, a digit, a digit or letter (the
//! category, e.g. `E11`), then up to four extension characters (`E11.65`, `S72.001A`).
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

/// Encoded width in bits: `26·10·36·37⁴ < 2³⁵`.
pub const BITS: u32 = 35;
/// Largest valid encoding (`Z9ZZZZZ`).
pub const MAX_CODE: u64 = 26 * 10 * 36 * 37u64.pow(4) - 1;

const RADIX: [u64; 7] = [26, 10, 36, 37, 37, 37, 37];

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

fn chars(code: &str, min_len: usize) -> Result<Vec<u64>, String> {
    let cleaned: Vec<char> = code.trim().chars().filter(|c| *c != '.').collect();
    if cleaned.len() < min_len || cleaned.len() > 7 {
        return Err(format!(
            "`{code}` is not an ICD-10 code{} ({min_len} to 7 characters)",
            if min_len == 1 { " prefix" } else { "" }
        ));
    }
    cleaned
        .iter()
        .enumerate()
        .map(|(i, c)| {
            digit(i, *c).ok_or_else(|| format!("`{code}`: character {} (`{c}`) is invalid", i + 1))
        })
        .collect()
}

fn fold(digits: impl IntoIterator<Item = u64>) -> u64 {
    digits
        .into_iter()
        .zip(RADIX)
        .fold(0, |acc, (d, r)| acc * r + d)
}

/// Encodes a full code such as `E11.9` or `E119`.
pub fn encode(code: &str) -> Result<u64, String> {
    let d = chars(code, 3)?;
    Ok(fold(d.iter().copied().chain(std::iter::repeat(0)).take(7)))
}

/// The inclusive range of encodings of every code that starts with `prefix` (1–7 characters).
pub fn prefix_range(prefix: &str) -> Result<(u64, u64), String> {
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
        assert_eq!(encode("Z9ZZZZZ").unwrap(), MAX_CODE);
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
        for bad in ["", "E1", "1E1", "EE1", "E11.123456", "E1$"] {
            assert!(encode(bad).is_err(), "{bad}");
        }
    }
}
