//! `jetvault restore`: push a snapshot back to the live configuration, safely.
//!
//! The work is `Vault::plan_restore` and `Vault::restore` (the same code the HTTP API
//! runs); this file shows the plan, asks for confirmation, and reports.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{ArgGroup, Args};
use jetvault_core::error::{Hint, Step};
use jetvault_core::live::LiveTarget;
use jetvault_core::live::file::FileTarget;
use jetvault_core::restore::{
    LiveState, PreRestore, Recorded, RestorePlan, RestoreReport, RestoreRequest, Verification,
};
use jetvault_core::selector::parse_time;
use jetvault_core::{Error, Label, Selector};

use super::{Ctx, env_ref, exit, human_size, print_json};

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("which")
        .required(true)
        .args(["version", "release", "at"]),
))]
pub struct RestoreArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// The version to restore: a number, `latest`, or `release` (the current release).
    pub version: Option<String>,
    /// Restore the snapshot of this release label.
    #[arg(long, value_name = "LABEL")]
    pub release: Option<String>,
    /// Restore the newest snapshot taken at or before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Show the diff against what is live and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (also: go on when live is truly missing: a 404 or
    /// 410, no file, no object; and create a deleted object anew when the live target
    /// has a `create` table).
    #[arg(long, short)]
    pub yes: bool,
    /// Overwrite live even when it can't be read (a 5xx, a timeout, a refused
    /// connection, a 401 or 403, after retries) or snapshotted: what it holds is lost.
    /// Recorded in the audit event.
    #[arg(long, conflicts_with = "to")]
    pub overwrite_unreadable_live: bool,
    /// Restore even if the snapshot fails the environment's JSON Schema (recorded in
    /// the audit event).
    #[arg(long, conflicts_with = "to")]
    pub skip_schema_check: bool,
    /// Also move the release pointer to the restored snapshot.
    #[arg(long, conflicts_with = "to")]
    pub publish: bool,
    /// Write the configuration to this file and leave live alone.
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
    /// Save what is live to this new file instead of as a pre-restore snapshot in the
    /// store (for a store that can't be written, such as a read-only copy); it is read
    /// back and checked before anything is pushed. An existing file is refused.
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub save_live_to: Option<PathBuf>,
    /// Who restores.
    #[arg(long)]
    pub author: Option<String>,
    /// Why (kept in the audit event; the release notes with --publish).
    #[arg(long, short)]
    pub message: Option<String>,
    /// Shorten values in the --dry-run diff to this many characters.
    #[arg(long, default_value_t = 100)]
    pub width: usize,
}

