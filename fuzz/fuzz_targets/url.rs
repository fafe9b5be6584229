//! Percent-decoding and query parsing (`http/url.rs`): never a panic;
//! text without escapes is unchanged; anything percent-encoded decodes
//! back; a query built from encoded pairs parses back to those pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natron::http::url::{parse_query, percent_decode};

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let plain = percent_decode(&text, false);
    let form = percent_decode(&text, true);
    if !text.contains('%') {
        assert_eq!(plain, text);
        assert_eq!(form, text.replace('+', " "));
    }
    let _ = parse_query(&text);

    // Every byte escaped: decodes back exactly.
    assert_eq!(percent_decode(&encode(&text, true), false), text);
    assert_eq!(percent_decode(&encode(&text, false), true), text);

    // Pairs separated by the input's NUL bytes and `\x01`.
    let pairs: Vec<(String, String)> = text
        .split('\0')
        .map(|p| {
            let (k, v) = p.split_once('\x01').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .filter(|(k, v)| !k.is_empty() || !v.is_empty())
        .collect();
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, false), encode(v, false)))
        .collect();
    assert_eq!(parse_query(&query.join("&")), pairs);
});

/// Escapes `%`, `&`, `=`, `+`, and everything but ASCII letters and
/// digits when `all` is false; every byte when it is true.
fn encode(s: &str, all: bool) -> String {
    s.bytes()
        .map(|b| {
            if !all && b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
