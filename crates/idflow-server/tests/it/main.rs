//! The one integration test binary: every test starts the real server on 127.0.0.1:0 with a
//! fresh database (SQLite file or a new PostgreSQL database) and drives it over HTTP.
//!
//! Write a test once as `async fn name(db: Db)` and instantiate it for both engines with
//! `both_dbs!(name);`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod basics;
