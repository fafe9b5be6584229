//! The handler API's shape: `?` in handlers and who answers a request the
//! handler did not, checked statuses and fields, and a request that splits.

mod common;

use common::{builder, serve, start, Captured};
use natron::{Error, Request, Router, StatusCode};
use std::sync::{mpsc, Mutex};

const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn an_err_answers_with_its_status_and_message() {
    let server = serve(|req: Request| -> Result<(), Error> {
        let id: u32 = req
            .query_param("id")
            .unwrap_or("")
            .parse()
            .map_err(|_| Error::new(400, "id must be a number"))?;
        if id == 0 {
            return Err(Error::new(404, "no such user"));
        }
        req.respond(200, (), format!("user {id}"));
        Ok(())
    });
    server
        .request("GET /?id=7 HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 200 OK", "user 7");
    server
        .request("GET /?id=x HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 400 Bad Request", "id must be a number");
    server
        .request("GET /?id=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 404 Not Found", "no such user");
}

#[test]
fn a_std_error_through_question_mark_is_a_500_without_its_detail_but_logged() {
    let log = Captured::default();
    let server = start(builder().logger(log.logger()).handler(
        |req: Request| -> Result<(), Error> {
            let n: i32 = "secret-detail".parse()?;
            req.respond(200, (), n.to_string());
            Ok(())
        },
    ));
    let r = server.request(GET);
    r.assert(
        "HTTP/1.1 500 Internal Server Error",
        "Internal Server Error",
    );
    log.wait_for(&["handler failed", "500", "invalid digit"]);
}

