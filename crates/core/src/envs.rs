//! The environments a store holds, found from its directories: what `verify` and
//! `prune` cover when not given one environment.

use crate::error::Result;
use crate::id::{AppId, EnvId, EnvRef};
use crate::layout;
use crate::vault::Vault;

impl Vault {
    /// Every environment that has a directory in the store, in id order (names that
    /// are not valid ids are skipped with a warning).
    ///
    /// # Errors
    /// Store errors.
    pub async fn stored_envs(&self) -> Result<Vec<EnvRef>> {
        let mut out = Vec::new();
        for app in self.store().list_dirs(layout::APPS_PREFIX).await? {
            let Ok(app) = AppId::new(&app) else {
                tracing::warn!(app, "skipping a store directory that is not an app id");
                continue;
            };
            out.extend(self.stored_envs_of(&app).await?);
        }
        out.sort();
        Ok(out)
    }

    /// Every environment of `app` that has a directory in the store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn stored_envs_of(&self, app: &AppId) -> Result<Vec<EnvRef>> {
        let mut out = Vec::new();
        for env in self.store().list_dirs(&layout::envs_prefix(app)).await? {
            match EnvId::new(&env) {
                Ok(env) => out.push(EnvRef {
                    app: app.clone(),
                    env,
                }),
                Err(_) => {
                    tracing::warn!(%app, env, "skipping a store directory that is not an env id");
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The environments a command covers: `app`/`env` when both are given (whether
    /// stored or not), the stored environments of `app`, or every stored environment
    /// (those named `env` if only `env` is given).
    ///
    /// # Errors
    /// Store errors.
    pub async fn select_envs(
        &self,
        app: Option<&AppId>,
        env: Option<&EnvId>,
    ) -> Result<Vec<EnvRef>> {
        Ok(match (app, env) {
            (Some(app), Some(env)) => vec![EnvRef {
                app: app.clone(),
                env: env.clone(),
            }],
            (Some(app), None) => self.stored_envs_of(app).await?,
            (None, env) => {
                let mut all = self.stored_envs().await?;
                all.retain(|e| env.is_none_or(|env| &e.env == env));
                all
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::id::{AppId, EnvId, EnvRef};
    use crate::meta::Trigger;
    use crate::snapshot::BackupRequest;
    use crate::store::LocalStore;
    use crate::vault::{Vault, VaultOptions};

    #[tokio::test]
    async fn lists_stored_envs() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::new(
            Arc::new(LocalStore::open(dir.path()).unwrap()),
            VaultOptions::default(),
        );
        for (a, e) in [("crm", "production"), ("crm", "staging"), ("hr", "dev")] {
            let env = EnvRef::parse(a, e).unwrap();
            vault
                .backup(&env, BackupRequest::new(&b"{}"[..], Trigger::Manual))
                .await
                .unwrap();
        }
        let envs: Vec<String> = vault
            .stored_envs()
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(envs, ["crm/production", "crm/staging", "hr/dev"]);

        let crm = AppId::new("crm").unwrap();
        let staging = EnvId::new("staging").unwrap();
        let some = |v: Vec<EnvRef>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            some(vault.select_envs(Some(&crm), None).await.unwrap()),
            ["crm/production", "crm/staging"]
        );
        assert_eq!(
            some(vault.select_envs(None, Some(&staging)).await.unwrap()),
            ["crm/staging"]
        );
        assert_eq!(vault.select_envs(None, None).await.unwrap().len(), 3);
    }
}
