//! examples/rest.rs for tiny_http 0.12 + serde, serde_json,
//! serde_urlencoded, mime_guess, slog, slog-term. Same routes, same
//! answers; routing, CORS, static files, auth and the access log by hand,
//! as tiny_http has none of them.

use serde::{Deserialize, Serialize};
use slog::{info, Drain};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tiny_http::{Header, Method, Request, Response, Server};

#[derive(Clone, Serialize)]
struct Todo {
    id: u64,
    title: String,
    done: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTodo {
    title: String,
    #[serde(default)]
    done: bool,
}

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

#[derive(Default)]
struct Store {
    todos: BTreeMap<u64, Todo>,
    last_id: u64,
}

type Db = Arc<Mutex<Store>>;
type Reply = Response<std::io::Cursor<Vec<u8>>>;

const MAX_PAGE: usize = 100;
const MAX_BODY: u64 = 1 << 20;

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).unwrap()
}

fn text(status: u16, body: impl Into<String>) -> Reply {
    Response::from_string(body.into())
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn json<T: Serialize>(status: u16, value: &T) -> Reply {
    Response::from_data(serde_json::to_vec(value).unwrap())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

fn not_found(id: u64) -> Reply {
    json(
        404,
        &serde_json::json!({ "error": format!("no todo {id}") }),
    )
}

fn get_header<'a>(req: &'a Request, name: &'static str) -> Option<&'a str> {
    let h = req.headers().iter().find(|h| h.field.equiv(name))?;
    Some(h.value.as_str())
}

fn authorized(req: &Request, token: &str) -> bool {
    get_header(req, "Authorization")
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, t)| t.trim() == token)
}

fn read_json<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T, Reply> {
    let ct = get_header(req, "Content-Type").unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap()
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(text(415, "expected application/json")
            .with_header(header("Accept-Post", "application/json")));
    }
    let mut body = Vec::new();
    if req
        .as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .is_err()
    {
        return Err(text(400, "could not read the body"));
    }
    if body.len() as u64 > MAX_BODY {
        return Err(text(413, "body too large"));
    }
    serde_json::from_slice(&body).map_err(|e| text(400, format!("JSON body: {e}")))
}

fn parse_id(s: &str) -> Result<u64, Reply> {
    s.parse()
        .map_err(|e| text(400, format!("path parameter `id`: {s:?} is not valid: {e}")))
}

fn serve_file(static_dir: &str, path: &str) -> Reply {
    let rel = Path::new(path.trim_start_matches('/'));
    // Refuse `..` and absolute components: nothing outside the directory.
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return text(400, "bad path");
    }
    let mut file = Path::new(static_dir).join(rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    match std::fs::read(&file) {
        Ok(data) => {
            let mime = mime_guess::from_path(&file).first_or_octet_stream();
            Response::from_data(data).with_header(header("Content-Type", mime.as_ref()))
        }
        Err(_) => text(404, "not found"),
    }
}

fn route(req: &mut Request, db: &Db, token: &str, static_dir: &str) -> Result<Reply, Reply> {
    let url = req.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let api = matches!(segments.as_slice(), ["api", "todos", ..]);
    if method == Method::Options && get_header(req, "Access-Control-Request-Method").is_some() {
        return Ok(Response::from_data(Vec::new())
            .with_status_code(204)
            .with_header(header(
                "Access-Control-Allow-Methods",
                "GET, POST, PUT, PATCH, DELETE",
            ))
            .with_header(header(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type",
            )));
    }
    let writing = !matches!(method, Method::Get | Method::Head);
    if api && writing && !authorized(req, token) {
        return Err(text(401, "a valid bearer token is required\n")
            .with_header(header("WWW-Authenticate", "Bearer realm=\"todos\"")));
    }
    match (method, segments.as_slice()) {
        (Method::Get, ["api", "todos"]) => {
            let page: Page =
                serde_urlencoded::from_str(query).map_err(|e| text(400, format!("query: {e}")))?;
            let limit = page.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
            let store = db.lock().unwrap();
            let todos: Vec<&Todo> = store.todos.values().skip(page.offset).take(limit).collect();
            Ok(json(200, &todos))
        }
        (Method::Get, ["api", "todos", id]) => {
            let id = parse_id(id)?;
            let todo = db.lock().unwrap().todos.get(&id).cloned();
            Ok(json(200, &todo.ok_or_else(|| not_found(id))?))
        }
        (Method::Post, ["api", "todos"]) => {
            let new: NewTodo = read_json(req)?;
            let mut store = db.lock().unwrap();
            store.last_id += 1;
            let todo = Todo {
                id: store.last_id,
                title: new.title,
                done: new.done,
            };
            store.todos.insert(todo.id, todo.clone());
            let location = format!("/api/todos/{}", todo.id);
            Ok(json(201, &todo).with_header(header("Location", &location)))
        }
        (Method::Put, ["api", "todos", id]) => {
            let id = parse_id(id)?;
            let new: NewTodo = read_json(req)?;
            let mut store = db.lock().unwrap();
            let todo = store.todos.get_mut(&id).ok_or_else(|| not_found(id))?;
            (todo.title, todo.done) = (new.title, new.done);
            Ok(json(200, todo))
        }
        (Method::Patch, ["api", "todos", id]) => {
            let id = parse_id(id)?;
            let patch: TodoPatch = read_json(req)?;
            let mut store = db.lock().unwrap();
            let todo = store.todos.get_mut(&id).ok_or_else(|| not_found(id))?;
            if let Some(title) = patch.title {
                todo.title = title;
            }
            if let Some(done) = patch.done {
                todo.done = done;
            }
            Ok(json(200, todo))
        }
        (Method::Delete, ["api", "todos", id]) => {
            let id = parse_id(id)?;
            db.lock()
                .unwrap()
                .todos
                .remove(&id)
                .ok_or_else(|| not_found(id))?;
            Ok(Response::from_data(Vec::new()).with_status_code(204))
        }
        (_, ["api", "todos", ..]) => Err(text(405, "method not allowed")),
        (Method::Get | Method::Head, _) => Ok(serve_file(static_dir, path)),
        _ => Err(text(405, "method not allowed")),
    }
}

fn main() {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "localhost:8080".into());
    let token = std::env::var("REST_TOKEN").unwrap_or_else(|_| "s3cret".into());
    let static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rest_static");
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let log = slog::Logger::root(drain, slog::o!());
    let server = match Server::http(&addr) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("rest: {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on http://{addr}");
    let db = Db::default();
    // tiny_http hands out requests; the threads are ours to make.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (server, db, token, log) = (server.clone(), db.clone(), token.clone(), log.clone());
            std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let started = Instant::now();
                    let reply = route(&mut req, &db, &token, static_dir).unwrap_or_else(|e| e);
                    let reply = match get_header(&req, "Origin") {
                        Some(_) => reply.with_header(header("Access-Control-Allow-Origin", "*")),
                        None => reply,
                    };
                    let status = reply.status_code().0;
                    let (method, path) = (req.method().to_string(), req.url().to_owned());
                    let _ = req.respond(reply);
                    let us = started.elapsed().as_micros() as u64;
                    info!(log, "request"; "method" => method, "path" => path,
                          "status" => status, "duration_us" => us);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}