#[test]
fn ok_without_answering_is_a_500_and_a_panic_too() {
    let server = serve(|req: Request| {
        if req.path() == "/panic" {
            panic!("boom");
        }
        // Dropped unanswered.
    });
    let r = server.request(GET);
    assert_eq!(r.status, 500, "{r:?}");
    let r = server.request("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 500, "{r:?}");
    // The connection and the server carry on.
    assert_eq!(server.request(GET).status, 500);
}

#[test]
fn the_routers_error_handler_shapes_the_500_but_not_an_err() {
    let mut router = Router::new();
    router.get("/drop", |_req: Request| {});
    router.get("/err", |_req: Request| -> Result<(), Error> {
        Err(Error::new(409, "conflict"))
    });
    router.error_handler(|reason| natron::Response::new(503, (), format!("sorry: {reason}")));
    let server = serve(router);
    let r = server.request("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body_str().starts_with("sorry: handler dropped"), "{r:?}");
    server
        .request("GET /err HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 409 Conflict", "conflict");
}

#[test]
fn an_err_after_answering_changes_nothing_and_is_logged() {
    let log = Captured::default();
    let server = start(builder().logger(log.logger()).handler(
        |req: Request| -> Result<(), Error> {
            req.respond(200, (), "answered");
            Err(Error::new(500, "too late"))
        },
    ));
    let mut c = server.client();
    c.send(GET);
    c.read_response().assert("HTTP/1.1 200 OK", "answered");
    log.wait_for(&["only logged", "too late"]);
    // Nothing more on the connection: the next request gets its own answer.
    c.send(GET);
    c.read_response().assert("HTTP/1.1 200 OK", "answered");
}

#[test]
fn a_request_passed_to_another_thread_is_that_threads_to_answer() {
    let (tx, rx) = mpsc::channel::<Request>();
    let rx = Mutex::new(rx);
    std::thread::spawn(move || {
        while let Ok(req) = rx.lock().unwrap().recv() {
            if req.path() == "/answer" {
                req.respond(200, (), "from a thread");
            } else {
                drop(req); // After its handler returned: 500 at once.
            }
        }
    });
    let tx = Mutex::new(tx);
    let server = serve(move |req: Request| -> Result<(), Error> {
        tx.lock().unwrap().send(req).unwrap();
        // The request lives on elsewhere: this error is only logged.
        Err(Error::new(418, "ignored"))
    });
    server
        .request("GET /answer HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 200 OK", "from a thread");
    let r = server.request("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.status == 500 || r.status == 418, "{r:?}");
}

#[test]
fn into_parts_lets_a_handler_borrow_what_it_answers_with() {
    let mut router = Router::new();
    router.get("/users/@id", |req: Request| {
        let (parts, responder) = req.into_parts();
        let id = parts.path_param("id").unwrap_or("");
        responder.respond(
            200,
            (),
            format!("user {id} from {}", parts.remote_addr().ip()),
        );
    });
    let server = serve(router);
    server
        .request("GET /users/42 HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 200 OK", "user 42 from 127.0.0.1");
}

#[test]
fn a_dropped_responder_is_answered_like_a_dropped_request() {
    let server = serve(|req: Request| -> Result<(), Error> {
        let (_parts, responder) = req.into_parts();
        drop(responder);
        Err(Error::new(422, "parts were bad"))
    });
    server
        .request(GET)
        .assert("HTTP/1.1 422 Unprocessable Content", "parts were bad");
}

#[test]
fn invalid_statuses_and_fields_never_reach_the_wire() {
    let log = Captured::default();
    let server = start(
        builder()
            .logger(log.logger())
            .handler(|req: Request| match req.path() {
                "/2001" => req.respond(2001, (), "x"),
                "/42" => req.respond(42, (), "x"),
                "/negative" => req.respond(-1, (), "x"),
                "/600" => req.respond(600, (), "x"),
                "/101" => req.respond(101, (), "x"),
                "/space" => req.respond(200, [("Bad Name", "v")], "x"),
                "/colon" => req.respond(200, [("a:b", "v")], "x"),
                "/empty" => req.respond(200, [("", "v")], "x"),
                "/crlf" => req.respond(200, [("X-Ok", "a\r\nSet-Cookie: evil=1")], "x"),
                "/nul" => req.respond(200, [("X-Ok", "a\0b")], "x"),
                "/teapot" => req.respond(StatusCode::IM_A_TEAPOT, (), "short and stout"),
                "/tab" => req.respond(299, [("X-Tab", "a\tb")], "ok"),
                _ => req.respond(404, (), ""),
            }),
    );
    for (path, logged) in [
        ("/2001", "2001 is not an HTTP status code"),
        ("/42", "42 is not an HTTP status code"),
        ("/negative", "-1 is not an HTTP status code"),
        ("/600", "600 is outside 100..=599"),
        ("/101", "101 is informational"),
        ("/space", "invalid header name \"Bad Name\""),
        ("/colon", "invalid header name \"a:b\""),
        ("/empty", "invalid header name \"\""),
        ("/crlf", "invalid value of header X-Ok"),
        ("/nul", "invalid value of header X-Ok"),
    ] {
        let mut c = server.client();
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let r = c.read_response();
        assert_eq!(
            r.status_line, "HTTP/1.1 500 Internal Server Error",
            "{path}: {r:?}"
        );
        assert!(r.header("set-cookie").is_none(), "{path}: {r:?}");
        log.wait_for(&["invalid response", logged]);
        // The connection is still usable: the 500 was a whole response.
        c.send("GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n");
        c.read_response()
            .assert("HTTP/1.1 418 I'm a teapot", "short and stout");
    }
    let r = server.request("GET /tab HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 299, "{r:?}");
    assert_eq!(r.header("x-tab"), Some("a\tb"));
}

#[test]
fn the_http_crates_header_map_is_accepted() {
    let server = serve(|req: Request| {
        let mut map = http::HeaderMap::new();
        map.insert(
            http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        map.append("x-many", http::HeaderValue::from_static("1"));
        map.append("x-many", http::HeaderValue::from_static("2"));
        req.respond(StatusCode::CREATED, map, "{}");
    });
    let r = server.request(GET);
    r.assert("HTTP/1.1 201 Created", "{}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header_all("x-many"), vec!["1", "2"]);
}

/// State registered on the builder is one value shared by every handler,
/// on every worker and connection; a type never registered is a logged 500
/// that names it, and the server carries on.
#[test]
fn state_is_shared_by_every_handler_and_a_missing_type_is_a_logged_500() {
    use std::sync::atomic::{AtomicU64, Ordering};
    #[derive(Default)]
    struct Hits(AtomicU64);
    struct NeverRegistered;
    fn hit(req: Request) -> Result<(), Error> {
        let n = req.state::<Hits>()?.0.fetch_add(1, Ordering::SeqCst) + 1;
        let tag = req.state::<&'static str>()?;
        req.respond(200, (), format!("{tag} {n}"));
        Ok(())
    }
    let mut router = Router::new();
    router.get("/hit", hit);
    router.get("/missing", |req: Request| -> Result<(), Error> {
        req.state::<NeverRegistered>()?;
        req.respond(200, (), "unreachable");
        Ok(())
    });
    let log = Captured::default();
    let server = start(
        builder()
            .logger(log.logger())
            .state(Hits::default())
            .state("first")
            // One value per type: the second replaces the first.
            .state("tag")
            .handler(router),
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut c = common::Client::connect(addr);
                for _ in 0..25 {
                    c.send("GET /hit HTTP/1.1\r\nHost: x\r\n\r\n");
                    let r = c.read_response();
                    assert_eq!(r.status, 200, "{r:?}");
                    assert!(r.body_str().starts_with("tag "), "{r:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server
        .request("GET /hit HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 200 OK", "tag 101");
    server
        .request("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert(
            "HTTP/1.1 500 Internal Server Error",
            "Internal Server Error",
        );
    log.wait_for(&["handler failed", "NeverRegistered", "ServerBuilder::state"]);
    server
        .request("GET /hit HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert("HTTP/1.1 200 OK", "tag 102");
}
