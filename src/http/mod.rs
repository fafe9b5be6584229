//! HTTP/1.1 types and helpers: requests, headers, responses, compression,
//! multipart.
//!
//! The wire parser lives with the reader role of the IO actor (`reader.rs`);
//! this module holds what a handler sees.

pub(crate) mod body;
pub(crate) mod compress;
pub(crate) mod date;
pub(crate) mod forwarded;
mod from_reader;
mod headers;
pub mod multipart;
pub(crate) mod range;
pub(crate) mod reader;
pub(crate) mod request;
pub mod sse;
pub mod status;
pub mod stream;
pub mod url;

pub use body::{BodyError, BodyReader};
pub use forwarded::ProxyHeaders;
pub use headers::{Headers, HeadersIter};
pub use request::{ErrorHandler, Parts, Request, Responder, Response, Version};
pub use status::{IntoStatus, InvalidStatus, StatusCode};
pub use stream::{ResponseStream, StreamError};
