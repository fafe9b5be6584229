//! Middleware over loopback: hook order across nested wraps, rejection in
//! `before`, after-hooks on responses made on another thread and on
//! streams, the access log, CORS, request ids, per-route compression, and
//! the auth guard of `examples/auth.rs`.

#[allow(dead_code)]
#[path = "../examples/auth.rs"]
mod auth;
mod common;

use common::{builder, poll_until, serve, start, wait_until, Captured, Client};
use natron::middleware::{
    AccessLog, Compression, Cors, Middleware, RequestId, RequestIds, RequestInfo, ResponseHead,
    Summary, Wrap,
};
use natron::{Error, Parts, Request, Response, Router};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// The access log's view of a [`Captured`] log.
trait AccessLines {
    fn access_lines(&self) -> Vec<String>;
    fn wait_access(&self, n: usize) -> Vec<String>;
}

impl AccessLines for Captured {
    /// The lines whose message is `request` (the access log's).
    fn access_lines(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|l| l.starts_with("request "))
            .cloned()
            .collect()
    }
    /// Waits (bounded) for `n` access log lines.
    fn wait_access(&self, n: usize) -> Vec<String> {
        let ok = poll_until(WAIT, || self.access_lines().len() >= n);
        assert!(
            ok,
            "{n} access lines expected, got {:?}",
            self.access_lines()
        );
        self.access_lines()
    }
}

/// Records its hooks as `before NAME`, `after NAME`, `done NAME STATUS
/// BYTES COMPLETED`, and adds `X-Trace: NAME` to the response.
struct Trace {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Middleware for Trace {
    fn before(&self, _req: &mut Parts) -> Result<(), Response> {
        self.log
            .lock()
            .unwrap()
            .push(format!("before {}", self.name));
        Ok(())
    }
    fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
        self.log
            .lock()
            .unwrap()
            .push(format!("after {}", self.name));
        head.headers_mut().append("X-Trace", self.name);
    }
    fn done(&self, s: &Summary<'_>) {
        self.log.lock().unwrap().push(format!(
            "done {} {} {} {}",
            self.name, s.status, s.body_len, s.completed
        ));
    }
}

fn trace(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Trace {
    Trace {
        name,
        log: log.clone(),
    }
}

/// Waits until `log` holds `n` entries, then returns them.
fn entries(log: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    wait_until("hook entries", WAIT, || log.lock().unwrap().len() >= n);
    log.lock().unwrap().clone()
}

/// Rejects every request with `403` unless it has `X-Pass`.
struct Gate;

impl Middleware for Gate {
    fn before(&self, req: &mut Parts) -> Result<(), Response> {
        if req.header("x-pass").is_some() {
            Ok(())
        } else {
            Err(Response::new(403, (), "gate"))
        }
    }
    fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
        head.headers_mut().append("X-Trace", "gate");
    }
}

#[test]
fn hooks_nest_server_router_group_and_wrap() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new();
    let l = log.clone();
    router.wrap(trace("router", &log)).group("/g", |g| {
        g.wrap(trace("group", &log)).get(
            "/x",
            Wrap::new(move |req: Request| {
                l.lock().unwrap().push("handler".into());
                req.respond(200, (), "hello");
            })
            .with(trace("wrap", &log)),
        );
    });
    let server = start(builder().middleware(trace("server", &log)).handler(router));
    let r = server.request("GET /g/x HTTP/1.1\r\nHost: x\r\n\r\n");
    r.assert("HTTP/1.1 200 OK", "hello");
    assert_eq!(
        r.header_all("x-trace"),
        ["wrap", "group", "router", "server"]
    );
    assert_eq!(
        entries(&log, 13),
        [
            "before server",
            "before router",
            "before group",
            "before wrap",
            "handler",
            "after wrap",
            "after group",
            "after router",
            "after server",
            "done wrap 200 5 true",
            "done group 200 5 true",
            "done router 200 5 true",
            "done server 200 5 true",
        ]
    );

    // A 404 goes through the server's and the router's middleware, not
    // the group's.
    log.lock().unwrap().clear();
    let r = server.request("GET /g/nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(r.header_all("x-trace"), ["router", "server"]);
    assert_eq!(
        entries(&log, 6)[4..],
        ["done router 404 9 true", "done server 404 9 true"]
    );
}

