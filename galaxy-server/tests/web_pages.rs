//! The web pages over a real socket, without a browser: the security rules every page
//! depends on (CSRF, cookie flags, CSP, escaping, the admin role, the API's rate limits)
//! and the lobby flows through forms, on the same in-memory services as the `http_*`
//! tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use galaxy_core::ports::MailStore;
use galaxy_server::http::client_ip::TrustedProxies;
use galaxy_server::web::{self, CONTENT_SECURITY_POLICY};
use http_support::{ADMIN_EMAIL, Call, Login, Options, TestApp, TestResponse, game_body};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A page's status, with the page in the message when it is not the one expected.
trait Is {
    fn is(&self, status: u16) -> &Self;
}

impl Is for TestResponse {
    fn is(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        self
    }
}

/// The test app with the pages merged in, as `App` does.
fn web_app(options: Options) -> TestApp {
    web_app_with(options, http_support::limits(Duration::from_secs(10)))
}

/// [`web_app`] with the pages' limits as given.
fn web_app_with(options: Options, limits: galaxy_server::http::HttpLimits) -> TestApp {
    let mut app = TestApp::with(options);
    app.router = app.router.clone().merge(web::router(
        app.state.clone(),
        None,
        limits,
        CancellationToken::new(),
    ));
    app
}

/// A browser's cookie jar of one visitor, and the CSRF token of the last page it saw.
#[derive(Debug, Default, Clone)]
struct Browser {
    cookies: Vec<(String, String)>,
    csrf: Option<String>,
    client: Option<SocketAddr>,
    headers: Vec<(String, String)>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &TestResponse) {
        for value in response.headers.get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            let (name, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !val.is_empty() && !value.contains("Max-Age=0;") && !value.ends_with("Max-Age=0") {
                self.cookies.push((name.to_owned(), val.to_owned()));
            }
        }
        if let Some(csrf) = csrf_of(&response.text) {
            self.csrf = Some(csrf);
        }
    }

    fn call(&self, method: Method, uri: &str) -> Call {
        let mut call = Call::new(method, uri);
        if !self.cookies.is_empty() {
            call = call.header("cookie", &self.cookie_header());
        }
        for (name, value) in &self.headers {
            call = call.header(name, value);
        }
        if let Some(client) = self.client {
            call = call.client(client);
        }
        call
    }

    async fn get(&mut self, app: &TestApp, uri: &str) -> TestResponse {
        let response = app.send(self.call(Method::GET, uri)).await;
        self.keep(&response);
        response
    }

    /// Posts `fields` with the CSRF token of the last page seen.
    async fn post(&mut self, app: &TestApp, uri: &str, fields: &[(&str, &str)]) -> TestResponse {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(app, uri, &all).await
    }

    /// Posts exactly `fields` (no CSRF token added).
    async fn post_raw(
        &mut self,
        app: &TestApp,
        uri: &str,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let call = self
            .call(Method::POST, uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .raw_body(body);
        let response = app.send(call).await;
        self.keep(&response);
        response
    }
}

fn csrf_of(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[start..].chars().take_while(|c| *c != '"').collect())
}

fn set_cookie<'a>(response: &'a TestResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// Logs `email` in through the pages; the browser then holds the session cookie.
async fn login(app: &TestApp, browser: &mut Browser, email: &str) -> TestResponse {
    login_from(app, browser, "/login", email).await
}

/// Where a login form goes on to: its hidden `next`.
fn next_of(page: &TestResponse) -> Option<String> {
    hidden(page, "next")
}

/// The value of the hidden field `name` of a page's form.
fn hidden(page: &TestResponse, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.text.find(&marker)? + marker.len();
    Some(page.text[at..].chars().take_while(|c| *c != '"').collect())
}

/// Logs `email` in through the pages, starting at `login_page` (`/login`, or where a
/// page sent the visitor), each form sending back the fields it was given.
async fn login_from(
    app: &TestApp,
    browser: &mut Browser,
    login_page: &str,
    email: &str,
) -> TestResponse {
    let page = browser.get(app, login_page).await;
    page.is(200);
    let next = hidden(&page, "next");
    let mut fields = vec![("email", email.to_owned())];
    fields.extend(next.map(|n| ("next", n)));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let form = browser.post(app, "/login", &fields).await;
    form.is(200);
    assert!(
        form.text.contains("autocomplete=\"one-time-code\""),
        "{}",
        form.text
    );
    // "Request a new code" starts over towards the same page.
    let new_code = match next_of(&form) {
        Some(next) if next != "/my" => {
            let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap();
            format!("<a id=\"new-code\" href=\"/login?{query}\">")
        }
        _ => "<a id=\"new-code\" href=\"/login\">".to_owned(),
    };
    assert!(form.text.contains(&new_code), "{new_code}: {}", form.text);
    let challenge = hidden(&form, "challenge_id").unwrap();
    let code = app.login_code(email).await;
    let mut fields = vec![("challenge_id", challenge), ("code", code)];
    fields.extend(hidden(&form, "next").map(|n| ("next", n)));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post(app, "/login/code", &fields).await;
    done.is(303);
    done
}

