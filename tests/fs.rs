//! Static files (`natron::fs::ServeDir`, `Router::serve_dir`) over real
//! loopback sockets: every traversal spelling stays inside the root, MIME
//! types, validators and `304`/`412`, `Range`, `index.html` and the
//! directory redirect, methods, and a file far larger than the outbound
//! budget streamed without being read into memory.

mod common;

use common::*;
use std::sync::{RwLock, RwLockReadGuard};

/// The big-file test measures this process's peak RSS: it runs alone
/// (`write`), the others beside one another (`read`).
static MEMORY: RwLock<()> = RwLock::new(());

fn beside_others() -> RwLockReadGuard<'static, ()> {
    MEMORY.read().unwrap_or_else(|e| e.into_inner())
}
use natron::fs::ServeDir;
use natron::Router;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A fresh directory tree, removed on drop:
///
/// ```text
/// base/secret.txt                 "secret"  (outside the root)
/// base/root/index.html, hello.txt, page.html, data.json, img.png, noext
/// base/root/sub/index.html        "sub index"
/// base/root/empty/                (no index)
/// base/root/link_in  -> hello.txt
/// base/root/link_out -> ../secret.txt
/// base/root/dir_out  -> ..
/// ```
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "natron-fs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        let put = |p: &str, body: &[u8]| std::fs::write(base.join(p), body).unwrap();
        put("secret.txt", b"secret");
        put("root/index.html", b"<p>root index</p>");
        put("root/hello.txt", b"hello\n");
        put("root/page.html", b"<p>page</p>");
        put("root/data.json", b"{\"a\":1}");
        put("root/img.png", b"\x89PNG\r\n\x1a\n");
        put("root/noext", b"raw");
        put("root/sub/index.html", b"sub index");
        std::os::unix::fs::symlink("hello.txt", root.join("link_in")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("link_out")).unwrap();
        std::os::unix::fs::symlink("..", root.join("dir_out")).unwrap();
        Tree { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A router with the tree's root at `/static`.
fn routed(tree: &Tree) -> TestServer {
    let mut router = Router::new();
    router.serve_dir("/static", tree.root());
    serve(router)
}

fn raw_get(s: &TestServer, target: &str, fields: &str) -> Response {
    s.request(format!(
        "GET {target} HTTP/1.1\r\nHost: test\r\n{fields}\r\n"
    ))
}

#[test]
fn every_traversal_form_stays_inside_the_root() {
    let _m = beside_others();
    let tree = Tree::new();
    let router = routed(&tree);
    let bare = serve(ServeDir::new(tree.root()));
    // (target under /static, status through the router, status from a
    // ServeDir alone at `/` for the same target without `/static`).
    // 400: the decoded path has a dot segment, refused by the router
    // before routing; 404: no file under the root has such a name.
    let cases: &[(&str, u16, u16)] = &[
        ("/static/../secret.txt", 400, 404),
        ("/static/./hello.txt", 400, 404),
        ("/static/sub/../../secret.txt", 400, 404),
        ("/static/%2e%2e/secret.txt", 400, 404),
        ("/static/%2E%2e/secret.txt", 400, 404),
        ("/static/.%2E/secret.txt", 400, 404),
        ("/static/..%2fsecret.txt", 400, 404),
        ("/static/..%2Fsecret.txt", 400, 404),
        ("/static/sub/%2f..%2f..%2fsecret.txt", 400, 404),
        ("/static/..\\secret.txt", 404, 404),
        ("/static/sub\\..\\..\\secret.txt", 404, 404),
        ("/static/..%5csecret.txt", 404, 404),
        ("/static/%5C..%5Csecret.txt", 404, 404),
        ("/static/hello.txt%00.png", 404, 404),
        ("/static/%00", 404, 404),
        ("/static//etc/passwd", 404, 404),
        ("/static/%2fetc%2fpasswd", 404, 404),
        ("/static/%2Fetc/passwd", 404, 404),
        ("/static/link_out", 404, 404),
        ("/static/dir_out/secret.txt", 404, 404),
    ];
    for &(target, via_router, alone) in cases {
        let r = raw_get(&router, target, "");
        assert_eq!(r.status, via_router, "router, {target}: {r:?}");
        assert!(!r.body_str().contains("secret"), "{target}: {r:?}");
        let bare_target = target.strip_prefix("/static").unwrap();
        let r = raw_get(&bare, bare_target, "");
        assert_eq!(r.status, alone, "ServeDir alone, {bare_target}: {r:?}");
        assert!(!r.body_str().contains("secret"), "{bare_target}: {r:?}");
    }
    // Absolute paths and absolute-form targets.
    for (s, target, status) in [
        (&bare, "//etc/passwd", 404),
        (&bare, "//tmp", 404),
        (&router, "//etc/passwd", 404),
        (&router, "http://test/static/../secret.txt", 400),
        (&bare, "http://test/%2e%2e/secret.txt", 404),
        (
            &bare,
            &format!("{}", tree.base.join("secret.txt").display()),
            404,
        ),
    ] {
        let r = raw_get(s, target, "");
        assert_eq!(r.status, status, "{target}: {r:?}");
        assert!(!r.body_str().contains("secret"), "{target}: {r:?}");
    }
    // What is inside is served, links within the root included.
    raw_get(&router, "/static/hello.txt", "").assert("HTTP/1.1 200 OK", "hello\n");
    raw_get(&router, "/static/link_in", "").assert("HTTP/1.1 200 OK", "hello\n");
    raw_get(&router, "/static/..hello", "").assert("HTTP/1.1 404 Not Found", "Not Found");
}

#[test]
fn symlinks_out_of_the_root_only_with_the_opt_in() {
    let _m = beside_others();
    let tree = Tree::new();
    let s = serve(ServeDir::new(tree.root()).follow_symlinks(true));
    raw_get(&s, "/link_out", "").assert("HTTP/1.1 200 OK", "secret");
    raw_get(&s, "/dir_out/secret.txt", "").assert("HTTP/1.1 200 OK", "secret");
    // The opt-in is about links; dot segments are still refused.
    assert_eq!(raw_get(&s, "/../secret.txt", "").status, 404);
    assert_eq!(raw_get(&s, "/%2e%2e/secret.txt", "").status, 404);
}

#[test]
fn curl_with_and_without_path_as_is() {
    let _m = beside_others();
    let tree = Tree::new();
    let s = routed(&tree);
    let url = |p: &str| format!("http://{}{p}", s.addr);
    let status = |args: &[&str]| -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(args)
            .output()
            .expect("curl is installed");
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // curl removes the dot segments itself (RFC 3986 §5.2.4) ...
    assert_eq!(status(&[&url("/static/sub/../hello.txt")]), "200");
    // ... unless told not to: then the router refuses them.
    assert_eq!(
        status(&["--path-as-is", &url("/static/../secret.txt")]),
        "400"
    );
    assert_eq!(
        status(&["--path-as-is", &url("/static/%2e%2e/secret.txt")]),
        "400"
    );
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-r",
            "1-3",
            &url("/static/hello.txt"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"ell");
}

#[test]
fn content_types_by_extension() {
    let _m = beside_others();
    let tree = Tree::new();
    let s = routed(&tree);
    for (path, ty) in [
        ("/static/hello.txt", "text/plain; charset=utf-8"),
        ("/static/page.html", "text/html; charset=utf-8"),
        ("/static/data.json", "application/json; charset=utf-8"),
        ("/static/img.png", "image/png"),
        ("/static/noext", "application/octet-stream"),
        ("/static/sub/", "text/html; charset=utf-8"),
    ] {
        let r = raw_get(&s, path, "");
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
    }
}

#[test]
fn validators_and_conditional_requests() {
    let _m = beside_others();
    let tree = Tree::new();
    let s = routed(&tree);
    let r = raw_get(&s, "/static/hello.txt", "");
    r.assert("HTTP/1.1 200 OK", "hello\n");
    let etag = r.header("etag").expect("ETag").to_owned();
    let lm = r.header("last-modified").expect("Last-Modified").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(r.header("accept-ranges"), Some("bytes"));

    let not_modified = |fields: String| {
        let r = raw_get(&s, "/static/hello.txt", &fields);
        r.assert("HTTP/1.1 304 Not Modified", "");
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("last-modified"), Some(lm.as_str()));
        assert_eq!(r.header("content-length"), None);
    };
    not_modified(format!("If-None-Match: {etag}\r\n"));
    not_modified(format!("If-None-Match: \"nope\", W/{etag}\r\n"));
    not_modified("If-None-Match: *\r\n".to_owned());
    not_modified(format!("If-Modified-Since: {lm}\r\n"));
    not_modified("If-Modified-Since: Fri, 31 Dec 2100 23:59:59 GMT\r\n".to_owned());
    // The obsolete RFC 850 and asctime forms (RFC 9110 §5.6.7).
    not_modified("If-Modified-Since: Friday, 31-Dec-60 23:59:59 GMT\r\n".to_owned());
    not_modified("If-Modified-Since: Fri Dec 31 23:59:59 2100\r\n".to_owned());

    let full = |fields: &str| raw_get(&s, "/static/hello.txt", fields);
    full("If-None-Match: \"nope\"\r\n").assert("HTTP/1.1 200 OK", "hello\n");
    full("If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n")
        .assert("HTTP/1.1 200 OK", "hello\n");
    full("If-Modified-Since: yesterday\r\n").assert("HTTP/1.1 200 OK", "hello\n");
    full("If-Modified-Since: Thursday, 01-Jan-70 00:00:00 GMT\r\n")
        .assert("HTTP/1.1 200 OK", "hello\n");
    full("If-Modified-Since: Thu Jan  1 00:00:00 1970\r\n").assert("HTTP/1.1 200 OK", "hello\n");
    // If-None-Match decides alone when present (RFC 9110 §13.1.3).
    full(&format!(
        "If-None-Match: \"nope\"\r\nIf-Modified-Since: {lm}\r\n"
    ))
    .assert("HTTP/1.1 200 OK", "hello\n");
    full(&format!("If-Match: {etag}\r\n")).assert("HTTP/1.1 200 OK", "hello\n");
    assert_eq!(full("If-Match: \"nope\"\r\n").status, 412);
    assert_eq!(full(&format!("If-Match: W/{etag}\r\n")).status, 412);
    assert_eq!(
        full("If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n").status,
        412
    );

    // HEAD: the same head, no body.
    let mut c = s.client();
    c.send("HEAD /static/hello.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    let h = c.read_head_response();
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("6"));
    assert_eq!(h.header("etag"), Some(etag.as_str()));

    // A rewrite of the same length changes the ETag.
    std::fs::write(tree.root().join("hello.txt"), b"HELLO\n").unwrap();
    let r = full(&format!("If-None-Match: {etag}\r\n"));
    r.assert("HTTP/1.1 200 OK", "HELLO\n");
    assert_ne!(r.header("etag"), Some(etag.as_str()));
}

