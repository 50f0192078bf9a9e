//! The identity suite, run against both stores: every test is one async function taking an
//! `Identity`, and `both!` makes a SQLite and a PostgreSQL test of it.

mod postgres;

use std::time::Duration;

use identity::{Error, Identity, ListParams, Options};
use serde_json::{Value, json};

/// A fresh store of `kind`, with options adjusted by `tune`.
async fn open(kind: &str, tune: impl FnOnce(&mut Options)) -> (Identity, String) {
    let url = match kind {
        "postgres" => postgres::fresh_database(),
        _ => {
            let dir = std::env::temp_dir().join(format!(
                "aviary-identity-{}-{:x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}?mode=rwc", dir.join("identity.db").display())
        }
    };
    let mut opts = Options::new(url.clone(), b"test sealing key");
    opts.secret_key = Some("sk_live_test".into());
    opts.issuer = "https://identity.aviary.test".into();
    opts.app_origin = "https://app.aviary.test".into();
    tune(&mut opts);
    (Identity::open(opts).await.unwrap().0, url)
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name("sqlite").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name("postgres").await
            }
        }
    };
}

fn params(pairs: &[(&str, &str)]) -> ListParams {
    ListParams::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn code(e: Error) -> String {
    match e {
        Error::Invalid { status, code, .. } => format!("{status} {code}"),
        Error::NotFound(_) => "404".into(),
        Error::Locked { .. } => "429 user_locked".into(),
        Error::TooManyRequests { .. } => "429 too_many_requests".into(),
        Error::IncorrectPassword => "422 form_password_incorrect".into(),
        e => format!("{e}"),
    }
}

async fn user(id: &Identity, email: &str, first: &str) -> String {
    let u = id
        .create_user(&json!({"email_address": [email], "password": "correct horse battery", "first_name": first}))
        .await
        .unwrap();
    u["id"].as_str().unwrap().to_string()
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

both!(users_rules_lists_and_metadata);
async fn users_rules_lists_and_metadata(kind: &str) {
    let (id, _) = open(kind, |_| {}).await;
    let ana = user(&id, "Ana@Acme.example", "Ana").await;
    let u = id.get_user(&ana).await.unwrap();
    assert_eq!(u["object"], "user");
    assert!(ana.starts_with("user_") && ana.len() == 32, "{ana}");
    assert_eq!(u["email_addresses"][0]["email_address"], "ana@acme.example");
    assert_eq!(u["primary_email_address_id"], u["email_addresses"][0]["id"]);
    assert_eq!(u["password_enabled"], true);
    assert!(u["created_at"].as_i64().unwrap() > 1_700_000_000_000, "milliseconds");
    assert!(u.get("deleted").is_none());
    // Rules.
    let err = |b: Value| {
        let id = &id;
        async move { code(id.create_user(&b).await.unwrap_err()) }
    };
    assert_eq!(
        err(json!({"email_address": ["ana@acme.example"], "password": "another good one"})).await,
        "422 form_identifier_exists"
    );
    assert_eq!(
        err(json!({"email_address": ["bo@acme.example"], "password": "short"})).await,
        "422 form_password_length_too_short"
    );
    assert_eq!(
        err(json!({"email_address": ["bo@acme.example"], "password": "password123"})).await,
        "422 form_password_pwned"
    );
    assert_eq!(
        err(json!({"email_address": ["bo@acme.example"], "password": "bo@acme.example"})).await,
        "422 form_password_pwned"
    );
    assert_eq!(err(json!({"email_address": ["bo@acme.example"]})).await, "400 form_param_missing");
    assert_eq!(
        err(json!({"email_address": ["not-an-email"], "password": "another good one"})).await,
        "400 form_param_format_invalid"
    );
    let bo = user(&id, "bo@acme.example", "Bo").await;
    let _cy = id.create_user(&json!({"username": "cyrus", "skip_password_requirement": true})).await.unwrap();
    // Lists: newest first, filters, count.
    let all = id.list_users(&params(&[])).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["id"], ana.as_str());
    let by_email = id
        .list_users(&params(&[("email_address", "bo@acme.example"), ("email_address", "nobody@x.example")]))
        .await
        .unwrap();
    assert_eq!(by_email.len(), 1);
    assert_eq!(by_email[0]["id"], bo.as_str());
    let q = id.list_users(&params(&[("query", "an")])).await.unwrap();
    assert_eq!(q.len(), 1);
    let page = id.list_users(&params(&[("limit", "1"), ("offset", "1"), ("order_by", "+created_at")])).await.unwrap();
    assert_eq!(page[0]["id"], bo.as_str());
    assert_eq!(
        id.count_users(&params(&[("user_id", &ana), ("user_id", &bo)])).await.unwrap(),
        json!({"object": "total_count", "total_count": 2})
    );
    assert_eq!(code(id.list_users(&params(&[("limit", "501")])).await.unwrap_err()), "400 form_param_format_invalid");
    assert_eq!(
        code(id.list_users(&params(&[("order_by", "password_hash")])).await.unwrap_err()),
        "422 form_param_value_invalid"
    );
    // Updates and metadata.
    let u = id
        .update_user(&ana, &json!({"last_name": "Lopez", "public_metadata": {"plan": "pro", "tags": ["a"]}}))
        .await
        .unwrap();
    assert_eq!(u["last_name"], "Lopez");
    let u = id.user_metadata(&ana, &json!({"public_metadata": {"plan": null, "seats": 3}}), false).await.unwrap();
    assert_eq!(u["public_metadata"], json!({"tags": ["a"], "seats": 3}));
    let u = id.user_metadata(&ana, &json!({"public_metadata": {"only": true}}), true).await.unwrap();
    assert_eq!(u["public_metadata"], json!({"only": true}));
    assert_eq!(
        code(id.update_user(&ana, &json!({"username": "bo"})).await.unwrap_err()),
        "400 form_param_format_invalid"
    );
    // Delete.
    assert_eq!(id.delete_user(&bo).await.unwrap(), json!({"object": "user", "id": bo, "deleted": true}));
    assert_eq!(code(id.get_user(&bo).await.unwrap_err()), "404");
}

both!(sign_in_lockout_and_ip_limit);
async fn sign_in_lockout_and_ip_limit(kind: &str) {
    let (id, _) = open(kind, |o| o.sign_in_per_ip = 13).await;
    let ana = user(&id, "ana@acme.example", "Ana").await;
    let ip: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let first = id.sign_in("ana@acme.example", "correct horse battery", Some(ip)).await.unwrap();
    let second = id.sign_in("ANA@acme.example", "correct horse battery", Some(ip)).await.unwrap();
    assert_ne!(first.session_id, second.session_id, "a new session id at every sign-in");
    assert_ne!(first.client_token, second.client_token);
    assert_eq!(id.client_sessions(&first.client_token).await.unwrap()[0]["id"], first.session_id.as_str());
    // Unknown account and wrong password answer the same.
    assert_eq!(
        code(id.sign_in("nobody@acme.example", "whatever it is", Some(ip)).await.unwrap_err()),
        "422 form_password_incorrect"
    );
    // Nine more failures (ten in a row) lock the account; then even the right password is refused.
    for _ in 0..9 {
        assert_eq!(
            code(id.sign_in("ana@acme.example", "wrong password", Some(ip)).await.unwrap_err()),
            "422 form_password_incorrect"
        );
    }
    let other_ip: std::net::IpAddr = "10.0.0.2".parse().unwrap();
    assert_eq!(
        code(id.sign_in("ana@acme.example", "wrong password", Some(other_ip)).await.unwrap_err()),
        "429 user_locked"
    );
    match id.sign_in("ana@acme.example", "correct horse battery", Some(other_ip)).await.unwrap_err() {
        Error::Locked { retry_after } => assert!(retry_after > 3500 && retry_after <= 3600, "{retry_after}"),
        e => panic!("{e}"),
    }
    assert_eq!(id.get_user(&ana).await.unwrap()["locked"], true);
    assert_eq!(
        code(id.verify_password(&ana, &json!({"password": "correct horse battery"})).await.unwrap_err()),
        "429 user_locked"
    );
    id.set_locked(&ana, false).await.unwrap();
    assert_eq!(
        id.verify_password(&ana, &json!({"password": "correct horse battery"})).await.unwrap(),
        json!({"verified": true})
    );
    // The first address has used 12 of its 13 attempts: one more, then 429.
    id.sign_in("ana@acme.example", "correct horse battery", Some(ip)).await.unwrap();
    assert_eq!(
        code(id.sign_in("ana@acme.example", "correct horse battery", Some(ip)).await.unwrap_err()),
        "429 too_many_requests"
    );
    // Bans end sessions.
    id.set_banned(&ana, true).await.unwrap();
    assert_eq!(id.get_session(&first.session_id).await.unwrap()["status"], "revoked");
    assert_eq!(code(id.session_token(&second.session_id, None).await.unwrap_err()), "404");
}

both!(organizations_memberships_and_invitations);
async fn organizations_memberships_and_invitations(kind: &str) {
    let (id, _) = open(kind, |_| {}).await;
    let ana = user(&id, "ana@acme.example", "Ana").await;
    let bo = user(&id, "bo@acme.example", "Bo").await;
    let org = id.create_org(&json!({"name": "Acme Inc", "created_by": ana})).await.unwrap();
    assert_eq!(org["slug"], "acme-inc");
    assert_eq!(org["members_count"], 1);
    let org_id = org["id"].as_str().unwrap().to_string();
    let again = id.create_org(&json!({"name": "Acme Inc"})).await.unwrap();
    assert_eq!(again["slug"], "acme-inc-2");
    assert_eq!(
        code(id.create_org(&json!({"name": "X", "slug": "acme-inc"})).await.unwrap_err()),
        "422 organization_slug_taken"
    );
    assert_eq!(
        code(id.create_org(&json!({"name": "X", "slug": "Bad Slug"})).await.unwrap_err()),
        "400 form_param_format_invalid"
    );
    assert_eq!(
        code(id.create_org(&json!({"name": "<script>alert(1)</script>"})).await.unwrap_err()),
        "422 form_param_value_invalid"
    );
    assert_eq!(
        code(id.update_org(&org_id, &json!({"slug": "renamed"})).await.unwrap_err()),
        "422 form_param_value_invalid"
    );
    assert_eq!(id.get_org("acme-inc").await.unwrap()["id"], org_id.as_str());
    // A deleted organization's slug is never reused.
    let gone = id.create_org(&json!({"name": "Gone", "slug": "gone"})).await.unwrap();
    assert_eq!(
        id.delete_org(gone["id"].as_str().unwrap()).await.unwrap(),
        json!({"object": "organization", "id": gone["id"], "slug": "gone", "deleted": true})
    );
    assert_eq!(
        code(id.create_org(&json!({"name": "Gone", "slug": "gone"})).await.unwrap_err()),
        "422 organization_slug_taken"
    );
    let (orgs, total) = id.list_orgs(&params(&[("query", "acme")])).await.unwrap();
    assert_eq!((orgs.len(), total), (2, 2));
    // Memberships: the creator is the admin; the last admin stays.
    let m = id.add_membership(&org_id, &json!({"user_id": bo, "role": "org:member"})).await.unwrap();
    assert_eq!(m["object"], "organization_membership");
    assert_eq!(m["public_user_data"]["identifier"], "bo@acme.example");
    assert_eq!(m["organization"]["slug"], "acme-inc");
    assert_eq!(m["permissions"], json!(["org:sys_billing:read", "org:sys_memberships:read"]));
    assert_eq!(
        code(id.add_membership(&org_id, &json!({"user_id": bo})).await.unwrap_err()),
        "422 already_a_member_in_organization"
    );
    assert_eq!(code(id.remove_membership(&org_id, &ana).await.unwrap_err()), "422 form_param_value_invalid");
    assert_eq!(
        code(id.update_membership(&org_id, &ana, &json!({"role": "org:member"})).await.unwrap_err()),
        "422 form_param_value_invalid"
    );
    id.update_membership(&org_id, &bo, &json!({"role": "org:admin"})).await.unwrap();
    id.update_membership(&org_id, &ana, &json!({"role": "org:member"})).await.unwrap();
    let (ms, total) = id.list_memberships(&org_id, &params(&[("role", "org:admin")])).await.unwrap();
    assert_eq!((ms.len(), total), (1, 1));
    assert_eq!(ms[0]["public_user_data"]["user_id"], bo.as_str());
    let removed = id.remove_membership(&org_id, &ana).await.unwrap();
    assert_eq!(removed["role"], "org:member");
    assert_eq!(id.user_memberships(&ana, &params(&[])).await.unwrap().1, 0);
    // Invitations: link in the outbox, single-use ticket, duplicate member refused.
    assert_eq!(
        code(
            id.create_invitation(&org_id, &json!({"email_address": "bo@acme.example", "role": "org:member"}))
                .await
                .unwrap_err()
        ),
        "422 duplicate_record"
    );
    let inv = id
        .create_invitation(
            &org_id,
            &json!({"email_address": "ana@acme.example", "role": "org:member", "inviter_user_id": bo}),
        )
        .await
        .unwrap();
    assert_eq!(inv["status"], "pending");
    let url = inv["url"].as_str().unwrap();
    let ticket = url.split("ticket=").nth(1).unwrap();
    let outbox = id.outbox(1).await.unwrap();
    assert_eq!(outbox[0].0, "ana@acme.example");
    assert_eq!(outbox[0].2.as_deref(), Some(url));
    assert_eq!(id.pending_invitations(&org_id, &params(&[])).await.unwrap().1, 1);
    assert_eq!(id.user_invitations(&ana, &params(&[("status", "pending")])).await.unwrap().1, 1);
    let accepted = id.accept_invitation(ticket, &ana).await.unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(code(id.accept_invitation(ticket, &ana).await.unwrap_err()), "404");
    assert_eq!(id.list_memberships(&org_id, &params(&[])).await.unwrap().1, 2);
    let other = id
        .create_invitation(&org_id, &json!({"email_address": "cy@acme.example", "role": "org:member"}))
        .await
        .unwrap();
    let revoked = id.revoke_invitation(&org_id, other["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(revoked["status"], "revoked");
    let t = other["url"].as_str().unwrap().split("ticket=").nth(1).unwrap();
    assert_eq!(code(id.accept_invitation(t, &ana).await.unwrap_err()), "404");
    assert_eq!(id.list_all_invitations(&params(&[("status", "revoked")])).await.unwrap().1, 1);
}

/// The spec's §3.6 template, signed with `key`.
fn tinybird_template(key: &str) -> Value {
    json!({
        "name": "tinybird",
        "lifetime": 300,
        "allowed_clock_skew": 5,
        "custom_signing_key": true,
        "signing_algorithm": "HS256",
        "signing_key": key,
        "claims": {
            "name": "frontend_jwt_{{org.slug}}",
            "limits": {"rps": 10},
            "workspace_id": "5a0c4c1e-1111-2222-3333-444455556666",
            "scopes": [
                {"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "{{org.slug}}"}},
                {"type": "PIPES:READ", "resource": "user_activity", "fixed_params": {"org": "{{org.slug}}", "user": "{{user.id}}"}}
            ]
        }
    })
}

both!(templates_sessions_and_tokens);
async fn templates_sessions_and_tokens(kind: &str) {
    let (id, _) = open(kind, |_| {}).await;
    let ana = user(&id, "ana@acme.example", "Ana").await;
    let org = id.create_org(&json!({"name": "Acme", "slug": "acme", "created_by": ana})).await.unwrap();
    let org_id = org["id"].as_str().unwrap();
    id.create_permission(&json!({"key": "org:analytics:read", "name": "Read analytics"})).await.unwrap();
    let role = id.create_role(&json!({"key": "org:analyst", "name": "Analyst", "permissions": ["org:analytics:read", "org:sys_memberships:read"]})).await.unwrap();
    assert_eq!(role["is_creator_eligible"], false);
    let bo = user(&id, "bo@acme.example", "Bo").await;
    id.add_membership(org_id, &json!({"user_id": bo, "role": "org:analyst"})).await.unwrap();
    assert_eq!(code(id.delete_role(role["id"].as_str().unwrap()).await.unwrap_err()), "422 form_param_value_invalid");
    // Templates: validation on save.
    let bad = |b: Value| {
        let id = &id;
        async move { code(id.create_template(&b).await.unwrap_err()) }
    };
    assert_eq!(bad(json!({"name": "x", "claims": {"sub": "{{user.id}}"}})).await, "422 form_param_value_invalid");
    assert_eq!(bad(json!({"name": "x", "claims": {"a": "{{organization.id}}"}})).await, "422 form_param_value_invalid");
    assert_eq!(bad(json!({"name": "x", "claims": {"a": "{{user.id"}})).await, "422 form_param_value_invalid");
    assert_eq!(bad(json!({"name": "x", "claims": {}, "lifetime": 10})).await, "422 form_param_value_invalid");
    assert_eq!(
        bad(json!({"name": "x", "claims": {}, "allowed_clock_skew": 301})).await,
        "422 form_param_value_invalid"
    );
    assert_eq!(
        bad(json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "HS256"})).await,
        "400 form_param_missing"
    );
    assert_eq!(bad(json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "none", "signing_key": "k"})).await, "422 form_param_value_invalid");
    assert_eq!(bad(json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "RS256", "signing_key": "not a pem"})).await, "422 form_param_value_invalid");
    assert_eq!(bad(json!({"claims": {}})).await, "400 form_param_missing");
    let t = id.create_template(&tinybird_template("p.admin-token")).await.unwrap();
    assert!(t.get("signing_key").is_none(), "the key is never returned");
    assert_eq!(t["signing_algorithm"], "HS256");
    assert_eq!(bad(tinybird_template("k")).await, "422 form_param_value_invalid", "name taken");
    // A session for Bo in Acme; the template token has exactly the template's claims.
    let session = id.create_session(&json!({"user_id": bo, "active_organization_id": org_id})).await.unwrap();
    let sid = session["id"].as_str().unwrap();
    assert_eq!(session["last_active_organization_id"], org_id);
    let jwt = id.mint(sid, Some("tinybird"), &Value::Null).await.unwrap()["jwt"].as_str().unwrap().to_string();
    assert_eq!(header(&jwt), json!({"alg": "HS256", "cat": "cl_B7d4PD222AAA", "typ": "JWT"}));
    let mut key = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    key.set_required_spec_claims(&["exp"]);
    let verified = jsonwebtoken::decode::<Value>(&jwt, &jsonwebtoken::DecodingKey::from_secret(b"p.admin-token"), &key)
        .unwrap()
        .claims;
    let iat = verified["iat"].as_i64().unwrap();
    assert_eq!(verified["exp"].as_i64().unwrap() - iat, 300);
    assert_eq!(verified["nbf"].as_i64().unwrap(), iat - 5);
    assert_eq!(verified["jti"].as_str().unwrap().len(), 20);
    let mut expected = json!({
        "name": "frontend_jwt_acme",
        "limits": {"rps": 10},
        "workspace_id": "5a0c4c1e-1111-2222-3333-444455556666",
        "scopes": [
            {"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "acme"}},
            {"type": "PIPES:READ", "resource": "user_activity", "fixed_params": {"org": "acme", "user": bo}}
        ],
        "exp": verified["exp"], "iat": iat, "iss": "https://identity.aviary.test", "jti": verified["jti"],
        "nbf": iat - 5, "sub": bo
    });
    assert_eq!(verified, expected);
    // expires_in_seconds overrides the lifetime (30 at least).
    let short = id.mint(sid, Some("tinybird"), &json!({"expires_in_seconds": 30})).await.unwrap();
    let c = claims(short["jwt"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 30);
    assert_eq!(
        code(id.mint(sid, Some("tinybird"), &json!({"expires_in_seconds": 5})).await.unwrap_err()),
        "422 form_param_value_invalid"
    );
    assert_eq!(code(id.mint(sid, Some("nope"), &Value::Null).await.unwrap_err()), "404");
    // The session token: RS256 with the instance key, v1 org claims with custom permissions only.
    let st = id.mint(sid, None, &Value::Null).await.unwrap()["jwt"].as_str().unwrap().to_string();
    let h = header(&st);
    assert_eq!(
        (h["alg"].as_str(), h["cat"].as_str(), h["kid"].as_str()),
        (Some("RS256"), Some("cl_B7d4PD111AAA"), Some(id.instance_id()))
    );
    let sc = id.verify_session_token(&st).await.unwrap();
    assert_eq!((sc.sub.as_str(), sc.sid.as_str()), (bo.as_str(), sid));
    assert_eq!(sc.exp - sc.iat, 60);
    assert_eq!(sc.nbf, sc.iat - 10);
    assert_eq!(sc.azp.as_deref(), Some("https://app.aviary.test"));
    assert_eq!(sc.org_slug.as_deref(), Some("acme"));
    assert_eq!(sc.org_role.as_deref(), Some("org:analyst"));
    assert_eq!(sc.org_permissions, Some(vec!["org:analytics:read".to_string()]));
    let jwks = id.jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], id.instance_id());
    assert!(jwks["keys"][0].get("d").is_none());
    // Tampering fails.
    let mut tampered = st.clone();
    tampered.replace_range(st.len() - 5..st.len() - 4, if st.ends_with('A') { "B" } else { "A" });
    let forged = {
        let parts: Vec<&str> = st.split('.').collect();
        use base64::Engine;
        let mut c = claims(&st);
        c["sub"] = json!(ana);
        format!("{}.{}.{}", parts[0], base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string()), parts[2])
    };
    assert!(id.verify_session_token(&forged).await.is_err());
    assert!(id.verify_session_token(&tampered).await.is_err() || tampered == st);
    // No active organization: org shortcodes are null; interpolated ones the text "null".
    id.set_active_organization(sid, None).await.unwrap();
    let none = claims(id.mint(sid, Some("tinybird"), &Value::Null).await.unwrap()["jwt"].as_str().unwrap());
    assert_eq!(none["name"], "frontend_jwt_null");
    assert_eq!(none["scopes"][0]["fixed_params"]["org"], Value::Null);
    let sc = claims(&id.session_token(sid, None).await.unwrap());
    assert!(sc.get("org_id").is_none());
    // An instance-signed template; update keeps the custom key when it is not sent again.
    let inst = id.create_template(&json!({"name": "plain", "claims": {"email": "{{user.primary_email_address}}", "who": "{{user.last_name || user.first_name || 'anon'}}"}, "lifetime": 60})).await.unwrap();
    let pj = id.mint(sid, Some("plain"), &Value::Null).await.unwrap()["jwt"].as_str().unwrap().to_string();
    assert_eq!(header(&pj)["kid"], id.instance_id());
    assert_eq!((claims(&pj)["email"].as_str(), claims(&pj)["who"].as_str()), (Some("bo@acme.example"), Some("Bo")));
    let mut changed = tinybird_template("ignored");
    changed["signing_key"] = Value::Null;
    changed["lifetime"] = json!(120);
    id.update_template(t["id"].as_str().unwrap(), &changed).await.unwrap();
    let again = id.mint(sid, Some("tinybird"), &Value::Null).await.unwrap()["jwt"].as_str().unwrap().to_string();
    jsonwebtoken::decode::<Value>(&again, &jsonwebtoken::DecodingKey::from_secret(b"p.admin-token"), &key).unwrap();
    let (list, total) = id.list_templates(&params(&[])).await.unwrap();
    assert_eq!((list.len(), total), (2, 2));
    assert_eq!(id.delete_template(inst["id"].as_str().unwrap()).await.unwrap()["deleted"], true);
    assert_eq!(code(id.mint(sid, Some("plain"), &Value::Null).await.unwrap_err()), "404");
    // Revoked sessions cannot mint; nor sessions of a signed-out-everywhere user.
    id.revoke_session(sid).await.unwrap();
    assert_eq!(code(id.mint(sid, Some("tinybird"), &Value::Null).await.unwrap_err()), "404");
    assert!(id.verify_session_token(&st).await.is_err());
    let s2 = id.create_session(&json!({"user_id": bo})).await.unwrap();
    assert_eq!(s2["last_active_organization_id"], org_id, "the organization joined last");
    assert_eq!(id.end_user_sessions(&bo, "ended").await.unwrap(), 1);
    let (sessions, total) = id.list_sessions(&params(&[("user_id", &bo), ("status", "ended")])).await.unwrap();
    assert_eq!((sessions.len(), total), (1, 1));
    let _ = &mut expected;
}

