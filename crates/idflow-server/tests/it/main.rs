//! The one integration test binary: every test starts the real server on 127.0.0.1:0 with a
//! fresh database (SQLite file or a new PostgreSQL database) and drives it over HTTP.
//!
//! Modules are named by feature; shared helpers live only in `support` (import them with
//! `use crate::support::*;`). Write a test once as `async fn name(db: Db)` and instantiate it for
//! both engines with `both_dbs!(name);`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod account_deletion;
mod activity;
mod admin;
mod bad_input;
mod bcrypt_import;
mod browser;
mod cli;
mod cli_import;
mod cookie_hardening;
mod courier;
mod data_export;
mod default_base_url;
mod expired_cleanup;
mod faults;
mod field_policy;
mod flow_hooks;
mod flow_responder;
mod fuzz_props;
mod guard_rails;
mod hashing_dos;
mod hostile_input;
mod log_secrets;
mod login;
mod multinode;
mod notifications;
mod oidc;
mod openapi;
mod recovery;
mod registration;
mod return_to_corpus;
mod session_revocation;
mod sessions;
mod settings;
mod store;
mod ui;
mod v1;
mod verification;
mod web_hook_errors;
mod webauthn;
