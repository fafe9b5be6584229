//! Validators of a file (`ETag`, `Last-Modified`) and the conditional
//! request fields that use them (RFC 9110 §13.1), evaluated in the order
//! of RFC 9110 §13.2.2. `If-Range` is left to
//! [`Request::respond_seekable`](crate::Request::respond_seekable).

use crate::http::{date, Headers};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the preconditions decide for a `GET` or `HEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Send the representation (or the range asked for).
    Send,
    /// `304 Not Modified` (§15.4.5).
    NotModified,
    /// `412 Precondition Failed` (§15.5.13).
    Failed,
}

/// A file's validators, as sent in `ETag` and `Last-Modified`.
#[derive(Debug, Clone)]
pub(crate) struct Validators {
    /// A strong entity-tag (quoted): the length and the modification time
    /// to the nanosecond, so a rewrite of the same length within a second
    /// still changes it.
    pub(crate) etag: String,
    /// Seconds since the epoch, the precision of an HTTP-date; never
    /// later than now (RFC 9110 §8.8.2.1: a modification time in the
    /// future is sent as the message's date).
    pub(crate) modified: u64,
}

impl Validators {
    pub(crate) fn new(len: u64, mtime: Option<SystemTime>) -> Validators {
        let since = mtime
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        Validators {
            etag: format!(
                "\"{len:x}-{:x}.{:x}\"",
                since.as_secs(),
                since.subsec_nanos()
            ),
            modified: since.as_secs().min(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
        }
    }

    /// The `Last-Modified` value (IMF-fixdate).
    pub(crate) fn last_modified(&self) -> String {
        date::format(self.modified)
    }

    /// RFC 9110 §13.2.2 for a `GET`/`HEAD`: `If-Match`, else
    /// `If-Unmodified-Since`; then `If-None-Match`, else
    /// `If-Modified-Since`. A date that does not parse is ignored.
    pub(crate) fn evaluate(&self, request: &Headers) -> Outcome {
        if request.contains("if-match") {
            if !list_matches(request.get_all("if-match"), &self.etag, true) {
                return Outcome::Failed;
            }
        } else if let Some(date) = request.get("if-unmodified-since").and_then(date::parse) {
            if self.modified > date {
                return Outcome::Failed;
            }
        }
        if request.contains("if-none-match") {
            if list_matches(request.get_all("if-none-match"), &self.etag, false) {
                return Outcome::NotModified;
            }
        } else if let Some(date) = request.get("if-modified-since").and_then(date::parse) {
            if self.modified <= date {
                return Outcome::NotModified;
            }
        }
        Outcome::Send
    }
}

/// Whether a list of entity-tags (`*` or `#entity-tag`, over one or more
/// fields) matches `etag`: by strong comparison (§8.8.3.2: neither weak)
/// for `If-Match`, weak otherwise (`W/` ignored).
fn list_matches<'a>(values: impl Iterator<Item = &'a str>, etag: &str, strong: bool) -> bool {
    values.flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        if t == "*" {
            return true;
        }
        let (weak, opaque) = match t.strip_prefix("W/") {
            Some(o) => (true, o),
            None => (false, t),
        };
        !(strong && weak) && opaque == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.append(n, v);
        }
        h
    }

    #[test]
    fn preconditions_follow_rfc_9110_13_2_2() {
        let v = Validators {
            etag: "\"a-1.0\"".to_owned(),
            modified: 784_111_777,
        };
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
        let earlier = "Sun, 06 Nov 1994 08:49:36 GMT";
        use Outcome::*;
        for (fields, want) in [
            (vec![], Send),
            (vec![("If-None-Match", "\"a-1.0\"")], NotModified),
            (vec![("If-None-Match", "W/\"a-1.0\"")], NotModified),
            (vec![("If-None-Match", "\"x\", \"a-1.0\"")], NotModified),
            (
                vec![("If-None-Match", "\"x\""), ("If-None-Match", "\"a-1.0\"")],
                NotModified,
            ),
            (vec![("If-None-Match", "*")], NotModified),
            (vec![("If-None-Match", "\"x\"")], Send),
            (vec![("If-Modified-Since", lm)], NotModified),
            (vec![("If-Modified-Since", earlier)], Send),
            (vec![("If-Modified-Since", "garbage")], Send),
            // The obsolete forms a recipient must read (RFC 9110 §5.6.7).
            (
                vec![("If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT")],
                NotModified,
            ),
            (
                vec![("If-Modified-Since", "Sun Nov  6 08:49:37 1994")],
                NotModified,
            ),
            (
                vec![("If-Modified-Since", "Sun Nov  6 08:49:36 1994")],
                Send,
            ),
            // If-None-Match wins over If-Modified-Since (§13.1.3).
            (
                vec![("If-None-Match", "\"x\""), ("If-Modified-Since", lm)],
                Send,
            ),
            (vec![("If-Match", "\"a-1.0\"")], Send),
            (vec![("If-Match", "W/\"a-1.0\"")], Failed),
            (vec![("If-Match", "\"x\"")], Failed),
            (vec![("If-Match", "*")], Send),
            (vec![("If-Unmodified-Since", earlier)], Failed),
            (vec![("If-Unmodified-Since", lm)], Send),
            // If-Match wins over If-Unmodified-Since (§13.1.4).
            (
                vec![("If-Match", "\"a-1.0\""), ("If-Unmodified-Since", earlier)],
                Send,
            ),
        ] {
            assert_eq!(v.evaluate(&headers(&fields)), want, "{fields:?}");
        }
    }
}
