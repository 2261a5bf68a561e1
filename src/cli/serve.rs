//! `jetvault serve`: the HTTP service and the scheduler, with graceful shutdown.
//!
//! On SIGTERM or SIGINT: stop the scheduler's ticks and refuse new writes, stop
//! accepting connections, then wait up to `server.shutdown_grace` for the requests and
//! backups in flight; exit 0 if they all finished, 1 if the grace ran out.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use jetvault::http::auth::{Auth, AuthMode};
use jetvault::scheduler::Scheduler;
use jetvault::tasks::Tasks;
use jetvault_core::{Error, ErrorKind};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Ctx;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.listen and JETVAULT_SERVER__LISTEN); port
    /// 0 picks a free port, and the address bound is printed on standard output.
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs the service; `--listen` is already layered into `server.listen` by [`Ctx`].
pub async fn run(ctx: &Ctx, _args: ServeArgs) -> anyhow::Result<u8> {
    let config = Arc::new(ctx.config.clone());
    let listen = config.server.listen.clone();
    for warning in config.secret_file_warnings() {
        tracing::warn!("{warning}");
    }
    for problem in config.secret_problems() {
        tracing::warn!("{problem}; backups and restores of that environment fail until it is");
    }
    let vault = ctx.vault().await?;

    match jetvault_core::store::precondition_self_test(vault.store().as_ref()).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnsafeStore => return Err(e.into()),
        Err(e) => tracing::warn!(store = %vault.store().describe(), error = %e.report(),
            "cannot check that the store honours conditional writes; /readyz reports \
             whether it is reachable"),
    }

    // Decided before binding: without tokens, a non-loopback address is refused.
    let auth = Auth::from_config(&config.server, is_loopback(&listen).await?)?;
    let listener = TcpListener::bind(&listen).await.map_err(|e| {
        Error::config(format!("cannot listen on {listen}: {e}"))
            .with_hint("pick another address with --listen or server.listen")
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    match auth.mode() {
        AuthMode::OpenLoopback => tracing::warn!(
            "NO TOKENS CONFIGURED: every request from this machine may read, back up, \
             release and restore. Add [[server.tokens]] to the config before exposing it"
        ),
        AuthMode::ReadOnlyPublic => {
            tracing::warn!("no tokens configured: reads are public and every write is refused")
        }
        AuthMode::Tokens => {}
    }

    raise_open_files_limit();
    let tasks = Tasks::default();
    let (router, state) =
        jetvault::http::build(vault.clone(), config.clone(), auth, tasks.clone())?;
    let mut scheduler =
        Scheduler::start(vault, &config, state.metrics.clone(), tasks.clone()).await?;

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server = {
        let state = state.clone();
        tokio::spawn(async move {
            jetvault::http::serve(listener, router, &state, async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .await
        })
    };
    tracing::info!(%addr, store = %state.vault.store().describe(),
        scheduled = scheduler.envs().len(), "jetvault is serving");
    // Tests and scripts read the bound address (port 0 picks one) from this line.
    println!("jetvault listening on http://{addr}");
    let _ = std::io::stdout().flush();

    let signal = shutdown_signal().await?;
    let grace = config.server.shutdown_grace;
    tracing::info!(signal, in_flight = tasks.running(), grace = ?grace,
        "shutting down: no new connections or backups; finishing what is in flight");
    scheduler.stop().await;
    tasks.close();
    let _ = stop_tx.send(true);

    let drained = tokio::time::timeout(grace, async {
        let served = server.await;
        tasks.wait_idle().await;
        served
    })
    .await;
    match drained {
        Ok(Ok(Ok(()))) => {
            tracing::info!("stopped cleanly");
            Ok(super::exit::OK)
        }
        Ok(Ok(Err(e))) => Err(anyhow::Error::new(e).context("the HTTP server failed")),
        Ok(Err(e)) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
        Err(_) => {
            tracing::error!(in_flight = tasks.running(), grace = ?grace,
                "shutdown grace ran out with work in flight; it is abandoned (a backup \
                 cut short writes nothing; raise server.shutdown_grace if this recurs)");
            Ok(super::exit::INTERNAL)
        }
    }
}

/// Raises the soft limit on open files to the hard one, as servers do: every connection
/// and every released configuration held for `sendfile` is a file descriptor, and the
/// usual soft limit of 1024 is low for that.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(from = ?limit.current, to = ?limit.maximum,
                "raised the open files limit"),
            Err(e) => tracing::debug!(error = %e, "cannot raise the open files limit"),
        }
    }
}

/// Whether every address `listen` resolves to is a loopback address.
async fn is_loopback(listen: &str) -> anyhow::Result<bool> {
    let addrs: Vec<_> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| {
            Error::config(format!(
                "cannot resolve the listen address {listen:?}: {e}; use HOST:PORT, e.g. \
                 127.0.0.1:8080"
            ))
        })?
        .collect();
    Ok(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()))
}

/// Waits for SIGTERM or SIGINT; returns its name.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
