//! The social sign-in client: implements the core's `OidcClient` with the `openidconnect` crate
//! over the server's reqwest client.
//!
//! * Discovery (`<issuer>/.well-known/openid-configuration`) and the provider's JWKS are fetched
//!   on first use and cached for an hour; the JWKS is fetched again (at most once a minute) when a
//!   token names a key that is not in the cached set (key rotation).
//! * The discovered issuer must equal the configured one (Microsoft's multi-tenant endpoints
//!   excepted: their ID tokens carry the user's tenant, checked against the `tid` claim).
//! * ID tokens: signature with the provider's keys and allowed algorithms, `iss`, `aud` (the
//!   client id, plus `additional_id_token_audiences` for tokens from native apps), `azp`, `exp`
//!   (against the engine clock), `nonce`, and `at_hash` when present.
//! * Userinfo claims are merged under the ID token's (same `sub` required).
//! * GitHub: OAuth2 authorization code with PKCE, then the user API (`/user`, `/user/emails`).
//!
//! Provider responses are capped at 1 MiB; requests time out after 10 s; redirects are not
//! followed. Tokens are never logged.

use async_trait::async_trait;
use base64::Engine as _;
use idflow_core::config::OidcProvider;
use idflow_core::selfservice::methods::oidc::{AuthRequest, OidcClient, ProviderClaims};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AsyncHttpClient, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, HttpRequest, HttpResponse, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const MAX_BODY: usize = 1024 * 1024;
const CACHE_TTL: Duration = Duration::from_secs(3600);
const JWKS_REFRESH_MIN: Duration = Duration::from_secs(60);

/// Discovery result of one provider.
struct Discovered {
    metadata: CoreProviderMetadata,
    fetched: Instant,
}

