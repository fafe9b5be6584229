//! multipart/form-data through the public API only
//! (`natron::http::multipart::parse`): never a panic on any content type
//! and body; and a body built from fuzzed parts parses back to them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natron::http::multipart::parse;

fuzz_target!(|input: &[u8]| {
    // Any content type and body.
    let cut = input
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(input.len());
    let content_type = String::from_utf8_lossy(&input[..cut]);
    if let Ok(parts) = parse(&content_type, input.get(cut + 1..).unwrap_or(&[])) {
        let total: usize = parts.iter().map(|p| p.body.len()).sum();
        assert!(total <= input.len());
    }

    // Built: boundary, then parts as name/body pairs split on NUL.
    let Some((&b, rest)) = input.split_first() else {
        return;
    };
    let boundary = format!("b{}x", "-".repeat(b as usize % 8));
    let fields: Vec<&[u8]> = rest.split(|&c| c == 0).collect();
    let mut body = Vec::new();
    let mut want = Vec::new();
    for pair in fields.chunks(2) {
        let name: String = String::from_utf8_lossy(pair[0])
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let data = pair.get(1).copied().unwrap_or(b"");
        // As a browser does, the boundary is not in the content at all
        // (content starting with `--boundary` is read as a delimiter by
        // some parsers, as content by others).
        let dash = format!("--{boundary}");
        if name.is_empty() || data.windows(dash.len()).any(|w| w == dash.as_bytes()) {
            continue;
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
        want.push((name, data.to_vec()));
    }
    if want.is_empty() {
        return;
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let parts = parse(&format!("multipart/form-data; boundary={boundary}"), &body)
        .unwrap_or_else(|e| panic!("a well-formed body refused: {e:?}"));
    let got: Vec<(String, Vec<u8>)> = parts.into_iter().map(|p| (p.name, p.body)).collect();
    assert_eq!(got, want);
});
