//! Feature `json` and typed extraction over real sockets: `req.json()`,
//! `respond_json`, `query_as`, `path_param_as`, `query_param_as`. Every
//! handler here answers bad input only through `?`: what the client sees
//! is what the extractors' errors become.

mod common;

use common::{serve, Client, Response, TestServer};
use natron::test::{TestClient, TestResponse};
use natron::{Request, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct NewUser {
    name: String,
    age: u8,
}

#[derive(Deserialize, Serialize)]
struct Numbers {
    small: u8,
    big: u64,
    float: f64,
}

#[derive(Deserialize, Serialize)]
struct Search {
    q: String,
    #[serde(default)]
    offset: u32,
    limit: Option<u32>,
}

fn server() -> TestServer {
    serve(router())
}

/// The same routes in process, for tests of status and body only.
fn in_process() -> TestClient {
    TestClient::new(router())
}

fn router() -> Router {
    let mut r = Router::new();
    r.post("/users", |req: Request| -> Result<(), natron::Error> {
        let user: NewUser = req.json()?;
        req.respond_json(201, (), &user);
        Ok(())
    });
    r.post("/todos", |req: Request| -> Result<(), natron::Error> {
        let todo: Value = req.json()?;
        let location = format!("/todos/{}", todo["id"]);
        req.respond_json(201, [("Location", location.as_str())], &todo);
        Ok(())
    });
    r.get("/problem", |req: Request| {
        // RFC 9457: the caller's Content-Type wins over application/json.
        let problem = json!({ "type": "about:blank", "status": 409 });
        req.respond_json(
            409,
            [("Content-Type", "application/problem+json")],
            &problem,
        );
    });
    r.patch("/users", |req: Request| -> Result<(), natron::Error> {
        let patch: Value = req.json()?;
        req.respond_json(200, (), &patch);
        Ok(())
    });
    r.put("/parts", |req: Request| -> Result<(), natron::Error> {
        // The split form: the responder dropped by `?` is answered too.
        let (parts, responder) = req.into_parts();
        let v: Value = parts.json()?;
        responder.respond_json(200, (), &json!({ "got": v }));
        Ok(())
    });
    r.post("/numbers", |req: Request| -> Result<(), natron::Error> {
        let n: Numbers = req.json()?;
        req.respond_json(200, (), &n);
        Ok(())
    });
    r.post("/value", |req: Request| -> Result<(), natron::Error> {
        let v: Value = req.json()?;
        req.respond_json(200, (), &v);
        Ok(())
    });
    r.get("/users/@id", |req: Request| -> Result<(), natron::Error> {
        let id: u64 = req.path_param_as("id")?;
        req.respond_json(200, (), &json!({ "id": id }));
        Ok(())
    });
    r.get("/typo/@id", |req: Request| -> Result<(), natron::Error> {
        let id: u64 = req.path_param_as("idd")?;
        req.respond(200, (), format!("{id}"));
        Ok(())
    });
    r.get("/search", |req: Request| -> Result<(), natron::Error> {
        let s: Search = req.query_as()?;
        req.respond_json(200, (), &s);
        Ok(())
    });
    r.get("/page", |req: Request| -> Result<(), natron::Error> {
        let page: u32 = req.query_param_as("page")?.unwrap_or(1);
        req.respond(200, (), format!("page {page}"));
        Ok(())
    });
    r.get("/things/@id", |req: Request| -> Result<(), natron::Error> {
        match req.path_param_as::<u64>("id")? {
            0 => Err(natron::Error::json(404, &json!({"error": "no such thing"}))),
            1 => {
                let map: BTreeMap<Vec<u8>, u32> = [(vec![1], 1)].into();
                Err(natron::Error::json(404, &map))
            }
            id => {
                req.respond_json(200, (), &json!({ "id": id }));
                Ok(())
            }
        }
    });
    r.get("/unserialisable", |req: Request| {
        // serde_json refuses keys that are not strings.
        let map: BTreeMap<Vec<u8>, u32> = [(vec![1, 2], 3)].into();
        req.respond_json(200, (), &map);
    });
    r
}

/// A request with `Content-Type: ct` (none when empty) and `body`.
fn with_body(method: &str, path: &str, ct: &str, body: &str) -> String {
    let ct = if ct.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {ct}\r\n")
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn post_json(s: &TestServer, path: &str, body: &str) -> Response {
    s.request(with_body("POST", path, "application/json", body))
}

fn get(s: &TestServer, path: &str) -> Response {
    s.request(common::get(path))
}

fn json_of(r: &Response) -> Value {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    serde_json::from_slice(&r.body).expect("a JSON body")
}

#[track_caller]
fn assert_error(r: &Response, status: u16, needles: &[&str]) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{r:?}"
    );
    for n in needles {
        assert!(
            r.body_str().contains(n),
            "{status} body {:?} lacks {n:?}",
            r.body_str()
        );
    }
}

