//! The smallest natron server: `cargo run --example hello`, then
//! `curl localhost:8080/hello/ada` or `curl localhost:8080/add/2/40`.

use natron::{Error, Request, Router, Server};

pub fn router() -> Router {
    let mut router = Router::new();
    router
        .get("/", |req: Request| req.respond(200, (), "Hello, World!\n"))
        .get("/hello/@name", |req: Request| {
            let name = req.path_param("name").unwrap_or_default().to_owned();
            req.respond(200, (), format!("Hello, {name}!\n"));
        })
        // `?` answers a parameter that is not a number with a `400` naming it.
        .get("/add/@a/@b", |req: Request| -> Result<(), Error> {
            let a: i64 = req.path_param_as("a")?;
            let b: i64 = req.path_param_as("b")?;
            let sum = a
                .checked_add(b)
                .ok_or(Error::new(422, "the sum overflows"))?;
            req.respond(200, (), format!("{sum}\n"));
            Ok(())
        });
    router
}

fn main() {
    println!("serving on http://localhost:8080");
    if let Err(e) = Server::new(router()).serve(("localhost", 8080)) {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}
