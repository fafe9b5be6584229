//! Publish/subscribe: topics of WebSockets and Server-Sent-Events streams,
//! with encode-once fan-out.
//!
//! A [`PubSub`] hub maps topic names to their subscribers. `publish`
//! encodes the message into one frame, once, and queues that same frame
//! (shared, not copied) for every subscriber's IO actor, which writes it
//! with `writev` straight from the shared buffer. Event streams
//! ([`PubSub::subscribe_events`]) get the message as one event, encoded
//! and framed once per publish for all of them.
//!
//! # Guarantees
//!
//! * **Any thread, never blocking.** Every method works from request
//!   handlers, WebSocket handlers and any other thread; none waits for a
//!   socket. No lock is held while a frame is queued.
//! * **Order.** Messages published by one thread to one topic reach every
//!   subscriber in publish order. On one connection, [`WebSocket::send`]
//!   and `publish` calls made by one thread arrive in call order (they
//!   share the connection's one outbound queue).
//! * **Subscriptions end at close.** A WebSocket's subscriptions end by
//!   themselves when the connection closes, before its `Close` event is
//!   handled; no handler code is needed. A subscribe racing the close is
//!   either refused ([`SendError::Closed`]) or ended by it, never left
//!   behind (`actor/ledger.rs`, proved by `models/subscribe_close.rs`).
//!   Ending them costs O(the connection's topics): each connection keeps
//!   the reverse index of its own.
//! * **Slow subscribers.** A subscriber whose outbound budget
//!   (`max_outbound_len`) is full is closed with `1008` (logged), exactly
//!   as a direct `send` would close it; the others are not slowed, and
//!   nothing is sent to it after that decision, so it never sees a gap in
//!   the middle of a stream.
//! * **Delivery** is at most once per subscriber and publish: to the
//!   subscribers present when `publish` reads the topic.
//!
//! A hub is independent of any server: create one, give clones to the
//! handlers that need it. Subscribing a WebSocket of any server works.
//!
//! # Across nodes (feature `redis`)
//!
//! [`PubSub::with_redis`] joins the hubs of several processes through a
//! Redis server: see the [`redis`] module for its
//! guarantees (local delivery first and never delayed by Redis; exactly
//! once per subscriber; per-node order; at-most-once across an outage).

use crate::actor::ledger::Closed;
use crate::http::sse::{Event, EventStream};
use crate::http::stream::{Framing, StreamError};
use crate::io::writer::Chunk;
use crate::io::{IoHandle, IoMsg};
use crate::websocket::{Message, SendError, WebSocket, WsShared};
use dashmap::DashMap;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

#[cfg(feature = "redis")]
pub mod redis;

/// A pub/sub hub: topics of WebSockets. Cheap to clone (clones share the
/// topics); `Send + Sync`.
///
/// ```
/// use natron::{Message, PubSub, Request, Router, WebSocket, WebSocketEvent};
///
/// let hub = PubSub::new();
/// let mut router = Router::new();
/// let rooms = hub.clone();
/// router.websocket("/rooms/@room", move |ws: WebSocket, event: WebSocketEvent| {
///     let room = ws.request().path_param("room").unwrap_or("lobby").to_owned();
///     match event {
///         WebSocketEvent::Open => {
///             let _ = rooms.subscribe(&ws, &room);
///         }
///         WebSocketEvent::Message(Message::Text(text)) => {
///             // Everyone in the room but the sender.
///             rooms.publish_from(&ws, &room, text);
///         }
///         _ => {} // Subscriptions end by themselves at Close.
///     }
/// });
/// // A backend posts to a room over plain HTTP.
/// let news = hub.clone();
/// router.post("/rooms/@room", move |req: Request| {
///     let room = req.path_param("room").unwrap_or("lobby").to_owned();
///     let n = news.publish(&room, req.body().to_vec());
///     req.respond(200, (), format!("delivered to {n}"));
/// });
/// ```
#[derive(Clone, Default)]
pub struct PubSub {
    hub: Arc<Hub>,
}

