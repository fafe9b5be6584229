//! The soak's client kinds. Each runs on its own thread until `stop`,
//! counts its actions and failures in the shared [`Tally`], and returns
//! the latencies (µs) of its actions when it is a well-behaved kind.

use crate::wire::{self, Rng};
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Message;

const HELLO: &[u8] = b"Hello, World!";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    KeepAlive,
    SleepBurst,
    Pipelined,
    PipelinedEcho,
    EchoLength,
    EchoChunked,
    WsText,
    WsBinary,
    HalfClose,
    Slowloris,
    AbortFin,
    AbortRst,
    NeverRead,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::KeepAlive,
        Kind::SleepBurst,
        Kind::Pipelined,
        Kind::PipelinedEcho,
        Kind::EchoLength,
        Kind::EchoChunked,
        Kind::WsText,
        Kind::WsBinary,
        Kind::HalfClose,
        Kind::Slowloris,
        Kind::AbortFin,
        Kind::AbortRst,
        Kind::NeverRead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::KeepAlive => "keep-alive GET",
            Kind::SleepBurst => "GET /sleep bursts",
            Kind::Pipelined => "pipelined GET",
            Kind::PipelinedEcho => "pipelined POST /echo",
            Kind::EchoLength => "POST /echo (Content-Length)",
            Kind::EchoChunked => "POST /echo (chunked)",
            Kind::WsText => "WebSocket echo (text)",
            Kind::WsBinary => "WebSocket echo (binary)",
            Kind::HalfClose => "half-close",
            Kind::Slowloris => "slowloris (cut off)",
            Kind::AbortFin => "abort with FIN",
            Kind::AbortRst => "abort with RST",
            Kind::NeverRead => "never reads (cut off)",
        }
    }

    /// Whose every action must succeed; the others only have to be dealt
    /// with (cut off in time) without hurting these.
    pub fn well_behaved(self) -> bool {
        matches!(
            self,
            Kind::KeepAlive
                | Kind::SleepBurst
                | Kind::Pipelined
                | Kind::PipelinedEcho
                | Kind::EchoLength
                | Kind::EchoChunked
                | Kind::WsText
                | Kind::WsBinary
                | Kind::HalfClose
        )
    }

    fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).expect("listed")
    }
}

const KINDS: usize = Kind::ALL.len();
/// Failure messages kept per run (the counters count them all).
const NOTES: usize = 30;

/// Counters shared by every client thread and the monitor.
#[derive(Default)]
pub struct Tally {
    actions: [AtomicU64; KINDS],
    errors: [AtomicU64; KINDS],
    corrupt: [AtomicU64; KINDS],
    notes: Mutex<Vec<String>>,
    pub slowloris_408: AtomicU64,
    pub slowloris_closed: AtomicU64,
    /// Longest wait, in ms, from a slowloris's first byte to its cut-off.
    pub slowloris_cut_ms_max: AtomicU64,
    /// Longest wait, in ms, from a never-reading client's first blocked
    /// write to its cut-off.
    pub never_read_cut_ms_max: AtomicU64,
}

impl Tally {
    pub fn actions(&self, k: Kind) -> u64 {
        self.actions[k.index()].load(Ordering::Relaxed)
    }
    pub fn errors(&self, k: Kind) -> u64 {
        self.errors[k.index()].load(Ordering::Relaxed)
    }
    pub fn corrupt(&self, k: Kind) -> u64 {
        self.corrupt[k.index()].load(Ordering::Relaxed)
    }
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }
    fn count(&self, k: Kind, n: u64) {
        self.actions[k.index()].fetch_add(n, Ordering::Relaxed);
    }
    fn note(&self, k: Kind, msg: String) {
        let mut notes = self.notes.lock().unwrap();
        if notes.len() < NOTES {
            notes.push(format!("{}: {msg}", k.name()));
        }
    }
    fn fail(&self, k: Kind, msg: String) {
        self.errors[k.index()].fetch_add(1, Ordering::Relaxed);
        self.note(k, msg);
    }
    fn mismatch(&self, k: Kind, msg: String) {
        self.corrupt[k.index()].fetch_add(1, Ordering::Relaxed);
        self.note(k, format!("CORRUPT {msg}"));
    }
}

