//! A whole game played in a real browser (Debian's headless Chromium driven over
//! WebDriver by fantoccini) against a dev-mode server on the reference engine: a host and
//! two players log in with mailed codes, the host creates the game, the players apply,
//! the host approves and starts it, a player's orders are refused then accepted, an admin
//! forces the turns from the admin pages, the players read their reports and the finished
//! game's standings chart. Only pages are used: no API call.
//!
//! Needs `chromium` and `chromedriver` (`scripts/test.sh` installs them when root); without
//! them the test says so loudly and passes without running. Screenshots of the main pages
//! go to `docs/screenshots/` when `GALAXY_WEB_SCREENSHOTS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use fantoccini::{Client, ClientBuilder, Locator};
use galaxy_server::dev;
use lifecycle_support::{eml_files, eventually, free_port};
use runtime_support::{engine_binary, start_dev};

/// The chromedriver process, killed when the test ends however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The newest login code mailed to `email` after `since`.
async fn code_for(dir: &Path, email: &str, since: SystemTime) -> String {
    let (dir, email) = (dir.to_owned(), email.to_owned());
    eventually(Duration::from_secs(20), "the login-code mail", move || {
        let (dir, email) = (dir.clone(), email.clone());
        async move {
            let mut found: Vec<(SystemTime, String)> = eml_files(&dir)
                .into_iter()
                .filter_map(|path| {
                    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
                    let text = std::fs::read_to_string(&path).ok()?;
                    if modified < since || !text.contains(&format!("To: {email}")) {
                        return None;
                    }
                    let line = text
                        .lines()
                        .find(|l| l.starts_with("Your Galaxy login code is "))?;
                    let code = line.trim_start_matches("Your Galaxy login code is ").trim();
                    Some((modified, code.to_owned()))
                })
                .collect();
            found.sort();
            found.pop().map(|(_, code)| code)
        }
    })
    .await
}

