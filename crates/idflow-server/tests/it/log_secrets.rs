//! Checklist T36: the server's log at trace level (every crate) over a full run of the flows that
//! handle secrets — registration, a failed and a good sign-in, a password change, TOTP enrolment,
//! recovery by mailed code, verification — holds none of them: no password, session token, TOTP
//! secret, mailed code, cookie or CSRF token.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn post(c: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = c.post(url).json(&body);
    if let Some(t) = token {
        r = r.header("X-Session-Token", t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: String, token: Option<&str>) -> Value {
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.header("X-Session-Token", t);
    }
    r.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_log_holds_no_secret() {
    let sink = start_sink(Mode::Accept, None).await;
    let (dsn, _tmp) = fresh_dsn(Db::Sqlite).await;
    let (public, admin) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{public}");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_idflow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("IDFLOW_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["serve", "--database", &dsn])
        .args(["--public-addr", &format!("127.0.0.1:{public}"), "--admin-addr", &format!("127.0.0.1:{admin}")])
        .env("IDFLOW_LOG", "trace")
        .env("IDFLOW_SERVE__PUBLIC__BASE_URL", format!("{base}/"))
        .env("IDFLOW_COURIER__SMTP__CONNECTION_URI", plain_uri(sink.addr))
        .env("IDFLOW_COURIER__WORKER__PULL_WAIT", "50ms")
        .env("IDFLOW_SELFSERVICE__FLOWS__RECOVERY__ENABLED", "true")
        .env("IDFLOW_SELFSERVICE__FLOWS__VERIFICATION__ENABLED", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain both pipes while the run goes on (a full pipe would stall the server).
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = tokio::join!(out.read_to_end(&mut a), err.read_to_end(&mut b));
        a.extend(b);
        String::from_utf8_lossy(&a).into_owned()
    });
    let c = api_client();
    eventually(60, "the server answers", || async {
        c.get(format!("{base}/health/alive")).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;

    let email = unique_email();
    let (first, second, wrong) = ("first secret passphrase 1", "second secret passphrase 2", "wrong secret guess 3");
    let mut secrets: Vec<(String, String)> = vec![
        ("first password".into(), first.into()),
        ("second password".into(), second.into()),
        ("wrong password".into(), wrong.into()),
    ];

    // Registration (a verification mail goes out).
    let flow = get(&c, format!("{base}/self-service/registration/api"), None).await;
    let (status, reg) = post(
        &c,
        format!("{base}/self-service/registration?flow={}", flow["id"].as_str().unwrap()),
        None,
        json!({"method": "password", "traits": {"email": email}, "password": first}),
    )
    .await;
    assert_eq!(status, 200, "{reg}");
    let token = reg["session_token"].as_str().unwrap().to_string();
    secrets.push(("registration session token".into(), token.clone()));
    let verification_code = six_digit_code(&nth_mail(&sink, &email, "Please verify your email address", 1).await);
    secrets.push(("verification code".into(), verification_code.clone()));

    // A failed sign-in, then a good one.
    let flow = get(&c, format!("{base}/self-service/login/api"), None).await;
    let login_url = format!("{base}/self-service/login?flow={}", flow["id"].as_str().unwrap());
    let (status, _) =
        post(&c, login_url.clone(), None, json!({"method": "password", "identifier": email, "password": wrong})).await;
    assert_eq!(status, 400);
    let (status, login) =
        post(&c, login_url, None, json!({"method": "password", "identifier": email, "password": first})).await;
    assert_eq!(status, 200, "{login}");
    secrets.push(("login session token".into(), login["session_token"].as_str().unwrap().to_string()));

    // A password change and a TOTP enrolment in settings.
    let flow = get(&c, format!("{base}/self-service/settings/api"), Some(&token)).await;
    let settings_url = format!("{base}/self-service/settings?flow={}", flow["id"].as_str().unwrap());
    let (status, changed) =
        post(&c, settings_url.clone(), Some(&token), json!({"method": "password", "password": second})).await;
    assert_eq!(status, 200, "{changed}");
    let secret = totp_secret(&changed);
    secrets.push(("TOTP secret".into(), secret.clone()));
    let code = totp_code(&secret, &idflow_core::clock::Clock::new());
    let (status, enrolled) = post(&c, settings_url, Some(&token), json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(status, 200, "{enrolled}");

    // Verification of the address with the mailed code.
    let flow = get(&c, format!("{base}/self-service/verification/api"), None).await;
    let vurl = format!("{base}/self-service/verification?flow={}", flow["id"].as_str().unwrap());
    let (status, _) = post(&c, vurl.clone(), None, json!({"method": "code", "email": email})).await;
    assert_eq!(status, 200);
    let vcode = six_digit_code(&nth_mail(&sink, &email, "Please verify your email address", 2).await);
    secrets.push(("second verification code".into(), vcode.clone()));
    let (status, done) = post(&c, vurl, None, json!({"method": "code", "code": vcode})).await;
    assert_eq!((status, done["state"].as_str()), (200, Some("passed_challenge")), "{done}");

    // Recovery by mailed code (the identity has TOTP: the recovery session is aal1).
    let flow = get(&c, format!("{base}/self-service/recovery/api"), None).await;
    let rurl = format!("{base}/self-service/recovery?flow={}", flow["id"].as_str().unwrap());
    let (status, _) = post(&c, rurl.clone(), None, json!({"method": "code", "email": email})).await;
    assert_eq!(status, 200);
    let rcode = six_digit_code(&nth_mail(&sink, &email, "Recover access to your account", 1).await);
    secrets.push(("recovery code".into(), rcode.clone()));
    let (status, recovered) = post(&c, rurl, None, json!({"method": "code", "code": rcode})).await;
    assert!(status == 200 || status == 422, "{status} {recovered}");
    if let Some(t) =
        recovered["continue_with"].as_array().and_then(|a| a.iter().find_map(|i| i["ory_session_token"].as_str()))
    {
        secrets.push(("recovery session token".into(), t.to_string()));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let log = tokio::time::timeout(Duration::from_secs(10), logs).await.unwrap().unwrap();
    assert!(log.lines().count() > 50, "the trace log is unexpectedly short:\n{log}");
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "the log is not at trace level");
    for (what, value) in &secrets {
        // Six-digit codes may collide with other numbers (ports, counters): only look for them
        // where they would be a leak — as a value, not inside a longer number.
        let leaked = if value.len() == 6 && value.chars().all(|c| c.is_ascii_digit()) {
            log.match_indices(value.as_str()).any(|(i, _)| {
                let before = log[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric());
                let after = log[i + 6..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
                !before && !after
            })
        } else {
            log.contains(value.as_str())
        };
        assert!(!leaked, "the {what} appears in the trace log:\n{}", excerpt(&log, value));
    }
}

fn excerpt(log: &str, needle: &str) -> String {
    log.lines().filter(|l| l.contains(needle)).take(5).collect::<Vec<_>>().join("\n")
}
