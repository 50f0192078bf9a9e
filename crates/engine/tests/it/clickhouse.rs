//! The ClickHouse backend's insert spool against a real ClickHouse.

use std::time::Duration;

use engine::clickhouse::client::{Client, Connection};
use engine::clickhouse::spool::{Rows, Spool, SpoolOptions};

use crate::clickhouse_server;

fn client(url: String, database: &str) -> Client {
    Client::new(Connection { url, database: database.to_string(), user: "default".into(), password: None }).unwrap()
}

/// One `String` value as `RowBinary`, for table `t`.
fn row(s: &str) -> Vec<Rows> {
    let mut bytes = vec![s.len() as u8];
    bytes.extend_from_slice(s.as_bytes());
    vec![Rows { table: "t".into(), columns: vec!["a".into()], count: 1, bytes }]
}

async fn count(c: &Client, table: &str) -> u64 {
    let v = c.query_json(&format!("SELECT count() FROM {table}")).await.unwrap();
    v["data"][0][0].as_str().unwrap().parse().unwrap()
}

/// Rows spooled while ClickHouse cannot be reached survive the node's restart and are inserted
/// once by the next start; a start after that replays nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_rows_survive_a_restart_and_land_once() {
    let url = tokio::task::spawn_blocking(clickhouse_server::server_url).await.unwrap();
    let db = clickhouse_server::fresh_database();
    let admin = client(url.clone(), "");
    admin.execute(&format!("CREATE DATABASE {db}"), &[]).await.unwrap();
    admin.execute(&format!("CREATE TABLE {db}.t (a String) ENGINE = MergeTree ORDER BY a"), &[]).await.unwrap();
    let live = client(url, &db);
    let dir = std::env::temp_dir().join(format!("aviary-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = SpoolOptions { window: Duration::from_millis(10), ..Default::default() };

    // ClickHouse unreachable: the rows are acknowledged (durable here) and stay.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spool =
        Spool::open(&dir, client(format!("http://127.0.0.1:{dead_port}"), &db), options.clone(), Default::default())
            .unwrap();
    for v in ["a", "b", "c"] {
        spool.append(row(v), false, spool.arrival()).unwrap();
    }
    assert!(!spool.drain(Duration::from_millis(300)).await, "nothing reaches a dead server");
    spool.close(Duration::from_millis(10)).await;
    assert_eq!(count(&live, "t").await, 0);

    // The next start sends them.
    let spool = std::sync::Arc::new(Spool::open(&dir, live.clone(), options.clone(), Default::default()).unwrap());
    assert!(spool.drain(Duration::from_secs(20)).await);
    assert_eq!(count(&live, "t").await, 3);
    let waiting = spool.clone();
    tokio::task::spawn_blocking(move || waiting.append(row("d"), true, waiting.arrival()))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&live, "t").await, 4, "wait=true answers once ClickHouse has the row");
    spool.close(Duration::from_secs(5)).await;

    // And the one after replays nothing.
    let spool = Spool::open(&dir, live.clone(), options, Default::default()).unwrap();
    assert!(spool.drain(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(&live, "t").await, 4);
    spool.close(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
