//! Static files: [`ServeDir`] answers `GET` and `HEAD` with the files
//! under one directory, streamed from disk.
//!
//! ```no_run
//! use natron::{fs::ServeDir, Router, Server};
//!
//! let mut router = Router::new();
//! // `/static/app.js` is `./public/app.js`; `/static/` is `./public/index.html`.
//! router.serve_dir("/static", "./public");
//! // Or a whole server of files, without a router:
//! let files = ServeDir::new("./public");
//! # let _ = (router, files);
//! ```
//!
//! What a request gets (RFC 9110 terms):
//!
//! | request | response |
//! |---|---|
//! | a regular file | `200`, `Content-Type` by extension (`mime_guess`; `text/*`, JS and JSON with `charset=utf-8`; unknown: `application/octet-stream`), `Content-Length`, `ETag`, `Last-Modified`, `Accept-Ranges: bytes`; streamed ([`Request::respond_seekable`]) |
//! | `Range` | `206` with one part, `416` if unsatisfiable, `If-Range` honoured (see [`Request::respond_seekable`]) |
//! | `If-None-Match` matching (weak comparison), or else `If-Modified-Since` not older than the file | `304` with `ETag` and `Last-Modified` (§13.1.2, §13.1.3, §15.4.5) |
//! | `If-Match` not matching (strong comparison), or else `If-Unmodified-Since` older than the file | `412` (§13.1.1, §13.1.4) |
//! | a directory, path ending in `/` | its `index.html`, as a file; `404` without one (no listing) |
//! | a directory, path without the `/` | `301` to the path with `/` (query kept), so relative links in the index resolve |
//! | a method other than `GET`/`HEAD` | `405` with `Allow: GET, HEAD` |
//! | no such file, not a regular file (device, FIFO), unreadable | `404` (`403` for a permission error) |
//! | a path that could leave the root | `404`, see below |
//!
//! Preconditions are evaluated in RFC 9110 §13.2.2's order. Dates are read
//! in all three HTTP-date forms (§5.6.7: IMF-fixdate, RFC 850, asctime); a
//! date that is none of them is ignored (full `200`), never a wrong `304`.
//!
//! # The root is a boundary
//!
//! No request reads outside the directory. The raw request target is
//! split on `/` before any percent-decoding, and a path is refused (`404`:
//! no file has such a name under the root) when a segment, decoded, is
//! `.` or `..` (also spelled `%2e%2e`), holds a `/` (`%2F`), a `\` (raw or
//! `%5C`) or a NUL (`%00`), or is empty before the last (`//etc/passwd`).
//! Behind a [`Router`](crate::Router), a decoded `.` or `..` segment is
//! already answered `400` by the router (see [`crate::router`]'s
//! "Paths"). The rest is joined to the root one plain name at a time, then
//! the result is canonicalised (symlinks resolved) and must still be under
//! the canonical root: a symlink that leaves the root is `404` unless
//! [`ServeDir::follow_symlinks`] allows it. Symlinks within the root are
//! followed.
//!
//! Files are opened with `O_NONBLOCK` (a FIFO planted in the root cannot
//! stall a worker at `open`) and must be regular files.

mod cond;
mod path;

pub(crate) use path::has_dot_segment;

use crate::handler::{Error, Handler};
use crate::http::{Headers, Request};
use cond::{Outcome, Validators};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A [`Handler`] serving the files under a directory: see the [module
/// documentation](self) for what each request gets and how the root is
/// kept.
///
/// ```no_run
/// use natron::{fs::ServeDir, Server};
///
/// let server = Server::builder()
///     .handler(ServeDir::new("./public").follow_symlinks(false))
///     .build();
/// server.serve("127.0.0.1:8080")?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServeDir {
    root: PathBuf,
    /// The decoded segments of the path the directory is mounted at.
    prefix: Vec<String>,
    follow_symlinks: bool,
    index: Option<String>,
}

impl ServeDir {
    /// Serves `root` at `/`: `GET /a/b.txt` is `root/a/b.txt`. The
    /// directory is looked up at each request, so it may be created or
    /// replaced after the server starts (a missing root answers `404`).
    ///
    /// ```
    /// let files = natron::fs::ServeDir::new("./public");
    /// # let _ = files;
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> ServeDir {
        ServeDir {
            root: root.into(),
            prefix: Vec::new(),
            follow_symlinks: false,
            index: Some("index.html".to_owned()),
        }
    }

    /// Serves `root` at `prefix` (`/static`: `GET /static/a.js` is
    /// `root/a.js`), as [`Router::serve_dir`](crate::Router::serve_dir)
    /// mounts it. A request outside `prefix` is `404`.
    ///
    /// # Panics
    ///
    /// If `prefix` does not start with `/`, or has a `.`, `..` or (before
    /// the end) empty segment.
    ///
    /// ```
    /// let mut router = natron::Router::new();
    /// // What `router.serve_dir("/assets", "./public")` does, by hand:
    /// router.get("/assets/**", natron::fs::ServeDir::at("/assets", "./public"));
    /// ```
    pub fn at(prefix: &str, root: impl Into<PathBuf>) -> ServeDir {
        ServeDir {
            prefix: prefix_segments(prefix),
            ..ServeDir::new(root)
        }
    }

    /// Whether a symlink under the root may point outside it (default
    /// `false`: such a file is `404`). Turn it on only when every link in
    /// the tree is trusted.
    ///
    /// ```
    /// // `./public/docs -> /usr/share/doc` is served.
    /// let files = natron::fs::ServeDir::new("./public").follow_symlinks(true);
    /// # let _ = files;
    /// ```
    pub fn follow_symlinks(mut self, yes: bool) -> ServeDir {
        self.follow_symlinks = yes;
        self
    }

