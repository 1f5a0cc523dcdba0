//! A minimal software WebAuthn authenticator + client for the webauthn tests: ES256 (P-256)
//! keys, `fmt: "none"` attestation, assertions with a settable signature counter, optional
//! user verification and a settable client origin. It answers the JSON options the server puts
//! in its nodes and returns the JSON the `webauthn.js` helper would post.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

pub fn unb64u(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).unwrap()
}

// ---- minimal CBOR encoder ----------------------------------------------------------------

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n < 256 {
        out.extend([m | 24, n as u8]);
    } else if n < 65536 {
        out.push(m | 25);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(m | 26);
        out.extend((n as u32).to_be_bytes());
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 { head(0, i as u64, out) } else { head(1, (-1 - i) as u64, out) }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len() as u64, out);
    out.extend_from_slice(b);
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// One credential held by the authenticator.
#[derive(Clone)]
pub struct SoftCredential {
    pub id: Vec<u8>,
    pub key: SigningKey,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    pub counter: u32,
}

impl SoftCredential {
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let raw = point.as_bytes();
        let (x, y) = (&raw[1..33], &raw[33..65]);
        let mut out = vec![];
        head(5, 5, &mut out);
        int(1, &mut out);
        int(2, &mut out); // kty: EC2
        int(3, &mut out);
        int(-7, &mut out); // alg: ES256
        int(-1, &mut out);
        int(1, &mut out); // crv: P-256
        int(-2, &mut out);
        bytes(x, &mut out);
        int(-3, &mut out);
        bytes(y, &mut out);
        out
    }
}

/// The authenticator plus the browser side (origin, clientDataJSON).
pub struct SoftAuthenticator {
    /// The origin the "browser" reports in clientDataJSON.
    pub origin: String,
    /// Whether the user is verified (PIN / biometrics): sets the UV flag.
    pub uv: bool,
    pub creds: Vec<SoftCredential>,
}

fn new_key() -> SigningKey {
    loop {
        let seed: [u8; 32] = rand::random();
        if let Ok(k) = SigningKey::from_slice(&seed) {
            return k;
        }
    }
}

fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})).unwrap()
}

impl SoftAuthenticator {
    pub fn new(origin: &str) -> Self {
        SoftAuthenticator { origin: origin.to_string(), uv: true, creds: vec![] }
    }

    /// `navigator.credentials.create` for the `{"publicKey": …}` options. Refuses (like a real
    /// authenticator) when one of its credentials is in `excludeCredentials`.
    pub fn create(&mut self, options: &Value) -> Result<String, String> {
        let pk = &options["publicKey"];
        let excluded: Vec<Vec<u8>> = pk["excludeCredentials"]
            .as_array()
            .map(|a| a.iter().map(|c| unb64u(c["id"].as_str().unwrap())).collect())
            .unwrap_or_default();
        if self.creds.iter().any(|c| excluded.contains(&c.id)) {
            return Err("InvalidStateError: the authenticator contains one of the excluded credentials".into());
        }
        let cred = SoftCredential {
            id: rand::random::<[u8; 32]>().to_vec(),
            key: new_key(),
            rp_id: pk["rp"]["id"].as_str().unwrap().to_string(),
            user_handle: unb64u(pk["user"]["id"].as_str().unwrap()),
            counter: 0,
        };
        let out = self.attest(&cred, pk);
        self.creds.push(cred);
        Ok(out)
    }

    /// Register credential `index` again, ignoring `excludeCredentials` (a misbehaving client).
    pub fn create_again(&self, options: &Value, index: usize) -> String {
        self.attest(&self.creds[index], &options["publicKey"])
    }

    fn attest(&self, cred: &SoftCredential, pk: &Value) -> String {
        let cdj = client_data("webauthn.create", pk["challenge"].as_str().unwrap(), &self.origin);
        let mut auth_data = Sha256::digest(cred.rp_id.as_bytes()).to_vec();
        auth_data.push(0x41 | if self.uv { 0x04 } else { 0 }); // UP, AT (+UV)
        auth_data.extend(cred.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((cred.id.len() as u16).to_be_bytes());
        auth_data.extend(&cred.id);
        auth_data.extend(cred.cose_key());
        let mut att = vec![];
        head(5, 3, &mut att);
        text("fmt", &mut att);
        text("none", &mut att);
        text("attStmt", &mut att);
        head(5, 0, &mut att);
        text("authData", &mut att);
        bytes(&auth_data, &mut att);
        json!({
            "id": b64u(&cred.id),
            "rawId": b64u(&cred.id),
            "type": "public-key",
            "response": {"attestationObject": b64u(&att), "clientDataJSON": b64u(&cdj)},
            "extensions": {},
        })
        .to_string()
    }

    /// `navigator.credentials.get` for the `{"publicKey": …}` options: the first credential in
    /// `allowCredentials` (or, when it is empty, the first for the RP: discoverable). The
    /// counter is incremented first.
    pub fn get(&mut self, options: &Value) -> Result<String, String> {
        let i = self.pick(options)?;
        self.creds[i].counter += 1;
        Ok(self.assert_with(options, i, self.creds[i].counter, None))
    }

    /// Index of the credential `get` would use.
    pub fn pick(&self, options: &Value) -> Result<usize, String> {
        let pk = &options["publicKey"];
        let rp_id = pk["rpId"].as_str().unwrap();
        let allowed: Vec<Vec<u8>> = pk["allowCredentials"]
            .as_array()
            .map(|a| a.iter().map(|c| unb64u(c["id"].as_str().unwrap())).collect())
            .unwrap_or_default();
        self.creds
            .iter()
            .position(|c| c.rp_id == rp_id && (allowed.is_empty() || allowed.contains(&c.id)))
            .ok_or_else(|| "NotAllowedError: no credential for this request".to_string())
    }

    /// An assertion of credential `index` with an explicit counter and optionally another
    /// origin in clientDataJSON.
    pub fn assert_with(&self, options: &Value, index: usize, counter: u32, origin: Option<&str>) -> String {
        let cred = &self.creds[index];
        let pk = &options["publicKey"];
        let cdj = client_data("webauthn.get", pk["challenge"].as_str().unwrap(), origin.unwrap_or(&self.origin));
        let mut auth_data = Sha256::digest(cred.rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | if self.uv { 0x04 } else { 0 }); // UP (+UV)
        auth_data.extend(counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&cdj));
        let sig: Signature = cred.key.sign(&signed);
        json!({
            "id": b64u(&cred.id),
            "rawId": b64u(&cred.id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64u(&auth_data),
                "clientDataJSON": b64u(&cdj),
                "signature": b64u(sig.to_der().as_bytes()),
                "userHandle": b64u(&cred.user_handle),
            },
            "extensions": {},
        })
        .to_string()
    }
}