both!(key_rotation_and_other_nodes);
async fn key_rotation_and_other_nodes(kind: &str) {
    let (a, url) = open(kind, |_| {}).await;
    let mut opts = Options::new(url, b"test sealing key");
    opts.issuer = "https://identity.aviary.test".into();
    let (b, generated) = Identity::open(opts).await.unwrap();
    assert!(generated.is_none(), "the stored secret key is kept");
    assert!(b.check_secret_key("sk_live_test"));
    assert_eq!(a.instance_id(), b.instance_id());
    let ana = user(&a, "ana@acme.example", "Ana").await;
    let s = a.create_session(&json!({"user_id": ana})).await.unwrap();
    let sid = s["id"].as_str().unwrap();
    // Node b mints (and caches); node a revokes; b notices at its next poll.
    b.session_token(sid, None).await.unwrap();
    a.revoke_session(sid).await.unwrap();
    b.poll_changes().await.unwrap();
    assert_eq!(code(b.session_token(sid, None).await.unwrap_err()), "404");
    // Rotation: the new key is published at once but signs only later; both nodes see it.
    let s = a.create_session(&json!({"user_id": ana})).await.unwrap();
    let sid = s["id"].as_str().unwrap();
    let kid = a.rotate_signing_key().await.unwrap();
    assert_eq!(kid, format!("{}_2", a.instance_id()));
    b.poll_changes().await.unwrap();
    let kids: Vec<String> =
        b.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
    assert_eq!(kids, vec![a.instance_id().to_string(), kid]);
    let t = b.session_token(sid, None).await.unwrap();
    assert_eq!(header(&t)["kid"], a.instance_id(), "the old key signs until the new one's lead time has passed");
    a.verify_session_token(&t).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
}

