//! `/webhooks`: register endpoints for event types, read and change them, see every delivery attempt,
//! replay a delivery and rotate the signing secret.
//!
//! Shapes follow Resend's OpenAPI (`CreateWebhookRequest`, `GetWebhookResponse`…). Extensions: `url` and
//! `event_types` are accepted as aliases of `endpoint` and `events`; `GET /webhooks/{id}` adds
//! `disabled_reason` and the most recent deliveries; the `deliveries` routes are ours. The Resend SDKs'
//! `events` routes (list, get, replay, attempts) and `signing-secret/rotate` are served too: Resend's
//! "webhook event" is our delivery, with the delivery's id.
//!
//! [`endpoints`] holds the endpoints themselves, [`deliveries`] what was sent to them.

pub(crate) mod deliveries;
pub(crate) mod endpoints;

use axum::Router;
use axum::routing::{get, post};
use opensend_store::records::WebhookRecord;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(endpoints::list).post(endpoints::create))
        .route(
            "/webhooks/{id}",
            get(endpoints::show)
                .patch(endpoints::update)
                .delete(endpoints::remove),
        )
        .route(
            "/webhooks/{id}/rotate-secret",
            post(endpoints::rotate_secret),
        )
        .route("/webhooks/{id}/deliveries", get(deliveries::deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}",
            get(deliveries::delivery),
        )
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/replay",
            post(deliveries::replay),
        )
        // The paths the Resend SDKs call for the same things: an "event" of an endpoint is one of its
        // deliveries.
        .route(
            "/webhooks/{id}/signing-secret/rotate",
            post(endpoints::rotate_secret),
        )
        .route("/webhooks/{id}/events", get(deliveries::events))
        .route("/webhooks/{id}/events/{event_id}", get(deliveries::event))
        .route(
            "/webhooks/{id}/events/{event_id}/replay",
            post(deliveries::replay_event),
        )
        .route(
            "/webhooks/{id}/events/{event_id}/attempts",
            get(deliveries::event_attempts),
        )
}

/// The organization's endpoint `id`, or 404.
async fn load(
    state: &AppState,
    organization_id: Uuid,
    id: Uuid,
) -> Result<WebhookRecord, ApiError> {
    state
        .store
        .webhooks()
        .get(organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook"))
}
