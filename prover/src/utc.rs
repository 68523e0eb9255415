//! UTC calendar time from Unix seconds, for file names, the disclosure ledger and reports (one
//! implementation of the civil-date conversion; no time-zone database needed).

/// A UTC date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: i64,
    /// Day of the month, 1–31.
    pub day: i64,
    /// Hour, 0–23.
    pub hour: u64,
    /// Minute, 0–59.
    pub minute: u64,
    /// Second, 0–59.
    pub second: u64,
}

impl Civil {
    /// The UTC date and time `secs` seconds after 1970-01-01T00:00:00Z (Howard Hinnant's
    /// days-to-civil algorithm).
    pub fn from_unix(secs: u64) -> Self {
        let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }

    /// The time `t` (the epoch for times before it).
    pub fn from_system(t: std::time::SystemTime) -> Self {
        Self::from_unix(
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }

    /// `YYYY-MM-DD`, then `date_time_sep`, then `HH`, `MM`, `SS` joined by `time_sep`.
    pub fn format(&self, date_time_sep: &str, time_sep: &str) -> String {
        format!(
            "{:04}-{:02}-{:02}{date_time_sep}{:02}{time_sep}{:02}{time_sep}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Civil::from_unix(0).format("T", ":"), "1970-01-01T00:00:00");
        assert_eq!(
            Civil::from_unix(1_700_000_000).format(" ", ":"),
            "2023-11-14 22:13:20"
        );
        // A leap day and the turn of a century not divisible by 400.
        assert_eq!(
            Civil::from_unix(951_782_400).format("T", ":"),
            "2000-02-29T00:00:00"
        );
        assert_eq!(
            Civil::from_unix(4_107_542_400).format("T", ":"),
            "2100-03-01T00:00:00"
        );
    }
}
