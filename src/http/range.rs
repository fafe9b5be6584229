//! Range requests (RFC 9110 §14): which part of a representation of known
//! length a `GET` asks for, and whether `If-Range` lets it.
//!
//! Policy, for [`Request::respond_seekable`](crate::Request::respond_seekable):
//!
//! * one range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) that is satisfiable:
//!   `206` with that part; `b` past the end is cut to the end (§14.1.2);
//! * several ranges: the whole representation (`200`), which §14.2 allows
//!   (no `multipart/byteranges`);
//! * no satisfiable range: `416` with `Content-Range: bytes */len`
//!   (§15.5.17);
//! * a field that does not parse (another unit, bad numbers, `b < a`,
//!   digits that overflow): ignored, `200` (§14.2: "MAY ignore");
//! * an empty representation: `200` (no range of it can be written as a
//!   `Content-Range`).

/// What a `Range` field asks of a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ranged {
    /// Send it whole (no `Range`, ignored, or several ranges).
    Full,
    /// Send bytes `start..=end` (`end < len`).
    Partial { start: u64, end: u64 },
    /// `416 Range Not Satisfiable`.
    Unsatisfiable,
}

/// The longest `Range` value looked at: a longer one is ignored (whole
/// response), so a hostile field costs at most this much parsing.
const MAX_FIELD: usize = 1024;

/// Reads a `Range` field value (RFC 9110 §14.1.1, §14.2) against a
/// representation of `len` bytes.
pub(crate) fn parse(value: &str, len: u64) -> Ranged {
    if value.len() > MAX_FIELD || len == 0 {
        return Ranged::Full;
    }
    let Some((unit, set)) = value.split_once('=') else {
        return Ranged::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Full;
    }
    let mut specs = set
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty());
    let Some(first) = specs.next() else {
        return Ranged::Full;
    };
    let mut found = match spec(first, len) {
        Some(r) => r,
        None => return Ranged::Full,
    };
    for other in specs {
        match spec(other, len) {
            // Several ranges: the whole representation, once every one
            // is valid syntax (else the field is ignored anyway).
            Some(r) => {
                if r != Ranged::Unsatisfiable || found != Ranged::Unsatisfiable {
                    found = Ranged::Full;
                }
            }
            None => return Ranged::Full,
        }
    }
    found
}

/// One range-spec; `None` if it is not valid syntax.
fn spec(s: &str, len: u64) -> Option<Ranged> {
    let (first, last) = s.split_once('-')?;
    if first.is_empty() {
        // suffix-range: the last `n` bytes.
        let n = digits(last)?;
        return Some(if n == 0 {
            Ranged::Unsatisfiable
        } else {
            Ranged::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            }
        });
    }
    let start = digits(first)?;
    let end = if last.is_empty() {
        u64::MAX
    } else {
        digits(last)?
    };
    if end < start {
        return None;
    }
    Some(if start >= len {
        Ranged::Unsatisfiable
    } else {
        Ranged::Partial {
            start,
            end: end.min(len - 1),
        }
    })
}

/// `1*DIGIT` as a u64; `None` for anything else or an overflow.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether `If-Range: if_range` lets the range apply (RFC 9110 §13.1.5):
/// an entity-tag must equal the response's `ETag` by strong comparison
/// (neither weak, same opaque-tag); an HTTP-date must equal its
/// `Last-Modified` exactly (the client sends back what it was given). Any
/// other value, or a validator the response lacks, does not match: the
/// whole representation is sent.
pub(crate) fn if_range_matches(
    if_range: &str,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> bool {
    let v = if_range.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        let strong = |t: &str| t.len() >= 2 && t.starts_with('"') && t.ends_with('"');
        return match etag.map(str::trim) {
            Some(e) => strong(v) && strong(e) && v == e,
            None => false,
        };
    }
    last_modified.is_some_and(|lm| imf_fixdate_shaped(v) && lm.trim() == v)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7): only this form is
/// compared; the obsolete ones a client would not echo back.
fn imf_fixdate_shaped(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 29 && b[3] == b',' && v.ends_with(" GMT") && v.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ranged::*;

    #[test]
    fn single_ranges_of_each_form() {
        assert_eq!(parse("bytes=0-0", 10), Partial { start: 0, end: 0 });
        assert_eq!(parse("bytes=2-5", 10), Partial { start: 2, end: 5 });
        assert_eq!(parse("bytes=2-", 10), Partial { start: 2, end: 9 });
        assert_eq!(parse("bytes=-3", 10), Partial { start: 7, end: 9 });
        assert_eq!(parse("bytes=-30", 10), Partial { start: 0, end: 9 });
        assert_eq!(parse("bytes=5-100", 10), Partial { start: 5, end: 9 });
        assert_eq!(parse("Bytes = 1-2", 10), Partial { start: 1, end: 2 });
        assert_eq!(parse("bytes= 1-2 ,", 10), Partial { start: 1, end: 2 });
        assert_eq!(parse("bytes=9-9", 10), Partial { start: 9, end: 9 });
    }

    #[test]
    fn unsatisfiable_ranges_get_416() {
        assert_eq!(parse("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse("bytes=10-11, 12-", 10), Unsatisfiable);
    }

    #[test]
    fn several_ranges_get_the_whole_representation() {
        assert_eq!(parse("bytes=0-1,3-4", 10), Full);
        assert_eq!(parse("bytes=0-1, 20-30", 10), Full);
        assert_eq!(parse("bytes=20-30, -2", 10), Full);
    }

    #[test]
    fn hostile_or_invalid_fields_are_ignored() {
        let long = format!("bytes={}", "0-1,".repeat(1000));
        for v in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "items=0-1",
            "bytes=a-b",
            "bytes=5-2",
            "bytes=-",
            "bytes=--1",
            "bytes=1--2",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes=1-2-3",
            "bytes=99999999999999999999-",
            "bytes=-99999999999999999999",
            "bytes=0-99999999999999999999",
            "bytes=0-1,junk",
            "bytes=١-٢",
            long.as_str(),
        ] {
            assert_eq!(parse(v, 10), Full, "{v:?}");
        }
        // Nothing of an empty representation can be a Content-Range.
        assert_eq!(parse("bytes=0-", 0), Full);
        assert_eq!(parse("bytes=-5", 0), Full);
        // The largest lengths do not overflow.
        assert_eq!(
            parse("bytes=-1", u64::MAX),
            Partial {
                start: u64::MAX - 1,
                end: u64::MAX - 1
            }
        );
        assert_eq!(
            parse("bytes=18446744073709551614-", u64::MAX),
            Partial {
                start: u64::MAX - 1,
                end: u64::MAX - 1
            }
        );
    }

    #[test]
    fn if_range_compares_strongly() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert!(if_range_matches("\"v1\"", Some("\"v1\""), None));
        assert!(!if_range_matches("\"v1\"", Some("\"v2\""), None));
        assert!(!if_range_matches("W/\"v1\"", Some("W/\"v1\""), None));
        assert!(!if_range_matches("\"v1\"", Some("W/\"v1\""), None));
        assert!(!if_range_matches("\"v1\"", None, Some(date)));
        assert!(if_range_matches(date, Some("\"v1\""), Some(date)));
        assert!(!if_range_matches(
            "Sun, 06 Nov 1994 08:49:38 GMT",
            None,
            Some(date)
        ));
        assert!(!if_range_matches(date, None, None));
        assert!(!if_range_matches("garbage", None, Some("garbage")));
    }
}