both!(sign_up_verification_and_password_change);
async fn sign_up_verification_and_password_change(kind: &str) {
    let (id, _) = open(kind, |_| {}).await;
    assert_eq!(
        code(id.sign_up("eve@acme.example", "eve@acme.example", None, None).await.unwrap_err()),
        "422 form_password_pwned"
    );
    let u = id.sign_up("Eve@Acme.example", "a long passphrase", Some("Eve"), None).await.unwrap();
    let uid = u["id"].as_str().unwrap().to_string();
    assert_eq!(u["email_addresses"][0]["verification"]["status"], "unverified");
    assert_eq!(
        code(id.sign_up("eve@acme.example", "another passphrase", None, None).await.unwrap_err()),
        "422 form_identifier_exists"
    );
    let (to, subject, link) = id.outbox(1).await.unwrap().remove(0);
    assert_eq!((to.as_str(), subject.as_str()), ("eve@acme.example", "Verify your email address"));
    let ticket = link.unwrap().split("ticket=").nth(1).unwrap().to_string();
    assert_eq!(code(id.verify_email("not-the-ticket").await.unwrap_err()), "404");
    let verified = id.verify_email(&ticket).await.unwrap();
    assert_eq!(verified["email_addresses"][0]["verification"]["status"], "verified");
    assert_eq!(code(id.verify_email(&ticket).await.unwrap_err()), "404", "single use");
    // A password change needs the current password and ends the other sessions.
    let a = id.sign_in("eve@acme.example", "a long passphrase", None).await.unwrap();
    let b = id.sign_in("eve@acme.example", "a long passphrase", None).await.unwrap();
    assert_eq!(
        code(id.change_password(&uid, "wrong one", "a new passphrase", Some(&a.session_id)).await.unwrap_err()),
        "422 form_password_incorrect"
    );
    assert_eq!(
        code(id.change_password(&uid, "a long passphrase", "short", Some(&a.session_id)).await.unwrap_err()),
        "422 form_password_length_too_short"
    );
    id.change_password(&uid, "a long passphrase", "a new passphrase", Some(&a.session_id)).await.unwrap();
    assert_eq!(id.get_session(&a.session_id).await.unwrap()["status"], "active");
    assert_eq!(id.get_session(&b.session_id).await.unwrap()["status"], "ended");
    assert_eq!(
        code(id.sign_in("eve@acme.example", "a long passphrase", None).await.unwrap_err()),
        "422 form_password_incorrect"
    );
    id.sign_in("eve@acme.example", "a new passphrase", None).await.unwrap();
}
