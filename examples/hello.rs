//! The smallest natron server: `cargo run --example hello`, then
//! `curl http://localhost:8080/`.

use natron::{Request, Router, Server};

fn main() {
    let mut router = Router::new();
    router.get("/", |req: Request| {
        req.respond(200, [("Content-Type", "text/plain")], "Hello, World!");
    });
    router.get("/hello/@name", |req: Request| {
        let body = format!("Hello, {}!", req.path_param("name").unwrap_or("stranger"));
        req.respond(200, [("Content-Type", "text/plain")], body);
    });
    let server = Server::new(router);
    println!("serving on http://localhost:8080");
    // A port in use is an error that names the address; say it and fail.
    if let Err(e) = server.serve(("localhost", 8080)) {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}
