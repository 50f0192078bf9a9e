//! A real ClickHouse for tests: `AVIARY_TEST_CLICKHOUSE_URL` when set, otherwise a server this
//! module starts from Debian's `clickhouse-server` in a temporary directory, shared by every test
//! process of the run (a lock file guards the start; the server outlives the processes so the
//! next binary reuses it). Each test gets a database of its own.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether a ClickHouse answers `/ping` on `port`.
pub fn ready(port: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(format!("127.0.0.1:{port}")) else { return false };
    use std::io::{Read, Write};
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if s.write_all(b"GET /ping HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.contains("Ok.")
}

/// The configuration of a server in `dir` listening on `http`/`tcp`/`interserver` ports,
/// derived from the package's `/etc/clickhouse-server/config.xml`.
fn write_config(dir: &Path, http: u16, tcp: u16, interserver: u16) {
    let base = std::fs::read_to_string("/etc/clickhouse-server/config.xml")
        .expect("clickhouse-server is installed (apt-get install clickhouse-server; scripts/test does it)");
    let d = dir.display().to_string();
    let config = base
        .replace("/var/log/clickhouse-server/", &format!("{d}/log/"))
        .replace("/var/lib/clickhouse/", &format!("{d}/data/"))
        .replace("<http_port>8123</http_port>", &format!("<http_port>{http}</http_port>"))
        .replace("<tcp_port>9000</tcp_port>", &format!("<tcp_port>{tcp}</tcp_port>"))
        .replace(
            "<interserver_http_port>9009</interserver_http_port>",
            &format!("<interserver_http_port>{interserver}</interserver_http_port>"),
        )
        .replace("<listen_host>::1</listen_host>", "")
        .replace("<users_config>users.xml</users_config>", &format!("<users_config>{d}/users.xml</users_config>"))
        .replace("<level>trace</level>", "<level>warning</level>");
    std::fs::write(dir.join("config.xml"), config).unwrap();
    std::fs::copy("/etc/clickhouse-server/users.xml", dir.join("users.xml")).unwrap();
}

/// Starts a ClickHouse server in `dir` (as the `clickhouse` user when we are root); returns
/// its HTTP port once it answers. The caller owns the process (`pid` file in `dir`).
pub fn start_in(dir: &Path) -> u16 {
    start_on(dir, (free_port(), free_port(), free_port()))
}

/// Kills the server started in `dir` (`SIGKILL`: no goodbye) and waits until it is gone.
pub fn kill_in(dir: &Path) {
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    // runuser forwards nothing once killed: kill the server itself too.
    let _ =
        Command::new("pkill").args(["-9", "-f", &format!("config-file={}", dir.join("config.xml").display())]).status();
    let port = std::fs::read_to_string(dir.join("http_port")).unwrap();
    while ready(port.trim()) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Starts the server of `dir` again on the ports it had.
pub fn restart_in(dir: &Path) -> u16 {
    let ports = std::fs::read_to_string(dir.join("ports")).unwrap();
    let p: Vec<u16> = ports.split(',').map(|p| p.trim().parse().unwrap()).collect();
    start_on(dir, (p[0], p[1], p[2]))
}

fn start_on(dir: &Path, (http, tcp, interserver): (u16, u16, u16)) -> u16 {
    std::fs::create_dir_all(dir.join("log")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("ports"), format!("{http},{tcp},{interserver}")).unwrap();
    std::fs::write(dir.join("http_port"), http.to_string()).unwrap();
    write_config(dir, http, tcp, interserver);
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        let _ = Command::new("chown").args(["-R", "clickhouse:clickhouse"]).arg(dir).status();
    }
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "clickhouse", "--", "/usr/sbin/clickhouse-server"]);
        c
    } else {
        Command::new("/usr/sbin/clickhouse-server")
    };
    let log = std::fs::File::create(dir.join("stdout.log")).unwrap();
    // The server outlives this process (later test binaries reuse it): never waited for here.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .arg(format!("--config-file={}", dir.join("config.xml").display()))
        .current_dir(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("clickhouse-server starts");
    std::fs::write(dir.join("pid"), child.id().to_string()).unwrap();
    let started = std::time::Instant::now();
    while !ready(&http.to_string()) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "ClickHouse did not start: {}",
            std::fs::read_to_string(dir.join("log/clickhouse-server.err.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    http
}

/// The shared server's URL (`http://127.0.0.1:<port>`), starting it when needed.
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("AVIARY_TEST_CLICKHOUSE_URL") {
        return url.trim_end_matches('/').to_string();
    }
    let dir = std::env::temp_dir().join("aviary-test-clickhouse");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(std::env::temp_dir().join("aviary-test-clickhouse.lock")).unwrap();
    lock.lock().unwrap();
    let port_file = dir.join("port");
    if let Ok(port) = std::fs::read_to_string(&port_file)
        && ready(port.trim())
    {
        return format!("http://127.0.0.1:{}", port.trim());
    }
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let port = start_in(&dir);
    std::fs::write(&port_file, port.to_string()).unwrap();
    format!("http://127.0.0.1:{port}")
}

/// A fresh database name for one test (created by the backend on first use).
pub fn fresh_database() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    format!("t_{}_{:x}", std::process::id(), h.finish())
}
