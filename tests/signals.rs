//! `examples/signals.rs` in a child process, signalled for real: SIGTERM
//! and SIGINT close it gracefully (in-flight request answered, new
//! connections refused, WebSockets `1001`, exit status 0), and a second
//! signal ends the drain at once.
//!
//! The child is this test binary again, running only [`signals_child`],
//! which calls the example's `run` (so the example needs no separate build,
//! and the signals reach a process of its own, not the test harness). Each
//! step waits for what the child prints or what its sockets do, never for
//! time to pass.

#[allow(dead_code)]
#[path = "../examples/signals.rs"]
mod example;

mod common;

use common::{poll_until, Client};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Set in the child: the address it serves on.
const CHILD_ENV: &str = "NATRON_SIGNALS_CHILD";
const CHILD_TEST: &str = "signals_child";
/// How long the test waits for the child to reach a state.
const WAIT: Duration = Duration::from_secs(20);

/// The example, served in the child process (the parent's test sets
/// `CHILD_ENV`; run by hand, it returns at once).
#[test]
#[ignore = "the child process of the signal tests, run by them"]
fn signals_child() {
    if let Some(addr) = std::env::var_os(CHILD_ENV) {
        example::run(addr.to_str().unwrap()).expect("the example serves");
    }
}

/// The example in a child process, with its stdout as lines.
struct Example {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Example {
    fn start() -> Example {
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .args(["--exact", CHILD_TEST, "--ignored", "--nocapture"])
            .args(["--test-threads=1", "-q"])
            .env(CHILD_ENV, "127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the example");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut ex = Example {
            child,
            lines,
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let line = ex.expect_line("listening on http://");
        ex.addr = line["listening on http://".len()..].parse().unwrap();
        ex
    }

    /// Waits for a line of the child's stdout that starts with `prefix`,
    /// skipping others; returns it.
    #[track_caller]
    fn expect_line(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line {prefix:?} from the example: {e}"),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours; `pid` is our own child, not yet waited for, so the pid
        // cannot have been reused.
        let r = unsafe { libc::kill(pid, signal) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// The child's exit status, waiting up to [`WAIT`].
    #[track_caller]
    fn exit_status(&mut self) -> ExitStatus {
        let mut status = None;
        let exited = poll_until(WAIT, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        assert!(exited, "the example did not exit within {WAIT:?}");
        status.unwrap()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        // A failed test must not leave the child serving.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `GET /work?ms=...` sent on a fresh connection, once the handler has
/// started (the child said so).
fn start_work(ex: &mut Example, ms: u64) -> Client {
    let mut c = Client::connect(ex.addr);
    c.stream.set_read_timeout(Some(WAIT)).unwrap();
    c.send(format!("GET /work?ms={ms} HTTP/1.1\r\nHost: t\r\n\r\n"));
    ex.expect_line("work: started");
    c
}

/// Whether a new connection is turned away: refused, or (had the kernel
/// completed its handshake before the listener closed) reset or answered
/// `503`.
fn turned_away(addr: SocketAddr) -> Result<(), String> {
    let stream = match TcpStream::connect_timeout(&addr, WAIT) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(()),
        Err(e) => return Err(format!("connect: {e}")),
        Ok(s) => s,
    };
    let mut c = Client::from_stream(stream);
    if c.try_send("GET / HTTP/1.1\r\nHost: t\r\n\r\n").is_err() {
        return Ok(());
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.read_to_eof())) {
        Ok(bytes) if bytes.is_empty() || bytes.starts_with(b"HTTP/1.1 503 ") => Ok(()),
        Ok(bytes) => Err(format!(
            "a new connection was served: {:?}",
            String::from_utf8_lossy(&bytes)
        )),
        Err(_) => Ok(()), // reset
    }
}

fn graceful_on(signal: libc::c_int, name: &str) {
    let mut ex = Example::start();
    let mut ws = Client::upgrade(ex.addr, "/ws");
    ws.send_text("before");
    assert_eq!(ws.read_text(), "before");
    // Long enough to be in flight when the signal lands.
    let mut work = start_work(&mut ex, 3000);

    ex.signal(signal);
    ex.expect_line(&format!("{name}: closing"));
    turned_away(ex.addr).unwrap();
    assert_eq!(ws.expect_close().0, 1001, "the WebSocket goes away");
    ws.finish();
    let r = work.read_response();
    r.assert("HTTP/1.1 200 OK", "worked 3000 ms");
    assert!(r.closes(), "answered while draining: {r:?}");
    work.expect_eof();

    ex.expect_line("closed");
    let status = ex.exit_status();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sigterm_closes_gracefully() {
    graceful_on(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_closes_gracefully() {
    graceful_on(libc::SIGINT, "SIGINT");
}

#[test]
fn idle_server_exits_at_once() {
    let mut ex = Example::start();
    let mut idle = Client::connect(ex.addr);
    idle.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    idle.read_response()
        .assert("HTTP/1.1 200 OK", "Hello, World!");
    ex.signal(libc::SIGTERM);
    // The idle keep-alive connection is closed, and nothing holds the exit.
    idle.expect_eof();
    ex.expect_line("closed");
    assert_eq!(ex.exit_status().code(), Some(0));
}

#[test]
fn second_signal_exits_without_waiting() {
    let mut ex = Example::start();
    // Work that would hold the drain for a minute.
    let mut work = start_work(&mut ex, 60_000);
    ex.signal(libc::SIGINT);
    ex.expect_line("SIGINT: closing");
    ex.signal(libc::SIGTERM);
    let status = ex.exit_status();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    assert_eq!(status.signal(), None);
    // The process is gone: its connection ends unanswered.
    assert!(work.read_to_eof().is_empty());
}
