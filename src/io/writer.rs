//! The writer role of the IO actor: the queue of bytes owed to one socket.
//!
//! Buffers are written in the order pushed. A write that would block leaves
//! the rest queued until the socket is writable again; nothing is dropped
//! until the connection is. Its size is bounded by its producers (see
//! [`crate::actor::outbox`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::ops::Deref;
use std::sync::Arc;

/// Bytes owed to a socket: owned by this connection (a response, a frame
/// sent to it alone) or shared with other connections (a published frame,
/// encoded once for every subscriber: `writev` reads it in place, nothing
/// is copied per subscriber).
#[derive(Clone, Debug)]
pub enum Chunk {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    Static(&'static [u8]),
}

impl Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(a) => a,
            Chunk::Static(s) => s,
        }
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(v: Vec<u8>) -> Chunk {
        Chunk::Owned(v)
    }
}

impl From<Arc<[u8]>> for Chunk {
    fn from(a: Arc<[u8]>) -> Chunk {
        Chunk::Shared(a)
    }
}

/// One connection's outbound queue of chunks, written with `writev`
/// without copying.
#[derive(Default)]
pub struct Writer {
    queue: VecDeque<Chunk>,
    /// Bytes of `queue[0]` already written.
    offset: usize,
    queued_bytes: usize,
}

/// How many buffers one `writev` takes at most.
const MAX_IOVECS: usize = 64;

impl Writer {
    /// Queues `bytes` after everything queued before.
    pub fn push(&mut self, bytes: impl Into<Chunk>) {
        let bytes = bytes.into();
        if !bytes.is_empty() {
            self.queued_bytes += bytes.len();
            self.queue.push_back(bytes);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes - self.offset
    }

    /// Writes as much as the socket takes. `Ok(true)` when everything is
    /// written, `Ok(false)` when the socket would block.
    ///
    /// # Errors
    ///
    /// The socket's error other than `WouldBlock` and `Interrupted`; the
    /// connection is then closed.
    pub fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<bool> {
        while !self.queue.is_empty() {
            fault_point!(IoWrite);
            let n = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut k = 0;
                for (i, buf) in self.queue.iter().take(MAX_IOVECS).enumerate() {
                    slices[i] = IoSlice::new(if i == 0 {
                        &buf[self.offset..]
                    } else {
                        &buf[..]
                    });
                    k = i + 1;
                }
                match sock.write_vectored(&slices[..k]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    // A socket never reports more than it was given; were
                    // one to, the counts below would break.
                    Ok(n) if n > self.queued_bytes() => {
                        return Err(io::Error::other("natron bug: wrote more than was queued"))
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.advance(n);
        }
        Ok(true)
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let front = self.queue.front().expect("advance within queued bytes");
            let left = front.len() - self.offset;
            if n >= left {
                n -= left;
                self.queued_bytes -= front.len();
                self.queue.pop_front();
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
        if self.queue.is_empty() && self.queue.capacity() > 16 {
            self.queue = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `cap` bytes per call, then blocks once.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        block_next: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.block_next {
                self.block_next = false;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.block_next = true;
            let n = b.len().min(self.cap);
            self.out.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn shared_chunks_are_written_in_place_not_copied() {
        let frame: Arc<[u8]> = Arc::from(&b"published"[..]);
        let mut writers: Vec<Writer> = (0..3).map(|_| Writer::default()).collect();
        for w in &mut writers {
            w.push(Chunk::Shared(frame.clone()));
        }
        // One allocation, referenced by every queue.
        assert_eq!(Arc::strong_count(&frame), 4);
        for w in &writers {
            match w.queue.front() {
                Some(Chunk::Shared(a)) => assert!(std::ptr::eq(a.as_ptr(), frame.as_ptr())),
                other => panic!("expected the shared frame, got {other:?}"),
            }
        }
        for mut w in writers {
            let mut out = Vec::new();
            assert!(w.flush(&mut out).unwrap());
            assert_eq!(out, b"published");
        }
        assert_eq!(Arc::strong_count(&frame), 1, "written chunks are released");
    }

    #[test]
    fn keeps_order_across_partial_writes() {
        let mut w = Writer::default();
        let mut s = Trickle {
            out: vec![],
            cap: 3,
            block_next: false,
        };
        w.push(b"hello ".to_vec());
        w.push(b"big ".to_vec());
        w.push(b"world".to_vec());
        let mut rounds = 0;
        while !w.flush(&mut s).unwrap() {
            rounds += 1;
            assert!(rounds < 100);
        }
        assert_eq!(s.out, b"hello big world");
        assert_eq!(w.queued_bytes(), 0);
    }
}
