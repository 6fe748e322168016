//! DNS-rebinding protection: a request's `Host` must name the listen address (or localhost,
//! or a configured host), and a browser's `Origin`, when sent, must be one of those with an
//! `http`/`https` scheme (or a configured origin). Anything else is 403.

use axum::http::{header, HeaderMap};

use super::HttpOptions;

/// The `Host` and `Origin` values accepted, lowercase.
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl Guard {
    pub fn new(opts: &HttpOptions) -> Self {
        let port = opts.listen.port();
        let ip = opts.listen.ip();
        let own = if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let mut names = vec![own];
        for local in ["localhost", "127.0.0.1", "[::1]"] {
            if ip.is_loopback() && !names.iter().any(|n| n == local) {
                names.push(local.to_owned());
            }
        }
        let mut hosts: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
        hosts.extend(opts.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        let mut origins: Vec<String> = names
            .iter()
            .flat_map(|n| [format!("http://{n}:{port}"), format!("https://{n}:{port}")])
            .collect();
        origins.extend(opts.allowed_origins.iter().map(|o| o.to_ascii_lowercase()));
        Self { hosts, origins }
    }

    /// Why the request is refused, if it is.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase)
            .ok_or("missing Host header")?;
        if !self.hosts.contains(&host) {
            return Err(format!("Host \"{host}\" is not this gateway's address"));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin
                .to_str()
                .map(str::to_ascii_lowercase)
                .map_err(|_| "unreadable Origin header")?;
            if !self.origins.contains(&origin) {
                return Err(format!("Origin \"{origin}\" is not allowed"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn loopback_names_pass_others_fail() {
        let g = Guard::new(&HttpOptions::new("127.0.0.1:8080".parse().unwrap()));
        assert!(g.check(&headers("127.0.0.1:8080", None)).is_ok());
        assert!(g
            .check(&headers("LOCALHOST:8080", Some("http://localhost:8080")))
            .is_ok());
        assert!(g.check(&headers("evil.example:8080", None)).is_err());
        assert!(g.check(&headers("localhost:9999", None)).is_err());
        assert!(g
            .check(&headers("localhost:8080", Some("https://evil.example")))
            .is_err());
        assert!(g.check(&HeaderMap::new()).is_err());
    }

    #[test]
    fn configured_names_pass() {
        let mut o = HttpOptions::new("127.0.0.1:8080".parse().unwrap());
        o.allowed_hosts.push("gw.internal:443".into());
        o.allowed_origins.push("https://app.example".into());
        let g = Guard::new(&o);
        assert!(g
            .check(&headers("gw.internal:443", Some("https://app.example")))
            .is_ok());
    }
}
