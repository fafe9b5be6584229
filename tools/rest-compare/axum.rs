//! examples/rest.rs for axum 0.8 + tower-http 0.6 (cors, fs, trace) +
//! tracing, tracing-subscriber, tokio, serde, serde_json. Same routes, same answers.

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

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

#[derive(Clone)]
struct AppState {
    db: Arc<Mutex<Store>>,
    token: Arc<str>,
}

const MAX_PAGE: usize = 100;

fn not_found(id: u64) -> Response {
    let body = Json(serde_json::json!({ "error": format!("no todo {id}") }));
    (StatusCode::NOT_FOUND, body).into_response()
}

async fn list(State(s): State<AppState>, Query(page): Query<Page>) -> Json<Vec<Todo>> {
    let limit = page.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let store = s.db.lock().unwrap();
    Json(
        store
            .todos
            .values()
            .skip(page.offset)
            .take(limit)
            .cloned()
            .collect(),
    )
}

async fn show(State(s): State<AppState>, Path(id): Path<u64>) -> Result<Json<Todo>, Response> {
    let todo = s.db.lock().unwrap().todos.get(&id).cloned();
    todo.map(Json).ok_or_else(|| not_found(id))
}

async fn create(State(s): State<AppState>, Json(new): Json<NewTodo>) -> impl IntoResponse {
    let mut store = s.db.lock().unwrap();
    store.last_id += 1;
    let todo = Todo {
        id: store.last_id,
        title: new.title,
        done: new.done,
    };
    store.todos.insert(todo.id, todo.clone());
    let location = format!("/api/todos/{}", todo.id);
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(todo),
    )
}

async fn replace(
    State(s): State<AppState>,
    Path(id): Path<u64>,
    Json(new): Json<NewTodo>,
) -> Result<Json<Todo>, Response> {
    let mut store = s.db.lock().unwrap();
    let todo = store.todos.get_mut(&id).ok_or_else(|| not_found(id))?;
    (todo.title, todo.done) = (new.title, new.done);
    Ok(Json(todo.clone()))
}

async fn update(
    State(s): State<AppState>,
    Path(id): Path<u64>,
    Json(patch): Json<TodoPatch>,
) -> Result<Json<Todo>, Response> {
    let mut store = s.db.lock().unwrap();
    let todo = store.todos.get_mut(&id).ok_or_else(|| not_found(id))?;
    if let Some(title) = patch.title {
        todo.title = title;
    }
    if let Some(done) = patch.done {
        todo.done = done;
    }
    Ok(Json(todo.clone()))
}

async fn remove(State(s): State<AppState>, Path(id): Path<u64>) -> Result<StatusCode, Response> {
    let removed = s.db.lock().unwrap().todos.remove(&id);
    removed
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| not_found(id))
}

async fn bearer_auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if token == Some(&*s.token) {
        return next.run(req).await;
    }
    let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"todos\"")];
    (
        StatusCode::UNAUTHORIZED,
        challenge,
        "a valid bearer token is required\n",
    )
        .into_response()
}

fn router(token: &str, static_dir: &str) -> Router {
    let state = AppState {
        db: Arc::default(),
        token: token.into(),
    };
    // The guard applies to the routes added before `route_layer`, only.
    let writes = Router::new()
        .route("/api/todos", post(create))
        .route(
            "/api/todos/{id}",
            axum::routing::put(replace).patch(update).delete(remove),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), bearer_auth));
    let reads = Router::new()
        .route("/api/todos", get(list))
        .route("/api/todos/{id}", get(show));
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    reads
        .merge(writes)
        .fallback_service(ServeDir::new(static_dir))
        .layer(cors)
        // TraceLayer logs at DEBUG unless told otherwise.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "localhost:8080".into());
    let token = std::env::var("REST_TOKEN").unwrap_or_else(|_| "s3cret".into());
    let static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rest_static");
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rest: {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on http://{addr}");
    axum::serve(listener, router(&token, static_dir))
        .await
        .unwrap();
}
