//! `jetvault events`: an environment's audit events, newest first.

use clap::Args;
use jetvault_core::events::Event;

use super::{Ctx, env_ref, exit, print_json};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// How many events to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub async fn run(ctx: &Ctx, args: EventsArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let vault = ctx.vault().await?;
    let events = vault.events(&env, args.limit).await?;
    if ctx.json() {
        print_json(&events)?;
        return Ok(exit::OK);
    }
    if events.is_empty() {
        println!("{env} has no events");
        return Ok(exit::OK);
    }
    println!(
        "{:<23}  {:<9}  {:>7}  {:<24}  {:<8}  DETAILS",
        "AT (UTC)", "ACTION", "VERSION", "WHO", "VIA"
    );
    for e in &events {
        println!(
            "{:<23}  {:<9}  {:>7}  {:<24}  {:<8}  {}",
            e.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            e.action.to_string(),
            e.version.map_or_else(|| "-".into(), |v| format!("v{v}")),
            e.actor.who.as_deref().unwrap_or("-"),
            e.actor.via,
            details(e, 120)
        );
    }
    Ok(exit::OK)
}

/// The event's details as `key=value` pairs on one line, shortened to `width`.
fn details(e: &Event, width: usize) -> String {
    let Some(map) = e.details.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (k, v) in map {
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) if o.contains_key("kind") => {
                let kind = o["kind"].as_str().unwrap_or_default();
                match o.get("snapshot").and_then(|s| s.get("version")) {
                    Some(v) => format!("{kind}:v{v}"),
                    None => kind.to_string(),
                }
            }
            other => other.to_string(),
        };
        parts.push(format!("{k}={text}"));
    }
    let line = parts.join(" ");
    if line.chars().count() <= width {
        line
    } else {
        let cut: String = line.chars().take(width.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}
