//! `multipart/form-data` request bodies (RFC 7578), decoded in one pass
//! over a complete, in-memory body.
//!
//! # Contract
//!
//! [`parse`] takes the request's `Content-Type` value and its whole body and
//! returns every part in order, or a [`MultipartError`] that says what is
//! wrong. It never panics, whatever the input, and runs in time linear in
//! the body's length (`memchr::memmem`, worst-case linear, finds the
//! delimiters; delimiter matches cannot overlap, since a boundary holds no
//! CR or LF; header parsing never looks past the header limit).
//!
//! * The media type must be `multipart/form-data` and carry exactly one
//!   `boundary` parameter (names and media type case-insensitive; value a
//!   token or a quoted string) of 1..=70 RFC 2046 `bchars`, not ending in a
//!   space.
//! * Body syntax is RFC 2046 §5.1: an optional preamble, `--boundary` lines
//!   between parts, and a closing `--boundary--`; the preamble and the
//!   epilogue after the close delimiter are ignored. Transport padding
//!   (spaces and tabs) may follow a boundary on its line.
//! * A delimiter is only recognised as `CRLF--boundary` followed by padding
//!   and CRLF, or by `--`, padding and CRLF or the end of the body (the
//!   first one may instead start the body). Any other occurrence of
//!   `--boundary` (not after CRLF, or followed by other bytes) is part
//!   content, because the grammar leaves no other reading of it.
//! * Line endings must be CRLF. Bare LF is rejected (typically as
//!   [`MultipartError::MissingFirstBoundary`] or
//!   [`MultipartError::UnterminatedPart`]): every browser and HTTP client
//!   sends CRLF, and accepting LF as well would make a part ending in
//!   `\n--boundary` split differently here than in a strict parser (a proxy
//!   or WAF inspecting the same body), which is how smuggling starts.
//! * A body holding only the close delimiter is an empty form, `Ok(vec![])`.
//!   RFC 2046 asks for at least one part, but that is what browsers send for
//!   a form with no fields, so rejecting it would only break real clients.
//! * Part headers are `Name: value` lines (names are RFC 9110 tokens and
//!   compare case-insensitively; values lose surrounding spaces and tabs
//!   and may not hold control characters other than tab). Obsolete line
//!   folding is rejected. Non-UTF-8 bytes in values become U+FFFD, as in
//!   [`crate::http::url::percent_decode`].
//! * Each part needs exactly one `Content-Disposition: form-data` header
//!   with a `name` parameter. `filename` is returned as sent, with only
//!   quoted-string backslash escapes undone: browsers write `"` as `%22`
//!   but leave `%` itself alone, so percent-decoding it would corrupt
//!   names that contain `%`. A `filename*=UTF-8''...` (RFC 5987/8187;
//!   `ISO-8859-1` also accepted) is preferred over `filename` when both are
//!   present. Repeated `name`/`filename`/`filename*` parameters, or a
//!   repeated `Content-Disposition`/`Content-Type` header, are errors:
//!   parsers that pick different copies disagree about what was sent.
//! * **`filename` is untrusted input**: it may be empty, contain `/`, `\`
//!   or `..`, or be a full client-side path. Never use it as a path as-is.
//! * A part's `Content-Type` is `None` when absent (RFC 7578 §4.4 says to
//!   read that as `text/plain`). `Content-Transfer-Encoding` is not applied
//!   (RFC 7578 §4.7 deprecates it); bodies are returned byte for byte.
//!
//! Why this is not `multer` (what axum uses): `tools/multipart-vs-multer`
//! compares the two case by case.
//!
//! # Limits
//!
//! Hostile input is bounded by [`Limits`] (defaults: [`MAX_PARTS`] = 1000
//! parts, [`MAX_HEADER_BYTES`] = 8 KiB per part's header section, counting
//! the header lines, their CRLFs and the blank line; there is no separate
//! cap on how many headers), and by the 70-byte boundary. Parsing stops at
//! the first limit exceeded. The overall body size is the server's
//! request-body limit; parts are copied out of the body, so peak memory is
//! about twice the body.

use memchr::memmem;
use std::fmt;

/// Default cap on the number of parts in one body.
pub const MAX_PARTS: usize = 1000;

/// Default cap on one part's header section, in bytes (header lines with
/// their CRLFs, plus the blank line that ends the section).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
const MAX_BOUNDARY_LEN: usize = 70;

/// Caps applied while parsing; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most parts accepted; one more is [`MultipartError::TooManyParts`].
    pub max_parts: usize,
    /// Largest header section accepted per part, in bytes; more is
    /// [`MultipartError::PartHeadersTooLarge`].
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parts: MAX_PARTS,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Part {
    /// The `name` parameter of `Content-Disposition` (the form field name).
    pub name: String,
    /// The file name, from `filename*` if present, else `filename`; `None`
    /// for a plain field. Untrusted: see the module documentation.
    pub filename: Option<String>,
    /// The part's `Content-Type` value, if it has one.
    pub content_type: Option<String>,
    /// Every header of the part, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The part's content, byte for byte.
    pub body: Vec<u8>,
}

impl Part {
    /// The value of header `name` (case-insensitive), if present.
    ///
    /// ```
    /// use natron::http::multipart::parse;
    ///
    /// let body = b"--X\r\n\
    ///     Content-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\
    ///     Content-Type: text/plain\r\n\
    ///     \r\n\
    ///     hello\r\n\
    ///     --X--\r\n";
    /// let parts = parse("multipart/form-data; boundary=X", body).unwrap();
    /// assert_eq!(parts[0].header("content-type"), Some("text/plain"));
    /// assert_eq!(parts[0].header("Content-Disposition"), Some("form-data; name=\"doc\"; filename=\"a.txt\""));
    /// assert_eq!(parts[0].header("Content-Length"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the part is a file upload (it has a file name).
    ///
    /// ```
    /// use natron::http::multipart::Part;
    ///
    /// let file = Part { name: "f".into(), filename: Some("a.txt".into()), ..Part::default() };
    /// assert!(file.is_file());
    /// // An empty file name (a file input left empty) is still a file part.
    /// assert!(Part { filename: Some(String::new()), ..file }.is_file());
    /// assert!(!Part { name: "title".into(), ..Part::default() }.is_file());
    /// ```
    pub fn is_file(&self) -> bool {
        self.filename.is_some()
    }

    /// The body as UTF-8 text, or `None` if it is not valid UTF-8.
    ///
    /// ```
    /// use natron::http::multipart::Part;
    ///
    /// let part = Part { body: b"caf\xc3\xa9".to_vec(), ..Part::default() };
    /// assert_eq!(part.text(), Some("café"));
    /// let jpeg = Part { body: vec![0xff, 0xd8], ..Part::default() };
    /// assert_eq!(jpeg.text(), None);
    /// ```
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

/// A decoded form: the parts of a body, with lookups by field name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multipart {
    parts: Vec<Part>,
}

