//! HTTP header lists: ordered, multi-valued, case-insensitive names.

use std::fmt;

/// Field names common in requests, spelled as clients send them.
const COMMON_NAMES: &[&str] = &[
    "Host",
    "host",
    "User-Agent",
    "user-agent",
    "Accept",
    "accept",
    "Accept-Encoding",
    "accept-encoding",
    "Accept-Language",
    "accept-language",
    "Connection",
    "connection",
    "Content-Length",
    "content-length",
    "Content-Type",
    "content-type",
    "Cookie",
    "cookie",
    "Origin",
    "origin",
    "Referer",
    "referer",
    "Cache-Control",
    "cache-control",
    "Upgrade",
    "upgrade",
    "Sec-WebSocket-Key",
    "sec-websocket-key",
    "Sec-WebSocket-Version",
    "sec-websocket-version",
    "Sec-WebSocket-Protocol",
    "sec-websocket-protocol",
    "Sec-WebSocket-Extensions",
    "sec-websocket-extensions",
    "Authorization",
    "authorization",
    "Transfer-Encoding",
    "transfer-encoding",
    "Expect",
    "expect",
    "Pragma",
    "pragma",
];

/// An ordered list of header fields.
///
/// Names compare case-insensitively; a name may appear more than once and
/// every value is kept, in the order received (RFC 9110 §5.3).
///
/// Every name and value lives in one string buffer, and each field is a
/// pair of spans into it; names parsed from a request that match a common
/// name borrow a static string instead. Parsing a request's head therefore
/// costs two allocations however many fields it has (see
/// `benches/allocs.rs`).
///
/// ```
/// use natron::Headers;
///
/// let mut h = Headers::from([("Content-Type", "text/plain"), ("Vary", "Accept")]);
/// h.append("vary", "Origin");
/// assert_eq!(h.get("VARY"), Some("Accept"));
/// assert_eq!(h.get_all("vary").collect::<Vec<_>>(), ["Accept", "Origin"]);
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    /// Names and values, back to back. Removed fields leave their bytes
    /// here until the list is dropped (they are few and short-lived).
    buf: String,
    fields: Vec<Field>,
}

/// One field: its name and its value as spans of `Headers::buf`.
#[derive(Clone, Copy)]
struct Field {
    name: Name,
    value: Span,
}

#[derive(Clone, Copy)]
enum Name {
    /// A common name, from [`COMMON_NAMES`].
    Static(&'static str),
    /// Any other name, in `buf`.
    InBuf(Span),
}

/// A byte range of `Headers::buf`. `u32`: a head is at most
/// `max_headers_len`, and a response's fields are far below 4 GiB.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Headers {
    /// An empty list (allocates nothing until a field is added).
    ///
    /// ```
    /// let mut h = natron::Headers::new();
    /// assert!(h.is_empty());
    /// h.append("Cache-Control", "no-store");
    /// assert_eq!(h.len(), 1);
    /// ```
    pub fn new() -> Self {
        Headers {
            buf: String::new(),
            fields: Vec::new(),
        }
    }

    /// An empty list with room for `fields` fields holding `bytes` bytes of
    /// names and values, so that filling it allocates nothing more.
    pub(crate) fn with_capacity(fields: usize, bytes: usize) -> Self {
        Headers {
            buf: String::with_capacity(bytes),
            fields: Vec::with_capacity(fields),
        }
    }

    fn span(&self, span: Span) -> &str {
        &self.buf[span.start as usize..span.end as usize]
    }

    fn name_of(&self, field: &Field) -> &str {
        match field.name {
            Name::Static(name) => name,
            Name::InBuf(span) => self.span(span),
        }
    }

    fn field(&self, field: &Field) -> (&str, &str) {
        (self.name_of(field), self.span(field.value))
    }

    fn push_str(&mut self, s: &str) -> Span {
        let start = self.buf.len();
        self.buf.push_str(s);
        let end = self.buf.len();
        Span {
            start: u32::try_from(start).expect("header fields over 4 GiB"),
            end: u32::try_from(end).expect("header fields over 4 GiB"),
        }
    }

