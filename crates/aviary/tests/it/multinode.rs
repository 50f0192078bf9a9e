//! Two `aviary serve` processes over one ClickHouse database, one PostgreSQL identity store and
//! one Redis: what one node is told, the other serves.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::start;
use crate::{clickhouse_server, postgres, redis_server};

const TOKEN: &str = "p.multinode-admin-token";
const WS: &str = "5a0c4c1e-7777-2222-3333-444455556666";

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Polls `url` with `token` until it answers 200 (at most 10 s); the answer.
async fn eventually(client: &reqwest::Client, url: &str, token: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, v) = get(client, url, token).await;
        if status == 200 {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{url}: still {status} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_one_workspace() {
    let ch = tokio::task::spawn_blocking(clickhouse_server::server_url).await.unwrap();
    let pg = tokio::task::spawn_blocking(postgres::fresh_database).await.unwrap();
    let redis = tokio::task::spawn_blocking(redis_server::server_url).await.unwrap();
    let database = clickhouse_server::fresh_database();
    let root = std::env::temp_dir().join(format!("aviary-multinode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let project = format!("{}/../../examples/web-analytics", env!("CARGO_MANIFEST_DIR"));
    let common = [
        "--workspace-id",
        WS,
        "--sealing-key",
        "multinode-sealing-key",
        "--secret-key",
        "sk_live_multinode",
        "--clickhouse-url",
        &ch,
        "--clickhouse-database",
        &database,
        "--clickhouse-batch-ms",
        "20",
        "--database-url",
        &pg,
        "--redis-url",
        &redis,
    ];
    let mut with_project = common.to_vec();
    with_project.extend(["--project", &project]);
    let a = start(&root.join("a"), TOKEN, &with_project);
    let b = start(&root.join("b"), TOKEN, &common);
    let client = reqwest::Client::new();

    // An event ingested on one node is readable on the other.
    let fixture = std::fs::read_to_string(format!("{project}/fixtures/events.ndjson")).unwrap();
    let r = client
        .post(format!("{}/v0/events?name=events&wait=true", a.url))
        .bearer_auth(TOKEN)
        .body(fixture.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) =
        get(&client, &format!("{}/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON", b.url), TOKEN)
            .await;
    assert_eq!(v["data"][0]["c"], 5, "{v}");

    // A pipe deployed on one node is served by the other, without a restart.
    let pipe = json!({"name": "n_events", "nodes": [{"name": "endpoint", "type": "endpoint", "sql": "SELECT count() AS c FROM events"}]});
    let r = client.post(format!("{}/v0/pipes", a.url)).bearer_auth(TOKEN).json(&pipe).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v = eventually(&client, &format!("{}/v0/pipes/n_events.json", b.url), TOKEN).await;
    assert_eq!(v["data"][0]["c"], 5);

    // A token created on one node works on the other (and reads only what it may).
    let r = client
        .post(format!("{}/v0/tokens", a.url))
        .query(&[("name", "reader"), ("scope", "DATASOURCES:READ:events:org = 'acme'")])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reader = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let count = format!("{}/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON", b.url);
    let v = eventually(&client, &count, &reader).await;
    assert_eq!(v["data"][0]["c"], 3, "acme's rows only: {v}");
    let (status, _) = get(&client, &format!("{}/v0/pipes/kpis.json", b.url), &reader).await;
    assert_eq!(status, 403, "the token reads only its data source, on every node");

    // A JWT's rps limit holds across both nodes: three on one node spend it for the other.
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
    let body = json!({"name": "limited", "scopes": [{"type": "PIPES:READ", "resource": "n_events", "fixed_params": {"org": "acme"}}], "limits": {"rps": 3}});
    let r = client
        .post(format!("{}/v0/tokens?expiration_time={exp}", a.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwt = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let mut on_a = Vec::new();
    for _ in 0..3 {
        on_a.push(get(&client, &format!("{}/v0/pipes/n_events.json", a.url), &jwt).await.0);
    }
    let (on_b, v) = get(&client, &format!("{}/v0/pipes/n_events.json", b.url), &jwt).await;
    assert_eq!(on_a, [200, 200, 200]);
    assert_eq!(on_b, 429, "the other node refuses: the bucket is shared ({v})");

    // SIGTERM: rows acknowledged just before are flushed to ClickHouse before the node exits.
    let r =
        client.post(format!("{}/v0/events?name=events", b.url)).bearer_auth(TOKEN).body(fixture).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert!(b.terminate().success(), "a clean exit");
    let (_, v) =
        get(&client, &format!("{}/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON", a.url), TOKEN)
            .await;
    assert_eq!(v["data"][0]["c"], 10, "the drained rows are there: {v}");
    drop(a);
    let _ = std::fs::remove_dir_all(&root);
}
