//! FHIR `date` and `dateTime` values: parsing, ages at a reference date, and instants to tell
//! the latest of several observations.

/// A FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`. A partial date stands for the first day
/// of its year or month ([`Date::partial`] says which it was).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Whether the month or the day was absent.
    pub partial: bool,
}

/// A point in time, in seconds since 1970-01-01T00:00:00Z: the start of a FHIR `date` (in
/// UTC) or a `dateTime` with its offset applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub i64);

impl Date {
    /// Parses a FHIR `date` (the date part of a `dateTime` is not accepted here).
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let year = parts.next()?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        let mut field = |max: u32| -> Option<Option<u32>> {
            match parts.next() {
                None => Some(None),
                Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => {
                    let v: u32 = p.parse().ok()?;
                    (1..=max).contains(&v).then_some(Some(v))
                }
                Some(_) => None,
            }
        };
        let month = field(12)?;
        let day = match month {
            Some(m) => field(days_in_month(year, m))?,
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Date {
            year,
            month: month.unwrap_or(1),
            day: day.unwrap_or(1),
            partial: day.is_none(),
        })
    }

    /// Completed years from `self` (a birth date) to `at`; negative if `at` is earlier. A
    /// birthday on 29 February is reached on 1 March in common years.
    pub fn years_until(&self, at: &Date) -> i64 {
        let mut years = i64::from(at.year) - i64::from(self.year);
        if (at.month, at.day) < (self.month, self.day) {
            years -= 1;
        }
        years
    }

    /// The instant the day starts (UTC).
    pub fn start(&self) -> Instant {
        Instant(days_from_civil(self.year, self.month, self.day) * 86_400)
    }

    /// The instant the next day starts (UTC): everything before it is "on or before" this
    /// date.
    pub fn end(&self) -> Instant {
        Instant(self.start().0 + 86_400)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Instant {
    /// Parses a FHIR `dateTime` (or `instant`): a `date`, or `YYYY-MM-DDThh:mm:ss[.f+]` with
    /// `Z` or `±hh:mm` (a missing offset is read as UTC).
    pub fn parse(text: &str) -> Option<Instant> {
        let Some((date, time)) = text.split_once('T') else {
            let date = Date::parse(text)?;
            return Some(date.start());
        };
        let date = Date::parse(date).filter(|d| !d.partial)?;
        let (clock, offset) = if let Some(clock) = time.strip_suffix('Z') {
            (clock, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (clock, zone) = time.split_at(i);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            let (h, m) = (two_digits(h, 14)?, two_digits(m, 59)?);
            (clock, sign * i64::from(h * 3600 + m * 60))
        } else {
            (time, 0)
        };
        let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
        if !fraction.bytes().all(|b| b.is_ascii_digit()) || clock.ends_with('.') {
            return None;
        }
        let mut hms = whole.split(':');
        let h = two_digits(hms.next()?, 23)?;
        let m = two_digits(hms.next()?, 59)?;
        let s = two_digits(hms.next()?, 60)?;
        if hms.next().is_some() {
            return None;
        }
        Some(Instant(
            date.start().0 + i64::from(h * 3600 + m * 60 + s) - offset,
        ))
    }
}

fn two_digits(text: &str, max: u32) -> Option<u32> {
    if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| *v <= max)
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_partial_dates() {
        let d = Date::parse("1961-07-23").unwrap();
        assert_eq!((d.year, d.month, d.day, d.partial), (1961, 7, 23, false));
        assert_eq!(d.to_string(), "1961-07-23");
        let y = Date::parse("1961").unwrap();
        assert_eq!((y.month, y.day, y.partial), (1, 1, true));
        assert!(Date::parse("1961-07").unwrap().partial);
        for bad in [
            "",
            "61-07-23",
            "1961-7-23",
            "1961-13-01",
            "1961-02-29",
            "1961-07-32",
            "1961-07-23T",
            "1961/07/23",
            "1961-07-23-01",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert!(Date::parse("2000-02-29").is_some());
    }

    #[test]
    fn ages_at_a_reference_date() {
        let reference = Date::parse("2025-01-01").unwrap();
        let age = |birth: &str| Date::parse(birth).unwrap().years_until(&reference);
        assert_eq!(age("1961-07-23"), 63);
        assert_eq!(
            age("1961-01-01"),
            64,
            "birthday on the reference date counts"
        );
        assert_eq!(age("1961-01-02"), 63);
        assert_eq!(age("2025-01-01"), 0);
        assert_eq!(age("2025-06-01"), -1, "born after the reference date");
        let leap = Date::parse("2004-02-29").unwrap();
        assert_eq!(leap.years_until(&Date::parse("2005-02-28").unwrap()), 0);
        assert_eq!(leap.years_until(&Date::parse("2005-03-01").unwrap()), 1);
    }

    #[test]
    fn instants_order_date_times_across_offsets() {
        let t = |s: &str| Instant::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(t("1970-01-01T00:00:00Z"), Instant(0));
        assert_eq!(t("1970-01-02"), Instant(86_400));
        assert_eq!(t("2000-03-01").0 - t("2000-02-28").0, 2 * 86_400);
        assert_eq!(t("2019-02-20T10:15:32-05:00"), t("2019-02-20T15:15:32Z"));
        assert_eq!(
            t("2019-02-20T10:15:32.123+01:00"),
            t("2019-02-20T09:15:32Z")
        );
        assert!(t("2019-02-20T23:59:59Z") < Date::parse("2019-02-20").unwrap().end());
        assert!(t("2019-02-21T00:00:00Z") >= Date::parse("2019-02-20").unwrap().end());
        assert!(t("1969-12-31") < Instant(0));
        for bad in [
            "2019-02-20T25:00:00Z",
            "2019-02-20T10:15Z",
            "2019-02T10:15:32Z",
            "x",
            "2019-02-20T10:15:32+5",
        ] {
            assert_eq!(Instant::parse(bad), None, "{bad}");
        }
    }
}
