//! Parsing of single textual values the way real files spell them.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// Parses `true/false`, `t/f`, `yes/no`, `y/n`, `1/0`, `on/off` in any case, plus any extra
/// spellings a contract adds.
pub fn parse_bool(s: &str, extra_true: &[String], extra_false: &[String]) -> Option<bool> {
    const TRUE: [&str; 6] = ["true", "t", "yes", "y", "1", "on"];
    const FALSE: [&str; 6] = ["false", "f", "no", "n", "0", "off"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) || extra_true.iter().any(|t| t == s) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) || extra_false.iter().any(|f| f == s)
    {
        Some(false)
    } else {
        None
    }
}

/// Formats tried, in order, when a timestamp column names no format. Offsets in the value win;
/// values without one are read in the column's zone.
const AWARE_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f %z",
];
const NAIVE_FORMATS: [&str; 8] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
];
const DATE_FORMATS: [&str; 2] = ["%Y-%m-%d", "%Y/%m/%d"];

#[derive(Debug, Clone)]
enum Mode {
    Auto,
    EpochSeconds,
    EpochMillis,
    /// strftime with an offset/zone directive.
    Aware(String),
    /// strftime with a time but no zone.
    Naive(String),
    /// strftime with only a date.
    Date(String),
}

/// Turns textual timestamps into microseconds since the Unix epoch (UTC).
///
/// Remembers which automatic format matched last, so a column in one format costs one parse
/// attempt per value. Shareable between threads (the hint is only a hint).
#[derive(Debug)]
pub struct TimestampParser {
    mode: Mode,
    zone: Tz,
    last_hit: AtomicUsize,
}

impl Clone for TimestampParser {
    fn clone(&self) -> Self {
        TimestampParser {
            mode: self.mode.clone(),
            zone: self.zone,
            last_hit: AtomicUsize::new(self.last_hit.load(Ordering::Relaxed)),
        }
    }
}

impl TimestampParser {
    /// `format`: a chrono strftime string, `epoch_s`, `epoch_ms`, or `None` for automatic
    /// ISO 8601 / RFC 3339 detection. `timezone`: IANA zone for values without an offset.
    pub fn new(format: Option<&str>, timezone: Option<&str>) -> Result<Self, String> {
        let zone: Tz = match timezone {
            None => Tz::UTC,
            Some(z) => z.parse().map_err(|_| {
                format!("unknown time zone '{z}' (use an IANA name such as Europe/Paris)")
            })?,
        };
        let mode = match format {
            None => Mode::Auto,
            Some("epoch_s") => Mode::EpochSeconds,
            Some("epoch_ms") => Mode::EpochMillis,
            Some(f) => {
                let has_zone =
                    f.contains("%z") || f.contains("%:z") || f.contains("%#z") || f.contains("%+");
                let has_time = ["%H", "%T", "%R", "%I", "%+", "%s"]
                    .iter()
                    .any(|d| f.contains(d));
                if has_zone {
                    Mode::Aware(f.to_string())
                } else if has_time {
                    Mode::Naive(f.to_string())
                } else {
                    Mode::Date(f.to_string())
                }
            }
        };
        Ok(TimestampParser {
            mode,
            zone,
            last_hit: AtomicUsize::new(0),
        })
    }

    /// Microseconds since the epoch, or `None` when the value is not a timestamp this parser
    /// accepts (or names a local time that does not exist in the zone).
    pub fn parse_micros(&self, s: &str) -> Option<i64> {
        match &self.mode {
            Mode::EpochSeconds => {
                let v: f64 = s.parse().ok()?;
                finite_micros(v * 1e6)
            }
            Mode::EpochMillis => {
                let v: f64 = s.parse().ok()?;
                finite_micros(v * 1e3)
            }
            Mode::Aware(f) => DateTime::parse_from_str(s, f)
                .ok()
                .map(|d| d.timestamp_micros()),
            Mode::Naive(f) => NaiveDateTime::parse_from_str(s, f)
                .ok()
                .and_then(|n| self.localize(n)),
            Mode::Date(f) => NaiveDate::parse_from_str(s, f)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .and_then(|n| self.localize(n)),
            Mode::Auto => self.parse_auto(s),
        }
    }

    fn localize(&self, n: NaiveDateTime) -> Option<i64> {
        // Ambiguous local times (DST fall-back) take the earlier instant; times skipped by a
        // DST jump do not exist and are rejected.
        self.zone
            .from_local_datetime(&n)
            .earliest()
            .map(|d| d.timestamp_micros())
    }

    fn parse_auto(&self, s: &str) -> Option<i64> {
        let total = 1 + AWARE_FORMATS.len() + NAIVE_FORMATS.len() + DATE_FORMATS.len() + 1;
        let start = self.last_hit.load(Ordering::Relaxed);
        for i in 0..total {
            let idx = (start + i) % total;
            if let Some(v) = self.try_auto(idx, s) {
                self.last_hit.store(idx, Ordering::Relaxed);
                return Some(v);
            }
        }
        None
    }