#[derive(Default)]
pub(crate) struct Hub {
    /// Topic -> its subscribers by connection id. A topic with none is
    /// removed.
    topics: DashMap<Arc<str>, HashMap<u64, Subscriber>>,
    /// Where publishes also go, and which learns of topics gaining their
    /// first local subscriber or losing their last.
    backplane: Option<Box<dyn Backplane>>,
}

/// Another place a hub's publishes go (the Redis backplane). Its calls
/// are made under the hub's table lock for the topic, so `topic_added`
/// and `topic_removed` arrive in the order the topic changed; they must
/// only queue (never block, never call back into the hub).
pub(crate) trait Backplane: Send + Sync {
    /// A local publish, already delivered to the local subscribers.
    fn publish(&self, topic: &str, message: &Message);
    /// `topic` has its first local subscriber.
    fn topic_added(&self, topic: &str);
    /// `topic` lost its last local subscriber.
    fn topic_removed(&self, topic: &str);
}

/// What a topic delivers to, by id (a WebSocket's connection id, an
/// event stream's stream id: one counter, so they never collide). Each
/// kind has its own encoding of a message, made once per publish for all
/// subscribers of that kind and shared by their queues.
#[derive(Clone)]
pub(crate) enum Subscriber {
    WebSocket(WebSocket),
    /// A Server-Sent Events stream: the message as one event's `data`.
    Events(EventStream),
}

impl Subscriber {
    /// The window (bits) a compressed frame of `message` must fit for
    /// this subscriber, and its level; `None` if it gets the uncompressed
    /// frame.
    fn deflate_bits(&self, message: &Message) -> Option<(u8, u32)> {
        let Subscriber::WebSocket(ws) = self else {
            return None;
        };
        let agreed = ws.shared.deflate.as_ref()?;
        let len = match message {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            Message::Ping(_) | Message::Pong(_) => return None,
        };
        agreed
            .compresses(len)
            .then_some((agreed.server_window_bits, agreed.level))
    }
}

/// One subscription, as its connection's ledger records it.
pub(crate) struct Subscription {
    hub: Weak<Hub>,
    topic: Arc<str>,
}

impl PartialEq for Subscription {
    fn eq(&self, other: &Self) -> bool {
        Weak::ptr_eq(&self.hub, &other.hub) && self.topic == other.topic
    }
}