fn source(args: &RestoreArgs) -> anyhow::Result<Selector> {
    Ok(match (&args.version, &args.release, &args.at) {
        (Some(v), None, None) => v.parse()?,
        (None, Some(label), None) => Selector::Release(Label::new(label.as_str())?),
        (None, None, Some(at)) => Selector::At(parse_time(at)?),
        _ => {
            return Err(Error::invalid(
                "give exactly one of a version, --release LABEL or --at TIME",
            )
            .into());
        }
    })
}

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let source = source(&args)?;
    let vault = ctx.vault().await?;
    let target: Arc<dyn LiveTarget> = match &args.to {
        Some(path) => Arc::new(FileTarget::new(path.clone())),
        None => jetvault_core::live::open_configured(&ctx.config, &env).await?,
    };
    if let Some(path) = &args.save_live_to
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(Error::invalid(format!(
            "{} exists; --save-live-to takes a new file, so that no earlier copy of live \
             is overwritten (nothing was changed)",
            path.display()
        ))
        .into());
    }
    let keys = jetvault_core::diff::DiffOptions::for_env(&ctx.config, &env)?;
    let plan = vault
        .plan_restore_with(&env, target.as_ref(), &source, keys)
        .await?;
    // How a deleted object would be created anew, when the target says and live is gone.
    let creates = target
        .creates()
        .filter(|_| args.to.is_none() && matches!(plan.live, LiveState::Missing { .. }));

    if args.dry_run {
        if ctx.json() {
            print_json(&plan)?;
        } else {
            print_dry_run(&plan, args.to.is_some(), args.width);
            if let Some(how) = &creates {
                println!("{}", creates_line(how));
            }
        }
        return Ok(exit::OK);
    }

    let overwrites = !plan.already_live && matches!(plan.live, LiveState::Present { .. });
    let needs_consent = if args.to.is_some() {
        overwrites
    } else {
        !plan.already_live || args.publish
    };
    if needs_consent && !args.yes {
        if !ctx.json() || std::io::stdin().is_terminal() {
            print_plan(&plan, args.to.is_some(), args.publish);
            if let Some(how) = &creates {
                eprintln!("  create    {}", creates_line(how));
            }
            if let Some(path) = &args.save_live_to {
                eprintln!(
                    "  instead   what is live will be saved to {}, not in the store",
                    path.display()
                );
            }
        }
        match confirm()? {
            Consent::Yes => {}
            Consent::No => {
                eprintln!("aborted: nothing was changed");
                return Ok(exit::ABORTED);
            }
            Consent::NoTerminal => {
                eprintln!(
                    "error: refusing to restore without confirmation: standard input is not \
                     a terminal; pass --yes to confirm (nothing was changed)"
                );
                return Ok(exit::ABORTED);
            }
        }
    }

    let actor = ctx.actor(args.author.as_deref());
    let report = if args.to.is_some() {
        vault
            .restore_copy(&env, target.as_ref(), &source, &actor)
            .await?
    } else {
        let mut req = RestoreRequest::new(source, actor);
        // Consent covers a truly missing live (the plan above said so); an unreadable
        // one needs its own flag.
        req.allow_missing_live = true;
        // ... and creating a deleted object anew, when the target has a create table.
        req.create_if_missing = true;
        req.allow_unreadable_live = args.overwrite_unreadable_live;
        req.publish = args.publish;
        req.skip_schema_check = args.skip_schema_check;
        req.message = args.message.clone();
        req.save_live_to = args
            .save_live_to
            .clone()
            .map(|p| Arc::new(FileTarget::new(p)) as Arc<dyn LiveTarget>);
        vault.restore(&env, target.as_ref(), req).await?
    };
    let undo: Vec<String> = report
        .undo
        .iter()
        .filter_map(|u| exit::command(&u.step(&env)))
        .map(|c| with_globals(ctx, &c))
        .collect();
    if ctx.json() {
        let mut value = serde_json::to_value(&report)?;
        value["undo"] = serde_json::json!(undo);
        print_json(&value)?;
    } else {
        print_report(&report, &undo, args.to.is_some());
    }
    if let Recorded::Failed { error } = &report.recorded {
        let backup = Hint::steps(
            "to record what is live, back it up",
            [Step::Backup((&env).into())],
        );
        eprintln!(
            "error: {error}; the restore itself succeeded, but the latest snapshot is still \
             the one from before the restore; {}",
            exit::render_hint(&backup)
        );
        if report.publish_error.is_none() {
            return Ok(exit::PARTIAL);
        }
    }
    if let Some(e) = &report.publish_error {
        let publish = Hint::steps(
            "publish it",
            [Step::Release((&env).into(), Some(report.restored.version))],
        );
        eprintln!("error: {e}; {}", exit::render_hint(&publish));
        return Ok(exit::PARTIAL);
    }
    Ok(exit::OK)
}

enum Consent {
    Yes,
    No,
    NoTerminal,
}

/// Asks on the terminal; never reads a pipe as consent.
fn confirm() -> anyhow::Result<Consent> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(Consent::NoTerminal);
    }
    eprint!("Proceed? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Consent::Yes,
        _ => Consent::No,
    })
}

