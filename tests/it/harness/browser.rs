//! A real Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! `platforms/chromium.sh`). `scripts/test` starts chromedriver once per run and exports
//! where it is; each test opens its own headless browser session.
//!
//! [`Browser::axe`] runs axe-core (npm, pinned) on the page and returns the serious and
//! critical violations; [`Browser::screenshot`] saves a PNG under the test run's
//! screenshot folder (`JETVAULT_SCREENSHOTS`, default `target/.../screenshots`).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::missing;

/// chromedriver's URL.
pub const CHROMEDRIVER_VAR: &str = "JETVAULT_TEST_CHROMEDRIVER";
/// The path of axe-core's `axe.min.js`.
pub const AXE_VAR: &str = "JETVAULT_TEST_AXE";

/// How long a test waits for something to show.
pub const WAIT: Duration = Duration::from_secs(10);

/// The desktop size and the phone size the console must work at.
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);

/// One browser session.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    /// A new headless Chromium of `size`, or `None` (a panic under CI) without
    /// chromedriver.
    pub async fn open(size: (u32, u32)) -> Option<Self> {
        let Some(url) = super::env(CHROMEDRIVER_VAR) else {
            return missing(&format!(
                "chromedriver is not running ({CHROMEDRIVER_VAR} is not set)"
            ));
        };
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--lang=en-US",
                    format!("--window-size={},{}", size.0, size.1),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::rustls()
            .expect("a TLS setup for the WebDriver client")
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session at {url}: {e}"));
        Some(Self { client })
    }

    /// Loads `url` and waits for the console to have rendered something into `main`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits for the element `css` and returns it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} after {WAIT:?}: {e}"))
    }

    /// Waits until the text of `css` contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
                && text.contains(needle)
            {
                return text;
            }
            assert!(
                start.elapsed() < WAIT,
                "{css:?} never contained {needle:?} (page: {})",
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let start = std::time::Instant::now();
        while self.client.find(Locator::Css(css)).await.is_ok() {
            assert!(
                start.elapsed() < WAIT,
                "{css:?} is still there after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of `css` (empty when absent).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("execute a script")
    }

    /// The serious and critical accessibility violations axe-core finds on the page.
    pub async fn axe(&self) -> Vec<Value> {
        let Some(path) = super::env(AXE_VAR) else {
            return missing(&format!("axe-core is not installed ({AXE_VAR} is not set)"))
                .unwrap_or_default();
        };
        let source = std::fs::read_to_string(&path).expect("axe.min.js");
        // Injected through WebDriver, which the page's CSP does not govern.
        self.client
            .execute(&source, vec![])
            .await
            .expect("inject axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']})\
                   .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, \
                     help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))))\
                   .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect()
    }

    /// Saves a screenshot as `name.png`; returns where.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = super::env("JETVAULT_SCREENSHOTS").map_or_else(
            || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Ends the session (closes the browser).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