impl Clone for Subscription {
    fn clone(&self) -> Self {
        Subscription {
            hub: self.hub.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl PubSub {
    /// An empty hub.
    ///
    /// ```
    /// let hub = natron::PubSub::new();
    /// assert_eq!(hub.topic_count(), 0);
    /// assert_eq!(hub.publish("news", "nobody listens"), 0);
    /// ```
    pub fn new() -> PubSub {
        PubSub::default()
    }

    /// Subscribes `ws` to `topic`. Returns `Ok(false)` if it already was.
    ///
    /// ```
    /// use natron::{PubSub, Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let hub = PubSub::new();
    /// let news = hub.clone();
    /// let mut router = Router::new();
    /// router.websocket("/news", move |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Open {
    ///         let first = news.subscribe(&ws, "news");
    ///         let again = news.subscribe(&ws, "news");
    ///         let _ = ws.send_text(&format!("{first:?} {again:?}"));
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/news")).unwrap();
    /// assert_eq!(read(&mut client), "Ok(true) Ok(false)");
    /// assert_eq!(hub.publish("news", "extra!"), 1);
    /// assert_eq!(read(&mut client), "extra!");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if the connection has closed (or is closing
    /// its socket): nothing is subscribed.
    pub fn subscribe(&self, ws: &WebSocket, topic: &str) -> Result<bool, SendError> {
        let topic: Arc<str> = Arc::from(topic);
        let entry = self.entry(topic.clone());
        ws.shared
            .topics
            .add(entry, || {
                let mut subs = self.hub.topics.entry(topic.clone()).or_default();
                if subs.is_empty() {
                    if let Some(bp) = &self.hub.backplane {
                        bp.topic_added(&topic);
                    }
                }
                subs.insert(ws.id(), Subscriber::WebSocket(ws.clone()));
            })
            .map_err(|Closed| SendError::Closed)
    }

    /// Subscribes a Server-Sent Events stream to `topic`: each publish
    /// reaches it as one event whose `data` is the message (a binary
    /// message as lossy UTF-8), encoded and framed once per publish for
    /// every such subscriber. Returns `Ok(false)` if it already was.
    ///
    /// The hub keeps the stream open (it holds a handle) until the client
    /// leaves or the stream is finished; the subscriptions end then. A
    /// stream whose outbound budget is full when a publish reaches it is
    /// closed (its connection too: the client's `EventSource` reconnects
    /// and can resume from `Last-Event-ID`), as a slow WebSocket is.
    ///
    /// ```
    /// use natron::{test::TestClient, PubSub, Request};
    ///
    /// let hub = PubSub::new();
    /// let news = hub.clone();
    /// let client = TestClient::new(move |req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let first = news.subscribe_events(&events, "news");
    ///     let again = news.subscribe_events(&events, "news");
    ///     assert_eq!((first, again), (Ok(true), Ok(false)));
    ///     news.publish("news", "extra!");
    ///     let _ = events.stream().finish(); // ends the subscription too
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "data: extra!\n\n");
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream has ended: nothing is
    /// subscribed.
    pub fn subscribe_events(&self, events: &EventStream, topic: &str) -> Result<bool, StreamError> {
        let topic: Arc<str> = Arc::from(topic);
        let entry = self.entry(topic.clone());
        let shared = &events.stream.shared;
        shared
            .topics
            .add(entry, || {
                let mut subs = self.hub.topics.entry(topic.clone()).or_default();
                if subs.is_empty() {
                    if let Some(bp) = &self.hub.backplane {
                        bp.topic_added(&topic);
                    }
                }
                subs.insert(shared.id, Subscriber::Events(events.clone()));
            })
            .map_err(|Closed| StreamError::Closed)
    }

    /// Unsubscribes an event stream from `topic`. Returns whether it was
    /// subscribed.
    ///
    /// ```
    /// use natron::{sse::Event, test::TestClient, PubSub, Request};
    ///
    /// let hub = PubSub::new();
    /// let client = TestClient::new(move |req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let _ = hub.subscribe_events(&events, "news");
    ///     let first = hub.unsubscribe_events(&events, "news");
    ///     let again = hub.unsubscribe_events(&events, "news");
    ///     let n = hub.publish("news", "extra!"); // reaches nobody
    ///     let _ = events.send(&Event::data_only(format!("{first} {again} {n}")));
    ///     let _ = events.stream().finish();
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "data: true false 0\n\n");
    /// ```
    pub fn unsubscribe_events(&self, events: &EventStream, topic: &str) -> bool {
        let topic: Arc<str> = Arc::from(topic);
        let entry = self.entry(topic.clone());
        let shared = &events.stream.shared;
        let mut removed = None;
        let was = shared
            .topics
            .remove(&entry, || removed = self.hub.remove(&topic, shared.id));
        drop(removed);
        was
    }

    /// Unsubscribes `ws` from `topic`. Returns whether it was subscribed.
    ///
    /// ```
    /// use natron::{Message, PubSub, Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let hub = PubSub::new();
    /// let news = hub.clone();
    /// let mut router = Router::new();
    /// router.websocket("/news", move |ws: WebSocket, event: WebSocketEvent| match event {
    ///     WebSocketEvent::Open => {
    ///         let _ = news.subscribe(&ws, "news");
    ///         let _ = ws.send_text("subscribed");
    ///     }
    ///     WebSocketEvent::Message(Message::Text(t)) if t == "stop" => {
    ///         let first = news.unsubscribe(&ws, "news");
    ///         let again = news.unsubscribe(&ws, "news");
    ///         let _ = ws.send_text(&format!("{first} {again}"));
    ///     }
    ///     _ => {}
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/news")).unwrap();
    /// assert_eq!(read(&mut client), "subscribed");
    /// assert_eq!(hub.subscriber_count("news"), 1);
    /// client.send(tungstenite::Message::text("stop")).unwrap();
    /// assert_eq!(read(&mut client), "true false");
    /// assert_eq!(hub.subscriber_count("news"), 0);
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn unsubscribe(&self, ws: &WebSocket, topic: &str) -> bool {
        let topic: Arc<str> = Arc::from(topic);
        let entry = self.entry(topic.clone());
        ws.shared
            .topics
            .remove(&entry, || drop(self.hub.remove(&topic, ws.id())))
    }

    /// Sends `message` to every subscriber of `topic`. The frame is
    /// encoded once and shared by every subscriber's queue. Returns how
    /// many subscribers it was queued for (a subscriber that is closing,
    /// or whose queue is full, is not counted; the latter is closed with
    /// `1008`).
    ///
    /// With a backplane ([`PubSub::with_redis`]), the message then goes to
    /// the other nodes too; the count is of local subscribers only.
    ///
    /// A `&str` or `String` is published as a text message, a `Vec<u8>` or
    /// `&[u8]` as a binary one (an event-stream subscriber gets it as lossy
    /// UTF-8 `data`).
    ///
    /// ```
    /// use natron::{test::TestClient, PubSub, Request};
    ///
    /// let hub = PubSub::new();
    /// let client = TestClient::new(move |req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let _ = hub.subscribe_events(&events, "news");
    ///     let n = hub.publish("news", format!("extra!"));
    ///     hub.publish("news", format!("to {n} subscriber"));
    ///     hub.publish("weather", "rain"); // another topic
    ///     let _ = events.stream().finish();
    /// });
    /// let res = client.get("/").send().unwrap();
    /// assert_eq!(res.text(), "data: extra!\n\ndata: to 1 subscriber\n\n");
    /// ```
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> usize {
        let message = message.into();
        let n = self.hub.fan_out(topic, &message, None);
        if let Some(bp) = &self.hub.backplane {
            bp.publish(topic, &message);
        }
        n
    }

    /// Publishes a Server-Sent Event to `topic`: event-stream subscribers
    /// get `event` whole (its `id`, `event`, `retry` fields too), encoded
    /// and framed once for all of them; WebSocket subscribers, and other
    /// nodes through a backplane, get its `data` as a text message.
    /// Returns how many local subscribers it was queued for.
    ///
    /// ```
    /// use natron::{sse::Event, test::TestClient, PubSub, Request};
    ///
    /// let hub = PubSub::new();
    /// let client = TestClient::new(move |req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let _ = hub.subscribe_events(&events, "news");
    ///     let headline = Event::new().id("7").event("headline").data("extra!");
    ///     assert_eq!(hub.publish_event("news", &headline), Ok(1));
    ///     assert!(hub.publish_event("news", &Event::new().id("a\nb")).is_err());
    ///     let _ = events.stream().finish();
    /// });
    /// let res = client.get("/").send().unwrap();
    /// assert_eq!(res.text(), "event: headline\nid: 7\ndata: extra!\n\n");
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] as [`Event::encode`] (an `id` with CR, LF
    /// or NUL, an `event` with CR or LF): nothing is sent.
    pub fn publish_event(&self, topic: &str, event: &Event) -> Result<usize, StreamError> {
        let encoded = event.encode()?;
        let message = Message::Text(event.data_text().unwrap_or_default().to_owned());
        let shared = SharedEvent {
            encoded: Some(encoded),
            ..SharedEvent::default()
        };
        let n = self.hub.fan_out_with(topic, &message, None, shared);
        if let Some(bp) = &self.hub.backplane {
            bp.publish(topic, &message);
        }
        Ok(n)
    }

    /// [`Self::publish`] to every subscriber but `sender` (a chat room's
    /// echo suppression). The count leaves `sender` out; other nodes
    /// behind a backplane get the message whole.
    ///
    /// ```
    /// use natron::{Message, PubSub, Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let hub = PubSub::new();
    /// let mut router = Router::new();
    /// router.websocket("/chat", move |ws: WebSocket, event: WebSocketEvent| match event {
    ///     WebSocketEvent::Open => {
    ///         let _ = hub.subscribe(&ws, "chat");
    ///         let _ = ws.send_text("joined");
    ///     }
    ///     WebSocketEvent::Message(Message::Text(text)) => {
    ///         let n = hub.publish_from(&ws, "chat", text);
    ///         let _ = ws.send_text(&format!("sent to {n}"));
    ///     }
    ///     _ => {}
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let url = format!("ws://{addr}/chat");
    /// let (mut ada, _) = tungstenite::connect(&url).unwrap();
    /// let (mut bob, _) = tungstenite::connect(&url).unwrap();
    /// assert_eq!((read(&mut ada), read(&mut bob)), ("joined".into(), "joined".into()));
    /// ada.send(tungstenite::Message::text("hi all")).unwrap();
    /// assert_eq!(read(&mut bob), "hi all");
    /// assert_eq!(read(&mut ada), "sent to 1"); // not its own "hi all"
    /// # drop((ada, bob));
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn publish_from(
        &self,
        sender: &WebSocket,
        topic: &str,
        message: impl Into<Message>,
    ) -> usize {
        let message = message.into();
        let n = self.hub.fan_out(topic, &message, Some(sender.id()));
        if let Some(bp) = &self.hub.backplane {
            bp.publish(topic, &message);
        }
        n
    }

    /// How many subscribers (WebSockets and event streams) `topic` has.
    ///
    /// ```
    /// use natron::{sse::Event, test::TestClient, PubSub, Request};
    ///
    /// let hub = PubSub::new();
    /// let client = TestClient::new(move |req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let before = hub.subscriber_count("news");
    ///     let _ = hub.subscribe_events(&events, "news");
    ///     let after = hub.subscriber_count("news");
    ///     let _ = events.send(&Event::data_only(format!("{before} {after}")));
    ///     let _ = events.stream().finish();
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "data: 0 1\n\n");
    /// ```
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.hub.topics.get(topic).map_or(0, |s| s.len())
    }

    /// The topics of this hub that `ws` is subscribed to (empty once it
    /// has closed), in no particular order.
    ///
    /// ```
    /// use natron::{PubSub, Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let hub = PubSub::new();
    /// let mut router = Router::new();
    /// router.websocket("/", move |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Open {
    ///         let _ = hub.subscribe(&ws, "news");
    ///         let _ = hub.subscribe(&ws, "weather");
    ///         let mut topics = hub.topics(&ws);
    ///         topics.sort();
    ///         let _ = ws.send_text(&topics.join(","));
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// assert_eq!(read(&mut client), "news,weather");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn topics(&self, ws: &WebSocket) -> Vec<String> {
        let hub = Arc::downgrade(&self.hub);
        ws.shared
            .topics
            .entries()
            .into_iter()
            .filter(|s| Weak::ptr_eq(&s.hub, &hub))
            .map(|s| s.topic.to_string())
            .collect()
    }

    /// Whether `ws` is subscribed to `topic` in this hub.
    ///
    /// ```
    /// use natron::{PubSub, Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let hub = PubSub::new();
    /// let mut router = Router::new();
    /// router.websocket("/", move |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Open {
    ///         let _ = hub.subscribe(&ws, "news");
    ///         let (news, weather) = (hub.is_subscribed(&ws, "news"), hub.is_subscribed(&ws, "weather"));
    ///         let _ = ws.send_text(&format!("{news} {weather}"));
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// assert_eq!(read(&mut client), "true false");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn is_subscribed(&self, ws: &WebSocket, topic: &str) -> bool {
        ws.shared.topics.contains(&self.entry(Arc::from(topic)))
    }

    /// How many topics have at least one subscriber (a topic is dropped
    /// with its last subscriber).
    ///
    /// ```
    /// use natron::{sse::Event, test::TestClient, PubSub, Request};
    ///
    /// let hub = PubSub::new();
    /// let client = TestClient::new(move |req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let _ = hub.subscribe_events(&events, "news");
    ///     let _ = hub.subscribe_events(&events, "weather");
    ///     let two = hub.topic_count();
    ///     hub.unsubscribe_events(&events, "news");
    ///     let _ = events.send(&Event::data_only(format!("{two} {}", hub.topic_count())));
    ///     let _ = events.stream().finish();
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "data: 2 1\n\n");
    /// ```
    pub fn topic_count(&self) -> usize {
        self.hub.topics.len()
    }

    fn entry(&self, topic: Arc<str>) -> Subscription {
        Subscription {
            hub: Arc::downgrade(&self.hub),
            topic,
        }
    }
}

