//! Schemas of the OpenAPI document that no Rust type derives: the forms a request may
//! name a snapshot in, and the grammars of ids, versions and labels, kept next to the
//! rules they describe (`jetvault_core::id`, `jetvault_core::selector`) by unit tests.

use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// App and environment ids: 1 to 63 of `a-z 0-9 . _ -`, starting with a letter or digit,
/// no `..` (the same text is in the `#[param]` and `#[schema]` attributes, which take
/// literals only; a test keeps them equal).
pub const ID_PATTERN: &str = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$";

/// A version in a path or query: `12`, `v12` (1 to 9999999999), `latest`, `release`.
pub const VERSION_PATTERN: &str = r"^(v?0*[1-9][0-9]{0,9}|latest|release|current_release)$";

/// Release labels: 1 to 64 of `A-Z a-z 0-9 . _ + -`, starting with a letter or digit,
/// no `..`.
pub const LABEL_PATTERN: &str = r"^[A-Za-z0-9]([A-Za-z0-9_+-]|\.[A-Za-z0-9_+-])*\.?$";

/// The largest version number.
pub const MAX_VERSION: u64 = jetvault_core::layout::MAX_ORDINAL;

/// A snapshot named in a request body: `12`, `"v12"`, `"latest"`, `"release"`,
/// `{"version": 12}`, `{"release": "1.4.0"}` (a release label) or
/// `{"at": "2024-05-01T12:00:00Z"}` (the newest snapshot taken at or before then).
#[derive(Debug)]
pub struct SelectorInput;

fn version_number() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_VERSION))
}

fn one_key(key: &str, value: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(key, value)
        .required(key)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

impl PartialSchema for SelectorInput {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "A snapshot: a version number, `\"v12\"`, `\"latest\"`, `\"release\"` (the \
                 released one), `{\"version\": 12}`, `{\"release\": \"<label>\"}` or \
                 `{\"at\": \"<RFC 3339 time>\"}` (the newest taken at or before then)",
            ))
            .item(version_number())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(VERSION_PATTERN)),
            )
            .item(one_key("version", version_number()))
            .item(one_key(
                "release",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(64))
                    .pattern(Some(LABEL_PATTERN)),
            ))
            .item(one_key(
                "at",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            ))
            .into()
    }
}

impl ToSchema for SelectorInput {}

#[cfg(test)]
mod tests {
    use super::*;
    use jetvault_core::Selector;
    use jetvault_core::id::{AppId, Label};

    fn matches(pattern: &str, s: &str) -> bool {
        regex_lite::Regex::new(pattern).unwrap().is_match(s)
    }

    #[test]
    fn id_pattern_is_the_id_rule() {
        for s in [
            "a", "0", "crm", "a.b", "a.", "a-b_c", "a..b", ".a", "-a", "A", "a/b", "a%", "¿", "",
            "a b", "a.-", "a._.", "0.0.0.",
        ] {
            assert_eq!(matches(ID_PATTERN, s), AppId::new(s).is_ok(), "{s:?}");
        }
        let long = "a".repeat(64);
        assert!(
            AppId::new(&long).is_err(),
            "the length is the schema's maxLength"
        );
    }

    #[test]
    fn version_pattern_is_the_selector_rule() {
        for s in [
            "1",
            "v1",
            "01",
            "0",
            "v0",
            "",
            "latest",
            "release",
            "current_release",
            "v",
            "+1",
            "9999999999",
            "10000000000",
            "v9999999999",
            "12a",
            "Latest",
        ] {
            assert_eq!(
                matches(VERSION_PATTERN, s),
                s.parse::<Selector>().is_ok(),
                "{s:?}"
            );
        }
    }

    /// Every operation of the served document: an operation id fit for generated code,
    /// the auth answers of its role, error bodies with the code enum, constrained ids.
    #[test]
    fn every_operation_is_complete() {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 17, "{}", paths.len());
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{at}: operationId {id:?}"
                );
                assert!(ids.insert(id.to_string()), "{at}: operationId {id} twice");
                let responses = op["responses"].as_object().unwrap();
                let secured = op.get("security").is_some();
                if secured {
                    for status in ["401", "500", "503"] {
                        assert!(responses.contains_key(status), "{at}: no {status}");
                    }
                    assert_eq!(
                        responses.contains_key("403"),
                        method != "get",
                        "{at}: 403 is for operate routes"
                    );
                }
                if path.contains("{app}") {
                    assert!(responses.contains_key("400"), "{at}: no 400");
                    // An upload creates what it names; every read can miss.
                    if method == "get" {
                        assert!(responses.contains_key("404"), "{at}: no 404");
                    }
                }
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{at} {status}"
                        );
                    }
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    if matches!(name, "app" | "env") {
                        assert_eq!(p["schema"]["pattern"], ID_PATTERN, "{at} {name}");
                        assert_eq!(p["schema"]["maxLength"], 63, "{at} {name}");
                    }
                    if name == "version" || (name == "a" || name == "b") {
                        assert_eq!(p["schema"]["pattern"], VERSION_PATTERN, "{at} {name}");
                    }
                    if name == "limit" {
                        assert_eq!(p["schema"]["maximum"], 1000, "{at}");
                    }
                }
            }
        }
        let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
        assert!(codes.as_array().is_some_and(|c| c.len() >= 16), "{codes}");
    }

    #[test]
    fn label_pattern_is_the_label_rule() {
        for s in [
            "1.4.0",
            "v2+build.7",
            "",
            "a..b",
            ".a",
            "+a",
            "A_b-c",
            "a.",
            "a/b",
            "é",
        ] {
            assert_eq!(matches(LABEL_PATTERN, s), Label::new(s).is_ok(), "{s:?}");
        }
    }
}
