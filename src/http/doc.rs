//! Schemas of the OpenAPI document that no Rust type derives: the forms a request may
//! name a snapshot in, and the grammars of ids, versions and labels, kept next to the
//! rules they describe (`jetvault_core::id`, `jetvault_core::selector`) by unit tests.

use serde_json::{Value, json};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{OpenApi, Ref, RefOr, Schema};
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

/// The last touches to the document the routes make: named variants for tagged enums
/// ([`name_tagged_variants`]) and the links between operations ([`add_links`]).
pub fn finish(doc: &mut OpenApi) {
    name_tagged_variants(doc);
    plain_optional_bodies(doc);
    add_links(doc);
}

/// An optional request body (`request_body(content = Option<T>)`) is derived as
/// `oneOf: [T, null]`; it becomes `T` in a body that is not required: the body may be
/// left out, and when sent it is a `T`. Generated clients (openapi-python-client) send
/// a body they were not given for the nullable form.
fn plain_optional_bodies(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.post, &mut item.put, &mut item.patch]
            .into_iter()
            .flatten()
        {
            let Some(RefOr::T(body)) = op.request_body.as_mut() else {
                continue;
            };
            if body.required == Some(utoipa::openapi::Required::True) {
                continue;
            }
            for content in body.content.values_mut() {
                let RefOr::T(content) = content else {
                    continue;
                };
                let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                    continue;
                };
                if let [a, b] = one_of.items.as_slice() {
                    let plain = match (is_null(a), is_null(b)) {
                        (false, true) => a.clone(),
                        (true, false) => b.clone(),
                        _ => continue,
                    };
                    content.schema = Some(plain);
                }
            }
        }
    }
}

/// Whether a schema is `{"type": "null"}`.
fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o))
        if matches!(o.schema_type, SchemaType::Type(Type::Null)))
}

/// Moves each variant of an internally tagged enum (`oneOf` of `allOf: [$ref, {tag}]`,
/// what utoipa derives for `#[serde(tag = "...")]` with struct variants) into a
/// component of its own, `BackupOutcome` + `created` = `BackupOutcomeCreated`. The
/// document means the same; code generators that reject an inline `allOf` inside a
/// `oneOf` (openapi-python-client) accept it.
fn name_tagged_variants(doc: &mut OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let mut named = Vec::new();
    for (name, schema) in &mut components.schemas {
        let RefOr::T(Schema::OneOf(one_of)) = schema else {
            continue;
        };
        for item in &mut one_of.items {
            let RefOr::T(Schema::AllOf(all_of)) = item else {
                continue;
            };
            let Some(tag) = all_of.items.iter().find_map(tag_value) else {
                continue;
            };
            let variant = format!("{name}{}", upper_camel(&tag));
            let inline = std::mem::replace(item, RefOr::Ref(Ref::from_schema_name(&variant)));
            named.push((variant, inline));
        }
    }
    components.schemas.extend(named);
}

/// The one value of the one required property of an inline object: the tag.
fn tag_value(schema: &RefOr<Schema>) -> Option<String> {
    let RefOr::T(Schema::Object(o)) = schema else {
        return None;
    };
    let [key] = o.required.as_slice() else {
        return None;
    };
    let RefOr::T(Schema::Object(p)) = o.properties.get(key)? else {
        return None;
    };
    match p.enum_values.as_deref() {
        Some([Value::String(v)]) => Some(v.clone()),
        _ => None,
    }
}

