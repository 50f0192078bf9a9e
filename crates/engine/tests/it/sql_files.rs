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
//!
//! The same `query` blocks also run on a real ClickHouse (Debian's `clickhouse-server`, started
//! by [`clickhouse_agrees`] over the same rows) and must give the same rows there, unless the
//! block says why not: `query not-on-clickhouse: <reason>` (a function newer than that server,
//! or a documented difference).

use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use datafusion::scalar::ScalarValue;
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

/// One block of a `.test` file.
struct Block {
    /// `file:line`.
    place: String,
    /// Whether an error is expected.
    error: bool,
    sql: String,
    expected: Vec<String>,
    /// Why ClickHouse does not run this block, when it does not.
    not_on_clickhouse: Option<String>,
}

fn blocks() -> Vec<Block> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut lines = text.lines().enumerate().peekable();
        while let Some((at, line)) = lines.next() {
            let kind = line.trim();
            if kind.is_empty() || kind.starts_with('#') {
                continue;
            }
            let (word, rest) = kind.split_once(' ').unwrap_or((kind, ""));
            assert!(word == "query" || word == "error", "{name}:{}: expected `query` or `error`, got {kind}", at + 1);
            let not_on_clickhouse = match rest.trim() {
                "" => None,
                r => Some(
                    r.strip_prefix("not-on-clickhouse:")
                        .unwrap_or_else(|| panic!("{name}:{}: unknown block option {r}", at + 1))
                        .trim()
                        .to_string(),
                ),
            };
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
            out.push(Block {
                place: format!("{name}:{}", at + 1),
                error: word == "error",
                sql: sql.join("\n"),
                expected,
                not_on_clickhouse,
            });
        }
    }
    out
}

/// A workspace with the fixtures loaded.
fn fixtures(data: &Path) -> Workspace {
    let _ = std::fs::remove_dir_all(data);
    let ws = Workspace::open(data, WorkspaceOptions::default()).unwrap();
    let example = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics"));
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
    ws.deploy_datasource("events", &read(example.join("datasources/events.datasource"))).unwrap();
    ws.ingest_ndjson("events", &read(example.join("fixtures/events.ndjson")), "fixture").unwrap();
    ws.deploy_datasource("kinds", &read(dir().join("kinds.datasource"))).unwrap();
    let loaded = ws.ingest_ndjson("kinds", &read(dir().join("kinds.ndjson")), "fixture").unwrap();
    assert_eq!(loaded.quarantined_rows, 0, "kinds.ndjson must load whole");
    ws
}

#[tokio::test]
async fn sql_files() {
    let data = std::env::temp_dir().join(format!("aviary-sql-files-{}", std::process::id()));
    let ws = fixtures(&data);
    let all = blocks();
    let mut failures = Vec::new();
    for b in &all {
        let (place, sql, expected) = (&b.place, &b.sql, &b.expected);
        match (b.error, ws.sql(sql).await) {
            (false, Ok(out)) => {
                let got = rows(&out.batches);
                if got != *expected {
                    failures.push(format!("{place}: {sql}\n  expected: {expected:?}\n  got:      {got:?}"));
                }
            }
            (false, Err(e)) => failures.push(format!("{place}: {sql}\n  failed: {e}")),
            (true, Ok(out)) => {
                failures.push(format!("{place}: {sql}\n  expected an error, got {:?}", rows(&out.batches)))
            }
            (true, Err(e)) => {
                let want = expected.join("\n");
                if !e.to_string().contains(&want) {
                    failures.push(format!("{place}: {sql}\n  expected an error containing {want:?}, got {e}"));
                }
            }
        }
    }
    drop(ws);
    let _ = std::fs::remove_dir_all(&data);
    assert!(failures.is_empty(), "{} of {} blocks failed:\n{}", failures.len(), all.len(), failures.join("\n"));
    assert!(all.len() >= 50, "only {} blocks ran", all.len());
}

