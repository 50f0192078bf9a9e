//! A workspace end to end: deploy the example data source, ingest the fixture events, read
//! them (and the quarantine) back with SQL, across a flush and a reopen.

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use engine::workspace::{Deployed, Ingested, Workspace, WorkspaceOptions};

fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../examples/web-analytics/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn count(ws: &Workspace, sql: &str) -> u64 {
    let out = ws.sql(sql).await.unwrap();
    out.batches[0].column(0).as_primitive::<UInt64Type>().value(0)
}

#[tokio::test]
async fn fixture_events_land_and_read_back() {
    let dir = std::env::temp_dir().join(format!("aviary-ws-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
        let text = example("datasources/events.datasource");
        assert_eq!(ws.deploy_datasource("events", &text).unwrap(), Deployed::Created);
        assert_eq!(ws.deploy_datasource("events", &text).unwrap(), Deployed::Unchanged);
        let changed = text.replace("`country` LowCardinality(String)", "`country` String");
        assert!(ws.deploy_datasource("events", &changed).is_err());
        let result = ws.ingest_ndjson("events", &example("fixtures/events.ndjson"), "import-1").unwrap();
        assert_eq!(result, Ingested { successful_rows: 5, quarantined_rows: 3 });
        assert_eq!(count(&ws, "SELECT count(*) FROM events").await, 5);
        assert_eq!(count(&ws, "SELECT count(*) FROM events WHERE org = 'acme'").await, 3);
        assert_eq!(count(&ws, "SELECT count(*) FROM events_quarantine").await, 3);
        let q = ws.sql("SELECT c__error FROM events_quarantine ORDER BY timestamp NULLS LAST").await.unwrap();
        let errors = q.batches[0].column(0).as_list::<i32>();
        let first = errors.value(0);
        assert_eq!(first.as_string::<i32>().value(0), "value '-5' cannot be parsed as UInt32");
        ws.flush().unwrap();
        assert_eq!(count(&ws, "SELECT count(*) FROM events").await, 5);
        ws.ingest_ndjson("events", &example("fixtures/events.ndjson"), "import-2").unwrap();
    }
    let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
    assert_eq!(ws.datasources(), ["events"]);
    assert_eq!(count(&ws, "SELECT count(*) FROM events").await, 10, "flushed parts plus the replayed WAL");
    assert_eq!(count(&ws, "SELECT count(*) FROM events_quarantine").await, 6);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn compatible_changes_apply_in_place_and_others_are_refused() {
    let dir = std::env::temp_dir().join(format!("aviary-ws-alter-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let text = example("datasources/events.datasource");
    let added = text.replace(
        "    `tags` Array(String) `json:$.tags[:]`",
        "    `tags` Array(String) `json:$.tags[:]`,\n    `plan` LowCardinality(String) `json:$.plan` DEFAULT 'free',\n    `score` Nullable(Float64) `json:$.score`,\n    `visits` UInt16 `json:$.visits` DEFAULT 0",
    );
    assert_ne!(added, text, "the fixture's last column moved: update this test");
    {
        let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
        ws.deploy_datasource("events", &text).unwrap();
        ws.ingest_ndjson("events", &example("fixtures/events.ndjson"), "before").unwrap();
        ws.flush().unwrap(); // some rows in a part…
        ws.ingest_ndjson("events", &example("fixtures/events.ndjson"), "buffered").unwrap(); // …some buffered
        assert_eq!(
            ws.alter_datasource("events", &added, true).unwrap().unwrap(),
            [
                "ADD COLUMN `plan` LowCardinality(String) DEFAULT 'free' AFTER `tags`",
                "ADD COLUMN `score` Nullable(Float64) AFTER `plan`",
                "ADD COLUMN `visits` UInt16 DEFAULT 0 AFTER `score`",
            ]
        );
        assert!(ws.sql("SELECT plan FROM events").await.is_err(), "a dry run changes nothing");
        assert_eq!(ws.deploy_datasource("events", &added).unwrap(), Deployed::Altered);
        assert_eq!(ws.deploy_datasource("events", &added).unwrap(), Deployed::Unchanged);
        let line = r#"{"timestamp":"2026-11-02 10:00:00.000","org":"acme","user":"u9","event":"page_view","path":"/new","country":"ES","duration_ms":1,"tags":[],"plan":"pro","score":0.5,"visits":3}"#;
        assert_eq!(ws.ingest_ndjson("events", line, "after").unwrap().successful_rows, 1);
    }
    for round in 0..2 {
        let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
        let q = "SELECT count(*) FROM events WHERE plan = 'free' AND score IS NULL AND visits = 0";
        assert_eq!(count(&ws, q).await, 10, "round {round}: older rows read the fills");
        let q = "SELECT count(*) FROM events WHERE plan = 'pro' AND score = 0.5 AND visits = 3";
        assert_eq!(count(&ws, q).await, 1, "round {round}: the new row keeps its values");
        assert_eq!(count(&ws, "SELECT count(*) FROM events_quarantine WHERE plan IS NULL").await, 6);
        ws.flush().unwrap();
        ws.maintain(1_793_577_600, 1).unwrap(); // merges old- and new-shape parts
    }
    let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
    for (change, why) in [
        (
            added.replace("`visits` UInt16", "`visits` UInt32"),
            "changing the type of column 'visits' from UInt16 to UInt32",
        ),
        (added.replace("    `path` String `json:$.path`,\n", ""), "removing column 'path'"),
        (
            added.replace("ENGINE_SORTING_KEY \"org, timestamp\"", "ENGINE_SORTING_KEY \"timestamp\""),
            "changing the sorting key",
        ),
        (
            added.replace(
                "ENGINE_PARTITION_KEY \"toYYYYMM(timestamp)\"",
                "ENGINE_PARTITION_KEY \"toYYYYMMDD(timestamp)\"",
            ),
            "changing the partition key",
        ),
    ] {
        assert_ne!(change, added, "{why}: the fixture changed");
        let err = ws.deploy_datasource("events", &change).unwrap_err().to_string();
        assert!(err.contains(&format!("{why} is not a compatible change")), "{err}");
    }
    assert_eq!(count(&ws, "SELECT count(*) FROM events").await, 11, "refused changes leave the data alone");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_query_for_one_tenant_reads_little_more_than_its_rows() {
    let dir = std::env::temp_dir().join(format!("aviary-ws-prune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
    ws.deploy_datasource("events", &example("datasources/events.datasource")).unwrap();
    // 120,000 events: 59 large tenants with 2,000 rows each and `small` with 2,000 too, interleaved.
    let mut body = String::new();
    for i in 0..120_000 {
        let org = if i % 60 == 7 { "small".to_string() } else { format!("org{:02}", i % 60) };
        body.push_str(&format!(
            "{{\"timestamp\":\"2026-11-01 10:{:02}:{:02}.000\",\"org\":\"{org}\",\"user\":\"u{}\",\"event\":\"page_view\",\"path\":\"/\",\"country\":\"ES\",\"duration_ms\":1,\"tags\":[]}}\n",
            (i / 60) % 60,
            i % 60,
            i % 97
        ));
    }
    ws.ingest_ndjson("events", &body, "load").unwrap();
    ws.flush().unwrap();
    let out = ws.sql("SELECT count() AS c FROM events WHERE org = 'small'").await.unwrap();
    let c = out.batches[0].column(0).as_primitive::<UInt64Type>().value(0);
    assert_eq!(c, 2_000);
    eprintln!("rows_read for a 2,000-row tenant of 120,000: {}", out.rows_read);
    assert!(out.rows_read <= 4_000, "read {} rows for a 2,000-row tenant of 120,000", out.rows_read);
    let all = ws.sql("SELECT count() AS c FROM events").await.unwrap();
    assert_eq!(all.rows_read, 120_000, "an unfiltered query reads everything");
    // The same answers whether a query runs on one thread (one small tenant, by its pages'
    // statistics) or on several (many rows): counts, uniq and groups.
    let per_org = "SELECT org, count() AS c, uniq(user) AS u, uniqExact(user) AS e FROM events WHERE org IN ({}) \
                   GROUP BY org ORDER BY org";
    for orgs in ["'small'", "'small', 'org00', 'org01', 'org02', 'org03', 'org04', 'org05', 'org06', 'org08', 'org09'"]
    {
        let out = ws.sql(&per_org.replace("{}", orgs)).await.unwrap();
        let b = arrow_select::concat::concat_batches(&out.schema, &out.batches).unwrap();
        assert_eq!(b.num_rows(), orgs.split(',').count());
        for r in 0..b.num_rows() {
            assert_eq!(b.column(1).as_primitive::<UInt64Type>().value(r), 2_000);
            let (u, e) =
                (b.column(2).as_primitive::<UInt64Type>().value(r), b.column(3).as_primitive::<UInt64Type>().value(r));
            assert_eq!(u, e, "uniq agrees with uniqExact on {orgs}");
            assert!(e > 0 && e <= 97);
        }
    }
    assert_eq!(count(&ws, "SELECT uniq(org) FROM events").await, 60);
    drop(ws);
    std::fs::remove_dir_all(&dir).unwrap();
}
