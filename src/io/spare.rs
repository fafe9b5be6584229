//! Spare read buffers of one IO actor.
//!
//! A connection's `Reader` holds a buffer only while part of a request is
//! unparsed: an idle keep-alive connection (or WebSocket) holds none. A
//! busy keep-alive connection would then allocate and free a buffer for
//! every request, on the IO thread, for bytes a worker frees; instead the
//! emptied buffer goes back here and the next read on any of this actor's
//! connections takes it. Bounded: at most [`MAX_SPARE`] buffers of at most
//! [`MAX_SPARE_CAPACITY`] bytes each (512 KiB per IO actor); anything else
//! is freed.

/// Most buffers kept.
pub(crate) const MAX_SPARE: usize = 64;
/// Largest buffer kept, in bytes; a buffer grown for a large body is freed.
pub(crate) const MAX_SPARE_CAPACITY: usize = 8 * 1024;

/// The spare buffers, each empty.
#[derive(Default)]
pub(crate) struct Spare {
    bufs: Vec<Vec<u8>>,
}

impl Spare {
    /// An empty buffer: a spare one if any, else a new one with no capacity.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.bufs.pop().unwrap_or_default()
    }

    /// Keeps `buf` for reuse if there is room and it is not too large.
    pub(crate) fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() == 0
            || buf.capacity() > MAX_SPARE_CAPACITY
            || self.bufs.len() >= MAX_SPARE
        {
            return;
        }
        buf.clear();
        self.bufs.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_count_and_size() {
        let mut spare = Spare::default();
        for _ in 0..MAX_SPARE + 10 {
            spare.give(Vec::with_capacity(100));
        }
        spare.give(Vec::with_capacity(MAX_SPARE_CAPACITY + 1));
        spare.give(Vec::new());
        assert_eq!(spare.bufs.len(), MAX_SPARE);
        let b = spare.take();
        assert!(b.is_empty() && b.capacity() >= 100);
    }

    #[test]
    fn given_buffers_come_back_empty() {
        let mut spare = Spare::default();
        spare.give(b"leftover".to_vec());
        assert!(spare.take().is_empty());
        assert_eq!(spare.take().capacity(), 0);
    }
}
