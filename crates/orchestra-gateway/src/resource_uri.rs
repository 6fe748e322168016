//! Exposed resource URIs: `orchestra://<server>/<the child's own URI, verbatim>`.
//!
//! The one place where a child's URI is put under its server and taken back out (the
//! decision and its alternatives: docs/decisions/0005-resource-uris.md). The child's URI is
//! appended as written — not percent-encoded — so that it maps back exactly, reads plainly
//! (`orchestra://files/file:///tmp/a.txt`), and a URI *template* stays a template whose
//! expansion is the child's own expansion under the same prefix.

/// The scheme of every exposed resource URI.
pub const SCHEME: &str = "orchestra";

const PREFIX: &str = "orchestra://";

/// The URI a client sees for `server`'s resource (or template) `child_uri`.
pub fn expose(server: &str, child_uri: &str) -> String {
    let mut uri = String::with_capacity(PREFIX.len() + server.len() + 1 + child_uri.len());
    uri.push_str(PREFIX);
    uri.push_str(server);
    uri.push('/');
    uri.push_str(child_uri);
    uri
}

/// Splits an exposed URI into (server, the child's URI); `None` for any other URI (a
/// child's own, for example from a resource link in a tool result). The scheme is matched
/// without regard to case, as RFC 3986 says schemes are.
pub fn split(uri: &str) -> Option<(&str, &str)> {
    let head = uri.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let (server, child) = uri[PREFIX.len()..].split_once('/')?;
    (!server.is_empty() && !child.is_empty()).then_some((server, child))
}

/// The scheme of a URI (`file` in `file:///a`), if it has a valid one.
pub fn scheme_of(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// The literal text of a URI template before its first expression (`{`): every URI the
/// template expands to starts with it.
pub fn template_prefix(template: &str) -> &str {
    template.split('{').next().unwrap_or(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_uri_maps_back_exactly() {
        for child in [
            "file:///tmp/a b.txt",
            "demo://resource/static/document/architecture.md",
            "memory://graph?x=1#frag",
            "urn:isbn:0451450523",
            "orchestra://other/file:///nested",
        ] {
            let exposed = expose("files-2", child);
            assert_eq!(split(&exposed), Some(("files-2", child)), "{exposed}");
        }
        assert_eq!(split("ORCHESTRA://s/x:y"), Some(("s", "x:y")));
        assert_eq!(split("file:///tmp/a"), None);
        assert_eq!(split("orchestra://s/"), None);
        assert_eq!(split("orchestra:///x:y"), None);
    }

    #[test]
    fn a_template_expands_to_an_exposed_uri_of_the_childs_expansion() {
        let exposed = expose("everything", "demo://resource/dynamic/text/{index}");
        let expanded = exposed.replace("{index}", "7");
        assert_eq!(
            split(&expanded),
            Some(("everything", "demo://resource/dynamic/text/7"))
        );
        assert_eq!(
            template_prefix("demo://resource/dynamic/text/{index}"),
            "demo://resource/dynamic/text/"
        );
    }

    #[test]
    fn schemes_are_read_by_rfc_3986() {
        assert_eq!(scheme_of("file:///a"), Some("file"));
        assert_eq!(scheme_of("svn+ssh://h/p"), Some("svn+ssh"));
        assert_eq!(scheme_of("my_scheme://x"), None);
        assert_eq!(scheme_of("no scheme"), None);
    }
}
