//! The built-in self-service UI (`/ui/...`) driven like a browser without JavaScript: pages
//! redirect to create their flow, render the flow's nodes as forms that post urlencoded to the
//! flow's action, carry a strict CSP, and the session list's revoke form is CSRF-protected.
//! (The full journey in a real browser is in tests/e2e.)

use crate::both_dbs;
use crate::support::*;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};

/// The value of the first `name="<name>" value="..."` input in a page, HTML-unescaped.
fn input_value(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    let raw = &html[start..start + html[start..].find('"')?];
    Some(
        raw.replace("&#43;", "+")
            .replace("&#47;", "/")
            .replace("&#61;", "=")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// The `action` of the first form on a page.
fn form_action(html: &str) -> String {
    let start = html.find("<form").unwrap();
    let a = html[start..].find("action=\"").unwrap() + start + 8;
    html[a..a + html[a..].find('"').unwrap()].replace("&amp;", "&")
}

/// GET a page, following same-server redirects (like a browser), returning the final response.
async fn follow(c: &reqwest::Client, mut url: String) -> (reqwest::Response, String) {
    for _ in 0..10 {
        let resp = c.get(&url).send().await.unwrap();
        if resp.status().is_redirection() {
            url = location(&resp);
            continue;
        }
        return (resp, url);
    }
    panic!("too many redirects ending at {url}");
}

fn assert_ui_headers(resp: &reqwest::Response) {
    let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(ct.starts_with("text/html"), "content type {ct}");
    let csp = resp.headers().get(CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(resp.headers().get("x-frame-options").unwrap(), "DENY");
}

/// Without a flow id the pages send the browser to create one (keeping `return_to`, `refresh`
/// and `aal` for login); `/ui` is the welcome page; settings without a session asks to log in.
async fn ui_pages_redirect_to_create_their_flow(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    let resp = c.get(app.url("/ui/login")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), app.url("/self-service/login/browser"));
    let rt = app.url("/ui/welcome");
    let resp = c.get(app.url(&format!("/ui/login?refresh=true&return_to={rt}"))).send().await.unwrap();
    let loc = location(&resp);
    assert!(
        loc.starts_with(&app.url("/self-service/login/browser?"))
            && loc.contains("refresh=true")
            && loc.contains("return_to="),
        "{loc}"
    );
    let resp = c.get(app.url("/ui/registration")).send().await.unwrap();
    assert_eq!(location(&resp), app.url("/self-service/registration/browser"));
    // An unknown flow id starts a new flow too.
    let resp = c.get(app.url("/ui/registration?flow=00000000-0000-4000-8000-000000000000")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with(&app.url("/self-service/registration/browser")));
    let resp = c.get(app.url("/ui/settings")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with(&app.url("/self-service/login/browser?return_to=")), "{}", location(&resp));
    let resp = c.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(location(&resp), app.url("/ui/welcome"));
    let (resp, _) = follow(&c, app.url("/ui/welcome")).await;
    assert_eq!(resp.status(), 200);
    assert_ui_headers(&resp);
    assert!(resp.text().await.unwrap().contains("You are not signed in."));
}
both_dbs!(ui_pages_redirect_to_create_their_flow);

/// A browser registers and signs in through the HTML forms alone (urlencoded posts, 303s);
/// field errors are rendered next to the field.
async fn ui_forms_work_without_javascript(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    let (resp, url) = follow(&c, app.url("/ui/registration")).await;
    assert!(url.starts_with(&app.url("/ui/registration?flow=")), "{url}");
    assert_ui_headers(&resp);
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains(" onclick="), "no inline code");
    assert!(html.contains("<label for=\"password-password\">Password"), "labels are bound to inputs");
    let action = form_action(&html);
    assert!(action.starts_with(&app.url("/self-service/registration?flow=")), "{action}");
    let token = input_value(&html, "csrf_token").unwrap();
    let email = unique_email();

    // Too short a password: back to the page with the message at the password field.
    let resp = c
        .post(&action)
        .form(&[
            ("csrf_token", token.as_str()),
            ("traits.email", email.as_str()),
            ("password", "short"),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), url);
    let html = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("aria-invalid=\"true\""), "the field is marked invalid");
    assert!(html.contains("id=\"password-password-msg\""), "messages are tied to the field");
    assert!(html.contains("at least 8 characters"));
    assert!(html.contains(&format!("value=\"{email}\"")), "the e-mail is kept");

    let resp = c
        .post(&action)
        .form(&[
            ("csrf_token", token.as_str()),
            ("traits.email", email.as_str()),
            ("password", PASSWORD),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), app.url("/ui/welcome"));
    let (resp, _) = follow(&c, app.url("/ui/welcome")).await;
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("Welcome, {email}")), "signed in after registration");
    assert!(html.contains(&app.url("/self-service/logout?token=")), "a logout link");

    // Sign out through the link, then sign in through the login page.
    let logout = {
        let s = html.find(&app.url("/self-service/logout?token=")).unwrap();
        html[s..s + html[s..].find('"').unwrap()].replace("&amp;", "&")
    };
    let resp = c.get(&logout).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let (resp, url) = follow(&c, location(&resp)).await;
    assert!(url.starts_with(&app.url("/ui/login?flow=")), "{url}");
    let html = resp.text().await.unwrap();
    assert_eq!(html.matches("name=\"identifier\"").count(), 1, "the identifier appears once");
    let token = input_value(&html, "csrf_token").unwrap();
    let resp = c
        .post(form_action(&html))
        .form(&[
            ("csrf_token", token.as_str()),
            ("identifier", email.as_str()),
            ("password", PASSWORD),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), app.url("/ui/welcome"));
}
both_dbs!(ui_forms_work_without_javascript);

