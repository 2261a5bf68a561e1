//! Where settings come from: the config file, then `JETVAULT_*` environment variables,
//! then the caller's overrides (the CLI's flags), merged by figment, each layer winning
//! over the one before. Errors name the setting and where it came from, never its value.
//!
//! An environment variable names a setting by its path in the file, upper-cased, with
//! `__` between the levels: `server.listen` is `JETVAULT_SERVER__LISTEN`,
//! `s3.endpoint` is `JETVAULT_S3__ENDPOINT`. Only variables that start with a section of
//! the file (`STORE`, `S3__`, `SNAPSHOTS__`, `SERVER__`, `SCHEDULER__`, `APPS__`,
//! `NOTIFY__`) are settings: other `JETVAULT_*` variables (`JETVAULT_CONFIG`,
//! `JETVAULT_AUTHOR`, ...) are left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::Serialized;
use figment::util::nest;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::Serialize;

use super::AppConfig;
use crate::error::{Error, Result};
use crate::id::AppId;

/// The prefix of the environment variables that hold settings.
pub const ENV_PREFIX: &str = "JETVAULT_";

/// What separates the levels of a setting's path in an environment variable's name.
pub const ENV_SEPARATOR: &str = "__";

/// The top-level keys of the file: the only names the environment layer reads.
const SECTIONS: [&str; 7] = [
    "store",
    "s3",
    "snapshots",
    "server",
    "scheduler",
    "apps",
    "notify",
];

/// Older variable names, still read: (name after the prefix, the setting's name).
pub const ENV_ALIASES: [(&str, &str); 3] = [
    ("S3_ENDPOINT", "S3__ENDPOINT"),
    ("S3_PATH_STYLE", "S3__FORCE_PATH_STYLE"),
    ("LISTEN", "SERVER__LISTEN"),
];

const FILE_LAYER: &str = "config file";
const ENV_LAYER: &str = "environment";

/// A parsed TOML file (or text) as a figment layer.
struct TomlFile {
    path: Option<PathBuf>,
    dict: Dict,
}

