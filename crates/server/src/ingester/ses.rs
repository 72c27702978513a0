//! `POST /events/ses`: Amazon SES events about sent emails, delivered by Amazon SNS.
//!
//! Every message is verified first ([`SnsVerifier`]: topic in `SES_EVENTS_SNS_TOPIC_ARN`, `Timestamp` within
//! the last hour, certificate from an Amazon SNS host, RSA signature v1 or v2); a refused one writes nothing
//! and is answered with our JSON error and the refusal's status (400 malformed, 403 not for us or not
//! authentic, 413 too large, and 503 when the certificate could not be fetched, so SNS tries again later).
//! Then, by `Type`:
//!
//! - `SubscriptionConfirmation`: the subscription is confirmed by GETting its `SubscribeURL` (which the
//!   verifier has already checked is an SNS URL), once the message verified.
//! - `UnsubscribeConfirmation`: logged, nothing else (re-subscribing is the operator's decision).
//! - `Notification`: its `Message` is an SES event. The email is found by SES's message id, and the event is
//!   applied once, all of it in one transaction ([`opensend_store::repos::provider_events`]): status moved
//!   forward, recipients' outcomes, suppressions, the email event and its webhooks. A `MessageId` applied
//!   before is acknowledged without effect. An event about an email we do not know (another system on the
//!   same SES account) is acknowledged and dropped.
//!
//! A database failure answers 5xx without having written anything, so SNS's retry applies the event.
//!
//! Events of requests in flight together are written together, one transaction per batch (see
//! [`crate::ses_event_writer`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opensend_core::ErrorCode;
use opensend_core::webhook::payload::timestamp as payload_timestamp;
use opensend_core::{EmailStatus, RecipientStatus};
use opensend_mail::ses_events::{
    BounceType, SesEvent, SesEventDetails, SesNotification, parse_ses_event,
};
use opensend_mail::sns::{SnsMessageType, SnsRefusal, VerifiedSnsMessage};
use opensend_store::repos::provider_events::{self, ApplyOutcome, ProviderEvent, RecipientChange};
use opensend_store::repos::suppressions::Reason;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// The header SNS names the message type in.
pub const MESSAGE_TYPE_HEADER: &str = "x-amz-sns-message-type";

/// Our error JSON with a status of the caller's choosing (the SNS refusals' own statuses).
fn error(status: u16, code: ErrorCode, message: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(json!({
            "statusCode": status.as_u16(),
            "name": code.as_str(),
            "message": message,
        })),
    )
        .into_response()
}

fn refused(refusal: &SnsRefusal) -> Response {
    let status = refusal.http_status();
    let code = match status {
        413 => ErrorCode::PayloadTooLarge,
        503 => ErrorCode::ServiceUnavailable,
        _ => ErrorCode::ValidationError,
    };
    if refusal.is_temporary() {
        tracing::warn!(code = refusal.code(), error = %refusal, "SNS message not verified yet");
    } else {
        tracing::warn!(code = refusal.code(), error = %refusal, "SNS message refused");
    }
    error(
        status,
        code,
        format!("SNS message refused ({}): {refusal}.", refusal.code()),
    )
}