/// The reqwest-backed social sign-in client.
pub struct HttpOidc {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Discovered>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// `openidconnect`'s HTTP client interface over reqwest.
struct Adapter<'a>(&'a reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Adapter<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let resp = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| HttpError(describe_reqwest(&e)))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = read_capped(resp).await.map_err(HttpError)?;
            let mut out = openidconnect::http::Response::new(bytes);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the provider did not answer in time".into()
    } else if e.is_connect() {
        "the provider could not be reached".into()
    } else {
        format!("the request to the provider failed: {e}")
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe_reqwest(&e))? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err("the provider's response is too large".into());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn to_chrono(t: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

/// The payload of a (verified) JWT as JSON.
fn jwt_payload(jwt: &str) -> Result<Value, String> {
    let part = jwt.split('.').nth(1).ok_or("the ID token is not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| "the ID token payload is not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "the ID token payload is not JSON".to_string())
}

fn describe_claims_error(e: &ClaimsVerificationError) -> String {
    match e {
        ClaimsVerificationError::Expired(_) => "the ID token has expired".into(),
        ClaimsVerificationError::InvalidAudience(d) => format!("the ID token is meant for another client ({d})"),
        ClaimsVerificationError::InvalidIssuer(d) => format!("the ID token comes from another issuer ({d})"),
        ClaimsVerificationError::InvalidNonce(_) => "the ID token nonce does not match this sign-in".into(),
        ClaimsVerificationError::SignatureVerification(_) => "the ID token signature is not valid".into(),
        other => format!("the ID token is not valid ({other})"),
    }
}

fn no_matching_key(e: &ClaimsVerificationError) -> bool {
    matches!(e, ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
}

impl HttpOidc {
    pub fn new(http: reqwest::Client) -> Self {
        HttpOidc { http, cache: Mutex::new(HashMap::new()) }
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<(Value, String), String> {
        let mut req = self.http.get(url).header("accept", "application/json").timeout(Duration::from_secs(10));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| describe_reqwest(&e))?;
        let status = resp.status();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = read_capped(resp).await?;
        if !status.is_success() {
            return Err(format!("{url} answered HTTP {}", status.as_u16()));
        }
        let v = serde_json::from_slice(&bytes).map_err(|_| format!("{url} did not answer with JSON"))?;
        Ok((v, ctype))
    }

    /// Discovery document + JWKS of a provider (cached).
    async fn discover(&self, p: &OidcProvider, refresh_keys: bool) -> Result<Arc<Discovered>, String> {
        // The lock is never held across a request: one slow provider does not hold up others.
        if let Some(d) = self.cached(&p.id) {
            let fresh = d.fetched.elapsed() < CACHE_TTL;
            let may_refresh = d.fetched.elapsed() >= JWKS_REFRESH_MIN;
            if fresh && !(refresh_keys && may_refresh) {
                return Ok(d);
            }
        }
        let issuer = p.issuer();
        let url = format!("{issuer}/.well-known/openid-configuration");
        let (doc, _) = self.get_json(&url, None).await.map_err(|e| format!("discovery failed: {e}"))?;
        let metadata: CoreProviderMetadata =
            serde_json::from_value(doc).map_err(|e| format!("the discovery document of {issuer} is not valid: {e}"))?;
        if !p.is_multi_tenant() && metadata.issuer().as_str().trim_end_matches('/') != issuer {
            return Err(format!(
                "the discovery document names the issuer {:?}, not the configured {issuer:?}",
                metadata.issuer().as_str()
            ));
        }
        let jwks_url = metadata.jwks_uri().url().to_string();
        let (keys, _) =
            self.get_json(&jwks_url, None).await.map_err(|e| format!("fetching the provider keys failed: {e}"))?;
        let jwks: CoreJsonWebKeySet =
            serde_json::from_value(keys).map_err(|e| format!("the provider keys are not a valid JWK set: {e}"))?;
        let d = Arc::new(Discovered { metadata: metadata.set_jwks(jwks), fetched: Instant::now() });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(p.id.clone(), d.clone());
        }
        Ok(d)
    }

    fn cached(&self, id: &str) -> Option<Arc<Discovered>> {
        self.cache.lock().ok().and_then(|c| c.get(id).cloned())
    }

    /// The configured client secret (the HMAC key of HS256 ID tokens; not needed to build an
    /// authorization URL).
    fn static_secret(p: &OidcProvider) -> Option<ClientSecret> {
        p.client_secret.as_ref().filter(|s| !s.0.is_empty()).map(|s| ClientSecret::new(s.0.clone()))
    }

    /// The client secret for a token request now (Apple's is a JWT signed for each request).
    fn secret(p: &OidcProvider) -> Result<Option<ClientSecret>, String> {
        p.client_secret_at(time::OffsetDateTime::now_utc().unix_timestamp()).map(|s| s.map(ClientSecret::new))
    }

    /// Check everything `openidconnect` leaves to the application: `azp`, Microsoft's
    /// tenant-specific issuer. Returns the raw claims.
    fn post_checks(p: &OidcProvider, token: &CoreIdToken, native: bool) -> Result<Value, String> {
        let claims = jwt_payload(&token.to_string())?;
        if native {
            // Every audience must be this client or one of its native apps.
            let auds: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let trusted = |a: &str| a == p.client_id || p.additional_id_token_audiences.iter().any(|x| x == a);
            if auds.is_empty() || !auds.iter().all(|a| trusted(a)) {
                return Err(format!("the ID token is meant for another client (audiences: {})", auds.join(", ")));
            }
        }
        if let Some(azp) = claims.get("azp").and_then(Value::as_str)
            && azp != p.client_id
            && !p.additional_id_token_audiences.iter().any(|a| a == azp)
        {
            return Err(format!("the ID token was issued to another party ({azp:?})"));
        }
        if p.is_multi_tenant() {
            let tid = claims.get("tid").and_then(Value::as_str).unwrap_or_default();
            let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
            if tid.is_empty() || iss != format!("https://login.microsoftonline.com/{tid}/v2.0") {
                return Err("the ID token issuer does not match its tenant".into());
            }
        }
        Ok(claims)
    }

    fn verifier<'a>(p: &'a OidcProvider, d: &Discovered, now: OffsetDateTime, native: bool) -> CoreIdTokenVerifier<'a> {
        let client_id = ClientId::new(p.client_id.clone());
        let issuer = d.metadata.issuer().clone();
        let keys = d.metadata.jwks().clone();
        // Tokens from the code flow may be HMAC-signed with the client secret; tokens that
        // native apps bring never are.
        let v = match (native, Self::static_secret(p)) {
            (false, Some(secret)) => CoreIdTokenVerifier::new_confidential_client(client_id, secret, issuer, keys),
            _ => CoreIdTokenVerifier::new_public_client(client_id, issuer, keys),
        };
        let now = to_chrono(now);
        // Native tokens may name only the app's own client id: their audience is checked in
        // `post_checks` against the client id and `additional_id_token_audiences`.
        v.set_allowed_algs(d.metadata.id_token_signing_alg_values_supported().iter().cloned())
            .set_time_fn(move || now)
            .require_issuer_match(!p.is_multi_tenant())
            .require_audience_match(!native)
    }

    /// Merge userinfo claims under the ID token's claims.
    async fn merge_userinfo(&self, d: &Discovered, access_token: &str, claims: &mut Value) -> Result<(), String> {
        let Some(endpoint) = d.metadata.userinfo_endpoint() else { return Ok(()) };
        let (info, ctype) = match self.get_json(endpoint.url().as_str(), Some(access_token)).await {
            Ok(x) => x,
            Err(e) if e.contains("did not answer with JSON") => {
                tracing::warn!(
                    "userinfo is not JSON (signed userinfo is not supported); using the ID token claims only"
                );
                return Ok(());
            }
            Err(e) => return Err(format!("userinfo failed: {e}")),
        };
        if ctype.starts_with("application/jwt") {
            return Ok(());
        }
        if info.get("sub") != claims.get("sub") {
            return Err("the userinfo subject differs from the ID token subject".into());
        }
        if let (Value::Object(c), Value::Object(i)) = (claims, info) {
            for (k, v) in i {
                c.entry(k).or_insert(v);
            }
        }
        Ok(())
    }

    // ---- GitHub --------------------------------------------------------------------------

    fn github_base(p: &OidcProvider) -> String {
        p.issuer_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| "https://github.com".into())
    }

    fn github_api(p: &OidcProvider) -> String {
        match p.issuer_url.as_deref() {
            // GitHub Enterprise Server.
            Some(u) => format!("{}/api/v3", u.trim_end_matches('/')),
            None => "https://api.github.com".into(),
        }
    }

    async fn github_exchange(
        &self,
        p: &OidcProvider,
        redirect_uri: &str,
        code: &str,
        verifier: &str,
    ) -> Result<ProviderClaims, String> {
        let secret = p.client_secret_at(time::OffsetDateTime::now_utc().unix_timestamp())?.unwrap_or_default();
        let form = [
            ("client_id", p.client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let resp = self
            .http
            .post(format!("{}/login/oauth/access_token", Self::github_base(p)))
            .header("accept", "application/json")
            .form(&form)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| describe_reqwest(&e))?;
        let bytes = read_capped(resp).await?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|_| "the token endpoint did not answer with JSON".to_string())?;
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            return Err(format!("the token endpoint answered {err:?}"));
        }
        let token =
            v.get("access_token").and_then(Value::as_str).ok_or("the token endpoint returned no access token")?;
        let api = Self::github_api(p);
        let user = self.github_get(&format!("{api}/user"), token).await?;
        let id = match user.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("the user API returned no user id".into()),
        };
        let mut claims = json!({
            "iss": p.issuer(),
            "sub": id,
            "name": user.get("name"),
            "nickname": user.get("login"),
            "preferred_username": user.get("login"),
            "picture": user.get("avatar_url"),
            "profile": user.get("html_url"),
        });
        // The primary verified address, else none (the public profile address is not vouched for).
        if let Ok(Value::Array(emails)) = self.github_get(&format!("{api}/user/emails"), token).await {
            let pick = emails
                .iter()
                .find(|e| e.get("primary") == Some(&json!(true)) && e.get("verified") == Some(&json!(true)))
                .or_else(|| emails.iter().find(|e| e.get("verified") == Some(&json!(true))));
            if let Some(e) = pick {
                claims["email"] = e.get("email").cloned().unwrap_or(Value::Null);
                claims["email_verified"] = json!(true);
            }
        }
        if claims.get("email").is_none_or(Value::is_null) && user.get("email").is_some_and(|e| e.is_string()) {
            claims["email"] = user["email"].clone();
            claims["email_verified"] = json!(false);
        }
        if let Value::Object(m) = &mut claims {
            m.retain(|_, v| !v.is_null());
        }
        Ok(ProviderClaims { issuer: p.issuer(), subject: id, claims })
    }

    async fn github_get(&self, url: &str, token: &str) -> Result<Value, String> {
        let resp = self
            .http
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "idflow")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| describe_reqwest(&e))?;
        let status = resp.status();
        let bytes = read_capped(resp).await?;
        if !status.is_success() {
            return Err(format!("{url} answered HTTP {}", status.as_u16()));
        }
        serde_json::from_slice(&bytes).map_err(|_| format!("{url} did not answer with JSON"))
    }
}

