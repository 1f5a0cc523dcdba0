//! The one integration test binary: every test starts the real server on 127.0.0.1:0 with a
//! fresh database (SQLite file or a new PostgreSQL database) and drives it over HTTP.
//!
//! Write a test once as `async fn name(db: Db)` and instantiate it for both engines with
//! `both_dbs!(name);`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod basics;
mod bcrypt_import;
mod cli;
mod cookie_hardening;
mod expired_cleanup;
mod fault;
mod foundation_admin;
mod foundation_bad_input;
mod foundation_browser;
mod foundation_login;
mod foundation_sessions;
mod foundation_util;
mod foundation_v1;
mod fuzz_props;
mod hashing_dos;
mod hostile;
mod mfa_login;
mod multinode;
mod oidc;
mod return_to_corpus;
mod session_revocation;
mod settings_bad_input;
mod settings_common;
mod settings_guards;
mod settings_hooks;
mod settings_methods;
mod settings_password_policy;
mod settings_privileged;
mod settings_sdk;
mod settings_snapshots;
mod store_suite;
mod ui_pages;
mod v1_sdk;
mod v1_settings;
mod web_hook_errors;
mod webauthn_flows;
mod webauthn_softkey;
