//! The test server: the real application on a random port with a fresh data directory.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

pub const TOKEN: &str = "p.test-admin-token";
/// The identity Backend API secret key of test servers.
pub const SECRET_KEY: &str = "sk_live_test-secret-key";

/// Where a test server keeps its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The data directory.
    Embedded,
    /// A database of its own on the shared test ClickHouse.
    ClickHouse,
}

pub struct Server {
    pub backend: Backend,
    /// Whether the store keeps `DateTime64` (ClickHouse before 20.1 keeps whole seconds).
    pub datetime64: bool,
    pub base: String,
    pub identity: std::sync::Arc<identity::Identity>,
    pub client: reqwest::Client,
    _dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../examples/web-analytics/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

impl Server {
    pub async fn start(b: Backend, name: &str) -> Server {
        Server::start_with(b, name, |_| {}).await
    }

    pub async fn start_with(b: Backend, name: &str, configure: impl FnOnce(&mut server::Config)) -> Server {
        Server::launch(b, name, configure, &[]).await
    }

    /// `start_example` with settings of its own.
    pub async fn start_with_example(b: Backend, name: &str, configure: impl FnOnce(&mut server::Config)) -> Server {
        let s = Server::launch(b, name, configure, &["top_pages", "kpis", "user_activity", "events_per_minute"]).await;
        let (status, body) = s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
        assert_eq!(status, 200, "{body}");
        s
    }

    /// A server with the example project (the `events` data source and its four pipes) and its
    /// fixture events.
    pub async fn start_example(b: Backend, name: &str) -> Server {
        let s = Server::launch(b, name, |_| {}, &["top_pages", "kpis", "user_activity", "events_per_minute"]).await;
        let (status, body) = s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
        assert_eq!(status, 200, "{body}");
        s
    }

    async fn launch(b: Backend, name: &str, configure: impl FnOnce(&mut server::Config), pipes: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("aviary-api-{name}-{b:?}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = server::Config {
            data_dir: dir.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_token: TOKEN.into(),
            workspace_id: "5a0c4c1e-1111-2222-3333-444455556666".into(),
            max_body_bytes: 1024 * 1024,
            max_decompressed_bytes: 4 * 1024 * 1024,
            max_buffer_bytes: 64 * 1024 * 1024,
            flush_interval: Duration::from_millis(50),
            docs_base_url: "https://www.tinybird.co/docs".into(),
            events_rps: 1_000,
            query_timeout: Duration::from_secs(10),
            max_result_bytes: 100 * 1024 * 1024,
            static_token_rps: 0,
            jwt_max_lifetime: None,
            sealing_key: None,
            database_url: None,
            identity_secret_key: Some(SECRET_KEY.into()),
            public_url: None,
            identity_requests_per_10s: 0,
            password_params: Default::default(),
            workspace_admins: Vec::new(),
            clickhouse: (b == Backend::ClickHouse).then(|| server::ClickHouseConfig {
                connection: engine::clickhouse::client::Connection {
                    url: crate::clickhouse_server::server_url(),
                    database: crate::clickhouse_server::fresh_database(),
                    user: "default".into(),
                    password: None,
                },
                cluster: None,
                batch_window: Duration::from_millis(20),
            }),
            redis_url: None,
            nodes: 1,
        };
        configure(&mut config);
        let app = server::Application::build(config).await.unwrap();
        let ws = app.workspace();
        let pipes: Vec<String> = pipes.iter().map(|p| p.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            ws.deploy_datasource("events", &example("datasources/events.datasource")).unwrap();
            for p in pipes {
                ws.deploy_pipe(&p, &example(&format!("pipes/{p}.pipe"))).unwrap();
            }
        })
        .await
        .unwrap();
        let datetime64 = app.workspace().clickhouse().is_none_or(|c| c.features().has("DateTime64"));
        let base = format!("http://127.0.0.1:{}", app.port());
        let identity = app.identity();
        let (stop, wait) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = wait.await;
            })
            .await
            .unwrap();
        });
        Server {
            backend: b,
            datetime64,
            base,
            identity,
            client: reqwest::Client::new(),
            _dir: TempDir(dir),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// The identity outbox (recipient, subject, link), newest first.
    pub async fn workspace_outbox(&self) -> Vec<(String, String, Option<String>)> {
        self.identity.outbox(50).await.unwrap()
    }

    /// Waits until every acknowledged row is where queries read it (ClickHouse: rows acknowledged
    /// without `wait=true` are still in the node's spool for up to a batch window).
    pub async fn settle(&self) {
        let started = std::time::Instant::now();
        loop {
            let r = self.client.get(self.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
            let text = r.text().await.unwrap();
            let buffered = text
                .lines()
                .find_map(|l| l.strip_prefix("aviary_buffered_bytes "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            if buffered == 0.0 || self.backend == Backend::Embedded {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "rows stayed buffered: {buffered} bytes");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A `DateTime64(3)` value of the example as this store answers it.
    pub fn ts(&self, text: &str) -> String {
        match self.datetime64 {
            true => text.to_string(),
            false => text.split('.').next().unwrap_or(text).to_string(),
        }
    }

    /// The type of the example's `timestamp` column as this store answers it.
    pub fn timestamp_type(&self) -> &'static str {
        if self.datetime64 { "DateTime64(3)" } else { "DateTime" }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn events(&self, query: &str, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
        let r = self
            .client
            .post(self.url(&format!("/v0/events?{query}")))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// The body of an authenticated GET.
    pub async fn bytes(&self, path: &str, query: &[(&str, &str)]) -> axum::body::Bytes {
        let r = self.client.get(self.url(path)).query(query).bearer_auth(TOKEN).send().await.unwrap();
        r.bytes().await.unwrap()
    }

    /// Posts `content` as the multipart file field `field` (as the SDKs send appends).
    pub async fn multipart(&self, path: &str, field: &str, content: &str) -> reqwest::Response {
        let boundary = "XaviaryX";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"rows.{field}\"\r\n\r\n{content}\r\n--{boundary}--\r\n"
        );
        self.client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn sql(&self, q: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url("/v0/sql")).query(&[("q", q)]).bearer_auth(TOKEN).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }
}
