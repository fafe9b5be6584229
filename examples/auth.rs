//! An auth guard as middleware: requests under `/api` need a valid bearer
//! token (RFC 6750); the guard puts the token's user into the request's
//! extensions for the handlers, and answers `401` with `WWW-Authenticate`
//! itself, so no handler runs for a stranger.
//!
//! ```text
//! cargo run --example auth [-- --addr HOST:PORT]        (default localhost:8080)
//! curl -i localhost:8080/api/me                              -> 401
//! curl -i -H 'Authorization: Bearer t0ken-ada' localhost:8080/api/me   -> hello ada
//! ```
//!
//! * `GET /`        -> public, no token needed
//! * `GET /api/me`  -> `hello USER`
//! * `GET /api/admin` -> `403` unless the user is an admin
//!
//! Every response gets an `X-Request-Id`, and the access log goes to
//! stderr (`tests/middleware.rs` drives this example over loopback).

use natron::middleware::{AccessLog, Middleware, RequestIds};
use natron::{Parts, Request, Response, Router, Server};
use std::collections::HashMap;

/// Who a valid token belongs to; in the request's extensions for the
/// handlers behind [`BearerAuth`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub admin: bool,
}

/// Admits requests with `Authorization: Bearer <token>` for a known token.
pub struct BearerAuth {
    tokens: HashMap<String, User>,
}

impl BearerAuth {
    pub fn new(tokens: HashMap<String, User>) -> BearerAuth {
        BearerAuth { tokens }
    }
}

/// `401` with the challenge of RFC 6750 §3; `error` when a token was sent.
fn unauthorized(error: Option<&str>) -> Response {
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"natron\", error=\"{e}\""),
        None => "Bearer realm=\"natron\"".to_owned(),
    };
    Response::new(
        401,
        [
            ("WWW-Authenticate", challenge.as_str()),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        "a valid bearer token is required\n",
    )
}

impl Middleware for BearerAuth {
    fn before(&self, req: &mut Parts) -> Result<(), Response> {
        let Some(auth) = req.header("authorization") else {
            return Err(unauthorized(None));
        };
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = match auth.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(unauthorized(Some("invalid_request"))),
        };
        match self.tokens.get(token) {
            Some(user) => {
                let user = user.clone();
                req.extensions_mut().insert(user);
                Ok(())
            }
            None => Err(unauthorized(Some("invalid_token"))),
        }
    }
}

/// The service: a public root, and `/api` behind the guard.
pub fn router(tokens: HashMap<String, User>) -> Router {
    let mut router = Router::new();
    router
        .wrap(RequestIds::new())
        .wrap(AccessLog::new())
        .get("/", |req: Request| req.respond(200, (), "public\n"));
    router.group("/api", move |api| {
        api.wrap(BearerAuth::new(tokens))
            .get("/me", |req: Request| {
                // The guard ran: the user is there.
                let name = req.extensions().get::<User>().map(|u| u.name.clone());
                req.respond(200, (), format!("hello {}\n", name.unwrap_or_default()));
            })
            .get("/admin", |req: Request| {
                match req.extensions().get::<User>() {
                    Some(u) if u.admin => req.respond(200, (), "welcome, admin\n"),
                    _ => req.respond(403, (), "admins only\n"),
                }
            });
    });
    router
}

/// The demo's tokens.
pub fn demo_tokens() -> HashMap<String, User> {
    let mut tokens = HashMap::new();
    let user = |name: &str, admin| User {
        name: name.into(),
        admin,
    };
    tokens.insert("t0ken-ada".to_owned(), user("ada", true));
    tokens.insert("t0ken-bob".to_owned(), user("bob", false));
    tokens
}

fn main() {
    use slog::Drain;
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "localhost:8080".into());
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let log = slog::Logger::root(
        slog_term::FullFormat::new(decorator).build().fuse(),
        slog::o!(),
    );
    let server = Server::builder()
        .logger(log)
        .handler(router(demo_tokens()))
        .build();
    println!("listening on http://{addr}");
    if let Err(e) = server.serve(addr.as_str()) {
        eprintln!("auth: {e}");
        std::process::exit(1);
    }
}
