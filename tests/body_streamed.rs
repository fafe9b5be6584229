//! `Parts::is_body_streamed` says how the route receives its body: before
//! and after `body_reader` takes the stream, and on a clone of the parts
//! (which carries no stream). Over loopback.

mod common;

use common::*;
use natron::{Parts, Request, Router};
use std::io::Read;

fn router() -> Router {
    let mut router = Router::new();
    let handler = |mut req: Request| -> Result<(), natron::Error> {
        let before = req.is_body_streamed();
        let clone: Parts = (*req).clone();
        let mut body = String::new();
        req.body_reader().read_to_string(&mut body)?;
        let after = req.is_body_streamed();
        let cloned = clone.is_body_streamed();
        req.respond(
            200,
            (),
            format!("{body}: before={before} after={after} clone={cloned}"),
        );
        Ok(())
    };
    router.post("/streamed", handler).stream_body();
    router.post("/buffered", handler);
    router
        .post("/form", |req: Request| match req.multipart() {
            Ok(form) => req.respond(200, (), format!("{} parts", form.len())),
            Err(e) => req.respond(500, (), format!("{e:?}: {e}")),
        })
        .stream_body();
    #[cfg(feature = "json")]
    router
        .post("/json", |mut req: Request| -> Result<(), natron::Error> {
            drop(req.body_reader());
            let v: serde_json::Value = req.json()?;
            req.respond(200, (), v.to_string());
            Ok(())
        })
        .stream_body();
    router
}

#[test]
fn is_body_streamed_holds_after_body_reader_and_on_a_clone() {
    let server = start(builder().handler(router()));
    let r = server.request("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    r.assert("HTTP/1.1 200 OK", "hi: before=true after=true clone=true");
    let r = server.request("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    r.assert(
        "HTTP/1.1 200 OK",
        "hi: before=false after=false clone=false",
    );
    server.stop_ok();
}

/// A streamed body whose reader was taken is still not `json()`'s to
/// parse: the server's `500` (the route streams), not the client's `400`
/// ("empty").
#[cfg(feature = "json")]
#[test]
fn json_after_body_reader_on_a_streamed_route_is_500() {
    let server = start(builder().handler(router()));
    let r = server.request(
        "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert_eq!(r.status, 500, "{r:?}");
    server.stop_ok();
}

/// `multipart()` on a streamed route says the route streams, not that the
/// (unbuffered) body is malformed.
#[test]
fn multipart_on_a_streamed_route_says_so() {
    let server = start(builder().handler(router()));
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n";
    let r = server.request(format!(
        "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.body_str().starts_with("BodyStreamed: the route streams"),
        "{r:?}"
    );
    server.stop_ok();
}
