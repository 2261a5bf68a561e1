//! `jetvault doctor`: is the store reachable and safe, are the live targets readable.

use clap::Args;
use jetvault_core::{ErrorKind, codec, store};
use serde::Serialize;

use super::{Ctx, exit, print_json};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Skip reading the live targets.
    #[arg(long)]
    pub skip_live: bool,
}

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    ok: bool,
    detail: String,
    #[serde(skip)]
    code: u8,
}

impl Check {
    fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            ok: true,
            detail: detail.into(),
            code: exit::OK,
        }
    }
    fn fail(check: impl Into<String>, e: &jetvault_core::Error) -> Self {
        Self {
            check: check.into(),
            ok: false,
            detail: e.report(),
            code: exit::code_for(e.kind()),
        }
    }
}

pub async fn run(ctx: &Ctx, args: DoctorArgs) -> anyhow::Result<u8> {
    let mut checks = Vec::new();
    checks.push(Check::pass(
        "config",
        match &ctx.global.config {
            Some(p) => format!("{} parsed", p.display()),
            None => "no config file; using defaults and flags".to_string(),
        },
    ));
    let url = ctx.config.store_url();
    match ctx.vault().await {
        Err(e) => checks.push(Check {
            check: "store".into(),
            ok: false,
            detail: format!("{url}: {e:#}"),
            code: exit::UNAVAILABLE,
        }),
        Ok(vault) => {
            let s = vault.store();
            match s.check().await {
                Err(e) => checks.push(Check::fail(format!("store {}", s.describe()), &e)),
                Ok(()) => {
                    checks.push(Check::pass(format!("store {}", s.describe()), "reachable"));
                    checks.push(match vault.read_marker().await {
                        Ok(m) => Check::pass(
                            "store marker",
                            format!(
                                "layout {} (created {} by {})",
                                m.format, m.created_at, m.created_by
                            ),
                        ),
                        Err(e) if e.kind() == ErrorKind::NotFound => Check::pass(
                            "store marker",
                            "empty store; it is initialised by the first backup",
                        ),
                        Err(e) => Check::fail("store marker", &e),
                    });
                    checks.push(match store::precondition_self_test(s.as_ref()).await {
                        Ok(()) => Check::pass(
                            "conditional writes",
                            "create-only and compare-and-swap are honoured",
                        ),
                        Err(e) => Check::fail("conditional writes", &e),
                    });
                }
            }
            if !args.skip_live {
                for (env, env_config) in ctx.config.envs() {
                    if env_config.live.is_none() {
                        continue;
                    }
                    let name = format!("live {env}");
                    let result = async {
                        let t = jetvault_core::live::open_configured(&ctx.config, &env).await?;
                        let raw = t.read(vault.options().max_size).await?;
                        codec::check_json(&raw, &format!("live configuration {}", t.describe()))?;
                        Ok::<_, jetvault_core::Error>(format!(
                            "{} readable, {} bytes of JSON",
                            t.describe(),
                            raw.len()
                        ))
                    }
                    .await;
                    checks.push(match result {
                        Ok(detail) => Check::pass(name, detail),
                        Err(e) => Check::fail(name, &e),
                    });
                }
            }
        }
    }
    let first_failure = checks.iter().find(|c| !c.ok).map(|c| c.code);
    if ctx.json() {
        print_json(&checks)?;
    } else {
        for c in &checks {
            println!(
                "{} {:<24} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.check,
                c.detail
            );
        }
        if first_failure.is_some() {
            println!("\nSome checks failed; each line says what to fix.");
        }
    }
    Ok(first_failure.unwrap_or(exit::OK))
}
