//! The port to sign-in providers: the core knows no HTTP; the server implements
//! [`OidcClient`] with the `openidconnect` crate.

use crate::config::OidcProvider;
use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

/// The verified identity of the end user at a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderClaims {
    /// `iss` of the ID token (`https://github.com` for GitHub).
    pub issuer: String,
    /// `sub` of the ID token (GitHub: the numeric user id).
    pub subject: String,
    /// Every claim (ID token merged with userinfo): the input of the mapper.
    pub claims: Value,
}

/// What the core needs to start a round trip.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    /// The PKCE verifier (the client derives the S256 challenge).
    pub pkce_verifier: String,
    /// Allow-listed parameters forwarded to the provider (`login_hint`, `prompt`, …).
    pub upstream: Vec<(String, String)>,
}

/// Talks to providers. Implemented by the server; errors are human-readable reasons.
#[async_trait]
pub trait OidcClient: Send + Sync {
    /// The provider's authorization URL for this request (discovery as needed).
    async fn authorization_url(&self, p: &OidcProvider, r: &AuthRequest) -> std::result::Result<String, String>;
    /// Exchange an authorization code (with the PKCE verifier) and verify the ID token
    /// (signature, issuer, audience, expiry at `now`, `nonce`); merge userinfo claims.
    async fn exchange_code(
        &self,
        p: &OidcProvider,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String>;
    /// Verify an ID token a native app obtained (signature, issuer, audience incl.
    /// `additional_id_token_audiences`, expiry at `now`). The nonce is checked by the caller.
    async fn verify_id_token(
        &self,
        p: &OidcProvider,
        id_token: &str,
        now: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String>;
}

/// The client used until the server installs a real one.
pub struct NoOidcClient;

#[async_trait]
impl OidcClient for NoOidcClient {
    async fn authorization_url(&self, _: &OidcProvider, _: &AuthRequest) -> std::result::Result<String, String> {
        Err("no OpenID Connect client is installed".into())
    }
    async fn exchange_code(
        &self,
        _: &OidcProvider,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
        _: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String> {
        Err("no OpenID Connect client is installed".into())
    }
    async fn verify_id_token(
        &self,
        _: &OidcProvider,
        _: &str,
        _: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String> {
        Err("no OpenID Connect client is installed".into())
    }
}
