//! `natron::test::TestClient`: the in-process client itself.

use natron::test::{TestClient, TestError};
use natron::{Request, Router};
use std::time::Duration;

#[test]
fn post_with_a_body() {
    let mut router = Router::new();
    router.post("/echo", |req: Request| {
        let body = req.body().to_vec();
        req.respond(200, [("Content-Type", "text/plain")], body)
    });
    let client = TestClient::new(router).timeout(Duration::from_secs(2));
    let res = client.post("/echo").body("hi").send();
    match &res {
        Err(TestError::Timeout { written, .. }) => panic!("{written}"),
        _ => {}
    }
    assert_eq!(res.unwrap().text(), "hi");
}
