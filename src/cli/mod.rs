//! The command line: global options, one file per subcommand, and the context they share.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use jetvault_core::config::Config;
use jetvault_core::events::Actor;
use jetvault_core::events::hostname;
use jetvault_core::store::{self, OpenOptions, Store};
use jetvault_core::{EnvRef, Vault, VaultOptions};
use serde::Serialize;

mod backup;
mod backup_all;
mod browse;
mod completions;
mod config_cmd;
mod diff;
mod doctor;
mod envs;
mod events;
pub mod exit;
mod pin;
mod promote;
mod prune;
mod rekey;
mod release;
mod repair;
mod restore;
mod restore_all;
mod rows;
mod serve;
mod verify;

/// Versioned, restorable backups and releases of no-code app configurations.
#[derive(Debug, Parser)]
#[command(name = "jetvault", version = version(), about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

fn version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (git ",
        env!("JETVAULT_GIT_REV"),
        ")"
    )
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file (TOML).
    #[arg(long, global = true, env = "JETVAULT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL: s3://BUCKET[/PREFIX] or file:///PATH (overrides `store` and
    /// JETVAULT_STORE).
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
    /// S3 endpoint for MinIO or LocalStack (overrides s3.endpoint and
    /// JETVAULT_S3__ENDPOINT; AWS_ENDPOINT_URL also works).
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Use path-style S3 addressing for MinIO, LocalStack (overrides s3.force_path_style
    /// and JETVAULT_S3__FORCE_PATH_STYLE).
    #[arg(long, global = true)]
    pub s3_path_style: bool,
    /// An age identity file (`age-keygen -o FILE`) to read encrypted snapshots with
    /// (else JETVAULT_AGE_IDENTITY_FILE, else the key in JETVAULT_AGE_IDENTITY).
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "JETVAULT_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service and the scheduler.
    Serve(serve::ServeArgs),
    /// Snapshot one environment's live configuration (or a file with --from).
    Backup(backup::BackupArgs),
    /// Snapshot every configured environment.
    BackupAll(backup_all::BackupAllArgs),
    /// List an environment's snapshots, newest first.
    List(browse::ListArgs),
    /// Show one snapshot's metadata.
    Show(browse::ShowArgs),
    /// Print a snapshot's configuration, byte for byte.
    Cat(browse::CatArgs),
    /// Show the differences between two versions.
    Diff(diff::DiffArgs),
    /// Publish a snapshot as the environment's release.
    Release(release::ReleaseArgs),
    /// List an environment's releases, newest first.
    Releases(release::ReleasesArgs),
    /// Go back to the previous release.
    Rollback(release::RollbackArgs),
    /// Copy a snapshot into another environment.
    Promote(promote::PromoteArgs),
    /// Push a snapshot back to the live configuration.
    Restore(restore::RestoreArgs),
    /// Restore many environments to one point in time (plan, run, resume, undo).
    RestoreAll(restore_all::RestoreAllArgs),
    /// Delete old snapshots by retention policy.
    Prune(prune::PruneArgs),
    /// Keep a snapshot from being pruned.
    Pin(pin::PinArgs),
    /// Let a pinned snapshot be pruned again.
    Unpin(pin::PinArgs),
    /// Check that every snapshot decompresses and matches its checksum, and name the
    /// gaps interrupted writes left.
    Verify(verify::VerifyArgs),
    /// Close the gaps interrupted writes left: index entries, release records, audit
    /// events, temporary files.
    Repair(repair::RepairArgs),
    /// Re-encrypt older snapshots to the current age recipients (key rotation).
    Rekey(rekey::RekeyArgs),
    /// List an environment's audit events, newest first.
    Events(events::EventsArgs),
    /// Check the store, its conditional writes and the live targets.
    Doctor(doctor::DoctorArgs),
    /// List configured and discovered environments with their sources.
    Envs(envs::EnvsArgs),
    /// Check config files.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Print shell completions.
    Completions(completions::CompletionsArgs),
}

/// Sets up tracing on stderr: `RUST_LOG` filters (default `warn`, `info` for `serve`).
pub fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let serving = matches!(cli.command, Command::Serve(_));
    let default = if serving { "info" } else { "warn" };
    // The AWS SDK logs each failed credential provider at warn; jetvault's own error
    // says what went wrong once, so keep the SDK quieter unless RUST_LOG asks.
    let default = format!("{default},aws_config=error,aws_smithy_runtime=error");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.global.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the parsed command; returns the exit code.
///
/// # Errors
/// Whatever the command fails with; `main` reports it once.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let listen = match &cli.command {
        Command::Serve(a) => a.listen.clone(),
        _ => None,
    };
    let ctx = Ctx::new(cli.global, listen)?;
    let result = match cli.command {
        Command::Serve(a) => serve::run(&ctx, a).await,
        Command::Backup(a) => backup::run(&ctx, a).await,
        Command::BackupAll(a) => backup_all::run(&ctx, a).await,
        Command::List(a) => browse::list(&ctx, a).await,
        Command::Show(a) => browse::show(&ctx, a).await,
        Command::Cat(a) => browse::cat(&ctx, a).await,
        Command::Diff(a) => diff::run(&ctx, a).await,
        Command::Release(a) => release::release(&ctx, a).await,
        Command::Releases(a) => release::releases(&ctx, a).await,
        Command::Rollback(a) => release::rollback(&ctx, a).await,
        Command::Promote(a) => promote::run(&ctx, a).await,
        Command::Restore(a) => restore::run(&ctx, a).await,
        Command::RestoreAll(a) => restore_all::run(&ctx, a).await,
        Command::Prune(a) => prune::run(&ctx, a).await,
        Command::Pin(a) => pin::run(&ctx, a, true).await,
        Command::Unpin(a) => pin::run(&ctx, a, false).await,
        Command::Verify(a) => verify::run(&ctx, a).await,
        Command::Repair(a) => repair::run(&ctx, a).await,
        Command::Rekey(a) => rekey::run(&ctx, a).await,
        Command::Events(a) => events::run(&ctx, a).await,
        Command::Doctor(a) => doctor::run(&ctx, a).await,
        Command::Envs(a) => envs::run(&ctx, a).await,
        Command::Config(c) => config_cmd::run(&ctx, c),
        Command::Completions(a) => completions::run(&a),
    };
    // Notices queued by the command get a bounded wait; the exit code is the command's.
    if let Some(notifier) = ctx.notifier.get().and_then(Option::as_ref) {
        notifier.flush(notifier.exit_wait()).await;
    }
    result
}