impl Multipart {
    /// [`parse`], wrapped. A handler calls it with the request's
    /// `Content-Type` and body (or calls
    /// [`Parts::multipart`](crate::Parts::multipart), which does).
    ///
    /// ```
    /// use natron::http::multipart::{Multipart, MultipartError};
    /// use natron::{test::TestClient, Request};
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     let content_type = req.header("content-type").unwrap_or("");
    ///     match Multipart::parse(content_type, req.body()) {
    ///         Ok(form) => {
    ///             let title = form.text("title").unwrap_or("untitled").to_owned();
    ///             req.respond(200, (), title)
    ///         }
    ///         Err(e) => req.respond(400, (), e.to_string()),
    ///     }
    /// });
    /// let body = "--X\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHoliday\r\n--X--\r\n";
    /// let res = client.post("/").header("Content-Type", "multipart/form-data; boundary=X");
    /// assert_eq!(res.body(body).send().unwrap().text(), "Holiday");
    ///
    /// let err = Multipart::parse("application/json", b"{}").unwrap_err();
    /// assert_eq!(err, MultipartError::NotMultipart);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`parse`].
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Multipart, MultipartError> {
        parse(content_type, body).map(|parts| Multipart { parts })
    }

    /// [`parse_with_limits`], wrapped.
    ///
    /// ```
    /// use natron::http::multipart::{Limits, Multipart, MultipartError};
    ///
    /// let body = b"--X\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n\
    ///              --X\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--X--\r\n";
    /// let one = Limits { max_parts: 1, ..Limits::default() };
    /// let err = Multipart::parse_with_limits("multipart/form-data; boundary=X", body, &one);
    /// assert_eq!(err, Err(MultipartError::TooManyParts { limit: 1 }));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`parse_with_limits`].
    pub fn parse_with_limits(
        content_type: &str,
        body: &[u8],
        limits: &Limits,
    ) -> Result<Multipart, MultipartError> {
        parse_with_limits(content_type, body, limits).map(|parts| Multipart { parts })
    }

