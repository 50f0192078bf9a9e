//! Differential test against the reference renderer (PyPI `tinybird-cli`, module
//! `tinybird.sql_template`): every corpus case is rendered by the reference (in a Python
//! virtualenv named by `AVIARY_REF_PYTHON`) and by us, and the results must agree — except
//! for cases marked as deviations, where ours must equal the spec's Aviary decision.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value as Json;
use template::{Error, Params, Template, Value};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

/// Our result in the harness's JSON shape.
fn ours(case: &Json) -> Json {
    let text = case["template"].as_str().unwrap_or_default();
    let mut params = Params::new();
    if let Some(obj) = case["params"].as_object() {
        for (k, v) in obj {
            params.insert(k.clone(), Value::from(v));
        }
    }
    match Template::parse(text).and_then(|t| t.render(&params)) {
        Ok(r) => serde_json::json!({ "ok": r.sql }),
        Err(Error::Custom { status, body }) => {
            serde_json::json!({ "kind": "custom", "status": status, "body": body })
        }
        Err(e @ Error::User { .. }) => {
            serde_json::json!({ "kind": "user", "error": e.to_string() })
        }
        Err(e @ Error::Syntax { .. }) => {
            serde_json::json!({ "kind": "syntax", "error": e.to_string() })
        }
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut<'a>(s: &'a str, mode: &str) -> &'a str {
    let at = match mode {
        "upto_paren" => s.find('('),
        "upto_dash" => s.find(" - "),
        _ => None,
    };
    at.map_or(s, |i| &s[..i])
}

/// Whether `got` agrees with `want` under the case's comparison mode: SQL whitespace-insensitively
/// (`verbatim`: exactly), messages exactly or up to a cut point.
fn agrees(got: &Json, want: &Json, mode: &str) -> bool {
    if let Some(w) = want.get("ok") {
        if mode == "verbatim" {
            return got.get("ok") == Some(w);
        }
        return got.get("ok").and_then(Json::as_str).map(squash) == w.as_str().map(squash);
    }
    let kind = want.get("kind").and_then(Json::as_str).unwrap_or("syntax");
    if got.get("kind").and_then(Json::as_str) != Some(kind) {
        return false;
    }
    if kind == "custom" {
        return got["status"] == want["status"] && got["body"] == want["body"];
    }
    let (g, w) = (got["error"].as_str().unwrap_or_default(), want["error"].as_str().unwrap_or_default());
    cut(g, mode) == cut(w, mode)
}

#[test]
fn differential_corpus_matches_reference() {
    let python = std::env::var("AVIARY_REF_PYTHON")
        .expect("AVIARY_REF_PYTHON must name a Python with tinybird-cli installed (scripts/test sets it up)");
    let dir = corpus_dir();
    let corpus_text = std::fs::read_to_string(dir.join("corpus.jsonl")).expect("corpus.jsonl");
    let cases: Vec<Json> = corpus_text.lines().map(|l| serde_json::from_str(l).expect("corpus line")).collect();
    assert!(cases.len() >= 300, "the corpus must hold at least 300 cases");
    let output = Command::new(&python)
        .arg(dir.join("reference.py"))
        .arg(dir.join("corpus.jsonl"))
        // The reference prints Python sets in some messages; a fixed hash seed fixes their order.
        .env("PYTHONHASHSEED", "0")
        .output()
        .expect("running the reference renderer");
    assert!(output.status.success(), "reference.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let reference: Vec<Json> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("reference line"))
        .collect();
    assert_eq!(reference.len(), cases.len(), "one reference result per case");

    let mut failures = Vec::new();
    let mut deviations = 0;
    for (case, reference) in cases.iter().zip(&reference) {
        assert_eq!(case["id"], reference["id"]);
        let mode = case["match"].as_str().unwrap_or("exact");
        let got = ours(case);
        let want = match case.get("deviation").filter(|d| !d.is_null()) {
            Some(d) => {
                deviations += 1;
                // A deviation must really differ from the reference, or it is not one.
                assert!(
                    !agrees(&reference["result"], &d["expect"], mode),
                    "{}: marked as a deviation but the reference already gives the expected result",
                    case["id"]
                );
                &d["expect"]
            }
            None => &reference["result"],
        };
        if !agrees(&got, want, mode) {
            failures.push(format!(
                "{}\n  template: {}\n  params:   {}\n  want:     {}\n  got:      {}",
                case["id"], case["template"], case["params"], want, got
            ));
        }
    }
    eprintln!("{} cases, {} deviations, {} failures", cases.len(), deviations, failures.len());
    if let Ok(path) = std::env::var("AVIARY_DIFF_REPORT") {
        std::fs::write(path, failures.join("\n")).expect("writing the report");
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}
