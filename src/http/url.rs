//! Percent-decoding of request targets and query strings.

/// Decodes `%XX` escapes; with `plus_is_space`, `+` becomes a space (the
/// `application/x-www-form-urlencoded` rule for query strings). Invalid
/// escapes are kept literally; invalid UTF-8 is replaced with U+FFFD.
/// Never fails: what a client sends always decodes to some string.
///
/// ```
/// use natron::http::url::percent_decode;
///
/// assert_eq!(percent_decode("caf%C3%A9%20au+lait", false), "café au+lait");
/// assert_eq!(percent_decode("caf%C3%A9%20au+lait", true), "café au lait");
/// assert_eq!(percent_decode("100%", false), "100%"); // kept as is
/// assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
/// ```
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let (b'%', Some(&[hi, lo])) = (b, bytes.get(i + 1..i + 3)) {
            if let (Some(hi), Some(lo)) = (hex(hi), hex(lo)) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A request's decoded path: most paths have no `%` escape, and are then
/// a span of the request target rather than a copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Path {
    /// `target[start..end]` is the path as is.
    InTarget { start: usize, end: usize },
    /// The decoded path differs from the target's bytes (escapes, or an
    /// empty path read as `/`).
    Decoded(String),
}

impl Path {
    /// The decoded path, given the target it was split from.
    pub(crate) fn as_str<'a>(&'a self, target: &'a str) -> &'a str {
        match self {
            Path::InTarget { start, end } => &target[*start..*end],
            Path::Decoded(path) => path,
        }
    }
}

/// Splits a request target into its decoded path and decoded query pairs.
/// Duplicate keys are kept in order; a key without `=` has an empty value.
pub(crate) fn split_target(target: &str) -> (Path, Vec<(String, String)>) {
    let (path, query) = split_path(target);
    (path, parse_query(query))
}

/// The path part of a request target (origin-form, or absolute-form
/// `http://host/path?q` reduced to its path), still percent-encoded, and
/// its query (without `?`), if any; a fragment is dropped. Subslices of
/// `target`.
pub(crate) fn raw_path(target: &str) -> (&str, Option<&str>) {
    let rest = match target.find("://") {
        Some(i) if !target.starts_with('/') => {
            let rest = &target[i + 3..];
            match rest.find(['/', '?']) {
                Some(j) => &rest[j..],
                None => "",
            }
        }
        _ => target,
    };
    let rest = rest.split('#').next().unwrap_or("");
    match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    }
}

/// The decoded path of a request target, and its raw query: what routing
/// needs, without decoding the query.
pub(crate) fn split_path(target: &str) -> (Path, &str) {
    let (path, query) = raw_path(target);
    let query = query.unwrap_or("");
    let path = if path.is_empty() {
        Path::Decoded("/".to_owned())
    } else if path.contains('%') {
        Path::Decoded(percent_decode(path, false))
    } else {
        // `path` is a subslice of `target`.
        let start = path.as_ptr() as usize - target.as_ptr() as usize;
        Path::InTarget {
            start,
            end: start + path.len(),
        }
    };
    (path, query)
}

/// Parses `a=1&b=2&a=3` into decoded pairs (as
/// [`percent_decode`] with `plus_is_space`), keeping duplicates in order.
/// A parameter without `=` has an empty value; empty pieces (`a=1&&b=2`)
/// are skipped. This is what [`Parts::query_params`](crate::Parts::query_params)
/// holds.
///
/// ```
/// use natron::http::url::parse_query;
///
/// let pairs = parse_query("q=rust+http&tag=a&tag=b&debug");
/// let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
/// assert_eq!(pairs, [("q", "rust http"), ("tag", "a"), ("tag", "b"), ("debug", "")]);
/// ```
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(pair, true), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_path_and_query() {
        let target = "/a%20b/c?x=1&y=a+b&x=%2F&flag";
        let (p, q) = split_target(target);
        let p = p.as_str(target);
        assert_eq!(p, "/a b/c");
        assert_eq!(
            q,
            vec![
                ("x".into(), "1".into()),
                ("y".into(), "a b".into()),
                ("x".into(), "/".into()),
                ("flag".into(), String::new())
            ]
        );
    }

    #[test]
    fn keeps_bad_escapes_and_handles_absolute_form() {
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("a+b", false), "a+b");
        for (target, path) in [
            ("http://h:1/p?q=1", "/p"),
            ("http://h", "/"),
            ("http://h?q", "/"),
            ("/plain/path?x#frag", "/plain/path"),
            ("/a%2Fb", "/a/b"),
            ("?q", "/"),
        ] {
            assert_eq!(split_target(target).0.as_str(target), path, "{target}");
        }
        assert_eq!(percent_decode("%ff", false), "\u{fffd}");
    }
}
