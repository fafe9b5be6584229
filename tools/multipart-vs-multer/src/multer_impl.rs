//! natron's multipart API (`parse`, `parse_with_limits`, `Multipart`) with
//! multer inside: what a replacement would look like. Types and limits are
//! natron's; only the parsing is multer's. natron's own validation is added
//! only where natron's API cannot do without it (the limits, a part index
//! in each error, the required `name`), so the comparison measures multer.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

// The constants are for natron's tests (src/natron_tests.rs).
#[cfg_attr(not(test), allow(unused_imports))]
pub use natron::http::multipart::{Limits, MultipartError, Part, MAX_HEADER_BYTES, MAX_PARTS};

/// natron's `Multipart` has a private field, so the wrapper is re-declared
/// (used by natron's tests only).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multipart {
    parts: Vec<Part>,
}

#[cfg_attr(not(test), allow(dead_code))]
impl Multipart {
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Multipart, MultipartError> {
        parse(content_type, body).map(|parts| Multipart { parts })
    }
    pub fn parse_with_limits(
        content_type: &str,
        body: &[u8],
        limits: &Limits,
    ) -> Result<Multipart, MultipartError> {
        parse_with_limits(content_type, body, limits).map(|parts| Multipart { parts })
    }
    pub fn get(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Part> + 'a {
        self.parts.iter().filter(move |p| p.name == name)
    }
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Part::text)
    }
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }
    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }
    pub fn len(&self) -> usize {
        self.parts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, MultipartError> {
    parse_with_limits(content_type, body, &Limits::default())
}

struct NoopWake;
impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// The minimal executor: the body is in memory, so the stream is always
/// ready and every poll must complete. A `Pending` would never be woken, so
/// it is reported instead of looping or blocking.
fn run<T>(fut: impl Future<Output = T>) -> Option<T> {
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

pub fn parse_with_limits(
    content_type: &str,
    body: &[u8],
    limits: &Limits,
) -> Result<Vec<Part>, MultipartError> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| match e {
        multer::Error::NoMultipart => MultipartError::NotMultipart,
        multer::Error::NoBoundary => MultipartError::MissingBoundary,
        _ => MultipartError::InvalidBoundary {
            reason: "multer: Content-Type does not parse",
        },
    })?;
    // multer's stream items must be 'static: one copy of the body.
    let data = bytes::Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let fut = async move {
        let mut parts = Vec::new();
        loop {
            let index = parts.len();
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(parts),
                Err(e) => return Err(map_err(e, index)),
            };
            if index >= limits.max_parts {
                return Err(MultipartError::TooManyParts {
                    limit: limits.max_parts,
                });
            }
            // multer keeps no raw header bytes: the closest measure is
            // `name: value CRLF` per header plus the blank line.
            let header_bytes: usize = field
                .headers()
                .iter()
                .map(|(n, v)| n.as_str().len() + 2 + v.len() + 2)
                .sum::<usize>()
                + 2;
            if header_bytes > limits.max_header_bytes {
                return Err(MultipartError::PartHeadersTooLarge {
                    part: index,
                    limit: limits.max_header_bytes,
                });
            }
            let headers: Vec<(String, String)> = field
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            if !headers.iter().any(|(n, _)| n == "content-disposition") {
                return Err(MultipartError::MissingContentDisposition { part: index });
            }
            let name = field
                .name()
                .map(str::to_owned)
                .ok_or(MultipartError::MissingName { part: index })?;
            let filename = field.file_name().map(str::to_owned);
            let content_type = field
                .headers()
                .get("content-type")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let body = field.bytes().await.map_err(|e| map_err(e, index))?;
            parts.push(Part {
                name,
                filename,
                content_type,
                headers,
                body: body.to_vec(),
            });
        }
    };
    run(fut).unwrap_or(Err(MultipartError::UnterminatedPart { part: 0 }))
}

fn map_err(e: multer::Error, part: usize) -> MultipartError {
    use multer::Error::*;
    match e {
        IncompleteStream if part == 0 => MultipartError::MissingFirstBoundary,
        IncompleteStream | IncompleteFieldData { .. } => MultipartError::UnterminatedPart { part },
        IncompleteHeaders
        | ReadHeaderFailed(_)
        | DecodeHeaderName { .. }
        | DecodeHeaderValue { .. } => MultipartError::MalformedPartHeaders {
            part,
            reason: "multer: header section does not parse",
        },
        _ => MultipartError::MalformedPartHeaders {
            part,
            reason: "multer: other error",
        },
    }
}

/// multer's own error text for a body, for the comparison table.
pub fn raw(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let data = bytes::Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
    let mut mp = multer::Multipart::new(stream, boundary);
    run(async move {
        let mut parts = Vec::new();
        while let Some(field) = mp.next_field().await.map_err(|e| format!("{e:?}"))? {
            let name = field.name().unwrap_or("<None>").to_owned();
            let filename = field.file_name().map(str::to_owned);
            let content_type = field
                .headers()
                .get("content-type")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let headers = field
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = field.bytes().await.map_err(|e| format!("{e:?}"))?.to_vec();
            parts.push(Part {
                name,
                filename,
                content_type,
                headers,
                body,
            });
        }
        Ok(parts)
    })
    .unwrap_or_else(|| Err("stalled: Pending with the whole body in memory".into()))
}