    /// The first part named `name`.
    ///
    /// ```
    /// use natron::http::multipart::Multipart;
    /// # let body = b"--X\r\n\
    /// # Content-Disposition: form-data; name=\"title\"\r\n\r\n\
    /// # Holiday\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
    /// # Content-Type: image/jpeg\r\n\r\n\
    /// # \xff\xd8\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"sea.jpg\"\r\n\r\n\
    /// # \xff\xd9\r\n\
    /// # --X--\r\n";
    /// let form = Multipart::parse("multipart/form-data; boundary=X", body).unwrap();
    /// let photo = form.get("photo").unwrap();
    /// assert_eq!(photo.filename.as_deref(), Some("beach.jpg"));
    /// assert_eq!(photo.content_type.as_deref(), Some("image/jpeg"));
    /// assert!(form.get("caption").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// Every part named `name`, in order (a field may repeat, e.g. a
    /// multi-file input).
    ///
    /// ```
    /// use natron::http::multipart::Multipart;
    /// # let body = b"--X\r\n\
    /// # Content-Disposition: form-data; name=\"title\"\r\n\r\n\
    /// # Holiday\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
    /// # Content-Type: image/jpeg\r\n\r\n\
    /// # \xff\xd8\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"sea.jpg\"\r\n\r\n\
    /// # \xff\xd9\r\n\
    /// # --X--\r\n";
    /// let form = Multipart::parse("multipart/form-data; boundary=X", body).unwrap();
    /// let names: Vec<_> = form.get_all("photo").filter_map(|p| p.filename.as_deref()).collect();
    /// assert_eq!(names, ["beach.jpg", "sea.jpg"]);
    /// assert_eq!(form.get_all("caption").count(), 0);
    /// ```
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Part> + 'a {
        self.parts.iter().filter(move |p| p.name == name)
    }

    /// The body of the first part named `name`, as UTF-8 text; `None` if
    /// there is no such part or it is not UTF-8.
    ///
    /// ```
    /// use natron::http::multipart::Multipart;
    /// # let body = b"--X\r\n\
    /// # Content-Disposition: form-data; name=\"title\"\r\n\r\n\
    /// # Holiday\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
    /// # Content-Type: image/jpeg\r\n\r\n\
    /// # \xff\xd8\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"sea.jpg\"\r\n\r\n\
    /// # \xff\xd9\r\n\
    /// # --X--\r\n";
    /// let form = Multipart::parse("multipart/form-data; boundary=X", body).unwrap();
    /// assert_eq!(form.text("title"), Some("Holiday"));
    /// assert_eq!(form.text("photo"), None); // JPEG bytes are not UTF-8
    /// assert_eq!(form.text("caption"), None);
    /// ```
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Part::text)
    }

    /// All parts, in order.
    ///
    /// ```
    /// use natron::http::multipart::Multipart;
    /// # let body = b"--X\r\n\
    /// # Content-Disposition: form-data; name=\"title\"\r\n\r\n\
    /// # Holiday\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
    /// # Content-Type: image/jpeg\r\n\r\n\
    /// # \xff\xd8\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"sea.jpg\"\r\n\r\n\
    /// # \xff\xd9\r\n\
    /// # --X--\r\n";
    /// let form = Multipart::parse("multipart/form-data; boundary=X", body).unwrap();
    /// let names: Vec<&str> = form.parts().iter().map(|p| p.name.as_str()).collect();
    /// assert_eq!(names, ["title", "photo", "photo"]);
    /// ```
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// All parts, in order, by value.
    ///
    /// ```
    /// use natron::http::multipart::Multipart;
    /// # let body = b"--X\r\n\
    /// # Content-Disposition: form-data; name=\"title\"\r\n\r\n\
    /// # Holiday\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
    /// # Content-Type: image/jpeg\r\n\r\n\
    /// # \xff\xd8\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"sea.jpg\"\r\n\r\n\
    /// # \xff\xd9\r\n\
    /// # --X--\r\n";
    /// let form = Multipart::parse("multipart/form-data; boundary=X", body).unwrap();
    /// let files: Vec<Vec<u8>> = form.into_parts().into_iter().filter(|p| p.is_file()).map(|p| p.body).collect();
    /// assert_eq!(files, [b"\xff\xd8", b"\xff\xd9"]);
    /// ```
    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }

    /// The number of parts.
    ///
    /// ```
    /// use natron::http::multipart::Multipart;
    /// # let body = b"--X\r\n\
    /// # Content-Disposition: form-data; name=\"title\"\r\n\r\n\
    /// # Holiday\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
    /// # Content-Type: image/jpeg\r\n\r\n\
    /// # \xff\xd8\r\n\
    /// # --X\r\n\
    /// # Content-Disposition: form-data; name=\"photo\"; filename=\"sea.jpg\"\r\n\r\n\
    /// # \xff\xd9\r\n\
    /// # --X--\r\n";
    /// let form = Multipart::parse("multipart/form-data; boundary=X", body).unwrap();
    /// assert_eq!(form.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether the form has no parts.
    ///
    /// ```
    /// use natron::http::multipart::Multipart;
    ///
    /// // What a browser sends for a form without fields.
    /// let form = Multipart::parse("multipart/form-data; boundary=X", b"--X--\r\n").unwrap();
    /// assert!(form.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Why a body could not be decoded. `part` fields are zero-based indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    /// The media type is not `multipart/form-data`.
    NotMultipart,
    /// The `Content-Type` has no `boundary` parameter.
    MissingBoundary,
    /// The `boundary` parameter is unusable; `reason` says how.
    InvalidBoundary {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The body never contains the opening `--boundary` line.
    MissingFirstBoundary,
    /// Part `part` is not followed by a delimiter: the body is truncated or
    /// lacks the closing `--boundary--`.
    UnterminatedPart {
        /// Index of the unterminated part.
        part: usize,
    },
    /// A header section is not a list of `Name: value` lines.
    MalformedPartHeaders {
        /// Index of the part.
        part: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `Content-Disposition` header is not `form-data` with well-formed,
    /// unrepeated parameters.
    MalformedContentDisposition {
        /// Index of the part.
        part: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A part has no `Content-Disposition` header.
    MissingContentDisposition {
        /// Index of the part.
        part: usize,
    },
    /// A part's `Content-Disposition` has no `name` parameter.
    MissingName {
        /// Index of the part.
        part: usize,
    },
    /// The body has more than `limit` parts.
    TooManyParts {
        /// The limit in force.
        limit: usize,
    },
    /// A part's header section is longer than `limit` bytes.
    PartHeadersTooLarge {
        /// Index of the part.
        part: usize,
        /// The limit in force, in bytes.
        limit: usize,
    },
    /// [`Parts::multipart`](crate::Parts::multipart) on a route that
    /// streams its request body: the body is on the socket, not buffered.
    /// A server configuration matter, not the client's: read the body with
    /// [`Parts::body_reader`](crate::Parts::body_reader), or let the route
    /// buffer it.
    BodyStreamed,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MultipartError::*;
        match self {
            NotMultipart => f.write_str("Content-Type is not multipart/form-data"),
            BodyStreamed => f.write_str(
                "the route streams its request body; multipart() parses buffered bodies only \
                 (read it with body_reader())",
            ),
            MissingBoundary => {
                f.write_str("multipart/form-data Content-Type has no boundary parameter")
            }
            InvalidBoundary { reason } => write!(f, "invalid multipart boundary: {reason}"),
            MissingFirstBoundary => f.write_str(
                "multipart body does not contain the opening boundary line \
                 (`--` boundary CRLF)",
            ),
            UnterminatedPart { part } => write!(
                f,
                "multipart part at index {part} is not followed by a boundary delimiter \
                 (body truncated, or no closing `--boundary--`)"
            ),
            MalformedPartHeaders { part, reason } => write!(
                f,
                "malformed headers in multipart part at index {part}: {reason}"
            ),
            MalformedContentDisposition { part, reason } => write!(
                f,
                "malformed Content-Disposition in multipart part at index {part}: {reason}"
            ),
            MissingContentDisposition { part } => write!(
                f,
                "multipart part at index {part} has no Content-Disposition header"
            ),
            MissingName { part } => write!(
                f,
                "Content-Disposition of multipart part at index {part} has no name parameter"
            ),
            TooManyParts { limit } => write!(f, "multipart body has more than {limit} parts"),
            PartHeadersTooLarge { part, limit } => write!(
                f,
                "header section of multipart part at index {part} is larger than {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for MultipartError {}

/// Decodes a `multipart/form-data` body with the default [`Limits`].
///
/// `content_type` is the request's `Content-Type` header value, `body`
/// the whole request body. The parts come back in body order.
///
/// ```
/// use natron::http::multipart::{parse, MultipartError};
///
/// let body = b"preamble, ignored\r\n\
///     --XyZ\r\n\
///     Content-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
///     Content-Type: text/plain\r\n\
///     \r\n\
///     line 1\r\nline 2\r\n\
///     --XyZ--\r\n";
/// let parts = parse("multipart/form-data; boundary=\"XyZ\"", body).unwrap();
/// assert_eq!(parts.len(), 1);
/// assert_eq!(parts[0].name, "file");
/// assert_eq!(parts[0].filename.as_deref(), Some("notes.txt"));
/// assert_eq!(parts[0].body, b"line 1\r\nline 2");
///
/// // Cut short: no closing delimiter.
/// let cut = &body[..body.len() - 9];
/// assert_eq!(parse("multipart/form-data; boundary=XyZ", cut), Err(MultipartError::UnterminatedPart { part: 0 }));
/// assert_eq!(parse("multipart/form-data", body), Err(MultipartError::MissingBoundary));
/// ```
///
/// # Errors
///
/// A [`MultipartError`] for the first problem found, reading the media
/// type, then the body from the start:
///
/// * [`NotMultipart`](MultipartError::NotMultipart): the media type is not
///   `multipart/form-data`;
/// * [`MissingBoundary`](MultipartError::MissingBoundary),
///   [`InvalidBoundary`](MultipartError::InvalidBoundary): no usable
///   `boundary` parameter (see the module documentation);
/// * [`MissingFirstBoundary`](MultipartError::MissingFirstBoundary): no
///   `--boundary` line (also for bare-LF line endings);
/// * [`UnterminatedPart`](MultipartError::UnterminatedPart): a part with no
///   delimiter after it (a truncated body, no `--boundary--`);
/// * [`MalformedPartHeaders`](MultipartError::MalformedPartHeaders),
///   [`MalformedContentDisposition`](MultipartError::MalformedContentDisposition),
///   [`MissingContentDisposition`](MultipartError::MissingContentDisposition),
///   [`MissingName`](MultipartError::MissingName): a part's header section
///   is not as RFC 7578 §4.2 requires;
/// * [`TooManyParts`](MultipartError::TooManyParts),
///   [`PartHeadersTooLarge`](MultipartError::PartHeadersTooLarge): past the
///   default [`Limits`].
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, MultipartError> {
    parse_with_limits(content_type, body, &Limits::default())
}

/// Decodes a `multipart/form-data` body with caller-chosen [`Limits`].
///
/// ```
/// use natron::http::multipart::{parse_with_limits, Limits, MultipartError};
///
/// let body = b"--X\r\n\
///     Content-Disposition: form-data; name=\"a\"\r\n\
///     X-Note: a long header\r\n\
///     \r\n\
///     1\r\n\
///     --X--\r\n";
/// let tight = Limits { max_header_bytes: 32, ..Limits::default() };
/// assert_eq!(
///     parse_with_limits("multipart/form-data; boundary=X", body, &tight),
///     Err(MultipartError::PartHeadersTooLarge { part: 0, limit: 32 }),
/// );
/// assert!(parse_with_limits("multipart/form-data; boundary=X", body, &Limits::default()).is_ok());
/// ```
///
/// # Errors
///
/// As [`parse`]; [`TooManyParts`](MultipartError::TooManyParts) and
/// [`PartHeadersTooLarge`](MultipartError::PartHeadersTooLarge) are
/// against `limits`.
pub fn parse_with_limits(
    content_type: &str,
    body: &[u8],
    limits: &Limits,
) -> Result<Vec<Part>, MultipartError> {
    let boundary = boundary(content_type)?;
    parse_body(boundary.as_bytes(), body, limits)
}

/// Checks the media type and extracts a validated boundary.
fn boundary(content_type: &str) -> Result<String, MultipartError> {
    // Check the media type before the parameters, so that a non-multipart
    // body with odd parameters is reported as what it is.
    let media_type = content_type.split(';').next().unwrap_or("");
    if !trim_ows(media_type).eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    let (_, params) = parse_params(content_type).map_err(|_| MultipartError::InvalidBoundary {
        reason: "the Content-Type parameter list is malformed",
    })?;
    let mut found = params
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value);
    let boundary = found.next().ok_or(MultipartError::MissingBoundary)?;
    if found.next().is_some() {
        return Err(MultipartError::InvalidBoundary {
            reason: "the boundary parameter appears more than once",
        });
    }
    let reason = if boundary.is_empty() {
        "it is empty"
    } else if boundary.len() > MAX_BOUNDARY_LEN {
        "it is longer than 70 characters"
    } else if !boundary.bytes().all(is_bchar) {
        "it contains characters outside RFC 2046 bchars"
    } else if boundary.ends_with(' ') {
        "it ends with a space"
    } else {
        return Ok(boundary);
    };
    Err(MultipartError::InvalidBoundary { reason })
}

/// What follows a `--boundary` match that is a real delimiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delimiter {
    /// A delimiter line; the next part starts at this offset.
    Part(usize),
    /// The close delimiter: everything after it is epilogue.
    Close,
}

fn parse_body(boundary: &[u8], body: &[u8], limits: &Limits) -> Result<Vec<Part>, MultipartError> {
    // `delim` is RFC 2046's `delimiter` (CRLF "--" boundary); its tail
    // without the CRLF is `dash-boundary`, which may also open the body.
    let mut delim = Vec::with_capacity(boundary.len() + 4);
    delim.extend_from_slice(b"\r\n--");
    delim.extend_from_slice(boundary);
    let dash_boundary = &delim[2..];
    let finder = memmem::Finder::new(&delim);

    let opening = if body.starts_with(dash_boundary) {
        classify(body, dash_boundary.len())
    } else {
        None
    };
    let mut next = match opening {
        Some(d) => d,
        None => {
            find_delimiter(body, &finder, 0)
                .ok_or(MultipartError::MissingFirstBoundary)?
                .1
        }
    };

    let mut parts = Vec::new();
    loop {
        let start = match next {
            Delimiter::Close => return Ok(parts),
            Delimiter::Part(start) => start,
        };
        let index = parts.len();
        if index >= limits.max_parts {
            return Err(MultipartError::TooManyParts {
                limit: limits.max_parts,
            });
        }
        let (end, after) = find_delimiter(body, &finder, start)
            .ok_or(MultipartError::UnterminatedPart { part: index })?;
        // find_delimiter searches from `start`, so start <= end <= body.len().
        parts.push(parse_part(&body[start..end], index, limits)?);
        next = after;
    }
}

/// Finds the first real delimiter (`CRLF--boundary` plus a valid line end)
/// at or after `from`; returns where its CRLF starts and what it is.
fn find_delimiter(
    body: &[u8],
    delim: &memmem::Finder<'_>,
    from: usize,
) -> Option<(usize, Delimiter)> {
    let mut from = from;
    while let Some(at) = delim.find(body.get(from..)?).map(|i| i + from) {
        if let Some(d) = classify(body, at + delim.needle().len()) {
            return Some((at, d));
        }
        // `--boundary` followed by anything else is content; keep looking.
        from = at + 1;
    }
    None
}

/// Decides whether the `--boundary` ending at `at` is a delimiter: it must
/// be followed by transport padding and CRLF, or by `--`, padding and CRLF
/// or the end of the body. `None` means it is content.
///
/// The padding scan stops at the first non-space byte, and a later match
/// cannot start inside a run of spaces, so these scans never overlap and
/// the total cost stays linear.
fn classify(body: &[u8], at: usize) -> Option<Delimiter> {
    let rest = body.get(at..)?;
    if let Some(rest) = rest.strip_prefix(b"--") {
        let rest = skip_padding(rest);
        return (rest.is_empty() || rest.starts_with(b"\r\n")).then_some(Delimiter::Close);
    }
    let padded = skip_padding(rest);
    let pad = rest.len() - padded.len();
    padded
        .starts_with(b"\r\n")
        .then_some(Delimiter::Part(at + pad + 2))
}

fn skip_padding(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

/// Parses one part: its content between delimiters, headers and body.
fn parse_part(raw: &[u8], index: usize, limits: &Limits) -> Result<Part, MultipartError> {
    let malformed = |reason| MultipartError::MalformedPartHeaders {
        part: index,
        reason,
    };
    // Only the first `max_header_bytes` are ever scanned for headers, so a
    // huge part without a blank line costs no more than the limit.
    let head = &raw[..raw.len().min(limits.max_header_bytes)];
    let mut headers = Vec::new();
    let mut pos = 0;
    let body_start = loop {
        let rest = &head[pos..];
        if rest.starts_with(b"\r\n") {
            break pos + 2;
        }
        if pos == raw.len() {
            // `body-part := MIME-part-headers [CRLF *OCTET]`: headers that
            // run right up to the delimiter leave an empty body.
            break pos;
        }
        let Some(len) = memmem::find(rest, b"\r\n") else {
            return Err(if raw.len() > head.len() {
                MultipartError::PartHeadersTooLarge {
                    part: index,
                    limit: limits.max_header_bytes,
                }
            } else {
                malformed("a header line is not terminated by CRLF")
            });
        };
        headers.push(parse_header_line(&rest[..len]).map_err(malformed)?);
        pos += len + 2;
    };

    let disposition = single(&headers, "content-disposition").map_err(|_| {
        MultipartError::MalformedContentDisposition {
            part: index,
            reason: "the header appears more than once",
        }
    })?;
    let disposition =
        disposition.ok_or(MultipartError::MissingContentDisposition { part: index })?;
    let (name, filename) = parse_disposition(disposition, index)?;
    let content_type = single(&headers, "content-type")
        .map_err(|_| malformed("Content-Type appears more than once"))?
        .map(str::to_owned);

    Ok(Part {
        name,
        filename,
        content_type,
        headers,
        body: raw[body_start..].to_vec(),
    })
}

/// The value of header `name` if it appears at most once; `Err` if repeated.
fn single<'a>(headers: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((_, v)), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(()),
    }
}

/// Parses one `Name: value` header line (without its CRLF).
fn parse_header_line(line: &[u8]) -> Result<(String, String), &'static str> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err("obsolete line folding (a line starting with whitespace) is not accepted");
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or("a header line has no colon")?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err("a header name is empty or not a token");
    }
    let value = trim_ows_bytes(value);
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err("a header value contains a control character");
    }
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// Extracts `name` and the file name from a `Content-Disposition` value.
fn parse_disposition(
    value: &str,
    index: usize,
) -> Result<(String, Option<String>), MultipartError> {
    let malformed = |reason| MultipartError::MalformedContentDisposition {
        part: index,
        reason,
    };
    let (kind, params) = parse_params(value).map_err(malformed)?;
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(malformed("the disposition type is not form-data"));
    }
    let mut name = None;
    let mut filename = None;
    let mut filename_ext = None;
    for (param, v) in params {
        let slot = if param.eq_ignore_ascii_case("name") {
            &mut name
        } else if param.eq_ignore_ascii_case("filename") {
            &mut filename
        } else if param.eq_ignore_ascii_case("filename*") {
            &mut filename_ext
        } else {
            // Unknown parameters are ignored (RFC 6266 §4.4).
            continue;
        };
        if slot.replace(v).is_some() {
            return Err(malformed(
                "a name, filename or filename* parameter is repeated",
            ));
        }
    }
    let filename_ext = filename_ext
        .map(|v| {
            decode_ext_value(&v).ok_or("filename* is not a valid UTF-8 or ISO-8859-1 ext-value")
        })
        .transpose()
        .map_err(malformed)?;
    let name = name.ok_or(MultipartError::MissingName { part: index })?;
    Ok((name, filename_ext.or(filename)))
}

