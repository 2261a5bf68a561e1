//! `jetvault serve`: the HTTP service and the scheduler, with graceful shutdown.
//!
//! On SIGTERM or SIGINT: stop the scheduler's ticks and refuse new writes, stop
//! accepting connections, then wait up to `server.shutdown_grace` for the requests and
//! backups in flight; exit 0 if they all finished, 1 if the grace ran out.
//!
//! With `[discovery]`, the environments it lists are added at start and read again every
//! `discovery.refresh`. On SIGHUP the config file is read again (schedules, environments,
//! tokens, discovery) and discovery runs; open connections are kept. A reload that fails
//! (bad TOML, an unreadable token) keeps the running config; a refresh that fails keeps
//! the last good list. The listen address, the store and the connection limits are read
//! at start only.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use jetvault::http::AppState;
use jetvault::http::auth::{Auth, AuthMode};
use jetvault::scheduler::Scheduler;
use jetvault::tasks::Tasks;
use jetvault_core::config::Config;
use jetvault_core::discovery::{self, Discovered, Discovery};
use jetvault_core::vault::Vault;
use jetvault_core::{Error, ErrorKind};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
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
pub async fn run(ctx: &Ctx, args: ServeArgs) -> anyhow::Result<u8> {
    let config = Arc::new(ctx.config.clone());
    let listen = config.server.listen.clone();
    // Read before anything else: a bad filter is a config error at start.
    let discovery = config.discovery.as_ref().map(Discovery::new).transpose()?;
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
    let loopback = is_loopback(&listen).await?;
    let auth = Auth::from_config(&config.server, loopback)?;
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
    let mut live = Reloader {
        global: ctx.global.clone(),
        listen: args.listen.clone(),
        loopback,
        state: state.clone(),
        base: ctx.config.clone(),
        discovery,
        last: Discovered::default(),
    };
    if let Some(found) = live.fetch().await {
        live.accept(found);
    }
    live.update();
    let mut scheduler = Scheduler::start(
        vault.clone(),
        &state.config.load(),
        state.metrics.clone(),
        tasks.clone(),
    )
    .await?;
    // Listened for before the address is printed: a signal sent once it is seen counts.
    let mut shutdown = Shutdown::new()?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;

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

    let mut refresh = live.interval();
    let signal = loop {
        tokio::select! {
            signal = shutdown.recv() => break signal,
            _ = hangup.recv() => {
                if live.reload() {
                    refresh = live.interval();
                }
            }
            () = tick(&mut refresh) => {}
        }
        // A slow discovery source does not hold up a shutdown.
        tokio::select! {
            signal = shutdown.recv() => break signal,
            found = live.fetch() => {
                if let Some(found) = found {
                    live.accept(found);
                }
            }
        }
        if live.update() {
            restart(&mut scheduler, &vault, &state, &tasks).await;
        }
    };
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

/// SIGTERM and SIGINT.
struct Shutdown {
    term: Signal,
    int: Signal,
}

impl Shutdown {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    /// Waits for SIGTERM or SIGINT; returns its name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Waits for the next discovery refresh; forever without discovery.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Brings the schedules to the configuration in force: only the environments added,
/// removed or changed are rescheduled when nothing else changed (a failure keeps the
/// previous schedules).
async fn restart(scheduler: &mut Scheduler, vault: &Vault, state: &AppState, tasks: &Tasks) {
    let config = state.config.load_full();
    if let Err(e) = scheduler
        .update(vault.clone(), &config, state.metrics.clone(), tasks.clone())
        .await
    {
        tracing::error!(error = %e.report(),
            "cannot start the new schedules; the previous ones keep running");
    }
}

/// What SIGHUP and discovery refreshes change: the configuration in force (the file's,
/// plus the environments discovered) and the tokens.
struct Reloader {
    global: super::GlobalArgs,
    listen: Option<String>,
    loopback: bool,
    state: AppState,
    /// The configuration as the file (and environment, and flags) give it.
    base: Config,
    discovery: Option<Discovery>,
    /// The last good discovery.
    last: Discovered,
}

impl Reloader {
    /// The refresh timer, its first tick one period from now.
    fn interval(&self) -> Option<tokio::time::Interval> {
        self.discovery.as_ref().map(|d| {
            let every = d.config().refresh;
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        })
    }

    /// Reads the discovery source; `None` (logged and counted) if it fails.
    async fn fetch(&self) -> Option<Discovered> {
        let d = self.discovery.as_ref()?;
        match d.run(&self.base).await {
            Ok(found) => {
                self.state
                    .discovery_metrics
                    .record_refresh(Some((found.envs.len(), found.skipped.len())));
                Some(found)
            }
            Err(e) => {
                self.state.discovery_metrics.record_refresh(None);
                tracing::error!(source = %d.config().describe(), error = %e.report(),
                    kept = self.last.envs.len(),
                    "discovery failed; the last good list of environments is kept");
                None
            }
        }
    }

    /// Keeps a good discovery as the last one, logging what changed.
    fn accept(&mut self, found: Discovered) {
        let added = found
            .envs
            .keys()
            .filter(|e| !self.last.envs.contains_key(*e))
            .count();
        let gone = self
            .last
            .envs
            .keys()
            .filter(|e| !found.envs.contains_key(*e))
            .count();
        if added > 0 || gone > 0 {
            tracing::info!(
                discovered = found.envs.len(),
                added,
                gone,
                skipped = found.skipped.len(),
                configured = found.configured.len(),
                "discovery: the list of environments changed (those gone keep their history)"
            );
        }
        self.last = found;
    }

    /// Puts the file's configuration plus the last discovery in force; whether the
    /// environments changed (their schedules then need restarting).
    fn update(&mut self) -> bool {
        let next = discovery::effective(&self.base, &self.last);
        let current = self.state.config.load();
        let changed =
            serde_json::to_value(&current.apps).ok() != serde_json::to_value(&next.apps).ok();
        self.state.config.store(Arc::new(next));
        self.state
            .discovered
            .store(Arc::new(self.last.envs.keys().cloned().collect()));
        changed
    }

    /// Reads the config file again and puts its tokens in force; on a failure (logged
    /// and counted) the running configuration is kept. Whether it was reloaded.
    fn reload(&mut self) -> bool {
        match self.load() {
            Ok((config, auth, discovery)) => {
                if config.store_url() != self.base.store_url()
                    || config.server.listen != self.base.server.listen
                {
                    tracing::warn!(
                        "SIGHUP: the store and the listen address change only at                         a restart; the running ones are kept"
                    );
                }
                for problem in config.secret_problems() {
                    tracing::warn!(
                        "{problem}; backups and restores of that environment fail                         until it is"
                    );
                }
                self.state.auth.store(Arc::new(auth));
                if discovery.is_none() {
                    self.last = Discovered::default();
                }
                self.discovery = discovery;
                self.base = config;
                self.state.discovery_metrics.record_reload(true);
                tracing::info!(
                    configured = self.base.envs().count(),
                    tokens = self.base.server.tokens.len(),
                    "SIGHUP: config reloaded"
                );
                true
            }
            Err(e) => {
                self.state.discovery_metrics.record_reload(false);
                tracing::error!(error = %format!("{e:#}"),
                    "SIGHUP: cannot reload the config; the running config is kept");
                false
            }
        }
    }

    fn load(&self) -> anyhow::Result<(Config, Auth, Option<Discovery>)> {
        let config = Ctx::new(self.global.clone(), self.listen.clone())?.config;
        let auth = Auth::from_config(&config.server, self.loopback)?;
        let discovery = config.discovery.as_ref().map(Discovery::new).transpose()?;
        Ok((config, auth, discovery))
    }
}
