//! The `/v0` routes of this issue, each with its errors: health, events, SQL, data sources,
//! CORS.

use std::io::Write;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, Server, TOKEN, example};

both!(health_and_cors);
async fn health_and_cors(b: Backend) {
    let s = Server::start(b, "health").await;
    let r = s.client.get(s.url("/v0/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let pre = s
        .client
        .request(reqwest::Method::OPTIONS, s.url("/v0/events"))
        .header("Access-Control-Request-Headers", "content-encoding, x-custom")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert_eq!(pre.headers()["access-control-allow-headers"], "content-encoding, x-custom");
    assert_eq!(pre.headers()["access-control-allow-methods"], "POST, OPTIONS");
    let pre = s.client.request(reqwest::Method::OPTIONS, s.url("/v0/sql")).send().await.unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-methods"], "GET, POST, PUT, DELETE, OPTIONS");
    s.stop().await;
}

both!(events_land_and_bad_rows_go_to_quarantine);
async fn events_land_and_bad_rows_go_to_quarantine(b: Backend) {
    let s = Server::start(b, "events").await;
    let (status, body) = s.events("name=events", example("fixtures/events.ndjson")).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (StatusCode::ACCEPTED, json!({"successful_rows": 5, "quarantined_rows": 3}))
    );
    let (status, _) = s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    assert_eq!(status, StatusCode::OK);
    // gzip, declared and sniffed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(example("fixtures/events.ndjson").as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let r = s
        .client
        .post(s.url("/v0/events?name=events"))
        .bearer_auth(TOKEN)
        .header("Content-Encoding", "gzip")
        .body(gz.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (status, _) = s.events("name=events", gz).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    s.settle().await;
    let (_, v) = s.sql("SELECT count(*) AS c FROM events FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 20);
    let (_, v) = s.sql("SELECT count(*) AS c FROM events_quarantine FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 12);
    s.stop().await;
}

both!(events_errors_are_plain_text);
async fn events_errors_are_plain_text(b: Backend) {
    let s = Server::start(b, "errors").await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (s.client.post(s.url("/v0/events?name=events")).body("{}"), StatusCode::FORBIDDEN, "Invalid token\n"),
        (
            s.client.post(s.url("/v0/events?name=events")).bearer_auth("p.wrong").body("{}"),
            StatusCode::FORBIDDEN,
            "Invalid token\n",
        ),
        (
            s.client.post(s.url("/v0/events?name=events")).bearer_auth("eyJh.eyJi.c2ln").body("{}"),
            StatusCode::FORBIDDEN,
            "This API does not support JWT tokens\n",
        ),
        (
            s.client.post(s.url("/v0/events")).bearer_auth(TOKEN).body("{}"),
            StatusCode::BAD_REQUEST,
            "Missing 'name' parameter\n",
        ),
        (
            s.client.post(s.url("/v0/events?name=events&format=csv")).bearer_auth(TOKEN).body("a"),
            StatusCode::NOT_IMPLEMENTED,
            "Format 'csv' not implemented, only ndjson is supported\n",
        ),
        (
            s.client
                .post(s.url("/v0/events?name=events"))
                .bearer_auth(TOKEN)
                .header("Content-Encoding", "gzip")
                .body("not gzip"),
            StatusCode::BAD_REQUEST,
            "Invalid gzip body\n",
        ),
        (
            s.client.post(s.url("/v0/events?name=nope")).bearer_auth(TOKEN).body("not json"),
            StatusCode::NOT_FOUND,
            "Data Source 'nope' does not exist\n",
        ),
        (
            s.client.post(s.url("/v0/events?name=events")).bearer_auth(TOKEN).body(vec![b'x'; 2 * 1024 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large, the maximum is 1048576 bytes\n",
        ),
    ];
    for (req, status, body) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(r.text().await.unwrap(), body);
    }
    s.stop().await;
}

both!(unknown_data_sources_are_created_from_the_first_events);
async fn unknown_data_sources_are_created_from_the_first_events(b: Backend) {
    let s = Server::start(b, "infer").await;
    let (status, body) = s.events("name=clicks&wait=true", "{\"at\":\"2026-11-01 10:00:00\",\"n\":1,\"tags\":[\"a\"]}\n{\"at\":\"2026-11-01 10:00:01\",\"n\":2,\"tags\":[]}\n").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "{\"successful_rows\":2,\"quarantined_rows\":0}"));
    let r = s.client.get(s.url("/v0/datasources/clicks.datasource")).bearer_auth(TOKEN).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("`at` DateTime64(3) `json:$.at`"), "{text}");
    assert!(text.contains("`tags` Array(String) `json:$.tags[:]`"), "{text}");
    let (_, v) = s.sql("SELECT sum(n) AS s FROM clicks FORMAT JSON").await;
    assert_eq!(v["data"][0]["s"], 3);
    s.stop().await;
}

both!(sql_formats_and_errors);
async fn sql_formats_and_errors(b: Backend) {
    let s = Server::start(b, "sql").await;
    s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    let (status, v) = s.sql("SELECT org, timestamp, tags FROM events ORDER BY timestamp LIMIT 1 FORMAT JSON").await;
    assert_eq!(status, 200);
    assert_eq!(
        v["meta"],
        json!([{"name": "org", "type": "LowCardinality(String)"}, {"name": "timestamp", "type": s.timestamp_type()}, {"name": "tags", "type": "Array(String)"}])
    );
    assert_eq!(v["data"][0], json!({"org": "acme", "timestamp": s.ts("2026-11-01 10:00:00.000"), "tags": ["home"]}));
    assert_eq!((v["rows"].clone(), v["rows_before_limit_at_least"].clone()), (json!(1), json!(1)));
    assert!(v["statistics"]["elapsed"].is_number());
    let r = s
        .client
        .get(s.url("/v0/sql"))
        .query(&[("q", "SELECT org FROM events ORDER BY org LIMIT 2 FORMAT CSVWithNames")])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "\"org\"\n\"acme\"\n\"acme\"\n");
    let r = s
        .client
        .post(s.url("/v0/sql"))
        .bearer_auth(TOKEN)
        .body("SELECT org FROM events ORDER BY org DESC LIMIT 1 FORMAT JSONEachRow")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "{\"org\":\"globex\"}\n");
    let (status, v) = s.sql("SELECT 1 FORMAT XML").await;
    assert_eq!(status, 403);
    assert!(v["error"].as_str().unwrap().starts_with("invalid format, available ones: JSON, JSONEachRow"));
    let (status, v) = s.sql("DROP TABLE events").await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("Only SELECT queries are allowed in the SQL API"))
    );
    let (status, v) = s.sql("SELECT nope FROM events FORMAT JSON").await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().starts_with("[Error]"), "{v}");
    let r = s.client.get(s.url("/v0/sql")).query(&[("q", "SELECT 1")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid authentication token. Token is required");
    assert_eq!(v["documentation"], "https://www.tinybird.co/docs/api-reference/overview#authentication");
    let (status, v) = s.sql("% SELECT count(*) AS c FROM events WHERE org = {{String(org, 'acme')}} FORMAT JSON").await;
    assert_eq!((status, v["data"][0]["c"].clone()), (StatusCode::OK, json!(3)));
    let (status, v) = s.sql("% SELECT {{Int32(x)}} FORMAT JSON").await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().starts_with("Template Syntax Error: Required parameter is not defined"));
    s.stop().await;
}

