//! Application state shared by every handler: values registered once with
//! [`ServerBuilder::state`] and taken by type with [`Request::state`].
//!
//! The map is built before the server starts and never changes after, so
//! reading it takes no lock and costs a request nothing: it lives in the
//! server's settings, which every connection already points to. What the
//! state guards inside (a `Mutex`, an atomic, a pool) is the user's; no
//! natron lock is held while a handler uses it.

use crate::handler::Error;
use crate::http::{Request, Responder};
use crate::websocket::WebSocket;
use crate::ServerBuilder;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// One value per type, shared by every handler of a server. A clone is
/// one reference count: each WebSocket keeps one, for
/// [`WebSocket::state`].
#[derive(Clone, Default)]
pub(crate) struct States(Arc<HashMap<TypeId, Entry>>);

/// A value and its type's name (for the error naming a missing type).
type Entry = (&'static str, Arc<dyn Any + Send + Sync>);

impl States {
    /// Only while building: the map is shared once the server starts.
    fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.0).insert(
            TypeId::of::<T>(),
            (std::any::type_name::<T>(), Arc::new(value)),
        );
    }

    pub(crate) fn find<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|(_, v)| v.clone().downcast::<T>().ok())
    }

    fn get<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, Error> {
        self.find()
            // A programming error, not the client's: a plain 500; the
            // cause, naming the type, goes to the log.
            .ok_or_else(|| Error::from(Missing(std::any::type_name::<T>())))
    }
}

impl fmt::Debug for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.0.values().map(|(name, _)| name))
            .finish()
    }
}

/// The cause of [`Request::state`]'s error.
#[derive(Debug)]
struct Missing(&'static str);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no state of type {} (register it with ServerBuilder::state)",
            self.0
        )
    }
}

impl std::error::Error for Missing {}

impl ServerBuilder {
    /// Shares `value` with every handler of the server, which gets it with
    /// [`Request::state::<T>()`](Request::state). One value per type:
    /// registering a second value of the same type replaces the first.
    /// Several types may be registered (a database pool, a config, a
    /// [`PubSub`](crate::PubSub) hub...).
    ///
    /// The value is read-only to handlers (an `Arc<T>`); mutable state goes
    /// behind a `Mutex`, `RwLock` or atomics inside `T`. It lives as long
    /// as the server and is dropped after the last connection ends.
    ///
    /// This saves cloning an `Arc` into every route's closure, and lets
    /// handlers be plain `fn`s:
    ///
    /// ```
    /// use natron::{test::TestClient, Error, Request, Router, Server};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// #[derive(Default)]
    /// struct Hits(AtomicU64);
    ///
    /// fn count(req: Request) -> Result<(), Error> {
    ///     let hits = req.state::<Hits>()?;
    ///     let n = hits.0.fetch_add(1, Ordering::Relaxed) + 1;
    ///     req.respond(200, (), n.to_string());
    ///     Ok(())
    /// }
    ///
    /// let mut router = Router::new();
    /// router.get("/count", count);
    /// let client = TestClient::with_server(
    ///     Server::builder().state(Hits::default()).handler(router),
    /// );
    /// assert_eq!(client.get("/count").send().unwrap().text(), "1");
    /// assert_eq!(client.get("/count").send().unwrap().text(), "2");
    /// ```
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.config.states.insert(value);
        self
    }
}

impl Request {
    /// The value of type `T` registered with [`ServerBuilder::state`],
    /// shared by every handler of the server. Takes no lock (the map is
    /// fixed when the server starts) and costs one reference count: the
    /// `Arc` is the handler's, so it may outlive the request, as when the
    /// handler answers while it still holds a guard of the state:
    ///
    /// ```
    /// use natron::{test::TestClient, Error, Request, Server};
    /// use std::sync::Mutex;
    ///
    /// fn list(req: Request) -> Result<(), Error> {
    ///     let names = req.state::<Mutex<Vec<String>>>()?;
    ///     let names = names.lock().unwrap();
    ///     req.respond(200, (), names.join(","));
    ///     Ok(())
    /// }
    /// let names = Mutex::new(vec!["ada".to_owned(), "grace".to_owned()]);
    /// let client = TestClient::with_server(Server::builder().state(names).handler(list));
    /// assert_eq!(client.get("/").send().unwrap().text(), "ada,grace");
    /// ```
    ///
    /// Any type works as a key; a newtype says what the value is for:
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// struct Greeting(&'static str);
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .state(Greeting("hello"))
    ///         .handler(|req: Request| -> Result<(), natron::Error> {
    ///             let greeting = req.state::<Greeting>()?.0;
    ///             req.respond(200, (), greeting);
    ///             Ok(())
    ///         }),
    /// );
    /// assert_eq!(client.get("/").send().unwrap().text(), "hello");
    /// ```
    ///
    /// # Errors
    ///
    /// No value of type `T` was registered (a programming error, e.g.
    /// `state::<Arc<Db>>()` where a `Db` was registered): an [`Error`]
    /// answered `500 Internal Server Error`, whose cause names the type;
    /// returned from a handler with `?`, that cause is logged.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, Error> {
        self.responder.state()
    }
}

impl Responder {
    /// As [`Request::state`], for a request split with
    /// [`Request::into_parts`].
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// let client = TestClient::with_server(Server::builder().state(7u32).handler(
    ///     |req: Request| -> Result<(), natron::Error> {
    ///         let (_parts, responder) = req.into_parts();
    ///         let n = *responder.state::<u32>()?;
    ///         responder.respond(200, (), n.to_string());
    ///         Ok(())
    ///     },
    /// ));
    /// assert_eq!(client.get("/").send().unwrap().text(), "7");
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Request::state`].
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, Error> {
        self.connection().app.config.states.get()
    }
}

impl WebSocket {
    /// As [`Request::state`], for a WebSocket's handler: the value of type
    /// `T` registered with [`ServerBuilder::state`], or `None` if none was
    /// (a WebSocket event has no response to answer with, so no `Error`).
    ///
    /// ```
    /// use natron::{Message, Router, Server, WebSocket, WebSocketEvent};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// struct Messages(AtomicU64);
    ///
    /// let mut router = Router::new();
    /// router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
    ///     if let WebSocketEvent::Message(Message::Text(_)) = event {
    ///         let count = ws.state::<Messages>().expect("registered");
    ///         let n = count.0.fetch_add(1, Ordering::Relaxed) + 1;
    ///         let _ = ws.send_text(&format!("message {n} on this server"));
    ///     }
    /// });
    /// let server = Server::builder()
    ///     .state(Messages(AtomicU64::new(0)))
    ///     .handler(router)
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// # for expected in ["message 1 on this server", "message 2 on this server"] {
    /// #     let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// #     client.send(tungstenite::Message::text("hi")).unwrap();
    /// #     assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), expected);
    /// # }
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.shared.states.find()
    }
}