/// Decodes an RFC 8187 `ext-value`: `charset'[language]'pct-encoded`.
/// Only the two charsets RFC 8187 requires are supported.
fn decode_ext_value(v: &str) -> Option<String> {
    let (charset, rest) = v.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b if is_attr_char(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    if charset.eq_ignore_ascii_case("UTF-8") {
        String::from_utf8(out).ok()
    } else if charset.eq_ignore_ascii_case("ISO-8859-1") {
        // Latin-1 bytes are exactly the first 256 code points.
        Some(out.into_iter().map(char::from).collect())
    } else {
        None
    }
}

/// A header value's leading value and its `(name, value)` parameters.
type Params<'a> = (&'a str, Vec<(&'a str, String)>);

/// Parses `value *( OWS ";" OWS [ name OWS "=" OWS ( token / quoted-string ) ] )`
/// (RFC 9110 §5.6.6, which allows empty parameters; RFC 6266's implied
/// whitespace around `=` is accepted too). Returns the leading value,
/// trimmed, and the parameters with quoted strings unescaped.
///
/// Unquoted values run to the next `;`, whitespace or quote rather than
/// stopping at non-token characters, because clients do send boundaries
/// such as `----=_Part_1` unquoted; the boundary is validated afterwards.
fn parse_params(s: &str) -> Result<Params<'_>, &'static str> {
    let bytes = s.as_bytes();
    let first_end = s.find(';').unwrap_or(s.len());
    let first = trim_ows(&s[..first_end]);
    let mut params = Vec::new();
    let mut i = first_end;
    loop {
        i = skip_ows(bytes, i);
        match bytes.get(i) {
            None => return Ok((first, params)),
            Some(b';') => i = skip_ows(bytes, i + 1),
            Some(_) => return Err("parameters must be separated by `;`"),
        }
        if matches!(bytes.get(i), None | Some(b';')) {
            continue;
        }
        let name_start = i;
        while bytes.get(i).is_some_and(|&b| is_tchar(b)) {
            i += 1;
        }
        if i == name_start {
            return Err("a parameter name is not a token");
        }
        // Every index used to slice `s` sits on an ASCII byte or the end,
        // so it is a char boundary.
        let name = &s[name_start..i];
        i = skip_ows(bytes, i);
        if bytes.get(i) != Some(&b'=') {
            return Err("a parameter has no `=`");
        }
        i = skip_ows(bytes, i + 1);
        let value = if bytes.get(i) == Some(&b'"') {
            let (value, end) = quoted_string(s, i + 1)?;
            i = end;
            value
        } else {
            let start = i;
            while bytes.get(i).is_some_and(|&b| is_value_byte(b)) {
                i += 1;
            }
            if i == start {
                return Err("a parameter value is empty");
            }
            s[start..i].to_owned()
        };
        params.push((name, value));
    }
}

/// Reads a quoted string whose opening quote ends just before `start`;
/// returns the unescaped content and the index after the closing quote.
fn quoted_string(s: &str, start: usize) -> Result<(String, usize), &'static str> {
    const UNTERMINATED: &str = "a quoted string is not terminated";
    let mut out = String::new();
    let mut chars = s.get(start..).ok_or(UNTERMINATED)?.char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + offset + 1)),
            // quoted-pair: the next character stands for itself.
            '\\' => out.push(chars.next().ok_or(UNTERMINATED)?.1),
            c => out.push(c),
        }
    }
    Err(UNTERMINATED)
}