#[test]
fn ranges_and_if_range() {
    let _m = beside_others();
    let tree = Tree::new();
    let s = routed(&tree);
    let etag = raw_get(&s, "/static/hello.txt", "")
        .header("etag")
        .unwrap()
        .to_owned();
    let r = raw_get(&s, "/static/hello.txt", "Range: bytes=1-3\r\n");
    r.assert("HTTP/1.1 206 Partial Content", "ell");
    assert_eq!(r.header("content-range"), Some("bytes 1-3/6"));
    let r = raw_get(&s, "/static/hello.txt", "Range: bytes=100-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */6"));
    raw_get(
        &s,
        "/static/hello.txt",
        &format!("Range: bytes=-2\r\nIf-Range: {etag}\r\n"),
    )
    .assert("HTTP/1.1 206 Partial Content", "o\n");
    raw_get(
        &s,
        "/static/hello.txt",
        "Range: bytes=-2\r\nIf-Range: \"old\"\r\n",
    )
    .assert("HTTP/1.1 200 OK", "hello\n");
}

#[test]
fn directories_index_and_redirect() {
    let _m = beside_others();
    let tree = Tree::new();
    let s = routed(&tree);
    raw_get(&s, "/static/", "").assert("HTTP/1.1 200 OK", "<p>root index</p>");
    raw_get(&s, "/static/sub/", "").assert("HTTP/1.1 200 OK", "sub index");
    for (from, to) in [
        ("/static", "/static/"),
        ("/static/sub", "/static/sub/"),
        ("/static/sub?x=1", "/static/sub/?x=1"),
    ] {
        let r = raw_get(&s, from, "");
        assert_eq!(r.status, 301, "{from}: {r:?}");
        assert_eq!(r.header("location"), Some(to), "{from}");
    }
    // No listing.
    assert_eq!(raw_get(&s, "/static/empty/", "").status, 404);
    // A file is not a directory.
    assert_eq!(raw_get(&s, "/static/hello.txt/", "").status, 404);
    assert_eq!(raw_get(&s, "/static/missing.txt", "").status, 404);
    // Without an index file, directories are 404 too.
    let no_index = serve(ServeDir::new(tree.root()).index_file(None));
    assert_eq!(raw_get(&no_index, "/sub/", "").status, 404);
    raw_get(&no_index, "/hello.txt", "").assert("HTTP/1.1 200 OK", "hello\n");
}

