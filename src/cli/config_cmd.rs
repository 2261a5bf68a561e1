//! `jetvault config check`: parse config files the way the service will.

use std::path::PathBuf;

use clap::Subcommand;
use jetvault_core::config::Config;
use jetvault_core::schema::Schemas;
use jetvault_core::store::redact_url;

use super::{Ctx, exit};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check config files: syntax, unknown keys, values, cron expressions, jq filters;
    /// warn of secret files others may read and of live target secrets that can't be read.
    Check {
        /// Files to check (default: the --config file).
        files: Vec<PathBuf>,
    },
}

pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> anyhow::Result<u8> {
    let ConfigCommand::Check { files } = cmd;
    let files = if files.is_empty() {
        match &ctx.global.config {
            Some(f) => vec![f.clone()],
            None => anyhow::bail!(jetvault_core::Error::invalid(
                "no config file to check: pass one (`jetvault config check FILE`) or --config"
            )),
        }
    } else {
        files
    };
    let mut failed = 0;
    for file in &files {
        // Filters and schemas compile here as they would when each live target is opened
        // and when the service starts, naming the file and the error.
        let loaded = Config::load(file).and_then(|c| {
            jetvault_core::filter::check_all(&c)
                .map_err(|e| e.context(format!("config file {}", file.display())))?;
            let schemas = Schemas::from_config(&c)
                .compile_all()
                .map_err(|e| e.context(format!("config file {}", file.display())))?
                .len();
            Ok((c, schemas))
        });
        match loaded {
            Ok((c, schemas)) => {
                for warning in c.secret_file_warnings() {
                    tracing::warn!("{}: {warning}", file.display());
                }
                // A warning, not an error: the secrets may exist only where the service
                // runs (CI checks shipped configs without them).
                for problem in c.secret_problems() {
                    tracing::warn!("{}: {problem}", file.display());
                }
                for problem in c.notify.secret_problems() {
                    tracing::warn!(
                        "{}: {problem}; that webhook is left out until it is",
                        file.display()
                    );
                }
                let envs = c.envs().count();
                let scheduled = c.envs().filter(|(_, e)| e.schedule.is_some()).count();
                let schemas = match schemas {
                    0 => String::new(),
                    1 => ", 1 JSON Schema".into(),
                    n => format!(", {n} JSON Schemas"),
                };
                println!(
                    "{}: ok ({} apps, {envs} environments, {scheduled} scheduled{schemas}; store {})",
                    file.display(),
                    c.apps.len(),
                    c.store
                        .as_deref()
                        .map_or_else(|| "(embedded default)".into(), redact_url)
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", e.report());
            }
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::INVALID })
}
