//! `jetvault envs`: every environment with where it comes from: `config` (named in
//! `[apps.A.envs.E]`), `discovery` (listed by the discovery source now, read here) or
//! `store-only` (history in the store, neither configured nor discovered now: an
//! environment the platform no longer lists keeps its history and shows here).

use std::collections::BTreeSet;

use clap::Args;
use jetvault::http::envs::describe_live;
use jetvault_core::discovery::{self, Discovered, Source};
use jetvault_core::id::EnvRef;
use serde::Serialize;

use super::{Ctx, exit, print_json};

#[derive(Debug, Args)]
pub struct EnvsArgs {}

/// One environment.
#[derive(Debug, Serialize)]
struct EnvRow {
    app: String,
    env: String,
    /// `config`, `discovery` or `store-only`.
    source: &'static str,
    /// Whether the store holds history of it.
    stored: bool,
    /// Its live target, redacted.
    live: Option<String>,
    /// Its backup schedule.
    schedule: Option<String>,
}

/// What the discovery source gave.
#[derive(Debug, Serialize)]
struct DiscoveryReport {
    /// The source, redacted.
    source: String,
    /// How many environments it lists that the config does not.
    discovered: usize,
    /// Environments it lists that the config names too (the config wins).
    configured: Vec<String>,
    /// Entries skipped, with why.
    skipped: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Output {
    envs: Vec<EnvRow>,
    discovery: Option<DiscoveryReport>,
}

pub async fn run(ctx: &Ctx, _args: EnvsArgs) -> anyhow::Result<u8> {
    let (discovered, report) = match (ctx.discover().await?, &ctx.config.discovery) {
        (Some(found), Some(d)) => {
            let report = DiscoveryReport {
                source: d.describe(),
                discovered: found.envs.len(),
                configured: found.configured.iter().map(ToString::to_string).collect(),
                skipped: found.skipped.clone(),
            };
            (found, Some(report))
        }
        _ => (Discovered::default(), None),
    };
    let vault = ctx.vault().await?;
    let stored = vault.stored_envs().await?;
    let stored_set: BTreeSet<&EnvRef> = stored.iter().collect();
    let all = discovery::effective(&ctx.config, &discovered);
    let names: BTreeSet<EnvRef> = discovered.envs.keys().cloned().collect();
    let rows: Vec<EnvRow> = discovery::sources(&ctx.config, &names, &stored)
        .into_iter()
        .map(|(env, source)| {
            let c = all.env(&env);
            EnvRow {
                app: env.app.to_string(),
                env: env.env.to_string(),
                source: source.as_str(),
                stored: stored_set.contains(&env),
                live: c.and_then(|c| c.live.as_ref()).map(describe_live),
                schedule: c.and_then(|c| c.schedule.clone()),
            }
        })
        .collect();
    if ctx.json() {
        print_json(&Output {
            envs: rows,
            discovery: report,
        })?;
        return Ok(exit::OK);
    }
    if let Some(r) = &report {
        for why in &r.skipped {
            eprintln!("warning: discovery skipped an entry: {why}");
        }
    }
    if rows.is_empty() {
        println!("no environments: none configured, discovered or in the store");
        return Ok(exit::OK);
    }
    let width = rows
        .iter()
        .map(|r| r.app.len() + r.env.len() + 1)
        .max()
        .unwrap_or(0)
        .max(11);
    println!(
        "{:<width$}  {:<10}  {:<7}  LIVE",
        "ENVIRONMENT", "SOURCE", "HISTORY"
    );
    for r in &rows {
        println!(
            "{:<width$}  {:<10}  {:<7}  {}",
            format!("{}/{}", r.app, r.env),
            r.source,
            if r.stored { "yes" } else { "no" },
            r.live
                .as_deref()
                .unwrap_or(if r.source == Source::StoreOnly.as_str() {
                    "(no longer configured or discovered; history kept)"
                } else {
                    "-"
                })
        );
    }
    let count = |s: Source| rows.iter().filter(|r| r.source == s.as_str()).count();
    println!(
        "{} environments: {} configured, {} discovered, {} store-only",
        rows.len(),
        count(Source::Config),
        count(Source::Discovery),
        count(Source::StoreOnly)
    );
    Ok(exit::OK)
}
