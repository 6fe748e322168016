//! Duplicate keys in the configuration text. YAML and JSON parsers keep the last of two equal
//! keys without a word, so `call_timeout: 5s` written twice, or an `env` entry pasted twice with
//! another value, silently loses one of them. This walks the document once, before figment
//! sees it, and reports every repeated key at its key path.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{join, ConfigError};
use crate::load::Format;

/// Every key that appears more than once in the same mapping. Syntax errors are not reported
/// here (loading reports them with their position).
pub(crate) fn find(text: &str, format: Format) -> Vec<ConfigError> {
    let mut found = Vec::new();
    let scan = Scan {
        path: String::new(),
        found: &mut found,
    };
    match format {
        Format::Yaml => {
            let _ = scan.deserialize(serde_yaml::Deserializer::from_str(text));
            found
        }
        Format::Json => {
            let _ = scan.deserialize(&mut serde_json::Deserializer::from_str(text));
            claude_paths(found)
        }
    }
}

/// A Claude config holds the client's own settings next to `mcpServers`: only our part is
/// checked (the client's settings are none of our business), and `mcpServers.x` is reported
/// as `servers.x`, like every other error about that entry.
fn claude_paths(found: Vec<ConfigError>) -> Vec<ConfigError> {
    found
        .into_iter()
        .filter_map(|mut e| {
            let top = e.path.split(['.', '[']).next().unwrap_or_default();
            if top == "mcpServers" {
                e.path = format!("servers{}", &e.path["mcpServers".len()..]);
                Some(e)
            } else {
                crate::raw::TOP_LEVEL.contains(&top).then_some(e)
            }
        })
        .collect()
}

/// Visits one value at `path`, recording repeated keys of every mapping inside it.
struct Scan<'a> {
    path: String,
    found: &'a mut Vec<ConfigError>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<Key>()? {
            let path = join(&self.path, &key.0);
            if !seen.insert(key.0.clone()) {
                self.found.push(ConfigError::new(
                    path.clone(),
                    "duplicate key: it is given more than once here, and only one value can \
                     apply; remove the extra entries",
                ));
            }
            map.next_value_seed(Scan {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Scan {
                path: format!("{}[{i}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A YAML tag (`!Something value`): look inside the value.
        let (_, variant) = data.variant::<serde::de::IgnoredAny>()?;
        serde::de::VariantAccess::newtype_variant_seed(variant, self)
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A mapping key as text, whatever scalar it was written as (`1:` and `"1":` are the same key
/// once figment has read them).
struct Key(String);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("null".into()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str, format: Format) -> Vec<String> {
        find(text, format).into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn repeated_keys_are_reported_at_their_path() {
        let yaml = "gateway:\n  call_timeout: 5s\n  call_timeout: 9s\nservers:\n  files:\n    command: a\n    env: {A: 1, B: 2, A: 3}\n  files:\n    command: b\n";
        assert_eq!(
            paths(yaml, Format::Yaml),
            [
                "gateway.call_timeout",
                "servers.files.env.A",
                "servers.files"
            ]
        );
    }

    #[test]
    fn lists_and_json_are_walked_too() {
        let yaml = "servers:\n  x:\n    args: [{a: 1, a: 2}]\n";
        assert_eq!(paths(yaml, Format::Yaml), ["servers.x.args[0].a"]);
        let json = r#"{"mcpServers": {"x": {"command": "a", "command": "b"}}}"#;
        assert_eq!(paths(json, Format::Json), ["servers.x.command"]);
        // The client's own settings beside mcpServers are not ours to judge.
        let json = r#"{"projects": {"p": {"x": 1, "x": 2}}, "mcpServers": {}}"#;
        assert!(paths(json, Format::Json).is_empty());
    }

    #[test]
    fn a_clean_document_has_none() {
        let yaml = "servers:\n  a: {command: x, env: {A: 1}}\n  b: {command: x, env: {A: 1}}\n";
        assert!(paths(yaml, Format::Yaml).is_empty());
        assert!(paths("not: [valid", Format::Yaml).is_empty());
    }
}
