//! The JWT signing keys (`http.auth.jwt.jwks_url` or `jwks_file`): loaded once, cached, and
//! loaded again when a token names a key id the cache does not have (keys rotate) — at most
//! once per [`REFETCH_EVERY`], so a stream of tokens with made-up `kid`s cannot turn the
//! gateway into a load generator against the key server.
//!
//! Keys the library cannot use (unknown `kty`, symmetric `oct` keys: a key set is public, so
//! an HMAC key from it would let anyone sign) are skipped with a note in the log.

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use orchestra_config::JwksSource;

/// Fewest seconds between two loads of the key set.
pub const REFETCH_EVERY: Duration = Duration::from_secs(10);
/// A key set larger than this is refused (a real one is a few KiB).
const MAX_JWKS: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no key is given for a token.
#[derive(Debug)]
pub enum KeyError {
    /// The key set was never loaded (the reason is logged).
    Unavailable(String),
    /// The token's `kid` is not in the key set, even after loading it again.
    UnknownKid,
    /// No key fits the token's algorithm.
    NoKey,
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: Vec<Key>,
    loaded: bool,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

pub struct Keys {
    source: JwksSource,
    cache: Mutex<Cache>,
    /// One load at a time; others wait for it and then look again.
    loading: tokio::sync::Mutex<()>,
    refetch_every: Duration,
}

impl Keys {
    pub fn new(source: JwksSource) -> Self {
        Self {
            source,
            cache: Mutex::default(),
            loading: tokio::sync::Mutex::new(()),
            refetch_every: REFETCH_EVERY,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn warm_up(&self) {
        let _ = self.reload_if_due().await;
    }

    /// The keys that may have signed a token with this `kid` and `alg`.
    pub async fn for_token(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<DecodingKey>, KeyError> {
        if let Some(found) = self.lookup(kid, alg) {
            return Ok(found);
        }
        self.reload_if_due().await;
        if let Some(found) = self.lookup(kid, alg) {
            return Ok(found);
        }
        let cache = self.cache();
        if !cache.loaded {
            return Err(KeyError::Unavailable(
                cache.last_error.clone().unwrap_or_default(),
            ));
        }
        match kid {
            Some(kid) if !cache.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) => {
                Err(KeyError::UnknownKid)
            }
            _ => Err(KeyError::NoKey),
        }
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Option<Vec<DecodingKey>> {
        let found: Vec<DecodingKey> = self
            .cache()
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.alg.is_none_or(|a| a == alg))
            .map(|k| k.key.clone())
            .collect();
        (!found.is_empty()).then_some(found)
    }

    /// Loads the key set unless the last attempt was too recent.
    async fn reload_if_due(&self) {
        let _one = self.loading.lock().await;
        let due = self
            .cache()
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.refetch_every);
        if !due {
            return;
        }
        self.cache().last_attempt = Some(Instant::now());
        match self.load().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), source = %self.describe(), "loaded the JWT signing keys");
                let mut c = self.cache();
                c.keys = keys;
                c.loaded = true;
                c.last_error = None;
            }
            Err(why) => {
                // Kept: a key server that blips does not log everyone out.
                tracing::warn!(source = %self.describe(), error = %why, "cannot load the JWT signing keys; tokens cannot be checked until they load");
                self.cache().last_error = Some(why);
            }
        }
    }

    fn describe(&self) -> String {
        match &self.source {
            JwksSource::Url(u) => u.clone(),
            JwksSource::File(p) => p.display().to_string(),
        }
    }

    async fn load(&self) -> Result<Vec<Key>, String> {
        let text = match &self.source {
            JwksSource::File(p) => tokio::fs::read(p)
                .await
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
            JwksSource::Url(u) => fetch(u).await?,
        };
        parse(&text)
    }
}

/// GETs a key set over HTTP(S).
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    static PROVIDER: Once = Once::new();
    // reqwest is built without a TLS provider of its own: the process-wide one is ring.
    // Another part of the gateway may have installed it first, which is fine.
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    if response
        .content_length()
        .is_some_and(|l| l > MAX_JWKS as u64)
    {
        return Err(format!("GET {url}: the key set is over {MAX_JWKS} bytes"));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if body.len() > MAX_JWKS {
        return Err(format!("GET {url}: the key set is over {MAX_JWKS} bytes"));
    }
    Ok(body.to_vec())
}

/// The usable keys of a JWKS document.
fn parse(text: &[u8]) -> Result<Vec<Key>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set =
        serde_json::from_slice(text).map_err(|e| format!("not a JWKS (a \"keys\" list): {e}"))?;
    let mut keys = Vec::new();
    for (i, raw) in set.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(raw) {
            Ok(j) => j,
            Err(e) => {
                tracing::info!(index = i, error = %e, "JWKS: skipped a key this gateway cannot use");
                continue;
            }
        };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            tracing::warn!(
                index = i,
                "JWKS: skipped a symmetric (oct) key; a public key set cannot hold secrets"
            );
            continue;
        }
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            }),
            Err(e) => {
                tracing::info!(index = i, error = %e, "JWKS: skipped a key that does not load")
            }
        }
    }
    if keys.is_empty() {
        return Err("the key set has no usable key".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_KEY: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"one","alg":"EdDSA",
        "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    #[test]
    fn usable_keys_are_kept_symmetric_ones_skipped() {
        let text = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"},
            {"kty":"OKP","crv":"Ed25519","kid":"one","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"weird"}]}"#;
        let keys = parse(text.as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("one"));
        assert!(parse(br#"{"keys":[]}"#).is_err());
        assert!(parse(b"[]").is_err());
    }

    /// An unknown `kid` loads the set again, but not more often than allowed.
    #[tokio::test]
    async fn unknown_kid_reloads_rate_limited() {
        let dir = std::env::temp_dir().join(format!("jwks-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("jwks.json");
        std::fs::write(&file, ED_KEY).unwrap();
        let mut keys = Keys::new(JwksSource::File(file.clone()));
        keys.refetch_every = Duration::from_secs(3600);
        assert!(keys.for_token(Some("one"), Algorithm::EdDSA).await.is_ok());
        std::fs::write(&file, ED_KEY.replace("\"one\"", "\"two\"")).unwrap();
        // Too soon after the first load: not reloaded.
        assert!(matches!(
            keys.for_token(Some("two"), Algorithm::EdDSA).await,
            Err(KeyError::UnknownKid)
        ));
        keys.refetch_every = Duration::ZERO;
        assert!(keys.for_token(Some("two"), Algorithm::EdDSA).await.is_ok());
        assert!(matches!(
            keys.for_token(Some("two"), Algorithm::ES256).await,
            Err(KeyError::NoKey)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn never_loaded_is_unavailable() {
        let keys = Keys::new(JwksSource::File("/nonexistent/jwks.json".into()));
        assert!(matches!(
            keys.for_token(None, Algorithm::RS256).await,
            Err(KeyError::Unavailable(why)) if why.contains("cannot read")
        ));
    }
}