/// Adds the `--config`/`--store` given to this run to a printed command, so that it
/// works when pasted as it is.
fn with_globals(ctx: &Ctx, cmd: &str) -> String {
    let mut globals = String::new();
    if let Some(c) = &ctx.global.config {
        globals.push_str(&format!(
            " --config {}",
            shell_quote(&c.display().to_string())
        ));
    }
    if let Some(s) = &ctx.global.store {
        globals.push_str(&format!(" --store {}", shell_quote(s)));
    }
    match cmd.strip_prefix("jetvault") {
        Some(rest) if !globals.is_empty() => format!("jetvault{globals}{rest}"),
        _ => cmd.to_string(),
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What the plan says when a deleted object would be created anew.
fn creates_line(how: &str) -> String {
    format!(
        "if the platform has deleted the object, it will be created anew ({how}); the \
         platform gives it a new identity, and the config must then point at it (printed \
         after the restore; the config file is not changed)"
    )
}

fn snapshot_line(plan: &RestorePlan) -> String {
    let s = &plan.snapshot;
    format!(
        "v{}, taken {} by {} ({}), {}, sha256 {}",
        s.version,
        s.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        s.author.as_deref().unwrap_or("-"),
        s.trigger,
        human_size(s.size),
        &s.sha256[..12]
    )
}

fn live_line(plan: &RestorePlan) -> String {
    match &plan.live {
        LiveState::Present { sha256, size, json } => {
            let what = if plan.already_live {
                "already holds this snapshot".to_string()
            } else if let Some(d) = &plan.diff {
                let n = d.changes().len();
                format!("differs: {n} change{}", if n == 1 { "" } else { "s" })
            } else if !json {
                "holds something that is not JSON".to_string()
            } else {
                "differs".to_string()
            };
            format!(
                "{what} (now {}, sha256 {})",
                human_size(*size),
                &sha256[..12]
            )
        }
        LiveState::Missing { reason } => format!("MISSING ({reason})"),
        LiveState::Unreadable { reason, .. } => format!("UNREADABLE ({reason})"),
    }
}

fn print_plan(plan: &RestorePlan, to_file: bool, publish: bool) {
    let env = &plan.env;
    if to_file {
        eprintln!("Write {env} v{} to {}", plan.snapshot.version, plan.target);
        eprintln!("  snapshot  {}", snapshot_line(plan));
        eprintln!("  file      {}: it will be replaced", live_line(plan));
        return;
    }
    eprintln!("Restore {env} to v{}", plan.snapshot.version);
    eprintln!("  snapshot  {}", snapshot_line(plan));
    eprintln!("  live      {}: {}", plan.target, live_line(plan));
    match &plan.live {
        LiveState::Present { json: true, .. } if !plan.already_live => eprintln!(
            "  first     what is live will be saved as a pre-restore snapshot \
             (--dry-run shows the diff)"
        ),
        LiveState::Present { .. } if plan.already_live => {}
        _ => eprintln!(
            "  WARNING   no pre-restore snapshot is possible: what is live now can't be \
             saved and will be overwritten"
        ),
    }
    if publish {
        eprintln!(
            "  publish   v{} becomes the release of {env}",
            plan.snapshot.version
        );
    }
}

fn print_dry_run(plan: &RestorePlan, to_file: bool, width: usize) {
    let env = &plan.env;
    let v = plan.snapshot.version;
    println!(
        "dry run: {} {env} v{v} ({}); nothing changed",
        if to_file { "writing" } else { "restoring" },
        snapshot_line(plan)
    );
    if let Some(v) = &plan.schema_violations {
        println!(
            "the snapshot FAILS the environment's JSON Schema ({}); a restore needs \
             --skip-schema-check:\n{}",
            v.summary(),
            v.listing()
        );
    }
    match (&plan.live, &plan.diff) {
        _ if plan.already_live => {
            println!("{} already holds v{v}: nothing would change", plan.target)
        }
        (LiveState::Present { .. }, Some(diff)) => {
            println!("--- {} (live now)\n+++ v{v}", plan.target);
            print!("{}", diff.render(width));
        }
        (LiveState::Present { .. }, None) => println!(
            "{} holds something that is not JSON; it would be replaced{}",
            plan.target,
            if to_file {
                ""
            } else {
                " without a pre-restore snapshot"
            }
        ),
        (LiveState::Missing { reason }, _) => println!(
            "{} is missing ({reason}); the restore would create it",
            plan.target
        ),
        (LiveState::Unreadable { reason, .. }, _) => println!(
            "{} can't be read ({reason}); the restore would overwrite it without a \
             pre-restore snapshot",
            plan.target
        ),
    }
}

fn print_report(r: &RestoreReport, undo: &[String], to_file: bool) {
    let env = &r.env;
    let v = r.restored.version;
    if to_file {
        println!(
            "{env} v{v} written to {} (sha256 {}, read back and verified); live left alone",
            r.target,
            &r.restored.sha256[..12]
        );
        return;
    }
    if !r.pushed {
        println!(
            "{env}: {} already holds v{v} (sha256 {}); nothing pushed",
            r.target,
            &r.restored.sha256[..12]
        );
    } else {
        let how = match r.verified {
            Verification::Sha256 => "read back, sha256 verified",
            Verification::EquivalentJson => {
                "read back as the same JSON (the target reformatted the bytes)"
            }
            Verification::EqualIgnoring => {
                "read back as the same JSON but for the filter's ignore paths"
            }
            Verification::OptionalPartsKept => {
                "read back as written; the optional parts this version does not hold were \
                 left as they were"
            }
            Verification::NotPushed => "not pushed",
        };
        println!(
            "{env}: restored v{v} to {} (sha256 {}; {how})",
            r.target,
            &r.restored.sha256[..12]
        );
    }
    if let Some(c) = &r.recreated {
        println!(
            "the object was gone from the platform: created anew with the identity {}",
            c.id
        );
        println!("to point {env} at it, change the config file (jetvault does not rewrite it):");
        for line in c.config_change.toml().lines() {
            println!("  {line}");
        }
    }
    match &r.pre_restore {
        PreRestore::Saved { snapshot } => println!(
            "what was live before is saved as v{} (trigger pre-restore)",
            snapshot.version
        ),
        PreRestore::Reused { snapshot } => println!(
            "what was live before equals v{} (the latest snapshot), kept as the undo point",
            snapshot.version
        ),
        PreRestore::Impossible {
            reason,
            overridden_unreadable,
        } => {
            println!("no pre-restore snapshot: {reason}");
            if *overridden_unreadable {
                println!("overwritten unsaved, as --overwrite-unreadable-live asked");
            }
        }
        PreRestore::NotNeeded => {}
        PreRestore::SavedElsewhere { target, sha256, .. } => println!(
            "what was live before is saved in {target} (sha256 {}; read back and verified), \
             not in the store",
            &sha256[..12]
        ),
    }
    match &r.recorded {
        Recorded::Saved { snapshot } => println!(
            "what is live now is recorded as v{} (trigger restore, of v{v}): the latest snapshot",
            snapshot.version
        ),
        Recorded::Latest { snapshot } if snapshot.version != v => println!(
            "what is live now equals v{}, the latest snapshot",
            snapshot.version
        ),
        Recorded::Latest { .. } => println!("v{v} is the latest snapshot"),
        Recorded::Failed { .. } | Recorded::NotRecorded => {}
    }
    match &r.published {
        Some(p) if p.changed => println!("published v{} as release {}", p.version, p.label),
        Some(p) => println!("v{} already is the release ({})", p.version, p.label),
        None => {}
    }
    match undo {
        [] if r.pushed => match &r.pre_restore {
            PreRestore::SavedElsewhere { target, .. } => {
                println!("to undo: put the content of {target} back as the live configuration")
            }
            PreRestore::Impossible {
                overridden_unreadable: true,
                ..
            } => println!(
                "nothing to undo to: what live held could not be read, so it was not saved"
            ),
            _ => println!("nothing to undo to: live had no configuration to save"),
        },
        [] => {}
        [one] => println!("to undo: {one}"),
        many => {
            println!("to undo:");
            for c in many {
                println!("  {c}");
            }
        }
    }
}