fn json_in(r: &TestResponse) -> Value {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    serde_json::from_slice(&r.body).expect("a JSON body")
}

#[test]
fn good_json_round_trips() {
    let c = in_process();
    let post = |body: &str| {
        c.post("/users")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap()
    };
    let r = post(r#" {"name": "Ada", "age": 36} "#);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(json_in(&r), json!({"name": "Ada", "age": 36}));
    // Unicode escapes and raw UTF-8 both decode.
    let r = post(r#"{"name":"\u00e9t\u00e9 ☀","age":1}"#);
    assert_eq!(json_in(&r)["name"], "été ☀");
}

/// `respond_json` with fields, over a socket: a 201 with `Location`, and
/// a problem document whose own `Content-Type` is kept (one field, not
/// two).
#[test]
fn respond_json_takes_fields_and_keeps_a_given_content_type() {
    let s = server();
    let r = post_json(&s, "/todos", r#"{"id": 7, "title": "write docs"}"#);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("location"), Some("/todos/7"));
    assert_eq!(json_of(&r), json!({"id": 7, "title": "write docs"}));
    let r = get(&s, "/problem");
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.header_all("content-type"), ["application/problem+json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({ "type": "about:blank", "status": 409 })
    );
}

#[test]
fn json_media_types_accepted() {
    let s = server();
    for ct in [
        "application/json",
        "Application/JSON; charset=UTF-8",
        "application/json;charset=\"utf-8\"",
        "application/merge-patch+json",
    ] {
        let r = s.request(with_body("PATCH", "/users", ct, r#"{"a":[1,null]}"#));
        assert_eq!(r.status, 200, "{ct}: {r:?}");
        assert_eq!(json_of(&r), json!({"a": [1, null]}), "{ct}");
    }
}

#[test]
fn wrong_content_type_is_415() {
    let s = server();
    let body = r#"{"name":"a","age":1}"#;
    for (ct, needle) in [
        ("text/plain", "Content-Type \"text/plain\" is not JSON"),
        ("", "needs Content-Type: application/json"),
        ("application/x-www-form-urlencoded", "is not JSON"),
        ("application/jsonp", "is not JSON"),
        ("text/json", "is not JSON"),
        (
            "application/json; charset=utf-16",
            "charset \"utf-16\" is not supported",
        ),
    ] {
        let r = s.request(with_body("POST", "/users", ct, body));
        assert_error(&r, 415, &[needle]);
        assert_eq!(r.status_line, "HTTP/1.1 415 Unsupported Media Type");
        // What a POST would be accepted as.
        assert_eq!(r.header("accept-post"), Some("application/json"), "{ct}");
    }
    let r = s.request(with_body("PATCH", "/users", "text/plain", body));
    assert_error(&r, 415, &["is not JSON"]);
    assert_eq!(r.header("accept-patch"), Some("application/json"));
    assert_eq!(r.header("accept-post"), None);
}

#[test]
fn encoded_body_is_415_with_accept_encoding() {
    let s = server();
    let req = "POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
               Content-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}";
    let r = s.request(req);
    assert_error(&r, 415, &["Content-Encoding \"gzip\" is not supported"]);
    assert_eq!(r.header("accept-encoding"), Some("identity"));
    let req = "POST /value HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
               Content-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(json_of(&s.request(req)), json!({}));
}

#[test]
fn bad_json_is_400_with_serde_message() {
    let s = server();
    for (body, needles) in [
        (
            r#"{"name": "a" "age": 3}"#,
            &["JSON body", "expected `,` or `}` at line 1 column 14"][..],
        ),
        (
            "{\n  \"name\": \"a\",\n  \"age\": \"old\"\n}",
            &["JSON body at `age`: invalid type: string \"old\", expected u8 at line 3 column 14"]
                [..],
        ),
        (
            r#"{"name": "a"}"#,
            &["missing field `age` at line 1 column 13"][..],
        ),
        (
            r#"{"name": "a", "age": 3} {}"#,
            &["JSON body: trailing characters at line 1 column 25"][..],
        ),
        (
            r#"{"name": "a", "age": 3"#,
            &["EOF while parsing an object at line 1 column 22"][..],
        ),
        ("   ", &["EOF while parsing a value at line 1 column 3"][..]),
        ("\u{feff}{}", &["expected value at line 1 column 1"][..]),
        (
            r#"{"name": "\ud800", "age": 1}"#,
            &["JSON body at `name`: unexpected end of hex escape"][..],
        ),
    ] {
        let r = post_json(&s, "/users", body);
        assert_error(&r, 400, needles);
        assert_eq!(r.status_line, "HTTP/1.1 400 Bad Request");
    }
    // Not UTF-8 at all.
    let mut req = with_body("POST", "/value", "application/json", "[\"ab\"]").into_bytes();
    let n = req.len();
    req[n - 3] = 0xff;
    assert_error(&s.request(req), 400, &["invalid unicode code point"]);
}

#[test]
fn empty_body_is_400() {
    let s = server();
    let r = post_json(&s, "/users", "");
    assert_error(&r, 400, &["JSON body: empty, expected a JSON value"]);
    // No body at all (no Content-Length) is the same.
    let r = s.request("POST /value HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\r\n");
    assert_error(&r, 400, &["empty"]);
}

#[test]
fn oversized_numbers_are_400() {
    let s = server();
    let ok = post_json(
        &s,
        "/numbers",
        r#"{"small":255,"big":18446744073709551615,"float":1e308}"#,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(json_of(&ok)["big"], json!(u64::MAX));
    for (body, needle) in [
        (
            r#"{"small":256,"big":1,"float":1}"#,
            "at `small`: invalid value: integer `256`, expected u8",
        ),
        (
            r#"{"small":1,"big":18446744073709551616,"float":1}"#,
            "at `big`: invalid type: floating point `1.8446744073709552e+19`, expected u64",
        ),
        (
            r#"{"small":1,"big":-1,"float":1}"#,
            "at `big`: invalid value: integer `-1`, expected u64",
        ),
        (
            r#"{"small":1,"big":1,"float":1e400}"#,
            "at `float`: number out of range at line 1 column 32",
        ),
    ] {
        assert_error(&post_json(&s, "/numbers", body), 400, &[needle]);
    }
    // A 100,000-digit number is no harder.
    let digits = "9".repeat(100_000);
    let r = post_json(
        &s,
        "/numbers",
        &format!(r#"{{"small":1,"big":{digits},"float":1}}"#),
    );
    assert_error(&r, 400, &["JSON body at `big`: number out of range"]);
}

#[test]
fn long_bad_values_are_quoted_short() {
    let s = server();
    let long = "x".repeat(50_000);
    let r = post_json(&s, "/users", &format!(r#"{{"name":"a","age":"{long}"}}"#));
    assert_error(&r, 400, &["JSON body at `age`: invalid type: string \"xxx"]);
    assert!(r.body.len() < 400, "{} bytes", r.body.len());
    assert!(
        r.body_str().ends_with("expected u8 at line 1 column 50020"),
        "{}",
        r.body_str()
    );
}

#[test]
fn deep_nesting_is_400_not_a_stack_overflow() {
    let s = server();
    for open in ["[", "{\"a\":"] {
        let body = open.repeat(100_000);
        let r = post_json(&s, "/value", &body);
        assert_error(&r, 400, &["recursion limit exceeded"]);
    }
    // 100 levels are fine.
    let body = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(post_json(&s, "/value", &body).status, 200);
}

#[test]
fn question_mark_answers_and_keeps_the_connection() {
    let s = server();
    let mut c: Client = s.client();
    // Bad, good, bad, good on one keep-alive connection, pipelined: each
    // `?` answers its own request, in order.
    let mut all = Vec::new();
    all.extend(with_body("POST", "/users", "text/plain", "{}").into_bytes());
    all.extend(
        with_body(
            "POST",
            "/users",
            "application/json",
            r#"{"name":"b","age":2}"#,
        )
        .into_bytes(),
    );
    all.extend(common::get("/users/nope").into_bytes());
    all.extend(with_body("PUT", "/parts", "application/json", "[true]").into_bytes());
    all.extend(with_body("PUT", "/parts", "application/json", "[tru]").into_bytes());
    all.extend(common::get("/page?page=3").into_bytes());
    c.send(&all);
    let r = c.read_response();
    assert_error(&r, 415, &["not JSON"]);
    assert!(!r.closes());
    let r = c.read_response();
    assert_eq!(json_of(&r), json!({"name": "b", "age": 2}));
    let r = c.read_response();
    assert_error(&r, 400, &["path parameter `id`: \"nope\" is not valid"]);
    let r = c.read_response();
    assert_eq!(json_of(&r), json!({"got": [true]}));
    let r = c.read_response();
    assert_error(
        &r,
        400,
        &["JSON body at `[0]`: expected ident at line 1 column 5"],
    );
    c.read_response().assert("HTTP/1.1 200 OK", "page 3");
}

#[test]
fn typed_path_param_bad_value_is_400() {
    let s = server();
    assert_eq!(json_of(&get(&s, "/users/42")), json!({"id": 42}));
    assert_eq!(
        json_of(&get(&s, "/users/18446744073709551615")),
        json!({"id": u64::MAX})
    );
    let r = get(&s, "/users/abc");
    assert_error(&r, 400, &[]);
    assert_eq!(
        r.body_str(),
        "path parameter `id`: \"abc\" is not valid: invalid digit found in string"
    );
    assert_error(
        &get(&s, "/users/18446744073709551616"),
        400,
        &["\"18446744073709551616\" is not valid: number too large to fit in target type"],
    );
    assert_error(
        &get(&s, "/users/-1"),
        400,
        &["\"-1\" is not valid: invalid digit"],
    );
    // Percent-decoded first; controls are escaped in the message.
    assert_error(
        &get(&s, "/users/4%0D%0A2"),
        400,
        &[r#"path parameter `id`: "4\r\n2" is not valid"#],
    );
    // A long value is quoted in part.
    let r = get(&s, &format!("/users/{}", "7".repeat(5000)));
    assert_error(&r, 400, &["number too large"]);
    assert!(r.body.len() < 200, "{}", r.body_str());
}

#[test]
fn missing_path_param_is_a_500_without_detail() {
    let s = server();
    let r = get(&s, "/typo/1");
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "Internal Server Error");
}

#[test]
fn query_extraction() {
    let s = server();
    let r = get(&s, "/search?q=a+b%21&limit=10");
    assert_eq!(json_of(&r), json!({"q": "a b!", "offset": 0, "limit": 10}));
    let r = get(&s, "/search?offset=5&q=");
    assert_eq!(json_of(&r), json!({"q": "", "offset": 5, "limit": null}));
    let r = get(&s, "/search?q=x&limit=ten");
    assert_error(&r, 400, &[]);
    assert_eq!(
        r.body_str(),
        "query parameter `limit`: \"ten\" is not valid: invalid digit found in string"
    );
    assert_error(
        &get(&s, "/search?q=x&offset=-1"),
        400,
        &["query parameter `offset`: \"-1\" is not valid"],
    );
    assert_error(&get(&s, "/search"), 400, &["query: missing field `q`"]);
    assert_error(
        &get(&s, "/search?q=a&q=b"),
        400,
        &["query: duplicate field `q`"],
    );
    // Unknown parameters are ignored, as serde does by default.
    assert_eq!(json_of(&get(&s, "/search?q=z&utm=1"))["q"], "z");
}

#[test]
fn query_param_as() {
    let c = in_process();
    let get = |target: &str| {
        let r = c.get(target).send().unwrap();
        (r.status, r.text())
    };
    assert_eq!(get("/page"), (200, "page 1".to_owned()));
    assert_eq!(get("/page?page=7"), (200, "page 7".to_owned()));
    let (status, body) = get("/page?page=4294967296");
    assert_eq!(status, 400);
    assert!(
        body.starts_with("query parameter `page`: \"4294967296\" is not valid: number too large"),
        "{body}"
    );
    let (status, body) = get("/page?page=");
    assert_eq!(status, 400);
    assert!(body.contains("\"\" is not valid"), "{body}");
}

#[test]
fn unserialisable_response_is_500() {
    let s = server();
    let mut c = s.client();
    c.send(common::get("/unserialisable"));
    let r = c.read_response();
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.body_str(), "Internal Server Error");
    // The connection carries on.
    c.send(common::get("/users/1"));
    assert_eq!(json_of(&c.read_response()), json!({"id": 1}));
}

#[test]
fn json_responses_compress_like_any() {
    let s = server();
    let big: Vec<u32> = (0..2000).collect();
    let body = serde_json::to_string(&big).unwrap();
    let req = format!(
        "PATCH /users HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = s.request(req);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut plain).unwrap();
    assert_eq!(plain, body.as_bytes());
}

#[test]
fn json_errors() {
    let s = server();
    let r = get(&s, "/things/0");
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
    assert_eq!(json_of(&r), json!({"error": "no such thing"}));
    // Not serialisable: a plain 500, no detail.
    let r = get(&s, "/things/1");
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "Internal Server Error");
    assert_eq!(json_of(&get(&s, "/things/2")), json!({"id": 2}));
}

/// A route that streams its body has nothing buffered for `json()`: the
/// answer must not be `400` "empty" (blaming a client that sent valid
/// JSON), but a `500` naming the server's mistake.
#[test]
fn json_on_a_streamed_body_is_a_server_error_not_an_empty_body() {
    let mut r = Router::new();
    r.post("/streamed", |req: Request| -> Result<(), natron::Error> {
        let user: NewUser = req.json()?;
        req.respond_json(201, (), &user);
        Ok(())
    })
    .stream_body();
    let s = serve(r);
    let resp = post_json(&s, "/streamed", r#"{"name":"a","age":1}"#);
    assert_error(&resp, 500, &["body_reader"]);
}
