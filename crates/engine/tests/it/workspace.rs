//! A workspace end to end: deploy the example data source, ingest the fixture events, read
//! them (and the quarantine) back with SQL, across a flush and a reopen.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use engine::workspace::{Deployed, Ingested, Workspace, WorkspaceOptions};

fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../examples/web-analytics/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn count(ws: &Workspace, sql: &str) -> i64 {
    let out = ws.sql(sql).await.unwrap();
    out.batches[0].column(0).as_primitive::<Int64Type>().value(0)
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
