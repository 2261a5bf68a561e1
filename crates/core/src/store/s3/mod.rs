//! The S3 store (aws-sdk-s3), for AWS S3 and S3-compatible servers (MinIO, LocalStack).
//!
//! Create-only writes are `PutObject` with `If-None-Match: *` and compare-and-swap is
//! `PutObject` with `If-Match`, so S3 itself decides which of several racing writers
//! wins; [`classify`] turns S3's answers into the library's error kinds in one place.
//!
//! One file per job: the settings ([`options`]), the SDK client built from them
//! ([`client`]), failures classified ([`classify`]) and explained ([`errors`]), and the
//! [`Store`](super::Store) over a bucket and prefix ([`store`]).

mod classify;
mod client;
mod errors;
mod options;
mod store;

pub(crate) use classify::Op;
pub use client::S3Client;
pub use options::{S3Options, Sse};
pub use store::S3Store;