    fn push_field(&mut self, name: Name, value: &str) {
        let value = self.push_str(value);
        self.fields.push(Field { name, value });
    }

    fn push_named(&mut self, name: &str, value: &str) {
        let name = Name::InBuf(self.push_str(name));
        self.push_field(name, value);
    }

    /// The first value of `name` (compared case-insensitively), if any.
    ///
    /// ```
    /// let h = natron::Headers::from([("Accept", "text/html"), ("accept", "*/*")]);
    /// assert_eq!(h.get("ACCEPT"), Some("text/html"));
    /// assert_eq!(h.get("cookie"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of `name` (compared case-insensitively), in order:
    /// one per field, not split at commas (see [`Headers::has_token`]).
    ///
    /// ```
    /// let h = natron::Headers::from([("Set-Cookie", "a=1"), ("X", "y"), ("set-cookie", "b=2")]);
    /// assert_eq!(h.get_all("set-cookie").collect::<Vec<_>>(), ["a=1", "b=2"]);
    /// ```
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether `name` is present (compared case-insensitively), even with
    /// an empty value.
    ///
    /// ```
    /// let h = natron::Headers::from([("ETag", "\"v1\"")]);
    /// assert!(h.contains("etag"));
    /// assert!(!h.contains("last-modified"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether any value of `name`, read as a comma-separated list, holds
    /// `token` (case-insensitive), e.g. `Connection: keep-alive, Upgrade`
    /// (RFC 9110 §5.6.1). Elements are trimmed of spaces; a quoted comma
    /// is not told apart from a separator, so this suits token lists
    /// (`Connection`, `Vary`, `Accept-Encoding` without parameters), not
    /// values with quoted strings.
    ///
    /// ```
    /// let h = natron::Headers::from([("Connection", "keep-alive, Upgrade")]);
    /// assert!(h.has_token("connection", "upgrade"));
    /// assert!(!h.has_token("connection", "close"));
    /// ```
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Checks that every field may be sent as it is: each name is a
    /// non-empty token (RFC 9110 §5.1) and no value holds a control
    /// character but HTAB (§5.5), so none can split the response (CR, LF)
    /// or cut it (NUL).
    ///
    /// # Errors
    ///
    /// A message naming the first bad field.
    pub(crate) fn check_fields(&self) -> Result<(), String> {
        for (name, value) in self.iter() {
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(format!(
                    "invalid header name {name:?} (RFC 9110 §5.1: a token)"
                ));
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(format!(
                    "invalid value of header {name}: {value:?} (RFC 9110 §5.5: no CR, LF, NUL or other controls)"
                ));
            }
        }
        Ok(())
    }

    /// Appends a field, keeping any existing ones of the same name (for
    /// fields that may repeat: `Set-Cookie`, `Vary`, `Link`). Names and
    /// values are not checked here: a response with an invalid one is
    /// answered `500` instead (see [`Responder::respond`](crate::Responder::respond)).
    ///
    /// # Panics
    ///
    /// If the list's names and values would pass 4 GiB in all.
    ///
    /// ```
    /// let mut h = natron::Headers::new();
    /// h.append("Set-Cookie", "a=1");
    /// h.append("Set-Cookie", "b=2");
    /// assert_eq!(h.get_all("set-cookie").count(), 2);
    /// ```
    pub fn append(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        self.push_named(name.as_ref(), value.as_ref());
    }

    /// Replaces every field of `name` with one field, appended at the
    /// end.
    ///
    /// # Panics
    ///
    /// If the list's names and values would pass 4 GiB in all.
    ///
    /// ```
    /// let mut h = natron::Headers::from([("Cache-Control", "no-cache"), ("cache-control", "private")]);
    /// h.set("Cache-Control", "max-age=60");
    /// assert_eq!(h.get_all("cache-control").collect::<Vec<_>>(), ["max-age=60"]);
    /// ```
    pub fn set(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let name = name.as_ref();
        self.remove(name);
        self.push_named(name, value.as_ref());
    }

    /// Removes every field of `name` (compared case-insensitively); does
    /// nothing if there is none.
    ///
    /// ```
    /// let mut h = natron::Headers::from([("X-Debug", "1"), ("Accept", "*/*"), ("x-debug", "2")]);
    /// h.remove("X-DEBUG");
    /// assert_eq!(h, natron::Headers::from([("Accept", "*/*")]));
    /// ```
    pub fn remove(&mut self, name: &str) {
        let mut fields = std::mem::take(&mut self.fields);
        fields.retain(|f| !self.name_of(f).eq_ignore_ascii_case(name));
        self.fields = fields;
        self.compact_if_sparse();
    }

    /// Copies the live names and values into a buffer of their size, for
    /// a list kept long (a WebSocket's upgrade request).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.compact(0);
        self.buf.shrink_to_fit();
        self.fields.shrink_to_fit();
    }

    /// Copies the live names and values into a fresh buffer once removed
    /// fields' bytes are most of it, so a list that is `set` again and
    /// again stays the size of what it holds.
    fn compact_if_sparse(&mut self) {
        self.compact(256);
    }

    /// Compacts when the buffer holds more than twice the live bytes plus
    /// `slack`.
    fn compact(&mut self, slack: usize) {
        let span_len = |s: Span| (s.end - s.start) as usize;
        let live: usize = self
            .fields
            .iter()
            .map(|f| {
                span_len(f.value)
                    + match f.name {
                        Name::InBuf(n) => span_len(n),
                        Name::Static(_) => 0,
                    }
            })
            .sum();
        if self.buf.len() <= 2 * live + slack && (slack > 0 || self.buf.len() == live) {
            return;
        }
        let old = std::mem::replace(&mut self.buf, String::with_capacity(live));
        let fields = std::mem::take(&mut self.fields);
        self.fields.reserve(fields.len());
        for f in fields {
            let copy = |s: Span| &old[s.start as usize..s.end as usize];
            let name = match f.name {
                Name::InBuf(n) => Name::InBuf(self.push_str(copy(n))),
                name => name,
            };
            let value = self.push_str(copy(f.value));
            self.fields.push(Field { name, value });
        }
    }

    /// Fields in order, as `(name, value)`, names spelled as given.
    ///
    /// ```
    /// let h = natron::Headers::from([("Host", "a"), ("X-Id", "7")]);
    /// let lines: Vec<String> = h.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    /// assert_eq!(lines, ["Host: a", "X-Id: 7"]);
    /// ```
    pub fn iter(&self) -> HeadersIter<'_> {
        HeadersIter {
            headers: self,
            fields: self.fields.iter(),
        }
    }

    /// Number of fields (a repeated name counts once per field).
    ///
    /// ```
    /// let h = natron::Headers::from([("Vary", "Accept"), ("vary", "Origin")]);
    /// assert_eq!(h.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    ///
    /// ```
    /// assert!(natron::Headers::from(()).is_empty());
    /// assert!(!natron::Headers::from([("A", "1")]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl Headers {
    /// Appends a field parsed from a request: a common name is borrowed
    /// from [`COMMON_NAMES`] rather than copied.
    pub(crate) fn append_parsed(&mut self, name: &str, value: &str) {
        match COMMON_NAMES.iter().find(|n| **n == name) {
            Some(n) => self.push_field(Name::Static(n), value),
            None => self.push_named(name, value),
        }
    }
}

