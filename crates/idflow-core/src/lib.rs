//! idflow core: the domain model (identities, credentials, sessions, self-service flows),
//! UI nodes and messages, configuration, identity schemas, password hashing and policy,
//! the store trait and the mail courier. It knows neither HTTP nor SQL.

pub mod activity;
pub mod claims_mapper;
pub mod cleanup;
pub mod clock;
pub mod config;
pub mod courier;
pub mod crypto;
pub mod error;
pub mod model;
pub mod password;
pub mod qr;
pub mod schema;
pub mod selfservice;
pub mod store;
pub mod ui;
