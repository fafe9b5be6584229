//! Feature `json`: request bodies and query strings read through serde
//! (`Parts::json`, `Parts::query_as`), JSON responses
//! (`Request::respond_json`, `Responder::respond_json`) and JSON errors
//! (`Error::json`).
//!
//! Every failure is an [`Error`] that is the right answer (`400`, `415`,
//! `500`), so `let v: T = req.json()?;` in a handler answers a bad request
//! with no code of the handler's own. The messages come from serde_json and
//! serde_urlencoded, with the field named by serde_path_to_error.

use crate::extract::{bad_value, quote};
use crate::handler::Error;
use crate::http::{Headers, IntoStatus, Parts, Request, Responder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// The media type `json()` accepts and `respond_json` sends (RFC 8259 §11).
const JSON: &str = "application/json";

/// A `400`'s message is cut to about this many bytes: serde_json quotes a
/// bad string value whole, and the client already has it.
const MESSAGE_MAX: usize = 300;

impl Parts {
    /// Deserialises the body, a JSON text (RFC 8259), into `T`.
    ///
    /// The `Content-Type` must be `application/json` or a structured
    /// syntax suffix type `application/*+json` (RFC 6839 §3.1), compared
    /// case-insensitively, parameters allowed (`; charset=utf-8`). JSON is
    /// UTF-8 (RFC 8259 §8.1). The whole body must be one JSON value,
    /// whitespace around it allowed. Nesting deeper than 128 levels is a
    /// `400` (serde_json's recursion limit), so no body can exhaust the
    /// stack; the body's size is bounded by
    /// [`max_body_len`](crate::ServerBuilder::max_body_len).
    ///
    /// # Errors
    ///
    /// Each is an [`Error`] that answers the request when returned from
    /// the handler with `?`; the `text/plain` message says what was wrong:
    ///
    /// * `415 Unsupported Media Type` (RFC 9110 §15.5.16) when the
    ///   `Content-Type` is missing or not JSON, or names a `charset` other
    ///   than UTF-8. A `POST` is answered with `Accept-Post:
    ///   application/json`, a `PATCH` with `Accept-Patch: application/json`
    ///   (RFC 5789 §2.2), saying what would be accepted.
    /// * `415` with `Accept-Encoding: identity` when the body has a
    ///   `Content-Encoding` other than `identity`: natron does not decode
    ///   request bodies (RFC 9110 §15.5.16, §12.5.3).
    /// * `500` when the body is streamed
    ///   ([`Router::stream_body`](crate::Router::stream_body),
    ///   [`ServerBuilder::stream_request_bodies`](crate::ServerBuilder::stream_request_bodies)):
    ///   it was not buffered, so
    ///   there is nothing to parse; read it with [`Parts::body_reader`] and
    ///   parse that (bounding what you keep).
    /// * `400 Bad Request` (RFC 9110 §15.5.1) when the body is empty, is
    ///   not JSON (serde_json's message, with line and column: ``JSON body:
    ///   expected `:` at line 1 column 9``), or does not fit `T` (with the
    ///   field: ``JSON body at `age`: invalid type: string "x", expected u8
    ///   at line 1 column 12``). Out-of-range numbers (`300` for a `u8`,
    ///   `1e400`) are such errors.
    ///
    /// ```
    /// use natron::{Request, Router};
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize)]
    /// struct NewUser {
    ///     name: String,
    ///     age: u8,
    /// }
    ///
    /// let mut router = Router::new();
    /// router.post("/users", |req: Request| -> Result<(), natron::Error> {
    ///     let user: NewUser = req.json()?; // 400 or 415 on bad input
    ///     req.respond(201, (), format!("{} ({})", user.name, user.age));
    ///     Ok(())
    /// });
    ///
    /// let client = natron::test::TestClient::new(router);
    /// let post = |content_type: &str, body: &str| {
    ///     let req = client.post("/users").header("Content-Type", content_type);
    ///     req.body(body).send().unwrap()
    /// };
    /// let res = post("application/json", r#"{"name":"ada","age":36}"#);
    /// assert_eq!((res.status, res.text()), (201, "ada (36)".to_owned()));
    /// let res = post("application/json", r#"{"name":"ada","age":"x"}"#);
    /// assert_eq!(res.status, 400);
    /// assert!(res.text().starts_with("JSON body at `age`: invalid type"), "{}", res.text());
    /// let res = post("text/plain", "ada");
    /// assert_eq!((res.status, res.header("accept-post")), (415, Some("application/json")));
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.check_json_content()?;
        if self.is_body_streamed() {
            // The body is on the socket, not in `body`: "empty" would
            // blame the client for the server's configuration.
            return Err(Error::new(
                500,
                "JSON body: the route streams its request body; read it with body_reader()",
            ));
        }
        if self.body.is_empty() {
            return Err(Error::new(400, "JSON body: empty, expected a JSON value"));
        }
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = if e.path().iter().next().is_some() {
                format!(" at `{}`", e.path())
            } else {
                String::new()
            };
            bad_input(format!("JSON body{at}: {}", e.inner()))
        })?;
        // Trailing bytes after the value (`{} {}`) are a syntax error.
        de.end().map_err(|e| bad_input(format!("JSON body: {e}")))?;
        Ok(value)
    }

    /// Deserialises the query (the part of the target after `?`, decoded
    /// as `application/x-www-form-urlencoded`) into `T`, a struct whose
    /// fields are the parameters: numbers, strings, `bool`s, `Option`s for
    /// parameters that may be absent, `#[serde(default)]` for defaults.
    ///
    /// # Errors
    ///
    /// `400 Bad Request` (RFC 9110 §15.5.1), `text/plain`, when a value
    /// does not fit its field (naming the parameter and quoting the value:
    /// ``query parameter `limit`: "ten" is not valid: invalid digit found
    /// in string``), a required parameter is missing (``query: missing
    /// field `q` ``) or one is repeated (``query: duplicate field `q` ``).
    ///
    /// ```
    /// use natron::Request;
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize)]
    /// struct Search {
    ///     q: String,
    ///     #[serde(default)]
    ///     offset: u32,
    ///     limit: Option<u32>,
    /// }
    ///
    /// fn search(req: Request) -> Result<(), natron::Error> {
    ///     let s: Search = req.query_as()?;
    ///     let limit = s.limit.unwrap_or(20);
    ///     let body = format!("{} from {} ({limit})", s.q, s.offset);
    ///     req.respond(200, (), body);
    ///     Ok(())
    /// }
    ///
    /// let client = natron::test::TestClient::new(search);
    /// let get = |target: &str| client.get(target).send().unwrap();
    /// assert_eq!(get("/search?q=natron&limit=10").text(), "natron from 0 (10)");
    /// assert_eq!(get("/search?q=a+b&offset=5").text(), "a b from 5 (20)");
    /// assert_eq!(get("/search?limit=10").text(), "query: missing field `q`");
    /// assert_eq!(get("/search?q=x&limit=ten").status, 400);
    /// ```
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(
            raw_query(&self.uri).as_bytes(),
        ));
        serde_path_to_error::deserialize(de).map_err(|e| {
            let name = e.path().to_string();
            match self.query_param(&name) {
                Some(value) if e.path().iter().next().is_some() => {
                    bad_value("query parameter", &name, value, e.inner())
                }
                _ => bad_input(format!("query: {}", e.inner())),
            }
        })
    }

    /// `Ok` when the body is declared as JSON that natron can read as it
    /// is; the `415` otherwise.
    fn check_json_content(&self) -> Result<(), Error> {
        if let Some(coding) = self.header("content-encoding") {
            if !coding.trim().eq_ignore_ascii_case("identity") {
                return Err(unsupported(
                    format!(
                        "Content-Encoding {} is not supported: send the JSON uncompressed",
                        quote(coding)
                    ),
                    [("Accept-Encoding", "identity")],
                ));
            }
        }
        let accept = match self.method() {
            "POST" => Some(("Accept-Post", JSON)),
            "PATCH" => Some(("Accept-Patch", JSON)),
            _ => None,
        };
        let why = match self.header("content-type") {
            None => "a JSON body needs Content-Type: application/json".to_owned(),
            Some(ct) => match json_media_type(ct) {
                Ok(()) => return Ok(()),
                Err(why) => why,
            },
        };
        Err(unsupported(why, accept))
    }
}