/// The page's HTML; read again when a live reload was replacing the page.
async fn html(browser: &Client) -> String {
    for _ in 0..5 {
        match browser.source().await {
            Ok(html) => return html,
            Err(error) => eprintln!("page source not read ({error}): again"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not read the page");
}

/// The element `css` names, waiting for it as a page loads after a click.
async fn find(browser: &Client, css: &str) -> fantoccini::elements::Element {
    match browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(error) => panic!("no {css} ({error}) in {}", html(browser).await),
    }
}

/// Clicks `css` without waiting for what follows (a confirmation question, say).
async fn press(browser: &Client, css: &str) {
    let mut attempts = 0;
    loop {
        match find(browser, css).await.click().await {
            Ok(_) => return,
            Err(error) => again(css, error, &mut attempts).await,
        }
    }
}

/// Clicks `css` (every click here submits a form or follows a link) and waits until the
/// next page replaced this one.
async fn click(browser: &Client, css: &str) {
    click_then(browser, css, false).await;
}

/// Clicks `css`, whose form asks first (`data-confirm`), says yes, and waits until the
/// next page replaced this one.
async fn click_confirming(browser: &Client, css: &str) {
    click_then(browser, css, true).await;
}

/// Clicks `css`, answers yes to the question it asks when `confirming`, and waits until
/// the next page replaced this one.
async fn click_then(browser: &Client, css: &str, confirming: bool) {
    let mut attempts = 0;
    // The clicked element itself tells when its page is gone (a page taken before the
    // click could be replaced by a live reload before it, ending the wait too early).
    let clicked = loop {
        let element = find(browser, css).await;
        match element.click().await {
            Ok(_) => break element,
            Err(error) => again(css, error, &mut attempts).await,
        }
    };
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    if confirming {
        // The question shows at once; a page replaced under the click (a live reload)
        // asks nothing, and the caller's loop looks again.
        let asked = std::time::Instant::now() + Duration::from_secs(5);
        while browser.accept_alert().await.is_err() && std::time::Instant::now() < asked {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while clicked.tag_name().await.is_ok() {
        assert!(std::time::Instant::now() < limit, "{css} led nowhere");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new document may still be loading: wait for its end.
    loaded(browser).await;
}

/// After a failed click: a live reload may replace the page between finding the element
/// and clicking it (a stale element), so the click is tried again on the new page, up to
/// five times; stderr says why (shown when the test fails).
async fn again(css: &str, error: fantoccini::error::CmdError, attempts: &mut u32) {
    assert!(*attempts < 5, "could not click {css}: {error}");
    *attempts += 1;
    eprintln!("clicking {css} again after: {error}");
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Waits until the document has loaded.
async fn loaded(browser: &Client) {
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = browser
            .execute("return document.readyState;", vec![])
            .await
            .unwrap_or_default();
        if state == "complete" {
            return;
        }
        assert!(std::time::Instant::now() < limit, "the page did not load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the element `css` names; again on the new page when a live reload
/// replaced the element while it was read.
async fn text_of(browser: &Client, css: &str) -> String {
    for _ in 0..5 {
        if let Ok(text) = find(browser, css).await.text().await {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not read {css}");
}

/// A PNG of the element `css` names, retried like [`text_of`].
async fn element_png(browser: &Client, css: &str) -> Vec<u8> {
    for _ in 0..5 {
        if let Ok(png) = find(browser, css).await.screenshot().await {
            return png;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not take a picture of {css}");
}

/// Types `text` into the field `css`. A game page reloads itself when a push event
/// arrives (live updates), which can replace the field under the typing: then again.
async fn fill(browser: &Client, css: &str, text: &str) {
    for _ in 0..5 {
        let field = find(browser, css).await;
        if field.clear().await.is_ok() && field.send_keys(text).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not type into {css}");
}

/// Sends `orders` from the game page and returns the engine's verdict as shown.
async fn send_orders(browser: &Client, orders: &str) -> String {
    for _ in 0..5 {
        fill(browser, "#orders-text", orders).await;
        click(browser, "form[action$='/orders'] button").await;
        // A live reload may have replaced the page instead of the form's answer.
        if let Ok(verdict) = browser.find(Locator::Css("#verdict")).await
            && let Ok(text) = verdict.text().await
        {
            return text;
        }
    }
    panic!("no verdict for the orders");
}

struct Session<'a> {
    browser: &'a Client,
    base: String,
    mail: PathBuf,
    shots: Option<PathBuf>,
}

impl Session<'_> {
    /// Opens `path` and waits for it. A live reload the previous page had begun may
    /// land after the navigation and show that page again: then open `path` again.
    async fn goto(&self, path: &str) {
        let wanted = path.split(['?', '#']).next().unwrap_or(path);
        for _ in 0..5 {
            self.browser
                .goto(&format!("{}{path}", self.base))
                .await
                .unwrap();
            loaded(self.browser).await;
            if self.browser.current_url().await.unwrap().path() == wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("could not stay on {path}");
    }

    /// Opens `path`, clicks the button `css` whose form asks first, and says no; returns
    /// the question. A live reload landing with the click may close the question before
    /// it is read or answered (or the click may land on the page being left): then all
    /// again on a fresh page.
    async fn decline(&self, path: &str, css: &str) -> String {
        for _ in 0..5 {
            self.goto(path).await;
            press(self.browser, css).await;
            let Ok(question) = self.browser.get_alert_text().await else {
                eprintln!("no question after clicking {css}: again");
                continue;
            };
            if self.browser.dismiss_alert().await.is_ok() {
                return question;
            }
            eprintln!("the question of {css} was gone before its answer: again");
        }
        panic!("clicking {css} asked nothing that could be declined");
    }

    /// Logs out whoever is signed in, then logs `email` in with the mailed code.
    async fn login(&self, email: &str) {
        self.browser.delete_all_cookies().await.unwrap();
        self.goto("/login").await;
        self.login_here(email, "/my").await;
    }

    /// On the login page: logs `email` in with the mailed code and waits for the page the
    /// login goes on to, `landing`.
    async fn login_here(&self, email: &str, landing: &str) {
        let since = SystemTime::now() - Duration::from_secs(1);
        fill(self.browser, "#email", email).await;
        click(self.browser, "form[action='/login'] button").await;
        let code_field = find(self.browser, "#code").await;
        assert_eq!(
            code_field.attr("autocomplete").await.unwrap().as_deref(),
            Some("one-time-code")
        );
        if email == "host@example.org" {
            self.shot("login-code").await;
        }
        let code = code_for(&self.mail, email, since).await;
        // The field has focus already: typing goes there.
        let active = self.browser.active_element().await.unwrap();
        assert_eq!(active.attr("id").await.unwrap().as_deref(), Some("code"));
        // Typed as a player pastes it from a mail: split in two, a space at the end. The
        // server takes it; the browser must not refuse it first.
        let (head, tail) = code.split_at(code.len() / 2);
        active.send_keys(&format!("{head} {tail} ")).await.unwrap();
        click(self.browser, "form[action='/login/code'] button").await;
        self.wait_for_path(landing).await;
    }

    /// The host's `action` on the game page `game`, until the game shows `status` (or a
    /// later one): a live reload landing with the click may swallow it, so it is tried
    /// again on a fresh page.
    async fn host_action(&self, game: &str, action: &str, status: &str) {
        // The heading's badge names the status in the page's language; its
        // `data-status` is the status itself.
        let shows = |page: &str, status: &str| page.contains(&format!("data-status=\"{status}\""));
        let after = |page: &str| {
            shows(page, status)
                || (matches!(status, "running" | "enrollment_closed") && shows(page, "starting"))
        };
        for _ in 0..5 {
            self.goto(game).await;
            let page = html(self.browser).await;
            if after(&page) {
                return;
            }
            let button = format!("form[action$='/host/{action}'] button");
            if page.contains(&format!("/host/{action}\"")) {
                // Closing enrollment and starting cannot be undone: their forms ask.
                if matches!(action, "close" | "start") {
                    click_confirming(self.browser, &button).await;
                } else {
                    click(self.browser, &button).await;
                }
                if after(&html(self.browser).await) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("the host could not {action} the game");
    }

    /// Waits until the browser shows `path` (a click's navigation may still be going).
    async fn wait_for_path(&self, path: &str) {
        let limit = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let url = self.browser.current_url().await.unwrap();
            if url.path() == path {
                return;
            }
            if std::time::Instant::now() > limit {
                panic!("expected {path}, at {url}: {}", html(self.browser).await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn shot(&self, name: &str) {
        if let Some(dir) = &self.shots {
            let png = self.browser.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Reloads `path` until its HTML satisfies `ready`.
    async fn until(&self, path: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let limit = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            self.goto(path).await;
            let page = html(self.browser).await;
            if ready(&page) {
                return page;
            }
            assert!(
                std::time::Instant::now() < limit,
                "waiting for {what}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_is_played_through_the_pages_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        find_program(&["chromium", "chromium-browser", "google-chrome"]),
        find_program(&["chromedriver"]),
    ) else {
        eprintln!(
            "\n!!!!!!!! SKIPPED web_browser: chromium and chromedriver are not installed \
             (apt-get install -y chromium chromium-driver; scripts/test.sh does it as root) \
             !!!!!!!!\n"
        );
        return;
    };
    let port = free_port();
    let _driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let data = tempfile::tempdir().unwrap();
    let engines = format!("reference={}", engine_binary().display());
    let vars = [
        ("GALAXY_PROCESS_ENGINES", engines),
        ("GALAXY_MAIL_DOMAIN", "galaxy.test".to_owned()),
    ];
    let server = start_dev(&data, "1s", &vars).await;
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=en-US"],
        }
    });
    let connect = || async {
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
    };
    let browser = eventually(Duration::from_secs(20), "chromedriver", || async {
        connect().await.ok()
    })
    .await;
    let shots = std::env::var_os("GALAXY_WEB_SCREENSHOTS").map(|_| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let session = Session {
        browser: &browser,
        base: format!("http://{}", server.addr),
        mail: server.mail.clone(),
        shots,
    };
    play(&session).await;
    browser.close().await.unwrap();
    server.stop.send(()).unwrap();
    server.served.await.unwrap().unwrap();
}

async fn play(s: &Session<'_>) {
    let b = s.browser;
    // The host creates the game (two turns, no schedule: the admin forces them).
    s.login("host@example.org").await;
    s.goto("/games/new").await;
    fill(b, "#name", "Browser galaxy").await;
    fill(b, "#min_players", "2").await;
    fill(b, "#max_players", "4").await;
    fill(b, "#turn_schedule", "0 0 1 1 *").await;
    fill(b, "#engine_settings", r#"{"max_turns": 2}"#).await;
    s.shot("create-game").await;
    click(b, "form[action='/games'] button[type=submit]").await;
    let game_url = b.current_url().await.unwrap();
    let game = game_url.path().to_owned();
    assert!(game.starts_with("/games/"), "{game_url}");
    s.host_action(&game, "open", "enrollment_open").await;
    // The enrollment deadline (a week ahead) counts down in whole days, in the
    // page's language: the script reads the page's `lang` at every tick.
    s.goto(&game).await;
    // Spaces as the browser's ICU writes them (some versions put a no-break space
    // between a number and its unit) read as plain ones.
    let countdown = || async {
        let shown = b
            .execute(
                "return document.querySelector('time[data-countdown]').textContent;",
                vec![],
            )
            .await
            .unwrap();
        shown.as_str().unwrap().replace(['\u{a0}', '\u{202f}'], " ")
    };
    let english = countdown().await;
    assert!(english.contains("6d "), "{english}");
    b.execute(
        "document.documentElement.lang = 'de'; \
         document.querySelectorAll('time[data-countdown]').forEach(function (el) { el.textContent = ''; });",
        vec![],
    )
    .await
    .unwrap();
    let limit = std::time::Instant::now() + Duration::from_secs(10);
    let german = loop {
        let shown = countdown().await;
        if !shown.is_empty() {
            break shown;
        }
        assert!(std::time::Instant::now() < limit, "the countdown stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(german.contains("6 T "), "{german}");
    // Two players find it in the lobby and apply.
    for (email, race) in [
        ("ann@example.org", "Aldebarans"),
        ("bob@example.org", "Betelgeusians"),
    ] {
        s.login(email).await;
        s.goto("/?q=browser").await;
        click(b, "main table a").await;
        fill(b, "#race_name", race).await;
        click(b, "form[action$='/apply'] button").await;
        assert!(html(b).await.contains("Browser galaxy"));
    }
    s.goto("/").await;
    s.shot("lobby").await;
    // The deadline, rewritten by the script into the viewer's time, names its zone (the
    // labels speak of no zone, the forms of UTC).
    let deadline = text_of(b, "main table time[data-local]").await;
    let rewritten = !deadline.starts_with(|c: char| c.is_ascii_digit());
    let zoned = deadline.contains("UTC") || deadline.contains("GMT");
    assert!(rewritten && zoned, "{deadline}");
    // Keyboard: the first Tab reaches the skip link, whose Enter lands in the content.
    let body = find(b, "body").await;
    body.send_keys("\u{E004}").await.unwrap();
    let focused = b.active_element().await.unwrap();
    assert_eq!(
        focused.attr("class").await.unwrap().as_deref(),
        Some("skip")
    );
    focused.send_keys("\u{E007}").await.unwrap();
    let url = b.current_url().await.unwrap();
    assert_eq!(url.fragment(), Some("main"), "{url}");
    // The host approves both, closes enrollment and starts.
    s.login("host@example.org").await;
    // One approval per fresh page: a live reload (the approval's push event) may replace
    // the page between a click and the next lookup.
    for _ in 0..10 {
        s.goto(&game).await;
        if !html(b).await.contains("/approve\"") {
            break;
        }
        click(b, "form[action$='/approve'] button").await;
    }
    s.until(&game, "both players approved", |page| {
        page.contains("(2 / 4)")
    })
    .await;
    s.host_action(&game, "close", "enrollment_closed").await;
    // Cancelling asks first; the host says no and the game stays.
    let question = s
        .decline(&game, "form[action$='/host/cancel'] button")
        .await;
    assert!(question.contains("for good"), "{question}");
    s.goto(&game).await;
    assert!(html(b).await.contains("data-status=\"enrollment_closed\""));
    s.host_action(&game, "start", "running").await;
    s.until(&game, "the game running", |page| {
        assert!(!page.contains("data-status=\"start_failed\""), "{page}");
        page.contains("data-status=\"running\"")
    })
    .await;
    // Orders: a refused set, then an accepted one, checked by the engine inline.
    s.login("ann@example.org").await;
    s.goto(&game).await;
    let verdict = send_orders(b, r#"[{"kind": "build_industry", "planet": 99999}]"#).await;
    assert!(verdict.contains("refused"), "{verdict}");
    s.shot("orders-refused").await;
    let verdict = send_orders(b, "[]").await;
    assert!(verdict.contains("accepted"), "{verdict}");
    lapsed_orders_come_back(s, &game).await;
    // Ann writes to every race; the text is shown as text, never as markup.
    s.goto(&game).await;
    fill(b, "#message-text", "<b>Meet</b> at Vega?\nBring ships.").await;
    click(b, "form[action$='/messages'] button").await;
    mail_settings(s, &game).await;
    s.goto("/my").await;
    s.shot("my-games").await;
    // Bob reads it, sees Ann's race ready, and declares his own race ready without
    // orders: every race is ready, so turn 1 runs early, without the schedule (whose
    // next date is a year away) and without the admin.
    s.login("bob@example.org").await;
    s.goto(&game).await;
    let page = html(b).await;
    assert!(
        page.contains("&lt;b&gt;Meet&lt;/b&gt; at Vega?\nBring ships."),
        "{page}"
    );
    assert!(!page.contains("<b>Meet</b>"), "{page}");
    // Its line break shows as one (the text as rendered, not as stored).
    let shown = text_of(b, ".message-text").await;
    assert!(shown.contains("Vega?\nBring ships."), "{shown:?}");
    let races = text_of(b, "section[aria-labelledby=races]").await;
    assert!(races.contains("Aldebarans active ready"), "{races}");
    assert!(
        races.contains("Betelgeusians (your race) active"),
        "{races}"
    );
    assert!(
        !races.contains("Betelgeusians (your race) active ready"),
        "{races}"
    );
    if let Some(dir) = &s.shots {
        let png = element_png(b, "section[aria-labelledby=messages]").await;
        std::fs::write(dir.join("game-messages.png"), png).unwrap();
    }
    click(b, "form[action$='/ready'] button").await;
    s.until(&game, "the early turn 1", |page| {
        page.contains("id=\"current-turn\">1<")
    })
    .await;
    // The admin forces the last turn from the admin pages.
    s.login(dev::DEV_ADMIN).await;
    let id = game.trim_start_matches("/games/").to_owned();
    let mut forced = 0;
    let limit = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        s.goto("/admin/games?status=running").await;
        let page = html(b).await;
        let form = format!("form[action='/admin/games/{id}/force-next-turn'] button");
        if !page.contains(&format!("/admin/games/{id}/force-next-turn")) {
            break;
        }
        if forced == 0 {
            s.shot("admin-games").await;
        }
        click_confirming(b, &form).await;
        forced += 1;
        assert!(std::time::Instant::now() < limit, "the game did not finish");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(forced >= 1, "forced {forced} turns");
    s.goto(&format!("/admin/health?game={id}")).await;
    assert!(html(b).await.contains("Runtime records"));
    // A player reads the reports (the archived turn 1 too) and the standings chart.
    s.login("bob@example.org").await;
    let page = s
        .until(&game, "the game finished", |page| {
            page.contains("data-status=\"finished\"")
        })
        .await;
    assert!(page.contains("id=\"winner\""), "{page}");
    // The reason of the status tells the ending in words (the engine ends at turn 2).
    assert!(
        page.contains("Won by ") || page.contains("Ended on turn"),
        "{page}"
    );
    assert!(page.contains(" on turn 2."), "{page}");
    assert_eq!(page.matches("<polyline").count(), 2, "{page}");
    s.shot("game-finished").await;
    if let Some(dir) = &s.shots {
        let png = element_png(b, "section[aria-labelledby=standings]").await;
        std::fs::write(dir.join("standings-chart.png"), png).unwrap();
    }
    s.goto(&format!("{game}?turn=1")).await;
    let report = text_of(b, "#report").await;
    assert!(!report.is_empty());
    assert!(html(b).await.contains("Turn 1 · Betelgeusians"));
    // 360 px wide: the page still fits (no horizontal scrolling of the page itself).
    b.set_window_size(360, 800).await.unwrap();
    s.goto(&game).await;
    let overflow = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        serde_json::Value::Bool(true),
        "the game page is wider than 360 px"
    );
    s.shot("game-360px").await;
}

/// The player's mail on the game page: the orders address (orders by e-mail is on), a
/// new one on request, and the game's reminders turned off, kept across a reload.
async fn mail_settings(s: &Session<'_>, game: &str) {
    let b = s.browser;
    s.goto(game).await;
    let address = text_of(b, "#orders-address").await;
    assert!(
        address.starts_with("orders+") && address.ends_with("@galaxy.test"),
        "{address}"
    );
    click(b, "form[action$='/orders-address/rotate'] button").await;
    let rotated = text_of(b, "#orders-address").await;
    assert!(
        rotated.starts_with("orders+") && rotated != address,
        "{rotated}"
    );
    let ticked = || async {
        b.execute(
            "return document.querySelector('#pref-reminders').checked;",
            vec![],
        )
        .await
        .unwrap()
    };
    assert_eq!(ticked().await, serde_json::json!(true));
    // Untick and send in one step, so a live reload cannot come between the two.
    let sent = find(b, "form[action$='/preferences'] button").await;
    b.execute(
        "document.querySelector('#pref-reminders').checked = false; \
         document.querySelector(\"form[action$='/preferences'] button\").click();",
        vec![],
    )
    .await
    .unwrap();
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    while sent.tag_name().await.is_ok() {
        assert!(
            std::time::Instant::now() < limit,
            "the preferences form led nowhere"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loaded(b).await;
    s.goto(game).await;
    assert_eq!(
        ticked().await,
        serde_json::json!(false),
        "{}",
        html(b).await
    );
    s.shot("game-mail").await;
}

/// Orders typed while the session ended (here: the browser dropped its cookie, as at
/// the session's expiry) come back: the page that answers them shows them and the
/// script keeps them, the login returns to the game, whose orders form has them again,
/// not sent until the player sends them.
async fn lapsed_orders_come_back(s: &Session<'_>, game: &str) {
    let b = s.browser;
    let typed = "[ ]";
    s.goto(game).await;
    // The session ends and the browser drops its cookie, as at the session's expiry
    // or a sign-out in another tab (a dead cookie still sent is the pages' tests').
    b.delete_cookie("galaxy_session").await.unwrap();
    fill(b, "#orders-text", typed).await;
    click(b, "form[action$='/orders'] button").await;
    let kept = find(b, "#draft-kept").await;
    assert!(kept.is_displayed().await.unwrap(), "{}", html(b).await);
    let shown = find(b, "#lapsed-orders").await.prop("value").await.unwrap();
    assert_eq!(shown.as_deref(), Some(typed));
    s.shot("orders-lapsed").await;
    click(b, "#lapsed-login").await;
    s.login_here("ann@example.org", game).await;
    let orders = find(b, "#orders-text").await.prop("value").await.unwrap();
    assert_eq!(orders.as_deref(), Some(typed), "{}", html(b).await);
    let restored = find(b, "#orders-restored").await;
    assert!(restored.is_displayed().await.unwrap());
    let verdict = send_orders(b, typed).await;
    assert!(verdict.contains("accepted"), "{verdict}");
    // Shown once: the game page opened again has no draft to give back.
    s.goto(game).await;
    let restored = find(b, "#orders-restored").await;
    assert!(!restored.is_displayed().await.unwrap());
    // Orders whose answer never came back come back too: here an error page in place
    // of the verdict (the server's 404 for a game id it cannot read, as a 503 from the
    // session store or a proxy would be). The game's form gives them back, and once an
    // answer shows they are gone.
    let unanswered = "[]";
    fill(b, "#orders-text", unanswered).await;
    let lost = "document.querySelector(\"form[action$='/orders']\")\
                .setAttribute('action', '/games/lost/orders');";
    b.execute(lost, vec![]).await.unwrap();
    click(b, "form[action$='/orders'] button").await;
    let url = b.current_url().await.unwrap();
    assert_eq!(url.path(), "/games/lost/orders", "{}", html(b).await);
    assert!(b.find(Locator::Css("#orders-text")).await.is_err());
    s.goto(game).await;
    let orders = find(b, "#orders-text").await.prop("value").await.unwrap();
    assert_eq!(orders.as_deref(), Some(unanswered), "{}", html(b).await);
    let restored = find(b, "#orders-restored").await;
    assert!(restored.is_displayed().await.unwrap());
    let verdict = send_orders(b, unanswered).await;
    assert!(verdict.contains("accepted"), "{verdict}");
    let restored = find(b, "#orders-restored").await;
    assert!(!restored.is_displayed().await.unwrap(), "{}", html(b).await);
    s.goto(game).await;
    let orders = find(b, "#orders-text").await.prop("value").await.unwrap();
    assert_eq!(orders.as_deref(), Some(unanswered));
    let restored = find(b, "#orders-restored").await;
    assert!(!restored.is_displayed().await.unwrap(), "{}", html(b).await);
    // A draft older than a day goes on any page, not only when its game's form opens
    // again (which may never happen); a fresh one stays for its game.
    b.execute(
        "localStorage.setItem('galaxy-orders:/games/old', \
           JSON.stringify({text: 'secret', at: Date.now() - 2 * 86400000})); \
         localStorage.setItem('galaxy-orders:/games/new', \
           JSON.stringify({text: 'fresh', at: Date.now()}));",
        vec![],
    )
    .await
    .unwrap();
    s.goto("/").await;
    let left = b
        .execute(
            "return [localStorage.getItem('galaxy-orders:/games/old') === null, \
                     localStorage.getItem('galaxy-orders:/games/new') !== null];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(left, serde_json::json!([true, true]));
    // Signing out leaves no orders in the browser for its next user.
    let keep = "localStorage.setItem('galaxy-orders:/games/kept', \
                JSON.stringify({text: 'secret', at: Date.now()}));";
    b.execute(keep, vec![]).await.unwrap();
    click(b, "form[action='/logout'] button").await;
    loaded(b).await;
    let left = b
        .execute(
            "return Object.keys(localStorage).filter(k => k.indexOf('galaxy-orders:') === 0);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(left, serde_json::json!([]), "{}", html(b).await);
    s.login("ann@example.org").await;
}
