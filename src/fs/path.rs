//! From a request target to a file under a root, refusing every spelling
//! that could name something outside it.
//!
//! The request's decoded path ([`Parts::path`](crate::Parts::path)) loses
//! the difference between `/` and `%2F`, so this works on the raw target:
//! it is split on `/` first and each segment decoded on its own. A segment
//! is refused when, decoded, it is `.` or `..` (RFC 3986 §5.2.4 dot
//! segments, also as `%2e`: RFC 3986 §6.2.2.2 makes them equivalent), it
//! holds a `/` (`%2F`), a `\` (raw or `%5C`, a separator on Windows and to
//! some proxies), a NUL (`%00`, which ends a C string early), or it is
//! empty anywhere but at the end (`//etc/passwd`: an empty first segment
//! would make the rest absolute). What is left is joined to the root one
//! plain name at a time, so no segment can be absolute or climb.

use crate::http::url::percent_decode;

/// Why a target names no file under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A dot segment, an encoded separator, a backslash, a NUL or an
    /// empty segment.
    Unsafe,
    /// The path does not start with the mount prefix.
    OutsidePrefix,
}

pub(crate) use crate::http::url::raw_path;

/// The decoded segments of `raw` (a raw path starting with `/`) after the
/// `prefix` segments, each safe to join to a directory as one plain name;
/// only the last may be empty (a trailing `/`: the directory itself).
pub(crate) fn file_segments(raw: &str, prefix: &[String]) -> Result<Vec<String>, Refused> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(Refused::OutsidePrefix);
    };
    let raw_segments: Vec<&str> = rest.split('/').collect();
    let last = raw_segments.len() - 1;
    let mut segments = Vec::with_capacity(raw_segments.len());
    for (i, raw_segment) in raw_segments.iter().enumerate() {
        let s = percent_decode(raw_segment, false);
        let unsafe_segment =
            s == "." || s == ".." || s.contains(['/', '\\', '\0']) || (s.is_empty() && i != last);
        if unsafe_segment {
            return Err(Refused::Unsafe);
        }
        segments.push(s);
    }
    if segments.len() < prefix.len() || segments[..prefix.len()] != *prefix {
        return Err(Refused::OutsidePrefix);
    }
    segments.drain(..prefix.len());
    Ok(segments)
}

/// Whether a decoded path has a `.` or `..` segment: the router refuses
/// these (see [`crate::router`]'s "Paths").
pub(crate) fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(raw: &str) -> Result<Vec<String>, Refused> {
        file_segments(raw, &["static".to_owned()])
    }

    #[test]
    fn plain_paths_give_their_segments() {
        assert_eq!(segs("/static/a/b.txt").unwrap(), ["a", "b.txt"]);
        assert_eq!(segs("/static/").unwrap(), [""]);
        assert_eq!(segs("/static").unwrap(), Vec::<String>::new());
        assert_eq!(segs("/static/a%20b/").unwrap(), ["a b", ""]);
        assert_eq!(segs("/st%61tic/x").unwrap(), ["x"]);
        assert_eq!(segs("/static/..a/b..").unwrap(), ["..a", "b.."]);
    }

    #[test]
    fn every_traversal_form_is_refused() {
        for raw in [
            "/static/../Cargo.toml",
            "/static/./x",
            "/static/%2e%2e/Cargo.toml",
            "/static/%2E%2e/Cargo.toml",
            "/static/.%2e/x",
            "/static/..%2fCargo.toml",
            "/static/%2f../x",
            "/static/a%2Fb",
            "/static/..\\Cargo.toml",
            "/static/..%5cCargo.toml",
            "/static/a%5Cb",
            "/static/a%00.txt",
            "/static//etc/passwd",
            "/static/a//b",
            "/static/..",
        ] {
            assert_eq!(segs(raw), Err(Refused::Unsafe), "{raw}");
        }
        assert_eq!(
            file_segments("//etc/passwd", &[]),
            Err(Refused::Unsafe),
            "an empty first segment"
        );
        assert_eq!(segs("/other/x"), Err(Refused::OutsidePrefix));
        assert_eq!(segs("*"), Err(Refused::OutsidePrefix));
    }

    #[test]
    fn raw_path_keeps_escapes_and_drops_query_and_authority() {
        assert_eq!(raw_path("/a%2Fb?x=1#f"), ("/a%2Fb", Some("x=1")));
        assert_eq!(raw_path("http://h/a/..%2f"), ("/a/..%2f", None));
        assert_eq!(raw_path("http://h"), ("", None));
    }

    #[test]
    fn dot_segments_in_decoded_paths() {
        assert!(has_dot_segment("/static/../x"));
        assert!(has_dot_segment("/a/."));
        assert!(!has_dot_segment("/a/..b/.c"));
    }
}
