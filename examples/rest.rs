//! A JSON CRUD service: todos in memory, an access log, CORS, static files
//! and a bearer-token guard on the writing routes.
//!
//! ```text
//! cargo run --release --features json --example rest [-- --addr HOST:PORT]   (default localhost:8080)
//! curl -i localhost:8080/api/todos?limit=10
//! curl -i -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/json' \
//!      -d '{"title":"write docs"}' localhost:8080/api/todos          -> 201, Location
//! curl -i -X PATCH -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/json' \
//!      -d '{"done":true}' localhost:8080/api/todos/1
//! curl -i -X DELETE -H 'Authorization: Bearer s3cret' localhost:8080/api/todos/1  -> 204
//! ```
//!
//! The token is `$REST_TOKEN`, or `s3cret` when it is unset. `GET /` serves
//! `examples/rest_static/index.html`. `tests/rest.rs` drives this file.

use natron::middleware::{AccessLog, Cors, Middleware};
use natron::{Error, Parts, Request, Response, Router, Server};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Serialize)]
pub struct Todo {
    pub id: u64,
    pub title: String,
    pub done: bool,
}

/// A `POST` body. Unknown fields are refused, so a typo is a `400`
/// rather than a field silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTodo {
    title: String,
    #[serde(default)]
    done: bool,
}

/// A `PATCH` body: absent fields keep their value. `PUT` uses [`NewTodo`]
/// because it replaces the whole todo.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TodoPatch {
    title: Option<String>,
    done: Option<bool>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// Ordered by id, so pages are stable; ids are never reused.
#[derive(Default)]
struct Store {
    todos: BTreeMap<u64, Todo>,
    last_id: u64,
}

type Db = Arc<Mutex<Store>>;

/// A page never exceeds this, whatever `limit` asks for.
const MAX_PAGE: usize = 100;

fn not_found(id: u64) -> Error {
    Error::json(
        404,
        &serde_json::json!({ "error": format!("no todo {id}") }),
    )
}

/// Admits requests bearing `Authorization: Bearer <token>` (RFC 6750).
pub struct BearerAuth {
    token: String,
}

impl Middleware for BearerAuth {
    fn before(&self, req: &mut Parts) -> Result<(), Response> {
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = req
            .header("authorization")
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if token == Some(self.token.as_str()) {
            return Ok(());
        }
        // RFC 6750 §3: the challenge says which scheme would be accepted.
        Err(Response::new(
            401,
            [("WWW-Authenticate", "Bearer realm=\"todos\"")],
            "a valid bearer token is required\n",
        ))
    }
}

/// The service. `token` guards `POST`, `PUT`, `PATCH` and `DELETE`;
/// `static_dir` is served at `/`.
pub fn router(token: &str, static_dir: &str) -> Router {
    let db = Db::default();
    let mut router = Router::new();
    router.wrap(AccessLog::new()).wrap(
        Cors::new()
            .allow_any_origin()
            .allow_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
            .allow_headers(["Authorization", "Content-Type"]),
    );

    let d = db.clone();
    router.get("/api/todos", move |req: Request| -> Result<(), Error> {
        let page: Page = req.query_as()?;
        let limit = page.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let store = d.lock().unwrap();
        let todos: Vec<&Todo> = store.todos.values().skip(page.offset).take(limit).collect();
        req.respond_json(200, (), &todos);
        Ok(())
    });
    let d = db.clone();
    router.get("/api/todos/@id", move |req: Request| -> Result<(), Error> {
        let id: u64 = req.path_param_as("id")?;
        let todo = d.lock().unwrap().todos.get(&id).cloned();
        req.respond_json(200, (), &todo.ok_or_else(|| not_found(id))?);
        Ok(())
    });

    let token = token.to_owned();
    router.group("/api/todos", move |api| {
        api.wrap(BearerAuth { token });
        let d = db.clone();
        api.post("/", move |req: Request| -> Result<(), Error> {
            let new: NewTodo = req.json()?;
            let mut store = d.lock().unwrap();
            store.last_id += 1;
            let todo = Todo {
                id: store.last_id,
                title: new.title,
                done: new.done,
            };
            store.todos.insert(todo.id, todo.clone());
            drop(store);
            // RFC 9110 §15.3.2: a 201 names the new resource.
            let location = format!("/api/todos/{}", todo.id);
            req.respond_json(201, [("Location", location.as_str())], &todo);
            Ok(())
        });
        let d = db.clone();
        api.put("/@id", move |req: Request| -> Result<(), Error> {
            let id: u64 = req.path_param_as("id")?;
            let new: NewTodo = req.json()?;
            let mut store = d.lock().unwrap();
            let todo = store.todos.get_mut(&id).ok_or_else(|| not_found(id))?;
            (todo.title, todo.done) = (new.title, new.done);
            let todo = todo.clone();
            drop(store);
            req.respond_json(200, (), &todo);
            Ok(())
        });
        let d = db.clone();
        api.patch("/@id", move |req: Request| -> Result<(), Error> {
            let id: u64 = req.path_param_as("id")?;
            let patch: TodoPatch = req.json()?;
            let mut store = d.lock().unwrap();
            let todo = store.todos.get_mut(&id).ok_or_else(|| not_found(id))?;
            if let Some(title) = patch.title {
                todo.title = title;
            }
            if let Some(done) = patch.done {
                todo.done = done;
            }
            let todo = todo.clone();
            drop(store);
            req.respond_json(200, (), &todo);
            Ok(())
        });
        let d = db;
        api.delete("/@id", move |req: Request| -> Result<(), Error> {
            let id: u64 = req.path_param_as("id")?;
            d.lock()
                .unwrap()
                .todos
                .remove(&id)
                .ok_or_else(|| not_found(id))?;
            req.respond(204, (), "");
            Ok(())
        });
    });

    router.serve_dir("/", static_dir);
    router
}

/// Where `index.html` is, wherever the example is run from.
pub const STATIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rest_static");

fn main() {
    use slog::Drain;
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "localhost:8080".into());
    let token = std::env::var("REST_TOKEN").unwrap_or_else(|_| "s3cret".into());
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let server = Server::builder()
        .logger(slog::Logger::root(drain, slog::o!()))
        .handler(router(&token, STATIC_DIR))
        .build();
    println!("listening on http://{addr}");
    if let Err(e) = server.serve(addr.as_str()) {
        eprintln!("rest: {e}");
        std::process::exit(1);
    }
}