#[test]
fn a_rejecting_before_answers_and_skips_what_is_inside() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let handler = Wrap::new(move |req: Request| {
        *c.lock().unwrap() += 1;
        req.respond(200, (), "in");
    })
    .with(trace("outer", &log))
    .with(Gate)
    .with(trace("inner", &log));
    let server = serve(handler);

    let r = server.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    r.assert("HTTP/1.1 403 Forbidden", "gate");
    // The gate's own after does not run; the outer one's does.
    assert_eq!(r.header_all("x-trace"), ["outer"]);
    assert_eq!(
        entries(&log, 3),
        ["before outer", "after outer", "done outer 403 4 true"]
    );
    assert_eq!(*calls.lock().unwrap(), 0, "the handler must not run");

    log.lock().unwrap().clear();
    let r = server.request("GET / HTTP/1.1\r\nHost: x\r\nX-Pass: 1\r\n\r\n");
    r.assert("HTTP/1.1 200 OK", "in");
    assert_eq!(r.header_all("x-trace"), ["inner", "gate", "outer"]);
    assert_eq!(*calls.lock().unwrap(), 1);
}

/// Sets `201` and records the thread its after-hook ran on.
struct OnThread(Arc<Mutex<Option<ThreadId>>>);

impl Middleware for OnThread {
    fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
        *self.0.lock().unwrap() = Some(thread::current().id());
        assert_eq!(head.body_len(), Some(5));
        head.set_status(201).unwrap();
        assert!(head.set_status(101).is_err(), "1xx is no final status");
        head.headers_mut().set("X-After", "yes");
    }
}

#[test]
fn after_hooks_run_on_the_thread_that_answers() {
    let seen = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel::<(ThreadId, ThreadId)>();
    let tx = Mutex::new(tx);
    let handler = Wrap::new(move |req: Request| {
        let handler_thread = thread::current().id();
        let (_parts, responder) = req.into_parts();
        let tx = tx.lock().unwrap().clone();
        // Answered after the handler has returned, on a thread of its own.
        thread::spawn(move || {
            tx.send((handler_thread, thread::current().id())).unwrap();
            responder.respond(200, (), "later");
        });
    })
    .with(OnThread(seen.clone()));
    let server = serve(handler);
    let r = server.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    r.assert("HTTP/1.1 201 Created", "later");
    assert_eq!(r.header("x-after"), Some("yes"));
    let (handler_thread, answering_thread) = rx.recv_timeout(WAIT).unwrap();
    assert_ne!(handler_thread, answering_thread);
    assert_eq!(*seen.lock().unwrap(), Some(answering_thread));
}

/// What the stream's hooks saw.
#[derive(Default)]
struct StreamSeen {
    body_len_at_head: Option<Option<u64>>,
    done: Option<(u16, u64, bool)>,
}

struct StreamHooks(Arc<Mutex<StreamSeen>>);

impl Middleware for StreamHooks {
    fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
        self.0.lock().unwrap().body_len_at_head = Some(head.body_len());
        head.headers_mut().set("X-Streamed", "head");
    }
    fn done(&self, s: &Summary<'_>) {
        self.0.lock().unwrap().done = Some((s.status, s.body_len, s.completed));
    }
}

#[test]
fn streamed_responses_get_the_head_hooks_at_once_and_done_at_the_end() {
    let seen = Arc::new(Mutex::new(StreamSeen::default()));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Arc::new(Mutex::new(go_rx));
    let handler = Wrap::new(move |req: Request| {
        let cut = req.path() == "/cut";
        let stream = req.respond_stream(200, [("Content-Type", "text/plain")]);
        let go = go_rx.clone();
        thread::spawn(move || {
            stream.write("abc").unwrap();
            // Waits for the test to have read the head and first chunk.
            go.lock().unwrap().recv_timeout(WAIT).unwrap();
            if cut {
                // The client leaves; the stream ends when the IO actor sees it.
                wait_until("stream closed", WAIT, || stream.write("x").is_err());
            } else {
                stream.write("defg").unwrap();
                stream.finish().unwrap();
            }
        });
    })
    .with(StreamHooks(seen.clone()));
    let server = serve(handler);

    let mut c = server.client();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = c.read_response_head();
    assert_eq!(head.header("x-streamed"), Some("head"));
    assert_eq!(c.read_chunk(), common::Chunk::Data(b"abc".to_vec()));
    assert_eq!(seen.lock().unwrap().body_len_at_head, Some(None));
    assert!(seen.lock().unwrap().done.is_none(), "done before the end");
    go_tx.send(()).unwrap();
    assert_eq!(c.read_chunk(), common::Chunk::Data(b"defg".to_vec()));
    assert_eq!(c.read_chunk(), common::Chunk::Last(Vec::new()));
    wait_until("done hook", WAIT, || seen.lock().unwrap().done.is_some());
    assert_eq!(seen.lock().unwrap().done, Some((200, 7, true)));

    // Cut short by the client: done says so, on a worker.
    seen.lock().unwrap().done = None;
    let mut c = server.client();
    c.send("GET /cut HTTP/1.1\r\nHost: x\r\n\r\n");
    let _ = c.read_response_head();
    assert_eq!(c.read_chunk(), common::Chunk::Data(b"abc".to_vec()));
    drop(c);
    go_tx.send(()).unwrap();
    wait_until("done hook", WAIT, || seen.lock().unwrap().done.is_some());
    let (status, bytes, completed) = seen.lock().unwrap().done.unwrap();
    assert_eq!((status, completed), (200, false));
    assert!(bytes >= 3, "{bytes} bytes");
}

