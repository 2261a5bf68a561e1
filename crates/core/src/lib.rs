//! jetvault: versioned, restorable backups and releases of no-code app configurations,
//! on S3 or a local directory.
//!
//! This crate is the domain, over the [`store::Store`] trait: ids, the store layout, the
//! codec, stores, live targets, snapshots, releases, restore, retention, verify and
//! audit events. The `jetvault` crate's front ends (CLI, HTTP service, scheduler) are
//! thin callers of [`Vault`].

pub mod claim;
pub mod codec;
pub mod config;
pub mod crypt;
pub mod diff;
pub mod discovery;
pub mod envs;
pub mod error;
pub mod etag;
pub mod events;
pub mod filter;
pub mod host_limits;
pub mod id;
pub mod index;
pub mod layout;
pub mod live;
pub mod meta;
pub mod notify;
pub mod pin;
pub mod promote;
pub mod release;
pub mod repair;
pub mod restore;
pub mod restore_all;
pub mod retention;
pub mod schema;
pub mod selector;
pub mod snapshot;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testutil;
pub mod vault;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
pub use id::{AppId, EnvId, EnvRef, Label};
pub use meta::{SnapshotMeta, Trigger};
pub use promote::{PromoteOutcome, PromoteRequest};
pub use release::{Release, ReleaseKind, ReleasePointer, ReleaseRef, ReleaseRequest};
pub use selector::Selector;
pub use snapshot::{BackupOutcome, BackupRequest};
pub use vault::{Vault, VaultOptions};