impl Hub {
    /// Queues `message` for the local subscribers of `topic` (all but
    /// `skip`); how many it was queued for.
    pub(crate) fn fan_out(&self, topic: &str, message: &Message, skip: Option<u64>) -> usize {
        self.fan_out_with(topic, message, skip, SharedEvent::default())
    }

    /// [`Hub::fan_out`], event-stream subscribers getting `event`'s bytes
    /// (encoded already, or made from `message` when needed).
    fn fan_out_with(
        &self,
        topic: &str,
        message: &Message,
        skip: Option<u64>,
        mut event: SharedEvent,
    ) -> usize {
        // The subscribers are copied out so that no shard lock is held
        // while frames are queued (a send may close a slow subscriber).
        let subscribers: Vec<Subscriber> = match self.topics.get(topic) {
            Some(subs) => subs
                .iter()
                .filter(|(id, _)| Some(**id) != skip)
                .map(|(_, sub)| sub.clone())
                .collect(),
            None => return 0,
        };
        if subscribers.is_empty() {
            return 0;
        }
        // Encoded at most twice: uncompressed for the subscribers without
        // permessage-deflate (or below their threshold), compressed once
        // for the others. Every server frame is compressed on its own
        // (server_no_context_takeover), so one compressed frame serves
        // every connection whose window is at least the one it used: the
        // smallest any of them agreed (all 15 unless a client asked less).
        // Event streams get the message as one event, encoded once per
        // framing by `event`.
        let deflate = subscribers
            .iter()
            .filter_map(|sub| sub.deflate_bits(message))
            .min();
        let plain = std::cell::OnceCell::<Arc<[u8]>>::new();
        let compressed = std::cell::OnceCell::<Option<Arc<[u8]>>>::new();
        let frame_for = |sub: &Subscriber| -> Arc<[u8]> {
            if let (Some(_), Some((bits, level))) = (sub.deflate_bits(message), deflate) {
                let c =
                    compressed.get_or_init(|| message.encode_deflated(bits, level).map(Arc::from));
                if let Some(frame) = c {
                    return frame.clone();
                }
            }
            plain
                .get_or_init(|| Arc::from(message.encode(None)))
                .clone()
        };
        // One message per IO actor and frame, naming its subscribers: a
        // publish to 10,000 costs a few channel pushes, not 10,000.
        let mut groups: Vec<(IoHandle, Arc<[u8]>, Vec<u64>)> = Vec::new();
        let mut queued = 0;
        for sub in &subscribers {
            let ws = match sub {
                Subscriber::WebSocket(ws) => ws,
                Subscriber::Events(events) => {
                    if event.send(events, message) {
                        queued += 1;
                    }
                    continue;
                }
            };
            let frame = frame_for(sub);
            if ws.reserve(frame.len()).is_err() {
                continue;
            }
            queued += 1;
            let io = &ws.shared.io;
            match groups
                .iter_mut()
                .find(|(g, f, _)| g.same_receiver(io) && Arc::ptr_eq(f, &frame))
            {
                Some((_, _, ids)) => ids.push(ws.id()),
                None => groups.push((io.clone(), frame, vec![ws.id()])),
            }
        }
        for (io, frame, conns) in groups {
            io.post(IoMsg::WsFanout { conns, frame });
        }
        queued
    }

