//! The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), cached per
//! second per thread so a busy worker formats it once a second.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

thread_local! {
    static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current date to `out`.
pub(crate) fn write_now(out: &mut Vec<u8>) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, format(secs));
        }
        out.extend_from_slice(c.1.as_bytes());
    });
}

/// The last second an HTTP-date can hold (its year has four digits):
/// `Fri, 31 Dec 9999 23:59:59 GMT`. `httpdate` panics past it.
const LAST: u64 = 253_402_300_799;

/// Formats seconds since the Unix epoch as an IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`; a time past the year 9999 as its
/// last second.
pub(crate) fn format(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs.min(LAST)))
}

/// An HTTP-date as seconds since the Unix epoch. RFC 9110 §5.6.7: a
/// recipient reads all three forms: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`, `httpdate` reads two-digit years
/// below 70 as 20xx, where RFC 9110 would take 70–76 as 2070–2076 in 2026:
/// a date no client sends)
/// and asctime (`Sun Nov  6 08:49:37 1994`). `None` for anything else,
/// and for dates before 1970.
pub(crate) fn parse(v: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(v.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_dates() {
        assert_eq!(super::format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(super::format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(super::format(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        // Past the year 9999 (a file's mtime can be): its last second, no panic.
        for secs in [super::LAST, super::LAST + 1, u64::MAX] {
            assert_eq!(super::format(secs), "Fri, 31 Dec 9999 23:59:59 GMT");
        }
    }

    #[test]
    fn parses_the_three_forms_of_rfc_9110_5_6_7() {
        use super::parse;
        for secs in [0, 784_111_777, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse(&super::format(secs)), Some(secs));
        }
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            " Sun, 06 Nov 1994 08:49:37 GMT ",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse(form), Some(784_111_777), "{form:?}");
        }
        for bad in [
            "",
            "garbage",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMTX",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{0}",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
