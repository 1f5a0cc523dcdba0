//! Password hashing (argon2id, bcrypt) and the password policy.
//!
//! Hashing: new hashes are argon2id PHC strings (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`) or
//! bcrypt (`$2b$`), per [`HashersConfig`]. [`verify`] understands argon2id/argon2i/argon2d PHC
//! strings and bcrypt `$2a$`/`$2b$`/`$2y$`; comparisons are constant time. [`hash`], [`verify`]
//! and [`verify_dummy`] are CPU-heavy: callers run them on a blocking thread.
//!
//! Policy: [`check_policy`] does the cheap checks only (lengths, similarity to identifiers,
//! the bundled offline list of common/breached passwords) and never hashes.
//!
//! Secrets: no type here holds a password or a hash, and no error message contains either.
//!
//! The common-password list `data/common-passwords.bin` is rebuilt by
//! `scripts/gen-common-passwords.py` (its header names the source and licence): sorted,
//! deduplicated big-endian u64 values, each the first 8 bytes of SHA-256 of a lowercased
//! password.

use crate::ui::{UiText, msg};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use subtle::ConstantTimeEq;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The algorithm used for new hashes (`hashers.algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// argon2id, version 0x13.
    Argon2,
    /// bcrypt `$2b$`.
    Bcrypt,
}

/// `hashers.argon2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    /// Memory in KiB.
    pub memory: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Salt length in bytes.
    pub salt_length: u32,
    /// Output (key) length in bytes.
    pub key_length: u32,
}

impl Default for Argon2Config {
    /// OWASP's recommendation for argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self { memory: 19 * 1024, iterations: 2, parallelism: 1, salt_length: 16, key_length: 32 }
    }
}

/// `hashers.bcrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BcryptConfig {
    pub cost: u32,
}

impl Default for BcryptConfig {
    fn default() -> Self {
        Self { cost: 12 }
    }
}

/// `hashers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashersConfig {
    pub algorithm: HashAlgorithm,
    pub argon2: Argon2Config,
    pub bcrypt: BcryptConfig,
    /// Hash/verify jobs that may wait for the hashing pool; above it requests get 503 with
    /// `Retry-After` instead of queueing (`hashers.max_queue`).
    pub max_queue: usize,
}

impl Default for HashersConfig {
    fn default() -> Self {
        Self {
            algorithm: HashAlgorithm::Argon2,
            argon2: Argon2Config::default(),
            bcrypt: BcryptConfig::default(),
            max_queue: 256,
        }
    }
}

/// Bounds on argon2 parameters, for the configuration and for imported/stored hashes.
pub mod limits {
    /// 4 GiB, in KiB.
    pub const ARGON2_MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    pub const ARGON2_MAX_ITERATIONS: u32 = 1024;
    pub const ARGON2_MAX_PARALLELISM: u32 = 255;
    pub const ARGON2_MIN_SALT: u32 = 8;
    pub const ARGON2_MAX_SALT: u32 = 48;
    pub const ARGON2_MIN_KEY: u32 = 10;
    pub const ARGON2_MAX_KEY: u32 = 64;
    pub const BCRYPT_MIN_COST: u32 = 4;
    pub const BCRYPT_MAX_COST: u32 = 31;
    /// bcrypt ignores everything past 72 bytes.
    pub const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;
}
use limits::*;

impl HashersConfig {
    /// Check the parameters; the error names the offending key (`hashers.argon2.memory`, …).
    pub fn validate(&self) -> Result<(), String> {
        let a = &self.argon2;
        let bad = |key: &str, why: String| Err(format!("invalid configuration at key `hashers.{key}`: {why}"));
        if a.parallelism < 1 || a.parallelism > ARGON2_MAX_PARALLELISM {
            return bad("argon2.parallelism", format!("must be between 1 and {ARGON2_MAX_PARALLELISM}"));
        }
        let min_mem = a.parallelism.saturating_mul(8);
        if a.memory < min_mem || a.memory > ARGON2_MAX_MEMORY_KIB {
            return bad(
                "argon2.memory",
                format!("must be between {min_mem} (8 KiB per lane) and {ARGON2_MAX_MEMORY_KIB} KiB"),
            );
        }
        if a.iterations < 1 || a.iterations > ARGON2_MAX_ITERATIONS {
            return bad("argon2.iterations", format!("must be between 1 and {ARGON2_MAX_ITERATIONS}"));
        }
        if a.salt_length < ARGON2_MIN_SALT || a.salt_length > ARGON2_MAX_SALT {
            return bad("argon2.salt_length", format!("must be between {ARGON2_MIN_SALT} and {ARGON2_MAX_SALT}"));
        }
        if a.key_length < ARGON2_MIN_KEY || a.key_length > ARGON2_MAX_KEY {
            return bad("argon2.key_length", format!("must be between {ARGON2_MIN_KEY} and {ARGON2_MAX_KEY}"));
        }
        if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&self.bcrypt.cost) {
            return bad("bcrypt.cost", format!("must be between {BCRYPT_MIN_COST} and {BCRYPT_MAX_COST}"));
        }
        Ok(())
    }
}

/// `selfservice.methods.password.config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Minimum length in Unicode code points.
    pub min_password_length: usize,
    /// Maximum length in Unicode code points (bcrypt additionally limits to 72 bytes).
    pub max_password_length: usize,
    pub identifier_similarity_check_enabled: bool,
    /// Check the bundled offline list of common/breached passwords (no network).
    pub haveibeenpwned_enabled: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            min_password_length: 8,
            max_password_length: 256,
            identifier_similarity_check_enabled: true,
            haveibeenpwned_enabled: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and the call counter
// ---------------------------------------------------------------------------------------------

