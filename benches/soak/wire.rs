//! The soak's client side of the wire: a seeded generator, a minimal
//! HTTP/1.1 response reader over a std `TcpStream`, request builders and a
//! masked WebSocket frame for the clients that tungstenite will not play
//! (aborting mid-frame).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long any well-behaved client waits on one read or write before the
/// action counts as lost: far past any latency the soak should see.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// xorshift64*: reproducible from the seed the soak prints, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Any seed but 0 works; mix so that neighbouring seeds differ.
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v
    }

    /// Valid UTF-8 of exactly `len` bytes, with 2-, 3- and 4-byte
    /// characters so that a split or shifted byte would show.
    pub fn text(&mut self, len: usize) -> String {
        const CHARS: [char; 8] = ['a', 'Z', '0', ' ', 'é', 'ж', '€', '𝄞'];
        let mut s = String::with_capacity(len);
        while s.len() < len {
            let c = CHARS[self.below(CHARS.len())];
            s.push(if s.len() + c.len_utf8() <= len {
                c
            } else {
                'a'
            });
        }
        s
    }

    /// Random bytes of a [`Rng::size`].
    pub fn sized_bytes(&mut self, small: usize, medium: usize, max: usize) -> Vec<u8> {
        let len = self.size(small, medium, max);
        self.bytes(len)
    }

    /// A size: mostly small, sometimes medium, rarely up to `max`.
    pub fn size(&mut self, small: usize, medium: usize, max: usize) -> usize {
        match self.below(100) {
            0..=69 => self.below(small + 1),
            70..=94 => self.range(small, medium),
            _ => self.range(medium, max),
        }
    }
}

/// A connected socket with the soak's timeouts and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Makes the next close of `s` send RST instead of FIN (`SO_LINGER` 0).
pub fn set_linger_zero(s: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `s` owns a valid socket descriptor for the whole call, and
    // `linger` is a properly initialised `struct linger` whose size is the
    // length passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One response as the client saw it.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Connection: close` was sent: nothing follows on this connection.
    pub close: bool,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one whole response (natron always sends `Content-Length`).
pub fn read_response(r: &mut BufReader<TcpStream>) -> io::Result<Response> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let mut len = None;
    let mut close = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside a response head"));
        }
        let field = line.trim_end();
        if field.is_empty() {
            break;
        }
        let (name, value) = field
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {field:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            len = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad(format!("bad Content-Length {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let len = len.ok_or_else(|| bad(format!("{status} response without Content-Length")))?;
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Response {
        status,
        body,
        close,
    })
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n").into_bytes()
}

pub fn post_length(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// `body` in chunks of random sizes, some with an extension, and a
/// trailer now and then.
pub fn post_chunked(body: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut req =
        b"POST /echo HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    while !rest.is_empty() {
        let most = rest.len().min(1 + rng.below(20_000));
        let n = rng.range(1, most);
        let ext = if rng.chance(10) { ";soak=1" } else { "" };
        write!(req, "{n:x}{ext}\r\n").unwrap();
        req.extend_from_slice(&rest[..n]);
        req.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    req.extend_from_slice(b"0\r\n");
    if rng.chance(10) {
        req.extend_from_slice(b"X-Trailer: soak\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

/// A WebSocket opening handshake for `/ws` (the key is a fixed valid one:
/// the aborting clients never check the accept value).
pub fn ws_upgrade() -> Vec<u8> {
    b"GET /ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec()
}

/// A masked, final binary frame carrying `payload`, as a client sends it.
pub fn ws_frame(payload: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut f = vec![0x82];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = (rng.next_u64() as u32).to_be_bytes();
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}