#[async_trait]
impl OidcClient for HttpOidc {
    async fn authorization_url(&self, p: &OidcProvider, r: &AuthRequest) -> Result<String, String> {
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(r.pkce_verifier.clone()));
        if p.is_oauth2_only() {
            let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", Self::github_base(p)))
                .map_err(|e| e.to_string())?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("client_id", &p.client_id)
                    .append_pair("redirect_uri", &r.redirect_uri)
                    .append_pair("scope", &p.scopes().join(" "))
                    .append_pair("state", &r.state)
                    .append_pair("code_challenge", challenge.as_str())
                    .append_pair("code_challenge_method", "S256");
                for (k, v) in &r.upstream {
                    q.append_pair(k, v);
                }
            }
            return Ok(url.to_string());
        }
        let d = self.discover(p, false).await?;
        let client = CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(p.client_id.clone()),
            Self::static_secret(p),
        )
        .set_redirect_uri(RedirectUrl::new(r.redirect_uri.clone()).map_err(|e| e.to_string())?);
        let (state, nonce) = (r.state.clone(), r.nonce.clone());
        let mut auth = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        let scopes = p.scopes();
        for s in scopes.iter().filter(|s| s.as_str() != "openid") {
            auth = auth.add_scope(Scope::new(s.clone()));
        }
        // Apple sends name and email only with a form_post response.
        if p.provider == "apple" && scopes.iter().any(|s| s == "name" || s == "email") {
            auth = auth.add_extra_param("response_mode", "form_post");
        }
        for (k, v) in &r.upstream {
            auth = auth.add_extra_param(k.clone(), v.clone());
        }
        let (url, _, _) = auth.url();
        Ok(url.to_string())
    }

    async fn exchange_code(
        &self,
        p: &OidcProvider,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<ProviderClaims, String> {
        if p.is_oauth2_only() {
            return self.github_exchange(p, redirect_uri, code, pkce_verifier).await;
        }
        let d = self.discover(p, false).await?;
        let mut client = CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(p.client_id.clone()),
            Self::secret(p)?,
        )
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(|e| e.to_string())?);
        // client_secret_basic unless the provider only takes client_secret_post (Apple).
        if let Some(methods) = d.metadata.token_endpoint_auth_methods_supported() {
            let names: Vec<String> = methods
                .iter()
                .map(|m| serde_json::to_value(m).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
                .collect();
            if !names.iter().any(|n| n == "client_secret_basic") && names.iter().any(|n| n == "client_secret_post") {
                client = client.set_auth_type(AuthType::RequestBody);
            }
        }
        let http = Adapter(&self.http);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| "the provider has no token endpoint".to_string())?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => format!("the token endpoint answered {:?}", r.error().as_ref()),
                RequestTokenError::Request(e) => e.to_string(),
                RequestTokenError::Parse(_, _) => "the token endpoint's answer could not be read".into(),
                RequestTokenError::Other(o) => o,
            })?;
        let id_token = token.id_token().ok_or("the provider returned no ID token")?;
        let nonce = Nonce::new(nonce.to_string());
        let mut d = d;
        let verified = {
            let v = Self::verifier(p, &d, now, false);
            id_token.claims(&v, &nonce).cloned()
        };
        let claims_checked = match verified {
            Err(e) if no_matching_key(&e) => {
                d = self.discover(p, true).await?;
                let v = Self::verifier(p, &d, now, false);
                id_token.claims(&v, &nonce).cloned().map_err(|e| describe_claims_error(&e))?
            }
            other => other.map_err(|e| describe_claims_error(&e))?,
        };
        if let Some(expected) = claims_checked.access_token_hash() {
            let v = Self::verifier(p, &d, now, false);
            let alg = id_token.signing_alg().map_err(|_| "the ID token algorithm is not supported".to_string())?;
            let key = id_token.signing_key(&v).map_err(|_| "the ID token signing key is unknown".to_string())?;
            let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
                .map_err(|_| "the access token hash could not be computed".to_string())?;
            if actual != *expected {
                return Err("the access token does not belong to the ID token".into());
            }
        }
        let mut claims = Self::post_checks(p, id_token, false)?;
        self.merge_userinfo(&d, token.access_token().secret(), &mut claims).await?;
        Ok(ProviderClaims {
            issuer: claims_checked.issuer().to_string(),
            subject: claims_checked.subject().to_string(),
            claims,
        })
    }

    async fn verify_id_token(
        &self,
        p: &OidcProvider,
        id_token: &str,
        now: OffsetDateTime,
    ) -> Result<ProviderClaims, String> {
        let token = CoreIdToken::from_str(id_token).map_err(|_| "the ID token is not a well-formed JWT".to_string())?;
        let mut d = self.discover(p, false).await?;
        let any_nonce = |_: Option<&Nonce>| Ok(());
        let checked = {
            let v = Self::verifier(p, &d, now, true);
            token.claims(&v, any_nonce).cloned()
        };
        let checked = match checked {
            Err(e) if no_matching_key(&e) => {
                d = self.discover(p, true).await?;
                let v = Self::verifier(p, &d, now, true);
                token.claims(&v, any_nonce).cloned().map_err(|e| describe_claims_error(&e))?
            }
            other => other.map_err(|e| describe_claims_error(&e))?,
        };
        let claims = Self::post_checks(p, &token, true)?;
        Ok(ProviderClaims { issuer: checked.issuer().to_string(), subject: checked.subject().to_string(), claims })
    }
}
