//! The opening handshake check (`websocket/upgrade.rs`) on any request
//! head, against a reading of RFC 6455 §4.2.1 written here: it accepts
//! exactly the heads the reference accepts, and the key it returns is a
//! valid one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natron::__fuzz::{accept_key, has_token, validate_upgrade};

fuzz_target!(|input: &[u8]| {
    let Some((result, head)) = validate_upgrade(input) else {
        return;
    };
    let h = &head.headers;
    let values = |name: &'static str| {
        h.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    // Comma-separated tokens over every field line, case-insensitive.
    let token = |name: &'static str, token: &str| {
        values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    for (name, t) in [("upgrade", "websocket"), ("connection", "upgrade")] {
        assert_eq!(
            has_token(h, name, t),
            token(name, t),
            "has_token({name}, {t})"
        );
    }
    let key = values("sec-websocket-key").next();
    let want_ok = head.method == "GET"
        && head.http11
        && token("upgrade", "websocket")
        && token("connection", "upgrade")
        && key.is_some_and(valid_key)
        && values("sec-websocket-version").next().map(str::trim) == Some("13");
    match result {
        Ok(got) => {
            assert!(
                want_ok,
                "accepted a handshake the reference refuses: {head:?}"
            );
            assert_eq!(Some(got.as_str()), key);
            assert_eq!(accept_key(&got).len(), 28);
        }
        Err(why) => assert!(!want_ok, "refused a valid handshake ({why}): {head:?}"),
    }
});

/// Base64 of exactly 16 bytes, canonical (RFC 6455 §4.1: "a randomly
/// selected 16-byte value that has been base64-encoded").
fn valid_key(key: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let Some(body) = key.strip_suffix("==") else {
        return false;
    };
    let b = body.as_bytes();
    if b.len() != 22 || !b.iter().all(|c| ALPHABET.contains(c)) {
        return false;
    }
    // 16 bytes = 128 bits; 22 characters carry 132: the last 4 are zero.
    let last = ALPHABET.iter().position(|&c| c == b[21]).unwrap();
    last & 0x0f == 0
}