    fn try_auto(&self, idx: usize, s: &str) -> Option<i64> {
        let aware = 1;
        let naive = aware + AWARE_FORMATS.len();
        let date = naive + NAIVE_FORMATS.len();
        let utc_suffix = date + DATE_FORMATS.len();
        if idx == 0 {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.timestamp_micros())
        } else if idx < naive {
            DateTime::parse_from_str(s, AWARE_FORMATS[idx - aware])
                .ok()
                .map(|d| d.timestamp_micros())
        } else if idx < date {
            NaiveDateTime::parse_from_str(s, NAIVE_FORMATS[idx - naive])
                .ok()
                .and_then(|n| self.localize(n))
        } else if idx < utc_suffix {
            NaiveDate::parse_from_str(s, DATE_FORMATS[idx - date])
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .and_then(|n| self.localize(n))
        } else {
            // "2024-01-02 03:04:05 UTC" and "...Z" spelled with a space.
            let base = s.strip_suffix(" UTC").or_else(|| s.strip_suffix('Z'))?;
            let base = base.trim_end();
            NAIVE_FORMATS[..4].iter().find_map(|f| {
                NaiveDateTime::parse_from_str(base, f)
                    .ok()
                    .map(|n| n.and_utc().timestamp_micros())
            })
        }
    }
}

fn finite_micros(v: f64) -> Option<i64> {
    if v.is_finite() && v.abs() < 9.0e18 {
        Some(v.round() as i64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(rfc: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn auto_reads_common_spellings() {
        let p = TimestampParser::new(None, None).unwrap();
        let want = micros("2024-03-01T12:30:00Z");
        for s in [
            "2024-03-01T12:30:00Z",
            "2024-03-01T12:30:00+00:00",
            "2024-03-01T14:30:00+02:00",
            "2024-03-01 12:30:00",
            "2024-03-01T12:30:00",
            "2024-03-01 12:30",
            "2024-03-01 12:30:00 UTC",
            "2024-03-01 12:30:00Z",
            "2024-03-01 12:30:00.000",
            "2024-03-01 13:30:00+0100",
        ] {
            assert_eq!(p.parse_micros(s), Some(want), "{s}");
        }
        assert_eq!(
            p.parse_micros("2024-03-01"),
            Some(micros("2024-03-01T00:00:00Z"))
        );
        assert_eq!(p.parse_micros("yesterday"), None);
        assert_eq!(p.parse_micros("2024-13-01"), None);
    }

    #[test]
    fn naive_values_use_the_column_zone() {
        let p = TimestampParser::new(None, Some("Europe/Paris")).unwrap();
        assert_eq!(
            p.parse_micros("2024-03-01 13:30:00"),
            Some(micros("2024-03-01T12:30:00Z"))
        );
        // An explicit offset wins over the zone.
        assert_eq!(
            p.parse_micros("2024-03-01T13:30:00Z"),
            Some(micros("2024-03-01T13:30:00Z"))
        );
        // 02:30 on the spring-forward night does not exist in Paris.
        assert_eq!(p.parse_micros("2024-03-31 02:30:00"), None);
    }

    #[test]
    fn explicit_formats_and_epochs() {
        let p = TimestampParser::new(Some("%d.%m.%Y %H:%M"), None).unwrap();
        assert_eq!(
            p.parse_micros("01.03.2024 12:30"),
            Some(micros("2024-03-01T12:30:00Z"))
        );
        assert_eq!(p.parse_micros("2024-03-01 12:30"), None);
        let p = TimestampParser::new(Some("epoch_s"), None).unwrap();
        assert_eq!(
            p.parse_micros("1709296200"),
            Some(micros("2024-03-01T12:30:00Z"))
        );
        assert_eq!(p.parse_micros("inf"), None);
        let p = TimestampParser::new(Some("epoch_ms"), None).unwrap();
        assert_eq!(
            p.parse_micros("1709296200000"),
            Some(micros("2024-03-01T12:30:00Z"))
        );
        let p = TimestampParser::new(Some("%Y%m%d"), None).unwrap();
        assert_eq!(
            p.parse_micros("20240301"),
            Some(micros("2024-03-01T00:00:00Z"))
        );
        assert!(TimestampParser::new(None, Some("Nowhere/Land")).is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("TRUE", &[], &[]), Some(true));
        assert_eq!(parse_bool("no", &[], &[]), Some(false));
        assert_eq!(parse_bool("ja", &["ja".into()], &[]), Some(true));
        assert_eq!(parse_bool("maybe", &[], &[]), None);
    }
}
