//! What the HTTP front is told: the seam the configuration's `http:` section and the CLI's
//! `--listen` fill ([`HttpOptions::from_config`]).

use std::net::SocketAddr;
use std::time::Duration;

/// How the Streamable HTTP front serves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub listen: SocketAddr,
    /// Origins accepted besides the listen address's own and localhost's, normalised
    /// `scheme://host[:port]` (lowercase).
    pub allowed_origins: Vec<String>,
    /// `Host` values accepted besides the listen address's own and localhost's, lowercase.
    pub allowed_hosts: Vec<String>,
    /// Concurrent sessions; an `initialize` beyond it gets 503.
    pub max_sessions: usize,
    /// A session with no request and no open stream this long is ended.
    pub idle_timeout: Duration,
    /// Largest request body (413 beyond it).
    pub max_body: usize,
    /// Headers must arrive within this (slowloris).
    pub header_timeout: Duration,
    /// A body must arrive within this.
    pub body_timeout: Duration,
    /// Serve a non-loopback address with no authentication (explicit opt-in).
    pub allow_remote_unauthenticated: bool,
    /// Who may call (`http.auth`): bearer tokens, JWTs.
    pub auth: orchestra_config::HttpAuth,
}

/// Why the front refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(
        "refusing to serve HTTP on {0} without authentication: it is not a loopback address, \
         so anyone who can reach it could use every configured server. Listen on 127.0.0.1 \
         (the default), or pass --allow-remote-unauthenticated if the network is trusted"
    )]
    RemoteUnauthenticated(SocketAddr),
}

impl HttpOptions {
    /// Defaults for `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self::from_config(&orchestra_config::Http::default(), listen)
    }

    /// The configuration's `http:` section, listening on `listen` (the CLI's `--listen`
    /// overrides `http.listen`).
    pub fn from_config(http: &orchestra_config::Http, listen: SocketAddr) -> Self {
        Self {
            listen,
            allowed_origins: http.allowed_origins.clone(),
            allowed_hosts: http.allowed_hosts.clone(),
            max_sessions: http.max_sessions as usize,
            idle_timeout: http.idle_timeout,
            max_body: http.max_body,
            header_timeout: http.header_timeout,
            body_timeout: http.body_timeout,
            allow_remote_unauthenticated: http.allow_remote_unauthenticated,
            auth: http.auth.clone(),
        }
    }

    /// Refuses what is unsafe: a non-loopback address with no authentication unless allowed
    /// (an authenticated one is served: that is what authentication is for).
    pub fn check(&self) -> Result<(), OptionsError> {
        if !self.listen.ip().is_loopback()
            && self.auth.is_empty()
            && !self.allow_remote_unauthenticated
        {
            return Err(OptionsError::RemoteUnauthenticated(self.listen));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_config::{BearerToken, Secret, TokenSource};

    #[test]
    fn non_loopback_needs_authentication_or_an_explicit_opt_in() {
        let mut o = HttpOptions::new("0.0.0.0:8080".parse().unwrap());
        assert!(matches!(
            o.check(),
            Err(OptionsError::RemoteUnauthenticated(_))
        ));
        o.auth.bearer_tokens.push(BearerToken {
            source: TokenSource::Env("T".into()),
            token: Secret::new("t".into()),
        });
        assert!(o.check().is_ok());
        let mut o = HttpOptions::new("0.0.0.0:8080".parse().unwrap());
        o.allow_remote_unauthenticated = true;
        assert!(o.check().is_ok());
        assert!(HttpOptions::new("127.0.0.1:0".parse().unwrap())
            .check()
            .is_ok());
    }
}
