//! Runs natron's multipart parser and multer on the same inputs and prints
//! a comparison table, their speed and a fuzz of multer: `cargo run
//! --release [table|speed|fuzz]`. natron's own unit tests against the
//! multer-backed implementation: `./sync-tests.sh && cargo test --release`.

mod multer_impl;
#[cfg(test)]
mod natron_tests;

use natron::http::multipart::{self, Part};
use std::time::{Duration, Instant};

const CT: &str = "multipart/form-data; boundary=XyZ";

struct Case {
    name: &'static str,
    ct: String,
    body: Vec<u8>,
    /// What RFC 7578 / RFC 2046 (or safety) asks for.
    expect: &'static str,
}

fn case(name: &'static str, body: &[u8], expect: &'static str) -> Case {
    Case {
        name,
        ct: CT.into(),
        body: body.to_vec(),
        expect,
    }
}

fn case_ct(name: &'static str, ct: &str, body: &[u8], expect: &'static str) -> Case {
    Case {
        name,
        ct: ct.into(),
        body: body.to_vec(),
        expect,
    }
}

fn field(cd: &str, content: &str) -> Vec<u8> {
    format!("--XyZ\r\nContent-Disposition: {cd}\r\n\r\n{content}\r\n").into_bytes()
}

/// A whole body of one field, closed.
fn one(cd: &str, content: &str) -> Vec<u8> {
    [field(cd, content), b"--XyZ--".to_vec()].concat()
}

