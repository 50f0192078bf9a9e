//! Real Tinybird clients against the real server: `verdin` (PyPI) sends events, appends NDJSON
//! and CSV, and reads the rows back through the SQL API.

use std::process::Command;

use crate::process::start;

#[test]
fn verdin_ingests_and_reads_back() {
    let python = std::env::var("AVIARY_REF_PYTHON")
        .expect("AVIARY_REF_PYTHON must name a Python with verdin installed (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-verdin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let (mut child, url) = start(&dir, "p.verdin-admin", &["--project", project]);
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/verdin_ingest.py"))
        .args([&url, "p.verdin-admin"])
        .output()
        .expect("python runs");
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "verdin failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        seen,
        serde_json::json!({
            "events": {"status": null, "successful_rows": 2, "quarantined_rows": 1},
            "ndjson_status": 200,
            "csv_status": 200,
            "count": 5
        })
    );
}
