//! From the source's answer to environments: the jq filter, the entries' ids, the
//! template's placeholders.

use std::collections::{BTreeMap, BTreeSet};

use super::Discovered;
use crate::config::{AppConfig, Config, EnvConfig, LiveConfig};
use crate::error::{Error, Result};
use crate::filter::{Program, value};
use crate::id::EnvRef;

/// The answer, through the filter if there is one: the list of entries.
pub(super) fn entries(
    filter: Option<&Program>,
    answer: &[u8],
    source: &str,
) -> Result<Vec<serde_json::Value>> {
    let input = value::parse(answer, &format!("the discovery answer of {source}"))?;
    let out = match filter {
        Some(p) => p.run(input, Vec::new())?,
        None => input,
    };
    match value::to_json(&out)? {
        serde_json::Value::Array(items) => Ok(items),
        other => Err(Error::invalid(format!(
            "discovery: the {} gave {}, not an array of {{app, env}} objects; make \
             discovery.filter yield one array, e.g. [.items[] | {{app: .slug, env: .stage}}]",
            if filter.is_some() {
                "filter"
            } else {
                "answer (no discovery.filter)"
            },
            kind(&other)
        ))),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Each entry as an environment with the template's settings; bad entries are skipped
/// with the reason, configured environments left to the config.
pub(super) fn expand(
    entries: Vec<serde_json::Value>,
    template: &EnvConfig,
    configured: &Config,
) -> Discovered {
    let mut out = Discovered::default();
    let mut seen = BTreeSet::new();
    for (i, entry) in entries.into_iter().enumerate() {
        match one(&entry, template) {
            Err(why) => out.skipped.push(format!("entry {i}: {why}")),
            Ok((env, env_config)) => {
                if !seen.insert(env.clone()) {
                    out.skipped
                        .push(format!("entry {i}: {env} is listed more than once"));
                } else if configured.env(&env).is_some() {
                    out.configured.push(env);
                } else {
                    out.envs.insert(env, env_config);
                }
            }
        }
    }
    out
}

/// One entry's environment, or why it is skipped.
fn one(
    entry: &serde_json::Value,
    template: &EnvConfig,
) -> std::result::Result<(EnvRef, EnvConfig), String> {
    let serde_json::Value::Object(fields) = entry else {
        return Err(format!("{} is not an object with app and env", kind(entry)));
    };
    let id = |name: &str| match fields.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(format!("`{name}` is {}, not a string", kind(other))),
        None => Err(format!("it has no `{name}`")),
    };
    let env = EnvRef::parse(id("app")?, id("env")?).map_err(|e| e.message().to_string())?;
    let values: BTreeMap<&str, String> = fields
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.as_str(), text))
        })
        .collect();
    let mut env_config = template.clone();
    if let Some(live) = &template.live {
        env_config.live = Some(fill_live(live, &values).map_err(|why| format!("{env}: {why}"))?);
    }
    check(&env, &env_config).map_err(|e| format!("{env}: {}", e.message()))?;
    Ok((env, env_config))
}

/// The template's live table with every placeholder in its strings filled.
fn fill_live(
    live: &LiveConfig,
    values: &BTreeMap<&str, String>,
) -> std::result::Result<LiveConfig, String> {
    let mut json = serde_json::to_value(live).map_err(|e| e.to_string())?;
    fill_json(&mut json, values)?;
    serde_json::from_value(json).map_err(|e| format!("the filled live table is not valid: {e}"))
}

fn fill_json(
    v: &mut serde_json::Value,
    values: &BTreeMap<&str, String>,
) -> std::result::Result<(), String> {
    match v {
        serde_json::Value::String(s) => *s = fill_placeholders(s, values)?,
        serde_json::Value::Array(items) => {
            for item in items {
                fill_json(item, values)?;
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                fill_json(item, values)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `text` with each `{name}` (a letter or `_`, then letters, digits or `_`) replaced by
/// that field's value; other braces are left as they are.
///
/// # Errors
/// The placeholder's name, when no field has it.
pub fn fill_placeholders(
    text: &str,
    values: &BTreeMap<&str, String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(after.len(), |(i, _)| i);
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            let value = values.get(name).ok_or_else(|| {
                format!(
                    "the template names {{{name}}}, which the entry does not have (it has {})",
                    values.keys().copied().collect::<Vec<_>>().join(", ")
                )
            })?;
            out.push_str(value);
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks an expanded environment as the config's own check would.
fn check(env: &EnvRef, env_config: &EnvConfig) -> Result<()> {
    let mut one = Config::default();
    let mut app = AppConfig::default();
    app.envs
        .insert(env.env.clone(), Box::new(env_config.clone()));
    one.apps.insert(env.app.clone(), app);
    one.validate()
}
