//! Compatibility levels and checks, as Confluent Schema Registry defines
//! them, on top of apache-avro's reader/writer resolution rules.
//!
//! - BACKWARD: the new schema can read data written with the latest version
//!   (consumers upgrade first). `_TRANSITIVE`: with every version.
//! - FORWARD: the latest version can read data written with the new schema.
//! - FULL: both.
//! - NONE: no check.
//!
//! Only full resolution counts as compatible: apache-avro's "partial"
//! (resolution may fail for some values, e.g. a union branch the reader
//! lacks) is reported as incompatible, as Confluent does.

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }
    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }
    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

/// Checks `new` against `existing` (oldest first, each with its version
/// number) under `level`. Returns one readable message per violation; empty
/// means compatible.
pub fn check(level: Level, new: &Schema, existing: &[(u32, &Schema)]) -> Vec<String> {
    let against: &[(u32, &Schema)] = if level.transitive() {
        existing
    } else {
        existing.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut messages = Vec::new();
    for (version, old) in against {
        if level.backward() {
            if let Some(why) = can_read(old, new) {
                messages.push(format!(
                    "BACKWARD: the new schema cannot read data written with version {version}: {why}"
                ));
            }
        }
        if level.forward() {
            if let Some(why) = can_read(new, old) {
                messages.push(format!(
                    "FORWARD: version {version} cannot read data written with the new schema: {why}"
                ));
            }
        }
    }
    messages
}

/// None when `reader` fully resolves data written with `writer`, else why not.
fn can_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(other) => Some(format!(
            "only {other:?} compatibility (some values would fail to resolve)"
        )),
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            Some(msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(json: &str) -> Schema {
        Schema::parse_str(json).unwrap()
    }

    const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#;
    const V2_OPTIONAL: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":["null","string"],"default":null}]}"#;
    const V2_REQUIRED: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"qty","type":"int"}]}"#;

    #[test]
    fn optional_field_with_default_is_backward_compatible() {
        assert!(check(Level::Backward, &s(V2_OPTIONAL), &[(1, &s(V1))]).is_empty());
        assert!(check(Level::Full, &s(V2_OPTIONAL), &[(1, &s(V1))]).is_empty());
    }

    #[test]
    fn required_field_without_default_breaks_backward() {
        let m = check(Level::Backward, &s(V2_REQUIRED), &[(1, &s(V1))]);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].contains("qty") && m[0].contains("version 1"),
            "{}",
            m[0]
        );
        // ... but old readers can still read it: FORWARD holds.
        assert!(check(Level::Forward, &s(V2_REQUIRED), &[(1, &s(V1))]).is_empty());
        assert!(check(Level::None, &s(V2_REQUIRED), &[(1, &s(V1))]).is_empty());
    }

    #[test]
    fn transitive_checks_every_version() {
        let v1 = s(V2_REQUIRED);
        let v2 = s(V2_OPTIONAL);
        // Removing `qty` then re-adding it as string: latest-only check passes.
        let v3 = s(
            r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":["null","string"],"default":null},{"name":"qty","type":"string","default":""}]}"#,
        );
        assert!(check(Level::Backward, &v3, &[(1, &v1), (2, &v2)]).is_empty());
        let m = check(Level::BackwardTransitive, &v3, &[(1, &v1), (2, &v2)]);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("version 1"));
    }
}
