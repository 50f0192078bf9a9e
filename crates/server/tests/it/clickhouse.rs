//! What only the ClickHouse backend has: its own server going away and coming back.

use serde_json::Value;

use crate::clickhouse_server;
use crate::harness::{Backend, Server, example};

/// ClickHouse killed (`SIGKILL`) under a running node: writes acknowledged meanwhile wait in the
/// node's spool, a full spool answers 503 and stores nothing, and after the restart every
/// acknowledged row is there — once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_no_acknowledged_row() {
    let dir = std::env::temp_dir().join(format!("aviary-test-ch-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || clickhouse_server::start_in(&dir)
    })
    .await
    .unwrap();
    let s = Server::start_with(Backend::ClickHouse, "ch-restart", |c| {
        c.max_buffer_bytes = 1;
        if let Some(ch) = &mut c.clickhouse {
            ch.connection.url = format!("http://127.0.0.1:{port}");
        }
    })
    .await;
    let fixture = example("fixtures/events.ndjson");
    let (status, _) = s.events("name=events&wait=true", fixture.clone()).await;
    assert_eq!(status, 200);

    let d = dir.clone();
    tokio::task::spawn_blocking(move || clickhouse_server::kill_in(&d)).await.unwrap();
    let (status, body) = s.events("name=events", fixture.clone()).await;
    assert_eq!(status, 202, "spooled while ClickHouse is down: {body}");
    let (status, body) = s.events("name=events", fixture.clone()).await;
    assert_eq!(
        (status.as_u16(), body.trim_end()),
        (503, "Service temporarily unavailable, no data ingested, please retry again")
    );
    let d = dir.clone();
    tokio::task::spawn_blocking(move || clickhouse_server::restart_in(&d)).await.unwrap();
    s.settle().await;
    let count = |table: &'static str| {
        let s = &s;
        async move {
            let (_, v) = s.sql(&format!("SELECT count() AS c FROM {table} FORMAT JSON")).await;
            v["data"][0]["c"].clone()
        }
    };
    // Two acknowledged writes of five good rows and three bad ones; the refused one is not there.
    assert_eq!((count("events").await, count("events_quarantine").await), (Value::from(10), Value::from(6)));
    s.stop().await;
    let d = dir.clone();
    tokio::task::spawn_blocking(move || clickhouse_server::kill_in(&d)).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
