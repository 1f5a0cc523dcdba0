//! Tokens, hashes and CSRF masking. All comparisons of secrets are constant time.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `prefix` + 32 random alphanumerics (≈190 bits).
pub fn random_token(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 32);
    s.push_str(prefix);
    for _ in 0..32 {
        let i = rng.random_range(0..ALNUM.len());
        s.push(char::from(ALNUM[i]));
    }
    s
}

/// Random string over `alphabet`.
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill(&mut b[..]);
    b
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Hash of a bearer token as stored in the database.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A fresh CSRF secret (base64 of 32 random bytes): the cookie value.
pub fn new_csrf_secret() -> String {
    STANDARD.encode(random_bytes::<32>())
}

/// Mask a CSRF secret for a form: base64(pad ‖ secret XOR pad). New pad every call.
pub fn mask_csrf(secret_b64: &str) -> String {
    let Ok(secret) = STANDARD.decode(secret_b64) else { return String::new() };
    let pad: Vec<u8> = (0..secret.len()).map(|_| rand::rng().random()).collect();
    let mut out = pad.clone();
    out.extend(secret.iter().zip(&pad).map(|(s, p)| s ^ p));
    STANDARD.encode(out)
}

fn unmask(v: &str) -> Option<Vec<u8>> {
    let raw = STANDARD.decode(v.trim()).ok()?;
    if raw.len() == 64 {
        let (pad, x) = raw.split_at(32);
        Some(pad.iter().zip(x).map(|(p, x)| p ^ x).collect())
    } else if raw.len() == 32 {
        Some(raw)
    } else {
        None
    }
}

/// Whether a (masked or plain) token matches a (masked or plain) secret.
pub fn csrf_matches(a: &str, b: &str) -> bool {
    match (unmask(a), unmask(b)) {
        (Some(x), Some(y)) => ct_eq(&x, &y),
        _ => false,
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// HMAC-SHA256, base64url.
pub fn hmac_b64(key: &[u8], data: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(data);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Sign a value for a cookie: `value.sig` with the first key.
pub fn sign(keys: &[Vec<u8>], value: &str) -> String {
    let key = keys.first().map(Vec::as_slice).unwrap_or_default();
    format!("{value}.{}", hmac_b64(key, value.as_bytes()))
}

/// Verify a signed cookie value with any of the keys (rotation).
pub fn unsign(keys: &[Vec<u8>], signed: &str) -> Option<String> {
    let (value, sig) = signed.rsplit_once('.')?;
    keys.iter().any(|k| ct_eq(hmac_b64(k, value.as_bytes()).as_bytes(), sig.as_bytes())).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_roundtrip() {
        let s = new_csrf_secret();
        let m1 = mask_csrf(&s);
        let m2 = mask_csrf(&s);
        assert_ne!(m1, m2);
        assert_eq!(m1.len(), 88);
        assert!(csrf_matches(&m1, &s));
        assert!(csrf_matches(&m1, &m2));
        assert!(!csrf_matches(&m1, &new_csrf_secret()));
        assert!(!csrf_matches("", &s));
        assert!(!csrf_matches("garbage!!", &s));
    }

    #[test]
    fn signing() {
        let keys = vec![b"k1".to_vec(), b"k0".to_vec()];
        let s = sign(&keys, "tok");
        assert_eq!(unsign(&keys, &s).as_deref(), Some("tok"));
        assert_eq!(unsign(&keys[1..], &s), None);
        assert_eq!(unsign(&keys, "tok.bad"), None);
    }

    #[test]
    fn tokens() {
        let t = random_token("idf_st_");
        assert_eq!(t.len(), 39);
        assert_ne!(t, random_token("idf_st_"));
    }
}
