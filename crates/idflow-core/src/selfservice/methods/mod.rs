//! Settings/login methods. One module per method; each offers its UI nodes and its submit
//! handlers. Adding a method means one module here and one dispatch line in `settings.rs`.

pub mod lookup;
pub mod oidc;
pub mod passkey;
pub mod password;
pub mod profile;
pub mod totp;
pub mod webauthn;