/// Hashing errors. Messages never contain the password or the hash.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("unknown password hash format")]
    UnknownFormat,
    #[error("malformed password hash: {0}")]
    Malformed(String),
    #[error("password hash parameters out of bounds: {0}")]
    UnsafeParams(String),
    #[error("invalid hasher configuration: {0}")]
    Config(String),
    #[error("password longer than {BCRYPT_MAX_PASSWORD_BYTES} bytes can not be hashed with bcrypt")]
    TooLongForBcrypt,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

static HASH_CALLS: AtomicU64 = AtomicU64::new(0);

/// Number of hash/verify computations done by this process (including dummy verifications),
/// so tests can assert that a request was rejected before any hashing.
pub fn hash_calls() -> u64 {
    HASH_CALLS.load(Ordering::SeqCst)
}

fn count_call() {
    HASH_CALLS.fetch_add(1, Ordering::SeqCst);
}

// ---------------------------------------------------------------------------------------------
// Hash formats
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Argon2,
    Bcrypt,
}

fn detect(hash: &str) -> Option<Format> {
    if ["$argon2id$", "$argon2i$", "$argon2d$"].iter().any(|p| hash.starts_with(p)) {
        Some(Format::Argon2)
    } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        Some(Format::Bcrypt)
    } else {
        None
    }
}

/// A parsed argon2 PHC string.
struct Argon2Hash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

fn malformed(why: impl std::fmt::Display) -> PasswordError {
    PasswordError::Malformed(why.to_string())
}

fn parse_argon2(hash: &str) -> Result<Argon2Hash, PasswordError> {
    let phc = PasswordHash::new(hash).map_err(malformed)?;
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).map_err(|_| PasswordError::UnknownFormat)?;
    // The reference implementation reads a missing `v=` as version 1.0 (0x10).
    let version = match phc.version {
        None => Version::V0x10,
        Some(v) => Version::try_from(v).map_err(|_| malformed("unsupported argon2 version"))?,
    };
    for p in ["m", "t", "p"] {
        if phc.params.get_decimal(p).is_none() {
            return Err(malformed(format!("argon2 parameter {p} missing")));
        }
    }
    let params = Params::try_from(&phc).map_err(malformed)?;
    let salt = phc.salt.as_ref().ok_or_else(|| malformed("salt missing"))?.to_vec();
    let expected = phc.hash.as_ref().ok_or_else(|| malformed("hash missing"))?.as_bytes().to_vec();
    Ok(Argon2Hash { algorithm, version, params, salt, expected })
}

fn check_argon2_bounds(h: &Argon2Hash) -> Result<(), PasswordError> {
    let unsafe_ = |s: String| Err(PasswordError::UnsafeParams(s));
    let (m, t, p) = (h.params.m_cost(), h.params.t_cost(), h.params.p_cost());
    if m > ARGON2_MAX_MEMORY_KIB {
        return unsafe_(format!("argon2 memory {m} KiB exceeds {ARGON2_MAX_MEMORY_KIB} KiB"));
    }
    if t > ARGON2_MAX_ITERATIONS {
        return unsafe_(format!("argon2 iterations {t} exceed {ARGON2_MAX_ITERATIONS}"));
    }
    if p > ARGON2_MAX_PARALLELISM {
        return unsafe_(format!("argon2 parallelism {p} exceeds {ARGON2_MAX_PARALLELISM}"));
    }
    let salt = h.salt.len();
    if !(ARGON2_MIN_SALT as usize..=ARGON2_MAX_SALT as usize).contains(&salt) {
        return unsafe_(format!("argon2 salt length {salt} not in {ARGON2_MIN_SALT}..={ARGON2_MAX_SALT}"));
    }
    let key = h.expected.len();
    if !(ARGON2_MIN_KEY as usize..=ARGON2_MAX_KEY as usize).contains(&key) {
        return unsafe_(format!("argon2 hash length {key} not in {ARGON2_MIN_KEY}..={ARGON2_MAX_KEY}"));
    }
    Ok(())
}

/// Parse and check a bcrypt string: `$2a$`/`$2b$`/`$2y$`, two-digit cost, 53 characters of
/// bcrypt base64 (22 salt + 31 hash). Returns the cost.
fn parse_bcrypt(hash: &str) -> Result<u32, PasswordError> {
    let b = hash.as_bytes();
    if b.len() != 60 || !hash.is_ascii() {
        return Err(malformed("bcrypt hash must be 60 ASCII characters"));
    }
    if b.get(3) != Some(&b'$') || b.get(6) != Some(&b'$') {
        return Err(malformed("bcrypt hash layout invalid"));
    }
    let cost: u32 = hash
        .get(4..6)
        .filter(|c| c.bytes().all(|d| d.is_ascii_digit()))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| malformed("bcrypt cost is not a number"))?;
    let body = hash.get(7..).unwrap_or_default();
    if !body.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/') {
        return Err(malformed("bcrypt salt/hash is not bcrypt base64"));
    }
    if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&cost) {
        return Err(PasswordError::UnsafeParams(format!(
            "bcrypt cost {cost} not in {BCRYPT_MIN_COST}..={BCRYPT_MAX_COST}"
        )));
    }
    Ok(cost)
}

// ---------------------------------------------------------------------------------------------
// Hash / verify
// ---------------------------------------------------------------------------------------------

fn argon2_params(c: &Argon2Config) -> Result<Params, PasswordError> {
    let key = usize::try_from(c.key_length).map_err(|e| PasswordError::Config(e.to_string()))?;
    Params::new(c.memory, c.iterations, c.parallelism, Some(key)).map_err(|e| PasswordError::Config(e.to_string()))
}

