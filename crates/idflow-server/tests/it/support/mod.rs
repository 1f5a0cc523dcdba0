//! The one support module of the integration tests: the harness (`TestApp`, `spawn_app`,
//! `both_dbs!`), the three client kinds and the actor `User`, flow JSON accessors, error
//! envelopes, TOTP codes, insta snapshot redaction, the local OpenID provider of the social
//! sign-in tests and a software WebAuthn authenticator.
//!
//! Everything but the authenticator is re-exported here, so a test file needs only
//! `use crate::support::*;` (plus `use crate::both_dbs;`).
#![allow(dead_code)]

mod account;
mod app;
mod clients;
mod envelopes;
mod flow_json;
mod hooks;
mod oidc_provider;
mod smtp;
mod snapshots;
pub mod softkey;
mod totp;

pub use account::*;
pub use app::*;
pub use clients::*;
pub use envelopes::*;
pub use flow_json::*;
pub use hooks::*;
pub use oidc_provider::*;
pub use smtp::*;
pub use snapshots::*;
pub use totp::*;