impl Request {
    /// Answers with `value` serialised as JSON, the compact form,
    /// compressed like any response when the client accepts it. `value` may
    /// be anything that implements [`Serialize`]: a struct, a `Vec`, a
    /// map, a `serde_json::Value`. `status` and `headers` are as for
    /// [`Request::respond`]; `Content-Type: application/json` (RFC 8259
    /// §11) is added unless `headers` has a `Content-Type` of its own
    /// (`application/problem+json`, RFC 9457).
    ///
    /// A value that does not serialise (a map whose keys are not strings
    /// or numbers, a `Serialize` impl that fails) is a handler bug: the
    /// client gets `500` and the server's logger the reason. It never
    /// panics.
    ///
    /// ```
    /// use natron::Request;
    /// use serde::Serialize;
    ///
    /// #[derive(Serialize)]
    /// struct User {
    ///     id: u64,
    ///     name: String,
    /// }
    ///
    /// fn show(req: Request) {
    ///     let user = User { id: 7, name: "ada".into() };
    ///     req.respond_json(200, (), &user);
    /// }
    ///
    /// let res = natron::test::TestClient::new(show).get("/users/7").send().unwrap();
    /// assert_eq!(res.header("content-type"), Some("application/json"));
    /// assert_eq!(res.text(), r#"{"id":7,"name":"ada"}"#);
    /// ```
    ///
    /// With fields: a `201 Created` names the new resource (RFC 9110
    /// §15.3.2).
    ///
    /// ```
    /// # use natron::Request;
    /// fn create(req: Request) {
    ///     let id = 8;
    ///     let location = format!("/users/{id}");
    ///     let user = serde_json::json!({ "id": id, "name": "grace" });
    ///     req.respond_json(201, [("Location", location.as_str())], &user);
    /// }
    ///
    /// let res = natron::test::TestClient::new(create).post("/users").send().unwrap();
    /// assert_eq!(res.status, 201);
    /// assert_eq!(res.header("location"), Some("/users/8"));
    /// assert_eq!(res.header("content-type"), Some("application/json"));
    /// ```
    pub fn respond_json<T: Serialize + ?Sized>(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
        value: &T,
    ) {
        self.responder.respond_json(status, headers, value);
    }
}

