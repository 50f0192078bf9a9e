//! A real PostgreSQL for tests: `AVIARY_TEST_POSTGRES_URL` when set, otherwise a server this
//! module starts from Debian's binaries (`/usr/lib/postgresql/<v>/bin`) in a temporary directory,
//! shared by every test process of the run (a lock file guards the start; the server outlives
//! the processes so the next binary reuses it). Each test gets a database of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql; scripts/test does it)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL version with initdb")
}

/// Runs a PostgreSQL binary as the `postgres` user when we are root (the server refuses root).
fn pg(bin: &Path, args: &[&str]) -> std::process::Output {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).current_dir("/tmp").output().expect("PostgreSQL binary runs")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ready(bin: &Path, port: &str) -> bool {
    pg(&bin.join("pg_isready"), &["-h", "127.0.0.1", "-p", port, "-q"]).status.success()
}

/// The server's base URL (`postgres://postgres@127.0.0.1:<port>`), starting it when needed.
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("AVIARY_TEST_POSTGRES_URL") {
        return url.trim_end_matches('/').to_string();
    }
    let bin = bin_dir();
    let dir = std::env::temp_dir().join("aviary-test-postgres");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(std::env::temp_dir().join("aviary-test-postgres.lock")).unwrap();
    lock.lock().unwrap();
    let port_file = dir.join("port");
    if let Ok(port) = std::fs::read_to_string(&port_file)
        && ready(&bin, port.trim())
    {
        return format!("postgres://postgres@127.0.0.1:{}", port.trim());
    }
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
    let out = pg(
        &bin.join("initdb"),
        &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
    );
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let port = free_port().to_string();
    let options =
        format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", dir.display());
    let log = dir.join("log");
    let out = pg(
        &bin.join("pg_ctl"),
        &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &options, "-w", "-t", "60", "start"],
    );
    assert!(out.status.success(), "PostgreSQL did not start: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&port_file, &port).unwrap();
    format!("postgres://postgres@127.0.0.1:{port}")
}

/// A new, empty database; its URL.
pub fn fresh_database() -> String {
    let base = server_url();
    let name = format!("t_{}_{:x}", std::process::id(), rand_u64());
    let bin = bin_dir();
    let url = url_parts(&base);
    let out = pg(
        &bin.join("psql"),
        &["-h", &url.0, "-p", &url.1, "-U", &url.2, "-d", "postgres", "-qc", &format!("CREATE DATABASE {name}")],
    );
    assert!(out.status.success(), "CREATE DATABASE failed: {}", String::from_utf8_lossy(&out.stderr));
    format!("{base}/{name}")
}

/// (host, port, user) of `postgres://user@host:port`.
fn url_parts(url: &str) -> (String, String, String) {
    let rest = url.trim_start_matches("postgres://").trim_start_matches("postgresql://");
    let (user, host_port) = rest.split_once('@').unwrap_or(("postgres", rest));
    let user = user.split(':').next().unwrap_or("postgres");
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
    (host.to_string(), port.split('/').next().unwrap_or("5432").to_string(), user.to_string())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}
