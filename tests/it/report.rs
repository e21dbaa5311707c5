//! `accolade report` opened in a real browser: Debian's headless Chromium, driven over the
//! WebDriver protocol by chromedriver. The test reads back what Chromium laid out (one chart
//! per badge with a drawn line, the counts, the leaderboard), checks that the page loaded
//! nothing from anywhere, and saves a screenshot whose path it prints.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them); without them the test
//! is skipped, unless `CI` is set, where it fails.

use crate::support::*;
use serde_json::{Value, json};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one headless Chromium session, both ended on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a session, or `None` when Chromium is not installed (outside CI).
    fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing: .ci/run installs chromium and chromium-driver"
            );
            crate::support::announce_skip(&format!(
                "{CHROMIUM} and {CHROMEDRIVER} are not installed (apt-get install chromium chromium-driver)"
            ));
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("a Chromium profile directory");
        let mut browser = Browser { driver, base, session: String::new(), _profile: profile };
        browser.wait_until_ready();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1800",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"].as_str().expect("a session id").to_string();
        Some(browser)
    }

    fn wait_until_ready(&self) {
        for _ in 0..100 {
            let ready = ureq::get(&format!("{}/status", self.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not become ready");
    }

    /// One WebDriver command; returns its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match body {
            Some(body) => ureq::post(&url)
                .header("Content-Type", "application/json")
                .config()
                .http_status_as_error(false)
                .build()
                .send(body.to_string()),
            None if method == "GET" => ureq::get(&url).config().http_status_as_error(false).build().call(),
            None => ureq::delete(&url).config().http_status_as_error(false).build().call(),
        };
        let mut response = response.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let text = response.body_mut().read_to_string().expect("a WebDriver response body");
        let reply: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("WebDriver {path}: {e}: {text}"));
        assert!(reply["value"].get("error").is_none(), "WebDriver {method} {path} failed: {text}");
        reply["value"].clone()
    }

    fn open(&self, file: &Path) {
        let url = format!("file://{}", file.display());
        self.call("POST", &format!("/session/{}/url", self.session), Some(json!({"url": url})));
    }

    /// Runs `script` in the page and returns what it returns.
    fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            Some(json!({"script": script, "args": []})),
        )
    }

    fn screenshot(&self, to: &Path) {
        use base64::Engine;
        let png = self.call("GET", &format!("/session/{}/screenshot", self.session), None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 PNG"))
            .expect("the screenshot is base64");
        std::fs::write(to, bytes).expect("writing the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots are kept for people to look at: `target/test-screenshots/`.
fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-screenshots");
    std::fs::create_dir_all(&dir).expect("creating the screenshots directory");
    dir.join(name)
}

/// What the page shows, measured by Chromium after layout.
const MEASURE: &str = r#"
const charts = [...document.querySelectorAll('article.badge')].map(card => {
  const svg = card.querySelector('svg.chart');
  const box = svg.getBoundingClientRect();
  const line = svg.querySelector('path.line');
  return {
    badge: card.dataset.badge,
    recipients: card.querySelector('dd.recipients').textContent,
    status: card.querySelector('.status').textContent,
    rule: card.querySelector('.rule').textContent,
    width: box.width,
    height: box.height,
    line_length: line ? line.getTotalLength() : 0,
    line_box: line ? [line.getBBox().width, line.getBBox().height] : [0, 0],
    empty_text: svg.querySelector('text.empty') ? svg.querySelector('text.empty').textContent : null,
  };
});
const rows = [...document.querySelectorAll('#leaderboard tbody tr')].map(tr => [...tr.cells].map(td => td.textContent));
return {
  title: document.title,
  charts,
  rows,
  resources: performance.getEntriesByType('resource').map(r => r.name),
  visible: document.querySelector('#leaderboard').getBoundingClientRect().height,
};
"#;

#[tokio::test]
async fn the_report_opens_in_chromium_with_each_badges_chart_drawn_and_the_leaderboard() {
    let Some(browser) = Browser::start() else { return };
    let host = TestHost::on(Backend::Sqlite).await;
    host.exec(CANONICAL_SCHEMA).await;
    // 25 members join in January; members 1-22 each write as many posts as their id.
    for id in 1..=25 {
        host.add_members([id], &format!("2026-01-{:02}T09:00:00Z", id)).await;
    }
    for id in 1..=22_i64 {
        // Post k on day 1 + (id + k) mod 27 of February: first posts spread over the month.
        let posts: Vec<String> = (0..id).map(|k| format!("2026-02-{:02}T10:00:00Z", 1 + (id + k) % 27)).collect();
        host.add_events("posts", id, &posts.iter().map(String::as_str).collect::<Vec<_>>()).await;
    }
    let badges = format!(
        "{}{}{}",
        badge("first-post", r#"{ type = "posts_sent", min = 1 }"#),
        badge("regular", r#"{ type = "posts_sent", min = 15 }"#),
        badge("never", r#"{ type = "posts_sent", min = 1000 }"#)
            .replace("name = \"never\"", "name = \"Never <Earned>\"\nstatus = \"disabled\"")
    );
    let text = host.config(&badges, CANONICAL_SOURCES);
    let plan = host.plan(&text);
    // Nightly runs catch members up as their posts arrive: awards spread over time.
    for day in ["2026-02-05", "2026-02-12", "2026-02-19", "2026-02-28"] {
        host.run(&plan, at(&format!("{day}T23:00:00Z"))).await;
    }
    let config = host.write_config("accolade.toml", &text);
    let file = host.dir().join("report.html");
    let made = accolade_binary(&[
        "--config",
        config.to_str().expect("UTF-8"),
        "report",
        "--out",
        file.to_str().expect("UTF-8"),
    ]);
    assert_eq!(made.code, 0, "{}", made.describe());

    browser.open(&file);
    let page = browser.eval(MEASURE);
    let shot = screenshot_path("report.png");
    browser.screenshot(&shot);
    // Straight to stderr, past the test harness's capture, so every run shows where it is.
    let _ = writeln!(std::io::stderr(), "report screenshot: {}", shot.display());

    assert_eq!(page["title"], "Badges report");
    assert_eq!(page["resources"], json!([]), "the page is self-contained: it loads nothing");
    let charts = page["charts"].as_array().expect("charts");
    let by_badge =
        |id: &str| charts.iter().find(|c| c["badge"] == id).unwrap_or_else(|| panic!("no card for {id}: {page:#}"));
    assert_eq!(charts.len(), 3);
    let first_post = by_badge("first-post");
    assert_eq!(first_post["recipients"], "22");
    assert_eq!(first_post["status"], "published");
    assert_eq!(first_post["rule"], "Awarded to members who have written at least 1 post or comment.");
    let regular = by_badge("regular");
    assert_eq!(regular["recipients"], "8", "members 15-22");
    for chart in [first_post, regular] {
        assert!(chart["width"].as_f64() > Some(400.0) && chart["height"].as_f64() > Some(150.0), "laid out: {chart}");
        // A drawn line that rises: it has length, and extent on both axes.
        assert!(chart["line_length"].as_f64() > Some(100.0), "the line is drawn: {chart}");
        assert!(chart["line_box"][0].as_f64() > Some(100.0) && chart["line_box"][1].as_f64() > Some(50.0), "{chart}");
    }
    let never = by_badge("never");
    assert_eq!(never["status"], "disabled");
    assert_eq!(never["empty_text"], "No recipients yet");

    let rows = page["rows"].as_array().expect("leaderboard rows");
    assert_eq!(rows.len(), 20, "the top 20 of 22 members");
    assert_eq!(rows[0], json!(["1", "15", "0", "2"]), "rank, member, points, badges");
    assert!(page["visible"].as_f64() > Some(200.0), "the leaderboard is laid out");
}
