//! Crash test: the real server under concurrent `wait=true` ingestion is killed with SIGKILL at
//! random moments and restarted; every acknowledged row must be there exactly once, batches are
//! all-or-nothing, and nothing that was never sent appears.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::process::start;

const TOKEN: &str = "p.crash-test-admin";
const ROWS_PER_BATCH: usize = 50;

fn rounds() -> usize {
    std::env::var("AVIARY_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}

fn batch_body(id: &str) -> String {
    (0..ROWS_PER_BATCH).map(|i| format!("{{\"id\":\"{id}\",\"seq\":{i},\"pad\":\"{}\"}}\n", "x".repeat(64))).collect()
}

/// Reads every (batch id, seq) pair in the table.
async fn stored(client: &reqwest::Client, url: &str) -> BTreeMap<String, Vec<i64>> {
    let r = client
        .get(format!("{url}/v0/sql"))
        .query(&[("q", "SELECT id, seq FROM crash ORDER BY id, seq FORMAT JSON")])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in v["data"].as_array().cloned().unwrap_or_default() {
        out.entry(row["id"].as_str().unwrap().to_string()).or_default().push(row["seq"].as_i64().unwrap());
    }
    out
}

#[test]
fn acknowledged_rows_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("aviary-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::new(Mutex::new(BTreeSet::new()));
    let sent: Arc<Mutex<BTreeSet<String>>> = Arc::new(Mutex::new(BTreeSet::new()));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let total_rounds = rounds();
    for round in 0..total_rounds {
        let server = start(&dir, TOKEN, &["--flush-interval-ms", "100"]);
        let url = server.url.clone();
        let kill_after = Duration::from_millis(rand::rng().random_range(30..400));
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for c in 0..4 {
                let (client, url, acked, sent) = (client.clone(), url.clone(), acked.clone(), sent.clone());
                tasks.push(tokio::spawn(async move {
                    for b in 0.. {
                        let id = format!("r{round:02}-c{c}-b{b:04}");
                        sent.lock().unwrap().insert(id.clone());
                        let r = client
                            .post(format!("{url}/v0/events?name=crash&wait=true"))
                            .bearer_auth(TOKEN)
                            .body(batch_body(&id))
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => {
                                acked.lock().unwrap().insert(id);
                            }
                            _ => break,
                        }
                    }
                }));
            }
            tokio::time::sleep(kill_after).await;
            drop(server); // SIGKILL, and waited for
            for t in tasks {
                let _ = t.await;
            }
        });
        // Restart and check.
        let server = start(&dir, TOKEN, &["--flush-interval-ms", "100"]);
        let url = server.url.clone();
        let rows = runtime.block_on(stored(&client, &url));
        let acked = acked.lock().unwrap().clone();
        let sent = sent.lock().unwrap().clone();
        let missing: Vec<&String> = acked.iter().filter(|id| !rows.contains_key(*id)).collect();
        assert!(missing.is_empty(), "round {round}: {} acknowledged batches are missing: {missing:?}", missing.len());
        for id in &acked {
            let seqs = &rows[id];
            assert_eq!(
                seqs,
                &(0..ROWS_PER_BATCH as i64).collect::<Vec<_>>(),
                "round {round}: batch {id} not exactly once"
            );
        }
        for (id, seqs) in &rows {
            assert!(sent.contains(id), "round {round}: batch {id} was never sent");
            assert_eq!(seqs.len(), ROWS_PER_BATCH, "round {round}: batch {id} is partial or duplicated");
        }
        drop(server); // SIGKILL, and waited for
        eprintln!("round {round}: {} batches acknowledged so far, {} stored", acked.len(), rows.len());
    }
    assert!(acked.lock().unwrap().len() > total_rounds, "the test acknowledged too few batches to mean anything");
    std::fs::remove_dir_all(&dir).unwrap();
}
