//! The public API: parse once, render many; options, settings, limits, errors' HTTP shape,
//! parameter introspection.

use serde_json::json;
use template::{Error, Limits, Params, RenderOptions, Template, strip_activation};

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

fn render(src: &str, p: &[(&str, &str)]) -> Result<String, Error> {
    Template::parse(src)?.render(&params(p)).map(|r| r.sql)
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn activation_strips_exactly_one_percent() {
    assert_eq!(strip_activation("%\nSELECT 1"), Some("\nSELECT 1"));
    assert_eq!(strip_activation("  \n %% x"), Some("% x"));
    assert_eq!(strip_activation("SELECT {{x}}"), None);
}

#[test]
fn one_parse_serves_many_renders() {
    let t = Template::parse("SELECT {{String(org)}} LIMIT {{Int32(limit, 10)}}").unwrap();
    assert_eq!(t.render(&params(&[("org", "a")])).unwrap().sql, "SELECT 'a' LIMIT toInt32('10')");
    assert_eq!(t.render(&params(&[("org", "b'"), ("limit", "5")])).unwrap().sql, "SELECT 'b\\'' LIMIT toInt32('5')");
    fn shareable<T: Send + Sync>(_: &T) {}
    shareable(&t);
}

#[test]
fn json_parameters_keep_their_types() {
    let body = json!({"n": 5, "f": 1.5, "b": true, "l": ["x", "y"], "o": {"k": 1}, "z": null});
    let p = Params::from_json_object(body.as_object().unwrap());
    let t = Template::parse("{{n}} {{f}} {{b}} {{l}} {{JSON(o)['k']}} {{defined(z)}} {{Int32(n)}}").unwrap();
    assert_eq!(t.render(&p).unwrap().sql, "5 1.5 True ['x', 'y'] 1 False toInt32('5')");
}

#[test]
fn errors_have_the_http_shape_of_the_spec() {
    let e = render("{{Int32(tenant_id)}}", &[]).unwrap_err();
    assert_eq!(e.status(), 400);
    assert_eq!(
        e.body("https://www.tinybird.co/docs"),
        json!({
            "error": "Template Syntax Error: Required parameter is not defined. Check the parameters tenant_id. Please provide a value or set a default value in the pipe code.",
            "documentation": "https://www.tinybird.co/docs/cli/advanced-templates.html"
        })
    );
    let e = render("{{ error('user is required', 400) }}", &[]).unwrap_err();
    assert_eq!((e.status(), e.body("x")), (400, json!({"error": "user is required"})));
    let e = render(
        "{% if not defined(tenant_id) %}{{ custom_error({'error': 'tenant_id is required', 'code': 'MISSING_TENANT'}, 422) }}{% end %}",
        &[],
    )
    .unwrap_err();
    assert_eq!((e.status(), e.body("x")), (422, json!({"error": "tenant_id is required", "code": "MISSING_TENANT"})));
    // Parse errors carry no documentation link.
    assert_eq!(
        render("{{ x", &[]).unwrap_err().body("x"),
        json!({"error": "Template Syntax Error: Missing end expression }} at <string>:1"})
    );
}

#[test]
fn custom_error_is_never_caught_by_try() {
    let e = render("{% try %}{{custom_error({'e': 1}, 409)}}{% except %}caught{% end %}", &[]).unwrap_err();
    assert_eq!(e.status(), 409);
    assert_eq!(render("{% try %}A{{Int32(x)}}{% except %}fallback{% end %}", &[("x", "no")]).unwrap(), "Afallback");
}

#[test]
fn limits_bound_every_render() {
    let small = Limits {
        max_source_bytes: 100,
        max_nesting: 3,
        max_loop_iterations: 50,
        max_output_bytes: 64,
        max_range: 10,
        max_repeat_bytes: 16,
        max_work_bytes: 1000,
    };
    let fail = |src: &str| match Template::parse_with(src, small.clone()).and_then(|t| t.render(&Params::new())) {
        Err(e) => message(e),
        Ok(r) => panic!("{src} rendered {}", r.sql),
    };
    assert_eq!(fail(&"x".repeat(101)), "Template Syntax Error: template is larger than 100 bytes");
    assert_eq!(
        fail("{% if 1 %}{% if 1 %}{% if 1 %}{% if 1 %}{% end %}{% end %}{% end %}{% end %}"),
        "Template Syntax Error: template nesting deeper than 3 levels"
    );
    assert_eq!(fail("{{ [[[[[1]]]]] }}"), "Template Syntax Error: template nesting deeper than 3 levels");
    assert_eq!(
        fail("{% set i = 0 %}{% while 1 %}{% set i = i + 1 %}{% end %}"),
        "Template Syntax Error: template loops exceeded 50 iterations"
    );
    assert_eq!(fail("{% for i in range(11) %}{% end %}"), "Template Syntax Error: range() is limited to 10 elements");
    assert_eq!(fail("{{ 'abcdef' * 3 }}"), "Template Syntax Error: string repetition result is larger than 16 bytes");
    assert_eq!(
        fail("{% for i in range(10) %}0123456789{% end %}"),
        "Template Syntax Error: rendered SQL is larger than 64 bytes"
    );
    assert_eq!(
        fail("{% for i in range(10) %}{% set s = [i] * 10 %}{% end %}"),
        "Template Syntax Error: template work exceeded 1000 bytes"
    );
    assert_eq!(
        fail("{% set l = [1, 2] * 6 %}"),
        "Template Syntax Error: list repetition result is larger than 10 elements"
    );
    // A limit is not a template error a `try` may swallow.
    assert_eq!(
        fail("{% try %}{% while 1 %}x{% end %}{% except %}ok{% end %}"),
        "Template Syntax Error: template loops exceeded 50 iterations"
    );
}

#[test]
fn default_limits_are_the_spec_values() {
    let l = Limits::default();
    assert_eq!(
        (
            l.max_source_bytes,
            l.max_nesting,
            l.max_loop_iterations,
            l.max_output_bytes,
            l.max_range,
            l.max_repeat_bytes,
            l.max_work_bytes
        ),
        (1 << 20, 64, 100_000, 8 << 20, 10_000, 1 << 20, 256 << 20)
    );
    let e = render("{% set i = 0 %}{% while 1 %}{% set i = i + 1 %}{% end %}", &[]).unwrap_err();
    assert_eq!(message(e), "Template Syntax Error: template loops exceeded 100000 iterations");
    // Large values built over and over are bounded by the work budget, not by patience.
    let e = render("{% for i in range(1000) %}{% set s = 'a' * 1000000 %}{% end %}", &[]).unwrap_err();
    assert_eq!(message(e), "Template Syntax Error: template work exceeded 268435456 bytes");
    let e = render("{% set s = 'a' * 1000000 %}{{ ','.join([s] * 10000) }}", &[]).unwrap_err();
    assert_eq!(message(e), "Template Syntax Error: rendered SQL is larger than 8388608 bytes");
}

#[test]
fn hints_record_query_settings() {
    let t = Template::parse(
        "{{max_threads(4)}}{{cache_ttl('5m')}}{{backend_hint('r1')}}{{activate('analyzer')}}{{disable('analyzer')}}SELECT 1",
    )
    .unwrap();
    let r = t.render(&Params::new()).unwrap();
    assert_eq!(
        r.sql,
        "-- max_threads 4\n-- cache_ttl 5m\n-- backend_hint r1\n-- activate analyzer\n-- disable analyzer\nSELECT 1"
    );
    assert_eq!(r.settings.max_threads, Some(4));
    assert_eq!(r.settings.cache_ttl.as_deref(), Some("5m"));
    assert_eq!(r.settings.backend_hint.as_deref(), Some("r1"));
    assert_eq!(r.settings.activate, vec!["analyzer".to_string()]);
    assert_eq!(r.settings.disable.as_deref(), Some("analyzer"));
    // A hint argument from the request can never end the comment it is echoed into.
    let r =
        Template::parse("{{backend_hint(h)}}SELECT 1").unwrap().render(&params(&[("h", "x\nDROP TABLE t")])).unwrap();
    assert_eq!(r.sql, "-- backend_hint x DROP TABLE t\nSELECT 1");
}

#[test]
fn secrets_become_query_parameters() {
    let t = Template::parse("SELECT {{tb_secret('api_key')}}, {{tb_var('missing', 'dflt')}}").unwrap();
    let mut options = RenderOptions::default();
    options.secrets.insert("api_key".to_string());
    let r = t.render_with(&params(&[("api_key", "from-request")]), &options).unwrap();
    assert_eq!(r.sql, "SELECT {api_key: String}, 'dflt'");
    assert_eq!(r.secret_params, vec!["api_key".to_string()]);
    let e = Template::parse("{{tb_secret('nope')}}").unwrap().render(&Params::new()).unwrap_err();
    assert_eq!(
        message(e),
        "Template Syntax Error: Cannot access secret 'nope'. Check the secret exists in the Workspace and the token has the required scope."
    );
}

#[test]
fn job_timestamp_defaults_to_now_in_utc() {
    let t = Template::parse("{{DateTime(job_timestamp)}}").unwrap();
    let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap().and_hms_opt(17, 3, 14).unwrap();
    let options = RenderOptions { now: Some(now), ..RenderOptions::default() };
    assert_eq!(t.render_with(&Params::new(), &options).unwrap().sql, "'2026-12-05 17:03:14'");
    let given = params(&[("job_timestamp", "2020-01-01 00:00:00")]);
    assert_eq!(t.render_with(&given, &options).unwrap().sql, "'2020-01-01 00:00:00'");
    assert_eq!(t.warnings(), ["job_timestamp".to_string()]);
}

#[test]
fn table_names_are_restricted_and_reported() {
    let t = Template::parse("SELECT * FROM {{table(t)}}").unwrap();
    let r = t.render(&params(&[("t", "events")])).unwrap();
    assert_eq!((r.sql.as_str(), r.tables.as_slice()), ("SELECT * FROM events", ["events".to_string()].as_slice()));
    let e = t.render(&params(&[("t", "events; DROP TABLE x")])).unwrap_err();
    assert_eq!(message(e), "Template Syntax Error: Invalid table name 'events; DROP TABLE x'");
}

#[test]
fn reserved_names() {
    assert_eq!(
        message(Template::parse("SELECT\n{{String(format, 'x')}}").unwrap_err()),
        "Template Syntax Error: \"format\" can not be used as a variable name, line 2"
    );
    let t = Template::parse("{{token}} {{String(debug, 'x')}}").unwrap();
    assert_eq!(t.warnings(), ["token".to_string(), "debug".to_string()]);
}

#[test]
fn parameters_are_listed_once_with_their_metadata() {
    let t = Template::parse(
        "% SELECT {{String(s, 'x', description='d', required=True)}} {{Array(a,'Int32', default='1,2')}} {{Int8(z)}} \
         {{Int32(lim, 10, description='Max rows', example='5', format='int32', enum=['5','10'])}} \
         {{sql_and(b__in=Array(b, 'Int32', defined=False))}} {{column(c, 'ts')}} {{symbol(sym)}} {{x}} {{Int64(x)}} \
         {% for v in split_to_array(p, '') %}{{v}}{% end %}",
    )
    .unwrap();
    let got = serde_json::to_value(t.parameters()).unwrap();
    assert_eq!(
        got,
        json!([
            {"name": "s", "type": "String", "description": "d", "required": true, "default": "x"},
            {"name": "a", "type": "Array(Int32)", "default": "1,2"},
            {"name": "z", "type": "Int8", "default": null},
            {"name": "lim", "type": "Int32", "description": "Max rows", "example": "5", "format": "int32", "enum": ["5", "10"], "default": 10},
            {"name": "b", "type": "Array(Int32)", "defined": false, "default": null},
            {"name": "c", "type": "String", "default": null, "used_in": "function_call"},
            {"name": "x", "type": "Int64", "default": null},
            {"name": "p", "type": "String", "default": null, "used_in": "function_call"},
        ])
    );
}

#[test]
fn example_project_nodes_render() {
    let pipe = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/web-analytics/pipes/top_pages.pipe"
    ))
    .expect("the example project is in the repository");
    let scoped: String = pipe
        .split("NODE scoped\nSQL >\n")
        .nth(1)
        .and_then(|s| s.split("\nNODE ").next())
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let t = Template::parse(strip_activation(&scoped).unwrap()).unwrap();
    let r = t.render(&params(&[("org", "acme"), ("user", "u'1"), ("date_from", "2024-01-01 00:00:00")])).unwrap();
    let squashed: String = r.sql.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        squashed,
        "SELECT path, user, timestamp FROM events WHERE event = 'page_view' AND org = 'acme' AND user = 'u\\'1' AND timestamp >= '2024-01-01 00:00:00'"
    );
    let names: Vec<&str> = t.parameters().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["org", "user", "date_from", "date_to"]);
}
