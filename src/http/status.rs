//! Status codes (RFC 9110 §15): what `respond` accepts, and reason phrases.

pub use ::http::StatusCode;
use std::fmt;

/// A status code a response may be sent with: a [`StatusCode`], or an
/// integer (so `req.respond(200, ...)` reads as it does everywhere).
///
/// Integers are checked when the response is sent: a value outside
/// `100..=599` (RFC 9110 §15: "values outside the range 100..599 are
/// invalid"), or an informational `1xx` (not a final response, §15.2),
/// never reaches the wire; the client gets
/// `500` and the server's logger an error naming the value.
pub trait IntoStatus {
    /// The status, or why it is not one. `respond` calls it; a handler
    /// rarely needs to.
    ///
    /// # Errors
    ///
    /// [`InvalidStatus`] for a value outside `100..=999` (what
    /// [`StatusCode`] can hold). A value in `600..=999` or a `1xx` is a
    /// `StatusCode` here, and refused when the response is sent.
    ///
    /// ```
    /// use natron::{IntoStatus, StatusCode};
    ///
    /// assert_eq!(404.into_status(), Ok(StatusCode::NOT_FOUND));
    /// assert_eq!(StatusCode::CREATED.into_status().unwrap().as_u16(), 201);
    /// assert_eq!(42.into_status().unwrap_err().0, 42);
    /// assert!((-1i64).into_status().is_err());
    /// assert_eq!(u64::MAX.into_status().unwrap_err().0, i64::MAX); // the value saturates
    /// ```
    fn into_status(self) -> Result<StatusCode, InvalidStatus>;
}

/// A value given as a status code that is not one (see [`IntoStatus`]);
/// an unsigned value above `i64::MAX` is held as `i64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidStatus(pub i64);

impl fmt::Display for InvalidStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not an HTTP status code (100..=999)", self.0)
    }
}

impl std::error::Error for InvalidStatus {}

impl IntoStatus for StatusCode {
    fn into_status(self) -> Result<StatusCode, InvalidStatus> {
        Ok(self)
    }
}

macro_rules! integer_status {
    ($($t:ty),*) => {$(
        impl IntoStatus for $t {
            fn into_status(self) -> Result<StatusCode, InvalidStatus> {
                u16::try_from(self)
                    .ok()
                    .and_then(|n| StatusCode::from_u16(n).ok())
                    // Saturating: `u64::MAX as i64` would report -1.
                    .ok_or(InvalidStatus(i64::try_from(self).unwrap_or(i64::MAX)))
            }
        }
    )*};
}
integer_status!(u16, i32, u32, u64, usize, i64);

/// The standard reason phrase of `status` (RFC 9110 §15; the `http`
/// crate's for codes not listed here), or `""` for unknown codes. natron
/// writes it in every status line (RFC 9112 §4).
///
/// ```
/// use natron::http::status::reason;
///
/// assert_eq!(reason(404), "Not Found");
/// assert_eq!(reason(413), "Content Too Large"); // RFC 9110's name
/// assert_eq!(reason(599), "");
/// ```
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
    }
}

/// Whether a response with `status` may carry content (RFC 9110 §6.4.1).
pub(crate) fn allows_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}