/// What every client needs.
pub struct Ctx {
    pub addr: SocketAddr,
    pub stop: AtomicBool,
    pub tally: Tally,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// The server's lingering close (natron's default).
    pub linger_timeout: Duration,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u32::MAX as u128) as u32
}

/// Where two byte strings first differ, for a corruption report.
fn diff(sent: &[u8], got: &[u8]) -> String {
    let at = sent.iter().zip(got).position(|(a, b)| a != b);
    format!(
        "sent {} bytes, got {}, first difference at {:?}",
        sent.len(),
        got.len(),
        at
    )
}

fn hello(resp: &wire::Response) -> Result<(), String> {
    if resp.status != 200 || resp.body != HELLO {
        return Err(format!(
            "status {}, body {:?}",
            resp.status,
            String::from_utf8_lossy(&resp.body[..resp.body.len().min(60)])
        ));
    }
    Ok(())
}

/// Writes `bytes` in up to three pieces split at random points, so the
/// server's parser sees heads and bodies cut anywhere.
fn write_split(s: &mut TcpStream, bytes: &[u8], rng: &mut Rng) -> io::Result<()> {
    let mut cuts = [rng.below(bytes.len() + 1), rng.below(bytes.len() + 1)];
    cuts.sort_unstable();
    s.write_all(&bytes[..cuts[0]])?;
    s.write_all(&bytes[cuts[0]..cuts[1]])?;
    s.write_all(&bytes[cuts[1]..])
}

fn connect_or_note(ctx: &Ctx, kind: Kind) -> Option<TcpStream> {
    match wire::connect(ctx.addr) {
        Ok(s) => Some(s),
        Err(e) => {
            ctx.tally.fail(kind, format!("connect: {e}"));
            // Not a retry storm if the server is gone.
            thread::sleep(Duration::from_millis(100));
            None
        }
    }
}

/// Keep-alive GETs of `/` and (one in ten) `/sleep`, one at a time; the
/// connection is renewed now and then.
pub fn keep_alive(ctx: &Ctx, rng: &mut Rng, pace: Duration) -> Vec<u32> {
    let kind = Kind::KeepAlive;
    let mut lat = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !ctx.stopped() {
        if conn.is_none() {
            conn = connect_or_note(ctx, kind).map(BufReader::new);
        }
        let Some(c) = conn.as_mut() else { continue };
        let path = if rng.chance(10) { "/sleep" } else { "/" };
        let t = Instant::now();
        let got = c
            .get_mut()
            .write_all(&wire::get(path))
            .and_then(|()| wire::read_response(c));
        match got.map_err(|e| e.to_string()).and_then(|r| {
            hello(&r)?;
            Ok(r)
        }) {
            Ok(r) => {
                lat.push(micros(t));
                ctx.tally.count(kind, 1);
                if r.close || rng.below(500) == 0 {
                    conn = None;
                }
            }
            Err(e) => {
                ctx.tally.fail(kind, format!("GET {path}: {e}"));
                conn = None;
            }
        }
        thread::sleep(pace);
    }
    lat
}

/// Connections a `/sleep` burst holds: twice the default pool (2 cores x
/// 10), so every worker blocks and the pool grows.
const BURST: usize = 40;

