//! OpenSend's servers: the public API and the ingester (axum), their configuration and startup checks, and
//! the operator commands the `opensend` binary exposes.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod broadcast;
pub mod config;
pub mod contact_import;
pub mod dashboard;
pub mod domains;
pub mod error;
mod extract;
pub mod http;
pub mod idempotency;
pub mod ingester;
pub mod invitations;
pub mod jobs;
pub mod outbound;
pub mod quota;
pub mod rate_limit;
pub mod request_log;
pub mod secrets_at_rest;
pub mod sending;
pub mod serve;
pub mod ses_event_writer;
pub mod setup;
pub mod signer_cache;
pub mod smtp;
pub mod startup_checks;
pub mod state;
pub mod telemetry;
pub mod tracking;
pub mod unsubscribe;
pub mod webhooks;

pub use state::{AppState, StateError};