#[test]
fn only_get_and_head() {
    let _m = beside_others();
    let tree = Tree::new();
    for (s, path) in [
        (routed(&tree), "/static/hello.txt"),
        (serve(ServeDir::new(tree.root())), "/hello.txt"),
    ] {
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let r = s.request(format!(
                "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n"
            ));
            assert_eq!(r.status, 405, "{method} {path}: {r:?}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
    }
}

/// The peak resident set of this process (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_file_far_larger_than_the_budget_is_streamed() {
    const LEN: u64 = 256 << 20;
    let _alone = MEMORY.write().unwrap_or_else(|e| e.into_inner());
    let tree = Tree::new();
    // Sparse: costs no disk; the tail marker checks the offsets.
    let path = tree.root().join("big.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    f.set_len(LEN).unwrap();
    f.seek(SeekFrom::Start(LEN - 4)).unwrap();
    f.write_all(b"END!").unwrap();
    drop(f);
    let s = start(
        builder()
            .max_outbound_len(256 * 1024)
            .handler(ServeDir::new(tree.root())),
    );
    let before = peak_rss_kib();
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Read and count, keeping only the head and the last bytes.
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let mut body_len = 0u64;
    let mut tail = Vec::new();
    let mut nonzero = 0u64;
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        if !head.ends_with(b"\r\n\r\n") {
            let mut i = 0;
            while i < data.len() && !head.ends_with(b"\r\n\r\n") {
                head.push(data[i]);
                i += 1;
            }
            data = &data[i..];
        }
        body_len += data.len() as u64;
        nonzero += data.iter().filter(|&&b| b != 0).count() as u64;
        tail.extend_from_slice(data);
        if tail.len() > 8 {
            tail.drain(..tail.len() - 8);
        }
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {LEN}\r\n")),
        "{head}"
    );
    assert_eq!(body_len, LEN);
    assert!(tail.ends_with(b"END!"));
    assert_eq!(nonzero, 4);
    let grew_mib = (peak_rss_kib() - before) / 1024;
    eprintln!("peak RSS grew {grew_mib} MiB serving {} MiB", LEN >> 20);
    // Read whole, the file alone would add 256 MiB.
    assert!(grew_mib < 64, "peak RSS grew {grew_mib} MiB");
}