/// ClickHouse's tables for the fixtures. Debian's server (18.16) has no `DateTime64` and no
/// `LowCardinality` by default: times are whole seconds there, strings plain.
const CLICKHOUSE_TABLES: [&str; 2] = [
    "CREATE TABLE events (timestamp DateTime, org String, user String, event String, path String, \
     country String, duration_ms UInt32, tags Array(String)) ENGINE = MergeTree \
     PARTITION BY toYYYYMM(timestamp) ORDER BY (org, timestamp)",
    "CREATE TABLE kinds (id UInt32, name String, score Nullable(Float64), n Int64, at DateTime, day Date, \
     items Array(String), payload String, flag UInt8) ENGINE = MergeTree ORDER BY id",
];

/// A `clickhouse-server` in a scratch directory, killed when dropped.
struct ClickHouse {
    child: std::process::Child,
    url: String,
    dir: PathBuf,
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ClickHouse {
    fn start(dir: PathBuf) -> ClickHouse {
        let binary = std::env::var("AVIARY_CLICKHOUSE_SERVER").unwrap_or_else(|_| "/usr/sbin/clickhouse-server".into());
        assert!(
            Path::new(&binary).exists(),
            "{binary} not found: this test needs ClickHouse (apt-get install -y clickhouse-server; scripts/test does)"
        );
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (http, tcp) = (port(), port());
        let d = dir.display();
        std::fs::write(
            dir.join("config.xml"),
            format!(
                "<yandex><logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>\
                 <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port><listen_host>127.0.0.1</listen_host>\
                 <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path><users_config>{d}/users.xml</users_config>\
                 <default_profile>default</default_profile><default_database>default</default_database>\
                 <timezone>UTC</timezone><mark_cache_size>67108864</mark_cache_size></yandex>"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("users.xml"),
            "<yandex><profiles><default></default></profiles><users><default><password></password>\
             <networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>\
             <quotas><default></default></quotas></yandex>",
        )
        .unwrap();
        let child = std::process::Command::new(&binary)
            .arg(format!("--config-file={}", dir.join("config.xml").display()))
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let mut server = ClickHouse { child, url: format!("http://127.0.0.1:{http}/"), dir };
        let client = reqwest::blocking::Client::new();
        for _ in 0..1200 {
            if client.get(format!("{}ping", server.url)).send().is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("clickhouse-server exited during start ({status}); see {}/error.log", server.dir.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("clickhouse-server did not answer in 60 s")
    }

    /// Runs `sql`; the body, or the error text.
    fn query(&self, sql: &str) -> Result<String, String> {
        let r =
            reqwest::blocking::Client::new().post(&self.url).body(sql.to_string()).send().map_err(|e| e.to_string())?;
        let ok = r.status().is_success();
        let text = r.text().map_err(|e| e.to_string())?;
        if ok { Ok(text) } else { Err(text) }
    }
}

/// A value as JSON for ClickHouse's `JSONEachRow` (times as whole seconds).
fn json(v: &ScalarValue) -> serde_json::Value {
    use serde_json::Value as J;
    if v.is_null() {
        return J::Null;
    }
    let time = |seconds: i64| {
        chrono::DateTime::from_timestamp(seconds, 0).unwrap().format("%Y-%m-%d %H:%M:%S").to_string().into()
    };
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
            J::from(s.clone())
        }
        ScalarValue::TimestampSecond(Some(t), _) => time(*t),
        ScalarValue::TimestampMillisecond(Some(t), _) => time(t.div_euclid(1000)),
        ScalarValue::TimestampMicrosecond(Some(t), _) => time(t.div_euclid(1_000_000)),
        ScalarValue::Date32(Some(d)) => (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Duration::days(i64::from(*d)))
        .to_string()
        .into(),
        ScalarValue::List(l) => {
            let values = l.value(0);
            J::Array((0..values.len()).map(|i| json(&ScalarValue::try_from_array(&values, i).unwrap())).collect())
        }
        other => serde_json::from_str(&other.to_string()).unwrap_or_else(|_| J::from(other.to_string())),
    }
}

/// A cell compared across the two outputs: arrays without quotes or spaces, booleans as 0/1,
/// NULL as `NULL`, times to the second, numbers to 9 significant digits.
fn normal(cell: &str) -> String {
    let cell = match cell {
        "\\N" => "NULL",
        "true" => "1",
        "false" => "0",
        // The zero date and time: ClickHouse 18.16 prints them as zeros.
        "0000-00-00" => "1970-01-01",
        "0000-00-00 00:00:00" => "1970-01-01 00:00:00",
        c => c,
    };
    if let Ok(f) = cell.parse::<f64>() {
        return if f == f.trunc() && f.abs() < 1e15 { format!("{}", f as i64) } else { format!("{f:.9e}") };
    }
    let is_time = cell.len() > 19 && cell.as_bytes().get(10) == Some(&b' ') && cell.as_bytes().get(19) == Some(&b'.');
    if is_time {
        return cell[..19].to_string();
    }
    if cell.starts_with('[') || cell.starts_with('(') {
        // Whole floats inside print without the fraction there too.
        return cell.replace(['\'', ' '], "").replace(".0,", ",").replace(".0]", "]").replace(".0)", ")");
    }
    // A tuple, which the embedded engine holds as a struct: `{c0: 1, c1: a}`.
    if let Some(fields) = cell.strip_prefix("{c0: ").and_then(|c| c.strip_suffix('}')) {
        let values: Vec<&str> = std::iter::once(fields.split(", ").next().unwrap_or_default())
            .chain(fields.split(", ").skip(1).map(|f| f.split_once(": ").map_or(f, |(_, v)| v)))
            .collect();
        return format!("({})", values.join(","));
    }
    cell.to_string()
}

fn normal_rows(rows: &[String]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.split('\t').map(normal).collect()).collect()
}

#[test]
fn clickhouse_agrees() {
    let data = std::env::temp_dir().join(format!("aviary-sql-clickhouse-{}", std::process::id()));
    let ws = fixtures(&data);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let clickhouse = ClickHouse::start(std::env::temp_dir().join(format!("aviary-clickhouse-{}", std::process::id())));
    for (table, create) in ["events", "kinds"].into_iter().zip(CLICKHOUSE_TABLES) {
        clickhouse.query(create).unwrap();
        let out = runtime.block_on(ws.sql(&format!("SELECT * FROM {table}"))).unwrap();
        let mut body = String::new();
        for b in &out.batches {
            for i in 0..b.num_rows() {
                let row: serde_json::Map<String, serde_json::Value> = b
                    .schema()
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .map(|(f, c)| (f.name().clone(), json(&ScalarValue::try_from_array(c, i).unwrap())))
                    .collect();
                body.push_str(&serde_json::Value::Object(row).to_string());
                body.push('\n');
            }
        }
        clickhouse.query(&format!("INSERT INTO {table} FORMAT JSONEachRow\n{body}")).unwrap();
    }
    let all = blocks();
    let mut failures = Vec::new();
    let mut compared = 0;
    for b in all.iter().filter(|b| !b.error && b.not_on_clickhouse.is_none()) {
        compared += 1;
        let sql = match b.sql.rfind(" FORMAT ") {
            Some(at) => &b.sql[..at],
            None => &b.sql,
        };
        match clickhouse.query(&format!("{sql} FORMAT TabSeparated")) {
            Ok(text) => {
                let got: Vec<String> = text.lines().map(str::to_string).collect();
                if normal_rows(&got) != normal_rows(&b.expected) {
                    failures.push(format!(
                        "{}: {}\n  Aviary expects: {:?}\n  ClickHouse:     {got:?}",
                        b.place, b.sql, b.expected
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {}\n  ClickHouse failed: {}", b.place, b.sql, e.trim())),
        }
    }
    drop(ws);
    let _ = std::fs::remove_dir_all(&data);
    assert!(
        failures.is_empty(),
        "{} of {compared} blocks disagree with ClickHouse:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 30, "only {compared} blocks compared");
}
