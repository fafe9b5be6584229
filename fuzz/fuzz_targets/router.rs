//! Router matching against a plain backtracking matcher of the grammar in
//! `router.rs`'s docs: same route, same parameters, for any routes and
//! paths; no panic on a pattern the docs call valid; and a literal route
//! matches its own path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natron::__fuzz::resolve;
use natron::{Request, Router};

/// Bounds that keep the exponential reference matcher cheap.
const MAX_SEGMENTS: usize = 8;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let mut lines = text.split('\n');
    let Some(first) = lines.next() else { return };
    let routes_n = first.len() % 6 + 1;
    let mut router = Router::new();
    let mut routes: Vec<(String, Vec<Seg>)> = Vec::new();
    let mut literal: Vec<(String, String)> = Vec::new();
    for line in lines.by_ref().take(routes_n) {
        let (method, pattern) = line.split_once(' ').unwrap_or(("GET", line));
        let Some(segs) = parse(pattern) else { continue };
        if !is_token(method) || segs.len() > MAX_SEGMENTS {
            continue;
        }
        router.route(method, pattern, |_: Request| {});
        if !pattern.contains('*') && !pattern.split('/').any(|s| s.starts_with('@')) {
            literal.push((method.to_owned(), pattern.to_owned()));
        }
        routes.push((method.to_owned(), segs));
    }
    for (method, pattern) in &literal {
        let (index, _) =
            resolve(&router, method, pattern).expect("a literal route matches its own path");
        assert!(matches(&routes[index].1, &split(pattern)).is_some());
    }
    for line in lines {
        let (method, path) = line.split_once(' ').unwrap_or(("GET", line));
        if path.split('/').count() > MAX_SEGMENTS + 4 {
            continue;
        }
        assert_eq!(
            resolve(&router, method, path),
            reference(&routes, method, path),
            "{method} {path}"
        );
    }
});

#[derive(Debug, PartialEq)]
enum Seg {
    Lit(String),
    Param(String),
    Any,
    Multi,
    Glob(String),
}

/// The pattern grammar and its refusals, as documented.
fn parse(pattern: &str) -> Option<Vec<Seg>> {
    let rest = pattern.strip_prefix('/')?;
    let mut segs: Vec<Seg> = Vec::new();
    let mut names = Vec::new();
    for part in rest.split('/') {
        let seg = match part {
            "*" => Seg::Any,
            "**" => Seg::Multi,
            p if p.starts_with('@') => {
                let name = &p[1..];
                if name.is_empty() || name.contains('*') || names.contains(&name) {
                    return None;
                }
                names.push(name);
                Seg::Param(name.to_owned())
            }
            p if p.contains('*') => Seg::Glob(p.to_owned()),
            p => Seg::Lit(p.to_owned()),
        };
        if segs.last() == Some(&Seg::Multi) && matches!(seg, Seg::Any | Seg::Multi | Seg::Param(_))
        {
            return None;
        }
        segs.push(seg);
    }
    Some(segs)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn split(path: &str) -> Vec<&str> {
    path[1..].split('/').collect()
}

/// First match in registration order; `HEAD` falls back to the first
/// matching `GET` unless a later `HEAD` route matches.
fn reference(
    routes: &[(String, Vec<Seg>)],
    method: &str,
    path: &str,
) -> Option<(usize, Vec<(String, String)>)> {
    if !path.starts_with('/') {
        return None;
    }
    let segments = split(path);
    let mut fallback = None;
    for (i, (m, segs)) in routes.iter().enumerate() {
        let Some(params) = matches(segs, &segments) else {
            continue;
        };
        if m == method {
            return Some((i, params));
        }
        if method == "HEAD" && m == "GET" && fallback.is_none() {
            fallback = Some((i, params));
        }
    }
    fallback
}

/// Backtracking: each `**` tries one segment, then two, ...; the leftmost
/// `**` first, so it takes as few as it can.
fn matches(pattern: &[Seg], path: &[&str]) -> Option<Vec<(String, String)>> {
    let Some((first, rest)) = pattern.split_first() else {
        return path.is_empty().then(Vec::new);
    };
    let (&seg, tail) = path.split_first()?;
    match first {
        Seg::Multi => (1..=path.len()).find_map(|n| matches(rest, &path[n..])),
        Seg::Param(name) => matches(rest, tail).map(|mut p| {
            p.insert(0, (name.clone(), seg.to_owned()));
            p
        }),
        Seg::Any => matches(rest, tail),
        Seg::Lit(l) => (l == seg).then(|| matches(rest, tail)).flatten(),
        Seg::Glob(g) => glob(g.as_bytes(), seg.as_bytes())
            .then(|| matches(rest, tail))
            .flatten(),
    }
}

/// `*` is any run of bytes, maybe empty: `ok[j]` says whether the
/// pattern read so far matches `s[..j]`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let mut ok = vec![false; s.len() + 1];
    ok[0] = true;
    for &c in p {
        if c == b'*' {
            for j in 1..=s.len() {
                ok[j] |= ok[j - 1];
            }
        } else {
            for j in (1..=s.len()).rev() {
                ok[j] = ok[j - 1] && s[j - 1] == c;
            }
            ok[0] = false;
        }
    }
    ok[s.len()]
}