#[test]
fn serve_dir_at_the_root_and_prefix_spellings() {
    let _m = beside_others();
    let tree = Tree::new();
    let mut router = Router::new();
    router.serve_dir("/", tree.root());
    let s = serve(router);
    raw_get(&s, "/hello.txt", "").assert("HTTP/1.1 200 OK", "hello\n");
    raw_get(&s, "/", "").assert("HTTP/1.1 200 OK", "<p>root index</p>");
    let mut router = Router::new();
    router.serve_dir("/a/b/", tree.root());
    let s = serve(router);
    raw_get(&s, "/a/b/hello.txt", "").assert("HTTP/1.1 200 OK", "hello\n");
    // An encoded prefix is the same prefix.
    raw_get(&s, "/a/%62/hello.txt", "").assert("HTTP/1.1 200 OK", "hello\n");
    assert_eq!(raw_get(&s, "/a/hello.txt", "").status, 404);
}

/// A modification time in the future (a clock that was wrong, an archive's
/// dates) is sent as the response's own date: RFC 9110 §8.8.2.1, an origin
/// server MUST NOT generate a `Last-Modified` later than its `Date`. Past
/// the year 9999 (which tmpfs can hold; ext4 cuts it to 2446), formatting
/// the date panicked and the file was answered `500`.
#[test]
fn a_modification_time_in_the_future_is_sent_as_now() {
    let _m = beside_others();
    let tree = Tree::new();
    let far = std::time::UNIX_EPOCH + Duration::from_secs(300_000_000_000); // year 11476
    let file = std::fs::File::options()
        .write(true)
        .open(tree.root().join("hello.txt"))
        .unwrap();
    file.set_modified(far).unwrap();
    drop(file);
    let s = routed(&tree);
    let r = raw_get(&s, "/static/hello.txt", "");
    r.assert("HTTP/1.1 200 OK", "hello\n");
    let date = |name: &str| {
        let v = r.header(name).unwrap_or_else(|| panic!("no {name}"));
        httpdate::parse_http_date(v).unwrap_or_else(|e| panic!("{name}: {v:?}: {e}"))
    };
    assert!(date("last-modified") <= date("date"));
}
