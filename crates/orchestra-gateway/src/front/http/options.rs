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
    /// Serve a non-loopback address with no authentication (explicit opt-in).
    pub allow_remote_unauthenticated: bool,
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
    #[error(
        "http.auth is configured, but this build's HTTP front does not check tokens yet; \
         refusing to serve rather than serve unauthenticated"
    )]
    AuthUnsupported,
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
            allow_remote_unauthenticated: http.allow_remote_unauthenticated,
        }
    }

    /// Refuses what is unsafe: a non-loopback address with no authentication unless allowed.
    pub fn check(&self, auth: &orchestra_config::HttpAuth) -> Result<(), OptionsError> {
        if !auth.is_empty() {
            return Err(OptionsError::AuthUnsupported);
        }
        if !self.listen.ip().is_loopback() && !self.allow_remote_unauthenticated {
            return Err(OptionsError::RemoteUnauthenticated(self.listen));
        }
        Ok(())
    }
}
