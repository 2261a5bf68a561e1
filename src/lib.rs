//! jetvault's front ends over [`jetvault_core`]: the HTTP service, the scheduler, and
//! what both share (metrics, the writes in flight). The CLI is the binary (`main.rs`).
//!
//! Nothing here talks to a store directly: every operation is a call on
//! [`jetvault_core::Vault`].

pub mod http;
pub mod metrics;
pub mod notify;
pub mod scheduler;
pub mod tasks;
