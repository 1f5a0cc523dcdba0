//! Walk through the account settings of a user with the v1 API.
//!
//! Usage (against a running server, e.g. `idflow serve --dev`):
//!
//! ```text
//! cargo run -p idflow-client --example account_settings -- http://127.0.0.1:4433
//! ```
//!
//! It registers a new user, updates the profile, tries a weak and then a strong new password,
//! starts adding an authenticator app (writing the QR code to `totp-qr.png` and printing the
//! key), and signs out. Confirming the app needs a code from it, so the example stops there.

use idflow_client::{Client, Error};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:4433".to_string());
    let client = Client::new(&base)?;

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let email = format!("example-{stamp}@example.com");
    let password = format!("first-passphrase-{stamp}");

    let registered = client.register(json!({ "email": email }), &password).await?;
    println!("registered identity {}", registered.identity.id);
    let Some(token) = registered.session_token else {
        println!("the server does not sign new users in; signing in");
        let signed_in = client.login(&email, &password).await?;
        return settings(client.with_token(signed_in.session_token), &email).await;
    };
    settings(client.with_token(token), &email).await
}

async fn settings(client: Client, email: &str) -> Result<(), Error> {
    let session = client.get_session().await?;
    println!("signed in: session {} ({})", session.id, session.authenticator_assurance_level);

    let flow =
        client.auth().update_profile(json!({ "email": email, "name": { "first": "Ada", "last": "Lovelace" } })).await?;
    for m in flow.ui.messages {
        println!("profile: {} ({})", m.text, m.id);
    }

    match client.auth().change_password("short").await {
        Err(Error::WeakPassword(e)) => {
            for m in e.error_messages() {
                println!("weak password rejected ({}): {}", e.code, m.text);
            }
        }
        other => println!("unexpected answer to a weak password: {other:?}"),
    }
    client.auth().change_password("a far longer and better passphrase").await?;
    println!("password changed");

    let enrollment = client.auth().enroll_totp().await?;
    match std::fs::write("totp-qr.png", &enrollment.qr_png) {
        Ok(()) => println!("QR code written to totp-qr.png ({} bytes)", enrollment.qr_png.len()),
        Err(e) => println!("could not write the QR code: {e}"),
    }
    println!("authenticator key: {}", enrollment.secret);
    println!("key URI: {}", enrollment.otpauth_url);
    println!("(confirm with client.auth().confirm_totp(code) and a code from the app)");

    client.logout().await?;
    match client.get_session().await {
        Err(Error::Unauthorized(e)) => println!("signed out; the token is now rejected with {}", e.code),
        other => println!("unexpected answer after sign-out: {other:?}"),
    }
    Ok(())
}