thread_local! {
    /// argon2 working memory kept between hashes, on threads that opted in with
    /// [`keep_argon2_memory`] (the hashing pool's). Without it every hash allocates its
    /// memory (19 MiB with the defaults) afresh, and glibc, whose mmap threshold rises to that
    /// size after the first free, keeps the freed blocks in whichever per-thread arena served
    /// them: a server's resident memory grew by a few hundred MiB to GiBs after bursts of
    /// password changes.
    static ARGON2_MEMORY: std::cell::RefCell<Option<Vec<argon2::Block>>> = const { std::cell::RefCell::new(None) };
}

/// Memory larger than this (in 1 KiB blocks: 64 MiB) is never kept (odd imported hashes).
const KEPT_ARGON2_BLOCKS: usize = 64 * 1024;
/// The capacity reserved for kept memory (33 MiB, see `argon2_into`).
const RESERVED_ARGON2_BLOCKS: usize = 33 * 1024;

/// Keep argon2's working memory on the calling thread from now on (for long-lived hashing
/// threads: the memory stays allocated, one hash's worth per thread).
pub fn keep_argon2_memory() {
    ARGON2_MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.is_none() {
            *m = Some(Vec::new());
        }
    });
}

/// Free this thread's kept argon2 memory (it is allocated again by the next hash).
pub fn release_argon2_memory() {
    ARGON2_MEMORY.with(|m| {
        if let Some(mem) = m.borrow_mut().as_mut() {
            *mem = Vec::new();
        }
    });
}

/// argon2 into `out`, with this thread's kept memory when it has some. Every block is written
/// before it is read, so the memory needs no clearing between uses.
fn argon2_into(a: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    let need = a.params().block_count();
    let kept = ARGON2_MEMORY.with(|m| match m.borrow_mut().as_mut() {
        Some(mem) if need <= KEPT_ARGON2_BLOCKS => {
            if mem.len() < need {
                // Reserve more than 32 MiB: glibc serves such requests with their own mapping
                // and unmaps it on free (smaller ones land in its arenas, which keep them), so
                // `release_argon2_memory` really gives the memory back. Only the blocks in use
                // are touched, so the resident cost is one hash's memory.
                let mut fresh = Vec::with_capacity(need.max(RESERVED_ARGON2_BLOCKS));
                fresh.resize(need, argon2::Block::new());
                *mem = fresh;
            }
            Some(a.hash_password_into_with_memory(password, salt, out, &mut mem[..need]))
        }
        _ => None,
    });
    match kept {
        Some(r) => r,
        None => a.hash_password_into(password, salt, out),
    }
}

/// A new argon2id PHC string (version 0x13) for `password` with this salt.
fn argon2id_phc(params: Params, password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    let err = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let mut buf = [0u8; ARGON2_MAX_KEY as usize];
    let out =
        buf.get_mut(..params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)).ok_or_else(|| err(&"key length"))?;
    argon2_into(&Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()), password.as_bytes(), salt, out)
        .map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| err(&e))?,
        salt: Some(Salt::new(salt).map_err(|e| err(&e))?),
        hash: Some(Output::new(out).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

/// Hash a password with the configured algorithm. CPU-heavy: run on a blocking thread.
pub fn hash(cfg: &HashersConfig, password: &str) -> Result<String, PasswordError> {
    cfg.validate().map_err(PasswordError::Config)?;
    match cfg.algorithm {
        HashAlgorithm::Argon2 => {
            let params = argon2_params(&cfg.argon2)?;
            let salt_len = usize::try_from(cfg.argon2.salt_length).map_err(|e| PasswordError::Config(e.to_string()))?;
            let mut buf = [0u8; ARGON2_MAX_SALT as usize];
            let salt = buf.get_mut(..salt_len).ok_or_else(|| PasswordError::Config("salt_length too large".into()))?;
            rand::rng().fill(&mut *salt);
            count_call();
            argon2id_phc(params, password, salt)
        }
        HashAlgorithm::Bcrypt => {
            if password.len() > BCRYPT_MAX_PASSWORD_BYTES {
                return Err(PasswordError::TooLongForBcrypt);
            }
            count_call();
            bcrypt::hash(password, cfg.bcrypt.cost).map_err(|e| PasswordError::Hash(e.to_string()))
        }
    }
}

/// Check a password against a stored hash (argon2id/argon2i/argon2d PHC, bcrypt
/// `$2a$`/`$2b$`/`$2y$`). `Ok(false)` on mismatch; `Err(UnknownFormat)` for other formats.
/// CPU-heavy: run on a blocking thread.
pub fn verify(password: &str, hash: &str) -> Result<bool, PasswordError> {
    match detect(hash) {
        None => Err(PasswordError::UnknownFormat),
        Some(Format::Argon2) => {
            let h = parse_argon2(hash)?;
            check_argon2_bounds(&h)?;
            let mut out = vec![0u8; h.expected.len()];
            count_call();
            argon2_into(&Argon2::new(h.algorithm, h.version, h.params), password.as_bytes(), &h.salt, &mut out)
                .map_err(|e| PasswordError::Hash(e.to_string()))?;
            let ok: bool = out.ct_eq(&h.expected).into();
            out.fill(0);
            Ok(ok)
        }
        Some(Format::Bcrypt) => {
            parse_bcrypt(hash)?;
            count_call();
            // bcrypt only reads the first 72 bytes: a longer password would match a hash of
            // its prefix. It never matches (the work is still done, for even timing).
            let too_long = password.len() > BCRYPT_MAX_PASSWORD_BYTES;
            // bcrypt::verify compares with subtle::ConstantTimeEq.
            let ok = bcrypt::verify(password, hash).map_err(|e| PasswordError::Hash(e.to_string()))?;
            Ok(ok && !too_long)
        }
    }
}

/// The outcome of [`hash_if_changed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewPassword {
    /// The new password is the current one.
    Same,
    /// The new password's hash, to be stored.
    Changed(String),
    /// The current hash is not an argon2id hash with today's parameters: the caller compares
    /// with [`verify`] and hashes with [`hash`] (two derivations).
    NeedsTwo,
}