impl Responder {
    /// As [`Request::respond_json`].
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|req: natron::Request| {
    /// let (parts, responder) = req.into_parts();
    /// let echo = serde_json::json!({ "path": parts.path() });
    /// responder.respond_json(200, [("Content-Type", "application/problem+json")], &echo);
    /// # });
    /// # let res = client.get("/a%20b").send().unwrap();
    /// assert_eq!(res.text(), r#"{"path":"/a b"}"#); // GET /a%20b
    /// assert_eq!(res.header("content-type"), Some("application/problem+json"));
    /// ```
    pub fn respond_json<T: Serialize + ?Sized>(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
        value: &T,
    ) {
        match serde_json::to_vec(value) {
            Ok(body) => {
                let mut headers = headers.into();
                if !headers.contains("content-type") {
                    headers.append("Content-Type", JSON);
                }
                self.respond(status, headers, body)
            }
            // Through the handler-error path: `500`, logged at error level
            // with the cause, and never a panic.
            Err(e) => self.answer_unanswered(crate::http::request::Unanswered::Failed(
                Error::from(NotSerialisable("respond_json", e)),
            )),
        }
    }
}

impl Error {
    /// An error answered with `status` and `value` serialised as JSON
    /// (`Content-Type: application/json`), for APIs whose errors are
    /// JSON too. A `value` that does not serialise makes it a `500`
    /// without detail, the reason logged, as for
    /// [`Request::respond_json`].
    ///
    /// ```
    /// use natron::{Error, Request};
    /// use serde_json::json;
    ///
    /// fn show(req: Request) -> Result<(), Error> {
    ///     let id: u64 = req.path_param_as("id")?;
    ///     if id != 7 {
    ///         return Err(Error::json(404, &json!({ "error": "no such user", "id": id })));
    ///     }
    ///     req.respond_json(200, (), &json!({ "id": 7, "name": "ada" }));
    ///     Ok(())
    /// }
    ///
    /// let mut router = natron::Router::new();
    /// router.get("/users/@id", show);
    /// let res = natron::test::TestClient::new(router).get("/users/8").send().unwrap();
    /// assert_eq!((res.status, res.header("content-type")), (404, Some("application/json")));
    /// assert_eq!(res.text(), r#"{"error":"no such user","id":8}"#);
    /// ```
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Error {
        match serde_json::to_vec(value) {
            Ok(body) => Error::from(Response::new(status, [("Content-Type", JSON)], body)),
            Err(e) => Error::from(NotSerialisable("Error::json", e)),
        }
    }
}

/// Whether `content_type` (a `Content-Type` field value, RFC 9110 §8.3)
/// is JSON: `application/json` or `application/*+json`, with no charset
/// but UTF-8. `Err` says why not.
fn json_media_type(content_type: &str) -> Result<(), String> {
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or("").trim();
    let is_json = match essence.split_once('/') {
        Some((ty, sub)) => {
            let sub = sub.as_bytes();
            ty.eq_ignore_ascii_case("application")
                && (sub.eq_ignore_ascii_case(b"json")
                    || (sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case(b"+json")))
        }
        None => false,
    };
    if !is_json {
        return Err(format!(
            "Content-Type {} is not JSON: expected application/json",
            quote(content_type)
        ));
    }
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset")
            && !value.eq_ignore_ascii_case("utf-8")
            && !value.eq_ignore_ascii_case("utf8")
        {
            return Err(format!(
                "charset {} is not supported: JSON is UTF-8 (RFC 8259 §8.1)",
                quote(value)
            ));
        }
    }
    Ok(())
}

