//! `aviary identity rotate-key` beside a running server sharing its store: the server publishes
//! the new key within about a second (it polls the store's change counter), keeps signing with
//! the old one, and `aviary identity keys` prints the same JWKS.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::start;

fn jwks(url: &str) -> serde_json::Value {
    reqwest::blocking::get(format!("{url}/.well-known/jwks.json")).unwrap().json().unwrap()
}

#[test]
fn rotate_key_reaches_the_running_server() {
    let dir = std::env::temp_dir().join(format!("aviary-rotate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(&dir, "p.rotate-admin", &["--secret-key", "sk_live_rotate"]);
    let before = jwks(&server.url);
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);
    let first = before["keys"][0]["kid"].as_str().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(["identity", "rotate-key", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{first}_2")));
    let started = Instant::now();
    let after = loop {
        let j = jwks(&server.url);
        if j["keys"].as_array().unwrap().len() == 2 || started.elapsed() > Duration::from_secs(10) {
            break j;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let kids: Vec<&str> = after["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![first.clone(), format!("{first}_2")]);
    let keys =
        Command::new(env!("CARGO_BIN_EXE_aviary")).args(["identity", "keys", "--data-dir"]).arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&keys.stdout);
    assert!(text.contains(&format!("\"{first}_2\"")) && text.contains("-----BEGIN PUBLIC KEY-----"), "{text}");
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
