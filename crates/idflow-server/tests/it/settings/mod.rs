//! The settings flow (spec `settings-flow.md`): every method with every client kind, privileged
//! sessions, the gates in front of the methods, hooks, password policy, the official Rust SDK,
//! wire-shape snapshots and bad input.

mod bad_input;
mod email_change;
mod factors;
mod guards;
mod hooks;
mod methods;
mod password_policy;
mod privileged;
mod sdk;
mod snapshots;