/// `pre-restore` -> `PreRestore`.
fn upper_camel(s: &str) -> String {
    s.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The OpenAPI links that chain backup -> release -> rollback -> restore (and the reads
/// of what each made), for clients and for Schemathesis's stateful phase: each names
/// the operation to call next and where its parameters and body come from in this
/// request and response.
fn add_links(doc: &mut OpenApi) {
    const ENV: &str = "/v1/apps/{app}/envs/{env}";
    let same_env = |op: &str, body: Option<Value>, description: &str| {
        LinkBuilder::new()
            .operation_id(op)
            .parameter("app", "$request.path.app")
            .parameter("env", "$request.path.env")
            .request_body(body)
            .description(description)
            .build()
    };
    let made_version = json!({"version": "$response.body#/version"});
    let links = [
        (
            "/backup",
            "201",
            "release",
            same_env(
                "create_release",
                Some(made_version.clone()),
                "Release the snapshot just taken",
            ),
        ),
        (
            "/snapshots",
            "201",
            "release",
            same_env(
                "create_release",
                Some(made_version),
                "Release the snapshot just uploaded",
            ),
        ),
        (
            "/release",
            "201",
            "rollback",
            same_env("rollback_release", None, "Roll this release back"),
        ),
        (
            "/release",
            "201",
            "released_config",
            same_env(
                "get_release_config",
                None,
                "The configuration just released",
            ),
        ),
        (
            "/release",
            "201",
            "restore",
            same_env(
                "restore",
                Some(json!({"source": "$response.body#/version", "dry_run": true})),
                "Plan a restore of the released snapshot",
            ),
        ),
        (
            "/rollback",
            "201",
            "restore",
            same_env(
                "restore",
                Some(json!({"source": "$response.body#/version", "dry_run": true})),
                "Plan a restore of the snapshot rolled back to",
            ),
        ),
        (
            "/rollback",
            "201",
            "release",
            same_env("get_release", None, "The release pointer now"),
        ),
    ];
    for (path, status, name, link) in links {
        let Some(item) = doc.paths.paths.get_mut(&format!("{ENV}{path}")) else {
            continue;
        };
        let Some(op) = item.post.as_mut() else {
            continue;
        };
        if let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) {
            response.links.insert(name.to_string(), RefOr::T(link));
        }
    }
}

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
                        // A page of restore-all runs reads each run's record in full.
                        let max = if path == "/v1/restore-all" { 100 } else { 1000 };
                        assert_eq!(p["schema"]["maximum"], max, "{at}");
                    }
                    if name == "after" {
                        let cursor = "0000000001234-abcdef012345";
                        let pattern = p["schema"]["pattern"].as_str().unwrap();
                        assert!(matches(pattern, cursor), "{at}");
                        assert!(jetvault_core::events::is_event_cursor(cursor));
                    }
                }
            }
        }
        let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
        assert!(codes.as_array().is_some_and(|c| c.len() >= 16), "{codes}");
    }

    /// The links chain backup -> release -> rollback -> restore, each naming an
    /// operation the document has, with parameters it takes.
    #[test]
    fn links_chain_backup_release_rollback_restore() {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let mut ops = std::collections::BTreeMap::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ops.insert(op["operationId"].as_str().unwrap().to_string(), op.clone());
            }
        }
        let mut chain = std::collections::BTreeSet::new();
        for (from, op) in &ops {
            for (status, r) in op["responses"].as_object().unwrap() {
                for link in r["links"].as_object().into_iter().flatten().map(|l| l.1) {
                    let to = link["operationId"].as_str().unwrap();
                    let target = ops
                        .get(to)
                        .unwrap_or_else(|| panic!("{from}: link to {to}"));
                    let names: Vec<&str> = target["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["name"].as_str())
                        .collect();
                    for p in link["parameters"].as_object().unwrap().keys() {
                        assert!(names.contains(&p.as_str()), "{from} -> {to}: {p}");
                    }
                    assert!(status.starts_with('2'), "{from} {status}");
                    chain.insert((from.clone(), to.to_string()));
                }
            }
        }
        for (from, to) in [
            ("backup", "create_release"),
            ("create_release", "rollback_release"),
            ("rollback_release", "restore"),
            ("create_release", "restore"),
        ] {
            assert!(chain.contains(&(from.into(), to.into())), "{from} -> {to}");
        }
    }

    /// A tagged enum's variants are components (no inline `allOf` inside a `oneOf`).
    #[test]
    fn tagged_variants_are_named() {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let outcome = &schemas["BackupOutcome"]["oneOf"];
        assert_eq!(
            outcome,
            &json!([
                {"$ref": "#/components/schemas/BackupOutcomeCreated"},
                {"$ref": "#/components/schemas/BackupOutcomeUnchanged"},
            ])
        );
        for (name, s) in schemas {
            for item in s["oneOf"].as_array().into_iter().flatten() {
                assert!(item.get("allOf").is_none(), "{name}: inline allOf in oneOf");
            }
        }
        assert!(schemas["BackupOutcomeCreated"]["allOf"].is_array());
    }

    /// An optional body is the object or nothing, never `oneOf [T, null]`; required
    /// bodies are untouched.
    #[test]
    fn optional_bodies_are_plain() {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let body = |path: &str| {
            doc["paths"][format!("/v1/apps/{{app}}/envs/{{env}}/{path}")]["post"]["requestBody"]
                .clone()
        };
        for (path, schema) in [
            ("backup", "BackupBody"),
            ("rollback", "RollbackBody"),
            ("verify", "VerifyBody"),
            ("prune", "PruneBody"),
        ] {
            let b = body(path);
            assert_ne!(b["required"], true, "{path}");
            assert_eq!(
                b["content"]["application/json"]["schema"],
                json!({"$ref": format!("#/components/schemas/{schema}")}),
                "{path}"
            );
        }
        assert_eq!(body("restore")["required"], true);
        let text = serde_json::to_string(&doc["paths"]).unwrap();
        assert!(
            !text.contains(r#"{"type":"null"}]"#),
            "a nullable body is left"
        );
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
