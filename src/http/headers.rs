//! HTTP header lists: ordered, multi-valued, case-insensitive names.

use std::borrow::Cow;
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
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Names of fields parsed from a request are borrowed from a table of
    /// common names when they match one (no allocation per field name).
    fields: Vec<(Cow<'static, str>, String)>,
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Headers { fields: Vec::new() }
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether any value of `name`, read as a comma-separated list, holds
    /// `token` (case-insensitive), e.g. `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Appends a field, keeping any existing ones of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push((Cow::Owned(name.into()), value.into()));
    }

    /// Replaces every field of `name` with one field.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove(&name);
        self.fields.push((Cow::Owned(name), value.into()));
    }

    /// Removes every field of `name`.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl Headers {
    /// Appends a field parsed from a request: a common name is borrowed
    /// from [`COMMON_NAMES`] rather than allocated.
    pub(crate) fn append_parsed(&mut self, name: &str, value: String) {
        let name = match COMMON_NAMES.iter().find(|n| **n == name) {
            Some(n) => Cow::Borrowed(*n),
            None => Cow::Owned(name.to_owned()),
        };
        self.fields.push((name, value));
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Headers {
            fields: iter
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into()), v.into()))
                .collect(),
        }
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for Headers {
    fn from(fields: [(K, V); N]) -> Self {
        fields.into_iter().collect()
    }
}

impl<K: Into<String>, V: Into<String>> From<Vec<(K, V)>> for Headers {
    fn from(fields: Vec<(K, V)>) -> Self {
        fields.into_iter().collect()
    }
}

impl From<()> for Headers {
    fn from(_: ()) -> Self {
        Headers::new()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Cow<'static, str>, String)>,
        fn(&'a (Cow<'static, str>, String)) -> (&'a str, &'a str),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.fields.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }
}
