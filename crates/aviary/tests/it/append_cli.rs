//! `aviary append`: a local NDJSON, CSV or Parquet file streamed into a running server (or a data
//! directory no server has open) in chunks, with the quarantined rows reported and a summary at
//! the end.

use std::process::Command;

use crate::process::start;

const TOKEN: &str = "p.append-admin";

fn count(url: &str, sql: &str) -> u64 {
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{url}/v0/sql"))
        .query(&[("q", format!("{sql} FORMAT JSON"))])
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"][0]["c"].as_u64().unwrap()
}

#[test]
fn loads_ndjson_and_csv_files_with_a_summary() {
    let dir = std::env::temp_dir().join(format!("aviary-append-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let server = start(&dir.join("data"), TOKEN, &["--project", project]);
    let url = server.url.clone();
    let mut ndjson = String::new();
    for i in 0..5000 {
        ndjson.push_str(&format!(
            "{{\"timestamp\":\"2026-11-01 10:00:00.000\",\"org\":\"o{}\",\"user\":\"u{i}\",\"event\":\"page_view\",\"path\":\"/\",\"country\":\"ES\",\"duration_ms\":{i},\"tags\":[]}}\n",
            i % 7
        ));
    }
    ndjson.push_str("not json\n{\"timestamp\":\"bad\"}\n");
    let file = dir.join("history.ndjson");
    std::fs::write(&file, &ndjson).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(["append", "events"])
        .arg(&file)
        .args(["--host", &url, "--token", TOKEN, "--chunk-bytes", "65536"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "quarantined rows give exit code 3: {stdout}");
    assert!(stdout.starts_with("5000 rows appended to events, 2 quarantined"), "{stdout}");
    assert_eq!(count(&url, "SELECT count(*) AS c FROM events"), 5000);
    assert_eq!(count(&url, "SELECT count(*) AS c FROM events_quarantine"), 2);
    // CSV, columns by position, into the same data source.
    let csv = dir.join("more.csv");
    std::fs::write(
        &csv,
        "2026-11-01 11:00:00.000,acme,u1,click,/a,ES,5,[]\n2026-11-01 11:00:01.000,acme,u2,click,/b,ES,6,\"['x']\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(["append", "events"])
        .arg(&csv)
        .args(["--host", &url, "--token", TOKEN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(count(&url, "SELECT count(*) AS c FROM events WHERE org = 'acme'"), 2);
    // Parquet: the two `acme` rows read back as Parquet and appended again, in 1-row chunks.
    let parquet = reqwest::blocking::Client::new()
        .get(format!("{url}/v0/sql"))
        .query(&[("q", "SELECT * FROM events WHERE org = 'acme' FORMAT Parquet")])
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let pq = dir.join("acme.parquet");
    std::fs::write(&pq, &parquet).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(["append", "events"])
        .arg(&pq)
        .args(["--host", &url, "--token", TOKEN, "--chunk-bytes", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("2 rows appended to events, 0 quarantined"), "{stdout}");
    assert_eq!(count(&url, "SELECT count(*) AS c FROM events WHERE org = 'acme'"), 4);
    let out = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(["append", "events", "x.txt", "--token", TOKEN])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Straight into the data directory: refused while the server has it open…
    let direct = |file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_aviary"))
            .args(["append", "events"])
            .arg(file)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--chunk-bytes", "65536"])
            .output()
            .unwrap()
    };
    let out = direct(&file);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another process"));
    drop(server); // SIGKILL, and waited for
    // …and done once it is stopped; the rows are there when it starts again.
    let out = direct(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("5000 rows appended to events, 2 quarantined"), "{stdout}");
    let out = direct(&pq);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = start(&dir.join("data"), TOKEN, &[]);
    assert_eq!(count(&server.url, "SELECT count(*) AS c FROM events"), 10_006);
    assert_eq!(count(&server.url, "SELECT count(*) AS c FROM events_quarantine"), 4);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
