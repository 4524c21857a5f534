//! The docs page in a real browser: headless Chromium loads `/docs` from the app, with no
//! network beyond it, and must render the API's operations.

mod common;

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use reqwest::StatusCode;
use uuid::Uuid;

/// Longest a browser run may take before it is killed and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary: `$SEEDCORE_CHROMIUM` (set by `scripts/test.sh`), else the system one.
fn chromium() -> PathBuf {
    let configured = std::env::var_os("SEEDCORE_CHROMIUM").map(PathBuf::from);
    let candidate = configured.unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        candidate.is_file(),
        "Chromium not found at {}: run the tests with scripts/test.sh (it provides one and sets \
         SEEDCORE_CHROMIUM) or install chromium",
        candidate.display()
    );
    candidate
}

/// A scratch directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("seedcore-browser-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium on `url` and returns the DOM after scripts ran. Output goes to files
/// rather than pipes so that a large DOM cannot block the browser while we wait on it.
fn dump_dom(browser: &Path, url: &str, scratch: &Path) -> String {
    let dom_path = scratch.join("dom.html");
    let log_path = scratch.join("chromium.log");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ))
        .args(["--virtual-time-budget=10000", "--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(File::create(&dom_path).expect("create the DOM file"))
        .stderr(File::create(&log_path).expect("create the log file"))
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", browser.display()));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?}; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = std::fs::read_to_string(&dom_path).unwrap_or_default();
    assert!(
        status.success() && !dom.is_empty(),
        "chromium failed ({status}); log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    dom
}

/// The DOM without the zero-width spaces Swagger UI puts before each `/` of a path.
fn readable(dom: &str) -> String {
    dom.replace('\u{200b}', "")
        .replace("&ZeroWidthSpace;", "")
        .replace("<wbr>", "")
}

/// The markup of each rendered operation: from one `opblock` element to the next.
fn operations(dom: &str) -> Vec<&str> {
    let marker = "class=\"opblock opblock-";
    let starts: Vec<usize> = dom.match_indices(marker).map(|(i, _)| i).collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(dom.len());
            &dom[start..end]
        })
        .collect()
}

/// The start of a DOM, for failure messages.
fn head(dom: &str) -> String {
    dom.chars().take(4000).collect()
}

/// Absolute http(s) URLs in `text` that point anywhere but the local app.
fn remote_urls(text: &str) -> Vec<String> {
    ["http://", "https://"]
        .iter()
        .flat_map(|scheme| text.match_indices(scheme).map(|(i, _)| &text[i..]))
        .map(|rest| {
            rest.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
                .next()
                .unwrap_or(rest)
                .to_string()
        })
        .filter(|url| {
            let host = url.split("://").nth(1).unwrap_or("");
            !(host.starts_with("127.0.0.1") || host.starts_with("localhost"))
        })
        .collect()
}

postgres_only!(the_docs_page_renders_the_operations_in_a_headless_browser);
async fn the_docs_page_renders_the_operations_in_a_headless_browser() {
    let browser = chromium();
    let app = TestApp::without_workers().await;
    let url = format!("{}/docs", app.base);
    let scratch = ScratchDir::new();
    let dir = scratch.0.clone();
    let dom = tokio::task::spawn_blocking(move || dump_dom(&browser, &url, &dir))
        .await
        .expect("the browser run");
    let dom = readable(&dom);

    let ops = operations(&dom);
    assert!(
        !ops.is_empty(),
        "no operation was rendered; DOM:\n{}",
        head(&dom)
    );
    for path in ["/api/v1/tasks", "/api/v1/facts", "/health"] {
        assert!(
            ops.iter().any(|op| op.contains(path)),
            "no rendered operation for {path}"
        );
    }
    let title: String = dom
        .find("class=\"title\"")
        .map(|at| dom[at..].chars().take(300).collect())
        .unwrap_or_else(|| panic!("no title rendered; DOM:\n{}", head(&dom)));
    assert!(title.contains("seedcore"), "title: {title}");
}

postgres_only!(the_docs_page_loads_nothing_from_outside_the_app);
async fn the_docs_page_loads_nothing_from_outside_the_app() {
    let app = TestApp::without_workers().await;
    for path in ["/docs", "/docs/swagger-initializer.js"] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let text = response.text().await.expect("body");
        let remote = remote_urls(&text);
        assert!(remote.is_empty(), "{path} refers to {remote:?}");
    }
}
