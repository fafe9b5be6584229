//! Server lifecycle: `wait_until_ready`, `close()`, and that nothing leaks
//! (threads, file descriptors) once `serve` returns.
//!
//! This binary is separate so that other tests' servers cannot disturb the
//! thread and descriptor counts; its tests run one at a time (a shared
//! lock). Threads are counted by name: every natron thread is named
//! `natron-*` (and the helper's serve thread `test-serve`; a thread spawned
//! unnamed inherits its parent's name), so the test harness's own threads,
//! which come and go between tests, do not count.

mod common;

use common::*;
use natron::{Request, Server};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How many of this process's natron worker threads are alive.
fn worker_threads() -> usize {
    server_threads()
        .iter()
        .filter(|t| t.starts_with("natron-worker-"))
        .count()
}

fn connect_refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
            true
        }
    }
}

#[test]
fn start_close_cycles_finish_in_flight_and_leak_nothing() {
    let _serial = serial();
    assert!(server_threads().is_empty());
    let base_fds = open_fds();

    for cycle in 0..3 {
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let started_tx = Mutex::new(started_tx);
        let finished = Arc::new(AtomicBool::new(false));
        let finished2 = finished.clone();
        let s = start(
            builder()
                .worker_threads(4)
                .io_threads(2)
                // Far beyond the 10 s `stop` allows: serve must return
                // once the in-flight request is answered, not at the grace.
                .shutdown_grace(Duration::from_secs(60))
                .handler(move |req: Request| {
                    if req.path() == "/slow" {
                        let _ = started_tx.lock().unwrap().send(());
                        // The handler's deliberate work, in flight at close().
                        thread::sleep(Duration::from_millis(500));
                        finished2.store(true, Ordering::SeqCst);
                        req.respond(200, (), "slow done");
                    } else {
                        echo(req)
                    }
                }),
        );
        let addr = s.addr;
        // (A new thread names itself once it runs: wait for it.)
        wait_until(
            "4 workers and 2 IO threads named",
            Duration::from_secs(2),
            || {
                let threads = server_threads();
                let workers = threads.iter().filter(|t| t.starts_with("natron-worker-"));
                let ios = threads.iter().filter(|t| t.starts_with("natron-io-"));
                workers.count() == 4 && ios.count() == 2
            },
        );

        // An idle keep-alive connection and one with a slow request.
        let mut idle = s.client();
        idle.send(get("/idle"));
        idle.read_response().assert("HTTP/1.1 200 OK", "GET /idle ");
        let mut slow = s.client();
        slow.send(get("/slow"));
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();

        s.handle.close();
        // close() returns once the listener is closed: the very next
        // connection attempt is refused, while the slow handler still runs.
        assert!(
            connect_refused(addr),
            "cycle {cycle}: still accepting after close() returned"
        );
        assert!(
            !finished.load(Ordering::SeqCst),
            "cycle {cycle}: the slow handler finished before the listener closed"
        );

        // The in-flight response is delivered, then the connection closes.
        let r = slow.read_response();
        r.assert("HTTP/1.1 200 OK", "slow done");
        assert_eq!(r.header("connection"), Some("close"));
        slow.expect_eof();
        // The idle keep-alive connection is closed, without a response.
        idle.expect_eof();
        // Like any client seeing EOF, close too (else the server lingers).
        drop((idle, slow));

        let (result, _took) = s.stop();
        result.unwrap();
        assert!(connect_refused(addr));
        assert_no_leaks(base_fds);
    }
}

#[test]

fn close_with_pipelined_requests_sends_nothing_after_a_close_response() {
    let _serial = serial();
    let base_fds = open_fds();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let s = start(builder().handler(move |req: Request| {
        if req.path() == "/slow" {
            let _ = started_tx.lock().unwrap().send(());
            // The handler's deliberate work, in flight at close().
            thread::sleep(Duration::from_millis(200));
        }
        echo(req)
    }));
    let mut c = s.client();
    c.send(format!("{}{}{}", get("/slow"), get("/b"), get("/c")));
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    s.handle.close();
    // RFC 9112 §9.6: after a response with `Connection: close`, nothing
    // more. Either /slow is the last response, or /b and /c are answered
    // and only the last response says `close`.
    let first = c.read_response();
    first.assert("HTTP/1.1 200 OK", "GET /slow ");
    let mut responses = vec![first];
    while responses.last().unwrap().header("connection") != Some("close") {
        responses.push(c.read_response());
    }
    c.expect_eof();
    drop(c);
    let bodies: Vec<&str> = responses.iter().map(|r| r.body_str()).collect();
    assert!(
        bodies == ["GET /slow "] || bodies == ["GET /slow ", "GET /b ", "GET /c "],
        "{bodies:?}"
    );
    let (result, _) = s.stop();
    result.unwrap();
    assert_no_leaks(base_fds);
}

