//! A real Redis for tests: `AVIARY_TEST_REDIS_URL` when set, otherwise Debian's `redis-server`
//! started on a free loopback port, shared by every test process of the run (a lock file guards
//! the start; the server outlives the processes).

use std::process::Command;

fn ready(port: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(format!("127.0.0.1:{port}")) else { return false };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    s.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// The shared server's URL (`redis://127.0.0.1:<port>`), starting it when needed.
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("AVIARY_TEST_REDIS_URL") {
        return url;
    }
    let dir = std::env::temp_dir().join("aviary-test-redis");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(std::env::temp_dir().join("aviary-test-redis.lock")).unwrap();
    lock.lock().unwrap();
    let port_file = dir.join("port");
    if let Ok(port) = std::fs::read_to_string(&port_file)
        && ready(port.trim())
    {
        return format!("redis://127.0.0.1:{}", port.trim());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let status = Command::new("redis-server")
        .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "yes"])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .status()
        .expect("redis-server runs (apt-get install redis-server; scripts/test does it)");
    assert!(status.success(), "redis-server did not start");
    let started = std::time::Instant::now();
    while !ready(&port) {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "Redis did not answer");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::write(&port_file, &port).unwrap();
    format!("redis://127.0.0.1:{port}")
}
