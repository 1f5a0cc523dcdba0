//! The local OpenID provider of the social sign-in tests: the `oidc-provider` package
//! (tests/oidc-provider) started on a loopback port, and a browser driven through its login and
//! consent pages (redirects followed by hand).
//!
//! Needs `node` and `npm ci` in tests/oidc-provider (scripts/test.sh does it). Without them
//! [`start_provider`] prints why the test is skipped and answers `None`; with
//! `IDFLOW_TEST_REQUIRE_OIDC=1` a missing provider fails the test instead.

use super::*;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

pub const CLIENT_ID: &str = "idflow-test";
pub const CLIENT_SECRET: &str = "idflow-test-secret-0123456789";

/// The running provider; killed (and its stdin closed) on drop.
pub struct OpenIdProvider {
    _child: tokio::process::Child,
    pub issuer: String,
}

fn provider_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

/// Why the local provider cannot be started here, if it cannot: Node.js missing, or the
/// provider's packages not installed.
fn provider_unavailable() -> Option<String> {
    let node = std::process::Command::new("node").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("Node.js (`node`) is not installed".into());
    }
    if !provider_dir().join("node_modules/oidc-provider").is_dir() {
        return Some("tests/oidc-provider/node_modules is missing: run `npm ci` in tests/oidc-provider".into());
    }
    None
}

/// `Some(())` when the provider can be started; `None` (after printing a skip line) when it
/// cannot; a panic instead when `IDFLOW_TEST_REQUIRE_OIDC=1`.
pub fn provider_or_skip() -> Option<()> {
    let Some(reason) = provider_unavailable() else {
        return Some(());
    };
    if std::env::var("IDFLOW_TEST_REQUIRE_OIDC").is_ok_and(|v| v == "1") {
        panic!("IDFLOW_TEST_REQUIRE_OIDC=1 but the test OpenID provider cannot be started: {reason}");
    }
    let test = std::thread::current().name().unwrap_or("oidc test").to_string();
    // Straight to stderr, past the test harness's output capture, so the skip is visible.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: the test OpenID provider cannot be started ({reason}; scripts/test.sh installs it)"
    );
    None
}

/// Start the provider on `port` (another free port if that one is taken meanwhile) and wait for
/// its discovery document. `None` (the test is skipped) when it cannot be started here.
pub async fn start_provider(port: u16, redirect_uris: &[String]) -> Option<OpenIdProvider> {
    provider_or_skip()?;
    let dir = provider_dir();
    let mut port = port;
    let mut last_err = String::new();
    for _attempt in 0..3 {
        let log = std::env::temp_dir().join(format!("idflow-oidc-provider-{}.log", uuid::Uuid::new_v4().simple()));
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(dir.join("server.mjs"))
            .args(["--port", &port.to_string(), "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        for r in redirect_uris {
            cmd.args(["--redirect-uri", r]);
        }
        let mut child = cmd.spawn().expect("start node (is Node.js installed?)");
        let issuer = format!("http://127.0.0.1:{port}");
        let c = api_client();
        // Generous: a loaded two-core machine may take a while to start Node.js.
        for _ in 0..600 {
            if let Ok(r) = c.get(format!("{issuer}/.well-known/openid-configuration")).send().await
                && r.status() == 200
            {
                let _ = std::fs::remove_file(&log);
                return Some(OpenIdProvider { _child: child, issuer });
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last_err = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        port = free_port();
    }
    panic!("the test OpenID provider did not serve its discovery document:\n{last_err}");
}

pub fn absolute(base: &str, loc: &str) -> String {
    url::Url::parse(base).unwrap().join(loc).unwrap().to_string()
}

pub fn unescape_html(s: &str) -> String {
    s.replace("&#x2F;", "/").replace("&#47;", "/").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// The value of `attr="…"` after `from` in `html`.
pub fn attr_after(html: &str, from: &str, attr: &str) -> Option<String> {
    let start = html.find(from)?;
    let rest = &html[start..];
    let i = rest.find(&format!("{attr}=\""))? + attr.len() + 2;
    let end = rest[i..].find('"')?;
    Some(unescape_html(&rest[i..i + end]))
}

/// Follow the browser `c` from `url` until the provider sends it back to idflow, and return that
/// callback URL: redirects are followed, and on each provider page `on_page(page URL, its HTML)`
/// acts (posts a form, takes a link) and returns where the browser goes next.
pub async fn follow_provider(
    c: &reqwest::Client,
    app: &TestApp,
    mut url: String,
    mut on_page: impl AsyncFnMut(&str, String) -> String,
) -> String {
    for _ in 0..25 {
        if url.starts_with(&app.public) {
            return url;
        }
        let resp = c.get(&url).send().await.unwrap();
        if resp.status().is_redirection() {
            url = absolute(&url, &location(&resp));
            continue;
        }
        assert_eq!(resp.status(), 200, "provider page {url}");
        let html = resp.text().await.unwrap();
        url = on_page(&url, html).await;
    }
    panic!("the provider did not send the browser back");
}

/// Drive the browser `c` from `url` through the provider's pages (signing in as `login`) until
/// the provider sends it back to idflow; returns that callback URL.
pub async fn through_provider(c: &reqwest::Client, app: &TestApp, url: String, login: &str) -> String {
    follow_provider(c, app, url, async |page: &str, html: String| {
        let action = attr_after(&html, "<form", "action").expect("a form on the provider's page");
        let action = absolute(page, &action);
        let prompt = attr_after(&html, "name=\"prompt\"", "value").expect("the prompt of the provider's page");
        let form: Vec<(&str, &str)> = if prompt == "login" {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            vec![("prompt", "consent")]
        };
        let resp = c.post(&action).form(&form).send().await.unwrap();
        assert!(resp.status().is_redirection(), "provider form answered {}", resp.status());
        absolute(&action, &location(&resp))
    })
    .await
}

/// One `generic` provider entry of `selfservice.methods.oidc.config.providers` for the local
/// provider at `issuer` (email and name mapped from its claims).
pub fn generic_provider(id: &str, label: &str, issuer: &str) -> Value {
    json!({
        "id": id,
        "provider": "generic",
        "label": label,
        "issuer_url": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "mapper": {"traits": {
            "email": "{{ claims.email }}",
            "name": {"first": "{{ claims.given_name }}", "last": "{{ claims.family_name }}"},
        }},
    })
}
