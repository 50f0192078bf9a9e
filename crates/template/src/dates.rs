//! `day_diff` and `date_diff_in_*`: a `strptime` for the directives pipes use, and the
//! absolute difference truncated toward zero (spec §9.6).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// Python's `datetime.strptime(text, format)` for `%Y %m %d %H %M %S %f %y %%`, whitespace
/// in the format matching one or more whitespace characters, literals matched without case.
pub(crate) fn strptime(text: &str, format: &str) -> Option<NaiveDateTime> {
    let t: Vec<char> = text.chars().collect();
    let f: Vec<char> = format.chars().collect();
    let (mut i, mut j) = (0usize, 0usize);
    let (mut year, mut month, mut day) = (1900i32, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut micro) = (0u32, 0u32, 0u32, 0u32);
    let digits = |i: &mut usize, min: usize, max: usize| -> Option<(u32, usize)> {
        let start = *i;
        while *i < t.len() && *i - start < max && t[*i].is_ascii_digit() {
            *i += 1;
        }
        let n = *i - start;
        if n < min {
            return None;
        }
        let s: String = t[start..*i].iter().collect();
        Some((s.parse().ok()?, n))
    };
    while j < f.len() {
        let c = f[j];
        if c == '%' {
            let d = *f.get(j + 1)?;
            j += 2;
            match d {
                'Y' => year = digits(&mut i, 4, 4)?.0 as i32,
                'y' => {
                    let y = digits(&mut i, 2, 2)?.0 as i32;
                    year = if y < 69 { 2000 + y } else { 1900 + y };
                }
                'm' => month = digits(&mut i, 1, 2)?.0,
                'd' => day = digits(&mut i, 1, 2)?.0,
                'H' => hour = digits(&mut i, 1, 2)?.0,
                'M' => minute = digits(&mut i, 1, 2)?.0,
                'S' => second = digits(&mut i, 1, 2)?.0,
                'f' => {
                    let (v, n) = digits(&mut i, 1, 6)?;
                    micro = v * 10u32.pow(6 - n as u32);
                }
                '%' => {
                    if t.get(i) != Some(&'%') {
                        return None;
                    }
                    i += 1;
                }
                _ => return None,
            }
        } else if c.is_whitespace() {
            while j < f.len() && f[j].is_whitespace() {
                j += 1;
            }
            let start = i;
            while i < t.len() && t[i].is_whitespace() {
                i += 1;
            }
            if i == start {
                return None;
            }
        } else {
            let tc = *t.get(i)?;
            if tc.to_lowercase().ne(c.to_lowercase()) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    if i != t.len() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?;
    Some(NaiveDateTime::new(date, time))
}

/// The unit a date difference is expressed in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    Days,
    Hours,
    Minutes,
    Seconds,
}

/// `abs(d1 - d0)` in `unit`, truncated toward zero; `None` when either date does not parse.
pub(crate) fn diff(d0: &str, d1: &str, format: &str, backup: Option<&str>, unit: Unit) -> Option<i128> {
    let parse = |s: &str| strptime(s, format).or_else(|| backup.and_then(|b| strptime(s, b)));
    let (a, b) = (parse(d0)?, parse(d1)?);
    let micros = (b - a).num_microseconds()?.unsigned_abs() as f64;
    let seconds = micros / 1e6;
    let v = match unit {
        Unit::Days => seconds / 86400.0,
        Unit::Hours => seconds / 3600.0,
        Unit::Minutes => seconds / 60.0,
        Unit::Seconds => seconds,
    };
    Some(v.trunc() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(diff("2024-01-01", "2024-01-31", "%Y-%m-%d", None, Unit::Days), Some(30));
        assert_eq!(
            diff("2022-12-14 18:42:22", "2022-12-19 18:42:22", "%Y-%m-%d %H:%M:%S", None, Unit::Hours),
            Some(120)
        );
        assert_eq!(diff("2019-01-01", "2019/01/04", "%Y-%m-%d", Some("%Y/%m/%d"), Unit::Days), Some(3));
        assert_eq!(diff("2024-02-30", "2024-01-01", "%Y-%m-%d", None, Unit::Days), None);
        assert!(strptime("2022-12-19T18:42:22.591Z", "%Y-%m-%dT%H:%M:%S.%fZ").is_some());
    }
}