fn skip_ows(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

fn trim_ows_bytes(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte of an unquoted parameter value (see [`parse_params`]).
fn is_value_byte(b: u8) -> bool {
    !matches!(b, b';' | b' ' | b'\t' | b'"' | 0..=0x1f | 0x7f)
}

/// RFC 2046 `bchars`.
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// RFC 8187 `attr-char`.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn ok(body: &[u8]) -> Vec<Part> {
        match parse(CT, body) {
            Ok(parts) => parts,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn err(body: &[u8]) -> MultipartError {
        match parse(CT, body) {
            Ok(parts) => panic!("expected an error, got {parts:?}"),
            Err(e) => e,
        }
    }

    fn ct_err(content_type: &str) -> MultipartError {
        parse(
            content_type,
            b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--b--",
        )
        .expect_err(content_type)
    }

    /// A body with a preamble, a text field, a binary file and an epilogue.
    const SAMPLE: &[u8] = b"preamble, ignored\r\n\
        --XyZ\r\n\
        Content-Disposition: form-data; name=\"title\"\r\n\
        \r\n\
        Hello\r\n\
        --XyZ  \t\r\n\
        content-disposition: form-data; name=\"upload\"; filename=\"a b.bin\"\r\n\
        Content-Type: application/octet-stream\r\n\
        \r\n\
        \x00\xff\r\n--XyZx\r\n-- \r\n\r\n\
        --XyZ--\r\n\
        epilogue, ignored\r\n";

    #[test]
    fn simple_fields() {
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"a\"\r\n\r\n\
            1\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=b\r\n\r\n\
            two words\r\n\
            --XyZ--\r\n");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "a");
        assert_eq!(parts[0].body, b"1");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[0].content_type, None);
        assert!(!parts[0].is_file());
        assert_eq!(parts[1].name, "b");
        assert_eq!(parts[1].text(), Some("two words"));
    }

    #[test]
    fn file_upload_with_filename_and_content_type() {
        let parts = ok(SAMPLE);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "title");
        assert_eq!(parts[0].body, b"Hello");
        let file = &parts[1];
        assert_eq!(file.name, "upload");
        assert_eq!(file.filename.as_deref(), Some("a b.bin"));
        assert_eq!(
            file.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert!(file.is_file());
        // `--XyZx` and a CRLF-preceded `--` are content, not delimiters.
        assert_eq!(file.body, b"\x00\xff\r\n--XyZx\r\n-- \r\n");
        assert_eq!(file.headers.len(), 2);
        assert_eq!(
            file.header("Content-Disposition"),
            file.header("CONTENT-DISPOSITION")
        );
        assert!(file.header("content-disposition").is_some());
    }

    #[test]
    fn multipart_wrapper_lookups() {
        let form = Multipart::parse(CT, SAMPLE).unwrap();
        assert_eq!(form.len(), 2);
        assert!(!form.is_empty());
        assert_eq!(form.text("title"), Some("Hello"));
        assert_eq!(form.text("upload"), None, "binary body is not UTF-8");
        assert!(form.get("missing").is_none());
        assert_eq!(form.get_all("title").count(), 1);
        assert_eq!(form.parts()[1].name, "upload");
        assert_eq!(form.into_parts().len(), 2);
    }

    #[test]
    fn repeated_field_names_are_all_kept() {
        let form = Multipart::parse(
            CT,
            b"--XyZ\r\nContent-Disposition: form-data; name=f; filename=1\r\n\r\none\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=f; filename=2\r\n\r\ntwo\r\n--XyZ--",
        )
        .unwrap();
        let names: Vec<_> = form.get_all("f").map(|p| p.filename.as_deref()).collect();
        assert_eq!(names, [Some("1"), Some("2")]);
        assert_eq!(form.get("f").unwrap().body, b"one");
    }

    #[test]
    fn empty_part_body() {
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"empty\"\r\n\r\n\
            \r\n\
            --XyZ--");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, "empty");
        assert!(parts[0].body.is_empty());
    }

    #[test]
    fn headers_running_into_the_delimiter_leave_an_empty_body() {
        // `body-part := MIME-part-headers [CRLF *OCTET]`: no blank line.
        let parts = ok(b"--XyZ\r\nContent-Disposition: form-data; name=x\r\n\r\n--XyZ--");
        assert_eq!(parts[0].name, "x");
        assert!(parts[0].body.is_empty());
    }

    #[test]
    fn boundary_text_not_after_crlf_does_not_split() {
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"t\"\r\n\r\n\
            a--XyZ\r\nb --XyZ--\r\n\n--XyZ\r\nc\r\n\
            --XyZ--\r\n");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, b"a--XyZ\r\nb --XyZ--\r\n\n--XyZ\r\nc");
    }

    #[test]
    fn longer_line_starting_with_the_boundary_is_content() {
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"t\"\r\n\r\n\
            x\r\n--XyZW\r\n--XyZ-\r\n--XyZ--W\r\n--XyZ \tz\r\ny\r\n\
            --XyZ--");
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].body,
            b"x\r\n--XyZW\r\n--XyZ-\r\n--XyZ--W\r\n--XyZ \tz\r\ny"
        );
    }

    #[test]
    fn quoted_boundary() {
        let body = b"--a:b c=?\r\nContent-Disposition: form-data; name=q\r\n\r\nv\r\n--a:b c=?--";
        for ct in [
            "multipart/form-data; boundary=\"a:b c=?\"",
            "multipart/form-data;boundary=\"a:\\b c=?\"",
            "Multipart/Form-Data ; BOUNDARY = \"a:b c=?\" ; charset=utf-8",
        ] {
            let parts = parse(ct, body).unwrap_or_else(|e| panic!("{ct}: {e}"));
            assert_eq!(parts[0].body, b"v", "{ct}");
        }
    }

    #[test]
    fn unquoted_boundary_with_non_token_characters() {
        let body = b"------=_Part_1\r\nContent-Disposition: form-data; name=q\r\n\r\nv\r\n------=_Part_1--";
        let parts = parse("multipart/form-data; boundary=----=_Part_1", body).unwrap();
        assert_eq!(parts[0].text(), Some("v"));
    }

    #[test]
    fn boundary_of_70_characters_is_accepted() {
        let b = "b".repeat(70);
        let body = format!("--{b}\r\nContent-Disposition: form-data; name=n\r\n\r\nv\r\n--{b}--");
        let parts = parse(
            &format!("multipart/form-data; boundary={b}"),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(parts[0].text(), Some("v"));
    }

    #[test]
    fn preamble_and_epilogue_are_ignored() {
        let parts = ok(b"This is the preamble. --XyZ is mentioned here.\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=\"a\"\r\n\r\n\
            1\r\n\
            --XyZ--\r\n\
            epilogue\r\n--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--XyZ--");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, b"1");
    }

    #[test]
    fn close_delimiter_may_end_the_body_or_carry_padding() {
        for tail in [
            &b"--XyZ--"[..],
            b"--XyZ-- \t",
            b"--XyZ--  \r\n",
            b"--XyZ--\r\njunk",
        ] {
            let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n".to_vec();
            body.extend_from_slice(tail);
            assert_eq!(ok(&body)[0].body, b"1");
        }
    }

    #[test]
    fn close_delimiter_alone_is_an_empty_form() {
        // What browsers send when a form has no fields to submit.
        assert!(ok(b"--XyZ--\r\n").is_empty());
        assert!(ok(b"--XyZ--").is_empty());
        assert!(ok(b"preamble\r\n--XyZ--").is_empty());
    }

    #[test]
    fn bare_lf_line_endings_are_rejected() {
        let body = b"--XyZ\nContent-Disposition: form-data; name=a\n\n1\n--XyZ--\n";
        assert_eq!(err(body), MultipartError::MissingFirstBoundary);
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\n--XyZ--\n";
        assert_eq!(err(body), MultipartError::UnterminatedPart { part: 0 });
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=a\n\n1\r\n--XyZ--";
        assert!(matches!(
            err(body),
            MultipartError::MalformedPartHeaders { part: 0, .. }
        ));
    }

    #[test]
    fn header_names_are_case_insensitive_and_values_trimmed() {
        let parts = ok(b"--XyZ\r\n\
            CONTENT-DISPOSITION:   FORM-DATA; NAME=\"n\"; FileName=\"f.txt\"  \r\n\
            content-TYPE:text/plain; charset=utf-8\r\n\
            X-Extra: \t kept \t\r\n\r\n\
            body\r\n--XyZ--");
        let p = &parts[0];
        assert_eq!(p.name, "n");
        assert_eq!(p.filename.as_deref(), Some("f.txt"));
        assert_eq!(p.content_type.as_deref(), Some("text/plain; charset=utf-8"));
        assert_eq!(p.header("x-extra"), Some("kept"));
        assert_eq!(p.headers[2].0, "X-Extra", "names are kept as sent");
    }

    #[test]
    fn quoted_filename_escapes_and_raw_bytes() {
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"a\\\"b\"; filename=\"C:\\\\dir\\\\q\\\"x.txt\"\r\n\r\n\
            \r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"u\"; filename=\"caf\xc3\xa9 100%22.txt\"\r\n\r\n\
            \r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"e\"; filename=\"\"\r\n\r\n\
            \r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"bad\"; filename=\"\xff.txt\"\r\n\r\n\
            \r\n--XyZ--");
        assert_eq!(parts[0].name, "a\"b");
        assert_eq!(parts[0].filename.as_deref(), Some("C:\\dir\\q\"x.txt"));
        // Raw UTF-8 as browsers send it; `%22` is left alone.
        assert_eq!(parts[1].filename.as_deref(), Some("café 100%22.txt"));
        assert_eq!(parts[2].filename.as_deref(), Some(""));
        assert!(parts[2].is_file());
        assert_eq!(parts[3].filename.as_deref(), Some("\u{fffd}.txt"));
    }

    #[test]
    fn filename_star_is_decoded_and_preferred() {
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; name=f; filename=\"plain.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\n\
            \r\n--XyZ\r\n\
            Content-Disposition: form-data; name=g; filename*=iso-8859-1'en'%E9t%E9.txt\r\n\r\n\
            \r\n--XyZ--");
        assert_eq!(parts[0].filename.as_deref(), Some("€ rates.txt"));
        assert_eq!(parts[1].filename.as_deref(), Some("été.txt"));
    }

    #[test]
    fn parameters_inside_quoted_values_are_not_parameters() {
        // A parser that searches the header for `name=` reads "evil" here.
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; filename=\"; name=evil\"; name=real\r\n\r\n\
            x\r\n--XyZ--");
        assert_eq!(parts[0].name, "real");
        assert_eq!(parts[0].filename.as_deref(), Some("; name=evil"));
    }

    #[test]
    fn headers_keep_order_case_and_repeats() {
        let parts = ok(
            b"--XyZ\r\nX-B: 1\r\nContent-Disposition: form-data; name=a\r\n\
            X-A: 2\r\nX-B: 3\r\n\r\nx\r\n--XyZ--",
        );
        let names: Vec<(&str, &str)> = parts[0]
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("X-B", "1"),
                ("Content-Disposition", "form-data; name=a"),
                ("X-A", "2"),
                ("X-B", "3")
            ]
        );
        assert_eq!(parts[0].header("x-b"), Some("1"), "the first one");
    }

    #[test]
    fn header_count_is_bounded_by_bytes_only() {
        // No fixed count: 200 short headers fit in the 8 KiB section.
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n".to_vec();
        for i in 0..200 {
            body.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\nx\r\n--XyZ--");
        assert_eq!(ok(&body)[0].headers.len(), 201);
    }

    #[test]
    fn non_utf8_field_name_is_replaced_not_dropped() {
        let parts =
            ok(b"--XyZ\r\nContent-Disposition: form-data; name=\"caf\xe9\"\r\n\r\nx\r\n--XyZ--");
        assert_eq!(parts[0].name, "caf\u{fffd}");
    }

    #[test]
    fn boundary_not_at_line_start_is_preamble() {
        let parts = ok(
            b"x--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--XyZ--",
        );
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, "b");
    }

    #[test]
    fn transfer_encoding_and_nested_multipart_are_returned_raw() {
        let parts = ok(b"--XyZ\r\n\
            Content-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            aGk=\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=files\r\nContent-Type: multipart/mixed; boundary=In\r\n\r\n\
            --In\r\nContent-Disposition: file; filename=a.txt\r\n\r\nA\r\n--In--\r\n--XyZ--");
        assert_eq!(parts[0].body, b"aGk=");
        assert_eq!(
            parts[1].body,
            b"--In\r\nContent-Disposition: file; filename=a.txt\r\n\r\nA\r\n--In--"
        );
    }

    #[test]
    fn unknown_disposition_parameters_are_ignored() {
        let parts =
            ok(b"--XyZ\r\nContent-Disposition: form-data; ; x-y=\"z\"; name=n;\r\n\r\n\r\n--XyZ--");
        assert_eq!(parts[0].name, "n");
    }

    #[test]
    fn error_not_multipart() {
        for ct in [
            "",
            "text/plain",
            "multipart/mixed; boundary=b",
            "multipart/form-datax; boundary=b",
            "application/x-www-form-urlencoded",
        ] {
            assert_eq!(ct_err(ct), MultipartError::NotMultipart, "{ct:?}");
        }
    }

    #[test]
    fn error_missing_boundary() {
        for ct in [
            "multipart/form-data",
            "multipart/form-data; charset=utf-8",
            "multipart/form-data;",
        ] {
            assert_eq!(ct_err(ct), MultipartError::MissingBoundary, "{ct:?}");
        }
    }

    #[test]
    fn error_invalid_boundary() {
        let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
        for ct in [
            "multipart/form-data; boundary=\"\"",
            long.as_str(),
            "multipart/form-data; boundary=\"a b \"",
            "multipart/form-data; boundary=a\u{e9}b",
            "multipart/form-data; boundary=\"a*b\"",
            "multipart/form-data; boundary=b; boundary=b",
            "multipart/form-data; boundary=\"b",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary b",
            "multipart/form-data; boundary=b c",
        ] {
            assert!(
                matches!(ct_err(ct), MultipartError::InvalidBoundary { .. }),
                "{ct:?}: {}",
                ct_err(ct)
            );
        }
    }

    #[test]
    fn error_missing_first_boundary() {
        assert_eq!(err(b""), MultipartError::MissingFirstBoundary);
        assert_eq!(
            err(b"no delimiter at all"),
            MultipartError::MissingFirstBoundary
        );
        assert_eq!(err(b"x--XyZ\r\n"), MultipartError::MissingFirstBoundary);
        assert_eq!(err(b"--XyZW\r\n"), MultipartError::MissingFirstBoundary);
        assert_eq!(
            err(b"--xyz\r\n"),
            MultipartError::MissingFirstBoundary,
            "case-sensitive"
        );
    }

    #[test]
    fn error_unterminated_part() {
        assert_eq!(
            err(b"--XyZ\r\n"),
            MultipartError::UnterminatedPart { part: 0 }
        );
        assert_eq!(
            err(b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nbody"),
            MultipartError::UnterminatedPart { part: 0 }
        );
        assert_eq!(
            err(
                b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ\r\n\
                  Content-Disposition: form-data; name=b\r\n\r\n2\r\n--XyZ"
            ),
            MultipartError::UnterminatedPart { part: 1 }
        );
    }

    #[test]
    fn error_malformed_part_headers() {
        for headers in [
            &b"no colon here\r\n\r\n"[..],
            b": empty name\r\n\r\n",
            b"Bad Name: x\r\n\r\n",
            b"Name : space before colon\r\n\r\n",
            b"Content-Disposition: form-data; name=a\r\n folded\r\n\r\n",
            b"X: a\x00b\r\n\r\n",
            b"X: a\nb\r\n\r\n",
            b"Content-Disposition: form-data; name=a", // no CRLF before the delimiter
            b"Content-Disposition: form-data; name=a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
        ] {
            let mut body = b"--XyZ\r\n".to_vec();
            body.extend_from_slice(headers);
            body.extend_from_slice(b"\r\n--XyZ--");
            assert!(
                matches!(
                    err(&body),
                    MultipartError::MalformedPartHeaders { part: 0, .. }
                ),
                "{:?}: {}",
                String::from_utf8_lossy(headers),
                err(&body)
            );
        }
    }

    #[test]
    fn error_malformed_content_disposition() {
        for cd in [
            "attachment; name=a",
            "form-data name=a",
            "form-data; name=a; name=b",
            "form-data; name=a; filename=x; filename=y",
            "form-data; name=\"a",
            "form-data; name",
            "form-data; name=a; filename*=x",
            "form-data; name=a; filename*=UTF-8''%ZZ",
            "form-data; name=a; filename*=UTF-8''%E2",
            "form-data; name=a; filename*=UTF-8''a%2",
            "form-data; name=a; filename*=KOI8-R''abc",
        ] {
            let body = format!("--XyZ\r\nContent-Disposition: {cd}\r\n\r\n\r\n--XyZ--");
            let e = err(body.as_bytes());
            assert!(
                matches!(
                    e,
                    MultipartError::MalformedContentDisposition { part: 0, .. }
                ),
                "{cd:?}: {e}"
            );
        }
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\
                     Content-Disposition: form-data; name=b\r\n\r\n\r\n--XyZ--";
        assert!(matches!(
            err(body),
            MultipartError::MalformedContentDisposition { part: 0, .. }
        ));
    }

    #[test]
    fn error_missing_content_disposition() {
        assert_eq!(
            err(b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"),
            MultipartError::MissingContentDisposition { part: 0 }
        );
        // An empty part (no headers at all) between two delimiters.
        assert_eq!(
            err(
                b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ\r\n\r\n--XyZ--"
            ),
            MultipartError::MissingContentDisposition { part: 1 }
        );
    }

    #[test]
    fn error_missing_name() {
        for cd in [
            "form-data",
            "form-data; filename=\"a.txt\"",
            "form-data; names=a",
        ] {
            let body = format!("--XyZ\r\nContent-Disposition: {cd}\r\n\r\n\r\n--XyZ--");
            assert_eq!(
                err(body.as_bytes()),
                MultipartError::MissingName { part: 0 },
                "{cd:?}"
            );
        }
    }

    fn many_parts(n: usize) -> Vec<u8> {
        let mut body = Vec::new();
        for i in 0..n {
            body.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=p{i}\r\n\r\n{i}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"--XyZ--");
        body
    }

    #[test]
    fn error_too_many_parts() {
        assert_eq!(ok(&many_parts(MAX_PARTS)).len(), MAX_PARTS);
        assert_eq!(
            err(&many_parts(MAX_PARTS + 1)),
            MultipartError::TooManyParts { limit: MAX_PARTS }
        );
        let limits = Limits {
            max_parts: 2,
            ..Limits::default()
        };
        assert_eq!(
            parse_with_limits(CT, &many_parts(2), &limits)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse_with_limits(CT, &many_parts(3), &limits),
            Err(MultipartError::TooManyParts { limit: 2 })
        );
        assert_eq!(
            Multipart::parse_with_limits(CT, &many_parts(3), &limits),
            Err(MultipartError::TooManyParts { limit: 2 })
        );
    }

    #[test]
    fn error_part_headers_too_large() {
        let cd = b"Content-Disposition: form-data; name=a\r\n";
        let with_padding = |extra: usize, body: &[u8]| {
            let mut b = b"--XyZ\r\n".to_vec();
            b.extend_from_slice(cd);
            b.extend_from_slice(b"X: ");
            b.extend_from_slice(&vec![b'x'; extra]);
            b.extend_from_slice(b"\r\n\r\n");
            b.extend_from_slice(body);
            b.extend_from_slice(b"\r\n--XyZ--");
            b
        };
        // Section = cd + "X: " + extra + CRLF + CRLF; exactly at the limit is fine.
        let fits = MAX_HEADER_BYTES - cd.len() - 3 - 4;
        assert_eq!(
            ok(&with_padding(fits, b"big body ".repeat(2000).as_slice()))[0].name,
            "a"
        );
        assert_eq!(
            err(&with_padding(fits + 1, b"")),
            MultipartError::PartHeadersTooLarge {
                part: 0,
                limit: MAX_HEADER_BYTES
            }
        );
        // A header section with no end at all, in a large part.
        let mut body = b"--XyZ\r\n".to_vec();
        body.extend_from_slice(&[b'x'; 100_000]);
        body.extend_from_slice(b"\r\n--XyZ--");
        assert_eq!(
            err(&body),
            MultipartError::PartHeadersTooLarge {
                part: 0,
                limit: MAX_HEADER_BYTES
            }
        );
        let limits = Limits {
            max_header_bytes: 16,
            ..Limits::default()
        };
        assert_eq!(
            parse_with_limits(CT, &many_parts(1), &limits),
            Err(MultipartError::PartHeadersTooLarge { part: 0, limit: 16 })
        );
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let cases = [
            (MultipartError::NotMultipart, "not multipart/form-data"),
            (MultipartError::MissingBoundary, "no boundary"),
            (
                MultipartError::InvalidBoundary {
                    reason: "it is empty",
                },
                "it is empty",
            ),
            (MultipartError::MissingFirstBoundary, "opening boundary"),
            (MultipartError::UnterminatedPart { part: 3 }, "index 3"),
            (
                MultipartError::MalformedPartHeaders {
                    part: 1,
                    reason: "r",
                },
                "headers",
            ),
            (
                MultipartError::MalformedContentDisposition {
                    part: 1,
                    reason: "r",
                },
                "Content-Disposition",
            ),
            (
                MultipartError::MissingContentDisposition { part: 2 },
                "no Content-Disposition",
            ),
            (MultipartError::MissingName { part: 0 }, "no name"),
            (
                MultipartError::TooManyParts { limit: 7 },
                "more than 7 parts",
            ),
            (
                MultipartError::PartHeadersTooLarge { part: 0, limit: 9 },
                "larger than 9 bytes",
            ),
        ];
        for (e, needle) in cases {
            let msg = e.to_string();
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
            let _: &dyn std::error::Error = &e;
        }
    }

    #[test]
    fn many_near_miss_delimiters_are_content() {
        // Each `\r\n--XyZ` is followed by a non-delimiter byte; the scan
        // must treat them all as content and stay linear.
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n".to_vec();
        let content = b"\r\n--XyZ!".repeat(20_000);
        body.extend_from_slice(&content);
        body.extend_from_slice(b"\r\n--XyZ--");
        assert_eq!(ok(&body)[0].body, content);
    }

    /// xorshift64: tiny, deterministic, good enough to shuffle bytes.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        let full = ok(SAMPLE);
        // The close delimiter ends right after `--XyZ--`.
        let close_end = SAMPLE.windows(7).position(|w| w == b"--XyZ--").unwrap() + 7;
        for len in 0..=SAMPLE.len() {
            let result = parse(CT, &SAMPLE[..len]);
            if len == close_end || len >= close_end + 2 {
                assert_eq!(result.as_ref(), Ok(&full), "prefix of {len} bytes");
            } else {
                assert!(result.is_err(), "prefix of {len} bytes parsed: {result:?}");
            }
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        // Bytes that matter to the parser, so mutations hit interesting paths.
        const ALPHABET: &[u8] = b"\r\n-XyZ:;=\"\\ \t*%'abn\x00\xff\xc3";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut oks, mut errs) = (0, 0);
        for _ in 0..20_000 {
            let mut body = SAMPLE.to_vec();
            let mut ct = CT.as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                let target = if rng.below(8) == 0 {
                    &mut ct
                } else {
                    &mut body
                };
                let at = rng.below(target.len() + 1);
                let byte = ALPHABET[rng.below(ALPHABET.len())];
                match rng.below(5) {
                    0 if at < target.len() => target[at] = byte,
                    1 if at < target.len() => {
                        target.remove(at);
                    }
                    2 => {
                        // Duplicate a short slice, e.g. repeating a delimiter.
                        let end = (at + rng.below(16)).min(target.len());
                        let copy = target[at..end].to_vec();
                        let to = rng.below(target.len() + 1);
                        target.splice(to..to, copy);
                    }
                    3 => target.truncate(at),
                    _ => target.insert(at.min(target.len()), byte),
                }
            }
            let ct = String::from_utf8_lossy(&ct);
            match parse(&ct, &body) {
                Ok(parts) => {
                    oks += 1;
                    assert!(parts.iter().all(|p| p.body.len() <= body.len()));
                }
                Err(e) => {
                    errs += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        // The mutations must exercise both outcomes to be worth anything.
        assert!(oks > 1000 && errs > 1000, "ok {oks}, err {errs}");
    }

    #[test]
    fn random_bytes_never_panic() {
        const ALPHABET: &[u8] = b"\r\n-XyZ: ;=\"Content-Disposition form-data name";
        let mut rng = Rng(42);
        for _ in 0..5_000 {
            let len = rng.below(200);
            let body: Vec<u8> = (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect();
            let _ = parse(CT, &body);
        }
    }
}
