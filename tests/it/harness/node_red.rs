//! The Node-RED instance `scripts/test` starts once per run (`platforms/node-red.sh`),
//! with `adminAuth` on and tokens that expire after a few seconds. A test drives it
//! directly, as a person in the editor would (deploy, wipe, call an `http in` endpoint),
//! and drives jetvault against it.
//!
//! Tests that change its flows belong to the `node-red` test group
//! (`.config/nextest.toml`), which runs them one at a time.

use serde_json::{Value, json};

use super::{corpus, missing};

/// Node-RED's URL, `http://127.0.0.1:PORT`.
pub const NODE_RED_VAR: &str = "JETVAULT_TEST_NODE_RED";
/// The password of its `admin` user.
pub const NODE_RED_PASSWORD_VAR: &str = "JETVAULT_TEST_NODE_RED_PASSWORD";

/// The shared Node-RED.
pub struct NodeRed {
    pub url: String,
    pub password: String,
    client: reqwest::Client,
}

impl NodeRed {
    /// The instance `scripts/test` started, or `None` (a panic under CI) without one.
    pub fn shared() -> Option<Self> {
        let (Some(url), Some(password)) =
            (super::env(NODE_RED_VAR), super::env(NODE_RED_PASSWORD_VAR))
        else {
            return missing(&format!(
                "Node-RED is not running ({NODE_RED_VAR} is not set)"
            ));
        };
        Some(Self {
            url,
            password,
            client: reqwest::Client::new(),
        })
    }

    /// Another instance (one a test started itself) at `url`, signing in as `admin`
    /// with `password`.
    pub fn at(url: &str, password: &str) -> Self {
        Self {
            url: url.to_string(),
            password: password.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// A fresh admin token (password grant, as the editor signs in).
    pub async fn token(&self) -> String {
        let resp = self
            .client
            .post(format!("{}/auth/token", self.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("client_id", "node-red-admin"),
                ("grant_type", "password"),
                ("scope", "*"),
                ("username", "admin"),
                ("password", self.password.as_str()),
            ]))
            .send()
            .await
            .expect("Node-RED's /auth/token answers");
        assert!(resp.status().is_success(), "sign-in: {}", resp.status());
        let body: Value = json_body(resp).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Deploys `flows` as a full deployment (API v1).
    pub async fn deploy(&self, flows: &Value) {
        let resp = self
            .client
            .post(format!("{}/flows", self.url))
            .bearer_auth(self.token().await)
            .header("Node-RED-Deployment-Type", "full")
            .header("Content-Type", "application/json")
            .body(flows.to_string())
            .send()
            .await
            .expect("POST /flows");
        assert!(resp.status().is_success(), "deploy: {}", resp.status());
    }

    /// Deletes every flow: the disaster the tests recover from.
    pub async fn wipe(&self) {
        self.deploy(&json!([])).await;
    }

    /// The deployed flows (API v1: the bare array).
    pub async fn flows(&self) -> Value {
        let resp = self
            .client
            .get(format!("{}/flows", self.url))
            .bearer_auth(self.token().await)
            .send()
            .await
            .expect("GET /flows");
        assert!(resp.status().is_success(), "GET /flows: {}", resp.status());
        json_body(resp).await
    }

    /// An unauthenticated GET of a flow's `http in` endpoint: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET of an http-in endpoint");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }
}

impl NodeRed {
    /// Polls `path` until it answers `status` (a deploy starts the flows a moment after
    /// `POST /flows` returns); the last answer's body.
    pub async fn wait_for(&self, path: &str, status: u16) -> String {
        let start = std::time::Instant::now();
        loop {
            let (got, body) = self.get(path).await;
            if got == status {
                return body;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(15),
                "GET {path} still answers {got}, not {status}: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Node-RED's own example flow "Create an HTTP endpoint" (`GET /hello` answers a page),
/// from the corpus, on a tab of its own as the editor exports it.
pub fn http_endpoint_flow() -> Value {
    let mut nodes: Vec<Value> =
        serde_json::from_slice(&corpus(super::NODERED)).expect("the corpus flow is JSON");
    for n in &mut nodes {
        n["z"] = json!("jetvault-tab");
    }
    let mut flow = vec![json!({"id": "jetvault-tab", "type": "tab", "label": "jetvault"})];
    flow.extend(nodes);
    Value::Array(flow)
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params("http://form.invalid/", pairs).expect("a URL");
    url.query().unwrap_or_default().to_string()
}

async fn json_body(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.expect("a body");
    serde_json::from_slice(&bytes).expect("a JSON body")
}