/// The query of a request target: after the first `?`, before any `#`.
fn raw_query(target: &str) -> &str {
    let target = target.split('#').next().unwrap_or("");
    target.split_once('?').map_or("", |(_, q)| q)
}

/// A `415` with `why` and the fields that say what would be accepted.
fn unsupported(
    why: String,
    fields: impl IntoIterator<Item = (&'static str, &'static str)>,
) -> Error {
    let mut r = Response::new(415, [("Content-Type", "text/plain; charset=utf-8")], why);
    for (name, value) in fields {
        r.headers.append(name, value);
    }
    Error::from(r)
}

/// A `400` with `message`, cut to [`MESSAGE_MAX`] bytes keeping its end
/// (serde_json puts the line and column there).
fn bad_input(message: String) -> Error {
    if message.len() <= MESSAGE_MAX {
        return Error::new(400, message);
    }
    let head_end = floor_char_boundary(&message, MESSAGE_MAX * 2 / 3);
    let tail_start = ceil_char_boundary(&message, message.len() - MESSAGE_MAX / 3);
    Error::new(
        400,
        format!("{}...{}", &message[..head_end], &message[tail_start..]),
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// `respond_json`'s or `Error::json`'s value did not serialise: the cause logged with the
/// `500`.
#[derive(Debug)]
struct NotSerialisable(&'static str, serde_json::Error);

impl fmt::Display for NotSerialisable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: the value does not serialise: {}", self.0, self.1)
    }
}

impl std::error::Error for NotSerialisable {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/problem+json",
            "application/vnd.api+JSON ; x=y",
        ] {
            assert_eq!(json_media_type(ok), Ok(()), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/+json",
            "text/json",
            "json",
            "",
            "application/json; charset=utf-16",
            "application/xml+jsonp",
        ] {
            assert!(json_media_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_queries() {
        assert_eq!(raw_query("/a?x=1&y=2"), "x=1&y=2");
        assert_eq!(raw_query("/a?x=1#frag"), "x=1");
        assert_eq!(raw_query("/a"), "");
        assert_eq!(raw_query("http://h/a?q=%20"), "q=%20");
    }

    #[test]
    fn long_messages_keep_their_end() {
        let m = format!("JSON body: {} at line 1 column 9000", "é".repeat(1000));
        let e = bad_input(m);
        let body = std::str::from_utf8(&e.response().body).unwrap();
        assert!(body.len() <= MESSAGE_MAX + 10, "{}", body.len());
        assert!(body.starts_with("JSON body: é"));
        assert!(body.ends_with("at line 1 column 9000"));
    }
}
