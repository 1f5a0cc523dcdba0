//! TOTP codes as an authenticator app computes them (at the server's injected clock), a fixed
//! test secret, fresh secrets and codes that are guaranteed wrong.

use super::*;
use idflow_core::clock::Clock;

/// A fixed base32 TOTP secret for identities imported with a second factor.
pub const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn totp_of(secret_b32: &str) -> totp_rs::Totp {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).unwrap();
    totp_rs::Builder::new().with_secret(secret).build().unwrap()
}

/// The current TOTP code of a base32 secret (at the server's clock offset).
pub fn totp_code(secret_b32: &str, clock: &Clock) -> String {
    totp_code_at(secret_b32, clock, 0)
}

/// The TOTP code of a base32 secret `offset_secs` away from the server's clock.
pub fn totp_code_at(secret_b32: &str, clock: &Clock, offset_secs: i64) -> String {
    let now = clock.now().unix_timestamp() + offset_secs;
    totp_of(secret_b32).generate(u64::try_from(now).unwrap()).to_string()
}

/// A fresh base32 TOTP secret (160 bits).
pub fn new_totp_secret() -> String {
    totp_rs::Secret::generate().to_base32()
}

/// A well-formed six-digit code that is wrong for `secret` at every step the server accepts.
pub fn wrong_totp_code(secret: &str, app: &TestApp) -> String {
    let t = totp_of(secret);
    let now = u64::try_from(app.clock.now().unix_timestamp()).unwrap();
    let valid: Vec<String> =
        [now - 60, now - 30, now, now + 30, now + 60].iter().map(|t2| t.generate(*t2).to_string()).collect();
    (0..1_000_000u32).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).unwrap()
}