/// Every `pace`, `GET /sleep` (a 10 ms blocking handler) on each of
/// [`BURST`] keep-alive connections at once, then every answer read: the
/// pool must grow for it, and its extra workers retire once the load
/// stops. A round's latency is its round trip.
pub fn sleep_burst(ctx: &Ctx, _rng: &mut Rng, pace: Duration) -> Vec<u32> {
    let kind = Kind::SleepBurst;
    let mut lat = Vec::new();
    let mut conns: Vec<Option<BufReader<TcpStream>>> = (0..BURST).map(|_| None).collect();
    while !ctx.stopped() {
        let t = Instant::now();
        for slot in conns.iter_mut() {
            if slot.is_none() {
                *slot = connect_or_note(ctx, kind).map(BufReader::new);
            }
            if let Some(c) = slot {
                if let Err(e) = c.get_mut().write_all(&wire::get("/sleep")) {
                    ctx.tally.fail(kind, format!("write: {e}"));
                    *slot = None;
                }
            }
        }
        let mut ok = 0;
        for slot in conns.iter_mut() {
            let Some(c) = slot else { continue };
            match wire::read_response(c) {
                Ok(r) if hello(&r).is_ok() => {
                    ok += 1;
                    if r.close {
                        *slot = None;
                    }
                }
                Ok(r) => {
                    ctx.tally.fail(kind, format!("status {}", r.status));
                    *slot = None;
                }
                Err(e) => {
                    ctx.tally.fail(kind, e.to_string());
                    *slot = None;
                }
            }
        }
        if ok == BURST {
            lat.push(micros(t));
        }
        ctx.tally.count(kind, ok as u64);
        // Less than the idle timeout, so no connection is closed idle.
        thread::sleep(pace);
    }
    lat
}

/// Batches of 2 to 32 GETs written at once (in random pieces), then all
/// responses read; a batch's latency is its round trip.
pub fn pipelined(ctx: &Ctx, rng: &mut Rng, pace: Duration) -> Vec<u32> {
    let kind = Kind::Pipelined;
    let mut lat = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !ctx.stopped() {
        if conn.is_none() {
            conn = connect_or_note(ctx, kind).map(BufReader::new);
        }
        let Some(c) = conn.as_mut() else { continue };
        let n = rng.range(2, 32);
        let batch: Vec<u8> = (0..n).flat_map(|_| wire::get("/")).collect();
        let t = Instant::now();
        let got = write_split(c.get_mut(), &batch, rng)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                for i in 0..n {
                    let r =
                        wire::read_response(c).map_err(|e| format!("response {i} of {n}: {e}"))?;
                    hello(&r).map_err(|e| format!("response {i} of {n}: {e}"))?;
                }
                Ok(())
            });
        match got {
            Ok(()) => {
                lat.push(micros(t));
                ctx.tally.count(kind, n as u64);
                if rng.below(200) == 0 {
                    conn = None;
                }
            }
            Err(e) => {
                ctx.tally.fail(kind, e);
                conn = None;
            }
        }
        thread::sleep(pace);
    }
    lat
}

/// `POST /echo` of random bodies (empty to 256 KiB), framed by
/// Content-Length or chunked at random, checked byte for byte.
pub fn echo(ctx: &Ctx, rng: &mut Rng, pace: Duration) -> Vec<u32> {
    let mut lat = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !ctx.stopped() {
        let chunked = rng.chance(50);
        let kind = if chunked {
            Kind::EchoChunked
        } else {
            Kind::EchoLength
        };
        if conn.is_none() {
            conn = connect_or_note(ctx, kind).map(BufReader::new);
        }
        let Some(c) = conn.as_mut() else { continue };
        let len = rng.size(1024, 16 * 1024, 256 * 1024);
        let body = rng.bytes(len);
        let req = if chunked {
            wire::post_chunked(&body, rng)
        } else {
            wire::post_length(&body)
        };
        let t = Instant::now();
        match write_split(c.get_mut(), &req, rng).and_then(|()| wire::read_response(c)) {
            Ok(r) if r.status == 200 && r.body == body => {
                lat.push(micros(t));
                ctx.tally.count(kind, 1);
                if r.close || rng.below(500) == 0 {
                    conn = None;
                }
            }
            Ok(r) if r.status == 200 => {
                ctx.tally.mismatch(kind, diff(&body, &r.body));
                conn = None;
            }
            Ok(r) => {
                ctx.tally
                    .fail(kind, format!("{len}-byte body answered {}", r.status));
                conn = None;
            }
            Err(e) => {
                ctx.tally.fail(kind, format!("{len}-byte body: {e}"));
                conn = None;
            }
        }
        thread::sleep(pace);
    }
    lat
}