/// A password change with ONE argon2id derivation: the new password is derived with the
/// current hash's salt and parameters; equal to the current hash means the same password
/// (compared in constant time), otherwise that derivation is the new stored hash. The salt
/// therefore stays with the identity across its password changes (hashes of different
/// identities never share one: every identity's first hash gets a fresh random salt).
/// Only when the current hash is argon2id v19 with exactly the configured memory,
/// iterations, parallelism, key and salt length; otherwise [`NewPassword::NeedsTwo`].
/// CPU-heavy: run on the hashing pool.
pub fn hash_if_changed(cfg: &HashersConfig, password: &str, current: &str) -> Result<NewPassword, PasswordError> {
    if cfg.algorithm != HashAlgorithm::Argon2 || detect(current) != Some(Format::Argon2) {
        return Ok(NewPassword::NeedsTwo);
    }
    let Ok(h) = parse_argon2(current) else {
        return Ok(NewPassword::NeedsTwo);
    };
    let c = &cfg.argon2;
    let same_params = h.algorithm == Algorithm::Argon2id
        && h.version == Version::V0x13
        && h.params.m_cost() == c.memory
        && h.params.t_cost() == c.iterations
        && h.params.p_cost() == c.parallelism
        && h.salt.len() == c.salt_length as usize
        && h.expected.len() == c.key_length as usize;
    if !same_params || check_argon2_bounds(&h).is_err() {
        return Ok(NewPassword::NeedsTwo);
    }
    cfg.validate().map_err(PasswordError::Config)?;
    count_call();
    let phc = argon2id_phc(argon2_params(c)?, password, &h.salt)?;
    let fresh = parse_argon2(&phc)?;
    if bool::from(fresh.expected.ct_eq(&h.expected)) { Ok(NewPassword::Same) } else { Ok(NewPassword::Changed(phc)) }
}

/// Parameters identifying a dummy hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DummyKey {
    Argon2 { m: u32, t: u32, p: u32, salt: u32, key: u32 },
    Bcrypt { cost: u32 },
}

impl DummyKey {
    fn of(cfg: &HashersConfig) -> Self {
        match cfg.algorithm {
            HashAlgorithm::Argon2 => {
                let a = &cfg.argon2;
                DummyKey::Argon2 {
                    m: a.memory,
                    t: a.iterations,
                    p: a.parallelism,
                    salt: a.salt_length,
                    key: a.key_length,
                }
            }
            HashAlgorithm::Bcrypt => DummyKey::Bcrypt { cost: cfg.bcrypt.cost },
        }
    }
}

static DUMMY_HASHES: OnceLock<Mutex<HashMap<DummyKey, String>>> = OnceLock::new();

/// The dummy hash for these parameters (a hash of a random secret), computed once.
fn dummy_hash(cfg: &HashersConfig) -> Option<String> {
    let key = DummyKey::of(cfg);
    let map = DUMMY_HASHES.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(h) = map.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Some(h);
    }
    let mut secret = [0u8; 24];
    rand::rng().fill(&mut secret[..]);
    let fresh = hash(cfg, &hex::encode(secret)).ok()?;
    match map.lock() {
        Ok(mut m) => Some(m.entry(key).or_insert(fresh).clone()),
        Err(_) => Some(fresh),
    }
}

/// Compute the dummy hash for `cfg` ahead of time (e.g. at start-up), so the first unknown
/// identifier does not pay for it.
pub fn prepare_dummy(cfg: &HashersConfig) {
    let _ = dummy_hash(cfg);
}

/// Spend the same work as a real [`verify`] with the configured parameters, for unknown
/// identifiers (so response time does not reveal whether an account exists).
/// CPU-heavy: run on a blocking thread.
pub fn verify_dummy(cfg: &HashersConfig, password: &str) {
    if let Some(h) = dummy_hash(cfg) {
        let _ = std::hint::black_box(verify(password, &h));
    }
}

/// Whether a stored hash should be replaced by a fresh one after a successful login: another
/// algorithm (or argon2 variant/version) than configured, or weaker parameters (lower memory,
/// iterations, salt or key length; lower bcrypt cost). Unparseable hashes need a rehash too.
/// Parallelism is not a strength parameter and is not compared.
pub fn needs_rehash(cfg: &HashersConfig, hash: &str) -> bool {
    match (cfg.algorithm, detect(hash)) {
        (HashAlgorithm::Argon2, Some(Format::Argon2)) => match parse_argon2(hash) {
            Ok(h) => {
                let c = &cfg.argon2;
                h.algorithm != Algorithm::Argon2id
                    || h.version != Version::V0x13
                    || h.params.m_cost() < c.memory
                    || h.params.t_cost() < c.iterations
                    || h.salt.len() < c.salt_length as usize
                    || h.expected.len() < c.key_length as usize
            }
            Err(_) => true,
        },
        (HashAlgorithm::Bcrypt, Some(Format::Bcrypt)) => {
            !matches!(parse_bcrypt(hash), Ok(cost) if cost >= cfg.bcrypt.cost)
        }
        _ => true,
    }
}

