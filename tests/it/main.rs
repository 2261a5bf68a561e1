//! jetvault's integration tests: one crate, one harness ([`harness`]). Each module was
//! a test binary of its own; they all drive the real `jetvault` binary (or the library
//! on the same stores) against a local directory, LocalStack and moto, Node-RED, and a
//! headless Chromium for the console.
//!
//! Run them with `scripts/test`, which starts LocalStack, moto, Node-RED and chromedriver;
//! `scripts/test cli_output` runs one module (nextest filters match `module::test`).

mod harness;

mod batch_cli;
mod cli_output;
mod cli_release;
mod console;
mod console_actions;
mod console_quickstart;
mod console_runs;
mod crash_repair;
mod diff_keyed;
mod discovery;
mod encryption;
mod exit_codes;
mod http_api;
mod http_conn;
mod http_pins_pages;
mod http_restore_route;
mod http_verify_prune;
mod live_backoff;
mod live_http;
mod live_n8n;
mod live_oauth;
mod live_recreate;
mod node_red;
mod node_red_parts;
mod notify;
mod platform_examples;
mod prune_cli;
mod pyclient;
mod release_race;
mod replicas;
mod restore_all;
mod restore_all_http;
mod restore_cli;
mod restore_http;
mod restore_s3;
mod s3_backup;
mod s3_live;
mod schema_cli;
mod secrets;
mod serve_scheduler;
mod serve_stalled_store;
mod store_conformance;
mod store_readonly;