/// Batches of 33 to 80 echoes of 8 to 96 KiB written by a second thread
/// while this one reads and checks the answers in order: more than
/// `MAX_PIPELINE` (32) requests and more than the 1 MiB write backlog
/// outstanding, so natron pauses and resumes reading mid-batch.
pub fn pipelined_echo(ctx: &Ctx, rng: &mut Rng, pace: Duration) -> Vec<u32> {
    let kind = Kind::PipelinedEcho;
    let mut lat = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !ctx.stopped() {
        if conn.is_none() {
            conn = connect_or_note(ctx, kind).map(BufReader::new);
        }
        let Some(c) = conn.as_mut() else { continue };
        let Ok(mut w) = c.get_ref().try_clone() else {
            ctx.tally.fail(kind, "try_clone failed".into());
            conn = None;
            continue;
        };
        let n = rng.range(33, 80);
        let bodies: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let len = rng.range(8 * 1024, 96 * 1024);
                rng.bytes(len)
            })
            .collect();
        let mut batch = Vec::new();
        for b in &bodies {
            if rng.chance(50) {
                batch.extend(wire::post_chunked(b, rng));
            } else {
                batch.extend(wire::post_length(b));
            }
        }
        let t = Instant::now();
        let (sent, got) = thread::scope(|s| {
            let writer = s.spawn(move || w.write_all(&batch));
            let mut got = Ok(());
            for (i, body) in bodies.iter().enumerate() {
                got = match wire::read_response(c) {
                    Ok(r) if r.status == 200 && r.body == *body => Ok(()),
                    Ok(r) if r.status == 200 => Err((
                        true,
                        format!("response {i} of {n}: {}", diff(body, &r.body)),
                    )),
                    Ok(r) => Err((false, format!("response {i} of {n}: status {}", r.status))),
                    Err(e) => Err((false, format!("response {i} of {n}: {e}"))),
                };
                if got.is_err() {
                    // Unblocks the writer if the server stopped reading.
                    let _ = c.get_ref().shutdown(Shutdown::Both);
                    break;
                }
            }
            (writer.join().expect("writer thread"), got)
        });
        match (got, sent) {
            (Ok(()), Ok(())) => {
                lat.push(micros(t));
                ctx.tally.count(kind, n as u64);
            }
            (Ok(()), Err(e)) => {
                ctx.tally.fail(kind, format!("write: {e}"));
                conn = None;
            }
            (Err((true, e)), _) => {
                ctx.tally.mismatch(kind, e);
                conn = None;
            }
            (Err((false, e)), _) => {
                ctx.tally.fail(kind, e);
                conn = None;
            }
        }
        thread::sleep(pace);
    }
    lat
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn ws_connect(ctx: &Ctx) -> Result<Ws, String> {
    let tcp = wire::connect(ctx.addr).map_err(|e| format!("connect: {e}"))?;
    let url = format!("ws://{}/ws", ctx.addr);
    tungstenite::client::client(url, tcp)
        .map(|(ws, _)| ws)
        .map_err(|e| format!("handshake: {e}"))
}