#[test]
fn handler_stuck_past_grace_does_not_hold_serve() {
    let _serial = serial();
    let base_fds = open_fds();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (responded_tx, responded_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, responded_tx) = (Mutex::new(started_tx), Mutex::new(responded_tx));
    let release_rx = Mutex::new(release_rx);
    let s = start(
        builder()
            .shutdown_grace(Duration::from_millis(200))
            .handler(move |req: Request| {
                let _ = started_tx.lock().unwrap().send(());
                // Stuck until the test lets go, long after serve returned.
                let _ = release_rx.lock().unwrap().recv();
                // Answering after the server is gone must be harmless.
                req.respond(200, (), "too late");
                let _ = responded_tx.lock().unwrap().send(());
            }),
    );
    let mut c = s.client();
    c.send(get("/stuck"));
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let (result, took) = s.stop();
    result.unwrap();
    // serve returned while the handler is still stuck, after the grace.
    assert!(
        took >= Duration::from_millis(150),
        "serve returned {took:?} after close, grace 200 ms"
    );
    // The connection was closed without a response.
    c.expect_eof();
    release_tx.send(()).unwrap();
    responded_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("respond() after shutdown returned normally");
    drop(c);
    // The detached worker exits once its handler returns.
    assert_no_leaks(base_fds);
}

#[test]
fn close_twice_is_harmless_and_ready_reports_closed() {
    let _serial = serial();
    let base_fds = open_fds();
    let s = serve(echo);
    let handle = s.handle.clone();
    assert_eq!(handle.local_addr(), Some(s.addr));
    s.request(get("/")).assert("HTTP/1.1 200 OK", "GET / ");
    handle.close();
    handle.close();
    let (result, _) = s.stop();
    result.unwrap();
    handle.close();
    assert_eq!(handle.local_addr(), None);
    let e = handle
        .wait_until_ready(Duration::from_secs(1))
        .expect_err("closed");
    assert_ne!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    // (A handle kept alive holds an fd: see the test below.)
    drop(handle);
    assert_no_leaks(base_fds);
}

#[test]

fn serve_releases_every_fd_while_a_handle_is_kept() {
    let _serial = serial();
    let base_fds = open_fds();
    let s = serve(echo);
    let handle = s.handle.clone();
    s.request(get("/")).assert("HTTP/1.1 200 OK", "GET / ");
    let (result, _) = s.stop();
    result.unwrap();
    // `serve` has returned: every socket, poll and waker is closed, even
    // though someone still holds a handle (say, a signal handler's).
    assert_no_leaks(base_fds);
    drop(handle);
}

#[test]
fn close_before_serve_makes_serve_return() {
    let _serial = serial();
    let base_fds = open_fds();
    let server = builder().handler(echo).build();
    let handle = server.handle();
    handle.close();
    let t = thread::spawn(move || server.serve("127.0.0.1:0"));
    let result = join_within(t, Duration::from_secs(5)).expect("serve returned");
    result.unwrap();
    drop(handle);
    assert_no_leaks(base_fds);
}

#[test]
fn wait_until_ready_returns_bound_address() {
    let _serial = serial();
    let base_fds = open_fds();
    let server = builder().handler(echo).build();
    let handle = server.handle();
    // Not ready yet: times out rather than blocking.
    let e = handle
        .wait_until_ready(Duration::from_millis(20))
        .expect_err("not serving yet");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(handle.local_addr(), None);
    let t = thread::Builder::new()
        .name("test-serve".into())
        .spawn(move || server.serve("127.0.0.1:0"))
        .unwrap();
    let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    assert_eq!(handle.local_addr(), Some(addr));
    let mut c = Client::connect(addr);
    c.send(get("/ready"));
    c.read_response().assert("HTTP/1.1 200 OK", "GET /ready ");
    drop(c);
    handle.close();
    join_within(t, Duration::from_secs(5))
        .expect("serve returned")
        .unwrap();
    drop(handle);
    assert_no_leaks(base_fds);
}

#[test]
fn wait_until_ready_fails_when_port_taken() {
    let _serial = serial();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let base_fds = open_fds();
    let server = Server::builder().handler(echo).build();
    let handle = server.handle();
    let t = thread::spawn(move || server.serve(addr));
    let e = handle
        .wait_until_ready(Duration::from_secs(5))
        .expect_err("the port is taken");
    // Told at once, not by the timeout.
    assert_ne!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    let served = join_within(t, Duration::from_secs(5)).expect("serve returned");
    assert_eq!(
        served.expect_err("serve fails").kind(),
        io::ErrorKind::AddrInUse
    );
    assert_eq!(handle.local_addr(), None);
    // The first listener is untouched.
    drop(TcpStream::connect(addr).unwrap());
    assert_no_leaks(base_fds);
    drop(taken);
}