    /// Takes subscriber `id` out of `topic`. It is handed back for the
    /// caller to drop outside every lock: dropping an event stream's last
    /// handle finishes it, which ends its subscriptions (ledger, then this
    /// table).
    #[must_use = "drop it outside the ledger's lock"]
    fn remove(&self, topic: &Arc<str>, id: u64) -> Option<Subscriber> {
        let mut removed = None;
        if let dashmap::Entry::Occupied(mut subs) = self.topics.entry(topic.clone()) {
            removed = subs.get_mut().remove(&id);
            if subs.get().is_empty() {
                // Under the topic's lock, as its `topic_added` was.
                if let Some(bp) = &self.backplane {
                    bp.topic_removed(topic);
                }
                subs.remove();
            }
        }
        removed
    }
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("topics", &self.hub.topics.len())
            .finish()
    }
}

/// Ends every subscription of a closing connection (the IO actor calls it
/// once the socket is gone, before the `Close` event is delivered). Later
/// subscribes of it are refused.
pub(crate) fn end_subscriptions(ws: &WsShared) {
    for sub in ws.topics.close() {
        if let Some(hub) = sub.hub.upgrade() {
            drop(hub.remove(&sub.topic, ws.id));
        }
    }
}

/// Ends every subscription of a response stream that ended (finished or
/// closed). Later subscribes of it are refused.
pub(crate) fn end_stream_subscriptions(stream: &crate::http::stream::StreamShared) {
    for sub in stream.topics.close() {
        if let Some(hub) = sub.hub.upgrade() {
            drop(hub.remove(&sub.topic, stream.id));
        }
    }
}

