//! The example project's pipes over the fixture events: rendered with parameters, chained into
//! one query, and giving the right numbers.

use arrow_cast::display::{ArrayFormatter, FormatOptions};
use engine::workspace::{Deployed, PipeOutput, Workspace, WorkspaceOptions};

fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../examples/web-analytics/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn rows(out: &PipeOutput) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut v = Vec::new();
    for b in &out.output.batches {
        let cols: Vec<ArrayFormatter> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for i in 0..b.num_rows() {
            v.push(cols.iter().map(|c| c.value(i).to_string()).collect::<Vec<_>>().join(" "));
        }
    }
    v
}

fn params(pairs: &[(&str, &str)]) -> template::Params {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

#[tokio::test]
async fn example_pipes_give_the_right_numbers() {
    let dir = std::env::temp_dir().join(format!("aviary-pipes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
        ws.deploy_datasource("events", &example("datasources/events.datasource")).unwrap();
        ws.ingest_ndjson("events", &example("fixtures/events.ndjson"), "fixture").unwrap();
        for p in ["top_pages", "kpis", "events_per_minute", "user_activity"] {
            let text = example(&format!("pipes/{p}.pipe"));
            assert_eq!(ws.deploy_pipe(p, &text).unwrap(), Deployed::Created);
            assert_eq!(ws.deploy_pipe(p, &text).unwrap(), Deployed::Unchanged);
        }
        let top = ws.query_pipe("top_pages", &params(&[("org", "acme")]), None).await.unwrap();
        assert_eq!(rows(&top), ["/ 1 1", "/docs 1 1", "/pricing 1 1"]);
        let top = ws.query_pipe("top_pages", &params(&[("limit", "1")]), None).await.unwrap();
        assert_eq!(rows(&top), ["/ 2 2"], "both orgs' home page views, limited");
        let kpis = ws.query_pipe("kpis", &params(&[("org", "acme")]), None).await.unwrap();
        assert_eq!(rows(&kpis), ["3 2 3 340.0 1668.0"]);
        let paged = ws
            .query_pipe("top_pages", &params(&[]), Some("SELECT count() AS c, sum(views) AS v FROM _"))
            .await
            .unwrap();
        assert_eq!(rows(&paged), ["3 4"]);
        let activity =
            ws.query_pipe("user_activity", &params(&[("user", "user_3"), ("limit", "1")]), None).await.unwrap();
        assert_eq!(rows(&activity), ["2026-11-01T10:00:03.500Z signup /signup 900"]);
        let err = ws.query_pipe("user_activity", &params(&[]), None).await.unwrap_err();
        assert_eq!(err.to_string(), "user is required");
        // Recent events only: the fixture is from 2026-11-01, so a window ending now is empty.
        let recent = ws.query_pipe("events_per_minute", &params(&[("minutes", "5"), ("event", "signup")]), None).await;
        assert!(rows(&recent.unwrap()).is_empty());
        assert!(matches!(ws.query_pipe("nope", &params(&[]), None).await, Err(engine::Error::Pipe(_))));
        // A pipe reading another pipe; names are shared with data sources.
        let reader = "NODE endpoint\nSQL >\n    SELECT sum(views) AS total FROM top_pages\n\nTYPE endpoint\n";
        ws.deploy_pipe("total_views", reader).unwrap();
        let total = ws.query_pipe("total_views", &params(&[("org", "globex")]), None).await.unwrap();
        assert_eq!(rows(&total), ["1"], "the inner pipe got the request's parameters");
        // Node names repeat across pipes: the reader's `scoped` and `endpoint` and the inner ones.
        let shadowing = "NODE scoped\nSQL >\n    SELECT path, views FROM top_pages WHERE views > 0\n\n\
                         NODE endpoint\nSQL >\n    SELECT count() AS paths FROM scoped\n\nTYPE endpoint\n";
        ws.deploy_pipe("shadowing", shadowing).unwrap();
        let paths = ws.query_pipe("shadowing", &params(&[("org", "acme")]), None).await.unwrap();
        assert_eq!(rows(&paths), ["3"]);
        assert!(ws.drop_pipe("shadowing").unwrap());
        assert!(ws.deploy_pipe("events", reader).unwrap_err().to_string().contains("names are unique"));
        let bad = "NODE endpoint\nSQL >\n    SELECT * FROM missing_table\n";
        assert!(ws.deploy_pipe("bad", bad).unwrap_err().to_string().contains("Resource 'missing_table' not found"));
        let mv = "NODE m\nSQL >\n    SELECT org FROM events\nTYPE materialized\nDATASOURCE events\n";
        assert!(ws.deploy_pipe("mv", mv).unwrap_err().to_string().contains("does not support yet"));
    }
    let ws = Workspace::open(&dir, WorkspaceOptions::default()).unwrap();
    assert_eq!(ws.pipes().all().len(), 5, "pipes survive a restart");
    assert!(ws.drop_pipe("total_views").unwrap());
    assert!(!ws.drop_pipe("total_views").unwrap());
    drop(ws);
    std::fs::remove_dir_all(&dir).unwrap();
}