fn cases() -> Vec<Case> {
    let simple = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--\r\n";
    let mut v = vec![
        case("baseline: one field", simple, "ok a=1"),
        case_ct(
            "boundary quoted",
            "multipart/form-data; boundary=\"XyZ\"",
            simple,
            "ok a=1",
        ),
        case_ct(
            "boundary quoted, with space and `:=?`",
            "multipart/form-data; boundary=\"a:b c=?\"",
            b"--a:b c=?\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--a:b c=?--",
            "ok a=1",
        ),
        case_ct(
            "boundary unquoted `----=_Part_1`",
            "multipart/form-data; boundary=----=_Part_1",
            b"------=_Part_1\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n------=_Part_1--",
            "ok a=1 (not a token, but clients send it)",
        ),
        case_ct(
            "media type and param name in upper case",
            "Multipart/Form-Data; BOUNDARY=XyZ",
            simple,
            "ok a=1 (case-insensitive)",
        ),
        case_ct(
            "boundary of 71 chars",
            &format!("multipart/form-data; boundary={}", "b".repeat(71)),
            format!(
                "--{0}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--{0}--",
                "b".repeat(71)
            )
            .as_bytes(),
            "error (RFC 2046: 1..=70)",
        ),
        case_ct(
            "boundary repeated in Content-Type",
            "multipart/form-data; boundary=XyZ; boundary=Other",
            simple,
            "error (ambiguous)",
        ),
        case_ct(
            "multipart/mixed Content-Type",
            "multipart/mixed; boundary=XyZ",
            simple,
            "error: not form-data",
        ),
        case(
            "LF-only line endings",
            b"--XyZ\nContent-Disposition: form-data; name=a\n\n1\n--XyZ--\n",
            "error (CRLF required; natron rejects on purpose)",
        ),
        case(
            "CRLF framing, LF inside part headers",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\nX: y\r\n\r\n1\r\n--XyZ--",
            "error",
        ),
        case(
            "preamble and epilogue",
            b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--\r\nepilogue --XyZ\r\n",
            "ok a=1",
        ),
        case(
            "preamble mentions `--XyZ` mid-line",
            b"see --XyZ here\r\n--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--",
            "ok a=1 (delimiter only at line start)",
        ),
        case(
            "first boundary not at line start",
            b"x--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--XyZ--",
            "ok b=2: the first lines are preamble",
        ),
        case(
            "transport padding after delimiters",
            b"--XyZ \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ  \r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--XyZ-- \t\r\n",
            "ok a=1 b=2",
        ),
        case(
            "missing final boundary (truncated body)",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1",
            "error",
        ),
        case(
            "last delimiter without `--`",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ\r\n",
            "error",
        ),
        case(
            "close delimiter at end of body, no CRLF",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--",
            "ok a=1",
        ),
        case(
            "`CRLF--XyZx` inside a body",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZx\r\n2\r\n--XyZ--",
            "content (a=\"1\\r\\n--XyZx\\r\\n2\") or error; never a split",
        ),
        case(
            "`--XyZ` not after CRLF inside a body",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1--XyZ\r\n2\r\n--XyZ--",
            "content (a=\"1--XyZ\\r\\n2\")",
        ),
        case(
            "`CRLF--XyZ--W` inside a body",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--W\r\n2\r\n--XyZ--",
            "content or error; not a close (then part 2 lost)",
        ),
        case(
            "empty part body",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--XyZ--",
            "ok a=\"\"",
        ),
        case(
            "part without any header",
            b"--XyZ\r\n\r\nbody\r\n\r\n--XyZ--",
            "error: no Content-Disposition",
        ),
        case(
            "headers run into the delimiter (no blank line)",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n--XyZ--",
            "ok a=\"\"",
        ),
        case(
            "empty form (close delimiter only)",
            b"--XyZ--\r\n",
            "ok, no parts (browsers send it)",
        ),
        case(
            "filename* only (RFC 5987)",
            &one("form-data; name=f; filename*=UTF-8''%E2%82%AC%20rates.txt", "x"),
            "ok f, filename \"€ rates.txt\"",
        ),
        case(
            "filename then filename*",
            &one(
                "form-data; name=f; filename=\"plain.txt\"; filename*=UTF-8''%E2%82%AC.txt",
                "x",
            ),
            "ok f, filename \"€.txt\" (RFC 6266: filename* wins)",
        ),
        case(
            "filename* then filename",
            &one(
                "form-data; name=f; filename*=UTF-8''%E2%82%AC.txt; filename=\"plain.txt\"",
                "x",
            ),
            "ok f, filename \"€.txt\"",
        ),
        case(
            "filename* in ISO-8859-1",
            &one("form-data; name=f; filename*=iso-8859-1'en'%E9t%E9.txt", "x"),
            "ok f, filename \"été.txt\"",
        ),
        case(
            "raw UTF-8 filename (what browsers send)",
            "--XyZ\r\nContent-Disposition: form-data; name=f; filename=\"café.txt\"\r\n\r\nx\r\n--XyZ--"
                .as_bytes(),
            "ok f, filename \"café.txt\"",
        ),
        case(
            "non-UTF-8 name (Latin-1 byte)",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"caf\xe9\"\r\n\r\nx\r\n--XyZ--",
            "ok with U+FFFD, or error; not an unnamed part",
        ),
        case(
            "non-UTF-8 filename",
            b"--XyZ\r\nContent-Disposition: form-data; name=f; filename=\"\xff.txt\"\r\n\r\nx\r\n--XyZ--",
            "ok with U+FFFD, or error; not a non-file",
        ),
        case(
            "quoted filename with `\\\\` and `\\\"`",
            b"--XyZ\r\nContent-Disposition: form-data; name=f; filename=\"C:\\\\d\\\\q\\\"x.txt\"\r\n\r\nx\r\n--XyZ--",
            "ok, filename `C:\\d\\q\"x.txt` (quoted-pair)",
        ),
        case(
            "`; name=` inside a quoted filename",
            &one("form-data; filename=\"; name=evil\"; name=real", "x"),
            "ok name \"real\", filename \"; name=evil\"",
        ),
        case(
            "parameter names in upper case",
            &one("form-data; NAME=\"a\"; FILENAME=\"f.txt\"", "x"),
            "ok a, filename f.txt (RFC 2183: case-insensitive)",
        ),
        case(
            "disposition type `attachment`",
            &one("attachment; name=a", "x"),
            "error (RFC 7578 §4.2: form-data)",
        ),
        case(
            "duplicate field names (two parts)",
            &[field("form-data; name=f", "1"), field("form-data; name=f", "2"), b"--XyZ--".to_vec()]
                .concat(),
            "ok f=1 f=2",
        ),
        case(
            "`name` twice in one Content-Disposition",
            &one("form-data; name=a; name=b", "x"),
            "error (parsers disagree which wins)",
        ),
        case(
            "Content-Disposition header twice",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\nx\r\n--XyZ--",
            "error (parsers disagree which wins)",
        ),
        case(
            "no Content-Disposition",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
            "error",
        ),
        case(
            "Content-Disposition without name",
            &one("form-data; filename=a.txt", "x"),
            "error (RFC 7578 §4.2: name required)",
        ),
        case(
            "obsolete line folding in part headers",
            b"--XyZ\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n--XyZ--",
            "error",
        ),
        case(
            "NUL in a header value",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: a\x00b\r\n\r\nx\r\n--XyZ--",
            "error",
        ),
        case(
            "header names as sent, in order",
            b"--XyZ\r\nX-B: 1\r\nContent-Disposition: form-data; name=a\r\nX-A: 2\r\nX-B: 3\r\n\r\nx\r\n--XyZ--",
            "ok, headers [X-B:1, Content-Disposition, X-A:2, X-B:3]",
        ),
        case(
            "40 headers in one part",
            &[
                b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n".to_vec(),
                (0..39).flat_map(|i| format!("X-{i}: v\r\n").into_bytes()).collect(),
                b"\r\nx\r\n--XyZ--".to_vec(),
            ]
            .concat(),
            "ok (under the 8 KiB header limit)",
        ),
        case(
            "Content-Transfer-Encoding: base64",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--XyZ--",
            "ok a=\"aGk=\" raw (RFC 7578 §4.7: deprecated, not applied)",
        ),
        case(
            "nested multipart/mixed part",
            b"--XyZ\r\nContent-Disposition: form-data; name=files\r\nContent-Type: multipart/mixed; boundary=In\r\n\r\n--In\r\nContent-Disposition: file; filename=a.txt\r\n\r\nA\r\n--In--\r\n--XyZ--",
            "ok files = inner body raw (RFC 7578 §4.3: senders must not)",
        ),
        case(
            "`_charset_` field",
            &[field("form-data; name=_charset_", "iso-8859-1"), field("form-data; name=t", "caf\u{e9}"), b"--XyZ--".to_vec()].concat(),
            "ok, both raw (charset is the app's call)",
        ),
    ];
    // Limits.
    let many = |n: usize| {
        let mut b = Vec::new();
        for i in 0..n {
            b.extend_from_slice(&field(&format!("form-data; name=p{i}"), "v"));
        }
        b.extend_from_slice(b"--XyZ--");
        b
    };
    v.push(case("1000 parts", &many(1000), "ok (at the part limit)"));
    v.push(case("1001 parts", &many(1001), "error: too many parts"));
    v.push(case(
        "one 100 KiB part header",
        &[
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: ".to_vec(),
            vec![b'x'; 100 * 1024],
            b"\r\n\r\nx\r\n--XyZ--".to_vec(),
        ]
        .concat(),
        "error: header section over 8 KiB",
    ));
    v.push(case(
        "100 KiB with no header end",
        &[
            b"--XyZ\r\n".to_vec(),
            vec![b'x'; 100 * 1024],
            b"\r\n--XyZ--".to_vec(),
        ]
        .concat(),
        "error",
    ));
    v
}

