//! Fuzz the template parser and renderer: any input must parse or fail with an error, and any
//! parsed template must render or fail with an error — never panic, never hang.
//!
//! Input layout: the first line holds `name=value` pairs separated by `&` (the request
//! parameters); the rest is the template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use template::{Limits, Params, Template};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (query, body) = text.split_once('\n').unwrap_or(("", &text));
    let mut params = Params::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(k, v);
    }
    // Smaller bounds than production keep each run fast; the code paths are the same.
    let limits = Limits { max_loop_iterations: 10_000, max_output_bytes: 1 << 20, ..Limits::default() };
    if let Ok(t) = Template::parse_with(body, limits) {
        let _ = t.parameters();
        let _ = t.render(&params);
    }
});