/// What every command shares: the options, the loaded config, and a way to the store.
#[derive(Debug)]
pub struct Ctx {
    pub global: GlobalArgs,
    pub config: Config,
    /// The webhooks, started by the first [`Ctx::vault`] (none without `[notify]`).
    notifier: std::sync::OnceLock<Option<Arc<jetvault::notify::Notifier>>>,
}

/// The settings given as flags: the top layer over the environment and the file.
#[derive(Debug, Serialize)]
struct FlagSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    s3: S3Flags,
    server: ServerFlags,
}

#[derive(Debug, Serialize)]
struct S3Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    force_path_style: Option<bool>,
}

#[derive(Debug, Serialize)]
struct ServerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
}

impl Ctx {
    /// Loads the settings: the config file (if any), then `JETVAULT_*` variables, then
    /// the flags (`listen` is serve's).
    fn new(global: GlobalArgs, listen: Option<String>) -> anyhow::Result<Self> {
        if let Some(store) = &global.store {
            store::StoreUrl::parse(store)?;
        }
        let flags = FlagSettings {
            store: global.store.clone(),
            s3: S3Flags {
                endpoint: global.s3_endpoint.clone(),
                force_path_style: global.s3_path_style.then_some(true),
            },
            server: ServerFlags { listen },
        };
        let config = Config::layered(global.config.as_deref(), "command line", &flags)?;
        Ok(Self {
            global,
            config,
            notifier: std::sync::OnceLock::new(),
        })
    }

    /// Whether output should be JSON.
    pub fn json(&self) -> bool {
        self.global.json
    }

    /// Opens the store.
    pub async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        let url = self.config.store_url();
        Ok(store::open(&url, &OpenOptions::from_config(&self.config)).await?)
    }

    /// Opens the store and wraps it in a vault with the configured options.
    pub async fn vault(&self) -> anyhow::Result<Vault> {
        self.vault_over(self.store().await?, &self.config)
    }

    /// A vault over `store` with the options `config` sets (the command line's config,
    /// or one with discovered environments added), the age identities of the process
    /// and the notifier.
    pub fn vault_over(&self, store: Arc<dyn Store>, config: &Config) -> anyhow::Result<Vault> {
        let identities =
            jetvault_core::crypt::Identities::from_process(self.global.identity.as_deref())?;
        let vault = Vault::new(
            store,
            VaultOptions::from_config(config)?.with_identities(identities),
        );
        let notifier = self
            .notifier
            .get_or_init(|| jetvault::notify::Notifier::start(&self.config));
        Ok(match notifier {
            Some(n) => vault.with_sink(n.clone()),
            None => vault,
        })
    }

    /// What the `[discovery]` source lists now (`None` without one).
    ///
    /// # Errors
    /// The source can't be read or its answer can't be used.
    pub async fn discover(&self) -> anyhow::Result<Option<jetvault_core::discovery::Discovered>> {
        let Some(d) = &self.config.discovery else {
            return Ok(None);
        };
        let found = jetvault_core::discovery::Discovery::new(d)?
            .run(&self.config)
            .await
            .map_err(|e| e.context("discovering environments"))?;
        Ok(Some(found))
    }

    /// Who is acting: `--author`, else `JETVAULT_AUTHOR`, else `user@host`.
    pub fn actor(&self, author: Option<&str>) -> Actor {
        Actor::on_this_host(author.map_or_else(default_author, str::to_string), "cli")
    }
}

/// Validates an app and env pair from the command line.
/// The stored environments a batch command covers (`[APP [ENV]]`); none is an error
/// saying the store `holds no {what}`.
pub async fn stored_envs(
    vault: &Vault,
    app: Option<&str>,
    env: Option<&str>,
    what: &str,
) -> anyhow::Result<Vec<EnvRef>> {
    let app_id = app.map(jetvault_core::id::AppId::new).transpose()?;
    let env_id = env.map(jetvault_core::id::EnvId::new).transpose()?;
    let envs = vault.select_envs(app_id.as_ref(), env_id.as_ref()).await?;
    if envs.is_empty() {
        anyhow::bail!(
            jetvault_core::Error::not_found(format!(
                "{} holds no {what}{}",
                vault.store().describe(),
                app.map_or_else(String::new, |a| format!(" of app {a}"))
            ))
            .with_hint("check --store and the app name")
        );
    }
    Ok(envs)
}

pub fn env_ref(app: &str, env: &str) -> anyhow::Result<EnvRef> {
    Ok(EnvRef::parse(app, env)?)
}

fn default_author() -> String {
    if let Ok(a) = std::env::var("JETVAULT_AUTHOR")
        && !a.is_empty()
    {
        return a;
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    match hostname() {
        Some(h) => format!("{user}@{h}"),
        None => user,
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode the output as JSON")?;
    println!("{text}");
    Ok(())
}

/// Whether stderr is a terminal (progress bars and prompts go there).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    if !interactive() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}

/// `s` cut to `n` characters, with `~` marking the cut.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

/// A human-readable size.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
