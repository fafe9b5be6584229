//! Typed path and query parameters: `Parts::path_param_as`,
//! `Parts::query_param_as`. `FromStr` only, so no feature is needed; the
//! serde forms (`query_as`, `json`) are in `json.rs`.
//!
//! A value the client sent that does not parse is the client's error: `400`
//! naming the parameter and the value. A path parameter the route does not
//! capture is the handler's: `500`, with the detail logged, not sent.

use crate::handler::Error;
use crate::http::Parts;
use std::fmt;
use std::str::FromStr;

/// How much of a client's value a `400` quotes back: enough to recognise
/// it, never a whole oversized value.
const QUOTE_MAX: usize = 64;

impl Parts {
    /// The path parameter `name` (an `@name` segment of the route), parsed
    /// with [`FromStr`]: `u64`, `i32`, `bool`, `IpAddr`, `String`, or any
    /// type of yours that implements it.
    ///
    /// The value is the percent-decoded segment, as
    /// [`path_param`](Parts::path_param) returns it.
    ///
    /// # Errors
    ///
    /// * `400 Bad Request` (RFC 9110 §15.5.1) when the value does not parse;
    ///   the `text/plain` body names the parameter, quotes the value (at
    ///   most 64 characters of it, escaped) and gives the parser's reason,
    ///   e.g. ``path parameter `id`: "abc" is not valid: invalid digit
    ///   found in string``.
    /// * `500 Internal Server Error` when the route captures no parameter
    ///   `name` (a handler bug, so the client sees no detail; the server's
    ///   logger gets it).
    ///
    /// Returned from a handler with `?`, the error is the answer.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.get("/users/@id", |req: Request| -> Result<(), natron::Error> {
    ///     let id: u64 = req.path_param_as("id")?;
    ///     req.respond(200, (), format!("user {id}"));
    ///     Ok(())
    /// });
    /// let client = TestClient::new(router);
    /// assert_eq!(client.get("/users/7").send().unwrap().text(), "user 7");
    /// let res = client.get("/users/abc").send().unwrap();
    /// assert_eq!(res.status, 400);
    /// assert_eq!(res.text(), "path parameter `id`: \"abc\" is not valid: invalid digit found in string");
    /// ```
    pub fn path_param_as<T>(&self, name: &str) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(value) = self.path_param(name) else {
            return Err(Error::from(NoSuchParam(name.to_owned())));
        };
        value
            .parse()
            .map_err(|e| bad_value("path parameter", name, value, &e))
    }

    /// The first query parameter `name`, parsed with [`FromStr`]; `None`
    /// when the query has no parameter `name`.
    ///
    /// The value is decoded as `application/x-www-form-urlencoded`
    /// (`+` is a space, `%XX` a byte), as
    /// [`query_param`](Parts::query_param) returns it.
    ///
    /// # Errors
    ///
    /// `400 Bad Request` (RFC 9110 §15.5.1) when the value is present and
    /// does not parse; the `text/plain` body names the parameter, quotes
    /// the value (at most 64 characters of it, escaped) and gives the
    /// parser's reason.
    ///
    /// ```
    /// use natron::{test::TestClient, Request};
    ///
    /// fn list(req: Request) -> Result<(), natron::Error> {
    ///     let page: u32 = req.query_param_as("page")?.unwrap_or(1);
    ///     req.respond(200, (), format!("page {page}"));
    ///     Ok(())
    /// }
    /// let client = TestClient::new(list);
    /// assert_eq!(client.get("/items?page=2").send().unwrap().text(), "page 2");
    /// assert_eq!(client.get("/items").send().unwrap().text(), "page 1");
    /// assert_eq!(client.get("/items?page=x").send().unwrap().status, 400);
    /// ```
    pub fn query_param_as<T>(&self, name: &str) -> Result<Option<T>, Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.query_param(name) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|e| bad_value("query parameter", name, value, &e)),
        }
    }
}

/// The `400` for a parameter whose value the client got wrong.
pub(crate) fn bad_value(kind: &str, name: &str, value: &str, why: &dyn fmt::Display) -> Error {
    Error::new(
        400,
        format!("{kind} `{name}`: {} is not valid: {why}", quote(value)),
    )
}

/// `value` as a Rust string literal (controls escaped, so the message
/// stays one printable line), cut at [`QUOTE_MAX`] characters.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// A handler asked for a path parameter its route does not capture.
#[derive(Debug)]
struct NoSuchParam(String);

impl fmt::Display for NoSuchParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the route captures no path parameter `{}` (no `@{}` segment)",
            self.0, self.0
        )
    }
}

impl std::error::Error for NoSuchParam {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_cuts() {
        assert_eq!(quote("a\r\nb"), r#""a\r\nb""#);
        let long = "é".repeat(100);
        let q = quote(&long);
        assert_eq!(q, format!("{:?}...", "é".repeat(QUOTE_MAX)));
    }
}
