//! The operator console, as a person uses it: real headless Chromium
//! (Debian's `chromium` and `chromium-driver`, installed by `.ci/setup`)
//! driven over WebDriver against a real server on a socket, with simulated
//! locks checking in through the real pipeline. Plus the checks a browser
//! does not need: cookie flags, CSRF, escaping, and every console route for
//! every role.
//!
//! Screenshots go to `target/console-screenshots/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use update_server::config::Config;

use lock_app::scheduler::summary::UsageSummary;

use crate::support::{Lock, TestApp, free_port, ids, learned_usage};

const MODEL: &str = "nl-lock-v2";
const TARGET: &str = "nl-lock-v2/2.0.0.nlfw";

/// A server on a real socket (the binary's connection loop).
struct Live {
    app: TestApp,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Live {
    async fn start(config: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::for_data_dir(dir.path());
        config(&mut c);
        let app = TestApp::start(dir, c).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(update_server::server::run(
            app.state.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            app,
            base: format!("http://{addr}"),
            stop: Some(tx),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Releases 1.0.0 and 2.0.0 published, `n` locks registered and checked in.
async fn fleet(live: &Live, n: usize) -> Vec<Lock> {
    let app = &live.app;
    let v1: Vec<u8> = (0..12_000u32).map(|i| (i % 249) as u8).collect();
    let mut v2 = v1.clone();
    v2[300..400].fill(9);
    let e1 = app.envelope(MODEL, "1.0.0", 1, &v1);
    let e2 = app.envelope(MODEL, "2.0.0", 2, &v2);
    app.publish(&[e1, e2]).await;
    let mut locks = app.register(&ids("lock", n), MODEL, &["east"]).await;
    for r in app.check_in_all(&mut locks, 64).await {
        r.unwrap();
    }
    locks
}

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free port, and a headless Chromium session.
async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; bash .ci/setup installs it)");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several TLS back ends are linked in; WebDriver here is plain HTTP,
    // but the client builder wants one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::map::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("WebDriver session with headless Chromium");
    (driver, client)
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    // Live parts are replaced by the page's poller: an element found a
    // moment ago may be gone; find it again.
    let mut last = String::new();
    for _ in 0..20 {
        let e = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match e.text().await {
            Ok(t) => return t,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css}: {last}")
}

async fn exists(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css)).await.is_ok()
}

/// The element at `css`, waiting for it: after a click the next page may
/// still be loading (on a loaded CI machine it was not there yet).
async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = element(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    element(c, css).await.click().await.unwrap();
}

async fn sign_in(c: &Client, live: &Live, token: &str) {
    c.goto(&live.url("/console/")).await.unwrap();
    fill(c, "#token", token).await;
    click(c, "#sign-in").await;
    text(c, "#total-locks").await;
}

/// Wait until the text at `css` satisfies `ok`, re-reading it (the page
/// updates itself; nothing reloads it here).
async fn until(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = text(c, css).await;
        if ok(&t) {
            return t;
        }
        assert!(Instant::now() < deadline, "{css} still {t:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn rollout_status(app: &TestApp, id: &str) -> Value {
    app.json(
        axum::http::Method::GET,
        &format!("/admin/v1/rollouts/{id}"),
        Some(&app.admin),
        None,
    )
    .await
    .1
}

/// The door of a lock in a small office (local time): busy on weekday
/// mornings and evenings, some use at lunch and on Saturdays, rare late on
/// Wednesdays; never at night or on Sundays. Uses per hour, each week.
fn door_week(weekday: usize, hour: i64) -> usize {
    match (weekday, hour) {
        (0..=4, 7) => 20,
        (0..=4, 8) | (0..=4, 18) => 16,
        (0..=4, 12) => 3,
        (2, 22) => 1,
        (5, 10 | 11) => 10,
        (5, 15) => 2,
        _ => 0,
    }
}

/// The device page's heatmap shows `door` hour by hour: each cell's class
/// is the level the lock reported (busy, some, rare, never) and the quiet
/// slots are the lock's own, outlined where they fall.
async fn check_heatmap(c: &Client, door: &UsageSummary) {
    const NAMES: [&str; 4] = ["never", "rare", "some", "busy"];
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    // The summary is the door above (busy/some/rare/never as the codec
    // packs them), so the page has something of each level to show.
    assert_eq!(
        [(0, 7), (4, 18), (0, 12), (5, 15), (2, 22), (0, 3), (6, 7)]
            .map(|(d, h)| door.heat_at(d, h)),
        [3, 3, 2, 2, 1, 0, 0]
    );
    // Landmarks, read from the page by weekday and hour.
    for (day, hour, class) in [
        ("Mon", 7, "heat-busy"),
        ("Fri", 18, "heat-busy"),
        ("Sat", 11, "heat-busy"),
        ("Mon", 12, "heat-some"),
        ("Wed", 22, "heat-rare"),
        ("Mon", 3, "heat-never"),
        ("Sun", 7, "heat-never"),
        ("Tue", 22, "heat-never"),
    ] {
        let css = format!("#heatmap tr[data-day='{day}'] td[data-hour='{hour}']");
        let got = c
            .find(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(
            got.split(' ').any(|k| k == class),
            "{day} {hour}:00: {got:?}, want {class}"
        );
    }
    // Every hour of the week.
    let rows = c.find_all(Locator::Css("#heatmap tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 7);
    for (d, row) in rows.iter().enumerate() {
        assert_eq!(
            row.attr("data-day").await.unwrap().as_deref(),
            Some(DAYS[d])
        );
        let cells = row.find_all(Locator::Css("td[data-hour]")).await.unwrap();
        assert_eq!(cells.len(), 24, "{}", DAYS[d]);
        let mut quiet_cells = 0;
        for (h, cell) in cells.iter().enumerate() {
            let class = cell.attr("class").await.unwrap().unwrap_or_default();
            let classes: Vec<&str> = class.split(' ').collect();
            let want = format!("heat-{}", NAMES[usize::from(door.heat_at(d, h))]);
            assert!(
                classes.contains(&want.as_str()),
                "{} {h}:00: {class:?}, want {want}",
                DAYS[d]
            );
            if classes.contains(&"in-quiet") {
                quiet_cells += 1;
                assert_eq!(
                    door.heat_at(d, h),
                    0,
                    "{} {h}:00: a quiet slot in use",
                    DAYS[d]
                );
            }
        }
        // The lock's quiet slot for that day, as text and outlined.
        let slot = door.quiet[d].expect("a slot every day (all-day window)");
        let (start, end) = (
            u32::from(slot.start_minute()),
            u32::from(slot.start_minute()) + u32::from(slot.minutes()),
        );
        let hh_mm = |m: u32| format!("{:02}:{:02}", m / 60 % 24, m % 60);
        let quiet = row
            .find(Locator::Css("td.quiet"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            quiet,
            format!("{}–{}", hh_mm(start), hh_mm(end)),
            "{}",
            DAYS[d]
        );
        assert!(
            quiet_cells >= 1,
            "{}: no hour outlined for {quiet}",
            DAYS[d]
        );
    }
    // The door's busiest times are not where the lock would install.
    for d in 0..5 {
        let slot = door.quiet[d].unwrap();
        let hour = usize::from(slot.start) / 4;
        assert_eq!(
            door_week(d, hour as i64),
            0,
            "day {d}: quiet slot at {hour}:00"
        );
    }
    let legend = text(c, "#heat-legend").await;
    assert!(
        ["never", "rare", "some", "busy", "quiet slot"]
            .iter()
            .all(|w| legend.contains(w)),
        "{legend}"
    );
}

/// An operator signs in, previews and starts a rollout from the form,
/// watches wave progress move while locks check in, pauses it with a
/// reason after a confirmation step, and sees the next check-ins get no
/// assignment; an auto-paused rollout shows why; device search leads to a
/// lock's history; sign-out ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_rollout_from_the_console() {
    let live = Live::start(|_| {}).await;
    let mut locks = fleet(&live, 40).await;
    let app = &live.app;
    let operator = app.token("operator").await;
    let (_driver, c) = browser().await;

    sign_in(&c, &live, &operator).await;
    assert_eq!(text(&c, "#total-locks").await, "40");
    shot(&c, "fleet").await;

    // The form, with a preview first.
    c.goto(&live.url("/console/rollouts")).await.unwrap();
    click(&c, "#new-rollout").await;
    fill(&c, "#name", "winter fix <b>bold</b>").await;
    c.find(Locator::Css("#target"))
        .await
        .unwrap()
        .select_by_value(TARGET)
        .await
        .unwrap();
    fill(&c, "#waves", "25:24h, 100:0s").await;
    fill(&c, "#failure_rate", "20").await;
    fill(&c, "#min_sample", "50").await;
    click(&c, "#preview").await;
    let preview = text(&c, "#preview-result").await;
    assert!(preview.contains("40 eligible"), "{preview}");
    shot(&c, "rollout-preview").await;
    click(&c, "#create-start").await;
    let state = text(&c, "#rollout-state").await;
    assert_eq!(state, "running");
    // The name is shown as text, not markup.
    let title = text(&c, "h1").await;
    assert!(title.contains("<b>bold</b>"), "{title}");
    let url = c.current_url().await.unwrap();
    let id = url.path().rsplit('/').next().unwrap().to_owned();

    // Locks check in, get it, install and confirm: the page follows.
    for r in app.check_in_all(&mut locks, 64).await {
        r.unwrap();
    }
    let wave0: Vec<usize> = (0..locks.len())
        .filter(|i| locks[*i].assigned().as_deref() == Some(TARGET))
        .collect();
    assert!(!wave0.is_empty() && wave0.len() < locks.len());
    for i in &wave0 {
        locks[*i].install(TARGET, "2.0.0");
    }
    for i in &wave0 {
        let one = &mut locks[*i..*i + 1];
        for r in app.check_in_all(one, 1).await {
            r.unwrap();
        }
    }
    let confirmed = until(&c, "#wave-0 .confirmed", |t| t == wave0.len().to_string()).await;
    assert_eq!(confirmed, wave0.len().to_string());
    shot(&c, "rollout-progress").await;

    // Pause, with a reason, after a confirmation step.
    click(&c, "#action-pause").await;
    fill(&c, "#reason", "door survey first").await;
    shot(&c, "rollout-confirm").await;
    click(&c, "#confirm").await;
    assert_eq!(text(&c, "#rollout-state").await, "paused");
    assert!(
        text(&c, "#rollout-reason")
            .await
            .contains("door survey first")
    );
    // The next check-ins get nothing new.
    let before: usize = locks.iter().filter(|l| l.assigned().is_some()).count();
    for r in app.check_in_all(&mut locks, 64).await {
        r.unwrap();
    }
    let newly: usize = locks
        .iter()
        .enumerate()
        .filter(|(i, l)| !wave0.contains(i) && l.assigned().as_deref() == Some(TARGET))
        .count();
    assert_eq!(
        newly, 0,
        "locks were assigned while paused ({before} before)"
    );
    let s = rollout_status(app, &id).await;
    assert_eq!(s["state"], "paused");

    // A rollout that pauses itself says why.
    let (s, v) = app
        .json(
            axum::http::Method::POST,
            &format!("/admin/v1/rollouts/{id}/abort"),
            Some(&app.admin),
            Some(json!({"reason": "make way"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bad = app
        .rollout(
            json!({"name": "bad", "target": TARGET, "start": true, "groups": ["east"],
                        "failure_threshold": {"rate": 0.2, "min_sample": 3}}),
        )
        .await;
    for r in app.check_in_all(&mut locks, 64).await {
        r.unwrap();
    }
    let mut failed = 0;
    for l in locks.iter_mut() {
        if l.assigned().as_deref() == Some(TARGET) && l.version != "2.0.0" && failed < 4 {
            l.roll_back(TARGET, "self_test_motor");
            failed += 1;
        }
    }
    for r in app.check_in_all(&mut locks, 64).await {
        r.unwrap();
    }
    c.goto(&live.url(&format!("/console/rollouts/{bad}")))
        .await
        .unwrap();
    assert_eq!(text(&c, "#rollout-state").await, "paused");
    assert!(text(&c, "#rollout-reason").await.contains("auto-paused"));
    let failed_list = text(&c, "#failed").await;
    assert!(failed_list.contains("rolled_back"), "{failed_list}");
    shot(&c, "rollout-auto-paused").await;

    // lock-00010 reports what it has learned of its door (once: the next
    // check-ins carry no summary, as a real lock's).
    let door = learned_usage("Europe/Berlin", door_week);
    locks[10].usage = Some(door.to_text());
    for r in app.check_in_all(&mut locks[10..11], 1).await {
        r.unwrap();
    }
    assert!(locks[10].usage.is_none());

    // Device search, then a lock's history and its door's week.
    c.goto(&live.url("/console/devices")).await.unwrap();
    fill(&c, "#prefix", "lock-0001").await;
    click(&c, "#search").await;
    let rows = text(&c, "#devices").await;
    assert!(
        rows.contains("lock-00010") && !rows.contains("lock-00020"),
        "{rows}"
    );
    click(&c, "#devices tbody a").await;
    let history = text(&c, "#history").await;
    assert!(!history.trim().is_empty(), "the lock's history is shown");
    assert_eq!(text(&c, "h1").await, "Lock lock-00010");
    check_heatmap(&c, &door).await;
    shot(&c, "device-heatmap").await;

    // A form without its CSRF token, submitted from the page: refused with
    // 403 and the reason, nothing saved.
    c.goto(&live.url("/console/sites")).await.unwrap();
    fill(&c, "#site-form input[name=site]", "no-csrf-site").await;
    fill(&c, "#site-form input[name=window_start]", "02:00").await;
    fill(&c, "#site-form input[name=window_end]", "04:00").await;
    c.execute(
        "document.querySelector('#site-form input[name=csrf]').remove(); return true;",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "#site-form button[type=submit]").await;
    let refused = text(&c, ".error-card").await;
    assert!(refused.contains("403"), "{refused}");
    assert!(refused.contains("csrf"), "{refused}");
    shot(&c, "csrf-refused").await;
    let (_, sites) = app
        .json(
            axum::http::Method::GET,
            "/admin/v1/sites",
            Some(&app.admin),
            None,
        )
        .await;
    assert!(!sites.to_string().contains("no-csrf-site"), "{sites}");

    // Sign out: back at the sign-in page, and the pages want a sign-in again.
    click(&c, "#sign-out").await;
    text(&c, "#sign-in").await;
    c.goto(&live.url("/console/fleet")).await.unwrap();
    assert!(exists(&c, "#sign-in").await, "signed out");
    c.close().await.unwrap();
}

/// A viewer sees no button it may not use, and the server refuses the
/// request anyway when it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_mutating_buttons_and_is_refused() {
    let live = Live::start(|_| {}).await;
    let _locks = fleet(&live, 5).await;
    let app = &live.app;
    let id = app
        .rollout(json!({"name": "r1", "target": TARGET, "start": true}))
        .await;
    let viewer = app.token("viewer").await;
    let (_driver, c) = browser().await;
    sign_in(&c, &live, &viewer).await;
    c.goto(&live.url("/console/rollouts")).await.unwrap();
    text(&c, "#rollouts").await;
    assert!(!exists(&c, "#new-rollout").await);
    c.goto(&live.url(&format!("/console/rollouts/{id}")))
        .await
        .unwrap();
    text(&c, "#rollout-state").await;
    for b in ["#action-pause", "#action-abort", "#action-resume"] {
        assert!(!exists(&c, b).await, "{b} shown to a viewer");
    }
    c.goto(&live.url("/console/devices/lock-00001"))
        .await
        .unwrap();
    text(&c, "#device-fields").await;
    assert!(!exists(&c, "#revoke").await);
    c.goto(&live.url("/console/sites")).await.unwrap();
    text(&c, "#sites").await;
    assert!(
        !exists(&c, "#site-form").await,
        "the site form shown to a viewer"
    );
    c.goto(&live.url("/console/security")).await.unwrap();
    text(&c, "#roots").await;
    assert!(!exists(&c, "#create-token").await);
    shot(&c, "viewer-security").await;
    // Posting anyway, from the page, with the session's own CSRF token.
    let csrf: String = c
        .execute(
            "return document.querySelector('input[name=csrf]').value",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let status = c
        .execute_async(
            &format!(
                "const done = arguments[0]; fetch('/console/rollouts/{id}/action', {{method: 'POST', \
                 headers: {{'content-type': 'application/x-www-form-urlencoded'}}, \
                 body: 'csrf={csrf}&action=pause&reason=x'}}).then(r => done(r.status));"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    assert_eq!(rollout_status(app, &id).await["state"], "running");
    c.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// Without a browser: cookies, CSRF, escaping, every route for every role.

/// A signed-in HTTP client: (client, csrf token).
async fn session(live: &Live, token: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(live.url("/console/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = field(&page, "csrf");
    let r = client
        .post(live.url("/console/login"))
        .form(&[("token", token), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let page = client
        .get(live.url("/console/rollouts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (client, field(&page, "csrf"))
}

/// The value of the first hidden input `name` in `html`.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_csp_and_csrf() {
    let live = Live::start(|_| {}).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(live.url("/console/login")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let login_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "no inline script or style"
    );
    let csrf = field(&page, "csrf");
    let cookie_pair = login_cookie.split(';').next().unwrap().to_owned();
    // Sign-in without the form's token: refused.
    let r = client
        .post(live.url("/console/login"))
        .header("cookie", &cookie_pair)
        .form(&[("token", live.app.admin.as_str()), ("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    // A wrong token: 401, no session.
    let r = client
        .post(live.url("/console/login"))
        .header("cookie", &cookie_pair)
        .form(&[("token", "nlt_wrong"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    // The right one: a session cookie with the right flags.
    let r = client
        .post(live.url("/console/login"))
        .header("cookie", &cookie_pair)
        .form(&[("token", live.app.admin.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = set.iter().find(|c| c.starts_with("nl_console=")).unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");

    // A form without its CSRF token: 403, nothing changed.
    let (client, csrf) = session_of(&live, &live.app.admin).await;
    let r = client
        .post(live.url("/console/tokens"))
        .form(&[("name", "sneaky"), ("role", "security-admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let r = client
        .post(live.url("/console/tokens"))
        .form(&[
            ("name", "sneaky"),
            ("role", "security-admin"),
            ("csrf", "0000"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let (_, tokens) = live
        .app
        .json(
            axum::http::Method::GET,
            "/admin/v1/tokens",
            Some(&live.app.admin),
            None,
        )
        .await;
    assert!(!tokens.to_string().contains("sneaky"));
    // With it: created, shown once.
    let r = client
        .post(live.url("/console/tokens"))
        .form(&[
            ("name", "ops-anna"),
            ("role", "operator"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(r.text().await.unwrap().contains("id=\"new-token\">nlt_"));

    // Behind a TLS proxy the cookie is Secure.
    let live = Live::start(|c| c.console.secure_cookies = Some(true)).await;
    let r = client.get(live.url("/console/login")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

async fn session_of(live: &Live, token: &str) -> (reqwest::Client, String) {
    session(live, token).await
}

/// Markup in a rollout name, a pause reason and a token name is shown as
/// text everywhere it appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_from_users_is_escaped() {
    let live = Live::start(|_| {}).await;
    let _locks = fleet(&live, 3).await;
    let app = &live.app;
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let id = app
        .rollout(json!({"name": evil, "target": TARGET, "start": true}))
        .await;
    let (s, v) = app
        .json(
            axum::http::Method::POST,
            &format!("/admin/v1/rollouts/{id}/pause"),
            Some(&app.admin),
            Some(json!({"reason": evil})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .json(
            axum::http::Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": evil, "role": "viewer"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (client, _) = session(&live, &app.admin).await;
    for page in [
        format!("/console/rollouts/{id}"),
        "/console/rollouts".to_owned(),
        "/console/fleet".to_owned(),
        format!("/console/rollouts/{id}/progress"),
        "/console/audit".to_owned(),
        "/console/security".to_owned(),
    ] {
        let html = client
            .get(live.url(&page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("<script>alert"), "{page}: raw markup");
        assert!(!html.contains("<img src=x"), "{page}: raw markup");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}: the name is not shown as text"
        );
    }
}

/// The fleet page counts stale locks and the security page revoked ones
/// past the rows it shows (20 and 50): 25 locks that never checked in are
/// counted, not the 20 listed (past 1,000 the page shows "1000+").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_and_security_lists_are_counted_past_what_they_show() {
    let live = Live::start(|_| {}).await;
    let app = &live.app;
    let locks = app.register(&ids("quiet", 25), MODEL, &[]).await;
    for lock in locks.iter().take(3) {
        let r = app
            .json(
                axum::http::Method::POST,
                &format!("/admin/v1/devices/{}/revoke", lock.id),
                Some(&app.admin),
                Some(json!({"reason": "count"})),
            )
            .await;
        assert!(r.0.is_success(), "{r:?}");
    }
    let token = app.token("security-admin").await;
    let (client, _) = session(&live, &token).await;
    let page = |path: &'static str| {
        let client = client.clone();
        let url = live.url(path);
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let fleet = page("/console/fleet").await;
    // Revoked locks are not active, so not stale.
    assert!(fleet.contains(r#"id="stale-count">22<"#), "{fleet}");
    assert!(fleet.contains("20 of 22 shown"), "{fleet}");
    let security = page("/console/security").await;
    assert!(
        security.contains(r#"id="revoked-count">(3)<"#),
        "{security}"
    );
}

/// `[console] enabled = false`: no console route is served (404), the admin
/// API and check-ins are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_can_be_turned_off() {
    let live = Live::start(|c| c.console.enabled = false).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let routes = update_server::console::ROUTES
        .iter()
        .chain(update_server::console::PUBLIC_ROUTES);
    for (method, path) in routes {
        let url = live.url(&path.replace("{id}", "x").replace("{file}", "console.css"));
        let r = if *method == "GET" {
            client.get(url)
        } else {
            client.post(url).form(&[("csrf", "x")])
        }
        .send()
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{method} {path}");
    }
    let whoami = client
        .get(live.url("/admin/v1/whoami"))
        .bearer_auth(&live.app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status().as_u16(), 200);
}

/// Every console route for every role (and for nobody): pages each role
/// may read answer 200, changes a role may not make are refused with 403
/// (the API refuses them whatever the page shows), and without a session
/// everything leads to the sign-in page; the routes open without a session
/// (`PUBLIC_ROUTES`) answer the same to everyone, and sign-out works for
/// every role. (`console::pages` checks that the two lists are every
/// route the router mounts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_route_for_every_role() {
    use update_server::auth::Role;
    let live = Live::start(|_| {}).await;
    let _locks = fleet(&live, 3).await;
    let app = &live.app;
    let rollout = app
        .rollout(json!({"name": "matrix", "target": TARGET, "start": true}))
        .await;
    // What each route needs (the API's role for what it does).
    let needs = |method: &str, path: &str| -> Role {
        match (method, path) {
            ("GET", "/console/audit" | "/console/audit.csv") => Role::SecurityAdmin,
            ("GET", "/console/rollouts/new") => Role::Operator,
            ("GET", _) => Role::Viewer,
            ("POST", "/console/logout") => Role::Viewer,
            (
                "POST",
                "/console/rollouts/new"
                | "/console/rollouts/{id}/confirm"
                | "/console/rollouts/{id}/action"
                | "/console/sites",
            ) => Role::Operator,
            ("POST", _) => Role::SecurityAdmin,
            _ => unreachable!(),
        }
    };
    let fill = |path: &str| {
        path.replace(
            "{id}",
            if path.contains("rollouts") {
                &rollout
            } else if path.contains("tokens") {
                "tk_none"
            } else {
                "lock-00001"
            },
        )
    };
    // Nobody signed in.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in update_server::console::ROUTES {
        let url = live.url(&fill(path));
        let r = if *method == "GET" {
            anon.get(url)
        } else {
            anon.post(url).form(&[("csrf", "x")])
        }
        .send()
        .await
        .unwrap();
        assert_eq!(
            r.status(),
            reqwest::StatusCode::SEE_OTHER,
            "{method} {path}"
        );
        assert_eq!(r.headers()["location"], "/console/login", "{method} {path}");
    }
    // The open routes, signed out (`None`) and for each role: the way in
    // leads to the sign-in page or, with a session, to the fleet; the
    // sign-in page and the assets are served; a sign-in post without the
    // form's CSRF cookie is refused.
    let mut clients = vec![(None, anon.clone())];
    for role in Role::ALL {
        let (client, _) = session(&live, &app.token(role.as_str()).await).await;
        clients.push((Some(role), client));
    }
    for (role, client) in &clients {
        for (method, path) in update_server::console::PUBLIC_ROUTES {
            let url = live.url(&path.replace("{file}", "console.css"));
            let r = if *method == "GET" {
                client.get(url)
            } else {
                client.post(url).form(&[("csrf", "x"), ("token", "nl_x")])
            }
            .send()
            .await
            .unwrap();
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            let expected = match (*method, *path, role) {
                ("POST", _, _) => (403, None),
                ("GET", "/console/assets/{file}", _) => (200, None),
                ("GET", "/console/login", None) => (200, None),
                (_, _, None) => (303, Some("/console/login")),
                (_, _, Some(_)) => (303, Some("/console/fleet")),
            };
            assert_eq!(
                (status, location.as_deref()),
                expected,
                "{role:?} {method} {path}"
            );
        }
    }
    for role in Role::ALL {
        let token = app.token(role.as_str()).await;
        for (method, path) in update_server::console::ROUTES {
            let (client, csrf) = session(&live, &token).await;
            let url = live.url(&fill(path));
            let r = if *method == "GET" {
                client.get(url).send().await.unwrap()
            } else {
                // Harmless values: an unknown action, a bad site, a pause
                // reason; what matters is whether the role gets through.
                let form: Vec<(&str, &str)> = vec![
                    ("csrf", csrf.as_str()),
                    ("action", "pause"),
                    ("reason", "matrix"),
                    ("site", "matrix-site"),
                    ("window_start", "01:00"),
                    ("window_end", "04:00"),
                    ("name", "matrix-token"),
                    ("role", "viewer"),
                    ("submit", "preview"),
                    ("target", TARGET),
                    ("waves", "100:0s"),
                ];
                client.post(url).form(&form).send().await.unwrap()
            };
            let status = r.status().as_u16();
            if *path == "/console/logout" {
                assert_eq!(status, 303, "{} sign-out", role.as_str());
                assert_eq!(r.headers()["location"], "/console/login");
                // The session is gone: its next page leads to the sign-in.
                let after = client.get(live.url("/console/fleet")).send().await.unwrap();
                assert_eq!(
                    after.status().as_u16(),
                    303,
                    "{} after sign-out",
                    role.as_str()
                );
                continue;
            }
            if role >= needs(method, path) {
                assert_ne!(status, 403, "{} {method} {path}", role.as_str());
                assert!(status < 500, "{} {method} {path}: {status}", role.as_str());
            } else {
                assert_eq!(status, 403, "{} {method} {path}", role.as_str());
            }
            if *path == "/console/rollouts/{id}/action" && role >= Role::Operator {
                // Resume again for the next role.
                let _ = app
                    .json(
                        axum::http::Method::POST,
                        &format!("/admin/v1/rollouts/{rollout}/resume"),
                        Some(&app.admin),
                        Some(json!({"reason": "matrix"})),
                    )
                    .await;
            }
        }
    }
}