/// The fields of a [`Headers`], in order, as `(name, value)`.
#[derive(Clone)]
pub struct HeadersIter<'a> {
    headers: &'a Headers,
    fields: std::slice::Iter<'a, Field>,
}

impl<'a> Iterator for HeadersIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        let headers = self.headers;
        self.fields.next().map(|f| headers.field(f))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl DoubleEndedIterator for HeadersIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let headers = self.headers;
        self.fields.next_back().map(|f| headers.field(f))
    }
}

impl ExactSizeIterator for HeadersIter<'_> {}

impl PartialEq for Headers {
    /// Equal when they hold the same fields in the same order (names as
    /// spelled; the buffers' layouts do not matter).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut headers = Headers::with_capacity(iter.size_hint().0, 0);
        for (k, v) in iter {
            headers.append(k, v);
        }
        headers
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for Headers {
    fn from(fields: [(K, V); N]) -> Self {
        let bytes = fields
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
            .sum();
        let mut headers = Headers::with_capacity(N, bytes);
        for (k, v) in fields {
            headers.append(k, v);
        }
        headers
    }
}

impl<K: AsRef<str>, V: AsRef<str>> From<Vec<(K, V)>> for Headers {
    fn from(fields: Vec<(K, V)>) -> Self {
        fields.into_iter().collect()
    }
}

/// A `tchar` of RFC 9110 §5.6.2: what a field name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `http` crate's map, fields in its iteration order. A value that is
/// not UTF-8 (`obs-text` a peer sent) is carried with its invalid bytes
/// replaced by U+FFFD; values built with `HeaderValue::from_static` or
/// `from_str` are always UTF-8.
impl From<&::http::HeaderMap> for Headers {
    fn from(map: &::http::HeaderMap) -> Self {
        let mut headers = Headers::with_capacity(map.len(), 0);
        for (name, value) in map {
            headers.append(name, String::from_utf8_lossy(value.as_bytes()));
        }
        headers
    }
}

impl From<::http::HeaderMap> for Headers {
    fn from(map: ::http::HeaderMap) -> Self {
        Headers::from(&map)
    }
}

impl From<()> for Headers {
    fn from(_: ()) -> Self {
        Headers::new()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> HeadersIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_order_and_compare_case_insensitively() {
        let mut h = Headers::from([("Content-Type", "text/plain"), ("X-A", "1")]);
        h.append("x-a", "2");
        h.append_parsed("host", "example.com");
        h.append_parsed("X-Custom", "v");
        assert_eq!(h.get("X-A"), Some("1"));
        assert_eq!(h.get_all("x-a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(h.get("HOST"), Some("example.com"));
        assert_eq!(h.get("x-custom"), Some("v"));
        assert_eq!(h.len(), 5);
        h.set("X-A", "3");
        assert_eq!(h.get_all("x-a").collect::<Vec<_>>(), ["3"]);
        h.remove("content-type");
        assert!(!h.contains("Content-Type"));
        let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["host", "X-Custom", "X-A"]);
        assert_eq!(h.iter().next_back(), Some(("X-A", "3")));
    }

    #[test]
    fn equality_ignores_buffer_layout() {
        let mut a = Headers::new();
        a.append("Gone", "x");
        a.append("A", "1");
        a.remove("gone");
        let b = Headers::from([("A", "1")]);
        assert_eq!(a, b);
        assert_ne!(a, Headers::from([("a", "1")]));
        assert!(Headers::from(()).is_empty());
    }

    #[test]
    fn setting_again_and_again_does_not_grow_the_buffer() {
        let mut h = Headers::from([("Content-Type", "text/plain"), ("X-Keep", "k")]);
        for i in 0..100_000 {
            h.set("X-Counter", i.to_string());
        }
        assert!(h.buf.len() < 1024, "{} bytes kept", h.buf.len());
        assert_eq!(h.get("x-counter"), Some("99999"));
        assert_eq!(h.get("content-type"), Some("text/plain"));
        let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Content-Type", "X-Keep", "X-Counter"]);
    }

    #[test]
    fn parsed_heads_take_two_allocations_at_most() {
        let mut h = Headers::with_capacity(3, 64);
        let (buf, fields) = (h.buf.as_ptr(), h.fields.as_ptr());
        h.append_parsed("Host", "a");
        h.append_parsed("Accept", "*/*");
        h.append_parsed("X-Odd", "v");
        assert_eq!((h.buf.as_ptr(), h.fields.as_ptr()), (buf, fields));
    }
}
