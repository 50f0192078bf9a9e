//! The app's HTML, written with `maud` (escaping is the default: every interpolated value is
//! text, so an organization named `<script>…` renders as those characters).

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// What the layout needs about the page and its viewer.
pub(crate) struct Page<'a> {
    pub title: &'a str,
    /// Which nav entry is current.
    pub nav: &'a str,
    /// The viewer's name, organizations (id, name) and active organization, when signed in.
    pub viewer: Option<ViewerBar<'a>>,
    /// The tenant token, with its expiry and organization slug (dashboard and token pages).
    pub token: Option<(&'a str, i64, &'a str)>,
    /// The analytics API base URL.
    pub api_base: &'a str,
    /// A message at the top (`Ok` = notice, `Err` = error).
    pub flash: Option<Result<&'a str, &'a str>>,
}

/// The header bar of a signed-in page.
pub(crate) struct ViewerBar<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
    pub orgs: &'a [(String, String)],
    pub active: Option<&'a str>,
    /// A workspace admin (sees the admin pages).
    pub admin: bool,
}

pub(crate) fn layout(p: &Page<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (p.title) " · Aviary" }
                link rel="stylesheet" href="/assets/app.css";
                link rel="icon" href="data:,";
                @if let Some((token, exp, org)) = p.token {
                    meta name="aviary-tenant-token" content=(token);
                    meta name="aviary-tenant-token-exp" content=(exp);
                    meta name="aviary-org" content=(org);
                    meta name="aviary-api-base" content=(p.api_base);
                }
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { (logo()) "Aviary" }
                    @if let Some(v) = &p.viewer {
                        nav aria-label="Main" {
                            (nav_link("/", "Dashboard", p.nav == "dashboard"))
                            (nav_link("/token", "Token", p.nav == "token"))
                            (nav_link("/orgs", "Organizations", p.nav == "orgs"))
                            (nav_link("/account", "Account", p.nav == "account"))
                            @if v.admin {
                                (nav_link("/admin/templates", "Templates", p.nav == "admin"))
                                (nav_link("/admin/usage", "Usage", false))
                            }
                        }
                        span.spacer {}
                        @if !v.orgs.is_empty() {
                            form.org-switch method="post" action="/orgs/switch" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                select #org-switch name="org" aria-label="Organization" {
                                    @for (id, name) in v.orgs {
                                        option value=(id) selected[v.active == Some(id.as_str())] { (name) }
                                    }
                                }
                                button.secondary type="submit" { "Switch" }
                            }
                        }
                        span.muted { (v.name) }
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    } @else {
                        span.spacer {}
                        nav aria-label="Account" {
                            (nav_link("/sign-in", "Sign in", p.nav == "sign-in"))
                            (nav_link("/sign-up", "Sign up", p.nav == "sign-up"))
                        }
                    }
                }
                main #main .narrow[p.viewer.is_none()] {
                    @match p.flash {
                        Some(Ok(m)) => { p.flash role="status" { (m) } }
                        Some(Err(m)) => { p.flash.error role="alert" { (m) } }
                        None => {}
                    }
                    (body)
                }
            }
        }
    }
}

fn nav_link(href: &str, text: &str, current: bool) -> Markup {
    html! { a href=(href) aria-current=[current.then_some("page")] { (text) } }
}

fn logo() -> Markup {
    html! {
        svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true" {
            path d="M3 14c4-1 6-4 7-8 1 4 4 6 8 6-3 2-5 4-6 8-1-3-4-5-9-6z" fill="currentColor" {}
        }
    }
}

/// The sign-in and sign-up forms.
pub(crate) fn sign_in(csrf: &str, email: &str, next: &str) -> Markup {
    html! {
        h1 { "Sign in" }
        form.card.stack method="post" action="/sign-in" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            label { "Email address" input type="email" name="email" autocomplete="username" required value=(email); }
            label { "Password" input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
        p.muted { "No account yet? " a href="/sign-up" { "Sign up" } }
    }
}

pub(crate) fn sign_up(csrf: &str, email: &str, first: &str, last: &str, next: &str) -> Markup {
    html! {
        h1 { "Create your account" }
        form.card.stack method="post" action="/sign-up" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            div.row {
                label { "First name" input type="text" name="first_name" autocomplete="given-name" value=(first); }
                label { "Last name" input type="text" name="last_name" autocomplete="family-name" value=(last); }
            }
            label { "Email address" input type="email" name="email" autocomplete="email" required value=(email); }
            label {
                "Password"
                input type="password" name="password" autocomplete="new-password" minlength="8" required aria-describedby="pw-help";
            }
            p #pw-help .muted { "At least 8 characters; common passwords are refused." }
            button type="submit" { "Sign up" }
        }
        p.muted { "Already have an account? " a href="/sign-in" { "Sign in" } }
    }
}

