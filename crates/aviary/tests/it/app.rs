//! The app in a real headless Chromium (Debian's `chromium`, driven by npm's `playwright-core`):
//! the whole user journey of `tests/clients/app_e2e.mjs` against `aviary serve` with the example
//! project. Screenshots land in `target/app-screenshots/`.

use crate::process::{node_summary, start};

#[test]
fn app_journey_in_a_real_browser() {
    let modules = std::env::var("AVIARY_NODE_MODULES")
        .expect("AVIARY_NODE_MODULES must name a node_modules with playwright-core (scripts/test sets it up)");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (scripts/test installs it)"
    );
    let dir = std::env::temp_dir().join(format!("aviary-app-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let workspace = "5a0c4c1e-e2e0-4000-a000-000000000001";
    let server = start(
        &dir,
        "p.app-e2e-admin",
        &[
            "--project",
            project,
            "--secret-key",
            "sk_live_app-e2e",
            "--workspace-id",
            workspace,
            "--flush-interval-ms",
            "200",
        ],
    );
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/app-screenshots");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/app_e2e.mjs");
    let summary =
        node_summary(script, &[&modules, &server.url, "p.app-e2e-admin", "sk_live_app-e2e", workspace, shots]);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["umbrella_events"], 30);
    assert_eq!(summary["initech_events"], 12);
    assert_eq!(summary["screenshots"].as_array().map(Vec::len), Some(7), "{summary}");
}