#[test]
fn serve_port_binds_localhost() {
    let _serial = serial();
    let server = Server::builder().handler(echo).build();
    let handle = server.handle();
    let t = thread::Builder::new()
        .name("test-serve".into())
        .spawn(move || server.serve_port(0))
        .unwrap();
    let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    let mut c = Client::connect(addr);
    c.send(get("/port"));
    c.read_response().assert("HTTP/1.1 200 OK", "GET /port ");
    drop(c);
    handle.close();
    join_within(t, Duration::from_secs(5))
        .expect("serve returned")
        .expect("serve ok");
}

/// Blocking handlers do not cap the server at `worker_threads`: with a base
/// of 2 workers, 12 handlers that each wait until 12 are running at once
/// can only all finish if the pool grows. `close()` then stops every
/// worker, the ones the pool added included, and nothing leaks.
#[test]
fn pool_grows_past_its_base_for_blocking_handlers_and_stops_whole() {
    const N: usize = 12;
    let _serial = serial();
    let base_fds = open_fds();
    let running = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let running2 = running.clone();
    let s = start(builder().worker_threads(2).max_worker_threads(64).handler(
        move |req: Request| {
            let (count, changed) = &*running2;
            let mut n = count.lock().unwrap();
            *n += 1;
            changed.notify_all();
            // Wait (bounded) until N handlers run at once.
            let deadline = Instant::now() + Duration::from_secs(10);
            while *n < N && Instant::now() < deadline {
                n = changed
                    .wait_timeout(n, deadline - Instant::now())
                    .unwrap()
                    .0;
            }
            let together = *n >= N;
            drop(n);
            req.respond(200, (), if together { "together" } else { "alone" });
        },
    ));
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let mut c = s.client();
            c.send(get(&format!("/{i}")));
            c
        })
        .collect();
    for mut c in clients {
        c.read_response().assert("HTTP/1.1 200 OK", "together");
    }
    let workers = worker_threads();
    assert!(workers >= N, "{workers} workers for {N} blocked handlers");
    let (result, _) = s.stop();
    result.unwrap();
    assert_no_leaks(base_fds);
}

/// `max_worker_threads == worker_threads` is a fixed pool: it never grows.
#[test]
fn a_fixed_pool_does_not_grow() {
    let _serial = serial();
    let base_fds = open_fds();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let s = start(builder().worker_threads(2).max_worker_threads(2).handler(
        move |req: Request| {
            started_tx.lock().unwrap().send(()).unwrap();
            let _ = release_rx.lock().unwrap().recv();
            req.respond(200, (), "ok");
        },
    ));
    let mut clients: Vec<_> = (0..4)
        .map(|i| {
            let mut c = s.client();
            c.send(get(&format!("/{i}")));
            c
        })
        .collect();
    // Two handlers start (one per worker); the other two requests wait.
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(worker_threads(), 2);
    assert!(server_threads().iter().all(|t| t != "natron-pool"));
    for _ in 0..4 {
        release_tx.send(()).unwrap();
    }
    for c in &mut clients {
        c.read_response().assert("HTTP/1.1 200 OK", "ok");
    }
    assert_eq!(worker_threads(), 2);
    drop(clients);
    let (result, _) = s.stop();
    result.unwrap();
    assert_no_leaks(base_fds);
}

/// An idle keep-alive connection owes nothing at shutdown: natron closes
/// it at once (the client reads EOF) and `serve` does not wait for the
/// client's FIN. The linger and the grace are set far beyond the stop
/// timeout, so a close that lingered would hold `serve` past it.
#[test]
fn close_does_not_linger_on_an_idle_keep_alive_connection() {
    let _serial = serial();
    let s = start(
        builder()
            .handler(echo)
            .linger_timeout(Duration::from_secs(600))
            .shutdown_grace(Duration::from_secs(600)),
    );
    let mut idle = Client::connect(s.addr);
    idle.send(get("/"));
    assert_eq!(idle.read_response().status, 200);
    // The client keeps its socket open (no FIN from it) until `serve` has
    // returned.
    let (result, _) = s.stop();
    result.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(idle.stream.read(&mut buf).unwrap(), 0, "EOF, not a reset");
}

/// After a response that closes the connection, natron still lingers: a
/// client that goes on sending (here, a body natron refused with 413) gets
/// the whole response, not a reset; the linger ends at `linger_timeout`.
#[test]
fn a_refused_upload_is_answered_whole_while_the_client_goes_on_sending() {
    let _serial = serial();
    let s = start(
        builder()
            .handler(echo)
            .max_body_len(1024)
            .linger_timeout(Duration::from_millis(200)),
    );
    let mut c = Client::connect(s.addr);
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    c.send(vec![b'x'; 64 * 1024]);
    assert_eq!(c.read_response().status, 413);
    // The client keeps sending into the lingering close until natron ends
    // it: EOF or a reset, never a hang.
    // (The deadline only turns a linger that never ends into a failure.)
    let chunk = vec![b'x'; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.try_send(&chunk).is_ok() {
        assert!(Instant::now() < deadline, "the linger never ended");
    }
    s.stop().0.unwrap();
}
