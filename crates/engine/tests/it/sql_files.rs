//! The data-driven SQL tests: every `tests/sql/*.test` file is a list of blocks
//!
//! ```text
//! query                       error
//! SELECT …                    SELECT …
//! ----                        ----
//! expected rows, tab-separated   text the error must contain
//! ```
//!
//! run over the example `events` (its fixture) and `kinds` (`tests/sql/kinds.*`). Values are
//! shown as ClickHouse's TSV would (times as `YYYY-MM-DD hh:mm:ss[.fff]`, NULL as `NULL`, arrays
//! as `[a, b]`). Every failing block is reported, not just the first.

use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use engine::workspace::{Workspace, WorkspaceOptions};

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sql"))
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f"));
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<ArrayFormatter> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        let float: Vec<bool> = b.columns().iter().map(|c| c.data_type().is_floating()).collect();
        for i in 0..b.num_rows() {
            let cells = cols.iter().zip(&float).map(|(c, f)| {
                let v = c.value(i).to_string();
                // ClickHouse prints whole floats without a fraction.
                if *f && let Some(whole) = v.strip_suffix(".0") { whole.to_string() } else { v }
            });
            out.push(cells.collect::<Vec<_>>().join("\t"));
        }
    }
    out
}

#[tokio::test]
async fn sql_files() {
    let data = std::env::temp_dir().join(format!("aviary-sql-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let ws = Workspace::open(&data, WorkspaceOptions::default()).unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
    ws.deploy_datasource("events", &read(PathBuf::from(example).join("datasources/events.datasource"))).unwrap();
    ws.ingest_ndjson("events", &read(PathBuf::from(example).join("fixtures/events.ndjson")), "fixture").unwrap();
    ws.deploy_datasource("kinds", &read(dir().join("kinds.datasource"))).unwrap();
    let loaded = ws.ingest_ndjson("kinds", &read(dir().join("kinds.ndjson")), "fixture").unwrap();
    assert_eq!(loaded.quarantined_rows, 0, "kinds.ndjson must load whole");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut blocks = 0;
    for file in &files {
        let text = read(file.clone());
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut lines = text.lines().enumerate().peekable();
        while let Some((at, line)) = lines.next() {
            let kind = line.trim();
            if kind.is_empty() || kind.starts_with('#') {
                continue;
            }
            assert!(kind == "query" || kind == "error", "{name}:{}: expected `query` or `error`, got {kind}", at + 1);
            let mut sql = Vec::new();
            for (_, l) in lines.by_ref() {
                if l == "----" {
                    break;
                }
                sql.push(l);
            }
            let mut expected = Vec::new();
            while let Some((_, l)) = lines.peek() {
                if l.is_empty() {
                    break;
                }
                expected.push(l.to_string());
                lines.next();
            }
            blocks += 1;
            let sql = sql.join("\n");
            let result = ws.sql(&sql).await;
            let place = format!("{name}:{}", at + 1);
            match (kind, result) {
                ("query", Ok(out)) => {
                    let got = rows(&out.batches);
                    if got != expected {
                        failures.push(format!("{place}: {sql}\n  expected: {expected:?}\n  got:      {got:?}"));
                    }
                }
                ("query", Err(e)) => failures.push(format!("{place}: {sql}\n  failed: {e}")),
                (_, Ok(out)) => {
                    failures.push(format!("{place}: {sql}\n  expected an error, got {:?}", rows(&out.batches)))
                }
                (_, Err(e)) => {
                    let want = expected.join("\n");
                    if !e.to_string().contains(&want) {
                        failures.push(format!("{place}: {sql}\n  expected an error containing {want:?}, got {e}"));
                    }
                }
            }
        }
    }
    drop(ws);
    let _ = std::fs::remove_dir_all(&data);
    assert!(failures.is_empty(), "{} of {blocks} blocks failed:\n{}", failures.len(), failures.join("\n"));
    assert!(blocks >= 50, "only {blocks} blocks ran");
}
