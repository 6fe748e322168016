//! Who is calling: `Authorization: Bearer <token>`, checked against the configured bearer
//! tokens (`http.auth.bearer_tokens`) and, when `http.auth.jwt` is set, as a JWT signed by a
//! key of the configured JWKS ([`super::jwks`]). Either passes.
//!
//! The caller's [`Identity`] is a fingerprint (a SHA-256, never the token): sessions are bound
//! to the identity that opened them (`table.rs`), so another client's token cannot use them.
//! The token itself stays here: nothing in the gateway forwards the client's `Authorization`
//! (children get only what their own configuration gives them).

use std::time::Duration;

use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, Validation};
use ring::digest;

use super::jwks::{KeyError, Keys};

/// The caller as far as sessions are concerned: `None` when no authentication is configured
/// (every caller is the same), else a fingerprint of the token or of the JWT's `iss` + `sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity(Option<[u8; 32]>);

impl Identity {
    /// Anyone, when the front does not authenticate.
    pub const ANYONE: Identity = Identity(None);
}

/// Why a request is not let in. Never holds the presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token was given but is not accepted (the reason is safe to show).
    Invalid(String),
    /// A JWT past its `exp` (with the leeway).
    Expired,
    /// The signing keys cannot be had right now (JWKS unreachable): the token may be fine.
    Unavailable(String),
}

impl Denied {
    /// The body's message.
    pub fn message(&self) -> String {
        match self {
            Denied::Missing => {
                "authentication required: send Authorization: Bearer <token>".to_owned()
            }
            Denied::Invalid(why) => format!("invalid token: {why}"),
            Denied::Expired => "invalid token: expired".to_owned(),
            Denied::Unavailable(_) => {
                "cannot check tokens right now (the signing keys are unavailable); try again later"
                    .to_owned()
            }
        }
    }
}

/// The JWT rules of `http.auth.jwt`.
struct JwtRules {
    keys: Keys,
    issuer: String,
    audience: Vec<String>,
    leeway: Duration,
}

/// The authentication the front enforces.
pub struct Auth {
    /// SHA-256 of each accepted bearer token: compared digest to digest, so the comparison
    /// neither depends on where a wrong token first differs nor keeps the tokens themselves.
    tokens: Vec<[u8; 32]>,
    jwt: Option<JwtRules>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Equality that looks at every byte (no early exit on the first difference).
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Asymmetric algorithms only: a JWKS is public, so an HMAC "key" from it would let anyone
/// sign, and `none` is never accepted.
fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
}

impl Auth {
    pub fn new(cfg: &orchestra_config::HttpAuth) -> Self {
        Self {
            tokens: cfg
                .bearer_tokens
                .iter()
                .map(|t| sha256(&[t.token.expose().as_bytes()]))
                .collect(),
            jwt: cfg.jwt.as_ref().map(|j| JwtRules {
                keys: Keys::new(j.jwks.clone()),
                issuer: j.issuer.clone(),
                audience: j.audience.clone(),
                leeway: j.leeway,
            }),
        }
    }

    /// Whether requests must authenticate.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// The issuer, for the protected-resource metadata.
    pub fn issuer(&self) -> Option<&str> {
        self.jwt.as_ref().map(|j| j.issuer.as_str())
    }

    /// Loads the signing keys ahead of the first request (a failure is logged, and retried
    /// when a token comes).
    pub async fn warm_up(&self) {
        if let Some(j) = &self.jwt {
            j.keys.warm_up().await;
        }
    }