fn accepted(message: &VerifiedSnsMessage, result: &str, extra: Value) -> Response {
    let mut body = json!({
        "object": "sns_message",
        "type": message.message_type.as_str(),
        "message_id": message.message_id,
        "result": result,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    Json(body).into_response()
}

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(verifier) = &state.ses_sns else {
        tracing::warn!(
            "an SNS message arrived at /events/ses, but SES_EVENTS_SNS_TOPIC_ARN is not set"
        );
        return error(
            403,
            ErrorCode::ValidationError,
            "SES events are not accepted here: SES_EVENTS_SNS_TOPIC_ARN is not set on this server."
                .to_owned(),
        );
    };
    let type_header = headers
        .get(MESSAGE_TYPE_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let message = match verifier
        .verify_with_type_header(&body, type_header.as_deref())
        .await
    {
        Ok(message) => message,
        Err(refusal) => return refused(&refusal),
    };

    match message.message_type {
        SnsMessageType::SubscriptionConfirmation => {
            match verifier.confirm_subscription(&message).await {
                Ok(()) => {
                    tracing::info!(topic = %message.topic_arn, "SNS subscription confirmed");
                    accepted(&message, "subscription_confirmed", json!({}))
                }
                Err(e) => {
                    tracing::warn!(topic = %message.topic_arn, error = %e, "confirming the SNS subscription failed");
                    error(
                        503,
                        ErrorCode::ServiceUnavailable,
                        format!("The subscription could not be confirmed now: {e}."),
                    )
                }
            }
        }
        SnsMessageType::UnsubscribeConfirmation => {
            tracing::warn!(topic = %message.topic_arn, "SNS says this endpoint was unsubscribed from the topic");
            accepted(&message, "unsubscribe_acknowledged", json!({}))
        }
        SnsMessageType::Notification => notification(&state, &message)
            .await
            .unwrap_or_else(IntoResponse::into_response),
    }
}

async fn notification(
    state: &AppState,
    message: &VerifiedSnsMessage,
) -> Result<Response, ApiError> {
    let event = match parse_ses_event(&message.message) {
        Ok(SesNotification::Event(event)) => event,
        Ok(SesNotification::Unsupported { kind }) => {
            tracing::debug!(kind = %kind, "SNS notification of a kind not handled; dropped");
            return Ok(accepted(message, "ignored", json!({"kind": kind})));
        }
        Err(e) => {
            tracing::warn!(sns_message_id = %message.message_id, error = %e, "SNS notification without a usable SES event");
            return Ok(error(
                400,
                ErrorCode::ValidationError,
                format!("The notification's Message is not a usable SES event: {e}."),
            ));
        }
    };
    let Some(change) = provider_event(&message.message_id, &event) else {
        tracing::debug!(
            kind = event.kind(),
            "SES event of a kind not handled; dropped"
        );
        return Ok(accepted(message, "ignored", json!({"kind": event.kind()})));
    };
    let outcome = state.ses_events.apply(change).await?;
    Ok(match outcome {
        ApplyOutcome::Applied(applied) => {
            if applied.recorded {
                state.webhook_wakeup.notify_one();
            }
            if !applied.unmatched.is_empty() {
                tracing::debug!(email_id = %applied.email_id, unmatched = ?applied.unmatched, "SES event names addresses the email was not sent to");
            }
            tracing::info!(
                email_id = %applied.email_id,
                kind = event.kind(),
                last_event = %applied.status,
                suppressed = applied.suppressed.len(),
                "SES event applied"
            );
            accepted(
                message,
                "applied",
                json!({
                    "kind": event.kind(),
                    "email_id": applied.email_id,
                    "last_event": applied.status,
                }),
            )
        }
        ApplyOutcome::Duplicate => {
            tracing::debug!(sns_message_id = %message.message_id, "SNS message applied before; acknowledged again");
            accepted(message, "duplicate", json!({"kind": event.kind()}))
        }
        ApplyOutcome::UnknownEmail => {
            tracing::debug!(ses_message_id = %event.mail.message_id, kind = event.kind(), "SES event about an email this server did not send; dropped");
            accepted(message, "unknown_email", json!({"kind": event.kind()}))
        }
    })
}

/// What an SES event means for the email: its status, recipients, suppressions and the webhook data
/// (Resend's shapes: `bounce: {type, subType, message, diagnosticCode}`, `click: {ipAddress, link,
/// timestamp, userAgent}`, `open: {ipAddress, timestamp, userAgent}`, `failed: {reason}`). `None` for kinds
/// that say nothing about an email (`Subscription`).
pub fn provider_event(sns_message_id: &str, event: &SesEvent) -> Option<ProviderEvent> {
    let stamp = |at: Option<chrono::DateTime<chrono::Utc>>| {
        payload_timestamp(at.unwrap_or(event.mail.timestamp))
    };
    let every_recipient = |status: RecipientStatus, response: Option<String>| {
        event
            .mail
            .destination
            .iter()
            .map(|address| RecipientChange {
                address: address.clone(),
                status,
                response: response.clone(),
                suppress: None,
            })
            .collect::<Vec<_>>()
    };
    let (status, event_type, data, recipients, announce_always) = match &event.details {
        SesEventDetails::Send => (
            EmailStatus::Sent,
            "email.sent",
            json!({"transport": "ses", "provider_message_id": event.mail.message_id}),
            Vec::new(),
            false,
        ),
        SesEventDetails::Delivery(delivery) => (
            EmailStatus::Delivered,
            "email.delivered",
            json!({}),
            delivery
                .recipients
                .iter()
                .map(|address| RecipientChange {
                    address: address.clone(),
                    status: RecipientStatus::Delivered,
                    response: delivery.smtp_response.clone(),
                    suppress: None,
                })
                .collect(),
            true,
        ),
        SesEventDetails::Bounce(bounce) => {
            let (kind, message, suppress) = match &bounce.bounce_type {
                BounceType::Permanent => (
                    "Permanent",
                    "The recipient's mail server permanently rejected the email.",
                    Some(Reason::Bounce),
                ),
                BounceType::Transient => (
                    "Transient",
                    "The recipient's mail server temporarily rejected the email, and Amazon SES stopped trying.",
                    None,
                ),
                BounceType::Undetermined => (
                    "Undetermined",
                    "Amazon SES could not determine why the email bounced.",
                    None,
                ),
                BounceType::Other(other) => (
                    other.as_str(),
                    "Amazon SES reported a bounce of a type it did not explain.",
                    None,
                ),
            };
            let diagnostics: Vec<&str> = bounce
                .bounced_recipients
                .iter()
                .filter_map(|r| r.diagnostic_code.as_deref())
                .collect();
            (
                EmailStatus::Bounced,
                "email.bounced",
                json!({"bounce": {
                    "type": kind,
                    "subType": bounce.sub_type.as_deref().unwrap_or("Undetermined"),
                    "message": message,
                    "diagnosticCode": diagnostics,
                }}),
                bounce
                    .bounced_recipients
                    .iter()
                    .map(|r| RecipientChange {
                        address: r.email_address.clone(),
                        status: RecipientStatus::Bounced,
                        response: r.diagnostic_code.clone().or_else(|| r.status.clone()),
                        suppress,
                    })
                    .collect(),
                true,
            )
        }
        SesEventDetails::Complaint(complaint) => (
            EmailStatus::Complained,
            "email.complained",
            json!({"complaint": {
                "feedbackType": complaint.complaint_feedback_type,
                "timestamp": stamp(complaint.timestamp),
            }}),
            complaint
                .complained_recipients
                .iter()
                .map(|r| RecipientChange {
                    address: r.email_address.clone(),
                    status: RecipientStatus::Complained,
                    response: complaint
                        .complaint_feedback_type
                        .as_ref()
                        .map(|t| format!("complaint: {t}")),
                    suppress: Some(Reason::Complaint),
                })
                .collect(),
            true,
        ),
        SesEventDetails::DeliveryDelay(delay) => {
            let diagnostics: Vec<&str> = delay
                .delayed_recipients
                .iter()
                .filter_map(|r| r.diagnostic_code.as_deref())
                .collect();
            (
                EmailStatus::DeliveryDelayed,
                "email.delivery_delayed",
                json!({"delivery_delayed": {
                    "reason": delay.delay_type,
                    "diagnosticCode": diagnostics,
                    "expirationTime": delay.expiration_time.map(payload_timestamp),
                }}),
                delay
                    .delayed_recipients
                    .iter()
                    .map(|r| RecipientChange {
                        address: r.email_address.clone(),
                        status: RecipientStatus::DeliveryDelayed,
                        response: r.diagnostic_code.clone().or_else(|| r.status.clone()),
                        suppress: None,
                    })
                    .collect(),
                true,
            )
        }
        SesEventDetails::Reject(reject) => {
            let reason = format!(
                "Amazon SES rejected the email: {}",
                reject.reason.as_deref().unwrap_or("no reason given")
            );
            (
                EmailStatus::Failed,
                "email.failed",
                json!({"error": reason}),
                every_recipient(RecipientStatus::Failed, Some(reason.clone())),
                true,
            )
        }
        SesEventDetails::RenderingFailure(failure) => {
            let reason = format!(
                "Amazon SES could not render the email: {}",
                failure
                    .error_message
                    .as_deref()
                    .unwrap_or("no reason given")
            );
            (
                EmailStatus::Failed,
                "email.failed",
                json!({"error": reason}),
                every_recipient(RecipientStatus::Failed, Some(reason.clone())),
                true,
            )
        }
        SesEventDetails::Open(open) => (
            EmailStatus::Opened,
            "email.opened",
            json!({"open": {
                "ipAddress": open.ip_address.as_deref().unwrap_or_default(),
                "timestamp": stamp(open.timestamp),
                "userAgent": open.user_agent.as_deref().unwrap_or_default(),
            }}),
            Vec::new(),
            true,
        ),
        SesEventDetails::Click(click) => (
            EmailStatus::Clicked,
            "email.clicked",
            json!({"click": {
                "ipAddress": click.ip_address.as_deref().unwrap_or_default(),
                "link": click.link.as_deref().unwrap_or_default(),
                "timestamp": stamp(click.timestamp),
                "userAgent": click.user_agent.as_deref().unwrap_or_default(),
            }}),
            Vec::new(),
            true,
        ),
        SesEventDetails::Subscription(_) => return None,
    };
    Some(ProviderEvent {
        provider: provider_events::SES,
        event_id: sns_message_id.to_owned(),
        kind: event.kind().to_owned(),
        provider_message_id: event.mail.message_id.clone(),
        status,
        event_type,
        data,
        announce_always,
        recipients,
    })
}
