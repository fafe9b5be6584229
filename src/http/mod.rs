//! HTTP/1.1 types and helpers: requests, headers, responses, compression,
//! multipart.
//!
//! The wire parser lives with the reader actor in [`crate::reader`]; this
//! module holds what a handler sees.

pub(crate) mod compress;
pub(crate) mod date;
mod headers;
pub(crate) mod request;
pub mod status;
pub mod url;

pub use headers::Headers;
pub use request::{ErrorHandler, Request, Response, Version};
