//! Render the `top_pages` pipe of the example project (both nodes, four parameters) from parsed
//! templates, and the reference renderer on the same input in the same run.
//!
//! `cargo bench -p template` — set `AVIARY_REF_PYTHON` to a Python with `tinybird-cli` installed
//! for the comparison (`scripts/test` creates one at `.venv-ref`).

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use criterion::Criterion;
use template::{Params, Template, strip_activation};

const PIPE: &str = include_str!("../../../examples/web-analytics/pipes/top_pages.pipe");

/// The SQL of every node of a `.pipe` file (indented block after `SQL >`).
fn nodes(pipe: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = pipe.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "SQL >" {
            let mut sql = Vec::new();
            while let Some(l) = lines.peek() {
                if !(l.starts_with("    ") || l.trim().is_empty()) {
                    break;
                }
                sql.push(l.strip_prefix("    ").unwrap_or(l).to_string());
                lines.next();
            }
            out.push(sql.join("\n").trim_end().to_string());
        }
    }
    out
}

fn params() -> [(&'static str, &'static str); 4] {
    [("org", "acme"), ("user", "user_42"), ("date_from", "2026-11-01 00:00:00"), ("limit", "20")]
}

fn parsed() -> Vec<Template> {
    nodes(PIPE)
        .iter()
        .map(|n| Template::parse(strip_activation(n).expect("a template node")).expect("parses"))
        .collect()
}

fn render_all(templates: &[Template], p: &Params) -> usize {
    templates.iter().map(|t| t.render(p).expect("renders").sql.len()).sum()
}

fn bench(c: &mut Criterion) {
    let templates = parsed();
    let p: Params = params().into_iter().collect();
    c.bench_function("top_pages: render both nodes, 4 params", |b| {
        b.iter(|| render_all(black_box(&templates), black_box(&p)))
    });
    c.bench_function("top_pages: parse both nodes", |b| {
        let sources: Vec<String> = nodes(PIPE);
        b.iter(|| sources.iter().map(|s| Template::parse(strip_activation(s).unwrap()).unwrap()).collect::<Vec<_>>())
    });
}

/// Mean microseconds per render of both nodes, measured with a plain loop (for the ratio).
fn ours_micros() -> f64 {
    let templates = parsed();
    let p: Params = params().into_iter().collect();
    for _ in 0..10_000 {
        black_box(render_all(&templates, &p));
    }
    let n = 200_000;
    let start = Instant::now();
    for _ in 0..n {
        black_box(render_all(black_box(&templates), black_box(&p)));
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn reference_micros(python: &str) -> Option<f64> {
    // The reference renders the text after the pipe loader removed the `%`, as we do.
    let nodes: Vec<String> = nodes(PIPE).iter().map(|n| strip_activation(n).unwrap().to_string()).collect();
    let params: serde_json::Map<String, serde_json::Value> =
        params().into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
    let spec = serde_json::json!({ "nodes": nodes, "params": params, "seconds": 5.0 });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/reference_timing.py");
    let mut child = Command::new(python).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().ok()?;
    child.stdin.take()?.write_all(spec.to_string().as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["micros_per_render"].as_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    let ours = ours_micros();
    println!("\naviary: {ours:.3} µs per render of top_pages (2 nodes, 4 params)");
    match std::env::var("AVIARY_REF_PYTHON") {
        Ok(python) => match reference_micros(&python) {
            Some(reference) => {
                println!("reference (tinybird-cli sql_template): {reference:.3} µs per render");
                println!("aviary is {:.0}x faster than the reference", reference / ours);
            }
            None => println!("reference timing failed (is tinybird-cli installed for {python}?)"),
        },
        Err(_) => println!("set AVIARY_REF_PYTHON to compare with the reference renderer"),
    }
}