fn show(r: &Result<Vec<Part>, String>) -> String {
    match r {
        Err(e) => format!("ERR {}", e.chars().take(70).collect::<String>()),
        Ok(parts) if parts.len() > 4 => format!("ok {} parts", parts.len()),
        Ok(parts) => {
            let items: Vec<String> = parts
                .iter()
                .map(|p| {
                    let mut s = format!("{}={:?}", p.name, String::from_utf8_lossy(&p.body));
                    if let Some(f) = &p.filename {
                        s += &format!(" file={f:?}");
                    }
                    s
                })
                .collect();
            format!("ok [{}]", items.join(", "))
        }
    }
}

fn same(a: &Result<Vec<Part>, String>, b: &Result<Vec<Part>, String>) -> bool {
    let key = |r: &Result<Vec<Part>, String>| {
        r.as_ref().ok().map(|ps| {
            ps.iter()
                .map(|p| (p.name.clone(), p.filename.clone(), p.body.clone()))
                .collect::<Vec<_>>()
        })
    };
    key(a) == key(b)
}

fn table() {
    println!("| case | expected | natron | multer | same |");
    println!("|---|---|---|---|---|");
    for c in cases() {
        let ours = multipart::parse(&c.ct, &c.body).map_err(|e| e.to_string());
        let theirs = multer_impl::raw(&c.ct, &c.body);
        println!(
            "| {} | {} | {} | {} | {} |",
            c.name,
            c.expect,
            show(&ours).replace('|', "\\|"),
            show(&theirs).replace('|', "\\|"),
            if same(&ours, &theirs) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    let case = cases()
        .into_iter()
        .find(|c| c.name.starts_with("header names"))
        .unwrap();
    for (who, r) in [
        (
            "natron",
            multipart::parse(&case.ct, &case.body).map_err(|e| e.to_string()),
        ),
        ("multer", multer_impl::raw(&case.ct, &case.body)),
    ] {
        println!("\n{who} headers: {:?}", r.unwrap()[0].headers);
    }
}

/// Runs `f` for about `budget`, returns MB/s over `bytes` per call.
fn rate(bytes: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    (bytes as f64 * n as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn speed() {
    // 1 MiB in 10 parts of pseudo-random bytes: every byte value, as in a
    // real binary upload, so CRs make the delimiter search stop and check.
    let mut big = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..10 {
        big.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=f{i}; filename=\"f{i}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        for _ in 0..(1 << 20) / 10 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            big.push((x >> 32) as u8);
        }
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"--XyZ--\r\n");
    // 1000 small fields.
    let mut small = Vec::new();
    for i in 0..1000 {
        small.extend_from_slice(&field(&format!("form-data; name=\"field{i}\""), "value"));
    }
    small.extend_from_slice(b"--XyZ--\r\n");

    let budget = Duration::from_secs(2);
    for (label, body) in [("1 MiB, 10 parts", &big), ("1000 small parts", &small)] {
        let key = |ps: Vec<Part>| -> Vec<_> {
            ps.into_iter()
                .map(|p| (p.name, p.filename, p.content_type, p.body))
                .collect()
        };
        assert_eq!(
            key(multipart::parse(CT, body).unwrap()),
            key(multer_impl::parse(CT, body).unwrap())
        );
        let ours = rate(body.len(), budget, || {
            std::hint::black_box(multipart::parse(CT, std::hint::black_box(body)).unwrap());
        });
        let theirs = rate(body.len(), budget, || {
            std::hint::black_box(multer_impl::parse(CT, std::hint::black_box(body)).unwrap());
        });
        println!(
            "{label} ({} bytes): natron {ours:.0} MB/s, multer {theirs:.0} MB/s",
            body.len()
        );
    }
}

/// Bad input for a delimiter search: 1 MiB of `CRLF--XyZ!`, each a near
/// miss. multer rejects such a body at the first one, so natron alone.
fn near_miss_speed() {
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n".to_vec();
    body.extend_from_slice(&b"\r\n--XyZ!".repeat((1 << 20) / 8));
    body.extend_from_slice(b"\r\n--XyZ--");
    assert!(multer_impl::raw(CT, &body).is_err());
    let ours = rate(body.len(), Duration::from_secs(2), || {
        std::hint::black_box(multipart::parse(CT, std::hint::black_box(&body)).unwrap());
    });
    println!("1 MiB of near-miss delimiters: natron {ours:.0} MB/s (multer: error)");
}

/// Random mutations of a valid body through multer: counts outcomes, and
/// whether any poll stayed `Pending` with the whole body in memory.
fn multer_fuzz() {
    let base = [
        field("form-data; name=\"title\"", "Hello"),
        field(
            "form-data; name=\"upload\"; filename=\"a.bin\"",
            "\u{0}\r\n-- x",
        ),
        b"--XyZ--\r\n".to_vec(),
    ]
    .concat();
    const ALPHABET: &[u8] = b"\r\n-XyZ:;=\"\\ \t*%'abn\x00\xff";
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n.max(1) as u64) as usize
    };
    let (mut oks, mut errs, mut stalls) = (0, 0, 0);
    for _ in 0..50_000 {
        let mut body = base.clone();
        for _ in 0..1 + next(4) {
            let at = next(body.len() + 1);
            let byte = ALPHABET[next(ALPHABET.len())];
            match next(3) {
                0 if at < body.len() => body[at] = byte,
                1 if at < body.len() => {
                    body.remove(at);
                }
                _ => body.insert(at, byte),
            }
        }
        match multer_impl::raw(CT, &body) {
            Ok(_) => oks += 1,
            Err(e) if e.starts_with("stalled") => stalls += 1,
            Err(_) => errs += 1,
        }
    }
    println!("multer on 50000 mutated bodies: {oks} ok, {errs} errors, {stalls} stalled, no panic");
}

fn main() {
    let arg = std::env::args().nth(1);
    let all = arg.is_none();
    let want = |mode: &str| all || arg.as_deref() == Some(mode);
    if want("table") {
        table();
    }
    if want("speed") {
        speed();
        near_miss_speed();
    }
    if want("fuzz") {
        multer_fuzz();
    }
}