/// Check an imported hash: a recognised format with sane cost bounds (bcrypt cost 4..=31;
/// argon2 memory ≤ 4 GiB, iterations ≤ 1024, parallelism ≤ 255, salt 8..=48 bytes, hash
/// 10..=64 bytes). Does no hashing.
pub fn validate_import(hash: &str) -> Result<(), PasswordError> {
    match detect(hash) {
        None => Err(PasswordError::UnknownFormat),
        Some(Format::Argon2) => {
            let h = parse_argon2(hash)?;
            check_argon2_bounds(&h)
        }
        Some(Format::Bcrypt) => parse_bcrypt(hash).map(|_| ()),
    }
}

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

/// Identifiers or passwords longer than this (bytes) skip the similarity check.
const SIMILARITY_MAX_BYTES: usize = 256;
/// Levenshtein distance below this is "too similar".
const SIMILARITY_MIN_DISTANCE: usize = 5;

/// Cheap policy checks, no hashing, in this order: minimum length, maximum length (and the
/// bcrypt 72-byte limit when bcrypt is configured), similarity to each identifier, the
/// common/breached list. Lengths are counted in Unicode code points. Returns the first failure.
pub fn check_policy(
    policy: &PolicyConfig,
    hashers: &HashersConfig,
    password: &str,
    identifiers: &[String],
) -> Result<(), UiText> {
    check_length(policy, hashers, password)?;
    check_content(policy, password, identifiers)
}

/// The length checks of [`check_policy`]: minimum, maximum, bcrypt's 72 bytes.
pub fn check_length(policy: &PolicyConfig, hashers: &HashersConfig, password: &str) -> Result<(), UiText> {
    let len = password.chars().count();
    if len < policy.min_password_length {
        return Err(msg::password_too_short(policy.min_password_length, len));
    }
    if len > policy.max_password_length {
        return Err(msg::password_too_long(policy.max_password_length, len));
    }
    if hashers.algorithm == HashAlgorithm::Bcrypt && password.len() > BCRYPT_MAX_PASSWORD_BYTES {
        // bcrypt's limit is in bytes: report it in bytes.
        return Err(msg::password_too_long(BCRYPT_MAX_PASSWORD_BYTES, password.len()));
    }
    Ok(())
}

/// The content checks of [`check_policy`]: similarity to each identifier, then the
/// common/breached list.
pub fn check_content(policy: &PolicyConfig, password: &str, identifiers: &[String]) -> Result<(), UiText> {
    if policy.identifier_similarity_check_enabled && identifiers.iter().any(|id| too_similar(id, password)) {
        return Err(msg::password_similar());
    }
    if policy.haveibeenpwned_enabled && is_common_password(password) {
        return Err(msg::password_breached());
    }
    Ok(())
}