/// A published message as one Server-Sent Event, encoded once and framed
/// once per framing (chunked for HTTP/1.1, bare for HTTP/1.0), shared by
/// every event-stream subscriber with that framing.
#[derive(Default)]
struct SharedEvent {
    /// The event, if given (`publish_event`); else made from the message.
    encoded: Option<Vec<u8>>,
    chunked: Option<Arc<[u8]>>,
    bare: Option<Arc<[u8]>>,
}

impl SharedEvent {
    /// Queues the event for `events`; whether it was queued. A full
    /// subscriber is closed (logged), as a slow WebSocket is.
    fn send(&mut self, events: &EventStream, message: &Message) -> bool {
        let shared = &events.stream.shared;
        let framing = shared.framing();
        let slot = match framing {
            Framing::Chunked => &mut self.chunked,
            Framing::UntilClose => &mut self.bare,
            // A HEAD answer takes no events.
            Framing::Sized(_) | Framing::NoBody => return false,
        };
        let encoded = &self.encoded;
        let bytes = slot.get_or_insert_with(|| {
            let event = match encoded {
                Some(e) => std::borrow::Cow::Borrowed(e.as_slice()),
                None => std::borrow::Cow::Owned(data_event(message)),
            };
            match framing {
                Framing::Chunked => Arc::from(crate::http::stream::chunk(&event)),
                _ => Arc::from(&*event),
            }
        });
        match shared.write_framed(Chunk::Shared(bytes.clone())) {
            Ok(()) => true,
            Err(StreamError::QueueFull) => {
                slog::warn!(shared.log(), "closing event stream: slow subscriber, outbound queue full";
                    "stream" => shared.id);
                shared.abort();
                false
            }
            Err(_) => false,
        }
    }
}

/// `message` as an event carrying it as `data` (a binary one as lossy
/// UTF-8): no field that could be refused.
fn data_event(message: &Message) -> Vec<u8> {
    let data = match message {
        Message::Text(t) => std::borrow::Cow::Borrowed(t.as_str()),
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => String::from_utf8_lossy(b),
    };
    Event::data_only(data).encode().unwrap_or_default()
}
