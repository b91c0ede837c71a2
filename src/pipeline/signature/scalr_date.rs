//! Go's `time.Parse("Mon 02 Jan 2006 15:04:05 MST", s)`, the only layout Scalr's `Date` header
//! is read with, reduced to what that layout accepts.

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Why a Scalr `Date` header is not in its one layout (shown after `parsing time "...": `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScalrDateError {
    /// A field that is missing or malformed: `weekday`, `day`, `month`, `year`, `hour`,
    /// `minute`, `second` or `zone`.
    #[error("cannot parse {0}")]
    Field(&'static str),
    #[error("expected {0:?}")]
    Expected(char),
    #[error("expected a space")]
    NoSpace,
    #[error("extra text after the zone")]
    ExtraText,
    #[error("time out of range")]
    TimeOutOfRange,
    #[error("day out of range")]
    DayOutOfRange,
}

/// Parses a Scalr date into Unix seconds.
///
/// Go's rules for this layout: the weekday and month names are matched case-insensitively
/// (the weekday is not checked against the date); the day, minute and second take exactly two
/// digits, the hour one or two, the year four; a space matches one or more spaces; seconds may
/// carry a fraction; the zone is `UTC`, `GMT`, `GMT±h` (h ≤ 12), `+hh`/`-hh`, or an upper-case
/// abbreviation of 3 to 5 letters. Go gives an abbreviation it cannot resolve offset 0 (it
/// consults only the server's local zone), and so does this parser for every name but
/// `GMT±h`. Nothing may follow the zone.
pub(super) fn parse(value: &str) -> Result<i64, ScalrDateError> {
    let mut p = Cursor(value.as_bytes());
    p.name(&DAYS, "weekday")?;
    p.space()?;
    let day = p.digits(2, 2, "day")?;
    p.space()?;
    let month = p.name(&MONTHS, "month")? + 1;
    p.space()?;
    let year = p.digits(4, 4, "year")?;
    p.space()?;
    let hour = p.digits(1, 2, "hour")?;
    p.literal(b':')?;
    let minute = p.digits(2, 2, "minute")?;
    p.literal(b':')?;
    let second = p.digits(2, 2, "second")?;
    if p.0.len() >= 2 && matches!(p.0[0], b'.' | b',') && p.0[1].is_ascii_digit() {
        p.0 = &p.0[1..];
        while p.0.first().is_some_and(u8::is_ascii_digit) {
            p.0 = &p.0[1..];
        }
    }
    p.space()?;
    let offset = p.zone()?;
    if !p.0.is_empty() {
        return Err(ScalrDateError::ExtraText);
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(ScalrDateError::TimeOutOfRange);
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(ScalrDateError::DayOutOfRange);
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn name(&mut self, names: &[&str], what: &'static str) -> Result<i64, ScalrDateError> {
        let head = self.0.get(..3).ok_or(ScalrDateError::Field(what))?;
        let index = names
            .iter()
            .position(|n| n.as_bytes().eq_ignore_ascii_case(head))
            .ok_or(ScalrDateError::Field(what))?;
        self.0 = &self.0[3..];
        Ok(i64::try_from(index).unwrap_or(0))
    }

    fn digits(
        &mut self,
        min: usize,
        max: usize,
        what: &'static str,
    ) -> Result<i64, ScalrDateError> {
        let n = self
            .0
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n < min {
            return Err(ScalrDateError::Field(what));
        }
        let value = self.0[..n]
            .iter()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
        self.0 = &self.0[n..];
        Ok(value)
    }

    fn literal(&mut self, c: u8) -> Result<(), ScalrDateError> {
        match self.0.split_first() {
            Some((&first, rest)) if first == c => {
                self.0 = rest;
                Ok(())
            }
            _ => Err(ScalrDateError::Expected(char::from(c))),
        }
    }

    fn space(&mut self) -> Result<(), ScalrDateError> {
        if self.0.first() != Some(&b' ') {
            return Err(ScalrDateError::NoSpace);
        }
        while self.0.first() == Some(&b' ') {
            self.0 = &self.0[1..];
        }
        Ok(())
    }

    /// Go's `parseTimeZone`, returning the offset in seconds east of UTC.
    fn zone(&mut self) -> Result<i64, ScalrDateError> {
        let v = self.0;
        if v.starts_with(b"UTC") {
            self.0 = &v[3..];
            return Ok(0);
        }
        if v.starts_with(b"ChST") || v.starts_with(b"MeST") {
            self.0 = &v[4..];
            return Ok(0);
        }
        if let Some(rest) = v.strip_prefix(b"GMT") {
            let (len, hours) = signed_offset(rest).unwrap_or((0, 0));
            self.0 = &rest[len..];
            return Ok(hours * 3600);
        }
        if matches!(v.first(), Some(b'+' | b'-')) {
            let (len, _) = signed_offset(v).ok_or(ScalrDateError::Field("zone"))?;
            // A numeric zone name is not a known abbreviation: Go gives it offset 0.
            self.0 = &v[len..];
            return Ok(0);
        }
        let upper = v
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_uppercase())
            .count();
        let len = match upper {
            3 => 3,
            4 if v[3] == b'T' || v.starts_with(b"WITA") => 4,
            5 if v[4] == b'T' => 5,
            _ => return Err(ScalrDateError::Field("zone")),
        };
        self.0 = &v[len..];
        Ok(0)
    }
}

/// Go's `parseSignedOffset`: a sign and a number of hours up to 12, as (bytes consumed, signed hours).
fn signed_offset(v: &[u8]) -> Option<(usize, i64)> {
    let sign = match v.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = v[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let hours = v[1..=digits].iter().try_fold(0i64, |acc, b| {
        acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })?;
    (hours <= 12).then_some((1 + digits, sign * hours))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        let cases = [
            ("Fri 08 Sep 2017 11:24:32 UTC", 1_504_869_872),
            ("Thu 01 Jan 1970 00:00:00 UTC", 0),
            // The weekday is not checked against the date; names are case-insensitive.
            ("mon 08 SEP 2017 11:24:32 UTC", 1_504_869_872),
            // One-digit hour, several spaces, a fraction of a second.
            ("Fri  08 Sep 2017 1:24:32 UTC", 1_504_869_872 - 10 * 3600),
            ("Fri 08 Sep 2017 11:24:32.999 UTC", 1_504_869_872),
            ("Tue 29 Feb 2000 00:00:00 GMT", 951_782_400),
            ("Fri 08 Sep 2017 11:24:32 GMT-3", 1_504_869_872 + 3 * 3600),
            ("Fri 08 Sep 2017 11:24:32 +03", 1_504_869_872),
            ("Fri 08 Sep 2017 11:24:32 PST", 1_504_869_872),
            ("Fri 08 Sep 2017 11:24:32 AEST", 1_504_869_872),
            ("Fri 08 Sep 2017 11:24:32 ChST", 1_504_869_872),
        ];
        for (text, unix) in cases {
            assert_eq!(parse(text), Ok(unix), "{text}");
        }
    }

    #[test]
    fn refused() {
        for text in [
            "",
            "Fri, 08 Sep 2017 11:24:32 UTC",
            "Fri 8 Sep 2017 11:24:32 UTC",
            "Fri 08 Sept 2017 11:24:32 UTC",
            "Fri 08 Sep 17 11:24:32 UTC",
            "Fri 08 Sep 2017 24:00:00 UTC",
            "Fri 08 Sep 2017 11:60:00 UTC",
            "Fri 08 Sep 2017 11:24 UTC",
            "Fri 31 Sep 2017 11:24:32 UTC",
            "Fri 29 Feb 2017 11:24:32 UTC",
            "Fri 00 Sep 2017 11:24:32 UTC",
            "Fri 08 Sep 2017 11:24:32",
            "Fri 08 Sep 2017 11:24:32 utc",
            "Fri 08 Sep 2017 11:24:32 UTC extra",
            "Fri 08 Sep 2017 11:24:32 ABCDEF",
            "Fri 08 Sep 2017 11:24:32 ABCD",
            "Xyz 08 Sep 2017 11:24:32 UTC",
            "Fri 08 Sep 2017 11:24:32 +13",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