/// The dashboard: four panels the script fills.
pub(crate) fn dashboard(org_name: &str, minutes: u32) -> Markup {
    html! {
        div.row {
            h1 { (org_name) }
            span #updated .muted aria-live="polite" {}
        }
        div #dashboard .grid data-refresh-seconds="5" data-minutes=(minutes) {
            section #kpis .panel.wide aria-labelledby="kpis-h" {
                header { h2 #kpis-h { "Headline numbers" } span.badge { "kpis" } }
                div.panel-body { p.muted { "Loading…" } }
            }
            section #events-per-minute .panel.wide aria-labelledby="epm-h" {
                header { h2 #epm-h { "Events per minute, last " (minutes) " minutes" } span.badge { "events_per_minute" } }
                div.panel-body { p.muted { "Loading…" } }
            }
            section #top-pages .panel.half aria-labelledby="tp-h" {
                header { h2 #tp-h { "Top pages" } span.badge { "top_pages" } }
                div.panel-body { p.muted { "Loading…" } }
            }
            section #my-activity .panel.half aria-labelledby="ma-h" {
                header { h2 #ma-h { "My activity" } span.badge { "user_activity" } }
                div.panel-body { p.muted { "Loading…" } }
            }
        }
    }
}

/// The token panel: the script fills in the decoded parts and keeps them current.
pub(crate) fn token(token: &str) -> Markup {
    html! {
        h1 { "Your tenant token" }
        section #token-panel .card {
            p.muted {
                "Minted from the " code { "tinybird" } " JWT template for your active organization; "
                span data-expires {} ". The page renews it before it expires."
            }
            h2 { "Token" }
            pre.code data-token { (token) }
            button.secondary type="button" data-copy="token" { "Copy" }
            div.grid {
                div.half { h2 { "Header" } pre.code data-header {} }
                div.half { h2 { "Claims" } pre.code data-claims {} }
            }
            h2 { "Try it" }
            pre.code data-curl {}
            button.secondary type="button" data-copy="curl" { "Copy" }
        }
    }
}

/// A page's message when there is nothing to show yet.
pub(crate) fn notice(title: &str, text: &str, link: Option<(&str, &str)>) -> Markup {
    html! {
        h1 { (title) }
        div.card {
            p { (text) }
            @if let Some((href, label)) = link { a.button href=(href) { (label) } }
        }
    }
}

/// Organizations: the user's, creating one, and (for admins) the active one's members and
/// invitations.
pub(crate) struct OrgsPage<'a> {
    pub csrf: &'a str,
    pub memberships: &'a [Value],
    pub active: Option<&'a Value>,
    pub members: &'a [Value],
    pub invitations: &'a [Value],
    pub is_admin: bool,
    pub roles: &'a [(String, String)],
}

