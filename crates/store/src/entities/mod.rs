//! One module per table. Models are plain data; queries live in `repos`.

pub mod api_key;
pub mod delivery_job;
pub mod dkim_key;
pub mod domain;
pub mod email;
pub mod email_attachment;
pub mod email_event;
pub mod email_provider_message;
pub mod email_recipient;
pub mod idempotency_key;
pub mod job_run;
pub mod organization;
pub mod organization_event;
pub mod provider_event;
pub mod received_attachment;
pub mod received_email;
pub mod suppression;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_message;