/// Kratos's rule: case-insensitive Levenshtein distance < 5, or a longest common substring
/// longer than half the password.
fn too_similar(identifier: &str, password: &str) -> bool {
    if identifier.is_empty() || identifier.len() > SIMILARITY_MAX_BYTES || password.len() > SIMILARITY_MAX_BYTES {
        return false;
    }
    let id: Vec<char> = identifier.to_lowercase().chars().collect();
    let pw: Vec<char> = password.to_lowercase().chars().collect();
    levenshtein(&id, &pw) < SIMILARITY_MIN_DISTANCE || longest_common_substring(&id, &pw) * 2 > pw.len()
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn longest_common_substring(a: &[char], b: &[char]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    let mut best = 0;
    for ca in a {
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = if ca == cb { prev[j] + 1 } else { 0 };
            best = best.max(cur[j + 1]);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    best
}

/// The bundled list: sorted big-endian u64 prefixes of SHA-256(lowercased password).
static COMMON_PASSWORDS: &[u8] = include_bytes!("../data/common-passwords.bin");

/// Number of entries in the bundled common-password list.
pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len() / 8
}

fn common_entry(i: usize) -> Option<u64> {
    let bytes = COMMON_PASSWORDS.get(i * 8..i * 8 + 8)?;
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    Some(u64::from_be_bytes(b))
}

/// Whether the password (case-insensitively) is on the bundled offline list of common and
/// breached passwords. No network.
pub fn is_common_password(password: &str) -> bool {
    let digest = Sha256::digest(password.to_lowercase().as_bytes());
    let mut b = [0u8; 8];
    for (o, d) in b.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    let key = u64::from_be_bytes(b);
    let (mut lo, mut hi) = (0usize, common_password_count());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match common_entry(mid) {
            Some(v) if v == key => return true,
            Some(v) if v < key => lo = mid + 1,
            Some(_) => hi = mid,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    #[test]
    fn argon2_with_kept_memory_matches_the_reference() {
        let params = Params::new(1024, 2, 1, Some(32)).unwrap();
        let salt = [7u8; 16];
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_with_salt(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert_eq!(argon2id_phc(params.clone(), "correct horse", &salt).unwrap(), reference);
        keep_argon2_memory();
        // The kept memory holds another password's state: the result must not depend on it.
        argon2id_phc(params.clone(), "battery staple", &[9u8; 16]).unwrap();
        assert_eq!(argon2id_phc(params.clone(), "correct horse", &salt).unwrap(), reference);
        assert!(verify("correct horse", &reference).unwrap());
        assert!(!verify("correct horsE", &reference).unwrap());
    }

    fn tiny() -> HashersConfig {
        HashersConfig {
            algorithm: HashAlgorithm::Argon2,
            argon2: Argon2Config { memory: 64, iterations: 1, parallelism: 1, salt_length: 16, key_length: 32 },
            bcrypt: BcryptConfig { cost: 4 },
            max_queue: 256,
        }
    }

    #[test]
    fn a_change_is_one_derivation_with_the_current_salt() {
        let cfg = tiny();
        let current = hash(&cfg, "Juniper-Comet-Basalt-90").unwrap();
        assert_eq!(hash_if_changed(&cfg, "Juniper-Comet-Basalt-90", &current).unwrap(), NewPassword::Same);
        let NewPassword::Changed(new) = hash_if_changed(&cfg, "Juniper-Comet-Basalt-91", &current).unwrap() else {
            panic!("a different password must give a new hash");
        };
        assert!(verify("Juniper-Comet-Basalt-91", &new).unwrap());
        assert!(!verify("Juniper-Comet-Basalt-90", &new).unwrap());
        assert!(!needs_rehash(&cfg, &new));
        assert_eq!(parse_argon2(&new).unwrap().salt, parse_argon2(&current).unwrap().salt);
        // Another identity with the same password gets another salt, so another hash.
        assert_ne!(hash(&cfg, "Juniper-Comet-Basalt-91").unwrap(), new);
    }

    #[test]
    fn a_change_from_other_parameters_or_algorithms_needs_two_derivations() {
        let cfg = tiny();
        let stronger = HashersConfig { argon2: Argon2Config { iterations: 2, ..cfg.argon2.clone() }, ..cfg.clone() };
        let older = hash(&stronger, "Juniper-Comet-Basalt-90").unwrap();
        assert_eq!(hash_if_changed(&cfg, "Juniper-Comet-Basalt-91", &older).unwrap(), NewPassword::NeedsTwo);
        let bcrypt = hash(&tiny_bcrypt(), "Juniper-Comet-Basalt-90").unwrap();
        assert_eq!(hash_if_changed(&cfg, "Juniper-Comet-Basalt-91", &bcrypt).unwrap(), NewPassword::NeedsTwo);
        assert_eq!(hash_if_changed(&cfg, "x", "$argon2id$garbage").unwrap(), NewPassword::NeedsTwo);
        let current = hash(&cfg, "Juniper-Comet-Basalt-90").unwrap();
        assert_eq!(
            hash_if_changed(&tiny_bcrypt(), "Juniper-Comet-Basalt-91", &current).unwrap(),
            NewPassword::NeedsTwo
        );
    }

    fn tiny_bcrypt() -> HashersConfig {
        HashersConfig { algorithm: HashAlgorithm::Bcrypt, ..tiny() }
    }

    fn policy() -> PolicyConfig {
        PolicyConfig::default()
    }

    #[test]
    fn defaults_and_serde() {
        let c = HashersConfig::default();
        assert_eq!(c.algorithm, HashAlgorithm::Argon2);
        assert_eq!(
            c.argon2,
            Argon2Config { memory: 19456, iterations: 2, parallelism: 1, salt_length: 16, key_length: 32 }
        );
        assert_eq!(c.bcrypt.cost, 12);
        assert!(c.validate().is_ok());
        let p = PolicyConfig::default();
        assert_eq!((p.min_password_length, p.max_password_length), (8, 256));
        assert!(p.identifier_similarity_check_enabled && p.haveibeenpwned_enabled);

        let c: HashersConfig = serde_json::from_str(r#"{"algorithm":"bcrypt","bcrypt":{"cost":10}}"#).unwrap();
        assert_eq!(c.algorithm, HashAlgorithm::Bcrypt);
        assert_eq!(c.bcrypt.cost, 10);
        assert_eq!(c.argon2.memory, 19456);
        assert!(serde_json::from_str::<HashersConfig>(r#"{"argon2":{"memry":1}}"#).is_err());
        assert!(serde_json::from_str::<PolicyConfig>(r#"{"nope":1}"#).is_err());

        let mut bad = HashersConfig::default();
        bad.bcrypt.cost = 3;
        assert!(bad.validate().unwrap_err().contains("hashers.bcrypt.cost"));
        let mut bad = HashersConfig::default();
        bad.argon2.salt_length = 4;
        assert!(bad.validate().unwrap_err().contains("hashers.argon2.salt_length"));
    }

    #[test]
    fn argon2id_roundtrip() {
        let cfg = tiny();
        let before = hash_calls();
        let h = hash(&cfg, "correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        let parsed = parse_argon2(&h).unwrap();
        assert_eq!(parsed.salt.len(), 16);
        assert_eq!(parsed.expected.len(), 32);
        assert!(verify("correct horse battery staple", &h).unwrap());
        assert!(!verify("correct horse battery stapl", &h).unwrap());
        assert!(!verify("", &h).unwrap());
        assert!(hash_calls() >= before + 4);
        // Salted: two hashes of the same password differ.
        assert_ne!(h, hash(&cfg, "correct horse battery staple").unwrap());
        assert!(validate_import(&h).is_ok());

        // Salt and key length follow the configuration.
        let mut c2 = tiny();
        c2.argon2.salt_length = 24;
        c2.argon2.key_length = 48;
        let h2 = hash(&c2, "pw").unwrap();
        let p2 = parse_argon2(&h2).unwrap();
        assert_eq!((p2.salt.len(), p2.expected.len()), (24, 48));
        assert!(verify("pw", &h2).unwrap());
    }

    #[test]
    fn argon2_variants_verify() {
        // argon2i / argon2d hashes produced by the argon2 crate.
        for alg in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(64, 1, 1, None).unwrap();
            let h = Argon2::new(alg, Version::V0x13, params)
                .hash_password_with_salt(b"secret-pw", b"saltsaltsalt")
                .unwrap()
                .to_string();
            assert!(verify("secret-pw", &h).unwrap(), "{h}");
            assert!(!verify("secret-pX", &h).unwrap());
            assert!(needs_rehash(&tiny(), &h));
        }
        // Reference vector (argon2 CLI / PHC test vector): password "password", salt "somesalt".
        let h = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(verify("password", h).unwrap());
        assert!(!verify("Password", h).unwrap());
        let h = "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc";
        assert!(verify("password", h).unwrap());
        // No `v=`: version 0x10, as in the reference implementation.
        let h = "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";
        assert!(verify("password", h).unwrap());
        let h = "$argon2i$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";
        assert!(verify("password", h).unwrap());
    }

    #[test]
    fn bcrypt_import_and_hash() {
        let imported = bcrypt::hash("hunter2hunter2", 4).unwrap();
        assert!(imported.starts_with("$2b$04$"));
        assert!(validate_import(&imported).is_ok());
        assert!(verify("hunter2hunter2", &imported).unwrap());
        assert!(!verify("hunter2hunter3", &imported).unwrap());
        // $2a$ and $2y$ prefixes of the same hash verify too.
        for p in ["$2a$", "$2y$"] {
            let alt = format!("{p}{}", &imported[4..]);
            assert!(verify("hunter2hunter2", &alt).unwrap());
        }
        let h = hash(&tiny_bcrypt(), "hello world!").unwrap();
        assert!(h.starts_with("$2b$04$"));
        assert!(verify("hello world!", &h).unwrap());
        assert!(matches!(hash(&tiny_bcrypt(), &"x".repeat(73)), Err(PasswordError::TooLongForBcrypt)));
    }

    #[test]
    fn unknown_and_malformed() {
        for h in [
            "",
            "plain",
            "$1$abc$def",
            "$pbkdf2-sha256$i=1$abc$def",
            "$2x$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
            "$scrypt$ln=1",
        ] {
            assert!(matches!(verify("pw", h), Err(PasswordError::UnknownFormat)), "{h}");
            assert!(matches!(validate_import(h), Err(PasswordError::UnknownFormat)), "{h}");
        }
        assert!(matches!(verify("pw", "$argon2id$v=19$m=64,t=1,p=1$bad"), Err(PasswordError::Malformed(_))));
        assert!(matches!(verify("pw", "$2b$04$short"), Err(PasswordError::Malformed(_))));
        // Errors don't echo the hash.
        let e = verify("pw", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ").unwrap_err().to_string();
        assert!(!e.contains("c29tZXNhbHQ"), "{e}");
    }

    #[test]
    fn validate_import_bounds() {
        let ok = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(validate_import(ok).is_ok());
        let huge_m = ok.replace("m=65536", "m=4194305");
        assert!(matches!(validate_import(&huge_m), Err(PasswordError::UnsafeParams(_))));
        assert!(matches!(verify("password", &huge_m), Err(PasswordError::UnsafeParams(_))));
        let huge_p = ok.replace("p=1", "p=300");
        assert!(matches!(validate_import(&huge_p), Err(PasswordError::UnsafeParams(_))));
        let no_m = ok.replace("m=65536,", "");
        assert!(matches!(validate_import(&no_m), Err(PasswordError::Malformed(_))));

        let b = bcrypt::hash("pw", 4).unwrap();
        let cost3 = b.replacen("$04$", "$03$", 1);
        assert!(matches!(validate_import(&cost3), Err(PasswordError::UnsafeParams(_))));
        let cost32 = b.replacen("$04$", "$32$", 1);
        assert!(matches!(validate_import(&cost32), Err(PasswordError::UnsafeParams(_))));
        let cost31 = b.replacen("$04$", "$31$", 1);
        assert!(validate_import(&cost31).is_ok());
        let bad_chars = format!("{}!{}", &b[..10], &b[11..]);
        assert!(matches!(validate_import(&bad_chars), Err(PasswordError::Malformed(_))));
    }

    #[test]
    fn rehash_rules() {
        let cfg = tiny();
        let h = hash(&cfg, "pw-rehash").unwrap();
        assert!(!needs_rehash(&cfg, &h));
        // Stronger configuration → rehash.
        let mut stronger = tiny();
        stronger.argon2.memory = 128;
        assert!(needs_rehash(&stronger, &h));
        let mut stronger = tiny();
        stronger.argon2.iterations = 2;
        assert!(needs_rehash(&stronger, &h));
        let mut longer_key = tiny();
        longer_key.argon2.key_length = 64;
        assert!(needs_rehash(&longer_key, &h));
        // Weaker configuration → keep.
        let mut weaker = tiny();
        weaker.argon2.memory = 32;
        assert!(!needs_rehash(&weaker, &h));
        // Other algorithm → rehash.
        assert!(needs_rehash(&tiny_bcrypt(), &h));
        let b = bcrypt::hash("pw", 4).unwrap();
        assert!(needs_rehash(&cfg, &b));
        assert!(!needs_rehash(&tiny_bcrypt(), &b));
        let mut cost5 = tiny_bcrypt();
        cost5.bcrypt.cost = 5;
        assert!(needs_rehash(&cost5, &b));
        assert!(needs_rehash(&cfg, "garbage"));
        // argon2 version 0x10 → rehash.
        let v10 = Argon2::new(Algorithm::Argon2id, Version::V0x10, Params::new(64, 1, 1, None).unwrap())
            .hash_password_with_salt(b"pw", b"saltsaltsalt")
            .unwrap()
            .to_string();
        assert!(verify("pw", &v10).unwrap());
        assert!(needs_rehash(&cfg, &v10));
    }

    #[test]
    fn dummy_verify_costs_a_verify() {
        let cfg = tiny();
        verify_dummy(&cfg, "whatever");
        let before = hash_calls();
        verify_dummy(&cfg, "whatever");
        assert!(hash_calls() > before);
        let h = dummy_hash(&cfg).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(dummy_hash(&cfg).unwrap(), h, "computed once per params");
        let b = dummy_hash(&tiny_bcrypt()).unwrap();
        assert!(b.starts_with("$2b$04$"));
        verify_dummy(&tiny_bcrypt(), "whatever");
    }

    #[test]
    fn policy_lengths_in_code_points() {
        let (p, h) = (policy(), tiny());
        let seven = "🦀🦀🦀🦀🦀🦀🦀";
        let e = check_policy(&p, &h, seven, &[]).unwrap_err();
        assert_eq!(e.id, 4000032);
        assert_eq!(e.context.as_ref().unwrap()["actual_length"], 7);
        let eight = "🦀🦀🦀🦀🦀🦀🦀🦀";
        assert_eq!(check_policy(&p, &h, eight, &[]), Ok(()));

        let long = "ab".repeat(129);
        let e = check_policy(&p, &h, &long, &[]).unwrap_err();
        assert_eq!(e.id, 4000033);
        assert_eq!(e.context.as_ref().unwrap()["max_length"], 256);
        // 200 code points fits argon2 but not bcrypt's 72 bytes.
        let mid = "qz".repeat(40);
        assert_eq!(check_policy(&p, &h, &mid, &[]), Ok(()));
        let e = check_policy(&p, &tiny_bcrypt(), &mid, &[]).unwrap_err();
        assert_eq!(e.id, 4000033);
        // 30 crabs = 30 code points but 120 bytes.
        let e = check_policy(&p, &tiny_bcrypt(), &"🦀".repeat(30), &[]).unwrap_err();
        assert_eq!(e.id, 4000033);
    }

    #[test]
    fn policy_similarity() {
        let (p, h) = (policy(), tiny());
        let ids = vec!["alice@example.org".to_string()];
        for pw in ["alice@example.org", "ALICE@example.org1", "Alice@Example.com", "alice@exampl", "xxalice@example"] {
            let e = check_policy(&p, &h, pw, &ids).unwrap_err();
            assert_eq!(e.id, 4000031, "{pw}");
        }
        assert_eq!(check_policy(&p, &h, "tqbfjotld-9871", &ids), Ok(()));
        // Disabled → accepted.
        let off = PolicyConfig { identifier_similarity_check_enabled: false, ..policy() };
        assert_eq!(check_policy(&off, &h, "alice@example.org", &ids), Ok(()));
        // Empty and overlong identifiers are skipped.
        let long_id = vec!["a".repeat(300), String::new()];
        assert_eq!(check_policy(&p, &h, "tqbfjotld-9871", &long_id), Ok(()));
    }

    #[test]
    fn policy_order() {
        let (p, h) = (policy(), tiny());
        let ids = vec!["password".to_string()];
        // Too short wins over similar and common.
        assert_eq!(check_policy(&p, &h, "pass", &ids).unwrap_err().id, 4000032);
        // Too long wins over similar.
        let tight = PolicyConfig { max_password_length: 8, ..policy() };
        assert_eq!(check_policy(&tight, &h, "password1", &["password1".into()]).unwrap_err().id, 4000033);
        // Similar wins over common.
        assert_eq!(check_policy(&p, &h, "password", &ids).unwrap_err().id, 4000031);
        // Common alone.
        let e = check_policy(&p, &h, "password", &[]).unwrap_err();
        assert_eq!(e, msg::password_breached());
        assert_eq!(e.id, 4000034);
        // Breach check disabled.
        let off = PolicyConfig { haveibeenpwned_enabled: false, ..policy() };
        assert_eq!(check_policy(&off, &h, "password", &[]), Ok(()));
        // No hashing happens in the policy (other tests may hash concurrently, so this only
        // checks the policy returns without touching the hasher for a big input).
        let _ = check_policy(&p, &h, &"x".repeat(100_000), &[]);
    }

    #[test]
    fn common_passwords() {
        for pw in ["password", "123456789", "qwertyuiop", "PassWord", "QWERTYUIOP", "iloveyou", "12345678", "letmein1"]
        {
            assert!(is_common_password(pw), "{pw}");
            assert_eq!(
                check_policy(&policy(), &tiny(), pw, &[]).map_err(|e| e.id),
                if pw.chars().count() >= 8 { Err(4000034) } else { Err(4000032) }
            );
        }
        let phrase = "thequickbrownfoxjumpsoverthelazydogwhilezebrasquietlywaltzedaway";
        assert_eq!(phrase.len(), 64);
        assert!(phrase.chars().all(|c| c.is_ascii_lowercase()));
        assert!(!is_common_password(phrase));
        assert_eq!(check_policy(&policy(), &tiny(), phrase, &["someone@example.org".into()]), Ok(()));
        assert!(!is_common_password("zq8-Vt3!mk2#Lp"));
    }

    #[test]
    fn common_list_file_shape() {
        assert_eq!(COMMON_PASSWORDS.len() % 8, 0);
        let n = common_password_count();
        assert!(n >= 100_000, "{n}");
        assert!(COMMON_PASSWORDS.len() <= 2_600_000);
        let mut prev = None;
        for i in 0..n {
            let v = common_entry(i).unwrap();
            if let Some(p) = prev {
                assert!(v > p, "not strictly sorted at {i}");
            }
            prev = Some(v);
        }
    }

    #[test]
    fn levenshtein_and_lcs() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&c("kitten"), &c("sitting")), 3);
        assert_eq!(levenshtein(&c(""), &c("abc")), 3);
        assert_eq!(levenshtein(&c("abc"), &c("")), 3);
        assert_eq!(longest_common_substring(&c("xxabcdyy"), &c("zabcdz")), 4);
        assert_eq!(longest_common_substring(&c(""), &c("abc")), 0);
    }
}
