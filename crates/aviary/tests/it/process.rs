//! The real `aviary serve` as a child process on a free port, for tests that need the binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `aviary serve`, killed with SIGKILL when dropped (so a failing test never leaves
/// a server behind).
pub struct Served {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Stops the server as an orchestrator does (SIGTERM) and waits for it to exit; its exit
    /// status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().expect("aviary exits")
    }
}

/// Starts `aviary serve` with `dir` and `token`; returns it once it listens.
pub fn start(dir: &Path, token: &str, extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", token])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .env("AVIARY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("aviary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("aviary printed its address").expect("readable stdout");
        if let Some(rest) = line.strip_prefix("Aviary listening on ") {
            break rest.trim().to_string();
        }
    };
    Served { child, url }
}

/// Runs a Node.js client script with `args`; asserts it succeeded and returns the JSON of the
/// last line it printed (the scripts' summary).
pub fn node_summary(script: &str, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new("node").arg(script).args(args).output().expect("node runs");
    assert!(
        out.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("{}")).expect("one JSON line")
}
