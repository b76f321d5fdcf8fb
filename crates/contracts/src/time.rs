//! The contract's timestamps on the wire: RFC 3339 in UTC, written and read exactly as chrono's
//! serde support does, only faster.
//!
//! Every event carries two or three timestamps and every consumer reads them, hashes them
//! (the payload hash covers `data`) and writes new ones: with chrono's serde impls these were
//! about 7% of the local runner's CPU time, because chrono formats through `Display` one
//! character at a time and parses with its general format-string parser. Here the common shape
//! (`2026-11-23T10:47:00Z`, optionally with 1 to 9 fraction digits) is written into a stack
//! buffer and read by a fixed-position scanner. Everything else (years outside 0000-9999, leap
//! seconds, offsets other than `Z`, any text the scanner does not recognise) goes through chrono
//! itself, so what is written and what is accepted are chrono's, byte for byte: a property test
//! below holds both directions equal to chrono's.
//!
//! Used as `#[serde(with = "crate::time")]` on the contract's `DateTime<Utc>` fields.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde::{Deserializer, Serializer, de};

/// Longest text the fast writer produces: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const MAX_LEN: usize = 30;

/// Writes `value` as chrono's `to_rfc3339_opts(SecondsFormat::AutoSi, true)` (what its serde
/// impl writes) into `buf`, returning the used length; `None` when chrono must write it.
fn write_fast(value: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let naive = value.naive_utc();
    let year = naive.year();
    let nano = naive.nanosecond();
    // Out-of-range years get a sign and leap seconds print as :60: both left to chrono.
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return None;
    }
    fn two(buf: &mut [u8], at: usize, value: u32) {
        // `value` < 100 here: every caller passes a calendar or clock field.
        buf[at] = b'0' + (value / 10 % 10) as u8;
        buf[at + 1] = b'0' + (value % 10) as u8;
    }
    let year = year.unsigned_abs();
    two(buf, 0, year / 100);
    two(buf, 2, year % 100);
    buf[4] = b'-';
    two(buf, 5, naive.month());
    buf[7] = b'-';
    two(buf, 8, naive.day());
    buf[10] = b'T';
    two(buf, 11, naive.hour());
    buf[13] = b':';
    two(buf, 14, naive.minute());
    buf[16] = b':';
    two(buf, 17, naive.second());
    let mut len = 19;
    // AutoSi: no fraction, or milli-, micro- or nanoseconds, whichever is exact.
    let (fraction, digits) = if nano == 0 {
        (0, 0)
    } else if nano.is_multiple_of(1_000_000) {
        (nano / 1_000_000, 3)
    } else if nano.is_multiple_of(1_000) {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    if digits > 0 {
        buf[len] = b'.';
        let mut rest = fraction;
        for i in (0..digits).rev() {
            buf[len + 1 + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        len += 1 + digits;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// Reads the common shape `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`; `None` for anything else (which
/// chrono then reads, or refuses).
fn read_fast(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes.last() != Some(&b'Z') {
        return None;
    }
    let digit = |at: usize| -> Option<u32> {
        let b = *bytes.get(at)?;
        b.is_ascii_digit().then(|| u32::from(b - b'0'))
    };
    let two = |at: usize| -> Option<u32> { Some(digit(at)? * 10 + digit(at + 1)?) };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, sep)| bytes.get(at) != Some(&sep))
    {
        return None;
    }
    let year = two(0)? * 100 + two(2)?;
    let (month, day) = (two(5)?, two(8)?);
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    // A leap second (:60) is chrono's to read.
    if second > 59 {
        return None;
    }
    let fraction = &bytes[19..bytes.len() - 1];
    let nano = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let mut nano = 0u32;
            for &b in digits {
                if !b.is_ascii_digit() {
                    return None;
                }
                nano = nano * 10 + u32::from(b - b'0');
            }
            nano * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let time = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nano)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// Serializes like chrono's `Serialize for DateTime<Utc>`.
pub(crate) fn serialize<S: Serializer>(
    value: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match write_fast(value, &mut buf) {
        // The writer only puts ASCII digits and separators in the buffer.
        Some(len) => match std::str::from_utf8(&buf[..len]) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serde::Serialize::serialize(value, serializer),
        },
        None => serde::Serialize::serialize(value, serializer),
    }
}

struct Visitor;

impl de::Visitor<'_> for Visitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // chrono's wording, so an error reads the same whichever path refused the value.
        formatter.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        if let Some(value) = read_fast(text) {
            return Ok(value);
        }
        text.parse::<DateTime<FixedOffset>>()
            .map(|value| value.with_timezone(&Utc))
            .map_err(E::custom)
    }
}