#[test]
fn access_log_writes_one_line_per_response_with_the_request_id() {
    let captured = Captured::default();
    let mut router = Router::new();
    router
        .get("/hello", |req: Request| req.respond(200, (), "hello"))
        .get("/fail", |_req: Request| -> Result<(), Error> {
            Err(Error::new(503, "down"))
        });
    let server = start(
        builder()
            .logger(captured.logger())
            .middleware(RequestIds::new())
            .middleware(AccessLog::new())
            .handler(router),
    );
    let mut c = server.client();
    c.send("GET /hello?x=1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-1\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "hello");
    c.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_head_response().status, 200);
    c.send("GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 503);
    c.send("GET /none HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 404);

    let lines = captured.wait_access(4);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let has = |i: usize, parts: &[&str]| {
        for p in parts {
            assert!(lines[i].contains(p), "{p:?} not in {:?}", lines[i]);
        }
    };
    has(
        0,
        &[
            "method=GET",
            "path=/hello",
            "status=200",
            "bytes=5",
            "remote=127.0.0.1:",
            "request_id=abc-1",
            "duration_us=",
            "completed=true",
        ],
    );
    has(1, &["method=HEAD", "status=200", "bytes=0"]);
    has(2, &["path=/fail", "status=503"]);
    has(3, &["path=/none", "status=404"]);
    assert!(!lines[1].contains("request_id=abc-1"), "{lines:?}");
}

/// Without `RequestIds` the line has no `request_id` field at all (not an
/// empty one).
#[test]
fn access_log_without_request_ids_has_no_request_id_field() {
    let captured = Captured::default();
    let server = start(
        builder()
            .logger(captured.logger())
            .middleware(AccessLog::new())
            .handler(|req: Request| req.respond(200, (), "hi")),
    );
    server
        .request("GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-1\r\n\r\n")
        .assert("HTTP/1.1 200 OK", "hi");
    let lines = captured.wait_access(1);
    assert!(lines[0].contains("path=/a"), "{lines:?}");
    assert!(!lines[0].contains("request_id"), "{lines:?}");
}

fn cors_router(cors: Cors) -> Router {
    let mut router = Router::new();
    router
        .wrap(cors)
        .get("/items", |req: Request| {
            req.respond(200, [("X-Total", "3")], "items")
        })
        .put("/items", |req: Request| req.respond(200, (), "put"));
    router
}

fn strict_cors() -> Cors {
    Cors::new()
        .allow_origin("https://app.example")
        .allow_methods(["GET", "PUT"])
        .allow_headers(["Content-Type", "X-Token"])
        .allow_credentials(true)
        .expose_headers(["X-Total"])
        .max_age(Duration::from_secs(600))
}

#[test]
fn cors_preflight_is_answered_before_routing() {
    let server = serve(cors_router(strict_cors()));
    let preflight = |origin: &str, method: &str, headers: &str| {
        server.request(format!(
            "OPTIONS /items HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: {method}\r\n\
             Access-Control-Request-Headers: {headers}\r\n\r\n"
        ))
    };
    let r = preflight("https://app.example", "PUT", "content-type, x-token");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-token")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert!(r.has_token("vary", "origin"), "{r:?}");

    for (origin, method, headers) in [
        ("https://evil.example", "PUT", "content-type"),
        ("https://app.example", "DELETE", "content-type"),
        ("https://app.example", "PUT", "x-other"),
    ] {
        let r = preflight(origin, method, headers);
        assert_eq!(r.status, 403, "{origin} {method} {headers}: {r:?}");
        assert_eq!(r.header("access-control-allow-origin"), None);
    }

    // An OPTIONS without Access-Control-Request-Method is no preflight:
    // it is routed (and this router has no OPTIONS route).
    let r =
        server.request("OPTIONS /items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n");
    assert_eq!(r.status, 405);
}

#[test]
fn cors_fields_on_simple_requests() {
    let server = serve(cors_router(strict_cors()));
    let r = server.request("GET /items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n");
    r.assert("HTTP/1.1 200 OK", "items");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-expose-headers"), Some("X-Total"));
    assert!(r.has_token("vary", "origin"));

    // A disallowed origin is served without CORS fields: the browser
    // keeps the response from the page.
    let r =
        server.request("GET /items HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n");
    r.assert("HTTP/1.1 200 OK", "items");
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert!(r.has_token("vary", "origin"));

    // Any origin without credentials: `*`, and nothing varies.
    let server = serve(cors_router(Cors::new().allow_any_origin()));
    let r = server.request("GET /items HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(!r.has_token("vary", "origin"));
    // With credentials, `*` is not allowed: the origin is echoed.
    let server = serve(cors_router(
        Cors::new().allow_any_origin().allow_credentials(true),
    ));
    let r = server.request("GET /items HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert!(r.has_token("vary", "origin"));
}

#[test]
fn request_ids_in_out_and_generated() {
    let mut router = Router::new();
    router.wrap(RequestIds::new()).get("/", |req: Request| {
        let id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        req.respond(200, (), id);
    });
    let server = serve(router);
    let r = server.request("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: up-42.a:b\r\n\r\n");
    assert_eq!(r.body_str(), "up-42.a:b");
    assert_eq!(r.header("x-request-id"), Some("up-42.a:b"));

    let mut generated = Vec::new();
    for incoming in [
        String::new(),
        "X-Request-Id: has;semicolon\r\n".to_owned(),
        format!("X-Request-Id: {}\r\n", "a".repeat(129)),
    ] {
        let r = server.request(format!("GET / HTTP/1.1\r\nHost: x\r\n{incoming}\r\n"));
        let id = r.body_str().to_owned();
        assert_eq!(r.header("x-request-id"), Some(id.as_str()));
        let (prefix, n) = id.split_once('-').expect("prefix-counter");
        assert_eq!(prefix.len(), 16, "{id}");
        assert!(n.parse::<u64>().is_ok(), "{id}");
        generated.push(id);
    }
    generated.sort();
    generated.dedup();
    assert_eq!(generated.len(), 3, "ids are unique: {generated:?}");
}

#[test]
fn compression_per_route() {
    fn big() -> Vec<u8> {
        vec![b'a'; 2000]
    }
    fn small() -> Vec<u8> {
        vec![b'a'; 100]
    }
    let mut router = Router::new();
    router
        .get("/big", |req: Request| req.respond(200, (), big()))
        .get("/small", |req: Request| req.respond(200, (), small()));
    router.group("/off", |g| {
        g.wrap(Compression::off())
            .get("/big", |req: Request| req.respond(200, (), big()))
            .get("/stream", |req: Request| {
                let s = req.respond_stream(200, [("Content-Type", "text/plain")]);
                let _ = s.write(big());
            });
    });
    router.group("/eager", |g| {
        g.wrap(Compression::min_len(10))
            .get("/small", |req: Request| req.respond(200, (), small()));
    });
    let server = serve(router);
    let get = |path: &str| {
        server.request(format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
        ))
    };
    assert_eq!(get("/big").header("content-encoding"), Some("gzip"));
    assert_eq!(get("/small").header("content-encoding"), None);
    let r = get("/off/big");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, vec![b'a'; 2000]);
    let mut c = server.client();
    c.send("GET /off/stream HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
    assert_eq!(c.read_response_head().header("content-encoding"), None);
    assert_eq!(c.read_chunk(), common::Chunk::Data(big()));
    assert_eq!(c.read_chunk(), common::Chunk::Last(Vec::new()));
    let r = get("/eager/small");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.body.len() < 100, "{} bytes", r.body.len());
}

struct Panics(&'static str);

impl Middleware for Panics {
    fn before(&self, _req: &mut Parts) -> Result<(), Response> {
        assert_ne!(self.0, "before", "before-hook panics");
        Ok(())
    }
    fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
        head.headers_mut().set("X-Partly", "set");
        assert_ne!(self.0, "after", "after-hook panics");
    }
    fn done(&self, _s: &Summary<'_>) {
        assert_ne!(self.0, "done", "done-hook panics");
    }
}

#[test]
fn panicking_hooks_are_contained() {
    let mut router = Router::new();
    for (path, which) in [
        ("/before", "before"),
        ("/after", "after"),
        ("/done", "done"),
    ] {
        router.get(
            path,
            Wrap::new(|req: Request| req.respond(200, (), "ok")).with(Panics(which)),
        );
    }
    let server = serve(router);
    let mut c = server.client();
    c.send("GET /before HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 500);
    c.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "ok");
    c.send("GET /done HTTP/1.1\r\nHost: x\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "ok");
    // The connection still serves.
    c.send("GET /done HTTP/1.1\r\nHost: x\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "ok");
}

/// Adds a field no response may carry, counting its calls.
struct BadField(Arc<Mutex<usize>>);

impl Middleware for BadField {
    fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
        *self.0.lock().unwrap() += 1;
        head.headers_mut().set("X-Bad", "a\u{0}b");
    }
}

#[test]
fn an_invalid_field_from_an_after_hook_is_a_500_and_the_hook_runs_once() {
    let calls = Arc::new(Mutex::new(0));
    let server = serve(
        Wrap::new(|req: Request| {
            if req.path() == "/stream" {
                let s = req.respond_stream(200, ());
                let _ = s.write("never sent");
            } else {
                req.respond(200, (), "ok");
            }
        })
        .with(BadField(calls.clone())),
    );
    for (i, path) in ["/", "/stream"].into_iter().enumerate() {
        let r = server.request(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(r.status, 500, "{path}");
        assert_eq!(r.header("x-bad"), None);
        assert_eq!(
            *calls.lock().unwrap(),
            i + 1,
            "{path}: the after-hook ran once"
        );
    }
}

#[test]
fn auth_example_guards_api_routes() {
    let server = serve(auth::router(auth::demo_tokens()));
    let get = |path: &str, auth: Option<&str>| {
        let field = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        server.request(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{field}\r\n"))
    };
    get("/", None).assert("HTTP/1.1 200 OK", "public\n");

    let r = get("/api/me", None);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"natron\"")
    );
    assert!(r.header("x-request-id").is_some(), "outer middleware ran");
    let r = get("/api/me", Some("Bearer nope"));
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"natron\", error=\"invalid_token\"")
    );
    let r = get("/api/me", Some("Basic YWRhOng="));
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_request"));

    get("/api/me", Some("Bearer t0ken-ada")).assert("HTTP/1.1 200 OK", "hello ada\n");
    get("/api/me", Some("bearer t0ken-bob")).assert("HTTP/1.1 200 OK", "hello bob\n");
    get("/api/admin", Some("Bearer t0ken-ada")).assert("HTTP/1.1 200 OK", "welcome, admin\n");
    assert_eq!(get("/api/admin", Some("Bearer t0ken-bob")).status, 403);
}

#[test]
fn websocket_upgrade_is_seen_by_done_hooks() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new();
    router.wrap(trace("ws", &log)).websocket(
        "/ws",
        |ws: natron::WebSocket, e: natron::WebSocketEvent| {
            if let natron::WebSocketEvent::Message(natron::Message::Text(t)) = e {
                let _ = ws.send_text(&t);
            }
        },
    );
    let server = serve(router);
    let _ws: Client = server.websocket("/ws");
    assert_eq!(entries(&log, 2), ["before ws", "done ws 101 0 true"]);
}

#[test]
fn groups_join_prefixes_and_nest_their_middleware() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new();
    router.group("/api", |api| {
        api.wrap(trace("api", &log))
            .get("/", |req: Request| req.respond(200, (), "root"))
            .group("/v1", |v1| {
                v1.wrap(trace("v1", &log))
                    .get("/items/@id", |req: Request| {
                        let id = req.path_param("id").unwrap_or("").to_owned();
                        req.respond(200, (), id)
                    });
            });
    });
    let server = serve(router);
    let r = server.request("GET /api HTTP/1.1\r\nHost: x\r\n\r\n");
    r.assert("HTTP/1.1 200 OK", "root");
    assert_eq!(r.header_all("x-trace"), ["api"]);
    let r = server.request("GET /api/v1/items/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    r.assert("HTTP/1.1 200 OK", "7");
    assert_eq!(r.header_all("x-trace"), ["v1", "api"]);
    assert_eq!(
        server
            .request("GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        404
    );
    // A method no route of the path takes: the router's 405, without the
    // group's middleware.
    let r = server.request("POST /api/v1/items/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 405);
    assert!(r.header_all("x-trace").is_empty());
}