/// A visitor sent to log in from a page goes back to it after the login (after a form's
/// post, to the form's page); a `next` that is not a page of this site goes to "my games".
#[tokio::test]
async fn the_login_goes_back_to_the_page_that_asked_for_it() {
    let app = web_app(Options::default());
    let mut browser = Browser::default();
    let asked = browser.get(&app, "/account").await;
    asked.is(303);
    let login_page = asked.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(login_page, "/login?next=%2Faccount");
    let done = login_from(&app, &mut browser, &login_page, "ann@example.org").await;
    assert_eq!(done.headers["location"], "/account");
    // Signed in, `/login?next=` goes straight there; a foreign `next` goes home.
    let again = browser.get(&app, "/login?next=%2Faccount").await;
    again.is(303);
    assert_eq!(again.headers["location"], "/account");
    for foreign in [
        "//evil.example/",
        "/%5Cevil.example",
        "https://evil.example/",
        "/login",
    ] {
        let page = browser.get(&app, &format!("/login?next={foreign}")).await;
        page.is(303);
        assert_eq!(page.headers["location"], "/my", "{foreign}");
    }
    // A form posted signed out goes back to its page (the create-game form's post to
    // the form on `/games/new`); a form after a lapsed session: see the account test.
    let mut signed_out = Browser::default();
    signed_out.get(&app, "/login").await.is(200);
    let posted = signed_out
        .post(
            &app,
            "/account",
            &[("display_name", "Ann"), ("locale", "en")],
        )
        .await;
    posted.is(303);
    assert_eq!(posted.headers["location"], "/login?next=%2Faccount");
    let posted = signed_out.post(&app, "/games", &[("name", "Cup")]).await;
    posted.is(303);
    assert_eq!(posted.headers["location"], "/login?next=%2Fgames%2Fnew");
    // A page anyone may see (a game's, opened from a turn mail) links to the login
    // that comes back to it.
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Linked Cup", 2, 4).await;
    app.game_action(&host, &game, "open", 200).await;
    let page = signed_out.get(&app, &format!("/games/{game}")).await;
    page.is(200);
    let link = format!("href=\"/login?next=%2Fgames%2F{game}\"");
    assert!(page.text.contains(&link), "{}", page.text);
    let done = login_from(
        &app,
        &mut signed_out,
        &format!("/login?next=%2Fgames%2F{game}"),
        "cy@example.org",
    )
    .await;
    assert_eq!(done.headers["location"], format!("/games/{game}").as_str());
    // A login form carrying a foreign `next` (written by another site) goes home.
    let mut forged = Browser::default();
    forged.get(&app, "/login").await.is(200);
    let form = forged
        .post(
            &app,
            "/login",
            &[("email", "bob@example.org"), ("next", "//evil.example/")],
        )
        .await;
    form.is(200);
    assert_eq!(hidden(&form, "next"), None, "{}", form.text);
    let challenge = hidden(&form, "challenge_id").unwrap();
    let code = app.login_code("bob@example.org").await;
    let done = forged
        .post(
            &app,
            "/login/code",
            &[
                ("challenge_id", challenge.as_str()),
                ("code", code.as_str()),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    done.is(303);
    assert_eq!(done.headers["location"], "/my");
}

async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let mut browser = Browser::default();
    login(app, &mut browser, email).await;
    browser.get(app, "/my").await.is(200);
    browser
}

/// A mistyped code shows the code form again with the error, and a way back to ask for
/// a new code (a code that expired or was mistyped too often has no other way out).
/// A visitor who signs up on German pages (the browser's language) gets the code in
/// German and an account in German: the pages stay German after the login.
#[tokio::test]
async fn a_german_visitor_signs_up_in_german_and_stays_in_german() {
    let app = web_app(Options::default());
    let mut browser = Browser::default();
    browser
        .headers
        .push(("accept-language".into(), "de-DE,de;q=0.9,en;q=0.5".into()));
    let page = login(&app, &mut browser, "neu@example.org").await;
    page.is(303);
    let my = browser.get(&app, "/my").await;
    my.is(200);
    assert!(my.text.contains("<html lang=\"de\">"), "{}", my.text);
    let mail = app
        .stores
        .mail
        .list_mail(
            None,
            &galaxy_core::domain::page::PageRequest::first(10).unwrap(),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|m| m.mail.to.as_str() == "neu@example.org")
        .unwrap();
    assert_eq!(mail.mail.subject, "Dein Galaxy-Anmeldecode");
}

/// A German browser reads refusals in German: error pages (in the site's frame, with
/// the way back) and the reasons beside a form, by the error's code; what only the
/// English message knows stays in it.
#[tokio::test]
async fn refusals_speak_the_browsers_language() {
    let app = web_app(Options::default());
    let mut browser = Browser::default();
    browser
        .headers
        .push(("accept-language".into(), "de".into()));
    browser.headers.push(("accept".into(), "text/html".into()));
    let missing = browser.get(&app, "/no/such/page").await;
    missing.is(404);
    for shown in [
        "<html lang=\"de\">",
        "Nicht gefunden",
        "<nav aria-label=\"Galaxy\">",
        "<a href=\"/my\">",
    ] {
        assert!(missing.text.contains(shown), "{shown}: {}", missing.text);
    }
    let unknown_game = format!("/games/{}", uuid::Uuid::now_v7());
    let page = browser.get(&app, &unknown_game).await;
    page.is(404);
    assert!(page.text.contains("Nicht gefunden"), "{}", page.text);
    assert!(page.text.contains("<html lang=\"de\">"), "{}", page.text);
    // A stale form: the pages' own refusal, in German.
    let stale = browser
        .post_raw(&app, "/games", &[("csrf", "0123"), ("name", "x")])
        .await;
    stale.is(403);
    assert!(
        stale.text.contains("Das Formular ist veraltet"),
        "{}",
        stale.text
    );
    // Beside a form: a race name taken, in German.
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Deutsch", 2, 4).await;
    app.game_action(&host, &game, "open", 200).await;
    let first = app.login("erste@example.org").await;
    app.apply(&first, &game, "Zorg").await;
    let mut german = signed_in(&app, "zweite@example.org").await;
    german.headers.push(("accept-language".into(), "de".into()));
    german
        .post(
            &app,
            "/account",
            &[("display_name", "Zweite"), ("locale", "de")],
        )
        .await
        .is(200);
    german.get(&app, &format!("/games/{game}")).await.is(200);
    let taken = german
        .post(
            &app,
            &format!("/games/{game}/apply"),
            &[("race_name", "zorg")],
        )
        .await;
    taken.is(409);
    assert!(
        taken.text.contains("Dieser Volksname ist vergeben"),
        "{}",
        taken.text
    );
    // The same in English for an English browser.
    let mut english = signed_in(&app, "dritte@example.org").await;
    english.get(&app, &format!("/games/{game}")).await.is(200);
    let taken = english
        .post(
            &app,
            &format!("/games/{game}/apply"),
            &[("race_name", "zorg")],
        )
        .await;
    taken.is(409);
    assert!(taken.text.contains("is taken"), "{}", taken.text);
}

/// A signed-in visitor reads error pages in their account's language, as every other
/// page, whatever the browser says; signed out, the browser's language counts.
#[tokio::test]
async fn error_pages_speak_the_accounts_language() {
    let app = web_app(Options::default());
    let unknown_game = format!("/games/{}", uuid::Uuid::now_v7());
    // A German account on an English browser.
    let mut german = signed_in(&app, "konto@example.org").await;
    german
        .post(
            &app,
            "/account",
            &[("display_name", "Konto"), ("locale", "de")],
        )
        .await
        .is(200);
    german.headers.push(("accept".into(), "text/html".into()));
    let page = german.get(&app, &unknown_game).await;
    page.is(404);
    assert!(page.text.contains("<html lang=\"de\">"), "{}", page.text);
    assert!(page.text.contains("Nicht gefunden"), "{}", page.text);
    // An English account on a German browser.
    let mut english = Browser::default();
    english
        .headers
        .push(("accept-language".into(), "de".into()));
    english.headers.push(("accept".into(), "text/html".into()));
    login(&app, &mut english, "account@example.org")
        .await
        .is(303);
    english.get(&app, "/account").await.is(200);
    english
        .post(
            &app,
            "/account",
            &[("display_name", "Account"), ("locale", "en")],
        )
        .await
        .is(200);
    let page = english.get(&app, &unknown_game).await;
    page.is(404);
    assert!(page.text.contains("<html lang=\"en\">"), "{}", page.text);
    assert!(!page.text.contains("Nicht gefunden"), "{}", page.text);
    // Signed in, no link to log in.
    assert!(!page.text.contains("id=\"error-login\""), "{}", page.text);
    // Signed out, the German browser reads German.
    let mut visitor = Browser::default();
    visitor
        .headers
        .push(("accept-language".into(), "de".into()));
    visitor.headers.push(("accept".into(), "text/html".into()));
    let page = visitor.get(&app, &unknown_game).await;
    page.is(404);
    assert!(page.text.contains("Nicht gefunden"), "{}", page.text);
    // ...and is offered to log in and come back: a draft or a private game is "not
    // found" only until its host or player signs in.
    let next = unknown_game.replace('/', "%2F");
    assert!(
        page.text
            .contains(&format!("id=\"error-login\" href=\"/login?next={next}\"")),
        "{}",
        page.text
    );
    // So is an English browser (the page is told again for the link alone).
    let mut plain = Browser::default();
    plain.headers.push(("accept".into(), "text/html".into()));
    let page = plain.get(&app, &unknown_game).await;
    page.is(404);
    assert!(page.text.contains("id=\"error-login\""), "{}", page.text);
}

#[tokio::test]
async fn a_refused_code_leaves_a_way_to_a_new_one() {
    let app = web_app(Options::default());
    let mut browser = Browser::default();
    browser.get(&app, "/login").await.is(200);
    let form = browser
        .post(&app, "/login", &[("email", "ann@example.org")])
        .await;
    form.is(200);
    let at = form.text.find("name=\"challenge_id\" value=\"").unwrap() + 27;
    let challenge: String = form.text[at..].chars().take_while(|c| *c != '"').collect();
    let code = app.login_code("ann@example.org").await;
    let wrong = if code.starts_with('1') { "2" } else { "1" }.repeat(code.len());
    let refused = browser
        .post(
            &app,
            "/login/code",
            &[
                ("challenge_id", challenge.as_str()),
                ("code", wrong.as_str()),
            ],
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    assert!(refused.text.contains("name=\"code\""), "{}", refused.text);
    assert!(
        refused.text.contains("<a id=\"new-code\" href=\"/login\">"),
        "{}",
        refused.text
    );
    let again = browser.get(&app, "/login").await;
    again.is(200);
    assert!(again.text.contains("name=\"email\""), "{}", again.text);
}

#[tokio::test]
async fn every_page_has_the_csp_and_no_inline_script() {
    let app = web_app(Options::default());
    let mut browser = Browser::default();
    for uri in ["/", "/login"] {
        let page = browser.get(&app, uri).await;
        page.is(200);
        assert_eq!(
            page.headers["content-security-policy"].to_str().unwrap(),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        // The only script is the file; no inline script or handler attribute.
        assert_eq!(page.text.matches("<script").count(), 1, "{}", page.text);
        assert!(
            page.text.contains("<script src=\"/static/app.js?v="),
            "{}",
            page.text
        );
        assert!(!page.text.contains(" onclick="));
        assert!(!page.text.contains(" style="));
        assert!(page.text.contains("<main id=\"main\""));
    }
    // The pages link each asset under its content's version, which a browser may keep
    // for good; any other address of it (a page from before an upgrade) is revalidated.
    let page = browser.get(&app, "/").await;
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let marker = format!("/static/{file}?v=");
        let at = page.text.find(&marker).unwrap() + marker.len();
        let version: String = page.text[at..].chars().take_while(|c| *c != '"').collect();
        let linked = browser
            .get(&app, &format!("/static/{file}?v={version}"))
            .await;
        linked.is(200);
        assert!(
            linked.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert_eq!(
            linked.headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        use sha2::Digest;
        let digest = sha2::Sha256::digest(linked.text.as_bytes());
        let expected: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(version, expected, "{file}: the version is its content's");
        for stale in [format!("/static/{file}"), format!("/static/{file}?v=0123")] {
            let answer = browser.get(&app, &stale).await;
            answer.is(200);
            assert_eq!(answer.headers["cache-control"], "no-cache", "{stale}");
        }
    }
    browser.get(&app, "/static/../Cargo.toml").await.is(404);
}

#[tokio::test]
async fn the_session_cookie_is_httponly_lax_and_secure_only_behind_tls() {
    let proxy: SocketAddr = "10.0.0.7:4000".parse().unwrap();
    let app = web_app(Options {
        trusted_proxies: TrustedProxies::parse("10.0.0.7").unwrap(),
        ..Options::default()
    });
    // The signed-out CSRF cookie is `Lax` too: a `Strict` one is not sent when a visitor
    // follows a link from another site, who was then given a new one, and a login form
    // open in another tab was refused as stale.
    let signed_out = app.get("/login", None).await;
    let csrf = set_cookie(&signed_out, "galaxy_csrf").unwrap();
    assert!(csrf.contains("; HttpOnly"), "{csrf}");
    assert!(csrf.contains("; SameSite=Lax"), "{csrf}");
    let mut plain = Browser::default();
    let done = login(&app, &mut plain, "plain@example.org").await;
    let cookie = set_cookie(&done, "galaxy_session").unwrap();
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    // Kept as long as the session lives (the default 30 days).
    assert!(
        cookie.contains(&format!("; Max-Age={}", 30 * 24 * 3600)),
        "{cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("galaxy_session=");
    // The cookie is a session of the API's sessions: it works as a bearer token too.
    app.get("/api/v1/user/me", Some(token)).await.is(200);

    let mut tls = Browser {
        client: Some(proxy),
        headers: vec![("x-forwarded-proto".into(), "https".into())],
        ..Browser::default()
    };
    let done = login(&app, &mut tls, "tls@example.org").await;
    let cookie = set_cookie(&done, "galaxy_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The same header from a client that is not a trusted proxy means nothing.
    let mut spoof = Browser {
        client: Some("192.0.2.9:4000".parse().unwrap()),
        headers: vec![("x-forwarded-proto".into(), "https".into())],
        ..Browser::default()
    };
    let done = login(&app, &mut spoof, "spoof@example.org").await;
    assert!(
        !set_cookie(&done, "galaxy_session")
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_change_nothing() {
    let app = web_app(Options::default());
    let mut alice = signed_in(&app, "alice@example.org").await;
    let mut mallory = signed_in(&app, "mallory@example.org").await;
    let before = app.snapshot();
    let fields = [
        ("name", "Forged game"),
        ("min_players", "2"),
        ("max_players", "4"),
        ("enrollment_deadline", "2030-02-01T00:00"),
        ("turn_schedule", "0 18 * * 1"),
        ("visibility", "public"),
    ];
    // No token, an empty one, another session's token.
    let none = alice.post_raw(&app, "/games", &fields).await;
    none.is(403);
    let mut with_empty = vec![("csrf", "")];
    with_empty.extend_from_slice(&fields);
    alice.post_raw(&app, "/games", &with_empty).await.is(403);
    let theirs = mallory.csrf.clone().unwrap();
    let mut with_theirs = vec![("csrf", theirs.as_str())];
    with_theirs.extend_from_slice(&fields);
    alice.post_raw(&app, "/games", &with_theirs).await.is(403);
    // Logging out and the login form need one too.
    alice.post_raw(&app, "/logout", &[]).await.is(403);
    let mut stranger = Browser::default();
    stranger
        .post_raw(
            &app,
            "/login",
            &[
                ("email", "x@example.org"),
                ("csrf", "0123456789abcdef0123456789abcdef"),
            ],
        )
        .await
        .is(403);
    assert_eq!(before, app.snapshot(), "a refused form changed the stores");
    // With the token it works.
    let created = alice.post(&app, "/games", &fields).await;
    created.is(303);
    mallory.get(&app, "/").await.is(200);
}

#[tokio::test]
async fn hostile_names_are_escaped_everywhere() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let hostile = "<script>alert(1)</script>\"'&";
    let game = app.create_game(&host, hostile, 2, 4).await;
    app.game_action(&host, &game, "open", 200).await;
    let patched = app
        .call(
            Method::PATCH,
            "/api/v1/user/me",
            Some(&host.token),
            Some(json!({ "display_name": "<img src=x onerror=alert(2)>" })),
        )
        .await;
    let player = app.login("player@example.org").await;
    let race = "<b>Zorg</b>";
    let applied = app
        .call(
            Method::POST,
            &format!("/api/v1/user/games/{game}/applications"),
            Some(&player.token),
            Some(json!({ "race_name": race })),
        )
        .await;
    app.apply(&player, &game, "O'Zorg").await;
    let mut browser = signed_in(&app, "host@example.org").await;
    let mut pages = vec![
        browser.get(&app, "/").await,
        browser.get(&app, &format!("/games/{game}")).await,
        browser.get(&app, "/my").await,
    ];
    pages.push(browser.get(&app, "/account").await);
    for page in &pages {
        page.is(200);
        assert!(!page.text.contains("<script>alert"), "{}", page.text);
        assert!(!page.text.contains("<img src=x"), "{}", page.text);
        assert!(!page.text.contains("<b>Zorg"), "{}", page.text);
    }
    assert!(
        pages[1]
            .text
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;")
    );
    patched.is(200);
    assert!(pages[3].text.contains("&lt;img src=x onerror=alert(2)&gt;"));
    // Race names cannot hold markup (the service refuses it); what they can hold, an
    // apostrophe, is shown as typed inside double-quoted markup.
    applied.is(422);
    assert!(pages[1].text.contains("O'Zorg"), "{}", pages[1].text);
}

#[tokio::test]
async fn admin_pages_need_the_admin_role() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Admin target", 2, 4).await;
    let mut player = signed_in(&app, "player@example.org").await;
    let mut admin = signed_in(&app, ADMIN_EMAIL).await;
    let mut stranger = Browser::default();
    for uri in [
        "/admin",
        "/admin/users",
        "/admin/games",
        "/admin/health",
        "/admin/mail",
    ] {
        player.get(&app, uri).await.is(403);
        let away = stranger.get(&app, uri).await;
        away.is(303);
        let back = format!("/login?next={}", uri.replace('/', "%2F"));
        assert_eq!(away.headers["location"], back.as_str());
        admin.get(&app, uri).await.is(200);
    }
    player.get(&app, "/my").await.is(200);
    let before = app.snapshot();
    for action in [
        "pause",
        "resume",
        "stop",
        "force-next-turn",
        "retry-start",
        "recreate-engine",
    ] {
        player
            .post(&app, &format!("/admin/games/{game}/{action}"), &[])
            .await
            .is(403);
    }
    player
        .post(
            &app,
            &format!("/admin/users/{}/block", host.user_id),
            &[("permanent", "1")],
        )
        .await
        .is(403);
    assert_eq!(before, app.snapshot());
    // The admin blocks the host from the page; the host's pages log them out.
    admin.get(&app, "/admin/users").await.is(200);
    admin
        .post(
            &app,
            &format!("/admin/users/{}/block", host.user_id),
            &[("permanent", "1")],
        )
        .await
        .is(303);
    // The admin pages speak the admin's language.
    admin.get(&app, "/account").await.is(200);
    admin
        .post(
            &app,
            "/account",
            &[("display_name", "Marta"), ("locale", "de-AT")],
        )
        .await
        .is(200);
    let german = admin.get(&app, "/admin/health").await;
    german.is(200);
    assert!(german.text.contains("lang=\"de\""));
    assert!(german.text.contains("Laufzeit-Einträge"), "{}", german.text);
    // Statuses in words of the page's language, never the stored values.
    let users = admin.get(&app, "/admin/users").await;
    assert!(
        users
            .text
            .contains("data-status=\"blocked_permanently\">dauerhaft gesperrt<"),
        "{}",
        users.text
    );
    assert!(users.text.contains(">aktiv<"), "{}", users.text);
    let games = admin.get(&app, "/admin/games").await;
    assert!(
        games
            .text
            .contains("<option value=\"enrollment_open\">Anmeldung offen</option>"),
        "{}",
        games.text
    );
    let mail = admin.get(&app, "/admin/mail").await;
    assert!(
        mail.text
            .contains("<option value=\"dead\">aufgegeben</option>"),
        "{}",
        mail.text
    );
    // A permanent block revokes every session.
    app.get("/api/v1/user/me", Some(&host.token)).await.is(401);
}

/// Notification dead letters beyond the first hundred are reached page by page.
/// Raises `count` game-cancelled notifications for `user` and lets every route of them
/// (push and e-mail) die: the admin mail page's dead letters. Returns how many died.
async fn dead_letters(app: &TestApp, user: &Login, count: usize) -> usize {
    use galaxy_core::domain::lease::{ClaimRequest, Finish};
    use galaxy_core::domain::notification::NotificationKind;
    use galaxy_core::ports::{NewNotification, NotificationStore, Notifier, RouteNext};
    for n in 0..count {
        app.state
            .notifications
            .notify(NewNotification {
                kind: NotificationKind::GameCancelled,
                idempotency_key: format!("dead:{n}"),
                recipients: vec![galaxy_core::domain::UserId::parse(&user.user_id).unwrap()],
                game_id: None,
                payload: json!({"game_name": format!("Dead {n}")}),
            })
            .await
            .unwrap();
    }
    let token = galaxy_core::domain::LeaseToken::from_uuid(uuid::Uuid::now_v7());
    let claim = ClaimRequest {
        token,
        now: app.state.clock.now() + chrono::TimeDelta::seconds(1),
        lease: chrono::TimeDelta::minutes(1),
        limit: 1000,
    };
    let routes = app.stores.notifications.claim_routes(&claim).await.unwrap();
    for route in &routes {
        let finish = Finish {
            id: route.id,
            token,
            outcome: RouteNext::DeadLetter {
                error: "gone".into(),
            },
            at: claim.now,
        };
        app.stores
            .notifications
            .finish_routes(std::slice::from_ref(&finish))
            .await
            .unwrap();
    }
    routes.len()
}

/// A runtime record of `game` made at `at`, and one health event of `kind` then.
async fn record_with_event(
    app: &TestApp,
    game: galaxy_core::domain::GameId,
    kind: galaxy_core::domain::health::HealthEventKind,
    at: galaxy_core::domain::Timestamp,
) {
    use galaxy_core::domain::game::EngineName;
    use galaxy_core::domain::health::HealthEvent;
    use galaxy_core::domain::runtime::RuntimeRecord;
    use galaxy_core::ports::{HealthEventStore, RuntimeRecordStore};
    let record = RuntimeRecord::new(game, EngineName::reference(), at);
    app.stores.runtime.insert_record(&record).await.unwrap();
    let event = HealthEvent {
        id: galaxy_core::domain::HealthEventId::from_uuid(uuid::Uuid::now_v7()),
        game_id: game,
        kind,
        detail: json!({}),
        occurred_at: at,
    };
    app.stores
        .runtime
        .append_health_event(&event)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_admins_mail_page_pages_the_dead_letters() {
    let app = web_app(Options::default());
    let player = app.login("player@example.org").await;
    let died = dead_letters(&app, &player, 101).await;
    assert!(died >= 101, "{died}");
    let mut admin = signed_in(&app, ADMIN_EMAIL).await;
    let rows = |text: &str| text.matches("/admin/dead-letters/").count();
    let marker = "&amp;dead_after=";
    let (mut seen, mut pages, mut page) = (0, 0, "/admin/mail".to_owned());
    loop {
        let answer = admin.get(&app, &page).await;
        answer.is(200);
        let on_page = rows(&answer.text);
        assert!(on_page <= 100, "{on_page} on page {pages}");
        seen += on_page;
        pages += 1;
        let Some(at) = answer.text.find(marker) else {
            break;
        };
        let start = answer.text[..at].rfind("href=\"").unwrap() + 6;
        let end = at + answer.text[at..].find('"').unwrap();
        page = answer.text[start..end].replace("&amp;", "&");
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(seen, died, "every dead letter, once");
    assert_eq!(pages, died.div_ceil(100));
}

/// The health and mail pages name games and recipients, and say statuses, event kinds
/// and channels in the admin's words (German here), not as stored ids and snake_case
/// names; each mail shows its subject.
#[tokio::test]
async fn the_health_and_mail_pages_say_what_they_show_in_words() {
    use galaxy_core::domain::GameId;
    use galaxy_core::domain::health::HealthEventKind;
    use galaxy_core::domain::lease::ClaimRequest;
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = GameId::parse(&app.create_game(&host, "Named game", 2, 4).await).unwrap();
    let now = app.state.clock.now();
    record_with_event(&app, game, HealthEventKind::TurnFailed, now).await;
    assert!(dead_letters(&app, &host, 1).await > 0);

    let mut admin = Browser::default();
    admin.headers.push(("accept-language".into(), "de".into()));
    login(&app, &mut admin, ADMIN_EMAIL).await.is(303);
    let health = admin.get(&app, "/admin/health").await;
    health.is(200);
    for shown in [
        ">Named game</a>",
        ">wartend</span>",
        ">Zug fehlgeschlagen</span>",
    ] {
        assert!(health.text.contains(shown), "{shown}: {}", health.text);
    }
    for raw in [">pending<", ">turn_failed<", &format!(">{game}<")] {
        assert!(!health.text.contains(raw), "{raw}: {}", health.text);
    }
    let mail = admin.get(&app, "/admin/mail").await;
    mail.is(200);
    let (deliveries, dead) = mail
        .text
        .split_once("Unzustellbare Benachrichtigungen")
        .unwrap();
    assert!(
        deliveries.contains("Your Galaxy login code"),
        "{deliveries}"
    );
    assert!(deliveries.contains(">Betreff<"), "{deliveries}");
    assert!(dead.contains(">host@example.org<"), "{dead}");
    assert!(dead.contains(">E-Mail<"), "{dead}");
    assert!(!dead.contains(&host.user_id), "{dead}");
    // No mail is dead yet: nothing to retry, no button.
    assert!(
        !mail.text.contains("/admin/mail/retry-dead"),
        "{}",
        mail.text
    );

    // Every dead mail is queued again from the page (after a relay outage).
    let mail_id = {
        use galaxy_core::domain::mail::MailDelivery;
        use galaxy_core::ports::{MailNext, MailStore};
        let queued = app
            .stores
            .mail
            .list_mail(
                None,
                &galaxy_core::domain::page::PageRequest::first(1).unwrap(),
            )
            .await
            .unwrap()
            .items
            .remove(0);
        let dead = MailDelivery::new(
            galaxy_core::domain::MailId::from_uuid(uuid::Uuid::now_v7()),
            queued.mail,
            now,
        );
        let dead = galaxy_core::domain::mail::MailDelivery {
            mail: galaxy_core::domain::mail::OutgoingMail {
                idempotency_key: "dead-mail".to_owned(),
                kind: "game_cancelled".to_owned(),
                ..dead.mail
            },
            ..dead
        };
        app.stores.mail.enqueue_mail(&dead).await.unwrap();
        let token = galaxy_core::domain::LeaseToken::from_uuid(uuid::Uuid::now_v7());
        let claim = ClaimRequest {
            token,
            now: now + chrono::TimeDelta::seconds(1),
            lease: chrono::TimeDelta::minutes(1),
            limit: 100,
        };
        for claimed in app.stores.mail.claim_mail(&claim).await.unwrap() {
            let next = if claimed.id == dead.id {
                MailNext::Dead
            } else {
                MailNext::Release(claim.now)
            };
            app.stores
                .mail
                .finish_mail_attempt(claimed.id, token, None, next, claim.now)
                .await
                .unwrap();
        }
        dead.id
    };
    let page = admin.get(&app, "/admin/mail?status=dead").await;
    assert!(
        page.text.contains("action=\"/admin/mail/retry-dead\""),
        "{}",
        page.text
    );
    let done = admin.post(&app, "/admin/mail/retry-dead", &[]).await;
    done.is(303);
    let retried = app.stores.mail.get_mail(mail_id).await.unwrap();
    assert_eq!(
        retried.status,
        galaxy_core::domain::mail::MailStatus::Pending
    );
    // The page it leads to says how many, in the admin's language, and offers no second
    // retry with nothing dead left.
    let location = done.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(location, "/admin/mail?retried=1");
    let after = admin.get(&app, &location).await;
    after.is(200);
    assert!(
        after
            .text
            .contains("Erneut eingereihte aufgegebene Mails: 1."),
        "{}",
        after.text
    );
    assert!(
        !after.text.contains("/admin/mail/retry-dead"),
        "{}",
        after.text
    );
}

#[tokio::test]
async fn create_game_shows_the_apis_validation_message() {
    let app = web_app(Options::default());
    let host = app.login("api@example.org").await;
    let mut body = game_body("Too few", 1, 4);
    let api = app
        .call(
            Method::POST,
            "/api/v1/user/games",
            Some(&host.token),
            Some(body.take()),
        )
        .await;
    api.is(422);
    let message = api.json["error"]["message"].as_str().unwrap().to_owned();
    let mut browser = signed_in(&app, "web@example.org").await;
    browser.get(&app, "/games/new").await.is(200);
    let page = browser
        .post(
            &app,
            "/games",
            &[
                ("name", "Too few"),
                ("min_players", "1"),
                ("max_players", "4"),
                ("enrollment_deadline", "2030-02-01T00:00"),
                ("turn_schedule", "0 18 * * 1,3,5"),
                ("visibility", "public"),
            ],
        )
        .await;
    page.is(422);
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(
        page.text.contains(&escaped),
        "{message} not in {}",
        page.text
    );
    // The form keeps what was typed.
    assert!(page.text.contains("value=\"Too few\""));
    // Over the limit of hosted games (5 live at once): refused, the form kept too.
    let web = app.login("web@example.org").await;
    for n in 0..5 {
        app.create_game(&web, &format!("Hosted {n}"), 2, 4).await;
    }
    let over = browser
        .post(
            &app,
            "/games",
            &[
                ("name", "One too many"),
                ("min_players", "2"),
                ("max_players", "4"),
                ("enrollment_deadline", "2030-02-01T00:00"),
                ("turn_schedule", "0 18 * * 1,3,5"),
                ("visibility", "public"),
            ],
        )
        .await;
    over.is(403);
    assert!(
        over.text.contains("value=\"One too many\""),
        "{}",
        over.text
    );
}

#[tokio::test]
async fn host_and_players_enrol_through_the_pages() {
    let app = web_app(Options::default());
    let mut host = signed_in(&app, "host@example.org").await;
    host.get(&app, "/games/new").await.is(200);
    let created = host
        .post(
            &app,
            "/games",
            &[
                ("name", "Web enrolment"),
                ("min_players", "2"),
                ("max_players", "3"),
                ("enrollment_deadline", "2030-02-01T00:00"),
                ("turn_schedule", "0 18 * * 1,3,5"),
                ("visibility", "public"),
                ("reveal_reports_after_finish", "1"),
            ],
        )
        .await;
    created.is(303);
    let game_uri = created.headers["location"].to_str().unwrap().to_owned();
    host.get(&app, &game_uri).await.is(200);
    host.post(&app, &format!("{game_uri}/host/open"), &[])
        .await
        .is(303);
    let lobby = Browser::default().get(&app, "/?q=enrol").await;
    assert!(lobby.text.contains("Web enrolment"), "{}", lobby.text);
    let none = Browser::default().get(&app, "/?q=nomatch").await;
    assert!(!none.text.contains("Web enrolment"));
    // The games in play with open seats: none here, an enrolling game is not one.
    let seats = Browser::default().get(&app, "/?seats=1").await;
    seats.is(200);
    assert!(
        seats.text.contains("Seats open in games in play"),
        "{}",
        seats.text
    );
    assert!(!seats.text.contains("Web enrolment"), "{}", seats.text);
    for (email, race) in [
        ("p1@example.org", "Vulpeculans"),
        ("p2@example.org", "Lyrans"),
    ] {
        let mut player = signed_in(&app, email).await;
        player.get(&app, &game_uri).await.is(200);
        player
            .post(&app, &format!("{game_uri}/apply"), &[("race_name", race)])
            .await
            .is(303);
        // The page shows the player their pending application (with a withdraw button)
        // instead of the apply form; applying twice anyway shows the service's conflict.
        let page = player.get(&app, &game_uri).await;
        assert!(
            page.text.contains("id=\"own-application\""),
            "{}",
            page.text
        );
        assert!(
            page.text.contains(&format!(
                "{race} <span class=\"badge\" data-status=\"pending\">pending<"
            )),
            "{}",
            page.text
        );
        assert!(page.text.contains(&format!("{game_uri}/withdraw\"")));
        assert!(!page.text.contains(&format!("{game_uri}/apply\"")));
        let again = player
            .post(&app, &format!("{game_uri}/apply"), &[("race_name", race)])
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    }
    // A name another player holds: the page again, the name kept, the reason shown.
    let mut late = signed_in(&app, "p3@example.org").await;
    late.get(&app, &game_uri).await;
    let taken = late
        .post(
            &app,
            &format!("{game_uri}/apply"),
            &[("race_name", "lyrans")],
        )
        .await;
    taken.is(409);
    assert!(
        taken.text.contains("id=\"apply-refused\" data-answer=\"\""),
        "{}",
        taken.text
    );
    assert!(taken.text.contains("value=\"lyrans\""), "{}", taken.text);
    let page = host.get(&app, &game_uri).await;
    for race in ["Vulpeculans", "Lyrans"] {
        assert!(page.text.contains(race));
    }
    // Each decision's button names its application for a screen reader.
    for race in ["Vulpeculans", "Lyrans"] {
        for (label, action) in [("Approve", "approve"), ("Reject", "reject")] {
            let named = format!("aria-label=\"{label}: {race}\">{label}<");
            assert!(
                page.text.contains(&named),
                "{named} ({action}): {}",
                page.text
            );
        }
    }
    // The host may play in their own game: the apply form is theirs too.
    assert!(
        page.text.contains(&format!("{game_uri}/apply\"")),
        "{}",
        page.text
    );
    // An admin manages any game from its page, as the API lets them: the host's
    // actions and the applications' decisions (one approved here).
    let mut admin = signed_in(&app, ADMIN_EMAIL).await;
    let page = admin.get(&app, &game_uri).await;
    assert!(
        page.text.contains(&format!("{game_uri}/host/close\"")),
        "{}",
        page.text
    );
    let at = page.text.find("/approve\"").unwrap();
    let start = page.text[..at].rfind("action=\"").unwrap() + 8;
    let action = page.text[start..at + 8].to_owned();
    admin.post(&app, &action, &[]).await.is(303);
    // Approve every pending application from the host's page.
    loop {
        let page = host.get(&app, &game_uri).await;
        let Some(at) = page.text.find("/approve\"") else {
            break;
        };
        let start = page.text[..at].rfind("action=\"").unwrap() + 8;
        let action = page.text[start..at + 8].to_owned();
        host.post(&app, &action, &[]).await.is(303);
    }
    let page = host.get(&app, &game_uri).await;
    assert!(page.text.contains("(2 / 3)"), "{}", page.text);
    // An approved player has nothing to withdraw; a signed-in stranger may apply.
    let mut p1 = signed_in(&app, "p1@example.org").await;
    let page = p1.get(&app, &game_uri).await;
    assert!(
        page.text
            .contains("<span class=\"badge\" data-status=\"approved\">approved<"),
        "{}",
        page.text
    );
    assert!(!page.text.contains(&format!("{game_uri}/withdraw\"")));
    let mut stranger = signed_in(&app, "stranger@example.org").await;
    let page = stranger.get(&app, &game_uri).await;
    assert!(page.text.contains(&format!("{game_uri}/apply\"")));
    assert!(!page.text.contains(&format!("{game_uri}/withdraw\"")));
    host.post(&app, &format!("{game_uri}/host/close"), &[])
        .await
        .is(303);
    let page = host.get(&app, &game_uri).await;
    assert!(
        page.text
            .contains("data-status=\"enrollment_closed\">enrollment closed<")
    );
    assert!(page.text.contains("<dd>Public</dd>") && page.text.contains("<dd>yes</dd>"));
    // In German, statuses and settings are German too, never the stored words.
    host.post(
        &app,
        "/account",
        &[("display_name", "Gastgeberin"), ("locale", "de")],
    )
    .await
    .is(200);
    let page = host.get(&app, &game_uri).await;
    assert!(
        page.text.contains(">Anmeldung geschlossen<"),
        "{}",
        page.text
    );
    assert!(page.text.contains("<dd>Öffentlich</dd>"), "{}", page.text);
    assert!(
        page.text.contains("data-status=\"approved\">angenommen<"),
        "{}",
        page.text
    );
    for stored in [
        ">enrollment_closed<",
        ">public<",
        ">true<",
        ">false<",
        ">approved<",
    ] {
        assert!(!page.text.contains(stored), "{stored}: {}", page.text);
    }
    // My games puts the closed game first for its host, with a badge.
    let mine = host.get(&app, "/my").await;
    assert!(mine.text.contains("Web enrolment"));
    assert!(mine.text.contains("badge due"), "{}", mine.text);
}

/// A player at their active-games limit gets the game page again, with the race name
/// they typed and the reason, as for a name taken (not an error page that loses it).
#[tokio::test]
async fn an_application_over_the_active_games_limit_is_answered_on_the_page() {
    let app = web_app(Options::default());
    let hosts = [
        app.login("host@example.org").await,
        app.login("host2@example.org").await,
    ];
    let player = app.login("busy@example.org").await;
    let mut games = Vec::new();
    for n in 0..6 {
        let host = &hosts[n % 2];
        let game = app.create_game(host, &format!("Busy {n}"), 2, 4).await;
        app.game_action(host, &game, "open", 200).await;
        games.push(game);
    }
    for (n, game) in games[..5].iter().enumerate() {
        app.apply(&player, game, &format!("Busy Race {n}")).await;
    }
    let mut browser = signed_in(&app, "busy@example.org").await;
    let game_uri = format!("/games/{}", games[5]);
    browser.get(&app, &game_uri).await.is(200);
    let page = browser
        .post(
            &app,
            &format!("{game_uri}/apply"),
            &[("race_name", "Sixth")],
        )
        .await;
    page.is(403);
    assert!(
        page.text.contains("id=\"apply-refused\" data-answer=\"\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("value=\"Sixth\""), "{}", page.text);
    assert!(page.text.contains("the limit is 5"), "{}", page.text);
}

/// The mail forms of the game page refuse what the API refuses: a report delivery that
/// is neither choice, and preferences or an orders address in a game the visitor does
/// not play in (the browser test plays them through).
#[tokio::test]
async fn the_mail_forms_refuse_what_the_api_refuses() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Mail forms", 2, 4).await;
    app.game_action(&host, &game, "open", 200).await;
    let mut stranger = signed_in(&app, "stranger@example.org").await;
    stranger.get(&app, &format!("/games/{game}")).await.is(200);
    let bogus = stranger
        .post(
            &app,
            &format!("/games/{game}/report-delivery"),
            &[("as", "carrier pigeon")],
        )
        .await;
    bogus.is(400);
    assert!(bogus.text.contains("role=\"alert\""), "{}", bogus.text);
    for (form, fields) in [
        ("report-delivery", vec![("as", "body")]),
        ("orders-address/rotate", vec![]),
        ("preferences", vec![("reminders", "on")]),
    ] {
        let refused = stranger
            .post(&app, &format!("/games/{game}/{form}"), &fields)
            .await;
        refused.is(404);
    }
}

#[tokio::test]
async fn the_account_page_changes_the_profile_and_logs_out_everywhere() {
    let app = web_app(Options::default());
    let mut first = signed_in(&app, "me@example.org").await;
    let mut second = signed_in(&app, "me@example.org").await;
    first.get(&app, "/account").await.is(200);
    let saved = first
        .post(
            &app,
            "/account",
            &[
                ("display_name", "Ada"),
                ("locale", "de"),
                ("email_notifications", "1"),
            ],
        )
        .await;
    saved.is(200);
    assert!(saved.text.contains("lang=\"de\""));
    assert!(saved.text.contains("Gespeichert."));
    let bad = first
        .post(&app, "/account", &[("display_name", ""), ("locale", "de")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    // A refused change shows what was typed (here a locale that does not exist), not the
    // stored profile.
    let typo = first
        .post(
            &app,
            "/account",
            &[("display_name", "Ada Lovelace"), ("locale", "xx_!!")],
        )
        .await;
    assert_eq!(
        typo.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        typo.text
    );
    assert!(
        typo.text.contains("value=\"Ada Lovelace\""),
        "{}",
        typo.text
    );
    assert!(typo.text.contains("value=\"xx_!!\""), "{}", typo.text);
    second.get(&app, "/account").await.is(200);
    second
        .post(&app, "/account/logout-everywhere", &[])
        .await
        .is(303);
    // A form of a page loaded before the session ended asks to sign in again and drops
    // the dead cookie, rather than calling the form stale (403); so does logging out.
    let mut lapsed = first.clone();
    let posted = first
        .post(
            &app,
            "/account",
            &[("display_name", "Ada"), ("locale", "de")],
        )
        .await;
    let cleared = |response: &TestResponse| {
        response
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("galaxy_session=;"))
    };
    posted.is(303);
    assert_eq!(posted.headers["location"], "/login?next=%2Faccount");
    assert!(cleared(&posted), "{:?}", posted.headers);
    let logout = lapsed.post(&app, "/logout", &[]).await;
    logout.is(303);
    assert!(cleared(&logout), "{:?}", logout.headers);
    let away = first.get(&app, "/account").await;
    away.is(303);
    assert_eq!(away.headers["location"], "/login?next=%2Faccount");
}

/// Orders sent from a page whose session ended since it was loaded are not lost behind
/// the login: a page of their own gives them back (escaped), says nothing was sent,
/// links to the login that returns to the game, and drops the dead cookie.
#[tokio::test]
async fn orders_sent_with_a_lapsed_session_come_back_on_their_own_page() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Lapsed orders", 2, 4).await;
    app.game_action(&host, &game, "open", 200).await;
    let mut player = signed_in(&app, "player@example.org").await;
    player.get(&app, &format!("/games/{game}")).await.is(200);
    let mut other_tab = player.clone();
    other_tab
        .post(&app, "/account/logout-everywhere", &[])
        .await
        .is(303);
    let orders = "build_industry 4\nmove 3 7 <b>&</b>";
    let uri = format!("/games/{game}/orders");
    let page = player
        .post(
            &app,
            &uri,
            &[("turn", "1"), ("race", "Aldebarans"), ("orders", orders)],
        )
        .await;
    page.is(401);
    assert!(page.text.contains("id=\"lapsed\""), "{}", page.text);
    assert!(
        page.text
            .contains("build_industry 4\nmove 3 7 &lt;b&gt;&amp;&lt;/b&gt;</textarea>"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("<b>&</b>"), "escaped");
    let login = format!("href=\"/login?next=%2Fgames%2F{game}\"");
    assert!(page.text.contains(&login), "{}", page.text);
    assert!(
        page.text.contains(&format!(
            "data-draft=\"/games/{game}/turn/1/race/Aldebarans\""
        )),
        "{}",
        page.text
    );
    let cleared = page
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("galaxy_session=;"));
    assert!(cleared, "{:?}", page.headers);
    // In German for a German browser.
    let mut german = signed_in(&app, "spieler@example.org").await;
    german.headers.push(("accept-language".into(), "de".into()));
    german.get(&app, &format!("/games/{game}")).await.is(200);
    let mut other_tab = german.clone();
    other_tab
        .post(&app, "/account/logout-everywhere", &[])
        .await
        .is(303);
    let page = german
        .post(&app, &uri, &[("turn", "1"), ("orders", "x")])
        .await;
    page.is(401);
    assert!(
        page.text.contains("Deine Sitzung ist abgelaufen"),
        "{}",
        page.text
    );
    // The browser dropped the session's cookie (it expired with the session, or a
    // sign-out in another tab of this browser removed it): the form still carries the
    // session's token, and the browser says this site posted it.
    let mut same_browser = signed_in(&app, "dropped@example.org").await;
    same_browser
        .get(&app, &format!("/games/{game}"))
        .await
        .is(200);
    let mut other_tab = same_browser.clone();
    other_tab.post(&app, "/logout", &[]).await.is(303);
    same_browser.cookies = other_tab.cookies.clone();
    assert!(
        same_browser
            .cookies
            .iter()
            .all(|(k, _)| k != "galaxy_session"),
        "{:?}",
        same_browser.cookies
    );
    let mut from_here = same_browser.clone();
    from_here
        .headers
        .push(("sec-fetch-site".into(), "same-origin".into()));
    let page = from_here
        .post(&app, &uri, &[("turn", "1"), ("orders", orders)])
        .await;
    page.is(401);
    assert!(page.text.contains("id=\"lapsed-orders\""), "{}", page.text);
    // A message typed meanwhile comes back the same way (its text escaped, to copy).
    let message = from_here
        .post(
            &app,
            &format!("/games/{game}/messages"),
            &[("to", "*"), ("text", "Meet at <Vega>?")],
        )
        .await;
    message.is(401);
    assert!(
        message
            .text
            .contains("id=\"lapsed-message\" readonly rows=\"6\" data-answer=\"\">Meet at &lt;Vega&gt;?</textarea>"),
        "{}",
        message.text
    );
    // Without the browser's word that this site posted it (another site's form, or a
    // browser too old to say), a token with no session is refused as stale.
    let mut elsewhere = same_browser.clone();
    elsewhere
        .headers
        .push(("sec-fetch-site".into(), "cross-site".into()));
    let refused = elsewhere
        .post(&app, &uri, &[("turn", "1"), ("orders", orders)])
        .await;
    refused.is(403);
    same_browser
        .post(&app, &uri, &[("turn", "1"), ("orders", orders)])
        .await
        .is(403);
    // A form that was never this visitor's (a wrong token, no session lapsed) is still
    // refused as stale.
    let stranger = player
        .post(&app, &uri, &[("turn", "1"), ("orders", orders)])
        .await;
    stranger.is(403);
}

/// Orders and a message typed on a page of an earlier session, sent after signing in
/// again in another tab of the same browser: the token is the earlier session's, so
/// nothing is done, but the text comes back on the game page to check and send again,
/// rather than a 403 and an empty form. From another site it is still refused.
#[tokio::test]
async fn a_form_from_before_signing_in_again_comes_back_to_send_again() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Signed in again", 2, 4).await;
    app.game_action(&host, &game, "open", 200).await;
    let mut tab = signed_in(&app, "again@example.org").await;
    tab.headers
        .push(("sec-fetch-site".into(), "same-origin".into()));
    tab.get(&app, &format!("/games/{game}")).await.is(200);
    // Another tab signs out and in again: the browser holds the new session's cookie,
    // this tab's page still the old session's token.
    let mut other_tab = tab.clone();
    other_tab.post(&app, "/logout", &[]).await.is(303);
    let old_page_token = tab.csrf.clone();
    let again = signed_in(&app, "again@example.org").await;
    tab.cookies = again.cookies.clone();
    let orders = "build_industry 4\nmove 3 7 <b>&</b>";
    let uri = format!("/games/{game}/orders");
    let page = tab
        .post(&app, &uri, &[("turn", "1"), ("orders", orders)])
        .await;
    page.is(409);
    assert!(
        page.text.contains("before you signed in again"),
        "{}",
        page.text
    );
    assert!(
        page.text
            .contains("move 3 7 &lt;b&gt;&amp;&lt;/b&gt;</pre>"),
        "the game takes no orders yet: the text to copy; {}",
        page.text
    );
    assert!(
        page.headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("galaxy_session=;")),
        "the new session stays: {:?}",
        page.headers
    );
    // (The page that came back holds this session's token; the old tab's does not.)
    tab.csrf = old_page_token.clone();
    let message = tab
        .post(
            &app,
            &format!("/games/{game}/messages"),
            &[("to", "*"), ("text", "Meet at <Vega>?")],
        )
        .await;
    message.is(409);
    assert!(
        message.text.contains("before you signed in again"),
        "{}",
        message.text
    );
    assert!(
        message.text.contains("Meet at &lt;Vega&gt;?</textarea>"),
        "{}",
        message.text
    );
    // Sent again from the page that came back (this session's token), the message is
    // judged: the visitor plays no race here, so it is refused, its text kept again.
    let judged = tab
        .post(
            &app,
            &format!("/games/{game}/messages"),
            &[("to", "*"), ("text", "Meet at <Vega>?")],
        )
        .await;
    judged.is(404);
    assert!(
        !judged.text.contains("before you signed in again"),
        "{}",
        judged.text
    );
    assert!(
        judged.text.contains("Meet at &lt;Vega&gt;?</textarea>"),
        "{}",
        judged.text
    );
    tab.csrf = old_page_token;
    // The same post from another site is refused as ever.
    let mut elsewhere = tab.clone();
    elsewhere.headers = vec![("sec-fetch-site".into(), "cross-site".into())];
    elsewhere
        .post(&app, &uri, &[("turn", "1"), ("orders", orders)])
        .await
        .is(403);
    // Any other form of that page is refused as stale, not given back.
    tab.post(
        &app,
        &format!("/games/{game}/apply"),
        &[("race_name", "Vogons")],
    )
    .await
    .is(403);
}

/// The account page lists the player's race names; a registered one is released from
/// it once no live application uses it, and until then the page says why not.
#[tokio::test]
async fn race_names_are_listed_and_released_on_the_account_page() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Names", 2, 4).await;
    app.game_action(&host, &game, "open", 200).await;
    let ann = app.login("ann@example.org").await;
    let application = app.apply(&ann, &game, "Zorg Empire").await;
    let mut page = signed_in(&app, "ann@example.org").await;
    let account = page.get(&app, "/account").await;
    account.is(200);
    assert!(account.text.contains("Zorg Empire"), "{}", account.text);
    assert!(
        account.text.contains("claimed by an application"),
        "{}",
        account.text
    );
    assert!(
        !account.text.contains("/release\""),
        "a pending name has no release"
    );
    app.game_action(
        &host,
        &game,
        &format!("applications/{application}/approve"),
        200,
    )
    .await;
    let account = page.get(&app, "/account").await;
    assert!(account.text.contains("registered"), "{}", account.text);
    // (A race name is letters, digits, spaces, `-` and `'`: the browser encodes the
    // space of the form's action.)
    let action = "action=\"/account/race-names/Zorg Empire/release\"";
    assert!(account.text.contains(action), "{}", account.text);
    let release = "/account/race-names/Zorg%20Empire/release";
    // In use by the approved application of a game not over: it stays, the page says so.
    let refused = page.post(&app, release, &[]).await;
    refused.is(409);
    assert!(refused.text.contains("role=\"alert\""), "{}", refused.text);
    assert!(refused.text.contains("Zorg Empire"), "{}", refused.text);
    // The game is cancelled: the name is the player's to give up.
    app.game_action(&host, &game, "cancel", 200).await;
    let released = page.post(&app, release, &[]).await;
    released.is(200);
    assert!(
        released.text.contains("The race name is free again."),
        "{}",
        released.text
    );
    assert!(!released.text.contains("Zorg Empire"), "{}", released.text);
    let names = app.get("/api/v1/user/race-names", Some(&ann.token)).await;
    assert_eq!(
        names.json["items"],
        serde_json::json!([]),
        "free: no longer Ann's"
    );
}

#[tokio::test]
async fn login_codes_from_the_pages_share_the_apis_rate_limit() {
    let app = web_app(Options::default());
    let email = "limited@example.org";
    let mut statuses = Vec::new();
    let mut tasks = Vec::new();
    let mut browser = Browser::default();
    browser.get(&app, "/login").await.is(200);
    for _ in 0..8 {
        let mut b = browser.clone();
        let app = &app;
        tasks.push(async move { b.post(app, "/login", &[("email", email)]).await.status });
    }
    for status in futures::future::join_all(tasks).await {
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(ok + limited, 8, "{statuses:?}");
    assert!(
        ok <= 5,
        "at most the per-address limit gets a code: {statuses:?}"
    );
    assert!(limited >= 3, "{statuses:?}");
    // The API is limited for that address too now.
    let api = app
        .call(
            Method::POST,
            "/api/v1/public/auth/login-codes",
            None,
            Some(json!({ "email": email })),
        )
        .await;
    api.is(429);
    // The page says so and keeps the address typed.
    let page = browser.post(&app, "/login", &[("email", email)]).await;
    page.is(429);
    assert!(
        page.text.contains(&format!("value=\"{email}\"")),
        "{}",
        page.text
    );
}

/// The app's API and pages served on a real socket (a live stream is one long response),
/// with a push service of their own: the address, the push service to publish on, and
/// the token that begins the pages' shutdown.
async fn live_server(
    app: &TestApp,
    limits: galaxy_server::http::HttpLimits,
) -> (
    SocketAddr,
    std::sync::Arc<galaxy_core::service::push::PushService>,
    CancellationToken,
) {
    use galaxy_core::service::push::{PushConfig, PushService};
    use galaxy_ports::memory::MemoryPushLog;
    use galaxy_ports::system::SeededSecretGenerator;
    use std::sync::Arc;

    let push = Arc::new(PushService::new(
        app.clock.clone(),
        Arc::new(SeededSecretGenerator::new(11)),
        PushConfig::default(),
        Arc::new(MemoryPushLog::default()),
    ));
    let closing = CancellationToken::new();
    let router = app.router.clone().merge(web::router(
        app.state.clone(),
        Some(push.clone()),
        limits,
        closing.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    (addr, push, closing)
}

/// Opens a game's event stream as the holder of `token` and reads the response head.
async fn open_stream(addr: SocketAddr, token: &str, game: &str) -> (tokio::net::TcpStream, String) {
    open_stream_at(addr, token, &format!("/games/{game}/events"), "").await
}

/// Opens the event stream at `path` as the holder of `token`, with `headers` (whole
/// lines, each ending in CRLF), and reads the response head (and what came with it of
/// the body: a replay may follow the head at once).
async fn open_stream_at(
    addr: SocketAddr,
    token: &str,
    path: &str,
    headers: &str,
) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\ncookie: galaxy_session={token}\r\n{headers}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = String::new();
    let mut buffer = vec![0u8; 4096];
    while !head.contains("\r\n\r\n") {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(
            n > 0,
            "the connection closed before the response head: {head}"
        );
        head.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    (stream, head)
}

#[tokio::test]
async fn a_game_page_hears_its_push_events_by_server_sent_events() {
    use galaxy_core::domain::UserId;
    use tokio::io::AsyncReadExt;

    let app = TestApp::new();
    let limits = http_support::limits(Duration::from_millis(200));
    let (addr, push, closing) = live_server(&app, limits).await;
    let host = app.login("host@example.org").await;
    let other = app.login("other@example.org").await;
    let game = app.create_game(&host, "Live game", 2, 4).await;
    let elsewhere = app.create_game(&host, "Other game", 2, 4).await;
    // A draft is not the other user's to watch.
    let (_refused, head) = open_stream(addr, &other.token, &game).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    let (mut stream, seen) = open_stream(addr, &host.token, &game).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("content-type: text/event-stream"), "{seen}");
    let mut buffer = vec![0u8; 4096];
    // Older than the request timeout of the pages: the stream is not cut by it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let host_id = UserId::parse(&host.user_id).unwrap();
    let other_id = UserId::parse(&other.user_id).unwrap();
    // Not for this page: another game of the viewer, this game for someone else.
    push.publish_event(
        vec![host_id],
        "game.elsewhere",
        json!({ "game_id": elsewhere }),
    )
    .await
    .unwrap();
    push.publish_event(vec![other_id], "game.not_yours", json!({ "game_id": game }))
        .await
        .unwrap();
    push.publish_event(
        vec![host_id],
        "game.turn_completed",
        json!({ "game_id": game }),
    )
    .await
    .unwrap();
    let mut body = String::new();
    let read = async {
        while !body.contains("data: ") {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the stream ended");
            body.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap();
    assert!(body.contains("event: update"), "{body}");
    assert!(body.contains("data: game.turn_completed"), "{body}");
    assert!(
        !body.contains("elsewhere") && !body.contains("not_yours"),
        "{body}"
    );
    // Shutdown begins: the stream ends (the chunked body's last chunk), holding nothing up.
    closing.cancel();
    let end = async {
        while !body.ends_with("0\r\n\r\n") {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(
                n > 0,
                "the connection closed before the stream's end: {body}"
            );
            body.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(5), end)
        .await
        .unwrap();
}

/// The whole response (head and body, as sent) to a GET of `path` as the holder of
/// `token`, over a connection of its own.
async fn get_over_socket(addr: SocketAddr, token: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncookie: galaxy_session={token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// What of the body came with the response head `head`.
fn body_of(head: &str) -> String {
    head.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Reads `stream` into `body` until `done` holds of it (10 s at most).
async fn read_until(
    stream: &mut tokio::net::TcpStream,
    body: &mut String,
    done: impl Fn(&str) -> bool,
) {
    use tokio::io::AsyncReadExt;
    let mut buffer = vec![0u8; 4096];
    let read = async {
        while !done(body) {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the stream ended: {body}");
            body.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .is_err()
    {
        panic!("not seen within 10 s: {body}");
    }
}

/// The game page's live stream starts at the push cursor the page was rendered at, so
/// news that lands between the page and its stream (or while the stream is down) still
/// reaches it; a browser that reconnects resumes after its `Last-Event-ID`, which marks
/// move on while events about other games pass; a cursor that cannot be replayed from
/// says "update" at once.
#[tokio::test]
async fn a_game_pages_stream_misses_nothing_between_the_page_and_its_reconnects() {
    use galaxy_core::domain::UserId;

    let app = TestApp::new();
    let limits = http_support::limits(Duration::from_secs(10));
    let (addr, push, _closing) = live_server(&app, limits).await;
    let host = app.login("host@example.org").await;
    let host_id = UserId::parse(&host.user_id).unwrap();
    let game = app.create_game(&host, "Watched closely", 2, 4).await;
    let elsewhere = app.create_game(&host, "Elsewhere", 2, 4).await;
    let page = get_over_socket(addr, &host.token, &format!("/games/{game}")).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let (_, rest) = page.split_once("data-live=\"").expect("a live page");
    let (live, _) = rest.split_once('"').unwrap();
    assert!(
        live.starts_with(&format!("/games/{game}/events?after=")),
        "{live}"
    );

    // A turn runs after the page was rendered, before its stream connects.
    let first = push
        .publish_event(vec![host_id], "turn_completed", json!({ "game_id": game }))
        .await
        .unwrap();
    let (mut stream, head) = open_stream_at(addr, &host.token, live, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut body = body_of(&head);
    read_until(&mut stream, &mut body, |b| b.contains("data: ")).await;
    assert!(body.contains("event: update"), "{body}");
    assert!(body.contains("data: turn_completed"), "{body}");
    assert!(body.contains(&format!("id: {}", first.cursor)), "{body}");
    drop(stream);

    // The browser comes back with the id of the last event it had: that one is not
    // given again (the page's own cursor is older), the next one is.
    let header = format!("last-event-id: {}\r\n", first.cursor);
    let (mut stream, head) = open_stream_at(addr, &host.token, live, &header).await;
    let mut body = body_of(&head);
    // News about another game moves the browser's place on, with an event of only an id.
    let passing = push
        .publish_event(vec![host_id], "elsewhere", json!({ "game_id": elsewhere }))
        .await
        .unwrap();
    let mark = format!("id: {}", passing.cursor);
    read_until(&mut stream, &mut body, |b| b.contains(&mark)).await;
    assert!(!body.contains("data: "), "a mark is no update: {body}");
    let second = push
        .publish_event(
            vec![host_id],
            "message_received",
            json!({ "game_id": game }),
        )
        .await
        .unwrap();
    read_until(&mut stream, &mut body, |b| b.contains("data: ")).await;
    assert!(body.contains("data: message_received"), "{body}");
    assert!(body.contains(&format!("id: {}", second.cursor)), "{body}");
    assert!(!body.contains("turn_completed"), "given twice: {body}");
    drop(stream);

    // A cursor of another log (a restarted dev server), or one too old to replay from:
    // the page may have missed news, so it is told to reload.
    let foreign = format!("/games/{game}/events?after=v1.abcdef.1");
    let (mut stream, head) = open_stream_at(addr, &host.token, &foreign, "").await;
    let mut body = body_of(&head);
    read_until(&mut stream, &mut body, |b| b.contains("data: ")).await;
    assert!(body.contains("event: update"), "{body}");
    assert!(body.contains("data: push.resync"), "{body}");
    // Not a cursor at all.
    let (_, head) = open_stream_at(
        addr,
        &host.token,
        &format!("/games/{game}/events?after=x"),
        "",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

/// A stream ends when its session no longer holds (a sign-out, everywhere or in another
/// tab; a revocation; a block): it would otherwise keep telling a page that is no longer
/// signed in, and keep its place in the user's bound.
#[tokio::test]
async fn a_live_stream_ends_when_its_session_does() {
    let app = TestApp::new();
    let limits = http_support::limits(Duration::from_secs(10));
    let (addr, _push, _closing) = live_server(&app, limits).await;
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Signed out", 2, 4).await;
    let (mut stream, head) = open_stream(addr, &host.token, &game).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    app.call(
        Method::DELETE,
        "/api/v1/user/sessions/current",
        Some(&host.token),
        None,
    )
    .await
    .expect(200);
    let mut body = String::new();
    read_until(&mut stream, &mut body, |b| b.ends_with("0\r\n\r\n")).await;
}

#[tokio::test]
async fn event_streams_are_bounded_per_user_and_in_all_and_freed_when_a_page_goes() {
    let app = TestApp::new();
    // Two per user (the test app's bound), three in all.
    let limits = galaxy_server::http::HttpLimits {
        streams_total: 3,
        ..http_support::limits(Duration::from_secs(10))
    };
    assert_eq!(limits.streams_per_user, http_support::STREAMS_PER_USER);
    let (addr, _push, _closing) = live_server(&app, limits).await;
    let host = app.login("host@example.org").await;
    let other = app.login("other@example.org").await;
    let game = app.create_game(&host, "Watched", 2, 4).await;
    // Open for enrollment: a game the other user may watch too.
    let opened = app
        .call(
            Method::POST,
            &format!("/api/v1/user/games/{game}/open"),
            Some(&host.token),
            None,
        )
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);

    // Six tabs at once: exactly the bound is served, the rest refused, nothing in between.
    let tabs = (0..6).map(|_| open_stream(addr, &host.token, &game));
    let opened = futures::future::join_all(tabs).await;
    let (held, refused): (Vec<_>, Vec<_>) = opened
        .into_iter()
        .partition(|(_, head)| head.starts_with("HTTP/1.1 200"));
    assert_eq!(held.len(), http_support::STREAMS_PER_USER, "{refused:?}");
    for (_, head) in &refused {
        assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    }
    // Another user is not held up by the first one's bound; their second tab reaches the
    // bound of three in all.
    let (_other_tab, head) = open_stream(addr, &other.token, &game).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, head) = open_stream(addr, &other.token, &game).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");

    // A page goes (its connection closes): its place is free again.
    let mut held = held.into_iter();
    drop(held.next());
    let reopened = async {
        loop {
            let (tab, head) = open_stream(addr, &other.token, &game).await;
            if head.starts_with("HTTP/1.1 200") {
                return tab;
            }
            assert!(head.starts_with("HTTP/1.1 429"), "{head}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _reopened = tokio::time::timeout(Duration::from_secs(10), reopened)
        .await
        .expect("a closed page's stream still held its place after 10 s");
    // Full again.
    let (_, head) = open_stream(addr, &host.token, &game).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
}

#[tokio::test]
async fn the_orders_form_takes_bodies_up_to_its_own_bound_beyond_two_mebibytes() {
    // Orders of up to 1 MiB: the form, whose encoding may triple them, takes 3 MiB.
    let limits = galaxy_server::http::HttpLimits {
        orders_body_limit: 1 << 20,
        ..http_support::limits(Duration::from_secs(10))
    };
    let app = web_app_with(Options::default(), limits);
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Big orders", 2, 4).await;
    let mut visitor = signed_in(&app, "visitor@example.org").await;
    visitor.get(&app, "/").await.is(200);
    let uri = format!("/games/{game}/orders");
    // 2.5 MiB of form: read whole and judged by the service (the visitor plays no race
    // here), not refused by a transport bound of 2 MiB.
    let big = "x".repeat(5 << 19);
    let page = visitor
        .post(&app, &uri, &[("turn", "1"), ("orders", &big)])
        .await;
    assert!(
        !page.text.contains("could not be read") && page.status != StatusCode::BAD_REQUEST,
        "{} {}",
        page.status,
        &page.text[..page.text.len().min(300)]
    );
    assert_ne!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Over its bound: 413.
    let huge = "x".repeat(3 << 20);
    let page = visitor
        .post(&app, &uri, &[("turn", "1"), ("orders", &huge)])
        .await;
    page.is(413);
    assert_is_page(&page, "larger than this server accepts");
}

/// The response is an HTML error page (not a layer's bare text) saying `says`.
fn assert_is_page(page: &TestResponse, says: &str) {
    let content_type = page.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(
        content_type.starts_with("text/html"),
        "{content_type}: {}",
        page.text
    );
    assert!(page.text.contains("<h1>"), "{}", page.text);
    assert!(page.text.contains(says), "{}", page.text);
    assert!(page.headers.contains_key("content-security-policy"));
}

#[tokio::test]
async fn what_a_layer_refuses_is_a_page_and_every_page_is_counted() {
    let handle = galaxy_server::telemetry::prometheus_handle().unwrap();
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Layers", 2, 4).await;
    let mut visitor = signed_in(&app, "visitor@example.org").await;
    // axum's rejection of a query that does not parse is plain text unless reshaped.
    let page = visitor.get(&app, &format!("/games/{game}?turn=x")).await;
    page.is(400);
    assert_is_page(&page, "malformed");
    // A form too large for the transport's bound: tower-http's bare 413 unless reshaped.
    let big = "x".repeat(3 << 20);
    let page = visitor
        .post(&app, &format!("/games/{game}/messages"), &[("text", &big)])
        .await;
    page.is(413);
    assert_is_page(&page, "larger than this server accepts");
    let text = handle.render();
    for series in [
        "galaxy_http_requests_total{method=\"GET\",route=\"/games/{id}\",status=\"400\"}",
        "galaxy_http_requests_total{method=\"POST\",route=\"/games/{id}/messages\",status=\"413\"}",
        "galaxy_http_request_duration_seconds_count{method=\"GET\",route=\"/games/{id}\"}",
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
}

#[tokio::test]
async fn bad_path_parameters_are_404_pages_that_echo_nothing() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Paths", 2, 4).await;
    let mut admin = signed_in(&app, ADMIN_EMAIL).await;
    let hostile = "%3Cscript%3Ex%3C%2Fscript%3E";
    for uri in [
        format!("/games/{hostile}"),
        format!("/games/{game}/events/../x"),
        "/static/nope.js".to_owned(),
    ] {
        let page = admin.get(&app, &uri).await;
        page.is(404);
        assert!(!page.text.contains("<script>x"), "{}", page.text);
    }
    for uri in [
        format!("/games/{hostile}/apply"),
        format!("/games/{game}/host/explode"),
        format!("/games/{game}/applications/{hostile}/approve"),
        format!("/games/{game}/applications/{game}/maybe"),
        format!("/games/{game}/seats/Zorg/explode"),
        format!("/games/{game}/seats/Zorg/applications/{hostile}/approve"),
        format!("/admin/games/{hostile}/pause"),
        format!("/admin/games/{game}/explode"),
        format!("/admin/users/{hostile}/block"),
        format!("/admin/mail/{hostile}/retry"),
        format!("/admin/dead-letters/{hostile}/retry"),
        format!("/account/sessions/{hostile}/revoke"),
    ] {
        let page = admin.post(&app, &uri, &[("race_name", "Zorg")]).await;
        page.is(404);
        assert!(!page.text.contains("<script>x"), "{uri}: {}", page.text);
    }
}

#[tokio::test]
async fn admins_find_a_user_beyond_the_first_page_by_search() {
    let app = web_app(Options::default());
    let mut admin = signed_in(&app, ADMIN_EMAIL).await;
    // More users than one admin page (100) holds; the one looked for comes last.
    {
        use galaxy_core::domain::UserId;
        use galaxy_core::domain::user::{Email, User};
        use galaxy_core::ports::{Clock, UserStore};
        for i in 0..105 {
            let email = Email::parse(&format!("filler{i}@example.org")).unwrap();
            let user = User::new(
                UserId::from_uuid(uuid::Uuid::now_v7()),
                email,
                app.clock.now(),
            );
            app.stores.users.insert_user(&user).await.unwrap();
        }
    }
    app.clock.advance(chrono::TimeDelta::seconds(1));
    let wanted = app.login("zeta_needle@example.org").await;
    let first = admin.get(&app, "/admin/users").await;
    first.is(200);
    assert!(!first.text.contains("zeta_needle@example.org"));
    // The search finds it in the whole table, and `_` is a plain character.
    let found = admin.get(&app, "/admin/users?q=ZETA_needle").await;
    found.is(200);
    assert!(
        found.text.contains("zeta_needle@example.org"),
        "{}",
        found.text
    );
    assert!(!found.text.contains("filler1@example.org"));
    let none = admin.get(&app, "/admin/users?q=zeta%25needle").await;
    assert!(!none.text.contains("zeta_needle@example.org"));
    // Blocked from the search's page, the admin comes back to it; the block shows its
    // end, and it may still be made longer or permanent, or lifted.
    let until = (galaxy_core::ports::Clock::now(app.clock.as_ref()) + chrono::TimeDelta::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let block = format!("/admin/users/{}/block", wanted.user_id);
    let unblock = format!("/admin/users/{}/unblock", wanted.user_id);
    admin.headers.push((
        "referer".to_owned(),
        "http://localhost/admin/users?q=zeta_needle".to_owned(),
    ));
    let blocked = admin.post(&app, &block, &[("until", &until)]).await;
    blocked.is(303);
    assert_eq!(blocked.headers["location"], "/admin/users?q=zeta_needle");
    admin.headers.pop();
    let page = admin.get(&app, "/admin/users?q=zeta_needle").await;
    assert!(
        page.text.contains("data-status=\"blocked\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("<time datetime="), "{}", page.text);
    assert!(
        page.text.contains(&block) && page.text.contains(&unblock),
        "{}",
        page.text
    );
    // Once its end has passed, the block no longer holds: shown as active.
    app.clock.advance(chrono::TimeDelta::hours(2));
    let page = admin.get(&app, "/admin/users?q=zeta_needle").await;
    assert!(
        page.text.contains("data-status=\"active\""),
        "{}",
        page.text
    );
    assert!(
        page.text.contains(&block) && !page.text.contains(&unblock),
        "{}",
        page.text
    );
    // The API searches the same way; a text too long is 422 naming `q`.
    let token = app.login(ADMIN_EMAIL).await.token;
    let api = app
        .get("/api/v1/admin/users?q=zeta_NEEDLE", Some(&token))
        .await;
    api.expect(200);
    assert_eq!(
        api.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        api.json
    );
    assert_eq!(
        api.json["items"][0]["id"],
        wanted.user_id.as_str(),
        "{}",
        api.json
    );
    let long = format!("/api/v1/admin/users?q={}", "x".repeat(300));
    let refused = app.get(&long, Some(&token)).await;
    refused.expect(422);
    assert_eq!(
        refused.json["error"]["details"]["field"], "q",
        "{}",
        refused.json
    );
}

#[tokio::test]
async fn a_failed_start_is_cancelled_from_the_pages_and_only_a_game_in_play_offers_stop() {
    use galaxy_core::domain::GameId;
    use galaxy_core::domain::game::{GameStatus, GameTrigger};
    use galaxy_core::ports::{Clock, GameStatusChange, GameStore};
    let app = web_app(Options::default());
    let host_login = app.login("host@example.org").await;
    let game = app.create_game(&host_login, "Failed start", 2, 4).await;
    let id = GameId::parse(&game).unwrap();
    // The start job failed (no engine could be started): `start_failed`.
    for (from, to, trigger) in [
        (
            GameStatus::Draft,
            GameStatus::EnrollmentOpen,
            GameTrigger::Host,
        ),
        (
            GameStatus::EnrollmentOpen,
            GameStatus::EnrollmentClosed,
            GameTrigger::Host,
        ),
        (
            GameStatus::EnrollmentClosed,
            GameStatus::Starting,
            GameTrigger::Admin,
        ),
        (
            GameStatus::Starting,
            GameStatus::StartFailed,
            GameTrigger::RuntimeEvent,
        ),
    ] {
        let change = GameStatusChange {
            to,
            trigger,
            actor: None,
            reason: None,
            at: app.clock.now(),
            expected_approved: None,
        };
        app.stores
            .lobby
            .update_game_status(id, from, &change)
            .await
            .unwrap();
    }
    let mut admin = signed_in(&app, ADMIN_EMAIL).await;
    let page = admin.get(&app, "/admin/games").await;
    page.is(200);
    assert!(
        !page.text.contains(&format!("/admin/games/{game}/stop\"")),
        "stop refuses a failed start: {}",
        page.text
    );
    let cancel = format!("/admin/games/{game}/cancel");
    assert!(page.text.contains(&format!("{cancel}\"")), "{}", page.text);
    let mut host = signed_in(&app, "host@example.org").await;
    let mine = host.get(&app, &format!("/games/{game}")).await;
    assert!(
        mine.text.contains(&format!("/games/{game}/host/cancel\"")),
        "the host may cancel a failed start: {}",
        mine.text
    );
    admin.post(&app, &cancel, &[]).await.is(303);
    let status = app.stores.lobby.get_game(id).await.unwrap().status;
    assert_eq!(status, GameStatus::Cancelled);
}

#[tokio::test]
async fn the_health_page_pages_records_and_events_each_on_its_own() {
    use galaxy_core::domain::GameId;
    use galaxy_core::domain::health::HealthEventKind;
    use galaxy_core::ports::Clock;
    let app = web_app(Options::default());
    let start = app.clock.now();
    let mut games = Vec::new();
    for n in 0..101i64 {
        let game = GameId::from_uuid(uuid::Uuid::now_v7());
        let at = start + chrono::TimeDelta::seconds(n);
        record_with_event(&app, game, HealthEventKind::ProbeFailed, at).await;
        games.push(game.to_string());
    }
    let mut admin = signed_in(&app, ADMIN_EMAIL).await;
    // Following the records' own "more" link reaches every record.
    let mut seen = std::collections::BTreeSet::new();
    let mut uri = "/admin/health".to_owned();
    for _ in 0..3 {
        let page = admin.get(&app, &uri).await;
        page.is(200);
        let records = page
            .text
            .split("<h2>")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        for game in &games {
            if records.contains(&format!("?game={game}\"")) {
                seen.insert(game.clone());
            }
        }
        match records.find("records_after=") {
            Some(at) => {
                let end = records[at..].find('"').unwrap() + at;
                uri = format!("/admin/health?{}", &records[at..end]);
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 101, "every record on some page");
    // A game without a record (not started yet) shows its page, not a 404.
    let draft = GameId::from_uuid(uuid::Uuid::now_v7());
    admin
        .get(&app, &format!("/admin/health?game={draft}"))
        .await
        .is(200);
}

#[tokio::test]
async fn a_forms_address_opened_goes_to_its_page_and_unknown_paths_are_pages_for_browsers() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Addresses", 2, 4).await;
    let browser = |method: Method, uri: &str| {
        Call::new(method, uri).header("accept", "text/html,application/xhtml+xml")
    };
    // A form's action opened from the address bar (after its post, a bookmark): the
    // page the form is on, not axum's empty 405.
    for (action, page) in [
        (format!("/games/{game}/orders"), format!("/games/{game}")),
        (format!("/games/{game}/messages"), format!("/games/{game}")),
        ("/login/code".to_owned(), "/login".to_owned()),
        ("/logout".to_owned(), "/".to_owned()),
        ("/games".to_owned(), "/games/new".to_owned()),
        (
            format!("/admin/games/{game}/stop"),
            "/admin/games".to_owned(),
        ),
        (
            "/admin/dead-letters/x/retry".to_owned(),
            "/admin/mail".to_owned(),
        ),
    ] {
        let answer = app.send(browser(Method::GET, &action)).await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{action}: {}",
            answer.text
        );
        assert_eq!(answer.headers["location"], page.as_str(), "{action}");
    }
    // Another method: a page that says so.
    let deleted = app
        .send(browser(Method::DELETE, &format!("/games/{game}/orders")))
        .await;
    assert_eq!(deleted.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(deleted.text.contains("<h1>405"), "{}", deleted.text);
    // An unknown path: a page for a browser, with the pages' CSP; the API's JSON for
    // every other client and for any path under /api/.
    let missing = app.send(browser(Method::GET, "/my/")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<h1>404"), "{}", missing.text);
    assert_eq!(
        missing.headers["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
    let api = app.send(Call::new(Method::GET, "/my/")).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.code(), "not_found", "{}", api.text);
    let api = app.send(browser(Method::GET, "/api/v1/nope")).await;
    assert_eq!(api.code(), "not_found", "{}", api.text);
}

/// "My games" shows the games going on first and the ended ones after them, a page of
/// twenty at a time with a link to the older ones.
#[tokio::test]
async fn my_games_page_the_ended_games_after_those_going_on() {
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let going = app.create_game(&host, "Going Cup", 2, 4).await;
    let mut ended = Vec::new();
    for i in 0..21 {
        // A day apart: a game cancelled within the day still counts against the host's
        // limit of games.
        app.clock.advance(chrono::TimeDelta::days(1));
        let id = app
            .create_game(&host, &format!("Ended Cup {i}"), 2, 4)
            .await;
        app.game_action(&host, &id, "cancel", 200).await;
        ended.push(id);
    }
    let mut browser = signed_in(&app, "host@example.org").await;
    let page = browser.get(&app, "/my").await;
    page.is(200);
    let heading = page.text.find("id=\"ended\"").unwrap();
    let position = |id: &str| page.text.find(&format!("/games/{id}\""));
    assert!(position(&going).unwrap() < heading, "going on first");
    // The newest twenty ended games, then a link to the oldest.
    assert!(position(&ended[20]).unwrap() > heading);
    assert!(position(&ended[1]).is_some());
    assert!(position(&ended[0]).is_none());
    let at = page.text.find("href=\"/my?after=").unwrap() + 6;
    let older: String = page.text[at..].chars().take_while(|c| *c != '"').collect();
    let older = browser.get(&app, &older.replace("&amp;", "&")).await;
    older.is(200);
    let position = |id: &str| older.text.find(&format!("/games/{id}\""));
    assert!(position(&ended[0]).is_some(), "{}", older.text);
    assert!(position(&ended[1]).is_none());
    assert!(position(&going).is_some(), "games going on stay on top");
    assert!(!older.text.contains("href=\"/my?after="));
    // A link whose cursor names no game shows the first page.
    for garbage in ["nonsense", "00000000-0000-0000-0000-000000000000"] {
        let first = browser.get(&app, &format!("/my?after={garbage}")).await;
        first.is(200);
        let position = |id: &str| first.text.find(&format!("/games/{id}\""));
        assert!(position(&ended[20]).is_some(), "{}", first.text);
        assert!(position(&ended[0]).is_none());
    }
}

/// A race out of the game (eliminated in the latest standings) is offered neither the
/// orders form nor the ready and vacation forms, but told why; its partner plays on, and
/// finds its last orders, which the engine refused, shown as refused when it comes back.
#[tokio::test]
async fn the_game_page_tells_a_race_out_and_the_refusal_of_the_last_orders() {
    use galaxy_core::domain::GameId;
    use galaxy_core::domain::game::{GameStatus, GameTrigger};
    use galaxy_core::domain::play::{OrdersSubmission, PlayedTurn, Standing, TurnReport};
    use galaxy_core::ports::{
        Clock, GameStatusChange, GameStore, OrdersStore, PbemStore, TurnArchiveStore,
    };
    let app = web_app(Options::default());
    let host = app.login("host@example.org").await;
    let game = app.create_game(&host, "Out of it", 2, 2).await;
    app.game_action(&host, &game, "open", 200).await;
    let seats = [
        ("ann@example.org", "Aldebarans"),
        ("bob@example.org", "Betelgeusians"),
    ];
    let mut races = Vec::new();
    for (email, race) in seats {
        let player = app.login(email).await;
        let user = galaxy_core::domain::UserId::from_uuid(player.user_id.parse().unwrap());
        races.push((race.to_owned(), user));
        let application = app.apply(&player, &game, race).await;
        let approve = format!("/api/v1/user/games/{game}/applications/{application}/approve");
        app.call(Method::POST, &approve, Some(&host.token), None)
            .await
            .expect(200);
    }
    // Started and played to turn 1 behind the pages' back (no runtime here): the
    // approval that filled the game closed its enrollment.
    let id = GameId::from_uuid(game.parse().unwrap());
    let now = app.clock.now();
    let mut from = GameStatus::EnrollmentClosed;
    for (to, trigger) in [
        (GameStatus::Starting, GameTrigger::Admin),
        (GameStatus::Running, GameTrigger::RuntimeEvent),
    ] {
        let change = GameStatusChange {
            to,
            trigger,
            actor: None,
            reason: None,
            at: now,
            expected_approved: None,
        };
        app.stores
            .lobby
            .update_game_status(id, from, &change)
            .await
            .unwrap();
        from = to;
    }
    app.stores.pbem.ensure_races(id, &races).await.unwrap();
    let turn = PlayedTurn {
        game_id: id,
        turn: 1,
        played_at: now,
        finished: false,
        winner: None,
        standings: seats
            .iter()
            .map(|(_, race)| Standing {
                race: (*race).to_owned(),
                score: 1.0,
                alive: *race == "Aldebarans",
            })
            .collect(),
    };
    let reports: Vec<_> = seats
        .iter()
        .map(|(_, race)| TurnReport {
            game_id: id,
            turn: 1,
            race: (*race).to_owned(),
            report: json!({"text": "turn one"}),
        })
        .collect();
    app.stores.play.archive_turn(&turn, &reports).await.unwrap();
    let orders_form = format!("action=\"/games/{game}/orders\"");
    let mut bob = signed_in(&app, "bob@example.org").await;
    let page = bob.get(&app, &format!("/games/{game}")).await;
    page.is(200);
    assert!(
        page.text.contains("Your race is out of the game"),
        "{}",
        page.text
    );
    assert!(!page.text.contains(&orders_form), "{}", page.text);
    assert!(
        !page.text.contains("/ready\""),
        "no ready form: {}",
        page.text
    );
    let mut ann = signed_in(&app, "ann@example.org").await;
    let page = ann.get(&app, &format!("/games/{game}")).await;
    page.is(200);
    assert!(page.text.contains(&orders_form), "{}", page.text);
    assert!(
        page.text.contains("/ready\""),
        "the ready form: {}",
        page.text
    );
    assert!(!page.text.contains("Your race is out of the game"));
    assert!(!page.text.contains("you sent last"), "nothing sent yet");
    // Ann's last orders for turn 2, refused by the engine, recorded as the platform does.
    let token = galaxy_core::domain::LeaseToken::from_uuid(uuid::Uuid::now_v7());
    let lease = galaxy_core::domain::lease::Lease {
        token,
        until: now + chrono::TimeDelta::minutes(1),
    };
    let orders = &app.stores.play;
    assert!(
        orders
            .lease_orders(id, "Aldebarans", lease, now)
            .await
            .unwrap()
    );
    let refused = OrdersSubmission {
        id: galaxy_core::domain::SubmissionId::from_uuid(uuid::Uuid::now_v7()),
        game_id: id,
        race: "Aldebarans".into(),
        user_id: races[0].1,
        turn: 2,
        submitted_at: now,
        size: 20,
        accepted: false,
        errors: vec!["order 1: unknown planet 999".into()],
        orders: json!("move 999 1"),
    };
    orders.record_orders(&refused, token).await.unwrap();
    let page = ann.get(&app, &format!("/games/{game}")).await;
    page.is(200);
    assert!(page.text.contains("you sent last"), "{}", page.text);
    assert!(page.text.contains("unknown planet 999"), "{}", page.text);
    assert!(page.text.contains("move 999 1</textarea>"), "{}", page.text);
}

/// The create form says "no reminders" with the word for none (as the API's
/// `reminders: []`), an empty field keeps the defaults, and a game's page says "none"
/// rather than an empty value under a label about empty fields.
#[tokio::test]
async fn a_game_made_on_the_pages_may_have_no_reminders() {
    let app = web_app(Options::default());
    let mut host = signed_in(&app, "host@example.org").await;
    let mut made = Vec::new();
    for (name, reminders) in [("Quiet", "none"), ("Ruhig", " Keine "), ("Default", "")] {
        let created = host
            .post(
                &app,
                "/games",
                &[
                    ("name", name),
                    ("min_players", "2"),
                    ("max_players", "4"),
                    ("enrollment_deadline", "2030-02-01T00:00"),
                    ("turn_schedule", "0 18 * * 1"),
                    ("visibility", "public"),
                    ("reminders", reminders),
                ],
            )
            .await;
        created.is(303);
        let page = created.headers["location"].to_str().unwrap().to_owned();
        made.push((page, reminders));
    }
    for (page, reminders) in made {
        let shown = host.get(&app, &page).await;
        shown.is(200);
        let id = page.trim_start_matches("/games/");
        let token = host
            .cookies
            .iter()
            .find(|(name, _)| name == "galaxy_session")
            .map(|(_, token)| token.clone())
            .unwrap();
        let api = app
            .call(
                Method::GET,
                &format!("/api/v1/user/games/{id}"),
                Some(&token),
                None,
            )
            .await;
        let set = api.json["settings"]["reminders"].as_array().unwrap().len();
        if reminders.is_empty() {
            assert!(set > 0, "the defaults: {}", api.json);
        } else {
            assert_eq!(set, 0, "{reminders:?}: {}", api.json);
            assert!(
                shown
                    .text
                    .contains("<dt>Reminders before the deadline</dt><dd>none</dd>"),
                "{}",
                shown.text
            );
        }
    }
}