/// Deserializes like chrono's `Deserialize for DateTime<Utc>`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Fast(#[serde(with = "crate::time")] DateTime<Utc>);

    fn fast_text(value: DateTime<Utc>) -> String {
        serde_json::to_string(&Fast(value)).unwrap()
    }

    fn chrono_text(value: DateTime<Utc>) -> String {
        serde_json::to_string(&value).unwrap()
    }

    fn fast_read(json: &str) -> Result<DateTime<Utc>, String> {
        serde_json::from_str::<Fast>(json)
            .map(|f| f.0)
            .map_err(|e| e.to_string())
    }

    fn chrono_read(json: &str) -> Result<DateTime<Utc>, String> {
        serde_json::from_str::<DateTime<Utc>>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn common_shapes_are_written_as_chrono_writes_them() {
        for text in [
            "2026-11-23T10:47:00Z",
            "2026-11-23T10:47:00.120Z",
            "2026-11-23T10:47:00.000120Z",
            "2026-11-23T10:47:00.000000120Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            let value: DateTime<Utc> = text.parse().unwrap();
            assert_eq!(fast_text(value), format!("\"{text}\""));
            assert_eq!(fast_text(value), chrono_text(value));
        }
    }

    #[test]
    fn leap_seconds_and_far_years_are_left_to_chrono() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let far = NaiveDate::from_ymd_opt(12_345, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        for value in [leap, far] {
            assert_eq!(fast_text(value), chrono_text(value));
            assert_eq!(fast_read(&fast_text(value)), Ok(value));
        }
    }

    #[test]
    fn other_offsets_and_malformed_text_read_as_chrono_reads_them() {
        for json in [
            "\"2026-11-23T11:47:00+01:00\"",
            "\"2026-11-23t10:47:00z\"",
            "\"2026-11-23 10:47:00Z\"",
            "\"2026-02-30T10:47:00Z\"",
            "\"2026-11-23T24:00:00Z\"",
            "\"2026-11-23T10:47:00.Z\"",
            "\"2026-11-23T10:47:00.1234567890Z\"",
            "\"2026-11-23T10:47:60Z\"",
            "\"2026-11-23T10:47Z\"",
            "\"not a time\"",
            "42",
        ] {
            assert_eq!(fast_read(json), chrono_read(json), "{json}");
        }
    }

    fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
        // 0000-01-01 to 9999-12-31, with whole, milli-, micro- and nanosecond fractions.
        (
            -62_167_219_200i64..253_402_300_799,
            prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1_000),
                0u32..1_000_000_000,
            ],
        )
            .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
    }

    /// Text shaped like a timestamp, with every position free to be wrong.
    fn near_time_text() -> impl Strategy<Value = String> {
        proptest::string::string_regex(
            "[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?([Zz]|[+-][01][0-9]:[0-5][0-9])?",
        )
        .unwrap()
    }

    proptest! {
        #[test]
        fn any_time_is_written_and_read_back_as_chrono_does(value in any_time()) {
            let text = fast_text(value);
            prop_assert_eq!(&text, &chrono_text(value));
            prop_assert_eq!(fast_read(&text), Ok(value));
        }

        #[test]
        fn any_near_time_text_is_accepted_or_refused_as_chrono_does(text in near_time_text()) {
            let json = format!("\"{text}\"");
            prop_assert_eq!(fast_read(&json), chrono_read(&json));
        }
    }
}
