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

use opensend_store::records::WebhookRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(endpoints::list, endpoints::create))
        .routes(routes!(
            endpoints::show,
            endpoints::update,
            endpoints::remove
        ))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(deliveries::deliveries))
        .routes(routes!(deliveries::delivery))
        .routes(routes!(deliveries::replay))
        // The paths the Resend SDKs call for the same things: an "event" of an endpoint is one of its
        // deliveries.
        .routes(routes!(endpoints::rotate_signing_secret))
        .routes(routes!(deliveries::events))
        .routes(routes!(deliveries::event))
        .routes(routes!(deliveries::replay_event))
        .routes(routes!(deliveries::event_attempts))
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