    /// The file served for a path ending in `/` (default `index.html`);
    /// `None`: such paths are `404`.
    ///
    /// ```
    /// let files = natron::fs::ServeDir::new("./site").index_file(Some("index.htm"));
    /// # let _ = files;
    /// ```
    pub fn index_file(mut self, name: Option<&str>) -> ServeDir {
        self.index = name.map(str::to_owned);
        self
    }

    /// Resolves `segments` (all safe names) to an open regular file, or
    /// what to answer instead.
    fn open(&self, segments: &[String]) -> Result<(File, std::fs::Metadata), Answer> {
        let root = self.root.canonicalize().map_err(|_| Answer::Status(404))?;
        let mut path = root.clone();
        // `[]` is the mount point without its `/`: a directory, redirected.
        let wants_dir = segments.last().is_some_and(|s| s.is_empty());
        for s in segments.iter().filter(|s| !s.is_empty()) {
            path.push(s);
        }
        if wants_dir {
            match &self.index {
                Some(index) => path.push(index),
                None => return Err(Answer::Status(404)),
            }
        }
        let real = path.canonicalize().map_err(io_status)?;
        if !self.follow_symlinks && !real.starts_with(&root) {
            return Err(Answer::Status(404));
        }
        let file = open_nonblocking(&real).map_err(io_status)?;
        let meta = file.metadata().map_err(io_status)?;
        if meta.is_dir() && !wants_dir {
            return Err(Answer::AddSlash);
        }
        if !meta.is_file() {
            return Err(Answer::Status(404));
        }
        Ok((file, meta))
    }
}

/// What to answer when there is no file to send.
enum Answer {
    Status(u16),
    /// A directory asked for without its trailing `/`.
    AddSlash,
}

fn io_status(e: io::Error) -> Answer {
    Answer::Status(match e.kind() {
        io::ErrorKind::PermissionDenied => 403,
        _ => 404,
    })
}

fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// `/static` or `/static/` as `["static"]`; `/` as `[]`.
pub(crate) fn prefix_segments(prefix: &str) -> Vec<String> {
    let rest = prefix
        .strip_prefix('/')
        .unwrap_or_else(|| panic!("invalid serve_dir prefix {prefix:?}: it must start with '/'"));
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split('/')
        .map(|s| {
            assert!(
                !(s.is_empty() || s == "." || s == ".."),
                "invalid serve_dir prefix {prefix:?}: empty or dot segment"
            );
            s.to_owned()
        })
        .collect()
}

/// The `Content-Type` for `path`, by extension.
fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml")
        || mime.suffix().is_some_and(|s| s == "xml" || s == "json");
    if textual && mime.get_param("charset").is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

fn plain(req: Request, status: u16, headers: Headers) {
    let mut r = crate::http::Response::plain(status);
    for (n, v) in headers.iter() {
        r.headers.append(n, v);
    }
    req.respond(r.status, r.headers, r.body);
}

impl Handler for ServeDir {
    /// Answers one request; see the [module documentation](self).
    fn handle(&self, req: Request) -> Result<(), Error> {
        if req.method() != "GET" && req.method() != "HEAD" {
            let mut h = Headers::new();
            h.append("Allow", "GET, HEAD");
            plain(req, 405, h);
            return Ok(());
        }
        let (raw, query) = path::raw_path(req.uri());
        let segments = match path::file_segments(raw, &self.prefix) {
            Ok(s) => s,
            Err(_) => {
                plain(req, 404, Headers::new());
                return Ok(());
            }
        };
        let (file, meta) = match self.open(&segments) {
            Ok(found) => found,
            Err(Answer::Status(status)) => {
                plain(req, status, Headers::new());
                return Ok(());
            }
            Err(Answer::AddSlash) => {
                let location = match query {
                    Some(q) => format!("{raw}/?{q}"),
                    None => format!("{raw}/"),
                };
                let mut h = Headers::new();
                h.append("Location", location);
                plain(req, 301, h);
                return Ok(());
            }
        };
        let validators = Validators::new(meta.len(), meta.modified().ok());
        let mut headers = Headers::new();
        headers.append("ETag", &validators.etag);
        headers.append("Last-Modified", validators.last_modified());
        match validators.evaluate(req.headers()) {
            Outcome::Send => {}
            Outcome::NotModified => {
                req.respond(304, headers, "");
                return Ok(());
            }
            Outcome::Failed => {
                plain(req, 412, Headers::new());
                return Ok(());
            }
        }
        let name = match segments.last() {
            Some(last) if !last.is_empty() => Path::new(last),
            _ => Path::new(self.index.as_deref().unwrap_or("index.html")),
        };
        headers.append("Content-Type", content_type(name));
        // Answered 500 on a seek failure already.
        req.respond_seekable(200, headers, file)
            .map(drop)
            .map_err(|e| Error::new(500, "seeking a file failed").with_cause(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        for (name, want) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.json", "application/json; charset=utf-8"),
            ("a.svg", "image/svg+xml; charset=utf-8"),
            ("a.png", "image/png"),
            ("a.wasm", "application/wasm"),
            ("noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_segments("/"), Vec::<String>::new());
        assert_eq!(prefix_segments("/static/"), ["static"]);
        assert_eq!(prefix_segments("/a/b"), ["a", "b"]);
    }

    #[test]
    #[should_panic(expected = "invalid serve_dir prefix")]
    fn prefix_with_dots_panics() {
        prefix_segments("/a/../b");
    }
}
