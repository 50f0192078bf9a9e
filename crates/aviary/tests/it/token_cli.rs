//! `aviary token create|list|refresh|delete` against a running server.

use std::process::Command;

use crate::process::start;

const TOKEN: &str = "p.token-cli-admin";

fn aviary(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .arg("token")
        .args(args)
        .args(["--host", url, "--token", TOKEN])
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn sql_status(url: &str, token: &str) -> u16 {
    let r =
        reqwest::blocking::Client::new().get(format!("{url}/v0/sql")).query(&[("q", "SELECT 1")]).bearer_auth(token);
    r.send().unwrap().status().as_u16()
}

#[test]
fn tokens_are_created_listed_refreshed_and_deleted() {
    let dir = std::env::temp_dir().join(format!("aviary-token-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(&dir, TOKEN, &[]);
    let url = server.url.clone();
    let (ok, created) = aviary(&url, &["create", "reader", "--scope", "PIPES:READ:kpis", "--scope", "TOKENS"]);
    assert!(ok, "{created}");
    let first = created.trim().to_string();
    assert!(first.starts_with("p."), "{created}");
    assert_eq!(sql_status(&url, &first), 200);
    let (ok, list) = aviary(&url, &["list"]);
    assert!(ok, "{list}");
    let line = list.lines().find(|l| l.starts_with("reader\t")).expect("reader is listed");
    assert!(line.ends_with("PIPES:READ:kpis TOKENS"), "{line}");
    assert!(list.lines().any(|l| l.starts_with("admin token\t")), "{list}");
    let (ok, again) = aviary(&url, &["create", "reader", "--scope", "TOKENS"]);
    assert!(!ok && again.contains("Token with name \"reader\" already exists"), "{again}");
    let (ok, refreshed) = aviary(&url, &["refresh", "reader"]);
    assert!(ok, "{refreshed}");
    let second = refreshed.trim().to_string();
    assert_ne!(first, second);
    assert_eq!(sql_status(&url, &first), 403);
    assert_eq!(sql_status(&url, &second), 200);
    let (ok, deleted) = aviary(&url, &["delete", "reader"]);
    assert!(ok, "{deleted}");
    assert_eq!(sql_status(&url, &second), 403);
    let (ok, missing) = aviary(&url, &["delete", "reader"]);
    assert!(!ok && missing.contains("Token \"reader\" not found"), "{missing}");
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