    /// Who the request is from, or why it is refused.
    pub async fn check(&self, headers: &HeaderMap) -> Result<Identity, Denied> {
        if !self.enabled() {
            return Ok(Identity::ANYONE);
        }
        let token = bearer(headers).ok_or(Denied::Missing)?;
        let digest = sha256(&[token.as_bytes()]);
        // Every configured token is compared, whichever matches.
        let matched = self
            .tokens
            .iter()
            .fold(false, |hit, t| same(t, &digest) | hit);
        if matched {
            return Ok(Identity(Some(sha256(&[b"bearer\0", &digest]))));
        }
        match &self.jwt {
            Some(rules) if token.split('.').count() == 3 => rules.verify(token).await,
            _ => Err(Denied::Invalid("not an accepted token".into())),
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl JwtRules {
    async fn verify(&self, token: &str) -> Result<Identity, Denied> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Denied::Invalid("malformed JWT header".into()))?;
        if !asymmetric(header.alg) {
            return Err(Denied::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let keys = match self.keys.for_token(header.kid.as_deref(), header.alg).await {
            Ok(keys) => keys,
            Err(KeyError::Unavailable(why)) => return Err(Denied::Unavailable(why)),
            Err(KeyError::UnknownKid) => {
                return Err(Denied::Invalid("signed by an unknown key (kid)".into()))
            }
            Err(KeyError::NoKey) => {
                return Err(Denied::Invalid(
                    "no key of the key set fits its algorithm".into(),
                ))
            }
        };
        let mut rules = Validation::new(header.alg);
        rules.set_issuer(&[&self.issuer]);
        rules.set_audience(&self.audience);
        rules.set_required_spec_claims(&["exp", "iss", "aud"]);
        rules.leeway = self.leeway.as_secs();
        rules.validate_nbf = true;
        let mut last = Denied::Invalid("bad signature".into());
        for key in keys {
            match jsonwebtoken::decode::<Claims>(token, &key, &rules) {
                Ok(data) => {
                    let c = data.claims;
                    // Bound to who it names; a token without `sub` only to itself.
                    let who = match &c.sub {
                        Some(sub) => sha256(&[b"jwt\0", c.iss.as_bytes(), b"\0", sub.as_bytes()]),
                        None => sha256(&[b"jwt-token\0", token.as_bytes()]),
                    };
                    return Ok(Identity(Some(who)));
                }
                Err(e) => last = denial(e.kind()),
            }
        }
        Err(last)
    }
}

fn denial(kind: &jsonwebtoken::errors::ErrorKind) -> Denied {
    use jsonwebtoken::errors::ErrorKind as K;
    Denied::Invalid(
        match kind {
            K::ExpiredSignature => return Denied::Expired,
            K::InvalidSignature => "bad signature",
            K::InvalidIssuer => "wrong issuer",
            K::InvalidAudience => "wrong audience",
            K::ImmatureSignature => "not valid yet (nbf)",
            K::MissingRequiredClaim(_) => "a required claim (exp, iss, aud) is missing",
            K::InvalidAlgorithm => "algorithm does not match the key",
            _ => "malformed JWT",
        }
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use orchestra_config::{BearerToken, HttpAuth, Secret, TokenSource};

    fn auth(tokens: &[&str]) -> Auth {
        Auth::new(&HttpAuth {
            bearer_tokens: tokens
                .iter()
                .map(|t| BearerToken {
                    source: TokenSource::Env("T".into()),
                    token: Secret::new((*t).to_owned()),
                })
                .collect(),
            jwt: None,
        })
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[tokio::test]
    async fn tokens_pass_others_fail_and_identities_differ() {
        let a = auth(&["alpha-token", "beta-token"]);
        let one = a.check(&with("Bearer alpha-token")).await.unwrap();
        let two = a.check(&with("bearer beta-token")).await.unwrap();
        assert_ne!(one, two);
        assert_ne!(one, Identity::ANYONE);
        assert_eq!(a.check(&HeaderMap::new()).await, Err(Denied::Missing));
        assert_eq!(
            a.check(&with("Basic alpha-token")).await,
            Err(Denied::Missing)
        );
        assert!(matches!(
            a.check(&with("Bearer alpha-tokeN")).await,
            Err(Denied::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn no_auth_configured_lets_anyone_in() {
        let a = auth(&[]);
        assert_eq!(a.check(&HeaderMap::new()).await, Ok(Identity::ANYONE));
    }

    #[test]
    fn messages_never_hold_the_token() {
        let d = Denied::Invalid("not an accepted token".into());
        assert!(!d.message().contains("alpha"));
    }
}
