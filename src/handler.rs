//! What a request handler is, and what its `Err` becomes.

use crate::http::{Request, Response};
use std::fmt;

/// Handles HTTP requests. Runs on a worker thread; may block.
///
/// Implemented for [`crate::Router`] and for every
/// `Fn(Request) -> R + Send + Sync + 'static` where `R` is `()` or
/// `Result<(), E>` with `E: Into<`[`Error`]`>`, so `?` works in a handler:
///
/// ```
/// use natron::{Request, Router};
///
/// let mut router = Router::new();
/// router.get("/n/@n", |req: Request| -> Result<(), natron::Error> {
///     let n: u32 = req
///         .path_param("n")
///         .unwrap_or("")
///         .parse()
///         .map_err(|_| natron::Error::new(400, "n must be a number"))?;
///     req.respond(200, (), format!("{}", n * 2));
///     Ok(())
/// });
/// ```
///
/// # Who answers a request the handler did not
///
/// One rule: **a request still unanswered when its handler returns is
/// answered from the handler's `Err`** ([`Error`]'s status and message),
/// **or with `500` after `Ok(())` or a panic** (shaped by
/// [`Router::error_handler`](crate::Router::error_handler) if set), and
/// logged. "Unanswered" means the [`Request`] (or its [`Responder`]) was
/// dropped without responding before the handler returned, as a `?` does.
/// A request moved to another thread and still alive when the handler
/// returns is that thread's to answer (the handler's `Err`, if any, is
/// only logged); dropped there unanswered later, it gets `500` at once.
/// Dropped there before the handler returns, it counts as dropped by the
/// handler.
///
/// [`Responder`]: crate::http::Responder
pub trait Handler: Send + Sync + 'static {
    /// Handles one request. Answer it with [`Request::respond`], here or
    /// on another thread.
    ///
    /// # Errors
    ///
    /// An [`Error`] answers the request if it is unanswered when this
    /// returns (see above).
    ///
    /// ```
    /// use natron::{test::TestClient, Error, Handler, Request};
    ///
    /// /// Answers every request with its greeting.
    /// struct Greeter {
    ///     greeting: String,
    /// }
    ///
    /// impl Handler for Greeter {
    ///     fn handle(&self, req: Request) -> Result<(), Error> {
    ///         if req.method() != "GET" {
    ///             return Err(Error::new(405, "GET only")); // answered 405
    ///         }
    ///         req.respond(200, (), self.greeting.clone());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let client = TestClient::new(Greeter { greeting: "hello".into() });
    /// assert_eq!(client.get("/").send().unwrap().text(), "hello");
    /// assert_eq!(client.post("/").send().unwrap().status, 405);
    /// ```
    fn handle(&self, request: Request) -> Result<(), Error>;
}

impl<F, R> Handler for F
where
    F: Fn(Request) -> R + Send + Sync + 'static,
    R: HandlerResult,
{
    fn handle(&self, request: Request) -> Result<(), Error> {
        self(request).into_result()
    }
}

/// What a handler function may return: `()` or `Result<(), E>` with
/// `E: Into<Error>`.
pub trait HandlerResult {
    /// As a `Result`.
    ///
    /// # Errors
    ///
    /// The handler's error, converted.
    ///
    /// ```
    /// use natron::HandlerResult;
    ///
    /// assert!(().into_result().is_ok());
    /// let failed: Result<(), std::io::Error> = Err(std::io::Error::other("gone"));
    /// assert_eq!(failed.into_result().unwrap_err().status(), 500);
    /// ```
    fn into_result(self) -> Result<(), Error>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: Into<Error>> HandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), Error> {
        self.map_err(Into::into)
    }
}

/// A handler's error: the response it stands for, and what caused it.
///
/// * [`Error::new`]`(status, message)`: answered `status` with `message`
///   as a `text/plain` body, e.g. `Error::new(404, "no such user")`.
/// * From any `std::error::Error + Send + Sync` (so `?` works on
///   `io::Error`, `ParseIntError`, ...): answered `500 Internal Server
///   Error` with no detail (the cause may hold what a client must not
///   see); the cause goes to the server's logger.
/// * From a [`Response`]: answered with it.
///
/// A `5xx` error is logged at error level with its cause; others at
/// debug. `Error` is not itself a `std::error::Error`, which is what lets
/// it convert from every one.
pub struct Error {
    response: Response,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error answered with `status` and `message` (`text/plain`).
    /// `status` is checked when sent, like any status (see
    /// [`IntoStatus`](crate::http::IntoStatus)).
    ///
    /// ```
    /// use natron::{Error, Request};
    ///
    /// fn handler(req: Request) -> Result<(), Error> {
    ///     let Some(token) = req.header("authorization") else {
    ///         return Err(Error::new(401, "a token is needed"));
    ///     };
    ///     let body = format!("hello {token}");
    ///     req.respond(200, (), body);
    ///     Ok(())
    /// }
    /// ```
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        Error {
            response: Response::new(
                status,
                [("Content-Type", "text/plain; charset=utf-8")],
                message.into(),
            ),
            cause: None,
        }
    }

    /// Attaches what caused it (logged, never sent).
    ///
    /// ```
    /// use natron::{test::TestClient, Error, Request};
    ///
    /// let client = TestClient::new(|_req: Request| -> Result<(), Error> {
    ///     let cause = std::io::Error::other("connection to db1 refused");
    ///     Err(Error::new(503, "try again later").with_cause(cause))
    /// });
    /// let res = client.get("/").send().unwrap();
    /// // The client sees the message; the cause goes to the log only.
    /// assert_eq!((res.status, res.text().as_str()), (503, "try again later"));
    /// ```
    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.cause = Some(Box::new(cause));
        self
    }

    /// The status it is answered with.
    ///
    /// ```
    /// use natron::Error;
    ///
    /// assert_eq!(Error::new(404, "no such user").status(), 404);
    /// let parse: Error = "x".parse::<u32>().unwrap_err().into();
    /// assert_eq!(parse.status(), 500);
    /// ```
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The response it is answered with.
    ///
    /// ```
    /// use natron::Error;
    ///
    /// let e = Error::new(404, "no such user");
    /// assert_eq!(e.response().status, 404);
    /// assert_eq!(e.response().body, b"no such user");
    /// assert_eq!(
    ///     e.response().headers.get("content-type"),
    ///     Some("text/plain; charset=utf-8")
    /// );
    /// ```
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// What caused it, if known.
    ///
    /// ```
    /// use natron::Error;
    ///
    /// assert!(Error::new(400, "bad").cause().is_none());
    /// let e: Error = "x".parse::<u32>().unwrap_err().into();
    /// assert_eq!(e.cause().unwrap().to_string(), "invalid digit found in string");
    /// ```
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    pub(crate) fn into_response(self) -> Response {
        self.response
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(cause: E) -> Error {
        Error {
            response: Response::plain(500),
            cause: Some(Box::new(cause)),
        }
    }
}

impl From<Response> for Error {
    fn from(response: Response) -> Error {
        Error {
            response,
            cause: None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("status", &self.response.status)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.response.status)?;
        match &self.cause {
            Some(cause) => write!(f, ": {cause}"),
            None => match std::str::from_utf8(&self.response.body) {
                Ok(body) if !body.is_empty() => write!(f, ": {body}"),
                _ => Ok(()),
            },
        }
    }
}