/// A flow page opened in a browser without the flow's CSRF cookie is a clear 403 page with a
/// way to start again (not a redirect, which would loop for a browser refusing cookies).
async fn ui_flow_of_another_browser_is_refused(db: Db) {
    let app = spawn_app(db).await;
    let (_, url) = follow(&browser_client(), app.url("/ui/login")).await;
    let resp = api_client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_ui_headers(&resp);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Please start again"));
    assert!(html.contains(&format!("href=\"{}\"", app.url("/self-service/login/browser"))));
}
both_dbs!(ui_flow_of_another_browser_is_refused);

/// The settings page lists the sections and the sessions; another session is signed out with
/// the revoke form, which needs this browser's CSRF token.
async fn ui_settings_lists_and_revokes_sessions(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    let (email, _) = browser_register(&app, &c).await;
    let other = app.login(&email, PASSWORD).await;
    let other_token = other["session_token"].as_str().unwrap().to_string();
    let other_id = other["session"]["id"].as_str().unwrap().to_string();

    let (resp, url) = follow(&c, app.url("/ui/settings")).await;
    assert!(url.starts_with(&app.url("/ui/settings?flow=")), "{url}");
    assert_eq!(resp.status(), 200);
    assert_ui_headers(&resp);
    let html = resp.text().await.unwrap();
    for h in ["Profile", "Password", "Authenticator app", "Recovery codes", "Active sessions"] {
        assert!(html.contains(&format!("\">{h}</h2>")), "section {h}");
    }
    assert!(html.contains("data-node=\"totp_secret_key\""), "the TOTP secret is shown");
    assert!(html.contains("src=\"data:image/png;base64,"), "the QR code is shown");
    assert!(html.contains(&format!("data-session-id=\"{other_id}\"")), "the other session is listed");
    let flow_id = url.rsplit_once("flow=").unwrap().1.to_string();
    // The revoke form's token is the one of the session list.
    let s = html.find("class=\"session-revoke\"").unwrap();
    let token = input_value(&html[s..], "csrf_token").unwrap();

    let revoke = app.url("/ui/sessions/revoke");
    let resp = c
        .post(&revoke)
        .form(&[("csrf_token", "forged"), ("session_id", other_id.as_str()), ("flow", flow_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = api_client()
        .post(&revoke)
        .form(&[("csrf_token", token.as_str()), ("session_id", other_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "without a session: to the login");
    assert!(location(&resp).starts_with(&app.url("/self-service/login/browser")));
    let whoami =
        api_client().get(app.url("/sessions/whoami")).header("x-session-token", &other_token).send().await.unwrap();
    assert_eq!(whoami.status(), 200, "nothing was revoked yet");

    let resp = c
        .post(&revoke)
        .form(&[("csrf_token", token.as_str()), ("session_id", other_id.as_str()), ("flow", flow_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("{url}&notice=session_revoked"));
    let whoami =
        api_client().get(app.url("/sessions/whoami")).header("x-session-token", &other_token).send().await.unwrap();
    assert_eq!(whoami.status(), 401, "the other session is signed out");
    let html = c.get(location(&resp)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("The session was signed out."));
    assert!(!html.contains(&format!("data-session-id=\"{other_id}\"")));

    // A malformed session id is a clear 400 page.
    let resp = c.post(&revoke).form(&[("csrf_token", token.as_str()), ("session_id", "nope")]).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}
both_dbs!(ui_settings_lists_and_revokes_sessions);

/// Stored errors are shown on `/ui/error`; unknown and malformed ids are clear pages.
async fn ui_error_page_shows_stored_errors(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    let resp = c.get(app.url("/self-service/logout/browser")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    assert!(loc.starts_with(&app.url("/ui/error?id=")), "{loc}");
    let resp = c.get(&loc).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_ui_headers(&resp);
    assert!(resp.text().await.unwrap().contains("No active session was found in this request."));
    let resp = c.get(app.url("/ui/error?id=00000000-0000-4000-8000-000000000000")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = c.get(app.url("/ui/error?id=not-a-uuid")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}
both_dbs!(ui_error_page_shows_stored_errors);

/// CSS and JS are embedded and served with their types; unknown assets are 404.
async fn ui_static_assets_are_served(db: Db) {
    let app = spawn_app(db).await;
    for (file, ct, needle) in
        [("idflow.css", "text/css", ".btn-primary"), ("idflow.js", "text/javascript", "navigator.credentials")]
    {
        let resp = api_client().get(app.url(&format!("/ui/static/{file}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        assert!(resp.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap().starts_with(ct));
        assert!(resp.text().await.unwrap().contains(needle));
    }
    let resp = api_client().get(app.url("/ui/static/../Cargo.toml")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = api_client().get(app.url("/ui/static/nope.js")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}
both_dbs!(ui_static_assets_are_served);

/// The form of a settings section (`form-<group>`): (action, CSRF token).
fn section_form(html: &str, group: &str) -> (String, String) {
    let s = html.find(&format!("<form id=\"form-{group}\"")).unwrap_or_else(|| panic!("no {group} form"));
    (form_action(&html[s..]), input_value(&html[s..], "csrf_token").unwrap())
}

/// A change blocked by an old session goes through the refresh login page (message 1010003,
/// the identifier fixed) and comes back to the settings page with the change kept for review.
async fn ui_refresh_login_page(db: Db) {
    let app = spawn_app_with(db, |cfg| {
        cfg.selfservice.flows.settings.privileged_session_max_age = idflow_core::config::Dur::secs(600);
    })
    .await;
    let c = browser_client();
    let (email, _) = browser_register(&app, &c).await;
    app.clock.advance(3600);
    let (resp, _) = follow(&c, app.url("/ui/settings")).await;
    let html = resp.text().await.unwrap();
    let (action, token) = section_form(&html, "profile");
    // Changing the identifier is sensitive.
    let new_email = unique_email();
    let resp = c
        .post(&action)
        .form(&[("csrf_token", token.as_str()), ("traits.email", new_email.as_str()), ("method", "profile")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("refresh=true"), "{}", location(&resp));
    let (resp, url) = follow(&c, location(&resp)).await;
    assert!(url.starts_with(&app.url("/ui/login?flow=")), "{url}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("<h1>Confirm it is you</h1>"));
    assert!(html.contains("data-message-id=\"1010003\""), "the refresh message");
    assert!(
        html.contains(&format!("<input type=\"hidden\" name=\"identifier\" value=\"{email}\"")),
        "the identifier is fixed"
    );
    assert!(!html.contains("Create an account"), "no sign-up link while signed in");
    let token = input_value(&html, "csrf_token").unwrap();
    let resp = c
        .post(form_action(&html))
        .form(&[
            ("csrf_token", token.as_str()),
            ("identifier", email.as_str()),
            ("password", PASSWORD),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (resp, url) = follow(&c, location(&resp)).await;
    assert!(url.starts_with(&app.url("/ui/settings?flow=")), "{url}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("data-message-id=\"1050024\""), "the kept change is announced");
    assert!(html.contains(&format!("value=\"{new_email}\"")), "the kept change is filled in");
}
both_dbs!(ui_refresh_login_page);

/// With an authenticator app, signing in asks for the second factor on the login page
/// (message 1010004, the code input), and the welcome page then shows two-factor on.
async fn ui_second_factor_login_page(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let secret = new_totp_secret();
    app.admin_create(&email, Some(&secret)).await;
    let c = browser_client();
    let (resp, _) = follow(&c, app.url("/ui/login")).await;
    let html = resp.text().await.unwrap();
    let token = input_value(&html, "csrf_token").unwrap();
    let resp = c
        .post(form_action(&html))
        .form(&[
            ("csrf_token", token.as_str()),
            ("identifier", email.as_str()),
            ("password", PASSWORD),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (resp, url) = follow(&c, location(&resp)).await;
    assert!(url.starts_with(&app.url("/ui/login?flow=")), "{url}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("<h1>Two-factor authentication</h1>"));
    assert!(html.contains("data-message-id=\"1010004\""));
    assert!(html.contains("autocomplete=\"one-time-code\" inputmode=\"numeric\""), "a numeric code input");
    // The welcome page does not pretend the half-finished sign-in is complete.
    let resp = c.get(app.url("/ui/welcome")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("aal=aal2"), "{}", location(&resp));
    let (action, token) = section_form(&html, "totp");
    let resp = c
        .post(&action)
        .form(&[
            ("csrf_token", token.as_str()),
            ("totp_code", totp_code(&secret, &app.clock).as_str()),
            ("method", "totp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (resp, _) = follow(&c, location(&resp)).await;
    assert!(resp.text().await.unwrap().contains("Yes (aal2)"));
}
both_dbs!(ui_second_factor_login_page);

/// Recovery in the built-in UI: the sign-in page links to it when it is enabled, the recovery
/// page asks for the address, then for the code from the mail, and ends on the settings page
/// with the recovery notice.
async fn ui_recovery_pages(db: Db) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.recovery.enabled = true;
    })
    .await;
    let (email, _, _) = app.user().await;
    let c = browser_client();
    let (resp, _) = follow(&c, app.url("/ui/login")).await;
    let html = resp.text().await.unwrap();
    assert!(html.contains("Forgot your password?") && html.contains("/ui/recovery"), "{html}");

    let (resp, _) = follow(&c, app.url("/ui/recovery")).await;
    assert_eq!(resp.status(), 200);
    assert_ui_headers(&resp);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Recover your account"), "{html}");
    assert!(html.contains("name=\"email\""), "{html}");
    let action = form_action(&html);
    let csrf = input_value(&html, "csrf_token").unwrap();
    let resp = c
        .post(&action)
        .form(&[("csrf_token", csrf.as_str()), ("method", "code"), ("email", email.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (resp, _) = follow(&c, location(&resp)).await;
    let html = resp.text().await.unwrap();
    assert!(html.contains("An email containing a recovery code has been sent"), "{html}");
    assert!(html.contains("name=\"code\""), "{html}");
    let code = six_digit_code(&sink.mail_to(&email, 1).await);
    let resp = c
        .post(form_action(&html))
        .form(&[("csrf_token", csrf.as_str()), ("method", "code"), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("/ui/settings?flow="), "{}", location(&resp));
    let (resp, _) = follow(&c, location(&resp)).await;
    let html = resp.text().await.unwrap();
    assert!(html.contains("You successfully recovered your account"), "{html}");
}
both_dbs!(ui_recovery_pages);

/// The settings page lists the account's addresses with their verification state; "Send
/// verification code" mails a code for the caller's own unverified address only, behind the
/// page's CSRF token, and shows the code form.
async fn ui_settings_address_verification(db: Db) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.verification.enabled = true;
    })
    .await;
    let c = browser_client();
    let (email, _) = browser_register(&app, &c).await;
    sink.mail_to(&email, 1).await;
    let (resp, url) = follow(&c, app.url("/ui/settings")).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains(">Email addresses</h2>") && html.contains("Not verified"), "{html}");
    let flow_id = url.rsplit_once("flow=").unwrap().1.to_string();
    let s = html.find("class=\"address-verify\"").unwrap();
    let token = input_value(&html[s..], "csrf_token").unwrap();
    let send = app.url("/ui/verification/send");
    let post = |form: Vec<(&'static str, String)>| {
        let c = c.clone();
        let send = send.clone();
        async move { c.post(send).form(&form).send().await.unwrap() }
    };
    // A forged token, and an address that is not the caller's: clear errors, no mail.
    let r = post(vec![("csrf_token", "forged".into()), ("email", email.clone()), ("flow", flow_id.clone())]).await;
    assert_eq!(r.status(), 403);
    let r = post(vec![("csrf_token", token.clone()), ("email", unique_email()), ("flow", flow_id.clone())]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not an unverified address of your account"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.mails().len(), 1);
    // The caller's own address: a code goes out and the code form is shown.
    let r = post(vec![("csrf_token", token), ("email", email.clone()), ("flow", flow_id)]).await;
    assert_eq!(r.status(), 303);
    let (resp, url) = follow(&c, location(&r)).await;
    assert!(url.starts_with(&app.url("/ui/verification?flow=")), "{url}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("name=\"code\""), "{html}");
    let code = six_digit_code(&sink.mail_to(&email, 2).await);
    let csrf = input_value(&html, "csrf_token").unwrap();
    let r = c
        .post(form_action(&html))
        .form(&[("csrf_token", csrf.as_str()), ("method", "code"), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, _) = follow(&c, location(&r)).await;
    let (resp, _) = follow(&c, app.url("/ui/settings")).await;
    let html = resp.text().await.unwrap();
    assert!(html.contains(">Verified</span>") && !html.contains("Not verified"), "{html}");
}
both_dbs!(ui_settings_address_verification);

/// The verification mail of an API registration (a native app) opened in a browser: the link
/// fills the code into the UI page, which confirms the API flow through the UI (no cookie
/// binds it); a wrong code is a form error on the page, the right one verifies the address.
async fn ui_confirms_api_verification_from_the_mail_link(db: Db) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.verification.enabled = true;
    })
    .await;
    let (email, _token, id) = app.user().await;
    let mail = quoted_printable_decode(&sink.mail_to(&email, 1).await);
    let code = six_digit_code(&mail);
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("/self-service/verification?flow="))
        .map(|w| w.trim_matches(|c: char| c == '<' || c == '>' || c == '"').replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("no link in {mail}"));
    let c = browser_client();
    let (resp, url) = follow(&c, link).await;
    assert_eq!(resp.status(), 200, "{url}");
    assert!(url.starts_with(&app.url("/ui/verification?flow=")), "{url}");
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("name=\"code\" type=\"text\" value=\"{code}\"")), "the link fills the code: {html}");
    let action = form_action(&html);
    assert!(action.starts_with(&app.url("/ui/verification/confirm?flow=")), "{action}");

    let bad = if code == "000000" { "111111" } else { "000000" };
    let r = c.post(&action).form(&[("method", "code"), ("code", bad)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (resp, _) = follow(&c, location(&r)).await;
    let html = resp.text().await.unwrap();
    assert!(html.contains("The verification code is invalid or has already been used"), "{html}");
    assert_eq!(admin_identity(&app, &id).await["verifiable_addresses"][0]["verified"], false);

    let r = c.post(&action).form(&[("method", "code"), ("code", code.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (resp, _) = follow(&c, location(&r)).await;
    let html = resp.text().await.unwrap();
    assert!(html.contains("You successfully verified your email address"), "{html}");
    assert_eq!(admin_identity(&app, &id).await["verifiable_addresses"][0]["verified"], true);

    // The confirm route takes API verification flows only.
    let browser_flow = ajax_get(&c, &app.url("/self-service/verification/browser")).await;
    let r = c
        .post(app.url(&format!("/ui/verification/confirm?flow={}", browser_flow["id"].as_str().unwrap())))
        .form(&[("method", "code"), ("code", "123456")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
both_dbs!(ui_confirms_api_verification_from_the_mail_link);
