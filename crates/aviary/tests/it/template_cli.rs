//! `aviary template render|params`: stdin in, SQL or JSON out, the exit codes of the contract.

use std::io::Write;
use std::process::{Command, Stdio};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn aviary(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aviary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn renders_a_template_node() {
    let out = aviary(
        &["template", "render", "--param", "org=acme", "--param", "ids=1", "--param", "ids=2"],
        "%\nSELECT * FROM events WHERE org = {{String(org)}} AND id IN {{Array(ids, 'Int32')}}",
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(out.stdout, "\nSELECT * FROM events WHERE org = 'acme' AND id IN [1,2]\n");
}

#[test]
fn json_parameters_win_over_flags() {
    let out = aviary(
        &["template", "render", "--param", "n=1", "--params-json", r#"{"n": 7, "tags": ["a", "b"]}"#],
        "% SELECT {{Int32(n)}}, {{Array(tags)}}",
    );
    assert_eq!(out.stdout.trim(), "SELECT toInt32('7'), ['a','b']");
}

#[test]
fn a_node_without_percent_passes_through_untouched() {
    let sql = "SELECT '{{ not a template }}' FROM t\n";
    let out = aviary(&["template", "render", "--param", "x=1"], sql);
    assert_eq!((out.code, out.stdout.as_str()), (0, sql));
}

#[test]
fn template_errors_exit_1_with_the_api_message() {
    let out = aviary(&["template", "render"], "%\nSELECT {{String(tenant_id)}}");
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "Template Syntax Error: Required parameter is not defined. Check the parameters tenant_id. Please provide a value or set a default value in the pipe code."
    );
    assert!(out.stdout.is_empty());
    let out = aviary(&["template", "render"], "% {{ error('user is required', 400) }}");
    assert_eq!((out.code, out.stderr.trim()), (1, "user is required"));
}

#[test]
fn custom_error_prints_status_and_body() {
    let out = aviary(&["template", "render"], "% {{ custom_error({'error': 'no tenant', 'code': 'MISSING'}, 403) }}");
    assert_eq!((out.code, out.stderr.trim()), (1, r#"status=403 body={"error":"no tenant","code":"MISSING"}"#));
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = aviary(&["template", "render", "--param", "novalue"], "% {{x}}");
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("NAME=VALUE"), "{}", out.stderr);
}

#[test]
fn lists_parameters_as_json() {
    let out = aviary(&["template", "params"], "%\nSELECT {{Int32(limit, 10, description='Rows')}} {{String(org)}}");
    assert_eq!(out.code, 0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"name": "limit", "type": "Int32", "default": 10, "description": "Rows"},
            {"name": "org", "type": "String", "default": null}
        ])
    );
}