/// The next text or binary message (pings and pongs skipped).
fn ws_next(ws: &mut Ws) -> Result<Message, String> {
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => return Ok(m),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Ok(Message::Close(c)) => return Err(format!("server closed: {c:?}")),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// WebSocket echo: 1 to 8 messages sent (text or binary, empty to
/// 64 KiB = `max_message_len`), then read back in order and compared
/// byte for byte; a ping now and then; the socket closed properly and
/// reopened now and then.
pub fn websocket(ctx: &Ctx, rng: &mut Rng, pace: Duration) -> Vec<u32> {
    let mut lat = Vec::new();
    let mut ws: Option<Ws> = None;
    while !ctx.stopped() {
        if ws.is_none() {
            match ws_connect(ctx) {
                Ok(w) => ws = Some(w),
                Err(e) => {
                    ctx.tally.fail(Kind::WsText, e);
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let w = ws.as_mut().expect("connected above");
        let n = if rng.chance(80) { 1 } else { rng.range(2, 8) };
        let sent: Vec<Message> = (0..n)
            .map(|_| {
                let len = rng.size(256, 8 * 1024, 64 * 1024);
                if rng.chance(50) {
                    Message::text(rng.text(len))
                } else {
                    Message::binary(rng.bytes(len))
                }
            })
            .collect();
        let t = Instant::now();
        let mut outcome = Ok(());
        if rng.chance(2) {
            outcome = w.send(Message::Ping(b"soak".to_vec().into()));
        }
        for m in &sent {
            if outcome.is_ok() {
                outcome = w.send(m.clone());
            }
        }
        let mut bad: Option<(Kind, String, bool)> = outcome
            .err()
            .map(|e| (Kind::WsText, format!("send: {e}"), false));
        for (i, m) in sent.iter().enumerate() {
            if bad.is_some() {
                break;
            }
            let kind = match m {
                Message::Text(_) => Kind::WsText,
                _ => Kind::WsBinary,
            };
            match ws_next(w) {
                Ok(got) if got == *m => ctx.tally.count(kind, 1),
                Ok(got) => {
                    let what = format!(
                        "message {i} of {n}: {}",
                        diff(&m.clone().into_data(), &got.into_data())
                    );
                    bad = Some((kind, what, true));
                }
                Err(e) => bad = Some((kind, format!("message {i} of {n}: {e}"), false)),
            }
        }
        match bad {
            None => {
                lat.push(micros(t));
                if rng.below(300) == 0 {
                    let mut w = ws.take().expect("connected");
                    let _ = w.close(None);
                    // Until tungstenite sees the server's close frame and
                    // the end of the stream.
                    while w.read().is_ok() {}
                }
            }
            Some((kind, what, corrupt)) => {
                if corrupt {
                    ctx.tally.mismatch(kind, what);
                } else {
                    ctx.tally.fail(kind, what);
                }
                ws = None;
            }
        }
        thread::sleep(pace);
    }
    if let Some(mut w) = ws {
        let _ = w.close(None);
        while w.read().is_ok() {}
    }
    lat
}

/// A request, then `shutdown(Write)`: the whole response must still
/// arrive, followed by the end of the stream.
pub fn half_close(ctx: &Ctx, rng: &mut Rng, pace: Duration) -> Vec<u32> {
    let kind = Kind::HalfClose;
    let mut lat = Vec::new();
    while !ctx.stopped() {
        let Some(s) = connect_or_note(ctx, kind) else {
            continue;
        };
        let body = rng.sized_bytes(512, 8 * 1024, 64 * 1024);
        let echo = rng.chance(50);
        let req = if echo {
            wire::post_length(&body)
        } else {
            wire::get("/")
        };
        let t = Instant::now();
        let mut r = BufReader::new(s);
        let got = r
            .get_mut()
            .write_all(&req)
            .and_then(|()| r.get_ref().shutdown(Shutdown::Write))
            .and_then(|()| wire::read_response(&mut r));
        match got {
            Ok(resp)
                if resp.status == 200 && (if echo { &body[..] } else { HELLO }) == resp.body =>
            {
                let mut rest = Vec::new();
                match r.read_to_end(&mut rest) {
                    Ok(_) if rest.is_empty() => {
                        lat.push(micros(t));
                        ctx.tally.count(kind, 1);
                    }
                    Ok(_) => ctx
                        .tally
                        .fail(kind, format!("{} bytes after the response", rest.len())),
                    Err(e) => ctx.tally.fail(kind, format!("waiting for the end: {e}")),
                }
            }
            Ok(resp) if resp.status == 200 && echo => {
                ctx.tally.mismatch(kind, diff(&body, &resp.body));
            }
            Ok(resp) => ctx.tally.fail(kind, format!("status {}", resp.status)),
            Err(e) => ctx.tally.fail(kind, e.to_string()),
        }
        thread::sleep(pace);
    }
    lat
}

fn max_ms(slot: &AtomicU64, since: Instant) {
    slot.fetch_max(since.elapsed().as_millis() as u64, Ordering::Relaxed);
}

/// A head dribbled one byte per eighth of the header timeout (80 bytes:
/// ten timeouts' worth). It must be answered 408 or closed within four
/// timeouts of its first byte.
pub fn slowloris(ctx: &Ctx, _rng: &mut Rng, _pace: Duration) -> Vec<u32> {
    let kind = Kind::Slowloris;
    let head = format!(
        "GET / HTTP/1.1\r\nHost: soak\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(46)
    );
    let step = ctx.header_timeout / 8;
    let limit = ctx.header_timeout * 4;
    'conn: while !ctx.stopped() {
        let Some(mut s) = connect_or_note(ctx, kind) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(step));
        let start = Instant::now();
        let mut got = Vec::new();
        for b in head.as_bytes().chunks(1) {
            if ctx.stopped() {
                break 'conn;
            }
            if start.elapsed() > limit {
                ctx.tally.fail(kind, format!("not cut off after {limit:?}"));
                continue 'conn;
            }
            if let Err(e) = s.write_all(b) {
                if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                    ctx.tally.slowloris_closed.fetch_add(1, Ordering::Relaxed);
                    ctx.tally.count(kind, 1);
                    max_ms(&ctx.tally.slowloris_cut_ms_max, start);
                } else {
                    ctx.tally.fail(kind, format!("write: {e}"));
                }
                continue 'conn;
            }
            let mut buf = [0; 256];
            // The read timeout is the dribble's pace.
            match s.read(&mut buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Ok(n) if n > 0 => {
                    got.extend_from_slice(&buf[..n]);
                    if !got.windows(2).any(|w| w == b"\r\n") {
                        continue;
                    }
                    if got.starts_with(b"HTTP/1.1 408 ") {
                        ctx.tally.slowloris_408.fetch_add(1, Ordering::Relaxed);
                        ctx.tally.count(kind, 1);
                        max_ms(&ctx.tally.slowloris_cut_ms_max, start);
                    } else {
                        let line = String::from_utf8_lossy(&got);
                        ctx.tally
                            .fail(kind, format!("answered {:?}", line.lines().next()));
                    }
                }
                Ok(_) => {
                    ctx.tally.slowloris_closed.fetch_add(1, Ordering::Relaxed);
                    ctx.tally.count(kind, 1);
                    max_ms(&ctx.tally.slowloris_cut_ms_max, start);
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    ctx.tally.slowloris_closed.fetch_add(1, Ordering::Relaxed);
                    ctx.tally.count(kind, 1);
                    max_ms(&ctx.tally.slowloris_cut_ms_max, start);
                }
                Err(e) => ctx.tally.fail(kind, format!("read: {e}")),
            }
            continue 'conn;
        }
        ctx.tally
            .fail(kind, "the whole head went through uncut".to_string());
    }
    Vec::new()
}

/// Connects, sends a random prefix (possibly all) of a request — GET,
/// POST with either framing, pipelined GETs, or a WebSocket upgrade with
/// frames — maybe reads a little, and drops the connection with FIN or,
/// via `SO_LINGER` 0, RST.
pub fn abort(ctx: &Ctx, rng: &mut Rng, pace: Duration) -> Vec<u32> {
    while !ctx.stopped() {
        let rst = rng.chance(50);
        let kind = if rst { Kind::AbortRst } else { Kind::AbortFin };
        let Some(mut s) = connect_or_note(ctx, kind) else {
            continue;
        };
        let full = match rng.below(5) {
            0 => wire::get("/"),
            1 => wire::post_length(&rng.sized_bytes(1024, 16 * 1024, 128 * 1024)),
            2 => {
                let body = rng.sized_bytes(1024, 16 * 1024, 128 * 1024);
                wire::post_chunked(&body, rng)
            }
            3 => (0..rng.range(2, 40)).flat_map(|_| wire::get("/")).collect(),
            _ => {
                let mut b = wire::ws_upgrade();
                for _ in 0..rng.range(1, 3) {
                    let payload = rng.sized_bytes(125, 4096, 64 * 1024);
                    b.extend(wire::ws_frame(&payload, rng));
                }
                b
            }
        };
        let cut = if rng.chance(25) {
            full.len()
        } else {
            rng.below(full.len() + 1)
        };
        let sent = write_split(&mut s, &full[..cut], rng).and_then(|()| {
            if rng.chance(30) {
                // Read a little of whatever came back, if anything did.
                s.set_read_timeout(Some(Duration::from_millis(5)))?;
                let mut buf = vec![0; rng.range(1, 300)];
                match s.read(&mut buf) {
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    other => {
                        other?;
                    }
                }
            }
            if rst {
                wire::set_linger_zero(&s)?;
            }
            Ok(())
        });
        match sent {
            Ok(()) => ctx.tally.count(kind, 1),
            Err(e) => ctx
                .tally
                .fail(kind, format!("{cut} of {} bytes: {e}", full.len())),
        }
        drop(s);
        thread::sleep(pace);
    }
    Vec::new()
}

/// Writes pipelined requests (GETs, or 64 KiB echoes) and never reads.
/// The server must stop reading (backpressure) and then cut the
/// connection (idle timeout), seen here as a write failing, within
/// `idle_timeout + linger + 10 s` of the first blocked write.
pub fn never_read(ctx: &Ctx, rng: &mut Rng, _pace: Duration) -> Vec<u32> {
    let kind = Kind::NeverRead;
    let limit = ctx.idle_timeout + ctx.linger_timeout + Duration::from_secs(10);
    'conn: while !ctx.stopped() {
        let Some(mut s) = connect_or_note(ctx, kind) else {
            continue;
        };
        let _ = s.set_write_timeout(Some(Duration::from_millis(250)));
        let batch = if rng.chance(50) {
            (0..64).flat_map(|_| wire::get("/")).collect()
        } else {
            wire::post_length(&rng.bytes(64 * 1024))
        };
        let mut stalled: Option<Instant> = None;
        let mut written = 0u64;
        loop {
            let mut at = 0;
            while at < batch.len() {
                if ctx.stopped() {
                    break 'conn;
                }
                match s.write(&batch[at..]) {
                    Ok(n) => {
                        at += n;
                        written += n as u64;
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        let since = *stalled.get_or_insert_with(Instant::now);
                        if since.elapsed() > limit {
                            ctx.tally.fail(
                                kind,
                                format!(
                                    "not cut off {limit:?} after blocking ({written} bytes sent)"
                                ),
                            );
                            continue 'conn;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                        ) =>
                    {
                        match stalled {
                            Some(since) => {
                                max_ms(&ctx.tally.never_read_cut_ms_max, since);
                                ctx.tally.count(kind, 1);
                            }
                            None => ctx
                                .tally
                                .fail(kind, format!("cut off before any backpressure: {e}")),
                        }
                        continue 'conn;
                    }
                    Err(e) => {
                        ctx.tally.fail(kind, format!("write: {e}"));
                        continue 'conn;
                    }
                }
            }
            // Before it blocks; after, a lingering close may read and drop
            // for a while, as it should.
            if stalled.is_none() && written > 1 << 30 {
                ctx.tally
                    .fail(kind, "1 GiB written and still no backpressure".to_string());
                continue 'conn;
            }
        }
    }
    Vec::new()
}