both!(data_sources_api);
async fn data_sources_api(b: Backend) {
    let s = Server::start(b, "ds").await;
    let r = s
        .client
        .post(s.url("/v0/datasources"))
        .bearer_auth(TOKEN)
        .form(&[
            ("name", "pings"),
            ("schema", "`at` DateTime `json:$.at`, `org` String `json:$.org`"),
            ("engine_sorting_key", "org, at"),
            ("engine_partition_key", "toYYYYMM(at)"),
            ("tenant_key", "org"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["datasource"]["name"], "pings");
    assert_eq!(v["datasource"]["tenant_key"], "org");
    assert_eq!(v["datasource"]["engine"]["sorting_key"], "org, at");
    let r = s
        .client
        .post(s.url("/v0/datasources?mode=append&name=pings&format=ndjson"))
        .bearer_auth(TOKEN)
        .body("{\"at\":\"2026-11-01 10:00:00\",\"org\":\"a\"}\n{\"at\":\"bad\",\"org\":\"a\"}\n")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["quarantine_rows"].clone(), v["error"].clone()), (json!(1), json!(false)));
    let v: Value =
        s.client.get(s.url("/v0/datasources/pings")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!((v["statistics"]["row_count"].clone(), v["quarantine_rows"].clone()), (json!(1), json!(1)));
    assert_eq!(v["schema"]["columns"][0]["jsonpath"], "$.at");
    let v: Value =
        s.client.get(s.url("/v0/datasources")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v["datasources"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["events", "pings"]);
    let r = s.client.post(s.url("/v0/datasources/pings/truncate")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = s.sql("SELECT count(*) AS c FROM pings_quarantine FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 0);
    let r = s.client.get(s.url("/v0/datasources/missing")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "Data Source 'missing' does not exist");
    let r = s
        .client
        .post(s.url("/v0/datasources"))
        .bearer_auth(TOKEN)
        .form(&[("name", "x_quarantine"), ("schema", "a String")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

both!(csv_appends_multipart_raw_and_drop);
async fn csv_appends_multipart_raw_and_drop(b: Backend) {
    let s = Server::start(b, "csv").await;
    let r = s
        .client
        .post(s.url("/v0/datasources"))
        .bearer_auth(TOKEN)
        .form(&[
            ("name", "sales"),
            ("schema", "`day` Date, `org` String, `amount` Decimal(10, 2), `tags` Array(String)"),
            ("engine_sorting_key", "org, day"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Raw body (as verdin sends it, with an odd Content-Type), with a header row.
    let csv = "day,org,amount,tags\n2026-11-01,acme,10.5,\"['a','b']\"\n2026-11-02,globex,not a number,[]\n";
    let r = s
        .client
        .post(s.url("/v0/datasources?mode=append&name=sales&format=csv"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "text/html; charset=utf-8")
        .body(csv)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["quarantine_rows"], 1, "{v}");
    // Multipart, field `csv` (as @tinybirdco/sdk sends it), no header.
    let r = s.multipart("/v0/datasources?mode=append&name=sales", "csv", "2026-11-03,acme,1.25,[\"x\"]").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The classic CLI's raw route.
    let r = s
        .client
        .post(s.url("/v1/datasources/sales/append?format=csv"))
        .bearer_auth(TOKEN)
        .body("2026-11-04,acme,2,[]\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) =
        s.sql("SELECT org, sum(amount) AS total, count(*) AS n FROM sales GROUP BY org ORDER BY org FORMAT JSON").await;
    assert_eq!(v["data"], json!([{"org": "acme", "total": 13.75, "n": 3}]), "{v}");
    let (_, v) = s.sql("SELECT c__error FROM sales_quarantine FORMAT JSON").await;
    assert_eq!(v["data"][0]["c__error"], json!(["value 'not a number' cannot be parsed as Decimal(10, 2)"]));
    // Events need a JSON data source.
    let (status, body) = s.events("name=sales", "{}").await;
    assert_eq!((status, body.as_str()), (StatusCode::BAD_REQUEST, "Data Source must be of type JSON\n"));
    // Drop: gone, and a new one of the same name starts empty.
    let r = s.client.delete(s.url("/v0/datasources/sales")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = s.client.get(s.url("/v0/datasources/sales")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .client
        .post(s.url("/v0/datasources"))
        .bearer_auth(TOKEN)
        .form(&[("name", "sales"), ("schema", "`org` String")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = s.sql("SELECT count(*) AS c FROM sales FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 0);
    s.stop().await;
}

both!(replace_parquet_and_delete_by_condition);
async fn replace_parquet_and_delete_by_condition(b: Backend) {
    let s = Server::start(b, "replace").await;
    s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    // Export as Parquet through the SQL API, then load it into a copy of the data source.
    let parquet = s.bytes("/v0/sql", &[("q", "SELECT * FROM events FORMAT Parquet")]).await;
    assert_eq!(&parquet[..4], b"PAR1");
    let r = s
        .client
        .post(s.url("/v1/datasources/events/append?format=parquet"))
        .bearer_auth(TOKEN)
        .body(parquet.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (_, v) = s.sql("SELECT count(*) AS c FROM events FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 10);
    // Replace: the contents become exactly the body.
    let r = s
        .client
        .post(s.url("/v0/datasources?mode=replace&name=events&format=ndjson"))
        .bearer_auth(TOKEN)
        .body(example("fixtures/events.ndjson").lines().take(2).collect::<Vec<_>>().join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = s.sql("SELECT count(*) AS c FROM events FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 2);
    // Delete by condition: a dry run counts, then a job deletes.
    s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    let r = s
        .client
        .post(s.url("/v0/datasources/events/delete"))
        .bearer_auth(TOKEN)
        .form(&[("delete_condition", "org = 'globex'"), ("dry_run", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"rows_to_be_deleted": 2}));
    let r = s
        .client
        .post(s.url("/v0/datasources/events/delete"))
        .bearer_auth(TOKEN)
        .form(&[("delete_condition", "org = 'globex'")])
        .send()
        .await
        .unwrap();
    let job: Value = r.json().await.unwrap();
    assert_eq!((job["status"].clone(), job["rows_affected"].clone()), (json!("done"), json!(2)));
    let r = s
        .client
        .get(s.url(&format!("/v0/jobs/{}", job["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["delete_condition"], "org = 'globex'");
    let (_, v) = s.sql("SELECT count(*) AS c FROM events WHERE org = 'globex' FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 0);
    let (_, v) = s.sql("SELECT count(*) AS c FROM events FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 5);
    // The spec's messages.
    let cases = [
        (
            vec![("mode", "append"), ("name", "events"), ("schema", "a String")],
            400,
            "Schema creation is only compatible with mode=create",
        ),
        (
            vec![("mode", "bogus"), ("name", "events")],
            400,
            "Invalid mode \"bogus\", valid modes are create, append, replace",
        ),
        (vec![("schema", "a String")], 400, "Data Source name must be set when creating with schema"),
        (
            vec![("name", "events"), ("schema", "a String")],
            400,
            "Data Source \"events\" already exists, use mode=append",
        ),
        (
            vec![("mode", "replace"), ("name", "nope"), ("format", "csv")],
            400,
            "Data Source \"nope\" does not exist, can not replace a non existing Data Source",
        ),
        (
            vec![("mode", "append"), ("name", "events"), ("format", "csv")],
            400,
            "Url or body payload should be sent. Are you doing a POST without data?",
        ),
    ];
    for (form, status, message) in cases {
        let r = s.client.post(s.url("/v0/datasources")).bearer_auth(TOKEN).form(&form).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{form:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], message, "{form:?}");
    }
    let r = s.client.post(s.url("/v0/datasources/events/delete")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "The delete_condition='delete_statement' is mandatory");
    let r = s.client.get(s.url("/v0/jobs/nope")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"].clone()),
        (404, json!("Job with id \"nope\" not found"))
    );
    s.stop().await;
}

both!(events_api_rate_limit_answers_429_with_headers);
async fn events_api_rate_limit_answers_429_with_headers(b: Backend) {
    let s = Server::start_with(b, "ratelimit", |c| c.events_rps = 3).await;
    let line = example("fixtures/events.ndjson").lines().next().unwrap().to_string();
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let r =
            s.client.post(s.url("/v0/events?name=events")).bearer_auth(TOKEN).body(line.clone()).send().await.unwrap();
        statuses.push(r.status());
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert!(r.headers().contains_key("x-ratelimit-remaining") && r.headers().contains_key("x-ratelimit-reset"));
        last = Some(r);
    }
    // A burst of 3 passes; the 4th within the same second is refused, and nothing of it is stored.
    assert_eq!(statuses[..3], [StatusCode::ACCEPTED; 3]);
    let refused = last.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(refused.text().await.unwrap(), "Too many requests\n");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = s.events("name=events&wait=true", line).await;
    assert_eq!(status, StatusCode::OK, "the bucket refills");
    let (_, v) = s.sql("SELECT count(*) AS c FROM events FORMAT JSON").await;
    assert_eq!(v["data"][0]["c"], 4);
}

/// Embedded only: its buffer fills until a flush. The ClickHouse spool's budget is tested with
/// ClickHouse down (`clickhouse::a_restart_loses_no_acknowledged_row`).
#[tokio::test]
async fn a_full_buffer_answers_503_and_ingests_nothing() {
    let b = Backend::Embedded;
    // A budget smaller than one batch and no flush for a minute: the first write fills it.
    let s = Server::start_with(b, "backpressure", |c| {
        c.max_buffer_bytes = 1;
        c.flush_interval = Duration::from_secs(60);
    })
    .await;
    let line = example("fixtures/events.ndjson").lines().next().unwrap().to_string();
    let (status, _) = s.events("name=events&wait=true", line.clone()).await;
    assert_eq!(status, 200);
    let (status, body) = s.events("name=events&wait=true", line.clone()).await;
    assert_eq!(status, 503);
    assert_eq!(body.trim_end(), "Service temporarily unavailable, no data ingested, please retry again");
    let r = s.multipart("/v0/datasources?name=events&mode=append&format=ndjson", "ndjson", &line).await;
    assert_eq!(r.status(), 503);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("no data ingested"));
    let (_, rows) = s.sql("SELECT count() AS c FROM events FORMAT JSON").await;
    assert_eq!(rows["data"][0]["c"], 1, "only the accepted write is stored");
    s.stop().await;
}

both!(alter_adds_columns_and_refuses_incompatible_changes);
async fn alter_adds_columns_and_refuses_incompatible_changes(b: Backend) {
    let s = Server::start(b, "alter").await;
    let (status, _) = s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    assert_eq!(status, 200);
    let schema = "`timestamp` DateTime64(3) `json:$.timestamp`, `org` LowCardinality(String) `json:$.org`, \
        `user` String `json:$.user`, `event` LowCardinality(String) `json:$.event`, `path` String `json:$.path`, \
        `country` LowCardinality(String) `json:$.country`, `duration_ms` UInt32 `json:$.duration_ms`, \
        `tags` Array(String) `json:$.tags[:]`, `plan` String `json:$.plan` DEFAULT 'free'";
    let alter = |form: Vec<(&'static str, String)>| {
        let req = s.client.post(s.url("/v0/datasources/events/alter")).bearer_auth(TOKEN).form(&form);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = alter(vec![("schema", schema.to_string()), ("dry", "true".into())]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["operations"], json!(["ADD COLUMN `plan` String DEFAULT 'free' AFTER `tags`"]));
    let (status, _) = s.sql("SELECT plan FROM events").await;
    assert_eq!(status, 400, "a dry run changes nothing");
    let (status, v) = alter(vec![("schema", schema.to_string()), ("ttl", "timestamp + INTERVAL 30 DAY".into())]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["operations"],
        json!(["ADD COLUMN `plan` String DEFAULT 'free' AFTER `tags`", "MODIFY TTL timestamp + INTERVAL 30 DAY"])
    );
    assert!(v["datasource"]["schema"]["columns"].as_array().unwrap().iter().any(|c| c["name"] == "plan"), "{v}");
    let (_, rows) = s.sql("SELECT count() AS c FROM events WHERE plan = 'free' FORMAT JSON").await;
    assert_eq!(rows["data"][0]["c"], 5, "existing rows read the default");
    let r = s.client.get(s.url("/v0/datasources/events.datasource")).bearer_auth(TOKEN).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("`plan` String `json:$.plan` DEFAULT 'free'")
            && text.contains("ENGINE_TTL \"timestamp + INTERVAL 30 DAY\""),
        "{text}"
    );
    let narrowed = schema.replace("`duration_ms` UInt32", "`duration_ms` UInt16");
    let (status, v) = alter(vec![("schema", narrowed)]).await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("changing the type of column 'duration_ms'"), "{v}");
    let (status, _) = alter(vec![("schema", schema.to_string())]).await;
    assert_eq!(status, 200, "the same schema again changes nothing");
    let r = s.client.post(s.url("/v0/datasources/nope/alter")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

both!(replace_condition_replaces_only_the_matching_rows);
async fn replace_condition_replaces_only_the_matching_rows(b: Backend) {
    let s = Server::start(b, "replace-condition").await;
    let (status, _) = s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    assert_eq!(status, 200);
    let (_, before) = s.sql("SELECT org, count() AS c FROM events GROUP BY org ORDER BY org FORMAT JSON").await;
    assert_eq!(before["data"], json!([{"org": "acme", "c": 3}, {"org": "globex", "c": 2}]));
    let line = |org: &str, user: &str| {
        format!(
            r#"{{"timestamp":"2026-11-02 10:00:00.000","org":"{org}","user":"{user}","event":"page_view","path":"/","country":"ES","duration_ms":1,"tags":[]}}"#
        )
    };
    let body = format!("{}\n{}\n", line("acme", "fresh"), line("globex", "ignored"));
    let r = s
        .client
        .post(s.url("/v1/datasources/events/replace"))
        .query(&[("format", "ndjson"), ("replace_condition", "org = 'acme'")])
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (_, after) = s.sql("SELECT org, user FROM events ORDER BY org, user FORMAT JSON").await;
    let rows: Vec<(String, String)> = after["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["org"].as_str().unwrap().to_string(), r["user"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        rows.iter().filter(|(o, _)| o == "acme").collect::<Vec<_>>(),
        [&("acme".to_string(), "fresh".to_string())]
    );
    assert_eq!(rows.iter().filter(|(o, _)| o == "globex").count(), 2, "other rows kept, non-matching new rows dropped");
    assert!(!rows.iter().any(|(_, u)| u == "ignored"));
    let r = s
        .client
        .post(s.url("/v1/datasources/events/replace"))
        .query(&[("format", "ndjson"), ("replace_condition", "no_such_column = 1")])
        .bearer_auth(TOKEN)
        .body(line("acme", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, unchanged) = s.sql("SELECT count() AS c FROM events FORMAT JSON").await;
    assert_eq!(unchanged["data"][0]["c"], 3, "a bad condition changes nothing");
    s.stop().await;
}

both!(rename_moves_rows_quarantine_and_definition);
async fn rename_moves_rows_quarantine_and_definition(b: Backend) {
    let s = Server::start(b, "rename").await;
    let (status, _) = s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    assert_eq!(status, 200);
    let put = |from: &str, to: &str| {
        let req = s.client.put(s.url(&format!("/v0/datasources/{from}"))).bearer_auth(TOKEN).form(&[("name", to)]);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, v) = put("events", "page_events").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "page_events");
    assert_eq!(v["statistics"]["row_count"], 5);
    let (_, rows) = s.sql("SELECT count() AS c FROM page_events FORMAT JSON").await;
    assert_eq!(rows["data"][0]["c"], 5);
    let (_, rows) = s.sql("SELECT count() AS c FROM page_events_quarantine FORMAT JSON").await;
    assert_eq!(rows["data"][0]["c"], 3);
    let r = s.client.get(s.url("/v0/datasources/events")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = s.client.get(s.url("/v0/datasources/page_events.datasource")).bearer_auth(TOKEN).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("`org` LowCardinality(String)"));
    let (status, body) = s.events("name=page_events&wait=true", example("fixtures/events.ndjson")).await;
    assert_eq!(status, 200, "{body}");
    // The old name is free again: the next events create a new data source there.
    let (status, _) = s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    assert_eq!(status, 200);
    let (status, v) = put("page_events", "events").await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "Data Source \"events\" already exists");
    let (status, _) = put("page_events", "bad name!").await;
    assert_eq!(status, 400);
    let (status, _) = put("nope", "other").await;
    assert_eq!(status, 404);
    s.stop().await;
}

both!(sql_speaks_clickhouse_and_warns_about_ignored_settings);
async fn sql_speaks_clickhouse_and_warns_about_ignored_settings(b: Backend) {
    let s = Server::start(b, "sql-clickhouse").await;
    s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    let q = "SELECT toStartOfMinute(timestamp) AS t, count() AS c, uniq(user) AS u, countIf(event = 'signup') AS signups \
             FROM events GROUP BY t ORDER BY t SETTINGS max_threads = 1, join_use_nulls = 1 FORMAT JSON";
    let r = s.client.get(s.url("/v0/sql")).query(&[("q", q)]).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let warning = r.headers()["x-tb-warning"].to_str().unwrap().to_string();
    assert_eq!(warning, r#"["The setting 'join_use_nulls = 1' is not supported and was ignored"]"#);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"], json!([{"t": "2026-11-01 10:00:00", "c": 5, "u": 3, "signups": 1}]));
    let (status, v) = s.sql("SELECT count() FROM events FORMAT JSON").await;
    assert_eq!(status, 200);
    assert_eq!(v["meta"][0]["name"], "count()", "ClickHouse's column name");
    let (status, v) = s.sql("SELECT nonsenseFn(org) FROM events FORMAT JSON").await;
    assert_eq!(status, 400);
    // The backend's own words: "Function nonsenseFn is not supported" (embedded), "Unknown
    // function nonsenseFn" (ClickHouse).
    let error = v["error"].as_str().unwrap();
    assert!(error.starts_with("[Error]") && error.contains("nonsenseFn"), "{v}");
    s.stop().await;
}

async fn with_pipes(b: Backend, name: &str) -> Server {
    let s = Server::start(b, name).await;
    s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    for p in ["top_pages", "kpis", "user_activity"] {
        let r = s.client.post(s.url("/v0/pipes")).bearer_auth(TOKEN).json(&pipe_body(p)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    s
}

/// The classic-push JSON of an example pipe.
fn pipe_body(name: &str) -> Value {
    let text = example(&format!("pipes/{name}.pipe"));
    let mut nodes = Vec::new();
    let mut current: Option<(String, String, Option<String>)> = None;
    let mut in_sql = false;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("NODE ") {
            if let Some(node) = current.take() {
                nodes.push(node);
            }
            current = Some((n.trim().to_string(), String::new(), None));
            in_sql = false;
        } else if line.starts_with("SQL >") {
            in_sql = true;
        } else if let Some(t) = line.strip_prefix("TYPE ") {
            in_sql = false;
            if let Some(c) = current.as_mut() {
                c.2 = Some(t.trim().to_string());
            }
        } else if in_sql && let Some(c) = current.as_mut() {
            c.1.push_str(line.strip_prefix("    ").unwrap_or(line));
            c.1.push('\n');
        }
    }
    nodes.extend(current);
    json!({"name": name, "nodes": nodes.into_iter().map(|(n, sql, t)| json!({"name": n, "sql": sql.trim(), "type": t})).collect::<Vec<_>>()})
}

both!(pipe_endpoints_in_every_format_with_their_errors);
async fn pipe_endpoints_in_every_format_with_their_errors(b: Backend) {
    let s = with_pipes(b, "endpoints").await;
    let get = |path: &str| s.client.get(s.url(path)).bearer_auth(TOKEN).send();
    let r = get("/v0/pipes/top_pages.json?org=acme&limit=2").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["meta"],
        json!([{"name": "path", "type": "String"}, {"name": "views", "type": "UInt64"}, {"name": "visitors", "type": "UInt64"}])
    );
    assert_eq!(
        v["data"],
        json!([{"path": "/", "views": 1, "visitors": 1}, {"path": "/docs", "views": 1, "visitors": 1}])
    );
    assert_eq!(v["rows"], 2);
    assert!(v["rows_before_limit_at_least"].is_number());
    assert!(v["statistics"]["rows_read"].is_number());
    let r = get("/v0/pipes/top_pages.csv?org=globex").await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "\"path\",\"views\",\"visitors\"\n\"/\",1,1\n");
    let r = get("/v0/pipes/top_pages.ndjson?limit=1").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "{\"path\":\"/\",\"views\":2,\"visitors\":2}\n");
    let r = get("/v0/pipes/kpis.parquet?org=acme").await.unwrap();
    assert_eq!(&r.bytes().await.unwrap()[..4], b"PAR1");
    // POST: form and JSON bodies, JSON wins over the query string.
    let r = s
        .client
        .post(s.url("/v0/pipes/top_pages.json?org=globex"))
        .bearer_auth(TOKEN)
        .json(&json!({"org": "acme", "limit": 1}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"], json!([{"path": "/", "views": 1, "visitors": 1}]));
    let r =
        s.client.post(s.url("/v0/pipes/kpis.json")).bearer_auth(TOKEN).form(&[("org", "globex")]).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["events"], 2);
    // q over the endpoint's result.
    let r = get("/v0/pipes/top_pages.json?q=SELECT%20count()%20AS%20c%20FROM%20_").await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"], json!([{"c": 3}]));
    for (path, status, message) in [
        (
            "/v0/pipes/top_pages.xml",
            400,
            "Format 'xml' not supported, it must be one of csv, json, ndjson, parquet, prometheus",
        ),
        ("/v0/pipes/nope.json", 404, "The pipe 'nope' does not exist"),
        ("/v0/pipes/user_activity.json", 400, "user is required"),
        ("/v0/pipes/top_pages.json?q=%25SELECT%201", 400, "'q' parameter doesn't support templates"),
        (
            "/v0/pipes/top_pages.json?q=SELECT%20*%20FROM%20_%20FORMAT%20CSV",
            400,
            "Use the URL extension to choose the output format",
        ),
        (
            "/v0/pipes/top_pages.json?output_format_json_quote_64bit_integers=2",
            400,
            "Invalid value '2' for 'output_format_json_quote_64bit_integers', it must be 0 or 1",
        ),
        ("/v0/pipes/top_pages.json?limit=abc", 400, ""),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains(message), "{path}: {v}");
    }
    let r = s.client.get(s.url("/v0/pipes/top_pages.json")).send().await.unwrap();
    assert_eq!(r.status(), 403, "no token");
    s.stop().await;
}

both!(pipes_are_listed_described_and_dropped);
async fn pipes_are_listed_described_and_dropped(b: Backend) {
    let s = with_pipes(b, "pipes-api").await;
    let get = |path: &str| s.client.get(s.url(path)).bearer_auth(TOKEN).send();
    let v: Value = get("/v0/pipes").await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v["pipes"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kpis", "top_pages", "user_activity"]);
    let v: Value = get("/v0/pipes/top_pages").await.unwrap().json().await.unwrap();
    assert_eq!(v["type"], "endpoint");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(v["nodes"][1]["dependencies"], json!(["scoped"]));
    let params: Vec<&str> = v["params"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["org", "user", "date_from", "date_to", "limit"]);
    let text = get("/v0/pipes/top_pages.pipe").await.unwrap().text().await.unwrap();
    assert!(text.contains("NODE scoped"), "{text}");
    // A one-node pipe from query parameters; names are shared with data sources.
    let r = s
        .client
        .post(s.url("/v0/pipes?name=n_events&sql=SELECT%20count()%20AS%20c%20FROM%20events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = s.client.post(s.url("/v0/pipes?name=events&sql=SELECT%201")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = s.client.post(s.url("/v0/pipes?name=kpis&sql=SELECT%201")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 409, "exists without force=true");
    let r = get("/v0/pipes/n_events.json").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "The pipe 'n_events' does not have an endpoint yet");
    let r = s.client.delete(s.url("/v0/pipes/n_events")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get("/v0/pipes/n_events").await.unwrap().status(), 404);
    s.stop().await;
}

both!(query_limits_answer_408_and_400, multi_thread);
async fn query_limits_answer_408_and_400(b: Backend) {
    let s = Server::start_with(b, "limits", |c| c.query_timeout = Duration::from_nanos(1)).await;
    s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    let (status, v) =
        s.sql("SELECT count() AS c FROM events a, events b, events c, events d, events e, events f FORMAT JSON").await;
    assert_eq!(status, 408, "{v}");
    assert!(v["error"].as_str().unwrap().ends_with("(TIMEOUT_EXCEEDED)"), "{v}");
    s.stop().await;
    let s = Server::start_with(b, "result-limit", |c| c.max_result_bytes = 64).await;
    s.events("name=events&wait=true", example("fixtures/events.ndjson")).await;
    let (status, v) = s.sql("SELECT * FROM events FORMAT JSON").await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "[Error] Result is larger than 64 bytes, add a LIMIT or filter (TOO_MANY_BYTES)");
    let (status, _) = s.sql("SELECT 1 AS x FORMAT CSV").await;
    assert_eq!(status, 200, "small results pass");
    s.stop().await;
}

both!(every_endpoint_and_sql_request_lands_in_the_usage_log);
async fn every_endpoint_and_sql_request_lands_in_the_usage_log(b: Backend) {
    let s = with_pipes(b, "usage").await;
    let get = |path: &str| s.client.get(s.url(path)).bearer_auth(TOKEN).send();
    assert_eq!(get("/v0/pipes/top_pages.json?org=acme&limit=2").await.unwrap().status(), 200);
    assert_eq!(get("/v0/pipes/user_activity.json").await.unwrap().status(), 400);
    assert_eq!(get("/v0/pipes/top_pages.pipe").await.unwrap().status(), 200, "not an endpoint call: not logged");
    let (status, _) = s.sql("SELECT 1 AS one FORMAT JSON").await;
    assert_eq!(status, 200);
    let q = "SELECT pipe_name, status_code, error, result_rows, read_rows, method, url FROM tinybird.pipe_stats_rt \
             WHERE pipe_name != 'query_api' OR result_rows = 1 ORDER BY start_datetime, pipe_name FORMAT JSON";
    let mut rows = Value::Null;
    for _ in 0..50 {
        let (status, v) = s.sql(q).await;
        assert_eq!(status, 200, "{v}");
        if v["rows"].as_u64() >= Some(3) {
            rows = v["data"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = rows.as_array().expect("three usage rows within 5 s").clone();
    let by_pipe = |name: &str| rows.iter().find(|r| r["pipe_name"] == name).cloned().unwrap();
    let top = by_pipe("top_pages");
    assert_eq!(
        (top["status_code"].clone(), top["error"].clone(), top["result_rows"].clone()),
        (json!(200), json!(0), json!(2))
    );
    assert!(top["read_rows"].as_u64().unwrap() >= 5);
    assert_eq!(top["method"], "GET");
    assert_eq!(top["url"], "/v0/pipes/top_pages.json?org=acme&limit=2");
    let failed = by_pipe("user_activity");
    assert_eq!((failed["status_code"].clone(), failed["error"].clone()), (json!(400), json!(1)));
    assert_eq!(by_pipe("query_api")["result_rows"], 1);
    let r = s.client.get(s.url("/v0/pipes/top_pages.json?token=p.test-admin-token")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut redacted = Value::Null;
    for _ in 0..50 {
        let (_, v) = s.sql("SELECT url FROM tinybird.pipe_stats_rt WHERE url LIKE '%token=%' FORMAT JSON").await;
        if v["rows"] == 1 {
            redacted = v["data"][0]["url"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(redacted, "/v0/pipes/top_pages.json?token=REDACTED", "tokens are never logged");
    s.stop().await;
}

both!(metrics_count_requests_rows_and_the_wal);
async fn metrics_count_requests_rows_and_the_wal(b: Backend) {
    let s = with_pipes(b, "metrics").await;
    s.client.get(s.url("/v0/pipes/top_pages.json?org=acme")).bearer_auth(TOKEN).send().await.unwrap();
    s.client.get(s.url("/v0/pipes/nope.json")).bearer_auth(TOKEN).send().await.unwrap();
    let r = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 403, "operators' metrics need the admin token");
    let r = s.client.get(s.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = r.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    assert_eq!(value("aviary_http_requests_total{method=\"GET\",route=\"/v0/pipes/{file}\",status=\"200\"}"), 1.0);
    assert_eq!(value("aviary_http_requests_total{method=\"GET\",route=\"/v0/pipes/{file}\",status=\"404\"}"), 1.0);
    assert_eq!(value("aviary_rows_ingested_total{datasource=\"events\"}"), 5.0);
    assert_eq!(value("aviary_rows_quarantined_total{datasource=\"events\"}"), 3.0);
    assert!(value("aviary_wal_syncs_total") >= 1.0);
    assert_eq!(value("aviary_query_duration_seconds_count{api=\"pipe\"}"), 2.0);
    assert!(
        text.contains("aviary_buffered_bytes")
            && text.contains("aviary_parts")
            && text.contains("aviary_compactions_total")
    );
    s.stop().await;
}

both!(sql_reads_pipes_as_tables_and_pipeline_nodes);
async fn sql_reads_pipes_as_tables_and_pipeline_nodes(b: Backend) {
    let s = with_pipes(b, "sql-pipes").await;
    let get = |q: &str, extra: &[(&str, &str)]| {
        let mut args = vec![("q", q.to_string())];
        args.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        s.client.get(s.url("/v0/sql")).query(&args).bearer_auth(TOKEN).send()
    };
    // A pipe as a table, rendered with the request's parameters.
    let v: Value = get("SELECT sum(views) AS v FROM top_pages FORMAT JSON", &[("org", "acme")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"], json!([{"v": 3}]));
    // pipeline=: its nodes and `_` are tables.
    let v: Value = get("SELECT count() AS c FROM scoped FORMAT JSON", &[("pipeline", "top_pages"), ("org", "globex")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"], json!([{"c": 1}]), "globex page views in the scoped node: {v}");
    let v: Value = get("SELECT path FROM _ ORDER BY path FORMAT JSON", &[("pipeline", "top_pages")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"], json!([{"path": "/"}, {"path": "/docs"}, {"path": "/pricing"}]));
    let r = get("SELECT 1 FROM _ FORMAT JSON", &[("pipeline", "nope")]).await.unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

both!(prometheus_and_output_flags);
async fn prometheus_and_output_flags(b: Backend) {
    let s = with_pipes(b, "prometheus").await;
    let metric = json!({"name": "views_metric", "nodes": [{"name": "endpoint", "type": "endpoint",
        "sql": "SELECT 'page_views' AS name, count() AS value, 'Page views, all orgs' AS help, 'counter' AS type FROM events"}]});
    let r = s.client.post(s.url("/v0/pipes")).bearer_auth(TOKEN).json(&metric).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = s.client.get(s.url("/v0/pipes/views_metric.prometheus")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(
        r.text().await.unwrap(),
        "# HELP page_views Page views, all orgs\n# TYPE page_views counter\npage_views 5\n"
    );
    let r = s.client.get(s.url("/v0/pipes/top_pages.prometheus")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 400, "no name/value columns");
    let v: Value = s
        .client
        .get(s.url("/v0/pipes/top_pages.json?limit=1&output_format_json_quote_64bit_integers=1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"], json!([{"path": "/", "views": "2", "visitors": "2"}]), "UInt64 quoted on request");
    for (flag, expected) in [("0", arrow_schema::DataType::Binary), ("1", arrow_schema::DataType::Utf8)] {
        let bytes = s.bytes("/v0/pipes/top_pages.parquet", &[("output_format_parquet_string_as_string", flag)]).await;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        assert_eq!(reader.schema().field(0).data_type(), &expected, "string_as_string={flag}");
    }
    s.stop().await;
}

both!(pipes_are_updated_published_and_unpublished);
async fn pipes_are_updated_published_and_unpublished(b: Backend) {
    let s = with_pipes(b, "publish").await;
    let call = |method: reqwest::Method, path: &str| s.client.request(method, s.url(path)).bearer_auth(TOKEN).send();
    // Unpublish top_pages' endpoint: the endpoint call is 404, the pipe stays.
    let r = call(reqwest::Method::DELETE, "/v0/pipes/top_pages/nodes/endpoint/endpoint").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = call(reqwest::Method::GET, "/v0/pipes/top_pages.json").await.unwrap();
    assert_eq!(r.status(), 404);
    // Publish the first node instead: its rows are served.
    let r = call(reqwest::Method::POST, "/v0/pipes/top_pages/nodes/scoped/endpoint").await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "endpoint");
    assert_eq!(v["endpoint"], "top_pages_scoped");
    let v: Value =
        call(reqwest::Method::GET, "/v0/pipes/top_pages.json?org=globex").await.unwrap().json().await.unwrap();
    assert_eq!(v["rows"], 1, "the scoped node: globex's one page view");
    let text = call(reqwest::Method::GET, "/v0/pipes/top_pages.pipe").await.unwrap().text().await.unwrap();
    assert_eq!(text.matches("TYPE endpoint").count(), 1, "one endpoint per pipe: {text}");
    let r = call(reqwest::Method::POST, "/v0/pipes/top_pages/nodes/missing/endpoint").await.unwrap();
    assert_eq!(r.status(), 404);
    // PUT replaces the nodes.
    let r = s
        .client
        .put(s.url("/v0/pipes/kpis"))
        .bearer_auth(TOKEN)
        .json(&json!({"description": "Just a count", "nodes": [{"name": "endpoint", "type": "endpoint", "sql": "SELECT count() AS c FROM events"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = call(reqwest::Method::GET, "/v0/pipes/kpis.json").await.unwrap().json().await.unwrap();
    assert_eq!(v["data"], json!([{"c": 5}]));
    let v: Value = call(reqwest::Method::GET, "/v0/pipes/kpis").await.unwrap().json().await.unwrap();
    assert_eq!(v["description"], "Just a count");
    s.stop().await;
}