impl Provider for TomlFile {
    fn metadata(&self) -> Metadata {
        let md = Metadata::named(FILE_LAYER);
        match &self.path {
            Some(p) => md.source(Source::File(p.clone())),
            None => md,
        }
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Another provider under a name of ours, so that errors can say where a value came from.
struct Named<P> {
    name: String,
    inner: P,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

/// The layers to merge, and the file's path and text for pointing at lines in errors.
pub(super) struct Layers {
    figment: Figment,
    path: Option<PathBuf>,
    text: String,
    env: Option<EnvVars>,
    /// The file's `apps` table, kept out of figment unless a later layer sets `apps`
    /// keys: figment clones its whole tree to extract, and at 10,000 environments two
    /// trees were 65 MB of peak memory.
    apps: Option<FileApps>,
}

/// The file's `apps` table, out of figment.
enum FileApps {
    /// Read by serde straight from the TOML: no tree of values (figment's, a B-tree
    /// leaf of about 800 bytes for each table however small, were 33 MB of peak memory
    /// at 10,000 environments).
    Typed(BTreeMap<AppId, AppConfig>),
    /// A table that the direct read refused, kept as figment's values so that
    /// [`Layers::apps`] names the fault as figment does, reading one app at a time.
    Values(Value),
}

/// A TOML file, its `apps` table read straight into the configuration's types.
#[derive(serde::Deserialize)]
struct TypedFile {
    apps: Option<BTreeMap<AppId, AppConfig>>,
    #[serde(flatten)]
    rest: Dict,
}

impl Layers {
    /// Starts from nothing but the defaults.
    pub(super) fn new() -> Self {
        Self {
            figment: Figment::new(),
            path: None,
            text: String::new(),
            env: None,
            apps: None,
        }
    }

    /// Adds a TOML text, read from `path` if it is a file's.
    ///
    /// # Errors
    /// `Config` for invalid TOML, naming the line and column but never echoing the text.
    pub(super) fn toml(mut self, path: Option<&Path>, text: String) -> Result<Self> {
        self.path = path.map(Path::to_path_buf);
        self = self.apps_into_figment();
        let dict = match toml::from_str::<TypedFile>(&text) {
            Ok(file) => {
                self.apps = file.apps.map(FileApps::Typed);
                file.rest
            }
            // Read again as values: a syntax error is named with its line, a bad setting
            // by [`Layers::extract`] or [`Layers::apps`], as figment names it.
            Err(_) => {
                let mut dict: Dict = toml::from_str(&text)
                    .map_err(|e| Error::config(self.syntax_error(&text, &e)))?;
                self.apps = dict.remove(APPS).map(FileApps::Values);
                dict
            }
        };
        self.figment = self.figment.merge(TomlFile {
            path: self.path.clone(),
            dict,
        });
        self.text = text;
        Ok(self)
    }

    /// Where the text is, for messages: "config file PATH" or "config".
    fn name(&self) -> String {
        match &self.path {
            Some(p) => format!("config file {}", p.display()),
            None => "config".into(),
        }
    }

    /// A TOML syntax error as the line, the column and the parser's reason, without the
    /// snippet of the file the parser would show (it may hold a secret).
    fn syntax_error(&self, text: &str, e: &toml::de::Error) -> String {
        let at = e.span().map_or_else(String::new, |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(", line {line}, column {column}")
        });
        format!("{}{at}: {}", self.name(), e.message().trim_end())
    }

    /// Adds the `JETVAULT_*` environment variables that name settings.
    pub(super) fn env(mut self, vars: EnvVars) -> Self {
        if vars.settings().any(|(_, path, _)| is_apps(&path)) {
            self = self.apps_into_figment();
        }
        self.figment = self.figment.merge(vars.clone());
        self.env = Some(vars);
        self
    }

    /// Adds the caller's overrides, named `origin` in errors.
    pub(super) fn overrides(mut self, origin: &str, values: &impl Serialize) -> Self {
        let inner = Serialized::defaults(values);
        if inner
            .data()
            .is_ok_and(|d| d.values().any(|dict| dict.contains_key(APPS)))
        {
            self = self.apps_into_figment();
        }
        self.figment = self.figment.merge(Named {
            name: origin.into(),
            inner,
        });
        self
    }

    /// Gives the file's `apps` back to figment, as the file's, so that a later layer
    /// setting `apps` keys merges with it as before.
    fn apps_into_figment(mut self) -> Self {
        let apps = match self.apps.take() {
            Some(FileApps::Values(apps)) => Some(apps),
            // The text they were read from, as values (it was read once already).
            Some(FileApps::Typed(_)) => toml::from_str::<Dict>(&self.text)
                .ok()
                .and_then(|mut dict| dict.remove(APPS)),
            None => None,
        };
        if let Some(apps) = apps {
            let mut dict = Dict::new();
            dict.insert(APPS.into(), apps);
            self.figment = self.figment.merge(TomlFile {
                path: self.path.clone(),
                dict,
            });
        }
        self
    }

    /// The configuration: the merged layers, and the file's apps when figment does
    /// not hold them.
    ///
    /// # Errors
    /// `Config` naming the first bad setting and the layer it came from.
    pub(super) fn config(mut self) -> Result<super::Config> {
        let mut config: super::Config = self.extract()?;
        if let Some(apps) = self.apps()? {
            config.apps = apps;
        }
        Ok(config)
    }

    /// The file's apps when figment does not hold them, read one app at a time (each
    /// app's part of the tree is freed once read), with figment's errors.
    ///
    /// # Errors
    /// `Config` naming the first bad setting, as [`Layers::extract`] would.
    fn apps(&mut self) -> Result<Option<BTreeMap<AppId, AppConfig>>> {
        let value = match self.apps.take() {
            None => return Ok(None),
            Some(FileApps::Typed(apps)) => return Ok(Some(apps)),
            Some(FileApps::Values(value)) => value,
        };
        let in_file = |e: figment::Error, at: &[&str]| {
            let mut first = e.into_iter().next().unwrap_or_else(|| "invalid".into());
            let mut path: Vec<String> = at.iter().map(|s| (*s).to_string()).collect();
            path.append(&mut first.path);
            first.path = path;
            first.metadata = Some(Metadata::named(FILE_LAYER));
            self.describe(&first)
        };
        let Value::Dict(_, dict) = value else {
            return value
                .deserialize::<BTreeMap<AppId, AppConfig>>()
                .map(Some)
                .map_err(|e| in_file(e, &[APPS]));
        };
        let mut apps = BTreeMap::new();
        for (name, app) in dict {
            let id: AppId = Value::from(name.clone())
                .deserialize()
                .map_err(|e| in_file(e, &[APPS]))?;
            let app: AppConfig = app.deserialize().map_err(|e| in_file(e, &[APPS, &name]))?;
            apps.insert(id, app);
        }
        Ok(Some(apps))
    }

    /// Deserializes the merged layers.
    ///
    /// # Errors
    /// `Config` naming the first bad setting and the layer it came from.
    pub(super) fn extract<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        self.figment.extract().map_err(|e| {
            let first = e.into_iter().next().unwrap_or_else(|| "invalid".into());
            self.describe(&first)
        })
    }

    fn describe(&self, e: &figment::Error) -> Error {
        let mut path = e.path.clone();
        if let Kind::UnknownField(field, _) = &e.kind
            && path.last() != Some(field)
        {
            path.push(field.clone());
        }
        let key = path.join(".");
        let layer = e.metadata.as_ref().map(|m| m.name.as_ref());
        let origin = match layer {
            Some(FILE_LAYER) | None => {
                let line = path
                    .last()
                    .and_then(|k| line_of(&self.text, k))
                    .map_or_else(String::new, |n| format!(", line {n}"));
                format!("{}{line}", self.name())
            }
            Some(ENV_LAYER) => format!(
                "environment variable {}",
                self.env
                    .as_ref()
                    .map_or_else(String::new, |v| v.name_of(&path))
            ),
            Some(other) => other.to_string(),
        };
        let what = match &e.kind {
            Kind::UnknownField(_, expected) => {
                format!("unknown key `{key}`, expected {}", one_of(expected))
            }
            Kind::UnknownVariant(v, expected) => {
                format!(
                    "{key}: unknown variant `{v}`, expected {}",
                    one_of(expected)
                )
            }
            Kind::MissingField(f) if key.is_empty() => format!("missing key `{f}`"),
            Kind::MissingField(f) => format!("{key}: missing key `{f}`"),
            // The value itself is not shown: it may be a secret.
            Kind::InvalidType(actual, expected) => {
                format!("{key}: found {}, expected {expected}", kind_of(actual))
            }
            Kind::InvalidValue(actual, expected) => {
                format!("{key}: invalid {}, expected {expected}", kind_of(actual))
            }
            Kind::Message(m) if key.is_empty() => m.clone(),
            Kind::Message(m) => format!("{key}: {m}"),
            other => format!("{key}: {other}"),
        };
        Error::config(format!("{origin}: {what}"))
    }
}

/// The environment layer: the `JETVAULT_SECTION__KEY` variables among `vars`, older
/// names included; figment parses each value (`true`, `8`, `[a, b]`, or a string).
#[derive(Debug, Clone)]
pub(super) struct EnvVars(Vec<(String, String)>);

impl EnvVars {
    /// This process's variables.
    pub(super) fn process() -> Self {
        Self::from(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Chosen variables (tests).
    pub(super) fn from(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(vars.into_iter().collect())
    }

    /// The settings among the variables: (the variable, the setting's dotted path, the value).
    fn settings(&self) -> impl Iterator<Item = (&str, String, &str)> {
        self.0.iter().filter_map(|(name, value)| {
            let rest = name.strip_prefix(ENV_PREFIX)?;
            let rest = ENV_ALIASES
                .iter()
                .find(|(old, _)| rest == *old)
                .map_or(rest, |(_, new)| new);
            let section = rest.split(ENV_SEPARATOR).next().unwrap_or("");
            if !SECTIONS.iter().any(|s| section.eq_ignore_ascii_case(s)) || value.is_empty() {
                return None;
            }
            let path = rest.to_ascii_lowercase().replace(ENV_SEPARATOR, ".");
            if path.split('.').any(str::is_empty) {
                return None;
            }
            Some((name.as_str(), path, value.as_str()))
        })
    }

    /// The variable that set `path`, for messages.
    fn name_of(&self, path: &[String]) -> String {
        let dotted = path.join(".");
        self.settings()
            .find(|(_, p, _)| *p == dotted || dotted.starts_with(&format!("{p}.")))
            .map_or_else(
                || {
                    format!(
                        "{ENV_PREFIX}{}",
                        path.join(ENV_SEPARATOR).to_ascii_uppercase()
                    )
                },
                |(name, _, _)| name.to_string(),
            )
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_LAYER)
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (_, path, value) in self.settings() {
            let parsed: Value = value.parse().unwrap_or_else(|e| match e {});
            merge(&mut dict, nest(&path, parsed));
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// The top-level key of the apps.
const APPS: &str = "apps";

/// Whether a setting's dotted path is in `apps`.
fn is_apps(path: &str) -> bool {
    path == APPS || path.strip_prefix(APPS).is_some_and(|r| r.starts_with('.'))
}

/// Merges `value` (nested dictionaries) into `into`, the later value winning.
fn merge(into: &mut Dict, value: Value) {
    let Value::Dict(_, dict) = value else {
        return;
    };
    for (k, v) in dict {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, inner)), v @ Value::Dict(..)) => merge(inner, v),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "no key here".to_string(),
        [one] => format!("`{one}`"),
        _ => {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}

/// What kind of value was found, without the value.
fn kind_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Seq => "an array",
        Actual::Map => "a table",
        _ => "a value",
    }
}

/// The first line of `text` that sets `key` (`key = ...`) or opens its table.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    let names_key = |s: &str| {
        let s = s.trim_start();
        [key, quoted.as_str()].iter().any(|k| {
            s.strip_prefix(k)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
    };
    text.lines()
        .position(|line| {
            let l = line.trim();
            if l.starts_with('[') {
                let header = l.trim_matches(|c| c == '[' || c == ']');
                header
                    .split('.')
                    .any(|part| part.trim() == key || part.trim() == quoted)
            } else {
                // `key = v`, or `a = { key = v }` inside an inline table.
                names_key(l) || l.split(['{', ',']).skip(1).any(names_key)
            }
        })
        .map(|i| i + 1)
}
