//! Inviting someone into an organization: the invitation is stored (its link's token only as SHA-256) and
//! its link is mailed through the same accept path as `POST /emails` (stored, queued, delivered by the
//! worker, captured in `DELIVERY=capture`), as an email of the inviting organization.
//!
//! The From is `DASHBOARD_EMAIL_FROM` and goes through the same From rule as the API: in capture delivery
//! any address is kept; with SMTP or SES its domain must be one of the organization's verified sending
//! domains. When it is not, the invitation is still made and the link is handed to the admin who made it,
//! once, to pass on themselves ([`Invited::link_to_share`]).

use chrono::Utc;
use opensend_core::{EmailAddress, Mailbox, OpaqueToken, RecipientKind, Role};
use opensend_store::repos::emails::NewEmail;
use opensend_store::repos::{AuditContext, NewInvitation};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::accounts::{self, INVITATION_LIFETIME};
use crate::domains::{self, SendAsError, Unverified};
use crate::error::ApiError;
use crate::state::AppState;

/// What [`invite`] did.
pub struct Invited {
    pub invitation_id: Uuid,
    /// The email that carries the link, when it could be sent.
    pub email_id: Option<Uuid>,
    /// When the link could not be mailed: the link, to be shown once to the admin, and why.
    pub link_to_share: Option<(SecretString, String)>,
}

/// The link of an invitation token.
pub fn link(state: &AppState, token: &OpaqueToken) -> String {
    let base = state.config.app_url.as_str().trim_end_matches('/');
    format!("{base}/dashboard/invitations/{}", token.expose())
}

pub async fn invite(
    state: &AppState,
    organization_id: Uuid,
    organization_name: &str,
    inviter: (Uuid, &str),
    address: &str,
    role: Role,
    audit: &AuditContext,
) -> Result<Invited, ApiError> {
    let address =
        accounts::parse_address(address).map_err(|e| ApiError::validation(e.to_string()))?;
    let token = OpaqueToken::generate().map_err(ApiError::internal)?;
    let invitation = state
        .store
        .invitations()
        .create(
            NewInvitation {
                organization_id,
                email: address.email.clone(),
                email_key: address.key,
                role,
                token_hash: token.hash(),
                invited_by: inviter.0,
                expires_at: Utc::now() + INVITATION_LIFETIME,
            },
            audit,
        )
        .await?;
    let link = link(state, &token);
    let from = state
        .config
        .dashboard_email_from()
        .ok_or_else(|| ApiError::internal("no sender for dashboard mail"))?;
    let to =
        EmailAddress::parse(&address.email).map_err(|e| ApiError::validation(e.to_string()))?;
    let identity = match domains::sending_domain(
        state,
        organization_id,
        from.address.as_str(),
        None,
        Unverified::for_delivery(&state.config),
    )
    .await
    {
        Ok(domain) => domain,
        Err(SendAsError::Refused(refusal)) => {
            return Ok(Invited {
                invitation_id: invitation.id,
                email_id: None,
                link_to_share: Some((SecretString::from(link), refusal.to_string())),
            });
        }
        Err(SendAsError::Domain(e)) => return Err(ApiError::internal(e)),
    };
    let id = opensend_core::new_id();
    let subject = format!("You are invited to {organization_name} on OpenSend");
    let text = format!(
        "{inviter} invited you to join {organization_name} on OpenSend as {role}.\n\n\
         Accept the invitation: {link}\n\n\
         The link works once and expires in {days} days. If you did not expect this, ignore this email.\n",
        inviter = inviter.1,
        days = INVITATION_LIFETIME.num_days(),
    );
    let html = format!(
        "<p>{inviter} invited you to join <b>{org}</b> on OpenSend as {role}.</p>\
         <p><a href=\"{link}\">Accept the invitation</a></p>\
         <p>The link works once and expires in {days} days. If you did not expect this, ignore this email.</p>",
        inviter = escape(inviter.1),
        org = escape(organization_name),
        link = escape(&link),
        days = INVITATION_LIFETIME.num_days(),
    );
    let email = NewEmail {
        id,
        organization_id,
        api_key_id: None,
        message_id: format!("{id}@{}", from.address.domain()),
        from: from.clone(),
        to: vec![Mailbox {
            name: None,
            address: to.clone(),
        }],
        cc: Vec::new(),
        bcc: Vec::new(),
        reply_to: Vec::new(),
        subject,
        html: Some(html),
        text: Some(text),
        headers: Vec::new(),
        tags: Vec::new(),
        attachments: Vec::new(),
        scheduled_at: None,
        sending_domain_id: identity.as_ref().map(|d| d.id),
        unverified_sender: identity.is_none(),
        recipients: vec![(to, RecipientKind::To)],
    };
    state.store.emails().accept(vec![email], None).await?;
    state
        .store
        .invitations()
        .set_email(invitation.id, id)
        .await?;
    state.delivery_wakeup.notify_one();
    state.webhook_wakeup.notify_one();
    Ok(Invited {
        invitation_id: invitation.id,
        email_id: Some(id),
        link_to_share: None,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The link shown once to an admin when it could not be mailed.
pub fn shown_once(link: &SecretString) -> &str {
    link.expose_secret()
}