pub(crate) fn orgs(p: &OrgsPage<'_>) -> Markup {
    html! {
        h1 { "Organizations" }
        div.grid {
            section.card.half aria-labelledby="yours" {
                h2 #yours { "Yours" }
                @if p.memberships.is_empty() {
                    p.muted { "You are not in an organization yet. Create one, or accept an invitation." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Slug" } th scope="col" { "Role" } th {} } }
                        tbody {
                            @for m in p.memberships {
                                tr {
                                    td { (m["organization"]["name"].as_str().unwrap_or_default()) }
                                    td { code { (m["organization"]["slug"].as_str().unwrap_or_default()) } }
                                    td { (m["role_name"].as_str().unwrap_or_default()) }
                                    td {
                                        @if p.active.is_some_and(|a| a["id"] == m["organization"]["id"]) {
                                            span.badge { "active" }
                                        } @else {
                                            form method="post" action="/orgs/switch" {
                                                input type="hidden" name="csrf" value=(p.csrf);
                                                input type="hidden" name="org" value=(m["organization"]["id"].as_str().unwrap_or_default());
                                                button.secondary type="submit" { "Open" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card.half aria-labelledby="create" {
                h2 #create { "Create an organization" }
                form.stack method="post" action="/orgs" {
                    input type="hidden" name="csrf" value=(p.csrf);
                    label { "Name" input type="text" name="name" required maxlength="256"; }
                    label { "Slug (optional)" input type="text" name="slug" pattern="[a-z0-9][a-z0-9-]*[a-z0-9]" maxlength="64" aria-describedby="slug-help"; }
                    p #slug-help .muted { "Lowercase letters, digits and dashes. It identifies your data and never changes." }
                    button type="submit" { "Create" }
                }
            }
            @if let Some(org) = p.active {
                section.card.wide aria-labelledby="members" {
                    h2 #members { "Members of " (org["name"].as_str().unwrap_or_default()) }
                    table {
                        thead { tr { th scope="col" { "Member" } th scope="col" { "Role" } @if p.is_admin { th scope="col" { "Manage" } } } }
                        tbody {
                            @for m in p.members {
                                @let user = &m["public_user_data"];
                                @let uid = user["user_id"].as_str().unwrap_or_default();
                                tr {
                                    td { (user["identifier"].as_str().unwrap_or_default()) }
                                    td { (m["role_name"].as_str().unwrap_or_default()) }
                                    @if p.is_admin {
                                        td {
                                            div.row {
                                                form.row method="post" action="/orgs/members/role" {
                                                    input type="hidden" name="csrf" value=(p.csrf);
                                                    input type="hidden" name="user_id" value=(uid);
                                                    select name="role" aria-label="Role" {
                                                        @for (key, name) in p.roles {
                                                            option value=(key) selected[m["role"].as_str() == Some(key.as_str())] { (name) }
                                                        }
                                                    }
                                                    button.secondary type="submit" { "Change" }
                                                }
                                                form method="post" action="/orgs/members/remove" data-confirm="Remove this member?" {
                                                    input type="hidden" name="csrf" value=(p.csrf);
                                                    input type="hidden" name="user_id" value=(uid);
                                                    button.danger type="submit" { "Remove" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if p.is_admin {
                        h2 { "Invite someone" }
                        form.row method="post" action="/orgs/invite" {
                            input type="hidden" name="csrf" value=(p.csrf);
                            label { "Email address" input type="email" name="email" required; }
                            label { "Role" select name="role" { @for (key, name) in p.roles { option value=(key) selected[key == "org:member"] { (name) } } } }
                            button type="submit" { "Send invitation" }
                        }
                        @if !p.invitations.is_empty() {
                            h2 { "Pending invitations" }
                            ul { @for i in p.invitations { li { (i["email_address"].as_str().unwrap_or_default()) " — " (i["role_name"].as_str().unwrap_or_default()) } } }
                        }
                    }
                    form method="post" action="/orgs/leave" data-confirm="Leave this organization?" {
                        input type="hidden" name="csrf" value=(p.csrf);
                        button.secondary type="submit" { "Leave this organization" }
                    }
                }
            }
        }
    }
}

/// Accepting an invitation (a POST, so a link preview cannot accept it).
pub(crate) fn invitation(csrf: &str, ticket: &str, org_name: &str, role: &str) -> Markup {
    html! {
        h1 { "Join " (org_name) }
        form.card.stack method="post" action="/invitations/accept" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="ticket" value=(ticket);
            p { "You are invited to join " strong { (org_name) } " as " (role) "." }
            button type="submit" { "Accept the invitation" }
        }
    }
}

/// The account page: password change.
pub(crate) fn account(csrf: &str, email: &str) -> Markup {
    html! {
        h1 { "Account" }
        section.card aria-labelledby="pw" {
            p.muted { "Signed in as " (email) }
            h2 #pw { "Change your password" }
            form.stack method="post" action="/account/password" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Current password" input type="password" name="current" autocomplete="current-password" required; }
                label { "New password" input type="password" name="new" autocomplete="new-password" minlength="8" required; }
                button type="submit" { "Change password" }
            }
            p.muted { "Changing it signs you out everywhere else." }
        }
    }
}

/// Confirming an email address.
pub(crate) fn verify_email(csrf: &str, ticket: &str) -> Markup {
    html! {
        h1 { "Verify your email address" }
        form.card.stack method="post" action="/verify-email" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="ticket" value=(ticket);
            button type="submit" { "Verify" }
        }
    }
}
