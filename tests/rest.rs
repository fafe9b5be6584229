//! `examples/rest.rs` and `examples/hello.rs`: the wire behaviour (CORS
//! preflight, the static page, the guard's `401`) over loopback, the CRUD
//! and its bad-input answers through the in-process `TestClient`.

mod common;
#[allow(dead_code)]
#[path = "../examples/hello.rs"]
mod hello;
#[allow(dead_code)]
#[path = "../examples/rest.rs"]
mod rest;

use common::{serve, Client};
use natron::test::{TestClient, TestResponse};

const TOKEN: &str = "t0ken";
const BEARER: &str = "Bearer t0ken";

fn client() -> TestClient {
    TestClient::new(rest::router(TOKEN, rest::STATIC_DIR))
}

/// `method target` with `body` as JSON and the token.
fn send_json(c: &TestClient, method: &str, target: &str, body: &str) -> TestResponse {
    c.request(method, target)
        .header("Authorization", BEARER)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap()
}

fn json(r: &TestResponse) -> serde_json::Value {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn crud_round_trip() {
    let c = client();
    let r = send_json(&c, "POST", "/api/todos", r#"{"title":"a"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), Some("/api/todos/1"));
    assert_eq!(
        json(&r),
        serde_json::json!({"id":1,"title":"a","done":false})
    );
    for title in ["b", "c"] {
        let body = format!(r#"{{"title":"{title}"}}"#);
        assert_eq!(send_json(&c, "POST", "/api/todos", &body).status, 201);
    }

    let r = c.get("/api/todos/2").send().unwrap();
    assert_eq!((r.status, json(&r)["title"].clone()), (200, "b".into()));
    let r = c.get("/api/todos?offset=1&limit=1").send().unwrap();
    assert_eq!(
        json(&r),
        serde_json::json!([{"id":2,"title":"b","done":false}])
    );

    let r = send_json(&c, "PATCH", "/api/todos/2", r#"{"done":true}"#);
    assert_eq!(
        json(&r),
        serde_json::json!({"id":2,"title":"b","done":true})
    );
    let r = send_json(&c, "PUT", "/api/todos/2", r#"{"title":"B"}"#);
    assert_eq!(
        json(&r),
        serde_json::json!({"id":2,"title":"B","done":false})
    );

    let del = |id| {
        c.delete(&format!("/api/todos/{id}"))
            .header("Authorization", BEARER)
            .send()
            .unwrap()
    };
    let r = del(2);
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(del(2).status, 404);
    assert_eq!(c.get("/api/todos/2").send().unwrap().status, 404);
    let ids: Vec<_> = json(&c.get("/api/todos").send().unwrap())
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3]);
}

#[test]
fn bad_input_is_answered() {
    let c = client();
    let r = c.get("/api/todos/abc").send().unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("`id`"), "{}", r.text());
    let r = c.get("/api/todos/99").send().unwrap();
    assert_eq!(
        (r.status, json(&r)),
        (404, serde_json::json!({"error":"no todo 99"}))
    );
    let r = c.get("/api/todos?limit=ten").send().unwrap();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("limit"), "{}", r.text());

    // Not JSON, JSON of the wrong shape, an unknown field, no body.
    for body in [
        r#"{"title":"#,
        r#"{"title":7}"#,
        r#"{"title":"x","tilte":"y"}"#,
        "",
    ] {
        let r = send_json(&c, "POST", "/api/todos", body);
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
    }
    let r = c
        .post("/api/todos")
        .header("Authorization", BEARER)
        .header("Content-Type", "text/plain")
        .body(r#"{"title":"x"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(r.header("accept-post"), Some("application/json"));
    assert_eq!(send_json(&c, "PATCH", "/api/todos/99", "{}").status, 404);
    assert_eq!(send_json(&c, "PUT", "/api/todos/x", "{}").status, 400);
    // Nothing bad was stored.
    assert_eq!(c.get("/api/todos").send().unwrap().text(), "[]");
}

#[test]
fn writes_need_the_token_over_the_wire() {
    let server = serve(rest::router(TOKEN, rest::STATIC_DIR));
    let body = r#"{"title":"x"}"#;
    for auth in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Basic dDB rZW4=\r\n",
    ] {
        let r = server.request(format!(
            "POST /api/todos HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(r.status_line, "HTTP/1.1 401 Unauthorized", "{auth:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"todos\""));
    }
    let r = server.request("DELETE /api/todos/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 401 Unauthorized");
    // The case of the scheme does not matter (RFC 9110 §11.1).
    let r = server.request(format!(
        "POST /api/todos HTTP/1.1\r\nHost: t\r\nAuthorization: bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status_line, "HTTP/1.1 201 Created", "{r:?}");
    // Reading needs no token.
    let r = server.request("GET /api/todos/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    r.assert("HTTP/1.1 200 OK", r#"{"id":1,"title":"x","done":false}"#);
    server.stop_ok();
}

#[test]
fn cors_preflight_and_static_page_over_the_wire() {
    let server = serve(rest::router(TOKEN, rest::STATIC_DIR));
    let mut c = Client::connect(server.addr);
    c.send(
        "OPTIONS /api/todos/1 HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\
         Access-Control-Request-Method: DELETE\r\n\
         Access-Control-Request-Headers: authorization\r\n\r\n",
    );
    let r = c.read_response();
    assert!(r.status_line.starts_with("HTTP/1.1 20"), "{r:?}");
    assert!(
        r.has_token("access-control-allow-methods", "DELETE"),
        "{r:?}"
    );
    assert!(
        r.has_token("access-control-allow-headers", "authorization"),
        "{r:?}"
    );
    assert!(r.header("access-control-allow-origin").is_some(), "{r:?}");

    // A cross-origin read gets the header too, on the same connection.
    c.send("GET /api/todos HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\r\n");
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "[]");
    assert!(r.header("access-control-allow-origin").is_some(), "{r:?}");

    c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response();
    let page = std::fs::read(format!("{}/index.html", rest::STATIC_DIR)).unwrap();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.body, page);
    let r = server.request("GET /../Cargo.toml HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(r.status_line.starts_with("HTTP/1.1 4"), "{r:?}");
    let r = server.request("GET /nope.html HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
    server.stop_ok();
}

#[test]
fn hello_over_the_wire() {
    let server = serve(hello::router());
    let mut c = Client::connect(server.addr);
    c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    c.read_response()
        .assert("HTTP/1.1 200 OK", "Hello, World!\n");
    c.send("GET /hello/ada%20l HTTP/1.1\r\nHost: t\r\n\r\n");
    c.read_response()
        .assert("HTTP/1.1 200 OK", "Hello, ada l!\n");
    c.send("GET /add/2/-40 HTTP/1.1\r\nHost: t\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "-38\n");
    c.send("GET /add/2/x HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 400 Bad Request");
    assert!(r.body_str().contains("`b`"), "{r:?}");
    c.send(format!(
        "GET /add/{}/1 HTTP/1.1\r\nHost: t\r\n\r\n",
        i64::MAX
    ));
    assert_eq!(c.read_response().status, 422);
    c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response().status, 404);
    server.stop_ok();
}
