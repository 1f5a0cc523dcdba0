//! idflow server: the HTTP layer (Kratos-compatible routes, v1 routes, admin API) and the
//! application wiring. The binary (`main.rs`) is a thin CLI over [`app::Application`].

pub mod app;
pub mod cli;
pub mod conn;
pub mod courier;
pub mod http;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod ui;
pub mod wire;
