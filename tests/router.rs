//! The router over real sockets: patterns, parameters, 404/405, HEAD
//! fallback, custom handlers, error handler.

mod common;

use common::*;
use natron::{Request, Response, Router};

/// A handler answering `name` followed by the captured parameters.
fn named(name: &'static str) -> impl Fn(Request) + Send + Sync + 'static {
    move |req: Request| {
        let params: Vec<String> = req
            .path_params()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let body = if params.is_empty() {
            name.to_owned()
        } else {
            format!("{name} {}", params.join(" "))
        };
        req.respond(200, [("Content-Type", "text/plain")], body)
    }
}

/// Sends every `(request line, expected status line, expected body)` on
/// one pipelined connection and checks the answers in order.
#[track_caller]
fn check(s: &TestServer, cases: &[(&str, &str, &str)]) {
    let mut c = s.client();
    let wire: String = cases
        .iter()
        .map(|(line, _, _)| format!("{line} HTTP/1.1\r\nHost: t\r\n\r\n"))
        .collect();
    c.send(wire);
    for (line, status, body) in cases {
        let r = if line.starts_with("HEAD ") {
            c.read_head_response()
        } else {
            c.read_response()
        };
        assert_eq!(&r.status_line, status, "for {line}: {r:?}");
        assert_eq!(r.body_str(), *body, "for {line}");
    }
}

#[test]
fn path_params_are_captured() {
    let mut r = Router::new();
    r.get("/users/@id", named("user"))
        .get("/users/@id/posts/@post", named("post"))
        .get("/files/@a/@b", named("file"));
    let s = serve(r);
    check(
        &s,
        &[
            ("GET /users/42", "HTTP/1.1 200 OK", "user id=42"),
            (
                "GET /users/42/posts/7",
                "HTTP/1.1 200 OK",
                "post id=42 post=7",
            ),
            // Parameters are percent-decoded; the query is not part of it.
            ("GET /users/a%20b?x=1", "HTTP/1.1 200 OK", "user id=a b"),
            // An encoded slash separates segments too.
            ("GET /files/x%2Fy", "HTTP/1.1 200 OK", "file a=x b=y"),
            // A trailing slash is one more (empty) segment.
            ("GET /users/", "HTTP/1.1 200 OK", "user id="),
            ("GET /users", "HTTP/1.1 404 Not Found", "Not Found"),
            ("GET /users/42/posts", "HTTP/1.1 404 Not Found", "Not Found"),
        ],
    );
}

#[test]
fn star_matches_one_segment() {
    let mut r = Router::new();
    r.get("/one/*", named("one")).get("/*/end", named("end"));
    let s = serve(r);
    check(
        &s,
        &[
            ("GET /one/x", "HTTP/1.1 200 OK", "one"),
            ("GET /one/", "HTTP/1.1 200 OK", "one"),
            ("GET /one/x/y", "HTTP/1.1 404 Not Found", "Not Found"),
            ("GET /one", "HTTP/1.1 404 Not Found", "Not Found"),
            ("GET /abc/end", "HTTP/1.1 200 OK", "end"),
            ("GET /a/b/end", "HTTP/1.1 404 Not Found", "Not Found"),
        ],
    );
}

#[test]
fn double_star_matches_one_or_more_segments() {
    let mut r = Router::new();
    r.get("/static/**", named("static"))
        .get("/**/x/@id/**", named("multi"));
    let s = serve(r);
    check(
        &s,
        &[
            ("GET /static/a", "HTTP/1.1 200 OK", "static"),
            ("GET /static/a/b/c.css", "HTTP/1.1 200 OK", "static"),
            ("GET /static/", "HTTP/1.1 200 OK", "static"),
            ("GET /static", "HTTP/1.1 404 Not Found", "Not Found"),
            // Each `**` takes as few segments as it can, leftmost first.
            ("GET /a/x/1/x/2", "HTTP/1.1 200 OK", "multi id=1"),
            ("GET /a/b/x/1/c/d", "HTTP/1.1 200 OK", "multi id=1"),
            ("GET /a/x/1", "HTTP/1.1 404 Not Found", "Not Found"),
        ],
    );
}

#[test]
fn glob_segments_match_within_a_segment() {
    let mut r = Router::new();
    r.get("/js/*.js", named("js"))
        .get("/page_*", named("page"))
        .get("/a*b*c", named("abc"));
    let s = serve(r);
    check(
        &s,
        &[
            ("GET /js/app.js", "HTTP/1.1 200 OK", "js"),
            ("GET /js/.js", "HTTP/1.1 200 OK", "js"),
            ("GET /js/app.css", "HTTP/1.1 404 Not Found", "Not Found"),
            ("GET /js/a/b.js", "HTTP/1.1 404 Not Found", "Not Found"),
            ("GET /page_12", "HTTP/1.1 200 OK", "page"),
            ("GET /page_", "HTTP/1.1 200 OK", "page"),
            ("GET /page", "HTTP/1.1 404 Not Found", "Not Found"),
            ("GET /axxbyyc", "HTTP/1.1 200 OK", "abc"),
            ("GET /abc", "HTTP/1.1 200 OK", "abc"),
            ("GET /acb", "HTTP/1.1 404 Not Found", "Not Found"),
        ],
    );
}

#[test]
fn unknown_path_is_404() {
    let mut r = Router::new();
    r.get("/", named("root"));
    let s = serve(r);
    let resp = s.request(get("/nope"));
    resp.assert("HTTP/1.1 404 Not Found", "Not Found");
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // `OPTIONS *` has no path.
    let resp = s.request("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    resp.assert("HTTP/1.1 404 Not Found", "Not Found");
    s.request(get("/")).assert("HTTP/1.1 200 OK", "root");
}

#[test]
fn wrong_method_is_405_with_allow() {
    let mut r = Router::new();
    r.get("/x", named("get x"))
        .post("/x", named("post x"))
        .delete("/x", named("delete x"))
        .post("/only-post", named("post"))
        .route("PURGE", "/x/*", named("purge"))
        .get("/x/@id", named("get id"));
    let s = serve(r);
    for (line, allow) in [
        ("PUT /x", "GET, HEAD, POST, DELETE"),
        ("GET /only-post", "POST"),
        ("HEAD /only-post", "POST"),
        ("POST /x/1", "PURGE, GET, HEAD"),
    ] {
        let mut c = s.client();
        c.send(format!("{line} HTTP/1.1\r\nHost: t\r\n\r\n{}", get("/x")));
        if line.starts_with("HEAD ") {
            let resp = c.read_head_response();
            assert_eq!(resp.status_line, "HTTP/1.1 405 Method Not Allowed");
            assert_eq!(resp.header("allow"), Some(allow), "for {line}");
        } else {
            let resp = c.read_response();
            resp.assert("HTTP/1.1 405 Method Not Allowed", "Method Not Allowed");
            assert_eq!(resp.header("allow"), Some(allow), "for {line}");
        }
        // The connection goes on.
        c.read_response().assert("HTTP/1.1 200 OK", "get x");
    }
    // Methods are case-sensitive.
    let resp = s.request("get /x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status_line, "HTTP/1.1 405 Method Not Allowed");
}

#[test]
fn head_falls_back_to_get_without_body() {
    let mut r = Router::new();
    r.get("/doc", named("document"))
        .get("/both", named("get both"))
        .head("/both", |req: Request| {
            req.respond(200, [("X-Head", "explicit")], "12345")
        });
    let s = serve(r);
    let mut c = s.client();
    c.send(
        "HEAD /doc HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /doc HTTP/1.1\r\nHost: t\r\n\r\n\
         HEAD /both HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /both HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let h = c.read_head_response();
    assert_eq!(h.status_line, "HTTP/1.1 200 OK");
    assert_eq!(h.header("content-length"), Some("8"));
    assert_eq!(h.header("content-type"), Some("text/plain"));
    // The GET response follows the head directly: no body bytes were sent.
    c.read_response().assert("HTTP/1.1 200 OK", "document");
    // An explicit HEAD route wins over a GET route registered before it.
    let h = c.read_head_response();
    assert_eq!(h.header("x-head"), Some("explicit"));
    assert_eq!(h.header("content-length"), Some("5"));
    c.read_response().assert("HTTP/1.1 200 OK", "get both");
    assert!(!c.has_data_within(std::time::Duration::from_millis(50)));
}

#[test]
fn custom_not_found_and_method_not_allowed() {
    let mut r = Router::new();
    r.get("/x", named("x"))
        .not_found(|req: Request| {
            let body = format!("no {}", req.path());
            req.respond(404, [("X-Custom", "1")], body)
        })
        .method_not_allowed(|req: Request| {
            let body = format!("not {}", req.method());
            req.respond(405, [("Allow", "GET")], body)
        });
    let s = serve(r);
    let resp = s.request(get("/missing"));
    resp.assert("HTTP/1.1 404 Not Found", "no /missing");
    assert_eq!(resp.header("x-custom"), Some("1"));
    let resp = s.request(post("/x", ""));
    resp.assert("HTTP/1.1 405 Method Not Allowed", "not POST");
    assert_eq!(resp.header("allow"), Some("GET"));
}

#[test]
fn custom_method_not_allowed_sees_the_allowed_methods_and_gets_allow() {
    let mut r = Router::new();
    r.get("/x", named("x"))
        .delete("/x", named("x"))
        .method_not_allowed(|req: Request| {
            let body = format!("use {}", req.allowed_methods().unwrap_or("?"));
            // No Allow header here: natron adds it to a 405.
            req.respond(405, (), body)
        });
    let s = serve(r);
    let resp = s.request(post("/x", ""));
    resp.assert("HTTP/1.1 405 Method Not Allowed", "use GET, HEAD, DELETE");
    assert_eq!(resp.header("allow"), Some("GET, HEAD, DELETE"));
}

#[test]
fn first_match_wins() {
    let mut r = Router::new();
    r.get("/a/@x", named("param"))
        .get("/a/b", named("literal"))
        .get("/c/c", named("literal c"))
        .get("/c/*", named("star c"))
        .get("/**", named("catch-all"));
    let s = serve(r);
    check(
        &s,
        &[
            ("GET /a/b", "HTTP/1.1 200 OK", "param x=b"),
            ("GET /c/c", "HTTP/1.1 200 OK", "literal c"),
            ("GET /c/d", "HTTP/1.1 200 OK", "star c"),
            ("GET /anything/else", "HTTP/1.1 200 OK", "catch-all"),
            ("GET /", "HTTP/1.1 200 OK", "catch-all"),
        ],
    );
}

fn route_panics(_req: Request) {
    panic!("route panic (expected)")
}

fn not_found_panics(_req: Request) {
    panic!("not-found panic (expected)")
}

#[test]
fn error_handler_answers_panics_and_drops() {
    let mut r = Router::new();
    r.get("/panic", route_panics)
        .get("/drop", drop::<Request>)
        .get("/ok", named("ok"))
        .not_found(not_found_panics)
        .error_handler(|reason| {
            Response::new(
                503,
                [("Content-Type", "text/plain"), ("X-Reason", reason)],
                format!("custom: {reason}"),
            )
        });
    let s = serve(r);
    let mut c = s.client();
    c.send(format!(
        "{}{}{}{}",
        get("/panic"),
        get("/drop"),
        get("/missing"),
        get("/ok")
    ));
    let resp = c.read_response();
    resp.assert(
        "HTTP/1.1 503 Service Unavailable",
        "custom: handler panicked",
    );
    assert_eq!(resp.header("x-reason"), Some("handler panicked"));
    c.read_response().assert(
        "HTTP/1.1 503 Service Unavailable",
        "custom: handler dropped the request without responding",
    );
    // It covers the not-found handler too.
    c.read_response().assert(
        "HTTP/1.1 503 Service Unavailable",
        "custom: handler panicked",
    );
    c.read_response().assert("HTTP/1.1 200 OK", "ok");
}

#[test]
fn error_handler_that_panics_falls_back_to_500() {
    let mut r = Router::new();
    r.get("/panic", route_panics)
        .error_handler(|_| panic!("error handler panic (expected)"));
    let s = serve(r);
    let mut c = s.client();
    c.send(format!("{}{}", get("/panic"), get("/panic")));
    for _ in 0..2 {
        c.read_response().assert(
            "HTTP/1.1 500 Internal Server Error",
            "Internal Server Error",
        );
    }
}
