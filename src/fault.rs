//! Fault injection (cargo feature `fault-injection`, off by default): makes
//! natron's own code panic at a named [`Point`], for one chosen connection,
//! so tests can check that a natron bug costs that connection only.
//!
//! A test arms a point for the connection whose peer address (the client
//! socket's local address) it names; the next time natron reaches that
//! point while working on that connection, it panics, once:
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! # let server_addr: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
//! let client = std::net::TcpStream::connect(server_addr)?;
//! natron::fault::arm(natron::fault::Point::IoInbox, client.local_addr()?);
//! // ... the next message the IO actor handles for `client` panics.
//! # Ok(())
//! # }
//! ```
//!
//! A whole test, with a server, is [`arm`]'s example.
//!
//! Arming by peer address is precise (a test picks one connection out of
//! several, a WebSocket as well as HTTP, at any moment of its life) and
//! lets tests in one binary run side by side: each arms its own sockets.
//!
//! How a point knows its connection: where natron starts work on one
//! connection (a message from the inbox, a connection in the sweep, a pump,
//! a response being encoded) it opens a scope naming the connection's
//! peer for the current thread; a point checks the armed list against the
//! innermost scope. A point reached outside any scope never fires.
//!
//! Without the feature this module is not compiled and the `fault_scope!`
//! and `fault_point!` macros (in `lib.rs`) expand to nothing: no cost.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A place in natron where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// `io.inbox`: the IO actor handling one inbox message (a response,
    /// an upgrade, a WebSocket frame, close or resume) for the connection,
    /// before the message changes anything.
    IoInbox,
    /// `io.sweep`: the IO actor's timeout sweep visiting the connection.
    IoSweep,
    /// `http.encode`: a worker serialising a response to one of the
    /// connection's requests (`Request::respond`), before `serialize`.
    HttpEncode,
    /// `io.write`: the connection's writer flushing queued bytes to the
    /// socket (`io/writer.rs`), before the first write.
    IoWrite,
}

impl Point {
    /// The point's name, as in the panic message: `io.inbox`, `io.sweep`,
    /// `http.encode`, `io.write`.
    ///
    /// ```
    /// use natron::fault::Point;
    ///
    /// assert_eq!(Point::HttpEncode.name(), "http.encode");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Point::IoInbox => "io.inbox",
            Point::IoSweep => "io.sweep",
            Point::HttpEncode => "http.encode",
            Point::IoWrite => "io.write",
        }
    }
}

static ARMED: Mutex<Vec<(Point, SocketAddr)>> = Mutex::new(Vec::new());
/// `ARMED.len()`, read without the lock: most points pass with one load.
static ARMED_COUNT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CURRENT: Cell<Option<SocketAddr>> = const { Cell::new(None) };
}

fn armed() -> std::sync::MutexGuard<'static, Vec<(Point, SocketAddr)>> {
    // A panic while holding this lock is impossible (no code in it
    // panics), but poisoning must not disable the other tests' faults.
    ARMED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Arms `point` once for the connection whose peer address is `peer`: the
/// next time natron reaches `point` while working on that connection, it
/// panics with `natron fault injection: <name>`.
///
/// ```
/// use natron::fault::{self, Point};
/// use natron::{Request, Server};
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let server = Server::new(|req: Request| req.respond(200, (), "ok"));
/// # let handle = server.handle();
/// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
/// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
/// let mut client = std::net::TcpStream::connect(addr).unwrap();
/// fault::arm(Point::HttpEncode, client.local_addr().unwrap());
///
/// client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// let mut answer = String::new();
/// client.read_to_string(&mut answer).unwrap();
/// // natron panicked encoding the response: 500, and the connection closes.
/// assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
/// assert!(!fault::is_armed(Point::HttpEncode, client.local_addr().unwrap()));
/// # drop(client);
/// # handle.close();
/// # serving.join().unwrap().unwrap();
/// ```
pub fn arm(point: Point, peer: SocketAddr) {
    let mut list = armed();
    list.push((point, peer));
    ARMED_COUNT.store(list.len(), Ordering::SeqCst);
}

/// Whether `point` is still armed for `peer` (false once it has fired, so
/// a test can check that its fault really happened).
///
/// ```
/// use natron::fault::{self, Point};
///
/// let peer = "127.0.0.1:40001".parse().unwrap();
/// assert!(!fault::is_armed(Point::IoWrite, peer));
/// fault::arm(Point::IoWrite, peer);
/// assert!(fault::is_armed(Point::IoWrite, peer));
/// assert!(!fault::is_armed(Point::IoSweep, peer)); // per point
/// # fault::disarm(Point::IoWrite, peer);
/// ```
pub fn is_armed(point: Point, peer: SocketAddr) -> bool {
    armed().contains(&(point, peer))
}

/// Disarms `point` for `peer` if it has not fired; returns whether it was
/// armed.
///
/// ```
/// use natron::fault::{self, Point};
///
/// let peer = "127.0.0.1:40002".parse().unwrap();
/// fault::arm(Point::IoInbox, peer);
/// assert!(fault::disarm(Point::IoInbox, peer));
/// assert!(!fault::disarm(Point::IoInbox, peer)); // no longer armed
/// assert!(!fault::is_armed(Point::IoInbox, peer));
/// ```
pub fn disarm(point: Point, peer: SocketAddr) -> bool {
    let mut list = armed();
    let before = list.len();
    list.retain(|e| *e != (point, peer));
    ARMED_COUNT.store(list.len(), Ordering::SeqCst);
    list.len() != before
}

/// Names the connection the current thread works on until the returned
/// guard drops (the previous one is restored then, unwinding included).
pub(crate) fn enter(peer: SocketAddr) -> Scope {
    Scope {
        previous: CURRENT.with(|c| c.replace(Some(peer))),
    }
}

/// The connection a thread works on; see [`enter`].
pub(crate) struct Scope {
    previous: Option<SocketAddr>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Panics if `point` is armed for the current scope's connection
/// (disarming it first, so it fires once).
pub(crate) fn point(point: Point) {
    if ARMED_COUNT.load(Ordering::SeqCst) == 0 {
        return;
    }
    let Some(peer) = CURRENT.with(Cell::get) else {
        return;
    };
    let fire = {
        let mut list = armed();
        match list.iter().position(|e| *e == (point, peer)) {
            Some(i) => {
                list.swap_remove(i);
                ARMED_COUNT.store(list.len(), Ordering::SeqCst);
                true
            }
            None => false,
        }
    };
    if fire {
        panic!("natron fault injection: {}", point.name());
    }
}
